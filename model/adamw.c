/* adamw.c — AdamW, gradient clipping and the learning-rate schedule. See adamw.h. */
#include "adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536

adamw_hparams adamw_defaults(void)
{
    adamw_hparams h = {3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f};
    return h;
}

int adamw_create(adamw *o, size_t n)
{
    memset(o, 0, sizeof *o);
    o->n = n;
    o->m = calloc(n ? n : 1, sizeof *o->m);
    o->v = calloc(n ? n : 1, sizeof *o->v);
    o->partial = calloc(n / CHUNK + 1, sizeof *o->partial);
    if (!o->m || !o->v || !o->partial) {
        adamw_free(o);
        return -1;
    }
    return 0;
}

void adamw_free(adamw *o)
{
    free(o->m);
    free(o->v);
    free(o->partial);
    memset(o, 0, sizeof *o);
}

void adamw_step_scaled(adamw *o, float *params, const float *grads, float grad_scale, const adamw_range *ranges,
                       size_t nranges, const adamw_hparams *h, float lr)
{
    o->t++;
    const float b1 = h->beta1, b2 = h->beta2, eps = h->eps;
    const double bc1 = 1.0 - pow(b1, (double)o->t), bc2 = 1.0 - pow(b2, (double)o->t);
    const float step_size = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    for (size_t r = 0; r < nranges; r++) {
        const float decay = ranges[r].decay ? 1.0f - lr * h->weight_decay : 1.0f;
        float *p = params + ranges[r].offset, *m = o->m + ranges[r].offset, *v = o->v + ranges[r].offset;
        const float *g = grads + ranges[r].offset;
        const long n = (long)ranges[r].numel;
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++) {
            float gi = g[i] * grad_scale;
            float pi = p[i] * decay;
            float mi = b1 * m[i] + (1.0f - b1) * gi;
            float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
        }
    }
}

void adamw_step(adamw *o, float *params, const float *grads, const adamw_range *ranges, size_t nranges,
                const adamw_hparams *h, float lr)
{
    adamw_step_scaled(o, params, grads, 1.0f, ranges, nranges, h, lr);
}

float clip_scale(double norm, double max_norm)
{
    /* torch's clip_grad_norm_: coefficient max_norm / (norm + 1e-6), applied when below 1 */
    if (max_norm <= 0 || norm <= max_norm) return 1.0f;
    return (float)(max_norm / (norm + 1e-6));
}

double grad_norm(const float *g, size_t n, double *scratch)
{
    size_t nc = n / CHUNK + 1;
    double *part = scratch ? scratch : malloc(nc * sizeof *part);
    if (!part) return NAN;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nc; c++) {
        size_t a = c * CHUNK, b = a + CHUNK < n ? a + CHUNK : n;
        /* 16 float lanes per chunk (vectorised), the chunk's lanes added in double */
        float lane[16] = {0};
        size_t i = a;
        for (; i + 16 <= b; i += 16)
#pragma omp simd
            for (int j = 0; j < 16; j++) lane[j] += g[i + j] * g[i + j];
        double s = 0;
        for (int j = 0; j < 16; j++) s += lane[j];
        for (; i < b; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += part[c];
    if (!scratch) free(part);
    return sqrt(s);
}

double grad_clip(float *g, size_t n, double max_norm, double *scratch)
{
    double norm = grad_norm(g, n, scratch);
    float c = clip_scale(norm, max_norm);
    if (c != 1.0f) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) g[i] *= c;
    }
    return norm;
}

float lr_schedule(long step, long warmup, long total, float max_lr, float min_lr)
{
    if (step < warmup) return max_lr * (float)(step + 1) / (float)warmup;
    if (step >= total) return min_lr;
    double r = (double)(step - warmup) / (double)(total - warmup > 0 ? total - warmup : 1);
    return min_lr + (float)(0.5 * (1.0 + cos(M_PI * r))) * (max_lr - min_lr);
}
