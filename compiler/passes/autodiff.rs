//! Reverse-mode autodiff as a pass: append to the graph the ops that compute
//! d loss / d parameter for every parameter, as graph outputs `grad:<name>`.
//!
//! One VJP rule per primitive op, in the order of `ir/ops.rs`. When a tensor
//! feeds several ops (the residual stream, tied embeddings) its gradient is
//! the explicit `add` of their contributions, visible in the IR.

use crate::error::{Error, Result};
use crate::ir::{Graph, NodeId, Op};
use std::collections::{HashMap, HashSet};

/// Name of the output holding the gradient of parameter `name`.
pub fn grad_output(name: &str) -> String {
    format!("grad:{name}")
}

struct Ad<'a> {
    g: &'a mut Graph,
}

impl Ad<'_> {
    fn add(&mut self, op: Op, ins: &[NodeId], of: NodeId, what: &str) -> Result<NodeId> {
        let name = format!("d{}{what}", self.g.node(of).name);
        self.g.add(op, ins, name)
    }

    /// Flatten `x (..., K)` to `(rows, K)` for weight gradients.
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

    /// Sum `g` down to `x`'s shape when `x` was broadcast.
    fn unbroadcast(&mut self, gr: NodeId, x: NodeId) -> Result<NodeId> {
        let shape = self.g.node(x).ty.shape.clone();
        if self.g.node(gr).ty.shape == shape {
            return Ok(gr);
        }
        self.add(Op::ReduceTo { shape }, &[gr], x, ".sum")
    }

    /// The VJP of node `n` for upstream gradient `gr` (None = the seed 1 of a
    /// scalar loss): the gradient contribution to each operand that needs one.
    fn vjp(&mut self, n: NodeId, gr: Option<NodeId>, need: &[bool]) -> Result<Vec<Option<NodeId>>> {
        let node = self.g.node(n).clone();
        let ins = node.inputs.clone();
        let mut out = vec![None; ins.len()];
        if let Op::CrossEntropy = node.op {
            if gr.is_some() {
                return Err(Error::new("autodiff: cross_entropy must be the loss itself (its gradient is seeded with 1)"));
            }
            out[0] = Some(self.add(Op::CrossEntropyGrad, &ins, ins[0], "")?);
            return Ok(out);
        }
        let gr = gr.ok_or_else(|| {
            Error::new(format!(
                "autodiff: the loss must be a cross_entropy, not {}",
                node.op.mnemonic()
            ))
        })?;
        let shape_of = |g: &Graph, i: NodeId| g.node(i).ty.shape.clone();
        match &node.op {
            Op::Input { .. } | Op::Param { .. } | Op::State { .. } | Op::CrossEntropy => {}
            Op::Embedding => {
                let vocab = shape_of(self.g, ins[0])[0];
                out[0] = Some(self.add(Op::EmbeddingGrad { vocab }, &[gr, ins[1]], ins[0], "")?);
            }
            &Op::MatMul { ta, tb } => {
                let (a, b) = (ins[0], ins[1]);
                let b2d = shape_of(self.g, b).len() == 2;
                let a_batched = shape_of(self.g, a).len() > 2;
                if need[0] {
                    let da = if !ta {
                        self.add(Op::MatMul { ta: false, tb: !tb }, &[gr, b], a, "")?
                    } else {
                        if a_batched && b2d {
                            return Err(Error::new(
                                "autodiff: matmul with a transposed batched `a` and a shared `b`",
                            ));
                        }
                        let (x, y) = (b, gr);
                        self.add(Op::MatMul { ta: tb, tb: true }, &[x, y], a, "")?
                    };
                    out[0] = Some(da);
                }
                if need[1] {
                    let db = if b2d && !ta {
                        // Shared weight: fold every leading axis into the rows.
                        let (a2, g2) = (self.rows(a)?, self.rows(gr)?);
                        if tb {
                            self.add(
                                Op::MatMul {
                                    ta: true,
                                    tb: false,
                                },
                                &[g2, a2],
                                b,
                                "",
                            )?
                        } else {
                            self.add(
                                Op::MatMul {
                                    ta: true,
                                    tb: false,
                                },
                                &[a2, g2],
                                b,
                                "",
                            )?
                        }
                    } else {
                        if b2d && a_batched {
                            return Err(Error::new(
                                "autodiff: matmul with a transposed batched `a` and a shared `b`",
                            ));
                        }
                        match (ta, tb) {
                            (false, false) => self.add(
                                Op::MatMul {
                                    ta: true,
                                    tb: false,
                                },
                                &[a, gr],
                                b,
                                "",
                            )?,
                            (false, true) => self.add(
                                Op::MatMul {
                                    ta: true,
                                    tb: false,
                                },
                                &[gr, a],
                                b,
                                "",
                            )?,
                            (true, false) => self.add(
                                Op::MatMul {
                                    ta: false,
                                    tb: false,
                                },
                                &[a, gr],
                                b,
                                "",
                            )?,
                            (true, true) => {
                                self.add(Op::MatMul { ta: true, tb: true }, &[gr, a], b, "")?
                            }
                        }
                    };
                    out[1] = Some(db);
                }
            }
            Op::Add => {
                out[0] = Some(gr);
                if need[1] {
                    out[1] = Some(self.unbroadcast(gr, ins[1])?);
                }
            }
            Op::Mul => {
                if need[0] {
                    out[0] = Some(self.add(Op::Mul, &[gr, ins[1]], ins[0], "")?);
                }
                if need[1] {
                    let full = self.add(Op::Mul, &[gr, ins[0]], ins[1], "")?;
                    out[1] = Some(self.unbroadcast(full, ins[1])?);
                }
            }
            &Op::Scale { by } => out[0] = Some(self.add(Op::Scale { by }, &[gr], ins[0], "")?),
            &Op::LayerNorm { eps } | &Op::RmsNorm { eps } => {
                let rms = matches!(node.op, Op::RmsNorm { .. });
                if need[0] {
                    out[0] = Some(self.add(
                        Op::NormGradX { eps, rms },
                        &[gr, ins[0], ins[1]],
                        ins[0],
                        "",
                    )?);
                }
                if need[1] {
                    out[1] =
                        Some(self.add(Op::NormGradW { eps, rms }, &[gr, ins[0]], ins[1], "")?);
                }
                if ins.len() == 3 && need[2] {
                    out[2] = Some(self.unbroadcast(gr, ins[2])?);
                }
            }
            Op::Gelu => out[0] = Some(self.add(Op::GeluGrad, &[gr, ins[0]], ins[0], "")?),
            Op::Silu => out[0] = Some(self.add(Op::SiluGrad, &[gr, ins[0]], ins[0], "")?),
            Op::Softmax => out[0] = Some(self.add(Op::SoftmaxGrad, &[gr, n], ins[0], "")?),
            &Op::Rope {
                head_dim,
                theta,
                inverse,
            } => {
                let op = Op::Rope {
                    head_dim,
                    theta,
                    inverse: !inverse,
                };
                // At the same positions, when they are given.
                let mut args = vec![gr];
                args.extend(&ins[1..]);
                out[0] = Some(self.add(op, &args, ins[0], "")?);
            }
            &Op::Attention {
                heads,
                kv_heads,
                head_dim,
            } => {
                for wrt in 0..3 {
                    if need[wrt] {
                        let op = Op::AttentionGrad {
                            heads,
                            kv_heads,
                            head_dim,
                            wrt,
                        };
                        out[wrt] =
                            Some(self.add(op, &[gr, ins[0], ins[1], ins[2]], ins[wrt], "")?);
                    }
                }
            }
            &Op::Narrow { start, .. } => {
                let total = self.g.node(ins[0]).ty.last();
                out[0] = Some(self.add(Op::Pad { start, total }, &[gr], n, "")?);
            }
            &Op::Slice { start, .. } => {
                let total = shape_of(self.g, ins[0])[0];
                out[0] = Some(self.add(Op::PadRows { start, total }, &[gr], n, "")?);
            }
            Op::Reshape { .. } => {
                let shape = shape_of(self.g, ins[0]);
                out[0] = Some(self.add(Op::Reshape { shape }, &[gr], n, "")?);
            }
            other => {
                return Err(Error::new(format!(
                    "autodiff: no gradient rule for {} (second derivatives are not supported)",
                    other.mnemonic()
                )))
            }
        }
        Ok(out)
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
        let contributions = ad.vjp(id, upstream, &need)?;
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
