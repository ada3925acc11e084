//! BPE training with incremental pair counts.
//!
//! 1. Cut special tokens out of every sample, pre-tokenize the rest with the
//!    GPT-2 regex and count distinct words (in parallel, one table a thread).
//! 2. Count adjacent pairs over distinct words weighted by frequency, and
//!    index which words hold each pair.
//! 3. Repeat: pop the most frequent pair from a max-heap (stale entries are
//!    re-pushed with their true count), merge it in only the words that hold
//!    it, and apply the count deltas those merges cause.
//!
//! Ties: among pairs with equal count the one with the smallest
//! (left id, right id) wins, so a corpus always gives the same merges.
//! Ids of base bytes follow byte order, so the order is fixed by the corpus.

use super::{Alphabet, FxMap, Id, Tokenizer, TokenizerConfig, EOS, PAD};
use crate::bail;
use crate::error::Result;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

/// The special tokens a config asks for: `<eos>`, `<pad>`, then the user's
/// (duplicates dropped).
pub fn special_list(cfg: &TokenizerConfig) -> Result<Vec<String>> {
    let mut out = vec![EOS.to_string(), PAD.to_string()];
    for s in &cfg.special_tokens {
        if s.is_empty() {
            bail!("special token list holds an empty string");
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

/// What is wrong with a configuration before any training, as (field,
/// message): an empty special token, or a vocabulary too small for the
/// special tokens and the base alphabet. The spec's `[tokenizer]` and
/// `irc tokenizer train`'s flags are both checked here.
pub fn config_problem(cfg: &TokenizerConfig) -> Option<(&'static str, String)> {
    let specials = match special_list(cfg) {
        Ok(s) => s,
        Err(e) => return Some(("special_tokens", e.0)),
    };
    let base = specials.len() + cfg.alphabet.bytes().len();
    (cfg.vocab_size < base).then(|| {
        (
            "vocab_size",
            format!(
                "{} is out of range; expected at least {base} ({} special tokens + {} base symbols)",
                cfg.vocab_size,
                specials.len(),
                cfg.alphabet.bytes().len()
            ),
        )
    })
}

/// Word counts of one thread and the bytes it read.
type WordCounts<'a> = (FxMap<&'a [u8], u64>, usize);

/// Statistics of one training run.
#[derive(Debug, Clone, Default)]
pub struct TrainStats {
    /// Distinct pre-tokenized words.
    pub words: usize,
    /// Total corpus bytes (special tokens excluded).
    pub bytes: usize,
    /// Merges learned.
    pub merges: usize,
}

/// Train a tokenizer on `samples` (e.g. prompt + text of every row).
pub fn train<T: AsRef<[u8]> + Sync>(
    samples: &[T],
    cfg: &TokenizerConfig,
) -> Result<(Tokenizer, TrainStats)> {
    if let Some((field, msg)) = config_problem(cfg) {
        bail!("{field}: {msg}");
    }
    let specials = special_list(cfg)?;
    let alphabet = cfg.alphabet.bytes();
    // Ids: specials, then alphabet bytes in byte order.
    let mut vocab: Vec<Vec<u8>> = specials.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut byte_id = [Id::MAX; 256];
    for &b in &alphabet {
        byte_id[b as usize] = vocab.len() as Id;
        vocab.push(vec![b]);
    }
    let spec_ids: Vec<(String, Id)> = specials.iter().cloned().zip(0..).collect();
    let splitter = Tokenizer::from_parts(vocab.clone(), spec_ids.clone(), Vec::new())?;

    // 1. Word counts, in parallel.
    let (counts, bytes) = count_words(samples, cfg, &splitter, &byte_id)?;
    let mut stats = TrainStats {
        bytes,
        ..TrainStats::default()
    };
    let mut uniq: Vec<(&[u8], u64)> = counts.into_iter().collect();
    uniq.sort_unstable();
    stats.words = uniq.len();
    let freq: Vec<u64> = uniq.iter().map(|&(_, n)| n).collect();
    let mut words: Vec<Vec<Id>> = uniq
        .iter()
        .map(|&(w, _)| w.iter().map(|&b| byte_id[b as usize]).collect())
        .collect();
    drop(uniq);

    // 2. Pair counts and where each pair occurs.
    let mut pairs = Pairs::index(&words, &freq);

    // 3. Merge loop.
    let mut merges: Vec<(Id, Id, Id)> = Vec::new();
    let mut by_bytes: FxMap<Vec<u8>, Id> = vocab
        .iter()
        .enumerate()
        .skip(specials.len())
        .map(|(i, t)| (t.clone(), i as Id))
        .collect();
    let min_freq = cfg.min_frequency.max(1) as i64;
    let mut changes: Vec<((Id, Id), i64, u32)> = Vec::new();
    while vocab.len() < cfg.vocab_size {
        let Some(pair) = pairs.pop_best(min_freq) else {
            break;
        };
        let (a, b) = pair;
        let new = intern_concat(&mut vocab, &mut by_bytes, a, b);
        merges.push((a, b, new));
        changes.clear();
        for wi in pairs.take_holders(pair) {
            merge_word(&mut words[wi as usize], a, b, new, wi, &mut changes);
        }
        pairs.apply(pair, &changes, &freq);
    }
    stats.merges = merges.len();
    Ok((
        Tokenizer::from_parts(vocab, spec_ids, merges)?.with_split(cfg.pre_split),
        stats,
    ))
}

/// Count the distinct pre-tokenized words of `samples` outside special
/// tokens, one table a thread, and the bytes they hold. A byte outside the
/// alphabet (no id in `byte_id`) is an error naming its sample.
fn count_words<'s, T: AsRef<[u8]> + Sync>(
    samples: &'s [T],
    cfg: &TokenizerConfig,
    splitter: &Tokenizer,
    byte_id: &[Id; 256],
) -> Result<(FxMap<&'s [u8], u64>, usize)> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(8);
    let chunk = samples.len().div_ceil(threads).max(1);
    let partial: Vec<Result<WordCounts>> = std::thread::scope(|s| {
        let hs: Vec<_> = samples
            .chunks(chunk)
            .enumerate()
            .map(|(ci, part)| {
                s.spawn(move || {
                    let mut counts: FxMap<&[u8], u64> = FxMap::default();
                    let mut bytes = 0usize;
                    for (i, smp) in part.iter().enumerate() {
                        let smp = smp.as_ref();
                        if let Some(p) = smp.iter().position(|&b| byte_id[b as usize] == Id::MAX) {
                            bail!(
                                "sample {}: byte 0x{:02X} at offset {p} is outside the {:?} alphabet",
                                ci * chunk + i,
                                smp[p],
                                cfg.alphabet
                            );
                        }
                        splitter.split_specials(smp, |seg| {
                            if let super::Segment::Text(t) = seg {
                                bytes += t.len();
                                super::bytelevel::pre_tokenize(cfg.pre_split, t, |w| *counts.entry(w).or_insert(0) += 1);
                            }
                        });
                    }
                    Ok((counts, bytes))
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("count thread panicked"))
            .collect()
    });
    let mut counts: FxMap<&[u8], u64> = FxMap::default();
    let mut bytes = 0usize;
    for p in partial {
        let (c, b) = p?;
        bytes += b;
        if counts.is_empty() {
            counts = c;
        } else {
            for (w, n) in c {
                *counts.entry(w).or_insert(0) += n;
            }
        }
    }
    Ok((counts, bytes))
}

/// The id of token `a` followed by token `b`, added to `vocab` if new.
fn intern_concat(vocab: &mut Vec<Vec<u8>>, by_bytes: &mut FxMap<Vec<u8>, Id>, a: Id, b: Id) -> Id {
    let mut cat = vocab[a as usize].clone();
    cat.extend_from_slice(&vocab[b as usize]);
    match by_bytes.get(&cat) {
        Some(&id) => id,
        None => {
            let id = vocab.len() as Id;
            by_bytes.insert(cat.clone(), id);
            vocab.push(cat);
            id
        }
    }
}

type WordSet = HashSet<u32, std::hash::BuildHasherDefault<super::FxHasher>>;

/// The adjacent pairs of the words: their frequency-weighted counts, which
/// words hold each, and a max-heap of counts that may hold stale entries.
struct Pairs {
    count: FxMap<(Id, Id), i64>,
    holders: FxMap<(Id, Id), WordSet>,
    heap: BinaryHeap<(i64, Reverse<(Id, Id)>)>,
}

impl Pairs {
    fn index(words: &[Vec<Id>], freq: &[u64]) -> Pairs {
        let mut count: FxMap<(Id, Id), i64> = FxMap::default();
        let mut holders: FxMap<(Id, Id), WordSet> = FxMap::default();
        for (wi, w) in words.iter().enumerate() {
            for p in w.windows(2) {
                let k = (p[0], p[1]);
                *count.entry(k).or_insert(0) += freq[wi] as i64;
                holders.entry(k).or_default().insert(wi as u32);
            }
        }
        let heap = count.iter().map(|(&p, &c)| (c, Reverse(p))).collect();
        Pairs {
            count,
            holders,
            heap,
        }
    }

    /// The most frequent pair (ties: the smallest), if it occurs at least
    /// `min_freq` times. A stale heap entry is re-pushed with its true count.
    fn pop_best(&mut self, min_freq: i64) -> Option<(Id, Id)> {
        loop {
            let (c, Reverse(pair)) = self.heap.pop()?;
            let actual = self.count.get(&pair).copied().unwrap_or(0);
            if c != actual {
                if actual > 0 {
                    self.heap.push((actual, Reverse(pair)));
                }
                continue;
            }
            if c < min_freq {
                return None;
            }
            return Some(pair);
        }
    }

    /// Forget the merged `pair`; returns the words that held it, in order.
    fn take_holders(&mut self, pair: (Id, Id)) -> Vec<u32> {
        self.count.remove(&pair);
        let mut holders: Vec<u32> = self
            .holders
            .remove(&pair)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        holders.sort_unstable();
        holders
    }

    /// Apply the pair deltas of merging `pair` in some words, and push the
    /// pairs that gained onto the heap.
    fn apply(&mut self, pair: (Id, Id), changes: &[((Id, Id), i64, u32)], freq: &[u64]) {
        let mut touched: Vec<(Id, Id)> = Vec::new();
        for &(p, d, wi) in changes {
            if p == pair {
                continue;
            }
            let e = self.count.entry(p).or_insert(0);
            *e += d * freq[wi as usize] as i64;
            if d > 0 {
                self.holders.entry(p).or_default().insert(wi);
                touched.push(p);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for p in touched {
            let c = self.count[&p];
            if c > 0 {
                self.heap.push((c, Reverse(p)));
            }
        }
    }
}

/// Merge every non-overlapping (a, b), left to right, recording pair deltas.
fn merge_word(
    w: &mut Vec<Id>,
    a: Id,
    b: Id,
    new: Id,
    wi: u32,
    changes: &mut Vec<((Id, Id), i64, u32)>,
) {
    if w.len() < 2 {
        return;
    }
    let mut out: Vec<Id> = Vec::with_capacity(w.len());
    let mut i = 0;
    let mut hit = false;
    while i < w.len() {
        if i + 1 < w.len() && w[i] == a && w[i + 1] == b {
            hit = true;
            if let Some(&p) = out.last() {
                changes.push(((p, a), -1, wi));
                changes.push(((p, new), 1, wi));
            }
            if i + 2 < w.len() {
                changes.push(((b, w[i + 2]), -1, wi));
                changes.push(((new, w[i + 2]), 1, wi));
            }
            out.push(new);
            i += 2;
        } else {
            out.push(w[i]);
            i += 1;
        }
    }
    if hit {
        *w = out;
    }
}

/// The base alphabet a config trains with (for messages).
pub fn alphabet_len(a: Alphabet) -> usize {
    a.bytes().len()
}
