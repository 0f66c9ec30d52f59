/* compare.c — every model on the same held-out prompts with the same seed, each evaluation a cached
 * stage, then results.json (see compare.h). The demo's eval stage and `rlhf compare` both run this,
 * so their numbers come from one place. */
#include "compare.h"

#include "checkpoint.h"
#include "corpus.h"
#include "dataset.h"
#include "eval.h"
#include "fileio.h"
#include "hf.h"
#include "probe.h"
#include "stats.h"
#include "tok.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATHN COMPARE_PATHN
/* bump when an evaluation's code changes what it produces: every cached evaluation is then redone */
#define COMPARE_VERSION 1

compare_opts compare_defaults(void)
{
    return (compare_opts){.samples_per_prompt = 1, .max_prompt_len = 16, .max_new_tokens = 24, .batch = 32,
                          .temperature = 0.8, .seed = 1234, .threads = 1, .weights = GPT2_W_AUTO,
                          .collapse_ratio = 0.7};
}

/* ---- samples files ---------------------------------------------------------------------------------- */

void compare_samples_free(compare_samples *s)
{
    for (long i = 0; i < s->n; i++) json_decref(s->line[i]);
    free(s->line);
    s->line = NULL;
    s->n = 0;
}

int compare_samples_read(const char *path, long n, compare_samples *s, char *err, size_t errlen)
{
    size_t len;
    char *text = fio_read_all(path, &len, err, errlen);
    if (!text) return -1;
    s->line = calloc((size_t)n + 1, sizeof *s->line);
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
    if (rc) compare_samples_free(s);
    return rc;
}

const char *compare_sample_str(const compare_samples *s, long i, const char *key)
{
    const json_t *j = json_object_get(s->line[i], key);
    const char *v = json_string_value(j);
    return v && strlen(v) == json_string_length(j) ? v : "";
}

double compare_sample_num(const compare_samples *s, long i, const char *key)
{
    json_t *v = json_object_get(s->line[i], key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* ---- content ids --------------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the regular files of dir, not hidden, sorted (names[0..*n) owned by the caller) */
static char **list_files(const char *dir, size_t *n, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        fio_fail(err, errlen, "%s: cannot open the folder", dir);
        return NULL;
    }
    char **v = NULL, p[PATHN];
    size_t cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] == '.' || stat(fio_join(p, sizeof p, dir, e->d_name), &st) || !S_ISREG(st.st_mode)) continue;
        if (*n == cap) {
            char **g = realloc(v, (cap = 2 * cap + 8) * sizeof *v);
            if (!g) break;
            v = g;
        }
        if (!(v[*n] = strdup(e->d_name))) break;
        ++*n;
    }
    closedir(d);
    if (v) qsort(v, *n, sizeof *v, by_name);
    return v ? v : calloc(1, sizeof *v);
}

/* key: FNV-1a-64 of the file's bytes (hex), into id */
static int add_file_id(json_t *id, const char *key, const char *path, char *err, size_t errlen)
{
    char h[17];
    size_t len;
    char *text = fio_read_all(path, &len, err, errlen);
    if (!text) return -1;
    snprintf(h, sizeof h, "%016" PRIx64, corpus_hash(text, len));
    free(text);
    return json_object_set_new(id, key, json_string(h)) ? fio_fail(err, errlen, "out of memory") : 0;
}

json_t *compare_folder_id(const char *dir, const char *const *names, char *err, size_t errlen)
{
    json_t *id = json_object();
    size_t n = 0;
    char **all = names ? NULL : list_files(dir, &n, err, errlen);
    int rc = id && (names || all) ? 0 : -1;
    char p[PATHN];
    for (size_t i = 0; rc == 0 && i < n; i++) rc = add_file_id(id, all[i], fio_join(p, sizeof p, dir, all[i]), err, errlen);
    for (size_t i = 0; rc == 0 && names && names[i]; i++)
        if (fio_exists(fio_join(p, sizeof p, dir, names[i]))) rc = add_file_id(id, names[i], p, err, errlen);
    for (size_t i = 0; i < n; i++) free(all[i]);
    free(all);
    if (rc == 0 && json_object_size(id) == 0) rc = fio_fail(err, errlen, "%s: no files", dir);
    if (rc == 0) return id;
    if (!err[0]) fio_fail(err, errlen, "out of memory");
    json_decref(id);
    return NULL;
}

/* ---- run folders ----------------------------------------------------------------------------------- */

static int is_model_dir(const char *dir)
{
    char p[PATHN];
    return fio_exists(fio_join(p, sizeof p, dir, "config.json")) && fio_exists(fio_join(p, sizeof p, dir, "model.safetensors"));
}

/* settings of trainer_state.json in dir (NULL when there is none); -1 for a broken one */
static int read_state(const char *dir, json_t **settings, char *err, size_t errlen)
{
    char p[PATHN];
    *settings = NULL;
    if (!fio_exists(fio_join(p, sizeof p, dir, "trainer_state.json"))) return 0;
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) return fio_fail(err, errlen, "%s:%d:%d: %s", p, je.line, je.column, je.text);
    json_t *s = json_object_get(j, "settings");
    if (json_is_object(s)) *settings = json_incref(s);
    json_decref(j);
    return *settings ? 0 : fio_fail(err, errlen, "%s: no \"settings\" object", p);
}

/* the seed of a run: a demo stage's (the demo's seed), else the trainer's own */
static void run_seed(const char *dir, compare_run *r)
{
    char p[PATHN];
    json_t *st = fio_exists(fio_join(p, sizeof p, dir, "stage.json")) ? json_load_file(p, 0, NULL) : NULL;
    const json_t *v = json_object_get(json_object_get(st, "settings"), "seed");
    if (!json_is_integer(v)) v = json_object_get(r->settings, "seed");
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        r->has_seed = 1;
        r->seed = (uint64_t)json_integer_value(v);
    }
    json_decref(st);
}

int compare_run_open(const char *dir, compare_run *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    char p[PATHN], latest[PATHN];
    const char *state_dir = dir;
    if (is_model_dir(dir)) snprintf(r->model, sizeof r->model, "%s", dir);
    else if (is_model_dir(fio_join(p, sizeof p, dir, "model"))) snprintf(r->model, sizeof r->model, "%s", p);
    else if (ckpt_latest(dir, latest, sizeof latest, err, errlen) == 0 && is_model_dir(latest))
        snprintf(r->model, sizeof r->model, "%s", latest);
    else
        return fio_fail(err, errlen, "%s: neither a model folder nor a training run's folder (no model/, no checkpoint)", dir);
    if (read_state(state_dir, &r->settings, err, errlen)) return -1;
    if (!r->settings && ckpt_latest(dir, latest, sizeof latest, NULL, 0) == 0 && read_state(latest, &r->settings, err, errlen))
        return -1;
    const char *fam = json_string_value(json_object_get(r->settings, "family"));
    if (r->settings && !fam)
        return fio_fail(err, errlen, "%s: its trainer_state.json names no \"family\" (trained by an older rlhf: train it again)",
                        dir);
    if (!r->settings && strcmp(r->model, dir) != 0)
        return fio_fail(err, errlen, "%s: no trainer_state.json says which trainer made it (an unfinished run, or one "
                                     "made by an older rlhf)", dir);
    snprintf(r->family, sizeof r->family, "%s", fam ? fam : "model");
    run_seed(dir, r);
    return 0;
}

void compare_run_free(compare_run *r)
{
    json_decref(r->settings);
    r->settings = NULL;
}

/* ---- one model's evaluation -------------------------------------------------------------------------- */

typedef struct {
    const compare_opts *o;
    stage_runner run;            /* the models' stages, in OUT */
    int mi;                      /* the model being evaluated */
    int opened;
    tok_tokenizer *t;
    gpt2 *ref;
    ds_dataset ho;
    ds_prompts pp;
    int np;
} cmp;

static void cmp_close(cmp *c)
{
    ds_prompts_free(&c->pp);
    ds_free(&c->ho);
    gpt2_free(c->ref);
    tok_free(c->t);
}

static const char *tok_dir(const compare_opts *o) { return o->tokenizer ? o->tokenizer : o->models[0].model; }

/* the tokenizer, the reference and the prompts: loaded once, when a model is not cached */
static int cmp_open(cmp *c, char *err, size_t errlen)
{
    const compare_opts *o = c->o;
    if (c->opened) return 0;
    c->opened = 1;
    if (tok_load(tok_dir(o), &c->t, err, errlen) || hf_load_gpt2(o->models[0].model, &c->ref, err, errlen)) return -1;
    gpt2_set_threads(c->ref, o->threads);
    ds_load_opts lo = ds_load_defaults();
    lo.require_kind = DS_PROMPT_ONLY;
    lo.max_prompt_len = o->max_prompt_len;
    lo.max_len = gpt2_cfg(c->ref)->n_positions - o->max_new_tokens;
    if (lo.max_len < 1)
        return fio_fail(err, errlen, "%s: %d positions leave no room for a prompt before %d new tokens", o->models[0].model,
                        gpt2_cfg(c->ref)->n_positions, o->max_new_tokens);
    if (ds_load(&c->ho, c->t, o->prompts, &lo, err, errlen)) return -1;
    c->np = (int)(o->n_prompts > 0 && (size_t)o->n_prompts < c->ho.n ? (size_t)o->n_prompts : c->ho.n);
    if (c->np < 2) return fio_fail(err, errlen, "%s: %d prompts; a comparison needs at least 2", o->prompts, c->np);
    return ds_prompts_make(&c->ho, NULL, (size_t)c->np, &c->pp, err, errlen);
}

/* a number, or null for NaN (a measure without its scorer or reference; JSON has no NaN) */
static json_t *jreal(double v) { return isnan(v) ? json_null() : json_real(v); }

/* eval_result as JSON: every field, doubles to 17 digits (a cached result gives the same numbers) */
static int write_result(const char *dir, const eval_result *r, char *err, size_t errlen)
{
    json_t *j = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "n", (json_int_t)r->n, "score",
                          jreal(r->score), "score_std", jreal(r->score_std), "kl", jreal(r->kl), "kl_std", jreal(r->kl_std),
                          "distinct1", jreal(r->distinct1), "distinct2", jreal(r->distinct2), "extra", jreal(r->extra),
                          "extra_std", jreal(r->extra_std), "completion_length", jreal(r->completion_length), "eos_rate",
                          jreal(r->eos_rate));
    char p[PATHN], *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(j);
    int rc = s ? fio_write_atomic(fio_join(p, sizeof p, dir, "result.json"), s, strlen(s), err, errlen)
               : fio_fail(err, errlen, "out of memory");
    free(s);
    return rc;
}

static int read_result(const char *dir, eval_result *r, char *err, size_t errlen)
{
    char p[PATHN];
    json_error_t je;
    json_t *j = json_load_file(fio_join(p, sizeof p, dir, "result.json"), 0, &je);
    if (!j) return fio_fail(err, errlen, "%s:%d:%d: %s", p, je.line, je.column, je.text);
    const char *k[] = {"score", "score_std", "kl", "kl_std", "distinct1", "distinct2", "extra", "extra_std",
                       "completion_length", "eos_rate"};
    double *v[] = {&r->score, &r->score_std, &r->kl, &r->kl_std, &r->distinct1, &r->distinct2, &r->extra, &r->extra_std,
                   &r->completion_length, &r->eos_rate};
    r->n = (long)json_integer_value(json_object_get(j, "n"));
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        const json_t *x = json_object_get(j, k[i]);
        *v[i] = json_is_number(x) ? json_number_value(x) : NAN; /* NaN is written as null */
    }
    json_decref(j);
    return r->n > 0 ? 0 : fio_fail(err, errlen, "%s: no samples", p);
}

/* rlhf/stage.h's stage_fn: sample model c->mi into dir/samples.jsonl, its measures into result.json */
static int eval_one(void *arg, const char *dir, json_t *sum, char *err, size_t errlen)
{
    cmp *c = arg;
    const compare_opts *o = c->o;
    const compare_model *m = &o->models[c->mi];
    if (cmp_open(c, err, errlen)) return -1;
    gpt2 *pol = NULL;
    if (c->mi > 0) {
        if (hf_load_gpt2(m->model, &pol, err, errlen)) return -1;
        const int v = gpt2_cfg(pol)->vocab_size;
        if (v < (int)tok_vocab_size(c->t)) {
            gpt2_free(pol);
            return fio_fail(err, errlen, "%s: the model's vocabulary (%d) is smaller than the tokenizer's (%zu)", m->model, v,
                            tok_vocab_size(c->t));
        }
        gpt2_set_threads(pol, o->threads);
    }
    eval_opts eo = eval_defaults();
    eo.n = c->np * o->samples_per_prompt;
    eo.batch = o->batch;
    eo.max_new_tokens = o->max_new_tokens;
    eo.temperature = (float)o->temperature;
    eo.stop_token = tok_eot_id(c->t);
    eo.tok = c->t;
    eo.seed = o->seed;
    eo.weights = (gpt2_weights)o->weights;
    eo.score = o->score;
    eo.extra = o->gold;
    eo.on_batch = stage_on_eval_batch;
    eo.ud = o->progress ? o->progress : &c->run;
    if (o->progress) stage_part(o->progress, (double)c->mi * eo.n, (double)o->n_models * eo.n, m->name);
    char p[PATHN];
    eo.samples_path = fio_join(p, sizeof p, dir, "samples.jsonl");
    eval_result er;
    const int bad = eval_run(pol ? pol : c->ref, c->ref, &c->pp, &eo, &er, err, errlen);
    gpt2_free(pol);
    if (bad || write_result(dir, &er, err, errlen)) return -1;
    json_object_set_new(sum, "gold", json_real(er.extra));
    json_object_set_new(sum, "kl", json_real(er.kl));
    return 0;
}

/* ---- results.json ------------------------------------------------------------------------------------ */

/* the cache key of model mi (see compare.h); ref: the reference's content id */
static json_t *eval_settings(const compare_opts *o, int mi, const json_t *ref, char *err, size_t errlen)
{
    static const char *const tok_files[] = {"vocab.json", "merges.txt", "encoder.json", "vocab.bpe", NULL};
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
    json_t *model = compare_folder_id(o->models[mi].model, NULL, err, errlen);
    json_t *tok = model ? compare_folder_id(tok_dir(o), tok_files, err, errlen) : NULL;
    json_t *prompts = tok ? json_object() : NULL;
    if (!prompts || add_file_id(prompts, "fnv1a64", o->prompts, err, errlen)) {
        json_decref(model);
        json_decref(tok);
        json_decref(prompts);
        return NULL;
    }
    return json_pack("{s:o, s:O, s:o, s:o, s:i, s:i, s:i, s:i, s:i, s:f, s:s, s:O, s:O, s:s, s:i}", "model", model, "reference",
                     ref, "tokenizer", tok, "prompts", prompts, "n_prompts", o->n_prompts, "samples_per_prompt",
                     o->samples_per_prompt, "max_prompt_len", o->max_prompt_len, "max_new_tokens", o->max_new_tokens,
                     "batch", o->batch, "temperature", o->temperature, "seed", seed, "gold", o->gold_id, "score",
                     o->score_id ? o->score_id : json_null(), "weights",
                     gpt2_weights_name(gpt2_weights_resolve((gpt2_weights)o->weights)), "version", COMPARE_VERSION);
}

/* gold per prompt: the mean over its samples (sample q belongs to prompt q % np); *share: the share
 * of the samples whose completion contains `word` (data/probe.h's whole-word rule; NaN: no word) */
static int gold_per_prompt(const char *dir, int np, int k, const char *word, double *out, double *share, char *err,
                           size_t errlen)
{
    char p[PATHN];
    compare_samples s;
    if (compare_samples_read(fio_join(p, sizeof p, dir, "samples.jsonl"), (long)np * k, &s, err, errlen)) return -1;
    long with = 0;
    for (int i = 0; i < np; i++) {
        out[i] = 0;
        for (int j = 0; j < k; j++) {
            out[i] += compare_sample_num(&s, i + (long)j * np, "extra") / k;
            const char *c = compare_sample_str(&s, i + (long)j * np, "completion");
            if (word) with += probe_has_word(c, strlen(c), word);
        }
    }
    *share = word ? (double)with / ((double)np * k) : NAN;
    compare_samples_free(&s);
    return 0;
}

/* a model's results.json entry: its family, then its measures; diff holds its per-prompt gain */
static json_t *entry(const compare_opts *o, const char *family, const eval_result *er, const double *diff, int np,
                     int is_ref, double d2_ref, double share)
{
    const double gain = stats_mean(diff, np), half = 1.96 * stats_sd(diff, np, 1) / sqrt((double)np);
    json_t *m = json_pack("{s:s, s:o, s:o, s:o, s:o}", "family", family, "gold_reward", jreal(er->extra), "rm_reward",
                          jreal(er->score), "kl", jreal(er->kl), "distinct2", jreal(er->distinct2));
    if (!m) return NULL;
    json_object_set_new(m, "gold_std", jreal(er->extra_std));
    json_object_set_new(m, "gain", jreal(gain));
    json_object_set_new(m, "gain_ci95", is_ref ? json_pack("[f, f]", 0.0, 0.0) : json_pack("[f, f]", gain - half, gain + half));
    json_object_set_new(m, "distinct1", jreal(er->distinct1));
    json_object_set_new(m, "completion_length", jreal(er->completion_length));
    json_object_set_new(m, "eos_rate", jreal(er->eos_rate));
    json_object_set_new(m, "collapsed", json_boolean(er->distinct2 < o->collapse_ratio * d2_ref));
    if (o->hack_word) json_object_set_new(m, "hack_word_share", jreal(share));
    return m;
}

/* every model's entry, from its folder OUT/<name> (result.json, samples.jsonl) */
static int collect(const compare_opts *o, json_t *models, int *np_out, char *err, size_t errlen)
{
    const int k = o->samples_per_prompt;
    double *g = NULL, *gref = NULL, *diff = NULL, d2_ref = NAN, share = NAN;
    int np = 0, rc = 0;
    for (int i = 0; rc == 0 && i < o->n_models; i++) {
        char dir[PATHN];
        eval_result er;
        fio_join(dir, sizeof dir, o->out, o->models[i].name);
        if (read_result(dir, &er, err, errlen)) rc = -1;
        else if (i == 0) {
            np = (int)(er.n / k);
            d2_ref = er.distinct2;
            g = malloc((size_t)np * sizeof *g);
            gref = malloc((size_t)np * sizeof *gref);
            diff = malloc((size_t)np * sizeof *diff);
            if (!g || !gref || !diff) rc = fio_fail(err, errlen, "out of memory");
        }
        if (rc == 0 && er.n != (long)np * k) rc = fio_fail(err, errlen, "%s: %ld samples, expected %d", dir, er.n, np * k);
        if (rc == 0) rc = gold_per_prompt(dir, np, k, o->hack_word, i == 0 ? gref : g, &share, err, errlen);
        for (int p = 0; rc == 0 && p < np; p++) diff[p] = (i == 0 ? gref[p] : g[p]) - gref[p];
        json_t *m = rc == 0 ? entry(o, o->models[i].family, &er, diff, np, i == 0, d2_ref, share) : NULL;
        if (rc == 0 && (!m || json_object_set_new(models, o->models[i].name, m))) rc = fio_fail(err, errlen, "out of memory");
    }
    free(g);
    free(gref);
    free(diff);
    *np_out = np;
    return rc;
}

static int write_results(const compare_opts *o, json_t *models, int np, char *err, size_t errlen)
{
    char seed[32], p[PATHN];
    snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
    json_t *res = json_pack("{s:i, s:i, s:f, s:i, s:i, s:i, s:s, s:s, s:O}", "prompts", np, "samples_per_prompt",
                            o->samples_per_prompt, "temperature", o->temperature, "max_new_tokens", o->max_new_tokens,
                            "max_prompt_len", o->max_prompt_len, "batch", o->batch, "sampling_seed", seed, "reference",
                            o->models[0].name, "models", models);
    if (res && o->hack_word) json_object_set_new(res, "hack_word", json_string(o->hack_word));
    char *text = res ? json_dumps(res, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(res);
    int rc = text ? fio_write_atomic(fio_join(p, sizeof p, o->out, "results.json"), text, strlen(text), err, errlen)
                  : fio_fail(err, errlen, "out of memory");
    free(text);
    return rc;
}

/* a name that is a safe folder name and a results.json key */
static int check_names(const compare_opts *o, char *err, size_t errlen)
{
    for (int i = 0; i < o->n_models; i++) {
        const char *n = o->models[i].name;
        if (!n || !*n || n[0] == '.' || strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+=-") != strlen(n))
            return fio_fail(err, errlen, "model name '%s': use letters, digits and ._+=- (not first '.')", n ? n : "");
        for (int j = 0; j < i; j++)
            if (strcmp(n, o->models[j].name) == 0) return fio_fail(err, errlen, "two models are named '%s'", n);
    }
    return 0;
}

int compare_evaluate(const compare_opts *o, char *err, size_t errlen)
{
    cmp c = {.o = o, .run = {.out = o->out, .on_event = o->on_event, .ud = o->ud}};
    int rc = 0;
    if (o->n_models < 1 || !o->prompts || !o->gold.fn || o->samples_per_prompt < 1 || o->batch < 1 || o->max_new_tokens < 1 ||
        o->max_prompt_len < 1 || !(o->temperature > 0))
        rc = fio_fail(err, errlen, "compare: needs models, prompts, a reward, and positive sampling settings");
    if (rc == 0) rc = check_names(o, err, errlen);
    if (rc == 0) rc = fio_mkdirs(o->out, err, errlen);
    json_t *ref = rc == 0 ? compare_folder_id(o->models[0].model, NULL, err, errlen) : NULL;
    if (rc == 0 && !ref) rc = -1;
    for (int i = 0; rc == 0 && i < o->n_models; i++) {
        char hash[STAGE_HASH_LEN];
        json_t *s = eval_settings(o, i, ref, err, errlen);
        c.mi = i;
        rc = s ? stage_run(&c.run, o->models[i].name, s, eval_one, &c, hash, err, errlen) : -1;
    }
    json_decref(ref);
    cmp_close(&c);
    json_t *models = rc == 0 ? json_object() : NULL;
    int np = 0;
    if (rc == 0) rc = models ? collect(o, models, &np, err, errlen) : fio_fail(err, errlen, "out of memory");
    if (rc == 0) rc = write_results(o, models, np, err, errlen);
    json_decref(models);
    return rc;
}
