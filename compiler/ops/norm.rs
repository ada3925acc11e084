//! `layernorm`, `rmsnorm` and their gradients with respect to x and the weight.

use super::{arity, f32s, tensor, Case, Dims, Family, Grad, NodeId, Op, Operand, Real};
use super::{TensorType, Value, Vjp};
use crate::error::Result;

pub(super) fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::LayerNorm { .. } => "layernorm",
        Op::RmsNorm { .. } => "rmsnorm",
        Op::NormGradX { rms: false, .. } => "layernorm_grad_x",
        Op::NormGradX { rms: true, .. } => "rmsnorm_grad_x",
        Op::NormGradW { rms: false, .. } => "layernorm_grad_w",
        _ => "rmsnorm_grad_w",
    }
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    let n = match op {
        Op::RmsNorm { .. } | Op::NormGradW { .. } => 2,
        _ => 3,
    };
    arity(t, n)?;
    f32s(t, &(0..t.len()).collect::<Vec<_>>())?;
    if let Op::LayerNorm { .. } | Op::RmsNorm { .. } = op {
        let c = t[0].last();
        for w in &t[1..] {
            if w.shape != [c] {
                return Err(format!("norm weight must be ({c}), got {w}"));
            }
        }
        return Ok(t[0].clone());
    }
    if t[0].shape != t[1].shape {
        return Err(format!("dy {} and x {} differ", t[0], t[1]));
    }
    let c = t[0].last();
    if t.len() == 3 {
        if t[2].shape != [c] {
            return Err(format!("norm weight must be ({c}), got {}", t[2]));
        }
        return Ok(t[0].clone());
    }
    Ok(TensorType::f32(&[c]))
}

/// Per row of C: (mean, rstd) of LayerNorm, or (0, 1/rms) of RMSNorm.
fn norm_stats<T: Real>(row: &[T], eps: f64, rms: bool) -> (T, T) {
    let n = T::from_f64(row.len() as f64);
    let mean = if rms {
        T::default()
    } else {
        row.iter().fold(T::default(), |s, &v| s + v) / n
    };
    let var = row
        .iter()
        .fold(T::default(), |s, &v| s + (v - mean) * (v - mean))
        / n;
    (mean, T::from_f64(1.0) / (var + T::from_f64(eps)).sqrt())
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    match *op {
        Op::LayerNorm { eps } | Op::RmsNorm { eps } => {
            norm(ty, args, eps, matches!(op, Op::LayerNorm { .. }))
        }
        Op::NormGradX { eps, rms } => grad_x(ty, args, eps, rms),
        Op::NormGradW { eps, rms } => {
            let (dy, x) = (args[0].f(), args[1].f());
            let c = ty.last();
            let mut data = vec![T::default(); c];
            for (gr, xr) in dy.data.chunks(c).zip(x.data.chunks(c)) {
                let (mean, rstd) = norm_stats(xr, eps, rms);
                for j in 0..c {
                    data[j] += gr[j] * (xr[j] - mean) * rstd;
                }
            }
            tensor(ty, data)
        }
        _ => unreachable!(),
    }
}

fn norm<T: Real>(ty: &TensorType, args: &[&Value<T>], eps: f64, layer: bool) -> Result<Value<T>> {
    let x = args[0].f();
    let w = &args[1].f().data;
    let bias = (args.len() == 3).then(|| &args[2].f().data);
    let c = ty.last();
    let nf = T::from_f64(c as f64);
    let mut data = Vec::with_capacity(x.data.len());
    for row in x.data.chunks(c) {
        let mean = if layer {
            row.iter().fold(T::default(), |s, &v| s + v) / nf
        } else {
            T::default()
        };
        let var = row
            .iter()
            .fold(T::default(), |s, &v| s + (v - mean) * (v - mean))
            / nf;
        let rstd = T::from_f64(1.0) / (var + T::from_f64(eps)).sqrt();
        for (j, &v) in row.iter().enumerate() {
            let y = (v - mean) * rstd * w[j];
            data.push(match bias {
                Some(b) => y + b[j],
                None => y,
            });
        }
    }
    tensor(ty, data)
}

fn grad_x<T: Real>(ty: &TensorType, args: &[&Value<T>], eps: f64, rms: bool) -> Result<Value<T>> {
    let (dy, x, w) = (args[0].f(), args[1].f(), &args[2].f().data);
    let c = x.shape[x.shape.len() - 1];
    let nf = T::from_f64(c as f64);
    let mut data = Vec::with_capacity(x.data.len());
    for (gr, xr) in dy.data.chunks(c).zip(x.data.chunks(c)) {
        let (mean, rstd) = norm_stats(xr, eps, rms);
        let xhat: Vec<T> = xr.iter().map(|&v| (v - mean) * rstd).collect();
        let dxhat: Vec<T> = gr.iter().zip(w).map(|(&g, &wv)| g * wv).collect();
        let m1 = if rms {
            T::default()
        } else {
            dxhat.iter().fold(T::default(), |s, &v| s + v) / nf
        };
        let m2 = dxhat
            .iter()
            .zip(&xhat)
            .fold(T::default(), |s, (&a, &b)| s + a * b)
            / nf;
        data.extend(
            dxhat
                .iter()
                .zip(&xhat)
                .map(|(&a, &h)| rstd * (a - m1 - h * m2)),
        );
    }
    tensor(ty, data)
}

pub(super) fn vjp(op: &Op, b: &mut dyn Vjp, g: &Grad, out: &mut [Option<NodeId>]) -> Result<()> {
    let (&Op::LayerNorm { eps } | &Op::RmsNorm { eps }) = op else {
        unreachable!()
    };
    let rms = matches!(op, Op::RmsNorm { .. });
    let (ins, gr) = (g.ins, g.gr);
    if g.need[0] {
        let op = Op::NormGradX { eps, rms };
        out[0] = Some(b.add(op, &[gr, ins[0], ins[1]], ins[0], "")?);
    }
    if g.need[1] {
        out[1] = Some(b.add(Op::NormGradW { eps, rms }, &[gr, ins[0]], ins[1], "")?);
    }
    if ins.len() == 3 && g.need[2] {
        out[2] = Some(b.unbroadcast(gr, ins[2])?);
    }
    Ok(())
}

fn ops() -> Vec<&'static str> {
    vec![
        "layernorm",
        "rmsnorm",
        "layernorm_grad_x",
        "rmsnorm_grad_x",
        "layernorm_grad_w",
        "rmsnorm_grad_w",
    ]
}

fn cases(_: Dims) -> Vec<Case> {
    use Operand::{Norm, Param, Step, X};
    let ln = Op::LayerNorm { eps: 1e-5 };
    vec![
        Case::op("layernorm", ln.clone(), vec![X(6), Norm(6), Param(vec![6])]),
        Case::op("rmsnorm", Op::RmsNorm { eps: 1e-6 }, vec![X(6), Norm(6)]),
        Case::new(
            "residual add + layernorm",
            vec![
                (Op::Act(super::Act::GeluTanh), vec![X(13)]),
                (Op::Add, vec![X(13), Step(0)]),
                (ln, vec![Step(1), Norm(13), Param(vec![13])]),
                (Op::Add, vec![Step(1), Step(2)]),
            ],
        )
        .only_kernel(),
    ]
}

pub(super) const FAMILY: Family = Family {
    name: "norm",
    ops,
    cases,
    tested_in: None,
};
