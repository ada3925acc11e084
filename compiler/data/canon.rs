//! Canonical SVG: geometry written one way, so a model sees the same thing
//! spelled the same way in every icon, in fewer tokens.
//!
//! [`canonicalize`] takes whitespace-normalized SVG (see [`super::svg`]) and
//! rewrites, without changing what is drawn:
//!
//! * **numbers** in `d`, `points`, `viewBox`, `transform` and the plain
//!   numeric attributes (`x`, `cx`, `r`, `width`, `stroke-width`, ...):
//!   the same decimal value in its shortest plain form: no `+`, no leading
//!   zero before the point (`0.5` → `.5`, `-0.5` → `-.5`), no trailing zeros
//!   or point (`2.50` → `2.5`, `3.0` → `3`), `-0` → `0`, exponents expanded
//!   (`1e-3` → `.001`). The value is kept digit for digit, so it parses to
//!   the same float;
//! * **path data** (`d`): every command letter, number and arc flag apart,
//!   one space between them (`M8.5 5.5a.5.5 0 0 0-1 0` →
//!   `M 8.5 5.5 a .5 .5 0 0 0 -1 0`); a letter is written when the command
//!   changes, and coordinate pairs after a moveto get their implicit
//!   lineto written (`M 1 2 L 3 4`); repeats of one command share its letter;
//! * **points**: `x,y` pairs, one space apart;
//! * attributes that cannot change the drawing are dropped: `class` when
//!   the document has no `<style>`, and `data-*`.
//!
//! Anything it cannot read (a malformed path, an odd point list) is left as
//! it was. The caller checks the round trip by rendering both forms
//! ([`same_pixels`]); a row whose pixels would change keeps its input form.

use std::fmt::Write;

/// Render size of the round-trip check.
pub const CHECK_SIZE: u32 = 96;

const NUMERIC_ATTRS: [&str; 21] = [
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "width",
    "height",
    "stroke-width",
    "opacity",
    "fill-opacity",
    "stroke-opacity",
    "stroke-miterlimit",
    "stroke-dashoffset",
    "offset",
    "font-size",
];

/// The canonical form of a whitespace-normalized SVG (see the module doc).
pub fn canonicalize(svg: &str) -> String {
    let has_style = svg.contains("<style");
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        if rest.starts_with("<![CDATA[") || rest.starts_with("<!") || rest.starts_with("<?") {
            let end = if rest.starts_with("<![CDATA[") {
                rest.find("]]>").map(|e| e + 3)
            } else {
                rest.find('>').map(|e| e + 1)
            }
            .unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let end = tag_end(rest);
        out.push_str(&canonical_tag(&rest[..end], has_style));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The byte after the `>` that closes the tag `s` starts with (quotes skipped).
fn tag_end(s: &str) -> usize {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// One start tag with its attributes rewritten (end tags pass through).
fn canonical_tag(tag: &str, has_style: bool) -> String {
    if tag.starts_with("</") {
        return tag.to_string();
    }
    let mut out = String::with_capacity(tag.len());
    let b = tag.as_bytes();
    let mut i = 1;
    while i < b.len() && !matches!(b[i], b' ' | b'>' | b'/') {
        i += 1;
    }
    out.push_str(&tag[..i]);
    loop {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] == b'>' || b[i] == b'/' {
            out.push_str(&tag[i..]);
            return out;
        }
        let a0 = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let name = &tag[a0..i];
        let Some(&q) = b.get(i + 1) else {
            out.push_str(&tag[a0..]);
            return out;
        };
        let v0 = i + 2;
        let v1 = tag[v0..].find(q as char).map_or(tag.len(), |e| v0 + e);
        let value = &tag[v0..v1.min(tag.len())];
        i = (v1 + 1).min(tag.len());
        if (name == "class" && !has_style) || name.starts_with("data-") {
            continue;
        }
        let value = canonical_value(name, value).unwrap_or_else(|| value.to_string());
        let _ = write!(out, " {name}={}{value}{}", q as char, q as char);
    }
}

/// The canonical value of one attribute, or `None` to keep it as written.
fn canonical_value(name: &str, v: &str) -> Option<String> {
    match name {
        "d" => path(v),
        "points" => points(v),
        "viewBox" => numbers(v).map(|ns| ns.join(" ")),
        "transform" => transform(v),
        _ if NUMERIC_ATTRS.contains(&name) => number(v.trim()),
        _ => None,
    }
}

/// The shortest plain spelling of a decimal number (see the module doc),
/// or `None` when `s` is not one number.
pub fn number(s: &str) -> Option<String> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(e) => (&body[..e], body[e + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|c| c.is_ascii_digit())
        || !frac.bytes().all(|c| c.is_ascii_digit())
        || exp.abs() > 30
    {
        return None;
    }
    // All digits, and where the point goes among them.
    let digits: String = format!("{int}{frac}");
    let point = int.len() as i64 + exp as i64;
    let lead = digits.bytes().take_while(|&c| c == b'0').count();
    let digits = &digits[lead..];
    let point = point - lead as i64;
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        return Some("0".into());
    }
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let n = digits.len() as i64;
    if point <= 0 {
        out.push('.');
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits);
    } else if point >= n {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', (point - n) as usize));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    Some(out)
}

/// The length of the number at the start of `s` (SVG's grammar: sign,
/// digits, point, digits, exponent), 0 when there is none.
fn number_len(s: &[u8]) -> usize {
    let mut i = 0;
    if matches!(s.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let d0 = i;
    while s.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i > d0;
    if s.get(i) == Some(&b'.') {
        let f0 = i + 1;
        let mut j = f0;
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j > f0 || digits {
            digits = true;
            i = j;
        }
    }
    if !digits {
        return 0;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let e0 = j;
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j > e0 {
            i = j;
        }
    }
    i
}

fn skip_sep(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | b',') {
        i += 1;
    }
    i
}

/// Every number of a list (spaces and commas between), canonical.
fn numbers(v: &str) -> Option<Vec<String>> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = skip_sep(b, 0);
    while i < b.len() {
        let n = number_len(&b[i..]);
        if n == 0 {
            return None;
        }
        out.push(number(&v[i..i + n])?);
        i = skip_sep(b, i + n);
    }
    Some(out)
}

fn points(v: &str) -> Option<String> {
    let ns = numbers(v)?;
    if ns.len() % 2 != 0 || ns.is_empty() {
        return None;
    }
    Some(
        ns.chunks(2)
            .map(|p| format!("{},{}", p[0], p[1]))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// `translate(1,2) scale(.5)` with canonical numbers, one space apart.
fn transform(v: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut rest = v.trim();
    while !rest.is_empty() {
        let open = rest.find('(')?;
        let close = rest.find(')')?;
        let name = rest[..open].trim_matches([' ', ',']);
        if !name.bytes().all(|c| c.is_ascii_alphabetic()) || close < open {
            return None;
        }
        let args = numbers(&rest[open + 1..close])?;
        out.push(format!("{name}({})", args.join(" ")));
        rest = rest[close + 1..].trim_start_matches([' ', ',']);
    }
    Some(out.join(" "))
}

fn arg_count(cmd: u8) -> Option<usize> {
    Some(match cmd.to_ascii_lowercase() {
        b'm' | b'l' | b't' => 2,
        b'h' | b'v' => 1,
        b'c' => 6,
        b's' | b'q' => 4,
        b'a' => 7,
        b'z' => 0,
        _ => return None,
    })
}

/// Canonical path data, or `None` when `d` does not read as SVG path data.
pub fn path(d: &str) -> Option<String> {
    let b = d.as_bytes();
    let mut out = String::with_capacity(d.len() + d.len() / 4);
    let mut i = skip_sep(b, 0);
    let mut cmd: Option<u8> = None;
    let mut written: Option<u8> = None;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() {
            let c = b[i];
            arg_count(c)?;
            cmd = Some(c);
            i = skip_sep(b, i + 1);
            if arg_count(c) == Some(0) {
                push_word(&mut out, &(c as char).to_string());
                written = Some(c);
                continue;
            }
        }
        let c = cmd?;
        let n = arg_count(c)?;
        if n == 0 {
            // Numbers after a closepath: not path data.
            return None;
        }
        if written != Some(c) || c.eq_ignore_ascii_case(&b'm') {
            push_word(&mut out, &(c as char).to_string());
            written = Some(c);
        }
        for k in 0..n {
            i = skip_sep(b, i);
            if i >= b.len() {
                return None;
            }
            if c.eq_ignore_ascii_case(&b'a') && (k == 3 || k == 4) {
                if !matches!(b[i], b'0' | b'1') {
                    return None;
                }
                push_word(&mut out, &(b[i] as char).to_string());
                i += 1;
            } else {
                let len = number_len(&b[i..]);
                if len == 0 {
                    return None;
                }
                push_word(&mut out, &number(&d[i..i + len])?);
                i += len;
            }
        }
        i = skip_sep(b, i);
        // Pairs after a moveto are linetos.
        if c == b'M' {
            cmd = Some(b'L');
        } else if c == b'm' {
            cmd = Some(b'l');
        }
    }
    Some(out)
}

fn push_word(out: &mut String, w: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(w);
}

/// Whether two SVGs render to the same pixels at [`CHECK_SIZE`] (both
/// unrenderable counts as the same).
pub fn same_pixels(a: &str, b: &str) -> bool {
    let ra = crate::render::rasterize(a, CHECK_SIZE);
    let rb = crate::render::rasterize(b, CHECK_SIZE);
    match (ra, rb) {
        (Some(x), Some(y)) => x.width() == y.width() && x.data() == y.data(),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_value() {
        for (a, b) in [
            ("0.5", ".5"),
            ("-0.50", "-.5"),
            ("+3.0", "3"),
            ("-0", "0"),
            ("007", "7"),
            ("1e-3", ".001"),
            ("1.5E2", "150"),
            ("12.474", "12.474"),
            ("100", "100"),
            (".0", "0"),
            ("5.", "5"),
        ] {
            assert_eq!(number(a).as_deref(), Some(b), "{a}");
            let (x, y): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(x, y, "{a} -> {b}");
        }
        assert_eq!(number("1.2.3"), None);
        assert_eq!(number("e5"), None);
        assert_eq!(number(""), None);
    }

    #[test]
    fn paths_one_way() {
        assert_eq!(
            path("M8.5 5.5a.5.5 0 0 0-1 0v3.362l-1.429 2.38z").unwrap(),
            "M 8.5 5.5 a .5 .5 0 0 0 -1 0 v 3.362 l -1.429 2.38 z"
        );
        // Compact arc flags, implicit lineto, repeated commands.
        assert_eq!(
            path("M1,2 3,4 5 6a1 1 0 011-1 1 1 0 10.5.5L1 1L2 2").unwrap(),
            "M 1 2 L 3 4 5 6 a 1 1 0 0 1 1 -1 1 1 0 1 0 .5 .5 L 1 1 2 2"
        );
        assert_eq!(path("m0 0zm1 1z").unwrap(), "m 0 0 z m 1 1 z");
        // A second moveto is a moveto, not a repeat.
        assert_eq!(path("M1 2M3 4").unwrap(), "M 1 2 M 3 4");
        for bad in ["M1", "X1 2", "M1 2 z 3", "a1 1 0 2 0 1 1", "1 2"] {
            assert_eq!(path(bad), None, "{bad}");
        }
    }

    #[test]
    fn attributes() {
        let s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"bi bi-x\" viewBox=\"0,0,16,16\" data-id=\"3\"><polygon points=\"0,-5 -5 5,5,5\" stroke-width=\"2.0\" transform=\"translate(8, 8) scale(0.5)\"/></svg>";
        assert_eq!(
            canonicalize(s),
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><polygon points=\"0,-5 -5,5 5,5\" stroke-width=\"2\" transform=\"translate(8 8) scale(.5)\"/></svg>"
        );
        // With a stylesheet, classes may draw.
        let styled = "<svg xmlns=\"http://www.w3.org/2000/svg\"><style>.a{fill:red}</style><rect class=\"a\" width=\"1\" height=\"1\"/></svg>";
        assert_eq!(canonicalize(styled), styled);
        assert!(same_pixels(s, &canonicalize(s)));
    }
}
