//! `irc run SPEC`: every stage from one spec, in order, each skipped when
//! the hash of its inputs matches the one recorded by its last run.
//!
//! | stage | output (in the run directory) | cache key (recorded in) |
//! |---|---|---|
//! | data | `data/train.jsonl`, `val.jsonl`, `rejected.jsonl` | `[data]` (but `packing`, `mask_prompt`, `exemplars`) + source contents (`data/manifest.json`) |
//! | tokenizer | `data/tokenizer.json` | `[tokenizer]` + `train.jsonl` (`data/tokenizer.meta.json`) |
//! | tokens | `data/train.tok`, `val.tok` | `tokenizer.json` + `train.jsonl` + `val.jsonl` + `exemplars` (`data/tokens.meta.json`) |
//! | train | `latest.safetensors`, `checkpoints/`, `metrics.jsonl` | `[model]`, `[build]`, `[train]` (but threads), `packing`, `mask_prompt`, the token files, `val.jsonl` (`train.meta.json`) |
//! | eval | `eval.json`, `samples.json` | final checkpoint + `[generate]` + sample count + held-out data (`eval.meta.json`) |
//! | report | `report.html` | `metrics.jsonl` + `eval.json` + `samples.json` (`report.meta.json`) |
//!
//! Every key also holds the irc version. A stage is up to date when its
//! recorded key matches and its outputs are still there (the data stages
//! also check their outputs' hashes). Training records its key before the
//! first step and `finished` after the last: a run stopped part way (Ctrl-C,
//! a kill, `--stop-after`) resumes from `latest.safetensors` when the key
//! still matches, and since resumed training is bit-identical, finishes with
//! the weights, eval and report an uninterrupted run gives. A changed key
//! starts training afresh (stale checkpoints are removed).
//!
//! `--quick` runs the same pipeline into `<run>-quick` with training capped
//! at [`QUICK_STEPS`] optimizer steps (the LR schedule spans those steps),
//! no generation during training (`eval_samples = 0`, val loss at the end
//! only), and `[eval].quick_samples` held-out prompts instead of
//! `[eval].samples`.

use crate::data::ingest::Manifest;
use crate::data::pipeline::{ingest_stage, tokenizer_stage, tokens_stage};
use crate::data::prep::{Batcher, EvalBatches, TokenSet};
use crate::error::{At, Error, Result};
use crate::eval::EvalResult;
use crate::model;
use crate::rundir::{resolve_checkpoint, DataDir, RunDir};
use crate::spec::GenerateConfig;
use crate::spec::Spec;
use crate::tokenizer::Tokenizer;
use crate::train::{self, DataSummary, TrainOptions};
use crate::util::{atomic_write, sha256_hex};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Optimizer steps of a `--quick` run (fewer when the recipe has fewer).
pub const QUICK_STEPS: usize = 120;

/// What the command line adds to the spec.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run directory (default: `[train].out`, else `runs/<name>`; `--quick`
    /// appends `-quick`).
    pub out: Option<PathBuf>,
    /// The short pipeline (see the module doc).
    pub quick: bool,
    /// Threads for training and generation (0: the spec's).
    pub threads: usize,
    /// Stop training after this many steps (resumed by the next run).
    pub stop_after: Option<usize>,
    /// No status lines or progress bars.
    pub quiet: bool,
}

/// One stage's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// `data`, `tokenizer`, `tokens`, `train`, `eval` or `report`.
    pub name: &'static str,
    /// False when it was up to date.
    pub ran: bool,
    /// Wall time.
    pub seconds: f64,
    /// One line on what it did or holds.
    pub note: String,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The stages in order (eval and report are absent when training
    /// stopped before its last step).
    pub stages: Vec<Stage>,
    /// Training reached its last step.
    pub finished: bool,
    /// The report, when written or up to date.
    pub report: Option<PathBuf>,
    /// The evaluation, when there is one.
    pub eval: Option<EvalResult>,
}

impl RunSummary {
    /// The stage called `name`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// `train.meta.json`: the training key and how far training got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainMeta {
    /// Hash of everything training reads.
    pub inputs_hash: String,
    /// True once the last step's checkpoint is written.
    pub finished: bool,
    /// Steps done.
    pub steps: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
}

fn read_json<T: for<'de> Deserialize<'de>>(p: &Path) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

fn recorded_hash(p: &Path) -> Option<String> {
    let v: serde_json::Value = read_json(p)?;
    v.get("inputs_hash")?.as_str().map(str::to_string)
}

fn file_hash(p: &Path) -> Result<String> {
    Ok(sha256_hex(&std::fs::read(p).at(p.display())?))
}

/// `runs/x` → `runs/x-quick`.
pub fn quick_dir(run: &Path) -> PathBuf {
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "run".into());
    run.with_file_name(format!("{name}-quick"))
}

struct Printer {
    quiet: bool,
}

impl Printer {
    fn stage(&self, s: &Stage) {
        if !self.quiet {
            println!(
                "{:<9} {:<10} {:>7.1}s  {}",
                s.name,
                if s.ran { "ran" } else { "up to date" },
                s.seconds,
                s.note
            );
        }
    }
}

/// Run every stage of `spec_path` (see the module doc).
pub fn run(spec_path: &Path, opts: &RunOptions) -> Result<RunSummary> {
    run_spec(Spec::load(spec_path)?, opts)
}

/// What the stages of one `irc run` share: the spec and options, the run
/// directory, and what earlier stages made for later ones.
struct Pipeline<'a> {
    spec: Spec,
    opts: &'a RunOptions,
    dir: RunDir,
    manifest: Option<Manifest>,
    tokenizer: Option<Tokenizer>,
    train_set: Option<TokenSet>,
    eval: Option<EvalResult>,
}

/// What a stage's action reports back to the loop.
struct Outcome {
    /// False when the stage was up to date.
    ran: bool,
    /// The status line's note.
    note: String,
    /// Stop after this stage's line, printing this (training stopped early).
    stop: Option<String>,
    /// Fail after this stage's line (training interrupted).
    error: Option<Error>,
}

impl Outcome {
    fn done(ran: bool, note: String) -> Outcome {
        Outcome {
            ran,
            note,
            stop: None,
            error: None,
        }
    }
}

/// One stage of `irc run` (the module doc's table). `inputs` and `outputs`
/// are there for the reader; the action computes and checks the key.
#[allow(dead_code)]
struct StageDef {
    name: &'static str,
    /// What its cache key hashes.
    inputs: &'static str,
    /// What it writes in the run directory.
    outputs: &'static str,
    action: fn(&mut Pipeline) -> Result<Outcome>,
}

/// The stages in order; [`run_spec`] walks them.
const STAGES: [StageDef; 6] = [
    StageDef {
        name: "data",
        inputs: "[data] (but packing, mask_prompt, exemplars) + source contents",
        outputs: "data/train.jsonl, val.jsonl, rejected.jsonl, manifest.json",
        action: data_stage,
    },
    StageDef {
        name: "tokenizer",
        inputs: "[tokenizer] + train.jsonl",
        outputs: "data/tokenizer.json",
        action: tokenizer_stage_action,
    },
    StageDef {
        name: "tokens",
        inputs: "tokenizer.json + train.jsonl + val.jsonl + exemplars",
        outputs: "data/train.tok, val.tok",
        action: tokens_stage_action,
    },
    StageDef {
        name: "train",
        inputs:
            "[model], [build], [train] (but threads), packing, mask_prompt, token files, val.jsonl",
        outputs: "latest.safetensors, checkpoints/, metrics.jsonl, data.json",
        action: train_stage,
    },
    StageDef {
        name: "eval",
        inputs: "final checkpoint + [generate] + sample count + held-out data",
        outputs: "eval.json, samples.json",
        action: eval_stage,
    },
    StageDef {
        name: "report",
        inputs: "metrics.jsonl + eval.json + samples.json",
        outputs: "report.html",
        action: report_stage,
    },
];

/// Run every stage of a loaded spec (its path places its sources).
pub fn run_spec(mut spec: Spec, opts: &RunOptions) -> Result<RunSummary> {
    let mut run = train::run_dir(&spec, opts.out.as_deref());
    if opts.quick {
        run = quick_dir(&run);
    }
    if opts.threads > 0 {
        spec.train.threads = opts.threads;
    }
    // Refused on every rank before any stage runs.
    crate::dist::Shard::new(&spec.path, spec.train.grad_accum)?;
    if crate::dist::is_follower() {
        return follow(spec, run, opts);
    }
    train::check_inputs(&spec)?;
    std::fs::create_dir_all(&run).at(run.display())?;
    let out = Printer { quiet: opts.quiet };
    if !opts.quiet {
        println!(
            "irc run {}{} -> {}",
            spec.path.display(),
            if opts.quick { " --quick" } else { "" },
            run.display()
        );
    }
    let mut p = Pipeline {
        spec,
        opts,
        dir: RunDir::new(&run),
        manifest: None,
        tokenizer: None,
        train_set: None,
        eval: None,
    };
    let mut stages = Vec::new();
    for def in &STAGES {
        let t = Instant::now();
        let o = (def.action)(&mut p)?;
        stages.push(Stage {
            name: def.name,
            ran: o.ran,
            seconds: t.elapsed().as_secs_f64(),
            note: o.note,
        });
        out.stage(stages.last().unwrap());
        if let Some(e) = o.error {
            return Err(e);
        }
        if let Some(msg) = o.stop {
            if !opts.quiet {
                println!("{msg}");
            }
            return Ok(RunSummary {
                run_dir: run,
                stages,
                finished: false,
                report: None,
                eval: None,
            });
        }
    }
    let report = p.dir.report();
    let eval = p.eval.take().expect("the eval stage ran");
    if !opts.quiet {
        println!();
        print!("{}", eval.to_table());
        println!();
        println!("report: {}", report.display());
    }
    Ok(RunSummary {
        run_dir: run,
        stages,
        finished: true,
        report: Some(report),
        eval: Some(eval),
    })
}

/// Stage 1: ingest and gates.
fn data_stage(p: &mut Pipeline) -> Result<Outcome> {
    let (manifest, ran) = ingest_stage(&p.spec.data, p.dir.data().path())?;
    let fams: Vec<String> = manifest
        .families
        .iter()
        .map(|(k, c)| format!("{k} {}", c.kept))
        .collect();
    let note = format!(
        "{} rows kept of {} ({} train, {} val; {}), {} rejected",
        manifest.kept,
        manifest.read,
        manifest.train,
        manifest.val,
        fams.join(", "),
        manifest.rejected.values().sum::<usize>()
    );
    p.manifest = Some(manifest);
    Ok(Outcome::done(ran, note))
}

/// Stage 2: the tokenizer.
fn tokenizer_stage_action(p: &mut Pipeline) -> Result<Outcome> {
    let manifest = p.manifest.as_ref().expect("the data stage ran");
    let (tokenizer, ran) = tokenizer_stage(&p.spec.tokenizer, manifest, p.dir.data().path())?;
    train::check_vocab(&p.spec, &tokenizer)?;
    let note = format!("{} ids", tokenizer.vocab_size());
    p.tokenizer = Some(tokenizer);
    Ok(Outcome::done(ran, note))
}

/// Stage 3: the token files.
fn tokens_stage_action(p: &mut Pipeline) -> Result<Outcome> {
    let manifest = p.manifest.as_ref().expect("the data stage ran");
    let tokenizer = p.tokenizer.as_ref().expect("the tokenizer stage ran");
    let data = p.dir.data();
    let ran = tokens_stage(manifest, tokenizer, data.path(), p.spec.data.exemplars)?;
    let train_set = TokenSet::load(&data.train_tokens())?;
    let val_set = TokenSet::load(&data.val_tokens())?;
    let note = format!(
        "{} train tokens, {} val tokens",
        train_set.len(),
        val_set.len()
    );
    p.train_set = Some(train_set);
    Ok(Outcome::done(ran, note))
}

/// `irc run` on a rank other than 0 of an MPI run: rank 0 runs every
/// stage and writes; this rank waits for its word at the training stage
/// (train, and whether from a checkpoint, or nothing to do), trains its
/// shard of every step with it, and leaves the eval and the report to it.
fn follow(mut spec: Spec, run: PathBuf, opts: &RunOptions) -> Result<RunSummary> {
    let w = crate::dist::world().expect("a follower has a world");
    let mut word = [0.0f64; 2];
    w.broadcast_from_root(&mut word)?;
    let mut summary = RunSummary {
        run_dir: run.clone(),
        stages: vec![],
        finished: true,
        report: None,
        eval: None,
    };
    if word[0] == 0.0 {
        return Ok(summary); // training was up to date
    }
    let train_set = TokenSet::load(&RunDir::new(&run).data().train_tokens())?;
    training_spec(&mut spec, opts, train_set)?;
    let s = train::train(
        &spec,
        &TrainOptions {
            resume: (word[1] > 0.0).then(|| run.clone()),
            out: Some(run),
            stop_after: opts.stop_after,
            quiet: true,
        },
    )?;
    summary.finished = s.steps >= s.total_steps && !s.interrupted;
    Ok(summary)
}

/// Under mpirun, rank 0 tells the other ranks at the training stage
/// whether they train (`resume`: from the run folder's checkpoint).
fn tell_followers(train: bool, resume: bool) -> Result<()> {
    if let Some(w) = crate::dist::world() {
        w.broadcast_from_root(&mut [train as u8 as f64, resume as u8 as f64])?;
    }
    Ok(())
}

/// The spec training runs: `--quick` caps the recipe's steps and leaves
/// generation out of training. Returns the recipe's own steps.
fn training_spec(spec: &mut Spec, opts: &RunOptions, train_set: TokenSet) -> Result<usize> {
    let batcher = Batcher::with_options(
        train_set,
        spec.build.batch,
        spec.build.seq_len,
        spec.train.grad_accum,
        spec.train.seed,
        spec.data.packing,
        spec.data.mask_prompt,
    )?;
    let recipe_steps = spec
        .train
        .steps
        .unwrap_or(spec.train.epochs * batcher.steps_per_epoch())
        .max(1);
    drop(batcher);
    if opts.quick {
        spec.train.steps = Some(recipe_steps.min(QUICK_STEPS));
        spec.train.eval_every = 0;
        spec.train.eval_samples = 0;
    }
    Ok(recipe_steps)
}

/// Stage 4: training, resumed when its key is unchanged.
fn train_stage(p: &mut Pipeline) -> Result<Outcome> {
    let (spec, opts, dir) = (&mut p.spec, p.opts, &p.dir);
    let train_set = p.train_set.take().expect("the tokens stage ran");
    let recipe_steps = training_spec(spec, opts, train_set)?;
    let key = train_key(spec, &spec.data, &dir.data())?;
    let meta_path = dir.train_meta();
    let latest = dir.latest();
    let meta: Option<TrainMeta> = read_json(&meta_path);
    let same = meta.as_ref().is_some_and(|m| m.inputs_hash == key);
    if let Some(m) = meta.filter(|m| same && m.finished && latest.exists()) {
        tell_followers(false, false)?;
        return Ok(Outcome::done(false, format!("{} steps", m.total_steps)));
    }
    // Resumed from the newest valid of latest.safetensors and checkpoints/
    // (train::checkpoint::resume), if any has a readable header.
    let has_checkpoint = !train::checkpoint::candidates(dir.path())
        .newest_first
        .is_empty();
    let resume = (same && has_checkpoint).then(|| dir.path().to_path_buf());
    if resume.is_none() {
        // Another recipe's checkpoints must not be resumed from.
        for path in [dir.checkpoints(), latest.clone()] {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).at(path.display())?;
            } else if path.exists() {
                std::fs::remove_file(&path).at(path.display())?;
            }
        }
    }
    let total = spec.train.steps.unwrap_or(recipe_steps);
    write_train_meta(&meta_path, &key, false, 0, total)?;
    tell_followers(true, resume.is_some())?;
    if let (Some(r), false) = (&resume, opts.quiet) {
        println!("train     resuming from {}", r.display());
    }
    let s = train::train(
        spec,
        &TrainOptions {
            resume,
            out: Some(dir.path().to_path_buf()),
            stop_after: opts.stop_after,
            quiet: opts.quiet,
        },
    )?;
    let finished = s.steps >= s.total_steps;
    write_train_meta(&meta_path, &key, finished, s.steps, s.total_steps)?;
    let loss = s
        .losses
        .last()
        .map(|l| format!(", train loss {l:.4}"))
        .unwrap_or_default();
    let val = s
        .val_loss
        .map(|v| format!(", val loss {v:.4}"))
        .unwrap_or_default();
    let dropped = DataSummary::read(dir.path())?
        .and_then(|d| d.dropped_note())
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let mut o = Outcome::done(
        true,
        format!("step {}/{}{loss}{val}{dropped}", s.steps, s.total_steps),
    );
    if s.interrupted {
        o.error = Some(Error::new(format!(
            "interrupted at step {} of {}; {} holds the checkpoint, and running the same command again resumes from it",
            s.steps,
            s.total_steps,
            latest.display()
        )));
    } else if !finished {
        o.stop = Some(format!(
            "stopped before the last step; run the same command again to resume from {}",
            latest.display()
        ));
    }
    Ok(o)
}

/// Stage 5: generations from the held-out prompts, scored, and the losses.
fn eval_stage(p: &mut Pipeline) -> Result<Outcome> {
    let (spec, opts, dir) = (&p.spec, p.opts, &p.dir);
    let gen_cfg = &spec.generate;
    let n = if opts.quick {
        spec.eval.quick_samples
    } else {
        spec.eval.samples
    };
    let key = eval_key(gen_cfg, n, dir)?;
    let eval_meta = dir.eval_meta();
    let eval_json = dir.eval();
    let fresh =
        recorded_hash(&eval_meta).as_deref() == Some(key.as_str()) && dir.samples().exists();
    if let (true, Ok(e)) = (fresh, EvalResult::read_json(&eval_json)) {
        let note = eval_note(&e);
        p.eval = Some(e);
        return Ok(Outcome::done(false, note));
    }
    let spinner = if opts.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message(format!(
            "eval: generating from {n} held-out prompts (temperature {}, top-k {}, {} candidate(s) each) and the val loss",
            gen_cfg.temperature, gen_cfg.top_k, gen_cfg.candidates
        ));
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        b
    };
    let threads = spec.train.threads;
    let mut e = crate::evaluate::eval_run(
        dir.path(),
        n,
        &gen_cfg.sampling(),
        gen_cfg.max_tokens,
        threads,
    )?;
    e.train_loss = train_loss(dir.path(), threads)?;
    e.write_json(&eval_json)?;
    spinner.finish_and_clear();
    atomic_write(
        &eval_meta,
        serde_json::to_string_pretty(
            &json!({ "inputs_hash": key, "samples": n, "generate": gen_cfg }),
        )?
        .as_bytes(),
    )?;
    let note = eval_note(&e);
    p.eval = Some(e);
    Ok(Outcome::done(true, note))
}

/// Stage 6: the HTML report.
fn report_stage(p: &mut Pipeline) -> Result<Outcome> {
    let dir = &p.dir;
    let report = dir.report();
    let mut key = format!("irc-report v1 {}\n", env!("CARGO_PKG_VERSION"));
    for f in [RunDir::METRICS, RunDir::EVAL, RunDir::SAMPLES] {
        key.push_str(&format!("{f} {}\n", file_hash(&dir.file(f))?));
    }
    let key = sha256_hex(key.as_bytes());
    let report_meta = dir.report_meta();
    let ran = recorded_hash(&report_meta).as_deref() != Some(key.as_str()) || !report.exists();
    if ran {
        if let Some(w) = crate::report::report_run(dir.path(), &report)? {
            eprintln!("warning: {w}");
        }
        atomic_write(
            &report_meta,
            serde_json::to_string_pretty(&json!({ "inputs_hash": key }))?.as_bytes(),
        )?;
    }
    Ok(Outcome::done(ran, report.display().to_string()))
}

fn write_train_meta(p: &Path, key: &str, finished: bool, steps: usize, total: usize) -> Result<()> {
    let m = TrainMeta {
        inputs_hash: key.to_string(),
        finished,
        steps,
        total_steps: total,
    };
    atomic_write(p, serde_json::to_string_pretty(&m)?.as_bytes())
}

/// What training reads: the model, build and train sections (thread
/// counts, the all-reduce's overlap and the output folder aside: results
/// do not depend on them),
/// the windowing options, the token files and the held-out rows (their
/// prompts are generated from during training).
fn train_key(spec: &Spec, data: &crate::data::DataConfig, data_dir: &DataDir) -> Result<String> {
    let mut build = spec.build.clone();
    build.threads = 0;
    let mut tr = spec.train.clone();
    tr.threads = 0;
    tr.overlap_allreduce = true;
    tr.out = None;
    let mut files = serde_json::Map::new();
    for f in [
        DataDir::TOKENIZER,
        DataDir::TRAIN_TOKENS,
        DataDir::VAL_TOKENS,
        DataDir::VAL_ROWS,
    ] {
        files.insert(f.into(), json!(file_hash(&data_dir.file(f))?));
    }
    let key = json!({
        "model": spec.model, "build": build, "train": tr,
        "packing": data.packing, "mask_prompt": data.mask_prompt,
        "files": files, "irc": env!("CARGO_PKG_VERSION"),
    });
    Ok(sha256_hex(key.to_string().as_bytes()))
}

/// What the eval reads: the final checkpoint, the sampling settings, the
/// number of prompts and the held-out data.
fn eval_key(g: &GenerateConfig, n: usize, run: &RunDir) -> Result<String> {
    let data = run.data();
    // The key names stay as first written, so older runs stay up to date.
    let key = json!({
        "checkpoint": file_hash(&run.latest())?,
        "generate": g, "samples": n,
        "val.jsonl": file_hash(&data.val_rows())?,
        "train.tok": file_hash(&data.train_tokens())?,
        "val.tok": file_hash(&data.val_tokens())?,
        "irc": env!("CARGO_PKG_VERSION"),
    });
    Ok(sha256_hex(key.to_string().as_bytes()))
}

/// The loss over the first training batches (as many as the val set has),
/// measured like the val loss, with the final weights, on the training
/// build (the spec it recorded, as `irc eval` does for the val loss).
fn train_loss(run: &Path, threads: usize) -> Result<Option<f64>> {
    let dir = RunDir::new(run);
    let spec = Spec::load(&dir.spec())?;
    let (data, _) = train::data_configs(&spec)?;
    let built = model::build(&spec, &dir.build())?;
    let mut s = built.session(threads)?;
    let ckpt = resolve_checkpoint(run);
    s.load_weights_file(&ckpt)?;
    let (bs, t) = (built.compiled.program.batch, built.compiled.program.seq);
    let val = TokenSet::load(&dir.data().val_tokens())?;
    let batches = EvalBatches::new(val, bs, t, data.packing, data.mask_prompt)?.len();
    if batches == 0 {
        return Ok(None);
    }
    train::val_loss(
        &mut s,
        &built,
        &dir.data().train_tokens(),
        batches,
        data.mask_prompt,
        data.packing,
    )
}

fn eval_note(e: &EvalResult) -> String {
    let mut parts = vec![format!("valid SVG {}", e.valid_svg.show())];
    for (k, f) in &e.families {
        let mut p = format!(
            "{}: valid {}",
            crate::eval::family_title(k),
            f.valid_svg.show()
        );
        if f.prompt_success.total > 0 {
            p.push_str(&format!(", success {}", f.prompt_success.show()));
        }
        parts.push(p);
    }
    if let Some(v) = e.val_loss {
        parts.push(format!("val loss {v:.4}"));
    }
    parts.join("; ")
}
