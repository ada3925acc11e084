//! `attention`: causal scaled dot-product attention with grouped-query heads,
//! and its gradients with respect to q, k and v.

use super::{arity, f32s, tensor, Case, Dims, Family, Grad, NodeId, Op, Operand, Real};
use super::{TensorType, Value, Vjp};
use crate::error::Result;

pub(super) fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::Attention { .. } => "attention",
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
        Op::AttentionGrad {
            heads,
            kv_heads,
            head_dim,
            wrt,
        } => {
            arity(t, 4)?;
            let fwd = Op::Attention {
                heads,
                kv_heads,
                head_dim,
            };
            let out = fwd.infer(&t[1..])?;
            if *t[0] != out || wrt > 2 {
                return Err(format!("dout must be {out}, got {}", t[0]));
            }
            Ok(t[1 + wrt].clone())
        }
        _ => unreachable!(),
    }
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
    let scale = T::from_f64(1.0 / (d as f64).sqrt());
    let scores: Vec<T> = (0..=i)
        .map(|j| {
            let ko = (bi * t + j) * kw + ko_h;
            (0..d).fold(T::default(), |s, e| s + q[qo + e] * k[ko + e]) * scale
        })
        .collect();
    let mx = scores
        .iter()
        .fold(scores[0], |m, &s| if s > m { s } else { m });
    let e: Vec<T> = scores.iter().map(|&s| (s - mx).exp()).collect();
    let sum = e.iter().fold(T::default(), |s, &x| s + x);
    e.into_iter().map(|x| x / sum).collect()
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    match *op {
        Op::Attention {
            heads,
            kv_heads,
            head_dim,
        } => forward(ty, args, heads, kv_heads, head_dim),
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
                let p = attention_row(&q.data, &k.data, qo, i, bi, t, kw, kh * d, d);
                let dp: Vec<T> = (0..=i)
                    .map(|j| {
                        let vo = (bi * t + j) * kw + kh * d;
                        (0..d).fold(T::default(), |s, e| s + dout.data[qo + e] * v.data[vo + e])
                    })
                    .collect();
                let pdp = p
                    .iter()
                    .zip(&dp)
                    .fold(T::default(), |s, (&a, &b)| s + a * b);
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
    for wrt in 0..3 {
        if g.need[wrt] {
            let op = Op::AttentionGrad {
                heads,
                kv_heads,
                head_dim,
                wrt,
            };
            out[wrt] = Some(b.add(op, &[g.gr, ins[0], ins[1], ins[2]], ins[wrt], "")?);
        }
    }
    Ok(())
}

fn ops() -> Vec<&'static str> {
    vec!["attention", "attention_grad"]
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
    let narrow = |start| (Op::Narrow { start, len: 8 }, vec![Step(0)]);
    v.push(Case::new(
        "attention on a packed qkv",
        vec![
            (
                Op::MatMul {
                    ta: false,
                    tb: false,
                },
                vec![X(7), Param(vec![7, 24])],
            ),
            narrow(0),
            narrow(8),
            narrow(16),
            (attn(2, 2, 4), vec![Step(1), Step(2), Step(3)]),
        ],
    ));
    v
}

pub(super) const FAMILY: Family = Family {
    name: "attention",
    ops,
    cases,
    tested_in: None,
};
