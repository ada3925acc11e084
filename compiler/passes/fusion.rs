//! Fusion: group ops into kernels. The graph is not changed — fusion only
//! decides which ops one kernel computes and which values it must read from
//! or write to memory, so the interpreter's result cannot change.
//!
//! Patterns, tried in this order (an op joins at most one kernel):
//! 1. attention reads its q/k/v straight out of a packed qkv tensor
//!    (the `narrow`s become strided reads, in a training step for the
//!    gradient kernel too: [`read_in_place`]) and keeps the log-sum-exp of
//!    its rows for the backward on the way; cached attention also writes
//!    this step's keys and values into the cache;
//! 2. matmul epilogues: `+ bias` and then an activation (also where the
//!    backward reads the value before it);
//! 3. residual add + norm: one pass writes the new residual stream and its norm;
//! 4. softmax + cross-entropy on the same logits: one pass over each row;
//! 5. an attention's dq, dk and dv: one kernel, which writes them straight
//!    into the gradient of the packed qkv they were narrowed from;
//! 6. a norm's dx with the residual gradient it is added to;
//! 7. chains of elementwise ops (SwiGLU's `silu(g) * u`, ...);
//! 8. every op left is a kernel of its own.

use crate::error::{Error, Result};
use crate::ir::{Graph, Kernel, KernelKind, NodeId, Op};
use crate::ops::Act;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

struct Fuser<'a> {
    g: &'a Graph,
    owner: HashMap<NodeId, usize>,
    groups: Vec<(KernelKind, Vec<NodeId>)>,
}

impl<'a> Fuser<'a> {
    fn op(&self, id: NodeId) -> &'a Op {
        &self.g.node(id).op
    }

    fn free(&self, id: NodeId) -> bool {
        !self.owner.contains_key(&id)
    }

    /// `id` is only read by `by`, and is not an output: it can stay in registers.
    fn private_to(&self, id: NodeId, by: NodeId) -> bool {
        self.g.users(id) == [by] && !self.g.is_output(id)
    }

    fn only_user(&self, id: NodeId) -> Option<NodeId> {
        match self.g.users(id).as_slice() {
            [u] if !self.g.is_output(id) => Some(*u),
            _ => None,
        }
    }

    fn claim(&mut self, kind: KernelKind, nodes: Vec<NodeId>) {
        let k = self.groups.len();
        for &n in &nodes {
            self.owner.insert(n, k);
        }
        self.groups.push((kind, nodes));
    }
}

/// Group the graph's ops into kernels, in an order where every kernel runs
/// after the kernels it reads from.
pub fn fuse(g: &Graph) -> Vec<Kernel> {
    let mut f = Fuser {
        g,
        owner: HashMap::new(),
        groups: vec![],
    };
    let ids = g.ids();
    // The patterns in the order of the module comment: an earlier pattern
    // claims its ops first.
    f.attention(&ids);
    f.gemm_epilogues(&ids);
    f.residual_norms(&ids);
    f.cross_entropy(&ids);
    f.attention_grads(&ids);
    f.residual_norm_grads(&ids);
    f.elementwise_chains(&ids);
    f.singles(&ids);
    let kernels: Vec<Kernel> = f
        .groups
        .iter()
        .map(|(kind, nodes)| kernel(g, *kind, nodes))
        .collect();
    order(g, kernels)
}

impl Fuser<'_> {
    /// Pattern 1: attention absorbs the narrows that feed only it, and the
    /// log-sum-exp of its rows (over the same q and k); cached attention
    /// also its cache writes (and the narrows that feed only those).
    fn attention(&mut self, ids: &[NodeId]) {
        let g = self.g;
        for &id in ids {
            if let Op::Attention {
                heads,
                kv_heads,
                head_dim,
            } = *self.op(id)
            {
                let ins = &g.node(id).inputs;
                let mut nodes: Vec<NodeId> = vec![];
                for &i in ins {
                    let narrow = matches!(self.op(i), Op::Narrow { .. });
                    if narrow
                        && (self.private_to(i, id) || read_in_place(g, i))
                        && !nodes.contains(&i)
                    {
                        nodes.push(i);
                    }
                }
                let lse = Op::AttentionLse {
                    heads,
                    kv_heads,
                    head_dim,
                };
                nodes.extend(
                    g.users(ins[0]).into_iter().find(|&u| {
                        *self.op(u) == lse && g.node(u).inputs == ins[..2] && self.free(u)
                    }),
                );
                nodes.push(id);
                self.claim(KernelKind::Attention, nodes);
            }
            if let Op::CachedAttention { .. } = self.op(id) {
                let narrow_into = |i: NodeId, by: NodeId| {
                    matches!(self.op(i), Op::Narrow { .. }) && self.private_to(i, by)
                };
                let mut nodes: BTreeSet<NodeId> = BTreeSet::new();
                for &i in &g.node(id).inputs {
                    if narrow_into(i, id) {
                        nodes.insert(i);
                    }
                    if matches!(self.op(i), Op::CacheWrite) && self.private_to(i, id) {
                        nodes.insert(i);
                        let new = g.node(i).inputs[1];
                        if narrow_into(new, i) {
                            nodes.insert(new);
                        }
                    }
                }
                nodes.insert(id);
                self.claim(KernelKind::CachedAttention, nodes.into_iter().collect());
            }
        }
    }

    /// Pattern 2: matmul + bias (+ activation). Not an activation's gradient:
    /// `dy · act'(x)` in the backward GEMM's epilogue measured slower than
    /// its own pass (svg-small's MLP on AVX-512: 36 ms against 24 + 3.4), the
    /// derivative's arithmetic on top of the tile's live accumulators.
    fn gemm_epilogues(&mut self, ids: &[NodeId]) {
        let g = self.g;
        for &id in ids {
            if !matches!(self.op(id), Op::MatMul { .. }) || !self.free(id) {
                continue;
            }
            let mut nodes = vec![id];
            let mut last = id;
            let n = g.node(id).ty.last();
            let mut bias = false;
            if let Some(u) = self.only_user(id) {
                let un = g.node(u);
                if matches!(un.op, Op::Add)
                    && un.inputs[0] == id
                    && g.node(un.inputs[1]).ty.shape == [n]
                    && self.free(u)
                {
                    nodes.push(u);
                    last = u;
                    bias = true;
                }
            }
            let mut act = None;
            if let Some((u, a)) = self.activation_of(last) {
                nodes.push(u);
                act = Some(a);
            }
            self.claim(KernelKind::Gemm { bias, act }, nodes);
        }
    }

    /// The activation applied to `x`, if one is (and not yet claimed). Other
    /// readers of `x` (a training step's backward) make the kernel store `x`
    /// too, as the epilogue's `pre`. A gated activation (SwiGLU's `silu(g) *
    /// u`) stays in the elementwise chain with its multiply: fused here it
    /// would move the same bytes in one more kernel. The same activation
    /// again (the backward's recomputed copy, numbered later) is its own
    /// kernel where the backward reads it.
    fn activation_of(&self, x: NodeId) -> Option<(NodeId, Act)> {
        let mut acts = self
            .g
            .users(x)
            .into_iter()
            .filter_map(|u| match *self.op(u) {
                Op::Act(a) if self.free(u) && !a.def().gated => Some((u, a)),
                _ => None,
            });
        let first = acts.next()?;
        acts.all(|(_, a)| a == first.1).then_some(first)
    }

    /// Pattern 3: residual add + norm.
    fn residual_norms(&mut self, ids: &[NodeId]) {
        let g = self.g;
        for &id in ids {
            if !matches!(self.op(id), Op::LayerNorm { .. } | Op::RmsNorm { .. }) || !self.free(id) {
                continue;
            }
            let x = g.node(id).inputs[0];
            let xn = g.node(x);
            let residual = matches!(xn.op, Op::Add)
                && self.free(x)
                && g.node(xn.inputs[0]).ty.shape == g.node(xn.inputs[1]).ty.shape;
            let nodes = if residual { vec![x, id] } else { vec![id] };
            self.claim(KernelKind::Norm { residual }, nodes);
        }
    }

    /// Pattern 6: a norm's dx summed into the residual stream's gradient (the add the
    /// backward of `x + f(norm(x))` makes) as it is stored.
    fn residual_norm_grads(&mut self, ids: &[NodeId]) {
        let g = self.g;
        for &id in ids {
            if !matches!(self.op(id), Op::NormGradX { .. }) || !self.free(id) {
                continue;
            }
            let Some(u) = self.only_user(id) else {
                continue;
            };
            let un = g.node(u);
            let other = if un.inputs[0] == id {
                un.inputs[1]
            } else {
                un.inputs[0]
            };
            if matches!(un.op, Op::Add)
                && self.free(u)
                && other != id
                && g.node(other).ty.shape == g.node(id).ty.shape
            {
                self.claim(KernelKind::NormGrad { residual: true }, vec![id, u]);
            }
        }
    }

    /// Pattern 4: softmax, cross-entropy and its gradient over the same
    /// logits (and targets): one pass over each row.
    fn cross_entropy(&mut self, ids: &[NodeId]) {
        let g = self.g;
        for &id in ids {
            if !matches!(self.op(id), Op::CrossEntropy | Op::CrossEntropyGrad) || !self.free(id) {
                continue;
            }
            let ins = g.node(id).inputs.clone();
            let mut nodes: Vec<NodeId> = g
                .users(ins[0])
                .into_iter()
                .filter(|&u| {
                    self.free(u)
                        && match self.op(u) {
                            Op::Softmax => true,
                            Op::CrossEntropy | Op::CrossEntropyGrad => g.node(u).inputs == ins,
                            _ => false,
                        }
                })
                .collect();
            nodes.sort();
            let kind = if nodes.len() == 1 && matches!(self.op(id), Op::CrossEntropy) {
                KernelKind::CrossEntropy
            } else {
                KernelKind::SoftmaxCrossEntropy
            };
            self.claim(kind, nodes);
        }
    }

    /// Pattern 5: the gradients of one attention (same operands) in one
    /// kernel; where q, k and v were narrowed out of one packed tensor, also
    /// the pads and adds that put their gradients back together (see
    /// `packed_grad`), so dq, dk and dv are written straight into its columns.
    fn attention_grads(&mut self, ids: &[NodeId]) {
        let g = self.g;
        for &id in ids {
            if !matches!(self.op(id), Op::AttentionGrad { .. }) || !self.free(id) {
                continue;
            }
            let ins = &g.node(id).inputs;
            let mut nodes: Vec<NodeId> = ids
                .iter()
                .copied()
                .filter(|&n| {
                    matches!(self.op(n), Op::AttentionGrad { .. })
                        && &g.node(n).inputs == ins
                        && self.free(n)
                })
                .collect();
            if let Some(more) = self.packed_grad(&nodes) {
                nodes.extend(more);
            }
            self.claim(KernelKind::AttentionGrad, nodes);
        }
    }

    /// The pads and adds that make the gradient of a packed qkv out of the
    /// three attention gradients `grads` (the VJP of the narrows that read
    /// q, k and v out of it, summed by autodiff): each gradient read only by
    /// a pad, the pads' columns side by side covering the whole row, summed
    /// by two adds that nothing else reads but the last. Their sum is then
    /// the three gradients side by side, written in place by the kernel.
    fn packed_grad(&self, grads: &[NodeId]) -> Option<Vec<NodeId>> {
        let g = self.g;
        if grads.len() != 3 {
            return None;
        }
        let mut pads = vec![];
        for &d in grads {
            let p = self.only_user(d)?;
            let Op::Pad { start, total } = *self.op(p) else {
                return None;
            };
            pads.push((start, g.node(d).ty.last(), total, p));
        }
        pads.sort();
        let total = pads[0].2;
        let mut at = 0;
        for &(start, len, t, p) in &pads {
            if start != at || t != total || !self.free(p) {
                return None;
            }
            at += len;
        }
        if at != total {
            return None;
        }
        let is_pad = |n: NodeId| pads.iter().any(|&(.., p)| p == n);
        let add_of = |a: NodeId, b: NodeId| -> Option<NodeId> {
            let u = self.only_user(a)?;
            let un = g.node(u);
            let pair = un.inputs == [a, b] || un.inputs == [b, a];
            (matches!(un.op, Op::Add) && pair && self.free(u)).then_some(u)
        };
        // (p0 + p1) + p2 in some order: the first add reads two pads.
        let first = pads.iter().find_map(|&(.., p)| {
            let u = self.only_user(p)?;
            let ins = &g.node(u).inputs;
            (ins.len() == 2 && ins.iter().all(|&i| is_pad(i)) && ins[0] != ins[1])
                .then(|| add_of(ins[0], ins[1]))
                .flatten()
        })?;
        let fi = &g.node(first).inputs;
        let third = pads.iter().map(|&(.., p)| p).find(|p| !fi.contains(p))?;
        let second = add_of(first, third)?;
        let read_by = |p: NodeId| self.only_user(p);
        if !pads
            .iter()
            .all(|&(.., p)| [Some(first), Some(second)].contains(&read_by(p)))
        {
            return None;
        }
        let mut nodes: Vec<NodeId> = pads.iter().map(|&(.., p)| p).collect();
        nodes.extend([first, second]);
        nodes.sort();
        Some(nodes)
    }

    /// Pattern 7: elementwise chains. A node joins the group of an operand
    /// it alone reads, unless it also reads another open elementwise group
    /// (which could make two groups wait on each other).
    fn elementwise_chains(&mut self, ids: &[NodeId]) {
        let g = self.g;
        let mut ew: HashMap<NodeId, usize> = HashMap::new();
        for &id in ids {
            if !self.op(id).is_elementwise() || !self.free(id) {
                continue;
            }
            let ins = &g.node(id).inputs;
            let host = ins.iter().copied().find(|&i| {
                ew.contains_key(&i)
                    && self.private_to(i, id)
                    && g.node(i).ty.shape == g.node(id).ty.shape
            });
            let clash = ins
                .iter()
                .any(|i| ew.contains_key(i) && ew.get(i) != host.and_then(|h| ew.get(&h)));
            match host {
                Some(h) if !clash => {
                    let k = ew[&h];
                    self.groups[k].1.push(id);
                    self.owner.insert(id, k);
                    ew.insert(id, k);
                }
                _ => {
                    self.claim(KernelKind::Elementwise, vec![id]);
                    ew.insert(id, self.groups.len() - 1);
                }
            }
        }
    }

    /// Pattern 8: the rest, one op a kernel.
    fn singles(&mut self, ids: &[NodeId]) {
        for &id in ids {
            let kind = match self.op(id) {
                _ if !self.free(id) => continue,
                Op::Input { .. } | Op::Param { .. } | Op::State { .. } => continue,
                Op::Slice { .. } | Op::Reshape { .. } => continue,
                // Only inside a cached attention kernel (check() reports it).
                Op::CacheWrite => continue,
                Op::Embedding => KernelKind::Embedding,
                Op::Rope { .. } => KernelKind::Rope,
                Op::Softmax => KernelKind::Softmax,
                Op::Narrow { .. } => KernelKind::Narrow,
                Op::LayerNorm { .. } | Op::RmsNorm { .. } => KernelKind::Norm { residual: false },
                Op::ReduceTo { .. } => KernelKind::ReduceRows,
                Op::Pad { .. } | Op::PadRows { .. } => KernelKind::Pad,
                Op::SoftmaxGrad => KernelKind::SoftmaxGrad,
                Op::NormGradX { .. } | Op::NormGradW { .. } => {
                    KernelKind::NormGrad { residual: false }
                }
                Op::EmbeddingGrad { .. } => KernelKind::EmbeddingGrad,
                other => unreachable!("fusion left {} unassigned", other.mnemonic()),
            };
            self.claim(kind, vec![id]);
        }
    }
}

/// The kernel of one group: its inputs are the values it reads from outside,
/// its outputs the values read outside it (or graph outputs).
/// A narrow of a packed tensor (q, k and v out of a packed qkv) that only
/// attention reads: its forward kernel and, in a training step, the
/// backward's gradient kernel. It is never stored: both read its columns
/// of the packed rows in place, so the backward keeps the packed tensor
/// instead of three copies of its parts.
pub fn read_in_place(g: &Graph, id: NodeId) -> bool {
    let users = g.users(id);
    matches!(g.node(id).op, Op::Narrow { .. })
        && !g.is_output(id)
        && users
            .iter()
            .any(|&u| matches!(g.node(u).op, Op::Attention { .. }))
        && users.iter().all(|&u| {
            matches!(
                g.node(u).op,
                Op::Attention { .. } | Op::AttentionLse { .. } | Op::AttentionGrad { .. }
            )
        })
}

fn kernel(g: &Graph, kind: KernelKind, nodes: &[NodeId]) -> Kernel {
    let inside: BTreeSet<NodeId> = nodes.iter().copied().collect();
    let mut inputs = vec![];
    for &n in nodes {
        for &i in &g.node(n).inputs {
            // A narrow read in place is its packed source, for the order
            // and for how long that lives.
            let i = if !inside.contains(&i) && read_in_place(g, i) {
                g.node(i).inputs[0]
            } else {
                i
            };
            if !inside.contains(&i) && !inputs.contains(&i) {
                inputs.push(i);
            }
        }
    }
    // The residual add+norm kernel always stores the sum: it is the
    // residual stream, and the kernel writes it on its way anyway.
    let stored = |n: NodeId| matches!(kind, KernelKind::Norm { residual: true }) && n == nodes[0];
    let outputs = nodes
        .iter()
        .copied()
        .filter(|&n| {
            stored(n)
                || g.is_output(n)
                || (g.users(n).iter().any(|u| !inside.contains(u)) && !read_in_place(g, n))
        })
        .collect();
    Kernel {
        kind,
        nodes: nodes.to_vec(),
        inputs,
        outputs,
    }
}

/// Topological order of kernels (Kahn), ties broken by lowest node id so the
/// order follows the source program.
fn order(g: &Graph, kernels: Vec<Kernel>) -> Vec<Kernel> {
    let mut producer: HashMap<NodeId, usize> = HashMap::new();
    for (k, kern) in kernels.iter().enumerate() {
        for &o in &kern.nodes {
            producer.insert(o, k);
        }
    }
    // A view reads through to whoever produced its root.
    let root_kernel = |mut id: NodeId| -> Option<usize> {
        loop {
            if let Some(&k) = producer.get(&id) {
                return Some(k);
            }
            let n = g.node(id);
            if n.op.is_view() {
                id = n.inputs[0];
            } else {
                return None;
            }
        }
    };
    let deps: Vec<BTreeSet<usize>> = kernels
        .iter()
        .enumerate()
        .map(|(k, kern)| {
            kern.inputs
                .iter()
                .filter_map(|&i| root_kernel(i))
                .filter(|&p| p != k)
                .collect()
        })
        .collect();
    let mut done = vec![false; kernels.len()];
    let mut out = Vec::with_capacity(kernels.len());
    while out.len() < kernels.len() {
        let next = (0..kernels.len())
            .filter(|&k| !done[k] && deps[k].iter().all(|&d| done[d]))
            .min_by_key(|&k| kernels[k].nodes.iter().min());
        let Some(k) = next else {
            // A cycle: check() reports it; keep the remaining kernels in id order.
            let mut rest: Vec<usize> = (0..kernels.len()).filter(|&k| !done[k]).collect();
            rest.sort_by_key(|&k| kernels[k].nodes.iter().min());
            out.extend(rest.into_iter().map(|k| kernels[k].clone()));
            break;
        };
        done[k] = true;
        out.push(kernels[k].clone());
    }
    out
}

/// Check the kernel list: every computing op in exactly one kernel, and every
/// kernel input produced by an earlier kernel, a leaf, or a view of those.
pub fn check(g: &Graph, kernels: &[Kernel]) -> Result<()> {
    let mut seen: HashMap<NodeId, usize> = HashMap::new();
    for (k, kern) in kernels.iter().enumerate() {
        for &n in &kern.nodes {
            if seen.insert(n, k).is_some() {
                return Err(Error::new(format!("fusion: {n} is in two kernels")));
            }
        }
    }
    for id in g.ids() {
        let op = &g.node(id).op;
        if matches!(op, Op::CacheWrite)
            && seen.get(&id).map(|&k| kernels[k].kind) != Some(KernelKind::CachedAttention)
        {
            return Err(Error::new(format!(
                "fusion: cache write {id} `{}` must feed only a cached attention",
                g.node(id).name
            )));
        }
        if matches!(op, Op::AttentionLse { .. })
            && seen.get(&id).map(|&k| kernels[k].kind) != Some(KernelKind::Attention)
        {
            return Err(Error::new(format!(
                "fusion: log-sum-exp {id} `{}` must be kept by the kernel of its attention",
                g.node(id).name
            )));
        }
        if !op.is_leaf() && !op.is_view() && !seen.contains_key(&id) {
            return Err(Error::new(format!(
                "fusion: {id} `{}` is in no kernel",
                g.node(id).name
            )));
        }
    }
    for (k, kern) in kernels.iter().enumerate() {
        for &i in &kern.inputs {
            let mut root = i;
            while g.node(root).op.is_view() {
                root = g.node(root).inputs[0];
            }
            if let Some(&p) = seen.get(&root) {
                if p >= k {
                    return Err(Error::new(format!(
                        "fusion: kernel {k} reads {i} before kernel {p} writes it"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// One line per kernel, for `IRC_DUMP=fusion` and `irc inspect`.
pub fn describe(g: &Graph, kernels: &[Kernel]) -> String {
    let mut s = String::new();
    for (k, kern) in kernels.iter().enumerate() {
        let names: Vec<&str> = kern
            .nodes
            .iter()
            .map(|&n| g.node(n).name.as_str())
            .collect();
        let ids = |v: &[NodeId]| {
            v.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            s,
            "k{k:<3} {:<22} {:<40} in: {}  out: {}",
            kern.kind.label(),
            names.join(", "),
            ids(&kern.inputs),
            ids(&kern.outputs)
        );
    }
    s
}
