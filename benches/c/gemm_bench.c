/* gemm_bench.c — irc_gemm throughput against the machine's measured fp32 FMA peak.
 *
 * Build (benches/gemm.sh does this for the best target of the host):
 *   cc -std=c11 -O3 -march=native -fopenmp -D IRC_TARGET_AVX2 -I runtime-c \
 *      benches/c/gemm_bench.c -lm -o gemm_bench
 *
 * (a) peak: NACC independent FMA chains per thread (enough to cover FMA latency × ports),
 *     for 1 thread and for every core.
 * (b) irc_gemm GFLOP/s on 1024³ and transformer-sized shapes with 1 and 2 threads, best
 *     of several runs, and the ratio to the peak for the same thread count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "irc_gemm.h"

static double now(void)
{
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#if defined(IRC_TARGET_AVX2)
#define NACC 12 /* 16 ymm registers: 12 chains + 2 operands */
#define ACCS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#elif defined(IRC_TARGET_SCALAR)
#define NACC 8
#define ACCS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#else /* 32 vector registers */
#define NACC 24
#define ACCS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
                X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
#endif

/* One thread's FMA chains; returns a value so the work cannot be discarded. */
static float fma_chains(long iters, float m, float c)
{
#define DECL(i) irc_vf a##i = irc_vset1((float)(i));
#define STEP(i) a##i = irc_vfma(a##i, vm, vc);
#define SUM(i) s = irc_vadd(s, a##i);
    irc_vf vm = irc_vset1(m), vc = irc_vset1(c), s = irc_vzero();
    ACCS(DECL)
    for (long i = 0; i < iters; i++) { ACCS(STEP) }
    ACCS(SUM)
    return irc_vhsum(s);
#undef DECL
#undef STEP
#undef SUM
}

/* Peak GFLOP/s of `threads` threads each running fma_chains. */
static double peak_gflops(int threads)
{
    const long iters = 50000000 / IRC_VW + 1000000;
    volatile float m = 0.999999f, c = 1e-6f, sink = 0.0f;
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
        {
            float r = fma_chains(iters, m, c);
#ifdef _OPENMP
#pragma omp atomic
#endif
            sink += r;
        }
        double gf = 2.0 * NACC * IRC_VW * (double)iters * threads / (now() - t0) * 1e-9;
        if (gf > best) best = gf;
    }
    (void)sink;
    return best;
}

static float *fill(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return p;
}

/* Best-of GFLOP/s of C = op(A) op(B) for one shape and thread count. */
static double gemm_gflops(int M, int N, int K, int trans_b, int threads, float *work)
{
    float *A = fill((size_t)M * K), *B = fill((size_t)K * N), *C = fill((size_t)M * N);
    irc_gemm_args g = {0};
    g.M = M; g.N = N; g.K = K;
    g.A = A; g.lda = K;
    g.B = B; g.ldb = trans_b ? K : N; g.trans_b = trans_b;
    g.C = C; g.ldc = N;
    g.threads = threads;
    g.work = work;
    const double flop = 2.0 * M * N * K;
    irc_gemm(&g); /* warm-up */
    double best = 1e30, total = 0.0;
    for (int rep = 0; rep < 200 && (rep < 5 || total < 1.0); rep++) {
        double t0 = now();
        irc_gemm(&g);
        double t = now() - t0;
        total += t;
        if (t < best) best = t;
    }
    free(A); free(B); free(C);
    return flop / best * 1e-9;
}

int main(void)
{
#if defined(IRC_TARGET_AVX512)
    const char *target = "AVX512";
#elif defined(IRC_TARGET_AVX2)
    const char *target = "AVX2";
#elif defined(IRC_TARGET_NEON)
    const char *target = "NEON";
#else
    const char *target = "SCALAR";
#endif
#ifdef _OPENMP
    const int ncores = omp_get_num_procs();
#else
    const int ncores = 1;
#endif
    printf("target %s: MR=%d NR=%d KC=%d MC=%d NC=%d, %d cores\n", target, IRC_MR, IRC_NR, IRC_KC, IRC_MC,
           IRC_NC, ncores);

    double peak[3] = {0.0, peak_gflops(1), ncores >= 2 ? peak_gflops(2) : 0.0};
    printf("peak fp32 FMA: %.1f GFLOP/s (1 thread)", peak[1]);
    if (ncores >= 2) printf(", %.1f GFLOP/s (2 threads)", peak[2]);
    if (ncores > 2) printf(", %.1f GFLOP/s (%d threads)", peak_gflops(ncores), ncores);
    printf("\n");

    float *work = aligned_alloc(64, (irc_gemm_work_floats(2) * sizeof(float) + 63) / 64 * 64);
    static const struct { int M, N, K, tb; const char *what; } shapes[] = {
        {1024, 1024, 1024, 0, "square"},
        {1024, 1024, 1024, 1, "square, B transposed"},
        {256, 2304, 768, 0, "qkv projection"},
        {256, 3072, 768, 0, "ffn up"},
        {256, 768, 3072, 0, "ffn down"},
        {256, 768, 3072, 1, "ffn down, B transposed"},
        {1, 3072, 768, 0, "decode ffn up"},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int t = 1; t <= 2 && t <= ncores; t++) {
            double gf = gemm_gflops(shapes[s].M, shapes[s].N, shapes[s].K, shapes[s].tb, t, work);
            printf("gemm %4dx%4dx%4d %-24s %d thread%s: %7.1f GFLOP/s  (%4.1f%% of peak)\n", shapes[s].M,
                   shapes[s].N, shapes[s].K, shapes[s].what, t, t > 1 ? "s" : " ", gf, 100.0 * gf / peak[t]);
        }
    }
    free(work);
    return 0;
}
