/* trainer.c — the one training loop (trainer_fit) and what it owns: hyperparameters, the output
 * folder, metrics, checkpoints, resuming, the optimizer step over every block, the export.
 * See trainer.h. */
#include "trainer.h"

#include "clock.h"
#include "fileio.h"
#include "hf.h"
#include "mm.h"
#include "safetensors.h"

#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---- hyperparameters ------------------------------------------------------------------------------ */

const char *const trainer_precision_names[] = {"auto", "fp32", "bf16", NULL};

gpt2_precision trainer_precision_resolve(int p)
{
    if (p == TRAINER_PREC_FP32) return GPT2_PREC_FP32;
    if (p == TRAINER_PREC_BF16) return GPT2_PREC_BF16;
    return mm_bf16_available() ? GPT2_PREC_BF16 : GPT2_PREC_FP32;
}

trainer_optim trainer_optim_defaults(void)
{
    return (trainer_optim){.lr = 1e-5f, .min_lr = 0, .warmup = 0, .weight_decay = 0, .beta1 = 0.9f, .beta2 = 0.999f,
                           .eps = 1e-8f, .grad_clip = 1.0f};
}

trainer_run trainer_run_defaults(void)
{
    return (trainer_run){.batch = 8, .accum = 1, .epochs = 1, .eval_every = 50, .ckpt_every = 500, .keep = 2, .seed = 42};
}

int trainer_check_hparams(const trainer_run *r, const trainer_optim *o, char *err, size_t errlen)
{
    if (!r->out || !*r->out) return fio_fail(err, errlen, "no output folder given");
    if (r->batch < 1 || r->accum < 1) return fio_fail(err, errlen, "batch and accum must be positive");
    if (r->keep < 1) return fio_fail(err, errlen, "keep at least one checkpoint (keep %d)", r->keep);
    if (r->steps <= 0 && !(r->epochs > 0)) return fio_fail(err, errlen, "give a positive number of steps or epochs");
    if (!(o->lr >= 0) || !isfinite(o->lr) || !(o->min_lr >= 0) || !isfinite(o->min_lr) || o->warmup < 0)
        return fio_fail(err, errlen, "the learning rates and the warm-up must not be negative");
    if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps > 0))
        return fio_fail(err, errlen, "AdamW needs betas in [0, 1) and a positive eps");
    return 0;
}

double trainer_progress_get(const trainer_progress *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->m[i].name, name) == 0) return p->m[i].value;
    return NAN;
}

int trainer_eval_due(const trainer_run *r, long step, long steps)
{
    return (r->eval_every > 0 && step % r->eval_every == 0) || step == steps;
}

ds_load_opts trainer_load_opts(int max_prompt_len, int max_completion_len, int n_positions, int require_kind)
{
    ds_load_opts lo = ds_load_defaults();
    lo.max_prompt_len = max_prompt_len;
    lo.max_completion_len = max_completion_len;
    lo.max_len = n_positions;
    lo.require_kind = require_kind;
    return lo;
}

int trainer_check_finite(long step, const char *what, double v, char *err, size_t errlen)
{
    if (isfinite(v)) return 0;
    return fio_fail(err, errlen, "step %ld: the %s is %s; stopping without a checkpoint", step, what,
                    isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
}

int trainer_files_own(trainer_files *fs, const char *name, void *data, size_t len, char *err, size_t errlen)
{
    if (fs->n >= TRAINER_MAX_FILES) {
        free(data);
        return fio_fail(err, errlen, "too many checkpoint files");
    }
    fs->own[fs->n] = data;
    fs->f[fs->n++] = (ckpt_file){name, data, len};
    return 0;
}

static void files_free(trainer_files *fs)
{
    for (size_t i = 0; i < fs->n; i++) free(fs->own[i]);
    memset(fs, 0, sizeof *fs);
}

void trainer_stats_add(void *tot, const void *x, const trainer_stat *f, size_t n, double share, int accum)
{
    for (size_t i = 0; i < n; i++)
        *(double *)((char *)tot + f[i].off) += *(const double *)((const char *)x + f[i].off) * share / accum;
}

void trainer_rows(const trainer *t, size_t n, size_t *lo, size_t *hi) { dp_share(n, t->rank, t->nranks, lo, hi); }

int trainer_sum(const trainer *t, double *x, size_t n, char *err, size_t errlen)
{
    return t->nranks > 1 ? dp_allreduce_f64(t->run->dp, x, n, DP_SUM, err, errlen) : 0;
}

size_t trainer_stats_metrics(const void *x, const trainer_stat *f, size_t n, trainer_metric *out)
{
    for (size_t i = 0; i < n; i++) out[i] = (trainer_metric){f[i].name, *(const double *)((const char *)x + f[i].off)};
    return n;
}

/* ---- the output folder: metrics, checkpoints, export ------------------------------------------------ */

struct trainer_io {
    char metrics_path[4096];
    FILE *mf;
    char *vocab, *merges;    /* the tokenizer's files */
    size_t nvocab, nmerges;
    json_t *resumed;         /* the checkpoint's settings, checked once prepare has set this run's */
    double t0;
};

static void io_free(struct trainer_io *io)
{
    if (!io) return;
    if (io->mf) fclose(io->mf);
    json_decref(io->resumed);
    free(io->vocab);
    free(io->merges);
    free(io);
}

/* Load the tokenizer and its files, find OUT/latest; touch nothing. */
static int io_open(trainer *t, const char *tokenizer, char *err, size_t errlen)
{
    struct trainer_io *io = t->io = calloc(1, sizeof *io);
    if (!io) return fio_fail(err, errlen, "out of memory");
    fio_join(io->metrics_path, sizeof io->metrics_path, t->run->out, "metrics.jsonl");
    if (tokenizer) {
        char v[4096], m[4096];
        if (tok_load(tokenizer, &t->tok, err, errlen) || tok_files(tokenizer, v, m, sizeof v, err, errlen)) return -1;
        if (!(io->vocab = fio_read_all(v, &io->nvocab, err, errlen))) return -1;
        if (!(io->merges = fio_read_all(m, &io->nmerges, err, errlen))) return -1;
    }
    char lerr[512];
    const int have = ckpt_latest(t->run->out, t->latest, sizeof t->latest, lerr, sizeof lerr) == 0;
    if (have && !t->run->resume)
        return fio_fail(err, errlen, "%s already holds a checkpoint (%s): pass --resume to continue it, or choose another --out",
                        t->run->out, t->latest);
    t->resuming = have;
    if (!have) t->latest[0] = 0;
    return 0;
}

/* keep the metrics lines with step <= upto, rewritten atomically */
static int trim_metrics(const char *path, long upto, char *err, size_t errlen)
{
    if (!fio_exists(path)) return 0;
    size_t n;
    char *s = fio_read_all(path, &n, err, errlen);
    if (!s) return -1;
    char *out = malloc(n + 1);
    if (!out) {
        free(s);
        return fio_fail(err, errlen, "out of memory");
    }
    size_t o = 0;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        json_t *j = json_loadb(line, len, 0, NULL);
        json_t *st = j ? json_object_get(j, "step") : NULL;
        if (st && json_is_integer(st) && json_integer_value(st) <= upto) {
            memcpy(out + o, line, len);
            o += len;
        }
        json_decref(j);
        line += len;
    }
    int rc = fio_write_atomic(path, out, o, err, errlen);
    free(out);
    free(s);
    return rc;
}

/* Create OUT and start metrics.jsonl: kept up to the resumed step, emptied otherwise. */
static int io_begin(trainer *t, char *err, size_t errlen)
{
    struct trainer_io *io = t->io;
    io->t0 = clk_now();
    /* every rank has read what it resumes from before rank 0 touches OUT */
    if (dp_barrier(t->run->dp, err, errlen)) return -1;
    if (t->rank != 0) return 0;
    if (fio_mkdirs(t->run->out, err, errlen) || ckpt_clean(t->run->out, err, errlen)) return -1;
    char done[4200]; /* a finished run's state goes: this run is not finished yet */
    remove(fio_join(done, sizeof done, t->run->out, "trainer_state.json"));
    if (t->resuming) {
        if (trim_metrics(io->metrics_path, t->st.step, err, errlen)) return -1;
    } else {
        remove(io->metrics_path);
    }
    io->mf = fopen(io->metrics_path, "a");
    if (!io->mf) return fio_fail(err, errlen, "%s: cannot open for appending", io->metrics_path);
    return 0;
}

/* Append {"step": step, metrics...} to metrics.jsonl (flushed) and call on_step. */
static int io_log(trainer *t, const trainer_metric *m, size_t n, char *err, size_t errlen)
{
    struct trainer_io *io = t->io;
    if (t->rank != 0) return 0; /* rank 0 alone writes and shows progress */
    json_t *j = json_object();
    int bad = !j || json_object_set_new(j, "step", json_integer(t->st.step));
    for (size_t i = 0; i < n && !bad; i++)
        if (!isnan(m[i].value)) bad |= json_object_set_new(j, m[i].name, json_real(m[i].value));
    /* one compact line; 9 significant digits hold any float exactly */
    if (bad || json_dumpf(j, io->mf, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) ||
        fputc('\n', io->mf) == EOF || fflush(io->mf)) {
        json_decref(j);
        return fio_fail(err, errlen, "%s: cannot write", io->metrics_path);
    }
    json_decref(j);
    if (t->run->on_step) {
        const trainer_progress p = {t->rc->name, t->st.step, t->steps, t->resumed_from, clk_now() - io->t0, m, n};
        t->run->on_step(t->run->ud, &p);
    }
    return 0;
}

size_t trainer_tokenizer_files(const trainer *t, ckpt_file out[2])
{
    if (!t->io->vocab) return 0;
    out[0] = (ckpt_file){"vocab.json", t->io->vocab, t->io->nvocab};
    out[1] = (ckpt_file){"merges.txt", t->io->merges, t->io->nmerges};
    return 2;
}

/* the tokenizer's files, the moments of blocks 1.. (checkpoints), then the recipe's */
static int collect_files(trainer *t, int final, trainer_files *fs, char *err, size_t errlen)
{
    memset(fs, 0, sizeof *fs);
    fs->n = trainer_tokenizer_files(t, fs->f);
    for (size_t k = 1; !final && k < t->nblocks; k++) {
        const trainer_block *b = &t->blocks[k];
        uint8_t *bytes;
        size_t len;
        if (trainer_block_moments_to_mem(b->opt, b->with_params ? b->params : NULL, &bytes, &len, err, errlen) ||
            trainer_files_own(fs, b->file, bytes, len, err, errlen))
            return -1;
    }
    return t->rc->files ? t->rc->files(t->self, t, final, fs, err, errlen) : 0;
}

/* trainer_state.json's text: the position in the run and its settings (NULL when out of memory) */
static char *state_json(const trainer *t)
{
    char rng[32];
    snprintf(rng, sizeof rng, "%016" PRIx64, t->st.rng);
    json_t *j = json_pack("{s:I, s:I, s:s, s:I, s:O}", "step", (json_int_t)t->st.step, "cursor", (json_int_t)t->st.cursor,
                          "rng", rng, "num_tokens", (json_int_t)t->st.num_tokens, "settings",
                          t->settings ? t->settings : json_null());
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    return s;
}

/* OUT/trainer_state.json once the run is complete: what a finished run was (its family among its
 * settings) after its checkpoints are gone, for `rlhf compare` and `rlhf plot` */
static int io_final_state(const trainer *t, char *err, size_t errlen)
{
    char p[4200], *s = state_json(t);
    if (!s) return fio_fail(err, errlen, "out of memory");
    int rc = fio_write_atomic(fio_join(p, sizeof p, t->run->out, "trainer_state.json"), s, strlen(s), err, errlen);
    free(s);
    return rc;
}

/* OUT/step-N atomically: model, optimizer, trainer_state.json and the files above; rank 0 writes
 * (with ZeRO-1 every rank first helps gather the moments) */
static int io_checkpoint(trainer *t, char *err, size_t errlen)
{
    if (trainer_dp_gather_moments(t, err, errlen)) return -1;
    if (t->rank != 0) {
        trainer_dp_drop_moments(t);
        return 0;
    }
    char *s = state_json(t);
    if (!s) return fio_fail(err, errlen, "out of memory");
    trainer_files fs;
    int rc = collect_files(t, 0, &fs, err, errlen);
    if (rc == 0)
        rc = ckpt_save(t->run->out, t->st.step, t->model, t->blocks[0].opt, s, fs.f, fs.n, t->run->keep, err, errlen);
    files_free(&fs);
    free(s);
    trainer_dp_drop_moments(t);
    return rc;
}

int trainer_export(trainer *t, char *err, size_t errlen)
{
    trainer_files fs;
    char dst[4200];
    int rc = collect_files(t, 1, &fs, err, errlen);
    if (rc == 0) rc = ckpt_export(t->model, fio_join(dst, sizeof dst, t->run->out, "model"), fs.f, fs.n, err, errlen);
    files_free(&fs);
    return rc;
}

/* ---- resuming ---------------------------------------------------------------------------------------- */

int trainer_state_parse(const char *json, const char *name, long *step, uint64_t *cursor, uint64_t *rng,
                        uint64_t *num_tokens, json_t **settings, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    if (!j) return fio_fail(err, errlen, "%s:%d:%d: invalid JSON: %s", name, je.line, je.column, je.text);
    json_t *js = json_object_get(j, "step"), *jc = json_object_get(j, "cursor"), *jr = json_object_get(j, "rng"),
           *jn = json_object_get(j, "num_tokens");
    uint64_t r = 0;
    /* none negative (a resumed run counts on them), and rng 1 to 16 hex digits, nothing else */
    int bad = !json_is_integer(js) || json_integer_value(js) < 0 || !json_is_integer(jc) || json_integer_value(jc) < 0 ||
              (jn && !(json_is_integer(jn) && json_integer_value(jn) >= 0));
    const char *hex = json_string_value(jr);
    const size_t nhex = hex ? strlen(hex) : 0;
    if (!bad && jr && (!hex || nhex == 0 || nhex > 16 || strspn(hex, "0123456789abcdefABCDEF") != nhex)) bad = 1;
    if (!bad && hex) r = (uint64_t)strtoull(hex, NULL, 16);
    if (bad) {
        json_decref(j);
        return fio_fail(err, errlen,
                        "%s: needs non-negative integers \"step\" and \"cursor\" (and \"num_tokens\"), and \"rng\" as "
                        "a hex string",
                        name);
    }
    *step = (long)json_integer_value(js);
    *cursor = (uint64_t)json_integer_value(jc);
    *rng = r;
    *num_tokens = jn ? (uint64_t)json_integer_value(jn) : 0;
    if (settings) *settings = json_incref(json_object_get(j, "settings"));
    json_decref(j);
    return 0;
}

/* t->latest's model, optimizer moments and state (its settings into *settings) */
static int load_latest(trainer *t, gpt2 **m, adamw *opt, json_t **settings, char *err, size_t errlen)
{
    char *state = NULL;
    *m = NULL;
    memset(opt, 0, sizeof *opt);
    if (ckpt_load(t->latest, m, opt, &state, err, errlen)) return -1;
    char name[4200];
    snprintf(name, sizeof name, "%s/trainer_state.json", t->latest);
    int rc = state ? trainer_state_parse(state, name, &t->st.step, &t->st.cursor, &t->st.rng, &t->st.num_tokens, settings,
                                         err, errlen)
                   : fio_fail(err, errlen, "%s: missing", name);
    free(state);
    if (rc) {
        gpt2_free(*m);
        *m = NULL;
        adamw_free(opt);
        return -1;
    }
    t->resumed_from = t->st.step;
    return 0;
}

/* The checkpoint's settings fix the data order (examples, seed, batch, accum) and the recipe's
 * resume_keys: a resumed run must have the same ones. */
static int check_resume(const trainer *t, const json_t *old, char *err, size_t errlen)
{
    static const char *const order[] = {"examples", "seed", "batch", "accum", "precision", NULL};
    const char *const *lists[2] = {order, t->resume_keys};
    for (int l = 0; l < 2; l++)
        for (const char *const *k = lists[l]; k && *k; k++) {
            json_t *was = old ? json_object_get(old, *k) : NULL, *now = json_object_get(t->settings, *k);
            if (!now) continue; /* e.g. "examples" of a recipe that keeps its own order */
            if (!was) return fio_fail(err, errlen, "%s/trainer_state.json: settings lack \"%s\"", t->latest, *k);
            if (json_equal(was, now)) continue;
            if (json_is_integer(was) && json_is_integer(now))
                return fio_fail(err, errlen, "cannot resume %s: it was trained with %s %lld, this run has %lld", t->latest,
                                *k, (long long)json_integer_value(was), (long long)json_integer_value(now));
            char *a = json_dumps(was, JSON_ENCODE_ANY | JSON_COMPACT), *b = json_dumps(now, JSON_ENCODE_ANY | JSON_COMPACT);
            fio_fail(err, errlen, "cannot resume %s: it was trained with %s %s, this run has %s", t->latest, *k,
                     a ? a : "?", b ? b : "?");
            free(a);
            free(b);
            return -1;
        }
    return 0;
}

/* ---- models and blocks ---------------------------------------------------------------------------------- */

int trainer_check_vocab(const trainer *t, const char *dir, const gpt2 *m, char *err, size_t errlen)
{
    const int V = gpt2_cfg(m)->vocab_size;
    if (t->tok && V < (int)tok_vocab_size(t->tok))
        return fio_fail(err, errlen, "%s: the model's vocabulary (%d) is smaller than the tokenizer's (%zu)",
                        t->resuming ? t->latest : dir, V, tok_vocab_size(t->tok));
    return 0;
}

trainer_block trainer_gpt2_block(gpt2 *m, adamw *opt, const char *file, int with_params)
{
    trainer_block b = {gpt2_params(m), gpt2_grads(m), gpt2_num_params(m), opt, {{0}}, GPT2_NUM_TENSORS, file, with_params, m};
    gpt2_adamw_ranges(m, b.r);
    return b;
}

trainer_block trainer_head_block(head *h, adamw *opt, const char *file)
{
    trainer_block b = {head_params(h), head_grads(h), head_num_params(h), opt, {{0}}, 2, file, 0, NULL};
    head_adamw_ranges(h, b.r);
    return b;
}

int trainer_add_block(trainer *t, const trainer_block *b, char *err, size_t errlen)
{
    if (t->nblocks >= TRAINER_MAX_BLOCKS) return fio_fail(err, errlen, "too many parameter blocks");
    if (!b->opt->m && adamw_create(b->opt, b->n)) return fio_fail(err, errlen, "out of memory for the optimizer");
    if (b->opt->n != b->n) return fio_fail(err, errlen, "an optimizer of %zu values for a block of %zu", b->opt->n, b->n);
    if (b->model) trainer_use_model(t, b->model);
    t->blocks[t->nblocks++] = *b;
    return 0;
}

void trainer_use_model(const trainer *t, gpt2 *m)
{
    gpt2_set_threads(m, t->threads);
    gpt2_set_precision(m, t->prec);
}

int trainer_add_model(trainer *t, gpt2 *m, adamw *opt, char *err, size_t errlen)
{
    if (t->nblocks) return fio_fail(err, errlen, "the checkpointed model must be the first block");
    t->model = m;
    const trainer_block b = trainer_gpt2_block(m, opt, NULL, 0);
    return trainer_add_block(t, &b, err, errlen);
}

int trainer_start_model(trainer *t, const char *model_dir, gpt2 **m, adamw *opt, char *err, size_t errlen)
{
    json_t *old = NULL;
    if (t->resuming) {
        if (load_latest(t, m, opt, &old, err, errlen)) return -1;
    } else {
        memset(opt, 0, sizeof *opt);
        if (hf_load_gpt2(model_dir, m, err, errlen)) return -1;
    }
    /* the resume checks need the settings of this run, complete only after prepare: kept till then */
    json_decref(t->io->resumed);
    t->io->resumed = old;
    if (trainer_check_vocab(t, model_dir, *m, err, errlen)) return -1;
    return trainer_add_model(t, *m, opt, err, errlen);
}

int trainer_reserve(gpt2 *m, int B, int T, char *err, size_t errlen)
{
    int32_t *tok = calloc((size_t)B * (size_t)T, sizeof *tok);
    if (!tok) return fio_fail(err, errlen, "out of memory");
    float loss;
    int rc = gpt2_forward(m, tok, NULL, NULL, B, T, &loss, err, errlen);
    free(tok);
    return rc;
}

/* ---- the optimizer step ----------------------------------------------------------------------------------- */

int trainer_update_blocks(const trainer_optim *o, long update, long total, const trainer_block *b, size_t nb,
                          float grad_scale, long step, double *norm, float *lr_out, char *err, size_t errlen)
{
    double gn = 0;
    for (size_t k = 0; k < nb; k++) {
        if (grad_scale != 1.0f) {
            float *g = b[k].grads;
            const size_t n = b[k].n;
#pragma omp parallel for
            for (size_t i = 0; i < n; i++) g[i] *= grad_scale;
        }
        const double x = grad_norm(b[k].grads, b[k].n, b[k].opt->partial);
        gn = nb == 1 ? x : gn + x * x; /* one block: its norm as it is, not sqrt(x * x) */
    }
    if (nb > 1) gn = sqrt(gn);
    if (norm) *norm = gn;
    if (trainer_check_finite(step, "gradient norm", gn, err, errlen)) return -1;
    const float lr = lr_schedule(update, o->warmup, total, o->lr, o->min_lr), sc = clip_scale(gn, o->grad_clip);
    if (lr_out) *lr_out = lr;
    const adamw_hparams h = {lr, o->beta1, o->beta2, o->eps, o->weight_decay};
    for (size_t k = 0; k < nb; k++) adamw_step_scaled(b[k].opt, b[k].params, b[k].grads, sc, b[k].r, b[k].nr, &h, lr);
    return 0;
}

int trainer_block_moments_to_mem(const adamw *o, const float *params, uint8_t **out, size_t *len, char *err,
                                 size_t errlen)
{
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)o->t);
    st_out t[3] = {{"exp_avg", ST_F32, 1, {(int64_t)o->n}, o->m},
                   {"exp_avg_sq", ST_F32, 1, {(int64_t)o->n}, o->v},
                   {"params", ST_F32, 1, {(int64_t)o->n}, params}};
    st_meta meta[] = {{"format", "rlhf.c-adamw"}, {"step", step}};
    return st_write_mem(t, params ? 3 : 2, meta, 2, out, len, err, errlen);
}

int trainer_block_moments_load(const char *path, adamw *o, float *params, char *err, size_t errlen)
{
    st_file *f;
    if (st_open(path, &f, err, errlen)) return -1;
    const st_tensor *a = st_find(f, "exp_avg"), *b = st_find(f, "exp_avg_sq"), *w = st_find(f, "params");
    const char *step = st_metadata(f, "step");
    char *end = NULL;
    long long t = step ? strtoll(step, &end, 10) : -1;
    int rc = 0;
    if (!a || !b || !step || *end || t < 0 || a->numel != o->n || b->numel != o->n || (params && (!w || w->numel != o->n)))
        rc = fio_fail(err, errlen, "%s: expected exp_avg and exp_avg_sq%s of %zu values and a step", path,
                      params ? " and params" : "", o->n);
    if (rc == 0) rc = st_read_f32(f, a, o->m, o->n, err, errlen);
    if (rc == 0) rc = st_read_f32(f, b, o->v, o->n, err, errlen);
    if (rc == 0 && params) rc = st_read_f32(f, w, params, o->n, err, errlen);
    if (rc == 0) o->t = t;
    st_close(f);
    return rc;
}

/* ---- the loop ------------------------------------------------------------------------------------------------ */

/* the settings every checkpoint records: the run's and the optimizer's (steps resolved) */
static json_t *settings_json(const trainer *t)
{
    const trainer_run *r = t->run;
    const trainer_optim *o = t->optim;
    json_t *s = json_pack("{s:s, s:I, s:i, s:i, s:I, s:I, s:s}", "family", t->rc->name, "seed", (json_int_t)r->seed,
                          "batch", r->batch, "accum", r->accum, "steps", (json_int_t)t->steps, "warmup",
                          (json_int_t)o->warmup, "precision", gpt2_precision_name(t->prec));
    if (!s) return NULL;
    if (t->examples) json_object_set_new(s, "examples", json_integer((json_int_t)t->examples));
    const struct {
        const char *k;
        float v;
    } f[] = {{"lr", o->lr},       {"min_lr", o->min_lr}, {"weight_decay", o->weight_decay}, {"beta1", o->beta1},
             {"beta2", o->beta2}, {"eps", o->eps},       {"grad_clip", o->grad_clip}};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        char b[32]; /* a float as the short decimal it was given as (0.01, not 0.0099999997764825821) */
        snprintf(b, sizeof b, "%.7g", (double)f[i].v);
        json_object_set_new(s, f[i].k, json_real(strtod(b, NULL)));
    }
    return s;
}

/* After prepare: steps, the settings (with the recipe's keys), the resume checks, the sampler, the
 * moments of the further blocks. */
static int after_prepare(trainer *t, char *err, size_t errlen)
{
    const trainer_run *r = t->run;
    if (!t->model || t->nblocks == 0) return fio_fail(err, errlen, "%s: no model to train", t->rc->name);
    if (!t->per_step) t->per_step = (size_t)r->batch * (size_t)r->accum;
    if (t->epoch_len == 0) t->epoch_len = (double)t->examples;
    if (t->steps <= 0) {
        const long s = r->steps > 0 ? r->steps : (long)ceil(r->epochs * (double)t->examples / (double)t->per_step);
        t->steps = s < 1 ? 1 : s;
    }
    t->total_updates = t->steps * t->updates;
    json_t *s = settings_json(t);
    int rc = !s || json_object_update_missing(t->settings, s) ? fio_fail(err, errlen, "out of memory") : 0;
    json_decref(s);
    if (rc == 0 && t->resuming) rc = check_resume(t, t->io->resumed, err, errlen);
    if (rc) return -1;
    if (t->examples && ds_sampler_create(&t->smp, t->examples, r->seed)) return fio_fail(err, errlen, "out of memory");
    if (!(t->idx = malloc((t->per_step + 1) * sizeof *t->idx))) return fio_fail(err, errlen, "out of memory");
    for (size_t k = 1; t->resuming && k < t->nblocks; k++) {
        char p[4200];
        const trainer_block *b = &t->blocks[k];
        if (trainer_block_moments_load(fio_join(p, sizeof p, t->latest, b->file), b->opt, b->with_params ? b->params : NULL,
                                       err, errlen))
            return -1;
        if (b->model && b->with_params) gpt2_weights_changed(b->model);
    }
    t->update = (long)t->blocks[0].opt->t;
    return 0;
}

/* the step's updates: zero, accumulate micro-batches (each loss finite), one optimizer step */
static int run_updates(trainer *t, char *err, size_t errlen)
{
    const trainer_recipe *rc = t->rc;
    for (int u = 0; u < t->updates; u++) {
        for (size_t k = 0; k < t->nblocks; k++) memset(t->blocks[k].grads, 0, t->blocks[k].n * sizeof(float));
        for (int a = 0; a < t->accum; a++) {
            double loss[8];
            const int got = rc->micro(t->self, t, u, a, loss, err, errlen);
            if (got < 0) return -1;
            for (int k = 0; got == 0 && rc->loss_names && rc->loss_names[k]; k++)
                if (trainer_check_finite(t->st.step + 1, rc->loss_names[k], loss[k], err, errlen)) return -1;
        }
        if (trainer_dp_update(t, err, errlen)) return -1;
        for (size_t k = 0; k < t->nblocks; k++)
            if (t->blocks[k].model) gpt2_weights_changed(t->blocks[k].model); /* bf16 copies are stale now */
        t->update++;
    }
    return 0;
}

/* this step's metrics line: the recipe's, the shared ones, then eval_<name> when due */
static int step_metrics(trainer *t, trainer_metric *mx, char (*names)[64], size_t *n, char *err, size_t errlen)
{
    const trainer_recipe *rc = t->rc;
    size_t k = rc->metrics ? rc->metrics(t->self, t, mx)
                           : trainer_stats_metrics((char *)t->self + rc->stats_off, rc->stats, rc->nstats, mx);
    if (!rc->own_metrics) {
        mx[k++] = (trainer_metric){"learning_rate", t->lr};
        mx[k++] = (trainer_metric){"grad_norm", t->grad_norm};
        mx[k++] = (trainer_metric){"num_tokens", (double)t->st.num_tokens};
        mx[k++] = (trainer_metric){"epoch", t->epoch_len > 0 ? (double)t->st.cursor / t->epoch_len : NAN};
    }
    if (t->nranks > 1) { /* data parallel: this step's collectives on rank 0 (the benchmark's numbers) */
        const dp_counters c = dp_get_counters(t->run->dp);
        mx[k++] = (trainer_metric){"dp/comm_seconds", c.seconds - t->comm0.seconds};
        mx[k++] = (trainer_metric){"dp/comm_bytes", (double)(c.bytes - t->comm0.bytes)};
        mx[k++] = (trainer_metric){"dp/wait_seconds", c.wait - t->comm0.wait};
        mx[k++] = (trainer_metric){"dp/step_seconds", t->step_seconds};
    }
    size_t ne = 0;
    if (rc->evaluate && trainer_eval_due(t->run, t->st.step, t->steps)) {
        if (rc->evaluate(t->self, t, mx + k, &ne, err, errlen)) return -1;
        if (ne && trainer_check_finite(t->st.step, "eval loss", mx[k].value, err, errlen)) return -1;
        for (size_t i = 0; i < ne; i++) {
            snprintf(names[i], 64, "eval_%s", mx[k + i].name);
            mx[k + i].name = names[i];
        }
    }
    *n = k + ne;
    return 0;
}

/* data parallel: the tokens counted in micro (since tokens0) and the step's statistics, summed over
 * the ranks */
static int reduce_step(trainer *t, uint64_t tokens0, char *err, size_t errlen)
{
    const trainer_recipe *rc = t->rc;
    if (t->nranks == 1) return 0;
    double x[TRAINER_MAX_METRICS + 1];
    size_t n = 0;
    char *base = (char *)t->self + rc->stats_off;
    x[n++] = (double)(t->st.num_tokens - tokens0);
    for (size_t i = 0; i < rc->nstats && n < TRAINER_MAX_METRICS + 1; i++) x[n++] = *(double *)(base + rc->stats[i].off);
    if (dp_allreduce_f64(t->run->dp, x, n, DP_SUM, err, errlen)) return -1;
    t->st.num_tokens = tokens0 + (uint64_t)x[0];
    for (size_t i = 1; i < n; i++) *(double *)(base + rc->stats[i - 1].off) = x[i];
    return rc->nsums ? dp_allreduce_f64(t->run->dp, (double *)((char *)t->self + rc->sums_off), rc->nsums, DP_SUM, err, errlen)
                     : 0;
}

/* One step (see trainer.h). 1: leave now (an interruption); 0: go on; -1: error. */
static int one_step(trainer *t, char *err, size_t errlen)
{
    const trainer_recipe *rc = t->rc;
    const double t0 = clk_now();
    t->comm0 = dp_get_counters(t->run->dp);
    if (t->examples) ds_sampler_next(&t->smp, t->per_step, &t->st.cursor, t->idx);
    for (size_t i = 0; i < rc->nstats; i++) *(double *)((char *)t->self + rc->stats_off + rc->stats[i].off) = 0;
    if (rc->begin_step && rc->begin_step(t->self, t, err, errlen)) return -1;
    const uint64_t tokens0 = t->st.num_tokens;
    if (run_updates(t, err, errlen) || reduce_step(t, tokens0, err, errlen)) return -1;
    t->step_seconds = clk_now() - t0;
    if (rc->end_step && rc->end_step(t->self, t, err, errlen)) return -1;
    t->st.step++;
    trainer_metric mx[TRAINER_MAX_METRICS];
    char names[TRAINER_MAX_METRICS][64];
    size_t n;
    if (step_metrics(t, mx, names, &n, err, errlen) || io_log(t, mx, n, err, errlen)) return -1;
    const long s = t->st.step, ce = t->run->ckpt_every;
    if (((ce > 0 && s % ce == 0) || s == t->steps) && io_checkpoint(t, err, errlen)) return -1;
    return t->run->stop_at > 0 && s == t->run->stop_at && s < t->steps;
}

static void trainer_release(trainer *t)
{
    if (t->rc && t->rc->free) t->rc->free(t->self);
    io_free(t->io);
    trainer_dp_free(t);
    tok_free(t->tok);
    json_decref(t->settings);
    ds_sampler_free(&t->smp);
    free(t->idx);
}

int trainer_fit(const trainer_recipe *rc, void *self, const trainer_run *run, const trainer_optim *optim,
                const char *tokenizer, trainer_result *res, char *err, size_t errlen)
{
    trainer t = {.rc = rc, .self = self, .run = run, .optim = optim, .updates = 1, .accum = run->accum, .grad_scale = 1};
    t.threads = run->threads > 0 ? run->threads : omp_get_max_threads();
    t.rank = dp_rank(run->dp);
    t.nranks = dp_size(run->dp);
    t.prec = trainer_precision_resolve(run->precision);
    if (res) memset(res, 0, sizeof *res);
    int rc_ = trainer_check_hparams(run, optim, err, errlen);
    if (rc_ == 0 && !(t.settings = json_object())) rc_ = fio_fail(err, errlen, "out of memory");
    if (rc_ == 0) rc_ = io_open(&t, tokenizer, err, errlen);
    if (rc_ == 0) rc_ = rc->prepare(self, &t, err, errlen);
    if (rc_ == 0) rc_ = after_prepare(&t, err, errlen);
    if (rc_ == 0) rc_ = trainer_dp_begin(&t, err, errlen);
    if (res) *res = (trainer_result){t.resumed_from, t.steps};
    if (rc_ == 0) rc_ = io_begin(&t, err, errlen);
    int stop = 0;
    while (rc_ == 0 && !stop && t.st.step < t.steps) {
        stop = one_step(&t, err, errlen);
        if (stop < 0) rc_ = -1;
    }
    if (rc_ == 0 && !stop && t.rank == 0) {
        rc_ = rc->export_model ? rc->export_model(self, &t, err, errlen) : trainer_export(&t, err, errlen);
        if (rc_ == 0) rc_ = io_final_state(&t, err, errlen);
    }
    /* the other ranks leave once OUT is complete (a next stage may read it) */
    if (rc_ == 0) rc_ = dp_barrier(run->dp, err, errlen);
    trainer_release(&t);
    return rc_;
}
