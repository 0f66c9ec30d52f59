/* dpo.c — DPO losses and the DPO trainer. See dpo.h. */
#include "dpo.h"

#include "adamw.h"
#include "fileio.h"
#include "hf.h"
#include "safetensors.h"
#include "tok.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_loss_names[] = {[DPO_SIGMOID] = "sigmoid", [DPO_IPO] = "ipo", [DPO_HINGE] = "hinge",
                                           [DPO_ROBUST] = "robust"};

const char *dpo_loss_name(dpo_loss_type t)
{
    return (unsigned)t < sizeof k_loss_names / sizeof *k_loss_names ? k_loss_names[t] : "?";
}

int dpo_loss_parse(const char *name, dpo_loss_type *out)
{
    for (int i = 0; i < (int)(sizeof k_loss_names / sizeof *k_loss_names); i++)
        if (strcmp(name, k_loss_names[i]) == 0) {
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
    dpo_opts o = {0};
    o.h = trainer_hparams_defaults();
    o.h.lr = 1e-6f;
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

/* a resumed run must see the data in the same order and optimise the same loss */
static int check_resume(const trainer_state *st, const dpo_opts *o, size_t n, const char *latest, char *err,
                        size_t errlen)
{
    if (trainer_check_resume(st, &o->h, n, latest, err, errlen)) return -1;
    json_t *s = st->settings, *lt = json_object_get(s, "loss_type"), *be = json_object_get(s, "beta");
    if (!json_is_string(lt) || strcmp(json_string_value(lt), dpo_loss_name(o->loss.type)) != 0 || !json_is_number(be) ||
        json_number_value(be) != o->loss.beta)
        return fio_fail(err, errlen, "cannot resume %s: it was trained with another loss type or beta", latest);
    return 0;
}

int dpo_run(const dpo_opts *o, dpo_result *res, char *err, size_t errlen)
{
    dpo_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    res->eval.loss = NAN;
    const trainer_hparams *h = &o->h;
    if (trainer_hparams_check(h, err, errlen)) return -1;
    if (dpo_loss_check(&o->loss, err, errlen)) return -1;
    trainer tr;
    tok_tokenizer *t;
    int nt;
    const trainer_opts to = {o->out, o->resume, o->tokenizer, h->ckpt_every, h->keep_last, h->stop_at, o->on_step, o->ud};
    if (trainer_setup(&tr, &to, h->threads, &t, &nt, err, errlen)) return -1;
    int rc = -1;
    gpt2 *m = NULL, *ref = NULL;
    adamw opt = {0};
    trainer_state st = {0};
    ds_dataset d = {0}, ev = {0};
    ds_sampler smp = {0};
    ds_batch b = {0};
    size_t *idx = NULL;
    double *ref_tr = NULL, *ref_ev = NULL, *pol_ev = NULL, *tmp = NULL, *ref_c = NULL, *ref_r = NULL;
    float *ntok_ev = NULL, *ftmp = NULL;
    dpo_work wk = {0};
    uint8_t *rbytes = NULL;
    if (trainer_start_model(&tr, o->model, t, nt, &m, &opt, &st, err, errlen)) goto done;
    res->resumed_from = st.step;
    const gpt2_config *c = gpt2_cfg(m);
    /* every input checked before anything is written */
    const ds_load_opts lo = trainer_hparams_load_opts(h, c->n_positions, DS_PREFERENCE);
    if (ds_load(&d, t, o->data, &lo, err, errlen)) goto done;
    if (o->eval_data && ds_load(&ev, t, o->eval_data, &lo, err, errlen)) goto done;
    res->n_train = d.n;
    res->n_eval = ev.n;
    const long steps = res->steps = trainer_hparams_steps(h, d.n);
    if (tr.resuming && check_resume(&st, o, d.n, tr.latest, err, errlen)) goto done;
    trainer_state_free(&st);
    st.settings = trainer_hparams_json(h, steps, d.n);
    if (!st.settings ||
        json_object_update_new(st.settings, json_pack("{s:s, s:s?, s:s, s:f, s:f}", "model", o->model ? o->model : "", "ref",
                                                  o->ref, "loss_type", dpo_loss_name(o->loss.type), "beta", o->loss.beta,
                                                  "label_smoothing", o->loss.label_smoothing))) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    const int P = h->batch, T = d.max_row > ev.max_row ? d.max_row : ev.max_row;
    const size_t per_step = (size_t)P * (size_t)h->accum, nmax = d.n > ev.n ? d.n : ev.n;
    idx = malloc(per_step * sizeof *idx);
    ref_tr = malloc(2 * d.n * sizeof *ref_tr);
    ref_ev = malloc((2 * ev.n + 1) * sizeof *ref_ev);
    pol_ev = malloc((2 * ev.n + 1) * sizeof *pol_ev);
    ntok_ev = malloc((2 * ev.n + 1) * sizeof *ntok_ev);
    tmp = malloc(4 * nmax * sizeof *tmp);
    ftmp = malloc(2 * nmax * sizeof *ftmp);
    ref_c = malloc((size_t)2 * P * sizeof *ref_c); /* this micro-batch's reference log-probs */
    ref_r = ref_c ? ref_c + P : NULL;
    if (!idx || !ref_tr || !ref_ev || !pol_ev || !ntok_ev || !tmp || !ftmp || !ref_c || ds_sampler_create(&smp, d.n, h->seed)) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    if (ds_batch_create(&b, 2 * P, T, err, errlen) || dpo_work_create(&wk, P, T, err, errlen)) goto done;
    /* the reference, once: from the cache of the checkpoint, a separate model, or the policy as it starts */
    if (tr.resuming) {
        char p[4200];
        if (ref_load(fio_join(p, sizeof p, tr.latest, DPO_REF_FILE), ref_tr, d.n, ref_ev, ev.n, err, errlen)) goto done;
    } else {
        gpt2 *r = m;
        if (o->ref) {
            if (hf_load_gpt2(o->ref, &ref, err, errlen)) goto done;
            if (gpt2_cfg(ref)->vocab_size < (int)tok_vocab_size(t) || gpt2_cfg(ref)->n_positions < T) {
                fio_fail(err, errlen, "%s: the reference's vocabulary or positions are smaller than the data needs", o->ref);
                goto done;
            }
            gpt2_set_threads(ref, nt);
            r = ref;
        }
        if (dpo_dataset_logps(r, &d, &b, P, ref_tr, NULL, err, errlen) ||
            (ev.n && dpo_dataset_logps(r, &ev, &b, P, ref_ev, NULL, err, errlen)))
            goto done;
        gpt2_free(ref);
        ref = NULL;
    }
    if (trainer_reserve(m, 2 * P, T, err, errlen)) goto done;
    if (trainer_begin(&tr, st.step, steps, err, errlen)) goto done;
    adamw_range ranges[GPT2_NUM_TENSORS];
    gpt2_adamw_ranges(m, ranges);
    const trainer_optim om = trainer_hparams_optim(h, steps);
    while (st.step < steps) {
        ds_sampler_next(&smp, per_step, &st.cursor, idx);
        gpt2_zero_grad(m);
        dpo_stats tot = {0};
        for (int a = 0; a < h->accum; a++) {
            const size_t *ix = idx + (size_t)a * P;
            if (ds_batch_fill(&d, ix, (size_t)P, &b, err, errlen)) goto done;
            for (int q = 0; q < b.B; q++) st.num_tokens += (uint64_t)b.lengths[q];
            for (int q = 0; q < P; q++) {
                ref_c[q] = ref_tr[2 * ix[q]];
                ref_r[q] = ref_tr[2 * ix[q] + 1];
            }
            dpo_stats s;
            if (dpo_step(m, &b, &o->loss, ref_c, ref_r, (double)P / (double)per_step, &wk, &s, err, errlen)) goto done;
            if (trainer_check_finite(st.step + 1, "loss", s.loss, err, errlen)) goto done;
            tot.loss += s.loss / h->accum;
            tot.rewards_chosen += s.rewards_chosen / h->accum;
            tot.rewards_rejected += s.rewards_rejected / h->accum;
            tot.rewards_margins += s.rewards_margins / h->accum;
            tot.rewards_accuracies += s.rewards_accuracies / h->accum;
            tot.logps_chosen += s.logps_chosen / h->accum;
            tot.logps_rejected += s.logps_rejected / h->accum;
        }
        double norm;
        float lr;
        if (trainer_update(&om, &opt, gpt2_params(m), gpt2_grads(m), gpt2_num_params(m), ranges, GPT2_NUM_TENSORS, 1.0f,
                           st.step, &norm, &lr, err, errlen))
            goto done;
        st.step++;
        res->train = tot;
        dpo_stats e;
        memset(&e, 0, sizeof e);
        e.loss = e.rewards_chosen = e.rewards_rejected = e.rewards_margins = e.rewards_accuracies = e.logps_chosen =
            e.logps_rejected = NAN;
        if (ev.n > 0 && trainer_hparams_eval_due(h, st.step, steps)) {
            if (dpo_dataset_logps(m, &ev, &b, P, pol_ev, ntok_ev, err, errlen)) goto done;
            interleaved_stats(&o->loss, ev.n, pol_ev, ref_ev, ntok_ev, tmp, ftmp, &e);
            if (trainer_check_finite(st.step, "eval loss", e.loss, err, errlen)) goto done;
            res->eval = e;
        }
        const trainer_metric mx[] = {{"loss", tot.loss},
                                     {"rewards/chosen", tot.rewards_chosen},
                                     {"rewards/rejected", tot.rewards_rejected},
                                     {"rewards/margins", tot.rewards_margins},
                                     {"rewards/accuracies", tot.rewards_accuracies},
                                     {"logps/chosen", tot.logps_chosen},
                                     {"logps/rejected", tot.logps_rejected},
                                     {"learning_rate", lr},
                                     {"grad_norm", norm},
                                     {"num_tokens", (double)st.num_tokens},
                                     {"epoch", (double)st.cursor / (double)d.n},
                                     {"eval_loss", e.loss},
                                     {"eval_rewards/chosen", e.rewards_chosen},
                                     {"eval_rewards/rejected", e.rewards_rejected},
                                     {"eval_rewards/margins", e.rewards_margins},
                                     {"eval_rewards/accuracies", e.rewards_accuracies},
                                     {"eval_logps/chosen", e.logps_chosen},
                                     {"eval_logps/rejected", e.logps_rejected}};
        /* a checkpoint carries the cached reference log-probs */
        size_t nr = 0;
        const int due = trainer_ckpt_due(&tr, st.step);
        if (due && ref_to_mem(ref_tr, d.n, ref_ev, ev.n, &rbytes, &nr, err, errlen)) goto done;
        const ckpt_file ex[] = {{DPO_REF_FILE, rbytes, nr}};
        const int end = trainer_step_end(&tr, m, &opt, &st, mx, sizeof mx / sizeof *mx, ex, due ? 1 : 0, err, errlen);
        free(rbytes);
        rbytes = NULL;
        if (end) {
            rc = end > 0 ? 0 : -1;
            goto done;
        }
    }
    if (trainer_export(&tr, m, NULL, 0, err, errlen)) goto done;
    rc = 0;
done:
    free(idx);
    free(ref_tr);
    free(ref_ev);
    free(pol_ev);
    free(ntok_ev);
    free(tmp);
    free(ftmp);
    free(ref_c);
    dpo_work_free(&wk);
    free(rbytes);
    ds_batch_free(&b);
    ds_sampler_free(&smp);
    ds_free(&d);
    ds_free(&ev);
    trainer_state_free(&st);
    trainer_close(&tr);
    adamw_free(&opt);
    gpt2_free(m);
    gpt2_free(ref);
    tok_free(t);
    return rc;
}
