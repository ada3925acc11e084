//! Limits before any allocation or emission, through the `irc` binary: a
//! model past the machine's memory or past what the emitted C indexes, an
//! absurd config.json, and weights files that are not what they claim. Each
//! is refused with an exact message, a non-zero exit and no panic, and
//! writes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn irc(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irc"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// `irc args` fails cleanly (exit 1, not a panic's 101 or an abort's 134)
/// with `want` in its message; returns the message.
fn refused(args: &[&str], cwd: &Path, want: &str) -> String {
    let o = irc(args, cwd);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "irc {args:?}: {err}");
    assert!(!err.contains("panicked"), "irc {args:?} panicked: {err}");
    assert!(err.contains(want), "irc {args:?}: {err:?} lacks {want:?}");
    err
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A GPT-2 of 256 layers of width 16384: every tensor within C int, about
/// 3 TiB of parameters.
const HUGE: &str = "[model]\nfamily = \"gpt2\"\nvocab_size = 96\ncontext = 32\nlayers = 256\n\
                    d_model = 16384\nheads = 16\n[build]\nbatch = 1\nseq_len = 8\n";

const MEMTOTAL: &str = "but this machine has";

#[test]
fn build_of_a_model_past_the_machines_memory_is_refused_before_emission() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "huge.toml", HUGE);
    let err = refused(
        &["build", "huge.toml", "-o", "out"],
        d,
        "huge.toml:5:10: [model].layers: running this model (parameters and activations) needs 3.0 TiB, ",
    );
    assert!(err.contains(MEMTOTAL), "{err}");
    assert_eq!(listing(d), ["huge.toml"], "a refused build wrote something");
}

#[test]
fn init_of_a_model_past_the_machines_memory_is_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "huge.toml", HUGE);
    let err = refused(
        &["init", "huge.toml", "-o", "w.safetensors"],
        d,
        "huge.toml:5:10: [model].layers: initializing this model's weights (the tensors and their file) needs 6.0 TiB, ",
    );
    assert!(err.contains(MEMTOTAL), "{err}");
    assert_eq!(listing(d), ["huge.toml"]);
}

#[test]
fn sizes_past_c_int_are_spec_errors_of_build_and_init() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tiny = "[model]\nfamily = \"gpt2\"\nvocab_size = 96\ncontext = 32\nlayers = 2\nd_model = 64\nheads = 4\n";
    write(
        d,
        "batch.toml",
        &format!("{tiny}[build]\nbatch = 100000000\nseq_len = 8\n"),
    );
    write(
        d,
        "vocab.toml",
        &tiny.replace("vocab_size = 96", "vocab_size = 4000000000"),
    );
    for cmd in ["build", "init"] {
        refused(
            &[cmd, "batch.toml", "-o", "out"],
            d,
            "batch.toml:9:9: [build].batch: the logits tensor has 76800000000 elements \
             (batch x seq_len x vocab_size = 100000000 x 8 x 96), more than the emitted C can index \
             in one tensor; expected at most 2147483647",
        );
        refused(
            &[cmd, "vocab.toml", "-o", "out"],
            d,
            "vocab.toml:3:14: [model].vocab_size: 4000000000 is more than the emitted C can index; \
             expected at most 2147483647 (its loops count in C int)",
        );
    }
    assert_eq!(listing(d), ["batch.toml", "vocab.toml"]);
}

/// A Hugging Face folder whose config.json is `config`, and no weights.
fn hf_folder(d: &Path, config: &str) -> PathBuf {
    let hf = d.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    write(&hf, "config.json", config);
    hf
}

#[test]
fn import_refuses_absurd_config_sizes_by_field_before_reading_weights() {
    let cases = [
        (
            r#"{"model_type": "gpt2", "n_layer": 100000000}"#,
            "hf/config.json: `n_layer`: 100000000 layers are more than irc compiles; expected at most 1024",
        ),
        (
            r#"{"model_type": "llama", "vocab_size": 4000000000, "hidden_size": 64, "num_attention_heads": 4}"#,
            "hf/config.json: `vocab_size`: 4000000000 is more than the emitted C can index",
        ),
        (
            r#"{"model_type": "gpt2", "n_embd": 65536, "n_head": 16, "n_layer": 2}"#,
            "hf/config.json: `vocab_size`: the token embedding has 3293642752 elements (vocab_size x d_model = 50257 x 65536)",
        ),
        (
            r#"{"model_type": "gpt2", "n_layer": 256, "n_embd": 16384, "n_head": 16, "vocab_size": 96, "n_positions": 32}"#,
            "hf/config.json: `n_layer`: importing this model's weights (the tensors and their new file) needs",
        ),
    ];
    for (config, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        hf_folder(d, config);
        refused(
            &[
                "import",
                "hf",
                "--hf",
                "--spec",
                "m.toml",
                "--weights",
                "w.safetensors",
            ],
            d,
            want,
        );
        assert_eq!(listing(d), ["hf"], "{config}");
    }
}

/// The tiny GPT-2 spec, built once into `b` (from the library cache after
/// the first test) and a token file.
fn tiny_forward_folder(d: &Path) {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-gpt2.toml");
    std::fs::copy(spec, d.join("tiny.toml")).unwrap();
    write(d, "tokens.txt", "1 2 3\n");
}

fn forward_with(d: &Path, weights: &str, want: &str) {
    refused(
        &[
            "forward",
            "tiny.toml",
            "--weights",
            weights,
            "--tokens",
            "tokens.txt",
            "-o",
            "o.safetensors",
            "--build-dir",
            "b",
        ],
        d,
        want,
    );
    assert!(!d.join("o.safetensors").exists());
}

/// Safetensors bytes: the header `json` (its length first), then `data`.
fn safetensors(json: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (json.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn weights_are_checked_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_forward_folder(d);
    // A device would be read until memory runs out.
    forward_with(
        d,
        "/dev/zero",
        "/dev/zero: a device, not a regular file; expected a file",
    );
    // A header length of a terabyte, in a file of a few bytes.
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    std::fs::write(d.join("huge-header.safetensors"), huge).unwrap();
    forward_with(
        d,
        "huge-header.safetensors",
        "huge-header.safetensors: not a valid safetensors file: the header length 18446744073709551615 is past \
         the file's 2 bytes after it or irc's limit of 100000000",
    );
    // A header that claims more tensor bytes than the file has.
    let claim = r#"{"transformer.wte.weight":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4000000000000]}}"#;
    std::fs::write(d.join("short.safetensors"), safetensors(claim, &[0; 16])).unwrap();
    forward_with(
        d,
        "short.safetensors",
        "short.safetensors: not a valid safetensors file: its tensors take 4000000000000 bytes but the file has 16 after the header",
    );
    // Shapes that add up but do not fit the model: refused by the header.
    let wrong = r#"{"transformer.wte.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    std::fs::write(d.join("wrong.safetensors"), safetensors(wrong, &[0; 16])).unwrap();
    forward_with(
        d,
        "wrong.safetensors",
        "wrong.safetensors: weights do not fit the model (28 problems):\n  \
         `transformer.wte.weight` has shape [2, 2], expected [96, 64]\n  missing `transformer.wpe.weight` [32, 64]",
    );
}
