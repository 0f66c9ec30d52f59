/* scorer.h — the one type every reward source implements: a function that scores rows of
 * prompt ++ completion tokens, plus its user data. The gold judge's scorer lives here; the reward
 * model's in rlhf/rm.h. PPO, evaluation and the demo take a scorer and know nothing of where the
 * scores come from.
 *
 * Rows: tokens (B,T) right-padded; row b has lengths[b] real tokens of which the first
 * prompt_lengths[b] are the prompt; the completion may end with the stop token (EOS). */
#ifndef RLHF_SCORER_H
#define RLHF_SCORER_H

#include "judge.h"
#include "tok.h"

#include <stddef.h>
#include <stdint.h>

/* scores[b] for each of the B rows; 0, or -1 with one line in err */
typedef int (*scorer_fn)(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                         float *scores, char *err, size_t errlen);

typedef struct {
    scorer_fn fn;            /* NULL: no scorer */
    void *ud;
} scorer;

/* score B rows with s (s->fn must be set) */
static inline int scorer_score(const scorer *s, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B,
                               int T, float *scores, char *err, size_t errlen)
{
    return s->fn(s->ud, tokens, lengths, prompt_lengths, B, T, scores, err, errlen);
}

/* The tokens of row b's completion (after its prompt), a final stop token (>= 0) left out; returns
 * their count. */
int scorer_completion(const int32_t *tokens, const int *lengths, const int *prompt_lengths, int b, int T, int32_t stop,
                      const int32_t **out);

/* The gold judge as a scorer: each completion (scorer_completion) decoded with t (ids past the
 * tokenizer become U+FFFD) and scored by j; the score is judge_result.norm. */
typedef struct {
    const judge *j;
    const tok_tokenizer *t;
    int32_t stop_token;      /* -1: none */
} scorer_judge;

scorer scorer_judge_make(scorer_judge *g);

#endif
