//! Memory planning: every tensor a kernel writes gets an offset in one arena.
//!
//! Parameters sit at fixed offsets at the front of their region, in graph
//! order. Activations get offsets from liveness: a buffer lives from the kernel
//! that writes it to the last kernel that reads it (graph outputs live to the
//! end), and buffers whose lifetimes do not overlap share memory. Placement is
//! greedy best-fit by decreasing size. Views (slice, reshape) alias their root.

use crate::error::{Error, Result};
use crate::ir::{DType, Graph, NodeId, Op};
use crate::ir::{Kernel, KernelKind};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;

/// Offsets are rounded up to this many elements (64 bytes), so every buffer
/// starts on a cache line.
pub const ALIGN: usize = 16;

/// Floats of guard gap after every activation buffer in a sanitize build:
/// the generated C poisons them, so a kernel that reads or writes past its
/// buffer into the next one aborts under AddressSanitizer.
pub const SANITIZE_GUARD: usize = 64;

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// Parameters (f32).
    Params,
    /// Activations (f32), shared by liveness.
    Acts,
    /// Integer inputs (token ids, targets).
    Ids,
    /// Parameter gradients (f32), at the same offsets as the parameters;
    /// a training step accumulates into them.
    Grads,
    /// State kept between calls (the key/value cache, f32), updated in place.
    State,
}

/// Where a tensor lives: region + element offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Loc {
    pub region: Region,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slot {
    pub node: NodeId,
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Buffer {
    pub node: NodeId,
    pub offset: usize,
    pub size: usize,
    /// Kernel index that writes it, and the last kernel index that reads it.
    pub first: usize,
    pub last: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryPlan {
    pub params: Vec<Slot>,
    pub param_floats: usize,
    pub ids: Vec<Slot>,
    pub id_ints: usize,
    /// The key/value cache of generation steps (empty for other programs).
    pub state: Vec<Slot>,
    pub state_floats: usize,
    pub buffers: Vec<Buffer>,
    /// Peak activation floats (the arena's activation region).
    pub act_floats: usize,
    /// What the activations would take with no sharing.
    pub unshared_floats: usize,
    /// Gradients computed into an activation buffer and then added into the
    /// gradient region (node, gradient offset): the kernels that cannot
    /// accumulate in place.
    pub grad_accumulate: Vec<(NodeId, usize)>,
    /// When each parameter's gradient is final in a training step, in
    /// parameter order (empty in programs without gradients): what a host
    /// may start to all-reduce while the backward still runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grads_ready: Vec<GradReady>,
    /// Guard floats after every activation buffer (0 but in a sanitize
    /// build, where buffers then share no memory, so the gaps stay gaps).
    #[serde(skip_serializing_if = "is_zero")]
    pub guard: usize,
    #[serde(skip)]
    locs: HashMap<NodeId, Loc>,
}

/// A parameter's gradient floats `[offset, offset + floats)` (its slot up
/// to the next parameter's, so the ranges tile the gradient region up to
/// the last parameter's end), final
/// after kernel `after` writes them (or adds them in); `None`: no kernel
/// writes them, so they are final from the start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GradReady {
    pub param: String,
    pub offset: usize,
    pub floats: usize,
    pub after: Option<usize>,
}

/// Each parameter's [`GradReady`]: the kernel that writes its `grad:`
/// output (every gradient output is written by one kernel, straight into
/// the gradient region or added in right after it; see [`lifetimes`]).
fn grads_ready(
    kernels: &[Kernel],
    grad_of: &HashMap<NodeId, usize>,
    params: &[Slot],
) -> Vec<GradReady> {
    if grad_of.is_empty() {
        return vec![];
    }
    let writer = |off: usize| {
        let node = grad_of.iter().find(|(_, &o)| o == off).map(|(&n, _)| n)?;
        kernels.iter().position(|k| k.outputs.contains(&node))
    };
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let end = params.get(i + 1).map_or(p.offset + p.size, |q| q.offset);
            GradReady {
                param: p.name.clone(),
                offset: p.offset,
                floats: end - p.offset,
                after: writer(p.offset),
            }
        })
        .collect()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl MemoryPlan {
    /// Where `id` lives (views resolve to their root's memory).
    pub fn loc(&self, id: NodeId) -> Loc {
        self.locs[&id]
    }

    /// The guard gaps of a sanitize build, (offset, floats) in the
    /// activations: from the end of each buffer's values to the next buffer.
    pub fn guard_gaps(&self, g: &Graph) -> Vec<(usize, usize)> {
        if self.guard == 0 {
            return vec![];
        }
        let mut gaps: Vec<(usize, usize)> = self
            .buffers
            .iter()
            .map(|b| {
                let end = b.offset + g.node(b.node).ty.numel();
                (end, b.offset + b.size + self.guard - end)
            })
            .collect();
        gaps.sort();
        gaps
    }

    pub fn param_offset(&self, name: &str) -> Option<&Slot> {
        self.params.iter().find(|s| s.name == name)
    }

    /// The plan as text, for `IRC_DUMP=memory` and `irc inspect`.
    pub fn describe(&self, g: &Graph) -> String {
        let mut s = String::new();
        let mb = |f: usize| f as f64 * 4.0 / (1 << 20) as f64;
        let _ = writeln!(
            s,
            "params {} floats ({:.2} MiB); activations peak {} floats ({:.2} MiB), {:.1}x less than unshared {} floats",
            self.param_floats,
            mb(self.param_floats),
            self.act_floats,
            mb(self.act_floats),
            self.unshared_floats as f64 / self.act_floats.max(1) as f64,
            self.unshared_floats
        );
        let _ = writeln!(
            s,
            "{:>10} {:>10}  {:>9}  tensor",
            "offset", "floats", "kernels"
        );
        let mut bufs = self.buffers.clone();
        bufs.sort_by_key(|b| (b.offset, b.first));
        for b in bufs {
            let n = g.node(b.node);
            let _ = writeln!(
                s,
                "{:>10} {:>10}  {:>4}..{:<4}  {} {} {}",
                b.offset, b.size, b.first, b.last, b.node, n.ty, n.name
            );
        }
        s
    }
}

/// Plan memory for `kernels` (in execution order) over `g`, with `guard`
/// floats of gap after every activation buffer (a sanitize build; then no
/// two buffers share memory).
pub fn plan(g: &Graph, kernels: &[Kernel], guard: usize) -> Result<MemoryPlan> {
    let mut locs = HashMap::new();
    let leaves = place_leaves(g, &mut locs)?;
    let grad_of = grad_offsets(g, &leaves.params)?;
    let (life, grad_accumulate) = lifetimes(g, kernels, &grad_of, &mut locs);
    let placed = if guard == 0 {
        best_fit(g, &life)
    } else {
        one_after_another(g, &life, guard)
    };
    for b in &placed {
        locs.insert(
            b.node,
            Loc {
                region: Region::Acts,
                offset: b.offset,
            },
        );
    }
    alias_views(g, &mut locs);
    let act_floats = placed
        .iter()
        .map(|b| b.offset + b.size + guard)
        .max()
        .unwrap_or(0);
    let unshared_floats = placed.iter().map(|b| b.size).sum();
    let grads_ready = grads_ready(kernels, &grad_of, &leaves.params);
    let Leaves {
        params,
        param_floats,
        ids,
        id_ints,
        state,
        state_floats,
    } = leaves;
    Ok(MemoryPlan {
        params,
        param_floats,
        ids,
        id_ints,
        state,
        state_floats,
        buffers: placed,
        act_floats,
        unshared_floats,
        grad_accumulate,
        grads_ready,
        guard,
        locs,
    })
}

/// Every live value in its own place, in node order, `guard` floats apart.
fn one_after_another(g: &Graph, life: &Lives, guard: usize) -> Vec<Buffer> {
    let mut nodes: Vec<(&NodeId, &(usize, usize))> = life.iter().collect();
    nodes.sort();
    let mut offset = 0;
    let mut placed = vec![];
    for (&node, &(first, last)) in nodes {
        let size = align(g.node(node).ty.numel());
        placed.push(Buffer {
            node,
            offset,
            size,
            first,
            last,
        });
        offset += size + guard;
    }
    placed
}

/// The leaves' slots, each region packed in graph order.
struct Leaves {
    params: Vec<Slot>,
    param_floats: usize,
    ids: Vec<Slot>,
    id_ints: usize,
    state: Vec<Slot>,
    state_floats: usize,
}

/// Give every parameter, integer input and state tensor its slot (and loc).
fn place_leaves(g: &Graph, locs: &mut HashMap<NodeId, Loc>) -> Result<Leaves> {
    let mut l = Leaves {
        params: vec![],
        param_floats: 0,
        ids: vec![],
        id_ints: 0,
        state: vec![],
        state_floats: 0,
    };
    for id in g.ids() {
        let n = g.node(id);
        let (list, top, region) = match (&n.op, n.ty.dtype) {
            (Op::Param { .. }, _) => (&mut l.params, &mut l.param_floats, Region::Params),
            (Op::Input { .. }, DType::I32) => (&mut l.ids, &mut l.id_ints, Region::Ids),
            (Op::State { .. }, DType::F32) => (&mut l.state, &mut l.state_floats, Region::State),
            (Op::Input { name }, _) => {
                return Err(Error::new(format!(
                    "memory: float input `{name}` is not supported"
                )))
            }
            _ => continue,
        };
        let size = n.ty.numel();
        list.push(Slot {
            node: id,
            name: n.name.clone(),
            shape: n.ty.shape.clone(),
            offset: *top,
            size,
        });
        locs.insert(
            id,
            Loc {
                region,
                offset: *top,
            },
        );
        *top += align(size);
    }
    Ok(l)
}

/// The gradient outputs (`grad:<param>`) and their parameter's offset.
fn grad_offsets(g: &Graph, params: &[Slot]) -> Result<HashMap<NodeId, usize>> {
    let mut grad_of: HashMap<NodeId, usize> = HashMap::new();
    for (name, id) in g.outputs() {
        if let Some(param) = name.strip_prefix("grad:") {
            let slot = params.iter().find(|p| p.name == param).ok_or_else(|| {
                Error::new(format!("memory: gradient of unknown parameter `{param}`"))
            })?;
            grad_of.insert(*id, slot.offset);
        }
    }
    Ok(grad_of)
}

/// Each kernel-written value's (first, last) kernel index.
type Lives = HashMap<NodeId, (usize, usize)>;

/// Lifetimes of kernel-written values, in kernel indices (first write, last
/// read; graph outputs live to the end).
///
/// Gradient outputs: a GEMM accumulates straight into the gradient region
/// (its loc goes into `locs`, and it needs no buffer); any other kernel
/// writes a buffer that is added in right after, listed in the returned
/// `(node, gradient offset)`s.
fn lifetimes(
    g: &Graph,
    kernels: &[Kernel],
    grad_of: &HashMap<NodeId, usize>,
    locs: &mut HashMap<NodeId, Loc>,
) -> (Lives, Vec<(NodeId, usize)>) {
    let mut grad_accumulate = vec![];
    let end = kernels.len();
    let mut life: Lives = HashMap::new();
    for (k, kern) in kernels.iter().enumerate() {
        for &o in &kern.outputs {
            if let Some(&off) = grad_of.get(&o) {
                if matches!(kern.kind, KernelKind::Gemm { .. }) {
                    locs.insert(
                        o,
                        Loc {
                            region: Region::Grads,
                            offset: off,
                        },
                    );
                    continue;
                }
                grad_accumulate.push((o, off));
                life.insert(o, (k, k));
                continue;
            }
            let last = if g.is_output(o) { end } else { k };
            life.insert(o, (k, last));
        }
    }
    let root = |mut id: NodeId| {
        while g.node(id).op.is_view() {
            id = g.node(id).inputs[0];
        }
        id
    };
    for (k, kern) in kernels.iter().enumerate() {
        for &i in &kern.inputs {
            if let Some(l) = life.get_mut(&root(i)) {
                l.1 = l.1.max(k);
            }
        }
    }
    for (_, o) in g.outputs() {
        if grad_of.contains_key(o) {
            continue;
        }
        if let Some(l) = life.get_mut(&root(*o)) {
            l.1 = end;
        }
    }
    (life, grad_accumulate)
}

/// Place each live value, largest first, in the smallest gap among the
/// buffers alive at the same time (or past them all); sorted by node.
fn best_fit(g: &Graph, life: &Lives) -> Vec<Buffer> {
    let mut order: Vec<(NodeId, usize, usize, usize)> = life
        .iter()
        .map(|(&id, &(first, last))| (id, align(g.node(id).ty.numel()), first, last))
        .collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut placed: Vec<Buffer> = vec![];
    for (node, size, first, last) in order {
        // Occupied intervals among buffers alive at the same time.
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|b| b.first <= last && first <= b.last)
            .map(|b| (b.offset, b.offset + b.size))
            .collect();
        busy.sort();
        let mut best: Option<(usize, usize)> = None; // (gap size, offset)
        let mut cursor = 0;
        for (s, e) in busy
            .iter()
            .copied()
            .chain(std::iter::once((usize::MAX, usize::MAX)))
        {
            if s >= cursor && s - cursor >= size && best.is_none_or(|(gap, _)| s - cursor < gap) {
                best = Some((s - cursor, cursor));
            }
            cursor = cursor.max(e);
        }
        let offset = best.map(|b| b.1).unwrap_or(cursor);
        placed.push(Buffer {
            node,
            offset,
            size,
            first,
            last,
        });
    }
    placed.sort_by_key(|b| b.node);
    placed
}

/// Views alias their operand, shifted for slices; a cache write is its
/// cache, updated in place.
fn alias_views(g: &Graph, locs: &mut HashMap<NodeId, Loc>) {
    for id in g.ids() {
        let n = g.node(id);
        let shift = match &n.op {
            Op::Slice { start, .. } => start * n.ty.shape[1..].iter().product::<usize>(),
            Op::Reshape { .. } | Op::CacheWrite => 0,
            _ => continue,
        };
        let base = locs[&n.inputs[0]];
        locs.insert(
            id,
            Loc {
                region: base.region,
                offset: base.offset + shift,
            },
        );
    }
}
