//! What a GEMM kernel asks of `irc_gemm`: the dimensions, transposes,
//! batch and epilogue its `irc_gemm_args` carry. The emitter writes the call
//! from it, and `irc bench` times `irc_gemm` with the same fields, so the
//! benchmark's shapes are the compiled program's, never a list kept by hand.

use crate::ir::{Graph, Kernel, KernelKind, Op};
use crate::memory::{MemoryPlan, Region};
use crate::ops::Act;
use serde::Serialize;

/// One `irc_gemm` call as a kernel makes it (`batch` calls when the
/// operands step by a matrix per batch element).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct GemmShape {
    /// Calls of `irc_gemm` per kernel run (1: leading axes folded into M).
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// `A` is read transposed (stored K × M).
    pub trans_a: bool,
    /// `B` is read transposed (stored N × K).
    pub trans_b: bool,
    /// `B` steps by a matrix per batch element too (else it is shared).
    pub b_batched: bool,
    /// `C += A·B` (a gradient accumulating over micro-batches).
    pub accumulate: bool,
    /// A bias row added in the epilogue.
    pub bias: bool,
    /// The value before the activation stored for the backward.
    pub pre: bool,
    /// The activation the epilogue applies.
    #[serde(serialize_with = "act_name")]
    pub act: Option<Act>,
}

fn act_name<S: serde::Serializer>(a: &Option<Act>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => s.serialize_some(a.def().mnemonic),
        None => s.serialize_none(),
    }
}

impl GemmShape {
    /// Of kernel `k` of a program (`None` unless it is a GEMM).
    pub fn of(g: &Graph, mem: &MemoryPlan, k: &Kernel) -> Option<GemmShape> {
        let KernelKind::Gemm { bias, act } = k.kind else {
            return None;
        };
        let mm = g.node(k.nodes[0]);
        let Op::MatMul { ta, tb, .. } = mm.op else {
            return None;
        };
        let last = *k.nodes.last()?;
        let (ash, wsh) = (
            &g.node(mm.inputs[0]).ty.shape,
            &g.node(mm.inputs[1]).ty.shape,
        );
        let out = &g.node(last).ty.shape;
        let n = out[out.len() - 1];
        let k_dim = if tb {
            wsh[wsh.len() - 1]
        } else {
            wsh[wsh.len() - 2]
        };
        let b_batched = wsh.len() > 2;
        // Fold leading axes of `a` into M when the weight is shared and
        // `a` is read row-major; otherwise loop over the batch.
        let (batch, m) = if !b_batched && !ta {
            (1, ash.iter().product::<usize>() / k_dim)
        } else {
            (out[..out.len() - 2].iter().product(), out[out.len() - 2])
        };
        Some(GemmShape {
            batch,
            m,
            n,
            k: k_dim,
            trans_a: ta,
            trans_b: tb,
            b_batched,
            accumulate: mem.loc(last).region == Region::Grads,
            bias,
            pre: act.is_some() && k.outputs.contains(&k.nodes[k.nodes.len() - 2]),
            act,
        })
    }

    /// Floating-point operations of one kernel run (multiply and add apart).
    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// `256x768x3072 Aᵀ Bᵀ +bias gelu` (M×N×K, then what differs from a
    /// plain product).
    pub fn describe(&self) -> String {
        let mut s = if self.batch > 1 {
            format!("{}x({}x{}x{})", self.batch, self.m, self.n, self.k)
        } else {
            format!("{}x{}x{}", self.m, self.n, self.k)
        };
        for (yes, what) in [
            (self.trans_a, " Aᵀ"),
            (self.trans_b, " Bᵀ"),
            (self.accumulate, " +="),
            (self.bias, " +bias"),
        ] {
            if yes {
                s.push_str(what);
            }
        }
        if let Some(a) = self.act {
            s.push(' ');
            s.push_str(a.def().mnemonic);
        }
        s
    }
}
