/* mlp.c — the tanh MLP: shape table, orthogonal init, forward and backward side by side. See mlp.h. */
#include "mlp.h"

#include "fastmath.h"
#include "fileio.h"
#include "ops.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int mlp_shape_init(mlp_shape *s, const int *dims, int n_layers, size_t offset, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (n_layers < 1 || n_layers > MLP_MAX_LAYERS)
        return fio_fail(err, errlen, "an MLP has 1 to %d layers (got %d)", MLP_MAX_LAYERS, n_layers);
    for (int l = 0; l <= n_layers; l++)
        if (dims[l] < 1 || dims[l] > (1 << 20))
            return fio_fail(err, errlen, "MLP width %d of layer %d is out of range", dims[l], l);
    s->n_layers = n_layers;
    s->offset = offset;
    size_t o = offset;
    for (int l = 0; l <= n_layers; l++) s->dims[l] = dims[l];
    for (int l = 0; l < n_layers; l++) {
        s->w_off[l] = o;
        o += (size_t)dims[l] * (size_t)dims[l + 1];
        s->b_off[l] = o;
        o += (size_t)dims[l + 1];
    }
    s->n_params = o - offset;
    return 0;
}

static int max_dim(const mlp_shape *s)
{
    int m = 0;
    for (int l = 0; l <= s->n_layers; l++) m = s->dims[l] > m ? s->dims[l] : m;
    return m;
}

/* start of layer l's output rows in the workspace */
static float *layer_out(const mlp_shape *s, const mlp_ws *w, int l)
{
    size_t o = 0;
    for (int j = 1; j <= l; j++) o += (size_t)s->dims[j];
    return w->acts + o * (size_t)w->max_batch;
}

int mlp_ws_create(mlp_ws *w, const mlp_shape *s, int max_batch, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    size_t per_row = 0;
    for (int l = 1; l <= s->n_layers; l++) per_row += (size_t)s->dims[l];
    const size_t md = (size_t)max_dim(s) * (size_t)max_batch;
    w->max_batch = max_batch;
    w->acts = malloc(per_row * (size_t)max_batch * sizeof *w->acts);
    w->d0 = malloc(md * sizeof *w->d0);
    w->d1 = malloc(md * sizeof *w->d1);
    if (max_batch < 1 || !w->acts || !w->d0 || !w->d1) {
        mlp_ws_free(w);
        return fio_fail(err, errlen, "out of memory for an MLP workspace (batch %d)", max_batch);
    }
    return 0;
}

void mlp_ws_free(mlp_ws *w)
{
    free(w->acts);
    free(w->d0);
    free(w->d1);
    memset(w, 0, sizeof *w);
}

void mlp_orthogonal(float *m, int rows, int cols, float gain, uint64_t *rng)
{
    /* Q (big, small) with orthonormal columns from a normal matrix; m = Q or Q^T. Work in double. */
    const int big = rows > cols ? rows : cols, small = rows > cols ? cols : rows;
    double *q = malloc((size_t)big * (size_t)small * sizeof *q); /* column-major: column c at q + c*big */
    if (!q) {
        /* an init that cannot allocate a few KB has nothing better to do; zeros keep it defined */
        memset(m, 0, (size_t)rows * (size_t)cols * sizeof *m);
        return;
    }
    for (size_t i = 0; i < (size_t)big * (size_t)small; i++) q[i] = rng_normal(rng);
    for (int c = 0; c < small; c++) {
        double *qc = q + (size_t)c * big;
        for (int p = 0; p < c; p++) { /* modified Gram-Schmidt: remove each earlier direction in turn */
            const double *qp = q + (size_t)p * big;
            double d = 0;
            for (int i = 0; i < big; i++) d += qp[i] * qc[i];
            for (int i = 0; i < big; i++) qc[i] -= d * qp[i];
        }
        double nrm = 0;
        for (int i = 0; i < big; i++) nrm += qc[i] * qc[i];
        nrm = sqrt(nrm);
        for (int i = 0; i < big; i++) qc[i] /= nrm;
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) /* rows >= cols: m = Q; else m = Q^T */
            m[(size_t)r * cols + c] = (float)(gain * (rows >= cols ? q[(size_t)c * big + r] : q[(size_t)r * big + c]));
    free(q);
}

void mlp_init(const mlp_shape *s, float *params, float out_gain, uint64_t *rng)
{
    for (int l = 0; l < s->n_layers; l++) {
        /* torch's weight is (out, in); ours is its transpose (in, out), which is orthogonal the same way */
        const float gain = l == s->n_layers - 1 ? out_gain : (float)sqrt(2.0);
        mlp_orthogonal(params + s->w_off[l], s->dims[l], s->dims[l + 1], gain, rng);
        memset(params + s->b_off[l], 0, (size_t)s->dims[l + 1] * sizeof *params);
    }
}

/* ---- forward and backward ---------------------------------------------------------------------- */
/* h_0 = x; h_{l+1} = tanh(h_l W_l + b_l) for hidden layers, out = h_{L-1} W_{L-1} + b_{L-1}. */

const float *mlp_forward(const mlp_shape *s, const float *params, mlp_ws *w, const float *x, int B, int nthreads)
{
    const float *in = x;
    float *out = NULL;
    for (int l = 0; l < s->n_layers; l++) {
        const int I = s->dims[l], O = s->dims[l + 1];
        out = layer_out(s, w, l);
        op_matmul_fwd(out, in, params + s->w_off[l], params + s->b_off[l], B, I, O, nthreads);
        if (l < s->n_layers - 1) {
            const long n = (long)B * O;
#pragma omp simd
            for (long i = 0; i < n; i++) out[i] = fm_tanhf(out[i]);
        }
        in = out;
    }
    return out;
}

void mlp_backward(const mlp_shape *s, const float *params, float *grads, mlp_ws *w, const float *x, const float *dout,
                  int B, float *dx, int nthreads)
{
    /* g: gradient w.r.t. layer l's output (pre-tanh once multiplied by 1 - h^2) */
    const float *g = dout;
    float *bufs[2] = {w->d0, w->d1};
    for (int l = s->n_layers - 1; l >= 0; l--) {
        const int I = s->dims[l], O = s->dims[l + 1];
        const float *in = l ? layer_out(s, w, l - 1) : x;
        /* d input: into the free scratch buffer, or dx for the first layer (skipped if NULL) */
        float *din = l ? bufs[l & 1] : dx;
        op_matmul_bwd(din, grads + s->w_off[l], grads + s->b_off[l], g, in, params + s->w_off[l], B, I, O, nthreads);
        if (l) {
            const long n = (long)B * I;
#pragma omp simd
            for (long i = 0; i < n; i++) din[i] *= 1.0f - in[i] * in[i]; /* tanh' = 1 - tanh^2 */
        }
        g = din;
    }
}
