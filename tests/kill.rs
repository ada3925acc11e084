//! SIGKILL `irc train` at twelve moments of one run, resume after each,
//! and check that the run ends exactly as an uninterrupted one: the same
//! metrics (but their timing), byte-identical `latest.safetensors` and
//! `checkpoints/step-*` files (weights, AdamW moments, batcher state), and
//! the same files in the run folder, so no temporary left behind.
//!
//! The moments are chosen by progress, not by the clock (the machine may be
//! slow and loaded): before the first step, right after the checkpoint of a
//! given step appears (then after a short delay), while a checkpoint's
//! temporary file exists (a kill inside its atomic write), and while the
//! `latest.safetensors` copy is being made.

mod common;

use common::tiny_train::{self, train_ok};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const STEPS: usize = 30;

/// When to kill a started `irc train`.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// This long after the run folder appears (the data, the build: before
    /// the first step).
    Startup(u64),
    /// When the checkpoint of `resumed + k` exists, then after `ms`.
    Checkpoint(usize, u64),
    /// While a temporary file of a checkpoint write exists.
    CheckpointWrite,
    /// While `.latest.tmp` (the copy that becomes `latest`) exists.
    LatestCopy,
}

const MOMENTS: [Moment; 12] = [
    Moment::Startup(0),
    Moment::Checkpoint(1, 0),
    Moment::CheckpointWrite,
    Moment::Checkpoint(2, 3),
    Moment::LatestCopy,
    Moment::Checkpoint(3, 1),
    Moment::CheckpointWrite,
    Moment::Checkpoint(2, 8),
    Moment::LatestCopy,
    Moment::CheckpointWrite,
    Moment::Checkpoint(1, 2),
    Moment::Checkpoint(4, 0),
];

/// The highest step with a complete checkpoint file (0: none).
fn saved_step(run: &Path) -> usize {
    std::fs::read_dir(run.join("checkpoints"))
        .map(|d| {
            d.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("step-")?
                    .strip_suffix(".safetensors")?
                    .parse()
                    .ok()
            })
            .max()
            .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn temporary_in(dir: &Path, prefix: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
    })
}

/// Wait for `moment` and SIGKILL the child; false if it ended first.
/// A write that the polling misses falls back to the next checkpoint.
fn kill_at(child: &mut Child, run: &Path, moment: Moment, resumed: usize) -> (bool, String) {
    let started = Instant::now();
    let deadline = Duration::from_secs(120);
    let mut seen = String::new();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (false, format!("ended first ({status})"));
        }
        assert!(started.elapsed() < deadline, "no progress in {deadline:?}");
        let saved = saved_step(run);
        let hit = match moment {
            Moment::Startup(ms) => {
                if run.exists() {
                    std::thread::sleep(Duration::from_millis(ms));
                    true
                } else {
                    false
                }
            }
            Moment::Checkpoint(k, ms) => {
                if saved >= resumed + k {
                    std::thread::sleep(Duration::from_millis(ms));
                    true
                } else {
                    false
                }
            }
            Moment::CheckpointWrite => {
                if temporary_in(&run.join("checkpoints"), ".irc-tmp-") {
                    seen = "a checkpoint temporary".into();
                    true
                } else {
                    saved >= resumed + 6
                }
            }
            Moment::LatestCopy => {
                if run.join(".latest.tmp").exists() {
                    seen = "the .latest.tmp copy".into();
                    true
                } else {
                    saved >= resumed + 6
                }
            }
        };
        if hit {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return (true, seen);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn killed_at_twelve_moments_resumes_to_the_uninterrupted_result() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    tiny_train::write_spec(dir, STEPS, 1);
    let t0 = Instant::now();
    train_ok(dir, "straight", &[]);
    let straight = dir.join("straight");
    eprintln!("uninterrupted run: {:.1}s", t0.elapsed().as_secs_f64());

    let run = dir.join("killed");
    let mut kills = 0;
    let mut inside_writes = 0;
    for (i, &m) in MOMENTS.iter().enumerate() {
        let resumed = saved_step(&run);
        let args: &[&str] = if resumed > 0 {
            &["--resume", "killed"]
        } else {
            &[]
        };
        let mut child = tiny_train::command(dir, "killed", args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (killed, what) = kill_at(&mut child, &run, m, resumed);
        let stale =
            temporary_in(&run.join("checkpoints"), ".irc-tmp-") || run.join(".latest.tmp").exists();
        eprintln!(
            "kill {i}: {m:?} from step {resumed}: {}, checkpoint at step {}{}{}",
            if killed { "killed" } else { "not killed" },
            saved_step(&run),
            if what.is_empty() {
                String::new()
            } else {
                format!(", during {what}")
            },
            if stale { ", left a temporary" } else { "" }
        );
        kills += killed as usize;
        inside_writes += (killed && !what.is_empty()) as usize;
        if !killed {
            break;
        }
    }
    assert!(
        kills >= 10,
        "only {kills} kills landed before the run ended"
    );
    eprintln!("{kills} kills, {inside_writes} inside a write");
    assert!(
        inside_writes >= 1,
        "no kill landed inside a checkpoint write"
    );

    // The last resume finishes the run.
    let args: &[&str] = if saved_step(&run) > 0 {
        &["--resume", "killed"]
    } else {
        &[]
    };
    train_ok(dir, "killed", args);

    assert_eq!(
        tiny_train::losses(&run),
        tiny_train::losses(&straight),
        "the metrics differ from the uninterrupted run's"
    );
    let files = tiny_train::tree(&run);
    assert_eq!(
        files,
        tiny_train::tree(&straight),
        "the run folder holds other files than the uninterrupted run's"
    );
    for f in files.iter().filter(|f| f.ends_with(".safetensors")) {
        assert!(
            std::fs::read(run.join(f)).unwrap() == std::fs::read(straight.join(f)).unwrap(),
            "{f} differs from the uninterrupted run's"
        );
    }
    eprintln!("whole test: {:.1}s", t0.elapsed().as_secs_f64());
}
