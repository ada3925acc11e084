//! `irc bench`: one command that measures, in one run, what irc's speed
//! claims rest on, each figure beside the machine's measured limit or an
//! outside framework on the same work:
//!
//! - the fp32 FMA peak of one thread and of every core (irc_profile.h's
//!   measurement, as `irc profile` and benches/gemm.sh state it);
//! - sgemm GFLOP/s and % of that peak at 1024³ (plain, B transposed) and at
//!   every distinct GEMM call of each spec's compiled training program
//!   (forward, dX, dW; as [`GemmShape`] reads them from the kernels), through
//!   runtime-c/irc_gemm.h compiled as a model of the target is, beside
//!   numpy's sgemm (OpenBLAS) at the same shapes and threads;
//! - each spec's training step (forward, backward, AdamW) in ms, tokens/s
//!   and % of peak with the process's peak RSS, beside PyTorch eager's step
//!   on the same model (transformers, from irc's own exported weights), the
//!   same tokens and AdamW settings; the forward and decode tokens/s;
//! - `irc build` of each spec cold (an empty cache) and cached.
//!
//! Every figure comes from separate processes, irc's and the outside one's
//! alternating (A B A B ...) for `repeats` rounds; a figure is the median of
//! the rounds, with their min and max. Thread counts are pinned on both
//! sides (irc's thread setting; OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
//! torch.set_num_threads). numpy or torch missing makes their columns say
//! "not importable"; it is never an error.

mod gemm;
mod step;
mod table;

pub use gemm::{squares, SECONDS_PER_SHAPE};
pub use step::{peak_rss_kb, worker, DecodeRun, InferRun, StepData, TrainRun};

use crate::codegen::{kernel_flops, GemmShape};
use crate::error::{At, Error, Result};
use crate::ir::KernelKind;
use crate::model::{self, Built};
use crate::schedule::Caches;
use crate::spec::{Spec, Target, WeightFormat};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The specs `irc bench` measures when given none: the bench models and
/// the SVG model's shape.
pub const DEFAULT_SPECS: [&str; 3] = [
    "models/bench-s.toml",
    "models/bench-m.toml",
    "models/svg-small.toml",
];

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    pub specs: Vec<PathBuf>,
    /// Thread counts, each ≥ 1.
    pub threads: Vec<usize>,
    /// Rounds of interleaved processes (the medians are over them).
    pub repeats: usize,
    /// Timed training steps (and forwards, decodes) in each process.
    pub steps: usize,
    /// The Python that runs benches/blas.py and benches/torch_step.py.
    pub python: PathBuf,
    /// This irc (the workers are its processes).
    pub exe: PathBuf,
}

/// Median, min and max over the rounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Stats {
    pub fn of(v: &[f64]) -> Stats {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        Stats {
            median: median(&s),
            min: s.first().copied().unwrap_or(f64::NAN),
            max: s.last().copied().unwrap_or(f64::NAN),
            n: s.len(),
        }
    }
}

/// Median of `v` (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// One process's figures from an outside framework, and what it calls itself.
#[derive(Debug, Clone)]
pub struct Sample<T> {
    pub value: T,
    pub label: String,
    pub rss_kb: u64,
}

/// Why an outside framework gave no figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// It cannot be imported (or the Python cannot be run).
    NotImportable(String),
    /// It ran and failed.
    Failed(String),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::NotImportable(why) => write!(f, "not importable ({why})"),
            Missing::Failed(why) => write!(f, "failed ({why})"),
        }
    }
}

/// An outside framework's column: its figures, or why there are none.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Side<T> {
    Measured(T),
    Missing { missing: String },
}

impl<T> Side<T> {
    fn missing(m: &Missing) -> Side<T> {
        Side::Missing {
            missing: m.to_string(),
        }
    }
    pub fn measured(&self) -> Option<&T> {
        match self {
            Side::Measured(t) => Some(t),
            Side::Missing { .. } => None,
        }
    }
}

/// Run a Python script's command (with `threads` pinned) and read the JSON
/// object it prints last.
fn run_python(
    mut cmd: Command,
    python: &Path,
    threads: usize,
) -> std::result::Result<serde_json::Value, Missing> {
    for var in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"] {
        cmd.env(var, threads.to_string());
    }
    let out = cmd
        .output()
        .map_err(|e| Missing::NotImportable(format!("cannot run {}: {e}", python.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rev().find(|l| l.trim_start().starts_with('{'));
    let v: Option<serde_json::Value> = last.and_then(|l| serde_json::from_str(l).ok());
    match v {
        Some(v) if out.status.success() => match v["not_importable"].as_str() {
            Some(why) => Err(Missing::NotImportable(why.to_string())),
            None => Ok(v),
        },
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(Missing::Failed(format!(
                "{}: {}",
                out.status,
                tail.join(" / ")
            )))
        }
    }
}

/// The measured FMA peak of one thread count.
#[derive(Debug, Clone, Serialize)]
pub struct PeakRow {
    pub threads: usize,
    pub gflops: Stats,
}

/// One GEMM call at one thread count.
#[derive(Debug, Clone, Serialize)]
pub struct GemmRow {
    pub shape: GemmShape,
    /// `M x N x K` and what differs from a plain product.
    pub label: String,
    /// Where it comes from: `spec: kernel value ×calls a step`, or `1024³`.
    pub used_by: Vec<String>,
    pub threads: usize,
    /// irc_gemm GFLOP/s.
    pub irc: Stats,
    /// irc's median against the peak of as many threads.
    pub pct_of_peak: f64,
    /// numpy's sgemm GFLOP/s (the plain product).
    pub numpy: Side<Stats>,
    /// irc / numpy (medians): above 1, irc is faster.
    pub ratio: Option<f64>,
    /// irc_gemm_bf16 GFLOP/s (vdpbf16ps), where the CPU has AVX512-BF16.
    pub bf16: Option<Stats>,
    /// bf16 / f32 (medians).
    pub bf16_ratio: Option<f64>,
}

/// The rows of one target: its peak and its GEMMs.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRows {
    pub target: String,
    pub caches: String,
    pub peak: Vec<PeakRow>,
    pub gemm: Vec<GemmRow>,
}

/// PyTorch's training step beside irc's.
#[derive(Debug, Clone, Serialize)]
pub struct TorchStep {
    pub step_ms: Stats,
    pub tokens_per_s: f64,
    pub pct_of_peak: f64,
    pub rss_mb: f64,
    /// Its loss at the initial weights (irc's `loss0` should agree: the
    /// same model, weights and tokens).
    pub loss0: f64,
}

/// One spec at one thread count.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    pub threads: usize,
    /// forward + backward + AdamW.
    pub step_ms: Stats,
    pub tokens_per_s: f64,
    pub pct_of_peak: f64,
    /// Peak RSS of the training process.
    pub rss_mb: f64,
    pub loss0: f64,
    pub torch: Side<TorchStep>,
    /// PyTorch's step time / irc's (medians): above 1, irc is faster.
    pub ratio: Option<f64>,
    pub forward_ms: Stats,
    pub forward_tokens_per_s: f64,
    /// Decode over a whole context after a prefill (no generation programs: none).
    pub decode_tokens_per_s: Option<Stats>,
    /// Peak RSS of a process that decoded only, and after the forward too.
    pub decode_rss_mb: f64,
    pub infer_rss_mb: f64,
}

/// One spec's rows.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRows {
    pub spec: String,
    pub name: String,
    pub target: String,
    /// `[build].dtype` of the spec (the rows of other dtypes sit beside f32's).
    pub dtype: String,
    /// `[build].weights`: how decode holds the linear layers' weights (a
    /// spec with q8_0 beside the same spec with f32 gives both rows).
    pub weights: String,
    pub batch: usize,
    pub seq: usize,
    pub params: usize,
    /// Floating-point operations of one training step.
    pub step_gflop: f64,
    /// `irc build` into an empty cache, then again from it (seconds; once).
    pub build_cold_s: f64,
    pub build_cached_s: f64,
    pub rows: Vec<ModelRow>,
    /// Decode of the same spec with each other `[build].weights` (f32,
    /// q8_0, bf16 but its own), built by `irc bench` itself.
    pub packed: Vec<PackedRows>,
}

/// Decode of a spec built with `weights`, a row per thread count.
#[derive(Debug, Clone, Serialize)]
pub struct PackedRows {
    pub weights: String,
    pub rows: Vec<DecodeRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecodeRow {
    pub threads: usize,
    pub decode_tokens_per_s: Option<Stats>,
    /// Peak RSS of the process (it only generated).
    pub decode_rss_mb: f64,
}

/// Everything one `irc bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cpu: String,
    pub cores: usize,
    pub threads: Vec<usize>,
    pub repeats: usize,
    pub steps: usize,
    pub python: String,
    /// What numpy and torch are (or why they are missing).
    pub numpy: String,
    pub torch: String,
    pub targets: Vec<TargetRows>,
    pub models: Vec<ModelRows>,
}

/// FLOPs of a training step: its kernels' matmuls and causal attention
/// (codegen's count, as `irc profile` has it), and the attention backward
/// as twice its forward (its four T×T products against the forward's two).
pub fn step_flops(b: &Built) -> f64 {
    let t = &b.train;
    t.kernels
        .iter()
        .map(|k| {
            let f = kernel_flops(&t.graph, k);
            if matches!(k.kind, KernelKind::Attention) {
                3.0 * f
            } else {
                f
            }
        })
        .sum()
}

/// The distinct GEMM calls of a spec's training step, in program order,
/// each with the kernels that make it and how often a step does.
pub fn train_gemms(b: &Built) -> Vec<(GemmShape, Vec<String>)> {
    let t = &b.train;
    let mut out: Vec<(GemmShape, Vec<String>)> = vec![];
    for k in &t.kernels {
        let Some(s) = GemmShape::of(&t.graph, &t.memory, k) else {
            continue;
        };
        let node = t.graph.node(*k.nodes.last().expect("a kernel has nodes"));
        match out.iter_mut().find(|(x, _)| *x == s) {
            Some((_, names)) => names.push(node.name.clone()),
            None => out.push((s, vec![node.name.clone()])),
        }
    }
    out
}

/// `qkv ×4` for names that differ only by their layer (`h.0.qkv`, ...).
fn summarize(names: &[String]) -> String {
    let strip = |n: &str| -> String {
        n.split('.')
            .filter(|p| !p.chars().all(|c| c.is_ascii_digit()))
            .collect::<Vec<_>>()
            .join(".")
    };
    let mut seen: Vec<(String, usize)> = vec![];
    for n in names {
        let s = strip(n);
        match seen.iter_mut().find(|(x, _)| *x == s) {
            Some((_, c)) => *c += 1,
            None => seen.push((s, 1)),
        }
    }
    seen.iter()
        .map(|(n, c)| {
            if *c > 1 {
                format!("{n} ×{c}")
            } else {
                n.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// A spec built for the bench, and what its rows need.
struct Model {
    spec_path: PathBuf,
    built: Built,
    data: PathBuf,
    hf: std::result::Result<PathBuf, Missing>,
    harness: usize,
    build_cold_s: f64,
    build_cached_s: f64,
    train: BTreeMap<usize, Vec<TrainRun>>,
    torch: BTreeMap<usize, Vec<Sample<TrainRun>>>,
    torch_missing: Option<Missing>,
    infer: BTreeMap<usize, Vec<InferRun>>,
    /// The same spec built with each other `[build].weights`: decode only.
    packed: Vec<PackedModel>,
}

/// A build of a spec with its generation's weights in another format.
struct PackedModel {
    weights: WeightFormat,
    dir: PathBuf,
    decode: BTreeMap<usize, Vec<DecodeRun>>,
}

/// The specs that build for one target (SIMD path, caches, optimization
/// level): one GEMM harness, the union of their GEMM calls, and who makes
/// each.
struct Group {
    target: Target,
    caches: Caches,
    opt_level: u8,
    shapes: Vec<GemmShape>,
    used_by: Vec<Vec<String>>,
}

/// The value of `IRC_CACHE` while `f` runs (a cold build needs an empty cache).
fn with_cache<T>(cache: &Path, f: impl FnOnce() -> T) -> T {
    let old = std::env::var_os("IRC_CACHE");
    std::env::set_var("IRC_CACHE", cache);
    let out = f();
    match old {
        Some(v) => std::env::set_var("IRC_CACHE", v),
        None => std::env::remove_var("IRC_CACHE"),
    }
    out
}

/// Measure everything `opts` asks for; `progress` hears a line per process.
pub fn run(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    if opts.threads.is_empty() || opts.threads.contains(&0) {
        return Err(Error::new("--threads: expected thread counts ≥ 1"));
    }
    let tmp = tempfile::tempdir().at("a temporary folder for the benchmark")?;
    let scripts = Scripts {
        blas: tmp.path().join("blas.py"),
        torch: tmp.path().join("torch_step.py"),
    };
    std::fs::write(&scripts.blas, gemm::BLAS_PY).at(scripts.blas.display())?;
    std::fs::write(&scripts.torch, step::TORCH_PY).at(scripts.torch.display())?;
    let (mut models, groups) = build_models(opts, tmp.path(), progress)?;
    let mut harnesses = vec![];
    // The same shapes through irc_gemm_bf16 where the CPU has vdpbf16ps.
    let mut bf16_harnesses = vec![];
    for (g, grp) in groups.iter().enumerate() {
        progress(&format!(
            "compiling the GEMM benchmark for {}",
            grp.target.name()
        ));
        harnesses.push(gemm::Harness::build(
            &tmp.path().join(format!("gemm-{g}")),
            grp.target,
            grp.caches,
            grp.opt_level,
            grp.shapes.clone(),
            None,
        )?);
        let native = grp.target == Target::Avx512 && crate::spec::Bf16Dot::host_has_native();
        bf16_harnesses.push(if native {
            Some(gemm::Harness::build(
                &tmp.path().join(format!("gemm-bf16-{g}")),
                grp.target,
                grp.caches,
                grp.opt_level,
                grp.shapes.clone(),
                Some(true),
            )?)
        } else {
            None
        });
    }
    // The rounds: irc's process, then the outside one's, for every row.
    let mut gemms = GemmRuns::new(harnesses.len());
    let mut torch_label = String::new();
    for round in 0..opts.repeats {
        let tag = format!("round {}/{}", round + 1, opts.repeats);
        gemms.round(
            opts,
            &harnesses,
            &bf16_harnesses,
            &scripts.blas,
            &tag,
            progress,
        )?;
        for m in models.iter_mut() {
            m.round(opts, &scripts.torch, &tag, &mut torch_label, progress)?;
        }
    }
    // Medians over the rounds.
    let targets: Vec<TargetRows> = harnesses
        .iter()
        .enumerate()
        .map(|(h, harness)| gemms.target_rows(opts, h, harness, &groups[h]))
        .collect();
    let model_rows = models
        .iter()
        .map(|m| m.rows(opts, &targets[m.harness].peak))
        .collect();
    let torch_missing = models.iter().find_map(|m| m.torch_missing.clone());
    Ok(Report {
        cpu: cpu_name(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads: opts.threads.clone(),
        repeats: opts.repeats,
        steps: opts.steps,
        python: opts.python.display().to_string(),
        numpy: match &gemms.numpy_missing {
            Some(m) => m.to_string(),
            None => gemms.numpy_label.clone(),
        },
        torch: match (&torch_missing, torch_label.is_empty()) {
            (Some(m), true) => m.to_string(),
            (Some(m), false) => format!("{torch_label}; for some specs {m}"),
            (None, _) => torch_label,
        },
        targets,
        models: model_rows,
    })
}

/// The outside frameworks' scripts, written into the benchmark's folder.
struct Scripts {
    blas: PathBuf,
    torch: PathBuf,
}

/// Build every spec, cold then cached, and group their GEMMs by target.
fn build_models(
    opts: &Options,
    tmp: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<Model>, Vec<Group>)> {
    let mut models: Vec<Model> = vec![];
    let mut groups: Vec<Group> = vec![];
    for (i, path) in opts.specs.iter().enumerate() {
        let spec = Spec::load(path)?;
        let dir = tmp.join(format!("build-{i}"));
        let cache = tmp.join(format!("cache-{i}"));
        progress(&format!("building {} (cold, then cached)", path.display()));
        let (built, cold, cached) = with_cache(&cache, || -> Result<(Built, f64, f64)> {
            let t0 = Instant::now();
            model::build(&spec, &dir)?;
            let cold = t0.elapsed().as_secs_f64();
            let t0 = Instant::now();
            let built = model::build(&spec, &dir)?;
            Ok((built, cold, t0.elapsed().as_secs_f64()))
        })?;
        let data = tmp.join(format!("data-{i}.json"));
        step::write_data(&data, &StepData::of(&spec))?;
        let init = built.init_weights(step::SEED);
        init.save(&step::init_weights_path(&data), None)?;
        let hf_dir = tmp.join(format!("hf-{i}"));
        let hf = crate::hf::export_hf(&spec, &init, None, &hf_dir)
            .map(|()| hf_dir)
            .map_err(|e| Missing::Failed(format!("no Hugging Face model of this spec: {e}")));
        let g = group_gemms(&mut groups, &spec, &built);
        let mut packed = vec![];
        for w in [WeightFormat::F32, WeightFormat::Q8_0, WeightFormat::Bf16] {
            if w == spec.build.weights {
                continue;
            }
            let mut other = spec.clone();
            other.build.weights = w;
            let dir = tmp.join(format!("build-{i}-{}", w.name()));
            progress(&format!(
                "building {} with {} weights",
                path.display(),
                w.name()
            ));
            with_cache(&cache, || model::build(&other, &dir))?;
            packed.push(PackedModel {
                weights: w,
                dir,
                decode: BTreeMap::new(),
            });
        }
        models.push(Model {
            spec_path: path.clone(),
            built,
            data,
            hf,
            harness: g,
            build_cold_s: cold,
            build_cached_s: cached,
            train: BTreeMap::new(),
            torch: BTreeMap::new(),
            torch_missing: None,
            infer: BTreeMap::new(),
            packed,
        });
    }
    Ok((models, groups))
}

/// Add the GEMM calls of `built`'s training program to the group of its
/// target (made if it is the first); the group's index.
fn group_gemms(groups: &mut Vec<Group>, spec: &Spec, built: &Built) -> usize {
    let sched = &built.compiled.schedule;
    let (target, caches, opt_level) = (sched.target, sched.caches, spec.build.opt_level);
    let g = match groups
        .iter()
        .position(|x| (x.target, x.caches, x.opt_level) == (target, caches, opt_level))
    {
        Some(g) => g,
        None => {
            groups.push(Group {
                target,
                caches,
                opt_level,
                shapes: squares().to_vec(),
                used_by: vec![vec!["1024³".into()]; 2],
            });
            groups.len() - 1
        }
    };
    for (shape, names) in train_gemms(built) {
        let used = format!("{}: {}", spec.model.name, summarize(&names));
        let grp = &mut groups[g];
        match grp.shapes.iter().position(|s| *s == shape) {
            Some(j) => grp.used_by[j].push(used),
            None => {
                grp.shapes.push(shape);
                grp.used_by.push(vec![used]);
            }
        }
    }
    g
}

/// The GEMM harnesses' runs of every round, irc's (f32 and bf16) and
/// numpy's, by harness and thread count.
struct GemmRuns {
    irc: Vec<BTreeMap<usize, Vec<gemm::HarnessRun>>>,
    bf16: Vec<BTreeMap<usize, Vec<gemm::HarnessRun>>>,
    numpy: Vec<BTreeMap<usize, Vec<Vec<f64>>>>,
    numpy_missing: Option<Missing>,
    numpy_label: String,
}

impl GemmRuns {
    fn new(harnesses: usize) -> GemmRuns {
        GemmRuns {
            irc: (0..harnesses).map(|_| BTreeMap::new()).collect(),
            bf16: (0..harnesses).map(|_| BTreeMap::new()).collect(),
            numpy: vec![BTreeMap::new(); harnesses],
            numpy_missing: None,
            numpy_label: String::new(),
        }
    }

    /// One round of every harness at every thread count (its bf16 twin
    /// where there is one), numpy after irc.
    fn round(
        &mut self,
        opts: &Options,
        harnesses: &[gemm::Harness],
        bf16_harnesses: &[Option<gemm::Harness>],
        blas_py: &Path,
        tag: &str,
        progress: &mut dyn FnMut(&str),
    ) -> Result<()> {
        for (h, harness) in harnesses.iter().enumerate() {
            for &t in &opts.threads {
                progress(&format!(
                    "{tag}: sgemm, {} shapes, {t} thread(s)",
                    harness.shapes.len()
                ));
                self.irc[h].entry(t).or_default().push(harness.run(t)?);
                if let Some(b) = &bf16_harnesses[h] {
                    self.bf16[h].entry(t).or_default().push(b.run(t)?);
                }
                if self.numpy_missing.is_none() {
                    match harness.run_numpy(&opts.python, blas_py, t) {
                        Ok(s) => {
                            self.numpy_label = s.label;
                            self.numpy[h].entry(t).or_default().push(s.value);
                        }
                        Err(m) => self.numpy_missing = Some(m),
                    }
                }
            }
        }
        Ok(())
    }

    /// Harness `h`'s rows: the FMA peak and every shape at every thread
    /// count, medians over the rounds.
    fn target_rows(
        &self,
        opts: &Options,
        h: usize,
        harness: &gemm::Harness,
        group: &Group,
    ) -> TargetRows {
        let mut peaks: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for runs in self.irc[h].values() {
            for r in runs {
                for (&t, &g) in &r.peaks {
                    peaks.entry(t).or_default().push(g);
                }
            }
        }
        let peak: Vec<PeakRow> = peaks
            .iter()
            .map(|(&t, v)| PeakRow {
                threads: t,
                gflops: Stats::of(v),
            })
            .collect();
        let mut rows = vec![];
        for (i, shape) in harness.shapes.iter().enumerate() {
            for &t in &opts.threads {
                let v: Vec<f64> = self.irc[h][&t].iter().map(|r| r.gflops[i]).collect();
                let irc = Stats::of(&v);
                let bf16 = self.bf16[h]
                    .get(&t)
                    .map(|runs| Stats::of(&runs.iter().map(|r| r.gflops[i]).collect::<Vec<_>>()));
                let np = match (&self.numpy_missing, self.numpy[h].get(&t)) {
                    (None, Some(runs)) => {
                        Side::Measured(Stats::of(&runs.iter().map(|r| r[i]).collect::<Vec<_>>()))
                    }
                    (Some(m), _) => Side::missing(m),
                    (None, None) => Side::missing(&Missing::Failed("no run".into())),
                };
                rows.push(GemmRow {
                    shape: *shape,
                    label: shape.describe(),
                    used_by: group.used_by[i].clone(),
                    threads: t,
                    irc,
                    pct_of_peak: 100.0 * irc.median / peak_of(&peak, t),
                    ratio: np.measured().map(|n| irc.median / n.median),
                    numpy: np,
                    bf16_ratio: bf16.map(|b| b.median / irc.median),
                    bf16,
                });
            }
        }
        TargetRows {
            target: harness.target.name().to_string(),
            caches: harness.caches.describe(),
            peak,
            gemm: rows,
        }
    }
}

/// The median FMA peak at `t` threads (NaN when not measured).
fn peak_of(peaks: &[PeakRow], t: usize) -> f64 {
    peaks
        .iter()
        .find(|p| p.threads == t)
        .map_or(f64::NAN, |p| p.gflops.median)
}

/// The median of the peak RSS of some runs, in MiB.
fn median_mb<T>(runs: &[T], kb: impl Fn(&T) -> u64) -> f64 {
    median(
        &runs
            .iter()
            .map(|r| kb(r) as f64 / 1024.0)
            .collect::<Vec<_>>(),
    )
}

impl Model {
    /// One round at every thread count: irc's training step, PyTorch's,
    /// then irc's forward and decode.
    fn round(
        &mut self,
        opts: &Options,
        torch_py: &Path,
        tag: &str,
        torch_label: &mut String,
        progress: &mut dyn FnMut(&str),
    ) -> Result<()> {
        for &t in &opts.threads {
            let name = &self.built.spec.model.name;
            progress(&format!("{tag}: {name}, training step, {t} thread(s)"));
            let dir = &self.built.dir;
            let run: TrainRun = step::run_worker(
                &opts.exe,
                "train",
                &self.spec_path,
                None,
                dir,
                &self.data,
                t,
                opts.steps,
            )?;
            self.train.entry(t).or_default().push(run);
            if self.torch_missing.is_none() {
                let r = match &self.hf {
                    Ok(hf) => {
                        // A bf16 spec beside PyTorch's own CPU bf16 (autocast).
                        let autocast = self.built.spec.build.dtype == crate::spec::DType::Bf16;
                        step::run_torch(
                            &opts.python,
                            torch_py,
                            hf,
                            &self.data,
                            t,
                            opts.steps,
                            autocast,
                        )
                    }
                    Err(e) => Err(e.clone()),
                };
                match r {
                    Ok(s) => {
                        *torch_label = s.label.clone();
                        self.torch.entry(t).or_default().push(s);
                    }
                    Err(e) => self.torch_missing = Some(e),
                }
            }
            progress(&format!("{tag}: {name}, forward and decode, {t} thread(s)"));
            let run: InferRun = step::run_worker(
                &opts.exe,
                "infer",
                &self.spec_path,
                None,
                dir,
                &self.data,
                t,
                opts.steps,
            )?;
            self.infer.entry(t).or_default().push(run);
            for p in &mut self.packed {
                let w = p.weights.name();
                progress(&format!(
                    "{tag}: {name}, decode with {w} weights, {t} thread(s)"
                ));
                let run: DecodeRun = step::run_worker(
                    &opts.exe,
                    "decode",
                    &self.spec_path,
                    Some(p.weights),
                    &p.dir,
                    &self.data,
                    t,
                    opts.steps,
                )?;
                p.decode.entry(t).or_default().push(run);
            }
        }
        Ok(())
    }

    /// The model's rows, one per thread count, medians over the rounds.
    fn rows(&self, opts: &Options, peaks: &[PeakRow]) -> ModelRows {
        let b = &self.built;
        let (batch, seq) = (b.spec.build.batch, b.spec.build.seq_len);
        let flops = step_flops(b);
        let rows = opts
            .threads
            .iter()
            .map(|&t| self.row(t, (batch * seq) as f64, flops, peak_of(peaks, t)))
            .collect();
        ModelRows {
            spec: self.spec_path.display().to_string(),
            name: b.spec.model.name.clone(),
            target: b.compiled.schedule.target.name().to_string(),
            dtype: b.spec.build.dtype.name().to_string(),
            weights: b.spec.build.weights.name().to_string(),
            batch,
            seq,
            params: b.compiled.memory.param_floats,
            step_gflop: flops * 1e-9,
            build_cold_s: self.build_cold_s,
            build_cached_s: self.build_cached_s,
            rows,
            packed: self
                .packed
                .iter()
                .map(|p| PackedRows {
                    weights: p.weights.name().to_string(),
                    rows: opts
                        .threads
                        .iter()
                        .map(|&t| {
                            let runs = &p.decode[&t];
                            let rates: Vec<f64> =
                                runs.iter().filter_map(|r| r.decode_tokens_per_s).collect();
                            DecodeRow {
                                threads: t,
                                decode_tokens_per_s: (!rates.is_empty()).then(|| Stats::of(&rates)),
                                decode_rss_mb: median_mb(runs, |r| r.decode_rss_kb),
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The row at `t` threads: `tokens` a step, `flops` a step, the FMA
    /// peak `peak` GFLOP/s.
    fn row(&self, t: usize, tokens: f64, flops: f64, peak: f64) -> ModelRow {
        let pct = |ms: f64| 100.0 * flops / (ms * 1e-3) * 1e-9 / peak;
        let train = &self.train[&t];
        let step_ms = Stats::of(&train.iter().map(|r| r.step_ms).collect::<Vec<_>>());
        let torch = match (&self.torch_missing, self.torch.get(&t)) {
            (None, Some(runs)) => {
                let ms = Stats::of(&runs.iter().map(|r| r.value.step_ms).collect::<Vec<_>>());
                Side::Measured(TorchStep {
                    step_ms: ms,
                    tokens_per_s: tokens / (ms.median * 1e-3),
                    pct_of_peak: pct(ms.median),
                    rss_mb: median_mb(runs, |r| r.rss_kb),
                    loss0: runs[0].value.loss0,
                })
            }
            (Some(e), _) => Side::missing(e),
            (None, None) => Side::missing(&Missing::Failed("no run".into())),
        };
        let infer = &self.infer[&t];
        let forward_ms = Stats::of(&infer.iter().map(|r| r.forward_ms).collect::<Vec<_>>());
        let decode: Vec<f64> = infer.iter().filter_map(|r| r.decode_tokens_per_s).collect();
        ModelRow {
            threads: t,
            step_ms,
            tokens_per_s: tokens / (step_ms.median * 1e-3),
            pct_of_peak: pct(step_ms.median),
            rss_mb: median_mb(train, |r| r.rss_kb),
            loss0: train[0].loss0,
            ratio: torch.measured().map(|p| p.step_ms.median / step_ms.median),
            torch,
            forward_ms,
            forward_tokens_per_s: tokens / (forward_ms.median * 1e-3),
            decode_tokens_per_s: (!decode.is_empty()).then(|| Stats::of(&decode)),
            decode_rss_mb: median_mb(infer, |r| r.decode_rss_kb),
            infer_rss_mb: median_mb(infer, |r| r.rss_kb),
        }
    }
}
