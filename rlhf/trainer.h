/* trainer.h — what every trainer (pretrain, SFT, reward model, DPO, PPO) shares: the output folder,
 * the JSONL metrics file, atomic checkpoints with trainer_state.json and resuming, the NaN/Inf
 * guard, the optimizer step (accumulation, clipping, AdamW with the warmup + cosine schedule), the
 * final Hugging Face export and the per-step progress callback.
 *
 * Output folder OUT:
 *   OUT/metrics.jsonl     one JSON object per optimizer step: {"step": N, "<name>": value, ...};
 *                         on resume, lines past the checkpoint's step are dropped (a crashed run may
 *                         have logged steps it never saved), so the file always matches the model.
 *   OUT/step-N/           checkpoints (model/checkpoint.h: HF folder + optimizer.safetensors +
 *                         trainer_state.json + the tokenizer's vocab.json/merges.txt + caller files),
 *   OUT/latest            written whole or not at all; the newest keep_last are kept.
 *   OUT/model/            the final model: a plain Hugging Face folder with the tokenizer files.
 * trainer_state.json: {"step", "cursor" (data position), "rng" (hex string: the trainer's RNG
 * state), "num_tokens", "settings": {...the caller's options, for the record}}.
 *
 * Typical use (see rlhf/sft.c):
 *   trainer_setup(&tr, &opts, ...)      threads, tokenizer, trainer_open: no file is touched; finds
 *                                       OUT/latest, refuses an existing run without resume
 *   trainer_start_model(...)            fine-tuning: the checkpoint when resuming, else an HF
 *                                       folder (pretrain: trainer_load or a fresh random model)
 *   ... load and check the data (a bad dataset fails here: nothing written yet) ...
 *   trainer_begin(&tr, st.step)         creates OUT, trims or starts metrics.jsonl
 *   loop: trainer_update(...) (or trainer_update_blocks for a trunk and a head) ;
 *         trainer_step_end(...) (log, checkpoint when due, interruption)
 *   trainer_export(&tr, m)              OUT/model
 *   trainer_close(&tr)
 */
#ifndef RLHF_TRAINER_H
#define RLHF_TRAINER_H

#include "adamw.h"
#include "checkpoint.h"
#include "dataset.h"
#include "gpt2.h"
#include "tok.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One logged value. NaN values are left out of the JSONL line (e.g. eval_loss on steps without
 * evaluation). */
typedef struct {
    const char *name;
    double value;
} trainer_metric;

/* What the progress callback sees after each optimizer step. */
typedef struct {
    long step, total;        /* steps done (1-based), steps in all */
    long resumed_from;       /* 0: fresh run */
    double elapsed_s;        /* since this process started training */
    const trainer_metric *m; /* this step's metrics, in logged order */
    size_t n;
} trainer_progress;

/* the value of metric `name` in p (NaN when absent) */
double trainer_progress_get(const trainer_progress *p, const char *name);

typedef struct {
    const char *out;         /* output folder */
    int resume;              /* continue from OUT/latest when there is one */
    const char *tokenizer;   /* folder whose vocab.json/merges.txt travel with checkpoints (NULL: none) */
    long ckpt_every;         /* checkpoint every N steps (and always at the last step); <= 0: last only */
    int keep_last;           /* checkpoints kept */
    long stop_at;            /* > 0: trainer_should_stop after this step (an interruption, for tests) */
    void (*on_step)(void *ud, const trainer_progress *p);
    void *ud;
} trainer_opts;

typedef struct {
    long step;               /* optimizer steps done */
    uint64_t cursor;         /* data position: examples (or chunks) consumed */
    uint64_t rng;            /* the trainer's RNG state; 0 when it has none */
    uint64_t num_tokens;     /* tokens trained on so far */
    json_t *settings;        /* owned; the caller's options (NULL: none) */
} trainer_state;

void trainer_state_free(trainer_state *s); /* releases settings */

/* the settings of trainer_update */
typedef struct {
    long warmup, total;
    float lr, min_lr, clip;
    adamw_hparams h;         /* h.lr is ignored: the schedule gives it */
} trainer_optim;

/* The hyperparameters every fine-tuning trainer shares (SFT, reward model, DPO), in one struct
 * with one set of CLI options (tools/train_progress.h), so each trainer adds only its own. */
typedef struct {
    int batch, accum;        /* examples (pairs) per micro-batch; micro-batches per optimizer step */
    double epochs;           /* used when steps <= 0: steps = ceil(epochs * n / (batch * accum)) */
    long steps, warmup;
    float lr, min_lr, weight_decay, beta1, beta2, grad_clip;
    int max_prompt_len, max_completion_len; /* <= 0: no limit but n_positions (data/dataset.h) */
    long eval_every, ckpt_every;            /* <= 0: at the end only */
    int keep_last;
    uint64_t seed;           /* the data order */
    int threads;             /* <= 0: OpenMP's default */
    long stop_at;            /* > 0: leave after this step as if interrupted (tests) */
} trainer_hparams;

/* TRL's TrainingArguments defaults where they apply (each trainer then sets its own lr and epochs):
 * batch 8, accum 1, 1 epoch, lr 1e-5 decaying to 0, no warmup, no weight decay, betas (0.9, 0.999),
 * clip 1.0, prompt 512 and completion 512 tokens at most, eval every 50 steps, checkpoint every
 * 500, keep 2, seed 42. */
trainer_hparams trainer_hparams_defaults(void);
/* an error line when h cannot run: batch or accum below 1, or neither steps nor epochs positive */
int trainer_hparams_check(const trainer_hparams *h, char *err, size_t errlen);
/* 1 when optimizer step `step` (1-based) of `steps` evaluates: every h->eval_every and the last */
int trainer_hparams_eval_due(const trainer_hparams *h, long step, long steps);
/* h->steps when positive, else the steps that make h->epochs over n examples (at least 1) */
long trainer_hparams_steps(const trainer_hparams *h, size_t n);
/* the dataset limits: h's, within the model's n_positions; require_kind: a ds_kind or -1 */
ds_load_opts trainer_hparams_load_opts(const trainer_hparams *h, int n_positions, int require_kind);
/* the optimizer settings for a run of `total` steps */
trainer_optim trainer_hparams_optim(const trainer_hparams *h, long total);
/* the checkpoint's settings object: h (steps resolved to `steps`) and the example count; callers
 * add their own keys */
json_t *trainer_hparams_json(const trainer_hparams *h, long steps, size_t examples);
/* A resumed run must see the data in the same order: the same example count, seed, batch and
 * accumulation as the checkpoint's settings; otherwise an error naming the difference. */
int trainer_check_resume(const trainer_state *st, const trainer_hparams *h, size_t examples, const char *latest,
                         char *err, size_t errlen);

typedef struct {
    trainer_opts o;
    int resuming;            /* OUT/latest exists and o.resume is set */
    char latest[4096];       /* the checkpoint folder to resume from */
    char metrics_path[4096];
    FILE *mf;
    char *vocab, *merges;    /* the tokenizer's files */
    size_t nvocab, nmerges;
    long resumed_from, total;
    double t0;
} trainer;

/* Check the output folder without touching it: an existing checkpoint is an error unless o->resume
 * (then tr->resuming = 1 and tr->latest names it). Reads the tokenizer's files. */
int trainer_open(trainer *tr, const trainer_opts *o, char *err, size_t errlen);
void trainer_close(trainer *tr);

/* The start every trainer shares: OpenMP's thread count set (threads <= 0: OpenMP's default; *nt
 * gets the count used), the tokenizer o->tokenizer loaded into *t, then trainer_open. On error
 * nothing is left to free; on success the caller frees *t (tok_free) and closes tr. */
int trainer_setup(trainer *tr, const trainer_opts *o, int threads, tok_tokenizer **t, int *nt, char *err,
                  size_t errlen);

/* Load tr->latest: the model, the optimizer state (opt zeroed: created here) and the state. */
int trainer_load(trainer *tr, gpt2 **m, adamw *opt, trainer_state *st, char *err, size_t errlen);
/* Parse a trainer_state.json text (exposed for tools and tests). */
int trainer_state_parse(const char *json, const char *name, trainer_state *st, char *err, size_t errlen);

/* The model a fine-tuning run starts from: tr->latest when resuming (model, optimizer, state),
 * else the Hugging Face folder model_dir with a fresh optimizer (*st zeroed). Then checks that the
 * model's vocabulary holds the tokenizer's and sets its thread count. */
int trainer_start_model(trainer *tr, const char *model_dir, const tok_tokenizer *t, int nthreads, gpt2 **m, adamw *opt,
                        trainer_state *st, char *err, size_t errlen);
/* "<folder>: the model's vocabulary (V) is smaller than the tokenizer's (N)" when m cannot hold t's
 * ids; the folder is tr->latest when resuming, else model_dir. */
int trainer_check_vocab(const trainer *tr, const char *model_dir, const gpt2 *m, const tok_tokenizer *t, char *err,
                        size_t errlen);

/* Create OUT and start metrics.jsonl: kept up to step `step` when resuming, emptied otherwise.
 * total: the steps the run will reach (for the progress callback). */
int trainer_begin(trainer *tr, long step, long total, char *err, size_t errlen);

/* Append one line {"step": step, metrics...} to metrics.jsonl (flushed) and call on_step. */
int trainer_log(trainer *tr, long step, const trainer_metric *m, size_t n, char *err, size_t errlen);

/* The end of optimizer step st->step: trainer_log, trainer_checkpoint when due (with the caller's
 * extra files), trainer_should_stop. -1: error; 1: leave now (an interruption); 0: go on. */
int trainer_step_end(trainer *tr, const gpt2 *m, const adamw *opt, const trainer_state *st, const trainer_metric *mx,
                     size_t n, const ckpt_file *extra, size_t nextra, char *err, size_t errlen);

/* 1 when this step is a checkpoint step (every ckpt_every, and the last) */
int trainer_ckpt_due(const trainer *tr, long step);
/* Save OUT/step-N atomically: model, optimizer, trainer_state.json from st, tokenizer files and the
 * caller's extra files. */
int trainer_checkpoint(trainer *tr, const gpt2 *m, const adamw *opt, const trainer_state *st, const ckpt_file *extra,
                       size_t nextra, char *err, size_t errlen);
/* 1 when the run should leave now as if interrupted (opts.stop_at reached before the end) */
int trainer_should_stop(const trainer *tr, long step);

/* OUT/model: the final Hugging Face folder with the tokenizer files and the caller's extras. */
int trainer_export(trainer *tr, const gpt2 *m, const ckpt_file *extra, size_t nextra, char *err, size_t errlen);

/* "step N: the <what> is nan; stopping without a checkpoint" when v is not finite; else 0. */
int trainer_check_finite(long step, const char *what, double v, char *err, size_t errlen);

/* One block of parameters an optimizer step moves: a flat array, its gradients, its AdamW state and
 * the ranges that say which tensors decay (gpt2_adamw_ranges, head_adamw_ranges). */
typedef struct {
    float *params, *grads;
    size_t n;
    adamw *opt;
    const adamw_range *r;
    size_t nr;
} trainer_block;

/* One optimizer step over blocks trained together (e.g. a trunk and a scalar head) after `accum`
 * micro-batches whose gradients were summed: grads *= grad_scale (e.g. 1/accum; 1: untouched), one
 * global norm over every block (torch's clip_grad_norm_ over all parameters; NaN/Inf: an error
 * naming `step`), the same clip factor fused into each block's AdamW (clip <= 0: off) and the same
 * lr from the schedule for `step` (0-based: steps done before this one). *norm and *lr_out (may be
 * NULL) get the norm before clipping and the rate used. Allocates nothing. */
int trainer_update_blocks(const trainer_optim *o, const trainer_block *b, size_t nb, float grad_scale, long step,
                          double *norm, float *lr_out, char *err, size_t errlen);
/* trainer_update_blocks over one block */
int trainer_update(const trainer_optim *o, adamw *opt, float *params, float *grads, size_t n, const adamw_range *r,
                   size_t nr, float grad_scale, long step, double *norm, float *lr_out, char *err, size_t errlen);

/* The AdamW moments of a block that is not the checkpoint's model (a head, a second trunk), as a
 * file travelling beside optimizer.safetensors in the same layout: exp_avg, exp_avg_sq and, when
 * params != NULL, the block's parameters ("params"); metadata step = o->t. *out: malloc'd. */
int trainer_block_moments_to_mem(const adamw *o, const float *params, uint8_t **out, size_t *len, char *err,
                                 size_t errlen);
/* Read such a file back into o (created with o->n values) and, when params != NULL, the parameters. */
int trainer_block_moments_load(const char *path, adamw *o, float *params, char *err, size_t errlen);

/* monotonic seconds (step timings) */
double trainer_now(void);

/* Size m's activations for (B, T) once, so training steps of any smaller shape allocate nothing. */
int trainer_reserve(gpt2 *m, int B, int T, char *err, size_t errlen);

#endif
