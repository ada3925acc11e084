//! The softmax / cross-entropy kernel: one pass over each row of logits
//! (its max and sum of exponentials, `irc_row_exp_sum`) feeding whichever
//! of softmax, the mean cross-entropy and its gradient fusion put in it.
//! Each part's formula, parameter and C lines sit together here; the
//! template only strings the lines together.

use super::{Call, Emitter, IGNORE_INDEX};
use crate::ir::{Kernel, Op};
use serde_json::json;

/// What a part of the kernel adds: a line of the doc comment, the C lines
/// before the row loop, in it, and after it.
#[derive(Default)]
struct Lines {
    doc: Vec<String>,
    setup: Vec<String>,
    block_setup: Vec<String>,
    row: Vec<String>,
    block_finish: Vec<String>,
    finish: Vec<String>,
}

/// Rows a thread takes at a time (the blocks of the loss's partial sums).
const ROWS_PER_BLOCK: usize = 32;

impl Emitter<'_> {
    pub(super) fn softmax_xent(&self, k: &Kernel, parallel: bool) -> Call {
        let g = self.g;
        let logits = g.node(k.nodes[0]).inputs[0];
        let v = g.node(logits).ty.last();
        let r = g.node(logits).ty.numel() / v;
        let find = |want: fn(&Op) -> bool| k.nodes.iter().copied().find(|&n| want(&g.node(n).op));
        let probs = find(|o| matches!(o, Op::Softmax));
        let ce = find(|o| matches!(o, Op::CrossEntropy));
        let grad = find(|o| matches!(o, Op::CrossEntropyGrad));
        let targets = ce.or(grad).map(|n| g.node(n).inputs[1]);
        let ig = IGNORE_INDEX;
        let (mut params, mut args) = (vec!["const float *logits"], vec![self.ptr(logits)]);
        let mut shapes = vec![format!(
            "logits{} are ({r}, {v})",
            if probs.is_some() { ", probs" } else { "" }
        )];
        let mut l = Lines::default();
        let mut exps = "NULL".to_string();
        if let Some(p) = probs {
            params.push("float *probs");
            args.push(self.ptr(p));
            exps = format!("probs + (size_t)r * {v}");
            l.doc
                .push("probs = softmax(logits) = exp(x - mx) / sum".into());
            l.row
                .push(format!("irc_scale_row({exps}, 1.0f / sum, {exps}, {v});"));
        }
        if let Some(t) = targets {
            params.push("const int32_t *targets");
            args.push(self.ptr(t));
            shapes.push(format!("targets is ({r})"));
            l.setup.push(format!(
                "const int valid = irc_count_targets(targets, {r}, {ig});"
            ));
        }
        if let Some(c) = ce {
            params.push("float *loss");
            args.push(self.ptr(c));
            shapes.push("loss is (1)".into());
            l.doc.push(format!(
                "loss = mean over targets != {ig} of logsumexp(x) - x[target] = log(sum) + mx - x[target] (0 if all are ignored)"
            ));
            // Each block of rows sums its own terms, and the blocks' sums are
            // added in order: the same loss for any thread count.
            l.setup.push("double part[BLOCKS];".into());
            l.block_setup.push("double total = 0.0;".into());
            l.row.push(format!("if (targets[r] != {ig})"));
            l.row
                .push("    total += (double)logf(sum) + mx - x[targets[r]];".into());
            l.block_finish.push("part[b] = total;".into());
            l.finish.push("double total = 0.0;".into());
            l.finish
                .push("for (int b = 0; b < BLOCKS; b++) total += part[b];".into());
            l.finish
                .push("loss[0] = valid ? (float)(total / valid) : 0.0f;".into());
        }
        if let Some(d) = grad {
            params.push("float *dlogits");
            args.push(self.ptr(d));
            shapes.push(format!("dlogits is ({r}, {v})"));
            l.doc.push(format!(
                "dlogits = (softmax(x) - onehot(target)) / valid, zero on ignored rows (valid = targets != {ig})"
            ));
            l.setup
                .push("const float inv_valid = 1.0f / (valid ? valid : 1);".into());
            l.row.push(format!(
                "irc_xent_grad_row(dlogits + (size_t)r * {v}, x, {v}, mx, sum, targets[r], {ig}, inv_valid);"
            ));
        }
        let v = json!({ "R": r, "V": v, "params": params.join(", "), "shapes": shapes.join("; "),
                        "exps": exps, "doc": l.doc, "setup": l.setup, "block_setup": l.block_setup,
                        "row": l.row, "block_finish": l.block_finish, "finish": l.finish,
                        "RB": ROWS_PER_BLOCK });
        Call::new("kernels/softmax_xent.c.tera", v, args).threaded(parallel)
    }
}
