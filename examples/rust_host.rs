//! A Rust host: build a spec into a library, initialize weights, run the
//! forward pass, and decode a few tokens greedily, all through irc's Rust API.
//!
//!     cargo run --release --example rust_host [SPEC] [N_NEW]
//!
//! (default models/tiny-llama.toml, 8 new tokens; the build goes to
//! build/examples/<name>).

use irc::model;
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

    let vocab = spec.model.vocab_size;
    let mut ids: Vec<i32> = vec![1, 2, 3];
    for _ in 0..steps {
        if ids.len() >= spec.build.seq_len {
            break;
        }
        let t = ids.len();
        let logits = session.forward(&ids, 1, t)?; // (1, t, V): full recompute
        let last = &logits[(t - 1) * vocab..t * vocab];
        let best = (0..vocab).fold(0, |b, v| if last[v] > last[b] { v } else { b });
        println!("step {}: token {best} logit {:.6}", t + 1, last[best]);
        ids.push(best as i32);
    }
    println!("ids: {ids:?}");
    Ok(())
}
