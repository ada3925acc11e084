/* irc_safetensors.h — a small, header-only safetensors reader in C11.
 *
 * Format (https://github.com/huggingface/safetensors): 8 bytes little-endian
 * header length N, N bytes of JSON
 *     {"__metadata__": {...}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 * then the data; offsets are relative to the start of the data.
 *
 * Every function is `static inline` and there is no global state, so the
 * header can be included in any number of translation units (and in several
 * generated models linked into one program). Malformed input never crashes:
 * every check fails with a message in the caller's buffer.
 *
 *     irc_st st;
 *     char err[256];
 *     if (irc_st_open_file(&st, "model.safetensors", err, sizeof err)) { puts(err); return 1; }
 *     const irc_st_tensor *t = irc_st_find(&st, "lm_head.weight");
 *     ... t->dtype, t->ndim, t->shape, t->nbytes ...
 *     if (irc_st_read(&st, t, dst, err, sizeof err)) { puts(err); ... }
 *     irc_st_close(&st);
 *
 * irc_st_open_file reads the header only and keeps the file open; irc_st_read
 * reads one tensor's bytes into place, so loading a checkpoint never holds the
 * whole file in memory. irc_st_open_mem parses bytes the caller holds (then
 * t->data points at each tensor, not necessarily aligned).
 *
 * irc_st_load_params() fills a parameter region from a table of
 * irc_param_info (the generated header's type): every name present, dtype
 * F32, exact shape, and no unknown tensors, or a message listing what is wrong.
 */
#ifndef IRC_SAFETENSORS_H
#define IRC_SAFETENSORS_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IRC_ST_MAX_DIMS 8
/* Same bound as the reference implementation: a header above 100 MB is refused. */
#define IRC_ST_MAX_HEADER ((uint64_t)100000000)
#define IRC_ST_MAX_DEPTH 64

#ifndef IRC_PARAM_INFO_DEFINED
#define IRC_PARAM_INFO_DEFINED
/* One parameter: its Hugging Face name, shape, and place in the parameter region. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
    size_t offset; /* in floats from the start of the parameter region */
    size_t numel;
} irc_param_info;
#endif

typedef struct {
    const char *name;            /* NUL-terminated, JSON escapes decoded */
    char dtype[12];              /* "F32", "BF16", "I32", ... */
    int ndim;
    int64_t shape[IRC_ST_MAX_DIMS];
    size_t begin, end;           /* data_offsets, relative to the data section */
    const unsigned char *data;   /* its bytes, NOT necessarily aligned (NULL when read from a file) */
    size_t nbytes;               /* end - begin */
} irc_st_tensor;

typedef struct {
    const unsigned char *bytes; /* the whole file, opened with irc_st_open_mem; else NULL */
    size_t len;                 /* the file's length */
    const unsigned char *data;  /* the data section in memory; else NULL */
    size_t data_len;
    char *header;               /* malloc'd copy of the JSON; tensor names point into it */
    irc_st_tensor *tensors;     /* malloc'd, in file order */
    size_t count;
    FILE *file;                 /* opened with irc_st_open_file: irc_st_read reads from it */
    uint64_t data_at;           /* where the data section starts in the file */
} irc_st;

/* ------------------------------------------------------------------------- */

static inline int irc_st__err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return 1;
}

/* Bytes per element of a safetensors dtype; 0 if unknown. */
static inline size_t irc_st_dtype_size(const char *dtype)
{
    static const struct { const char *name; size_t size; } T[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
        {"I16", 2}, {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},
        {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (strcmp(T[i].name, dtype) == 0)
            return T[i].size;
    return 0;
}

typedef struct {
    char *p, *end;
    char *err;
    size_t errlen;
} irc_st__json;

static inline void irc_st__ws(irc_st__json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static inline int irc_st__expect(irc_st__json *j, char c, const char *what)
{
    irc_st__ws(j);
    if (j->p >= j->end || *j->p != c)
        return irc_st__err(j->err, j->errlen, "safetensors header: bad JSON: expected %s", what);
    j->p++;
    return 0;
}

static inline int irc_st__hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode a JSON string in place; *out points at the NUL-terminated result. */
static inline int irc_st__string(irc_st__json *j, char **out)
{
    if (irc_st__expect(j, '"', "a string"))
        return 1;
    char *w = j->p, *start = j->p;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"') {
            *w = '\0'; /* w < j->p: the closing quote is already consumed */
            *out = start;
            return 0;
        }
        if (c < 0x20)
            return irc_st__err(j->err, j->errlen, "safetensors header: bad JSON: control character in a string");
        if (c != '\\') {
            *w++ = (char)c;
            continue;
        }
        if (j->p >= j->end)
            break;
        char e = *j->p++;
        switch (e) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            if (j->end - j->p < 4)
                return irc_st__err(j->err, j->errlen, "safetensors header: bad JSON: short \\u escape");
            unsigned v = 0;
            for (int k = 0; k < 4; k++) {
                int h = irc_st__hex(j->p[k]);
                if (h < 0)
                    return irc_st__err(j->err, j->errlen, "safetensors header: bad JSON: bad \\u escape");
                v = v * 16 + (unsigned)h;
            }
            j->p += 4;
            /* UTF-8 of a BMP code point: at most 3 bytes, never more than the 6 read. */
            if (v == 0)
                return irc_st__err(j->err, j->errlen, "safetensors header: bad JSON: \\u0000 in a string");
            if (v >= 0xD800 && v <= 0xDFFF)
                return irc_st__err(j->err, j->errlen, "safetensors header: surrogate \\u escapes are not supported");
            if (v < 0x80) {
                *w++ = (char)v;
            } else if (v < 0x800) {
                *w++ = (char)(0xC0 | (v >> 6));
                *w++ = (char)(0x80 | (v & 0x3F));
            } else {
                *w++ = (char)(0xE0 | (v >> 12));
                *w++ = (char)(0x80 | ((v >> 6) & 0x3F));
                *w++ = (char)(0x80 | (v & 0x3F));
            }
            break;
        }
        default:
            return irc_st__err(j->err, j->errlen, "safetensors header: bad JSON: bad escape \\%c", e);
        }
    }
    return irc_st__err(j->err, j->errlen, "safetensors header: bad JSON: unterminated string");
}

/* A non-negative integer that fits in 2^53 (JSON's exact range). */
static inline int irc_st__uint(irc_st__json *j, uint64_t *out, const char *what)
{
    irc_st__ws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return irc_st__err(j->err, j->errlen, "safetensors header: %s: expected a non-negative integer", what);
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        v = v * 10 + (uint64_t)(*j->p++ - '0');
        if (v > ((uint64_t)1 << 53))
            return irc_st__err(j->err, j->errlen, "safetensors header: %s: integer too large", what);
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return irc_st__err(j->err, j->errlen, "safetensors header: %s: expected an integer", what);
    *out = v;
    return 0;
}

/* Skip any JSON value (used for __metadata__), with a depth bound. */
static inline int irc_st__skip(irc_st__json *j, int depth)
{
    if (depth > IRC_ST_MAX_DEPTH)
        return irc_st__err(j->err, j->errlen, "safetensors header: JSON nested too deeply");
    irc_st__ws(j);
    if (j->p >= j->end)
        return irc_st__err(j->err, j->errlen, "safetensors header: bad JSON: unexpected end");
    char c = *j->p;
    if (c == '"') {
        char *s = NULL;
        return irc_st__string(j, &s);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        irc_st__ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                char *k = NULL;
                if (irc_st__string(j, &k) || irc_st__expect(j, ':', "':'"))
                    return 1;
            }
            if (irc_st__skip(j, depth + 1))
                return 1;
            irc_st__ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            return irc_st__expect(j, close, close == '}' ? "',' or '}'" : "',' or ']'");
        }
    }
    /* number, true, false, null */
    const char *s = j->p;
    while (j->p < j->end && (strchr("+-.eE", *j->p) || (*j->p >= '0' && *j->p <= '9') ||
                             (*j->p >= 'a' && *j->p <= 'z')))
        j->p++;
    if (j->p == s)
        return irc_st__err(j->err, j->errlen, "safetensors header: bad JSON: unexpected '%c'", c);
    return 0;
}

/* One tensor entry: {"dtype": ..., "shape": [...], "data_offsets": [b, e]}. */
static inline int irc_st__entry(irc_st__json *j, irc_st_tensor *t)
{
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    char *err = j->err;
    size_t errlen = j->errlen;
    if (irc_st__expect(j, '{', "'{' (a tensor entry)"))
        return 1;
    irc_st__ws(j);
    if (j->p < j->end && *j->p == '}')
        return irc_st__err(err, errlen, "safetensors header: tensor `%s`: empty entry", t->name);
    for (;;) {
        char *key = NULL;
        if (irc_st__string(j, &key) || irc_st__expect(j, ':', "':'"))
            return 1;
        if (strcmp(key, "dtype") == 0) {
            char *d = NULL;
            if (have_dtype++ || irc_st__string(j, &d))
                return have_dtype > 1 ? irc_st__err(err, errlen, "safetensors header: tensor `%s`: dtype given twice", t->name) : 1;
            if (strlen(d) >= sizeof t->dtype || irc_st_dtype_size(d) == 0)
                return irc_st__err(err, errlen, "safetensors header: tensor `%s`: unknown dtype \"%.16s\"", t->name, d);
            strcpy(t->dtype, d);
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++)
                return irc_st__err(err, errlen, "safetensors header: tensor `%s`: shape given twice", t->name);
            if (irc_st__expect(j, '[', "'[' (shape)"))
                return 1;
            irc_st__ws(j);
            if (j->p < j->end && *j->p == ']') {
                j->p++; /* a scalar */
            } else {
                for (;;) {
                    uint64_t v = 0;
                    if (t->ndim >= IRC_ST_MAX_DIMS)
                        return irc_st__err(err, errlen, "safetensors header: tensor `%s`: more than %d dimensions", t->name, IRC_ST_MAX_DIMS);
                    if (irc_st__uint(j, &v, "shape"))
                        return 1;
                    t->shape[t->ndim++] = (int64_t)v;
                    irc_st__ws(j);
                    if (j->p < j->end && *j->p == ',') {
                        j->p++;
                        continue;
                    }
                    if (irc_st__expect(j, ']', "',' or ']' in shape"))
                        return 1;
                    break;
                }
            }
        } else if (strcmp(key, "data_offsets") == 0) {
            uint64_t b = 0, e = 0;
            if (have_offsets++)
                return irc_st__err(err, errlen, "safetensors header: tensor `%s`: data_offsets given twice", t->name);
            if (irc_st__expect(j, '[', "'[' (data_offsets)") || irc_st__uint(j, &b, "data_offsets") ||
                irc_st__expect(j, ',', "',' in data_offsets") || irc_st__uint(j, &e, "data_offsets") ||
                irc_st__expect(j, ']', "']' after two data_offsets"))
                return 1;
            t->begin = (size_t)b;
            t->end = (size_t)e;
        } else {
            return irc_st__err(err, errlen, "safetensors header: tensor `%s`: unknown field \"%.32s\"", t->name, key);
        }
        irc_st__ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (irc_st__expect(j, '}', "',' or '}' in a tensor entry"))
            return 1;
        break;
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return irc_st__err(err, errlen, "safetensors header: tensor `%s`: missing %s", t->name,
                           !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return 0;
}

static inline int irc_st__by_begin(const void *a, const void *b)
{
    const irc_st_tensor *x = *(const irc_st_tensor *const *)a, *y = *(const irc_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static inline void irc_st_close(irc_st *st)
{
    if (!st)
        return;
    free(st->header);
    free(st->tensors);
    if (st->file)
        fclose(st->file);
    memset(st, 0, sizeof *st);
}

/* The JSON header's length from a file's first 8 bytes, checked against the
 * `len` bytes of the whole file. */
static inline int irc_st__header_len(const unsigned char *first8, uint64_t len, uint64_t *n, char *err, size_t errlen)
{
    if (len < 8)
        return irc_st__err(err, errlen, "safetensors: truncated: %llu bytes, expected at least 8 (the header length)",
                           (unsigned long long)len);
    *n = 0;
    for (int i = 7; i >= 0; i--)
        *n = *n << 8 | first8[i];
    if (*n > IRC_ST_MAX_HEADER)
        return irc_st__err(err, errlen, "safetensors: header of %llu bytes is too large (limit %llu)",
                           (unsigned long long)*n, (unsigned long long)IRC_ST_MAX_HEADER);
    if (*n > len - 8)
        return irc_st__err(err, errlen, "safetensors: truncated: the header says %llu bytes of JSON but only %llu follow",
                           (unsigned long long)*n, (unsigned long long)(len - 8));
    if (*n < 2)
        return irc_st__err(err, errlen, "safetensors header: %llu bytes is too short for a JSON object", (unsigned long long)*n);
    return 0;
}

/* Parse the n bytes of JSON in `header` (malloc'd, n + 1 bytes, NUL-terminated; st takes it) and
 * check every entry against st->data_len; on failure st is closed. */
static inline int irc_st__parse(irc_st *st, char *header, uint64_t n, char *err, size_t errlen)
{
    st->header = header;
    /* An upper bound on the entries: every entry has a ':' after its name. */
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += st->header[i] == '{';
    st->tensors = calloc(cap, sizeof *st->tensors);
    if (!st->tensors) {
        irc_st_close(st);
        return irc_st__err(err, errlen, "safetensors: out of memory for %zu tensor entries", cap);
    }

    irc_st__json j = {st->header, st->header + n, err, errlen};
    int bad = irc_st__expect(&j, '{', "'{' at the start of the header");
    irc_st__ws(&j);
    if (!bad && j.p < j.end && *j.p == '}') {
        j.p++;
    } else {
        while (!bad) {
            char *name = NULL;
            if ((bad = irc_st__string(&j, &name) || irc_st__expect(&j, ':', "':'")))
                break;
            if (strcmp(name, "__metadata__") == 0) {
                if ((bad = irc_st__skip(&j, 0)))
                    break;
            } else {
                for (size_t i = 0; i < st->count; i++)
                    if (strcmp(st->tensors[i].name, name) == 0) {
                        bad = irc_st__err(err, errlen, "safetensors header: tensor `%s` appears twice", name);
                        break;
                    }
                if (bad || st->count >= cap) {
                    if (!bad)
                        bad = irc_st__err(err, errlen, "safetensors header: bad JSON: a tensor entry is not an object");
                    break;
                }
                irc_st_tensor *t = &st->tensors[st->count++];
                t->name = name;
                if ((bad = irc_st__entry(&j, t)))
                    break;
            }
            irc_st__ws(&j);
            if (j.p < j.end && *j.p == ',') {
                j.p++;
                continue;
            }
            bad = irc_st__expect(&j, '}', "',' or '}' after a tensor");
            break;
        }
    }
    if (!bad) {
        irc_st__ws(&j);
        if (j.p != j.end)
            bad = irc_st__err(err, errlen, "safetensors header: unexpected bytes after the JSON object");
    }
    /* Sizes: shape x dtype = data_offsets span, inside the data section. */
    for (size_t i = 0; !bad && i < st->count; i++) {
        irc_st_tensor *t = &st->tensors[i];
        uint64_t elems = 1;
        for (int d = 0; d < t->ndim; d++) {
            uint64_t s = (uint64_t)t->shape[d];
            if (s && elems > UINT64_MAX / 16 / s) {
                bad = irc_st__err(err, errlen, "safetensors header: tensor `%s`: shape overflows", t->name);
                break;
            }
            elems *= s;
        }
        if (bad)
            break;
        uint64_t want = elems * irc_st_dtype_size(t->dtype);
        if (t->end < t->begin)
            bad = irc_st__err(err, errlen, "safetensors header: tensor `%s`: data_offsets [%zu, %zu] end before they begin",
                              t->name, t->begin, t->end);
        else if (t->end > st->data_len)
            bad = irc_st__err(err, errlen, "safetensors: tensor `%s`: data_offsets [%zu, %zu] run past the end of the data (%zu bytes; truncated file?)",
                              t->name, t->begin, t->end, st->data_len);
        else if ((uint64_t)(t->end - t->begin) != want)
            bad = irc_st__err(err, errlen, "safetensors header: tensor `%s`: %s shape of %llu elements needs %llu bytes, but data_offsets [%zu, %zu] hold %zu",
                              t->name, t->dtype, (unsigned long long)elems, (unsigned long long)want, t->begin, t->end, t->end - t->begin);
        t->data = st->data ? st->data + t->begin : NULL;
        t->nbytes = t->end - t->begin;
    }
    /* Layout: tensors tile the data section exactly, no overlap, no gap. */
    if (!bad && st->count) {
        const irc_st_tensor **order = malloc(st->count * sizeof *order);
        if (!order) {
            bad = irc_st__err(err, errlen, "safetensors: out of memory");
        } else {
            for (size_t i = 0; i < st->count; i++)
                order[i] = &st->tensors[i];
            qsort(order, st->count, sizeof *order, irc_st__by_begin);
            size_t at = 0;
            for (size_t i = 0; i < st->count && !bad; i++) {
                const irc_st_tensor *t = order[i];
                if (t->begin < at)
                    bad = irc_st__err(err, errlen, "safetensors: tensor `%s` at [%zu, %zu] overlaps `%s` (which ends at %zu)",
                                      t->name, t->begin, t->end, order[i - 1]->name, at);
                else if (t->begin > at)
                    bad = irc_st__err(err, errlen, "safetensors: tensor `%s` starts at %zu, expected %zu (a gap in the data)",
                                      t->name, t->begin, at);
                at = t->end;
            }
            if (!bad && at != st->data_len)
                bad = irc_st__err(err, errlen, "safetensors: the tensors cover %zu bytes, but the data section has %zu", at, st->data_len);
            free(order);
        }
    } else if (!bad && st->data_len) {
        bad = irc_st__err(err, errlen, "safetensors: no tensors, but %zu bytes of data", st->data_len);
    }
    if (bad) {
        irc_st_close(st);
        return 1;
    }
    return 0;
}

/* Parse a safetensors file held in memory. The bytes must outlive `st`.
 * Returns 0, or non-zero with a message in err. */
static inline int irc_st_open_mem(irc_st *st, const unsigned char *bytes, size_t len, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    uint64_t n = 0;
    if (!bytes)
        len = 0;
    if (irc_st__header_len(bytes, len, &n, err, errlen))
        return 1;
    char *header = malloc((size_t)n + 1);
    if (!header)
        return irc_st__err(err, errlen, "safetensors: out of memory for a %llu-byte header", (unsigned long long)n);
    memcpy(header, bytes + 8, (size_t)n);
    header[n] = '\0';
    st->bytes = bytes;
    st->len = len;
    st->data = bytes + 8 + n;
    st->data_len = len - 8 - (size_t)n;
    return irc_st__parse(st, header, n, err, errlen);
}

/* Open a file and parse its header; the tensors stay in the file until irc_st_read reads them
 * (the file is open until irc_st_close). The message names the file. */
static inline int irc_st_open_file(irc_st *st, const char *path, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    FILE *f = fopen(path, "rb");
    if (!f)
        return irc_st__err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    /* Unbuffered: each tensor is read straight into place, and a read sees the file as it is now. */
    setvbuf(f, NULL, _IONBF, 0);
    long end = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    unsigned char first8[8];
    char inner[400];
    uint64_t n = 0;
    if (end < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return irc_st__err(err, errlen, "%s: cannot tell its size (not a regular file?)", path);
    }
    size_t got = fread(first8, 1, 8, f);
    if (irc_st__header_len(first8, got < 8 ? got : (uint64_t)end, &n, inner, sizeof inner)) {
        fclose(f);
        return irc_st__err(err, errlen, "%s: %s", path, inner);
    }
    char *header = malloc((size_t)n + 1);
    const char *why = !header ? "out of memory for the header"
                      : fread(header, 1, (size_t)n, f) != (size_t)n ? "read error in the header" : NULL;
    if (why) {
        free(header);
        fclose(f);
        return irc_st__err(err, errlen, "%s: %s", path, why);
    }
    header[n] = '\0';
    st->len = (size_t)end;
    st->data_len = (size_t)((uint64_t)end - 8 - n);
    st->data_at = 8 + n;
    st->file = f;
    if (irc_st__parse(st, header, n, inner, sizeof inner))
        return irc_st__err(err, errlen, "%s: %s", path, inner);
    return 0;
}

/* Copy tensor t's bytes (t->nbytes) to dst: from memory, or read from the file. */
static inline int irc_st_read(const irc_st *st, const irc_st_tensor *t, void *dst, char *err, size_t errlen)
{
    if (!st->file) {
        if (t->nbytes)
            memcpy(dst, t->data, t->nbytes);
        return 0;
    }
    uint64_t at = st->data_at + t->begin;
    if (at > (uint64_t)LONG_MAX || fseek(st->file, (long)at, SEEK_SET) != 0 ||
        fread(dst, 1, t->nbytes, st->file) != t->nbytes)
        return irc_st__err(err, errlen, "tensor `%s`: cannot read its %zu bytes at offset %llu (was the file cut short?)",
                           t->name, t->nbytes, (unsigned long long)at);
    return 0;
}

static inline const irc_st_tensor *irc_st_find(const irc_st *st, const char *name)
{
    for (size_t i = 0; i < st->count; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

/* Tensors a checkpoint may carry that are not parameters: GPT-2 attention
 * masks, rotary frequencies and a tied head stored anyway (Hugging Face), and
 * the AdamW moments of an irc training checkpoint (`optimizer.*`). */
static inline int irc_st__ignorable(const char *name)
{
    size_t n = strlen(name);
#define IRC_ST__ENDS(s) (n >= sizeof(s) - 1 && strcmp(name + n - (sizeof(s) - 1), s) == 0)
    int r = strcmp(name, "lm_head.weight") == 0 || strncmp(name, "optimizer.", 10) == 0 ||
            (strncmp(name, "transformer.h.", 14) == 0 && IRC_ST__ENDS(".attn.bias")) ||
            IRC_ST__ENDS(".attn.masked_bias") || IRC_ST__ENDS("rotary_emb.inv_freq");
#undef IRC_ST__ENDS
    return r;
}

/* A list of problems: the first few kept, the rest counted. */
typedef struct {
    char text[640];
    size_t used;
    int count;
} irc_st__list;

static inline void irc_st__problem(irc_st__list *l, const char *fmt, ...)
{
    if (++l->count > 6 || l->used + 1 >= sizeof l->text)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->text + l->used, sizeof l->text - l->used, fmt, ap);
    va_end(ap);
    if (k > 0)
        l->used = l->used + (size_t)k < sizeof l->text ? l->used + (size_t)k : sizeof l->text - 1;
}

/* Copy every parameter of `params` (n entries) from `st` into `dst`, checking
 * names, dtype F32 and shapes first: on any problem nothing is copied and err
 * lists the problems (missing or wrong tensors, then unexpected ones). A file
 * is read tensor by tensor straight into place; only a read error part way
 * (the file cut short since it was opened) leaves dst partly written. Assumes
 * a little-endian host, as the generated C does. */
static inline int irc_st_load_params(const irc_st *st, const irc_param_info *params, int n, float *dst,
                                     char *err, size_t errlen)
{
    irc_st__list wrong = {"", 0, 0}, extra = {"", 0, 0};
    for (int i = 0; i < n; i++) {
        const irc_param_info *p = &params[i];
        const irc_st_tensor *t = irc_st_find(st, p->name);
        char want[96] = "", got[96] = "";
        size_t w = 0, g = 0;
        for (int d = 0; d < p->ndim && w < sizeof want; d++)
            w += (size_t)snprintf(want + w, sizeof want - w, d ? ", %lld" : "%lld", (long long)p->shape[d]);
        if (!t) {
            irc_st__problem(&wrong, "\n  missing `%s` [%s]", p->name, want);
            continue;
        }
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++)
            same = t->shape[d] == p->shape[d];
        for (int d = 0; d < t->ndim && g < sizeof got; d++)
            g += (size_t)snprintf(got + g, sizeof got - g, d ? ", %lld" : "%lld", (long long)t->shape[d]);
        if (strcmp(t->dtype, "F32") != 0)
            irc_st__problem(&wrong, "\n  `%s` is %s, expected F32", p->name, t->dtype);
        else if (!same)
            irc_st__problem(&wrong, "\n  `%s` has shape [%s], expected [%s]", p->name, got, want);
    }
    for (size_t i = 0; i < st->count; i++) {
        const char *name = st->tensors[i].name;
        int known = irc_st__ignorable(name);
        for (int k = 0; !known && k < n; k++)
            known = strcmp(params[k].name, name) == 0;
        if (!known)
            irc_st__problem(&extra, "\n  unexpected tensor `%s` (not a parameter of this model)", name);
    }
    int count = wrong.count + extra.count;
    if (count) {
        char more_w[48] = "", more_e[48] = "";
        if (wrong.count > 6)
            snprintf(more_w, sizeof more_w, "\n  ... and %d more like it", wrong.count - 6);
        if (extra.count > 6)
            snprintf(more_e, sizeof more_e, "\n  ... and %d more like it", extra.count - 6);
        return irc_st__err(err, errlen, "weights do not fit the model (%d problem%s):%s%s%s%s", count,
                           count == 1 ? "" : "s", wrong.text, more_w, extra.text, more_e);
    }
    for (int i = 0; i < n; i++)
        if (irc_st_read(st, irc_st_find(st, params[i].name), dst + params[i].offset, err, errlen))
            return 1;
    return 0;
}

#endif /* IRC_SAFETENSORS_H */
