//! A run's training metrics (`metrics.jsonl`, one JSON object a line) as
//! the report and the doctor read them, and the short number labels both
//! print.

use crate::error::Result;
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

/// The rows of a `metrics.jsonl`, and the lines that could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsLog {
    /// Readable rows in file order.
    pub rows: Vec<MetricRow>,
    /// Lines that were not a JSON object with a numeric `step`: their
    /// 1-based number and why.
    pub skipped: Vec<(usize, String)>,
}

impl MetricsLog {
    /// Read a `metrics.jsonl`; a missing file is an empty log.
    pub fn read(path: &Path) -> Result<MetricsLog> {
        if !crate::util::is_there(path) {
            return Ok(MetricsLog::default());
        }
        let text = crate::util::read_user_file(path)?;
        Ok(Self::parse(&String::from_utf8_lossy(&text)))
    }

    /// The metrics of a run, as the report and the doctor read them: the
    /// file must be there and hold at least one readable line; corrupt lines
    /// are skipped and named by [`MetricsLog::warning`].
    pub fn read_run(path: &Path) -> Result<MetricsLog> {
        crate::util::user_path(path)?;
        let log = Self::read(path)?;
        if log.rows.is_empty() {
            return Err(match log.skipped.first() {
                Some((line, why)) => crate::Error::new(format!(
                    "{}:{line}: {why}; no line of the file is readable ({} corrupt)",
                    path.display(),
                    log.skipped.len()
                )),
                None => crate::Error::new(format!(
                    "{}: empty; expected one JSON object a line from `irc train`",
                    path.display()
                )),
            });
        }
        Ok(log)
    }

    /// `path: N corrupt lines skipped (path:17: why, ...)`, when any were.
    pub fn warning(&self, path: &Path) -> Option<String> {
        const SHOWN: usize = 3;
        let (first, rest) = self.skipped.split_at(self.skipped.len().min(SHOWN));
        let (line, why) = first.first()?;
        let mut s = format!(
            "{}: {} corrupt line{} skipped: {}:{line}: {why}",
            path.display(),
            self.skipped.len(),
            if self.skipped.len() == 1 { "" } else { "s" },
            path.display()
        );
        for (line, _) in &first[1..] {
            s.push_str(&format!(", line {line}"));
        }
        if !rest.is_empty() {
            s.push_str(&format!(" and {} more", rest.len()));
        }
        Some(s)
    }

    /// Parse `metrics.jsonl` text.
    pub fn parse(text: &str) -> MetricsLog {
        let mut log = MetricsLog::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match Self::row(line) {
                Ok(r) => log.rows.push(r),
                Err(why) => log.skipped.push((i + 1, why)),
            }
        }
        log
    }

    fn row(line: &str) -> std::result::Result<MetricRow, String> {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let f = |k: &str| v.get(k).and_then(|x| x.as_f64());
        let step = f("step").ok_or("expected a JSON object with a numeric `step`")?;
        Ok(MetricRow {
            step,
            epoch: f("epoch"),
            train_loss: f("train_loss"),
            val_loss: f("val_loss"),
            lr: f("lr"),
            grad_norm: f("grad_norm"),
            tokens_per_s: f("tokens_per_s"),
            valid_svg_rate: f("valid_svg_rate"),
        })
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
