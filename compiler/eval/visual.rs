//! The visual metric: what a drawing looks like next to its reference, next
//! to a tag-retrieval baseline, and next to the training icons it may copy.
//! (Types only so far; the scoring lands with the metric.)

use super::Rate;
use serde::{Deserialize, Serialize};

/// Similarity to its nearest training icon at or above which a generation
/// counts as a near-copy (memorization).
pub const COPY_THRESHOLD: f64 = 0.9;

/// The visual scores of one generation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SampleVisual {
    /// Similarity of the generation to its reference in [0, 1] (`None`: no
    /// reference, or the generation does not render).
    pub score: Option<f64>,
    /// The same for the retrieval baseline's pick: the training icon whose
    /// tags overlap the prompt most.
    pub baseline: Option<f64>,
    /// The prompt of that training icon.
    pub baseline_prompt: Option<String>,
    /// Similarity of the generation to its nearest training icon.
    pub nearest: Option<f64>,
    /// The prompt of that training icon.
    pub nearest_prompt: Option<String>,
    /// `nearest` ≥ [`COPY_THRESHOLD`].
    pub copy: bool,
}

/// The visual scores of a set of generations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisualEval {
    /// Generations scored (those with a reference).
    pub n: usize,
    /// Mean score of the generations (one that does not render scores 0).
    pub score_mean: Option<f64>,
    /// Mean score of the retrieval baseline on the same prompts.
    pub baseline_mean: Option<f64>,
    /// Generations scoring above their baseline, out of n.
    pub above_baseline: Rate,
    /// Valid generations that near-copy a training icon, out of the valid ones.
    pub near_copies: Rate,
}
