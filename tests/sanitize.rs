//! `irc build --sanitize` under AddressSanitizer and
//! UndefinedBehaviorSanitizer: the tiny models' forward, loss, training step
//! (backward and AdamW), prefill and decode run clean through a C host on
//! every SIMD path this machine runs, and a write one past an activation
//! buffer is caught by its guard gap. Skipped (saying why) only when the C
//! compiler has no sanitizer runtime.

mod common;

use common::{root, spec};
use irc::model::{self, Built};
use irc::spec::Target;
use std::path::Path;
use std::process::{Command, Output};

const SANITIZE: [&str; 2] = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"];

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Whether the C compiler links a sanitized program here.
fn sanitizers_available(dir: &Path) -> bool {
    let src = dir.join("probe.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    Command::new(cc())
        .args(SANITIZE)
        .arg(&src)
        .arg("-o")
        .arg(dir.join("probe"))
        .status()
        .is_ok_and(|s| s.success())
}

/// A sanitized build of `file` for `target` (at -O0: quick to compile, and
/// nothing optimized away before the sanitizers see it).
fn sanitized(file: &str, target: Target, dir: &Path) -> Built {
    let mut s = spec(file);
    s.build.target = target;
    s.build.sanitize = true;
    s.build.opt_level = 0;
    model::build(&s, dir).unwrap_or_else(|e| panic!("{file} {}: {e}", target.name()))
}

fn run_sanitized(bin: &Path) -> Output {
    Command::new(bin)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .output()
        .unwrap()
}

fn compile(args: &[&std::ffi::OsStr], what: &str) {
    let o = Command::new(cc())
        .args(SANITIZE)
        .args(["-g", "-fopenmp"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn every_program_runs_clean_under_asan_and_ubsan_on_every_path() {
    let tmp = tempfile::tempdir().unwrap();
    if !sanitizers_available(tmp.path()) {
        eprintln!(
            "skipped: {} cannot link -fsanitize=address,undefined here",
            cc()
        );
        return;
    }
    let host = root().join("tests/c/sanitize_host.c");
    for file in ["models/tiny-gpt2.toml", "models/tiny-llama.toml"] {
        for target in Target::host_paths() {
            let dir = tmp
                .path()
                .join(format!("{}-{}", target.name(), file.replace('/', "_")));
            let b = sanitized(file, target, &dir);
            let prefix = &b.sources.prefix;
            let bin = dir.join("host");
            compile(
                &[
                    host.as_os_str(),
                    "-I".as_ref(),
                    dir.as_os_str(),
                    format!("-DP={prefix}").as_ref(),
                    format!("-DU={}", prefix.to_uppercase()).as_ref(),
                    dir.join("libirc_model.a").as_os_str(),
                    "-lm".as_ref(),
                    "-o".as_ref(),
                    bin.as_os_str(),
                ],
                file,
            );
            let o = run_sanitized(&bin);
            assert!(
                o.status.success() && text(&o).starts_with("ok loss"),
                "{file} on {}: {}",
                target.name(),
                text(&o)
            );
        }
    }
}

#[test]
fn a_write_one_past_an_activation_buffer_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    if !sanitizers_available(tmp.path()) {
        eprintln!(
            "skipped: {} cannot link -fsanitize=address,undefined here",
            cc()
        );
        return;
    }
    let dir = tmp.path().join("b");
    let b = sanitized("models/tiny-gpt2.toml", Target::Scalar, &dir);
    let (p, u) = (&b.sources.prefix, b.sources.prefix.to_uppercase());
    let bin = dir.join("overflow");
    compile(
        &[
            root().join("tests/c/sanitize_overflow.c").as_os_str(),
            "-I".as_ref(),
            dir.as_os_str(),
            format!("-DSAN_CREATE={p}_create").as_ref(),
            format!("-DSAN_FORWARD={p}_forward").as_ref(),
            format!("-DSAN_VOCAB={u}_VOCAB").as_ref(),
            "-lm".as_ref(),
            "-o".as_ref(),
            bin.as_os_str(),
        ],
        "overflow host",
    );
    let o = run_sanitized(&bin);
    let t = text(&o);
    assert!(!o.status.success(), "not caught: {t}");
    assert!(
        t.contains("one past a buffer") && t.contains("use-after-poison"),
        "{t}"
    );
}
