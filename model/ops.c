/* ops.c — GPT-2 layer kernels, forward and backward side by side. See ops.h. */
#include "ops.h"

#include "fastmath.h"
#include "mm.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- token + position embedding ---------------------------------------------------------------- */

void op_encoder_fwd(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T, int C)
{
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((long)b * T + t) * C;
            const float *e = wte + (long)tok[b * T + t] * C, *p = wpe + (long)t * C;
            for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
        }
}

void op_encoder_bwd(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T, int C)
{
    /* parallel over channels: each thread owns a slice of every row, so repeated tokens never race */
#pragma omp parallel for
    for (int i = 0; i < C; i++)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                float d = dout[((long)b * T + t) * C + i];
                dwte[(long)tok[b * T + t] * C + i] += d;
                dwpe[(long)t * C + i] += d;
            }
}

/* ---- LayerNorm --------------------------------------------------------------------------------- */

void op_layernorm_row(float *o, float *mean, float *rstd, const float *x, const float *w, const float *b, int C,
                      float eps)
{
    float m = 0;
    for (int i = 0; i < C; i++) m += x[i];
    m /= (float)C;
    float v = 0;
    for (int i = 0; i < C; i++) {
        float d = x[i] - m;
        v += d * d;
    }
    v /= (float)C;
    float s = 1.0f / sqrtf(v + eps);
    for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
    *mean = m;
    *rstd = s;
}

void op_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                      int N, int C, float eps)
{
#pragma omp parallel for
    for (int n = 0; n < N; n++)
        op_layernorm_row(out + (long)n * C, mean + n, rstd + n, inp + (long)n * C, w, b, C, eps);
}

void op_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                      const float *mean, const float *rstd, int N, int C)
{
    /* rows: dinp; then channels: dw, db (two passes, so no thread adds into another's floats) */
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (long)n * C, *dy = dout + (long)n * C;
        float m = mean[n], s = rstd[n];
        float dmean = 0, dnx = 0;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * s, g = dy[i] * w[i];
            dmean += g;
            dnx += g * xh;
        }
        dmean /= (float)C;
        dnx /= (float)C;
        float *dx = dinp + (long)n * C;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * s, g = dy[i] * w[i];
            dx[i] += s * (g - dmean - xh * dnx);
        }
    }
#pragma omp parallel for
    for (int i = 0; i < C; i++) {
        float gw = 0, gb = 0;
        for (int n = 0; n < N; n++) {
            float dy = dout[(long)n * C + i];
            gw += dy * (inp[(long)n * C + i] - mean[n]) * rstd[n];
            gb += dy;
        }
        dw[i] += gw;
        db[i] += gb;
    }
}

/* ---- linear layers ----------------------------------------------------------------------------- */

static float bias_fill(float *out, const float *bias, int N, int OUT);

void op_matmul_fwd(float *out, const float *inp, const float *w, const float *bias, int N, int IN, int OUT,
                   int nthreads)
{
    const float beta = bias_fill(out, bias, N, OUT);
    mm_sgemm(0, 0, N, OUT, IN, 1.0f, inp, IN, w, OUT, beta, out, OUT, nthreads);
}

/* dbias += colsum(dout) (both precisions) */
static void bias_bwd(float *dbias, const float *dout, int N, int OUT)
{
    if (!dbias) return;
#pragma omp parallel for
    for (int o = 0; o < OUT; o++) {
        float s = 0;
        for (int n = 0; n < N; n++) s += dout[(long)n * OUT + o];
        dbias[o] += s;
    }
}

/* out = bias in every row (the product then adds into it), or nothing; returns the product's beta */
static float bias_fill(float *out, const float *bias, int N, int OUT)
{
    if (!bias) return 0.0f;
#pragma omp parallel for
    for (int n = 0; n < N; n++) memcpy(out + (long)n * OUT, bias, (size_t)OUT * sizeof *out);
    return 1.0f;
}

void op_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                   int N, int IN, int OUT, int nthreads)
{
    if (dinp) mm_sgemm(0, 1, N, IN, OUT, 1.0f, dout, OUT, w, OUT, 0.0f, dinp, IN, nthreads);
    mm_sgemm(1, 0, IN, OUT, N, 1.0f, inp, IN, dout, OUT, 1.0f, dw, OUT, nthreads);
    bias_bwd(dbias, dout, N, OUT);
}

int op_matmul_fwd_bf16(mm_ctx *c, float *out, const uint16_t *inp16, const mm_bweight *w, const float *bias, int N,
                       int IN, int OUT, int nthreads)
{
    return mm_bgemm_w(c, N, 1.0f, inp16, IN, w, bias, 0.0f, out, OUT, nthreads);
}

int op_matmul_bwd_bf16(mm_ctx *c, float *dinp, float *dw, float *dbias, const float *dout, uint16_t *dout16,
                       const uint16_t *inp16, const mm_bweight *wt, float dw_beta, int N, int IN, int OUT,
                       int nthreads)
{
    mm_to_bf16(dout16, dout, (long)N * OUT);
    if (dinp && mm_bgemm_w(c, N, 1.0f, dout16, OUT, wt, NULL, 0.0f, dinp, IN, nthreads)) return -1;
    const mm_bshape s = {1, 0, IN, OUT, N, IN, OUT, OUT, 0, 0, 0, 0, 0, 0, 0, 0};
    if (mm_bgemm(c, &s, 1.0f, inp16, dout16, dw_beta, dw, nthreads)) return -1;
    bias_bwd(dbias, dout, N, OUT);
    return 0;
}

/* ---- causal self-attention --------------------------------------------------------------------- */

/* in place: the (T,T) scores become the causal softmax of each row (zeros above the diagonal) */
static void causal_softmax(float *P, int T)
{
    for (int t = 0; t < T; t++) {
        float *a = P + (size_t)t * T;
        float mx = -INFINITY;
        for (int u = 0; u <= t; u++) mx = a[u] > mx ? a[u] : mx;
        float sum = 0;
        for (int u = 0; u <= t; u++) {
            a[u] = fm_expf(a[u] - mx);
            sum += a[u];
        }
        float inv = 1.0f / sum;
        for (int u = 0; u <= t; u++) a[u] *= inv;
        for (int u = t + 1; u < T; u++) a[u] = 0;
    }
}

/* in place: dP (T,T) becomes dS = P * (dP - rowsum(P * dP)) * scale, causal part only */
static void causal_softmax_bwd(float *dS, const float *P, int T, float scale)
{
    for (int t = 0; t < T; t++) {
        const float *p = P + (size_t)t * T;
        float *d = dS + (size_t)t * T;
        float dot = 0;
        for (int u = 0; u <= t; u++) dot += p[u] * d[u];
        for (int u = 0; u <= t; u++) d[u] = p[u] * (d[u] - dot) * scale;
        for (int u = t + 1; u < T; u++) d[u] = 0;
    }
}
/* Per (b, h): S = scale * Q K^T, P = causal softmax(S), O = P V — three small products through BLIS
 * (one thread each; OpenMP spreads the (b, h) pairs over the cores). Q, K, V are strided views of
 * qkv (row stride 3C); O is written straight into out (row stride C). */

void op_attention_fwd(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *P = att + ((size_t)b * NH + h) * T * T;
            mm_sgemm(0, 1, T, T, hs, scale, q, C3, k, C3, 0.0f, P, T, 1);
            causal_softmax(P, T);
            mm_sgemm(0, 0, T, hs, T, 1.0f, P, T, v, C3, 0.0f, out + (size_t)b * T * C + h * hs, C, 1);
        }
}

void op_attention_bwd(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                      int NH, float *scratch)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    /* each (b, h) owns its slices of dqkv: no races */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            float *dS = scratch + (size_t)omp_get_thread_num() * T * T;
            const float *q = qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            const float *P = att + ((size_t)b * NH + h) * T * T, *dO = dout + (size_t)b * T * C + h * hs;
            float *dq = dqkv + (size_t)b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
            /* dV = P^T dO ; dP = dO V^T */
            mm_sgemm(1, 0, T, hs, T, 1.0f, P, T, dO, C, 0.0f, dv, C3, 1);
            mm_sgemm(0, 1, T, T, hs, 1.0f, dO, C, v, C3, 0.0f, dS, T, 1);
            causal_softmax_bwd(dS, P, T, scale);
            /* dQ = dS K ; dK = dS^T Q */
            mm_sgemm(0, 0, T, hs, T, 1.0f, dS, T, k, C3, 0.0f, dq, C3, 1);
            mm_sgemm(1, 0, T, hs, T, 1.0f, dS, T, q, C3, 0.0f, dk, C3, 1);
        }
}

/* ---- causal self-attention in bf16 --------------------------------------------------------------
 * The same computation with every product done for all (b, h) at once by the bf16 engine: the
 * views below say where head (b, h)'s matrix starts (b * s0 + h * s1) and its row stride. Scores,
 * softmax and its backward stay fp32; P and dS are rounded to bf16 only as product inputs. */

typedef struct {
    int ld;
    long s0, s1;
} head_view;

static int heads_mm(mm_ctx *c, int ta, int tb, int m, int n, int k, float alpha, const uint16_t *A, head_view va,
                    const uint16_t *B, head_view vb, float *Cm, head_view vc, int Bn, int NH, int nthreads)
{
    const mm_bshape s = {ta, tb, m, n, k, va.ld, vb.ld, vc.ld, Bn, NH, va.s0, va.s1, vb.s0, vb.s1, vc.s0, vc.s1};
    return mm_bgemm(c, &s, alpha, A, B, 0.0f, Cm, nthreads);
}

int op_attention_fwd_bf16(mm_ctx *c, float *out, float *att, uint16_t *att16, const uint16_t *qkv16, int B, int T,
                          int C, int NH, int nthreads)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    const head_view vq = {C3, (long)T * C3, hs}, vo = {C, (long)T * C, hs}, va = {T, (long)NH * T * T, (long)T * T};
    /* S = scale * Q K^T into att */
    if (heads_mm(c, 0, 1, T, T, hs, scale, qkv16, vq, qkv16 + C, vq, att, va, B, NH, nthreads)) return -1;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) causal_softmax(att + (size_t)bh * T * T, T);
    mm_to_bf16(att16, att, (long)B * NH * T * T);
    /* O = P V, straight into out's column blocks */
    return heads_mm(c, 0, 0, T, hs, T, 1.0f, att16, va, qkv16 + 2 * C, vq, out, vo, B, NH, nthreads);
}

int op_attention_bwd_bf16(mm_ctx *c, float *dqkv, const float *dout, uint16_t *dout16, const uint16_t *qkv16,
                          const float *att, const uint16_t *att16, float *dS, uint16_t *dS16, int B, int T, int C,
                          int NH, int nthreads)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    const head_view vq = {C3, (long)T * C3, hs}, vo = {C, (long)T * C, hs}, va = {T, (long)NH * T * T, (long)T * T};
    float *dq = dqkv, *dk = dqkv + C, *dv = dqkv + 2 * C;
    const uint16_t *q = qkv16, *k = qkv16 + C, *v = qkv16 + 2 * C;
    mm_to_bf16(dout16, dout, (long)B * T * C);
    /* dV = P^T dO ; dP = dO V^T (into dS) */
    if (heads_mm(c, 1, 0, T, hs, T, 1.0f, att16, va, dout16, vo, dv, vq, B, NH, nthreads) ||
        heads_mm(c, 0, 1, T, T, hs, 1.0f, dout16, vo, v, vq, dS, va, B, NH, nthreads))
        return -1;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) causal_softmax_bwd(dS + (size_t)bh * T * T, att + (size_t)bh * T * T, T, scale);
    mm_to_bf16(dS16, dS, (long)B * NH * T * T);
    /* dQ = dS K ; dK = dS^T Q */
    if (heads_mm(c, 0, 0, T, hs, T, 1.0f, dS16, va, k, vq, dq, vq, B, NH, nthreads) ||
        heads_mm(c, 1, 0, T, hs, T, 1.0f, dS16, va, q, vq, dk, vq, B, NH, nthreads))
        return -1;
    return 0;
}

/* ---- GELU (tanh approximation, as GPT-2) ------------------------------------------------------- */

#define GELU_K FM_GELU_K

void op_gelu_fwd(float *out, const float *inp, long n)
{
#pragma omp parallel for simd
    for (long i = 0; i < n; i++) out[i] = fm_gelu(inp[i]);
}

void op_gelu_bwd(float *dinp, const float *inp, const float *dout, long n)
{
#pragma omp parallel for simd
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = fm_tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = g * dout[i];
    }
}

void op_residual_fwd(float *out, const float *a, const float *b, long n)
{
#pragma omp parallel for
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ---- log-probabilities of targets -------------------------------------------------------------- */

void op_logprob_fwd(float *logp, float *lse, const float *logits, const int32_t *tgt, int N, int V)
{
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *l = logits + (long)n * V;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int v = 0; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        /* sum in 16 float lanes per block of 4096, blocks added in double: accurate and vectorised */
        double s = 0;
        for (int v0 = 0; v0 < V; v0 += 4096) {
            int v1 = v0 + 4096 < V ? v0 + 4096 : V;
            float part = 0;
#pragma omp simd reduction(+ : part)
            for (int v = v0; v < v1; v++) part += fm_expf(l[v] - mx);
            s += part;
        }
        lse[n] = mx + (float)log(s);
        if (logp) logp[n] = tgt ? l[tgt[n]] - lse[n] : 0;
    }
}

void op_logprob_bwd(float *logits, const float *lse, const float *dlogp, const int32_t *tgt, int N, int V)
{
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        float *l = logits + (long)n * V;
        float g = dlogp[n], m = lse[n];
#pragma omp simd
        for (int v = 0; v < V; v++) l[v] = -g * fm_expf(l[v] - m);
        l[tgt[n]] += g;
    }
}
