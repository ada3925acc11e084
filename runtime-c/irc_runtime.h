/* irc_runtime.h — the hand-written part every generated model includes.
 *
 * It pulls in the vector abstraction (irc_simd.h) and the GEMM engine
 * (irc_gemm.h) with the activations both use (irc_act.h), and adds the few
 * helpers the kernel templates share: tail-safe loads, reductions, errors.
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
#include "irc_act.h"
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

/* The mean of a row of n floats. */
static inline float irc_row_mean(const float *x, int n)
{
    irc_vf acc = irc_vzero();
    for (int i = 0; i < n; i += IRC_VW)
        acc = irc_vadd(acc, irc_vload_upto(x + i, n - i < IRC_VW ? n - i : IRC_VW));
    return irc_vhsum(acc) / (float)n;
}

/* 1 / sqrt(mean((x - mean)²) + eps) over a row of n floats: the variance from a second
 * pass over the row, exact where E[x²] - E[x]² is not (mean 0: RMSNorm's statistic). */
static inline float irc_row_rstd(const float *x, float mean, int n, float eps)
{
    irc_vf vm = irc_vset1(mean), sq = irc_vzero();
    int i = 0;
    for (; i + IRC_VW <= n; i += IRC_VW) {
        irc_vf d = irc_vsub(irc_vload(x + i), vm);
        sq = irc_vfma(d, d, sq);
    }
    float var = irc_vhsum(sq);
    for (; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    return 1.0f / sqrtf(var / (float)n + eps);
}

/* 1 / sqrt(mean(x²) + eps) over a row of n floats: RMSNorm's statistic in one pass. */
static inline float irc_row_rms_rstd(const float *x, int n, float eps)
{
    irc_vf acc = irc_vzero();
    for (int i = 0; i < n; i += IRC_VW) {
        irc_vf v = irc_vload_upto(x + i, n - i < IRC_VW ? n - i : IRC_VW);
        acc = irc_vfma(v, v, acc);
    }
    return 1.0f / sqrtf(irc_vhsum(acc) / (float)n + eps);
}

/* x = a + b over a row of n floats (the residual stream before a norm). */
static inline void irc_row_add(float *x, const float *a, const float *b, int n)
{
    for (int i = 0; i < n; i += IRC_VW) {
        int m = n - i < IRC_VW ? n - i : IRC_VW;
        irc_vstore_upto(x + i, irc_vadd(irc_vload_upto(a + i, m), irc_vload_upto(b + i, m)), m);
    }
}

/* y = (x - mean) * rstd * w (+ bias, when not NULL) over a row of n floats. */
static inline void irc_row_normalize(float *y, const float *x, float mean, float rstd, const float *w,
                                     const float *bias, int n)
{
    irc_vf vmean = irc_vset1(mean), vr = irc_vset1(rstd);
    for (int i = 0; i < n; i += IRC_VW) {
        int m = n - i < IRC_VW ? n - i : IRC_VW;
        irc_vf v = irc_vmul(irc_vmul(irc_vsub(irc_vload_upto(x + i, m), vmean), vr), irc_vload_upto(w + i, m));
        if (bias)
            v = irc_vadd(v, irc_vload_upto(bias + i, m));
        irc_vstore_upto(y + i, v, m);
    }
}

/* The sum of exp(x - max) over a row of n logits, with the max in *mx; where e is not
 * NULL it also gets exp(x - max), the softmax before the division by the sum. */
static inline float irc_row_exp_sum(const float *x, int n, float *e, float *mx)
{
    /* The max is exact in any order; a NaN is skipped as the scalar x > m skips it (the
     * vector max returns its second operand when either is NaN). */
    float m = -INFINITY;
    int j = 0;
    if (n >= IRC_VW) {
        irc_vf vmax = irc_vset1(-INFINITY);
        for (; j + IRC_VW <= n; j += IRC_VW)
            vmax = irc_vmax(irc_vload(x + j), vmax);
        m = irc_vhmax(vmax);
    }
    for (; j < n; j++)
        m = x[j] > m ? x[j] : m;
    irc_vf vm = irc_vset1(m), acc = irc_vzero();
    int i = 0;
    for (; i + IRC_VW <= n; i += IRC_VW) {
        irc_vf v = irc_vexp_nonpos(irc_vsub(irc_vload(x + i), vm));
        if (e)
            irc_vstore(e + i, v);
        acc = irc_vadd(acc, v);
    }
    float sum = irc_vhsum(acc);
    for (; i < n; i++) {
        float v = irc_expf(x[i] - m);
        if (e)
            e[i] = v;
        sum += v;
    }
    *mx = m;
    return sum;
}

/* How many of n targets are not `ignore`: the count the mean loss divides by. */
static inline int irc_count_targets(const int32_t *targets, int n, int32_t ignore)
{
    int valid = 0;
    for (int r = 0; r < n; r++)
        valid += targets[r] != ignore;
    return valid;
}

/* One row of the mean cross-entropy's gradient over a row of n logits with max mx and
 * sum of exp(x - mx): d = (softmax(x) - onehot(target)) * inv_count, or 0 where the
 * target is `ignore`. */
static inline void irc_xent_grad_row(float *d, const float *x, int n, float mx, float sum, int32_t target,
                                     int32_t ignore, float inv_count)
{
    if (target == ignore) {
        memset(d, 0, (size_t)n * sizeof(float));
        return;
    }
    const float scale = inv_count / sum;
    const irc_vf vm = irc_vset1(mx), vs = irc_vset1(scale);
    int j = 0;
    for (; j + IRC_VW <= n; j += IRC_VW)
        irc_vstore(d + j, irc_vmul(irc_vexp_nonpos(irc_vsub(irc_vload(x + j), vm)), vs));
    for (; j < n; j++)
        d[j] = irc_expf(x[j] - mx) * scale;
    d[target] -= inv_count;
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

/* Prompt tokens the next prefill step takes, of t_left still to run: up to
 * its T while the T cache rows it writes (padding included) stay inside the
 * context; 0 near the end of the context, where the rest goes one token at a
 * time through the decode step. */
static inline int irc_prefill_chunk(int t_left, int kv_len, int T, int context)
{
    if (kv_len + T > context)
        return 0;
    return t_left < T ? t_left : T;
}

/* This thread's index inside a parallel region (0 outside one). */
static inline int irc_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---------------------------------------------------------------------------
 * Attention rows over packed keys. A dot product per key would end in a
 * horizontal sum per key; packing the keys of one head in panels of IRC_VW
 * (panel j holds keys jVW..jVW+VW-1 as hd rows of VW lanes, panel[d][l]) makes
 * the scores of a query one broadcast FMA per dimension for VW keys at once.
 */

/* Pack keys 0..n (rows of ld floats, hd used) into panels; lanes past n are 0. */
static inline void irc_pack_keys(float *panel, const float *k, size_t ld, int n, int hd)
{
    const int nb = (n + IRC_VW - 1) / IRC_VW;
    for (int j = 0; j < nb; j++) {
        float *pj = panel + (size_t)j * hd * IRC_VW;
        for (int l = 0; l < IRC_VW; l++) {
            const int s = j * IRC_VW + l;
            const float *ks = k + (size_t)s * ld;
            for (int d = 0; d < hd; d++)
                pj[d * IRC_VW + l] = s < n ? ks[d] : 0.0f;
        }
    }
}

/* Attention works on IRC_ATTN_ROWS query rows at a time: every key or value
 * vector loaded from the packed head then feeds that many FMAs. Six rows of
 * two vectors are the twelve accumulators that hide the FMA latency and still
 * leave AVX2's sixteen registers room for the two loads and a broadcast. The
 * loops over the rows have constant bounds: the compiler unrolls them and
 * keeps the accumulators in registers. */
#define IRC_ATTN_ROWS 6

/* out + r·ldo [0..nb·VW) = scale · (q_r · key) for the rows q_r and the keys of panels
 * 0..nb. Two panels at a time: each broadcast of q_r[d] feeds two FMAs. */
static inline void irc_attn_scores(float *out, size_t ldo, const float *const q[IRC_ATTN_ROWS], const float *panel,
                                   int nb, int hd, float scale)
{
    const irc_vf vs = irc_vset1(scale);
    const size_t step = (size_t)hd * IRC_VW;
    int j = 0;
    for (; j + 2 <= nb; j += 2) {
        const float *p0 = panel + j * step, *p1 = p0 + step;
        irc_vf a[IRC_ATTN_ROWS], b[IRC_ATTN_ROWS];
        for (int r = 0; r < IRC_ATTN_ROWS; r++)
            a[r] = b[r] = irc_vzero();
        for (int d = 0; d < hd; d++) {
            const irc_vf k0 = irc_vload(p0 + d * IRC_VW), k1 = irc_vload(p1 + d * IRC_VW);
            for (int r = 0; r < IRC_ATTN_ROWS; r++) {
                const irc_vf x = irc_vset1(q[r][d]);
                a[r] = irc_vfma(x, k0, a[r]);
                b[r] = irc_vfma(x, k1, b[r]);
            }
        }
        for (int r = 0; r < IRC_ATTN_ROWS; r++) {
            irc_vstore(out + r * ldo + j * IRC_VW, irc_vmul(a[r], vs));
            irc_vstore(out + r * ldo + (j + 1) * IRC_VW, irc_vmul(b[r], vs));
        }
    }
    for (; j < nb; j++) {
        const float *p0 = panel + j * step;
        irc_vf a[IRC_ATTN_ROWS];
        for (int r = 0; r < IRC_ATTN_ROWS; r++)
            a[r] = irc_vzero();
        for (int d = 0; d < hd; d++) {
            const irc_vf k0 = irc_vload(p0 + d * IRC_VW);
            for (int r = 0; r < IRC_ATTN_ROWS; r++)
                a[r] = irc_vfma(irc_vset1(q[r][d]), k0, a[r]);
        }
        for (int r = 0; r < IRC_ATTN_ROWS; r++)
            irc_vstore(out + r * ldo + j * IRC_VW, irc_vmul(a[r], vs));
    }
}

/* o_r[0..hd) = alpha_r · o_r + Σ_{s<n} p[r·ldp + s] · v_s for the rows r (alpha NULL: 1), with
 * rows v_s of ld floats: one load of v_s feeds every row, two vectors of it at a time. */
static inline void irc_attn_weighted(float *const o[IRC_ATTN_ROWS], const float *alpha, const float *p, size_t ldp,
                                     const float *v, size_t ld, int n, int hd)
{
    int i = 0;
    for (; i + 2 * IRC_VW <= hd; i += 2 * IRC_VW) {
        irc_vf a[IRC_ATTN_ROWS], b[IRC_ATTN_ROWS];
        for (int r = 0; r < IRC_ATTN_ROWS; r++) {
            const irc_vf al = irc_vset1(alpha ? alpha[r] : 1.0f);
            a[r] = irc_vmul(irc_vload(o[r] + i), al);
            b[r] = irc_vmul(irc_vload(o[r] + i + IRC_VW), al);
        }
        for (int s = 0; s < n; s++) {
            const float *vs = v + (size_t)s * ld + i;
            const irc_vf v0 = irc_vload(vs), v1 = irc_vload(vs + IRC_VW);
            for (int r = 0; r < IRC_ATTN_ROWS; r++) {
                const irc_vf x = irc_vset1(p[r * ldp + s]);
                a[r] = irc_vfma(x, v0, a[r]);
                b[r] = irc_vfma(x, v1, b[r]);
            }
        }
        for (int r = 0; r < IRC_ATTN_ROWS; r++) {
            irc_vstore(o[r] + i, a[r]);
            irc_vstore(o[r] + i + IRC_VW, b[r]);
        }
    }
    for (; i < hd; i += IRC_VW) {
        const int w = hd - i < IRC_VW ? hd - i : IRC_VW;
        irc_vf a[IRC_ATTN_ROWS];
        for (int r = 0; r < IRC_ATTN_ROWS; r++)
            a[r] = irc_vmul(irc_vload_upto(o[r] + i, w), irc_vset1(alpha ? alpha[r] : 1.0f));
        for (int s = 0; s < n; s++) {
            const irc_vf vv = irc_vload_upto(v + (size_t)s * ld + i, w);
            for (int r = 0; r < IRC_ATTN_ROWS; r++)
                a[r] = irc_vfma(irc_vset1(p[r * ldp + s]), vv, a[r]);
        }
        for (int r = 0; r < IRC_ATTN_ROWS; r++)
            irc_vstore_upto(o[r] + i, a[r], w);
    }
}

/* Contiguous rows d_s (hd floats each) += Σ_r c[r·ldc + s] · x_r for s < n: the x_r
 * vectors stay in registers (two vectors of each at a time), each d_s is loaded and
 * stored once. */
static inline void irc_attn_rank(float *d, const float *c, size_t ldc, const float *const x[IRC_ATTN_ROWS], int n,
                                 int hd)
{
    int i = 0;
    for (; i + 2 * IRC_VW <= hd; i += 2 * IRC_VW) {
        irc_vf xa[IRC_ATTN_ROWS], xb[IRC_ATTN_ROWS];
        for (int r = 0; r < IRC_ATTN_ROWS; r++) {
            xa[r] = irc_vload(x[r] + i);
            xb[r] = irc_vload(x[r] + i + IRC_VW);
        }
        for (int s = 0; s < n; s++) {
            float *ds = d + (size_t)s * hd + i;
            irc_vf a = irc_vload(ds), b = irc_vload(ds + IRC_VW);
            for (int r = 0; r < IRC_ATTN_ROWS; r++) {
                const irc_vf cs = irc_vset1(c[r * ldc + s]);
                a = irc_vfma(cs, xa[r], a);
                b = irc_vfma(cs, xb[r], b);
            }
            irc_vstore(ds, a);
            irc_vstore(ds + IRC_VW, b);
        }
    }
    for (; i < hd; i += IRC_VW) {
        const int w = hd - i < IRC_VW ? hd - i : IRC_VW;
        irc_vf xa[IRC_ATTN_ROWS];
        for (int r = 0; r < IRC_ATTN_ROWS; r++)
            xa[r] = irc_vload_upto(x[r] + i, w);
        for (int s = 0; s < n; s++) {
            float *ds = d + (size_t)s * hd + i;
            irc_vf a = irc_vload_upto(ds, w);
            for (int r = 0; r < IRC_ATTN_ROWS; r++)
                a = irc_vfma(irc_vset1(c[r * ldc + s]), xa[r], a);
            irc_vstore_upto(ds, a, w);
        }
    }
}

/* Keys s0 + s of a block of scores row[0..nb·VW) that query t may not see (s0 + s > t) to
 * -inf: the causal mask, and the zero lanes past the last key of a head. */
static inline void irc_mask_causal(float *row, int s0, int t, int nb)
{
    for (int s = t + 1 - s0 > 0 ? t + 1 - s0 : 0; s < nb * IRC_VW; s++)
        row[s] = -INFINITY;
}

/* One key block of an online (flash) causal softmax for query t: row[0..nb·VW) holds the
 * scores of keys s0.. (s0 <= t). Folds the block into the row's running max *m and its
 * sum of exp(score - max), kept lane by lane in *l (summed across lanes once, at the end),
 * leaves row = exp(score - new max) (0 past t), and returns exp(old max - new max): the
 * factor that rescales what was summed with the old max (0 on the first block, where
 * *m = -inf). */
static inline float irc_softmax_block(float *row, int s0, int t, int nb, float *m, irc_vf *l)
{
    irc_mask_causal(row, s0, t, nb);
    irc_vf mx = irc_vset1(-INFINITY);
    for (int j = 0; j < nb; j++)
        mx = irc_vmax(mx, irc_vload(row + j * IRC_VW));
    const float hm = irc_vhmax(mx), mnew = hm > *m ? hm : *m;
    const irc_vf vm = irc_vset1(mnew);
    const float alpha = irc_expf(*m - mnew);
    irc_vf sum = irc_vmul(*l, irc_vset1(alpha));
    for (int j = 0; j < nb; j++) {
        const irc_vf e = irc_vexp_nonpos(irc_vsub(irc_vload(row + j * IRC_VW), vm));
        irc_vstore(row + j * IRC_VW, e);
        sum = irc_vadd(sum, e);
    }
    *l = sum;
    *m = mnew;
    return alpha;
}

/* One key block of attention's backward for query t (FlashAttention-2): from the scores
 * p[0..nb·VW) of keys s0.. and dp = dout_t · v_s in ds, the probabilities p = exp(score -
 * lse) (0 past t) and ds = p (dp - d) · scale, with d = dout_t · out_t = Σ_s p_s dp_s. */
static inline void irc_attention_grad_block(float *p, float *ds, int s0, int t, int nb, float lse, float d,
                                            float scale)
{
    irc_mask_causal(p, s0, t, nb);
    const irc_vf vl = irc_vset1(lse), vd = irc_vset1(d), vs = irc_vset1(scale);
    for (int j = 0; j < nb; j++) {
        const irc_vf pj = irc_vexp_nonpos(irc_vsub(irc_vload(p + j * IRC_VW), vl));
        irc_vstore(p + j * IRC_VW, pj);
        irc_vstore(ds + j * IRC_VW, irc_vmul(irc_vmul(pj, irc_vsub(irc_vload(ds + j * IRC_VW), vd)), vs));
    }
}

/* y[0..n) = a · x[0..n) */
static inline void irc_scale_row(float *y, float a, const float *x, int n)
{
    const irc_vf va = irc_vset1(a);
    for (int i = 0; i < n; i += IRC_VW) {
        const int w = n - i < IRC_VW ? n - i : IRC_VW;
        irc_vstore_upto(y + i, irc_vmul(va, irc_vload_upto(x + i, w)), w);
    }
}

/* Copy n rows of hd floats (rows of ld floats apart) into contiguous rows. */
static inline void irc_pack_rows(float *dst, const float *src, size_t ld, int n, int hd)
{
    for (int s = 0; s < n; s++)
        memcpy(dst + (size_t)s * hd, src + (size_t)s * ld, (size_t)hd * sizeof(float));
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
