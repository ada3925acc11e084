//! `embedding` (rows of a table by id) and its gradient (rows summed by id).

use super::{arity, f32s, tensor, Case, Dims, Family, Grad, NodeId, Op, Operand, Real};
use super::{DType, TensorType, Value, Vjp};
use crate::error::{Error, Result};

pub(super) fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::Embedding => "embedding",
        _ => "embedding_grad",
    }
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    arity(t, 2)?;
    f32s(t, &[0])?;
    if let Op::EmbeddingGrad { vocab } = op {
        let c = t[0].last();
        if t[1].dtype != DType::I32 || t[0].shape[..t[0].shape.len() - 1] != t[1].shape[..] {
            return Err(format!(
                "expected dy (...,C) and ids (...), got {} and {}",
                t[0], t[1]
            ));
        }
        return Ok(TensorType::f32(&[*vocab, c]));
    }
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

fn check_id(id: i32, v: usize) -> Result<()> {
    if id < 0 || id as usize >= v {
        return Err(Error::new(format!(
            "token id {id} outside the vocabulary 0..{v}"
        )));
    }
    Ok(())
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    if let Op::EmbeddingGrad { vocab } = *op {
        let (dy, ids) = (args[0].f(), args[1].ids());
        let c = ty.last();
        let mut data = vec![T::default(); vocab * c];
        for (row, &id) in dy.data.chunks(c).zip(ids) {
            check_id(id, vocab)?;
            for j in 0..c {
                data[id as usize * c + j] += row[j];
            }
        }
        return tensor(ty, data);
    }
    let table = args[0].f();
    let ids = args[1].ids();
    let (v, c) = (table.shape[0], table.shape[1]);
    let mut data = Vec::with_capacity(ids.len() * c);
    for &t in ids {
        check_id(t, v)?;
        data.extend_from_slice(&table.data[t as usize * c..(t as usize + 1) * c]);
    }
    tensor(ty, data)
}

pub(super) fn vjp(_: &Op, b: &mut dyn Vjp, g: &Grad, out: &mut [Option<NodeId>]) -> Result<()> {
    let vocab = b.ty(g.ins[0]).shape[0];
    out[0] = Some(b.add(Op::EmbeddingGrad { vocab }, &[g.gr, g.ins[1]], g.ins[0], "")?);
    Ok(())
}

fn ops() -> Vec<&'static str> {
    vec!["embedding", "embedding_grad"]
}

fn cases(_: Dims) -> Vec<Case> {
    use Operand::{Ids, Param};
    // The kernel harness starts with an embedding of its own.
    let case = Case::op("embedding", Op::Embedding, vec![Param(vec![6, 4]), Ids(6)]);
    vec![case.only_gradcheck()]
}

pub(super) const FAMILY: Family = Family {
    name: "embedding",
    ops,
    cases,
    tested_in: None,
};
