//! Eval metrics on hand-made cases with known answers (`irc::eval`).

use irc::data::synth;
use irc::eval::text::repeat_ratio_of;
use irc::eval::*;

const NS: &str = "xmlns=\"http://www.w3.org/2000/svg\"";

fn svg(body: &str) -> String {
    format!("<svg {NS} viewBox=\"0 0 64 64\">{body}</svg>")
}

fn gen(prompt: &str, text: &str, reference: Option<&str>) -> Generation {
    Generation {
        prompt: prompt.into(),
        text: text.into(),
        reference: reference.map(String::from),
    }
}

#[test]
fn valid_svg_and_each_failure_reason() {
    let ok = svg("<circle cx=\"32\" cy=\"32\" r=\"8\" fill=\"#e53935\"/>");
    assert_eq!(check_svg(&ok), Ok(1));
    assert_eq!(check_svg(&format!("  \n{ok}\n")), Ok(1));
    let cases = [
        ("   ", Invalid::Empty),
        (
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>é</text><rect width=\"1\" height=\"1\"/></svg>",
            Invalid::NonAscii,
        ),
        (
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"4\" height=\"4\"></svg>",
            Invalid::NotXml,
        ),
        (
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/>",
            Invalid::NotXml,
        ),
        (
            "<g xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></g>",
            Invalid::WrongRoot,
        ),
        (
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"0\" height=\"9\"><circle r=\"4\"/></svg>",
            Invalid::Unparsable,
        ),
        (
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><g/><desc>x</desc></svg>",
            Invalid::NoDrawable,
        ),
        (
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"0\" height=\"5\"/></svg>",
            Invalid::NoDrawable,
        ),
        (
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\" fill=\"none\"/></svg>",
            Invalid::NoDrawable,
        ),
        (
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>trailing",
            Invalid::NotXml,
        ),
    ];
    for (t, want) in cases {
        assert_eq!(check_svg(t), Err(want), "{t}");
    }
}

#[test]
fn exact_match_after_whitespace_normalization() {
    let a = "<svg  a = \"1\" >\n  <g/>\t</svg>";
    assert_eq!(normalize_ws(a), "<svg a=\"1\"><g/></svg>");
    assert!(exact_match(a, "<svg a=\"1\"><g/></svg>"));
    assert!(exact_match("<g />", "<g/>"));
    assert!(exact_match("<p d=\"M0  0\"/>", "<p d=\"M0 0\"/>"));
    assert!(!exact_match("<p d=\"M0 0\"/>", "<p d=\"M00\"/>"));
    assert!(!exact_match("<g/>", "<g/><g/>"));
}

#[test]
fn repeat_ratio_known_values() {
    assert_eq!(repeat_ratio("abc", 4), None);
    assert_eq!(repeat_ratio("abcdefgh", 4), Some(0.0));
    // "abababab": 5 four-grams, 2 distinct (abab, baba) → 1 - 2/5.
    assert!((repeat_ratio("abababab", 4).unwrap() - 0.6).abs() < 1e-12);
    // A long loop approaches 1.
    let lp = "L1 1".repeat(100);
    assert!(repeat_ratio(&lp, 4).unwrap() > 0.98);
    assert_eq!(repeat_ratio_of(&[1, 2, 1, 2], 2), Some(1.0 - 2.0 / 3.0));
    assert_eq!(repeat_ratio_of::<u8>(&[], 0), None);
}

#[test]
fn boundary_glitches_each_kind() {
    let clean = svg("<g/>");
    assert!(!boundary_glitches(&clean).any());
    assert!(!boundary_glitches(&format!("{clean}\n  ")).any());

    let g = boundary_glitches(&format!("{clean}<svg>"));
    assert!(g.after_end && !g.stray_close);

    // Truncated: inside a tag, inside a value, elements open.
    for t in [
        "<svg xmlns=\"x\"><circle cx=\"3",
        "<svg><g><rect/>",
        "<svg><rect",
        "<svg><!-- c",
    ] {
        assert!(boundary_glitches(t).unclosed, "{t}");
    }
    // `>` inside a quoted value does not end the tag.
    assert!(boundary_glitches("<svg><g a=\"x>y\"").unclosed);

    let g = boundary_glitches("<svg><g/>/svg>");
    assert!(g.stray_close && g.unclosed);
    assert!(boundary_glitches("/svg>").stray_close);
    assert!(!boundary_glitches("<svg></svg>").stray_close);
}

#[test]
fn synthetic_prompt_success_and_near_misses() {
    let rows = synth::generate(20, 11);
    for r in &rows {
        let p = r.prompt.as_deref().unwrap();
        assert_eq!(prompt_kind(p), PromptKind::Synthetic);
        assert_eq!(prompt_success(p, &r.text).1, PromptOutcome::Success);
    }
    let p = "[circle][red][1][middle][large]";
    let good = svg("<circle cx=\"32\" cy=\"32\" r=\"9\" fill=\"#e53935\"/>");
    assert_eq!(prompt_success(p, &good).1, PromptOutcome::Success);
    // Wrong colour.
    let blue = good.replace("#e53935", "#1e88e5");
    match prompt_success(p, &blue).1 {
        PromptOutcome::Fail(w) => assert!(w.iter().any(|m| m.contains("fill")), "{w:?}"),
        o => panic!("{o:?}"),
    }
    // Wrong count.
    let two = svg(
        "<circle cx=\"20\" cy=\"32\" r=\"9\" fill=\"#e53935\"/><circle cx=\"40\" cy=\"32\" r=\"9\" fill=\"#e53935\"/>",
    );
    match prompt_success(p, &two).1 {
        PromptOutcome::Fail(w) => assert!(w.iter().any(|m| m.contains("2 shapes")), "{w:?}"),
        o => panic!("{o:?}"),
    }
    // Not valid (usvg rejects a zero width) fails even if the scene check
    // passes.
    let zero = good.replace("viewBox=\"0 0 64 64\"", "width=\"0\" height=\"64\"");
    assert!(synth::parse_prompt(p).unwrap().check(&zero).is_empty());
    assert!(matches!(prompt_success(p, &zero).1, PromptOutcome::Fail(_)));
}

#[test]
fn tag_prompts_checkable_or_not_applicable() {
    assert_eq!(
        prompt_success(
            "[arrow][left]",
            &svg("<path d=\"M0 0L9 9\" stroke=\"#000\"/>")
        ),
        (PromptKind::Tags, PromptOutcome::NotApplicable)
    );
    assert_eq!(
        prompt_success("draw a cat", "<svg/>"),
        (PromptKind::Other, PromptOutcome::NotApplicable)
    );
    let red_circle = svg("<circle cx=\"32\" cy=\"32\" r=\"9\" fill=\"#f00\"/>");
    assert_eq!(
        prompt_success("[icon][red][circle]", &red_circle).1,
        PromptOutcome::Success
    );
    assert!(matches!(
        prompt_success("[icon][blue][circle]", &red_circle).1,
        PromptOutcome::Fail(_)
    ));
    assert!(matches!(
        prompt_success("[square]", &red_circle).1,
        PromptOutcome::Fail(_)
    ));
    let tri = svg("<polygon points=\"32,8 8,56 56,56\" fill=\"black\"/>");
    assert_eq!(
        prompt_success("[triangle][black]", &tri).1,
        PromptOutcome::Success
    );
    // A stroke counts as a drawn colour.
    let stroke = svg("<line x1=\"0\" y1=\"0\" x2=\"9\" y2=\"9\" stroke=\"green\"/>");
    assert_eq!(
        prompt_success("[line][green]", &stroke).1,
        PromptOutcome::Success
    );
}

#[test]
fn evaluate_counts_rates_and_table() {
    let rows = synth::generate(2, 5);
    let p0 = rows[0].prompt.clone().unwrap();
    let p1 = rows[1].prompt.clone().unwrap();
    let gens = vec![
        // Valid, exact, successful.
        gen(&p0, &rows[0].text, Some(&rows[0].text)),
        // Valid synthetic SVG for the wrong prompt, text after </svg>.
        gen(&p1, &format!("{}<svg>", rows[0].text), Some(&rows[1].text)),
        // Non-ASCII and unclosed; tag prompt not applicable; no reference.
        gen("[arrow][left]", "<svg>é<g>", None),
        // Torn end.
        gen("free text", "<svg><g/>/svg>", None),
    ];
    let e = evaluate(&gens);
    assert_eq!(e.n, 4);
    assert_eq!((e.valid_svg.count, e.valid_svg.total), (1, 4));
    assert_eq!(e.valid_svg.rate, Some(0.25));
    assert_eq!(e.invalid_by_reason.get("not_xml"), Some(&2));
    assert_eq!(e.invalid_by_reason.get("non_ascii"), Some(&1));
    assert_eq!((e.exact_match.count, e.exact_match.total), (1, 2));
    assert_eq!(
        (e.prompt_success.count, e.prompt_success.total),
        (1, 2),
        "{:?}",
        e.samples
    );
    assert_eq!(e.prompt_success_tags.rate, None);
    assert_eq!(e.prompt_not_applicable, 2);
    assert_eq!(e.after_end, 1);
    assert_eq!(e.unclosed, 2);
    assert_eq!(e.stray_close, 1);
    assert_eq!(e.boundary_glitches.count, 3);
    assert_eq!(e.non_ascii, 1);
    assert_eq!(e.starts_with_svg.count, 4);
    assert!(e.repeat_ratio_mean.is_some() && e.repeat_ratio_reference.is_some());
    let t = e.to_table();
    for want in [
        "valid SVG",
        "1/4 (25.0%)",
        "exact match",
        "N/A",
        "boundary glitches",
    ] {
        assert!(t.contains(want), "{want} missing in\n{t}");
    }
    // eval.json round-trips, written atomically.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/eval.json");
    e.write_json(&path).unwrap();
    assert_eq!(EvalResult::read_json(&path).unwrap(), e);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["valid_svg"]["rate"], 0.25);
    assert_eq!(v["prompt_success_tags"]["rate"], serde_json::Value::Null);
    // Empty input: every rate N/A, no panic.
    let e = evaluate(&[]);
    assert_eq!(e.valid_svg.rate, None);
    assert!(e.to_table().contains("N/A"));
}
