//! The primitive ops: what each computes (see `interp.rs` for the reference
//! semantics, written in the same order) and its shape rule.

use super::{DType, TensorType};
use serde::Serialize;

/// A primitive op. Operand order is part of the definition (see each variant).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
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
    /// `ta`/`tb` read the last two axes of `a`/`b` transposed.
    MatMul { ta: bool, tb: bool },
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
    /// `[x]`: GELU, tanh approximation (GPT-2's `gelu_new`).
    Gelu,
    /// `[x]`: `x * sigmoid(x)`.
    Silu,
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

    // ---- Ops that gradients are made of (see passes/autodiff.rs). ----
    /// `[x (..., S)] -> (S)`: sum over the leading axes down to the suffix
    /// `shape` (`[]` sums everything).
    ReduceTo { shape: Vec<usize> },
    /// `[x (..., len)] -> (..., total)`: x at columns `start..`, zeros elsewhere.
    Pad { start: usize, total: usize },
    /// `[x (len, ...)] -> (total, ...)`: x at rows `start..`, zeros elsewhere.
    PadRows { start: usize, total: usize },
    /// `[dy, x] -> dy * gelu'(x)`.
    GeluGrad,
    /// `[dy, x] -> dy * silu'(x)`.
    SiluGrad,
    /// `[dy, y] -> y * (dy - Σ dy·y)` over the last axis (y = softmax output).
    SoftmaxGrad,
    /// `[dy, x, w] -> dx` of `LayerNorm` (or of `RmsNorm` when `rms`).
    NormGradX { eps: f64, rms: bool },
    /// `[dy, x] -> dw (C)`: Σ over rows of dy · x̂.
    NormGradW { eps: f64, rms: bool },
    /// `[dout, q, k, v] -> dq | dk | dv` (`wrt` = 0, 1, 2) of `Attention`.
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

/// The value of `ignore_index`, as in PyTorch.
pub const IGNORE_INDEX: i32 = -100;

impl Op {
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Param { .. } => "param",
            Op::State { .. } => "state",
            Op::Embedding => "embedding",
            Op::MatMul { .. } => "matmul",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Scale { .. } => "scale",
            Op::LayerNorm { .. } => "layernorm",
            Op::RmsNorm { .. } => "rmsnorm",
            Op::Gelu => "gelu",
            Op::Silu => "silu",
            Op::Softmax => "softmax",
            Op::Rope { .. } => "rope",
            Op::Attention { .. } => "attention",
            Op::CrossEntropy => "cross_entropy",
            Op::CacheWrite => "cache_write",
            Op::CachedAttention { .. } => "cached_attention",
            Op::Narrow { .. } => "narrow",
            Op::Slice { .. } => "slice",
            Op::Reshape { .. } => "reshape",
            Op::ReduceTo { .. } => "reduce_to",
            Op::Pad { .. } => "pad",
            Op::PadRows { .. } => "pad_rows",
            Op::GeluGrad => "gelu_grad",
            Op::SiluGrad => "silu_grad",
            Op::SoftmaxGrad => "softmax_grad",
            Op::NormGradX { rms: false, .. } => "layernorm_grad_x",
            Op::NormGradX { rms: true, .. } => "rmsnorm_grad_x",
            Op::NormGradW { rms: false, .. } => "layernorm_grad_w",
            Op::NormGradW { rms: true, .. } => "rmsnorm_grad_w",
            Op::AttentionGrad { .. } => "attention_grad",
            Op::EmbeddingGrad { .. } => "embedding_grad",
            Op::CrossEntropyGrad => "cross_entropy_grad",
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
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Add
                | Op::Mul
                | Op::Scale { .. }
                | Op::Gelu
                | Op::Silu
                | Op::GeluGrad
                | Op::SiluGrad
        )
    }

    /// Attributes as `{k=v, ...}` for the printer ("" when none).
    pub fn attrs(&self) -> String {
        let a = match self {
            Op::Input { name } | Op::Param { name } | Op::State { name } => format!("\"{name}\""),
            Op::MatMul { ta, tb } => {
                let mut v = vec![];
                if *ta {
                    v.push("ta");
                }
                if *tb {
                    v.push("tb");
                }
                v.join(", ")
            }
            Op::Scale { by } => format!("by={by}"),
            Op::LayerNorm { eps } | Op::RmsNorm { eps } => format!("eps={eps:e}"),
            Op::Rope {
                head_dim,
                theta,
                inverse,
            } => format!(
                "head_dim={head_dim}, theta={theta}{}",
                if *inverse { ", inverse" } else { "" }
            ),
            Op::ReduceTo { shape } => format!("{shape:?}"),
            Op::Pad { start, total } | Op::PadRows { start, total } => {
                format!("start={start}, total={total}")
            }
            Op::NormGradX { eps, .. } | Op::NormGradW { eps, .. } => format!("eps={eps:e}"),
            Op::AttentionGrad {
                heads,
                kv_heads,
                head_dim,
                wrt,
            } => format!(
                "heads={heads}, kv_heads={kv_heads}, head_dim={head_dim}, wrt={}",
                ["q", "k", "v"][*wrt]
            ),
            Op::EmbeddingGrad { vocab } => format!("vocab={vocab}"),
            Op::Attention {
                heads,
                kv_heads,
                head_dim,
            }
            | Op::CachedAttention {
                heads,
                kv_heads,
                head_dim,
            } => format!("heads={heads}, kv_heads={kv_heads}, head_dim={head_dim}"),
            Op::Slice { start, len } | Op::Narrow { start, len } => {
                format!("start={start}, len={len}")
            }
            Op::Reshape { shape } => format!("{shape:?}"),
            _ => String::new(),
        };
        if a.is_empty() {
            a
        } else {
            format!(" {{{a}}}")
        }
    }

    /// Shape rule: the output type for operands of these types, or what is wrong.
    pub fn infer(&self, t: &[&TensorType]) -> Result<TensorType, String> {
        let arity = match self {
            Op::Input { .. } | Op::Param { .. } | Op::State { .. } => 0,
            // Rope's positions are optional.
            Op::Rope { .. } => t.len().clamp(1, 2),
            Op::Scale { .. }
            | Op::Gelu
            | Op::Silu
            | Op::Softmax
            | Op::Slice { .. }
            | Op::Narrow { .. }
            | Op::Reshape { .. }
            | Op::ReduceTo { .. }
            | Op::Pad { .. }
            | Op::PadRows { .. } => 1,
            Op::GeluGrad
            | Op::SiluGrad
            | Op::SoftmaxGrad
            | Op::NormGradW { .. }
            | Op::EmbeddingGrad { .. }
            | Op::CrossEntropyGrad => 2,
            Op::NormGradX { .. } | Op::CacheWrite => 3,
            Op::AttentionGrad { .. } | Op::CachedAttention { .. } => 4,
            Op::Embedding | Op::MatMul { .. } | Op::Add | Op::Mul | Op::CrossEntropy => 2,
            Op::RmsNorm { .. } => 2,
            Op::LayerNorm { .. } | Op::Attention { .. } => 3,
        };
        if t.len() != arity {
            return Err(format!("expected {arity} operands, got {}", t.len()));
        }
        let f32s = |idx: &[usize]| -> Result<(), String> {
            for &i in idx {
                if t[i].dtype != DType::F32 {
                    return Err(format!("operand {i} must be f32, is {}", t[i]));
                }
            }
            Ok(())
        };
        match self {
            Op::Input { .. } | Op::Param { .. } | Op::State { .. } => {
                Err("leaves have no shape rule".into())
            }
            Op::Embedding => {
                f32s(&[0])?;
                if t[0].shape.len() != 2 || t[1].dtype != DType::I32 {
                    return Err(format!(
                        "expected table (V,C) f32 and ids i32, got {} and {}",
                        t[0], t[1]
                    ));
                }
                let mut s = t[1].shape.clone();
                s.push(t[0].shape[1]);
                Ok(TensorType::f32(&s))
            }
            Op::MatMul { ta, tb } => {
                f32s(&[0, 1])?;
                let (a, b) = (&t[0].shape, &t[1].shape);
                if a.len() < 2 || b.len() < 2 {
                    return Err(format!(
                        "matmul needs at least 2-d operands, got {} and {}",
                        t[0], t[1]
                    ));
                }
                let (m, ka) = if *ta {
                    (a[a.len() - 1], a[a.len() - 2])
                } else {
                    (a[a.len() - 2], a[a.len() - 1])
                };
                let (kb, n) = if *tb {
                    (b[b.len() - 1], b[b.len() - 2])
                } else {
                    (b[b.len() - 2], b[b.len() - 1])
                };
                if ka != kb {
                    return Err(format!(
                        "inner dimensions differ: {} vs {} ({} · {})",
                        ka, kb, t[0], t[1]
                    ));
                }
                if b.len() > 2 && b[..b.len() - 2] != a[..a.len() - 2] {
                    return Err(format!("batch axes differ: {} vs {}", t[0], t[1]));
                }
                let mut s = a[..a.len() - 2].to_vec();
                s.extend([m, n]);
                Ok(TensorType::f32(&s))
            }
            Op::Add | Op::Mul => {
                f32s(&[0, 1])?;
                if !t[0].shape.ends_with(&t[1].shape) {
                    return Err(format!("{} does not broadcast onto {}", t[1], t[0]));
                }
                Ok(t[0].clone())
            }
            Op::Scale { .. } | Op::Gelu | Op::Silu | Op::Softmax => {
                f32s(&[0])?;
                Ok(t[0].clone())
            }
            Op::LayerNorm { .. } | Op::RmsNorm { .. } => {
                f32s(&(0..t.len()).collect::<Vec<_>>())?;
                let c = t[0].last();
                for w in &t[1..] {
                    if w.shape != [c] {
                        return Err(format!("norm weight must be ({c}), got {w}"));
                    }
                }
                Ok(t[0].clone())
            }
            Op::Rope { head_dim, .. } => {
                f32s(&[0])?;
                if t[0].shape.len() != 3
                    || !t[0].shape[2].is_multiple_of(*head_dim)
                    || !head_dim.is_multiple_of(2)
                {
                    return Err(format!(
                        "rope expects (B,T,H*{head_dim}) with an even head_dim, got {}",
                        t[0]
                    ));
                }
                if t.len() == 2 && (t[1].dtype != DType::I32 || t[1].shape != t[0].shape[..2]) {
                    return Err(format!(
                        "rope positions must be i32 {:?}, got {}",
                        &t[0].shape[..2],
                        t[1]
                    ));
                }
                Ok(t[0].clone())
            }
            Op::Attention {
                heads,
                kv_heads,
                head_dim,
            } => {
                f32s(&[0, 1, 2])?;
                let q = &t[0].shape;
                if q.len() != 3 || q[2] != heads * head_dim {
                    return Err(format!(
                        "q must be (B,T,{}), got {}",
                        heads * head_dim,
                        t[0]
                    ));
                }
                let kv = [q[0], q[1], kv_heads * head_dim];
                if t[1].shape != kv || t[2].shape != kv {
                    return Err(format!("k and v must be {kv:?}, got {} and {}", t[1], t[2]));
                }
                if *kv_heads == 0 || heads % kv_heads != 0 {
                    return Err(format!("kv_heads {kv_heads} must divide heads {heads}"));
                }
                Ok(t[0].clone())
            }
            Op::CacheWrite => {
                f32s(&[0, 1])?;
                let (c, x, p) = (&t[0].shape, &t[1].shape, t[2]);
                if c.len() != 2 || x.len() != 3 || x[0] != 1 || x[2] != c[1] {
                    return Err(format!(
                        "expected cache (S, N) and new rows (1, T, N), got {} and {}",
                        t[0], t[1]
                    ));
                }
                if p.dtype != DType::I32 || p.shape != x[..2] {
                    return Err(format!("positions must be i32 {:?}, got {p}", &x[..2]));
                }
                Ok(t[0].clone())
            }
            Op::CachedAttention {
                heads,
                kv_heads,
                head_dim,
            } => {
                f32s(&[0, 1, 2])?;
                let q = &t[0].shape;
                if q.len() != 3 || q[0] != 1 || q[2] != heads * head_dim {
                    return Err(format!(
                        "q must be (1,T,{}), got {}",
                        heads * head_dim,
                        t[0]
                    ));
                }
                let kvd = kv_heads * head_dim;
                if t[1].shape.len() != 2 || t[1].shape[1] != kvd || t[2].shape != t[1].shape {
                    return Err(format!(
                        "k and v caches must be (S, {kvd}), got {} and {}",
                        t[1], t[2]
                    ));
                }
                if t[3].dtype != DType::I32 || t[3].shape != q[..2] {
                    return Err(format!("positions must be i32 {:?}, got {}", &q[..2], t[3]));
                }
                if *kv_heads == 0 || heads % kv_heads != 0 {
                    return Err(format!("kv_heads {kv_heads} must divide heads {heads}"));
                }
                Ok(t[0].clone())
            }
            Op::CrossEntropy => {
                f32s(&[0])?;
                if t[1].dtype != DType::I32 || t[0].shape[..t[0].shape.len() - 1] != t[1].shape[..]
                {
                    return Err(format!(
                        "expected logits (...,V) and i32 targets (...), got {} and {}",
                        t[0], t[1]
                    ));
                }
                Ok(TensorType::f32(&[1]))
            }
            Op::Narrow { start, len } => {
                f32s(&[0])?;
                let n = t[0].last();
                if t[0].shape.is_empty() || start + len > n || *len == 0 {
                    return Err(format!(
                        "columns {start}..{} out of range for {}",
                        start + len,
                        t[0]
                    ));
                }
                let mut out = t[0].shape.clone();
                *out.last_mut().unwrap() = *len;
                Ok(TensorType::f32(&out))
            }
            Op::ReduceTo { shape } => {
                f32s(&[0])?;
                if !t[0].shape.ends_with(shape) {
                    return Err(format!("{shape:?} is not a suffix of {}", t[0]));
                }
                Ok(TensorType::f32(shape))
            }
            Op::Pad { start, total } => {
                f32s(&[0])?;
                if t[0].shape.is_empty() || start + t[0].last() > *total {
                    return Err(format!("cannot pad {} to {total} columns at {start}", t[0]));
                }
                let mut out = t[0].shape.clone();
                *out.last_mut().unwrap() = *total;
                Ok(TensorType::f32(&out))
            }
            Op::PadRows { start, total } => {
                f32s(&[0])?;
                if t[0].shape.is_empty() || start + t[0].shape[0] > *total {
                    return Err(format!("cannot pad {} to {total} rows at {start}", t[0]));
                }
                let mut out = t[0].shape.clone();
                out[0] = *total;
                Ok(TensorType::f32(&out))
            }
            Op::GeluGrad | Op::SiluGrad | Op::SoftmaxGrad => {
                f32s(&[0, 1])?;
                if t[0].shape != t[1].shape {
                    return Err(format!("dy {} and x {} differ", t[0], t[1]));
                }
                Ok(t[0].clone())
            }
            Op::NormGradX { .. } | Op::NormGradW { .. } => {
                f32s(&(0..t.len()).collect::<Vec<_>>())?;
                if t[0].shape != t[1].shape {
                    return Err(format!("dy {} and x {} differ", t[0], t[1]));
                }
                let c = t[0].last();
                if t.len() == 3 {
                    if t[2].shape != [c] {
                        return Err(format!("norm weight must be ({c}), got {}", t[2]));
                    }
                    return Ok(t[0].clone());
                }
                Ok(TensorType::f32(&[c]))
            }
            Op::AttentionGrad {
                heads,
                kv_heads,
                head_dim,
                wrt,
            } => {
                let fwd = Op::Attention {
                    heads: *heads,
                    kv_heads: *kv_heads,
                    head_dim: *head_dim,
                };
                let out = fwd.infer(&t[1..])?;
                if *t[0] != out || *wrt > 2 {
                    return Err(format!("dout must be {out}, got {}", t[0]));
                }
                Ok(t[1 + wrt].clone())
            }
            Op::EmbeddingGrad { vocab } => {
                f32s(&[0])?;
                let c = t[0].last();
                if t[1].dtype != DType::I32 || t[0].shape[..t[0].shape.len() - 1] != t[1].shape[..]
                {
                    return Err(format!(
                        "expected dy (...,C) and ids (...), got {} and {}",
                        t[0], t[1]
                    ));
                }
                Ok(TensorType::f32(&[*vocab, c]))
            }
            Op::CrossEntropyGrad => {
                Op::CrossEntropy.infer(t)?;
                Ok(t[0].clone())
            }
            Op::Slice { start, len } => {
                let s = &t[0].shape;
                if s.is_empty() || start + len > s[0] || *len == 0 {
                    return Err(format!(
                        "rows {start}..{} out of range for {}",
                        start + len,
                        t[0]
                    ));
                }
                let mut out = s.clone();
                out[0] = *len;
                Ok(TensorType {
                    shape: out,
                    dtype: t[0].dtype,
                })
            }
            Op::Reshape { shape } => {
                if shape.iter().product::<usize>() != t[0].numel() {
                    return Err(format!("cannot reshape {} to {shape:?}", t[0]));
                }
                Ok(TensorType {
                    shape: shape.clone(),
                    dtype: t[0].dtype,
                })
            }
        }
    }
}
