//! The GPT-2 byte-level pieces shared with Hugging Face `tokenizers`: the
//! byte ↔ printable-char table used to store byte tokens as JSON strings, and
//! the regex pre-tokenizer that cuts text into words before BPE.

use regex::bytes::Regex;
use std::sync::OnceLock;

/// The GPT-2 pre-tokenizer pattern, without its `\s+(?!\S)` look-ahead (the
/// `regex` crate has no look-around); [`pre_tokenize`] restores that rule by
/// hand, so the words are exactly those of HF `ByteLevel(use_regex=true)`:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
const PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// The `numbers` pre-split: a decimal number with its sign and one leading
/// space (` -12.5`, ` .5`, `3`) is one word, so BPE can give a coordinate
/// one token instead of cutting it at the point; letters (path commands,
/// names) are words as in GPT-2; other punctuation runs stop before `.`
/// and `-`, which may start a number. Whitespace as in GPT-2.
const NUMBERS: &str =
    r" ?-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)| ?\p{L}+| ?[^\s\p{L}\p{N}.\-]+| ?[.\-]+|\s+";

/// How text is cut into words before BPE merges within them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PreSplit {
    /// GPT-2's regex: digits, letters and punctuation apart (`8.5` is three words).
    #[default]
    Gpt2,
    /// Numbers whole, for SVG coordinates: a sign, digits and a point (` -12.5`, ` .5`) make one word.
    Numbers,
}

impl std::str::FromStr for PreSplit {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "gpt2" => Ok(PreSplit::Gpt2),
            "numbers" => Ok(PreSplit::Numbers),
            _ => Err(format!(
                "unknown pre_split `{s}` (expected gpt2 or numbers)"
            )),
        }
    }
}

impl PreSplit {
    /// The pattern as Hugging Face `tokenizers` writes it in a `Split`
    /// pre-tokenizer (Oniguruma, with the look-ahead this crate emulates);
    /// `None` for GPT-2's, which is `ByteLevel(use_regex=true)` itself.
    pub fn hf_pattern(self) -> Option<String> {
        match self {
            PreSplit::Gpt2 => None,
            PreSplit::Numbers => Some(NUMBERS.replace(r"|\s+", r"|\s+(?!\S)|\s+")),
        }
    }

    fn regex(self) -> &'static Regex {
        static GPT2: OnceLock<Regex> = OnceLock::new();
        static NUM: OnceLock<Regex> = OnceLock::new();
        match self {
            PreSplit::Gpt2 => GPT2.get_or_init(|| Regex::new(PATTERN).expect("static pattern")),
            PreSplit::Numbers => NUM.get_or_init(|| Regex::new(NUMBERS).expect("static pattern")),
        }
    }
}

/// Cut `text` into pre-tokenization words, calling `f` on each in order.
/// Every byte lands in exactly one word. Valid UTF-8 is split exactly as the
/// GPT-2 / HF ByteLevel regex does (or the `numbers` pattern as HF's `Split`
/// does); a run of bytes that is not valid UTF-8 (which no class of the
/// pattern matches) becomes one word on its own.
pub fn pre_tokenize<'a>(split: PreSplit, text: &'a [u8], f: impl FnMut(&'a [u8])) {
    // One clone per thread: a clone has its own match-cache pool, so threads
    // do not contend on the shared one.
    thread_local! {
        static RE: [Regex; 2] = [PreSplit::Gpt2.regex().clone(), PreSplit::Numbers.regex().clone()];
    }
    RE.with(|re| split_with(&re[split as usize], text, f))
}

fn split_with<'a>(re: &Regex, text: &'a [u8], mut f: impl FnMut(&'a [u8])) {
    let mut pos = 0;
    while pos < text.len() {
        let Some(m) = re.find_at(text, pos) else {
            f(&text[pos..]);
            return;
        };
        if m.start() > pos {
            f(&text[pos..m.start()]);
        }
        let mut end = m.end();
        // `\s+(?!\S)`: a whitespace run followed by a non-space leaves its
        // last whitespace character to start the next word (" foo").
        if end < text.len() && m.end() - m.start() > 1 && is_ws_run(&text[m.start()..end]) {
            let last = last_char_start(&text[m.start()..end]);
            if last > 0 {
                end = m.start() + last;
            }
        }
        f(&text[m.start()..end]);
        pos = end;
    }
}

/// True when the match is a pure whitespace run (the `\s+` alternative).
fn is_ws_run(s: &[u8]) -> bool {
    match std::str::from_utf8(s) {
        Ok(t) => t.chars().all(char::is_whitespace),
        Err(_) => false,
    }
}

/// Byte offset of the last UTF-8 character in `s`.
fn last_char_start(s: &[u8]) -> usize {
    let mut i = s.len() - 1;
    while i > 0 && (s[i] & 0xC0) == 0x80 {
        i -= 1;
    }
    i
}

/// The GPT-2 `bytes_to_unicode` table: byte → printable char.
pub fn byte_to_char() -> &'static [char; 256] {
    static T: OnceLock<[char; 256]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = ['\0'; 256];
        let mut n = 0u32;
        for b in 0..=255u32 {
            let printable = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            t[b as usize] = if printable {
                char::from_u32(b).unwrap()
            } else {
                n += 1;
                char::from_u32(255 + n).unwrap()
            };
        }
        t
    })
}

/// Inverse of [`byte_to_char`]; `None` for a char that stands for no byte.
pub fn char_to_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x100 {
        let t = byte_to_char();
        return (t[u as usize] == c).then_some(u as u8);
    }
    // Chars 256..=323 stand for the 68 non-printable bytes, in byte order.
    let t = byte_to_char();
    (0..=255u8).find(|&b| t[b as usize] == c)
}

/// Bytes → the byte-level string HF stores in `vocab` and `merges`.
pub fn to_chars(bytes: &[u8]) -> String {
    let t = byte_to_char();
    bytes.iter().map(|&b| t[b as usize]).collect()
}

/// The byte-level string back to bytes; `None` if a char maps to no byte.
pub fn from_chars(s: &str) -> Option<Vec<u8>> {
    s.chars().map(char_to_byte).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        pre_tokenize(PreSplit::Gpt2, s.as_bytes(), |w| {
            v.push(String::from_utf8_lossy(w).into_owned())
        });
        v
    }

    #[test]
    fn gpt2_split() {
        assert_eq!(words("Hello world"), ["Hello", " world"]);
        assert_eq!(words("a   b"), ["a", "  ", " b"]);
        assert_eq!(words("a \n\nb"), ["a", " \n", "\n", "b"]);
        assert_eq!(
            words("it's 12.5 <svg"),
            ["it", "'s", " 12", ".", "5", " <", "svg"]
        );
        assert_eq!(words("x  "), ["x", "  "]);
    }

    #[test]
    fn table_roundtrip() {
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char()[b as usize]), Some(b));
        }
        assert_eq!(to_chars(b" a\n"), "\u{120}a\u{10a}");
    }
}
