//! A run's training metrics (`metrics.jsonl`, one JSON object a line) as
//! the report and the doctor read them, and the short number labels both
//! print.

use crate::error::{At, Result};
use std::path::Path;

/// One line of `metrics.jsonl` (missing fields are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricRow {
    /// Optimizer step.
    pub step: f64,
    /// Epoch.
    pub epoch: Option<f64>,
    /// Training loss.
    pub train_loss: Option<f64>,
    /// Validation loss (eval steps only).
    pub val_loss: Option<f64>,
    /// Learning rate.
    pub lr: Option<f64>,
    /// Global gradient norm.
    pub grad_norm: Option<f64>,
    /// Training throughput.
    pub tokens_per_s: Option<f64>,
    /// Valid-SVG rate of the samples generated at an evaluation.
    pub valid_svg_rate: Option<f64>,
}

/// The rows of a `metrics.jsonl`, and how many lines could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsLog {
    /// Readable rows in file order.
    pub rows: Vec<MetricRow>,
    /// Lines that were not a JSON object with a numeric `step`.
    pub bad_lines: usize,
}

impl MetricsLog {
    /// Read a `metrics.jsonl`; a missing file is an empty log.
    pub fn read(path: &Path) -> Result<MetricsLog> {
        if !path.exists() {
            return Ok(MetricsLog::default());
        }
        let text = std::fs::read(path).at(path.display())?;
        Ok(Self::parse(&String::from_utf8_lossy(&text)))
    }

    /// Parse `metrics.jsonl` text.
    pub fn parse(text: &str) -> MetricsLog {
        let mut log = MetricsLog::default();
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(_) => {
                    log.bad_lines += 1;
                    continue;
                }
            };
            let f = |k: &str| v.get(k).and_then(|x| x.as_f64());
            match f("step") {
                Some(step) => log.rows.push(MetricRow {
                    step,
                    epoch: f("epoch"),
                    train_loss: f("train_loss"),
                    val_loss: f("val_loss"),
                    lr: f("lr"),
                    grad_norm: f("grad_norm"),
                    tokens_per_s: f("tokens_per_s"),
                    valid_svg_rate: f("valid_svg_rate"),
                }),
                None => log.bad_lines += 1,
            }
        }
        log
    }

    pub(crate) fn series(&self, get: fn(&MetricRow) -> Option<f64>) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .filter_map(|r| get(r).map(|y| (r.step, y)))
            .collect()
    }
}

/// A short number label: `0.5`, `12`, `3e-4`, `1.2k`.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e6).contains(&a) {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}
