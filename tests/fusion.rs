//! What fusion makes of a training step: the kernels the issue tracker asked
//! for are there, and the ops they absorb are not left as kernels of their own.
//! (That the fused kernels compute the same as the interpreter is checked by
//! op_kernels, odd_shapes and backward.)

use irc::ir::{KernelKind, Op};
use irc::model::Programs;
use irc::ops::Act;
use irc::spec::Spec;
use std::path::Path;

fn programs(spec: &str) -> Programs {
    let spec = Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(spec)).unwrap();
    Programs::compile(&spec).unwrap()
}

fn count(p: &irc::driver::Compiled, kind: KernelKind) -> usize {
    p.kernels.iter().filter(|k| k.kind == kind).count()
}

#[test]
fn gpt2_training_step_fuses_gelu_and_the_residual_gradient() {
    let p = programs("tests/in/tiny_gpt2.toml");
    let layers = 2;
    let t = &p.train;
    let gelu = Some(Act::GeluTanh);
    // Forward: GELU in the c_fc GEMM's epilogue, its input stored for the backward.
    let fwd = KernelKind::Gemm {
        bias: true,
        act: gelu,
    };
    assert_eq!(count(t, fwd), layers);
    for k in t.kernels.iter().filter(|k| k.kind == fwd) {
        assert_eq!(k.outputs.len(), 2, "the GELU and the value before it");
    }
    // No activation of the forward is a kernel of its own; the backward's
    // recomputed GELU is, just before the weight gradient that reads it.
    let recomputed = irc::driver::recomputed(&t.graph);
    for (i, k) in t.kernels.iter().enumerate() {
        let alone = k.nodes.len() == 1 && matches!(t.graph.node(k.nodes[0]).op, Op::Act(_));
        if alone {
            assert!(
                recomputed.contains(&k.nodes[0]),
                "{} left alone",
                k.kind.label()
            );
            // Its reader reads it, or a view of it (the rows of a weight gradient).
            let copy = k.nodes[0];
            let gap = t.kernels[i + 1..]
                .iter()
                .position(|r| {
                    r.inputs
                        .iter()
                        .any(|&x| x == copy || t.graph.node(x).inputs.first() == Some(&copy))
                })
                .unwrap();
            assert!(gap <= 1, "recomputed {} kernels before its reader", gap + 1);
        }
    }
    // Each layer's two norms: dx summed into the residual stream's gradient
    // as it is stored (ln_f's dx is where that gradient starts).
    assert_eq!(
        count(t, KernelKind::NormGrad { residual: true }),
        2 * layers,
        "{:?}",
        t.kernels.iter().map(|k| k.kind.label()).collect::<Vec<_>>()
    );
    // The forward program: GELU fused, nothing stored beside it.
    for k in p.forward.kernels.iter().filter(|k| k.kind == fwd) {
        assert_eq!(k.outputs.len(), 1);
    }
}

#[test]
fn llama_keeps_swiglu_in_one_elementwise_kernel() {
    let p = programs("tests/in/tiny_llama.toml");
    for k in &p.train.kernels {
        if let KernelKind::Gemm { act, .. } = k.kind {
            assert_eq!(act, None, "gated: {}", k.kind.label());
        }
    }
}

/// The attention gradients of a packed qkv (GPT-2's c_attn) go straight
/// into its gradient: no pad kernel per q, k, v and no add of the padded
/// pieces. Separate projections (Llama's) keep three gradients. Either way
/// the forward keeps each attention's log-sum-exp from its own kernel.
#[test]
fn attention_gradients_are_written_into_the_packed_qkv_gradient() {
    for (spec, packed) in [
        ("tests/in/tiny_gpt2.toml", true),
        ("tests/in/tiny_llama.toml", false),
    ] {
        let t = &programs(spec).train;
        let g = &t.graph;
        let grads: Vec<_> = t
            .kernels
            .iter()
            .filter(|k| k.kind == KernelKind::AttentionGrad)
            .collect();
        assert_eq!(grads.len(), 2, "{spec}: one per layer");
        for k in grads {
            let q = &g.node(g.node(k.nodes[0]).inputs[1]).ty.shape;
            if packed {
                assert_eq!(k.outputs.len(), 1, "{spec}: one packed gradient");
                let out = &g.node(k.outputs[0]).ty.shape;
                assert_eq!(
                    out[2],
                    3 * q[2],
                    "{spec}: {out:?} is the packed qkv's gradient"
                );
            } else {
                assert_eq!(k.outputs.len(), 3, "{spec}: dq, dk, dv");
            }
        }
        let qkv_pads = t
            .kernels
            .iter()
            .filter(|k| matches!(g.node(k.nodes[0]).op, Op::Pad { .. }))
            .count();
        assert_eq!(qkv_pads, 0, "{spec}: pads of q, k, v left");
        for k in t.kernels.iter().filter(|k| k.kind == KernelKind::Attention) {
            let lse = k
                .nodes
                .iter()
                .filter(|&&n| matches!(g.node(n).op, Op::AttentionLse { .. }))
                .count();
            assert_eq!(lse, 1, "{spec}: the forward keeps the log-sum-exp");
        }
        if packed {
            // q, k and v are read in place in the packed qkv, forward and
            // backward: no narrow copies them out, and the backward keeps
            // the packed tensor.
            let narrows = t
                .kernels
                .iter()
                .filter(|k| {
                    k.nodes.len() == 1 && matches!(g.node(k.nodes[0]).op, Op::Narrow { .. })
                })
                .count();
            assert_eq!(narrows, 0, "{spec}: narrows of q, k, v left");
            let saved = irc::driver::saved_for_backward(g, &t.kernels);
            for k in t
                .kernels
                .iter()
                .filter(|k| k.kind == KernelKind::AttentionGrad)
            {
                let qkv = k.inputs[1];
                assert!(
                    matches!(g.node(qkv).op, Op::Add) && saved.contains(&qkv),
                    "{spec}: the gradient kernel reads {} for q",
                    g.node(qkv).name
                );
            }
        }
    }
}
