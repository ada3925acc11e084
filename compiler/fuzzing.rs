//! The entry points of the fuzz targets in `fuzz/` (cargo-fuzz, nightly)
//! and of `tests/fuzz_regressions.rs` (every file of `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/`, on stable): one function per target,
//! taking arbitrary bytes. Each may return an error for bad input but must
//! never panic, hang or run out of memory.
//!
//! | target | reads |
//! |---|---|
//! | `spec` | spec text → [`Spec::parse`] (TOML, then every check) |
//! | `weights` | safetensors bytes → [`Weights::from_bytes`], checked against a table |
//! | `checkpoint` | a training checkpoint → [`checkpoint::from_bytes`] |
//! | `tokenizer` | `tokenizer.json` → [`hf::from_json`], then an encode/decode round trip |
//! | `tokens` | a `.tok` file → [`TokenSet::from_bytes`], windows and batches |
//! | `jsonl` | JSON Lines rows → [`ingest::jsonl_rows`] and the gates |
//!
//! The C safetensors reader (`runtime-c/irc_safetensors.h`) has its own
//! harness, `fuzz/c/safetensors.c`.

use crate::data::ingest;
use crate::data::prep::{Batcher, TokenSet};
use crate::data::{DataConfig, Packing};
use crate::runtime::{ParamEntry, Weights};
use crate::spec::Spec;
use crate::tokenizer::hf;
use crate::train::checkpoint;
use std::path::Path;

/// A target's entry: any bytes in, nothing out (errors are dropped).
pub type Entry = fn(&[u8]);

/// The targets, by the name of their folder under `fuzz/corpus/`.
pub const TARGETS: [(&str, Entry); 6] = [
    ("spec", spec),
    ("weights", weights),
    ("checkpoint", checkpoint),
    ("tokenizer", tokenizer),
    ("tokens", tokens),
    ("jsonl", jsonl),
];

/// A small parameter table (two tensors), for the readers that check
/// weights against a model.
pub fn table() -> Vec<ParamEntry> {
    vec![
        ParamEntry {
            name: "a.weight".into(),
            shape: vec![2, 3],
            offset: 0,
            numel: 6,
        },
        ParamEntry {
            name: "b.bias".into(),
            shape: vec![3],
            offset: 6,
            numel: 3,
        },
    ]
}

/// Spec text, parsed and checked.
pub fn spec(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = Spec::parse(Path::new("fuzz.toml"), src) {
        let _ = s.build_hash();
    }
}

/// A safetensors file, read and checked against [`table`].
pub fn weights(data: &[u8]) {
    if let Ok(w) = Weights::from_bytes(data) {
        let _ = w.check_against(&table());
    }
}

/// A training checkpoint for [`table`].
pub fn checkpoint(data: &[u8]) {
    let _ = checkpoint::from_bytes(data, &table());
}

/// A `tokenizer.json`; if it loads, a sample text encoded and decoded.
pub fn tokenizer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = hf::from_json(text) else {
        return;
    };
    let _ = t.vocab_size();
    let _ = t.eos_id();
    for sample in [
        &b"<svg viewBox=\"0 0 24 24\"><path d=\"M1 2L3 4\"/></svg> 12345 hello"[..],
        &data[..data.len().min(64)],
    ] {
        if let Ok(ids) = t.encode(sample) {
            let _ = t.decode(&ids);
        }
    }
    let _ = t.decode(&[0, 1, 2, u32::MAX]);
}

/// A token file; if it loads, its windows in both packings and a few
/// batches of a small batcher, with a state saved and restored.
pub fn tokens(data: &[u8]) {
    let Ok(set) = TokenSet::from_bytes(data) else {
        return;
    };
    for packing in [Packing::Stream, Packing::Rows] {
        let _ = set.windows(4, packing);
        let Ok(mut b) = Batcher::with_options(set.clone(), 2, 4, 2, 7, packing, true) else {
            continue;
        };
        if b.windows() == 0 {
            continue;
        }
        let state = b.state();
        for _ in 0..3 {
            let _ = b.next_step();
        }
        let _ = b.restore(&state);
        let _ = b.next_step();
    }
}

/// JSON Lines rows, through the ingest's gates (UTF-8, size, SVG
/// canonicalization, deduplication).
pub fn jsonl(data: &[u8]) {
    let rows = ingest::jsonl_rows("fuzz.jsonl", data);
    let _ = ingest::gate(rows, &DataConfig::default());
}
