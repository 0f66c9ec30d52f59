/* mm.c — BLIS sgemm with explicit thread ways and, where BLIS does not know the CPU, an explicit
 * kernel set. See mm.h.
 *
 * Why the kernel choice: Debian's BLIS 0.9 does not recognise newer CPUs (e.g. AMD family 0x1A)
 * and falls back to its generic kernels, ~5x slower than its own AVX-512 ("skx") kernels on the
 * same machine. So when BLIS's own pick is "generic", each call passes the context of the best
 * kernel set the CPU supports for its shape: skx (AVX-512) for products with many rows, zen3
 * (AVX2/FMA) for skinny ones (decoding: 1-16 rows), where skx's larger micro-tiles waste work.
 * That needs BLIS's kernel registry, which only the static library exports; meson links it. */
#include "mm.h"

#include <blis.h>

static cntx_t *pick_cntx(int m, int n)
{
    bli_init(); /* once per process (BLIS guards it); the kernel registry must exist before lookups */
    if (bli_arch_query_id() != BLIS_ARCH_GENERIC) return NULL; /* BLIS chose real kernels itself */
    int skinny = m < 32 || n < 32;
    if (!skinny && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return bli_gks_lookup_nat_cntx(BLIS_ARCH_SKX);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return bli_gks_lookup_nat_cntx(skinny ? BLIS_ARCH_ZEN3 : BLIS_ARCH_HASWELL);
    return NULL;
}

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
                 &beta, C, ldc, 1, pick_cntx(m, n), &rntm);
}
