//! The key/value cache of generation: `cache_write` (new rows into the cache,
//! in place) and `cached_attention` (attention over the cache). Forward
//! only: generation is never differentiated.

use super::attention::attention_row;
use super::{arity, f32s, tensor, Case, Dims, Family, Op, Real};
use super::{DType, TensorType, Value};
use crate::error::{Error, Result};

pub(super) fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::CacheWrite => "cache_write",
        _ => "cached_attention",
    }
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    match *op {
        Op::CacheWrite => {
            arity(t, 3)?;
            f32s(t, &[0, 1])?;
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
            arity(t, 4)?;
            f32s(t, &[0, 1, 2])?;
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
            if kv_heads == 0 || heads % kv_heads != 0 {
                return Err(format!("kv_heads {kv_heads} must divide heads {heads}"));
            }
            Ok(t[0].clone())
        }
        _ => unreachable!(),
    }
}

fn check_position(p: i32, s: usize) -> Result<()> {
    if p < 0 || p as usize >= s {
        return Err(Error::new(format!(
            "cache position {p} outside the cache's {s} rows"
        )));
    }
    Ok(())
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    let Op::CachedAttention {
        heads,
        kv_heads,
        head_dim,
    } = *op
    else {
        let (cache, new, pos) = (args[0].f(), args[1].f(), args[2].ids());
        let (s, n) = (cache.shape[0], cache.shape[1]);
        let mut data = cache.data.clone();
        for (i, &p) in pos.iter().enumerate() {
            check_position(p, s)?;
            let p = p as usize;
            data[p * n..(p + 1) * n].copy_from_slice(&new.data[i * n..(i + 1) * n]);
        }
        return tensor(ty, data);
    };
    let (q, k, v, pos) = (args[0].f(), args[1].f(), args[2].f(), args[3].ids());
    let s = k.shape[0];
    let d = head_dim;
    let (qw, kw) = (heads * d, kv_heads * d);
    let group = heads / kv_heads;
    let mut data = vec![T::default(); q.data.len()];
    for (i, &p) in pos.iter().enumerate() {
        check_position(p, s)?;
        for h in 0..heads {
            let kh = h / group;
            let qo = i * qw + h * d;
            // Batch 0 of a (1, S) key tensor is the cache itself.
            let pr = attention_row(&q.data, &k.data, qo, p as usize, 0, s, kw, kh * d, d);
            for (j, &pj) in pr.iter().enumerate() {
                let vo = j * kw + kh * d;
                for c in 0..d {
                    data[qo + c] += pj * v.data[vo + c];
                }
            }
        }
    }
    tensor(ty, data)
}

fn ops() -> Vec<&'static str> {
    vec!["cache_write", "cached_attention"]
}

fn cases(_: Dims) -> Vec<Case> {
    vec![]
}

pub(super) const FAMILY: Family = Family {
    name: "cache",
    ops,
    cases,
    tested_in: Some("tests/kv_cache.rs (cached generation against the full forward)"),
};
