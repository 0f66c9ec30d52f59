/* sft.c — supervised fine-tuning on prompt/completion or text JSONL. See sft.h. */
#include "sft.h"

#include "adamw.h"
#include "fileio.h"
#include "tok.h"

#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

sft_opts sft_defaults(void)
{
    sft_opts o = {.run = trainer_run_defaults(), .optim = trainer_optim_defaults()};
    o.optim.lr = 2e-5f;
    o.run.epochs = 3;
    o.max_prompt_len = 512;
    o.max_completion_len = 512;
    return o;
}

int sft_forward(gpt2 *m, const ds_batch *b, sft_stats *s, char *err, size_t errlen)
{
    float loss;
    if (gpt2_forward(m, b->tokens, b->targets, b->loss_mask, b->B, b->T, &loss, err, errlen)) return -1;
    const int V = gpt2_cfg(m)->vocab_size;
    const size_t N = (size_t)b->B * (size_t)b->T;
    const float *logp = gpt2_logp(m), *logits = gpt2_logits(m);
    double nll = 0, correct = 0, count = 0;
#pragma omp parallel for reduction(+ : nll, correct, count) num_threads(gpt2_threads(m))
    for (size_t i = 0; i < N; i++) {
        if (b->loss_mask[i] == 0.0f) continue;
        const float *row = logits + i * (size_t)V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        nll -= (double)logp[i];
        correct += best == b->targets[i];
        count += 1;
    }
    s->nll = nll;
    s->correct = correct;
    s->count = count;
    return 0;
}

int sft_forward_backward(gpt2 *m, const ds_batch *b, double scale, float *dlogp, sft_stats *s, char *err,
                         size_t errlen)
{
    if (sft_forward(m, b, s, err, errlen)) return -1;
    const size_t N = (size_t)b->B * (size_t)b->T;
    /* d(scale * sum -logp)/dlogp: -scale on completion tokens, 0 on prompt and padding */
    for (size_t i = 0; i < N; i++) dlogp[i] = (float)(-scale) * b->loss_mask[i];
    return gpt2_backward(m, dlogp, NULL, err, errlen);
}

int sft_evaluate(gpt2 *m, const ds_dataset *d, ds_batch *b, double *loss, double *accuracy, char *err, size_t errlen)
{
    const int B = d->kind == DS_PREFERENCE ? b->max_rows / 2 : b->max_rows;
    size_t *idx = malloc((size_t)B * sizeof *idx);
    if (!idx) return fio_fail(err, errlen, "out of memory");
    sft_stats tot = {0, 0, 0};
    int rc = 0;
    for (size_t i = 0; i < d->n && rc == 0; i += (size_t)B) {
        size_t k = d->n - i < (size_t)B ? d->n - i : (size_t)B;
        for (size_t j = 0; j < k; j++) idx[j] = i + j;
        sft_stats s;
        rc = ds_batch_fill(d, idx, k, b, err, errlen);
        if (rc == 0 && (rc = sft_forward(m, b, &s, err, errlen)) == 0) {
            tot.nll += s.nll;
            tot.correct += s.correct;
            tot.count += s.count;
        }
    }
    free(idx);
    *loss = tot.count > 0 ? tot.nll / tot.count : NAN;
    *accuracy = tot.count > 0 ? tot.correct / tot.count : NAN;
    return rc;
}

/* ---- the recipe ---------------------------------------------------------------------------------- */

typedef struct {
    const sft_opts *o;
    sft_result *res;
    gpt2 *m;
    adamw opt;
    ds_dataset d, ev;
    ds_batch b;
    float *dlogp;
    size_t ntok;             /* completion tokens of this step: each weighs 1/ntok */
    sft_stats tot;           /* this step's sums */
} sft;

/* completion tokens of example x in a batch row (the loss_mask rule of dataset.h) */
static size_t loss_tokens(const ds_example *x)
{
    int n = x->np + x->na, first = x->np > 1 ? x->np : 1;
    return n > first ? (size_t)(n - first) : 0;
}

static int prepare(void *self, trainer *t, char *err, size_t errlen)
{
    sft *s = self;
    const sft_opts *o = s->o;
    if (trainer_start_model(t, o->model, &s->m, &s->opt, err, errlen)) return -1;
    /* the data, checked whole before anything is written */
    ds_load_opts lo = trainer_load_opts(o->max_prompt_len, o->max_completion_len, gpt2_cfg(s->m)->n_positions, -1);
    if (ds_load(&s->d, t->tok, o->data, &lo, err, errlen)) return -1;
    if (s->d.kind != DS_TEXT && s->d.kind != DS_PROMPT_COMPLETION)
        return fio_fail(err, errlen, "%s: SFT needs a text or prompt-completion dataset; this one is %s", o->data,
                        ds_kind_name(s->d.kind));
    lo.require_kind = (int)s->d.kind;
    if (o->eval_data && ds_load(&s->ev, t->tok, o->eval_data, &lo, err, errlen)) return -1;
    *s->res = (sft_result){.resumed_from = t->st.step, .n_train = s->d.n, .n_eval = s->ev.n, .kind = s->d.kind,
                           .n_prompt_cut = s->d.n_prompt_cut, .n_completion_cut = s->d.n_completion_cut,
                           .loss = NAN, .eval_loss = NAN};
    t->examples = s->d.n;
    json_object_update_new(t->settings, json_pack("{s:s, s:s, s:i, s:i}", "model", o->model ? o->model : "", "data", o->data,
                                                  "max_prompt_len", o->max_prompt_len, "max_completion_len",
                                                  o->max_completion_len));
    const int B = o->run.batch, T = s->d.max_row > s->ev.max_row ? s->d.max_row : s->ev.max_row;
    if (ds_batch_create(&s->b, B, T, err, errlen) || trainer_reserve(s->m, B, T, err, errlen)) return -1;
    if (!(s->dlogp = malloc((size_t)B * T * sizeof *s->dlogp))) return fio_fail(err, errlen, "out of memory");
    return 0;
}

static int begin_step(void *self, trainer *t, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    sft *s = self;
    s->ntok = 0;
    for (size_t i = 0; i < t->per_step; i++) s->ntok += loss_tokens(&s->d.ex[t->idx[i]]);
    s->tot = (sft_stats){0, 0, 0};
    return 0;
}

/* the mean -log p over the step's completion tokens: this micro-batch's sum, weighed 1/ntok */
static int micro(void *self, trainer *t, int u, int a, double *loss, char *err, size_t errlen)
{
    (void)u;
    sft *s = self;
    const int B = s->o->run.batch;
    size_t lo, hi; /* this rank's rows of the micro-batch; ntok counts the whole step's tokens */
    trainer_rows(t, (size_t)B, &lo, &hi);
    if (ds_batch_fill(&s->d, t->idx + (size_t)a * B + lo, hi - lo, &s->b, err, errlen)) return -1;
    for (int r = 0; r < s->b.B; r++) t->st.num_tokens += (uint64_t)s->b.lengths[r];
    if (ds_batch_loss_tokens(&s->b) == 0) return 1; /* nothing to learn in this micro-batch */
    sft_stats st;
    if (sft_forward_backward(s->m, &s->b, 1.0 / (double)s->ntok, s->dlogp, &st, err, errlen)) return -1;
    loss[0] = st.nll / st.count;
    s->tot.nll += st.nll;
    s->tot.correct += st.correct;
    s->tot.count += st.count;
    return 0;
}

static size_t metrics(void *self, trainer *t, trainer_metric *out)
{
    (void)t;
    sft *s = self;
    const sft_stats *x = &s->tot;
    s->res->loss = x->count > 0 ? x->nll / x->count : NAN;
    out[0] = (trainer_metric){"loss", s->res->loss};
    out[1] = (trainer_metric){"mean_token_accuracy", x->count > 0 ? x->correct / x->count : NAN};
    return 2;
}

static int evaluate(void *self, trainer *t, trainer_metric *out, size_t *n, char *err, size_t errlen)
{
    (void)t;
    sft *s = self;
    *n = 0;
    if (s->ev.n == 0) return 0;
    double loss, acc;
    if (sft_evaluate(s->m, &s->ev, &s->b, &loss, &acc, err, errlen)) return -1;
    s->res->eval_loss = loss;
    out[0] = (trainer_metric){"loss", loss};
    out[1] = (trainer_metric){"mean_token_accuracy", acc};
    *n = 2;
    return 0;
}

static void release(void *self)
{
    sft *s = self;
    free(s->dlogp);
    ds_batch_free(&s->b);
    ds_free(&s->d);
    ds_free(&s->ev);
    adamw_free(&s->opt);
    gpt2_free(s->m);
}

static const char *const loss_names[] = {"loss", NULL};
static const trainer_recipe recipe = {.name = "sft",
                                      .loss_names = loss_names,
                                      .prepare = prepare,
                                      .begin_step = begin_step,
                                      .micro = micro,
                                      .metrics = metrics,
                                      .evaluate = evaluate,
                                      .free = release,
                                      .sums_off = offsetof(sft, tot),
                                      .nsums = sizeof(sft_stats) / sizeof(double)};

int sft_run(const sft_opts *o, sft_result *res, char *err, size_t errlen)
{
    sft_result dummy;
    sft s = {.o = o, .res = res ? res : &dummy};
    *s.res = (sft_result){.loss = NAN, .eval_loss = NAN};
    trainer_result tr;
    const int rc = trainer_fit(&recipe, &s, &o->run, &o->optim, o->tokenizer, &tr, err, errlen);
    s.res->steps = tr.steps;
    return rc;
}
