//! The graph IR: ops over tensors with static shapes and dtypes.
//!
//! petgraph holds the nodes and their operand edges; nothing outside this
//! module sees it — passes work with [`NodeId`] and the methods of [`Graph`].
//! Nodes are created in a valid evaluation order (operands first), and ids only
//! grow, so ascending id order is always a topological order.

mod interp;
mod kernel;
mod print;
mod verify;

pub use crate::ops::{DType, NodeId, Op, Real, Tensor, TensorType, Value};
pub use interp::interpret;
pub use kernel::{Kernel, KernelKind};
pub use verify::verify;

use crate::error::{Error, Result};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::Direction;
use serde::Serialize;
use std::collections::BTreeMap;

/// Petgraph's index of a node (ids are petgraph indices).
trait Ix {
    fn ix(self) -> NodeIndex;
}

impl Ix for NodeId {
    fn ix(self) -> NodeIndex {
        NodeIndex::new(self.0 as usize)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub ty: TensorType,
    /// A readable name (`h0.attn.qkv`); parameters carry their HF name here.
    pub name: String,
}

/// The graph of one program (a forward, or a training step).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    g: StableDiGraph<Node, u32>,
    outputs: Vec<(String, NodeId)>,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a node; its type comes from the op's shape rule, which also checks
    /// the operands. Errors name the node.
    pub fn add(&mut self, op: Op, inputs: &[NodeId], name: impl Into<String>) -> Result<NodeId> {
        let name = name.into();
        let tys: Vec<&TensorType> = inputs.iter().map(|&i| &self.node(i).ty).collect();
        let ty = op
            .infer(&tys)
            .map_err(|e| Error::new(format!("node `{name}` ({}): {e}", op.mnemonic())))?;
        Ok(self.add_typed(op, inputs, ty, name))
    }

    /// Add a leaf (input or parameter) of a given type.
    pub fn leaf(&mut self, op: Op, ty: TensorType, name: impl Into<String>) -> NodeId {
        debug_assert!(op.is_leaf());
        self.add_typed(op, &[], ty, name.into())
    }

    fn add_typed(&mut self, op: Op, inputs: &[NodeId], ty: TensorType, name: String) -> NodeId {
        let ix = self.g.add_node(Node {
            op,
            inputs: inputs.to_vec(),
            ty,
            name,
        });
        for (slot, &i) in inputs.iter().enumerate() {
            self.g.add_edge(i.ix(), ix, slot as u32);
        }
        NodeId(ix.index() as u32)
    }

    /// Replace a node's op by one of the same operands and result type (an
    /// attribute changed: [`crate::passes::weights`]).
    pub fn replace_op(&mut self, id: NodeId, op: Op) -> Result<()> {
        let n = self.node(id);
        let tys: Vec<&TensorType> = n.inputs.iter().map(|&i| &self.node(i).ty).collect();
        let ty = op
            .infer(&tys)
            .map_err(|e| Error::new(format!("node `{}` ({}): {e}", n.name, op.mnemonic())))?;
        if ty != n.ty {
            return Err(Error::new(format!(
                "node `{}`: {} changes its type from {} to {ty}",
                n.name,
                op.mnemonic(),
                n.ty
            )));
        }
        self.g[id.ix()].op = op;
        Ok(())
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.ix()]
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id.ix())
    }

    /// All node ids in evaluation (ascending) order.
    pub fn ids(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .g
            .node_indices()
            .map(|i| NodeId(i.index() as u32))
            .collect();
        v.sort();
        v
    }

    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// Nodes that read `id`, each once, in ascending order.
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .g
            .neighbors_directed(id.ix(), Direction::Outgoing)
            .map(|i| NodeId(i.index() as u32))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn mark_output(&mut self, name: impl Into<String>, id: NodeId) {
        self.outputs.push((name.into(), id));
    }

    /// Stop treating `name` as an output (its node stays until DCE).
    pub fn unmark_output(&mut self, name: &str) {
        self.outputs.retain(|(n, _)| n != name);
    }

    pub fn outputs(&self) -> &[(String, NodeId)] {
        &self.outputs
    }

    pub fn is_output(&self, id: NodeId) -> bool {
        self.outputs.iter().any(|(_, o)| *o == id)
    }

    pub fn output(&self, name: &str) -> Option<NodeId> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }

    /// Remove a node nobody reads. A later `add` may reuse its id (below
    /// ids made since), so only remove once no node is added after (dce).
    pub fn remove(&mut self, id: NodeId) {
        debug_assert!(self.users(id).is_empty() && !self.is_output(id));
        self.g.remove_node(id.ix());
    }

    /// Leaves `name_of` names, in creation order: (id, name, type).
    fn leaves(
        &self,
        name_of: impl Fn(&Op) -> Option<&String>,
    ) -> Vec<(NodeId, String, TensorType)> {
        self.ids()
            .into_iter()
            .filter_map(|id| {
                let n = self.node(id);
                name_of(&n.op).map(|name| (id, name.clone(), n.ty.clone()))
            })
            .collect()
    }

    /// Parameters in creation order: (id, HF name, type).
    pub fn params(&self) -> Vec<(NodeId, String, TensorType)> {
        self.leaves(|op| match op {
            Op::Param { name } => Some(name),
            _ => None,
        })
    }

    /// Graph inputs (token ids, targets, positions) in creation order.
    pub fn inputs(&self) -> Vec<(NodeId, String, TensorType)> {
        self.leaves(|op| match op {
            Op::Input { name } => Some(name),
            _ => None,
        })
    }

    /// State kept between calls (the key/value cache) in creation order.
    pub fn states(&self) -> Vec<(NodeId, String, TensorType)> {
        self.leaves(|op| match op {
            Op::State { name } => Some(name),
            _ => None,
        })
    }

    /// Count of nodes per op mnemonic (for `irc inspect`).
    pub fn op_histogram(&self) -> BTreeMap<&'static str, usize> {
        let mut h = BTreeMap::new();
        for id in self.ids() {
            *h.entry(self.node(id).op.mnemonic()).or_insert(0) += 1;
        }
        h
    }
}
