//! Text-level metrics: whitespace normalization and exact match, repeated
//! n-grams, and boundary glitches.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The n of [`repeat_ratio`] as used by `evaluate`: character 4-grams.
pub const REPEAT_N: usize = 4;

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Whitespace normalization for exact match: every run of XML whitespace
/// (space, tab, CR, LF) becomes one space; a space next to `<`, `>` or `=`,
/// or before `/>`, is removed; the ends are trimmed. So
/// `<svg  a = "1" >\n <g/></svg>` and `<svg a="1"><g/></svg>` are equal.
pub fn normalize_ws(s: &str) -> String {
    let mut collapsed = String::with_capacity(s.len());
    let mut in_ws = false;
    for c in s.chars() {
        if is_ws(c) {
            in_ws = true;
        } else {
            if in_ws {
                collapsed.push(' ');
            }
            in_ws = false;
            collapsed.push(c);
        }
    }
    let chars: Vec<char> = collapsed.trim_matches(' ').chars().collect();
    let mut out = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = if i > 0 { chars[i - 1] } else { ' ' };
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            let next2 = chars.get(i + 2).copied().unwrap_or(' ');
            if matches!(prev, '<' | '>' | '=')
                || matches!(next, '<' | '>' | '=')
                || (next == '/' && next2 == '>')
            {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Exact match after [`normalize_ws`] on both sides.
pub fn exact_match(generated: &str, reference: &str) -> bool {
    normalize_ws(generated) == normalize_ws(reference)
}

/// Fraction of repeated n-grams over a sequence of units: `1 − distinct / total`
/// where `total = len − n + 1` overlapping n-grams. `None` when the sequence
/// is shorter than `n` (or `n = 0`). 0 means no n-gram occurs twice; a model
/// stuck in a loop approaches 1.
pub fn repeat_ratio_of<T: std::hash::Hash + Eq>(units: &[T], n: usize) -> Option<f64> {
    if n == 0 || units.len() < n {
        return None;
    }
    let total = units.len() - n + 1;
    let distinct: HashSet<&[T]> = units.windows(n).collect();
    Some(1.0 - distinct.len() as f64 / total as f64)
}

/// [`repeat_ratio_of`] over the characters of `text`.
pub fn repeat_ratio(text: &str, n: usize) -> Option<f64> {
    let cs: Vec<char> = text.chars().collect();
    repeat_ratio_of(&cs, n)
}

/// Boundary glitches of one generation (see the module doc of `eval`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Glitches {
    /// Non-whitespace text after the first `</svg>`.
    pub after_end: bool,
    /// The text ends inside a tag, comment or quoted value, or with elements
    /// still open (e.g. cut off before `</svg>`).
    pub unclosed: bool,
    /// `/svg>` not preceded by `<` (a torn closing tag).
    pub stray_close: bool,
}

impl Glitches {
    /// Any glitch at all.
    pub fn any(&self) -> bool {
        self.after_end || self.unclosed || self.stray_close
    }
}

/// Find the boundary glitches of one generation.
pub fn boundary_glitches(text: &str) -> Glitches {
    let after_end = match text.find("</svg>") {
        Some(p) => !text[p + 6..].trim().is_empty(),
        None => false,
    };
    let stray_close = text
        .match_indices("/svg>")
        .any(|(i, _)| i == 0 || text.as_bytes()[i - 1] != b'<');
    // Unclosed: scan tags up to the end of the first `</svg>` (or all text).
    let body = match text.find("</svg>") {
        Some(p) => &text[..p + 6],
        None => text,
    };
    Glitches {
        after_end,
        unclosed: unclosed(body),
        stray_close,
    }
}

/// A light tag scanner: true when `s` ends inside markup or with open
/// elements. Mismatched names are not its business (that is well-formedness).
fn unclosed(s: &str) -> bool {
    let b = s.as_bytes();
    let mut depth: i64 = 0;
    let mut seen_element = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &s[i..];
        let (close, end) = if rest.starts_with("<!--") {
            (None, rest.find("-->").map(|e| e + 3))
        } else if rest.starts_with("<![CDATA[") {
            (None, rest.find("]]>").map(|e| e + 3))
        } else if rest.starts_with("<?") {
            (None, rest.find("?>").map(|e| e + 2))
        } else if rest.starts_with("<!") {
            (None, rest.find('>').map(|e| e + 1))
        } else {
            // A start, end or empty tag: find `>` outside quotes.
            let mut q: Option<u8> = None;
            let mut e = None;
            for (j, &c) in rest.as_bytes().iter().enumerate().skip(1) {
                match q {
                    Some(qc) if c == qc => q = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => q = Some(c),
                    None if c == b'>' => {
                        e = Some(j + 1);
                        break;
                    }
                    None => {}
                }
            }
            let kind = match e {
                Some(_) if rest.starts_with("</") => Some(-1),
                Some(e) if rest[..e].ends_with("/>") => Some(0),
                Some(_) => Some(1),
                None => None,
            };
            (kind, e)
        };
        match end {
            None => return true,
            Some(e) => {
                if let Some(d) = close {
                    depth += d;
                    seen_element = true;
                }
                i += e;
            }
        }
    }
    seen_element && depth > 0
}
