//! Sampling the next token from a row of logits, and deciding when to stop.
//!
//! [`Sampler::next`] follows Hugging Face `generate` (its logits processors
//! run in this order):
//!
//! 1. **repetition penalty** (CTRL): for every distinct token id in the
//!    history, a logit `l > 0` becomes `l / penalty` and `l ≤ 0` becomes
//!    `l * penalty`; `penalty = 1` is off. Ids outside the vocabulary are
//!    ignored.
//! 2. **temperature**: logits are divided by `temperature`.
//! 3. **top-k**: tokens whose logit is below the k-th largest logit are
//!    removed (`top_k = 0` is off). As in HF, tokens tied with the k-th logit
//!    stay, so the kept set can be larger than k when logits tie.
//! 4. **top-p** (nucleus): over the softmax of what is left, keep the
//!    smallest set of most-probable tokens whose cumulative probability is
//!    ≥ `top_p` (ties in probability: lower id first), always at least one;
//!    `top_p ≥ 1` is off.
//! 5. **sample** one token from the softmax of the kept logits with the
//!    seeded [`Rng`].
//!
//! `temperature ≤ 0` or `top_k = 1` is greedy: the argmax of the penalized
//! logits, ties to the lowest id, without touching the RNG. NaN logits count
//! as −∞. The same config, seed, logits and history always give the same
//! token.
//!
//! [`Stop`] holds the stop conditions (end-of-sequence token, stop strings,
//! `max_new_tokens`, context length) and [`Stop::check`] says, from the text
//! decoded so far, whether to stop and how much of the text to emit: nothing
//! after the first stop string is ever emitted, and the stop string itself
//! (`</svg>` by default) is kept, as in HF `stop_strings`. [`generate`] runs
//! the whole loop over any `logits` function, so the compiled KV-cached
//! forward plugs in as a closure.

use crate::error::Result;
use crate::util::Rng;
use serde::{Deserialize, Serialize};

/// Sampling knobs, as in Hugging Face `GenerationConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingConfig {
    /// Softmax temperature; `≤ 0` is greedy.
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 is off, 1 is greedy.
    pub top_k: usize,
    /// Nucleus mass to keep, in (0, 1]; `≥ 1` is off.
    pub top_p: f32,
    /// CTRL repetition penalty; 1 is off, > 1 discourages repeats.
    pub repetition_penalty: f32,
    /// RNG seed: the same seed reproduces the same tokens.
    pub seed: u64,
    /// Samples drawn per prompt, of which the consensus is kept
    /// ([`crate::generate::RunModel::generate`]); 1 draws one.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub candidates: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
            candidates: 1,
        }
    }
}

impl SamplingConfig {
    /// Greedy decoding (argmax, no penalty).
    pub fn greedy() -> Self {
        SamplingConfig {
            temperature: 0.0,
            ..Default::default()
        }
    }

    /// True when [`Sampler::next`] takes the argmax instead of sampling.
    pub fn is_greedy(&self) -> bool {
        self.temperature.is_nan() || self.temperature <= 0.0 || self.top_k == 1
    }

    /// Reject values that make no sense, naming the field.
    pub fn validate(&self) -> Result<()> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            crate::bail!(
                "temperature must be a finite number ≥ 0, got {}",
                self.temperature
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            crate::bail!("top_p must be in (0, 1], got {}", self.top_p);
        }
        if self.candidates == 0 {
            crate::bail!("candidates must be at least 1, got 0");
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            crate::bail!(
                "repetition_penalty must be a finite number > 0, got {}",
                self.repetition_penalty
            );
        }
        Ok(())
    }
}

/// A seeded sampler: one per generation stream.
#[derive(Debug, Clone)]
pub struct Sampler {
    cfg: SamplingConfig,
    rng: Rng,
    /// Scratch: working logits.
    work: Vec<f32>,
    /// Scratch: candidate ids.
    idx: Vec<usize>,
}

impl Sampler {
    /// A sampler with its RNG seeded from `cfg.seed`.
    pub fn new(cfg: SamplingConfig) -> Self {
        let rng = Rng::new(cfg.seed);
        Sampler {
            cfg,
            rng,
            work: Vec::new(),
            idx: Vec::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SamplingConfig {
        &self.cfg
    }

    /// The RNG state (to checkpoint a stream and resume it exactly).
    pub fn rng_state(&self) -> [u64; 4] {
        self.rng.state()
    }

    /// Restore an RNG state taken with [`Sampler::rng_state`].
    pub fn set_rng_state(&mut self, s: [u64; 4]) {
        self.rng = Rng::from_state(s);
    }

    /// Pick the next token id from one row of logits (see the module doc).
    /// `history` is every token so far (prompt and generated), for the
    /// repetition penalty. An empty `logits` row returns −1 (no token).
    pub fn next(&mut self, logits: &[f32], history: &[i32]) -> i32 {
        if logits.is_empty() {
            return -1;
        }
        self.penalized(logits, history);
        if self.cfg.is_greedy() {
            return argmax(&self.work) as i32;
        }
        if !self.keep_set() {
            return argmax(&self.work) as i32;
        }
        // Sample from the softmax over the kept ids (logits already scaled).
        let max = self
            .idx
            .iter()
            .map(|&i| self.work[i])
            .fold(f32::NEG_INFINITY, f32::max) as f64;
        let total: f64 = self
            .idx
            .iter()
            .map(|&i| (self.work[i] as f64 - max).exp())
            .sum();
        let u = self.rng.uniform() * total;
        let mut acc = 0.0;
        for &i in &self.idx {
            acc += (self.work[i] as f64 - max).exp();
            if u < acc {
                return i as i32;
            }
        }
        // Rounding left u at the very top: the last kept id.
        *self.idx.last().unwrap_or(&0) as i32
    }

    /// The distribution [`Sampler::next`] samples from, over the whole
    /// vocabulary (0 for removed ids); greedy configs give a one-hot. Does not
    /// advance the RNG. Handy for tests and for showing "what the model
    /// considered".
    pub fn probs(&mut self, logits: &[f32], history: &[i32]) -> Vec<f32> {
        let mut p = vec![0.0f32; logits.len()];
        if logits.is_empty() {
            return p;
        }
        self.penalized(logits, history);
        if self.cfg.is_greedy() || !self.keep_set() {
            p[argmax(&self.work)] = 1.0;
            return p;
        }
        let max = self
            .idx
            .iter()
            .map(|&i| self.work[i])
            .fold(f32::NEG_INFINITY, f32::max) as f64;
        let total: f64 = self
            .idx
            .iter()
            .map(|&i| (self.work[i] as f64 - max).exp())
            .sum();
        for &i in &self.idx {
            p[i] = ((self.work[i] as f64 - max).exp() / total) as f32;
        }
        p
    }

    /// Steps 1 (penalty) and 2 (temperature, unless greedy) into `self.work`;
    /// NaN becomes −∞.
    fn penalized(&mut self, logits: &[f32], history: &[i32]) {
        self.work.clear();
        self.work.extend(
            logits
                .iter()
                .map(|&l| if l.is_nan() { f32::NEG_INFINITY } else { l }),
        );
        let pen = self.cfg.repetition_penalty;
        if pen.is_finite() && pen > 0.0 && pen != 1.0 {
            let n = self.work.len();
            // Penalize each distinct id once: mark with a seen list.
            let mut seen: Vec<usize> = history
                .iter()
                .filter(|&&t| t >= 0 && (t as usize) < n)
                .map(|&t| t as usize)
                .collect();
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                let l = self.work[t];
                self.work[t] = if l > 0.0 { l / pen } else { l * pen };
            }
        }
        let t = self.cfg.temperature;
        if t > 0.0 && t.is_finite() && t != 1.0 {
            for l in &mut self.work {
                *l /= t;
            }
        }
    }

    /// Steps 3 and 4: fill `self.idx` with the kept ids (most probable first
    /// when top-p applies). False when nothing finite is left or a logit is
    /// +∞ (then the caller takes the argmax).
    fn keep_set(&mut self) -> bool {
        let work = &self.work;
        self.idx.clear();
        self.idx
            .extend((0..work.len()).filter(|&i| work[i] > f32::NEG_INFINITY));
        if self.idx.is_empty() || work.contains(&f32::INFINITY) {
            return false;
        }
        let by_logit = |a: &usize, b: &usize| work[*b].total_cmp(&work[*a]).then(a.cmp(b));
        let k = self.cfg.top_k;
        if k > 0 && k < self.idx.len() {
            self.idx.select_nth_unstable_by(k - 1, by_logit);
            let kth = work[self.idx[k - 1]];
            // HF keeps everything ≥ the k-th logit (ties included).
            let mut rest: Vec<usize> = self.idx[k..]
                .iter()
                .copied()
                .filter(|&i| work[i] >= kth)
                .collect();
            self.idx.truncate(k);
            self.idx.append(&mut rest);
        }
        let p = self.cfg.top_p;
        if p < 1.0 && self.idx.len() > 1 {
            // Only the nucleus needs an order (the draw itself does not).
            self.idx.sort_unstable_by(by_logit);
            let max = work[self.idx[0]] as f64;
            let w: Vec<f64> = self
                .idx
                .iter()
                .map(|&i| (work[i] as f64 - max).exp())
                .collect();
            let total: f64 = w.iter().sum();
            let target = p.max(0.0) as f64 * total;
            let mut acc = 0.0;
            let mut keep = self.idx.len();
            for (j, wj) in w.iter().enumerate() {
                acc += wj;
                if acc >= target {
                    keep = j + 1;
                    break;
                }
            }
            self.idx.truncate(keep.max(1));
        }
        true
    }
}

/// Index of the largest value, ties to the lowest index; NaN never wins.
/// Returns 0 for an empty or all-NaN slice.
pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    let mut bv = f32::NEG_INFINITY;
    let mut found = false;
    for (i, &x) in xs.iter().enumerate() {
        if x.is_nan() {
            continue;
        }
        if !found || x > bv {
            best = i;
            bv = x;
            found = true;
        }
    }
    best
}

/// When generation stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stop {
    /// The end-of-sequence token id (`Tokenizer::eos_id`); it ends the
    /// generation and is not part of the text.
    pub eos: Option<i32>,
    /// Stop at the first occurrence of any of these strings, keeping the
    /// string itself and dropping anything after it.
    pub stop_strings: Vec<String>,
    /// At most this many generated tokens (0: no limit).
    pub max_new_tokens: usize,
    /// The model's context length: stop when prompt + generated tokens reach
    /// it (0: no limit).
    pub context: usize,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            eos: None,
            stop_strings: vec!["</svg>".to_string()],
            max_new_tokens: 512,
            context: 0,
        }
    }
}

/// Why a generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The end-of-sequence token was sampled.
    Eos,
    /// A stop string appeared in the text.
    StopString(String),
    /// `max_new_tokens` were generated.
    MaxNewTokens,
    /// The context window is full.
    Context,
}

/// What [`Stop::check`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `Some` when generation must stop now.
    pub stop: Option<StopReason>,
    /// How many bytes of the text may be emitted (always a char boundary);
    /// the whole text unless a stop string cut it.
    pub emit: usize,
}

impl Stop {
    /// Where the first stop string ends in `text`: the earliest end over all
    /// stop strings (ties: the longer string), and that string. Empty stop
    /// strings are ignored.
    pub fn find_stop_string(&self, text: &str) -> Option<(usize, &str)> {
        let mut best: Option<(usize, &str)> = None;
        for s in &self.stop_strings {
            if s.is_empty() {
                continue;
            }
            if let Some(pos) = text.find(s.as_str()) {
                let end = pos + s.len();
                let better = match best {
                    None => true,
                    Some((e, b)) => end < e || (end == e && s.len() > b.len()),
                };
                if better {
                    best = Some((end, s.as_str()));
                }
            }
        }
        best
    }

    /// Decide after a token: `text` is the decoded generated text so far,
    /// `last` the token just sampled, `new_tokens` how many tokens were
    /// generated (including `last`), `total_tokens` prompt + generated.
    /// Checked in this order: eos, stop string, `max_new_tokens`, context.
    /// With eos, `text` should not include the eos token's own text.
    pub fn check(
        &self,
        text: &str,
        last: Option<i32>,
        new_tokens: usize,
        total_tokens: usize,
    ) -> Decision {
        let all = text.len();
        if last.is_some() && last == self.eos {
            return Decision {
                stop: Some(StopReason::Eos),
                emit: self.cut(text),
            };
        }
        if let Some((end, s)) = self.find_stop_string(text) {
            return Decision {
                stop: Some(StopReason::StopString(s.to_string())),
                emit: end,
            };
        }
        let stop = if self.max_new_tokens > 0 && new_tokens >= self.max_new_tokens {
            Some(StopReason::MaxNewTokens)
        } else if self.context > 0 && total_tokens >= self.context {
            Some(StopReason::Context)
        } else {
            None
        };
        Decision { stop, emit: all }
    }

    /// How many bytes of `text` may be emitted: up to and including the
    /// first stop string, or all of it.
    pub fn cut(&self, text: &str) -> usize {
        self.find_stop_string(text)
            .map_or(text.len(), |(end, _)| end)
    }
}

/// The result of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Generated token ids (not the prompt, not eos).
    pub tokens: Vec<i32>,
    /// The emitted text: decoded tokens, cut after the first stop string.
    pub text: String,
    /// Why it stopped.
    pub reason: StopReason,
}

/// Run the sampling loop. `logits(seq)` returns the next-token logits for
/// the sequence `seq` (prompt + generated so far; a KV-cached forward only
/// needs its last token); `decode(tokens)` turns generated tokens into text
/// (lossy UTF-8 is fine). Stops per [`Stop::check`]; an eos token is not
/// kept. An empty prompt is allowed if `logits` accepts it.
pub fn generate(
    prompt: &[i32],
    sampler: &mut Sampler,
    stop: &Stop,
    mut logits: impl FnMut(&[i32]) -> Result<Vec<f32>>,
    decode: impl Fn(&[i32]) -> String,
) -> Result<Generated> {
    let mut seq: Vec<i32> = prompt.to_vec();
    let mut out: Vec<i32> = Vec::new();
    if stop.context > 0 && seq.len() >= stop.context {
        return Ok(Generated {
            tokens: out,
            text: String::new(),
            reason: StopReason::Context,
        });
    }
    loop {
        let row = logits(&seq)?;
        if row.is_empty() {
            crate::bail!("generate: the model returned an empty logits row");
        }
        let t = sampler.next(&row, &seq);
        if Some(t) == stop.eos {
            let text = decode(&out);
            let d = stop.check(&text, Some(t), out.len() + 1, seq.len() + 1);
            return Ok(Generated {
                text: text[..d.emit].to_string(),
                tokens: out,
                reason: StopReason::Eos,
            });
        }
        seq.push(t);
        out.push(t);
        let text = decode(&out);
        let d = stop.check(&text, Some(t), out.len(), seq.len());
        if let Some(reason) = d.stop {
            return Ok(Generated {
                text: text[..d.emit].to_string(),
                tokens: out,
                reason,
            });
        }
    }
}
