/* rl.h — the one RL core for language models: rollout, scoring, log-prob recomputation, the
 * clipped surrogate and the update, as ONE recipe on the training loop (rlhf/trainer.h). PPO
 * (rlhf/ppo_lm.h), GRPO (rlhf/grpo.h) and RLOO (rlhf/rloo.h) are methods on it: each supplies its
 * advantage estimator and chooses how token losses add up; everything else is here, once.
 *
 * ---- One step (rl_fit's recipe; the loop's step = one batch of prompts) -------------------------
 *  1. Rollout. The step's B prompts (run.batch) are each continued G times (num_generations; PPO:
 *     1), row b·G + g, by batched KV-cache sampling (model/kv.h) at temperature τ with optional
 *     top-k / top-p, decode weights auto, fp32 or bf16 (rollout_weights, default auto: bf16 where
 *     the CPU has bf16; model/kv.h reads the model's cached bf16 copy in calls of at most 64 rows,
 *     longer prompt passes are fp32), at most max_new_tokens, cut
 *     after the stop token (EOS, kept). Every row draws from its own RNG stream (seed of the step,
 *     row index), so its text does not depend on the rest of the batch or the thread count. The
 *     sampler records each token's log-prob under the distribution it was drawn from, μ(y_t)
 *     (the tempered softmax over the top-k/top-p support, renormalised there).
 *  2. Log-probs by full fp32 forwards at τ: the policy's, π_old(y_t) (the "old" policy of every
 *     ratio below, computed once per batch), and the frozen reference's when the method needs it.
 *  3. Sampler vs trainer. ρ_t = π_old(y_t) / μ(y_t) measures how far the sampler is from the
 *     policy being trained (bf16 weights, the KV cache's arithmetic, the fast exp, truncation).
 *     Logged every step (TRL's names): sampling/sampling_logp_difference/mean|max of
 *     |log π_old - log μ| and sampling/importance_sampling_ratio/min|mean|max. With is_correction
 *     the policy loss of each token is weighted by w_t (TRL's vLLM importance-sampling correction):
 *         tis:  w_t = min(ρ_t, C)                 (truncated importance sampling, C = is_cap)
 *         mask: w_t = ρ_t if 1/C <= ρ_t <= C, else 0
 *         none: w_t = 1 (the ratio statistics are then of ρ itself, else of w)
 *     A sequence-level method (RLOO) uses one ratio per row, ρ_b = Π_t ρ_t.
 *  4. Scoring: the scorer (data/scorer.h; `--reward` sources combined by data/reward.h) gives one
 *     reward per row; the method turns rewards into advantages (its whole job, with its extra
 *     terms): PPO GAE with a value function, GRPO group-normalised, RLOO leave-one-out.
 *     mask_truncated_completions drops rows without the stop token from the loss (DAPO).
 *  5. Update: `epochs` passes (PPO's ppo_epochs, GRPO/RLOO's num_iterations μ) over the B·G rows
 *     in shuffled mini-batches of `minibatch` rows (one optimizer step each), each split into
 *     run.accum micro-batches. Per token, with r_t = π_θ(y_t) / π_old(y_t) and advantage A:
 *         l_t = -w_t · min(r_t A, clip(r_t, 1 - ε_low, 1 + ε_high) A)  [+ β k3_t]
 *         k3_t = π_ref/π_θ - log(π_ref/π_θ) - 1            (GRPO's KL in the loss, when β > 0)
 *     and the token losses add up by the method's aggregation (rl_agg), s = 1/accum:
 *         RL_AGG_BNPO      s · Σ_mb l / Σ_mb m                  tokens of the micro-batch (PPO; TRL bnpo)
 *         RL_AGG_GRPO      s · mean_rows (Σ_t l / Σ_t m)        per-sequence means (TRL grpo)
 *         RL_AGG_DR_GRPO   s · Σ_mb l / (rows · max_new_tokens) a constant (TRL dr_grpo)
 *         RL_AGG_DAPO      Σ_mb l / Σ_step m                    tokens of the optimizer step (TRL dapo)
 *         RL_AGG_SEQUENCE  s · mean_rows l_b, one ratio r_b = exp(Σ_t m (log π_θ - log π_old))
 *                          per row, w_b and A_b per row (TRL's RLOO)
 *     (m: the loss mask; DAPO's Σ_step m is TRL's num_items_in_batch when a mini-batch is the
 *     whole batch, the default; with smaller mini-batches it is each optimizer step's own tokens,
 *     where TRL divides by the whole generation batch's). The loss's gradient with respect to each log π_θ(y_t) is exact (checked
 *     by finite differences in tests/test_grpo.c) and flows into gpt2_backward.
 *
 * ---- A method (worked example: rlhf/grpo.c is the shortest) --------------------------------------
 *   static int configure(void *self, rl *c, ...) { check my options; c->agg = RL_AGG_DAPO; c->kl_beta = β;
 *                                                   c->need_ref = β > 0; }
 *   static int advantages(void *self, rl *c, ...) { c->row_adv[b] = ...; rl_row_adv_to_tokens(c); }
 *   static size_t metrics(void *self, rl *c, trainer *t, trainer_metric *out) { return rl_metrics(c, out); }
 *   static const rl_method method = {.name = "grpo", .configure = configure, .advantages = advantages, ...};
 *   int grpo_run(const grpo_opts *o, ...) { grpo g = {o}; return rl_fit(&method, &g, &o->rl, &o->run, &o->optim, ...); }
 * plus its CLI file (tools/cmd_grpo.c, bound to grpo_opts with the shared tables of
 * tools/rl_cli.h), one line in tools/commands.h, tools/rlhf.c and tools/meson.build, its tests,
 * and one line in meson.build.
 *
 * ---- Metrics every method gets (rl_metrics, TRL's GRPOTrainer names) -----------------------------
 * reward, reward_std (mean and unbiased std of the rows' rewards), frac_reward_zero_std (share of
 * groups whose rewards are all equal), rewards/<source>/mean|std, kl (GRPO: token mean of k3 in the
 * loss; RLOO: of log π_old - log π_ref), entropy (token mean of the new policy's tempered entropy),
 * clip_ratio/low_mean|low_min|high_mean|high_max|region_mean (tokens, or rows for RLOO, whose
 * ratio is clipped below with A < 0 / above with A > 0; _min/_max over rows), loss, completions/
 * mean_length|min_length|max_length|clipped_ratio|mean_terminated_length|min_terminated_length|
 * max_terminated_length (clipped: no stop token), the sampling/ ones above, time/rollout|scoring|
 * update (seconds).
 */
#ifndef RLHF_RL_H
#define RLHF_RL_H

#include "dataset.h"
#include "gpt2.h"
#include "kv.h"
#include "reward.h"
#include "rollout.h"
#include "scorer.h"
#include "trainer.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { RL_IS_NONE, RL_IS_TIS, RL_IS_MASK } rl_is_mode;

typedef enum { RL_AGG_BNPO, RL_AGG_GRPO, RL_AGG_DR_GRPO, RL_AGG_DAPO, RL_AGG_SEQUENCE } rl_agg;

/* ---- the shared options: every method's options struct embeds one ------------------------------- */

typedef struct {
    const char *policy;      /* Hugging Face GPT-2 folder to start from (the SFT model) */
    const char *ref;         /* the frozen reference; NULL: the policy folder */
    const char *prompts;     /* prompt-only JSONL */
    const ds_prompts *prompt_rows; /* or prompts as token rows (library use, tests): when prompts is NULL */
    const char *tokenizer;   /* NULL only with prompt_rows, stop_at_eos 0 and no reward that decodes */
    int stop_at_eos;         /* 1: completions end at <|endoftext|> (kept) */
    int max_prompt_len;      /* prompt tokens kept from the end (also <= n_positions - max_new_tokens): 64 */
    /* rewards: score when set (library use), else the specs (data/reward.h) */
    scorer score;
    const char *const *reward; /* "rm:DIR", "judge", "cmd:PROGRAM ARGS" ... */
    size_t n_reward;
    const double *reward_weights; /* one per source, or NULL (all 1) */
    size_t n_reward_weights;
    double reward_timeout;   /* seconds an external program may take per batch: 60 */
    /* rollout */
    int num_generations;     /* G completions per prompt (GRPO 8, RLOO 2, PPO 1) */
    float temperature;       /* > 0, log-probs are taken at it: TRL 1 (PPO 0.7) */
    int top_k;               /* 0: off */
    float top_p;             /* 1: off */
    int max_new_tokens;      /* 32 */
    gpt2_weights rollout_weights; /* decode weights: auto (default: bf16 where the CPU has bf16), fp32, bf16 */
    rl_is_mode is_correction;/* none (default), tis, mask */
    float is_cap;            /* C: TRL's 3 */
    int mask_truncated;      /* drop completions without the stop token from the loss (DAPO): 0 */
    /* update */
    int epochs;              /* passes over each batch: PPO's ppo_epochs (4), GRPO/RLOO's num_iterations μ (1) */
    int minibatch;           /* rows (completions) per optimizer step; <= 0: the whole batch */
    float epsilon;           /* ε_low: 0.2 */
    float epsilon_high;      /* ε_high; <= 0: ε_low (DAPO recommends 0.28) */
} rl_opts;

/* the defaults above (TRL's GRPOConfig where they apply); each method then sets its own */
rl_opts rl_opts_defaults(void);
/* an error line for options no method can run with */
int rl_opts_check(const rl_opts *o, char *err, size_t errlen);

/* "none", "tis", "mask" */
extern const char *const rl_is_names[];

/* ---- the clipped surrogate -------------------------------------------------------------------------- */

typedef struct {
    rl_agg agg;
    float eps_low, eps_high;
    double beta;             /* > 0: + β k3 per token */
    int max_new_tokens;      /* RL_AGG_DR_GRPO's constant */
    double step_tokens;      /* RL_AGG_DAPO: loss tokens of the whole optimizer step */
    float scale;             /* 1/accum (every aggregation but DAPO) */
    double tokens, rows;     /* the whole micro-batch's loss tokens and rows when this call has a data-
                              * parallel rank's share of them (the means are over the whole); 0: this call's */
} rl_loss_opts;

typedef struct {
    int n, T;                /* rows, columns */
    const float *logp, *old; /* (n,T) log π_θ and log π_old of the taken tokens */
    const float *adv;        /* (n,T) per token; RL_AGG_SEQUENCE: (n) per row */
    const float *w;          /* importance weights shaped like adv; NULL: 1 */
    const float *ref;        /* (n,T) log π_ref (beta > 0) */
    const uint8_t *mask;     /* (n,T) the loss mask */
} rl_loss_in;

typedef struct {
    double loss;             /* this micro-batch's share of the optimizer step's loss (as aggregated) */
    double mean;             /* its unscaled mean: Σ l / Σ m (PPO's loss/policy) */
    double count;            /* loss tokens (rows for RL_AGG_SEQUENCE) of this call */
    double clipfrac;         /* share of them with r beyond the clip range, either sign of A (PPO's) */
    double ratio;            /* mean r */
    double low, high;        /* how many clipped below with A < 0 / above with A > 0 (TRL's clip_ratio) */
    double low_min, high_max;/* the smallest / largest per-row share of low / high (rows with tokens) */
    double k3;               /* Σ k3 (beta > 0) */
} rl_loss_stats;

/* The loss of one micro-batch (see the step above) and dlogp (n,T) = d loss / d log π_θ (0 off the
 * mask). Allocates nothing. Returns st->loss. */
double rl_policy_loss(const rl_loss_opts *o, const rl_loss_in *in, float *dlogp, rl_loss_stats *st);

/* ---- the core's state, as methods see it ------------------------------------------------------------- */

typedef struct {
    /* rollout (every step) */
    double reward, reward_std, frac_zero_std;
    double len_mean, len_min, len_max, clipped_ratio, term_mean, term_min, term_max;
    double logp_diff_mean, logp_diff_max, is_min, is_mean, is_max;
    double t_rollout, t_scoring, t_update;
    /* update, PPO's way: means over the step's micro-batches */
    double approxkl, clipfrac, entropy_micro, ratio, loss_micro;
    /* update, TRL's way: token (or row) means over the step */
    double entropy, kl, clip_low, clip_low_min, clip_high, clip_high_max, clip_region, loss;
} rl_stats;

/* one micro-batch gathered from the rollout */
typedef struct {
    int n, T;
    double tokens, nrows;    /* the loss tokens and rows of the whole micro-batch (across the ranks) */
    const int *rows;         /* (n) their rows in the rollout */
    int32_t *tok, *tgt;      /* (n,T) */
    float *fmask;            /* (n,T) the completion positions (the forward's mask) */
    uint8_t *mask;           /* (n,T) the loss mask */
    float *old, *adv, *w, *ref, *dlogp; /* (n,T) */
    float *row_adv, *row_w;  /* (n) */
} rl_batch;

typedef struct rl rl;

typedef struct {
    const char *name;        /* the family: "ppo", "grpo", "rloo" (progress label, settings "family") */
    const char *const *loss_names; /* NULL: {"loss"}; the core's policy loss first */
    int own_metrics;         /* 1: metrics() is the whole line (no learning_rate, grad_norm, num_tokens, epoch) */
    /* check the method's options; set c->agg, c->kl_beta, c->need_ref. Before anything loads. */
    int (*configure)(void *self, rl *c, char *err, size_t errlen);
    /* optional: the policy and prompts are loaded (c->pol is block 0, c->maxT known) and the core's
     * buffers made (c->ro): add blocks, load models, read the checkpoint's state (t->resuming), add
     * settings */
    int (*prepare)(void *self, rl *c, trainer *t, char *err, size_t errlen);
    /* optional: right after the policy's forward over the rollout (its hidden states are there) */
    int (*rollout_forward)(void *self, rl *c, char *err, size_t errlen);
    /* the rollout is scored (raw_scores): fill the advantages (c->row_adv and/or r->adv) */
    int (*advantages)(void *self, rl *c, char *err, size_t errlen);
    /* optional: a micro-batch's own terms, after the policy's forward and loss, before its backward
     * (the policy's hidden states are there): add losses from loss[1], gradients into its own
     * blocks, and may hand the policy's backward a gradient into its hidden states (*dhidden) */
    int (*micro)(void *self, rl *c, const rl_batch *mb, float scale, double *loss, const float **dhidden, char *err,
                 size_t errlen);
    /* optional: after the step's updates (c->st is complete) */
    int (*end_step)(void *self, rl *c, trainer *t, char *err, size_t errlen);
    /* the step's metrics (rl_metrics for the shared ones) */
    size_t (*metrics)(void *self, rl *c, trainer *t, trainer_metric *out);
    int (*files)(void *self, rl *c, trainer *t, int final, trainer_files *fs, char *err, size_t errlen);
    int (*export_model)(void *self, rl *c, trainer *t, char *err, size_t errlen);
    void (*free)(void *self);
} rl_method;

struct rl {
    const rl_method *m;
    void *self;
    const rl_opts *o;
    const trainer_run *run;
    /* the method's choices (configure) */
    rl_agg agg;
    double kl_beta;          /* β of k3 in the loss */
    int need_ref;
    /* models and data */
    gpt2 *pol, *ref;
    adamw opt;
    int nt, C, V, maxT;
    int32_t stop;            /* the stop token, or -1 */
    int B, G, rows;          /* prompts per step, completions per prompt, rows = B·G */
    int mb, micro;           /* rows per optimizer step, per micro-batch */
    scorer score;
    reward_set rs;           /* the --reward sources (when score comes from them) */
    ds_dataset d;
    ds_prompts prompts;
    const ds_prompts *ps;
    size_t n_prompts;
    /* this step */
    rollout ro;              /* rows x maxT; logp = log π_old, slogp = log μ, adv per token */
    uint8_t *lmask;          /* (rows, T) the loss mask */
    float *isw;              /* (rows, T) importance weights (1 without correction) */
    float *row_adv, *row_w;  /* (rows) */
    const int32_t **pp;      /* (rows) prompt of each row */
    int *pl, *perm;
    double *seq;             /* (rows) scratch */
    uint64_t rng;            /* the update's order */
    double step_tokens;      /* DAPO's: loss tokens of the current optimizer step */
    double t0, t1;
    rl_batch b;
    rl_stats st;
    struct rl_acc *acc;      /* the update's sums */
    char metric_names[REWARD_MAX][2][80];
};

/* The sampler against the trainer over the tokens of mask (NULL: r->mask): mean and max of
 * |logp - slogp| (r->logp recomputed, r->slogp the sampler's); NaN when no token. */
void rl_logp_difference(const rollout *r, const uint8_t *mask, double *mean, double *max);

/* row advantages to every loss token of their rows (r->adv) */
void rl_row_adv_to_tokens(rl *c);
/* the shared metrics above into out (at most RL_MAX_METRICS); returns how many */
enum { RL_MAX_METRICS = 32 + 2 * REWARD_MAX };
size_t rl_metrics(const rl *c, trainer_metric *out);
/* the sampling/ metrics only (5) */
size_t rl_sampling_metrics(const rl_stats *s, trainer_metric *out);

typedef struct {
    long resumed_from, steps;
    size_t n_prompts;
    rl_stats last;
} rl_result;

/* Run method m (state self) on the training loop with the shared options o. self is released through
 * m->free in every case. */
int rl_fit(const rl_method *m, void *self, const rl_opts *o, const trainer_run *run, const trainer_optim *optim,
           rl_result *res, char *err, size_t errlen);

/* Open the reward sources of rs that need rlhf/ (rm:DIR: a reward model, owned by rs and freed by
 * reward_free, its threads set), then the rest (reward_open). */
int rl_reward_open(reward_set *rs, const tok_tokenizer *t, int32_t stop, double timeout_s, int threads, char *err,
                   size_t errlen);

#endif
