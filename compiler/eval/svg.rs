//! Valid-SVG check: ASCII, well-formed XML, `<svg>` root, parsed by `usvg`
//! into a tree with at least one drawable element.

pub use crate::render::{safe_usvg_options, usvg_tree};
use serde::{Deserialize, Serialize};

/// Why a generation is not a valid SVG (the first failing step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalid {
    /// Empty or only whitespace.
    Empty,
    /// A byte ≥ 0x80 (UTF artifacts, or any non-ASCII character).
    NonAscii,
    /// Not well-formed XML (unclosed or mismatched tags, bad attributes, ...).
    NotXml,
    /// Well-formed, but the root element is not `svg`.
    WrongRoot,
    /// `usvg` rejects it (e.g. a zero or negative `width`/`height`).
    Unparsable,
    /// Parsed, but nothing in the tree draws: no visible path with a fill or
    /// stroke, image or text left after `usvg` drops zero-size and
    /// non-rendering elements.
    NoDrawable,
}

impl Invalid {
    /// Every reason, in check order.
    pub const ALL: [Invalid; 6] = [
        Invalid::Empty,
        Invalid::NonAscii,
        Invalid::NotXml,
        Invalid::WrongRoot,
        Invalid::Unparsable,
        Invalid::NoDrawable,
    ];

    /// The snake_case name used in `eval.json`.
    pub fn name(self) -> &'static str {
        match self {
            Invalid::Empty => "empty",
            Invalid::NonAscii => "non_ascii",
            Invalid::NotXml => "not_xml",
            Invalid::WrongRoot => "wrong_root",
            Invalid::Unparsable => "unparsable",
            Invalid::NoDrawable => "no_drawable",
        }
    }
}

/// Count drawable nodes under a group, recursively: visible paths with a
/// fill or a stroke, visible images, and texts.
pub fn drawable_count(g: &usvg::Group) -> usize {
    g.children()
        .iter()
        .map(|n| match n {
            usvg::Node::Group(g) => drawable_count(g),
            usvg::Node::Path(p) => {
                (p.is_visible() && (p.fill().is_some() || p.stroke().is_some())) as usize
            }
            usvg::Node::Image(i) => i.is_visible() as usize,
            usvg::Node::Text(_) => 1,
        })
        .sum()
}

/// Check one generation (leading and trailing whitespace ignored). `Ok` with
/// the number of drawable elements, or the first failing step.
pub fn check_svg(text: &str) -> Result<usize, Invalid> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Invalid::Empty);
    }
    if !t.is_ascii() {
        return Err(Invalid::NonAscii);
    }
    let doc = roxmltree::Document::parse(t).map_err(|_| Invalid::NotXml)?;
    if doc.root_element().tag_name().name() != "svg" {
        return Err(Invalid::WrongRoot);
    }
    let tree = usvg_tree(t).ok_or(Invalid::Unparsable)?;
    match drawable_count(tree.root()) {
        0 => Err(Invalid::NoDrawable),
        n => Ok(n),
    }
}

/// True when [`check_svg`] passes.
pub fn is_valid_svg(text: &str) -> bool {
    check_svg(text).is_ok()
}
