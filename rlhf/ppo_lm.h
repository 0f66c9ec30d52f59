/* ppo_lm.h — per-token PPO for language models (TRL's PPOTrainer / lm-human-preferences), on the
 * one GAE/PPO core (rlhf/ppo.h), and the trainer behind `rlhf ppo`.
 *
 * ---- One PPO iteration (ppo_lm_step, readable top to bottom with the papers open) --------------
 *  1. Rollout. B prompts are continued by batched KV-cache sampling (model/kv.h) at temperature τ
 *     for at most max_new_tokens, stopping after the stop token (EOS; it is kept as the completion's
 *     last token, so the policy learns when to stop). Rows are prompt ++ completion, right-padded.
 *     The log-probabilities of the sampled tokens are then recomputed by full forwards at the same
 *     τ — under the policy (old_logp) and the frozen reference (ref_logp) — and the values come
 *     from the value head on the same forward.
 *  2. Scoring. Any scorer (ppo_lm_scorer: the reward model by default, a synthetic reward in
 *     tests) gives one score per row. A completion without the stop token can be penalised:
 *     PPO_LM_EOS_SUBTRACT subtracts eos_penalty (TRL's missing_eos_penalty), PPO_LM_EOS_REPLACE
 *     replaces the score with it (lm-human-preferences' penalty_reward_value).
 *  3. Per-token rewards (Ziegler et al. 2019; Stiennon et al. 2020), at every completion token t:
 *         r_t = -β (log π(y_t) - log π_ref(y_t))   (+ score at the completion's last token)
 *     optionally whitened over the batch without shifting the mean (TRL's whiten_rewards).
 *  4. GAE over completion tokens (ppo_gae, γ = 1, λ = 0.95 by default; the episode ends after the
 *     last token: no bootstrap), returns = A + V, advantages whitened over the batch.
 *  5. Update: `epochs` passes over the B rows in shuffled mini-batches of `minibatch` rows, each
 *     split into `accum` micro-batches whose gradients add up before one AdamW step (policy trunk
 *     and value head share one global gradient-norm clip). Loss per micro-batch =
 *         ppo_policy_loss (clipped surrogate, clip ε) + vf_coef · ppo_value_loss (clipped, ε_v)
 *     with new log-probs at τ, as TRL computes them.
 *  6. KL coefficient: fixed β, or the adaptive controller of Ziegler et al. when target_kl > 0:
 *         e = clip(KL / target - 1, -0.2, 0.2);  β ← β (1 + e · B / horizon)
 *     with KL the batch's mean sequence KL (objective/kl).
 *
 * ---- Layout ------------------------------------------------------------------------------------
 * Per-token arrays are (B, T) over row positions, as gpt2_forward's log-probs are: position t holds
 * the action "token t+1" (the log-prob of tokens[t+1], the value of the state tokens[0..t]). The
 * mask is 1 where token t+1 is a completion token: plen[b] - 1 <= t <= len[b] - 2. Prompt
 * positions and padding are masked out of every sum (ppo.h's masks), so ragged prompts need no
 * left padding.
 *
 * ---- Value function ----------------------------------------------------------------------------
 * Default: a scalar head on the policy's trunk (model/head.h), zero-initialised as in
 * lm-human-preferences, so the first values are 0 and the value loss trains the head and, through
 * the shared trunk, the policy's body (scaled by vf_coef). Option (TRL's layout): a separate value
 * model — a trunk + head initialised from the reward model's folder — trained alongside; it costs
 * a second trainable 124M model (parameters, gradients and AdamW moments: ~2 GB at that shape).
 *
 * ---- Metrics (TRL's names), one line per iteration ---------------------------------------------
 * objective/kl (mean over rows of Σ_t log π - log π_ref), objective/kl_coef (β used),
 * objective/entropy (mean over rows of Σ_t -log π), objective/scores (mean score after the EOS
 * penalty), objective/non_score_reward (mean over rows of Σ_t -β·kl_t), objective/rlhf_reward
 * (scores + non_score_reward), policy/approxkl (0.5·mean (log π_new - log π_old)^2, TRL's),
 * policy/clipfrac, policy/entropy (mean entropy of the new policy's tempered distribution),
 * val/vpred, val/clipfrac, val/ratio (mean π_new/π_old), val/explained_variance (rollout values vs
 * returns), val/num_eos_tokens, loss/policy, loss/value (means over micro-batches), lr, grad_norm
 * (last step), episode (completions so far), objective/completion_length, time/rollout,
 * time/scoring, time/update, time/total (seconds), eps (completions per second).
 */
#ifndef RLHF_PPO_LM_H
#define RLHF_PPO_LM_H

#include "gpt2.h"
#include "head.h"
#include "kv.h"
#include "rm.h"
#include "trainer.h"

#include <stddef.h>
#include <stdint.h>

/* A reward: scores[b] for rows tokens (B,T) (right-padded; lengths[b] real tokens of which the
 * first prompt_lengths[b] are the prompt). 0 or -1 with err. */
typedef int (*ppo_lm_scorer)(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B,
                             int T, float *scores, char *err, size_t errlen);

/* The reward model as a scorer: ud is an rm_model (scored where rm_forward reads, see rm.h). */
int ppo_lm_rm_scorer(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                     float *scores, char *err, size_t errlen);

typedef enum { PPO_LM_EOS_OFF, PPO_LM_EOS_SUBTRACT, PPO_LM_EOS_REPLACE } ppo_lm_eos_mode;

/* ---- rollouts ---------------------------------------------------------------------------------- */

typedef struct {
    int B, T;                /* rows filled; columns used (the longest row) */
    int max_rows, max_T;     /* capacity */
    int32_t *tokens;         /* (B,T) prompt ++ completion, then pad */
    int32_t *targets;        /* (B,T) tokens[t+1]; pad at the end */
    uint8_t *mask;           /* (B,T) 1 where targets[t] is a completion token */
    float *fmask;            /* the same as floats (gpt2_forward's mask) */
    int *plen, *len;         /* prompt tokens, real tokens per row */
    uint8_t *has_stop;       /* (B) the completion ends with the stop token */
    float *logp, *ref_logp, *values;  /* (B,T) per token (0 where masked out) */
    float *rewards, *adv, *ret;       /* (B,T) */
    float *scores;           /* (B) the scorer's, after the EOS penalty */
    float *raw_scores;       /* (B) the scorer's */
} ppo_lm_rollout;

int ppo_lm_rollout_create(ppo_lm_rollout *r, int max_rows, int max_T, char *err, size_t errlen);
void ppo_lm_rollout_free(ppo_lm_rollout *r);

/* Lay out B rows: prompt b (plen[b] >= 1 tokens) followed by completion b (clen[b] tokens of
 * comp + b*comp_stride), cut after its first stop token (stop < 0: none), padded with pad. Fills
 * tokens, targets, mask, fmask, plen, len, has_stop; zeroes the per-token arrays. A row that does
 * not fit max_T, or an empty completion, is an error. */
int ppo_lm_rollout_set(ppo_lm_rollout *r, int B, const int32_t *const *prompts, const int *plen, const int32_t *comp,
                       int comp_stride, const int *clen, int32_t stop, int32_t pad, char *err, size_t errlen);

/* Log-probabilities of the rollout's completion tokens under m at temperature (> 0), into out
 * (B,T; 0 where masked out). The forward leaves m's hidden states for a value head. */
int ppo_lm_rollout_logprobs(gpt2 *m, const ppo_lm_rollout *r, float temperature, float *out, char *err,
                            size_t errlen);

/* Apply the EOS rule to raw_scores into scores. */
void ppo_lm_eos_penalty(ppo_lm_rollout *r, ppo_lm_eos_mode mode, float penalty);

/* Step 3 above: rewards from logp, ref_logp, scores and β (whiten: TRL's whiten_rewards). */
void ppo_lm_rewards(ppo_lm_rollout *r, double kl_coef, int whiten);

/* Step 4: adv and ret from rewards and values (ppo_gae over the (B,T) layout), advantages whitened. */
void ppo_lm_advantages(ppo_lm_rollout *r, float gamma, float lambda);

/* Sequence sums over the mask: out[b] = Σ_t (a[b,t] - (b_ ? b_[b,t] : 0)). */
void ppo_lm_seq_sum(const ppo_lm_rollout *r, const float *a, const float *b_, double *out);

/* The adaptive KL controller (Ziegler et al. 2019, as TRL's AdaptiveKLController): returns the new β. */
double ppo_lm_kl_control(double beta, double kl, double target, double horizon, int n_steps);

/* ---- the trainer state ------------------------------------------------------------------------- */

typedef struct {
    /* rollout */
    float temperature;       /* > 0 (TRL 0.7) */
    int max_new_tokens;      /* 32 */
    int32_t stop_token;      /* EOS, -1: none */
    ppo_lm_eos_mode eos_mode;
    float eos_penalty;       /* subtracted, or the replacement score */
    gpt2_weights sample_weights; /* fp32 (default) or bf16 decode weights */
    /* rewards and advantages */
    double kl_coef;          /* β (the initial one when adaptive): TRL 0.05 */
    double target_kl;        /* > 0: adaptive β towards this sequence KL (Ziegler: 6) */
    double kl_horizon;       /* 10000 */
    int whiten_rewards;      /* 0 */
    float gamma, lambda;     /* 1, 0.95 */
    /* update */
    int epochs;              /* 4 */
    int minibatch;           /* rows per optimizer step; <= 0: the whole batch (TRL num_mini_batches 1) */
    int accum;               /* micro-batches per mini-batch: 1 */
    float cliprange, cliprange_value, vf_coef; /* 0.2, 0.2, 0.1 */
    float lr, min_lr;        /* 3e-6 decaying (cosine) to 0 over the run (TRL decays linearly) */
    long warmup;             /* optimizer steps */
    float weight_decay, beta1, beta2, grad_clip; /* 0, 0.9, 0.999, 1.0 */
    uint64_t seed;
} ppo_lm_hparams;

/* TRL's PPOConfig where it applies (see the field comments) */
ppo_lm_hparams ppo_lm_hparams_defaults(void);
int ppo_lm_hparams_check(const ppo_lm_hparams *h, char *err, size_t errlen);

typedef struct ppo_lm ppo_lm;

/* A trainer over a policy (owned), the value function and a frozen reference (owned, may be the
 * same weights as the policy but must be a distinct model). value: a separate value model (owned;
 * NULL: a zero head on the policy trunk). max_rows / max_T: the largest rollout (prompts + new
 * tokens); everything is sized for it once. total_steps: the optimizer steps of the whole run (the
 * learning-rate schedule). nthreads <= 0: OpenMP's default. Models are freed on failure too. */
int ppo_lm_create(ppo_lm **out, gpt2 *policy, rm_model *value, gpt2 *ref, const ppo_lm_hparams *h, int max_rows,
                  int max_T, long total_steps, int nthreads, char *err, size_t errlen);
void ppo_lm_free(ppo_lm *p);

gpt2 *ppo_lm_policy(ppo_lm *p);
head *ppo_lm_value_head(ppo_lm *p);     /* the head on the policy trunk, or the value model's */
rm_model *ppo_lm_value_model(ppo_lm *p); /* NULL when the value head sits on the policy */
adamw *ppo_lm_optimizer(ppo_lm *p);     /* the policy trunk's */
adamw *ppo_lm_value_optimizer(ppo_lm *p, int trunk); /* trunk 0: the head's; 1: the value model trunk's (or NULL) */
double ppo_lm_kl_coef(const ppo_lm *p);
void ppo_lm_set_kl_coef(ppo_lm *p, double beta);
const ppo_lm_rollout *ppo_lm_last_rollout(const ppo_lm *p);

typedef struct {
    double kl, kl_coef, entropy, scores, non_score_reward, rlhf_reward;
    double approxkl, clipfrac, policy_entropy, vpred, vf_clipfrac, ratio, explained_variance;
    double loss_policy, loss_value, lr, grad_norm, completion_length, num_eos;
    double t_rollout, t_scoring, t_update;
    double eps;              /* completions per second over the iteration (TRL's eps) */
} ppo_lm_stats;

/* One PPO iteration on B prompts (B <= max_rows; prompts[b] has plen[b] >= 1 tokens), iteration
 * `iter` (0-based: the sampling and mini-batch seeds derive from (seed, iter), so a resumed run
 * repeats exactly). score(ud, ...) (required) rewards the rollout. */
int ppo_lm_step(ppo_lm *p, int B, const int32_t *const *prompts, const int *plen, long iter, ppo_lm_scorer score,
                void *ud, ppo_lm_stats *st, char *err, size_t errlen);

/* the stats as trainer metrics with TRL's names (out: PPO_LM_NMETRICS entries) */
enum { PPO_LM_NMETRICS = 25 };
void ppo_lm_metrics(const ppo_lm_stats *s, double episode, trainer_metric *out);

/* ---- `rlhf ppo` -------------------------------------------------------------------------------- */

typedef struct {
    const char *policy;      /* Hugging Face GPT-2 folder (the SFT model) */
    const char *ref;         /* the reference; NULL: the policy folder */
    const char *rm;          /* reward-model folder (rlhf/rm.h); the default scorer */
    const char *value_model; /* NULL: value head on the policy; else a reward-model folder to start a separate value model from */
    const char *prompts;     /* prompt-only JSONL */
    const char *tokenizer;
    const char *out;
    int resume;
    ppo_lm_hparams h;        /* h.stop_token is set by the run: see stop_at_eos */
    int stop_at_eos;         /* 1: completions end at the tokenizer's <|endoftext|> (kept); 0: no stop */
    int batch;               /* prompts per iteration: 8 */
    long steps;              /* PPO iterations: 100 */
    int max_prompt_len;      /* tokens kept from the end (also limited by n_positions - max_new_tokens): 64 */
    long ckpt_every;         /* iterations (and at the end): 50 */
    int keep_last;           /* 2 */
    int threads;
    long stop_at;            /* > 0: leave after this iteration as if interrupted (tests) */
    ppo_lm_scorer score;     /* NULL: the reward model at `rm` */
    void *score_ud;
    void (*on_step)(void *ud, const trainer_progress *p);
    void *ud;
} ppo_lm_opts;

ppo_lm_opts ppo_lm_defaults(void);

typedef struct {
    long resumed_from, steps;
    size_t n_prompts;
    ppo_lm_stats last;
} ppo_lm_result;

/* The whole run: OUT/metrics.jsonl, OUT/step-N/ checkpoints (the policy's HF folder + optimizer +
 * value_head.safetensors and its optimizer moments, ppo_state.json with β; with a separate value
 * model also its weights and moments), resume, OUT/model/ (policy + value_head.safetensors +
 * tokenizer) and, with a separate value model, OUT/value_model/ (a reward-model folder). */
int ppo_lm_run(const ppo_lm_opts *o, ppo_lm_result *res, char *err, size_t errlen);

#endif
