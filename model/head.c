/* head.c — the scalar head y = h · w + b on GPT-2's hidden states, forward next to backward, and its
 * safetensors file. See head.h. */
#include "head.h"

#include "fileio.h"
#include "mm.h"
#include "rng.h"
#include "safetensors.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct head {
    int C;
    float *params, *grads; /* [w (C), b] */
    float *rows;           /* gathered hidden rows (cap, C) for the per-row head */
    int cap;
    int nthreads;
};

int head_create(head **out, int C, char *err, size_t errlen)
{
    *out = NULL;
    if (C < 1) return fio_fail(err, errlen, "scalar head: width %d must be positive", C);
    head *h = calloc(1, sizeof *h);
    if (h) {
        h->C = C;
        h->params = calloc((size_t)C + 1, sizeof(float));
        h->grads = calloc((size_t)C + 1, sizeof(float));
        h->nthreads = omp_get_max_threads();
    }
    if (!h || !h->params || !h->grads) {
        head_free(h);
        return fio_fail(err, errlen, "scalar head: out of memory");
    }
    *out = h;
    return 0;
}

void head_free(head *h)
{
    if (!h) return;
    free(h->params);
    free(h->grads);
    free(h->rows);
    free(h);
}

int head_dim(const head *h) { return h->C; }
size_t head_num_params(const head *h) { return (size_t)h->C + 1; }
float *head_params(head *h) { return h->params; }
const float *head_params_const(const head *h) { return h->params; }
float *head_grads(head *h) { return h->grads; }
void head_zero_grad(head *h) { memset(h->grads, 0, ((size_t)h->C + 1) * sizeof(float)); }
void head_set_threads(head *h, int n) { h->nthreads = n > 0 ? n : omp_get_max_threads(); }

void head_init(head *h, double std, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < h->C; i++) h->params[i] = std > 0 ? (float)(std * rng_normal(&s)) : 0.0f;
    h->params[h->C] = 0.0f;
}

void head_adamw_ranges(const head *h, adamw_range out[2])
{
    out[0] = (adamw_range){0, (size_t)h->C, 1};
    out[1] = (adamw_range){(size_t)h->C, 1, 0};
}

/* ---- every position ---------------------------------------------------------------------------- */

void head_forward(const head *h, const float *hidden, int N, float *out)
{
    const int C = h->C;
    /* out (N,1) = hidden (N,C) @ w (C,1) */
    mm_sgemm(0, 0, N, 1, C, 1.0f, hidden, C, h->params, 1, 0.0f, out, 1, h->nthreads);
    const float b = h->params[C];
    for (int i = 0; i < N; i++) out[i] += b;
}

void head_backward(head *h, const float *hidden, const float *dout, int N, float *dhidden)
{
    const int C = h->C;
    /* dhidden (N,C) += dout (N,1) @ w^T (1,C) */
    if (dhidden) mm_sgemm(0, 0, N, C, 1, 1.0f, dout, 1, h->params, C, 1.0f, dhidden, C, h->nthreads);
    /* dw (C,1) += hidden^T (C,N) @ dout (N,1) */
    mm_sgemm(1, 0, C, 1, N, 1.0f, hidden, C, dout, 1, 1.0f, h->grads, 1, h->nthreads);
    double db = 0;
    for (int i = 0; i < N; i++) db += dout[i];
    h->grads[C] += (float)db;
}

/* ---- one position per row ---------------------------------------------------------------------- */

/* rows (B,C) = hidden[b, pos[b], :] */
static int gather(head *h, const float *hidden, int B, int T, const int *pos, char *err, size_t errlen)
{
    for (int b = 0; b < B; b++)
        if (pos[b] < 0 || pos[b] >= T)
            return fio_fail(err, errlen, "scalar head: row %d reads position %d outside 0..%d", b, pos[b], T - 1);
    if (B > h->cap) {
        float *r = realloc(h->rows, (size_t)B * (size_t)h->C * sizeof(float));
        if (!r) return fio_fail(err, errlen, "scalar head: out of memory for %d rows", B);
        h->rows = r;
        h->cap = B;
    }
    const size_t C = (size_t)h->C;
    for (int b = 0; b < B; b++) memcpy(h->rows + (size_t)b * C, hidden + ((size_t)b * T + pos[b]) * C, C * sizeof(float));
    return 0;
}

int head_forward_rows(head *h, const float *hidden, int B, int T, const int *pos, float *out, char *err,
                      size_t errlen)
{
    if (gather(h, hidden, B, T, pos, err, errlen)) return -1;
    head_forward(h, h->rows, B, out);
    return 0;
}

int head_backward_rows(head *h, const float *hidden, int B, int T, const int *pos, const float *dout,
                       float *dhidden, char *err, size_t errlen)
{
    if (gather(h, hidden, B, T, pos, err, errlen)) return -1;
    const int C = h->C;
    /* dhidden[b, pos[b], :] += dout[b] w: one scaled vector per row (an axpy, not a product) */
    if (dhidden)
        for (int b = 0; b < B; b++) {
            float *d = dhidden + ((size_t)b * T + pos[b]) * (size_t)C;
            const float g = dout[b], *w = h->params;
            for (int i = 0; i < C; i++) d[i] += g * w[i];
        }
    head_backward(h, h->rows, dout, B, NULL);
    return 0;
}

/* ---- file -------------------------------------------------------------------------------------- */

/* the two tensors of the file, named into wn/bn */
static void head_tensors(const head *h, const char *prefix, char wn[256], char bn[256], st_out t[2])
{
    snprintf(wn, 256, "%sweight", prefix);
    snprintf(bn, 256, "%sbias", prefix);
    t[0] = (st_out){.name = wn, .dtype = ST_F32, .ndim = 2, .shape = {1, h->C}, .data = h->params};
    t[1] = (st_out){.name = bn, .dtype = ST_F32, .ndim = 1, .shape = {1}, .data = h->params + h->C};
}

static const st_meta k_meta = {"format", "pt"};

int head_save(const head *h, const char *path, const char *prefix, char *err, size_t errlen)
{
    char wn[256], bn[256];
    st_out t[2];
    head_tensors(h, prefix, wn, bn, t);
    return st_write(path, t, 2, &k_meta, 1, err, errlen);
}

int head_write_mem(const head *h, const char *prefix, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    char wn[256], bn[256];
    st_out t[2];
    head_tensors(h, prefix, wn, bn, t);
    return st_write_mem(t, 2, &k_meta, 1, out, len, err, errlen);
}

int head_load(const char *path, const char *prefix, head **out, char *err, size_t errlen)
{
    *out = NULL;
    st_file *f;
    if (st_open(path, &f, err, errlen)) return -1;
    char wn[256], bn[256], show[160];
    snprintf(wn, sizeof wn, "%sweight", prefix);
    snprintf(bn, sizeof bn, "%sbias", prefix);
    const st_tensor *w = st_find(f, wn), *b = st_find(f, bn);
    head *h = NULL;
    int rc = -1;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_get(f, i);
        if (t != w && t != b) {
            fio_fail(err, errlen, "%s: unexpected tensor \"%s\" (a scalar head has \"%s\" and \"%s\")", path,
                     fio_show(t->name, show, sizeof show), wn, bn);
            goto done;
        }
    }
    if (!w) {
        fio_fail(err, errlen, "%s: tensor \"%s\" is missing", path, wn);
        goto done;
    }
    if (w->ndim != 2 || w->shape[0] != 1 || w->shape[1] < 1 || w->shape[1] > (1 << 24)) {
        fio_fail(err, errlen, "%s: tensor \"%s\" must have shape [1, C]", path, wn);
        goto done;
    }
    if (b && !(b->ndim == 1 && b->shape[0] == 1)) {
        fio_fail(err, errlen, "%s: tensor \"%s\" must have shape [1]", path, bn);
        goto done;
    }
    if (head_create(&h, (int)w->shape[1], err, errlen)) goto done;
    if (st_read_f32(f, w, h->params, (size_t)h->C, err, errlen)) goto done;
    if (b && st_read_f32(f, b, h->params + h->C, 1, err, errlen)) goto done;
    for (int i = 0; i <= h->C; i++)
        if (!isfinite(h->params[i])) {
            fio_fail(err, errlen, "%s: tensor \"%s\" holds a non-finite value", path, i < h->C ? wn : bn);
            goto done;
        }
    *out = h;
    h = NULL;
    rc = 0;
done:
    head_free(h);
    st_close(f);
    return rc;
}
