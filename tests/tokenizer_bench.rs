//! Timing of BPE training and encoding on a 20 MB corpus made from the
//! bundled icons (numbers re-drawn at random so words vary as in real data).
//! Ignored by default; run with
//! `cargo test --release --test tokenizer_bench -- --ignored --nocapture`.

use irc::data::{read_rows, row_samples};
use irc::tokenizer::{train::train, TokenizerConfig};
use std::time::Instant;

fn corpus_20mb() -> Vec<String> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/tabler/icons.jsonl");
    let base = row_samples(&read_rows(&p).unwrap());
    let num = regex::Regex::new(r"[0-9]+").unwrap();
    let mut rng = irc::util::Rng::new(1);
    let mut out = Vec::new();
    let mut size = 0;
    while size < 20 << 20 {
        for s in &base {
            let v = num
                .replace_all(s, |_: &regex::Captures| rng.below(1000).to_string())
                .into_owned();
            size += v.len();
            out.push(v);
        }
    }
    out
}

#[test]
#[ignore]
fn bench_train_and_encode_20mb() {
    let t0 = Instant::now();
    let samples = corpus_20mb();
    let bytes: usize = samples.iter().map(|s| s.len()).sum();
    println!(
        "corpus: {} samples, {:.1} MB (built in {:.2}s)",
        samples.len(),
        bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    for vocab in [1024, 4096] {
        let t = Instant::now();
        let (tok, st) = train(
            &samples,
            &TokenizerConfig {
                vocab_size: vocab,
                ..TokenizerConfig::default()
            },
        )
        .unwrap();
        let dt = t.elapsed().as_secs_f64();
        println!(
            "train vocab {vocab}: {dt:.2}s ({} merges, {} distinct words, {} ids)",
            st.merges,
            st.words,
            tok.vocab_size()
        );
        assert_eq!(tok.vocab_size(), vocab);
        let t = Instant::now();
        let ids = tok.encode_many(&samples, 2).unwrap();
        let dt = t.elapsed().as_secs_f64();
        let n: usize = ids.iter().map(Vec::len).sum();
        println!(
            "encode (2 threads): {:.1} MB/s, {:.2} M tokens/s, {:.2} bytes/token",
            bytes as f64 / 1e6 / dt,
            n as f64 / 1e6 / dt,
            bytes as f64 / n as f64
        );
        let t = Instant::now();
        let mut n1 = 0;
        for s in &samples[..samples.len() / 4] {
            n1 += tok.encode_str(s).unwrap().len();
        }
        let dt1 = t.elapsed().as_secs_f64();
        println!(
            "encode (1 thread, shared cache): {:.1} MB/s ({n1} tokens)",
            (bytes / 4) as f64 / 1e6 / dt1
        );
    }
}
