//! Elementwise activations (`Op::Act`) and their gradients (`Op::ActGrad`),
//! generic over the table of activations declared in `mod.rs`: each
//! activation's own file only says what is particular to it ([`ActDef`],
//! `f`, `df`).

use super::{arity, f32s, tensor, Act, Case, Dims, Family, Grad, Op, Operand, Real, TensorType};
use super::{Value, Vjp};
use crate::error::Result;
use crate::ops::NodeId;

/// What is particular to one activation.
pub struct ActDef {
    /// The IR op's mnemonic (also the name in a kernel's formula comment).
    pub mnemonic: &'static str,
    /// Its gradient op's mnemonic.
    pub grad_mnemonic: &'static str,
    /// `[model].activation` in a spec.
    pub spec: &'static str,
    /// The MLP applies it to a gate multiplied by an up projection (Llama's
    /// SwiGLU), rather than between two projections (GPT-2).
    pub gated: bool,
    /// The Hugging Face config values meaning this activation
    /// (`activation_function` of GPT-2, `hidden_act` of Llama); the first is
    /// what `irc export --hf` writes.
    pub hf: &'static [&'static str],
    /// The vector C functions (runtime-c) of the activation and its derivative.
    pub c: &'static str,
    pub c_grad: &'static str,
    /// Its `irc_act` value, by which the GEMM epilogue applies it to a
    /// product as it is stored.
    pub c_enum: &'static str,
}

impl Act {
    /// The activation a spec names.
    pub fn from_spec(name: &str) -> Option<Act> {
        Act::ALL.iter().copied().find(|a| a.def().spec == name)
    }

    /// The activation a Hugging Face config names, for an MLP of this kind.
    pub fn from_hf(name: &str, gated: bool) -> Option<Act> {
        Act::ALL
            .iter()
            .copied()
            .find(|a| a.def().gated == gated && a.def().hf.contains(&name))
    }
}

impl serde::Serialize for Act {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.def().spec)
    }
}

pub(super) fn infer(op: &Op, t: &[&TensorType]) -> std::result::Result<TensorType, String> {
    if let Op::ActGrad(_) = op {
        arity(t, 2)?;
        f32s(t, &[0, 1])?;
        if t[0].shape != t[1].shape {
            return Err(format!("dy {} and x {} differ", t[0], t[1]));
        }
        return Ok(t[0].clone());
    }
    arity(t, 1)?;
    f32s(t, &[0])?;
    Ok(t[0].clone())
}

pub(super) fn eval<T: Real>(op: &Op, ty: &TensorType, args: &[&Value<T>]) -> Result<Value<T>> {
    match *op {
        Op::Act(a) => tensor(ty, args[0].f().data.iter().map(|&x| a.f(x)).collect()),
        Op::ActGrad(a) => {
            let (dy, x) = (args[0].f(), args[1].f());
            let data = dy.data.iter().zip(&x.data).map(|(&g, &v)| g * a.df(v));
            tensor(ty, data.collect())
        }
        _ => unreachable!(),
    }
}

pub(super) fn vjp(op: &Op, b: &mut dyn Vjp, g: &Grad, out: &mut [Option<NodeId>]) -> Result<()> {
    let Op::Act(a) = *op else { unreachable!() };
    out[0] = Some(b.add(Op::ActGrad(a), &[g.gr, g.ins[0]], g.ins[0], "")?);
    Ok(())
}

pub(super) fn c_expr(op: &Op, a: &[String], t: &[String]) -> (String, String) {
    match *op {
        Op::Act(f) => {
            let d = f.def();
            (
                format!("{}({})", d.c, a[0]),
                format!("{}({})", d.mnemonic, t[0]),
            )
        }
        Op::ActGrad(f) => {
            let d = f.def();
            (
                format!("irc_vmul({}, {}({}))", a[0], d.c_grad, a[1]),
                format!("{} * {}'({})", t[0], d.mnemonic, t[1]),
            )
        }
        _ => unreachable!(),
    }
}

fn ops() -> Vec<&'static str> {
    Act::ALL
        .iter()
        .flat_map(|a| [a.def().mnemonic, a.def().grad_mnemonic])
        .collect()
}

/// Every activation on a (B, T, 7) activation, and times another tensor
/// (SwiGLU's `act(g) * u`).
fn cases(_: Dims) -> Vec<Case> {
    let mut v = vec![];
    for &a in Act::ALL {
        let m = a.def().mnemonic;
        v.push(Case::op(m, Op::Act(a), vec![Operand::X(7)]));
        v.push(
            Case::new(
                format!("{m} times its input"),
                vec![
                    (Op::Act(a), vec![Operand::X(7)]),
                    (Op::Mul, vec![Operand::Step(0), Operand::X(7)]),
                ],
            )
            .only_kernel(),
        );
    }
    v
}

pub(super) const FAMILY: Family = Family {
    name: "activation",
    ops,
    cases,
    tested_in: None,
};
