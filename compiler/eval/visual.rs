//! The visual metric: what a drawing looks like next to its reference, next
//! to a tag-retrieval baseline, and next to the training icons it may copy.
//!
//! Definitions (all at [`SIZE`] = 64 px):
//! - **mask**: the SVG rendered by [`crate::render::rasterize`] (longest
//!   side 64 px, over white) and thresholded to *ink* pixels, those with
//!   luminance `0.299 r + 0.587 g + 0.114 b` < [`INK_LUMA`] (240).
//! - **similarity** of masks A, B: `(|dil(A) ∩ B| + |A ∩ dil(B)|) /
//!   (|A| + |B|)` where `dil` grows a mask by [`DILATE`] = 1 pixel in the 8
//!   directions, so a one-pixel offset still counts; 1.0 when both are
//!   empty, 0.0 when only one is.
//! - **score**: similarity of the generation to its reference (0 when the
//!   generation does not render).
//! - **retrieval baseline**: for the prompt, the training icon whose tags
//!   (the `[tag]` runs; for other prompts, the lower-cased words) have the
//!   highest Jaccard overlap with the prompt's, the first in `train.jsonl`
//!   order on ties ([`crate::data::retrieval`]), scored against the
//!   reference the same way.
//! - **above baseline**: score > baseline, strictly.
//! - **nearest**: the highest similarity of the generation to any training
//!   icon (first on ties); a **near-copy** when ≥ [`COPY_THRESHOLD`].

use super::Rate;
use crate::data::retrieval::Index;
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
    /// The training rows behind `baseline` and `nearest` (indexes into the
    /// [`Training`] scored against, for showing them beside the sample;
    /// not kept in `eval.json`).
    #[serde(skip)]
    pub rows: (Option<usize>, Option<usize>),
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

/// Side of the square raster the metric renders at, in pixels.
pub const SIZE: u32 = 64;

/// A pixel is ink when its luminance over the white background is below
/// this (0..255): `0.299 r + 0.587 g + 0.114 b < INK_LUMA`.
pub const INK_LUMA: f64 = 240.0;

/// Dilation radius (Chebyshev, pixels) of the tolerant overlap.
pub const DILATE: usize = 1;

/// The ink pixels of a rendering, a bitset of `size × size` (one `u64`
/// word per 64 pixels of a row; the image is drawn at the top-left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    size: usize,
    words: usize,
    bits: Vec<u64>,
    count: u32,
}

impl Mask {
    /// An empty `size × size` mask.
    pub fn empty(size: u32) -> Mask {
        let size = size as usize;
        let words = size.div_ceil(64);
        Mask {
            size,
            words,
            bits: vec![0; words * size],
            count: 0,
        }
    }

    /// Set pixel (x, y).
    pub fn set(&mut self, x: usize, y: usize) {
        let w = &mut self.bits[y * self.words + x / 64];
        let b = 1u64 << (x % 64);
        if *w & b == 0 {
            *w |= b;
            self.count += 1;
        }
    }

    /// Ink pixels.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The mask grown by [`DILATE`] pixels in the 8 directions.
    pub fn dilate(&self) -> Mask {
        let mut cur = self.bits.clone();
        for _ in 0..DILATE {
            // Horizontal: shift each row left and right by one bit.
            let mut h = cur.clone();
            for y in 0..self.size {
                let row = &cur[y * self.words..(y + 1) * self.words];
                for i in 0..self.words {
                    let mut v = row[i] | (row[i] << 1) | (row[i] >> 1);
                    if i > 0 {
                        v |= row[i - 1] >> 63;
                    }
                    if i + 1 < self.words {
                        v |= row[i + 1] << 63;
                    }
                    h[y * self.words + i] = v;
                }
            }
            // Vertical: or with the rows above and below.
            let mut v = h.clone();
            for y in 0..self.size {
                for i in 0..self.words {
                    let mut x = h[y * self.words + i];
                    if y > 0 {
                        x |= h[(y - 1) * self.words + i];
                    }
                    if y + 1 < self.size {
                        x |= h[(y + 1) * self.words + i];
                    }
                    v[y * self.words + i] = x;
                }
            }
            cur = v;
        }
        // Bits past the right edge are cleared.
        let tail = self.size % 64;
        if tail != 0 {
            for y in 0..self.size {
                cur[y * self.words + self.words - 1] &= (1u64 << tail) - 1;
            }
        }
        let count = cur.iter().map(|w| w.count_ones()).sum();
        Mask {
            size: self.size,
            words: self.words,
            bits: cur,
            count,
        }
    }

    fn and_count(&self, o: &Mask) -> u32 {
        self.bits
            .iter()
            .zip(&o.bits)
            .map(|(a, b)| (a & b).count_ones())
            .sum()
    }
}

/// Render `svg` with [`crate::render::rasterize`] into a `size × size`
/// frame (longest side = size) and keep its ink pixels (alpha-composited
/// over white, luminance < [`INK_LUMA`]). `None` when it does not render.
pub fn mask(svg: &str, size: u32) -> Option<Mask> {
    let pix = crate::render::rasterize(svg, size)?;
    let mut m = Mask::empty(size);
    let (w, h) = (pix.width() as usize, pix.height() as usize);
    for (i, p) in pix.pixels().iter().enumerate() {
        let (x, y) = (i % w, i / w);
        if x >= m.size || y >= m.size || y >= h {
            continue;
        }
        // Premultiplied over an opaque white fill: alpha is 255, so the
        // channels are the composited colour.
        let l = 0.299 * p.red() as f64 + 0.587 * p.green() as f64 + 0.114 * p.blue() as f64;
        if l < INK_LUMA {
            m.set(x, y);
        }
    }
    Some(m)
}

/// A mask with its dilation, computed once.
#[derive(Debug, Clone)]
pub struct Prepared {
    mask: Mask,
    dil: Mask,
}

impl Prepared {
    /// Precompute the dilation of `mask`.
    pub fn new(mask: Mask) -> Prepared {
        let dil = mask.dilate();
        Prepared { mask, dil }
    }
}

/// Tolerant overlap of two prepared masks, see [`similarity`].
pub fn similarity_prepared(a: &Prepared, b: &Prepared) -> f64 {
    let (na, nb) = (a.mask.count, b.mask.count);
    if na == 0 && nb == 0 {
        return 1.0;
    }
    if na == 0 || nb == 0 {
        return 0.0;
    }
    let hit = a.dil.and_count(&b.mask) + a.mask.and_count(&b.dil);
    hit as f64 / (na + nb) as f64
}

/// Symmetric tolerant overlap in [0, 1]:
/// `(|dil(A) ∩ B| + |A ∩ dil(B)|) / (|A| + |B|)`, `dil` = growth by
/// [`DILATE`] pixel(s) in the 8 directions. Both empty → 1.0 (two blank
/// drawings look alike); one empty → 0.0.
pub fn similarity(a: &Mask, b: &Mask) -> f64 {
    similarity_prepared(&Prepared::new(a.clone()), &Prepared::new(b.clone()))
}

/// Of several drawings sampled for one prompt, the index of the one that
/// agrees most with the others: among those that are valid SVG and render
/// ink, the highest mean [`similarity`] to the other such drawings (minimum
/// Bayes risk with the visual metric as the utility), the first on ties.
/// With one such drawing, that one; with none, 0.
pub fn consensus(svgs: &[&str]) -> usize {
    let drawn: Vec<(usize, Prepared)> = svgs
        .iter()
        .enumerate()
        .filter(|(_, s)| super::svg::check_svg(s).is_ok())
        .filter_map(|(i, s)| Some((i, Prepared::new(mask(s, SIZE)?))))
        .filter(|(_, m)| m.mask.count > 0)
        .collect();
    let mut best: Option<(usize, f64)> = None;
    for (i, a) in &drawn {
        let agreement: f64 = drawn
            .iter()
            .filter(|(j, _)| j != i)
            .map(|(_, b)| similarity_prepared(a, b))
            .sum();
        if best.is_none_or(|(_, b)| agreement > b) {
            best = Some((*i, agreement));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// The training icons, rendered once: what the retrieval baseline picks
/// from and what generations are checked against for copies.
#[derive(Debug, Clone, Default)]
pub struct Training {
    /// Per rendered training row: prompt, prepared mask, SVG text.
    items: Vec<(String, Prepared, String)>,
    /// The rows' prompts, for the retrieval baseline.
    index: Index,
}

impl Training {
    /// From `(prompt, svg)` rows in file order; rows that do not render
    /// are skipped.
    pub fn new<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> Training {
        let items: Vec<(String, Prepared, String)> = rows
            .into_iter()
            .filter_map(|(p, s)| {
                Some((p.to_string(), Prepared::new(mask(s, SIZE)?), s.to_string()))
            })
            .collect();
        let index = Index::new(items.iter().map(|it| it.0.as_str()));
        Training { items, index }
    }

    /// Rendered training icons.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// No training icon.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The retrieval baseline's pick for `prompt` ([`Index::pick`]: the
    /// icon with the highest tag Jaccard overlap, the first in file order
    /// on ties); `None` without icons.
    pub fn retrieve(&self, prompt: &str) -> Option<usize> {
        self.index.pick(prompt, |_| false)
    }

    /// The nearest icon to `m`: (index, similarity), the first on ties.
    pub fn nearest(&self, m: &Prepared) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        for (i, it) in self.items.iter().enumerate() {
            let s = similarity_prepared(m, &it.1);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        best
    }

    /// Prompt of icon `i`.
    pub fn prompt(&self, i: usize) -> &str {
        &self.items[i].0
    }

    /// SVG text of icon `i`.
    pub fn svg(&self, i: usize) -> &str {
        &self.items[i].2
    }
}

/// The visual scores of one generation `text` for `prompt` against
/// `reference`; `None` without a reference.
pub fn score_sample(
    prompt: &str,
    text: &str,
    reference: Option<&str>,
    training: Option<&Training>,
) -> Option<SampleVisual> {
    let r = Prepared::new(mask(reference?, SIZE)?);
    let g = mask(text, SIZE).map(Prepared::new);
    let mut v = SampleVisual {
        score: g.as_ref().map(|g| similarity_prepared(g, &r)),
        ..SampleVisual::default()
    };
    if let Some(t) = training {
        if let Some(i) = t.retrieve(prompt) {
            v.baseline = Some(similarity_prepared(&t.items[i].1, &r));
            v.baseline_prompt = Some(t.prompt(i).to_string());
            v.rows.0 = Some(i);
        }
        if let Some((i, s)) = g.as_ref().and_then(|g| t.nearest(g)) {
            v.nearest = Some(s);
            v.nearest_prompt = Some(t.prompt(i).to_string());
            v.copy = s >= COPY_THRESHOLD;
            v.rows.1 = Some(i);
        }
    }
    Some(v)
}

/// Aggregate per-sample scores; `None` when none was scored.
pub fn aggregate<'a>(samples: impl IntoIterator<Item = &'a SampleVisual>) -> Option<VisualEval> {
    let (mut n, mut sum, mut bsum, mut bn, mut above, mut valid, mut copies) =
        (0, 0.0, 0.0, 0, 0, 0, 0);
    for s in samples {
        n += 1;
        let sc = s.score.unwrap_or(0.0);
        sum += sc;
        if let Some(b) = s.baseline {
            bsum += b;
            bn += 1;
            above += (sc > b) as usize;
        }
        if s.nearest.is_some() {
            valid += 1;
            copies += s.copy as usize;
        }
    }
    (n > 0).then(|| VisualEval {
        n,
        score_mean: Some(sum / n as f64),
        baseline_mean: (bn > 0).then(|| bsum / bn as f64),
        above_baseline: Rate::new(above, bn),
        near_copies: Rate::new(copies, valid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: u32, y: u32, w: u32, h: u32) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect x="{x}" y="{y}" width="{w}" height="{h}" fill="black"/></svg>"#
        )
    }

    fn sim(a: &str, b: &str) -> f64 {
        similarity(&mask(a, SIZE).unwrap(), &mask(b, SIZE).unwrap())
    }

    #[test]
    fn consensus_is_the_drawing_the_others_agree_with() {
        // Three squares a few pixels apart and one far off: the middle
        // square overlaps both neighbours most.
        let (left, mid, right) = (
            rect(8, 10, 20, 20),
            rect(12, 10, 20, 20),
            rect(16, 10, 20, 20),
        );
        let odd = rect(44, 44, 16, 16);
        assert_eq!(consensus(&[&odd, &left, &mid, &right]), 2);
        assert_eq!(consensus(&[&right, &mid, &left, &odd]), 1);
        // Invalid or blank drawings never win, however many agree.
        let blank = r#"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"></svg>"#;
        let broken = "<svg><rect";
        assert_eq!(consensus(&[blank, blank, broken, broken, &odd]), 4);
        // Ties go to the first; nothing drawable gives the first.
        assert_eq!(consensus(&[&left, &left]), 0);
        assert_eq!(consensus(&[broken, blank, "plain text"]), 0);
        assert_eq!(consensus(&["plain text"]), 0);
    }

    #[test]
    fn identical_is_one() {
        let a = rect(10, 10, 20, 20);
        assert_eq!(sim(&a, &a), 1.0);
        assert!(mask(&a, SIZE).unwrap().count() >= 400);
    }

    #[test]
    fn disjoint_is_zero() {
        assert_eq!(sim(&rect(0, 0, 10, 10), &rect(40, 40, 10, 10)), 0.0);
    }

    #[test]
    fn shifted_between_and_monotone() {
        let a = rect(10, 10, 20, 20);
        let near = sim(&a, &rect(13, 10, 20, 20));
        let far = sim(&a, &rect(20, 10, 20, 20));
        assert!(near > 0.0 && near < 1.0, "{near}");
        assert!(far > 0.0 && far < near, "{far} {near}");
        // One pixel is forgiven by the dilation.
        assert_eq!(sim(&a, &rect(11, 10, 20, 20)), 1.0);
    }

    #[test]
    fn empty_masks() {
        let blank = r#"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"></svg>"#;
        assert_eq!(sim(blank, blank), 1.0);
        assert_eq!(sim(blank, &rect(0, 0, 10, 10)), 0.0);
        assert!(mask("not svg", SIZE).is_none());
    }

    #[test]
    fn retrieval_nearest_copy_and_aggregate() {
        let (a, b, c) = (
            rect(0, 0, 20, 20),
            rect(40, 40, 20, 20),
            rect(0, 40, 20, 20),
        );
        let t = Training::new([
            ("[square][red]", a.as_str()),
            ("[square][blue]", b.as_str()),
            ("[square][blue]", c.as_str()),
        ]);
        assert_eq!(t.len(), 3);
        // Highest Jaccard wins; ties go to the first in file order.
        assert_eq!(t.retrieve("[blue][square]"), Some(1));
        assert_eq!(t.retrieve("[red]"), Some(0));
        assert_eq!(t.retrieve("[nothing]"), Some(0));
        // The generation copies c exactly; the reference is b; the
        // baseline picks b.
        let v = score_sample("[blue][square]", &c, Some(&b), Some(&t)).unwrap();
        assert_eq!(v.score, Some(0.0));
        assert_eq!(v.baseline, Some(1.0));
        assert_eq!(v.baseline_prompt.as_deref(), Some("[square][blue]"));
        assert_eq!(v.nearest, Some(1.0));
        assert!(v.copy);
        let w = score_sample("[red]", &rect(5, 5, 10, 10), Some(&a), Some(&t)).unwrap();
        assert!(!w.copy && w.nearest.unwrap() < COPY_THRESHOLD);
        let broken = score_sample("[red]", "<svg", Some(&a), Some(&t)).unwrap();
        assert_eq!((broken.score, broken.nearest), (None, None));
        let e = aggregate([&v, &w, &broken]).unwrap();
        assert_eq!(e.n, 3);
        assert_eq!(e.near_copies, Rate::new(1, 2));
        assert_eq!(e.above_baseline, Rate::new(0, 3));
        let expect = (0.0 + w.score.unwrap()) / 3.0;
        assert!((e.score_mean.unwrap() - expect).abs() < 1e-12);
        assert!(score_sample("[red]", &a, None, Some(&t)).is_none());
    }

    #[test]
    fn families_aggregate() {
        use crate::eval::{evaluate_with, Generation};
        let (a, b) = (rect(0, 0, 20, 20), rect(40, 40, 20, 20));
        let t = Training::new([("[square]", a.as_str())]);
        let gens = vec![
            Generation {
                prompt: "[square]".into(),
                text: a.clone(),
                reference: Some(a.clone()),
            },
            Generation {
                prompt: "a red circle".into(),
                text: b.clone(),
                reference: Some(a.clone()),
            },
        ];
        let e = evaluate_with(&gens, Some(&t));
        let all = e.visual.as_ref().unwrap();
        assert_eq!(all.n, 2);
        assert!((all.score_mean.unwrap() - 0.5).abs() < 1e-12);
        let vis = |f: &str| e.families[f].visual.clone().unwrap();
        let fams: Vec<&String> = e.families.keys().collect();
        assert_eq!(fams.len(), 2, "{fams:?}");
        let other = e.families.keys().find(|k| *k != "tags").unwrap().clone();
        assert_eq!(vis("tags").score_mean, Some(1.0));
        assert_eq!(vis("tags").near_copies, Rate::new(1, 1));
        assert_eq!(vis(&other).score_mean, Some(0.0));
        assert!(e.to_table().contains("visual score mean"));
    }
}
