/* trainer.c — the skeleton every trainer shares: output folder, metrics, checkpoints, resume, the
 * optimizer step, export. See trainer.h. */
#include "trainer.h"

#include "fileio.h"
#include "hf.h"
#include "safetensors.h"

#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double trainer_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double trainer_progress_get(const trainer_progress *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->m[i].name, name) == 0) return p->m[i].value;
    return NAN;
}

void trainer_state_free(trainer_state *s)
{
    json_decref(s->settings);
    s->settings = NULL;
}

int trainer_open(trainer *tr, const trainer_opts *o, char *err, size_t errlen)
{
    memset(tr, 0, sizeof *tr);
    tr->o = *o;
    if (!o->out || !*o->out) return fio_fail(err, errlen, "no output folder given");
    if (o->keep_last < 1) tr->o.keep_last = 1;
    fio_join(tr->metrics_path, sizeof tr->metrics_path, o->out, "metrics.jsonl");
    if (o->tokenizer) {
        char v[4096], m[4096];
        if (tok_files(o->tokenizer, v, m, sizeof v, err, errlen)) return -1;
        if (!(tr->vocab = fio_read_all(v, &tr->nvocab, err, errlen))) return -1;
        if (!(tr->merges = fio_read_all(m, &tr->nmerges, err, errlen))) {
            trainer_close(tr);
            return -1;
        }
    }
    char lerr[512];
    int have = ckpt_latest(o->out, tr->latest, sizeof tr->latest, lerr, sizeof lerr) == 0;
    if (have && !o->resume) {
        fio_fail(err, errlen, "%s already holds a checkpoint (%s): pass --resume to continue it, or choose another --out",
                 o->out, tr->latest);
        trainer_close(tr);
        return -1;
    }
    tr->resuming = have;
    if (!have) tr->latest[0] = 0;
    return 0;
}

int trainer_setup(trainer *tr, const trainer_opts *o, int threads, tok_tokenizer **t, int *nt, char *err,
                  size_t errlen)
{
    *nt = threads > 0 ? threads : omp_get_max_threads();
    omp_set_num_threads(*nt);
    *t = NULL;
    if (tok_load(o->tokenizer, t, err, errlen)) return -1;
    if (trainer_open(tr, o, err, errlen)) {
        tok_free(*t);
        *t = NULL;
        return -1;
    }
    return 0;
}

void trainer_close(trainer *tr)
{
    if (tr->mf) fclose(tr->mf);
    free(tr->vocab);
    free(tr->merges);
    memset(tr, 0, sizeof *tr);
}

int trainer_state_parse(const char *json, const char *name, trainer_state *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    if (!j) return fio_fail(err, errlen, "%s:%d:%d: invalid JSON: %s", name, je.line, je.column, je.text);
    json_t *js = json_object_get(j, "step"), *jc = json_object_get(j, "cursor"), *jr = json_object_get(j, "rng"),
           *jn = json_object_get(j, "num_tokens");
    int bad = !json_is_integer(js) || json_integer_value(js) < 0 || !json_is_integer(jc);
    if (!bad && jr && (!json_is_string(jr) || sscanf(json_string_value(jr), "%" SCNx64, &st->rng) != 1)) bad = 1;
    if (bad) {
        json_decref(j);
        return fio_fail(err, errlen, "%s: needs integers \"step\" and \"cursor\" (and \"rng\" as a hex string)", name);
    }
    st->step = (long)json_integer_value(js);
    st->cursor = (uint64_t)json_integer_value(jc);
    st->num_tokens = json_is_integer(jn) ? (uint64_t)json_integer_value(jn) : 0;
    st->settings = json_incref(json_object_get(j, "settings"));
    json_decref(j);
    return 0;
}

int trainer_load(trainer *tr, gpt2 **m, adamw *opt, trainer_state *st, char *err, size_t errlen)
{
    char *state = NULL;
    *m = NULL;
    memset(opt, 0, sizeof *opt);
    if (ckpt_load(tr->latest, m, opt, &state, err, errlen)) return -1;
    char name[4200];
    snprintf(name, sizeof name, "%s/trainer_state.json", tr->latest);
    int rc = state ? trainer_state_parse(state, name, st, err, errlen) : fio_fail(err, errlen, "%s: missing", name);
    free(state);
    if (rc) {
        gpt2_free(*m);
        *m = NULL;
        adamw_free(opt);
        return -1;
    }
    tr->resumed_from = st->step;
    return 0;
}

int trainer_start_model(trainer *tr, const char *model_dir, const tok_tokenizer *t, int nthreads, gpt2 **m, adamw *opt,
                        trainer_state *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    if (tr->resuming) {
        if (trainer_load(tr, m, opt, st, err, errlen)) return -1;
    } else {
        memset(opt, 0, sizeof *opt);
        if (hf_load_gpt2(model_dir, m, err, errlen)) return -1;
        if (adamw_create(opt, gpt2_num_params(*m))) {
            gpt2_free(*m);
            *m = NULL;
            return fio_fail(err, errlen, "out of memory for the optimizer");
        }
    }
    if (trainer_check_vocab(tr, model_dir, *m, t, err, errlen)) return -1;
    gpt2_set_threads(*m, nthreads);
    return 0;
}

int trainer_check_vocab(const trainer *tr, const char *model_dir, const gpt2 *m, const tok_tokenizer *t, char *err,
                        size_t errlen)
{
    const int V = gpt2_cfg(m)->vocab_size;
    if (V < (int)tok_vocab_size(t))
        return fio_fail(err, errlen, "%s: the model's vocabulary (%d) is smaller than the tokenizer's (%zu)",
                        tr->resuming ? tr->latest : model_dir, V, tok_vocab_size(t));
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

int trainer_begin(trainer *tr, long step, long total, char *err, size_t errlen)
{
    if (fio_mkdirs(tr->o.out, err, errlen)) return -1;
    if (tr->resuming) {
        if (trim_metrics(tr->metrics_path, step, err, errlen)) return -1;
    } else {
        remove(tr->metrics_path);
    }
    tr->mf = fopen(tr->metrics_path, "a");
    if (!tr->mf) return fio_fail(err, errlen, "%s: cannot open for appending", tr->metrics_path);
    tr->total = total;
    tr->t0 = trainer_now();
    return 0;
}

int trainer_log(trainer *tr, long step, const trainer_metric *m, size_t n, char *err, size_t errlen)
{
    json_t *j = json_object();
    int bad = !j || json_object_set_new(j, "step", json_integer(step));
    for (size_t i = 0; i < n && !bad; i++)
        if (!isnan(m[i].value)) bad |= json_object_set_new(j, m[i].name, json_real(m[i].value));
    /* one compact line; 9 significant digits hold any float exactly */
    if (bad || json_dumpf(j, tr->mf, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) || fputc('\n', tr->mf) == EOF ||
        fflush(tr->mf)) {
        json_decref(j);
        return fio_fail(err, errlen, "%s: cannot write", tr->metrics_path);
    }
    json_decref(j);
    if (tr->o.on_step) {
        trainer_progress p = {step, tr->total, tr->resumed_from, trainer_now() - tr->t0, m, n};
        tr->o.on_step(tr->o.ud, &p);
    }
    return 0;
}

int trainer_step_end(trainer *tr, const gpt2 *m, const adamw *opt, const trainer_state *st, const trainer_metric *mx,
                     size_t n, const ckpt_file *extra, size_t nextra, char *err, size_t errlen)
{
    if (trainer_log(tr, st->step, mx, n, err, errlen)) return -1;
    if (trainer_ckpt_due(tr, st->step) && trainer_checkpoint(tr, m, opt, st, extra, nextra, err, errlen)) return -1;
    return trainer_should_stop(tr, st->step);
}

int trainer_ckpt_due(const trainer *tr, long step)
{
    return (tr->o.ckpt_every > 0 && step % tr->o.ckpt_every == 0) || step == tr->total;
}

int trainer_should_stop(const trainer *tr, long step) { return tr->o.stop_at > 0 && step == tr->o.stop_at && step < tr->total; }

/* the tokenizer's files followed by the caller's, into out (at most 2 + nextra) */
static size_t files_with_tokenizer(const trainer *tr, const ckpt_file *extra, size_t nextra, ckpt_file *out)
{
    size_t k = 0;
    if (tr->vocab) {
        out[k++] = (ckpt_file){"vocab.json", tr->vocab, tr->nvocab};
        out[k++] = (ckpt_file){"merges.txt", tr->merges, tr->nmerges};
    }
    for (size_t i = 0; i < nextra; i++) out[k++] = extra[i];
    return k;
}

int trainer_checkpoint(trainer *tr, const gpt2 *m, const adamw *opt, const trainer_state *st, const ckpt_file *extra,
                       size_t nextra, char *err, size_t errlen)
{
    char rng[32];
    snprintf(rng, sizeof rng, "%016" PRIx64, st->rng);
    json_t *j = json_pack("{s:I, s:I, s:s, s:I, s:O}", "step", (json_int_t)st->step, "cursor", (json_int_t)st->cursor,
                          "rng", rng, "num_tokens", (json_int_t)st->num_tokens, "settings",
                          st->settings ? st->settings : json_null());
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    ckpt_file *files = malloc((nextra + 2) * sizeof *files);
    if (!s || !files) {
        free(s);
        free(files);
        return fio_fail(err, errlen, "out of memory");
    }
    size_t nf = files_with_tokenizer(tr, extra, nextra, files);
    int rc = ckpt_save(tr->o.out, st->step, m, opt, s, files, nf, tr->o.keep_last, err, errlen);
    free(files);
    free(s);
    return rc;
}

int trainer_export(trainer *tr, const gpt2 *m, const ckpt_file *extra, size_t nextra, char *err, size_t errlen)
{
    ckpt_file *files = malloc((nextra + 2) * sizeof *files);
    if (!files) return fio_fail(err, errlen, "out of memory");
    size_t nf = files_with_tokenizer(tr, extra, nextra, files);
    char dst[4200];
    int rc = ckpt_export(m, fio_join(dst, sizeof dst, tr->o.out, "model"), files, nf, err, errlen);
    free(files);
    return rc;
}

int trainer_check_finite(long step, const char *what, double v, char *err, size_t errlen)
{
    if (isfinite(v)) return 0;
    return fio_fail(err, errlen, "step %ld: the %s is %s; stopping without a checkpoint", step, what,
                    isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
}

int trainer_update_blocks(const trainer_optim *o, const trainer_block *b, size_t nb, float grad_scale, long step,
                          double *norm, float *lr_out, char *err, size_t errlen)
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
    if (trainer_check_finite(step + 1, "gradient norm", gn, err, errlen)) return -1;
    const float lr = lr_schedule(step, o->warmup, o->total, o->lr, o->min_lr), sc = clip_scale(gn, o->clip);
    if (lr_out) *lr_out = lr;
    for (size_t k = 0; k < nb; k++) adamw_step_scaled(b[k].opt, b[k].params, b[k].grads, sc, b[k].r, b[k].nr, &o->h, lr);
    return 0;
}

int trainer_update(const trainer_optim *o, adamw *opt, float *params, float *grads, size_t n, const adamw_range *r,
                   size_t nr, float grad_scale, long step, double *norm, float *lr_out, char *err, size_t errlen)
{
    const trainer_block b = {params, grads, n, opt, r, nr};
    return trainer_update_blocks(o, &b, 1, grad_scale, step, norm, lr_out, err, errlen);
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

int trainer_reserve(gpt2 *m, int B, int T, char *err, size_t errlen)
{
    int32_t *tok = calloc((size_t)B * (size_t)T, sizeof *tok);
    if (!tok) return fio_fail(err, errlen, "out of memory");
    float loss;
    int rc = gpt2_forward(m, tok, NULL, NULL, B, T, &loss, err, errlen);
    free(tok);
    return rc;
}

/* ---- shared hyperparameters ------------------------------------------------------------------- */

trainer_hparams trainer_hparams_defaults(void)
{
    trainer_hparams h = {0};
    h.batch = 8;
    h.accum = 1;
    h.epochs = 1;
    h.lr = 1e-5f;
    h.beta1 = 0.9f;
    h.beta2 = 0.999f;
    h.grad_clip = 1.0f;
    h.max_prompt_len = 512;
    h.max_completion_len = 512;
    h.eval_every = 50;
    h.ckpt_every = 500;
    h.keep_last = 2;
    h.seed = 42;
    return h;
}

int trainer_hparams_check(const trainer_hparams *h, char *err, size_t errlen)
{
    if (h->batch < 1 || h->accum < 1) return fio_fail(err, errlen, "batch and accum must be positive");
    if (h->steps <= 0 && !(h->epochs > 0)) return fio_fail(err, errlen, "give a positive number of steps or epochs");
    return 0;
}

int trainer_hparams_eval_due(const trainer_hparams *h, long step, long steps)
{
    return (h->eval_every > 0 && step % h->eval_every == 0) || step == steps;
}

long trainer_hparams_steps(const trainer_hparams *h, size_t n)
{
    if (h->steps > 0) return h->steps;
    long s = (long)ceil(h->epochs * (double)n / ((double)h->batch * h->accum));
    return s < 1 ? 1 : s;
}

ds_load_opts trainer_hparams_load_opts(const trainer_hparams *h, int n_positions, int require_kind)
{
    ds_load_opts lo = ds_load_defaults();
    lo.max_prompt_len = h->max_prompt_len;
    lo.max_completion_len = h->max_completion_len;
    lo.max_len = n_positions;
    lo.require_kind = require_kind;
    return lo;
}

trainer_optim trainer_hparams_optim(const trainer_hparams *h, long total)
{
    return (trainer_optim){h->warmup, total, h->lr, h->min_lr, h->grad_clip,
                           {h->lr, h->beta1, h->beta2, 1e-8f, h->weight_decay}};
}

/* a float setting as the short decimal it was given as (0.01, not 0.0099999997764825821) */
static json_t *jfloat(float x)
{
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)x);
    return json_real(strtod(b, NULL));
}

json_t *trainer_hparams_json(const trainer_hparams *h, long steps, size_t examples)
{
    return json_pack("{s:I, s:I, s:i, s:i, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:i}", "examples",
                     (json_int_t)examples, "seed", (json_int_t)h->seed, "batch", h->batch, "accum", h->accum, "steps",
                     (json_int_t)steps, "warmup", (json_int_t)h->warmup, "lr", jfloat(h->lr), "min_lr",
                     jfloat(h->min_lr), "weight_decay", jfloat(h->weight_decay), "beta1", jfloat(h->beta1), "beta2",
                     jfloat(h->beta2), "grad_clip", jfloat(h->grad_clip), "max_prompt_len", h->max_prompt_len,
                     "max_completion_len", h->max_completion_len);
}

int trainer_check_resume(const trainer_state *st, const trainer_hparams *h, size_t examples, const char *latest,
                         char *err, size_t errlen)
{
    static const char *keys[] = {"examples", "seed", "batch", "accum"};
    const long long now[] = {(long long)examples, (long long)h->seed, h->batch, h->accum};
    for (int i = 0; i < 4; i++) {
        json_t *v = st->settings ? json_object_get(st->settings, keys[i]) : NULL;
        if (!json_is_integer(v)) return fio_fail(err, errlen, "%s/trainer_state.json: settings lack \"%s\"", latest, keys[i]);
        if ((long long)json_integer_value(v) != now[i])
            return fio_fail(err, errlen, "cannot resume %s: it was trained with %s %lld, this run has %lld", latest, keys[i],
                            (long long)json_integer_value(v), now[i]);
    }
    return 0;
}
