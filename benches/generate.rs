//! Generation benchmark: `cargo bench --bench generate [-- SPEC]`.
//!
//! Greedy generation of a whole context (default models/svg-small.toml, random
//! weights) on a batch-1 build, three ways side by side in one run: the
//! KV-cached programs (prefill once, then a decode step per token) with 1
//! and 2 threads, and full recomputation of the forward per token (what
//! generation did before the cache). Prints tokens/s, the ratios, and the
//! weight bytes a decode step streams per second.

use irc::model;
use irc::runtime::Session;
use irc::sample::SamplingConfig;
use irc::spec::Spec;
use std::path::PathBuf;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn full_recompute(s: &mut Session, prompt: &[i32], context: usize) -> usize {
    let v = s.library().vocab;
    let mut seq = prompt.to_vec();
    while seq.len() < context {
        let logits = s.forward(&seq, 1, seq.len()).unwrap();
        let last = &logits[(seq.len() - 1) * v..];
        seq.push((0..v).fold(0, |b, i| if last[i] > last[b] { i } else { b }) as i32);
    }
    seq.len() - prompt.len()
}

fn main() {
    let arg = std::env::args().skip(1).find(|a| a.ends_with(".toml"));
    let path = PathBuf::from(arg.unwrap_or_else(|| "models/svg-small.toml".into()));
    let mut spec = Spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
    spec.build.batch = 1;
    spec.build.seq_len = spec.model.context;
    let context = spec.model.context;
    let dir = tempfile::tempdir().unwrap();
    let built = model::build(&spec, dir.path()).unwrap();
    let w = built.init_weights(1);
    let mut sessions: Vec<Session> = [1, 2]
        .iter()
        .map(|&t| {
            let mut s = built.session(t).unwrap();
            s.load_weights(&w).unwrap();
            s
        })
        .collect();
    let prompt = vec![1, 2, 3, 4];
    let greedy = SamplingConfig::greedy();
    let (mut kv1, mut kv2, mut full) = (vec![], vec![], vec![]);
    for round in 0..4 {
        for (i, times) in [&mut kv1, &mut kv2].into_iter().enumerate() {
            let x = Instant::now();
            let n = sessions[i]
                .generate(&prompt, &greedy, usize::MAX, None)
                .unwrap()
                .len();
            times.push(n as f64 / x.elapsed().as_secs_f64());
        }
        let x = Instant::now();
        let n = full_recompute(&mut sessions[0], &prompt, context);
        if round > 0 {
            // (round 0 warms up every path)
            full.push(n as f64 / x.elapsed().as_secs_f64());
        }
    }
    kv1.remove(0);
    kv2.remove(0);
    let (k1, k2, f1) = (median(kv1), median(kv2), median(full));
    let weight_bytes = 4.0 * built.compiled.memory.param_floats as f64;
    println!(
        "{}: target {}, {} tokens of context, {:.1}M parameters",
        path.display(),
        built.compiled.schedule.target.name(),
        context,
        built.compiled.memory.param_floats as f64 / 1e6
    );
    println!(
        "KV cache, 1 thread: {k1:.0} tokens/s ({:.1} GB/s of weights); 2 threads: {k2:.0} tokens/s ({:.2}x)",
        k1 * weight_bytes / 1e9,
        k2 / k1
    );
    println!(
        "full recompute, 1 thread: {f1:.0} tokens/s; the cache is {:.1}x faster on 1 thread",
        k1 / f1
    );
}
