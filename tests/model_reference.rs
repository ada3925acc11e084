//! Whole models against what PyTorch + transformers compute for the same
//! weights and tokens (tests/reference), and against irc's own interpreter,
//! on every SIMD path this machine runs.

mod common;
use common::*;
use irc::spec::Target;

fn check_model(spec_file: &str, reference: &str) {
    let spec = spec(spec_file);
    let w = common::reference(reference, "model.safetensors");
    let fwd = common::reference(reference, "forward.safetensors");
    let (shape, tokens) = reference_ids(reference, "forward.safetensors", "input_ids");
    let (_, targets) = reference_ids(reference, "forward.safetensors", "targets");
    let (b, t) = (shape[0], shape[1]);
    let want_logits = &fwd.get("logits").unwrap().data;
    let want_loss = fwd.get("loss").unwrap().data[0];

    for target in Target::host_paths() {
        let dir = tempfile::tempdir().unwrap();
        let built = build(&spec, target, dir.path());
        let mut s = built.session(2).unwrap();
        s.load_weights(&w).unwrap();
        let (loss, logits) = s.loss(&tokens, &targets, b, t).unwrap();
        let e = rel_err(&logits, want_logits);
        assert!(
            e <= 1e-4,
            "{reference} {}: logits vs transformers rel err {e:e}",
            target.name()
        );
        let le = ((loss - want_loss) / want_loss).abs();
        assert!(
            le <= 1e-4,
            "{reference} {}: loss {loss} vs transformers {want_loss}",
            target.name()
        );
        // forward() gives the same logits as loss().
        assert_eq!(s.forward(&tokens, b, t).unwrap(), logits);

        // The interpreter in f64 on the same graph.
        let out = interp::<f64>(&built, &w, &tokens, &targets);
        let il: Vec<f32> = out["logits"].iter().map(|&x| x as f32).collect();
        let e = rel_err(&logits, &il);
        assert!(
            e <= 1e-4,
            "{reference} {}: logits vs interpreter rel err {e:e}",
            target.name()
        );
        let e = rel_err(&il, want_logits);
        assert!(
            e <= 1e-5,
            "{reference}: interpreter vs transformers rel err {e:e}"
        );
        println!(
            "{reference} {}: logits rel err {e:e}, loss {loss} (transformers {want_loss})",
            target.name()
        );
    }
}

#[test]
fn gpt2_tiny_matches_transformers() {
    check_model("models/tiny-gpt2.toml", "gpt2-tiny");
}

#[test]
fn llama_tiny_matches_transformers() {
    check_model("models/tiny-llama.toml", "llama-tiny");
}

/// Greedy decoding by full recompute reproduces transformers' tokens.
#[test]
fn greedy_tokens_match_transformers() {
    for (spec_file, reference) in [
        ("models/tiny-gpt2.toml", "gpt2-tiny"),
        ("models/tiny-llama.toml", "llama-tiny"),
    ] {
        let spec = spec(spec_file);
        let w = common::reference(reference, "model.safetensors");
        let (_, prompt) = reference_ids(reference, "greedy.safetensors", "prompt");
        let (_, want) = reference_ids(reference, "greedy.safetensors", "greedy");
        let dir = tempfile::tempdir().unwrap();
        let built = build(&spec, Target::Native, dir.path());
        let mut s = built.session(2).unwrap();
        s.load_weights(&w).unwrap();
        let mut seq = prompt.clone();
        let v = spec.model.vocab_size;
        while seq.len() < want.len() {
            let logits = s.forward(&seq, 1, seq.len()).unwrap();
            let last = &logits[(seq.len() - 1) * v..];
            let next = (0..v).max_by(|&a, &b| last[a].total_cmp(&last[b])).unwrap();
            seq.push(next as i32);
        }
        assert_eq!(seq, want, "{reference}: greedy tokens");
    }
}
