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
    if !within_raster_range(&tree, scale) {
        return None;
    }
    let mut pix = tiny_skia::Pixmap::new(pw, ph)?;
    pix.fill(tiny_skia::Color::WHITE);
    let t = tiny_skia::Transform::from_scale(scale as f32, scale as f32);
    // tiny-skia asserts on geometry its fixed-point edges cannot hold: the
    // range check above keeps such drawings out; this catches any other
    // assertion it unwinds from (one that panics again while unwinding
    // aborts, hence the check).
    let drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        resvg::render(&tree, t, &mut pix.as_mut())
    }));
    drawn.ok().map(|_| pix)
}

/// Farthest a drawing may reach from the origin, in output pixels: far past
/// any real icon, well inside what tiny-skia's fixed-point rasterizer holds
/// (a path at 1e31 trips its edge assertions: found by fuzzing ingest).
const MAX_EXTENT_PX: f64 = 1e6;

/// Whether everything drawn (strokes included) lies within
/// [`MAX_EXTENT_PX`] once scaled.
fn within_raster_range(tree: &usvg::Tree, scale: f64) -> bool {
    let b = tree.root().abs_stroke_bounding_box();
    [b.left(), b.top(), b.right(), b.bottom()]
        .iter()
        .all(|&c| c.is_finite() && (c as f64 * scale).abs() <= MAX_EXTENT_PX)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn path_at(far: &str) -> String {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M1 1L15 15M3 {far}h-1v2z" stroke="#000"/></svg>"##
        )
    }

    #[test]
    fn far_geometry_is_not_rendered_instead_of_tripping_the_rasterizer() {
        assert!(rasterize(&path_at("3"), 64).is_some());
        assert!(rasterize(&path_at("-2000"), 64).is_some());
        for far in [
            "-1e6",
            "-1e9",
            "-11111111111111111111111111111115.5",
            "3e38",
        ] {
            let tree = usvg_tree(&path_at(far)).unwrap();
            assert!(!within_raster_range(&tree, 4.0), "{far}");
            assert!(rasterize(&path_at(far), 64).is_none(), "{far}");
        }
    }
}
