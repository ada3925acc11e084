/* Runs every program of a sanitized irc library once (tests/sanitize.rs):
 * forward, loss, the training step (backward and AdamW), prefill and decode.
 * Compiled with -fsanitize=address,undefined against the library, so any
 * out-of-bounds access, use of poisoned guard gaps, leak or undefined
 * behaviour aborts it. -DP=<prefix> and -DU=<PREFIX> name the model. */
#include <stdio.h>
#include <stdlib.h>
#include "irc_model.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(n) CAT(CAT(P, _), n)
#define DEF(n) CAT(CAT(U, _), n)

enum { B = DEF(MAX_BATCH), T = DEF(MAX_SEQ), V = DEF(VOCAB), CTX = DEF(CONTEXT) };

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
    /* Small deterministic parameters, one table entry at a time. */
    float *params = FN(params)(m);
    unsigned s = 1;
    for (int i = 0; i < FN(param_count)(); i++) {
        const irc_param_info *p = FN(param_info)(i);
        for (size_t j = 0; j < p->numel; j++) {
            s = s * 1103515245u + 12345u;
            params[p->offset + j] = (float)((s >> 9) & 0xffff) / 65536.0f * 0.04f - 0.02f;
        }
    }
    static int32_t tokens[B * T], targets[B * T];
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (i * 7) % V;
        targets[i] = (i * 7 + 1) % V;
    }
    float *logits = malloc(sizeof(float) * B * T * V), loss = 0, norm = 0;
    ok(m, FN(forward)(m, tokens, B, T, logits), "forward");
    ok(m, FN(loss)(m, tokens, targets, B, T, &loss, NULL), "loss");
    FN(zero_grads)(m);
    ok(m, FN(backward)(m, tokens, targets, B, T, &loss), "backward");
    ok(m, FN(backward)(m, tokens, targets, 1, T / 2 + 1, &loss), "backward (a shorter batch)");
    irc_adamw_config cfg = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 1.0f, 1};
    ok(m, FN(adamw_step)(m, &cfg, &norm), "adamw_step");
    /* A short prompt (one prefill step), then a long one (chunks, then one
     * token at a time near the end of the context), each then decoded. */
    static int32_t prompt[CTX];
    for (int i = 0; i < CTX; i++)
        prompt[i] = (i * 5 + 3) % V;
    const int lengths[2] = {3, CTX - 2};
    for (int k = 0; k < 2; k++) {
        ok(m, FN(prefill)(m, prompt, lengths[k], logits), "prefill");
        for (int i = 0; i < 2; i++)
            ok(m, FN(decode)(m, (i * 11) % V, logits), "decode");
    }
    printf("ok loss %.6f grad norm %.6f logit %.6f\n", loss, norm, logits[0]);
    free(logits);
    FN(destroy)(m);
    return 0;
}
