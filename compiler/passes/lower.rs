//! Lowering: a resolved spec becomes the forward graph, with parameters named
//! and laid out exactly as Hugging Face transformers stores them.

use crate::error::Result;
use crate::ir::{Graph, NodeId, Op, TensorType};
use crate::spec::{Family, ModelSpec, Norm, Position};

/// What program to build from the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    pub batch: usize,
    pub seq: usize,
    /// Also take `targets` and output the mean cross-entropy `loss`.
    pub with_loss: bool,
    /// A training step: output the loss and `grad:<param>` for every
    /// parameter instead of the logits.
    pub train: bool,
    /// A generation step over the key/value cache: `batch` must be 1; the
    /// `seq` tokens sit at the runtime `positions` (consecutive, after the
    /// ones already cached); their keys and values are written into the
    /// per-layer cache state and each token attends to everything cached
    /// up to itself.
    pub cached: bool,
}

impl Program {
    /// A forward over (batch, seq) tokens with logits and, with targets, the loss.
    pub fn forward(batch: usize, seq: usize) -> Program {
        Program {
            batch,
            seq,
            with_loss: true,
            train: false,
            cached: false,
        }
    }

    /// A cached generation step over `seq` new tokens of one sequence.
    pub fn step(seq: usize) -> Program {
        Program {
            batch: 1,
            seq,
            with_loss: false,
            train: false,
            cached: true,
        }
    }
}

/// Names of the cache state of layer `l` (keys, values after rope).
pub fn cache_names(l: usize) -> [String; 2] {
    [format!("cache.k.{l}"), format!("cache.v.{l}")]
}

struct Builder<'a> {
    g: Graph,
    m: &'a ModelSpec,
}

impl Builder<'_> {
    fn param(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.g.leaf(
            Op::Param {
                name: name.to_string(),
            },
            TensorType::f32(shape),
            name,
        )
    }

    /// `x · W (+ b)`: GPT-2's Conv1D stores W as (in, out), Llama's Linear as
    /// (out, in), so the transpose flag follows the family.
    fn linear(
        &mut self,
        x: NodeId,
        prefix: &str,
        din: usize,
        dout: usize,
        bias: bool,
        label: &str,
    ) -> Result<NodeId> {
        let gpt2 = self.m.family == Family::Gpt2;
        let shape = if gpt2 { [din, dout] } else { [dout, din] };
        let w = self.param(&format!("{prefix}.weight"), &shape);
        let y = self.g.add(
            Op::MatMul {
                ta: false,
                tb: !gpt2,
                bf16: false,
            },
            &[x, w],
            label,
        )?;
        if !bias {
            return Ok(y);
        }
        let b = self.param(&format!("{prefix}.bias"), &[dout]);
        self.g.add(Op::Add, &[y, b], format!("{label}+bias"))
    }

    fn norm(&mut self, x: NodeId, prefix: &str, label: &str) -> Result<NodeId> {
        let c = self.m.d_model;
        let eps = self.m.norm_eps;
        let w = self.param(&format!("{prefix}.weight"), &[c]);
        match self.m.norm {
            Norm::LayerNorm => {
                let b = self.param(&format!("{prefix}.bias"), &[c]);
                self.g.add(Op::LayerNorm { eps }, &[x, w, b], label)
            }
            Norm::RmsNorm => self.g.add(Op::RmsNorm { eps }, &[x, w], label),
        }
    }
}

/// The Hugging Face names of the token embedding, the layer stack, the final
/// norm and the head, by family.
struct HfNames {
    wte: &'static str,
    layer: &'static str,
    ln_f: &'static str,
    head: &'static str,
}

impl HfNames {
    fn of(family: Family) -> HfNames {
        if family == Family::Gpt2 {
            HfNames {
                wte: "transformer.wte.weight",
                layer: "transformer.h",
                ln_f: "transformer.ln_f",
                head: "lm_head.weight",
            }
        } else {
            HfNames {
                wte: "model.embed_tokens.weight",
                layer: "model.layers",
                ln_f: "model.norm",
                head: "lm_head.weight",
            }
        }
    }
}

/// Lower `m` to a forward graph over `(batch, seq)` token ids with output
/// `logits` (and `loss` when asked).
pub fn lower(m: &ModelSpec, p: Program) -> Result<Graph> {
    let mut b = Builder { g: Graph::new(), m };
    let (bs, t) = (p.batch, p.seq);
    if p.cached && (bs != 1 || p.with_loss || p.train || t > m.context) {
        return Err(crate::Error::new(format!(
            "a cached step runs 1 sequence of at most {} tokens without loss, got {bs} x {t}",
            m.context
        )));
    }
    let names = HfNames::of(m.family);
    let tokens = b.input("tokens", &[bs, t]);
    // A cached step's tokens sit at runtime positions; a forward's at 0..T.
    let positions = p.cached.then(|| b.input("positions", &[1, t]));
    let (wte, mut x) = b.embed(names.wte, tokens, positions, t)?;
    for l in 0..m.layers {
        let prefix = format!("{}.{l}", names.layer);
        x = b.attention_block(l, &prefix, x, positions)?;
        x = b.ffn_block(l, &prefix, x)?;
    }
    b.head(x, wte, &names, p)?;
    Ok(b.g)
}

/// The node labels of layer `l`: `h{l}.{s}`.
fn layer_label(l: usize) -> impl Fn(&str) -> String {
    move |s: &str| format!("h{l}.{s}")
}

impl Builder<'_> {
    /// An `i32` runtime input named and labelled `name`.
    fn input(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.g.leaf(
            Op::Input { name: name.into() },
            TensorType::i32(shape),
            name,
        )
    }

    /// The token embedding plus, for learned positions, the position
    /// embedding of the runtime `positions` (a cached step) or of `0..t`.
    /// Returns the embedding table (the head may be tied to it) and the
    /// embedded tokens.
    fn embed(
        &mut self,
        wte_name: &str,
        tokens: NodeId,
        positions: Option<NodeId>,
        t: usize,
    ) -> Result<(NodeId, NodeId)> {
        let m = self.m;
        let wte = self.param(wte_name, &[m.vocab_size, m.d_model]);
        let mut x = self.g.add(Op::Embedding, &[wte, tokens], "embed")?;
        if m.position == Position::Learned {
            let wpe = self.param("transformer.wpe.weight", &[m.context, m.d_model]);
            let pos = match positions {
                Some(ps) => self.g.add(Op::Embedding, &[wpe, ps], "wpe[positions]")?,
                None => self
                    .g
                    .add(Op::Slice { start: 0, len: t }, &[wpe], "wpe[:T]")?,
            };
            x = self.g.add(Op::Add, &[x, pos], "embed+pos")?;
        }
        Ok((wte, x))
    }

    /// Layer `l`'s attention with its residual: `x + out(attn(norm(x)))`.
    fn attention_block(
        &mut self,
        l: usize,
        p: &str,
        x: NodeId,
        positions: Option<NodeId>,
    ) -> Result<NodeId> {
        let m = self.m;
        let h = layer_label(l);
        let (q, k, vv, out_prefix) = self.qkv(l, p, x)?;
        let (q, k) = if m.position == Position::Rope {
            let rope = Op::Rope {
                inverse: false,
                head_dim: m.head_dim(),
                theta: m.rope_theta,
            };
            let ins = |x: NodeId| {
                [Some(x), positions]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
            };
            let q = self.g.add(rope.clone(), &ins(q), h("attn.q_rope"))?;
            let k = self.g.add(rope, &ins(k), h("attn.k_rope"))?;
            (q, k)
        } else {
            (q, k)
        };
        let a = match positions {
            Some(ps) => self.cached_attention(l, q, k, vv, ps)?,
            None => self.g.add(
                Op::Attention {
                    heads: m.heads,
                    kv_heads: m.kv_heads,
                    head_dim: m.head_dim(),
                },
                &[q, k, vv],
                h("attn"),
            )?,
        };
        let o = self.linear(
            a,
            &out_prefix,
            m.heads * m.head_dim(),
            m.d_model,
            m.bias,
            &h("attn.out"),
        )?;
        self.g.add(Op::Add, &[x, o], h("resid_attn"))
    }

    /// The normed input and its query, key and value projections, and the
    /// prefix of the output projection: GPT-2 packs q, k, v in one `c_attn`
    /// and narrows it; Llama has three projections (k and v over `kv_heads`).
    fn qkv(&mut self, l: usize, p: &str, x: NodeId) -> Result<(NodeId, NodeId, NodeId, String)> {
        let m = self.m;
        let h = layer_label(l);
        let (c, nh, nkv, hd) = (m.d_model, m.heads, m.kv_heads, m.head_dim());
        if m.family == Family::Gpt2 {
            let n = self.norm(x, &format!("{p}.ln_1"), &h("ln_1"))?;
            let qkv = self.linear(
                n,
                &format!("{p}.attn.c_attn"),
                c,
                3 * c,
                m.bias,
                &h("attn.qkv"),
            )?;
            let q = self
                .g
                .add(Op::Narrow { start: 0, len: c }, &[qkv], h("attn.q"))?;
            let k = self
                .g
                .add(Op::Narrow { start: c, len: c }, &[qkv], h("attn.k"))?;
            let vv = self.g.add(
                Op::Narrow {
                    start: 2 * c,
                    len: c,
                },
                &[qkv],
                h("attn.v"),
            )?;
            return Ok((q, k, vv, format!("{p}.attn.c_proj")));
        }
        let n = self.norm(x, &format!("{p}.input_layernorm"), &h("input_norm"))?;
        let sa = format!("{p}.self_attn");
        let q = self.linear(n, &format!("{sa}.q_proj"), c, nh * hd, m.bias, &h("attn.q"))?;
        let k = self.linear(
            n,
            &format!("{sa}.k_proj"),
            c,
            nkv * hd,
            m.bias,
            &h("attn.k"),
        )?;
        let vv = self.linear(
            n,
            &format!("{sa}.v_proj"),
            c,
            nkv * hd,
            m.bias,
            &h("attn.v"),
        )?;
        Ok((q, k, vv, format!("{sa}.o_proj")))
    }

    /// Append this step's keys and values to layer `l`'s cache, then attend
    /// over the cache.
    fn cached_attention(
        &mut self,
        l: usize,
        q: NodeId,
        k: NodeId,
        vv: NodeId,
        ps: NodeId,
    ) -> Result<NodeId> {
        let m = self.m;
        let h = layer_label(l);
        let [kn, vn] = cache_names(l);
        let kvd = m.kv_heads * m.head_dim();
        let state = |b: &mut Builder, name: String| {
            b.g.leaf(
                Op::State { name: name.clone() },
                TensorType::f32(&[m.context, kvd]),
                name,
            )
        };
        let (kc, vc) = (state(self, kn), state(self, vn));
        let kc = self
            .g
            .add(Op::CacheWrite, &[kc, k, ps], h("attn.k_cache"))?;
        let vc = self
            .g
            .add(Op::CacheWrite, &[vc, vv, ps], h("attn.v_cache"))?;
        self.g.add(
            Op::CachedAttention {
                heads: m.heads,
                kv_heads: m.kv_heads,
                head_dim: m.head_dim(),
            },
            &[q, kc, vc, ps],
            h("attn"),
        )
    }

    /// Layer `l`'s feed-forward with its residual: GPT-2's `proj(act(fc(x)))`,
    /// Llama's gated `down(act(gate(x)) * up(x))`.
    fn ffn_block(&mut self, l: usize, p: &str, x: NodeId) -> Result<NodeId> {
        let m = self.m;
        let h = layer_label(l);
        let (c, f) = (m.d_model, m.ffn_hidden);
        let y = if m.family == Family::Gpt2 {
            let n = self.norm(x, &format!("{p}.ln_2"), &h("ln_2"))?;
            let u = self.linear(n, &format!("{p}.mlp.c_fc"), c, f, m.bias, &h("mlp.fc"))?;
            let u = self.g.add(
                Op::Act(m.activation),
                &[u],
                h(&format!("mlp.{}", m.activation.def().mnemonic)),
            )?;
            self.linear(u, &format!("{p}.mlp.c_proj"), f, c, m.bias, &h("mlp.proj"))?
        } else {
            let n = self.norm(
                x,
                &format!("{p}.post_attention_layernorm"),
                &h("post_attn_norm"),
            )?;
            let mp = format!("{p}.mlp");
            let gate = self.linear(n, &format!("{mp}.gate_proj"), c, f, m.bias, &h("mlp.gate"))?;
            let up = self.linear(n, &format!("{mp}.up_proj"), c, f, m.bias, &h("mlp.up"))?;
            debug_assert!(m.activation.def().gated);
            let act = m.activation.def().mnemonic;
            let s = self
                .g
                .add(Op::Act(m.activation), &[gate], h(&format!("mlp.{act}")))?;
            let s = self.g.add(Op::Mul, &[s, up], h("mlp.swiglu"))?;
            self.linear(s, &format!("{mp}.down_proj"), f, c, m.bias, &h("mlp.down"))?
        };
        self.g.add(Op::Add, &[x, y], h("resid_mlp"))
    }

    /// The final norm and the head (tied to `wte` or its own), output
    /// `logits`, and with targets the mean cross-entropy `loss`.
    fn head(&mut self, x: NodeId, wte: NodeId, names: &HfNames, p: Program) -> Result<()> {
        let m = self.m;
        let n = self.norm(x, names.ln_f, "ln_f")?;
        let head_w = if m.tied_embeddings {
            wte
        } else {
            self.param(names.head, &[m.vocab_size, m.d_model])
        };
        let logits = self.g.add(
            Op::MatMul {
                ta: false,
                tb: true,
                bf16: false,
            },
            &[n, head_w],
            "logits",
        )?;
        self.g.mark_output("logits", logits);
        if p.with_loss {
            let targets = self.input("targets", &[p.batch, p.seq]);
            let loss = self.g.add(Op::CrossEntropy, &[logits, targets], "loss")?;
            self.g.mark_output("loss", loss);
        }
        Ok(())
    }
}
