//! SiLU, `x · sigmoid(x)`: the gate of Llama's SwiGLU MLP.

use super::{ActDef, Real};

pub const DEF: ActDef = ActDef {
    mnemonic: "silu",
    grad_mnemonic: "silu_grad",
    spec: "swiglu",
    gated: true,
    hf: &["silu"],
    c: "irc_vsilu",
    c_grad: "irc_vsilu_grad",
    c_enum: "IRC_ACT_SILU",
};

pub fn f<T: Real>(x: T) -> T {
    x / (T::from_f64(1.0) + (-x).exp())
}

/// `s (1 + x (1 - s))`, s = sigmoid(x).
pub fn df<T: Real>(x: T) -> T {
    let one = T::from_f64(1.0);
    let s = one / (one + (-x).exp());
    s * (one + x * (one - s))
}
