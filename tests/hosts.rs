//! The emitted library in other hosts: the C host (examples/c_host/main.c)
//! linked statically and dynamically, two models linked into one C program,
//! and the ctypes host (examples/python_host.py) all give exactly what the
//! Rust session gives; and the header-only safetensors reader
//! (runtime-c/irc_safetensors.h) passes tests/c/safetensors_test.c.

mod common;
use common::*;
use irc::model::Built;
use irc::runtime::Weights;
use irc::spec::Target;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

const STRICT: [&str; 5] = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"];

/// Compile with `cc`, panicking with the compiler's output on failure.
fn compile(args: &[OsString], out: &Path) -> PathBuf {
    let o = Command::new(cc())
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cc()));
    assert!(
        o.status.success(),
        "{} {:?} failed:\n{}",
        cc(),
        args,
        String::from_utf8_lossy(&o.stderr)
    );
    out.to_path_buf()
}

fn os<S: AsRef<std::ffi::OsStr>>(items: &[S]) -> Vec<OsString> {
    items.iter().map(|s| s.as_ref().to_os_string()).collect()
}

/// Run a program; (exit code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A tiny model built into a temporary directory, with its reference weights.
struct Model {
    name: &'static str,
    upper: &'static str,
    reference: &'static str,
    built: Built,
    _dir: tempfile::TempDir,
}

impl Model {
    fn gpt2() -> Model {
        Model::new(
            "models/tiny-gpt2.toml",
            "tiny_gpt2",
            "TINY_GPT2",
            "gpt2-tiny",
        )
    }

    fn llama() -> Model {
        Model::new(
            "models/tiny-llama.toml",
            "tiny_llama",
            "TINY_LLAMA",
            "llama-tiny",
        )
    }

    fn new(
        spec_file: &str,
        name: &'static str,
        upper: &'static str,
        reference: &'static str,
    ) -> Model {
        let dir = tempfile::tempdir().unwrap();
        let built = build(&spec(spec_file), Target::Native, &dir.path().join(name));
        assert_eq!(built.spec.model.name, name);
        Model {
            name,
            upper,
            reference,
            built,
            _dir: dir,
        }
    }

    fn dir(&self) -> &Path {
        &self.built.dir
    }

    fn weights_file(&self) -> PathBuf {
        root()
            .join("tests/reference")
            .join(self.reference)
            .join("model.safetensors")
    }

    fn defines(&self) -> Vec<OsString> {
        os(&[
            format!("-DMODEL={}", self.name),
            format!("-DMODEL_UC={}", self.upper),
        ])
    }

    /// The reference prompt and transformers' greedy continuation of it.
    fn prompt(&self) -> (Vec<i32>, Vec<i32>) {
        let (_, p) = reference_ids(self.reference, "greedy.safetensors", "prompt");
        let (_, g) = reference_ids(self.reference, "greedy.safetensors", "greedy");
        (p, g)
    }

    /// What the C host prints, computed through the Rust session.
    fn rust_greedy(&self, prompt: &[i32], steps: usize) -> String {
        let mut s = self.built.session(1).unwrap();
        s.load_weights(&Weights::load(&self.weights_file()).unwrap())
            .unwrap();
        let v = self.built.spec.model.vocab_size;
        let mut ids = prompt.to_vec();
        let mut out = String::new();
        let mut row = s.prefill(prompt).unwrap();
        for step in 0..steps {
            let best = (0..v).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            ids.push(best as i32);
            out += &format!(
                "step {}: token {best} logit {:.6} ({:08x})\n",
                ids.len(),
                row[best],
                row[best].to_bits()
            );
            if step + 1 < steps {
                row = s.decode(best as i32).unwrap();
            }
        }
        let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        out + &format!("ids: {}\n", ids.join(" "))
    }
}

fn host_args(weights: &Path, steps: usize, prompt: &[i32]) -> Vec<String> {
    let mut a = vec![weights.display().to_string(), steps.to_string()];
    a.extend(prompt.iter().map(|i| i.to_string()));
    a
}

#[test]
fn c_host_static_and_shared_match_rust() {
    let main_c = root().join("examples/c_host/main.c");
    for m in [Model::gpt2(), Model::llama()] {
        let (prompt, greedy) = m.prompt();
        let steps = greedy.len() - prompt.len();
        let want = m.rust_greedy(&prompt, steps);
        // The greedy ids are transformers' too.
        let want_ids: Vec<String> = greedy.iter().map(|i| i.to_string()).collect();
        assert!(
            want.ends_with(&format!("ids: {}\n", want_ids.join(" "))),
            "{}: {want}",
            m.name
        );

        let bin = m.dir().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let mut base = os(&STRICT);
        base.extend(m.defines());
        base.extend(os(&[
            OsString::from("-I"),
            m.dir().into(),
            main_c.clone().into(),
        ]));

        // Static: the archive, OpenMP and libm.
        let mut a = base.clone();
        a.extend(os(&[
            m.dir().join("libirc_model.a").into(),
            OsString::from("-fopenmp"),
            "-lm".into(),
        ]));
        let host_static = compile(&a, &bin.join("host_static"));
        // Shared: -L/-l with an rpath so it runs without LD_LIBRARY_PATH.
        let mut s = base.clone();
        let rpath = format!("-Wl,-rpath,{}", m.dir().display());
        s.extend(os(&[
            OsString::from("-L"),
            m.dir().into(),
            "-lirc_model".into(),
            rpath.into(),
            "-lm".into(),
        ]));
        let host_shared = compile(&s, &bin.join("host_shared"));

        for host in [&host_static, &host_shared] {
            let (code, out, err) =
                run(Command::new(host).args(host_args(&m.weights_file(), steps, &prompt)));
            assert_eq!(code, 0, "{}: {err}", host.display());
            assert_eq!(
                out,
                want,
                "{} {}: C host vs Rust session",
                m.name,
                host.display()
            );
            println!(
                "{} {}: {}",
                m.name,
                host.file_name().unwrap().to_string_lossy(),
                out.lines().last().unwrap()
            );
        }

        // Weights of another model: a clear list, exit 1, params untouched.
        let other = if m.name == "tiny_gpt2" {
            "llama-tiny"
        } else {
            "gpt2-tiny"
        };
        let wrong = root()
            .join("tests/reference")
            .join(other)
            .join("model.safetensors");
        let (code, _, err) = run(Command::new(&host_static).args(host_args(&wrong, 1, &prompt)));
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("weights do not fit the model")
                && err.contains("missing `")
                && err.contains("unexpected tensor `"),
            "{err}"
        );
        assert!(err.starts_with(&wrong.display().to_string()), "{err}");
    }
}

#[test]
fn two_models_link_into_one_c_program() {
    let (g, l) = (Model::gpt2(), Model::llama());
    let (prompt, _) = g.prompt();
    let steps = 8;
    let header = |m: &Model| format!("\"{}\"", m.dir().join("irc_model.h").display());
    let mut args = os(&STRICT);
    args.extend(os(&[
        format!("-DHEADER_A={}", header(&g)),
        format!("-DMODEL_A={}", g.name),
        format!("-DMODEL_A_UC={}", g.upper),
        format!("-DHEADER_B={}", header(&l)),
        format!("-DMODEL_B={}", l.name),
        format!("-DMODEL_B_UC={}", l.upper),
        format!("-I{}", g.dir().display()),
    ]));
    args.extend(os(&[
        root().join("examples/c_host/two_models.c").into_os_string(),
        g.dir().join("libirc_model.a").into(),
        l.dir().join("libirc_model.a").into(),
        OsString::from("-fopenmp"),
        "-lm".into(),
    ]));
    let tmp = tempfile::tempdir().unwrap();
    let bin = compile(&args, &tmp.path().join("two_models"));
    let mut cmd = Command::new(&bin);
    cmd.arg(g.weights_file())
        .arg(l.weights_file())
        .arg(steps.to_string());
    cmd.args(prompt.iter().map(|i| i.to_string()));
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let want = format!(
        "== {}\n{}== {}\n{}",
        g.name,
        g.rust_greedy(&prompt, steps),
        l.name,
        l.rust_greedy(&prompt, steps)
    );
    assert_eq!(out, want, "two models in one program vs each alone (Rust)");
}

#[test]
fn python_host_matches_rust() {
    if !Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("SKIPPED: python_host_matches_rust (no python3 on PATH)");
        return;
    }
    for m in [Model::gpt2(), Model::llama()] {
        let (prompt, _) = m.prompt();
        let mut s = m.built.session(1).unwrap();
        s.load_weights(&Weights::load(&m.weights_file()).unwrap())
            .unwrap();
        let v = m.built.spec.model.vocab_size;
        let t = prompt.len();
        let logits = s.forward(&prompt, 1, t).unwrap();
        let row = &logits[(t - 1) * v..t * v];
        let best = (0..v).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        let want = format!("top {best} {:.6} {:08x}\n", row[best], row[best].to_bits());

        let mut cmd = Command::new("python3");
        cmd.arg(root().join("examples/python_host.py"))
            .arg(m.dir())
            .arg(m.weights_file());
        cmd.args(prompt.iter().map(|i| i.to_string()));
        let (code, out, err) = run(&mut cmd);
        assert_eq!(code, 0, "{}: {err}", m.name);
        assert_eq!(out, want, "{}: python host vs Rust", m.name);
        println!("{}: python {}", m.name, out.trim());
    }
}

/// tests/c/safetensors_test.c under the sanitizers when the compiler has
/// them; its listing of real files equals the Rust safetensors crate's.
#[test]
fn safetensors_reader_in_c() {
    let tmp = tempfile::tempdir().unwrap();
    let src = root().join("tests/c/safetensors_test.c");
    let mut args = os(&STRICT);
    args.extend(os(&[format!("-I{}", root().join("runtime-c").display())]));
    args.push(src.clone().into());
    let mut san = args.clone();
    san.extend(os(&[
        "-g",
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
    ]));
    let probe = Command::new(cc())
        .args(&san)
        .arg("-o")
        .arg(tmp.path().join("st_san"))
        .output()
        .is_ok_and(|o| o.status.success());
    let bin = if probe {
        tmp.path().join("st_san")
    } else {
        println!(
            "note: {} has no address/undefined sanitizers; testing without them",
            cc()
        );
        compile(&args, &tmp.path().join("st"))
    };

    // Real files: transformers' (Python) and irc's own (with metadata).
    let mut files = vec![
        root().join("tests/reference/gpt2-tiny/model.safetensors"),
        root().join("tests/reference/llama-tiny/forward.safetensors"),
    ];
    let mut w = Weights::default();
    w.insert(
        "a.weight",
        &[3, 5],
        (0..15).map(|i| i as f32 * 0.5).collect(),
    );
    w.insert("b", &[], vec![2.0]);
    let own = tmp.path().join("own.safetensors");
    let meta = [("source".to_string(), "irc \"test\"".to_string())]
        .into_iter()
        .collect();
    w.save(&own, Some(meta)).unwrap();
    files.push(own);

    let (code, out, err) = run(Command::new(&bin)
        .args(&files)
        .current_dir(tmp.path())
        .env("ASAN_OPTIONS", "detect_leaks=1"));
    assert_eq!(code, 0, "safetensors_test failed:\n{out}\n{err}");
    assert!(out.trim_end().ends_with(", 0 failures"), "{out}");
    println!("{}", out.lines().last().unwrap());

    let mut want = String::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        // Compared as sorted lists: the C reader goes in header order.
        for (name, v) in st.tensors() {
            let shape: Vec<String> = v.shape().iter().map(|d| d.to_string()).collect();
            let mut h: u64 = 1469598103934665603;
            for b in v.data() {
                h = (h ^ *b as u64).wrapping_mul(1099511628211);
            }
            want += &format!(
                "tensor {name} {:?} [{}] {} {h:016x}\n",
                v.dtype(),
                shape.join(","),
                v.data().len()
            );
        }
    }
    let mut got: Vec<&str> = out.lines().filter(|l| l.starts_with("tensor ")).collect();
    let mut want: Vec<&str> = want.lines().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "C reader vs the Rust safetensors crate");
}

/// `cargo test` builds the examples; run the Rust host and check it prints
/// what the session computes (greedy through the cache == full recompute).
#[test]
fn rust_host_example_runs() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/rust_host");
    if !bin.exists() {
        eprintln!(
            "skipped: {} is not built (cargo test builds it)",
            bin.display()
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec_path = root().join("models/tiny-gpt2.toml");
    let (code, out, err) = run(Command::new(&bin)
        .arg(&spec_path)
        .arg("6")
        .current_dir(work.path())
        .env("IRC_CACHE", work.path().join("cache")));
    assert_eq!(code, 0, "{err}");

    // The same through a session of our own, by full recomputation.
    let m = Model::gpt2();
    let mut s = m.built.session(1).unwrap();
    s.load_weights(&m.built.init_weights(1)).unwrap();
    let v = m.built.spec.model.vocab_size;
    let mut ids = vec![1, 2, 3];
    for _ in 0..6 {
        let logits = s.forward(&ids, 1, ids.len()).unwrap();
        let last = &logits[(ids.len() - 1) * v..];
        ids.push((0..v).fold(0, |b, i| if last[i] > last[b] { i } else { b }) as i32);
    }
    assert!(out.contains(&format!("ids: {ids:?}")), "{out}");
}

/// A context that only generates holds no training state: the gradients and
/// AdamW moments (3 x the parameters) are allocated by the first call that
/// needs them. Measured with glibc's malloc statistics, not timings.
#[test]
fn a_generating_context_holds_no_training_state() {
    let m = Model::gpt2();
    let host = r#"
#include <malloc.h>
#include <stdio.h>
#include "irc_model.h"
#define CAT_(a, b, c) a##b##c
#define CAT(a, b, c) CAT_(a, b, c)
#define F(fn) CAT(irc_, MODEL, _##fn)
static size_t in_use(void) { struct mallinfo2 mi = mallinfo2(); return mi.uordblks + mi.hblkhd; }
int main(void) {
    size_t base = in_use();
    CAT(irc_, MODEL, ) *m = F(create)(1);
    int32_t ids[4] = {1, 2, 3, 4};
    static float logits[CAT(IRC_, MODEL_UC, _VOCAB)];
    if (!m || F(prefill)(m, ids, 4, logits) || F(decode)(m, 5, logits)) return 1;
    size_t generate = in_use() - base;
    if (!F(grads)(m)) return 1;
    size_t train = in_use() - base;
    printf("%zu %zu %zu\n", (size_t)CAT(IRC_, MODEL_UC, _NUM_PARAMS) * sizeof(float), generate, train);
    F(destroy)(m);
    return 0;
}
"#;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("lean.c");
    std::fs::write(&src, host).unwrap();
    let mut args = os(&STRICT);
    args.extend(m.defines());
    args.extend(os(&[format!("-I{}", m.dir().display())]));
    args.extend([
        src.into_os_string(),
        m.dir().join("libirc_model.a").into(),
        "-fopenmp".into(),
        "-lm".into(),
    ]);
    let bin = compile(&args, &tmp.path().join("lean"));
    let (code, out, err) = run(&mut Command::new(&bin));
    assert_eq!(code, 0, "{out}{err}");
    let v: Vec<usize> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let (params, generate, train) = (v[0], v[1], v[2]);
    assert!(
        train - generate >= 3 * params,
        "the training state ({} bytes) should come with the first training call: {out}",
        3 * params
    );
}

/// benches/c/gemm_bench.c (`bash benches/gemm.sh`, outside `irc bench`)
/// compiles without a warning on every SIMD path this host runs, so a
/// change to the runtime headers it calls cannot leave it broken.
#[test]
fn bench_programs_compile() {
    let root = root();
    for (name, flags) in host_c_targets() {
        let file = "benches/c/gemm_bench.c";
        let mut args = os(&STRICT);
        args.extend(os(flags));
        args.extend(os(&[
            "-fsyntax-only",
            "-fopenmp",
            "-DIRC_L1D_BYTES=32768",
            "-DIRC_L2_BYTES=524288",
            "-DIRC_L3_BYTES_PER_CORE=4194304",
            "-D",
        ]));
        args.push(format!("IRC_TARGET_{name}").into());
        args.push("-I".into());
        args.push(root.join("runtime-c").into());
        args.push(root.join(file).into());
        let o = Command::new(cc()).args(&args).output().unwrap();
        assert!(
            o.status.success(),
            "{file} ({name}) does not compile:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
