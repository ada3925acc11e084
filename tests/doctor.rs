//! `irc doctor`'s rules on a run folder's own evidence (data.json,
//! metrics.jsonl, eval.json, build/spec.toml), written by hand: each new
//! check fires on a run with its problem, is the first fix where expected,
//! and stays quiet on a healthy run.

mod common;

use irc::doctor::checks::{self, BELOW_BASELINE, COPIES, DROPPED, INVALID, UNDERTRAINED};
use irc::doctor::{Finding, Status};
use irc::eval::{EvalResult, FamilyEval, Rate, VisualEval};
use irc::report::MetricsLog;
use irc::train::{DataSummary, Lengths};
use std::path::Path;

const SPEC: &str = r#"
[model]
name = "doc"
family = "gpt2"
vocab_size = 37
context = 256
layers = 2
d_model = 24
heads = 3
ffn_hidden = 40

[build]
target = "avx2"
batch = 2
seq_len = 256

[train]
epochs = 2

[generate]
max_tokens = 128
"#;

/// Passes over the data, rows dropped, row p99.
fn data(epochs: f64, dropped: usize, p99: usize) -> DataSummary {
    DataSummary {
        seq_len: 256,
        packing: "rows".into(),
        train_rows: 1000,
        rows_dropped: dropped,
        train_tokens: 150_000,
        windows: 500,
        tokens_per_step: 512,
        steps: (epochs * 500.0) as usize,
        epochs,
        row_tokens: Lengths {
            p50: 120,
            p90: 200,
            p99,
            max: p99 + 50,
        },
    }
}

/// 100 steps of train loss: falling to the end, or flat after step 30.
fn metrics(falling: bool) -> String {
    (1..=100)
        .map(|s| {
            let l = if falling {
                4.0 - 0.03 * s as f64
            } else {
                1.0 + 2.0 * (30 - s.min(30)) as f64 / 30.0
            };
            format!(
                "{{\"step\":{s},\"epoch\":0,\"train_loss\":{l},\"lr\":0.001,\"grad_norm\":1.0}}\n"
            )
        })
        .collect()
}

/// All-valid generations.
fn healthy_eval() -> EvalResult {
    let e = common::perfect_eval(10, 3);
    assert_eq!(e.valid_svg.rate, Some(1.0));
    e
}

fn visual(score: f64, baseline: f64, copies: usize) -> VisualEval {
    VisualEval {
        n: 20,
        score_mean: Some(score),
        baseline_mean: Some(baseline),
        above_baseline: Rate::new(if score > baseline { 15 } else { 4 }, 20),
        near_copies: Rate::new(copies, 20),
    }
}

/// Give `e` the visual scores `v`, as if all its generations were icons
/// with tag prompts (the family near-copies are judged on).
fn set_visual(e: &mut EvalResult, v: VisualEval) {
    let mut icons = FamilyEval::from(&*e);
    icons.visual = Some(v.clone());
    e.families.insert("tags".into(), icons);
    e.visual = Some(v);
}

/// Write the run folder and run the checks on it.
fn run(d: Option<&DataSummary>, m: &str, e: &EvalResult) -> Vec<Finding> {
    run_spec(SPEC, d, m, e)
}

fn run_spec(spec: &str, d: Option<&DataSummary>, m: &str, e: &EvalResult) -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("build")).unwrap();
    std::fs::write(r.join("build/spec.toml"), spec).unwrap();
    if let Some(d) = d {
        d.write(r).unwrap();
    }
    std::fs::write(r.join("metrics.jsonl"), m).unwrap();
    e.write_json(&r.join("eval.json")).unwrap();
    read_back(r)
}

fn read_back(r: &Path) -> Vec<Finding> {
    let m = MetricsLog::read(&r.join("metrics.jsonl")).unwrap();
    let e = EvalResult::read_json(&r.join("eval.json")).unwrap();
    checks::for_run(r, &m, Some(&e))
}

fn get<'a>(f: &'a [Finding], symptom: &str) -> &'a Finding {
    f.iter().find(|x| x.symptom == symptom).unwrap()
}

fn first(f: &[Finding]) -> &Finding {
    checks::first_fix(f).expect("a finding to look at")
}

#[test]
fn dropped_rows_fire_first_and_suggest_a_window() {
    let f = run(
        Some(&data(10.0, 400, 700)),
        &metrics(false),
        &healthy_eval(),
    );
    let x = first(&f);
    assert_eq!(x.symptom, DROPPED, "{f:#?}");
    assert_eq!(x.stage, "data prep");
    assert!(x.evidence.contains("400 of 1000"), "{}", x.evidence);
    let s = x.sweep.as_deref().unwrap();
    assert!(s.contains("build.seq_len=256,1024"), "{s}");
    assert!(s.contains("model.context=1024"), "{s}");
    // The look findings come first.
    assert_eq!(f[0].symptom, DROPPED);

    // 1% dropped: quiet.
    let f = run(Some(&data(10.0, 10, 300)), &metrics(false), &healthy_eval());
    assert_eq!(get(&f, DROPPED).status, Status::Ok);
    // No data.json: no data.
    let f = run(None, &metrics(false), &healthy_eval());
    assert_eq!(get(&f, DROPPED).status, Status::NoData);
}

#[test]
fn undertraining_fires_on_falling_loss_or_few_passes() {
    // Loss still falling at the end, plenty of passes.
    let f = run(Some(&data(10.0, 0, 200)), &metrics(true), &healthy_eval());
    let x = first(&f);
    assert_eq!(x.symptom, UNDERTRAINED, "{f:#?}");
    assert_eq!(x.stage, "train");
    assert!(x.evidence.contains("still falling"), "{}", x.evidence);
    assert_eq!(x.sweep.as_deref(), Some("--set train.epochs=2,4"));

    // Flat loss but 1.2 passes: the sweep reaches 3 passes (×3).
    let f = run(Some(&data(1.2, 0, 200)), &metrics(false), &healthy_eval());
    let x = first(&f);
    assert_eq!(x.symptom, UNDERTRAINED, "{f:#?}");
    assert!(x.evidence.contains("1.20 passes"), "{}", x.evidence);
    assert_eq!(x.sweep.as_deref(), Some("--set train.epochs=2,6"));

    // Flat loss, 10 passes: quiet.
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &healthy_eval());
    assert_eq!(get(&f, UNDERTRAINED).status, Status::Ok);
}

#[test]
fn invalid_svg_names_truncation_first() {
    let mut e = healthy_eval();
    let n = e.n;
    e.valid_svg = Rate::new(n / 2, n);
    e.invalid_by_reason.insert("not_xml".into(), n - n / 2);
    e.unclosed = n - n / 2;
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &e);
    let x = first(&f);
    assert_eq!(x.symptom, INVALID, "{f:#?}");
    assert_eq!(x.stage, "inference");
    assert!(
        x.evidence.starts_with("dominant: truncated"),
        "{}",
        x.evidence
    );
    assert_eq!(
        x.sweep.as_deref(),
        Some("--set generate.max_tokens=128,256")
    );

    // 95% valid: quiet.
    let mut e = healthy_eval();
    e.valid_svg = Rate::new(19, 20);
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &e);
    assert_eq!(get(&f, INVALID).status, Status::Ok);
}

#[test]
fn invalid_svg_not_xml_points_at_dropped_rows() {
    let mut e = healthy_eval();
    let n = e.n;
    e.valid_svg = Rate::new(n / 2, n);
    e.invalid_by_reason.insert("not_xml".into(), n - n / 2 - 1);
    e.invalid_by_reason.insert("no_drawable".into(), 1);
    let f = run(Some(&data(10.0, 300, 400)), &metrics(false), &e);
    let x = get(&f, INVALID);
    assert_eq!(x.status, Status::Look);
    assert!(
        x.evidence.starts_with("dominant: not_xml"),
        "{}",
        x.evidence
    );
    assert!(x.action.contains(DROPPED), "{}", x.action);
    assert_eq!(first(&f).symptom, DROPPED);

    // no_drawable dominant, nothing upstream: data / train.
    let mut e = healthy_eval();
    e.valid_svg = Rate::new(n / 2, n);
    e.invalid_by_reason.insert("no_drawable".into(), n - n / 2);
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &e);
    let x = first(&f);
    assert_eq!(x.symptom, INVALID);
    assert_eq!(x.stage, "data / train");
}

#[test]
fn below_baseline_fires() {
    let mut e = healthy_eval();
    set_visual(&mut e, visual(0.3, 0.5, 0));
    // Drawn with the recipes' 16 candidates: the model and training are
    // next.
    let many = SPEC.replace("[generate]\n", "[generate]\ncandidates = 16\n");
    let f = run_spec(&many, Some(&data(10.0, 0, 200)), &metrics(false), &e);
    let x = first(&f);
    assert_eq!(x.symptom, BELOW_BASELINE, "{f:#?}");
    assert_eq!(x.stage, "model / train");
    assert!(!x.action.contains("candidates"), "{}", x.action);
    // One sample a prompt (the default): re-scoring the consensus of 16
    // comes first, and the sweep varies the candidates.
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &e);
    let x = first(&f);
    assert_eq!(x.symptom, BELOW_BASELINE, "{f:#?}");
    assert_eq!(x.stage, "inference / model / train");
    assert!(
        x.action
            .contains("generate.candidates = 1 per prompt: first draw 16")
            && x.action
                .contains("irc eval RUN --candidates 16 --temperature 0.8"),
        "{}",
        x.action
    );
    assert_eq!(x.sweep.as_deref(), Some("--set generate.candidates=1,16"));
    assert!(
        x.evidence.contains("0.300 vs retrieval baseline 0.500"),
        "{}",
        x.evidence
    );

    set_visual(&mut e, visual(0.6, 0.5, 0));
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &e);
    assert_eq!(get(&f, BELOW_BASELINE).status, Status::Ok);
    assert_eq!(get(&f, COPIES).status, Status::Ok);
    // Above overall, but the icons are below their baseline: it fires and
    // names the family.
    e.visual = Some(visual(0.6, 0.5, 0));
    e.families.get_mut("tags").unwrap().visual = Some(visual(0.34, 0.65, 0));
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &e);
    let x = get(&f, BELOW_BASELINE);
    assert_eq!(x.status, Status::Look, "{x:#?}");
    assert!(
        x.evidence.contains("below it: icons (tags) 0.340 vs 0.650"),
        "{}",
        x.evidence
    );
    // No visual eval: no data.
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &healthy_eval());
    assert_eq!(get(&f, BELOW_BASELINE).status, Status::NoData);
}

#[test]
fn near_copies_fire() {
    let mut e = healthy_eval();
    set_visual(&mut e, visual(0.6, 0.5, 10));
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &e);
    let x = first(&f);
    assert_eq!(x.symptom, COPIES, "{f:#?}");
    assert_eq!(x.stage, "data");
    assert!(x.evidence.contains("10/20"), "{}", x.evidence);
    assert_eq!(x.sweep.as_deref(), Some("--set train.epochs=2,1"));

    set_visual(&mut e, visual(0.6, 0.5, 4));
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &e);
    assert_eq!(get(&f, COPIES).status, Status::Ok);

    // Synthetic scenes copying training scenes is not memorization: the
    // same rate on the scene family alone stays quiet.
    let mut e = healthy_eval();
    e.visual = Some(visual(0.6, 0.5, 10));
    e.families.get_mut("synthetic").unwrap().visual = Some(visual(0.6, 0.5, 10));
    let f = run(Some(&data(10.0, 0, 200)), &metrics(false), &e);
    assert_eq!(get(&f, COPIES).status, Status::NoData, "{f:#?}");
}

#[test]
fn dropped_rows_come_before_undertraining() {
    let mut e = healthy_eval();
    set_visual(&mut e, visual(0.3, 0.5, 10));
    let f = run(Some(&data(1.0, 400, 700)), &metrics(true), &e);
    let looks: Vec<&str> = f
        .iter()
        .filter(|x| x.status == Status::Look)
        .map(|x| x.symptom.as_str())
        .collect();
    assert_eq!(
        &looks[..4],
        &[DROPPED, UNDERTRAINED, BELOW_BASELINE, COPIES]
    );

    // The doctor's table starts with the first fix; the report shows the
    // same order.
    let t = irc::doctor::table(&f);
    assert!(
        t.starts_with(&format!("first fix: {DROPPED} → data prep: ")),
        "{t}"
    );
    assert!(
        t.contains("(irc sweep SPEC --set model.context=1024 --set build.seq_len=256,1024)"),
        "{t}"
    );
    let html = irc::report::render_html(Path::new("."), &MetricsLog::default(), None, &[]);
    assert!(html.contains("What to look at"));
}

#[test]
fn report_shows_the_doctor_order() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("build")).unwrap();
    std::fs::write(r.join("build/spec.toml"), SPEC).unwrap();
    data(1.0, 400, 700).write(r).unwrap();
    std::fs::write(r.join("metrics.jsonl"), metrics(true)).unwrap();
    let m = MetricsLog::read(&r.join("metrics.jsonl")).unwrap();
    let e = healthy_eval();
    let html = irc::report::render_html(r, &m, Some(&e), &[]);
    let a = html.find(DROPPED).expect("dropped rows in the report");
    let b = html
        .find(UNDERTRAINED)
        .expect("undertraining in the report");
    assert!(a < b);
    assert!(html.contains("irc sweep SPEC --set"));
}
