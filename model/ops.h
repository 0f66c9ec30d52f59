/* ops.h — the GPT-2 layers as plain functions, each forward next to its backward.
 * Shapes: N = B*T rows; C channels; "+=" in a comment means the function accumulates.
 * Matrix products go through mm_sgemm (BLIS); the rest is OpenMP over rows or channels, written so
 * that no two threads ever add into the same float (results do not depend on the thread count). */
#ifndef RLHF_OPS_H
#define RLHF_OPS_H

#include <stdint.h>

#include "mm.h"

/* out (B,T,C) = wte[tok] + wpe[t] */
void op_encoder_fwd(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T, int C);
/* dwte += ..., dwpe += ... */
void op_encoder_bwd(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T, int C);

/* out (N,C) = LayerNorm(inp) * w + b; keeps mean, rstd (N) for backward */
void op_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                      int N, int C, float eps);
/* one row of it (no OpenMP: for callers that are inside a parallel region already) */
void op_layernorm_row(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int C,
                      float eps);
/* dinp += ..., dw += ..., db += ... */
void op_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                      const float *mean, const float *rstd, int N, int C);

/* out (N,OUT) = inp (N,IN) @ w (IN,OUT) + bias (OUT; may be NULL) */
void op_matmul_fwd(float *out, const float *inp, const float *w, const float *bias, int N, int IN, int OUT,
                   int nthreads);
/* dinp = dout @ w^T (overwritten; skipped when NULL), dw += inp^T @ dout, dbias += colsum(dout) */
void op_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                   int N, int IN, int OUT, int nthreads);

/* causal multi-head attention: qkv (B,T,3C) -> out (B,T,C); att (B,NH,T,T) keeps the probabilities */
void op_attention_fwd(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
/* dqkv (B,T,3C) overwritten; scratch: T*T floats per thread (omp_get_max_threads()) */
void op_attention_bwd(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                      int NH, float *scratch);

/* ---- bf16 products (mixed precision, model/gpt2.h's GPT2_PREC_BF16) ----------------------------
 * The same layers with every product in bf16 (fp32 accumulation) through the context c: inputs
 * of products arrive as bf16 copies (inp16, qkv16) the caller keeps from the forward for the
 * backward; weights as mm_bweight copies (w: W (IN,OUT) for the forward; wt: W^T for the
 * backward); outputs, softmax and reductions are fp32. *16 scratch arguments are bf16 buffers of
 * the size of the fp32 array they shadow. Each returns 0, or -1 with mm_ctx_error(c). */
int op_matmul_fwd_bf16(mm_ctx *c, float *out, const uint16_t *inp16, const mm_bweight *w, const float *bias, int N,
                       int IN, int OUT, int nthreads);
/* dinp = dout @ W^T (skipped when NULL), dw = inp^T @ dout + dw_beta * dw (dw_beta 0 or 1: 0 when the
 * caller knows dw is zero, which spares the product reading it), dbias += colsum(dout); dout16 scratch
 * (N,OUT) */
int op_matmul_bwd_bf16(mm_ctx *c, float *dinp, float *dw, float *dbias, const float *dout, uint16_t *dout16,
                       const uint16_t *inp16, const mm_bweight *wt, float dw_beta, int N, int IN, int OUT,
                       int nthreads);
/* att (B,NH,T,T) keeps P in fp32, att16 its bf16 copy (for the backward) */
int op_attention_fwd_bf16(mm_ctx *c, float *out, float *att, uint16_t *att16, const uint16_t *qkv16, int B, int T,
                          int C, int NH, int nthreads);
/* dqkv overwritten; dout16 (B,T,C), dS (B,NH,T,T) and dS16 (B,NH,T,T) scratch */
int op_attention_bwd_bf16(mm_ctx *c, float *dqkv, const float *dout, uint16_t *dout16, const uint16_t *qkv16,
                          const float *att, const uint16_t *att16, float *dS, uint16_t *dS16, int B, int T, int C,
                          int NH, int nthreads);

/* GELU, tanh form */
void op_gelu_fwd(float *out, const float *inp, long n);
/* dinp = dout * gelu'(inp) (overwritten) */
void op_gelu_bwd(float *dinp, const float *inp, const float *dout, long n);

/* out = a + b */
void op_residual_fwd(float *out, const float *a, const float *b, long n);

/* Row-wise log-softmax statistics of logits (N,V): lse (N); logp[n] = logits[n,tgt[n]] - lse[n] */
void op_logprob_fwd(float *logp, float *lse, const float *logits, const int32_t *tgt, int N, int V);
/* in place: logits (N,V) becomes dlogits = dlogp[n] * (onehot(tgt[n]) - softmax(logits[n])) */
void op_logprob_bwd(float *logits, const float *lse, const float *dlogp, const int32_t *tgt, int N, int V);

#endif
