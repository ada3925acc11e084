//! The model rows: irc's training step, forward and decode, each measured
//! in a process of its own (`irc bench SPEC --worker train|infer`, so its
//! peak RSS is its own), and PyTorch eager's training step on the same
//! model, weights and tokens (benches/torch_step.py).

use super::{median, run_python, Missing, Sample};
use crate::codegen;
use crate::error::{At, Error, Result};
use crate::model::PREFILL_CHUNK;
use crate::runtime::{AdamwConfig, Library, Session};
use crate::spec::{Spec, WeightFormat};
use crate::toolchain::SHARED_LIB;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub(super) const TORCH_PY: &str = include_str!("../../benches/torch_step.py");

/// Seed of the weights every side starts from (irc's init, the one `irc init` writes).
pub const SEED: u64 = 1;

/// The tokens and optimizer settings both sides train on (DATA.json of
/// benches/torch_step.py).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepData {
    pub batch: usize,
    pub seq: usize,
    pub tokens: Vec<i32>,
    pub targets: Vec<i32>,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub clip: f64,
}

impl StepData {
    /// The spec's batch of made-up tokens (a seeded stream; each target is
    /// the next token) and its `[train]` AdamW settings.
    pub fn of(spec: &Spec) -> StepData {
        let (b, t, v) = (spec.build.batch, spec.build.seq_len, spec.model.vocab_size);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let stream: Vec<i32> = (0..=b * t)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((x >> 33) % v as u64) as i32
            })
            .collect();
        let tr = &spec.train;
        StepData {
            batch: b,
            seq: t,
            tokens: stream[..b * t].to_vec(),
            targets: stream[1..].to_vec(),
            lr: tr.lr,
            beta1: tr.beta1,
            beta2: tr.beta2,
            eps: tr.eps,
            weight_decay: tr.weight_decay,
            clip: tr.clip,
        }
    }
}

/// What a `train` worker measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainRun {
    /// Median of its timed steps.
    pub step_ms: f64,
    /// Loss of the first step (at the initial weights).
    pub loss0: f64,
    pub rss_kb: u64,
}

/// What an `infer` worker measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferRun {
    /// Median forward of the compiled (batch, seq).
    pub forward_ms: f64,
    /// Median decode rate over a whole context (after a prefill).
    pub decode_tokens_per_s: Option<f64>,
    /// Peak RSS after decoding only (a context that generates).
    pub decode_rss_kb: u64,
    /// Peak RSS after the forward too.
    pub rss_kb: u64,
}

/// What a `decode` worker measured (a build with packed weights beside
/// the spec's own: its decode alone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecodeRun {
    pub decode_tokens_per_s: Option<f64>,
    /// Peak RSS of the process, which only generated.
    pub decode_rss_kb: u64,
}

/// This process's peak resident set (VmHWM), KiB.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The initial weights beside a worker's data file (`data-0.json` → `data-0.safetensors`):
/// the parent writes them once, and a worker streams them into its context as `irc
/// generate` does a checkpoint, so its peak RSS holds one copy of the weights (building
/// them in the worker held two: bench-s generating at 34 MiB, 14 of them a spare copy).
pub fn init_weights_path(data: &Path) -> std::path::PathBuf {
    data.with_extension("safetensors")
}

/// A session on the library built in `dir` (no compiling in the worker:
/// its memory is the library's), with the weights streamed in from `weights`.
fn session(spec: &Spec, dir: &Path, threads: usize, weights: &Path) -> Result<Session> {
    let lib = Library::open(
        &dir.join(SHARED_LIB),
        &codegen::prefix(spec),
        &spec.build_hash(),
        (spec.build.batch, spec.build.seq_len, spec.model.vocab_size),
    )?;
    let mut s = Session::new(&lib, threads)?;
    s.load_weights_file(weights)?;
    Ok(s)
}

/// The median decode rate over a whole context after a prefill of (a
/// chunk of) `prompt`, over `steps` runs after one warm-up; None without
/// generation programs.
fn decode_rate(s: &mut Session, spec: &Spec, prompt: &[i32], steps: usize) -> Result<Option<f64>> {
    let context = spec.model.context;
    if context < 2 {
        return Ok(None);
    }
    let prompt = &prompt[..PREFILL_CHUNK.min(context - 1)];
    let mut rates = vec![];
    for run in 0..=steps {
        s.prefill(prompt)?;
        let t0 = Instant::now();
        let mut tok = prompt[prompt.len() - 1];
        for _ in prompt.len()..context {
            let logits = s.decode(tok)?;
            tok = argmax(&logits);
        }
        let rate = (context - prompt.len()) as f64 / t0.elapsed().as_secs_f64();
        if run > 0 {
            rates.push(rate); // (run 0 warms up: the cache's allocation)
        }
    }
    Ok(Some(median(&rates)))
}

/// `irc bench SPEC --worker KIND`: one process's measurement, as one JSON
/// line on stdout.
pub fn worker(
    kind: &str,
    spec: &Spec,
    dir: &Path,
    data: &Path,
    threads: usize,
    steps: usize,
) -> Result<()> {
    let text = std::fs::read_to_string(data).at(data.display())?;
    let d: StepData = serde_json::from_str(&text).at(data.display())?;
    let weights = init_weights_path(data);
    let mut s = session(spec, dir, threads, &weights)?;
    let (b, t) = (d.batch, d.seq);
    let line = match kind {
        "train" => {
            let mut step = |i: usize| -> Result<f32> {
                s.zero_grads();
                let loss = s.backward(&d.tokens, &d.targets, b, t)?;
                s.adamw_step(&AdamwConfig {
                    lr: d.lr as f32,
                    beta1: d.beta1 as f32,
                    beta2: d.beta2 as f32,
                    eps: d.eps as f32,
                    weight_decay: d.weight_decay as f32,
                    grad_scale: 1.0,
                    clip: d.clip as f32,
                    step: i as i32 + 1,
                })?;
                Ok(loss)
            };
            let loss0 = step(0)? as f64; // warm-up: first touch, the training state
            let mut times = vec![];
            for i in 1..=steps {
                let t0 = Instant::now();
                step(i)?;
                times.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            serde_json::to_value(TrainRun {
                step_ms: median(&times),
                loss0,
                rss_kb: peak_rss_kb(),
            })?
        }
        "decode" => serde_json::to_value(DecodeRun {
            decode_tokens_per_s: decode_rate(&mut s, spec, &d.tokens, steps)?,
            decode_rss_kb: peak_rss_kb(),
        })?,
        "infer" => {
            let decode_tokens_per_s = decode_rate(&mut s, spec, &d.tokens, steps)?;
            let decode_rss_kb = peak_rss_kb();
            if !spec.build.weights.is_f32() {
                // Packing gave the f32 copies back; the forward reads them.
                s = session(spec, dir, threads, &weights)?;
            }
            s.forward(&d.tokens, b, t)?;
            let mut times = vec![];
            for _ in 0..steps {
                let t0 = Instant::now();
                s.forward(&d.tokens, b, t)?;
                times.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            serde_json::to_value(InferRun {
                forward_ms: median(&times),
                decode_tokens_per_s,
                decode_rss_kb,
                rss_kb: peak_rss_kb(),
            })?
        }
        other => {
            return Err(Error::new(format!(
                "--worker: unknown kind `{other}`; expected train, infer or decode"
            )))
        }
    };
    println!("{line}");
    Ok(())
}

fn argmax(v: &[f32]) -> i32 {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b }) as i32
}

/// Run a worker process of `exe` (this irc) and read its line; `weights`
/// overrides the spec's `[build].weights` (a packed build of it in `dir`).
#[allow(clippy::too_many_arguments)]
pub fn run_worker<T: for<'de> Deserialize<'de>>(
    exe: &Path,
    kind: &str,
    spec: &Path,
    weights: Option<WeightFormat>,
    dir: &Path,
    data: &Path,
    threads: usize,
    steps: usize,
) -> Result<T> {
    let mut cmd = Command::new(exe);
    cmd.arg("bench").arg(spec).args(["--worker", kind]);
    if let Some(w) = weights {
        cmd.args(["--weights", w.name()]);
    }
    let out = cmd
        .arg("--build-dir")
        .arg(dir)
        .arg("--data")
        .arg(data)
        .args(["--threads", &threads.to_string()])
        .args(["--steps", &steps.to_string()])
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .map_err(|e| Error::new(format!("cannot run {}: {e}", exe.display())))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "the {kind} benchmark of {} failed ({}): {}",
            spec.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line)
        .map_err(|e| Error::new(format!("the {kind} benchmark printed `{line}`: {e}")))
}

/// One process of benches/torch_step.py: the median step and its first loss.
pub fn run_torch(
    python: &Path,
    script: &Path,
    hf_dir: &Path,
    data: &Path,
    threads: usize,
    steps: usize,
    bf16_autocast: bool,
) -> std::result::Result<Sample<TrainRun>, Missing> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg(hf_dir)
        .arg(data)
        .args([threads.to_string(), steps.to_string()]);
    if bf16_autocast {
        cmd.args(["--autocast", "bf16"]);
    }
    let v = run_python(cmd, python, threads)?;
    let f = |k: &str| {
        v[k].as_f64()
            .ok_or_else(|| Missing::Failed(format!("torch_step.py gave no `{k}`: {v}")))
    };
    Ok(Sample {
        value: TrainRun {
            step_ms: f("step_ms")?,
            loss0: f("loss0")?,
            rss_kb: v["rss_kb"].as_u64().unwrap_or(0),
        },
        label: v["torch"].as_str().unwrap_or("torch").to_string(),
        rss_kb: v["rss_kb"].as_u64().unwrap_or(0),
    })
}

/// The data file both sides read.
pub fn write_data(path: &Path, d: &StepData) -> Result<()> {
    std::fs::write(path, serde_json::to_string(&json!(d))?).at(path.display())
}
