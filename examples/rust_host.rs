//! A Rust host: build a spec into a library, initialize weights, run the
//! forward pass, and generate a few tokens greedily through the key/value
//! cache, all through irc's Rust API.
//!
//!     cargo run --release --example rust_host [SPEC] [N_NEW]
//!
//! (default models/tiny-llama.toml, 8 new tokens; the build goes to
//! build/examples/<name>).

use irc::model;
use irc::sample::SamplingConfig;
use irc::spec::Spec;
use std::path::PathBuf;

fn main() -> irc::Result<()> {
    let mut args = std::env::args().skip(1);
    let spec_path = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "models/tiny-llama.toml".into()),
    );
    let steps: usize = args
        .next()
        .map_or(8, |s| s.parse().expect("N_NEW: a number"));

    let spec = Spec::load(&spec_path)?;
    let dir = PathBuf::from("build/examples").join(&spec.model.name);
    let built = model::build(&spec, &dir)?;
    println!(
        "built {} into {} ({})",
        spec.model.name,
        dir.display(),
        if built.cached { "cached" } else { "compiled" }
    );

    let mut session = built.session(0)?; // 0: the spec's thread count
    session.load_weights(&built.init_weights(1))?;

    // One forward over a batch: logits (1, t, V).
    let prompt: Vec<i32> = vec![1, 2, 3];
    let vocab = spec.model.vocab_size;
    let logits = session.forward(&prompt, 1, prompt.len())?;
    let last = &logits[(prompt.len() - 1) * vocab..];
    let best = (0..vocab).fold(0, |b, v| if last[v] > last[b] { v } else { b });
    println!(
        "forward: the most likely next token is {best} (logit {:.6})",
        last[best]
    );

    // Generation through the key/value cache: the prompt is prefilled once,
    // then each token is one decode step. Greedy here; set a temperature,
    // top-k, top-p and seed to sample.
    let new = session.generate(&prompt, &SamplingConfig::greedy(), steps, None)?;
    let mut ids = prompt.clone();
    ids.extend(&new);
    println!("ids: {ids:?}");
    Ok(())
}
