/* ppo_lm.c — per-token PPO for language models: rollouts, rewards, GAE, the clipped update, the
 * adaptive KL controller and the `rlhf ppo` trainer. See ppo_lm.h. */
#include "ppo_lm.h"

#include "fileio.h"
#include "hf.h"
#include "ppo.h"
#include "rng.h"
#include "tok.h"

#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ppo_lm_rm_scorer(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                     float *scores, char *err, size_t errlen)
{
    (void)prompt_lengths;
    return rm_forward((rm_model *)ud, tokens, lengths, B, T, scores, err, errlen);
}

/* ---- rollouts ---------------------------------------------------------------------------------- */

int ppo_lm_rollout_create(ppo_lm_rollout *r, int max_rows, int max_T, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (max_rows < 1 || max_T < 2) return fio_fail(err, errlen, "rollout: %d rows x %d tokens is too small", max_rows, max_T);
    const size_t n = (size_t)max_rows * (size_t)max_T, R = (size_t)max_rows;
    r->max_rows = max_rows;
    r->max_T = max_T;
    r->tokens = malloc(n * sizeof *r->tokens);
    r->targets = malloc(n * sizeof *r->targets);
    r->mask = malloc(n);
    r->fmask = malloc(n * sizeof *r->fmask);
    r->plen = malloc(R * sizeof *r->plen);
    r->len = malloc(R * sizeof *r->len);
    r->has_stop = malloc(R);
    r->logp = calloc(n, sizeof *r->logp);
    r->ref_logp = calloc(n, sizeof *r->ref_logp);
    r->values = calloc(n, sizeof *r->values);
    r->rewards = calloc(n, sizeof *r->rewards);
    r->adv = calloc(n, sizeof *r->adv);
    r->ret = calloc(n, sizeof *r->ret);
    r->scores = calloc(R, sizeof *r->scores);
    r->raw_scores = calloc(R, sizeof *r->raw_scores);
    if (r->tokens && r->targets && r->mask && r->fmask && r->plen && r->len && r->has_stop && r->logp && r->ref_logp &&
        r->values && r->rewards && r->adv && r->ret && r->scores && r->raw_scores)
        return 0;
    ppo_lm_rollout_free(r);
    return fio_fail(err, errlen, "rollout: out of memory");
}

void ppo_lm_rollout_free(ppo_lm_rollout *r)
{
    free(r->tokens);
    free(r->targets);
    free(r->mask);
    free(r->fmask);
    free(r->plen);
    free(r->len);
    free(r->has_stop);
    free(r->logp);
    free(r->ref_logp);
    free(r->values);
    free(r->rewards);
    free(r->adv);
    free(r->ret);
    free(r->scores);
    free(r->raw_scores);
    memset(r, 0, sizeof *r);
}

int ppo_lm_rollout_set(ppo_lm_rollout *r, int B, const int32_t *const *prompts, const int *plen, const int32_t *comp,
                       int comp_stride, const int *clen, int32_t stop, int32_t pad, char *err, size_t errlen)
{
    if (B < 1 || B > r->max_rows) return fio_fail(err, errlen, "rollout: %d rows (room for %d)", B, r->max_rows);
    int T = 2;
    for (int b = 0; b < B; b++) {
        const int32_t *c = comp + (size_t)b * comp_stride;
        int n = 0;
        while (n < clen[b] && !(n > 0 && stop >= 0 && c[n - 1] == stop)) n++; /* up to the first stop, kept */
        if (plen[b] < 1 || n < 1)
            return fio_fail(err, errlen, "rollout: row %d has %s", b, plen[b] < 1 ? "an empty prompt" : "an empty completion");
        r->plen[b] = plen[b];
        r->len[b] = plen[b] + n;
        r->has_stop[b] = stop >= 0 && c[n - 1] == stop;
        if (r->len[b] > r->max_T)
            return fio_fail(err, errlen, "rollout: row %d has %d tokens (room for %d)", b, r->len[b], r->max_T);
        T = r->len[b] > T ? r->len[b] : T;
    }
    r->B = B;
    r->T = T;
    const size_t n = (size_t)B * (size_t)T;
    for (int b = 0; b < B; b++) {
        int32_t *row = r->tokens + (size_t)b * T;
        memcpy(row, prompts[b], (size_t)plen[b] * sizeof *row);
        memcpy(row + plen[b], comp + (size_t)b * comp_stride, (size_t)(r->len[b] - plen[b]) * sizeof *row);
        for (int t = r->len[b]; t < T; t++) row[t] = pad;
        for (int t = 0; t < T; t++) {
            const size_t i = (size_t)b * T + t;
            r->targets[i] = t + 1 < r->len[b] ? row[t + 1] : pad;
            r->mask[i] = t >= plen[b] - 1 && t <= r->len[b] - 2;
            r->fmask[i] = r->mask[i];
        }
    }
    memset(r->logp, 0, n * sizeof *r->logp);
    memset(r->ref_logp, 0, n * sizeof *r->ref_logp);
    memset(r->values, 0, n * sizeof *r->values);
    memset(r->rewards, 0, n * sizeof *r->rewards);
    memset(r->adv, 0, n * sizeof *r->adv);
    memset(r->ret, 0, n * sizeof *r->ret);
    return 0;
}

int ppo_lm_rollout_logprobs(gpt2 *m, const ppo_lm_rollout *r, float temperature, float *out, char *err, size_t errlen)
{
    float loss;
    if (gpt2_forward_temp(m, r->tokens, r->targets, r->fmask, r->B, r->T, temperature, &loss, err, errlen)) return -1;
    const float *lp = gpt2_logp(m);
    const size_t n = (size_t)r->B * (size_t)r->T;
    for (size_t i = 0; i < n; i++) out[i] = r->mask[i] ? lp[i] : 0.0f;
    return 0;
}

void ppo_lm_eos_penalty(ppo_lm_rollout *r, ppo_lm_eos_mode mode, float penalty)
{
    for (int b = 0; b < r->B; b++) {
        float s = r->raw_scores[b];
        if (!r->has_stop[b] && mode == PPO_LM_EOS_SUBTRACT) s -= penalty;
        if (!r->has_stop[b] && mode == PPO_LM_EOS_REPLACE) s = penalty;
        r->scores[b] = s;
    }
}

void ppo_lm_rewards(ppo_lm_rollout *r, double kl_coef, int whiten)
{
    const int T = r->T;
    for (int b = 0; b < r->B; b++)
        for (int t = 0; t < T; t++) {
            const size_t i = (size_t)b * T + t;
            if (!r->mask[i]) {
                r->rewards[i] = 0;
                continue;
            }
            double x = -kl_coef * ((double)r->logp[i] - r->ref_logp[i]);
            if (t == r->len[b] - 2) x += r->scores[b]; /* the step that emits the last token */
            r->rewards[i] = (float)x;
        }
    if (whiten) ppo_whiten(r->rewards, r->mask, (long)r->B * T, 1e-8f, 0);
}

void ppo_lm_advantages(ppo_lm_rollout *r, float gamma, float lambda)
{
    const ppo_layout lay = {r->B, r->T, r->T, 1};
    ppo_gae(r->adv, r->ret, r->rewards, r->values, NULL, NULL, NULL, NULL, r->mask, &lay, gamma, lambda);
    ppo_whiten(r->adv, r->mask, (long)r->B * r->T, 1e-8f, 1);
}

void ppo_lm_seq_sum(const ppo_lm_rollout *r, const float *a, const float *b_, double *out)
{
    for (int b = 0; b < r->B; b++) {
        double s = 0;
        for (int t = 0; t < r->T; t++) {
            const size_t i = (size_t)b * r->T + t;
            if (r->mask[i]) s += (double)a[i] - (b_ ? (double)b_[i] : 0.0);
        }
        out[b] = s;
    }
}

double ppo_lm_kl_control(double beta, double kl, double target, double horizon, int n_steps)
{
    double e = kl / target - 1.0;
    e = e < -0.2 ? -0.2 : e > 0.2 ? 0.2 : e;
    return beta * (1.0 + e * (double)n_steps / horizon);
}

/* ---- the trainer state ------------------------------------------------------------------------- */

ppo_lm_hparams ppo_lm_hparams_defaults(void)
{
    ppo_lm_hparams h = {0};
    h.temperature = 0.7f;
    h.max_new_tokens = 32;
    h.stop_token = -1;
    h.eos_mode = PPO_LM_EOS_OFF;
    h.eos_penalty = 1.0f;
    h.kl_coef = 0.05;
    h.target_kl = 0;
    h.kl_horizon = 10000;
    h.gamma = 1.0f;
    h.lambda = 0.95f;
    h.epochs = 4;
    h.minibatch = 0;
    h.accum = 1;
    h.cliprange = 0.2f;
    h.cliprange_value = 0.2f;
    h.vf_coef = 0.1f;
    h.lr = 3e-6f;
    h.min_lr = 0;
    h.beta1 = 0.9f;
    h.beta2 = 0.999f;
    h.grad_clip = 1.0f;
    h.seed = 42;
    return h;
}

int ppo_lm_hparams_check(const ppo_lm_hparams *h, char *err, size_t errlen)
{
    if (!(h->temperature > 0) || !isfinite(h->temperature))
        return fio_fail(err, errlen, "temperature %g must be positive (log-probs are taken at it)", (double)h->temperature);
    if (h->max_new_tokens < 1) return fio_fail(err, errlen, "max new tokens %d must be positive", h->max_new_tokens);
    if (!(h->kl_coef >= 0) || !isfinite(h->kl_coef)) return fio_fail(err, errlen, "KL coefficient %g must not be negative", h->kl_coef);
    if (h->target_kl < 0 || (h->target_kl > 0 && !(h->kl_horizon > 0)))
        return fio_fail(err, errlen, "the adaptive KL controller needs target > 0 and horizon > 0");
    if (!(h->gamma >= 0 && h->gamma <= 1) || !(h->lambda >= 0 && h->lambda <= 1))
        return fio_fail(err, errlen, "gamma and lambda must lie in [0, 1]");
    if (h->epochs < 1 || h->accum < 1) return fio_fail(err, errlen, "epochs and accum must be positive");
    if (!(h->cliprange > 0) || !(h->cliprange_value >= 0) || !(h->vf_coef >= 0))
        return fio_fail(err, errlen, "cliprange must be positive, cliprange-value and vf-coef not negative");
    if (!(h->lr >= 0) || !(h->min_lr >= 0)) return fio_fail(err, errlen, "learning rates must not be negative");
    return 0;
}

struct ppo_lm {
    gpt2 *pol, *ref;
    head *vh;               /* on the policy trunk (owned), or NULL */
    rm_model *vm;           /* separate value model (owned), or NULL */
    adamw opt, hopt, vopt;  /* policy trunk, value head, value trunk */
    ppo_lm_hparams h;
    double beta;
    long total_steps;
    int max_rows, max_T, C, nt;
    ppo_lm_rollout ro;
    int32_t *gen;           /* (max_rows, max_new_tokens) sampled tokens */
    int *olen, *perm;
    double *seq;            /* (max_rows) per-row sums */
    /* one micro-batch, gathered from the rollout (rows x T) */
    int32_t *mtok, *mtgt;
    float *mfmask, *mold, *madv, *mret, *moldv, *mv, *mdlogp, *mdv, *dhidden;
    uint8_t *mmask;
};

static void *xalloc(size_t n, int *ok)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p) *ok = 0;
    return p;
}

static head *value_head(ppo_lm *p) { return p->vm ? p->vm->h : p->vh; }

int ppo_lm_create(ppo_lm **out, gpt2 *policy, rm_model *value, gpt2 *ref, const ppo_lm_hparams *h, int max_rows,
                  int max_T, long total_steps, int nthreads, char *err, size_t errlen)
{
    *out = NULL;
    ppo_lm *p = calloc(1, sizeof *p);
    if (!p) {
        gpt2_free(policy);
        gpt2_free(ref);
        rm_free(value);
        return fio_fail(err, errlen, "PPO: out of memory");
    }
    p->pol = policy;
    p->ref = ref;
    p->vm = value;
    if (ppo_lm_hparams_check(h, err, errlen)) goto fail;
    p->h = *h;
    p->beta = h->kl_coef;
    p->total_steps = total_steps > 0 ? total_steps : 1;
    p->max_rows = max_rows;
    p->max_T = max_T;
    p->nt = nthreads > 0 ? nthreads : omp_get_max_threads();
    const gpt2_config *c = gpt2_cfg(policy);
    p->C = c->n_embd;
    if (policy == ref) {
        p->ref = NULL; /* freed once, as the policy */
        fio_fail(err, errlen, "PPO: the reference must be a separate copy of the policy");
        goto fail;
    }
    const gpt2_config *rc = gpt2_cfg(ref);
    if (rc->vocab_size != c->vocab_size || rc->n_positions < max_T || c->n_positions < max_T) {
        fio_fail(err, errlen, "PPO: policy and reference must share the vocabulary and hold %d positions", max_T);
        goto fail;
    }
    if (value && gpt2_cfg(value->m)->n_positions < max_T) {
        fio_fail(err, errlen, "PPO: the value model holds %d positions, the rollouts need %d", gpt2_cfg(value->m)->n_positions,
                 max_T);
        goto fail;
    }
    if (!value) {
        if (head_create(&p->vh, p->C, err, errlen)) goto fail;
        head_init(p->vh, 0.0, 0); /* zero: lm-human-preferences' value head */
    }
    gpt2_set_threads(p->pol, p->nt);
    gpt2_set_threads(p->ref, p->nt);
    head_set_threads(value_head(p), p->nt);
    if (value) gpt2_set_threads(value->m, p->nt);
    if (adamw_create(&p->opt, gpt2_num_params(policy)) || adamw_create(&p->hopt, head_num_params(value_head(p))) ||
        (value && adamw_create(&p->vopt, gpt2_num_params(value->m)))) {
        fio_fail(err, errlen, "PPO: out of memory for the optimizers");
        goto fail;
    }
    if (ppo_lm_rollout_create(&p->ro, max_rows, max_T, err, errlen)) goto fail;
    const size_t n = (size_t)max_rows * (size_t)max_T, R = (size_t)max_rows;
    int ok = 1;
    p->gen = xalloc(R * (size_t)h->max_new_tokens * sizeof *p->gen, &ok);
    p->olen = xalloc(R * sizeof *p->olen, &ok);
    p->perm = xalloc(R * sizeof *p->perm, &ok);
    p->seq = xalloc(R * sizeof *p->seq, &ok);
    p->mtok = xalloc(n * sizeof *p->mtok, &ok);
    p->mtgt = xalloc(n * sizeof *p->mtgt, &ok);
    p->mfmask = xalloc(n * sizeof(float), &ok);
    p->mold = xalloc(n * sizeof(float), &ok);
    p->madv = xalloc(n * sizeof(float), &ok);
    p->mret = xalloc(n * sizeof(float), &ok);
    p->moldv = xalloc(n * sizeof(float), &ok);
    p->mv = xalloc(n * sizeof(float), &ok);
    p->mdlogp = xalloc(n * sizeof(float), &ok);
    p->mdv = xalloc(n * sizeof(float), &ok);
    p->dhidden = xalloc(n * (size_t)p->C * sizeof(float), &ok);
    p->mmask = xalloc(n, &ok);
    if (!ok) {
        fio_fail(err, errlen, "PPO: out of memory");
        goto fail;
    }
    /* activations sized once for the largest rollout (the update's micro-batches are smaller) */
    if (trainer_reserve(p->pol, max_rows, max_T, err, errlen) || trainer_reserve(p->ref, max_rows, max_T, err, errlen))
        goto fail;
    if (value && gpt2_forward_hidden(value->m, p->mtok, max_rows, max_T, err, errlen)) goto fail;
    *out = p;
    return 0;
fail:
    ppo_lm_free(p);
    return -1;
}

void ppo_lm_free(ppo_lm *p)
{
    if (!p) return;
    gpt2_free(p->pol);
    gpt2_free(p->ref);
    head_free(p->vh);
    rm_free(p->vm);
    adamw_free(&p->opt);
    adamw_free(&p->hopt);
    adamw_free(&p->vopt);
    ppo_lm_rollout_free(&p->ro);
    free(p->gen);
    free(p->olen);
    free(p->perm);
    free(p->seq);
    free(p->mtok);
    free(p->mtgt);
    free(p->mfmask);
    free(p->mold);
    free(p->madv);
    free(p->mret);
    free(p->moldv);
    free(p->mv);
    free(p->mdlogp);
    free(p->mdv);
    free(p->dhidden);
    free(p->mmask);
    free(p);
}

gpt2 *ppo_lm_policy(ppo_lm *p) { return p->pol; }
head *ppo_lm_value_head(ppo_lm *p) { return value_head(p); }
rm_model *ppo_lm_value_model(ppo_lm *p) { return p->vm; }
adamw *ppo_lm_optimizer(ppo_lm *p) { return &p->opt; }
adamw *ppo_lm_value_optimizer(ppo_lm *p, int trunk) { return trunk ? (p->vm ? &p->vopt : NULL) : &p->hopt; }
double ppo_lm_kl_coef(const ppo_lm *p) { return p->beta; }
void ppo_lm_set_kl_coef(ppo_lm *p, double beta) { p->beta = beta; }
const ppo_lm_rollout *ppo_lm_last_rollout(const ppo_lm *p) { return &p->ro; }

/* Values of the rollout rows (or of a micro-batch) into v: the head on the hidden states of the
 * policy forward just made, or a forward of the separate value model. */
static int values_of(ppo_lm *p, const int32_t *tok, int B, int T, float *v, char *err, size_t errlen)
{
    if (p->vm) {
        if (gpt2_forward_hidden(p->vm->m, tok, B, T, err, errlen)) return -1;
        head_forward(p->vm->h, gpt2_hidden(p->vm->m), B * T, v);
    } else {
        head_forward(p->vh, gpt2_hidden(p->pol), B * T, v);
    }
    return 0;
}

/* One AdamW step over the policy trunk, the value head and (when separate) the value trunk, with
 * one global gradient norm over all of them (torch's clip_grad_norm_ over every parameter). */
static int joint_update(ppo_lm *p, double *norm, float *lr, char *err, size_t errlen)
{
    head *vh = value_head(p);
    const ppo_lm_hparams *h = &p->h;
    const trainer_optim om = {h->warmup, p->total_steps, h->lr, h->min_lr, h->grad_clip,
                              {h->lr, h->beta1, h->beta2, 1e-8f, h->weight_decay}};
    adamw_range pr[GPT2_NUM_TENSORS], hr[2], vr[GPT2_NUM_TENSORS];
    gpt2_adamw_ranges(p->pol, pr);
    head_adamw_ranges(vh, hr);
    if (p->vm) gpt2_adamw_ranges(p->vm->m, vr);
    const trainer_block b[3] = {
        {gpt2_params(p->pol), gpt2_grads(p->pol), gpt2_num_params(p->pol), &p->opt, pr, GPT2_NUM_TENSORS},
        {head_params(vh), head_grads(vh), head_num_params(vh), &p->hopt, hr, 2},
        {p->vm ? gpt2_params(p->vm->m) : NULL, p->vm ? gpt2_grads(p->vm->m) : NULL, p->vm ? gpt2_num_params(p->vm->m) : 0,
         &p->vopt, vr, GPT2_NUM_TENSORS}};
    return trainer_update_blocks(&om, b, p->vm ? 3 : 2, 1.0f, (long)p->opt.t, norm, lr, err, errlen);
}

static void zero_grads(ppo_lm *p)
{
    gpt2_zero_grad(p->pol);
    head_zero_grad(value_head(p));
    if (p->vm) gpt2_zero_grad(p->vm->m);
}

/* rows idx[0..n) of the rollout into the micro-batch buffers */
static void gather(ppo_lm *p, const int *idx, int n)
{
    const ppo_lm_rollout *r = &p->ro;
    const size_t T = (size_t)r->T;
    for (int q = 0; q < n; q++) {
        const size_t s = (size_t)idx[q] * T, d = (size_t)q * T;
        memcpy(p->mtok + d, r->tokens + s, T * sizeof *p->mtok);
        memcpy(p->mtgt + d, r->targets + s, T * sizeof *p->mtgt);
        memcpy(p->mfmask + d, r->fmask + s, T * sizeof *p->mfmask);
        memcpy(p->mmask + d, r->mask + s, T);
        memcpy(p->mold + d, r->logp + s, T * sizeof *p->mold);
        memcpy(p->madv + d, r->adv + s, T * sizeof *p->madv);
        memcpy(p->mret + d, r->ret + s, T * sizeof *p->mret);
        memcpy(p->moldv + d, r->values + s, T * sizeof *p->moldv);
    }
}

typedef struct {
    double approxkl, clipfrac, entropy, vpred, vf_clipfrac, ratio, loss_p, loss_v;
} micro_stats;

/* Forward, losses and backward of one micro-batch of n gathered rows; scale weighs its share of the
 * mini-batch's loss (1/accum, as TRL's gradient accumulation). */
static int micro_step(ppo_lm *p, int n, float scale, micro_stats *ms, char *err, size_t errlen)
{
    const ppo_lm_hparams *h = &p->h;
    const int T = p->ro.T, V = gpt2_cfg(p->pol)->vocab_size;
    const long N = (long)n * T;
    float loss;
    if (gpt2_forward_temp(p->pol, p->mtok, p->mtgt, p->mfmask, n, T, h->temperature, &loss, err, errlen)) return -1;
    if (values_of(p, p->mtok, n, T, p->mv, err, errlen)) return -1;
    const float *logp = gpt2_logp(p->pol), *logits = gpt2_logits(p->pol);
    /* diagnostics before the backward overwrites the logits: entropy of the tempered distribution,
     * TRL's approxkl 0.5 (log π_new - log π_old)^2, the mean value prediction */
    double ent = 0, akl = 0, vp = 0, cnt = 0;
#pragma omp parallel for reduction(+ : ent, akl, vp, cnt) num_threads(p->nt)
    for (long i = 0; i < N; i++) {
        if (!p->mmask[i]) continue;
        float lp, e;
        ppo_categorical_fwd(logits + (size_t)i * V, V, 1, V, p->mtgt + i, &lp, &e);
        const double d = (double)logp[i] - p->mold[i];
        ent += e;
        akl += 0.5 * d * d;
        vp += p->mv[i];
        cnt += 1;
    }
    ppo_pg_stats pg;
    double vclip;
    ms->loss_p = ppo_policy_loss(logp, p->mold, p->madv, p->mmask, N, h->cliprange, scale, p->mdlogp, &pg);
    ms->loss_v = ppo_value_loss(p->mv, p->moldv, p->mret, p->mmask, N, h->cliprange_value, scale * h->vf_coef, p->mdv,
                                &vclip);
    const double ic = cnt > 0 ? 1.0 / cnt : 0.0;
    ms->entropy = ent * ic;
    ms->approxkl = akl * ic;
    ms->vpred = vp * ic;
    ms->clipfrac = pg.clipfrac;
    ms->ratio = pg.ratio;
    ms->vf_clipfrac = vclip;
    /* backward: the value loss through its head into dhidden, then the trunk(s) */
    head *vh = value_head(p);
    const float *hid = gpt2_hidden(p->vm ? p->vm->m : p->pol);
    memset(p->dhidden, 0, (size_t)N * (size_t)p->C * sizeof *p->dhidden);
    head_backward(vh, hid, p->mdv, (int)N, p->dhidden);
    if (p->vm) {
        if (gpt2_backward(p->vm->m, NULL, p->dhidden, err, errlen)) return -1;
        return gpt2_backward(p->pol, p->mdlogp, NULL, err, errlen);
    }
    return gpt2_backward(p->pol, p->mdlogp, p->dhidden, err, errlen);
}

static double mean_of(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : 0.0;
}

int ppo_lm_step(ppo_lm *p, int B, const int32_t *const *prompts, const int *plen, long iter, ppo_lm_scorer score,
                void *ud, ppo_lm_stats *st, char *err, size_t errlen)
{
    const ppo_lm_hparams *h = &p->h;
    ppo_lm_rollout *r = &p->ro;
    memset(st, 0, sizeof *st);
    if (B < 1 || B > p->max_rows) return fio_fail(err, errlen, "PPO: %d prompts (room for %d)", B, p->max_rows);
    const int mb = h->minibatch > 0 && h->minibatch < B ? h->minibatch : B;
    if (B % mb || mb % h->accum)
        return fio_fail(err, errlen, "PPO: the batch (%d) must split into mini-batches of %d rows and those into %d micro-batches",
                        B, mb, h->accum);
    const int micro = mb / h->accum;
    const int32_t pad = h->stop_token >= 0 ? h->stop_token : 0;

    /* 1. rollout: sample, then recompute log-probs (policy, reference) and values by full forwards */
    double t0 = trainer_now();
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.temperature = h->temperature;
    so.max_new_tokens = h->max_new_tokens;
    so.stop_token = h->stop_token;
    so.seed = rng_stream(h->seed, (uint64_t)iter);
    so.weights = h->sample_weights;
    if (gpt2_sample(p->pol, B, prompts, plen, &so, p->gen, p->olen, NULL, err, errlen)) return -1;
    if (ppo_lm_rollout_set(r, B, prompts, plen, p->gen, h->max_new_tokens, p->olen, h->stop_token, pad, err, errlen))
        return -1;
    const int T = r->T;
    const long N = (long)B * T;
    if (ppo_lm_rollout_logprobs(p->pol, r, h->temperature, r->logp, err, errlen)) return -1;
    if (values_of(p, r->tokens, B, T, r->values, err, errlen)) return -1;
    for (long i = 0; i < N; i++)
        if (!r->mask[i]) r->values[i] = 0;
    if (ppo_lm_rollout_logprobs(p->ref, r, h->temperature, r->ref_logp, err, errlen)) return -1;
    double t1 = trainer_now();
    st->t_rollout = t1 - t0;

    /* 2. scoring */
    if (score(ud, r->tokens, r->len, r->plen, B, T, r->raw_scores, err, errlen)) return -1;
    ppo_lm_eos_penalty(r, h->eos_mode, h->eos_penalty);
    double t2 = trainer_now();
    st->t_scoring = t2 - t1;

    /* 3-4. per-token rewards, GAE, whitened advantages */
    const double beta = p->beta;
    ppo_lm_rewards(r, beta, h->whiten_rewards);
    ppo_lm_advantages(r, h->gamma, h->lambda);
    st->explained_variance = ppo_explained_variance(r->values, r->ret, r->mask, N);
    ppo_lm_seq_sum(r, r->logp, r->ref_logp, p->seq);
    st->kl = mean_of(p->seq, B);
    ppo_lm_seq_sum(r, r->logp, NULL, p->seq);
    st->entropy = -mean_of(p->seq, B);
    st->kl_coef = beta;
    st->non_score_reward = -beta * st->kl;
    double sc = 0, clen = 0, neos = 0;
    for (int b = 0; b < B; b++) {
        sc += r->scores[b];
        clen += r->len[b] - r->plen[b];
        neos += r->has_stop[b];
    }
    st->scores = sc / B;
    st->rlhf_reward = st->scores + st->non_score_reward;
    st->completion_length = clen / B;
    st->num_eos = neos;

    /* 5. epochs over shuffled mini-batches; one optimizer step per mini-batch */
    uint64_t rng = rng_stream(h->seed ^ 0x70706f5f6c6dull, (uint64_t)iter); /* "ppo_lm" */
    micro_stats acc = {0};
    long nmicro = 0;
    for (int e = 0; e < h->epochs; e++) {
        ppo_permutation(p->perm, B, &rng);
        for (int m0 = 0; m0 < B; m0 += mb) {
            zero_grads(p);
            for (int u = 0; u < h->accum; u++) {
                micro_stats ms;
                gather(p, p->perm + m0 + u * micro, micro);
                if (micro_step(p, micro, 1.0f / (float)h->accum, &ms, err, errlen)) return -1;
                if (trainer_check_finite(iter + 1, "policy loss", ms.loss_p, err, errlen) ||
                    trainer_check_finite(iter + 1, "value loss", ms.loss_v, err, errlen))
                    return -1;
                acc.approxkl += ms.approxkl;
                acc.clipfrac += ms.clipfrac;
                acc.entropy += ms.entropy;
                acc.vpred += ms.vpred;
                acc.vf_clipfrac += ms.vf_clipfrac;
                acc.ratio += ms.ratio;
                acc.loss_p += ms.loss_p;
                acc.loss_v += ms.loss_v;
                nmicro++;
            }
            double norm;
            float lr;
            if (joint_update(p, &norm, &lr, err, errlen)) return -1;
            st->grad_norm = norm;
            st->lr = lr;
        }
    }
    const double im = 1.0 / (double)nmicro;
    st->approxkl = acc.approxkl * im;
    st->clipfrac = acc.clipfrac * im;
    st->policy_entropy = acc.entropy * im;
    st->vpred = acc.vpred * im;
    st->vf_clipfrac = acc.vf_clipfrac * im;
    st->ratio = acc.ratio * im;
    st->loss_policy = acc.loss_p * im;
    st->loss_value = acc.loss_v * im;

    /* 6. the KL coefficient for the next iteration */
    if (h->target_kl > 0) p->beta = ppo_lm_kl_control(beta, st->kl, h->target_kl, h->kl_horizon, B);
    st->t_update = trainer_now() - t2;
    st->eps = B / (trainer_now() - t0);
    return 0;
}

void ppo_lm_metrics(const ppo_lm_stats *s, double episode, trainer_metric *out)
{
    const trainer_metric m[PPO_LM_NMETRICS] = {{"objective/kl", s->kl},
                                               {"objective/kl_coef", s->kl_coef},
                                               {"objective/entropy", s->entropy},
                                               {"objective/scores", s->scores},
                                               {"objective/non_score_reward", s->non_score_reward},
                                               {"objective/rlhf_reward", s->rlhf_reward},
                                               {"objective/completion_length", s->completion_length},
                                               {"policy/approxkl", s->approxkl},
                                               {"policy/clipfrac", s->clipfrac},
                                               {"policy/entropy", s->policy_entropy},
                                               {"val/vpred", s->vpred},
                                               {"val/clipfrac", s->vf_clipfrac},
                                               {"val/ratio", s->ratio},
                                               {"val/explained_variance", s->explained_variance},
                                               {"val/num_eos_tokens", s->num_eos},
                                               {"loss/policy", s->loss_policy},
                                               {"loss/value", s->loss_value},
                                               {"lr", s->lr},
                                               {"grad_norm", s->grad_norm},
                                               {"episode", episode},
                                               {"time/rollout", s->t_rollout},
                                               {"time/scoring", s->t_scoring},
                                               {"time/update", s->t_update},
                                               {"time/total", s->t_rollout + s->t_scoring + s->t_update},
                                               {"eps", s->eps}};
    memcpy(out, m, sizeof m);
}

/* ---- `rlhf ppo` -------------------------------------------------------------------------------- */

ppo_lm_opts ppo_lm_defaults(void)
{
    ppo_lm_opts o = {0};
    o.h = ppo_lm_hparams_defaults();
    o.stop_at_eos = 1;
    o.batch = 8;
    o.steps = 100;
    o.max_prompt_len = 64;
    o.ckpt_every = 50;
    o.keep_last = 2;
    return o;
}

#define PPO_HEAD_FILE "value_head.safetensors"
#define PPO_HEAD_OPT_FILE "value_head_optimizer.safetensors"
#define PPO_VALUE_FILE "value_model.safetensors"
#define PPO_STATE_FILE "ppo_state.json"
#define PPO_HEAD_PREFIX "v_head.summary." /* TRL's AutoModelForCausalLMWithValueHead names */

static json_t *settings_json(const ppo_lm_opts *o, long steps, size_t n)
{
    const ppo_lm_hparams *h = &o->h;
    return json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:I, s:I, s:i, s:i, s:I, s:i, s:i, s:f, s:i, s:f, s:f, s:f, s:b, "
                     "s:f, s:f, s:i, s:f, s:f, s:f, s:f, s:f, s:i, s:f}",
                     "policy", o->policy ? o->policy : "", "ref", o->ref, "rm", o->rm, "value_model", o->value_model,
                     "prompts", o->prompts, "examples", (json_int_t)n, "seed", (json_int_t)h->seed, "batch", o->batch,
                     "accum", h->accum, "steps", (json_int_t)steps, "minibatch", h->minibatch, "epochs", h->epochs,
                     "temperature", (double)h->temperature, "max_new_tokens", h->max_new_tokens, "kl_coef", h->kl_coef,
                     "target_kl", h->target_kl, "kl_horizon", h->kl_horizon, "whiten_rewards", h->whiten_rewards,
                     "gamma", (double)h->gamma, "lambda", (double)h->lambda, "eos_mode", (int)h->eos_mode,
                     "eos_penalty", (double)h->eos_penalty, "cliprange", (double)h->cliprange, "cliprange_value",
                     (double)h->cliprange_value, "vf_coef", (double)h->vf_coef, "lr", (double)h->lr, "max_prompt_len",
                     o->max_prompt_len, "min_lr", (double)h->min_lr);
}

/* the extra files of a checkpoint: value head (+ moments), separate value model, β */
typedef struct {
    uint8_t *bytes[4];
    char *state;
    ckpt_file f[5];
    size_t n;
} ckpt_extras;

static void extras_free(ckpt_extras *x)
{
    for (int i = 0; i < 4; i++) free(x->bytes[i]);
    free(x->state);
    memset(x, 0, sizeof *x);
}

static int extras_make(ppo_lm *p, int with_state, ckpt_extras *x, char *err, size_t errlen)
{
    memset(x, 0, sizeof *x);
    size_t len;
    head *vh = ppo_lm_value_head(p);
    if (head_write_mem(vh, PPO_HEAD_PREFIX, &x->bytes[0], &len, err, errlen)) return -1;
    x->f[x->n++] = (ckpt_file){PPO_HEAD_FILE, x->bytes[0], len};
    if (!with_state) return 0;
    if (trainer_block_moments_to_mem(ppo_lm_value_optimizer(p, 0), NULL, &x->bytes[1], &len, err, errlen)) return -1;
    x->f[x->n++] = (ckpt_file){PPO_HEAD_OPT_FILE, x->bytes[1], len};
    rm_model *vm = ppo_lm_value_model(p);
    if (vm) {
        if (trainer_block_moments_to_mem(ppo_lm_value_optimizer(p, 1), gpt2_params_const(vm->m), &x->bytes[2], &len, err, errlen))
            return -1;
        x->f[x->n++] = (ckpt_file){PPO_VALUE_FILE, x->bytes[2], len};
    }
    json_t *j = json_pack("{s:f}", "kl_coef", ppo_lm_kl_coef(p));
    x->state = j ? json_dumps(j, JSON_REAL_PRECISION(17)) : NULL;
    json_decref(j);
    if (!x->state) return fio_fail(err, errlen, "out of memory");
    x->f[x->n++] = (ckpt_file){PPO_STATE_FILE, x->state, strlen(x->state)};
    return 0;
}

/* the value function's files and β from a checkpoint folder */
static int extras_load(ppo_lm *p, const char *dir, char *err, size_t errlen)
{
    char path[4200];
    head *h, *vh = ppo_lm_value_head(p);
    if (head_load(fio_join(path, sizeof path, dir, PPO_HEAD_FILE), PPO_HEAD_PREFIX, &h, err, errlen)) return -1;
    int rc = head_dim(h) == head_dim(vh) ? 0 : fio_fail(err, errlen, "%s: value head of width %d, expected %d", path, head_dim(h), head_dim(vh));
    if (rc == 0) memcpy(head_params(vh), head_params(h), head_num_params(h) * sizeof(float));
    head_free(h);
    if (rc == 0) rc = trainer_block_moments_load(fio_join(path, sizeof path, dir, PPO_HEAD_OPT_FILE), ppo_lm_value_optimizer(p, 0), NULL, err, errlen);
    rm_model *vm = ppo_lm_value_model(p);
    if (rc == 0 && vm)
        rc = trainer_block_moments_load(fio_join(path, sizeof path, dir, PPO_VALUE_FILE), ppo_lm_value_optimizer(p, 1), gpt2_params(vm->m),
                          err, errlen);
    if (rc) return -1;
    size_t n;
    char *s = fio_read_all(fio_join(path, sizeof path, dir, PPO_STATE_FILE), &n, err, errlen);
    if (!s) return -1;
    json_error_t je;
    json_t *j = json_loadb(s, n, 0, &je), *b = j ? json_object_get(j, "kl_coef") : NULL;
    free(s);
    if (!json_is_number(b) || !(json_number_value(b) >= 0)) rc = fio_fail(err, errlen, "%s: needs a number \"kl_coef\"", path);
    else ppo_lm_set_kl_coef(p, json_number_value(b));
    json_decref(j);
    return rc;
}

int ppo_lm_run(const ppo_lm_opts *o, ppo_lm_result *res, char *err, size_t errlen)
{
    ppo_lm_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    if (!o->policy || !o->prompts || !o->tokenizer) return fio_fail(err, errlen, "give a policy, prompts and a tokenizer");
    if (o->batch < 1 || o->steps < 1) return fio_fail(err, errlen, "batch and steps must be positive");
    if (!o->score && !o->rm) return fio_fail(err, errlen, "no reward: give a reward-model folder");
    if (ppo_lm_hparams_check(&o->h, err, errlen)) return -1;
    const int mb = o->h.minibatch > 0 && o->h.minibatch < o->batch ? o->h.minibatch : o->batch;
    if (o->batch % mb || mb % o->h.accum)
        return fio_fail(err, errlen, "the batch (%d) must split into mini-batches of %d rows and those into %d micro-batches",
                        o->batch, mb, o->h.accum);
    trainer tr;
    tok_tokenizer *t;
    int nt;
    const trainer_opts to = {o->out, o->resume, o->tokenizer, o->ckpt_every, o->keep_last, o->stop_at, o->on_step, o->ud};
    if (trainer_setup(&tr, &to, o->threads, &t, &nt, err, errlen)) return -1;
    int rc = -1;
    gpt2 *pol = NULL, *ref = NULL;
    rm_model *rmm = NULL, *vm = NULL;
    ppo_lm *p = NULL;
    adamw opt = {0};
    trainer_state st = {0};
    ds_dataset d = {0};
    ds_sampler smp = {0};
    size_t *idx = NULL;
    const int32_t **pp = NULL;
    int *pl = NULL;
    ckpt_extras x = {0};
    const int V = (int)tok_vocab_size(t);
    if (trainer_start_model(&tr, o->policy, t, nt, &pol, &opt, &st, err, errlen)) goto done;
    res->resumed_from = st.step;
    const char *refdir = o->ref ? o->ref : o->policy;
    if (hf_load_gpt2(refdir, &ref, err, errlen)) goto done;
    if (!o->score) {
        if (rm_load(o->rm, &rmm, err, errlen)) goto done;
        gpt2_set_threads(rmm->m, nt);
        head_set_threads(rmm->h, nt);
    }
    if (o->value_model && rm_load(o->value_model, &vm, err, errlen)) goto done;
    const gpt2_config *c = gpt2_cfg(pol);
    const struct {
        const char *dir;
        const gpt2 *m;
    } others[] = {{refdir, ref}, {o->rm, rmm ? rmm->m : NULL}, {o->value_model, vm ? vm->m : NULL}};
    for (int i = 0; i < 3; i++)
        if (others[i].m && gpt2_cfg(others[i].m)->vocab_size < V) {
            fio_fail(err, errlen, "%s: the model's vocabulary (%d) is smaller than the tokenizer's (%d)", others[i].dir,
                     gpt2_cfg(others[i].m)->vocab_size, V);
            goto done;
        }
    /* the prompts, checked before anything is written */
    ds_load_opts lo = ds_load_defaults();
    lo.require_kind = DS_PROMPT_ONLY;
    lo.max_len = c->n_positions;
    lo.max_prompt_len = c->n_positions - o->h.max_new_tokens;
    if (o->max_prompt_len > 0 && o->max_prompt_len < lo.max_prompt_len) lo.max_prompt_len = o->max_prompt_len;
    if (lo.max_prompt_len < 1) {
        fio_fail(err, errlen, "%d new tokens leave no room for a prompt in %d positions", o->h.max_new_tokens, c->n_positions);
        goto done;
    }
    if (ds_load(&d, t, o->prompts, &lo, err, errlen)) goto done;
    res->n_prompts = d.n;
    const int maxT = d.max_row + o->h.max_new_tokens;
    for (int i = 0; i < 3; i++)
        if (others[i].m && gpt2_cfg(others[i].m)->n_positions < maxT) {
            fio_fail(err, errlen, "%s: %d positions, but prompts of up to %d tokens plus %d new tokens need %d", others[i].dir,
                     gpt2_cfg(others[i].m)->n_positions, d.max_row, o->h.max_new_tokens, maxT);
            goto done;
        }
    res->steps = o->steps;
    const trainer_hparams th = {.batch = o->batch, .accum = o->h.accum, .seed = o->h.seed};
    if (tr.resuming && trainer_check_resume(&st, &th, d.n, tr.latest, err, errlen)) goto done;
    trainer_state_free(&st);
    st.settings = settings_json(o, o->steps, d.n);
    ppo_lm_hparams h = o->h;
    h.stop_token = o->stop_at_eos ? tok_eot_id(t) : -1;
    const long opt_steps = o->steps * h.epochs * (o->batch / mb);
    {
        gpt2 *a = pol, *b = ref;
        rm_model *v = vm;
        pol = ref = NULL;
        vm = NULL;
        if (ppo_lm_create(&p, a, v, b, &h, o->batch, maxT, opt_steps, nt, err, errlen)) goto done;
    }
    /* the policy's optimizer (fresh, or the checkpoint's moments) moves into the trainer */
    adamw_free(ppo_lm_optimizer(p));
    *ppo_lm_optimizer(p) = opt;
    memset(&opt, 0, sizeof opt);
    if (tr.resuming && extras_load(p, tr.latest, err, errlen)) goto done;
    /* the reward model's activations sized once for the largest rollout, like the trainer's models */
    if (rmm) {
        int32_t *z = calloc((size_t)o->batch * (size_t)maxT, sizeof *z);
        const int bad = !z ? fio_fail(err, errlen, "out of memory") : gpt2_forward_hidden(rmm->m, z, o->batch, maxT, err, errlen);
        free(z);
        if (bad) goto done;
    }
    idx = malloc((size_t)o->batch * sizeof *idx);
    pp = malloc((size_t)o->batch * sizeof *pp);
    pl = malloc((size_t)o->batch * sizeof *pl);
    if (!idx || !pp || !pl || ds_sampler_create(&smp, d.n, h.seed)) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    if (trainer_begin(&tr, st.step, o->steps, err, errlen)) goto done;
    while (st.step < o->steps) {
        ds_sampler_next(&smp, (size_t)o->batch, &st.cursor, idx);
        for (int b = 0; b < o->batch; b++) {
            pp[b] = d.tok + d.ex[idx[b]].prompt;
            pl[b] = d.ex[idx[b]].np;
        }
        ppo_lm_stats s;
        if (ppo_lm_step(p, o->batch, pp, pl, st.step, o->score ? o->score : ppo_lm_rm_scorer, o->score ? o->score_ud : rmm,
                        &s, err, errlen))
            goto done;
        st.step++;
        const ppo_lm_rollout *r = ppo_lm_last_rollout(p);
        for (int b = 0; b < r->B; b++) st.num_tokens += (uint64_t)r->len[b];
        res->last = s;
        trainer_metric mx[PPO_LM_NMETRICS];
        ppo_lm_metrics(&s, (double)st.step * o->batch, mx);
        if (trainer_ckpt_due(&tr, st.step) && extras_make(p, 1, &x, err, errlen)) goto done;
        const int end = trainer_step_end(&tr, ppo_lm_policy(p), ppo_lm_optimizer(p), &st, mx, PPO_LM_NMETRICS, x.f, x.n,
                                         err, errlen);
        extras_free(&x);
        if (end) {
            rc = end > 0 ? 0 : -1;
            goto done;
        }
    }
    if (extras_make(p, 0, &x, err, errlen) || trainer_export(&tr, ppo_lm_policy(p), x.f, x.n, err, errlen)) goto done;
    if (ppo_lm_value_model(p)) {
        char dst[4200];
        const ckpt_file tokf[] = {{"vocab.json", tr.vocab, tr.nvocab}, {"merges.txt", tr.merges, tr.nmerges}};
        if (rm_save(ppo_lm_value_model(p), fio_join(dst, sizeof dst, o->out, "value_model"), tokf, tr.vocab ? 2 : 0, err,
                    errlen))
            goto done;
    }
    rc = 0;
done:
    extras_free(&x);
    free(idx);
    free(pp);
    free(pl);
    ds_sampler_free(&smp);
    ds_free(&d);
    trainer_state_free(&st);
    trainer_close(&tr);
    adamw_free(&opt);
    ppo_lm_free(p);
    gpt2_free(pol);
    gpt2_free(ref);
    rm_free(rmm);
    rm_free(vm);
    tok_free(t);
    return rc;
}
