//! Stage 3: tokenize rows once into a binary token file, cut it into
//! windows of `seq_len + 1` tokens and serve shuffled micro-batches.
//!
//! Glossary: B = micro-batch rows, T = `seq_len`, V = vocab size.
//!
//! Token file (`*.tok`, little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `IRCTOKS\0` |
//! | 4 | version (1) |
//! | 4 | dtype: bytes per token, 2 (u16) or 4 (u32) |
//! | 8 | token count N |
//! | 8 | row count R |
//! | 4 | vocab size, 4 `<eos>` id, 4 `<pad>` id, 4 flags (bit 0: rows have prompts) |
//! | N × dtype | tokens: every row's `prompt + text + <eos>` in order |
//! | R × 8 | per row: token length (u32, `<eos>` included), prompt token length (u32) |
//!
//! Windows: in `stream` packing the token stream is cut every T tokens into
//! windows of T + 1 (inputs = first T, targets = last T); in `rows` packing
//! every window starts with an `<eos>` (as generation does: a sample always
//! follows an `<eos>`, so the model learns to begin one there), then whole
//! rows are packed greedily, in order, into the T tokens left, and a row
//! longer than T is dropped and counted. A short last
//! window is padded: inputs `<pad>`, targets -100. Targets are -100 (ignored)
//! for padding and, with `mask_prompt`, for prompt tokens. Train and val are
//! separate files, so no window crosses from one into the other.

use super::retrieval::Exemplars;
use super::Row;
use crate::bail;
use crate::error::{At, Result};
use crate::tokenizer::{Id, Tokenizer};
use crate::util::{atomic_write, Rng};
use std::path::Path;

/// Target value that the loss ignores (PyTorch's default `ignore_index`).
pub const IGNORE: i32 = -100;
const MAGIC: &[u8; 8] = b"IRCTOKS\0";
const HEADER: usize = 48;

/// A tokenized split: tokens and row boundaries.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSet {
    /// All tokens, rows back to back, each row ending with `<eos>`.
    pub tokens: Vec<u32>,
    /// Per row: (token length with `<eos>`, prompt token length).
    pub rows: Vec<(u32, u32)>,
    /// Vocabulary size of the tokenizer used.
    pub vocab_size: u32,
    /// `<eos>` id.
    pub eos: u32,
    /// `<pad>` id.
    pub pad: u32,
    /// True when rows carry prompts (selects `rows` packing under `auto`).
    pub prompted: bool,
}

impl TokenSet {
    /// Tokenize rows: `prompt + text + <eos>` each (threads: all cores).
    pub fn build(rows: &[Row], tok: &Tokenizer) -> Result<TokenSet> {
        let eos = tok.eos_id()?;
        let pad = tok.pad_id()?;
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let prompts: Vec<&str> = rows
            .iter()
            .map(|r| r.prompt.as_deref().unwrap_or(""))
            .collect();
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let p_ids = tok.encode_many(&prompts, threads)?;
        let t_ids = tok.encode_many(&texts, threads)?;
        let mut set = TokenSet {
            tokens: Vec::new(),
            rows: Vec::with_capacity(rows.len()),
            vocab_size: tok.vocab_size() as u32,
            eos,
            pad,
            prompted: rows.iter().any(|r| r.prompt.is_some()),
        };
        for (p, t) in p_ids.into_iter().zip(t_ids) {
            let len = p.len() + t.len() + 1;
            set.rows.push((len as u32, p.len() as u32));
            set.tokens.extend(p.into_iter().chain(t).chain([eos]));
        }
        Ok(set)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether `packing` packs whole rows here (`auto`: when rows are prompted).
    pub fn packs_rows(&self, packing: super::Packing) -> bool {
        match packing {
            super::Packing::Auto => self.prompted,
            super::Packing::Rows => true,
            super::Packing::Stream => false,
        }
    }

    /// True when there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Serialize (see the module doc for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let wide = self.vocab_size > 65536;
        let dt: u32 = if wide { 4 } else { 2 };
        let mut b =
            Vec::with_capacity(HEADER + self.tokens.len() * dt as usize + self.rows.len() * 8);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&dt.to_le_bytes());
        b.extend_from_slice(&(self.tokens.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.rows.len() as u64).to_le_bytes());
        for v in [self.vocab_size, self.eos, self.pad, self.prompted as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for &t in &self.tokens {
            if wide {
                b.extend_from_slice(&t.to_le_bytes());
            } else {
                b.extend_from_slice(&(t as u16).to_le_bytes());
            }
        }
        for &(l, p) in &self.rows {
            b.extend_from_slice(&l.to_le_bytes());
            b.extend_from_slice(&p.to_le_bytes());
        }
        b
    }

    /// Parse bytes written by [`TokenSet::to_bytes`]; checks every field.
    pub fn from_bytes(b: &[u8]) -> Result<TokenSet> {
        if b.len() < HEADER || &b[..8] != MAGIC {
            bail!("not an irc token file (bad magic)");
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let version = u32_at(8);
        if version != 1 {
            bail!("token file version {version} is not supported (expected 1)");
        }
        let dt = u32_at(12) as usize;
        if dt != 2 && dt != 4 {
            bail!("token file dtype {dt} is not 2 or 4");
        }
        let (n, r) = (u64_at(16), u64_at(24));
        let need = (n as u128) * dt as u128 + (r as u128) * 8 + HEADER as u128;
        if need != b.len() as u128 {
            bail!("token file is {} bytes, header says {need}", b.len());
        }
        let n = n as usize;
        let (vocab_size, eos, pad, flags) = (u32_at(32), u32_at(36), u32_at(40), u32_at(44));
        // Batches hold ids as i32 (as the compiled model takes them).
        if vocab_size > i32::MAX as u32 {
            bail!("vocab size {vocab_size} is too large (ids must fit in 31 bits)");
        }
        // Windows start with <eos> and end padded with <pad>: both are inputs.
        for (what, id) in [("<eos>", eos), ("<pad>", pad)] {
            if id >= vocab_size {
                bail!("the {what} id {id} is outside the vocab ({vocab_size})");
            }
        }
        let body = &b[HEADER..HEADER + n * dt];
        let tokens: Vec<u32> = if dt == 2 {
            body.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
                .collect()
        } else {
            body.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        if let Some(i) = tokens.iter().position(|&t| t >= vocab_size) {
            bail!(
                "token {i} is {} which is outside the vocab ({vocab_size})",
                tokens[i]
            );
        }
        let rb = &b[HEADER + n * dt..];
        let rows: Vec<(u32, u32)> = rb
            .chunks_exact(8)
            .map(|c| {
                (
                    u32::from_le_bytes(c[..4].try_into().unwrap()),
                    u32::from_le_bytes(c[4..].try_into().unwrap()),
                )
            })
            .collect();
        let total: u64 = rows.iter().map(|&(l, _)| l as u64).sum();
        if total != n as u64 {
            bail!("row lengths add up to {total} tokens, file holds {n}");
        }
        if let Some(i) = rows.iter().position(|&(l, p)| l == 0 || p >= l) {
            bail!("row {i} has a bad length or prompt length");
        }
        Ok(TokenSet {
            tokens,
            rows,
            vocab_size,
            eos,
            pad,
            prompted: flags & 1 == 1,
        })
    }

    /// Write atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        atomic_write(path, &self.to_bytes())
    }

    /// Read and validate a token file.
    pub fn load(path: &Path) -> Result<TokenSet> {
        let b = std::fs::read(path).at(path.display())?;
        Self::from_bytes(&b).map_err(|e| e.context(path.display()))
    }

    /// Per token: true if it belongs to a prompt.
    fn prompt_mask(&self) -> Vec<bool> {
        let mut m = Vec::with_capacity(self.tokens.len());
        for &(l, p) in &self.rows {
            m.extend((0..l).map(|i| i < p));
        }
        m
    }

    /// Cut into windows of at most `seq_len + 1` tokens (spans into `tokens`).
    /// Returns the windows and the number of rows dropped as too long.
    pub fn windows(&self, seq_len: usize, packing: super::Packing) -> (Vec<Window>, usize) {
        let rows_mode = self.packs_rows(packing);
        let mut out = Vec::new();
        if !rows_mode {
            let cap = seq_len + 1;
            let n = self.tokens.len();
            let mut s = 0;
            while s + 1 < n {
                out.push(Window {
                    spans: vec![(s, cap.min(n - s))],
                    lead_eos: false,
                });
                s += seq_len;
            }
            return (out, 0);
        }
        // One slot of the T + 1 goes to the leading <eos>.
        let cap = seq_len;
        let mut dropped = 0;
        let mut cur: Vec<(usize, usize)> = Vec::new();
        let mut used = 0;
        let mut start = 0usize;
        for &(l, _) in &self.rows {
            let l = l as usize;
            if l > cap {
                dropped += 1;
            } else {
                if used + l > cap {
                    out.push(Window {
                        spans: std::mem::take(&mut cur),
                        lead_eos: true,
                    });
                    used = 0;
                }
                match cur.last_mut() {
                    Some(last) if last.0 + last.1 == start => last.1 += l,
                    _ => cur.push((start, l)),
                }
                used += l;
            }
            start += l;
        }
        if !cur.is_empty() {
            out.push(Window {
                spans: cur,
                lead_eos: true,
            });
        }
        (out, dropped)
    }
}

/// A window: an optional leading `<eos>` and spans (start, len) of the
/// token array, at most T + 1 tokens in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The window starts with an `<eos>` that is not in the token array
    /// (`rows` packing), before the spans.
    pub lead_eos: bool,
    /// (start, len) spans, in order.
    pub spans: Vec<(usize, usize)>,
}

/// One micro-batch: B rows of T inputs and T targets, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct MicroBatch {
    /// (B, T) input ids (`<pad>` after the end of a short window).
    pub inputs: Vec<i32>,
    /// (B, T) target ids; [`IGNORE`] (-100) where the loss must not look.
    pub targets: Vec<i32>,
    /// Epoch of the first row of the batch (0-based).
    pub epoch: u64,
    /// Optimizer step this micro-batch belongs to (0-based).
    pub step: u64,
    /// Index within the step, `0..grad_accum`.
    pub micro: usize,
}

impl MicroBatch {
    /// Targets that count in the loss.
    pub fn unmasked(&self) -> usize {
        self.targets.iter().filter(|&&t| t != IGNORE).count()
    }
}

/// Fill row `b` of a batch from a window.
fn fill(
    set: &TokenSet,
    mask: &[bool],
    w: &Window,
    t: usize,
    mask_prompt: bool,
    inp: &mut [i32],
    tgt: &mut [i32],
) {
    let mut seq: Vec<(u32, bool)> = Vec::with_capacity(t + 1);
    if w.lead_eos {
        seq.push((set.eos, false));
    }
    for &(s, l) in &w.spans {
        seq.extend((s..s + l).map(|i| (set.tokens[i], mask[i])));
    }
    for i in 0..t {
        inp[i] = seq.get(i).map_or(set.pad as i32, |x| x.0 as i32);
        tgt[i] = match seq.get(i + 1) {
            Some(&(id, is_prompt)) if !(mask_prompt && is_prompt) && i + 1 < seq.len() => id as i32,
            _ => IGNORE,
        };
    }
}

/// Where a [`Batcher`] is, for checkpoints: restoring it reproduces the
/// same batches from there on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatcherState {
    /// Current epoch.
    pub epoch: u64,
    /// Windows of this epoch already served.
    pub cursor: u64,
    /// Micro-batches served so far.
    pub micro_batches: u64,
    /// RNG state from before this epoch's shuffle.
    pub epoch_rng: [u64; 4],
}

/// Serves shuffled training micro-batches from a [`TokenSet`].
///
/// Every epoch is a fresh seeded permutation of all windows; micro-batches
/// take the next B windows of the stream of epochs (a batch may straddle an
/// epoch boundary, so no window is skipped). `grad_accum` micro-batches make
/// one optimizer step (effective batch B × grad_accum).
#[derive(Debug, Clone)]
pub struct Batcher {
    set: TokenSet,
    mask: Vec<bool>,
    windows: Vec<Window>,
    dropped: usize,
    packs_rows: bool,
    batch: usize,
    seq_len: usize,
    grad_accum: usize,
    mask_prompt: bool,
    order: Vec<u32>,
    state: BatcherState,
    rng: Rng,
}

impl Batcher {
    /// Windows of `seq_len + 1` over `tokens` (packing `auto`), B = `batch`.
    pub fn new(
        tokens: TokenSet,
        batch: usize,
        seq_len: usize,
        grad_accum: usize,
        seed: u64,
    ) -> Result<Batcher> {
        Self::with_options(
            tokens,
            batch,
            seq_len,
            grad_accum,
            seed,
            super::Packing::Auto,
            false,
        )
    }

    /// [`Batcher::new`] with packing and prompt masking chosen.
    pub fn with_options(
        tokens: TokenSet,
        batch: usize,
        seq_len: usize,
        grad_accum: usize,
        seed: u64,
        packing: super::Packing,
        mask_prompt: bool,
    ) -> Result<Batcher> {
        if batch == 0 || seq_len == 0 || grad_accum == 0 {
            bail!("batch ({batch}), seq_len ({seq_len}) and grad_accum ({grad_accum}) must be positive");
        }
        let (windows, dropped) = tokens.windows(seq_len, packing);
        if windows.is_empty() {
            bail!(
                "no training window: {} tokens, {dropped} rows longer than seq_len + 1 = {}",
                tokens.len(),
                seq_len + 1
            );
        }
        let mask = tokens.prompt_mask();
        let packs_rows = tokens.packs_rows(packing);
        let rng = Rng::new(seed);
        let mut b = Batcher {
            set: tokens,
            mask,
            windows,
            dropped,
            packs_rows,
            batch,
            seq_len,
            grad_accum,
            mask_prompt,
            order: Vec::new(),
            state: BatcherState {
                epoch: 0,
                cursor: 0,
                micro_batches: 0,
                epoch_rng: rng.state(),
            },
            rng,
        };
        b.shuffle();
        Ok(b)
    }

    fn shuffle(&mut self) {
        self.state.epoch_rng = self.rng.state();
        self.order = (0..self.windows.len() as u32).collect();
        self.rng.shuffle(&mut self.order);
    }

    /// Number of windows per epoch.
    pub fn windows(&self) -> usize {
        self.windows.len()
    }

    /// Rows dropped because they do not fit one window (`rows` packing).
    pub fn dropped_rows(&self) -> usize {
        self.dropped
    }

    /// Whether windows hold whole rows (else a stream cut every seq_len).
    pub fn packs_rows(&self) -> bool {
        self.packs_rows
    }

    /// The tokens the windows are cut from.
    pub fn token_set(&self) -> &TokenSet {
        &self.set
    }

    /// Sequences per micro-batch.
    pub fn micro_batch(&self) -> usize {
        self.batch
    }

    /// Tokens per sequence.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Micro-batches per optimizer step.
    pub fn grad_accum(&self) -> usize {
        self.grad_accum
    }

    /// Micro-batches in one epoch (rounded up).
    pub fn micro_batches_per_epoch(&self) -> usize {
        self.windows.len().div_ceil(self.batch)
    }

    /// Optimizer steps in one epoch (rounded up).
    pub fn steps_per_epoch(&self) -> usize {
        self.micro_batches_per_epoch().div_ceil(self.grad_accum)
    }

    /// Current epoch (0-based).
    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    /// The state to store in a checkpoint.
    pub fn state(&self) -> BatcherState {
        self.state.clone()
    }

    /// Resume from a checkpointed state.
    pub fn restore(&mut self, s: &BatcherState) -> Result<()> {
        if s.cursor as usize > self.windows.len() {
            bail!(
                "batcher state cursor {} is past {} windows",
                s.cursor,
                self.windows.len()
            );
        }
        self.rng = Rng::from_state(s.epoch_rng);
        self.shuffle();
        self.state = s.clone();
        Ok(())
    }

    /// The next B × T micro-batch.
    pub fn next_micro_batch(&mut self) -> MicroBatch {
        let (b, t) = (self.batch, self.seq_len);
        let mut inputs = vec![0i32; b * t];
        let mut targets = vec![IGNORE; b * t];
        let epoch = if self.state.cursor as usize == self.windows.len() {
            self.state.epoch + 1
        } else {
            self.state.epoch
        };
        for r in 0..b {
            if self.state.cursor as usize == self.windows.len() {
                self.state.epoch += 1;
                self.state.cursor = 0;
                self.shuffle();
            }
            let w = &self.windows[self.order[self.state.cursor as usize] as usize];
            self.state.cursor += 1;
            fill(
                &self.set,
                &self.mask,
                w,
                t,
                self.mask_prompt,
                &mut inputs[r * t..(r + 1) * t],
                &mut targets[r * t..(r + 1) * t],
            );
        }
        let n = self.state.micro_batches;
        self.state.micro_batches += 1;
        MicroBatch {
            inputs,
            targets,
            epoch,
            step: n / self.grad_accum as u64,
            micro: (n % self.grad_accum as u64) as usize,
        }
    }

    /// The `grad_accum` micro-batches of the next optimizer step.
    pub fn next_step(&mut self) -> Vec<MicroBatch> {
        (0..self.grad_accum)
            .map(|_| self.next_micro_batch())
            .collect()
    }
}

/// Evaluation batches in window order (no shuffle); the last batch is
/// filled with ignored rows (`<pad>` inputs, -100 targets).
pub struct EvalBatches {
    set: TokenSet,
    mask: Vec<bool>,
    windows: Vec<Window>,
    batch: usize,
    seq_len: usize,
    mask_prompt: bool,
    next: usize,
}

impl EvalBatches {
    /// In-order batches over `tokens` (e.g. `val.tok`).
    pub fn new(
        tokens: TokenSet,
        batch: usize,
        seq_len: usize,
        packing: super::Packing,
        mask_prompt: bool,
    ) -> Result<Self> {
        if batch == 0 || seq_len == 0 {
            bail!("batch and seq_len must be positive");
        }
        let (windows, _) = tokens.windows(seq_len, packing);
        let mask = tokens.prompt_mask();
        Ok(EvalBatches {
            set: tokens,
            mask,
            windows,
            batch,
            seq_len,
            mask_prompt,
            next: 0,
        })
    }

    /// Number of batches.
    pub fn len(&self) -> usize {
        self.windows.len().div_ceil(self.batch)
    }

    /// True when there is no window.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

impl Iterator for EvalBatches {
    type Item = MicroBatch;
    fn next(&mut self) -> Option<MicroBatch> {
        if self.next >= self.windows.len() {
            return None;
        }
        let (b, t) = (self.batch, self.seq_len);
        let mut inputs = vec![self.set.pad as i32; b * t];
        let mut targets = vec![IGNORE; b * t];
        let step = (self.next / b) as u64;
        for r in 0..b {
            if self.next >= self.windows.len() {
                break;
            }
            let w = &self.windows[self.next];
            self.next += 1;
            fill(
                &self.set,
                &self.mask,
                w,
                t,
                self.mask_prompt,
                &mut inputs[r * t..(r + 1) * t],
                &mut targets[r * t..(r + 1) * t],
            );
        }
        Some(MicroBatch {
            inputs,
            targets,
            epoch: 0,
            step,
            micro: 0,
        })
    }
}

/// Reference cross-entropy with ignore_index = -100: the mean of
/// `-log softmax(logits[n])[targets[n]]` over the targets that are not
/// -100, exactly as `torch.nn.functional.cross_entropy(..., ignore_index=-100)`
/// (NaN when every target is ignored). `logits` is (N, V), `targets` (N).
pub fn cross_entropy(logits: &[f32], targets: &[i32], vocab: usize) -> f64 {
    let mut sum = 0.0f64;
    let mut n = 0usize;
    for (row, &t) in logits.chunks_exact(vocab).zip(targets) {
        if t == IGNORE {
            continue;
        }
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
        sum += lse - row[t as usize] as f64;
        n += 1;
    }
    sum / n as f64
}

/// Tokenize a data folder's split (`train` or `val`) with `tok`; with
/// `exemplars` (made from the folder's training rows) each prompt is
/// conditioned on its pick first.
pub fn tokenize_split(
    dir: &Path,
    split: &str,
    tok: &Tokenizer,
    exemplars: Option<&Exemplars>,
) -> Result<TokenSet> {
    let p = dir.join(format!("{split}.jsonl"));
    let mut rows = super::read_rows(&p)?;
    if let Some(ex) = exemplars {
        ex.condition_rows(&mut rows);
    }
    TokenSet::build(&rows, tok).map_err(|e| e.context(p.display()))
}

/// Ids of one row as the model sees it: prompt, then text, then `<eos>`.
/// Prompt and text are encoded apart, so the prompt ends on a token
/// boundary (generation starts from the encoded prompt alone).
pub fn encode_row(row: &Row, tok: &Tokenizer) -> Result<Vec<Id>> {
    let mut v = tok.encode_str(row.prompt.as_deref().unwrap_or(""))?;
    v.extend(tok.encode_str(&row.text)?);
    v.push(tok.eos_id()?);
    Ok(v)
}
