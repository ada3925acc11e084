//! SVG whitespace normalization and the well-formedness gate.
//!
//! [`normalize`] only changes what XML and SVG say carries no meaning:
//! * the XML declaration and comments are dropped;
//! * inside a tag, runs of whitespace between attributes become one space,
//!   and whitespace before `>` / `/>` and around `=` is removed;
//! * in attribute values, tab/CR/LF become spaces (what an XML parser does
//!   anyway) and, for the list-valued geometry attributes (`d`, `points`,
//!   `viewBox`, `transform`, `class`), runs of spaces collapse and ends trim;
//! * text that is only whitespace between elements is removed, except inside
//!   `text`, `tspan`, `textPath`, `style`, `script`, `title`, `desc` or under
//!   `xml:space="preserve"`; other text is kept as is.
//!
//! [`normalize`] re-parses its output and compares element names, attributes
//! and non-blank text with the input, so a change of meaning is caught as an
//! error rather than written.

/// Parse as XML with `roxmltree`; the root element must be `svg`.
pub fn check(s: &str) -> Result<(), String> {
    let doc = roxmltree::Document::parse(s).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg" {
        return Err(format!(
            "root element is <{}>, not <svg>",
            root.tag_name().name()
        ));
    }
    Ok(())
}

const LIST_ATTRS: [&str; 5] = ["d", "points", "viewBox", "transform", "class"];
const KEEP_TEXT: [&str; 7] = [
    "text", "tspan", "textPath", "style", "script", "title", "desc",
];

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Normalize whitespace (see the module doc). The input must be well-formed
/// (call [`check`] first); the output is checked to mean the same.
pub fn normalize(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    // Stack of "keep whitespace text" flags for open elements.
    let mut keep: Vec<bool> = Vec::new();
    while i < b.len() {
        if b[i] == b'<' {
            if s[i..].starts_with("<!--") {
                let end = s[i..].find("-->").ok_or("unterminated comment")?;
                i += end + 3;
            } else if s[i..].starts_with("<?") {
                let end = s[i..]
                    .find("?>")
                    .ok_or("unterminated processing instruction")?;
                if !s[i..].starts_with("<?xml ") && !s[i..].starts_with("<?xml?") {
                    out.push_str(&s[i..i + end + 2]);
                }
                i += end + 2;
            } else if s[i..].starts_with("<![CDATA[") {
                let end = s[i..].find("]]>").ok_or("unterminated CDATA")?;
                out.push_str(&s[i..i + end + 3]);
                i += end + 3;
            } else if s[i..].starts_with("<!") {
                let end = s[i..].find('>').ok_or("unterminated declaration")?;
                out.push_str(&s[i..i + end + 1]);
                i += end + 1;
            } else {
                i = tag(s, i, &mut out, &mut keep)?;
            }
        } else {
            let end = s[i..].find('<').map_or(s.len(), |e| i + e);
            let text = &s[i..end];
            let blank = text.bytes().all(is_ws);
            if !blank || keep.last().copied().unwrap_or(false) {
                out.push_str(text);
            }
            i = end;
        }
    }
    let out = out.trim().to_string();
    same_meaning(s, &out)?;
    Ok(out)
}

/// Copy one start or end tag starting at `i`, normalized; returns the index after it.
fn tag(s: &str, mut i: usize, out: &mut String, keep: &mut Vec<bool>) -> Result<usize, String> {
    let b = s.as_bytes();
    let closing = b.get(i + 1) == Some(&b'/');
    out.push('<');
    i += 1;
    if closing {
        out.push('/');
        i += 1;
    }
    let name_start = i;
    while i < b.len() && !is_ws(b[i]) && b[i] != b'>' && b[i] != b'/' {
        i += 1;
    }
    let name = &s[name_start..i];
    out.push_str(name);
    let mut preserve = None;
    loop {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        match b.get(i) {
            None => return Err("unterminated tag".into()),
            Some(b'>') => {
                out.push('>');
                if closing {
                    keep.pop();
                } else {
                    let parent = keep.last().copied().unwrap_or(false);
                    keep.push(preserve.unwrap_or(parent) || KEEP_TEXT.contains(&local(name)));
                }
                return Ok(i + 1);
            }
            Some(b'/') if b.get(i + 1) == Some(&b'>') => {
                out.push_str("/>");
                return Ok(i + 2);
            }
            Some(_) => {
                let a0 = i;
                while i < b.len() && !is_ws(b[i]) && b[i] != b'=' && b[i] != b'>' && b[i] != b'/' {
                    i += 1;
                }
                let attr = &s[a0..i];
                while i < b.len() && is_ws(b[i]) {
                    i += 1;
                }
                if b.get(i) != Some(&b'=') {
                    return Err(format!("attribute `{attr}` has no value"));
                }
                i += 1;
                while i < b.len() && is_ws(b[i]) {
                    i += 1;
                }
                let q = *b.get(i).ok_or("unterminated tag")?;
                if q != b'"' && q != b'\'' {
                    return Err(format!("attribute `{attr}` value is not quoted"));
                }
                let v0 = i + 1;
                let v1 = s[v0..]
                    .find(q as char)
                    .ok_or("unterminated attribute value")?
                    + v0;
                let raw = &s[v0..v1];
                let val: String = raw
                    .chars()
                    .map(|c| {
                        if matches!(c, '\t' | '\n' | '\r') {
                            ' '
                        } else {
                            c
                        }
                    })
                    .collect();
                let val = if LIST_ATTRS.contains(&attr) {
                    val.split(' ')
                        .filter(|p| !p.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    val
                };
                if attr == "xml:space" {
                    preserve = Some(val == "preserve");
                }
                out.push(' ');
                out.push_str(attr);
                out.push('=');
                out.push(q as char);
                out.push_str(&val);
                out.push(q as char);
                i = v1 + 1;
            }
        }
    }
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Element names, attributes (whitespace-collapsed) and non-blank text, in order.
fn canon(s: &str) -> Result<Vec<String>, String> {
    let doc = roxmltree::Document::parse(s).map_err(|e| e.to_string())?;
    let mut v = Vec::new();
    for n in doc.descendants() {
        if n.is_element() {
            v.push(format!("<{:?}", n.tag_name()));
            for a in n.attributes() {
                let val: Vec<&str> = a.value().split_whitespace().collect();
                v.push(format!(
                    "@{:?}={}",
                    a.namespace().unwrap_or("").to_string() + a.name(),
                    val.join(" ")
                ));
            }
        } else if n.is_text() {
            let t = n.text().unwrap_or("");
            if !t.trim().is_empty() {
                v.push(format!("#{t}"));
            }
        }
    }
    Ok(v)
}

fn same_meaning(a: &str, b: &str) -> Result<(), String> {
    let (ca, cb) = (
        canon(a)?,
        canon(b).map_err(|e| format!("normalized SVG does not parse: {e}"))?,
    );
    if ca != cb {
        return Err("whitespace normalization would change the SVG (kept out)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_safely() {
        let s = "<?xml version=\"1.0\"?>\n<!-- c -->\n<svg\n  xmlns=\"http://www.w3.org/2000/svg\"\n  viewBox=\"0  0 24 24\" >\n  <path d=\"M5 12l14\n 0\" />\n  <text x = \"1\">  a  b </text>\n</svg>\n";
        let n = normalize(s).unwrap();
        assert_eq!(
            n,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 24 24\"><path d=\"M5 12l14 0\"/><text x=\"1\">  a  b </text></svg>"
        );
        check(&n).unwrap();
    }

    #[test]
    fn rejects_malformed() {
        assert!(check("<svg><path></svg>").is_err());
        assert!(check("<html/>").is_err());
        assert!(check("<svg xmlns=\"http://www.w3.org/2000/svg\"/>").is_ok());
    }
}
