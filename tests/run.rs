//! `irc run` end to end on a tiny model of the synthetic scene set: the
//! `--quick` path learns (valid SVG well above the untrained model it
//! starts from), a rerun skips every stage, a changed knob reruns only the
//! stages that read it, and a run stopped part way (`--stop-after`, or
//! Ctrl-C) resumes to exactly the result of an uninterrupted one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A tiny GPT-2 on 600 synthetic scenes: its 60 steps take seconds.
const SPEC: &str = "\
[model]
name = 'tiny_run'
family = 'gpt2'
vocab_size = 512
context = 128
layers = 2
d_model = 96
heads = 4

[data]
synthetic = 600
packing = 'rows'
mask_prompt = true
seed = 5

[tokenizer]
vocab_size = 512

[train]
batch = 16
seq_len = 128
steps = 60
lr = 5e-3
warmup = 10
eval_samples = 0
checkpoint_every = 10

[generate]
temperature = 0.7
top_k = 40
max_tokens = 128

[eval]
samples = 16
quick_samples = 16
";

const STAGES: [&str; 6] = ["data", "tokenizer", "tokens", "train", "eval", "report"];

/// Compiled libraries shared by the tests of this file (a fresh folder
/// under cargo's temporary directory for integration tests).
fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("irc-run-cache")
}

fn irc(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irc"))
        .args(args)
        .current_dir(cwd)
        .env("IRC_CACHE", cache())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `irc run`, which must succeed; returns its output.
fn run_ok(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["run", "tiny.toml"];
    args.extend_from_slice(extra);
    let o = irc(&args, dir);
    let t = text(&o);
    assert!(o.status.success(), "irc {args:?} failed:\n{t}");
    t
}

/// The stages that ran, from the status lines (`train     ran ...` or
/// `train     up to date ...`); every stage must have a line.
fn ran(out: &str) -> Vec<&'static str> {
    let mut seen = Vec::new();
    let mut ran = Vec::new();
    for line in out.lines() {
        let mut w = line.split_whitespace();
        let (Some(name), Some(status)) = (w.next(), w.next()) else {
            continue;
        };
        if let Some(s) = STAGES.iter().find(|s| **s == name) {
            match status {
                "ran" => ran.push(*s),
                "up" => {}
                _ => continue,
            }
            seen.push(*s);
        }
    }
    assert_eq!(seen, STAGES, "a status line per stage, in order:\n{out}");
    ran
}

fn write_spec(dir: &Path, src: &str) {
    std::fs::write(dir.join("tiny.toml"), src).unwrap();
}

fn json(p: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap()
}

fn synthetic_valid_rate(eval: &serde_json::Value) -> f64 {
    eval["families"]["synthetic"]["valid_svg"]["rate"]
        .as_f64()
        .unwrap_or_else(|| panic!("no synthetic valid rate in {eval}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn quick_run_learns_and_reruns_only_what_changed() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write_spec(dir, SPEC);

    // First run: every stage runs, into run-quick (never the full run).
    let out = run_ok(dir, &["--quick", "-o", "run"]);
    assert_eq!(ran(&out), STAGES);
    let run = dir.join("run-quick");
    assert!(out.contains("report: "), "{out}");
    assert!(run.join("report.html").exists());
    assert!(!dir.join("run").exists());
    let meta = json(&run.join("train.meta.json"));
    assert_eq!(meta["steps"], 60, "{meta}");
    assert_eq!(meta["finished"], true);
    let eval = json(&run.join("eval.json"));
    assert_eq!(eval["n"], 16);
    let trained = synthetic_valid_rate(&eval);
    assert!(eval["val_loss"].as_f64().is_some() && eval["train_loss"].as_f64().is_some());
    // The per-family table is printed and in the report.
    assert!(out.contains("by prompt family"), "{out}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("By prompt family") && html.contains("class=\"tiles\""));

    // --candidates 4 prints the consensus of the four drawings that seeds
    // seed + k·2³² give one at a time (k = 0 is the plain sample).
    let gen = |candidates: &str, seed: u64| {
        let (c, s) = (candidates.to_string(), seed.to_string());
        let args = [
            "generate",
            "run-quick",
            "--prompt",
            "[red][circle]",
            "--temperature",
            "1.0",
        ];
        let o = irc(
            &[&args[..], &["--seed", &s, "--candidates", &c]].concat(),
            dir,
        );
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let drawn: Vec<String> = (0..4u64).map(|k| gen("1", 7 + (k << 32))).collect();
    let prompt_len = "[red][circle]".len();
    let svgs: Vec<&str> = drawn.iter().map(|t| &t[prompt_len..]).collect();
    let want = &drawn[irc::eval::visual::consensus(&svgs)];
    assert_eq!(&gen("4", 7), want);
    // Sampling flags left out are the run's own [generate]: temperature
    // 0.7, top-k 40, seed 1, one candidate.
    let o = irc(&["generate", "run-quick", "--prompt", "[red][circle]"], dir);
    assert!(o.status.success(), "{}", text(&o));
    let spec_default = String::from_utf8(o.stdout).unwrap();
    let o = irc(
        &[
            "generate",
            "run-quick",
            "--prompt",
            "[red][circle]",
            "--temperature",
            "0.7",
            "--top-k",
            "40",
            "--seed",
            "1",
            "--max-tokens",
            "128",
        ],
        dir,
    );
    assert_eq!(spec_default, String::from_utf8(o.stdout).unwrap());

    // The untrained model (the weights training starts from) on the same
    // prompts with the same sampling.
    let untrained = dir.join("untrained");
    copy_dir(&run, &untrained);
    let o = irc(
        &[
            "init",
            "tiny.toml",
            "-o",
            "untrained/latest.safetensors",
            "--seed",
            "1",
        ],
        dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = irc(
        &[
            "eval",
            "untrained",
            "-n",
            "16",
            "--temperature",
            "0.7",
            "--top-k",
            "40",
            "--max-tokens",
            "128",
        ],
        dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let base = synthetic_valid_rate(&json(&untrained.join("eval.json")));
    println!("synthetic valid SVG: trained {trained}, untrained {base}");
    assert!(
        trained >= 0.5 && trained >= base + 0.4,
        "quick run: valid SVG {trained} on the synthetic held-out prompts, untrained {base}"
    );

    // The doctor reads the run: every checklist item, the tokenizer
    // roundtrip and the compiled forward against the interpreter measured.
    let o = irc(&["doctor", "run-quick", "--threads", "1", "--profile"], dir);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("symptoms to look at"), "{t}");
    assert!(t.contains("encode → decode changes 0 of"), "{t}");
    assert!(
        t.contains("[ok] numerical drift (compiled C vs f64 reference)"),
        "{t}"
    );
    assert!(
        t.contains("decode step") && t.contains("of the FMA peak"),
        "{t}"
    );
    let o = irc(&["doctor", "."], dir);
    assert!(!o.status.success());
    assert!(text(&o).contains("not a run directory"), "{}", text(&o));

    // --quick caps a longer recipe at QUICK_STEPS (seen after one step).
    let capped = dir.join("capped");
    std::fs::create_dir(&capped).unwrap();
    write_spec(&capped, &SPEC.replace("steps = 60", "steps = 500"));
    run_ok(&capped, &["--quick", "--stop-after", "1"]);
    let meta = json(&capped.join("runs/tiny_run-quick/train.meta.json"));
    assert_eq!(meta["total_steps"], irc::run::QUICK_STEPS, "{meta}");

    // Nothing changed: every stage is up to date, and the files stay.
    let before = std::fs::read(run.join("eval.json")).unwrap();
    let out = run_ok(dir, &["--quick", "-o", "run"]);
    assert_eq!(ran(&out), Vec::<&str>::new(), "{out}");
    assert_eq!(std::fs::read(run.join("eval.json")).unwrap(), before);

    // One knob at a time: only the stages that read it run again.
    let cases: [(&str, &str, &[&str]); 6] = [
        // Thread counts do not change results.
        ("[data]\n", "[build]\nthreads = 1\n\n[data]\n", &[]),
        (
            "temperature = 0.7",
            "temperature = 0.8",
            &["eval", "report"],
        ),
        (
            "temperature = 0.8",
            "temperature = 0.8\ncandidates = 2",
            &["eval", "report"],
        ),
        ("lr = 5e-3", "lr = 4e-3", &["train", "eval", "report"]),
        // The corpus runs out of merges at 458 ids: the tokenizer reruns
        // and writes the same file, so nothing after it runs.
        (
            "[tokenizer]\nvocab_size = 512",
            "[tokenizer]\nvocab_size = 480",
            &["tokenizer"],
        ),
        (
            "[tokenizer]\nvocab_size = 480",
            "[tokenizer]\nvocab_size = 400",
            &["tokenizer", "tokens", "train", "eval", "report"],
        ),
    ];
    let mut src = SPEC.to_string();
    for (from, to, want) in cases {
        assert!(src.contains(from), "{from}");
        src = src.replace(from, to);
        write_spec(dir, &src);
        let out = run_ok(dir, &["--quick", "-o", "run"]);
        assert_eq!(ran(&out), want, "after `{to}`:\n{out}");
    }
}

/// A checkpoint's tensors (weights and AdamW moments) and its metadata
/// (step, batch order).
fn checkpoint(p: &Path) -> (irc::runtime::Weights, serde_json::Value) {
    let bytes = std::fs::read(p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (
        irc::runtime::Weights::load(p).unwrap(),
        header["__metadata__"].clone(),
    )
}

type RunResult = (
    (irc::runtime::Weights, serde_json::Value),
    String,
    serde_json::Value,
    Vec<String>,
);

/// Final checkpoint, samples, eval (but its timing) and per-step losses.
fn result(run: &Path) -> RunResult {
    let mut eval = json(&run.join("eval.json"));
    eval["gen_tokens_per_s"] = serde_json::Value::Null;
    let losses = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{} {} {}", v["step"], v["train_loss"], v["val_loss"])
        })
        .collect();
    (
        checkpoint(&run.join("latest.safetensors")),
        std::fs::read_to_string(run.join("samples.json")).unwrap(),
        eval,
        losses,
    )
}

#[test]
fn interrupted_run_resumes_to_the_same_result() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write_spec(dir, SPEC);
    run_ok(dir, &["--quick", "-o", "a"]);
    let want = result(&dir.join("a-quick"));
    assert_eq!(want.3.len(), 60);

    // Stopped after 23 steps (checkpoints every 10, and at the stop): no
    // eval or report yet; the rerun resumes from step 23.
    let out = run_ok(dir, &["--quick", "-o", "b", "--stop-after", "23"]);
    assert!(out.contains("step 23/60"), "{out}");
    let b = dir.join("b-quick");
    assert!(!b.join("eval.json").exists() && !b.join("report.html").exists());
    assert_eq!(json(&b.join("train.meta.json"))["finished"], false);
    // As if killed at step 23 after the checkpoint of step 20: the metrics
    // hold three steps more than the latest checkpoint.
    std::fs::copy(
        b.join("checkpoints/step-000020.safetensors"),
        b.join("latest.safetensors"),
    )
    .unwrap();
    std::fs::remove_file(b.join("checkpoints/step-000023.safetensors")).unwrap();
    let out = run_ok(dir, &["--quick", "-o", "b"]);
    assert!(
        out.contains("resuming from"),
        "the rerun resumes training:\n{out}"
    );
    assert_eq!(&ran(&out)[..], ["train", "eval", "report"], "{out}");
    assert!(
        result(&b) == want,
        "resumed run differs from the uninterrupted one"
    );

    // Ctrl-C during training: a checkpoint, a clear message, and the rerun
    // finishes with the same result.
    let child = Command::new(env!("CARGO_BIN_EXE_irc"))
        .args(["run", "tiny.toml", "--quick", "-o", "c"])
        .current_dir(dir)
        .env("IRC_CACHE", cache())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = dir.join("c-quick/metrics.jsonl");
    let started = std::time::Instant::now();
    loop {
        let lines = std::fs::read_to_string(&metrics)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= 2 {
            break;
        }
        assert!(started.elapsed().as_secs() < 300, "training never started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "Ctrl-C must not report success:\n{t}");
    assert!(
        t.contains("interrupted at step") && t.contains("resumes"),
        "{t}"
    );
    let out = run_ok(dir, &["--quick", "-o", "c"]);
    assert!(out.contains("resuming from"), "{out}");
    assert!(
        result(&dir.join("c-quick")) == want,
        "run resumed after Ctrl-C differs from the uninterrupted one"
    );
}

/// With `[data] exemplars = true` the model is trained on prompts that
/// carry the training row they retrieve, and every generation path
/// (`irc eval`, `irc generate`, the samples at evaluations) conditions the
/// user's prompt the same way; what is shown and scored is the prompt the
/// user gave.
#[test]
fn exemplar_conditioned_run_trains_and_generates() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let src = SPEC
        .replace("mask_prompt = true", "mask_prompt = true\nexemplars = true")
        .replace("context = 128", "context = 384")
        .replace("seq_len = 128", "seq_len = 384")
        .replace("batch = 16", "batch = 4")
        .replace("steps = 60", "steps = 12")
        .replace("eval_samples = 0", "eval_samples = 1\neval_every = 12");
    write_spec(dir, &src);
    // Not --quick, which turns the samples at evaluations off.
    let out = run_ok(dir, &["-o", "run"]);
    let run = dir.join("run");
    let meta = json(&run.join("data/tokens.meta.json"));
    assert_eq!(meta["exemplars"], true, "{meta}");
    assert!(!out.contains("left out"), "rows fit in 384 tokens:\n{out}");
    // The model saw `<like>{pick}</like>{prompt}`: the held-out rows'
    // prompts in val.tok carry their picks.
    let tok = irc::tokenizer::Tokenizer::load(&run.join("data/tokenizer.json")).unwrap();
    let val = irc::data::prep::TokenSet::load(&run.join("data/val.tok")).unwrap();
    let first = &val.tokens[..val.rows[0].1 as usize];
    let prompt = String::from_utf8(tok.decode(first).unwrap()).unwrap();
    assert!(
        prompt.starts_with("<like>") && prompt.contains("</like>"),
        "{prompt}"
    );
    // Scored and shown under the user's prompt.
    let samples = json(&run.join("samples.json"));
    let prompts: Vec<&str> = samples
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts.len(), 16);
    assert!(prompts.iter().all(|p| !p.contains("<like>")), "{prompts:?}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("valid_svg_rate"), "{metrics}");
    let o = irc(
        &[
            "generate",
            "run",
            "--prompt",
            prompts[0],
            "--max-tokens",
            "8",
            "--temperature",
            "0",
        ],
        dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        !shown.contains("<like>"),
        "only the new text is printed: {shown}"
    );
    assert!(
        text(&o).contains("exemplar: the training drawing of ["),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_generate_and_eval_settings_name_their_line_and_field() {
    let d = tempfile::tempdir().unwrap();
    for (from, to, want) in [
        (
            "temperature = 0.7",
            "temperature = -1.0",
            "tiny.toml:29:15: [generate].temperature: -1 is out of range; expected a number ≥ 0",
        ),
        (
            "top_k = 40",
            "top_k = 40\ncandidates = 0",
            "tiny.toml:31:14: [generate].candidates: 0 is out of range; expected an integer ≥ 1",
        ),
        (
            "quick_samples = 16",
            "quick_samples = 0",
            "tiny.toml:35:17: [eval].quick_samples: 0 is out of range; expected an integer ≥ 1",
        ),
        (
            "top_k = 40",
            "top_kk = 40",
            "tiny.toml:30:1: [generate].top_kk: unknown field `top_kk`",
        ),
        (
            "synthetic = 600",
            "synthetic = -3",
            "tiny.toml:11:13: [data].synthetic:",
        ),
    ] {
        write_spec(d.path(), &SPEC.replace(from, to));
        let o = irc(&["run", "tiny.toml"], d.path());
        let t = text(&o);
        assert!(!o.status.success() && t.contains(want), "{to}: {t}");
        assert!(!d.path().join("runs").exists(), "{to}: nothing written");
    }
}

#[test]
fn sweep_varies_one_knob_at_a_time() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write_spec(dir, &SPEC.replace("steps = 60", "steps = 20"));
    let sweep = |extra: &[&str]| {
        let mut args = vec!["sweep", "tiny.toml", "-o", "sw", "--quick"];
        args.extend_from_slice(extra);
        irc(&args, dir)
    };
    let knobs = [
        "--set",
        "train.lr=4e-3",
        "--set",
        "generate.temperature=0.9,1.0",
    ];
    let o = sweep(&knobs);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let rows = json(&dir.join("sw/sweep.json"));
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["variant"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "baseline",
            "train.lr=0.004",
            "generate.temperature=0.9",
            "generate.temperature=1.0"
        ]
    );
    // Each variant is a run of its own; only the knob differs.
    let val = |i: usize| rows[i]["val_loss"].as_f64().unwrap();
    assert_eq!(val(0), val(2), "sampling does not change training");
    assert_ne!(val(0), val(1), "the learning rate does");
    let spec_of = |v: &str| {
        std::fs::read_to_string(dir.join(format!("sw/{v}-quick/build/spec.toml"))).unwrap()
    };
    assert!(spec_of("train.lr=0.004").contains("lr = 0.004"));
    assert!(spec_of("generate.temperature=0.9").contains("lr = 0.005"));
    assert!(
        t.contains("<- best val loss") && t.contains("valid SVG"),
        "{t}"
    );

    // Again: every stage of every variant is up to date.
    let t = text(&sweep(&knobs));
    assert!(!t.contains(" ran "), "{t}");

    // The same variants as 2 processes at a time, each its own `irc run`
    // with its output in a log: the same results (training is
    // deterministic for any thread count).
    let o = irc(
        &[
            &["sweep", "tiny.toml", "-o", "sj", "--quick", "--jobs", "2"],
            &knobs[..],
        ]
        .concat(),
        dir,
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let jobs = json(&dir.join("sj/sweep.json"));
    for (a, b) in rows.iter().zip(jobs.as_array().unwrap()) {
        assert_eq!(a["variant"], b["variant"]);
        assert_eq!(a["val_loss"], b["val_loss"], "{}", a["variant"]);
    }
    assert_eq!(
        t.matches(": done in ").count(),
        4,
        "a line as each ends:
{t}"
    );
    let log = std::fs::read_to_string(dir.join("sj/logs/train.lr=0.004.log")).unwrap();
    assert!(log.contains("train     ran"), "{log}");

    // One command line per variant for a scheduler, and the table merged
    // from the run folders they fill.
    let o = irc(
        &[
            &[
                "sweep",
                "tiny.toml",
                "-o",
                "sw",
                "--quick",
                "--print-commands",
            ],
            &knobs[..],
        ]
        .concat(),
        dir,
    );
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[1].contains(" run ") && lines[1].contains("--set train.lr=0.004 -o "),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.ends_with(" --quick")), "{lines:?}");
    let o = irc(
        &[
            &["sweep", "tiny.toml", "-o", "sw", "--quick", "--collect"],
            &knobs[..],
        ]
        .concat(),
        dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let merged = json(&dir.join("sw/sweep.json"));
    for (a, b) in rows.iter().zip(merged.as_array().unwrap()) {
        assert_eq!(a["val_loss"], b["val_loss"], "{}", a["variant"]);
    }

    // A knob the spec refuses is named, before anything runs.
    let o = sweep(&["--set", "model.heads=5"]);
    let t = text(&o);
    assert!(!o.status.success());
    assert!(
        t.contains("--set model.heads=5") && t.contains("heads"),
        "{t}"
    );
    let o = sweep(&["--set", "lr"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("expected KNOB=V1,V2"), "{}", text(&o));
}
