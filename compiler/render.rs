//! One rasterizer for every SVG irc draws or measures: the report's PNGs,
//! the visual metric's masks and the canonicalizer's round-trip check all
//! render through [`rasterize`], so they agree on what a drawing looks like.

/// Render an SVG into at most `size`×`size` RGBA pixels (aspect kept, on
/// white, premultiplied as `tiny_skia` stores them) with `resvg`. `None` when
/// `usvg` cannot parse it or the size is degenerate. External images are
/// never loaded.
pub fn rasterize(text: &str, size: u32) -> Option<tiny_skia::Pixmap> {
    let tree = usvg_tree(text.trim())?;
    let s = tree.size();
    let (w, h) = (s.width() as f64, s.height() as f64);
    if !(w > 0.0 && h > 0.0 && w.is_finite() && h.is_finite()) || size == 0 {
        return None;
    }
    let scale = size as f64 / w.max(h);
    let pw = ((w * scale).round() as u32).clamp(1, size);
    let ph = ((h * scale).round() as u32).clamp(1, size);
    let mut pix = tiny_skia::Pixmap::new(pw, ph)?;
    pix.fill(tiny_skia::Color::WHITE);
    let t = tiny_skia::Transform::from_scale(scale as f32, scale as f32);
    resvg::render(&tree, t, &mut pix.as_mut());
    Some(pix)
}

/// `usvg` options that never touch the file system or the network: image
/// `href`s that are not `data:` URIs resolve to nothing.
pub fn safe_usvg_options() -> usvg::Options<'static> {
    let mut opt = usvg::Options::default();
    opt.image_href_resolver.resolve_string = Box::new(|_, _| None);
    opt
}

/// Parse with `usvg` (safe options); `None` when it fails.
pub fn usvg_tree(text: &str) -> Option<usvg::Tree> {
    usvg::Tree::from_str(text, &safe_usvg_options()).ok()
}
