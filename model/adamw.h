/* adamw.h — AdamW with decoupled weight decay, global gradient-norm clipping and the learning-rate
 * schedule (linear warmup, then cosine decay), over one flat parameter block.
 *
 * Weight decay applies to 2-D weights only (embeddings and linear weights), never to biases or
 * LayerNorm parameters — GPT-2/nanoGPT practice; the caller says which ranges decay.
 * The update follows torch.optim.AdamW's order of operations exactly:
 *   p *= 1 - lr*wd ; m = b1*m + (1-b1)*g ; v = b2*v + (1-b2)*g^2 ;
 *   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
 * Sums (the gradient norm) are taken in fixed-size chunks in a fixed order, so results do not
 * depend on the thread count. */
#ifndef RLHF_ADAMW_H
#define RLHF_ADAMW_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} adamw_hparams;

adamw_hparams adamw_defaults(void); /* lr 3e-4, betas (0.9, 0.95), eps 1e-8, wd 0.1 */

typedef struct {
    size_t offset, numel;
    int decay; /* 1: weight decay applies */
} adamw_range;

typedef struct {
    size_t n;
    float *m, *v;
    int64_t t; /* steps taken */
    double *partial; /* chunk sums for the norm */
} adamw;

int adamw_create(adamw *o, size_t n);
void adamw_free(adamw *o);

/* One step over ranges covering the block (lr given separately: it follows the schedule). */
void adamw_step(adamw *o, float *params, const float *grads, const adamw_range *ranges, size_t nranges,
                const adamw_hparams *h, float lr);

/* The same step with the gradients scaled by grad_scale on the fly (clipping fused into the update:
 * one pass over the gradients fewer). grad_scale = clip_scale(norm, max_norm). */
void adamw_step_scaled(adamw *o, float *params, const float *grads, float grad_scale, const adamw_range *ranges,
                       size_t nranges, const adamw_hparams *h, float lr);
/* torch's clip_grad_norm_ coefficient: min(1, max_norm / (norm + 1e-6)); 1 when max_norm <= 0 */
float clip_scale(double norm, double max_norm);

/* L2 norm of g[0..n) (deterministic). scratch: adamw's partial buffer, or NULL to allocate. */
double grad_norm(const float *g, size_t n, double *scratch);
/* Scale g so its norm is at most max_norm (no-op when max_norm <= 0); returns the norm before. */
double grad_clip(float *g, size_t n, double max_norm, double *scratch);

/* Linear warmup for warmup steps, then cosine decay from max_lr to min_lr at step total. */
float lr_schedule(long step, long warmup, long total, float max_lr, float min_lr);

#endif
