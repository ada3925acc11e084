/* gemm_bf16_test.c — checks runtime-c/irc_gemm_bf16.h.
 *
 * Build with one target macro, e.g.
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -fopenmp -D IRC_TARGET_AVX512 -mavx512f ... \
 *      -I runtime-c tests/c/gemm_bf16_test.c -lm -o gemm_bf16_test
 *
 * 1. irc_bf16_round on ties, NaN, infinities, denormals and the largest finite values.
 * 2. irc_gemm_bf16 (the emulated format, and the native one where the path and the CPU have
 *    it) against a double-precision sum of the rounded operands, over odd shapes with K ≤ 32
 *    and beyond, every transpose, accumulate, bias + pre + GELU; relative error ≤ 1e-5 of
 *    Σ|a||b| per element, as f32 sums of exact products allow.
 * 3. Native and emulated bit-identical on every shape, and each bit-identical for 1, 2 and
 *    3 threads.
 * Last line: "gemm_bf16_test: P passed, F failed [native: yes|no]"; non-zero exit on failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irc_gemm_bf16.h"

static int n_pass, n_fail;

static void check(int ok, const char *what)
{
    if (ok) n_pass++;
    else { n_fail++; printf("FAIL: %s\n", what); }
}

static unsigned long long rng_state = 0x2545F4914F6CDD1Dull;
static double rnd(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static uint32_t bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float from_bits(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

static void test_round(void)
{
    static const struct { uint32_t in, out; } cases[] = {
        {0x3f800000u, 0x3f800000u}, /* 1 */
        {0x3f808000u, 0x3f800000u}, /* tie, even below */
        {0x3f818000u, 0x3f820000u}, /* tie, even above */
        {0x3f808001u, 0x3f810000u}, /* above the tie */
        {0xbf807fffu, 0xbf800000u}, /* below the tie, negative */
        {0x7f7fffffu, 0x7f800000u}, /* largest finite rounds to +inf */
        {0x7f7f7fffu, 0x7f7f0000u}, /* largest bf16 stays */
        {0x7f800000u, 0x7f800000u}, /* +inf */
        {0xff800000u, 0xff800000u}, /* -inf */
        {0x7f800001u, 0x7fc00000u}, /* signalling NaN made quiet, not inf */
        {0xffc12345u, 0xffc10000u}, /* quiet NaN keeps its sign and top payload */
        {0x00000001u, 0x00000000u}, /* denormals become zeros of their sign */
        {0x807fffffu, 0x80000000u},
        {0x00800000u, 0x00800000u}, /* smallest normal stays */
        {0x80000000u, 0x80000000u}, /* -0 */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint32_t got = bits(irc_bf16_round(from_bits(cases[i].in)));
        if (got != cases[i].out) {
            printf("  round %08x: got %08x, want %08x\n", cases[i].in, got, cases[i].out);
            ok = 0;
        }
    }
    /* the vector rounding of the packing (16 lanes on AVX-512) against the scalar one */
    float v[37];
    for (int i = 0; i < 37; i++) v[i] = from_bits((uint32_t)(rnd() * 2147483647.0) * 2u + (uint32_t)i);
    float w[37];
    memcpy(w, v, sizeof v);
    irc__bf16_round_n(w, 37);
    for (int i = 0; i < 37; i++)
        if (bits(w[i]) != bits(irc_bf16_round(v[i]))) ok = 0;
    check(ok, "irc_bf16_round");
}

typedef struct { int M, N, K, ta, tb, acc, epi; } shape;

/* Runs one shape in format f on `threads`; returns C (and pre) in c / pre. */
static void run(const shape *s, const irc__gemm_format *f, int threads, const float *A, const float *B,
                const float *bias, const float *c0, float *c, float *pre, float *work)
{
    memcpy(c, c0, sizeof(float) * s->M * s->N);
    irc_gemm_args g = {
        .M = s->M, .N = s->N, .K = s->K,
        .A = A, .lda = s->ta ? s->M : s->K, .trans_a = s->ta,
        .B = B, .ldb = s->tb ? s->K : s->N, .trans_b = s->tb,
        .C = c, .ldc = s->N, .accumulate = s->acc,
        .bias = s->epi ? bias : NULL, .pre = s->epi ? pre : NULL,
        .act = s->epi ? IRC_ACT_GELU_TANH : IRC_ACT_NONE,
        .threads = threads, .work = work,
    };
    irc__gemm_bf16_as(&g, f);
}

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static void test_shape(const shape *s, const irc__gemm_format *native, float *work)
{
    const int M = s->M, N = s->N, K = s->K;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *bias = malloc(sizeof(float) * N), *c0 = malloc(sizeof(float) * M * N);
    float *c = malloc(sizeof(float) * M * N), *pre = malloc(sizeof(float) * M * N);
    float *c2 = malloc(sizeof(float) * M * N), *pre2 = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = (float)rnd();
    for (int i = 0; i < K * N; i++) B[i] = (float)rnd();
    for (int i = 0; i < N; i++) bias[i] = (float)rnd();
    for (int i = 0; i < M * N; i++) c0[i] = (float)rnd();
    char what[160];
    snprintf(what, sizeof what, "%dx%dx%d ta=%d tb=%d acc=%d epi=%d", M, N, K, s->ta, s->tb, s->acc, s->epi);

    run(s, irc__bf16_formats[0], 1, A, B, bias, c0, c, pre, work);
    /* the reference: double sums of the rounded operands, then the epilogue */
    double worst = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double sum = 0.0, mag = 0.0;
            for (int k = 0; k < K; k++) {
                const double a = irc_bf16_round(s->ta ? A[k * M + i] : A[i * K + k]);
                const double b = irc_bf16_round(s->tb ? B[j * K + k] : B[k * N + j]);
                sum += a * b;
                mag += fabs(a * b);
            }
            double want = sum, got = c[i * N + j];
            if (s->acc) { want += c0[i * N + j]; mag += fabs(c0[i * N + j]); }
            if (s->epi) {
                want += bias[j];
                mag += fabs(bias[j]);
                const double e = fabs(pre[i * N + j] - want) / (mag + 1e-30);
                if (e > worst) worst = e;
                /* GELU (tanh) of the pre value the kernel stored, on gemm_test.c's scale */
                const double x = pre[i * N + j];
                want = 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
            }
            const double e = fabs(got - want) / (mag + 1e-30);
            if (e > worst) worst = e;
        }
    char w2[220];
    snprintf(w2, sizeof w2, "%s: rel err %.3g vs the reference", what, worst);
    check(worst <= 1e-5, w2);

    {   /* the entry point a model calls: its build's format, the same bits */
        memcpy(c2, c0, sizeof(float) * M * N);
        irc_gemm_args g = {.M = M, .N = N, .K = K, .A = A, .lda = s->ta ? M : K, .trans_a = s->ta,
                           .B = B, .ldb = s->tb ? K : N, .trans_b = s->tb, .C = c2, .ldc = N,
                           .accumulate = s->acc, .bias = s->epi ? bias : NULL, .pre = s->epi ? pre2 : NULL,
                           .act = s->epi ? IRC_ACT_GELU_TANH : IRC_ACT_NONE, .threads = 2, .work = work};
        irc_gemm_bf16(&g);
        snprintf(w2, sizeof w2, "%s: irc_gemm_bf16 bit-identical to emulated", what);
        check(same_bits(c, c2, (size_t)M * N), w2);
    }
    for (int t = 2; t <= 3; t++) {
        run(s, irc__bf16_formats[0], t, A, B, bias, c0, c2, pre2, work);
        snprintf(w2, sizeof w2, "%s: emulated, %d threads bit-identical to 1", what, t);
        check(same_bits(c, c2, (size_t)M * N) && (!s->epi || same_bits(pre, pre2, (size_t)M * N)), w2);
    }
    if (native) {
        for (int t = 1; t <= 3; t++) {
            run(s, native, t, A, B, bias, c0, c2, pre2, work);
            snprintf(w2, sizeof w2, "%s: native (%d threads) bit-identical to emulated", what, t);
            int ok = same_bits(c, c2, (size_t)M * N) && (!s->epi || same_bits(pre, pre2, (size_t)M * N));
            if (!ok) {
                for (int i = 0; i < M * N; i++)
                    if (bits(c[i]) != bits(c2[i])) {
                        printf("  first difference at %d: emulated %.9g (%08x), native %.9g (%08x)\n", i, c[i],
                               bits(c[i]), c2[i], bits(c2[i]));
                        break;
                    }
            }
            check(ok, w2);
        }
    }
    free(A); free(B); free(bias); free(c0); free(c); free(pre); free(c2); free(pre2);
}

int main(void)
{
    const irc__gemm_format *native = NULL;
#if defined(IRC_TARGET_AVX512)
    if (__builtin_cpu_supports("avx512bf16")) native = irc__bf16_formats[1];
#endif
    test_round();
    float *work = aligned_alloc(64, ((irc_gemm_work_floats(3) * sizeof(float) + 63) / 64) * 64);
    static const int Ms[] = {1, 3, 13, 37}, Ns[] = {1, 5, 33, 70}, Ks[] = {1, 2, 7, 16, 31, 32, 33, 577};
    for (size_t mi = 0; mi < 4; mi++)
        for (size_t ni = 0; ni < 4; ni++)
            for (size_t ki = 0; ki < 8; ki++)
                for (int t = 0; t < 4; t++) {
                    const int v = (int)(mi + ni + ki + (size_t)t);
                    shape s = {Ms[mi], Ns[ni], Ks[ki], t & 1, t >> 1, v % 3 == 1, v % 3 == 2};
                    test_shape(&s, native, work);
                }
    /* larger: several MC, NC, KC blocks and full tiles on two threads */
    const shape big[] = {{130, 200, 1031, 0, 0, 0, 1}, {97, 257, 600, 1, 0, 1, 0}, {200, 96, 513, 0, 1, 0, 0}};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) test_shape(&big[i], native, work);
    free(work);
    printf("gemm_bf16_test: %d passed, %d failed [native: %s]\n", n_pass, n_fail, native ? "yes" : "no");
    return n_fail ? 1 : 0;
}
