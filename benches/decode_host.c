/* Decode speed and memory of an irc model in a plain C process (no Rust, no Python), for
 * benches/decode.sh: load an f32 safetensors checkpoint through the C ABI, then ROUNDS times
 * prefill 16 tokens and decode greedily to the end of the context; print the median decode rate,
 * the process's resident memory after it (VmRSS) and its peak (VmHWM), and write the first
 * prefill's logits to LOGITS (f32) for comparing builds.
 *
 *   cc decode_host.c -DMODEL=bench_s -DMODEL_UC=BENCH_S -IBUILD -Iruntime-c BUILD/libirc_model.a \
 *      -fopenmp -lm -o decode_host
 *   ./decode_host weights.safetensors THREADS ROUNDS LOGITS
 */
#define _DEFAULT_SOURCE 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "irc_model.h"

#define CAT_(a, b, c) a##b##c
#define CAT(a, b, c) CAT_(a, b, c)
#define F(fn) CAT(irc_, MODEL, _##fn)
#define CONTEXT CAT(IRC_, MODEL_UC, _CONTEXT)
#define VOCAB CAT(IRC_, MODEL_UC, _VOCAB)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = atol(line + strlen(key));
    if (f) fclose(f);
    return v;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 5) return fprintf(stderr, "usage: %s weights.safetensors threads rounds logits.f32\n", argv[0]), 2;
    const int threads = atoi(argv[2]), rounds = atoi(argv[3]);
    CAT(irc_, MODEL, ) *m = F(create)(threads);
    if (!m || F(load_weights)(m, argv[1])) return fprintf(stderr, "%s\n", m ? F(last_error)(m) : "out of memory"), 1;
    static float logits[VOCAB];
    int32_t prompt[16];
    for (int i = 0; i < 16; i++) prompt[i] = (i * 37 + 11) % VOCAB;
    double rates[64];
    for (int r = 0; r <= rounds && r < 64; r++) {
        if (F(prefill)(m, prompt, 16, logits)) return fprintf(stderr, "%s\n", F(last_error)(m)), 1;
        if (r == 0) {
            FILE *f = fopen(argv[4], "wb");
            if (!f || fwrite(logits, sizeof logits, 1, f) != 1) return fprintf(stderr, "cannot write %s\n", argv[4]), 1;
            fclose(f);
        }
        double t0 = now();
        for (int n = 16; n < CONTEXT; n++) {
            int best = 0;
            for (int v = 1; v < VOCAB; v++)
                if (logits[v] > logits[best]) best = v;
            if (F(decode)(m, best, logits)) return fprintf(stderr, "%s\n", F(last_error)(m)), 1;
        }
        rates[r] = (CONTEXT - 16) / (now() - t0);
    }
    /* Round 0 warms up (first touch of the cache and activations). */
    qsort(rates + 1, rounds, sizeof *rates, cmp);
    printf("decode_tokens_per_s %.1f rss_kb %ld hwm_kb %ld\n", rates[1 + rounds / 2], status_kb("VmRSS:"), status_kb("VmHWM:"));
    F(destroy)(m);
    return 0;
}
