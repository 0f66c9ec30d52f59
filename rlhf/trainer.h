/* trainer.h — the one training loop every trainer runs on (pretrain, SFT, reward model, DPO, PPO),
 * and the hyperparameters they share.
 *
 * A trainer is a RECIPE: a small table of callbacks (trainer_recipe) plus its own state. The loop
 * owns everything else — the output folder, the tokenizer, resuming and its checks, the data order,
 * gradient accumulation, the NaN/Inf guard, the optimizer step over every parameter block (one
 * global gradient-norm clip), evaluation with TRL's `eval_` names, metrics JSONL, checkpoints with
 * the recipe's extra files, interruption, the final export and the cleanup. So a recipe's file holds
 * its algorithm and nothing else.
 *
 * ---- Worked example: a recipe (rlhf/sft.c is the shortest real one) ------------------------------
 *   static int prepare(void *self, trainer *t, ...)  // models (trainer_start_model) and data, checked;
 *                                                    // nothing is written before this returns
 *   { ... trainer_add_model(t, m, &opt); t->examples = d.n; ... }
 *   static int micro(void *self, trainer *t, int u, int a, double *loss, ...)   // one micro-batch:
 *   { ... ds_batch_fill(.., t->idx + a * batch, ..); forward; backward into the grads; loss[0] = .. }
 *   static size_t metrics(void *self, trainer *t, trainer_metric *out)          // this step's
 *   static const trainer_recipe recipe = {.name = "sft", .loss_names = names, .prepare = prepare,
 *                                         .micro = micro, .metrics = metrics, ...};
 *   int sft_run(const sft_opts *o, ...) { sft s = {o}; return trainer_fit(&recipe, &s, &o->run, &o->optim, ..); }
 *
 * ---- One step of the loop (trainer_fit) ---------------------------------------------------------
 *   idx      <- the next per_step example indices (when the recipe has `examples`; the order is a
 *               seeded shuffle per epoch, its whole position one counter: data/dataset.h)
 *   begin_step (optional: PPO's rollout, scoring and advantages)
 *   repeat `updates` times (1, or PPO's epochs x mini-batches):
 *       zero every block's gradients; micro(u, a) for a < accum (each adds its gradients and
 *       reports its losses, which must be finite); grads *= grad_scale; one AdamW step over every
 *       block with one global clip and the schedule's learning rate for that update
 *   end_step (optional: PPO's KL controller); step++
 *   evaluate when due (every eval_every steps and at the last); its metrics are logged as eval_<name>
 *   log {"step", metrics..., learning_rate, grad_norm, num_tokens, epoch, eval_...}; checkpoint when
 *   due (every ckpt_every and at the last) with the recipe's files; leave at stop_at (tests)
 * then export OUT/model/ (or the recipe's own export) and free.
 *
 * ---- Output folder OUT ---------------------------------------------------------------------------
 *   OUT/metrics.jsonl     one JSON object per step; on resume, lines past the checkpoint's step are
 *                         dropped (a crashed run may have logged steps it never saved).
 *   OUT/step-N/, latest   checkpoints (model/checkpoint.h: HF folder + optimizer.safetensors +
 *                         trainer_state.json + vocab.json/merges.txt + the moments of every further
 *                         block + the recipe's files), written whole or not at all; keep the newest.
 *   OUT/model/            the final model: a Hugging Face folder with the tokenizer files.
 *   OUT/trainer_state.json  written last, once the run is complete (removed when a run starts): the
 *                         final state, as in a checkpoint; its settings hold the run's "family" (the
 *                         recipe's name: sft, dpo, ppo, grpo, rloo, rm, pretrain), which `rlhf compare`
 *                         and `rlhf plot` read instead of guessing from a folder's name.
 * trainer_state.json: {"step", "cursor" (data position), "rng" (hex), "num_tokens", "settings"}; the
 * settings are the run's, the optimizer's and the recipe's; a resumed run must match the ones that
 * fix the data order (examples, seed, batch, accum) and the recipe's resume_keys.
 *
 * ---- Data parallel (run->dp: N ranks under mpirun; rlhf/dp.h) -----------------------------------
 * Every rank runs the same loop over the same data order and the same global batch; in each
 * micro-batch a rank takes its contiguous share of the rows (trainer_rows) and the recipe normalises
 * its loss by the GLOBAL counts (the step's tokens, the micro-batch's pairs or rows), so the sum of
 * the ranks' gradients is the gradient one process computes. The loop then sums the gradients of
 * every block (one all-reduce of each flat buffer per optimizer step), the tokens counted in micro,
 * the recipe's step statistics (stats, or its own `sums`), and steps AdamW identically everywhere:
 * the weights stay the same on every rank. With run->zero 1 (ZeRO-1, trainer_dp.c) the gradients
 * are reduce-scattered instead, each rank steps AdamW on its share of the parameters with its share
 * of the moments only, and the parameters are all-gathered; checkpoints gather the moments into the
 * same files, so a run resumes at any rank count. Rank 0 alone writes OUT (metrics, progress,
 * checkpoints, export); every rank reads the checkpoint it resumes from.
 */
#ifndef RLHF_TRAINER_H
#define RLHF_TRAINER_H

#include "adamw.h"
#include "checkpoint.h"
#include "dataset.h"
#include "dp.h"
#include "gpt2.h"
#include "head.h"
#include "tok.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- hyperparameters ------------------------------------------------------------------------------ */

/* The optimizer and its schedule: AdamW (decay on 2-D weights only), linear warm-up then cosine decay
 * from lr to min_lr over the run's optimizer steps, global gradient-norm clipping. */
typedef struct {
    float lr;                /* peak learning rate */
    float min_lr;            /* at the end of the cosine decay */
    long warmup;             /* linear warm-up, in optimizer steps */
    float weight_decay;      /* AdamW's, 2-D weights only */
    float beta1, beta2, eps; /* AdamW's */
    float grad_clip;         /* global gradient-norm clip; <= 0: off */
} trainer_optim;

/* TRL's TrainingArguments: lr 1e-5 decaying to 0, no warm-up, no weight decay, betas (0.9, 0.999),
 * eps 1e-8, clip 1.0 (each trainer then sets its own lr). */
trainer_optim trainer_optim_defaults(void);

typedef struct trainer_progress trainer_progress;

/* The precision of the trained models' products (model/gpt2.h): fp32, or bf16 products with fp32
 * accumulation and fp32 master weights, gradients and AdamW state; auto is bf16 where the CPU (and
 * the build) has bf16 products, else fp32. Checkpoints are fp32 either way; a run resumes bit-exactly
 * at the same precision and threads (the precision is a resume key). */
typedef enum { TRAINER_PREC_AUTO = 0, TRAINER_PREC_FP32, TRAINER_PREC_BF16 } trainer_precision;
extern const char *const trainer_precision_names[]; /* "auto", "fp32", "bf16", NULL */
/* the precision auto resolves to here */
gpt2_precision trainer_precision_resolve(int p);

/* The run: its size, cadence, seed, threads and output. */
typedef struct {
    const char *out;         /* output folder */
    int resume;              /* continue from OUT/latest when there is one */
    int batch;               /* examples (pairs, prompts, sequences) per micro-batch (PPO: per step) */
    int accum;               /* micro-batches per optimizer step */
    long steps;              /* > 0: steps in all (PPO: iterations); else from epochs */
    double epochs;           /* when steps <= 0: steps = ceil(epochs * examples / (batch * accum)) */
    long eval_every;         /* evaluate every N steps (and at the last); <= 0: at the last only */
    long ckpt_every;         /* checkpoint every N steps (and at the last); <= 0: at the last only */
    int keep;                /* checkpoints kept (>= 1) */
    uint64_t seed;           /* the data order (and each recipe's draws) */
    int threads;             /* <= 0: OpenMP's default; a resumed run repeats exactly at the same count */
    int precision;           /* a trainer_precision: auto (default) */
    long stop_at;            /* > 0: leave after this step as if interrupted (tests) */
    dp *dp;                  /* the ranks of a data-parallel run (NULL: this process alone) */
    int zero;                /* 1: ZeRO-1, AdamW moments sharded across the ranks */
    void (*on_step)(void *ud, const trainer_progress *p); /* progress (may be NULL) */
    void *ud;
} trainer_run;

/* TRL's: batch 8, accum 1, 1 epoch, eval every 50 steps, checkpoint every 500, keep 2, seed 42. */
trainer_run trainer_run_defaults(void);

/* an error line when the run or the optimizer cannot work (batch or accum below 1, no steps nor
 * epochs, keep below 1, a negative or non-finite rate, betas outside [0, 1), ...) */
int trainer_check_hparams(const trainer_run *r, const trainer_optim *o, char *err, size_t errlen);

/* ---- metrics and progress --------------------------------------------------------------------------- */

/* One logged value. NaN values are left out of the JSONL line. */
typedef struct {
    const char *name;
    double value;
} trainer_metric;

/* What the progress callback sees after each step. */
struct trainer_progress {
    const char *name;        /* the recipe's ("sft") */
    long step, total;        /* steps done (1-based), steps in all */
    long resumed_from;       /* 0: a fresh run */
    double elapsed_s;        /* since this process started training */
    const trainer_metric *m; /* this step's metrics, in logged order */
    size_t n;
};

/* the value of metric `name` in p (NaN when absent) */
double trainer_progress_get(const trainer_progress *p, const char *name);

/* ---- the loop ------------------------------------------------------------------------------------- */

typedef struct trainer trainer;

/* Files a recipe adds to a checkpoint (final = 0) or to the export (final = 1). Buffers added with
 * trainer_files_own are freed by the loop. */
#define TRAINER_MAX_FILES 8
typedef struct {
    ckpt_file f[TRAINER_MAX_FILES];
    void *own[TRAINER_MAX_FILES];
    size_t n;
} trainer_files;

/* Add a file whose bytes the loop frees afterwards (-1 when full; data is freed then too). */
int trainer_files_own(trainer_files *fs, const char *name, void *data, size_t len, char *err, size_t errlen);

#define TRAINER_MAX_METRICS 64

/* A recipe's per-step statistics as named double fields of a struct of its state (TRL's metrics of
 * a loss: loss, rewards/margins, ...): the loop zeroes them before each step and, when the recipe
 * has no metrics callback, logs them in order; each micro-batch adds its means (trainer_stats_add). */
typedef struct {
    const char *name;
    size_t off;              /* offsetof the double in the struct */
} trainer_stat;

/* tot.f += x.f * share / accum for every field f: a micro-batch's share of the step's means, where x
 * holds means over this rank's rows and share is their part of the micro-batch's rows (1 alone) */
void trainer_stats_add(void *tot, const void *x, const trainer_stat *f, size_t n, double share, int accum);
/* the fields of x as metrics (out: n entries); returns n */
size_t trainer_stats_metrics(const void *x, const trainer_stat *f, size_t n, trainer_metric *out);

typedef struct {
    const char *name;               /* progress label, and "rlhf <name>" in messages */
    const char *const *loss_names;  /* what micro reports, e.g. {"loss", NULL}: each must be finite */
    /* Load the models (trainer_start_model / trainer_add_model; fresh, or from t->latest when
     * t->resuming) and the data, and check everything; set t->examples, t->steps, etc. as needed.
     * Nothing has been written when this returns. */
    int (*prepare)(void *self, trainer *t, char *err, size_t errlen);
    /* optional: before the step's updates (t->idx holds its examples) */
    int (*begin_step)(void *self, trainer *t, char *err, size_t errlen);
    /* micro-batch a (0..accum) of update u (0..updates): add its gradients, put its losses (in
     * loss_names' order) into loss. Return 1 to say it had nothing to learn (no losses checked). */
    int (*micro)(void *self, trainer *t, int u, int a, double *loss, char *err, size_t errlen);
    /* optional: after the step's updates, before t->st.step advances */
    int (*end_step)(void *self, trainer *t, char *err, size_t errlen);
    /* this step's training metrics (at most TRAINER_MAX_METRICS / 3); NULL: the stats below */
    size_t (*metrics)(void *self, trainer *t, trainer_metric *out);
    /* optional: evaluation on held-out data; the same names as metrics (the loop adds "eval_"); the
     * first one is the loss and must be finite. *n = 0: nothing to evaluate. */
    int (*evaluate)(void *self, trainer *t, trainer_metric *out, size_t *n, char *err, size_t errlen);
    /* optional: extra files for a checkpoint (final 0) or for the export (final 1) */
    int (*files)(void *self, trainer *t, int final, trainer_files *fs, char *err, size_t errlen);
    /* optional: the final export in place of OUT/model/ with the main model and files(final 1) */
    int (*export_model)(void *self, trainer *t, char *err, size_t errlen);
    /* releases the recipe's state (called once, whatever happened) */
    void (*free)(void *self);
    int own_metrics;                /* 1: metrics() is the whole line (no learning_rate, ..., epoch) */
    const trainer_stat *stats;      /* the step's statistics (may be NULL) ... */
    size_t nstats;
    size_t stats_off;               /* ... in the struct at this offset of the recipe's state */
    size_t sums_off, nsums;         /* data parallel: nsums doubles at this offset of the state that the
                                     * loop sums over the ranks after the updates, before end_step */
} trainer_recipe;

/* One block of parameters the optimizer steps: a flat array, its gradients, its AdamW state and the
 * ranges that say which tensors decay. Blocks after the first travel in checkpoints as `file` (the
 * moments, and the parameters too when with_params: a block that is not in the HF folder). */
typedef struct {
    float *params, *grads;
    size_t n;
    adamw *opt;
    adamw_range r[GPT2_NUM_TENSORS];
    size_t nr;
    const char *file;        /* blocks after the first: the checkpoint file of its moments */
    int with_params;
    gpt2 *model;             /* the GPT-2 these parameters belong to (bf16 copies refreshed after each step), or NULL */
} trainer_block;

#define TRAINER_MAX_BLOCKS 4

/* The loop's state. The recipe reads these fields and sets the ones marked "prepare". */
struct trainer {
    const trainer_recipe *rc;
    void *self;
    const trainer_run *run;
    const trainer_optim *optim;
    tok_tokenizer *tok;      /* loaded from the tokenizer folder given to trainer_fit (NULL: none) */
    int threads;             /* run->threads resolved */
    gpt2_precision prec;     /* run->precision resolved */
    int resuming;            /* OUT/latest exists and run->resume is set */
    char latest[4096];       /* the checkpoint folder to resume from */
    /* state saved in checkpoints */
    struct {
        long step;           /* steps done */
        uint64_t cursor;     /* data position: examples (or chunks) consumed */
        uint64_t rng;        /* a recipe's RNG state (0: none) */
        uint64_t num_tokens; /* tokens trained on so far */
    } st;
    /* prepare sets: */
    gpt2 *model;             /* the checkpointed model (block 0), owned by the recipe */
    trainer_block blocks[TRAINER_MAX_BLOCKS];
    size_t nblocks;
    size_t examples;         /* > 0: the loop draws per_step example indices into idx each step */
    size_t per_step;         /* default batch * accum */
    double epoch_len;        /* the epoch metric is cursor / epoch_len (default examples; 0: none) */
    long steps;              /* default: run->steps, else from the epochs over examples */
    int updates;             /* optimizer steps per step: 1 (PPO: epochs x mini-batches) */
    int accum;               /* micro-batches per update: run->accum */
    float grad_scale;        /* gradients *= this before clipping: 1 (pretrain: 1/accum) */
    json_t *settings;        /* the checkpoint's settings: the recipe adds its keys */
    const char *const *resume_keys; /* settings a resumed run must match beyond the data order's */
    int rank, nranks;        /* this process among the data-parallel ranks (0 of 1 alone) */
    /* the loop sets, per step: */
    size_t *idx;             /* this step's example indices (per_step) */
    long update;             /* optimizer steps done (the schedule's position) */
    long total_updates;      /* steps * updates */
    float lr;                /* of the last update */
    double grad_norm;        /* of the last update, before clipping */
    double step_seconds;     /* wall time of this step so far (begin_step to the last update) */
    long resumed_from;
    /* private */
    struct trainer_io *io;
    struct trainer_zero *zero;
    dp_counters comm0;       /* the collectives' counters when this step began */
    ds_sampler smp;
};

typedef struct {
    long resumed_from, steps;
} trainer_result;

/* Run the recipe: check the hyperparameters, load the tokenizer (tokenizer may be NULL: no files
 * travel), check the output folder (an existing run is an error without run->resume), prepare,
 * check a resume against the checkpoint's settings, then create OUT and loop as above. self is
 * freed through recipe->free in every case. */
int trainer_fit(const trainer_recipe *rc, void *self, const trainer_run *run, const trainer_optim *optim,
                const char *tokenizer, trainer_result *res, char *err, size_t errlen);

/* ---- for recipes' prepare ---------------------------------------------------------------------- */

/* The model a fine-tuning run starts from: t->latest when resuming (model, optimizer moments and
 * state), else the Hugging Face folder model_dir with a fresh optimizer. Checks that the model holds
 * the tokenizer's ids, sets its threads, and adds it as block 0. *m is the recipe's to free; *opt
 * must be zeroed and stays the recipe's (adamw_free). */
int trainer_start_model(trainer *t, const char *model_dir, gpt2 **m, adamw *opt, char *err, size_t errlen);
/* The default export: OUT/model/ with the main model, the tokenizer files and files(final 1). */
int trainer_export(trainer *t, char *err, size_t errlen);
/* The tokenizer's vocab.json and merges.txt as files for a folder of the recipe's own (0 or 2). */
size_t trainer_tokenizer_files(const trainer *t, ckpt_file out[2]);
/* Add model m (already loaded) as block 0 with optimizer opt (created here when opt->m is NULL). */
int trainer_add_model(trainer *t, gpt2 *m, adamw *opt, char *err, size_t errlen);
/* A model the recipe uses without training it (a reference): the run's threads and precision. */
void trainer_use_model(const trainer *t, gpt2 *m);
/* Add a further block (a head, a second trunk): its moments travel as `file`. */
int trainer_add_block(trainer *t, const trainer_block *b, char *err, size_t errlen);
/* A GPT-2 as a further block (with its parameters in `file`) / a head's block. */
trainer_block trainer_gpt2_block(gpt2 *m, adamw *opt, const char *file, int with_params);
trainer_block trainer_head_block(head *h, adamw *opt, const char *file);

/* "<folder>: the model's vocabulary (V) is smaller than the tokenizer's (N)" when m cannot hold t's
 * ids (folder: t->latest when resuming, else dir) */
int trainer_check_vocab(const trainer *t, const char *dir, const gpt2 *m, char *err, size_t errlen);
/* the dataset limits: the given ones within the model's n_positions; require_kind: a ds_kind or -1 */
ds_load_opts trainer_load_opts(int max_prompt_len, int max_completion_len, int n_positions, int require_kind);
/* 1 when step `step` (1-based) of `steps` evaluates: every run->eval_every and the last */
int trainer_eval_due(const trainer_run *r, long step, long steps);

/* This rank's contiguous share [lo, hi) of the n rows of a micro-batch (all of them alone). */
void trainer_rows(const trainer *t, size_t n, size_t *lo, size_t *hi);
/* Sum x[0..n) over the ranks in place (nothing alone): for statistics a recipe reduces itself. */
int trainer_sum(const trainer *t, double *x, size_t n, char *err, size_t errlen);

/* "step N: the <what> is nan; stopping without a checkpoint" when v is not finite; else 0. */
int trainer_check_finite(long step, const char *what, double v, char *err, size_t errlen);

/* Size m's activations for (B, T) once, so training steps of any smaller shape allocate nothing. */
int trainer_reserve(gpt2 *m, int B, int T, char *err, size_t errlen);

/* One optimizer step over blocks trained together after their gradients were summed: grads *=
 * grad_scale (1: untouched), one global norm over every block (torch's clip_grad_norm_ over all
 * parameters; NaN/Inf: an error naming `step`), the same clip factor fused into each block's AdamW
 * and the scheduled lr for optimizer step `update` (0-based) of `total`. *norm and *lr_out (may be
 * NULL) get the norm before clipping and the rate used. Allocates nothing. */
int trainer_update_blocks(const trainer_optim *o, long update, long total, const trainer_block *b, size_t nb,
                          float grad_scale, long step, double *norm, float *lr_out, char *err, size_t errlen);

/* The AdamW moments of a block that is not the checkpoint's model (a head, a second trunk), as a
 * file travelling beside optimizer.safetensors in the same layout: exp_avg, exp_avg_sq and, when
 * params != NULL, the block's parameters ("params"); metadata step = o->t. *out: malloc'd. */
int trainer_block_moments_to_mem(const adamw *o, const float *params, uint8_t **out, size_t *len, char *err,
                                 size_t errlen);
/* Read such a file back into o (created with o->n values) and, when params != NULL, the parameters. */
int trainer_block_moments_load(const char *path, adamw *o, float *params, char *err, size_t errlen);

/* ---- data parallel internals (trainer_dp.c) ------------------------------------------------------ */

/* After prepare: check the shape against the ranks and, with run->zero, shard the moments. */
int trainer_dp_begin(trainer *t, char *err, size_t errlen);
/* Sum the step's gradients over the ranks and take the optimizer step (plain or ZeRO-1); the same
 * contract as trainer_update_blocks over t's blocks. */
int trainer_dp_update(trainer *t, char *err, size_t errlen);
/* ZeRO-1: fill every block's full moments (for a checkpoint) / drop them again; no-ops otherwise. */
int trainer_dp_gather_moments(trainer *t, char *err, size_t errlen);
void trainer_dp_drop_moments(trainer *t);
void trainer_dp_free(trainer *t);

/* Parse a trainer_state.json text (exposed for tools and tests); *settings (may be NULL) gets the
 * settings object (a new reference). */
int trainer_state_parse(const char *json, const char *name, long *step, uint64_t *cursor, uint64_t *rng,
                        uint64_t *num_tokens, json_t **settings, char *err, size_t errlen);

#endif
