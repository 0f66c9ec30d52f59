/* safetensors.c — strict safetensors reader and atomic streaming writer. See safetensors.h.
 *
 * The header is parsed with jansson (JSON_REJECT_DUPLICATES); every check names the file and the
 * tensor (or the byte offset in the file). Tensor names come from the file, so they are shown with
 * control characters escaped and cut when long: an error message is always one line.
 */
#include "safetensors.h"

#include "fileio.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the format is little-endian)"
#endif

struct st_file {
    char *name;              /* for errors */
    uint8_t *owned;          /* st_open's buffer (NULL for st_parse) */
    const uint8_t *data;     /* the data section */
    size_t data_len;
    size_t header_len;
    st_tensor *t;            /* data order */
    size_t n;
    const st_tensor **by_name; /* into t, sorted by name */
    char **mkey, **mval;
    size_t n_meta;
};



/* ---- dtypes ------------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    size_t size;
} k_dtypes[ST_NUM_DTYPES] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},     [ST_F8_E5M2] = {"F8_E5M2", 1},
    [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_I16] = {"I16", 2}, [ST_U16] = {"U16", 2}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4},   [ST_U32] = {"U32", 4},   [ST_F32] = {"F32", 4},
    [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},   [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(st_dtype d) { return (unsigned)d < ST_NUM_DTYPES ? k_dtypes[d].name : "?"; }
size_t st_dtype_size(st_dtype d) { return (unsigned)d < ST_NUM_DTYPES ? k_dtypes[d].size : 0; }

int st_dtype_parse(const char *name, st_dtype *out)
{
    for (int i = 0; i < ST_NUM_DTYPES; i++)
        if (strcmp(name, k_dtypes[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    return -1;
}

/* ---- conversions ------------------------------------------------------------------------------- */

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F) return bits_f32(sign | 0x7F800000u | (m << 13)); /* inf, nan (payload kept) */
    if (e == 0) {                                                  /* zero, subnormal: m * 2^-24 */
        float v = (float)m * 0x1p-24f;                             /* exact: m < 2^10 */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

float st_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

static float e4m3_to_f32(uint8_t b)
{
    /* float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN */
    int e = (b >> 3) & 0xF, m = b & 7;
    float v;
    if (e == 0xF && m == 7) v = NAN;
    else if (e == 0) v = (float)m * 0x1p-9f;
    else v = ldexpf(1.0f + (float)m / 8.0f, e - 7);
    return (b & 0x80) ? -v : v;
}

static float f64_to_f32(double d)
{
    /* IEEE round to nearest; beyond FLT_MAX + half an ulp (2^128 - 2^103) the result is infinite */
    if (d >= 0x1.ffffffp127) return INFINITY;
    if (d <= -0x1.ffffffp127) return -INFINITY;
    return (float)d;
}

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* ---- reading ----------------------------------------------------------------------------------- */

void st_close(st_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free((char *)f->t[i].name);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->mkey[i]);
        free(f->mval[i]);
    }
    free(f->t);
    free(f->by_name);
    free(f->mkey);
    free(f->mval);
    free(f->owned);
    free(f->name);
    free(f);
}

static int cmp_data_order(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int parse_metadata(st_file *f, json_t *md, char *err, size_t errlen)
{
    char kb[128];
    if (!json_is_object(md)) return fio_fail(err, errlen, "%s: __metadata__ must be an object of strings", f->name);
    size_t n = json_object_size(md);
    f->mkey = calloc(n ? n : 1, sizeof *f->mkey);
    f->mval = calloc(n ? n : 1, sizeof *f->mval);
    if (!f->mkey || !f->mval) return fio_fail(err, errlen, "%s: out of memory", f->name);
    const char *key;
    json_t *v;
    json_object_foreach(md, key, v)
    {
        if (!json_is_string(v))
            return fio_fail(err, errlen, "%s: __metadata__ \"%s\": value must be a string", f->name,
                        fio_show(key, kb, sizeof kb));
        char *k = dup_str(key), *s = dup_str(json_string_value(v));
        if (!k || !s) {
            free(k);
            free(s);
            return fio_fail(err, errlen, "%s: out of memory", f->name);
        }
        f->mkey[f->n_meta] = k;
        f->mval[f->n_meta] = s;
        f->n_meta++;
    }
    return 0;
}

/* a non-negative JSON integer */
static int json_size(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0) return -1;
    *out = (uint64_t)x;
    return 0;
}

static int parse_entry(st_file *f, const char *name, json_t *e, st_tensor *t, char *err, size_t errlen)
{
    char nb[128], kb[128];
    const char *sn = fio_show(name, nb, sizeof nb);
    if (!json_is_object(e))
        return fio_fail(err, errlen, "%s: tensor \"%s\": entry must be an object with dtype, shape, data_offsets",
                    f->name, sn);
    const char *key;
    json_t *v;
    json_object_foreach(e, key, v)
    {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return fio_fail(err, errlen, "%s: tensor \"%s\": unknown key \"%s\" (expected dtype, shape, data_offsets)",
                        f->name, sn, fio_show(key, kb, sizeof kb));
    }
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    if (!jd) return fio_fail(err, errlen, "%s: tensor \"%s\": missing \"dtype\"", f->name, sn);
    if (!js) return fio_fail(err, errlen, "%s: tensor \"%s\": missing \"shape\"", f->name, sn);
    if (!jo) return fio_fail(err, errlen, "%s: tensor \"%s\": missing \"data_offsets\"", f->name, sn);

    if (!json_is_string(jd)) return fio_fail(err, errlen, "%s: tensor \"%s\": dtype must be a string", f->name, sn);
    if (st_dtype_parse(json_string_value(jd), &t->dtype))
        return fio_fail(err, errlen, "%s: tensor \"%s\": unknown dtype \"%s\"", f->name, sn,
                    fio_show(json_string_value(jd), kb, sizeof kb));

    if (!json_is_array(js))
        return fio_fail(err, errlen, "%s: tensor \"%s\": shape must be an array of non-negative integers", f->name, sn);
    size_t nd = json_array_size(js);
    if (nd > ST_MAX_DIMS)
        return fio_fail(err, errlen, "%s: tensor \"%s\": shape has %zu dimensions (at most %d supported)", f->name, sn,
                    nd, ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (json_size(json_array_get(js, i), &d))
            return fio_fail(err, errlen, "%s: tensor \"%s\": shape[%zu] must be a non-negative integer", f->name, sn, i);
        t->shape[i] = (int64_t)d;
        if (d && numel > UINT64_MAX / d) overflow = 1;
        else numel *= d;
    }
    uint64_t esz = st_dtype_size(t->dtype);
    if (numel == 0) overflow = 0; /* a zero dimension anywhere makes the tensor empty */
    if (overflow || numel > SIZE_MAX || numel > UINT64_MAX / esz)
        return fio_fail(err, errlen, "%s: tensor \"%s\": shape is too large (element count overflows)", f->name, sn);
    t->numel = (size_t)numel;

    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return fio_fail(err, errlen, "%s: tensor \"%s\": data_offsets must be an array [begin, end]", f->name, sn);
    uint64_t b, en;
    if (json_size(json_array_get(jo, 0), &b) || json_size(json_array_get(jo, 1), &en))
        return fio_fail(err, errlen, "%s: tensor \"%s\": data_offsets must be non-negative integers", f->name, sn);
    if (b > en)
        return fio_fail(err, errlen, "%s: tensor \"%s\": data_offsets [%llu, %llu]: begin is after end", f->name, sn,
                    (unsigned long long)b, (unsigned long long)en);
    if (en > f->data_len)
        return fio_fail(err, errlen, "%s: tensor \"%s\": data_offsets [%llu, %llu] end past the data section (%zu bytes)",
                    f->name, sn, (unsigned long long)b, (unsigned long long)en, f->data_len);
    uint64_t want = numel * esz;
    if (want != en - b) {
        char sh[160];
        size_t o = 0;
        sh[o++] = '[';
        for (int i = 0; i < t->ndim; i++)
            o += (size_t)snprintf(sh + o, sizeof sh - o, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        snprintf(sh + o, sizeof sh - o, "]");
        return fio_fail(err, errlen,
                    "%s: tensor \"%s\": shape %s of %s needs %llu bytes but data_offsets [%llu, %llu] span %llu",
                    f->name, sn, sh, st_dtype_name(t->dtype), (unsigned long long)want, (unsigned long long)b,
                    (unsigned long long)en, (unsigned long long)(en - b));
    }
    t->begin = (size_t)b;
    t->end = (size_t)en;
    t->data = f->data + b;
    t->name = dup_str(name);
    if (!t->name) return fio_fail(err, errlen, "%s: out of memory", f->name);
    return 0;
}

/* sorted by data order: each tensor starts where the previous ended; the last ends at data_len */
static int check_coverage(const st_file *f, char *err, size_t errlen)
{
    char nb[128], pb[128];
    size_t at = 0;
    for (size_t i = 0; i < f->n; i++) {
        const st_tensor *t = &f->t[i];
        if (t->begin < at)
            return fio_fail(err, errlen, "%s: tensor \"%s\": data_offsets [%zu, %zu] overlap tensor \"%s\" [%zu, %zu]",
                        f->name, fio_show(t->name, nb, sizeof nb), t->begin, t->end,
                        fio_show(f->t[i - 1].name, pb, sizeof pb), f->t[i - 1].begin, f->t[i - 1].end);
        if (t->begin > at) {
            if (i == 0)
                return fio_fail(err, errlen,
                            "%s: tensor \"%s\": data_offsets [%zu, %zu] leave bytes [0, %zu) of the data section "
                            "uncovered (holes are not allowed)",
                            f->name, fio_show(t->name, nb, sizeof nb), t->begin, t->end, t->begin);
            return fio_fail(err, errlen,
                        "%s: tensor \"%s\": data_offsets [%zu, %zu] leave bytes [%zu, %zu) after tensor \"%s\" "
                        "uncovered (holes are not allowed)",
                        f->name, fio_show(t->name, nb, sizeof nb), t->begin, t->end, at, t->begin,
                        fio_show(f->t[i - 1].name, pb, sizeof pb));
        }
        at = t->end;
    }
    if (at != f->data_len)
        return fio_fail(err, errlen, "%s:%zu: %zu bytes at the end of the data section belong to no tensor", f->name,
                    8 + f->header_len + at, f->data_len - at);
    return 0;
}

int st_parse(const uint8_t *buf, size_t len, const char *name_for_errors, st_file **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *fname = name_for_errors ? name_for_errors : "safetensors";
    if (len < 8)
        return fio_fail(err, errlen, "%s:0: file is %zu bytes, shorter than the 8-byte header length", fname, len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | buf[i];
    if (hl > ST_MAX_HEADER)
        return fio_fail(err, errlen, "%s:0: header length %llu is absurd (limit %u bytes)", fname,
                    (unsigned long long)hl, ST_MAX_HEADER);
    if (hl > len - 8)
        return fio_fail(err, errlen, "%s:0: header length %llu runs past the end of the file (%zu bytes)", fname,
                    (unsigned long long)hl, len);
    if (hl == 0 || buf[8] != '{')
        return fio_fail(err, errlen, "%s:8: header must be a JSON object starting with '{'", fname);

    st_file *f = calloc(1, sizeof *f);
    if (!f) return fio_fail(err, errlen, "%s: out of memory", fname);
    f->name = dup_str(fname);
    if (!f->name) {
        free(f);
        return fio_fail(err, errlen, "%s: out of memory", fname);
    }
    f->header_len = (size_t)hl;
    f->data = buf + 8 + hl;
    f->data_len = len - 8 - (size_t)hl;

    json_error_t je;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hl, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        fio_fail(err, errlen, "%s:%zu: header is not valid JSON: %s", fname, 8 + (size_t)(je.position > 0 ? je.position : 0),
             je.text);
        st_close(f);
        return -1;
    }
    if (!json_is_object(root)) {
        fio_fail(err, errlen, "%s:8: header must be a JSON object", fname);
        goto bad;
    }
    size_t nkeys = json_object_size(root);
    f->t = calloc(nkeys ? nkeys : 1, sizeof *f->t);
    f->by_name = calloc(nkeys ? nkeys : 1, sizeof *f->by_name);
    if (!f->t || !f->by_name) {
        fio_fail(err, errlen, "%s: out of memory", fname);
        goto bad;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if (parse_metadata(f, v, err, errlen)) goto bad;
            continue;
        }
        if (parse_entry(f, key, v, &f->t[f->n], err, errlen)) goto bad;
        f->n++;
    }
    json_decref(root);
    root = NULL;
    if (f->n > 1) qsort(f->t, f->n, sizeof *f->t, cmp_data_order);
    if (check_coverage(f, err, errlen)) goto bad;
    for (size_t i = 0; i < f->n; i++) {
        f->t[i].index = i;
        f->by_name[i] = &f->t[i];
    }
    if (f->n > 1) qsort(f->by_name, f->n, sizeof *f->by_name, cmp_by_name);
    *out = f;
    return 0;
bad:
    json_decref(root);
    st_close(f);
    return -1;
}

int st_open(const char *path, st_file **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t len;
    char *buf = fio_read_all(path, &len, err, errlen);
    if (!buf) return -1;
    st_file *f;
    if (st_parse((const uint8_t *)buf, len, path, &f, err, errlen)) {
        free(buf);
        return -1;
    }
    f->owned = (uint8_t *)buf;
    *out = f;
    return 0;
}

size_t st_count(const st_file *f) { return f->n; }
const st_tensor *st_get(const st_file *f, size_t i) { return i < f->n ? &f->t[i] : NULL; }
const char *st_name(const st_file *f) { return f->name; }
size_t st_header_len(const st_file *f) { return f->header_len; }
size_t st_metadata_count(const st_file *f) { return f->n_meta; }

const st_tensor *st_find(const st_file *f, const char *name)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid]->name, name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *st_metadata(const st_file *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->mkey[i], key) == 0) return f->mval[i];
    return NULL;
}

int st_metadata_at(const st_file *f, size_t i, const char **key, const char **value)
{
    if (i >= f->n_meta) return -1;
    *key = f->mkey[i];
    *value = f->mval[i];
    return 0;
}

int st_read_f32(const st_file *f, const st_tensor *t, float *dst, size_t n, char *err, size_t errlen)
{
    char nb[128];
    if (n != t->numel)
        return fio_fail(err, errlen, "%s: tensor \"%s\": has %zu elements, caller expects %zu", f->name,
                    fio_show(t->name, nb, sizeof nb), t->numel, n);
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(dst, p, n * sizeof *dst);
        return 0;
    case ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = st_f16_to_f32(ld16(p + 2 * i));
        return 0;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = st_bf16_to_f32(ld16(p + 2 * i));
        return 0;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, sizeof d);
            dst[i] = f64_to_f32(d);
        }
        return 0;
    case ST_F8_E5M2:
        for (size_t i = 0; i < n; i++) dst[i] = st_f16_to_f32((uint16_t)(p[i] << 8));
        return 0;
    case ST_F8_E4M3:
        for (size_t i = 0; i < n; i++) dst[i] = e4m3_to_f32(p[i]);
        return 0;
    default:
        return fio_fail(err, errlen, "%s: tensor \"%s\": dtype %s is not a floating-point type", f->name,
                    fio_show(t->name, nb, sizeof nb), st_dtype_name(t->dtype));
    }
}

int st_read_raw(const st_file *f, const st_tensor *t, void *dst, size_t nbytes, char *err, size_t errlen)
{
    char nb[128];
    if (nbytes != t->end - t->begin)
        return fio_fail(err, errlen, "%s: tensor \"%s\": holds %zu bytes, caller expects %zu", f->name,
                    fio_show(t->name, nb, sizeof nb), t->end - t->begin, nbytes);
    if (nbytes) memcpy(dst, t->data, nbytes);
    return 0;
}

/* ---- writing ----------------------------------------------------------------------------------- */

/* The padded header (without the 8-byte length) and the data size; validates the tensors. */
static int build_header(const st_out *ts, size_t n, const st_meta *meta, size_t n_meta, const char *what,
                        char **hdr, size_t *hdr_len, size_t *data_len, char *err, size_t errlen)
{
    char nb[128];
    *hdr = NULL;
    json_t *root = json_object();
    if (!root) return fio_fail(err, errlen, "%s: out of memory", what);
    if (n_meta) {
        json_t *md = json_object();
        if (!md || json_object_set_new(root, "__metadata__", md)) goto oom;
        for (size_t i = 0; i < n_meta; i++) {
            if (!meta[i].key || !meta[i].value) {
                fio_fail(err, errlen, "%s: metadata entry %zu has a NULL key or value", what, i);
                goto bad;
            }
            if (json_object_get(md, meta[i].key)) {
                fio_fail(err, errlen, "%s: metadata key \"%s\" given twice", what, fio_show(meta[i].key, nb, sizeof nb));
                goto bad;
            }
            json_t *s = json_string(meta[i].value);
            if (!s) {
                fio_fail(err, errlen, "%s: metadata \"%s\": value is not valid UTF-8", what,
                     fio_show(meta[i].key, nb, sizeof nb));
                goto bad;
            }
            if (json_object_set_new(md, meta[i].key, s)) {
                fio_fail(err, errlen, "%s: metadata key \"%s\" is not valid UTF-8", what, fio_show(meta[i].key, nb, sizeof nb));
                goto bad;
            }
        }
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const st_out *t = &ts[i];
        if (!t->name) {
            fio_fail(err, errlen, "%s: tensor %zu has no name", what, i);
            goto bad;
        }
        const char *sn = fio_show(t->name, nb, sizeof nb);
        if (strcmp(t->name, "__metadata__") == 0) {
            fio_fail(err, errlen, "%s: tensor \"%s\": reserved name", what, sn);
            goto bad;
        }
        if (json_object_get(root, t->name)) {
            fio_fail(err, errlen, "%s: tensor \"%s\": name given twice", what, sn);
            goto bad;
        }
        size_t esz = st_dtype_size(t->dtype);
        if (!esz) {
            fio_fail(err, errlen, "%s: tensor \"%s\": invalid dtype %d", what, sn, (int)t->dtype);
            goto bad;
        }
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) {
            fio_fail(err, errlen, "%s: tensor \"%s\": %d dimensions (0..%d supported)", what, sn, t->ndim, ST_MAX_DIMS);
            goto bad;
        }
        json_t *shape = json_array();
        json_t *e = json_object();
        if (!shape || !e) {
            json_decref(shape);
            json_decref(e);
            goto oom;
        }
        size_t numel = 1;
        int overflow = 0;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) {
                json_decref(shape);
                json_decref(e);
                fio_fail(err, errlen, "%s: tensor \"%s\": shape[%d] = %lld is negative", what, sn, d,
                     (long long)t->shape[d]);
                goto bad;
            }
            uint64_t s = (uint64_t)t->shape[d];
            if (s && numel > SIZE_MAX / s) overflow = 1;
            else numel *= (size_t)s;
            json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        }
        if (numel == 0) overflow = 0;
        if (overflow || numel > SIZE_MAX / esz || off > SIZE_MAX - numel * esz ||
            off + numel * esz > (size_t)INT64_MAX) {
            json_decref(shape);
            json_decref(e);
            fio_fail(err, errlen, "%s: tensor \"%s\": too large", what, sn);
            goto bad;
        }
        size_t nbytes = numel * esz;
        if (nbytes && !t->data) {
            json_decref(shape);
            json_decref(e);
            fio_fail(err, errlen, "%s: tensor \"%s\": no data", what, sn);
            goto bad;
        }
        json_t *offs = json_pack("[II]", (json_int_t)off, (json_int_t)(off + nbytes));
        if (!offs) {
            json_decref(shape);
            json_decref(e);
            goto oom;
        }
        json_object_set_new(e, "dtype", json_string(st_dtype_name(t->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets", offs);
        if (json_object_set_new(root, t->name, e)) {
            fio_fail(err, errlen, "%s: tensor \"%s\": name is not valid UTF-8", what, sn);
            goto bad;
        }
        off += nbytes;
    }
    char *s = json_dumps(root, JSON_COMPACT);
    if (!s) goto oom;
    json_decref(root);
    size_t sl = strlen(s), padded = (sl + 7) / 8 * 8;
    char *h = realloc(s, padded + 1);
    if (!h) {
        free(s);
        return fio_fail(err, errlen, "%s: out of memory", what);
    }
    memset(h + sl, ' ', padded - sl);
    h[padded] = 0;
    *hdr = h;
    *hdr_len = padded;
    *data_len = off;
    return 0;
oom:
    fio_fail(err, errlen, "%s: out of memory", what);
bad:
    json_decref(root);
    return -1;
}

static size_t out_nbytes(const st_out *t)
{
    size_t n = st_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int st_write_mem(const st_out *tensors, size_t n, const st_meta *meta, size_t n_meta, uint8_t **out,
                 size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    char *hdr;
    size_t hl, dl;
    if (build_header(tensors, n, meta, n_meta, "safetensors", &hdr, &hl, &dl, err, errlen)) return -1;
    if (dl > SIZE_MAX - 8 - hl) {
        free(hdr);
        return fio_fail(err, errlen, "safetensors: too large");
    }
    uint8_t *b = malloc(8 + hl + dl + 1);
    if (!b) {
        free(hdr);
        return fio_fail(err, errlen, "safetensors: out of memory for %zu bytes", 8 + hl + dl);
    }
    put_u64(b, hl);
    memcpy(b + 8, hdr, hl);
    free(hdr);
    size_t o = 8 + hl;
    for (size_t i = 0; i < n; i++) {
        size_t nb = out_nbytes(&tensors[i]);
        if (nb) memcpy(b + o, tensors[i].data, nb);
        o += nb;
    }
    *out = b;
    *outlen = o;
    return 0;
}

int st_write(const char *path, const st_out *tensors, size_t n, const st_meta *meta, size_t n_meta, char *err,
             size_t errlen)
{
    char *hdr;
    size_t hl, dl;
    if (build_header(tensors, n, meta, n_meta, path, &hdr, &hl, &dl, err, errlen)) return -1;
    /* header length, header, then each tensor's bytes straight from the caller (no copy) */
    fio_chunk *ch = malloc((n + 2) * sizeof *ch);
    if (!ch) {
        free(hdr);
        return fio_fail(err, errlen, "%s: out of memory", path);
    }
    uint8_t lenb[8];
    put_u64(lenb, hl);
    ch[0] = (fio_chunk){lenb, 8};
    ch[1] = (fio_chunk){hdr, hl};
    for (size_t i = 0; i < n; i++) ch[i + 2] = (fio_chunk){tensors[i].data, out_nbytes(&tensors[i])};
    int rc = fio_write_atomic_v(path, ch, n + 2, err, errlen);
    free(ch);
    free(hdr);
    return rc;
}
