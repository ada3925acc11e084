//! A seeded synthetic prompt → SVG set of simple scenes whose prompts state
//! checkable attributes.
//!
//! Attribute vocabulary (one tag each, always in this order):
//!
//! | attribute | tags | in the SVG |
//! |---|---|---|
//! | shape | `[circle]` `[square]` `[triangle]` | `<circle>`, `<rect>` (width = height), `<polygon>` with 3 points (`0,-h -h,h h,h` placed by `transform="translate(cx cy)"`) |
//! | colour | `[red]` `[green]` `[blue]` `[yellow]` `[purple]` `[orange]` | `fill` = [`COLOURS`] hex |
//! | count | `[1]` `[2]` `[3]` | that many shapes, all of the same kind and colour |
//! | position | `[top]` `[middle]` `[bottom]` | shape centres in y ∈ [8,24), [24,40), [40,56) |
//! | size | `[small]` `[large]` | circle radius / half side / triangle half width 4–6 (small) or 8–10 (large) |
//!
//! Canvas: `viewBox="0 0 64 64"`, shapes in a row left to right, centre x at
//! `64·(i+1)/(count+1)` ± 2. A row is the prompt (e.g.
//! `[circle][red][2][top][small]`) and the SVG; [`parse_prompt`] reads a
//! prompt back and [`Scene::check`] tests an SVG against it.
//!
//! Every attribute is written as its own number: a circle's `cx cy r`, a
//! square's `x y width`, a triangle's `translate(cx cy)` and `h`. (Drawn
//! with absolute points, `cx,cy-h cx-h,cy+h cx+h,cy+h`, a triangle's size
//! is only in the difference of two coordinates: a model must do two-digit
//! arithmetic to get it right, and the prompt→SVG check then measures that
//! rather than whether the drawing follows the prompt.) [`Scene::check`]
//! reads any polygon, with or without a `translate`/`scale` transform.

use super::Row;
use crate::util::Rng;

/// Shape kinds.
pub const SHAPES: [&str; 3] = ["circle", "square", "triangle"];
/// Colour names and the fill they map to.
pub const COLOURS: [(&str, &str); 6] = [
    ("red", "#e53935"),
    ("green", "#43a047"),
    ("blue", "#1e88e5"),
    ("yellow", "#fdd835"),
    ("purple", "#8e24aa"),
    ("orange", "#fb8c00"),
];
/// Vertical bands.
pub const POSITIONS: [&str; 3] = ["top", "middle", "bottom"];
/// Sizes.
pub const SIZES: [&str; 2] = ["small", "large"];

/// Attribute pairs no training scene has: every scene with one of them is
/// held out, so the validation set asks for combinations never seen (each
/// attribute alone is trained on). (shape, colour) pairs by name.
pub const UNSEEN_SHAPE_COLOUR: [(&str, &str); 1] = [("triangle", "purple")];
/// (count, position) pairs held out the same way.
pub const UNSEEN_COUNT_POSITION: [(usize, &str); 1] = [(3, "top")];

/// Every tag the generator uses (handy as tokenizer special tokens).
pub fn tags() -> Vec<String> {
    let mut v: Vec<String> = SHAPES.iter().map(|s| format!("[{s}]")).collect();
    v.extend(COLOURS.iter().map(|(c, _)| format!("[{c}]")));
    v.extend((1..=3).map(|n| format!("[{n}]")));
    v.extend(POSITIONS.iter().map(|p| format!("[{p}]")));
    v.extend(SIZES.iter().map(|s| format!("[{s}]")));
    v
}

/// The attributes a prompt states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    /// Index into [`SHAPES`].
    pub shape: usize,
    /// Index into [`COLOURS`].
    pub colour: usize,
    /// 1..=3.
    pub count: usize,
    /// Index into [`POSITIONS`].
    pub position: usize,
    /// Index into [`SIZES`].
    pub size: usize,
}

impl Scene {
    /// The prompt text, e.g. `[circle][red][2][top][small]`.
    pub fn prompt(&self) -> String {
        format!(
            "[{}][{}][{}][{}][{}]",
            SHAPES[self.shape],
            COLOURS[self.colour].0,
            self.count,
            POSITIONS[self.position],
            SIZES[self.size]
        )
    }

    /// Whether the scene holds an attribute pair no training scene has
    /// ([`UNSEEN_SHAPE_COLOUR`], [`UNSEEN_COUNT_POSITION`]).
    pub fn unseen_combination(&self) -> bool {
        let sc = (SHAPES[self.shape], COLOURS[self.colour].0);
        let cp = (self.count, POSITIONS[self.position]);
        UNSEEN_SHAPE_COLOUR.contains(&sc) || UNSEEN_COUNT_POSITION.contains(&cp)
    }

    /// Check an SVG against the scene: shape elements, count, fill, vertical
    /// band and size. Returns the list of mismatches (empty: it matches).
    pub fn check(&self, svg: &str) -> Vec<String> {
        let doc = match roxmltree::Document::parse(svg) {
            Ok(d) => d,
            Err(e) => return vec![format!("not XML: {e}")],
        };
        let tag = match self.shape {
            0 => "circle",
            1 => "rect",
            _ => "polygon",
        };
        let shapes: Vec<_> = doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() != "svg")
            .collect();
        let mut bad = Vec::new();
        if shapes.len() != self.count {
            bad.push(format!("{} shapes, expected {}", shapes.len(), self.count));
        }
        let (lo, hi) = [(8.0, 24.0), (24.0, 40.0), (40.0, 56.0)][self.position];
        let (smin, smax) = if self.size == 0 {
            (4.0, 6.0)
        } else {
            (8.0, 10.0)
        };
        let num = |n: &roxmltree::Node, a: &str| n.attribute(a).and_then(|v| v.parse::<f64>().ok());
        for (i, n) in shapes.iter().enumerate() {
            if n.tag_name().name() != tag {
                bad.push(format!(
                    "shape {i} is <{}>, expected <{tag}>",
                    n.tag_name().name()
                ));
                continue;
            }
            if n.attribute("fill") != Some(COLOURS[self.colour].1) {
                bad.push(format!(
                    "shape {i} fill {:?}, expected {}",
                    n.attribute("fill"),
                    COLOURS[self.colour].1
                ));
            }
            let (cy, half) = match self.shape {
                0 => (num(n, "cy"), num(n, "r")),
                1 => match (num(n, "y"), num(n, "width"), num(n, "height")) {
                    (Some(y), Some(w), Some(h)) if w == h => (Some(y + h / 2.0), Some(w / 2.0)),
                    _ => (None, None),
                },
                _ => {
                    let pts: Vec<f64> = n
                        .attribute("points")
                        .unwrap_or("")
                        .split([' ', ','])
                        .filter_map(|p| p.parse().ok())
                        .collect();
                    if pts.len() == 6 {
                        let ys = [pts[1], pts[3], pts[5]];
                        let xs = [pts[0], pts[2], pts[4]];
                        let (ymin, ymax) = (
                            ys.iter().cloned().fold(f64::MAX, f64::min),
                            ys.iter().cloned().fold(f64::MIN, f64::max),
                        );
                        let (xmin, xmax) = (
                            xs.iter().cloned().fold(f64::MAX, f64::min),
                            xs.iter().cloned().fold(f64::MIN, f64::max),
                        );
                        (Some((ymin + ymax) / 2.0), Some((xmax - xmin) / 2.0))
                    } else {
                        (None, None)
                    }
                }
            };
            // The element's own geometry, then its transform.
            let placed = match transform(n.attribute("transform").unwrap_or("")) {
                Some((_, ty, k)) => (cy.map(|c| ty + k * c), half.map(|h| k * h)),
                None => (None, None),
            };
            match placed {
                (Some(cy), Some(h)) => {
                    if !(lo..hi).contains(&cy) {
                        bad.push(format!(
                            "shape {i} centre y {cy} is not {}",
                            POSITIONS[self.position]
                        ));
                    }
                    if !(smin..=smax).contains(&h) {
                        bad.push(format!("shape {i} size {h} is not {}", SIZES[self.size]));
                    }
                }
                _ => bad.push(format!("shape {i} has unreadable geometry")),
            }
        }
        bad
    }
}

/// A `transform` made of `translate(tx[ ,]ty)` and `scale(k)` (either,
/// both in that order, or none) as (tx, ty, k); `None` for anything else
/// (a rotation, a skew, a non-uniform scale, a parse error).
pub fn transform(t: &str) -> Option<(f64, f64, f64)> {
    let (mut tx, mut ty, mut k) = (0.0, 0.0, 1.0);
    let mut rest = t.trim();
    let mut seen_scale = false;
    while !rest.is_empty() {
        let open = rest.find('(')?;
        let close = rest.find(')')?;
        let name = rest[..open].trim();
        let args: Vec<f64> = rest[open + 1..close]
            .split([' ', ','])
            .filter(|a| !a.is_empty())
            .map(|a| a.parse().ok())
            .collect::<Option<_>>()?;
        match (name, args.as_slice()) {
            ("translate", [x]) if !seen_scale => tx += x,
            ("translate", [x, y]) if !seen_scale => {
                tx += x;
                ty += y;
            }
            ("scale", [s]) => {
                k *= s;
                seen_scale = true;
            }
            _ => return None,
        }
        rest = rest[close + 1..].trim_start_matches([' ', ',']);
    }
    Some((tx, ty, k))
}

/// Parse a prompt made of the five tags back into a [`Scene`].
pub fn parse_prompt(p: &str) -> Result<Scene, String> {
    let tags: Vec<&str> = p
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| format!("prompt `{p}` is not a list of [tags]"))?
        .split("][")
        .collect();
    if tags.len() != 5 {
        return Err(format!("prompt `{p}` has {} tags, expected 5", tags.len()));
    }
    let find = |list: &[&str], t: &str, what: &str| {
        list.iter()
            .position(|x| *x == t)
            .ok_or_else(|| format!("unknown {what} `{t}`"))
    };
    let colours: Vec<&str> = COLOURS.iter().map(|c| c.0).collect();
    let count: usize = tags[2]
        .parse()
        .map_err(|_| format!("count `{}` is not 1, 2 or 3", tags[2]))?;
    if !(1..=3).contains(&count) {
        return Err(format!("count `{count}` is not 1, 2 or 3"));
    }
    Ok(Scene {
        shape: find(&SHAPES, tags[0], "shape")?,
        colour: find(&colours, tags[1], "colour")?,
        count,
        position: find(&POSITIONS, tags[3], "position")?,
        size: find(&SIZES, tags[4], "size")?,
    })
}

/// Draw one scene's SVG.
pub fn render(s: &Scene, rng: &mut Rng) -> String {
    let fill = COLOURS[s.colour].1;
    let band = [16i64, 32, 48][s.position];
    let mut out = String::from("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 64\">");
    for i in 0..s.count {
        let cx = 64 * (i as i64 + 1) / (s.count as i64 + 1) + rng.below(5) as i64 - 2;
        let cy = band + rng.below(5) as i64 - 2;
        let h = if s.size == 0 { 4 } else { 8 } + rng.below(3) as i64;
        out.push_str(&match s.shape {
            0 => format!("<circle cx=\"{cx}\" cy=\"{cy}\" r=\"{h}\" fill=\"{fill}\"/>"),
            1 => format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"/>",
                cx - h,
                cy - h,
                2 * h,
                2 * h
            ),
            _ => format!(
                "<polygon points=\"0,-{h} -{h},{h} {h},{h}\" transform=\"translate({cx} {cy})\" fill=\"{fill}\"/>"
            ),
        });
    }
    out.push_str("</svg>");
    out
}

/// `n` random scenes from `seed` as prompt + SVG rows.
pub fn generate(n: usize, seed: u64) -> Vec<Row> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let s = Scene {
                shape: rng.below(SHAPES.len() as u64) as usize,
                colour: rng.below(COLOURS.len() as u64) as usize,
                count: 1 + rng.below(3) as usize,
                position: rng.below(POSITIONS.len() as u64) as usize,
                size: rng.below(SIZES.len() as u64) as usize,
            };
            let text = render(&s, &mut rng);
            Row {
                prompt: Some(s.prompt()),
                text,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_rows_check_against_their_prompts() {
        for r in generate(300, 7) {
            let s = parse_prompt(r.prompt.as_deref().unwrap()).unwrap();
            assert_eq!(s.prompt(), r.prompt.clone().unwrap());
            assert!(
                s.check(&r.text).is_empty(),
                "{:?} {:?}",
                r,
                s.check(&r.text)
            );
            super::super::svg::check(&r.text).unwrap();
        }
        let s = parse_prompt("[circle][red][2][top][small]").unwrap();
        assert!(!s
            .check("<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>")
            .is_empty());
        assert!(parse_prompt("[hexagon][red][2][top][small]").is_err());
    }

    #[test]
    fn triangles_are_read_with_or_without_a_transform() {
        let s = parse_prompt("[triangle][red][1][top][small]").unwrap();
        let svg = |p: &str| format!("<svg xmlns=\"http://www.w3.org/2000/svg\">{p}</svg>");
        let ok = [
            "<polygon points=\"0,-1 -1,1 1,1\" transform=\"translate(32 16) scale(5)\" fill=\"#e53935\"/>",
            "<polygon points=\"0,-1 -1,1 1,1\" transform=\"translate(32,16),scale(4)\" fill=\"#e53935\"/>",
            "<polygon points=\"32,11 27,21 37,21\" fill=\"#e53935\"/>",
        ];
        for p in ok {
            assert_eq!(s.check(&svg(p)), Vec::<String>::new(), "{p}");
        }
        let bad = [
            // Too large, too low, rotated.
            "<polygon points=\"0,-1 -1,1 1,1\" transform=\"translate(32 16) scale(9)\" fill=\"#e53935\"/>",
            "<polygon points=\"0,-1 -1,1 1,1\" transform=\"translate(32 30) scale(5)\" fill=\"#e53935\"/>",
            "<polygon points=\"0,-1 -1,1 1,1\" transform=\"rotate(10)\" fill=\"#e53935\"/>",
        ];
        for p in bad {
            assert!(!s.check(&svg(p)).is_empty(), "{p}");
        }
        assert_eq!(transform(""), Some((0.0, 0.0, 1.0)));
        assert_eq!(transform("translate(3)"), Some((3.0, 0.0, 1.0)));
        assert_eq!(transform("scale(2) translate(1 1)"), None);
        assert_eq!(transform("scale(2 3)"), None);
    }
}
