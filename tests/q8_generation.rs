//! Whole-model generation with `[build].weights = "q8_0"` and `"bf16"`:
//! the library's prefill and decode logits against the reference
//! interpreter running the same step programs (their linear layers with the
//! format's rounding, `passes::weights`), on every SIMD path this machine
//! runs, for both families. Then what a context with packed weights does
//! with its f32 copies: given back after the first prefill (the forward
//! refuses to run), back after the weights are loaded again.
//!
//! Tolerance: the rest of the model is f32 in C and f64 in the interpreter,
//! and a difference of an ulp could move an activation across a q8_0
//! rounding step, so the logits must agree to 2e-3 of their largest (bf16:
//! 2e-5; measured: q8_0 bit for bit on these models, bf16 within 2e-6), and
//! at least 20 times closer than the f32 model is to the q8_0 (bf16) one, so
//! a kernel that skipped or misplaced the rounding fails.

mod common;

use common::{build, interpret_step, reference, rel_err, spec, Caches};
use irc::ir::Value;
use irc::passes::lower::{lower, Program};
use irc::passes::weights::round_weights;
use irc::quant::WeightFormat;
use irc::runtime::Weights;
use irc::spec::Target;
use irc::util::Rng;

const MODELS: [(&str, &str); 2] = [
    ("models/tiny-gpt2.toml", "gpt2-tiny"),
    ("models/tiny-llama.toml", "llama-tiny"),
];

/// The interpreter's logits after the prompt, then after each of `next`.
fn interpreted(
    spec: &irc::spec::Spec,
    fmt: WeightFormat,
    w: &Weights,
    prompt: &[i32],
    next: &[i32],
) -> Vec<Vec<f32>> {
    let m = &spec.model;
    let v = m.vocab_size;
    let mut chunk = lower(m, Program::step(prompt.len())).unwrap();
    let mut one = lower(m, Program::step(1)).unwrap();
    if !fmt.is_f32() {
        assert!(round_weights(&mut chunk, fmt).unwrap() > 0);
        round_weights(&mut one, fmt).unwrap();
    }
    let mut caches = Caches::new();
    for (_, name, ty) in chunk.states() {
        caches.insert(
            name,
            Value::F(irc::ir::Tensor::new(&ty.shape, vec![0.0; ty.numel()])),
        );
    }
    let f32s = |l: &[f64]| l.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let (logits, c) = interpret_step(&chunk, w, &caches, prompt, 0);
    caches = c;
    let mut rows = vec![f32s(&logits[(prompt.len() - 1) * v..])];
    for (i, &t) in next.iter().enumerate() {
        let (logits, c) = interpret_step(&one, w, &caches, &[t], prompt.len() + i);
        caches = c;
        rows.push(f32s(&logits));
    }
    rows
}

#[test]
fn packed_weights_generation_matches_the_interpreter_on_every_path() {
    for (path, refname) in MODELS {
        let w = reference(refname, "model.safetensors");
        let base = spec(path);
        let v = base.model.vocab_size;
        let mut rng = Rng::new(5);
        // A prompt of one prefill chunk and a padded rest (16 + 5), then decode steps.
        let prompt: Vec<i32> = (0..21).map(|_| rng.below(v as u64) as i32).collect();
        let next: Vec<i32> = (0..4).map(|_| rng.below(v as u64) as i32).collect();
        let plain = interpreted(&base, WeightFormat::F32, &w, &prompt, &next);
        for (fmt, tol) in [(WeightFormat::Q8_0, 2e-3), (WeightFormat::Bf16, 2e-5)] {
            let mut spec = base.clone();
            spec.build.weights = fmt;
            let want = interpreted(&spec, fmt, &w, &prompt, &next);
            let rounding = want
                .iter()
                .zip(&plain)
                .map(|(a, b)| rel_err(b, a))
                .fold(0.0, f64::max);
            for target in Target::host_paths() {
                let dir = tempfile::tempdir().unwrap();
                let built = build(&spec, target, dir.path());
                let mut s = built.session(2).unwrap();
                s.load_weights(&w).unwrap();
                let what = format!("{refname} {} {}", fmt.name(), target.name());
                let mut got = vec![s.prefill(&prompt).unwrap()];
                for &t in &next {
                    got.push(s.decode(t).unwrap());
                }
                let err = got
                    .iter()
                    .zip(&want)
                    .map(|(g, w)| rel_err(g, w))
                    .fold(0.0, f64::max);
                println!("{what}: logits within {err:.2e} of the interpreter's; f32 weights differ by {rounding:.2e}");
                assert!(
                    err <= tol,
                    "{what}: logits differ from the interpreter's by {err:e}"
                );
                assert!(
                    err * 20.0 <= rounding,
                    "{what}: {err:e} from the interpreter, not much closer than f32 weights are ({rounding:e})"
                );
                // The f32 copies of the packed weights are gone after a prefill.
                let e = s.forward(&prompt[..8], 1, 8).unwrap_err().to_string();
                assert!(e.contains("given back"), "{what}: {e}");
                // Loading them again brings the forward back, and generation
                // packs them again to the same logits.
                s.load_weights(&w).unwrap();
                s.forward(&prompt[..8], 1, 8).unwrap();
                assert_eq!(s.prefill(&prompt).unwrap(), got[0], "{what}: packed again");
            }
        }
    }
}

#[test]
fn a_spec_says_how_generation_holds_its_weights() {
    let s = irc::spec::Spec::parse(
        std::path::Path::new("w.toml"),
        "[model]\nname = 'w'\nfamily = 'gpt2'\nvocab_size = 64\ncontext = 16\nlayers = 1\nd_model = 32\nheads = 2\n[build]\nweights = 'q8_0'\n",
    )
    .unwrap();
    assert_eq!(s.build.weights, WeightFormat::Q8_0);
    let e = irc::spec::Spec::parse(
        std::path::Path::new("w.toml"),
        "[model]\nname = 'w'\nfamily = 'gpt2'\nvocab_size = 64\ncontext = 16\nlayers = 1\nd_model = 32\nheads = 2\n[build]\nweights = 'q4'\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("w.toml:10:")
            && e.contains("[build].weights")
            && e.contains("\"f32\", \"q8_0\", \"bf16\""),
        "{e}"
    );
}
