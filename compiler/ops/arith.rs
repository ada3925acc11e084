//! `add`, `mul` (with a suffix broadcast) and `scale`: elementwise arithmetic.

use super::{arity, f32s, tensor, Case, Dims, Family, Grad, NodeId, Op, Operand, Real};
use super::{TensorType, Value, Vjp};
use crate::error::Result;

pub(super) fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::Add => "add",
        Op::Mul => "mul",
        _ => "scale",
    }
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    if let Op::Scale { .. } = op {
        arity(t, 1)?;
        f32s(t, &[0])?;
        return Ok(t[0].clone());
    }
    arity(t, 2)?;
    f32s(t, &[0, 1])?;
    if !t[0].shape.ends_with(&t[1].shape) {
        return Err(format!("{} does not broadcast onto {}", t[1], t[0]));
    }
    Ok(t[0].clone())
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    if let Op::Scale { by } = op {
        let s = T::from_f64(*by);
        return tensor(ty, args[0].f().data.iter().map(|&x| x * s).collect());
    }
    let (a, b) = (args[0].f(), args[1].f());
    let nb = b.data.len();
    let add = matches!(op, Op::Add);
    let data = a
        .data
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if add {
                x + b.data[i % nb]
            } else {
                x * b.data[i % nb]
            }
        })
        .collect();
    tensor(ty, data)
}

pub(super) fn vjp(op: &Op, b: &mut dyn Vjp, g: &Grad, out: &mut [Option<NodeId>]) -> Result<()> {
    let (ins, gr, need) = (g.ins, g.gr, g.need);
    match op {
        Op::Add => {
            out[0] = Some(gr);
            if need[1] {
                out[1] = Some(b.unbroadcast(gr, ins[1])?);
            }
        }
        Op::Mul => {
            if need[0] {
                out[0] = Some(b.add(Op::Mul, &[gr, ins[1]], ins[0], "")?);
            }
            if need[1] {
                let full = b.add(Op::Mul, &[gr, ins[0]], ins[1], "")?;
                out[1] = Some(b.unbroadcast(full, ins[1])?);
            }
        }
        &Op::Scale { by } => out[0] = Some(b.add(Op::Scale { by }, &[gr], ins[0], "")?),
        _ => unreachable!(),
    }
    Ok(())
}

pub(super) fn c_expr(op: &Op, a: &[String], t: &[String]) -> (String, String) {
    match op {
        Op::Add => (
            format!("irc_vadd({}, {})", a[0], a[1]),
            format!("({} + {})", t[0], t[1]),
        ),
        Op::Mul => (
            format!("irc_vmul({}, {})", a[0], a[1]),
            format!("{} * {}", t[0], t[1]),
        ),
        Op::Scale { by } => (
            format!("irc_vmul({}, irc_vset1({}f))", a[0], super::flit(*by)),
            format!("{} * {by}", t[0]),
        ),
        _ => unreachable!(),
    }
}

fn ops() -> Vec<&'static str> {
    vec!["add", "mul", "scale"]
}

fn cases(d: Dims) -> Vec<Case> {
    use Operand::{Param, Step, X};
    vec![
        Case::op("scale", Op::Scale { by: -1.7 }, vec![X(7)]),
        Case::op("add", Op::Add, vec![X(7), X(7)]),
        Case::op(
            "add broadcast rows",
            Op::Add,
            vec![X(7), Param(vec![d.t, 7])],
        ),
        Case::op("mul broadcast", Op::Mul, vec![X(7), Param(vec![7])]),
        Case::new(
            "mul of a tensor by itself",
            vec![
                (Op::Scale { by: 0.5 }, vec![X(7)]),
                (Op::Mul, vec![Step(0), Step(0)]),
            ],
        ),
    ]
}

pub(super) const FAMILY: Family = Family {
    name: "arith",
    ops,
    cases,
    tested_in: None,
};
