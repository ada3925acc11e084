//! GELU, tanh approximation (GPT-2's `gelu_new`):
//! `0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))`.

use super::{ActDef, Real};

pub const DEF: ActDef = ActDef {
    mnemonic: "gelu",
    grad_mnemonic: "gelu_grad",
    spec: "gelu_tanh",
    gated: false,
    hf: &["gelu_new", "gelu_pytorch_tanh"],
    c: "irc_vgelu",
    c_grad: "irc_vgelu_grad",
    c_enum: "IRC_ACT_GELU_TANH",
};

pub fn f<T: Real>(x: T) -> T {
    let c = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
    let half = T::from_f64(0.5);
    half * x * (T::from_f64(1.0) + (c * (x + T::from_f64(0.044715) * x * x * x)).tanh())
}

pub fn df<T: Real>(x: T) -> T {
    let c = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
    let k = T::from_f64(0.044715);
    let (half, one) = (T::from_f64(0.5), T::from_f64(1.0));
    let t = (c * (x + k * x * x * x)).tanh();
    half * (one + t) + half * x * (one - t * t) * c * (one + T::from_f64(3.0) * k * x * x)
}
