//! GELU, exact (erf) form: `0.5 x (1 + erf(x / √2))` (transformers'
//! `"gelu"`, PyTorch's default `nn.GELU()`).

use super::{ActDef, Real};

pub const DEF: ActDef = ActDef {
    mnemonic: "gelu_erf",
    grad_mnemonic: "gelu_erf_grad",
    spec: "gelu",
    gated: false,
    hf: &["gelu"],
    c: "irc_vgelu_erf",
    c_grad: "irc_vgelu_erf_grad",
    c_enum: "IRC_ACT_GELU_ERF",
};

pub fn f<T: Real>(x: T) -> T {
    let half = T::from_f64(0.5);
    half * x * (T::from_f64(1.0) + (x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf())
}

/// `Φ(x) + x φ(x)`: the normal distribution's CDF plus x times its density.
pub fn df<T: Real>(x: T) -> T {
    let half = T::from_f64(0.5);
    let cdf = half * (T::from_f64(1.0) + (x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf());
    let inv_sqrt_2pi = T::from_f64(1.0 / (2.0 * std::f64::consts::PI).sqrt());
    cdf + x * (-(half * x * x)).exp() * inv_sqrt_2pi
}
