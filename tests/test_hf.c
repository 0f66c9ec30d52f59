/* test_hf.c — Hugging Face GPT-2 checkpoints: hf_save_gpt2 -> hf_load_gpt2 gives the same parameter
 * block bit for bit; files written the way other tools write them (no "transformer." prefix, mask
 * buffers, a tied lm_head, F16 / BF16 / mixed dtypes, any tensor order) load to the exactly
 * converted values; and every mismatch (missing / extra / misshapen / non-float tensor, untied
 * lm_head, bad config.json) is one error line naming the file and the tensor or field. */
#include "fileio.h"
#include "gpt2.h"
#include "hf.h"
#include "safetensors.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 12345;
static double urand(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rs >> 11) / 9007199254740992.0;
}

static const gpt2_config k_cfg = {.n_layer = 2, .n_head = 2, .n_embd = 8, .vocab_size = 11, .n_positions = 6,
                                  .ln_eps = 1e-5f};

static gpt2 *mk_model(const gpt2_config *c, uint64_t seed)
{
    gpt2 *m;
    char err[GPT2_ERR_LEN];
    cr_assert_eq(gpt2_create(&m, c, err, sizeof err), 0, "%s", err);
    gpt2_init_random(m, seed);
    /* every value distinct-ish and non-trivial (LN weights and biases too) */
    float *p = gpt2_params(m);
    for (size_t i = 0; i < gpt2_num_params(m); i++) p[i] += (float)(0.1 * (urand() - 0.5));
    return m;
}

static void check_one_line(const char *err)
{
    cr_assert(err[0], "empty error");
    cr_assert(strchr(err, '\n') == NULL, "error is more than one line: %s", err);
}

/* ---- reference conversions (independent of model/safetensors.c) ---------------------------------- */

static uint16_t to_half(float x)
{
    uint16_t s = signbit(x) ? 0x8000 : 0;
    double a = fabs((double)x);
    if (a < 0x1p-14) return (uint16_t)(s | (uint16_t)lrint(a * 0x1p24)); /* 1024 encodes 2^-14 */
    int e;
    double fr = frexp(a, &e); /* a = fr * 2^e, fr in [0.5, 1) */
    long m = lrint((fr * 2 - 1) * 1024); /* exact product: rint rounds to nearest even */
    if (m == 1024) {
        m = 0;
        e++;
    }
    int E = e - 1 + 15;
    if (E >= 31) return s | 0x7C00;
    return (uint16_t)(s | (E << 10) | m);
}

static float ref_half(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}

static uint16_t to_bf16(float x) /* round to nearest even (finite x) */
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static float ref_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- writing checkpoints the way other tools do ---------------------------------------------------- */

enum {
    V_F16 = 1,        /* all tensors F16 */
    V_BF16 = 2,       /* all tensors BF16 */
    V_MIXED = 4,      /* 2-D F16, 1-D BF16, wpe F32 */
    V_MASKS = 8,      /* h.{i}.attn.bias (1,1,P,P) and h.{i}.attn.masked_bias () */
    V_LMHEAD = 16,    /* lm_head.weight equal to wte */
    V_LMHEAD_DIFF = 32, /* lm_head.weight with one element changed */
    V_REVERSE = 64,   /* tensors in reverse order */
};

static const char *const k_hf[GPT2_NUM_TENSORS] = {
    "wte.weight",        "wpe.weight",       "ln_1.weight",        "ln_1.bias",
    "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
    "ln_2.weight",       "ln_2.bias",        "mlp.c_fc.weight",    "mlp.c_fc.bias",
    "mlp.c_proj.weight", "mlp.c_proj.bias",  "ln_f.weight",        "ln_f.bias",
};

typedef struct {
    st_out *t;
    char (*names)[96];
    void **bufs;
    size_t n, cap;
} outs;

static st_out *add(outs *o, const char *name, st_dtype dt, int ndim, int64_t s0, int64_t s1, void *buf)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->t = realloc(o->t, o->cap * sizeof *o->t);
        o->names = realloc(o->names, o->cap * sizeof *o->names);
        o->bufs = realloc(o->bufs, o->cap * sizeof *o->bufs);
    }
    snprintf(o->names[o->n], sizeof o->names[o->n], "%s", name);
    o->bufs[o->n] = buf;
    o->t[o->n] = (st_out){NULL, dt, ndim, {s0, s1}, buf};
    return &o->t[o->n++];
}

static void outs_free(outs *o)
{
    for (size_t i = 0; i < o->n; i++) free(o->bufs[i]);
    free(o->t);
    free(o->names);
    free(o->bufs);
}

static void outs_write(outs *o, const char *path)
{
    for (size_t i = 0; i < o->n; i++) o->t[i].name = o->names[i];
    char err[512];
    cr_assert_eq(st_write(path, o->t, o->n, NULL, 0, err, sizeof err), 0, "%s", err);
}

static size_t find_out(outs *o, const char *name)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->names[i], name) == 0) return i;
    cr_assert_fail("no tensor %s", name);
    return 0;
}

/* Tensors of m as HF names under prefix, each converted per flags; expected (if not NULL) receives the
 * parameter block a correct loader must produce. */
static void build_outs(gpt2 *m, const char *prefix, int flags, outs *o, float *expected)
{
    const gpt2_config *c = gpt2_cfg(m);
    const gpt2_tensor *tb = gpt2_param_table(m);
    const float *p = gpt2_params(m);
    memset(o, 0, sizeof *o);
    for (int k = 0; k < GPT2_NUM_TENSORS; k++) {
        int reps = tb[k].per_layer ? c->n_layer : 1;
        size_t each = (size_t)tb[k].shape[0] * (size_t)tb[k].shape[1];
        for (int l = 0; l < reps; l++) {
            char name[96];
            if (tb[k].per_layer) snprintf(name, sizeof name, "%sh.%d.%s", prefix, l, k_hf[k]);
            else snprintf(name, sizeof name, "%s%s", prefix, k_hf[k]);
            const float *src = p + tb[k].offset + (size_t)l * each;
            float *exp = expected ? expected + tb[k].offset + (size_t)l * each : NULL;
            st_dtype dt = ST_F32;
            if (flags & V_F16) dt = ST_F16;
            if (flags & V_BF16) dt = ST_BF16;
            if (flags & V_MIXED) dt = k == GPT2_WPE ? ST_F32 : tb[k].ndim == 2 ? ST_F16 : ST_BF16;
            void *buf;
            if (dt == ST_F32) {
                float *b = malloc(each * sizeof *b);
                memcpy(b, src, each * sizeof *b);
                if (exp) memcpy(exp, src, each * sizeof *b);
                buf = b;
            } else {
                uint16_t *b = malloc(each * sizeof *b);
                for (size_t i = 0; i < each; i++) {
                    b[i] = dt == ST_F16 ? to_half(src[i]) : to_bf16(src[i]);
                    if (exp) exp[i] = dt == ST_F16 ? ref_half(b[i]) : ref_bf16(b[i]);
                }
                buf = b;
            }
            add(o, name, dt, tb[k].ndim, tb[k].shape[0], tb[k].shape[1], buf);
        }
    }
    if (flags & V_MASKS)
        for (int l = 0; l < c->n_layer; l++) {
            char name[96];
            int P = c->n_positions;
            float *tri = malloc((size_t)P * P * sizeof *tri);
            for (int i = 0; i < P; i++)
                for (int j = 0; j < P; j++) tri[i * P + j] = j <= i;
            snprintf(name, sizeof name, "%sh.%d.attn.bias", prefix, l);
            st_out *t = add(o, name, ST_F32, 4, 1, 1, tri);
            t->shape[2] = P;
            t->shape[3] = P;
            float *mb = malloc(sizeof *mb);
            *mb = -1e4f;
            snprintf(name, sizeof name, "%sh.%d.attn.masked_bias", prefix, l);
            add(o, name, ST_F32, 0, 0, 0, mb);
        }
    if (flags & (V_LMHEAD | V_LMHEAD_DIFF)) {
        char wn[96];
        snprintf(wn, sizeof wn, "%swte.weight", prefix);
        st_out *w = &o->t[find_out(o, wn)];
        size_t nb = (size_t)w->shape[0] * (size_t)w->shape[1] * st_dtype_size(w->dtype);
        uint8_t *b = malloc(nb);
        memcpy(b, w->data, nb);
        if (flags & V_LMHEAD_DIFF) b[nb / 2] ^= 0x10;
        add(o, "lm_head.weight", w->dtype, 2, w->shape[0], w->shape[1], b);
    }
    if (flags & V_REVERSE)
        for (size_t i = 0, j = o->n - 1; i < j; i++, j--) {
            st_out t = o->t[i];
            o->t[i] = o->t[j];
            o->t[j] = t;
            char nm[96];
            memcpy(nm, o->names[i], 96);
            memcpy(o->names[i], o->names[j], 96);
            memcpy(o->names[j], nm, 96);
            void *b = o->bufs[i];
            o->bufs[i] = o->bufs[j];
            o->bufs[j] = b;
        }
}

/* a checkpoint folder: config.json from hf_save_gpt2, model.safetensors from o */
static const char *write_ckpt(gpt2 *m, outs *o, const char *tag, char *wpath, size_t wlen)
{
    const char *dir = tu_tmpdir(tag);
    char err[512];
    cr_assert_eq(hf_save_gpt2(m, dir, err, sizeof err), 0, "%s", err);
    fio_join(wpath, wlen, dir, "model.safetensors");
    outs_write(o, wpath);
    return dir;
}

static void load_expect(const char *dir, const gpt2 *ref, const float *expected)
{
    gpt2 *m;
    char err[512];
    cr_assert_eq(hf_load_gpt2(dir, &m, err, sizeof err), 0, "%s", err);
    const gpt2_config *a = gpt2_cfg(m), *b = gpt2_cfg(ref);
    cr_assert(a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_embd == b->n_embd &&
              a->vocab_size == b->vocab_size && a->n_positions == b->n_positions && a->ln_eps == b->ln_eps);
    cr_assert_eq(gpt2_num_params(m), gpt2_num_params(ref));
    const float *p = gpt2_params(m);
    for (size_t i = 0; i < gpt2_num_params(m); i++)
        cr_assert(memcmp(&p[i], &expected[i], sizeof(float)) == 0, "param %zu: %a != %a", i, (double)p[i],
                  (double)expected[i]);
    gpt2_free(m);
}

static void load_fail(const char *dir, const char *file, const char *what1, const char *what2)
{
    gpt2 *m = (gpt2 *)1;
    char err[512];
    memset(err, 0, sizeof err);
    cr_assert_eq(hf_load_gpt2(dir, &m, err, sizeof err), -1, "load should fail (%s)", what1);
    cr_assert_null(m);
    check_one_line(err);
    cr_assert(strstr(err, file), "error lacks the file %s: %s", file, err);
    cr_assert(strstr(err, what1), "error lacks \"%s\": %s", what1, err);
    if (what2) cr_assert(strstr(err, what2), "error lacks \"%s\": %s", what2, err);
}

/* ---- round trip ------------------------------------------------------------------------------------ */

Test(hf, save_load_round_trip_bit_exact)
{
    gpt2_config cfgs[2] = {k_cfg, k_cfg};
    cfgs[1].n_layer = 3;
    cfgs[1].n_head = 4;
    cfgs[1].vocab_size = 50257 % 97 + 5;
    cfgs[1].ln_eps = 3.3e-6f;
    for (int v = 0; v < 2; v++) {
        gpt2 *m = mk_model(&cfgs[v], 100 + v);
        const char *dir = tu_tmpdir("hf_rt");
        char sub[4200], err[512];
        fio_join(sub, sizeof sub, dir, "a/b/ckpt"); /* parents are created */
        cr_assert_eq(hf_save_gpt2(m, sub, err, sizeof err), 0, "%s", err);
        load_expect(sub, m, gpt2_params(m));
        /* saving again over the same folder works and leaves no temporary files */
        cr_assert_eq(hf_save_gpt2(m, sub, err, sizeof err), 0, "%s", err);
        load_expect(sub, m, gpt2_params(m));
        DIR *d = opendir(sub);
        struct dirent *de;
        int files = 0;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.') {
                files++;
                cr_assert(strcmp(de->d_name, "config.json") == 0 || strcmp(de->d_name, "model.safetensors") == 0,
                          "stray file %s", de->d_name);
            }
        closedir(d);
        cr_assert_eq(files, 2);
        gpt2_free(m);
    }
}

Test(hf, saved_files_are_what_transformers_writes)
{
    gpt2 *m = mk_model(&k_cfg, 5);
    const char *dir = tu_tmpdir("hf_files");
    char path[4200], err[512];
    cr_assert_eq(hf_save_gpt2(m, dir, err, sizeof err), 0, "%s", err);

    fio_join(path, sizeof path, dir, "model.safetensors");
    st_file *f;
    cr_assert_eq(st_open(path, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_count(f), 4 + 12 * (size_t)k_cfg.n_layer);
    cr_assert_str_eq(st_metadata(f, "format"), "pt");
    cr_assert_eq(st_metadata_count(f), 1);
    cr_assert_null(st_find(f, "lm_head.weight"));
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_get(f, i);
        cr_assert(strncmp(t->name, "transformer.", 12) == 0, "%s", t->name);
        cr_assert_eq(t->dtype, ST_F32);
    }
    const st_tensor *t = st_find(f, "transformer.h.1.attn.c_attn.weight");
    cr_assert(t && t->ndim == 2 && t->shape[0] == 8 && t->shape[1] == 24);
    t = st_find(f, "transformer.h.0.mlp.c_proj.weight");
    cr_assert(t && t->ndim == 2 && t->shape[0] == 32 && t->shape[1] == 8);
    t = st_find(f, "transformer.h.0.mlp.c_fc.bias");
    cr_assert(t && t->ndim == 1 && t->shape[0] == 32);
    t = st_find(f, "transformer.wpe.weight");
    cr_assert(t && t->shape[0] == 6 && t->shape[1] == 8);
    /* module order: wte, wpe, h.0.*, h.1.*, ln_f */
    cr_assert_str_eq(st_get(f, 0)->name, "transformer.wte.weight");
    cr_assert_str_eq(st_get(f, 1)->name, "transformer.wpe.weight");
    cr_assert_str_eq(st_get(f, 2)->name, "transformer.h.0.ln_1.weight");
    cr_assert_str_eq(st_get(f, st_count(f) - 1)->name, "transformer.ln_f.bias");
    st_close(f);

    fio_join(path, sizeof path, dir, "config.json");
    json_error_t je;
    json_t *c = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    cr_assert(c, "%s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(c, "model_type")), "gpt2");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(c, "architectures"), 0)), "GPT2LMHeadModel");
    cr_assert_str_eq(json_string_value(json_object_get(c, "activation_function")), "gelu_new");
    const char *ints[] = {"n_layer", "n_head", "n_embd", "n_positions", "n_ctx", "vocab_size", "bos_token_id",
                          "eos_token_id"};
    json_int_t want[] = {2, 2, 8, 6, 6, 11, 10, 10};
    for (int i = 0; i < 8; i++) {
        json_t *v = json_object_get(c, ints[i]);
        cr_assert(json_is_integer(v), "%s", ints[i]);
        cr_assert_eq(json_integer_value(v), want[i], "%s", ints[i]);
    }
    cr_assert(json_real_value(json_object_get(c, "layer_norm_epsilon")) == 1e-5);
    cr_assert(json_is_null(json_object_get(c, "n_inner")));
    const char *reals[] = {"resid_pdrop", "embd_pdrop", "attn_pdrop", "initializer_range"};
    double rw[] = {0.1, 0.1, 0.1, 0.02};
    for (int i = 0; i < 4; i++) cr_assert(json_real_value(json_object_get(c, reals[i])) == rw[i], "%s", reals[i]);
    cr_assert(json_is_true(json_object_get(c, "tie_word_embeddings")));
    cr_assert(json_is_true(json_object_get(c, "scale_attn_weights")));
    cr_assert(json_is_true(json_object_get(c, "use_cache")));
    json_decref(c);
    /* printed the way Python would: short decimals */
    size_t len;
    char *s = fio_read_all(path, &len, err, sizeof err);
    cr_assert(strstr(s, "\"layer_norm_epsilon\": 1e-5,"), "%s", s);
    cr_assert(strstr(s, "\"resid_pdrop\": 0.1,"), "%s", s);
    cr_assert(s[len - 1] == '\n');
    free(s);
    gpt2_free(m);

    /* the GPT-2 vocabulary: bos/eos 50256 */
    gpt2_config big = k_cfg;
    big.vocab_size = 50257;
    big.n_layer = 1;
    m = mk_model(&big, 1);
    dir = tu_tmpdir("hf_files_big");
    cr_assert_eq(hf_save_gpt2(m, dir, err, sizeof err), 0, "%s", err);
    fio_join(path, sizeof path, dir, "config.json");
    c = json_load_file(path, 0, &je);
    cr_assert_eq(json_integer_value(json_object_get(c, "bos_token_id")), 50256);
    cr_assert_eq(json_integer_value(json_object_get(c, "eos_token_id")), 50256);
    json_decref(c);
    gpt2_free(m);
}

/* ---- other layouts and dtypes ---------------------------------------------------------------------- */

static void variant_ok(const char *prefix, int flags)
{
    gpt2 *m = mk_model(&k_cfg, 7 + (uint64_t)flags);
    float *expected = malloc(gpt2_num_params(m) * sizeof *expected);
    outs o;
    build_outs(m, prefix, flags, &o, expected);
    char wpath[4200];
    const char *dir = write_ckpt(m, &o, "hf_var", wpath, sizeof wpath);
    load_expect(dir, m, expected);
    outs_free(&o);
    free(expected);
    gpt2_free(m);
}

Test(hf, prefix_or_not)
{
    variant_ok("", 0);
    variant_ok("transformer.", 0);
    variant_ok("", V_REVERSE);
    variant_ok("transformer.", V_REVERSE);
}

Test(hf, mask_buffers_ignored) {
    variant_ok("", V_MASKS);
    variant_ok("transformer.", V_MASKS | V_REVERSE);
}

Test(hf, tied_lm_head_accepted)
{
    variant_ok("transformer.", V_LMHEAD);
    variant_ok("", V_LMHEAD | V_MASKS);
    variant_ok("", V_LMHEAD | V_F16);
}

Test(hf, f16_bf16_mixed_exact)
{
    variant_ok("transformer.", V_F16);
    variant_ok("", V_BF16 | V_MASKS);
    variant_ok("transformer.", V_MIXED | V_REVERSE);
    variant_ok("transformer.", V_MIXED | V_LMHEAD);
}

Test(hf, lm_head_in_another_dtype_compared_by_value)
{
    /* wte in F32 holding half-representable values, lm_head the same values in F16: tied */
    gpt2 *m = mk_model(&k_cfg, 9);
    float *p = gpt2_params(m);
    const gpt2_tensor *tb = gpt2_param_table(m);
    for (size_t i = 0; i < tb[GPT2_WTE].numel; i++) p[tb[GPT2_WTE].offset + i] = ref_half(to_half(p[tb[GPT2_WTE].offset + i]));
    float *expected = malloc(gpt2_num_params(m) * sizeof *expected);
    outs o;
    build_outs(m, "", 0, &o, expected);
    size_t n = tb[GPT2_WTE].numel;
    uint16_t *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = to_half(p[tb[GPT2_WTE].offset + i]);
    add(&o, "lm_head.weight", ST_F16, 2, k_cfg.vocab_size, k_cfg.n_embd, h);
    char wpath[4200];
    const char *dir = write_ckpt(m, &o, "hf_lm16", wpath, sizeof wpath);
    load_expect(dir, m, expected);
    /* one half-ulp off: untied */
    h[3] ^= 1;
    outs_write(&o, wpath);
    load_fail(dir, wpath, "\"lm_head.weight\"", "element 3");
    outs_free(&o);
    free(expected);
    gpt2_free(m);
}

/* ---- errors ---------------------------------------------------------------------------------------- */

/* build the standard file, let edit() change it, write, expect failure */
static void variant_fail(const char *prefix, int flags, void (*edit)(outs *), const char *what1, const char *what2)
{
    gpt2 *m = mk_model(&k_cfg, 11);
    outs o;
    build_outs(m, prefix, flags, &o, NULL);
    if (edit) edit(&o);
    char wpath[4200];
    const char *dir = write_ckpt(m, &o, "hf_bad", wpath, sizeof wpath);
    load_fail(dir, wpath, what1, what2);
    outs_free(&o);
    gpt2_free(m);
}

static void drop_fc_bias(outs *o)
{
    size_t i = find_out(o, "transformer.h.1.mlp.c_fc.bias");
    free(o->bufs[i]);
    o->n--;
    o->t[i] = o->t[o->n];
    memcpy(o->names[i], o->names[o->n], 96);
    o->bufs[i] = o->bufs[o->n];
}
static void drop_wte(outs *o)
{
    size_t i = find_out(o, "wte.weight");
    free(o->bufs[i]);
    o->n--;
    o->t[i] = o->t[o->n];
    memcpy(o->names[i], o->names[o->n], 96);
    o->bufs[i] = o->bufs[o->n];
}
static void extra_layer(outs *o) { add(o, "transformer.h.2.ln_1.weight", ST_F32, 1, 8, 0, calloc(8, 4)); }
static void extra_other(outs *o) { add(o, "score.weight", ST_F32, 2, 1, 8, calloc(8, 4)); }
static void extra_mask_out_of_range(outs *o) { add(o, "h.2.attn.bias", ST_F32, 1, 1, 0, calloc(1, 4)); }
static void extra_mask_leading_zero(outs *o) { add(o, "h.01.attn.masked_bias", ST_F32, 0, 0, 0, calloc(1, 4)); }
static void extra_newline_name(outs *o) { add(o, "bad\nname", ST_F32, 0, 0, 0, calloc(1, 4)); }
static void unprefixed_wte(outs *o) { memcpy(o->names[find_out(o, "transformer.wte.weight")], "wte.weight", 11); }
static void transpose_qkv(outs *o)
{
    st_out *t = &o->t[find_out(o, "transformer.h.0.attn.c_attn.weight")];
    int64_t s = t->shape[0];
    t->shape[0] = t->shape[1];
    t->shape[1] = s;
}
static void flatten_bias(outs *o)
{
    st_out *t = &o->t[find_out(o, "h.1.ln_2.bias")];
    t->ndim = 2;
    t->shape[0] = 1;
    t->shape[1] = 8;
}
static void wpe_too_long(outs *o)
{
    size_t i = find_out(o, "transformer.wpe.weight");
    o->t[i].shape[0] = 7;
    o->bufs[i] = realloc(o->bufs[i], 7 * 8 * 4);
    o->t[i].data = o->bufs[i];
}
static void int_lnf(outs *o) { o->t[find_out(o, "transformer.ln_f.weight")].dtype = ST_I32; }
static void lm_head_shape(outs *o) { add(o, "lm_head.weight", ST_F32, 2, 8, 11, calloc(88, 4)); }

Test(hf, missing_tensor)
{
    variant_fail("transformer.", 0, drop_fc_bias, "\"transformer.h.1.mlp.c_fc.bias\"", "missing");
    variant_fail("", 0, drop_wte, "wte.weight", "missing");
    variant_fail("transformer.", 0, unprefixed_wte, "\"transformer.wte.weight\"", "missing");
}

Test(hf, unexpected_tensor)
{
    variant_fail("transformer.", 0, extra_layer, "\"transformer.h.2.ln_1.weight\"", "unexpected");
    variant_fail("transformer.", 0, extra_other, "\"score.weight\"", "unexpected");
    variant_fail("", V_MASKS, extra_mask_out_of_range, "\"h.2.attn.bias\"", "unexpected");
    variant_fail("", 0, extra_mask_leading_zero, "\"h.01.attn.masked_bias\"", "unexpected");
    variant_fail("", 0, extra_newline_name, "\"bad\\u000aname\"", "unexpected");
}

Test(hf, wrong_shape_names_both_shapes)
{
    variant_fail("transformer.", 0, transpose_qkv, "\"transformer.h.0.attn.c_attn.weight\"", "[24, 8] in the file, expected [8, 24]");
    variant_fail("", 0, flatten_bias, "\"h.1.ln_2.bias\"", "[1, 8] in the file, expected [8]");
    variant_fail("transformer.", 0, wpe_too_long, "\"transformer.wpe.weight\"", "[7, 8] in the file, expected [6, 8]");
    variant_fail("transformer.", 0, lm_head_shape, "\"lm_head.weight\"", "[8, 11] in the file, expected [11, 8]");
}

Test(hf, non_float_tensor)
{
    variant_fail("transformer.", 0, int_lnf, "\"transformer.ln_f.weight\"", "not a floating-point");
}

Test(hf, untied_lm_head_rejected)
{
    variant_fail("transformer.", V_LMHEAD_DIFF, NULL, "\"lm_head.weight\"", "differs");
    variant_fail("", V_LMHEAD_DIFF | V_BF16, NULL, "\"lm_head.weight\"", "untied");
}

Test(hf, bad_safetensors_file)
{
    gpt2 *m = mk_model(&k_cfg, 3);
    const char *dir = tu_tmpdir("hf_badst");
    char wpath[4200], err[512];
    cr_assert_eq(hf_save_gpt2(m, dir, err, sizeof err), 0, "%s", err);
    fio_join(wpath, sizeof wpath, dir, "model.safetensors");
    size_t len;
    char *b = fio_read_all(wpath, &len, err, sizeof err);
    /* truncated (the last tensor runs past the end) */
    tu_write(wpath, b, len - 3);
    load_fail(dir, wpath, "\"transformer.ln_f.bias\"", "past the data section");
    /* header length past the end */
    tu_write(wpath, b, 100);
    load_fail(dir, wpath, ":0:", "past the end");
    /* shorter than 8 bytes */
    tu_write(wpath, b, 5);
    load_fail(dir, wpath, ":0:", "shorter");
    /* missing file */
    remove(wpath);
    load_fail(dir, wpath, "cannot open", NULL);
    free(b);
    gpt2_free(m);
}

/* ---- config.json ------------------------------------------------------------------------------------- */

static const char *k_good_cfg = "{\"model_type\": \"gpt2\", \"activation_function\": \"gelu_new\", \"n_layer\": 2, "
                                "\"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 11, \"n_positions\": 6, "
                                "\"layer_norm_epsilon\": 1e-05";

static int read_cfg(const char *body, gpt2_config *c, char *err, size_t errlen, char *path, size_t plen)
{
    const char *dir = tu_tmpdir("hf_cfg");
    fio_join(path, plen, dir, "config.json");
    tu_write(path, body, strlen(body));
    return hf_read_config(path, c, err, errlen);
}

static void cfg_ok(const char *extra, gpt2_config *c)
{
    char body[2048], err[512], path[4200];
    snprintf(body, sizeof body, "%s%s}", k_good_cfg, extra);
    cr_assert_eq(read_cfg(body, c, err, sizeof err, path, sizeof path), 0, "%s: %s", body, err);
}

static void cfg_fail_body(const char *body, const char *what)
{
    char err[512], path[4200];
    gpt2_config c;
    memset(err, 0, sizeof err);
    cr_assert_eq(read_cfg(body, &c, err, sizeof err, path, sizeof path), -1, "should fail: %s", body);
    check_one_line(err);
    cr_assert(strstr(err, path), "error lacks the path: %s", err);
    cr_assert(strstr(err, what), "error lacks \"%s\": %s", what, err);
}

static void cfg_fail_without(const char *field, const char *what)
{
    /* k_good_cfg with one field removed */
    char body[2048];
    const char *at = strstr(k_good_cfg, field);
    cr_assert(at);
    const char *end = strchr(at, ',');
    size_t pre = (size_t)(at - k_good_cfg);
    if (!end) {
        /* last field: drop the ", " before it */
        snprintf(body, sizeof body, "%.*s}", (int)(pre - 2), k_good_cfg);
    } else {
        snprintf(body, sizeof body, "%.*s%s}", (int)pre, k_good_cfg, end + 2);
    }
    cfg_fail_body(body, what);
}

Test(hf, config_fields)
{
    gpt2_config c;
    cfg_ok("", &c);
    cr_assert(c.n_layer == 2 && c.n_head == 2 && c.n_embd == 8 && c.vocab_size == 11 && c.n_positions == 6);
    cr_assert(c.ln_eps == 1e-5f);
    /* n_ctx fallback, eps default, optional fields that match the model */
    char err[512], path[4200];
    cr_assert_eq(read_cfg("{\"n_layer\": 1, \"n_head\": 4, \"n_embd\": 16, \"vocab_size\": 50257, \"n_ctx\": 32}", &c,
                          err, sizeof err, path, sizeof path),
                 0, "%s", err);
    cr_assert(c.n_positions == 32 && c.ln_eps == 1e-5f && c.vocab_size == 50257);
    cfg_ok(", \"n_ctx\": 99", &c);
    cr_assert_eq(c.n_positions, 6); /* n_positions wins */
    cfg_ok(", \"n_inner\": null, \"scale_attn_weights\": true, \"scale_attn_by_inverse_layer_idx\": false", &c);
    cfg_ok(", \"n_inner\": 32, \"architectures\": [\"GPT2LMHeadModel\"], \"unknown_field\": [1, 2]", &c);
    cr_assert_eq(read_cfg("{\"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, \"vocab_size\": 5, \"n_positions\": 3, "
                          "\"activation_function\": \"gelu_pytorch_tanh\", \"layer_norm_epsilon\": 1}",
                          &c, err, sizeof err, path, sizeof path),
                 0, "%s", err);
    cr_assert(c.ln_eps == 1.0f);
    /* openai-community/gpt2's config.json, verbatim */
    const char *hub =
        "{\n  \"activation_function\": \"gelu_new\",\n  \"architectures\": [\n    \"GPT2LMHeadModel\"\n  ],\n"
        "  \"attn_pdrop\": 0.1,\n  \"bos_token_id\": 50256,\n  \"embd_pdrop\": 0.1,\n  \"eos_token_id\": 50256,\n"
        "  \"initializer_range\": 0.02,\n  \"layer_norm_epsilon\": 1e-05,\n  \"model_type\": \"gpt2\",\n"
        "  \"n_ctx\": 1024,\n  \"n_embd\": 768,\n  \"n_head\": 12,\n  \"n_layer\": 12,\n  \"n_positions\": 1024,\n"
        "  \"resid_pdrop\": 0.1,\n  \"summary_activation\": null,\n  \"summary_first_dropout\": 0.1,\n"
        "  \"summary_proj_to_labels\": true,\n  \"summary_type\": \"cls_index\",\n  \"summary_use_proj\": true,\n"
        "  \"task_specific_params\": {\n    \"text-generation\": {\n      \"do_sample\": true,\n"
        "      \"max_length\": 50\n    }\n  },\n  \"vocab_size\": 50257\n}\n";
    cr_assert_eq(read_cfg(hub, &c, err, sizeof err, path, sizeof path), 0, "%s", err);
    cr_assert(c.n_layer == 12 && c.n_head == 12 && c.n_embd == 768 && c.vocab_size == 50257 &&
              c.n_positions == 1024 && c.ln_eps == 1e-5f);
}

Test(hf, config_errors)
{
    cfg_fail_without("\"n_layer\"", "missing \"n_layer\"");
    cfg_fail_without("\"n_head\"", "missing \"n_head\"");
    cfg_fail_without("\"n_embd\"", "missing \"n_embd\"");
    cfg_fail_without("\"vocab_size\"", "missing \"vocab_size\"");
    cfg_fail_without("\"n_positions\"", "missing \"n_positions\"");
    char body[2048];
    snprintf(body, sizeof body, "%s, \"n_layer\": 3}", k_good_cfg);
    cfg_fail_body(body, "duplicate");
    cfg_fail_body("{\"n_layer\": \"2\", \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 11, \"n_positions\": 6}",
                  "\"n_layer\" must be a positive integer");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 2.0, \"n_embd\": 8, \"vocab_size\": 11, \"n_positions\": 6}",
                  "\"n_head\" must be a positive integer");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 0, \"vocab_size\": 11, \"n_positions\": 6}",
                  "\"n_embd\" must be a positive integer");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 3, \"n_embd\": 8, \"vocab_size\": 11, \"n_positions\": 6}",
                  "not a multiple of \"n_head\"");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 11, \"n_ctx\": -1}",
                  "\"n_ctx\" must be a positive integer");
    cfg_fail_body("{\"activation_function\": \"gelu\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": "
                  "11, \"n_positions\": 6}",
                  "activation_function");
    cfg_fail_body("{\"activation_function\": \"relu\", \"n_layer\": 2}", "activation_function");
    cfg_fail_body("{\"activation_function\": null, \"n_layer\": 2}", "activation_function");
    cfg_fail_body("{\"model_type\": \"gpt_neo\", \"n_layer\": 2}", "model_type");
    cfg_fail_body("{\"model_type\": 2, \"n_layer\": 2}", "model_type");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 11, \"n_positions\": 6, "
                  "\"layer_norm_epsilon\": -1}",
                  "layer_norm_epsilon");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 11, \"n_positions\": 6, "
                  "\"layer_norm_epsilon\": \"1e-5\"}",
                  "layer_norm_epsilon");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 11, \"n_positions\": 6, "
                  "\"n_inner\": 24}",
                  "n_inner");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 11, \"n_positions\": 6, "
                  "\"scale_attn_weights\": false}",
                  "scale_attn_weights");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 11, \"n_positions\": 6, "
                  "\"scale_attn_by_inverse_layer_idx\": true}",
                  "scale_attn_by_inverse_layer_idx");
    cfg_fail_body("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 99999999999, \"n_positions\": 6}",
                  "vocab_size");
    cfg_fail_body("{\"n_layer\": 2,\n \"n_head\": }", "invalid JSON");
    cfg_fail_body("[1]", "expected a JSON object");
    cfg_fail_body("", "invalid JSON");
}

Test(hf, config_errors_through_load)
{
    gpt2 *m = mk_model(&k_cfg, 3);
    const char *dir = tu_tmpdir("hf_cfgload");
    char cpath[4200], err[512];
    cr_assert_eq(hf_save_gpt2(m, dir, err, sizeof err), 0, "%s", err);
    fio_join(cpath, sizeof cpath, dir, "config.json");
    const char *c1 = "{\"n_layer\": 2, \"n_head\": 2, \"vocab_size\": 11, \"n_positions\": 6}";
    tu_write(cpath, c1, strlen(c1));
    load_fail(dir, cpath, "missing \"n_embd\"", NULL);
    /* a config that disagrees with the weights: the weights file is named with the tensor */
    const char *c2 = "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 12, \"n_positions\": 6}";
    tu_write(cpath, c2, strlen(c2));
    load_fail(dir, "model.safetensors", "\"transformer.wte.weight\"", "[11, 8] in the file, expected [12, 8]");
    remove(cpath);
    load_fail(dir, cpath, "cannot open", NULL);
    gpt2_free(m);
}

/* ---- folders written by another implementation (tools/golden, Python) ------------------------------ */

Test(hf, python_written_folders)
{
    if (!fio_exists(tu_data("gpt2/tiny/model.safetensors"))) cr_skip_test("tests/data/gpt2 not present");
    const char *names[] = {"gpt2/tiny", "gpt2/tiny_noprefix", "gpt2/tiny_f16", "gpt2/tiny_bf16"};
    gpt2 *m[4];
    char err[512];
    for (int i = 0; i < 4; i++) cr_assert_eq(hf_load_gpt2(tu_data(names[i]), &m[i], err, sizeof err), 0, "%s", err);
    const gpt2_config *c = gpt2_cfg(m[0]);
    cr_assert(c->n_layer == 2 && c->n_head == 2 && c->n_embd == 32 && c->vocab_size == 61 && c->n_positions == 16 &&
              c->ln_eps == 1e-5f);
    size_t n = gpt2_num_params(m[0]);
    const float *ref = gpt2_params(m[0]);
    cr_assert_eq(memcmp(ref, gpt2_params(m[1]), n * sizeof(float)), 0, "tiny_noprefix differs from tiny");
    const float *h = gpt2_params(m[2]), *b = gpt2_params(m[3]);
    for (size_t i = 0; i < n; i++) {
        cr_assert(h[i] == ref_half(to_half(ref[i])), "f16 param %zu: %a vs %a", i, (double)h[i], (double)ref[i]);
        cr_assert(b[i] == ref_bf16(to_bf16(ref[i])), "bf16 param %zu: %a vs %a", i, (double)b[i], (double)ref[i]);
    }
    /* and our writer's file loads to the same block */
    const char *dir = tu_tmpdir("hf_py");
    cr_assert_eq(hf_save_gpt2(m[0], dir, err, sizeof err), 0, "%s", err);
    gpt2 *again;
    cr_assert_eq(hf_load_gpt2(dir, &again, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(ref, gpt2_params(again), n * sizeof(float)), 0);
    gpt2_free(again);
    for (int i = 0; i < 4; i++) gpt2_free(m[i]);
    /* golden.safetensors (F64, I32, metadata) parses strictly */
    st_file *f;
    cr_assert_eq(st_open(tu_data("gpt2/tiny/golden.safetensors"), &f, err, sizeof err), 0, "%s", err);
    cr_assert(st_count(f) > 0 && st_metadata_count(f) > 0);
    st_close(f);
}
