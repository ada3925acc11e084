/* Runs the loss (with the logits) and one training step's backward of an irc
 * library on deterministic parameters and tokens, and prints the loss, every
 * logit and every gradient, one number a line (tests/neon_qemu.rs compares
 * the NEON build under qemu with the scalar build). -DP=<prefix> and
 * -DU=<PREFIX> name the model. */
#include <stdio.h>
#include <stdlib.h>
#include "irc_model.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(n) CAT(CAT(P, _), n)
#define DEF(n) CAT(CAT(U, _), n)

enum { B = DEF(MAX_BATCH), T = DEF(MAX_SEQ), V = DEF(VOCAB) };

static void ok(P *m, int status, const char *what)
{
    if (status) {
        fprintf(stderr, "%s: %s\n", what, FN(last_error)(m));
        exit(2);
    }
}

int main(void)
{
    P *m = FN(create)(2);
    if (!m)
        return 3;
    /* Parameters in [-0.5, 0.5), norm weights around 1: scores spread enough
     * that the softmax is far from uniform. */
    float *params = FN(params)(m);
    unsigned s = 1;
    for (int i = 0; i < FN(param_count)(); i++) {
        const irc_param_info *p = FN(param_info)(i);
        for (size_t j = 0; j < p->numel; j++) {
            s = s * 1103515245u + 12345u;
            params[p->offset + j] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f + (p->ndim == 1 ? 1.0f : 0.0f);
        }
    }
    static int32_t tokens[B * T], targets[B * T];
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (i * 7 + i / 5) % V;
        targets[i] = i % 11 == 3 ? -100 : (i * 7 + 1) % V;
    }
    float *logits = malloc(sizeof(float) * B * T * V), loss = 0;
    ok(m, FN(loss)(m, tokens, targets, B, T, &loss, logits), "loss");
    printf("%.9g\n", loss);
    for (int i = 0; i < B * T * V; i++)
        printf("%.9g\n", logits[i]);
    FN(zero_grads)(m);
    ok(m, FN(backward)(m, tokens, targets, B, T, &loss), "backward");
    const float *grads = FN(grads)(m);
    for (int i = 0; i < FN(param_count)(); i++) {
        const irc_param_info *p = FN(param_info)(i);
        for (size_t j = 0; j < p->numel; j++)
            printf("%.9g\n", grads[p->offset + j]);
    }
    free(logits);
    FN(destroy)(m);
    return 0;
}
