//! Stage 2: a byte-level BPE tokenizer, written here and stored as a Hugging
//! Face `tokenizer.json`, so the same file loads in the `tokenizers` library
//! and encodes to the same ids.
//!
//! * Ids: special tokens first (`<eos>` = 0, `<pad>` = 1, then the user's in
//!   order), then the base alphabet in byte order, then one id per merge.
//! * Base alphabet: all 256 bytes ([`Alphabet::Bytes`], default) or printable
//!   ASCII plus tab/LF/CR ([`Alphabet::Ascii`], 98 symbols) which leaves more
//!   of a small vocab for merges. Encoding a byte outside the alphabet is an
//!   error (HF `tokenizers` would silently drop it).
//! * Special tokens are cut out of the text before anything else (leftmost
//!   longest match, as HF's added vocabulary does), so they are never split,
//!   never merged and each becomes exactly one id.
//! * The rest is cut into words by the GPT-2 regex ([`bytelevel`]); BPE
//!   merges apply inside a word by rank, lowest first, leftmost on a tie.
//!
//! Training is in [`train`]; the `tokenizer.json` format in [`hf`].

pub mod bytelevel;
pub mod hf;
pub mod train;

use crate::error::Result;
use crate::util::atomic_write;
use aho_corasick::{AhoCorasick, MatchKind};
pub use bytelevel::PreSplit;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::Mutex;

/// The end-of-sample token every sample ends with.
pub const EOS: &str = "<eos>";
/// The padding token (its targets are always ignored).
pub const PAD: &str = "<pad>";

/// Which bytes are base tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Alphabet {
    /// All 256 byte values: any byte string encodes.
    #[default]
    Bytes,
    /// Printable ASCII (0x20..=0x7E) plus tab, LF and CR: 98 base tokens.
    Ascii,
}

impl Alphabet {
    /// The bytes of this alphabet, ascending.
    pub fn bytes(self) -> Vec<u8> {
        match self {
            Alphabet::Bytes => (0..=255).collect(),
            Alphabet::Ascii => {
                let mut v = vec![b'\t', b'\n', b'\r'];
                v.extend(0x20..=0x7E);
                v
            }
        }
    }
}

impl std::str::FromStr for Alphabet {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "bytes" => Ok(Alphabet::Bytes),
            "ascii" => Ok(Alphabet::Ascii),
            _ => Err(format!("unknown alphabet `{s}` (expected bytes or ascii)")),
        }
    }
}

/// `[tokenizer]` section of the model TOML.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenizerConfig {
    /// Target vocabulary size, special tokens and base alphabet included.
    /// Training stops earlier if no pair occurs `min_frequency` times.
    pub vocab_size: usize,
    /// Base alphabet: `bytes` (all 256) or `ascii` (98 symbols).
    pub alphabet: Alphabet,
    /// User special tokens after `<eos>` and `<pad>` (e.g. `[circle]`),
    /// each always one id, never split or merged.
    pub special_tokens: Vec<String>,
    /// A pair must occur at least this often to be merged.
    pub min_frequency: u64,
    /// Reuse this `tokenizer.json` instead of training one.
    pub path: Option<std::path::PathBuf>,
    /// How text is cut into words before merges: `gpt2` or `numbers`
    /// (a signed decimal number is one word, for SVG coordinates).
    pub pre_split: PreSplit,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig {
            vocab_size: 1024,
            alphabet: Alphabet::Bytes,
            special_tokens: Vec::new(),
            min_frequency: 2,
            path: None,
            pre_split: PreSplit::Gpt2,
        }
    }
}

/// FxHash: a fast non-cryptographic hasher for the pair and word tables.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap()));
        }
        for &b in chunks.remainder() {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Token id.
pub type Id = u32;
const NONE: Id = Id::MAX;
const CACHE_MAX: usize = 200_000;

/// A loaded or trained byte-level BPE tokenizer.
#[derive(Debug)]
pub struct Tokenizer {
    /// id → the bytes it stands for (a special token: its text).
    vocab: Vec<Vec<u8>>,
    /// Special tokens as (text, id).
    specials: Vec<(String, Id)>,
    /// Single byte → base token id, or `NONE` when outside the alphabet.
    byte_id: [Id; 256],
    /// Merges in rank order: (left, right, result).
    merges: Vec<(Id, Id, Id)>,
    /// (left, right) → (rank, result).
    ranks: FxMap<(Id, Id), (u32, Id)>,
    matcher: Option<AhoCorasick>,
    /// The alphabet it was built from (`None`: a loaded file with another set).
    alphabet: Option<Alphabet>,
    /// How text is cut into words before merges.
    split: PreSplit,
    cache: Mutex<FxMap<Vec<u8>, Vec<Id>>>,
}

impl Clone for Tokenizer {
    fn clone(&self) -> Self {
        Tokenizer::from_parts(
            self.vocab.clone(),
            self.specials.clone(),
            self.merges.clone(),
        )
        .expect("a valid tokenizer clones")
        .with_split(self.split)
    }
}

impl PartialEq for Tokenizer {
    fn eq(&self, o: &Self) -> bool {
        self.vocab == o.vocab
            && self.specials == o.specials
            && self.merges == o.merges
            && self.split == o.split
    }
}

impl Tokenizer {
    /// Build from an id → bytes table, the special tokens and the merges.
    /// Checks that ids are unique and every merge result is the concatenation
    /// of its parts.
    pub fn from_parts(
        vocab: Vec<Vec<u8>>,
        specials: Vec<(String, Id)>,
        merges: Vec<(Id, Id, Id)>,
    ) -> Result<Tokenizer> {
        let n = vocab.len() as Id;
        let mut is_special = vec![false; vocab.len()];
        for (s, id) in &specials {
            if *id >= n || vocab[*id as usize] != s.as_bytes() {
                crate::bail!("special token `{s}` has id {id} which does not hold it");
            }
            if s.is_empty() {
                crate::bail!("a special token is empty");
            }
            is_special[*id as usize] = true;
        }
        let mut byte_id = [NONE; 256];
        for (id, t) in vocab.iter().enumerate() {
            if t.len() == 1 && !is_special[id] && byte_id[t[0] as usize] == NONE {
                byte_id[t[0] as usize] = id as Id;
            }
        }
        let mut ranks = FxMap::default();
        for (r, &(a, b, c)) in merges.iter().enumerate() {
            if a >= n || b >= n || c >= n {
                crate::bail!("merge {r} refers to an id outside the vocabulary");
            }
            let mut cat = vocab[a as usize].clone();
            cat.extend_from_slice(&vocab[b as usize]);
            if cat != vocab[c as usize] {
                crate::bail!("merge {r}: result id {c} is not the concatenation of its parts");
            }
            ranks.entry((a, b)).or_insert((r as u32, c));
        }
        let matcher = if specials.is_empty() {
            None
        } else {
            let pats: Vec<&str> = specials.iter().map(|(s, _)| s.as_str()).collect();
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(pats)
                    .map_err(|e| crate::error::Error::new(format!("special tokens: {e}")))?,
            )
        };
        let alphabet = [Alphabet::Bytes, Alphabet::Ascii].into_iter().find(|a| {
            let want = a.bytes();
            (0..=255u8).all(|b| (byte_id[b as usize] != NONE) == want.contains(&b))
        });
        Ok(Tokenizer {
            vocab,
            specials,
            byte_id,
            merges,
            ranks,
            matcher,
            alphabet,
            split: PreSplit::Gpt2,
            cache: Mutex::new(FxMap::default()),
        })
    }

    /// The same tokenizer with another pre-split (words cached under the
    /// old one are forgotten).
    pub fn with_split(mut self, split: PreSplit) -> Tokenizer {
        self.split = split;
        self.cache = Mutex::new(FxMap::default());
        self
    }

    /// How text is cut into words before merges.
    pub fn split(&self) -> PreSplit {
        self.split
    }

    /// Number of ids.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The id of a special token by its text.
    pub fn special_id(&self, s: &str) -> Option<Id> {
        self.specials
            .iter()
            .find(|(t, _)| t == s)
            .map(|&(_, id)| id)
    }

    /// Id of `<eos>`.
    pub fn eos_id(&self) -> Result<Id> {
        self.special_id(EOS)
            .ok_or_else(|| crate::error::Error::new("tokenizer has no <eos> token"))
    }

    /// Id of `<pad>`.
    pub fn pad_id(&self) -> Result<Id> {
        self.special_id(PAD)
            .ok_or_else(|| crate::error::Error::new("tokenizer has no <pad> token"))
    }

    /// The special tokens as (text, id).
    pub fn specials(&self) -> &[(String, Id)] {
        &self.specials
    }

    /// Merges in rank order as (left, right, result).
    pub fn merges(&self) -> &[(Id, Id, Id)] {
        &self.merges
    }

    /// The bytes of token `id` (a special token: its text).
    pub fn token_bytes(&self, id: Id) -> Option<&[u8]> {
        self.vocab.get(id as usize).map(|v| v.as_slice())
    }

    /// True if `id` is a special token.
    pub fn is_special(&self, id: Id) -> bool {
        self.specials.iter().any(|&(_, s)| s == id)
    }

    /// The base alphabet, when the byte tokens are exactly one of the two.
    pub fn alphabet(&self) -> Option<Alphabet> {
        self.alphabet
    }

    /// True if the byte is a base token.
    pub fn has_byte(&self, b: u8) -> bool {
        self.byte_id[b as usize] != NONE
    }

    /// Cut `text` into special tokens and plain segments, in order.
    pub fn split_specials<'a>(&self, text: &'a [u8], mut f: impl FnMut(Segment<'a>)) {
        let Some(m) = &self.matcher else {
            if !text.is_empty() {
                f(Segment::Text(text));
            }
            return;
        };
        let mut pos = 0;
        for hit in m.find_iter(text) {
            if hit.start() > pos {
                f(Segment::Text(&text[pos..hit.start()]));
            }
            f(Segment::Special(self.specials[hit.pattern().as_usize()].1));
            pos = hit.end();
        }
        if pos < text.len() {
            f(Segment::Text(&text[pos..]));
        }
    }

    /// Encode bytes to ids. Special-token text becomes its id; an error names
    /// the offset of the first byte outside the alphabet.
    pub fn encode(&self, text: &[u8]) -> Result<Vec<Id>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_with(text, &mut cache, &mut out)?;
        if cache.len() > CACHE_MAX {
            cache.clear();
        }
        Ok(out)
    }

    /// Encode a `str` (see [`Tokenizer::encode`]).
    pub fn encode_str(&self, text: &str) -> Result<Vec<Id>> {
        self.encode(text.as_bytes())
    }

    /// Encode many texts on `threads` threads, each with its own word cache.
    pub fn encode_many<T: AsRef<[u8]> + Sync>(
        &self,
        texts: &[T],
        threads: usize,
    ) -> Result<Vec<Vec<Id>>> {
        let threads = threads.max(1).min(texts.len().max(1));
        let chunk = texts.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = texts
                .chunks(chunk)
                .enumerate()
                .map(|(ci, part)| {
                    s.spawn(move || {
                        let mut cache = FxMap::default();
                        part.iter()
                            .enumerate()
                            .map(|(i, t)| {
                                let mut out = Vec::new();
                                self.encode_with(t.as_ref(), &mut cache, &mut out)
                                    .map_err(|e| e.context(format!("sample {}", ci * chunk + i)))?;
                                if cache.len() > CACHE_MAX {
                                    cache.clear();
                                }
                                Ok(out)
                            })
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(texts.len());
            for h in handles {
                all.extend(h.join().expect("encode thread panicked")?);
            }
            Ok(all)
        })
    }

    fn encode_with(
        &self,
        text: &[u8],
        cache: &mut FxMap<Vec<u8>, Vec<Id>>,
        out: &mut Vec<Id>,
    ) -> Result<()> {
        let mut err = None;
        let mut seg_start = 0usize;
        self.split_specials(text, |seg| {
            if err.is_some() {
                return;
            }
            match seg {
                Segment::Special(id) => {
                    seg_start += self.vocab[id as usize].len();
                    out.push(id)
                }
                Segment::Text(t) => {
                    let base = seg_start;
                    seg_start += t.len();
                    let mut off = base;
                    bytelevel::pre_tokenize(self.split, t, |w| {
                        if err.is_some() {
                            return;
                        }
                        if let Some(ids) = cache.get(w) {
                            out.extend_from_slice(ids);
                        } else {
                            match self.bpe_word(w) {
                                Ok(ids) => {
                                    out.extend_from_slice(&ids);
                                    cache.insert(w.to_vec(), ids);
                                }
                                Err(i) => {
                                    err = Some(crate::error::Error::new(format!(
                                        "byte 0x{:02X} at offset {} is not in the tokenizer's alphabet{}",
                                        w[i],
                                        off + i,
                                        match self.alphabet {
                                            Some(Alphabet::Ascii) => " (ascii: printable ASCII, tab, LF, CR)",
                                            _ => "",
                                        }
                                    )))
                                }
                            }
                        }
                        off += w.len();
                    });
                }
            }
        });
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// BPE on one word: apply merges lowest rank first, leftmost on a tie
    /// (exactly HF's `Word::merge_all`). `Err(i)`: byte `i` is not a base token.
    fn bpe_word(&self, w: &[u8]) -> std::result::Result<Vec<Id>, usize> {
        let mut ids = Vec::with_capacity(w.len());
        for (i, &b) in w.iter().enumerate() {
            let id = self.byte_id[b as usize];
            if id == NONE {
                return Err(i);
            }
            ids.push(id);
        }
        if ids.len() < 2 || self.ranks.is_empty() {
            return Ok(ids);
        }
        // Linked list over positions; a heap of (rank, position) candidates.
        let n = ids.len();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        for i in 0..n - 1 {
            if let Some(&(r, _)) = self.ranks.get(&(ids[i], ids[i + 1])) {
                heap.push(std::cmp::Reverse((r, i)));
            }
        }
        while let Some(std::cmp::Reverse((r, i))) = heap.pop() {
            let j = next[i];
            if !alive[i] || j >= n {
                continue;
            }
            match self.ranks.get(&(ids[i], ids[j])) {
                Some(&(rr, new)) if rr == r => {
                    ids[i] = new;
                    alive[j] = false;
                    let k = next[j];
                    next[i] = k;
                    if k < n {
                        prev[k] = i;
                        if let Some(&(r2, _)) = self.ranks.get(&(ids[i], ids[k])) {
                            heap.push(std::cmp::Reverse((r2, i)));
                        }
                    }
                    let p = prev[i];
                    if p < n {
                        if let Some(&(r2, _)) = self.ranks.get(&(ids[p], ids[i])) {
                            heap.push(std::cmp::Reverse((r2, p)));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok((0..n).filter(|&i| alive[i]).map(|i| ids[i]).collect())
    }

    /// Decode ids back to bytes (special tokens as their text). Lossless:
    /// `decode(encode(x)) == x` for every byte string `x` in the alphabet.
    pub fn decode(&self, ids: &[Id]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 3);
        for (i, &id) in ids.iter().enumerate() {
            match self.vocab.get(id as usize) {
                Some(t) => out.extend_from_slice(t),
                None => crate::bail!(
                    "id {id} at position {i} is outside the vocabulary ({} ids)",
                    self.vocab.len()
                ),
            }
        }
        Ok(out)
    }

    /// Load a `tokenizer.json` (HF byte-level BPE).
    pub fn load(path: &Path) -> Result<Tokenizer> {
        let text = crate::util::read_user_text(path)?;
        hf::from_json(&text).map_err(|e| e.context(path.display()))
    }

    /// Save as HF `tokenizer.json` (atomic write).
    pub fn save(&self, path: &Path) -> Result<()> {
        atomic_write(path, hf::to_json(self).as_bytes())
    }
}

/// A piece of text after cutting out special tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// A special token's id.
    Special(Id),
    /// Plain text between special tokens.
    Text(&'a [u8]),
}
