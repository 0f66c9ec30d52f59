/* pretrain.h — language-model training from scratch (or onward from a checkpoint) on a corpus, as a
 * recipe on the one training loop (rlhf/trainer.h): next-token cross-entropy over chunks of `seq`
 * tokens in a seeded order (data/tokens.h), the mean over each micro-batch's tokens, averaged over
 * the accumulated micro-batches; validation loss on the held-out tail of the corpus.
 * Metrics per step: loss, tokens_per_s, learning_rate, grad_norm, num_tokens, epoch (chunks
 * consumed / training chunks) and eval_loss (every eval_every steps and at the end). The CLI
 * (`rlhf pretrain`) is a thin wrapper around pretrain_run. */
#ifndef RLHF_PRETRAIN_H
#define RLHF_PRETRAIN_H

#include "trainer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    trainer_run run;                 /* batch = sequences per micro-batch; run.steps required */
    trainer_optim optim;
    const char *const *corpus;       /* text files, each one document */
    size_t ncorpus;
    const char *tokenizer;           /* tokenizer folder */
    const char *config;              /* tiny | small | gpt2-small | ... | path to a config.json */
    int seq;                         /* tokens per sequence */
    int eval_batches;                /* validation batches per evaluation */
    double val_fraction;             /* the last fraction of the corpus held out */
} pretrain_opts;

/* nanoGPT-like: tiny config, 8 x 128 tokens, 1000 steps, warm-up 50, lr 1e-3 decaying to 1e-4,
 * weight decay 0.1, betas (0.9, 0.95), clip 1, eval every 100 steps (8 batches), checkpoint every
 * 200, keep 2, seed 1337 (initialisation and data order), 5% held out. */
pretrain_opts pretrain_defaults(void);

/* Runs the whole training. *resumed_from (may be NULL) gets the step resumed from (0: fresh). */
int pretrain_run(const pretrain_opts *o, long *resumed_from, char *err, size_t errlen);

#endif
