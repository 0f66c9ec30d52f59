/* pretrain.c — the language-model training loop. See pretrain.h. */
#include "pretrain.h"

#include "adamw.h"
#include "checkpoint.h"
#include "fileio.h"
#include "gpt2.h"
#include "hf.h"
#include "tok.h"
#include "tokens.h"

#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

pretrain_opts pretrain_defaults(void)
{
    pretrain_opts o = {0};
    o.config = "tiny";
    o.batch = 8;
    o.seq = 128;
    o.accum = 1;
    o.steps = 1000;
    o.warmup = 50;
    o.lr = 1e-3f;
    o.min_lr = 1e-4f;
    o.weight_decay = 0.1f;
    o.beta1 = 0.9f;
    o.beta2 = 0.95f;
    o.grad_clip = 1.0f;
    o.eval_every = 100;
    o.eval_batches = 8;
    o.ckpt_every = 200;
    o.keep_last = 2;
    o.seed = 1337;
    o.val_fraction = 0.05;
    return o;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* the tokenizer's two files, named as in a Hugging Face folder, to travel with every checkpoint */
typedef struct {
    char *vocab, *merges;
    size_t nv, nm;
} tok_blobs;

static int read_tok_files(const char *dir, tok_blobs *f, char *err, size_t errlen)
{
    char v[4096], m[4096];
    if (tok_files(dir, v, m, sizeof v, err, errlen)) return -1;
    f->vocab = fio_read_all(v, &f->nv, err, errlen);
    if (!f->vocab) return -1;
    f->merges = fio_read_all(m, &f->nm, err, errlen);
    if (!f->merges) {
        free(f->vocab);
        return -1;
    }
    return 0;
}

static int model_config(const char *spec, int vocab, gpt2_config *c, char *err, size_t errlen)
{
    if (gpt2_config_named(spec, vocab, c) == 0) return 0;
    if (!fio_exists(spec))
        return fio_fail(err, errlen, "--config '%s' is neither a known shape (tiny, small, gpt2-small, gpt2-medium) nor a file",
                        spec);
    if (hf_read_config(spec, c, err, errlen)) return -1;
    if (c->vocab_size < vocab)
        return fio_fail(err, errlen, "%s: vocab_size %d is smaller than the tokenizer's %d", spec, c->vocab_size, vocab);
    return 0;
}

static char *state_json(const pretrain_opts *o, long step, uint64_t cursor)
{
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:f, s:f, s:I}", "step", (json_int_t)step, "cursor",
                          (json_int_t)cursor, "seed", (json_int_t)o->seed, "steps", (json_int_t)o->steps, "batch",
                          o->batch, "seq", o->seq, "accum", o->accum, "lr", (double)o->lr, "min_lr", (double)o->min_lr,
                          "warmup", (json_int_t)o->warmup);
    char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    return s;
}

/* keep metrics lines with step <= upto (after a resume, lines a crashed run wrote past its last
 * checkpoint are dropped), rewritten atomically */
static int trim_metrics(const char *path, long upto, char *err, size_t errlen)
{
    if (!fio_exists(path)) return 0;
    size_t n;
    char *s = fio_read_all(path, &n, err, errlen);
    if (!s) return -1;
    char *out = malloc(n + 1);
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

static float evaluate(gpt2 *m, const ds_tokens *d, int B, long nb, int32_t *inp, int32_t *tgt, char *err, size_t errlen)
{
    double s = 0;
    long used = 0;
    for (long k = 0; k < nb; k++) {
        int rows = ds_tokens_val_batch(d, B, (size_t)k, inp, tgt);
        if (rows == 0) break;
        float loss;
        if (gpt2_forward(m, inp, tgt, NULL, rows, d->T, &loss, err, errlen)) return NAN;
        s += (double)loss * rows;
        used += rows;
    }
    return used ? (float)(s / (double)used) : NAN;
}

int pretrain_run(const pretrain_opts *o, long *resumed_from, char *err, size_t errlen)
{
    if (o->batch < 1 || o->seq < 1 || o->accum < 1 || o->steps < 1)
        return fio_fail(err, errlen, "batch, seq, accum and steps must be positive");
    if (resumed_from) *resumed_from = 0;
    int nt = o->threads > 0 ? o->threads : omp_get_max_threads();
    omp_set_num_threads(nt);
    tok_tokenizer *t = NULL;
    if (tok_load(o->tokenizer, &t, err, errlen)) return -1;
    int rc = -1;
    gpt2 *m = NULL;
    adamw opt = {0};
    ds_tokens d = {0};
    tok_blobs tf = {0};
    char *state = NULL;
    int32_t *inp = NULL, *tgt = NULL;
    FILE *mf = NULL;
    char latest[4096], mpath[4096], lerr[512];
    long step = 0;
    uint64_t cursor = 0;
    if (read_tok_files(o->tokenizer, &tf, err, errlen)) goto done;
    if (fio_mkdirs(o->out, err, errlen)) goto done;
    fio_join(mpath, sizeof mpath, o->out, "metrics.jsonl");
    int have = ckpt_latest(o->out, latest, sizeof latest, lerr, sizeof lerr) == 0;
    if (have && !o->resume) {
        fio_fail(err, errlen, "%s already holds a checkpoint (%s): pass --resume to continue it, or choose another --out",
                 o->out, latest);
        goto done;
    }
    if (have) {
        if (ckpt_load(latest, &m, &opt, &state, err, errlen)) goto done;
        json_error_t je;
        json_t *j = json_loads(state, 0, &je);
        json_t *js = j ? json_object_get(j, "step") : NULL, *jc = j ? json_object_get(j, "cursor") : NULL;
        if (!json_is_integer(js) || !json_is_integer(jc)) {
            json_decref(j);
            fio_fail(err, errlen, "%s/trainer_state.json: missing step or cursor", latest);
            goto done;
        }
        step = (long)json_integer_value(js);
        cursor = (uint64_t)json_integer_value(jc);
        json_decref(j);
        if (gpt2_cfg(m)->vocab_size < (int)tok_vocab_size(t)) {
            fio_fail(err, errlen, "%s: the model's vocabulary (%d) is smaller than the tokenizer's (%zu)", latest,
                     gpt2_cfg(m)->vocab_size, tok_vocab_size(t));
            goto done;
        }
        if (trim_metrics(mpath, step, err, errlen)) goto done;
        if (resumed_from) *resumed_from = step;
    } else {
        gpt2_config c;
        if (model_config(o->config, (int)tok_vocab_size(t), &c, err, errlen)) goto done;
        if (gpt2_create(&m, &c, err, errlen)) goto done;
        gpt2_init_random(m, o->seed);
        if (adamw_create(&opt, gpt2_num_params(m))) {
            fio_fail(err, errlen, "out of memory for the optimizer");
            goto done;
        }
        remove(mpath);
    }
    gpt2_set_threads(m, nt);
    if (o->seq > gpt2_cfg(m)->n_positions) {
        fio_fail(err, errlen, "--seq %d is longer than the model's n_positions %d", o->seq, gpt2_cfg(m)->n_positions);
        goto done;
    }
    if (ds_tokens_load(&d, t, o->corpus, o->ncorpus, o->seq, o->val_fraction, o->seed, nt, err, errlen)) goto done;
    inp = malloc((size_t)o->batch * o->seq * sizeof *inp);
    tgt = malloc((size_t)o->batch * o->seq * sizeof *tgt);
    mf = fopen(mpath, "a");
    if (!inp || !tgt || !mf) {
        fio_fail(err, errlen, "%s: cannot open for appending", mpath);
        goto done;
    }
    adamw_range ranges[GPT2_NUM_TENSORS];
    gpt2_adamw_ranges(m, ranges);
    adamw_hparams h = {o->lr, o->beta1, o->beta2, 1e-8f, o->weight_decay};
    const ckpt_file extra[2] = {{"vocab.json", tf.vocab, tf.nv}, {"merges.txt", tf.merges, tf.nm}};
    const double t0 = now_s();
    const size_t np = gpt2_num_params(m);
    while (step < o->steps) {
        double ts = now_s();
        gpt2_zero_grad(m);
        double lsum = 0;
        for (int a = 0; a < o->accum; a++) {
            ds_tokens_batch(&d, o->batch, &cursor, inp, tgt);
            float loss;
            if (gpt2_forward(m, inp, tgt, NULL, o->batch, o->seq, &loss, err, errlen)) goto done;
            if (!isfinite(loss)) {
                fio_fail(err, errlen, "step %ld: the loss is %f; stopping without a checkpoint", step + 1, (double)loss);
                goto done;
            }
            lsum += loss;
            /* each micro-batch contributes 1/accum of the mean loss */
            if (gpt2_backward(m, NULL, NULL, err, errlen)) goto done;
        }
        if (o->accum > 1) {
            float s = 1.0f / (float)o->accum;
            float *g = gpt2_grads(m);
#pragma omp parallel for
            for (size_t i = 0; i < np; i++) g[i] *= s;
        }
        double norm = grad_norm(gpt2_grads(m), np, opt.partial);
        if (!isfinite(norm)) {
            fio_fail(err, errlen, "step %ld: the gradient norm is %f; stopping without a checkpoint", step + 1, norm);
            goto done;
        }
        float lr = lr_schedule(step, o->warmup, o->steps, o->lr, o->min_lr);
        adamw_step_scaled(&opt, gpt2_params(m), gpt2_grads(m), clip_scale(norm, o->grad_clip), ranges,
                          GPT2_NUM_TENSORS, &h, lr);
        step++;
        pretrain_metrics pm = {step, o->steps, (float)(lsum / o->accum), lr, norm, 0, NAN, 0};
        double dt = now_s() - ts;
        pm.tokens_per_s = (double)o->batch * o->seq * o->accum / dt;
        if ((o->eval_every > 0 && step % o->eval_every == 0) || step == o->steps) {
            pm.val_loss = evaluate(m, &d, o->batch, o->eval_batches, inp, tgt, err, errlen);
            if (ds_tokens_val_chunks(&d) > 0 && isnan(pm.val_loss)) goto done;
        }
        pm.elapsed_s = now_s() - t0;
        fprintf(mf, "{\"step\": %ld, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6f, \"tokens_per_s\": %.1f", step,
                (double)pm.loss, (double)lr, norm, pm.tokens_per_s);
        if (!isnan(pm.val_loss)) fprintf(mf, ", \"val_loss\": %.6f", (double)pm.val_loss);
        fprintf(mf, "}\n");
        fflush(mf);
        if (o->on_step) o->on_step(o->ud, &pm);
        if ((o->ckpt_every > 0 && step % o->ckpt_every == 0) || step == o->steps) {
            free(state);
            state = state_json(o, step, cursor);
            if (!state) {
                fio_fail(err, errlen, "out of memory");
                goto done;
            }
            if (ckpt_save(o->out, step, m, &opt, state, extra, 2, o->keep_last, err, errlen)) goto done;
        }
        if (o->stop_at > 0 && step == o->stop_at && step < o->steps) {
            rc = 0;
            goto done;
        }
    }
    /* the final model as a plain Hugging Face folder, tokenizer included */
    char final[4096];
    if (ckpt_export(m, fio_join(final, sizeof final, o->out, "model"), extra, 2, err, errlen)) goto done;
    rc = 0;
done:
    if (mf) fclose(mf);
    free(inp);
    free(tgt);
    free(state);
    free(tf.vocab);
    free(tf.merges);
    ds_tokens_free(&d);
    adamw_free(&opt);
    gpt2_free(m);
    tok_free(t);
    return rc;
}
