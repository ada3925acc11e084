//! Builds and runs tests/c/erf_test.c: the vector erf of runtime-c/irc_simd.h
//! (behind the exact GELU) against the C library's erf, on every SIMD path
//! this host runs, with the system compiler and clang where present, and on
//! NEON through `aarch64-linux-gnu-gcc` and `qemu-aarch64` when installed.

mod common;

use common::{host_c_targets, runs};
use std::path::Path;
use std::process::Command;

/// Compile for `target` and run (through `runner`), checking the verdict line.
fn check(cc: &str, target: &str, flags: &[&str], runner: &[&str], dir: &Path) {
    let root = common::root();
    let exe = dir.join(format!("erf_{}_{target}", cc.replace('/', "_")));
    let out = Command::new(cc)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
        .args(flags)
        .arg(format!("-DIRC_TARGET_{target}"))
        .arg("-I")
        .arg(root.join("runtime-c"))
        .arg(root.join("tests/c/erf_test.c"))
        .args(["-lm", "-o"])
        .arg(&exe)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cc} IRC_TARGET_{target}:\n{err}");
    let out = match runner.split_first() {
        Some((p, args)) => Command::new(p).args(args).arg(&exe).output(),
        None => Command::new(&exe).output(),
    }
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "IRC_TARGET_{target} ({cc}): {}",
        stdout.lines().next().unwrap_or("")
    );
    assert!(
        out.status.success() && stdout.contains("erf_test: 0 failed"),
        "{target} ({cc}):\n{stdout}"
    );
}

#[test]
fn erf_matches_libm_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let ccs: Vec<&str> = ["cc", "clang"].into_iter().filter(|c| runs(c)).collect();
    assert!(!ccs.is_empty(), "no C compiler found");
    for cc in ccs {
        for (target, flags) in host_c_targets() {
            check(cc, target, flags, &[], dir.path());
        }
    }
    let cross = "aarch64-linux-gnu-gcc";
    let sysroot = Path::new("/usr/aarch64-linux-gnu");
    if runs(cross) && runs("qemu-aarch64") && sysroot.is_dir() {
        let runner = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"];
        check(cross, "NEON", &[], &runner, dir.path());
    } else {
        println!("NEON skipped: {cross} or qemu-aarch64 missing");
    }
}
