/* mm.c — BLIS sgemm with explicit thread ways. See mm.h. */
#include "mm.h"

#include <blis.h>

void mm_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc, int nthreads)
{
    if (m <= 0 || n <= 0) return;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    if (nthreads < 1) nthreads = 1;
    /* threads on the JC loop (columns of C) unless C is too narrow to share */
    if (n >= 64 * nthreads)
        bli_rntm_set_ways(nthreads, 1, 1, 1, 1, &rntm);
    else
        bli_rntm_set_ways(1, 1, nthreads, 1, 1, &rntm);
    /* row-major A stored (m,k): rs = lda, cs = 1; stored (k,m) and used transposed: rs = 1, cs = lda */
    inc_t rsa = ta ? 1 : lda, csa = ta ? lda : 1;
    inc_t rsb = tb ? 1 : ldb, csb = tb ? ldb : 1;
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, (float *)A, rsa, csa, (float *)B, rsb, csb,
                 &beta, C, ldc, 1, NULL, &rntm);
}
