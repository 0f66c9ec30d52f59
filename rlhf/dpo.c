/* dpo.c — DPO losses and the DPO trainer. See dpo.h. */
#include "dpo.h"

#include "adamw.h"
#include "fileio.h"
#include "hf.h"
#include "safetensors.h"
#include "tok.h"

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const dpo_loss_names[] = {[DPO_SIGMOID] = "sigmoid", [DPO_IPO] = "ipo", [DPO_HINGE] = "hinge",
                                      [DPO_ROBUST] = "robust", NULL};

const char *dpo_loss_name(dpo_loss_type t)
{
    return (unsigned)t < DPO_ROBUST + 1u ? dpo_loss_names[t] : "?";
}

int dpo_loss_parse(const char *name, dpo_loss_type *out)
{
    for (int i = 0; dpo_loss_names[i]; i++)
        if (strcmp(name, dpo_loss_names[i]) == 0) {
            *out = (dpo_loss_type)i;
            return 0;
        }
    return -1;
}

int dpo_loss_check(const dpo_loss_opts *o, char *err, size_t errlen)
{
    const double e = o->label_smoothing;
    if (!(o->beta > 0) || !isfinite(o->beta)) return fio_fail(err, errlen, "beta %g must be a positive number", o->beta);
    switch (o->type) {
    case DPO_SIGMOID:
        if (!(e >= 0 && e <= 0.5))
            return fio_fail(err, errlen, "label smoothing %g must lie in [0, 0.5] for the sigmoid loss", e);
        return 0;
    case DPO_ROBUST:
        if (!(e >= 0 && e < 0.5))
            return fio_fail(err, errlen, "label smoothing %g must lie in [0, 0.5) for the robust loss", e);
        return 0;
    case DPO_IPO:
    case DPO_HINGE:
        if (e != 0)
            return fio_fail(err, errlen, "label smoothing applies to the sigmoid and robust losses only, not %s",
                            dpo_loss_name(o->type));
        return 0;
    }
    return fio_fail(err, errlen, "unknown DPO loss type %d", (int)o->type);
}

/* -log σ(x) = softplus(-x), without overflow for large |x| */
static double neg_logsig(double x) { return x >= 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); }
static double sigm(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

double dpo_loss(const dpo_loss_opts *o, int n, const double *pc, const double *pr, const double *rc,
                const double *rr, const float *nc, const float *nr, double *dpc, double *dpr, dpo_stats *st)
{
    const double beta = o->beta, eps = o->label_smoothing;
    double loss = 0;
    dpo_stats s = {0};
    for (int i = 0; i < n; i++) {
        const double lc = pc[i] - rc[i], lr = pr[i] - rr[i]; /* log-ratios (sums over tokens) */
        double l, dh;      /* loss of this pair and d l / d h */
        double sc = 1, sr = 1; /* d h / d lc and -d h / d lr (1 unless IPO averages) */
        if (o->type == DPO_IPO) {
            sc = 1.0 / (nc && nc[i] > 1 ? nc[i] : 1.0);
            sr = 1.0 / (nr && nr[i] > 1 ? nr[i] : 1.0);
        }
        const double h = lc * sc - lr * sr, z = beta * h;
        switch (o->type) {
        case DPO_SIGMOID:
            l = (1 - eps) * neg_logsig(z) + eps * neg_logsig(-z);
            dh = beta * (-(1 - eps) * sigm(-z) + eps * sigm(z));
            break;
        case DPO_ROBUST:
            l = ((1 - eps) * neg_logsig(z) - eps * neg_logsig(-z)) / (1 - 2 * eps);
            dh = beta * (-(1 - eps) * sigm(-z) - eps * sigm(z)) / (1 - 2 * eps);
            break;
        case DPO_HINGE:
            l = 1 - z > 0 ? 1 - z : 0;
            dh = 1 - z > 0 ? -beta : 0; /* torch's relu has gradient 0 at 0 */
            break;
        case DPO_IPO:
        default: {
            const double d = h - 1 / (2 * beta);
            l = d * d;
            dh = 2 * d;
            break;
        }
        }
        loss += l;
        if (dpc) dpc[i] = dh * sc / n;
        if (dpr) dpr[i] = -dh * sr / n;
        const double wc = beta * lc, wr = beta * lr;
        s.rewards_chosen += wc;
        s.rewards_rejected += wr;
        s.rewards_accuracies += wc > wr;
        s.logps_chosen += pc[i];
        s.logps_rejected += pr[i];
    }
    if (n > 0) {
        loss /= n;
        s.rewards_chosen /= n;
        s.rewards_rejected /= n;
        s.rewards_accuracies /= n;
        s.logps_chosen /= n;
        s.logps_rejected /= n;
    }
    s.rewards_margins = s.rewards_chosen - s.rewards_rejected;
    s.loss = loss;
    if (st) *st = s;
    return loss;
}

void dpo_seq_logps(const float *logp, const float *mask, int B, int T, double *out, float *ntok)
{
    for (int b = 0; b < B; b++) {
        double s = 0, k = 0;
        for (int t = 0; t < T; t++) {
            const float w = mask[(size_t)b * T + t];
            if (w != 0) {
                s += (double)logp[(size_t)b * T + t] * w;
                k += w;
            }
        }
        out[b] = s;
        if (ntok) ntok[b] = (float)k;
    }
}

/* ---- training ---------------------------------------------------------------------------------- */

dpo_opts dpo_defaults(void)
{
    dpo_opts o = {.run = trainer_run_defaults(), .optim = trainer_optim_defaults()};
    o.optim.lr = 1e-6f;
    o.max_prompt_len = 512;
    o.max_completion_len = 512;
    o.loss = (dpo_loss_opts){DPO_SIGMOID, 0.1, 0};
    return o;
}

int dpo_work_create(dpo_work *w, int pairs, int T, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->pairs = pairs;
    w->T = T;
    w->lp = malloc((size_t)4 * pairs * sizeof *w->lp);
    w->dlp = malloc((size_t)2 * pairs * sizeof *w->dlp);
    w->ntok = malloc((size_t)2 * pairs * sizeof *w->ntok);
    w->dlogp = malloc((size_t)2 * pairs * T * sizeof *w->dlogp);
    if (w->lp && w->dlp && w->ntok && w->dlogp) return 0;
    dpo_work_free(w);
    return fio_fail(err, errlen, "out of memory");
}

void dpo_work_free(dpo_work *w)
{
    free(w->lp);
    free(w->dlp);
    free(w->ntok);
    free(w->dlogp);
    memset(w, 0, sizeof *w);
}

int dpo_step(gpt2 *m, const ds_batch *b, const dpo_loss_opts *o, const double *rc, const double *rr, double scale,
             dpo_work *w, dpo_stats *st, char *err, size_t errlen)
{
    const int P = b->B / 2;
    if (b->B != 2 * P || P > w->pairs || b->T > w->T)
        return fio_fail(err, errlen, "DPO: a batch of %d rows x %d tokens does not fit the scratch (%d pairs x %d)", b->B,
                        b->T, w->pairs, w->T);
    float loss;
    if (gpt2_forward(m, b->tokens, b->targets, b->loss_mask, b->B, b->T, &loss, err, errlen)) return -1;
    double *pc = w->lp, *pr = pc + P;
    dpo_seq_logps(gpt2_logp(m), b->loss_mask, b->B, b->T, w->lp, w->ntok); /* rows: chosen then rejected */
    dpo_loss(o, P, pc, pr, rc, rr, w->ntok, w->ntok + P, w->dlp, w->dlp + P, st);
    /* d loss / d logp[b,t] = d loss / d (row b's sum) on its completion tokens */
    for (int q = 0; q < b->B; q++)
        for (int x = 0; x < b->T; x++) {
            const size_t i = (size_t)q * b->T + x;
            w->dlogp[i] = (float)(w->dlp[q] * scale) * b->loss_mask[i];
        }
    return gpt2_backward(m, w->dlogp, NULL, err, errlen);
}

int dpo_dataset_logps(gpt2 *m, const ds_dataset *d, ds_batch *b, int pairs, double *out, float *ntok, char *err,
                      size_t errlen)
{
    size_t *idx = malloc((size_t)pairs * sizeof *idx);
    double *s = malloc((size_t)2 * pairs * sizeof *s);
    float *n = malloc((size_t)2 * pairs * sizeof *n);
    int rc = !idx || !s || !n ? fio_fail(err, errlen, "out of memory") : 0;
    for (size_t i = 0; rc == 0 && i < d->n; i += (size_t)pairs) {
        const size_t k = d->n - i < (size_t)pairs ? d->n - i : (size_t)pairs;
        for (size_t j = 0; j < k; j++) idx[j] = i + j;
        float loss;
        rc = ds_batch_fill(d, idx, k, b, err, errlen);
        if (rc == 0) rc = gpt2_forward(m, b->tokens, b->targets, b->loss_mask, b->B, b->T, &loss, err, errlen);
        if (rc) break;
        dpo_seq_logps(gpt2_logp(m), b->loss_mask, b->B, b->T, s, n);
        for (size_t j = 0; j < k; j++) {
            out[2 * (i + j)] = s[j];
            out[2 * (i + j) + 1] = s[k + j];
            if (ntok) {
                ntok[2 * (i + j)] = n[j];
                ntok[2 * (i + j) + 1] = n[k + j];
            }
        }
    }
    free(idx);
    free(s);
    free(n);
    return rc;
}

/* the loss and metrics of pairs whose (chosen, rejected) values are interleaved in pol, ref, ntok */
static void interleaved_stats(const dpo_loss_opts *o, size_t n, const double *pol, const double *ref, const float *ntok,
                              double *tmp, float *ftmp, dpo_stats *st)
{
    double *pc = tmp, *pr = pc + n, *rc = pr + n, *rr = rc + n;
    float *nc = ftmp, *nr = nc + n;
    for (size_t i = 0; i < n; i++) {
        pc[i] = pol[2 * i], pr[i] = pol[2 * i + 1];
        rc[i] = ref[2 * i], rr[i] = ref[2 * i + 1];
        nc[i] = ntok[2 * i], nr[i] = ntok[2 * i + 1];
    }
    dpo_loss(o, (int)n, pc, pr, rc, rr, nc, nr, NULL, NULL, st);
}

#define DPO_REF_FILE "ref_logps.safetensors"

/* the reference cache: "train" [n, 2] and "eval" [m, 2] (F64; chosen, rejected per pair) */
static int ref_to_mem(const double *tr, size_t n, const double *ev, size_t m, uint8_t **out, size_t *len, char *err,
                      size_t errlen)
{
    st_out t[2] = {{"train", ST_F64, 2, {(int64_t)n, 2}, tr}, {"eval", ST_F64, 2, {(int64_t)m, 2}, ev}};
    const st_meta meta = {"format", "rlhf.c-dpo-reference"};
    return st_write_mem(t, m ? 2 : 1, &meta, 1, out, len, err, errlen);
}

static int ref_load(const char *path, double *tr, size_t n, double *ev, size_t m, char *err, size_t errlen)
{
    st_file *f;
    if (st_open(path, &f, err, errlen)) return -1;
    const st_tensor *a = st_find(f, "train"), *b = st_find(f, "eval");
    int rc = 0;
    if (!a || a->dtype != ST_F64 || a->numel != 2 * n || (m && (!b || b->dtype != ST_F64 || b->numel != 2 * m)))
        rc = fio_fail(err, errlen, "%s: the cached reference log-probs are not for these datasets (%zu and %zu pairs)",
                      path, n, m);
    if (rc == 0) rc = st_read_raw(f, a, tr, 2 * n * sizeof *tr, err, errlen);
    if (rc == 0 && m) rc = st_read_raw(f, b, ev, 2 * m * sizeof *ev, err, errlen);
    st_close(f);
    return rc;
}

/* ---- the recipe ---------------------------------------------------------------------------------- */

typedef struct {
    const dpo_opts *o;
    dpo_result *res;
    gpt2 *m;
    adamw opt;
    ds_dataset d, ev;
    ds_batch b;
    dpo_work wk;
    double *ref_tr, *ref_ev;         /* the reference's log-probs, (chosen, rejected) per pair */
    double *pol_ev, *tmp, *ref_c;    /* eval scratch; this micro-batch's reference log-probs */
    float *ntok_ev, *ftmp;
    dpo_stats tot;                   /* this step's means */
} dpo;

/* the reference log-probs, once: from the checkpoint's cache, a separate model, or the policy as it starts */
static int reference(dpo *s, trainer *t, int T, char *err, size_t errlen)
{
    const dpo_opts *o = s->o;
    char p[4200];
    if (t->resuming) return ref_load(fio_join(p, sizeof p, t->latest, DPO_REF_FILE), s->ref_tr, s->d.n, s->ref_ev, s->ev.n, err, errlen);
    gpt2 *ref = NULL, *r = s->m;
    if (o->ref) {
        if (hf_load_gpt2(o->ref, &ref, err, errlen)) return -1;
        if (gpt2_cfg(ref)->vocab_size < (int)tok_vocab_size(t->tok) || gpt2_cfg(ref)->n_positions < T) {
            gpt2_free(ref);
            return fio_fail(err, errlen, "%s: the reference's vocabulary or positions are smaller than the data needs", o->ref);
        }
        trainer_use_model(t, ref);
        r = ref;
    }
    const int P = o->run.batch;
    const int rc = dpo_dataset_logps(r, &s->d, &s->b, P, s->ref_tr, NULL, err, errlen) ||
                   (s->ev.n && dpo_dataset_logps(r, &s->ev, &s->b, P, s->ref_ev, NULL, err, errlen));
    gpt2_free(ref);
    return rc ? -1 : 0;
}

static int prepare(void *self, trainer *t, char *err, size_t errlen)
{
    dpo *s = self;
    const dpo_opts *o = s->o;
    if (dpo_loss_check(&o->loss, err, errlen)) return -1;
    if (trainer_start_model(t, o->model, &s->m, &s->opt, err, errlen)) return -1;
    /* every input checked before anything is written */
    const ds_load_opts lo = trainer_load_opts(o->max_prompt_len, o->max_completion_len, gpt2_cfg(s->m)->n_positions, DS_PREFERENCE);
    if (ds_load(&s->d, t->tok, o->data, &lo, err, errlen)) return -1;
    if (o->eval_data && ds_load(&s->ev, t->tok, o->eval_data, &lo, err, errlen)) return -1;
    const size_t n = s->d.n, m = s->ev.n, nmax = n > m ? n : m;
    s->res->resumed_from = t->st.step;
    s->res->n_train = n;
    s->res->n_eval = m;
    t->examples = n;
    static const char *const keys[] = {"loss_type", "beta", NULL};
    t->resume_keys = keys;
    json_object_update_new(t->settings, json_pack("{s:s, s:s?, s:s, s:f, s:f, s:i, s:i}", "model", o->model ? o->model : "",
                                                  "ref", o->ref, "loss_type", dpo_loss_name(o->loss.type), "beta",
                                                  o->loss.beta, "label_smoothing", o->loss.label_smoothing, "max_prompt_len",
                                                  o->max_prompt_len, "max_completion_len", o->max_completion_len));
    const int P = o->run.batch, T = s->d.max_row > s->ev.max_row ? s->d.max_row : s->ev.max_row;
    s->ref_tr = malloc(2 * n * sizeof *s->ref_tr);
    s->ref_ev = malloc((2 * m + 1) * sizeof *s->ref_ev);
    s->pol_ev = malloc((2 * m + 1) * sizeof *s->pol_ev);
    s->ntok_ev = malloc((2 * m + 1) * sizeof *s->ntok_ev);
    s->tmp = malloc(4 * nmax * sizeof *s->tmp);
    s->ftmp = malloc(2 * nmax * sizeof *s->ftmp);
    s->ref_c = malloc((size_t)2 * P * sizeof *s->ref_c);
    if (!s->ref_tr || !s->ref_ev || !s->pol_ev || !s->ntok_ev || !s->tmp || !s->ftmp || !s->ref_c)
        return fio_fail(err, errlen, "out of memory");
    if (ds_batch_create(&s->b, 2 * P, T, err, errlen) || dpo_work_create(&s->wk, P, T, err, errlen)) return -1;
    if (reference(s, t, T, err, errlen)) return -1;
    return trainer_reserve(s->m, 2 * P, T, err, errlen);
}

/* TRL's metrics, the fields of dpo_stats */
static const trainer_stat stats[] = {{"loss", offsetof(dpo_stats, loss)},
                                     {"rewards/chosen", offsetof(dpo_stats, rewards_chosen)},
                                     {"rewards/rejected", offsetof(dpo_stats, rewards_rejected)},
                                     {"rewards/margins", offsetof(dpo_stats, rewards_margins)},
                                     {"rewards/accuracies", offsetof(dpo_stats, rewards_accuracies)},
                                     {"logps/chosen", offsetof(dpo_stats, logps_chosen)},
                                     {"logps/rejected", offsetof(dpo_stats, logps_rejected)}};
enum { NSTATS = sizeof stats / sizeof *stats };

/* P pairs: the policy's log-probs against the cached reference's; weighed as P of the step's pairs */
static int micro(void *self, trainer *t, int u, int a, double *loss, char *err, size_t errlen)
{
    (void)u;
    dpo *s = self;
    size_t lo, hi; /* this rank's pairs of the micro-batch */
    trainer_rows(t, (size_t)s->o->run.batch, &lo, &hi);
    const int P = (int)(hi - lo);
    const size_t *ix = t->idx + (size_t)a * s->o->run.batch + lo;
    if (ds_batch_fill(&s->d, ix, (size_t)P, &s->b, err, errlen)) return -1;
    for (int q = 0; q < s->b.B; q++) t->st.num_tokens += (uint64_t)s->b.lengths[q];
    double *ref_r = s->ref_c + P;
    for (int q = 0; q < P; q++) {
        s->ref_c[q] = s->ref_tr[2 * ix[q]];
        ref_r[q] = s->ref_tr[2 * ix[q] + 1];
    }
    dpo_stats st;
    if (dpo_step(s->m, &s->b, &s->o->loss, s->ref_c, ref_r, (double)P / (double)t->per_step, &s->wk, &st, err, errlen))
        return -1;
    loss[0] = st.loss;
    trainer_stats_add(&s->tot, &st, stats, NSTATS, (double)P / s->o->run.batch, s->o->run.accum);
    return 0;
}

/* the step's means (summed over the ranks by now) as the result */
static int end_step(void *self, trainer *t, char *err, size_t errlen)
{
    (void)t, (void)err, (void)errlen;
    dpo *s = self;
    s->res->train = s->tot;
    return 0;
}

static int evaluate(void *self, trainer *t, trainer_metric *out, size_t *n, char *err, size_t errlen)
{
    (void)t;
    dpo *s = self;
    *n = 0;
    if (s->ev.n == 0) return 0;
    if (dpo_dataset_logps(s->m, &s->ev, &s->b, s->o->run.batch, s->pol_ev, s->ntok_ev, err, errlen)) return -1;
    interleaved_stats(&s->o->loss, s->ev.n, s->pol_ev, s->ref_ev, s->ntok_ev, s->tmp, s->ftmp, &s->res->eval);
    *n = trainer_stats_metrics(&s->res->eval, stats, NSTATS, out);
    return 0;
}

/* a checkpoint carries the cached reference log-probs */
static int files(void *self, trainer *t, int final, trainer_files *fs, char *err, size_t errlen)
{
    (void)t;
    dpo *s = self;
    if (final) return 0;
    uint8_t *bytes;
    size_t n;
    if (ref_to_mem(s->ref_tr, s->d.n, s->ref_ev, s->ev.n, &bytes, &n, err, errlen)) return -1;
    return trainer_files_own(fs, DPO_REF_FILE, bytes, n, err, errlen);
}

static void release(void *self)
{
    dpo *s = self;
    free(s->ref_tr);
    free(s->ref_ev);
    free(s->pol_ev);
    free(s->ntok_ev);
    free(s->tmp);
    free(s->ftmp);
    free(s->ref_c);
    dpo_work_free(&s->wk);
    ds_batch_free(&s->b);
    ds_free(&s->d);
    ds_free(&s->ev);
    adamw_free(&s->opt);
    gpt2_free(s->m);
}

static const char *const loss_names[] = {"loss", NULL};
static const trainer_recipe recipe = {.name = "dpo",
                                      .loss_names = loss_names,
                                      .prepare = prepare,
                                      .micro = micro,
                                      .end_step = end_step,
                                      .evaluate = evaluate,
                                      .files = files,
                                      .free = release,
                                      .stats = stats,
                                      .nstats = NSTATS,
                                      .stats_off = offsetof(dpo, tot)};

int dpo_run(const dpo_opts *o, dpo_result *res, char *err, size_t errlen)
{
    dpo_result dummy;
    dpo s = {.o = o, .res = res ? res : &dummy};
    memset(s.res, 0, sizeof *s.res);
    s.res->eval.loss = NAN;
    trainer_result tr;
    const int rc = trainer_fit(&recipe, &s, &o->run, &o->optim, o->tokenizer, &tr, err, errlen);
    s.res->steps = tr.steps;
    return rc;
}
