/* ppo_lm.c — per-token PPO for language models as a method on the RL core: the value function,
 * per-token KL rewards, GAE, the EOS penalty, the value loss, the adaptive KL controller. See
 * ppo_lm.h. */
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
    h.eos_mode = PPO_LM_EOS_OFF;
    h.eos_penalty = 1.0f;
    h.kl_coef = 0.05;
    h.target_kl = 0;
    h.kl_horizon = 10000;
    h.gamma = 1.0f;
    h.lambda = 0.95f;
    h.cliprange_value = 0.2f;
    h.vf_coef = 0.1f;
    return h;
}

int ppo_lm_hparams_check(const ppo_lm_hparams *h, char *err, size_t errlen)
{
    if (!(h->kl_coef >= 0) || !isfinite(h->kl_coef)) return fio_fail(err, errlen, "KL coefficient %g must not be negative", h->kl_coef);
    if (h->target_kl < 0 || (h->target_kl > 0 && !(h->kl_horizon > 0)))
        return fio_fail(err, errlen, "the adaptive KL controller needs target > 0 and horizon > 0");
    if (!(h->gamma >= 0 && h->gamma <= 1) || !(h->lambda >= 0 && h->lambda <= 1))
        return fio_fail(err, errlen, "gamma and lambda must lie in [0, 1]");
    if (!(h->cliprange_value >= 0) || !(h->vf_coef >= 0))
        return fio_fail(err, errlen, "cliprange-value and vf-coef must not be negative");
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


/* ---- the method's state ---------------------------------------------------------------------------- */

#define PPO_HEAD_FILE "value_head.safetensors"
#define PPO_HEAD_OPT_FILE "value_head_optimizer.safetensors"
#define PPO_VALUE_FILE "value_model.safetensors"
#define PPO_STATE_FILE "ppo_state.json"
#define PPO_HEAD_PREFIX "v_head.summary." /* TRL's AutoModelForCausalLMWithValueHead names */

typedef struct {
    const ppo_lm_opts *o;
    ppo_lm_result *res;
    head *vh;               /* on the policy trunk (owned), or NULL */
    rm_model *vm;           /* separate value model (owned), or NULL */
    adamw hopt, vopt;       /* value head, value trunk */
    double beta;            /* the KL coefficient now */
    double vpred, vf_clip, loss_v; /* this step's sums over micro-batches */
    ppo_lm_stats st;
    /* one micro-batch's value terms (micro rows x T) */
    float *mret, *moldv, *mv, *mdv, *dhidden;
} ppo_lm;

static head *value_head(ppo_lm *p) { return p->vm ? p->vm->h : p->vh; }

/* ---- prepare ----------------------------------------------------------------------------------------- */

static int configure(void *self, rl *c, char *err, size_t errlen)
{
    ppo_lm *p = self;
    if (ppo_lm_hparams_check(&p->o->h, err, errlen)) return -1;
    c->agg = RL_AGG_BNPO; /* token mean over each micro-batch, as TRL's PPO */
    c->kl_beta = 0;       /* the KL is in the rewards */
    c->need_ref = 1;
    p->beta = p->o->h.kl_coef;
    return 0;
}

/* the separate value model, checked against the tokenizer and the rollout's length */
static int load_value_model(ppo_lm *p, rl *c, trainer *t, char *err, size_t errlen)
{
    const char *dir = p->o->value_model;
    if (rm_load(dir, &p->vm, err, errlen) || trainer_check_vocab(t, dir, p->vm->m, err, errlen)) return -1;
    if (gpt2_cfg(p->vm->m)->n_positions < c->maxT)
        return fio_fail(err, errlen, "%s holds %d positions, but the rollout needs %d", dir, gpt2_cfg(p->vm->m)->n_positions,
                        c->maxT);
    gpt2_set_threads(p->vm->m, c->nt);
    return 0;
}

/* the value function as blocks 1 (its head) and 2 (a separate trunk); on resume the head and β */
static int value_blocks(ppo_lm *p, rl *c, trainer *t, char *err, size_t errlen)
{
    if (!p->vm) {
        if (head_create(&p->vh, c->C, err, errlen)) return -1;
        head_init(p->vh, 0.0, 0); /* zero: lm-human-preferences' value head */
    }
    head_set_threads(value_head(p), c->nt);
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

static json_t *settings_json(const ppo_lm_opts *o, const ppo_lm_hparams *h)
{
    return json_pack("{s:s?, s:s?, s:f, s:f, s:f, s:b, s:f, s:f, s:i, s:f, s:f, s:f}", "rm", o->rm, "value_model",
                     o->value_model, "kl_coef", h->kl_coef, "target_kl", h->target_kl, "kl_horizon", h->kl_horizon,
                     "whiten_rewards", h->whiten_rewards, "gamma", (double)h->gamma, "lambda", (double)h->lambda,
                     "eos_mode", (int)h->eos_mode, "eos_penalty", (double)h->eos_penalty, "cliprange_value",
                     (double)h->cliprange_value, "vf_coef", (double)h->vf_coef);
}

static int prepare(void *self, rl *c, trainer *t, char *err, size_t errlen)
{
    ppo_lm *p = self;
    if (p->o->value_model && load_value_model(p, c, t, err, errlen)) return -1;
    json_object_update_new(t->settings, settings_json(p->o, &p->o->h));
    if (value_blocks(p, c, t, err, errlen)) return -1;
    const size_t n = (size_t)c->micro * (size_t)c->maxT;
    p->mret = calloc(n, sizeof(float));
    p->moldv = calloc(n, sizeof(float));
    p->mv = calloc(n, sizeof(float));
    p->mdv = calloc(n, sizeof(float));
    p->dhidden = calloc(n * (size_t)c->C, sizeof(float));
    if (!p->mret || !p->moldv || !p->mv || !p->mdv || !p->dhidden) return fio_fail(err, errlen, "PPO: out of memory");
    /* the value model's activations sized once for the largest rollout */
    return p->vm ? gpt2_forward_hidden(p->vm->m, c->ro.tokens, c->rows, c->maxT, err, errlen) : 0;
}

/* ---- one iteration --------------------------------------------------------------------------------- */

/* Values of n rows of tokens (B,T) into v: the head on the hidden states of the policy forward just
 * made, or a forward of the separate value model. */
static int values_of(ppo_lm *p, rl *c, const int32_t *tok, int n, int T, float *v, char *err, size_t errlen)
{
    if (p->vm) {
        if (gpt2_forward_hidden(p->vm->m, tok, n, T, err, errlen)) return -1;
        head_forward(p->vm->h, gpt2_hidden(p->vm->m), n * T, v);
    } else {
        head_forward(p->vh, gpt2_hidden(c->pol), n * T, v);
    }
    return 0;
}

/* 1. the rollout's values, on the policy forward that recomputed its log-probs */
static int rollout_forward(void *self, rl *c, char *err, size_t errlen)
{
    ppo_lm *p = self;
    rollout *r = &c->ro;
    if (values_of(p, c, r->tokens, r->B, r->T, r->values, err, errlen)) return -1;
    for (long i = 0; i < (long)r->B * r->T; i++)
        if (!r->mask[i]) r->values[i] = 0;
    return 0;
}

/* 2-4. the EOS rule, per-token rewards, GAE, whitened advantages, and the rollout's statistics */
static int advantages(void *self, rl *c, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    ppo_lm *p = self;
    rollout *r = &c->ro;
    ppo_lm_stats *st = &p->st;
    const int B = r->B;
    const double beta = p->beta;
    memset(st, 0, sizeof *st);
    p->vpred = p->vf_clip = p->loss_v = 0;
    ppo_lm_eos_penalty(r, p->o->h.eos_mode, p->o->h.eos_penalty);
    ppo_lm_rewards(r, beta, p->o->h.whiten_rewards);
    ppo_lm_advantages(r, p->o->h.gamma, p->o->h.lambda);
    st->explained_variance = ppo_explained_variance(r->values, r->ret, r->mask, (long)B * r->T);
    rollout_seq_sum(r, r->logp, r->ref_logp, c->seq);
    st->kl = stats_mean(c->seq, B);
    rollout_seq_sum(r, r->logp, NULL, c->seq);
    st->entropy = -stats_mean(c->seq, B);
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
    return 0;
}

/* 5. a micro-batch's value loss: values on its forward, 0.5 (clipped) squared error against the
 * returns, its gradient through the head into the policy's hidden states (or the value model) */
static int micro(void *self, rl *c, const rl_batch *mb, float scale, double *loss, const float **dhidden, char *err,
                 size_t errlen)
{
    ppo_lm *p = self;
    const rollout *r = &c->ro;
    const int T = mb->T;
    const long N = (long)mb->n * T;
    for (int q = 0; q < mb->n; q++) {
        memcpy(p->mret + (size_t)q * T, r->ret + (size_t)mb->rows[q] * T, (size_t)T * sizeof *p->mret);
        memcpy(p->moldv + (size_t)q * T, r->values + (size_t)mb->rows[q] * T, (size_t)T * sizeof *p->moldv);
    }
    if (values_of(p, c, mb->tok, mb->n, T, p->mv, err, errlen)) return -1;
    double vp = 0, cnt = 0;
#pragma omp parallel for reduction(+ : vp, cnt) num_threads(c->nt)
    for (long i = 0; i < N; i++) {
        if (!mb->mask[i]) continue;
        vp += p->mv[i];
        cnt += 1;
    }
    double vclip;
    loss[1] = ppo_value_loss(p->mv, p->moldv, p->mret, mb->mask, N, p->o->h.cliprange_value, scale * p->o->h.vf_coef,
                             p->mdv, &vclip);
    if (cnt != mb->tokens) { /* a data-parallel share of the micro-batch: means over all of its tokens */
        const double f = mb->tokens > 0 ? cnt / mb->tokens : 0.0;
        for (long i = 0; i < N; i++) p->mdv[i] = (float)(p->mdv[i] * f);
        loss[1] *= f, vclip *= f;
    }
    p->vpred += vp * (mb->tokens > 0 ? 1.0 / mb->tokens : 0.0);
    p->vf_clip += vclip;
    p->loss_v += loss[1];
    /* backward: the value loss through its head into dhidden, then the value trunk when separate */
    const float *hid = gpt2_hidden(p->vm ? p->vm->m : c->pol);
    memset(p->dhidden, 0, (size_t)N * (size_t)c->C * sizeof *p->dhidden);
    head_backward(value_head(p), hid, p->mdv, (int)N, p->dhidden);
    *dhidden = p->vm ? NULL : p->dhidden;
    return p->vm ? gpt2_backward(p->vm->m, NULL, p->dhidden, err, errlen) : 0;
}

/* the update's means, 6. the KL coefficient for the next iteration, the timings */
static int end_step(void *self, rl *c, trainer *t, char *err, size_t errlen)
{
    ppo_lm *p = self;
    ppo_lm_stats *st = &p->st;
    const rl_stats *cs = &c->st;
    const int B = c->B;
    double v[3] = {p->vpred, p->vf_clip, p->loss_v}; /* sums over this rank's micro-batch shares */
    if (trainer_sum(t, v, 3, err, errlen)) return -1;
    p->vpred = v[0], p->vf_clip = v[1], p->loss_v = v[2];
    const double im = 1.0 / ((double)t->updates * t->accum);
    st->approxkl = cs->approxkl;
    st->clipfrac = cs->clipfrac;
    st->policy_entropy = cs->entropy_micro;
    st->ratio = cs->ratio;
    st->loss_policy = cs->loss_micro;
    st->vpred = p->vpred * im;
    st->vf_clipfrac = p->vf_clip * im;
    st->loss_value = p->loss_v * im;
    st->grad_norm = t->grad_norm;
    st->lr = t->lr;
    if (p->o->h.target_kl > 0) p->beta = ppo_lm_kl_control(p->beta, st->kl, p->o->h.target_kl, p->o->h.kl_horizon, B);
    st->t_rollout = cs->t_rollout;
    st->t_scoring = cs->t_scoring;
    st->t_update = cs->t_update;
    st->eps = B / (clk_now() - c->t0);
    p->res->last = *st;
    return 0;
}

static size_t metrics(void *self, rl *c, trainer *t, trainer_metric *out)
{
    ppo_lm *p = self;
    ppo_lm_metrics(&p->st, (double)t->st.step * p->o->run.batch, out);
    return PPO_LM_NMETRICS + rl_sampling_metrics(&c->st, out + PPO_LM_NMETRICS);
}

/* ---- files ------------------------------------------------------------------------------------------- */

/* the value head (every checkpoint and the export) and β (checkpoints) */
static int files(void *self, rl *c, trainer *t, int final, trainer_files *fs, char *err, size_t errlen)
{
    (void)c, (void)t;
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
static int export_model(void *self, rl *c, trainer *t, char *err, size_t errlen)
{
    (void)c;
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
    head_free(p->vh);
    rm_free(p->vm);
    adamw_free(&p->hopt);
    adamw_free(&p->vopt);
    free(p->mret);
    free(p->moldv);
    free(p->mv);
    free(p->mdv);
    free(p->dhidden);
}

static const char *const loss_names[] = {"policy loss", "value loss", NULL};
static const rl_method method = {.name = "ppo",
                                 .loss_names = loss_names,
                                 .own_metrics = 1,
                                 .configure = configure,
                                 .prepare = prepare,
                                 .rollout_forward = rollout_forward,
                                 .advantages = advantages,
                                 .micro = micro,
                                 .end_step = end_step,
                                 .metrics = metrics,
                                 .files = files,
                                 .export_model = export_model,
                                 .free = release};

ppo_lm_opts ppo_lm_defaults(void)
{
    ppo_lm_opts o = {.run = trainer_run_defaults(), .optim = trainer_optim_defaults(), .rl = rl_opts_defaults(),
                     .h = ppo_lm_hparams_defaults()};
    o.optim.lr = 3e-6f;
    o.run.steps = 100;
    o.run.ckpt_every = 50;
    o.rl.num_generations = 1;
    o.rl.temperature = 0.7f;
    o.rl.epochs = 4;
    return o;
}

int ppo_lm_run(const ppo_lm_opts *o, ppo_lm_result *res, char *err, size_t errlen)
{
    ppo_lm_result dummy;
    ppo_lm p = {.o = o, .res = res ? res : &dummy};
    memset(p.res, 0, sizeof *p.res);
    /* --rm DIR is the reward when nothing else is given */
    rl_opts r = o->rl;
    char spec[4200];
    const char *specs[1] = {spec};
    if (!r.score.fn && !r.n_reward && o->rm) {
        snprintf(spec, sizeof spec, "rm:%s", o->rm);
        r.reward = specs;
        r.n_reward = 1;
    }
    rl_result rr;
    const int rc = rl_fit(&method, &p, &r, &o->run, &o->optim, &rr, err, errlen);
    p.res->resumed_from = rr.resumed_from;
    p.res->steps = rr.steps;
    p.res->n_prompts = rr.n_prompts;
    return rc;
}
