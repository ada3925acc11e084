//! C emission: each kernel becomes a C function rendered from its family's
//! template with every dimension a literal; the frame template (model.c)
//! strings them together with the program and the ABI. Rust decides
//! everything here and hands the templates plain values and lines.

use crate::driver::Compiled;
use crate::error::{Error, Result};
use crate::ir::{Graph, NodeId, Op};
use crate::ir::{Kernel, KernelKind};
use crate::memory::{MemoryPlan, Region};
use crate::schedule::Parallel;
use crate::spec::{Spec, Target};
use serde_json::{json, Value};
use std::collections::HashMap;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
pub use embedded::{RUNTIME_C, TEMPLATES};

/// Version of the emitted C ABI; bump on any incompatible change.
pub const ABI_VERSION: u32 = 2;

/// Most threads a context accepts.
pub const MAX_THREADS: usize = 256;

/// The emitted sources of one build.
#[derive(Debug, Clone)]
pub struct Sources {
    /// `model.c`
    pub model_c: String,
    /// `irc_model.h`
    pub header: String,
    /// Symbol prefix of the ABI (`irc_<name>`).
    pub prefix: String,
}

pub const HEADER_FILE: &str = "irc_model.h";

fn tera() -> Result<tera::Tera> {
    let mut t = tera::Tera::default();
    t.add_raw_templates(TEMPLATES.iter().copied())
        .map_err(|e| Error::new(format!("templates: {e}")))?;
    Ok(t)
}

fn render(t: &tera::Tera, name: &str, ctx: &Value) -> Result<String> {
    let c =
        tera::Context::from_value(ctx.clone()).map_err(|e| Error::new(format!("{name}: {e}")))?;
    t.render(name, &c).map_err(|e| {
        let mut msg = format!("rendering {name}: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        Error::new(msg)
    })
}

/// `irc_<name>` with the name made a C identifier.
pub fn prefix(spec: &Spec) -> String {
    format!("irc_{}", spec.model.name.replace('-', "_"))
}

fn target_macro(t: Target) -> &'static str {
    match t {
        Target::Avx512 => "IRC_TARGET_AVX512",
        Target::Avx2 => "IRC_TARGET_AVX2",
        Target::Neon => "IRC_TARGET_NEON",
        _ => "IRC_TARGET_SCALAR",
    }
}

/// Float literal for C.
fn flit(x: f64) -> String {
    format!("{x:e}")
}

struct Emitter<'a> {
    g: &'a Graph,
    mem: &'a MemoryPlan,
}

impl Emitter<'_> {
    /// C expression for a pointer to `id`'s memory.
    fn ptr(&self, id: NodeId) -> String {
        let loc = self.mem.loc(id);
        let base = match loc.region {
            Region::Params => "P",
            Region::Acts => "A",
            Region::Ids => "I",
            Region::Grads => "G",
            Region::State => "S",
        };
        format!("{base} + {}", loc.offset)
    }

    /// Pointer to the first row of `id` as kernel `k` reads it, and the
    /// row stride: a narrow the kernel absorbed is a strided read of its
    /// source.
    fn rows(&self, k: &Kernel, id: NodeId) -> (String, usize) {
        let n = self.g.node(id);
        match n.op {
            Op::Narrow { start, .. } if k.nodes.contains(&id) => {
                let src = n.inputs[0];
                let stride = self.g.node(src).ty.last();
                (format!("{} + {start}", self.ptr(src)), stride)
            }
            _ => (self.ptr(id), n.ty.last()),
        }
    }

    fn shape(&self, id: NodeId) -> &[usize] {
        &self.g.node(id).ty.shape
    }

    /// Template name, template values and call arguments of one kernel.
    fn kernel(&self, k: &Kernel, parallel: bool) -> Result<(&'static str, Value, Vec<String>)> {
        let g = self.g;
        let node = |i: usize| g.node(k.nodes[i]);
        let last = *k.nodes.last().unwrap();
        Ok(match k.kind {
            KernelKind::Gemm { bias, gelu } => {
                let Op::MatMul { ta, tb } = node(0).op else {
                    unreachable!()
                };
                let (a, w) = (node(0).inputs[0], node(0).inputs[1]);
                let (ash, wsh) = (self.shape(a), self.shape(w));
                let out = self.shape(last);
                let n = out[out.len() - 1];
                let k_dim = if tb {
                    wsh[wsh.len() - 1]
                } else {
                    wsh[wsh.len() - 2]
                };
                let b_batched = wsh.len() > 2;
                // Fold leading axes of `a` into M when the weight is shared and
                // `a` is read row-major; otherwise loop over the batch.
                let (batch, m) = if !b_batched && !ta {
                    (1, ash.iter().product::<usize>() / k_dim)
                } else {
                    (out[..out.len() - 2].iter().product(), out[out.len() - 2])
                };
                let batch_dims = if batch > 1 {
                    format!("{batch}, ")
                } else {
                    String::new()
                };
                let accumulate = self.mem.loc(last).region == Region::Grads;
                let mut args = vec![self.ptr(last), self.ptr(a), self.ptr(w)];
                if bias {
                    args.push(self.ptr(node(1).inputs[1]));
                }
                let v = json!({
                    "M": m, "N": n, "K": k_dim, "batch": batch, "batch_dims": batch_dims,
                    "ta": ta, "tb": tb, "ta_int": ta as u8, "tb_int": tb as u8,
                    "lda": if ta { m } else { k_dim }, "ldb": if tb { k_dim } else { n },
                    "b_batched": b_batched, "bias": bias, "gelu": gelu, "accumulate": accumulate as u8,
                });
                ("kernels/gemm.c.tera", v, args)
            }
            KernelKind::Norm { residual } => {
                let norm = g.node(last);
                let (eps, layer) = match norm.op {
                    Op::LayerNorm { eps } => (eps, true),
                    Op::RmsNorm { eps } => (eps, false),
                    _ => unreachable!(),
                };
                let c = norm.ty.last();
                let mut args = vec![];
                if residual {
                    let add = node(0);
                    args.extend([
                        self.ptr(k.nodes[0]),
                        self.ptr(add.inputs[0]),
                        self.ptr(add.inputs[1]),
                    ]);
                } else {
                    args.push(self.ptr(norm.inputs[0]));
                }
                args.push(self.ptr(last));
                args.extend(norm.inputs[1..].iter().map(|&i| self.ptr(i)));
                let v = json!({ "R": norm.ty.numel() / c, "C": c, "eps": flit(eps), "layer": layer,
                                "residual": residual, "parallel": parallel });
                ("kernels/norm.c.tera", v, args)
            }
            KernelKind::Attention => {
                let attn = g.node(last);
                let Op::Attention {
                    heads,
                    kv_heads,
                    head_dim,
                } = attn.op
                else {
                    unreachable!()
                };
                let mut args = vec![self.ptr(last)];
                let mut strides = vec![];
                for &operand in &attn.inputs {
                    let (p, stride) = self.rows(k, operand);
                    args.push(p);
                    strides.push(stride);
                }
                let sh = &attn.ty.shape;
                let v = json!({
                    "B": sh[0], "T": sh[1], "NH": heads, "NKV": kv_heads, "HD": head_dim,
                    "group": heads / kv_heads, "scale": flit(1.0 / (head_dim as f64).sqrt()),
                    "q_stride": strides[0], "k_stride": strides[1], "v_stride": strides[2],
                });
                ("kernels/attention.c.tera", v, args)
            }
            KernelKind::CachedAttention => {
                let attn = g.node(last);
                let Op::CachedAttention {
                    heads,
                    kv_heads,
                    head_dim,
                } = attn.op
                else {
                    unreachable!()
                };
                let (q, q_stride) = self.rows(k, attn.inputs[0]);
                let mut args = vec![self.ptr(last), q];
                let mut strides = vec![];
                let mut caches = vec![];
                for &c in &attn.inputs[1..3] {
                    let w = g.node(c);
                    if !matches!(w.op, Op::CacheWrite) || !k.nodes.contains(&c) {
                        return Err(Error::new(
                            "codegen: cached attention reads the cache writes of its own step",
                        ));
                    }
                    let (p, stride) = self.rows(k, w.inputs[1]);
                    args.push(p);
                    strides.push(stride);
                    caches.push(self.ptr(w.inputs[0]));
                }
                args.extend(caches);
                args.push(self.ptr(attn.inputs[3]));
                let sh = &attn.ty.shape;
                let v = json!({
                    "T": sh[1], "S": g.node(attn.inputs[1]).ty.shape[0], "NH": heads, "NKV": kv_heads,
                    "HD": head_dim, "group": heads / kv_heads, "scale": flit(1.0 / (head_dim as f64).sqrt()),
                    "q_stride": q_stride, "k_stride": strides[0], "v_stride": strides[1], "parallel": parallel,
                    "par_work": crate::schedule::CACHED_ATTENTION_PAR_WORK,
                });
                ("kernels/cached_attention.c.tera", v, args)
            }
            KernelKind::Elementwise => self.elementwise(k, parallel)?,
            KernelKind::Embedding => {
                let n = g.node(last);
                let (table, ids) = (n.inputs[0], n.inputs[1]);
                let tsh = self.shape(table);
                let v = json!({ "R": self.g.node(ids).ty.numel(), "C": tsh[1], "V": tsh[0] });
                (
                    "kernels/embedding.c.tera",
                    v,
                    vec![self.ptr(last), self.ptr(table), self.ptr(ids)],
                )
            }
            KernelKind::Rope => {
                let n = g.node(last);
                let Op::Rope {
                    head_dim,
                    theta,
                    inverse,
                } = n.op
                else {
                    unreachable!()
                };
                let sh = &n.ty.shape;
                let positions = n.inputs.len() == 2;
                let v = json!({ "B": sh[0], "T": sh[1], "H": sh[2] / head_dim, "HD": head_dim,
                                "half": head_dim / 2, "theta": flit(theta), "inverse": inverse,
                                "positions": positions, "parallel": parallel });
                let args = n.inputs.iter().map(|&i| self.ptr(i));
                (
                    "kernels/rope.c.tera",
                    v,
                    std::iter::once(self.ptr(last)).chain(args).collect(),
                )
            }
            KernelKind::Softmax | KernelKind::CrossEntropy | KernelKind::SoftmaxCrossEntropy => {
                let logits = node(0).inputs[0];
                let v_dim = g.node(logits).ty.last();
                let r = g.node(logits).ty.numel() / v_dim;
                let find =
                    |want: fn(&Op) -> bool| k.nodes.iter().copied().find(|&n| want(&g.node(n).op));
                let probs = find(|o| matches!(o, Op::Softmax));
                let ce = find(|o| matches!(o, Op::CrossEntropy));
                let grad = find(|o| matches!(o, Op::CrossEntropyGrad));
                let targets = ce.or(grad).map(|n| g.node(n).inputs[1]);
                let mut args = vec![self.ptr(logits)];
                args.extend(probs.map(|p| self.ptr(p)));
                args.extend(targets.map(|t| self.ptr(t)));
                args.extend(ce.map(|c| self.ptr(c)));
                args.extend(grad.map(|d| self.ptr(d)));
                let v = json!({ "R": r, "V": v_dim, "probs": probs.is_some(), "targets": targets.is_some(),
                                "loss": ce.is_some(), "grad": grad.is_some() });
                ("kernels/softmax_xent.c.tera", v, args)
            }
            KernelKind::AttentionGrad => {
                let mut outs = [None; 3];
                for &n in &k.nodes {
                    let Op::AttentionGrad { wrt, .. } = g.node(n).op else {
                        unreachable!()
                    };
                    outs[wrt] = Some(n);
                }
                let [Some(dq), Some(dk), Some(dv)] = outs else {
                    return Err(Error::new(
                        "codegen: an attention_grad kernel computes dq, dk and dv together",
                    ));
                };
                let Op::AttentionGrad {
                    heads,
                    kv_heads,
                    head_dim,
                    ..
                } = g.node(dq).op
                else {
                    unreachable!()
                };
                let ins = &g.node(dq).inputs;
                let sh = &g.node(ins[0]).ty.shape;
                let mut args: Vec<String> = [dq, dk, dv].iter().map(|&n| self.ptr(n)).collect();
                args.extend(ins.iter().map(|&i| self.ptr(i)));
                let v = json!({
                    "B": sh[0], "T": sh[1], "NH": heads, "NKV": kv_heads, "HD": head_dim,
                    "group": heads / kv_heads, "scale": flit(1.0 / (head_dim as f64).sqrt()),
                    "q_stride": g.node(ins[1]).ty.last(), "k_stride": g.node(ins[2]).ty.last(),
                    "v_stride": g.node(ins[3]).ty.last(),
                });
                ("kernels/attention_grad.c.tera", v, args)
            }
            KernelKind::ReduceRows => {
                let n = g.node(last);
                let x = n.inputs[0];
                let s_dim = n.ty.numel();
                let v = json!({ "R": g.node(x).ty.numel() / s_dim, "S": s_dim });
                (
                    "kernels/reduce_rows.c.tera",
                    v,
                    vec![self.ptr(last), self.ptr(x)],
                )
            }
            KernelKind::Pad => {
                let n = g.node(last);
                let x = n.inputs[0];
                let xs = &g.node(x).ty;
                let v = match n.op {
                    Op::PadRows { start, total } => {
                        json!({ "rows": true, "start": start, "total": total,
                        "len": xs.shape[0], "S": xs.numel() / xs.shape[0] })
                    }
                    Op::Pad { start, total } => {
                        json!({ "rows": false, "start": start, "total": total,
                        "len": xs.last(), "R": xs.numel() / xs.last() })
                    }
                    _ => unreachable!(),
                };
                ("kernels/pad.c.tera", v, vec![self.ptr(last), self.ptr(x)])
            }
            KernelKind::SoftmaxGrad => {
                let n = g.node(last);
                let v_dim = n.ty.last();
                let v = json!({ "R": n.ty.numel() / v_dim, "V": v_dim });
                let args = vec![self.ptr(last), self.ptr(n.inputs[0]), self.ptr(n.inputs[1])];
                ("kernels/softmax_grad.c.tera", v, args)
            }
            KernelKind::NormGrad => {
                let n = g.node(last);
                let (eps, rms, wrt_x) = match n.op {
                    Op::NormGradX { eps, rms } => (eps, rms, true),
                    Op::NormGradW { eps, rms } => (eps, rms, false),
                    _ => unreachable!(),
                };
                let x = &g.node(n.inputs[1]).ty;
                let c = x.last();
                let mut args = vec![self.ptr(last)];
                args.extend(n.inputs.iter().map(|&i| self.ptr(i)));
                let v = json!({ "R": x.numel() / c, "C": c, "eps": flit(eps), "rms": rms, "wrt_x": wrt_x,
                                "parallel": parallel });
                ("kernels/norm_grad.c.tera", v, args)
            }
            KernelKind::EmbeddingGrad => {
                let n = g.node(last);
                let (dy, ids) = (n.inputs[0], n.inputs[1]);
                let c = n.ty.last();
                let v = json!({ "R": g.node(ids).ty.numel(), "C": c, "V": n.ty.shape[0] });
                (
                    "kernels/embedding_grad.c.tera",
                    v,
                    vec![self.ptr(last), self.ptr(dy), self.ptr(ids)],
                )
            }
            KernelKind::Narrow => {
                let n = g.node(last);
                let Op::Narrow { start, len } = n.op else {
                    unreachable!()
                };
                let src = n.inputs[0];
                let nn = g.node(src).ty.last();
                let v = json!({ "R": n.ty.numel() / len, "N": nn, "start": start, "len": len });
                (
                    "kernels/narrow.c.tera",
                    v,
                    vec![self.ptr(last), self.ptr(src)],
                )
            }
        })
    }

    /// A chain of elementwise ops as vector statements over (R, L) rows.
    fn elementwise(
        &self,
        k: &Kernel,
        parallel: bool,
    ) -> Result<(&'static str, Value, Vec<String>)> {
        let g = self.g;
        let last = *k.nodes.last().unwrap();
        let l = g.node(last).ty.last();
        let r = g.node(last).ty.numel() / l;
        let mut params = vec![];
        let mut args = vec![];
        let mut stmts = vec![];
        let mut var: HashMap<NodeId, String> = HashMap::new();
        let mut text: HashMap<NodeId, String> = HashMap::new();
        for (i, &inp) in k.inputs.iter().enumerate() {
            let rows = g.node(inp).ty.numel() / l;
            if g.node(inp).ty.last() != l || g.node(inp).ty.shape.is_empty() {
                return Err(Error::new(format!(
                    "elementwise kernel: {inp} does not broadcast by rows"
                )));
            }
            let row = if rows == r {
                "r".to_string()
            } else {
                format!("(r % {rows})")
            };
            params.push(format!("const float *in{i}"));
            args.push(self.ptr(inp));
            stmts.push(format!(
                "const irc_vf x{i} = irc_vload_upto(in{i} + (size_t){row} * {l} + j, n);"
            ));
            var.insert(inp, format!("x{i}"));
            text.insert(inp, format!("in{i}"));
        }
        for &id in &k.nodes {
            let n = g.node(id);
            let a: Vec<String> = n.inputs.iter().map(|i| var[i].clone()).collect();
            let t: Vec<String> = n.inputs.iter().map(|i| text[i].clone()).collect();
            let (expr, formula) =
                n.op.c_expr(&a, &t)
                    .unwrap_or_else(|| unreachable!("{} is not elementwise", n.op.mnemonic()));
            let v = format!("v{}", id.0);
            stmts.push(format!("const irc_vf {v} = {expr};"));
            var.insert(id, v);
            text.insert(id, formula);
        }
        let mut formula = vec![];
        for (i, &o) in k.outputs.iter().enumerate() {
            params.push(format!("float *out{i}"));
            args.push(self.ptr(o));
            stmts.push(format!(
                "irc_vstore_upto(out{i} + (size_t)r * {l} + j, {}, n);",
                var[&o]
            ));
            formula.push(format!("out{i} = {}", text[&o]));
        }
        // Outputs first in the argument list, as in every other kernel.
        let n_in = k.inputs.len();
        params.rotate_left(n_in);
        args.rotate_left(n_in);
        let v = json!({ "R": r, "L": l, "params": params, "stmts": stmts,
                        "formula": formula.join("; "), "parallel": parallel });
        Ok(("kernels/elementwise.c.tera", v, args))
    }
}

/// The generation programs of a library, both over the key/value cache: a
/// chunk of prompt tokens, and one new token.
pub struct Steps<'a> {
    pub prefill: &'a Compiled,
    pub decode: &'a Compiled,
}

/// (name, offset, size) of slots, to compare layouts across programs.
fn layout(slots: &[crate::memory::Slot]) -> Vec<(&str, usize, usize)> {
    slots
        .iter()
        .map(|s| (s.name.as_str(), s.offset, s.size))
        .collect()
}

/// Floats of workspace a thread of an attention kernel packs its head into:
/// so many blocks of T rows (rounded up to the vector width) by head_dim.
fn attention_scratch(g: &Graph, k: &Kernel, target: Target) -> usize {
    let vw = target.vector_width();
    let panels = |panels: usize, t: usize, hd: usize| panels * t.div_ceil(vw) * vw * hd;
    k.nodes
        .iter()
        .map(|&id| {
            let n = g.node(id);
            match n.op {
                // Keys in panels, values in rows.
                Op::Attention { head_dim, .. } => panels(2, n.ty.shape[1], head_dim),
                // Keys and values in panels, dk and dv sums in rows.
                Op::AttentionGrad { head_dim, .. } => {
                    panels(4, g.node(n.inputs[0]).ty.shape[1], head_dim)
                }
                _ => 0,
            }
        })
        .max()
        .unwrap_or(0)
}

/// Floating-point operations of a kernel's matmuls and causal attention
/// (multiply and add counted apart); 0 for kernels without either, whose
/// cost is memory traffic rather than arithmetic.
pub fn kernel_flops(g: &Graph, k: &Kernel) -> f64 {
    k.nodes
        .iter()
        .map(|&id| {
            let n = g.node(id);
            match n.op {
                Op::MatMul { ta, .. } => {
                    let a = &g.node(n.inputs[0]).ty.shape;
                    let inner = if ta { a[a.len() - 2] } else { a[a.len() - 1] };
                    2.0 * n.ty.numel() as f64 * inner as f64
                }
                Op::Attention {
                    heads, head_dim, ..
                } => {
                    // QKᵀ and PV over the causal half: 2 · 2 · B·H·T²·D / 2.
                    let s = &n.ty.shape;
                    let (b, t) = (s[0] as f64, s[1] as f64);
                    2.0 * b * heads as f64 * t * t * head_dim as f64
                }
                _ => 0.0,
            }
        })
        .sum()
}

/// Emit `model.c` and `irc_model.h` with the programs over one arena: the
/// forward (`fwd`: logits and loss), the training step (`train`: loss and
/// parameter gradients) and, with `steps`, KV-cached generation.
pub fn emit(
    spec: &Spec,
    fwd: &Compiled,
    train: &Compiled,
    steps: Option<&Steps>,
) -> Result<Sources> {
    let t = tera()?;
    let prefix = prefix(spec);
    let m = &spec.model;
    let c = fwd;
    let target = c.schedule.target;
    let mut all = vec![("run_forward", fwd), ("run_train", train)];
    if let Some(st) = steps {
        all.extend([("run_prefill", st.prefill), ("run_decode", st.decode)]);
        let params = layout(&fwd.memory.params);
        if all.iter().any(|(_, p)| layout(&p.memory.params) != params)
            || layout(&st.prefill.memory.state) != layout(&st.decode.memory.state)
        {
            return Err(Error::new(
                "codegen: the generation programs disagree with the forward on parameters or cache",
            ));
        }
    }

    // Kernels: render each with a placeholder name, then share one function
    // between kernels whose code is identical (layers of the same shape, and
    // the forward half of the training step).
    let mut functions: Vec<(String, String, Vec<String>)> = vec![]; // (name, body, users)
    let mut by_body: HashMap<String, usize> = HashMap::new();
    let mut programs = vec![];
    let profile = spec.build.profile;
    let mut profile_slots: Vec<Value> = vec![];
    for &(fn_name, prog) in &all {
        let e = Emitter {
            g: &prog.graph,
            mem: &prog.memory,
        };
        let accumulate: HashMap<NodeId, usize> =
            prog.memory.grad_accumulate.iter().copied().collect();
        let mut calls = vec![];
        for (i, k) in prog.kernels.iter().enumerate() {
            let first_call = calls.len();
            let parallel = prog.schedule.kernels[i].parallel != Parallel::Serial;
            let (tpl, mut v, args) = e.kernel(k, parallel)?;
            v["name"] = json!("@NAME@");
            v["title"] = json!("@TITLE@");
            let body = render(&t, tpl, &v)?;
            let last = prog.graph.node(*k.nodes.last().unwrap()).name.clone();
            let f = *by_body.entry(body.clone()).or_insert_with(|| {
                let base = k.kind.label().replace(['+'], "_");
                functions.push((format!("{base}_{}", functions.len()), body, vec![]));
                functions.len() - 1
            });
            functions[f].2.push(last.clone());
            calls.push(format!(
                "{}(ctx, {}); /* k{i} {last} */",
                functions[f].0,
                args.join(", ")
            ));
            for &o in &k.outputs {
                if let Some(&off) = accumulate.get(&o) {
                    let n = prog.graph.node(o).ty.numel();
                    calls.push(format!(
                        "irc_accumulate(G + {off}, {}, {n}); /* into the gradient */",
                        e.ptr(o)
                    ));
                }
            }
            if profile {
                // The kernel and its gradient accumulation, timed as one slot.
                let slot = profile_slots.len();
                let timed = calls.split_off(first_call).join(" ");
                calls.push(format!(
                    "{{ double t0 = irc_seconds(); {timed} ctx->prof[{slot}] += irc_seconds() - t0; }}"
                ));
                profile_slots.push(json!({
                    "program": fn_name.trim_start_matches("run_"), "kernel": i,
                    "function": functions[f].0, "node": last,
                    "flops": kernel_flops(&prog.graph, k),
                }));
            }
        }
        programs.push(json!({ "name": fn_name, "calls": calls, "kernels": prog.kernels.len() }));
    }
    let kernels: Vec<String> = functions
        .iter()
        .map(|(name, body, users)| {
            let title = if users.len() > 3 {
                format!(
                    "{name}: {}, {}, ... ({} uses)",
                    users[0],
                    users[1],
                    users.len()
                )
            } else {
                format!("{name}: {}", users.join(", "))
            };
            body.replace("@NAME@", name).replace("@TITLE@", &title)
        })
        .collect();
    if fwd.memory.ids != train.memory.ids || fwd.memory.param_floats != train.memory.param_floats {
        return Err(Error::new(
            "codegen: the forward and training programs disagree on inputs or parameters",
        ));
    }
    let train_loss = train
        .graph
        .output("loss")
        .map(|id| train.memory.loc(id).offset)
        .ok_or_else(|| Error::new("codegen: the training program has no loss"))?;
    let mem = &c.memory;
    let params: Vec<Value> = mem
        .params
        .iter()
        .map(|p| {
            let mut shape: Vec<String> = p.shape.iter().map(|d| d.to_string()).collect();
            shape.resize(4, "0".into());
            json!({ "name": p.name, "ndim": p.shape.len(), "shape": shape.join(", "),
                    "offset": p.offset, "numel": p.size })
        })
        .collect();
    let id_off = |c: &Compiled, name: &str| {
        c.memory
            .ids
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.offset)
    };
    let out_off = |c: &Compiled, name: &str| -> Result<usize> {
        let id = c
            .graph
            .output(name)
            .ok_or_else(|| Error::new(format!("codegen: the program has no `{name}` output")))?;
        Ok(c.memory.loc(id).offset)
    };
    let act_floats = all
        .iter()
        .map(|(_, p)| p.memory.act_floats)
        .max()
        .unwrap_or(0);
    let id_ints = all.iter().map(|(_, p)| p.memory.id_ints).max().unwrap_or(0);
    let generation = match steps {
        Some(st) => {
            let step = |c: &Compiled| -> Result<Value> {
                let input = |name: &str| {
                    id_off(c, name).ok_or_else(|| {
                        Error::new(format!("codegen: a generation step has no `{name}` input"))
                    })
                };
                Ok(json!({ "T": c.program.seq, "tokens_off": input("tokens")?,
                           "positions_off": input("positions")?, "logits_off": out_off(c, "logits")? }))
            };
            json!({ "prefill": step(st.prefill)?, "decode": step(st.decode)?,
                    "cache_floats": st.decode.memory.state_floats })
        }
        None => Value::Null,
    };
    let mut ctx = json!({
        "name": m.name, "family": format!("{:?}", m.family).to_lowercase(), "version": env!("CARGO_PKG_VERSION"),
        "spec_file": spec.path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(),
        "source": "model.c", "header": HEADER_FILE, "prefix": prefix, "PREFIX": prefix.to_uppercase(),
        "guard": format!("{}_H", prefix.to_uppercase()), "abi": ABI_VERSION, "spec_hash": spec.build_hash(),
        "B": c.program.batch, "T": c.program.seq, "C": m.d_model, "V": m.vocab_size, "L": m.layers,
        "NH": m.heads, "NKV": m.kv_heads, "HD": m.head_dim(), "F": m.ffn_hidden,
        "target": target.name(), "target_macro": target_macro(target), "vector_width": target.vector_width(),
        "param_floats": mem.param_floats, "act_floats": act_floats, "id_ints": id_ints,
        "arena_floats": 4 * mem.param_floats + act_floats + id_ints,
        "max_threads": MAX_THREADS,
        "default_threads": if spec.build.threads == 0 { "irc_default_threads()".to_string() } else { spec.build.threads.to_string() },
        "default_threads_doc": if spec.build.threads == 0 { "one per core".to_string() } else { spec.build.threads.to_string() },
        "num_params": mem.param_floats,
        "params": params, "kernels": kernels, "programs": programs,
        "act_floats_train": train.memory.act_floats, "train_loss_off": train_loss,
        "tokens_off": id_off(c, "tokens").unwrap_or(0), "targets_off": id_off(c, "targets").unwrap_or(0),
        "logits_off": out_off(c, "logits")?, "loss_off": out_off(c, "loss")?,
    });
    ctx["context"] = json!(m.context);
    ctx["attn_scratch"] = json!(all
        .iter()
        .flat_map(|(_, p)| p
            .kernels
            .iter()
            .map(|k| attention_scratch(&p.graph, k, target)))
        .max()
        .unwrap_or(0));
    ctx["profile"] = json!(profile);
    ctx["profile_slots"] = json!(profile_slots);
    ctx["generation"] = generation;
    let model_c = render(&t, "model.c.tera", &ctx)?;
    let header = render(&t, "model.h.tera", &ctx)?;
    Ok(Sources {
        model_c,
        header,
        prefix,
    })
}
