//! Metrics over generated texts (stage 7, `irc eval`).
//!
//! Input: one [`Generation`] per prompt: the prompt, the generated text (as
//! emitted, i.e. already cut after the first stop string) and an optional
//! reference SVG. [`evaluate`] computes, for `n` generations:
//!
//! - **valid-SVG rate** = valid / n. A generation is *valid* when, with
//!   leading and trailing whitespace ignored, it is (1) non-empty, (2) ASCII
//!   only (every byte < 0x80), (3) well-formed XML (`roxmltree`, no DTD),
//!   (4) has a root element named `svg`, (5) is parsed by `usvg` (which
//!   rejects e.g. a zero or negative size; images are never loaded from
//!   files or the network) into a render tree with (6) at least one
//!   drawable element: a visible path (every shape becomes one) with a fill
//!   or a stroke, a visible image, or a text node, left after `usvg` drops
//!   zero-size and non-rendering elements (`defs`, empty groups, ...). (`usvg` is built without text
//!   support, so `<text>` alone does not count.) Invalid ones are counted by
//!   the first failing step (`empty`, `non_ascii`, `not_xml`, `wrong_root`,
//!   `unparsable`, `no_drawable`).
//! - **exact match** = matches / (generations with a reference): the
//!   generation equals the reference after whitespace normalization on both
//!   sides (runs of space/tab/CR/LF become one space; a space next to `<`,
//!   `>`, `=` or before `/>` is dropped; ends trimmed).
//! - **prompt→SVG success** = successes / applicable prompts:
//!   - *synthetic* prompts (five tags read by `data::synth::parse_prompt`,
//!     e.g. `[circle][red][2][top][small]`): success when the generation is
//!     valid and `Scene::check` finds no mismatch (shape element, count,
//!     fill colour, vertical band, size);
//!   - *tag* prompts of real icons (`[arrow][left]`): only colour and shape
//!     tags are checkable. A colour tag (`red green blue yellow purple orange
//!     black white gray pink brown`) holds when some drawn solid fill or
//!     stroke is nearest in RGB to that colour's reference; a shape tag
//!     (`circle ellipse square rect rectangle triangle line`) holds when a
//!     matching element exists (`triangle`: a `<polygon>` of 3 points).
//!     Success: valid and every checkable tag holds. A prompt with no
//!     checkable tag (like `[arrow][left]`: direction and meaning are not
//!     checkable from markup) is *not applicable*;
//!   - other prompts are not applicable. A rate with no applicable prompt
//!     is reported as N/A (`null`). Synthetic and tag rates are also
//!     reported separately.
//! - **repeat ratio** of one text = 1 − distinct/total over its overlapping
//!   character 4-grams (`None` under 4 characters); reported as the mean and
//!   max over generations, beside the same mean over the references, since
//!   SVG markup repeats itself normally. A looping model approaches 1.
//! - **boundary glitches**: a generation has one when (a) non-whitespace
//!   text follows the first `</svg>` (`after_end`), (b) it ends inside a
//!   tag, comment or quoted value, or with elements still open, scanning up
//!   to the first `</svg>` (`unclosed`: truncated), or (c) `/svg>` appears
//!   without a `<` before it (`stray_close`). Rate = generations with any
//!   glitch / n.
//! - **non-ASCII** count (UTF artifacts) and **starts-with-`<svg`** count
//!   (after leading whitespace): generations that do not even start like an
//!   SVG point at noise rather than at a boundary problem.
//! - **per prompt family**: the same metrics again over the generations of
//!   each prompt kind present (`synthetic` scenes, `tags` of real icons,
//!   `other`), in [`EvalResult::families`], since a mixed set's overall rate
//!   hides which family fails.
//!
//! [`EvalResult`] is what `eval.json` holds; [`EvalResult::to_table`] prints
//! it and [`EvalResult::write_json`] writes it atomically.

pub mod prompt;
pub mod svg;
pub mod text;
pub mod visual;

pub use prompt::{prompt_kind, prompt_success, PromptKind, PromptOutcome};
pub use svg::{check_svg, is_valid_svg, Invalid};
pub use text::{boundary_glitches, exact_match, normalize_ws, repeat_ratio, Glitches, REPEAT_N};
pub use visual::{SampleVisual, Training, VisualEval};

use crate::error::{At, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One generation to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The prompt it was generated from.
    pub prompt: String,
    /// The generated text, as emitted.
    pub text: String,
    /// The reference SVG, when there is one.
    #[serde(default)]
    pub reference: Option<String>,
}

/// A count out of a total, with the rate (`None` when the total is 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// How many passed.
    pub count: usize,
    /// Out of how many.
    pub total: usize,
    /// count / total, or `None` (N/A) when total is 0.
    pub rate: Option<f64>,
}

impl Rate {
    /// `count` out of `total`.
    pub fn new(count: usize, total: usize) -> Self {
        Rate {
            count,
            total,
            rate: (total > 0).then(|| count as f64 / total as f64),
        }
    }

    /// `12/20 (60.0%)` or `N/A`.
    pub fn show(&self) -> String {
        match self.rate {
            Some(r) => format!("{}/{} ({:.1}%)", self.count, self.total, 100.0 * r),
            None => "N/A".to_string(),
        }
    }
}

/// Per-generation results (no texts, so `eval.json` stays small).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleEval {
    /// Index into the input.
    pub index: usize,
    /// `None` when valid, else the first failing step.
    pub invalid: Option<Invalid>,
    /// Exact match against the reference (`None`: no reference).
    pub exact: Option<bool>,
    /// Prompt kind.
    pub kind: PromptKind,
    /// Prompt→SVG outcome.
    pub outcome: PromptOutcome,
    /// Character 4-gram repeat ratio.
    pub repeat_ratio: Option<f64>,
    /// Boundary glitches.
    pub glitches: Glitches,
    /// Visual scores, when the generation has a reference.
    #[serde(default)]
    pub visual: Option<SampleVisual>,
}

/// Everything `irc eval` measures; serialized as `eval.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Number of generations.
    pub n: usize,
    /// Valid SVGs out of n.
    pub valid_svg: Rate,
    /// Invalid generations by first failing step (`non_ascii`, ...).
    pub invalid_by_reason: BTreeMap<String, usize>,
    /// Exact matches out of generations with a reference.
    pub exact_match: Rate,
    /// Prompt→SVG successes out of applicable prompts (synthetic + tags).
    pub prompt_success: Rate,
    /// The same over synthetic prompts only.
    pub prompt_success_synthetic: Rate,
    /// The same over tag prompts only.
    pub prompt_success_tags: Rate,
    /// Prompts for which no check applies.
    pub prompt_not_applicable: usize,
    /// Mean character 4-gram repeat ratio over generations (≥ 4 chars).
    pub repeat_ratio_mean: Option<f64>,
    /// Max of the same.
    pub repeat_ratio_max: Option<f64>,
    /// Mean repeat ratio over the references, the baseline to compare with.
    pub repeat_ratio_reference: Option<f64>,
    /// Generations with any boundary glitch, out of n.
    pub boundary_glitches: Rate,
    /// Generations with text after the first `</svg>`.
    pub after_end: usize,
    /// Generations cut off inside markup or with open elements.
    pub unclosed: usize,
    /// Generations with `/svg>` not preceded by `<`.
    pub stray_close: usize,
    /// Generations containing a non-ASCII character.
    pub non_ascii: usize,
    /// Generations starting with `<svg` (after leading whitespace), out of n.
    pub starts_with_svg: Rate,
    /// Generation speed in tokens/s, filled in by the caller that timed it.
    #[serde(default)]
    pub gen_tokens_per_s: Option<f64>,
    /// Mean cross-entropy per token over the whole validation set, filled in
    /// by the caller that ran it; perplexity is its exponential.
    #[serde(default)]
    pub val_loss: Option<f64>,
    /// The same measure over the training set (as many batches as the
    /// validation set has, in order) with the same weights, filled in by
    /// `irc run`, so over-fitting shows beside `val_loss`.
    #[serde(default)]
    pub train_loss: Option<f64>,
    /// The metrics per prompt family (`synthetic`, `tags`, `other`), for
    /// the families with at least one generation.
    #[serde(default)]
    pub families: BTreeMap<String, FamilyEval>,
    /// The visual metric against the references, the retrieval baseline and
    /// the training icons (`None` when nothing was scored).
    #[serde(default)]
    pub visual: Option<VisualEval>,
    /// Per-generation results.
    #[serde(default)]
    pub samples: Vec<SampleEval>,
}

/// The metrics of the generations of one prompt family (same definitions
/// as the overall ones in [`EvalResult`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyEval {
    /// Generations of this family.
    pub n: usize,
    /// Valid SVGs out of n.
    pub valid_svg: Rate,
    /// Exact matches out of generations with a reference.
    pub exact_match: Rate,
    /// Prompt→SVG successes out of applicable prompts.
    pub prompt_success: Rate,
    /// Mean character 4-gram repeat ratio.
    pub repeat_ratio_mean: Option<f64>,
    /// Max of the same.
    pub repeat_ratio_max: Option<f64>,
    /// Mean repeat ratio over the references.
    pub repeat_ratio_reference: Option<f64>,
    /// Generations with any boundary glitch, out of n.
    pub boundary_glitches: Rate,
    /// Generations with text after the first `</svg>`.
    pub after_end: usize,
    /// Generations cut off inside markup or with open elements.
    pub unclosed: usize,
    /// Generations containing a non-ASCII character.
    pub non_ascii: usize,
    /// Generations starting with `<svg`, out of n.
    pub starts_with_svg: Rate,
    /// The visual metric over this family.
    #[serde(default)]
    pub visual: Option<VisualEval>,
}

impl From<&EvalResult> for FamilyEval {
    fn from(e: &EvalResult) -> Self {
        FamilyEval {
            n: e.n,
            valid_svg: e.valid_svg,
            exact_match: e.exact_match,
            prompt_success: e.prompt_success,
            repeat_ratio_mean: e.repeat_ratio_mean,
            repeat_ratio_max: e.repeat_ratio_max,
            repeat_ratio_reference: e.repeat_ratio_reference,
            boundary_glitches: e.boundary_glitches,
            after_end: e.after_end,
            unclosed: e.unclosed,
            non_ascii: e.non_ascii,
            starts_with_svg: e.starts_with_svg,
            visual: e.visual.clone(),
        }
    }
}

/// The name of a prompt family (`synthetic`, `tags`, `other`), as the keys
/// of [`EvalResult::families`].
pub fn family_name(kind: PromptKind) -> &'static str {
    match kind {
        PromptKind::Synthetic => "synthetic",
        PromptKind::Tags => "tags",
        PromptKind::Other => "other",
    }
}

/// The family a prompt's generation is reported under: its kind's name,
/// and `unseen` for a synthetic scene with an attribute pair no training
/// scene has (see [`crate::data::synth::UNSEEN_SHAPE_COLOUR`]).
pub fn prompt_family(prompt: &str) -> &'static str {
    match crate::data::synth::parse_prompt(prompt) {
        Ok(s) if s.unseen_combination() => "unseen",
        _ => family_name(prompt_kind(prompt)),
    }
}

/// How a family is titled in tables.
pub fn family_title(name: &str) -> &str {
    match name {
        "synthetic" => "synthetic",
        "tags" => "icons (tags)",
        "unseen" => "unseen combinations",
        other => other,
    }
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Evaluate generations (see the module doc for every definition),
/// overall and per prompt family.
pub fn evaluate(gens: &[Generation]) -> EvalResult {
    evaluate_with(gens, None)
}

/// [`evaluate`], with the visual metric's retrieval baseline and near-copy
/// check against `training` (the run's training icons) when given; the
/// visual score against the references is computed either way.
pub fn evaluate_with(gens: &[Generation], training: Option<&Training>) -> EvalResult {
    let mut e = evaluate_all(gens, training);
    let mut by_family: BTreeMap<&str, Vec<Generation>> = BTreeMap::new();
    for g in gens {
        by_family
            .entry(prompt_family(&g.prompt))
            .or_default()
            .push(g.clone());
    }
    e.families = by_family
        .into_iter()
        .map(|(k, v)| (k.to_string(), FamilyEval::from(&evaluate_all(&v, training))))
        .collect();
    e
}

/// The overall metrics of [`evaluate`], without the family breakdown.
fn evaluate_all(gens: &[Generation], training: Option<&Training>) -> EvalResult {
    let n = gens.len();
    let mut samples = Vec::with_capacity(n);
    let mut invalid_by_reason: BTreeMap<String, usize> = BTreeMap::new();
    let (mut valid, mut exact, mut with_ref) = (0, 0, 0);
    let (mut syn_ok, mut syn_n, mut tag_ok, mut tag_n, mut na) = (0, 0, 0, 0, 0);
    let (mut glitch, mut after_end, mut unclosed, mut stray) = (0, 0, 0, 0);
    let (mut non_ascii, mut starts) = (0, 0);
    let mut rr = Vec::new();
    let mut rr_ref = Vec::new();
    for (index, g) in gens.iter().enumerate() {
        let invalid = check_svg(&g.text).err();
        match invalid {
            None => valid += 1,
            Some(r) => *invalid_by_reason.entry(r.name().to_string()).or_insert(0) += 1,
        }
        let ex = g.reference.as_ref().map(|r| exact_match(&g.text, r));
        if let Some(e) = ex {
            with_ref += 1;
            exact += e as usize;
        }
        if let Some(r) = g.reference.as_ref().and_then(|r| repeat_ratio(r, REPEAT_N)) {
            rr_ref.push(r);
        }
        let (kind, outcome) = prompt_success(&g.prompt, &g.text);
        let ok = outcome == PromptOutcome::Success;
        match (&outcome, kind) {
            (PromptOutcome::NotApplicable, _) => na += 1,
            (_, PromptKind::Synthetic) => {
                syn_n += 1;
                syn_ok += ok as usize;
            }
            _ => {
                tag_n += 1;
                tag_ok += ok as usize;
            }
        }
        let r = repeat_ratio(&g.text, REPEAT_N);
        if let Some(r) = r {
            rr.push(r);
        }
        let gl = boundary_glitches(&g.text);
        glitch += gl.any() as usize;
        after_end += gl.after_end as usize;
        unclosed += gl.unclosed as usize;
        stray += gl.stray_close as usize;
        non_ascii += (!g.text.is_ascii()) as usize;
        starts += g.text.trim_start().starts_with("<svg") as usize;
        samples.push(SampleEval {
            index,
            invalid,
            exact: ex,
            kind,
            outcome,
            repeat_ratio: r,
            glitches: gl,
            visual: visual::score_sample(&g.prompt, &g.text, g.reference.as_deref(), training),
        });
    }
    EvalResult {
        n,
        visual: visual::aggregate(samples.iter().filter_map(|s| s.visual.as_ref())),
        valid_svg: Rate::new(valid, n),
        invalid_by_reason,
        exact_match: Rate::new(exact, with_ref),
        prompt_success: Rate::new(syn_ok + tag_ok, syn_n + tag_n),
        prompt_success_synthetic: Rate::new(syn_ok, syn_n),
        prompt_success_tags: Rate::new(tag_ok, tag_n),
        prompt_not_applicable: na,
        repeat_ratio_mean: mean(&rr),
        repeat_ratio_max: rr.iter().cloned().reduce(f64::max),
        repeat_ratio_reference: mean(&rr_ref),
        boundary_glitches: Rate::new(glitch, n),
        after_end,
        unclosed,
        stray_close: stray,
        non_ascii,
        starts_with_svg: Rate::new(starts, n),
        gen_tokens_per_s: None,
        val_loss: None,
        train_loss: None,
        families: BTreeMap::new(),
        samples,
    }
}

type VisualRow = (String, fn(&VisualEval) -> String);

/// The visual metric's table rows: (name, how to show it).
fn visual_rows_fns() -> Vec<VisualRow> {
    vec![
        ("visual score mean".to_string(), |v| opt(v.score_mean, 3)),
        ("  retrieval baseline mean".to_string(), |v| {
            opt(v.baseline_mean, 3)
        }),
        ("  above baseline".to_string(), |v| v.above_baseline.show()),
        ("  near-copies of training".to_string(), |v| {
            v.near_copies.show()
        }),
    ]
}

/// Left-aligned columns under a header and a rule.
fn text_table(head: &[String], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .chain(head.get(i))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..head.len()).map(width).collect();
    let line = |cells: &[String]| -> String {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let pad = widths[i] - c.chars().count();
                l.push_str(&format!("{c}{}  ", " ".repeat(pad)));
            }
        }
        l.push('\n');
        l
    };
    let mut s = line(head);
    let rule: Vec<String> = head
        .iter()
        .enumerate()
        .map(|(i, h)| {
            "-".repeat(if i == 0 {
                widths[0]
            } else {
                h.chars().count().max(5)
            })
        })
        .collect();
    s.push_str(&line(&rule));
    for r in rows {
        s.push_str(&line(r));
    }
    s
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("N/A".to_string(), |v| format!("{v:.digits$}"))
}

impl EvalResult {
    /// The summary rows as (metric, value) pairs, in display order.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("generations".to_string(), self.n.to_string()),
            ("valid SVG".to_string(), self.valid_svg.show()),
        ];
        for (k, c) in &self.invalid_by_reason {
            v.push((format!("  invalid: {k}"), c.to_string()));
        }
        v.extend([
            ("exact match".to_string(), self.exact_match.show()),
            ("prompt→SVG success".to_string(), self.prompt_success.show()),
            (
                "  synthetic".to_string(),
                self.prompt_success_synthetic.show(),
            ),
            ("  icon tags".to_string(), self.prompt_success_tags.show()),
            (
                "  not applicable".to_string(),
                self.prompt_not_applicable.to_string(),
            ),
            (
                "repeat ratio (4-gram) mean / max".to_string(),
                format!(
                    "{} / {}",
                    opt(self.repeat_ratio_mean, 3),
                    opt(self.repeat_ratio_max, 3)
                ),
            ),
            (
                "  reference mean".to_string(),
                opt(self.repeat_ratio_reference, 3),
            ),
            (
                "boundary glitches".to_string(),
                self.boundary_glitches.show(),
            ),
            (
                "  text after </svg>".to_string(),
                self.after_end.to_string(),
            ),
            (
                "  unclosed / truncated".to_string(),
                self.unclosed.to_string(),
            ),
            (
                "  /svg> without <".to_string(),
                self.stray_close.to_string(),
            ),
            ("non-ASCII".to_string(), self.non_ascii.to_string()),
            ("starts with <svg".to_string(), self.starts_with_svg.show()),
            (
                "generation tokens/s".to_string(),
                opt(self.gen_tokens_per_s, 1),
            ),
            ("val loss".to_string(), opt(self.val_loss, 4)),
            (
                "val perplexity".to_string(),
                opt(self.val_loss.map(f64::exp), 2),
            ),
        ]);
        if let Some(vis) = &self.visual {
            v.extend(visual_rows_fns().into_iter().map(|(k, f)| (k, f(vis))));
        }
        if let Some(t) = self.train_loss {
            v.push(("train loss (same measure)".to_string(), format!("{t:.4}")));
        }
        v
    }

    /// The per-family table: column titles (one per family present) and
    /// rows of (metric, one value per family). Empty without families.
    pub fn family_rows(&self) -> (Vec<String>, Vec<(String, Vec<String>)>) {
        let fams: Vec<(&String, &FamilyEval)> = self.families.iter().collect();
        let titles = fams
            .iter()
            .map(|(k, _)| family_title(k).to_string())
            .collect();
        let row = |name: &str, f: &dyn Fn(&FamilyEval) -> String| {
            (name.to_string(), fams.iter().map(|(_, e)| f(e)).collect())
        };
        let rows = vec![
            row("generations", &|e| e.n.to_string()),
            row("valid SVG", &|e| e.valid_svg.show()),
            row("prompt→SVG success", &|e| e.prompt_success.show()),
            row("exact match", &|e| e.exact_match.show()),
            row("repeat ratio mean / max", &|e| {
                format!(
                    "{} / {}",
                    opt(e.repeat_ratio_mean, 3),
                    opt(e.repeat_ratio_max, 3)
                )
            }),
            row("  reference mean", &|e| opt(e.repeat_ratio_reference, 3)),
            row("text after </svg>", &|e| e.after_end.to_string()),
            row("boundary glitches", &|e| e.boundary_glitches.show()),
            row("starts with <svg", &|e| e.starts_with_svg.show()),
            row("non-ASCII", &|e| e.non_ascii.to_string()),
        ];
        let mut rows = rows;
        if fams.iter().any(|(_, e)| e.visual.is_some()) {
            for (k, f) in visual_rows_fns() {
                rows.push(row(&k, &|e| e.visual.as_ref().map_or("N/A".to_string(), f)));
            }
        }
        (titles, rows)
    }

    /// A plain-text table of [`EvalResult::rows`], then the per-family
    /// table of [`EvalResult::family_rows`].
    pub fn to_table(&self) -> String {
        let mut s = text_table(&["metric".to_string(), "value".to_string()], {
            &self
                .rows()
                .into_iter()
                .map(|(k, v)| vec![k, v])
                .collect::<Vec<_>>()
        });
        let (titles, rows) = self.family_rows();
        if !titles.is_empty() {
            let mut head = vec!["by prompt family".to_string()];
            head.extend(titles);
            let body: Vec<Vec<String>> = rows
                .into_iter()
                .map(|(k, vs)| std::iter::once(k).chain(vs).collect())
                .collect();
            s.push('\n');
            s.push_str(&text_table(&head, &body));
        }
        s
    }

    /// Write as pretty JSON, atomically.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let s = serde_json::to_string_pretty(self)?;
        crate::util::atomic_write(path, s.as_bytes())
    }

    /// Read an `eval.json` if the run has one (a corrupt one is an error
    /// naming it).
    pub fn read_if_present(path: &Path) -> Result<Option<EvalResult>> {
        if !crate::util::is_there(path) {
            return Ok(None);
        }
        Self::read_json(path).map(Some)
    }

    /// Read an `eval.json`.
    pub fn read_json(path: &Path) -> Result<EvalResult> {
        let s = crate::util::read_user_text(path)?;
        serde_json::from_str(&s).at(path.display())
    }
}
