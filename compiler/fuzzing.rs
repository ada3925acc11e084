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
use crate::data::prep::{Batcher, EvalBatches, TokenSet};
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
/// batches of a small batcher, with a state saved and restored. Then the
/// same for a token file made from the bytes with its sizes consistent
/// (random bytes rarely get past the size checks), which must read back
/// as written when the reader accepts it.
pub fn tokens(data: &[u8]) {
    let seq = 1 + data.first().map_or(3, |b| (b % 9) as usize);
    if let Ok(set) = TokenSet::from_bytes(data) {
        batches(&set, seq);
    }
    if let Some(set) = token_set_from(data) {
        if let Ok(back) = TokenSet::from_bytes(&set.to_bytes()) {
            assert_eq!(back, set, "a token file reads back as written");
            batches(&back, seq);
        }
    }
}

/// A token set from bytes: the vocab, `<eos>`, `<pad>` and flags from the
/// first five, then per 3 bytes a token (sometimes outside the vocab) and
/// whether a row ends there (with a prompt length from the same bytes).
fn token_set_from(data: &[u8]) -> Option<TokenSet> {
    let (head, body) = (data.get(..5)?, &data[5..]);
    let vocab_size = 1 + u32::from(u16::from_le_bytes([head[0], head[1]]) % 1000);
    let (mut tokens, mut rows) = (vec![], vec![]);
    let mut row_start = 0;
    for c in body.chunks_exact(3) {
        tokens.push(u32::from(u16::from_le_bytes([c[0], c[1]])) % (vocab_size + 1));
        if c[2] & 3 == 0 {
            let len = (tokens.len() - row_start) as u32;
            rows.push((len, u32::from(c[2] >> 2) % (len + 1)));
            row_start = tokens.len();
        }
    }
    if row_start < tokens.len() {
        rows.push(((tokens.len() - row_start) as u32, 0));
    }
    Some(TokenSet {
        tokens,
        rows,
        vocab_size,
        eos: u32::from(head[2]) % (vocab_size + 1),
        pad: u32::from(head[3]) % (vocab_size + 1),
        prompted: head[4] & 1 == 1,
    })
}

fn batches(set: &TokenSet, seq: usize) {
    for packing in [Packing::Stream, Packing::Rows, Packing::Auto] {
        let _ = set.windows(seq, packing);
        let Ok(mut b) = Batcher::with_options(set.clone(), 2, seq, 2, 7, packing, true) else {
            continue;
        };
        if b.windows() == 0 {
            continue;
        }
        let state = b.state();
        for _ in 0..3 {
            for mb in b.next_step() {
                let v = i64::from(set.vocab_size);
                assert!(
                    mb.inputs.iter().all(|&t| (0..v).contains(&i64::from(t))),
                    "an input id outside the vocab"
                );
                assert!(
                    mb.targets
                        .iter()
                        .all(|&t| t == crate::data::prep::IGNORE || (0..v).contains(&i64::from(t))),
                    "a target outside the vocab"
                );
            }
        }
        let _ = b.restore(&state);
        let _ = b.next_step();
        if let Ok(e) = EvalBatches::new(set.clone(), 2, seq, packing, true) {
            for mb in e.take(4) {
                let _ = mb.unmasked();
            }
        }
    }
}

/// JSON Lines rows, through the ingest's gates (UTF-8, size, SVG
/// canonicalization, deduplication).
pub fn jsonl(data: &[u8]) {
    let rows = ingest::jsonl_rows("fuzz.jsonl", data);
    let _ = ingest::gate(rows, &DataConfig::default());
}
