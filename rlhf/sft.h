/* sft.h — supervised fine-tuning of a GPT-2 on JSON Lines data (TRL's SFTTrainer, in C).
 *
 * Data (data/dataset.h): {"prompt", "completion"} records train on the completion tokens only
 * (TRL's completion-only loss: the prompt conditions, it is never a target); {"text"} records train
 * on every token. EOS ends every completion and text. Prompts longer than max_prompt_len lose their
 * beginning, completions longer than max_completion_len their end, and the whole row is kept within
 * the model's n_positions (dataset.h has the exact rules).
 *
 * Loss: the mean of -log p(token) over all completion tokens of an optimizer step (accumulated
 * micro-batches included: each token weighs the same, whatever batch it fell in).
 * Optimiser: AdamW (decay on 2-D weights only), linear warmup then cosine decay to min_lr, global
 * gradient-norm clipping, gradient accumulation — model/adamw.h through rlhf/trainer.h.
 * Order: a seeded shuffle per epoch; the position is one counter, so --resume continues exactly.
 * Metrics per step (TRL's names): loss, mean_token_accuracy, learning_rate, grad_norm, num_tokens
 * (real tokens, prompt included, trained on so far), epoch; and eval_loss, eval_mean_token_accuracy
 * every eval_every steps and at the end when eval data is given. Accuracy is argmax(logits) ==
 * target over completion tokens. */
#ifndef RLHF_SFT_H
#define RLHF_SFT_H

#include "dataset.h"
#include "gpt2.h"
#include "trainer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    trainer_run run;          /* batch = examples per micro-batch; run.out: checkpoints, metrics.jsonl, model/ */
    trainer_optim optim;
    const char *model;        /* Hugging Face GPT-2 folder to start from */
    const char *tokenizer;    /* tokenizer folder (its files travel with checkpoints and the export) */
    const char *data;         /* training JSONL (text or prompt-completion) */
    const char *eval_data;    /* held-out JSONL of the same kind, or NULL */
    int max_prompt_len;       /* prompt tokens kept, from the end (<= 0: no limit but n_positions) */
    int max_completion_len;   /* completion tokens kept, EOS included, from the start */
} sft_opts;

/* TRL's defaults (trainer_run_defaults, trainer_optim_defaults) with SFTConfig's lr 2e-5 and 3 epochs;
 * prompts and completions of at most 512 tokens. */
sft_opts sft_defaults(void);

typedef struct {
    long resumed_from, steps;
    size_t n_train, n_eval;
    ds_kind kind;
    size_t n_prompt_cut, n_completion_cut;  /* training set */
    double loss, eval_loss;                 /* last step's (eval: NaN without eval data) */
} sft_result;

int sft_run(const sft_opts *o, sft_result *res, char *err, size_t errlen);

/* ---- pieces, exposed for tests and for other trainers ------------------------------------------ */

/* Forward one filled batch: sums over its completion tokens (loss_mask) of -log p, of correct
 * argmax predictions, and the count. */
typedef struct {
    double nll, correct, count;
} sft_stats;

int sft_forward(gpt2 *m, const ds_batch *b, sft_stats *s, char *err, size_t errlen);

/* sft_forward then the backward of (sum of -log p over the batch's completion tokens) * scale,
 * accumulating into m's gradients. dlogp: scratch of b->B * b->T floats. */
int sft_forward_backward(gpt2 *m, const ds_batch *b, double scale, float *dlogp, sft_stats *s, char *err,
                         size_t errlen);

/* Loss and token accuracy over a whole dataset (in file order, micro-batches of B). */
int sft_evaluate(gpt2 *m, const ds_dataset *d, ds_batch *b, double *loss, double *accuracy, char *err, size_t errlen);

#endif
