/* eval.h — evaluation of a policy on held-out prompts: generate, then report the reward-model score,
 * the sequence-level KL to a reference, diversity, and optionally a second scorer (the gold judge).
 * `rlhf eval` is a thin wrapper; the demo calls eval_run directly.
 *
 * Samples: the prompts are taken in order, cycling, until n completions are drawn (batches of
 * `batch`, KV-cache sampling at `temperature`, at most max_new_tokens, cut after the stop token,
 * which is kept); the batch starting at sample i0 draws with seed rng_stream(seed, i0), so the same
 * seed and batch size give the same completions.
 *
 * Reported (means over the n samples):
 *   score       the scorer's score of prompt ++ completion (the reward model's, as PPO sees it;
 *               no EOS penalty)
 *   kl          Σ over completion tokens of log π(y_t) - log π_ref(y_t), on the policy's own
 *               samples: an unbiased estimate of KL(π || π_ref) over whole completions (both
 *               log-probs at the sampling temperature, as PPO's objective/kl; at temperature 1 it is
 *               the models' true KL). NaN without a reference.
 *   distinct-1/2  distinct token unigrams / bigrams over all completions, divided by their total
 *               count (Li et al. 2016, on token ids; the stop token is not counted; bigrams do not
 *               cross completions).
 *   extra       the second scorer's mean (NaN without one), e.g. the gold judge's normalised score.
 * Samples file (optional): one JSON line per sample, written whole at the end (ids beyond the
 * tokenizer, which a padded vocabulary can sample, and broken UTF-8 decode to U+FFFD):
 *   {"prompt", "completion" (decoded text, the stop token left out), "score", "kl", "extra",
 *    "tokens" (completion length, stop token included), "eos" (ended with the stop token)}.
 */
#ifndef RLHF_EVAL_H
#define RLHF_EVAL_H

#include "dataset.h"
#include "gpt2.h"
#include "kv.h"
#include "scorer.h"
#include "tok.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n;                   /* samples: 64 */
    int batch;               /* sequences sampled together: 8 */
    int max_new_tokens;      /* 32 */
    float temperature;       /* > 0: 1 */
    int32_t stop_token;      /* -1: none (callers pass the tokenizer's EOS) */
    uint64_t seed;           /* 1234 */
    gpt2_weights weights;    /* decode weights: auto (bf16 where the CPU has bf16) */
    scorer score;            /* the score (the reward model's); fn NULL: none */
    scorer extra;            /* a second scorer (the gold judge); fn NULL: none */
    const tok_tokenizer *tok;    /* decodes the samples file (required with samples_path) */
    const char *samples_path;    /* the samples JSONL, or NULL */
    void (*on_batch)(void *ud, long done, long total); /* progress (may be NULL) */
    void *ud;
} eval_opts;

eval_opts eval_defaults(void);

typedef struct {
    long n;
    double score, score_std;     /* mean and population std (NaN without a scorer) */
    double kl, kl_std;           /* NaN without a reference */
    double distinct1, distinct2;
    double extra, extra_std;     /* NaN without an extra scorer */
    double completion_length;    /* mean tokens, stop token included */
    double eos_rate;             /* share of completions that ended with the stop token */
} eval_result;

/* Sample and measure. policy: required; ref may be NULL (kl is then NaN). */
int eval_run(gpt2 *policy, gpt2 *ref, const ds_prompts *prompts, const eval_opts *o, eval_result *res, char *err,
             size_t errlen);

/* distinct-1 and distinct-2 of n sequences (seq i: ids[i][0..len[i])) */
int eval_distinct(const int32_t *const *ids, const int *len, int n, double *d1, double *d2, char *err, size_t errlen);

#endif
