/* ops.c — GPT-2 layer kernels, forward and backward side by side. See ops.h. */
#include "ops.h"

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

void op_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                      int N, int C, float eps)
{
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (long)n * C;
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
        float *o = out + (long)n * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
        mean[n] = m;
        rstd[n] = s;
    }
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

void op_matmul_fwd(float *out, const float *inp, const float *w, const float *bias, int N, int IN, int OUT,
                   int nthreads)
{
    float beta = 0;
    if (bias) {
#pragma omp parallel for
        for (int n = 0; n < N; n++) memcpy(out + (long)n * OUT, bias, (size_t)OUT * sizeof *out);
        beta = 1;
    }
    mm_sgemm(0, 0, N, OUT, IN, 1.0f, inp, IN, w, OUT, beta, out, OUT, nthreads);
}

void op_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                   int N, int IN, int OUT, int nthreads)
{
    if (dinp) mm_sgemm(0, 1, N, IN, OUT, 1.0f, dout, OUT, w, OUT, 0.0f, dinp, IN, nthreads);
    mm_sgemm(1, 0, IN, OUT, N, 1.0f, inp, IN, dout, OUT, 1.0f, dw, OUT, nthreads);
    if (dbias) {
#pragma omp parallel for
        for (int o = 0; o < OUT; o++) {
            float s = 0;
            for (int n = 0; n < N; n++) s += dout[(long)n * OUT + o];
            dbias[o] += s;
        }
    }
}

/* ---- causal self-attention --------------------------------------------------------------------- */

void op_attention_fwd(float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((long)b * T + t) * C3 + h * hs;
                float *a = att + (((long)b * NH + h) * T + t) * T;
                float mx = -INFINITY;
                for (int u = 0; u <= t; u++) {
                    const float *k = qkv + ((long)b * T + u) * C3 + C + h * hs;
                    float s = 0;
                    for (int i = 0; i < hs; i++) s += q[i] * k[i];
                    s *= scale;
                    a[u] = s;
                    if (s > mx) mx = s;
                }
                float sum = 0;
                for (int u = 0; u <= t; u++) {
                    a[u] = expf(a[u] - mx);
                    sum += a[u];
                }
                float inv = 1.0f / sum;
                for (int u = 0; u <= t; u++) a[u] *= inv;
                for (int u = t + 1; u < T; u++) a[u] = 0;
                float *o = out + ((long)b * T + t) * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0;
                for (int u = 0; u <= t; u++) {
                    const float *v = qkv + ((long)b * T + u) * C3 + 2 * C + h * hs;
                    float p = a[u];
                    for (int i = 0; i < hs; i++) o[i] += p * v[i];
                }
            }
}

void op_attention_bwd(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                      int NH, float *scratch)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    /* each (b, h) owns its slices of dqkv: no races */
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            float *datt = scratch + (long)omp_get_thread_num() * T;
            for (int t = 0; t < T; t++) {
                float *dq = dqkv + ((long)b * T + t) * C3 + h * hs;
                for (int i = 0; i < hs; i++) dq[i] = 0;
                for (int i = 0; i < hs; i++) dq[C + i] = 0, dq[2 * C + i] = 0;
            }
            for (int t = T - 1; t >= 0; t--) {
                const float *a = att + (((long)b * NH + h) * T + t) * T;
                const float *dy = dout + ((long)b * T + t) * C + h * hs;
                const float *q = qkv + ((long)b * T + t) * C3 + h * hs;
                float *dq = dqkv + ((long)b * T + t) * C3 + h * hs;
                /* datt[u] = dy . v_u ; dv_u += a[u] dy */
                float dot = 0;
                for (int u = 0; u <= t; u++) {
                    const float *v = qkv + ((long)b * T + u) * C3 + 2 * C + h * hs;
                    float *dv = dqkv + ((long)b * T + u) * C3 + 2 * C + h * hs;
                    float s = 0;
                    for (int i = 0; i < hs; i++) {
                        s += dy[i] * v[i];
                        dv[i] += a[u] * dy[i];
                    }
                    datt[u] = s;
                    dot += s * a[u];
                }
                /* softmax backward, then the scores' inputs */
                for (int u = 0; u <= t; u++) {
                    float ds = a[u] * (datt[u] - dot) * scale;
                    const float *k = qkv + ((long)b * T + u) * C3 + C + h * hs;
                    float *dk = dqkv + ((long)b * T + u) * C3 + C + h * hs;
                    for (int i = 0; i < hs; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                    }
                }
            }
        }
}

/* ---- GELU (tanh approximation, as GPT-2) ------------------------------------------------------- */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

void op_gelu_fwd(float *out, const float *inp, long n)
{
#pragma omp parallel for
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void op_gelu_bwd(float *dinp, const float *inp, const float *dout, long n)
{
#pragma omp parallel for
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = tanhf(u);
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
        for (int v = 0; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        double s = 0;
        for (int v = 0; v < V; v++) s += exp((double)(l[v] - mx));
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
        for (int v = 0; v < V; v++) l[v] = -g * expf(l[v] - m);
        l[tgt[n]] += g;
    }
}
