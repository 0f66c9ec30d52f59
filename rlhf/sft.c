/* sft.c — supervised fine-tuning on prompt/completion or text JSONL. See sft.h. */
#include "sft.h"

#include "adamw.h"
#include "fileio.h"
#include "tok.h"

#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

sft_opts sft_defaults(void)
{
    sft_opts o = {0};
    o.h = trainer_hparams_defaults();
    o.h.lr = 2e-5f;
    o.h.epochs = 3;
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
#pragma omp parallel for reduction(+ : nll, correct, count)
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

/* completion tokens of example x in a batch row (the loss_mask rule of dataset.h) */
static size_t loss_tokens(const ds_example *x)
{
    int n = x->np + x->na, first = x->np > 1 ? x->np : 1;
    return n > first ? (size_t)(n - first) : 0;
}

int sft_run(const sft_opts *o, sft_result *res, char *err, size_t errlen)
{
    sft_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    res->eval_loss = NAN;
    const trainer_hparams *h = &o->h;
    if (trainer_hparams_check(h, err, errlen)) return -1;
    trainer tr;
    tok_tokenizer *t;
    int nt;
    const trainer_opts to = {o->out, o->resume, o->tokenizer, h->ckpt_every, h->keep_last, h->stop_at, o->on_step, o->ud};
    if (trainer_setup(&tr, &to, h->threads, &t, &nt, err, errlen)) return -1;
    int rc = -1;
    gpt2 *m = NULL;
    adamw opt = {0};
    trainer_state st = {0};
    ds_dataset d = {0}, ev = {0};
    ds_sampler smp = {0};
    ds_batch b = {0};
    size_t *idx = NULL;
    float *dlogp = NULL;
    if (trainer_start_model(&tr, o->model, t, nt, &m, &opt, &st, err, errlen)) goto done;
    res->resumed_from = st.step;
    /* the data, checked whole before anything is written */
    ds_load_opts lo = trainer_hparams_load_opts(h, gpt2_cfg(m)->n_positions, -1);
    if (ds_load(&d, t, o->data, &lo, err, errlen)) goto done;
    if (d.kind != DS_TEXT && d.kind != DS_PROMPT_COMPLETION) {
        fio_fail(err, errlen, "%s: SFT needs a text or prompt-completion dataset; this one is %s", o->data,
                 ds_kind_name(d.kind));
        goto done;
    }
    if (o->eval_data) {
        lo.require_kind = (int)d.kind;
        if (ds_load(&ev, t, o->eval_data, &lo, err, errlen)) goto done;
    }
    res->kind = d.kind;
    res->n_train = d.n;
    res->n_eval = ev.n;
    res->n_prompt_cut = d.n_prompt_cut;
    res->n_completion_cut = d.n_completion_cut;
    const long steps = res->steps = trainer_hparams_steps(h, d.n);
    if (tr.resuming && trainer_check_resume(&st, h, d.n, tr.latest, err, errlen)) goto done;
    trainer_state_free(&st);
    st.settings = trainer_hparams_json(h, steps, d.n);
    json_object_set_new(st.settings, "model", json_string(o->model ? o->model : ""));
    json_object_set_new(st.settings, "data", json_string(o->data));
    const int T = d.max_row > ev.max_row ? d.max_row : ev.max_row;
    if (ds_batch_create(&b, h->batch, T, err, errlen) || trainer_reserve(m, h->batch, T, err, errlen)) goto done;
    const size_t per_step = (size_t)h->batch * (size_t)h->accum;
    idx = malloc(per_step * sizeof *idx);
    dlogp = malloc((size_t)h->batch * T * sizeof *dlogp);
    if (!idx || !dlogp || ds_sampler_create(&smp, d.n, h->seed)) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    if (trainer_begin(&tr, st.step, steps, err, errlen)) goto done;
    adamw_range ranges[GPT2_NUM_TENSORS];
    gpt2_adamw_ranges(m, ranges);
    const trainer_optim om = trainer_hparams_optim(h, steps);
    while (st.step < steps) {
        ds_sampler_next(&smp, per_step, &st.cursor, idx);
        size_t ntok = 0;
        for (size_t i = 0; i < per_step; i++) ntok += loss_tokens(&d.ex[idx[i]]);
        gpt2_zero_grad(m);
        sft_stats tot = {0, 0, 0};
        for (int a = 0; a < h->accum; a++) {
            if (ds_batch_fill(&d, idx + (size_t)a * h->batch, (size_t)h->batch, &b, err, errlen)) goto done;
            for (int r = 0; r < b.B; r++) st.num_tokens += (uint64_t)b.lengths[r];
            if (ds_batch_loss_tokens(&b) == 0) continue; /* nothing to learn in this micro-batch */
            sft_stats s;
            if (sft_forward_backward(m, &b, 1.0 / (double)ntok, dlogp, &s, err, errlen)) goto done;
            if (trainer_check_finite(st.step + 1, "loss", s.nll / s.count, err, errlen)) goto done;
            tot.nll += s.nll;
            tot.correct += s.correct;
            tot.count += s.count;
        }
        double norm;
        float lr;
        if (trainer_update(&om, &opt, gpt2_params(m), gpt2_grads(m), gpt2_num_params(m), ranges, GPT2_NUM_TENSORS, 1.0f,
                           st.step, &norm, &lr, err, errlen))
            goto done;
        st.step++;
        double loss = tot.count > 0 ? tot.nll / tot.count : NAN, acc = tot.count > 0 ? tot.correct / tot.count : NAN;
        double eval_loss = NAN, eval_acc = NAN;
        if (ev.n > 0 && trainer_hparams_eval_due(h, st.step, steps)) {
            if (sft_evaluate(m, &ev, &b, &eval_loss, &eval_acc, err, errlen)) goto done;
            if (trainer_check_finite(st.step, "eval loss", eval_loss, err, errlen)) goto done;
            res->eval_loss = eval_loss;
        }
        res->loss = loss;
        const trainer_metric mx[] = {{"loss", loss},
                                     {"mean_token_accuracy", acc},
                                     {"learning_rate", lr},
                                     {"grad_norm", norm},
                                     {"num_tokens", (double)st.num_tokens},
                                     {"epoch", (double)st.cursor / (double)d.n},
                                     {"eval_loss", eval_loss},
                                     {"eval_mean_token_accuracy", eval_acc}};
        int end = trainer_step_end(&tr, m, &opt, &st, mx, sizeof mx / sizeof *mx, NULL, 0, err, errlen);
        if (end) {
            rc = end > 0 ? 0 : -1;
            goto done;
        }
    }
    if (trainer_export(&tr, m, NULL, 0, err, errlen)) goto done;
    rc = 0;
done:
    free(idx);
    free(dlogp);
    ds_batch_free(&b);
    ds_sampler_free(&smp);
    ds_free(&d);
    ds_free(&ev);
    trainer_state_free(&st);
    trainer_close(&tr);
    adamw_free(&opt);
    gpt2_free(m);
    tok_free(t);
    return rc;
}
