//! Profile builds (`[build] profile = true`, `irc profile`): every kernel call
//! is timed into its slot, the slots name their program, kernel and FLOPs,
//! and timing changes no result.

mod common;

use common::{build, spec};
use irc::spec::Target;
use std::process::Command;

#[test]
fn profile_build_times_every_kernel_and_changes_nothing() {
    let base = spec("models/tiny-gpt2.toml");
    let (b, t, v) = (2, 16, base.model.vocab_size);
    let tokens: Vec<i32> = (0..b * t).map(|i| (i * 5 % v) as i32).collect();
    let targets: Vec<i32> = tokens.iter().map(|x| (x + 1) % v as i32).collect();
    for target in Target::host_paths() {
        let dir = tempfile::tempdir().unwrap();
        let plain = build(&base, target, &dir.path().join("plain"));
        let mut prof_spec = base.clone();
        prof_spec.build.profile = true;
        let prof = build(&prof_spec, target, &dir.path().join("prof"));
        let w = plain.init_weights(3);
        let mut s0 = plain.session(1).unwrap();
        let mut s1 = prof.session(1).unwrap();
        s0.load_weights(&w).unwrap();
        s1.load_weights(&w).unwrap();
        assert!(s0.library().profile_slots().is_none() && s0.profile().is_none());

        // One slot per kernel of every program, in program order.
        let slots = s1.library().profile_slots().unwrap().to_vec();
        let c = &prof.compiled;
        assert_eq!(
            slots.iter().filter(|s| s.program == "forward").count(),
            c.kernels.len()
        );
        for p in ["forward", "train", "prefill", "decode"] {
            let ks: Vec<usize> = slots
                .iter()
                .filter(|s| s.program == p)
                .map(|s| s.kernel)
                .collect();
            assert!(!ks.is_empty(), "{p}");
            assert_eq!(ks, (0..ks.len()).collect::<Vec<_>>(), "{p}");
        }
        // The tied head's matmul: logits (b, t, V) = h (b, t, C) · wteᵀ.
        let head = slots
            .iter()
            .find(|s| s.program == "forward" && s.node == "logits")
            .unwrap();
        let m = &base.model;
        assert_eq!(head.flops, 2.0 * (b * t * v * m.d_model) as f64, "{head:?}");
        assert!(slots
            .iter()
            .filter(|s| s.function.starts_with("norm") || s.function.starts_with("add_norm"))
            .all(|s| s.flops == 0.0));

        // Timing changes no result, bit for bit.
        let x0 = s0.forward(&tokens, b, t).unwrap();
        let x1 = s1.forward(&tokens, b, t).unwrap();
        assert!(x0.iter().zip(&x1).all(|(a, b)| a.to_bits() == b.to_bits()));
        let prof_secs = s1.profile().unwrap();
        for (sl, &secs) in slots.iter().zip(&prof_secs) {
            if sl.program == "forward" {
                assert!(secs > 0.0, "{sl:?} untimed");
            } else {
                assert_eq!(secs, 0.0, "{sl:?} timed by a forward");
            }
        }
        s1.profile_reset();
        assert!(s1.profile().unwrap().iter().all(|&x| x == 0.0));
        let l0 = s0.backward(&tokens, &targets, b, t).unwrap();
        let l1 = s1.backward(&tokens, &targets, b, t).unwrap();
        assert_eq!(l0.to_bits(), l1.to_bits());
        assert!(s0
            .grads()
            .unwrap()
            .iter()
            .zip(s1.grads().unwrap())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        let train: f64 = slots
            .iter()
            .zip(s1.profile().unwrap())
            .filter(|(s, _)| s.program == "train")
            .map(|(_, t)| t)
            .sum();
        assert!(train > 0.0);
        let g0 = s0.generate(&tokens[..5], &Default::default(), 6, None);
        let g1 = s1.generate(&tokens[..5], &Default::default(), 6, None);
        assert_eq!(g0.unwrap(), g1.unwrap());
        let secs = s1.profile().unwrap();
        for p in ["prefill", "decode"] {
            assert!(slots
                .iter()
                .zip(&secs)
                .any(|(s, &t)| s.program == p && t > 0.0));
        }
        let peak = s1.library().fma_peak_gflops(1).unwrap();
        assert!(peak > 0.1, "{peak}");
    }
}

#[test]
fn irc_profile_prints_kernels_against_the_peak() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_irc"))
            .args(["profile", "models/tiny-gpt2.toml", "--build-dir"])
            .arg(dir.path().join("b"))
            .args(args)
            .current_dir(common::root())
            .output()
            .unwrap()
    };
    let o = run(&["--iters", "2", "--program", "train,decode", "--top", "3"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("fp32 FMA peak"), "{out}");
    assert!(
        out.contains("\ntrain: ") && out.contains("\ndecode: "),
        "{out}"
    );
    assert!(!out.contains("\nforward: "), "{out}");
    assert!(out.contains("% of peak") && out.contains("gemm"), "{out}");
    assert!(out.contains("more kernels)"), "--top 3 lists three: {out}");

    let o = run(&["--iters", "1", "--program", "forward", "--json"]);
    assert!(o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &j["programs"][0];
    assert_eq!(p["program"], "forward");
    let ks = p["kernels"].as_array().unwrap();
    assert!(ks.iter().all(|k| k["seconds"].as_f64().unwrap() >= 0.0));
    let kernel_s: f64 = ks.iter().map(|k| k["seconds"].as_f64().unwrap()).sum();
    assert!(
        kernel_s <= p["wall"].as_f64().unwrap() * 1.01,
        "kernels inside the call: {p}"
    );

    let o = run(&["--program", "backward"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("unknown program `backward`") && err.contains("forward, train"),
        "{err}"
    );
}
