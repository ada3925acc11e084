//! No import cycles between the compiler's modules: a module that imports
//! another which imports it back means a type lives in the wrong place.
//!
//! Reads `compiler/**/*.rs`, collects every `crate::` path (in `use` lines,
//! `use crate::{a, b::c}` groups and inline paths; comments skipped), and
//! builds the graph of top-level modules. Run with `--nocapture` to see it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level module a source file belongs to (`lib.rs` and `main.rs`
/// are the crate root, not a module).
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file with `//` comments (doc comments included) removed.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string (a URL) is rare in this code base; a
            // line whose code starts with a comment is dropped whole.
            Some(i) if l[..i].trim().is_empty() => "",
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules named right after `crate::`, including every first name of
/// a `crate::{...}` group.
fn imports(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: split at commas outside braces.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        out.insert(ident(&group[j..]));
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| modules.contains(m));
    out
}

/// The groups of modules that import each other, directly or round about
/// (the strongly connected components of more than one module), each
/// listed with its edges.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for n in graph.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in graph.keys() {
        if done.contains(m) || !reached[m].contains(m) {
            continue;
        }
        let group: BTreeSet<&String> = reached[m]
            .iter()
            .filter(|n| reached.get(n).is_some_and(|r| r.contains(m)))
            .filter_map(|n| graph.get_key_value(n).map(|(k, _)| k))
            .collect();
        let edges: Vec<String> = group
            .iter()
            .flat_map(|a| {
                graph[*a]
                    .iter()
                    .filter(|b| group.contains(b))
                    .map(move |b| format!("{a} -> {b}"))
            })
            .collect();
        done.extend(group.iter().map(|s| (*s).clone()));
        out.push(edges.join(", "));
    }
    out
}

#[test]
fn no_import_cycles_between_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(f.strip_prefix(&root).unwrap()))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(f.strip_prefix(&root).unwrap()) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        let deps = graph.entry(m.clone()).or_default();
        deps.extend(imports(&code(&text), &modules));
        deps.remove(&m);
    }
    println!("{} modules; module -> the modules it imports:", graph.len());
    for (m, deps) in &graph {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("  {m:<10} -> {}", deps.join(", "));
    }
    let found = cycles(&graph);
    println!("{} import cycles", found.len());
    assert!(
        found.is_empty(),
        "{} import cycles between modules:\n  {}",
        found.len(),
        found.join("\n  ")
    );
}

#[test]
fn groups_and_inline_paths_are_read() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
    let src = "use crate::{a::X, b::{Y, Z}};\nfn f() { crate::c::g(); }\n// crate::d::h\n";
    let got = imports(&code(src), &modules);
    assert_eq!(got, ["a", "b", "c"].map(String::from).into());
}

#[test]
fn a_cycle_is_reported_with_its_edges() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a", "d"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(m, d)| (m.to_string(), d.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&graph), ["a -> b, b -> c, c -> a"]);
}

/// Templates lay out code; every choice between variants is made in Rust
/// (codegen picks the template, or gives it the parts), so no template holds
/// an `{% if %}` or `{% elif %}`.
#[test]
fn templates_hold_no_conditionals() {
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")];
    let mut found = vec![];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                let squeezed: String = line.chars().filter(|c| !c.is_whitespace()).collect();
                if ["{%if", "{%-if", "{%elif", "{%-elif"]
                    .iter()
                    .any(|t| squeezed.contains(t))
                {
                    found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "templates with conditionals:\n{}",
        found.join("\n")
    );
}
