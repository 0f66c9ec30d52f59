/* cmd_pretrain.c — `rlhf pretrain`: train a GPT-2 on a corpus from scratch or continue a run
 * (--resume). A thin wrapper around rlhf/pretrain.h: options bound to pretrain_opts, progress bar out. */
#include "cli.h"
#include "commands.h"
#include "pretrain.h"
#include "train_progress.h"

#include <stdio.h>
#include <stdlib.h>

int cmd_pretrain(int argc, char **argv)
{
    pretrain_opts o = pretrain_defaults();
    cli_list corpus = {0};
    const cli_opt own[] = {
        {"--corpus", OPT_MULTI, &corpus, "FILE", "text files (each one document)", 1},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--config", OPT_STR, &o.config, "NAME|PATH", "tiny, small, gpt2-small, gpt2-medium, or a config.json", 0},
        {"--seq", OPT_INT, &o.seq, "T", "tokens per sequence", 0},
        {"--eval-batches", OPT_INT, &o.eval_batches, "N", "validation batches per evaluation", 0},
        {"--val-fraction", OPT_DOUBLE, &o.val_fraction, "X", "last fraction of the corpus held out", 0},
        {0}};
    static const char *const show[] = {"loss", "eval_loss", "tokens_per_s", NULL};
    train_progress prog;
    train_cli_parse("pretrain", "Train a GPT-2 language model on a corpus (or continue with --resume).", argc, argv, own,
                    &o.run, &o.optim, "sequences per micro-batch", 1, &prog, show);
    cli_tokenizer_path("pretrain", "--tokenizer", &o.tokenizer);
    o.corpus = corpus.v;
    o.ncorpus = corpus.n;
    char err[1024];
    long from = 0;
    if (pretrain_run(&o, &from, err, sizeof err)) cli_die("pretrain", "%s", err);
    char extra[256];
    snprintf(extra, sizeof extra, "(%s) -> %s/model", from ? "resumed" : "from scratch", o.run.out);
    cli_progress_done(&prog.bar, extra);
    free(corpus.v);
    return 0;
}
