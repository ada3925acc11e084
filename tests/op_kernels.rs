//! Every op's compiled kernel, alone, against the reference interpreter, on
//! every SIMD path this machine runs, at sizes that are no multiple of any
//! vector width or tile (B = 2, T = 7, or the case's own B and T); forward
//! and backward.
//!
//! Each op runs inside the smallest program the library ABI accepts:
//! tokens → embedding → OP → matmul → logits → cross-entropy. The cases come
//! from the op registry (`irc::ops::registry`), each family's own.

mod common;
use common::rel_err;
use irc::codegen;
use irc::driver::compile_graph;
use irc::ir::{interpret, Graph, NodeId, Op, TensorType, Value};
use irc::ops::{self, Case, Dims, Operand};
use irc::passes::Program;
use irc::runtime::{Library, Session, Weights};
use irc::spec::{Spec, Target};
use irc::toolchain::{self, Toolchain};
use irc::util::Rng;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The (B, T) a case runs at unless it names its own (`Case::dims`).
const DIMS: Dims = Dims { b: 2, t: 7 };
const C: usize = 13;
const V: usize = 19;

fn run_op(case: &Case) {
    let name = case.name.as_str();
    let dims = case.dims.unwrap_or(DIMS);
    #[allow(non_snake_case)]
    let (B, T) = (dims.b, dims.t);
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
    let y = build(case, &mut g, x, &mut param);
    assert_eq!(
        g.node(y).ty.shape[..2],
        [B, T],
        "{name}: a kernel case's output is (B, T, N)"
    );
    let n = g.node(y).ty.last();
    let w = param(&mut g, "head", &[n, V]);
    let logits = g.add(Op::matmul(false, false), &[y, w], "logits").unwrap();
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

    // bf16 GEMMs run each of their formats the path has (the same bits).
    let bf16 = g
        .ids()
        .iter()
        .any(|&id| matches!(g.node(id).op, Op::MatMul { bf16: true, .. }));
    let mut variants = vec![];
    for target in Target::host_paths() {
        if !bf16 {
            variants.push((target, ""));
            continue;
        }
        variants.push((target, "emulated"));
        if target == Target::Avx512 && irc::spec::Bf16Dot::host_has_native() {
            variants.push((target, "native"));
        }
    }
    for (target, dot) in variants {
        let dtype = if dot.is_empty() {
            String::new()
        } else {
            format!("dtype='bf16'\nbf16_dot='{dot}'\n")
        };
        let spec_src = format!(
            "[model]\nname='op_{}_{}{dot}'\nfamily='gpt2'\nvocab_size={V}\ncontext={T}\nlayers=1\nd_model={C}\nheads=1\n[build]\nbatch={B}\nseq_len={T}\ntarget='{}'\n{dtype}",
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
        let got = s.grad_weights().unwrap();
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

/// The case's steps over the harness's x `(B, T, C)`: an activation of
/// another width is x times a weight.
fn build(
    case: &Case,
    g: &mut Graph,
    x: NodeId,
    param: &mut dyn FnMut(&mut Graph, &str, &[usize]) -> NodeId,
) -> NodeId {
    let mut steps: Vec<NodeId> = vec![];
    for (s, (op, operands)) in case.steps.iter().enumerate() {
        let mut ins = vec![];
        for (k, o) in operands.iter().enumerate() {
            let name = format!("s{s}.{k}");
            ins.push(match o {
                Operand::X(n) if *n == C => x,
                Operand::X(n) => {
                    let w = param(g, &format!("w{name}"), &[C, *n]);
                    let mm = Op::matmul(false, false);
                    g.add(mm, &[x, w], format!("x{name}")).unwrap()
                }
                Operand::Param(shape) => param(g, &format!("p{name}"), shape),
                Operand::Norm(n) => param(g, &format!("norm{name}"), &[*n]),
                Operand::Ids(_) => panic!("{}: the kernel harness has no id operands", case.name),
                Operand::Step(i) => steps[*i],
            });
        }
        steps.push(g.add(op.clone(), &ins, format!("y{s}")).unwrap());
    }
    *steps.last().unwrap()
}

/// Every kernel case of every op family in the registry, two at a time.
#[test]
fn every_registered_op() {
    let cases: Vec<Case> = ops::registry()
        .iter()
        .flat_map(|f| (f.cases)(DIMS))
        .filter(|c| c.kernel)
        .collect();
    assert!(!cases.is_empty());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                run_op(case);
            });
        }
    });
}
