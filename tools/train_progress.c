/* train_progress.c — progress bar with ETA for the training subcommands. See train_progress.h. */
#include "train_progress.h"

#include <math.h>
#include <stdio.h>

void train_progress_start(train_progress *p, const char *label, const char *const *show)
{
    cli_progress_start(&p->bar, label);
    p->show = show;
}

void train_progress_on_step(void *ud, const trainer_progress *s)
{
    train_progress *p = ud;
    char extra[256];
    size_t o = (size_t)snprintf(extra, sizeof extra, " step %ld/%ld", s->step, s->total);
    for (const char *const *n = p->show; n && *n && o < sizeof extra; n++) {
        double v = trainer_progress_get(s, *n);
        if (!isnan(v)) o += (size_t)snprintf(extra + o, sizeof extra - o, " %s %.4g", *n, v);
    }
    /* the ETA covers this process's steps: a resumed run's earlier steps took no time here */
    cli_progress_update(&p->bar, (double)(s->step - s->resumed_from), (double)(s->total - s->resumed_from), extra);
}

void train_cli_options(train_cli *v, trainer_hparams *h, const char *batch_help, cli_opt *opts, size_t *k)
{
    *v = (train_cli){h,        h->batch, h->accum, h->max_prompt_len, h->max_completion_len, h->keep_last,
                     (long)h->seed, h->threads, h->lr, h->min_lr, h->weight_decay, h->beta1, h->beta2, h->grad_clip};
    const cli_opt common[TRAIN_CLI_NOPTS] = {
        {"--epochs", OPT_DOUBLE, &h->epochs, "X", "passes over the data (when --steps is not given)", 0},
        {"--steps", OPT_INT, &h->steps, "N", "optimizer steps in all (overrides --epochs)", 0},
        {"--batch", OPT_INT, &v->batch, "B", batch_help, 0},
        {"--accum", OPT_INT, &v->accum, "N", "micro-batches per optimizer step", 0},
        {"--lr", OPT_DOUBLE, &v->lr, "X", "peak learning rate", 0},
        {"--min-lr", OPT_DOUBLE, &v->min_lr, "X", "learning rate at the end of the cosine decay", 0},
        {"--warmup", OPT_INT, &h->warmup, "N", "linear warm-up steps", 0},
        {"--weight-decay", OPT_DOUBLE, &v->wd, "X", "AdamW weight decay (2-D weights only)", 0},
        {"--beta1", OPT_DOUBLE, &v->b1, "X", "AdamW beta1", 0},
        {"--beta2", OPT_DOUBLE, &v->b2, "X", "AdamW beta2", 0},
        {"--grad-clip", OPT_DOUBLE, &v->clip, "X", "global gradient-norm clip (0: off)", 0},
        {"--max-prompt-len", OPT_INT, &v->max_prompt, "N", "prompt tokens kept, from the end (0: no limit)", 0},
        {"--max-completion-len", OPT_INT, &v->max_completion, "N",
         "completion (or text) tokens kept, EOS included, from the start (0: no limit)", 0},
        {"--eval-every", OPT_INT, &h->eval_every, "N", "evaluate every N steps (and at the end)", 0},
        {"--ckpt-every", OPT_INT, &h->ckpt_every, "N", "checkpoint every N steps (and at the end)", 0},
        {"--keep", OPT_INT, &v->keep, "N", "checkpoints kept", 0},
        {"--seed", OPT_INT, &v->seed, "S", "seed for the data order", 0},
        {"--threads", OPT_INT, &v->threads, "N", "threads (0: all cores; resume with the same number)", 0},
        {"--stop-at", OPT_INT, &h->stop_at, "N", "leave after step N as if interrupted (resume later)", 0},
    };
    for (size_t i = 0; i < TRAIN_CLI_NOPTS; i++) opts[(*k)++] = common[i];
}

void train_cli_apply(const train_cli *v)
{
    trainer_hparams *h = v->h;
    h->batch = (int)v->batch;
    h->accum = (int)v->accum;
    h->max_prompt_len = (int)v->max_prompt;
    h->max_completion_len = (int)v->max_completion;
    h->keep_last = (int)v->keep;
    h->seed = (uint64_t)v->seed;
    h->threads = (int)v->threads;
    h->lr = (float)v->lr;
    h->min_lr = (float)v->min_lr;
    h->weight_decay = (float)v->wd;
    h->beta1 = (float)v->b1;
    h->beta2 = (float)v->b2;
    h->grad_clip = (float)v->clip;
}
