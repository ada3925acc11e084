//! The `[train]` section: the training recipe.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How the learning rate moves after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// Cosine from `lr` down to `min_lr` at the last step.
    Cosine,
    /// Straight line from `lr` down to `min_lr` at the last step.
    Linear,
    /// `lr` throughout.
    Constant,
}

/// `[train]`: every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    /// Sequences per micro-batch (default: `[build].batch`); compiled in.
    pub batch: Option<usize>,
    /// Tokens per sequence (default: `[build].seq_len`); compiled in.
    pub seq_len: Option<usize>,
    /// Micro-batches per optimizer step (effective batch = batch × grad_accum).
    pub grad_accum: usize,
    /// Optimizer steps; when absent, `epochs` passes over the training windows.
    pub steps: Option<usize>,
    pub epochs: usize,
    /// Peak learning rate (after warmup).
    pub lr: f64,
    /// Floor the schedule decays to (default lr / 10).
    pub min_lr: Option<f64>,
    /// Linear warmup steps from 0 to `lr`.
    pub warmup: usize,
    pub schedule: LrSchedule,
    /// AdamW decoupled weight decay, on matrices only.
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    pub clip: f64,
    /// Seed of the weight init and the batch order.
    pub seed: u64,
    /// Evaluate the validation loss every this many steps (0: at the end only).
    pub eval_every: usize,
    /// Validation batches per evaluation (0: the whole set).
    pub eval_batches: usize,
    /// Held-out prompts generated from at each evaluation (0: none); their
    /// valid-SVG rate is logged as `valid_svg_rate`.
    pub eval_samples: usize,
    /// Write a checkpoint every this many steps (0: at the end only).
    pub checkpoint_every: usize,
    /// Threads (0: the build's default).
    pub threads: usize,
    /// Under mpirun: start summing each gradient bucket over the ranks as
    /// soon as the backward of the step's last micro-batch finishes it,
    /// instead of after the backward. The same sum either way (left out of
    /// the serialized spec at its default, so hashes of older runs stay).
    #[serde(skip_serializing_if = "is_true")]
    pub overlap_allreduce: bool,
    /// Run directory (default `runs/<model name>`).
    pub out: Option<PathBuf>,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            batch: None,
            seq_len: None,
            grad_accum: 1,
            steps: None,
            epochs: 1,
            lr: 3e-4,
            min_lr: None,
            warmup: 0,
            schedule: LrSchedule::Cosine,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            clip: 1.0,
            seed: 1,
            eval_every: 0,
            eval_batches: 0,
            eval_samples: 4,
            checkpoint_every: 0,
            threads: 0,
            overlap_allreduce: true,
            out: None,
        }
    }
}

fn is_true(b: &bool) -> bool {
    *b
}

impl TrainSpec {
    pub fn min_lr(&self) -> f64 {
        self.min_lr.unwrap_or(self.lr / 10.0)
    }

    /// Learning rate of 0-based `step` out of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let span = total.saturating_sub(self.warmup).max(1) as f64;
        let progress = ((step - self.warmup) as f64 / span).min(1.0);
        let (hi, lo) = (self.lr, self.min_lr());
        match self.schedule {
            LrSchedule::Constant => hi,
            LrSchedule::Linear => hi + (lo - hi) * progress,
            LrSchedule::Cosine => {
                lo + 0.5 * (hi - lo) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// What is wrong with the numbers, as (field, message).
    pub fn problems(&self) -> Option<(&'static str, String)> {
        let positive = [("lr", self.lr), ("eps", self.eps)];
        for (f, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Some((f, format!("must be a positive number, found {v}")));
            }
        }
        if let Some(m) = self.min_lr {
            if !(m.is_finite() && m >= 0.0 && m <= self.lr) {
                return Some((
                    "min_lr",
                    format!("must be between 0 and lr = {}, found {m}", self.lr),
                ));
            }
        }
        for (f, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Some((f, format!("must be in [0, 1), found {v}")));
            }
        }
        for (f, v) in [("weight_decay", self.weight_decay), ("clip", self.clip)] {
            if !(v.is_finite() && v >= 0.0) {
                return Some((f, format!("must be zero or positive, found {v}")));
            }
        }
        for (f, v) in [("grad_accum", self.grad_accum), ("epochs", self.epochs)] {
            if v == 0 {
                return Some((f, "must be at least 1".into()));
            }
        }
        if let Err(msg) = super::range::threads(self.threads) {
            return Some(("threads", msg));
        }
        for (f, v) in [
            ("batch", self.batch),
            ("seq_len", self.seq_len),
            ("steps", self.steps),
        ] {
            if v == Some(0) {
                return Some((f, "must be at least 1".into()));
            }
        }
        None
    }
}
