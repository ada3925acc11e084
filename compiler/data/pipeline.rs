//! Stages 1 → 3 for a spec's `[data]` and `[tokenizer]` sections, with each
//! stage skipped when the hash of its inputs matches the one recorded by the
//! previous run and its outputs are unchanged. Each stage is keyed by the
//! content of what it reads, not by whether an earlier stage ran: a stage 1
//! rerun that writes the same `train.jsonl` leaves the tokenizer alone.
//!
//! Output folder:
//!
//! | file | stage | cache key (in the file named) |
//! |---|---|---|
//! | `train.jsonl`, `val.jsonl`, `rejected.jsonl`, `manifest.json` | 1 | options + source contents (`manifest.json`) |
//! | `tokenizer.json`, `tokenizer.meta.json` | 2 | `[tokenizer]` + train.jsonl hash (`tokenizer.meta.json`, with the output's hash) |
//! | `train.tok`, `val.tok`, `tokens.meta.json` | 3 | tokenizer.json + train/val hashes + `exemplars` (`tokens.meta.json`, with the outputs' hashes) |

use super::ingest::{self, Manifest};
use super::retrieval::Exemplars;
use super::DataConfig;
use crate::error::{At, Result};
use crate::rundir::DataDir;
use crate::tokenizer::{train, Tokenizer, TokenizerConfig};
use crate::util::{atomic_write, sha256_hex};
use serde_json::json;
use std::path::{Path, PathBuf};

/// What [`prepare`] produced.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The output folder.
    pub dir: PathBuf,
    /// Stage 1 manifest.
    pub manifest: Manifest,
    /// `dir/tokenizer.json`.
    pub tokenizer: PathBuf,
    /// `dir/train.tok`.
    pub train: PathBuf,
    /// `dir/val.tok`.
    pub val: PathBuf,
    /// Which stages ran (the others were up to date): [ingest, tokenizer, tokens].
    pub ran: [bool; 3],
}

fn read_meta(p: &Path) -> Option<serde_json::Value> {
    let t = std::fs::read_to_string(p).ok()?;
    serde_json::from_str(&t).ok()
}

fn file_hash(p: &Path) -> Result<String> {
    Ok(sha256_hex(&std::fs::read(p).at(p.display())?))
}

/// True when `meta` (a `*.meta.json`) records `hash` as its inputs and
/// every output it lists still has the content it had when written.
fn up_to_date(meta: &Path, hash: &str, dir: &Path) -> bool {
    let Some(m) = read_meta(meta) else {
        return false;
    };
    if m.get("inputs_hash").and_then(|v| v.as_str()) != Some(hash) {
        return false;
    }
    let Some(outputs) = m.get("outputs").and_then(|v| v.as_object()) else {
        return false;
    };
    outputs
        .iter()
        .all(|(f, h)| file_hash(&dir.join(f)).ok().as_deref() == h.as_str())
}

/// Write a stage's meta file: its inputs hash, the hash of every output,
/// and anything else worth showing.
fn write_meta(
    meta: &Path,
    hash: &str,
    dir: &Path,
    outputs: &[&str],
    extra: serde_json::Value,
) -> Result<()> {
    let mut hashes = serde_json::Map::new();
    for f in outputs {
        hashes.insert(f.to_string(), json!(file_hash(&dir.join(f))?));
    }
    let mut v = json!({ "inputs_hash": hash, "outputs": hashes });
    if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    atomic_write(meta, serde_json::to_string_pretty(&v)?.as_bytes())
}

/// Stage 1 (ingest and gates) into `out`, unless the manifest records the
/// same inputs and its files are unchanged. Returns the manifest and
/// whether the stage ran.
pub fn ingest_stage(data: &DataConfig, out: &Path) -> Result<(Manifest, bool)> {
    let (h1, _) = ingest::inputs_hash(data)?;
    match Manifest::load(out) {
        Ok(m)
            if m.inputs_hash == h1
                && m.files
                    .iter()
                    .all(|(f, h)| file_hash(&out.join(f)).ok().as_ref() == Some(h)) =>
        {
            Ok((m, false))
        }
        _ => Ok((ingest::ingest(data, out)?, true)),
    }
}

/// Stage 2: train the tokenizer on `out/train.jsonl` (or copy
/// `[tokenizer].path`) into `out/tokenizer.json`, unless its config and
/// the training rows are those it was made from.
pub fn tokenizer_stage(
    tok: &TokenizerConfig,
    manifest: &Manifest,
    out: &Path,
) -> Result<(Tokenizer, bool)> {
    let dir = DataDir::new(out);
    let tok_path = dir.tokenizer();
    let tok_meta = dir.tokenizer_meta();
    let h2 = sha256_hex(
        format!(
            "{}\n{}\n{}\nirc-tokenizer v1 {}",
            serde_json::to_string(tok)?,
            manifest
                .files
                .get(DataDir::TRAIN_ROWS)
                .cloned()
                .unwrap_or_default(),
            match &tok.path {
                Some(p) => file_hash(p)?,
                None => String::new(),
            },
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
    );
    if up_to_date(&tok_meta, &h2, out) {
        if let Ok(t) = Tokenizer::load(&tok_path) {
            return Ok((t, false));
        }
    }
    let t = match &tok.path {
        Some(p) => Tokenizer::load(p)?,
        None => {
            let rows = super::read_rows(&dir.train_rows())?;
            let (t, stats) = train::train(&super::row_samples(&rows), tok)?;
            eprintln!(
                "tokenizer: {} ids ({} merges) from {} words",
                t.vocab_size(),
                stats.merges,
                stats.words
            );
            t
        }
    };
    t.save(&tok_path)?;
    write_meta(
        &tok_meta,
        &h2,
        out,
        &[DataDir::TOKENIZER],
        json!({ "config": tok, "vocab_size": t.vocab_size() }),
    )?;
    Ok((t, true))
}

/// Stage 3: tokenize `out/train.jsonl` and `out/val.jsonl` into
/// `train.tok` / `val.tok` (prompts conditioned on their exemplars when
/// `exemplars`), unless the tokenizer, both splits and `exemplars` are
/// those they were made from. Returns whether the stage ran.
pub fn tokens_stage(
    manifest: &Manifest,
    tokenizer: &Tokenizer,
    out: &Path,
    exemplars: bool,
) -> Result<bool> {
    let dir = DataDir::new(out);
    let meta3 = dir.tokens_meta();
    let h3 = sha256_hex(
        format!(
            "{}\n{}\n{}\n{}irc-tok v1 {}",
            file_hash(&dir.tokenizer())?,
            manifest
                .files
                .get(DataDir::TRAIN_ROWS)
                .cloned()
                .unwrap_or_default(),
            manifest
                .files
                .get(DataDir::VAL_ROWS)
                .cloned()
                .unwrap_or_default(),
            if exemplars { "exemplars\n" } else { "" },
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
    );
    if up_to_date(&meta3, &h3, out) {
        return Ok(false);
    }
    let ex = Exemplars::load(out, exemplars)?;
    let tr = super::prep::tokenize_split(out, "train", tokenizer, ex.as_ref())?;
    let va = super::prep::tokenize_split(out, "val", tokenizer, ex.as_ref())?;
    tr.save(&dir.train_tokens())?;
    va.save(&dir.val_tokens())?;
    write_meta(
        &meta3,
        &h3,
        out,
        &[DataDir::TRAIN_TOKENS, DataDir::VAL_TOKENS],
        json!({
            "train_tokens": tr.len(), "train_rows": tr.rows.len(),
            "val_tokens": va.len(), "val_rows": va.rows.len(),
            "vocab_size": tokenizer.vocab_size(),
            "exemplars": exemplars,
            "bytes_per_token": (manifest.train_bytes as f64) / (tr.len().max(1) as f64),
        }),
    )?;
    Ok(true)
}

/// The prepared data another process made in `out` (rank 0 of an MPI run),
/// read as it is: nothing is checked against the inputs or written.
pub fn existing(out: &Path) -> Result<Prepared> {
    let d = DataDir::new(out);
    Ok(Prepared {
        dir: out.to_path_buf(),
        manifest: Manifest::load(out)?,
        tokenizer: d.tokenizer(),
        train: d.train_tokens(),
        val: d.val_tokens(),
        ran: [false; 3],
    })
}

/// Run stages 1 → 3 into `out`, redoing only stages whose inputs changed.
pub fn prepare(data: &DataConfig, tok: &TokenizerConfig, out: &Path) -> Result<Prepared> {
    let (manifest, ran1) = ingest_stage(data, out)?;
    let (tokenizer, ran2) = tokenizer_stage(tok, &manifest, out)?;
    let ran3 = tokens_stage(&manifest, &tokenizer, out, data.exemplars)?;
    Ok(Prepared {
        dir: out.to_path_buf(),
        manifest,
        tokenizer: DataDir::new(out).tokenizer(),
        train: DataDir::new(out).train_tokens(),
        val: DataDir::new(out).val_tokens(),
        ran: [ran1, ran2, ran3],
    })
}
