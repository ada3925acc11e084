//! `irc train` end to end: the loss falls and memorizes a small text,
//! resume reproduces an uninterrupted run exactly, a blow-up stops with a
//! precise message and keeps the last good checkpoint, `irc grad` writes
//! every gradient.

use irc::spec::Spec;
use irc::train::{train, TrainOptions};
use std::path::Path;

const TEXT: &str = "the quick brown fox jumps over the lazy dog\n\
pack my box with five dozen liquor jugs\n\
how vexingly quick daft zebras jump\n\
sphinx of black quartz judge my vow\n";

fn spec(dir: &Path, train: &str) -> Spec {
    std::fs::write(
        dir.join("corpus.txt"),
        TEXT.repeat(3)
            .lines()
            .enumerate()
            .map(|(i, l)| format!("{l} {i}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let src = format!(
        "[model]\nname='tt'\nfamily='gpt2'\nvocab_size=300\ncontext=32\nlayers=2\nd_model=32\nheads=2\n\
         [data]\nsource=['corpus.txt']\nformat='text'\npacking='stream'\nval_ratio=0.2\nseed=3\n\
         [tokenizer]\nvocab_size=300\n\
         [train]\nbatch=4\nseq_len=32\n{train}\n"
    );
    let p = dir.join("tt.toml");
    std::fs::write(&p, &src).unwrap();
    Spec::load(&p).unwrap()
}

fn opts(dir: &Path) -> TrainOptions {
    TrainOptions {
        out: Some(dir.join("run")),
        quiet: true,
        ..Default::default()
    }
}

#[test]
fn overfits_a_small_text() {
    let d = tempfile::tempdir().unwrap();
    let s = spec(
        d.path(),
        "steps=150\nlr=1e-2\nwarmup=10\nweight_decay=0.0\nmin_lr=1e-3\neval_every=50",
    );
    let sum = train(&s, &opts(d.path())).unwrap();
    let (first, last) = (sum.losses[0], *sum.losses.last().unwrap());
    println!("loss {first} -> {last}");
    assert!(
        first > 4.0,
        "an untrained model should be near ln(vocab): {first}"
    );
    assert!(last < 0.15, "did not memorize: final train loss {last}");
    let metrics = std::fs::read_to_string(d.path().join("run/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 150);
    let line: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    for k in [
        "step",
        "train_loss",
        "val_loss",
        "lr",
        "grad_norm",
        "tokens_per_s",
        "valid_svg_rate",
    ] {
        assert!(line.get(k).is_some(), "metrics lack {k}: {line}");
    }
}

#[test]
fn resume_gives_the_same_losses() {
    let recipe = "steps=20\nlr=3e-3\nwarmup=3\ngrad_accum=2\ncheckpoint_every=5\neval_every=10";
    let a = tempfile::tempdir().unwrap();
    let full = train(&spec(a.path(), recipe), &opts(a.path())).unwrap();
    assert_eq!(full.losses.len(), 20);

    let b = tempfile::tempdir().unwrap();
    let s = spec(b.path(), recipe);
    let first = train(
        &s,
        &TrainOptions {
            stop_after: Some(8),
            ..opts(b.path())
        },
    )
    .unwrap();
    assert_eq!(first.steps, 8);
    let rest = train(
        &s,
        &TrainOptions {
            resume: Some(b.path().join("run")),
            ..opts(b.path())
        },
    )
    .unwrap();
    assert_eq!(rest.steps, 20);
    let resumed: Vec<u32> = first
        .losses
        .iter()
        .chain(&rest.losses)
        .map(|l| l.to_bits())
        .collect();
    let straight: Vec<u32> = full.losses.iter().map(|l| l.to_bits()).collect();
    assert_eq!(
        resumed, straight,
        "resumed losses differ from the uninterrupted run"
    );
    // The metrics file tells one continuous story.
    let m = std::fs::read_to_string(b.path().join("run/metrics.jsonl")).unwrap();
    let steps: Vec<u64> = m
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, (1..=20).collect::<Vec<_>>());
}

#[test]
fn non_finite_loss_stops_with_the_step_and_tensor() {
    let d = tempfile::tempdir().unwrap();
    let s = spec(
        d.path(),
        "steps=50\nlr=1e12\nclip=0.0\nweight_decay=0.0\ncheckpoint_every=1",
    );
    let err = train(&s, &opts(d.path())).unwrap_err().to_string();
    assert!(err.starts_with("step "), "{err}");
    assert!(
        err.contains("not finite") || err.contains("loss is"),
        "{err}"
    );
    assert!(err.contains("latest.safetensors"), "{err}");
    // The last good checkpoint still loads and holds finite weights.
    let w = irc::runtime::Weights::load(&d.path().join("run/latest.safetensors")).unwrap();
    assert!(w
        .tensors
        .values()
        .all(|t| t.data.iter().all(|x| x.is_finite())));
}

#[test]
fn grad_command_writes_every_gradient() {
    let d = tempfile::tempdir().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-llama.toml");
    let irc = env!("CARGO_BIN_EXE_irc");
    let run = |args: &[&str]| {
        std::process::Command::new(irc)
            .args(args)
            .current_dir(d.path())
            .output()
            .unwrap()
    };
    assert!(
        run(&["init", spec.to_str().unwrap(), "-o", "w.safetensors"])
            .status
            .success()
    );
    std::fs::write(d.path().join("x.txt"), "1 2 3 4\n5 6 7 8\n").unwrap();
    std::fs::write(d.path().join("y.txt"), "2 3 4 -100\n6 7 8 9\n").unwrap();
    let o = run(&[
        "grad",
        spec.to_str().unwrap(),
        "--weights",
        "w.safetensors",
        "--tokens",
        "x.txt",
        "--targets",
        "y.txt",
        "-o",
        "g.safetensors",
        "--build-dir",
        "b",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let loss: f32 = out
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("loss ")
        .parse()
        .unwrap();
    assert!(
        (loss - (96f32).ln()).abs() < 0.05,
        "fresh init loss {loss} should be near ln 96"
    );
    let g = irc::runtime::Weights::load(&d.path().join("g.safetensors")).unwrap();
    assert_eq!(g.tensors.len(), 21 + 1);
    assert!(g
        .get("model.layers.1.mlp.down_proj.weight")
        .unwrap()
        .data
        .iter()
        .any(|&x| x != 0.0));
}

#[test]
fn generate_eval_and_report_on_a_trained_run() {
    let d = tempfile::tempdir().unwrap();
    let s = spec(d.path(), "steps=40\nlr=1e-2\nwarmup=5");
    train(&s, &opts(d.path())).unwrap();
    let run = d.path().join("run");
    let mut m = irc::generate::open_run(&run, 1).unwrap();
    let greedy = irc::sample::SamplingConfig {
        seed: 1,
        ..irc::sample::SamplingConfig::greedy()
    };
    let mut streamed = String::new();
    let a = m
        .generate("the quick", &greedy, 20, |p| streamed.push_str(p))
        .unwrap();
    let b = m.generate("the quick", &greedy, 20, |_| {}).unwrap();
    assert!(!a.tokens.is_empty());
    assert_eq!(a.tokens, b.tokens, "greedy generation is deterministic");
    assert_eq!(streamed, a.text, "the streamed pieces make up the text");
    let r = irc::evaluate::eval_run(&run, 2, &greedy, 16, 1).unwrap();
    assert!(r.val_loss.is_some_and(|v| v.is_finite()));
    assert!(run.join("eval.json").is_file() && run.join("samples.json").is_file());
    irc::report::report_run(&run, &run.join("report.html")).unwrap();
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("val loss"),
        "report lacks curves or the eval table"
    );
}
