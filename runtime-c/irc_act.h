/* irc_act.h — the activations and their derivatives, in vector form.
 *
 * Each formula is written once, here: the elementwise kernels call these
 * functions by name (an activation's ActDef in compiler/ops/ names them), and
 * the GEMM epilogue (irc_gemm.h) calls the same functions through irc_vact, so
 * a fused and an unfused kernel give the same bits.
 *
 * A new activation adds its two functions, an irc_act value and its case in
 * irc_vact.
 */
#ifndef IRC_ACT_H
#define IRC_ACT_H

#include "irc_simd.h"

/* √(2/π)·(x + 0.044715x³) as x·(√(2/π) + √(2/π)·0.044715·x²), x² given: the tanh
 * argument of GELU and of its derivative. */
static inline irc_vf irc__gelu_u(irc_vf x, irc_vf x2)
{
    const float s = 0.7978845608028654f; /* √(2/π) */
    return irc_vmul(x, irc_vfma(irc_vset1(s * 0.044715f), x2, irc_vset1(s)));
}

/* GELU, tanh approximation (GPT-2's gelu_new): 0.5x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³),
 * as x / (1 + e^(-2u)) (the same function: ½(1 + tanh u) is the sigmoid of 2u). One exp and
 * one division instead of tanh's two branches, and no cancellation in 1 + tanh(u) where u is
 * negative: within 1e-6 of the f64 formula where the tanh form was 8e-5 off. */
static inline irc_vf irc_vgelu(irc_vf x)
{
    irc_vf e = irc_vexp(irc_vmul(irc_vset1(-2.0f), irc__gelu_u(x, irc_vmul(x, x))));
    return irc_vdiv(x, irc_vadd(irc_vset1(1.0f), e));
}

/* gelu'(x) = ½(1 + t) + ½x(1 - t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(u), in the sigmoid form
 * of irc_vgelu: with e = e^(-2u) and s = 1 / (1 + e) = ½(1 + t), 1 - t² = 4s(1 - s) and
 * 1 - s = e·s, so gelu'(x) = s + 2x·s(e·s)·√(2/π)(1 + 3·0.044715x²). One exp and one division
 * (tanh took an exp, a division and a polynomial branch: 30% slower), and neither 1 + t nor
 * 1 - s cancels: absolute error under 2.1e-7 against the f64 formula (the tanh form: 5.6e-7
 * at x = -5). u is held above -44 so that e stays finite (e·s = 1 there, s = 0). */
static inline irc_vf irc_vgelu_grad(irc_vf x)
{
    const float c2 = 2.0f * 0.7978845608028654f; /* 2√(2/π) */
    const irc_vf one = irc_vset1(1.0f);
    irc_vf x2 = irc_vmul(x, x);
    irc_vf u = irc_vmax(irc_vset1(-44.0f), irc__gelu_u(x, x2));
    irc_vf e = irc_vexp(irc_vmul(irc_vset1(-2.0f), u));
    irc_vf s = irc_vdiv(one, irc_vadd(one, e));
    irc_vf dinner = irc_vfma(irc_vset1(c2 * 3.0f * 0.044715f), x2, irc_vset1(c2));
    return irc_vfma(irc_vmul(x, dinner), irc_vmul(s, irc_vmul(e, s)), s);
}

/* GELU, exact: ½x(1 + erf(x/√2)) (transformers' "gelu"). */
static inline irc_vf irc_vgelu_erf(irc_vf x)
{
    const irc_vf half = irc_vset1(0.5f), one = irc_vset1(1.0f);
    irc_vf e = irc_verf(irc_vmul(x, irc_vset1(0.70710678118654752f)));
    return irc_vmul(irc_vmul(half, x), irc_vadd(one, e));
}

/* gelu'(x) = Φ(x) + x·φ(x) = ½(1 + erf(x/√2)) + x·e^(-x²/2)/√(2π). */
static inline irc_vf irc_vgelu_erf_grad(irc_vf x)
{
    const irc_vf half = irc_vset1(0.5f), one = irc_vset1(1.0f);
    irc_vf cdf = irc_vmul(half, irc_vadd(one, irc_verf(irc_vmul(x, irc_vset1(0.70710678118654752f)))));
    irc_vf pdf = irc_vmul(irc_vexp_nonpos(irc_vmul(irc_vset1(-0.5f), irc_vmul(x, x))), irc_vset1(0.39894228040143268f));
    return irc_vfma(x, pdf, cdf);
}

/* SiLU: x · sigmoid(x) = x / (1 + e^-x). */
static inline irc_vf irc_vsilu(irc_vf x)
{
    irc_vf e = irc_vexp(irc_vsub(irc_vzero(), x));
    return irc_vdiv(x, irc_vadd(irc_vset1(1.0f), e));
}

/* silu'(x) = s(1 + x(1 - s)), s = sigmoid(x). */
static inline irc_vf irc_vsilu_grad(irc_vf x)
{
    const irc_vf one = irc_vset1(1.0f);
    irc_vf s = irc_vdiv(one, irc_vadd(one, irc_vexp(irc_vsub(irc_vzero(), x))));
    return irc_vmul(s, irc_vfma(x, irc_vsub(one, s), one));
}

/* ReLU: max(x, 0). */
static inline irc_vf irc_vrelu(irc_vf x) { return irc_vmax(x, irc_vzero()); }

/* relu'(x) = 1 where x > 0, else 0 (0 at 0, as PyTorch): a compare mask
 * turned into 1.0f lanes. */
static inline irc_vf irc_vrelu_grad(irc_vf x)
{
#if defined(IRC_TARGET_AVX512)
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), irc_vset1(1.0f));
#elif defined(IRC_TARGET_AVX2)
    return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), irc_vset1(1.0f));
#elif defined(IRC_TARGET_NEON)
    return vreinterpretq_f32_u32(vandq_u32(vcgtq_f32(x, vdupq_n_f32(0.0f)), vreinterpretq_u32_f32(vdupq_n_f32(1.0f))));
#else
    return x > 0.0f ? 1.0f : 0.0f;
#endif
}

/* The activations by value, for the GEMM epilogue (an ActDef's `c_enum`). */
typedef enum { IRC_ACT_NONE = 0, IRC_ACT_GELU_TANH, IRC_ACT_GELU_ERF, IRC_ACT_SILU, IRC_ACT_RELU } irc_act;

static inline irc_vf irc_vact(irc_act a, irc_vf x)
{
    switch (a) {
    case IRC_ACT_GELU_TANH: return irc_vgelu(x);
    case IRC_ACT_GELU_ERF: return irc_vgelu_erf(x);
    case IRC_ACT_SILU: return irc_vsilu(x);
    case IRC_ACT_RELU: return irc_vrelu(x);
    case IRC_ACT_NONE: break;
    }
    return x;
}

#endif
