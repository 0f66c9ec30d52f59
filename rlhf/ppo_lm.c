/* ppo_lm.c — per-token PPO for language models as a recipe on the one training loop: rollout,
 * rewards, GAE, the clipped update, the adaptive KL controller. See ppo_lm.h. */
#include "ppo_lm.h"

#include "clock.h"
#include "fileio.h"
#include "head.h"
#include "hf.h"
#include "ppo.h"
#include "rm.h"
#include "rng.h"
#include "stats.h"
#include "tok.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the steps --------------------------------------------------------------------------------- */

void ppo_lm_eos_penalty(rollout *r, ppo_lm_eos_mode mode, float penalty)
{
    for (int b = 0; b < r->B; b++) {
        float s = r->raw_scores[b];
        if (!r->has_stop[b] && mode == PPO_LM_EOS_SUBTRACT) s -= penalty;
        if (!r->has_stop[b] && mode == PPO_LM_EOS_REPLACE) s = penalty;
        r->scores[b] = s;
    }
}

void ppo_lm_rewards(rollout *r, double kl_coef, int whiten)
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

void ppo_lm_advantages(rollout *r, float gamma, float lambda)
{
    const ppo_layout lay = {r->B, r->T, r->T, 1};
    ppo_gae(r->adv, r->ret, r->rewards, r->values, NULL, NULL, NULL, NULL, r->mask, &lay, gamma, lambda);
    ppo_whiten(r->adv, r->mask, (long)r->B * r->T, 1e-8f, 1);
}

double ppo_lm_kl_control(double beta, double kl, double target, double horizon, int n_steps)
{
    double e = kl / target - 1.0;
    e = e < -0.2 ? -0.2 : e > 0.2 ? 0.2 : e;
    return beta * (1.0 + e * (double)n_steps / horizon);
}

/* ---- hyperparameters and metrics ---------------------------------------------------------------- */

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
    h.ppo_epochs = 4;
    h.minibatch = 0;
    h.cliprange = 0.2f;
    h.cliprange_value = 0.2f;
    h.vf_coef = 0.1f;
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
    if (h->ppo_epochs < 1) return fio_fail(err, errlen, "PPO epochs must be positive");
    if (!(h->cliprange > 0) || !(h->cliprange_value >= 0) || !(h->vf_coef >= 0))
        return fio_fail(err, errlen, "cliprange must be positive, cliprange-value and vf-coef not negative");
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


/* ---- the recipe's state -------------------------------------------------------------------------- */

#define PPO_HEAD_FILE "value_head.safetensors"
#define PPO_HEAD_OPT_FILE "value_head_optimizer.safetensors"
#define PPO_VALUE_FILE "value_model.safetensors"
#define PPO_STATE_FILE "ppo_state.json"
#define PPO_HEAD_PREFIX "v_head.summary." /* TRL's AutoModelForCausalLMWithValueHead names */

typedef struct {
    double approxkl, clipfrac, entropy, vpred, vf_clipfrac, ratio, loss_p, loss_v;
} micro_stats;

typedef struct {
    const ppo_lm_opts *o;
    ppo_lm_result *res;
    ppo_lm_hparams h;       /* o->h with the stop token resolved */
    gpt2 *pol, *ref;
    head *vh;               /* on the policy trunk (owned), or NULL */
    rm_model *vm;           /* separate value model (owned), or NULL */
    rm_model *rmm;          /* the reward model (owned) when it scores */
    adamw opt, hopt, vopt;  /* policy trunk, value head, value trunk */
    scorer score;
    double beta;            /* the KL coefficient now */
    int C, nt, mb, micro;   /* width, threads, rows per mini-batch and per micro-batch */
    ds_dataset d;           /* the prompts file */
    ds_prompts prompts;     /* its rows (or o->prompt_rows) */
    const ds_prompts *ps;
    rollout ro;
    const int32_t **pp;     /* this step's prompts */
    int *pl, *perm;
    double *seq;            /* (batch) per-row sums */
    uint64_t rng;           /* this step's mini-batch order */
    micro_stats acc;        /* this step's sums over micro-batches */
    long nmicro;
    double t0, t2;          /* this step's start, the end of its scoring */
    ppo_lm_stats st;
    /* one micro-batch, gathered from the rollout (rows x T) */
    int32_t *mtok, *mtgt;
    float *mfmask, *mold, *madv, *mret, *moldv, *mv, *mdlogp, *mdv, *dhidden;
    uint8_t *mmask;
} ppo_lm;

static head *value_head(ppo_lm *p) { return p->vm ? p->vm->h : p->vh; }

static void *xalloc(size_t n, int *ok)
{
    void *q = calloc(n ? n : 1, 1);
    if (!q) *ok = 0;
    return q;
}

/* ---- prepare ----------------------------------------------------------------------------------------- */

/* the reference, the reward model and the separate value model, each checked against the tokenizer */
static int load_models(ppo_lm *p, trainer *t, char *err, size_t errlen)
{
    const ppo_lm_opts *o = p->o;
    const char *refdir = o->ref ? o->ref : o->policy;
    if (hf_load_gpt2(refdir, &p->ref, err, errlen)) return -1;
    if (!o->score.fn) {
        if (rm_load(o->rm, &p->rmm, err, errlen)) return -1;
        gpt2_set_threads(p->rmm->m, t->threads);
        head_set_threads(p->rmm->h, t->threads);
        p->score = rm_scorer(p->rmm);
    } else {
        p->score = o->score;
    }
    if (o->value_model && rm_load(o->value_model, &p->vm, err, errlen)) return -1;
    const gpt2 *others[] = {p->ref, p->rmm ? p->rmm->m : NULL, p->vm ? p->vm->m : NULL};
    const char *dirs[] = {refdir, o->rm, o->value_model};
    for (int i = 0; i < 3; i++)
        if (others[i] && trainer_check_vocab(t, dirs[i], others[i], err, errlen)) return -1;
    if (gpt2_cfg(p->ref)->vocab_size != gpt2_cfg(p->pol)->vocab_size)
        return fio_fail(err, errlen, "%s: the reference's vocabulary differs from the policy's", refdir);
    return 0;
}

/* the prompts, checked before anything is written; *maxT gets the longest rollout row */
static int load_prompts(ppo_lm *p, trainer *t, int *maxT, char *err, size_t errlen)
{
    const ppo_lm_opts *o = p->o;
    const int P = gpt2_cfg(p->pol)->n_positions, maxnew = p->h.max_new_tokens;
    if (o->prompts) {
        ds_load_opts lo = ds_load_defaults();
        lo.require_kind = DS_PROMPT_ONLY;
        lo.max_len = P;
        lo.max_prompt_len = P - maxnew;
        if (o->max_prompt_len > 0 && o->max_prompt_len < lo.max_prompt_len) lo.max_prompt_len = o->max_prompt_len;
        if (lo.max_prompt_len < 1) return fio_fail(err, errlen, "%d new tokens leave no room for a prompt in %d positions", maxnew, P);
        if (ds_load(&p->d, t->tok, o->prompts, &lo, err, errlen)) return -1;
        if (ds_prompts_make(&p->d, NULL, p->d.n, &p->prompts, err, errlen)) return -1;
        p->ps = &p->prompts;
    } else {
        p->ps = o->prompt_rows;
    }
    *maxT = ds_prompts_max_len(p->ps) + maxnew;
    const gpt2 *ms[] = {p->pol, p->ref, p->rmm ? p->rmm->m : NULL, p->vm ? p->vm->m : NULL};
    for (int i = 0; i < 4; i++)
        if (ms[i] && gpt2_cfg(ms[i])->n_positions < *maxT)
            return fio_fail(err, errlen, "a model holds %d positions, but prompts of up to %d tokens plus %d new tokens need %d",
                            gpt2_cfg(ms[i])->n_positions, *maxT - maxnew, maxnew, *maxT);
    return 0;
}

/* the value function as blocks 1 (its head) and 2 (a separate trunk), the checkpoint's head and β */
static int value_blocks(ppo_lm *p, trainer *t, char *err, size_t errlen)
{
    if (!p->vm) {
        if (head_create(&p->vh, p->C, err, errlen)) return -1;
        head_init(p->vh, 0.0, 0); /* zero: lm-human-preferences' value head */
    } else {
        gpt2_set_threads(p->vm->m, p->nt);
    }
    head_set_threads(value_head(p), p->nt);
    const trainer_block hb = trainer_head_block(value_head(p), &p->hopt, PPO_HEAD_OPT_FILE);
    if (trainer_add_block(t, &hb, err, errlen)) return -1;
    if (p->vm) {
        const trainer_block vb = trainer_gpt2_block(p->vm->m, &p->vopt, PPO_VALUE_FILE, 1);
        if (trainer_add_block(t, &vb, err, errlen)) return -1;
    }
    if (!t->resuming) return 0;
    char path[4200];
    head *h, *vh = value_head(p);
    if (head_load(fio_join(path, sizeof path, t->latest, PPO_HEAD_FILE), PPO_HEAD_PREFIX, &h, err, errlen)) return -1;
    int rc = head_dim(h) == head_dim(vh) ? 0 : fio_fail(err, errlen, "%s: value head of width %d, expected %d", path, head_dim(h), head_dim(vh));
    if (rc == 0) memcpy(head_params(vh), head_params(h), head_num_params(h) * sizeof(float));
    head_free(h);
    size_t n;
    char *s = rc ? NULL : fio_read_all(fio_join(path, sizeof path, t->latest, PPO_STATE_FILE), &n, err, errlen);
    if (!s) return -1;
    json_t *j = json_loadb(s, n, 0, NULL), *b = j ? json_object_get(j, "kl_coef") : NULL;
    free(s);
    if (!json_is_number(b) || !(json_number_value(b) >= 0)) rc = fio_fail(err, errlen, "%s: needs a number \"kl_coef\"", path);
    else p->beta = json_number_value(b);
    json_decref(j);
    return rc;
}

/* every buffer, sized once for the largest rollout; the models' activations too */
static int buffers(ppo_lm *p, int maxT, char *err, size_t errlen)
{
    const int B = p->o->run.batch;
    if (rollout_create(&p->ro, B, maxT, p->h.max_new_tokens, err, errlen)) return -1;
    const size_t n = (size_t)B * (size_t)maxT, R = (size_t)B;
    int ok = 1;
    p->pp = xalloc(R * sizeof *p->pp, &ok);
    p->pl = xalloc(R * sizeof *p->pl, &ok);
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
    if (!ok) return fio_fail(err, errlen, "PPO: out of memory");
    /* activations sized once for the largest rollout (the update's micro-batches are smaller) */
    if (trainer_reserve(p->pol, B, maxT, err, errlen) || trainer_reserve(p->ref, B, maxT, err, errlen)) return -1;
    if (p->vm && gpt2_forward_hidden(p->vm->m, p->mtok, B, maxT, err, errlen)) return -1;
    return p->rmm ? gpt2_forward_hidden(p->rmm->m, p->mtok, B, maxT, err, errlen) : 0;
}

static json_t *settings_json(const ppo_lm_opts *o, const ppo_lm_hparams *h)
{
    return json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:i, s:f, s:i, s:f, s:f, s:f, s:b, s:f, s:f, s:i, s:f, s:f, s:f, "
                     "s:f, s:i}",
                     "policy", o->policy ? o->policy : "", "ref", o->ref, "rm", o->rm, "value_model", o->value_model,
                     "prompts", o->prompts, "minibatch", h->minibatch, "ppo_epochs", h->ppo_epochs, "temperature",
                     (double)h->temperature, "max_new_tokens", h->max_new_tokens, "kl_coef", h->kl_coef, "target_kl",
                     h->target_kl, "kl_horizon", h->kl_horizon, "whiten_rewards", h->whiten_rewards, "gamma",
                     (double)h->gamma, "lambda", (double)h->lambda, "eos_mode", (int)h->eos_mode, "eos_penalty",
                     (double)h->eos_penalty, "cliprange", (double)h->cliprange, "cliprange_value", (double)h->cliprange_value,
                     "vf_coef", (double)h->vf_coef, "max_prompt_len", o->max_prompt_len);
}

static int prepare(void *self, trainer *t, char *err, size_t errlen)
{
    ppo_lm *p = self;
    const ppo_lm_opts *o = p->o;
    const int B = o->run.batch;
    if (!o->policy || (!o->prompts && !o->prompt_rows)) return fio_fail(err, errlen, "give a policy and prompts");
    if (!t->tok && (o->prompts || o->stop_at_eos)) return fio_fail(err, errlen, "give a tokenizer");
    if (!o->score.fn && !o->rm) return fio_fail(err, errlen, "no reward: give a reward-model folder");
    if (ppo_lm_hparams_check(&o->h, err, errlen)) return -1;
    p->h = o->h;
    p->h.stop_token = o->stop_at_eos ? tok_eot_id(t->tok) : -1;
    p->beta = p->h.kl_coef;
    p->mb = p->h.minibatch > 0 && p->h.minibatch < B ? p->h.minibatch : B;
    if (B % p->mb || p->mb % o->run.accum)
        return fio_fail(err, errlen, "the batch (%d) must split into mini-batches of %d rows and those into %d micro-batches",
                        B, p->mb, o->run.accum);
    p->micro = p->mb / o->run.accum;
    p->nt = t->threads;
    if (trainer_start_model(t, o->policy, &p->pol, &p->opt, err, errlen)) return -1;
    p->C = gpt2_cfg(p->pol)->n_embd;
    p->res->resumed_from = t->st.step;
    int maxT = 0;
    if (load_models(p, t, err, errlen) || load_prompts(p, t, &maxT, err, errlen)) return -1;
    gpt2_set_threads(p->ref, p->nt);
    p->res->n_prompts = (size_t)p->ps->n;
    t->examples = (size_t)p->ps->n;
    t->per_step = (size_t)B;
    t->updates = p->h.ppo_epochs * (B / p->mb);
    json_object_update_new(t->settings, settings_json(o, &p->h));
    return value_blocks(p, t, err, errlen) || buffers(p, maxT, err, errlen) ? -1 : 0;
}

/* ---- one iteration --------------------------------------------------------------------------------- */

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

/* 1. rollout: sample, then recompute log-probs (policy, reference) and values by full forwards */
static int rollout_step(ppo_lm *p, trainer *t, int B, char *err, size_t errlen)
{
    const ppo_lm_hparams *h = &p->h;
    rollout *r = &p->ro;
    for (int b = 0; b < B; b++) {
        p->pp[b] = p->ps->rows[t->idx[b]];
        p->pl[b] = p->ps->len[t->idx[b]];
    }
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.temperature = h->temperature;
    so.max_new_tokens = h->max_new_tokens;
    so.stop_token = h->stop_token;
    so.seed = rng_stream(p->o->run.seed, (uint64_t)t->st.step);
    so.weights = h->sample_weights;
    if (rollout_sample(r, p->pol, B, p->pp, p->pl, &so, err, errlen)) return -1;
    const long N = (long)B * r->T;
    if (rollout_logprobs(p->pol, r, h->temperature, r->logp, err, errlen)) return -1;
    if (values_of(p, r->tokens, B, r->T, r->values, err, errlen)) return -1;
    for (long i = 0; i < N; i++)
        if (!r->mask[i]) r->values[i] = 0;
    return rollout_logprobs(p->ref, r, h->temperature, r->ref_logp, err, errlen);
}

/* 3-4. per-token rewards, GAE, whitened advantages, and the rollout's statistics */
static void advantages_step(ppo_lm *p, int B)
{
    rollout *r = &p->ro;
    ppo_lm_stats *st = &p->st;
    const double beta = p->beta;
    ppo_lm_rewards(r, beta, p->h.whiten_rewards);
    ppo_lm_advantages(r, p->h.gamma, p->h.lambda);
    st->explained_variance = ppo_explained_variance(r->values, r->ret, r->mask, (long)B * r->T);
    rollout_seq_sum(r, r->logp, r->ref_logp, p->seq);
    st->kl = stats_mean(p->seq, B);
    rollout_seq_sum(r, r->logp, NULL, p->seq);
    st->entropy = -stats_mean(p->seq, B);
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
}

static int begin_step(void *self, trainer *t, char *err, size_t errlen)
{
    ppo_lm *p = self;
    const int B = p->o->run.batch;
    rollout *r = &p->ro;
    memset(&p->st, 0, sizeof p->st);
    p->t0 = clk_now();
    if (rollout_step(p, t, B, err, errlen)) return -1;
    const double t1 = clk_now();
    p->st.t_rollout = t1 - p->t0;
    /* 2. scoring */
    if (scorer_score(&p->score, r->tokens, r->len, r->plen, B, r->T, r->raw_scores, err, errlen)) return -1;
    ppo_lm_eos_penalty(r, p->h.eos_mode, p->h.eos_penalty);
    p->t2 = clk_now();
    p->st.t_scoring = p->t2 - t1;
    advantages_step(p, B);
    /* 5. the update's order: a permutation per epoch from this iteration's stream */
    p->rng = rng_stream(p->o->run.seed ^ 0x70706f5f6c6dull, (uint64_t)t->st.step); /* "ppo_lm" */
    memset(&p->acc, 0, sizeof p->acc);
    p->nmicro = 0;
    return 0;
}

/* rows idx[0..n) of the rollout into the micro-batch buffers */
static void gather(ppo_lm *p, const int *idx, int n)
{
    const rollout *r = &p->ro;
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

/* 5. micro-batch a of update u: update u is mini-batch u % (batch / mb) of epoch u / (batch / mb) */
static int micro(void *self, trainer *t, int u, int a, double *loss, char *err, size_t errlen)
{
    ppo_lm *p = self;
    const int B = p->o->run.batch, per_epoch = B / p->mb, m0 = (u % per_epoch) * p->mb;
    if (m0 == 0 && a == 0) ppo_permutation(p->perm, B, &p->rng);
    micro_stats ms;
    gather(p, p->perm + m0 + a * p->micro, p->micro);
    if (micro_step(p, p->micro, 1.0f / (float)t->accum, &ms, err, errlen)) return -1;
    loss[0] = ms.loss_p;
    loss[1] = ms.loss_v;
    p->acc.approxkl += ms.approxkl;
    p->acc.clipfrac += ms.clipfrac;
    p->acc.entropy += ms.entropy;
    p->acc.vpred += ms.vpred;
    p->acc.vf_clipfrac += ms.vf_clipfrac;
    p->acc.ratio += ms.ratio;
    p->acc.loss_p += ms.loss_p;
    p->acc.loss_v += ms.loss_v;
    p->nmicro++;
    return 0;
}

/* the update's means, 6. the KL coefficient for the next iteration, the timings */
static int end_step(void *self, trainer *t, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    ppo_lm *p = self;
    ppo_lm_stats *st = &p->st;
    const int B = p->o->run.batch;
    const double im = 1.0 / (double)p->nmicro;
    st->approxkl = p->acc.approxkl * im;
    st->clipfrac = p->acc.clipfrac * im;
    st->policy_entropy = p->acc.entropy * im;
    st->vpred = p->acc.vpred * im;
    st->vf_clipfrac = p->acc.vf_clipfrac * im;
    st->ratio = p->acc.ratio * im;
    st->loss_policy = p->acc.loss_p * im;
    st->loss_value = p->acc.loss_v * im;
    st->grad_norm = t->grad_norm;
    st->lr = t->lr;
    if (p->h.target_kl > 0) p->beta = ppo_lm_kl_control(p->beta, st->kl, p->h.target_kl, p->h.kl_horizon, B);
    st->t_update = clk_now() - p->t2;
    st->eps = B / (clk_now() - p->t0);
    for (int b = 0; b < p->ro.B; b++) t->st.num_tokens += (uint64_t)p->ro.len[b];
    p->res->last = *st;
    return 0;
}

static size_t metrics(void *self, trainer *t, trainer_metric *out)
{
    ppo_lm *p = self;
    ppo_lm_metrics(&p->st, (double)t->st.step * p->o->run.batch, out);
    return PPO_LM_NMETRICS;
}

/* ---- files ------------------------------------------------------------------------------------------- */

/* the value head (every checkpoint and the export) and β (checkpoints) */
static int files(void *self, trainer *t, int final, trainer_files *fs, char *err, size_t errlen)
{
    (void)t;
    ppo_lm *p = self;
    uint8_t *bytes;
    size_t n;
    if (head_write_mem(value_head(p), PPO_HEAD_PREFIX, &bytes, &n, err, errlen) ||
        trainer_files_own(fs, PPO_HEAD_FILE, bytes, n, err, errlen))
        return -1;
    if (final) return 0;
    json_t *j = json_pack("{s:f}", "kl_coef", p->beta);
    char *s = j ? json_dumps(j, JSON_REAL_PRECISION(17)) : NULL;
    json_decref(j);
    if (!s) return fio_fail(err, errlen, "out of memory");
    return trainer_files_own(fs, PPO_STATE_FILE, s, strlen(s), err, errlen);
}

/* OUT/model/ (the policy with its value head) and, with a separate value model, OUT/value_model/ */
static int export_model(void *self, trainer *t, char *err, size_t errlen)
{
    ppo_lm *p = self;
    if (trainer_export(t, err, errlen)) return -1;
    if (!p->vm) return 0;
    char dst[4200];
    ckpt_file tokf[2];
    const size_t n = trainer_tokenizer_files(t, tokf);
    return rm_save(p->vm, fio_join(dst, sizeof dst, t->run->out, "value_model"), tokf, n, err, errlen);
}

static void release(void *self)
{
    ppo_lm *p = self;
    gpt2_free(p->pol);
    gpt2_free(p->ref);
    head_free(p->vh);
    rm_free(p->vm);
    rm_free(p->rmm);
    adamw_free(&p->opt);
    adamw_free(&p->hopt);
    adamw_free(&p->vopt);
    ds_prompts_free(&p->prompts);
    ds_free(&p->d);
    rollout_free(&p->ro);
    void *bufs[] = {p->pp, p->pl, p->perm, p->seq, p->mtok, p->mtgt, p->mfmask, p->mold, p->madv, p->mret, p->moldv,
                    p->mv, p->mdlogp, p->mdv, p->dhidden, p->mmask};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

static const char *const loss_names[] = {"policy loss", "value loss", NULL};
static const trainer_recipe recipe = {.name = "ppo",
                                      .loss_names = loss_names,
                                      .prepare = prepare,
                                      .begin_step = begin_step,
                                      .micro = micro,
                                      .end_step = end_step,
                                      .metrics = metrics,
                                      .files = files,
                                      .export_model = export_model,
                                      .free = release,
                                      .own_metrics = 1};

ppo_lm_opts ppo_lm_defaults(void)
{
    ppo_lm_opts o = {.run = trainer_run_defaults(), .optim = trainer_optim_defaults(), .h = ppo_lm_hparams_defaults()};
    o.optim.lr = 3e-6f;
    o.run.steps = 100;
    o.run.ckpt_every = 50;
    o.stop_at_eos = 1;
    o.max_prompt_len = 64;
    return o;
}

int ppo_lm_run(const ppo_lm_opts *o, ppo_lm_result *res, char *err, size_t errlen)
{
    ppo_lm_result dummy;
    ppo_lm p = {.o = o, .res = res ? res : &dummy};
    memset(p.res, 0, sizeof *p.res);
    trainer_result tr;
    const int rc = trainer_fit(&recipe, &p, &o->run, &o->optim, o->tokenizer, &tr, err, errlen);
    p.res->steps = tr.steps;
    return rc;
}
