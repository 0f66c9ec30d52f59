/* mm.h — the one matrix-multiply entry point: row-major C = alpha * op(A) op(B) + beta * C through
 * BLIS, with the thread "ways" and (where BLIS does not know the CPU) the kernel set chosen per call.
 *
 * Why: BLIS's automatic 2-thread split of GPT-2's shapes ran at a third of the speed of putting
 * both threads on the JC (columns-of-C) loop, which runs every product — transposed or not — at the
 * same rate; and see mm.c for the kernel choice. The caller passes the thread count (no hidden
 * global state). */
#ifndef RLHF_MM_H
#define RLHF_MM_H

/* ta/tb: 0 = as stored, 1 = transposed. A is (m,k) after op, B is (k,n) after op; lda/ldb/ldc are
 * row strides (elements) of the stored matrices. */
void mm_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc, int nthreads);

#endif
