/* head.h — a scalar head on GPT-2's final hidden states: y = h · w + b, Linear(C -> 1).
 *
 * Why one module for two uses: PPO's value head reads every position (one value per token), the
 * reward model reads one position per row (the last real token); both are the same linear map, and
 * their backward both produce dhidden (B,T,C) for gpt2_backward(m, dlogp, dhidden) plus the head's
 * own gradients. Parameters live in one block [w (C), b] (grads in the same layout), so AdamW and
 * checkpoints treat the head like the model's block. Every product goes through mm_sgemm.
 *
 * Files: head_save/head_load write a safetensors file with "<prefix>weight" [1, C] and
 * "<prefix>bias" [1] — the layout of a torch nn.Linear(C, 1), e.g. TRL's value head
 * ("v_head.summary.") or a sequence classifier's "score." (whose bias transformers does not have).
 */
#ifndef RLHF_HEAD_H
#define RLHF_HEAD_H

#include "adamw.h"

#include <stddef.h>
#include <stdint.h>

typedef struct head head;

int head_create(head **out, int C, char *err, size_t errlen);
void head_free(head *h);

int head_dim(const head *h);             /* C */
size_t head_num_params(const head *h);   /* C + 1 */
float *head_params(head *h);             /* [w (C), b] */
const float *head_params_const(const head *h);
float *head_grads(head *h);              /* same layout */
void head_zero_grad(head *h);
void head_set_threads(head *h, int n);   /* for the products (<= 0: OpenMP's default) */

/* w ~ N(0, std^2) from the seed, b = 0; std 0 gives the zero head (lm-human-preferences' value head). */
void head_init(head *h, double std, uint64_t seed);

/* AdamW ranges: w decays (a 2-D weight in torch), b does not. */
void head_adamw_ranges(const head *h, adamw_range out[2]);

/* Every position: out (N) = hidden (N,C) @ w + b. */
void head_forward(const head *h, const float *hidden, int N, float *out);
/* dhidden (N,C) += dout ⊗ w (NULL: skipped); dw += hidden^T dout; db += sum(dout). */
void head_backward(head *h, const float *hidden, const float *dout, int N, float *dhidden);

/* One position per row: out[b] = hidden[b, pos[b], :] · w + b for hidden (B,T,C), 0 <= pos[b] < T.
 * The rows are gathered into the head's scratch (grown on first use, then reused). -1 and err on
 * a bad position or out of memory. */
int head_forward_rows(head *h, const float *hidden, int B, int T, const int *pos, float *out, char *err,
                      size_t errlen);
/* dhidden (B,T,C) += dout[b] w at (b, pos[b]) only (NULL: skipped); dw, db accumulate. Same hidden and
 * pos as the forward. */
int head_backward_rows(head *h, const float *hidden, int B, int T, const int *pos, const float *dout,
                       float *dhidden, char *err, size_t errlen);

/* safetensors file with "<prefix>weight" [1, C] and "<prefix>bias" [1] (F32), written atomically. */
int head_save(const head *h, const char *path, const char *prefix, char *err, size_t errlen);
/* The same bytes into a fresh buffer (*out, caller frees), e.g. for a checkpoint's extra file. */
int head_write_mem(const head *h, const char *prefix, uint8_t **out, size_t *len, char *err, size_t errlen);
/* Read such a file into a new head (C from the file); the bias may be absent (then 0). Any other
 * tensor is an error naming it. */
int head_load(const char *path, const char *prefix, head **out, char *err, size_t errlen);

#endif
