/* test_mm_bf16.c — the bf16 products (mm_bgemm, mm_bweight_view + mm_bgemm_w) against a double-precision
 * loop, with the bound stated below; plain, transposed, strided, batched (attention's layout),
 * alpha/beta, a bias, weight views, odd sizes, 1 and 2 threads; and the bf16 conversion. Skipped, saying so, where the CPU
 * has neither AVX512-BF16 nor usable AMX or the build has no oneDNN.
 *
 * The bound. Let a~, b~ be the inputs rounded to bf16 (8-bit significand, unit roundoff 2^-8, so
 * |a~ - a| <= 2^-8 |a|). Each a~ b~ is exact in fp32 (16 significand bits), and the engine sums k
 * of them in fp32 (unit roundoff u = 2^-24) in some order, so with S~ = sum |a~_i b~_i|:
 *     |C - sum a~_i b~_i| <= k u S~                       (recursive summation, any order)
 * and against the fp32 inputs themselves, with S = sum |a_i b_i|:
 *     |C - sum a_i b_i| <= (2 * 2^-8 + 2^-16) S + k u S~  ~= 2^-7 S.
 * Both are checked (times alpha; beta C and a bias are added in fp32, at the end or into the sum:
 * k u |beta C + bias| more, plus one rounding of the result), with a 1e-30 absolute slack for the
 * engine's flush of denormal inputs. */
#include "cpu.h"
#include "mm.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / 9007199254740992.0 - 0.5);
}

static mm_ctx *ctx_or_skip(void)
{
    mm_ctx *c = NULL;
    char err[256];
    if (!mm_bf16_available() || mm_ctx_create(&c, err, sizeof err)) {
        cr_skip("bf16 products not available here (CPU: %s; %s)", cpu_features_str(),
                mm_bf16_available() ? err : "needs AVX512-BF16 or AMX, and oneDNN in the build");
        return NULL;
    }
    return c;
}

static double bf(float x) { return mm_bf16_f32(mm_bf16(x)); }

/* C (m,n) at row stride ldc against both bounds; a(i,q), b(q,j) read the fp32 inputs */
typedef struct {
    const float *A, *B;
    int ta, tb, lda, ldb;
} operands;
static double opa(const operands *o, int i, int q) { return o->ta ? o->A[(size_t)q * o->lda + i] : o->A[(size_t)i * o->lda + q]; }
static double opb(const operands *o, int q, int j) { return o->tb ? o->B[(size_t)j * o->ldb + q] : o->B[(size_t)q * o->ldb + j]; }

static void check_c(const char *what, const operands *o, int m, int n, int k, float alpha, float beta, const float *C,
                    const float *C0, int ldc, const float *bias)
{
    const double u = ldexp(1.0, -24), ub = ldexp(1.0, -8);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double r = 0, rt = 0, S = 0, St = 0;
            for (int q = 0; q < k; q++) {
                double a = opa(o, i, q), b = opb(o, q, j), at = bf((float)a), bt = bf((float)b);
                r += a * b;
                S += fabs(a * b);
                rt += at * bt;
                St += fabs(at * bt);
            }
            const double c0 = (beta != 0 ? C0[(size_t)i * ldc + j] : 0) + (bias ? bias[j] : 0), got = C[(size_t)i * ldc + j];
            const double want_t = alpha * rt + c0, want = alpha * r + c0; /* c0: beta C + bias */
            /* (a bias may enter the fp32 sum first: k u |c0| covers that order too) */
            const double bound_t = fabs(alpha) * k * u * St + k * u * fabs(c0) + u * fabs(want_t) + 1e-30;
            const double bound = fabs(alpha) * ((2 * ub + ub * ub) * S + k * u * St) + k * u * fabs(c0) + u * fabs(want) + 1e-30;
            cr_assert(fabs(got - want_t) <= bound_t, "%s m=%d n=%d k=%d: C[%d,%d] = %.9g, exact of bf16 inputs %.9g (bound %.3g)",
                      what, m, n, k, i, j, got, want_t, bound_t);
            cr_assert(fabs(got - want) <= bound, "%s m=%d n=%d k=%d: C[%d,%d] = %.9g, exact %.9g (bound %.3g)", what, m,
                      n, k, i, j, got, want, bound);
        }
}

static void check_plain(mm_ctx *c, int ta, int tb, int m, int n, int k, float alpha, float beta, int nt)
{
    uint64_t s = (uint64_t)(m * 131 + n * 7 + k + ta * 3 + tb * 5);
    const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
    const size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc((size_t)m * ldc * 4), *C0 = malloc((size_t)m * ldc * 4);
    uint16_t *A16 = malloc(na * 2), *B16 = malloc(nb * 2);
    for (size_t i = 0; i < na; i++) A[i] = frand(&s);
    for (size_t i = 0; i < nb; i++) B[i] = frand(&s);
    for (long i = 0; i < (long)m * ldc; i++) C[i] = C0[i] = frand(&s);
    mm_to_bf16(A16, A, (long)na);
    mm_to_bf16(B16, B, (long)nb);
    mm_bshape sh = {ta, tb, m, n, k, lda, ldb, ldc, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(mm_bgemm(c, &sh, alpha, A16, B16, beta, C, nt), 0, "%s", mm_ctx_error(c));
    operands o = {A, B, ta, tb, lda, ldb};
    char what[64];
    snprintf(what, sizeof what, "ta=%d tb=%d nt=%d", ta, tb, nt);
    check_c(what, &o, m, n, k, alpha, beta, C, C0, ldc, NULL);
    for (int i = 0; i < m; i++) /* columns beyond n untouched */
        for (int j = n; j < ldc; j++) cr_assert_eq(C[(size_t)i * ldc + j], C0[(size_t)i * ldc + j]);
    free(A), free(B), free(C), free(C0), free(A16), free(B16);
}

Test(mm_bf16, plain_products_within_the_bound)
{
    mm_ctx *c = ctx_or_skip();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int nt = 1; nt <= 2; nt++) {
                check_plain(c, ta, tb, 37, 70, 129, 1.0f, 0.0f, nt);
                check_plain(c, ta, tb, 64, 48, 300, 0.5f, 1.0f, nt);
                check_plain(c, ta, tb, 3, 257, 17, -2.0f, 0.0f, nt);
            }
    mm_ctx_free(c);
}

/* weights as views of bf16 matrices: W (k,n) and W^T with W stored (n,k), strided, with a bias */
Test(mm_bf16, weight_views_with_bias)
{
    mm_ctx *c = ctx_or_skip();
    uint64_t s = 99;
    const int k = 96, n = 200, ldw_n = n + 3, ldw_t = k + 1;
    float *W = malloc((size_t)k * ldw_n * 4), *Wt = malloc((size_t)n * ldw_t * 4);
    uint16_t *W16 = malloc((size_t)k * ldw_n * 2), *Wt16 = malloc((size_t)n * ldw_t * 2);
    for (long i = 0; i < (long)k * ldw_n; i++) W[i] = frand(&s);
    for (long i = 0; i < (long)n * ldw_t; i++) Wt[i] = frand(&s);
    mm_to_bf16(W16, W, (long)k * ldw_n);
    mm_to_bf16(Wt16, Wt, (long)n * ldw_t);
    mm_bweight *w, *wt;
    cr_assert_eq(mm_bweight_view(c, &w, 0, k, n, W16, ldw_n), 0, "%s", mm_ctx_error(c));
    cr_assert_eq(mm_bweight_view(c, &wt, 1, k, n, Wt16, ldw_t), 0, "%s", mm_ctx_error(c));
    const int ms[] = {1, 7, 64, 130};
    for (size_t q = 0; q < 2 * sizeof ms / sizeof *ms; q++)
        for (int nt = 1; nt <= 2; nt++) {
            /* dense A and C (as the model's), then strided ones (correct, though oneDNN then may run
             * slower code) */
            const int dense = q < sizeof ms / sizeof *ms, m = ms[q % (sizeof ms / sizeof *ms)];
            const int lda = dense ? k : k + 5, ldc = dense ? n : n + 1;
            float *A = malloc((size_t)m * lda * 4), *C = malloc((size_t)m * ldc * 4), *C0 = malloc((size_t)m * ldc * 4);
            uint16_t *A16 = malloc((size_t)m * lda * 2);
            for (long i = 0; i < (long)m * lda; i++) A[i] = frand(&s);
            for (long i = 0; i < (long)m * ldc; i++) C[i] = C0[i] = frand(&s);
            mm_to_bf16(A16, A, (long)m * lda);
            for (int t = 0; t < 2; t++) {
                const float beta = (float)t, alpha = t ? 0.25f : 1.0f;
                memcpy(C, C0, (size_t)m * ldc * 4);
                const float *bias = t ? NULL : C0 + (size_t)(m - 1) * ldc; /* any n values */
                cr_assert_eq(mm_bgemm_w(c, m, alpha, A16, lda, t ? wt : w, bias, beta, C, ldc, nt), 0, "%s", mm_ctx_error(c));
                operands o = {A, t ? Wt : W, 0, t, lda, t ? ldw_t : ldw_n};
                check_c(t ? "weight W^T" : "weight W + bias", &o, m, n, k, alpha, beta, C, C0, ldc, bias);
                /* training's shapes get the fast kernels, not oneDNN's reference loops (few rows are
                 * only logged) */
                if (dense && m >= 64) cr_assert(!strstr(mm_ctx_engine(c), "ref"), "m=%d: %s", m, mm_ctx_engine(c));
                if (dense) cr_log_info("m=%d: %s", m, mm_ctx_engine(c));
            }
            free(A), free(C), free(C0), free(A16);
        }
    /* a view reads the matrix as it is at the product: rewriting it changes the next product */
    for (long i = 0; i < (long)k * ldw_n; i++) W16[i] = mm_bf16(-W[i]);
    uint16_t one[96];
    for (int i = 0; i < k; i++) one[i] = i == 3 ? mm_bf16(1.0f) : 0;
    float row[200];
    cr_assert_eq(mm_bgemm_w(c, 1, 1.0f, one, k, w, NULL, 0.0f, row, n, 1), 0);
    for (int j = 0; j < n; j++) cr_assert_eq(row[j], (float)-bf(W[3 * ldw_n + j]), "column %d", j);
    mm_bweight_free(w);
    mm_bweight_free(wt);
    free(W), free(Wt), free(W16), free(Wt16);
    mm_ctx_free(c);
}

/* attention's layout: heads are column blocks of one (B,T,3C) buffer; batch (B, NH) */
Test(mm_bf16, batched_heads_within_the_bound)
{
    mm_ctx *c = ctx_or_skip();
    const int B = 2, NH = 3, T = 19, hs = 8, C = NH * hs, C3 = 3 * C;
    uint64_t s = 7;
    float *qkv = malloc((size_t)B * T * C3 * 4), *S = malloc((size_t)B * NH * T * T * 4);
    float *S0 = malloc((size_t)B * NH * T * T * 4), *O = malloc((size_t)B * T * C * 4);
    uint16_t *q16 = malloc((size_t)B * T * C3 * 2);
    for (long i = 0; i < (long)B * T * C3; i++) qkv[i] = frand(&s);
    for (long i = 0; i < (long)B * NH * T * T; i++) S0[i] = S[i] = frand(&s);
    mm_to_bf16(q16, qkv, (long)B * T * C3);
    for (int nt = 1; nt <= 2; nt++) {
        /* S (b,h) = 0.5 * Q K^T + S */
        mm_bshape qk = {0, 1, T, T, hs, C3, C3, T, B, NH, (long)T * C3, hs, (long)T * C3, hs, (long)NH * T * T, (long)T * T};
        memcpy(S, S0, (size_t)B * NH * T * T * 4);
        cr_assert_eq(mm_bgemm(c, &qk, 0.5f, q16, q16 + C, 1.0f, S, nt), 0, "%s", mm_ctx_error(c));
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + (size_t)b * T * C3 + h * hs;
                operands o = {q, q + C, 0, 1, C3, C3};
                check_c("batched QK^T", &o, T, T, hs, 0.5f, 1.0f, S + ((size_t)b * NH + h) * T * T,
                        S0 + ((size_t)b * NH + h) * T * T, T, NULL);
            }
        /* O (b, :, h) = S^T V, written into column blocks of O (row stride C): transposed batched A */
        uint16_t *s16 = malloc((size_t)B * NH * T * T * 2);
        mm_to_bf16(s16, S, (long)B * NH * T * T);
        mm_bshape pv = {1, 0, T, hs, T, T, C3, C, B, NH, (long)NH * T * T, (long)T * T, (long)T * C3, hs, (long)T * C, hs};
        cr_assert_eq(mm_bgemm(c, &pv, 1.0f, s16, q16 + 2 * C, 0.0f, O, nt), 0, "%s", mm_ctx_error(c));
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                operands o = {S + ((size_t)b * NH + h) * T * T, qkv + (size_t)b * T * C3 + 2 * C + h * hs, 1, 0, T, C3};
                check_c("batched S^T V", &o, T, hs, T, 1.0f, 0.0f, O + (size_t)b * T * C + h * hs, NULL, C, NULL);
            }
        free(s16);
    }
    free(qkv), free(S), free(S0), free(O), free(q16);
    mm_ctx_free(c);
}

Test(mm_bf16, conversion_rounds_to_nearest_even)
{
    /* ties go to even, NaN stays NaN, infinities stay, the vector loop agrees with the scalar */
    float x[6] = {1.0f + ldexpf(1, -8), 1.0f + 3 * ldexpf(1, -8), -1.5f, INFINITY, NAN, 1e-40f};
    uint16_t h[6];
    mm_to_bf16(h, x, 6);
    cr_assert_eq(h[0], 0x3F80); /* tie: down to even */
    cr_assert_eq(h[1], 0x3F82); /* tie: up to even */
    cr_assert_eq(h[2], 0xBFC0);
    cr_assert_eq(h[3], 0x7F80);
    cr_assert(isnan(mm_bf16_f32(h[4])));
    for (int i = 0; i < 6; i++) cr_assert_eq(h[i], mm_bf16(x[i]));
}

Test(mm_bf16, cpu_detection_is_consistent)
{
    const cpu_info *f = cpu_features();
    cr_assert_eq(f, cpu_features(), "one cached record");
    if (f->avx512_bf16 || f->amx_tile) cr_assert(f->avx512f || f->amx_tile);
    if (f->amx_usable) cr_assert(f->amx_tile && f->amx_bf16);
    cr_assert_eq(mm_bf16_available() != 0,
#ifdef RLHF_HAVE_DNNL
                 f->avx512_bf16 || f->amx_usable
#else
                 0
#endif
    );
}
