//! Data-parallel training over MPI with 2 ranks on this machine (loopback):
//! `mpirun -np 2 irc train` ends bit-identical to one process when each
//! rank runs one micro-batch of every step of the tiny model (the gradient
//! sum is then the same two terms in the same order); with two micro-batches
//! a rank the losses agree within the documented tolerance; a run resumes
//! under another rank count; the all-reduce overlapped with the backward
//! gives the bits of the one after it; rank 0 alone writes; a spec whose step cannot
//! be shared out is refused once, with exit 1; `irc run` under mpirun gives
//! the weights of a plain `irc run` (within tolerance) and its eval and
//! report.
//!
//! Skipped, with the reason printed, when `mpirun` or `mpicc` is missing
//! (CI installs openmpi-bin and libopenmpi-dev). CI runs as root, which
//! OpenMPI refuses unless told: the test sets OMPI_ALLOW_RUN_AS_ROOT.

mod common;

use common::tiny_train::{self, text};
use std::path::Path;
use std::process::{Command, Output};

/// Why the test cannot run here, if it cannot.
fn missing_mpi() -> Option<String> {
    for tool in ["mpirun", "mpicc"] {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Some(format!(
                "skipped: `{tool}` not found (install openmpi-bin and libopenmpi-dev to run the MPI tests)"
            ));
        }
    }
    None
}

/// `mpirun -np N irc ARGS` in `dir`, with the tiny runs' cache.
fn mpirun(n: usize, dir: &Path, args: &[&str]) -> Output {
    mpirun_env(n, dir, args, &[])
}

/// [`mpirun`] with `env` set in every rank.
fn mpirun_env(n: usize, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("mpirun");
    c.args([
        "--oversubscribe",
        "--bind-to",
        "none",
        "-np",
        &n.to_string(),
    ]);
    for (k, v) in env {
        c.env(k, v).args(["-x", k]);
    }
    c.arg(env!("CARGO_BIN_EXE_irc"))
        .args(args)
        .current_dir(dir)
        .env("IRC_CACHE", tiny_train::cache())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap()
}

fn mpirun_ok(n: usize, dir: &Path, args: &[&str]) -> String {
    let o = mpirun(n, dir, args);
    let t = text(&o);
    assert!(
        o.status.success(),
        "mpirun -np {n} irc {args:?} failed:\n{t}"
    );
    t
}

/// The metrics lines without what differs between runs: the timing and
/// the MPI fields (`ranks`, `allreduce_s`, `allreduce_wait_s`, `wait_s`).
fn losses(run: &Path) -> Vec<String> {
    tiny_train::losses(run)
        .iter()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            for k in ["ranks", "allreduce_s", "allreduce_wait_s", "wait_s"] {
                o.remove(k);
            }
            v.to_string()
        })
        .collect()
}

fn train_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["train_loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

/// Largest |a - b| over the parameters of two checkpoints.
fn max_weight_difference(a: &Path, b: &Path) -> f32 {
    let (a, b) = (
        irc::runtime::Weights::load(a).unwrap(),
        irc::runtime::Weights::load(b).unwrap(),
    );
    let mut worst = 0f32;
    for (name, t) in &a.tensors {
        let u = &b.tensors[name];
        for (x, y) in t.data.iter().zip(&u.data) {
            worst = worst.max((x - y).abs());
        }
    }
    worst
}

#[test]
fn two_ranks_train_as_one_process() {
    if let Some(why) = missing_mpi() {
        println!("{why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // grad_accum = 2: one micro-batch a rank a step.
    tiny_train::write_spec(dir, 10, 5);
    tiny_train::train_ok(dir, "plain", &[]);
    let out = mpirun_ok(2, dir, &["train", "tiny.toml", "-o", "two", "--quiet"]);
    assert_eq!(
        out.matches("trained at step 10/10").count(),
        1,
        "rank 0 alone reports:\n{out}"
    );
    // Bit-identical: the metrics (but timing) and every checkpoint byte.
    assert_eq!(losses(&dir.join("plain")), losses(&dir.join("two")));
    for f in ["latest.safetensors", "checkpoints/step-000005.safetensors"] {
        assert_eq!(
            std::fs::read(dir.join("plain").join(f)).unwrap(),
            std::fs::read(dir.join("two").join(f)).unwrap(),
            "{f} differs"
        );
    }
    // Rank 0 alone wrote: the same files as one process, no scratch build.
    assert_eq!(
        tiny_train::tree(&dir.join("plain")),
        tiny_train::tree(&dir.join("two"))
    );
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("two/metrics.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["ranks"], 2);
    assert!(line["allreduce_s"].as_f64().unwrap() > 0.0, "{line}");

    // Stopped under 2 ranks, resumed by one process (and the other way):
    // the data position is the step's, not a rank's.
    mpirun_ok(
        2,
        dir,
        &[
            "train",
            "tiny.toml",
            "-o",
            "r21",
            "--quiet",
            "--stop-after",
            "4",
        ],
    );
    tiny_train::train_ok(dir, "r21", &["--resume", "r21"]);
    tiny_train::train_ok(dir, "r12", &["--stop-after", "3"]);
    mpirun_ok(
        2,
        dir,
        &[
            "train",
            "tiny.toml",
            "-o",
            "r12",
            "--quiet",
            "--resume",
            "r12",
        ],
    );
    for run in ["r21", "r12"] {
        assert_eq!(losses(&dir.join("plain")), losses(&dir.join(run)), "{run}");
        assert_eq!(
            std::fs::read(dir.join("plain/latest.safetensors")).unwrap(),
            std::fs::read(dir.join(run).join("latest.safetensors")).unwrap(),
            "{run}"
        );
    }
}

#[test]
fn two_micro_batches_a_rank_agree_within_tolerance() {
    if let Some(why) = missing_mpi() {
        println!("{why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spec = tiny_train::write_spec(dir, 10, 10);
    // 4 micro-batches of 4 x 64 tokens a step: each rank adds two before the
    // all-reduce adds the ranks, (g0 + g1) + (g2 + g3) against one
    // process's ((g0 + g1) + g2) + g3, and a micro-batch's 256 tokens are
    // two blocks of the GEMM's depth, so the order differs within it too.
    let src = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("grad_accum=2", "grad_accum=4")
        .replace("context=32", "context=64")
        .replace("seq_len=32", "seq_len=64");
    std::fs::write(&spec, src).unwrap();
    tiny_train::train_ok(dir, "plain", &[]);
    mpirun_ok(2, dir, &["train", "tiny.toml", "-o", "two", "--quiet"]);
    let (a, b) = (
        train_losses(&dir.join("plain")),
        train_losses(&dir.join("two")),
    );
    assert_eq!(a.len(), 10);
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() <= 1e-5 * x.abs(),
            "losses {a:?}\nagainst {b:?}"
        );
    }
    let w = max_weight_difference(
        &dir.join("plain/latest.safetensors"),
        &dir.join("two/latest.safetensors"),
    );
    assert!(w <= 1e-4, "weights differ by {w}");
}

/// The first metrics line of a run.
fn first_metrics(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// The all-reduce started during the backward (small buckets, so several
/// go out while it runs, two micro-batches a rank, so only the last one's
/// may start them) sums the same values as the one after it: the same
/// losses and checkpoint bytes.
#[test]
fn overlapped_all_reduce_gives_the_same_bits() {
    if let Some(why) = missing_mpi() {
        println!("{why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spec = tiny_train::write_spec(dir, 6, 3);
    let src = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("grad_accum=2", "grad_accum=4");
    std::fs::write(&spec, &src).unwrap();
    std::fs::write(
        dir.join("blocking.toml"),
        format!("{src}overlap_allreduce=false\n"),
    )
    .unwrap();
    // 0.05 MiB: 13107 floats a bucket, about 9 over the tiny model.
    let env = [("IRC_MPI_BUCKET_MB", "0.05")];
    let run = |spec: &str, out: &str| {
        let o = mpirun_env(2, dir, &["train", spec, "-o", out, "--quiet"], &env);
        assert!(o.status.success(), "{}", text(&o));
    };
    run("tiny.toml", "overlap");
    run("blocking.toml", "blocking");
    assert_eq!(losses(&dir.join("overlap")), losses(&dir.join("blocking")));
    for f in ["latest.safetensors", "checkpoints/step-000003.safetensors"] {
        assert_eq!(
            std::fs::read(dir.join("overlap").join(f)).unwrap(),
            std::fs::read(dir.join("blocking").join(f)).unwrap(),
            "{f} differs"
        );
    }
    // Both time the wait after the backward; the overlapped step spent
    // time in the hook during it too, and has no barrier.
    let (o, b) = (
        first_metrics(&dir.join("overlap")),
        first_metrics(&dir.join("blocking")),
    );
    let secs = |m: &serde_json::Value, k: &str| m[k].as_f64().unwrap();
    assert!(o.get("wait_s").is_none(), "{o}");
    assert!(
        secs(&o, "allreduce_s") > secs(&o, "allreduce_wait_s"),
        "{o}"
    );
    assert!(secs(&o, "allreduce_wait_s") > 0.0, "{o}");
    let blocking = secs(&b, "wait_s") + secs(&b, "allreduce_s");
    assert!(secs(&b, "allreduce_wait_s") >= blocking * 0.999, "{b}");
}

#[test]
fn a_step_that_cannot_be_shared_out_is_refused_once() {
    if let Some(why) = missing_mpi() {
        println!("{why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spec = tiny_train::write_spec(dir, 4, 4);
    let src = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("grad_accum=2", "grad_accum=3");
    std::fs::write(&spec, src).unwrap();
    let o = mpirun(2, dir, &["train", "tiny.toml", "-o", "bad", "--quiet"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    let msg = "[train].grad_accum = 3 cannot be shared out over 2 ranks";
    assert_eq!(t.matches(msg).count(), 1, "printed once:\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(!dir.join("bad").exists(), "nothing was written");
}

/// `irc run` of a tiny synthetic-scene model under mpirun: every stage, the
/// eval and the report from rank 0, weights within tolerance of a plain
/// `irc run` (its micro-batches of 512 tokens are four GEMM depth blocks,
/// so the sum's order differs inside a micro-batch), and a rerun up to date.
#[test]
fn irc_run_under_mpirun() {
    if let Some(why) = missing_mpi() {
        println!("{why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("run.toml"),
        "[model]\nname='tiny_run'\nfamily='gpt2'\nvocab_size=512\ncontext=128\nlayers=2\nd_model=64\nheads=4\n\
         [data]\nsynthetic=200\npacking='rows'\nmask_prompt=true\nseed=5\n\
         [tokenizer]\nvocab_size=512\n\
         [train]\nbatch=4\nseq_len=128\ngrad_accum=2\nsteps=8\nlr=5e-3\nwarmup=2\neval_samples=0\ncheckpoint_every=4\nthreads=1\n\
         [generate]\nmax_tokens=32\n[eval]\nsamples=2\nquick_samples=2\n",
    )
    .unwrap();
    let plain = Command::new(env!("CARGO_BIN_EXE_irc"))
        .args(["run", "run.toml", "-o", "plain"])
        .current_dir(dir)
        .env("IRC_CACHE", tiny_train::cache())
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", text(&plain));
    let out = mpirun_ok(2, dir, &["run", "run.toml", "-o", "two"]);
    assert_eq!(out.matches("report: two/report.html").count(), 1, "{out}");
    for f in ["report.html", "eval.json", "samples.json", "metrics.jsonl"] {
        assert!(dir.join("two").join(f).is_file(), "{f} missing:\n{out}");
    }
    let (a, b) = (
        train_losses(&dir.join("plain")),
        train_losses(&dir.join("two")),
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() <= 1e-5 * x.abs(),
            "losses {a:?}\nagainst {b:?}"
        );
    }
    let w = max_weight_difference(
        &dir.join("plain/latest.safetensors"),
        &dir.join("two/latest.safetensors"),
    );
    assert!(w <= 1e-4, "weights differ by {w}");
    let again = mpirun_ok(2, dir, &["run", "run.toml", "-o", "two"]);
    assert!(again.contains("train     up to date"), "{again}");
}
