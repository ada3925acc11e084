/* irc_gemm.h — header-only fp32 GEMM with a fused epilogue, BLIS-style.
 *
 *   C = act( add + op(A) op(B) + bias )      (pre = the value before act, if requested)
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
 * tiles) when M has enough of them, else over N (NR-column panels; M = 1 decode). Each
 * thread runs the loops above on its range with its own packing buffers, so the parallel
 * region has no barrier and a preempted thread (a busy machine) delays only its own range.
 *
 * Determinism: every C element is ((src + Σ_{k in block 0}) + Σ_{k in block 1}) + ... with
 * src = add, C (accumulate) or 0; KC is a constant and tiles start at multiples of MR/NR
 * whatever the split, each tile is computed by one thread with the same code, and the
 * epilogue (bias, pre, act) runs on a tile after its last K block. So the output is
 * bit-identical for any thread count.
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
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenMP pragmas that vanish (without an unknown-pragma warning) when built without -fopenmp. */
#ifdef _OPENMP
#define IRC_OMP(directive) _Pragma(#directive)
#else
#define IRC_OMP(directive)
#endif

typedef enum { IRC_ACT_NONE = 0, IRC_ACT_GELU_TANH = 1 } irc_act;

typedef struct {
    int M, N, K;
    const float *A; int lda; int trans_a;  /* op(A) is M×K; trans_a=0: A is M×K row-major (lda ≥ K); 1: A is K×M row-major (lda ≥ M) */
    const float *B; int ldb; int trans_b;  /* op(B) is K×N; trans_b=0: B is K×N row-major (ldb ≥ N); 1: B is N×K row-major (ldb ≥ K) */
    float *C; int ldc;                      /* M×N row-major */
    int accumulate;         /* 0: C = result; 1: C += op(A)op(B) (bias/act/add not allowed with 1) */
    const float *bias;      /* NULL or [N], added to every row */
    const float *add;       /* NULL or M×N with leading dim ldc: residual added (C = add + AB + bias); may alias C */
    float *pre;             /* NULL or M×N (ldc): stores AB+bias+add before the activation (needed by backward) */
    irc_act act;            /* activation applied last: GELU tanh approximation 0.5x(1+tanh(√(2/π)(x+0.044715x³))) */
    int threads;            /* ≥1; OpenMP threads used */
    float *work;            /* workspace of at least irc_gemm_work_floats(threads) floats, 64-byte aligned */
} irc_gemm_args;

/* ---- per-target tile and block sizes ---------------------------------------------------
 * NR is always two vectors. KC·NR·4 bytes (the B micro-panel) must sit in L1 next to an
 * A micro-panel; MC·KC·4 (the A block) fits in L2; KC·NC·4 (the B block) in L3.
 * MC, NC are multiples of MR, NR. */
#define IRC_NR (2 * IRC_VW)
#if defined(IRC_TARGET_AVX512)
#define IRC_MR 12            /* 24 zmm accumulators + 2 B vectors + 1 broadcast of 32 */
#define IRC_KC 192  /* B micro-panel 192·NR·4 B: half of a 48 KiB L1 or less */
#define IRC_MC 240
#define IRC_NC 3072
#define IRC_GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#elif defined(IRC_TARGET_AVX2)
#define IRC_MR 6             /* 12 ymm accumulators + 2 B vectors + 1 broadcast of 16 */
#define IRC_KC 192  /* B micro-panel 192·NR·4 B: half of a 48 KiB L1 or less */
#define IRC_MC 144
#define IRC_NC 3072
#define IRC_GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#elif defined(IRC_TARGET_NEON)
#define IRC_MR 8             /* 16 q accumulators + 2 B vectors + 1 broadcast of 32 */
#define IRC_KC 256
#define IRC_MC 128
#define IRC_NC 2048
#define IRC_GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#else
#define IRC_MR 4             /* 4×2 tile of plain floats */
#define IRC_KC 256
#define IRC_MC 64
#define IRC_NC 1024
#define IRC_GEMM_ROWS(X) X(0) X(1) X(2) X(3)
#endif

/* Each thread packs into its own B block (KC×NC) and A block (MC×KC): no barriers. */
#define IRC_WORK_PER_THREAD ((size_t)IRC_KC * IRC_NC + (size_t)IRC_MC * IRC_KC)

static size_t irc_gemm_work_floats(int threads)
{
    return (size_t)(threads > 1 ? threads : 1) * IRC_WORK_PER_THREAD;
}

/* ---- microkernel ------------------------------------------------------------------------
 * c[MR×NR] (row stride ldc) = src[MR×NR] (stride lds; NULL means 0) + Σ_k pa[k,:]ᵀ pb[k,:]
 * pa: [kc][MR] packed A micro-panel; pb: kc rows of NR floats, row stride sb (NR when
 * packed, ldb when B is read in place). src may alias c. */
static void irc__ukernel(int kc, const float *restrict pa, const float *restrict pb, ptrdiff_t sb,
                         float *c, ptrdiff_t ldc, const float *src, ptrdiff_t lds)
{
#define IRC__DECL(i) irc_vf c##i##a = irc_vzero(), c##i##b = irc_vzero();
#define IRC__FMA(i)                                   \
    {                                                 \
        irc_vf a = irc_vset1(pa[i]);                  \
        c##i##a = irc_vfma(a, b0, c##i##a);           \
        c##i##b = irc_vfma(a, b1, c##i##b);           \
    }
#define IRC__ADD(i)                                                                \
    c##i##a = irc_vadd(irc_vload(src + (i) * lds), c##i##a);                       \
    c##i##b = irc_vadd(irc_vload(src + (i) * lds + IRC_VW), c##i##b);
#define IRC__STORE(i)                                  \
    irc_vstore(c + (i) * ldc, c##i##a);                \
    irc_vstore(c + (i) * ldc + IRC_VW, c##i##b);

    IRC_GEMM_ROWS(IRC__DECL)
    for (int k = 0; k < kc; k++) {
        irc_vf b0 = irc_vload(pb), b1 = irc_vload(pb + IRC_VW);
        IRC_GEMM_ROWS(IRC__FMA)
        pa += IRC_MR;
        pb += sb;
    }
    if (src) { IRC_GEMM_ROWS(IRC__ADD) }
    IRC_GEMM_ROWS(IRC__STORE)

#undef IRC__DECL
#undef IRC__FMA
#undef IRC__ADD
#undef IRC__STORE
}

/* ---- packing ------------------------------------------------------------------------- */

/* dst[kc][MR] = op(A)[i0 : i0+mr, p0 : p0+kc], rows mr..MR-1 zero. */
static void irc__pack_a(const irc_gemm_args *g, int i0, int mr, int p0, int kc, float *restrict dst)
{
    const float *A = g->A;
    const ptrdiff_t lda = g->lda;
    if (g->trans_a) {
        for (int k = 0; k < kc; k++) {
            const float *s = A + (ptrdiff_t)(p0 + k) * lda + i0;
            float *d = dst + (ptrdiff_t)k * IRC_MR;
            for (int i = 0; i < mr; i++) d[i] = s[i];
            for (int i = mr; i < IRC_MR; i++) d[i] = 0.0f;
        }
    } else {
        for (int i = 0; i < mr; i++) {
            const float *s = A + (ptrdiff_t)(i0 + i) * lda + p0;
            for (int k = 0; k < kc; k++) dst[(ptrdiff_t)k * IRC_MR + i] = s[k];
        }
        for (int i = mr; i < IRC_MR; i++)
            for (int k = 0; k < kc; k++) dst[(ptrdiff_t)k * IRC_MR + i] = 0.0f;
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

/* ---- epilogue ------------------------------------------------------------------------ */

static inline irc_vf irc__gelu_tanh(irc_vf x)
{
    const float s = 0.7978845608028654f; /* √(2/π) */
    irc_vf x2 = irc_vmul(x, x);
    irc_vf u = irc_vmul(x, irc_vfma(irc_vset1(s * 0.044715f), x2, irc_vset1(s)));
    irc_vf h = irc_vmul(irc_vset1(0.5f), x);
    return irc_vfma(h, irc_vtanh(u), h);
}

/* C[i0:i0+m, j0:j0+n] holds add + AB; apply bias, save pre, apply act. */
static void irc__epilogue(const irc_gemm_args *g, int i0, int j0, int m, int n)
{
    if (!g->bias && !g->pre && g->act == IRC_ACT_NONE) return;
    const ptrdiff_t ldc = g->ldc;
    for (int i = i0; i < i0 + m; i++) {
        float *c = g->C + i * ldc;
        float *pre = g->pre ? g->pre + i * ldc : NULL;
        for (int j = j0; j < j0 + n; j += IRC_VW) {
            int w = j0 + n - j < IRC_VW ? j0 + n - j : IRC_VW;
            irc_vf v = w == IRC_VW ? irc_vload(c + j) : irc_vload_n(c + j, w);
            if (g->bias) v = irc_vadd(v, w == IRC_VW ? irc_vload(g->bias + j) : irc_vload_n(g->bias + j, w));
            if (pre) {
                if (w == IRC_VW) irc_vstore(pre + j, v); else irc_vstore_n(pre + j, v, w);
            }
            if (g->act == IRC_ACT_GELU_TANH) v = irc__gelu_tanh(v);
            if (w == IRC_VW) irc_vstore(c + j, v); else irc_vstore_n(c + j, v, w);
        }
    }
}

/* ---- one MR×NR tile of one K block --------------------------------------------------- */
static void irc__tile(const irc_gemm_args *g, int kc, const float *pa, const float *pb, ptrdiff_t sb,
                      int i0, int j0, int mr, int nr, int first, int last)
{
    const ptrdiff_t ldc = g->ldc;
    float *c = g->C + i0 * ldc + j0;
    /* First K block starts from add (or old C when accumulating); later ones from C. */
    const float *src = c;
    if (first && !g->accumulate) src = g->add ? g->add + i0 * ldc + j0 : NULL;

    if (mr == IRC_MR && nr == IRC_NR) {
        irc__ukernel(kc, pa, pb, sb, c, ldc, src, ldc);
    } else {
        float buf[IRC_MR * IRC_NR];
        irc__ukernel(kc, pa, pb, sb, buf, IRC_NR, NULL, 0);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
                c[i * ldc + j] = src ? src[i * ldc + j] + buf[i * IRC_NR + j] : buf[i * IRC_NR + j];
    }
    if (last) irc__epilogue(g, i0, j0, mr, nr);
}

/* All tiles of C[m0:m1, n0:n1] (m0, n0 multiples of MR, NR) by one thread.
 * bpack: [NC/NR][KC][NR], apack: [MC/MR][KC][MR], both private to the thread. */
static void irc__gemm_part(const irc_gemm_args *g, int m0, int m1, int n0, int n1,
                           float *bpack, float *apack)
{
    const int K = g->K;
    /* One A tile: each B panel is used once, so read full panels of a row-major B in place.
     * Not for SCALAR: gcc 12 -O2 SLP-vectorizes its kernel with a load that runs one B row
     * past the panel (harmless inside `work`, a fault past the caller's B). */
    const int b_in_place = IRC_VW > 1 && !g->trans_b && g->M <= IRC_MR;

    for (int jc = n0; jc < n1; jc += IRC_NC) {
        const int nc = n1 - jc < IRC_NC ? n1 - jc : IRC_NC;
        const int np = (nc + IRC_NR - 1) / IRC_NR;
        for (int pc = 0; pc < K; pc += IRC_KC) {
            const int kc = K - pc < IRC_KC ? K - pc : IRC_KC;
            const int first = pc == 0, last = pc + kc == K;
            for (int jp = 0; jp < np; jp++) {
                const int nr = nc - jp * IRC_NR < IRC_NR ? nc - jp * IRC_NR : IRC_NR;
                if (!(b_in_place && nr == IRC_NR))
                    irc__pack_b(g, jc + jp * IRC_NR, nr, pc, kc, bpack + (ptrdiff_t)jp * IRC_KC * IRC_NR);
            }
            for (int ic = m0; ic < m1; ic += IRC_MC) {
                const int mc = m1 - ic < IRC_MC ? m1 - ic : IRC_MC;
                const int mp = (mc + IRC_MR - 1) / IRC_MR;
                for (int ip = 0; ip < mp; ip++) {
                    const int mr = mc - ip * IRC_MR < IRC_MR ? mc - ip * IRC_MR : IRC_MR;
                    irc__pack_a(g, ic + ip * IRC_MR, mr, pc, kc, apack + (ptrdiff_t)ip * IRC_KC * IRC_MR);
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
                        irc__tile(g, kc, apack + (ptrdiff_t)ip * IRC_KC * IRC_MR, pb, sb,
                                  ic + ip * IRC_MR, j0, mr, nr, first, last);
                    }
                }
            }
        }
    }
}

static void irc_gemm(const irc_gemm_args *g)
{
    const int M = g->M, N = g->N, K = g->K;
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* op(A)op(B) = 0: C = act(add + bias), or C unchanged when accumulating */
        if (g->accumulate) return;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                g->C[(ptrdiff_t)i * g->ldc + j] = g->add ? g->add[(ptrdiff_t)i * g->ldc + j] : 0.0f;
        irc__epilogue(g, 0, 0, M, N);
        return;
    }
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
        /* Split whole tiles: over M when there are enough MR-row tiles to go round,
         * otherwise over NR-column panels (small M, e.g. decode). */
        const int mt = (M + IRC_MR - 1) / IRC_MR, ntl = (N + IRC_NR - 1) / IRC_NR;
        if (mt >= 4 * T || mt >= ntl) {
            int m0 = (int)((long long)mt * tid / T) * IRC_MR, m1 = (int)((long long)mt * (tid + 1) / T) * IRC_MR;
            if (m1 > M) m1 = M;
            if (m0 < m1) irc__gemm_part(g, m0, m1, 0, N, bpack, apack);
        } else {
            int n0 = (int)((long long)ntl * tid / T) * IRC_NR, n1 = (int)((long long)ntl * (tid + 1) / T) * IRC_NR;
            if (n1 > N) n1 = N;
            if (n0 < n1) irc__gemm_part(g, 0, M, n0, n1, bpack, apack);
        }
    }
}

#endif /* IRC_GEMM_H */
