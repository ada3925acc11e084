//! C emission: each kernel becomes a C function rendered from its family's
//! template with every dimension a literal; the frame template (model.c)
//! strings them together with the program and the ABI. Rust decides
//! everything here and hands the templates plain values and lines.

use crate::driver::Compiled;
use crate::error::{Error, Result};
use crate::ir::{Graph, NodeId, Op};
use crate::ir::{Kernel, KernelKind};
use crate::memory::{MemoryPlan, Region};
use crate::ops::Act;
use crate::schedule::Parallel;
use crate::spec::{Spec, Target};
use names::{Glossary, Pointers};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;

mod gemm_shape;
mod names;
mod packed;
mod softmax_xent;

pub use gemm_shape::GemmShape;

/// The target id of a position that is not trained on (PyTorch's
/// `ignore_index`).
pub const IGNORE_INDEX: i32 = -100;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
pub use embedded::{RUNTIME_C, TEMPLATES};

/// Version of the emitted C ABI; bump on any incompatible change.
pub const ABI_VERSION: u32 = 4;

/// Most threads a context accepts (a setting's range, so the spec owns it).
pub use crate::spec::range::MAX_THREADS;

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

/// The irc_simd.h macro that selects `t`'s SIMD path.
pub fn target_macro(t: Target) -> &'static str {
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

/// `var / n`, or `var` when n is 1.
fn div(var: &str, n: usize) -> String {
    if n == 1 {
        var.to_string()
    } else {
        format!("{var} / {n}")
    }
}

/// `ptr + n`, or `ptr` when n is 0.
fn plus(ptr: &str, n: usize) -> String {
    if n == 0 {
        ptr.to_string()
    } else {
        format!("{ptr} + {n}")
    }
}

/// One kernel ready to render: its template and values, the pointers its
/// call passes, and whether it reads the context (threads, workspace).
/// The line before a threaded kernel's row loop.
const OMP_FOR: &str = "    #pragma omp parallel for num_threads(ctx->threads) schedule(static)\n";

struct Call {
    tpl: &'static str,
    v: Value,
    args: Vec<String>,
    ctx: bool,
}

impl Call {
    fn new(tpl: &'static str, v: Value, args: Vec<String>) -> Call {
        Call {
            tpl,
            v,
            args,
            ctx: false,
        }
    }

    /// The kernel runs on ctx->threads threads (or packs into ctx->work);
    /// a row loop's templates start with `{{ omp_for }}`, the pragma that
    /// splits it over them, or nothing.
    fn threaded(mut self, yes: bool) -> Call {
        self.ctx = yes;
        self.v["omp_for"] = json!(if yes { OMP_FOR } else { "" });
        self
    }
}

struct Emitter<'a> {
    g: &'a Graph,
    mem: &'a MemoryPlan,
    gloss: &'a Glossary,
    packed: &'a packed::Packed,
    names: RefCell<Pointers>,
}

impl Emitter<'_> {
    /// The named pointer to `id`'s memory, declared at the program's top.
    fn ptr(&self, id: NodeId) -> String {
        let loc = self.mem.loc(id);
        let root = names::root(self.g, id);
        // A view at its root's address is the root; one inside it (a
        // slice) is named after itself.
        let named = if self.mem.loc(root) == loc { root } else { id };
        let n = self.g.node(named);
        let shape = self.gloss.shape(&n.ty.shape);
        match loc.region {
            // Activations share memory over time: one name per tensor.
            Region::Acts => self.names.borrow_mut().at(loc, named, &n.name, &shape),
            // Elsewhere an address is one tensor for the whole program.
            Region::Grads => {
                let name = names::grad_name(self.mem, loc.offset).unwrap_or(n.name.clone());
                self.names
                    .borrow_mut()
                    .at(loc, NodeId(u32::MAX), &name, &shape)
            }
            _ => self
                .names
                .borrow_mut()
                .at(loc, NodeId(u32::MAX), &n.name, &shape),
        }
    }

    /// Pointer to the first row of `id` as kernel `k` reads it, and the
    /// row stride: a narrow the kernel absorbed is a strided read of its
    /// source.
    fn rows(&self, k: &Kernel, id: NodeId) -> (String, usize) {
        let n = self.g.node(id);
        match n.op {
            Op::Narrow { start, .. }
                if k.nodes.contains(&id) || crate::passes::fusion::read_in_place(self.g, id) =>
            {
                let src = n.inputs[0];
                let stride = self.g.node(src).ty.last();
                let of = self.ptr(src);
                let what = format!(
                    "{} in rows of {}",
                    self.gloss.shape(&n.ty.shape),
                    self.gloss.shape(&[stride]).trim_matches(['(', ')'])
                );
                let p = self
                    .names
                    .borrow_mut()
                    .inside(&of, start, id, &n.name, &what);
                (p, stride)
            }
            _ => (self.ptr(id), n.ty.last()),
        }
    }

    fn shape(&self, id: NodeId) -> &[usize] {
        &self.g.node(id).ty.shape
    }

    /// Template, template values and call of one kernel.
    fn kernel(&self, k: &Kernel, parallel: bool) -> Result<Call> {
        Ok(match k.kind {
            KernelKind::Gemm { bias, act } if self.rounded(k) => self.rounded_gemm(k, bias, act)?,
            KernelKind::Gemm { bias, act } => self.gemm(k, bias, act),
            KernelKind::Norm { residual } => self.norm(k, residual, parallel),
            KernelKind::Attention => self.attention(k),
            KernelKind::CachedAttention => self.cached_attention(k, parallel)?,
            KernelKind::Elementwise => self.elementwise(k, parallel)?,
            KernelKind::Embedding => self.embedding(k),
            KernelKind::Rope => self.rope(k, parallel),
            KernelKind::Softmax | KernelKind::CrossEntropy | KernelKind::SoftmaxCrossEntropy => {
                self.softmax_xent(k, parallel)
            }
            KernelKind::AttentionGrad => self.attention_grad(k)?,
            KernelKind::ReduceRows => self.reduce_rows(k),
            KernelKind::Pad => self.pad(k),
            KernelKind::SoftmaxGrad => self.softmax_grad(k),
            KernelKind::NormGrad { residual } => self.norm_grad(k, residual, parallel),
            KernelKind::EmbeddingGrad => self.embedding_grad(k),
            KernelKind::Narrow => self.narrow(k),
        })
    }

    /// A GEMM whose weights are packed (`[build].weights`).
    fn rounded(&self, k: &Kernel) -> bool {
        matches!(self.g.node(k.nodes[0]).op, Op::MatMul { w, .. } if !w.is_f32())
    }

    fn last(&self, k: &Kernel) -> NodeId {
        *k.nodes.last().unwrap()
    }

    fn gemm(&self, k: &Kernel, bias: bool, act: Option<Act>) -> Call {
        let g = self.g;
        let mm = g.node(k.nodes[0]);
        let (a, w) = (mm.inputs[0], mm.inputs[1]);
        let GemmShape {
            batch,
            m,
            n,
            k: k_dim,
            trans_a: ta,
            trans_b: tb,
            b_batched,
            accumulate,
            pre,
            ..
        } = GemmShape::of(g, self.mem, k).expect("a GEMM kernel");
        let bd = if batch > 1 {
            format!("{batch}, ")
        } else {
            String::new()
        };
        let mut args = vec![self.ptr(self.last(k)), self.ptr(a), self.ptr(w)];
        let mut params = vec!["float *out", "const float *inp", "const float *w"];
        let t = |yes: bool| if yes { "ᵀ" } else { "" };
        let read_t = |yes: bool| if yes { ", read transposed" } else { "" };
        let (ia, ib) = if ta { (k_dim, m) } else { (m, k_dim) };
        let (wa, wb) = if tb { (n, k_dim) } else { (k_dim, n) };
        let wbd = if b_batched { bd.as_str() } else { "" };
        let mut doc = vec![
            format!(
                "out ({bd}{m}, {n}) = inp ({m}, {k_dim}) · w{}{}{}",
                t(tb),
                if bias {
                    format!(" + bias ({n})")
                } else {
                    String::new()
                },
                act.map_or(String::new(), |a| format!(", then {}", a.def().mnemonic))
            ),
            format!("out  is ({bd}{m}, {n})"),
            format!("inp  is ({bd}{ia}, {ib}){}", read_t(ta)),
            format!("w    is ({wbd}{wa}, {wb}){}", read_t(tb)),
        ];
        if bias {
            args.push(self.ptr(g.node(k.nodes[1]).inputs[1]));
            params.push("const float *bias");
            doc.push(format!("bias is ({n})"));
        }
        // The value before the activation, where the backward reads it.
        if pre {
            args.insert(1, self.ptr(k.nodes[k.nodes.len() - 2]));
            params.insert(1, "float *pre");
            doc.push(format!(
                "pre  is ({bd}{m}, {n}): the value before the activation"
            ));
        }
        if accumulate {
            doc.push("out += the product (a gradient accumulating over micro-batches)".into());
        }
        // Per batch element the operands step by a whole matrix.
        let at = |p: &str, stride: usize| {
            if batch > 1 {
                format!("{p} + (size_t)b * {stride}")
            } else {
                p.to_string()
            }
        };
        let (a_at, c_at) = (at("inp", m * k_dim), at("out", m * n));
        let b_at = if b_batched {
            at("w", k_dim * n)
        } else {
            "w".into()
        };
        let mut fields = vec![
            format!(".M = {m}, .N = {n}, .K = {k_dim},"),
            format!(
                ".A = {a_at}, .lda = {}, .trans_a = {},",
                if ta { m } else { k_dim },
                ta as u8
            ),
            format!(
                ".B = {b_at}, .ldb = {}, .trans_b = {},",
                if tb { k_dim } else { n },
                tb as u8
            ),
            format!(".C = {c_at}, .ldc = {n},"),
        ];
        // Accumulation and the epilogue: only what this call uses (the rest
        // is zero: none).
        let mut epilogue = vec![];
        if accumulate {
            epilogue.push(".accumulate = 1,".to_string());
        }
        if bias {
            epilogue.push(".bias = bias,".to_string());
        }
        if pre {
            epilogue.push(format!(".pre = {},", at("pre", m * n)));
        }
        if let Some(a) = act {
            epilogue.push(format!(".act = {},", a.def().c_enum));
        }
        if !epilogue.is_empty() {
            fields.push(epilogue.join(" "));
        }
        fields.push(".threads = ctx->threads, .work = ctx->work,".to_string());
        let bf16 = matches!(mm.op, Op::MatMul { bf16: true, .. });
        if bf16 {
            doc.push("both operands rounded to bf16, the products summed in f32".into());
        }
        let gemm = if bf16 { "irc_gemm_bf16" } else { "irc_gemm" };
        let v = json!({ "batch": batch, "doc": doc, "params": params.join(", "), "fields": fields, "gemm": gemm });
        let tpl = if batch > 1 {
            "kernels/gemm_batched.c.tera"
        } else {
            "kernels/gemm.c.tera"
        };
        Call::new(tpl, v, args).threaded(true)
    }

    fn norm(&self, k: &Kernel, residual: bool, parallel: bool) -> Call {
        let norm = self.g.node(self.last(k));
        let (eps, layer) = match norm.op {
            Op::LayerNorm { eps } => (eps, true),
            Op::RmsNorm { eps } => (eps, false),
            _ => unreachable!(),
        };
        let c = norm.ty.last();
        let mut args = vec![];
        if residual {
            let add = self.g.node(k.nodes[0]);
            args.extend([
                self.ptr(k.nodes[0]),
                self.ptr(add.inputs[0]),
                self.ptr(add.inputs[1]),
            ]);
        } else {
            args.push(self.ptr(norm.inputs[0]));
        }
        args.push(self.ptr(self.last(k)));
        args.extend(norm.inputs[1..].iter().map(|&i| self.ptr(i)));
        let e = flit(eps);
        let mut v = json!({ "R": norm.ty.numel() / c, "C": c, "eps": e });
        let (formula, weights, mean, rstd, bias) = if layer {
            (
                "(x - mean) / sqrt(var + eps) * w + bias",
                "w, bias are",
                format!("irc_row_mean(xr, {c})"),
                format!("irc_row_rstd(xr, mean, {c}, {e}f)"),
                "bias",
            )
        } else {
            (
                "x / sqrt(mean(x²) + eps) * w",
                "w is",
                "0.0f".to_string(),
                format!("irc_row_rms_rstd(xr, {c}, {e}f)"),
                "NULL",
            )
        };
        v["formula"] = json!(formula);
        v["weights"] = json!(weights);
        v["mean"] = json!(mean);
        v["rstd"] = json!(rstd);
        v["bias"] = json!(bias);
        v["bias_param"] = json!(if layer { ", const float *bias" } else { "" });
        let tpl = if residual {
            "kernels/norm_residual.c.tera"
        } else {
            "kernels/norm.c.tera"
        };
        Call::new(tpl, v, args).threaded(parallel)
    }

    fn attention(&self, k: &Kernel) -> Call {
        let g = self.g;
        let attn = g.node(self.last(k));
        let Op::Attention {
            heads,
            kv_heads,
            head_dim,
        } = attn.op
        else {
            unreachable!()
        };
        let mut args = vec![self.ptr(self.last(k))];
        let lse = k
            .nodes
            .iter()
            .copied()
            .find(|&n| matches!(g.node(n).op, Op::AttentionLse { .. }));
        args.extend(lse.map(|n| self.ptr(n)));
        let mut strides = vec![];
        for &operand in &attn.inputs {
            let (p, stride) = self.rows(k, operand);
            args.push(p);
            strides.push(stride);
        }
        let sh = &attn.ty.shape;
        let group = heads / kv_heads;
        // With a training step's backward after it, each row's log-sum-exp too.
        let lse_lines = |lines: &[String]| {
            if lse.is_some() {
                lines.to_vec()
            } else {
                vec![]
            }
        };
        let v = json!({
            "B": sh[0], "T": sh[1], "NH": heads, "NKV": kv_heads, "HD": head_dim,
            "group": group, "kv_head": div("h", group), "scale": flit(1.0 / (head_dim as f64).sqrt()),
            "q_stride": strides[0], "k_stride": strides[1], "v_stride": strides[2],
            "KB": crate::schedule::ATTENTION_KEY_BLOCK, "QB": crate::schedule::ATTENTION_QUERY_BLOCK,
            "lse_param": if lse.is_some() { "float *lse, " } else { "" },
            "lse_doc": lse_lines(&["lse = m + log l of each row: all the backward needs to recompute the probabilities.".into()]),
            "lse_shape": lse_lines(&[format!("lse is ({}, {}, {heads})", sh[0], sh[1])]),
            "lse_store": lse_lines(&[format!("lse[row * {heads} + h] = m[t - q0] + logf(sum);")]),
        });
        Call::new("kernels/attention.c.tera", v, args).threaded(true)
    }

    fn cached_attention(&self, k: &Kernel, parallel: bool) -> Result<Call> {
        let g = self.g;
        let attn = g.node(self.last(k));
        let Op::CachedAttention {
            heads,
            kv_heads,
            head_dim,
        } = attn.op
        else {
            unreachable!()
        };
        let (q, q_stride) = self.rows(k, attn.inputs[0]);
        let mut args = vec![self.ptr(self.last(k)), q];
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
        let group = heads / kv_heads;
        let v = json!({
            "T": sh[1], "S": g.node(attn.inputs[1]).ty.shape[0], "NH": heads, "NKV": kv_heads,
            "HD": head_dim, "group": group, "kv_head": div("h", group),
            "scale": flit(1.0 / (head_dim as f64).sqrt()),
            "q_stride": q_stride, "k_stride": strides[0], "v_stride": strides[1],
        });
        let mut call = Call::new("kernels/cached_attention.c.tera", v, args).threaded(parallel);
        if parallel {
            // Threads only for a step that reads enough of the cache: the
            // work is known at run time, from the last row's position.
            let (t, work) = (sh[1], sh[1] * heads * head_dim);
            call.v["omp_for"] = json!(format!(
                "    /* Threads only once the step attends to enough of the cache to pay for waking them. */\n    \
                 #pragma omp parallel for collapse(2) num_threads(ctx->threads) schedule(static) \\\n        \
                 if ((size_t)(pos[{}] + 1) * {work} >= {})\n",
                t - 1,
                crate::schedule::CACHED_ATTENTION_PAR_WORK
            ));
        }
        Ok(call)
    }

    fn embedding(&self, k: &Kernel) -> Call {
        let n = self.g.node(self.last(k));
        let (table, ids) = (n.inputs[0], n.inputs[1]);
        let tsh = self.shape(table);
        let v = json!({ "R": self.g.node(ids).ty.numel(), "C": tsh[1], "V": tsh[0] });
        let args = vec![self.ptr(self.last(k)), self.ptr(table), self.ptr(ids)];
        Call::new("kernels/embedding.c.tera", v, args)
    }

    fn rope(&self, k: &Kernel, parallel: bool) -> Call {
        let n = self.g.node(self.last(k));
        let Op::Rope {
            head_dim,
            theta,
            inverse,
        } = n.op
        else {
            unreachable!()
        };
        let sh = &n.ty.shape;
        // The position of row bt: given (generation) or the row's own.
        let (b, t) = (sh[0], sh[1]);
        let (position, param, doc, shape) = if n.inputs.len() == 2 {
            (
                "pos[bt]".to_string(),
                ", const int32_t *pos",
                ",\n * t = pos[b, t] (the tokens' positions in their sequences)",
                format!(", pos is ({b}, {t})"),
            )
        } else {
            (format!("bt % {t}"), "", "", String::new())
        };
        let v = json!({ "B": b, "T": t, "H": sh[2] / head_dim, "HD": head_dim,
                        "half": head_dim / 2, "theta": flit(theta),
                        "sign": if inverse { "-" } else { "" }, "position": position,
                        "positions_param": param, "positions_doc": doc, "positions_shape": shape });
        let mut args = vec![self.ptr(self.last(k))];
        args.extend(n.inputs.iter().map(|&i| self.ptr(i)));
        Call::new("kernels/rope.c.tera", v, args).threaded(parallel)
    }

    fn attention_grad(&self, k: &Kernel) -> Result<Call> {
        let g = self.g;
        let mut outs = [None; 3];
        for &n in &k.nodes {
            if let Op::AttentionGrad { wrt, .. } = g.node(n).op {
                outs[wrt] = Some(n);
            }
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
        // Each gradient's pointer and row stride: its own tensor, or its
        // columns of the packed gradient the kernel writes (fusion pattern 5).
        let packed = k
            .outputs
            .iter()
            .copied()
            .find(|&o| matches!(g.node(o).op, Op::Add));
        let mut args = vec![];
        let mut strides = vec![];
        for d in [dq, dk, dv] {
            match packed {
                Some(p) => {
                    let pad = g.users(d)[0];
                    let Op::Pad { start, total } = g.node(pad).op else {
                        return Err(Error::new(
                            "codegen: a packed attention gradient is made of pads",
                        ));
                    };
                    args.push(plus(&self.ptr(p), start));
                    strides.push(total);
                }
                None => {
                    args.push(self.ptr(d));
                    strides.push(g.node(d).ty.last());
                }
            }
        }
        // q, k and v: their own tensors, or read in place in the packed qkv.
        let mut in_strides = vec![];
        for &i in ins {
            let (p, stride) = self.rows(k, i);
            args.push(p);
            in_strides.push(stride);
        }
        let group = heads / kv_heads;
        let (first, end) = if group == 1 {
            ("kh".to_string(), "kh + 1".to_string())
        } else {
            (format!("kh * {group}"), format!("(kh + 1) * {group}"))
        };
        let v = json!({
            "B": sh[0], "T": sh[1], "NH": heads, "NKV": kv_heads, "HD": head_dim,
            "group": group, "h_first": first, "h_end": end,
            "scale": flit(1.0 / (head_dim as f64).sqrt()),
            "q_stride": in_strides[1], "k_stride": in_strides[2],
            "v_stride": in_strides[3], "KB": crate::schedule::ATTENTION_GRAD_KEY_BLOCK,
            "dq_stride": strides[0], "dk_stride": strides[1], "dv_stride": strides[2],
        });
        Ok(Call::new("kernels/attention_grad.c.tera", v, args).threaded(true))
    }

    fn reduce_rows(&self, k: &Kernel) -> Call {
        let n = self.g.node(self.last(k));
        let x = n.inputs[0];
        let s_dim = n.ty.numel();
        let v = json!({ "R": self.g.node(x).ty.numel() / s_dim, "S": s_dim });
        let args = vec![self.ptr(self.last(k)), self.ptr(x)];
        Call::new("kernels/reduce_rows.c.tera", v, args)
    }

    fn pad(&self, k: &Kernel) -> Call {
        let n = self.g.node(self.last(k));
        let x = n.inputs[0];
        let xs = &self.g.node(x).ty;
        let args = vec![self.ptr(self.last(k)), self.ptr(x)];
        match n.op {
            Op::PadRows { start, total } => {
                let (len, s) = (xs.shape[0], xs.numel() / xs.shape[0]);
                let v = json!({ "start": start, "total": total, "len": len, "S": s,
                                "dst": plus("out", start * s) });
                Call::new("kernels/pad_rows.c.tera", v, args)
            }
            Op::Pad { start, total } => {
                let len = xs.last();
                let v = json!({ "start": start, "total": total, "len": len, "R": xs.numel() / len,
                                "dst": plus("o", start) });
                Call::new("kernels/pad.c.tera", v, args)
            }
            _ => unreachable!(),
        }
    }

    fn softmax_grad(&self, k: &Kernel) -> Call {
        let n = self.g.node(self.last(k));
        let v_dim = n.ty.last();
        let v = json!({ "R": n.ty.numel() / v_dim, "V": v_dim });
        let args = vec![
            self.ptr(self.last(k)),
            self.ptr(n.inputs[0]),
            self.ptr(n.inputs[1]),
        ];
        Call::new("kernels/softmax_grad.c.tera", v, args)
    }

    fn norm_grad(&self, k: &Kernel, residual: bool, parallel: bool) -> Call {
        let n = self.g.node(k.nodes[0]);
        let (eps, rms) = match n.op {
            Op::NormGradX { eps, rms } | Op::NormGradW { eps, rms } => (eps, rms),
            _ => unreachable!(),
        };
        let x = &self.g.node(n.inputs[1]).ty;
        let (c, norm) = (x.last(), if rms { "RMSNorm" } else { "LayerNorm" });
        let mut args = vec![self.ptr(self.last(k))];
        args.extend(n.inputs.iter().map(|&i| self.ptr(i)));
        // RMSNorm's rows are not centred: no mean, and no mean(g) term.
        let centred = |yes: &str, no: &str| if rms { no } else { yes }.to_string();
        let mut v = json!({ "R": x.numel() / c, "C": c, "eps": flit(eps), "norm": norm,
                            "mean": centred(&format!("irc_row_mean(xr, {c})"), "0.0f") });
        if matches!(n.op, Op::NormGradW { .. }) {
            return Call::new("kernels/norm_grad_w.c.tera", v, args);
        }
        let mut formula = format!("rstd * (g - {}x̂ * mean(g * x̂))", centred("mean(g) - ", ""));
        let mut params = "float *dx, const float *dy, const float *x, const float *w".to_string();
        let mut shapes = "dx, dy, x";
        let mut result = "d".to_string();
        if residual {
            // The add's other operand: the gradient already on the residual stream.
            let add = self.g.node(k.nodes[1]);
            let other = if add.inputs[0] == k.nodes[0] {
                add.inputs[1]
            } else {
                add.inputs[0]
            };
            args.push(self.ptr(other));
            formula = format!("dresid + {formula} (the residual stream's gradient)");
            params += ", const float *dresid";
            shapes = "dx, dy, x, dresid";
            result = "irc_vadd(irc_vload_upto(dresid + (size_t)r * C + i, n), d)"
                .replace("C", &c.to_string());
        }
        v["formula"] = json!(formula);
        v["params"] = json!(params);
        v["shapes"] = json!(format!("{shapes} are ({}, {c}); w is ({c})", x.numel() / c));
        v["result"] = json!(result);
        v["mean_g"] = json!(centred(&format!("irc_vhsum(sg) / {c}.0f"), "0.0f"));
        Call::new("kernels/norm_grad_x.c.tera", v, args).threaded(parallel)
    }

    fn embedding_grad(&self, k: &Kernel) -> Call {
        let n = self.g.node(self.last(k));
        let (dy, ids) = (n.inputs[0], n.inputs[1]);
        let v = json!({ "R": self.g.node(ids).ty.numel(), "C": n.ty.last(), "V": n.ty.shape[0] });
        let args = vec![self.ptr(self.last(k)), self.ptr(dy), self.ptr(ids)];
        Call::new("kernels/embedding_grad.c.tera", v, args)
    }

    fn narrow(&self, k: &Kernel) -> Call {
        let n = self.g.node(self.last(k));
        let Op::Narrow { start, len } = n.op else {
            unreachable!()
        };
        let src = n.inputs[0];
        let nn = self.g.node(src).ty.last();
        let v = json!({ "R": n.ty.numel() / len, "N": nn, "start": start, "len": len,
                        "src": plus(&format!("x + (size_t)r * {nn}"), start) });
        let args = vec![self.ptr(self.last(k)), self.ptr(src)];
        Call::new("kernels/narrow.c.tera", v, args)
    }

    /// A chain of elementwise ops as vector statements over (R, L) rows.
    fn elementwise(&self, k: &Kernel, parallel: bool) -> Result<Call> {
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
            let at = match rows {
                1 => format!("in{i} + j"),
                _ if rows == r => format!("in{i} + (size_t)r * {l} + j"),
                _ => format!("in{i} + (size_t)(r % {rows}) * {l} + j"),
            };
            params.push(format!("const float *in{i}"));
            args.push(self.ptr(inp));
            stmts.push(format!("const irc_vf x{i} = irc_vload_upto({at}, n);"));
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
            // Temporaries numbered within the kernel, so that the same
            // chain in another layer is the same function.
            let v = format!("v{}", var.len() - k.inputs.len());
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
        let v = json!({ "R": r, "L": l, "params": params.join(", "), "stmts": stmts,
                        "formula": formula.join("; ") });
        Ok(Call::new("kernels/elementwise.c.tera", v, args).threaded(parallel))
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
fn attention_scratch(g: &Graph, k: &Kernel, vw: usize) -> usize {
    let panels = |panels: usize, t: usize, hd: usize| panels * t.div_ceil(vw) * vw * hd;
    k.nodes
        .iter()
        .map(|&id| {
            let n = g.node(id);
            match n.op {
                // Keys in panels, values in rows.
                Op::Attention { head_dim, .. } => panels(2, n.ty.shape[1], head_dim),
                // Keys and values in panels, keys in rows, a key block's dk and dv sums,
                // d_t of each query head and a spare dq row.
                Op::AttentionGrad {
                    heads,
                    kv_heads,
                    head_dim,
                    ..
                } => {
                    let t = g.node(n.inputs[0]).ty.shape[1];
                    let kb = crate::schedule::ATTENTION_GRAD_KEY_BLOCK;
                    panels(2, t, head_dim) + (t + 2 * kb + 1) * head_dim + heads / kv_heads * t
                }
                _ => 0,
            }
        })
        .max()
        .unwrap_or(0)
}

/// Floating-point operations of a kernel's matmuls and causal attention,
/// forward and backward (multiply and add counted apart); 0 for kernels without either, whose
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
                // The backward's five products over the causal half (scores
                // again, dp, dq, dk, dv), counted once, with dq.
                Op::AttentionGrad {
                    heads,
                    head_dim,
                    wrt: 0,
                    ..
                } => {
                    let s = &n.ty.shape;
                    let (b, t) = (s[0] as f64, s[1] as f64);
                    5.0 * b * heads as f64 * t * t * head_dim as f64
                }
                _ => 0.0,
            }
        })
        .sum()
}

/// The kernel functions of a file, shared between the calls whose code is
/// identical, and the profile slots of the calls.
#[derive(Default)]
struct Functions {
    /// (name, body, the tensors of its calls)
    list: Vec<(String, String, Vec<String>)>,
    by_body: HashMap<String, usize>,
    profile: bool,
    slots: Vec<Value>,
}

/// AdamW's weight decay applies to matrices, not to biases, norms or other
/// 1-d tensors (GPT-2's and Llama's recipes).
fn decays(shape: &[usize]) -> bool {
    shape.len() >= 2
}

/// The glossary's dimensions, from the forward program and the model.
fn glossary(spec: &Spec, fwd: &Compiled) -> Glossary {
    let m = &spec.model;
    let mut dims = vec![
        ("C".to_string(), m.d_model),
        ("F".to_string(), m.ffn_hidden),
        ("V".to_string(), m.vocab_size),
    ];
    if m.kv_heads * m.head_dim() != m.d_model {
        dims.push(("NKV*HD".into(), m.kv_heads * m.head_dim()));
    }
    dims.push(("HD".into(), m.head_dim()));
    Glossary {
        b: fwd.program.batch,
        t: fwd.program.seq,
        dims,
    }
}

/// One program: its pointer declarations, then a call a kernel (and the
/// gradient accumulations after it).
fn program(
    t: &tera::Tera,
    gloss: &Glossary,
    fn_name: &str,
    prog: &Compiled,
    fns: &mut Functions,
    packed: &packed::Packed,
) -> Result<Value> {
    let e = Emitter {
        g: &prog.graph,
        mem: &prog.memory,
        gloss,
        packed,
        names: RefCell::new(Pointers::new(&prog.memory)),
    };
    let accumulate: HashMap<NodeId, usize> = prog.memory.grad_accumulate.iter().copied().collect();
    let mut calls: Vec<String> = grads_ready_call(&prog.memory, None).into_iter().collect();
    for (i, k) in prog.kernels.iter().enumerate() {
        let first_call = calls.len();
        let parallel = prog.schedule.kernels[i].parallel != Parallel::Serial;
        let mut call = e.kernel(k, parallel)?;
        call.v["name"] = json!("@NAME@");
        call.v["title"] = json!("@TITLE@");
        call.v["ctx"] = json!(if call.ctx { "irc_ctx *ctx, " } else { "" });
        let body = render(t, call.tpl, &call.v)?;
        let last = prog.graph.node(*k.nodes.last().unwrap()).name.clone();
        let f = *fns.by_body.entry(body.clone()).or_insert_with(|| {
            let base = k.kind.label().replace(['+'], "_");
            fns.list
                .push((format!("{base}_{}", fns.list.len()), body, vec![]));
            fns.list.len() - 1
        });
        fns.list[f].2.push(last.clone());
        calls.push(format!(
            "{}({}{}); /* k{i} {last} */",
            fns.list[f].0,
            if call.ctx { "ctx, " } else { "" },
            call.args.join(", ")
        ));
        for &o in &k.outputs {
            if let Some(&off) = accumulate.get(&o) {
                let n = prog.graph.node(o);
                let name = names::grad_name(&prog.memory, off).unwrap_or(n.name.clone());
                let loc = crate::memory::Loc {
                    region: Region::Grads,
                    offset: off,
                };
                let shape = gloss.shape(&n.ty.shape);
                let into = e
                    .names
                    .borrow_mut()
                    .at(loc, NodeId(u32::MAX), &name, &shape);
                let numel = n.ty.numel();
                calls.push(format!("irc_accumulate({into}, {}, {numel});", e.ptr(o)));
            }
        }
        if fns.profile {
            // The kernel and its gradient accumulation, timed as one slot.
            let slot = fns.slots.len();
            let timed = calls.split_off(first_call).join(" ");
            calls.push(format!(
                "{{ double t0 = irc_seconds(); {timed} ctx->prof[{slot}] += irc_seconds() - t0; }}"
            ));
            fns.slots.push(json!({
                "program": fn_name.trim_start_matches("run_"), "kernel": i,
                "function": fns.list[f].0, "node": last,
                "flops": kernel_flops(&prog.graph, k),
            }));
        }
        calls.extend(grads_ready_call(&prog.memory, Some(i)));
    }
    calls.splice(0..0, guard_gaps(prog));
    let decls = e.names.borrow().lines();
    Ok(json!({ "name": fn_name, "decls": decls, "calls": calls, "kernels": prog.kernels.len() }))
}

/// The call that tells the host which gradients are final after kernel
/// `after` (`None`: before the first), one per parameter, behind one test
/// of the hook (none when no gradient becomes final there).
fn grads_ready_call(mem: &MemoryPlan, after: Option<usize>) -> Option<String> {
    let ready: Vec<&crate::memory::GradReady> = mem
        .grads_ready
        .iter()
        .filter(|r| r.after == after)
        .collect();
    let calls: Vec<String> = ready
        .iter()
        .map(|r| {
            format!(
                "ctx->grad_hook(ctx->grad_user, {}, {});",
                r.offset, r.floats
            )
        })
        .collect();
    let names: Vec<&str> = ready.iter().map(|r| r.param.as_str()).collect();
    match calls.len() {
        0 => None,
        1 => Some(format!(
            "if (ctx->grad_hook) {} /* d{} final */",
            calls[0], names[0]
        )),
        _ => Some(format!(
            "if (ctx->grad_hook) {{ {} }} /* d of {} final */",
            calls.join(" "),
            names.join(", ")
        )),
    }
}

/// A sanitize build's first lines of a program: its plan's guard gaps, and
/// the call that poisons them (none in other builds).
fn guard_gaps(prog: &Compiled) -> Vec<String> {
    let gaps = prog.memory.guard_gaps(&prog.graph);
    if gaps.is_empty() {
        return vec![];
    }
    let list: Vec<String> = gaps.iter().map(|(o, n)| format!("{{{o}, {n}}}")).collect();
    vec![
        format!(
            "static const size_t gaps[{}][2] = {{{}}}; /* guard gaps (offset, floats) */",
            gaps.len(),
            list.join(", ")
        ),
        format!("irc_guard_acts(ctx, gaps, {});", gaps.len()),
    ]
}

/// Offset of the integer input `name` of a program.
fn id_off(c: &Compiled, name: &str) -> Option<usize> {
    c.memory
        .ids
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.offset)
}

/// Offset of the output `name` of a program.
fn out_off(c: &Compiled, name: &str) -> Result<usize> {
    let id = c
        .graph
        .output(name)
        .ok_or_else(|| Error::new(format!("codegen: the program has no `{name}` output")))?;
    Ok(c.memory.loc(id).offset)
}

/// What the frame needs of the generation programs: their inputs and
/// logits, and the size of the cache (null without them).
fn generation(steps: Option<&Steps>) -> Result<Value> {
    let Some(st) = steps else {
        return Ok(Value::Null);
    };
    let step = |c: &Compiled| -> Result<Value> {
        let input = |name: &str| {
            id_off(c, name).ok_or_else(|| {
                Error::new(format!("codegen: a generation step has no `{name}` input"))
            })
        };
        Ok(json!({ "T": c.program.seq, "tokens_off": input("tokens")?,
                   "positions_off": input("positions")?,
                   "logits_at": plus("m->acts", out_off(c, "logits")?) }))
    };
    Ok(
        json!({ "prefill": step(st.prefill)?, "decode": step(st.decode)?,
               "cache_floats": st.decode.memory.state_floats }),
    )
}

/// Each distinct kernel's C under its function name, titled with its users.
fn kernel_functions(functions: &[(String, String, Vec<String>)]) -> Vec<String> {
    functions
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
        .collect()
}

/// The PARAMS table of model.c: name, shape, offset and weight decay of each.
fn param_table(mem: &MemoryPlan) -> Vec<Value> {
    mem.params
        .iter()
        .map(|p| {
            let mut shape: Vec<String> = p.shape.iter().map(|d| d.to_string()).collect();
            shape.resize(4, "0".into());
            json!({ "name": p.name, "ndim": p.shape.len(), "shape": shape.join(", "),
                    "offset": p.offset, "numel": p.size, "decay": decays(&p.shape) as u8 })
        })
        .collect()
}

/// The parts of the files that packed weights, a profile or a sanitize
/// build add: the headers model.c includes, its fields of the context, its
/// functions and declarations (empty in other builds; the weights part is
/// the f32 one, hooks with nothing to do).
fn build_parts(
    t: &tera::Tera,
    spec: &Spec,
    packed: &packed::Packed,
    ctx: &mut Value,
) -> Result<()> {
    let (profile, sanitize) = (spec.build.profile, spec.build.sanitize);
    let part = |yes: bool, name: &str, ctx: &Value| {
        if yes {
            render(t, name, ctx)
        } else {
            Ok(String::new())
        }
    };
    let mut includes = vec![format!("\"{HEADER_FILE}\""), "\"irc_runtime.h\"".into()];
    includes.push("\"irc_safetensors.h\"".into());
    let mut fields = vec![];
    if ctx["bf16"] == json!(true) {
        includes.push("\"irc_gemm_bf16.h\"".into());
    }
    let mut source_defines = vec![];
    let mut params_note = String::new();
    if !packed.is_empty() {
        source_defines.push(
            "#define _DEFAULT_SOURCE 1 /* madvise, for irc_q8.h (before any system header) */",
        );
        params_note = format!(
            " With packed weights\n * ([build].weights = \"{}\"), after a prefill the weights only generation reads\n * are zero here (their f32 copies were given back): a caller that takes this pointer is taken to\n * write every parameter, and the next prefill packs what it finds.",
            spec.build.weights.name()
        );
        includes.push("\"irc_q8.h\"".into());
        fields.extend([
            format!(
                "unsigned char *qw; /* the packed weights of generation ({} bytes) */",
                packed.bytes()
            ),
            "int qw_fresh;      /* qw holds the current parameters */".into(),
            "int f32_released;  /* the f32 copies of weights only generation reads were given back */"
                .into(),
        ]);
    }
    if profile {
        includes.push("\"irc_profile.h\"".into());
        let slots = ctx["profile_slots"].as_array().map_or(0, |s| s.len());
        fields.push(format!(
            "double prof[{slots}]; /* seconds in each kernel slot since the last profile_reset */"
        ));
    }
    if sanitize {
        includes.push("<sanitizer/asan_interface.h>".into());
    }
    let header_parts = match profile {
        true => vec![render(t, "profile.h.tera", ctx)?],
        false => vec![],
    };
    let weights = match packed.is_empty() {
        true => "weights_f32.c.tera",
        false => "weights_packed.c.tera",
    };
    ctx["weights_format"] = json!(spec.build.weights.name());
    ctx["weights_c"] = json!(render(t, weights, ctx)?);
    ctx["source_defines"] = json!(source_defines);
    ctx["params_note"] = json!(params_note);
    ctx["sanitize_c"] = json!(part(sanitize, "sanitize.c.tera", ctx)?);
    ctx["profile_c"] = json!(part(profile, "profile.c.tera", ctx)?);
    ctx["includes"] = json!(includes);
    ctx["fields"] = json!(fields);
    ctx["header_parts"] = json!(header_parts);
    Ok(())
}

/// The programs of a library under their C function names: the forward,
/// the training step and, with `steps`, the generation steps, checked to
/// agree on the parameters (and the steps on the cache).
fn programs_of<'a>(
    fwd: &'a Compiled,
    train: &'a Compiled,
    steps: Option<&Steps<'a>>,
) -> Result<Vec<(&'static str, &'a Compiled)>> {
    if fwd.memory.ids != train.memory.ids || fwd.memory.param_floats != train.memory.param_floats {
        return Err(Error::new(
            "codegen: the forward and training programs disagree on inputs or parameters",
        ));
    }
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
    Ok(all)
}

/// The frame's values of the model, its memory and its target: what
/// model.c and irc_model.h substitute besides the kernels and programs.
fn frame_values(spec: &Spec, all: &[(&str, &Compiled)]) -> Result<Value> {
    let (m, prefix) = (&spec.model, prefix(spec));
    let (c, train) = (all[0].1, all[1].1);
    let target = c.schedule.target;
    let train_loss = train
        .graph
        .output("loss")
        .map(|id| train.memory.loc(id).offset)
        .ok_or_else(|| Error::new("codegen: the training program has no loss"))?;
    let mem = &c.memory;
    let acts = |name: &str| {
        all.iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, p)| p.memory.act_floats)
    };
    let id_ints = all.iter().map(|(_, p)| p.memory.id_ints).max().unwrap_or(0);
    let threads = spec.build.threads;
    let mut ctx = json!({
        "name": m.name, "family": format!("{:?}", m.family).to_lowercase(), "version": env!("CARGO_PKG_VERSION"),
        "spec_file": spec.path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(),
        "source": "model.c", "header": HEADER_FILE, "prefix": prefix, "PREFIX": prefix.to_uppercase(),
        "guard": format!("{}_H", prefix.to_uppercase()), "abi": ABI_VERSION, "spec_hash": spec.build_hash(),
        "B": c.program.batch, "T": c.program.seq, "C": m.d_model, "V": m.vocab_size, "L": m.layers,
        "NH": m.heads, "NKV": m.kv_heads, "HD": m.head_dim(), "F": m.ffn_hidden,
        "target": target.name(), "target_macro": target_macro(target), "vector_width": target.vector_width(),
        "param_floats": mem.param_floats, "act_floats_forward": acts("run_forward"),
        "act_floats_generate": acts("run_prefill").max(acts("run_decode")), "id_ints": id_ints,
        "max_threads": MAX_THREADS,
        "default_threads": if threads == 0 { "irc_default_threads()".to_string() } else { threads.to_string() },
        "default_threads_doc": if threads == 0 { "one per core".to_string() } else { threads.to_string() },
        "num_params": mem.param_floats, "params": param_table(mem),
        "act_floats_train": train.memory.act_floats, "train_loss_off": train_loss,
        "tokens_at": plus("m->ids", id_off(c, "tokens").unwrap_or(0)),
        "targets_at": plus("m->ids", id_off(c, "targets").unwrap_or(0)),
        "logits_at": plus("m->acts", out_off(c, "logits")?), "ignore": IGNORE_INDEX, "loss_off": out_off(c, "loss")?,
    });
    let caches = c.schedule.caches;
    ctx["caches"] = json!(caches.describe());
    ctx["caches_from"] = json!(if spec.build.target == Target::Native {
        "this machine's, read when it was built"
    } else {
        "which any CPU of the target has (so the build is the same everywhere)"
    });
    ctx["cache_defines"] = json!(caches.c_defines());
    ctx["context"] = json!(m.context);
    ctx["attn_scratch"] = json!(all
        .iter()
        .flat_map(|(_, p)| p
            .kernels
            .iter()
            .zip(&p.schedule.kernels)
            .map(|(k, ks)| attention_scratch(&p.graph, k, ks.vector_width)))
        .max()
        .unwrap_or(0));
    let bf16 = all.iter().any(|(_, p)| {
        p.graph
            .ids()
            .iter()
            .any(|&id| matches!(p.graph.node(id).op, Op::MatMul { bf16: true, .. }))
    });
    let bf16_native = bf16 && spec.build.bf16_dot.native_on(target);
    if bf16_native && target != Target::Avx512 {
        return Err(Error::new(format!(
            "[build].bf16_dot = \"native\" (vdpbf16ps) needs the avx512 path; this build's is {}",
            target.name()
        )));
    }
    ctx["bf16"] = json!(bf16);
    if bf16 {
        // Before irc_gemm_bf16.h, which build_parts includes.
        ctx["cache_defines"]
            .as_array_mut()
            .expect("a list")
            .push(json!(format!(
                "#define IRC_BF16_NATIVE {} /* bf16 GEMMs: 1 runs vdpbf16ps, 0 the emulation (the same bits) */",
                bf16_native as u8
            )));
    }
    Ok(ctx)
}

/// With generation programs or without: the prefill/decode entry points,
/// and what the header comment says of their memory.
fn generation_parts(
    t: &tera::Tera,
    spec: &Spec,
    steps: Option<&Steps>,
    ctx: &mut Value,
) -> Result<()> {
    let m = &spec.model;
    let generation = generation(steps)?;
    let has_generation = !generation.is_null();
    ctx["generation"] = generation;
    ctx["generated_context"] = json!(if has_generation { m.context } else { 0 });
    let (gen_template, gen_acts, cache) = if has_generation {
        (
            "generation.c.tera",
            format!(", prefill and decode {}", ctx["act_floats_generate"]),
            format!(
                "; the key/value cache ({} floats: {} layers x keys and\n * values x {} positions x {})",
                ctx["generation"]["cache_floats"],
                m.layers,
                m.context,
                m.kv_heads * m.head_dim()
            ),
        )
    } else {
        ("no_generation.c.tera", String::new(), String::new())
    };
    ctx["generate_acts_note"] = json!(gen_acts);
    ctx["cache_note"] = json!(cache);
    ctx["generation_c"] = json!(render(t, gen_template, ctx)?);
    Ok(())
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
    let all = programs_of(fwd, train, steps)?;
    // Kernels: render each with a placeholder name, then share one function
    // between kernels whose code is identical (layers of the same shape, and
    // the forward half of the training step).
    let gloss = glossary(spec, fwd);
    let mut fns = Functions {
        profile: spec.build.profile,
        ..Default::default()
    };
    let steps_c: Vec<&Compiled> = steps.map_or(vec![], |s| vec![s.prefill, s.decode]);
    let packed = packed::Packed::of(&steps_c, fwd.schedule.target)?;
    let mut programs = vec![];
    for &(fn_name, prog) in &all {
        programs.push(program(&t, &gloss, fn_name, prog, &mut fns, &packed)?);
    }
    let mut ctx = frame_values(spec, &all)?;
    ctx["kernels"] = json!(kernel_functions(&fns.list));
    ctx["programs"] = json!(programs);
    ctx["profile_slots"] = json!(fns.slots);
    ctx["packed"] = if packed.is_empty() {
        Value::Null
    } else {
        packed.template_values()
    };
    build_parts(&t, spec, &packed, &mut ctx)?;
    generation_parts(&t, spec, steps, &mut ctx)?;
    Ok(Sources {
        model_c: render(&t, "model.c.tera", &ctx)?,
        header: render(&t, "model.h.tera", &ctx)?,
        prefix: prefix(spec),
    })
}
