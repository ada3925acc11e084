//! The verifier: every invariant the rest of the compiler relies on, checked
//! once, between every pair of passes.

use super::{Graph, NodeId, Op};
use crate::error::{Error, Result};
use std::collections::HashSet;

/// Check that operands exist and come earlier (so id order is topological),
/// that every node's type is what its op's shape rule says, that leaf names
/// are unique, that outputs exist, and that state is only ever updated in
/// place: a `state` is read by one `cache_write` alone (which takes over its
/// memory), and a `cached_attention` reads its keys and values from cache
/// writes.
pub fn verify(g: &Graph) -> Result<()> {
    let mut leaves = HashSet::new();
    for id in g.ids() {
        let n = g.node(id);
        let fail = |msg: String| Err(Error::new(format!("IR verifier: {id} `{}`: {msg}", n.name)));
        for &i in &n.inputs {
            if !g.contains(i) {
                return fail(format!("operand {i} does not exist"));
            }
            if i >= id {
                return fail(format!("operand {i} is not defined before its use"));
            }
        }
        if n.op.is_leaf() {
            if !n.inputs.is_empty() {
                return fail("a leaf has operands".into());
            }
            if !leaves.insert(n.name.clone()) {
                return fail("duplicate input/parameter name".into());
            }
            continue;
        }
        let tys: Vec<_> = n.inputs.iter().map(|&i| &g.node(i).ty).collect();
        match n.op.infer(&tys) {
            Ok(ty) if ty == n.ty => {}
            Ok(ty) => return fail(format!("type is {} but its shape rule gives {ty}", n.ty)),
            Err(e) => return fail(e),
        }
    }
    for id in g.ids() {
        let n = g.node(id);
        let fail = |msg: String| Err(Error::new(format!("IR verifier: {id} `{}`: {msg}", n.name)));
        match n.op {
            Op::State { .. } => {
                let users = g.users(id);
                let writes = |&u: &NodeId| {
                    matches!(g.node(u).op, Op::CacheWrite) && g.node(u).inputs[0] == id
                };
                if users.len() != 1 || !users.iter().all(writes) || g.is_output(id) {
                    return fail(format!(
                        "state must be read by exactly one cache_write (which updates it in place), not by {users:?}"
                    ));
                }
            }
            Op::CachedAttention { .. }
                if !n.inputs[1..3]
                    .iter()
                    .all(|&i| matches!(g.node(i).op, Op::CacheWrite)) =>
            {
                return fail(
                    "cached_attention must read its keys and values from cache writes".into(),
                );
            }
            _ => {}
        }
    }
    for (name, id) in g.outputs() {
        if !g.contains(*id) {
            return Err(Error::new(format!(
                "IR verifier: output `{name}` is {id}, which does not exist"
            )));
        }
    }
    Ok(())
}
