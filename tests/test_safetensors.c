/* test_safetensors.c — the safetensors reader and writer: st_write output re-read by st_parse /
 * st_open (every dtype, metadata, scalars, empty tensors, padding), exact F16/BF16/F64/F8
 * conversions against independent references, and every strict-parse error (one line naming the
 * file and the tensor or byte offset), including every truncation of a valid file. */
#include "fileio.h"
#include "safetensors.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD "bad.safetensors"

/* 8-byte little-endian header length (hl, or strlen(hdr) when hl is UINT64_MAX) + hdr + dlen bytes */
static uint8_t *mk_hl(uint64_t hl, const char *hdr, size_t dlen, size_t *len)
{
    size_t n = strlen(hdr);
    uint8_t *b = calloc(8 + n + dlen + 1, 1);
    if (hl == UINT64_MAX) hl = n;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hl >> (8 * i));
    memcpy(b + 8, hdr, n);
    for (size_t i = 0; i < dlen; i++) b[8 + n + i] = (uint8_t)(i * 7 + 1);
    *len = 8 + n + dlen;
    return b;
}

static uint8_t *mk(const char *hdr, size_t dlen, size_t *len) { return mk_hl(UINT64_MAX, hdr, dlen, len); }

static void check_one_line(const char *err)
{
    cr_assert(err[0], "empty error");
    cr_assert(strchr(err, '\n') == NULL, "error is more than one line: %s", err);
}

/* st_parse fails; the error is one line naming the file and holding both substrings */
static void expect_fail_buf(const uint8_t *b, size_t len, const char *what1, const char *what2)
{
    char err[512];
    st_file *f = (st_file *)1;
    memset(err, 0, sizeof err);
    cr_assert_eq(st_parse(b, len, BAD, &f, err, sizeof err), -1, "parse should fail (%s, %s)", what1, what2);
    cr_assert_null(f);
    check_one_line(err);
    cr_assert(strncmp(err, BAD ":", strlen(BAD ":")) == 0, "error does not start with the file name: %s", err);
    cr_assert(strstr(err, what1), "error lacks \"%s\": %s", what1, err);
    if (what2) cr_assert(strstr(err, what2), "error lacks \"%s\": %s", what2, err);
}

static void expect_fail(const char *hdr, size_t dlen, const char *what1, const char *what2)
{
    size_t len;
    uint8_t *b = mk(hdr, dlen, &len);
    expect_fail_buf(b, len, what1, what2);
    free(b);
}

static st_file *parse_ok(const uint8_t *b, size_t len)
{
    char err[512];
    st_file *f = NULL;
    cr_assert_eq(st_parse(b, len, "ok.safetensors", &f, err, sizeof err), 0, "%s", err);
    return f;
}

/* ---- writer + reader ----------------------------------------------------------------------------- */

Test(safetensors, write_then_read_every_dtype)
{
    float f32[6] = {1.5f, -2.0f, 0.0f, 3.25f, -0.0f, 1e-30f};
    double f64[3] = {0.1, -1e10, 2.5};
    uint16_t f16[4] = {0x3C00, 0xC000, 0x0001, 0x7C00};
    uint16_t bf16[2] = {0x3F80, 0xC040};
    int32_t i32[5] = {1, -2, 3, 2147483647, -2147483647 - 1};
    int64_t i64[2] = {-5, 1ll << 40};
    uint8_t u8[3] = {0, 255, 7}, bl[2] = {1, 0};
    float scalar = 42.0f;
    st_out ts[] = {
        {"w.f32", ST_F32, 2, {2, 3}, f32},
        {"f64", ST_F64, 1, {3}, f64},
        {"f16", ST_F16, 2, {2, 2}, f16},
        {"bf16", ST_BF16, 1, {2}, bf16},
        {"empty", ST_F32, 2, {0, 5}, NULL},
        {"i32", ST_I32, 1, {5}, i32},
        {"i64", ST_I64, 1, {2}, i64},
        {"u8", ST_U8, 3, {1, 3, 1}, u8},
        {"bool", ST_BOOL, 1, {2}, bl},
        {"scalar", ST_F32, 0, {0}, &scalar},
        {"ünïcode/名前", ST_U8, 1, {0}, NULL},
    };
    size_t nt = sizeof ts / sizeof *ts;
    st_meta meta[] = {{"format", "pt"}, {"note", "a \"quoted\"\nline"}};
    const char *dir = tu_tmpdir("st_rw");
    char path[4200], err[512];
    fio_join(path, sizeof path, dir, "x.safetensors");
    cr_assert_eq(st_write(path, ts, nt, meta, 2, err, sizeof err), 0, "%s", err);

    st_file *f;
    cr_assert_eq(st_open(path, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_count(f), nt);
    cr_assert_eq(st_header_len(f) % 8, 0);
    cr_assert_str_eq(st_name(f), path);
    cr_assert_eq(st_metadata_count(f), 2);
    cr_assert_str_eq(st_metadata(f, "format"), "pt");
    cr_assert_str_eq(st_metadata(f, "note"), "a \"quoted\"\nline");
    cr_assert_null(st_metadata(f, "absent"));
    const char *k, *v;
    cr_assert_eq(st_metadata_at(f, 1, &k, &v), 0);
    cr_assert_str_eq(k, "note");
    cr_assert_eq(st_metadata_at(f, 2, &k, &v), -1);
    cr_assert_null(st_get(f, nt));
    cr_assert_null(st_find(f, "nope"));

    size_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        const st_tensor *t = st_find(f, ts[i].name);
        cr_assert(t, "missing %s", ts[i].name);
        cr_assert_str_eq(t->name, ts[i].name);
        cr_assert_eq(t->dtype, ts[i].dtype);
        cr_assert_eq(t->ndim, ts[i].ndim);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            cr_assert_eq(t->shape[d], ts[i].shape[d]);
            numel *= (size_t)ts[i].shape[d];
        }
        cr_assert_eq(t->numel, numel);
        size_t nb = numel * st_dtype_size(t->dtype);
        /* laid out in the given order, contiguously */
        cr_assert_eq(t->begin, off, "%s begins at %zu, expected %zu", t->name, t->begin, off);
        cr_assert_eq(t->end, off + nb);
        cr_assert_eq(st_get(f, t->index), t);
        off += nb;
        uint8_t raw[64];
        cr_assert_eq(st_read_raw(f, t, raw, nb, err, sizeof err), 0, "%s", err);
        if (nb) cr_assert_eq(memcmp(raw, ts[i].data, nb), 0, "%s bytes differ", t->name);
    }
    float got[6];
    cr_assert_eq(st_read_f32(f, st_find(f, "w.f32"), got, 6, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(got, f32, sizeof f32), 0);
    cr_assert_eq(st_read_f32(f, st_find(f, "f64"), got, 3, err, sizeof err), 0, "%s", err);
    cr_assert(got[0] == 0.1f && got[1] == -1e10f && got[2] == 2.5f);
    cr_assert_eq(st_read_f32(f, st_find(f, "f16"), got, 4, err, sizeof err), 0, "%s", err);
    cr_assert(got[0] == 1.0f && got[1] == -2.0f && got[2] == 0x1p-24f && isinf(got[3]) && got[3] > 0);
    cr_assert_eq(st_read_f32(f, st_find(f, "bf16"), got, 2, err, sizeof err), 0, "%s", err);
    cr_assert(got[0] == 1.0f && got[1] == -3.0f);
    cr_assert_eq(st_read_f32(f, st_find(f, "scalar"), got, 1, err, sizeof err), 0, "%s", err);
    cr_assert(got[0] == 42.0f);
    cr_assert_eq(st_read_f32(f, st_find(f, "empty"), got, 0, err, sizeof err), 0, "%s", err);

    /* wrong element count, integer dtype, wrong byte count */
    cr_assert_eq(st_read_f32(f, st_find(f, "w.f32"), got, 5, err, sizeof err), -1);
    check_one_line(err);
    cr_assert(strstr(err, "\"w.f32\"") && strstr(err, path), "%s", err);
    cr_assert_eq(st_read_f32(f, st_find(f, "i32"), got, 5, err, sizeof err), -1);
    cr_assert(strstr(err, "\"i32\"") && strstr(err, "I32") && strstr(err, "floating"), "%s", err);
    cr_assert_eq(st_read_raw(f, st_find(f, "i32"), got, 4, err, sizeof err), -1);
    cr_assert(strstr(err, "\"i32\""), "%s", err);
    st_close(f);

    /* st_write_mem gives the same bytes as the file */
    uint8_t *mem;
    size_t memlen, flen;
    cr_assert_eq(st_write_mem(ts, nt, meta, 2, &mem, &memlen, err, sizeof err), 0, "%s", err);
    char *fb = fio_read_all(path, &flen, err, sizeof err);
    cr_assert(fb, "%s", err);
    cr_assert_eq(memlen, flen);
    cr_assert_eq(memcmp(mem, fb, flen), 0);
    /* header: '{' first, padded with spaces to a multiple of 8, "__metadata__" first */
    cr_assert_eq(fb[8], '{');
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | (uint8_t)fb[i];
    cr_assert_eq(hl % 8, 0);
    cr_assert(strncmp(fb + 8, "{\"__metadata__\":", 16) == 0);
    size_t last = 8 + (size_t)hl - 1;
    while (fb[last] == ' ') last--;
    cr_assert_eq(fb[last], '}');
    cr_assert_eq(flen, 8 + hl + off);
    free(fb);
    free(mem);

    /* no temporary files left in the folder */
    DIR *d = opendir(dir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            files++;
            cr_assert_str_eq(de->d_name, "x.safetensors");
        }
    closedir(d);
    cr_assert_eq(files, 1);
}

Test(safetensors, empty_file_and_no_metadata)
{
    uint8_t *b;
    size_t len;
    char err[512];
    cr_assert_eq(st_write_mem(NULL, 0, NULL, 0, &b, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, 16); /* "{}" padded to 8 */
    st_file *f = parse_ok(b, len);
    cr_assert_eq(st_count(f), 0);
    cr_assert_eq(st_metadata_count(f), 0);
    cr_assert_null(st_find(f, "x"));
    st_close(f);
    free(b);
}

Test(safetensors, unpadded_unaligned_header_and_any_key_order)
{
    /* other writers need not pad: an odd header length and tensors listed out of data order */
    size_t len;
    uint8_t *b = mk("{\"b\":{\"data_offsets\":[4,6],\"dtype\":\"F16\",\"shape\":[1]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                    "\"z\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[6,6]}}  ",
                    6, &len);
    st_file *f = parse_ok(b, len);
    cr_assert_eq(st_count(f), 3);
    cr_assert_str_eq(st_get(f, 0)->name, "a");
    cr_assert_str_eq(st_get(f, 1)->name, "b");
    cr_assert_str_eq(st_get(f, 2)->name, "z");
    cr_assert_eq(st_get(f, 0)->ndim, 0);
    cr_assert_eq(st_get(f, 0)->numel, 1);
    cr_assert_eq(st_get(f, 2)->numel, 0);
    cr_assert_eq(st_find(f, "b")->data, b + len - 2);
    st_close(f);
    free(b);
}

Test(safetensors, find_many)
{
    enum { N = 300 };
    st_out ts[N];
    char names[N][16];
    float v[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "t%d", (i * 37) % N);
        v[i] = (float)i;
        ts[i] = (st_out){names[i], ST_F32, 1, {1}, &v[i]};
    }
    uint8_t *b;
    size_t len;
    char err[512];
    cr_assert_eq(st_write_mem(ts, N, NULL, 0, &b, &len, err, sizeof err), 0, "%s", err);
    st_file *f = parse_ok(b, len);
    for (int i = 0; i < N; i++) {
        const st_tensor *t = st_find(f, names[i]);
        cr_assert(t);
        float x;
        cr_assert_eq(st_read_f32(f, t, &x, 1, err, sizeof err), 0);
        cr_assert(x == (float)i);
        cr_assert_eq(t->index, (size_t)i); /* data order is the written order */
    }
    st_close(f);
    free(b);
}

/* ---- conversions --------------------------------------------------------------------------------- */

static double ref_half(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m, -24);
    else v = ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

/* every 16-bit pattern written as one tensor of dtype d, parsed back and read as float */
static float *all_16bit_values(st_dtype d, int ndim, int64_t s0, int64_t s1)
{
    uint16_t *h = malloc(65536 * sizeof *h);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    st_out t = {"h", d, ndim, {s0, s1}, h};
    uint8_t *b;
    size_t len;
    char err[512];
    cr_assert_eq(st_write_mem(&t, 1, NULL, 0, &b, &len, err, sizeof err), 0, "%s", err);
    st_file *f = parse_ok(b, len);
    float *got = malloc(65536 * sizeof *got);
    cr_assert_eq(st_read_f32(f, st_find(f, "h"), got, 65536, err, sizeof err), 0, "%s", err);
    st_close(f);
    free(b);
    free(h);
    return got;
}

Test(safetensors, f16_every_value)
{
    float *got = all_16bit_values(ST_F16, 2, 256, 256);
    for (uint32_t i = 0; i < 65536; i++) {
        double r = ref_half((uint16_t)i);
        float direct = st_f16_to_f32((uint16_t)i);
        cr_assert_eq(memcmp(&got[i], &direct, 4), 0, "0x%04x", i);
        if (isnan(r)) {
            uint32_t bits;
            memcpy(&bits, &got[i], 4);
            cr_assert(isnan(got[i]), "0x%04x", i);
            /* sign and payload kept */
            cr_assert_eq(bits, ((i & 0x8000u) << 16) | 0x7F800000u | ((i & 0x3FFu) << 13), "0x%04x", i);
        } else {
            cr_assert((double)got[i] == r, "0x%04x: %a != %a", i, (double)got[i], r);
            cr_assert_eq(!!signbit(got[i]), !!(i & 0x8000), "0x%04x sign", i);
        }
    }
    free(got);
}

Test(safetensors, bf16_every_value)
{
    float *got = all_16bit_values(ST_BF16, 1, 65536, 0);
    for (uint32_t i = 0; i < 65536; i++) {
        uint32_t bits;
        memcpy(&bits, &got[i], 4);
        cr_assert_eq(bits, i << 16, "0x%04x", i);
    }
    free(got);
}

Test(safetensors, f64_and_f8)
{
    double d[] = {0.1, -1e300, 1e300, (double)FLT_MAX, 0x1.fffffefffffffp127, 0x1.ffffffp127, 1e-50, -0.0, NAN, 1e-40};
    size_t nd = sizeof d / sizeof *d;
    uint8_t e5[] = {0x3C, 0x7C, 0xFC, 0x01, 0xBC, 0x7F};
    uint8_t e4[] = {0x38, 0x7E, 0x7F, 0x01, 0xB8, 0x08, 0x00, 0x80};
    st_out ts[] = {{"d", ST_F64, 1, {(int64_t)nd}, d}, {"e5", ST_F8_E5M2, 1, {6}, e5}, {"e4", ST_F8_E4M3, 1, {8}, e4}};
    uint8_t *b;
    size_t len;
    char err[512];
    cr_assert_eq(st_write_mem(ts, 3, NULL, 0, &b, &len, err, sizeof err), 0, "%s", err);
    st_file *f = parse_ok(b, len);
    float g[16];
    cr_assert_eq(st_read_f32(f, st_find(f, "d"), g, nd, err, sizeof err), 0, "%s", err);
    cr_assert(g[0] == 0.1f);
    cr_assert(isinf(g[1]) && g[1] < 0);
    cr_assert(isinf(g[2]) && g[2] > 0);
    cr_assert(g[3] == FLT_MAX);
    cr_assert(g[4] == FLT_MAX);          /* just below the rounding boundary */
    cr_assert(isinf(g[5]));              /* the tie rounds to even: infinity */
    cr_assert(g[6] == 0.0f);
    cr_assert(g[7] == 0.0f && signbit(g[7]));
    cr_assert(isnan(g[8]));
    cr_assert(g[9] == (float)1e-40);     /* float subnormal */
    cr_assert_eq(st_read_f32(f, st_find(f, "e5"), g, 6, err, sizeof err), 0, "%s", err);
    cr_assert(g[0] == 1.0f && isinf(g[1]) && g[1] > 0 && isinf(g[2]) && g[2] < 0 && g[3] == 0x1p-16f && g[4] == -1.0f);
    cr_assert(isnan(g[5]));
    cr_assert_eq(st_read_f32(f, st_find(f, "e4"), g, 8, err, sizeof err), 0, "%s", err);
    cr_assert(g[0] == 1.0f && g[1] == 448.0f && isnan(g[2]) && g[3] == 0x1p-9f && g[4] == -1.0f && g[5] == 0x1p-6f);
    cr_assert(g[6] == 0.0f && g[7] == 0.0f && signbit(g[7]));
    st_close(f);
    free(b);
}

/* ---- strict parsing ------------------------------------------------------------------------------ */

Test(safetensors, err_short_file)
{
    uint8_t b[8] = {2, 0, 0, 0, 0, 0, 0, 0};
    for (size_t n = 0; n < 8; n++) expect_fail_buf(b, n, BAD ":0:", "shorter than");
}

Test(safetensors, err_header_length)
{
    size_t len;
    uint8_t *b = mk_hl(100, "{}", 4, &len);
    expect_fail_buf(b, len, BAD ":0:", "past the end");
    free(b);
    b = mk_hl(200u * 1000 * 1000, "{}", 0, &len);
    expect_fail_buf(b, len, BAD ":0:", "absurd");
    free(b);
    b = mk_hl(UINT64_MAX - 1, "{}", 0, &len);
    expect_fail_buf(b, len, BAD ":0:", "absurd");
    free(b);
    b = mk_hl(0, "", 0, &len);
    expect_fail_buf(b, len, BAD ":8:", "'{'");
    free(b);
}

Test(safetensors, err_bad_json)
{
    expect_fail("{\"a\": ", 0, BAD ":", "not valid JSON");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, BAD ":", "not valid JSON");
    expect_fail("{\"a\":{\"dtype\":\"F32\xff\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, BAD ":", "not valid JSON");
    expect_fail("[1, 2]", 0, BAD ":8:", "'{'");
    expect_fail("  {}", 0, BAD ":8:", "'{'");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, "duplicate", NULL);
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "duplicate",
                NULL);
    /* a raw newline inside the header: still a one-line message */
    expect_fail("{\"a\n\":1}", 0, BAD ":", "JSON");
}

Test(safetensors, err_entry_fields)
{
    expect_fail("{\"w\":5}", 0, "\"w\"", "must be an object");
    expect_fail("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"w\"", "missing \"dtype\"");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "\"w\"", "missing \"shape\"");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "\"w\"", "missing \"data_offsets\"");
    expect_fail("{\"w\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"w\"", "dtype must be a string");
    expect_fail("{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"w\"", "unknown dtype \"F17\"");
    expect_fail("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"w\"", "unknown dtype");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, "\"w\"", "shape must be an array");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "\"w\"", "shape[0]");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1, 1.0],\"data_offsets\":[0,4]}}", 4, "\"w\"", "shape[1]");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "\"w\"", "non-negative integer");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,4]}}", 4, "\"w\"", "non-negative integer");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "\"w\"",
                "9 dimensions");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
                "\"w\"", "too large");
    expect_fail("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "\"w\"",
                "too large");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "\"w\"", "[begin, end]");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"0\":4}}}", 4, "\"w\"", "[begin, end]");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "\"w\"", "[begin, end]");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "\"w\"", "non-negative");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", 4, "\"w\"", "non-negative");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4, "\"w\"",
                "unknown key \"extra\"");
}

Test(safetensors, err_offsets_and_sizes)
{
    /* shape x dtype size != end - begin (also: the wrong dtype for the shape) */
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "\"w\"", "needs 8 bytes");
    expect_fail("{\"w\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, "\"w\"", "F16 needs 8 bytes");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]}}", 0, "\"w\"", "needs 4 bytes");
    /* begin > end */
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "\"w\"", "begin is after end");
    /* end past the data */
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "\"w\"", "past the data section");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[9223372036854775800,9223372036854775804]}}", 4,
                "\"w\"", "past the data section");
    /* overlap */
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, "\"b\"", "overlap tensor \"a\"");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                8, "overlap", NULL);
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                8, "\"e\"", "overlap tensor \"a\"");
    /* holes: at the start, between tensors, at the end */
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "\"w\"", "[0, 4)");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                12, "\"b\"", "[4, 8) after tensor \"a\" uncovered");
    size_t hl = strlen("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
    char where[64];
    snprintf(where, sizeof where, BAD ":%zu:", 8 + hl + 4);
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 7, where, "3 bytes");
    expect_fail("{}", 1, BAD ":10:", "belong to no tensor");
}

Test(safetensors, err_metadata)
{
    expect_fail("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ \"k\"", "must be a string");
    expect_fail("{\"__metadata__\":{\"k\":null}}", 0, "__metadata__ \"k\"", "must be a string");
    expect_fail("{\"__metadata__\":[\"k\"]}", 0, "__metadata__", "object of strings");
    expect_fail("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate", NULL);
}

Test(safetensors, err_names_are_escaped)
{
    expect_fail("{\"a\\nb\\\"c\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"a\\u000ab\\u0022c\"",
                "unknown dtype");
    char hdr[2000];
    snprintf(hdr, sizeof hdr, "{\"%0500d\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 7);
    size_t len;
    uint8_t *b = mk(hdr, 4, &len);
    char err[256];
    st_file *f;
    cr_assert_eq(st_parse(b, len, BAD, &f, err, sizeof err), -1);
    check_one_line(err);
    cr_assert(strlen(err) < sizeof err - 1 || strstr(err, "..."), "%s", err);
    free(b);
    /* a tiny error buffer is still NUL-terminated; a NULL one is allowed */
    b = mk("{\"w\":5}", 0, &len);
    char small[8];
    cr_assert_eq(st_parse(b, len, BAD, &f, small, sizeof small), -1);
    cr_assert_eq(strlen(small), 7);
    cr_assert_eq(st_parse(b, len, BAD, &f, NULL, 0), -1);
    free(b);
}

Test(safetensors, every_truncation_fails)
{
    float w[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[3] = {1, 2, 3};
    st_out ts[] = {{"w", ST_F32, 2, {2, 3}, w}, {"h", ST_F16, 1, {3}, h}};
    st_meta meta = {"format", "pt"};
    uint8_t *b;
    size_t len;
    char err[512];
    cr_assert_eq(st_write_mem(ts, 2, &meta, 1, &b, &len, err, sizeof err), 0, "%s", err);
    st_close(parse_ok(b, len));
    for (size_t n = 0; n < len; n++) {
        st_file *f;
        cr_assert_eq(st_parse(b, n, BAD, &f, err, sizeof err), -1, "truncated at %zu parsed", n);
        check_one_line(err);
        cr_assert(strncmp(err, BAD ":", strlen(BAD ":")) == 0, "%s", err);
    }
    /* one extra byte fails too */
    uint8_t *b2 = malloc(len + 1);
    memcpy(b2, b, len);
    b2[len] = 0;
    expect_fail_buf(b2, len + 1, "belong to no tensor", NULL);
    free(b2);

    /* the same through st_open on a truncated file */
    const char *dir = tu_tmpdir("st_trunc");
    char path[4200];
    fio_join(path, sizeof path, dir, "t.safetensors");
    tu_write(path, (const char *)b, len - 1);
    st_file *f;
    cr_assert_eq(st_open(path, &f, err, sizeof err), -1);
    check_one_line(err);
    cr_assert(strstr(err, path) && strstr(err, "\"h\""), "%s", err);
    fio_join(path, sizeof path, dir, "absent.safetensors");
    cr_assert_eq(st_open(path, &f, err, sizeof err), -1);
    check_one_line(err);
    cr_assert(strstr(err, path), "%s", err);
    free(b);
}

/* ---- writer errors ------------------------------------------------------------------------------- */

static void expect_write_fail(const st_out *ts, size_t n, const st_meta *meta, size_t nm, const char *what)
{
    uint8_t *b;
    size_t len;
    char err[512];
    cr_assert_eq(st_write_mem(ts, n, meta, nm, &b, &len, err, sizeof err), -1, "should fail: %s", what);
    check_one_line(err);
    cr_assert(strstr(err, what), "error lacks \"%s\": %s", what, err);
    cr_assert_null(b);
}

Test(safetensors, write_errors)
{
    float x[4] = {0};
    st_out dup[] = {{"a", ST_F32, 1, {1}, x}, {"a", ST_F32, 1, {1}, x}};
    expect_write_fail(dup, 2, NULL, 0, "given twice");
    st_out reserved = {"__metadata__", ST_F32, 1, {1}, x};
    expect_write_fail(&reserved, 1, NULL, 0, "reserved");
    st_out neg = {"n", ST_F32, 1, {-1}, x};
    expect_write_fail(&neg, 1, NULL, 0, "negative");
    st_out nodata = {"n", ST_F32, 1, {2}, NULL};
    expect_write_fail(&nodata, 1, NULL, 0, "no data");
    st_out baddt = {"n", (st_dtype)99, 1, {1}, x};
    expect_write_fail(&baddt, 1, NULL, 0, "dtype");
    st_out dims = {"n", ST_F32, 9, {1}, x};
    expect_write_fail(&dims, 1, NULL, 0, "dimensions");
    st_out utf = {"bad\xff", ST_F32, 1, {1}, x};
    expect_write_fail(&utf, 1, NULL, 0, "UTF-8");
    st_out ok = {"ok", ST_F32, 1, {1}, x};
    st_meta md[] = {{"k", "v"}, {"k", "w"}};
    expect_write_fail(&ok, 1, md, 2, "given twice");
    st_meta mnull = {"k", NULL};
    expect_write_fail(&ok, 1, &mnull, 1, "NULL");

    /* into a folder that does not exist: fails, names the path */
    char err[512];
    const char *dir = tu_tmpdir("st_werr");
    char path[4200];
    fio_join(path, sizeof path, dir, "no/such/x.safetensors");
    cr_assert_eq(st_write(path, &ok, 1, NULL, 0, err, sizeof err), -1);
    check_one_line(err);
    cr_assert(strstr(err, path), "%s", err);
    /* a failed write leaves an existing file untouched */
    fio_join(path, sizeof path, dir, "x.safetensors");
    cr_assert_eq(st_write(path, &ok, 1, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_write(path, dup, 2, NULL, 0, err, sizeof err), -1);
    st_file *f;
    cr_assert_eq(st_open(path, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_count(f), 1);
    st_close(f);
}

Test(safetensors, dtype_names)
{
    for (int d = 0; d < ST_NUM_DTYPES; d++) {
        st_dtype back;
        cr_assert_eq(st_dtype_parse(st_dtype_name((st_dtype)d), &back), 0);
        cr_assert_eq(back, (st_dtype)d);
        cr_assert(st_dtype_size((st_dtype)d) >= 1);
    }
    st_dtype x;
    cr_assert_eq(st_dtype_parse("F4", &x), -1);
    cr_assert_str_eq(st_dtype_name((st_dtype)-1), "?");
    cr_assert_eq(st_dtype_size(ST_NUM_DTYPES), 0);
}
