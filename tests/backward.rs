//! Compiled backward kernels against the interpreter's gradients, on every
//! SIMD path this machine runs; AdamW steps against a plain Rust AdamW over
//! interpreter gradients; determinism across thread counts.

mod common;
use common::*;
use irc::ir::{interpret, Value};
use irc::runtime::{AdamwConfig, Weights};
use irc::spec::{Spec, Target};
use std::collections::BTreeMap;
use std::path::Path;

const GPT2: &str = "[model]\nname='bg'\nfamily='gpt2'\nvocab_size=37\ncontext=16\nlayers=2\nd_model=24\nheads=3\nffn_hidden=40\n[build]\nbatch=3\nseq_len=11\n";
const LLAMA: &str = "[model]\nname='bl'\nfamily='llama'\nvocab_size=37\ncontext=16\nlayers=2\nd_model=24\nheads=4\nkv_heads=2\nffn_hidden=40\n[build]\nbatch=3\nseq_len=11\n";

/// Logits big enough (75 rows x 300) that the softmax / cross-entropy
/// kernel runs its blocks of rows on several threads.
const WIDE_VOCAB: &str = "[model]\nname='bw'\nfamily='gpt2'\nvocab_size=300\ncontext=16\nlayers=1\nd_model=16\nheads=2\nffn_hidden=24\n[build]\nbatch=5\nseq_len=15\n";

/// Sequences longer than the attention kernels' blocks (the forward's 48
/// query rows and 128 keys, the backward's 64 keys), so every block edge is
/// crossed: grouped-query heads of 10 (a vector tail on every path) and
/// GPT-2 heads of 16.
const LONG_GQA: &str = "[model]\nname='blg'\nfamily='llama'\nvocab_size=37\ncontext=160\nlayers=1\nd_model=60\nheads=6\nkv_heads=2\nffn_hidden=40\n[build]\nbatch=2\nseq_len=150\n";
const LONG_GPT2: &str = "[model]\nname='bgl'\nfamily='gpt2'\nvocab_size=37\ncontext=160\nlayers=1\nd_model=32\nheads=2\nffn_hidden=40\n[build]\nbatch=2\nseq_len=137\n";

/// (loss, gradients by name) from the interpreter in f64.
fn interp_grads(
    b: &irc::model::Built,
    w: &Weights,
    tokens: &[i32],
    targets: &[i32],
) -> (f64, BTreeMap<String, Vec<f64>>) {
    let g = &b.train.graph;
    let mut feeds: BTreeMap<String, Value<f64>> = w
        .cast::<f64>()
        .into_iter()
        .map(|(k, v)| (k, Value::F(v)))
        .collect();
    feeds.insert("tokens".into(), Value::I(tokens.to_vec()));
    feeds.insert("targets".into(), Value::I(targets.to_vec()));
    let vals = interpret(g, &feeds).unwrap();
    let loss = vals[&g.output("loss").unwrap()].f().data[0];
    let mut grads = BTreeMap::new();
    for (name, id) in g.outputs() {
        if let Some(p) = name.strip_prefix("grad:") {
            grads.insert(p.to_string(), vals[id].f().data.clone());
        }
    }
    (loss, grads)
}

fn check_grads(src: &str) {
    let spec = Spec::parse(Path::new("t.toml"), src).unwrap();
    let (b, t) = (spec.build.batch, spec.build.seq_len);
    let (tokens, targets) = data(&spec, 5);
    for target in Target::host_paths() {
        let dir = tempfile::tempdir().unwrap();
        let built = build(&spec, target, dir.path());
        let w = weights(&built, 3);
        let (want_loss, want) = interp_grads(&built, &w, &tokens, &targets);
        let mut s = built.session(2).unwrap();
        s.load_weights(&w).unwrap();
        s.zero_grads();
        let loss = s.backward(&tokens, &targets, b, t).unwrap();
        assert!(
            ((loss as f64 - want_loss) / want_loss).abs() < 1e-5,
            "{} loss {loss} vs {want_loss}",
            target.name()
        );
        let got = s.grad_weights().unwrap();
        assert_eq!(got.tensors.len(), want.len());
        for (name, g) in &want {
            let gf: Vec<f32> = g.iter().map(|&x| x as f32).collect();
            let e = rel_err(&got.get(name).unwrap().data, &gf);
            assert!(
                e <= 1e-4,
                "{} {}: d loss / d {name}: rel err {e:e}",
                spec.model.name,
                target.name()
            );
        }
        // Gradients accumulate: a second backward doubles them.
        s.backward(&tokens, &targets, b, t).unwrap();
        let twice = s.grad_weights().unwrap();
        for (name, g) in &got.tensors {
            let doubled: Vec<f32> = g.data.iter().map(|x| 2.0 * x).collect();
            assert!(
                rel_err(&twice.get(name).unwrap().data, &doubled) < 1e-6,
                "{name} does not accumulate"
            );
        }
    }
}

#[test]
fn gpt2_backward_matches_interpreter() {
    check_grads(GPT2);
}

#[test]
fn threaded_cross_entropy_matches_interpreter() {
    check_grads(WIDE_VOCAB);
}

#[test]
fn llama_backward_matches_interpreter() {
    check_grads(LLAMA);
}

#[test]
fn long_sequences_cross_every_attention_block() {
    check_grads(LONG_GQA);
    check_grads(LONG_GPT2);
}

/// PyTorch's gradients for the reference models and tokens.
#[test]
fn gradients_match_transformers() {
    for (spec_file, reference) in [
        ("models/tiny-gpt2.toml", "gpt2-tiny"),
        ("models/tiny-llama.toml", "llama-tiny"),
    ] {
        let spec = spec(spec_file);
        let w = common::reference(reference, "model.safetensors");
        let want = common::reference(reference, "grads.safetensors");
        let (_, tokens) = reference_ids(reference, "forward.safetensors", "input_ids");
        let (_, targets) = reference_ids(reference, "forward.safetensors", "targets");
        let dir = tempfile::tempdir().unwrap();
        let built = build(&spec, Target::Native, dir.path());
        let mut s = built.session(2).unwrap();
        s.load_weights(&w).unwrap();
        s.zero_grads();
        s.backward(&tokens, &targets, 2, 16).unwrap();
        let got = s.grad_weights().unwrap();
        for (name, g) in &got.tensors {
            let r = want
                .get(name)
                .unwrap_or_else(|| panic!("{reference}: transformers has no gradient for {name}"));
            let e = rel_err(&g.data, &r.data);
            assert!(
                e <= 1e-4,
                "{reference}: d loss / d {name}: rel err {e:e} vs transformers"
            );
        }
    }
}

/// Plain AdamW (torch.optim.AdamW) in f64.
#[allow(clippy::too_many_arguments)]
fn adamw(
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
    lr: f64,
    wd: f64,
    step: i32,
    clip_scale: f64,
) {
    let (b1, b2, eps) = (0.9, 0.95, 1e-8);
    for i in 0..p.len() {
        let gi = g[i] * clip_scale;
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        let mh = m[i] / (1.0 - b1.powi(step));
        let vh = v[i] / (1.0 - b2.powi(step));
        p[i] -= lr * (wd * p[i] + mh / (vh.sqrt() + eps));
    }
}

/// Ten AdamW steps on one fixed batch: compiled losses track the
/// interpreter's (with the same optimizer in Rust) and fall.
#[test]
fn ten_adamw_steps_match_interpreter() {
    let spec = Spec::parse(Path::new("t.toml"), GPT2).unwrap();
    let (b, t) = (spec.build.batch, spec.build.seq_len);
    let (tokens, targets) = data(&spec, 9);
    let dir = tempfile::tempdir().unwrap();
    let built = build(&spec, Target::Native, dir.path());
    let w0 = built.init_weights(4);
    let mut s = built.session(2).unwrap();
    s.load_weights(&w0).unwrap();
    let mut params: BTreeMap<String, Vec<f64>> = w0
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.data.iter().map(|&x| x as f64).collect()))
        .collect();
    let mut mom: BTreeMap<String, (Vec<f64>, Vec<f64>)> = params
        .iter()
        .map(|(k, p)| (k.clone(), (vec![0.0; p.len()], vec![0.0; p.len()])))
        .collect();
    let (lr, wd, clip) = (3e-3, 0.1, 1.0);
    let mut losses = vec![];
    for step in 1..=10 {
        s.zero_grads();
        let loss = s.backward(&tokens, &targets, b, t).unwrap();
        let cfg = AdamwConfig {
            lr,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: wd,
            grad_scale: 1.0,
            clip,
            step,
        };
        let norm = s.adamw_step(&cfg).unwrap();

        let mut w = Weights::default();
        for (k, p) in &params {
            w.insert(
                k,
                &w0.get(k).unwrap().shape,
                p.iter().map(|&x| x as f32).collect(),
            );
        }
        let (want_loss, grads) = interp_grads(&built, &w, &tokens, &targets);
        let want_norm = grads.values().flatten().map(|g| g * g).sum::<f64>().sqrt();
        assert!(
            (loss as f64 - want_loss).abs() <= 1e-4 * want_loss,
            "step {step}: loss {loss} vs interpreter {want_loss}"
        );
        assert!(
            (norm as f64 - want_norm).abs() <= 1e-4 * want_norm,
            "step {step}: grad norm {norm} vs {want_norm}"
        );
        let scale = if want_norm > clip as f64 {
            clip as f64 / (want_norm + 1e-6)
        } else {
            1.0
        };
        for (k, p) in params.iter_mut() {
            let (m, v) = mom.get_mut(k).unwrap();
            let decay = if w0.get(k).unwrap().shape.len() >= 2 {
                wd as f64
            } else {
                0.0
            };
            adamw(p, &grads[k], m, v, lr as f64, decay, step, scale);
        }
        losses.push(loss);
    }
    assert!(losses[9] < losses[0] * 0.9, "loss did not fall: {losses:?}");
}

/// One and two threads give bit-identical losses, gradients and updates.
#[test]
fn thread_count_does_not_change_results() {
    for src in [GPT2, LLAMA, WIDE_VOCAB, LONG_GQA] {
        let spec = Spec::parse(Path::new("t.toml"), src).unwrap();
        let (b, t) = (spec.build.batch, spec.build.seq_len);
        let (tokens, targets) = data(&spec, 2);
        let dir = tempfile::tempdir().unwrap();
        let built = build(&spec, Target::Native, dir.path());
        let w = weights(&built, 1);
        let run = |threads: usize| {
            let mut s = built.session(threads).unwrap();
            s.load_weights(&w).unwrap();
            let mut losses = vec![];
            for step in 1..=3 {
                s.zero_grads();
                losses.push(s.backward(&tokens, &targets, b, t).unwrap().to_bits());
                let cfg = AdamwConfig {
                    lr: 1e-3,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: 0.0,
                    grad_scale: 1.0,
                    clip: 0.0,
                    step,
                };
                s.adamw_step(&cfg).unwrap();
            }
            (losses, s.params().to_vec(), s.grads().unwrap().to_vec())
        };
        let (l1, p1, g1) = run(1);
        for threads in [2, 3] {
            let (l2, p2, g2) = run(threads);
            assert_eq!(
                l1, l2,
                "{}: losses differ between 1 and {threads} threads",
                spec.model.name
            );
            assert!(
                p1 == p2 && g1 == g2,
                "{}: parameters or gradients differ between 1 and {threads} threads",
                spec.model.name
            );
        }
    }
}

/// `Session::train_step` is zero_grads + backward per micro-batch + AdamW
/// with the averaged gradient.
#[test]
fn train_step_equals_its_parts() {
    let spec = Spec::parse(Path::new("t.toml"), GPT2).unwrap();
    let (b, t) = (spec.build.batch, spec.build.seq_len);
    let dir = tempfile::tempdir().unwrap();
    let built = build(&spec, Target::Native, dir.path());
    let w = built.init_weights(2);
    let micro: Vec<(Vec<i32>, Vec<i32>)> = (0..2).map(|i| data(&spec, 20 + i)).collect();
    let cfg = AdamwConfig {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        grad_scale: 1.0,
        clip: 1.0,
        step: 1,
    };
    let mut a = built.session(1).unwrap();
    a.load_weights(&w).unwrap();
    let (loss, norm) = a.train_step(&micro, b, t, &cfg).unwrap();
    let mut s = built.session(1).unwrap();
    s.load_weights(&w).unwrap();
    s.zero_grads();
    let l0 = s.backward(&micro[0].0, &micro[0].1, b, t).unwrap();
    let l1 = s.backward(&micro[1].0, &micro[1].1, b, t).unwrap();
    let n = s
        .adamw_step(&AdamwConfig {
            grad_scale: 0.5,
            ..cfg
        })
        .unwrap();
    assert_eq!(loss, ((l0 as f64 + l1 as f64) / 2.0) as f32);
    assert_eq!(norm, n);
    assert_eq!(a.params(), s.params());
}

/// What a gradient hook saw: each call's range and the whole gradient
/// region at that moment.
struct HookLog {
    grads: *const f32,
    floats: usize,
    calls: Vec<(usize, usize, Vec<f32>)>,
}

unsafe extern "C" fn record(user: *mut std::ffi::c_void, offset: usize, floats: usize) {
    let log = &mut *(user as *mut HookLog);
    let region = std::slice::from_raw_parts(log.grads, log.floats).to_vec();
    log.calls.push((offset, floats, region));
}

/// The gradient hook of a backward: called once per parameter, its ranges
/// tiling the gradient region exactly, each after the last write of its
/// gradient (what it saw is the final value, which the second micro-batch
/// changed) and while other gradients were still to come; never called
/// again once the backward returned.
fn check_grad_hook(src: &str) {
    let spec = Spec::parse(Path::new("t.toml"), src).unwrap();
    let (b, t) = (spec.build.batch, spec.build.seq_len);
    let dir = tempfile::tempdir().unwrap();
    let built = build(&spec, Target::host_paths()[0], dir.path());
    let mut s = built.session(2).unwrap();
    s.load_weights(&weights(&built, 3)).unwrap();
    s.zero_grads();
    let (x0, y0) = data(&spec, 5);
    let (x1, y1) = data(&spec, 6);
    s.backward(&x0, &y0, b, t).unwrap();
    let first = s.grads().unwrap().to_vec();
    let mut log = HookLog {
        grads: s.grads().unwrap().as_ptr(),
        floats: first.len(),
        calls: vec![],
    };
    let user = &mut log as *mut HookLog as *mut std::ffi::c_void;
    // SAFETY: `log` outlives the call.
    unsafe { s.backward_reporting(&x1, &y1, b, t, record, user) }.unwrap();
    let fin = s.grads().unwrap().to_vec();
    let table = s.library().param_table.clone();
    assert_eq!(log.calls.len(), table.len(), "one call per parameter");
    let mut ranges: Vec<(usize, usize)> = log.calls.iter().map(|c| (c.0, c.1)).collect();
    ranges.sort();
    let mut end = 0;
    for &(o, n) in &ranges {
        assert_eq!(o, end, "the ranges tile the region: {ranges:?}");
        end = o + n;
    }
    // The region is padded past the last parameter (NUM_PARAMS floats).
    let last = table.iter().map(|p| p.offset + p.numel).max().unwrap();
    assert_eq!(end, last, "the ranges reach the last parameter's end");
    assert!(end <= fin.len());
    for p in &table {
        let call = log.calls.iter().find(|c| c.0 == p.offset);
        let (_, n, seen) = call.unwrap_or_else(|| panic!("no call for {}", p.name));
        assert!(*n >= p.numel, "{} ({} floats) in {n}", p.name, p.numel);
        let r = p.offset..p.offset + p.numel;
        assert_eq!(
            &seen[r.clone()],
            &fin[r.clone()],
            "{} final when reported",
            p.name
        );
        assert_ne!(
            &first[r.clone()],
            &fin[r],
            "{}: the second micro-batch adds",
            p.name
        );
    }
    // The first call came while the backward still had gradients to write.
    let (_, _, early) = &log.calls[0];
    assert!(
        table.iter().any(|p| {
            let r = p.offset..p.offset + p.numel;
            early[r.clone()] != fin[r]
        }),
        "the first call came after the backward"
    );
    let calls = log.calls.len();
    s.backward(&x0, &y0, b, t).unwrap();
    assert_eq!(
        log.calls.len(),
        calls,
        "no hook once backward_reporting returned"
    );
}

#[test]
fn grad_hook_reports_each_final_gradient_once() {
    check_grad_hook(GPT2);
    check_grad_hook(LLAMA);
}

/// `[build] recompute` (the default) makes the backward recompute the
/// activations and norm outputs it reads: the same loss and gradients as
/// keeping them (the arithmetic is the same), fewer floats at the peak, and
/// none of the recomputed values kept from the forward.
fn check_recompute(src: &str) {
    let keep_src = format!("{src}recompute=false\n");
    let spec = Spec::parse(Path::new("t.toml"), src).unwrap();
    let keep = Spec::parse(Path::new("t.toml"), &keep_src).unwrap();
    assert!(spec.build.recompute && !keep.build.recompute);
    let (b, t) = (spec.build.batch, spec.build.seq_len);
    let (tokens, targets) = data(&spec, 5);
    let mut results = vec![];
    for s in [&spec, &keep] {
        let dir = tempfile::tempdir().unwrap();
        let built = build(s, Target::Native, dir.path());
        let recomputed = irc::driver::recomputed(&built.train.graph);
        let saved = irc::driver::saved_for_backward(&built.train.graph, &built.train.kernels);
        let w = weights(&built, 3);
        let mut session = built.session(2).unwrap();
        session.load_weights(&w).unwrap();
        session.zero_grads();
        let loss = session.backward(&tokens, &targets, b, t).unwrap();
        let grads = session.grad_weights().unwrap();
        results.push((
            built.train.memory.act_floats,
            recomputed,
            saved,
            loss,
            grads,
        ));
    }
    let (on, off) = (&results[0], &results[1]);
    let name = &spec.model.name;
    // Each layer's two norms and its activation, and the final norm.
    let layers = spec.model.layers;
    assert_eq!(on.1.len(), 3 * layers + 1, "{name}: recomputed {:?}", on.1);
    assert!(off.1.is_empty(), "{name}: recomputed without recompute");
    assert!(
        on.0 < off.0,
        "{name}: peak {} floats recomputing, {} keeping",
        on.0,
        off.0
    );
    assert!(
        on.2.len() < off.2.len(),
        "{name}: {:?} vs {:?}",
        on.2,
        off.2
    );
    assert!(
        ((on.3 - off.3) / off.3).abs() < 1e-6,
        "{name}: loss {} vs {}",
        on.3,
        off.3
    );
    for (p, g) in &off.4.tensors {
        let e = rel_err(&on.4.get(p).unwrap().data, &g.data);
        assert!(e < 1e-6, "{name}: d loss / d {p}: rel err {e:e}");
    }
}

#[test]
fn recompute_saves_memory_and_changes_no_gradient() {
    check_recompute(GPT2);
    check_recompute(LLAMA);
}
