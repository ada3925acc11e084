/* bench_gemm.c — what `irc bench` runs for its FMA-peak and sgemm rows.
 *
 * `irc bench` writes bench_shapes.h (the GEMM calls of the compiled training programs, as
 * codegen::GemmShape describes them, and the 1024³ squares) beside the runtime headers and
 * compiles this file with the flags and cache macros a model of the same target gets, so
 * irc_gemm here is the code, blocking and epilogue an emitted model runs:
 *
 *   bench_gemm THREADS SECONDS
 *
 * prints `peak T GFLOP/s` for 1 thread, THREADS and every core (irc_profile.h's measurement,
 * the one `irc profile` and benches/gemm.sh use), then `gemm I GFLOP/s` for each shape I of
 * the table on THREADS threads: the best call of at least 3 (a batched shape's call is its
 * loop of `batch` irc_gemm calls, as templates/kernels/gemm_batched.c.tera emits it), after
 * one warm-up call, calls repeated for about SECONDS. `irc bench` runs it once a round,
 * interleaved with numpy's runs, and takes medians over the rounds.
 */
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "irc_gemm.h"
#include "irc_profile.h"
/* -D IRC_BENCH_BF16 (with IRC_BF16_NATIVE 0 or 1): the same calls through irc_gemm_bf16. */
#ifdef IRC_BENCH_BF16
#include "irc_gemm_bf16.h"
#define BENCH_GEMM irc_gemm_bf16
#else
#define BENCH_GEMM irc_gemm
#endif

typedef struct {
    int batch, M, N, K, trans_a, trans_b, b_batched, accumulate, bias, pre;
    irc_act act;
} bench_shape;

#include "bench_shapes.h" /* static const bench_shape SHAPES[] = { ... }; */

static float *fill(size_t n, unsigned seed)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)(((i + seed) * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return p;
}

/* One kernel run of shape s: as the emitted kernel calls irc_gemm. */
static void run(const bench_shape *s, irc_gemm_args g, const float *A, const float *B, float *C, float *pre)
{
    for (int b = 0; b < s->batch; b++) {
        g.A = A + (size_t)b * s->M * s->K;
        g.B = s->b_batched ? B + (size_t)b * s->K * s->N : B;
        g.C = C + (size_t)b * s->M * s->N;
        g.pre = pre ? pre + (size_t)b * s->M * s->N : NULL;
        BENCH_GEMM(&g);
    }
}

static double gflops(const bench_shape *s, int threads, double seconds, float *work)
{
    const size_t a = (size_t)s->batch * s->M * s->K, c = (size_t)s->batch * s->M * s->N;
    const size_t b = (size_t)(s->b_batched ? s->batch : 1) * s->K * s->N;
    float *A = fill(a, 1), *B = fill(b, 2), *C = fill(c, 3), *bias = fill((size_t)s->N, 4);
    float *pre = s->pre ? fill(c, 5) : NULL;
    irc_gemm_args g = {0};
    g.M = s->M; g.N = s->N; g.K = s->K;
    g.lda = s->trans_a ? s->M : s->K; g.trans_a = s->trans_a;
    g.ldb = s->trans_b ? s->K : s->N; g.trans_b = s->trans_b;
    g.ldc = s->N;
    g.accumulate = s->accumulate;
    g.bias = s->bias ? bias : NULL;
    g.act = s->act;
    g.threads = threads;
    g.work = work;
    run(s, g, A, B, C, pre); /* warm-up: first touch, caches */
    double best = 1e30, total = 0.0;
    for (int rep = 0; rep < 1000 && (rep < 3 || total < seconds); rep++) {
        const double t0 = irc_seconds();
        run(s, g, A, B, C, pre);
        const double t = irc_seconds() - t0;
        total += t;
        if (t < best) best = t;
    }
    free(A); free(B); free(C); free(bias); free(pre);
    return 2.0 * s->batch * (double)s->M * s->N * s->K / best * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_gemm THREADS SECONDS\n");
        return 2;
    }
    const int threads = atoi(argv[1]);
    const double seconds = atof(argv[2]);
#ifdef _OPENMP
    const int cores = omp_get_num_procs();
#else
    const int cores = 1;
#endif
    /* the peak of 1 thread, of THREADS and of every core */
    printf("peak 1 %.3f\n", irc_fma_peak_gflops(1));
    if (threads != 1) printf("peak %d %.3f\n", threads, irc_fma_peak_gflops(threads));
    if (cores != 1 && cores != threads) printf("peak %d %.3f\n", cores, irc_fma_peak_gflops(cores));
    fflush(stdout);
    float *work = aligned_alloc(64, (irc_gemm_work_floats(threads) * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        printf("gemm %zu %.3f\n", i, gflops(&SHAPES[i], threads, seconds, work));
        fflush(stdout);
    }
    free(work);
    return 0;
}
