//! What training made of its data, written by `irc train` as `RUN/data.json`
//! before the first step: how many rows fit the compiled window and how many
//! passes over them the schedule makes. The report and the doctor read it.

use crate::data::prep::Batcher;
use crate::error::{At, Result};
use crate::rundir::RunDir;
use crate::util::atomic_write;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Token lengths of the training rows (`<eos>` included).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lengths {
    /// Median.
    pub p50: usize,
    /// 90th percentile.
    pub p90: usize,
    /// 99th percentile.
    pub p99: usize,
    /// Longest row.
    pub max: usize,
}

/// `RUN/data.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// The compiled window (`[build] seq_len`).
    pub seq_len: usize,
    /// `rows` (whole rows after an `<eos>`) or `stream`.
    pub packing: String,
    /// Rows of the training split.
    pub train_rows: usize,
    /// Of those, rows left out as longer than one window (`rows` packing only).
    pub rows_dropped: usize,
    /// Tokens of the training split.
    pub train_tokens: usize,
    /// Training windows per epoch.
    pub windows: usize,
    /// Tokens per optimizer step (batch × seq_len × grad_accum).
    pub tokens_per_step: usize,
    /// Optimizer steps the schedule makes.
    pub steps: usize,
    /// Passes over the training windows those steps make.
    pub epochs: f64,
    /// Token lengths of the training rows.
    pub row_tokens: Lengths,
}

impl DataSummary {
    /// The summary of a batcher that will run `steps` optimizer steps.
    pub fn of(b: &Batcher, steps: usize) -> DataSummary {
        let set = b.token_set();
        let mut lens: Vec<usize> = set.rows.iter().map(|&(l, _)| l as usize).collect();
        lens.sort_unstable();
        let q = |f: f64| {
            lens.get(((lens.len() as f64 - 1.0) * f).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        let per_step = b.micro_batch() * b.seq_len() * b.grad_accum();
        let windows = b.windows();
        DataSummary {
            seq_len: b.seq_len(),
            packing: if b.packs_rows() { "rows" } else { "stream" }.into(),
            train_rows: set.rows.len(),
            rows_dropped: b.dropped_rows(),
            train_tokens: set.len(),
            windows,
            tokens_per_step: per_step,
            steps,
            epochs: steps as f64 * (b.micro_batch() * b.grad_accum()) as f64
                / windows.max(1) as f64,
            row_tokens: Lengths {
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                max: lens.last().copied().unwrap_or(0),
            },
        }
    }

    /// Rows dropped as a fraction of the training rows.
    pub fn dropped_fraction(&self) -> f64 {
        self.rows_dropped as f64 / self.train_rows.max(1) as f64
    }

    /// `1,145 of 1,870 rows (61.2%) longer than seq_len 256 left out`, or
    /// `None` when none was.
    pub fn dropped_note(&self) -> Option<String> {
        (self.rows_dropped > 0).then(|| {
            format!(
                "{} of {} training rows ({:.1}%) longer than seq_len {} left out",
                self.rows_dropped,
                self.train_rows,
                100.0 * self.dropped_fraction(),
                self.seq_len
            )
        })
    }

    /// Write `RUN/data.json` atomically.
    pub fn write(&self, run: &Path) -> Result<()> {
        let p = RunDir::new(run).data_summary();
        atomic_write(&p, serde_json::to_string_pretty(self)?.as_bytes())
    }

    /// Read `RUN/data.json`; `Ok(None)` when the run has none (older runs).
    pub fn read(run: &Path) -> Result<Option<DataSummary>> {
        let p = RunDir::new(run).data_summary();
        if !p.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).at(p.display())?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| crate::Error::new(format!("{}: {e}", p.display())))
    }
}
