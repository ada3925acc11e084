//! Inline SVG line charts, drawn by hand: no script, no network.

use super::esc;

/// One line on a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Stroke colour (CSS).
    pub colour: String,
    /// (x, y) points; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
    /// Also mark every point with a dot (sparse series such as val loss).
    pub dots: bool,
}

const W: f64 = 560.0;
const H: f64 = 260.0;
const ML: f64 = 64.0;
const MR: f64 = 16.0;
const MT: f64 = 30.0;
const MB: f64 = 38.0;
/// At most this many points per drawn line (longer series are thinned).
const MAX_POINTS: usize = 1200;

/// Tick values from `lo` to `hi`: about five at a 1/2/5 × 10^k step.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        return vec![lo];
    }
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut v = Vec::new();
    let mut t = (lo / step).ceil() * step;
    while t <= hi + step * 1e-9 && v.len() < 20 {
        v.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    v
}

pub use crate::metrics::fmt_num;

fn thin(p: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let p: Vec<(f64, f64)> = p
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if p.len() <= MAX_POINTS {
        return p;
    }
    let k = p.len().div_ceil(MAX_POINTS);
    let mut out: Vec<(f64, f64)> = p.iter().step_by(k).copied().collect();
    if let Some(&last) = p.last() {
        if out.last() != Some(&last) {
            out.push(last);
        }
    }
    out
}

/// An SVG line chart with axes, ticks, a legend and the given `id` (for
/// anchors and tests). With no finite point it says "no data".
pub fn line_chart(id: &str, title: &str, x_label: &str, series: &[Series]) -> String {
    let lines: Vec<(&Series, Vec<(f64, f64)>)> =
        series.iter().map(|s| (s, thin(&s.points))).collect();
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let mut s = format!(
        "<svg class=\"chart\" id=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">\n",
        esc(id),
        esc(title)
    );
    s.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>\n<text x=\"{ML}\" y=\"18\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">{}</text>\n",
        esc(title)
    ));
    if all.is_empty() {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#888\" text-anchor=\"middle\">no data</text>\n</svg>\n",
            W / 2.0,
            H / 2.0
        ));
        return s;
    }
    let frame = Frame::around(&all);
    frame.axes(&mut s, x_label);
    frame.lines_and_legend(&mut s, &lines);
    s.push_str("</svg>\n");
    s
}

/// The data ranges a chart's plot area spans.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

/// The plot area's width and height.
const PW: f64 = W - ML - MR;
const PH: f64 = H - MT - MB;

impl Frame {
    /// The ranges of `all` (not empty): a point's range widened to a unit
    /// (or 10%), the y range padded by 5% each side.
    fn around(all: &[(f64, f64)]) -> Frame {
        let fold = |f: fn(f64, f64) -> f64, init: f64, by: fn(&(f64, f64)) -> f64| {
            all.iter().map(by).fold(init, f)
        };
        let (mut x0, mut x1) = (
            fold(f64::min, f64::INFINITY, |p| p.0),
            fold(f64::max, f64::NEG_INFINITY, |p| p.0),
        );
        let (mut y0, mut y1) = (
            fold(f64::min, f64::INFINITY, |p| p.1),
            fold(f64::max, f64::NEG_INFINITY, |p| p.1),
        );
        if x1 <= x0 {
            x0 -= 0.5;
            x1 += 0.5;
        }
        if y1 <= y0 {
            let d = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.1 };
            y0 -= d;
            y1 += d;
        } else {
            let pad = (y1 - y0) * 0.05;
            y0 -= pad;
            y1 += pad;
        }
        Frame { x0, x1, y0, y1 }
    }

    fn sx(&self, x: f64) -> f64 {
        ML + (x - self.x0) / (self.x1 - self.x0) * PW
    }

    fn sy(&self, y: f64) -> f64 {
        MT + (1.0 - (y - self.y0) / (self.y1 - self.y0)) * PH
    }

    /// Grid lines and ticks on both axes, the plot's border and the x label.
    fn axes(&self, s: &mut String, x_label: &str) {
        let (pw, ph) = (PW, PH);
        for t in ticks(self.y0, self.y1) {
            let y = self.sy(t);
            s.push_str(&format!(
                "<line x1=\"{ML}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\" text-anchor=\"end\">{}</text>\n",
                W - MR,
                ML - 6.0,
                y + 4.0,
                esc(&fmt_num(t))
            ));
        }
        for t in ticks(self.x0, self.x1) {
            let x = self.sx(t);
            s.push_str(&format!(
                "<line x1=\"{x:.1}\" y1=\"{MT}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#f3f3f3\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\" text-anchor=\"middle\">{}</text>\n",
                H - MB,
                H - MB + 15.0,
                esc(&fmt_num(t))
            ));
        }
        s.push_str(&format!(
            "<rect x=\"{ML}\" y=\"{MT}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#999\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\" text-anchor=\"middle\">{}</text>\n",
            ML + pw / 2.0,
            H - 6.0,
            esc(x_label)
        ));
    }

    /// Each series' polyline (and dots), and its legend entry, placed right
    /// to left from the top right corner.
    fn lines_and_legend(&self, s: &mut String, lines: &[(&Series, Vec<(f64, f64)>)]) {
        let mut lx = W - MR;
        for (ser, pts) in lines.iter().rev() {
            if pts.is_empty() {
                continue;
            }
            let path: Vec<String> = pts
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", self.sx(x), self.sy(y)))
                .collect();
            s.push_str(&format!(
                "<polyline class=\"series\" data-name=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" points=\"{}\"/>\n",
                esc(&ser.name),
                esc(&ser.colour),
                path.join(" ")
            ));
            if ser.dots || pts.len() == 1 {
                for &(x, y) in pts {
                    s.push_str(&format!(
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>\n",
                        self.sx(x),
                        self.sy(y),
                        esc(&ser.colour)
                    ));
                }
            }
            let tw = 7.0 * ser.name.chars().count() as f64 + 24.0;
            lx -= tw;
            s.push_str(&format!(
                "<line x1=\"{lx:.1}\" y1=\"14\" x2=\"{:.1}\" y2=\"14\" stroke=\"{}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"18\" font-size=\"12\" fill=\"#333\">{}</text>\n",
                lx + 14.0,
                esc(&ser.colour),
                lx + 18.0,
                esc(&ser.name)
            ));
        }
    }
}
