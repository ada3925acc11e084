//! The tables `irc bench` prints.

use super::{Report, Side, Stats};
use std::fmt::Write;

/// `85.6 (81.0–86.1)`: the median and the spread of the rounds.
fn spread(s: &Stats, digits: usize) -> String {
    if s.n > 1 {
        format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits)
    } else {
        format!("{:.d$}", s.median, d = digits)
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

fn thr(t: usize) -> String {
    format!("{t} thread{}", if t == 1 { "" } else { "s" })
}

impl Report {
    /// The readable form: peak, sgemm, training step, forward and decode, builds.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "irc bench on {} ({} cores): medians of {} round{} of interleaved processes (min–max), {} timed step{} a process",
            self.cpu,
            self.cores,
            self.repeats,
            if self.repeats == 1 { "" } else { "s" },
            self.steps,
            if self.steps == 1 { "" } else { "s" }
        );
        let _ = writeln!(o, "python: {}", self.python);
        let _ = writeln!(o, "  numpy: {}", self.numpy);
        let _ = writeln!(o, "  torch: {}", self.torch);
        self.gemm_tables(&mut o);
        self.step_table(&mut o);
        self.infer_table(&mut o);
        self.models_table(&mut o);
        o
    }

    /// Each target's FMA peak and sgemm rows.
    fn gemm_tables(&self, o: &mut String) {
        for t in &self.targets {
            let _ = writeln!(o, "\n== target {} ({})", t.target, t.caches);
            let peaks: Vec<String> = t
                .peak
                .iter()
                .map(|p| format!("{} {} GFLOP/s", thr(p.threads), spread(&p.gflops, 1)))
                .collect();
            let _ = writeln!(o, "fp32 FMA peak: {}", peaks.join(", "));
            let _ = writeln!(
                o,
                "\nsgemm GFLOP/s: irc_gemm as the models call it (epilogue included); numpy: the plain product; bf16: irc_gemm_bf16 (vdpbf16ps, where the CPU has it)\n{:<34} {:>3}  {:<24} {:>6}  {:<26} {:>9}  {:<24} {:>8}  used by",
                "M x N x K", "thr", "irc", "%peak", "numpy", "irc/numpy", "bf16", "bf16/f32"
            );
            for r in &t.gemm {
                let np = match &r.numpy {
                    Side::Measured(s) => spread(s, 1),
                    Side::Missing { missing } => short(missing),
                };
                let _ = writeln!(
                    o,
                    "{:<34} {:>3}  {:<24} {:>5.1}%  {:<26} {:>9}  {:<24} {:>8}  {}",
                    r.label,
                    r.threads,
                    spread(&r.irc, 1),
                    r.pct_of_peak,
                    np,
                    ratio(r.ratio),
                    r.bf16.as_ref().map_or("-".to_string(), |b| spread(b, 1)),
                    ratio(r.bf16_ratio),
                    r.used_by.join("; ")
                );
            }
        }
    }

    /// The training step beside PyTorch's.
    fn step_table(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "\n== training step (forward + backward + AdamW), ms; PyTorch eager on the same model, weights and tokens (a bf16 spec's: under torch.autocast bf16)\n{:<12} {:>3}  {:<24} {:>9} {:>6} {:>7}  {:<24} {:>9} {:>6} {:>7}  {:>9}  loss0 irc / PyTorch",
            "model", "thr", "irc ms", "tokens/s", "%peak", "RSS MB", "PyTorch ms", "tokens/s", "%peak", "RSS MB", "PyT/irc"
        );
        for m in &self.models {
            for r in &m.rows {
                let (pt, loss) = match &r.torch {
                    Side::Measured(p) => (
                        format!(
                            "{:<24} {:>9.0} {:>5.1}% {:>7.0}",
                            spread(&p.step_ms, 1),
                            p.tokens_per_s,
                            p.pct_of_peak,
                            p.rss_mb
                        ),
                        format!("{:.5} / {:.5}", r.loss0, p.loss0),
                    ),
                    Side::Missing { missing } => {
                        (format!("{:<50}", short(missing)), format!("{:.5}", r.loss0))
                    }
                };
                let _ = writeln!(
                    o,
                    "{:<12} {:>3}  {:<24} {:>9.0} {:>5.1}% {:>7.0}  {pt}  {:>9}  {loss}",
                    if m.dtype == "f32" {
                        m.name.clone()
                    } else {
                        format!("{} {}", m.name, m.dtype)
                    },
                    r.threads,
                    spread(&r.step_ms, 1),
                    r.tokens_per_s,
                    r.pct_of_peak,
                    r.rss_mb,
                    ratio(r.ratio)
                );
            }
        }
    }

    /// The forward and decode rows.
    fn infer_table(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "\n== forward and decode (irc)\n{:<16} {:>3}  {:<24} {:>9}  {:<26} {:>14} {:>14}",
            "model",
            "thr",
            "forward ms",
            "tokens/s",
            "decode tokens/s",
            "RSS MB decode",
            "+ forward"
        );
        for m in &self.models {
            // Decode with packed weights: the format beside the name.
            let label = if m.weights == "f32" {
                m.name.clone()
            } else {
                format!("{} {}", m.name, m.weights)
            };
            let decode = |s: &Option<Stats>| s.as_ref().map_or("-".into(), |s| spread(s, 0));
            for r in &m.rows {
                let _ = writeln!(
                    o,
                    "{:<16} {:>3}  {:<24} {:>9.0}  {:<26} {:>14.0} {:>14.0}",
                    label,
                    r.threads,
                    spread(&r.forward_ms, 2),
                    r.forward_tokens_per_s,
                    decode(&r.decode_tokens_per_s),
                    r.decode_rss_mb,
                    r.infer_rss_mb
                );
            }
            // The same spec built with its generation's weights in the other formats.
            for p in &m.packed {
                for r in &p.rows {
                    let _ = writeln!(
                        o,
                        "{:<16} {:>3}  {:<24} {:>9}  {:<26} {:>14.0} {:>14}",
                        format!("{} {}", m.name, p.weights),
                        r.threads,
                        "-",
                        "-",
                        decode(&r.decode_tokens_per_s),
                        r.decode_rss_mb,
                        "-"
                    );
                }
            }
        }
    }

    /// What was measured: each model's size, step and build times.
    fn models_table(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "\n== models\n{:<12} {:<8} {:<5} {:>9} {:>11} {:>11} {:>10} {:>10}  spec",
            "model",
            "target",
            "dtype",
            "params",
            "batch x seq",
            "GFLOP/step",
            "build cold",
            "cached"
        );
        for m in &self.models {
            let _ = writeln!(
                o,
                "{:<12} {:<8} {:<5} {:>8.2}M {:>11} {:>11.2} {:>9.2}s {:>9.3}s  {}",
                m.name,
                m.target,
                m.dtype,
                m.params as f64 * 1e-6,
                format!("{} x {}", m.batch, m.seq),
                m.step_gflop,
                m.build_cold_s,
                m.build_cached_s,
                m.spec
            );
        }
    }
}

/// A missing column's text: "not importable" or "failed", the why left to the header.
fn short(why: &str) -> String {
    if why.starts_with("not importable") {
        "not importable".into()
    } else {
        "failed".into()
    }
}
