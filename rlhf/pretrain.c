/* pretrain.c — language-model pretraining as a recipe on the one training loop. See pretrain.h. */
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

pretrain_opts pretrain_defaults(void)
{
    pretrain_opts o = {.run = trainer_run_defaults(), .optim = trainer_optim_defaults()};
    o.config = "tiny";
    o.run.batch = 8;
    o.seq = 128;
    o.run.steps = 1000;
    o.optim.warmup = 50;
    o.optim.lr = 1e-3f;
    o.optim.min_lr = 1e-4f;
    o.optim.weight_decay = 0.1f;
    o.optim.beta2 = 0.95f;
    o.run.eval_every = 100;
    o.eval_batches = 8;
    o.run.ckpt_every = 200;
    o.run.seed = 1337;
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

/* ---- the recipe ---------------------------------------------------------------------------------- */

typedef struct {
    const pretrain_opts *o;
    gpt2 *m;
    adamw opt;
    ds_tokens d;
    int32_t *inp, *tgt;      /* one micro-batch (batch, seq) */
    double lsum;             /* this step's micro-batch losses */
} pretrain;

/* a fresh model from the config (or the checkpoint's), the corpus tokenised and split */
static int prepare(void *self, trainer *t, char *err, size_t errlen)
{
    pretrain *p = self;
    const pretrain_opts *o = p->o;
    const int B = o->run.batch;
    if (o->seq < 1 || o->run.steps < 1) return fio_fail(err, errlen, "batch, seq, accum and steps must be positive");
    if (t->resuming) {
        if (trainer_start_model(t, NULL, &p->m, &p->opt, err, errlen)) return -1;
    } else {
        gpt2_config c;
        if (model_config(o->config, (int)tok_vocab_size(t->tok), &c, err, errlen)) return -1;
        if (gpt2_create(&p->m, &c, err, errlen)) return -1;
        gpt2_init_random(p->m, o->run.seed);
        if (trainer_add_model(t, p->m, &p->opt, err, errlen)) return -1;
    }
    if (o->seq > gpt2_cfg(p->m)->n_positions)
        return fio_fail(err, errlen, "--seq %d is longer than the model's n_positions %d", o->seq, gpt2_cfg(p->m)->n_positions);
    if (ds_tokens_load(&p->d, t->tok, o->corpus, o->ncorpus, o->seq, o->val_fraction, o->run.seed, t->threads, err, errlen))
        return -1;
    p->inp = malloc((size_t)B * o->seq * sizeof *p->inp);
    p->tgt = malloc((size_t)B * o->seq * sizeof *p->tgt);
    if (!p->inp || !p->tgt) return fio_fail(err, errlen, "out of memory");
    t->epoch_len = (double)p->d.nchunks;
    /* each micro-batch's mean loss weighs 1/accum; data parallel, each rank's mean over its equal
     * share of the rows weighs 1/ranks more (trainer_dp_begin checks the shares are equal) */
    t->grad_scale = 1.0f / (float)(o->run.accum * t->nranks);
    static const char *const keys[] = {"seq", NULL};
    t->resume_keys = keys;
    json_object_update_new(t->settings, json_pack("{s:i, s:s}", "seq", o->seq, "config", o->config ? o->config : ""));
    return 0;
}

static int begin_step(void *self, trainer *t, char *err, size_t errlen)
{
    (void)t, (void)err, (void)errlen;
    ((pretrain *)self)->lsum = 0;
    return 0;
}

static int micro(void *self, trainer *t, int u, int a, double *loss, char *err, size_t errlen)
{
    (void)u, (void)a;
    pretrain *p = self;
    const int B = p->o->run.batch, T = p->o->seq;
    ds_tokens_batch(&p->d, B, &t->st.cursor, p->inp, p->tgt);
    size_t lo, hi; /* this rank's rows of the micro-batch (all of them alone) */
    trainer_rows(t, (size_t)B, &lo, &hi);
    const int n = (int)(hi - lo);
    float l;
    if (gpt2_forward(p->m, p->inp + lo * T, p->tgt + lo * T, NULL, n, T, &l, err, errlen)) return -1;
    loss[0] = l;
    if (!isfinite(l)) return 0; /* the loop stops, naming the step */
    p->lsum += l * ((double)n / B);
    t->st.num_tokens += (uint64_t)n * (uint64_t)T;
    return gpt2_backward(p->m, NULL, NULL, err, errlen);
}

static size_t metrics(void *self, trainer *t, trainer_metric *out)
{
    pretrain *p = self;
    const pretrain_opts *o = p->o;
    out[0] = (trainer_metric){"loss", (float)(p->lsum / o->run.accum)};
    out[1] = (trainer_metric){"tokens_per_s", (double)o->run.batch * o->seq * o->run.accum / t->step_seconds};
    return 2;
}

/* the mean loss over up to eval_batches validation batches */
static int evaluate(void *self, trainer *t, trainer_metric *out, size_t *n, char *err, size_t errlen)
{
    (void)t;
    pretrain *p = self;
    const int B = p->o->run.batch;
    double s = 0;
    long used = 0;
    for (long k = 0; k < p->o->eval_batches; k++) {
        const int rows = ds_tokens_val_batch(&p->d, B, (size_t)k, p->inp, p->tgt);
        if (rows == 0) break;
        float loss;
        if (gpt2_forward(p->m, p->inp, p->tgt, NULL, rows, p->d.T, &loss, err, errlen)) return -1;
        s += (double)loss * rows;
        used += rows;
    }
    *n = used ? 1 : 0;
    out[0] = (trainer_metric){"loss", used ? (float)(s / (double)used) : NAN};
    return 0;
}

static void release(void *self)
{
    pretrain *p = self;
    free(p->inp);
    free(p->tgt);
    ds_tokens_free(&p->d);
    adamw_free(&p->opt);
    gpt2_free(p->m);
}

static const char *const loss_names[] = {"loss", NULL};
static const trainer_recipe recipe = {.name = "pretrain",
                                      .loss_names = loss_names,
                                      .prepare = prepare,
                                      .begin_step = begin_step,
                                      .micro = micro,
                                      .metrics = metrics,
                                      .evaluate = evaluate,
                                      .free = release,
                                      .sums_off = offsetof(pretrain, lsum),
                                      .nsums = 1};

int pretrain_run(const pretrain_opts *o, long *resumed_from, char *err, size_t errlen)
{
    pretrain p = {.o = o};
    trainer_result r;
    const int rc = trainer_fit(&recipe, &p, &o->run, &o->optim, o->tokenizer, &r, err, errlen);
    if (resumed_from) *resumed_from = r.resumed_from;
    return rc;
}
