//! `matmul`: (batched) matrix products with transpose flags.

use super::{arity, f32s, tensor, Act, Case, Dims, Family, Grad, NodeId, Op, Operand, Real};
use super::{TensorType, Value, Vjp, WeightFormat};
use crate::error::{Error, Result};
use crate::quant;

pub(super) fn attrs(op: &Op) -> String {
    let Op::MatMul { ta, tb, w, bf16 } = op else {
        unreachable!()
    };
    let mut v = vec![];
    if *ta {
        v.push("ta");
    }
    if *tb {
        v.push("tb");
    }
    if !w.is_f32() {
        v.push(w.name());
    }
    if *bf16 {
        v.push("bf16");
    }
    v.join(", ")
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    let Op::MatMul { ta, tb, w, .. } = op else {
        unreachable!()
    };
    arity(t, 2)?;
    f32s(t, &[0, 1])?;
    let (a, b) = (&t[0].shape, &t[1].shape);
    if !w.is_f32() && (*ta || b.len() != 2) {
        return Err(format!(
            "a matmul with {} weights needs a 2-d `b` and an untransposed `a`, got {} · {}",
            w.name(),
            t[0],
            t[1]
        ));
    }
    if a.len() < 2 || b.len() < 2 {
        return Err(format!(
            "matmul needs at least 2-d operands, got {} and {}",
            t[0], t[1]
        ));
    }
    let (m, ka) = if *ta {
        (a[a.len() - 1], a[a.len() - 2])
    } else {
        (a[a.len() - 2], a[a.len() - 1])
    };
    let (kb, n) = if *tb {
        (b[b.len() - 1], b[b.len() - 2])
    } else {
        (b[b.len() - 2], b[b.len() - 1])
    };
    if ka != kb {
        return Err(format!(
            "inner dimensions differ: {} vs {} ({} · {})",
            ka, kb, t[0], t[1]
        ));
    }
    if b.len() > 2 && b[..b.len() - 2] != a[..a.len() - 2] {
        return Err(format!("batch axes differ: {} vs {}", t[0], t[1]));
    }
    let mut s = a[..a.len() - 2].to_vec();
    s.extend([m, n]);
    Ok(TensorType::f32(&s))
}

/// `x` rounded to bfloat16 (the top 16 bits of an f32) the way the bf16
/// GEMM packs its operands (runtime-c/irc_gemm_bf16.h, `irc_bf16_round`):
/// round to nearest even; a NaN stays a NaN, made quiet; a denormal becomes a
/// zero of its sign, as `vdpbf16ps` treats denormal inputs (DAZ). Returned as
/// the f32 it stands for.
pub fn bf16(x: f32) -> f32 {
    let u = x.to_bits();
    let r = if u & 0x7fff_ffff > 0x7f80_0000 {
        (u >> 16) | 0x40
    } else if u & 0x7f80_0000 == 0 {
        (u >> 16) & 0x8000
    } else {
        (u + 0x7fff + ((u >> 16) & 1)) >> 16
    };
    f32::from_bits(r << 16)
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    let Op::MatMul {
        ta,
        tb,
        w,
        bf16: round,
    } = *op
    else {
        unreachable!()
    };
    if !w.is_f32() {
        return eval_rounded(w, tb, ty, args);
    }
    let shape = &ty.shape;
    let (a, b) = (args[0].f(), args[1].f());
    // The bf16 rounding point: each operand element through f32 to bf16.
    let rounded = |d: &[T]| -> Vec<T> {
        d.iter()
            .map(|&x| T::from_f64(bf16(x.to_f64() as f32) as f64))
            .collect()
    };
    let (ra, rb);
    let (ad, bd): (&[T], &[T]) = if round {
        (ra, rb) = (rounded(&a.data), rounded(&b.data));
        (&ra, &rb)
    } else {
        (&a.data, &b.data)
    };
    let (m, n) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let k = if ta {
        a.shape[a.shape.len() - 2]
    } else {
        a.shape[a.shape.len() - 1]
    };
    let batch: usize = shape[..shape.len() - 2].iter().product();
    let b_batched = b.shape.len() > 2;
    let mut data = vec![T::default(); batch * m * n];
    for bi in 0..batch {
        let ao = bi * m * k;
        let bo = if b_batched { bi * k * n } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let mut acc = T::default();
                for p in 0..k {
                    let av = if ta {
                        ad[ao + p * m + i]
                    } else {
                        ad[ao + i * k + p]
                    };
                    let bv = if tb {
                        bd[bo + j * k + p]
                    } else {
                        bd[bo + p * n + j]
                    };
                    acc += av * bv;
                }
                data[bi * m * n + i * n + j] = acc;
            }
        }
    }
    tensor(ty, data)
}

/// A matmul with weights in a rounded format (`a` rows of K, `b` 2-d).
/// q8_0: `b`'s columns and `a`'s rows quantized along K, then
/// [`quant::q8_dot`] in f32. bf16: `b` rounded to bf16, then the product in
/// `T` (the kernels sum in f32 in an order of their own).
fn eval_rounded<T: Real>(
    w: WeightFormat,
    tb: bool,
    ty: &TensorType,
    args: &[&Value<T>],
) -> Result<Value<T>> {
    let (a, b) = (args[0].f(), args[1].f());
    let n = ty.last();
    let k = a.shape[a.shape.len() - 1];
    let m = a.data.len() / k;
    // Column j of op(b): its K values.
    let col = |j: usize| -> Vec<f32> {
        (0..k)
            .map(|p| b.data[if tb { j * k + p } else { p * n + j }].to_f64() as f32)
            .collect()
    };
    let mut data = vec![T::default(); m * n];
    match w {
        WeightFormat::Q8_0 => {
            let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
            let cols: Vec<Vec<quant::Block>> = (0..n)
                .map(|j| {
                    let c = col(j);
                    if !finite(&c) {
                        return Err(Error::new("q8_0 matmul: a weight is not finite"));
                    }
                    Ok(quant::quantize_row(&c))
                })
                .collect::<Result<_>>()?;
            for i in 0..m {
                let row: Vec<f32> = a.data[i * k..(i + 1) * k]
                    .iter()
                    .map(|v| v.to_f64() as f32)
                    .collect();
                if !finite(&row) {
                    return Err(Error::new("q8_0 matmul: an activation is not finite"));
                }
                let qa = quant::quantize_row(&row);
                for (j, c) in cols.iter().enumerate() {
                    data[i * n + j] = T::from_f64(quant::q8_dot(&qa, c) as f64);
                }
            }
        }
        WeightFormat::Bf16 => {
            for j in 0..n {
                let c: Vec<T> = col(j)
                    .into_iter()
                    .map(|v| T::from_f64(quant::bf16_round(v) as f64))
                    .collect();
                for i in 0..m {
                    let mut acc = T::default();
                    for (p, &cv) in c.iter().enumerate() {
                        acc += a.data[i * k + p] * cv;
                    }
                    data[i * n + j] = acc;
                }
            }
        }
        WeightFormat::F32 => unreachable!("f32 is the plain product"),
    }
    tensor(ty, data)
}

const UNSUPPORTED: &str = "autodiff: matmul with a transposed batched `a` and a shared `b`";

pub(super) fn vjp(op: &Op, b: &mut dyn Vjp, g: &Grad, out: &mut [Option<NodeId>]) -> Result<()> {
    let Op::MatMul {
        ta,
        tb,
        w: fmt,
        bf16,
    } = *op
    else {
        unreachable!()
    };
    if !fmt.is_f32() {
        return Err(Error::new(format!(
            "autodiff: a matmul with {} weights has no gradient (training is f32)",
            fmt.name()
        )));
    }
    let (a, w, gr) = (g.ins[0], g.ins[1], g.gr);
    let b2d = b.ty(w).shape.len() == 2;
    let a_batched = b.ty(a).shape.len() > 2;
    // dX = dY·Wᵀ and dW = Xᵀ·dY round their operands as the forward does.
    let mm = |ta, tb| Op::MatMul {
        ta,
        tb,
        w: WeightFormat::F32,
        bf16,
    };
    if g.need[0] {
        out[0] = Some(if !ta {
            b.add(mm(false, !tb), &[gr, w], a, "")?
        } else {
            if a_batched && b2d {
                return Err(Error::new(UNSUPPORTED));
            }
            b.add(mm(tb, true), &[w, gr], a, "")?
        });
    }
    if g.need[1] {
        out[1] = Some(if b2d && !ta {
            // Shared weight: fold every leading axis into the rows.
            let (a2, g2) = (b.rows(a)?, b.rows(gr)?);
            let ins = if tb { [g2, a2] } else { [a2, g2] };
            b.add(mm(true, false), &ins, w, "")?
        } else {
            if b2d && a_batched {
                return Err(Error::new(UNSUPPORTED));
            }
            match (ta, tb) {
                (false, false) => b.add(mm(true, false), &[a, gr], w, "")?,
                (false, true) => b.add(mm(true, false), &[gr, a], w, "")?,
                (true, false) => b.add(mm(false, false), &[a, gr], w, "")?,
                (true, true) => b.add(mm(true, true), &[gr, a], w, "")?,
            }
        });
    }
    Ok(())
}

fn ops() -> Vec<&'static str> {
    vec!["matmul"]
}

fn cases(d: Dims) -> Vec<Case> {
    use Operand::{Param, Step, X};
    let mm = |ta, tb| Op::matmul(ta, tb);
    let mut v = vec![];
    for tb in [false, true] {
        let w = if tb { vec![11, 7] } else { vec![7, 11] };
        v.push(
            Case::op(
                format!("matmul tb={tb}"),
                mm(false, tb),
                vec![X(7), Param(w)],
            )
            .only_kernel(),
        );
    }
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let a = if ta { vec![4, 3] } else { vec![3, 4] };
        let w = if tb { vec![5, 4] } else { vec![4, 5] };
        v.push(
            Case::op(
                format!("matmul ta={ta} tb={tb}"),
                mm(ta, tb),
                vec![Param(a), Param(w)],
            )
            .only_gradcheck(),
        );
        let a = if ta { vec![2, 4, 3] } else { vec![2, 3, 4] };
        let w = if tb { vec![2, 5, 4] } else { vec![2, 4, 5] };
        v.push(
            Case::op(
                format!("batched matmul ta={ta} tb={tb}"),
                mm(ta, tb),
                vec![Param(a), Param(w)],
            )
            .only_gradcheck(),
        );
    }
    v.push(Case::op(
        "matmul with leading axes and a shared weight",
        mm(false, false),
        vec![X(4), Param(vec![4, 5])],
    ));
    v.push(
        Case::op(
            "batched matmul",
            mm(false, false),
            vec![X(7), Param(vec![d.b, 7, 5])],
        )
        .only_kernel(),
    );
    v.push(Case::new(
        "matmul + bias + gelu",
        vec![
            (mm(false, false), vec![X(7), Param(vec![7, 21])]),
            (Op::Add, vec![Step(0), Param(vec![21])]),
            (Op::Act(Act::GeluTanh), vec![Step(1)]),
        ],
    ));
    // bf16 operands ([build] dtype = "bf16"), across the tiles and with odd K;
    // no gradient check: rounding is piecewise constant to finite differences.
    let mmb = |ta, tb| Op::MatMul {
        ta,
        tb,
        w: WeightFormat::F32,
        bf16: true,
    };
    for tb in [false, true] {
        let w = if tb { vec![45, 29] } else { vec![29, 45] };
        v.push(
            Case::op(
                format!("bf16 matmul tb={tb}"),
                mmb(false, tb),
                vec![X(29), Param(w)],
            )
            .at(3, 37),
        );
    }
    v.push(
        Case::op(
            "bf16 batched matmul",
            mmb(false, false),
            vec![X(7), Param(vec![d.b, 7, 5])],
        )
        .only_kernel(),
    );
    v.push(
        Case::new(
            "bf16 matmul + bias + gelu",
            vec![
                (mmb(false, false), vec![X(33), Param(vec![33, 70])]),
                (Op::Add, vec![Step(0), Param(vec![70])]),
                (Op::Act(Act::GeluTanh), vec![Step(1)]),
            ],
        )
        .at(2, 19),
    );
    // An MLP per activation: its forward applies the activation in the first
    // GEMM's epilogue, and its training step stores the value before it there
    // too (the backward reads it).
    for &a in Act::ALL.iter().filter(|a| !a.def().gated) {
        v.push(
            Case::new(
                format!("matmul + bias, {}, matmul", a.def().mnemonic),
                vec![
                    (mm(false, false), vec![X(7), Param(vec![7, 21])]),
                    (Op::Add, vec![Step(0), Param(vec![21])]),
                    (Op::Act(a), vec![Step(1)]),
                    (mm(false, true), vec![Step(2), Param(vec![5, 21])]),
                ],
            )
            .only_kernel(),
        );
    }
    v
}

pub(super) const FAMILY: Family = Family {
    name: "matmul",
    ops,
    cases,
    tested_in: None,
};
