//! Builds and runs tests/c/gemm_bf16_test.c (runtime-c/irc_gemm_bf16.h) for every SIMD path
//! this host runs, with the system compiler and clang where present, blocked for the generic
//! caches and for tiny ones (several KC, MC and NC blocks), and for NEON with the aarch64
//! cross compiler under qemu-aarch64 (compile only without qemu). It checks the bf16 rounding,
//! the GEMM (forward and both transposes, accumulate, epilogue) at odd shapes against a
//! double-precision sum of the rounded operands, the thread counts bit for bit, and on a CPU
//! with AVX512-BF16 the vdpbf16ps kernel bit for bit against the emulation.

mod common;

use common::{host_c_targets, root, runs};
use irc::schedule::Caches;
use std::path::Path;
use std::process::Command;

const TINY: Caches = Caches {
    l1d: 4 << 10,
    l2: 16 << 10,
    l3_per_core: 64 << 10,
};

fn compile(cc: &str, target: &str, flags: &[&str], caches: Caches, out: &Path) {
    let o = Command::new(cc)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fopenmp"])
        .args(flags)
        .args(caches.c_flags())
        .arg(format!("-DIRC_TARGET_{target}"))
        .arg("-I")
        .arg(root().join("runtime-c"))
        .arg(root().join("tests/c/gemm_bf16_test.c"))
        .arg("-lm")
        .arg("-o")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(
        o.status.success(),
        "{cc} failed for IRC_TARGET_{target}:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs the test (through `runner`, e.g. qemu) and returns its last line.
fn run(runner: &[&str], exe: &Path, what: &str) -> String {
    let o = match runner.split_first() {
        Some((p, args)) => Command::new(p).args(args).arg(exe).output(),
        None => Command::new(exe).output(),
    }
    .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().last().unwrap_or("").to_string();
    println!("{what}: {last}");
    assert!(
        o.status.success() && last.starts_with("gemm_bf16_test:") && last.contains(" 0 failed"),
        "gemm_bf16_test failed for {what}:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    last
}

#[test]
fn gemm_bf16_all_host_targets() {
    let dir = tempfile::tempdir().unwrap();
    let mut ccs = vec![std::env::var("CC").unwrap_or_else(|_| "cc".to_string())];
    ccs.push("clang".to_string());
    ccs.retain(|c| runs(c));
    assert!(!ccs.is_empty(), "no C compiler found");
    for (n, cc) in ccs.iter().enumerate() {
        for (target, flags) in host_c_targets() {
            for (which, caches) in [("generic", Caches::GENERIC), ("tiny", TINY)] {
                let exe = dir.path().join(format!("t_{target}_{which}_{n}"));
                compile(cc, target, flags, caches, &exe);
                let last = run(&[], &exe, &format!("IRC_TARGET_{target} ({cc}, {which})"));
                // Where the CPU has it, vdpbf16ps was compared with the emulation.
                if target == "AVX512" {
                    let native = irc::spec::Bf16Dot::host_has_native();
                    assert_eq!(last.ends_with("[native: yes]"), native, "{last}");
                }
            }
        }
    }
}

#[test]
fn gemm_bf16_neon() {
    let cross = "aarch64-linux-gnu-gcc";
    if !runs(cross) {
        println!("skipped: {cross} not on PATH (install gcc-aarch64-linux-gnu)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("t_neon");
    compile(cross, "NEON", &[], TINY, &exe);
    let sysroot = Path::new("/usr/aarch64-linux-gnu");
    if !(runs("qemu-aarch64") && sysroot.is_dir()) {
        println!(
            "compile only: qemu-aarch64 or {} missing",
            sysroot.display()
        );
        return;
    }
    run(
        &["qemu-aarch64", "-L", sysroot.to_str().unwrap()],
        &exe,
        "IRC_TARGET_NEON (qemu-aarch64)",
    );
}
