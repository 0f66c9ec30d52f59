/* hf.c — Hugging Face GPT-2 config.json / model.safetensors <-> gpt2. See hf.h.
 *
 * The mapping is one table (HF name per parameter tensor id); per-layer tensors are the L
 * consecutive slices of the stacked block, so each HF tensor is one contiguous range of floats.
 */
#include "hf.h"

#include "checkpoint.h"
#include "fileio.h"
#include "safetensors.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- config.json ------------------------------------------------------------------------------- */

/* 1 present and valid (*out set), 0 absent, -1 invalid (err written) */
static int get_pos_int(json_t *root, const char *path, const char *key, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > INT_MAX) {
        fio_fail(err, errlen, "%s: \"%s\" must be a positive integer", path, key);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 1;
}

static int config_from_json(json_t *root, const char *path, gpt2_config *cfg, char *err, size_t errlen)
{
    if (!json_is_object(root)) return fio_fail(err, errlen, "%s:1:1: expected a JSON object", path);
    json_t *v = json_object_get(root, "model_type");
    if (v && !(json_is_string(v) && strcmp(json_string_value(v), "gpt2") == 0))
        return fio_fail(err, errlen, "%s: \"model_type\" must be \"gpt2\" (this loader reads GPT-2 only)", path);
    v = json_object_get(root, "activation_function");
    if (v && !(json_is_string(v) && (strcmp(json_string_value(v), "gelu_new") == 0 ||
                                     strcmp(json_string_value(v), "gelu_pytorch_tanh") == 0)))
        return fio_fail(err, errlen, "%s: \"activation_function\" must be \"gelu_new\" or \"gelu_pytorch_tanh\" "
                                 "(the tanh GELU this model implements)", path);

    gpt2_config c = {0};
    static const char *const req[] = {"n_layer", "n_head", "n_embd", "vocab_size"};
    int *dst[] = {&c.n_layer, &c.n_head, &c.n_embd, &c.vocab_size};
    for (int i = 0; i < 4; i++) {
        int r = get_pos_int(root, path, req[i], dst[i], err, errlen);
        if (r < 0) return -1;
        if (r == 0) return fio_fail(err, errlen, "%s: missing \"%s\"", path, req[i]);
    }
    int r = get_pos_int(root, path, "n_positions", &c.n_positions, err, errlen);
    if (r < 0) return -1;
    if (r == 0) {
        r = get_pos_int(root, path, "n_ctx", &c.n_positions, err, errlen);
        if (r < 0) return -1;
        if (r == 0) return fio_fail(err, errlen, "%s: missing \"n_positions\" (and no \"n_ctx\")", path);
    }
    c.ln_eps = 1e-5f;
    v = json_object_get(root, "layer_norm_epsilon");
    if (v) {
        double e = json_is_number(v) ? json_number_value(v) : -1;
        if (!(e > 0) || !isfinite(e) || e > 1 || (float)e <= 0)
            return fio_fail(err, errlen, "%s: \"layer_norm_epsilon\" must be a small positive number", path);
        c.ln_eps = (float)e;
    }
    if (c.n_embd % c.n_head != 0)
        return fio_fail(err, errlen, "%s: \"n_embd\" %d is not a multiple of \"n_head\" %d", path, c.n_embd, c.n_head);
    if (c.n_embd > INT_MAX / 4) return fio_fail(err, errlen, "%s: \"n_embd\" %d is too large", path, c.n_embd);
    v = json_object_get(root, "n_inner");
    if (v && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 4 * (json_int_t)c.n_embd))
        return fio_fail(err, errlen, "%s: \"n_inner\" must be null or 4*n_embd = %d (other MLP widths are not supported)",
                    path, 4 * c.n_embd);
    v = json_object_get(root, "scale_attn_weights");
    if (v && !json_is_true(v))
        return fio_fail(err, errlen, "%s: \"scale_attn_weights\" must be true (unscaled attention is not supported)", path);
    v = json_object_get(root, "scale_attn_by_inverse_layer_idx");
    if (v && !json_is_false(v))
        return fio_fail(err, errlen, "%s: \"scale_attn_by_inverse_layer_idx\" must be false (not supported)", path);
    *cfg = c;
    return 0;
}

int hf_read_config(const char *path, gpt2_config *cfg, char *err, size_t errlen)
{
    size_t len;
    char *buf = fio_read_all(path, &len, err, errlen);
    if (!buf) return -1;
    int rc = hf_parse_config(buf, len, path, cfg, err, errlen);
    free(buf);
    return rc;
}

int hf_parse_config(const char *text, size_t len, const char *path, gpt2_config *cfg, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        /* jansson's text may quote the offending bytes: keep the message on one line */
        for (char *p = je.text; *p; p++)
            if ((unsigned char)*p < 0x20) *p = ' ';
        return fio_fail(err, errlen, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column, je.text);
    }
    int rc = config_from_json(root, path, cfg, err, errlen);
    json_decref(root);
    return rc;
}

/* ---- names ------------------------------------------------------------------------------------- */

/* HF's name for each parameter tensor: per-layer ones are "h.{i}." + this */
static const char *const k_names[GPT2_NUM_TENSORS] = {
    [GPT2_WTE] = "wte.weight",
    [GPT2_WPE] = "wpe.weight",
    [GPT2_LN1W] = "ln_1.weight",
    [GPT2_LN1B] = "ln_1.bias",
    [GPT2_QKVW] = "attn.c_attn.weight",
    [GPT2_QKVB] = "attn.c_attn.bias",
    [GPT2_ATTPROJW] = "attn.c_proj.weight",
    [GPT2_ATTPROJB] = "attn.c_proj.bias",
    [GPT2_LN2W] = "ln_2.weight",
    [GPT2_LN2B] = "ln_2.bias",
    [GPT2_FCW] = "mlp.c_fc.weight",
    [GPT2_FCB] = "mlp.c_fc.bias",
    [GPT2_FCPROJW] = "mlp.c_proj.weight",
    [GPT2_FCPROJB] = "mlp.c_proj.bias",
    [GPT2_LNFW] = "ln_f.weight",
    [GPT2_LNFB] = "ln_f.bias",
};

#define HF_NAME_LEN 96

static void hf_name(char *buf, const char *prefix, const gpt2_tensor *tb, int k, int layer)
{
    if (tb[k].per_layer)
        snprintf(buf, HF_NAME_LEN, "%sh.%d.%s", prefix, layer, k_names[k]);
    else
        snprintf(buf, HF_NAME_LEN, "%s%s", prefix, k_names[k]);
}

void hf_tensor_name(char *buf, size_t n, int tensor, int layer, int prefixed)
{
    const char *pre = prefixed ? "transformer." : "";
    if (tensor == GPT2_WTE || tensor == GPT2_WPE || tensor == GPT2_LNFW || tensor == GPT2_LNFB)
        snprintf(buf, n, "%s%s", pre, k_names[tensor]);
    else
        snprintf(buf, n, "%sh.%d.%s", pre, layer, k_names[tensor]);
}

static const char *shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

/* "h.{i}.attn.bias" or "h.{i}.attn.masked_bias" with 0 <= i < L (after the prefix) */
static int is_mask_buffer(const char *name, const char *prefix, int L)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0) return 0;
    const char *s = name + pl;
    if (strncmp(s, "h.", 2) != 0) return 0;
    s += 2;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9')) return 0;
    long i = 0;
    while (*s >= '0' && *s <= '9') {
        i = i * 10 + (*s - '0');
        if (i >= L) return 0;
        s++;
    }
    return strcmp(s, ".attn.bias") == 0 || strcmp(s, ".attn.masked_bias") == 0;
}

/* ---- loading ----------------------------------------------------------------------------------- */

/* lm_head.weight (already shape-checked) must equal wte, whose floats are loaded at wte_f */
static int check_tied(const st_file *f, const st_tensor *lm, const st_tensor *wte, const float *wte_f, char *err,
                      size_t errlen)
{
    size_t n = lm->numel, bad = n;
    if (lm->dtype == wte->dtype) {
        size_t nb = lm->end - lm->begin, esz = st_dtype_size(lm->dtype);
        if (nb == 0 || memcmp(lm->data, wte->data, nb) == 0) return 0;
        for (size_t i = 0; i < nb; i++)
            if (lm->data[i] != wte->data[i]) {
                bad = i / esz;
                break;
            }
    } else {
        float *tmp = malloc((n ? n : 1) * sizeof *tmp);
        if (!tmp) return fio_fail(err, errlen, "%s: out of memory", st_name(f));
        if (st_read_f32(f, lm, tmp, n, err, errlen)) {
            free(tmp);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (memcmp(&tmp[i], &wte_f[i], sizeof(float)) != 0) {
                bad = i;
                break;
            }
        free(tmp);
        if (bad == n) return 0;
    }
    return fio_fail(err, errlen,
                "%s: tensor \"lm_head.weight\" differs from \"%s\" at element %zu (an untied output embedding is not "
                "supported)",
                st_name(f), wte->name, bad);
}

/* score_w: NULL for a plain GPT-2 file; else "score.weight" [1, C] (a sequence classifier's head)
 * must be present and is read into score_w (C floats) */
static int load_tensors(const st_file *f, gpt2 *m, float *score_w, char *err, size_t errlen)
{
    const gpt2_config *c = gpt2_cfg(m);
    const gpt2_tensor *tb = gpt2_param_table(m);
    float *p = gpt2_params(m);
    /* one naming for the whole file: prefixed as soon as any tensor is */
    size_t nt = st_count(f);
    const char *prefix = "";
    for (size_t i = 0; i < nt; i++)
        if (strncmp(st_get(f, i)->name, "transformer.", 12) == 0) prefix = "transformer.";
    unsigned char *used = calloc(nt ? nt : 1, 1);
    if (!used) return fio_fail(err, errlen, "%s: out of memory", st_name(f));
    char name[HF_NAME_LEN], s1[96], s2[96];
    int rc = -1;
    for (int k = 0; k < GPT2_NUM_TENSORS; k++) {
        int reps = tb[k].per_layer ? c->n_layer : 1;
        size_t each = (size_t)tb[k].shape[0] * (size_t)tb[k].shape[1];
        int64_t want[2] = {tb[k].shape[0], tb[k].shape[1]};
        for (int l = 0; l < reps; l++) {
            hf_name(name, prefix, tb, k, l);
            const st_tensor *t = st_find(f, name);
            if (!t) {
                if (k == GPT2_WTE && !*prefix)
                    fio_fail(err, errlen, "%s: tensor \"wte.weight\" (or \"transformer.wte.weight\") is missing",
                         st_name(f));
                else
                    fio_fail(err, errlen, "%s: tensor \"%s\" is missing", st_name(f), name);
                goto done;
            }
            if (t->ndim != tb[k].ndim || t->shape[0] != want[0] || (tb[k].ndim == 2 && t->shape[1] != want[1])) {
                fio_fail(err, errlen, "%s: tensor \"%s\": shape %s in the file, expected %s", st_name(f), name,
                     shape_str(s1, sizeof s1, t->ndim, t->shape), shape_str(s2, sizeof s2, tb[k].ndim, want));
                goto done;
            }
            if (st_read_f32(f, t, p + tb[k].offset + (size_t)l * each, each, err, errlen)) goto done;
            used[t->index] = 1;
        }
    }
    for (size_t i = 0; i < nt; i++) {
        const st_tensor *t = st_get(f, i);
        if (used[i] || is_mask_buffer(t->name, prefix, c->n_layer)) continue;
        if (strcmp(t->name, "lm_head.weight") == 0) {
            int64_t want[2] = {c->vocab_size, c->n_embd};
            if (t->ndim != 2 || t->shape[0] != want[0] || t->shape[1] != want[1]) {
                fio_fail(err, errlen, "%s: tensor \"lm_head.weight\": shape %s in the file, expected %s", st_name(f),
                     shape_str(s1, sizeof s1, t->ndim, t->shape), shape_str(s2, sizeof s2, 2, want));
                goto done;
            }
            hf_name(name, prefix, tb, GPT2_WTE, 0);
            if (check_tied(f, t, st_find(f, name), p + tb[GPT2_WTE].offset, err, errlen)) goto done;
            continue;
        }
        if (score_w && strcmp(t->name, HF_SCORE_NAME) == 0) {
            int64_t want[2] = {1, c->n_embd};
            if (t->ndim != 2 || t->shape[0] != 1 || t->shape[1] != c->n_embd) {
                fio_fail(err, errlen, "%s: tensor \"" HF_SCORE_NAME "\": shape %s in the file, expected %s (one label)",
                         st_name(f), shape_str(s1, sizeof s1, t->ndim, t->shape), shape_str(s2, sizeof s2, 2, want));
                goto done;
            }
            if (st_read_f32(f, t, score_w, (size_t)c->n_embd, err, errlen)) goto done;
            used[i] = 1;
            continue;
        }
        char nb[120];
        fio_fail(err, errlen, "%s: unexpected tensor \"%s\" (not a GPT-2 parameter with n_layer=%d)", st_name(f),
                 fio_show(t->name, nb, sizeof nb), c->n_layer);
        goto done;
    }
    if (score_w) {
        const st_tensor *t = st_find(f, HF_SCORE_NAME);
        if (!t || !used[t->index]) {
            fio_fail(err, errlen, "%s: tensor \"" HF_SCORE_NAME "\" is missing (not a sequence-classification model)",
                     st_name(f));
            goto done;
        }
    }
    rc = 0;
done:
    free(used);
    gpt2_weights_changed(m); /* any bf16 copies of the old values are stale */
    return rc;
}

/* the trunk (and, with score_w, the score head) of dir into a new gpt2 */
static int load_dir(const char *path, gpt2 **out, float *score_w, char *err, size_t errlen)
{
    *out = NULL;
    char dir[4096], cpath[4096], wpath[4096], e2[GPT2_ERR_LEN];
    if (ckpt_resolve(path, dir, sizeof dir, err, errlen)) return -1;
    fio_join(cpath, sizeof cpath, dir, "config.json");
    fio_join(wpath, sizeof wpath, dir, "model.safetensors");
    gpt2_config cfg;
    if (hf_read_config(cpath, &cfg, err, errlen)) return -1;
    gpt2 *m;
    if (gpt2_create(&m, &cfg, e2, sizeof e2)) return fio_fail(err, errlen, "%s: %s", cpath, e2);
    st_file *f;
    if (st_open(wpath, &f, err, errlen)) {
        gpt2_free(m);
        return -1;
    }
    int rc = load_tensors(f, m, score_w, err, errlen);
    st_close(f);
    if (rc) {
        gpt2_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int hf_load_gpt2(const char *dir, gpt2 **out, char *err, size_t errlen) { return load_dir(dir, out, NULL, err, errlen); }

int hf_load_gpt2_score(const char *path, gpt2 **out, float **score_w, int *pad_token_id, char *err, size_t errlen)
{
    *out = NULL;
    *score_w = NULL;
    char dir[4096], cpath[4096];
    if (ckpt_resolve(path, dir, sizeof dir, err, errlen)) return -1;
    fio_join(cpath, sizeof cpath, dir, "config.json");
    gpt2_config cfg;
    if (hf_read_config(cpath, &cfg, err, errlen)) return -1;
    /* the fields only a classifier has: the label count and the pad token it pools before */
    size_t len;
    char *buf = fio_read_all(cpath, &len, err, errlen);
    if (!buf) return -1;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    json_t *labels = root ? json_object_get(root, "id2label") : NULL, *nl = root ? json_object_get(root, "num_labels") : NULL,
           *pad = root ? json_object_get(root, "pad_token_id") : NULL;
    int bad_labels = (labels && !(json_is_object(labels) && json_object_size(labels) == 1)) ||
                     (nl && !(json_is_integer(nl) && json_integer_value(nl) == 1));
    int bad_pad = pad && !json_is_null(pad) &&
                  !(json_is_integer(pad) && json_integer_value(pad) >= 0 && json_integer_value(pad) < cfg.vocab_size);
    *pad_token_id = pad && json_is_integer(pad) ? (int)json_integer_value(pad) : -1;
    json_decref(root);
    if (bad_labels) return fio_fail(err, errlen, "%s: a reward model has exactly one label (num_labels 1)", cpath);
    if (bad_pad)
        return fio_fail(err, errlen, "%s: \"pad_token_id\" must be null or a token id below vocab_size %d", cpath,
                        cfg.vocab_size);
    float *w = malloc((size_t)cfg.n_embd * sizeof *w);
    if (!w) return fio_fail(err, errlen, "%s: out of memory", cpath);
    if (load_dir(dir, out, w, err, errlen)) {
        free(w);
        return -1;
    }
    *score_w = w;
    return 0;
}

/* ---- saving ------------------------------------------------------------------------------------ */

/* the float as the shortest decimal that reads back (through double, as JSON readers do) to it */
static double short_decimal(float x)
{
    char buf[40];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        double d = strtod(buf, NULL);
        if ((float)d == x) return d;
    }
    return (double)x;
}

static json_t *config_json(const gpt2_config *c)
{
    int tok = c->vocab_size == 50257 ? 50256 : c->vocab_size - 1;
    return json_pack("{s:s, s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:n, s:f, s:f, s:f, s:f, s:i, s:i,"
                     " s:b, s:b, s:b, s:b, s:b, s:s}",
                     "model_type", "gpt2", "architectures", "GPT2LMHeadModel", "activation_function", "gelu_new",
                     "n_layer", c->n_layer, "n_head", c->n_head, "n_embd", c->n_embd, "n_positions", c->n_positions,
                     "n_ctx", c->n_positions, "vocab_size", c->vocab_size, "layer_norm_epsilon",
                     short_decimal(c->ln_eps), "n_inner", "resid_pdrop", 0.1, "embd_pdrop", 0.1, "attn_pdrop", 0.1,
                     "initializer_range", 0.02, "bos_token_id", tok, "eos_token_id", tok, "tie_word_embeddings", 1,
                     "scale_attn_weights", 1, "use_cache", 1, "scale_attn_by_inverse_layer_idx", 0,
                     "reorder_and_upcast_attn", 0, "torch_dtype", "float32");
}

/* dir/model.safetensors (the trunk, then `extra` tensors) and dir/config.json (config_json plus the
 * members of `overrides`, which replace same-named ones) */
static int save_dir(const gpt2 *m, const char *dir, const st_out *extra, size_t nextra, json_t *overrides,
                    char *err, size_t errlen)
{
    if (fio_mkdirs(dir, err, errlen)) return -1;
    char cpath[4096], wpath[4096];
    fio_join(cpath, sizeof cpath, dir, "config.json");
    fio_join(wpath, sizeof wpath, dir, "model.safetensors");
    const gpt2_config *c = gpt2_cfg(m);
    const gpt2_tensor *tb = gpt2_param_table(m);
    /* gpt2_params takes a non-const model; the block is only read here */
    const float *p = gpt2_params_const(m);

    size_t n = 0;
    for (int k = 0; k < GPT2_NUM_TENSORS; k++) n += tb[k].per_layer ? (size_t)c->n_layer : 1;
    st_out *outs = calloc(n + nextra, sizeof *outs);
    char *names = calloc(n, HF_NAME_LEN);
    if (!outs || !names) {
        free(outs);
        free(names);
        return fio_fail(err, errlen, "%s: out of memory", wpath);
    }
    /* transformers' module order: wte, wpe, h.0.*, h.1.*, ..., ln_f */
    size_t j = 0;
    const int layer_ids[] = {GPT2_LN1W, GPT2_LN1B, GPT2_QKVW, GPT2_QKVB, GPT2_ATTPROJW, GPT2_ATTPROJB,
                             GPT2_LN2W, GPT2_LN2B, GPT2_FCW,  GPT2_FCB,  GPT2_FCPROJW,  GPT2_FCPROJB};
    const int nl = (int)(sizeof layer_ids / sizeof *layer_ids);
    for (int pass = 0; pass < 3; pass++) {
        int reps = pass == 1 ? c->n_layer : 1;
        for (int l = 0; l < reps; l++) {
            int cnt = pass == 1 ? nl : 2;
            for (int q = 0; q < cnt; q++) {
                int k = pass == 0 ? (q == 0 ? GPT2_WTE : GPT2_WPE)
                      : pass == 1 ? layer_ids[q]
                                  : (q == 0 ? GPT2_LNFW : GPT2_LNFB);
                size_t each = (size_t)tb[k].shape[0] * (size_t)tb[k].shape[1];
                char *nm = names + j * HF_NAME_LEN;
                hf_name(nm, "transformer.", tb, k, l);
                outs[j].name = nm;
                outs[j].dtype = ST_F32;
                outs[j].ndim = tb[k].ndim;
                outs[j].shape[0] = tb[k].shape[0];
                outs[j].shape[1] = tb[k].shape[1];
                outs[j].data = p + tb[k].offset + (size_t)l * each;
                j++;
            }
        }
    }
    for (size_t e = 0; e < nextra; e++) outs[j++] = extra[e];
    const st_meta meta = {"format", "pt"};
    int rc = st_write(wpath, outs, j, &meta, 1, err, errlen);
    free(outs);
    free(names);
    if (rc) return -1;

    json_t *root = config_json(c);
    if (root && overrides) json_object_update(root, overrides);
    char *s = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(root);
    if (!s) return fio_fail(err, errlen, "%s: cannot serialise the configuration", cpath);
    size_t sl = strlen(s);
    char *t = realloc(s, sl + 2);
    if (!t) {
        free(s);
        return fio_fail(err, errlen, "%s: out of memory", cpath);
    }
    t[sl] = '\n';
    t[sl + 1] = 0;
    rc = fio_write_atomic(cpath, t, sl + 1, err, errlen);
    free(t);
    return rc;
}

int hf_save_gpt2(const gpt2 *m, const char *dir, char *err, size_t errlen)
{
    return save_dir(m, dir, NULL, 0, NULL, err, errlen);
}

int hf_save_gpt2_score(const gpt2 *m, const float *score_w, int pad_token_id, const char *dir, char *err, size_t errlen)
{
    const int C = gpt2_cfg(m)->n_embd;
    st_out score = {.name = HF_SCORE_NAME, .dtype = ST_F32, .ndim = 2, .shape = {1, C}, .data = score_w};
    json_t *o = json_pack("{s:[s], s:i, s:{s:s}, s:{s:i}, s:o}", "architectures", "GPT2ForSequenceClassification",
                          "num_labels", 1, "id2label", "0", "LABEL_0", "label2id", "LABEL_0", 0, "pad_token_id",
                          pad_token_id >= 0 ? json_integer(pad_token_id) : json_null());
    if (!o) return fio_fail(err, errlen, "%s: cannot build the configuration", dir);
    int rc = save_dir(m, dir, &score, 1, o, err, errlen);
    json_decref(o);
    return rc;
}
