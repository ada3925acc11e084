/* irc_gemm_bf16.h — the GEMM of `[build] dtype = "bf16"`: irc_gemm's product with both
 * operands rounded to bfloat16 and the products summed in f32.
 *
 *   C = act( bf16(op(A)) bf16(op(B)) + bias )       (or C += ..., as irc_gemm_args says)
 *
 * bf16(x) (irc_bf16_round): round to nearest even to the top 16 bits of the f32; a NaN stays a
 * NaN (made quiet); a denormal becomes a zero of its sign. The reference interpreter rounds
 * the same way (compiler/ops/matmul.rs, `bf16`), at the same points.
 *
 * The blocking, threading and epilogue are irc_gemm.h's packed path (irc__gemm_packed); only
 * the packing and the microkernel differ, in one of two formats that give the same bits:
 *
 *   native (AVX512-BF16, IRC_BF16_NATIVE): the packing rounds and stores each pair of k rows
 *       as bf16 pairs, k in the high half and k+1 in the low half of 32 bits, so conversion is
 *       paid once per panel; the microkernel runs vdpbf16ps, which per f32 lane adds the
 *       high pair's product and then the low one's: k, then k+1.
 *   emulated (every path): the packing rounds the f32 panel in place; the f32 microkernel
 *       FMAs k, then k+1. bf16 × bf16 is exact in f32, so each FMA rounds like vdpbf16ps's
 *       add. An odd K block gets a zero row, as the native pairs do.
 *
 * vdpbf16ps treats denormal inputs as zero and flushes denormal results, whatever MXCSR says;
 * both formats set FTZ and DAZ (MXCSR on x86, FPCR.FZ on aarch64) around a thread's tiles, so
 * the FMAs, the adds of C and the epilogue flush alike. Native and emulated are bit-identical
 * (tests/gemm_bf16_c.rs checks it); they differ from irc_gemm only in the rounded operands.
 *
 * No small-M path: a few rows (decode) take the packed tiles too.
 */
#ifndef IRC_GEMM_BF16_H
#define IRC_GEMM_BF16_H

#include <stdint.h>
#include <string.h>
#include "irc_gemm.h"
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

/* x rounded to bf16, as the f32 it stands for (low 16 bits zero). */
static inline uint32_t irc__bf16_bits(uint32_t u)
{
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u | 0x00400000u) & 0xffff0000u; /* quiet NaN */
    if ((u & 0x7f800000u) == 0) return u & 0x80000000u;                          /* DAZ */
    return (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
}

static inline float irc_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u = irc__bf16_bits(u);
    memcpy(&x, &u, 4);
    return x;
}

#if defined(IRC_TARGET_AVX512)
/* irc__bf16_bits on 16 lanes. */
static inline __m512i irc__bf16_bits_v(__m512 x)
{
    const __m512i u = _mm512_castps_si512(x), hi = _mm512_set1_epi32((int)0xffff0000u);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), hi);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_and_si512(_mm512_or_si512(u, _mm512_set1_epi32(0x00400000)), hi));
    const __mmask16 den = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(r, den, _mm512_and_si512(u, _mm512_set1_epi32((int)0x80000000u)));
}
#endif

/* p[0 : n] = bf16(p[0 : n]) in place. */
static void irc__bf16_round_n(float *p, size_t n)
{
    size_t i = 0;
#if defined(IRC_TARGET_AVX512)
    for (; i + 16 <= n; i += 16) _mm512_storeu_si512(p + i, irc__bf16_bits_v(_mm512_loadu_ps(p + i)));
#endif
    for (; i < n; i++) p[i] = irc_bf16_round(p[i]);
}

/* ---- denormals flushed around a thread's tiles ---------------------------------------- */
static unsigned irc__bf16_enter(void)
{
#if defined(__x86_64__) || defined(__i386__)
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040u); /* FTZ (bit 15), DAZ (bit 6) */
    return saved;
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1ull << 24))); /* FZ */
    return (unsigned)fpcr;
#else
    return 0;
#endif
}

static void irc__bf16_leave(unsigned saved)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(saved);
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" : : "r"((uint64_t)saved));
#else
    (void)saved;
#endif
}

/* ---- emulated: rounded f32 panels, the f32 microkernel -------------------------------- */

/* A panel of irc__pack_a / irc__pack_b rounded, plus a zero row after an odd kc. */
static void irc__bf16_emu_pack_a(const irc_gemm_args *g, int i0, int mr, int p0, int kc, float *restrict dst)
{
    irc__pack_a(g, i0, mr, p0, kc, dst);
    irc__bf16_round_n(dst, (size_t)kc * IRC_MR);
    if (kc & 1) memset(dst + (size_t)kc * IRC_MR, 0, sizeof(float) * IRC_MR);
}

static void irc__bf16_emu_pack_b(const irc_gemm_args *g, int j0, int nr, int p0, int kc, float *restrict dst)
{
    irc__pack_b(g, j0, nr, p0, kc, dst);
    irc__bf16_round_n(dst, (size_t)kc * IRC_NR);
    if (kc & 1) memset(dst + (size_t)kc * IRC_NR, 0, sizeof(float) * IRC_NR);
}

/* The f32 microkernel over the even row count the packing left (as many adds as native). */
static void irc__bf16_emu_ukernel(int kc, const float *restrict pa, const float *restrict pb, ptrdiff_t sb,
                                  float *c, ptrdiff_t ldc, const float *src, ptrdiff_t lds,
                                  const irc_gemm_args *ep, int i0, int j0)
{
    irc__ukernel(kc + (kc & 1), pa, pb, sb, c, ldc, src, lds, ep, i0, j0);
}

static const irc__gemm_format irc__bf16_emulated = {
    irc__bf16_emu_pack_a, irc__bf16_emu_pack_b, irc__bf16_emu_ukernel, 0, irc__bf16_enter, irc__bf16_leave,
};

#if defined(IRC_TARGET_AVX512)
/* ---- native: bf16 pairs, vdpbf16ps -----------------------------------------------------
 * A panel [kc][w] of f32 (w = MR or NR) becomes [(kc+1)/2][w] 32-bit pairs in place:
 * pair p, column i = bf16(row 2p) << 16 | bf16(row 2p+1) (0 past kc). Pair p is written at
 * or before row p, after rows 2p and 2p+1 are read. */
static void irc__bf16_pairs(float *panel, int kc, int w)
{
    const __mmask16 m = w >= 16 ? 0xffff : (__mmask16)((1u << w) - 1);
    for (int p = 0; p < (kc + 1) / 2; p++) {
        for (int i = 0; i < w; i += 16) {
            const __m512i hi = irc__bf16_bits_v(_mm512_maskz_loadu_ps(m, panel + (ptrdiff_t)2 * p * w + i));
            const __m512i lo = 2 * p + 1 < kc
                                   ? irc__bf16_bits_v(_mm512_maskz_loadu_ps(m, panel + (ptrdiff_t)(2 * p + 1) * w + i))
                                   : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(panel + (ptrdiff_t)p * w + i, m, _mm512_or_si512(hi, _mm512_srli_epi32(lo, 16)));
        }
    }
}

/* dst[(kc+1)/2][w] pairs of the k runs of rows r0 : r0+r of src (row stride ld, from column
 * p0), rows r..w-1 zero: each run read once, 32 values at a time, rounded and paired in
 * registers (vpermt2w), its 16 pairs scattered down the panel's column. */
static void irc__bf16_pack_runs(const float *src, ptrdiff_t ld, int r0, int r, int p0, int kc, int w,
                                float *restrict dst)
{
    /* pair j of 32 values x||y: low half value 2j+1, high half value 2j (16-bit lanes: value
     * m's bf16 is lane 2m+1 of its 32-bit element) */
    static const short pick[32] = {3,  1,  7,  5,  11, 9,  15, 13, 19, 17, 23, 21, 27, 25, 31, 29,
                                   35, 33, 39, 37, 43, 41, 47, 45, 51, 49, 55, 53, 59, 57, 63, 61};
    const __m512i idx = _mm512_loadu_si512(pick);
    const __m512i down = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(w));
    const int np = (kc + 1) / 2;
    for (int i = 0; i < w; i++) {
        if (i >= r) {
            for (int p = 0; p < np; p++) dst[(ptrdiff_t)p * w + i] = 0.0f;
            continue;
        }
        const float *s = src + (ptrdiff_t)(r0 + i) * ld + p0;
        for (int q0 = 0; q0 < np; q0 += 16) {
            const int rem = kc - 2 * q0;
            const __mmask16 m0 = rem >= 16 ? 0xffff : (__mmask16)((1u << rem) - 1);
            const __mmask16 m1 = rem >= 32 ? 0xffff : rem > 16 ? (__mmask16)((1u << (rem - 16)) - 1) : 0;
            const __m512i x = irc__bf16_bits_v(_mm512_maskz_loadu_ps(m0, s + 2 * q0));
            const __m512i y = irc__bf16_bits_v(_mm512_maskz_loadu_ps(m1, s + 2 * q0 + 16));
            const int nq = np - q0 < 16 ? np - q0 : 16;
            const __mmask16 mq = nq == 16 ? 0xffff : (__mmask16)((1u << nq) - 1);
            _mm512_mask_i32scatter_epi32(dst + (ptrdiff_t)q0 * w + i, mq, down,
                                         _mm512_permutex2var_epi16(x, idx, y), 4);
        }
    }
}

/* A row-major (the forward's X·W, dX = dY·Wᵀ) by its rows' k runs; A transposed (dW = Xᵀ·dY)
 * as irc__pack_a packs it (contiguous rows), then paired. */
static void irc__bf16_nat_pack_a(const irc_gemm_args *g, int i0, int mr, int p0, int kc, float *restrict dst)
{
    if (g->trans_a) {
        irc__pack_a(g, i0, mr, p0, kc, dst);
        irc__bf16_pairs(dst, kc, IRC_MR);
    } else {
        irc__bf16_pack_runs(g->A, g->lda, i0, mr, p0, kc, IRC_MR, dst);
    }
}

/* B transposed (Llama's linear layers, the LM head) by its rows' k runs; B as it is by
 * irc__pack_b's vector copies, then paired. */
static void irc__bf16_nat_pack_b(const irc_gemm_args *g, int j0, int nr, int p0, int kc, float *restrict dst)
{
    if (g->trans_b) {
        irc__bf16_pack_runs(g->B, g->ldb, j0, nr, p0, kc, IRC_NR, dst);
    } else {
        irc__pack_b(g, j0, nr, p0, kc, dst);
        irc__bf16_pairs(dst, kc, IRC_NR);
    }
}

/* irc__ukernel with a k pair per step: pa [(kc+1)/2][MR] pairs, pb (kc+1)/2 rows of NR pairs
 * (row stride sb, NR: B is always packed). */
__attribute__((target("avx512bf16")))
static void irc__bf16_nat_ukernel(int kc, const float *restrict pa, const float *restrict pb, ptrdiff_t sb,
                                  float *c, ptrdiff_t ldc, const float *src, ptrdiff_t lds,
                                  const irc_gemm_args *ep, int i0, int j0)
{
#define IRC__DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
#define IRC__DOT(i)                                              \
    {                                                            \
        const __m512bh a = (__m512bh)_mm512_set1_ps(pa[i]);      \
        c##i##a = _mm512_dpbf16_ps(c##i##a, a, b0);              \
        c##i##b = _mm512_dpbf16_ps(c##i##b, a, b1);              \
    }

    IRC_GEMM_ROWS(IRC__DECL)
    for (int p = 0; p < (kc + 1) / 2; p++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_ps(pb), b1 = (__m512bh)_mm512_loadu_ps(pb + IRC_VW);
        IRC_GEMM_ROWS(IRC__DOT)
        pa += IRC_MR;
        pb += sb;
    }
    IRC_GEMM_TILE_FINISH()

#undef IRC__DECL
#undef IRC__DOT
}

static const irc__gemm_format irc__bf16_native = {
    irc__bf16_nat_pack_a, irc__bf16_nat_pack_b, irc__bf16_nat_ukernel, 0, irc__bf16_enter, irc__bf16_leave,
};
#define IRC__BF16_FORMATS {&irc__bf16_emulated, &irc__bf16_native}
#else
#if defined(IRC_BF16_NATIVE) && IRC_BF16_NATIVE
#error "IRC_BF16_NATIVE (vdpbf16ps) needs IRC_TARGET_AVX512"
#endif
#define IRC__BF16_FORMATS {&irc__bf16_emulated}
#endif

/* [0] emulated, [1] native where the path has it. */
static const irc__gemm_format *const irc__bf16_formats[] = IRC__BF16_FORMATS;

#ifndef IRC_BF16_NATIVE
#define IRC_BF16_NATIVE 0
#endif

/* The bf16 product in format f (irc__bf16_formats). */
static void irc__gemm_bf16_as(const irc_gemm_args *g, const irc__gemm_format *f)
{
    if (g->M <= 0 || g->N <= 0) return;
    if (g->K <= 0) { /* no operands to round: irc_gemm's empty product */
        irc_gemm(g);
        return;
    }
    irc__gemm_packed(g, f);
}

static void irc_gemm_bf16(const irc_gemm_args *g)
{
    irc__gemm_bf16_as(g, irc__bf16_formats[IRC_BF16_NATIVE]);
}

#endif /* IRC_GEMM_BF16_H */
