//! Scheduling: *how* each kernel runs — vector width, register tile, which
//! loop is spread over threads — kept in a side table apart from the graph,
//! which only says *what* is computed.

mod caches;

pub use caches::Caches;

use crate::ir::Graph;
use crate::ir::{Kernel, KernelKind};
use crate::spec::Target;
use serde::Serialize;
use std::fmt::Write;

/// Below this many output elements a kernel runs on one thread: waking the
/// other threads would cost more than it saves.
pub const PARALLEL_MIN_ELEMS: usize = 1 << 14;

/// Multiply-adds (cache rows attended x query rows x heads x head size) from
/// which a cached attention step runs on several threads. Measured on a
/// 2-core AVX-512 machine, a decode step's attention alone between parallel
/// GEMM-like regions (threads awake, as in a decode step), medians of 3001
/// calls: 4 heads of 64 take 2.32 us on one thread and 2.40 on two at 32
/// cache rows (8,192 multiply-adds), 3.83 against 3.11 at 64 rows, 49.9
/// against 25.8 at 1024; 6 heads of 32 break even at 16 rows (3,072) and
/// gain 1.25x at 32. The old threshold, 2^18, kept bench-s's decode (4 x 64,
/// 128 positions) on one thread at every position.
pub const CACHED_ATTENTION_PAR_WORK: usize = 1 << 13;

/// Keys the attention forward scores at a time: the tile of scores per step
/// is (6 query rows, this), so no row of T scores is ever held; each block
/// costs a max and a rescale per row. A multiple of every vector width, so a
/// block starts on a key panel. svg-small's attention (8 x 6 heads of 32, T
/// 512, one thread, AVX2): 64 / 128 / 256 keys 16.7 / 15.4 / 15.6 ms.
pub const ATTENTION_KEY_BLOCK: usize = 128;

/// Query rows of the attention forward that share a key block while it is
/// in L1 (a multiple of the 6 rows a step takes): 24 / 48 rows 15.7 / 15.4 ms
/// on the shape above.
pub const ATTENTION_QUERY_BLOCK: usize = 48;

/// Keys of the attention backward's outer loop: the block's keys (as panels
/// and as rows), its values (as panels) and its dk and dv sums, 5 x this x
/// head_dim floats, stay in L1 while the query rows after it go by. On the shape above 16 / 32 / 64
/// keys 34.6 / 33.1 / 32.2 ms (the old order, every query row over all the
/// keys with dk and dv summed in L2, took 36.0).
pub const ATTENTION_GRAD_KEY_BLOCK: usize = 64;

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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub target: Target,
    /// The caches the GEMM is blocked for (its register tile is the
    /// microkernel's own, in runtime-c/irc_gemm.h).
    pub caches: Caches,
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
}

/// `target` as the spec says it: "native" also blocks for this machine's caches.
pub fn schedule(g: &Graph, kernels: &[Kernel], target: Target) -> Schedule {
    let caches = Caches::for_target(target);
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
            KernelSchedule {
                parallel,
                vector_width: target.vector_width(),
            }
        })
        .collect();
    Schedule {
        target,
        caches,
        kernels,
    }
}

impl Schedule {
    pub fn describe(&self, g: &Graph, kernels: &[Kernel]) -> String {
        let mut s = format!(
            "target {}, GEMM blocked for {}\n",
            self.target.name(),
            self.caches.describe()
        );
        for (i, (k, ks)) in kernels.iter().zip(&self.kernels).enumerate() {
            let _ = writeln!(
                s,
                "k{i:<3} {:<22} {:?} vec {}  # {}",
                k.kind.label(),
                ks.parallel,
                ks.vector_width,
                g.node(*k.nodes.last().unwrap()).name
            );
        }
        s
    }
}
