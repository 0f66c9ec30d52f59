/* kv.h — GPT-2 inference with a key/value cache, and sampling.
 *
 * One function serves prefill and decode: gpt2_kv_forward takes R rows, each (sequence b, token),
 * appends each row's token to its sequence (rows of one sequence in order), and returns the logits
 * of the rows asked for. Sequences keep their own lengths, so prompts of different lengths share a
 * batch without padding, and each decode step is one batched matrix product per layer.
 *
 * Sampling: temperature (0 = greedy), top-k, top-p, stop at a token, max new tokens. Sequence b
 * draws from its own RNG stream rng_stream(seed, b) (tokenizer/rng.h), a function of the seed and
 * the row's index alone, so a sequence's text does not depend on what else is in the batch, and the
 * same seed gives the same text. */
#ifndef RLHF_KV_H
#define RLHF_KV_H

#include "gpt2.h"

#include <stdint.h>

typedef struct gpt2_kv gpt2_kv;

/* A cache for up to B sequences of up to maxT tokens (maxT <= n_positions). */
int gpt2_kv_create(gpt2_kv **out, const gpt2 *m, int B, int maxT, char *err, size_t errlen);
void gpt2_kv_free(gpt2_kv *kv);
void gpt2_kv_reset(gpt2_kv *kv);              /* all sequences empty */
int gpt2_kv_len(const gpt2_kv *kv, int b);    /* tokens held for sequence b */

/* Weights that decode steps (calls of up to 64 rows) read: the fp32 parameters, or a bf16 copy
 * (round to nearest even; activations and sums stay fp32 — on CPUs with AMX, calls of 4 or more
 * rows also round the activations to bf16 for the tile products), which halves the bytes a step
 * reads from memory: ~2x faster decoding, logits within ~1e-2 of their scale. Calls with more rows
 * (prompts) always use the fp32 parameters. GPT2_W_AUTO: bf16 where the CPU has bf16 instructions
 * (AVX512-BF16 or AMX), fp32 elsewhere.
 *
 * The bf16 copy (~250 MB at the 124M shape, ~0.4-0.65 s to make there) belongs to the model: made
 * on the first decode step that needs it and kept while gpt2_weights_version(m) stays the same, so
 * every cache and every gpt2_sample call of that model shares it, and the first decode step after
 * gpt2_weights_changed(m) (an optimizer step) rebuilds it from the new weights. */
typedef enum { GPT2_W_F32 = 0, GPT2_W_BF16 = 1, GPT2_W_AUTO = 2 } gpt2_weights;

/* "fp32", "bf16" or "auto" -> *out; 0, or -1 for anything else */
int gpt2_weights_parse(const char *name, gpt2_weights *out);
const char *gpt2_weights_name(gpt2_weights w);
extern const char *const gpt2_weights_names[]; /* indexed by gpt2_weights, NULL-terminated (CLI enums) */
/* GPT2_W_AUTO -> what this CPU gets (see above); the others unchanged */
gpt2_weights gpt2_weights_resolve(gpt2_weights w);

/* Choose the cache's decode weights (default fp32). Nothing is copied here. */
int gpt2_kv_set_weights(gpt2_kv *kv, const gpt2 *m, gpt2_weights w, char *err, size_t errlen);

/* Make the model's bf16 decode copy now unless it is current (decode steps do this when needed;
 * for callers that want the cost outside a timed region). */
int gpt2_decode_weights_ready(gpt2 *m, char *err, size_t errlen);

/* Append rows: seq[r] in 0..B-1, tok[r]. For each r with want[r] != 0 (want NULL: every row), the
 * next row of logits (V floats) is written to logits, in row order. */
int gpt2_kv_forward(gpt2 *m, gpt2_kv *kv, int R, const int *seq, const int32_t *tok, const uint8_t *want,
                    float *logits, char *err, size_t errlen);

typedef struct {
    float temperature;   /* 0: greedy */
    int top_k;           /* 0: off */
    float top_p;         /* 1: off */
    int max_new_tokens;
    int32_t stop_token;  /* -1: none; the stop token is kept in the output */
    uint64_t seed;
    gpt2_weights weights; /* decode weights (see gpt2_kv_set_weights) */
    long first_row;      /* row b draws from stream (seed, first_row + b): a batch split across
                          * processes samples each row as the whole batch would (0 by default) */
} gpt2_sample_opts;

gpt2_sample_opts gpt2_sample_defaults(void); /* temperature 1, top_k 0, top_p 1, 64 new tokens, no stop, fp32
                                               * weights (callers that decode for speed ask for GPT2_W_AUTO) */

/* Sample continuations of B prompts (prompt b: prompts[b][0..plen[b])). out[b] receives up to
 * max_new_tokens ids (caller allocates B * max_new_tokens), olen[b] how many. Optionally logp[b][i]
 * (same shape as out) gets the log-probability of each sampled token under the distribution it was
 * actually drawn from, for RL rollouts: softmax(logits / temperature) over the top-k / top-p
 * support, renormalised there (without top-k/top-p: the whole tempered softmax; temperature 0: the
 * argmax's log-probability at temperature 1). The sampler's own numbers: bf16 decode weights and the
 * fast exp make them differ slightly from a full forward's (rlhf/rl.h logs the difference). */
int gpt2_sample(gpt2 *m, int B, const int32_t *const *prompts, const int *plen, const gpt2_sample_opts *o,
                int32_t *out, int *olen, float *logp, char *err, size_t errlen);

#endif
