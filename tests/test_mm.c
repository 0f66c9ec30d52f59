/* test_mm.c — the matrix product against a plain double-precision loop, for every path mm_sgemm
 * takes: the skinny decoding loops (m <= 8), BLIS with each kernel set, all four transposition
 * combinations, strided operands, alpha/beta, and one or two threads. */
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
