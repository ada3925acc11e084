/* Fuzz harness of the C safetensors reader (runtime-c/irc_safetensors.h),
 * doing what an emitted model's `*_load_weights_mem` does: open the bytes,
 * then check them against a parameter table and copy the parameters.
 *
 * libFuzzer (clang):
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -I../../runtime-c safetensors.c -o st-fuzz
 *     ./st-fuzz ../corpus-run/c_safetensors ../corpus/c_safetensors
 * Any C compiler, over files (what tests/fuzz_regressions.rs does):
 *     cc -DIRC_FUZZ_MAIN -fsanitize=address,undefined -I../../runtime-c safetensors.c -o st-replay
 *     ./st-replay FILE...
 */
#include "irc_safetensors.h"

static const irc_param_info PARAMS[] = {
    {"a.weight", 2, {2, 3, 0, 0}, 0, 6},
    {"b.bias", 1, {3, 0, 0, 0}, 6, 3},
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    irc_st st;
    char err[512] = "";
    float params[9];
    if (irc_st_open_mem(&st, data, size, err, sizeof err) == 0) {
        for (size_t i = 0; i < st.count; i++) {
            const irc_st_tensor *t = irc_st_find(&st, st.tensors[i].name);
            if (t != &st.tensors[i] && strcmp(t->name, st.tensors[i].name) != 0)
                abort();
            volatile unsigned char sink = 0;
            for (size_t k = 0; k < t->nbytes; k++)
                sink ^= t->data[k];
            (void)sink;
        }
        irc_st_load_params(&st, PARAMS, 2, params, err, sizeof err);
        irc_st_close(&st);
    }
    /* Every message is a terminated string within the buffer. */
    if (memchr(err, '\0', sizeof err) == NULL)
        abort();
    return 0;
}

#ifdef IRC_FUZZ_MAIN
/* Replay files: exit 0 when every one ran through (errors are fine). */
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        unsigned char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
            if (len == cap) {
                cap = cap ? cap * 2 : 4096;
                buf = realloc(buf, cap);
                if (!buf)
                    return 3;
            }
            size_t got = fread(buf + len, 1, cap - len, f);
            len += got;
            if (got == 0)
                break;
        }
        fclose(f);
        /* An exact-size copy, so that a read past the end is caught. */
        unsigned char *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    return 0;
}
#endif
