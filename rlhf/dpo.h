/* dpo.h — Direct Preference Optimization (Rafailov et al. 2023) and its variants on GPT-2: the
 * preference losses as plain functions over per-sequence log-probabilities, and the trainer
 * behind `rlhf dpo`.
 *
 * Notation (TRL's): for pair i, logπ_c, logπ_r are the policy's log-probabilities of the chosen and
 * rejected completions given the prompt (sums over the completion tokens), logπ_ref_* the same under
 * the frozen reference, and
 *     h = (logπ_c - logπ_ref_c) - (logπ_r - logπ_ref_r).
 * Losses (mean over pairs; β > 0, ε = label smoothing):
 *   sigmoid  -(1-ε)·logσ(β·h) - ε·logσ(-β·h)                 DPO; ε > 0 is conservative DPO (cDPO)
 *   robust   (-(1-ε)·logσ(β·h) + ε·logσ(-β·h)) / (1 - 2ε)     unbiased under label noise (Chowdhury
 *                                                            et al. 2024), ε in [0, 0.5)
 *   hinge    relu(1 - β·h)                                  SLiC
 *   ipo      (h' - 1/(2β))^2, h' built from LENGTH-AVERAGED log-probs: each log-ratio divided by its
 *            completion's token count (the IPO authors' form, as TRL computes it)
 * Logged, as TRL: rewards/chosen = mean β(logπ_c - logπ_ref_c), rewards/rejected likewise,
 * rewards/margins = their mean difference, rewards/accuracies = share of pairs with chosen reward >
 * rejected reward, logps/chosen and logps/rejected = mean policy log-probs (sums over tokens). The
 * rewards use the summed log-probs for every loss type (IPO averages only inside its loss).
 *
 * Gradients flow back through the per-token log-probs: d loss / d logp[t] = d loss / d logπ for
 * every completion token t of the sequence, fed to gpt2_backward(m, dlogp, NULL).
 */
#ifndef RLHF_DPO_H
#define RLHF_DPO_H

#include "dataset.h"
#include "gpt2.h"
#include "trainer.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { DPO_SIGMOID, DPO_IPO, DPO_HINGE, DPO_ROBUST } dpo_loss_type;

/* "sigmoid", "ipo", "hinge", "robust" <-> the enum; parse returns -1 for an unknown name; the names
 * in enum order, NULL-terminated (option tables) */
extern const char *const dpo_loss_names[];
const char *dpo_loss_name(dpo_loss_type t);
int dpo_loss_parse(const char *name, dpo_loss_type *out);

typedef struct {
    int type;                /* a dpo_loss_type */
    double beta;             /* > 0 */
    double label_smoothing;  /* ε: sigmoid [0, 0.5], robust [0, 0.5), 0 for ipo and hinge */
} dpo_loss_opts;

/* -1 and one line in err when β or ε are out of range for the loss type. */
int dpo_loss_check(const dpo_loss_opts *o, char *err, size_t errlen);

typedef struct {
    double loss;
    double rewards_chosen, rewards_rejected, rewards_margins, rewards_accuracies;
    double logps_chosen, logps_rejected;
} dpo_stats;

/* The mean loss over n pairs. pc, pr: policy log-probs (sums over completion tokens); rc, rr: the
 * reference's; nc, nr: completion token counts (used by ipo only; may be NULL otherwise; a count
 * below 1 counts as 1). dpc, dpr (may be NULL): d mean-loss / d pc, pr. st (may be NULL): metrics. */
double dpo_loss(const dpo_loss_opts *o, int n, const double *pc, const double *pr, const double *rc,
                const double *rr, const float *nc, const float *nr, double *dpc, double *dpr, dpo_stats *st);

/* Per-row sums of per-token log-probs over a mask: out[b] = sum_t logp[b,t] * mask[b,t] (double),
 * ntok[b] = sum_t mask[b,t] (may be NULL). */
void dpo_seq_logps(const float *logp, const float *mask, int B, int T, double *out, float *ntok);

/* ---- training ---------------------------------------------------------------------------------- */

typedef struct {
    trainer_run run;         /* batch = preference pairs per micro-batch */
    trainer_optim optim;
    const char *model;       /* the policy's starting point: a Hugging Face GPT-2 folder (SFT) */
    const char *ref;         /* the reference; NULL: the starting policy itself */
    const char *tokenizer;   /* tokenizer folder (its files travel with checkpoints and the export) */
    const char *data;        /* preference JSONL */
    const char *eval_data;   /* held-out preference JSONL, or NULL */
    int max_prompt_len, max_completion_len; /* as sft_opts */
    dpo_loss_opts loss;
} dpo_opts;

/* TRL's defaults (trainer.h) with DPOConfig's sigmoid loss, beta 0.1 and lr 1e-6. */
dpo_opts dpo_defaults(void);

typedef struct {
    long resumed_from, steps;
    size_t n_train, n_eval;
    dpo_stats train, eval;   /* last step's batch; eval: loss NaN without eval data */
} dpo_result;

/* The whole run. Reference log-probs of every pair (training and eval data) are computed once,
 * before the first step, and cached — in every checkpoint too (ref_logps.safetensors), so a
 * resumed run never needs the reference again. Metrics per step (TRL's names): loss,
 * rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies, logps/chosen,
 * logps/rejected, learning_rate, grad_norm, num_tokens, epoch; eval_* every eval_every steps and at
 * the end when eval data is given. */
int dpo_run(const dpo_opts *o, dpo_result *res, char *err, size_t errlen);

/* Scratch for dpo_step, sized once for `pairs` pairs of up to T tokens (hot loops allocate nothing). */
typedef struct {
    int pairs, T;
    double *lp;              /* (4 * pairs): policy chosen, rejected; reference chosen, rejected */
    double *dlp;             /* (2 * pairs): d loss / d policy log-probs */
    float *ntok;             /* (2 * pairs): completion tokens per row */
    float *dlogp;            /* (2 * pairs * T): per-token upstream gradient for gpt2_backward */
} dpo_work;

int dpo_work_create(dpo_work *w, int pairs, int T, char *err, size_t errlen);
void dpo_work_free(dpo_work *w);

/* One micro-batch: b holds P pairs (2P rows, chosen then rejected); rc, rr their reference log-probs.
 * Policy forward, the loss and metrics (st), and the backward of scale * loss into m's gradients
 * (scale: this micro-batch's share of the step, e.g. P / pairs per step). */
int dpo_step(gpt2 *m, const ds_batch *b, const dpo_loss_opts *o, const double *rc, const double *rr, double scale,
             dpo_work *w, dpo_stats *st, char *err, size_t errlen);

/* Policy log-probs of every pair of d in file order (sums over completion tokens): out[2i] chosen,
 * out[2i+1] rejected; ntok likewise (may be NULL). b: a batch with room for 2 * pairs rows. */
int dpo_dataset_logps(gpt2 *m, const ds_dataset *d, ds_batch *b, int pairs, double *out, float *ntok, char *err,
                      size_t errlen);

#endif
