/* grpo.c — GRPO as a method on the RL core: group-normalised advantages and the choice of loss
 * aggregation. See grpo.h. */
#include "grpo.h"

#include "fileio.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

const char *const grpo_scale_names[] = {"group", "batch", "none", NULL};
const char *const grpo_loss_names[] = {"grpo", "bnpo", "dr_grpo", "dapo", NULL};

/* mean and unbiased std of x[0..n) (std 0 for n < 2) */
static void mean_std(const float *x, int n, double *m, double *s)
{
    double a = 0, v = 0;
    for (int i = 0; i < n; i++) a += x[i];
    a /= n;
    for (int i = 0; i < n; i++) v += (x[i] - a) * (x[i] - a);
    *m = a;
    *s = n > 1 ? sqrt(v / (n - 1)) : 0.0;
}

void grpo_advantages(const float *rewards, int B, int G, grpo_scale s, float *adv, double *frac_zero_std)
{
    double mb, sb, zero = 0;
    mean_std(rewards, B * G, &mb, &sb);
    for (int g = 0; g < B; g++) {
        const float *r = rewards + (size_t)g * G;
        double m, sd;
        mean_std(r, G, &m, &sd);
        const double scale = s == GRPO_SCALE_BATCH ? sb : sd; /* "none" still reports the group std's zeros */
        for (int k = 0; k < G; k++) {
            const double a = r[k] - m;
            adv[(size_t)g * G + k] = (float)(s == GRPO_SCALE_NONE ? a : a / (scale + 1e-4));
        }
        zero += scale <= 1e-8 ? G : 0;
    }
    if (frac_zero_std) *frac_zero_std = zero / ((double)B * G);
}

/* ---- the method ----------------------------------------------------------------------------------- */

typedef struct {
    const grpo_opts *o;
} grpo;

static int configure(void *self, rl *c, char *err, size_t errlen)
{
    const grpo_opts *o = ((grpo *)self)->o;
    static const rl_agg agg[] = {RL_AGG_GRPO, RL_AGG_BNPO, RL_AGG_DR_GRPO, RL_AGG_DAPO};
    if (!(o->beta >= 0) || !isfinite(o->beta)) return fio_fail(err, errlen, "beta %g must not be negative", o->beta);
    if ((unsigned)o->loss_type > GRPO_LOSS_DAPO || (unsigned)o->scale_rewards > GRPO_SCALE_NONE)
        return fio_fail(err, errlen, "unknown loss type or reward scaling");
    c->agg = agg[o->loss_type];
    c->kl_beta = o->beta;
    c->need_ref = o->beta > 0;
    return 0;
}

static int prepare(void *self, rl *c, trainer *t, char *err, size_t errlen)
{
    (void)c;
    const grpo_opts *o = ((grpo *)self)->o;
    json_t *s = json_pack("{s:f, s:s, s:s}", "beta", o->beta, "scale_rewards", grpo_scale_names[o->scale_rewards],
                          "loss_type", grpo_loss_names[o->loss_type]);
    return !s || json_object_update_new(t->settings, s) ? fio_fail(err, errlen, "out of memory") : 0;
}

static int advantages(void *self, rl *c, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const grpo_opts *o = ((grpo *)self)->o;
    grpo_advantages(c->ro.raw_scores, c->B, c->G, o->scale_rewards, c->row_adv, &c->st.frac_zero_std);
    rl_row_adv_to_tokens(c);
    return 0;
}

static size_t metrics(void *self, rl *c, trainer *t, trainer_metric *out)
{
    (void)self, (void)t;
    return rl_metrics(c, out);
}

static const rl_method method = {.name = "grpo", .configure = configure, .prepare = prepare, .advantages = advantages,
                                 .metrics = metrics};

grpo_opts grpo_defaults(void)
{
    grpo_opts o = {.run = trainer_run_defaults(), .optim = trainer_optim_defaults(), .rl = rl_opts_defaults()};
    o.optim.lr = 1e-6f;
    o.run.batch = 1;
    o.loss_type = GRPO_LOSS_DAPO;
    o.scale_rewards = GRPO_SCALE_GROUP;
    return o;
}

int grpo_run(const grpo_opts *o, rl_result *res, char *err, size_t errlen)
{
    grpo g = {o};
    return rl_fit(&method, &g, &o->rl, &o->run, &o->optim, res, err, errlen);
}
