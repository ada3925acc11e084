//! A tiny training run driven through the `irc` binary, for the tests of
//! checkpoints and of kills: a 2-layer GPT-2 on a few lines of text, a
//! checkpoint every step, one thread (steps take milliseconds).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The spec (`tiny.toml`) beside `corpus.txt`; `steps` and
/// `checkpoint_every` as given.
pub fn write_spec(dir: &Path, steps: usize, checkpoint_every: usize) -> PathBuf {
    let text = "the quick brown fox jumps over the lazy dog\n\
                pack my box with five dozen liquor jugs\n\
                how vexingly quick daft zebras jump\n\
                sphinx of black quartz judge my vow\n";
    let corpus: String = text
        .repeat(4)
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{l} {i}\n"))
        .collect();
    std::fs::write(dir.join("corpus.txt"), corpus).unwrap();
    let src = format!(
        "[model]\nname='kt'\nfamily='gpt2'\nvocab_size=300\ncontext=32\nlayers=2\nd_model=64\nheads=2\n\
         [data]\nsource=['corpus.txt']\nformat='text'\npacking='stream'\nval_ratio=0.2\nseed=3\n\
         [tokenizer]\nvocab_size=300\n\
         [train]\nbatch=4\nseq_len=32\nsteps={steps}\nlr=3e-3\nwarmup=3\ngrad_accum=2\n\
         checkpoint_every={checkpoint_every}\neval_every=5\neval_samples=0\nthreads=1\n"
    );
    let p = dir.join("tiny.toml");
    std::fs::write(&p, src).unwrap();
    p
}

/// Compiled libraries shared by one test binary's runs.
pub fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("irc-tiny-train-cache")
}

/// `irc train tiny.toml -o RUN --quiet [extra]` in `dir`, started.
pub fn command(dir: &Path, run: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irc"));
    c.args(["train", "tiny.toml", "-o", run, "--quiet"])
        .args(extra)
        .current_dir(dir)
        .env("IRC_CACHE", cache());
    c
}

/// `irc train`, which must succeed; returns its stdout and stderr.
pub fn train_ok(dir: &Path, run: &str, extra: &[&str]) -> String {
    let o = command(dir, run, extra).output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "irc train {extra:?} failed:\n{t}");
    t
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The metrics lines without their timing (`tokens_per_s`).
pub fn losses(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("tokens_per_s");
            v.to_string()
        })
        .collect()
}

/// Every file under `dir`, as sorted relative paths.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = vec![];
    walk(dir, dir, &mut out);
    out.sort();
    out
}
