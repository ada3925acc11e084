//! A kernel: a group of ops fusion decided to compute in one C function.
//! Fusion makes them; the schedule, the memory plan and codegen read them,
//! so they live beside the graph rather than inside the fusion pass.

use super::NodeId;
use crate::ops::Act;
use serde::Serialize;

/// What a kernel computes, and so which template renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelKind {
    /// nodes: `[matmul, (+bias), (act)]`. The value before `act` is stored
    /// as well when something else reads it (a training step's backward).
    Gemm {
        bias: bool,
        act: Option<Act>,
    },
    /// nodes: `[(residual add), layernorm | rmsnorm]`
    Norm {
        residual: bool,
    },
    /// nodes: `[(narrow)*, (attention_lse), attention]`: the log-sum-exp
    /// of each row is stored where a training step's backward reads it
    Attention,
    /// nodes: the `cache_write`s of this step's keys and values (with the
    /// `narrow`s they read through) and the `cached_attention` over them:
    /// append to the cache, then attend
    CachedAttention,
    /// nodes: a chain of elementwise ops, in evaluation order
    Elementwise,
    Embedding,
    Rope,
    Softmax,
    CrossEntropy,
    /// nodes: any of `softmax`, `cross_entropy`, `cross_entropy_grad` of the
    /// same logits (one pass over each row)
    SoftmaxCrossEntropy,
    Narrow,
    /// nodes: the `attention_grad`s (dq, dk, dv) of one attention, and,
    /// where q, k and v are columns of one packed tensor, the `pad`s and
    /// the two `add`s that make its gradient: dq, dk and dv are then
    /// written into those columns of it
    AttentionGrad,
    ReduceRows,
    Pad,
    SoftmaxGrad,
    /// nodes: `[norm_grad_x, (add)]` (the add: the residual stream's
    /// gradient, summed as dx is stored), or `[norm_grad_w]`
    NormGrad {
        residual: bool,
    },
    EmbeddingGrad,
}

impl KernelKind {
    pub fn label(&self) -> String {
        match self {
            KernelKind::Gemm { bias, act } => {
                let mut s = "gemm".to_string();
                if *bias {
                    s += "+bias";
                }
                if let Some(a) = act {
                    s += &format!("+{}", a.def().mnemonic);
                }
                s
            }
            KernelKind::Norm { residual: true } => "add+norm".into(),
            KernelKind::Norm { residual: false } => "norm".into(),
            KernelKind::Attention => "attention".into(),
            KernelKind::CachedAttention => "cached_attention".into(),
            KernelKind::Elementwise => "elementwise".into(),
            KernelKind::Embedding => "embedding".into(),
            KernelKind::Rope => "rope".into(),
            KernelKind::Softmax => "softmax".into(),
            KernelKind::CrossEntropy => "cross_entropy".into(),
            KernelKind::SoftmaxCrossEntropy => "softmax+cross_entropy".into(),
            KernelKind::Narrow => "narrow".into(),
            KernelKind::AttentionGrad => "attention_grad".into(),
            KernelKind::ReduceRows => "reduce_rows".into(),
            KernelKind::Pad => "pad".into(),
            KernelKind::SoftmaxGrad => "softmax_grad".into(),
            KernelKind::NormGrad { residual: false } => "norm_grad".into(),
            KernelKind::NormGrad { residual: true } => "norm_grad+add".into(),
            KernelKind::EmbeddingGrad => "embedding_grad".into(),
        }
    }
}

/// One kernel: the ops it computes, the values it reads, the values it writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kernel {
    pub kind: KernelKind,
    pub nodes: Vec<NodeId>,
    /// Values read from memory (produced by another kernel, a leaf or a view).
    pub inputs: Vec<NodeId>,
    /// Values written to memory (read by another kernel, or a graph output).
    pub outputs: Vec<NodeId>,
}
