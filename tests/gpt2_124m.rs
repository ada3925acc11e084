//! The real GPT-2 small shape (models/gpt2-124m.toml, 124M parameters): it
//! builds, runs one forward with finite logits of the right shape, and its
//! first positions match the f64 reference interpreter.
//!
//! The interpreter runs a copy of the graph compiled for only the first
//! `PREFIX` positions (causal attention makes those logits independent of
//! later tokens), which keeps it to a few seconds instead of minutes.

mod common;
use common::*;
use irc::ir::{interpret, Real, Value};
use irc::spec::Target;
use std::collections::BTreeMap;
use std::time::Instant;

const PREFIX: usize = 8;

#[test]
fn gpt2_124m_forward_matches_interpreter() {
    let spec = spec("models/gpt2-124m.toml");
    let m = &spec.model;
    assert_eq!(
        (
            m.vocab_size,
            m.context,
            m.layers,
            m.d_model,
            m.heads,
            m.ffn_hidden
        ),
        (50257, 1024, 12, 768, 12, 3072)
    );
    let (b, t, v) = (spec.build.batch, spec.build.seq_len, m.vocab_size);

    let start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let built = build(&spec, Target::Native, dir.path());
    let n_params: usize = built
        .param_shapes()
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    assert_eq!(
        n_params, 124_439_808,
        "GPT-2 small has 124,439,808 parameters (tied head)"
    );
    let w = built.init_weights(124);
    println!("build + init: {:.1}s", start.elapsed().as_secs_f64());

    let tokens: Vec<i32> = (0..b * t).map(|i| ((i * 7919 + 13) % v) as i32).collect();
    let mut s = built.session(0).unwrap();
    s.load_weights(&w).unwrap();
    let start = Instant::now();
    let logits = s.forward(&tokens, b, t).unwrap();
    println!("forward {b}x{t}: {:.2}s", start.elapsed().as_secs_f64());
    assert_eq!(logits.len(), b * t * v);
    assert!(logits.iter().all(|x| x.is_finite()), "non-finite logits");
    let spread = logits.iter().fold(0f32, |a, x| a.max(x.abs()));
    assert!(
        spread > 1e-3 && spread < 1e3,
        "implausible logits magnitude {spread}"
    );

    // A shorter forward is the prefix of the full one.
    let short = s.forward(&tokens[..PREFIX], 1, PREFIX).unwrap();
    let e = rel_err(&short, &logits[..PREFIX * v]);
    assert!(
        e <= 1e-5,
        "forward 1x{PREFIX} vs prefix of 1x{t}: rel err {e:e}"
    );

    // The interpreter on the graph for the first PREFIX positions.
    let start = Instant::now();
    let mut small = spec.clone();
    small.build.seq_len = PREFIX;
    small.build.batch = 1;
    let compiled = irc::driver::compile(&small, irc::model::program(&small)).unwrap();
    let mut feeds: BTreeMap<String, Value<f64>> = w
        .cast::<f64>()
        .into_iter()
        .map(|(k, v)| (k, Value::F(v)))
        .collect();
    feeds.insert("tokens".into(), Value::I(tokens[..PREFIX].to_vec()));
    feeds.insert("targets".into(), Value::I(tokens[1..=PREFIX].to_vec()));
    let g = &compiled.graph;
    let vals = interpret(g, &feeds).unwrap();
    let id = g.outputs().iter().find(|(n, _)| n == "logits").unwrap().1;
    let want: Vec<f32> = vals[&id]
        .f()
        .data
        .iter()
        .map(|x| x.to_f64() as f32)
        .collect();
    println!(
        "interpreter 1x{PREFIX}: {:.1}s",
        start.elapsed().as_secs_f64()
    );
    let e = rel_err(&logits[..PREFIX * v], &want);
    println!("logits vs interpreter: rel err {e:e}");
    assert!(e <= 1e-4, "logits vs f64 interpreter rel err {e:e}");
}
