//! KV-cached generation: prefill once, then one decode step per token. It
//! must give the tokens (and, within float rounding, the logits) of full
//! recomputation, on every SIMD path this machine runs, for both families;
//! and the step programs must mean the forward, checked in the f64
//! interpreter.

mod common;

use common::{build, interpret_step, reference, reference_ids, rel_err, spec};
use irc::ir::{interpret, Value};
use irc::passes::lower::{lower, Program};
use irc::runtime::Session;
use irc::spec::{Spec, Target};
use irc::util::Rng;
use std::collections::BTreeMap;

const MODELS: [(&str, &str); 2] = [
    ("models/tiny-gpt2.toml", "gpt2-tiny"),
    ("models/tiny-llama.toml", "llama-tiny"),
];

fn argmax(row: &[f32]) -> i32 {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap() as i32
}

/// Greedy tokens after `prompt` until the context is full, and the logits
/// each was chosen from: recomputing the forward over the whole sequence.
fn greedy_full(s: &mut Session, prompt: &[i32], context: usize) -> (Vec<i32>, Vec<Vec<f32>>) {
    let v = s.library().vocab;
    let mut seq = prompt.to_vec();
    let mut rows = vec![];
    while seq.len() < context {
        let logits = s.forward(&seq, 1, seq.len()).unwrap();
        let last = logits[(seq.len() - 1) * v..].to_vec();
        seq.push(argmax(&last));
        rows.push(last);
    }
    (seq, rows)
}

/// The same through the cache: prefill the prompt, then decode.
fn greedy_cached(s: &mut Session, prompt: &[i32], context: usize) -> (Vec<i32>, Vec<Vec<f32>>) {
    let mut seq = prompt.to_vec();
    let mut last = s.prefill(prompt).unwrap();
    assert_eq!(s.cache_len(), prompt.len());
    let mut rows = vec![];
    while seq.len() < context {
        let next = argmax(&last);
        seq.push(next);
        rows.push(last);
        if seq.len() == context {
            break;
        }
        last = s.decode(next).unwrap();
        assert_eq!(s.cache_len(), seq.len());
    }
    (seq, rows)
}

/// A batch-1 build whose forward covers the whole context, for `target`.
fn generation_spec(path: &str) -> Spec {
    let mut s = spec(path);
    s.build.batch = 1;
    s.build.seq_len = s.model.context;
    s
}

#[test]
fn cached_greedy_equals_full_recompute_on_every_path() {
    for (path, refname) in MODELS {
        let spec = generation_spec(path);
        let context = spec.model.context;
        let w = reference(refname, "model.safetensors");
        let (_, ref_prompt) = reference_ids(refname, "greedy.safetensors", "prompt");
        let (_, ref_greedy) = reference_ids(refname, "greedy.safetensors", "greedy");
        let mut rng = Rng::new(7);
        let mut random = |n: usize| -> Vec<i32> {
            (0..n)
                .map(|_| rng.below(spec.model.vocab_size as u64) as i32)
                .collect()
        };
        // One token; the reference prompt; exactly one prefill chunk; a
        // chunk and a padded rest (16 + 5); one that leaves a single free
        // position (its rest is too close to the context to pad); and a
        // whole context.
        let prompts = [
            random(1),
            ref_prompt.clone(),
            random(16),
            random(21),
            random(context - 1),
            random(context),
        ];
        for target in Target::host_paths() {
            let dir = tempfile::tempdir().unwrap();
            let built = build(&spec, target, dir.path());
            let mut s = built.session(2).unwrap();
            s.load_weights(&w).unwrap();
            assert_eq!(s.library().context, context);
            let v = spec.model.vocab_size;
            for prompt in &prompts {
                let what = format!("{refname} {} prompt of {}", target.name(), prompt.len());
                let logits = s.forward(prompt, 1, prompt.len()).unwrap();
                let e = rel_err(
                    &s.prefill(prompt).unwrap(),
                    &logits[(prompt.len() - 1) * v..],
                );
                assert!(e <= 1e-5, "{what}: prefill logits differ by {e:e}");
                let (want, want_rows) = greedy_full(&mut s, prompt, context);
                let (got, got_rows) = greedy_cached(&mut s, prompt, context);
                assert_eq!(got, want, "{what}: tokens");
                for (i, (g, w)) in got_rows.iter().zip(&want_rows).enumerate() {
                    let e = rel_err(g, w);
                    assert!(e <= 1e-5, "{what}: logits of step {i} differ by {e:e}");
                }
            }
            // transformers' greedy tokens, through the cache.
            let (got, _) = greedy_cached(&mut s, &ref_prompt, ref_greedy.len());
            assert_eq!(
                got,
                ref_greedy,
                "{refname} {}: transformers' tokens",
                target.name()
            );
        }
    }
}

#[test]
fn the_cache_api_refuses_what_it_cannot_do() {
    let spec = spec("models/tiny-gpt2.toml");
    let context = spec.model.context;
    let dir = tempfile::tempdir().unwrap();
    let built = build(&spec, Target::Native, dir.path());
    let mut s = built.session(1).unwrap();
    s.load_weights(&reference("gpt2-tiny", "model.safetensors"))
        .unwrap();
    let err = |r: irc::Result<Vec<f32>>| r.unwrap_err().to_string();

    assert!(err(s.decode(1)).contains("decode before prefill"));
    assert!(err(s.prefill(&[])).contains("expected 1..32"));
    assert!(err(s.prefill(&vec![1; context + 1])).contains("expected 1..32"));
    assert!(err(s.prefill(&[1, 96])).contains("outside the vocabulary"));
    assert!(err(s.prefill(&[-1])).contains("outside the vocabulary"));

    s.prefill(&vec![3; context - 1]).unwrap();
    assert!(err(s.decode(500)).contains("outside the vocabulary"));
    assert_eq!(s.cache_len(), context - 1, "a refused token is not cached");
    s.decode(4).unwrap();
    assert!(err(s.decode(4)).contains("context of 32 tokens is full"));
    // A new prefill starts over.
    s.prefill(&[1, 2]).unwrap();
    assert_eq!(s.cache_len(), 2);

    // Forward calls leave the cache alone.
    let before = s.decode(5).unwrap();
    s.prefill(&[1, 2]).unwrap();
    s.forward(&[9; 16], 1, 16).unwrap();
    assert_eq!(s.decode(5).unwrap(), before);

    // A failed prefill ends the sequence before it: nothing to continue.
    assert!(err(s.prefill(&[1, 2, 500])).contains("outside the vocabulary"));
    assert_eq!(s.cache_len(), 0);
    assert!(err(s.decode(1)).contains("decode before prefill"));

    // New weights make the cached keys and values stale: start again.
    let w = s.weights();
    s.prefill(&[1, 2]).unwrap();
    s.load_weights(&w).unwrap();
    assert!(err(s.decode(1)).contains("decode before prefill"));
    s.prefill(&[1, 2]).unwrap();
    s.backward(&[1; 16], &[2; 16], 1, 16).unwrap();
    s.adamw_step(&irc::runtime::AdamwConfig {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        grad_scale: 1.0,
        clip: 0.0,
        step: 1,
    })
    .unwrap();
    assert!(err(s.decode(1)).contains("decode before prefill"));
}

/// Prefill chunks attend to enough of the cache to run on several threads,
/// and so do decode steps from position 31 on (the ones before do not):
/// both paths, and the 1- and 2-thread results, agree with full
/// recomputation.
#[test]
fn threaded_cached_attention_matches_full_recompute() {
    let src = "[model]\nname = 'kv_wide'\nfamily = 'llama'\nvocab_size = 128\ncontext = 256\n\
               layers = 1\nd_model = 256\nheads = 4\nkv_heads = 2\n\
               [build]\nbatch = 1\nseq_len = 256\n";
    let spec = Spec::parse(std::path::Path::new("kv_wide.toml"), src).unwrap();
    // A step of t rows x 4 heads x 64 attends (pos + 1) rows: a prefill
    // chunk of 16 reaches the threshold, 2^13 multiply-adds, from position
    // 1 on, a decode step from position 31 on; the prompt of 20 is one
    // chunk and 4 decode steps, and generation goes on to 256 from there.
    assert_eq!(irc::schedule::CACHED_ATTENTION_PAR_WORK, 1 << 13);
    let dir = tempfile::tempdir().unwrap();
    let built = build(&spec, Target::Native, dir.path());
    let w = built.init_weights(5);
    let mut rng = Rng::new(11);
    let prompt: Vec<i32> = (0..20).map(|_| rng.below(128) as i32).collect();
    let mut results = vec![];
    for threads in [1, 2] {
        let mut s = built.session(threads).unwrap();
        s.load_weights(&w).unwrap();
        let (want, want_rows) = greedy_full(&mut s, &prompt, 256);
        let (got, got_rows) = greedy_cached(&mut s, &prompt, 256);
        assert_eq!(got, want, "{threads} threads: tokens");
        for (i, (g, w)) in got_rows.iter().zip(&want_rows).enumerate() {
            let e = rel_err(g, w);
            assert!(
                e <= 1e-5,
                "{threads} threads: logits of step {i} differ by {e:e}"
            );
        }
        results.push(got_rows);
    }
    assert_eq!(results[0], results[1], "1 and 2 threads bit for bit");
}

#[test]
fn step_programs_mean_the_forward_in_the_interpreter() {
    for (path, refname) in MODELS {
        let spec = spec(path);
        let m = &spec.model;
        let w = reference(refname, "model.safetensors");
        let v = m.vocab_size;
        let mut rng = Rng::new(3);
        let tokens: Vec<i32> = (0..9).map(|_| rng.below(v as u64) as i32).collect();

        let full = lower(m, Program::forward(1, tokens.len())).unwrap();
        let mut feeds: BTreeMap<String, Value<f64>> = w
            .cast::<f64>()
            .into_iter()
            .map(|(k, v)| (k, Value::F(v)))
            .collect();
        feeds.insert("tokens".into(), Value::I(tokens.clone()));
        feeds.insert("targets".into(), Value::I(vec![0; tokens.len()]));
        let want = interpret(&full, &feeds).unwrap()[&full.output("logits").unwrap()]
            .f()
            .data
            .clone();

        // A chunk of 5, then 4 single steps, threading the cache through.
        let chunk = lower(m, Program::step(5)).unwrap();
        let one = lower(m, Program::step(1)).unwrap();
        let mut caches: BTreeMap<String, Value<f64>> = BTreeMap::new();
        for (_, name, ty) in chunk.states() {
            let zeros = irc::ir::Tensor::new(&ty.shape, vec![0.0; ty.numel()]);
            caches.insert(name, Value::F(zeros));
        }
        assert_eq!(
            caches.len(),
            2 * m.layers,
            "{refname}: a k and v cache per layer"
        );
        let (mut got, c) = interpret_step(&chunk, &w, &caches, &tokens[..5], 0);
        caches = c;
        for p in 5..tokens.len() {
            let (logits, c) = interpret_step(&one, &w, &caches, &tokens[p..p + 1], p);
            got.extend(logits);
            caches = c;
        }
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-10, "{refname}: step logits differ by {err:e}");
    }
}
