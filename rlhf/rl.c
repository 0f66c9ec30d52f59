/* rl.c — the RL core as one recipe on the training loop: rollout of B prompts x G completions,
 * log-prob recomputation, the sampler-vs-trainer check and importance weights, scoring, the
 * method's advantages, the clipped update over mini-batches and micro-batches, the metrics.
 * The surrogate itself is in rl_loss.c. See rl.h. */
#include "rl.h"

#include "clock.h"
#include "fileio.h"
#include "hf.h"
#include "ppo.h"
#include "rm.h"
#include "rng.h"
#include "tok.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rl_is_names[] = {"none", "tis", "mask", NULL};
static const char *const agg_names[] = {"bnpo", "grpo", "dr_grpo", "dapo", "sequence"};

/* the update's sums over the step's micro-batches */
struct rl_acc {
    double approxkl, clipfrac, entropy, ratio, loss_p; /* PPO's: per-micro means, summed */
    double ent, ntok, low, high, count, k3, loss, low_min, high_max;
    long nmicro;
};

rl_opts rl_opts_defaults(void)
{
    rl_opts o = {0};
    o.stop_at_eos = 1;
    o.max_prompt_len = 64;
    o.reward_timeout = REWARD_TIMEOUT_DEFAULT;
    o.num_generations = 8;
    o.temperature = 1.0f;
    o.top_p = 1.0f;
    o.max_new_tokens = 32;
    o.is_cap = 3.0f;
    o.epochs = 1;
    o.epsilon = 0.2f;
    o.rollout_weights = GPT2_W_AUTO;
    return o;
}

int rl_opts_check(const rl_opts *o, char *err, size_t errlen)
{
    if (!(o->temperature > 0) || !isfinite(o->temperature))
        return fio_fail(err, errlen, "temperature %g must be positive (log-probs are taken at it)", (double)o->temperature);
    if (o->max_new_tokens < 1) return fio_fail(err, errlen, "max new tokens %d must be positive", o->max_new_tokens);
    if (o->num_generations < 1) return fio_fail(err, errlen, "num generations %d must be positive", o->num_generations);
    if (o->top_k < 0 || !(o->top_p > 0 && o->top_p <= 1)) return fio_fail(err, errlen, "top-k must not be negative, top-p in (0, 1]");
    if (o->epochs < 1) return fio_fail(err, errlen, "epochs (iterations per batch) must be positive");
    if (!(o->epsilon > 0) || !(o->epsilon_high >= 0)) return fio_fail(err, errlen, "epsilon must be positive, epsilon-high not negative");
    if (o->is_correction != RL_IS_NONE && !(o->is_cap > 1)) return fio_fail(err, errlen, "the importance-sampling cap must exceed 1");
    if (!(o->reward_timeout > 0)) return fio_fail(err, errlen, "the reward timeout must be positive");
    return 0;
}

/* ---- rewards --------------------------------------------------------------------------------------- */

static void rm_release(void *p) { rm_free(p); }

int rl_reward_open(reward_set *rs, const tok_tokenizer *t, int32_t stop, double timeout_s, int threads, char *err,
                   size_t errlen)
{
    for (int i = 0; i < rs->n; i++) {
        reward_source *r = &rs->src[i];
        if (r->kind != REWARD_RM || r->s.fn) continue;
        rm_model *m;
        if (rm_load(r->arg, &m, err, errlen)) return -1;
        gpt2_set_threads(m->m, threads);
        head_set_threads(m->h, threads);
        r->s = rm_scorer(m);
        r->owned = m;
        r->release = rm_release;
    }
    return reward_open(rs, t, stop, timeout_s, err, errlen);
}

/* ---- prepare ------------------------------------------------------------------------------------------ */

static void *xalloc(size_t n, int *ok)
{
    void *q = calloc(n ? n : 1, 1);
    if (!q) *ok = 0;
    return q;
}

/* the reference (when needed) and the scorer, each model checked against the tokenizer */
static int load_models(rl *c, trainer *t, char *err, size_t errlen)
{
    const rl_opts *o = c->o;
    const char *refdir = o->ref ? o->ref : o->policy;
    if (c->need_ref) {
        if (hf_load_gpt2(refdir, &c->ref, err, errlen) || trainer_check_vocab(t, refdir, c->ref, err, errlen)) return -1;
        if (gpt2_cfg(c->ref)->vocab_size != c->V)
            return fio_fail(err, errlen, "%s: the reference's vocabulary differs from the policy's", refdir);
        trainer_use_model(t, c->ref);
    }
    if (o->score.fn) {
        c->score = o->score;
        return 0;
    }
    if (!o->n_reward) return fio_fail(err, errlen, "no reward: give --reward (rm:DIR, judge, cmd:PROGRAM)");
    if (reward_parse(&c->rs, o->reward, o->n_reward, o->reward_weights, o->n_reward_weights, err, errlen)) return -1;
    for (int i = 0; i < c->rs.n; i++)
        if (c->rs.src[i].kind != REWARD_RM && !t->tok)
            return fio_fail(err, errlen, "--reward %s needs a tokenizer to decode the completions", c->rs.src[i].name);
    if (rl_reward_open(&c->rs, t->tok, c->stop, o->reward_timeout, c->nt, err, errlen)) return -1;
    for (int i = 0; i < c->rs.n; i++) {
        const reward_source *r = &c->rs.src[i];
        if (r->kind == REWARD_RM && trainer_check_vocab(t, r->arg, ((rm_model *)r->owned)->m, err, errlen)) return -1;
    }
    c->score = reward_scorer(&c->rs);
    for (int i = 0; i < c->rs.n; i++) {
        snprintf(c->metric_names[i][0], sizeof c->metric_names[i][0], "rewards/%s/mean", c->rs.src[i].name);
        snprintf(c->metric_names[i][1], sizeof c->metric_names[i][1], "rewards/%s/std", c->rs.src[i].name);
    }
    return 0;
}

/* n_positions of model m (named what) must hold maxT */
static int check_positions(const rl *c, const gpt2 *m, const char *what, char *err, size_t errlen)
{
    if (!m || gpt2_cfg(m)->n_positions >= c->maxT) return 0;
    return fio_fail(err, errlen, "%s holds %d positions, but prompts of up to %d tokens plus %d new tokens need %d", what,
                    gpt2_cfg(m)->n_positions, c->maxT - c->o->max_new_tokens, c->o->max_new_tokens, c->maxT);
}

/* the prompts, checked before anything is written; c->maxT gets the longest rollout row */
static int load_prompts(rl *c, trainer *t, char *err, size_t errlen)
{
    const rl_opts *o = c->o;
    const int P = gpt2_cfg(c->pol)->n_positions, maxnew = o->max_new_tokens;
    if (o->prompts) {
        ds_load_opts lo = ds_load_defaults();
        lo.require_kind = DS_PROMPT_ONLY;
        lo.max_len = P;
        lo.max_prompt_len = P - maxnew;
        if (o->max_prompt_len > 0 && o->max_prompt_len < lo.max_prompt_len) lo.max_prompt_len = o->max_prompt_len;
        if (lo.max_prompt_len < 1) return fio_fail(err, errlen, "%d new tokens leave no room for a prompt in %d positions", maxnew, P);
        if (ds_load(&c->d, t->tok, o->prompts, &lo, err, errlen)) return -1;
        if (ds_prompts_make(&c->d, NULL, c->d.n, &c->prompts, err, errlen)) return -1;
        c->ps = &c->prompts;
    } else {
        c->ps = o->prompt_rows;
    }
    c->maxT = ds_prompts_max_len(c->ps) + maxnew;
    if (check_positions(c, c->pol, "the policy", err, errlen) || check_positions(c, c->ref, "the reference", err, errlen))
        return -1;
    for (int i = 0; i < c->rs.n; i++)
        if (c->rs.src[i].kind == REWARD_RM && check_positions(c, ((rm_model *)c->rs.src[i].owned)->m, c->rs.src[i].arg, err, errlen))
            return -1;
    return 0;
}

/* every buffer, sized once for the largest rollout; the models' activations too */
static int buffers(rl *c, char *err, size_t errlen)
{
    const int R = c->rows;
    if (rollout_create(&c->ro, R, c->maxT, c->o->max_new_tokens, err, errlen)) return -1;
    const size_t n = (size_t)R * (size_t)c->maxT, m = (size_t)c->micro * (size_t)c->maxT, r = (size_t)R;
    int ok = 1;
    c->lmask = xalloc(n, &ok);
    c->isw = xalloc(n * sizeof(float), &ok);
    c->row_adv = xalloc(r * sizeof(float), &ok);
    c->row_w = xalloc(r * sizeof(float), &ok);
    c->pp = xalloc(r * sizeof *c->pp, &ok);
    c->pl = xalloc(r * sizeof *c->pl, &ok);
    c->perm = xalloc(r * sizeof *c->perm, &ok);
    c->seq = xalloc(r * sizeof *c->seq, &ok);
    c->acc = xalloc(sizeof *c->acc, &ok);
    rl_batch *b = &c->b;
    b->tok = xalloc(m * sizeof *b->tok, &ok);
    b->tgt = xalloc(m * sizeof *b->tgt, &ok);
    b->mask = xalloc(m, &ok);
    float **f[] = {&b->fmask, &b->old, &b->adv, &b->w, &b->ref, &b->dlogp};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) *f[i] = xalloc(m * sizeof(float), &ok);
    b->row_adv = xalloc((size_t)c->micro * sizeof(float), &ok);
    b->row_w = xalloc((size_t)c->micro * sizeof(float), &ok);
    if (!ok) return fio_fail(err, errlen, "%s: out of memory", c->m->name);
    if (trainer_reserve(c->pol, R, c->maxT, err, errlen) || (c->ref && trainer_reserve(c->ref, R, c->maxT, err, errlen)))
        return -1;
    for (int i = 0; i < c->rs.n; i++)
        if (c->rs.src[i].kind == REWARD_RM &&
            gpt2_forward_hidden(((rm_model *)c->rs.src[i].owned)->m, c->ro.tokens, R, c->maxT, err, errlen))
            return -1;
    return 0;
}

static json_t *settings_json(const rl *c)
{
    const rl_opts *o = c->o;
    json_t *rw = json_array();
    for (size_t i = 0; rw && i < o->n_reward; i++) json_array_append_new(rw, json_string(o->reward[i]));
    for (size_t i = 0; rw && i < o->n_reward_weights; i++) json_array_append_new(rw, json_real(o->reward_weights[i]));
    return json_pack("{s:s, s:s, s:s?, s:s?, s:o*, s:i, s:f, s:i, s:f, s:i, s:i, s:s, s:s, s:f, s:b, s:i, s:i, s:f, s:f, "
                     "s:s, s:f}",
                     "family", c->m->name, "policy", o->policy ? o->policy : "", "ref", o->ref, "prompts", o->prompts,
                     "reward", rw, "num_generations", c->G, "temperature", (double)o->temperature, "top_k", o->top_k,
                     "top_p", (double)o->top_p, "max_new_tokens", o->max_new_tokens, "max_prompt_len", o->max_prompt_len,
                     "rollout_weights", gpt2_weights_name(gpt2_weights_resolve(o->rollout_weights)), "is_correction",
                     rl_is_names[o->is_correction], "is_cap", (double)o->is_cap, "mask_truncated", o->mask_truncated,
                     "epochs", o->epochs, "minibatch", o->minibatch, "epsilon", (double)o->epsilon, "epsilon_high",
                     (double)o->epsilon_high, "loss_aggregation", agg_names[c->agg], "kl_beta", c->kl_beta);
}

static const char *const resume_keys[] = {"family", "num_generations", NULL};

/* the batch's shape: rows, mini-batches, micro-batches */
static int shape(rl *c, char *err, size_t errlen)
{
    const rl_opts *o = c->o;
    c->B = c->run->batch;
    c->G = o->num_generations;
    c->rows = c->B * c->G;
    c->mb = o->minibatch > 0 && o->minibatch < c->rows ? o->minibatch : c->rows;
    if (c->rows % c->mb || c->mb % c->run->accum)
        return fio_fail(err, errlen, "the batch (%d rows) must split into mini-batches of %d rows and those into %d micro-batches",
                        c->rows, c->mb, c->run->accum);
    c->micro = c->mb / c->run->accum;
    const int n = dp_size(c->run->dp);
    if (c->micro % n)
        return fio_fail(err, errlen, "micro-batches of %d rows cannot be shared equally by %d ranks", c->micro, n);
    return 0;
}

static int prepare(void *self, trainer *t, char *err, size_t errlen)
{
    rl *c = self;
    const rl_opts *o = c->o;
    if (!o->policy || (!o->prompts && !o->prompt_rows)) return fio_fail(err, errlen, "give a policy and prompts");
    if (!t->tok && (o->prompts || o->stop_at_eos)) return fio_fail(err, errlen, "give a tokenizer");
    if (rl_opts_check(o, err, errlen) || c->m->configure(c->self, c, err, errlen) || shape(c, err, errlen)) return -1;
    c->stop = o->stop_at_eos ? tok_eot_id(t->tok) : -1;
    c->nt = t->threads;
    if (trainer_start_model(t, o->policy, &c->pol, &c->opt, err, errlen)) return -1;
    c->C = gpt2_cfg(c->pol)->n_embd;
    c->V = gpt2_cfg(c->pol)->vocab_size;
    if (load_models(c, t, err, errlen) || load_prompts(c, t, err, errlen)) return -1;
    t->examples = c->n_prompts = (size_t)c->ps->n;
    t->per_step = (size_t)c->B;
    t->updates = o->epochs * (c->rows / c->mb);
    json_t *s = settings_json(c);
    if (!s || json_object_update_new(t->settings, s)) return fio_fail(err, errlen, "out of memory");
    t->resume_keys = resume_keys;
    if (buffers(c, err, errlen)) return -1;
    return c->m->prepare ? c->m->prepare(c->self, c, t, err, errlen) : 0;
}

/* ---- one step: rollout, the sampler check, scores, advantages ----------------------------------------- */

/* data parallel: this rank sampled rows [lo, hi) into gen, glen and glogp; every rank gets them all */
static int gather_samples(rl *c, trainer *t, int stride, char *err, size_t errlen)
{
    rollout *r = &c->ro;
    dp *d = c->run->dp;
    if (t->nranks == 1) return 0;
    return dp_allgather(d, r->gen, (size_t)c->rows, (size_t)stride * sizeof *r->gen, err, errlen) ||
                   dp_allgather(d, r->glogp, (size_t)c->rows, (size_t)stride * sizeof *r->glogp, err, errlen) ||
                   dp_allgather(d, r->glen, (size_t)c->rows, sizeof *r->glen, err, errlen)
               ? -1
               : 0;
}

/* 1. sample the step's rows: each rank its share (row q's stream is the same whatever the ranks),
 * then every rank lays out all of them */
static int rollout_step(rl *c, trainer *t, char *err, size_t errlen)
{
    const rl_opts *o = c->o;
    rollout *r = &c->ro;
    for (int q = 0; q < c->rows; q++) {
        c->pp[q] = c->ps->rows[t->idx[q / c->G]];
        c->pl[q] = c->ps->len[t->idx[q / c->G]];
    }
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.temperature = o->temperature;
    so.top_k = o->top_k;
    so.top_p = o->top_p;
    so.max_new_tokens = o->max_new_tokens;
    so.stop_token = c->stop;
    so.seed = rng_stream(c->run->seed, (uint64_t)t->st.step);
    so.weights = o->rollout_weights;
    if (t->nranks == 1) return rollout_sample(r, c->pol, c->rows, c->pp, c->pl, &so, err, errlen);
    size_t lo, hi;
    trainer_rows(t, (size_t)c->rows, &lo, &hi);
    const int S = so.max_new_tokens;
    so.first_row = (long)lo;
    if (gpt2_sample(c->pol, (int)(hi - lo), c->pp + lo, c->pl + lo, &so, r->gen + lo * S, r->glen + lo, r->glogp + lo * S,
                    err, errlen))
        return -1;
    return gather_samples(c, t, S, err, errlen) || rollout_layout(r, c->rows, c->pp, c->pl, &so, err, errlen) ? -1 : 0;
}

/* 2. log π_old (and log π_ref) by full forwards, the method's values, 4. the scores: each rank on
 * its share of the rows (c->ro is that share meanwhile) */
static int local_pass(rl *c, double *t_scoring, char *err, size_t errlen)
{
    const rl_opts *o = c->o;
    rollout *r = &c->ro;
    if (rollout_logprobs(c->pol, r, o->temperature, r->logp, err, errlen)) return -1;
    if (c->m->rollout_forward && c->m->rollout_forward(c->self, c, err, errlen)) return -1;
    if (c->ref && rollout_logprobs(c->ref, r, o->temperature, r->ref_logp, err, errlen)) return -1;
    const double t0 = clk_now();
    if (scorer_score(&c->score, r->tokens, r->len, r->plen, r->B, r->T, r->raw_scores, err, errlen)) return -1;
    *t_scoring = clk_now() - t0;
    return 0;
}

/* the reward sources' means and stds over every rank's rows (each has those of its n rows) */
static int global_source_stats(rl *c, trainer *t, double n, char *err, size_t errlen)
{
    double x[2 * REWARD_MAX];
    for (int i = 0; i < c->rs.n; i++) {
        const reward_source *s = &c->rs.src[i];
        x[2 * i] = n * s->mean, x[2 * i + 1] = n * (s->std * s->std + s->mean * s->mean);
    }
    if (trainer_sum(t, x, (size_t)(2 * c->rs.n), err, errlen)) return -1;
    for (int i = 0; i < c->rs.n; i++) {
        const double m = x[2 * i] / c->rows, v = x[2 * i + 1] / c->rows - m * m;
        c->rs.src[i].mean = m;
        c->rs.src[i].std = sqrt(v > 0 ? v : 0);
    }
    return 0;
}

/* 2-4 over the ranks: each its share of the rows, then every rank gets the per-token arrays and
 * scores of all of them */
static int score_step(rl *c, trainer *t, char *err, size_t errlen)
{
    if (t->nranks == 1) return local_pass(c, &c->st.t_scoring, err, errlen);
    size_t lo, hi;
    trainer_rows(t, (size_t)c->rows, &lo, &hi);
    const rollout full = c->ro;
    c->ro = rollout_rows(&full, (int)lo, (int)hi);
    const int rc = local_pass(c, &c->st.t_scoring, err, errlen);
    c->ro = full;
    if (rc || (c->rs.n && global_source_stats(c, t, (double)(hi - lo), err, errlen))) return -1;
    dp *d = c->run->dp;
    const size_t R = (size_t)c->rows, row = (size_t)full.T * sizeof(float);
    float *per_token[] = {full.logp, full.ref_logp, full.values};
    for (size_t i = 0; i < sizeof per_token / sizeof *per_token; i++)
        if (dp_allgather(d, per_token[i], R, row, err, errlen)) return -1;
    return dp_allgather(d, full.raw_scores, R, sizeof *full.raw_scores, err, errlen);
}

/* the loss mask: completion tokens, less truncated rows with mask_truncated */
static void loss_mask(rl *c)
{
    const rollout *r = &c->ro;
    for (int b = 0; b < r->B; b++) {
        const int drop = c->o->mask_truncated && !r->has_stop[b];
        for (int t = 0; t < r->T; t++) c->lmask[(size_t)b * r->T + t] = r->mask[(size_t)b * r->T + t] && !drop;
    }
}

/* w from the ratio ρ = π_old / μ by the correction mode */
static double is_weight(const rl_opts *o, double rho)
{
    if (o->is_correction == RL_IS_TIS) return rho < o->is_cap ? rho : o->is_cap;
    if (o->is_correction == RL_IS_MASK) return rho >= 1.0 / o->is_cap && rho <= o->is_cap ? rho : 0.0;
    return 1.0;
}

void rl_logp_difference(const rollout *r, const uint8_t *mask, double *mean, double *max)
{
    double s = 0, m = 0, n = 0;
    const size_t N = (size_t)r->B * (size_t)r->T;
    for (size_t i = 0; i < N; i++) {
        if (!(mask ? mask[i] : r->mask[i])) continue;
        const double d = fabs((double)r->logp[i] - r->slogp[i]);
        s += d, m = fmax(m, d), n += 1;
    }
    *mean = n ? s / n : NAN;
    *max = n ? m : NAN;
}

/* 3. the sampler check: |log π_old - log μ| and the importance weights (per token, or per row for a
 * sequence-level method) with their statistics */
static void sampler_check(rl *c)
{
    const rollout *r = &c->ro;
    rl_stats *st = &c->st;
    const int seq = c->agg == RL_AGG_SEQUENCE;
    double wsum = 0, wmin = INFINITY, wmax = -INFINITY, nw = 0;
    rl_logp_difference(r, c->lmask, &st->logp_diff_mean, &st->logp_diff_max);
    for (int b = 0; b < r->B; b++) {
        double lr = 0;
        for (int t = 0; t < r->T; t++) {
            const size_t i = (size_t)b * r->T + t;
            c->isw[i] = 1.0f;
            if (!c->lmask[i]) continue;
            const double d = (double)r->logp[i] - r->slogp[i];
            lr += d;
            if (seq) continue;
            const double w = is_weight(c->o, exp(d)), x = c->o->is_correction ? w : exp(d);
            c->isw[i] = (float)w;
            wsum += x, wmin = fmin(wmin, x), wmax = fmax(wmax, x), nw += 1;
        }
        if (!seq) continue;
        const double w = is_weight(c->o, exp(lr)), x = c->o->is_correction ? w : exp(lr);
        c->row_w[b] = (float)w;
        wsum += x, wmin = fmin(wmin, x), wmax = fmax(wmax, x), nw += 1;
    }
    st->is_mean = nw ? wsum / nw : NAN;
    st->is_min = nw ? wmin : NAN;
    st->is_max = nw ? wmax : NAN;
}

/* the rollout's reward and length statistics (TRL's names) */
static void rollout_stats(rl *c)
{
    const rollout *r = &c->ro;
    rl_stats *st = &c->st;
    double s = 0, ss = 0, tl = 0, nt = 0, zero = 0;
    st->len_min = st->term_min = INFINITY, st->len_max = st->term_max = -INFINITY;
    for (int b = 0; b < r->B; b++) s += r->raw_scores[b];
    for (int b = 0; b < r->B; b++) {
        const double x = r->raw_scores[b] - s / r->B, l = r->len[b] - r->plen[b];
        ss += x * x;
        st->len_min = fmin(st->len_min, l), st->len_max = fmax(st->len_max, l);
        st->len_mean += l / r->B;
        st->clipped_ratio += (double)!r->has_stop[b] / r->B;
        if (!r->has_stop[b]) continue;
        tl += l, nt += 1;
        st->term_min = fmin(st->term_min, l), st->term_max = fmax(st->term_max, l);
    }
    for (int g = 0; g < c->B; g++) { /* groups whose G rewards are all equal (TRL: std within 1e-8) */
        double m = 0, v = 0;
        for (int k = 0; k < c->G; k++) m += r->raw_scores[g * c->G + k] / c->G;
        for (int k = 0; k < c->G; k++) v += (r->raw_scores[g * c->G + k] - m) * (r->raw_scores[g * c->G + k] - m);
        zero += c->G < 2 || sqrt(v / (c->G - 1)) <= 1e-8;
    }
    st->reward = s / r->B;
    st->reward_std = r->B > 1 ? sqrt(ss / (r->B - 1)) : NAN;
    st->frac_zero_std = zero / c->B;
    st->term_mean = nt ? tl / nt : 0; /* TRL: 0 when nothing terminated */
    if (!nt) st->term_min = st->term_max = 0;
}

static int begin_step(void *self, trainer *t, char *err, size_t errlen)
{
    rl *c = self;
    rollout *r = &c->ro;
    memset(&c->st, 0, sizeof c->st);
    c->t0 = clk_now();
    if (rollout_step(c, t, err, errlen) || score_step(c, t, err, errlen)) return -1;
    loss_mask(c);
    sampler_check(c);
    memcpy(r->scores, r->raw_scores, (size_t)r->B * sizeof *r->scores);
    c->t1 = clk_now();
    c->st.t_rollout = c->t1 - c->t0 - c->st.t_scoring;
    rollout_stats(c);
    if (c->m->advantages(c->self, c, err, errlen)) return -1;
    /* 5. the update's order: a permutation per epoch from this step's stream */
    c->rng = rng_stream(c->run->seed ^ 0x70706f5f6c6dull, (uint64_t)t->st.step); /* "ppo_lm" */
    memset(c->acc, 0, sizeof *c->acc);
    c->acc->low_min = INFINITY, c->acc->high_max = -INFINITY;
    return 0;
}

void rl_row_adv_to_tokens(rl *c)
{
    rollout *r = &c->ro;
    for (int b = 0; b < r->B; b++)
        for (int t = 0; t < r->T; t++) {
            const size_t i = (size_t)b * r->T + t;
            r->adv[i] = c->lmask[i] ? c->row_adv[b] : 0.0f;
        }
}

/* ---- the update --------------------------------------------------------------------------------------- */

/* rows idx[0..n) of the rollout into the micro-batch */
static void gather(rl *c, const int *idx, int n)
{
    const rollout *r = &c->ro;
    rl_batch *b = &c->b;
    const size_t T = (size_t)r->T;
    b->n = n, b->T = r->T, b->rows = idx;
    for (int q = 0; q < n; q++) {
        const size_t s = (size_t)idx[q] * T, d = (size_t)q * T;
        memcpy(b->tok + d, r->tokens + s, T * sizeof *b->tok);
        memcpy(b->tgt + d, r->targets + s, T * sizeof *b->tgt);
        memcpy(b->fmask + d, r->fmask + s, T * sizeof *b->fmask);
        memcpy(b->mask + d, c->lmask + s, T);
        memcpy(b->old + d, r->logp + s, T * sizeof *b->old);
        memcpy(b->adv + d, r->adv + s, T * sizeof *b->adv);
        memcpy(b->w + d, c->isw + s, T * sizeof *b->w);
        memcpy(b->ref + d, r->ref_logp + s, T * sizeof *b->ref);
        b->row_adv[q] = c->row_adv[idx[q]];
        b->row_w[q] = c->row_w[idx[q]];
    }
}

/* the new policy's tempered entropy and PPO's approx KL 0.5 (log π_θ - log π_old)^2 over the
 * micro-batch's loss tokens, before the backward overwrites the logits */
static void diagnostics(rl *c, const rl_batch *b, double *ent, double *akl, double *cnt)
{
    const float *logp = gpt2_logp(c->pol), *logits = gpt2_logits(c->pol);
    const long N = (long)b->n * b->T;
    const int V = c->V;
    double e_ = 0, k_ = 0, n_ = 0;
#pragma omp parallel for reduction(+ : e_, k_, n_) num_threads(c->nt)
    for (long i = 0; i < N; i++) {
        if (!b->mask[i]) continue;
        float lp, e;
        ppo_categorical_fwd(logits + (size_t)i * V, V, 1, V, b->tgt + i, &lp, &e);
        const double d = (double)logp[i] - b->old[i];
        e_ += e;
        k_ += 0.5 * d * d;
        n_ += 1;
    }
    *ent = e_, *akl = k_, *cnt = n_;
}

/* the step's sums: PPO's per-micro means (over the whole micro-batch's tokens: b->tokens) and TRL's
 * token sums */
static void accumulate(rl *c, const rl_batch *b, const rl_loss_stats *ls, double ent, double akl, double cnt)
{
    struct rl_acc *a = c->acc;
    const double ic = b->tokens > 0 ? 1.0 / b->tokens : 0.0;
    a->entropy += ent * ic;
    a->approxkl += akl * ic;
    a->clipfrac += ls->clipfrac;
    a->ratio += ls->ratio;
    a->loss_p += ls->mean;
    a->ent += ent, a->ntok += cnt;
    a->low += ls->low, a->high += ls->high, a->count += ls->count, a->k3 += ls->k3, a->loss += ls->loss;
    if (!isnan(ls->low_min)) a->low_min = fmin(a->low_min, ls->low_min), a->high_max = fmax(a->high_max, ls->high_max);
    a->nmicro++;
}

/* DAPO's normaliser: the loss tokens of the optimizer step's rows */
static double step_tokens(const rl *c, const int *idx, int n)
{
    double k = 0;
    for (int q = 0; q < n; q++)
        for (int t = 0; t < c->ro.T; t++) k += c->lmask[(size_t)idx[q] * c->ro.T + t] != 0;
    return k;
}

/* micro-batch a of update u: update u is mini-batch u % (rows / mb) of epoch u / (rows / mb) */
static int micro(void *self, trainer *t, int u, int a, double *loss, char *err, size_t errlen)
{
    rl *c = self;
    const int per_epoch = c->rows / c->mb, m0 = (u % per_epoch) * c->mb;
    if (m0 == 0 && a == 0) ppo_permutation(c->perm, c->rows, &c->rng);
    if (a == 0) c->step_tokens = step_tokens(c, c->perm + m0, c->mb);
    rl_batch *b = &c->b;
    const int *rows = c->perm + m0 + a * c->micro;
    size_t lo, hi; /* this rank's rows of the micro-batch; the means are over all of them */
    trainer_rows(t, (size_t)c->micro, &lo, &hi);
    gather(c, rows + lo, (int)(hi - lo));
    b->tokens = step_tokens(c, rows, c->micro);
    b->nrows = c->micro;
    float l;
    if (gpt2_forward_temp(c->pol, b->tok, b->tgt, b->fmask, b->n, b->T, c->o->temperature, &l, err, errlen)) return -1;
    double ent, akl, cnt;
    diagnostics(c, b, &ent, &akl, &cnt);
    const int seq = c->agg == RL_AGG_SEQUENCE;
    const float eh = c->o->epsilon_high > 0 ? c->o->epsilon_high : c->o->epsilon, scale = 1.0f / (float)t->accum;
    const rl_loss_opts lo_ = {c->agg, c->o->epsilon, eh, c->kl_beta, c->o->max_new_tokens, c->step_tokens, scale,
                              b->tokens, b->nrows};
    const rl_loss_in in = {b->n, b->T, gpt2_logp(c->pol), b->old, seq ? b->row_adv : b->adv,
                           c->o->is_correction == RL_IS_NONE ? NULL : seq ? b->row_w : b->w, b->ref, b->mask};
    rl_loss_stats ls;
    rl_policy_loss(&lo_, &in, b->dlogp, &ls);
    loss[0] = ls.mean;
    const float *dhidden = NULL;
    if (c->m->micro && c->m->micro(c->self, c, b, scale, loss, &dhidden, err, errlen)) return -1;
    if (gpt2_backward(c->pol, b->dlogp, dhidden, err, errlen)) return -1;
    accumulate(c, b, &ls, ent, akl, cnt);
    return 0;
}

/* data parallel: the update's sums, minima and maxima over the ranks (nmicro is every rank's) */
static int reduce_acc(rl *c, trainer *t, char *err, size_t errlen)
{
    struct rl_acc *a = c->acc;
    if (t->nranks == 1) return 0;
    double s[] = {a->approxkl, a->clipfrac, a->entropy, a->ratio, a->loss_p, a->ent, a->ntok,
                  a->low,      a->high,     a->count,   a->k3,    a->loss};
    if (trainer_sum(t, s, sizeof s / sizeof *s, err, errlen) ||
        dp_allreduce_f64(c->run->dp, &a->low_min, 1, DP_MIN, err, errlen) ||
        dp_allreduce_f64(c->run->dp, &a->high_max, 1, DP_MAX, err, errlen))
        return -1;
    a->approxkl = s[0], a->clipfrac = s[1], a->entropy = s[2], a->ratio = s[3], a->loss_p = s[4], a->ent = s[5];
    a->ntok = s[6], a->low = s[7], a->high = s[8], a->count = s[9], a->k3 = s[10], a->loss = s[11];
    return 0;
}

static int end_step(void *self, trainer *t, char *err, size_t errlen)
{
    rl *c = self;
    rl_stats *st = &c->st;
    const struct rl_acc *a = c->acc;
    if (reduce_acc(c, t, err, errlen)) return -1;
    const double im = 1.0 / (double)a->nmicro;
    st->approxkl = a->approxkl * im;
    st->clipfrac = a->clipfrac * im;
    st->entropy_micro = a->entropy * im;
    st->ratio = a->ratio * im;
    st->loss_micro = a->loss_p * im;
    st->entropy = a->ntok ? a->ent / a->ntok : NAN;
    st->clip_low = a->count ? a->low / a->count : NAN;
    st->clip_high = a->count ? a->high / a->count : NAN;
    st->clip_region = a->count ? (a->low + a->high) / a->count : NAN;
    st->clip_low_min = a->low_min == INFINITY ? NAN : a->low_min;
    st->clip_high_max = a->high_max == -INFINITY ? NAN : a->high_max;
    st->loss = a->loss / t->updates;
    if (c->kl_beta > 0) st->kl = a->ntok ? a->k3 / a->ntok : NAN;
    for (int b = 0; b < c->ro.B; b++) t->st.num_tokens += (uint64_t)c->ro.len[b];
    st->t_update = clk_now() - c->t1;
    return c->m->end_step ? c->m->end_step(c->self, c, t, err, errlen) : 0;
}

/* ---- metrics ----------------------------------------------------------------------------------------------- */

size_t rl_sampling_metrics(const rl_stats *s, trainer_metric *out)
{
    const trainer_metric m[] = {{"sampling/sampling_logp_difference/mean", s->logp_diff_mean},
                                {"sampling/sampling_logp_difference/max", s->logp_diff_max},
                                {"sampling/importance_sampling_ratio/min", s->is_min},
                                {"sampling/importance_sampling_ratio/mean", s->is_mean},
                                {"sampling/importance_sampling_ratio/max", s->is_max}};
    memcpy(out, m, sizeof m);
    return sizeof m / sizeof *m;
}

size_t rl_metrics(const rl *c, trainer_metric *out)
{
    const rl_stats *s = &c->st;
    const trainer_metric m[] = {
        {"reward", s->reward}, {"reward_std", s->reward_std}, {"frac_reward_zero_std", s->frac_zero_std},
        {"kl", c->kl_beta > 0 || c->need_ref ? s->kl : NAN}, {"entropy", s->entropy}, {"loss", s->loss},
        {"clip_ratio/low_mean", s->clip_low}, {"clip_ratio/low_min", s->clip_low_min},
        {"clip_ratio/high_mean", s->clip_high}, {"clip_ratio/high_max", s->clip_high_max},
        {"clip_ratio/region_mean", s->clip_region}, {"completions/mean_length", s->len_mean},
        {"completions/min_length", s->len_min}, {"completions/max_length", s->len_max},
        {"completions/clipped_ratio", s->clipped_ratio}, {"completions/mean_terminated_length", s->term_mean},
        {"completions/min_terminated_length", s->term_min}, {"completions/max_terminated_length", s->term_max},
        {"time/rollout", s->t_rollout}, {"time/scoring", s->t_scoring}, {"time/update", s->t_update}};
    size_t k = sizeof m / sizeof *m;
    memcpy(out, m, sizeof m);
    for (int i = 0; i < c->rs.n; i++) {
        out[k++] = (trainer_metric){c->metric_names[i][0], c->rs.src[i].mean};
        out[k++] = (trainer_metric){c->metric_names[i][1], c->rs.src[i].std};
    }
    return k + rl_sampling_metrics(s, out + k);
}

static size_t metrics(void *self, trainer *t, trainer_metric *out)
{
    rl *c = self;
    return c->m->metrics(c->self, c, t, out);
}

/* ---- files, export, release ------------------------------------------------------------------------------- */

static int files(void *self, trainer *t, int final, trainer_files *fs, char *err, size_t errlen)
{
    rl *c = self;
    return c->m->files ? c->m->files(c->self, c, t, final, fs, err, errlen) : 0;
}

static int export_model(void *self, trainer *t, char *err, size_t errlen)
{
    rl *c = self;
    return c->m->export_model ? c->m->export_model(c->self, c, t, err, errlen) : trainer_export(t, err, errlen);
}

static void release(void *self)
{
    rl *c = self;
    if (c->m->free) c->m->free(c->self);
    gpt2_free(c->pol);
    gpt2_free(c->ref);
    adamw_free(&c->opt);
    reward_free(&c->rs);
    ds_prompts_free(&c->prompts);
    ds_free(&c->d);
    rollout_free(&c->ro);
    rl_batch *b = &c->b;
    void *bufs[] = {c->lmask, c->isw, c->row_adv, c->row_w, c->pp, c->pl, c->perm, c->seq, c->acc, b->tok, b->tgt,
                    b->mask, b->fmask, b->old, b->adv, b->w, b->ref, b->dlogp, b->row_adv, b->row_w};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

static const char *const default_loss_names[] = {"loss", NULL};

int rl_fit(const rl_method *m, void *self, const rl_opts *o, const trainer_run *run, const trainer_optim *optim,
           rl_result *res, char *err, size_t errlen)
{
    rl c = {.m = m, .self = self, .o = o, .run = run};
    const trainer_recipe rc = {.name = m->name,
                               .loss_names = m->loss_names ? m->loss_names : default_loss_names,
                               .prepare = prepare,
                               .begin_step = begin_step,
                               .micro = micro,
                               .end_step = end_step,
                               .metrics = metrics,
                               .files = files,
                               .export_model = export_model,
                               .free = release,
                               .own_metrics = m->own_metrics};
    trainer_result tr;
    const int rc_ = trainer_fit(&rc, &c, run, optim, o->tokenizer, &tr, err, errlen);
    if (res) *res = (rl_result){tr.resumed_from, tr.steps, c.n_prompts, c.st};
    return rc_;
}
