/* fuzz_safetensors.c — libFuzzer target: the strict safetensors reader (model/safetensors.c).
 *
 * Input: a whole safetensors image, parsed in place by st_parse.
 *
 * Properties (abort on violation):
 *   - on failure, *out is NULL and err is non-empty, one line (no '\n'), NUL-terminated;
 *   - on success: the tensors lie inside the data section, in order, covering it exactly; each byte
 *     size is numel x dtype size; st_find finds every tensor by name; st_read_f32 converts every
 *     floating-point tensor (and refuses the others with a one-line error); st_read_raw copies;
 *   - st_write_mem of what was parsed (same order, same metadata) parses back to the same tensors,
 *     metadata and bytes, and writing that again gives the same image (the writer is canonical).
 * Self-contained (no tokenizer): it does not use fuzz_common.h.
 */
#include "safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERRLEN 512

#define CHECK(cond, ...)                                                                              \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            fprintf(stderr, "\nFUZZ PROPERTY VIOLATED at %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                                             \
            fprintf(stderr, "\n");                                                                    \
            abort();                                                                                  \
        }                                                                                             \
    } while (0)

static void err_reset(char *err) { memset(err, 0xA5, ERRLEN); }

static void check_err(const char *err, const char *call)
{
    const char *nul = memchr(err, 0, ERRLEN);
    CHECK(nul, "%s failed and err is not NUL-terminated", call);
    CHECK(nul > err, "%s failed with an empty error message", call);
    CHECK(!memchr(err, '\n', (size_t)(nul - err)), "%s failed with a multi-line error: %s", call, err);
}

static int is_float(st_dtype d)
{
    return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64 || d == ST_F8_E5M2 || d == ST_F8_E4M3;
}

/* structural checks of a parsed file; data/size: the image it was parsed from */
static void check_file(const st_file *f, const uint8_t *data, size_t size)
{
    char err[ERRLEN];
    size_t hl = st_header_len(f);
    CHECK(8 + hl <= size, "header length %zu past the image (%zu)", hl, size);
    const uint8_t *base = data + 8 + hl;
    size_t dlen = size - 8 - hl, at = 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_get(f, i);
        CHECK(t && t->index == i, "tensor %zu: bad index", i);
        CHECK(t->begin == at, "tensor %zu begins at %zu, previous ended at %zu", i, t->begin, at);
        CHECK(t->end >= t->begin && t->end <= dlen, "tensor %zu: [%zu, %zu) outside %zu", i, t->begin, t->end, dlen);
        CHECK(t->data == base + t->begin, "tensor %zu: data pointer", i);
        CHECK(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "tensor %zu: ndim %d", i, t->ndim);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
        CHECK(numel == t->numel, "tensor %zu: numel", i);
        CHECK(numel * st_dtype_size(t->dtype) == t->end - t->begin, "tensor %zu: byte size", i);
        CHECK(st_find(f, t->name) == t, "st_find(\"%s\") does not give tensor %zu", t->name, i);
        at = t->end;

        float *fl = malloc((t->numel ? t->numel : 1) * sizeof *fl);
        CHECK(fl, "out of memory");
        err_reset(err);
        int rc = st_read_f32(f, t, fl, t->numel, err, ERRLEN);
        if (is_float(t->dtype)) CHECK(rc == 0, "st_read_f32 of a %s tensor failed: %s", st_dtype_name(t->dtype), err);
        else {
            CHECK(rc == -1, "st_read_f32 of a %s tensor succeeded", st_dtype_name(t->dtype));
            check_err(err, "st_read_f32");
        }
        err_reset(err);
        CHECK(st_read_f32(f, t, fl, t->numel + 1, err, ERRLEN) == -1, "st_read_f32 with a wrong count succeeded");
        check_err(err, "st_read_f32");
        free(fl);
        size_t nb = t->end - t->begin;
        uint8_t *raw = malloc(nb ? nb : 1);
        CHECK(raw, "out of memory");
        err_reset(err);
        CHECK(st_read_raw(f, t, raw, nb, err, ERRLEN) == 0, "st_read_raw failed: %s", err);
        CHECK(nb == 0 || memcmp(raw, t->data, nb) == 0, "st_read_raw bytes differ");
        free(raw);
    }
    CHECK(at == dlen, "tensors cover %zu of %zu data bytes", at, dlen);
    for (size_t i = 0; i < st_metadata_count(f); i++) {
        const char *k, *v;
        CHECK(st_metadata_at(f, i, &k, &v) == 0, "st_metadata_at(%zu)", i);
        CHECK(st_metadata(f, k) == v, "st_metadata(\"%s\") is not entry %zu", k, i);
    }
}

/* st_write_mem of f's tensors (st_get order) and metadata */
static uint8_t *rewrite(const st_file *f, size_t *len)
{
    size_t n = st_count(f), nm = st_metadata_count(f);
    st_out *o = calloc(n ? n : 1, sizeof *o);
    st_meta *m = calloc(nm ? nm : 1, sizeof *m);
    CHECK(o && m, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_get(f, i);
        o[i].name = t->name;
        o[i].dtype = t->dtype;
        o[i].ndim = t->ndim;
        memcpy(o[i].shape, t->shape, sizeof o[i].shape);
        o[i].data = t->data;
    }
    for (size_t i = 0; i < nm; i++) st_metadata_at(f, i, &m[i].key, &m[i].value);
    uint8_t *b;
    char err[ERRLEN];
    err_reset(err);
    CHECK(st_write_mem(o, n, m, nm, &b, len, err, ERRLEN) == 0, "st_write_mem of a parsed file failed: %s", err);
    free(o);
    free(m);
    return b;
}

static void check_same(const st_file *a, const st_file *b)
{
    CHECK(st_count(a) == st_count(b), "tensor count %zu != %zu", st_count(a), st_count(b));
    for (size_t i = 0; i < st_count(a); i++) {
        const st_tensor *x = st_get(a, i), *y = st_get(b, i);
        CHECK(strcmp(x->name, y->name) == 0, "tensor %zu: name \"%s\" != \"%s\"", i, x->name, y->name);
        CHECK(x->dtype == y->dtype && x->ndim == y->ndim && x->begin == y->begin && x->end == y->end,
              "tensor \"%s\" differs after the round trip", x->name);
        CHECK(memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof *x->shape) == 0, "tensor \"%s\": shape", x->name);
        CHECK(x->end == x->begin || memcmp(x->data, y->data, x->end - x->begin) == 0, "tensor \"%s\": bytes", x->name);
    }
    CHECK(st_metadata_count(a) == st_metadata_count(b), "metadata count");
    for (size_t i = 0; i < st_metadata_count(a); i++) {
        const char *k1, *v1, *k2, *v2;
        st_metadata_at(a, i, &k1, &v1);
        st_metadata_at(b, i, &k2, &v2);
        CHECK(strcmp(k1, k2) == 0 && strcmp(v1, v2) == 0, "metadata entry %zu differs", i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ERRLEN];
    st_file *f = (st_file *)&err; /* must be reset to NULL on failure */
    err_reset(err);
    if (st_parse(data, size, "fuzz.safetensors", &f, err, ERRLEN)) {
        CHECK(f == NULL, "st_parse failed but set *out");
        check_err(err, "st_parse");
        CHECK(strncmp(err, "fuzz.safetensors", 16) == 0, "error does not name the file: %s", err);
        return 0;
    }
    CHECK(f, "st_parse succeeded without a file");
    check_file(f, data, size);

    size_t len1, len2;
    uint8_t *img1 = rewrite(f, &len1);
    st_file *g;
    err_reset(err);
    CHECK(st_parse(img1, len1, "rewritten", &g, err, ERRLEN) == 0, "the rewritten file does not parse: %s", err);
    check_file(g, img1, len1);
    check_same(f, g);
    CHECK(st_header_len(g) % 8 == 0, "written header length %zu is not a multiple of 8", st_header_len(g));
    uint8_t *img2 = rewrite(g, &len2);
    CHECK(len1 == len2 && memcmp(img1, img2, len1) == 0, "writing is not canonical (%zu vs %zu bytes)", len1, len2);
    free(img2);
    st_close(g);
    free(img1);
    st_close(f);
    return 0;
}
