//! Scheduling: *how* each kernel runs — vector width, register tile, which
//! loop is spread over threads — kept in a side table apart from the graph,
//! which only says *what* is computed.

use crate::ir::Graph;
use crate::ir::{Kernel, KernelKind};
use crate::spec::Target;
use serde::Serialize;
use std::fmt::Write;

/// Below this many output elements a kernel runs on one thread: waking the
/// other threads would cost more than it saves.
pub const PARALLEL_MIN_ELEMS: usize = 1 << 14;

/// Multiply-adds (cache rows attended x query rows x heads x head size) from
/// which a cached attention step runs on several threads: a few times what
/// waking a second thread costs on an idle machine, so a decode step early
/// in a sequence stays on one thread.
pub const CACHED_ATTENTION_PAR_WORK: usize = 1 << 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parallel {
    /// One thread.
    Serial,
    /// Rows of the output (tokens) split across threads.
    Rows,
    /// (batch, head) pairs split across threads.
    Heads,
    /// The GEMM engine splits M blocks, or N panels when M is small.
    GemmBlocks,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelSchedule {
    pub parallel: Parallel,
    /// f32 lanes per vector on the target.
    pub vector_width: usize,
    /// GEMM register tile (MR, NR), for matmuls.
    pub tile: Option<(usize, usize)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub target: Target,
    pub kernels: Vec<KernelSchedule>,
}

impl Target {
    pub fn vector_width(self) -> usize {
        match self.resolve() {
            Target::Avx512 => 16,
            Target::Avx2 => 8,
            Target::Neon => 4,
            _ => 1,
        }
    }

    /// The GEMM microkernel's register tile (must match runtime-c/irc_gemm.h).
    pub fn gemm_tile(self) -> (usize, usize) {
        match self.resolve() {
            Target::Avx512 => (12, 32),
            Target::Avx2 => (6, 16),
            Target::Neon => (8, 8),
            _ => (4, 2),
        }
    }
}

pub fn schedule(g: &Graph, kernels: &[Kernel], target: Target) -> Schedule {
    let target = target.resolve();
    let kernels = kernels
        .iter()
        .map(|k| {
            let out_elems: usize = k
                .outputs
                .iter()
                .map(|&o| g.node(o).ty.numel())
                .max()
                .unwrap_or(0);
            let big = out_elems >= PARALLEL_MIN_ELEMS;
            let parallel = match k.kind {
                KernelKind::Gemm { .. } => Parallel::GemmBlocks,
                KernelKind::Attention => Parallel::Heads,
                // How many cache rows a step attends to is only known when it
                // runs: the kernel decides then (see CACHED_ATTENTION_PAR_WORK).
                KernelKind::CachedAttention => Parallel::Heads,
                _ if big => Parallel::Rows,
                _ => Parallel::Serial,
            };
            let tile = matches!(k.kind, KernelKind::Gemm { .. }).then(|| target.gemm_tile());
            KernelSchedule {
                parallel,
                vector_width: target.vector_width(),
                tile,
            }
        })
        .collect();
    Schedule { target, kernels }
}

impl Schedule {
    pub fn describe(&self, g: &Graph, kernels: &[Kernel]) -> String {
        let mut s = format!("target {}\n", self.target.name());
        for (i, (k, ks)) in kernels.iter().zip(&self.kernels).enumerate() {
            let tile = ks
                .tile
                .map(|(m, n)| format!(" tile {m}x{n}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "k{i:<3} {:<22} {:?} vec {}{}  # {}",
                k.kind.label(),
                ks.parallel,
                ks.vector_width,
                tile,
                g.node(*k.nodes.last().unwrap()).name
            );
        }
        s
    }
}
