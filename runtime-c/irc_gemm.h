/* irc_gemm.h — header-only fp32 GEMM with a fused epilogue, BLIS-style.
 *
 *   C = act( op(A) op(B) + bias )            (pre = the value before act, if requested)
 *   C += op(A) op(B)                          (accumulate = 1)
 *
 * Blocking (the five BLIS loops, outermost first):
 *
 *   jc: N in blocks of NC      B block (KC×NC, packed) lives in L3
 *   pc: K in blocks of KC      pack B block into NR-wide panels, zero-padded
 *   ic: M in blocks of MC      pack A block (MC×KC) into MR-tall panels, zero-padded; in L2
 *   jr: NR panels of B         B micro-panel (KC×NR) stays in L1 while ...
 *   ir: MR panels of A         ... the A micro-panels stream from L2
 *
 * The microkernel keeps an MR×NR tile of C in registers (MR rows × 2 vectors) and does one
 * rank-1 update per k: broadcast MR values of A, load 2 vectors of B, 2·MR FMAs.
 * Edge tiles are computed into a stack MR×NR tile and the valid part copied out.
 *
 * Threads: C is split into disjoint ranges of whole tiles, one per thread — over M (MR-row
 * tiles) when M has enough of them, else over N (NR-column panels). Each
 * thread runs the loops above on its range with its own packing buffers, so the parallel
 * region has no barrier and a preempted thread (a busy machine) delays only its own range.
 *
 * Determinism: every C element is ((src + Σ_{k in block 0}) + Σ_{k in block 1}) + ... with
 * src = C (accumulate) or 0; KC is a constant and tiles start at multiples of MR/NR
 * whatever the split, each tile is computed by one thread with the same code, and the
 * epilogue (bias, pre, act) runs on a tile after its last K block. So the output is
 * bit-identical for any thread count.
 *
 * Small M (decode, a few rows of A): no packing and no tiles of MR rows; see "small M" below.
 *
 * No global state: all scratch is the caller's `work` (irc_gemm_work_floats(threads)
 * floats, 64-byte aligned: per thread one B block and one A block) plus one MR×NR stack tile.
 *
 * Define one of irc_simd.h's target macros before including this header; compile with -fopenmp for threads
 * (without it the pragmas are ignored and the code runs serially with identical results).
 */
#ifndef IRC_GEMM_H
#define IRC_GEMM_H

#include <stddef.h>
#include "irc_simd.h"
#include "irc_act.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenMP pragmas that vanish (without an unknown-pragma warning) when built without -fopenmp. */
#ifdef _OPENMP
#define IRC_OMP(directive) _Pragma(#directive)
#else
#define IRC_OMP(directive)
#endif

typedef struct {
    int M, N, K;
    const float *A; int lda; int trans_a;  /* op(A) is M×K; trans_a=0: A is M×K row-major (lda ≥ K); 1: A is K×M row-major (lda ≥ M) */
    const float *B; int ldb; int trans_b;  /* op(B) is K×N; trans_b=0: B is K×N row-major (ldb ≥ N); 1: B is N×K row-major (ldb ≥ K) */
    float *C; int ldc;                      /* M×N row-major */
    int accumulate;         /* 0: C = result; 1: C += op(A)op(B) (no epilogue allowed with 1) */
    const float *bias;      /* NULL or [N], added to every row */
    float *pre;             /* NULL or M×N (ldc): stores AB+bias before the activation (the backward reads it) */
    irc_act act;            /* activation applied last (irc_act.h), or IRC_ACT_NONE */
    int threads;            /* ≥1; OpenMP threads used */
    float *work;            /* workspace of at least irc_gemm_work_floats(threads) floats, 64-byte aligned */
} irc_gemm_args;

/* ---- per-target tile, and block sizes from the caches -------------------------------------
 * The register tile is the microkernel's: MR rows × NR = two vectors. */
#define IRC_NR (2 * IRC_VW)
#if defined(IRC_TARGET_AVX512)
#define IRC_MR 12            /* 24 zmm accumulators + 2 B vectors + 1 broadcast of 32 */
#define IRC_GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#elif defined(IRC_TARGET_AVX2)
#define IRC_MR 6             /* 12 ymm accumulators + 2 B vectors + 1 broadcast of 16 */
#define IRC_GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#elif defined(IRC_TARGET_NEON)
#define IRC_MR 8             /* 16 q accumulators + 2 B vectors + 1 broadcast of 32 */
#define IRC_GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#else
#define IRC_MR 4             /* 4×2 tile of plain floats */
#define IRC_GEMM_ROWS(X) X(0) X(1) X(2) X(3)
#endif

/* The blocks follow the caches of the CPU the library is built for, which irc build defines
 * (the schedule's caches; `irc inspect` shows them):
 *   KC: the B micro-panel (KC×NR floats) fills half of L1d, the other half holds the A
 *       micro-panel streaming through and the C tile;
 *   MC: the A block (MC×KC) fills half of L2;
 *   NC: the B block (KC×NC) half of this core's share of L3 (at most 4096 columns, which
 *       bounds the workspace).
 * KC sets the order of the sums over K, so the results of a build depend on the caches it
 * was blocked for (and on nothing else: not on the thread count). */
#if !defined(IRC_L1D_BYTES) || !defined(IRC_L2_BYTES) || !defined(IRC_L3_BYTES_PER_CORE)
#error "define IRC_L1D_BYTES, IRC_L2_BYTES and IRC_L3_BYTES_PER_CORE (irc build does: see the schedule's caches)"
#endif
#define IRC__CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))
#define IRC_KC IRC__CLAMP(IRC_L1D_BYTES / 2 / (4 * IRC_NR) / 16 * 16, 32, 512)
#define IRC_MC IRC__CLAMP(IRC_L2_BYTES / 2 / (4 * IRC_KC) / IRC_MR * IRC_MR, IRC_MR, 128 * IRC_MR)
#define IRC_NC IRC__CLAMP(IRC_L3_BYTES_PER_CORE / 2 / (4 * IRC_KC) / IRC_NR * IRC_NR, IRC_NR, 4096)

/* Each thread packs into its own B block (KC×NC) and A block (MC×KC): no barriers. */
#define IRC_WORK_PER_THREAD ((size_t)IRC_KC * IRC_NC + (size_t)IRC_MC * IRC_KC)

static size_t irc_gemm_work_floats(int threads)
{
    return (size_t)(threads > 1 ? threads : 1) * IRC_WORK_PER_THREAD;
}

/* ---- epilogue ------------------------------------------------------------------------ */

static inline int irc__has_epilogue(const irc_gemm_args *g)
{
    return g->bias || g->pre || g->act != IRC_ACT_NONE;
}

/* One vector of C's finished sums v, at offset at of C (and of pre) and column j: + bias,
 * store pre, then act. The microkernel applies it in
 * registers, the edge tiles and the small-M path to what they stored: the same steps in
 * the same order, so every element rounds alike wherever it falls. */
static inline irc_vf irc__epilogue_v(const irc_gemm_args *g, irc_vf v, ptrdiff_t at, int j, int w)
{
    if (g->bias) v = irc_vadd(v, w == IRC_VW ? irc_vload(g->bias + j) : irc_vload_n(g->bias + j, w));
    if (g->pre) {
        if (w == IRC_VW) irc_vstore(g->pre + at, v); else irc_vstore_n(g->pre + at, v, w);
    }
    if (g->act != IRC_ACT_NONE) v = irc_vact(g->act, v);
    return v;
}

/* C[i0:i0+m, j0:j0+n] holds AB: the epilogue over it in place. */
static void irc__epilogue(const irc_gemm_args *g, int i0, int j0, int m, int n)
{
    if (!irc__has_epilogue(g)) return;
    for (int i = i0; i < i0 + m; i++) {
        for (int j = j0; j < j0 + n; j += IRC_VW) {
            const int w = j0 + n - j < IRC_VW ? j0 + n - j : IRC_VW;
            const ptrdiff_t at = (ptrdiff_t)i * g->ldc + j;
            irc_vf v = w == IRC_VW ? irc_vload(g->C + at) : irc_vload_n(g->C + at, w);
            v = irc__epilogue_v(g, v, at, j, w);
            if (w == IRC_VW) irc_vstore(g->C + at, v); else irc_vstore_n(g->C + at, v, w);
        }
    }
}

/* The end of a micro-kernel's tile, shared by every format's: add src, run the epilogue, store.
 * It reads the micro-kernel's accumulators c<i>a/c<i>b and its parameters c, ldc, src, lds, ep,
 * i0 and j0 (see irc__ukernel). */
#define IRC_GEMM_TILE_ADD(i)                                                       \
    c##i##a = irc_vadd(irc_vload(src + (i) * lds), c##i##a);                       \
    c##i##b = irc_vadd(irc_vload(src + (i) * lds + IRC_VW), c##i##b);
#define IRC_GEMM_TILE_EPI(i)                                                         \
    {                                                                                \
        const ptrdiff_t at = (ptrdiff_t)(i0 + (i)) * ldc + j0;                       \
        c##i##a = irc__epilogue_v(ep, c##i##a, at, j0, IRC_VW);                      \
        c##i##b = irc__epilogue_v(ep, c##i##b, at + IRC_VW, j0 + IRC_VW, IRC_VW);    \
    }
#define IRC_GEMM_TILE_STORE(i)                         \
    irc_vstore(c + (i) * ldc, c##i##a);                \
    irc_vstore(c + (i) * ldc + IRC_VW, c##i##b);
#define IRC_GEMM_TILE_FINISH()                                   \
    if (src) { IRC_GEMM_ROWS(IRC_GEMM_TILE_ADD) }                \
    if (ep) { IRC_GEMM_ROWS(IRC_GEMM_TILE_EPI) }                 \
    IRC_GEMM_ROWS(IRC_GEMM_TILE_STORE)

/* ---- microkernel ------------------------------------------------------------------------
 * c[MR×NR] (row stride ldc) = src[MR×NR] (stride lds; NULL means 0) + Σ_k pa[k,:]ᵀ pb[k,:]
 * pa: [kc][MR] packed A micro-panel; pb: kc rows of NR floats, row stride sb (NR when
 * packed, ldb when B is read in place). src may alias c. With ep (the last K block of a
 * GEMM with an epilogue), the epilogue runs on the registers before they are stored (c is
 * then C itself at row i0, column j0): C is written once, and an ldc of a multiple of 4 KiB
 * cannot make its rows evict each other from L1 between a store and the epilogue's load. */
static void irc__ukernel(int kc, const float *restrict pa, const float *restrict pb, ptrdiff_t sb,
                         float *c, ptrdiff_t ldc, const float *src, ptrdiff_t lds,
                         const irc_gemm_args *ep, int i0, int j0)
{
#define IRC__DECL(i) irc_vf c##i##a = irc_vzero(), c##i##b = irc_vzero();
#define IRC__FMA(i)                                   \
    {                                                 \
        irc_vf a = irc_vset1(pa[i]);                  \
        c##i##a = irc_vfma(a, b0, c##i##a);           \
        c##i##b = irc_vfma(a, b1, c##i##b);           \
    }

    IRC_GEMM_ROWS(IRC__DECL)
    for (int k = 0; k < kc; k++) {
        irc_vf b0 = irc_vload(pb), b1 = irc_vload(pb + IRC_VW);
        IRC_GEMM_ROWS(IRC__FMA)
        pa += IRC_MR;
        pb += sb;
    }
    IRC_GEMM_TILE_FINISH()

#undef IRC__DECL
#undef IRC__FMA
}

/* ---- packing ------------------------------------------------------------------------- */

/* Packing A costs one pass over M×K, against N/VW vector FMAs per element: with the small N of
 * small models (192) a scalar gather was a fifth of the GEMM. So a full MR-row panel of a
 * row-major A is transposed in registers, 8 (NEON: 4) values of K at a time:
 * irc__pack_a_rows(s, lda, kc, dst) packs rows s[0..MR) × k in [0, kc rounded down to the
 * block) and returns how many k it did; the scalar loop takes the rest. */
#if defined(IRC_TARGET_AVX2) || defined(IRC_TARGET_AVX512)
/* r[0..8) = the 8×8 transpose of r[0..8) (row i lane k → row k lane i). */
static inline void irc__transpose8(__m256 r[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Rows s[0..n) (n ≤ 8, the rest zero) at k .. k+8, transposed: r[j] = column k + j. */
static inline void irc__load8x8(const float *s, ptrdiff_t lda, int n, int k, __m256 r[8])
{
    for (int i = 0; i < 8; i++) r[i] = i < n ? _mm256_loadu_ps(s + i * lda + k) : _mm256_setzero_ps();
    irc__transpose8(r);
}

static int irc__pack_a_rows(const float *s, ptrdiff_t lda, int kc, float *restrict dst)
{
    int k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 lo[8];
        irc__load8x8(s, lda, IRC_MR < 8 ? IRC_MR : 8, k, lo);
#if IRC_MR == 6
        for (int j = 0; j < 8; j++) {
            float *d = dst + (ptrdiff_t)(k + j) * IRC_MR;
            _mm_storeu_ps(d, _mm256_castps256_ps128(lo[j]));
            _mm_storel_pi((__m64 *)(d + 4), _mm256_extractf128_ps(lo[j], 1));
        }
#else /* AVX-512: MR = 12 = rows 0..7 and rows 8..11 */
        __m256 hi[8];
        irc__load8x8(s + 8 * lda, lda, IRC_MR - 8, k, hi);
        for (int j = 0; j < 8; j++) {
            float *d = dst + (ptrdiff_t)(k + j) * IRC_MR;
            _mm256_storeu_ps(d, lo[j]);
            _mm_storeu_ps(d + 8, _mm256_castps256_ps128(hi[j]));
        }
#endif
    }
    return k;
}
#elif defined(IRC_TARGET_NEON)
static int irc__pack_a_rows(const float *s, ptrdiff_t lda, int kc, float *restrict dst)
{
    int k = 0;
    for (; k + 4 <= kc; k += 4) {
        for (int q = 0; q < IRC_MR; q += 4) { /* rows q..q+3: a 4×4 transpose */
            const float *r = s + q * lda + k;
            const float32x4_t r0 = vld1q_f32(r), r1 = vld1q_f32(r + lda);
            const float32x4_t r2 = vld1q_f32(r + 2 * lda), r3 = vld1q_f32(r + 3 * lda);
            const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1));
            const float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1));
            const float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3));
            const float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
            float *d = dst + (ptrdiff_t)k * IRC_MR + q;
            vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
            vst1q_f32(d + IRC_MR, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
            vst1q_f32(d + 2 * IRC_MR, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
            vst1q_f32(d + 3 * IRC_MR, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
        }
    }
    return k;
}
#else
static int irc__pack_a_rows(const float *s, ptrdiff_t lda, int kc, float *restrict dst)
{
    (void)s, (void)lda, (void)kc, (void)dst;
    return 0;
}
#endif

/* dst[kc][MR] = op(A)[i0 : i0+mr, p0 : p0+kc], rows mr..MR-1 zero. */
static void irc__pack_a(const irc_gemm_args *g, int i0, int mr, int p0, int kc, float *restrict dst)
{
    const float *A = g->A;
    const ptrdiff_t lda = g->lda;
    if (g->trans_a) {
        for (int k = 0; k < kc; k++) {
            const float *s = A + (ptrdiff_t)(p0 + k) * lda + i0;
            float *d = dst + (ptrdiff_t)k * IRC_MR;
            if (mr == IRC_MR) { /* a constant-size copy: vector moves */
                memcpy(d, s, sizeof(float) * IRC_MR);
                continue;
            }
            for (int i = 0; i < mr; i++) d[i] = s[i];
            for (int i = mr; i < IRC_MR; i++) d[i] = 0.0f;
        }
    } else {
        const float *s = A + (ptrdiff_t)i0 * lda + p0;
        const int k0 = mr == IRC_MR ? irc__pack_a_rows(s, lda, kc, dst) : 0;
        for (int i = 0; i < mr; i++)
            for (int k = k0; k < kc; k++) dst[(ptrdiff_t)k * IRC_MR + i] = s[i * lda + k];
        for (int i = mr; i < IRC_MR; i++)
            for (int k = k0; k < kc; k++) dst[(ptrdiff_t)k * IRC_MR + i] = 0.0f;
    }
}

/* dst[kc][NR] = op(B)[p0 : p0+kc, j0 : j0+nr], columns nr..NR-1 zero. */
static void irc__pack_b(const irc_gemm_args *g, int j0, int nr, int p0, int kc, float *restrict dst)
{
    const float *B = g->B;
    const ptrdiff_t ldb = g->ldb;
    if (g->trans_b) {
        for (int j = 0; j < nr; j++) {
            const float *s = B + (ptrdiff_t)(j0 + j) * ldb + p0;
            for (int k = 0; k < kc; k++) dst[(ptrdiff_t)k * IRC_NR + j] = s[k];
        }
        for (int j = nr; j < IRC_NR; j++)
            for (int k = 0; k < kc; k++) dst[(ptrdiff_t)k * IRC_NR + j] = 0.0f;
    } else if (nr == IRC_NR) {
        for (int k = 0; k < kc; k++) {
            const float *s = B + (ptrdiff_t)(p0 + k) * ldb + j0;
            irc_vstore(dst + (ptrdiff_t)k * IRC_NR, irc_vload(s));
            irc_vstore(dst + (ptrdiff_t)k * IRC_NR + IRC_VW, irc_vload(s + IRC_VW));
        }
    } else {
        for (int k = 0; k < kc; k++) {
            const float *s = B + (ptrdiff_t)(p0 + k) * ldb + j0;
            float *d = dst + (ptrdiff_t)k * IRC_NR;
            for (int j = 0; j < nr; j++) d[j] = s[j];
            for (int j = nr; j < IRC_NR; j++) d[j] = 0.0f;
        }
    }
}

/* ---- the operand format of the packed path ---------------------------------------------
 * The blocking below is shared by every operand format: a format packs the A and B panels
 * (into the float blocks of `work`, possibly narrower elements) and runs the microkernel on
 * them (irc_gemm_bf16.h is the other one). */
typedef void (*irc__pack_fn)(const irc_gemm_args *g, int r0, int r, int p0, int kc, float *restrict dst);
typedef void (*irc__ukernel_fn)(int kc, const float *restrict pa, const float *restrict pb, ptrdiff_t sb,
                                float *c, ptrdiff_t ldc, const float *src, ptrdiff_t lds,
                                const irc_gemm_args *ep, int i0, int j0);
typedef struct {
    irc__pack_fn pack_a, pack_b;
    irc__ukernel_fn ukernel;
    int b_in_place;                /* full panels of a row-major B may be read unpacked */
    unsigned (*enter)(void);       /* NULL, or per thread before its tiles: returns what leave restores */
    void (*leave)(unsigned);
} irc__gemm_format;

static const irc__gemm_format irc__f32 = {irc__pack_a, irc__pack_b, irc__ukernel, 1, NULL, NULL};

/* ---- one MR×NR tile of one K block --------------------------------------------------- */
static void irc__tile(const irc_gemm_args *g, const irc__gemm_format *f, int kc, const float *pa,
                      const float *pb, ptrdiff_t sb, int i0, int j0, int mr, int nr, int first, int last)
{
    const ptrdiff_t ldc = g->ldc;
    float *c = g->C + i0 * ldc + j0;
    /* The first K block starts from 0 (or old C when accumulating); later ones from C. */
    const float *src = first && !g->accumulate ? NULL : c;

    if (mr == IRC_MR && nr == IRC_NR) {
        const irc_gemm_args *ep = last && irc__has_epilogue(g) ? g : NULL;
        f->ukernel(kc, pa, pb, sb, c, ldc, src, ldc, ep, i0, j0);
    } else {
        float buf[IRC_MR * IRC_NR];
        f->ukernel(kc, pa, pb, sb, buf, IRC_NR, NULL, 0, NULL, 0, 0);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
                c[i * ldc + j] = src ? src[i * ldc + j] + buf[i * IRC_NR + j] : buf[i * IRC_NR + j];
        if (last) irc__epilogue(g, i0, j0, mr, nr);
    }
}

/* All tiles of C[m0:m1, n0:n1] (m0, n0 multiples of MR, NR) by one thread.
 * bpack: [NC/NR][KC][NR], apack: [MC/MR][KC][MR], both private to the thread. */
static void irc__gemm_part(const irc_gemm_args *g, const irc__gemm_format *f, int m0, int m1, int n0,
                           int n1, float *bpack, float *apack)
{
    const int K = g->K;
    /* One A tile: each B panel is used once, so read full panels of a row-major B in place.
     * Not for SCALAR: gcc 12 -O2 SLP-vectorizes its kernel with a load that runs one B row
     * past the panel (harmless inside `work`, a fault past the caller's B). */
    const int b_in_place = f->b_in_place && IRC_VW > 1 && !g->trans_b && g->M <= IRC_MR;

    for (int jc = n0; jc < n1; jc += IRC_NC) {
        const int nc = n1 - jc < IRC_NC ? n1 - jc : IRC_NC;
        const int np = (nc + IRC_NR - 1) / IRC_NR;
        for (int pc = 0; pc < K; pc += IRC_KC) {
            const int kc = K - pc < IRC_KC ? K - pc : IRC_KC;
            const int first = pc == 0, last = pc + kc == K;
            for (int jp = 0; jp < np; jp++) {
                const int nr = nc - jp * IRC_NR < IRC_NR ? nc - jp * IRC_NR : IRC_NR;
                if (!(b_in_place && nr == IRC_NR))
                    f->pack_b(g, jc + jp * IRC_NR, nr, pc, kc, bpack + (ptrdiff_t)jp * IRC_KC * IRC_NR);
            }
            for (int ic = m0; ic < m1; ic += IRC_MC) {
                const int mc = m1 - ic < IRC_MC ? m1 - ic : IRC_MC;
                const int mp = (mc + IRC_MR - 1) / IRC_MR;
                for (int ip = 0; ip < mp; ip++) {
                    const int mr = mc - ip * IRC_MR < IRC_MR ? mc - ip * IRC_MR : IRC_MR;
                    f->pack_a(g, ic + ip * IRC_MR, mr, pc, kc, apack + (ptrdiff_t)ip * IRC_KC * IRC_MR);
                }
                /* jr outer, ir inner: the B micro-panel stays in L1 across the A panels. */
                for (int jp = 0; jp < np; jp++) {
                    const int j0 = jc + jp * IRC_NR;
                    const int nr = nc - jp * IRC_NR < IRC_NR ? nc - jp * IRC_NR : IRC_NR;
                    const float *pb = bpack + (ptrdiff_t)jp * IRC_KC * IRC_NR;
                    ptrdiff_t sb = IRC_NR;
                    if (b_in_place && nr == IRC_NR) {
                        pb = g->B + (ptrdiff_t)pc * g->ldb + j0;
                        sb = g->ldb;
                    }
                    for (int ip = 0; ip < mp; ip++) {
                        const int mr = mc - ip * IRC_MR < IRC_MR ? mc - ip * IRC_MR : IRC_MR;
                        irc__tile(g, f, kc, apack + (ptrdiff_t)ip * IRC_KC * IRC_MR, pb, sb,
                                  ic + ip * IRC_MR, j0, mr, nr, first, last);
                    }
                }
            }
        }
    }
}

/* The packed path above for all of C: threads split C into ranges of whole tiles. */
static void irc__gemm_packed(const irc_gemm_args *g, const irc__gemm_format *f)
{
    const int M = g->M, N = g->N, K = g->K;
    /* Tiny products are not worth waking threads (the result is the same either way). */
    const int nt = (double)M * N * K < 65536.0 || g->threads < 1 ? 1 : g->threads;
    (void)nt; /* unused without -fopenmp */

    IRC_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        int tid = 0, T = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        T = omp_get_num_threads();
#endif
        float *bpack = g->work + (size_t)tid * IRC_WORK_PER_THREAD;
        float *apack = bpack + (size_t)IRC_KC * IRC_NC;
        const unsigned saved = f->enter ? f->enter() : 0;
        /* Split whole tiles over the longer side of C, when it has a tile for every thread.
         * Each thread packs all of the operand along the side it does not split (B when
         * it splits M, A when it splits N) and its share of the other: K·N + K·M/T floats
         * against K·M + K·N/T, fewer when the split side is the longer. A weight gradient
         * (M = 192, N = 768, K = 4096) split over M packed all of dY twice: 74% of the
         * FMA peak on 2 threads, 85% on 1. */
        const int mt = (M + IRC_MR - 1) / IRC_MR, ntl = (N + IRC_NR - 1) / IRC_NR;
        const int by_m = mt >= T && ntl >= T ? M >= N : mt >= ntl;
        if (by_m) {
            int m0 = (int)((long long)mt * tid / T) * IRC_MR, m1 = (int)((long long)mt * (tid + 1) / T) * IRC_MR;
            if (m1 > M) m1 = M;
            if (m0 < m1) irc__gemm_part(g, f, m0, m1, 0, N, bpack, apack);
        } else {
            int n0 = (int)((long long)ntl * tid / T) * IRC_NR, n1 = (int)((long long)ntl * (tid + 1) / T) * IRC_NR;
            if (n1 > N) n1 = N;
            if (n0 < n1) irc__gemm_part(g, f, 0, M, n0, n1, bpack, apack);
        }
        if (f->leave) f->leave(saved);
    }
}

/* ---- small M (decode): no packing ------------------------------------------------------
 * A few rows of a row-major A (trans_a = 0, M ≤ IRC_SMALL_M_NN, or IRC_SMALL_M_NT with B
 * transposed): one token, or a few, at a time. The packed path would run MR-row tiles for
 * them (MR/M times the FMAs) and repack every B panel it reads once; here B is read in
 * place, once per group of up to 4 rows of C, and the rows of A (a few KB) stay in L1.
 * These products are memory-bound: the aim is B's bandwidth.
 *
 *   trans_b = 0, B is K×N: irc__nn_RxV. For a slab of V vectors of columns, stream B's
 *       rows k = 0..K-1 and FMA the broadcast A[i,k] into R×V accumulators. A thread's
 *       columns go in slabs of the widest V, then one of 4, 2, 1 vectors, then a partial one.
 *   trans_b = 1, B is N×K: irc__nt_RxNB. NB columns at a time, dot products over K into
 *       R×NB vector accumulators (NB rows of B streamed side by side, A's rows from L1),
 *       then horizontal sums four at a time (irc__hsum4).
 * R×V and R×NB are as many accumulators as the registers hold (16 on AVX2, 32 otherwise).
 *
 * Every C element is the same sequence of operations wherever it falls (kernel width, row
 * group, thread range): one FMA chain over k in order (trans_b = 1: one per vector lane,
 * then the same reduction tree over the lanes), then C when accumulating,
 * then the epilogue lane by lane.
 * So the result is bit-identical for any thread count, like the packed path's (though not
 * bit-identical to the packed path's).
 *
 * Threads split N into contiguous ranges of whole vectors (trans_b = 0) or NB-column blocks
 * (trans_b = 1), and only when B has at least IRC_SMALL_PAR_BYTES: below that, waking a
 * second thread costs more than it saves. */

/* The largest M that takes the small-M path: the largest up to which it wins at every M in
 * the crossover table of `bash benches/gemm.sh decode` (packed path time / small-M path
 * time for M = 1..8). Above 4 rows, two row groups read B twice (the second time from L2):
 * that still beats the 12-row tiles of AVX-512 at every M ≤ 8, and with B transposed (which
 * the packed path must repack column by column) AVX2 as well, but not AVX2's 6-row tiles at
 * M = 5, 6 with B as it is. SCALAR's 4-row tiles (full at M = 4 and 8) win at M = 4; NEON
 * (8-row tiles, not measured) follows AVX2. */
#if defined(IRC_TARGET_AVX512)
#define IRC_SMALL_M_NN 8
#define IRC_SMALL_M_NT 8
#elif defined(IRC_TARGET_SCALAR)
#define IRC_SMALL_M_NN 3
#define IRC_SMALL_M_NT 3
#else
#define IRC_SMALL_M_NN 4
#define IRC_SMALL_M_NT 8
#endif
/* Measured the same way (the threads table): a second thread pays from ~192 KiB of B. */
#define IRC_SMALL_PAR_BYTES (192 * 1024)

/* The kernels are written once over X-macro lists of rows and columns, so that every
 * accumulator is a named variable (a register) whatever the compiler:
 *   IRC__ROWS_R(X, L, F)  X(r, L, F) for r = 0..R-1
 *   IRC__COLS_C(F, r)     F(r, c) for c = 0..C-1
 *   IRC__EACH(r, L, F)    F(r, c) for every c of column list L: IRC__ROWS_R(IRC__EACH, L, F)
 *                         is F on every (row, column) pair. */
#define IRC__ROWS_1(X, L, F) X(0, L, F)
#define IRC__ROWS_2(X, L, F) X(0, L, F) X(1, L, F)
#define IRC__ROWS_3(X, L, F) IRC__ROWS_2(X, L, F) X(2, L, F)
#define IRC__ROWS_4(X, L, F) IRC__ROWS_3(X, L, F) X(3, L, F)
#define IRC__COLS_1(F, r) F(r, 0)
#define IRC__COLS_2(F, r) F(r, 0) F(r, 1)
#define IRC__COLS_4(F, r) IRC__COLS_2(F, r) F(r, 2) F(r, 3)
#define IRC__COLS_8(F, r) IRC__COLS_4(F, r) F(r, 4) F(r, 5) F(r, 6) F(r, 7)
#define IRC__EACH(r, L, F) L(F, r)

/* The instances each target compiles: (R rows, V vectors) and (R rows, NB columns). */
#if defined(IRC_TARGET_AVX2)
#define IRC__NN_KERNELS(X) X(1, 8) X(1, 4) X(1, 2) X(1, 1) X(2, 4) X(2, 2) X(2, 1) X(3, 2) X(3, 1) X(4, 2) X(4, 1)
#define IRC__NT_KERNELS(X) X(1, 8) X(2, 4) X(3, 2) X(4, 2)
#else
#define IRC__NN_KERNELS(X) X(1, 8) X(1, 4) X(1, 2) X(1, 1) X(2, 8) X(2, 4) X(2, 2) X(2, 1) \
                           X(3, 4) X(3, 2) X(3, 1) X(4, 4) X(4, 2) X(4, 1)
#define IRC__NT_KERNELS(X) X(1, 8) X(2, 8) X(3, 4) X(4, 4)
#endif

/* C[i, j : j+w] = v, or C + v when accumulating (w ≤ VW). */
static inline void irc__small_store(const irc_gemm_args *g, int i, int j, irc_vf v, int w)
{
    float *c = g->C + (ptrdiff_t)i * g->ldc + j;
    if (w == IRC_VW) {
        if (g->accumulate) v = irc_vadd(irc_vload(c), v);
        irc_vstore(c, v);
    } else {
        if (g->accumulate) v = irc_vadd(irc_vload_n(c, w), v);
        irc_vstore_n(c, v, w);
    }
}

/* irc__nn_RxV: C[i0 : i0+R, j : j+V·VW] = A[i0 : i0+R, :] · B[:, j : j+V·VW], then the epilogue. */
#define IRC__ACC_ZERO(r, c) irc_vf acc##r##_##c = irc_vzero();
#define IRC__NN_LOAD_B(r, c) const irc_vf b##c = irc_vload(b + (c) * IRC_VW);
#define IRC__NN_ROW(r, L, F) { const irc_vf a##r = irc_vset1(a[(r) * lda + k]); L(F, r) }
#define IRC__NN_FMA(r, c) acc##r##_##c = irc_vfma(a##r, b##c, acc##r##_##c);
#define IRC__NN_STORE(r, c) irc__small_store(g, i0 + (r), j + (c) * IRC_VW, acc##r##_##c, IRC_VW);
#define IRC__DEFINE_NN(R, V)                                                                  \
    static void irc__nn_##R##x##V(const irc_gemm_args *g, int i0, int j)                      \
    {                                                                                         \
        const ptrdiff_t lda = g->lda, ldb = g->ldb;                                           \
        const float *a = g->A + (ptrdiff_t)i0 * lda, *b = g->B + j;                           \
        IRC__ROWS_##R(IRC__EACH, IRC__COLS_##V, IRC__ACC_ZERO)                                \
        for (int k = 0; k < g->K; k++, b += ldb) {                                            \
            IRC__COLS_##V(IRC__NN_LOAD_B, 0)                                                  \
            IRC__ROWS_##R(IRC__NN_ROW, IRC__COLS_##V, IRC__NN_FMA)                            \
        }                                                                                     \
        IRC__ROWS_##R(IRC__EACH, IRC__COLS_##V, IRC__NN_STORE)                                \
        irc__epilogue(g, i0, j, R, (V) * IRC_VW);                                             \
    }
IRC__NN_KERNELS(IRC__DEFINE_NN)

/* The last w < VW columns C[i0 : i0+R, j : j+w]: one partial vector, the same FMA chain. */
static void irc__nn_partial(const irc_gemm_args *g, int i0, int R, int j, int w)
{
    const ptrdiff_t lda = g->lda, ldb = g->ldb;
    const float *a = g->A + (ptrdiff_t)i0 * lda, *b = g->B + j;
    irc_vf acc[4] = {irc_vzero(), irc_vzero(), irc_vzero(), irc_vzero()};
    for (int k = 0; k < g->K; k++, b += ldb) {
        const irc_vf bk = irc_vload_n(b, w);
        for (int r = 0; r < R; r++) acc[r] = irc_vfma(irc_vset1(a[r * lda + k]), bk, acc[r]);
    }
    for (int r = 0; r < R; r++) irc__small_store(g, i0 + r, j, acc[r], w);
    irc__epilogue(g, i0, j, R, w);
}

/* irc__nn_kernel[R-1][log2 V]: the instances above; NULL where a target has none. */
typedef void (*irc__nn_fn)(const irc_gemm_args *, int, int);
#define IRC__LOG2_1 0
#define IRC__LOG2_2 1
#define IRC__LOG2_4 2
#define IRC__LOG2_8 3
#define IRC__NN_ENTRY(R, V) [(R) - 1][IRC__LOG2_##V] = irc__nn_##R##x##V,
static const irc__nn_fn irc__nn_kernel[4][4] = {IRC__NN_KERNELS(IRC__NN_ENTRY)};

/* Rows i : i+R of C[:, n0 : n1]: slabs of the widest V, then at most one each of the
 * narrower ones, then a partial vector. */
static void irc__nn_rows(const irc_gemm_args *g, int i, int R, int n0, int n1)
{
    int j = n0;
    for (int l = 3; l >= 0; l--) {
        const irc__nn_fn f = irc__nn_kernel[R - 1][l];
        const int width = (1 << l) * IRC_VW;
        for (; f && j + width <= n1; j += width) f(g, i, j);
    }
    if (j < n1) irc__nn_partial(g, i, R, j, n1 - j);
}

/* out[0..3] = the horizontal sums of a, b, c, d, reduced together (one shuffle tree for four
 * instead of four). Every input goes through the same tree whichever argument it is. */
static inline void irc__hsum4(irc_vf a, irc_vf b, irc_vf c, irc_vf d, float *out)
{
#if defined(IRC_TARGET_AVX512)
    /* 128-bit quarters: x.q0+x.q2 beside x.q1+x.q3, then their sum; a..d one per quarter */
    const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
    /* within each quarter: (p0 + p2) + (p1 + p3) into its lane 0 */
    x = _mm512_add_ps(x, _mm512_permute_ps(x, _MM_SHUFFLE(1, 0, 3, 2)));
    x = _mm512_add_ps(x, _mm512_permute_ps(x, _MM_SHUFFLE(2, 3, 0, 1)));
    float t[16];
    _mm512_storeu_ps(t, x);
    out[0] = t[0], out[1] = t[4], out[2] = t[8], out[3] = t[12];
#elif defined(IRC_TARGET_AVX2)
    /* halves: [a.lo + a.hi | b.lo + b.hi], then two pairwise adds: [a c a c | b d b d] */
    const __m256 ab = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    const __m256 cd = _mm256_add_ps(_mm256_permute2f128_ps(c, d, 0x20), _mm256_permute2f128_ps(c, d, 0x31));
    __m256 h = _mm256_hadd_ps(ab, cd);
    h = _mm256_hadd_ps(h, h);
    float t[8];
    _mm256_storeu_ps(t, h);
    out[0] = t[0], out[1] = t[4], out[2] = t[1], out[3] = t[5];
#elif defined(IRC_TARGET_NEON)
    vst1q_f32(out, vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d)));
#else
    out[0] = a, out[1] = b, out[2] = c, out[3] = d;
#endif
}

/* irc__nt_RxNB: C[i0 : i0+R, j : j+nb] (nb ≤ NB) = A[i0 : i0+R, :] · B[j : j+nb, :]ᵀ, then
 * the epilogue. Columns past nb repeat the last one (computed, not stored). */
#define IRC__NT_ROW_PTR(r, c) const float *b##c = g->B + (ptrdiff_t)(j + ((c) < nb ? (c) : nb - 1)) * ldb;
#define IRC__NT_LOAD_A(r, L, F) const irc_vf a##r = irc_vload(a + (r) * lda + k);
#define IRC__NT_LOAD_B(r, c) const irc_vf v##c = irc_vload(b##c + k);
#define IRC__NT_LOAD_A_TAIL(r, L, F) const irc_vf a##r = irc_vload_n(a + (r) * lda + k, K - k);
#define IRC__NT_LOAD_B_TAIL(r, c) const irc_vf v##c = irc_vload_n(b##c + k, K - k);
#define IRC__NT_FMA(r, c) acc##r##_##c = irc_vfma(a##r, v##c, acc##r##_##c);
/* Row r's NB sums into s[0 : NB] (NB = 2 reduces its pair twice). */
#define IRC__NT_SUMS_2(r) irc__hsum4(acc##r##_0, acc##r##_1, acc##r##_0, acc##r##_1, s);
#define IRC__NT_SUMS_4(r) irc__hsum4(acc##r##_0, acc##r##_1, acc##r##_2, acc##r##_3, s);
#define IRC__NT_SUMS_8(r) IRC__NT_SUMS_4(r) irc__hsum4(acc##r##_4, acc##r##_5, acc##r##_6, acc##r##_7, s + 4);
#define IRC__NT_STORE(r, L, SUMS)                                                             \
    {                                                                                         \
        float s[8];                                                                           \
        SUMS(r)                                                                               \
        const ptrdiff_t i = (ptrdiff_t)(i0 + (r)) * g->ldc + j;                               \
        for (int c = 0; c < nb; c++)                                                          \
            g->C[i + c] = g->accumulate ? g->C[i + c] + s[c] : s[c];                             \
    }
#define IRC__DEFINE_NT(R, NB)                                                                 \
    static void irc__nt_##R##x##NB(const irc_gemm_args *g, int i0, int j, int nb)             \
    {                                                                                         \
        const ptrdiff_t lda = g->lda, ldb = g->ldb;                                           \
        const int K = g->K;                                                                   \
        const float *a = g->A + (ptrdiff_t)i0 * lda;                                          \
        IRC__COLS_##NB(IRC__NT_ROW_PTR, 0)                                                    \
        IRC__ROWS_##R(IRC__EACH, IRC__COLS_##NB, IRC__ACC_ZERO)                               \
        int k = 0;                                                                            \
        for (; k + IRC_VW <= K; k += IRC_VW) {                                                \
            IRC__ROWS_##R(IRC__NT_LOAD_A, 0, 0)                                               \
            IRC__COLS_##NB(IRC__NT_LOAD_B, 0)                                                 \
            IRC__ROWS_##R(IRC__EACH, IRC__COLS_##NB, IRC__NT_FMA)                             \
        }                                                                                     \
        if (k < K) { /* zero-filled partial loads: 0·0 leaves the sums as they are */        \
            IRC__ROWS_##R(IRC__NT_LOAD_A_TAIL, 0, 0)                                          \
            IRC__COLS_##NB(IRC__NT_LOAD_B_TAIL, 0)                                            \
            IRC__ROWS_##R(IRC__EACH, IRC__COLS_##NB, IRC__NT_FMA)                             \
        }                                                                                     \
        IRC__ROWS_##R(IRC__NT_STORE, 0, IRC__NT_SUMS_##NB)                                    \
        irc__epilogue(g, i0, j, R, nb);                                                       \
    }
IRC__NT_KERNELS(IRC__DEFINE_NT)

/* irc__nt_kernel[R-1]: the instance for R rows and its NB. */
typedef struct { void (*fn)(const irc_gemm_args *, int, int, int); int nb; } irc__nt_kernel_t;
#define IRC__NT_ENTRY(R, NB) [(R) - 1] = {irc__nt_##R##x##NB, NB},
static const irc__nt_kernel_t irc__nt_kernel[4] = {IRC__NT_KERNELS(IRC__NT_ENTRY)};

/* Rows i : i+R of C[:, n0 : n1], NB columns at a time. */
static void irc__nt_rows(const irc_gemm_args *g, int i, int R, int n0, int n1)
{
    const irc__nt_kernel_t kn = irc__nt_kernel[R - 1];
    for (int j = n0; j < n1; j += kn.nb) kn.fn(g, i, j, n1 - j < kn.nb ? n1 - j : kn.nb);
}

/* All M rows of C[:, n0 : n1] by one thread, in row groups of up to 4. */
static void irc__small_part(const irc_gemm_args *g, int n0, int n1)
{
    for (int i = 0; i < g->M; i += 4) {
        const int R = g->M - i < 4 ? g->M - i : 4;
        if (g->trans_b) irc__nt_rows(g, i, R, n0, n1);
        else irc__nn_rows(g, i, R, n0, n1);
    }
}

/* Does irc_gemm take the small-M path? */
static int irc__small_m(const irc_gemm_args *g)
{
    return !g->trans_a && g->M <= (g->trans_b ? IRC_SMALL_M_NT : IRC_SMALL_M_NN);
}

/* Threads for the small-M path: one below IRC_SMALL_PAR_BYTES of B (the same result either way). */
static int irc__small_threads(const irc_gemm_args *g)
{
    return 4.0 * g->K * g->N < IRC_SMALL_PAR_BYTES || g->threads < 1 ? 1 : g->threads;
}

/* The small-M path on nt threads: contiguous ranges of whole vectors of columns (trans_b = 0)
 * or whole NB-column blocks (trans_b = 1). */
static void irc__gemm_small(const irc_gemm_args *g, int nt)
{
    const int N = g->N;
    const int unit = g->trans_b ? irc__nt_kernel[(g->M < 4 ? g->M : 4) - 1].nb : IRC_VW;
    const int units = (N + unit - 1) / unit;
    if (nt > units) nt = units;
    (void)nt; /* unused without -fopenmp */

    IRC_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        int tid = 0, T = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        T = omp_get_num_threads();
#endif
        int n0 = (int)((long long)units * tid / T) * unit, n1 = (int)((long long)units * (tid + 1) / T) * unit;
        if (n1 > N) n1 = N;
        if (n0 < n1) irc__small_part(g, n0, n1);
    }
}

static void irc_gemm(const irc_gemm_args *g)
{
    const int M = g->M, N = g->N, K = g->K;
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* op(A)op(B) = 0: C = act(bias), or C unchanged when accumulating */
        if (g->accumulate) return;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                g->C[(ptrdiff_t)i * g->ldc + j] = 0.0f;
        irc__epilogue(g, 0, 0, M, N);
        return;
    }
    if (irc__small_m(g)) irc__gemm_small(g, irc__small_threads(g));
    else irc__gemm_packed(g, &irc__f32);
}

#endif /* IRC_GEMM_H */
