//! Builds and runs tests/c/gemm_test.c (runtime-c/irc_simd.h + irc_gemm.h) for every SIMD
//! target this host can execute, with the system compiler and with clang where present, and
//! the NEON target with an aarch64 cross compiler (`aarch64-linux-gnu-gcc`, Debian package
//! `gcc-aarch64-linux-gnu`): compiled, and run under `qemu-aarch64` (package `qemu-user`)
//! when that is installed too.
//!
//! gemm_test covers the packed path and the small-M path (a few rows of A, decode):
//! M ∈ {1, 2, 3, 5, 8} × odd N, K ∈ {1, 7, 33, 577, 1031} × both trans_b, accumulate, bias,
//! add, pre, GELU, padded leading dimensions, bit-identical results for 1, 2 and 3 threads
//! (the small-M thread split forced whatever the size), and A, B and bias ending at an
//! unmapped page, all against a double-precision reference (relative error ≤ 1e-5).
//! Each is built twice: blocked for the generic caches, and for tiny ones, which split every
//! dimension of the larger shapes into several KC, MC and NC blocks.

mod common;

use common::{host_c_targets, root, runs};
use irc::schedule::Caches;
use std::path::Path;
use std::process::Command;

const COMMON_FLAGS: &[&str] = &["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"];

/// The system compiler (`$CC`, else `cc`), plus clang where present.
fn compilers() -> Vec<String> {
    let mut v = vec![std::env::var("CC").unwrap_or_else(|_| "cc".to_string())];
    if !v.iter().any(|c| c == "clang") {
        v.push("clang".to_string());
    }
    v.retain(|c| runs(c));
    v
}

/// Runs a gemm_test executable (through `runner`, e.g. qemu, if given) and checks its verdict.
fn run_gemm_test(runner: &[&str], exe: &Path, what: &str) {
    let output = match runner.split_first() {
        Some((prog, args)) => Command::new(prog).args(args).arg(exe).output(),
        None => Command::new(exe).output(),
    }
    .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("").to_string();
    println!("{what}: {last}");
    assert!(
        output.status.success() && last.starts_with("gemm_test:") && last.ends_with(" 0 failed"),
        "gemm_test failed for {what}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Caches so small that K = 577 takes several KC blocks, M several MC blocks, N several NC.
const TINY: Caches = Caches {
    l1d: 4 << 10,
    l2: 16 << 10,
    l3_per_core: 64 << 10,
};

fn compile(compiler: &str, target: &str, flags: &[&str], extra: &[&str], out: &Path) {
    compile_for(compiler, target, flags, extra, Caches::GENERIC, out)
}

fn compile_for(
    compiler: &str,
    target: &str,
    flags: &[&str],
    extra: &[&str],
    caches: Caches,
    out: &Path,
) {
    let root = root();
    let output = Command::new(compiler)
        .args(COMMON_FLAGS)
        .args(flags)
        .args(caches.c_flags())
        .arg("-D")
        .arg(format!("IRC_TARGET_{target}"))
        .arg("-I")
        .arg(root.join("runtime-c"))
        .arg(root.join("tests/c/gemm_test.c"))
        .args(extra)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} failed for IRC_TARGET_{target}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn gemm_c_all_host_targets() {
    let dir = tempfile::tempdir().unwrap();
    let ccs = compilers();
    assert!(!ccs.is_empty(), "no C compiler found");
    for (n, compiler) in ccs.iter().enumerate() {
        for (target, flags) in host_c_targets() {
            for (which, caches) in [("generic", Caches::GENERIC), ("tiny", TINY)] {
                let exe = dir
                    .path()
                    .join(format!("gemm_test_{}_{which}_{n}", target.to_lowercase()));
                let mut all_flags = vec!["-fopenmp"];
                all_flags.extend_from_slice(flags);
                compile_for(compiler, target, &all_flags, &["-lm"], caches, &exe);
                let what = format!("IRC_TARGET_{target} ({compiler}, {which} caches)");
                run_gemm_test(&[], &exe, &what);
            }
        }
    }
}

#[test]
fn gemm_c_neon() {
    let cross = "aarch64-linux-gnu-gcc";
    if !runs(cross) {
        println!("skipped: {cross} not on PATH (install gcc-aarch64-linux-gnu)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sysroot = Path::new("/usr/aarch64-linux-gnu");
    if !(runs("qemu-aarch64") && sysroot.is_dir()) {
        println!(
            "compile only: qemu-aarch64 or {} missing (install qemu-user)",
            sysroot.display()
        );
        compile(
            cross,
            "NEON",
            &["-fopenmp", "-c"],
            &[],
            &dir.path().join("gemm_test_neon.o"),
        );
        return;
    }
    let exe = dir.path().join("gemm_test_neon");
    compile(cross, "NEON", &["-fopenmp"], &["-lm"], &exe);
    run_gemm_test(
        &["qemu-aarch64", "-L", sysroot.to_str().unwrap()],
        &exe,
        "IRC_TARGET_NEON (qemu-aarch64)",
    );
}
