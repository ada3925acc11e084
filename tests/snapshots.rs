//! Snapshot tests (naga / cranelift style): every spec in tests/in is compiled
//! without a C compiler and its IR text and emitted C are compared against the
//! committed files in tests/out:
//!
//! - `tests/out/ir/<name>.txt`: the forward program's `graph.to_text()` after
//!   all passes, and `<name>.train.txt` the same for the training program
//! - `tests/out/c/<name>.c` and `tests/out/c/<name>.h`: model.c and its header
//!
//! A change in the compiler that changes any of them fails here with the first
//! differing line. Review the diff, then accept it with
//!
//! ```text
//! IRC_BLESS=1 cargo test --test snapshots
//! ```
//!
//! Each spec sets `target` explicitly: "native" resolves per machine.

use irc::codegen::{self, RUNTIME_C};
use irc::model::Programs;
use irc::spec::{Spec, Target};
use irc::toolchain::{target_flags, MODEL_C};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var("IRC_BLESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The specs under tests/in, sorted, as (stem, path relative to the root).
fn inputs() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(root().join("tests/in"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            (stem.clone(), format!("tests/in/{stem}.toml"))
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no specs in tests/in");
    v
}

struct Snapshot {
    spec: Spec,
    ir: String,
    train_ir: String,
    c: String,
    h: String,
}

fn generate(rel: &str) -> Snapshot {
    // Parse with the relative path so nothing machine-specific reaches the output.
    let src = std::fs::read_to_string(root().join(rel)).unwrap();
    let spec = Spec::parse(Path::new(rel), &src).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(
        spec.build.target,
        Target::Native,
        "{rel}: set [build].target explicitly"
    );
    let programs = Programs::compile(&spec).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let sources = programs
        .emit(&spec)
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    Snapshot {
        ir: programs.forward.graph.to_text(),
        train_ir: programs.train.graph.to_text(),
        c: sources.model_c,
        h: sources.header,
        spec,
    }
}

/// Compare `got` with the committed file (or rewrite it when blessing);
/// returns a description of the mismatch, if any.
fn compare(rel: &str, got: &str) -> Option<String> {
    let path = root().join(rel);
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if std::fs::read_to_string(&path).ok().as_deref() != Some(got) {
            std::fs::write(&path, got).unwrap();
            eprintln!("blessed {rel}");
        }
        return None;
    }
    let Ok(want) = std::fs::read_to_string(&path) else {
        return Some(format!("{rel}: missing snapshot"));
    };
    if want == got {
        return None;
    }
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = w
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    Some(format!(
        "{rel}: differs from line {} ({} lines committed, {} now)\n  committed: {}\n        now: {}",
        i + 1,
        w.len(),
        g.len(),
        w.get(i).unwrap_or(&"<end of file>"),
        g.get(i).unwrap_or(&"<end of file>"),
    ))
}

#[test]
fn ir_and_c_match_snapshots() {
    let mut failures = Vec::new();
    for (name, rel) in inputs() {
        let s = generate(&rel);
        for (out, text) in [
            (format!("tests/out/ir/{name}.txt"), &s.ir),
            (format!("tests/out/ir/{name}.train.txt"), &s.train_ir),
            (format!("tests/out/c/{name}.c"), &s.c),
            (format!("tests/out/c/{name}.h"), &s.h),
        ] {
            failures.extend(compare(&out, text));
        }
    }
    assert!(
        failures.is_empty(),
        "{} snapshot(s) changed:\n{}\n\nIf the change is intended, review `git diff tests/out` after running\n    \
         IRC_BLESS=1 cargo test --test snapshots",
        failures.len(),
        failures.join("\n")
    );
}

/// Generating twice gives the same text: no hash-map order or clock leaks in.
#[test]
fn emission_is_deterministic() {
    for (_, rel) in inputs() {
        let (a, b) = (generate(&rel), generate(&rel));
        assert!(
            a.ir == b.ir && a.train_ir == b.train_ir && a.c == b.c && a.h == b.h,
            "{rel}: two runs differ"
        );
    }
}

fn runs(cc: &str) -> bool {
    Command::new(cc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The system compiler (`$CC`, else `cc`), plus gcc and clang where present.
fn compilers() -> Vec<String> {
    let mut v = vec![std::env::var("CC").unwrap_or_else(|_| "cc".into())];
    for extra in ["gcc", "clang"] {
        if !v.iter().any(|c| c == extra) {
            v.push(extra.into());
        }
    }
    v.retain(|c| runs(c));
    v
}

/// Every snapshot's C passes `-fsyntax-only -Wall -Wextra -Werror` with the
/// runtime headers beside it; the header also compiles on its own (it is
/// self-contained for C hosts).
#[test]
fn snapshot_c_compiles_cleanly() {
    let ccs = compilers();
    assert!(!ccs.is_empty(), "no C compiler found");
    if !ccs.iter().any(|c| c == "clang") {
        eprintln!("note: clang not installed; checked with {ccs:?} only");
    }
    for cc in &ccs {
        check_with(cc, |t| t != Target::Neon);
    }
    // The NEON snapshot needs an AArch64 compiler (CI installs one).
    let cross = "aarch64-linux-gnu-gcc";
    if runs(cross) {
        check_with(cross, |t| t == Target::Neon);
    } else {
        eprintln!("note: {cross} not installed; the NEON snapshot's C was not compiled");
    }
}

fn check_with(cc: &str, wanted: impl Fn(Target) -> bool) {
    for (name, rel) in inputs() {
        let s = generate(&rel);
        if !wanted(s.spec.build.target) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (file, text) in RUNTIME_C {
            std::fs::write(d.join(file), text).unwrap();
        }
        std::fs::write(d.join(MODEL_C), &s.c).unwrap();
        std::fs::write(d.join(codegen::HEADER_FILE), &s.h).unwrap();
        for (file, what) in [(MODEL_C, "model.c"), (codegen::HEADER_FILE, "header")] {
            let out = Command::new(cc)
                .args([
                    "-std=c11",
                    "-fsyntax-only",
                    "-Wall",
                    "-Wextra",
                    "-Werror",
                    "-fopenmp",
                ])
                .args(target_flags(s.spec.build.target))
                .args(["-xc", file])
                .current_dir(d)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: {what} does not compile with {cc}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
