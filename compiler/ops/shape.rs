//! Data movement: `narrow` (columns), the views `slice` (rows) and `reshape`,
//! and the ops their gradients are made of: `pad`, `pad_rows`, `reduce_to`.

use super::{arity, f32s, tensor, Case, Dims, Family, Grad, NodeId, Op, Operand, Real};
use super::{TensorType, Value, Vjp};
use crate::error::Result;

pub(super) fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::Narrow { .. } => "narrow",
        Op::Slice { .. } => "slice",
        Op::Reshape { .. } => "reshape",
        Op::ReduceTo { .. } => "reduce_to",
        Op::Pad { .. } => "pad",
        _ => "pad_rows",
    }
}

pub(super) fn attrs(op: &Op) -> String {
    match op {
        Op::ReduceTo { shape } | Op::Reshape { shape } => format!("{shape:?}"),
        Op::Pad { start, total } | Op::PadRows { start, total } => {
            format!("start={start}, total={total}")
        }
        Op::Slice { start, len } | Op::Narrow { start, len } => format!("start={start}, len={len}"),
        _ => unreachable!(),
    }
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    arity(t, 1)?;
    let x = t[0];
    if !matches!(op, Op::Slice { .. } | Op::Reshape { .. }) {
        f32s(t, &[0])?;
    }
    let with_last = |n: usize| {
        let mut out = x.shape.clone();
        *out.last_mut().unwrap() = n;
        TensorType::f32(&out)
    };
    match op {
        &Op::Narrow { start, len } => {
            if x.shape.is_empty() || start + len > x.last() || len == 0 {
                return Err(format!(
                    "columns {start}..{} out of range for {x}",
                    start + len
                ));
            }
            Ok(with_last(len))
        }
        Op::ReduceTo { shape } => {
            if !x.shape.ends_with(shape) {
                return Err(format!("{shape:?} is not a suffix of {x}"));
            }
            Ok(TensorType::f32(shape))
        }
        &Op::Pad { start, total } => {
            if x.shape.is_empty() || start + x.last() > total {
                return Err(format!("cannot pad {x} to {total} columns at {start}"));
            }
            Ok(with_last(total))
        }
        &Op::PadRows { start, total } => {
            if x.shape.is_empty() || start + x.shape[0] > total {
                return Err(format!("cannot pad {x} to {total} rows at {start}"));
            }
            let mut out = x.shape.clone();
            out[0] = total;
            Ok(TensorType::f32(&out))
        }
        &Op::Slice { start, len } => {
            let s = &x.shape;
            if s.is_empty() || start + len > s[0] || len == 0 {
                return Err(format!(
                    "rows {start}..{} out of range for {x}",
                    start + len
                ));
            }
            let mut out = s.clone();
            out[0] = len;
            Ok(TensorType {
                shape: out,
                dtype: x.dtype,
            })
        }
        Op::Reshape { shape } => {
            if shape.iter().product::<usize>() != x.numel() {
                return Err(format!("cannot reshape {x} to {shape:?}"));
            }
            Ok(TensorType {
                shape: shape.clone(),
                dtype: x.dtype,
            })
        }
        _ => unreachable!(),
    }
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    let shape = &ty.shape;
    match *op {
        Op::Slice { start, len } => {
            let row: usize = shape[1..].iter().product();
            let rows = start * row..(start + len) * row;
            return Ok(match args[0] {
                Value::F(x) => Value::F(super::Tensor::new(shape, x.data[rows].to_vec())),
                Value::I(x) => Value::I(x[rows].to_vec()),
            });
        }
        Op::Reshape { .. } => {
            return Ok(match args[0] {
                Value::F(x) => Value::F(super::Tensor::new(shape, x.data.clone())),
                Value::I(x) => Value::I(x.clone()),
            })
        }
        _ => {}
    }
    let x = args[0].f();
    let mut data = vec![T::default(); ty.numel()];
    match *op {
        Op::Narrow { start, len } => {
            let n = x.shape[x.shape.len() - 1];
            let cols = x.data.chunks(n).flat_map(|r| r[start..start + len].iter());
            data = cols.copied().collect();
        }
        Op::ReduceTo { .. } => {
            let n = ty.numel();
            for (i, &v) in x.data.iter().enumerate() {
                data[i % n] += v;
            }
        }
        Op::Pad { start, total } => {
            let len = x.shape[x.shape.len() - 1];
            for (r, row) in x.data.chunks(len).enumerate() {
                data[r * total + start..r * total + start + len].copy_from_slice(row);
            }
        }
        Op::PadRows { start, .. } => {
            let row: usize = shape[1..].iter().product();
            data[start * row..start * row + x.data.len()].copy_from_slice(&x.data);
        }
        _ => unreachable!(),
    }
    tensor(ty, data)
}

pub(super) fn vjp(op: &Op, b: &mut dyn Vjp, g: &Grad, out: &mut [Option<NodeId>]) -> Result<()> {
    let x = g.ins[0];
    let grad = match *op {
        Op::Narrow { start, .. } => {
            let total = b.ty(x).last();
            Op::Pad { start, total }
        }
        Op::Slice { start, .. } => {
            let total = b.ty(x).shape[0];
            Op::PadRows { start, total }
        }
        Op::Reshape { .. } => Op::Reshape {
            shape: b.ty(x).shape.clone(),
        },
        _ => unreachable!(),
    };
    out[0] = Some(b.add(grad, &[g.gr], g.n, "")?);
    Ok(())
}

fn ops() -> Vec<&'static str> {
    vec!["narrow", "slice", "reshape", "reduce_to", "pad", "pad_rows"]
}

fn cases(d: Dims) -> Vec<Case> {
    use Operand::X;
    vec![
        Case::op("narrow", Op::Narrow { start: 3, len: 7 }, vec![X(13)]),
        Case::op("slice", Op::Slice { start: 1, len: 1 }, vec![X(3)]).only_gradcheck(),
        Case::op(
            "reshape",
            Op::Reshape {
                shape: vec![d.b * d.t * 2, 2],
            },
            vec![X(4)],
        )
        .only_gradcheck(),
    ]
}

pub(super) const FAMILY: Family = Family {
    name: "shape",
    ops,
    cases,
    tested_in: None,
};
