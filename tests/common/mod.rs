//! Shared helpers for the integration tests.
#![allow(dead_code)]

use irc::ir::{interpret, Op, Real, Value};
use irc::model::{self, Built};
use irc::runtime::Weights;
use irc::spec::{Spec, Target};
use irc::util::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn spec(rel: &str) -> Spec {
    Spec::load(&root().join(rel)).unwrap()
}

/// Build `spec` for `target` into a fresh temporary directory.
pub fn build(spec: &Spec, target: Target, dir: &Path) -> Built {
    let mut s = spec.clone();
    s.build.target = target;
    model::build(&s, dir).unwrap_or_else(|e| panic!("build for {}: {e}", target.name()))
}

/// The float tensors of a reference file.
pub fn reference(model: &str, file: &str) -> Weights {
    let bytes = std::fs::read(root().join("tests/reference").join(model).join(file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut w = Weights::default();
    for (name, v) in st.tensors() {
        if v.dtype() == safetensors::Dtype::F32 {
            let data = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            w.insert(&name, v.shape(), data);
        }
    }
    w
}

/// i32 tensors of a reference file (stored as I32 in safetensors).
pub fn reference_ids(model: &str, file: &str, name: &str) -> (Vec<usize>, Vec<i32>) {
    let bytes = std::fs::read(root().join("tests/reference").join(model).join(file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let v = st.tensor(name).unwrap();
    let ids = v
        .data()
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (v.shape().to_vec(), ids)
}

/// max |a - b| / max |b|
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max);
    let den = b
        .iter()
        .map(|y| (*y as f64).abs())
        .fold(0.0, f64::max)
        .max(1e-30);
    num / den
}

/// Run the interpreter on a built program with these weights and ids.
pub fn interp<T: Real>(
    b: &Built,
    w: &Weights,
    tokens: &[i32],
    targets: &[i32],
) -> BTreeMap<String, Vec<f64>> {
    let mut feeds: BTreeMap<String, Value<T>> = w
        .cast::<T>()
        .into_iter()
        .map(|(k, v)| (k, Value::F(v)))
        .collect();
    feeds.insert("tokens".into(), Value::I(tokens.to_vec()));
    feeds.insert("targets".into(), Value::I(targets.to_vec()));
    let g = &b.compiled.graph;
    let vals = interpret(g, &feeds).unwrap();
    g.outputs()
        .iter()
        .map(|(name, id)| {
            (
                name.clone(),
                vals[id].f().data.iter().map(|x| x.to_f64()).collect(),
            )
        })
        .collect()
}

/// The eval of `scenes` synthetic scenes generated perfectly (each its own
/// reference), at a plausible generation speed: a healthy run's eval.
pub fn perfect_eval(scenes: usize, seed: u64) -> irc::eval::EvalResult {
    let gens: Vec<irc::eval::Generation> = irc::data::synth::generate(scenes, seed)
        .iter()
        .map(|r| irc::eval::Generation {
            prompt: r.prompt.clone().unwrap(),
            text: r.text.clone(),
            reference: Some(r.text.clone()),
        })
        .collect();
    let mut e = irc::eval::evaluate(&gens);
    e.gen_tokens_per_s = Some(900.0);
    e
}

/// Whether the program `cc` is installed (it answers `--version`).
pub fn runs(cc: &str) -> bool {
    std::process::Command::new(cc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The SIMD paths this host runs, for the C tests that compile the runtime
/// headers by hand: (the `IRC_TARGET_*` macro suffix, the compiler flags).
pub fn host_c_targets() -> Vec<(&'static str, &'static [&'static str])> {
    Target::host_paths()
        .into_iter()
        .map(|t| {
            let name = match t {
                Target::Avx512 => "AVX512",
                Target::Avx2 => "AVX2",
                Target::Neon => "NEON",
                _ => "SCALAR",
            };
            (name, irc::toolchain::target_flags(t))
        })
        .collect()
}

pub mod tiny_train;

/// A random batch: tokens, and targets with every 7th (from the 4th) ignored.
pub fn data(spec: &Spec, seed: u64) -> (Vec<i32>, Vec<i32>) {
    let (b, t) = (spec.build.batch, spec.build.seq_len);
    let mut rng = Rng::new(seed);
    let v = spec.model.vocab_size as u64;
    let tokens = (0..b * t).map(|_| rng.below(v) as i32).collect();
    let targets = (0..b * t)
        .map(|i| {
            if i % 7 == 3 {
                -100
            } else {
                rng.below(v) as i32
            }
        })
        .collect();
    (tokens, targets)
}

/// Weights with some spread, so every path through the model matters.
pub fn weights(b: &irc::model::Built, seed: u64) -> Weights {
    let mut w = b.init_weights(seed);
    let mut rng = Rng::new(seed + 1);
    for (name, t) in w.tensors.iter_mut() {
        for x in t.data.iter_mut() {
            if name.contains("norm") || name.contains("ln_") {
                *x += 0.2 * rng.normal() as f32;
            } else {
                *x = *x * 8.0 + 0.01 * rng.normal() as f32;
            }
        }
    }
    w
}

/// Key/value caches of a step graph by state name, in the interpreter.
pub type Caches = BTreeMap<String, Value<f64>>;

/// Run a step graph in the f64 interpreter; returns its logits and the
/// caches it wrote (by state name).
pub fn interpret_step(
    g: &irc::ir::Graph,
    w: &Weights,
    caches: &Caches,
    tokens: &[i32],
    start: usize,
) -> (Vec<f64>, Caches) {
    let mut feeds: Caches = w
        .cast::<f64>()
        .into_iter()
        .map(|(k, v)| (k, Value::F(v)))
        .collect();
    feeds.extend(caches.clone());
    feeds.insert("tokens".into(), Value::I(tokens.to_vec()));
    let positions = (start..start + tokens.len()).map(|p| p as i32).collect();
    feeds.insert("positions".into(), Value::I(positions));
    let vals = interpret(g, &feeds).unwrap();
    let mut out = Caches::new();
    for id in g.ids() {
        let n = g.node(id);
        if let Op::CacheWrite = n.op {
            let Op::State { name } = &g.node(n.inputs[0]).op else {
                panic!("a cache write into {}", n.inputs[0]);
            };
            out.insert(name.clone(), vals[&id].clone());
        }
    }
    let logits = vals[&g.output("logits").unwrap()].f().data.clone();
    (logits, out)
}
