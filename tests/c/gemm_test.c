/* gemm_test.c — checks runtime-c/irc_simd.h and runtime-c/irc_gemm.h.
 *
 * Build with one target macro, e.g.
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -fopenmp -D IRC_TARGET_AVX2 -mavx2 -mfma \
 *      -I runtime-c tests/c/gemm_test.c -lm -o gemm_test
 *
 * 1. irc_vexp / irc_vtanh / irc_expf / irc_tanhf against libm in double (dense sweeps,
 *    tails, extremes), partial loads next to an unmapped page, reductions.
 * 2. irc_gemm against a double-precision reference over many shapes, all transposes,
 *    padded leading dimensions, accumulate / bias / pre / every activation,
 *    and bit-identical results for 1, 2 and 3 threads.
 * 3. The small-M path (decode) the same way over M ∈ {1,2,3,5,8} and odd N, K up to 1031,
 *    both trans_b (also where irc_gemm would pack instead); its thread split forced to 2 and 3
 *    threads whatever the size of B; and no load past the end of A, B or bias (each ends at
 *    an unmapped page).
 * Last line: "gemm_test: P passed, F failed"; exit status is non-zero on any failure.
 */
#define _DEFAULT_SOURCE /* mmap / mprotect for the guard-page test */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "irc_gemm.h"

static int n_pass, n_fail;

static void check(int ok, const char *what)
{
    if (ok) n_pass++;
    else { n_fail++; printf("FAIL: %s\n", what); }
}

static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static double rnd(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* ---- vector math ------------------------------------------------------------------ */

/* y[0:n] = f(x[0:n]) through full vectors and one irc_vload_n/irc_vstore_n tail. */
static void apply(irc_vf (*f)(irc_vf), const float *x, float *y, int n)
{
    int i = 0;
    for (; i + IRC_VW <= n; i += IRC_VW) irc_vstore(y + i, f(irc_vload(x + i)));
    if (i < n) irc_vstore_n(y + i, f(irc_vload_n(x + i, n - i)), n - i);
}

/* Max relative error of vector and scalar versions vs. ref over [lo, hi] in `steps` points,
 * pushed through apply() in chunks of varying length so every tail width is used. */
static double sweep(irc_vf (*f)(irc_vf), float (*fs)(float), double (*ref)(double),
                    double lo, double hi, int steps, double *worst_x)
{
    enum { CH = 67 };
    float x[CH], y[CH];
    double worst = 0.0;
    int len = 1;
    for (int s = 0; s < steps; s += len, len = len % CH + 1) {
        int n = steps - s < len ? steps - s : len;
        for (int i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * (s + i) / (steps - 1));
        apply(f, x, y, n);
        for (int i = 0; i < n; i++) {
            double r = ref((double)x[i]);
            double e = fabs((double)y[i] - r) / fabs(r);
            double es = fabs((double)fs(x[i]) - r) / fabs(r);
            if (es > e) e = es;
            if (e > worst) { worst = e; *worst_x = x[i]; }
        }
    }
    return worst;
}

static float vone(irc_vf (*f)(irc_vf), float x) /* f on one value, via a 1-lane partial load */
{
    float y = 0.0f;
    if (IRC_VW == 1) irc_vstore(&y, f(irc_vload(&x)));
    else irc_vstore_n(&y, f(irc_vload_n(&x, 1)), 1);
    return y;
}

static void test_math(void)
{
    char msg[200];
    double wx = 0.0, e;

    e = sweep(irc_vexp, irc_expf, exp, -87.0, 88.0, 2000003, &wx);
    printf("exp  max rel err on [-87, 88]: %.3g (at %.9g)\n", e, wx);
    snprintf(msg, sizeof msg, "exp rel err %.3g at %.9g > 2e-7", e, wx);
    check(e <= 2e-7, msg);
    e = sweep(irc_vexp, irc_expf, exp, -1.0, 1.0, 200001, &wx);
    snprintf(msg, sizeof msg, "exp rel err near 0 %.3g at %.9g > 2e-7", e, wx);
    check(e <= 2e-7, msg);

    /* Denormal results: absolute error of a few denormal ulps. */
    int bad = 0;
    for (int i = 0; i <= 20000; i++) {
        float x = -87.0f - 17.0f * (float)i / 20000.0f;
        double r = exp((double)x), tol = 2e-7 * r + 3e-45;
        if (fabs((double)vone(irc_vexp, x) - r) > tol || fabs((double)irc_expf(x) - r) > tol) bad++;
    }
    check(bad == 0, "exp in the denormal range [-104, -87]");

    const float huge = 1e30f, inf = INFINITY;
    const float zero_in[] = {-104.5f, -200.0f, -huge, -inf};
    const float inf_in[] = {89.0f, 100.0f, huge, inf};
    for (int i = 0; i < 4; i++) {
        snprintf(msg, sizeof msg, "exp(%g) == 0", (double)zero_in[i]);
        check(vone(irc_vexp, zero_in[i]) == 0.0f && irc_expf(zero_in[i]) == 0.0f, msg);
        snprintf(msg, sizeof msg, "exp(%g) == inf", (double)inf_in[i]);
        check(vone(irc_vexp, inf_in[i]) == inf && irc_expf(inf_in[i]) == inf, msg);
    }
    check(isfinite(vone(irc_vexp, 88.7f)) && fabs(vone(irc_vexp, 88.7f) / exp((double)88.7f) - 1.0) < 2e-7,
          "exp(88.7) finite and accurate");
    check(isnan(vone(irc_vexp, NAN)) && isnan(irc_expf(NAN)), "exp(NaN) is NaN");

    /* The softmax exp: the same bounds on x <= 0 (and up to 43), denormals, zeros and NaN. */
    e = sweep(irc_vexp_nonpos, irc_expf, exp, -87.0, 43.0, 2000003, &wx);
    printf("exp_nonpos max rel err on [-87, 43]: %.3g (at %.9g)\n", e, wx);
    snprintf(msg, sizeof msg, "exp_nonpos rel err %.3g at %.9g > 2e-7", e, wx);
    check(e <= 2e-7, msg);
    bad = 0;
    for (int i = 0; i <= 20000; i++) {
        float x = -87.0f - 17.0f * (float)i / 20000.0f;
        double r = exp((double)x), tol = 2e-7 * r + 3e-45;
        if (fabs((double)vone(irc_vexp_nonpos, x) - r) > tol) bad++;
    }
    check(bad == 0, "exp_nonpos in the denormal range [-104, -87]");
    for (int i = 0; i < 4; i++) {
        snprintf(msg, sizeof msg, "exp_nonpos(%g) == 0", (double)zero_in[i]);
        check(vone(irc_vexp_nonpos, zero_in[i]) == 0.0f, msg);
    }
    check(vone(irc_vexp_nonpos, 0.0f) == 1.0f && vone(irc_vexp_nonpos, -0.0f) == 1.0f, "exp_nonpos(0) == 1");
    check(isnan(vone(irc_vexp_nonpos, NAN)), "exp_nonpos(NaN) is NaN");

    /* GELU's derivative (sigmoid form) against the f64 tanh formula: absolute error. */
    double worst = 0.0;
    for (int i = 0; i <= 2400000; i++) {
        float x = -12.0f + 24.0f * (float)i / 2400000.0f;
        double xd = x, t = tanh(0.7978845608028654 * (xd + 0.044715 * xd * xd * xd));
        double r = 0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * xd * xd);
        double d = fabs((double)vone(irc_vgelu_grad, x) - r);
        if (d > worst) { worst = d; wx = x; }
    }
    printf("gelu' max abs err on [-12, 12]: %.3g (at %.9g)\n", worst, wx);
    snprintf(msg, sizeof msg, "gelu' abs err %.3g at %.9g > 2.5e-7", worst, wx);
    check(worst <= 2.5e-7, msg); /* 2 ulp of gelu' near 1.2 (the tanh form: 5.6e-7) */

    e = sweep(irc_vtanh, irc_tanhf, tanh, -12.0, 12.0, 2000001, &wx);
    printf("tanh max rel err on [-12, 12]: %.3g (at %.9g)\n", e, wx);
    snprintf(msg, sizeof msg, "tanh rel err %.3g at %.9g > 1.5e-6", e, wx);
    check(e <= 1.5e-6, msg);
    e = sweep(irc_vtanh, irc_tanhf, tanh, 1e-30, 1e-3, 100001, &wx);
    snprintf(msg, sizeof msg, "tanh rel err near 0 %.3g at %.9g", e, wx);
    check(e <= 1.5e-6, msg);

    bad = 0;
    for (int i = 0; i <= 100000; i++) {
        float x = 30.0f * (float)i / 100000.0f;
        float p = vone(irc_vtanh, x), m = vone(irc_vtanh, -x);
        if (p != -m || irc_tanhf(x) != -irc_tanhf(-x) || !(fabsf(p) <= 1.0f) || p != p) bad++;
    }
    check(bad == 0, "tanh odd, bounded by 1, never NaN on [-30, 30]");
    const float sat[] = {10.0f, 50.0f, 1e10f, huge, inf};
    bad = 0;
    for (int i = 0; i < 5; i++)
        if (vone(irc_vtanh, sat[i]) != 1.0f || vone(irc_vtanh, -sat[i]) != -1.0f ||
            irc_tanhf(sat[i]) != 1.0f || irc_tanhf(-sat[i]) != -1.0f) bad++;
    check(bad == 0, "tanh saturates to exactly +-1");
    check(isnan(vone(irc_vtanh, NAN)) && isnan(irc_tanhf(NAN)), "tanh(NaN) is NaN");

    /* Partial loads/stores: n floats end exactly at an unmapped page. */
    long pg = sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, (size_t)(2 * pg), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(mem != MAP_FAILED && mprotect(mem + pg, (size_t)pg, PROT_NONE) == 0, "guard page");
    bad = 0;
    for (int n = 0; n < IRC_VW; n++) {
        float *p = (float *)(mem + pg) - n;
        for (int i = 0; i < n; i++) p[i] = (float)(i + 1);
        float out[IRC_VW];
        irc_vstore(out, irc_vload_n(p, n));
        for (int i = 0; i < IRC_VW; i++)
            if (out[i] != (i < n ? (float)(i + 1) : 0.0f)) bad++;
        irc_vstore_n(p, irc_vset1(-5.0f), n);
        for (int i = 0; i < n; i++)
            if (p[i] != -5.0f) bad++;
        float guard[IRC_VW + 1];
        for (int i = 0; i <= IRC_VW; i++) guard[i] = 7.0f;
        irc_vstore_n(guard, irc_vset1(1.0f), n);
        for (int i = 0; i <= IRC_VW; i++)
            if (guard[i] != (i < n ? 1.0f : 7.0f)) bad++;
    }
    munmap(mem, (size_t)(2 * pg));
    check(bad == 0, "irc_vload_n / irc_vstore_n");

    float v[IRC_VW];
    double s = 0.0;
    for (int i = 0; i < IRC_VW; i++) { v[i] = (float)(i * 0.25 - 3.0); s += v[i]; }
    v[IRC_VW / 2] = 9.5f;
    s += 9.5 - (IRC_VW / 2 * 0.25 - 3.0);
    check(irc_vhsum(irc_vload(v)) == (float)s && irc_vhmax(irc_vload(v)) == 9.5f, "irc_vhsum / irc_vhmax");
    irc_vf a = irc_vset1(3.0f), b = irc_vset1(-2.0f), c = irc_vset1(0.5f);
    float r[6];
    r[0] = irc_vhmax(irc_vadd(a, b)); r[1] = irc_vhmax(irc_vsub(a, b)); r[2] = irc_vhmax(irc_vmul(a, b));
    r[3] = irc_vhmax(irc_vdiv(a, b)); r[4] = irc_vhmax(irc_vfma(a, b, c)); r[5] = irc_vhmax(irc_vmax(b, irc_vzero()));
    check(r[0] == 1.0f && r[1] == 5.0f && r[2] == -6.0f && r[3] == -1.5f && r[4] == -5.5f && r[5] == 0.0f,
          "irc_vadd/vsub/vmul/vdiv/vfma/vmax");
}

/* ---- GEMM ------------------------------------------------------------------------- */

/* The epilogues the GEMM takes: accumulate, bias, pre, an activation. */
static const struct {
    const char *name;
    int accumulate, bias, pre;
    irc_act act;
} variant[] = {
    {"plain", 0, 0, 0, IRC_ACT_NONE},
    {"accumulate", 1, 0, 0, IRC_ACT_NONE},
    {"bias", 0, 1, 0, IRC_ACT_NONE},
    {"bias+pre+gelu", 0, 1, 1, IRC_ACT_GELU_TANH},
    {"gelu", 0, 0, 0, IRC_ACT_GELU_TANH},
    {"bias+gelu_erf", 0, 1, 0, IRC_ACT_GELU_ERF},
    {"pre+silu", 0, 0, 1, IRC_ACT_SILU},
    {"bias+pre+relu", 0, 1, 1, IRC_ACT_RELU},
};
#define N_VARIANTS ((int)(sizeof variant / sizeof variant[0]))

static double gelu_ref(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static double act_ref(irc_act a, double x)
{
    switch (a) {
    case IRC_ACT_GELU_TANH: return gelu_ref(x);
    case IRC_ACT_GELU_ERF: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case IRC_ACT_SILU: return x / (1.0 + exp(-x));
    case IRC_ACT_RELU: return x > 0.0 ? x : 0.0;
    case IRC_ACT_NONE: break;
    }
    return x;
}

static float *work;
/* 1: run the small-M path (irc__gemm_small) even where irc_gemm would take the packed one. */
static int force_small;
static size_t work_floats;
static const float SENTINEL = 12345.0f; /* fills padding and must survive */

static void test_gemm(int M, int N, int K, int ta, int tb, int pad, int v)
{
    const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad * 2, ldc = N + pad * 3;
    const size_t na = (size_t)(ta ? K : M) * lda + 1, nb = (size_t)(tb ? N : K) * ldb + 1,
                 nc = (size_t)M * ldc;
    float *A = malloc(na * sizeof(float)), *B = malloc(nb * sizeof(float));
    float *C0 = malloc(nc * sizeof(float)), *C = malloc(nc * sizeof(float));
    float *C1 = malloc(nc * sizeof(float)), *P = malloc(nc * sizeof(float)), *P1 = malloc(nc * sizeof(float));
    float *bias = malloc((size_t)N * sizeof(float));
    for (size_t i = 0; i < na; i++) A[i] = (float)rnd();
    for (size_t i = 0; i < nb; i++) B[i] = (float)rnd();
    for (size_t i = 0; i < nc; i++) {
        int in = (int)(i % (size_t)ldc) < N;
        C0[i] = in ? (float)rnd() : SENTINEL;
    }
    for (int j = 0; j < N; j++) bias[j] = (float)rnd();

    irc_gemm_args g = {0};
    g.M = M; g.N = N; g.K = K;
    g.A = A; g.lda = lda; g.trans_a = ta;
    g.B = B; g.ldb = ldb; g.trans_b = tb;
    g.ldc = ldc;
    g.work = work;
    const int has_pre = variant[v].pre;
    g.accumulate = variant[v].accumulate;
    g.bias = variant[v].bias ? bias : NULL;
    g.act = variant[v].act;

    double max_err = 0.0, max_pre_err = 0.0;
    int pad_ok = 1, identical = 1;
    const int threads[] = {1, 2, 3};
    for (int t = 0; t < 3; t++) {
        float *out = t == 0 ? C : C1, *pre = t == 0 ? P : P1;
        memcpy(out, C0, nc * sizeof(float));
        for (size_t i = 0; i < nc; i++) pre[i] = SENTINEL;
        g.C = out;
        g.pre = has_pre ? pre : NULL;
        g.threads = threads[t];
        if (force_small) irc__gemm_small(&g, threads[t]);
        else irc_gemm(&g);
        if (t > 0) {
            identical &= memcmp(C, C1, nc * sizeof(float)) == 0;
            identical &= memcmp(P, P1, nc * sizeof(float)) == 0;
        }
    }
    /* The small-M path splits N between threads only when B is big enough: force 2 and 3. */
    for (int t = 2; !force_small && irc__small_m(&g) && t <= 3; t++) {
        memcpy(C1, C0, nc * sizeof(float));
        for (size_t i = 0; i < nc; i++) P1[i] = SENTINEL;
        g.C = C1;
        g.pre = has_pre ? P1 : NULL;
        irc__gemm_small(&g, t);
        identical &= memcmp(C, C1, nc * sizeof(float)) == 0;
        identical &= memcmp(P, P1, nc * sizeof(float)) == 0;
    }

    for (int i = 0; i < M; i++) {
        for (int j = 0; j < ldc; j++) {
            size_t ij = (size_t)i * ldc + j;
            if (j >= N) { pad_ok &= C[ij] == SENTINEL && P[ij] == SENTINEL; continue; }
            double ab = 0.0, scale = 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                ab += a * b;
                scale += fabs(a * b);
            }
            double pre = ab;
            if (g.accumulate) { pre += C0[ij]; scale += fabs(C0[ij]); }
            if (g.bias) { pre += bias[j]; scale += fabs(bias[j]); }
            double out = act_ref(g.act, pre);
            if (scale < 1e-30) scale = 1e-30;
            double e = fabs(C[ij] - out) / scale;
            if (!(e <= max_err)) max_err = e; /* NaN counts as the worst error */
            if (has_pre) {
                double ep = fabs(P[ij] - pre) / scale;
                if (!(ep <= max_pre_err)) max_pre_err = ep;
            }
        }
    }

    char msg[256];
    snprintf(msg, sizeof msg, "%sM=%d N=%d K=%d ta=%d tb=%d pad=%d %s: err %.3g pre_err %.3g pad %s threads %s",
             force_small ? "small-M path forced: " : "", M, N, K, ta, tb, pad, variant[v].name, max_err, max_pre_err, pad_ok ? "ok" : "CLOBBERED",
             identical ? "identical" : "DIFFER");
    check(max_err <= 1e-5 && max_pre_err <= 1e-5 && pad_ok && identical, msg);
    free(A); free(B); free(C0); free(C); free(C1); free(P); free(P1); free(bias);
}

/* Small-M shapes with A, B and bias each ending exactly at an unmapped page: a load past
 * their end (a vector tail read whole, a clamped column read too far) faults. */
static void test_small_guard(int M, int N, int K, int tb)
{
    const long pg = sysconf(_SC_PAGESIZE);
    const size_t na = (size_t)M * K, nb = (size_t)K * N, nbias = (size_t)N;
    const size_t bytes[3] = {na * sizeof(float), nb * sizeof(float), nbias * sizeof(float)};
    float *p[3];
    char *maps[3];
    size_t len[3];
    int ok = 1;
    for (int m = 0; m < 3; m++) {
        len[m] = (bytes[m] + (size_t)pg - 1) / (size_t)pg * (size_t)pg + (size_t)pg;
        maps[m] = mmap(NULL, len[m], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ok &= maps[m] != MAP_FAILED && mprotect(maps[m] + len[m] - pg, (size_t)pg, PROT_NONE) == 0;
        p[m] = (float *)(maps[m] + len[m] - pg - bytes[m]);
    }
    if (!ok) { check(0, "guard pages for the small-M test"); return; }
    float *A = p[0], *B = p[1], *bias = p[2];
    for (size_t i = 0; i < na; i++) A[i] = (float)rnd();
    for (size_t i = 0; i < nb; i++) B[i] = (float)rnd();
    for (size_t i = 0; i < nbias; i++) bias[i] = (float)rnd();
    float *C = malloc((size_t)M * N * sizeof(float));
    irc_gemm_args g = {0};
    g.M = M; g.N = N; g.K = K;
    g.A = A; g.lda = K;
    g.B = B; g.ldb = tb ? K : N; g.trans_b = tb;
    g.C = C; g.ldc = N;
    g.bias = bias;
    g.act = IRC_ACT_GELU_TANH;
    g.threads = 2;
    g.work = work;
    irc_gemm(&g); /* a fault ends the test here */
    double max_err = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double ab = bias[j], scale = fabs(bias[j]);
            for (int k = 0; k < K; k++) {
                double a = A[(size_t)i * K + k], b = tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j];
                ab += a * b;
                scale += fabs(a * b);
            }
            double e = fabs(C[(size_t)i * N + j] - gelu_ref(ab)) / (scale > 1e-30 ? scale : 1e-30);
            if (!(e <= max_err)) max_err = e;
        }
    char msg[160];
    snprintf(msg, sizeof msg, "guarded M=%d N=%d K=%d tb=%d: err %.3g", M, N, K, tb, max_err);
    check(max_err <= 1e-5, msg);
    free(C);
    for (int m = 0; m < 3; m++) munmap(maps[m], len[m]);
}

int main(void)
{
    test_math();
    int math_fail = n_fail;

    work_floats = irc_gemm_work_floats(3);
    work = aligned_alloc(64, (work_floats * sizeof(float) + 63) / 64 * 64);

    const int sizes[] = {1, 2, 7, 13, 16, 33, 97};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    int c = 0;
    for (int a = 0; a < ns; a++)
        for (int b = 0; b < ns; b++)
            for (int k = 0; k < ns; k++)
                for (int t = 0; t < 4; t++, c++)
                    test_gemm(sizes[a], sizes[b], sizes[k], t & 1, t >> 1, c % 3 * 5, c % N_VARIANTS);

    /* Larger shapes: several K blocks (KC), M blocks (MC), N blocks (NC), decode-like M = 1. */
    const int big[][3] = {{300, 517, 270}, {1, 3072, 768}, {1, 768, 3072}, {5, 3100, 20}, {257, 100, 600},
                          {64, 768, 256}, {513, 40, 33}, {3, 50, 1000}, {100, 7, 3}, {17, 3200, 3}};
    for (int s = 0; s < (int)(sizeof big / sizeof big[0]); s++)
        for (int t = 0; t < 4; t++, c++)
            test_gemm(big[s][0], big[s][1], big[s][2], t & 1, t >> 1, c % 2 * 3, c % N_VARIANTS);

    /* Small M (decode): the path without packing, both trans_b, odd N and K. */
    const int small_m[] = {1, 2, 3, 5, 8}, odd[] = {1, 7, 33, 577, 1031};
    for (int m = 0; m < 5; m++)
        for (int n = 0; n < 5; n++)
            for (int k = 0; k < 5; k++)
                for (int tb = 0; tb < 2; tb++, c++) {
                    test_gemm(small_m[m], odd[n], odd[k], 0, tb, c % 3 * 2, c % N_VARIANTS);
                    /* Past this target's crossover irc_gemm packs: check the small path anyway. */
                    irc_gemm_args g = {0};
                    g.M = small_m[m]; g.trans_b = tb;
                    force_small = !irc__small_m(&g);
                    if (force_small) test_gemm(small_m[m], odd[n], odd[k], 0, tb, c % 3 * 2, c % N_VARIANTS);
                    force_small = 0;
                }
    for (int m = 0; m < 5; m++)
        for (int n = 0; n < 5; n++)
            for (int tb = 0; tb < 2; tb++)
                test_small_guard(small_m[m], odd[n], odd[(m + n) % 5], tb);

    /* Every epilogue variant on a multi-block shape and with K = 0. */
    for (int v = 0; v < N_VARIANTS; v++) {
        test_gemm(130, 70, 300, v & 1, v >> 1 & 1, 1, v);
        test_gemm(9, 21, 0, 0, 0, 2, v);
    }

    free(work);
    printf("math: %s\n", math_fail ? "FAILED" : "ok");
    printf("gemm_test: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
