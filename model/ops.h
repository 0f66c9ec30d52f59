/* ops.h — the GPT-2 layers as plain functions, each forward next to its backward.
 * Shapes: N = B*T rows; C channels; "+=" in a comment means the function accumulates.
 * Matrix products go through mm_sgemm (BLIS); the rest is OpenMP over rows or channels, written so
 * that no two threads ever add into the same float (results do not depend on the thread count). */
#ifndef RLHF_OPS_H
#define RLHF_OPS_H

#include <stdint.h>

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
