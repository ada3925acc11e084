//! `cross_entropy` (the loss) and its gradient with respect to the logits.

use super::{arity, f32s, tensor, Case, Dims, Family, NodeId, Op, Real, IGNORE_INDEX};
use super::{DType, TensorType, Value, Vjp};
use crate::error::{Error, Result};

pub(super) fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::CrossEntropy => "cross_entropy",
        _ => "cross_entropy_grad",
    }
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    arity(t, 2)?;
    f32s(t, &[0])?;
    if t[1].dtype != DType::I32 || t[0].shape[..t[0].shape.len() - 1] != t[1].shape[..] {
        return Err(format!(
            "expected logits (...,V) and i32 targets (...), got {} and {}",
            t[0], t[1]
        ));
    }
    match op {
        Op::CrossEntropy => Ok(TensorType::f32(&[1])),
        _ => Ok(t[0].clone()),
    }
}

fn check_target(t: i32, v: usize) -> Result<()> {
    if t < 0 || t as usize >= v {
        return Err(Error::new(format!(
            "target {t} outside the vocabulary 0..{v}"
        )));
    }
    Ok(())
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    let (x, tg) = (args[0].f(), args[1].ids());
    let v = x.shape[x.shape.len() - 1];
    if let Op::CrossEntropyGrad = op {
        return grad(ty, x, tg);
    }
    let mut total = T::default();
    let mut count = 0usize;
    for (row, &t) in x.data.chunks(v).zip(tg) {
        if t == IGNORE_INDEX {
            continue;
        }
        check_target(t, v)?;
        let mx = row.iter().fold(row[0], |m, &s| if s > m { s } else { m });
        let lse = row
            .iter()
            .fold(T::default(), |s, &r| s + (r - mx).exp())
            .ln()
            + mx;
        total += lse - row[t as usize];
        count += 1;
    }
    // All targets ignored: the loss is defined as 0 (PyTorch gives NaN).
    let loss = if count == 0 {
        T::default()
    } else {
        total / T::from_f64(count as f64)
    };
    tensor(ty, vec![loss])
}

fn grad<T: Real>(ty: &TensorType, x: &super::Tensor<T>, tg: &[i32]) -> Result<Value<T>> {
    let v = ty.last();
    let count = tg.iter().filter(|&&t| t != IGNORE_INDEX).count().max(1);
    let inv = T::from_f64(1.0 / count as f64);
    let mut data = vec![T::default(); x.data.len()];
    for (r, (row, &t)) in x.data.chunks(v).zip(tg).enumerate() {
        if t == IGNORE_INDEX {
            continue;
        }
        check_target(t, v)?;
        let mx = row.iter().fold(row[0], |m, &s| if s > m { s } else { m });
        let sum = row.iter().fold(T::default(), |s, &r| s + (r - mx).exp());
        for j in 0..v {
            let p = (row[j] - mx).exp() / sum;
            let y = if j == t as usize {
                T::from_f64(1.0)
            } else {
                T::default()
            };
            data[r * v + j] = (p - y) * inv;
        }
    }
    tensor(ty, data)
}

/// The VJP of the loss itself, seeded with d loss / d loss = 1.
pub(super) fn seed(
    b: &mut dyn Vjp,
    ins: &[NodeId],
    gr: Option<NodeId>,
    out: &mut [Option<NodeId>],
) -> Result<()> {
    if gr.is_some() {
        return Err(Error::new(
            "autodiff: cross_entropy must be the loss itself (its gradient is seeded with 1)",
        ));
    }
    out[0] = Some(b.add(Op::CrossEntropyGrad, ins, ins[0], "")?);
    Ok(())
}

fn ops() -> Vec<&'static str> {
    vec!["cross_entropy", "cross_entropy_grad"]
}

/// Every harness ends in a cross-entropy over logits with an ignored target.
fn cases(_: Dims) -> Vec<Case> {
    vec![]
}

pub(super) const FAMILY: Family = Family {
    name: "loss",
    ops,
    cases,
    tested_in: None,
};
