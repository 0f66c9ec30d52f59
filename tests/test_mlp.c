/* test_mlp.c — the tanh MLP (model/mlp.h): gradients of every parameter and of the input against
 * finite differences, orthogonality and gains of the CleanRL initialisation, the parameter table,
 * and a forward checked against a direct evaluation. */
#include "mlp.h"
#include "rng.h"
#include "tu_float.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* sum of c[i] * out[i]: its gradient w.r.t. out is c */
static double objective(const mlp_shape *s, const float *params, mlp_ws *w, const float *x, int B, const float *c)
{
    const float *out = mlp_forward(s, params, w, x, B, 1);
    double sum = 0;
    for (int i = 0; i < B * s->dims[s->n_layers]; i++) sum += (double)c[i] * out[i];
    return sum;
}

Test(mlp, gradients_match_finite_differences)
{
    const int dims[4] = {3, 5, 4, 2}, B = 3;
    mlp_shape s;
    char err[256];
    /* placed at an offset in a larger block: the offsets must be honoured */
    cr_assert(mlp_shape_init(&s, dims, 3, 7, err, sizeof err) == 0, "%s", err);
    cr_assert(s.n_params == 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2);
    const size_t total = 7 + s.n_params + 5;
    float *p = calloc(total, sizeof *p), *g = calloc(total, sizeof *g);
    uint64_t rng = 42;
    mlp_init(&s, p, 1.0f, &rng);
    for (int l = 0; l < 3; l++)
        for (int j = 0; j < dims[l + 1]; j++) p[s.b_off[l] + j] = (float)(0.3 * rng_normal(&rng));
    float x[9], c[6], dx[9];
    for (int i = 0; i < 9; i++) x[i] = (float)rng_normal(&rng);
    for (int i = 0; i < 6; i++) c[i] = (float)rng_normal(&rng);
    mlp_ws w;
    cr_assert(mlp_ws_create(&w, &s, 4, err, sizeof err) == 0);
    objective(&s, p, &w, x, B, c);
    mlp_backward(&s, p, g, &w, x, c, B, dx, 1);
    /* nothing outside the MLP's slice is touched */
    for (size_t i = 0; i < 7; i++) cr_expect(g[i] == 0 && p[i] == 0);
    for (size_t i = 7 + s.n_params; i < total; i++) cr_expect(g[i] == 0 && p[i] == 0);
    const double h = 1e-2;
    for (size_t i = 7; i < 7 + s.n_params; i++) {
        const float keep = p[i];
        p[i] = (float)(keep + h);
        const double fp = objective(&s, p, &w, x, B, c);
        p[i] = (float)(keep - h);
        const double fm = objective(&s, p, &w, x, B, c);
        p[i] = keep;
        const double fd = (fp - fm) / (2 * h);
        cr_expect(fabs(fd - g[i]) <= 2e-3 * (1 + fabs(fd)), "param %zu: %.6g vs %.6g", i, (double)g[i], fd);
    }
    for (int i = 0; i < 9; i++) {
        const float keep = x[i];
        x[i] = (float)(keep + h);
        const double fp = objective(&s, p, &w, x, B, c);
        x[i] = (float)(keep - h);
        const double fm = objective(&s, p, &w, x, B, c);
        x[i] = keep;
        const double fd = (fp - fm) / (2 * h);
        cr_expect(fabs(fd - dx[i]) <= 2e-3 * (1 + fabs(fd)), "input %d: %.6g vs %.6g", i, (double)dx[i], fd);
    }
    /* a second backward (after a fresh forward: the differences left other activations) accumulates */
    objective(&s, p, &w, x, B, c);
    float *g2 = malloc(total * sizeof *g2);
    memcpy(g2, g, total * sizeof *g2);
    mlp_backward(&s, p, g2, &w, x, c, B, NULL, 1);
    for (size_t i = 7; i < 7 + s.n_params; i++) cr_expect(fabs(g2[i] - 2 * g[i]) <= 1e-6 * (1 + fabs(g[i])));
    mlp_ws_free(&w);
    free(g2);
    free(p);
    free(g);
}

Test(mlp, forward_is_tanh_layers)
{
    const int dims[3] = {2, 3, 1};
    mlp_shape s;
    cr_assert(mlp_shape_init(&s, dims, 2, 0, NULL, 0) == 0);
    /* W0 [in 2, out 3], b0, W1 [3, 1], b1 */
    const float p[13] = {0.1f, -0.2f, 0.3f, 0.4f, 0.5f, -0.6f, 0.01f, 0.02f, 0.03f, 1, -1, 2, 0.5f};
    const float x[2] = {1, -2};
    mlp_ws w;
    cr_assert(mlp_ws_create(&w, &s, 1, NULL, 0) == 0);
    const float *out = mlp_forward(&s, p, &w, x, 1, 1);
    double h[3];
    for (int j = 0; j < 3; j++) h[j] = tanh(x[0] * p[j] + x[1] * p[3 + j] + p[6 + j]);
    const double want = h[0] * 1 - h[1] + 2 * h[2] + 0.5;
    NEAR(out[0], want, 1e-5);
    mlp_ws_free(&w);
    int bad[2] = {3, 0};
    cr_expect(mlp_shape_init(&s, bad, 1, 0, NULL, 0) == -1);
}

/* max |M^T M - gain^2 I| over a (rows, cols) matrix with rows >= cols, or of M M^T otherwise */
static double ortho_error(const float *m, int rows, int cols, double gain)
{
    const int small = rows < cols ? rows : cols;
    double worst = 0;
    for (int a = 0; a < small; a++)
        for (int b = 0; b < small; b++) {
            double d = 0;
            if (rows >= cols)
                for (int r = 0; r < rows; r++) d += (double)m[r * cols + a] * m[r * cols + b];
            else
                for (int c = 0; c < cols; c++) d += (double)m[a * cols + c] * m[b * cols + c];
            d -= a == b ? gain * gain : 0;
            worst = fabs(d) > worst ? fabs(d) : worst;
        }
    return worst;
}

Test(mlp, orthogonal_init)
{
    uint64_t rng = 5;
    float m[64 * 64];
    mlp_orthogonal(m, 64, 4, 1.0f, &rng);
    cr_expect(ortho_error(m, 64, 4, 1.0) < 1e-5);
    mlp_orthogonal(m, 4, 64, 2.0f, &rng);
    cr_expect(ortho_error(m, 4, 64, 2.0) < 1e-5);
    mlp_orthogonal(m, 64, 64, (float)sqrt(2.0), &rng);
    cr_expect(ortho_error(m, 64, 64, sqrt(2.0)) < 1e-5);

    /* CleanRL's actor: obs 4 -> 64 -> 64 -> 2, hidden gain sqrt 2, output gain .01, biases 0 */
    const int dims[4] = {4, 64, 64, 2};
    mlp_shape s;
    cr_assert(mlp_shape_init(&s, dims, 3, 0, NULL, 0) == 0);
    float *p = malloc(s.n_params * sizeof *p);
    for (size_t i = 0; i < s.n_params; i++) p[i] = 1; /* must all be overwritten */
    mlp_init(&s, p, 0.01f, &rng);
    cr_expect(ortho_error(p + s.w_off[0], 4, 64, sqrt(2.0)) < 1e-5);
    cr_expect(ortho_error(p + s.w_off[1], 64, 64, sqrt(2.0)) < 1e-5);
    cr_expect(ortho_error(p + s.w_off[2], 64, 2, 0.01) < 1e-7);
    for (int l = 0; l < 3; l++)
        for (int j = 0; j < dims[l + 1]; j++) cr_expect(p[s.b_off[l] + j] == 0);
    /* two seeds, two different matrices */
    float a[16], b[16];
    uint64_t r1 = 1, r2 = 2;
    mlp_orthogonal(a, 4, 4, 1.0f, &r1);
    mlp_orthogonal(b, 4, 4, 1.0f, &r2);
    cr_expect(memcmp(a, b, sizeof a) != 0);
    free(p);
}
