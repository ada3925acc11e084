//! The primitive ops, each defined once. `Op` is the vocabulary of the IR;
//! the file of an op's family (one per family, named after it) holds, side
//! by side: its shape rule (`infer`), its reference semantics (`eval`, run
//! by the interpreter), its VJP (`vjp`, run by autodiff), its lowering (the
//! C expression of an elementwise op) and its test cases (`cases`, run by
//! `tests/op_kernels.rs` and `tests/gradcheck.rs`). This file only
//! dispatches to them. Activations are one row each in `activations!`
//! below; `docs/add-an-op.md` is the checklist for a new op.
//!
//! The module depends on nothing else in the compiler: `ir` builds its graph
//! over these types, and autodiff hands `vjp` a [`Vjp`] builder.

use crate::error::{Error, Result};
pub use crate::quant::WeightFormat;
use serde::{Serialize, Serializer};

mod activation;
mod arith;
mod attention;
mod cache;
mod embedding;
mod loss;
mod matmul;
mod norm;
mod rope;
mod shape;
mod softmax;
mod types;
mod value;

pub use activation::ActDef;
pub use types::{DType, NodeId, TensorType};
pub use value::{Real, Tensor, Value};

/// The value of `ignore_index`, as in PyTorch.
pub const IGNORE_INDEX: i32 = -100;

/// Declares the activation functions: one row per activation, `Variant =>
/// module` (the module is `compiler/ops/<module>.rs` and defines `DEF`,
/// `f` and `df`). Everything else about an activation (the IR op and its
/// gradient op, the spec and Hugging Face names, the C functions, the test
/// cases) comes from that file.
macro_rules! activations {
    ($($variant:ident => $module:ident),* $(,)?) => {
        $(mod $module;)*

        /// An elementwise activation: `Op::Act` applies it, `Op::ActGrad`
        /// multiplies an upstream gradient by its derivative.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Act {
            $($variant),*
        }

        impl Act {
            /// Every activation, in declaration order.
            pub const ALL: &'static [Act] = &[$(Act::$variant),*];

            pub fn def(self) -> &'static ActDef {
                match self {
                    $(Act::$variant => &$module::DEF),*
                }
            }

            /// The function, in the interpreter's float type.
            pub fn f<T: Real>(self, x: T) -> T {
                match self {
                    $(Act::$variant => $module::f(x)),*
                }
            }

            /// Its derivative.
            pub fn df<T: Real>(self, x: T) -> T {
                match self {
                    $(Act::$variant => $module::df(x)),*
                }
            }
        }
    };
}

activations! {
    GeluTanh => gelu_tanh,
    Silu => silu,
    Relu => relu,
    Gelu => gelu,
}

/// A primitive op. Operand order is part of the definition (see each variant).
/// Serialized (JSON IR) as `{"op": mnemonic, attributes...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", remote = "Self")]
pub enum Op {
    /// A runtime input (token ids, targets): no operands.
    Input { name: String },
    /// A trained parameter, named as in Hugging Face transformers.
    Param { name: String },
    /// State a context keeps between calls and the programs update in place
    /// (the key/value cache): no operands, not trained.
    State { name: String },
    /// `[table (V,C), ids (...)] -> (..., C)`: rows of `table`.
    Embedding,
    /// `[a (..., M, K), b (K, N)]` or batched `b (..., K, N)` -> `(..., M, N)`.
    /// `ta`/`tb` read the last two axes of `a`/`b` transposed. `w` other
    /// than f32 (a 2-d `b`, `ta` false): `b` and the rows of `a` are rounded
    /// as that format says ([`crate::quant`]) before they are multiplied.
    /// `bf16`: both operands are rounded to bfloat16 first (`[build] dtype =
    /// "bf16"`; see `matmul::bf16`), the products summed in f32.
    MatMul {
        ta: bool,
        tb: bool,
        #[serde(skip_serializing_if = "WeightFormat::is_f32")]
        w: WeightFormat,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        bf16: bool,
    },
    /// `[a, b] -> a + b`; `b`'s shape is a suffix of `a`'s (broadcast over the
    /// leading axes).
    Add,
    /// `[a, b] -> a * b`, broadcast like `Add`.
    Mul,
    /// `[a] -> a * by`.
    Scale { by: f64 },
    /// `[x (..., C), w (C), b (C)]`: normalize each row to zero mean and unit
    /// variance (biased), then `* w + b`.
    LayerNorm { eps: f64 },
    /// `[x (..., C), w (C)]`: `x / sqrt(mean(x²) + eps) * w`.
    RmsNorm { eps: f64 },
    /// `[x]`: an activation, elementwise (see `Act`).
    #[serde(skip)]
    Act(Act),
    /// `[x (..., N)]`: softmax over the last axis.
    Softmax,
    /// `[x (B, T, H*D)]` or `[x, positions (B, T) i32]`: rotary position
    /// embedding on each head at position t (or `positions[b, t]`),
    /// rotate-half convention (Llama), frequencies `theta^(-2i/D)`.
    /// `inverse` rotates by -θ (the transpose: rope's own gradient).
    Rope {
        head_dim: usize,
        theta: f64,
        inverse: bool,
    },
    /// `[q (B,T,H*D), k (B,T,KV*D), v (B,T,KV*D)] -> (B,T,H*D)`: causal scaled
    /// dot-product attention; query head h reads kv head `h / (H/KV)` (GQA).
    Attention {
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
    },
    /// `[logits (..., V), targets (...) i32] -> (1)`: mean over targets that are
    /// not -100 of `logsumexp(logits) - logits[target]`.
    CrossEntropy,
    /// `[cache (S, N), new (1, T, N), positions (1, T) i32] -> (S, N)`: the
    /// cache with row `positions[t]` replaced by `new[t]`, written in place
    /// (the result lives in the cache's memory).
    CacheWrite,
    /// `[q (1, T, H*D), k (S, KV*D), v (S, KV*D), positions (1, T) i32] ->
    /// (1, T, H*D)`: query row t attends to cache rows `0..=positions[t]`
    /// (causal attention over a key/value cache; GQA as in `Attention`).
    CachedAttention {
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
    },
    /// `[x (..., N)] -> (..., len)`: columns `start..start+len` of the last
    /// axis (a strided read; fused into its consumer where it can be).
    Narrow { start: usize, len: usize },
    /// `[x (R, ...)] -> (len, ...)`: rows `start..start+len` of axis 0 (a view).
    Slice { start: usize, len: usize },
    /// `[x] -> x` with another shape of the same size (a view).
    Reshape { shape: Vec<usize> },

    // ---- Ops that gradients are made of (see each family's `vjp`). ----
    /// `[x (..., S)] -> (S)`: sum over the leading axes down to the suffix
    /// `shape` (`[]` sums everything).
    ReduceTo { shape: Vec<usize> },
    /// `[x (..., len)] -> (..., total)`: x at columns `start..`, zeros elsewhere.
    Pad { start: usize, total: usize },
    /// `[x (len, ...)] -> (total, ...)`: x at rows `start..`, zeros elsewhere.
    PadRows { start: usize, total: usize },
    /// `[dy, x] -> dy * act'(x)`.
    #[serde(skip)]
    ActGrad(Act),
    /// `[dy, y] -> y * (dy - Σ dy·y)` over the last axis (y = softmax output).
    SoftmaxGrad,
    /// `[dy, x, w] -> dx` of `LayerNorm` (or of `RmsNorm` when `rms`).
    NormGradX { eps: f64, rms: bool },
    /// `[dy, x] -> dw (C)`: Σ over rows of dy · x̂.
    NormGradW { eps: f64, rms: bool },
    /// `[q (B,T,H*D), k (B,T,KV*D)] -> (B,T,H)`: the log-sum-exp of each
    /// query row's causal scaled scores, `log Σ_{s<=t} exp(q_t·k_s / √D)`:
    /// what the forward of an `Attention` over the same q and k keeps for
    /// its backward (computed in the same kernel, on the way).
    AttentionLse {
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
    },
    /// `[dout, q, k, v, out, lse] -> dq | dk | dv` (`wrt` = 0, 1, 2) of
    /// `Attention`, from its output and its `AttentionLse`: the
    /// probabilities are `exp(score - lse)`, and `Σ_s p_s dp_s` is `dout·out`.
    AttentionGrad {
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        wrt: usize,
    },
    /// `[dy (..., C), ids (...)] -> (vocab, C)`: rows of dy summed by id.
    EmbeddingGrad { vocab: usize },
    /// `[logits (..., V), targets (...)] -> (..., V)`: d mean-cross-entropy /
    /// d logits = (softmax - onehot) / count, zero on ignored rows.
    CrossEntropyGrad,
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            // Activations have no attributes: `{"op": mnemonic}`, as any unit op.
            Op::Act(_) | Op::ActGrad(_) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("op", self.mnemonic())?;
                m.end()
            }
            _ => Op::serialize(self, s),
        }
    }
}

impl Op {
    /// A matmul of f32 operands.
    pub fn matmul(ta: bool, tb: bool) -> Op {
        Op::MatMul {
            ta,
            tb,
            w: WeightFormat::F32,
            bf16: false,
        }
    }

    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Param { .. } => "param",
            Op::State { .. } => "state",
            Op::Embedding | Op::EmbeddingGrad { .. } => embedding::mnemonic(self),
            Op::MatMul { .. } => "matmul",
            Op::Add | Op::Mul | Op::Scale { .. } => arith::mnemonic(self),
            Op::LayerNorm { .. } | Op::RmsNorm { .. } => norm::mnemonic(self),
            Op::NormGradX { .. } | Op::NormGradW { .. } => norm::mnemonic(self),
            Op::Act(a) => a.def().mnemonic,
            Op::ActGrad(a) => a.def().grad_mnemonic,
            Op::Softmax | Op::SoftmaxGrad => softmax::mnemonic(self),
            Op::Rope { .. } => "rope",
            Op::Attention { .. } | Op::AttentionLse { .. } | Op::AttentionGrad { .. } => {
                attention::mnemonic(self)
            }
            Op::CrossEntropy | Op::CrossEntropyGrad => loss::mnemonic(self),
            Op::CacheWrite | Op::CachedAttention { .. } => cache::mnemonic(self),
            Op::Narrow { .. } | Op::Slice { .. } | Op::Reshape { .. } => shape::mnemonic(self),
            Op::ReduceTo { .. } | Op::Pad { .. } | Op::PadRows { .. } => shape::mnemonic(self),
        }
    }

    pub fn is_leaf(&self) -> bool {
        matches!(self, Op::Input { .. } | Op::Param { .. } | Op::State { .. })
    }

    /// Views share their operand's memory; they never become a kernel.
    pub fn is_view(&self) -> bool {
        matches!(self, Op::Slice { .. } | Op::Reshape { .. })
    }

    /// One output element from the same-index element of each operand.
    /// Written without a catch-all so a new op must answer.
    pub fn is_elementwise(&self) -> bool {
        match self {
            Op::Add | Op::Mul | Op::Scale { .. } | Op::Act(_) | Op::ActGrad(_) => true,
            Op::Input { .. }
            | Op::Param { .. }
            | Op::State { .. }
            | Op::Embedding
            | Op::MatMul { .. }
            | Op::LayerNorm { .. }
            | Op::RmsNorm { .. }
            | Op::Softmax
            | Op::Rope { .. }
            | Op::Attention { .. }
            | Op::AttentionLse { .. }
            | Op::CrossEntropy
            | Op::CacheWrite
            | Op::CachedAttention { .. }
            | Op::Narrow { .. }
            | Op::Slice { .. }
            | Op::Reshape { .. }
            | Op::ReduceTo { .. }
            | Op::Pad { .. }
            | Op::PadRows { .. }
            | Op::SoftmaxGrad
            | Op::NormGradX { .. }
            | Op::NormGradW { .. }
            | Op::AttentionGrad { .. }
            | Op::EmbeddingGrad { .. }
            | Op::CrossEntropyGrad => false,
        }
    }

    /// Attributes as `{k=v, ...}` for the printer ("" when none).
    pub fn attrs(&self) -> String {
        let a = match self {
            Op::Input { name } | Op::Param { name } | Op::State { name } => format!("\"{name}\""),
            Op::MatMul { .. } => matmul::attrs(self),
            Op::Scale { by } => format!("by={by}"),
            Op::LayerNorm { eps } | Op::RmsNorm { eps } => format!("eps={eps:e}"),
            Op::NormGradX { eps, .. } | Op::NormGradW { eps, .. } => format!("eps={eps:e}"),
            Op::Rope { .. } => rope::attrs(self),
            Op::Attention { .. } | Op::AttentionLse { .. } | Op::AttentionGrad { .. } => {
                attention::attrs(self)
            }
            Op::CachedAttention { .. } => attention::attrs(self),
            Op::EmbeddingGrad { vocab } => format!("vocab={vocab}"),
            Op::Narrow { .. } | Op::Slice { .. } | Op::Reshape { .. } => shape::attrs(self),
            Op::ReduceTo { .. } | Op::Pad { .. } | Op::PadRows { .. } => shape::attrs(self),
            _ => String::new(),
        };
        if a.is_empty() {
            a
        } else {
            format!(" {{{a}}}")
        }
    }

    /// Shape rule: the output type for operands of these types, or what is
    /// wrong. Each family checks its own arity and operands.
    pub fn infer(&self, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
        match self {
            Op::Input { .. } | Op::Param { .. } | Op::State { .. } => {
                arity(t, 0)?;
                Err("leaves have no shape rule".into())
            }
            Op::Embedding | Op::EmbeddingGrad { .. } => embedding::infer(self, t),
            Op::MatMul { .. } => matmul::infer(self, t),
            Op::Add | Op::Mul | Op::Scale { .. } => arith::infer(self, t),
            Op::LayerNorm { .. } | Op::RmsNorm { .. } => norm::infer(self, t),
            Op::NormGradX { .. } | Op::NormGradW { .. } => norm::infer(self, t),
            Op::Act(_) | Op::ActGrad(_) => activation::infer(self, t),
            Op::Softmax | Op::SoftmaxGrad => softmax::infer(self, t),
            Op::Rope { .. } => rope::infer(self, t),
            Op::Attention { .. } | Op::AttentionLse { .. } | Op::AttentionGrad { .. } => {
                attention::infer(self, t)
            }
            Op::CrossEntropy | Op::CrossEntropyGrad => loss::infer(self, t),
            Op::CacheWrite | Op::CachedAttention { .. } => cache::infer(self, t),
            Op::Narrow { .. } | Op::Slice { .. } | Op::Reshape { .. } => shape::infer(self, t),
            Op::ReduceTo { .. } | Op::Pad { .. } | Op::PadRows { .. } => shape::infer(self, t),
        }
    }

    /// Reference semantics: the value of this op (of type `ty`) on `args`.
    /// Leaves are fed by the interpreter, not evaluated.
    pub fn eval<T: Real>(&self, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
        match self {
            Op::Input { .. } | Op::Param { .. } | Op::State { .. } => {
                Err(Error::new("interpreter: leaves are fed, not evaluated"))
            }
            Op::Embedding | Op::EmbeddingGrad { .. } => embedding::eval(self, ty, args),
            Op::MatMul { .. } => matmul::eval(self, ty, args),
            Op::Add | Op::Mul | Op::Scale { .. } => arith::eval(self, ty, args),
            Op::LayerNorm { .. } | Op::RmsNorm { .. } => norm::eval(self, ty, args),
            Op::NormGradX { .. } | Op::NormGradW { .. } => norm::eval(self, ty, args),
            Op::Act(_) | Op::ActGrad(_) => activation::eval(self, ty, args),
            Op::Softmax | Op::SoftmaxGrad => softmax::eval(self, ty, args),
            Op::Rope { .. } => rope::eval(self, ty, args),
            Op::Attention { .. } | Op::AttentionLse { .. } | Op::AttentionGrad { .. } => {
                attention::eval(self, ty, args)
            }
            Op::CrossEntropy | Op::CrossEntropyGrad => loss::eval(self, ty, args),
            Op::CacheWrite | Op::CachedAttention { .. } => cache::eval(self, ty, args),
            Op::Narrow { .. } | Op::Slice { .. } | Op::Reshape { .. } => {
                shape::eval(self, ty, args)
            }
            Op::ReduceTo { .. } | Op::Pad { .. } | Op::PadRows { .. } => {
                shape::eval(self, ty, args)
            }
        }
    }

    /// The C of an elementwise op inside a fused kernel: the vector
    /// expression over operand vectors `a`, and the readable formula over
    /// operand formulas `t` (for the kernel's comment). None when the op is
    /// not elementwise.
    pub fn c_expr(&self, a: &[String], t: &[String]) -> Option<(String, String)> {
        match self {
            Op::Add | Op::Mul | Op::Scale { .. } => Some(arith::c_expr(self, a, t)),
            Op::Act(_) | Op::ActGrad(_) => Some(activation::c_expr(self, a, t)),
            _ => None,
        }
    }
}

/// The graph as the VJP rules see it: autodiff implements this over its
/// graph, so this module never depends on the IR.
pub trait Vjp {
    /// Add `op` over `ins` as (part of) the gradient of node `of`, named
    /// `d<name of of><what>`.
    fn add(&mut self, op: Op, ins: &[NodeId], of: NodeId, what: &str) -> Result<NodeId>;
    /// Add `op` over `ins`: a forward value the backward of `of` reads
    /// (a statistic its forward kernel keeps), named `<name of of><what>`.
    fn save(&mut self, op: Op, ins: &[NodeId], of: NodeId, what: &str) -> Result<NodeId>;
    fn ty(&self, id: NodeId) -> &TensorType;
    /// `x (..., K)` flattened to `(rows, K)` (for weight gradients).
    fn rows(&mut self, x: NodeId) -> Result<NodeId>;
    /// `gr` summed down to `x`'s shape when `x` was broadcast.
    fn unbroadcast(&mut self, gr: NodeId, x: NodeId) -> Result<NodeId>;
}

/// The VJP of node `n` (`op` over `ins`) for upstream gradient `gr` (None =
/// the seed 1 of a scalar loss): the gradient contribution to each operand
/// whose `need` is set (others may be None).
pub fn vjp(
    op: &Op,
    b: &mut dyn Vjp,
    n: NodeId,
    ins: &[NodeId],
    gr: Option<NodeId>,
    need: &[bool],
) -> Result<Vec<Option<NodeId>>> {
    let mut out = vec![None; ins.len()];
    if let Op::CrossEntropy = op {
        loss::seed(b, ins, gr, &mut out)?;
        return Ok(out);
    }
    let gr = gr.ok_or_else(|| {
        Error::new(format!(
            "autodiff: the loss must be a cross_entropy, not {}",
            op.mnemonic()
        ))
    })?;
    let g = Grad { n, ins, gr, need };
    match op {
        Op::Input { .. } | Op::Param { .. } | Op::State { .. } | Op::CrossEntropy => {}
        Op::Embedding => embedding::vjp(op, b, &g, &mut out)?,
        Op::MatMul { .. } => matmul::vjp(op, b, &g, &mut out)?,
        Op::Add | Op::Mul | Op::Scale { .. } => arith::vjp(op, b, &g, &mut out)?,
        Op::LayerNorm { .. } | Op::RmsNorm { .. } => norm::vjp(op, b, &g, &mut out)?,
        Op::Act(_) => activation::vjp(op, b, &g, &mut out)?,
        Op::Softmax => softmax::vjp(op, b, &g, &mut out)?,
        Op::Rope { .. } => rope::vjp(op, b, &g, &mut out)?,
        Op::Attention { .. } => attention::vjp(op, b, &g, &mut out)?,
        Op::Narrow { .. } | Op::Slice { .. } | Op::Reshape { .. } => {
            shape::vjp(op, b, &g, &mut out)?
        }
        other => {
            return Err(Error::new(format!(
                "autodiff: no gradient rule for {} (second derivatives are not supported)",
                other.mnemonic()
            )))
        }
    }
    Ok(out)
}

/// What a VJP rule is given: the node, its operands, the upstream gradient
/// and which operands need a gradient.
pub struct Grad<'a> {
    pub n: NodeId,
    pub ins: &'a [NodeId],
    pub gr: NodeId,
    pub need: &'a [bool],
}

/// `t` has `n` operands.
fn arity(t: &[&TensorType], n: usize) -> std::result::Result<(), String> {
    if t.len() != n {
        return Err(format!("expected {n} operands, got {}", t.len()));
    }
    Ok(())
}

/// Operands `idx` of `t` are f32.
fn f32s(t: &[&TensorType], idx: &[usize]) -> std::result::Result<(), String> {
    for &i in idx {
        if t[i].dtype != DType::F32 {
            return Err(format!("operand {i} must be f32, is {}", t[i]));
        }
    }
    Ok(())
}

/// A float result of type `ty`.
fn tensor<T: Real>(ty: &TensorType, data: Vec<T>) -> Result<Value<T>> {
    Ok(Value::F(Tensor::new(&ty.shape, data)))
}

// ---- The registry: what the op tests walk. ----

/// An operand of a test case, made by the test harness.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A float activation `(B, T, n)` that gradients flow into.
    X(usize),
    /// A trained parameter of this shape, values around 0.
    Param(Vec<usize>),
    /// A norm weight `(n)`, values around 1.
    Norm(usize),
    /// Token ids `(B, T)` below this vocabulary size.
    Ids(usize),
    /// The result of an earlier step of the case.
    Step(usize),
}

/// One test case: ops applied in order (the last is the case's output).
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub steps: Vec<(Op, Vec<Operand>)>,
    /// Compile it and compare with the interpreter (`tests/op_kernels.rs`):
    /// the output must be `(B, T, N)`.
    pub kernel: bool,
    /// Check its gradients against finite differences (`tests/gradcheck.rs`).
    pub gradcheck: bool,
    /// The (B, T) the kernel harness runs it at, when not its own: shapes
    /// that cross a kernel's tiles.
    pub dims: Option<Dims>,
}

impl Case {
    fn new(name: impl Into<String>, steps: Vec<(Op, Vec<Operand>)>) -> Case {
        Case {
            name: name.into(),
            steps,
            kernel: true,
            gradcheck: true,
            dims: None,
        }
    }

    /// One op over fresh operands.
    fn op(name: impl Into<String>, op: Op, operands: Vec<Operand>) -> Case {
        Case::new(name, vec![(op, operands)])
    }

    fn only_kernel(mut self) -> Case {
        self.gradcheck = false;
        self
    }

    /// Run the kernel at batch `b` and `t` positions (and check no gradients:
    /// finite differences at such sizes are slow, and the shape rules do not
    /// depend on them).
    fn at(mut self, b: usize, t: usize) -> Case {
        self.dims = Some(Dims { b, t });
        self.gradcheck = false;
        self
    }

    fn only_gradcheck(mut self) -> Case {
        self.kernel = false;
        self
    }
}

/// The sizes a harness runs cases at.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub b: usize,
    pub t: usize,
}

/// One family of ops: the mnemonics it defines and its test cases.
pub struct Family {
    pub name: &'static str,
    pub ops: fn() -> Vec<&'static str>,
    pub cases: fn(Dims) -> Vec<Case>,
    /// Tested elsewhere (the file that does), not by the registry's harnesses.
    pub tested_in: Option<&'static str>,
}

/// Every op family. The op tests fail when an op listed here has no case.
pub fn registry() -> Vec<Family> {
    vec![
        activation::FAMILY,
        arith::FAMILY,
        matmul::FAMILY,
        norm::FAMILY,
        softmax::FAMILY,
        rope::FAMILY,
        attention::FAMILY,
        cache::FAMILY,
        embedding::FAMILY,
        loss::FAMILY,
        shape::FAMILY,
    ]
}

/// Float literal for C.
fn flit(x: f64) -> String {
    format!("{x:e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_mnemonic_and_attributes() {
        let j = |op: Op| serde_json::to_value(op).unwrap();
        assert_eq!(j(Op::Act(Act::GeluTanh)), serde_json::json!({"op": "gelu"}));
        assert_eq!(
            j(Op::ActGrad(Act::Silu)),
            serde_json::json!({"op": "silu_grad"})
        );
        // Other ops as before: the variant name in snake case.
        let mm = serde_json::json!({"op": "mat_mul", "ta": false, "tb": true});
        assert_eq!(
            j(Op::MatMul {
                ta: false,
                tb: true,
                w: WeightFormat::F32,
                bf16: false,
            }),
            mm
        );
        let bf = serde_json::json!({"op": "mat_mul", "ta": false, "tb": false, "bf16": true});
        assert_eq!(
            j(Op::MatMul {
                ta: false,
                tb: false,
                w: WeightFormat::F32,
                bf16: true
            }),
            bf
        );
    }
}
