/* reward.h — reward functions for RL (PPO, GRPO, RLOO) and `rlhf eval`: the `--reward` specs parsed
 * into sources, each one a scorer (data/scorer.h), and their weighted sum as one scorer.
 *
 * ---- Specs ------------------------------------------------------------------------------------
 *   rm:DIR            a reward model folder (`rlhf rm`); opened by rlhf/ (rl_reward_open in rlhf/rl.h),
 *                     since data/ cannot load models
 *   judge[:LEXICON]   the gold lexicon judge (data/judge.h; default lexicon: AFINN-165)
 *   cmd:PROGRAM ARGS  an external program (below). The spec's own text is split at whitespace (no
 *                     quoting), and the arguments after it that do not start another source (rm:,
 *                     judge, cmd:) are its arguments too, each as given: `--reward cmd:python3
 *                     score.py`, `--reward 'cmd:python3 score.py --strict'` and `--reward 'cmd:sh -c'
 *                     'echo 1'` all work (an argument that starts with "--" must sit inside the
 *                     quoted spec, or the option parser takes it).
 * The combined score of a row is Σ_i w_i · score_i (TRL's reward_weights; default every w_i = 1).
 *
 * ---- The external program protocol --------------------------------------------------------------
 * Started once (posix_spawnp, PATH searched, in its own process group), it reads one JSON object
 * per completion on its standard input,
 *     {"prompt": "<decoded prompt>", "completion": "<decoded completion, stop token left out>"}\n
 * and writes one number per line on its standard output, in order. Records go batch by batch: all
 * of a batch is sent, then its answers are read (both at once, with poll(), so neither side blocks
 * on a full pipe); a program may answer each line as it comes or the whole batch at the end.
 * What it writes on its standard error is kept (the last line goes into error messages), not shown.
 * A run stops, with one line naming the program and the record ("record N (row r of batch k):
 * prompt "…", completion "…""), when the program
 *   - exits or dies before answering every record of a batch (its status or signal is named),
 *   - gives no answer for timeout seconds (it is then killed: SIGKILL to its process group),
 *   - writes a line that is not one finite number, or more lines than records.
 * After a failure the scorer refuses every further batch. At the end its input is closed (EOF) and
 * it gets a second to exit before it is killed.
 */
#ifndef RLHF_REWARD_H
#define RLHF_REWARD_H

#include "scorer.h"
#include "tok.h"

#include <stddef.h>
#include <stdint.h>

#define REWARD_MAX 8               /* sources in one set */
#define REWARD_TIMEOUT_DEFAULT 60  /* seconds a program may take to answer a batch */

/* ---- one external program -------------------------------------------------------------------- */

typedef struct reward_cmd reward_cmd;

/* Start argv[0] with its arguments (argv NULL-terminated). t decodes the rows (ids beyond it
 * become U+FFFD); stop (-1: none) is left out of completions; timeout_s > 0. */
int reward_cmd_start(reward_cmd **out, char *const *argv, const tok_tokenizer *t, int32_t stop, double timeout_s,
                     char *err, size_t errlen);
scorer reward_cmd_scorer(reward_cmd *c);
/* close its input, give it a second, then kill it; NULL is fine */
void reward_cmd_free(reward_cmd *c);
/* The protocol's answers: the complete lines of buf[0..len) into scores[*have..B), *have advancing,
 * *used the bytes of the lines taken (a last line without its '\n' waits for more). Each line is
 * one finite number (blanks around it allowed). 0; or -1 with the offending line quoted into bad
 * (nbad bytes, one line) when a line is anything else or comes after the B-th. */
int reward_cmd_parse_lines(const uint8_t *buf, size_t len, float *scores, int B, int *have, size_t *used, char *bad,
                           size_t nbad);

/* ---- a set of sources ----------------------------------------------------------------------- */

typedef enum { REWARD_RM, REWARD_JUDGE, REWARD_CMD } reward_kind;

typedef struct {
    reward_kind kind;
    char name[64];           /* for metrics rewards/<name>/mean: "rm:<folder name>", "judge", "cmd:<program>" */
    char *arg;               /* rm: the folder; judge: the lexicon (NULL: the default); cmd: the program */
    char **argv;             /* cmd: the program and its arguments, NULL-terminated */
    float weight;
    scorer s;                /* set once opened */
    void *owned;             /* what s works on, released with release(owned) */
    void (*release)(void *owned);
    double mean, std;        /* of the last batch's scores (population std) */
} reward_source;

typedef struct {
    reward_source src[REWARD_MAX];
    int n;
    float *buf;              /* (n, cap) the sources' scores of one batch */
    int cap;
} reward_set;

/* Parse specs[0..nspecs) (see above) and the weights (nweights 0: all 1; else one per source) into
 * rs (zero it first). Errors are one line: an unknown spec, a missing folder or program, a count
 * of weights that does not match, a weight that is not finite. Nothing is opened. */
int reward_parse(reward_set *rs, const char *const *specs, size_t nspecs, const double *weights, size_t nweights,
                 char *err, size_t errlen);

/* Open the judge and cmd sources (the rm ones must be open already: rl_reward_open). */
int reward_open(reward_set *rs, const tok_tokenizer *t, int32_t stop, double timeout_s, char *err, size_t errlen);

/* The weighted sum of every source as one scorer (every source must be open). Each call also
 * leaves each source's batch mean and std in src[i].mean/std. */
scorer reward_scorer(reward_set *rs);

/* Release every source and the set's buffers; rs is zeroed. */
void reward_free(reward_set *rs);

#endif
