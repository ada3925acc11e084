//! Finite differences in f64 against autodiff through the reference
//! interpreter: every op's VJP, and whole GPT-2 and Llama models.

use irc::ir::{interpret, DType, Graph, NodeId, Op, Tensor, TensorType, Value};
use irc::ops::{self, Case, Dims, Operand};
use irc::passes::autodiff::{differentiate, grad_output};
use irc::passes::lower::{lower, Program};
use irc::spec::Spec;
use irc::util::Rng;
use std::collections::{BTreeMap, BTreeSet};
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
    let grads = differentiate(g, loss, true).unwrap();
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

/// The loss of the op checks: CE(rows(out) · W, targets), with W and the
/// targets (one ignored) fed from `rng`.
fn with_loss(g: &mut Graph, feeds: &mut Feeds, rng: &mut Rng, out: NodeId) -> NodeId {
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
    feeds.insert("proj".into(), randn(rng, &[n, 5], 1.0));
    let mm = Op::matmul(false, false);
    let logits = g.add(mm, &[flat, w], "logits").unwrap();
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
    g.add(Op::CrossEntropy, &[logits, tg], "loss").unwrap()
}

/// Each op on its own: out = op(params...), loss = CE(rows(out) · W, targets).
fn op_check(name: &str, build: impl Fn(&mut Graph, &mut Feeds, &mut Rng) -> NodeId) {
    let mut g = Graph::new();
    let mut feeds: Feeds = BTreeMap::new();
    let mut rng = Rng::new(3);
    let out = build(&mut g, &mut feeds, &mut rng);
    let loss = with_loss(&mut g, &mut feeds, &mut rng, out);
    g.mark_output("loss", loss);
    let worst = check(&mut g, &feeds, 6, name);
    println!("{name}: worst relative error {worst:e}");
}

fn param(g: &mut Graph, feeds: &mut Feeds, name: &str, v: Value<f64>, ty: TensorType) -> NodeId {
    feeds.insert(name.into(), v);
    let op = if ty.dtype == DType::I32 {
        Op::Input { name: name.into() }
    } else {
        Op::Param { name: name.into() }
    };
    g.leaf(op, ty, name)
}

const DIMS: Dims = Dims { b: 2, t: 3 };

/// The case's steps over fresh parameters (activations are parameters too,
/// so their gradients are checked).
fn build(case: &Case, g: &mut Graph, f: &mut Feeds, r: &mut Rng) -> NodeId {
    let (b, t) = (DIMS.b, DIMS.t);
    let mut steps: Vec<NodeId> = vec![];
    for (s, (op, operands)) in case.steps.iter().enumerate() {
        let mut ins = vec![];
        for (k, o) in operands.iter().enumerate() {
            let name = format!("s{s}.{k}");
            ins.push(match o {
                Operand::X(n) => {
                    let v = randn(r, &[b, t, *n], 1.0);
                    param(g, f, &format!("x{name}"), v, TensorType::f32(&[b, t, *n]))
                }
                Operand::Param(shape) => {
                    let v = randn(r, shape, 1.0);
                    param(g, f, &format!("p{name}"), v, TensorType::f32(shape))
                }
                Operand::Norm(n) => {
                    let v = Value::F(Tensor::new(
                        &[*n],
                        (0..*n).map(|_| 1.0 + 0.3 * r.normal()).collect(),
                    ));
                    param(g, f, &format!("norm{name}"), v, TensorType::f32(&[*n]))
                }
                Operand::Ids(vocab) => {
                    let v = Value::I((0..b * t).map(|_| r.below(*vocab as u64) as i32).collect());
                    param(g, f, &format!("ids{name}"), v, TensorType::i32(&[b, t]))
                }
                Operand::Step(i) => steps[*i],
            });
        }
        steps.push(g.add(op.clone(), &ins, format!("y{s}")).unwrap());
    }
    *steps.last().unwrap()
}

fn all_cases() -> Vec<Case> {
    ops::registry()
        .iter()
        .flat_map(|f| (f.cases)(DIMS))
        .collect()
}

#[test]
fn every_op_vjp_matches_finite_differences() {
    for case in all_cases().into_iter().filter(|c| c.gradcheck) {
        op_check(&case.name, |g, f, r| build(&case, g, f, r));
    }
}

/// The registry's promise: every op of every family is in some test case
/// (forward, or the backward autodiff makes of one), and every op a case
/// uses is listed by its family. An op added without a case fails here.
#[test]
fn every_registered_op_has_a_case() {
    let mut seen = BTreeSet::new();
    for case in all_cases() {
        let mut g = Graph::new();
        let (mut feeds, mut rng) = (BTreeMap::new(), Rng::new(1));
        let out = build(&case, &mut g, &mut feeds, &mut rng);
        let loss = with_loss(&mut g, &mut feeds, &mut rng, out);
        differentiate(&mut g, loss, true).unwrap();
        seen.extend(g.ids().into_iter().map(|id| g.node(id).op.mnemonic()));
    }
    let mut listed = BTreeSet::from(["input", "param", "state"]);
    for fam in ops::registry() {
        for op in (fam.ops)() {
            listed.insert(op);
            if fam.tested_in.is_none() {
                assert!(
                    seen.contains(op),
                    "op `{op}` (family {}) has no test case: add one to its `cases`",
                    fam.name
                );
            }
        }
    }
    for op in &seen {
        assert!(
            listed.contains(op),
            "op `{op}` is in no family's `ops` list"
        );
    }
}
