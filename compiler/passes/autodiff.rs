//! Reverse-mode autodiff as a pass: append to the graph the ops that compute
//! d loss / d parameter for every parameter, as graph outputs `grad:<name>`.
//!
//! Each op's VJP rule lives with the op (`crate::ops`). When a tensor
//! feeds several ops (the residual stream, tied embeddings) its gradient is
//! the explicit `add` of their contributions, visible in the IR.

use crate::error::Result;
use crate::ir::{Graph, NodeId, Op, TensorType};
use crate::ops::{self, Vjp};
use std::collections::{HashMap, HashSet};

/// Name of the output holding the gradient of parameter `name`.
pub fn grad_output(name: &str) -> String {
    format!("grad:{name}")
}

struct Ad<'a> {
    g: &'a mut Graph,
}

impl Vjp for Ad<'_> {
    fn add(&mut self, op: Op, ins: &[NodeId], of: NodeId, what: &str) -> Result<NodeId> {
        let name = format!("d{}{what}", self.g.node(of).name);
        self.g.add(op, ins, name)
    }

    fn save(&mut self, op: Op, ins: &[NodeId], of: NodeId, what: &str) -> Result<NodeId> {
        let name = format!("{}{what}", self.g.node(of).name);
        self.g.add(op, ins, name)
    }

    fn ty(&self, id: NodeId) -> &TensorType {
        &self.g.node(id).ty
    }

    fn rows(&mut self, x: NodeId) -> Result<NodeId> {
        let ty = &self.g.node(x).ty;
        if ty.shape.len() == 2 {
            return Ok(x);
        }
        let k = ty.last();
        let shape = vec![ty.numel() / k, k];
        let name = format!("{}.rows", self.g.node(x).name);
        self.g.add(Op::Reshape { shape }, &[x], name)
    }

    fn unbroadcast(&mut self, gr: NodeId, x: NodeId) -> Result<NodeId> {
        let shape = self.g.node(x).ty.shape.clone();
        if self.g.node(gr).ty.shape == shape {
            return Ok(gr);
        }
        self.add(Op::ReduceTo { shape }, &[gr], x, ".sum")
    }
}

/// Append the backward of `loss` (a scalar cross-entropy) to `g` and mark an
/// output `grad:<name>` for every parameter that reaches the loss.
pub fn differentiate(g: &mut Graph, loss: NodeId) -> Result<Vec<(String, NodeId)>> {
    let forward = g.ids();
    // Nodes whose value depends on a parameter: only they need gradients.
    let mut needs: HashSet<NodeId> = HashSet::new();
    for &id in &forward {
        let n = g.node(id);
        if matches!(n.op, Op::Param { .. }) || n.inputs.iter().any(|i| needs.contains(i)) {
            needs.insert(id);
        }
    }
    let mut grads: HashMap<NodeId, NodeId> = HashMap::new();
    let mut ad = Ad { g };
    for &id in forward.iter().rev() {
        if !needs.contains(&id) || ad.g.node(id).op.is_leaf() {
            continue;
        }
        let upstream = grads.get(&id).copied();
        if upstream.is_none() && id != loss {
            continue; // does not reach the loss
        }
        let ins = ad.g.node(id).inputs.clone();
        let need: Vec<bool> = ins.iter().map(|i| needs.contains(i)).collect();
        let op = ad.g.node(id).op.clone();
        let contributions = ops::vjp(&op, &mut ad, id, &ins, upstream, &need)?;
        for (slot, (i, c)) in ins.iter().zip(contributions).enumerate() {
            let Some(c) = c else { continue };
            if !need[slot] {
                continue;
            }
            let total = match grads.get(i) {
                // Gradient accumulation: an explicit add per extra use.
                Some(&prev) => {
                    let name = format!("d{}.acc", ad.g.node(*i).name);
                    ad.g.add(Op::Add, &[prev, c], name)?
                }
                None => c,
            };
            grads.insert(*i, total);
        }
    }
    let mut out = vec![];
    for (id, name, _) in ad.g.params() {
        if let Some(&gr) = grads.get(&id) {
            ad.g.mark_output(grad_output(&name), gr);
            out.push((name, gr));
        }
    }
    Ok(out)
}
