/* rm.c — the Bradley–Terry reward model: scoring, loss, normalisation, folder, trainer. See rm.h. */
#include "rm.h"

#include "checkpoint.h"
#include "fileio.h"
#include "hf.h"
#include "rng.h"
#include "tok.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
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

static int score_rows(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                      float *scores, char *err, size_t errlen)
{
    (void)prompt_lengths;
    return rm_forward((rm_model *)ud, tokens, lengths, B, T, scores, err, errlen);
}

scorer rm_scorer(rm_model *r) { return (scorer){score_rows, r}; }

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

int rm_load(const char *path, rm_model **out, char *err, size_t errlen)
{
    *out = NULL;
    char dir[4096];
    if (ckpt_resolve(path, dir, sizeof dir, err, errlen)) return -1;
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

int rm_init(const char *path, uint64_t seed, int32_t pad_id, rm_model **out, char *err, size_t errlen)
{
    char p[4200], dir[4096];
    if (ckpt_resolve(path, dir, sizeof dir, err, errlen)) return -1;
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
    rm_opts o = {.run = trainer_run_defaults(), .optim = trainer_optim_defaults()};
    o.optim.lr = 1e-4f;
    o.run.epochs = 1;
    o.max_prompt_len = 512;
    o.max_completion_len = 512;
    o.normalize_samples = 256;
    o.normalize_max_new_tokens = 32;
    o.normalize_temperature = 1.0f;
    return o;
}

#define RM_HEAD_FILE "score_head.safetensors"
#define RM_HEAD_OPT_FILE "score_head_optimizer.safetensors"

typedef struct {
    const rm_opts *o;
    rm_result *res;
    gpt2 *trunk;             /* loaded, until rm_create takes it */
    rm_model *r;
    adamw opt, hopt;         /* the trunk's and the head's */
    int32_t eos;
    ds_dataset d, ev, np;    /* training pairs, held-out pairs, normalisation prompts */
    ds_batch b;
    float *sc, *dsc, *mg, *evbuf;
    rm_stats tot;            /* this step's means */
} rm_trainer;

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

/* the model: a reward-model or GPT-2 folder (rm_init), or the checkpoint's trunk and head */
static int load_model(rm_trainer *s, trainer *t, char *err, size_t errlen)
{
    if (!t->resuming) {
        if (rm_init(s->o->model, s->o->run.seed, s->eos, &s->r, err, errlen)) return -1;
        if (trainer_check_vocab(t, s->o->model, s->r->m, err, errlen) || trainer_add_model(t, s->r->m, &s->opt, err, errlen))
            return -1;
    } else {
        head *h;
        char p[4200];
        if (trainer_start_model(t, NULL, &s->trunk, &s->opt, err, errlen)) return -1;
        if (head_load(fio_join(p, sizeof p, t->latest, RM_HEAD_FILE), "score.", &h, err, errlen)) return -1;
        gpt2 *m = s->trunk;
        s->trunk = NULL;
        if (rm_create(&s->r, m, h, s->eos, err, errlen)) return -1;
    }
    head_set_threads(s->r->h, t->threads);
    const trainer_block hb = trainer_head_block(s->r->h, &s->hopt, RM_HEAD_OPT_FILE);
    return trainer_add_block(t, &hb, err, errlen);
}

static int prepare(void *self, trainer *t, char *err, size_t errlen)
{
    rm_trainer *s = self;
    const rm_opts *o = s->o;
    if (!(o->center >= 0)) return fio_fail(err, errlen, "the centering coefficient must not be negative");
    s->eos = tok_eot_id(t->tok);
    if (load_model(s, t, err, errlen)) return -1;
    const gpt2_config *c = gpt2_cfg(s->r->m);
    /* every input checked before anything is written */
    const ds_load_opts lo = trainer_load_opts(o->max_prompt_len, o->max_completion_len, c->n_positions, DS_PREFERENCE);
    if (ds_load(&s->d, t->tok, o->data, &lo, err, errlen)) return -1;
    if (o->eval_data && ds_load(&s->ev, t->tok, o->eval_data, &lo, err, errlen)) return -1;
    if (o->normalize_prompts && load_norm_prompts(o, t->tok, c->n_positions, &s->np, err, errlen)) return -1;
    s->res->resumed_from = t->st.step;
    s->res->n_train = s->d.n;
    s->res->n_eval = s->ev.n;
    s->res->margins = s->d.has_margins;
    t->examples = s->d.n;
    json_object_update_new(t->settings, json_pack("{s:s, s:f, s:i, s:i}", "model", o->model ? o->model : "",
                                                  "center_rewards_coefficient", o->center, "max_prompt_len",
                                                  o->max_prompt_len, "max_completion_len", o->max_completion_len));
    const int P = o->run.batch, T = s->d.max_row > s->ev.max_row ? s->d.max_row : s->ev.max_row;
    if (ds_batch_create(&s->b, 2 * P, T, err, errlen)) return -1;
    /* size the trunk's activations once for the largest batch (hidden states only) */
    int32_t *z = calloc((size_t)2 * P * T, sizeof *z);
    const int bad = !z || gpt2_forward_hidden(s->r->m, z, 2 * P, T, err, errlen);
    free(z);
    s->sc = malloc((size_t)4 * P * sizeof *s->sc);
    s->dsc = s->sc ? s->sc + 2 * P : NULL;
    s->mg = malloc((size_t)P * sizeof *s->mg);
    s->evbuf = malloc((4 * s->ev.n + 1) * sizeof *s->evbuf);
    if (bad || !s->sc || !s->mg || !s->evbuf) return bad ? -1 : fio_fail(err, errlen, "out of memory");
    return 0;
}

/* TRL's metrics, the fields of rm_stats */
static const trainer_stat stats[] = {{"loss", offsetof(rm_stats, loss)},
                                     {"accuracy", offsetof(rm_stats, accuracy)},
                                     {"margin", offsetof(rm_stats, margin)},
                                     {"rewards/chosen", offsetof(rm_stats, chosen)},
                                     {"rewards/rejected", offsetof(rm_stats, rejected)}};
enum { NSTATS = sizeof stats / sizeof *stats };

/* Bradley–Terry on P pairs: this micro-batch's mean loss, weighed as P of the step's pairs */
static int micro(void *self, trainer *t, int u, int a, double *loss, char *err, size_t errlen)
{
    (void)u;
    rm_trainer *s = self;
    size_t lo, hi; /* this rank's pairs of the micro-batch */
    trainer_rows(t, (size_t)s->o->run.batch, &lo, &hi);
    const int P = (int)(hi - lo);
    const size_t *ix = t->idx + (size_t)a * s->o->run.batch + lo;
    if (ds_batch_fill(&s->d, ix, (size_t)P, &s->b, err, errlen)) return -1;
    for (int q = 0; q < s->b.B; q++) t->st.num_tokens += (uint64_t)s->b.lengths[q];
    if (rm_forward(s->r, s->b.tokens, s->b.lengths, s->b.B, s->b.T, s->sc, err, errlen)) return -1;
    for (int q = 0; s->d.has_margins && q < P; q++) s->mg[q] = s->d.ex[ix[q]].margin;
    rm_stats st;
    rm_bt_loss(s->sc, s->sc + P, s->d.has_margins ? s->mg : NULL, P, s->o->center, s->dsc, s->dsc + P, &st);
    loss[0] = st.loss;
    if (!isfinite(st.loss)) return 0; /* the loop stops, naming the step */
    for (int q = 0; q < 2 * P; q++) s->dsc[q] *= (float)((double)P / (double)t->per_step);
    if (rm_backward(s->r, s->dsc, err, errlen)) return -1;
    trainer_stats_add(&s->tot, &st, stats, NSTATS, (double)P / s->o->run.batch, s->o->run.accum);
    return 0;
}

/* the step's means (summed over the ranks by now) as the result */
static int end_step(void *self, trainer *t, char *err, size_t errlen)
{
    (void)t, (void)err, (void)errlen;
    rm_trainer *s = self;
    s->res->train = s->tot;
    return 0;
}

/* every held-out pair scored in file order, then the loss and metrics over all of them */
static int evaluate(void *self, trainer *t, trainer_metric *out, size_t *n, char *err, size_t errlen)
{
    (void)t;
    rm_trainer *s = self;
    const ds_dataset *ev = &s->ev;
    *n = 0;
    if (ev->n == 0) return 0;
    float *buf = s->evbuf, *rc = buf + 2 * ev->n, *rr = rc + ev->n, *mg = NULL;
    if (rm_score_dataset(s->r, ev, 2 * s->o->run.batch, buf, err, errlen)) return -1;
    /* buf holds (chosen, rejected) pairs: split into the two halves rm_bt_loss takes */
    for (size_t i = 0; i < ev->n; i++) {
        rc[i] = buf[2 * i];
        rr[i] = buf[2 * i + 1];
    }
    if (ev->has_margins) {
        mg = buf; /* the interleaved scores are no longer needed */
        for (size_t i = 0; i < ev->n; i++) mg[i] = ev->ex[i].margin;
    }
    rm_bt_loss(rc, rr, mg, (int)ev->n, s->o->center, NULL, NULL, &s->res->eval);
    *n = trainer_stats_metrics(&s->res->eval, stats, NSTATS, out);
    return 0;
}

/* a checkpoint carries the head beside the trunk (its moments are block 1's file) */
static int files(void *self, trainer *t, int final, trainer_files *fs, char *err, size_t errlen)
{
    (void)t, (void)final;
    rm_trainer *s = self;
    uint8_t *bytes;
    size_t n;
    if (head_write_mem(s->r->h, "score.", &bytes, &n, err, errlen)) return -1;
    return trainer_files_own(fs, RM_HEAD_FILE, bytes, n, err, errlen);
}

static int normalize_final(rm_trainer *s, char *err, size_t errlen)
{
    const rm_opts *o = s->o;
    const ds_dataset *p = &s->np;
    gpt2 *ref;
    if (hf_load_gpt2(o->normalize_ref ? o->normalize_ref : o->model, &ref, err, errlen)) return -1;
    gpt2_set_threads(ref, gpt2_threads(s->r->m));
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
    so.stop_token = s->eos;
    so.seed = rng_stream(o->run.seed, 0x6e6f726dull); /* "norm" */
    if (rc == 0)
        rc = rm_normalize(s->r, ref, pr, pl, (int)p->n, o->normalize_samples, o->run.batch * 2, &so, &s->res->norm, err,
                          errlen);
    free(pr);
    free(pl);
    gpt2_free(ref);
    return rc;
}

/* the final folder: normalised when asked, a reward-model folder with the tokenizer's files */
static int export_model(void *self, trainer *t, char *err, size_t errlen)
{
    rm_trainer *s = self;
    if (s->o->normalize_prompts) {
        if (normalize_final(s, err, errlen)) return -1;
        s->res->normalized = 1;
    }
    char dst[4200];
    ckpt_file tokf[2];
    const size_t nt = trainer_tokenizer_files(t, tokf);
    return rm_save(s->r, fio_join(dst, sizeof dst, t->run->out, "model"), tokf, nt, err, errlen);
}

static void release(void *self)
{
    rm_trainer *s = self;
    free(s->sc);
    free(s->mg);
    free(s->evbuf);
    ds_batch_free(&s->b);
    ds_free(&s->d);
    ds_free(&s->ev);
    ds_free(&s->np);
    adamw_free(&s->opt);
    adamw_free(&s->hopt);
    gpt2_free(s->trunk);
    rm_free(s->r);
}

static const char *const loss_names[] = {"loss", NULL};
static const trainer_recipe recipe = {.name = "rm",
                                      .loss_names = loss_names,
                                      .prepare = prepare,
                                      .micro = micro,
                                      .end_step = end_step,
                                      .evaluate = evaluate,
                                      .files = files,
                                      .export_model = export_model,
                                      .free = release,
                                      .stats = stats,
                                      .nstats = NSTATS,
                                      .stats_off = offsetof(rm_trainer, tot)};

int rm_run(const rm_opts *o, rm_result *res, char *err, size_t errlen)
{
    rm_result dummy;
    rm_trainer s = {.o = o, .res = res ? res : &dummy};
    memset(s.res, 0, sizeof *s.res);
    s.res->eval = (rm_stats){NAN, NAN, NAN, NAN, NAN};
    trainer_result tr;
    const int rc = trainer_fit(&recipe, &s, &o->run, &o->optim, o->tokenizer, &tr, err, errlen);
    s.res->steps = tr.steps;
    return rc;
}
