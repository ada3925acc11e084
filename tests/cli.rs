//! The `irc` binary end to end: build, inspect (text and HTML), init,
//! forward --check, and clean failures on bad input.

use std::path::Path;
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

#[test]
fn build_inspect_init_forward() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-llama.toml");
    let spec = spec.to_str().unwrap();
    let o = irc(&["build", spec, "-o", "b"], d);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "model.c",
        "irc_model.h",
        "libirc_model.so",
        "libirc_model.a",
        "inspect.json",
        "manifest.json",
    ] {
        assert!(d.join("b").join(f).is_file(), "missing {f}");
    }
    // A second build of the same spec comes from the cache.
    let o = irc(&["build", spec, "-o", "b"], d);
    assert!(text(&o).contains("cached"), "{}", text(&o));

    let o = irc(&["inspect", "b"], d);
    let t = text(&o);
    assert!(o.status.success());
    for want in [
        "kernels",
        "attention",
        "add+norm",
        "memory plan",
        "model.layers.0.self_attn.q_proj.weight",
    ] {
        assert!(t.contains(want), "inspect lacks {want}:\n{t}");
    }
    let o = irc(&["inspect", "b", "--html"], d);
    let html = String::from_utf8(o.stdout).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg") && html.contains("attention")
    );
    assert!(
        !html.contains("http://")
            || html
                .matches("http://")
                .all(|_| html.contains("xmlns=\"http://www.w3.org/2000/svg\""))
    );

    let o = irc(&["init", spec, "-o", "w.safetensors", "--seed", "3"], d);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(d.join("t.txt"), "1 2 3 4 5\n6,7,8,9,10\n11 12 13 14 15\n").unwrap();
    let o = irc(
        &[
            "forward",
            spec,
            "--weights",
            "w.safetensors",
            "--tokens",
            "t.txt",
            "-o",
            "l.safetensors",
            "--build-dir",
            "b",
            "--check",
        ],
        d,
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("max relative error"), "{t}");
    let w = irc::runtime::Weights::load(&d.join("l.safetensors")).unwrap();
    assert_eq!(w.get("logits").unwrap().shape, vec![3, 5, 96]);
}

#[test]
fn bad_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-gpt2.toml");
    let spec = spec.to_str().unwrap();
    std::fs::write(d.join("bad.toml"), "[model]\nfamily = \"gpt2\"\nvocab_size = 96\ncontext = 8\nlayers = 1\nd_model = 64\nheads = 5\n").unwrap();
    let o = irc(&["build", "bad.toml"], d);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("bad.toml:7:9: [model].heads: 5 heads do not divide d_model = 64"),
        "{}",
        text(&o)
    );

    let o = irc(&["init", spec, "-o", "w.safetensors"], d);
    assert!(o.status.success());
    // Token out of range, ragged rows, non-numbers: errors, not panics.
    for (tokens, want) in [
        ("1 2 300\n", "outside the vocabulary"),
        ("1 2 3\n4 5\n", "same length"),
        ("1 x 3\n", "t.txt:1: `x` is not a token id"),
    ] {
        std::fs::write(d.join("t.txt"), tokens).unwrap();
        let o = irc(
            &[
                "forward",
                spec,
                "--weights",
                "w.safetensors",
                "--tokens",
                "t.txt",
                "-o",
                "l.safetensors",
                "--build-dir",
                "b",
            ],
            d,
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(want), "want {want}: {}", text(&o));
        assert!(!text(&o).contains("panicked"));
    }
    // Weights of the wrong model are refused with the names that do not fit.
    let llama = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-llama.toml");
    let o = irc(
        &["init", llama.to_str().unwrap(), "-o", "llama.safetensors"],
        d,
    );
    assert!(o.status.success());
    std::fs::write(d.join("t.txt"), "1 2 3\n").unwrap();
    let o = irc(
        &[
            "forward",
            spec,
            "--weights",
            "llama.safetensors",
            "--tokens",
            "t.txt",
            "-o",
            "l.safetensors",
            "--build-dir",
            "b",
        ],
        d,
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        t.contains("missing `transformer.wte.weight`")
            && t.contains("unexpected tensor `model.embed_tokens.weight`"),
        "{t}"
    );
    // A failed run leaves no output file behind.
    assert!(!d.join("l.safetensors").exists());
}

/// `irc build` writes irc-<name>.pc; a host links through pkg-config alone.
#[test]
fn pkg_config_links_a_host() {
    if Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: pkg-config is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-llama.toml");
    let o = irc(&["build", spec.to_str().unwrap(), "-o", "b"], d);
    assert!(o.status.success(), "{}", text(&o));
    assert!(d.join("b/irc-tiny_llama.pc").is_file());
    std::fs::write(
        d.join("host.c"),
        "#include <stdio.h>\n#include \"irc_model.h\"\nint main(void) {\n  irc_tiny_llama *m = irc_tiny_llama_create(1);\n  int32_t t[3] = {1, 2, 3};\n  static float l[3 * IRC_TINY_LLAMA_VOCAB];\n  int st = irc_tiny_llama_forward(m, t, 1, 3, l);\n  printf(\"%d %d\\n\", st, irc_tiny_llama_param_count());\n  irc_tiny_llama_destroy(m);\n  return st;\n}\n",
    )
    .unwrap();
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "irc-tiny_llama"])
        .env("PKG_CONFIG_PATH", d.join("b"))
        .output()
        .unwrap();
    assert!(
        flags.status.success(),
        "{}",
        String::from_utf8_lossy(&flags.stderr)
    );
    let flags = String::from_utf8(flags.stdout).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let o = Command::new(&cc)
        .arg("host.c")
        .args(flags.split_whitespace())
        .args(["-o", "host"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new(d.join("host")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0 21");
}
