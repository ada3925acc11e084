//! Retrieval by tags: the training row whose prompt shares the most tags
//! with a prompt. The visual metric's baseline is this pick, and with
//! `[data] exemplars = true` every prompt carries it, so the model learns
//! to edit the nearest known drawing instead of drawing from nothing.
//!
//! - **tags** of a prompt: its `[tag]` runs (lower-cased, trimmed), or
//!   else its lower-cased whitespace-separated words.
//! - **pick**: the row with the highest Jaccard overlap of tags
//!   (|A ∩ B| / |A ∪ B|, 0 when both are empty), the first in row order on
//!   ties. An exemplar is never a row with the prompt being conditioned:
//!   the split puts all rows of a prompt on one side, so a held-out
//!   prompt's pick always differs from it, and a training row's must too
//!   (a scene prompt has a dozen rows; picking a twin teaches copying).
//! - **conditioned prompt** (exemplars): `<like>` + the pick's prompt and
//!   text + `</like>` + the prompt, e.g.
//!   `<like>[arrow][left]<svg …>…</svg></like>[arrow][right]`. The model
//!   then writes the drawing for the last prompt. A C host that links the
//!   library builds the same string.

use super::Row;
use crate::error::Result;
use crate::rundir::DataDir;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Opens an exemplar inside a conditioned prompt.
pub const LIKE_OPEN: &str = "<like>";
/// Closes it; the prompt proper follows.
pub const LIKE_CLOSE: &str = "</like>";

/// `[a][b c][d]` → `["a", "b c", "d"]` (lower-cased, trimmed); `None` when
/// the prompt is not one or more bracketed tags.
pub fn parse_tags(prompt: &str) -> Option<Vec<String>> {
    let inner = prompt.trim().strip_prefix('[')?.strip_suffix(']')?;
    let tags: Vec<String> = inner
        .split("][")
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    if tags
        .iter()
        .any(|t| t.is_empty() || t.contains('[') || t.contains(']'))
    {
        return None;
    }
    Some(tags)
}

/// The tags a prompt retrieves by: its `[tag]` runs, or else (synthetic
/// scenes and other prompts) its lower-cased whitespace-separated words.
pub fn prompt_tags(prompt: &str) -> BTreeSet<String> {
    match parse_tags(prompt) {
        Some(t) => t.into_iter().collect(),
        None => prompt
            .split_whitespace()
            .map(|w| w.to_lowercase())
            .collect(),
    }
}

/// Tag sets of many prompts, with an inverted index so that a pick costs
/// the rows sharing a tag, not every row.
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// Tag count of each row.
    sizes: Vec<u32>,
    /// Rows holding each interned tag, ascending.
    postings: Vec<Vec<u32>>,
    ids: HashMap<String, u32>,
}

impl Index {
    /// Index `prompts` in order (row i is the i-th prompt).
    pub fn new<'a>(prompts: impl IntoIterator<Item = &'a str>) -> Index {
        let mut ix = Index::default();
        for (row, p) in prompts.into_iter().enumerate() {
            let tags = prompt_tags(p);
            ix.sizes.push(tags.len() as u32);
            for t in tags {
                let next = ix.ids.len() as u32;
                let id = *ix.ids.entry(t).or_insert(next);
                if id as usize == ix.postings.len() {
                    ix.postings.push(Vec::new());
                }
                ix.postings[id as usize].push(row as u32);
            }
        }
        ix
    }

    /// Rows indexed.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// The pick for `prompt` (see the module doc) among the rows not
    /// `excluded`; `None` when there is none.
    pub fn pick(&self, prompt: &str, excluded: impl Fn(usize) -> bool) -> Option<usize> {
        let tags = prompt_tags(prompt);
        let mut shared: HashMap<u32, u32> = HashMap::new();
        for t in &tags {
            if let Some(&id) = self.ids.get(t) {
                for &row in &self.postings[id as usize] {
                    *shared.entry(row).or_insert(0) += 1;
                }
            }
        }
        let mut rows: Vec<(u32, u32)> = shared.into_iter().collect();
        rows.sort_unstable();
        let mut best: Option<(usize, f64)> = None;
        for (row, inter) in rows {
            let row = row as usize;
            if excluded(row) {
                continue;
            }
            let union = tags.len() as u32 + self.sizes[row] - inter;
            let j = inter as f64 / union as f64;
            if best.is_none_or(|(_, b)| j > b) {
                best = Some((row, j));
            }
        }
        // No shared tag: every row ties at 0, so the first one wins.
        best.map(|b| b.0)
            .or_else(|| (0..self.len()).find(|&r| !excluded(r)))
    }
}

/// The training rows with a prompt, to condition prompts on their picks.
#[derive(Debug, Clone, Default)]
pub struct Exemplars {
    index: Index,
    rows: Vec<(String, String)>,
}

impl Exemplars {
    /// From the training rows (rows without a prompt are left out).
    pub fn new(train: &[Row]) -> Exemplars {
        let rows: Vec<(String, String)> = train
            .iter()
            .filter_map(|r| Some((r.prompt.clone()?, r.text.clone())))
            .collect();
        let index = Index::new(rows.iter().map(|r| r.0.as_str()));
        Exemplars { index, rows }
    }

    /// From a data folder's `train.jsonl` when `on` (`[data] exemplars`),
    /// else `None`.
    pub fn load(data_dir: &Path, on: bool) -> Result<Option<Exemplars>> {
        if !on {
            return Ok(None);
        }
        let rows = super::read_rows(&DataDir::new(data_dir).train_rows())?;
        Ok(Some(Exemplars::new(&rows)))
    }

    /// The training row `prompt` picks: never one with the same prompt.
    fn pick_row(&self, prompt: &str) -> Option<usize> {
        self.index.pick(prompt, |i| self.rows[i].0 == prompt)
    }

    /// The prompt of the training row `prompt` picks.
    pub fn pick(&self, prompt: &str) -> Option<&str> {
        Some(&self.rows[self.pick_row(prompt)?].0)
    }

    /// `prompt` conditioned on its pick (see the module doc); unchanged
    /// when there is none.
    pub fn condition(&self, prompt: &str) -> String {
        match self.pick_row(prompt) {
            Some(i) => {
                let (p, t) = &self.rows[i];
                format!("{LIKE_OPEN}{p}{t}{LIKE_CLOSE}{prompt}")
            }
            None => prompt.to_string(),
        }
    }

    /// Condition the prompt of every row with one.
    pub fn condition_rows(&self, rows: &mut [Row]) {
        for r in rows.iter_mut() {
            if let Some(p) = &r.prompt {
                r.prompt = Some(self.condition(p));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
        let u = a.union(b).count();
        if u == 0 {
            return 0.0;
        }
        a.intersection(b).count() as f64 / u as f64
    }

    /// The pick a scan over every row makes, the definition the index
    /// must agree with.
    fn scan(prompts: &[&str], q: &str, exclude: Option<usize>) -> Option<usize> {
        let t = prompt_tags(q);
        let mut best: Option<(usize, f64)> = None;
        for (i, p) in prompts.iter().enumerate() {
            if Some(i) == exclude {
                continue;
            }
            let j = jaccard(&t, &prompt_tags(p));
            if best.is_none_or(|(_, b)| j > b) {
                best = Some((i, j));
            }
        }
        best.map(|b| b.0)
    }

    #[test]
    fn tags() {
        assert_eq!(
            parse_tags("[Arrow][ chevron right ]"),
            Some(vec!["arrow".into(), "chevron right".into()])
        );
        assert_eq!(parse_tags("[a][]"), None);
        assert_eq!(parse_tags("a red circle"), None);
        assert_eq!(prompt_tags("A red  circle").len(), 3);
    }

    #[test]
    fn pick_agrees_with_a_full_scan() {
        let prompts = [
            "[square][red]",
            "[square][blue]",
            "[square][blue]",
            "a big red circle",
            "",
            "[arrow][left]",
            "[arrow][right][filled]",
            "two small red circles",
        ];
        let ix = Index::new(prompts);
        let queries = [
            "[blue][square]",
            "[red]",
            "[nothing]",
            "",
            "[arrow][right]",
            "a red circle",
            "[square][blue]",
        ];
        for q in queries {
            for ex in [None, Some(0), Some(1), Some(2), Some(6)] {
                let got = ix.pick(q, |r| Some(r) == ex);
                assert_eq!(got, scan(&prompts, q, ex), "{q:?} excluding {ex:?}");
            }
        }
        // Ties go to the first row; a row never picks itself.
        let none = |_| false;
        assert_eq!(ix.pick("[blue][square]", none), Some(1));
        assert_eq!(ix.pick("[square][blue]", |r| r == 1), Some(2));
        assert_eq!(ix.pick("[nothing]", none), Some(0));
        assert_eq!(ix.pick("[nothing]", |r| r == 0), Some(1));
        assert_eq!(Index::new(["[a]"]).pick("[a]", |r| r == 0), None);
        assert_eq!(Index::new([]).pick("[a]", none), None);
    }

    #[test]
    fn exemplars_condition_prompts() {
        let row = |p: Option<&str>, t: &str| Row {
            prompt: p.map(str::to_string),
            text: t.into(),
        };
        let train = vec![
            row(Some("[arrow][left]"), "<svg>L</svg>"),
            row(None, "no prompt"),
            row(Some("[arrow][right]"), "<svg>R</svg>"),
            // A second row of the same prompt (scenes have a dozen each).
            row(Some("[arrow][right]"), "<svg>R2</svg>"),
        ];
        let ex = Exemplars::new(&train);
        assert_eq!(ex.pick("[arrow][up]"), Some("[arrow][left]"));
        assert_eq!(
            ex.condition("[arrow][up]"),
            "<like>[arrow][left]<svg>L</svg></like>[arrow][up]"
        );
        let mut own = train.clone();
        ex.condition_rows(&mut own);
        // Each training row gets the other arrow: never itself, nor a row
        // of its own prompt.
        assert_eq!(
            own[0].prompt.as_deref(),
            Some("<like>[arrow][right]<svg>R</svg></like>[arrow][left]")
        );
        assert_eq!(own[1], train[1]);
        for r in &own[2..] {
            assert_eq!(
                r.prompt.as_deref(),
                Some("<like>[arrow][left]<svg>L</svg></like>[arrow][right]")
            );
        }
        let mut held = vec![row(Some("[arrow][right][up]"), "x")];
        ex.condition_rows(&mut held);
        assert!(held[0]
            .prompt
            .as_deref()
            .unwrap()
            .starts_with("<like>[arrow][right]<svg>R<"));
        assert_eq!(Exemplars::new(&[]).condition("[a]"), "[a]");
    }
}
