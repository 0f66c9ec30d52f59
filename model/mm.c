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

#include "cpu.h"

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

/* rows i..i+KB of W, columns j..j+16 (lanes in msk) */
AI void nn_rows(__m512 *w, const int KB, mm_weight W, int i, int j, __mmask16 msk)
{
    UNROLL
    for (int q = 0; q < KB; q++) w[q] = _mm512_maskz_loadu_ps(msk, W.f32 + (size_t)(i + q) * (size_t)W.ld + j);
}

/* C[r, j0..j1) += sum_q xs[r * KB + q] * W[i + q, j0..j1) for r < mr */
AI void nn_pass(const int KB, int mr, const float *xs, mm_weight W, int i, int j0, int j1, float *C,
                int ldc)
{
    int j = j0;
    for (; j + 32 <= j1; j += 32) {
        __m512 wa[NN_KB], wb[NN_KB];
        nn_rows(wa, KB, W, i, j, 0xFFFF);
        nn_rows(wb, KB, W, i, j + 16, 0xFFFF);
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
        nn_rows(wa, KB, W, i, j, msk);
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
AI void nn_block(const int KB, int m, int k, int i, int j0, int j1, float alpha, const float *A,
                 int lda, mm_weight W, float *C, int ldc)
{
    float xs[8 * NN_KB];
    for (int r0 = 0; r0 < m; r0 += 8) {
        const int mr = m - r0 < 8 ? m - r0 : 8;
        for (int r = 0; r < mr; r++)
            for (int q = 0; q < KB; q++) xs[r * KB + q] = i + q < k ? alpha * A[(size_t)(r0 + r) * lda + i + q] : 0.0f;
        nn_pass(KB, mr, xs, W, i, j0, j1, C + (size_t)r0 * ldc, ldc);
    }
}

/* C's slice is the accumulator, in L1/L2 while the weights stream past (callers keep C's rows from
 * being a multiple of 4 KiB apart: 8 of them and 8 weight rows on one L1 set would thrash it) */
static void decode_nn(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float *C,
                      int ldc)
{
    int i = 0;
    for (; i + NN_KB <= k; i += NN_KB) nn_block(NN_KB, m, k, i, j0, j1, alpha, A, lda, W, C, ldc);
    for (; i < k; i++) nn_block(1, m, k, i, j0, j1, alpha, A, lda, W, C, ldc);
}

/* dots of A rows r0..r0+MR with W rows j..j+NJ into C */
AI void nt_tile(const int MR, const int NJ, int k, int j, float alpha, const float *A, int lda,
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
            _mm_prefetch((const char *)(W.f32 + (size_t)(j + NJ + q) * (size_t)W.ld + kk), _MM_HINT_T0);
            w[q] = _mm512_maskz_loadu_ps(msk, W.f32 + (size_t)(j + q) * (size_t)W.ld + kk);
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
AI void nt_rows(const int MR, const int NJ, int k, int j0, int j1, float alpha, const float *A,
                int lda, mm_weight W, float beta, const float *bias, float *C, int ldc)
{
    int j = j0;
    for (; j + NJ <= j1; j += NJ) nt_tile(MR, NJ, k, j, alpha, A, lda, W, beta, bias, C, ldc);
    for (; j < j1; j++) nt_tile(MR, 1, k, j, alpha, A, lda, W, beta, bias, C, ldc);
}

#define NT_CASES                                                                                          \
    switch (mr) {                                                                                             \
    case 1: nt_rows(1, 8, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 2: nt_rows(2, 8, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 3: nt_rows(3, 4, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 4: nt_rows(4, 4, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 5: nt_rows(5, 2, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 6: nt_rows(6, 2, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    case 7: nt_rows(7, 2, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                        \
    default: nt_rows(8, 2, k, j0, j1, alpha, a, lda, W, beta, bias, c, ldc); break;                       \
    }

static void decode_nt(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                      const float *bias, float *C, int ldc)
{
    for (int r0 = 0; r0 < m; r0 += 8) {
        const int mr = m - r0 < 8 ? m - r0 : 8;
        const float *a = A + (size_t)r0 * lda;
        float *c = C + (size_t)r0 * ldc;
        NT_CASES
    }
}

/* ---- bf16 panels (see mm.h): AVX-512 with fp32 activations, or AMX tiles ---------------------- */

/* acc[r] = A rows 0..MR x one panel (16 columns) over k, alpha not applied. Two accumulators per
 * row (the even and the odd k of each pair), and for MR <= 4 two pairs in flight (four): enough
 * independent FMA chains to keep up with memory at one row. The panel is one contiguous stream. */
AI void panel_dot(const int MR, int k, const uint16_t *P, const float *A, int lda, __m512 *acc)
{
    enum { U = 2 };
    __m512 e[U][8], o[U][8];
    const int un = MR <= 4 ? U : 1;
    UNROLL
    for (int u = 0; u < U; u++)
        UNROLL
        for (int r = 0; r < MR; r++) e[u][r] = o[u][r] = _mm512_setzero_ps();
    const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
    const int np = k / 2;
    int p = 0;
    for (; p + un <= np; p += un) {
        _mm_prefetch((const char *)(P + (size_t)(p + 32) * 32), _MM_HINT_T0); /* 2 KiB ahead in the stream */
        UNROLL
        for (int u = 0; u < U; u++) {
            if (u >= un) break;
            const __m512i v = _mm512_loadu_si512(P + (size_t)(p + u) * 32);
            const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
            UNROLL
            for (int r = 0; r < MR; r++) {
                const float *a = A + (size_t)r * lda + 2 * (p + u);
                e[u][r] = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), we, e[u][r]);
                o[u][r] = _mm512_fmadd_ps(_mm512_set1_ps(a[1]), wo, o[u][r]);
            }
        }
    }
    for (; p < np; p++) {
        const __m512i v = _mm512_loadu_si512(P + (size_t)p * 32);
        const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
        UNROLL
        for (int r = 0; r < MR; r++) {
            e[0][r] = _mm512_fmadd_ps(_mm512_set1_ps(A[(size_t)r * lda + 2 * p]), we, e[0][r]);
            o[0][r] = _mm512_fmadd_ps(_mm512_set1_ps(A[(size_t)r * lda + 2 * p + 1]), wo, o[0][r]);
        }
    }
    if (k & 1) { /* the last pair holds one row (and a zero) */
        const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(P + (size_t)np * 32), 16));
        UNROLL
        for (int r = 0; r < MR; r++) e[0][r] = _mm512_fmadd_ps(_mm512_set1_ps(A[(size_t)r * lda + k - 1]), we, e[0][r]);
    }
    UNROLL
    for (int r = 0; r < MR; r++)
        acc[r] = _mm512_add_ps(_mm512_add_ps(e[0][r], o[0][r]), _mm512_add_ps(e[1][r], o[1][r]));
}

/* C[r, c0 + lane] for the lanes in msk = alpha * acc + beta * C + bias */
static inline void panel_store(__m512 acc, int c0, __mmask16 msk, float alpha, float beta, const float *bias, float *c)
{
    __m512 v = _mm512_mul_ps(_mm512_set1_ps(alpha), acc);
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(msk, bias + c0));
    if (beta != 0) v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(msk, c + c0), v);
    _mm512_mask_storeu_ps(c + c0, msk, v);
}

/* the lanes of panel q (columns 16q..16q+16) inside [j0, j1) */
static inline __mmask16 panel_mask(int q, int j0, int j1)
{
    const int c0 = 16 * q, lo = j0 > c0 ? j0 - c0 : 0, hi = j1 < c0 + 16 ? j1 - c0 : 16;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

#define PANEL_CASE(MR)                                                                                        \
    case MR: panel_dot(MR, k, P, A + (size_t)r0 * lda, lda, acc); break;

static void decode_panels_avx(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W,
                              float beta, const float *bias, float *C, int ldc)
{
    for (int q = j0 / 16; 16 * q < j1; q++) {
        const uint16_t *P = W.bf16 + (size_t)q * (size_t)W.ld;
        const __mmask16 msk = panel_mask(q, j0, j1);
        for (int r0 = 0; r0 < m; r0 += 8) { /* row groups re-read the panel from L1/L2 */
            const int mr = m - r0 < 8 ? m - r0 : 8;
            __m512 acc[8];
            switch (mr) {
                PANEL_CASE(1) PANEL_CASE(2) PANEL_CASE(3) PANEL_CASE(4)
                PANEL_CASE(5) PANEL_CASE(6) PANEL_CASE(7) default: panel_dot(8, k, P, A + (size_t)r0 * lda, lda, acc);
            }
            for (int r = 0; r < mr; r++) panel_store(acc[r], 16 * q, msk, alpha, beta, bias, C + (size_t)(r0 + r) * ldc);
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MM_HAVE_AMX 1
/* AMX (Intel Sapphire Rapids and later): per group of up to 16 rows, 4 panels (64 columns) at a
 * time in tiles 0-3 (C: rows x 16 fp32), tile 4 the rows' next 32 k as bf16 (A: rows x 64 bytes,
 * converted from fp32 here, round to nearest even), tile 5 one panel's 16 k-pairs (B: 16 x 64
 * bytes, contiguous in the panel: the panel layout is AMX's pair-interleaved B layout). TDPBF16PS
 * multiplies bf16 pairs exactly and adds them in fp32. Needs k % 32 == 0 (no partial A tile);
 * mm_decode_amx says when this runs. The tile configuration is loaded by the calling thread and
 * released before returning (no AMX state left behind). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

__attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))
static void decode_panels_amx(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W,
                              float beta, const float *bias, float *C, int ldc)
{
    uint16_t a16[16 * 32] __attribute__((aligned(64)));
    float ct[4][16 * 16] __attribute__((aligned(64)));
    const int q0 = j0 / 16, q1 = (j1 + 15) / 16;
    for (int r0 = 0; r0 < m; r0 += 16) {
        const int mr = m - r0 < 16 ? m - r0 : 16;
        amx_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.palette = 1;
        for (int t = 0; t < 5; t++) {
            cfg.rows[t] = (uint8_t)mr; /* C tiles 0-3 and A (tile 4): mr rows of 64 bytes */
            cfg.colsb[t] = 64;
        }
        cfg.rows[5] = 16; /* B: 16 k-pairs of 16 columns */
        cfg.colsb[5] = 64;
        _tile_loadconfig(&cfg);
        for (int q = q0; q < q1; q += 4) {
            const int nq = q1 - q < 4 ? q1 - q : 4;
            const uint16_t *B = W.bf16 + (size_t)q * (size_t)W.ld;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int kk = 0; kk < k; kk += 32) {
                for (int r = 0; r < mr; r++) {
                    const float *a = A + (size_t)(r0 + r) * lda + kk;
                    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + 16), _mm512_loadu_ps(a));
                    _mm512_store_si512((void *)(a16 + r * 32), (__m512i)v);
                }
                _tile_loadd(4, a16, 64);
                const uint16_t *b = B + (size_t)(kk / 2) * 32;
                _tile_loadd(5, b, 64);
                _tile_dpbf16ps(0, 4, 5);
                if (nq > 1) {
                    _tile_loadd(5, b + W.ld, 64);
                    _tile_dpbf16ps(1, 4, 5);
                }
                if (nq > 2) {
                    _tile_loadd(5, b + 2 * (size_t)W.ld, 64);
                    _tile_dpbf16ps(2, 4, 5);
                }
                if (nq > 3) {
                    _tile_loadd(5, b + 3 * (size_t)W.ld, 64);
                    _tile_dpbf16ps(3, 4, 5);
                }
            }
            _tile_stored(0, ct[0], 64);
            _tile_stored(1, ct[1], 64);
            _tile_stored(2, ct[2], 64);
            _tile_stored(3, ct[3], 64);
            for (int t = 0; t < nq; t++)
                for (int r = 0; r < mr; r++)
                    panel_store(_mm512_load_ps(ct[t] + r * 16), 16 * (q + t), panel_mask(q + t, j0, j1), alpha, beta, bias,
                                C + (size_t)(r0 + r) * ldc);
        }
    }
    _tile_release();
}
#endif

int mm_decode_amx(int m, int k, mm_weight W)
{
#ifdef MM_HAVE_AMX
    return W.bf16 && m >= MM_AMX_MIN_ROWS && k % 32 == 0 && cpu_features()->amx_usable;
#else
    (void)m, (void)k, (void)W;
    return 0;
#endif
}

static void decode_panels(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                          const float *bias, float *C, int ldc)
{
#ifdef MM_HAVE_AMX
    if (mm_decode_amx(m, k, W)) {
        decode_panels_amx(m, k, j0, j1, alpha, A, lda, W, beta, bias, C, ldc);
        return;
    }
#endif
    decode_panels_avx(m, k, j0, j1, alpha, A, lda, W, beta, bias, C, ldc);
}

#else /* portable loops: the same arithmetic, left to the compiler's vectoriser */

static inline float w_nn(mm_weight W, int i, int j) { return W.f32[(size_t)i * (size_t)W.ld + j]; }

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
            const float *w = W.f32 + (size_t)j * (size_t)W.ld;
#pragma omp simd reduction(+ : s)
            for (int i = 0; i < k; i++) s += a[i] * w[i];
            put(C + (size_t)r * ldc + j, s, alpha, beta, bias, j);
        }
}

int mm_decode_amx(int m, int k, mm_weight W)
{
    (void)m, (void)k, (void)W;
    return 0;
}

static void decode_panels(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                          const float *bias, float *C, int ldc)
{
    for (int j = j0; j < j1; j++) {
        const uint16_t *P = W.bf16 + (size_t)(j / 16) * (size_t)W.ld + (size_t)(j % 16) * 2;
        for (int r = 0; r < m; r++) {
            const float *a = A + (size_t)r * lda;
            float s = 0;
            for (int i = 0; i < k; i++) s += a[i] * mm_bf16_f32(P[(size_t)(i / 2) * 32 + (size_t)(i & 1)]);
            put(C + (size_t)r * ldc + j, s, alpha, beta, bias, j);
        }
    }
}
#endif

void mm_decode_nn(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                  const float *bias, float *C, int ldc)
{
    if (m <= 0 || j0 >= j1) return;
    if (W.bf16) {
        decode_panels(m, k, j0, j1, alpha, A, lda, W, beta, bias, C, ldc);
        return;
    }
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
    if (W.bf16) decode_panels(m, k, j0, j1, alpha, A, lda, W, beta, bias, C, ldc);
    else decode_nt(m, k, j0, j1, alpha, A, lda, W, beta, bias, C, ldc);
}

/* ---- bf16 copies --------------------------------------------------------------------------------- */

size_t mm_bf16_size(int k, int n) { return (size_t)((n + 15) / 16) * 16 * (size_t)((k + 1) / 2) * 2; }

/* W(i, j) = W[i * ld + j] (tw 0) or W[j * ld + i] (tw 1), into panels; zeros beyond k and n */
static mm_weight pack_panels(uint16_t *dst, const float *W, int ld, int tw, int k, int n, int nthreads)
{
    const size_t ps = (size_t)((k + 1) / 2) * 32;
#pragma omp parallel for schedule(static) num_threads(nthreads > 0 ? nthreads : 1)
    for (int q = 0; q < (n + 15) / 16; q++) {
        uint16_t *d = dst + (size_t)q * ps;
        for (int c = 0; c < 16; c++) {
            const int j = 16 * q + c;
            for (int i = 0; i < 2 * ((k + 1) / 2); i++) {
                const float v = i < k && j < n ? W[tw ? (size_t)j * (size_t)ld + i : (size_t)i * (size_t)ld + j] : 0.0f;
                d[(size_t)(i / 2) * 32 + (size_t)c * 2 + (size_t)(i & 1)] = mm_bf16(v);
            }
        }
    }
    return (mm_weight){NULL, dst, (int)ps};
}

mm_weight mm_bf16_pack_nn(uint16_t *dst, const float *W, int ld, int k, int n, int nthreads)
{
    return pack_panels(dst, W, ld, 0, k, n, nthreads);
}

mm_weight mm_bf16_pack_nt(uint16_t *dst, const float *W, int ld, int n, int k, int nthreads)
{
    return pack_panels(dst, W, ld, 1, k, n, nthreads);
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
