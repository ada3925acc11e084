//! The pass driver: every pass in order, the verifier between them, and a dump
//! after any of them on request (`IRC_DUMP=lower,fusion,memory` or `all`).

pub mod dce;
pub mod fusion;
pub mod lower;

pub use fusion::{Kernel, KernelKind};
pub use lower::Program;

use crate::error::Result;
use crate::ir::{verify, Graph};
use crate::memory::MemoryPlan;
use crate::schedule::Schedule;
use crate::spec::Spec;

/// Everything the compiler decided about one program.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub program: Program,
    pub graph: Graph,
    pub kernels: Vec<Kernel>,
    pub schedule: Schedule,
    pub memory: MemoryPlan,
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

/// Run the whole pipeline on one program of the spec's model.
pub fn compile(spec: &Spec, program: Program) -> Result<Compiled> {
    let mut graph = lower::lower(&spec.model, program)?;
    verify(&graph)?;
    dump("lower", || graph.to_text());

    dce::remove_dead(&mut graph);
    verify(&graph)?;
    dump("dce", || graph.to_text());

    let kernels = fusion::fuse(&graph);
    fusion::check(&graph, &kernels)?;
    dump("fusion", || fusion::describe(&graph, &kernels));

    let schedule = crate::schedule::schedule(&graph, &kernels, spec.build.target.resolve());
    dump("schedule", || schedule.describe(&graph, &kernels));

    let memory = crate::memory::plan(&graph, &kernels)?;
    dump("memory", || memory.describe(&graph));

    Ok(Compiled {
        program,
        graph,
        kernels,
        schedule,
        memory,
    })
}
