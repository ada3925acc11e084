//! The reference interpreter: the meaning of every op, in plain loops, for
//! f32 and f64. It is the oracle the compiled kernels are checked against, so
//! it favours the obvious over the fast. Each op's evaluation lives with the
//! op (`crate::ops`); this walks the graph and feeds the leaves.

use super::{DType, Graph, NodeId, Op, Real, Tensor, Value};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};

/// Run `g` on `feeds` (inputs and parameters by name). Returns every node's
/// value, so tests can compare intermediate tensors too.
pub fn interpret<T: Real>(
    g: &Graph,
    feeds: &BTreeMap<String, Value<T>>,
) -> Result<HashMap<NodeId, Value<T>>> {
    let mut vals: HashMap<NodeId, Value<T>> = HashMap::new();
    for id in g.ids() {
        let node = g.node(id);
        let shape = &node.ty.shape;
        let out: Value<T> = match &node.op {
            Op::Input { name } | Op::Param { name } | Op::State { name } => {
                let v = feeds
                    .get(name)
                    .ok_or_else(|| Error::new(format!("interpreter: no value fed for `{name}`")))?;
                let n = match v {
                    Value::F(t) => t.data.len(),
                    Value::I(d) => d.len(),
                };
                let want_int = node.ty.dtype == DType::I32;
                if n != node.ty.numel() || matches!(v, Value::I(_)) != want_int {
                    return Err(Error::new(format!(
                        "interpreter: `{name}` expects {}, got {n} elements",
                        node.ty
                    )));
                }
                match v {
                    Value::F(t) => Value::F(Tensor::new(shape, t.data.clone())),
                    Value::I(d) => Value::I(d.clone()),
                }
            }
            op => {
                let args: Vec<&Value<T>> = node.inputs.iter().map(|i| &vals[i]).collect();
                op.eval(&node.ty, &args)?
            }
        };
        vals.insert(id, out);
    }
    Ok(vals)
}
