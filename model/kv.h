/* kv.h — GPT-2 inference with a key/value cache, and sampling.
 *
 * One function serves prefill and decode: gpt2_kv_forward takes R rows, each (sequence b, token),
 * appends each row's token to its sequence (rows of one sequence in order), and returns the logits
 * of the rows asked for. Sequences keep their own lengths, so prompts of different lengths share a
 * batch without padding, and each decode step is one batched matrix product per layer.
 *
 * Sampling: temperature (0 = greedy), top-k, top-p, stop at a token, max new tokens. Each sequence
 * draws from its own RNG stream seeded by (seed, index), so a sequence's text does not depend on
 * what else is in the batch, and the same seed gives the same text. */
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
} gpt2_sample_opts;

gpt2_sample_opts gpt2_sample_defaults(void); /* temperature 1, top_k 0, top_p 1, 64 new tokens, no stop */

/* Sample continuations of B prompts (prompt b: prompts[b][0..plen[b])). out[b] receives up to
 * max_new_tokens ids (caller allocates B * max_new_tokens), olen[b] how many. Optionally logp[b][i]
 * (same shape as out) gets the log-probability of each sampled token under the sampling
 * distribution's temperature-scaled softmax (before top-k/top-p), for RL rollouts. */
int gpt2_sample(gpt2 *m, int B, const int32_t *const *prompts, const int *plen, const gpt2_sample_opts *o,
                int32_t *out, int *olen, float *logp, char *err, size_t errlen);

#endif
