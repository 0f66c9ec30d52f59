/* ppo_lm.h — per-token PPO for language models (TRL's PPOTrainer / lm-human-preferences) as a
 * method on the RL core (rlhf/rl.h), with the GAE/PPO functions of rlhf/ppo.h, and the trainer
 * behind `rlhf ppo`. The core does the rollout, the log-probs, the sampler check, scoring and the
 * clipped update; this file holds what is PPO's own: the value function, per-token KL rewards, GAE,
 * the EOS penalty, the value loss and the adaptive KL coefficient.
 *
 * ---- One PPO iteration (the core's step, readable top to bottom with the papers open) ------------
 *  1. Rollout (core): B prompts (one completion each) sampled at temperature τ, log π_old and
 *     log π_ref recomputed by full forwards at τ; the values come from the value head on the same
 *     policy forward (rollout_forward).
 *  2. Scoring (core), then the EOS rule: a completion without the stop token can be penalised:
 *     PPO_LM_EOS_SUBTRACT subtracts eos_penalty (TRL's missing_eos_penalty), PPO_LM_EOS_REPLACE
 *     replaces the score with it (lm-human-preferences' penalty_reward_value).
 *  3. Per-token rewards (Ziegler et al. 2019; Stiennon et al. 2020), at every completion token t:
 *         r_t = -β (log π(y_t) - log π_ref(y_t))   (+ score at the completion's last token)
 *     optionally whitened over the batch without shifting the mean (TRL's whiten_rewards).
 *  4. GAE over completion tokens (ppo_gae, γ = 1, λ = 0.95 by default; the episode ends after the
 *     last token: no bootstrap), returns = A + V, advantages whitened over the batch.
 *  5. Update (core): `rl.epochs` (ppo_epochs) passes over the B rows in shuffled mini-batches of
 *     `rl.minibatch` rows, each split into run.accum micro-batches whose gradients add up before
 *     one AdamW step (policy trunk and value head share one global gradient-norm clip). Loss per
 *     micro-batch = the core's clipped surrogate (clip ε = rl.epsilon, TRL's cliprange; token mean
 *     over the micro-batch: RL_AGG_BNPO) + vf_coef · ppo_value_loss (clipped, ε_v).
 *  6. KL coefficient: fixed β, or the adaptive controller of Ziegler et al. when target_kl > 0:
 *         e = clip(KL / target - 1, -0.2, 0.2);  β ← β (1 + e · B / horizon)
 *     with KL the batch's mean sequence KL (objective/kl).
 *
 * ---- Layout ----------------------------------------------------------------------------------
 * rlhf/rollout.h: per-token arrays (B, T) over row positions, masked to the completion tokens.
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
 * time/scoring, time/update, time/total (seconds), eps (completions per second), and the core's
 * sampling/ metrics (the sampler against the trainer: rlhf/rl.h).
 */
#ifndef RLHF_PPO_LM_H
#define RLHF_PPO_LM_H

#include "dataset.h"
#include "gpt2.h"
#include "kv.h"
#include "rl.h"
#include "rollout.h"
#include "scorer.h"
#include "trainer.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { PPO_LM_EOS_OFF, PPO_LM_EOS_SUBTRACT, PPO_LM_EOS_REPLACE } ppo_lm_eos_mode;

/* ---- the steps as functions over a rollout (rlhf/rollout.h) -------------------------------------- */

/* Apply the EOS rule to raw_scores into scores. */
void ppo_lm_eos_penalty(rollout *r, ppo_lm_eos_mode mode, float penalty);

/* Step 3 above: rewards from logp, ref_logp, scores and β (whiten: TRL's whiten_rewards). */
void ppo_lm_rewards(rollout *r, double kl_coef, int whiten);

/* Step 4: adv and ret from rewards and values (ppo_gae over the (B,T) layout), advantages whitened. */
void ppo_lm_advantages(rollout *r, float gamma, float lambda);

/* The adaptive KL controller (Ziegler et al. 2019, as TRL's AdaptiveKLController): returns the new β. */
double ppo_lm_kl_control(double beta, double kl, double target, double horizon, int n_steps);

/* ---- hyperparameters ------------------------------------------------------------------------------ */

/* PPO's own; the rollout and update settings are the shared rl_opts, the optimizer, batch (prompts
 * per iteration), accumulation (micro-batches per mini-batch), iterations and seed the shared
 * trainer_optim / trainer_run. */
typedef struct {
    ppo_lm_eos_mode eos_mode;
    float eos_penalty;       /* subtracted, or the replacement score */
    /* rewards and advantages */
    double kl_coef;          /* β (the initial one when adaptive): TRL 0.05 */
    double target_kl;        /* > 0: adaptive β towards this sequence KL (Ziegler: 6) */
    double kl_horizon;       /* 10000 */
    int whiten_rewards;      /* 0 */
    float gamma, lambda;     /* 1, 0.95 */
    /* the value loss */
    float cliprange_value, vf_coef; /* 0.2, 0.1 */
} ppo_lm_hparams;

/* TRL's PPOConfig where it applies (see the field comments) */
ppo_lm_hparams ppo_lm_hparams_defaults(void);
int ppo_lm_hparams_check(const ppo_lm_hparams *h, char *err, size_t errlen);

typedef struct {
    double kl, kl_coef, entropy, scores, non_score_reward, rlhf_reward;
    double approxkl, clipfrac, policy_entropy, vpred, vf_clipfrac, ratio, explained_variance;
    double loss_policy, loss_value, lr, grad_norm, completion_length, num_eos;
    double t_rollout, t_scoring, t_update;
    double eps;              /* completions per second over the iteration (TRL's eps) */
} ppo_lm_stats;

/* the stats as trainer metrics with TRL's names (out: PPO_LM_NMETRICS entries) */
enum { PPO_LM_NMETRICS = 25 };
void ppo_lm_metrics(const ppo_lm_stats *s, double episode, trainer_metric *out);

/* ---- `rlhf ppo` -------------------------------------------------------------------------------- */

typedef struct {
    trainer_run run;         /* batch = prompts per iteration (8), accum = micro-batches per mini-batch,
                                steps = iterations (100), ckpt_every in iterations (50) */
    trainer_optim optim;     /* lr 3e-6 decaying (cosine) to 0 over the run's optimizer steps (TRL: linearly) */
    rl_opts rl;              /* PPO's: one completion per prompt, temperature 0.7, epochs 4 (TRL's
                                num_ppo_epochs), minibatch: the whole batch (num_mini_batches 1),
                                epsilon 0.2 (cliprange) */
    ppo_lm_hparams h;
    const char *rm;          /* reward-model folder: the reward when rl has neither score nor reward specs */
    const char *value_model; /* NULL: value head on the policy; else a reward-model folder to start a separate value model from */
} ppo_lm_opts;

ppo_lm_opts ppo_lm_defaults(void);

typedef struct {
    long resumed_from, steps;
    size_t n_prompts;
    ppo_lm_stats last;
} ppo_lm_result;

/* The whole run on the training loop (rlhf/trainer.h): OUT/metrics.jsonl, OUT/step-N/ checkpoints
 * (the policy's HF folder + optimizer + value_head.safetensors and its optimizer moments,
 * ppo_state.json with β; with a separate value model also its weights and moments), resume,
 * OUT/model/ (policy + value_head.safetensors + tokenizer) and, with a separate value model,
 * OUT/value_model/ (a reward-model folder). */
int ppo_lm_run(const ppo_lm_opts *o, ppo_lm_result *res, char *err, size_t errlen);

#endif
