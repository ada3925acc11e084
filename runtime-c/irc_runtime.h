/* irc_runtime.h — the hand-written part every generated model includes.
 *
 * It pulls in the vector abstraction (irc_simd.h) and the GEMM engine
 * (irc_gemm.h), and adds the few helpers the kernel templates share:
 * activation functions in scalar and vector form, and tail-safe loads.
 * Everything is static: a model is one translation unit and exports only its
 * own prefixed ABI, so two models link into one program without clashes.
 */
#ifndef IRC_RUNTIME_H
#define IRC_RUNTIME_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irc_simd.h"
#include "irc_gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Threads a new context uses when the caller does not say: every core. */
static inline int irc_default_threads(void)
{
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

/* Load/store lanes [0, n) with n <= IRC_VW: full vectors in the loop body, the
 * zero-filled partial form only on the last, short step. */
static inline irc_vf irc_vload_upto(const float *p, int n)
{
    return n == IRC_VW ? irc_vload(p) : irc_vload_n(p, n);
}

static inline void irc_vstore_upto(float *p, irc_vf v, int n)
{
    if (n == IRC_VW)
        irc_vstore(p, v);
    else
        irc_vstore_n(p, v, n);
}

/* GELU, tanh approximation (GPT-2's gelu_new): 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))). */
static inline float irc_gelu(float x)
{
    const float c = 0.7978845608028654f;
    return 0.5f * x * (1.0f + irc_tanhf(c * (x + 0.044715f * x * x * x)));
}

static inline irc_vf irc_vgelu(irc_vf x)
{
    const irc_vf c = irc_vset1(0.7978845608028654f), k = irc_vset1(0.044715f);
    irc_vf x3 = irc_vmul(irc_vmul(x, x), x);
    irc_vf t = irc_vtanh(irc_vmul(c, irc_vfma(k, x3, x)));
    return irc_vmul(irc_vmul(irc_vset1(0.5f), x), irc_vadd(irc_vset1(1.0f), t));
}

/* SiLU: x · sigmoid(x) = x / (1 + e^-x). */
static inline float irc_silu(float x) { return x / (1.0f + irc_expf(-x)); }

static inline irc_vf irc_vsilu(irc_vf x)
{
    irc_vf e = irc_vexp(irc_vsub(irc_vzero(), x));
    return irc_vdiv(x, irc_vadd(irc_vset1(1.0f), e));
}

/* gelu'(x) = ½(1 + t) + ½x(1 - t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(√(2/π)(x + 0.044715x³)). */
static inline irc_vf irc_vgelu_grad(irc_vf x)
{
    const irc_vf c = irc_vset1(0.7978845608028654f), k = irc_vset1(0.044715f);
    const irc_vf half = irc_vset1(0.5f), one = irc_vset1(1.0f);
    irc_vf x2 = irc_vmul(x, x);
    irc_vf t = irc_vtanh(irc_vmul(c, irc_vfma(k, irc_vmul(x2, x), x)));
    irc_vf dinner = irc_vmul(c, irc_vfma(irc_vset1(3.0f * 0.044715f), x2, one));
    irc_vf a = irc_vmul(half, irc_vadd(one, t));
    irc_vf b = irc_vmul(irc_vmul(half, x), irc_vmul(irc_vsub(one, irc_vmul(t, t)), dinner));
    (void)k;
    return irc_vadd(a, b);
}

/* silu'(x) = s(1 + x(1 - s)), s = sigmoid(x). */
static inline irc_vf irc_vsilu_grad(irc_vf x)
{
    const irc_vf one = irc_vset1(1.0f);
    irc_vf s = irc_vdiv(one, irc_vadd(one, irc_vexp(irc_vsub(irc_vzero(), x))));
    return irc_vmul(s, irc_vfma(x, irc_vsub(one, s), one));
}

/* Dot product of two length-n float rows. */
static inline float irc_dot(const float *a, const float *b, int n)
{
    irc_vf acc = irc_vzero();
    for (int i = 0; i < n; i += IRC_VW) {
        int w = n - i < IRC_VW ? n - i : IRC_VW;
        acc = irc_vfma(irc_vload_upto(a + i, w), irc_vload_upto(b + i, w), acc);
    }
    return irc_vhsum(acc);
}

/* y[0..n) += a * x[0..n) */
static inline void irc_axpy(float *y, float a, const float *x, int n)
{
    irc_vf va = irc_vset1(a);
    for (int i = 0; i < n; i += IRC_VW) {
        int w = n - i < IRC_VW ? n - i : IRC_VW;
        irc_vstore_upto(y + i, irc_vfma(va, irc_vload_upto(x + i, w), irc_vload_upto(y + i, w)), w);
    }
}

/* dst[0..n) += src[0..n) */
static inline void irc_accumulate(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i += IRC_VW) {
        int w = n - i < IRC_VW ? (int)(n - i) : IRC_VW;
        irc_vstore_upto(dst + i, irc_vadd(irc_vload_upto(dst + i, w), irc_vload_upto(src + i, w)), w);
    }
}

/* Σ x² in double, in index order: the same bits for any thread count. */
static inline double irc_sumsq(const float *x, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i += 4096) {
        size_t e = n - i < 4096 ? n : i + 4096;
        float part = 0.0f;
        for (size_t j = i; j < e; j++)
            part += x[j] * x[j];
        total += part;
    }
    return total;
}

/* AdamW on one tensor, as torch.optim.AdamW: p -= lr·wd·p; m, v moments of
 * g = grad·gscale; p -= lr · m̂ / (√v̂ + eps). Elementwise, so threads do not
 * change the result. */
static void irc_adamw_update(float *p, const float *grad, float *m, float *v, size_t n, const irc_adamw_config *c,
                             float gscale, float wd, int threads)
{
    const float b1 = c->beta1, b2 = c->beta2;
    const float bc1 = 1.0f - powf(b1, (float)c->step), bc2 = 1.0f - powf(b2, (float)c->step);
    const float lr = c->lr, eps = c->eps;
    (void)threads;
    #pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float g = grad[i] * gscale;
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        const float mh = m[i] / bc1, vh = v[i] / bc2;
        p[i] -= lr * (wd * p[i] + mh / (sqrtf(vh) + eps));
    }
}

#endif /* IRC_RUNTIME_H */
