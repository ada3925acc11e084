//! `irc bench` end to end on the tiny models, one round: every row and
//! field is there and holds a measured figure (never a timing threshold:
//! a benchmark, not a test of speed), numpy's and PyTorch's columns say
//! "not importable" when the Python has neither, and run (PyTorch on the
//! same model: the same first loss as irc) when it has them.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn irc(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irc"))
        .args(args)
        .current_dir(cwd)
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

fn model(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    p.to_str().unwrap().to_string()
}

/// `irc bench` of both tiny models, one round of one step, with `python`;
/// its JSON and its table.
fn bench(python: &str) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let (g, l) = (model("tiny-gpt2.toml"), model("tiny-llama.toml"));
    let o = irc(
        &[
            "bench",
            &g,
            &l,
            "--threads",
            "1,2",
            "--repeats",
            "1",
            "--steps",
            "1",
            "--json",
            "b.json",
            "--python",
            python,
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("b.json")).unwrap()).unwrap();
    (v, String::from_utf8_lossy(&o.stdout).to_string())
}

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what}: {x}");
    x
}

/// Median, min and max of `n` processes' figures.
fn stats_of(v: &Value, what: &str, n: u64) {
    for k in ["median", "min", "max"] {
        positive(&v[k], &format!("{what}.{k}"));
    }
    assert!(v["min"].as_f64() <= v["median"].as_f64() && v["median"].as_f64() <= v["max"].as_f64());
    assert_eq!(v["n"], n, "{what}: {n} processes");
}

/// One round: one process's figure.
fn stats(v: &Value, what: &str) {
    stats_of(v, what, 1);
}

/// The rows of irc's own figures, whatever the Python has.
fn check_irc_rows(v: &Value) {
    assert_eq!(v["threads"], serde_json::json!([1, 2]));
    let targets = v["targets"].as_array().unwrap();
    assert_eq!(
        targets.len(),
        1,
        "both tiny models build for the native target"
    );
    let t = &targets[0];
    let peak_threads: Vec<u64> = t["peak"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            // Each GEMM process measures the peak of 1 thread, of its own
            // count and of every core: two of them a round.
            stats_of(&p["gflops"], "peak", 2);
            p["threads"].as_u64().unwrap()
        })
        .collect();
    assert!(
        peak_threads.contains(&1) && peak_threads.contains(&2),
        "{peak_threads:?}"
    );
    let rows = t["gemm"].as_array().unwrap();
    for r in rows {
        stats(&r["irc"], "gemm irc");
        positive(&r["pct_of_peak"], "gemm %peak");
    }
    // 1024³ plain and B transposed, on both thread counts.
    let squares = rows
        .iter()
        .filter(|r| r["used_by"][0] == "1024³" && r["shape"]["m"] == 1024)
        .count();
    assert_eq!(squares, 4);
    // The training programs' GEMMs: forward, dX (B transposed) and dW
    // (A transposed, accumulating into the gradient) of both models.
    for name in ["tiny_gpt2", "tiny_llama"] {
        let of: Vec<&Value> = rows
            .iter()
            .filter(|r| {
                r["used_by"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|u| u.as_str().unwrap().starts_with(&format!("{name}: ")))
            })
            .map(|r| &r["shape"])
            .collect();
        assert!(
            of.iter()
                .any(|s| s["accumulate"] == true && s["trans_a"] == true),
            "{name}: no dW"
        );
        assert!(
            of.iter()
                .any(|s| s["trans_b"] == true && s["accumulate"] == false),
            "{name}: no dX"
        );
        assert!(
            of.iter()
                .any(|s| s["trans_a"] == false && s["trans_b"] == false),
            "{name}: no forward"
        );
    }
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        assert_eq!(m["dtype"], "f32");
        assert_eq!(m["target"], t["target"]);
        for k in ["params", "step_gflop", "build_cold_s", "build_cached_s"] {
            positive(&m[k], k);
        }
        let rows = m["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "a row per thread count");
        for r in rows {
            stats(&r["step_ms"], "step");
            stats(&r["forward_ms"], "forward");
            stats(&r["decode_tokens_per_s"], "decode");
            for k in [
                "tokens_per_s",
                "pct_of_peak",
                "rss_mb",
                "loss0",
                "forward_tokens_per_s",
                "decode_rss_mb",
                "infer_rss_mb",
            ] {
                positive(&r[k], k);
            }
        }
        // The same spec built with q8_0 and bf16 weights: their decode rows.
        let packed: Vec<&str> = m["packed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let rows = p["rows"].as_array().unwrap();
                assert_eq!(rows.len(), 2, "a decode row per thread count");
                for r in rows {
                    stats(&r["decode_tokens_per_s"], "packed decode");
                    positive(&r["decode_rss_mb"], "packed decode_rss_mb");
                }
                p["weights"].as_str().unwrap()
            })
            .collect();
        assert_eq!(packed, ["q8_0", "bf16"], "{}", m["name"]);
    }
}

#[test]
fn without_numpy_or_torch_their_columns_say_not_importable() {
    let (v, table) = bench("/nonexistent/python3");
    check_irc_rows(&v);
    assert!(
        v["numpy"].as_str().unwrap().starts_with("not importable"),
        "{}",
        v["numpy"]
    );
    assert!(
        v["torch"].as_str().unwrap().starts_with("not importable"),
        "{}",
        v["torch"]
    );
    for r in v["targets"][0]["gemm"].as_array().unwrap() {
        assert!(r["numpy"]["missing"]
            .as_str()
            .unwrap()
            .starts_with("not importable"));
        assert!(r["ratio"].is_null());
    }
    for m in v["models"].as_array().unwrap() {
        for r in m["rows"].as_array().unwrap() {
            assert!(r["torch"]["missing"]
                .as_str()
                .unwrap()
                .starts_with("not importable"));
            assert!(r["ratio"].is_null());
        }
    }
    for section in [
        "fp32 FMA peak",
        "sgemm GFLOP/s",
        "training step",
        "forward and decode",
        "not importable",
        "tiny_gpt2 q8_0",
        "tiny_llama bf16",
    ] {
        assert!(table.contains(section), "no `{section}` in\n{table}");
    }
}

/// With `IRC_PYTHON` (else python3): numpy's and PyTorch's columns are
/// measured if that Python imports them, else say why not; PyTorch's
/// first loss is irc's (the same model, weights and tokens).
#[test]
fn numpy_and_torch_columns_run_when_importable() {
    let python: PathBuf = std::env::var_os("IRC_PYTHON")
        .filter(|p| !p.is_empty())
        .map_or_else(|| "python3".into(), PathBuf::from);
    let (v, _) = bench(python.to_str().unwrap());
    check_irc_rows(&v);
    let numpy = !v["numpy"].as_str().unwrap().starts_with("not importable");
    for r in v["targets"][0]["gemm"].as_array().unwrap() {
        if numpy {
            stats(&r["numpy"], "numpy");
            positive(&r["ratio"], "gemm ratio");
        } else {
            assert!(r["numpy"]["missing"].is_string());
        }
    }
    let torch = !v["torch"].as_str().unwrap().contains("not importable");
    if !numpy || !torch {
        eprintln!(
            "SKIPPED in part: {} cannot import numpy and torch (set IRC_PYTHON)",
            python.display()
        );
    }
    for m in v["models"].as_array().unwrap() {
        for r in m["rows"].as_array().unwrap() {
            if torch {
                let p = &r["torch"];
                stats(&p["step_ms"], "torch step");
                positive(&r["ratio"], "step ratio");
                let (a, b) = (
                    positive(&r["loss0"], "loss0"),
                    positive(&p["loss0"], "torch loss0"),
                );
                assert!(
                    (a - b).abs() <= 1e-4 * a,
                    "{}: irc's first loss {a}, PyTorch's {b}",
                    m["name"]
                );
            } else {
                assert!(r["torch"]["missing"].is_string());
            }
        }
    }
}

#[test]
fn flags_are_range_checked() {
    let dir = tempfile::tempdir().unwrap();
    let g = model("tiny-gpt2.toml");
    for (args, want) in [
        (
            vec!["--repeats", "0"],
            "--repeats: 0 is out of range; expected an integer ≥ 1",
        ),
        (
            vec!["--steps", "-1"],
            "--steps: \"-1\" is not a non-negative integer",
        ),
        (
            vec!["--threads", "1,999"],
            "--threads: 999 is out of range; expected 0 (one per core) to 256",
        ),
    ] {
        let mut a = vec!["bench", g.as_str()];
        a.extend(args);
        let o = irc(&a, dir.path());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(want), "{}", text(&o));
    }
    let o = irc(&["bench", "nope.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("nope.toml: cannot read spec"),
        "{}",
        text(&o)
    );
    // No SPEC outside the source folder: the bench models are not there.
    let o = irc(&["bench"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("models/bench-s.toml: not found"),
        "{}",
        text(&o)
    );
}
