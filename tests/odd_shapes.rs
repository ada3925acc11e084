//! Models whose sizes are multiples of no vector width or GEMM tile, built for
//! every SIMD path this CPU runs: compiled logits and loss against the f64
//! interpreter, causality and padding (a smaller b × t forward is a slice of
//! the full one), and thread-count independence (bit-identical logits).

mod common;
use common::*;
use irc::runtime::Weights;
use irc::spec::{Spec, Target};
use std::path::Path;

/// xorshift64*: deterministic tokens without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> i32 {
        (self.next() % n as u64) as i32
    }
}

fn parse(name: &str, model: &str, build: &str) -> Spec {
    let src = format!("[model]\nname = \"{name}\"\n{model}\n[build]\n{build}\n");
    Spec::parse(Path::new(&format!("{name}.toml")), &src).unwrap_or_else(|e| panic!("{e}"))
}

/// The family's init with every tensor scaled by `scale`, so activations are
/// far from zero and the norms, softmaxes and nonlinearities all matter.
fn scaled_weights(w: Weights, scale: f32) -> Weights {
    let mut out = Weights::default();
    for (name, t) in w.cast::<f64>() {
        let data = t.data.iter().map(|&x| x as f32 * scale).collect();
        out.insert(&name, &t.shape, data);
    }
    out
}

fn check(spec: &Spec, seed: u64) {
    let (batch, seq, v) = (spec.build.batch, spec.build.seq_len, spec.model.vocab_size);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let tokens: Vec<i32> = (0..batch * seq).map(|_| rng.below(v)).collect();
    let targets: Vec<i32> = (0..batch * seq)
        .map(|i| if i % 5 == 2 { -100 } else { rng.below(v) })
        .collect();
    let name = &spec.model.name;

    let mut reference: Option<(Vec<f32>, f64)> = None;
    for target in Target::host_paths() {
        let path = target.name();
        let dir = tempfile::tempdir().unwrap();
        let built = build(spec, target, dir.path());
        let w = scaled_weights(built.init_weights(seed), 5.0);
        if reference.is_none() {
            let out = interp::<f64>(&built, &w, &tokens, &targets);
            let logits = out["logits"].iter().map(|&x| x as f32).collect();
            reference = Some((logits, out["loss"][0]));
        }
        let (want_logits, want_loss) = reference.as_ref().unwrap();

        let mut s1 = built.session(1).unwrap();
        s1.load_weights(&w).unwrap();
        let (loss, logits) = s1.loss(&tokens, &targets, batch, seq).unwrap();
        assert_eq!(logits.len(), batch * seq * v);
        assert!(
            logits.iter().all(|x| x.is_finite()),
            "{name} {path}: non-finite logits"
        );
        let e = rel_err(&logits, want_logits);
        assert!(
            e <= 1e-4,
            "{name} {path}: logits vs interpreter rel err {e:e}"
        );
        let le = (loss as f64 - want_loss).abs() / want_loss.abs().max(1e-30);
        assert!(
            le <= 1e-4,
            "{name} {path}: loss {loss} vs interpreter {want_loss}"
        );
        // The interpreter's logits spread: a test of nothing if they are flat.
        let spread = want_logits.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(
            spread > 0.5,
            "{name}: logits too small to test anything ({spread})"
        );

        // forward() and loss() agree, and two threads change no bit.
        let full = s1.forward(&tokens, batch, seq).unwrap();
        assert_eq!(
            bits(&full),
            bits(&logits),
            "{name} {path}: forward != loss logits"
        );
        let mut s2 = built.session(2).unwrap();
        s2.load_weights(&w).unwrap();
        let two = s2.forward(&tokens, batch, seq).unwrap();
        assert_eq!(
            bits(&two),
            bits(&full),
            "{name} {path}: 1 vs 2 threads differ"
        );
        let (loss2, _) = s2.loss(&tokens, &targets, batch, seq).unwrap();
        assert_eq!(
            loss2.to_bits(),
            loss.to_bits(),
            "{name} {path}: loss with 1 vs 2 threads"
        );

        // Fewer sequences and shorter ones: the matching slice of the full run.
        let mut shapes = vec![(1, 1), (1, seq), (batch, 1)];
        if batch > 1 {
            shapes.push((batch - 1, seq.div_ceil(2)));
        }
        if seq > 2 {
            shapes.push((batch, seq - 1));
        }
        for (b, t) in shapes {
            let sub: Vec<i32> = (0..b)
                .flat_map(|i| tokens[i * seq..i * seq + t].to_vec())
                .collect();
            let got = s2.forward(&sub, b, t).unwrap();
            let want: Vec<f32> = (0..b)
                .flat_map(|i| full[i * seq * v..(i * seq + t) * v].to_vec())
                .collect();
            let e = rel_err(&got, &want);
            assert!(
                e <= 1e-5,
                "{name} {path}: forward {b}x{t} vs slice of {batch}x{seq}: rel err {e:e}"
            );
        }
        println!("{name} {path}: logits rel err {e:e}, loss {loss} (interpreter {want_loss})");
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

const ODD: &str = "vocab_size = 101\ncontext = 17\nlayers = 2\nd_model = 36\nffn_hidden = 77\n";
const ODD_BUILD: &str = "batch = 3\nseq_len = 13\n";

#[test]
fn gpt2_odd() {
    check(
        &parse(
            "gpt2_odd",
            &format!("family = \"gpt2\"\n{ODD}heads = 3\n"),
            ODD_BUILD,
        ),
        1,
    );
}

/// head_dim 9: odd, and no vector width divides it.
#[test]
fn gpt2_odd_head_dim() {
    let m =
        "family = \"gpt2\"\nvocab_size = 67\ncontext = 19\nlayers = 1\nd_model = 45\nheads = 5\n";
    check(&parse("gpt2_hd9", m, "batch = 2\nseq_len = 19\n"), 2);
}

#[test]
fn gpt2_tiny() {
    let m = "family = \"gpt2\"\nvocab_size = 7\ncontext = 5\nlayers = 1\nd_model = 8\nheads = 1\n";
    check(&parse("gpt2_tiny8", m, "batch = 2\nseq_len = 5\n"), 3);
}

/// A vocabulary spanning several GEMM panels, and a context longer than seq_len.
#[test]
fn gpt2_vocab_1000() {
    let m = "family = \"gpt2\"\nvocab_size = 1000\ncontext = 23\nlayers = 1\nd_model = 24\nheads = 2\nffn_hidden = 50\n";
    check(&parse("gpt2_v1000", m, "batch = 2\nseq_len = 11\n"), 4);
}

/// Grouped-query attention: 6 heads share 2 key/value heads, head_dim 6.
#[test]
fn llama_gqa_odd() {
    check(
        &parse(
            "llama_gqa",
            &format!("family = \"llama\"\n{ODD}heads = 6\nkv_heads = 2\n"),
            ODD_BUILD,
        ),
        5,
    );
}

/// Multi-query attention: 3 heads, 1 key/value head, head_dim 12.
#[test]
fn llama_mqa_odd() {
    check(
        &parse(
            "llama_mqa",
            &format!("family = \"llama\"\n{ODD}heads = 3\nkv_heads = 1\n"),
            ODD_BUILD,
        ),
        6,
    );
}

#[test]
fn llama_tiny() {
    let m = "family = \"llama\"\nvocab_size = 7\ncontext = 5\nlayers = 1\nd_model = 8\nheads = 1\nffn_hidden = 3\n";
    check(&parse("llama_tiny8", m, "batch = 2\nseq_len = 5\n"), 7);
}

#[test]
fn llama_vocab_1000() {
    let m = "family = \"llama\"\nvocab_size = 1000\ncontext = 23\nlayers = 2\nd_model = 20\nheads = 5\nkv_heads = 1\nffn_hidden = 50\n";
    check(&parse("llama_v1000", m, "batch = 3\nseq_len = 11\n"), 8);
}

/// Every activation a GPT-2 MLP can take (from the op registry), in a whole
/// model: compiled logits and loss against the interpreter on every path.
#[test]
fn gpt2_every_activation() {
    let plain = irc::ops::Act::ALL.iter().filter(|a| !a.def().gated);
    for (i, a) in plain.enumerate() {
        let spec = a.def().spec;
        let m = format!("family = \"gpt2\"\n{ODD}heads = 3\nactivation = \"{spec}\"\n");
        check(
            &parse(&format!("gpt2_{spec}"), &m, ODD_BUILD),
            10 + i as u64,
        );
    }
}
