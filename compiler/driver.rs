//! The pass driver: every pass in order, the verifier between them, and a dump
//! after any of them on request (`IRC_DUMP=lower,fusion,memory` or `all`).

use crate::error::Result;
use crate::ir::Kernel;
use crate::ir::{verify, Graph};
use crate::memory::MemoryPlan;
use crate::passes::{autodiff, bf16, dce, fusion, lower, weights, Program};
use crate::schedule::Schedule;
use crate::spec::{DType, Spec};

/// Everything the compiler decided about one program.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub program: Program,
    pub graph: Graph,
    pub kernels: Vec<Kernel>,
    pub schedule: Schedule,
    pub memory: MemoryPlan,
}

/// The backward's recomputed copies of forward values (activations and norm
/// outputs, see [`autodiff::differentiate`]): the nodes after the loss that
/// compute a forward op.
pub fn recomputed(g: &Graph) -> Vec<crate::ir::NodeId> {
    let Some(loss) = g.output("loss") else {
        return vec![];
    };
    g.ids()
        .into_iter()
        .filter(|&n| n > loss && autodiff::is_recomputable_op(&g.node(n).op))
        .collect()
}

/// Forward values the backward kernels read: activations kept from the
/// forward for the backward (what the backward recomputes is not among them).
/// Forward kernels are those that compute a node up to the loss; what they
/// write on the way for the backward (an attention's log-sum-exp, made by
/// autodiff and so numbered after the loss) is forward too.
pub fn saved_for_backward(g: &Graph, kernels: &[Kernel]) -> Vec<crate::ir::NodeId> {
    let loss = g.output("loss");
    let Some(loss) = loss else { return vec![] };
    let forward = |k: &Kernel| k.nodes.iter().any(|&n| n <= loss);
    let by_forward: std::collections::BTreeSet<crate::ir::NodeId> = kernels
        .iter()
        .filter(|k| forward(k))
        .flat_map(|k| k.nodes.iter().copied())
        .collect();
    let mut saved = std::collections::BTreeSet::new();
    for k in kernels.iter().filter(|k| !forward(k)) {
        for &i in &k.inputs {
            // Read through views (the backward reshapes activations to rows).
            let mut root = i;
            while g.node(root).op.is_view() {
                root = g.node(root).inputs[0];
            }
            if (root <= loss || by_forward.contains(&root)) && !g.node(root).op.is_leaf() {
                saved.insert(root);
            }
        }
    }
    saved.into_iter().collect()
}

fn dump_requested(pass: &str) -> bool {
    std::env::var("IRC_DUMP")
        .map(|v| v.split(',').any(|p| p.trim() == pass || p.trim() == "all"))
        .unwrap_or(false)
}

fn dump(pass: &str, text: impl FnOnce() -> String) {
    if dump_requested(pass) {
        eprintln!("// ---- IR after {pass} ----\n{}", text());
    }
}

/// Every tensor within what the emitted C indexes. The spec checks its
/// largest tensors before lowering ([`crate::limits::check_dims`]); this is
/// the guarantee for every other one, so a miss there is an error, never C
/// that overflows.
fn within_c_index(g: &Graph) -> Result<()> {
    for id in g.ids() {
        let n = g.node(id);
        let numel =
            n.ty.shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        if numel.is_none_or(|e| e > crate::limits::C_INDEX_MAX) {
            return Err(crate::Error::new(format!(
                "tensor `{}` {:?} has more elements than the emitted C can index (at most {})",
                n.name,
                n.ty.shape,
                crate::limits::C_INDEX_MAX
            )));
        }
    }
    Ok(())
}

/// Run the whole pipeline on one program of the spec's model.
pub fn compile(spec: &Spec, program: Program) -> Result<Compiled> {
    let mut graph = lower::lower(&spec.model, program)?;
    // Generation steps only: the forward and the training step stay f32.
    if program.cached && !spec.build.weights.is_f32() {
        weights::round_weights(&mut graph, spec.build.weights)?;
    }
    if spec.build.dtype == DType::Bf16 {
        bf16::round_gemm_operands(&mut graph)?;
    }
    let guard = if spec.build.sanitize {
        crate::memory::SANITIZE_GUARD
    } else {
        0
    };
    compile_graph_guarded(
        graph,
        program,
        spec.build.target,
        guard,
        spec.build.recompute,
    )
}

/// Every pass after lowering, on any graph with a `tokens` input and
/// `logits` / `loss` outputs (the per-op kernel tests build such graphs by hand).
pub fn compile_graph(
    graph: Graph,
    program: Program,
    target: crate::spec::Target,
) -> Result<Compiled> {
    compile_graph_guarded(graph, program, target, 0, true)
}

/// [`compile_graph`] with `guard` floats of gap after every activation
/// buffer (see [`crate::memory::plan`]), and the backward recomputing
/// activations and norms or not (see [`autodiff::differentiate`]).
fn compile_graph_guarded(
    mut graph: Graph,
    program: Program,
    target: crate::spec::Target,
    guard: usize,
    recompute: bool,
) -> Result<Compiled> {
    verify(&graph)?;
    dump("lower", || graph.to_text());

    if program.train {
        let loss = graph
            .output("loss")
            .ok_or_else(|| crate::Error::new("a training program needs the loss (with_loss)"))?;
        graph.unmark_output("logits");
        autodiff::differentiate(&mut graph, loss, recompute)?;
        verify(&graph)?;
        dump("autodiff", || graph.to_text());
    }

    dce::remove_dead(&mut graph);
    verify(&graph)?;
    dump("dce", || graph.to_text());
    within_c_index(&graph)?;

    let kernels = fusion::fuse(&graph);
    fusion::check(&graph, &kernels)?;
    dump("fusion", || fusion::describe(&graph, &kernels));

    let schedule = crate::schedule::schedule(&graph, &kernels, target);
    dump("schedule", || schedule.describe(&graph, &kernels));

    let memory = crate::memory::plan(&graph, &kernels, guard)?;
    dump("memory", || memory.describe(&graph));

    Ok(Compiled {
        program,
        graph,
        kernels,
        schedule,
        memory,
    })
}
