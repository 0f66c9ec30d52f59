/* rollout.h — a batch of sampled completions laid out for the RL core and for evaluation: prompts
 * continued by KV-cache sampling (model/kv.h), rows prompt ++ completion right-padded, the mask of
 * completion positions, and the per-token arrays the RL methods fill (log-probs under the policy and
 * the reference, values, rewards, advantages, returns) and the per-row scores.
 *
 * Layout: per-token arrays are (B, T) over row positions, as gpt2_forward's log-probs are: position
 * t holds the action "token t+1" (the log-prob of tokens[t+1], the value of the state tokens[0..t]).
 * mask[t] is 1 where token t+1 is a completion token: plen[b] - 1 <= t <= len[b] - 2. Prompt
 * positions and padding are masked out of every sum, so ragged prompts need no left padding.
 * A completion is cut after its first stop token, which is kept (the policy learns to stop). */
#ifndef RLHF_ROLLOUT_H
#define RLHF_ROLLOUT_H

#include "gpt2.h"
#include "kv.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int B, T;                /* rows filled; columns used (the longest row) */
    int max_rows, max_T, max_new; /* capacity */
    int32_t *tokens;         /* (B,T) prompt ++ completion, then pad */
    int32_t *targets;        /* (B,T) tokens[t+1]; pad at the end */
    uint8_t *mask;           /* (B,T) 1 where targets[t] is a completion token */
    float *fmask;            /* the same as floats (gpt2_forward's mask) */
    int *plen, *len;         /* prompt tokens, real tokens per row */
    uint8_t *has_stop;       /* (B) the completion ends with the stop token */
    float *logp, *ref_logp, *values;  /* (B,T) per token (0 where masked out) */
    float *slogp;            /* (B,T) the sampler's own log-probs (rollout_sample; 0 where masked out) */
    float *rewards, *adv, *ret;       /* (B,T) */
    float *scores;           /* (B) the reward after any penalty */
    float *raw_scores;       /* (B) the scorer's */
    int32_t *gen;            /* (max_rows, max_new) sampled tokens, before the layout */
    float *glogp;            /* (max_rows, max_new) their log-probs under the sampler */
    int *glen;               /* (max_rows) their counts */
} rollout;

/* Room for max_rows rows of up to max_T tokens, of which up to max_new are sampled. */
int rollout_create(rollout *r, int max_rows, int max_T, int max_new, char *err, size_t errlen);
void rollout_free(rollout *r);

/* Lay out B rows: prompt b (plen[b] >= 1 tokens) followed by completion b (clen[b] tokens of
 * comp + b*comp_stride), cut after its first stop token (stop < 0: none), padded with pad. Fills
 * tokens, targets, mask, fmask, plen, len, has_stop; zeroes the per-token arrays. A row that does
 * not fit max_T, or an empty completion, is an error. */
int rollout_set(rollout *r, int B, const int32_t *const *prompts, const int *plen, const int32_t *comp, int comp_stride,
                const int *clen, int32_t stop, int32_t pad, char *err, size_t errlen);

/* Sample B completions of the prompts with m (so->max_new_tokens <= max_new; so->stop_token ends
 * them) and lay them out (rollout_set, padded with the stop token, or 0 without one); slogp gets
 * the sampler's log-probs of the completion tokens (gpt2_sample's, at so's temperature, top-k, top-p
 * and decode weights). */
int rollout_sample(rollout *r, gpt2 *m, int B, const int32_t *const *prompts, const int *plen, const gpt2_sample_opts *so,
                   char *err, size_t errlen);

/* rollout_sample's second half: lay out the B rows already sampled into r->gen, r->glen and r->glogp
 * (row stride so->max_new_tokens), e.g. by several processes each sampling its share of them. */
int rollout_layout(rollout *r, int B, const int32_t *const *prompts, const int *plen, const gpt2_sample_opts *so,
                   char *err, size_t errlen);

/* rows [lo, hi) of r as a rollout of their own: the same buffers, offset (nothing is copied) */
rollout rollout_rows(const rollout *r, int lo, int hi);

/* Log-probabilities of the completion tokens under m at temperature (> 0), into out (B,T; 0 where
 * masked out). The forward leaves m's hidden states for a value head. */
int rollout_logprobs(gpt2 *m, const rollout *r, float temperature, float *out, char *err, size_t errlen);

/* Sequence sums over the mask: out[b] = Σ_t (a[b,t] - (b_ ? b_[b,t] : 0)). */
void rollout_seq_sum(const rollout *r, const float *a, const float *b_, double *out);

#endif
