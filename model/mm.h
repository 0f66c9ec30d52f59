/* mm.h — the one matrix-multiply module: row-major C = alpha * op(A) op(B) + beta * C through BLIS,
 * with the thread "ways" and (where BLIS does not know the CPU) the kernel set chosen per call; and
 * the decoding kernels for a few rows against a weight matrix, in fp32 or from a bf16 copy.
 *
 * Why: BLIS's automatic 2-thread split of GPT-2's shapes ran at a third of the speed of putting
 * both threads on the JC (columns-of-C) loop, which runs every product — transposed or not — at the
 * same rate; and see mm.c for the kernel choice. The caller passes the thread count (no hidden
 * global state). Decoding multiplies one row per sequence by every weight, so its speed is the
 * speed of reading the weights once from memory: the decode kernels stream them row by row and
 * keep the few output rows in L1; see mm.c. */
#ifndef RLHF_MM_H
#define RLHF_MM_H

#include <stddef.h>
#include <stdint.h>

/* ta/tb: 0 = as stored, 1 = transposed. A is (m,k) after op, B is (k,n) after op; lda/ldb/ldc are
 * row strides (elements) of the stored matrices. Products with at most MM_DECODE_M rows against a
 * wide B go to the decode kernels below, the rest to BLIS. */
void mm_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc, int nthreads);

/* ---- decoding ------------------------------------------------------------------------------------
 * The kernels compute a range of output columns and contain no OpenMP: a caller running one
 * parallel region per decode step gives each thread its columns (mm_cols) and pays no fork/join
 * per product. Any m works; the weights are read from memory once per call (rows are taken in
 * groups of 8 against each block of weights while it is in L1), so they pay off for small m. */
#define MM_DECODE_M 8

/* A weight as the decode kernels read it: fp32 as stored (f32, row stride ld), or a bf16 copy made
 * by mm_bf16_pack_nn / mm_bf16_pack_nt (bf16, f32 NULL; ld: the panel stride those set). */
typedef struct {
    const float *f32;
    const uint16_t *bf16;
    int ld;
} mm_weight;

/* thread t of nt: its share [*j0, *j1) of n output columns, cut at multiples of 16 */
void mm_cols(int n, int t, int nt, int *j0, int *j1);

/* Columns j0..j1 of C (m,n) = alpha * A (m,k) @ W (k,n) + beta * C + bias (bias NULL: none; beta 0:
 * C is not read). W stored (k, n). A must not overlap C. */
void mm_decode_nn(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                  const float *bias, float *C, int ldc);
/* The same with the weight stored transposed, (n, k): each output the dot product of two rows
 * (the tied LM head, logits = x @ wte^T). */
void mm_decode_nt(int m, int k, int j0, int j1, float alpha, const float *A, int lda, mm_weight W, float beta,
                  const float *bias, float *C, int ldc);

/* bf16 (round to nearest even; NaN stays NaN) and back; branch-free, so loops of it vectorise */
static inline uint16_t mm_bf16(float x)
{
    union {
        float f;
        uint32_t u;
    } v = {x};
    const uint32_t rne = (v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16, quiet = (v.u >> 16) | 0x40u;
    return (uint16_t)((v.u & 0x7FFFFFFFu) > 0x7F800000u ? quiet : rne);
}
static inline float mm_bf16_f32(uint16_t h)
{
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)h << 16};
    return v.f;
}

/* bf16 copies of weights, halving the bytes a decode step reads. W (k, n) is cut into panels of 16
 * columns, each panel contiguous with k in pairs inside it: element (i, j) at panel j / 16, offset
 * ((i / 2) * 16 + j % 16) * 2 + i % 2 (k padded to even and n to a multiple of 16 with zeros) —
 * mm_bf16_size(k, n) uint16_t. So a thread's share of columns is one contiguous stream of memory
 * (the hardware prefetchers' best case; rows of a row-major copy are short streams that restart at
 * every row), one 64-byte load gives two k of 16 columns, and 16 pairs of a panel are exactly an AMX
 * B tile. pack_nn reads W stored (k, n) with row stride ld, pack_nt W stored (n, k) (the tied LM
 * head); both return the mm_weight that reads the copy, which mm_decode_nn and mm_decode_nt both
 * take (the orientation is in the copy). nthreads threads pack.
 *
 * With bf16 weights the kernels keep the activations in fp32 (bf16 weights widened exactly, fp32
 * FMAs) — except on CPUs with AMX, where calls with m >= MM_AMX_MIN_ROWS and k % 32 == 0 round the
 * activations to bf16 (nearest even) and multiply in tiles (TDPBF16PS: exact products, fp32 sums);
 * mm_decode_amx says whether a call takes that path. */
#define MM_AMX_MIN_ROWS 4
size_t mm_bf16_size(int k, int n);
mm_weight mm_bf16_pack_nn(uint16_t *dst, const float *W, int ld, int k, int n, int nthreads);
mm_weight mm_bf16_pack_nt(uint16_t *dst, const float *W, int ld, int n, int k, int nthreads);
int mm_decode_amx(int m, int k, mm_weight W);

/* ---- bf16 products: bf16 operands, fp32 accumulation, fp32 output --------------------------------
 * For mixed-precision training (model/gpt2.h's GPT2_PREC_BF16): every product of the forward and
 * backward passes, attention's included. The engine is oneDNN's matmul (Debian's libdnnl, the
 * library PyTorch uses for the same job; measured against BLIS fp32 and a hand-written
 * AVX512-BF16 kernel in the README), built in with -Ddnnl; it picks AMX tiles where the CPU has them
 * and AVX512-BF16 (vdpbf16ps) otherwise. Where neither exists, or the build has no oneDNN,
 * mm_bf16_available() is 0 and callers stay on mm_sgemm (fp32).
 *
 * Accuracy: each product of bf16-rounded inputs is exact in fp32 and sums are kept in fp32, so
 * against the exact sum of the rounded inputs |err| <= k * 2^-24 * sum|a_i b_i| (a loose bound;
 * tests/test_mm_bf16.c states the one it checks); rounding the fp32 inputs to bf16 adds at most
 * 2 * 2^-8 * sum|a_i b_i| (each input within a relative 2^-8 of its value). */

/* 1: this build has the bf16 engine and the CPU can run it fast (AVX512-BF16, or AMX granted) */
int mm_bf16_available(void);

/* A context: the engine and its cache of compiled products (one per shape), owned by one caller and
 * used by one thread at a time (a model has one). Creating it fails when !mm_bf16_available(). */
typedef struct mm_ctx mm_ctx;
int mm_ctx_create(mm_ctx **out, char *err, size_t errlen);
void mm_ctx_free(mm_ctx *c);
/* what runs the products, e.g. "oneDNN 2.6.3 brg:avx512_core_bf16" (after the first product) */
const char *mm_ctx_engine(const mm_ctx *c);
/* the message of the last failed call */
const char *mm_ctx_error(const mm_ctx *c);

/* A product's shape. A is (m,k) after op, B (k,n) after op, row-major with row strides lda, ldb
 * (of the stored matrices), C (m,n) with ldc. nb0 x nb1 products at once when nb0, nb1 > 1 (0 or 1:
 * one), product (i, j) reading A + i*sa0 + j*sa1 and so on (element strides) — attention's heads. */
typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldc;
    int nb0, nb1;
    long sa0, sa1, sb0, sb1, sc0, sc1;
} mm_bshape;

/* C = alpha * op(A) op(B) + beta * C with A, B bf16 and C fp32; beta 0 or 1. 0, or -1 (message
 * in mm_ctx_error). nthreads threads (the caller's OpenMP setting is restored afterwards). */
int mm_bgemm(mm_ctx *c, const mm_bshape *s, float alpha, const uint16_t *A, const uint16_t *B, float beta,
             float *C, int nthreads);

/* A weight operand: a view of a plain bf16 matrix the caller owns and keeps in place (row stride ld),
 * read as B (k,n) = W (W stored (k,n), tw 0) or W^T (W stored (n,k), tw 1) — so one bf16 copy of a
 * weight serves the forward (x W) and the backward (dy W^T). Nothing is copied: the caller rounds
 * its fp32 weights into the bf16 matrix (mm_to_bf16) once per optimizer step, and oneDNN packs the
 * panels it needs inside each product (measured here: one conversion per step plus that packing
 * cost less than keeping copies in oneDNN's own blocked layout; see the README). */
typedef struct mm_bweight mm_bweight;
int mm_bweight_view(mm_ctx *c, mm_bweight **out, int tw, int k, int n, const uint16_t *W, int ld);
void mm_bweight_free(mm_bweight *w);
/* C (m,n) = alpha * A (m,k) B + bias + beta * C, A bf16 row-major (row stride lda), B a weight, bias
 * fp32 (n) or NULL. (A bias is added by the kernel as it writes C: cheaper than filling C with it and
 * accumulating, beta 1, which reads C back.) */
int mm_bgemm_w(mm_ctx *c, int m, float alpha, const uint16_t *A, int lda, const mm_bweight *w, const float *bias,
               float beta, float *C, int ldc, int nthreads);

/* dst[i] = mm_bf16(src[i]) for n values, OpenMP over the current team size (no hidden threads) */
void mm_to_bf16(uint16_t *dst, const float *src, long n);

#endif
