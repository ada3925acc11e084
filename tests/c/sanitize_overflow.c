/* Writes one float past an activation buffer of a sanitized build, as a
 * kernel with an off-by-one would (tests/sanitize.rs): AddressSanitizer must
 * abort on the guard gap. It includes model.c to reach the context's
 * activations. */
#include "model.c"
#include <stdio.h>

int main(void)
{
    irc_ctx *m = SAN_CREATE(1);
    int32_t tokens[1] = {1};
    static float logits[SAN_VOCAB];
    if (!m || SAN_FORWARD(m, tokens, 1, 1, logits))
        return 3;
    /* The first poisoned float: the one just past the first buffer. */
    size_t i = 0;
    while (i < m->acts_floats && !__asan_address_is_poisoned(m->acts + i))
        i++;
    if (i == m->acts_floats || i == 0) {
        fprintf(stderr, "no guard gap in the activations\n");
        return 4;
    }
    fprintf(stderr, "writing acts[%zu], one past a buffer\n", i);
    m->acts[i] = 1.0f;
    fprintf(stderr, "not caught\n");
    return 5;
}
