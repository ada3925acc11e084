//! Stage 1 gates: each kind of bad row is caught and counted; the output
//! folder is self-describing; the split is by row and seeded.

use irc::data::ingest::{gate, ingest, split, Manifest, RawRow};
use irc::data::{read_rows, AsciiPolicy, DataConfig, Format};
use std::path::Path;

const SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 24 24\"><path d=\"M5 12l14 0\"/><circle cx=\"12\" cy=\"12\" r=\"9\"/></svg>";

fn raw(origin: &str, text: &str, svg: bool) -> RawRow {
    RawRow {
        origin: origin.into(),
        prompt: None,
        text: Ok(text.into()),
        is_svg: svg,
    }
}

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

#[test]
fn every_gate_is_caught_and_counted() {
    let other = "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect x=\"1\" y=\"2\" width=\"30\" height=\"4\" fill=\"#e53935\"/><text x=\"3\">hello there</text></svg>";
    let rows = vec![
        raw("a", SVG, true),
        raw("b", other, true),
        raw("dup", SVG, true),
        raw("near-ws", &SVG.replace("><", ">\n  <"), true),
        raw("near-num", &SVG.replace("r=\"9\"", "r=\"9.001\""), true),
        raw("near-minhash", &SVG.replace("r=\"9\"", "r=\"8\""), true),
        raw("bad-svg", "<svg><path></svg>", true),
        raw("not-svg-root", "<html/>", true),
        raw("empty", "   ", true),
        raw(
            "utf",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>caf\u{e9} \u{1F600}</text></svg>",
            true,
        ),
        raw(
            "ctrl",
            "<svg xmlns=\"http://www.w3.org/2000/svg\">\u{1b}</svg>",
            true,
        ),
        raw(
            "eos",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>&lt;eos></text><eos></svg>",
            true,
        ),
        raw(
            "long",
            &format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{}</text></svg>",
                "x".repeat(500)
            ),
            true,
        ),
        RawRow {
            origin: "json".into(),
            prompt: None,
            text: Err("bad JSON row".into()),
            is_svg: false,
        },
    ];
    let cfg = DataConfig {
        max_len: 400,
        near_threshold: 0.8,
        ..DataConfig::default()
    };
    let g = gate(rows.clone(), &cfg);
    let kept: Vec<&str> = g.kept.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(kept, ["a", "b"]);
    let c = g.counts();
    let get = |k: &str| c.get(k).copied().unwrap_or(0);
    // Whitespace-only differences become exact duplicates after SVG normalization.
    assert_eq!(get("duplicate"), 2);
    assert_eq!(get("near-duplicate"), 2);
    assert_eq!(get("malformed-svg"), 2);
    assert_eq!(get("empty"), 1);
    assert_eq!(get("non-ascii"), 1);
    assert_eq!(get("control-char"), 1);
    assert_eq!(get("reserved-token"), 1);
    assert_eq!(get("too-long"), 1);
    assert_eq!(get("unreadable"), 1);
    assert_eq!(g.rejected.len(), rows.len() - 2);
    let near = g
        .rejected
        .iter()
        .find(|r| r.origin == "near-minhash")
        .unwrap();
    assert!(
        near.detail.contains("similarity") && near.detail.contains(" a"),
        "{near:?}"
    );

    // Transliterate instead: the accented row is kept with an ASCII text,
    // the emoji becomes an XML character reference (same meaning).
    let cfg = DataConfig {
        ascii: AsciiPolicy::Transliterate,
        max_len: 400,
        near_threshold: 0.8,
        ..DataConfig::default()
    };
    let g = gate(rows, &cfg);
    assert_eq!(g.transliterated, 1);
    let (_, r) = g.kept.iter().find(|(o, _)| o == "utf").unwrap();
    assert!(r.text.contains("cafe &#x1F600;"), "{}", r.text);
    assert!(r.text.is_ascii());
    // With MinHash off, only exact and normalized duplicates go.
    let cfg = DataConfig {
        near_threshold: 1.0,
        ..DataConfig::default()
    };
    let g = gate(
        vec![
            raw("a", SVG, true),
            raw("m", &SVG.replace("r=\"9\"", "r=\"8\""), true),
        ],
        &cfg,
    );
    assert_eq!(g.kept.len(), 2);
}

#[test]
fn transliteration_without_replacement_is_rejected_in_text() {
    let cfg = DataConfig {
        ascii: AsciiPolicy::Transliterate,
        ..DataConfig::default()
    };
    let g = gate(
        vec![
            raw("t:1", "na\u{ef}ve \u{201c}quote\u{201d}", false),
            raw("t:2", "\u{65e5}\u{672c}", false),
        ],
        &cfg,
    );
    assert_eq!(g.kept[0].1.text, "naive \"quote\"");
    assert_eq!(g.counts().get("non-ascii"), Some(&1));
}

#[test]
fn ingest_folder_writes_self_describing_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("icons");
    for i in 0..30 {
        let svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\"\n  viewBox=\"0 0 24 24\">\n  <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"3\"/>\n  <text>row {i} of the icons with some words {}</text>\n</svg>\n",
            i,
            i * 7 % 13,
            i * 3 + 1,
            "abcdefghijklmnopqrstuvwxyz".chars().cycle().skip(i * 5).take(20).collect::<String>()
        );
        write(&src.join(format!("sub{}/shape-{i}.svg", i % 3)), &svg);
    }
    write(&src.join("sub0/broken.svg"), "<svg><g></svg>");
    // Same name (so same prompt) and same SVG in another folder: a duplicate.
    write(
        &src.join("sub2/shape-1.svg"),
        &std::fs::read_to_string(src.join("sub1/shape-1.svg")).unwrap(),
    );
    write(&src.join("notes.txt"), "not read for --format svg");
    let out = dir.path().join("out");
    let cfg = DataConfig {
        source: vec![src.clone()],
        format: Format::Svg,
        prompt_from_name: true,
        ..DataConfig::default()
    };
    let m = ingest(&cfg, &out).unwrap();
    assert_eq!(m.read, 32);
    assert_eq!(m.kept, 30);
    assert_eq!((m.train, m.val), (27, 3));
    assert_eq!(m.rejected.get("malformed-svg"), Some(&1));
    assert_eq!(
        m.rejected
            .get("duplicate")
            .or(m.rejected.get("near-duplicate")),
        Some(&1)
    );
    assert_eq!(
        m.normalized, 31,
        "normalized before dedup, the duplicate included"
    );
    let back = Manifest::load(&out).unwrap();
    assert_eq!(back, m);
    let train = read_rows(&out.join("train.jsonl")).unwrap();
    let val = read_rows(&out.join("val.jsonl")).unwrap();
    assert!(train
        .iter()
        .all(|r| r.prompt.as_deref().unwrap().starts_with("[shape][")));
    assert!(train
        .iter()
        .chain(&val)
        .all(|r| !r.text.contains('\n') && irc::data::svg::check(&r.text).is_ok()));
    for (f, h) in &m.files {
        assert_eq!(
            &irc::util::sha256_hex(&std::fs::read(out.join(f)).unwrap()),
            h
        );
    }
    // Same seed, same split; rows never straddle sets.
    let m2 = ingest(&cfg, &dir.path().join("out2")).unwrap();
    assert_eq!(m.files, m2.files);
    for r in &val {
        assert!(!train.contains(r));
    }
}

#[test]
fn text_and_jsonl_sources() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("a.txt");
    write(&t, "first line\nsecond line\n\nfirst line\n");
    let j = dir.path().join("b.jsonl");
    write(&j, "{\"prompt\": \"[x]\", \"text\": \"<svg/>\"}\n{\"text\": 5}\nnot json\n{\"text\": \"plain row\"}\n");
    let cfg = DataConfig {
        source: vec![t, j.clone()],
        near_threshold: 1.0,
        val_ratio: 0.0,
        ..DataConfig::default()
    };
    let m = ingest(&cfg, &dir.path().join("o")).unwrap();
    assert_eq!(m.read, 8);
    assert_eq!(m.rejected.get("unreadable"), Some(&2));
    assert_eq!(m.rejected.get("empty"), Some(&1));
    assert_eq!(m.rejected.get("duplicate"), Some(&1));
    let rej = std::fs::read_to_string(dir.path().join("o/rejected.jsonl")).unwrap();
    assert!(
        rej.contains("b.jsonl:2") && rej.contains("b.jsonl:3"),
        "{rej}"
    );
}

#[test]
fn split_is_by_row_and_seeded() {
    let (t, v) = split(100, 0.1, 7);
    assert_eq!((t.len(), v.len()), (90, 10));
    assert_eq!(split(100, 0.1, 7), (t.clone(), v.clone()));
    assert_ne!(split(100, 0.1, 8).1, v);
    let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(split(2, 0.1, 1).1.len(), 1);
}

#[test]
fn unseen_attribute_pairs_are_held_out_whole() {
    use irc::data::synth;
    let dir = tempfile::tempdir().unwrap();
    let cfg = DataConfig {
        format: Format::Synthetic,
        synth_count: 1500,
        ..DataConfig::default()
    };
    let m = ingest(&cfg, dir.path()).unwrap();
    let unseen = |r: &irc::data::Row| {
        synth::parse_prompt(r.prompt.as_deref().unwrap())
            .unwrap()
            .unseen_combination()
    };
    let train = read_rows(&dir.path().join("train.jsonl")).unwrap();
    let val = read_rows(&dir.path().join("val.jsonl")).unwrap();
    assert!(
        train.iter().all(|r| !unseen(r)),
        "an unseen pair was trained on"
    );
    let held: Vec<_> = val.iter().filter(|r| unseen(r)).collect();
    assert!(held.len() > 50, "{} unseen rows", held.len());
    assert_eq!(m.families["unseen"].val, held.len());
    assert_eq!(m.families["unseen"].train, 0);
    // Each attribute of a held-out pair is still trained on alone.
    let has = |tag: &str| {
        train
            .iter()
            .any(|r| r.prompt.as_deref().unwrap().contains(tag))
    };
    assert!(has("[triangle]") && has("[purple]") && has("[3]") && has("[top]"));
    // Validation alternates the families, so the first prompts cover all three.
    let first: Vec<_> = val[..6].iter().map(unseen).collect();
    assert!(first.contains(&true) && first.contains(&false));
}
