/* grpo.h — GRPO (Shao et al. 2024, DeepSeekMath), with TRL's GRPOTrainer semantics and its default
 * DAPO loss (Yu et al. 2025), as a method on the RL core (rlhf/rl.h), and the trainer behind
 * `rlhf grpo`. No value function: each prompt gets G completions and each completion's advantage
 * is its reward against the others of its group.
 *
 * ---- One step (the core's, with GRPO's advantages and loss) --------------------------------------
 *  1. Rollout: B prompts (run.batch) x G completions (rl.num_generations, default 8) at temperature
 *     τ (1); log π_old by a full fp32 forward (the sampling policy of every ratio below); log π_ref
 *     only when β > 0 (β = 0, the default, loads no reference model).
 *  2. Rewards r_i from the --reward sources (weighted sum). Advantages (grpo_advantages), with
 *     mean_g and std_g the mean and unbiased standard deviation of the rewards of row i's group:
 *         scale_rewards group:  A_i = (r_i - mean_g) / (std_g + 1e-4)        (TRL's default)
 *         scale_rewards batch:  A_i = (r_i - mean_g) / (std_batch + 1e-4)    (std over all B·G rows)
 *         scale_rewards none:   A_i =  r_i - mean_g                          (Dr. GRPO)
 *     the same A_i at every token of completion i. frac_reward_zero_std: the share of rows whose
 *     std (group, or batch) is 0 (within 1e-8): groups that teach nothing.
 *  3. The loss (rlhf/rl.h, per token, r_t = π_θ/π_old, w_t the importance weight):
 *         l_t = -w_t min(r_t A, clip(r_t, 1 - ε, 1 + ε_high) A) + β k3_t,
 *         k3_t = π_ref/π_θ - log(π_ref/π_θ) - 1   (TRL's per_token_kl; its gradient 1 - π_ref/π_θ)
 *     aggregated by loss_type (s = 1/accum):
 *         grpo     s · mean over completions of (Σ_t l_t / |o_i|)     (length-biased, the original)
 *         bnpo     s · Σ l / Σ m over the micro-batch
 *         dr_grpo  s · Σ l / (completions · max_new_tokens)
 *         dapo     Σ l / Σ m over the optimizer step's completions (TRL's num_items_in_batch; the default)
 *  4. num_iterations μ (rl.epochs): the batch is reused μ times (μ · B·G / minibatch optimizer
 *     steps), every ratio against π_old, so the clip acts from the second pass on.
 *     mask_truncated_completions drops completions without EOS from the loss (DAPO).
 *
 * ---- Defaults (TRL's GRPOConfig) ---------------------------------------------------------------
 * lr 1e-6, G 8, batch 1 prompt (8 completions: TRL's per_device_train_batch_size), temperature 1,
 * ε 0.2 = ε_high, β 0, loss dapo, scale_rewards group, μ 1, one optimizer step per batch. Not
 * TRL's: max_new_tokens 32 (TRL 512: this project's GPT-2s are small), epochs 1 (the loop's default).
 *
 * ---- Metrics ------------------------------------------------------------------------------------
 * The core's (rl_metrics, TRL's names: reward, reward_std, frac_reward_zero_std, kl, entropy,
 * clip_ratio/..., completions/..., sampling/..., rewards/<source>/mean|std, loss) and the loop's
 * learning_rate, grad_norm, num_tokens, epoch.
 */
#ifndef RLHF_GRPO_H
#define RLHF_GRPO_H

#include "rl.h"
#include "trainer.h"

typedef enum { GRPO_SCALE_GROUP, GRPO_SCALE_BATCH, GRPO_SCALE_NONE } grpo_scale;
typedef enum { GRPO_LOSS_GRPO, GRPO_LOSS_BNPO, GRPO_LOSS_DR_GRPO, GRPO_LOSS_DAPO } grpo_loss;

/* "group", "batch", "none" and "grpo", "bnpo", "dr_grpo", "dapo" (NULL-terminated, enum order) */
extern const char *const grpo_scale_names[];
extern const char *const grpo_loss_names[];

typedef struct {
    trainer_run run;         /* batch = prompts per step (1), each with rl.num_generations completions */
    trainer_optim optim;     /* lr 1e-6 */
    rl_opts rl;              /* num_generations 8, epochs = num_iterations μ (1), epsilon 0.2, ... */
    double beta;             /* k3 KL to the reference in the loss; 0: no reference loaded */
    grpo_scale scale_rewards;
    grpo_loss loss_type;
} grpo_opts;

grpo_opts grpo_defaults(void);

/* Step 2: adv (B·G) from rewards (B groups of G, group-major) with the scaling s; *frac_zero_std
 * (may be NULL) gets the share of rows whose std is 0. */
void grpo_advantages(const float *rewards, int B, int G, grpo_scale s, float *adv, double *frac_zero_std);

/* The run on the training loop: OUT/metrics.jsonl, OUT/step-N/ checkpoints, resume, OUT/model/. */
int grpo_run(const grpo_opts *o, rl_result *res, char *err, size_t errlen);

#endif
