//! Forward-pass benchmark: `cargo bench --bench forward [-- SPEC]`.
//!
//! Builds the spec (default models/bench-s.toml) cold into a fresh cache, then
//! again from the cache, and times the compiled forward on the spec's full
//! (batch, seq_len) with 1 and 2 threads, interleaved so both see the same
//! machine load. Prints medians and the 2-thread speed-up as a ratio.

use irc::model;
use irc::spec::Spec;
use std::path::PathBuf;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let arg = std::env::args().skip(1).find(|a| a.ends_with(".toml"));
    let path = PathBuf::from(arg.unwrap_or_else(|| "models/bench-s.toml".into()));
    let spec = Spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("IRC_CACHE", cache.path());
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let built = model::build(&spec, dir.path()).unwrap();
    let cold = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let built2 = model::build(&spec, dir.path()).unwrap();
    let cached = t0.elapsed().as_secs_f64();
    assert!(built2.cached);

    let (b, t) = (built.compiled.program.batch, built.compiled.program.seq);
    let w = built.init_weights(1);
    let tokens: Vec<i32> = (0..b * t)
        .map(|i| (i * 7 % spec.model.vocab_size) as i32)
        .collect();
    let mut s1 = built.session(1).unwrap();
    let mut s2 = built.session(2).unwrap();
    s1.load_weights(&w).unwrap();
    s2.load_weights(&w).unwrap();
    let (mut t1, mut t2) = (vec![], vec![]);
    for _ in 0..2 {
        s1.forward(&tokens, b, t).unwrap();
        s2.forward(&tokens, b, t).unwrap();
    }
    for _ in 0..10 {
        let x = Instant::now();
        s1.forward(&tokens, b, t).unwrap();
        t1.push(x.elapsed().as_secs_f64());
        let x = Instant::now();
        s2.forward(&tokens, b, t).unwrap();
        t2.push(x.elapsed().as_secs_f64());
    }
    let (m1, m2) = (median(t1), median(t2));
    let m = &spec.model;
    // Matmul FLOPs of the forward (2·tokens·params-in-matmuls + attention).
    let tok = (b * t) as f64;
    let c = m.d_model as f64;
    let per_layer = 2.0
        * tok
        * (c * (c + 2.0 * (m.kv_heads * m.head_dim()) as f64)
            + c * c
            + 2.0 * c * m.ffn_hidden as f64)
        + 2.0 * 2.0 * (b as f64) * (t as f64) * (t as f64) * c / 2.0;
    let flops = per_layer * m.layers as f64 + 2.0 * tok * c * m.vocab_size as f64;
    println!(
        "{}: target {}, batch {b} x seq {t}",
        path.display(),
        built.compiled.schedule.target.name()
    );
    println!(
        "build: cold {cold:.2}s, cached {cached:.3}s ({:.0}x faster)",
        cold / cached
    );
    println!(
        "forward: 1 thread {:.2} ms ({:.1} GFLOP/s), 2 threads {:.2} ms ({:.1} GFLOP/s); speed-up {:.2}x",
        m1 * 1e3,
        flops / m1 / 1e9,
        m2 * 1e3,
        flops / m2 / 1e9,
        m1 / m2
    );
}
