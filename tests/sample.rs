//! Sampling and stop conditions (`irc::sample`).

use irc::sample::{argmax, generate, Sampler, SamplingConfig, Stop, StopReason};
use proptest::prelude::*;

fn cfg(temperature: f32, top_k: usize, top_p: f32, rep: f32, seed: u64) -> SamplingConfig {
    SamplingConfig {
        temperature,
        top_k,
        top_p,
        repetition_penalty: rep,
        seed,
        ..SamplingConfig::default()
    }
}

#[test]
fn temperature_zero_and_top_k_one_are_greedy() {
    let logits = [0.1, 2.0, -1.0, 2.0, 1.5];
    for c in [cfg(0.0, 0, 1.0, 1.0, 1), cfg(1.3, 1, 0.9, 1.0, 2)] {
        let mut s = Sampler::new(c);
        for _ in 0..50 {
            // Ties go to the lowest id.
            assert_eq!(s.next(&logits, &[]), 1);
        }
    }
    assert_eq!(argmax(&[f32::NAN, 1.0, 1.0]), 1);
    // Greedy still applies the repetition penalty (as HF does).
    let mut s = Sampler::new(cfg(0.0, 0, 1.0, 2.0, 0));
    assert_eq!(s.next(&[1.0, 3.0, 2.0], &[1]), 2);
}

#[test]
fn a_fixed_seed_reproduces() {
    let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
    let run = |seed| {
        let mut s = Sampler::new(cfg(0.9, 20, 0.95, 1.1, seed));
        let mut hist = Vec::new();
        for _ in 0..200 {
            let t = s.next(&logits, &hist);
            hist.push(t);
        }
        hist
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn repetition_penalty_lowers_repeated_tokens() {
    let logits = [2.0f32, 2.0, -1.0, -1.0];
    let mut s = Sampler::new(cfg(1.0, 0, 1.0, 1.5, 0));
    let p0 = s.probs(&logits, &[]);
    let p = s.probs(&logits, &[0, 0, 2]);
    // A positive logit is divided, a negative one multiplied: both drop.
    assert!(p[0] < p0[0], "{p:?} vs {p0:?}");
    assert!(p[2] < p0[2]);
    // Not-repeated tokens gain.
    assert!(p[1] > p0[1]);
    // Penalty applies once per distinct id; out-of-range ids are ignored.
    let q = s.probs(&logits, &[0, -5, 99]);
    let q1 = s.probs(&logits, &[0]);
    assert_eq!(q, q1);
    // Over draws, a heavily penalized token is rarely picked.
    let mut s = Sampler::new(cfg(1.0, 0, 1.0, 10.0, 3));
    let hits = (0..2000).filter(|_| s.next(&logits, &[0]) == 0).count();
    assert!(hits < 300, "{hits}");
}

#[test]
fn top_k_ties_are_kept_like_hf() {
    let mut s = Sampler::new(cfg(1.0, 2, 1.0, 1.0, 0));
    let p = s.probs(&[1.0, 3.0, 2.0, 2.0, 0.0], &[]);
    assert!(p[1] > 0.0 && p[2] > 0.0 && p[3] > 0.0);
    assert_eq!(p[0], 0.0);
    assert_eq!(p[4], 0.0);
}

#[test]
fn top_p_keeps_the_smallest_nucleus() {
    // Probabilities 0.5, 0.3, 0.2 (logits = ln p).
    let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
    let kept = |p: f32| {
        let mut s = Sampler::new(cfg(1.0, 0, p, 1.0, 0));
        let probs = s.probs(&logits, &[]);
        probs.iter().filter(|x| **x > 0.0).count()
    };
    assert_eq!(kept(0.4), 1);
    assert_eq!(kept(0.5), 1);
    assert_eq!(kept(0.7), 2);
    assert_eq!(kept(0.85), 3);
    assert_eq!(kept(1.0), 3);
    // Always at least one.
    assert_eq!(kept(1e-9), 1);
}

#[test]
fn bad_input_does_not_panic() {
    let mut s = Sampler::new(SamplingConfig::default());
    assert_eq!(s.next(&[], &[]), -1);
    let t = s.next(&[f32::NAN, f32::NAN], &[]);
    assert!(t == 0 || t == 1);
    assert_eq!(s.next(&[0.0, f32::INFINITY, 1.0], &[]), 1);
    assert_eq!(
        s.next(&[f32::NEG_INFINITY, f32::NEG_INFINITY, 5.0], &[7, -1]),
        2
    );
    let mut s = Sampler::new(cfg(f32::NAN, 0, f32::NAN, f32::NAN, 0));
    assert_eq!(s.next(&[0.0, 1.0], &[1]), 1);
    assert!(cfg(f32::NAN, 0, 1.0, 1.0, 0).validate().is_err());
    assert!(cfg(1.0, 0, 0.0, 1.0, 0).validate().is_err());
    assert!(cfg(1.0, 0, 1.0, 0.0, 0).validate().is_err());
    assert!(SamplingConfig::default().validate().is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn top_k_never_samples_outside_the_top_k(
        logits in prop::collection::vec(-5.0f32..5.0, 2..40),
        k in 1usize..10,
        seed in any::<u64>(),
        temp in 0.2f32..2.0,
    ) {
        let mut sorted = logits.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[(k - 1).min(sorted.len() - 1)];
        let mut s = Sampler::new(cfg(temp, k, 1.0, 1.0, seed));
        for _ in 0..200 {
            let t = s.next(&logits, &[]);
            prop_assert!(t >= 0 && (t as usize) < logits.len());
            prop_assert!(logits[t as usize] >= kth, "token {} logit {} below k-th {}", t, logits[t as usize], kth);
        }
    }

    #[test]
    fn top_p_never_samples_outside_the_nucleus(
        logits in prop::collection::vec(-5.0f32..5.0, 2..40),
        p in 0.05f32..0.99,
        seed in any::<u64>(),
    ) {
        // The nucleus computed independently: most probable first, until
        // the cumulative probability reaches p.
        let max = logits.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let w: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
        let total: f64 = w.iter().sum();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        let mut nucleus = Vec::new();
        let mut acc = 0.0;
        for &i in &order {
            nucleus.push(i);
            acc += w[i] / total;
            if acc >= p as f64 - 1e-6 { break; }
        }
        // Allow for rounding at the boundary: the next token in order.
        if let Some(&extra) = order.get(nucleus.len()) { nucleus.push(extra); }
        let mut s = Sampler::new(cfg(1.0, 0, p, 1.0, seed));
        for _ in 0..200 {
            let t = s.next(&logits, &[]) as usize;
            prop_assert!(nucleus.contains(&t), "token {} outside nucleus {:?}", t, nucleus);
        }
        // And the kept set is exactly a prefix of `order` with mass ≥ p.
        let probs = s.probs(&logits, &[]);
        let kept: Vec<usize> = order.iter().copied().filter(|&i| probs[i] > 0.0).collect();
        prop_assert!(!kept.is_empty());
        prop_assert_eq!(&kept[..], &order[..kept.len()]);
        let mass: f64 = kept.iter().map(|&i| w[i] / total).sum();
        prop_assert!(mass >= p as f64 - 1e-5);
    }

    #[test]
    fn probs_sum_to_one(
        logits in prop::collection::vec(-10.0f32..10.0, 1..30),
        k in 0usize..8, p in 0.1f32..1.0, seed in any::<u64>(),
    ) {
        let mut s = Sampler::new(cfg(0.8, k, p, 1.2, seed));
        let probs = s.probs(&logits, &[0, 1]);
        let sum: f32 = probs.iter().sum();
        prop_assert!((sum - 1.0).abs() < 1e-4);
    }
}

#[test]
fn stop_at_eos() {
    let stop = Stop {
        eos: Some(9),
        ..Default::default()
    };
    let d = stop.check("<svg>", Some(9), 3, 10);
    assert_eq!(d.stop, Some(StopReason::Eos));
    assert_eq!(d.emit, 5);
    assert_eq!(stop.check("<svg>", Some(8), 3, 10).stop, None);
}

#[test]
fn stop_string_cuts_after_svg_close() {
    let stop = Stop::default();
    assert_eq!(stop.stop_strings, vec!["</svg>".to_string()]);
    let text = "<svg><g/></svg>\n<svg>junk";
    let d = stop.check(text, Some(1), 5, 5);
    assert_eq!(d.stop, Some(StopReason::StopString("</svg>".into())));
    assert_eq!(&text[..d.emit], "<svg><g/></svg>");
    // Two stop strings: the earliest end wins.
    let stop = Stop {
        stop_strings: vec!["</svg>".into(), "<eos>".into(), String::new()],
        ..Default::default()
    };
    let t = "<svg/><eos></svg>";
    let d = stop.check(t, None, 1, 1);
    assert_eq!(d.stop, Some(StopReason::StopString("<eos>".into())));
    assert_eq!(&t[..d.emit], "<svg/><eos>");
}

#[test]
fn stop_at_max_new_tokens_and_context() {
    let stop = Stop {
        max_new_tokens: 4,
        context: 10,
        ..Default::default()
    };
    assert_eq!(stop.check("ab", None, 3, 5).stop, None);
    assert_eq!(
        stop.check("ab", None, 4, 5).stop,
        Some(StopReason::MaxNewTokens)
    );
    assert_eq!(
        stop.check("ab", None, 2, 10).stop,
        Some(StopReason::Context)
    );
    let none = Stop {
        max_new_tokens: 0,
        context: 0,
        stop_strings: vec![],
        eos: None,
    };
    assert_eq!(
        none.check("</svg>", Some(0), 1_000_000, 1_000_000).stop,
        None
    );
}

/// A fake model over a byte vocabulary that spells `script` then repeats.
fn spell(script: &'static [u8]) -> impl FnMut(&[i32]) -> irc::Result<Vec<f32>> {
    let mut i = 0;
    move |_seq: &[i32]| {
        let mut l = vec![0.0f32; 256];
        l[script[i % script.len()] as usize] = 10.0;
        i += 1;
        Ok(l)
    }
}

fn bytes_decode(t: &[i32]) -> String {
    t.iter().map(|&b| b as u8 as char).collect()
}

#[test]
fn generate_emits_nothing_after_svg_close() {
    let mut s = Sampler::new(SamplingConfig::greedy());
    let g = generate(
        &[1, 2],
        &mut s,
        &Stop::default(),
        spell(b"<svg><g/></svg>TAIL<svg>"),
        bytes_decode,
    )
    .unwrap();
    assert_eq!(g.text, "<svg><g/></svg>");
    assert_eq!(g.reason, StopReason::StopString("</svg>".into()));
    assert_eq!(g.tokens.len(), g.text.len());

    // A token that carries text past the stop string is cut too.
    let mut s = Sampler::new(SamplingConfig::greedy());
    let g = generate(
        &[],
        &mut s,
        &Stop::default(),
        spell(b"<svg/></svg>x"),
        |t: &[i32]| {
            let mut s = bytes_decode(t);
            if s.ends_with('>') && s.contains("</svg") {
                s.push_str("\n<svg>more");
            }
            s
        },
    )
    .unwrap();
    assert_eq!(g.text, "<svg/></svg>");
}

#[test]
fn generate_stops_on_eos_max_and_context() {
    let stop = Stop {
        eos: Some(b'$' as i32),
        ..Default::default()
    };
    let mut s = Sampler::new(SamplingConfig::greedy());
    let g = generate(&[5], &mut s, &stop, spell(b"ab$cd"), bytes_decode).unwrap();
    assert_eq!((g.text.as_str(), g.reason), ("ab", StopReason::Eos));
    assert_eq!(g.tokens, vec![b'a' as i32, b'b' as i32]);

    let stop = Stop {
        max_new_tokens: 3,
        ..Default::default()
    };
    let g = generate(&[5], &mut s, &stop, spell(b"abcdef"), bytes_decode).unwrap();
    assert_eq!(
        (g.text.as_str(), g.reason),
        ("abc", StopReason::MaxNewTokens)
    );

    let stop = Stop {
        context: 4,
        ..Default::default()
    };
    let g = generate(&[5, 6], &mut s, &stop, spell(b"abcdef"), bytes_decode).unwrap();
    assert_eq!((g.text.as_str(), g.reason), ("ab", StopReason::Context));
    let g = generate(&[5; 4], &mut s, &stop, spell(b"abcdef"), bytes_decode).unwrap();
    assert_eq!(g.reason, StopReason::Context);
    assert!(g.tokens.is_empty());

    // A model error or an empty logits row is an error, not a panic.
    assert!(generate(&[1], &mut s, &Stop::default(), |_| Ok(vec![]), bytes_decode).is_err());
    assert!(generate(
        &[1],
        &mut s,
        &Stop::default(),
        |_| Err(irc::Error::new("boom")),
        bytes_decode
    )
    .is_err());
}
