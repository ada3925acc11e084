//! Stages 1 and 3 of the pipeline: ingest samples into a self-describing
//! data folder ([`ingest`]), then tokenize them once into binary token files
//! and cut those into training batches ([`prep`]). [`pipeline`] runs stages
//! 1 → 3 for a spec's `[data]` and `[tokenizer]` sections with caching;
//! [`synth`] generates a prompted synthetic scene set.
//!
//! A data folder (written by `irc data ingest`) holds:
//!
//! | file | content |
//! |---|---|
//! | `train.jsonl`, `val.jsonl` | one row a line: `{"prompt": "...", "text": "..."}` (`prompt` optional) |
//! | `rejected.jsonl` | one line per rejected row: origin (`file:line`), reason, detail |
//! | `manifest.json` | options, sources with SHA-256, counts per gate, file hashes |
//!
//! A sample is `prompt + text`, and every sample ends with an explicit
//! `<eos>` token when it is tokenized; the literal texts `<eos>` and `<pad>`
//! are rejected inside rows so they can never be confused with boundaries.

pub mod canon;
pub mod dedup;
pub mod ingest;
pub mod pipeline;
pub mod prep;
pub mod retrieval;
pub mod svg;
pub mod synth;

use crate::error::{At, Result};
use std::path::{Path, PathBuf};

/// Input format of `[data] source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// By file extension: `.svg` → svg, `.jsonl` → jsonl, anything else → text.
    #[default]
    Auto,
    /// `.svg` files (folders are searched recursively), one sample a file.
    Svg,
    /// Text files: one sample a line, or one a file with `whole_files`.
    Text,
    /// JSON Lines rows with a `text` field and an optional `prompt` field.
    Jsonl,
    /// The generated scene set of [`synth`] (`synth_count` rows, `seed`).
    Synthetic,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Format::Auto),
            "svg" => Ok(Format::Svg),
            "text" | "txt" => Ok(Format::Text),
            "jsonl" => Ok(Format::Jsonl),
            "synthetic" | "synth" => Ok(Format::Synthetic),
            _ => Err(format!(
                "unknown format `{s}` (expected auto, svg, text, jsonl or synthetic)"
            )),
        }
    }
}

/// What to do with a row holding non-ASCII characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AsciiPolicy {
    /// Drop the row (counted as `non-ascii`).
    #[default]
    Reject,
    /// Replace common characters (quotes, dashes, accented Latin letters,
    /// no-break space...) by ASCII; in SVG anything else becomes a numeric
    /// character reference `&#x...;` (same meaning). Rows still holding
    /// non-ASCII text are rejected. Changed rows are counted.
    Transliterate,
}

impl std::str::FromStr for SvgForm {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "canonical" => Ok(SvgForm::Canonical),
            "whitespace" => Ok(SvgForm::Whitespace),
            _ => Err(format!(
                "unknown svg form `{s}` (expected canonical or whitespace)"
            )),
        }
    }
}

impl std::str::FromStr for AsciiPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "reject" => Ok(AsciiPolicy::Reject),
            "transliterate" => Ok(AsciiPolicy::Transliterate),
            _ => Err(format!(
                "unknown ascii policy `{s}` (expected reject or transliterate)"
            )),
        }
    }
}

/// How token files are cut into training windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Packing {
    /// `rows` when any row has a prompt, else `stream`.
    #[default]
    Auto,
    /// One token stream cut every `seq_len` tokens (windows of `seq_len + 1`).
    Stream,
    /// Whole rows packed into windows, never split; longer rows dropped.
    Rows,
}

/// `[data]` section of the model TOML.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Files or folders to read (folders recursively). Relative paths are
    /// taken from the spec's folder by the caller.
    pub source: Vec<PathBuf>,
    /// Input format.
    pub format: Format,
    /// Text format: one sample per file instead of one per line.
    pub whole_files: bool,
    /// SVG format: a prompt of tags from the file name (`arrow-left.svg` →
    /// `[arrow][left]`).
    pub prompt_from_name: bool,
    /// Non-ASCII rows: `reject` or `transliterate`.
    pub ascii: AsciiPolicy,
    /// Longest sample kept, in bytes of prompt + text (after normalization).
    pub max_len: usize,
    /// Near-duplicate threshold: estimated Jaccard similarity of 5-byte
    /// shingles at or above which a row is dropped; `1.0` turns it off
    /// (exact and whitespace/number-normalized duplicates are still removed).
    pub near_threshold: f64,
    /// Decimals kept when rounding numbers for the normalized duplicate key.
    pub round_decimals: usize,
    /// Fraction of rows (after gates) that go to the validation set.
    pub val_ratio: f64,
    /// Seed for the split (and for `synthetic`).
    pub seed: u64,
    /// Rows for `format = "synthetic"`.
    pub synth_count: usize,
    /// Synthetic scene rows ([`synth`], seeded with `seed`) mixed in with
    /// the `source` rows before the gates and the split (0: none).
    pub synthetic: usize,
    /// Mask prompt positions out of the loss (targets -100).
    pub mask_prompt: bool,
    /// Windowing of token files.
    pub packing: Packing,
    /// Condition every prompt on the training row it retrieves by tags
    /// ([`retrieval`]): the model sees the nearest known drawing and
    /// writes the one asked for. Shapes the token files only.
    pub exemplars: bool,
    /// How SVG rows are written: `canonical` (numbers and path data one
    /// way, see [`canon`]) or `whitespace` (only whitespace normalized).
    pub svg: SvgForm,
}

/// How SVG rows are written after the gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SvgForm {
    /// Whitespace normalized, then [`canon::canonicalize`]d where the
    /// rendered pixels stay the same.
    #[default]
    Canonical,
    /// Whitespace normalized only ([`svg::normalize`]).
    Whitespace,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: Vec::new(),
            format: Format::Auto,
            whole_files: false,
            prompt_from_name: false,
            ascii: AsciiPolicy::Reject,
            max_len: 8192,
            near_threshold: 0.95,
            round_decimals: 2,
            val_ratio: 0.1,
            seed: 1234,
            synth_count: 2000,
            synthetic: 0,
            mask_prompt: false,
            packing: Packing::Auto,
            exemplars: false,
            svg: SvgForm::Canonical,
        }
    }
}

/// One sample: an optional prompt and the text (the SVG).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Row {
    /// Conditioning prefix (e.g. `[circle][red][2]`); not part of `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The sample itself.
    pub text: String,
}

impl Row {
    /// `prompt + text`: the bytes a model sees before `<eos>`.
    pub fn sample(&self) -> String {
        match &self.prompt {
            Some(p) => format!("{p}{}", self.text),
            None => self.text.clone(),
        }
    }
}

/// Read a rows file (`train.jsonl` style). Errors name the file and line.
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let text = crate::util::read_user_text(path)?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: Row = serde_json::from_str(line).at(format!("{}:{}", path.display(), i + 1))?;
        rows.push(r);
    }
    Ok(rows)
}

/// Rows as JSON Lines text.
pub fn rows_to_jsonl(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        s.push_str(&serde_json::to_string(r).expect("rows serialize"));
        s.push('\n');
    }
    s
}

/// Prompts and texts of rows as separate tokenizer training samples (they
/// are encoded apart, see [`prep::encode_row`]).
pub fn row_samples(rows: &[Row]) -> Vec<String> {
    let mut v = Vec::with_capacity(rows.len() * 2);
    for r in rows {
        if let Some(p) = &r.prompt {
            v.push(p.clone());
        }
        v.push(r.text.clone());
    }
    v
}

/// Training samples for the tokenizer from a path: a data folder (its
/// `train.jsonl`), a `.jsonl` rows file, or a text file (one sample a line).
/// Nothing to learn from (an empty file, binary data) is an error naming
/// the file.
pub fn samples_from(path: &Path) -> Result<Vec<String>> {
    let (file, samples) = if crate::util::user_path(path)? == crate::util::PathKind::Folder {
        let f = crate::rundir::DataDir::new(path).train_rows();
        let rows = read_rows(&f)?;
        (f, row_samples(&rows))
    } else if path.extension().is_some_and(|e| e == "jsonl") {
        (path.to_path_buf(), row_samples(&read_rows(path)?))
    } else {
        let text = crate::util::read_user_text(path)?;
        if let Some(at) = text.find('\0') {
            crate::bail!(
                "{}: binary data (a NUL byte at {at}); expected text, a sample a line",
                path.display()
            );
        }
        let lines = text.lines().filter(|l| !l.is_empty()).map(str::to_string);
        (path.to_path_buf(), lines.collect())
    };
    if samples.iter().all(|s| s.trim().is_empty()) {
        crate::bail!(
            "{}: no samples; expected text to learn merges from",
            file.display()
        );
    }
    Ok(samples)
}
