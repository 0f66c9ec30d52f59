/* rloo.h — RLOO, REINFORCE with a leave-one-out baseline (Kool et al. 2019; Ahmadian et al. 2024),
 * with TRL's RLOOTrainer semantics, as a method on the RL core (rlhf/rl.h), and the trainer behind
 * `rlhf rloo`. No value function: each prompt gets k completions, and each one's baseline is the
 * mean reward of the other k - 1.
 *
 * ---- One step (the core's, with RLOO's advantages and loss) --------------------------------------
 *  1. Rollout: B prompts (run.batch) x k completions (rl.num_generations, default 2) at τ (1);
 *     log π_old by a full fp32 forward, log π_ref when β > 0.
 *  2. The KL folded into the sequence reward (TRL; first-order, per token, summed over the loss
 *     tokens of the completion):
 *         R_i = r_i - β Σ_t (log π_old(y_t) - log π_ref(y_t))
 *     then the leave-one-out baseline within each group of k (rloo_advantages):
 *         A_i = R_i - (Σ_{j in group} R_j - R_i) / (k - 1)
 *     unbiased for any k >= 2 (the baseline does not depend on completion i); with
 *     normalize_advantages, A ← (A - mean(A)) / (std(A) + 1e-4) over the batch (unbiased std).
 *  3. The loss, per completion (RL_AGG_SEQUENCE: one ratio per sequence, TRL's):
 *         r_i = exp(Σ_t m_t (log π_θ(y_t) - log π_old(y_t)))
 *         l_i = -w_i min(r_i A_i, clip(r_i, 1 - ε, 1 + ε_high) A_i),  loss = mean_i l_i (/ accum)
 *     with w_i the sequence's importance weight when is_correction is on (ρ_i = Π_t π_old/μ).
 *  4. num_iterations μ (rl.epochs) passes over the batch, as GRPO's.
 *
 * ---- Defaults (TRL's RLOOConfig) ---------------------------------------------------------------
 * lr 1e-6, k 2, batch 4 prompts (8 completions: TRL's per_device_train_batch_size), β 0.05,
 * temperature 1, ε 0.2 = ε_high, normalize_advantages off, μ 1. Not TRL's: max_new_tokens 32.
 *
 * ---- Metrics ------------------------------------------------------------------------------------
 * The core's (rl_metrics, TRL's names); kl is TRL's: the token mean of log π_old - log π_ref;
 * frac_reward_zero_std counts groups whose R (KL included) are all equal; clip_ratio/... count
 * sequences.
 */
#ifndef RLHF_RLOO_H
#define RLHF_RLOO_H

#include "rl.h"
#include "trainer.h"

typedef struct {
    trainer_run run;         /* batch = prompts per step (4), each with rl.num_generations completions */
    trainer_optim optim;     /* lr 1e-6 */
    rl_opts rl;              /* num_generations 2, epochs = num_iterations μ (1), epsilon 0.2, ... */
    double beta;             /* the KL coefficient in the reward: 0.05; 0: no reference loaded */
    int normalize_advantages;
} rloo_opts;

rloo_opts rloo_defaults(void);

/* Step 2's rewards: R[b] = raw_scores[b] - β Σ_t mask (logp - ref_logp) over row b's tokens (no KL
 * when ref is 0); *kl (may be NULL) gets the token mean of logp - ref_logp over the mask (NaN
 * without a reference). */
void rloo_kl_rewards(const rollout *r, const uint8_t *mask, int ref, double beta, float *R, double *kl);

/* Step 2's baseline: adv (B·k) from the rewards R (B groups of k >= 2, group-major); normalize as
 * above. *frac_zero_std (may be NULL): the share of groups whose R are all equal. */
void rloo_advantages(const float *R, int B, int k, int normalize, float *adv, double *frac_zero_std);

/* The run on the training loop: OUT/metrics.jsonl, OUT/step-N/ checkpoints, resume, OUT/model/. */
int rloo_run(const rloo_opts *o, rl_result *res, char *err, size_t errlen);

#endif
