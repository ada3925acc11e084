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
    // No activation is a kernel of its own.
    for k in &t.kernels {
        let alone = k.nodes.len() == 1 && matches!(t.graph.node(k.nodes[0]).op, Op::Act(_));
        assert!(!alone, "{} left alone", k.kind.label());
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
