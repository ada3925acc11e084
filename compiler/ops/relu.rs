//! ReLU, `max(x, 0)` (transformers' `"relu"`). Its derivative at 0 is taken
//! as 0, as in PyTorch.

use super::{ActDef, Real};

pub const DEF: ActDef = ActDef {
    mnemonic: "relu",
    grad_mnemonic: "relu_grad",
    spec: "relu",
    gated: false,
    hf: &["relu"],
    c: "irc_vrelu",
    c_grad: "irc_vrelu_grad",
    c_enum: "IRC_ACT_RELU",
};

pub fn f<T: Real>(x: T) -> T {
    if x > T::default() {
        x
    } else {
        T::default()
    }
}

pub fn df<T: Real>(x: T) -> T {
    if x > T::default() {
        T::from_f64(1.0)
    } else {
        T::default()
    }
}
