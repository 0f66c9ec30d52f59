/* rm.c — the Bradley–Terry reward model: scoring, loss, normalisation, folder, trainer. See rm.h. */
#include "rm.h"

#include "fileio.h"
#include "hf.h"
#include "rng.h"
#include "tok.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the model --------------------------------------------------------------------------------- */

int rm_create(rm_model **out, gpt2 *m, head *h, int32_t pad_id, char *err, size_t errlen)
{
    *out = NULL;
    rm_model *r = calloc(1, sizeof *r);
    if (!r || head_dim(h) != gpt2_cfg(m)->n_embd) {
        int C = gpt2_cfg(m)->n_embd, H = head_dim(h);
        free(r);
        gpt2_free(m);
        head_free(h);
        return r ? fio_fail(err, errlen, "reward model: head width %d differs from the trunk's n_embd %d", H, C)
                 : fio_fail(err, errlen, "reward model: out of memory");
    }
    r->m = m;
    r->h = h;
    r->pad_id = pad_id;
    head_set_threads(h, gpt2_threads(m));
    *out = r;
    return 0;
}

void rm_free(rm_model *r)
{
    if (!r) return;
    gpt2_free(r->m);
    head_free(r->h);
    free(r->pos);
    free(r->dhidden);
    free(r);
}

void rm_positions(const int32_t *tokens, const int *lengths, int B, int T, int32_t pad_id, int *pos)
{
    for (int b = 0; b < B; b++) {
        int n = lengths[b] < T ? lengths[b] : T, p = n - 1;
        while (p >= 0 && tokens[(size_t)b * T + p] == pad_id) p--;
        pos[b] = p >= 0 ? p : 0; /* transformers' argmax of an all-zero row */
    }
}

int rm_forward(rm_model *r, const int32_t *tokens, const int *lengths, int B, int T, float *scores, char *err,
               size_t errlen)
{
    if (B > r->cap_rows) {
        int *p = realloc(r->pos, (size_t)B * sizeof *p);
        if (!p) return fio_fail(err, errlen, "reward model: out of memory");
        r->pos = p;
        r->cap_rows = B;
    }
    if (gpt2_forward_hidden(r->m, tokens, B, T, err, errlen)) return -1;
    rm_positions(tokens, lengths, B, T, r->pad_id, r->pos);
    r->B = B;
    r->T = T;
    return head_forward_rows(r->h, gpt2_hidden(r->m), B, T, r->pos, scores, err, errlen);
}

int rm_backward(rm_model *r, const float *dscores, char *err, size_t errlen)
{
    const int C = gpt2_cfg(r->m)->n_embd, B = r->B, T = r->T; /* of the last forward */
    if (B < 1) return fio_fail(err, errlen, "reward model: backward without a forward");
    const size_t n = (size_t)B * (size_t)T * (size_t)C;
    if (n > r->cap_dh) {
        float *d = realloc(r->dhidden, n * sizeof *d);
        if (!d) return fio_fail(err, errlen, "reward model: out of memory");
        r->dhidden = d;
        r->cap_dh = n;
    }
    memset(r->dhidden, 0, n * sizeof *r->dhidden);
    if (head_backward_rows(r->h, gpt2_hidden(r->m), B, T, r->pos, dscores, r->dhidden, err, errlen)) return -1;
    return gpt2_backward(r->m, NULL, r->dhidden, err, errlen);
}

/* -log σ(x) without overflow, and σ */
static double neg_logsig(double x) { return x >= 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); }
static double sigm(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

double rm_bt_loss(const float *rc, const float *rr, const float *margin, int n, double center, float *drc, float *drr,
                  rm_stats *st)
{
    rm_stats s = {0};
    for (int i = 0; i < n; i++) {
        const double d = (double)rc[i] - rr[i], x = d - (margin ? margin[i] : 0), sum = (double)rc[i] + rr[i];
        s.loss += neg_logsig(x) + center * sum * sum;
        /* d/dx -log σ(x) = -σ(-x); d/dr (r_c + r_r)^2 = 2 (r_c + r_r) */
        const double g = -sigm(-x), gc = 2 * center * sum;
        if (drc) drc[i] = (float)((g + gc) / n);
        if (drr) drr[i] = (float)((-g + gc) / n);
        s.accuracy += rc[i] > rr[i];
        s.margin += d;
        s.chosen += rc[i];
        s.rejected += rr[i];
    }
    if (n > 0) {
        s.loss /= n;
        s.accuracy /= n;
        s.margin /= n;
        s.chosen /= n;
        s.rejected /= n;
    }
    if (st) *st = s;
    return s.loss;
}

/* ---- folder ------------------------------------------------------------------------------------ */

#define RM_SIDE_FILE "reward.json"

static char *side_json(const rm_model *r)
{
    json_t *j = json_pack("{s:f, s:b, s:f, s:f, s:I, s:s}", "bias", (double)head_params_const(r->h)[head_dim(r->h)],
                          "normalized", r->normalized, "reference_mean", r->ref_mean, "reference_std", r->ref_std,
                          "samples", (json_int_t)r->ref_samples, "note",
                          "score = GPT2ForSequenceClassification logit + bias (transformers' score layer has no bias)");
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(j);
    return s;
}

int rm_save(const rm_model *r, const char *dir, const ckpt_file *extra, size_t nextra, char *err, size_t errlen)
{
    char tmp[4200], old[4300], p[4300];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", dir) >= sizeof tmp) return fio_fail(err, errlen, "%s: path too long", dir);
    char parent[4200];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        if (fio_mkdirs(parent, err, errlen)) return -1;
    }
    if (!mkdtemp(tmp)) return fio_fail(err, errlen, "%s: cannot create a temporary folder: %s", dir, strerror(errno));
    char *side = side_json(r);
    int rc = side ? 0 : fio_fail(err, errlen, "%s: out of memory", dir);
    if (rc == 0) rc = hf_save_gpt2_score(r->m, head_params_const(r->h), r->pad_id, tmp, err, errlen);
    if (rc == 0) rc = fio_write_atomic(fio_join(p, sizeof p, tmp, RM_SIDE_FILE), side, strlen(side), err, errlen);
    for (size_t i = 0; rc == 0 && i < nextra; i++)
        rc = fio_write_atomic(fio_join(p, sizeof p, tmp, extra[i].name), extra[i].data, extra[i].len, err, errlen);
    free(side);
    if (rc) {
        fio_remove_tree(tmp, NULL, 0);
        return -1;
    }
    /* replace dir whole: the old one aside, the new one in, the old one dropped */
    snprintf(old, sizeof old, "%s.old", tmp);
    int had = fio_exists(dir) && rename(dir, old) == 0;
    if (rename(tmp, dir) != 0) {
        fio_fail(err, errlen, "%s: cannot rename into place: %s", dir, strerror(errno));
        if (had) rename(old, dir);
        fio_remove_tree(tmp, NULL, 0);
        return -1;
    }
    if (had) fio_remove_tree(old, NULL, 0);
    return 0;
}

/* reward.json into r (bias into the head) */
static int read_side(rm_model *r, const char *path, char *err, size_t errlen)
{
    size_t n;
    char *s = fio_read_all(path, &n, err, errlen);
    if (!s) return -1;
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    free(s);
    if (!j) return fio_fail(err, errlen, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column, je.text);
    json_t *b = json_object_get(j, "bias"), *nz = json_object_get(j, "normalized");
    int rc = 0;
    if (!json_is_number(b) || !isfinite(json_number_value(b)))
        rc = fio_fail(err, errlen, "%s: \"bias\" must be a finite number", path);
    else {
        head_params(r->h)[head_dim(r->h)] = (float)json_number_value(b);
        r->normalized = json_is_true(nz);
        json_t *x;
        if ((x = json_object_get(j, "reference_mean")) && json_is_number(x)) r->ref_mean = json_number_value(x);
        if ((x = json_object_get(j, "reference_std")) && json_is_number(x)) r->ref_std = json_number_value(x);
        if ((x = json_object_get(j, "samples")) && json_is_integer(x)) r->ref_samples = (long)json_integer_value(x);
    }
    json_decref(j);
    return rc;
}

int rm_load(const char *dir, rm_model **out, char *err, size_t errlen)
{
    *out = NULL;
    gpt2 *m;
    float *w;
    int pad;
    if (hf_load_gpt2_score(dir, &m, &w, &pad, err, errlen)) return -1;
    head *h;
    if (head_create(&h, gpt2_cfg(m)->n_embd, err, errlen)) {
        free(w);
        gpt2_free(m);
        return -1;
    }
    memcpy(head_params(h), w, (size_t)head_dim(h) * sizeof *w);
    free(w);
    rm_model *r;
    if (rm_create(&r, m, h, pad, err, errlen)) return -1;
    char p[4200];
    fio_join(p, sizeof p, dir, RM_SIDE_FILE);
    if (fio_exists(p) && read_side(r, p, err, errlen)) {
        rm_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int rm_init(const char *dir, uint64_t seed, int32_t pad_id, rm_model **out, char *err, size_t errlen)
{
    char p[4200];
    if (fio_exists(fio_join(p, sizeof p, dir, RM_SIDE_FILE))) {
        if (rm_load(dir, out, err, errlen)) return -1;
        (*out)->pad_id = pad_id;
        return 0;
    }
    *out = NULL;
    gpt2 *m;
    head *h;
    if (hf_load_gpt2(dir, &m, err, errlen)) return -1;
    const int C = gpt2_cfg(m)->n_embd;
    if (head_create(&h, C, err, errlen)) {
        gpt2_free(m);
        return -1;
    }
    head_init(h, 1.0 / sqrt((double)C + 1.0), seed);
    return rm_create(out, m, h, pad_id, err, errlen);
}

/* ---- scoring whole datasets -------------------------------------------------------------------- */

int rm_score_dataset(rm_model *r, const ds_dataset *d, int batch, float *out, char *err, size_t errlen)
{
    const int per = d->kind == DS_PREFERENCE ? 2 : 1;
    if (batch < 1) batch = 1;
    ds_batch b = {0};
    size_t *idx = malloc((size_t)batch * sizeof *idx);
    float *sc = malloc((size_t)batch * per * sizeof *sc);
    int rc = !idx || !sc ? fio_fail(err, errlen, "out of memory") : ds_batch_create(&b, batch * per, d->max_row, err, errlen);
    for (size_t i = 0; rc == 0 && i < d->n; i += (size_t)batch) {
        size_t k = d->n - i < (size_t)batch ? d->n - i : (size_t)batch;
        for (size_t j = 0; j < k; j++) idx[j] = i + j;
        rc = ds_batch_fill(d, idx, k, &b, err, errlen);
        if (rc == 0) rc = rm_forward(r, b.tokens, b.lengths, b.B, b.T, sc, err, errlen);
        for (size_t j = 0; rc == 0 && j < k; j++) {
            if (per == 1) out[i + j] = sc[j];
            else {
                out[2 * (i + j)] = sc[j];
                out[2 * (i + j) + 1] = sc[k + j];
            }
        }
    }
    ds_batch_free(&b);
    free(idx);
    free(sc);
    return rc;
}

int rm_read_margins(const ds_dataset *d, float **out, char *err, size_t errlen)
{
    *out = NULL;
    if (d->n == 0 || strcmp(d->path, "-") == 0) return 0;
    FILE *f = fopen(d->path, "rb");
    if (!f) return fio_fail(err, errlen, "%s: %s", d->path, strerror(errno));
    float *m = NULL;
    char *line = NULL;
    size_t cap = 0, k = 0;
    long lineno = 0;
    int rc = 0, first = -1;
    ssize_t got;
    while (rc == 0 && k < d->n && (got = getline(&line, &cap, f)) >= 0) {
        if (++lineno != d->ex[k].line) continue; /* blank lines: the dataset skipped them too */
        json_t *j = json_loadb(line, (size_t)got, 0, NULL);
        json_t *v = j ? json_object_get(j, "margin") : NULL;
        if (first < 0) {
            first = v != NULL;
            if (first && !(m = malloc(d->n * sizeof *m))) rc = fio_fail(err, errlen, "out of memory");
        }
        if (rc == 0 && (v != NULL) != first)
            rc = fio_fail(err, errlen, "%s:%ld:1: field \"margin\" is %s (line %ld %s one: margins go in every record or in none)",
                          d->path, lineno, v ? "present" : "missing", d->ex[0].line, first ? "has" : "has no");
        else if (rc == 0 && v && !(json_is_number(v) && isfinite(json_number_value(v))))
            rc = fio_fail(err, errlen, "%s:%ld:1: field \"margin\" must be a number", d->path, lineno);
        else if (rc == 0 && v)
            m[k] = (float)json_number_value(v);
        json_decref(j);
        k++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && k < d->n) rc = fio_fail(err, errlen, "%s: changed while it was being read", d->path);
    if (rc) {
        free(m);
        return -1;
    }
    *out = m;
    return 0;
}

/* ---- normalisation ----------------------------------------------------------------------------- */

int rm_normalize(rm_model *r, gpt2 *ref, const int32_t *const *prompts, const int *plen, int nprompts, int n_samples,
                 int batch, const gpt2_sample_opts *so, rm_norm_stats *st, char *err, size_t errlen)
{
    if (nprompts < 1 || n_samples < 2) return fio_fail(err, errlen, "normalisation needs prompts and at least 2 samples");
    if (batch < 1) batch = 1;
    const int maxn = so->max_new_tokens, P = gpt2_cfg(ref)->n_positions < gpt2_cfg(r->m)->n_positions
                                                  ? gpt2_cfg(ref)->n_positions
                                                  : gpt2_cfg(r->m)->n_positions;
    int maxp = 0;
    for (int i = 0; i < nprompts; i++) maxp = plen[i] > maxp ? plen[i] : maxp;
    if (maxp + maxn > P)
        return fio_fail(err, errlen, "normalisation: a prompt of %d tokens plus %d new tokens exceeds the %d positions", maxp,
                        maxn, P);
    const int T = maxp + maxn;
    int32_t *gen = malloc((size_t)batch * maxn * sizeof *gen), *rows = malloc((size_t)batch * T * sizeof *rows);
    int *olen = malloc((size_t)batch * sizeof *olen), *len = malloc((size_t)batch * sizeof *len);
    const int32_t **pp = malloc((size_t)batch * sizeof *pp);
    int *pl = malloc((size_t)batch * sizeof *pl);
    double *all = malloc((size_t)n_samples * sizeof *all);
    float *sc = malloc((size_t)batch * sizeof *sc);
    int rc = (!gen || !rows || !olen || !len || !pp || !pl || !all || !sc) ? fio_fail(err, errlen, "out of memory") : 0;
    for (int i0 = 0; rc == 0 && i0 < n_samples; i0 += batch) {
        const int k = n_samples - i0 < batch ? n_samples - i0 : batch;
        for (int j = 0; j < k; j++) {
            pp[j] = prompts[(i0 + j) % nprompts];
            pl[j] = plen[(i0 + j) % nprompts];
        }
        gpt2_sample_opts o = *so;
        o.seed = rng_stream(so->seed, (uint64_t)i0); /* each batch its own streams */
        rc = gpt2_sample(ref, k, pp, pl, &o, gen, olen, NULL, err, errlen);
        int Tb = 1;
        for (int j = 0; rc == 0 && j < k; j++) {
            len[j] = pl[j] + olen[j];
            Tb = len[j] > Tb ? len[j] : Tb;
        }
        for (int j = 0; rc == 0 && j < k; j++) {
            int32_t *row = rows + (size_t)j * Tb;
            memcpy(row, pp[j], (size_t)pl[j] * sizeof *row);
            memcpy(row + pl[j], gen + (size_t)j * maxn, (size_t)olen[j] * sizeof *row);
            for (int t = len[j]; t < Tb; t++) row[t] = r->pad_id >= 0 ? r->pad_id : 0;
        }
        if (rc == 0) rc = rm_forward(r, rows, len, k, Tb, sc, err, errlen);
        for (int j = 0; rc == 0 && j < k; j++) all[i0 + j] = sc[j];
    }
    double mean = 0, var = 0;
    for (int i = 0; rc == 0 && i < n_samples; i++) mean += all[i];
    mean /= n_samples;
    for (int i = 0; rc == 0 && i < n_samples; i++) var += (all[i] - mean) * (all[i] - mean);
    const double sd = sqrt(var / n_samples);
    if (rc == 0 && !(sd > 1e-12 && isfinite(sd)))
        rc = fio_fail(err, errlen, "normalisation: the %d reference samples all score %g (no spread to scale)", n_samples,
                      mean);
    if (rc == 0) {
        /* new score = (old - mean) / sd: w' = w / sd, b' = (b - mean) / sd */
        float *p = head_params(r->h);
        const int C = head_dim(r->h);
        for (int i = 0; i < C; i++) p[i] = (float)(p[i] / sd);
        p[C] = (float)((p[C] - mean) / sd);
        r->normalized = 1;
        r->ref_mean = mean;
        r->ref_std = sd;
        r->ref_samples = n_samples;
        if (st) *st = (rm_norm_stats){mean, sd, n_samples};
    }
    free(gen);
    free(rows);
    free(olen);
    free(len);
    free(pp);
    free(pl);
    free(all);
    free(sc);
    return rc;
}

/* ---- training ---------------------------------------------------------------------------------- */

rm_opts rm_defaults(void)
{
    rm_opts o = {0};
    o.h = trainer_hparams_defaults();
    o.h.lr = 1e-4f;
    o.h.epochs = 1;
    o.normalize_samples = 256;
    o.normalize_max_new_tokens = 32;
    o.normalize_temperature = 1.0f;
    return o;
}

#define RM_HEAD_FILE "score_head.safetensors"
#define RM_HEAD_OPT_FILE "score_head_optimizer.safetensors"

/* eval: every pair of ev scored in file order, then the loss and metrics over all of them */
static int evaluate(rm_model *r, const ds_dataset *ev, const float *margins, int batch, double center, float *buf,
                    rm_stats *s, char *err, size_t errlen)
{
    if (rm_score_dataset(r, ev, batch, buf, err, errlen)) return -1;
    /* buf holds (chosen, rejected) pairs: split into the two halves rm_bt_loss takes */
    float *rc = buf + 2 * ev->n, *rr = rc + ev->n;
    for (size_t i = 0; i < ev->n; i++) {
        rc[i] = buf[2 * i];
        rr[i] = buf[2 * i + 1];
    }
    rm_bt_loss(rc, rr, margins, (int)ev->n, center, NULL, NULL, s);
    return 0;
}

/* the prompts for the normalisation, loaded (and checked) before training starts */
static int load_norm_prompts(const rm_opts *o, const tok_tokenizer *t, int n_positions, ds_dataset *p, char *err,
                             size_t errlen)
{
    ds_load_opts lo = ds_load_defaults();
    lo.require_kind = DS_PROMPT_ONLY;
    lo.max_prompt_len = n_positions - o->normalize_max_new_tokens;
    if (lo.max_prompt_len < 1)
        return fio_fail(err, errlen, "--normalize-max-new-tokens %d leaves no room for a prompt in %d positions",
                        o->normalize_max_new_tokens, n_positions);
    if (ds_load(p, t, o->normalize_prompts, &lo, err, errlen)) return -1;
    const char *ref = o->normalize_ref ? o->normalize_ref : o->model;
    char cpath[4200];
    gpt2_config c;
    if (hf_read_config(fio_join(cpath, sizeof cpath, ref, "config.json"), &c, err, errlen)) return -1;
    if (o->normalize_samples < 2) return fio_fail(err, errlen, "normalisation needs at least 2 samples");
    return 0;
}

static int normalize_final(rm_model *r, const rm_opts *o, const ds_dataset *p, int32_t eos, rm_norm_stats *ns, char *err,
                           size_t errlen)
{
    gpt2 *ref;
    if (hf_load_gpt2(o->normalize_ref ? o->normalize_ref : o->model, &ref, err, errlen)) return -1;
    gpt2_set_threads(ref, gpt2_threads(r->m));
    const int32_t **pr = malloc(p->n * sizeof *pr);
    int *pl = malloc(p->n * sizeof *pl);
    int rc = !pr || !pl ? fio_fail(err, errlen, "out of memory") : 0;
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        pr[i] = p->tok + p->ex[i].prompt;
        pl[i] = p->ex[i].np;
        if (pl[i] < 1) rc = fio_fail(err, errlen, "%s:%ld: an empty prompt cannot be sampled from", p->path, p->ex[i].line);
    }
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.temperature = o->normalize_temperature;
    so.max_new_tokens = o->normalize_max_new_tokens;
    so.stop_token = eos;
    so.seed = rng_stream(o->h.seed, 0x6e6f726dull); /* "norm" */
    if (rc == 0)
        rc = rm_normalize(r, ref, pr, pl, (int)p->n, o->normalize_samples, o->h.batch * 2, &so, ns, err, errlen);
    free(pr);
    free(pl);
    gpt2_free(ref);
    return rc;
}

int rm_run(const rm_opts *o, rm_result *res, char *err, size_t errlen)
{
    rm_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    res->eval = (rm_stats){NAN, NAN, NAN, NAN, NAN};
    const trainer_hparams *h = &o->h;
    if (trainer_hparams_check(h, err, errlen)) return -1;
    if (!(o->center >= 0)) return fio_fail(err, errlen, "the centering coefficient must not be negative");
    trainer tr;
    tok_tokenizer *t;
    int nt;
    const trainer_opts to = {o->out, o->resume, o->tokenizer, h->ckpt_every, h->keep_last, h->stop_at, o->on_step, o->ud};
    if (trainer_setup(&tr, &to, h->threads, &t, &nt, err, errlen)) return -1;
    int rc = -1;
    const int32_t eos = tok_eot_id(t);
    rm_model *r = NULL;
    adamw opt = {0}, hopt = {0};
    trainer_state st = {0};
    ds_dataset d = {0}, ev = {0}, np = {0};
    ds_sampler smp = {0};
    ds_batch b = {0};
    size_t *idx = NULL;
    float *sc = NULL, *dsc = NULL, *mg = NULL, *margins = NULL, *ev_margins = NULL, *evbuf = NULL;
    uint8_t *hbytes = NULL, *obytes = NULL;
    if (tr.resuming) {
        gpt2 *m;
        head *h;
        char p[4200];
        if (trainer_load(&tr, &m, &opt, &st, err, errlen)) goto done;
        if (head_load(fio_join(p, sizeof p, tr.latest, RM_HEAD_FILE), "score.", &h, err, errlen)) {
            gpt2_free(m);
            goto done;
        }
        if (rm_create(&r, m, h, eos, err, errlen)) goto done;
        if (adamw_create(&hopt, head_num_params(r->h))) {
            fio_fail(err, errlen, "out of memory for the optimizer");
            goto done;
        }
        if (trainer_block_moments_load(fio_join(p, sizeof p, tr.latest, RM_HEAD_OPT_FILE), &hopt, NULL, err, errlen))
            goto done;
    } else {
        if (rm_init(o->model, h->seed, eos, &r, err, errlen)) goto done;
        if (adamw_create(&opt, gpt2_num_params(r->m)) || adamw_create(&hopt, head_num_params(r->h))) {
            fio_fail(err, errlen, "out of memory for the optimizer");
            goto done;
        }
    }
    res->resumed_from = st.step;
    const gpt2_config *c = gpt2_cfg(r->m);
    if (trainer_check_vocab(&tr, o->model, r->m, t, err, errlen)) goto done;
    gpt2_set_threads(r->m, nt);
    head_set_threads(r->h, nt);
    /* every input checked before anything is written */
    const ds_load_opts lo = trainer_hparams_load_opts(h, c->n_positions, DS_PREFERENCE);
    if (ds_load(&d, t, o->data, &lo, err, errlen) || rm_read_margins(&d, &margins, err, errlen)) goto done;
    if (o->eval_data && (ds_load(&ev, t, o->eval_data, &lo, err, errlen) || rm_read_margins(&ev, &ev_margins, err, errlen)))
        goto done;
    if (o->normalize_prompts && load_norm_prompts(o, t, c->n_positions, &np, err, errlen)) goto done;
    res->n_train = d.n;
    res->n_eval = ev.n;
    res->margins = margins != NULL;
    const long steps = res->steps = trainer_hparams_steps(h, d.n);
    if (tr.resuming && trainer_check_resume(&st, h, d.n, tr.latest, err, errlen)) goto done;
    trainer_state_free(&st);
    st.settings = trainer_hparams_json(h, steps, d.n);
    if (!st.settings || json_object_set_new(st.settings, "model", json_string(o->model ? o->model : "")) ||
        json_object_set_new(st.settings, "center_rewards_coefficient", json_real(o->center))) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    const int P = h->batch, T = d.max_row > ev.max_row ? d.max_row : ev.max_row;
    const size_t per_step = (size_t)P * (size_t)h->accum;
    if (ds_batch_create(&b, 2 * P, T, err, errlen)) goto done;
    {
        /* size the trunk's activations once for the largest batch (hidden states only) */
        int32_t *z = calloc((size_t)2 * P * T, sizeof *z);
        int bad = !z || gpt2_forward_hidden(r->m, z, 2 * P, T, err, errlen);
        free(z);
        if (bad) goto done;
    }
    idx = malloc(per_step * sizeof *idx);
    sc = malloc((size_t)4 * P * sizeof *sc);
    dsc = sc + 2 * P;
    mg = malloc((size_t)P * sizeof *mg);
    evbuf = malloc((4 * ev.n + 1) * sizeof *evbuf);
    if (!idx || !sc || !mg || !evbuf || ds_sampler_create(&smp, d.n, h->seed)) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    if (trainer_begin(&tr, st.step, steps, err, errlen)) goto done;
    const trainer_optim om = trainer_hparams_optim(h, steps);
    /* the trunk and the head, stepped together */
    adamw_range trunk_r[GPT2_NUM_TENSORS], head_r[2];
    gpt2_adamw_ranges(r->m, trunk_r);
    head_adamw_ranges(r->h, head_r);
    const trainer_block blocks[2] = {
        {gpt2_params(r->m), gpt2_grads(r->m), gpt2_num_params(r->m), &opt, trunk_r, GPT2_NUM_TENSORS},
        {head_params(r->h), head_grads(r->h), head_num_params(r->h), &hopt, head_r, 2}};
    while (st.step < steps) {
        ds_sampler_next(&smp, per_step, &st.cursor, idx);
        gpt2_zero_grad(r->m);
        head_zero_grad(r->h);
        rm_stats tot = {0};
        for (int a = 0; a < h->accum; a++) {
            const size_t *ix = idx + (size_t)a * P;
            if (ds_batch_fill(&d, ix, (size_t)P, &b, err, errlen)) goto done;
            for (int q = 0; q < b.B; q++) st.num_tokens += (uint64_t)b.lengths[q];
            if (rm_forward(r, b.tokens, b.lengths, b.B, b.T, sc, err, errlen)) goto done;
            for (int q = 0; margins && q < P; q++) mg[q] = margins[ix[q]];
            rm_stats s;
            rm_bt_loss(sc, sc + P, margins ? mg : NULL, P, o->center, dsc, dsc + P, &s);
            if (trainer_check_finite(st.step + 1, "loss", s.loss, err, errlen)) goto done;
            /* rm_bt_loss differentiates this micro-batch's mean: weigh it as P of the step's pairs */
            for (int q = 0; q < 2 * P; q++) dsc[q] *= (float)((double)P / (double)per_step);
            if (rm_backward(r, dsc, err, errlen)) goto done;
            tot.loss += s.loss / h->accum;
            tot.accuracy += s.accuracy / h->accum;
            tot.margin += s.margin / h->accum;
            tot.chosen += s.chosen / h->accum;
            tot.rejected += s.rejected / h->accum;
        }
        double norm;
        float lr;
        if (trainer_update_blocks(&om, blocks, 2, 1.0f, st.step, &norm, &lr, err, errlen)) goto done;
        st.step++;
        res->train = tot;
        rm_stats e = {NAN, NAN, NAN, NAN, NAN};
        if (ev.n > 0 && trainer_hparams_eval_due(h, st.step, steps)) {
            if (evaluate(r, &ev, ev_margins, 2 * P, o->center, evbuf, &e, err, errlen)) goto done;
            if (trainer_check_finite(st.step, "eval loss", e.loss, err, errlen)) goto done;
            res->eval = e;
        }
        const trainer_metric mx[] = {{"loss", tot.loss},
                                     {"accuracy", tot.accuracy},
                                     {"margin", tot.margin},
                                     {"rewards/chosen", tot.chosen},
                                     {"rewards/rejected", tot.rejected},
                                     {"learning_rate", lr},
                                     {"grad_norm", norm},
                                     {"num_tokens", (double)st.num_tokens},
                                     {"epoch", (double)st.cursor / (double)d.n},
                                     {"eval_loss", e.loss},
                                     {"eval_accuracy", e.accuracy},
                                     {"eval_margin", e.margin},
                                     {"eval_rewards/chosen", e.chosen},
                                     {"eval_rewards/rejected", e.rejected}};
        /* a checkpoint carries the head and its optimizer beside the trunk's */
        size_t nh = 0, no = 0;
        const int due = trainer_ckpt_due(&tr, st.step);
        if (due && (head_write_mem(r->h, "score.", &hbytes, &nh, err, errlen) ||
                    trainer_block_moments_to_mem(&hopt, NULL, &obytes, &no, err, errlen)))
            goto done;
        const ckpt_file ex[] = {{RM_HEAD_FILE, hbytes, nh}, {RM_HEAD_OPT_FILE, obytes, no}};
        const int end = trainer_step_end(&tr, r->m, &opt, &st, mx, sizeof mx / sizeof *mx, ex, due ? 2 : 0, err, errlen);
        free(hbytes);
        free(obytes);
        hbytes = obytes = NULL;
        if (end) {
            rc = end > 0 ? 0 : -1;
            goto done;
        }
    }
    if (o->normalize_prompts) {
        if (normalize_final(r, o, &np, eos, &res->norm, err, errlen)) goto done;
        res->normalized = 1;
    }
    {
        char dst[4200];
        const ckpt_file tokf[] = {{"vocab.json", tr.vocab, tr.nvocab}, {"merges.txt", tr.merges, tr.nmerges}};
        if (rm_save(r, fio_join(dst, sizeof dst, o->out, "model"), tokf, tr.vocab ? 2 : 0, err, errlen)) goto done;
    }
    rc = 0;
done:
    free(idx);
    free(sc);
    free(mg);
    free(evbuf);
    free(margins);
    free(ev_margins);
    free(hbytes);
    free(obytes);
    ds_batch_free(&b);
    ds_sampler_free(&smp);
    ds_free(&d);
    ds_free(&ev);
    ds_free(&np);
    trainer_state_free(&st);
    trainer_close(&tr);
    adamw_free(&opt);
    adamw_free(&hopt);
    rm_free(r);
    tok_free(t);
    return rc;
}
