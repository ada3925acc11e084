//! `softmax` over the last axis and its gradient.

use super::{arity, f32s, tensor, Case, Dims, Family, Grad, NodeId, Op, Operand, Real};
use super::{TensorType, Value, Vjp};
use crate::error::Result;

pub(super) fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::Softmax => "softmax",
        _ => "softmax_grad",
    }
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    if let Op::Softmax = op {
        arity(t, 1)?;
        f32s(t, &[0])?;
        return Ok(t[0].clone());
    }
    arity(t, 2)?;
    f32s(t, &[0, 1])?;
    if t[0].shape != t[1].shape {
        return Err(format!("dy {} and x {} differ", t[0], t[1]));
    }
    Ok(t[0].clone())
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    let c = ty.last();
    if let Op::Softmax = op {
        let x = args[0].f();
        let mut data = Vec::with_capacity(x.data.len());
        for row in x.data.chunks(c) {
            let mx = row.iter().fold(row[0], |m, &v| if v > m { v } else { m });
            let e: Vec<T> = row.iter().map(|&v| (v - mx).exp()).collect();
            let s = e.iter().fold(T::default(), |s, &v| s + v);
            data.extend(e.iter().map(|&v| v / s));
        }
        return tensor(ty, data);
    }
    let (dy, y) = (args[0].f(), args[1].f());
    let mut data = Vec::with_capacity(y.data.len());
    for (gr, yr) in dy.data.chunks(c).zip(y.data.chunks(c)) {
        let dot = gr
            .iter()
            .zip(yr)
            .fold(T::default(), |s, (&g, &p)| s + g * p);
        data.extend(gr.iter().zip(yr).map(|(&g, &p)| p * (g - dot)));
    }
    tensor(ty, data)
}

pub(super) fn vjp(_: &Op, b: &mut dyn Vjp, g: &Grad, out: &mut [Option<NodeId>]) -> Result<()> {
    out[0] = Some(b.add(Op::SoftmaxGrad, &[g.gr, g.n], g.ins[0], "")?);
    Ok(())
}

fn ops() -> Vec<&'static str> {
    vec!["softmax", "softmax_grad"]
}

fn cases(_: Dims) -> Vec<Case> {
    vec![Case::op("softmax", Op::Softmax, vec![Operand::X(7)])]
}

pub(super) const FAMILY: Family = Family {
    name: "softmax",
    ops,
    cases,
    tested_in: None,
};
