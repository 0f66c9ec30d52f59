/* checkpoint.h — training checkpoints: a Hugging Face model folder (config.json +
 * model.safetensors, loadable by transformers as is) plus optimizer.safetensors (AdamW's moments
 * and step) plus trainer_state.json (whatever the trainer needs to continue: step, data position,
 * seed, settings), plus any extra files the caller adds (e.g. the tokenizer).
 *
 * Written whole or not at all: everything goes into ROOT/.step-N.tmp-XXXXXX, which is renamed to
 * ROOT/step-N, and then ROOT/latest (a one-line file naming it) is replaced atomically. Older
 * checkpoints beyond keep_last are removed. A crash at any point leaves the previous checkpoint
 * intact and named by latest. */
#ifndef RLHF_CHECKPOINT_H
#define RLHF_CHECKPOINT_H

#include "adamw.h"
#include "gpt2.h"

#include <stddef.h>

typedef struct {
    const char *name; /* file name inside the checkpoint folder */
    const void *data;
    size_t len;
} ckpt_file;

/* Save step `step`. opt may be NULL (no optimizer state). Returns 0 or -1. */
int ckpt_save(const char *root, long step, const gpt2 *m, const adamw *opt, const char *state_json,
              const ckpt_file *extra, size_t nextra, int keep_last, char *err, size_t errlen);

/* Remove what a crash in the middle of ckpt_save or ckpt_export left in root: the temporary folders
 * ROOT/.step-N.tmp-XXXXXX and ROOT/.export.tmp-XXXXXX (never a complete checkpoint). */
int ckpt_clean(const char *root, char *err, size_t errlen);

/* The folder named by ROOT/latest (into dir), 0; or -1 when there is none (err says why). */
int ckpt_latest(const char *root, char *dir, size_t dirlen, char *err, size_t errlen);

/* A model path as users give it -> the folder to load (into dir): a model or checkpoint folder
 * (it has config.json) is itself; a training run's output folder OUT gives OUT/model (its final
 * model) when there is one, else the checkpoint OUT/latest names; a pointer file (OUT/latest)
 * gives the checkpoint it names; any other folder is itself (the loader then names the file it
 * lacks). 0, or -1 with one line in err (no such path, a pointer naming no checkpoint). Every model loader resolves
 * its path through this (hf_load_gpt2, hf_load_gpt2_score); tokenizer folders too, in the CLI. */
int ckpt_resolve(const char *path, char *dir, size_t dirlen, char *err, size_t errlen);

/* Load a checkpoint folder: the model (new gpt2), the optimizer state into opt (created here when
 * opt->m is NULL; its size must match), and trainer_state.json as a fresh string (caller frees). */
int ckpt_load(const char *dir, gpt2 **m, adamw *opt, char **state_json, char *err, size_t errlen);

/* Copy a folder's model into a plain Hugging Face folder at dst (atomic: dst is replaced whole). */
int ckpt_export(const gpt2 *m, const char *dst, const ckpt_file *extra, size_t nextra, char *err, size_t errlen);

#endif
