//! Moving models to and from Hugging Face transformers.
//!
//! `export_hf` writes a folder `from_pretrained` loads: `config.json`
//! (`GPT2LMHeadModel` or `LlamaForCausalLM`), `model.safetensors` (irc's
//! parameter names already are the HF names; a tied head is not stored), and
//! `tokenizer.json` when given. `import_hf` reads such a folder back into a
//! spec TOML and a weights file irc loads, refusing any config field irc
//! cannot reproduce exactly, by name.

use crate::driver;
use crate::error::{At, Error, Result};
use crate::ops::Act;
use crate::runtime::{ParamEntry, Weights};
use crate::spec::{Family, Spec};
use crate::util::atomic_write;
use serde_json::{json, Map, Value};
use std::path::Path;

/// The parameter table of `spec` (names and shapes), from the compiled graph.
pub(crate) fn param_table(spec: &Spec) -> Result<Vec<ParamEntry>> {
    let c = driver::compile(spec, crate::model::program(spec))?;
    Ok(c.memory
        .params
        .iter()
        .map(|p| ParamEntry {
            name: p.name.clone(),
            shape: p.shape.clone(),
            offset: p.offset,
            numel: p.shape.iter().product(),
        })
        .collect())
}

/// The `config.json` transformers reads for `spec`.
pub fn hf_config(spec: &Spec) -> Result<Value> {
    let m = &spec.model;
    let file = spec.path.display();
    Ok(match m.family {
        Family::Gpt2 => {
            if !m.bias {
                return Err(Error::new(format!(
                    "{file}: [model].bias = false: GPT2LMHeadModel always has biases, so this model cannot be exported as gpt2"
                )));
            }
            json!({
                "architectures": ["GPT2LMHeadModel"],
                "model_type": "gpt2",
                "vocab_size": m.vocab_size,
                "n_positions": m.context,
                "n_ctx": m.context,
                "n_embd": m.d_model,
                "n_layer": m.layers,
                "n_head": m.heads,
                "n_inner": m.ffn_hidden,
                "activation_function": m.activation.def().hf[0],
                "layer_norm_epsilon": m.norm_eps,
                "initializer_range": m.init_std,
                "tie_word_embeddings": m.tied_embeddings,
                "scale_attn_weights": true,
                "scale_attn_by_inverse_layer_idx": false,
                "reorder_and_upcast_attn": false,
                "add_cross_attention": false,
                "resid_pdrop": 0.0,
                "embd_pdrop": 0.0,
                "attn_pdrop": 0.0,
                "use_cache": true,
                "dtype": "float32",
                "torch_dtype": "float32",
            })
        }
        Family::Llama => json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": m.vocab_size,
            "hidden_size": m.d_model,
            "intermediate_size": m.ffn_hidden,
            "num_hidden_layers": m.layers,
            "num_attention_heads": m.heads,
            "num_key_value_heads": m.kv_heads,
            "head_dim": m.head_dim(),
            "max_position_embeddings": m.context,
            "rms_norm_eps": m.norm_eps,
            "rope_theta": m.rope_theta,
            "rope_parameters": { "rope_type": "default", "rope_theta": m.rope_theta },
            "rope_scaling": null,
            "attention_bias": m.bias,
            "mlp_bias": m.bias,
            "attention_dropout": 0.0,
            "hidden_act": m.activation.def().hf[0],
            "initializer_range": m.init_std,
            "tie_word_embeddings": m.tied_embeddings,
            "pretraining_tp": 1,
            "use_cache": true,
            "dtype": "float32",
            "torch_dtype": "float32",
        }),
    })
}

/// Write `dir/config.json`, `dir/model.safetensors` and (when given)
/// `dir/tokenizer.json`, each atomically.
pub fn export_hf(
    spec: &Spec,
    weights: &Weights,
    tokenizer: Option<&Path>,
    dir: &Path,
) -> Result<()> {
    let config = hf_config(spec)?;
    let table = param_table(spec)?;
    weights
        .check_against(&table)
        .map_err(|e| e.context("export --hf"))?;
    // Exactly the parameters (a tied head is not stored; HF ties it on load).
    let mut out = Weights::default();
    for p in &table {
        let t = weights.get(&p.name).expect("checked");
        out.insert(&p.name, &t.shape, t.data.clone());
    }
    let tok = match tokenizer {
        Some(p) => {
            // Copied as is, once it is known to be a tokenizer irc reads.
            crate::tokenizer::Tokenizer::load(p)?;
            Some(crate::util::read_user_file(p)?)
        }
        None => None,
    };
    let meta = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    let config_text = serde_json::to_string_pretty(&config)? + "\n";
    atomic_write(&dir.join("model.safetensors"), &out.to_bytes(Some(meta))?)?;
    atomic_write(&dir.join("config.json"), config_text.as_bytes())?;
    if let Some(bytes) = tok {
        atomic_write(&dir.join("tokenizer.json"), &bytes)?;
    }
    Ok(())
}

/// A config.json read with the file in every message.
struct Config<'a> {
    file: String,
    obj: &'a Map<String, Value>,
}

impl Config<'_> {
    fn err(&self, field: &str, msg: impl std::fmt::Display) -> Error {
        Error::new(format!("{}: `{field}`: {msg}", self.file))
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    fn usize(&self, field: &str, default: Option<usize>) -> Result<usize> {
        match self.get(field) {
            None => default.ok_or_else(|| self.err(field, "missing; expected a positive integer")),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(n as usize),
                _ => Err(self.err(field, format!("expected a positive integer, found {v}"))),
            },
        }
    }

    fn f64(&self, field: &str, default: f64) -> Result<f64> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x > 0.0 => Ok(x),
                _ => Err(self.err(field, format!("expected a positive number, found {v}"))),
            },
        }
    }

    fn bool(&self, field: &str, default: bool) -> Result<bool> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(field, format!("expected true or false, found {v}"))),
        }
    }

    fn str(&self, field: &str) -> Option<&str> {
        self.get(field).and_then(|v| v.as_str())
    }

    /// The activation `field` names (`default` when absent), among those of
    /// a gated (Llama) or plain (GPT-2) MLP.
    fn activation(&self, field: &str, default: &str, gated: bool) -> Result<Act> {
        let name = match self.get(field) {
            None => default,
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.err(field, format!("{v} is not a string")))?,
        };
        Act::from_hf(name, gated).ok_or_else(|| {
            let ok: Vec<String> = Act::ALL
                .iter()
                .filter(|a| a.def().gated == gated)
                .flat_map(|a| a.def().hf.iter().map(|n| format!("\"{n}\"")))
                .collect();
            self.err(
                field,
                format!(
                    "\"{name}\" is not supported: irc implements {}",
                    ok.join(", ")
                ),
            )
        })
    }

    /// `field` absent, or one of the values irc computes exactly.
    fn only(&self, field: &str, ok: &[Value], why: &str) -> Result<()> {
        match self.get(field) {
            Some(v) if !ok.contains(v) => Err(self.err(
                field,
                format!("{v} is not supported: irc implements only {why}"),
            )),
            _ => Ok(()),
        }
    }
}

fn model_name(dir: &Path) -> String {
    let stem = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|s| s.to_string_lossy().to_string()))
        .unwrap_or_else(|| "model".into());
    crate::spec::sanitize_name(&stem)
}

/// The `[model]` entries for a config.json, in the order a spec lists them.
fn model_table(c: &Config, name: &str) -> Result<Vec<(String, toml::Value)>> {
    let mut t = vec![];
    let mut set = |k: &str, v: toml::Value| t.push((k.to_string(), v));
    let int = |n: usize| toml::Value::Integer(n as i64);
    set("name", toml::Value::String(name.to_string()));
    let model_type = c.str("model_type").unwrap_or("");
    let archs: Vec<&str> = c
        .get("architectures")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    match model_type {
        "gpt2" => {
            if let Some(a) = archs.iter().find(|a| !matches!(**a, "GPT2LMHeadModel" | "GPT2Model")) {
                return Err(c.err("architectures", format!("\"{a}\" is not supported; expected GPT2LMHeadModel")));
            }
            let act = c.activation("activation_function", "gelu_new", false)?;
            c.only("scale_attn_by_inverse_layer_idx", &[json!(false)], "false (no per-layer attention scaling)")?;
            c.only("scale_attn_weights", &[json!(true)], "true (scores scaled by 1/sqrt(head_dim))")?;
            c.only("add_cross_attention", &[json!(false)], "false (decoder-only)")?;
            let d = c.usize("n_embd", Some(768))?;
            set("family", toml::Value::String("gpt2".into()));
            set("vocab_size", int(c.usize("vocab_size", Some(50257))?));
            set("context", int(c.usize("n_positions", Some(1024))?));
            set("layers", int(c.usize("n_layer", Some(12))?));
            set("d_model", int(d));
            set("heads", int(c.usize("n_head", Some(12))?));
            set("ffn_hidden", int(c.usize("n_inner", Some(4 * d))?));
            set("norm_eps", toml::Value::Float(c.f64("layer_norm_epsilon", 1e-5)?));
            if act != Act::GeluTanh {
                set("activation", toml::Value::String(act.def().spec.into()));
            }
            set("bias", toml::Value::Boolean(true));
            set("tied_embeddings", toml::Value::Boolean(c.bool("tie_word_embeddings", true)?));
        }
        "llama" => {
            if let Some(a) = archs.iter().find(|a| !matches!(**a, "LlamaForCausalLM" | "LlamaModel")) {
                return Err(c.err("architectures", format!("\"{a}\" is not supported; expected LlamaForCausalLM")));
            }
            let act = c.activation("hidden_act", "silu", true)?;
            c.only("pretraining_tp", &[json!(1)], "1")?;
            let d = c.usize("hidden_size", Some(4096))?;
            let heads = c.usize("num_attention_heads", Some(32))?;
            let kv = c.usize("num_key_value_heads", Some(heads))?;
            if d % heads != 0 {
                return Err(c.err("num_attention_heads", format!("{heads} does not divide hidden_size = {d}")));
            }
            let hd = c.usize("head_dim", Some(d / heads))?;
            if hd != d / heads {
                return Err(c.err("head_dim", format!("{hd} is not supported: irc needs head_dim = hidden_size / num_attention_heads = {}", d / heads)));
            }
            // Rope: only the default (unscaled) kind, in either config layout.
            for field in ["rope_scaling", "rope_parameters"] {
                if let Some(v) = c.get(field) {
                    let kind = v.get("rope_type").or_else(|| v.get("type")).and_then(|x| x.as_str()).unwrap_or("default");
                    if kind != "default" {
                        return Err(c.err(field, format!("rope_type \"{kind}\" is not supported: irc implements only the default (unscaled) RoPE")));
                    }
                }
            }
            let theta = match c.get("rope_parameters").and_then(|p| p.get("rope_theta")) {
                Some(v) => v.as_f64().filter(|x| x.is_finite() && *x > 0.0).ok_or_else(|| {
                    c.err("rope_parameters.rope_theta", format!("expected a positive number, found {v}"))
                })?,
                None => c.f64("rope_theta", 10000.0)?,
            };
            let attn_bias = c.bool("attention_bias", false)?;
            let mlp_bias = c.bool("mlp_bias", attn_bias)?;
            if attn_bias != mlp_bias {
                return Err(c.err("mlp_bias", format!("{mlp_bias} with attention_bias = {attn_bias} is not supported: irc has one `bias` switch for both")));
            }
            set("family", toml::Value::String("llama".into()));
            set("vocab_size", int(c.usize("vocab_size", Some(32000))?));
            set("context", int(c.usize("max_position_embeddings", Some(2048))?));
            set("layers", int(c.usize("num_hidden_layers", Some(32))?));
            set("d_model", int(d));
            set("heads", int(heads));
            set("kv_heads", int(kv));
            set("ffn_hidden", int(c.usize("intermediate_size", Some(11008))?));
            set("norm_eps", toml::Value::Float(c.f64("rms_norm_eps", 1e-6)?));
            set("rope_theta", toml::Value::Float(theta));
            set("bias", toml::Value::Boolean(attn_bias));
            if act != Act::Silu {
                set("activation", toml::Value::String(act.def().spec.into()));
            }
            set("tied_embeddings", toml::Value::Boolean(c.bool("tie_word_embeddings", false)?));
        }
        "" => return Err(c.err("model_type", "missing; expected \"gpt2\" or \"llama\"")),
        other => {
            return Err(c.err(
                "model_type",
                format!("\"{other}\" is not supported; expected \"gpt2\" (GPT2LMHeadModel) or \"llama\" (LlamaForCausalLM)"),
            ))
        }
    }
    if let Some(std) = c.get("initializer_range").and_then(|v| v.as_f64()) {
        if std.is_finite() && std > 0.0 {
            set("init_std", toml::Value::Float(std));
        }
    }
    Ok(t)
}

/// The sizes of the `[model]` entries within [`crate::limits`], before any
/// graph is made of them, each breach named by its config.json field (the
/// imported spec has no `[build]`: one sequence of the whole context).
fn check_limits(c: &Config, model: &[(String, toml::Value)]) -> Result<()> {
    let get = |k: &str| {
        model
            .iter()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| v.as_integer())
            .map(|v| v as u64)
    };
    let n = |k: &str| get(k).unwrap_or(1);
    let gpt2 = c.str("model_type") == Some("gpt2");
    let dims = crate::limits::Dims {
        vocab_size: n("vocab_size"),
        context: n("context"),
        layers: n("layers"),
        d_model: n("d_model"),
        heads: n("heads"),
        kv_heads: get("kv_heads").unwrap_or(n("heads")),
        ffn_hidden: n("ffn_hidden"),
        packed_qkv: gpt2,
        learned_positions: gpt2,
        batch: 1,
        seq_len: n("context"),
    };
    crate::limits::check_dims(&dims).map_err(|b| c.err(config_field(c, b.key), b.message))
}

/// The config.json field a spec key of [`model_table`] comes from (the
/// compiled batch shape of an imported spec is one sequence of the context).
fn config_field(c: &Config, key: &str) -> &'static str {
    let gpt2 = c.str("model_type") == Some("gpt2");
    match (key, gpt2) {
        ("vocab_size", _) => "vocab_size",
        ("context" | "batch" | "seq_len", true) => "n_positions",
        ("context" | "batch" | "seq_len", false) => "max_position_embeddings",
        ("layers", true) => "n_layer",
        ("layers", false) => "num_hidden_layers",
        ("d_model", true) => "n_embd",
        ("d_model", false) => "hidden_size",
        ("heads", true) | ("kv_heads", true) => "n_head",
        ("heads", false) => "num_attention_heads",
        ("kv_heads", false) => "num_key_value_heads",
        ("ffn_hidden", true) => "n_inner",
        _ => "intermediate_size",
    }
}

/// Read the checkpoint of an HF folder: `model.safetensors`, or the shards of
/// `model.safetensors.index.json`.
fn read_checkpoint(dir: &Path) -> Result<Weights> {
    let single = dir.join("model.safetensors");
    if crate::util::is_there(&single) {
        return Weights::load(&single);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = crate::util::read_user_text(&index)?;
        let v: Value = serde_json::from_str(&text).at(index.display())?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::new(format!("{}: `weight_map`: missing", index.display())))?;
        let mut shards: Vec<&str> = map.values().filter_map(|s| s.as_str()).collect();
        shards.sort();
        shards.dedup();
        let mut w = Weights::default();
        for s in shards {
            if s.contains('/') || s.contains('\\') || s.starts_with('.') {
                return Err(Error::new(format!(
                    "{}: `weight_map`: shard name \"{s}\" is not a file in the folder",
                    index.display()
                )));
            }
            w.tensors.extend(Weights::load(&dir.join(s))?.tensors);
        }
        return Ok(w);
    }
    if dir.join("pytorch_model.bin").exists() {
        return Err(Error::new(format!(
            "{}: only pytorch_model.bin found; irc reads safetensors (convert with `model.save_pretrained(dir, safe_serialization=True)`)",
            dir.display()
        )));
    }
    Err(Error::new(format!(
        "{}: no model.safetensors",
        dir.display()
    )))
}

/// Names as irc (and `*ForCausalLM`) expects them: base-model checkpoints
/// (`GPT2Model`, `LlamaModel`) store them without the `transformer.` /
/// `model.` prefix; buffers and a tied head are dropped.
fn normalize(family: Family, tied: bool, w: Weights) -> Weights {
    let prefix = match family {
        Family::Gpt2 => "transformer.",
        Family::Llama => "model.",
    };
    let mut out = Weights::default();
    for (name, t) in w.tensors {
        let name = if name == "lm_head.weight" || name.starts_with(prefix) {
            name
        } else {
            format!("{prefix}{name}")
        };
        let buffer = name.ends_with(".attn.bias") && family == Family::Gpt2 && t.shape.len() == 4
            || name.ends_with(".attn.masked_bias")
            || name.ends_with("rotary_emb.inv_freq");
        if buffer || (tied && name == "lm_head.weight") {
            continue;
        }
        out.tensors.insert(name, t);
    }
    out
}

/// Read an HF folder (config.json + safetensors) into `out_spec` (a spec
/// TOML) and `out_weights` (safetensors irc loads); returns the spec.
pub fn import_hf(dir: &Path, out_spec: &Path, out_weights: &Path) -> Result<Spec> {
    let cfg_path = dir.join("config.json");
    crate::util::user_path(dir)?;
    let text = crate::util::read_user_text(&cfg_path)?;
    let value: Value = serde_json::from_str(&text).at(cfg_path.display())?;
    let obj = value
        .as_object()
        .ok_or_else(|| Error::new(format!("{}: expected a JSON object", cfg_path.display())))?;
    let c = Config {
        file: cfg_path.display().to_string(),
        obj,
    };
    let model = model_table(&c, &model_name(dir))?;
    check_limits(&c, &model)?;
    let body: String = model.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let src = format!(
        "# Imported from {} by irc (Hugging Face {}).\n# Add a [build] section to set batch, seq_len, threads or target.\n[model]\n{body}",
        dir.display(),
        c.str("model_type").unwrap_or("?"),
    );
    let spec = Spec::parse(out_spec, &src)
        .map_err(|e| e.context(format!("importing {}", cfg_path.display())))?;

    let table = param_table(&spec)?;
    let params = table.iter().map(|p| p.numel).sum::<usize>() as u64;
    // Read, then written again: the tensors and the new file's bytes.
    crate::limits::fits_in_memory(
        8 * params,
        "importing this model's weights (the tensors and their new file)",
    )
    .map_err(|msg| c.err(config_field(&c, "layers"), msg))?;
    let w = normalize(
        spec.model.family,
        spec.model.tied_embeddings,
        read_checkpoint(dir)?,
    );
    w.check_against(&table)
        .map_err(|e| e.context(format!("{} (with {})", dir.display(), cfg_path.display())))?;
    let meta = [("source".to_string(), dir.display().to_string())]
        .into_iter()
        .collect();
    atomic_write(out_spec, src.as_bytes())?;
    w.save(out_weights, Some(meta))?;
    Ok(spec)
}
