/* cmd_pretrain.c — `rlhf pretrain`: train a GPT-2 on a corpus from scratch or continue a run
 * (--resume). A thin wrapper around rlhf/pretrain.h: options in, progress bar out. */
#include "cli.h"
#include "commands.h"
#include "pretrain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void on_step(void *ud, const pretrain_metrics *m)
{
    cli_progress *p = ud;
    char extra[160];
    int o = snprintf(extra, sizeof extra, " step %ld/%ld loss %.4f", m->step, m->total, (double)m->loss);
    if (!isnan(m->val_loss)) o += snprintf(extra + o, sizeof extra - (size_t)o, " val %.4f", (double)m->val_loss);
    snprintf(extra + o, sizeof extra - (size_t)o, " %.0f tok/s", m->tokens_per_s);
    cli_progress_update(p, (double)m->step, (double)m->total, extra);
}

int cmd_pretrain(int argc, char **argv)
{
    pretrain_opts o = pretrain_defaults();
    cli_list corpus = {0};
    long batch = o.batch, seq = o.seq, accum = o.accum, seed = (long)o.seed, threads = 0, keep = o.keep_last;
    double lr = o.lr, min_lr = o.min_lr, wd = o.weight_decay, clip = o.grad_clip;
    const cli_opt opts[] = {
        {"--corpus", OPT_MULTI, &corpus, "FILE", "text files (each one document)", 1},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--config", OPT_STR, &o.config, "NAME|PATH", "tiny, small, gpt2-small, gpt2-medium, or a config.json", 0},
        {"--out", OPT_STR, &o.out, "DIR", "output: checkpoints, metrics.jsonl, model/", 1},
        {"--resume", OPT_FLAG, &o.resume, NULL, "continue from DIR/latest when there is one", 0},
        {"--batch", OPT_INT, &batch, "B", "sequences per micro-batch", 0},
        {"--seq", OPT_INT, &seq, "T", "tokens per sequence", 0},
        {"--accum", OPT_INT, &accum, "N", "micro-batches per optimizer step", 0},
        {"--steps", OPT_INT, &o.steps, "N", "optimizer steps in all", 0},
        {"--warmup", OPT_INT, &o.warmup, "N", "linear warm-up steps", 0},
        {"--lr", OPT_DOUBLE, &lr, "X", "peak learning rate", 0},
        {"--min-lr", OPT_DOUBLE, &min_lr, "X", "learning rate at the end of the cosine decay", 0},
        {"--weight-decay", OPT_DOUBLE, &wd, "X", "AdamW weight decay (2-D weights only)", 0},
        {"--grad-clip", OPT_DOUBLE, &clip, "X", "global gradient-norm clip (0: off)", 0},
        {"--eval-every", OPT_INT, &o.eval_every, "N", "validation loss every N steps", 0},
        {"--eval-batches", OPT_INT, &o.eval_batches, "N", "validation batches per evaluation", 0},
        {"--ckpt-every", OPT_INT, &o.ckpt_every, "N", "checkpoint every N steps (and at the end)", 0},
        {"--keep", OPT_INT, &keep, "N", "checkpoints kept", 0},
        {"--val-fraction", OPT_DOUBLE, &o.val_fraction, "X", "last fraction of the corpus held out", 0},
        {"--seed", OPT_INT, &seed, "S", "seed for initialisation and data order", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores; resume with the same number)", 0},
        {"--stop-at", OPT_INT, &o.stop_at, "N", "leave after step N as if interrupted (resume later)", 0},
        {0}};
    cli_parse("pretrain", "Train a GPT-2 language model on a corpus (or continue with --resume).", argc, argv, opts);
    o.corpus = corpus.v;
    o.ncorpus = corpus.n;
    o.batch = (int)batch;
    o.seq = (int)seq;
    o.accum = (int)accum;
    o.seed = (uint64_t)seed;
    o.threads = (int)threads;
    o.keep_last = (int)keep;
    o.lr = (float)lr;
    o.min_lr = (float)min_lr;
    o.weight_decay = (float)wd;
    o.grad_clip = (float)clip;
    cli_progress prog;
    cli_progress_start(&prog, "pretrain");
    o.on_step = on_step;
    o.ud = &prog;
    char err[1024];
    long from = 0;
    if (pretrain_run(&o, &from, err, sizeof err)) cli_die("pretrain", "%s", err);
    char extra[256];
    snprintf(extra, sizeof extra, "(%s) -> %s/model", from ? "resumed" : "from scratch", o.out);
    cli_progress_done(&prog, extra);
    free(corpus.v);
    return 0;
}
