//! Gallery pieces: SVG sanitizing for inline display, PNG rendering with
//! `resvg`, base64 data URIs.

/// Elements dropped with their whole subtree: anything that runs script,
/// embeds other content, animates attributes (which can rewrite `href`), or
/// carries CSS (an inline `<style>` would restyle the whole report page;
/// the PNG still shows its effect).
pub const DROP_ELEMENTS: [&str; 17] = [
    "script",
    "foreignObject",
    "style",
    "animate",
    "animateMotion",
    "animateTransform",
    "animateColor",
    "set",
    "discard",
    "handler",
    "listener",
    "iframe",
    "object",
    "embed",
    "audio",
    "video",
    "canvas",
];

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

fn esc_attr(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\n' => o.push_str("&#10;"),
            '\t' => o.push_str("&#9;"),
            '\r' => o.push_str("&#13;"),
            c => o.push(c),
        }
    }
    o
}

/// Rewrite `url(#id)` references to `url(#{prefix}id)`; `None` when the
/// value has a `url(` that is not a local `#` reference, or other active
/// content (`javascript:`, `expression(`, `@import`).
fn rewrite_urls(v: &str, prefix: &str) -> Option<String> {
    let low = v.to_ascii_lowercase();
    if low.contains("javascript:") || low.contains("expression(") || low.contains("@import") {
        return None;
    }
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(p) = rest.to_ascii_lowercase().find("url(") {
        out.push_str(&rest[..p + 4]);
        let after = &rest[p + 4..];
        let trimmed = after.trim_start_matches([' ', '"', '\'']);
        let lead = &after[..after.len() - trimmed.len()];
        if !trimmed.starts_with('#') {
            return None;
        }
        out.push_str(lead);
        out.push('#');
        out.push_str(prefix);
        rest = &trimmed[1..];
    }
    out.push_str(rest);
    Some(out)
}

fn num_attr(v: Option<&str>) -> Option<f64> {
    let v = v?.trim();
    let v = v.strip_suffix("px").unwrap_or(v);
    v.parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0)
}

/// Make a generated SVG safe to inline in the report. The text must be
/// well-formed XML with an `svg` root (else `None`: show it as escaped
/// text). The output keeps only SVG-namespace elements, drops the
/// [`DROP_ELEMENTS`] subtrees, comments and processing instructions,
/// attributes named `on*`, `href`/`xlink:href` unless a local `#` reference,
/// attribute values with a non-local `url(...)` or script, and attributes in
/// other namespaces. Ids and local references get `id_prefix` so samples
/// on one page do not clash. The root gets `width`/`height` = `size` (and a
/// `viewBox` from its own width/height when it had none).
pub fn sanitize_svg(text: &str, id_prefix: &str, size: u32) -> Option<String> {
    let doc = roxmltree::Document::parse(text.trim()).ok()?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg" {
        return None;
    }
    let mut out = String::new();
    write_node(root, id_prefix, size, true, &mut out);
    Some(out)
}

fn write_node(n: roxmltree::Node, prefix: &str, size: u32, is_root: bool, out: &mut String) {
    if n.is_text() {
        out.push_str(&esc_attr(n.text().unwrap_or("")));
        return;
    }
    if !n.is_element() {
        return;
    }
    let name = n.tag_name().name();
    match n.tag_name().namespace() {
        None | Some(SVG_NS) => {}
        Some(_) => return,
    }
    if DROP_ELEMENTS.iter().any(|d| d.eq_ignore_ascii_case(name)) {
        return;
    }
    out.push('<');
    out.push_str(name);
    if is_root {
        out.push_str(&format!(
            " xmlns=\"{SVG_NS}\" width=\"{size}\" height=\"{size}\" class=\"gen\""
        ));
        if n.attribute("viewBox").is_none() {
            if let (Some(w), Some(h)) = (
                num_attr(n.attribute("width")),
                num_attr(n.attribute("height")),
            ) {
                out.push_str(&format!(" viewBox=\"0 0 {w} {h}\""));
            }
        }
    }
    for a in n.attributes() {
        let an = a.name();
        let ns = a.namespace();
        let v = a.value();
        if an.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("on")) {
            continue;
        }
        if is_root && matches!(an, "width" | "height" | "class") && ns.is_none() {
            continue;
        }
        let out_name = match (ns, an) {
            (None, "href") | (Some(XLINK_NS), "href") => {
                if let Some(id) = v.trim().strip_prefix('#') {
                    out.push_str(&format!(
                        " href=\"#{}\"",
                        esc_attr(&format!("{prefix}{id}"))
                    ));
                }
                continue;
            }
            (None, "id") => {
                out.push_str(&format!(" id=\"{}\"", esc_attr(&format!("{prefix}{v}"))));
                continue;
            }
            (None, _) => an.to_string(),
            (Some(XML_NS), _) => format!("xml:{an}"),
            _ => continue,
        };
        if let Some(v) = rewrite_urls(v, prefix) {
            out.push_str(&format!(" {out_name}=\"{}\"", esc_attr(&v)));
        }
    }
    let kids: Vec<_> = n.children().collect();
    if kids.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for k in kids {
        write_node(k, prefix, size, false, out);
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Render an SVG to a PNG of at most `size`×`size` pixels (see
/// [`crate::render::rasterize`]).
pub fn render_png(text: &str, size: u32) -> Option<Vec<u8>> {
    crate::render::rasterize(text, size)?.encode_png().ok()
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        o.push(A[(n >> 18) as usize & 63] as char);
        o.push(A[(n >> 12) as usize & 63] as char);
        o.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        o.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    o
}

/// `data:image/png;base64,...` for [`render_png`], or `None`.
pub fn png_data_uri(text: &str, size: u32) -> Option<String> {
    render_png(text, size).map(|p| format!("data:image/png;base64,{}", base64(&p)))
}
