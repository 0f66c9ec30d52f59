/* test_head.c — the scalar head (model/head.h): forward against a plain dot product, backward
 * against central finite differences for w, b and the hidden states (every position and one position
 * per row, with accumulation into existing gradients), the zero init, and its safetensors file. */
#include "head.h"
#include "rng.h"
#include "safetensors.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C 24

static head *make_head(uint64_t seed)
{
    head *h;
    char err[256];
    cr_assert(head_create(&h, C, err, sizeof err) == 0, "%s", err);
    head_init(h, 0.5, seed);
    head_params(h)[C] = 0.3f; /* a non-zero bias */
    head_set_threads(h, 1);
    return h;
}

static void fill(float *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(s);
}

/* objective sum_i g[i] * out[i] of the per-row head, in double from the float outputs */
static double obj_rows(head *h, const float *hid, int B, int T, const int *pos, const float *g)
{
    float out[8];
    char err[256];
    cr_assert(head_forward_rows(h, hid, B, T, pos, out, err, sizeof err) == 0, "%s", err);
    double s = 0;
    for (int b = 0; b < B; b++) s += (double)g[b] * out[b];
    return s;
}

static double obj_all(head *h, const float *hid, int N, const float *g)
{
    float out[64];
    head_forward(h, hid, N, out);
    double s = 0;
    for (int i = 0; i < N; i++) s += (double)g[i] * out[i];
    return s;
}

Test(head, forward_is_the_dot_product_plus_bias)
{
    head *h = make_head(3);
    uint64_t s = 11;
    float hid[5 * C], out[5];
    fill(hid, sizeof hid / sizeof *hid, &s);
    head_forward(h, hid, 5, out);
    const float *p = head_params(h);
    for (int i = 0; i < 5; i++) {
        double want = p[C];
        for (int c = 0; c < C; c++) want += (double)hid[i * C + c] * p[c];
        cr_assert(fabs(out[i] - want) < 1e-5, "row %d: %g vs %g", i, out[i], want);
    }
    /* the per-row head reads exactly the asked position of each row */
    const int B = 2, T = 3, pos[2] = {2, 0};
    float hid3[2 * 3 * C], r[2];
    fill(hid3, sizeof hid3 / sizeof *hid3, &s);
    char err[256];
    cr_assert(head_forward_rows(h, hid3, B, T, pos, r, err, sizeof err) == 0, "%s", err);
    for (int b = 0; b < B; b++) {
        float one;
        head_forward(h, hid3 + ((size_t)b * T + pos[b]) * C, 1, &one);
        cr_assert(fabsf(r[b] - one) < 1e-5f, "row %d: %g vs %g", b, r[b], one);
    }
    /* a position outside the row is refused */
    const int bad[2] = {0, 3};
    cr_assert(head_forward_rows(h, hid3, B, T, bad, r, err, sizeof err) == -1);
    cr_assert(strstr(err, "row 1 reads position 3 outside 0..2"), "%s", err);
    head_free(h);
}

Test(head, zero_init_gives_zero_outputs)
{
    head *h;
    char err[256];
    cr_assert(head_create(&h, C, err, sizeof err) == 0);
    head_init(h, 0, 1);
    uint64_t s = 5;
    float hid[3 * C], out[3];
    fill(hid, sizeof hid / sizeof *hid, &s);
    head_forward(h, hid, 3, out);
    for (int i = 0; i < 3; i++) cr_assert(out[i] == 0);
    cr_assert(head_num_params(h) == C + 1 && head_dim(h) == C);
    adamw_range r[2];
    head_adamw_ranges(h, r);
    cr_assert(r[0].offset == 0 && r[0].numel == C && r[0].decay == 1);
    cr_assert(r[1].offset == C && r[1].numel == 1 && r[1].decay == 0);
    head_free(h);
}

/* central differences of a linear objective: the truncation error is zero, what is left is float
 * rounding, so the tolerance is tight */
static void check_fd(double analytic, double plus, double minus, double eps, const char *what, int i)
{
    double fd = (plus - minus) / (2 * eps);
    cr_assert(fabs(fd - analytic) <= 2e-3 * (1 + fabs(analytic)), "%s[%d]: analytic %g, finite difference %g", what, i,
              analytic, fd);
}

Test(head, backward_every_position_matches_finite_differences)
{
    head *h = make_head(7);
    enum { N = 6 };
    uint64_t s = 21;
    float hid[N * C], g[N], dh[N * C];
    fill(hid, N * C, &s);
    fill(g, N, &s);
    /* gradients accumulate: start from non-zero values and check the increments */
    fill(dh, N * C, &s);
    float dh0[N * C];
    memcpy(dh0, dh, sizeof dh);
    head_zero_grad(h);
    head_grads(h)[0] = 1.5f;
    head_backward(h, hid, g, N, dh);
    const double eps = 1e-2;
    float *p = head_params(h);
    for (int i = 0; i <= C; i++) {
        float keep = p[i];
        p[i] = keep + (float)eps;
        double a = obj_all(h, hid, N, g);
        p[i] = keep - (float)eps;
        double b = obj_all(h, hid, N, g);
        p[i] = keep;
        check_fd(head_grads(h)[i] - (i == 0 ? 1.5 : 0), a, b, eps, "dparam", i);
    }
    for (int i = 0; i < N * C; i++) {
        float keep = hid[i];
        hid[i] = keep + (float)eps;
        double a = obj_all(h, hid, N, g);
        hid[i] = keep - (float)eps;
        double b = obj_all(h, hid, N, g);
        hid[i] = keep;
        check_fd((double)dh[i] - dh0[i], a, b, eps, "dhidden", i);
    }
    head_free(h);
}

Test(head, backward_one_position_per_row_matches_finite_differences)
{
    head *h = make_head(9);
    enum { B = 3, T = 4 };
    const int pos[B] = {3, 0, 2};
    uint64_t s = 33;
    float hid[B * T * C], g[B], dh[B * T * C];
    fill(hid, B * T * C, &s);
    fill(g, B, &s);
    memset(dh, 0, sizeof dh);
    head_zero_grad(h);
    char err[256];
    cr_assert(head_backward_rows(h, hid, B, T, pos, g, dh, err, sizeof err) == 0, "%s", err);
    const double eps = 1e-2;
    float *p = head_params(h);
    for (int i = 0; i <= C; i++) {
        float keep = p[i];
        p[i] = keep + (float)eps;
        double a = obj_rows(h, hid, B, T, pos, g);
        p[i] = keep - (float)eps;
        double b = obj_rows(h, hid, B, T, pos, g);
        p[i] = keep;
        check_fd(head_grads(h)[i], a, b, eps, "dparam", i);
    }
    for (int i = 0; i < B * T * C; i++) {
        float keep = hid[i];
        hid[i] = keep + (float)eps;
        double a = obj_rows(h, hid, B, T, pos, g);
        hid[i] = keep - (float)eps;
        double b = obj_rows(h, hid, B, T, pos, g);
        hid[i] = keep;
        check_fd(dh[i], a, b, eps, "dhidden", i);
        /* positions a row does not read get exactly nothing */
        int row = i / (T * C), t = (i / C) % T;
        if (t != pos[row]) cr_assert(dh[i] == 0, "dhidden at unread position (%d, %d)", row, t);
    }
    head_free(h);
}

Test(head, file_round_trip_and_errors)
{
    head *h = make_head(13), *g = NULL;
    char err[512], path[4200];
    const char *dir = tu_tmpdir("head");
    snprintf(path, sizeof path, "%s/v_head.safetensors", dir);
    cr_assert(head_save(h, path, "v_head.summary.", err, sizeof err) == 0, "%s", err);
    /* the layout of torch's nn.Linear(C, 1) */
    st_file *f;
    cr_assert(st_open(path, &f, err, sizeof err) == 0, "%s", err);
    const st_tensor *w = st_find(f, "v_head.summary.weight"), *b = st_find(f, "v_head.summary.bias");
    cr_assert(w && w->ndim == 2 && w->shape[0] == 1 && w->shape[1] == C && w->dtype == ST_F32);
    cr_assert(b && b->ndim == 1 && b->shape[0] == 1);
    cr_assert(st_count(f) == 2);
    st_close(f);
    cr_assert(head_load(path, "v_head.summary.", &g, err, sizeof err) == 0, "%s", err);
    cr_assert(head_dim(g) == C);
    cr_assert(memcmp(head_params(g), head_params(h), (C + 1) * sizeof(float)) == 0);
    head_free(g);
    /* another prefix: the weight is missing */
    cr_assert(head_load(path, "score.", &g, err, sizeof err) == -1 && g == NULL);
    cr_assert(strstr(err, "unexpected tensor \"v_head.summary.weight\""), "%s", err);
    /* a wrong shape */
    float v[2 * C] = {0};
    st_out bad = {.name = "score.weight", .dtype = ST_F32, .ndim = 2, .shape = {2, C}, .data = v};
    cr_assert(st_write(path, &bad, 1, NULL, 0, err, sizeof err) == 0, "%s", err);
    cr_assert(head_load(path, "score.", &g, err, sizeof err) == -1);
    cr_assert(strstr(err, "\"score.weight\" must have shape [1, C]"), "%s", err);
    /* no bias: loads with bias 0 */
    bad.shape[0] = 1;
    v[3] = 2.0f;
    cr_assert(st_write(path, &bad, 1, NULL, 0, err, sizeof err) == 0, "%s", err);
    cr_assert(head_load(path, "score.", &g, err, sizeof err) == 0, "%s", err);
    cr_assert(head_params(g)[3] == 2.0f && head_params(g)[C] == 0.0f);
    head_free(g);
    head_free(h);
}
