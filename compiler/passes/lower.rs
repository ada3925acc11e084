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
    let (c, v, f) = (m.d_model, m.vocab_size, m.ffn_hidden);
    let (nh, nkv, hd) = (m.heads, m.kv_heads, m.head_dim());
    let gpt2 = m.family == Family::Gpt2;
    let tokens = b.g.leaf(
        Op::Input {
            name: "tokens".into(),
        },
        TensorType::i32(&[bs, t]),
        "tokens",
    );

    let (wte_name, layer, ln_f, head) = if gpt2 {
        (
            "transformer.wte.weight",
            "transformer.h",
            "transformer.ln_f",
            "lm_head.weight",
        )
    } else {
        (
            "model.embed_tokens.weight",
            "model.layers",
            "model.norm",
            "lm_head.weight",
        )
    };
    // A cached step's tokens sit at runtime positions; a forward's at 0..T.
    let positions = p.cached.then(|| {
        b.g.leaf(
            Op::Input {
                name: "positions".into(),
            },
            TensorType::i32(&[1, t]),
            "positions",
        )
    });
    let wte = b.param(wte_name, &[v, c]);
    let mut x = b.g.add(Op::Embedding, &[wte, tokens], "embed")?;
    if m.position == Position::Learned {
        let wpe = b.param("transformer.wpe.weight", &[m.context, c]);
        let pos = match positions {
            Some(ps) => b.g.add(Op::Embedding, &[wpe, ps], "wpe[positions]")?,
            None => b.g.add(Op::Slice { start: 0, len: t }, &[wpe], "wpe[:T]")?,
        };
        x = b.g.add(Op::Add, &[x, pos], "embed+pos")?;
    }

    for l in 0..m.layers {
        let p = format!("{layer}.{l}");
        let h = |s: &str| format!("h{l}.{s}");
        let rope = Op::Rope {
            inverse: false,
            head_dim: hd,
            theta: m.rope_theta,
        };
        // Attention.
        let (q, k, vv, out_prefix) = if gpt2 {
            let n = b.norm(x, &format!("{p}.ln_1"), &h("ln_1"))?;
            let qkv = b.linear(
                n,
                &format!("{p}.attn.c_attn"),
                c,
                3 * c,
                m.bias,
                &h("attn.qkv"),
            )?;
            let q =
                b.g.add(Op::Narrow { start: 0, len: c }, &[qkv], h("attn.q"))?;
            let k =
                b.g.add(Op::Narrow { start: c, len: c }, &[qkv], h("attn.k"))?;
            let vv = b.g.add(
                Op::Narrow {
                    start: 2 * c,
                    len: c,
                },
                &[qkv],
                h("attn.v"),
            )?;
            (q, k, vv, format!("{p}.attn.c_proj"))
        } else {
            let n = b.norm(x, &format!("{p}.input_layernorm"), &h("input_norm"))?;
            let sa = format!("{p}.self_attn");
            let q = b.linear(n, &format!("{sa}.q_proj"), c, nh * hd, m.bias, &h("attn.q"))?;
            let k = b.linear(
                n,
                &format!("{sa}.k_proj"),
                c,
                nkv * hd,
                m.bias,
                &h("attn.k"),
            )?;
            let vv = b.linear(
                n,
                &format!("{sa}.v_proj"),
                c,
                nkv * hd,
                m.bias,
                &h("attn.v"),
            )?;
            (q, k, vv, format!("{sa}.o_proj"))
        };
        let (q, k) = if m.position == Position::Rope {
            let ins = |x: NodeId| {
                [Some(x), positions]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
            };
            let q = b.g.add(rope.clone(), &ins(q), h("attn.q_rope"))?;
            let k = b.g.add(rope, &ins(k), h("attn.k_rope"))?;
            (q, k)
        } else {
            (q, k)
        };
        let a = match positions {
            Some(ps) => {
                // Append this step's keys and values to the layer's cache,
                // then attend over the cache.
                let [kn, vn] = cache_names(l);
                let kvd = nkv * hd;
                let state = |b: &mut Builder, name: String| {
                    b.g.leaf(
                        Op::State { name: name.clone() },
                        TensorType::f32(&[m.context, kvd]),
                        name,
                    )
                };
                let (kc, vc) = (state(&mut b, kn), state(&mut b, vn));
                let kc = b.g.add(Op::CacheWrite, &[kc, k, ps], h("attn.k_cache"))?;
                let vc = b.g.add(Op::CacheWrite, &[vc, vv, ps], h("attn.v_cache"))?;
                b.g.add(
                    Op::CachedAttention {
                        heads: nh,
                        kv_heads: nkv,
                        head_dim: hd,
                    },
                    &[q, kc, vc, ps],
                    h("attn"),
                )?
            }
            None => b.g.add(
                Op::Attention {
                    heads: nh,
                    kv_heads: nkv,
                    head_dim: hd,
                },
                &[q, k, vv],
                h("attn"),
            )?,
        };
        let o = b.linear(a, &out_prefix, nh * hd, c, m.bias, &h("attn.out"))?;
        x = b.g.add(Op::Add, &[x, o], h("resid_attn"))?;

        // Feed-forward.
        let y = if gpt2 {
            let n = b.norm(x, &format!("{p}.ln_2"), &h("ln_2"))?;
            let u = b.linear(n, &format!("{p}.mlp.c_fc"), c, f, m.bias, &h("mlp.fc"))?;
            let u = b.g.add(
                Op::Act(m.activation),
                &[u],
                h(&format!("mlp.{}", m.activation.def().mnemonic)),
            )?;
            b.linear(u, &format!("{p}.mlp.c_proj"), f, c, m.bias, &h("mlp.proj"))?
        } else {
            let n = b.norm(
                x,
                &format!("{p}.post_attention_layernorm"),
                &h("post_attn_norm"),
            )?;
            let mp = format!("{p}.mlp");
            let gate = b.linear(n, &format!("{mp}.gate_proj"), c, f, m.bias, &h("mlp.gate"))?;
            let up = b.linear(n, &format!("{mp}.up_proj"), c, f, m.bias, &h("mlp.up"))?;
            debug_assert!(m.activation.def().gated);
            let act = m.activation.def().mnemonic;
            let s =
                b.g.add(Op::Act(m.activation), &[gate], h(&format!("mlp.{act}")))?;
            let s = b.g.add(Op::Mul, &[s, up], h("mlp.swiglu"))?;
            b.linear(s, &format!("{mp}.down_proj"), f, c, m.bias, &h("mlp.down"))?
        };
        x = b.g.add(Op::Add, &[x, y], h("resid_mlp"))?;
    }

    let n = b.norm(x, ln_f, "ln_f")?;
    let head_w = if m.tied_embeddings {
        wte
    } else {
        b.param(head, &[v, c])
    };
    let logits = b.g.add(
        Op::MatMul {
            ta: false,
            tb: true,
        },
        &[n, head_w],
        "logits",
    )?;
    b.g.mark_output("logits", logits);
    if p.with_loss {
        let targets = b.g.leaf(
            Op::Input {
                name: "targets".into(),
            },
            TensorType::i32(&[bs, t]),
            "targets",
        );
        let loss = b.g.add(Op::CrossEntropy, &[logits, targets], "loss")?;
        b.g.mark_output("loss", loss);
    }
    Ok(b.g)
}
