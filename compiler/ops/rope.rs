//! `rope`: rotary position embedding (Llama's rotate-half convention); its
//! gradient is the inverse rotation.

use super::{arity, f32s, tensor, Case, Dims, Family, Grad, NodeId, Op, Operand, Real};
use super::{DType, TensorType, Value, Vjp};
use crate::error::Result;

pub(super) fn attrs(op: &Op) -> String {
    let Op::Rope {
        head_dim,
        theta,
        inverse,
    } = op
    else {
        unreachable!()
    };
    format!(
        "head_dim={head_dim}, theta={theta}{}",
        if *inverse { ", inverse" } else { "" }
    )
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    let Op::Rope { head_dim, .. } = op else {
        unreachable!()
    };
    // The positions are optional.
    arity(t, t.len().clamp(1, 2))?;
    f32s(t, &[0])?;
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

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    let Op::Rope {
        head_dim,
        theta,
        inverse,
    } = *op
    else {
        unreachable!()
    };
    let shape = &ty.shape;
    let x = args[0].f();
    let (b, t, hd) = (shape[0], shape[1], shape[2]);
    let positions = (args.len() == 2).then(|| args[1].ids());
    let half = head_dim / 2;
    let mut data = x.data.clone();
    for bi in 0..b {
        for ti in 0..t {
            let pos = positions.map_or(ti as f64, |p| p[bi * t + ti] as f64);
            let pos_row = bi * t + ti;
            for h in 0..hd / head_dim {
                let o = pos_row * hd + h * head_dim;
                for i in 0..half {
                    let inv = T::from_f64(1.0)
                        / T::from_f64(theta).powf(T::from_f64((2 * i) as f64 / head_dim as f64));
                    let ang = T::from_f64(pos) * inv;
                    let (c, s) = (ang.cos(), if inverse { -ang.sin() } else { ang.sin() });
                    let (x1, x2) = (x.data[o + i], x.data[o + i + half]);
                    data[o + i] = x1 * c - x2 * s;
                    data[o + i + half] = x2 * c + x1 * s;
                }
            }
        }
    }
    tensor(ty, data)
}

pub(super) fn vjp(op: &Op, b: &mut dyn Vjp, g: &Grad, out: &mut [Option<NodeId>]) -> Result<()> {
    let Op::Rope {
        head_dim,
        theta,
        inverse,
    } = *op
    else {
        unreachable!()
    };
    let op = Op::Rope {
        head_dim,
        theta,
        inverse: !inverse,
    };
    // At the same positions, when they are given.
    let mut args = vec![g.gr];
    args.extend(&g.ins[1..]);
    out[0] = Some(b.add(op, &args, g.ins[0], "")?);
    Ok(())
}

fn ops() -> Vec<&'static str> {
    vec!["rope"]
}

fn cases(_: Dims) -> Vec<Case> {
    let op = |head_dim, theta| Op::Rope {
        head_dim,
        theta,
        inverse: false,
    };
    vec![
        Case::op("rope", op(6, 500.0), vec![Operand::X(12)]).only_kernel(),
        Case::op("rope", op(4, 100.0), vec![Operand::X(8)]).only_gradcheck(),
    ]
}

pub(super) const FAMILY: Family = Family {
    name: "rope",
    ops,
    cases,
    tested_in: None,
};
