/* rm.h — the reward model: a GPT-2 trunk plus a scalar head (model/head.h) read at the last real
 * token, trained with the Bradley–Terry loss on preference pairs; scoring; normalisation against a
 * reference policy's samples; its folder. `rlhf rm` and `rlhf score` are thin wrappers.
 *
 * Score position: transformers' rule for GPT2ForSequenceClassification — the rightmost token of
 * the row that is not pad_token_id (within the row's real length; position 0 when there is none).
 * With pad_token_id = EOS, as for GPT-2 in TRL, and the EOS the dataset appends to every completion,
 * that is the completion's last token; a completion cut by the length limit (no EOS) is read at its
 * last token. So a folder written here scores exactly as transformers would score it.
 *
 * Loss (TRL's RewardTrainer): for pairs with rewards r_c, r_r and optional margins m (a numeric
 * "margin" field in the JSONL records; all or none),
 *     loss = mean(-log σ(r_c - r_r - m)) + center · mean((r_c + r_r)^2)
 * (center: TRL's center_rewards_coefficient, 0 = off; it pins the rewards' mean near 0, since the
 * Bradley–Terry loss alone is blind to a shift). Metrics: loss, accuracy (share of pairs with
 * r_c > r_r), margin (mean r_c - r_r), rewards/chosen, rewards/rejected; eval_* on held-out pairs.
 *
 * Folder (rm_save / rm_load): exactly what transformers' GPT2ForSequenceClassification(num_labels
 * 1).save_pretrained writes — config.json (architectures ["GPT2ForSequenceClassification"],
 * num_labels 1, pad_token_id) and model.safetensors (trunk + "score.weight" [1, C]) — plus
 * reward.json: {"bias": b, "normalized": ..., "reference_mean", "reference_std", "samples"}. The
 * score is transformers' logit + bias: transformers' score layer has no bias, so the bias (the
 * normalisation's shift; 0 otherwise) lives in this side file. The normalisation's gain is folded
 * into score.weight.
 *
 * Normalisation (lm-human-preferences): sample completions of prompts from the reference policy,
 * score them, and set gain g = 1/std, bias so the samples score mean 0, std 1 (population std).
 */
#ifndef RLHF_RM_H
#define RLHF_RM_H

#include "checkpoint.h"
#include "dataset.h"
#include "gpt2.h"
#include "head.h"
#include "kv.h"
#include "scorer.h"
#include "trainer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    gpt2 *m;                 /* the trunk (owned) */
    head *h;                 /* the score head (owned): score = w · hidden + b */
    int32_t pad_id;          /* transformers' pad_token_id; -1: read the last real token */
    /* the normalisation applied (reward.json), for the record */
    int normalized;
    double ref_mean, ref_std; /* raw scores of the reference samples before it */
    long ref_samples;
    /* scratch for the backward (grown on use) */
    int *pos;                /* score positions of the last forward's rows */
    int B, T, cap_rows;
    float *dhidden;
    size_t cap_dh;
} rm_model;

/* Wrap a trunk and a head (owned from here on, freed on failure too). */
int rm_create(rm_model **out, gpt2 *m, head *h, int32_t pad_id, char *err, size_t errlen);
void rm_free(rm_model *r);

/* A reward model to train: from a reward-model folder (reward.json present) as saved, else from a
 * GPT-2 folder (pretrained or SFT) with a fresh head w ~ N(0, 1/(C+1)) (lm-human-preferences' init:
 * initial rewards of order 1), b = 0. */
int rm_init(const char *dir, uint64_t seed, int32_t pad_id, rm_model **out, char *err, size_t errlen);

/* The folder above, written whole or not at all (a temporary sibling renamed into place); extra
 * files (e.g. the tokenizer's) go in too. */
int rm_save(const rm_model *r, const char *dir, const ckpt_file *extra, size_t nextra, char *err, size_t errlen);
int rm_load(const char *dir, rm_model **out, char *err, size_t errlen);

/* pos[b] = the score position of row b (see above) */
void rm_positions(const int32_t *tokens, const int *lengths, int B, int T, int32_t pad_id, int *pos);

/* scores (B) of right-padded rows tokens (B,T) with real lengths. Forward of the trunk without the
 * LM head. */
int rm_forward(rm_model *r, const int32_t *tokens, const int *lengths, int B, int T, float *scores, char *err,
               size_t errlen);
/* The reward model as a scorer (data/scorer.h): rm_forward of the rows. */
scorer rm_scorer(rm_model *r);

/* Backward of the last rm_forward for d loss / d scores (B): accumulates into the trunk's and the
 * head's gradients. */
int rm_backward(rm_model *r, const float *dscores, char *err, size_t errlen);

typedef struct {
    double loss, accuracy, margin, chosen, rejected; /* means over the pairs */
} rm_stats;

/* Bradley–Terry loss of n pairs (see above): returns the mean loss; drc, drr (may be NULL) get
 * d loss / d r_c, r_r; margin may be NULL (no margins); center >= 0. */
double rm_bt_loss(const float *rc, const float *rr, const float *margin, int n, double center, float *drc, float *drr,
                  rm_stats *st);

/* Normalise r against n_samples completions sampled from ref (round-robin over the prompts, in
 * batches of `batch`, with the sampling options so; its stop_token should be EOS, which then ends
 * the scored row as in training). prompts[i] has plen[i] tokens. */
typedef struct {
    double mean, std;        /* the raw scores of the samples (before the correction) */
    long n;
} rm_norm_stats;

int rm_normalize(rm_model *r, gpt2 *ref, const int32_t *const *prompts, const int *plen, int nprompts, int n_samples,
                 int batch, const gpt2_sample_opts *so, rm_norm_stats *st, char *err, size_t errlen);

/* ---- training ---------------------------------------------------------------------------------- */

typedef struct {
    trainer_run run;          /* batch = preference pairs per micro-batch; seed also draws the head */
    trainer_optim optim;
    const char *model;        /* starting point: GPT-2 folder (pretrained/SFT) or a reward-model folder */
    const char *tokenizer;    /* tokenizer folder (its files travel with checkpoints and the export) */
    const char *data;         /* preference JSONL (optional numeric "margin" per record) */
    const char *eval_data;    /* held-out preference JSONL, or NULL */
    int max_prompt_len, max_completion_len; /* as sft_opts */
    double center;            /* center_rewards_coefficient (0: off) */
    /* optional normalisation of the final model (NULL: none) */
    const char *normalize_prompts; /* prompt-only JSONL */
    const char *normalize_ref;     /* the reference policy's folder; NULL: `model` */
    int normalize_samples, normalize_max_new_tokens;
    float normalize_temperature;
} rm_opts;

/* TRL's defaults (trainer.h) with RewardConfig's lr 1e-4 and 1 epoch (reward models overfit
 * beyond one, as InstructGPT reports); no centering; normalisation 256 samples of up to 32 new
 * tokens at temperature 1. */
rm_opts rm_defaults(void);

typedef struct {
    long resumed_from, steps;
    size_t n_train, n_eval;
    int margins;                       /* the data had margins */
    rm_stats train, eval;              /* last step's batch; eval NaN without eval data */
    int normalized;
    rm_norm_stats norm;
} rm_result;

int rm_run(const rm_opts *o, rm_result *res, char *err, size_t errlen);

/* Scores of a whole tokenised dataset, in file order, `batch` examples per forward: one per example
 * (prompt + completion, the text, or the prompt alone), two for preferences (chosen in out[2i],
 * rejected in out[2i+1]). */
int rm_score_dataset(rm_model *r, const ds_dataset *d, int batch, float *out, char *err, size_t errlen);

#endif
