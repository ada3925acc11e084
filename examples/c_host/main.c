/* A C host for an irc model: load weights, greedy-decode from a prompt of token ids through the
 * key/value cache (README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "irc_model.h"
#include "irc_safetensors.h"
#ifndef MODEL /* the spec's [model].name, and in capitals */
#define MODEL tiny_llama
#define MODEL_UC TINY_LLAMA
#endif
#define CAT_(a, b, c) a##b##c
#define CAT(a, b, c) CAT_(a, b, c) /* expand, then paste */
#define F(fn) CAT(irc_, MODEL, _##fn) /* F(forward) is irc_tiny_llama_forward */
#define CONTEXT CAT(IRC_, MODEL_UC, _CONTEXT)
#define VOCAB CAT(IRC_, MODEL_UC, _VOCAB)

int main(int argc, char **argv) {
    static float logits[VOCAB];
    int32_t ids[CONTEXT];
    int n = 0, steps = argc > 2 ? atoi(argv[2]) : 0;
    for (int i = 3; i < argc && n < CONTEXT; i++) ids[n++] = atoi(argv[i]);
    CAT(irc_, MODEL, ) *m = F(create)(0); /* 0: one thread per core */
    irc_st st; char err[1536];
    if (n == 0 || !m) return fprintf(stderr, "usage: %s weights.safetensors n_new id...\n", argv[0]), 2;
    if (irc_st_open_file(&st, argv[1], err, sizeof err) ||
        irc_st_load_params(&st, F(param_info)(0), F(param_count)(), F(params)(m), err, sizeof err))
        return fprintf(stderr, "%s: %s\n", argv[1], err), 1;
    irc_st_close(&st);
    int status = F(prefill)(m, ids, n, logits); /* the prompt, once, into the cache */
    while (!status && steps-- > 0 && n < CONTEXT) {
        int best = 0; uint32_t bits;
        for (int v = 1; v < VOCAB; v++) if (logits[v] > logits[best]) best = v;
        memcpy(&bits, &logits[best], 4), ids[n++] = best;
        printf("step %d: token %d logit %.6f (%08x)\n", n, best, logits[best], (unsigned)bits);
        if (steps > 0 && n < CONTEXT) status = F(decode)(m, best, logits); /* one new token */
    }
    if (status) return fprintf(stderr, "%s\n", F(last_error)(m)), 1;
    for (int i = 0; i < n; i++) printf(i ? " %d" : "ids: %d", ids[i]);
    printf("\n"), F(destroy)(m);
}
