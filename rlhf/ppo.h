/* ppo.h — the GAE/PPO core: plain functions over flat float arrays, shared by classic-control PPO
 * (rlhf/control.c) and per-token PPO on language models.
 *
 * Nothing here knows networks or environments. A rollout is n_seq sequences of len steps, element
 * (i, t) at index i*seq_stride + t*time_stride, so the control trainer's time-major [T][N] buffers
 * (seq_stride 1, time_stride N) and a language model's [B][T] tokens (seq_stride T, time_stride 1)
 * go through the same code. Optional masks (uint8, 1 = real) drop padding from every sum.
 *
 * Losses are means over the real elements; each loss function also writes the gradient of
 * `scale * loss` with respect to its input (0 at masked elements), which the caller feeds to the
 * network's backward (the MLP's, or gpt2_backward through per-token log-probabilities). */
#ifndef RLHF_PPO_H
#define RLHF_PPO_H

#include <stdint.h>

typedef struct {
    int n_seq, len;                 /* sequences (envs or batch rows) and steps per sequence */
    long seq_stride, time_stride;   /* element (i, t) is at i*seq_stride + t*time_stride */
} ppo_layout;

/* Generalized advantage estimation (Schulman et al. 2016), backwards over each sequence:
 *   delta_t = r_t + gamma * V_next - V(s_t)
 *   A_t     = delta_t + gamma * lambda * A_next
 * where, for step t:
 *   terminated[t] : V_next = 0 and A_next = 0 (the episode really ended: no future);
 *   truncated[t]  : V_next = trunc_values[t] (the value of the episode's final observation, the
 *                   time limit cut it short, the future is not zero) and A_next = 0 (the next
 *                   element belongs to a new episode); terminated wins when both are set;
 *   otherwise     : V_next / A_next come from the next real step of the sequence, or, after its
 *                   last step, last_values[i] and 0 (the bootstrap beyond the rollout).
 * Masked steps (mask[t] == 0) are skipped: they get adv = ret = 0 and the step before them chains
 * to the next real one, so right-padding of a language-model batch acts as "sequence over".
 * ret = A + V (the value target). terminated, truncated, trunc_values, last_values (NULL: 0) and
 * mask may be NULL. Arithmetic in double. */
void ppo_gae(float *adv, float *ret, const float *rewards, const float *values, const uint8_t *terminated,
             const uint8_t *truncated, const float *trunc_values, const float *last_values, const uint8_t *mask,
             const ppo_layout *lay, float gamma, float lambda);

/* Masked mean and unbiased (n-1) standard deviation of x[0..n) (mask may be NULL). */
void ppo_mean_std(const float *x, const uint8_t *mask, long n, double *mean, double *std);

/* Whitening in place: x = (x - mean) / (std + eps) over the real elements (unbiased std, as
 * CleanRL's advantage normalisation); shift_mean 0 adds the mean back (TRL's reward whitening).
 * Masked elements are left alone. Fewer than 2 real elements: only the mean is removed. */
void ppo_whiten(float *x, const uint8_t *mask, long n, float eps, int shift_mean);

typedef struct {
    double loss;         /* mean of max(-A*ratio, -A*clip(ratio, 1-c, 1+c)) */
    double clipfrac;     /* fraction with |ratio - 1| > c */
    double approx_kl;    /* k1 = mean(log old - log new) */
    double approx_kl_k3; /* k3 = mean((ratio - 1) - log ratio), unbiased and >= 0 (Schulman's blog) */
    double ratio;        /* mean ratio */
} ppo_pg_stats;

/* Clipped surrogate policy loss over n elements (log-probabilities of the taken actions/tokens).
 * dlogp (may be NULL) = scale * d loss / d logp. Returns the loss. */
double ppo_policy_loss(const float *logp, const float *old_logp, const float *adv, const uint8_t *mask, long n,
                       float clip, float scale, float *dlogp, ppo_pg_stats *st);

/* Value loss 0.5 * mean((v - ret)^2); with clip > 0 the clipped form
 * 0.5 * mean(max((v - ret)^2, (old_v + clamp(v - old_v, -clip, clip) - ret)^2)) (PPO2 / TRL).
 * dv (may be NULL) = scale * d loss / d v; clipfrac (may be NULL) = fraction where the clipped
 * term is the larger one (TRL's val/clipfrac). Returns the loss. */
double ppo_value_loss(const float *v, const float *old_v, const float *ret, const uint8_t *mask, long n, float clip,
                      float scale, float *dv, double *clipfrac);

/* KL estimators of KL(new || ref) from samples drawn from `new`, masked means:
 * k1 = mean(logp_new - logp_ref), k3 = mean(exp(r) - 1 - r) with r = logp_ref - logp_new. */
void ppo_kl(const float *logp_new, const float *logp_ref, const uint8_t *mask, long n, double *k1, double *k3);

/* 1 - Var(ret - v) / Var(ret) (population variances, masked); NaN when Var(ret) == 0. */
double ppo_explained_variance(const float *v, const float *ret, const uint8_t *mask, long n);

/* ---- policies ---------------------------------------------------------------------------------- */

/* Categorical over rows of logits (n, k) with row stride ld: logp[r] = log softmax(logits[r])[act[r]]
 * and, when ent != NULL, ent[r] = -sum p log p. */
void ppo_categorical_fwd(const float *logits, long ld, int n, int k, const int32_t *act, float *logp, float *ent);
/* dlogits (n, k; row stride ld) = dlogp[r] * (onehot(act[r]) - p) + dent[r] * (-p * (log p + H));
 * dlogp or dent may be NULL (treated as 0). Overwrites dlogits. */
void ppo_categorical_bwd(float *dlogits, const float *logits, long ld, int n, int k, const int32_t *act,
                         const float *dlogp, const float *dent);
/* draw an action from softmax(logits row) with the caller's rng state (inverse CDF) */
int ppo_categorical_sample(const float *logits, int k, uint64_t *rng);
/* the most likely action (first on ties) */
int ppo_argmax(const float *x, int k);

/* Diagonal Gaussian with state-independent log_std (d): logp[r] = sum_j log N(act[r,j]; mean[r,j],
 * exp(log_std[j])). The entropy does not depend on the state: sum_j (log_std[j] + 0.5 log(2 pi e)). */
void ppo_gaussian_fwd(const float *mean, const float *log_std, int n, int d, const float *act, float *logp);
double ppo_gaussian_entropy(const float *log_std, int d);
/* dmean (n, d) = dlogp[r] * (a - mu) / sigma^2 (overwritten); dlog_std (d) += sum_r dlogp[r] *
 * ((a - mu)^2 / sigma^2 - 1) + dent_total (the gradient of the summed entropy term, per dim). */
void ppo_gaussian_bwd(float *dmean, float *dlog_std, const float *mean, const float *log_std, int n, int d,
                      const float *act, const float *dlogp, float dent_total);

/* ---- minibatches ------------------------------------------------------------------------------- */

/* idx = a uniformly random permutation of 0..n-1 (Fisher-Yates on the caller's rng state) */
void ppo_permutation(int *idx, int n, uint64_t *rng);

#endif
