//! Weights the generation programs read packed (`[build].weights` q8_0 or
//! bf16): which parameters, where each lives in the context's `qw` bytes,
//! and whether its f32 copy can be given back once it is packed. The layout
//! is `runtime-c/irc_q8.h`'s; the frame's `pack_weights` fills it from the
//! f32 parameters before the first generation step, and a GEMM kernel of a
//! matmul with such weights reads it ([`Emitter::rounded_gemm`]).

use super::{Call, Emitter};
use crate::codegen::GemmShape;
use crate::driver::Compiled;
use crate::error::{Error, Result};
use crate::ir::{Kernel, NodeId, Op};
use crate::memory::Region;
use crate::ops::Act;
use crate::quant::WeightFormat;
use crate::spec::Target;
use serde_json::{json, Value};

/// One packed parameter.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// Its f32 values in the parameter region: offset and count.
    pub offset: usize,
    pub numel: usize,
    /// op(W) is K × N: N output columns of K values.
    pub n: usize,
    pub k: usize,
    /// W is stored N × K (else K × N).
    pub tb: bool,
    pub fmt: WeightFormat,
    /// Byte offset in `qw`, and bytes.
    pub at: usize,
    pub bytes: usize,
    /// Only generation's packed products read it: the f32 copy can go.
    pub release: bool,
}

/// Every packed parameter of a library.
#[derive(Debug, Clone, Default)]
pub struct Packed {
    pub entries: Vec<Entry>,
    /// irc_q8.h's IRC_QG for the target: columns packed together.
    pub group: usize,
    /// Bytes of `work` the largest q8_0 product needs for its rows of A.
    pub work_bytes: usize,
}

/// irc_q8.h's column group for `target`.
fn group(target: Target) -> usize {
    match target {
        Target::Avx512 => 16,
        Target::Avx2 => 8,
        _ => 4,
    }
}

const QK: usize = 32;

fn round64(n: usize) -> usize {
    n.div_ceil(64) * 64
}

impl Packed {
    /// The packed parameters of `programs` (the generation steps).
    pub fn of(programs: &[&Compiled], target: Target) -> Result<Packed> {
        let g_w = group(target.resolve());
        let mut p = Packed {
            group: g_w,
            ..Packed::default()
        };
        let mut other_use = std::collections::BTreeSet::new();
        for c in programs {
            let g = &c.graph;
            for id in g.ids() {
                let node = g.node(id);
                for (slot, &i) in node.inputs.iter().enumerate() {
                    let inp = g.node(i);
                    if !matches!(inp.op, Op::Param { .. }) {
                        continue;
                    }
                    let fmt = match node.op {
                        Op::MatMul { tb, w, .. } if slot == 1 && !w.is_f32() => Some((tb, w)),
                        _ => None,
                    };
                    let Some((tb, fmt)) = fmt else {
                        other_use.insert(inp.name.clone());
                        continue;
                    };
                    let loc = c.memory.loc(i);
                    if loc.region != Region::Params {
                        return Err(Error::new(format!(
                            "codegen: packed weight `{}` is not a parameter",
                            inp.name
                        )));
                    }
                    let s = &inp.ty.shape;
                    let (n, k) = if tb { (s[0], s[1]) } else { (s[1], s[0]) };
                    if let Some(m) = node_rows(c, id) {
                        let kb = k.div_ceil(QK);
                        if fmt == WeightFormat::Q8_0 {
                            p.work_bytes = p.work_bytes.max(m * kb * (QK + 8) + 64);
                        }
                    }
                    if p.entries.iter().any(|e| e.offset == loc.offset) {
                        continue;
                    }
                    let groups = n.div_ceil(g_w);
                    let bytes = round64(match fmt {
                        WeightFormat::Q8_0 => groups * k.div_ceil(QK) * g_w * (QK + 4),
                        _ => groups * k * g_w * 2,
                    });
                    let at = p.bytes();
                    p.entries.push(Entry {
                        name: inp.name.clone(),
                        offset: loc.offset,
                        numel: inp.ty.numel(),
                        n,
                        k,
                        tb,
                        fmt,
                        at,
                        bytes,
                        release: true,
                    });
                }
            }
        }
        for e in &mut p.entries {
            e.release = !other_use.contains(&e.name);
        }
        Ok(p)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.entries.last().map_or(0, |e| e.at + e.bytes)
    }

    fn at(&self, offset: usize) -> Option<&Entry> {
        self.entries.iter().find(|e| e.offset == offset)
    }

    /// What the frame's templates read: the table, the sizes.
    pub fn template_values(&self) -> Value {
        let rows: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                json!({ "name": e.name, "offset": e.offset, "numel": e.numel, "n": e.n, "k": e.k,
                        "tb": e.tb as u8, "q8": (e.fmt == WeightFormat::Q8_0) as u8, "at": e.at,
                        "release": e.release as u8, "fmt": e.fmt.name() })
            })
            .collect();
        json!({ "entries": rows, "bytes": self.bytes(), "group": self.group,
                "work_floats": self.work_bytes.div_ceil(4) })
    }
}

/// Rows of A (M) of the matmul `id` reads.
fn node_rows(c: &Compiled, id: NodeId) -> Option<usize> {
    let n = c.graph.node(id);
    let k = c.graph.node(n.inputs[0]).ty.last();
    Some(c.graph.node(n.inputs[0]).ty.numel() / k.max(1))
}

impl Emitter<'_> {
    /// A GEMM kernel whose weights are packed: `irc_q8_gemm` or
    /// `irc_bf16_gemm` over `ctx->qw`.
    pub(super) fn rounded_gemm(&self, k: &Kernel, bias: bool, act: Option<Act>) -> Result<Call> {
        let g = self.g;
        let mm = g.node(k.nodes[0]);
        let Op::MatMul { w: fmt, .. } = mm.op else {
            unreachable!("a GEMM kernel starts with its matmul")
        };
        let (a, w) = (mm.inputs[0], mm.inputs[1]);
        let s = GemmShape::of(g, self.mem, k).expect("a GEMM kernel");
        if s.batch != 1 || s.trans_a || s.accumulate || s.pre {
            return Err(Error::new(format!(
                "codegen: a {} product must be a plain A · W (kernel of `{}`)",
                fmt.name(),
                mm.name
            )));
        }
        let wn = g.node(w);
        let e = self
            .packed
            .at(self.mem.loc(w).offset)
            .ok_or_else(|| Error::new(format!("codegen: `{}` has no packed copy", wn.name)))?;
        let (m, n, kd) = (s.m, s.n, s.k);
        let mut args = vec![
            self.ptr(self.last(k)),
            self.ptr(a),
            format!("ctx->qw + {}", e.at),
        ];
        let mut params = vec!["float *out", "const float *inp", "const unsigned char *w"];
        let what = match fmt {
            WeightFormat::Q8_0 => {
                "q8_0 blocks of 32 along K (irc_q8.h), and each row of inp quantized alike"
            }
            _ => "bf16 (irc_q8.h), widened to f32",
        };
        let mut doc = vec![
            format!(
                "out ({m}, {n}) = inp ({m}, {kd}) · w{}{}",
                if bias {
                    format!(" + bias ({n})")
                } else {
                    String::new()
                },
                act.map_or(String::new(), |a| format!(", then {}", a.def().mnemonic))
            ),
            format!("out  is ({m}, {n})"),
            format!("inp  is ({m}, {kd})"),
            format!("w    is ({kd}, {n}) packed: {what}"),
        ];
        let mut fields = vec![
            format!(".M = {m}, .N = {n}, .K = {kd},"),
            format!(".A = inp, .lda = {kd}, .W = w, .C = out, .ldc = {n},"),
        ];
        if bias {
            args.push(self.ptr(g.node(k.nodes[1]).inputs[1]));
            params.push("const float *bias");
            doc.push(format!("bias is ({n})"));
            fields.push(".bias = bias,".into());
        }
        if let Some(a) = act {
            fields.push(format!(".act = {},", a.def().c_enum));
        }
        fields.push(".threads = ctx->threads, .work = ctx->work,".into());
        let func = match fmt {
            WeightFormat::Q8_0 => "irc_q8_gemm",
            _ => "irc_bf16_gemm",
        };
        let v = json!({ "doc": doc, "params": params.join(", "), "fields": fields, "func": func });
        Ok(Call::new("kernels/gemm_packed.c.tera", v, args).threaded(true))
    }
}
