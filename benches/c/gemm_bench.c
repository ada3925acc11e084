/* gemm_bench.c — irc_gemm throughput against the machine's measured fp32 FMA peak.
 *
 * Build (benches/gemm.sh does this for the best target of the host):
 *   cc -std=c11 -O3 -march=native -fopenmp -D IRC_TARGET_AVX2 -I runtime-c \
 *      benches/c/gemm_bench.c -lm -o gemm_bench
 *
 * (a) peak: independent FMA chains per thread (enough to cover FMA latency × ports),
 *     for 1 thread and for every core.
 * (b) irc_gemm GFLOP/s on 1024³ and transformer-sized shapes with 1 and 2 threads, best
 *     of several runs, and the ratio to the peak for the same thread count.
 * (c) decode shapes (M = 1): a streaming read of a buffer as big as the weights gives the
 *     bandwidth the weights can come at (memory-bound: M = 1 does 2 FLOP per 4-byte weight;
 *     a read of 1 GiB first, for DRAM's); the packed path (irc__gemm_packed, what every GEMM
 *     ran before the small-M path) and irc_gemm side by side, timed in alternation, as
 *     GFLOP/s, weight GB/s, the fraction of that bandwidth, and the speedup.
 * (d) the small-M crossover: the packed and the small-M path (irc__gemm_small) for M = 1..8,
 *     which sets IRC_SMALL_M_NN / _NT.
 * (e) the small-M path on 1 thread vs 2 by the size of B, which sets IRC_SMALL_PAR_BYTES.
 *
 * `gemm_bench decode` runs (a), (c), (d) and (e) only. The machine is shared: compare the
 * columns of one run, not the numbers of two.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "irc_gemm.h"
#include "irc_profile.h"

/* The clock and the FMA peak are the profile builds' (irc_profile.h), so a kernel's
 * fraction of peak means the same in `irc profile` and here. */
#define now irc_seconds
#define peak_gflops irc_fma_peak_gflops

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

/* ---- memory-bound shapes ------------------------------------------------------------- */

/* Sum of p[0:n] read as 4 streams side by side (quarters of the range, two vectors each per
 * step: 8 independent chains), as a GEMM with B transposed streams several rows of B at once;
 * one stream alone leaves DRAM bandwidth unused on many machines. */
static float read_sum(const float *p, size_t n)
{
    const size_t q = n / 4 / (2 * IRC_VW) * (2 * IRC_VW);
    const float *p0 = p, *p1 = p + q, *p2 = p + 2 * q, *p3 = p + 3 * q;
    irc_vf s0 = irc_vzero(), s1 = irc_vzero(), s2 = irc_vzero(), s3 = irc_vzero();
    irc_vf s4 = irc_vzero(), s5 = irc_vzero(), s6 = irc_vzero(), s7 = irc_vzero();
    for (size_t i = 0; i < q; i += 2 * IRC_VW) {
        s0 = irc_vadd(s0, irc_vload(p0 + i));
        s1 = irc_vadd(s1, irc_vload(p0 + i + IRC_VW));
        s2 = irc_vadd(s2, irc_vload(p1 + i));
        s3 = irc_vadd(s3, irc_vload(p1 + i + IRC_VW));
        s4 = irc_vadd(s4, irc_vload(p2 + i));
        s5 = irc_vadd(s5, irc_vload(p2 + i + IRC_VW));
        s6 = irc_vadd(s6, irc_vload(p3 + i));
        s7 = irc_vadd(s7, irc_vload(p3 + i + IRC_VW));
    }
    float r = irc_vhsum(irc_vadd(irc_vadd(irc_vadd(s0, s1), irc_vadd(s2, s3)),
                                 irc_vadd(irc_vadd(s4, s5), irc_vadd(s6, s7))));
    for (size_t i = 4 * q; i < n; i++) r += p[i];
    return r;
}

/* One pass over buf[0:n] split between `threads` threads (contiguous halves, as the GEMM
 * splits its weights). */
static void read_pass(const float *buf, size_t n, int threads, volatile float *sink)
{
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        int tid = 0, T = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        T = omp_get_num_threads();
#endif
        size_t i0 = n * (size_t)tid / (size_t)T / 64 * 64, i1 = tid == T - 1 ? n : n * (size_t)(tid + 1) / (size_t)T / 64 * 64;
        float r = read_sum(buf + i0, i1 - i0);
#ifdef _OPENMP
#pragma omp atomic
#endif
        *sink += r;
    }
}

typedef void (*gemm_fn)(const irc_gemm_args *);

/* Best time of one call of each fn, calls in batches of ≥ ~0.2 ms, the fns alternating batch
 * by batch so a busy moment of the machine hurts all alike. bytes > 0: a streaming read of
 * that many bytes (buf) is timed alongside as one more contender; its best time goes to
 * *t_read. Each timed batch follows one untimed call of the same contender, so each finds
 * its own data as warm as repeated calls leave it (not the cache another contender left). */
static void time_side_by_side(const irc_gemm_args *g, int nfn, gemm_fn const *fn, double *best,
                              const float *buf, size_t bytes, double *t_read)
{
    static volatile float sink;
    const double budget = 0.6; /* seconds per contender */
    double once = 1e30, slowest = 0.0, t0;
    for (int f = 0; f < nfn; f++) { /* the fastest sets the batch size, the slowest the repetitions */
        fn[f](g);
        t0 = now();
        fn[f](g);
        const double t = now() - t0;
        if (t < once) once = t;
        if (t > slowest) slowest = t;
    }
    int batch = once > 2e-4 ? 1 : (int)(2e-4 / (once + 1e-9)) + 1;
    int reps = (int)(budget / (slowest * batch + 1e-9));
    reps = reps < 5 ? 5 : reps > 400 ? 400 : reps;
    for (int f = 0; f < nfn; f++) best[f] = 1e30;
    if (bytes) *t_read = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        for (int f = 0; f < nfn; f++) {
            fn[f](g);
            t0 = now();
            for (int b = 0; b < batch; b++) fn[f](g);
            double t = (now() - t0) / batch;
            if (t < best[f]) best[f] = t;
        }
        if (bytes) {
            read_pass(buf, bytes / sizeof(float), g->threads, &sink);
            t0 = now();
            for (int b = 0; b < batch; b++) read_pass(buf, bytes / sizeof(float), g->threads, &sink);
            double t = (now() - t0) / batch;
            if (t < *t_read) *t_read = t;
        }
    }
}

static void gemm_packed(const irc_gemm_args *g) { irc__gemm_packed(g, &irc__f32); }
static void gemm_small(const irc_gemm_args *g) { irc__gemm_small(g, irc__small_threads(g)); }
static void gemm_small_1t(const irc_gemm_args *g) { irc__gemm_small(g, 1); }
static void gemm_small_2t(const irc_gemm_args *g) { irc__gemm_small(g, 2); }

/* (c): decode shapes, packed path vs irc_gemm, against a streaming read of the weights' size. */
static void decode_shapes(int ncores, const double *peak, float *work)
{
    static const struct { int N, K, tb, bias; irc_act act; const char *what; } shapes[] = {
        {576, 192, 0, 1, IRC_ACT_NONE, "gpt2-small qkv"},
        {768, 192, 0, 1, IRC_ACT_GELU_TANH, "gpt2-small fc +GELU"},
        {192, 768, 0, 1, IRC_ACT_NONE, "gpt2-small fc proj"},
        {2304, 768, 0, 1, IRC_ACT_NONE, "gpt2-124M qkv"},
        {576, 192, 1, 0, IRC_ACT_NONE, "llama-small qkv, B^T"},
        {1024, 768, 1, 0, IRC_ACT_NONE, "lm_head V=1024, B^T"},
        {50257, 768, 1, 0, IRC_ACT_NONE, "lm_head V=50257, B^T"},
    };
    {
        const size_t big = (size_t)1 << 30; /* past any cache: DRAM */
        float *buf = fill(big / sizeof(float));
        static volatile float sink;
        printf("\nstreaming read of 1 GiB (DRAM):");
        for (int t = 1; t <= 2 && t <= ncores; t++) {
            double best = 1e30;
            for (int rep = 0; rep < 3; rep++) {
                double t0 = now();
                read_pass(buf, big / sizeof(float), t, &sink);
                const double dt = now() - t0;
                if (dt < best) best = dt;
            }
            printf(" %.1f GB/s (%d thread%s)", big / best * 1e-9, t, t > 1 ? "s" : "");
        }
        printf("\n");
        free(buf);
    }
    printf("decode, M = 1: weight bytes / time; read = a streaming read of as many bytes, same run\n");
    printf("%-22s %-10s %3s | %-26s | %-33s | %9s | %s\n", "shape", "K x N", "thr", "packed: GFLOP/s GB/s %read",
           "irc_gemm: GFLOP/s GB/s %read %peak", "read GB/s", "speedup");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int N = shapes[s].N, K = shapes[s].K, tb = shapes[s].tb;
        float *A = fill((size_t)K), *B = fill((size_t)K * N), *C = fill((size_t)N), *bias = fill((size_t)N);
        const size_t bytes = (size_t)K * N * sizeof(float);
        float *buf = fill(bytes / sizeof(float));
        irc_gemm_args g = {0};
        g.M = 1; g.N = N; g.K = K;
        g.A = A; g.lda = K;
        g.B = B; g.ldb = tb ? K : N; g.trans_b = tb;
        g.C = C; g.ldc = N;
        g.bias = shapes[s].bias ? bias : NULL;
        g.act = shapes[s].act;
        g.work = work;
        for (int t = 1; t <= 2 && t <= ncores; t++) {
            g.threads = t;
            gemm_fn fns[2] = {gemm_packed, irc_gemm};
            double best[2], tr;
            time_side_by_side(&g, 2, fns, best, buf, bytes, &tr);
            const double flop = 2.0 * K * N, rd = bytes / tr * 1e-9;
            char kn[32];
            snprintf(kn, sizeof kn, "%dx%d", K, N);
            printf("%-22s %-10s %3d | %15.1f %5.1f %4.0f%% | %17.1f %5.1f %4.0f%% %4.1f%% | %9.1f | %5.1fx\n",
                   shapes[s].what, kn, t, flop / best[0] * 1e-9, bytes / best[0] * 1e-9, 100.0 * tr / best[0],
                   flop / best[1] * 1e-9, bytes / best[1] * 1e-9, 100.0 * tr / best[1],
                   100.0 * flop / best[1] * 1e-9 / peak[t], rd, best[0] / best[1]);
        }
        free(A); free(B); free(C); free(bias); free(buf);
    }
}

/* (d): packed vs small-M path for M = 1..8: where the small path stops paying. */
static void crossover(int ncores, float *work)
{
    static const struct { int N, K, tb; } shapes[] = {{576, 192, 0}, {2304, 768, 0}, {1024, 768, 1}, {3072, 768, 1}};
    printf("\nsmall-M crossover: time of the packed path / time of the small-M path (> 1: small wins; irc_gemm "
           "takes the small path for M <= %d, M <= %d with B^T)\n", IRC_SMALL_M_NN, IRC_SMALL_M_NT);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int N = shapes[s].N, K = shapes[s].K, tb = shapes[s].tb;
        for (int t = 1; t <= 2 && t <= ncores; t++) {
            printf("%4dx%-5d %s %d thr:", K, N, tb ? "B^T" : "B  ", t);
            for (int M = 1; M <= 8; M++) {
                float *A = fill((size_t)M * K), *B = fill((size_t)K * N), *C = fill((size_t)M * N);
                irc_gemm_args g = {0};
                g.M = M; g.N = N; g.K = K;
                g.A = A; g.lda = K;
                g.B = B; g.ldb = tb ? K : N; g.trans_b = tb;
                g.C = C; g.ldc = N;
                g.threads = t;
                g.work = work;
                gemm_fn fns[2] = {gemm_packed, gemm_small};
                double best[2];
                time_side_by_side(&g, 2, fns, best, NULL, 0, NULL);
                printf("  M=%d %.2f", M, best[0] / best[1]);
                fflush(stdout);
                free(A); free(B); free(C);
            }
            printf("\n");
        }
    }
}

/* (e): the small-M path on 1 thread vs 2, by the size of B: where a second thread pays. */
static void small_threads(void)
{
    static const struct { int K, N, tb; } shapes[] = {{64, 256, 0}, {128, 256, 0}, {192, 384, 0}, {192, 576, 0},
                                                       {192, 768, 0}, {384, 768, 0}, {768, 768, 0}, {768, 2304, 0},
                                                       {192, 256, 1}, {192, 512, 1}, {192, 1024, 1}, {768, 1024, 1}};
    printf("\nsmall-M threads, M = 1: time on 1 thread / time on 2 (> 1: the second thread pays; irc_gemm "
           "forks from %d KiB of B)\n", IRC_SMALL_PAR_BYTES / 1024);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int N = shapes[s].N, K = shapes[s].K, tb = shapes[s].tb;
        float *A = fill((size_t)K), *B = fill((size_t)K * N), *C = fill((size_t)N);
        irc_gemm_args g = {0};
        g.M = 1; g.N = N; g.K = K;
        g.A = A; g.lda = K;
        g.B = B; g.ldb = tb ? K : N; g.trans_b = tb;
        g.C = C; g.ldc = N;
        gemm_fn fns[2] = {gemm_small_1t, gemm_small_2t};
        double best[2];
        time_side_by_side(&g, 2, fns, best, NULL, 0, NULL);
        printf("  %4dx%-5d %s %5.0f KiB: %.2f  (%.1f us vs %.1f us)\n", K, N, tb ? "B^T" : "B  ",
               4.0 * K * N / 1024, best[0] / best[1], best[0] * 1e6, best[1] * 1e6);
        free(A); free(B); free(C);
    }
}

int main(int argc, char **argv)
{
    /* "decode": only (c) and (d) */
    const int decode_only = argc > 1 && strcmp(argv[1], "decode") == 0;
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
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] && !decode_only; s++) {
        for (int t = 1; t <= 2 && t <= ncores; t++) {
            double gf = gemm_gflops(shapes[s].M, shapes[s].N, shapes[s].K, shapes[s].tb, t, work);
            printf("gemm %4dx%4dx%4d %-24s %d thread%s: %7.1f GFLOP/s  (%4.1f%% of peak)\n", shapes[s].M,
                   shapes[s].N, shapes[s].K, shapes[s].what, t, t > 1 ? "s" : " ", gf, 100.0 * gf / peak[t]);
        }
    }
    decode_shapes(ncores, peak, work);
    crossover(ncores, work);
    if (ncores >= 2) small_threads();
    free(work);
    return 0;
}
