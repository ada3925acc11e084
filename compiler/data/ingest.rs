//! Stage 1: read sources into rows, run the gates, remove duplicates, split
//! train/val and write a self-describing data folder (see [`super`]).
//!
//! Gates, in order, each counted under its reason in the manifest:
//! `unreadable` (bad JSON / not UTF-8 / no `text`), `empty`, `reserved-token`
//! (`<eos>` / `<pad>` text inside a row), `non-ascii` (policy `reject`, or
//! nothing to transliterate to), `control-char` (bytes below 0x20 other than
//! tab/LF/CR, or 0x7F), `malformed-svg` (does not parse as XML with an `<svg>`
//! root), `too-long` (> `max_len` bytes), `duplicate`, `near-duplicate`.

use super::dedup::{Deduper, Dup};
use super::{canon, svg, AsciiPolicy, DataConfig, Format, Row};
use crate::error::{At, Result};
use crate::rundir::DataDir;
use crate::tokenizer::{EOS, PAD};
use crate::util::{atomic_write, sha256_hex, user_path, PathKind, Rng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A row as read, before the gates.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    /// `file` or `file:line`.
    pub origin: String,
    /// Optional prompt.
    pub prompt: Option<String>,
    /// The text, or why it could not be read.
    pub text: std::result::Result<String, String>,
    /// True when the text is SVG (normalized and parsed).
    pub is_svg: bool,
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    /// Where the row came from (`file:line`).
    pub origin: String,
    /// Gate name (`empty`, `non-ascii`, `malformed-svg`, ...).
    pub reason: String,
    /// Details (parser message, the row it duplicates...).
    pub detail: String,
}

/// Result of the gates on a list of rows.
#[derive(Debug, Clone, Default)]
pub struct Gated {
    /// Rows kept, in input order, with their origins.
    pub kept: Vec<(String, Row)>,
    /// Rows dropped, with reasons.
    pub rejected: Vec<Rejected>,
    /// Rows changed by transliteration (and kept or later rejected).
    pub transliterated: usize,
    /// Rows changed by SVG whitespace normalization.
    pub normalized: usize,
    /// SVG rows rewritten in canonical form.
    pub canonical: usize,
    /// SVG rows kept in their input form because the canonical one would
    /// not render to the same pixels (or could not be read).
    pub canonical_kept: usize,
}

impl Gated {
    /// Count of rejected rows per reason.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in &self.rejected {
            *m.entry(r.reason.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// All files under the sources that the format reads, sorted. Every path
/// is checked by [`user_path`] (a FIFO named `x.svg` would block the read
/// forever); a folder reached twice through symbolic links is walked once.
pub fn source_files(cfg: &DataConfig) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut walked = std::collections::HashSet::new();
    for src in &cfg.source {
        match user_path(src)? {
            PathKind::File => files.push(src.clone()),
            PathKind::Folder => walk(src, cfg.format, &mut walked, &mut files)?,
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// The files under `dir` the format reads, into `files`; `walked` holds
/// the folders already read (by their canonical path).
fn walk(
    dir: &Path,
    format: Format,
    walked: &mut std::collections::HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if !walked.insert(std::fs::canonicalize(&d).at(d.display())?) {
            continue;
        }
        for e in std::fs::read_dir(&d).at(d.display())? {
            let p = e.at(d.display())?.path();
            // A file the format does not read is skipped, whatever it is;
            // anything else must be a folder or a regular file.
            if !wanted(&p, format) && !p.is_dir() {
                continue;
            }
            match user_path(&p)? {
                PathKind::Folder => stack.push(p),
                PathKind::File => files.push(p),
            }
        }
    }
    Ok(())
}

fn ext(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

fn wanted(p: &Path, f: Format) -> bool {
    let e = ext(p);
    match f {
        Format::Svg => e == "svg",
        Format::Jsonl => e == "jsonl",
        Format::Text => e == "txt",
        Format::Auto => matches!(e.as_str(), "svg" | "jsonl" | "txt"),
        Format::Synthetic => false,
    }
}

/// Tags from a file name: `arrow-left.svg` → `[arrow][left]`.
pub fn prompt_from_name(p: &Path) -> String {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    stem.split(['-', '_', ' ', '.'])
        .filter(|t| !t.is_empty())
        .map(|t| format!("[{}]", t.to_lowercase()))
        .collect()
}

/// Origin prefix of the rows made by [`super::synth`].
pub const SYNTHETIC_ORIGIN: &str = "synthetic:";

/// `n` synthetic scene rows from `seed`, numbered from `first`.
fn synthetic_rows(n: usize, seed: u64, first: usize) -> Vec<RawRow> {
    super::synth::generate(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, r)| RawRow {
            origin: format!("{SYNTHETIC_ORIGIN}{}", first + i + 1),
            prompt: r.prompt,
            text: Ok(r.text),
            is_svg: true,
        })
        .collect()
}

/// Read every source into raw rows (unreadable rows become errors, not
/// failures), then append `synthetic` scene rows.
pub fn read_sources(cfg: &DataConfig) -> Result<Vec<RawRow>> {
    let mut rows = if cfg.format == Format::Synthetic {
        synthetic_rows(cfg.synth_count, cfg.seed, 0)
    } else {
        read_files(cfg)?
    };
    if cfg.synthetic > 0 {
        // Numbered after any format = "synthetic" rows; the same seed would
        // repeat those rows, so the mix takes the next one.
        let seed = if cfg.format == Format::Synthetic {
            cfg.seed.wrapping_add(1)
        } else {
            cfg.seed
        };
        let first = if cfg.format == Format::Synthetic {
            cfg.synth_count
        } else {
            0
        };
        rows.extend(synthetic_rows(cfg.synthetic, seed, first));
    }
    Ok(rows)
}

fn read_files(cfg: &DataConfig) -> Result<Vec<RawRow>> {
    let mut rows = Vec::new();
    for f in source_files(cfg)? {
        let bytes = std::fs::read(&f).at(f.display())?;
        let fmt = match cfg.format {
            Format::Auto => match ext(&f).as_str() {
                "svg" => Format::Svg,
                "jsonl" => Format::Jsonl,
                _ => Format::Text,
            },
            x => x,
        };
        let name = f.display().to_string();
        match fmt {
            Format::Svg => rows.push(RawRow {
                origin: name,
                prompt: cfg.prompt_from_name.then(|| prompt_from_name(&f)),
                text: String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}")),
                is_svg: true,
            }),
            Format::Text if cfg.whole_files => rows.push(RawRow {
                origin: name,
                prompt: None,
                text: String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}")),
                is_svg: false,
            }),
            Format::Text => {
                let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
                if lines.last().is_some_and(|l| l.is_empty()) {
                    lines.pop(); // the final newline
                }
                for (i, line) in lines.into_iter().enumerate() {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    rows.push(RawRow {
                        origin: format!("{name}:{}", i + 1),
                        prompt: None,
                        text: String::from_utf8(line.to_vec())
                            .map_err(|e| format!("not UTF-8: {e}")),
                        is_svg: false,
                    });
                }
            }
            _ => rows.extend(jsonl_rows(&name, &bytes)),
        }
    }
    Ok(rows)
}

/// The rows of a JSON Lines file's bytes (`{"text": ..., "prompt": ...}` a
/// line; blank lines skipped). A line that is not UTF-8 or not a row comes
/// back as a row whose text is the reason, for the gates to reject and count.
pub fn jsonl_rows(name: &str, bytes: &[u8]) -> Vec<RawRow> {
    let mut rows = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let origin = format!("{name}:{}", i + 1);
        let parsed: std::result::Result<Row, String> = std::str::from_utf8(line)
            .map_err(|e| format!("not UTF-8: {e}"))
            .and_then(|l| serde_json::from_str::<Row>(l).map_err(|e| format!("bad JSON row: {e}")));
        match parsed {
            Ok(r) => {
                let is_svg = r.text.trim_start().starts_with("<svg")
                    || r.text.trim_start().starts_with("<?xml");
                rows.push(RawRow {
                    origin,
                    prompt: r.prompt,
                    text: Ok(r.text),
                    is_svg,
                })
            }
            Err(e) => rows.push(RawRow {
                origin,
                prompt: None,
                text: Err(e),
                is_svg: false,
            }),
        }
    }
    rows
}

/// ASCII replacement for common non-ASCII characters.
fn translit_char(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' | '\u{00AB}' | '\u{00BB}' => "\"",
        '\u{2010}'..='\u{2015}' | '\u{2212}' => "-",
        '\u{2026}' => "...",
        '\u{00A0}' | '\u{2002}'..='\u{200A}' | '\u{202F}' => " ",
        '\u{200B}' | '\u{FEFF}' => "",
        '\u{00D7}' => "x",
        '\u{00B0}' => "deg",
        '\u{2022}' | '\u{00B7}' => "*",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "A",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'È' | 'É' | 'Ê' | 'Ë' => "E",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' => "I",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => "O",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' => "U",
        'ç' => "c",
        'Ç' => "C",
        'ñ' => "n",
        'Ñ' => "N",
        'ß' => "ss",
        'æ' => "ae",
        'Æ' => "AE",
        'ý' | 'ÿ' => "y",
        _ => return None,
    })
}

/// Transliterate `s` to ASCII. In SVG, characters without a replacement
/// become `&#x..;` references outside tags (text) and inside attribute
/// values, which XML reads back as the same character. `None`: impossible.
pub fn transliterate(s: &str, is_svg: bool) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        if c.is_ascii() {
            match (c, in_tag, quote) {
                ('<', false, _) => in_tag = true,
                ('>', true, None) => in_tag = false,
                ('"' | '\'', true, None) => quote = Some(c),
                (q, true, Some(o)) if q == o => quote = None,
                _ => {}
            }
            out.push(c);
        } else if let Some(r) = translit_char(c) {
            out.push_str(r);
        } else if is_svg && (!in_tag || quote.is_some()) {
            out.push_str(&format!("&#x{:X};", c as u32));
        } else {
            return None;
        }
    }
    Some(out)
}

/// Why a gate dropped a row: the gate's name and the details.
type Reject = (&'static str, String);

/// Run the gates and deduplication over raw rows (see the module doc).
pub fn gate(raw: Vec<RawRow>, cfg: &DataConfig) -> Gated {
    let mut g = Gated::default();
    let mut dedup = Deduper::new(cfg.near_threshold, cfg.round_decimals);
    let mut origins: Vec<String> = Vec::new();
    for r in raw {
        let RawRow {
            origin,
            prompt,
            text,
            is_svg,
        } = r;
        let row = text
            .map_err(|e| ("unreadable", e))
            .and_then(|text| clean_row(prompt, text, is_svg, cfg, &mut g));
        let row = match row {
            Ok(row) => row,
            Err((reason, detail)) => {
                g.reject(&origin, reason, detail);
                continue;
            }
        };
        let key = format!("{}\0{}", row.prompt.as_deref().unwrap_or(""), row.text);
        let id = origins.len();
        match dedup.check(id, &key) {
            None => {
                origins.push(origin.clone());
                g.kept.push((origin, row));
            }
            Some(dup) => {
                let (reason, detail) = duplicate(dup, &origins);
                g.reject(&origin, reason, detail);
            }
        }
    }
    g
}

impl Gated {
    fn reject(&mut self, origin: &str, reason: &str, detail: String) {
        self.rejected.push(Rejected {
            origin: origin.to_string(),
            reason: reason.into(),
            detail,
        })
    }
}

/// The gates of one readable row, in the module doc's order up to
/// `too-long`: the row as kept, or why not. Transliterations, SVG
/// normalizations and canonical forms are counted in `g`.
fn clean_row(
    prompt: Option<String>,
    text: String,
    is_svg: bool,
    cfg: &DataConfig,
    g: &mut Gated,
) -> std::result::Result<Row, Reject> {
    let mut prompt = prompt.filter(|p| !p.is_empty());
    let mut text = if is_svg {
        text.trim().to_string()
    } else {
        text
    };
    if text.trim().is_empty() {
        return Err(("empty", String::new()));
    }
    let both = format!("{}{}", prompt.as_deref().unwrap_or(""), text);
    if let Some(t) = [EOS, PAD].iter().find(|t| both.contains(**t)) {
        return Err(("reserved-token", format!("contains `{t}`")));
    }
    if let Some(first) = both.chars().find(|c| !c.is_ascii()) {
        (prompt, text) = to_ascii(&prompt, &text, first, is_svg, cfg, g)?;
    }
    if let Some(c) = format!("{}{}", prompt.as_deref().unwrap_or(""), text)
        .bytes()
        .find(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7F)
    {
        return Err(("control-char", format!("byte 0x{c:02X}")));
    }
    if is_svg {
        text = svg_gates(text, cfg, g)?;
    }
    let len = prompt.as_ref().map_or(0, |p| p.len()) + text.len();
    if len > cfg.max_len {
        return Err(("too-long", format!("{len} bytes > max_len {}", cfg.max_len)));
    }
    Ok(Row { prompt, text })
}

/// The `non-ascii` gate of a row whose first non-ASCII char is `first`:
/// rejected by policy, or transliterated (counted in `g`) if every char has
/// a transliteration.
fn to_ascii(
    prompt: &Option<String>,
    text: &str,
    first: char,
    is_svg: bool,
    cfg: &DataConfig,
    g: &mut Gated,
) -> std::result::Result<(Option<String>, String), Reject> {
    if cfg.ascii == AsciiPolicy::Reject {
        return Err((
            "non-ascii",
            format!("first non-ASCII char U+{:04X}", first as u32),
        ));
    }
    g.transliterated += 1;
    let p2 = prompt.as_deref().map(|p| transliterate(p, false));
    match (p2, transliterate(text, is_svg)) {
        (Some(None), _) | (_, None) => Err((
            "non-ascii",
            format!("U+{:04X} has no ASCII transliteration", first as u32),
        )),
        (p, Some(t)) => Ok((p.flatten(), t)),
    }
}

/// The `malformed-svg` gate, then whitespace normalization and (with
/// `svg = "canonical"`) the canonical form where it renders the same pixels;
/// each change counted in `g`.
fn svg_gates(
    mut text: String,
    cfg: &DataConfig,
    g: &mut Gated,
) -> std::result::Result<String, Reject> {
    svg::check(&text).map_err(|e| ("malformed-svg", e))?;
    let n = svg::normalize(&text).map_err(|e| ("malformed-svg", e))?;
    if n != text {
        g.normalized += 1;
        text = n;
    }
    if cfg.svg == super::SvgForm::Canonical {
        let c = canon::canonicalize(&text);
        if c != text {
            if svg::check(&c).is_ok() && canon::same_pixels(&text, &c) {
                g.canonical += 1;
                text = c;
            } else {
                g.canonical_kept += 1;
            }
        }
    }
    Ok(text)
}

/// The `duplicate` / `near-duplicate` rejection of a row the deduper
/// matched to an earlier kept row (its origin in `origins`).
fn duplicate(dup: Dup, origins: &[String]) -> Reject {
    match dup {
        Dup::Exact(o) => ("duplicate", format!("same as {}", origins[o])),
        Dup::Normalized(o) => (
            "near-duplicate",
            format!(
                "same as {} after whitespace/number normalization",
                origins[o]
            ),
        ),
        Dup::Similar(o, j) => (
            "near-duplicate",
            format!("similarity {j:.2} to {}", origins[o]),
        ),
    }
}

/// Split row indices into (train, val) by `val_ratio` with `seed`: whole rows,
/// shuffled; at least one val row when there are two rows or more and the
/// ratio is positive.
pub fn split(n: usize, val_ratio: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut idx);
    let mut nv = (n as f64 * val_ratio.clamp(0.0, 1.0)).round() as usize;
    if val_ratio > 0.0 && n >= 2 {
        nv = nv.clamp(1, n - 1);
    }
    let val = idx[..nv].to_vec();
    let train = idx[nv..].to_vec();
    (train, val)
}

/// The prompt families a data folder keeps apart in its split: rows read
/// from `source`, rows made by the synthetic scene generator, and the
/// synthetic scenes with an attribute pair no training scene has
/// ([`super::synth::Scene::unseen_combination`]), all held out.
pub const FAMILIES: [&str; 3] = ["source", "synthetic", "unseen"];

/// Index of the `unseen` family in [`FAMILIES`].
const UNSEEN: usize = 2;

/// Family index (into [`FAMILIES`]) of a row by its origin and prompt.
pub fn family_of(origin: &str, row: &Row) -> usize {
    if !origin.starts_with(SYNTHETIC_ORIGIN) {
        return 0;
    }
    let unseen = row
        .prompt
        .as_deref()
        .and_then(|p| super::synth::parse_prompt(p).ok())
        .is_some_and(|s| s.unseen_combination());
    if unseen {
        UNSEEN
    } else {
        1
    }
}

/// Split kept rows into (train, val) indices, per family and by prompt:
///
/// - each family (see [`FAMILIES`]) is split on its own with [`split`], so
///   both get `val_ratio` of their rows (seed `seed + family index`);
/// - the unit of the split is a prompt: rows sharing a prompt go to the
///   same side, so no validation prompt is ever trained on (a row without
///   a prompt is its own unit). With unique prompts this is [`split`] over
///   the rows, unchanged;
/// - validation rows alternate between the families, and within a family
///   every prompt comes once before any comes twice, so the first `n`
///   held-out rows cover the families evenly and with distinct prompts;
/// - the `unseen` family goes to validation whole;
/// - with more than one family, the training rows are shuffled together.
pub fn split_rows(kept: &[(String, Row)], val_ratio: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut train = Vec::new();
    let mut per_family: Vec<Vec<usize>> = Vec::new();
    for fam in 0..FAMILIES.len() {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut by_prompt: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, (origin, row)) in kept.iter().enumerate() {
            if family_of(origin, row) != fam {
                continue;
            }
            match row.prompt.as_deref() {
                Some(p) => match by_prompt.get(p) {
                    Some(&g) => groups[g].push(i),
                    None => {
                        by_prompt.insert(p, groups.len());
                        groups.push(vec![i]);
                    }
                },
                None => groups.push(vec![i]),
            }
        }
        if groups.is_empty() {
            continue;
        }
        let (gt, gv) = if fam == UNSEEN {
            (Vec::new(), (0..groups.len()).collect())
        } else {
            split(groups.len(), val_ratio, seed.wrapping_add(fam as u64))
        };
        train.extend(gt.iter().flat_map(|&g| groups[g].iter().copied()));
        let depth = gv.iter().map(|&g| groups[g].len()).max().unwrap_or(0);
        let val: Vec<usize> = (0..depth)
            .flat_map(|k| {
                gv.iter()
                    .filter_map(|&g| groups[g].get(k).copied())
                    .collect::<Vec<_>>()
            })
            .collect();
        per_family.push(val);
    }
    if per_family.len() > 1 {
        // Mixed families: shuffle, so that rows packing puts rows of both
        // in a window and any run of training rows holds both.
        Rng::new(seed).shuffle(&mut train);
    }
    let longest = per_family.iter().map(Vec::len).max().unwrap_or(0);
    let val = (0..longest)
        .flat_map(|k| per_family.iter().filter_map(move |v| v.get(k).copied()))
        .collect();
    (train, val)
}

/// Rows of one family in a data folder.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FamilyCounts {
    /// Rows kept after the gates.
    pub kept: usize,
    /// Rows in train.jsonl.
    pub train: usize,
    /// Rows in val.jsonl.
    pub val: usize,
    /// Distinct prompts in val.jsonl (none of them in train.jsonl).
    pub val_prompts: usize,
}

/// Per-family counts of a split.
fn family_counts(
    kept: &[(String, Row)],
    train: &[usize],
    val: &[usize],
) -> BTreeMap<String, FamilyCounts> {
    let mut counts: Vec<FamilyCounts> = vec![FamilyCounts::default(); FAMILIES.len()];
    let mut prompts: Vec<std::collections::BTreeSet<&str>> =
        vec![Default::default(); FAMILIES.len()];
    let fam = |i: usize| family_of(&kept[i].0, &kept[i].1);
    for i in 0..kept.len() {
        counts[fam(i)].kept += 1;
    }
    for &i in train {
        counts[fam(i)].train += 1;
    }
    for &i in val {
        let f = fam(i);
        counts[f].val += 1;
        if let Some(p) = &kept[i].1.prompt {
            prompts[f].insert(p);
        }
    }
    FAMILIES
        .iter()
        .zip(counts)
        .zip(prompts)
        .filter(|((_, c), _)| c.kept > 0)
        .map(|((name, c), p)| {
            (
                name.to_string(),
                FamilyCounts {
                    val_prompts: p.len(),
                    ..c
                },
            )
        })
        .collect()
}

/// What `ingest` did (also stored in `manifest.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Always `"irc-data"`.
    pub kind: String,
    /// Format version (1).
    pub version: u32,
    /// Hash of the options and of every source file: the cache key.
    pub inputs_hash: String,
    /// Options used.
    pub options: DataConfig,
    /// Source files with their SHA-256.
    pub sources: Vec<(String, String)>,
    /// Rows read.
    pub read: usize,
    /// Rows kept (train + val).
    pub kept: usize,
    /// Rows in train.jsonl.
    pub train: usize,
    /// Rows in val.jsonl.
    pub val: usize,
    /// Rejected rows per reason.
    pub rejected: BTreeMap<String, usize>,
    /// Rows changed by transliteration.
    pub transliterated: usize,
    /// SVG rows changed by whitespace normalization.
    pub normalized: usize,
    /// SVG rows rewritten in canonical form (`[data] svg = "canonical"`).
    #[serde(default)]
    pub canonical: usize,
    /// SVG rows left in their input form: the canonical one would not
    /// render to the same pixels.
    #[serde(default)]
    pub canonical_kept: usize,
    /// Rows with a prompt.
    pub prompted: usize,
    /// Counts per family (`source`, `synthetic`) that has rows.
    #[serde(default)]
    pub families: BTreeMap<String, FamilyCounts>,
    /// Bytes of samples (prompt + text) in train and val.
    pub train_bytes: usize,
    /// Bytes of samples in val.
    pub val_bytes: usize,
    /// Boundary token appended to every sample at tokenization.
    pub eos: String,
    /// SHA-256 of train.jsonl, val.jsonl and rejected.jsonl.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// Read `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let p = DataDir::new(dir).manifest();
        let t = std::fs::read_to_string(&p).at(p.display())?;
        serde_json::from_str(&t).at(p.display())
    }
}

/// The cache key of an ingest: the options it reads and the source
/// contents. `packing`, `mask_prompt` and `exemplars` only shape token
/// files and windows, so they are left out: changing them does not redo
/// stage 1.
pub fn inputs_hash(cfg: &DataConfig) -> Result<(String, Vec<(String, String)>)> {
    let mut sources = Vec::new();
    if cfg.format != Format::Synthetic {
        for f in source_files(cfg)? {
            let b = std::fs::read(&f).at(f.display())?;
            sources.push((f.display().to_string(), sha256_hex(&b)));
        }
    }
    let mut key = serde_json::to_string(&DataConfig {
        packing: Default::default(),
        mask_prompt: false,
        exemplars: false,
        ..cfg.clone()
    })?;
    for (p, h) in &sources {
        key.push_str(&format!("\n{p} {h}"));
    }
    key.push_str(&format!("\nirc-data v1 {}", env!("CARGO_PKG_VERSION")));
    Ok((sha256_hex(key.as_bytes()), sources))
}

/// The sources, for a message: `a, b/`.
fn sources_named(cfg: &DataConfig) -> String {
    let v: Vec<String> = cfg.source.iter().map(|p| p.display().to_string()).collect();
    v.join(", ")
}

/// Why an ingest read no row at all: no file of the format, or files
/// without a sample.
fn nothing_read(cfg: &DataConfig) -> String {
    let exts = match cfg.format {
        Format::Svg => ".svg",
        Format::Jsonl => ".jsonl",
        Format::Text => ".txt",
        _ => ".svg, .jsonl or .txt",
    };
    let files = source_files(cfg).map_or(0, |f| f.len());
    if files == 0 {
        format!(
            "{}: no {exts} files; expected a corpus to read (check the format)",
            sources_named(cfg)
        )
    } else {
        format!(
            "{}: {files} files read, no samples in them; expected at least one row",
            sources_named(cfg)
        )
    }
}

/// Stage 1: read, gate, dedup, split and write `out/` (atomic writes).
pub fn ingest(cfg: &DataConfig, out: &Path) -> Result<Manifest> {
    if !(0.0..1.0).contains(&cfg.val_ratio) {
        crate::bail!("val_ratio {} must be in [0, 1)", cfg.val_ratio);
    }
    let (inputs_hash, sources) = inputs_hash(cfg)?;
    let raw = read_sources(cfg)?;
    let read = raw.len();
    if read == 0 {
        crate::bail!("{}", nothing_read(cfg));
    }
    let g = gate(raw, cfg);
    if g.kept.is_empty() {
        crate::bail!(
            "{}: no row kept: {read} read, every one rejected ({})",
            sources_named(cfg),
            g.counts()
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (ti, vi) = split_rows(&g.kept, cfg.val_ratio, cfg.seed);
    let families = family_counts(&g.kept, &ti, &vi);
    let train: Vec<Row> = ti.iter().map(|&i| g.kept[i].1.clone()).collect();
    let val: Vec<Row> = vi.iter().map(|&i| g.kept[i].1.clone()).collect();
    let mut files = BTreeMap::new();
    let tj = super::rows_to_jsonl(&train);
    let vj = super::rows_to_jsonl(&val);
    let mut rj = String::new();
    for r in &g.rejected {
        rj.push_str(&serde_json::to_string(r)?);
        rj.push('\n');
    }
    for (name, body) in [
        (DataDir::TRAIN_ROWS, &tj),
        (DataDir::VAL_ROWS, &vj),
        (DataDir::REJECTED_ROWS, &rj),
    ] {
        atomic_write(&out.join(name), body.as_bytes())?;
        files.insert(name.to_string(), sha256_hex(body.as_bytes()));
    }
    let m = Manifest {
        kind: "irc-data".into(),
        version: 1,
        inputs_hash,
        options: cfg.clone(),
        sources,
        read,
        kept: g.kept.len(),
        train: train.len(),
        val: val.len(),
        rejected: g.counts(),
        transliterated: g.transliterated,
        normalized: g.normalized,
        canonical: g.canonical,
        canonical_kept: g.canonical_kept,
        prompted: g.kept.iter().filter(|(_, r)| r.prompt.is_some()).count(),
        families,
        train_bytes: train.iter().map(|r| r.sample().len()).sum(),
        val_bytes: val.iter().map(|r| r.sample().len()).sum(),
        eos: EOS.into(),
        files,
    };
    atomic_write(
        &DataDir::new(out).manifest(),
        serde_json::to_string_pretty(&m)?.as_bytes(),
    )?;
    Ok(m)
}
