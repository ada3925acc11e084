//! Every op's compiled kernel, alone, against the reference interpreter, on
//! every SIMD path this machine runs, at sizes that are no multiple of any
//! vector width or tile; forward and backward.
//!
//! Each op runs inside the smallest program the library ABI accepts:
//! tokens → embedding → OP → matmul → logits → cross-entropy.

mod common;
use common::rel_err;
use irc::codegen;
use irc::driver::compile_graph;
use irc::ir::{interpret, Graph, NodeId, Op, TensorType, Value};
use irc::passes::Program;
use irc::runtime::{Library, Session, Weights};
use irc::spec::{Spec, Target};
use irc::toolchain::{self, Toolchain};
use irc::util::Rng;
use std::collections::BTreeMap;
use std::path::Path;

const B: usize = 2;
const T: usize = 7;
const C: usize = 13;
const V: usize = 19;

/// Adds a parameter of a name and shape to the graph (and to the weights).
type ParamFn<'a> = dyn FnMut(&mut Graph, &str, &[usize]) -> NodeId + 'a;
type Builder = dyn Fn(&mut Graph, NodeId, &mut ParamFn) -> NodeId;

fn run_op(name: &str, build_op: &Builder) {
    // The graph: tokens (B,T) → x (B,T,C) → y = op(x) (B,T,N) → logits (B,T,V).
    let mut g = Graph::new();
    let mut params: Vec<(String, Vec<usize>)> = vec![];
    let tokens = g.leaf(
        Op::Input {
            name: "tokens".into(),
        },
        TensorType::i32(&[B, T]),
        "tokens",
    );
    let table = g.leaf(
        Op::Param {
            name: "table".into(),
        },
        TensorType::f32(&[V, C]),
        "table",
    );
    params.push(("table".into(), vec![V, C]));
    let x = g.add(Op::Embedding, &[table, tokens], "x").unwrap();
    let mut param = |g: &mut Graph, n: &str, shape: &[usize]| {
        params.push((n.to_string(), shape.to_vec()));
        g.leaf(Op::Param { name: n.into() }, TensorType::f32(shape), n)
    };
    let y = build_op(&mut g, x, &mut param);
    let n = g.node(y).ty.last();
    let w = param(&mut g, "head", &[n, V]);
    let logits = g
        .add(
            Op::MatMul {
                ta: false,
                tb: false,
            },
            &[y, w],
            "logits",
        )
        .unwrap();
    let targets = g.leaf(
        Op::Input {
            name: "targets".into(),
        },
        TensorType::i32(&[B, T]),
        "targets",
    );
    let loss = g.add(Op::CrossEntropy, &[logits, targets], "loss").unwrap();
    g.mark_output("logits", logits);
    g.mark_output("loss", loss);

    let mut rng = Rng::new(11);
    let mut w = Weights::default();
    for (p, shape) in &params {
        let k: usize = shape.iter().product();
        let norm = p.starts_with("norm");
        w.insert(
            p,
            shape,
            (0..k)
                .map(|_| {
                    if norm {
                        1.0 + 0.3 * rng.normal() as f32
                    } else {
                        rng.normal() as f32 * 0.7
                    }
                })
                .collect(),
        );
    }
    let toks: Vec<i32> = (0..B * T).map(|_| rng.below(V as u64) as i32).collect();
    let tgts: Vec<i32> = (0..B * T)
        .map(|i| {
            if i == 3 {
                -100
            } else {
                rng.below(V as u64) as i32
            }
        })
        .collect();

    // The interpreter on the training graph: logits, loss and gradients.
    let prog = Program::forward(B, T);
    let mut feeds: BTreeMap<String, Value<f64>> = w
        .cast::<f64>()
        .into_iter()
        .map(|(k, v)| (k, Value::F(v)))
        .collect();
    feeds.insert("tokens".into(), Value::I(toks.clone()));
    feeds.insert("targets".into(), Value::I(tgts.clone()));
    let vals = interpret(&g, &feeds).unwrap();
    let want_logits: Vec<f32> = vals[&logits].f().data.iter().map(|&x| x as f32).collect();
    let train_ref = compile_graph(
        g.clone(),
        Program {
            train: true,
            ..prog
        },
        Target::Scalar,
    )
    .unwrap();
    let tv = interpret(&train_ref.graph, &feeds).unwrap();

    for target in Target::host_paths() {
        let spec_src = format!(
            "[model]\nname='op_{}_{}'\nfamily='gpt2'\nvocab_size={V}\ncontext={T}\nlayers=1\nd_model={C}\nheads=1\n[build]\nbatch={B}\nseq_len={T}\ntarget='{}'\n",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            target.name(),
            target.name()
        );
        let spec = Spec::parse(Path::new("op.toml"), &spec_src).unwrap();
        let fwd = compile_graph(g.clone(), prog, target).unwrap();
        let train = compile_graph(
            g.clone(),
            Program {
                train: true,
                ..prog
            },
            target,
        )
        .unwrap();
        let src = codegen::emit(&spec, &fwd, &train, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tc = Toolchain::find(target, 2).unwrap();
        toolchain::build(&src, &tc, dir.path())
            .unwrap_or_else(|e| panic!("{name} {}: {e}", target.name()));
        let lib = Library::open(
            &dir.path().join(toolchain::SHARED_LIB),
            &src.prefix,
            &spec.build_hash(),
            (B, T, V),
        )
        .unwrap();
        let mut s = Session::new(&lib, 2).unwrap();
        s.load_weights(&w).unwrap();
        let (loss, logits) = s.loss(&toks, &tgts, B, T).unwrap();
        let e = rel_err(&logits, &want_logits);
        assert!(e <= 1e-4, "{name} {}: logits rel err {e:e}", target.name());
        let want_loss = vals[&g.output("loss").unwrap()].f().data[0];
        assert!(
            (loss as f64 - want_loss).abs() <= 1e-4 * want_loss.abs().max(1.0),
            "{name} {}: loss",
            target.name()
        );
        s.zero_grads();
        s.backward(&toks, &tgts, B, T).unwrap();
        let got = s.grad_weights();
        for (out_name, id) in train_ref.graph.outputs() {
            let Some(p) = out_name.strip_prefix("grad:") else {
                continue;
            };
            let want: Vec<f32> = tv[id].f().data.iter().map(|&x| x as f32).collect();
            let e = rel_err(&got.get(p).unwrap().data, &want);
            assert!(
                e <= 1e-4,
                "{name} {}: d loss / d {p}: rel err {e:e}",
                target.name()
            );
        }
    }
}

fn unary(op: Op) -> impl Fn(&mut Graph, NodeId, &mut ParamFn) -> NodeId {
    move |g, x, _| g.add(op.clone(), &[x], "y").unwrap()
}

#[test]
fn elementwise_and_row_ops() {
    run_op("gelu", &unary(Op::Gelu));
    run_op("silu", &unary(Op::Silu));
    run_op("scale", &unary(Op::Scale { by: -1.7 }));
    run_op("softmax", &unary(Op::Softmax));
    run_op("narrow", &unary(Op::Narrow { start: 3, len: 7 }));
    run_op("add broadcast", &|g, x, p| {
        let b = p(g, "b", &[T, C]);
        g.add(Op::Add, &[x, b], "y").unwrap()
    });
    run_op("mul broadcast", &|g, x, p| {
        let b = p(g, "b", &[C]);
        g.add(Op::Mul, &[x, b], "y").unwrap()
    });
    run_op("mul of two activations", &|g, x, _| {
        let s = g.add(Op::Silu, &[x], "s").unwrap();
        g.add(Op::Mul, &[s, x], "y").unwrap()
    });
}

#[test]
fn norms() {
    run_op("layernorm", &|g, x, p| {
        let w = p(g, "norm.w", &[C]);
        let b = p(g, "norm.b", &[C]);
        g.add(Op::LayerNorm { eps: 1e-5 }, &[x, w, b], "y").unwrap()
    });
    run_op("rmsnorm", &|g, x, p| {
        let w = p(g, "norm.w", &[C]);
        g.add(Op::RmsNorm { eps: 1e-6 }, &[x, w], "y").unwrap()
    });
    run_op("residual add + layernorm", &|g, x, p| {
        let w = p(g, "norm.w", &[C]);
        let b = p(g, "norm.b", &[C]);
        let s = g.add(Op::Gelu, &[x], "s").unwrap();
        let r = g.add(Op::Add, &[x, s], "r").unwrap();
        let n = g.add(Op::LayerNorm { eps: 1e-5 }, &[r, w, b], "n").unwrap();
        g.add(Op::Add, &[r, n], "y").unwrap()
    });
}

#[test]
fn matmuls() {
    for tb in [false, true] {
        run_op(&format!("matmul tb={tb}"), &move |g, x, p| {
            let w = p(g, "w", if tb { &[11, C] } else { &[C, 11] });
            g.add(Op::MatMul { ta: false, tb }, &[x, w], "y").unwrap()
        });
    }
    run_op("matmul + bias + gelu", &|g, x, p| {
        let w = p(g, "w", &[C, 21]);
        let b = p(g, "b", &[21]);
        let m = g
            .add(
                Op::MatMul {
                    ta: false,
                    tb: false,
                },
                &[x, w],
                "m",
            )
            .unwrap();
        let m = g.add(Op::Add, &[m, b], "mb").unwrap();
        g.add(Op::Gelu, &[m], "y").unwrap()
    });
    run_op("batched matmul", &|g, x, p| {
        let w = p(g, "w", &[B, C, 5]);
        g.add(
            Op::MatMul {
                ta: false,
                tb: false,
            },
            &[x, w],
            "y",
        )
        .unwrap()
    });
}

#[test]
fn rope_and_attention() {
    run_op("rope", &|g, x, p| {
        let w = p(g, "w", &[C, 12]);
        let q = g
            .add(
                Op::MatMul {
                    ta: false,
                    tb: false,
                },
                &[x, w],
                "q",
            )
            .unwrap();
        g.add(
            Op::Rope {
                head_dim: 6,
                theta: 500.0,
                inverse: false,
            },
            &[q],
            "y",
        )
        .unwrap()
    });
    for (h, kv) in [(2, 2), (4, 2), (3, 1)] {
        run_op(&format!("attention heads={h} kv={kv}"), &move |g, x, p| {
            let d = 5;
            let wq = p(g, "wq", &[C, h * d]);
            let wk = p(g, "wk", &[C, kv * d]);
            let wv = p(g, "wv", &[C, kv * d]);
            let q = g
                .add(
                    Op::MatMul {
                        ta: false,
                        tb: false,
                    },
                    &[x, wq],
                    "q",
                )
                .unwrap();
            let k = g
                .add(
                    Op::MatMul {
                        ta: false,
                        tb: false,
                    },
                    &[x, wk],
                    "k",
                )
                .unwrap();
            let v = g
                .add(
                    Op::MatMul {
                        ta: false,
                        tb: false,
                    },
                    &[x, wv],
                    "v",
                )
                .unwrap();
            g.add(
                Op::Attention {
                    heads: h,
                    kv_heads: kv,
                    head_dim: d,
                },
                &[q, k, v],
                "y",
            )
            .unwrap()
        });
    }
    run_op("attention on a packed qkv", &|g, x, p| {
        let w = p(g, "w", &[C, 3 * 8]);
        let qkv = g
            .add(
                Op::MatMul {
                    ta: false,
                    tb: false,
                },
                &[x, w],
                "qkv",
            )
            .unwrap();
        let q = g.add(Op::Narrow { start: 0, len: 8 }, &[qkv], "q").unwrap();
        let k = g.add(Op::Narrow { start: 8, len: 8 }, &[qkv], "k").unwrap();
        let v = g
            .add(Op::Narrow { start: 16, len: 8 }, &[qkv], "v")
            .unwrap();
        g.add(
            Op::Attention {
                heads: 2,
                kv_heads: 2,
                head_dim: 4,
            },
            &[q, k, v],
            "y",
        )
        .unwrap()
    });
}
