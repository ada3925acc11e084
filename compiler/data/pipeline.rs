//! Stages 1 → 3 for a spec's `[data]` and `[tokenizer]` sections, with each
//! stage skipped when the hash of its inputs matches the one recorded by the
//! previous run.
//!
//! Output folder:
//!
//! | file | stage | cache key (in the file named) |
//! |---|---|---|
//! | `train.jsonl`, `val.jsonl`, `rejected.jsonl`, `manifest.json` | 1 | options + source contents (`manifest.json`) |
//! | `tokenizer.json`, `tokenizer.meta.json` | 2 | `[tokenizer]` + train.jsonl hash (`tokenizer.meta.json`) |
//! | `train.tok`, `val.tok`, `tokens.meta.json` | 3 | tokenizer.json + train/val hashes (`tokens.meta.json`) |

use super::ingest::{self, Manifest};
use super::DataConfig;
use crate::error::{At, Result};
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

fn read_meta(p: &Path) -> Option<String> {
    let t = std::fs::read_to_string(p).ok()?;
    let v: serde_json::Value = serde_json::from_str(&t).ok()?;
    v.get("inputs_hash")?.as_str().map(str::to_string)
}

fn file_hash(p: &Path) -> Result<String> {
    Ok(sha256_hex(&std::fs::read(p).at(p.display())?))
}

/// Run stages 1 → 3 into `out`, redoing only stages whose inputs changed.
pub fn prepare(data: &DataConfig, tok: &TokenizerConfig, out: &Path) -> Result<Prepared> {
    let mut ran = [false; 3];
    // Stage 1.
    let (h1, _) = ingest::inputs_hash(data)?;
    let manifest = match Manifest::load(out) {
        Ok(m)
            if m.inputs_hash == h1
                && m.files
                    .iter()
                    .all(|(f, h)| file_hash(&out.join(f)).ok().as_ref() == Some(h)) =>
        {
            m
        }
        _ => {
            ran[0] = true;
            ingest::ingest(data, out)?
        }
    };
    // Stage 2.
    let tok_path = out.join("tokenizer.json");
    let tok_meta = out.join("tokenizer.meta.json");
    let h2 = sha256_hex(
        format!(
            "{}\n{}\n{}",
            serde_json::to_string(tok)?,
            manifest
                .files
                .get("train.jsonl")
                .cloned()
                .unwrap_or_default(),
            match &tok.path {
                Some(p) => file_hash(p)?,
                None => String::new(),
            }
        )
        .as_bytes(),
    );
    let fresh2 =
        read_meta(&tok_meta).as_deref() == Some(h2.as_str()) && Tokenizer::load(&tok_path).is_ok();
    let tokenizer = if fresh2 && !ran[0] {
        Tokenizer::load(&tok_path)?
    } else {
        ran[1] = true;
        let t = match &tok.path {
            Some(p) => Tokenizer::load(p)?,
            None => {
                let rows = super::read_rows(&out.join("train.jsonl"))?;
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
        atomic_write(
            &tok_meta,
            serde_json::to_string_pretty(&json!({"inputs_hash": h2, "config": tok}))?.as_bytes(),
        )?;
        t
    };
    // Stage 3.
    let meta3 = out.join("tokens.meta.json");
    let h3 = sha256_hex(
        format!(
            "{}\n{}\n{}\nirc-tok v1",
            file_hash(&tok_path)?,
            manifest
                .files
                .get("train.jsonl")
                .cloned()
                .unwrap_or_default(),
            manifest.files.get("val.jsonl").cloned().unwrap_or_default()
        )
        .as_bytes(),
    );
    let (train_p, val_p) = (out.join("train.tok"), out.join("val.tok"));
    if ran[0]
        || ran[1]
        || read_meta(&meta3).as_deref() != Some(h3.as_str())
        || !train_p.exists()
        || !val_p.exists()
    {
        ran[2] = true;
        let tr = super::prep::tokenize_split(out, "train", &tokenizer)?;
        let va = super::prep::tokenize_split(out, "val", &tokenizer)?;
        tr.save(&train_p)?;
        va.save(&val_p)?;
        let meta = json!({
            "inputs_hash": h3,
            "train_tokens": tr.len(), "train_rows": tr.rows.len(),
            "val_tokens": va.len(), "val_rows": va.rows.len(),
            "vocab_size": tokenizer.vocab_size(),
            "bytes_per_token": (manifest.train_bytes as f64) / (tr.len().max(1) as f64),
        });
        atomic_write(&meta3, serde_json::to_string_pretty(&meta)?.as_bytes())?;
    }
    Ok(Prepared {
        dir: out.to_path_buf(),
        manifest,
        tokenizer: tok_path,
        train: train_p,
        val: val_p,
        ran,
    })
}
