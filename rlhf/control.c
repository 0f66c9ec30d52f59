/* control.c — PPO on classic control: rollout, GAE, clipped minibatch epochs, evaluation. See
 * control.h. Read control_run top to bottom with CleanRL's ppo.py beside it; every buffer is
 * allocated in ctl_create, so the training loop allocates nothing. */
#include "control.h"

#include "adamw.h"
#include "env.h"
#include "fileio.h"
#include "mlp.h"
#include "ppo.h"
#include "rng.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- per-env hyperparameters -------------------------------------------------------------------- */

typedef struct {
    const char *id;
    control_opts o;
} env_defaults;

/* what every entry below shares */
#define COMMON                                                                                                \
    .seed = 1, .adam_eps = 1e-5f, .norm_adv = 1, .vf_coef = 0.5f, .max_grad_norm = 0.5f, .hidden = 64,        \
    .hidden_layers = 2, .clip_obs = 10, .clip_reward = 10, .eval_episodes = 100, .threads = 1

/* CleanRL's generic defaults (ppo.py), for an env without an entry: 4 envs x 128 steps, 4
 * minibatches, 4 epochs, lr 2.5e-4 annealed, gamma .99, lambda .95, clip .2 (value loss clipped
 * too), ent .01, vf .5, grad-norm .5. */
static const control_opts generic = {COMMON, .total_steps = 500000, .num_envs = 4, .num_steps = 128,
                                     .num_minibatches = 4, .update_epochs = 4, .lr = 2.5e-4f, .anneal_lr = 1,
                                     .gamma = 0.99f, .gae_lambda = 0.95f, .clip_coef = 0.2f, .clip_vloss = 1,
                                     .ent_coef = 0.01f, .success_threshold = NAN};

/* Each entry starts from rl-baselines3-zoo's tuned PPO (hyperparams/ppo.yml; SB3's batch_size
 * becomes num_minibatches = num_envs * num_steps / batch_size), then adjusted here where noted. */
static const env_defaults table[] = {
    /* zoo: 8 envs x 32 steps, batch 256, 20 epochs, gae .8, gamma .98, lr lin_1e-3, clip lin_0.2,
     * ent 0; 1e5 steps. Value loss unclipped (SB3's clip_range_vf None). */
    {"CartPole-v1",
     {COMMON, .total_steps = 100000, .num_envs = 8, .num_steps = 32, .num_minibatches = 1, .update_epochs = 20, .lr = 1e-3f,
      .anneal_lr = 1, .gamma = 0.98f, .gae_lambda = 0.8f, .clip_coef = 0.2f, .anneal_clip = 1, .clip_vloss = 0,
      .ent_coef = 0, .success_threshold = 475}},
    /* zoo: 16 envs x 256 steps, batch 64, 4 epochs, gae .94, gamma .99, ent 0, normalize (obs and
     * reward); 1e6 steps there, 3e5 here. */
    {"Acrobot-v1",
     {COMMON, .total_steps = 300000, .num_envs = 16, .num_steps = 256, .num_minibatches = 64, .update_epochs = 4,
      .lr = 3e-4f, .anneal_lr = 1, .gamma = 0.99f, .gae_lambda = 0.94f, .clip_coef = 0.2f, .clip_vloss = 0,
      .ent_coef = 0, .norm_obs = 1, .norm_reward = 1, .success_threshold = -100}},
    /* zoo: 16 envs x 16 steps, batch 64, 4 epochs, gae .98, gamma .99, ent 0, normalize; 1e6 steps */
    {"MountainCar-v0",
     {COMMON, .total_steps = 1000000, .num_envs = 16, .num_steps = 16, .num_minibatches = 4, .update_epochs = 4, .lr = 3e-4f,
      .anneal_lr = 1, .gamma = 0.99f, .gae_lambda = 0.98f, .clip_coef = 0.2f, .clip_vloss = 0, .ent_coef = 0,
      .norm_obs = 1, .norm_reward = 1, .success_threshold = -110}},
    /* zoo (which relies on gSDE, not implemented here): 1 env x 8 steps, batch 256, 10 epochs, gamma
     * .9999, gae .9, lr 7.77e-5, ent .00429, clip .1, grad 5, vf .19, normalize */
    {"MountainCarContinuous-v0",
     {COMMON, .total_steps = 300000, .num_envs = 1, .num_steps = 2048, .num_minibatches = 32, .update_epochs = 10,
      .lr = 3e-4f, .anneal_lr = 1, .gamma = 0.9999f, .gae_lambda = 0.9f, .clip_coef = 0.2f, .clip_vloss = 0,
      .ent_coef = 0.00429f, .norm_obs = 1, .norm_reward = 1, .log_std_init = 0,
      .success_threshold = 90}},
    /* zoo: 4 envs x 1024 steps, batch 64, 10 epochs, gae .95, gamma .9, lr 1e-3, clip .2, ent 0,
     * normalize, and gSDE exploration. With the plain Gaussian here, lr 1e-3 lost its swing-up after
     * 100k steps, and at 3e-4 with batch 64 one seed in six collapsed its std at a -600 policy;
     * lr 3e-4 with batch 256 reached -150..-215 on seeds 1-7 within 500k. */
    {"Pendulum-v1",
     {COMMON, .total_steps = 500000, .num_envs = 4, .num_steps = 1024, .num_minibatches = 16, .update_epochs = 10,
      .lr = 3e-4f, .anneal_lr = 1, .gamma = 0.9f, .gae_lambda = 0.95f, .clip_coef = 0.2f, .clip_vloss = 0,
      .ent_coef = 0, .norm_obs = 1, .norm_reward = 1, .log_std_init = -0.5f,
      .success_threshold = NAN}},
};

control_opts control_defaults(const char *env_id)
{
    control_opts o = generic;
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (env_id && strcmp(table[i].id, env_id) == 0) o = table[i].o;
    o.env_id = env_id;
    return o;
}

/* ---- running mean and variance (Gymnasium's RunningMeanStd) ------------------------------------- */

typedef struct {
    double mean[ENV_MAX_OBS], var[ENV_MAX_OBS], count;
    int dim;
} rms;

static void rms_init(rms *r, int dim)
{
    memset(r, 0, sizeof *r);
    r->dim = dim;
    r->count = 1e-4;
    for (int j = 0; j < dim; j++) r->var[j] = 1;
}

/* merge the moments of n rows of x (row stride dim) */
static void rms_update_f(rms *r, const float *x, int n)
{
    for (int j = 0; j < r->dim; j++) {
        double m = 0, v = 0;
        for (int i = 0; i < n; i++) m += x[(long)i * r->dim + j];
        m /= n;
        for (int i = 0; i < n; i++) v += (x[(long)i * r->dim + j] - m) * (x[(long)i * r->dim + j] - m);
        v /= n;
        const double tot = r->count + n, d = m - r->mean[j];
        r->mean[j] += d * n / tot;
        r->var[j] = (r->var[j] * r->count + v * n + d * d * r->count * n / tot) / tot;
    }
    r->count += n;
}

/* the same for one dimension of doubles */
static void rms_update_d(rms *r, const double *x, int n)
{
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    v /= n;
    const double tot = r->count + n, d = m - r->mean[0];
    r->mean[0] += d * n / tot;
    r->var[0] = (r->var[0] * r->count + v * n + d * d * r->count * n / tot) / tot;
    r->count += n;
}

static float clampf(double x, double c) { return (float)(x < -c ? -c : x > c ? c : x); }

/* ---- the trainer's state ------------------------------------------------------------------------ */

typedef struct {
    control_opts o;
    const env_spec *spec;
    env_vec *env;
    int N, T, S, O, A, AD, M; /* envs, steps, samples, obs dim, actor outputs, action width, minibatch */
    int discrete;
    mlp_shape actor, critic;
    size_t logstd_off, n_params;
    float *params, *grads;
    adamw opt;
    mlp_ws aws, cws;
    rms obs_rms, ret_rms;
    double last_ret[100];     /* the returns of the last finished training episodes, a ring */
    int n_last;               /* episodes finished so far */
    uint64_t rng_act, rng_mb;
    /* rollout, time-major [T][N] */
    float *obs, *act, *logp, *val, *rew, *tval, *adv, *ret;
    uint8_t *term, *trunc;
    /* one vectorized step */
    float *raw_obs, *cur_obs, *fin_raw, *fin_obs, *last_val;
    double *actions, *reward, *ep_ret, *disc;
    uint8_t *st_term, *st_trunc;
    int *ep_len;
    /* one minibatch */
    int *perm;
    int32_t *mb_acti;
    float *mb_obs, *mb_act, *mb_logp, *mb_adv, *mb_ret, *mb_val, *new_logp, *dlogp, *ent, *dent, *dv, *dhead;
} ctl_state;

static void ctl_free(ctl_state *t)
{
    env_vec_free(t->env);
    mlp_ws_free(&t->aws);
    mlp_ws_free(&t->cws);
    adamw_free(&t->opt);
    void *bufs[] = {t->params, t->grads, t->obs, t->act, t->logp, t->val, t->rew, t->tval, t->adv, t->ret,
                    t->term, t->trunc, t->raw_obs, t->cur_obs, t->fin_raw, t->fin_obs, t->last_val, t->actions,
                    t->reward, t->ep_ret, t->disc, t->st_term, t->st_trunc, t->ep_len, t->perm, t->mb_acti,
                    t->mb_obs, t->mb_act, t->mb_logp, t->mb_adv, t->mb_ret, t->mb_val, t->new_logp, t->dlogp,
                    t->ent, t->dent, t->dv, t->dhead};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    memset(t, 0, sizeof *t);
}

/* zeroed array of n elements of size sz; counts failures in *bad */
static void *zalloc(size_t n, size_t sz, int *bad)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) (*bad)++;
    return p;
}

static int check_opts(const control_opts *o, char *err, size_t errlen)
{
    if (o->num_envs < 1 || o->num_steps < 1 || o->num_envs > 4096 || o->num_steps > (1 << 20))
        return fio_fail(err, errlen, "num_envs (%d) and num_steps (%d) must be positive", o->num_envs, o->num_steps);
    const long S = (long)o->num_envs * o->num_steps;
    if (S > (1L << 24)) return fio_fail(err, errlen, "a rollout of %ld samples is too large", S);
    if (o->num_minibatches < 1 || o->num_minibatches > S)
        return fio_fail(err, errlen, "num_minibatches must be in 1..%ld (got %d)", S, o->num_minibatches);
    if (o->update_epochs < 1) return fio_fail(err, errlen, "update_epochs must be >= 1");
    if (o->total_steps < S)
        return fio_fail(err, errlen, "total_steps %ld is less than one rollout (%d envs x %d steps)", o->total_steps,
                        o->num_envs, o->num_steps);
    if (o->hidden < 1 || o->hidden > 4096 || o->hidden_layers < 0 || o->hidden_layers > MLP_MAX_LAYERS - 1)
        return fio_fail(err, errlen, "hidden width %d x %d layers is out of range", o->hidden, o->hidden_layers);
    if (!(o->lr > 0) || !(o->gamma >= 0 && o->gamma <= 1) || !(o->gae_lambda >= 0 && o->gae_lambda <= 1))
        return fio_fail(err, errlen, "lr must be > 0, gamma and gae_lambda in [0, 1]");
    if (o->eval_episodes < 0 || o->eval_episodes > 100000)
        return fio_fail(err, errlen, "eval_episodes must be in 0..100000");
    if (o->threads < 1 || o->threads > 1024) return fio_fail(err, errlen, "threads must be in 1..1024");
    return 0;
}

static int ctl_create(ctl_state *t, const control_opts *o, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->o = *o;
    if (check_opts(o, err, errlen)) return -1;
    if (env_vec_create(&t->env, o->env_id, o->num_envs, o->seed, err, errlen)) return -1;
    const env_spec *e = t->spec = env_vec_spec(t->env);
    t->discrete = e->discrete;
    t->N = o->num_envs, t->T = o->num_steps, t->S = t->N * t->T, t->O = e->obs_dim;
    t->A = e->discrete ? e->n_actions : e->act_dim;
    t->AD = e->discrete ? 1 : e->act_dim;
    t->M = (t->S + o->num_minibatches - 1) / o->num_minibatches;

    /* one block: actor | critic | log_std */
    int dims[MLP_MAX_LAYERS + 1], nl = o->hidden_layers + 1;
    dims[0] = t->O;
    for (int l = 1; l < nl; l++) dims[l] = o->hidden;
    dims[nl] = t->A;
    if (mlp_shape_init(&t->actor, dims, nl, 0, err, errlen)) goto fail;
    dims[nl] = 1;
    if (mlp_shape_init(&t->critic, dims, nl, t->actor.n_params, err, errlen)) goto fail;
    t->logstd_off = t->actor.n_params + t->critic.n_params;
    t->n_params = t->logstd_off + (t->discrete ? 0 : (size_t)t->A);

    const int maxb = t->M > t->N ? t->M : t->N;
    if (mlp_ws_create(&t->aws, &t->actor, maxb, err, errlen) || mlp_ws_create(&t->cws, &t->critic, maxb, err, errlen))
        goto fail;
    if (adamw_create(&t->opt, t->n_params)) {
        fio_fail(err, errlen, "out of memory for the optimizer");
        goto fail;
    }
    const size_t S = (size_t)t->S, N = (size_t)t->N, O = (size_t)t->O, M = (size_t)t->M;
    const size_t A = (size_t)t->A, AD = (size_t)t->AD;
    int bad = 0;
    t->params = zalloc(t->n_params, sizeof(float), &bad);
    t->grads = zalloc(t->n_params, sizeof(float), &bad);
    t->obs = zalloc(S * O, sizeof(float), &bad);
    t->act = zalloc(S * AD, sizeof(float), &bad);
    t->logp = zalloc(S, sizeof(float), &bad);
    t->val = zalloc(S, sizeof(float), &bad);
    t->rew = zalloc(S, sizeof(float), &bad);
    t->tval = zalloc(S, sizeof(float), &bad);
    t->adv = zalloc(S, sizeof(float), &bad);
    t->ret = zalloc(S, sizeof(float), &bad);
    t->term = zalloc(S, 1, &bad);
    t->trunc = zalloc(S, 1, &bad);
    t->raw_obs = zalloc(N * O, sizeof(float), &bad);
    t->cur_obs = zalloc(N * O, sizeof(float), &bad);
    t->fin_raw = zalloc(N * O, sizeof(float), &bad);
    t->fin_obs = zalloc(N * O, sizeof(float), &bad);
    t->last_val = zalloc(N, sizeof(float), &bad);
    t->actions = zalloc(N * AD, sizeof(double), &bad);
    t->reward = zalloc(N, sizeof(double), &bad);
    t->ep_ret = zalloc(N, sizeof(double), &bad);
    t->disc = zalloc(N, sizeof(double), &bad);
    t->st_term = zalloc(N, 1, &bad);
    t->st_trunc = zalloc(N, 1, &bad);
    t->ep_len = zalloc(N, sizeof(int), &bad);
    t->perm = zalloc(S, sizeof(int), &bad);
    t->mb_acti = zalloc(M, sizeof(int32_t), &bad);
    t->mb_obs = zalloc(M * O, sizeof(float), &bad);
    t->mb_act = zalloc(M * AD, sizeof(float), &bad);
    t->mb_logp = zalloc(M, sizeof(float), &bad);
    t->mb_adv = zalloc(M, sizeof(float), &bad);
    t->mb_ret = zalloc(M, sizeof(float), &bad);
    t->mb_val = zalloc(M, sizeof(float), &bad);
    t->new_logp = zalloc(M, sizeof(float), &bad);
    t->dlogp = zalloc(M, sizeof(float), &bad);
    t->ent = zalloc(M, sizeof(float), &bad);
    t->dent = zalloc(M, sizeof(float), &bad);
    t->dv = zalloc(M, sizeof(float), &bad);
    t->dhead = zalloc(M * A, sizeof(float), &bad);
    if (bad) {
        fio_fail(err, errlen, "out of memory for a rollout of %zu samples", S);
        goto fail;
    }

    /* CleanRL's init: hidden layers orthogonal with gain sqrt 2, actor output .01, critic output 1 */
    uint64_t rng_init = rng_stream(o->seed, 1);
    mlp_init(&t->actor, t->params, 0.01f, &rng_init);
    mlp_init(&t->critic, t->params, 1.0f, &rng_init);
    for (int j = 0; j < t->A && !t->discrete; j++) t->params[t->logstd_off + (size_t)j] = o->log_std_init;
    t->rng_act = rng_stream(o->seed, 2);
    t->rng_mb = rng_stream(o->seed, 3);
    rms_init(&t->obs_rms, t->O);
    rms_init(&t->ret_rms, 1);
    return 0;
fail:
    ctl_free(t);
    return -1;
}

/* out = clip((raw - mean) / sqrt(var + 1e-8)) with the current statistics (a copy when off) */
static void normalize_obs(const ctl_state *t, const float *raw, float *out, int n)
{
    if (!t->o.norm_obs) {
        memcpy(out, raw, (size_t)n * (size_t)t->O * sizeof *out);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < t->O; j++) {
            const long k = (long)i * t->O + j;
            out[k] = clampf((raw[k] - t->obs_rms.mean[j]) / sqrt(t->obs_rms.var[j] + 1e-8), t->o.clip_obs);
        }
}

/* new raw observations arrive: update the statistics (when normalising), then normalise */
static void observe(ctl_state *t, const float *raw, float *out, int n)
{
    if (t->o.norm_obs) rms_update_f(&t->obs_rms, raw, n);
    normalize_obs(t, raw, out, n);
}

/* the actions of the policy head for n rows: sampled (logp filled) or deterministic */
static void act_from_head(ctl_state *t, const float *head, int n, int sample, float *act, float *logp, double *env_act)
{
    const float *log_std = t->params + t->logstd_off;
    for (int i = 0; i < n; i++) {
        const float *h = head + (long)i * t->A;
        if (t->discrete) {
            const int32_t a = sample ? ppo_categorical_sample(h, t->A, &t->rng_act) : ppo_argmax(h, t->A);
            if (logp) ppo_categorical_fwd(h, t->A, 1, t->A, &a, logp + i, NULL);
            if (act) act[i] = (float)a;
            env_act[i] = a;
        } else {
            float a[ENV_MAX_ACT];
            for (int j = 0; j < t->A; j++)
                a[j] = sample ? (float)(h[j] + exp((double)log_std[j]) * rng_normal(&t->rng_act)) : h[j];
            if (logp) ppo_gaussian_fwd(h, log_std, 1, t->A, a, logp + i);
            for (int j = 0; j < t->A; j++) {
                if (act) act[(long)i * t->A + j] = a[j];
                env_act[(long)i * t->A + j] = a[j];
            }
        }
    }
}

/* ---- rollout ------------------------------------------------------------------------------------ */

typedef struct {
    double ret_sum, len_sum;
    int episodes;
} episode_stats;

static void ctl_rollout(ctl_state *t, episode_stats *es)
{
    const int N = t->N, O = t->O, th = t->o.threads;
    for (int s = 0; s < t->T; s++) {
        const long base = (long)s * N;
        memcpy(t->obs + base * O, t->cur_obs, (size_t)N * O * sizeof(float));
        const float *head = mlp_forward(&t->actor, t->params, &t->aws, t->cur_obs, N, th);
        act_from_head(t, head, N, 1, t->act + base * t->AD, t->logp + base, t->actions);
        const float *v = mlp_forward(&t->critic, t->params, &t->cws, t->cur_obs, N, th);
        memcpy(t->val + base, v, (size_t)N * sizeof(float));

        env_vec_step(t->env, t->actions, t->raw_obs, t->reward, t->st_term, t->st_trunc, t->fin_raw, t->ep_ret,
                     t->ep_len);
        int any_trunc = 0;
        for (int i = 0; i < N; i++) {
            t->term[base + i] = t->st_term[i];
            t->trunc[base + i] = t->st_trunc[i] && !t->st_term[i];
            any_trunc |= t->trunc[base + i];
            if (t->st_term[i] || t->st_trunc[i]) {
                es->ret_sum += t->ep_ret[i];
                es->len_sum += t->ep_len[i];
                es->episodes++;
                t->last_ret[t->n_last++ % 100] = t->ep_ret[i];
            }
        }
        /* rewards, scaled by the running std of the discounted return (Gymnasium's NormalizeReward) */
        if (t->o.norm_reward) {
            for (int i = 0; i < N; i++) t->disc[i] = t->disc[i] * t->o.gamma * (1 - t->st_term[i]) + t->reward[i];
            rms_update_d(&t->ret_rms, t->disc, N);
            const double sd = sqrt(t->ret_rms.var[0] + 1e-8);
            for (int i = 0; i < N; i++) t->rew[base + i] = clampf(t->reward[i] / sd, t->o.clip_reward);
        } else
            for (int i = 0; i < N; i++) t->rew[base + i] = (float)t->reward[i];
        /* a time limit cut the episode: its future is worth V(final observation), not 0 */
        if (any_trunc) {
            normalize_obs(t, t->fin_raw, t->fin_obs, N);
            const float *fv = mlp_forward(&t->critic, t->params, &t->cws, t->fin_obs, N, th);
            for (int i = 0; i < N; i++) t->tval[base + i] = t->trunc[base + i] ? fv[i] : 0.0f;
        }
        observe(t, t->raw_obs, t->cur_obs, N);
    }
    const float *lv = mlp_forward(&t->critic, t->params, &t->cws, t->cur_obs, N, th);
    memcpy(t->last_val, lv, (size_t)N * sizeof(float));
}

/* ---- the PPO update ----------------------------------------------------------------------------- */

typedef struct {
    double pg, v, ent, kl1, kl3, clipfrac;
    int n;
} update_stats;

/* one gradient step on the B samples idx[0..B) of the rollout */
static void minibatch_step(ctl_state *t, const int *idx, int B, float lr, float clip, update_stats *us)
{
    const control_opts *o = &t->o;
    const int O = t->O, AD = t->AD, th = o->threads;
    for (int j = 0; j < B; j++) {
        const int k = idx[j];
        memcpy(t->mb_obs + (long)j * O, t->obs + (long)k * O, (size_t)O * sizeof(float));
        memcpy(t->mb_act + (long)j * AD, t->act + (long)k * AD, (size_t)AD * sizeof(float));
        if (t->discrete) t->mb_acti[j] = (int32_t)t->act[k];
        t->mb_logp[j] = t->logp[k];
        t->mb_adv[j] = t->adv[k];
        t->mb_ret[j] = t->ret[k];
        t->mb_val[j] = t->val[k];
    }
    if (o->norm_adv) ppo_whiten(t->mb_adv, NULL, B, 1e-8f, 1);

    const float *head = mlp_forward(&t->actor, t->params, &t->aws, t->mb_obs, B, th);
    const float *v = mlp_forward(&t->critic, t->params, &t->cws, t->mb_obs, B, th);
    const float *log_std = t->params + t->logstd_off;
    double entropy;
    if (t->discrete) {
        ppo_categorical_fwd(head, t->A, B, t->A, t->mb_acti, t->new_logp, t->ent);
        double s = 0;
        for (int j = 0; j < B; j++) s += t->ent[j];
        entropy = s / B;
    } else {
        ppo_gaussian_fwd(head, log_std, B, t->A, t->mb_act, t->new_logp);
        entropy = ppo_gaussian_entropy(log_std, t->A);
    }
    /* loss = policy loss - ent_coef * entropy + vf_coef * value loss */
    ppo_pg_stats ps;
    ppo_policy_loss(t->new_logp, t->mb_logp, t->mb_adv, NULL, B, clip, 1.0f, t->dlogp, &ps);
    const double vloss = ppo_value_loss(v, t->mb_val, t->mb_ret, NULL, B, o->clip_vloss ? clip : 0.0f, o->vf_coef,
                                        t->dv, NULL);

    memset(t->grads, 0, t->n_params * sizeof *t->grads);
    if (t->discrete) {
        for (int j = 0; j < B; j++) t->dent[j] = -o->ent_coef / (float)B;
        ppo_categorical_bwd(t->dhead, head, t->A, B, t->A, t->mb_acti, t->dlogp, t->dent);
    } else
        ppo_gaussian_bwd(t->dhead, t->grads + t->logstd_off, head, log_std, B, t->A, t->mb_act, t->dlogp,
                         -o->ent_coef);
    mlp_backward(&t->actor, t->params, t->grads, &t->aws, t->mb_obs, t->dhead, B, NULL, th);
    mlp_backward(&t->critic, t->params, t->grads, &t->cws, t->mb_obs, t->dv, B, NULL, th);

    const double norm = grad_norm(t->grads, t->n_params, t->opt.partial);
    const adamw_range all = {0, t->n_params, 0};
    const adamw_hparams h = {lr, 0.9f, 0.999f, o->adam_eps, 0.0f};
    adamw_step_scaled(&t->opt, t->params, t->grads, clip_scale(norm, o->max_grad_norm), &all, 1, &h, lr);

    us->pg += ps.loss;
    us->v += vloss;
    us->ent += entropy;
    us->kl1 += ps.approx_kl;
    us->kl3 += ps.approx_kl_k3;
    us->clipfrac += ps.clipfrac;
    us->n++;
}

static void update(ctl_state *t, float lr, float clip, update_stats *us)
{
    memset(us, 0, sizeof *us);
    for (int epoch = 0; epoch < t->o.update_epochs; epoch++) {
        ppo_permutation(t->perm, t->S, &t->rng_mb);
        double kl3 = 0;
        for (int from = 0; from < t->S; from += t->M) {
            const int B = t->S - from < t->M ? t->S - from : t->M;
            const double before = us->kl3;
            minibatch_step(t, t->perm + from, B, lr, clip, us);
            kl3 = us->kl3 - before;
        }
        /* CleanRL's early stop: the last minibatch's k3 against the target */
        if (t->o.target_kl > 0 && kl3 > t->o.target_kl) break;
    }
}

/* ---- evaluation --------------------------------------------------------------------------------- */

/* K episodes, one per env copy, deterministic actions, observation statistics frozen */
static int evaluate(ctl_state *t, int K, double *mean, double *sd, char *err, size_t errlen)
{
    *mean = *sd = NAN;
    if (K == 0) return 0;
    env_vec *ev = NULL;
    if (env_vec_create(&ev, t->o.env_id, K, rng_stream(t->o.seed, 4), err, errlen)) return -1;
    const size_t KO = (size_t)K * t->O;
    float *raw = malloc(KO * sizeof *raw), *obs = malloc(KO * sizeof *obs);
    double *acts = malloc((size_t)K * t->AD * sizeof *acts), *rew = malloc((size_t)K * sizeof *rew);
    double *epr = malloc((size_t)K * sizeof *epr), *res = malloc((size_t)K * sizeof *res);
    uint8_t *te = malloc((size_t)K), *tr = malloc((size_t)K), *done = calloc((size_t)K, 1);
    int *epl = malloc((size_t)K * sizeof *epl);
    mlp_ws ws = {0};
    int rc = -1;
    if (!raw || !obs || !acts || !rew || !epr || !res || !te || !tr || !done || !epl) {
        fio_fail(err, errlen, "out of memory for %d evaluation episodes", K);
        goto out;
    }
    if (mlp_ws_create(&ws, &t->actor, K, err, errlen)) goto out;
    env_vec_reset(ev, raw);
    int left = K;
    while (left) {
        normalize_obs(t, raw, obs, K);
        const float *head = mlp_forward(&t->actor, t->params, &ws, obs, K, t->o.threads);
        act_from_head(t, head, K, 0, NULL, NULL, acts);
        env_vec_step(ev, acts, raw, rew, te, tr, NULL, epr, epl);
        for (int i = 0; i < K; i++)
            if (!done[i] && (te[i] || tr[i])) {
                done[i] = 1;
                res[i] = epr[i];
                left--;
            }
    }
    double s = 0, ss = 0;
    for (int i = 0; i < K; i++) s += res[i];
    *mean = s / K;
    for (int i = 0; i < K; i++) ss += (res[i] - *mean) * (res[i] - *mean);
    *sd = sqrt(ss / K);
    rc = 0;
out:
    mlp_ws_free(&ws);
    env_vec_free(ev);
    free(raw), free(obs), free(acts), free(rew), free(epr), free(res), free(te), free(tr), free(done), free(epl);
    return rc;
}

/* the last-100 mean and the verdict, once the evaluation is in */
static void finish_result(const ctl_state *t, control_result *res)
{
    const int k = t->n_last < 100 ? t->n_last : 100;
    double s = 0;
    for (int i = 0; i < k; i++) s += t->last_ret[i];
    res->train_last100_return = k ? s / k : NAN;
    if (isnan(t->o.success_threshold) || res->eval_episodes == 0)
        res->success = -1;
    else
        res->success = res->eval_mean_return >= t->o.success_threshold;
}

/* ---- the run ------------------------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "key": number, or null when not finite */
static void put_num(FILE *f, const char *key, double v, int last)
{
    if (isfinite(v))
        fprintf(f, "\"%s\": %.9g%s", key, v, last ? "}\n" : ", ");
    else
        fprintf(f, "\"%s\": null%s", key, last ? "}\n" : ", ");
}

static void write_metrics(FILE *f, const control_metrics *m)
{
    fprintf(f, "{\"update\": %ld, \"global_step\": %ld, ", m->update, m->global_step);
    put_num(f, "episodic_return", m->episodic_return, 0);
    put_num(f, "episodic_length", m->episodic_length, 0);
    fprintf(f, "\"episodes\": %d, ", m->episodes);
    put_num(f, "policy_loss", m->policy_loss, 0);
    put_num(f, "value_loss", m->value_loss, 0);
    put_num(f, "entropy", m->entropy, 0);
    put_num(f, "approx_kl", m->approx_kl, 0);
    put_num(f, "approx_kl_k3", m->approx_kl_k3, 0);
    put_num(f, "clipfrac", m->clipfrac, 0);
    put_num(f, "explained_variance", m->explained_variance, 0);
    put_num(f, "learning_rate", m->learning_rate, 0);
    put_num(f, "sps", m->sps, 1);
}

/* a JSON number, or null when not finite (JSON has no NaN) */
static json_t *json_num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static int write_summary(const control_opts *o, const control_result *r, char *err, size_t errlen)
{
    char path[4096];
    json_t *j = json_pack("{s:s, s:I, s:I, s:o, s:o, s:i, s:o, s:o, s:o, s:f}", "env", o->env_id, "seed",
                          (json_int_t)o->seed, "total_steps", (json_int_t)r->total_steps, "eval_mean_return",
                          json_num(r->eval_mean_return), "eval_std_return", json_num(r->eval_std_return),
                          "eval_episodes", r->eval_episodes, "train_last100_return",
                          json_num(r->train_last100_return), "success_threshold", json_num(o->success_threshold),
                          "success", r->success < 0 ? json_null() : json_boolean(r->success), "wall_seconds",
                          r->wall_seconds);
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(j);
    if (!s) return fio_fail(err, errlen, "out of memory for the summary");
    /* a newline at the end, as every other file the project writes */
    const fio_chunk parts[2] = {{s, strlen(s)}, {"\n", 1}};
    int rc = fio_write_atomic_v(fio_join(path, sizeof path, o->out, "summary.json"), parts, 2, err, errlen);
    free(s);
    return rc;
}

int control_run(const control_opts *o, control_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    const double t0 = now_s();
    ctl_state t;
    if (ctl_create(&t, o, err, errlen)) return -1;
    FILE *mf = NULL;
    int rc = -1;
    if (o->out) {
        char path[4096];
        if (fio_mkdirs(o->out, err, errlen)) goto done;
        mf = fopen(fio_join(path, sizeof path, o->out, "metrics.jsonl"), "w");
        if (!mf) {
            fio_fail(err, errlen, "%s: cannot write", path);
            goto done;
        }
    }
    env_vec_reset(t.env, t.raw_obs);
    observe(&t, t.raw_obs, t.cur_obs, t.N);
    const long n_updates = o->total_steps / t.S;
    const ppo_layout lay = {t.N, t.T, 1, t.N};
    long global_step = 0;
    for (long u = 1; u <= n_updates; u++) {
        /* linear annealing: frac goes 1 -> 1/n_updates */
        const double frac = 1.0 - (double)(u - 1) / (double)n_updates;
        const float lr = o->anneal_lr ? (float)(frac * o->lr) : o->lr;
        const float clip = o->anneal_clip ? (float)(frac * o->clip_coef) : o->clip_coef;

        episode_stats es = {0};
        ctl_rollout(&t, &es);
        global_step += t.S;
        ppo_gae(t.adv, t.ret, t.rew, t.val, t.term, t.trunc, t.tval, t.last_val, NULL, &lay, o->gamma, o->gae_lambda);
        update_stats us;
        update(&t, lr, clip, &us);

        const double el = now_s() - t0;
        control_metrics m = {u, n_updates, global_step, NAN, NAN, es.episodes, us.pg / us.n, us.v / us.n,
                             us.ent / us.n, us.kl1 / us.n, us.kl3 / us.n, us.clipfrac / us.n,
                             ppo_explained_variance(t.val, t.ret, NULL, t.S), lr, (double)global_step / el, el};
        if (es.episodes) {
            m.episodic_return = es.ret_sum / es.episodes;
            m.episodic_length = es.len_sum / es.episodes;
        }
        if (mf) {
            write_metrics(mf, &m);
            fflush(mf);
        }
        if (o->on_update) o->on_update(o->ud, &m);
    }
    res->total_steps = global_step;
    res->eval_episodes = o->eval_episodes;
    if (evaluate(&t, o->eval_episodes, &res->eval_mean_return, &res->eval_std_return, err, errlen)) goto done;
    finish_result(&t, res);
    res->wall_seconds = now_s() - t0;
    if (mf && fclose(mf)) {
        mf = NULL;
        fio_fail(err, errlen, "%s/metrics.jsonl: write failed", o->out);
        goto done;
    }
    mf = NULL;
    if (o->out && write_summary(o, res, err, errlen)) goto done;
    rc = 0;
done:
    if (mf) fclose(mf);
    ctl_free(&t);
    return rc;
}
