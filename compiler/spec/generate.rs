//! The spec's `[generate]` and `[eval]` sections: how `irc run` samples
//! from the trained model and how many held-out prompts it scores.
//!
//! ```toml
//! [generate]
//! temperature = 0.8         # 0 = greedy
//! top_k = 40                # 0 = off
//! top_p = 1.0               # nucleus mass in (0, 1]; 1 = off
//! repetition_penalty = 1.0  # 1 = off
//! seed = 1
//! max_tokens = 512          # also stops at </svg>, <eos> and the context
//! candidates = 1            # drawings sampled per prompt; the consensus is kept
//!
//! [eval]
//! samples = 64              # held-out prompts generated from and scored
//! quick_samples = 16        # the same under `irc run --quick`
//! ```
//!
//! A value out of range is reported at its line and column, as every other
//! spec error.

use super::range::{self, Check};
use crate::sample::SamplingConfig;
use serde::{Deserialize, Deserializer, Serialize};

/// `[generate]`: sampling settings (as `irc generate`'s flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateConfig {
    /// Softmax temperature; 0 is greedy.
    #[serde(deserialize_with = "non_negative")]
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 is off.
    pub top_k: usize,
    /// Nucleus mass to keep, in (0, 1].
    #[serde(deserialize_with = "probability")]
    pub top_p: f32,
    /// CTRL repetition penalty, > 0; 1 is off.
    #[serde(deserialize_with = "positive")]
    pub repetition_penalty: f32,
    /// Seed of the first sample (sample i uses seed + i).
    pub seed: u64,
    /// Most new tokens per sample.
    #[serde(deserialize_with = "at_least_one")]
    pub max_tokens: usize,
    /// Samples drawn per prompt; of SVG drawings the one that agrees most
    /// with the others is kept (minimum Bayes risk under the visual
    /// similarity), of text the first. 1 draws one. Left out of the
    /// serialized config at 1, so runs from before it keep their eval.
    #[serde(deserialize_with = "at_least_one", skip_serializing_if = "is_one")]
    pub candidates: usize,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 1,
            max_tokens: 512,
            candidates: 1,
        }
    }
}

impl GenerateConfig {
    /// The sampler's configuration.
    pub fn sampling(&self) -> SamplingConfig {
        SamplingConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            repetition_penalty: self.repetition_penalty,
            seed: self.seed,
            candidates: self.candidates,
        }
    }
}

/// `[eval]`: how many held-out prompts `irc run` generates from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Held-out prompts generated from and scored (the first ones of
    /// `val.jsonl`, which alternate between prompt families).
    #[serde(deserialize_with = "at_least_one")]
    pub samples: usize,
    /// The same under `irc run --quick`.
    #[serde(deserialize_with = "at_least_one")]
    pub quick_samples: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            samples: 64,
            quick_samples: 16,
        }
    }
}

/// A field read by serde, then checked by its [`range`] function, so the
/// spec refuses a value in the same words as the flag of the same name.
fn checked<'de, D, T>(d: D, check: Check<T>) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    check(T::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn non_negative<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f32, D::Error> {
    checked(d, range::non_negative)
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f32, D::Error> {
    checked(d, range::positive)
}

fn probability<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f32, D::Error> {
    checked(d, range::probability)
}

fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    checked(d, range::at_least_one)
}
