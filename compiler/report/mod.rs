//! The run report (`irc report`): one self-contained HTML file, no script
//! and no network.
//!
//! Sections:
//! 1. **Run**: steps, epochs, final train loss, best val loss, tokens/s,
//!    from `RUN/metrics.jsonl` (one JSON object a line: `step`, `epoch`,
//!    `train_loss`, `lr`, `grad_norm`, `tokens_per_s`, and `val_loss` on eval
//!    steps; unreadable lines are counted and skipped).
//! 2. **Curves**: inline SVG charts drawn here: train and val loss, learning
//!    rate, gradient norm, tokens/s against the step.
//! 3. **Eval**: the [`EvalResult`] table, when given, and the same metrics
//!    per prompt family (synthetic scenes, icon tags).
//! 4. **What to look at**: each symptom of the refinement checklist, its
//!    status from the metrics present (*look here*, *ok*, *no data*), the
//!    evidence, and the pipeline stage and action it points to (see
//!    [`crate::doctor::checks`] for the rules and thresholds, and the order:
//!    the first *look here* is what to fix first).
//! 5. **Gallery**: every generated sample at a glance (a tile per sample,
//!    grouped by prompt family, with valid / follows-prompt marks); then
//!    per sample, the prompt, the generated SVG inline
//!    (sanitized by [`gallery::sanitize_svg`]; otherwise shown as escaped
//!    text) and as a PNG data URI rendered with `resvg`, the same for the
//!    reference, the verdicts, and the source.

pub mod chart;
pub mod gallery;

use crate::error::Result;
use crate::eval::{self, EvalResult, PromptOutcome};
use crate::metrics::fmt_num;
pub use crate::metrics::{MetricRow, MetricsLog};
use crate::rundir::RunDir;
use chart::{line_chart, Series};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use crate::doctor::checks::{diagnose, Finding, Status};
use crate::doctor::checks::{finite, mean};

/// Pixel size of gallery images (inline SVG and PNG).
pub const GALLERY_SIZE: u32 = 128;
/// Generated texts longer than this are not inlined or rendered (shown as
/// truncated text).
pub const MAX_INLINE_BYTES: usize = 200_000;

/// One gallery entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GallerySample {
    /// The prompt.
    pub prompt: String,
    /// The generated text.
    pub generated: String,
    /// The reference SVG, when there is one.
    #[serde(default)]
    pub reference: Option<String>,
    /// The retrieval baseline's pick: the training icon whose tags overlap
    /// the prompt most.
    #[serde(default)]
    pub baseline: Option<String>,
    /// The training icon nearest the generation.
    #[serde(default)]
    pub nearest: Option<String>,
    /// The visual scores `irc eval` gave it (`eval.json`'s).
    #[serde(default)]
    pub visual: Option<eval::SampleVisual>,
}

/// Escape text for HTML (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = "
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6}.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #eee}
.look{background:#fde8e8;font-weight:bold}.ok{background:#e8f6e8}.nodata{color:#888}
.gallery{display:flex;flex-direction:column;gap:14px}\n#gsort-s:checked~.gallery .card,p:has(#gsort-s:checked)~.gallery .card{order:var(--rank)}
.card{border:1px solid #ddd;border-radius:6px;padding:10px}.prompt{font-family:monospace;font-size:13px;margin-bottom:6px}
.row{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;text-align:center;font-size:11px;color:#555}
figure .img{width:128px;height:128px;border:1px solid #ccc;background:#fff;display:flex;align-items:center;justify-content:center;overflow:hidden}
figure .img svg.gen{width:128px;height:128px}
pre{white-space:pre-wrap;word-break:break-all;font-size:11px;background:#f7f7f7;padding:6px;margin:0;max-height:200px;overflow:auto}
pre.raw{width:128px;height:128px;box-sizing:border-box}.verdict{font-size:12px;margin-top:6px}
.good{color:#1b7f1b}.bad{color:#b42318}
.overview h3{font-size:15px;margin:14px 0 6px}.tiles{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:10px}
.tile{width:120px;border:1px solid #ddd;border-radius:4px;padding:4px;text-decoration:none;color:#222;font-size:10px}
.tile .pic{width:80px;height:80px;margin:0 auto;display:flex;align-items:center;justify-content:center;background:#fff}
.tile .cap{font-family:monospace;word-break:break-all;text-align:center;margin-top:2px}
";

/// `0`, or `2 (lines 17, 18)`.
fn skipped_lines(m: &MetricsLog) -> String {
    if m.skipped.is_empty() {
        return "0".into();
    }
    let lines: Vec<String> = m.skipped.iter().map(|(l, _)| l.to_string()).collect();
    format!("{} (lines {}; skipped)", m.skipped.len(), lines.join(", "))
}

fn run_section(m: &MetricsLog, run_dir: &Path) -> String {
    let mut s = String::from("<h2 id=\"run\">Run</h2>\n");
    if m.rows.is_empty() {
        s.push_str(&format!(
            "<p class=\"nodata\">No metrics in {}/metrics.jsonl.</p>\n",
            esc(&run_dir.display().to_string())
        ));
        return s;
    }
    let last = m.rows.last().cloned().unwrap_or_default();
    let train = finite(m.series(|r| r.train_loss));
    let vals = finite(m.series(|r| r.val_loss));
    let tps = finite(m.series(|r| r.tokens_per_s));
    let best_val = vals.iter().cloned().reduce(f64::min);
    let rows = [
        ("steps", fmt_num(last.step)),
        ("epoch", last.epoch.map_or("N/A".into(), fmt_num)),
        (
            "final train loss",
            train.last().map_or("N/A".into(), |x| format!("{x:.4}")),
        ),
        (
            "last / best val loss",
            match (vals.last(), best_val) {
                (Some(l), Some(b)) => format!("{l:.4} / {b:.4}"),
                _ => "N/A".into(),
            },
        ),
        (
            "mean train tokens/s",
            mean(&tps).map_or("N/A".into(), |x| format!("{x:.0}")),
        ),
        ("last lr", last.lr.map_or("N/A".into(), fmt_num)),
        ("unreadable metrics lines", skipped_lines(m)),
    ];
    let data = crate::train::DataSummary::read(run_dir).ok().flatten();
    let data_rows = data.iter().flat_map(|d| {
        [
            (
                "training rows kept",
                format!(
                    "{} of {} ({} longer than seq_len {} left out{})",
                    d.train_rows - d.rows_dropped,
                    d.train_rows,
                    d.rows_dropped,
                    d.seq_len,
                    if d.dropped_fraction() >= 0.05 {
                        ": see the doctor"
                    } else {
                        ""
                    }
                ),
            ),
            (
                "row tokens median / p90 / p99 / max",
                format!(
                    "{} / {} / {} / {}",
                    d.row_tokens.p50, d.row_tokens.p90, d.row_tokens.p99, d.row_tokens.max
                ),
            ),
            ("passes over the data", format!("{:.1}", d.epochs)),
        ]
    });
    let rows: Vec<(&str, String)> = rows.into_iter().chain(data_rows).collect();
    s.push_str("<table class=\"run\">\n");
    for (k, v) in rows {
        s.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            esc(k),
            esc(&v)
        ));
    }
    s.push_str("</table>\n");
    s
}

fn charts_section(m: &MetricsLog) -> String {
    let ser = |name: &str, colour: &str, pts: Vec<(f64, f64)>, dots: bool| Series {
        name: name.into(),
        colour: colour.into(),
        points: pts,
        dots,
    };
    let mut s = String::from("<h2 id=\"curves\">Curves</h2>\n<div class=\"charts\">\n");
    s.push_str(&line_chart(
        "chart-loss",
        "Loss",
        "step",
        &[
            ser("train", "#1e88e5", m.series(|r| r.train_loss), false),
            ser("val", "#e53935", m.series(|r| r.val_loss), true),
        ],
    ));
    s.push_str(&line_chart(
        "chart-lr",
        "Learning rate",
        "step",
        &[ser("lr", "#8e24aa", m.series(|r| r.lr), false)],
    ));
    s.push_str(&line_chart(
        "chart-grad-norm",
        "Gradient norm",
        "step",
        &[ser(
            "grad norm",
            "#fb8c00",
            m.series(|r| r.grad_norm),
            false,
        )],
    ));
    let validity = m.series(|r| r.valid_svg_rate);
    if !validity.is_empty() {
        s.push_str(&line_chart(
            "chart-valid-svg",
            "Valid SVG rate of samples during training",
            "step",
            &[ser("valid SVG", "#00897b", validity, true)],
        ));
    }
    s.push_str(&line_chart(
        "chart-tokens-per-s",
        "Training tokens/s",
        "step",
        &[ser(
            "tokens/s",
            "#43a047",
            m.series(|r| r.tokens_per_s),
            false,
        )],
    ));
    s.push_str("</div>\n");
    s
}

fn eval_section(e: Option<&EvalResult>) -> String {
    let mut s = String::from("<h2 id=\"eval\">Eval</h2>\n");
    match e {
        None => s.push_str("<p class=\"nodata\">No eval results.</p>\n"),
        Some(e) => {
            s.push_str("<table class=\"eval\">\n<tr><th>metric</th><th>value</th></tr>\n");
            for (k, v) in e.rows() {
                s.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td></tr>\n",
                    esc(&k),
                    esc(&v)
                ));
            }
            s.push_str("</table>\n");
            let (titles, rows) = e.family_rows();
            if !titles.is_empty() {
                s.push_str("<h3>By prompt family</h3>\n<table class=\"eval-families\">\n<tr><th>metric</th>");
                for t in &titles {
                    s.push_str(&format!("<th>{}</th>", esc(t)));
                }
                s.push_str("</tr>\n");
                for (k, vs) in rows {
                    s.push_str(&format!("<tr><td>{}</td>", esc(&k)));
                    for v in vs {
                        s.push_str(&format!("<td>{}</td>", esc(&v)));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</table>\n");
            }
        }
    }
    s
}

fn doctor_section(f: &[Finding]) -> String {
    let mut s = String::from(
        "<h2 id=\"look\">What to look at</h2>\n<table class=\"doctor\">\n<tr><th>status</th><th>symptom</th><th>evidence</th><th>stage</th><th>check / action</th></tr>\n",
    );
    for x in f {
        let action = match &x.sweep {
            Some(sw) => format!("{} (irc sweep SPEC {sw})", x.action),
            None => x.action.clone(),
        };
        let (cls, st) = match x.status {
            Status::Look => ("look", "look here"),
            Status::Ok => ("ok", "ok"),
            Status::NoData => ("nodata", "no data"),
        };
        s.push_str(&format!(
            "<tr class=\"{cls}\"><td>{st}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&x.symptom),
            esc(&x.evidence),
            esc(&x.stage),
            esc(&action)
        ));
    }
    s.push_str("</table>\n");
    s
}

/// One figure pair (inline SVG, PNG) for a text.
fn figures(label: &str, text: &str, prefix: &str) -> String {
    inline_figure(label, text, prefix) + &png_figure(label, text)
}

/// The sanitized SVG inline, or the text when it is not well-formed.
fn inline_figure(label: &str, text: &str, prefix: &str) -> String {
    let inline = (text.len() <= MAX_INLINE_BYTES)
        .then(|| gallery::sanitize_svg(text, prefix, GALLERY_SIZE))
        .flatten();
    match inline {
        Some(svg) => format!(
            "<figure><div class=\"img inline\">{svg}</div><figcaption>{} (inline SVG)</figcaption></figure>\n",
            esc(label)
        ),
        None => {
            let shown: String = text.chars().take(2000).collect();
            format!(
                "<figure><pre class=\"raw\">{}</pre><figcaption>{} (not well-formed: text)</figcaption></figure>\n",
                esc(&shown),
                esc(label)
            )
        }
    }
}

/// The unsanitized SVG rendered by resvg, as an embedded PNG.
fn png_figure(label: &str, text: &str) -> String {
    let png = (text.len() <= MAX_INLINE_BYTES)
        .then(|| gallery::png_data_uri(text, GALLERY_SIZE))
        .flatten();
    match png {
        Some(uri) => format!(
            "<figure><div class=\"img\"><img class=\"gallery-png\" alt=\"{} rendered\" width=\"{GALLERY_SIZE}\" src=\"{uri}\"></div><figcaption>{} (PNG, resvg)</figcaption></figure>\n",
            esc(label),
            esc(label)
        ),
        None => format!(
            "<figure><div class=\"img nodata\">not renderable</div><figcaption>{} (PNG, resvg)</figcaption></figure>\n",
            esc(label)
        ),
    }
}

/// Pixel size of the overview tiles.
pub const TILE_SIZE: u32 = 80;

/// Every generated sample at a glance, grouped by prompt family: the
/// sanitized SVG (or a mark when it is not well-formed), whether it is a
/// valid SVG and follows its prompt, and the prompt.
fn overview(samples: &[GallerySample]) -> String {
    let mut fams: std::collections::BTreeMap<&str, Vec<(usize, &GallerySample)>> =
        Default::default();
    for (i, g) in samples.iter().enumerate() {
        fams.entry(eval::family_name(eval::prompt_kind(&g.prompt)))
            .or_default()
            .push((i, g));
    }
    let mut s = String::from("<div class=\"overview\">\n");
    for (f, items) in fams {
        let valid = items
            .iter()
            .filter(|(_, g)| eval::check_svg(&g.generated).is_ok())
            .count();
        s.push_str(&format!(
            "<h3>{} <span class=\"nodata\">({valid} of {} valid)</span></h3>\n<div class=\"tiles\">\n",
            esc(eval::family_title(f)),
            items.len()
        ));
        for (i, g) in items {
            let pic = gallery::sanitize_svg(&g.generated, &format!("o{i}-"), TILE_SIZE)
                .unwrap_or_else(|| "<span class=\"bad\">not SVG</span>".to_string());
            let ok = eval::check_svg(&g.generated).is_ok();
            let mark = match (ok, eval::prompt_success(&g.prompt, &g.generated).1) {
                (false, _) => "<span class=\"bad\">invalid</span>",
                (true, PromptOutcome::Success) => {
                    "<span class=\"good\">valid · follows prompt</span>"
                }
                (true, PromptOutcome::Fail(_)) => {
                    "<span class=\"good\">valid</span> · <span class=\"bad\">misses prompt</span>"
                }
                (true, PromptOutcome::NotApplicable) => "<span class=\"good\">valid</span>",
            };
            s.push_str(&format!(
                "<a class=\"tile\" href=\"#sample-{i}\"><div class=\"pic\">{pic}</div><div class=\"cap\">{}</div><div class=\"cap\">{mark}</div></a>\n",
                esc(&g.prompt)
            ));
        }
        s.push_str("</div>\n");
    }
    s.push_str("</div>\n");
    s
}

fn gallery_section(samples: &[GallerySample]) -> String {
    let mut s = format!(
        "<h2 id=\"gallery\">Gallery</h2>\n<p>{} samples. Inline SVGs are sanitized (no script, styles, animation, foreign content, event attributes or external links); the PNG is the unsanitized SVG rendered by resvg.</p>\n{}<div class=\"gallery\">\n",
        samples.len(),
        overview(samples)
    );
    // Sorting without script: a checked radio puts the cards in the flex
    // `order` of their rank by visual score (best first, unscored last).
    s = s.replacen(
        "<div class=\"gallery\">\n",
        "<p>Sort: <input type=\"radio\" name=\"gsort\" id=\"gsort-i\" checked><label for=\"gsort-i\">by index</label> <input type=\"radio\" name=\"gsort\" id=\"gsort-s\"><label for=\"gsort-s\">by visual score, best first</label></p>\n<div class=\"gallery\" id=\"gallery-cards\">\n",
        1,
    );
    // The scores `irc eval` wrote; a samples.json from before they were
    // kept is scored here against the references alone.
    let visuals: Vec<Option<eval::SampleVisual>> = samples
        .iter()
        .map(|g| {
            g.visual.clone().or_else(|| {
                eval::visual::score_sample(&g.prompt, &g.generated, g.reference.as_deref(), None)
            })
        })
        .collect();
    let scores: Vec<Option<f64>> = visuals
        .iter()
        .map(|v| v.as_ref().map(|v| v.score.unwrap_or(0.0)))
        .collect();
    let rank = score_ranks(&scores);
    for (i, g) in samples.iter().enumerate() {
        s.push_str(&sample_card(i, g, rank[i], visuals[i].as_ref(), scores[i]));
    }
    s.push_str("</div>\n");
    s
}

/// Each sample's rank by visual score: best first, unscored last, ties by
/// index.
fn score_ranks(scores: &[Option<f64>]) -> Vec<usize> {
    let mut by_score: Vec<usize> = (0..scores.len()).collect();
    by_score.sort_by(|&x, &y| {
        let k = |i: usize| scores[i].unwrap_or(-1.0);
        k(y).total_cmp(&k(x)).then(x.cmp(&y))
    });
    let mut rank = vec![0; scores.len()];
    for (r, &i) in by_score.iter().enumerate() {
        rank[i] = r;
    }
    rank
}

/// The card of sample `i`: its prompt, the generated SVG beside the
/// reference, the retrieval baseline and the nearest training icon, then
/// the verdicts and the source.
fn sample_card(
    i: usize,
    g: &GallerySample,
    rank: usize,
    vis: Option<&eval::SampleVisual>,
    score: Option<f64>,
) -> String {
    let mut s = format!(
        "<div class=\"card\" id=\"sample-{i}\" style=\"--rank:{}\">\n<div class=\"prompt\">#{i} <b>{}</b></div>\n<div class=\"row\">\n",
        rank,
        esc(&g.prompt)
    );
    s.push_str(&figures("generated", &g.generated, &format!("s{i}-")));
    if let Some(r) = &g.reference {
        s.push_str(&figures("reference", r, &format!("r{i}-")));
    }
    if let Some(b) = &g.baseline {
        let label = match vis.and_then(|v| v.baseline) {
            Some(x) => format!("retrieval baseline, score {x:.3}"),
            None => "retrieval baseline".into(),
        };
        s.push_str(&inline_figure(&label, b, &format!("b{i}-")));
    }
    if let (Some(n), Some(x)) = (&g.nearest, vis.and_then(|v| v.nearest)) {
        let copy = if x >= eval::visual::COPY_THRESHOLD {
            " (near copy)"
        } else {
            ""
        };
        s.push_str(&inline_figure(
            &format!("nearest training icon, {x:.3}{copy}"),
            n,
            &format!("n{i}-"),
        ));
    }
    s.push_str("</div>\n<div class=\"verdict\">");
    s.push_str(&verdicts(g, vis, score).join(" · "));
    let shown: String = g.generated.chars().take(20_000).collect();
    s.push_str(&format!(
        "</div>\n<details><summary>source</summary><pre>{}</pre></details>\n</div>\n",
        esc(&shown)
    ));
    s
}

/// What the checks say of one sample: valid SVG, exact match, visual score,
/// prompt, boundary glitches.
fn verdicts(
    g: &GallerySample,
    vis: Option<&eval::SampleVisual>,
    score: Option<f64>,
) -> Vec<String> {
    let mut v = Vec::new();
    match eval::check_svg(&g.generated) {
        Ok(_) => v.push("<span class=\"good\">valid SVG</span>".to_string()),
        Err(e) => v.push(format!(
            "<span class=\"bad\">invalid: {}</span>",
            esc(e.name())
        )),
    }
    if let Some(r) = &g.reference {
        v.push(if eval::exact_match(&g.generated, r) {
            "<span class=\"good\">exact match</span>".into()
        } else {
            "differs from reference".into()
        });
    }
    if let Some(x) = score {
        let versus = match vis.and_then(|v| v.baseline.zip(v.baseline_prompt.as_ref())) {
            Some((b, p)) => format!(" vs baseline {b:.3} ({})", esc(p)),
            None => String::new(),
        };
        v.push(format!("visual score {x:.3}{versus}"));
    }
    match eval::prompt_success(&g.prompt, &g.generated).1 {
        PromptOutcome::Success => v.push("<span class=\"good\">prompt satisfied</span>".into()),
        PromptOutcome::Fail(why) => v.push(format!(
            "<span class=\"bad\">prompt: {}</span>",
            esc(&why.join("; "))
        )),
        PromptOutcome::NotApplicable => v.push("prompt: not checkable".into()),
    }
    let gl = eval::boundary_glitches(&g.generated);
    if gl.any() {
        v.push(format!(
            "<span class=\"bad\">glitch:{}{}{}</span>",
            if gl.after_end {
                " text after &lt;/svg&gt;"
            } else {
                ""
            },
            if gl.unclosed { " unclosed" } else { "" },
            if gl.stray_close {
                " /svg&gt; without &lt;"
            } else {
                ""
            }
        ));
    }
    v
}

/// Build the report HTML (see the module doc).
pub fn render_html(
    run_dir: &Path,
    metrics: &MetricsLog,
    eval: Option<&EvalResult>,
    samples: &[GallerySample],
) -> String {
    let title = format!("irc report: {}", run_dir.display());
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p><a href=\"#run\">run</a> · <a href=\"#curves\">curves</a> · <a href=\"#eval\">eval</a> · <a href=\"#look\">what to look at</a> · <a href=\"#gallery\">gallery</a></p>\n",
        esc(&title),
        esc(&title)
    );
    s.push_str(&run_section(metrics, run_dir));
    s.push_str(&charts_section(metrics));
    s.push_str(&eval_section(eval));
    s.push_str(&doctor_section(&crate::doctor::checks::for_run(
        run_dir, metrics, eval,
    )));
    s.push_str(&gallery_section(samples));
    s.push_str("</body>\n</html>\n");
    s
}

/// Write the report for `run_dir` (its `metrics.jsonl`, if any) to `out`,
/// atomically, as one self-contained HTML file.
pub fn write_report(
    run_dir: &Path,
    eval: Option<&EvalResult>,
    samples: &[GallerySample],
    out: &Path,
) -> Result<()> {
    let metrics = MetricsLog::read(&RunDir::new(run_dir).metrics())?;
    write_html(run_dir, &metrics, eval, samples, out)
}

fn write_html(
    run_dir: &Path,
    metrics: &MetricsLog,
    eval: Option<&EvalResult>,
    samples: &[GallerySample],
    out: &Path,
) -> Result<()> {
    let html = render_html(run_dir, metrics, eval, samples);
    crate::util::atomic_write(out, html.as_bytes())
}

/// `irc report`: the HTML report of a run. The run must have metrics
/// ([`MetricsLog::read_run`]); a corrupt `eval.json` or `samples.json` is
/// an error naming it; corrupt metrics lines are skipped, counted in the
/// report and returned as a warning for the caller to show.
pub fn report_run(run: &Path, out: &Path) -> Result<Option<String>> {
    let dir = RunDir::new(run);
    crate::rundir::check_run(run)?;
    let metrics = MetricsLog::read_run(&dir.metrics())?;
    let eval = EvalResult::read_if_present(&dir.eval())?;
    let samples: Vec<GallerySample> = match dir.samples() {
        p if crate::util::is_there(&p) => {
            serde_json::from_str(&crate::util::read_user_text(&p)?)
                .map_err(|e| crate::Error::new(format!("{}: {e}", p.display())))?
        }
        _ => Vec::new(),
    };
    write_html(run, &metrics, eval.as_ref(), &samples, out)?;
    Ok(metrics.warning(&dir.metrics()))
}
