/* rl_loss.c — the RL core's clipped surrogate with importance weights, GRPO's k3 term and every
 * way of adding token losses up (rl_agg), with its exact gradient. See rl.h. */
#include "rl.h"

#include <math.h>
#include <string.h>

/* one token or row: the clipped term -w min(r A, clip(r) A) and its gradient in log r */
typedef struct {
    double l, g;             /* the term, d term / d log r */
} clip_term;

static clip_term clip_one(const rl_loss_opts *o, double ratio, double a, const float *w, long i, rl_loss_stats *st)
{
    const double rc = fmin(fmax(ratio, 1.0 - (double)o->eps_low), 1.0 + (double)o->eps_high);
    const double l1 = -a * ratio, l2 = -a * rc;
    /* the unclipped term carries the gradient unless the clipped one is strictly larger: then the
     * ratio is outside the range on the side the advantage pushes it, and the loss is flat */
    const int flat = l2 > l1;
    clip_term c = {flat ? l2 : l1, flat ? 0.0 : l1}; /* d(-a e^lr)/d lr = -a r */
    if (w) c.l *= w[i], c.g *= w[i];
    st->clipfrac += ratio - 1.0 > (double)o->eps_high || 1.0 - ratio > (double)o->eps_low;
    st->ratio += ratio;
    return c;
}

/* GRPO's β k3 at token i, k3 = e^(ref - logp) - (ref - logp) - 1, into the term's loss, and its
 * gradient in logp, coef β (1 - e^(ref - logp)), into *dl */
static void add_k3(const rl_loss_opts *o, const rl_loss_in *in, long i, double coef, clip_term *c, double *dl,
                   rl_loss_stats *st)
{
    if (!(o->beta > 0)) return;
    const double d = (double)in->ref[i] - in->logp[i], e = exp(d), k = e - d - 1.0;
    st->k3 += k;
    c->l += o->beta * k;
    *dl += coef * o->beta * (1.0 - e);
}

/* the micro-batch's rows: the whole one's across the ranks, or this call's */
static double rows_of(const rl_loss_opts *o, const rl_loss_in *in) { return o->rows > 0 ? o->rows : (double)in->n; }

/* the weight of row b's token losses in the micro-batch's share of the loss */
static double row_coef(const rl_loss_opts *o, const rl_loss_in *in, double inv, int cnt)
{
    switch (o->agg) {
    case RL_AGG_BNPO: return (double)o->scale * inv; /* written as PPO's scale * inv * l1 */
    case RL_AGG_GRPO: return (double)o->scale / (rows_of(o, in) * (cnt > 0 ? cnt : 1));
    case RL_AGG_DR_GRPO: return (double)o->scale / (rows_of(o, in) * o->max_new_tokens);
    case RL_AGG_DAPO: return 1.0 / (o->step_tokens > 1 ? o->step_tokens : 1.0);
    case RL_AGG_SEQUENCE: return (double)o->scale / rows_of(o, in);
    }
    return 0;
}

static void row_share(rl_loss_stats *st, double low, double high, int cnt)
{
    if (cnt <= 0) return;
    st->low_min = fmin(st->low_min, low / cnt);
    st->high_max = fmax(st->high_max, high / cnt);
}

/* token-level aggregations: rows of per-token ratios; returns Σ_b coef_b Σ_t l (DAPO, GRPO, DR) */
static double token_rows(const rl_loss_opts *o, const rl_loss_in *in, double inv, float *dlogp, rl_loss_stats *st,
                         double *total)
{
    double loss = 0;
    for (int b = 0; b < in->n; b++) {
        const long i0 = (long)b * in->T;
        int cnt = 0;
        for (int t = 0; t < in->T; t++) cnt += in->mask[i0 + t] != 0;
        const double coef = row_coef(o, in, inv, cnt);
        double rsum = 0, low0 = st->low, high0 = st->high;
        for (long i = i0; i < i0 + in->T; i++) {
            if (!in->mask[i]) {
                if (dlogp) dlogp[i] = 0;
                continue;
            }
            const double ratio = exp((double)in->logp[i] - in->old[i]), a = in->adv[i];
            clip_term c = clip_one(o, ratio, a, in->w, i, st);
            st->low += ratio < 1.0 - (double)o->eps_low && a < 0;
            st->high += ratio > 1.0 + (double)o->eps_high && a > 0;
            double dl = coef * c.g; /* BNPO unweighted: PPO's scale * inv * l1, in that order */
            add_k3(o, in, i, coef, &c, &dl, st);
            rsum += c.l;
            *total += c.l; /* one running sum over the micro-batch, as PPO's */
            if (dlogp) dlogp[i] = (float)dl;
        }
        loss += o->agg == RL_AGG_GRPO ? coef * rsum : 0;
        row_share(st, st->low - low0, st->high - high0, cnt);
    }
    return loss;
}

/* RL_AGG_SEQUENCE: one ratio per row from the summed log-probs */
static double sequence_rows(const rl_loss_opts *o, const rl_loss_in *in, float *dlogp, rl_loss_stats *st, double *total)
{
    const double coef = row_coef(o, in, 0, 0);
    for (int b = 0; b < in->n; b++) {
        const long i0 = (long)b * in->T;
        double lr = 0;
        for (long i = i0; i < i0 + in->T; i++)
            if (in->mask[i]) lr += (double)in->logp[i] - in->old[i];
        const double ratio = exp(lr), a = in->adv[b];
        clip_term c = clip_one(o, ratio, a, in->w, b, st);
        const int low = ratio < 1.0 - (double)o->eps_low && a < 0, high = ratio > 1.0 + (double)o->eps_high && a > 0;
        st->low += low, st->high += high;
        row_share(st, low, high, 1);
        for (long i = i0; i < i0 + in->T; i++) {
            if (!in->mask[i]) {
                if (dlogp) dlogp[i] = 0;
                continue;
            }
            double dl = coef * c.g;
            add_k3(o, in, i, coef, &c, &dl, st);
            if (dlogp) dlogp[i] = (float)dl;
        }
        *total += c.l;
    }
    return coef * *total;
}

double rl_policy_loss(const rl_loss_opts *o, const rl_loss_in *in, float *dlogp, rl_loss_stats *st)
{
    memset(st, 0, sizeof *st);
    st->low_min = INFINITY;
    st->high_max = -INFINITY;
    const long N = (long)in->n * in->T;
    double count = 0, total = 0;
    for (long i = 0; i < N; i++) count += in->mask[i] != 0;
    const double all = o->tokens > 0 ? o->tokens : count, inv = all ? 1.0 / all : 0.0, rows = rows_of(o, in);
    if (o->agg == RL_AGG_SEQUENCE) {
        st->loss = sequence_rows(o, in, dlogp, st, &total);
        st->count = in->n;
        st->mean = rows ? total / rows : 0;
    } else {
        const double grpo = token_rows(o, in, inv, dlogp, st, &total);
        st->count = count;
        st->mean = total * inv;
        st->loss = o->agg == RL_AGG_GRPO ? grpo : total * row_coef(o, in, inv, 0);
        if (o->agg == RL_AGG_BNPO) st->loss = st->mean * (double)o->scale;
    }
    const double per = o->agg == RL_AGG_SEQUENCE ? (rows ? 1.0 / rows : 0.0) : inv;
    st->clipfrac *= per; /* PPO's clipfrac and ratio: sums times the inverse count */
    st->ratio *= per;
    if (st->low_min == INFINITY) st->low_min = st->high_max = NAN;
    return st->loss;
}
