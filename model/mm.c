/* mm.c — BLIS sgemm with explicit thread ways and, where BLIS does not know the CPU, an explicit
 * kernel set; and the decode kernels (AVX-512 where the build targets it, portable loops otherwise).
 * See mm.h.
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
#include <string.h>

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

/* ---- decoding kernels ----------------------------------------------------------------------------
 * A few rows against a weight matrix are bound by reading the weights once from memory (BLIS's
 * small-matrix path streamed GPT-2's weights at ~11 GB/s here). W (k, n): the output slice of C is
 * the accumulator (it stays in L1); each pass reads KB rows of W across the slice once and adds
 * them into every output row, two 16-column vectors at a time, so each broadcast of an A value
 * feeds two FMAs. W transposed (n, k): dot products of rows, NJ rows of W per pass against up to 8
 * rows of A, MR x NJ accumulators in registers. bf16 weights are widened by shifting them into the
 * high half of a float (exact); activations and sums stay fp32. */

void mm_cols(int n, int t, int nt, int *j0, int *j1)
{
    const int nb = (n + 15) / 16;
    const int b0 = (int)((long)nb * t / nt), b1 = (int)((long)nb * (t + 1) / nt);
    *j0 = 16 * b0 < n ? 16 * b0 : n;
    *j1 = 16 * b1 < n ? 16 * b1 : n;
}

/* out = alpha * dot + beta * out + bias[j] */
static inline void put(float *c, float dot, float alpha, float beta, const float *bias, int j)
{
    float v = alpha * dot + (bias ? bias[j] : 0.0f);
    *c = beta == 0 ? v : v + beta * *c;
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>

#define AI static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16") /* constant trip counts: arrays indexed by constants stay in registers */
#define NN_KB 8 /* weight rows per pass */

/* rows i..i+KB of W, columns j..j+16 (lanes in msk), as floats */
AI void nn_rows(__m512 *w, const int KB, const int BF, mm_weight W, int i, int j, __mmask16 msk)
{
    if (BF) {
        UNROLL
        for (int p = 0; p < KB / 2; p++) {
            __m512i v = _mm512_maskz_loadu_epi32(msk, W.bf16 + ((size_t)(i / 2 + p) * (size_t)W.ld + (size_t)j) * 2);
            w[2 * p] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            w[2 * p + 1] = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u)));
        }
    } else {
        UNROLL
        for (int q = 0; q < KB; q++) w[q] = _mm512_maskz_loadu_ps(msk, W.f32 + (size_t)(i + q) * (size_t)W.ld + j);
    }
}

/* C[r, j0..j1) += sum_q xs[r * KB + q] * W[i + q, j0..j1) for r < mr */
AI void nn_pass(const int KB, const int BF, int mr, const float *xs, mm_weight W, int i, int j0, int j1, float *C,
                int ldc)
{
    int j = j0;
    for (; j + 32 <= j1; j += 32) {
        __m512 wa[NN_KB], wb[NN_KB];
        nn_rows(wa, KB, BF, W, i, j, 0xFFFF);
        nn_rows(wb, KB, BF, W, i, j + 16, 0xFFFF);
        for (int r = 0; r < mr; r++) {
            float *c = C + (size_t)r * ldc + j;
            __m512 ca = _mm512_loadu_ps(c), cb = _mm512_loadu_ps(c + 16);
            UNROLL
            for (int q = 0; q < KB; q++) {
                const __m512 x = _mm512_set1_ps(xs[r * KB + q]);
                ca = _mm512_fmadd_ps(x, wa[q], ca);
                cb = _mm512_fmadd_ps(x, wb[q], cb);
            }
            _mm512_storeu_ps(c, ca);
            _mm512_storeu_ps(c + 16, cb);
        }
    }
    for (; j < j1; j += 16) {
        const __mmask16 msk = j1 - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (j1 - j)) - 1);
        __m512 wa[NN_KB];
        nn_rows(wa, KB, BF, W, i, j, msk);
        for (int r = 0; r < mr; r++) {
            float *c = C + (size_t)r * ldc + j;
            __m512 ca = _mm512_maskz_loadu_ps(msk, c);
            UNROLL
            for (int q = 0; q < KB; q++) ca = _mm512_fmadd_ps(_mm512_set1_ps(xs[r * KB + q]), wa[q], ca);
            _mm512_mask_storeu_ps(c, msk, ca);
        }
    }
}

/* W rows i..i+KB against every group of 8 rows of A (alpha folded into the staged A values) */
AI void nn_block(const int KB, const int BF, int m, int k, int i, int j0, int j1, float alpha, const float *A,
                 int lda, mm_weight W, float *C, int ldc)
{
    float xs[8 * NN_KB];
    for (int r0 = 0; r0 < m; r0 += 8) {
        const int mr = m - r0 < 8 ? m - r0 : 8;
        for (int r = 0; r < mr; r++)
            for (int q = 0; q < KB; q++) xs[r * KB + q] = i + q < k ? alpha * A[(size_t)(r0 + r) * lda + i + q] : 0.0f;
        nn_pass(KB, BF, mr, xs, W, i, j0, j1, C + (size_t)r0 * ldc, ldc);
    }
}

/* C's slice is the accumulator, in L1/L2 while the weights stream past (callers keep C's rows from
 * being a multiple of 4 KiB apart: 8 of them and 8 weight rows on one L1 set would thrash it) */
static void decode_nn(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float *C,
                      int ldc)
{
    int i = 0;
    if (W.bf16) {
        for (; i + NN_KB <= k; i += NN_KB) nn_block(NN_KB, 1, m, k, i, j0, j1, alpha, A, lda, W, C, ldc);
        for (; i < k; i += 2) nn_block(2, 1, m, k, i, j0, j1, alpha, A, lda, W, C, ldc); /* odd k: zero row */
    } else {
        for (; i + NN_KB <= k; i += NN_KB) nn_block(NN_KB, 0, m, k, i, j0, j1, alpha, A, lda, W, C, ldc);
        for (; i < k; i++) nn_block(1, 0, m, k, i, j0, j1, alpha, A, lda, W, C, ldc);
    }
}

/* 16 values of row j of a transposed weight from column kk, as floats */
AI __m512 nt_load(const int BF, mm_weight W, int j, int kk, __mmask16 msk)
{
    if (BF)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(msk, W.bf16 + (size_t)j * (size_t)W.ld + kk)), 16));
    return _mm512_maskz_loadu_ps(msk, W.f32 + (size_t)j * (size_t)W.ld + kk);
}

/* dots of A rows r0..r0+MR with W rows j..j+NJ into C */
AI void nt_tile(const int MR, const int NJ, const int BF, int k, int j, float alpha, const float *A, int lda,
                mm_weight W, float beta, const float *bias, float *C, int ldc)
{
    __m512 acc[8][8]; /* fixed sizes (not VLAs): fully unrolled, they live in registers */
    UNROLL
    for (int r = 0; r < MR; r++)
        UNROLL
        for (int q = 0; q < NJ; q++) acc[r][q] = _mm512_setzero_ps();
    for (int kk = 0; kk < k; kk += 16) {
        const __mmask16 msk = k - kk >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - kk)) - 1);
        __m512 w[8];
        UNROLL
        for (int q = 0; q < NJ; q++) {
            /* the next tile's rows, same columns: the hardware prefetcher alone left these loads
             * waiting on memory (NJ short streams crossing pages) */
            _mm_prefetch((const char *)(BF ? (const void *)(W.bf16 + (size_t)(j + NJ + q) * (size_t)W.ld + kk)
                                            : (const void *)(W.f32 + (size_t)(j + NJ + q) * (size_t)W.ld + kk)),
                         _MM_HINT_T0);
            w[q] = nt_load(BF, W, j + q, kk, msk);
        }
        UNROLL
        for (int r = 0; r < MR; r++) {
            const __m512 a = _mm512_maskz_loadu_ps(msk, A + (size_t)r * lda + kk);
            UNROLL
            for (int q = 0; q < NJ; q++) acc[r][q] = _mm512_fmadd_ps(a, w[q], acc[r][q]);
        }
    }
    UNROLL
    for (int r = 0; r < MR; r++)
        UNROLL
        for (int q = 0; q < NJ; q++)
            put(C + (size_t)r * ldc + j + q, _mm512_reduce_add_ps(acc[r][q]), alpha, beta, bias, j + q);
}

/* columns j0..j1 for MR rows of A: NJ rows of W at a time (MR * NJ <= 16 accumulators), then one */
AI void nt_rows(const int MR, const int NJ, const int BF, int k, int j0, int j1, float alpha, const float *A,
                int lda, mm_weight W, float beta, const float *bias, float *C, int ldc)
{
    int j = j0;
    for (; j + NJ <= j1; j += NJ) nt_tile(MR, NJ, BF, k, j, alpha, A, lda, W, beta, bias, C, ldc);
    for (; j < j1; j++) nt_tile(MR, 1, BF, k, j, alpha, A, lda, W, beta, bias, C, ldc);
}

#define NT_CASES(BF)                                                                                          \
    switch (mr) {                                                                                             \
    case 1: nt_rows(1, 8, BF, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 2: nt_rows(2, 8, BF, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 3: nt_rows(3, 4, BF, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 4: nt_rows(4, 4, BF, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 5: nt_rows(5, 2, BF, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 6: nt_rows(6, 2, BF, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 7: nt_rows(7, 2, BF, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    default: nt_rows(8, 2, BF, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                       \
    }

static void decode_nt(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                      const float *bias, float *C, int ldc)
{
    for (int r0 = 0; r0 < m; r0 += 8) {
        const int mr = m - r0 < 8 ? m - r0 : 8;
        const float *a = A + (size_t)r0 * lda;
        float *c = C + (size_t)r0 * ldc;
        if (W.bf16) {
            NT_CASES(1)
        } else {
            NT_CASES(0)
        }
    }
}

#else /* portable loops: the same arithmetic, left to the compiler's vectoriser */

static inline float w_nn(mm_weight W, int i, int j)
{
    return W.bf16 ? mm_bf16_f32(W.bf16[((size_t)(i / 2) * (size_t)W.ld + (size_t)j) * 2 + (size_t)(i & 1)])
                  : W.f32[(size_t)i * (size_t)W.ld + j];
}

static void decode_nn(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float *C,
                      int ldc)
{
    for (int i = 0; i < k; i++)
        for (int r = 0; r < m; r++) {
            const float a = alpha * A[(size_t)r * lda + i];
            float *c = C + (size_t)r * ldc;
#pragma omp simd
            for (int j = j0; j < j1; j++) c[j] += a * w_nn(W, i, j);
        }
}

static void decode_nt(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                      const float *bias, float *C, int ldc)
{
    for (int j = j0; j < j1; j++)
        for (int r = 0; r < m; r++) {
            const float *a = A + (size_t)r * lda;
            float s = 0;
            if (W.bf16) {
                const uint16_t *w = W.bf16 + (size_t)j * (size_t)W.ld;
#pragma omp simd reduction(+ : s)
                for (int i = 0; i < k; i++) s += a[i] * mm_bf16_f32(w[i]);
            } else {
                const float *w = W.f32 + (size_t)j * (size_t)W.ld;
#pragma omp simd reduction(+ : s)
                for (int i = 0; i < k; i++) s += a[i] * w[i];
            }
            put(C + (size_t)r * ldc + j, s, alpha, beta, bias, j);
        }
}
#endif

void mm_decode_nn(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                  const float *bias, float *C, int ldc)
{
    if (m <= 0 || j0 >= j1) return;
    for (int r = 0; r < m; r++) { /* C's slice is the accumulator: it starts as beta * C + bias */
        float *c = C + (size_t)r * ldc;
        for (int j = j0; j < j1; j++) c[j] = (beta == 0 ? 0.0f : beta * c[j]) + (bias ? bias[j] : 0.0f);
    }
    decode_nn(m, k, j0, j1, alpha, A, lda, W, C, ldc);
}

void mm_decode_nt(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                  const float *bias, float *C, int ldc)
{
    if (m <= 0 || j0 >= j1) return;
    decode_nt(m, k, j0, j1, alpha, A, lda, W, beta, bias, C, ldc);
}

/* ---- bf16 copies --------------------------------------------------------------------------------- */

size_t mm_bf16_nn_size(int k, int n) { return (size_t)((k + 1) / 2) * (size_t)n * 2; }

mm_weight mm_bf16_pack_nn(uint16_t *dst, const float *W, int ld, int k, int n)
{
#pragma omp parallel for schedule(static)
    for (int p = 0; p < (k + 1) / 2; p++) {
        uint16_t *d = dst + (size_t)p * (size_t)n * 2;
        const float *w0 = W + (size_t)(2 * p) * (size_t)ld, *w1 = w0 + ld;
        const int odd = 2 * p + 1 < k;
        for (int j = 0; j < n; j++) {
            d[2 * j] = mm_bf16(w0[j]);
            d[2 * j + 1] = odd ? mm_bf16(w1[j]) : 0;
        }
    }
    return (mm_weight){NULL, dst, n};
}

mm_weight mm_bf16_pack_nt(uint16_t *dst, const float *W, int ld, int n, int k)
{
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++)
        for (int i = 0; i < k; i++) dst[(size_t)j * (size_t)k + (size_t)i] = mm_bf16(W[(size_t)j * (size_t)ld + i]);
    return (mm_weight){NULL, dst, k};
}

void mm_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc, int nthreads)
{
    if (m <= 0 || n <= 0) return;
    if (nthreads < 1) nthreads = 1;
    /* few rows against a wide B: the decode kernels (measured here: faster than BLIS's zen3
     * kernels up to 8 rows, in either orientation of B), both threads on columns of C */
    if (!ta && n >= 256 && m <= MM_DECODE_M) {
        const mm_weight W = {B, NULL, ldb};
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
        {
            int j0, j1;
            mm_cols(n, omp_get_thread_num(), omp_get_num_threads(), &j0, &j1);
            (tb ? mm_decode_nt : mm_decode_nn)(m, k, j0, j1, alpha, A, lda, W, beta, NULL, C, ldc);
        }
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
