//! The NEON path of whole models, run: each spec's C is built for NEON with
//! an AArch64 cross compiler (`aarch64-linux-gnu-gcc`) and run under
//! `qemu-aarch64` through tests/c/dump_host.c (the loss, every logit and
//! every gradient of one training step), against the same host on the
//! scalar build run natively. The shapes cross the attention kernels' tiles
//! (positions past a key block, odd head sizes, grouped-query heads), so the
//! flash attention forward and backward run on NEON's 4 lanes. Skipped, with
//! a message, where the cross compiler or qemu is missing.

mod common;

use common::{rel_err, root, runs};
use irc::codegen::{self, RUNTIME_C};
use irc::model::Programs;
use irc::spec::{Spec, Target};
use irc::toolchain::MODEL_C;
use std::path::Path;
use std::process::Command;

const SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// The numbers dump_host prints for `src` built for `target`, run with
/// `cc` (through `runner`, if any).
fn dump(src: &str, target: Target, cc: &str, runner: &[&str], dir: &Path) -> Vec<f32> {
    let mut spec = Spec::parse(Path::new("neon.toml"), src).unwrap();
    spec.build.target = target;
    let sources = Programs::compile(&spec)
        .and_then(|p| p.emit(&spec))
        .unwrap_or_else(|e| panic!("{}: {e}", target.name()));
    let d = dir.join(target.name());
    std::fs::create_dir_all(&d).unwrap();
    for (file, text) in RUNTIME_C {
        std::fs::write(d.join(file), text).unwrap();
    }
    std::fs::write(d.join(MODEL_C), &sources.model_c).unwrap();
    std::fs::write(d.join(codegen::HEADER_FILE), &sources.header).unwrap();
    let exe = d.join("dump_host");
    let out = Command::new(cc)
        .args(["-std=c11", "-O2", "-fopenmp", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-DP={}", sources.prefix))
        .arg(format!("-DU={}", sources.prefix.to_uppercase()))
        .arg("-I")
        .arg(&d)
        .arg(d.join(MODEL_C))
        .arg(root().join("tests/c/dump_host.c"))
        .arg("-lm")
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cc} ({}): {}",
        target.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = match runner.split_first() {
        Some((prog, args)) => Command::new(prog).args(args).arg(&exe).output(),
        None => Command::new(&exe).output(),
    }
    .unwrap();
    assert!(
        run.status.success(),
        "dump_host ({}): {}",
        target.name(),
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

fn neon_matches_scalar(src: &str) {
    let cross = "aarch64-linux-gnu-gcc";
    if !(runs(cross) && runs("qemu-aarch64") && Path::new(SYSROOT).is_dir()) {
        println!("skipped: {cross}, qemu-aarch64 or {SYSROOT} missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let want = dump(src, Target::Scalar, &cc, &[], dir.path());
    let got = dump(
        src,
        Target::Neon,
        cross,
        &["qemu-aarch64", "-L", SYSROOT],
        dir.path(),
    );
    assert_eq!(got.len(), want.len());
    let spec = Spec::parse(Path::new("neon.toml"), src).unwrap();
    let (b, t, v) = (spec.build.batch, spec.build.seq_len, spec.model.vocab_size);
    let n_logits = b * t * v;
    let loss = rel_err(&got[..1], &want[..1]);
    let logits = rel_err(&got[1..1 + n_logits], &want[1..1 + n_logits]);
    let grads = rel_err(&got[1 + n_logits..], &want[1 + n_logits..]);
    println!(
        "{}: NEON vs scalar: loss {loss:e}, logits {logits:e}, gradients {grads:e}",
        spec.model.name
    );
    assert!(
        loss <= 1e-5 && logits <= 1e-5,
        "{}: loss or logits",
        spec.model.name
    );
    assert!(grads <= 1e-4, "{}: gradients {grads:e}", spec.model.name);
}

/// GPT-2, 3 heads of 8, 130 positions: two key blocks and a partial query tile.
#[test]
fn gpt2_on_neon_matches_scalar() {
    neon_matches_scalar(
        "[model]\nname='neon_gpt2'\nfamily='gpt2'\nvocab_size=23\ncontext=130\nlayers=1\nd_model=24\nheads=3\nffn_hidden=20\n[build]\nbatch=2\nseq_len=130\n",
    );
}

/// Llama with grouped-query attention (4 heads of 6 over 2 kv heads), 33
/// positions.
#[test]
fn llama_gqa_on_neon_matches_scalar() {
    neon_matches_scalar(
        "[model]\nname='neon_llama'\nfamily='llama'\nvocab_size=19\ncontext=33\nlayers=2\nd_model=24\nheads=4\nkv_heads=2\nffn_hidden=30\n[build]\nbatch=2\nseq_len=33\n",
    );
}
