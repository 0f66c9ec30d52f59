/* probe.h — what a reward pays for, two ways, so a report can show a policy chasing the reward's
 * favourite word (reward hacking), not only flag a loss of diversity.
 *
 * ---- In the text a policy writes: probe_presence ------------------------------------------------
 * Over n scored completions (e.g. samples of the SFT policy scored by the reward model), the effect
 * of a word is the mean score of the completions that contain it minus the mean of those that do
 * not:
 *     e(w) = mean{ s_j : w in text_j } - mean{ s_j : w not in text_j }
 * for the words (PROBE_MIN_LETTERS+ ASCII letters, case folded; whole words as probe_has_word) that
 * occur in at least a share min_share of the completions (and in at least 2, and not in all). The
 * argmax is the word the reward pays most for among those the policy already writes: the one a
 * policy optimising the reward can find by itself (a word the reward loves but the policy never
 * writes is out of its reach; a word it writes too rarely gives no reliable mean).
 *
 * ---- On its own: probe_words ---------------------------------------------------------------------
 * Every whole-word token of the vocabulary scored by a scorer (data/scorer.h: a reward model, the
 * judge, a program) in one fixed template:
 * The template: for each of n prompts p_i (token rows), the completion is the word's token w alone,
 * ended by the stop token, and a word's score is the mean over the prompts:
 *     s(w) = (1/n) Σ_i score(p_i ++ w ++ EOS)
 * Candidates: the tokens whose bytes are a space and PROBE_MIN_LETTERS or more lower-case ASCII
 * letters (in GPT-2's byte-level BPE a word at the start of a completion, " good", not a piece of
 * one). Why this template: the word alone carries the whole score, so s(w) is what the reward pays
 * for the word itself and not for a context around it; the mean over prompts averages out the
 * prompt. The argmax is "the word the reward pays most for".
 *
 *     probe_word *w; int n;
 *     if (probe_words(&rm_sc, tok, &prompts, 64, &w, &n, err, sizeof err) == 0) printf("%s\n", w[0].word);
 *     free(w);
 *
 * A sample "contains" a word when the word occurs in its text delimited by non-letters, ASCII case
 * folded (probe_has_word): "Good!" and "so good" contain "good", "goodness" does not. */
#ifndef RLHF_PROBE_H
#define RLHF_PROBE_H

#include "dataset.h"
#include "scorer.h"
#include "tok.h"

#include <stddef.h>
#include <stdint.h>

#define PROBE_MIN_LETTERS 3
#define PROBE_MAX_WORD 64

typedef struct {
    char word[PROBE_MAX_WORD]; /* without the leading space */
    int32_t id;                /* probe_words: its token; probe_presence: -1 */
    double score;              /* s(w), or e(w) above */
    double share;              /* probe_presence: the share of the completions that contain it */
} probe_word;

/* Score every candidate word of t with s over the prompts p (at least one; each row must leave room
 * for two more tokens), `batch` rows per scorer call. *out (malloc'd, caller frees) gets the words
 * sorted by score, best first (ties: lower id first), *n their count. -1 and one line in err when
 * the tokenizer has no candidate, has no stop token, or the scorer fails. */
int probe_words(const scorer *s, const tok_tokenizer *t, const ds_prompts *p, int batch, probe_word **out, int *n,
                char *err, size_t errlen);

/* e(w) of every word of the texts (n NUL-terminated strings, scores[j] the score of texts[j]) that
 * occurs in at least max(2, min_share * n) of them and not in all; *out (malloc'd, caller frees) sorted
 * by e(w), best first (ties: alphabetical), *nw their count (0 when no word qualifies). -1 and one
 * line in err when out of memory. */
int probe_presence(const char *const *texts, const float *scores, int n, double min_share, probe_word **out, int *nw,
                   char *err, size_t errlen);

/* 1 when text[0..n) contains word (lower case) as a whole word, ASCII case folded */
int probe_has_word(const char *text, size_t n, const char *word);

#endif
