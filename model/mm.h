/* mm.h — the one matrix-multiply entry point: row-major C = alpha * op(A) op(B) + beta * C through
 * BLIS, with the thread "ways" chosen per call.
 *
 * Why: BLIS's automatic 2-thread split of GPT-2's shapes runs at ~25 GFLOP/s on this CPU, while
 * putting both threads on the JC (columns-of-C) loop runs every product — transposed or not — at
 * ~80 GFLOP/s. The caller passes the thread count (no hidden global state). */
#ifndef RLHF_MM_H
#define RLHF_MM_H

/* ta/tb: 0 = as stored, 1 = transposed. A is (m,k) after op, B is (k,n) after op; lda/ldb/ldc are
 * row strides (elements) of the stored matrices. */
void mm_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc, int nthreads);

#endif
