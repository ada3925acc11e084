/* irc_profile.h — what a profile build (`[build] profile = true`, `irc profile`) adds:
 * a monotonic clock for timing every kernel call, and the machine's measured fp32 FMA
 * peak, so kernel throughput can be stated as a fraction of what the cores can do
 * rather than as a bare time. benches/c/gemm_bench.c measures its peak with the same code.
 *
 * Needs irc_simd.h (a target macro) first. Everything is static: no symbols.
 */
#ifndef IRC_PROFILE_H
#define IRC_PROFILE_H

#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Seconds on a monotonic clock. */
static inline double irc_seconds(void)
{
#if defined(CLOCK_MONOTONIC) && !defined(_WIN32)
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
#else
    struct timespec t;
    timespec_get(&t, TIME_UTC);
#endif
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Independent FMA chains: enough to cover the FMA latency times the FMA ports, and
 * few enough to stay in registers with the two operands. */
#if defined(IRC_TARGET_AVX2)
#define IRC__NACC 12 /* 16 ymm registers */
#define IRC__ACCS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#elif defined(IRC_TARGET_SCALAR)
#define IRC__NACC 8
#define IRC__ACCS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#else /* 32 vector registers */
#define IRC__NACC 24
#define IRC__ACCS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
                     X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
#endif

/* One thread's FMA chains; returns a value so the work cannot be discarded. */
static float irc__fma_chains(long iters, float m, float c)
{
#define IRC__DECL(i) irc_vf a##i = irc_vset1((float)(i));
#define IRC__STEP(i) a##i = irc_vfma(a##i, vm, vc);
#define IRC__SUM(i) s = irc_vadd(s, a##i);
    irc_vf vm = irc_vset1(m), vc = irc_vset1(c), s = irc_vzero();
    IRC__ACCS(IRC__DECL)
    for (long i = 0; i < iters; i++) {
        IRC__ACCS(IRC__STEP)
    }
    IRC__ACCS(IRC__SUM)
    return irc_vhsum(s);
#undef IRC__DECL
#undef IRC__STEP
#undef IRC__SUM
}

/* Peak fp32 GFLOP/s of `threads` threads each running FMA chains: the best of three
 * runs of about 50M FMAs a thread. */
static double irc_fma_peak_gflops(int threads)
{
    const long iters = 50000000 / IRC_VW + 1000000;
    volatile float m = 0.999999f, c = 1e-6f, sink = 0.0f;
    double best = 0.0;
    if (threads < 1)
        threads = 1;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = irc_seconds();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
        {
            float r = irc__fma_chains(iters, m, c);
#ifdef _OPENMP
#pragma omp atomic
#endif
            sink += r;
        }
        double dt = irc_seconds() - t0;
#ifndef _OPENMP
        threads = 1; /* one thread ran */
#endif
        double gf = 2.0 * IRC__NACC * IRC_VW * (double)iters * threads / dt * 1e-9;
        if (gf > best)
            best = gf;
    }
    (void)sink;
    return best;
}

#endif /* IRC_PROFILE_H */
