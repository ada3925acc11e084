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
    /// Forward value → the backward's recomputed copy of it.
    copies: HashMap<NodeId, NodeId>,
}

impl Ad<'_> {
    /// The name gradients of `id` are named after: a copy's original's.
    fn name(&self, id: NodeId) -> &str {
        let orig = self.copies.iter().find(|(_, &c)| c == id).map(|(&o, _)| o);
        &self.g.node(orig.unwrap_or(id)).name
    }
}

impl Vjp for Ad<'_> {
    fn add(&mut self, op: Op, ins: &[NodeId], of: NodeId, what: &str) -> Result<NodeId> {
        let name = format!("d{}{what}", self.name(of));
        self.g.add(op, ins, name)
    }

    fn save(&mut self, op: Op, ins: &[NodeId], of: NodeId, what: &str) -> Result<NodeId> {
        let name = format!("{}{what}", self.name(of));
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
        let name = format!("{}.rows", self.name(x));
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

/// Forward values the backward recomputes rather than keeps: an activation
/// or a norm of a value that needs a gradient. Their own backward reads
/// their inputs (an activation's derivative its input; a norm's gradients
/// x and the weight), so the copy keeps nothing alive that would not live
/// anyway, and costs one elementwise pass or one norm.
fn recomputable(g: &Graph, v: NodeId, needs: &HashSet<NodeId>) -> bool {
    is_recomputable_op(&g.node(v).op) && needs.contains(&g.node(v).inputs[0])
}

/// The ops whose values the backward recomputes (no backward rule makes
/// one of them otherwise).
pub fn is_recomputable_op(op: &Op) -> bool {
    matches!(op, Op::Act(_) | Op::LayerNorm { .. } | Op::RmsNorm { .. })
}

impl Ad<'_> {
    /// `ins` with each recomputable value replaced by its copy: an earlier
    /// one, or a new node (so numbered just before the rule's nodes that
    /// read it, which is where the kernel order puts it).
    fn recomputed(&mut self, ins: &[NodeId], needs: &HashSet<NodeId>) -> Result<Vec<NodeId>> {
        let mut reads = Vec::with_capacity(ins.len());
        for &i in ins {
            if !recomputable(self.g, i, needs) {
                reads.push(i);
                continue;
            }
            let copy = match self.copies.get(&i) {
                Some(&c) => c,
                None => {
                    let n = self.g.node(i);
                    let (op, inputs, name) = (n.op.clone(), n.inputs.clone(), n.name.clone());
                    let c = self.g.add(op, &inputs, format!("{name}.recomputed"))?;
                    self.copies.insert(i, c);
                    c
                }
            };
            reads.push(copy);
        }
        Ok(reads)
    }

    /// Forget the copies among `reads` (slot by slot those of `ins`, or
    /// their copies) that the rule did not read (the gradient of an add
    /// reads no values): the next reader makes its own, just before it, and
    /// dce removes this one. (Not removed here: the graph may reuse a
    /// removed node's id, and ids must only grow.)
    fn drop_unread(&mut self, ins: &[NodeId], reads: &[NodeId]) {
        for (i, &r) in ins.iter().zip(reads) {
            if *i != r && self.g.users(r).is_empty() {
                self.copies.remove(i);
            }
        }
    }
}

/// Append the backward of `loss` (a scalar cross-entropy) to `g` and mark an
/// output `grad:<name>` for every parameter that reaches the loss.
///
/// With `recompute`, the backward reads a copy of each activation and norm
/// output it needs ([`is_recomputable_op`]), made just before its first reader,
/// instead of the forward's value, which then lives only as long as the
/// forward reads it.
pub fn differentiate(
    g: &mut Graph,
    loss: NodeId,
    recompute: bool,
) -> Result<Vec<(String, NodeId)>> {
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
    let mut ad = Ad {
        g,
        copies: HashMap::new(),
    };
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
        let reads = if recompute {
            ad.recomputed(&ins, &needs)?
        } else {
            ins.clone()
        };
        let contributions = ops::vjp(&op, &mut ad, id, &reads, upstream, &need)?;
        ad.drop_unread(&ins, &reads);
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
