/* gpt2.h — the GPT-2 transformer: configuration, parameters in one contiguous block, activations
 * sized once for a (B, T), forward and backward (fp32), per-token log-probabilities.
 *
 * Layout (llm.c's idea, with Hugging Face's tensor orientation): all parameters live in one float
 * block described by one table (gpt2_param_table), so AdamW, clipping, checkpoints and safetensors
 * I/O are loops over one array. Linear weights are stored [in, out] — the orientation of HF's
 * Conv1D — so loading and saving need no transposes; in fp32 every product goes through BLIS with
 * its thread ways chosen per shape (see model/mm.h).
 *
 * Mixed precision (gpt2_set_precision(m, GPT2_PREC_BF16)): every product of the forward and the
 * backward, attention's included, takes bf16 inputs and accumulates in fp32; the parameters,
 * gradients, AdamW state, activations, LayerNorm, softmax, log-softmax and losses stay fp32, and
 * checkpoints are unchanged. The products read bf16 copies of the weights, made when first needed
 * and refreshed only after gpt2_weights_changed(m) — so a training loop calls it once after each
 * optimizer step, and micro-batches of one step reuse the same copies:
 *
 *     gpt2_set_precision(m, GPT2_PREC_BF16);        // once; falls back to fp32 where unsupported
 *     for (step...) {
 *         for (micro-batch...) { gpt2_forward(...); gpt2_backward(...); }
 *         adamw_step(..., gpt2_params(m), gpt2_grads(m), ...);
 *         gpt2_weights_changed(m);                  // the bf16 copies are stale now
 *     }
 *
 * Shapes in comments: B batch, T time, C n_embd, NH heads, V vocab, L layers.
 */
#ifndef RLHF_GPT2_H
#define RLHF_GPT2_H

#include <stddef.h>
#include <stdint.h>

#include "adamw.h"

#define GPT2_ERR_LEN 512

typedef struct {
    int n_layer, n_head, n_embd, vocab_size, n_positions;
    float ln_eps; /* 1e-5 */
} gpt2_config;

/* named configurations: "tiny" (for tests and the demo), "small"... and the GPT-2 family shapes
 * "gpt2-small" (124M), "gpt2-medium"; returns 0 or -1 for an unknown name. */
int gpt2_config_named(const char *name, int vocab_size, gpt2_config *out);

enum {
    GPT2_WTE, GPT2_WPE,                       /* (V,C) (maxT,C) */
    GPT2_LN1W, GPT2_LN1B,                     /* (L,C) */
    GPT2_QKVW, GPT2_QKVB,                     /* (L,C,3C) (L,3C) */
    GPT2_ATTPROJW, GPT2_ATTPROJB,             /* (L,C,C) (L,C) */
    GPT2_LN2W, GPT2_LN2B,                     /* (L,C) */
    GPT2_FCW, GPT2_FCB,                       /* (L,C,4C) (L,4C) */
    GPT2_FCPROJW, GPT2_FCPROJB,               /* (L,4C,C) (L,C) */
    GPT2_LNFW, GPT2_LNFB,                     /* (C) */
    GPT2_NUM_TENSORS
};

typedef struct {
    const char *name;   /* our name, e.g. "qkvw" */
    size_t offset;      /* in floats, into the parameter block */
    size_t numel;
    int per_layer;      /* 1: numel is L * layer_numel */
    int ndim;           /* of one layer's tensor (or of the whole tensor) */
    int shape[2];
    int decay;          /* AdamW weight decay applies (2-D weights only) */
} gpt2_tensor;

/* Offset (in floats) of layer l's copy of tensor k in the parameter block (l ignored for tensors
 * outside the blocks); the same offset indexes the gradient block. */
static inline size_t gpt2_off(const gpt2_tensor *tb, int k, int l)
{
    return tb[k].offset + (tb[k].per_layer ? (size_t)l * (size_t)tb[k].shape[0] * (size_t)tb[k].shape[1] : 0);
}

typedef struct gpt2 gpt2;

int gpt2_create(gpt2 **out, const gpt2_config *cfg, char *err, size_t errlen);
void gpt2_free(gpt2 *m);

const gpt2_config *gpt2_cfg(const gpt2 *m);
size_t gpt2_num_params(const gpt2 *m);
float *gpt2_params(gpt2 *m);              /* the whole parameter block */
const float *gpt2_params_const(const gpt2 *m);
float *gpt2_grads(gpt2 *m);               /* the gradient block, same layout */
const gpt2_tensor *gpt2_param_table(const gpt2 *m); /* GPT2_NUM_TENSORS entries */

/* threads for this model's matrix products and kernels (<= 0: OpenMP's default) */
void gpt2_set_threads(gpt2 *m, int n);
int gpt2_threads(const gpt2 *m);

/* ---- precision ------------------------------------------------------------------------------------ */
typedef enum { GPT2_PREC_FP32 = 0, GPT2_PREC_BF16 = 1 } gpt2_precision;

/* "fp32" or "bf16" -> *out; -1 for anything else */
int gpt2_precision_parse(const char *name, gpt2_precision *out);
const char *gpt2_precision_name(gpt2_precision p);

/* Ask for a precision of the products (default fp32). bf16 needs a CPU with AVX512-BF16 or AMX and
 * a build with oneDNN; without them the model stays fp32 — nothing is printed: gpt2_precision(m)
 * says what is in effect and gpt2_precision_note(m) why (or which engine runs the products).
 * Returns the precision in effect. fp32 is exactly the fp32 computation of a model that never asked
 * (same numbers, bit for bit). */
gpt2_precision gpt2_set_precision(gpt2 *m, gpt2_precision p);
gpt2_precision gpt2_precision_of(const gpt2 *m);
const char *gpt2_precision_note(const gpt2 *m);

/* Say that the parameters changed (an optimizer step, a load into gpt2_params): the bf16 weight
 * copies are rebuilt before the next product that reads them. Bumps gpt2_weights_version, which other
 * holders of copies (a decoder) may compare. Cheap: nothing is copied until needed. */
void gpt2_weights_changed(gpt2 *m);
uint64_t gpt2_weights_version(const gpt2 *m);

/* A copy another module derives from the weights (the decoder's bf16 weights, model/kv.h), kept by
 * the model together with the weights version it was made from, and freed (free_fn) with the model:
 * the owner module rebuilds it only when version != gpt2_weights_version(m). Zeroed until used. */
typedef struct {
    void *data;
    void (*free_fn)(void *data);
    uint64_t version;
} gpt2_derived;
gpt2_derived *gpt2_decode_copy(gpt2 *m);

/* GPT-2's initialisation: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), biases 0, LN 1/0. */
void gpt2_init_random(gpt2 *m, uint64_t seed);

/* Forward for tokens (B,T), T <= n_positions. Activations are (re)sized on the first call for a
 * given B*T and reused after; nothing is allocated when B and T stay within that size.
 * targets (B,T) may be NULL (no log-probs); mask (B,T) may be NULL (all 1).
 * Fills: hidden (B,T,C) after the final LayerNorm; logits (B,T,V); logp (B,T) = log softmax of the
 * logits at targets; returns the mean of -logp over masked positions (0 when targets is NULL). */
int gpt2_forward(gpt2 *m, const int32_t *tokens, const int32_t *targets, const float *mask, int B, int T,
                 float *loss, char *err, size_t errlen);

/* The same forward with the logits multiplied by 1/temperature (temperature > 0) before the
 * log-softmax, as the sampler (model/kv.h) draws: logp are then log-probabilities under the tempered
 * distribution (PPO recomputes its samples' log-probs at the sampling temperature), gpt2_logits holds
 * the tempered logits, and gpt2_backward differentiates through the scaling. Temperature 1 gives
 * exactly gpt2_forward. */
int gpt2_forward_temp(gpt2 *m, const int32_t *tokens, const int32_t *targets, const float *mask, int B, int T,
                      float temperature, float *loss, char *err, size_t errlen);

/* Forward through the final LayerNorm only, for scalar heads (the reward model): fills gpt2_hidden
 * and skips the tied LM head, whose (B,T,V) buffer it never allocates (at V = 50257 it is by far the
 * largest activation). Afterwards gpt2_logits is NULL, gpt2_logp is undefined, and gpt2_backward
 * takes only dhidden (its dlogp is ignored). */
int gpt2_forward_hidden(gpt2 *m, const int32_t *tokens, int B, int T, char *err, size_t errlen);

const float *gpt2_hidden(const gpt2 *m);  /* (B,T,C) of the last forward */
const float *gpt2_logits(const gpt2 *m);  /* (B,T,V); NULL after gpt2_forward_hidden */
const float *gpt2_logp(const gpt2 *m);    /* (B,T) */

/* Zero the gradient block, and note that it is zero: the next bf16 backward then writes the weight
 * gradients of its products instead of adding to them (no read of the block). So do not write the
 * block yourself between gpt2_zero_grad and the next gpt2_backward. */
void gpt2_zero_grad(gpt2 *m);

/* AdamW ranges: one per tensor, decaying the 2-D weights (wte, wpe and the linear weights). */
void gpt2_adamw_ranges(const gpt2 *m, adamw_range out[GPT2_NUM_TENSORS]);

/* Floating-point operations of one forward (or backward = 2x) at B, T: the matrix products and
 * attention, for throughput reports. */
double gpt2_flops_forward(const gpt2_config *c, int B, int T);

/* Backward of the last forward, accumulating into the gradient block. Upstream gradients:
 * dlogp (B,T): dL/dlogp for each target log-prob (NULL: the mean cross-entropy of forward's loss,
 * i.e. -mask/sum(mask)); dhidden (B,T,C): extra gradient into the final hidden states (scalar heads;
 * NULL for none). */
int gpt2_backward(gpt2 *m, const float *dlogp, const float *dhidden, char *err, size_t errlen);

#endif
