/* control.h — PPO on the classic-control environments (rlhf/envs/), CleanRL's ppo.py /
 * ppo_continuous_action.py in C: vectorized envs, separate actor and critic MLPs, GAE and the
 * clipped update from rlhf/ppo.h, AdamW (weight decay 0) with lr annealing and grad-norm clipping.
 *
 * Differences from CleanRL, on purpose: a truncated episode (time limit) is bootstrapped from the
 * value of its final observation instead of being treated as terminal; observation and reward
 * normalisation share one running statistic across the vectorized envs (as SB3's VecNormalize);
 * the logged losses are means over all minibatches of an update; the evaluation is deterministic
 * (argmax / mean action) on fresh envs with the observation statistics frozen.
 *
 * Hyperparameters live in one struct; control_defaults() fills it with the tuned values for an
 * env (the table in control.c says where each setting comes from). */
#ifndef RLHF_CONTROL_H
#define RLHF_CONTROL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    long update, n_updates, global_step;
    double episodic_return, episodic_length; /* means over episodes that ended in this update (NaN: none) */
    int episodes;
    double policy_loss, value_loss, entropy;  /* means over the update's minibatches */
    double approx_kl, approx_kl_k3, clipfrac; /* ditto (k1 and k3 estimators) */
    double explained_variance;                /* of the rollout's values against its returns */
    double learning_rate, sps, elapsed_s;
} control_metrics;

typedef struct {
    const char *env_id;
    long total_steps;        /* env steps in all (rounded down to whole updates) */
    uint64_t seed;
    int num_envs, num_steps; /* one rollout: num_steps steps of num_envs envs */
    int num_minibatches, update_epochs;
    float lr;                /* Adam learning rate (eps adam_eps, no weight decay) */
    float adam_eps;
    int anneal_lr;           /* 1: linear decay to 0 over the updates (CleanRL) */
    float gamma, gae_lambda;
    int norm_adv;            /* per-minibatch advantage normalisation */
    float clip_coef;
    int anneal_clip;         /* 1: the clip range decays linearly as well (SB3's lin_0.2) */
    int clip_vloss;          /* clipped value loss (with clip_coef) */
    float ent_coef, vf_coef, max_grad_norm;
    float target_kl;         /* > 0: stop an update's epochs once k3 exceeds it */
    int hidden, hidden_layers; /* tanh MLP widths: 64 x 2 */
    float log_std_init;      /* continuous actions: initial state-independent log std */
    int norm_obs, norm_reward; /* running normalisation (Gymnasium's wrappers) and their clips */
    float clip_obs, clip_reward;
    int eval_episodes;       /* deterministic evaluation episodes at the end (the success score) */
    double success_threshold; /* a run succeeds when its score reaches this (Gymnasium's
                               * reward_threshold; NaN: the env has none) */
    int threads;             /* for the matrix products (1 is fastest at these sizes) */
    const char *out;         /* folder for metrics.jsonl and summary.json (NULL: write nothing) */
    void (*on_update)(void *ud, const control_metrics *m);
    void *ud;
} control_opts;

/* The defaults tuned for env_id (CartPole-v1, Acrobot-v1, MountainCar-v0,
 * MountainCarContinuous-v0, Pendulum-v1), or CleanRL's generic ones for any other id. */
control_opts control_defaults(const char *env_id);

/* What "reaches X within N steps" means here: the score of a run is the mean return of the final
 * policy over eval_episodes (100 by default, Gymnasium's "solved" window) deterministic episodes
 * on fresh envs (the evaluation seeds differ from the training ones), as rl-baselines3-zoo and
 * SB3's EvalCallback measure; the run succeeds when the score is >= success_threshold. The mean
 * return of the last 100 training episodes (stochastic policy, CleanRL's episodic_return) is
 * reported beside it. */
typedef struct {
    long total_steps;        /* env steps actually taken */
    double eval_mean_return, eval_std_return; /* the score and its spread */
    int eval_episodes;
    double train_last100_return; /* mean of the last (up to) 100 finished training episodes (NaN: none) */
    int success;             /* 1: score >= success_threshold; 0: below; -1: no threshold */
    double wall_seconds;     /* training and evaluation */
} control_result;

/* Train, evaluate, and (when o->out is set) write out/metrics.jsonl (one line per update) and
 * out/summary.json (atomically). */
int control_run(const control_opts *o, control_result *res, char *err, size_t errlen);

#endif
