//! `irc train`: data → tokenizer → token windows → compiled training steps
//! with AdamW, evaluation, metrics and resumable checkpoints.

pub mod checkpoint;
mod data_summary;
pub use data_summary::{DataSummary, Lengths};

use crate::data::pipeline::{prepare, Prepared};
use crate::data::prep::{Batcher, EvalBatches, TokenSet};
use crate::data::DataConfig;
use crate::dist::{self, Shard, World};
use crate::error::{At, Error, Result};
use crate::model::{self, Built};
pub use crate::rundir::resolve_checkpoint;
use crate::rundir::RunDir;
use crate::runtime::{AdamwConfig, Session};
use crate::spec::Spec;
use crate::tokenizer::{Tokenizer, TokenizerConfig};
use crate::util::atomic_write;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Set by Ctrl-C; the loop checkpoints and stops at the next step boundary.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// True while the training loop runs (and so watches [`INTERRUPTED`]).
static TRAINING: AtomicBool = AtomicBool::new(false);
static HANDLER: OnceLock<()> = OnceLock::new();

fn install_ctrlc() {
    HANDLER.get_or_init(|| {
        // If another handler owns SIGINT (an embedding host), keep theirs.
        let _ = ctrlc::set_handler(|| {
            if TRAINING.load(Ordering::SeqCst) {
                INTERRUPTED.store(true, Ordering::SeqCst);
            } else {
                // Outside the loop nobody would look at the flag: exit as
                // the default handler would (every file irc writes is
                // written atomically, so none is left half-written).
                std::process::exit(130);
            }
        });
    });
}

/// Clears [`TRAINING`] when the loop ends, however it ends.
struct TrainingGuard;

impl TrainingGuard {
    fn start() -> Self {
        INTERRUPTED.store(false, Ordering::SeqCst);
        TRAINING.store(true, Ordering::SeqCst);
        TrainingGuard
    }
}

impl Drop for TrainingGuard {
    fn drop(&mut self) {
        TRAINING.store(false, Ordering::SeqCst);
    }
}

/// Options the command line adds to the spec's `[train]`.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from this checkpoint (a file, or a run directory: its newest
    /// valid checkpoint, see [`checkpoint::resume`]).
    pub resume: Option<PathBuf>,
    /// Run directory (default: `[train].out`, else `runs/<name>`).
    pub out: Option<PathBuf>,
    /// Stop after this many steps (the schedule still spans the full run).
    pub stop_after: Option<usize>,
    /// No progress bar or per-eval lines.
    pub quiet: bool,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub run_dir: PathBuf,
    /// Steps done in total (including those before a resume).
    pub steps: usize,
    pub total_steps: usize,
    /// Train loss of every step this process ran.
    pub losses: Vec<f32>,
    pub val_loss: Option<f64>,
    pub checkpoint: PathBuf,
    pub interrupted: bool,
}

/// The `[data]` and `[tokenizer]` sections (typed and checked when the
/// spec was read).
pub fn data_configs(spec: &Spec) -> Result<(DataConfig, TokenizerConfig)> {
    Ok((spec.data.clone(), spec.tokenizer.clone()))
}

/// The run directory of a spec.
pub fn run_dir(spec: &Spec, out: Option<&Path>) -> PathBuf {
    out.map(Path::to_path_buf)
        .or_else(|| spec.train.out.clone())
        .unwrap_or_else(|| PathBuf::from("runs").join(&spec.model.name))
}

/// Prepare the data for a spec into `run/data` (cached by content hash).
pub fn prepare_data(spec: &Spec, run: &Path) -> Result<(Prepared, Tokenizer)> {
    let (data, tok) = data_configs(spec)?;
    check_inputs(spec)?;
    let prepared = prepare(&data, &tok, RunDir::new(run).data().path())?;
    let tokenizer = Tokenizer::load(&prepared.tokenizer)?;
    check_vocab(spec, &tokenizer)?;
    Ok((prepared, tokenizer))
}

/// The spec's `[data]` names something to read: sources, the synthetic
/// format, or synthetic rows.
pub fn check_sources(spec: &Spec, data: &DataConfig) -> Result<()> {
    if data.source.is_empty()
        && data.format != crate::data::Format::Synthetic
        && data.synthetic == 0
    {
        return Err(Error::new(format!(
            "{}: [data].source: missing; expected the corpus files or folders to train on (or synthetic = N, or format = \"synthetic\")",
            spec.path.display()
        )));
    }
    Ok(())
}

/// What a run reads besides the spec is there, before anything runs: the
/// `[data]` sources (or synthetic rows) and a `[tokenizer].path`. `irc run`
/// checks this first, and `irc sweep` for every variant before running any.
pub fn check_inputs(spec: &Spec) -> Result<()> {
    check_sources(spec, &spec.data)?;
    let named = spec.data.source.iter().chain(&spec.tokenizer.path);
    for p in named {
        crate::util::user_path(p)?;
    }
    Ok(())
}

/// The tokenizer's ids fit the model's vocabulary.
pub fn check_vocab(spec: &Spec, tokenizer: &Tokenizer) -> Result<()> {
    if tokenizer.vocab_size() > spec.model.vocab_size {
        return Err(Error::new(format!(
            "{}: [model].vocab_size = {} is smaller than the tokenizer's {} ids; raise it or lower [tokenizer].vocab_size",
            spec.path.display(),
            spec.model.vocab_size,
            tokenizer.vocab_size()
        )));
    }
    Ok(())
}

/// Mean validation cross-entropy per unmasked token over up to `limit`
/// batches (0 = all).
pub fn val_loss(
    s: &mut Session,
    b: &Built,
    val: &Path,
    limit: usize,
    mask_prompt: bool,
    packing: crate::data::Packing,
) -> Result<Option<f64>> {
    let (bs, t) = (b.compiled.program.batch, b.compiled.program.seq);
    let set = TokenSet::load(val)?;
    if set.is_empty() {
        return Ok(None);
    }
    let batches = EvalBatches::new(set, bs, t, packing, mask_prompt)?;
    let (mut total, mut count) = (0.0f64, 0usize);
    for (i, mb) in batches.enumerate() {
        if limit > 0 && i >= limit {
            break;
        }
        let n = mb.unmasked();
        if n == 0 {
            continue;
        }
        let (loss, _) = s.loss(&mb.inputs, &mb.targets, bs, t)?;
        total += loss as f64 * n as f64;
        count += n;
    }
    Ok((count > 0).then(|| total / count as f64))
}

/// The first parameter whose gradient is not finite.
fn first_bad_gradient(s: &Session) -> Option<String> {
    let g = s.grads().ok()?; // none: no training step has run
    s.library()
        .param_table
        .iter()
        .find(|p| {
            g[p.offset..p.offset + p.numel]
                .iter()
                .any(|x| !x.is_finite())
        })
        .map(|p| p.name.clone())
}

/// Keep the metrics lines up to `step` (after a resume), then append.
fn open_metrics(path: &Path, keep_until: usize) -> Result<std::fs::File> {
    if keep_until > 0 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let kept: String = text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v["step"].as_u64())
                        .is_some_and(|s| s as usize <= keep_until)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            atomic_write(path, kept.as_bytes())?;
        }
    } else {
        atomic_write(path, b"")?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .at(path.display())
}

/// A training run between its steps: the data, the compiled model and its
/// session, and where the run writes.
struct Trainer<'a> {
    spec: &'a Spec,
    dir: RunDir,
    prepared: Prepared,
    data_cfg: DataConfig,
    tok: Tokenizer,
    built: Built,
    s: Session,
    batcher: Batcher,
    /// Steps of the whole schedule.
    total: usize,
    /// The batch-1 generation session and the held-out prompts it samples
    /// at evaluations (with `eval_samples > 0`).
    sampler: Option<(Session, Vec<String>)>,
    latest: PathBuf,
    /// Under mpirun: the world, and which of each step's micro-batches
    /// this rank runs (all of them without MPI).
    world: Option<&'static World>,
    shard: Shard,
    /// Every rank's Ctrl-C, agreed at the last step (under mpirun the
    /// ranks stop at the same step or none does).
    stop: bool,
    /// A rank other than 0 builds its library here, not in the run folder.
    _scratch: Option<tempfile::TempDir>,
}

/// What one optimizer step measured.
struct StepDone {
    loss: f32,
    lr: f64,
    grad_norm: f32,
    tokens_per_s: f64,
    /// Under mpirun: the time the gradient all-reduce took.
    comm: Option<Comm>,
}

/// The time of one step's gradient all-reduce (seconds).
struct Comm {
    /// In MPI calls of the all-reduce on this rank's thread: after the
    /// backward, and with the overlap in the hook during it too.
    allreduce: f64,
    /// After the backward until the sum was complete: the part of the
    /// all-reduce the step waits for.
    after_backward: f64,
    /// Without the overlap: the barrier before the all-reduce, waiting
    /// for the slowest rank (with it, that wait is in `after_backward`).
    barrier: Option<f64>,
}

/// Train the spec's model on its data.
pub fn train(spec: &Spec, opts: &TrainOptions) -> Result<Summary> {
    let tr = &spec.train;
    let run = run_dir(spec, opts.out.as_deref());
    // Under mpirun only rank 0 writes and prints (crate::dist).
    let follower = dist::is_follower();
    let quiet_opts;
    let opts = if follower {
        quiet_opts = TrainOptions {
            quiet: true,
            ..opts.clone()
        };
        &quiet_opts
    } else {
        opts
    };
    let (mut trainer, mut step) = Trainer::open(spec, &run, opts)?;
    let total = trainer.total;
    let mut metrics = match follower {
        true => None,
        false => Some(open_metrics(&trainer.dir.metrics(), step)?),
    };
    install_ctrlc();
    let _training = TrainingGuard::start();

    let end = opts.stop_after.map_or(total, |n| (step + n).min(total));
    let bar = progress_bar(opts.quiet, total, step);
    let mut losses = vec![];
    let mut last_val = None;
    let mut checkpoint = trainer.latest.clone();
    let mut interrupted = false;
    while step < end {
        let done = trainer.step(step, &bar)?;
        step += 1;
        let loss = done.loss;
        losses.push(loss);
        let mut line = json!({ "step": step, "epoch": trainer.batcher.epoch(), "train_loss": loss, "lr": done.lr, "grad_norm": done.grad_norm, "tokens_per_s": done.tokens_per_s });
        if let (Some(w), Some(c)) = (trainer.world, &done.comm) {
            line["ranks"] = json!(w.size);
            line["allreduce_s"] = json!(c.allreduce);
            line["allreduce_wait_s"] = json!(c.after_backward);
            if let Some(b) = c.barrier {
                line["wait_s"] = json!(b);
            }
        }
        let eval_now =
            !follower && ((tr.eval_every > 0 && step % tr.eval_every == 0) || step == total);
        if eval_now {
            last_val = trainer.evaluate(&mut line)?;
            if let Some(v) = last_val {
                line["val_loss"] = json!(v);
                if !opts.quiet {
                    bar.println(format!(
                        "step {step}: train loss {loss:.4}, val loss {v:.4}"
                    ));
                }
            }
        }
        if let Some(m) = metrics.as_mut() {
            writeln!(m, "{line}").at(RunDir::METRICS)?;
        }
        bar.set_position(step as u64);
        bar.set_message(format!("loss {loss:.4} | {:.0} tok/s", done.tokens_per_s));
        if (tr.checkpoint_every > 0 && step % tr.checkpoint_every == 0) || step == end {
            checkpoint = trainer.save(step)?;
        }
        if trainer.stop_requested() {
            if step != end {
                checkpoint = trainer.save(step)?;
            }
            interrupted = true;
            bar.println(format!(
                "interrupted: saved {} at step {step}",
                checkpoint.display()
            ));
            break;
        }
    }
    bar.finish_and_clear();
    Ok(Summary {
        run_dir: run,
        steps: step,
        total_steps: total,
        losses,
        val_loss: last_val,
        checkpoint,
        interrupted,
    })
}

/// The step bar (hidden when quiet), at `step` of `total`.
fn progress_bar(quiet: bool, total: usize, step: usize) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(total as u64);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} step {pos}/{len} [{bar:30}] {msg} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    b.set_position(step as u64);
    b
}

/// `--resume` names a checkpoint whose header reads, at a step within the
/// schedule (see [`checkpoint::newest_step`]).
fn check_resumable(from: &Path, total: usize) -> Result<()> {
    match checkpoint::newest_step(from)? {
        Some(step) => check_step_in_schedule(from, step, total),
        None => Ok(()), // no candidate: the resume itself says why
    }
}

/// A checkpoint past the last step would "train" on a schedule that has
/// ended (the learning rate of a finished cosine, NaN losses).
fn check_step_in_schedule(from: &Path, step: usize, total: usize) -> Result<()> {
    if step > total {
        return Err(Error::new(format!(
            "{}: the checkpoint is at step {step}, past the schedule's {total} steps ([train].steps or epochs); expected a checkpoint of this recipe",
            from.display()
        )));
    }
    Ok(())
}

impl<'a> Trainer<'a> {
    /// Prepare the data into `run`, build the model, write the data summary
    /// and start from `opts.resume` or from fresh weights. Returns the
    /// trainer and the step it starts at.
    fn open(spec: &'a Spec, run: &Path, opts: &TrainOptions) -> Result<(Self, usize)> {
        let tr = &spec.train;
        // Checked on every rank before any work, so all refuse it alike.
        let shard = Shard::new(&spec.path, tr.grad_accum)?;
        let world = dist::world();
        let follower = dist::is_follower();
        if follower {
            // Rank 0 prepares the data and builds first; this rank then
            // reads what it made and writes nothing in the run folder.
            world.expect("a follower has a world").barrier()?;
        }
        let dir = RunDir::new(run);
        let (prepared, tok) = if follower {
            let p = crate::data::pipeline::existing(dir.data().path())?;
            let tok = Tokenizer::load(&p.tokenizer)?;
            (p, tok)
        } else {
            std::fs::create_dir_all(run).at(run.display())?;
            checkpoint::remove_stale_temporaries(&dir)?;
            prepare_data(spec, run)?
        };
        let (data_cfg, _) = data_configs(spec)?;
        let program = model::program(spec);
        let (bs, t) = (program.batch, program.seq);

        let train_set = TokenSet::load(&prepared.train)?;
        let mut batcher = Batcher::with_options(
            train_set,
            bs,
            t,
            tr.grad_accum,
            tr.seed,
            data_cfg.packing,
            data_cfg.mask_prompt,
        )?;
        if batcher.windows() == 0 {
            return Err(Error::new(format!(
                "{}: no training windows: the corpus is empty after the gates, or every row is longer than seq_len = {t}",
                spec.path.display()
            )));
        }
        let total = tr
            .steps
            .unwrap_or(tr.epochs * batcher.steps_per_epoch())
            .max(1);
        // A checkpoint that cannot be resumed is refused before the build
        // and the data summary are rewritten (from its header only).
        if let Some(r) = &opts.resume {
            check_resumable(r, total)?;
        }
        let scratch = match follower {
            true => Some(tempfile::tempdir().at("temporary build folder")?),
            false => None,
        };
        let build_dir = scratch
            .as_ref()
            .map_or_else(|| dir.build(), |t| t.path().join("build"));
        let built = model::build(spec, &build_dir)?;
        built.footprint().train().check(spec)?;
        let threads = match (tr.threads, world) {
            (0, Some(_)) => dist::default_threads(),
            (n, _) => n,
        };
        let mut s = built.session(threads)?;
        if !follower {
            let summary = DataSummary::of(&batcher, total);
            summary.write(run)?;
            if let (Some(note), false) = (summary.dropped_note(), opts.quiet) {
                eprintln!("note: {note} (a longer [build] seq_len keeps them)");
            }
        }
        let mut step = 0;
        if let Some(r) = &opts.resume {
            step = checkpoint::resume(&mut s, &mut batcher, r)?;
            check_step_in_schedule(r, step, total)?;
        } else {
            s.load_weights(&built.init_weights(tr.seed))?;
        }
        let sampler = match follower {
            true => None,
            false => eval_sampler(spec, &dir, run)?,
        };
        if let Some(w) = world {
            if !follower {
                w.barrier()?; // the followers may read the run folder now
            }
            w.agree(step as f64, "the step training starts from")?;
            w.agree(weights_checksum(s.params()), "the starting weights")?;
        }
        let latest = dir.latest();
        let trainer = Trainer {
            spec,
            dir,
            prepared,
            data_cfg,
            tok,
            built,
            s,
            batcher,
            total,
            sampler,
            latest,
            world,
            shard,
            stop: false,
            _scratch: scratch,
        };
        Ok((trainer, step))
    }

    /// One optimizer step after `step` done: the gradients of its
    /// micro-batches, then AdamW. A non-finite loss or AdamW's refusal stops
    /// training (see [`Trainer::diverged`]).
    fn step(&mut self, step: usize, bar: &indicatif::ProgressBar) -> Result<StepDone> {
        let tr = &self.spec.train;
        let (bs, t) = (
            self.built.compiled.program.batch,
            self.built.compiled.program.seq,
        );
        let tokens_per_step = (bs * t * tr.grad_accum) as f64;
        let started = Instant::now();
        self.s.zero_grads();
        // Every rank walks the whole step's micro-batches (so the data
        // position is the same everywhere) and runs its own shard of them.
        let mine = self.shard.mine();
        let overlap = match self.world {
            Some(w) if tr.overlap_allreduce => {
                let g = self.s.grads_mut()?;
                // SAFETY: the session (and so its gradient region) outlives
                // the step, and only the backward's last writes precede
                // the reduction of each range.
                Some(unsafe { w.overlap(g.as_mut_ptr(), g.len())? })
            }
            _ => None,
        };
        let mut losses = vec![0.0f64; tr.grad_accum];
        for (i, mb) in self.batcher.next_step().iter().enumerate() {
            if !mine.contains(&i) {
                continue;
            }
            let (x, y) = (&mb.inputs, &mb.targets);
            losses[i] = match &overlap {
                // Only the last micro-batch's gradients are the step's:
                // earlier ones accumulate here first.
                Some(o) if i + 1 == mine.end => {
                    let (hook, user) = o.hook();
                    // SAFETY: the overlap's state lives until finish, after.
                    unsafe { self.s.backward_reporting(x, y, bs, t, hook, user)? }
                }
                _ => self.s.backward(x, y, bs, t)?,
            } as f64;
        }
        let mut comm = None;
        if let Some(w) = self.world {
            comm = Some(self.reduce_grads(w, overlap)?);
            // Each loss is non-zero on one rank only, so the sums are
            // exact; the stop flag is set if any rank saw Ctrl-C.
            losses.push(INTERRUPTED.load(Ordering::SeqCst) as u8 as f64);
            w.reduce(&mut losses, dist::Op::Sum)?;
            self.stop = losses.pop().is_some_and(|f| f > 0.0);
        }
        let mut loss_sum = 0.0f64;
        for l in losses {
            loss_sum += l;
        }
        let loss = (loss_sum / tr.grad_accum as f64) as f32;
        let lr = tr.lr_at(step, self.total);
        let cfg = AdamwConfig {
            lr: lr as f32,
            beta1: tr.beta1 as f32,
            beta2: tr.beta2 as f32,
            eps: tr.eps as f32,
            weight_decay: tr.weight_decay as f32,
            grad_scale: 1.0 / tr.grad_accum as f32,
            clip: tr.clip as f32,
            step: (step + 1) as i32,
        };
        if !loss.is_finite() {
            bar.abandon();
            return Err(self.diverged(step, format!("the training loss is {loss}")));
        }
        let grad_norm = match self.s.adamw_step(&cfg) {
            Ok(n) => n,
            Err(e) => {
                bar.abandon();
                return Err(self.diverged(step, e.to_string()));
            }
        };
        let secs = started.elapsed().as_secs_f64();
        Ok(StepDone {
            loss,
            lr,
            grad_norm,
            tokens_per_s: tokens_per_step / secs.max(1e-9),
            comm,
        })
    }

    /// Sum the step's gradients over the ranks: wait for the overlapped
    /// all-reduce, or run the whole one now.
    fn reduce_grads(&mut self, w: &World, overlap: Option<dist::Overlap>) -> Result<Comm> {
        let t0 = Instant::now();
        if let Some(o) = overlap {
            let during = o.finish()?;
            let after = t0.elapsed().as_secs_f64();
            return Ok(Comm {
                allreduce: during + after,
                after_backward: after,
                barrier: None,
            });
        }
        // The barrier first, so the all-reduce's time is the transfer and
        // the barrier's the wait for the slowest rank.
        w.barrier()?;
        let barrier = t0.elapsed().as_secs_f64();
        let allreduce = w.allreduce_sum(self.s.grads_mut()?)?;
        Ok(Comm {
            allreduce,
            after_backward: t0.elapsed().as_secs_f64(),
            barrier: Some(barrier),
        })
    }

    /// The error that stops a diverged step: what went wrong, the first
    /// parameter with a non-finite gradient, and the last good checkpoint.
    fn diverged(&self, step: usize, what: String) -> Error {
        let tensor = first_bad_gradient(&self.s)
            .map(|n| format!("; first non-finite gradient: `{n}`"))
            .unwrap_or_default();
        let latest = &self.latest;
        Error::new(format!(
            "step {}: {what}{tensor}. Training stopped; the last good checkpoint is {}. Try a lower [train].lr or a smaller init_std",
            step + 1,
            if latest.exists() { latest.display().to_string() } else { "(none yet)".into() }
        ))
    }

    /// The validation loss; with a sampler, also the valid-SVG rate of
    /// greedy generations from the held-out prompts, into `line`.
    fn evaluate(&mut self, line: &mut serde_json::Value) -> Result<Option<f64>> {
        let tr = &self.spec.train;
        let val = val_loss(
            &mut self.s,
            &self.built,
            &self.prepared.val,
            tr.eval_batches,
            self.data_cfg.mask_prompt,
            self.data_cfg.packing,
        )?;
        if let Some((gs, prompts)) = self.sampler.as_mut() {
            gs.load_weights(&self.s.weights())?;
            let cfg = crate::sample::SamplingConfig::greedy();
            let mut gens = vec![];
            for p in prompts.iter() {
                let g = crate::generate::generate_with(gs, &self.tok, p, &cfg, usize::MAX, |_| {})?;
                gens.push(crate::eval::Generation {
                    prompt: p.clone(),
                    text: g.text,
                    reference: None,
                });
            }
            let r = crate::eval::evaluate(&gens);
            line["valid_svg_rate"] = json!(r.valid_svg.rate);
            line["samples"] = json!(gens.len());
        }
        Ok(val)
    }

    /// Stop at this step boundary: Ctrl-C here, or under mpirun on any rank
    /// (agreed at the step's all-reduce).
    fn stop_requested(&self) -> bool {
        match self.world {
            Some(_) => self.stop,
            None => INTERRUPTED.load(Ordering::SeqCst),
        }
    }

    /// Checkpoint at `step` and point `latest` at it (by an atomic rename).
    /// Under mpirun every rank calls it, checks that all hold the same
    /// weights, and rank 0 alone writes.
    fn save(&mut self, step: usize) -> Result<PathBuf> {
        let p = self.dir.checkpoint_at(step);
        if let Some(w) = self.world {
            w.agree(weights_checksum(self.s.params()), "the weights")?;
            if !w.is_root() {
                return Ok(p);
            }
        }
        checkpoint::save(&mut self.s, self.spec, step, &self.batcher.state(), &p)?;
        std::fs::copy(&p, self.dir.latest_tmp()).at(p.display())?;
        std::fs::rename(self.dir.latest_tmp(), &self.latest).at(self.latest.display())?;
        Ok(p)
    }
}

/// A 53-bit digest of the weights' bits (exact as an f64), to check that
/// every rank holds the same.
fn weights_checksum(params: &[f32]) -> f64 {
    let h = params.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ x.to_bits() as u64).wrapping_mul(0x0100_0000_01b3)
    });
    (h >> 11) as f64
}

/// Generation at evaluations runs on a batch-1 build of the same model,
/// over the first `eval_samples` held-out prompts.
fn eval_sampler(spec: &Spec, dir: &RunDir, run: &Path) -> Result<Option<(Session, Vec<String>)>> {
    let tr = &spec.train;
    if tr.eval_samples == 0 {
        return Ok(None);
    }
    let gb = crate::generate::generation_build(spec, &dir.generation_build())?;
    let exemplars =
        crate::data::retrieval::Exemplars::load(dir.data().path(), spec.data.exemplars)?;
    let prompts: Vec<String> = crate::generate::held_out(run)?
        .into_iter()
        .take(tr.eval_samples)
        .map(|r| r.prompt.unwrap_or_default())
        .map(|p| match &exemplars {
            Some(ex) => ex.condition(&p),
            None => p,
        })
        .collect();
    Ok(Some((gb.session(tr.threads)?, prompts)))
}
