/* Tests of runtime-c/irc_safetensors.h: hand-built valid and malformed files,
 * every truncation and many byte flips of a valid file (run under the
 * sanitizers by tests/hosts.rs when the compiler has them), the parameter
 * loader from memory and from a file (it writes st_test.safetensors in the
 * current folder), and any files named on the command line (listed, one tensor a
 * line, for tests/hosts.rs to compare with the Rust safetensors crate). */
#include "irc_safetensors.h"

#include <stdio.h>

static int failures, checks;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                    \
            printf(__VA_ARGS__);                                           \
            printf("\n");                                                  \
        }                                                                  \
    } while (0)

/* header length (8 bytes LE) + JSON + data, into buf; returns the length. */
static size_t make(unsigned char *buf, const char *json, const void *data, size_t dlen)
{
    size_t n = strlen(json);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, json, n);
    if (dlen)
        memcpy(buf + 8 + n, data, dlen);
    return 8 + n + dlen;
}

/* Expect a parse error containing `want`. */
static void bad(const char *what, const unsigned char *buf, size_t len, const char *want)
{
    irc_st st;
    char err[512] = "";
    int rc = irc_st_open_mem(&st, buf, len, err, sizeof err);
    CHECK(rc != 0, "%s: accepted", what);
    CHECK(strstr(err, want) != NULL, "%s: error \"%s\" does not contain \"%s\"", what, err, want);
    if (rc == 0)
        irc_st_close(&st);
}

static void bad_json(const char *what, const char *json, size_t dlen, const char *want)
{
    static unsigned char buf[1 << 16];
    static const unsigned char zeros[256];
    bad(what, buf, make(buf, json, zeros, dlen), want);
}

static void valid(void)
{
    unsigned char buf[1024];
    float w[4] = {1.5f, -2.0f, 3.25f, 0.0f};
    int32_t ids[3] = {7, -8, 9};
    unsigned char data[28];
    memcpy(data, w, 16);
    memcpy(data + 16, ids, 12);
    const char *json = "{\"__metadata__\":{\"format\":\"pt\",\"nested\":[1,{\"a\":null},true]},"
                       " \"w\" : {\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                       "\"a\\u00e9\\\"b\":{\"data_offsets\":[16,28],\"shape\":[3],\"dtype\":\"I32\"}}   ";
    size_t len = make(buf, json, data, sizeof data);
    irc_st st;
    char err[256] = "";
    int rc = irc_st_open_mem(&st, buf, len, err, sizeof err);
    CHECK(rc == 0, "valid file rejected: %s", err);
    if (rc)
        return;
    CHECK(st.count == 2, "count %zu", st.count);
    const irc_st_tensor *t = irc_st_find(&st, "w");
    CHECK(t && strcmp(t->dtype, "F32") == 0 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 2 &&
              t->nbytes == 16, "tensor w");
    if (t) {
        float back[4];
        memcpy(back, t->data, 16);
        CHECK(memcmp(back, w, 16) == 0, "tensor w data");
    }
    t = irc_st_find(&st, "a\xc3\xa9\"b");
    CHECK(t && strcmp(t->dtype, "I32") == 0 && t->ndim == 1 && t->shape[0] == 3, "escaped name");
    if (t) {
        int32_t back[3];
        memcpy(back, t->data, 12);
        CHECK(back[1] == -8, "tensor a data");
    }
    CHECK(irc_st_find(&st, "nope") == NULL, "find of a missing name");
    irc_st_close(&st);
    irc_st_close(&st); /* closing twice is harmless */

    /* No tensors at all; a scalar; a zero-sized tensor. */
    rc = irc_st_open_mem(&st, buf, make(buf, "{}", NULL, 0), err, sizeof err);
    CHECK(rc == 0 && st.count == 0, "empty header: %s", err);
    irc_st_close(&st);
    rc = irc_st_open_mem(&st, buf, make(buf, "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                                             "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]}}", data, 8),
                         err, sizeof err);
    CHECK(rc == 0 && st.count == 2 && irc_st_find(&st, "s")->ndim == 0 && irc_st_find(&st, "z")->nbytes == 0,
          "scalar and empty tensor: %s", err);
    irc_st_close(&st);
}

static void malformed(void)
{
    unsigned char buf[4096] = {0};
    static const unsigned char zeros[64];
    bad("empty file", buf, 0, "truncated");
    bad("7 bytes", zeros, 7, "truncated");
    make(buf, "{}", NULL, 0);
    buf[0] = 200;
    bad("header past the end", buf, 10, "truncated");
    memset(buf, 0xff, 8);
    bad("huge header", buf, 16, "too large");
    bad("NULL bytes", NULL, 100, "truncated");

    bad_json("not an object", "[1,2]", 0, "expected '{'");
    bad_json("unterminated", "{\"a\":{\"dtype\":\"F32\"", 0, "bad JSON");
    bad_json("unterminated string", "{\"abc", 0, "unterminated string");
    bad_json("trailing garbage", "{} x", 0, "after the JSON object");
    bad_json("missing colon", "{\"a\" {}}", 0, "expected ':'");
    bad_json("bad escape", "{\"a\\q\":{}}", 0, "bad escape");
    bad_json("control char", "{\"a\nb\":{}}", 0, "control character");
    bad_json("missing comma", "{\"a\":{\"dtype\":\"F32\" \"shape\":[1]}}", 0, "',' or '}'");
    bad_json("entry not an object", "{\"a\":5}", 0, "expected '{'");
    bad_json("empty entry", "{\"a\":{}}", 0, "empty entry");
    bad_json("missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing data_offsets");
    bad_json("missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing dtype");
    bad_json("unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype");
    bad_json("unknown field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unknown field");
    bad_json("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative integer");
    bad_json("float dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, "expected an integer");
    bad_json("huge dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4, "too large");
    bad_json("overflowing shape",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[9007199254740992,9007199254740992],\"data_offsets\":[0,4]}}", 4,
             "overflows");
    bad_json("nine dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
             "more than 8");
    bad_json("one offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets");
    bad_json("three offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "']'");
    bad_json("dtype twice", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "twice");
    bad_json("name twice",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             8, "appears twice");
    bad_json("offsets past the end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "past the end");
    bad_json("reversed offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "end before");
    bad_json("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes");
    bad_json("overlap",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12, "overlaps");
    bad_json("gap",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
             12, "gap");
    bad_json("trailing data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover 4 bytes");
    bad_json("data but no tensors", "{}", 4, "no tensors");
    bad_json("short \\u", "{\"a\\u12", 0, "\\u");
    bad_json("surrogate", "{\"\\ud800\":{}}", 0, "surrogate");

    /* Deep metadata nesting is refused, not a stack overflow. */
    static char deep[2 * 1000 + 64];
    strcpy(deep, "{\"__metadata__\":");
    size_t k = strlen(deep);
    for (int i = 0; i < 1000; i++)
        deep[k++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = '\0';
    bad_json("deep nesting", deep, 0, "nested too deeply");
}

/* Every strict prefix of a valid file fails; every single-byte change either
 * parses or fails cleanly (the sanitizers catch anything else). */
static void mutations(void)
{
    unsigned char buf[512], copy[512];
    float w[6] = {1, 2, 3, 4, 5, 6};
    size_t len = make(buf, "{\"__metadata__\":{\"k\":\"v\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                           "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", w, 24);
    irc_st st;
    char err[256];
    for (size_t n = 0; n < len; n++) {
        /* a heap copy of exactly n bytes, so reading past it is caught */
        unsigned char *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        int rc = irc_st_open_mem(&st, p, n, err, sizeof err);
        CHECK(rc != 0, "prefix of %zu bytes accepted", n);
        if (rc == 0)
            irc_st_close(&st);
        free(p);
    }
    static const unsigned char vals[] = {0, '"', '{', '}', '[', ']', ',', ':', '\\', '9', 'x', 0xff};
    int parsed = 0;
    for (size_t i = 0; i < len - 24; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(copy, buf, len);
            copy[i] = vals[v];
            unsigned char *p = malloc(len);
            memcpy(p, copy, len);
            if (irc_st_open_mem(&st, p, len, err, sizeof err) == 0) {
                parsed++;
                for (size_t t = 0; t < st.count; t++) { /* touch every byte it hands out */
                    volatile unsigned char sum = 0;
                    for (size_t b = 0; b < st.tensors[t].nbytes; b++)
                        sum ^= st.tensors[t].data[b];
                    (void)sum;
                    CHECK(st.tensors[t].data + st.tensors[t].nbytes <= p + len, "tensor past the buffer");
                }
                irc_st_close(&st);
            }
            free(p);
        }
    CHECK(parsed > 0, "no mutation parsed (the unchanged bytes should)");
}

/* The parameter loader's file: b (2) at floats 6..8 of data, a (2 x 3) at 0..6, a tied head at 8..10. */
static size_t params_file(unsigned char *buf, const float *data)
{
    return make(buf, "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                     "\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]}}",
                data, 40);
}

static void load_params(void)
{
    float data[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    unsigned char buf[1024];
    size_t len = params_file(buf, data);
    irc_st st;
    char err[1024] = "";
    if (irc_st_open_mem(&st, buf, len, err, sizeof err)) {
        CHECK(0, "load_params fixture: %s", err);
        return;
    }
    irc_param_info ok[2] = {{"a", 2, {2, 3, 0, 0}, 2, 6}, {"b", 1, {2, 0, 0, 0}, 0, 2}};
    float region[8] = {0};
    CHECK(irc_st_load_params(&st, ok, 2, region, err, sizeof err) == 0, "load_params: %s", err);
    CHECK(region[0] == 7 && region[1] == 8 && region[2] == 1 && region[7] == 6, "load_params copied wrong");

    irc_param_info wrong[3] = {{"a", 2, {3, 2, 0, 0}, 0, 6}, {"c", 1, {4, 0, 0, 0}, 6, 4}, {"d", 1, {1, 0, 0, 0}, 10, 1}};
    float region2[11] = {0};
    CHECK(irc_st_load_params(&st, wrong, 3, region2, err, sizeof err) != 0, "mismatch accepted");
    CHECK(strstr(err, "4 problems") && strstr(err, "`a` has shape [2, 3], expected [3, 2]") &&
              strstr(err, "missing `c` [4]") && strstr(err, "missing `d` [1]") && strstr(err, "unexpected tensor `b`"),
          "mismatch message: %s", err);
    CHECK(region2[0] == 0, "params changed although loading failed");
    irc_st_close(&st);

    len = make(buf, "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", data, 4);
    irc_st_open_mem(&st, buf, len, err, sizeof err);
    irc_param_info half[1] = {{"a", 1, {2, 0, 0, 0}, 0, 2}};
    CHECK(irc_st_load_params(&st, half, 1, region, err, sizeof err) != 0 && strstr(err, "`a` is F16, expected F32"),
          "dtype message: %s", err);
    irc_st_close(&st);

    CHECK(irc_st_open_file(&st, "/nonexistent/w.safetensors", err, sizeof err) != 0 &&
              strstr(err, "/nonexistent/w.safetensors: cannot open"),
          "missing file: %s", err);
}

/* Write n bytes to `path`. */
static void put(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

/* The same file read from disk (the tensors straight into place, never the whole file): the same
 * parameters as from memory; every strict prefix refused, naming the file; a file cut short after
 * it was opened fails the read instead of copying garbage. Run in a scratch folder. */
static void from_file(void)
{
    float data[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    unsigned char buf[1024];
    size_t len = params_file(buf, data);
    const char *path = "st_test.safetensors";
    put(path, buf, len);
    irc_st st;
    char err[1024] = "";
    irc_param_info ok[2] = {{"a", 2, {2, 3, 0, 0}, 2, 6}, {"b", 1, {2, 0, 0, 0}, 0, 2}};
    float region[8] = {0};
    int rc = irc_st_open_file(&st, path, err, sizeof err);
    CHECK(rc == 0 && st.count == 3 && st.data == NULL && irc_st_find(&st, "a")->data == NULL, "open_file: %s", err);
    if (rc)
        return;
    CHECK(irc_st_load_params(&st, ok, 2, region, err, sizeof err) == 0, "load_params from a file: %s", err);
    CHECK(region[0] == 7 && region[1] == 8 && region[2] == 1 && region[7] == 6, "load_params from a file copied wrong");
    float head[2] = {0};
    CHECK(irc_st_read(&st, irc_st_find(&st, "lm_head.weight"), head, err, sizeof err) == 0 && head[0] == 9 &&
              head[1] == 10, "read of the last tensor: %s", err);
    /* Cut short under the open reader: the tensors past the end cannot be read. */
    put(path, buf, len - 12);
    memset(region, 0, sizeof region);
    CHECK(irc_st_load_params(&st, ok, 2, region, err, sizeof err) != 0 && strstr(err, "tensor `b`: cannot read its 8 bytes"),
          "a file cut short after opening: %s", err);
    irc_st_close(&st);
    for (size_t n = 0; n < len; n++) {
        put(path, buf, n);
        rc = irc_st_open_file(&st, path, err, sizeof err);
        CHECK(rc != 0 && strncmp(err, path, strlen(path)) == 0, "file prefix of %zu bytes: %s", n, rc ? err : "accepted");
        if (rc == 0)
            irc_st_close(&st);
    }
    remove(path);
}

/* FNV-1a of a tensor's bytes, for comparison with the Rust reader. */
static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv)
{
    valid();
    malformed();
    mutations();
    load_params();
    from_file();
    for (int a = 1; a < argc; a++) {
        irc_st st;
        char err[512];
        if (irc_st_open_file(&st, argv[a], err, sizeof err)) {
            CHECK(0, "%s", err);
            continue;
        }
        for (size_t i = 0; i < st.count; i++) {
            const irc_st_tensor *t = &st.tensors[i];
            printf("tensor %s %s [", t->name, t->dtype);
            for (int d = 0; d < t->ndim; d++)
                printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
            unsigned char *bytes = malloc(t->nbytes ? t->nbytes : 1);
            CHECK(bytes && irc_st_read(&st, t, bytes, err, sizeof err) == 0, "%s: %s", argv[a], err);
            printf("] %zu %016llx\n", t->nbytes, (unsigned long long)(bytes ? fnv(bytes, t->nbytes) : 0));
            free(bytes);
        }
        irc_st_close(&st);
    }
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
