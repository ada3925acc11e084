//! `[build] dtype = "bf16"`: every matmul of the lowered forward (the linear
//! layers and the LM head; attention's products are its own op and stay f32)
//! rounds its operands to bfloat16. The attribute is the rounding point the
//! interpreter and the kernels share; autodiff gives the backward matmuls
//! derived from a bf16 one (dX = dY·Wᵀ, dW = Xᵀ·dY) the same attribute.

use crate::error::Result;
use crate::ir::{Graph, Op};

pub fn round_gemm_operands(g: &mut Graph) -> Result<()> {
    for id in g.ids() {
        // A matmul with packed weights is rounded as its format says.
        if let Op::MatMul { ta, tb, w, .. } = g.node(id).op {
            if w.is_f32() {
                g.replace_op(
                    id,
                    Op::MatMul {
                        ta,
                        tb,
                        w,
                        bf16: true,
                    },
                )?;
            }
        }
    }
    Ok(())
}
