//! `irc profile`: where a compiled model spends its time, kernel by kernel.
//!
//! The spec is built with `[build] profile = true`, which times every kernel
//! call into a slot of the context (see `runtime-c/irc_profile.h`). Each
//! program then runs on made-up tokens: the forward and the training step
//! (forward + backward) on the compiled batch, prefill of half the context
//! and decode of the rest (generation's two steps). Throughput is stated
//! against the cores' fp32 FMA peak measured in the same run, never as a
//! bare time alone: these machines differ and are shared.

use crate::error::{Error, Result};
use crate::model::{self, Built};
use crate::runtime::{ProfileSlot, Session, Weights};
use crate::spec::Spec;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// The programs a library runs, in the order they are profiled.
pub const PROGRAMS: [&str; 4] = ["forward", "train", "prefill", "decode"];

/// One kernel slot's share of its program.
#[derive(Debug, Clone, Serialize)]
pub struct KernelTime {
    /// The kernel's index in its program.
    pub kernel: usize,
    /// The C function it calls.
    pub function: String,
    /// The graph value it computes.
    pub node: String,
    /// Seconds per program run.
    pub seconds: f64,
    /// Floating-point operations per program run (0: memory-bound kernel).
    pub flops: f64,
}

/// One program's profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramProfile {
    /// `forward`, `train`, `prefill` or `decode`.
    pub program: String,
    /// What one run is (the unit of every per-run figure).
    pub unit: String,
    /// Runs measured.
    pub runs: usize,
    /// Wall seconds per run, around the ABI call.
    pub wall: f64,
    /// Its kernels, slowest first.
    pub kernels: Vec<KernelTime>,
}

impl ProgramProfile {
    /// Seconds per run inside kernels.
    pub fn kernel_seconds(&self) -> f64 {
        self.kernels.iter().map(|k| k.seconds).sum()
    }
    /// Floating-point operations per run.
    pub fn flops(&self) -> f64 {
        self.kernels.iter().map(|k| k.flops).sum()
    }
}

/// A whole profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub model: String,
    pub target: String,
    pub threads: usize,
    /// fp32 FMA peak of `threads` threads, measured in this run (GFLOP/s).
    pub peak_gflops: f64,
    pub programs: Vec<ProgramProfile>,
}

/// Build `spec` as a profile build into `dir` and profile `programs` (names
/// from [`PROGRAMS`]) over `iters` runs each, after one warm-up run.
pub fn profile(
    spec: &Spec,
    dir: &Path,
    weights: Option<&Weights>,
    threads: usize,
    iters: usize,
    programs: &[&str],
) -> Result<Profile> {
    if let Some(p) = programs.iter().find(|p| !PROGRAMS.contains(p)) {
        return Err(Error::new(format!(
            "unknown program `{p}`: expected one of {}",
            PROGRAMS.join(", ")
        )));
    }
    let mut spec = spec.clone();
    spec.build.profile = true;
    let built = model::build(&spec, dir)?;
    let mut s = built.session(threads)?;
    match weights {
        Some(w) => s.load_weights(w)?,
        None => s.load_weights(&built.init_weights(1))?,
    }
    let lib = s.library();
    let slots: Vec<ProfileSlot> = lib
        .profile_slots()
        .ok_or_else(|| Error::new("the profile build has no profile symbols"))?
        .to_vec();
    let target = lib.target.clone();
    let threads = if threads == 0 {
        default_threads(&built)
    } else {
        threads
    };
    let peak_gflops = lib.fma_peak_gflops(threads).unwrap_or(0.0);
    let mut out = vec![];
    for &p in PROGRAMS.iter().filter(|p| programs.contains(p)) {
        if matches!(p, "prefill" | "decode") && built.spec.model.context < 2 {
            continue;
        }
        let mut run = runner(&built, p)?;
        run(&mut s)?; // warm-up: first-touch pages, the cache allocation
        s.profile_reset();
        let (mut runs, mut wall) = (0, 0.0);
        for _ in 0..iters.max(1) {
            let (n, t) = run(&mut s)?;
            runs += n;
            wall += t;
        }
        let secs = s.profile().unwrap_or_default();
        let mut kernels: Vec<KernelTime> = slots
            .iter()
            .zip(&secs)
            .filter(|(sl, _)| sl.program == p)
            .map(|(sl, &t)| KernelTime {
                kernel: sl.kernel,
                function: sl.function.clone(),
                node: sl.node.clone(),
                seconds: t / runs as f64,
                flops: sl.flops * calls_per_run(&built, p),
            })
            .collect();
        kernels.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        out.push(ProgramProfile {
            program: p.to_string(),
            unit: unit(&built, p),
            runs,
            wall: wall / runs as f64,
            kernels,
        });
    }
    Ok(Profile {
        model: built.spec.model.name.clone(),
        target,
        threads,
        peak_gflops,
        programs: out,
    })
}

fn default_threads(b: &Built) -> usize {
    if b.spec.build.threads > 0 {
        b.spec.build.threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Tokens of the prefill half of a generation run: half the context, whole
/// prefill chunks when the context allows.
fn prompt_len(b: &Built) -> usize {
    let half = (b.spec.model.context / 2).max(1);
    if half >= model::PREFILL_CHUNK {
        half / model::PREFILL_CHUNK * model::PREFILL_CHUNK
    } else {
        half
    }
}

/// Program invocations per measured run (a prefill of several chunks calls
/// its program once a chunk).
fn calls_per_run(b: &Built, p: &str) -> f64 {
    match p {
        "prefill" => prompt_len(b).div_ceil(model::PREFILL_CHUNK) as f64,
        _ => 1.0,
    }
}

fn unit(b: &Built, p: &str) -> String {
    let (batch, seq) = (b.compiled.program.batch, b.compiled.program.seq);
    match p {
        "forward" => format!("a forward of {batch} x {seq} tokens"),
        "train" => format!("a training step (forward + backward) of {batch} x {seq} tokens"),
        "prefill" => format!("a prefill of {} tokens", prompt_len(b)),
        _ => format!(
            "a decode step (cache of {}..{} tokens)",
            prompt_len(b),
            b.spec.model.context - 1
        ),
    }
}

type Run = Box<dyn FnMut(&mut Session) -> Result<(usize, f64)>>;

/// One measured run of program `p`: how many runs it counts as, and their
/// wall seconds (a decode run's prefill is neither).
fn runner(b: &Built, p: &str) -> Result<Run> {
    let (batch, seq) = (b.compiled.program.batch, b.compiled.program.seq);
    let v = b.spec.model.vocab_size;
    let tokens: Vec<i32> = (0..batch * seq).map(|i| ((i * 7 + 3) % v) as i32).collect();
    let prompt: Vec<i32> = tokens[..prompt_len(b)].to_vec();
    let decode_steps = b.spec.model.context - prompt.len();
    Ok(match p {
        "forward" => Box::new(move |s: &mut Session| {
            let t0 = Instant::now();
            s.forward(&tokens, batch, seq)?;
            Ok((1, t0.elapsed().as_secs_f64()))
        }),
        "train" => {
            let targets: Vec<i32> = tokens.iter().map(|t| (t + 1) % v as i32).collect();
            Box::new(move |s: &mut Session| {
                s.zero_grads();
                let t0 = Instant::now();
                s.backward(&tokens, &targets, batch, seq)?;
                Ok((1, t0.elapsed().as_secs_f64()))
            })
        }
        "prefill" => Box::new(move |s: &mut Session| {
            let t0 = Instant::now();
            s.prefill(&prompt)?;
            Ok((1, t0.elapsed().as_secs_f64()))
        }),
        _ => Box::new(move |s: &mut Session| {
            s.prefill(&prompt)?;
            let t0 = Instant::now();
            for i in 0..decode_steps {
                s.decode(((i * 11 + 5) % v) as i32)?;
            }
            Ok((decode_steps, t0.elapsed().as_secs_f64()))
        }),
    })
}

/// The kind of kernel a C function implements (`gemm_bias_3` → `gemm_bias`).
pub fn kind(function: &str) -> &str {
    function
        .rsplit_once('_')
        .filter(|(_, n)| n.chars().all(|c| c.is_ascii_digit()))
        .map_or(function, |(k, _)| k)
}

impl Profile {
    /// The tables `irc profile` prints: per program a summary line, time by
    /// kernel kind, and the `top` slowest kernels.
    pub fn table(&self, top: usize) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "profile of {} ({}, {} thread{}); fp32 FMA peak {:.1} GFLOP/s, measured now",
            self.model,
            self.target,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.peak_gflops
        );
        let rate = |flops: f64, secs: f64| {
            if flops > 0.0 && secs > 0.0 {
                let g = flops / secs * 1e-9;
                let pct = if self.peak_gflops > 0.0 {
                    format!("{:5.1}", 100.0 * g / self.peak_gflops)
                } else {
                    "    -".into()
                };
                (format!("{g:8.1}"), pct)
            } else {
                ("       -".into(), "    -".into())
            }
        };
        for p in &self.programs {
            let ks = p.kernel_seconds();
            let (g, pct) = rate(p.flops(), p.wall);
            let _ = writeln!(
                o,
                "\n{}: {:.3} ms for {} ({} runs), {:.0}% of it in kernels; {} at {} GFLOP/s = {}% of peak",
                p.program,
                p.wall * 1e3,
                p.unit,
                p.runs,
                if p.wall > 0.0 { 100.0 * ks / p.wall } else { 0.0 },
                if p.flops() >= 1e8 {
                    format!("{:.2} GFLOP", p.flops() * 1e-9)
                } else {
                    format!("{:.2} MFLOP", p.flops() * 1e-6)
                },
                g.trim(),
                pct.trim()
            );
            // By kind.
            let mut kinds: Vec<(String, f64, f64, usize)> = vec![];
            for k in &p.kernels {
                let name = kind(&k.function);
                match kinds.iter_mut().find(|x| x.0 == name) {
                    Some(x) => {
                        x.1 += k.seconds;
                        x.2 += k.flops;
                        x.3 += 1;
                    }
                    None => kinds.push((name.to_string(), k.seconds, k.flops, 1)),
                }
            }
            kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
            let _ = writeln!(
                o,
                "  {:>6}  {:>9}  {:>8}  {:>5}  {:>5}  kind",
                "time%", "ms/run", "GFLOP/s", "peak%", "calls"
            );
            for (name, secs, flops, n) in &kinds {
                let (g, pct) = rate(*flops, *secs);
                let _ = writeln!(
                    o,
                    "  {:6.1}  {:9.3}  {g}  {pct}  {n:5}  {name}",
                    100.0 * secs / ks.max(1e-30),
                    secs * 1e3
                );
            }
            let _ = writeln!(
                o,
                "  {:>6}  {:>9}  {:>8}  {:>5}  kernel",
                "time%", "ms/run", "GFLOP/s", "peak%"
            );
            for k in p.kernels.iter().take(top) {
                let (g, pct) = rate(k.flops, k.seconds);
                let _ = writeln!(
                    o,
                    "  {:6.1}  {:9.3}  {g}  {pct}  k{} {} ({})",
                    100.0 * k.seconds / ks.max(1e-30),
                    k.seconds * 1e3,
                    k.kernel,
                    k.function,
                    k.node
                );
            }
            if p.kernels.len() > top {
                let rest: f64 = p.kernels[top..].iter().map(|k| k.seconds).sum();
                let _ = writeln!(
                    o,
                    "  {:6.1}  {:9.3}  ({} more kernels)",
                    100.0 * rest / ks.max(1e-30),
                    rest * 1e3,
                    p.kernels.len() - top
                );
            }
        }
        o
    }
}
