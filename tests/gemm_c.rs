//! Builds and runs tests/c/gemm_test.c (runtime-c/irc_simd.h + irc_gemm.h) for every SIMD
//! target this host can execute, and compile-checks the NEON target when an aarch64 cross
//! compiler (`aarch64-linux-gnu-gcc`, Debian package `gcc-aarch64-linux-gnu`) is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

const COMMON_FLAGS: &[&str] = &["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

/// Targets the host can run: (macro suffix, extra compiler flags).
fn host_targets() -> Vec<(&'static str, &'static [&'static str])> {
    let mut targets: Vec<(&'static str, &'static [&'static str])> = vec![("SCALAR", &[])];
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            targets.push(("AVX2", &["-mavx2", "-mfma"]));
        }
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
        {
            targets.push((
                "AVX512",
                &[
                    "-mavx512f",
                    "-mavx512bw",
                    "-mavx512dq",
                    "-mavx512vl",
                    "-mavx2",
                    "-mfma",
                ],
            ));
        }
    }
    #[cfg(target_arch = "aarch64")]
    targets.push(("NEON", &[]));
    targets
}

fn compile(compiler: &str, target: &str, flags: &[&str], extra: &[&str], out: &Path) {
    let root = root();
    let output = Command::new(compiler)
        .args(COMMON_FLAGS)
        .args(flags)
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
    let compiler = cc();
    for (target, flags) in host_targets() {
        let exe = dir
            .path()
            .join(format!("gemm_test_{}", target.to_lowercase()));
        let mut all_flags = vec!["-fopenmp"];
        all_flags.extend_from_slice(flags);
        compile(&compiler, target, &all_flags, &["-lm"], &exe);
        let output = Command::new(&exe).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().last().unwrap_or("").to_string();
        println!("IRC_TARGET_{target}: {last}");
        assert!(
            output.status.success()
                && last.starts_with("gemm_test:")
                && last.ends_with(" 0 failed"),
            "gemm_test failed for IRC_TARGET_{target}:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn gemm_c_neon_compiles() {
    let cross = "aarch64-linux-gnu-gcc";
    if Command::new(cross).arg("--version").output().is_err() {
        println!("skipped: {cross} not on PATH (install gcc-aarch64-linux-gnu)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    compile(
        cross,
        "NEON",
        &["-fopenmp", "-c"],
        &[],
        &dir.path().join("gemm_test_neon.o"),
    );
}
