//! `irc export --gguf`: the file read back whole (header, every metadata key
//! and value, tensor names, shapes, types, offsets and values: f32 exact,
//! q8_0 within its bound and bit for bit what llama.cpp's reference
//! quantizer gives), for tiny GPT-2 and tiny Llama; the LLaMA q/k
//! permutation checked against the two RoPE conventions; the `gguf` Python
//! package (llama.cpp's own reader) reading the same files, when installed.

mod common;
use common::*;
use irc::gguf::{export_gguf, FileType, GgmlType, GgufFile, Value, ValueType};
use irc::quant::{self, Q8Matrix};
use irc::runtime::Weights;
use irc::spec::Spec;
use irc::tokenizer::{train, Tokenizer, TokenizerConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// A tiny model's spec with a vocab that holds a byte-level tokenizer.
fn tiny(rel: &str, dir: &Path, extra: &str) -> Spec {
    let src = std::fs::read_to_string(root().join(rel))
        .unwrap()
        .replace("vocab_size = 96", &format!("vocab_size = 300{extra}"));
    let path = dir.join("m.toml");
    std::fs::write(&path, &src).unwrap();
    Spec::load(&path).unwrap()
}

fn init(spec: &Spec, seed: u64) -> Weights {
    let c = irc::driver::compile(spec, irc::model::program(spec)).unwrap();
    let shapes: Vec<_> = c
        .memory
        .params
        .iter()
        .map(|p| (p.name.clone(), p.shape.clone()))
        .collect();
    let mut w = Weights::init(&spec.model, &shapes, seed);
    // Norm weights and biases that are not all 1 or 0, so a mix-up shows.
    let mut rng = irc::util::Rng::new(seed + 1);
    for t in w.tensors.values_mut() {
        if t.shape.len() == 1 {
            for v in &mut t.data {
                *v += (rng.normal() * 0.1) as f32;
            }
        }
    }
    w
}

/// A byte-level tokenizer of 280 ids (so 20 pad ids up to vocab 300).
fn tokenizer(dir: &Path) -> (Tokenizer, std::path::PathBuf) {
    let text = "hello world, the quick brown fox jumps over the lazy dog 0.5 -12 <svg> </svg>\n"
        .repeat(20);
    let cfg = TokenizerConfig {
        vocab_size: 280,
        min_frequency: 1,
        ..Default::default()
    };
    let (t, _) = train::train(&[text.as_str()], &cfg).unwrap();
    assert_eq!(t.vocab_size(), 280, "the test's tokenizer fills its vocab");
    let p = dir.join("tokenizer.json");
    t.save(&p).unwrap();
    (Tokenizer::load(&p).unwrap(), p)
}

fn transpose(d: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| d[(i % rows) * cols + i / rows])
        .collect()
}

/// Row (h, 2i + j) of the GGUF tensor is row (h, j·head_dim/2 + i) of irc's.
fn pair_rows(d: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    let hd = d.len() / cols / heads;
    let mut out = vec![];
    for r in 0..heads * hd {
        let (h, within) = (r / hd, r % hd);
        let from = h * hd + (within % 2) * (hd / 2) + within / 2;
        out.extend_from_slice(&d[from * cols..(from + 1) * cols]);
    }
    out
}

/// What each GGUF tensor must hold: name → (ne, row-major values), from
/// irc's weights by the rules written out independently here.
fn expected(spec: &Spec, w: &Weights) -> BTreeMap<String, (Vec<u64>, Vec<f32>)> {
    let m = &spec.model;
    let mut out = BTreeMap::new();
    let mut put = |name: String, shape: Vec<usize>, data: Vec<f32>| {
        out.insert(
            name,
            (shape.iter().rev().map(|&d| d as u64).collect(), data),
        );
    };
    let get = |n: &str| w.get(n).unwrap_or_else(|| panic!("{n}"));
    let same = |n: &str| (get(n).shape.clone(), get(n).data.clone());
    match m.family {
        irc::spec::Family::Gpt2 => {
            let (s, d) = same("transformer.wte.weight");
            put("token_embd.weight".into(), s, d);
            let (s, d) = same("transformer.wpe.weight");
            put("position_embd.weight".into(), s, d);
            for l in 0..m.layers {
                let p = format!("transformer.h.{l}.");
                for (hf, gg) in [
                    ("ln_1", "attn_norm"),
                    ("ln_2", "ffn_norm"),
                    ("attn.c_attn", "attn_qkv"),
                    ("attn.c_proj", "attn_output"),
                    ("mlp.c_fc", "ffn_up"),
                    ("mlp.c_proj", "ffn_down"),
                ] {
                    let (s, d) = same(&format!("{p}{hf}.bias"));
                    put(format!("blk.{l}.{gg}.bias"), s, d);
                    let (s, d) = same(&format!("{p}{hf}.weight"));
                    if s.len() == 2 {
                        put(
                            format!("blk.{l}.{gg}.weight"),
                            vec![s[1], s[0]],
                            transpose(&d, s[0], s[1]),
                        );
                    } else {
                        put(format!("blk.{l}.{gg}.weight"), s, d);
                    }
                }
            }
            for k in ["weight", "bias"] {
                let (s, d) = same(&format!("transformer.ln_f.{k}"));
                put(format!("output_norm.{k}"), s, d);
            }
        }
        irc::spec::Family::Llama => {
            let (s, d) = same("model.embed_tokens.weight");
            put("token_embd.weight".into(), s, d);
            for l in 0..m.layers {
                let p = format!("model.layers.{l}.");
                for (hf, gg, heads) in [
                    ("input_layernorm", "attn_norm", 0),
                    ("post_attention_layernorm", "ffn_norm", 0),
                    ("self_attn.q_proj", "attn_q", m.heads),
                    ("self_attn.k_proj", "attn_k", m.kv_heads),
                    ("self_attn.v_proj", "attn_v", 0),
                    ("self_attn.o_proj", "attn_output", 0),
                    ("mlp.gate_proj", "ffn_gate", 0),
                    ("mlp.up_proj", "ffn_up", 0),
                    ("mlp.down_proj", "ffn_down", 0),
                ] {
                    for k in ["weight", "bias"] {
                        let Some(t) = w.get(&format!("{p}{hf}.{k}")) else {
                            continue;
                        };
                        let cols = if t.shape.len() == 2 { t.shape[1] } else { 1 };
                        let d = if heads > 0 {
                            pair_rows(&t.data, heads, cols)
                        } else {
                            t.data.clone()
                        };
                        put(format!("blk.{l}.{gg}.{k}"), t.shape.clone(), d);
                    }
                }
            }
            let (s, d) = same("model.norm.weight");
            put("output_norm.weight".into(), s, d);
        }
    }
    if let Some(t) = w.get("lm_head.weight") {
        put("output.weight".into(), t.shape.clone(), t.data.clone());
    }
    out
}

fn u32v(f: &GgufFile, k: &str) -> u32 {
    match f.get(k) {
        Some(Value::U32(v)) => *v,
        v => panic!("`{k}`: {v:?}"),
    }
}

/// Every metadata key, in order, with its value (the tokenizer arrays
/// checked entry by entry).
fn check_metadata(f: &GgufFile, spec: &Spec, tok: &Tokenizer, ty: FileType) {
    let m = &spec.model;
    let arch = if m.family == irc::spec::Family::Gpt2 {
        "gpt2"
    } else {
        "llama"
    };
    let a = |k: &str| format!("{arch}.{k}");
    let s = |v: &str| Value::Str(v.into());
    let u = |v: usize| Value::U32(v as u32);
    let mut want: Vec<(String, Value)> = vec![
        ("general.architecture".into(), s(arch)),
        ("general.type".into(), s("model")),
        ("general.name".into(), s(&m.name)),
        ("general.alignment".into(), u(32)),
        (
            "general.file_type".into(),
            u(if ty == FileType::F32 { 0 } else { 7 }),
        ),
        ("general.quantization_version".into(), u(2)),
        (a("vocab_size"), u(300)),
        (a("context_length"), u(m.context)),
        (a("embedding_length"), u(m.d_model)),
        (a("block_count"), u(m.layers)),
        (a("feed_forward_length"), u(m.ffn_hidden)),
        (a("attention.head_count"), u(m.heads)),
    ];
    if arch == "gpt2" {
        want.push((a("attention.layer_norm_epsilon"), Value::F32(1e-5)));
    } else {
        want.extend([
            (a("attention.head_count_kv"), u(m.kv_heads)),
            (a("rope.freq_base"), Value::F32(m.rope_theta as f32)),
            (a("rope.dimension_count"), u(m.d_model / m.heads)),
            (a("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        ]);
    }
    let eos = tok.eos_id().unwrap() as usize;
    want.extend([
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("gpt-2")),
    ]);
    let keys: Vec<&str> = f.metadata.iter().map(|(k, _)| k.as_str()).collect();
    let mut want_keys: Vec<&str> = want.iter().map(|(k, _)| k.as_str()).collect();
    want_keys.extend([
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.ggml.add_eos_token",
    ]);
    assert_eq!(keys, want_keys, "{arch}: metadata keys in order");
    for (k, v) in &want {
        assert_eq!(f.get(k), Some(v), "{arch}: `{k}`");
    }
    assert_eq!(
        u32v(f, "tokenizer.ggml.bos_token_id") as usize,
        eos,
        "<eos> starts a sample"
    );
    assert_eq!(u32v(f, "tokenizer.ggml.eos_token_id") as usize, eos);
    assert_eq!(
        u32v(f, "tokenizer.ggml.padding_token_id"),
        tok.pad_id().unwrap()
    );
    assert_eq!(
        f.get("tokenizer.ggml.add_bos_token"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        f.get("tokenizer.ggml.add_eos_token"),
        Some(&Value::Bool(false))
    );
    // Tokens: the tokenizer.json spelling of every id, then unused pads.
    let json: serde_json::Value = serde_json::from_str(&irc::tokenizer::hf::to_json(tok)).unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    let Some(Value::Array(ValueType::Str, tokens)) = f.get("tokenizer.ggml.tokens") else {
        panic!("tokens")
    };
    let Some(Value::Array(ValueType::I32, types)) = f.get("tokenizer.ggml.token_type") else {
        panic!("token_type")
    };
    assert_eq!((tokens.len(), types.len()), (300, 300));
    for (id, (t, ty)) in tokens.iter().zip(types).enumerate() {
        let Value::Str(t) = t else { panic!() };
        if id < tok.vocab_size() {
            assert_eq!(vocab[t.as_str()], id, "token {id} `{t}`");
            let control = tok.is_special(id as u32);
            assert_eq!(*ty, Value::I32(if control { 3 } else { 1 }), "type of {id}");
        } else {
            assert_eq!(t, &format!("[PAD{id}]"));
            assert_eq!(*ty, Value::I32(5));
        }
    }
    assert_eq!(tokens[eos], Value::Str("<eos>".into()));
    let Some(Value::Array(ValueType::Str, merges)) = f.get("tokenizer.ggml.merges") else {
        panic!("merges")
    };
    let want_merges: Vec<Value> = json["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Value::Str(m.as_str().unwrap().into()))
        .collect();
    assert!(!want_merges.is_empty());
    assert_eq!(merges, &want_merges, "merges in rank order");
}

/// Export both types; check everything; return the files.
fn export_and_check(rel: &str, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let spec = tiny(rel, dir, "");
    let w = init(&spec, 11);
    let (tok, tok_path) = tokenizer(dir);
    let want = expected(&spec, &w);
    let mut files = vec![];
    for ty in [FileType::F32, FileType::Q8_0] {
        let out = dir.join(format!("m-{}.gguf", ty.name()));
        let e = export_gguf(&spec, &w, &tok_path, &out, ty).unwrap();
        let f = GgufFile::load(&out).unwrap();
        assert_eq!(e.bytes, std::fs::metadata(&out).unwrap().len());
        assert_eq!(f.version, 3);
        assert_eq!(f.alignment, 32);
        assert_eq!(f.data_start % 32, 0);
        check_metadata(&f, &spec, &tok, ty);
        let names: Vec<&str> = f.tensors.iter().map(|t| t.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            want.keys().map(String::as_str).collect::<Vec<_>>(),
            "{rel}: tensor names"
        );
        assert_eq!(names[0], "token_embd.weight", "llama.cpp's order");
        assert!(
            names.iter().position(|n| n.starts_with("blk.1."))
                > names.iter().position(|n| n.starts_with("blk.0."))
        );
        // Offsets: aligned, in order, not overlapping.
        let mut end = 0;
        for t in &f.tensors {
            assert_eq!(t.offset % 32, 0, "{}", t.name);
            assert!(t.offset >= end, "{} overlaps", t.name);
            end = t.offset + t.size;
        }
        let mut worst = 0.0f32;
        for t in &f.tensors {
            let (ne, data) = &want[&t.name];
            assert_eq!(&t.ne, ne, "{rel}: `{}` ne", t.name);
            let q8 = ty == FileType::Q8_0 && ne.len() == 2 && t.name != "position_embd.weight";
            let want_ty = if q8 { GgmlType::Q8_0 } else { GgmlType::F32 };
            assert_eq!(t.ty, want_ty, "{rel}: `{}` type", t.name);
            let got = f.tensor_f32(&t.name).unwrap();
            if !q8 {
                assert_eq!(&got, data, "{rel}: `{}` f32 values", t.name);
                continue;
            }
            assert_eq!(t.size as usize, data.len() / 32 * 34);
            // Within the bound per block, and the very blocks of the reference.
            for (a, b) in data.chunks(32).zip(got.chunks(32)) {
                let amax = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= quant::error_bound(amax),
                        "`{}`: {x} vs {y}",
                        t.name
                    );
                    worst = worst.max((x - y).abs());
                }
            }
            let rows = data.len() / ne[0] as usize;
            let q = Q8Matrix::quantize(&t.name, data, rows, ne[0] as usize).unwrap();
            assert_eq!(
                f.tensor_bytes(t),
                q.to_bytes().as_slice(),
                "`{}` bytes",
                t.name
            );
        }
        if ty == FileType::Q8_0 {
            let (err, _) = e.max_error.clone().unwrap();
            assert_eq!(err, worst, "the reported largest error");
            assert!(e.quantized > 0);
            println!(
                "{rel}: q8_0 largest |x - x̂| {worst:.3e}, {} of {} tensors q8_0, {} bytes",
                e.quantized, e.tensors, e.bytes
            );
        } else {
            assert!(e.max_error.is_none());
            println!("{rel}: f32 {} tensors, {} bytes", e.tensors, e.bytes);
        }
        files.push(out);
    }
    (files[0].clone(), files[1].clone())
}

#[test]
fn tiny_gpt2_reads_back_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (f32_file, q8_file) = export_and_check("models/tiny-gpt2.toml", tmp.path());
    python_check(&f32_file, &q8_file, "gpt2");
}

#[test]
fn tiny_llama_reads_back_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (f32_file, q8_file) = export_and_check("models/tiny-llama.toml", tmp.path());
    python_check(&f32_file, &q8_file, "llama");
}

/// Rotate-half RoPE (irc, transformers) on HF rows and llama.cpp's
/// adjacent-pair RoPE on the permuted rows give the same attention scores.
#[test]
fn permuted_q_and_k_give_the_same_scores_under_llama_cpp_rope() {
    let (heads, hd, d) = (2usize, 8usize, 5usize);
    let mut rng = irc::util::Rng::new(3);
    let mut r = |n: usize| (0..n).map(|_| rng.normal()).collect::<Vec<f64>>();
    let (wq, wk, x1, x2) = (r(heads * hd * d), r(heads * hd * d), r(d), r(d));
    let mat = |w: &[f64], x: &[f64]| -> Vec<f64> {
        w.chunks(d)
            .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    };
    let ang = |pos: f64, i: usize| pos * 10000f64.powf(-(2.0 * i as f64) / hd as f64);
    let half_rope = |v: &[f64], pos: f64| -> Vec<f64> {
        let mut o = v.to_vec();
        for h in 0..heads {
            for i in 0..hd / 2 {
                let (a, b) = (v[h * hd + i], v[h * hd + i + hd / 2]);
                let (c, s) = (ang(pos, i).cos(), ang(pos, i).sin());
                o[h * hd + i] = a * c - b * s;
                o[h * hd + i + hd / 2] = b * c + a * s;
            }
        }
        o
    };
    let pair_rope = |v: &[f64], pos: f64| -> Vec<f64> {
        let mut o = v.to_vec();
        for h in 0..heads {
            for i in 0..hd / 2 {
                let (a, b) = (v[h * hd + 2 * i], v[h * hd + 2 * i + 1]);
                let (c, s) = (ang(pos, i).cos(), ang(pos, i).sin());
                o[h * hd + 2 * i] = a * c - b * s;
                o[h * hd + 2 * i + 1] = b * c + a * s;
            }
        }
        o
    };
    let score = |q: &[f64], k: &[f64], h: usize| -> f64 {
        (0..hd).map(|j| q[h * hd + j] * k[h * hd + j]).sum()
    };
    let perm = |w: &[f64]| -> Vec<f64> {
        let f: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        pair_rows(&f, heads, d).iter().map(|&v| v as f64).collect()
    };
    let w32 = |w: &[f64]| w.iter().map(|&v| v as f32 as f64).collect::<Vec<f64>>();
    let (wq, wk) = (w32(&wq), w32(&wk));
    let (pq, pk) = (perm(&wq), perm(&wk));
    for (p1, p2) in [(0.0, 3.0), (5.0, 2.0), (17.0, 17.0)] {
        let hf_q = half_rope(&mat(&wq, &x1), p1);
        let hf_k = half_rope(&mat(&wk, &x2), p2);
        let cpp_q = pair_rope(&mat(&pq, &x1), p1);
        let cpp_k = pair_rope(&mat(&pk, &x2), p2);
        for h in 0..heads {
            let (a, b) = (score(&hf_q, &hf_k, h), score(&cpp_q, &cpp_k, h));
            assert!(
                (a - b).abs() < 1e-9 * a.abs().max(1.0),
                "head {h}: {a} vs {b}"
            );
        }
        // Without the permutation they differ: the test can fail.
        let wrong = pair_rope(&mat(&wq, &x1), p1);
        let wrong_k = pair_rope(&mat(&wk, &x2), p2);
        if p1 != p2 {
            assert!((score(&hf_q, &hf_k, 0) - score(&wrong, &wrong_k, 0)).abs() > 1e-6);
        }
    }
    // The exporter's permutation is the one checked here.
    let tmp = tempfile::tempdir().unwrap();
    let spec = tiny("models/tiny-llama.toml", tmp.path(), "");
    let w = init(&spec, 2);
    let (_, tok) = tokenizer(tmp.path());
    let out = tmp.path().join("l.gguf");
    export_gguf(&spec, &w, &tok, &out, FileType::F32).unwrap();
    let f = GgufFile::load(&out).unwrap();
    let q = w.get("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!(
        f.tensor_f32("blk.0.attn_q.weight").unwrap(),
        pair_rows(&q.data, 4, 64)
    );
}

#[test]
fn what_cannot_be_exported_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, tok) = tokenizer(tmp.path());
    let out = tmp.path().join("x.gguf");
    let fails = |spec: &Spec, w: &Weights, ty| {
        export_gguf(spec, w, &tok, &out, ty)
            .unwrap_err()
            .to_string()
    };
    // An activation llama.cpp's gpt2 does not compute.
    let spec = tiny(
        "models/tiny-gpt2.toml",
        tmp.path(),
        "\nactivation = \"relu\"",
    );
    let e = fails(&spec, &init(&spec, 1), FileType::F32);
    assert!(
        e.contains("m.toml") && e.contains("activation = \"relu\"") && e.contains("gelu_tanh"),
        "{e}"
    );
    // No biases.
    let spec = tiny("models/tiny-gpt2.toml", tmp.path(), "\nbias = false");
    let e = fails(&spec, &init(&spec, 1), FileType::F32);
    assert!(e.contains("bias = false"), "{e}");
    // A vocab smaller than the tokenizer.
    let src = std::fs::read_to_string(root().join("models/tiny-gpt2.toml")).unwrap();
    let path = tmp.path().join("small.toml");
    std::fs::write(&path, src.replace("vocab_size = 96", "vocab_size = 270")).unwrap();
    let spec = Spec::load(&path).unwrap();
    let e = fails(&spec, &init(&spec, 1), FileType::F32);
    assert!(
        e.contains("tokenizer.json: 280 tokens, more than the model's vocab_size = 270"),
        "{e}"
    );
    // Weights of another model; a weight that is not finite, named.
    let spec = tiny("models/tiny-gpt2.toml", tmp.path(), "");
    let other = tiny("models/tiny-llama.toml", tmp.path(), "");
    let e = fails(&spec, &init(&other, 1), FileType::F32);
    assert!(
        e.contains("export --gguf") && e.contains("missing `transformer."),
        "{e}"
    );
    let mut w = init(&spec, 1);
    w.tensors
        .get_mut("transformer.h.1.mlp.c_fc.weight")
        .unwrap()
        .data[5] = f32::NAN;
    for ty in [FileType::F32, FileType::Q8_0] {
        let e = fails(&spec, &w, ty);
        assert!(
            e.contains("`transformer.h.1.mlp.c_fc.weight`") && e.contains("NaN at index 5"),
            "{e}"
        );
    }
    assert!(!out.exists(), "nothing written on an error");
    // A tokenizer that is not one.
    std::fs::write(tmp.path().join("bad.json"), "{}").unwrap();
    let e = export_gguf(
        &spec,
        &init(&spec, 1),
        &tmp.path().join("bad.json"),
        &out,
        FileType::F32,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bad.json"), "{e}");
}

#[test]
fn rows_not_a_multiple_of_32_stay_f32() {
    let tmp = tempfile::tempdir().unwrap();
    // d_model 48: every matrix with rows of 48 stays f32; ffn_down (rows
    // of ffn_hidden = 192) is q8_0.
    let src = std::fs::read_to_string(root().join("models/tiny-gpt2.toml"))
        .unwrap()
        .replace("vocab_size = 96", "vocab_size = 300")
        .replace("d_model = 64", "d_model = 48");
    let path = tmp.path().join("m.toml");
    std::fs::write(&path, src).unwrap();
    let spec = Spec::load(&path).unwrap();
    let w = init(&spec, 4);
    let (_, tok) = tokenizer(tmp.path());
    let out = tmp.path().join("m.gguf");
    let e = export_gguf(&spec, &w, &tok, &out, FileType::Q8_0).unwrap();
    let f = GgufFile::load(&out).unwrap();
    assert_eq!(f.tensor("blk.0.attn_qkv.weight").unwrap().ty, GgmlType::F32);
    assert_eq!(f.tensor("token_embd.weight").unwrap().ty, GgmlType::F32);
    assert_eq!(
        f.tensor("blk.0.ffn_down.weight").unwrap().ty,
        GgmlType::Q8_0
    );
    assert_eq!(e.quantized, 2);
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("`blk.0.attn_qkv.weight` stays f32")),
        "{:?}",
        e.notes
    );
}

fn irc(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_irc"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let spec = tiny("models/tiny-llama.toml", d, "");
    init(&spec, 1).save(&d.join("w.safetensors"), None).unwrap();
    tokenizer(d);
    let base = ["export", "m.toml", "--weights", "w.safetensors"];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(extra);
        let o = irc(d, &a);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, out, err) = run(&[
        "--gguf",
        "m.gguf",
        "--tokenizer",
        "tokenizer.json",
        "--type",
        "q8_0",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("wrote m.gguf (q8_0") && out.contains("in q8_0 (largest error"),
        "{out}"
    );
    assert_eq!(
        GgufFile::load(&d.join("m.gguf"))
            .unwrap()
            .get("general.file_type"),
        Some(&Value::U32(7))
    );
    let (code, _, err) = run(&["--gguf", "f.gguf", "--tokenizer", "tokenizer.json"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        GgufFile::load(&d.join("f.gguf"))
            .unwrap()
            .get("general.file_type"),
        Some(&Value::U32(0))
    );
    for (args, msg) in [
        (
            vec![
                "--gguf",
                "x.gguf",
                "--tokenizer",
                "tokenizer.json",
                "--type",
                "q4_0",
            ],
            "error: --type: unknown type `q4_0`; expected f32 or q8_0",
        ),
        (vec!["--gguf", "x.gguf"], "--tokenizer"),
        (vec!["--hf", "--type", "q8_0", "-o", "hf"], "--gguf"),
        (
            vec![
                "--gguf",
                "x.gguf",
                "--tokenizer",
                "tokenizer.json",
                "-o",
                "hf",
            ],
            "cannot be used with",
        ),
        (vec!["--hf"], "--out"),
        (vec![], "required arguments were not provided"),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    assert!(!d.join("x.gguf").exists() && !d.join("hf").exists());
    let (code, _, err) = run(&["--gguf", "x.gguf", "--tokenizer", "nope.json"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("nope.json"), "{err}");
}

/// llama.cpp's Python reader (`pip install gguf`) reads the files: names,
/// shapes, types, values; and its own q8_0 quantizer gives the same bytes.
fn python_check(f32_file: &Path, q8_file: &Path, arch: &str) {
    let have = Command::new("python3")
        .args(["-c", "import gguf, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        println!(
            "SKIPPED: gguf Python check of {} (python3 cannot import gguf and numpy; `pip install gguf` and rerun `cargo test --test gguf -- --nocapture`)",
            f32_file.display()
        );
        return;
    }
    let mine_f32 = GgufFile::load(f32_file).unwrap();
    let mine_q8 = GgufFile::load(q8_file).unwrap();
    let expect: serde_json::Value = mine_q8
        .tensors
        .iter()
        .map(|t| {
            let f = mine_f32.tensor(&t.name).unwrap();
            (
                t.name.clone(),
                serde_json::json!({
                    "ne": t.ne,
                    "q8": t.ty == GgmlType::Q8_0,
                    "sum": mine_f32.tensor_f32(&f.name).unwrap().iter().map(|&v| v as f64).sum::<f64>(),
                }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    let script = r#"
import json, sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
f32_path, q8_path, arch, expect = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
a, b = gguf.GGUFReader(f32_path), gguf.GGUFReader(q8_path)

def field(r, k):
    f = r.fields[k]
    v = f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]
    return v

assert field(a, "general.architecture") == arch, field(a, "general.architecture")
assert int(field(a, "general.file_type")) == 0 and int(field(b, "general.file_type")) == 7
assert int(field(a, "general.alignment")) == 32
assert len(field(a, "tokenizer.ggml.tokens")) == int(field(a, arch + ".vocab_size"))
ta = {t.name: t for t in a.tensors}
tb = {t.name: t for t in b.tensors}
assert sorted(ta) == sorted(expect) == sorted(tb), (sorted(ta), sorted(expect))
worst = 0.0
for name, e in expect.items():
    x, y = ta[name], tb[name]
    assert list(map(int, x.shape)) == e["ne"], (name, x.shape, e["ne"])
    assert list(map(int, y.shape)) == e["ne"], (name, y.shape)
    assert x.tensor_type == Q.F32, (name, x.tensor_type)
    assert y.tensor_type == (Q.Q8_0 if e["q8"] else Q.F32), (name, y.tensor_type)
    data = np.asarray(x.data, dtype=np.float32).reshape(list(reversed(e["ne"])))
    assert abs(float(data.astype(np.float64).sum()) - e["sum"]) <= 1e-9 * max(1.0, abs(e["sum"])), name
    if e["q8"]:
        ref = gguf.quants.quantize(data, Q.Q8_0)
        assert np.asarray(y.data).tobytes() == ref.tobytes(), name + ": bytes differ from gguf.quants.quantize"
        back = gguf.quants.dequantize(np.asarray(y.data), Q.Q8_0).reshape(data.shape)
        worst = max(worst, float(np.abs(back - data).max()))
print(json.dumps({"tensors": len(expect), "q8_worst": worst}))
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            f32_file.to_str().unwrap(),
            q8_file.to_str().unwrap(),
            arch,
            &expect.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gguf Python reader: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "gguf.GGUFReader read {} and {}: {}",
        f32_file.display(),
        q8_file.display(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
}
