/* Two irc models linked into one program (both static libraries): each gets
 * its own context, and greedy decoding interleaves them step by step.
 *   cc two_models.c -DHEADER_A='"a/irc_model.h"' -DMODEL_A=tiny_gpt2 -DMODEL_A_UC=TINY_GPT2 \
 *      -DHEADER_B='"b/irc_model.h"' -DMODEL_B=tiny_llama -DMODEL_B_UC=TINY_LLAMA \
 *      -Iruntime-c a/libirc_model.a b/libirc_model.a -fopenmp -lm -o two
 *   ./two a.safetensors b.safetensors N_NEW id...
 * prints, per model, the same lines as main.c does for that model alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include HEADER_A
#include HEADER_B
#include "irc_safetensors.h"

#define CAT_(a, b, c) a##b##c
#define CAT(a, b, c) CAT_(a, b, c)

/* One greedy step of a model: prefill the prompt ids[0..*n) the first time, then decode the
 * token appended last; append the argmax. */
#define DEFINE_STEP(MODEL, MODEL_UC)                                                              \
    static int CAT(step_, MODEL, )(CAT(irc_, MODEL, ) *m, int32_t *ids, int *n, char *line)      \
    {                                                                                             \
        enum { CONTEXT = CAT(IRC_, MODEL_UC, _CONTEXT), VOCAB = CAT(IRC_, MODEL_UC, _VOCAB) };    \
        static float row[VOCAB];                                                                  \
        static int started; /* the prompt is in the cache */                                      \
        if (*n >= CONTEXT)                                                                        \
            return 1;                                                                             \
        int status = started ? CAT(irc_, MODEL, _decode)(m, ids[*n - 1], row)                      \
                             : CAT(irc_, MODEL, _prefill)(m, ids, *n, row);                       \
        started = 1;                                                                              \
        if (status)                                                                               \
            return fprintf(stderr, "%s\n", CAT(irc_, MODEL, _last_error)(m)), 2;                  \
        int best = 0;                                                                             \
        uint32_t bits;                                                                            \
        for (int v = 1; v < VOCAB; v++)                                                           \
            if (row[v] > row[best])                                                               \
                best = v;                                                                         \
        memcpy(&bits, &row[best], 4);                                                             \
        ids[(*n)++] = best;                                                                       \
        sprintf(line, "step %d: token %d logit %.6f (%08x)", *n, best, row[best], (unsigned)bits); \
        return 0;                                                                                 \
    }                                                                                             \
    static CAT(irc_, MODEL, ) *CAT(open_, MODEL, )(const char *path)                              \
    {                                                                                             \
        CAT(irc_, MODEL, ) *m = CAT(irc_, MODEL, _create)(1);                                     \
        irc_st st;                                                                                \
        char err[1536];                                                                           \
        if (!m || irc_st_open_file(&st, path, err, sizeof err))                                   \
            return fprintf(stderr, "%s\n", m ? err : "out of memory"), NULL;                      \
        if (irc_st_load_params(&st, CAT(irc_, MODEL, _param_info)(0), CAT(irc_, MODEL, _param_count)(), \
                               CAT(irc_, MODEL, _params)(m), err, sizeof err))                    \
            return fprintf(stderr, "%s: %s\n", path, err), NULL;                                  \
        irc_st_close(&st);                                                                        \
        return m;                                                                                 \
    }

DEFINE_STEP(MODEL_A, MODEL_A_UC)
DEFINE_STEP(MODEL_B, MODEL_B_UC)

#define STR_(x) #x
#define STR(x) STR_(x)

int main(int argc, char **argv)
{
    if (argc < 5)
        return fprintf(stderr, "usage: %s a.safetensors b.safetensors n_new id...\n", argv[0]), 2;
    CAT(irc_, MODEL_A, ) *a = CAT(open_, MODEL_A, )(argv[1]);
    CAT(irc_, MODEL_B, ) *b = CAT(open_, MODEL_B, )(argv[2]);
    if (!a || !b)
        return 1;
    int32_t ia[1024], ib[1024];
    int na = 0, nb = 0, steps = atoi(argv[3]);
    for (int i = 4; i < argc && na < 1024; i++)
        ia[na++] = ib[nb++] = atoi(argv[i]);
    static char la[64][128], lb[64][128];
    int ka = 0, kb = 0;
    for (int s = 0; s < steps && s < 64; s++) { /* interleaved: A, B, A, B, ... */
        int ra = CAT(step_, MODEL_A, )(a, ia, &na, la[ka]);
        ka += ra == 0;
        int rb = CAT(step_, MODEL_B, )(b, ib, &nb, lb[kb]);
        kb += rb == 0;
        if (ra > 1 || rb > 1)
            return 1;
    }
    printf("== %s\n", STR(MODEL_A));
    for (int i = 0; i < ka; i++)
        printf("%s\n", la[i]);
    for (int i = 0; i < na; i++)
        printf(i ? " %d" : "ids: %d", ia[i]);
    printf("\n== %s\n", STR(MODEL_B));
    for (int i = 0; i < kb; i++)
        printf("%s\n", lb[i]);
    for (int i = 0; i < nb; i++)
        printf(i ? " %d" : "ids: %d", ib[i]);
    printf("\n");
    CAT(irc_, MODEL_A, _destroy)(a);
    CAT(irc_, MODEL_B, _destroy)(b);
    return 0;
}
