//! `irc inspect --html`: the IR drawn as a layered graph in one self-contained
//! page (inline SVG, no scripts from anywhere), nodes coloured by the kernel
//! that computes them, with the kernel list and memory plan beside it.

use crate::error::Result;
use crate::report::esc;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write;

/// Box width and height, and the horizontal and vertical gaps between boxes.
const BW: f64 = 170.0;
const BH: f64 = 38.0;
const GX: f64 = 24.0;
const GY: f64 = 34.0;

pub fn graph_page(info: &Value) -> Result<String> {
    let empty = vec![];
    let nodes = info["graph"]["nodes"].as_array().unwrap_or(&empty);
    let kernels = info["kernels"].as_array().unwrap_or(&empty);
    // Leaves (parameters, inputs) are listed, not drawn: they would bury the graph.
    let drawn: Vec<&Value> = nodes
        .iter()
        .filter(|n| !matches!(n["op"]["op"].as_str(), Some("param") | Some("input")))
        .collect();
    let svg = graph_svg(&drawn, kernels);
    let m = &info["model"];
    let text = |k: &str| esc(info["text"][k].as_str().unwrap_or(""));
    let params = param_rows(info);
    Ok(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>irc: {name}</title>
<style>body{{font-family:sans-serif;margin:20px;color:#222}} pre{{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:12px}}
.graph{{overflow:auto;border:1px solid #ddd;max-height:85vh}} table{{border-collapse:collapse;font-size:12px}} td{{border:1px solid #ddd;padding:2px 6px;font-family:monospace}}</style></head>
<body><h1>irc: {name}</h1>
<p>{family}, {layers} layers, d_model {d}, {heads} heads, vocab {vocab}; program batch {b} × seq {t}; target <b>{target}</b>.
Boxes are ops (hover for shape and kernel); colour = kernel (fusion group); parameters and inputs are listed below.</p>
<div class="graph">{svg}</div>
<h2>Kernels</h2><pre>{fusion}</pre>
<h2>Schedule</h2><pre>{schedule}</pre>
<h2>Memory plan</h2><pre>{memory}</pre>
<h2>Parameters</h2><table><tr><td>name</td><td>shape</td><td>offset</td></tr>
{params}</table>
</body></html>
"#,
        name = esc(m["name"].as_str().unwrap_or("")),
        family = esc(m["family"].as_str().unwrap_or("")),
        layers = m["layers"],
        d = m["d_model"],
        heads = m["heads"],
        vocab = m["vocab_size"],
        b = info["program"]["batch"],
        t = info["program"]["seq"],
        target = esc(info["target"].as_str().unwrap_or("")),
        fusion = text("fusion"),
        schedule = text("schedule"),
        memory = text("memory"),
    ))
}

fn id_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn inputs_of(n: &Value) -> &[Value] {
    n["inputs"].as_array().map_or(&[], Vec::as_slice)
}

/// Where each drawn node's box sits: one row per depth (longest path from a
/// leaf), each row centred; and the size of the whole drawing.
struct Layout {
    pos: HashMap<u64, (f64, f64)>,
    width: f64,
    height: f64,
}

impl Layout {
    fn of(drawn: &[&Value]) -> Layout {
        let mut depth: HashMap<u64, usize> = HashMap::new();
        let mut rows: Vec<Vec<&Value>> = vec![];
        for &n in drawn {
            let d = inputs_of(n)
                .iter()
                .filter_map(|i| depth.get(&id_of(i)))
                .map(|d| d + 1)
                .max()
                .unwrap_or(0);
            depth.insert(id_of(&n["id"]), d);
            if rows.len() <= d {
                rows.resize(d + 1, vec![]);
            }
            rows[d].push(n);
        }
        let widest = rows.iter().map(|r| r.len()).max().unwrap_or(1) as f64;
        let width = widest * (BW + GX) + GX;
        let height = rows.len() as f64 * (BH + GY) + GY;
        let mut pos: HashMap<u64, (f64, f64)> = HashMap::new();
        for (d, row) in rows.iter().enumerate() {
            let off = (width - row.len() as f64 * (BW + GX) + GX) / 2.0;
            for (i, n) in row.iter().enumerate() {
                pos.insert(
                    id_of(&n["id"]),
                    (off + i as f64 * (BW + GX), GY + d as f64 * (BH + GY)),
                );
            }
        }
        Layout { pos, width, height }
    }
}

/// The drawn nodes as an inline SVG: an arrow from each drawn input, then
/// the boxes, coloured by kernel.
fn graph_svg(drawn: &[&Value], kernels: &[Value]) -> String {
    let mut kernel_of: HashMap<u64, usize> = HashMap::new();
    for (k, kern) in kernels.iter().enumerate() {
        for n in kern["node_ids"].as_array().map_or(&[][..], Vec::as_slice) {
            kernel_of.insert(id_of(n), k);
        }
    }
    let Layout { pos, width, height } = Layout::of(drawn);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">"#
    );
    svg.push_str(r##"<defs><marker id="a" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#888"/></marker></defs>"##);
    for &n in drawn {
        let (x, y) = pos[&id_of(&n["id"])];
        for i in inputs_of(n) {
            if let Some(&(sx, sy)) = pos.get(&id_of(i)) {
                let _ = write!(
                    svg,
                    r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" marker-end="url(#a)"/>"##,
                    sx + BW / 2.0,
                    sy + BH,
                    x + BW / 2.0,
                    y
                );
            }
        }
    }
    for &n in drawn {
        let id = id_of(&n["id"]);
        node_box(&mut svg, n, pos[&id], kernel_of.get(&id).copied(), kernels);
    }
    svg.push_str("</svg>");
    svg
}

/// One node's box at `(x, y)`: op and kernel `k` (none for a view) on the
/// first line, name on the second, the rest in the hover title.
fn node_box(svg: &mut String, n: &Value, (x, y): (f64, f64), k: Option<usize>, kernels: &[Value]) {
    let id = id_of(&n["id"]);
    let fill = match k {
        Some(k) => format!("hsl({}, 65%, 82%)", (k * 47) % 360),
        None => "#eee".to_string(),
    };
    let op = n["op"]["op"].as_str().unwrap_or("?");
    let name = n["name"].as_str().unwrap_or("");
    let ty = &n["type"];
    let tip = format!(
        "%{id} {op} {name}\nshape {} {}\nkernel {}",
        ty["shape"],
        ty["dtype"].as_str().unwrap_or(""),
        k.map(|k| format!("k{k} {}", kernels[k]["kind"].as_str().unwrap_or("")))
            .unwrap_or("- (view)".into())
    );
    let _ = write!(
        svg,
        r##"<g><title>{}</title><rect x="{x:.1}" y="{y:.1}" width="{BW}" height="{BH}" rx="5" fill="{fill}" stroke="#555"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"##,
        esc(&tip),
        x + BW / 2.0,
        y + 15.0,
        esc(&format!(
            "{op}{}",
            k.map(|k| format!("  k{k}")).unwrap_or_default()
        )),
        x + BW / 2.0,
        y + 30.0,
        esc(&name.chars().take(26).collect::<String>())
    );
}

/// The memory plan's parameters as table rows: name, shape, offset.
fn param_rows(info: &Value) -> String {
    let mut params = String::new();
    for p in info["memory"]["params"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
    {
        let _ = writeln!(
            params,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(p["name"].as_str().unwrap_or("")),
            p["shape"],
            p["offset"]
        );
    }
    params
}
