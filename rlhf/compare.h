/* compare.h — every model on the same held-out prompts with the same sampling random numbers, each
 * evaluation cached: what `rlhf compare` and the demo's eval stage run, so both write the same
 * results.json and the report (tools/report.h) reads them alike.
 *
 *     compare_model m[3] = {{"sft", "sft", "out/sft/model"}, {"dpo", "dpo", "out/dpo/model"}, ...};
 *     compare_opts o = compare_defaults();
 *     o.out = "cmp/eval"; o.models = m; o.n_models = 3; o.prompts = "heldout.jsonl";
 *     o.gold = scorer_judge_make(&g); o.gold_id = id;   (the caller's: json_decref(id) after)
 *     if (compare_evaluate(&o, err, sizeof err)) ...
 *
 * ---- What it writes into OUT --------------------------------------------------------------------
 *   OUT/<name>/          one cached stage per model (rlhf/stage.h): samples.jsonl (eval.h's samples
 *                        file) and result.json (eval_result, doubles to 17 digits). Its settings are
 *                        the model's content (FNV-1a-64 of each file of its folder), the reference's,
 *                        the tokenizer's, the prompts file's, the sampling settings and seed, and the
 *                        scorers' ids: the same settings find the evaluation done and reuse it.
 *   OUT/results.json     {"prompts", "samples_per_prompt", "temperature", "max_new_tokens",
 *                        "max_prompt_len", "batch", "sampling_seed" (decimal string), "reference",
 *                        "models": {"<name>": {"family", "gold_reward", "rm_reward", "kl", "distinct2",
 *                        "gold_std", "gain", "gain_ci95", "distinct1", "completion_length",
 *                        "eos_rate", "collapsed", "hack_word_share" (with hack_word)}},
 *                        "hack_word" (with hack_word)}, the models in the order given (the reference,
 *                        models[0], first).
 * "gold_reward" is the measured reward (the `gold` scorer: the gold judge by default); "rm_reward" the
 * second scorer's (the reward model's), NaN without one. The gain of a model is the mean over
 * prompts of (its gold per prompt − the reference's), both sampled with the same seed (common random
 * numbers), with a 95% normal interval (1.96 × sd / √prompts); "collapsed": its distinct-2 below
 * collapse_ratio × the reference's.
 *
 * ---- Run folders --------------------------------------------------------------------------------
 * compare_run_open reads what a trainer's output folder says of itself (rlhf/trainer.h): the model
 * (DIR/model, else DIR itself when it is a model folder, else the checkpoint DIR/latest names), its
 * family and settings (DIR/trainer_state.json, else the latest checkpoint's; a plain model folder is
 * family "model"), and its seed (a demo stage's folder: the demo's seed from DIR/stage.json; else the
 * run's own "seed"). */
#ifndef RLHF_COMPARE_H
#define RLHF_COMPARE_H

#include "scorer.h"
#include "stage.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define COMPARE_PATHN 4096

typedef struct {
    const char *name;            /* its key in results.json and its folder OUT/<name> ([A-Za-z0-9._+=-], no leading '.') */
    const char *family;          /* "sft", "dpo", ... ("model": a plain model folder) */
    const char *model;           /* a Hugging Face GPT-2 folder */
} compare_model;

typedef struct {
    const char *out;
    const compare_model *models; /* models[0] is the reference of every gain, KL and the collapse line */
    int n_models;
    const char *prompts;         /* held-out prompt-only JSONL */
    const char *tokenizer;       /* NULL: the reference's folder */
    int n_prompts;               /* the file's first n (0: all) */
    int samples_per_prompt;      /* 1 */
    int max_prompt_len;          /* prompt tokens kept, from the end: 16 */
    int max_new_tokens;          /* 24 */
    int batch;                   /* sequences sampled together (it picks the RNG streams): 32 */
    double temperature;          /* 0.8 */
    uint64_t seed;               /* sampling seed, the same for every model: 1234 */
    int threads;                 /* decoding threads (results do not depend on them): 1 */
    int weights;                 /* decoding weights (a gpt2_weights, model/kv.h): auto, bf16 where the
                                    CPU has it; resolved, part of the cache key */
    double collapse_ratio;       /* 0.7 */
    const char *hack_word;       /* NULL, or a lower-case word: each model's "hack_word_share" (the share
                                    of its completions containing it, data/probe.h) and results.json's
                                    "hack_word" (read from the samples: no part of the cache key) */
    scorer gold;                 /* the measured reward (required) */
    json_t *gold_id;             /* what identifies it in the cache key (the caller's) */
    scorer score;                /* a second reward, e.g. the reward model (fn NULL: none) */
    json_t *score_id;            /* the caller's; NULL without a second reward */
    /* each model's stage events (begin, cached, end, progress); may be NULL */
    void (*on_event)(void *ud, const stage_event *e);
    void *ud;
    /* when set, the samples' progress goes to this runner instead (stage_part per model: one bar for
     * the whole evaluation, as the demo's eval stage shows it) */
    stage_runner *progress;
} compare_opts;

compare_opts compare_defaults(void);

/* Evaluate every model (or find it done) and write OUT/results.json. 0, or -1 and one line in err. */
int compare_evaluate(const compare_opts *o, char *err, size_t errlen);

/* {"<file>": "<FNV-1a-64 hex>"} over the regular files of dir (names NULL: all of them; else those
 * of the NULL-terminated list that exist), sorted by name; NULL and one line in err on failure. */
json_t *compare_folder_id(const char *dir, const char *const *names, char *err, size_t errlen);

/* what a run folder says of itself (see above) */
typedef struct {
    char model[COMPARE_PATHN];
    char family[32];
    json_t *settings;            /* the trainer's settings (NULL for a plain model folder) */
    int has_seed;
    uint64_t seed;
} compare_run;

int compare_run_open(const char *dir, compare_run *r, char *err, size_t errlen);
void compare_run_free(compare_run *r);

/* One samples file of eval_run read back (eval.h): one parsed JSON object per sample. */
typedef struct {
    json_t **line;
    long n;
} compare_samples;

/* exactly n samples, else -1 and one line in err */
int compare_samples_read(const char *path, long n, compare_samples *s, char *err, size_t errlen);
void compare_samples_free(compare_samples *s);
/* a string field; "" when missing or holding a NUL (a JSONL string with U+0000 is refused by
 * data/dataset.h) */
const char *compare_sample_str(const compare_samples *s, long i, const char *key);
double compare_sample_num(const compare_samples *s, long i, const char *key);

#endif
