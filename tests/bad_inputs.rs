//! The bad-input battery: every command of the CLI fed what a new user
//! might give it (bad specs and flags, empty, binary and corrupt files,
//! FIFOs, devices, sockets, symbolic link loops, missing paths, wrong
//! formats, a real run folder made corrupt). Each case must fail with its
//! message (naming the file or flag), a non-zero exit, no panic, within a
//! time limit, and leave every file that was there before byte-identical.
//!
//! One small run folder (a tiny GPT-2 trained for 4 steps, its build, init
//! weights, a data folder, an HF export) is made once per test binary and
//! copied into a fresh folder for each case; cases run on a few threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Longest a failing command may take (a FIFO read would block forever).
const TIME_LIMIT: Duration = Duration::from_secs(60);

const CORPUS: &str = "the quick brown fox jumps over the lazy dog\n\
    pack my box with five dozen liquor jugs\n\
    how vexingly quick daft zebras jump\n\
    sphinx of black quartz judge my vow\n";

/// The tiny spec; `steps` and `extra` sections vary per case.
fn spec_text(steps: usize) -> String {
    format!(
        "[model]\nname='kt'\nfamily='gpt2'\nvocab_size=300\ncontext=32\nlayers=1\nd_model=32\nheads=2\n\
         [data]\nsource=['corpus.txt']\nformat='text'\npacking='stream'\nval_ratio=0.2\nseed=3\n\
         [tokenizer]\nvocab_size=300\n\
         [train]\nbatch=2\nseq_len=32\nsteps={steps}\nlr=3e-3\ncheckpoint_every=2\neval_samples=0\nthreads=1\n"
    )
}

fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("irc-bad-inputs-cache")
}

fn irc(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irc"));
    c.args(args).current_dir(dir).env("IRC_CACHE", cache());
    c
}

fn ok(dir: &Path, args: &[&str]) {
    let o = irc(dir, args).output().unwrap();
    assert!(
        o.status.success(),
        "irc {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The folder every case starts from, made once.
fn fixture() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let corpus: String = CORPUS
            .repeat(4)
            .lines()
            .enumerate()
            .map(|(i, l)| format!("{l} {i}\n"))
            .collect();
        std::fs::write(d.join("corpus.txt"), corpus).unwrap();
        std::fs::write(d.join("tiny.toml"), spec_text(4)).unwrap();
        std::fs::write(d.join("short.toml"), spec_text(2)).unwrap();
        ok(d, &["train", "tiny.toml", "-o", "run", "--quiet"]);
        ok(d, &["build", "tiny.toml", "-o", "b"]);
        ok(d, &["init", "tiny.toml", "-o", "w.safetensors"]);
        ok(
            d,
            &[
                "export",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--hf",
                "-o",
                "hf",
            ],
        );
        ok(d, &["data", "ingest", "corpus.txt", "-o", "data"]);
        std::fs::copy(d.join("run/data/tokenizer.json"), d.join("tok.json")).unwrap();
        std::fs::write(d.join("t.txt"), "1 2 3 4\n5 6 7 8\n").unwrap();
        std::fs::write(d.join("tg.txt"), "2 3 4 5\n6 7 8 -100\n").unwrap();
        std::fs::create_dir(d.join("empty")).unwrap();
        t
    })
    .path()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Every entry under `dir` (not following links): a file's bytes, or what
/// the entry is (a FIFO is never opened).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                walk(root, &p, out);
            } else if m.is_file() {
                out.insert(rel, std::fs::read(&p).unwrap());
            } else if m.file_type().is_symlink() {
                let to = std::fs::read_link(&p).unwrap();
                out.insert(rel, format!("-> {}", to.display()).into_bytes());
            } else {
                out.insert(rel, b"(special)".to_vec());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Setup helpers: each writes into the case's folder.

fn write(d: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    let p = d.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn fifo(d: &Path, name: &str) {
    let p = d.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&p);
    let st = Command::new("mkfifo").arg(&p).status().unwrap();
    assert!(st.success(), "mkfifo {}", p.display());
}

fn socket(d: &Path, name: &str) {
    let p = d.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    // The listener closes when dropped; the socket file stays.
    drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
}

/// `name` → itself: every open fails with ELOOP.
fn symlink_loop(d: &Path, name: &str) {
    let p = d.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&p);
    std::os::unix::fs::symlink(p.file_name().unwrap(), &p).unwrap();
}

fn binary() -> Vec<u8> {
    (0..=255u8).cycle().take(1024).collect()
}

/// `name` cut to half its length.
fn truncate(d: &Path, name: &str) {
    let p = d.join(name);
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() / 2]).unwrap();
}

fn remove(d: &Path, name: &str) {
    let p = d.join(name);
    if p.is_dir() {
        std::fs::remove_dir_all(p).unwrap();
    } else {
        std::fs::remove_file(p).unwrap();
    }
}

/// The fixture's init weights with one value replaced by `v`, as `name`.
fn weights_with(d: &Path, name: &str, v: f32) {
    let mut w = irc::runtime::Weights::load(&d.join("w.safetensors")).unwrap();
    let key = w.tensors.keys().next().unwrap().clone();
    let t = w.tensors.get_mut(&key).unwrap();
    t.data[0] = v;
    std::fs::write(d.join(name), w.to_bytes(None).unwrap()).unwrap();
}

/// The tiny spec with `line` added to `[section]` (the section added when
/// the spec has none); `line` must be a key the spec does not set, since
/// TOML refuses a repeated key.
fn spec_plus(d: &Path, name: &str, section: &str, line: &str) {
    let s = spec_text(4).replace(&format!("[{section}]\n"), &format!("[{section}]\n{line}\n"));
    let s = if s.contains(&format!("[{section}]")) {
        s
    } else {
        format!("{s}[{section}]\n{line}\n")
    };
    write(d, name, s);
}

/// The tiny spec with `from` replaced by `to`.
fn spec_edit(d: &Path, name: &str, from: &str, to: &str) {
    let s = spec_text(4);
    assert!(s.contains(from), "{from}");
    write(d, name, s.replace(from, to));
}

// ---------------------------------------------------------------------------

struct Case {
    /// What the case feeds, `command_what`.
    name: &'static str,
    args: &'static [&'static str],
    /// A substring of stderr: the message (with the file or flag it names).
    want: &'static str,
    setup: fn(&Path),
}

fn none(_: &Path) {}

macro_rules! case {
    ($name:literal, [$($a:literal),*], $want:literal) => {
        Case { name: $name, args: &[$($a),*], want: $want, setup: none }
    };
    ($name:literal, [$($a:literal),*], $want:literal, $setup:expr) => {
        Case { name: $name, args: &[$($a),*], want: $want, setup: $setup }
    };
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(build_cases());
    v.extend(spec_cases());
    v.extend(inspect_init_cases());
    v.extend(forward_grad_cases());
    v.extend(train_run_cases());
    v.extend(generate_eval_cases());
    v.extend(report_doctor_cases());
    v.extend(export_import_cases());
    v.extend(sweep_profile_cases());
    v.extend(data_cases());
    v.extend(tokenizer_cases());
    v
}

fn build_cases() -> Vec<Case> {
    vec![
        case!(
            "build_missing_spec",
            ["build", "nope.toml"],
            "nope.toml: cannot read spec: no such file or folder"
        ),
        case!(
            "build_spec_is_a_folder",
            ["build", "empty"],
            "empty: cannot read spec: a folder; expected a file"
        ),
        case!(
            "build_spec_fifo",
            ["build", "s.toml"],
            "s.toml: cannot read spec: a FIFO (named pipe), not a regular file",
            |d| fifo(d, "s.toml")
        ),
        case!(
            "build_spec_socket",
            ["build", "s.toml"],
            "s.toml: cannot read spec: a socket, not a regular file",
            |d| socket(d, "s.toml")
        ),
        case!(
            "build_spec_symlink_loop",
            ["build", "s.toml"],
            "s.toml: cannot read spec: a symbolic link loop",
            |d| symlink_loop(d, "s.toml")
        ),
        case!(
            "build_spec_dev_null",
            ["build", "/dev/null"],
            "/dev/null: cannot read spec: a device, not a regular file"
        ),
        case!(
            "build_spec_empty",
            ["build", "s.toml"],
            "s.toml:1:1: [model]: missing section",
            |d| write(d, "s.toml", "")
        ),
        case!(
            "build_spec_binary",
            ["build", "s.toml"],
            "s.toml: cannot read spec: not UTF-8 text",
            |d| write(d, "s.toml", binary())
        ),
        case!(
            "build_spec_not_toml",
            ["build", "s.toml"],
            "s.toml:1:",
            |d| write(d, "s.toml", "[model\nfamily = ")
        ),
        case!(
            "build_spec_only_comments",
            ["build", "s.toml"],
            "s.toml:1:1: [model]: missing section",
            |d| write(d, "s.toml", "# nothing\n")
        ),
        case!(
            "build_out_is_a_file",
            ["build", "tiny.toml", "-o", "corpus.txt"],
            "corpus.txt"
        ),
        case!(
            "build_no_spec_argument",
            ["build"],
            "required arguments were not provided"
        ),
        case!(
            "build_unknown_flag",
            ["build", "tiny.toml", "--fast"],
            "unexpected argument '--fast'"
        ),
    ]
}

fn spec_cases() -> Vec<Case> {
    vec![
        case!("spec_heads_do_not_divide", ["build", "s.toml"], "s.toml:8:7: [model].heads: 5 heads do not divide d_model = 32", |d| spec_edit(d, "s.toml", "heads=2", "heads=5")),
        case!("spec_family_unknown", ["build", "s.toml"], "[model].family: unknown value \"bert\"", |d| spec_edit(d, "s.toml", "family='gpt2'", "family='bert'")),
        case!("spec_family_missing", ["build", "s.toml"], "[model].family: missing", |d| spec_edit(d, "s.toml", "family='gpt2'\n", "")),
        case!("spec_layers_negative", ["build", "s.toml"], "[model].layers: must be at least 1, found -1", |d| spec_edit(d, "s.toml", "layers=1", "layers=-1")),
        case!("spec_vocab_string", ["build", "s.toml"], "[model].vocab_size: invalid type: string", |d| spec_edit(d, "s.toml", "vocab_size=300\ncontext", "vocab_size='big'\ncontext")),
        case!("spec_unknown_section", ["build", "s.toml"], "unknown section [foo]", |d| spec_plus(d, "s.toml", "foo", "x=1")),
        case!("spec_unknown_model_key", ["build", "s.toml"], "unknown field `depth`", |d| spec_plus(d, "s.toml", "model", "depth=3")),
        case!("spec_norm_eps_zero", ["build", "s.toml"], "[model].norm_eps: must be a positive finite number, found 0", |d| spec_plus(d, "s.toml", "model", "norm_eps=0.0")),
        case!("spec_init_std_nan", ["build", "s.toml"], "[model].init_std: must be a positive finite number, found NaN", |d| spec_plus(d, "s.toml", "model", "init_std=nan")),
        case!("spec_build_threads_too_many", ["build", "s.toml"], "[build].threads: 1000 is out of range; expected 0 (one per core) to 256", |d| spec_plus(d, "s.toml", "build", "threads=1000")),
        case!("spec_build_opt_level_9", ["build", "s.toml"], "[build].opt_level: expected 0, 1, 2 or 3, found 9", |d| spec_plus(d, "s.toml", "build", "opt_level=9")),
        case!("spec_build_target_unknown", ["build", "s.toml"], "[build].target: unknown value \"riscv\"", |d| spec_plus(d, "s.toml", "build", "target='riscv'")),
        case!("spec_build_batch_differs", ["build", "s.toml"], "[build].batch: 3 differs from [train].batch = 2", |d| spec_plus(d, "s.toml", "build", "batch=3")),
        case!("spec_generate_top_p_zero", ["build", "s.toml"], "[generate].top_p: 0 is out of range; expected a number in (0, 1]", |d| spec_plus(d, "s.toml", "generate", "top_p=0.0")),
        case!("spec_generate_temperature_negative", ["build", "s.toml"], "[generate].temperature: -1 is out of range; expected a number ≥ 0", |d| spec_plus(d, "s.toml", "generate", "temperature=-1.0")),
        case!("spec_generate_temperature_nan", ["build", "s.toml"], "[generate].temperature: NaN is out of range; expected a number ≥ 0", |d| spec_plus(d, "s.toml", "generate", "temperature=nan")),
        case!("spec_generate_penalty_zero", ["build", "s.toml"], "[generate].repetition_penalty: 0 is out of range; expected a number > 0", |d| spec_plus(d, "s.toml", "generate", "repetition_penalty=0.0")),
        case!("spec_generate_max_tokens_zero", ["build", "s.toml"], "[generate].max_tokens: 0 is out of range; expected an integer ≥ 1", |d| spec_plus(d, "s.toml", "generate", "max_tokens=0")),
        case!("spec_generate_top_k_negative", ["build", "s.toml"], "[generate].top_k:", |d| spec_plus(d, "s.toml", "generate", "top_k=-4")),
        case!("spec_eval_samples_zero", ["build", "s.toml"], "[eval].samples: 0 is out of range; expected an integer ≥ 1", |d| spec_plus(d, "s.toml", "eval", "samples=0")),
        case!("spec_data_near_negative", ["build", "s.toml"], "[data].near_threshold: -0.5 is out of range; expected a number in [0, 1]", |d| spec_plus(d, "s.toml", "data", "near_threshold=-0.5")),
        case!("spec_data_max_len_zero", ["build", "s.toml"], "[data].max_len: 0 is out of range; expected an integer ≥ 1", |d| spec_plus(d, "s.toml", "data", "max_len=0")),
        case!("spec_data_val_ratio_one", ["build", "s.toml"], "[data].val_ratio: 1 is out of range; expected a fraction in [0, 1)", |d| spec_edit(d, "s.toml", "val_ratio=0.2", "val_ratio=1.0")),
        case!("spec_data_format_unknown", ["build", "s.toml"], "[data].format:", |d| spec_edit(d, "s.toml", "format='text'", "format='xml'")),
        case!("spec_data_synthetic_too_many", ["build", "s.toml"], "[data].synthetic: 100000000000 is out of range; expected 0 to 10000000", |d| spec_plus(d, "s.toml", "data", "synthetic=100000000000")),
        case!("spec_tokenizer_vocab_over_model", ["build", "s.toml"], "[tokenizer].vocab_size: 5000 exceeds [model].vocab_size = 300", |d| spec_edit(d, "s.toml", "[tokenizer]\nvocab_size=300", "[tokenizer]\nvocab_size=5000")),
        case!("spec_tokenizer_vocab_below_alphabet", ["build", "s.toml"], "[tokenizer].vocab_size: 100 is out of range; expected at least 258 (2 special tokens + 256 base symbols)", |d| spec_edit(d, "s.toml", "[tokenizer]\nvocab_size=300", "[tokenizer]\nvocab_size=100")),
        case!("spec_tokenizer_min_frequency_zero", ["build", "s.toml"], "[tokenizer].min_frequency: 0 is out of range; expected an integer ≥ 1", |d| spec_plus(d, "s.toml", "tokenizer", "min_frequency=0")),
        case!("spec_tokenizer_empty_special", ["build", "s.toml"], "[tokenizer].special_tokens: special token list holds an empty string", |d| spec_plus(d, "s.toml", "tokenizer", "special_tokens=['']")),
        case!("spec_train_lr_negative", ["build", "s.toml"], "[train].lr: must be a positive number, found -0.003", |d| spec_edit(d, "s.toml", "lr=3e-3", "lr=-3e-3")),
        case!("spec_train_beta1_one", ["build", "s.toml"], "[train].beta1: must be in [0, 1), found 1", |d| spec_plus(d, "s.toml", "train", "beta1=1.0")),
        case!("spec_train_threads_too_many", ["build", "s.toml"], "[train].threads: 999 is out of range; expected 0 (one per core) to 256", |d| spec_edit(d, "s.toml", "threads=1", "threads=999")),
        case!("spec_train_steps_zero", ["build", "s.toml"], "[train].steps: must be at least 1", |d| spec_edit(d, "s.toml", "steps=4", "steps=0")),
        case!("spec_train_seq_len_past_context", ["build", "s.toml"], "[train].seq_len: 64 exceeds [model].context = 32", |d| spec_edit(d, "s.toml", "seq_len=32", "seq_len=64")),
        case!("spec_train_unknown_key", ["build", "s.toml"], "unknown field `lrr`", |d| spec_plus(d, "s.toml", "train", "lrr=1")),
    ]
}

fn inspect_init_cases() -> Vec<Case> {
    vec![
        case!(
            "inspect_missing_folder",
            ["inspect", "nope"],
            "nope/inspect.json: no such file (is this a directory `irc build` wrote?)"
        ),
        case!(
            "inspect_empty_folder",
            ["inspect", "empty"],
            "empty/inspect.json: no such file"
        ),
        case!(
            "inspect_corrupt_json",
            ["inspect", "b"],
            "b/inspect.json: EOF while parsing a value at line 1 column 10",
            |d| write(d, "b/inspect.json", "{\"model\": ")
        ),
        case!(
            "inspect_binary_json",
            ["inspect", "b"],
            "b/inspect.json: not UTF-8 text",
            |d| write(d, "b/inspect.json", binary())
        ),
        case!(
            "inspect_empty_json",
            ["inspect", "b", "--html"],
            "b/inspect.json: EOF while parsing",
            |d| write(d, "b/inspect.json", "")
        ),
        case!(
            "inspect_json_fifo",
            ["inspect", "b"],
            "b/inspect.json: a FIFO (named pipe)",
            |d| fifo(d, "b/inspect.json")
        ),
        case!(
            "inspect_json_symlink_loop",
            ["inspect", "b"],
            "b/inspect.json: a symbolic link loop",
            |d| symlink_loop(d, "b/inspect.json")
        ),
        case!(
            "init_missing_spec",
            ["init", "nope.toml", "-o", "x.safetensors"],
            "nope.toml: cannot read spec"
        ),
        case!(
            "init_seed_negative",
            ["init", "tiny.toml", "-o", "x.safetensors", "--seed", "-1"],
            "--seed: \"-1\" is not a non-negative integer"
        ),
        case!(
            "init_seed_not_a_number",
            ["init", "tiny.toml", "-o", "x.safetensors", "--seed", "abc"],
            "--seed: \"abc\" is not a non-negative integer"
        ),
        case!(
            "init_bad_spec",
            ["init", "s.toml", "-o", "x.safetensors"],
            "[model].heads: 5 heads do not divide",
            |d| spec_edit(d, "s.toml", "heads=2", "heads=5")
        ),
        case!(
            "init_out_is_a_folder",
            ["init", "tiny.toml", "-o", "empty"],
            "empty"
        ),
        case!(
            "init_no_out",
            ["init", "tiny.toml"],
            "required arguments were not provided"
        ),
    ]
}

fn forward_grad_cases() -> Vec<Case> {
    vec![
        case!(
            "forward_weights_missing",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "nope.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "nope.safetensors: no such file or folder"
        ),
        case!(
            "forward_weights_dev_zero",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "/dev/zero",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "/dev/zero: a device, not a regular file"
        ),
        case!(
            "forward_weights_fifo",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "f.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "f.safetensors: a FIFO (named pipe)",
            |d| fifo(d, "f.safetensors")
        ),
        case!(
            "forward_weights_symlink_loop",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "f.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "f.safetensors: a symbolic link loop",
            |d| symlink_loop(d, "f.safetensors")
        ),
        case!(
            "forward_weights_folder",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "empty",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "empty: a folder; expected a file"
        ),
        case!(
            "forward_weights_empty",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "e.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "e.safetensors: not a valid safetensors file",
            |d| write(d, "e.safetensors", "")
        ),
        case!(
            "forward_weights_truncated",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "w.safetensors: not a valid safetensors file",
            |d| truncate(d, "w.safetensors")
        ),
        case!(
            "forward_weights_text",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "corpus.txt",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "corpus.txt: not a valid safetensors file"
        ),
        case!(
            "forward_weights_nan",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "n.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "n.safetensors: tensor `transformer.h.0.attn.c_attn.bias`: value NaN at index 0 is not finite",
            |d| weights_with(d, "n.safetensors", f32::NAN)
        ),
        case!(
            "forward_weights_inf",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "n.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "value inf at index 0 is not finite",
            |d| weights_with(d, "n.safetensors", f32::INFINITY)
        ),
        case!(
            "forward_weights_of_another_model",
            [
                "forward",
                "s.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors"
            ],
            "w.safetensors:",
            |d| spec_edit(d, "s.toml", "d_model=32", "d_model=64")
        ),
        case!(
            "forward_tokens_missing",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "nope.txt",
                "-o",
                "l.safetensors"
            ],
            "nope.txt: no such file or folder"
        ),
        case!(
            "forward_tokens_empty",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "e.txt",
                "-o",
                "l.safetensors"
            ],
            "e.txt: no token ids",
            |d| write(d, "e.txt", "")
        ),
        case!(
            "forward_tokens_not_ids",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "e.txt",
                "-o",
                "l.safetensors"
            ],
            "e.txt:2: `cat` is not a token id",
            |d| write(d, "e.txt", "1 2\ncat dog\n")
        ),
        case!(
            "forward_tokens_out_of_vocab",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "e.txt",
                "-o",
                "l.safetensors"
            ],
            "e.txt: token 999 at (0, 1) is outside the vocabulary 0..299",
            |d| write(d, "e.txt", "1 999\n")
        ),
        case!(
            "forward_tokens_negative",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "e.txt",
                "-o",
                "l.safetensors"
            ],
            "e.txt: token -5 at (0, 0) is outside the vocabulary",
            |d| write(d, "e.txt", "-5 1\n")
        ),
        case!(
            "forward_tokens_ragged",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "e.txt",
                "-o",
                "l.safetensors"
            ],
            "e.txt:",
            |d| write(d, "e.txt", "1 2 3\n4 5\n")
        ),
        case!(
            "forward_tokens_too_long",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "e.txt",
                "-o",
                "l.safetensors"
            ],
            "e.txt:",
            |d| write(d, "e.txt", "1 ".repeat(40))
        ),
        case!("grad_tokens_too_many_rows", ["grad", "tiny.toml", "--weights", "w.safetensors", "--tokens", "e.txt", "--targets", "e.txt", "-o", "g.safetensors"], "e.txt: expected up to 2 sequences of equal length up to 32 tokens", |d| write(d, "e.txt", "1 2\n".repeat(5))),
        case!(
            "forward_tokens_binary",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "e.txt",
                "-o",
                "l.safetensors"
            ],
            "e.txt: not UTF-8 text",
            |d| write(d, "e.txt", binary())
        ),
        case!(
            "forward_tokens_fifo",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "e.txt",
                "-o",
                "l.safetensors"
            ],
            "e.txt: a FIFO (named pipe)",
            |d| fifo(d, "e.txt")
        ),
        case!(
            "forward_threads_too_many",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors",
                "--threads",
                "300"
            ],
            "--threads: 300 is out of range; expected 0 (one per core) to 256"
        ),
        case!(
            "forward_threads_negative",
            [
                "forward",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors",
                "--threads",
                "-2"
            ],
            "--threads: \"-2\" is not a non-negative integer"
        ),
        case!(
            "grad_targets_missing",
            [
                "grad",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "--targets",
                "nope.txt",
                "-o",
                "g.safetensors"
            ],
            "nope.txt: no such file or folder"
        ),
        case!(
            "grad_targets_other_shape",
            [
                "grad",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "--targets",
                "e.txt",
                "-o",
                "g.safetensors"
            ],
            "e.txt: targets must have the same shape as the tokens in t.txt",
            |d| write(d, "e.txt", "1 2 3\n")
        ),
        case!(
            "grad_targets_out_of_vocab",
            [
                "grad",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "--targets",
                "e.txt",
                "-o",
                "g.safetensors"
            ],
            "e.txt: target 999 at (0, 0) is outside the vocabulary 0..299",
            |d| write(d, "e.txt", "999 2 3 4\n1 2 3 4\n")
        ),
        case!(
            "grad_targets_not_ids",
            [
                "grad",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "--targets",
                "e.txt",
                "-o",
                "g.safetensors"
            ],
            "e.txt:1: `x` is not a token id",
            |d| write(d, "e.txt", "x 2 3 4\n")
        ),
        case!(
            "grad_targets_fifo",
            [
                "grad",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "--targets",
                "e.txt",
                "-o",
                "g.safetensors"
            ],
            "e.txt: a FIFO (named pipe)",
            |d| fifo(d, "e.txt")
        ),
        case!(
            "grad_targets_symlink_loop",
            [
                "grad",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "--targets",
                "e.txt",
                "-o",
                "g.safetensors"
            ],
            "e.txt: a symbolic link loop",
            |d| symlink_loop(d, "e.txt")
        ),
        case!(
            "grad_tokens_out_of_vocab",
            [
                "grad",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "e.txt",
                "--targets",
                "tg.txt",
                "-o",
                "g.safetensors"
            ],
            "e.txt: token 300 at (1, 3) is outside the vocabulary",
            |d| write(d, "e.txt", "1 2 3 4\n5 6 7 300\n")
        ),
        case!(
            "grad_weights_nan",
            [
                "grad",
                "tiny.toml",
                "--weights",
                "n.safetensors",
                "--tokens",
                "t.txt",
                "--targets",
                "tg.txt",
                "-o",
                "g.safetensors"
            ],
            "n.safetensors: tensor `transformer.h.0.attn.c_attn.bias`: value NaN",
            |d| weights_with(d, "n.safetensors", f32::NAN)
        ),
        case!(
            "grad_threads_too_many",
            [
                "grad",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "--targets",
                "tg.txt",
                "-o",
                "g.safetensors",
                "--threads",
                "257"
            ],
            "--threads: 257 is out of range"
        ),
    ]
}

fn train_run_cases() -> Vec<Case> {
    vec![
        case!(
            "train_missing_spec",
            ["train", "nope.toml", "--quiet"],
            "nope.toml: cannot read spec"
        ),
        case!(
            "train_no_data_source",
            ["train", "s.toml", "-o", "r2", "--quiet"],
            "s.toml: [data].source: missing",
            |d| spec_edit(d, "s.toml", "source=['corpus.txt']\n", "")
        ),
        case!(
            "train_source_missing",
            ["train", "s.toml", "-o", "r2", "--quiet"],
            "nope.txt: no such file or folder",
            |d| spec_edit(d, "s.toml", "source=['corpus.txt']", "source=['nope.txt']")
        ),
        case!(
            "train_source_empty_file",
            ["train", "s.toml", "-o", "r2", "--quiet"],
            "e.txt: 1 files read, no samples in them",
            |d| {
                write(d, "e.txt", "");
                spec_edit(d, "s.toml", "corpus.txt", "e.txt")
            }
        ),
        case!(
            "train_source_fifo",
            ["train", "s.toml", "-o", "r2", "--quiet"],
            "e.txt: a FIFO (named pipe)",
            |d| {
                fifo(d, "e.txt");
                spec_edit(d, "s.toml", "corpus.txt", "e.txt")
            }
        ),
        case!(
            "train_source_symlink_loop",
            ["train", "s.toml", "-o", "r2", "--quiet"],
            "e.txt: a symbolic link loop",
            |d| {
                symlink_loop(d, "e.txt");
                spec_edit(d, "s.toml", "corpus.txt", "e.txt")
            }
        ),
        case!(
            "train_source_binary",
            ["train", "s.toml", "-o", "r2", "--quiet"],
            "e.txt: no row kept",
            |d| {
                write(d, "e.txt", binary());
                spec_edit(d, "s.toml", "corpus.txt", "e.txt")
            }
        ),
        case!(
            "train_source_empty_folder",
            ["train", "s.toml", "-o", "r2", "--quiet"],
            "empty: no .txt files",
            |d| spec_edit(d, "s.toml", "'corpus.txt'", "'empty'")
        ),
        case!(
            "train_tokenizer_path_missing",
            ["train", "s.toml", "-o", "r2", "--quiet"],
            "nope.json: no such file or folder",
            |d| spec_plus(d, "s.toml", "tokenizer", "path='nope.json'")
        ),
        case!(
            "train_resume_missing",
            [
                "train",
                "tiny.toml",
                "--resume",
                "nope.safetensors",
                "-o",
                "run",
                "--quiet"
            ],
            "nope.safetensors"
        ),
        case!(
            "train_resume_truncated",
            [
                "train",
                "tiny.toml",
                "--resume",
                "run/latest.safetensors",
                "-o",
                "run",
                "--quiet"
            ],
            "run/latest.safetensors:",
            |d| truncate(d, "run/latest.safetensors")
        ),
        case!(
            "train_resume_init_weights",
            [
                "train",
                "tiny.toml",
                "--resume",
                "w.safetensors",
                "-o",
                "run",
                "--quiet"
            ],
            "w.safetensors:"
        ),
        case!(
            "train_resume_dev_zero",
            [
                "train",
                "tiny.toml",
                "--resume",
                "/dev/zero",
                "-o",
                "run",
                "--quiet"
            ],
            "/dev/zero: a device, not a regular file"
        ),
        case!(
            "train_resume_past_schedule",
            [
                "train",
                "short.toml",
                "--resume",
                "run",
                "-o",
                "run",
                "--quiet"
            ],
            "run: the checkpoint is at step 4, past the schedule's 2 steps"
        ),
        case!(
            "train_resume_empty_run",
            [
                "train",
                "tiny.toml",
                "--resume",
                "empty",
                "-o",
                "empty",
                "--quiet"
            ],
            "empty: no valid checkpoint to resume from"
        ),
        case!(
            "train_stop_after_zero",
            ["train", "tiny.toml", "--stop-after", "0"],
            "--stop-after: 0 is out of range; expected an integer ≥ 1"
        ),
        case!(
            "train_stop_after_negative",
            ["train", "tiny.toml", "--stop-after", "-3"],
            "--stop-after: \"-3\" is not a non-negative integer"
        ),
        case!(
            "run_missing_spec",
            ["run", "nope.toml"],
            "nope.toml: cannot read spec"
        ),
        case!(
            "run_threads_too_many",
            ["run", "tiny.toml", "--threads", "1000"],
            "--threads: 1000 is out of range"
        ),
        case!(
            "run_stop_after_zero",
            ["run", "tiny.toml", "--stop-after", "0"],
            "--stop-after: 0 is out of range"
        ),
        case!(
            "run_no_data_source",
            ["run", "s.toml", "-o", "r2"],
            "s.toml: [data].source: missing",
            |d| spec_edit(d, "s.toml", "source=['corpus.txt']\n", "")
        ),
        case!(
            "run_source_symlink_loop",
            ["run", "s.toml", "-o", "r2"],
            "e.txt: a symbolic link loop",
            |d| {
                symlink_loop(d, "e.txt");
                spec_edit(d, "s.toml", "corpus.txt", "e.txt")
            }
        ),
        case!(
            "run_source_wrong_format",
            ["run", "s.toml", "-o", "r2"],
            "no row kept",
            |d| spec_edit(d, "s.toml", "format='text'", "format='jsonl'")
        ),
        case!(
            "run_bad_generate_section",
            ["run", "s.toml", "-o", "r2"],
            "[generate].top_p: 2 is out of range",
            |d| spec_plus(d, "s.toml", "generate", "top_p=2.0")
        ),
    ]
}

fn generate_eval_cases() -> Vec<Case> {
    vec![
        case!(
            "generate_not_a_run",
            ["generate", "empty"],
            "empty: not a run directory"
        ),
        case!(
            "generate_missing_run",
            ["generate", "nope"],
            "nope: not a run directory"
        ),
        case!(
            "generate_top_p_zero",
            ["generate", "run", "--top-p", "0"],
            "--top-p: 0 is out of range; expected a number in (0, 1]"
        ),
        case!(
            "generate_top_p_above_one",
            ["generate", "run", "--top-p", "1.5"],
            "--top-p: 1.5 is out of range; expected a number in (0, 1]"
        ),
        case!(
            "generate_top_p_nan",
            ["generate", "run", "--top-p", "nan"],
            "--top-p: NaN is out of range"
        ),
        case!(
            "generate_top_p_not_a_number",
            ["generate", "run", "--top-p", "half"],
            "--top-p: \"half\" is not a number"
        ),
        case!(
            "generate_temperature_negative",
            ["generate", "run", "--temperature", "-1"],
            "--temperature: -1 is out of range; expected a number ≥ 0"
        ),
        case!(
            "generate_temperature_nan",
            ["generate", "run", "--temperature", "nan"],
            "--temperature: NaN is out of range; expected a number ≥ 0"
        ),
        case!(
            "generate_temperature_inf",
            ["generate", "run", "--temperature", "inf"],
            "--temperature: inf is out of range"
        ),
        case!(
            "generate_penalty_zero",
            ["generate", "run", "--repetition-penalty", "0"],
            "--repetition-penalty: 0 is out of range; expected a number > 0"
        ),
        case!(
            "generate_penalty_negative",
            ["generate", "run", "--repetition-penalty", "-2"],
            "--repetition-penalty: -2 is out of range"
        ),
        case!(
            "generate_max_tokens_zero",
            ["generate", "run", "--max-tokens", "0"],
            "--max-tokens: 0 is out of range; expected an integer ≥ 1"
        ),
        case!(
            "generate_n_zero",
            ["generate", "run", "-n", "0"],
            ": 0 is out of range; expected an integer ≥ 1"
        ),
        case!(
            "generate_threads_too_many",
            ["generate", "run", "--threads", "9999"],
            "--threads: 9999 is out of range"
        ),
        case!(
            "generate_seed_negative",
            ["generate", "run", "--seed", "-1"],
            "--seed: \"-1\" is not a non-negative integer"
        ),
        case!(
            "generate_top_k_negative",
            ["generate", "run", "--top-k", "-1"],
            "--top-k: \"-1\" is not a non-negative integer"
        ),
        case!(
            "generate_run_is_a_file",
            ["generate", "corpus.txt"],
            "corpus.txt: not a run directory"
        ),
        case!(
            "generate_latest_truncated",
            ["generate", "run", "--max-tokens", "2"],
            "run/latest.safetensors:",
            |d| truncate(d, "run/latest.safetensors")
        ),
        case!(
            "generate_latest_nan",
            ["generate", "run", "--max-tokens", "2"],
            "value NaN at index 0 is not finite",
            |d| weights_with(d, "run/latest.safetensors", f32::NAN)
        ),
        case!(
            "generate_tokenizer_corrupt",
            ["generate", "run", "--max-tokens", "2"],
            "run/data/tokenizer.json:",
            |d| write(d, "run/data/tokenizer.json", "{\"model\":")
        ),
        case!(
            "eval_not_a_run",
            ["eval", "empty"],
            "empty: not a run directory"
        ),
        case!(
            "eval_n_zero",
            ["eval", "run", "-n", "0"],
            ": 0 is out of range; expected an integer ≥ 1"
        ),
        case!(
            "eval_top_p_zero",
            ["eval", "run", "--top-p", "0"],
            "--top-p: 0 is out of range"
        ),
        case!(
            "eval_temperature_negative",
            ["eval", "run", "--temperature", "-0.5"],
            "--temperature: -0.5 is out of range"
        ),
        case!(
            "eval_max_tokens_zero",
            ["eval", "run", "--max-tokens", "0"],
            "--max-tokens: 0 is out of range"
        ),
        case!(
            "eval_threads_too_many",
            ["eval", "run", "--threads", "300"],
            "--threads: 300 is out of range"
        ),
        case!(
            "eval_val_rows_corrupt",
            ["eval", "run", "-n", "1", "--max-tokens", "2"],
            "run/data/val.jsonl:1:",
            |d| write(d, "run/data/val.jsonl", "not json\n")
        ),
        case!(
            "eval_val_rows_binary",
            ["eval", "run", "-n", "1", "--max-tokens", "2"],
            "run/data/val.jsonl: not UTF-8 text",
            |d| write(d, "run/data/val.jsonl", binary())
        ),
        case!(
            "eval_val_rows_fifo",
            ["eval", "run", "-n", "1", "--max-tokens", "2"],
            "val.jsonl: a FIFO",
            |d| fifo(d, "run/data/val.jsonl")
        ),
        case!(
            "eval_latest_truncated",
            ["eval", "run", "-n", "1", "--max-tokens", "2"],
            "run/latest.safetensors:",
            |d| truncate(d, "run/latest.safetensors")
        ),
    ]
}

fn report_doctor_cases() -> Vec<Case> {
    vec![
        case!(
            "report_missing_folder",
            ["report", "nope"],
            "nope: no such file or folder"
        ),
        case!(
            "report_empty_folder",
            ["report", "empty"],
            "empty: not a run directory (no build/spec.toml)"
        ),
        case!(
            "report_of_a_file",
            ["report", "corpus.txt"],
            "corpus.txt: a file; expected a run folder"
        ),
        case!(
            "report_metrics_missing",
            ["report", "run"],
            "run/metrics.jsonl: no such file or folder",
            |d| remove(d, "run/metrics.jsonl")
        ),
        case!(
            "report_metrics_empty",
            ["report", "run"],
            "run/metrics.jsonl: empty",
            |d| write(d, "run/metrics.jsonl", "")
        ),
        case!(
            "report_metrics_all_corrupt",
            ["report", "run"],
            "run/metrics.jsonl:1: not JSON",
            |d| write(d, "run/metrics.jsonl", "garbage\n{\"no_step\":1}\n")
        ),
        case!(
            "report_metrics_no_step",
            ["report", "run"],
            "run/metrics.jsonl:1: expected a JSON object with a numeric `step`",
            |d| write(d, "run/metrics.jsonl", "{\"loss\":1}\n")
        ),
        case!(
            "report_metrics_binary",
            ["report", "run"],
            "run/metrics.jsonl:1: not JSON",
            |d| write(d, "run/metrics.jsonl", binary())
        ),
        case!(
            "report_metrics_fifo",
            ["report", "run"],
            "run/metrics.jsonl: a FIFO",
            |d| fifo(d, "run/metrics.jsonl")
        ),
        case!(
            "report_metrics_symlink_loop",
            ["report", "run"],
            "run/metrics.jsonl: a symbolic link loop",
            |d| symlink_loop(d, "run/metrics.jsonl")
        ),
        case!(
            "report_eval_json_corrupt",
            ["report", "run"],
            "run/eval.json:",
            |d| write(d, "run/eval.json", "{\"val_loss\": ")
        ),
        case!(
            "report_eval_json_binary",
            ["report", "run"],
            "run/eval.json: not UTF-8 text",
            |d| write(d, "run/eval.json", binary())
        ),
        case!(
            "report_samples_json_corrupt",
            ["report", "run"],
            "run/samples.json:",
            |d| write(d, "run/samples.json", "[{")
        ),
        case!(
            "report_out_is_a_folder",
            ["report", "run", "-o", "empty"],
            "empty"
        ),
        case!(
            "doctor_missing_folder",
            ["doctor", "nope"],
            "nope: no such file or folder"
        ),
        case!(
            "doctor_empty_folder",
            ["doctor", "empty"],
            "empty: not a run directory (no build/spec.toml)"
        ),
        case!(
            "doctor_of_a_file",
            ["doctor", "corpus.txt"],
            "corpus.txt: a file; expected a run folder"
        ),
        case!(
            "doctor_metrics_all_corrupt",
            ["doctor", "run"],
            "run/metrics.jsonl:1: not JSON",
            |d| write(d, "run/metrics.jsonl", "{{{\n")
        ),
        case!(
            "doctor_metrics_missing",
            ["doctor", "run"],
            "run/metrics.jsonl: no such file or folder",
            |d| remove(d, "run/metrics.jsonl")
        ),
        case!(
            "doctor_eval_json_corrupt",
            ["doctor", "run"],
            "run/eval.json:",
            |d| write(d, "run/eval.json", "[]")
        ),
        case!(
            "doctor_latest_truncated",
            ["doctor", "run"],
            "run/latest.safetensors:",
            |d| truncate(d, "run/latest.safetensors")
        ),
        case!(
            "doctor_val_rows_corrupt",
            ["doctor", "run"],
            "run/data/val.jsonl",
            |d| write(d, "run/data/val.jsonl", "nope\n")
        ),
        case!(
            "doctor_threads_too_many",
            ["doctor", "run", "--threads", "500"],
            "--threads: 500 is out of range"
        ),
        case!(
            "doctor_spec_corrupt",
            ["doctor", "run"],
            "run/build/spec.toml:",
            |d| write(d, "run/build/spec.toml", "[model\n")
        ),
    ]
}

fn export_import_cases() -> Vec<Case> {
    vec![
        case!(
            "export_weights_missing",
            [
                "export",
                "tiny.toml",
                "--weights",
                "nope.safetensors",
                "--hf",
                "-o",
                "out"
            ],
            "nope.safetensors: no such file or folder"
        ),
        case!(
            "export_weights_nan",
            [
                "export",
                "tiny.toml",
                "--weights",
                "n.safetensors",
                "--hf",
                "-o",
                "out"
            ],
            "n.safetensors: tensor `transformer.h.0.attn.c_attn.bias`: value NaN",
            |d| weights_with(d, "n.safetensors", f32::NAN)
        ),
        case!(
            "export_weights_dev_zero",
            [
                "export",
                "tiny.toml",
                "--weights",
                "/dev/zero",
                "--hf",
                "-o",
                "out"
            ],
            "/dev/zero: a device"
        ),
        case!(
            "export_weights_of_another_model",
            [
                "export",
                "s.toml",
                "--weights",
                "w.safetensors",
                "--hf",
                "-o",
                "out"
            ],
            "export --hf:",
            |d| spec_edit(d, "s.toml", "d_model=32", "d_model=64")
        ),
        case!(
            "export_tokenizer_missing",
            [
                "export",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokenizer",
                "nope.json",
                "--hf",
                "-o",
                "out"
            ],
            "nope.json: no such file or folder"
        ),
        case!(
            "export_tokenizer_corrupt",
            [
                "export",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokenizer",
                "e.json",
                "--hf",
                "-o",
                "out"
            ],
            "e.json:",
            |d| write(d, "e.json", "{\"model\": 3}")
        ),
        case!(
            "export_tokenizer_fifo",
            [
                "export",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "--tokenizer",
                "e.json",
                "--hf",
                "-o",
                "out"
            ],
            "e.json: a FIFO",
            |d| fifo(d, "e.json")
        ),
        case!(
            "export_without_hf",
            [
                "export",
                "tiny.toml",
                "--weights",
                "w.safetensors",
                "-o",
                "out"
            ],
            "required arguments were not provided"
        ),
        case!(
            "import_missing_folder",
            [
                "import",
                "nope",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "nope: no such file or folder"
        ),
        case!(
            "import_empty_folder",
            [
                "import",
                "empty",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "empty/config.json: no such file or folder"
        ),
        case!(
            "import_config_corrupt",
            [
                "import",
                "hf",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "hf/config.json:",
            |d| write(d, "hf/config.json", "{\"n_layer\": ")
        ),
        case!(
            "import_config_binary",
            [
                "import",
                "hf",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "hf/config.json: not UTF-8 text",
            |d| write(d, "hf/config.json", binary())
        ),
        case!(
            "import_config_not_an_object",
            [
                "import",
                "hf",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "hf/config.json: expected a JSON object",
            |d| write(d, "hf/config.json", "[1, 2]")
        ),
        case!(
            "import_config_fifo",
            [
                "import",
                "hf",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "hf/config.json: a FIFO",
            |d| fifo(d, "hf/config.json")
        ),
        case!(
            "import_unsupported_architecture",
            [
                "import",
                "hf",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "hf/config.json: `model_type`: \"bert\" is not supported",
            |d| write(
                d,
                "hf/config.json",
                "{\"architectures\": [\"BertModel\"], \"model_type\": \"bert\"}"
            )
        ),
        case!(
            "import_weights_missing",
            [
                "import",
                "hf",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "no model.safetensors",
            |d| remove(d, "hf/model.safetensors")
        ),
        case!(
            "import_weights_truncated",
            [
                "import",
                "hf",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "hf/model.safetensors: not a valid safetensors file",
            |d| truncate(d, "hf/model.safetensors")
        ),
        case!(
            "import_weights_nan",
            [
                "import",
                "hf",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "hf/model.safetensors: tensor `transformer.h.0.attn.c_attn.bias`: value NaN",
            |d| weights_with(d, "hf/model.safetensors", f32::NAN)
        ),
        case!(
            "import_weights_symlink_loop",
            [
                "import",
                "hf",
                "--hf",
                "--spec",
                "i.toml",
                "--weights",
                "i.safetensors"
            ],
            "hf/model.safetensors: a symbolic link loop",
            |d| symlink_loop(d, "hf/model.safetensors")
        ),
    ]
}

fn sweep_profile_cases() -> Vec<Case> {
    vec![
        case!(
            "sweep_without_set",
            ["sweep", "tiny.toml"],
            "required arguments were not provided"
        ),
        case!(
            "sweep_set_without_equals",
            ["sweep", "tiny.toml", "--set", "train.lr", "-o", "sw"],
            "--set train.lr: expected KNOB=V1,V2,..."
        ),
        case!(
            "sweep_set_empty_key",
            ["sweep", "tiny.toml", "--set", "=1", "-o", "sw"],
            "--set =1: expected a knob like train.lr or vocab before `=`"
        ),
        case!(
            "sweep_set_empty_value",
            ["sweep", "tiny.toml", "--set", "train.lr=1e-3,", "-o", "sw"],
            "--set train.lr=1e-3,: an empty value"
        ),
        case!(
            "sweep_later_variant_invalid",
            [
                "sweep",
                "tiny.toml",
                "--set",
                "train.lr=1e-3,-1",
                "-o",
                "sw"
            ],
            "--set train.lr=-1:"
        ),
        // A variant's text is irc's re-writing of the spec: its errors name
        // the file, not a line of that text.
        case!(
            "sweep_variant_error_names_no_line",
            [
                "sweep",
                "tiny.toml",
                "--set",
                "generate.top_p=0.5,0",
                "-o",
                "sw"
            ],
            "--set generate.top_p=0: tiny.toml: [generate].top_p: 0 is out of range; expected a number in (0, 1]"
        ),
        case!(
            "sweep_later_knob_invalid",
            [
                "sweep",
                "tiny.toml",
                "--set",
                "train.lr=1e-3",
                "--set",
                "generate.top_p=0",
                "-o",
                "sw"
            ],
            "--set generate.top_p=0:"
        ),
        case!(
            "sweep_unknown_knob",
            ["sweep", "tiny.toml", "--set", "train.speed=1", "-o", "sw"],
            "unknown field `speed`"
        ),
        case!(
            "sweep_knob_not_a_table",
            ["sweep", "tiny.toml", "--set", "model.name.x=1", "-o", "sw"],
            "--set model.name.x: `name` is not a table"
        ),
        case!(
            "sweep_variant_source_missing",
            [
                "sweep",
                "tiny.toml",
                "--set",
                "data.source=['nope.txt']",
                "-o",
                "sw"
            ],
            "nope.txt: no such file or folder"
        ),
        case!(
            "sweep_variant_vocab_too_small",
            ["sweep", "tiny.toml", "--set", "vocab=100", "-o", "sw"],
            "[tokenizer].vocab_size: 100 is out of range"
        ),
        case!(
            "sweep_jobs_zero",
            [
                "sweep",
                "tiny.toml",
                "--set",
                "train.lr=1e-3",
                "--jobs",
                "0"
            ],
            "--jobs: 0 is out of range; expected an integer ≥ 1"
        ),
        case!(
            "sweep_collect_before_any_run",
            [
                "sweep",
                "tiny.toml",
                "--set",
                "train.lr=1e-3",
                "-o",
                "sw",
                "--collect"
            ],
            "sw/baseline/eval.json: no results of variant `baseline` yet"
        ),
        case!(
            "sweep_print_commands_with_collect",
            [
                "sweep",
                "tiny.toml",
                "--set",
                "train.lr=1e-3",
                "--print-commands",
                "--collect"
            ],
            "cannot be used with"
        ),
        case!(
            "run_set_two_values",
            ["run", "tiny.toml", "--set", "train.lr=1e-3,2e-3"],
            "--set train.lr=1e-3,2e-3: expected one value (irc sweep tries several)"
        ),
        case!(
            "sweep_threads_too_many",
            [
                "sweep",
                "tiny.toml",
                "--set",
                "train.lr=1e-3",
                "--threads",
                "999"
            ],
            "--threads: 999 is out of range"
        ),
        case!(
            "sweep_missing_spec",
            ["sweep", "nope.toml", "--set", "train.lr=1e-3"],
            "nope.toml: cannot read spec"
        ),
        case!(
            "profile_missing_spec",
            ["profile", "nope.toml"],
            "nope.toml: cannot read spec"
        ),
        case!(
            "profile_iters_zero",
            ["profile", "tiny.toml", "--iters", "0"],
            "--iters: 0 is out of range; expected an integer ≥ 1"
        ),
        case!(
            "profile_top_zero",
            ["profile", "tiny.toml", "--top", "0"],
            "--top: 0 is out of range; expected an integer ≥ 1"
        ),
        case!(
            "profile_threads_too_many",
            ["profile", "tiny.toml", "--threads", "257"],
            "--threads: 257 is out of range"
        ),
        case!(
            "profile_iters_not_a_number",
            ["profile", "tiny.toml", "--iters", "many"],
            "--iters: \"many\" is not a non-negative integer"
        ),
        case!(
            "profile_unknown_program",
            [
                "profile",
                "tiny.toml",
                "--program",
                "backward",
                "--build-dir",
                "pb"
            ],
            "backward"
        ),
        case!(
            "profile_weights_missing",
            [
                "profile",
                "tiny.toml",
                "--weights",
                "nope.safetensors",
                "--build-dir",
                "pb"
            ],
            "nope.safetensors: no such file or folder"
        ),
        case!(
            "profile_weights_nan",
            [
                "profile",
                "tiny.toml",
                "--weights",
                "n.safetensors",
                "--build-dir",
                "pb"
            ],
            "n.safetensors: tensor `transformer.h.0.attn.c_attn.bias`: value NaN",
            |d| weights_with(d, "n.safetensors", f32::NAN)
        ),
        case!(
            "profile_weights_dev_zero",
            [
                "profile",
                "tiny.toml",
                "--weights",
                "/dev/zero",
                "--build-dir",
                "pb"
            ],
            "/dev/zero: a device"
        ),
    ]
}

fn data_cases() -> Vec<Case> {
    vec![
        case!(
            "ingest_empty_folder",
            ["data", "ingest", "empty", "-o", "out"],
            "empty: no .svg, .jsonl or .txt files"
        ),
        case!(
            "ingest_no_matching_files",
            ["data", "ingest", "src", "-o", "out"],
            "src: no .svg, .jsonl or .txt files",
            |d| write(d, "src/a.png", "png")
        ),
        case!(
            "ingest_wrong_format_folder",
            ["data", "ingest", "src", "-o", "out", "--format", "svg"],
            "src: no .svg files",
            |d| write(d, "src/a.txt", "hello\n")
        ),
        case!(
            "ingest_wrong_format_file",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--format",
                "jsonl"
            ],
            "corpus.txt: no row kept: 16 read, every one rejected"
        ),
        case!(
            "ingest_text_as_svg",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--format",
                "svg"
            ],
            "corpus.txt: no row kept: 1 read"
        ),
        case!(
            "ingest_missing_source",
            ["data", "ingest", "nope", "-o", "out"],
            "nope: no such file or folder"
        ),
        case!(
            "ingest_fifo_named_svg",
            ["data", "ingest", "src", "-o", "out"],
            "src/a.svg: a FIFO (named pipe), not a regular file",
            |d| fifo(d, "src/a.svg")
        ),
        case!(
            "ingest_fifo_source",
            ["data", "ingest", "a.txt", "-o", "out"],
            "a.txt: a FIFO (named pipe)",
            |d| fifo(d, "a.txt")
        ),
        case!(
            "ingest_socket_named_txt",
            ["data", "ingest", "src", "-o", "out"],
            "src/s.txt: a socket",
            |d| socket(d, "src/s.txt")
        ),
        case!(
            "ingest_symlink_loop_in_folder",
            ["data", "ingest", "src", "-o", "out"],
            "src/l.svg: a symbolic link loop",
            |d| symlink_loop(d, "src/l.svg")
        ),
        case!(
            "ingest_symlink_loop_source",
            ["data", "ingest", "l.txt", "-o", "out"],
            "l.txt: a symbolic link loop",
            |d| symlink_loop(d, "l.txt")
        ),
        case!(
            "ingest_dev_null",
            ["data", "ingest", "/dev/null", "-o", "out"],
            "/dev/null: a device, not a regular file"
        ),
        case!(
            "ingest_binary_text",
            ["data", "ingest", "b.txt", "-o", "out"],
            "b.txt: no row kept",
            |d| write(d, "b.txt", binary())
        ),
        case!(
            "ingest_empty_jsonl",
            ["data", "ingest", "e.jsonl", "-o", "out"],
            "e.jsonl: 1 files read, no samples in them",
            |d| write(d, "e.jsonl", "")
        ),
        case!(
            "ingest_corrupt_jsonl",
            ["data", "ingest", "e.jsonl", "-o", "out"],
            "e.jsonl: no row kept",
            |d| write(d, "e.jsonl", "{not json\n[1]\n")
        ),
        case!(
            "ingest_near_negative",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--near",
                "-0.5"
            ],
            "--near: -0.5 is out of range; expected a number in [0, 1]"
        ),
        case!(
            "ingest_near_above_one",
            ["data", "ingest", "corpus.txt", "-o", "out", "--near", "1.5"],
            "--near: 1.5 is out of range"
        ),
        case!(
            "ingest_near_nan",
            ["data", "ingest", "corpus.txt", "-o", "out", "--near", "nan"],
            "--near: NaN is out of range"
        ),
        case!(
            "ingest_max_len_zero",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--max-len",
                "0"
            ],
            "--max-len: 0 is out of range; expected an integer ≥ 1"
        ),
        case!(
            "ingest_val_ratio_one",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--val-ratio",
                "1"
            ],
            "--val-ratio: 1 is out of range; expected a fraction in [0, 1)"
        ),
        case!(
            "ingest_val_ratio_negative",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--val-ratio",
                "-0.1"
            ],
            "--val-ratio: -0.1 is out of range"
        ),
        case!(
            "ingest_synthetic_too_many",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--synthetic",
                "99999999999"
            ],
            "--synthetic: 99999999999 is out of range; expected 0 to 10000000"
        ),
        case!(
            "ingest_seed_negative",
            ["data", "ingest", "corpus.txt", "-o", "out", "--seed", "-7"],
            "--seed: \"-7\" is not a non-negative integer"
        ),
        case!(
            "ingest_format_unknown",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--format",
                "xml"
            ],
            "--format: unknown format `xml`"
        ),
        case!(
            "ingest_ascii_unknown",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--ascii",
                "drop"
            ],
            "--ascii:"
        ),
        case!(
            "ingest_svg_form_unknown",
            [
                "data",
                "ingest",
                "corpus.txt",
                "-o",
                "out",
                "--svg",
                "pretty"
            ],
            "--svg:"
        ),
        case!(
            "ingest_out_is_a_file",
            ["data", "ingest", "corpus.txt", "-o", "t.txt"],
            "t.txt"
        ),
        case!(
            "data_stats_missing_folder",
            ["data", "stats", "nope"],
            "nope/manifest.json"
        ),
        case!(
            "data_stats_empty_folder",
            ["data", "stats", "empty"],
            "empty/manifest.json"
        ),
        case!(
            "data_stats_corrupt_manifest",
            ["data", "stats", "data"],
            "data/manifest.json:",
            |d| write(d, "data/manifest.json", "{")
        ),
        case!(
            "data_stats_corrupt_rows",
            ["data", "stats", "data"],
            "data/train.jsonl:1:",
            |d| write(d, "data/train.jsonl", "oops\n")
        ),
        case!(
            "data_stats_show_negative",
            ["data", "stats", "data", "--show", "-1"],
            "--show: \"-1\" is not a non-negative integer"
        ),
        case!(
            "data_synth_count_zero",
            ["data", "synth", "-o", "out", "--count", "0"],
            "--count: 0 is out of range; expected 1 to 10000000"
        ),
        case!(
            "data_synth_count_huge",
            ["data", "synth", "-o", "out", "--count", "100000000000"],
            "--count: 100000000000 is out of range"
        ),
        case!(
            "data_synth_seed_negative",
            ["data", "synth", "-o", "out", "--seed", "-1"],
            "--seed: \"-1\" is not a non-negative integer"
        ),
        case!(
            "data_prep_tokenizer_missing",
            ["data", "prep", "data", "--tokenizer", "nope.json"],
            "nope.json: no such file or folder"
        ),
        case!(
            "data_prep_tokenizer_corrupt",
            ["data", "prep", "data", "--tokenizer", "e.json"],
            "e.json:",
            |d| write(d, "e.json", "{\"model\"")
        ),
        case!(
            "data_prep_tokenizer_fifo",
            ["data", "prep", "data", "--tokenizer", "e.json"],
            "e.json: a FIFO",
            |d| fifo(d, "e.json")
        ),
        case!(
            "data_prep_missing_folder",
            ["data", "prep", "nope", "--tokenizer", "tok.json"],
            "nope/train.jsonl: no such file or folder"
        ),
        case!(
            "data_prep_corrupt_rows",
            ["data", "prep", "data", "--tokenizer", "tok.json"],
            "data/train.jsonl:2:",
            |d| write(d, "data/train.jsonl", "{\"text\":\"a\"}\n{\"text\":\n")
        ),
    ]
}

fn tokenizer_cases() -> Vec<Case> {
    vec![
        case!("tokenizer_train_empty_file", ["tokenizer", "train", "e.txt", "-o", "t.json"], "e.txt: no samples; expected text to learn merges from", |d| write(d, "e.txt", "")),
        case!("tokenizer_train_blank_lines", ["tokenizer", "train", "e.txt", "-o", "t.json"], "e.txt: no samples", |d| write(d, "e.txt", "\n  \n\n")),
        case!("tokenizer_train_binary_file", ["tokenizer", "train", "e.bin", "-o", "t.json"], "e.bin: not UTF-8 text", |d| write(d, "e.bin", binary())),
        case!("tokenizer_train_nul_bytes", ["tokenizer", "train", "e.txt", "-o", "t.json"], "e.txt: binary data (a NUL byte at 3)", |d| write(d, "e.txt", "abc\0def\n")),
        case!("tokenizer_train_missing", ["tokenizer", "train", "nope.txt", "-o", "t.json"], "nope.txt: no such file or folder"),
        case!("tokenizer_train_fifo", ["tokenizer", "train", "e.txt", "-o", "t.json"], "e.txt: a FIFO (named pipe)", |d| fifo(d, "e.txt")),
        case!("tokenizer_train_symlink_loop", ["tokenizer", "train", "e.txt", "-o", "t.json"], "e.txt: a symbolic link loop", |d| symlink_loop(d, "e.txt")),
        case!("tokenizer_train_dev_zero", ["tokenizer", "train", "/dev/zero", "-o", "t.json"], "/dev/zero: a device"),
        case!("tokenizer_train_empty_folder", ["tokenizer", "train", "empty", "-o", "t.json"], "empty/train.jsonl: no such file or folder"),
        case!("tokenizer_train_empty_jsonl", ["tokenizer", "train", "e.jsonl", "-o", "t.json"], "e.jsonl: no samples", |d| write(d, "e.jsonl", "")),
        case!("tokenizer_train_corrupt_jsonl", ["tokenizer", "train", "e.jsonl", "-o", "t.json"], "e.jsonl:1:", |d| write(d, "e.jsonl", "{\"text\": 3}\n")),
        case!("tokenizer_train_vocab_zero", ["tokenizer", "train", "corpus.txt", "-o", "t.json", "--vocab", "0"], "--vocab: 0 is out of range; expected an integer ≥ 1"),
        case!("tokenizer_train_vocab_below_alphabet", ["tokenizer", "train", "corpus.txt", "-o", "t.json", "--vocab", "10"], "--vocab: 10 is out of range; expected at least 258 (2 special tokens + 256 base symbols)"),
        case!("tokenizer_train_min_frequency_zero", ["tokenizer", "train", "corpus.txt", "-o", "t.json", "--min-frequency", "0"], "--min-frequency: 0 is out of range"),
        case!("tokenizer_train_alphabet_unknown", ["tokenizer", "train", "corpus.txt", "-o", "t.json", "--alphabet", "utf8"], "--alphabet:"),
        case!("tokenizer_train_empty_special", ["tokenizer", "train", "corpus.txt", "-o", "t.json", "--special", ""], "--special: special token list holds an empty string"),
        case!("tokenizer_encode_missing_tokenizer", ["tokenizer", "encode", "nope.json", "hello"], "nope.json: no such file or folder"),
        case!("tokenizer_encode_corrupt_tokenizer", ["tokenizer", "encode", "e.json", "hello"], "e.json:", |d| write(d, "e.json", "[]")),
        case!("tokenizer_encode_binary_tokenizer", ["tokenizer", "encode", "e.json", "hello"], "e.json: not UTF-8 text", |d| write(d, "e.json", binary())),
        case!("tokenizer_encode_file_fifo", ["tokenizer", "encode", "tok.json", "--file", "e.txt"], "e.txt: a FIFO", |d| fifo(d, "e.txt")),
        case!("tokenizer_encode_file_missing", ["tokenizer", "encode", "tok.json", "--file", "nope.txt"], "nope.txt: no such file or folder"),
        case!("tokenizer_encode_no_text", ["tokenizer", "encode", "tok.json"], "give a text or --file"),
        case!("tokenizer_decode_not_an_id", ["tokenizer", "decode", "tok.json", "1", "x"], "`x` is not a token id"),
        case!("tokenizer_decode_negative_id", ["tokenizer", "decode", "tok.json", "-1"], "`-1` is not a token id"),
        case!("tokenizer_decode_id_out_of_range", ["tokenizer", "decode", "tok.json", "99999"], "99999"),
        case!("tokenizer_decode_tokenizer_folder", ["tokenizer", "decode", "empty", "1"], "empty: a folder; expected a file"),
    ]
}

/// What went wrong with one case, if anything.
fn check(case: &Case, scratch: &Path) -> Option<String> {
    let dir = scratch.join(case.name);
    copy_tree(fixture(), &dir);
    (case.setup)(&dir);
    let before = snapshot(&dir);
    let out = scratch.join(format!("{}.out", case.name));
    let err = scratch.join(format!("{}.err", case.name));
    let mut child = irc(&dir, case.args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Some(format!("no answer within {TIME_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let code = status.code();
    let mut problems = vec![];
    if status.success() {
        problems.push("exit 0".to_string());
    }
    if matches!(code, Some(101) | Some(134)) || code.is_none() {
        problems.push(format!("exit {code:?} (a panic or an abort)"));
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        problems.push("a panic".into());
    }
    if !stderr.contains(case.want) {
        problems.push(format!("expected `{}`", case.want));
    }
    let after = snapshot(&dir);
    let changed: Vec<String> = before
        .iter()
        .filter(|(p, b)| after.get(*p) != Some(*b))
        .map(|(p, _)| p.display().to_string())
        .collect();
    if !changed.is_empty() {
        problems.push(format!("changed or removed: {}", changed.join(", ")));
    }
    let _ = std::fs::remove_dir_all(&dir);
    (!problems.is_empty()).then(|| format!("{}; stderr: {}", problems.join("; "), stderr.trim()))
}

#[test]
fn bad_inputs_fail_cleanly_and_change_nothing() {
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let t = Instant::now();
    fixture();
    eprintln!("fixture in {:?}", t.elapsed());
    let scratch = tempfile::tempdir().unwrap();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let times = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(c) = cases.get(i) else { break };
                let t = Instant::now();
                if let Some(why) = check(c, scratch.path()) {
                    failures.lock().unwrap().push(format!("{}: {why}", c.name));
                }
                times.lock().unwrap().push((t.elapsed(), c.name));
            });
        }
    });
    let mut by_command: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &cases {
        let cmd = match c.args {
            [a @ ("data" | "tokenizer"), b, ..] => format!("{a} {b}"),
            [a, ..] => a.to_string(),
            [] => String::new(),
        };
        *by_command
            .entry(Box::leak(cmd.into_boxed_str()))
            .or_default() += 1;
    }
    eprintln!("{} cases by command: {by_command:?}", cases.len());
    let mut times = times.into_inner().unwrap();
    times.sort_unstable_by(|a, b| b.cmp(a));
    eprintln!("slowest: {:?}", &times[..times.len().min(8)]);
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A sweep whose second value is invalid runs nothing: no sweep folder.
#[test]
fn sweep_refuses_before_running_any_variant() {
    let d = tempfile::tempdir().unwrap();
    copy_tree(fixture(), d.path());
    let o = irc(
        d.path(),
        &[
            "sweep",
            "tiny.toml",
            "--set",
            "train.lr=1e-3,-1",
            "-o",
            "sw",
        ],
    )
    .output()
    .unwrap();
    assert!(!o.status.success());
    assert!(!d.path().join("sw").exists(), "a variant ran");
}

/// Partly corrupt metrics: the report is written, says which lines it
/// skipped, and warns on stderr.
#[test]
fn report_of_partly_corrupt_metrics_warns() {
    let d = tempfile::tempdir().unwrap();
    copy_tree(fixture(), d.path());
    let m = d.path().join("run/metrics.jsonl");
    let mut text = std::fs::read_to_string(&m).unwrap();
    text.push_str("{\"step\": oops\n");
    std::fs::write(&m, text.as_bytes()).unwrap();
    let line = text.lines().count();
    let o = irc(d.path(), &["report", "run", "-o", "r.html"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("warning: run/metrics.jsonl: 1 corrupt line skipped: run/metrics.jsonl:{line}: not JSON")),
        "{err}"
    );
    let html = std::fs::read_to_string(d.path().join("r.html")).unwrap();
    assert!(
        html.contains(&format!("1 (lines {line}; skipped)")),
        "the report names the line"
    );
}

/// A folder that links back to itself is walked once, not forever.
#[test]
fn ingest_walks_a_folder_cycle_once() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.txt"), "one line\nanother line\n").unwrap();
    std::os::unix::fs::symlink("..", src.join("up")).unwrap();
    std::os::unix::fs::symlink(".", src.join("here")).unwrap();
    let o = irc(
        d.path(),
        &["data", "ingest", "src", "-o", "out", "--format", "text"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `IRC_CACHE=""` is unset: the cache goes under `$XDG_CACHE_HOME`, not
/// into the working folder.
#[test]
fn empty_irc_cache_is_unset() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("tiny.toml"), spec_text(4)).unwrap();
    let xdg = d.path().join("xdg");
    let o = Command::new(env!("CARGO_BIN_EXE_irc"))
        .args(["build", "tiny.toml", "-o", "b"])
        .current_dir(d.path())
        .env("IRC_CACHE", "")
        .env("XDG_CACHE_HOME", &xdg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut top: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["b", "tiny.toml", "xdg"]);
    assert!(xdg.join("irc").is_dir());
}
