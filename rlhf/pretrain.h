/* pretrain.h — language-model training from scratch (or onward from a checkpoint) on a corpus:
 * AdamW with warmup + cosine decay, gradient clipping and accumulation, periodic validation,
 * JSONL metrics (one line per step) and atomic checkpoints that resume bit for bit (at the same
 * thread count). The CLI (`rlhf pretrain`) is a thin wrapper around pretrain_run. */
#ifndef RLHF_PRETRAIN_H
#define RLHF_PRETRAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    long step;           /* 1-based: steps done */
    long total;
    float loss, lr;
    double grad_norm;
    double tokens_per_s;
    float val_loss;      /* NaN when not evaluated at this step */
    double elapsed_s;
} pretrain_metrics;

typedef struct {
    const char *out;                 /* output folder: checkpoints, metrics.jsonl, model/ */
    const char *const *corpus;
    size_t ncorpus;
    const char *tokenizer;           /* tokenizer folder */
    const char *config;              /* tiny | small | gpt2-small | ... | path to a config.json */
    int resume;                      /* continue from out/latest when there is one */
    int batch, seq, accum;           /* micro-batch, sequence length, micro-batches per step */
    long steps, warmup;
    float lr, min_lr, weight_decay, beta1, beta2, grad_clip;
    long eval_every, eval_batches, ckpt_every;
    int keep_last;
    uint64_t seed;
    int threads;
    double val_fraction;
    long stop_at;                    /* > 0: leave after this step as if interrupted (no export) */
    void (*on_step)(void *ud, const pretrain_metrics *m);
    void *ud;
} pretrain_opts;

pretrain_opts pretrain_defaults(void);

/* Runs the whole training. *resumed_from (may be NULL) gets the step resumed from (0: fresh). */
int pretrain_run(const pretrain_opts *o, long *resumed_from, char *err, size_t errlen);

#endif
