//! Finite differences in f64 against autodiff through the reference
//! interpreter: every op's VJP, and whole GPT-2 and Llama models.

use irc::ir::{interpret, Graph, NodeId, Op, Tensor, TensorType, Value};
use irc::passes::autodiff::{differentiate, grad_output};
use irc::passes::lower::{lower, Program};
use irc::spec::Spec;
use irc::util::Rng;
use std::collections::BTreeMap;
use std::path::Path;

type Feeds = BTreeMap<String, Value<f64>>;

fn loss_of(g: &Graph, feeds: &Feeds) -> f64 {
    let vals = interpret(g, feeds).unwrap();
    vals[&g.output("loss").unwrap()].f().data[0]
}

/// Compare autodiff gradients with central differences on `samples` entries
/// of every parameter tensor. Returns the worst relative error.
fn check(g: &mut Graph, feeds: &Feeds, samples: usize, what: &str) -> f64 {
    let loss = g.output("loss").unwrap();
    let grads = differentiate(g, loss).unwrap();
    assert!(!grads.is_empty(), "{what}: no gradients");
    let vals = interpret(g, feeds).unwrap();
    let mut rng = Rng::new(7);
    let mut worst: f64 = 0.0;
    for (name, _) in &grads {
        let ad = &vals[&g.output(&grad_output(name)).unwrap()].f().data;
        let n = ad.len();
        let picks: Vec<usize> = if n <= samples {
            (0..n).collect()
        } else {
            (0..samples).map(|_| rng.below(n as u64) as usize).collect()
        };
        for i in picks {
            // Fourth-order central differences: truncation O(h⁴), round-off
            // O(ε/h), both far below 1e-6 relative at h = 1e-3.
            let h = 1e-3;
            let at = |dx: f64| {
                let mut f = feeds.clone();
                let Value::F(t) = f.get_mut(name).unwrap() else {
                    unreachable!()
                };
                t.data[i] += dx;
                loss_of(g, &f)
            };
            let fd = (-at(2.0 * h) + 8.0 * at(h) - 8.0 * at(-h) + at(-2.0 * h)) / (12.0 * h);
            // Relative error; gradients below 1e-6 (round-off territory of the
            // differences) are held to 1e-12 absolute instead.
            let err = (ad[i] - fd).abs() / ad[i].abs().max(fd.abs()).max(1e-6);
            assert!(err <= 1e-6, "{what}: d loss / d {name}[{i}]: autodiff {} vs finite differences {fd} (rel err {err:e})", ad[i]);
            worst = worst.max(err);
        }
    }
    worst
}

fn randn(rng: &mut Rng, shape: &[usize], scale: f64) -> Value<f64> {
    let n = shape.iter().product();
    Value::F(Tensor::new(
        shape,
        (0..n).map(|_| rng.normal() * scale).collect(),
    ))
}

fn model_check(src: &str, with_ignored: bool) {
    let spec = Spec::parse(Path::new("t.toml"), src).unwrap();
    let (b, t) = (2, 5);
    let mut g = lower(&spec.model, Program::forward(b, t)).unwrap();
    let mut rng = Rng::new(1);
    let mut feeds: Feeds = BTreeMap::new();
    for (_, name, ty) in g.params() {
        let v = if name.contains("norm") || name.contains("ln_") {
            let n = ty.numel();
            Value::F(Tensor::new(
                &ty.shape,
                (0..n).map(|_| 1.0 + 0.3 * rng.normal()).collect(),
            ))
        } else {
            randn(&mut rng, &ty.shape, 0.3)
        };
        feeds.insert(name, v);
    }
    let v = spec.model.vocab_size as u64;
    feeds.insert(
        "tokens".into(),
        Value::I((0..b * t).map(|_| rng.below(v) as i32).collect()),
    );
    let mut targets: Vec<i32> = (0..b * t).map(|_| rng.below(v) as i32).collect();
    if with_ignored {
        targets[0] = -100;
        targets[t + 2] = -100;
    }
    feeds.insert("targets".into(), Value::I(targets));
    let worst = check(&mut g, &feeds, 4, &spec.model.name);
    println!("{}: worst relative error {worst:e}", spec.model.name);
}

#[test]
fn gpt2_model_gradients() {
    model_check(
        "[model]\nname='g'\nfamily='gpt2'\nvocab_size=11\ncontext=8\nlayers=2\nd_model=8\nheads=2\n",
        true,
    );
}

#[test]
fn llama_model_gradients() {
    model_check(
        "[model]\nname='l'\nfamily='llama'\nvocab_size=11\ncontext=8\nlayers=2\nd_model=8\nheads=2\nkv_heads=1\nffn_hidden=12\n",
        true,
    );
    model_check(
        "[model]\nname='l_tied_bias'\nfamily='llama'\nvocab_size=9\ncontext=8\nlayers=1\nd_model=8\nheads=2\nbias=true\ntied_embeddings=true\n",
        false,
    );
}

/// Each op on its own: out = op(params...), loss = CE(rows(out) · W, targets).
fn op_check(name: &str, build: impl Fn(&mut Graph, &mut Feeds, &mut Rng) -> NodeId) {
    let mut g = Graph::new();
    let mut feeds: Feeds = BTreeMap::new();
    let mut rng = Rng::new(3);
    let out = build(&mut g, &mut feeds, &mut rng);
    let ty = g.node(out).ty.clone();
    let n = ty.last();
    let rows = ty.numel() / n;
    let flat = g
        .add(
            Op::Reshape {
                shape: vec![rows, n],
            },
            &[out],
            "rows",
        )
        .unwrap();
    let w = g.leaf(
        Op::Param {
            name: "proj".into(),
        },
        TensorType::f32(&[n, 5]),
        "proj",
    );
    feeds.insert("proj".into(), randn(&mut rng, &[n, 5], 1.0));
    let logits = g
        .add(
            Op::MatMul {
                ta: false,
                tb: false,
            },
            &[flat, w],
            "logits",
        )
        .unwrap();
    let tg = g.leaf(
        Op::Input {
            name: "targets".into(),
        },
        TensorType::i32(&[rows]),
        "targets",
    );
    feeds.insert(
        "targets".into(),
        Value::I(
            (0..rows)
                .map(|i| if i == 1 { -100 } else { rng.below(5) as i32 })
                .collect(),
        ),
    );
    let loss = g.add(Op::CrossEntropy, &[logits, tg], "loss").unwrap();
    g.mark_output("loss", loss);
    let worst = check(&mut g, &feeds, 6, name);
    println!("{name}: worst relative error {worst:e}");
}

fn param(g: &mut Graph, feeds: &mut Feeds, rng: &mut Rng, name: &str, shape: &[usize]) -> NodeId {
    feeds.insert(name.into(), randn(rng, shape, 1.0));
    g.leaf(
        Op::Param { name: name.into() },
        TensorType::f32(shape),
        name,
    )
}

#[test]
fn every_op_vjp_matches_finite_differences() {
    let un = |op: Op, shape: &'static [usize]| {
        move |g: &mut Graph, f: &mut Feeds, r: &mut Rng| {
            let x = param(g, f, r, "x", shape);
            g.add(op.clone(), &[x], "y").unwrap()
        }
    };
    op_check("gelu", un(Op::Gelu, &[3, 7]));
    op_check("silu", un(Op::Silu, &[3, 7]));
    op_check("softmax", un(Op::Softmax, &[3, 7]));
    op_check("scale", un(Op::Scale { by: -0.7 }, &[2, 3]));
    op_check(
        "rope",
        un(
            Op::Rope {
                head_dim: 4,
                theta: 100.0,
                inverse: false,
            },
            &[2, 3, 8],
        ),
    );
    op_check("narrow", un(Op::Narrow { start: 2, len: 3 }, &[4, 7]));
    op_check("slice", un(Op::Slice { start: 1, len: 2 }, &[4, 3]));
    op_check("reshape", un(Op::Reshape { shape: vec![6, 2] }, &[3, 4]));
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        op_check(&format!("matmul ta={ta} tb={tb}"), move |g, f, r| {
            let a = param(g, f, r, "a", if ta { &[4, 3] } else { &[3, 4] });
            let b = param(g, f, r, "b", if tb { &[5, 4] } else { &[4, 5] });
            g.add(Op::MatMul { ta, tb }, &[a, b], "y").unwrap()
        });
        op_check(
            &format!("batched matmul ta={ta} tb={tb}"),
            move |g, f, r| {
                let a = param(g, f, r, "a", if ta { &[2, 4, 3] } else { &[2, 3, 4] });
                let b = param(g, f, r, "b", if tb { &[2, 5, 4] } else { &[2, 4, 5] });
                g.add(Op::MatMul { ta, tb }, &[a, b], "y").unwrap()
            },
        );
    }
    op_check("matmul with leading axes and a shared weight", |g, f, r| {
        let a = param(g, f, r, "a", &[2, 3, 4]);
        let b = param(g, f, r, "b", &[4, 5]);
        g.add(
            Op::MatMul {
                ta: false,
                tb: false,
            },
            &[a, b],
            "y",
        )
        .unwrap()
    });
    for op in [Op::Add, Op::Mul] {
        op_check(&format!("{} broadcast", op.mnemonic()), move |g, f, r| {
            let a = param(g, f, r, "a", &[2, 3, 4]);
            let b = param(g, f, r, "b", &[3, 4]);
            g.add(op.clone(), &[a, b], "y").unwrap()
        });
    }
    op_check("mul of a tensor by itself", |g, f, r| {
        let a = param(g, f, r, "a", &[3, 4]);
        g.add(Op::Mul, &[a, a], "y").unwrap()
    });
    op_check("layernorm", |g, f, r| {
        let x = param(g, f, r, "x", &[3, 6]);
        let w = param(g, f, r, "w", &[6]);
        let b = param(g, f, r, "b", &[6]);
        g.add(Op::LayerNorm { eps: 1e-5 }, &[x, w, b], "y").unwrap()
    });
    op_check("rmsnorm", |g, f, r| {
        let x = param(g, f, r, "x", &[3, 6]);
        let w = param(g, f, r, "w", &[6]);
        g.add(Op::RmsNorm { eps: 1e-6 }, &[x, w], "y").unwrap()
    });
    for (h, kv) in [(2, 2), (4, 2), (3, 1)] {
        op_check(
            &format!("attention heads={h} kv_heads={kv}"),
            move |g, f, r| {
                let q = param(g, f, r, "q", &[2, 4, h * 3]);
                let k = param(g, f, r, "k", &[2, 4, kv * 3]);
                let v = param(g, f, r, "v", &[2, 4, kv * 3]);
                g.add(
                    Op::Attention {
                        heads: h,
                        kv_heads: kv,
                        head_dim: 3,
                    },
                    &[q, k, v],
                    "y",
                )
                .unwrap()
            },
        );
    }
    op_check("embedding", |g, f, r| {
        let table = param(g, f, r, "table", &[6, 4]);
        let ids = g.leaf(
            Op::Input { name: "ids".into() },
            TensorType::i32(&[2, 3]),
            "ids",
        );
        f.insert("ids".into(), Value::I(vec![0, 5, 2, 2, 1, 5]));
        g.add(Op::Embedding, &[table, ids], "y").unwrap()
    });
}
