/* test_mm.c — the matrix product against a plain double-precision loop, for every path mm_sgemm
 * takes: the decode kernels (m <= 8), BLIS with each kernel set, all four transposition
 * combinations, strided operands, alpha/beta, and one or two threads; the decode kernels called
 * directly on column ranges with fp32 and bf16 weights; bf16 rounding. The release build tests the
 * AVX-512 kernels, the sanitizer build (no -march=native) the portable loops. */
#include "cpu.h"
#include "mm.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / 9007199254740992.0 - 0.5);
}

static void check(int ta, int tb, int m, int n, int k, float alpha, float beta, int nt)
{
    uint64_t s = (uint64_t)(m * 131 + n * 7 + k + ta * 3 + tb * 5);
    const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2; /* strided views */
    float *A = malloc((size_t)(ta ? k : m) * lda * 4), *B = malloc((size_t)(tb ? n : k) * ldb * 4);
    float *C = malloc((size_t)m * ldc * 4), *C0 = malloc((size_t)m * ldc * 4);
    for (long i = 0; i < (long)(ta ? k : m) * lda; i++) A[i] = frand(&s);
    for (long i = 0; i < (long)(tb ? n : k) * ldb; i++) B[i] = frand(&s);
    for (long i = 0; i < (long)m * ldc; i++) C[i] = C0[i] = frand(&s);
    mm_sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, nt);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double r = 0, mag = 0;
            for (int q = 0; q < k; q++) {
                double a = ta ? A[(size_t)q * lda + i] : A[(size_t)i * lda + q];
                double b = tb ? B[(size_t)j * ldb + q] : B[(size_t)q * ldb + j];
                r += a * b;
                mag += fabs(a * b);
            }
            r = alpha * r + beta * C0[(size_t)i * ldc + j];
            double got = C[(size_t)i * ldc + j];
            cr_assert(fabs(got - r) <= 1e-5 * (mag + fabs(C0[(size_t)i * ldc + j])) + 1e-6,
                      "ta=%d tb=%d m=%d n=%d k=%d nt=%d: C[%d,%d] = %.7g, want %.7g", ta, tb, m, n, k, nt, i, j, got, r);
        }
    /* columns beyond n in each row of C are untouched */
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++) cr_assert_eq(C[(size_t)i * ldc + j], C0[(size_t)i * ldc + j]);
    free(A);
    free(B);
    free(C);
    free(C0);
}

Test(mm, every_path_against_a_plain_loop)
{
    const int ms[] = {1, 2, 3, 4, 5, 8, 9, 33, 70};
    for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int nt = 1; nt <= 2; nt++) {
                    check(ta, tb, ms[a], 300, 77, 1.0f, 0.0f, nt);   /* wide: the skinny loops when m is small */
                    check(ta, tb, ms[a], 45, 130, 0.5f, 1.0f, nt);   /* narrow: BLIS */
                    check(ta, tb, ms[a], 257, 9, -2.0f, 0.25f, nt);  /* odd sizes, alpha and beta */
                }
}

/* ---- the decode kernels, called directly: every column range, fp32 and bf16 weights ---------- */

/* C[:, j0..j1) against a double loop over the weights as the kernel sees them (bf16: rounded) */
static void check_decode(int nt_form, int bf, int m, int n, int k, int j0, int j1, float alpha, float beta, int bias)
{
    uint64_t s = (uint64_t)(m * 1009 + n * 31 + k * 7 + j0 + bf * 5 + nt_form * 3);
    const int lda = k + 1, ldw = (nt_form ? k : n) + 3, ldc = n + 2, wrows = nt_form ? n : k;
    float *A = malloc((size_t)m * lda * 4), *W = malloc((size_t)wrows * ldw * 4), *b = malloc((size_t)n * 4);
    float *C = malloc((size_t)m * ldc * 4), *C0 = malloc((size_t)m * ldc * 4);
    uint16_t *W16 = malloc(mm_bf16_size(k, n) * 2);
    for (long i = 0; i < (long)m * lda; i++) A[i] = frand(&s);
    for (long i = 0; i < (long)wrows * ldw; i++) W[i] = frand(&s);
    for (int j = 0; j < n; j++) b[j] = frand(&s);
    for (long i = 0; i < (long)m * ldc; i++) C[i] = C0[i] = frand(&s);
    mm_weight w = {W, NULL, ldw};
    if (bf) w = nt_form ? mm_bf16_pack_nt(W16, W, ldw, n, k, 1) : mm_bf16_pack_nn(W16, W, ldw, k, n, 1);
    const int amx = mm_decode_amx(m, k, w); /* AMX tiles round the activations to bf16 as well */
    (nt_form ? mm_decode_nt : mm_decode_nn)(m, k, j0, j1, alpha, A, lda, w, beta, bias ? b : NULL, C, ldc);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            const float got = C[(size_t)i * ldc + j], c0 = C0[(size_t)i * ldc + j];
            if (j < j0 || j >= j1) {
                cr_assert_eq(got, c0, "nt=%d bf=%d m=%d n=%d k=%d [%d,%d): column %d outside the range changed", nt_form,
                             bf, m, n, k, j0, j1, j);
                continue;
            }
            double r = 0, mag = 0;
            for (int q = 0; q < k; q++) {
                float wv = nt_form ? W[(size_t)j * ldw + q] : W[(size_t)q * ldw + j], av = A[(size_t)i * lda + q];
                if (bf) wv = mm_bf16_f32(mm_bf16(wv));
                if (amx) av = mm_bf16_f32(mm_bf16(av));
                r += (double)av * wv;
                mag += fabs((double)av * wv);
            }
            r = alpha * r + (beta != 0 ? beta * c0 : 0) + (bias ? b[j] : 0);
            cr_assert(fabs(got - r) <= 1e-5 * (mag + fabs(c0) + 1) + 1e-6,
                      "nt=%d bf=%d m=%d n=%d k=%d [%d,%d): C[%d,%d] = %.7g, want %.7g", nt_form, bf, m, n, k, j0, j1, i, j,
                      got, r);
        }
    free(A);
    free(W);
    free(b);
    free(C);
    free(C0);
    free(W16);
}

Test(mm, decode_kernels_against_a_plain_loop)
{
    /* m: every row count of one group, and beyond (groups of 8); n, k: multiples of 16, 32 and odd
     * ones (masked tails, an odd k's zero row in the bf16 pairs, k below one block of 8 rows) */
    const int ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};
    const int nk[][2] = {{64, 32}, {77, 45}, {33, 3}, {130, 16}, {16, 129}};
    for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
        for (size_t q = 0; q < sizeof nk / sizeof *nk; q++)
            for (int form = 0; form < 2; form++)
                for (int bf = 0; bf < 2; bf++) {
                    const int n = nk[q][0], k = nk[q][1];
                    check_decode(form, bf, ms[a], n, k, 0, n, 1.0f, 0.0f, 0);
                    check_decode(form, bf, ms[a], n, k, 0, n, 0.5f, 1.0f, 1); /* accumulate + bias */
                    int j0, j1;                                             /* a thread's share */
                    mm_cols(n, 1, 2, &j0, &j1);
                    check_decode(form, bf, ms[a], n, k, j0, j1, -2.0f, 0.25f, 1);
                    check_decode(form, bf, ms[a], n, k, 5, n - 3 > 5 ? n - 3 : n, 1.0f, 0.0f, 1); /* unaligned */
                }
}

/* AMX tiles (Intel CPUs that have them, with the kernel's permission): calls of >= 4 rows with k a
 * multiple of 32 take them; against the same double loop with the activations rounded to bf16 too
 * (the tile products of bf16 pairs are exact, the sums fp32: the 1e-5 relative bound holds) */
Test(mm, decode_amx_tiles_against_a_plain_loop)
{
    const cpu_info *c = cpu_features();
    if (!c->amx_usable) {
        cr_skip_test("no usable AMX on this CPU (%s): the AMX decode path is tested where it exists", cpu_features_str());
        return;
    }
    const int ms[] = {4, 5, 8, 15, 16, 17, 33};
    const int nk[][2] = {{64, 32}, {80, 96}, {50, 64}, {200, 768}};
    for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
        for (size_t q = 0; q < sizeof nk / sizeof *nk; q++)
            for (int form = 0; form < 2; form++) {
                const int n = nk[q][0], k = nk[q][1];
                const mm_weight probe = {NULL, (const uint16_t *)c, 0}; /* any non-NULL bf16 pointer */
                cr_assert(mm_decode_amx(ms[a], k, probe), "m=%d k=%d should take the AMX path", ms[a], k);
                check_decode(form, 1, ms[a], n, k, 0, n, 1.0f, 0.0f, 0);
                check_decode(form, 1, ms[a], n, k, 0, n, 0.5f, 1.0f, 1);
                int j0, j1;
                mm_cols(n, 1, 2, &j0, &j1);
                check_decode(form, 1, ms[a], n, k, j0, j1, -2.0f, 0.25f, 1);
                check_decode(form, 1, ms[a], n, k, 5, n - 3, 1.0f, 0.0f, 1);
            }
}

Test(mm, column_shares_cover_n_at_multiples_of_16)
{
    const int ns[] = {1, 16, 17, 300, 50257};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (int nt = 1; nt <= 5; nt++) {
            int prev = 0;
            for (int t = 0; t < nt; t++) {
                int j0, j1;
                mm_cols(ns[a], t, nt, &j0, &j1);
                cr_assert(j0 == prev && j1 >= j0 && (j0 % 16 == 0 || j0 == ns[a]), "n=%d nt=%d t=%d: [%d,%d)", ns[a], nt,
                          t, j0, j1);
                prev = j1;
            }
            cr_assert_eq(prev, ns[a]);
        }
}

Test(mm, bf16_rounds_to_nearest_even)
{
    /* bf16 keeps 8 significant bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 (ties to the even
     * 1), 1 + 3 * 2^-8 halfway between 1 + 2^-7 and 1 + 2^-6 (ties to even 1 + 2^-6); just above
     * a tie rounds up */
    cr_assert_eq(mm_bf16_f32(mm_bf16(1.0f + 0x1p-8f)), 1.0f);
    cr_assert_eq(mm_bf16_f32(mm_bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
    cr_assert_eq(mm_bf16_f32(mm_bf16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
    cr_assert_eq(mm_bf16_f32(mm_bf16(-2.5f)), -2.5f);
    cr_assert_eq(mm_bf16_f32(mm_bf16(INFINITY)), INFINITY);
    cr_assert(isnan(mm_bf16_f32(mm_bf16(NAN))));
    cr_assert_eq(mm_bf16_f32(mm_bf16(0x1.fffffep127f)), INFINITY); /* FLT_MAX rounds up past the largest bf16 */
}
