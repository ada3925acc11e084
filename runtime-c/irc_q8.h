/* irc_q8.h — the linear layers of the generation programs with 8-bit (q8_0) or bf16 weights.
 *
 *   C = act( A · op(W) + bias )     A: M×K f32 (row stride lda), W packed here, C: M×N
 *
 * q8_0 (llama.cpp's format): along K, blocks of 32 int8 values with one scale d = f16(max|x|/127),
 * q = roundf(x · (1/d)) with the reciprocal of the f32 d (quantize_row_q8_0_ref). The weights are
 * quantized once when packed; each row of A when it is multiplied. K not a multiple of 32: the last
 * block is padded with zeros, which change neither a scale nor a dot product. Then per block the exact
 * int32 dot s of the int8 values, and in f32, block after block, acc = acc + (da·dw)·s. Every path
 * computes these same f32 operations in the same order (the integer dot is exact however it is
 * summed), so the result is bit-identical across paths, thread counts, and to compiler/quant.rs
 * (q8_dot), which the reference interpreter runs.
 *
 * bf16: W rounded to bf16 (to nearest even) when packed, widened to f32 in the product, summed over k
 * in order with the target's FMA (a rounding of its own, as the f32 GEMM has).
 *
 * Packed layout: columns of op(W) in groups of IRC_QG (the last padded with zero columns). q8_0, per
 * group and block, 32·IRC_QG bytes: for t = 0..7, for each column of the group, its 4 values
 * k = 32b+4t .. 32b+4t+3, so one vector holds 4 values of every column of the group and an int8 dot
 * of 4 lanes (VNNI's vpdpbusd, NEON's sdot) gives each column its own lane; then all the scales,
 * IRC_QG floats per group and block. bf16, per group, K rows of IRC_QG values.
 *
 * The dot per target (decided when the library is compiled, from the target's flags):
 *   AVX512-VNNI / AVX-VNNI  vpdpbusd(W + 128 as u8, A as s8) − 128·Σ A (the Σ kept with A's block)
 *   AVX-512BW / AVX2        vpmaddubsw(|A|, W with A's sign) then vpmaddwd: |A|·|W| ≤ 127² keeps
 *                           the int16 pair sums from saturating
 *   NEON dotprod / NEON     sdot, else widening multiplies (smull) and pairwise adds
 *   scalar                  int32 loops
 * Threads split the column groups; each output is computed by one thread with the same code.
 *
 * Define _DEFAULT_SOURCE before the first system header (madvise) and one of irc_simd.h's target
 * macros before including this header.
 */
#ifndef IRC_Q8_H
#define IRC_Q8_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "irc_gemm.h"
#ifdef __linux__
#include <sys/mman.h>
#endif

#define IRC_QK 32
#if defined(IRC_TARGET_AVX512)
#define IRC_QG 16
#elif defined(IRC_TARGET_AVX2)
#define IRC_QG 8
#else
#define IRC_QG 4
#endif
/* vpdpbusd multiplies unsigned by signed bytes: the weights are stored offset by 128. */
#if (defined(IRC_TARGET_AVX512) && defined(__AVX512VNNI__)) || (defined(IRC_TARGET_AVX2) && defined(__AVXVNNI__))
#define IRC_Q8_VNNI 1
#else
#define IRC_Q8_VNNI 0
#endif

static inline int irc_q8_blocks(int K) { return (K + IRC_QK - 1) / IRC_QK; }
static inline int irc_q8_groups(int N) { return (N + IRC_QG - 1) / IRC_QG; }

/* Bytes of a packed N×K weight (a multiple of 64, so packed weights stay 64-byte aligned). */
static inline size_t irc_q8_bytes(int N, int K)
{
    size_t n = (size_t)irc_q8_groups(N) * irc_q8_blocks(K) * IRC_QG * (IRC_QK + sizeof(float));
    return (n + 63) / 64 * 64;
}
static inline size_t irc_bf16_bytes(int N, int K)
{
    size_t n = (size_t)irc_q8_groups(N) * K * IRC_QG * sizeof(uint16_t);
    return (n + 63) / 64 * 64;
}

/* Bytes of work a q8_0 product of M rows of K needs: A's int8 values, scales and sums. */
static inline size_t irc_q8_work_bytes(int M, int K)
{
    return (size_t)M * irc_q8_blocks(K) * (IRC_QK + sizeof(float) + sizeof(int32_t)) + 64;
}

/* ---- conversions -------------------------------------------------------------------- */

/* f32 -> f16 bits, to nearest even (as F16C and ggml); overflow gives an infinity. */
static inline uint16_t irc_f32_to_f16(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    const uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    const int exp = (int)((b >> 23) & 0xffu);
    const uint32_t man = b & 0x7fffffu;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0u));
    const int e = exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10) return sign;
        const uint32_t m = man | 0x800000u;
        const int shift = 14 - e;
        uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        q += rem > half || (rem == half && (q & 1u));
        return (uint16_t)(sign | q);
    }
    uint32_t q = ((uint32_t)e << 10) | (man >> 13);
    const uint32_t rem = man & 0x1fffu;
    q += rem > 0x1000u || (rem == 0x1000u && (q & 1u));
    return (uint16_t)(sign | q);
}

static inline float irc_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h >> 15) << 31;
    const int exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ffu, bits;
    if (exp == 0 && man == 0) {
        bits = sign;
    } else if (exp == 0) {
        int shift = 0;
        while (!(man & 0x400u)) { man <<= 1; shift++; }
        bits = sign | ((uint32_t)(127 - 15 - shift + 1) << 23) | ((man & 0x3ffu) << 13);
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((uint32_t)(exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* f32 -> bf16 bits, to nearest even (a NaN stays a NaN). */
static inline uint16_t irc_f32_to_bf16(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    if (x != x) return (uint16_t)((b >> 16) | 0x40u);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

/* (int8_t)roundf(v) (halves away from zero), inline: the library call would dominate packing.
 * Saturating and NaN to 0, as compiler/quant.rs's `as i8` (1/d overflows for a block of values
 * below 1e-36); v − trunc(v) is exact for |v| < 128. */
static inline int8_t irc__q8_round(float v)
{
    if (!(v == v)) return 0;
    if (v >= 127.0f) return 127;
    if (v <= -128.0f) return -128;
    int i = (int)v;
    const float r = v - (float)i;
    i += (r >= 0.5f) - (r <= -0.5f);
    return (int8_t)i;
}

/* One block of n ≤ 32 values (the rest zero) as q8_0: q[32] and the scale (f16, widened).
 * quantize_row_q8_0_ref: d = max|x| / 127, q = roundf(x · 1/d), d rounded to f16 to be kept. */
static inline float irc_q8_block(const float *x, ptrdiff_t stride, int n, int8_t *q)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        const float a = fabsf(x[i * stride]);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < IRC_QK; i++) q[i] = i < n ? irc__q8_round(x[i * stride] * id) : 0;
    return irc_f16_to_f32(irc_f32_to_f16(d));
}

/* ---- packing ------------------------------------------------------------------------- */

/* Column j of op(W) at k: W is N×K (tb = 1) or K×N (tb = 0), row-major. */
static inline const float *irc__wcol(const float *W, int N, int K, int tb, int j, ptrdiff_t *stride)
{
    *stride = tb ? 1 : N;
    return tb ? W + (ptrdiff_t)j * K : W + j;
}

/* Pack W as q8_0 into dst (irc_q8_bytes(N, K)). Returns 0, or 1 when a value is not finite or a
 * scale overflows f16 (llama.cpp would keep an infinite scale). */
static inline int irc_q8_pack(const float *W, int N, int K, int tb, unsigned char *dst)
{
    const int KB = irc_q8_blocks(K), NG = irc_q8_groups(N);
    unsigned char *qs = dst;
    float *ds = (float *)(dst + (size_t)NG * KB * IRC_QG * IRC_QK);
    int bad = 0;
    for (int g = 0; g < NG; g++)
        for (int b = 0; b < KB; b++) {
            unsigned char *blk = qs + ((size_t)g * KB + b) * IRC_QG * IRC_QK;
            float *d = ds + ((size_t)g * KB + b) * IRC_QG;
            for (int c = 0; c < IRC_QG; c++) {
                const int j = g * IRC_QG + c;
                int8_t q[IRC_QK];
                if (j < N) {
                    ptrdiff_t st;
                    const float *x = irc__wcol(W, N, K, tb, j, &st) + (ptrdiff_t)b * IRC_QK * st;
                    const int n = K - b * IRC_QK < IRC_QK ? K - b * IRC_QK : IRC_QK;
                    for (int i = 0; i < n; i++) bad |= !isfinite(x[i * st]);
                    d[c] = irc_q8_block(x, st, n, q);
                    bad |= !isfinite(d[c]);
                } else {
                    memset(q, 0, sizeof q);
                    d[c] = 0.0f;
                }
                for (int t = 0; t < IRC_QK / 4; t++)
                    for (int u = 0; u < 4; u++)
                        blk[(t * IRC_QG + c) * 4 + u] = (unsigned char)(IRC_Q8_VNNI ? q[4 * t + u] + 128 : q[4 * t + u]);
            }
        }
    return bad;
}

/* Pack W as bf16 into dst (irc_bf16_bytes(N, K)). */
static inline void irc_bf16_pack(const float *W, int N, int K, int tb, unsigned char *dst)
{
    uint16_t *o = (uint16_t *)dst;
    for (int g = 0; g < irc_q8_groups(N); g++)
        for (int k = 0; k < K; k++)
            for (int c = 0; c < IRC_QG; c++) {
                const int j = g * IRC_QG + c;
                ptrdiff_t st;
                *o++ = j < N ? irc_f32_to_bf16(irc__wcol(W, N, K, tb, j, &st)[(ptrdiff_t)k * st]) : 0;
            }
}

/* Give the whole pages inside p[0 : bytes] back to the system: they read as zero afterwards (the f32
 * copy of a weight that generation now reads packed). Elsewhere than Linux they stay as they are. */
static inline void irc_release_pages(void *p, size_t bytes)
{
#ifdef __linux__
    const uintptr_t page = 4096, lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + bytes) / page * page;
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)p;
    (void)bytes;
#endif
}

/* ---- the products -------------------------------------------------------------------- */

typedef struct {
    int M, N, K;
    const float *A; int lda;      /* M×K row-major */
    const unsigned char *W;       /* packed by irc_q8_pack / irc_bf16_pack */
    float *C; int ldc;            /* M×N row-major */
    const float *bias;            /* NULL or [N] */
    irc_act act;                  /* applied last, or IRC_ACT_NONE */
    int threads;
    void *work;                   /* q8_0: at least irc_q8_work_bytes(M, K), 64-byte aligned */
} irc_q8_args;

/* acc[0:IRC_QG] of row a (KB blocks: int8 values qa, scales da, sums sa) against group w. */
static inline void irc__q8_group(int KB, const int8_t *qa, const float *da, const int32_t *sa,
                                 const unsigned char *wq, const float *wd, float *out)
{
#if defined(IRC_TARGET_AVX512)
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < KB; b++) {
        const int8_t *a = qa + b * IRC_QK;
        const unsigned char *w = wq + (size_t)b * IRC_QG * IRC_QK;
        __m512i s = _mm512_setzero_si512();
        for (int t = 0; t < IRC_QK / 4; t++) {
            int32_t a4;
            memcpy(&a4, a + 4 * t, 4);
            const __m512i av = _mm512_set1_epi32(a4), wv = _mm512_loadu_si512((const void *)(w + t * 64));
#if IRC_Q8_VNNI
            s = _mm512_dpbusd_epi32(s, wv, av);
#else
            const __mmask64 neg = _mm512_movepi8_mask(av);
            const __m512i ws = _mm512_mask_sub_epi8(wv, neg, _mm512_setzero_si512(), wv);
            const __m512i p16 = _mm512_maddubs_epi16(_mm512_abs_epi8(av), ws);
            s = _mm512_add_epi32(s, _mm512_madd_epi16(p16, _mm512_set1_epi16(1)));
#endif
        }
#if IRC_Q8_VNNI
        s = _mm512_sub_epi32(s, _mm512_set1_epi32(128 * sa[b]));
#else
        (void)sa;
#endif
        const __m512 d = _mm512_mul_ps(_mm512_set1_ps(da[b]), _mm512_loadu_ps(wd + b * IRC_QG));
        const __m512 term = _mm512_mul_ps(d, _mm512_cvtepi32_ps(s));
        acc = _mm512_add_ps(acc, term);
    }
    _mm512_storeu_ps(out, acc);
#elif defined(IRC_TARGET_AVX2)
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < KB; b++) {
        const int8_t *a = qa + b * IRC_QK;
        const unsigned char *w = wq + (size_t)b * IRC_QG * IRC_QK;
        __m256i s = _mm256_setzero_si256();
        for (int t = 0; t < IRC_QK / 4; t++) {
            int32_t a4;
            memcpy(&a4, a + 4 * t, 4);
            const __m256i av = _mm256_set1_epi32(a4), wv = _mm256_loadu_si256((const __m256i *)(w + t * 32));
#if IRC_Q8_VNNI
            s = _mm256_dpbusd_avx_epi32(s, wv, av);
#else
            const __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(av), _mm256_sign_epi8(wv, av));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
#endif
        }
#if IRC_Q8_VNNI
        s = _mm256_sub_epi32(s, _mm256_set1_epi32(128 * sa[b]));
#else
        (void)sa;
#endif
        const __m256 d = _mm256_mul_ps(_mm256_set1_ps(da[b]), _mm256_loadu_ps(wd + b * IRC_QG));
        const __m256 term = _mm256_mul_ps(d, _mm256_cvtepi32_ps(s));
        acc = _mm256_add_ps(acc, term);
    }
    _mm256_storeu_ps(out, acc);
#elif defined(IRC_TARGET_NEON)
    (void)sa;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int b = 0; b < KB; b++) {
        const int8_t *a = qa + b * IRC_QK;
        const int8_t *w = (const int8_t *)wq + (size_t)b * IRC_QG * IRC_QK;
        int32x4_t s = vdupq_n_s32(0);
        for (int t = 0; t < IRC_QK / 4; t++) {
            int32_t a4;
            memcpy(&a4, a + 4 * t, 4);
            const int8x16_t av = vreinterpretq_s8_s32(vdupq_n_s32(a4)), wv = vld1q_s8(w + t * 16);
#if defined(__ARM_FEATURE_DOTPROD)
            s = vdotq_s32(s, wv, av);
#else
            const int16x8_t lo = vmull_s8(vget_low_s8(wv), vget_low_s8(av));
            const int16x8_t hi = vmull_high_s8(wv, av);
            s = vaddq_s32(s, vpaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi)));
#endif
        }
        const float32x4_t d = vmulq_f32(vdupq_n_f32(da[b]), vld1q_f32(wd + b * IRC_QG));
        const float32x4_t term = vmulq_f32(d, vcvtq_f32_s32(s));
        acc = vaddq_f32(acc, term);
    }
    vst1q_f32(out, acc);
#else
    (void)sa;
    float acc[IRC_QG] = {0};
    for (int b = 0; b < KB; b++) {
        const int8_t *a = qa + b * IRC_QK;
        const int8_t *w = (const int8_t *)wq + (size_t)b * IRC_QG * IRC_QK;
        for (int c = 0; c < IRC_QG; c++) {
            int32_t s = 0;
            for (int t = 0; t < IRC_QK / 4; t++)
                for (int u = 0; u < 4; u++) s += (int32_t)a[4 * t + u] * w[(t * IRC_QG + c) * 4 + u];
            const float d = da[b] * wd[b * IRC_QG + c];
            const float term = d * (float)s;
            acc[c] = acc[c] + term;
        }
    }
    memcpy(out, acc, sizeof acc);
#endif
}

/* acc[0:IRC_QG] of row a (K floats) against bf16 group w (K rows of IRC_QG). */
static inline void irc__bf16_group(int K, const float *a, const uint16_t *w, float *out)
{
#if defined(IRC_TARGET_AVX512)
    __m512 acc = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m512i wi = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + (size_t)k * IRC_QG))), 16);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(a[k]), _mm512_castsi512_ps(wi), acc);
    }
    _mm512_storeu_ps(out, acc);
#elif defined(IRC_TARGET_AVX2)
    __m256 acc = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m256i wi = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + (size_t)k * IRC_QG))), 16);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a[k]), _mm256_castsi256_ps(wi), acc);
    }
    _mm256_storeu_ps(out, acc);
#elif defined(IRC_TARGET_NEON)
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int k = 0; k < K; k++) {
        const float32x4_t wf = vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w + (size_t)k * IRC_QG), 16));
        acc = vfmaq_f32(acc, vdupq_n_f32(a[k]), wf);
    }
    vst1q_f32(out, acc);
#else
    float acc[IRC_QG] = {0};
    for (int k = 0; k < K; k++)
        for (int c = 0; c < IRC_QG; c++) {
            const uint32_t bits = (uint32_t)w[(size_t)k * IRC_QG + c] << 16;
            float wf;
            memcpy(&wf, &bits, sizeof wf);
            acc[c] += a[k] * wf;
        }
    memcpy(out, acc, sizeof acc);
#endif
}

/* Columns j0 .. j0+n of row i of C from acc: + bias, act (irc_gemm's epilogue, in place). */
static inline void irc__q8_store(const irc_q8_args *g, int i, int j0, int n, const float *acc)
{
    memcpy(g->C + (ptrdiff_t)i * g->ldc + j0, acc, (size_t)n * sizeof(float));
    if (g->bias || g->act != IRC_ACT_NONE) {
        irc_gemm_args e = {0};
        e.C = g->C;
        e.ldc = g->ldc;
        e.bias = g->bias;
        e.act = g->act;
        irc__epilogue(&e, i, j0, 1, n);
    }
}

/* Rows of A as q8_0 into work: KB blocks of 32 int8 a row, then every row's scales, then sums. */
static inline void irc__q8_rows(const irc_q8_args *g, int8_t **qa, float **da, int32_t **sa)
{
    const int M = g->M, K = g->K, KB = irc_q8_blocks(K);
    unsigned char *w = (unsigned char *)g->work;
    *qa = (int8_t *)w;
    *da = (float *)(w + (size_t)M * KB * IRC_QK);
    *sa = (int32_t *)(*da + (size_t)M * KB);
    for (int i = 0; i < M; i++)
        for (int b = 0; b < KB; b++) {
            int8_t *q = *qa + ((size_t)i * KB + b) * IRC_QK;
            const int n = K - b * IRC_QK < IRC_QK ? K - b * IRC_QK : IRC_QK;
            (*da)[(size_t)i * KB + b] = irc_q8_block(g->A + (ptrdiff_t)i * g->lda + b * IRC_QK, 1, n, q);
            int32_t s = 0;
            for (int u = 0; u < IRC_QK; u++) s += q[u];
            (*sa)[(size_t)i * KB + b] = s;
        }
}

static inline int irc__q8_threads(const irc_q8_args *g)
{
    /* Small products are not worth waking threads (the result is the same either way). */
    return (double)g->M * g->N * g->K < 65536.0 || g->threads < 1 ? 1 : g->threads;
}

static inline void irc_q8_gemm(const irc_q8_args *g)
{
    const int M = g->M, N = g->N, KB = irc_q8_blocks(g->K), NG = irc_q8_groups(N);
    int8_t *qa;
    float *da;
    int32_t *sa;
    irc__q8_rows(g, &qa, &da, &sa);
    const unsigned char *wq = g->W;
    const float *wd = (const float *)(g->W + (size_t)NG * KB * IRC_QG * IRC_QK);
    const int nt = irc__q8_threads(g);
    (void)nt;
    IRC_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int gi = 0; gi < NG; gi++) {
        const int j0 = gi * IRC_QG, n = N - j0 < IRC_QG ? N - j0 : IRC_QG;
        for (int i = 0; i < M; i++) {
            float acc[IRC_QG];
            irc__q8_group(KB, qa + (size_t)i * KB * IRC_QK, da + (size_t)i * KB, sa + (size_t)i * KB,
                          wq + (size_t)gi * KB * IRC_QG * IRC_QK, wd + (size_t)gi * KB * IRC_QG, acc);
            irc__q8_store(g, i, j0, n, acc);
        }
    }
}

static inline void irc_bf16_gemm(const irc_q8_args *g)
{
    const int M = g->M, N = g->N, K = g->K, NG = irc_q8_groups(N);
    const uint16_t *w = (const uint16_t *)g->W;
    const int nt = irc__q8_threads(g);
    (void)nt;
    IRC_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int gi = 0; gi < NG; gi++) {
        const int j0 = gi * IRC_QG, n = N - j0 < IRC_QG ? N - j0 : IRC_QG;
        for (int i = 0; i < M; i++) {
            float acc[IRC_QG];
            irc__bf16_group(K, g->A + (ptrdiff_t)i * g->lda, w + (size_t)gi * K * IRC_QG, acc);
            irc__q8_store(g, i, j0, n, acc);
        }
    }
}

#endif
