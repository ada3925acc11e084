//! `attention`: causal scaled dot-product attention with grouped-query heads,
//! the log-sum-exp of its rows (what its forward keeps for the backward),
//! and its gradients with respect to q, k and v.

use super::{arity, f32s, tensor, Case, Dims, Family, Grad, NodeId, Op, Operand, Real};
use super::{TensorType, Value, Vjp};
use crate::error::Result;

pub(super) fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::Attention { .. } => "attention",
        Op::AttentionLse { .. } => "attention_lse",
        _ => "attention_grad",
    }
}

pub(super) fn attrs(op: &Op) -> String {
    match *op {
        Op::AttentionGrad {
            heads,
            kv_heads,
            head_dim,
            wrt,
        } => format!(
            "heads={heads}, kv_heads={kv_heads}, head_dim={head_dim}, wrt={}",
            ["q", "k", "v"][wrt]
        ),
        Op::Attention {
            heads,
            kv_heads,
            head_dim,
        }
        | Op::AttentionLse {
            heads,
            kv_heads,
            head_dim,
        }
        | Op::CachedAttention {
            heads,
            kv_heads,
            head_dim,
        } => format!("heads={heads}, kv_heads={kv_heads}, head_dim={head_dim}"),
        _ => unreachable!(),
    }
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    match *op {
        Op::Attention {
            heads,
            kv_heads,
            head_dim,
        } => {
            arity(t, 3)?;
            f32s(t, &[0, 1, 2])?;
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
            if kv_heads == 0 || heads % kv_heads != 0 {
                return Err(format!("kv_heads {kv_heads} must divide heads {heads}"));
            }
            Ok(t[0].clone())
        }
        Op::AttentionLse {
            heads,
            kv_heads,
            head_dim,
        } => {
            arity(t, 2)?;
            let fwd = Op::Attention {
                heads,
                kv_heads,
                head_dim,
            };
            let out = fwd.infer(&[t[0], t[1], t[1]])?;
            Ok(TensorType::f32(&[out.shape[0], out.shape[1], heads]))
        }
        Op::AttentionGrad {
            heads,
            kv_heads,
            head_dim,
            wrt,
        } => {
            arity(t, 6)?;
            let fwd = Op::Attention {
                heads,
                kv_heads,
                head_dim,
            };
            let out = fwd.infer(&t[1..4])?;
            if *t[0] != out || *t[4] != out || wrt > 2 {
                return Err(format!(
                    "dout and out must be {out}, got {} and {}",
                    t[0], t[4]
                ));
            }
            let lse = Op::AttentionLse {
                heads,
                kv_heads,
                head_dim,
            }
            .infer(&t[1..3])?;
            if *t[5] != lse {
                return Err(format!("lse must be {lse}, got {}", t[5]));
            }
            Ok(t[1 + wrt].clone())
        }
        _ => unreachable!(),
    }
}

/// Scaled scores `q_i·k_j / √d` of query row `i` over keys `0..=i` (causal).
#[allow(clippy::too_many_arguments)]
fn scores<T: Real>(
    q: &[T],
    k: &[T],
    qo: usize,
    i: usize,
    bi: usize,
    t: usize,
    kw: usize,
    ko_h: usize,
    d: usize,
) -> Vec<T> {
    let scale = T::from_f64(1.0 / (d as f64).sqrt());
    (0..=i)
        .map(|j| {
            let ko = (bi * t + j) * kw + ko_h;
            (0..d).fold(T::default(), |s, e| s + q[qo + e] * k[ko + e]) * scale
        })
        .collect()
}

/// `(max, Σ exp(s - max))` of a row of scores.
fn max_and_sum<T: Real>(s: &[T]) -> (T, T) {
    let mx = s.iter().fold(s[0], |m, &x| if x > m { x } else { m });
    (mx, s.iter().fold(T::default(), |a, &x| a + (x - mx).exp()))
}

/// Softmax probabilities of query row `i` over keys `0..=i` (causal).
#[allow(clippy::too_many_arguments)]
pub(super) fn attention_row<T: Real>(
    q: &[T],
    k: &[T],
    qo: usize,
    i: usize,
    bi: usize,
    t: usize,
    kw: usize,
    ko_h: usize,
    d: usize,
) -> Vec<T> {
    let s = scores(q, k, qo, i, bi, t, kw, ko_h, d);
    let (mx, sum) = max_and_sum(&s);
    s.into_iter().map(|x| (x - mx).exp() / sum).collect()
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    match *op {
        Op::Attention {
            heads,
            kv_heads,
            head_dim,
        } => forward(ty, args, heads, kv_heads, head_dim),
        Op::AttentionLse {
            heads,
            kv_heads,
            head_dim,
        } => log_sum_exp(ty, args, heads, kv_heads, head_dim),
        Op::AttentionGrad { .. } => backward(op, ty, args),
        _ => unreachable!(),
    }
}

fn forward<T: Real>(
    ty: &TensorType,
    args: &[&Value<T>],
    heads: usize,
    kv_heads: usize,
    d: usize,
) -> Result<Value<T>> {
    let (q, k, v) = (args[0].f(), args[1].f(), args[2].f());
    let (b, t) = (ty.shape[0], ty.shape[1]);
    let (qw, kw) = (heads * d, kv_heads * d);
    let group = heads / kv_heads;
    let mut data = vec![T::default(); q.data.len()];
    for bi in 0..b {
        for h in 0..heads {
            let kh = h / group;
            for i in 0..t {
                let qo = (bi * t + i) * qw + h * d;
                let p = attention_row(&q.data, &k.data, qo, i, bi, t, kw, kh * d, d);
                for (j, &pj) in p.iter().enumerate() {
                    let vo = (bi * t + j) * kw + kh * d;
                    for c in 0..d {
                        data[qo + c] += pj * v.data[vo + c];
                    }
                }
            }
        }
    }
    tensor(ty, data)
}

fn log_sum_exp<T: Real>(
    ty: &TensorType,
    args: &[&Value<T>],
    heads: usize,
    kv_heads: usize,
    d: usize,
) -> Result<Value<T>> {
    let (q, k) = (args[0].f(), args[1].f());
    let (b, t) = (ty.shape[0], ty.shape[1]);
    let (qw, kw) = (heads * d, kv_heads * d);
    let group = heads / kv_heads;
    let mut data = vec![T::default(); ty.numel()];
    for bi in 0..b {
        for h in 0..heads {
            for i in 0..t {
                let qo = (bi * t + i) * qw + h * d;
                let s = scores(&q.data, &k.data, qo, i, bi, t, kw, h / group * d, d);
                let (mx, sum) = max_and_sum(&s);
                data[(bi * t + i) * heads + h] = mx + sum.ln();
            }
        }
    }
    tensor(ty, data)
}

/// FlashAttention-2's backward: `p = exp(score - lse)` and
/// `ds = p (dp - dout·out) / √d`, from the forward's output and log-sum-exp.
fn backward<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    let Op::AttentionGrad {
        heads,
        kv_heads,
        head_dim,
        wrt,
    } = *op
    else {
        unreachable!()
    };
    let (dout, q, k, v) = (args[0].f(), args[1].f(), args[2].f(), args[3].f());
    let (out, lse) = (args[4].f(), args[5].f());
    let (b, t) = (q.shape[0], q.shape[1]);
    let d = head_dim;
    let (qw, kw) = (heads * d, kv_heads * d);
    let group = heads / kv_heads;
    let scale = T::from_f64(1.0 / (d as f64).sqrt());
    let mut data = vec![T::default(); ty.numel()];
    for bi in 0..b {
        for h in 0..heads {
            let kh = h / group;
            for i in 0..t {
                let qo = (bi * t + i) * qw + h * d;
                let l = lse.data[(bi * t + i) * heads + h];
                let s = scores(&q.data, &k.data, qo, i, bi, t, kw, kh * d, d);
                let p: Vec<T> = s.into_iter().map(|x| (x - l).exp()).collect();
                let dp: Vec<T> = (0..=i)
                    .map(|j| {
                        let vo = (bi * t + j) * kw + kh * d;
                        (0..d).fold(T::default(), |s, e| s + dout.data[qo + e] * v.data[vo + e])
                    })
                    .collect();
                let pdp = (0..d).fold(T::default(), |s, e| {
                    s + dout.data[qo + e] * out.data[qo + e]
                });
                for j in 0..=i {
                    let o = (bi * t + j) * kw + kh * d;
                    let ds = p[j] * (dp[j] - pdp) * scale;
                    for e in 0..d {
                        match wrt {
                            0 => data[qo + e] += ds * k.data[o + e],
                            1 => data[o + e] += ds * q.data[qo + e],
                            _ => data[o + e] += p[j] * dout.data[qo + e],
                        }
                    }
                }
            }
        }
    }
    tensor(ty, data)
}

pub(super) fn vjp(op: &Op, b: &mut dyn Vjp, g: &Grad, out: &mut [Option<NodeId>]) -> Result<()> {
    let Op::Attention {
        heads,
        kv_heads,
        head_dim,
    } = *op
    else {
        unreachable!()
    };
    let ins = g.ins;
    let lse = Op::AttentionLse {
        heads,
        kv_heads,
        head_dim,
    };
    let lse = b.save(lse, &ins[..2], g.n, ".lse")?;
    for wrt in 0..3 {
        if g.need[wrt] {
            let op = Op::AttentionGrad {
                heads,
                kv_heads,
                head_dim,
                wrt,
            };
            let operands = [g.gr, ins[0], ins[1], ins[2], g.n, lse];
            out[wrt] = Some(b.add(op, &operands, ins[wrt], "")?);
        }
    }
    Ok(())
}

fn ops() -> Vec<&'static str> {
    vec!["attention", "attention_lse", "attention_grad"]
}

fn cases(_: Dims) -> Vec<Case> {
    use Operand::{Param, Step, X};
    let attn = |heads, kv_heads, head_dim| Op::Attention {
        heads,
        kv_heads,
        head_dim,
    };
    let mut v = vec![];
    for (h, kv) in [(2, 2), (4, 2), (3, 1)] {
        let name = format!("attention heads={h} kv={kv}");
        v.push(Case::op(&name, attn(h, kv, 5), vec![X(h * 5), X(kv * 5), X(kv * 5)]).only_kernel());
        v.push(
            Case::op(&name, attn(h, kv, 3), vec![X(h * 3), X(kv * 3), X(kv * 3)]).only_gradcheck(),
        );
    }
    // Shapes across the kernels' tiles: positions that are no multiple of
    // the query rows a step takes (4) or of the key block (128), up to three
    // blocks; head sizes of 8 to 64; MHA and GQA 2:1, 4:1. (One position is
    // the packed case below: there out = v, so dq and dk are 0 and only
    // v's gradient is more than rounding.)
    for (t, h, kv, hd) in [
        (7, 4, 1, 16),
        (33, 4, 2, 24),
        (130, 2, 1, 64),
        (130, 4, 1, 8),
        (257, 2, 2, 16),
    ] {
        let name = format!("attention T={t} heads={h} kv={kv} head_dim={hd}");
        let operands = vec![X(h * hd), X(kv * hd), X(kv * hd)];
        v.push(Case::op(&name, attn(h, kv, hd), operands).at(2, t));
    }
    let narrow = |start, len| (Op::Narrow { start, len }, vec![Step(0)]);
    let mm = Op::MatMul {
        ta: false,
        tb: false,
        bf16: false,
    };
    v.push(Case::new(
        "attention on a packed qkv",
        vec![
            (mm.clone(), vec![X(7), Param(vec![7, 24])]),
            narrow(0, 8),
            narrow(8, 8),
            narrow(16, 8),
            (attn(2, 2, 4), vec![Step(1), Step(2), Step(3)]),
        ],
    ));
    v.push(
        Case::new(
            "attention on a packed qkv, one position",
            vec![
                (mm.clone(), vec![X(7), Param(vec![7, 48])]),
                narrow(0, 16),
                narrow(16, 16),
                narrow(32, 16),
                (attn(2, 2, 8), vec![Step(1), Step(2), Step(3)]),
            ],
        )
        .at(2, 1),
    );
    v.push(
        Case::new(
            "attention on a packed qkv, GQA 2:1",
            vec![
                (mm, vec![X(7), Param(vec![7, 64])]),
                narrow(0, 32),
                narrow(32, 16),
                narrow(48, 16),
                (attn(4, 2, 8), vec![Step(1), Step(2), Step(3)]),
            ],
        )
        .at(2, 33),
    );
    v
}

pub(super) const FAMILY: Family = Family {
    name: "attention",
    ops,
    cases,
    tested_in: None,
};
