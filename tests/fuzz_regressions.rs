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

/// A brief mutation fuzz on stable, so CI fuzzes every reader on each run:
/// each seed of `fuzz/corpus/<target>/` is mutated the way libFuzzer's
/// basic mutators do (bit flips, interesting bytes, inserted, erased and
/// repeated spans, splices with another seed, truncation) and fed to the
/// target's entry. Deterministic: `IRC_FUZZ_SEED` picks another sequence,
/// `IRC_FUZZ_ITERS` (default 3,000 a target) runs longer.
#[test]
fn brief_mutations_of_every_seed_run_without_a_panic() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let iters = env("IRC_FUZZ_ITERS", 3000);
    let mut rng = Mutator(env("IRC_FUZZ_SEED", 0x1c0ffee) | 1);
    for (name, entry) in irc::fuzzing::TARGETS {
        let seeds: Vec<Vec<u8>> = files(name)
            .iter()
            .map(|f| std::fs::read(f).unwrap())
            .collect();
        assert!(!seeds.is_empty(), "{name}: no seeds");
        for i in 0..iters {
            let mut input = seeds[i as usize % seeds.len()].clone();
            let other = &seeds[rng.below(seeds.len())];
            for _ in 0..1 + rng.below(4) {
                rng.mutate(&mut input, other);
            }
            let r = std::panic::catch_unwind(|| entry(&input));
            if r.is_err() {
                let kept = std::env::temp_dir().join(format!("irc-fuzz-{name}-{i}"));
                std::fs::write(&kept, &input).unwrap();
                panic!(
                    "fuzz target `{name}` panicked; input kept in {}",
                    kept.display()
                );
            }
        }
    }
}

/// xorshift64: a fixed sequence of mutations for a given seed.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn mutate(&mut self, b: &mut Vec<u8>, other: &[u8]) {
        const INTERESTING: [u8; 12] = [
            0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'-', b'.', b'"', b'{', b'\n',
        ];
        let at = self.below(b.len() + 1);
        match self.next() % 7 {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] ^= 1 << self.below(8);
            }
            1 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] = INTERESTING[self.below(INTERESTING.len())];
            }
            2 => b.insert(at, self.next() as u8),
            3 => {
                let n = self.below(16).min(b.len() - at);
                b.drain(at..at + n);
            }
            4 => {
                let n = self.below(32).min(b.len() - at);
                let span = b[at..at + n].to_vec();
                for _ in 0..1 + self.below(8) {
                    b.splice(at..at, span.iter().copied());
                }
            }
            5 if !other.is_empty() => {
                let from = self.below(other.len());
                let n = self.below(64).min(other.len() - from);
                b.splice(at..at, other[from..from + n].iter().copied());
            }
            _ => b.truncate(at),
        }
    }
}
