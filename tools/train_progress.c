/* train_progress.c — the shared training options and the progress bar with ETA for the training
 * subcommands. See train_progress.h. */
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

void train_cli_parse(const char *cmd, const char *summary, int argc, char **argv, const cli_opt *own, trainer_run *r,
                     trainer_optim *o, const char *batch_help, int with_eval, train_progress *prog,
                     const char *const *show)
{
    cli_enum prec = {&r->precision, trainer_precision_names};
    const cli_opt shared[] = {
        {"--out", OPT_STR, &r->out, "DIR", "output: checkpoints, metrics.jsonl, model/", 1},
        {"--resume", OPT_FLAG, &r->resume, NULL, "continue from DIR/latest when there is one", 0},
        {"--batch", OPT_INT, &r->batch, "B", batch_help, 0},
        {"--accum", OPT_INT, &r->accum, "N", "micro-batches per optimizer step (gradient accumulation)", 0},
        {"--steps", OPT_LONG, &r->steps, "N", "steps in all (0: from --epochs)", 0},
        {"--epochs", OPT_DOUBLE, &r->epochs, "X", "passes over the data when --steps is 0", 0},
        {"--lr", OPT_FLOAT, &o->lr, "X", "peak learning rate", 0},
        {"--min-lr", OPT_FLOAT, &o->min_lr, "X", "learning rate at the end of the cosine decay", 0},
        {"--warmup", OPT_LONG, &o->warmup, "N", "linear warm-up (optimizer steps)", 0},
        {"--weight-decay", OPT_FLOAT, &o->weight_decay, "X", "AdamW weight decay (2-D weights only)", 0},
        {"--beta1", OPT_FLOAT, &o->beta1, "X", "AdamW beta1", 0},
        {"--beta2", OPT_FLOAT, &o->beta2, "X", "AdamW beta2", 0},
        {"--eps", OPT_FLOAT, &o->eps, "X", "AdamW epsilon", 0},
        {"--grad-clip", OPT_FLOAT, &o->grad_clip, "X", "global gradient-norm clip (0: off)", 0},
        {"--eval-every", OPT_LONG, &r->eval_every, "N", "evaluate every N steps (and at the end)", 0},
        {"--ckpt-every", OPT_LONG, &r->ckpt_every, "N", "checkpoint every N steps (and at the end)", 0},
        {"--keep", OPT_INT, &r->keep, "N", "checkpoints kept", 0},
        {"--seed", OPT_U64, &r->seed, "S", "seed (data order and the trainer's draws)", 0},
        {"--threads", OPT_INT, &r->threads, "N", "threads (0: all cores; resume with the same number)", 0},
        {"--precision", OPT_ENUM, &prec, NULL, "products: auto (bf16 where the CPU has it), fp32, or bf16 with fp32 master weights", 0},
        {"--stop-at", OPT_LONG, &r->stop_at, "N", "leave after step N as if interrupted (resume later)", 0},
        {"--zero", OPT_INT, &r->zero, "N", "under mpirun: 1 shards the AdamW moments across the ranks (ZeRO-1)", 0},
        {0}};
    cli_opt opts[CLI_MAX_OPTS];
    size_t k = 0;
    cli_opts_add(opts, &k, own);
    for (const cli_opt *s = shared; s->name; s++)
        if (with_eval || s->dst != &r->eval_every) cli_opts_add(opts, &k, (const cli_opt[]){*s, {0}});
    cli_parse(cmd, summary, argc, argv, opts);
    if (r->zero != 0 && r->zero != 1) cli_die(cmd, "--zero %d: 0 (off) or 1 (shard the optimizer's moments)", r->zero);
    r->dp = cli_dp();
    cli_threads(r->threads);
    train_progress_start(prog, cmd, show);
    r->on_step = train_progress_on_step;
    r->ud = prog;
}
