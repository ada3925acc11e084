//! Duplicate and near-duplicate detection.
//!
//! * exact: SHA-256 of `prompt \0 text`;
//! * normalized: the same after removing all whitespace and rounding every
//!   number to `round_decimals` decimals (`12.004` ~ `12`);
//! * similar: MinHash over character 5-shingles (128 hashes, LSH with 32 bands
//!   of 4 rows); a candidate whose estimated Jaccard similarity to an earlier
//!   kept row is at least the threshold is a near-duplicate.
//!
//! The first row (in input order) is kept; later ones are reported with the
//! origin of the row they duplicate.

use crate::tokenizer::FxMap;
use std::collections::HashMap;

const HASHES: usize = 128;
const BANDS: usize = 32;
const ROWS: usize = HASHES / BANDS;
const SHINGLE: usize = 5;

/// Why a row is a duplicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Dup {
    /// Byte-identical to row `usize`.
    Exact(usize),
    /// Identical after whitespace removal and number rounding.
    Normalized(usize),
    /// MinHash similarity ≥ threshold (estimate given).
    Similar(usize, f64),
}

/// Whitespace removed, numbers rounded to `decimals` decimals.
pub fn normalized_key(s: &str, decimals: usize) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let starts_num =
            c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        if starts_num {
            let j0 = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i < b.len() && b[i] == b'.' {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            match s[j0..i].parse::<f64>() {
                Ok(x) => {
                    let r = format!("{x:.decimals$}");
                    let r = if r.contains('.') {
                        r.trim_end_matches('0').trim_end_matches('.').to_string()
                    } else {
                        r
                    };
                    out.push_str(if r == "-0" { "0" } else { &r });
                }
                Err(_) => out.push_str(&s[j0..i]),
            }
        } else {
            if !c.is_ascii_whitespace() {
                out.push(c as char);
            }
            i += 1;
        }
    }
    if !s.is_ascii() {
        // Keep non-ASCII rows exact: rebuild from chars without rounding.
        return s.chars().filter(|c| !c.is_whitespace()).collect();
    }
    out
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// MinHash signature of the 5-byte shingles of `s`.
pub fn minhash(s: &[u8]) -> [u64; HASHES] {
    let mut sig = [u64::MAX; HASHES];
    let n = s.len();
    let mut feed = |h: u64| {
        for (k, m) in sig.iter_mut().enumerate() {
            let v = mix(h ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            if v < *m {
                *m = v;
            }
        }
    };
    if n < SHINGLE {
        feed(mix(s.iter().fold(7u64, |a, &b| {
            a.wrapping_mul(31).wrapping_add(b as u64)
        })));
        return sig;
    }
    let mut seen: FxMap<u64, ()> = FxMap::default();
    for w in s.windows(SHINGLE) {
        let h = w.iter().fold(0xcbf2_9ce4_8422_2325u64, |a, &b| {
            (a ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        if seen.insert(h, ()).is_none() {
            feed(h);
        }
    }
    sig
}

fn similarity(a: &[u64; HASHES], b: &[u64; HASHES]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / HASHES as f64
}

/// Incremental deduplicator: feed rows in order, get back whether each is a
/// duplicate of an earlier kept row.
pub struct Deduper {
    exact: HashMap<String, usize>,
    norm: HashMap<String, usize>,
    bands: Vec<FxMap<u64, Vec<usize>>>,
    sigs: Vec<(usize, [u64; HASHES])>,
    /// Near-duplicate threshold on estimated Jaccard; `>= 1.0` turns MinHash off.
    pub threshold: f64,
    /// Decimals numbers are rounded to for the normalized key.
    pub decimals: usize,
}

impl Deduper {
    /// A deduplicator with a MinHash threshold (e.g. 0.9; ≥ 1 disables it).
    pub fn new(threshold: f64, decimals: usize) -> Self {
        Deduper {
            exact: HashMap::new(),
            norm: HashMap::new(),
            bands: (0..BANDS).map(|_| FxMap::default()).collect(),
            sigs: Vec::new(),
            threshold,
            decimals,
        }
    }

    /// Check row `id` (`key` = prompt + "\0" + text); if new, remember it.
    pub fn check(&mut self, id: usize, key: &str) -> Option<Dup> {
        let h = crate::util::sha256_hex(key.as_bytes());
        if let Some(&o) = self.exact.get(&h) {
            return Some(Dup::Exact(o));
        }
        let nk = normalized_key(key, self.decimals);
        if let Some(&o) = self.norm.get(&nk) {
            return Some(Dup::Normalized(o));
        }
        let mut sig = None;
        if self.threshold < 1.0 {
            let s = minhash(key.as_bytes());
            let mut best: Option<(usize, f64)> = None;
            for (bi, band) in self.bands.iter().enumerate() {
                let bh = band_hash(&s, bi);
                if let Some(c) = band.get(&bh) {
                    for &si in c {
                        let (oid, ref os) = self.sigs[si];
                        let j = similarity(&s, os);
                        if j >= self.threshold && best.is_none_or(|(_, bj)| j > bj) {
                            best = Some((oid, j));
                        }
                    }
                }
            }
            if let Some((o, j)) = best {
                return Some(Dup::Similar(o, j));
            }
            sig = Some(s);
        }
        self.exact.insert(h, id);
        self.norm.insert(nk, id);
        if let Some(s) = sig {
            let si = self.sigs.len();
            for (bi, band) in self.bands.iter_mut().enumerate() {
                band.entry(band_hash(&s, bi)).or_default().push(si);
            }
            self.sigs.push((id, s));
        }
        None
    }
}

fn band_hash(s: &[u64; HASHES], band: usize) -> u64 {
    s[band * ROWS..(band + 1) * ROWS]
        .iter()
        .fold(band as u64, |a, &x| mix(a ^ x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            normalized_key("<path d=\"M 12.004 5\"/>", 2),
            "<pathd=\"M125\"/>"
        );
        assert_eq!(normalized_key("a 1.50", 1), "a1.5");
    }

    #[test]
    fn finds_near_duplicates() {
        let mut d = Deduper::new(0.8, 2);
        let a = "<svg><path d=\"M5 12l14 0M5 12l6 6M5 12l6 -6M3 3h18v18H3z\"/><circle cx=\"12\" cy=\"12\" r=\"9\"/></svg>";
        assert_eq!(d.check(0, a), None);
        assert_eq!(d.check(1, a), Some(Dup::Exact(0)));
        assert_eq!(
            d.check(2, &a.replace("r=\"9\"", "r = \"9.001\"")),
            Some(Dup::Normalized(0))
        );
        assert!(matches!(
            d.check(3, &a.replace("r=\"9\"", "r=\"8\"")),
            Some(Dup::Similar(0, _))
        ));
        assert_eq!(
            d.check(
                4,
                "<svg><rect width=\"100\" height=\"3\" fill=\"red\"/></svg>"
            ),
            None
        );
    }
}
