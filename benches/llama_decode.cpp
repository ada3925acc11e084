// llama.cpp's side of benches/decode.sh: the same measurement as decode_host.c (prefill 16 token
// ids, decode greedily to the end of the context, ROUNDS times; the median decode rate, VmRSS
// after it and VmHWM) on a GGUF file, through llama.cpp's C API.
//
//   c++ -O2 llama_decode.cpp -ISRC/include -ISRC/ggml/include -LBIN -lllama -lggml -lggml-base \
//       -Wl,-rpath,BIN -o llama_decode
//   ./llama_decode model.gguf THREADS ROUNDS
#include "llama.h"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = atol(line + strlen(key));
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (argc != 4) return fprintf(stderr, "usage: %s model.gguf threads rounds\n", argv[0]), 2;
    const int threads = atoi(argv[2]), rounds = atoi(argv[3]);
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) return fprintf(stderr, "cannot load %s\n", argv[1]), 1;
    const int n_ctx = llama_model_n_ctx_train(model);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = 16;
    cp.n_ubatch = 16;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) return fprintf(stderr, "cannot make a context\n"), 1;
    std::vector<llama_token> prompt(16);
    for (int i = 0; i < 16; i++) prompt[i] = (i * 37 + 11) % n_vocab;
    std::vector<double> rates;
    for (int r = 0; r <= rounds; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        if (llama_decode(ctx, llama_batch_get_one(prompt.data(), 16))) return fprintf(stderr, "prefill failed\n"), 1;
        auto t0 = std::chrono::steady_clock::now();
        for (int n = 16; n < n_ctx; n++) {
            const float *l = llama_get_logits_ith(ctx, -1);
            llama_token best = (llama_token)(std::max_element(l, l + n_vocab) - l);
            if (llama_decode(ctx, llama_batch_get_one(&best, 1))) return fprintf(stderr, "decode failed\n"), 1;
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) rates.push_back((n_ctx - 16) / s);  // round 0 warms up
    }
    std::sort(rates.begin(), rates.end());
    printf("decode_tokens_per_s %.1f rss_kb %ld hwm_kb %ld\n", rates[rates.size() / 2], status_kb("VmRSS:"),
           status_kb("VmHWM:"));
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
