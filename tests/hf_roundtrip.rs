//! Hugging Face interop: `export_hf` → `import_hf` is lossless; importing the
//! transformers folders in tests/reference reproduces their logits; and, when
//! torch + transformers are installed, transformers itself loads an exported
//! folder and computes the same logits.

mod common;
use common::*;
use irc::hf::{export_hf, hf_config, import_hf};
use irc::model;
use irc::runtime::Weights;
use irc::spec::Spec;
use std::path::Path;
use std::process::Command;

/// Import `tests/reference/<name>` into `tmp`, with the reference's (2, 16) batch compiled.
fn import_reference(name: &str, tmp: &Path) -> (Spec, Weights) {
    let src = root().join("tests/reference").join(name);
    let (spec_path, w_path) = (
        tmp.join(format!("{name}.toml")),
        tmp.join(format!("{name}.safetensors")),
    );
    let spec =
        import_hf(&src, &spec_path, &w_path).unwrap_or_else(|e| panic!("import {name}: {e}"));
    // What was written is what was returned.
    assert_eq!(Spec::load(&spec_path).unwrap().model, spec.model);
    (spec, Weights::load(&w_path).unwrap())
}

fn logits(spec: &Spec, w: &Weights, tokens: &[i32], b: usize, t: usize, dir: &Path) -> Vec<f32> {
    let mut spec = spec.clone();
    spec.build.batch = b;
    spec.build.seq_len = t;
    let built = model::build(&spec, dir).unwrap();
    let mut s = built.session(2).unwrap();
    s.load_weights(w).unwrap();
    s.forward(tokens, b, t).unwrap()
}

#[test]
fn importing_the_reference_folders_reproduces_transformers() {
    for (name, spec_file) in [
        ("gpt2-tiny", "models/tiny-gpt2.toml"),
        ("llama-tiny", "models/tiny-llama.toml"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (spec, w) = import_reference(name, tmp.path());
        // Same model as the hand-written spec of that shape (but for the name).
        let mut want = spec_file_model(spec_file);
        want.name = spec.model.name.clone();
        assert_eq!(spec.model, want, "{name}: imported [model]");
        assert_eq!(spec.model.name, name.replace('-', "_"));
        // The tied GPT-2 head is not a tensor of its own.
        assert!(w.get("lm_head.weight").is_some() == (name == "llama-tiny"));

        let (shape, tokens) = reference_ids(name, "forward.safetensors", "input_ids");
        let want_logits = reference(name, "forward.safetensors")
            .get("logits")
            .unwrap()
            .data
            .clone();
        let got = logits(
            &spec,
            &w,
            &tokens,
            shape[0],
            shape[1],
            &tmp.path().join("build"),
        );
        let e = rel_err(&got, &want_logits);
        println!("{name}: imported logits vs transformers rel err {e:e}");
        assert!(e <= 1e-4, "{name}: rel err {e:e}");
    }
}

fn spec_file_model(rel: &str) -> irc::spec::ModelSpec {
    spec(rel).model
}

#[test]
fn export_then_import_is_lossless() {
    for spec_file in ["models/tiny-gpt2.toml", "models/tiny-llama.toml"] {
        let tmp = tempfile::tempdir().unwrap();
        let spec = spec(spec_file);
        let built = model::build(&spec, &tmp.path().join("a")).unwrap();
        let w = built.init_weights(7);
        let hf = tmp.path().join("hf_out");
        let tok = tmp.path().join("tok.json");
        // A real tokenizer: export refuses to copy a file that is not one.
        let cfg = irc::tokenizer::TokenizerConfig {
            vocab_size: 260,
            ..Default::default()
        };
        let (t, _) = irc::tokenizer::train::train(&["hello world hello world"], &cfg).unwrap();
        t.save(&tok).unwrap();
        export_hf(&spec, &w, Some(&tok), &hf).unwrap();
        assert_eq!(
            std::fs::read(hf.join("tokenizer.json")).unwrap(),
            std::fs::read(&tok).unwrap()
        );
        let stored = Weights::load(&hf.join("model.safetensors")).unwrap();
        assert_eq!(
            stored.get("lm_head.weight").is_some(),
            !spec.model.tied_embeddings
        );

        let (spec2, w2) = {
            let s = import_hf(
                &hf,
                &tmp.path().join("back.toml"),
                &tmp.path().join("back.safetensors"),
            )
            .unwrap();
            (
                s,
                Weights::load(&tmp.path().join("back.safetensors")).unwrap(),
            )
        };
        let mut m = spec2.model.clone();
        m.name = spec.model.name.clone();
        assert_eq!(m, spec.model, "{spec_file}: [model] after the roundtrip");
        assert_eq!(
            w2, w,
            "{spec_file}: weights after the roundtrip (bit for bit)"
        );

        let tokens: Vec<i32> = (0..2 * 16).map(|i| (i * 7 + 3) % 96).collect();
        let a = logits(&spec, &w, &tokens, 2, 16, &tmp.path().join("a"));
        let b = logits(&spec2, &w2, &tokens, 2, 16, &tmp.path().join("b"));
        assert_eq!(a, b, "{spec_file}: logits after the roundtrip");
        transformers_check(&hf, &tokens, &a);
    }
}

/// A tied Llama (no lm_head.weight stored) and its config.
#[test]
fn tied_llama_roundtrip() {
    let tmp = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(root().join("models/tiny-llama.toml"))
        .unwrap()
        .replace(
            "ffn_hidden = 160",
            "ffn_hidden = 160\ntied_embeddings = true\nrope_theta = 500000.0",
        );
    let spec = Spec::parse(&tmp.path().join("tied.toml"), &src).unwrap();
    let built = model::build(&spec, &tmp.path().join("a")).unwrap();
    let w = built.init_weights(3);
    export_hf(&spec, &w, None, &tmp.path().join("hf")).unwrap();
    assert!(!tmp.path().join("hf/tokenizer.json").exists());
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("hf/config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["tie_word_embeddings"], true);
    assert_eq!(cfg["rope_theta"], 500000.0);
    assert_eq!(cfg["rope_parameters"]["rope_theta"], 500000.0);
    assert_eq!(cfg["num_key_value_heads"], 2);
    assert_eq!(cfg["head_dim"], 16);
    let stored = Weights::load(&tmp.path().join("hf/model.safetensors")).unwrap();
    assert!(stored.get("lm_head.weight").is_none());
    let back = import_hf(
        &tmp.path().join("hf"),
        &tmp.path().join("b.toml"),
        &tmp.path().join("b.st"),
    )
    .unwrap();
    assert!(back.model.tied_embeddings);
    assert_eq!(back.model.rope_theta, 500000.0);
    assert_eq!(Weights::load(&tmp.path().join("b.st")).unwrap(), w);
}

#[test]
fn exported_configs_carry_the_hf_fields() {
    let g = hf_config(&spec("models/tiny-gpt2.toml")).unwrap();
    for (k, v) in [
        ("model_type", serde_json::json!("gpt2")),
        ("architectures", serde_json::json!(["GPT2LMHeadModel"])),
        ("vocab_size", 96.into()),
        ("n_positions", 32.into()),
        ("n_embd", 64.into()),
        ("n_layer", 2.into()),
        ("n_head", 4.into()),
        ("n_inner", 256.into()),
        ("activation_function", "gelu_new".into()),
        ("layer_norm_epsilon", 1e-5.into()),
        ("tie_word_embeddings", true.into()),
    ] {
        assert_eq!(g[k], v, "gpt2 config `{k}`");
    }
    let l = hf_config(&spec("models/tiny-llama.toml")).unwrap();
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/reference/llama-tiny/config.json")).unwrap(),
    )
    .unwrap();
    for k in [
        "model_type",
        "architectures",
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "max_position_embeddings",
        "rms_norm_eps",
        "rope_parameters",
        "attention_bias",
        "mlp_bias",
        "tie_word_embeddings",
        "hidden_act",
    ] {
        assert_eq!(
            l[k], want[k],
            "llama config `{k}` vs tests/reference/llama-tiny/config.json"
        );
    }
}

/// Each unsupported config names its file and field.
#[test]
fn unsupported_configs_are_refused_by_field() {
    let cases: [(&str, &str, &str, serde_json::Value, &str); 8] = [
        (
            "gpt2-tiny",
            "model_type",
            "model_type",
            "bert".into(),
            "\"bert\" is not supported",
        ),
        (
            "gpt2-tiny",
            "scale_attn_by_inverse_layer_idx",
            "scale_attn_by_inverse_layer_idx",
            true.into(),
            "not supported",
        ),
        (
            "gpt2-tiny",
            "activation_function",
            "activation_function",
            "quick_gelu".into(),
            "\"quick_gelu\" is not supported",
        ),
        (
            "llama-tiny",
            "rope_parameters",
            "rope_parameters",
            serde_json::json!({"rope_type": "linear", "factor": 2.0}),
            "rope_type \"linear\"",
        ),
        (
            "llama-tiny",
            "rope_scaling",
            "rope_scaling",
            serde_json::json!({"type": "dynamic", "factor": 2.0}),
            "rope_type \"dynamic\"",
        ),
        (
            "llama-tiny",
            "head_dim",
            "head_dim",
            32.into(),
            "head_dim = hidden_size / num_attention_heads",
        ),
        (
            "llama-tiny",
            "hidden_act",
            "hidden_act",
            "gelu".into(),
            "\"gelu\" is not supported",
        ),
        (
            "llama-tiny",
            "mlp_bias",
            "mlp_bias",
            true.into(),
            "one `bias` switch",
        ),
    ];
    for (reference, key, field, value, msg) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        std::fs::create_dir(&dir).unwrap();
        let src = root().join("tests/reference").join(reference);
        std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap())
                .unwrap();
        cfg[key] = value;
        std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
        let err = import_hf(&dir, &tmp.path().join("s.toml"), &tmp.path().join("w.st"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.json") && err.contains(&format!("`{field}`")) && err.contains(msg),
            "{key}: {err}"
        );
        assert!(
            !tmp.path().join("s.toml").exists(),
            "{key}: a spec was written despite the error"
        );
    }

    // Weights that do not fit the config: named tensor, no files written.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    let src = root().join("tests/reference/llama-tiny");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let mut w = Weights::load(&src.join("model.safetensors")).unwrap();
    w.tensors.remove("model.norm.weight");
    w.save(&dir.join("model.safetensors"), None).unwrap();
    let err = import_hf(&dir, &tmp.path().join("s.toml"), &tmp.path().join("w.st"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing `model.norm.weight`"), "{err}");
    assert!(!tmp.path().join("w.st").exists());

    // No config at all.
    let err = import_hf(
        tmp.path(),
        &tmp.path().join("s.toml"),
        &tmp.path().join("w.st"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("config.json"), "{err}");
}

/// Base-model checkpoints (GPT2Model: no `transformer.` prefix, with the
/// attention-mask buffers) import too.
#[test]
fn base_model_names_and_buffers_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gpt2_base");
    std::fs::create_dir(&dir).unwrap();
    let src = root().join("tests/reference/gpt2-tiny");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let w = Weights::load(&src.join("model.safetensors")).unwrap();
    let mut base = Weights::default();
    for (n, t) in &w.tensors {
        base.insert(
            n.strip_prefix("transformer.").unwrap_or(n),
            &t.shape,
            t.data.clone(),
        );
    }
    base.insert("h.0.attn.bias", &[1, 1, 32, 32], vec![1.0; 32 * 32]);
    base.save(&dir.join("model.safetensors"), None).unwrap();
    let spec = import_hf(&dir, &tmp.path().join("s.toml"), &tmp.path().join("w.st")).unwrap();
    assert_eq!(spec.model.name, "gpt2_base");
    assert_eq!(Weights::load(&tmp.path().join("w.st")).unwrap(), w);
}

/// transformers loads the exported folder and agrees, when it is installed.
fn transformers_check(hf: &Path, tokens: &[i32], want: &[f32]) {
    let have = Command::new("python3")
        .args(["-c", "import torch, transformers"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        println!(
            "SKIPPED: transformers check of {} (python3 cannot import torch and transformers; \
             `pip install torch transformers` and rerun `cargo test --test hf_roundtrip -- --nocapture`)",
            hf.display()
        );
        return;
    }
    let script = r#"
import json, sys, torch, transformers
folder, ids = sys.argv[1], json.loads(sys.argv[2])
m = transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
with torch.no_grad():
    out = m(torch.tensor(ids, dtype=torch.long)).logits
print(json.dumps(out.flatten().tolist()))
"#;
    let ids: Vec<Vec<i32>> = tokens.chunks(16).map(|c| c.to_vec()).collect();
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            hf.to_str().unwrap(),
            &serde_json::to_string(&ids).unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "transformers: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<f32> = serde_json::from_slice(&out.stdout).unwrap();
    let e = rel_err(want, &got);
    println!("transformers vs irc on {}: rel err {e:e}", hf.display());
    assert!(e <= 1e-4, "transformers vs irc rel err {e:e}");
}

/// Every activation of the op registry: exported under its Hugging Face name,
/// imported back to the same spec.
#[test]
fn every_activation_roundtrips_through_hf() {
    for &act in irc::ops::Act::ALL {
        let d = act.def();
        let file = if d.gated {
            "models/tiny-llama.toml"
        } else {
            "models/tiny-gpt2.toml"
        };
        let mut spec = spec(file);
        spec.model.activation = act;
        let field = if d.gated {
            "hidden_act"
        } else {
            "activation_function"
        };
        assert_eq!(hf_config(&spec).unwrap()[field], d.hf[0], "{}", d.spec);
        let tmp = tempfile::tempdir().unwrap();
        let built = model::build(&spec, &tmp.path().join("a")).unwrap();
        let hf = tmp.path().join("hf_out");
        export_hf(&spec, &built.init_weights(3), None, &hf).unwrap();
        let back = import_hf(&hf, &tmp.path().join("b.toml"), &tmp.path().join("b.st")).unwrap();
        assert_eq!(back.model.activation, act, "{}", d.spec);
    }
}
