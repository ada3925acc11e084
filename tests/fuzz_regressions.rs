//! The fuzz targets (`fuzz/`, run with cargo-fuzz on nightly) on stable:
//! every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! goes through the same entry function (`irc::fuzzing`), which must
//! return (an error is fine) without a panic. The C safetensors reader's
//! harness (`fuzz/c/safetensors.c`) is compiled with the system C compiler
//! (with AddressSanitizer and UBSan when it has them) and replays its
//! folders the same way.

mod common;

use std::path::PathBuf;

fn files(target: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    for kind in ["corpus", "regressions"] {
        let dir = common::root().join("fuzz").join(kind).join(target);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            out.extend(rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    out.sort();
    out
}

#[test]
fn every_target_has_a_seed_corpus() {
    for (name, _) in irc::fuzzing::TARGETS {
        let dir = common::root().join("fuzz/corpus").join(name);
        let n = std::fs::read_dir(&dir)
            .map(|d| d.count())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(n > 0, "{} is empty", dir.display());
        let target = common::root().join(format!("fuzz/fuzz_targets/{name}.rs"));
        assert!(target.exists(), "no fuzz target {}", target.display());
    }
}

#[test]
fn corpus_and_regressions_run_without_a_panic() {
    let mut ran = 0;
    for (name, entry) in irc::fuzzing::TARGETS {
        for f in files(name) {
            let bytes = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| entry(&bytes));
            assert!(
                r.is_ok(),
                "fuzz target `{name}` panicked on {}",
                f.display()
            );
            ran += 1;
        }
    }
    assert!(ran >= 12, "only {ran} inputs");
}

/// The seeds are what they claim: the valid ones load.
#[test]
fn the_valid_seeds_load() {
    let root = common::root().join("fuzz/corpus");
    let table = irc::fuzzing::table();
    let c =
        irc::train::checkpoint::read(&root.join("checkpoint/step-7.safetensors"), &table).unwrap();
    assert_eq!(c.step, 7);
    let w = irc::runtime::Weights::load(&root.join("weights/ok.safetensors")).unwrap();
    w.check_against(&table).unwrap();
    irc::tokenizer::Tokenizer::load(&root.join("tokenizer/tok-ascii.json")).unwrap();
    irc::data::prep::TokenSet::load(&root.join("tokens/train.tok")).unwrap();
    irc::spec::Spec::load(&root.join("spec/tiny-gpt2.toml")).unwrap();
}

/// The C harness replays the C reader's corpus and regressions.
#[test]
fn c_safetensors_reader_replays_its_corpus() {
    if !common::runs("cc") {
        eprintln!("no C compiler: skipped");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let exe = d.path().join("st-replay");
    let root = common::root();
    let compile = |extra: &[&str]| {
        std::process::Command::new("cc")
            .args([
                "-std=c11",
                "-O1",
                "-g",
                "-DIRC_FUZZ_MAIN",
                "-Wall",
                "-Werror",
            ])
            .args(extra)
            .arg("-I")
            .arg(root.join("runtime-c"))
            .arg(root.join("fuzz/c/safetensors.c"))
            .arg("-o")
            .arg(&exe)
            .output()
            .unwrap()
    };
    // With the sanitizers when this compiler has their runtimes.
    let sanitized = compile(&["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
        .status
        .success();
    if !sanitized {
        let o = compile(&[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let inputs = files("c_safetensors");
    assert!(inputs.len() >= 3);
    let o = std::process::Command::new(&exe)
        .args(&inputs)
        .env("ASAN_OPTIONS", "detect_leaks=1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the C reader failed on its corpus (sanitizers: {sanitized}):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What the regressions found is refused with a clear message.
#[test]
fn regressions_are_clear_errors() {
    let reg = common::root().join("fuzz/regressions");
    let spec = reg.join("spec/train-seq-len-past-context.toml");
    let err = irc::spec::Spec::load(&spec).unwrap_err().to_string();
    assert!(
        err.contains("train-seq-len-past-context.toml:11:1: [train].seq_len")
            && err.contains("32 exceeds [model].context = 16"),
        "{err}"
    );
    for (file, want) in [
        ("tokenizer/oom-huge-special-id.json", "past the"),
        ("tokenizer/overflow-max-special-id.json", "past the"),
        ("tokenizer/truncated-special-id.json", "past the"),
    ] {
        let err = irc::tokenizer::Tokenizer::load(&reg.join(file))
            .err()
            .unwrap_or_else(|| panic!("{file} loaded"))
            .to_string();
        assert!(err.contains(want), "{file}: {err}");
    }
    for (file, want) in [
        (
            "tokens/eos-outside-vocab.tok",
            "<eos> id 4 is outside the vocab",
        ),
        (
            "tokens/pad-outside-vocab.tok",
            "<pad> id 9 is outside the vocab",
        ),
    ] {
        let err = irc::data::prep::TokenSet::load(&reg.join(file))
            .err()
            .unwrap_or_else(|| panic!("{file} loaded"))
            .to_string();
        assert!(err.contains(want), "{file}: {err}");
    }
}
