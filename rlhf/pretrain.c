/* pretrain.c — the language-model training loop. See pretrain.h. */
#include "pretrain.h"

#include "adamw.h"
#include "checkpoint.h"
#include "fileio.h"
#include "gpt2.h"
#include "hf.h"
#include "tok.h"
#include "tokens.h"
#include "trainer.h"

#include <jansson.h>
#include <math.h>
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

/* the options a checkpoint records in trainer_state.json */
static json_t *settings_json(const pretrain_opts *o)
{
    return json_pack("{s:I, s:I, s:i, s:i, s:i, s:f, s:f, s:I}", "seed", (json_int_t)o->seed, "steps", (json_int_t)o->steps,
                     "batch", o->batch, "seq", o->seq, "accum", o->accum, "lr", (double)o->lr, "min_lr", (double)o->min_lr,
                     "warmup", (json_int_t)o->warmup);
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
    trainer tr;
    tok_tokenizer *t;
    int nt;
    const trainer_opts to = {o->out, o->resume, o->tokenizer, o->ckpt_every, o->keep_last, o->stop_at, NULL, NULL};
    if (trainer_setup(&tr, &to, o->threads, &t, &nt, err, errlen)) return -1;
    int rc = -1;
    gpt2 *m = NULL;
    adamw opt = {0};
    ds_tokens d = {0};
    trainer_state st = {0};
    int32_t *inp = NULL, *tgt = NULL;
    if (tr.resuming) {
        if (trainer_load(&tr, &m, &opt, &st, err, errlen)) goto done;
        if (trainer_check_vocab(&tr, NULL, m, t, err, errlen)) goto done;
        if (resumed_from) *resumed_from = st.step;
    } else {
        gpt2_config c;
        if (model_config(o->config, (int)tok_vocab_size(t), &c, err, errlen)) goto done;
        if (gpt2_create(&m, &c, err, errlen)) goto done;
        gpt2_init_random(m, o->seed);
        if (adamw_create(&opt, gpt2_num_params(m))) {
            fio_fail(err, errlen, "out of memory for the optimizer");
            goto done;
        }
    }
    trainer_state_free(&st);
    st.settings = settings_json(o);
    gpt2_set_threads(m, nt);
    if (o->seq > gpt2_cfg(m)->n_positions) {
        fio_fail(err, errlen, "--seq %d is longer than the model's n_positions %d", o->seq, gpt2_cfg(m)->n_positions);
        goto done;
    }
    if (ds_tokens_load(&d, t, o->corpus, o->ncorpus, o->seq, o->val_fraction, o->seed, nt, err, errlen)) goto done;
    inp = malloc((size_t)o->batch * o->seq * sizeof *inp);
    tgt = malloc((size_t)o->batch * o->seq * sizeof *tgt);
    if (!inp || !tgt) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    if (trainer_begin(&tr, st.step, o->steps, err, errlen)) goto done;
    adamw_range ranges[GPT2_NUM_TENSORS];
    gpt2_adamw_ranges(m, ranges);
    const trainer_optim om = {o->warmup, o->steps, o->lr, o->min_lr, o->grad_clip,
                              {o->lr, o->beta1, o->beta2, 1e-8f, o->weight_decay}};
    while (st.step < o->steps) {
        double ts = trainer_now();
        gpt2_zero_grad(m);
        double lsum = 0;
        for (int a = 0; a < o->accum; a++) {
            ds_tokens_batch(&d, o->batch, &st.cursor, inp, tgt);
            float loss;
            if (gpt2_forward(m, inp, tgt, NULL, o->batch, o->seq, &loss, err, errlen)) goto done;
            if (trainer_check_finite(st.step + 1, "loss", loss, err, errlen)) goto done;
            lsum += loss;
            /* each micro-batch contributes 1/accum of the mean loss (scaled in trainer_update) */
            if (gpt2_backward(m, NULL, NULL, err, errlen)) goto done;
        }
        double norm;
        float lr;
        if (trainer_update(&om, &opt, gpt2_params(m), gpt2_grads(m), gpt2_num_params(m), ranges, GPT2_NUM_TENSORS,
                           1.0f / (float)o->accum, st.step, &norm, &lr, err, errlen))
            goto done;
        st.step++;
        st.num_tokens += (uint64_t)o->batch * (uint64_t)o->seq * (uint64_t)o->accum;
        pretrain_metrics pm = {st.step, o->steps, (float)(lsum / o->accum), lr, norm, 0, NAN, 0};
        pm.tokens_per_s = (double)o->batch * o->seq * o->accum / (trainer_now() - ts);
        if ((o->eval_every > 0 && st.step % o->eval_every == 0) || st.step == o->steps) {
            pm.val_loss = evaluate(m, &d, o->batch, o->eval_batches, inp, tgt, err, errlen);
            if (ds_tokens_val_chunks(&d) > 0 && isnan(pm.val_loss)) goto done;
        }
        const trainer_metric mx[] = {{"loss", pm.loss}, {"lr", lr}, {"grad_norm", norm},
                                     {"tokens_per_s", pm.tokens_per_s}, {"val_loss", pm.val_loss}};
        int end = trainer_step_end(&tr, m, &opt, &st, mx, sizeof mx / sizeof *mx, NULL, 0, err, errlen);
        pm.elapsed_s = trainer_now() - tr.t0;
        if (end == 0 && o->on_step) o->on_step(o->ud, &pm);
        if (end) {
            rc = end > 0 ? 0 : -1;
            goto done;
        }
    }
    if (trainer_export(&tr, m, NULL, 0, err, errlen)) goto done;
    rc = 0;
done:
    free(inp);
    free(tgt);
    trainer_state_free(&st);
    trainer_close(&tr);
    ds_tokens_free(&d);
    adamw_free(&opt);
    gpt2_free(m);
    tok_free(t);
    return rc;
}
