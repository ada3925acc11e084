//! Prompt → SVG success: the synthetic scenes (`data::synth`) and a
//! checkable subset of real-icon tag prompts.

use super::svg::{check_svg, usvg_tree};
pub use crate::data::retrieval::parse_tags;
use crate::data::synth;
use serde::{Deserialize, Serialize};

/// What kind of prompt it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    /// Five synthetic tags that `synth::parse_prompt` reads.
    Synthetic,
    /// A list of `[tag]`s (real icons), not a synthetic scene.
    Tags,
    /// Anything else (free text, empty).
    Other,
}

/// The outcome of checking a generation against its prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptOutcome {
    /// Valid SVG and every checkable attribute holds.
    Success,
    /// What does not hold.
    Fail(Vec<String>),
    /// Nothing in the prompt is checkable.
    NotApplicable,
}

/// Named reference colours for colour tags, as RGB. A drawn colour "is" the
/// name whose reference is nearest in RGB (Euclidean). The six synthetic
/// colours use their exact fills from [`synth::COLOURS`].
pub const TAG_COLOURS: [(&str, [u8; 3]); 11] = [
    ("red", [0xe5, 0x39, 0x35]),
    ("green", [0x43, 0xa0, 0x47]),
    ("blue", [0x1e, 0x88, 0xe5]),
    ("yellow", [0xfd, 0xd8, 0x35]),
    ("purple", [0x8e, 0x24, 0xaa]),
    ("orange", [0xfb, 0x8c, 0x00]),
    ("black", [0, 0, 0]),
    ("white", [255, 255, 255]),
    ("gray", [128, 128, 128]),
    ("pink", [0xf4, 0x8f, 0xb1]),
    ("brown", [0x79, 0x55, 0x48]),
];

/// Shape tags and the SVG elements that satisfy them.
pub const TAG_SHAPES: [(&str, &[&str]); 7] = [
    ("circle", &["circle", "ellipse"]),
    ("ellipse", &["ellipse", "circle"]),
    ("square", &["rect"]),
    ("rect", &["rect"]),
    ("rectangle", &["rect"]),
    ("triangle", &["polygon"]),
    ("line", &["line", "polyline"]),
];

/// Classify a prompt.
pub fn prompt_kind(prompt: &str) -> PromptKind {
    if synth::parse_prompt(prompt).is_ok() {
        PromptKind::Synthetic
    } else if parse_tags(prompt).is_some() {
        PromptKind::Tags
    } else {
        PromptKind::Other
    }
}

fn nearest_colour(c: [u8; 3]) -> &'static str {
    let d = |r: [u8; 3]| -> i32 {
        (0..3)
            .map(|i| (c[i] as i32 - r[i] as i32).pow(2))
            .sum::<i32>()
    };
    TAG_COLOURS
        .iter()
        .min_by_key(|(_, r)| d(*r))
        .map(|(n, _)| *n)
        .unwrap_or("black")
}

fn drawn_colours(g: &usvg::Group, out: &mut Vec<&'static str>) {
    for n in g.children() {
        match n {
            usvg::Node::Group(g) => drawn_colours(g, out),
            usvg::Node::Path(p) => {
                let paints = [p.fill().map(|f| f.paint()), p.stroke().map(|s| s.paint())];
                for c in paints.into_iter().flatten() {
                    if let usvg::Paint::Color(c) = c {
                        out.push(nearest_colour([c.red, c.green, c.blue]));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Check a generation against a tag prompt (the rule in the `eval` module
/// doc): colour tags need a drawn solid fill or stroke nearest to that
/// colour, shape tags need a matching element (`triangle`: a `<polygon>`
/// with 3 points); other tags are not checkable.
pub fn check_tags(tags: &[String], text: &str) -> PromptOutcome {
    let checkable: Vec<&String> = tags
        .iter()
        .filter(|t| {
            TAG_COLOURS.iter().any(|(n, _)| n == t) || TAG_SHAPES.iter().any(|(n, _)| n == t)
        })
        .collect();
    if checkable.is_empty() {
        return PromptOutcome::NotApplicable;
    }
    if let Err(e) = check_svg(text) {
        return PromptOutcome::Fail(vec![format!("not a valid SVG ({})", e.name())]);
    }
    let t = text.trim();
    let mut colours = Vec::new();
    if let Some(tree) = usvg_tree(t) {
        drawn_colours(tree.root(), &mut colours);
    }
    let doc = roxmltree::Document::parse(t).ok();
    let mut bad = Vec::new();
    for tag in checkable {
        if TAG_COLOURS.iter().any(|(n, _)| n == tag) {
            if !colours.iter().any(|c| c == tag) {
                bad.push(format!("no {tag} fill or stroke"));
            }
            continue;
        }
        let elems = TAG_SHAPES
            .iter()
            .find(|(n, _)| n == tag)
            .map(|(_, e)| *e)
            .unwrap_or(&[]);
        let found = doc.as_ref().is_some_and(|d| {
            d.descendants().any(|n| {
                n.is_element()
                    && elems.contains(&n.tag_name().name())
                    && (tag != "triangle"
                        || n.attribute("points").is_some_and(|p| {
                            p.split([' ', ',', '\t', '\n'])
                                .filter(|x| !x.is_empty())
                                .count()
                                == 6
                        }))
            })
        });
        if !found {
            bad.push(format!("no <{}> for [{tag}]", elems.join("> or <")));
        }
    }
    if bad.is_empty() {
        PromptOutcome::Success
    } else {
        PromptOutcome::Fail(bad)
    }
}

/// Check a generation against its prompt: synthetic prompts with
/// `Scene::check` (and the valid-SVG check), tag prompts with
/// [`check_tags`], anything else is not applicable.
pub fn prompt_success(prompt: &str, text: &str) -> (PromptKind, PromptOutcome) {
    if let Ok(scene) = synth::parse_prompt(prompt) {
        let mut bad = Vec::new();
        if let Err(e) = check_svg(text) {
            bad.push(format!("not a valid SVG ({})", e.name()));
        }
        bad.extend(scene.check(text.trim()));
        let out = if bad.is_empty() {
            PromptOutcome::Success
        } else {
            PromptOutcome::Fail(bad)
        };
        return (PromptKind::Synthetic, out);
    }
    match parse_tags(prompt) {
        Some(tags) => (PromptKind::Tags, check_tags(&tags, text)),
        None => (PromptKind::Other, PromptOutcome::NotApplicable),
    }
}
