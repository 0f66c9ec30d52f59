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
#include <omp.h>

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

/* Skinny products (decoding: a few rows against a weight matrix) are bound by reading B once from
 * memory. BLIS's small-matrix path streamed GPT-2's weights at ~11 GB/s here; these loops read
 * every row of B exactly once, update all m output rows from it while it is in L1, and split the
 * columns of C over the threads, reaching most of the machine's read bandwidth. */
#define SKINNY_M 8

/* C (m,n) = alpha * A (m,k) @ B (k,n) + beta * C, B row-major (k rows of n), n <= SKINNY_N.
 * Each thread streams a contiguous block of B's rows into a private partial C (on its stack); the
 * partials are then added in thread order (deterministic for a given thread count). */
#define SKINNY_N 4096
static void skinny_nn(int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc, int nthreads)
{
    float part[2][SKINNY_M * SKINNY_N] __attribute__((aligned(64)));
    const int nt = nthreads > 2 ? 2 : nthreads;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int t = nt > 1 ? omp_get_thread_num() : 0;
        const int i0 = (int)((long)k * t / nt), i1 = (int)((long)k * (t + 1) / nt);
        float *acc = part[t];
        for (int x = 0; x < m * n; x++) acc[x] = 0;
        int i = i0;
        /* eight, then four rows of B per pass: the partial rows are read and written that much
         * less often (they, not B, bound the speed once m is a few rows) */
        for (; i + 8 <= i1; i += 8) {
            const float *b0 = B + (size_t)i * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            const float *b4 = b3 + ldb, *b5 = b4 + ldb, *b6 = b5 + ldb, *b7 = b6 + ldb;
            float av[SKINNY_M][8];
            for (int r = 0; r < m; r++)
                for (int q = 0; q < 8; q++) av[r][q] = A[(size_t)r * lda + i + q];
            /* 16 columns at a time: the eight rows' chunks are loaded once, used for every output row */
            int j = 0;
            for (; j + 16 <= n; j += 16) {
                float bv[8][16];
                for (int jj = 0; jj < 16; jj++) {
                    bv[0][jj] = b0[j + jj], bv[1][jj] = b1[j + jj], bv[2][jj] = b2[j + jj], bv[3][jj] = b3[j + jj];
                    bv[4][jj] = b4[j + jj], bv[5][jj] = b5[j + jj], bv[6][jj] = b6[j + jj], bv[7][jj] = b7[j + jj];
                }
                for (int r = 0; r < m; r++) {
                    float *ar = acc + (size_t)r * n + j;
#pragma omp simd
                    for (int jj = 0; jj < 16; jj++)
                        ar[jj] += av[r][0] * bv[0][jj] + av[r][1] * bv[1][jj] + av[r][2] * bv[2][jj] +
                                  av[r][3] * bv[3][jj] + av[r][4] * bv[4][jj] + av[r][5] * bv[5][jj] +
                                  av[r][6] * bv[6][jj] + av[r][7] * bv[7][jj];
                }
            }
            for (; j < n; j++)
                for (int r = 0; r < m; r++)
                    acc[(size_t)r * n + j] += av[r][0] * b0[j] + av[r][1] * b1[j] + av[r][2] * b2[j] + av[r][3] * b3[j] +
                                              av[r][4] * b4[j] + av[r][5] * b5[j] + av[r][6] * b6[j] + av[r][7] * b7[j];
        }
        for (; i + 4 <= i1; i += 4) {
            const float *b0 = B + (size_t)i * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            for (int r = 0; r < m; r++) {
                const float *ar_ = A + (size_t)r * lda + i;
                const float a0 = ar_[0], a1 = ar_[1], a2 = ar_[2], a3 = ar_[3];
                float *ar = acc + (size_t)r * n;
#pragma omp simd
                for (int j = 0; j < n; j++) ar[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
            }
        }
        for (; i < i1; i++) {
            const float *b = B + (size_t)i * ldb;
            for (int r = 0; r < m; r++) {
                const float a = A[(size_t)r * lda + i];
                float *ar = acc + (size_t)r * n;
#pragma omp simd
                for (int j = 0; j < n; j++) ar[j] += a * b[j];
            }
        }
    }
    for (int r = 0; r < m; r++) {
        float *c = C + (size_t)r * ldc;
        const float *p0 = part[0] + (size_t)r * n, *p1 = part[1] + (size_t)r * n;
        for (int j = 0; j < n; j++) {
            float v = nt > 1 ? p0[j] + p1[j] : p0[j];
            c[j] = beta == 0 ? alpha * v : alpha * v + beta * c[j];
        }
    }
}

/* C (m,n) = alpha * A (m,k) @ B^T + beta * C, B stored (n,k): each output a dot product of rows */
static void skinny_nt(int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc, int nthreads)
{
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
    for (int j = 0; j < n; j++) {
        const float *b = B + (size_t)j * ldb;
        float s[SKINNY_M];
        int r = 0;
        /* four dot products at once: four independent accumulation chains instead of one */
        for (; r + 4 <= m; r += 4) {
            const float *a0 = A + (size_t)r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
            for (int i = 0; i < k; i++) {
                s0 += a0[i] * b[i];
                s1 += a1[i] * b[i];
                s2 += a2[i] * b[i];
                s3 += a3[i] * b[i];
            }
            s[r] = s0, s[r + 1] = s1, s[r + 2] = s2, s[r + 3] = s3;
        }
        for (; r < m; r++) {
            const float *a = A + (size_t)r * lda;
            float s0 = 0;
#pragma omp simd reduction(+ : s0)
            for (int i = 0; i < k; i++) s0 += a[i] * b[i];
            s[r] = s0;
        }
        for (r = 0; r < m; r++) {
            float *c = C + (size_t)r * ldc + j;
            *c = beta == 0 ? alpha * s[r] : alpha * s[r] + beta * *c;
        }
    }
}

void mm_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc, int nthreads)
{
    if (m <= 0 || n <= 0) return;
    if (nthreads < 1) nthreads = 1;
    /* measured here: the loops below beat BLIS for m <= 8 against an [in, out] weight, and for
     * m <= 4 against a transposed one (the LM head); BLIS's zen3 kernels win beyond */
    if (!ta && n >= 256 && (tb ? m <= 4 : (m <= SKINNY_M && n <= SKINNY_N))) {
        (tb ? skinny_nt : skinny_nn)(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, nthreads);
        return;
    }
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
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
