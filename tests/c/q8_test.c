/* q8_test: runs irc_q8.h's products on cases read from a file and writes their results, for
 * tests/q8_kernels.rs to hold against compiler/quant.rs (the interpreter's semantics).
 *
 *   q8_test IN OUT
 *
 * IN: cases one after another, each seven int32 (M, N, K, tb, format 1 = q8_0 / 2 = bf16, act,
 * has_bias), then A (M×K), W (N×K when tb, else K×N) and, with has_bias, bias (N), as f32. OUT: each
 * case's C (M×N f32). Every case runs on 1, 2 and 3 threads with A at a padded row stride; the
 * results must be bit-identical, or the program fails. Define one of irc_simd.h's target macros and
 * the cache sizes (irc_gemm.h's) when compiling.
 */
#define _DEFAULT_SOURCE 1 /* madvise, as model.c defines it */
#include <stdio.h>
#include <stdlib.h>
#include "irc_q8.h"

static int read_all(FILE *f, void *p, size_t bytes) { return fread(p, 1, bytes, f) == bytes; }

int main(int argc, char **argv)
{
    (void)irc_gemm; /* irc_q8.h includes it for its epilogue */
    (void)irc_gemm_work_floats;
    if (argc != 3) {
        fprintf(stderr, "usage: q8_test IN OUT\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) {
        fprintf(stderr, "q8_test: cannot open the files\n");
        return 2;
    }
    int cases = 0, failed = 0;
    int32_t h[7];
    while (read_all(in, h, sizeof h)) {
        const int M = h[0], N = h[1], K = h[2], tb = h[3], fmt = h[4], has_bias = h[6];
        const int lda = K + 3;
        float *A = calloc((size_t)M * lda, sizeof(float)), *W = malloc((size_t)N * K * sizeof(float));
        float *bias = has_bias ? malloc((size_t)N * sizeof(float)) : NULL;
        float *C[3];
        for (int i = 0; i < M; i++)
            if (!read_all(in, A + (size_t)i * lda, (size_t)K * sizeof(float))) return 3;
        if (!read_all(in, W, (size_t)N * K * sizeof(float))) return 3;
        if (bias && !read_all(in, bias, (size_t)N * sizeof(float))) return 3;
        const size_t wbytes = fmt == 1 ? irc_q8_bytes(N, K) : irc_bf16_bytes(N, K);
        unsigned char *packed = aligned_alloc(64, wbytes);
        void *work = aligned_alloc(64, (irc_q8_work_bytes(M, K) + 63) / 64 * 64);
        if (fmt == 1) {
            if (irc_q8_pack(W, N, K, tb, packed)) {
                fprintf(stderr, "case %d: refused a finite weight\n", cases);
                failed++;
            }
        } else {
            irc_bf16_pack(W, N, K, tb, packed);
        }
        for (int t = 0; t < 3; t++) {
            C[t] = malloc((size_t)M * N * sizeof(float));
            irc_q8_args g = {
                .M = M, .N = N, .K = K, .A = A, .lda = lda, .W = packed, .C = C[t], .ldc = N,
                .bias = bias, .act = (irc_act)h[5], .threads = t + 1, .work = work,
            };
            if (fmt == 1) irc_q8_gemm(&g); else irc_bf16_gemm(&g);
            if (t > 0 && memcmp(C[t], C[0], (size_t)M * N * sizeof(float))) {
                fprintf(stderr, "case %d (%dx%dx%d): %d threads differ from 1\n", cases, M, N, K, t + 1);
                failed++;
            }
        }
        fwrite(C[0], sizeof(float), (size_t)M * N, out);
        for (int t = 0; t < 3; t++) free(C[t]);
        free(A); free(W); free(bias); free(packed); free(work);
        cases++;
    }
    fclose(in);
    fclose(out);
    printf("q8_test: %d cases, %d failed\n", cases, failed);
    return failed != 0;
}
