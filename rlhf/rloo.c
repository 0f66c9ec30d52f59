/* rloo.c — RLOO as a method on the RL core: the KL in the sequence reward and the leave-one-out
 * baseline; the core's sequence-level clipped loss. See rloo.h. */
#include "rloo.h"

#include "fileio.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void rloo_advantages(const float *R, int B, int k, int normalize, float *adv, double *frac_zero_std)
{
    const int n = B * k;
    double zero = 0;
    for (int g = 0; g < B; g++) {
        const float *r = R + (size_t)g * k;
        double s = 0, v = 0;
        for (int i = 0; i < k; i++) s += r[i];
        for (int i = 0; i < k; i++) v += (r[i] - s / k) * (r[i] - s / k);
        for (int i = 0; i < k; i++) adv[(size_t)g * k + i] = (float)(r[i] - (s - r[i]) / (k - 1));
        zero += sqrt(v / (k - 1)) <= 1e-8;
    }
    if (frac_zero_std) *frac_zero_std = zero / B;
    if (!normalize) return;
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += adv[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (adv[i] - m) * (adv[i] - m);
    const double sd = n > 1 ? sqrt(v / (n - 1)) : 0.0;
    for (int i = 0; i < n; i++) adv[i] = (float)((adv[i] - m) / (sd + 1e-4));
}

/* ---- the method ----------------------------------------------------------------------------------- */

typedef struct {
    const rloo_opts *o;
    float *R;                /* (rows) rewards with the KL folded in */
} rloo;

static int configure(void *self, rl *c, char *err, size_t errlen)
{
    const rloo_opts *o = ((rloo *)self)->o;
    if (!(o->beta >= 0) || !isfinite(o->beta)) return fio_fail(err, errlen, "beta %g must not be negative", o->beta);
    if (c->o->num_generations < 2)
        return fio_fail(err, errlen, "RLOO needs at least 2 completions per prompt (the baseline leaves one out)");
    c->agg = RL_AGG_SEQUENCE;
    c->kl_beta = 0; /* the KL is in the reward */
    c->need_ref = o->beta > 0;
    return 0;
}

static int prepare(void *self, rl *c, trainer *t, char *err, size_t errlen)
{
    rloo *p = self;
    json_t *s = json_pack("{s:f, s:b}", "beta", p->o->beta, "normalize_advantages", p->o->normalize_advantages);
    if (!s || json_object_update_new(t->settings, s)) return fio_fail(err, errlen, "out of memory");
    if (!(p->R = calloc((size_t)c->rows, sizeof *p->R))) return fio_fail(err, errlen, "out of memory");
    return 0;
}

void rloo_kl_rewards(const rollout *r, const uint8_t *mask, int ref, double beta, float *R, double *kl)
{
    double sum = 0, ntok = 0;
    for (int b = 0; b < r->B; b++) {
        double s = 0;
        for (int t = 0; ref && t < r->T; t++) {
            const size_t i = (size_t)b * r->T + t;
            if (mask[i]) s += (double)r->logp[i] - r->ref_logp[i], ntok += 1;
        }
        sum += s;
        R[b] = (float)(r->raw_scores[b] - beta * s);
    }
    if (kl) *kl = ref ? (ntok ? sum / ntok : 0) : NAN;
}

/* R = r - β Σ_t (log π_old - log π_ref), the baseline, and TRL's kl metric */
static int advantages(void *self, rl *c, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    rloo *p = self;
    rloo_kl_rewards(&c->ro, c->lmask, c->ref != NULL, p->o->beta, p->R, &c->st.kl);
    rloo_advantages(p->R, c->B, c->G, p->o->normalize_advantages, c->row_adv, &c->st.frac_zero_std);
    rl_row_adv_to_tokens(c); /* for inspection; the sequence loss reads the row advantages */
    return 0;
}

static size_t metrics(void *self, rl *c, trainer *t, trainer_metric *out)
{
    (void)self, (void)t;
    return rl_metrics(c, out);
}

static void release(void *self) { free(((rloo *)self)->R); }

static const rl_method method = {.name = "rloo", .configure = configure, .prepare = prepare, .advantages = advantages,
                                 .metrics = metrics, .free = release};

rloo_opts rloo_defaults(void)
{
    rloo_opts o = {.run = trainer_run_defaults(), .optim = trainer_optim_defaults(), .rl = rl_opts_defaults()};
    o.optim.lr = 1e-6f;
    o.run.batch = 4;
    o.rl.num_generations = 2;
    o.beta = 0.05;
    return o;
}

int rloo_run(const rloo_opts *o, rl_result *res, char *err, size_t errlen)
{
    rloo p = {o, NULL};
    return rl_fit(&method, &p, &o->rl, &o->run, &o->optim, res, err, errlen);
}
