//! Canonical SVG (numbers and path data written one way) keeps every drawing
//! pixel for pixel, and with the tokenizer's `numbers` pre-split the
//! svg-small recipe keeps the rows of an icon set in another style than the
//! bundled one (tests/in/icons16: filled paths, 16x16 viewBox, compact arcs).

use irc::data::{canon, read_rows, svg, Format, Row, SvgForm};
use irc::spec::Spec;
use irc::tokenizer::{train::train, PreSplit, TokenizerConfig};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn icons16() -> Vec<(PathBuf, String)> {
    let dir = root().join("tests/in/icons16");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect();
    v.sort();
    assert!(v.len() >= 80, "the test icon set is missing");
    v
}

/// Whitespace-normalize, canonicalize, and check the round trip.
fn round_trip(origin: &str, text: &str) -> String {
    let n = svg::normalize(text).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let c = canon::canonicalize(&n);
    svg::check(&c).unwrap_or_else(|e| panic!("{origin}: canonical form is not XML: {e}\n{c}"));
    assert!(
        canon::same_pixels(&n, &c),
        "{origin}: canonical form renders differently\n{n}\n{c}"
    );
    assert_eq!(canon::canonicalize(&c), c, "{origin}: not idempotent");
    c
}

#[test]
fn every_bundled_icon_renders_the_same() {
    let rows = read_rows(&root().join("corpus/tabler/icons.jsonl")).unwrap();
    assert!(rows.len() >= 1000);
    let mut changed = 0;
    for (i, r) in rows.iter().enumerate() {
        let c = round_trip(&format!("icons.jsonl:{}", i + 1), &r.text);
        changed += (c != svg::normalize(&r.text).unwrap()) as usize;
    }
    assert!(
        changed > rows.len() / 2,
        "only {changed} icons were rewritten"
    );
}

#[test]
fn every_icon_of_another_style_renders_the_same() {
    let icons = icons16();
    let mut arcs = 0;
    for (p, t) in &icons {
        let c = round_trip(&p.display().to_string(), t);
        assert!(!c.contains("class="), "{}: class kept", p.display());
        // Compact arcs (`0 0 12 2`: flag 1, then 2) are spelled out.
        arcs += (c.contains(" a ") || c.contains(" A ")) as usize;
        assert!(
            !c.contains(" 12 2"),
            "{}: compact flags kept\n{c}",
            p.display()
        );
    }
    assert!(arcs > icons.len() / 2, "{arcs} icons with arcs");
}

#[test]
fn shorter_but_the_same_drawing_for_hand_made_cases() {
    let s = r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M8 1a7 7 0 1 0 0 14A7 7 0 0 0 8 1m0 2.5a.5.5 0 0 1 .5.5v3.5H12a.5.5 0 0 1 0 1H8.5V12a.5.5 0 0 1-1 0V8.5H4a.5.5 0 0 1 0-1h3.5V4a.5.5 0 0 1 .5-.5"/></svg>"#;
    let c = round_trip("hand-made", s);
    assert!(c.contains(
        "d=\"M 8 1 a 7 7 0 1 0 0 14 A 7 7 0 0 0 8 1 m 0 2.5 a .5 .5 0 0 1 .5 .5 v 3.5 H 12"
    ));
}

/// Rows of the recipe's [data] pointed at `source` (SVG files, tags from
/// the file names), as `irc run` would ingest them.
fn recipe_rows(source: &Path, form: SvgForm) -> (Spec, Vec<Row>) {
    let spec = Spec::load(&root().join("models/svg-small.toml")).unwrap();
    let (mut data, _) = irc::train::data_configs(&spec).unwrap();
    data.source = vec![source.to_path_buf()];
    data.format = Format::Svg;
    data.prompt_from_name = true;
    data.synthetic = 0;
    data.svg = form;
    let out = tempfile::tempdir().unwrap();
    irc::data::ingest::ingest(&data, out.path()).unwrap();
    let rows = read_rows(&out.path().join("train.jsonl")).unwrap();
    (spec, rows)
}

#[test]
fn the_recipe_keeps_the_rows_of_another_icon_style() {
    let (spec, rows) = recipe_rows(&root().join("tests/in/icons16"), SvgForm::Canonical);
    let (_, tok_cfg) = irc::train::data_configs(&spec).unwrap();
    assert_eq!(tok_cfg.pre_split, PreSplit::Numbers);
    let samples = irc::data::row_samples(&rows);
    let (tok, _) = train(&samples, &tok_cfg).unwrap();
    // A row is <eos>, its tokens and <eos>; a window holds seq_len + 1.
    let fits = |t: &irc::tokenizer::Tokenizer| {
        samples
            .iter()
            .filter(|s| t.encode_str(s).unwrap().len() < spec.build.seq_len)
            .count() as f64
            / samples.len() as f64
    };
    let kept = fits(&tok);
    assert!(
        kept >= 0.95,
        "only {:.1}% of rows fit seq_len {}",
        100.0 * kept,
        spec.build.seq_len
    );

    // The same rows as written, in GPT-2's split, take more tokens.
    let (_, written) = recipe_rows(&root().join("tests/in/icons16"), SvgForm::Whitespace);
    let plain = irc::data::row_samples(&written);
    let gpt2 = TokenizerConfig {
        pre_split: PreSplit::Gpt2,
        ..tok_cfg.clone()
    };
    let (tok2, _) = train(&plain, &gpt2).unwrap();
    let count = |t: &irc::tokenizer::Tokenizer, xs: &[String]| -> usize {
        xs.iter().map(|s| t.encode_str(s).unwrap().len()).sum()
    };
    let (ours, theirs) = (count(&tok, &samples), count(&tok2, &plain));
    assert!(
        (ours as f64) < 0.9 * theirs as f64,
        "canonical + numbers: {ours} tokens, GPT-2 split: {theirs}"
    );
}
