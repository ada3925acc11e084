//! `[build].weights`: the linear layers of the generation programs take
//! their weights in the spec's format. Every matmul whose `b` is a 2-d
//! parameter (the qkv, attention and MLP projections and the head) gets the
//! format as its `w` attribute, so the interpreter rounds where the kernels
//! do ([`crate::quant`]); the other matmuls (attention's) stay f32.

use crate::error::Result;
use crate::ir::{Graph, Op};
use crate::quant::WeightFormat;

/// Give every linear layer of `g` weights in `fmt`; returns how many.
pub fn round_weights(g: &mut Graph, fmt: WeightFormat) -> Result<usize> {
    let mut n = 0;
    for id in g.ids() {
        let node = g.node(id);
        let Op::MatMul { ta: false, tb, .. } = node.op else {
            continue;
        };
        let b = g.node(node.inputs[1]);
        if matches!(b.op, Op::Param { .. }) && b.ty.shape.len() == 2 {
            g.replace_op(
                id,
                Op::MatMul {
                    ta: false,
                    tb,
                    w: fmt,
                    bf16: false,
                },
            )?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::TensorType;

    #[test]
    fn only_products_with_a_parameter_are_rounded() {
        let mut g = Graph::new();
        let x = g.leaf(
            Op::Input { name: "x".into() },
            TensorType::f32(&[3, 5]),
            "x",
        );
        let w = g.leaf(
            Op::Param { name: "w".into() },
            TensorType::f32(&[4, 5]),
            "w",
        );
        let y = g.add(Op::matmul(false, true), &[x, w], "y").unwrap();
        let z = g.add(Op::matmul(false, true), &[y, y], "z").unwrap();
        assert_eq!(round_weights(&mut g, WeightFormat::Q8_0).unwrap(), 1);
        assert!(matches!(
            g.node(y).op,
            Op::MatMul {
                w: WeightFormat::Q8_0,
                ..
            }
        ));
        assert!(matches!(
            g.node(z).op,
            Op::MatMul {
                w: WeightFormat::F32,
                ..
            }
        ));
        assert!(g.to_text().contains("q8_0"));
    }
}
