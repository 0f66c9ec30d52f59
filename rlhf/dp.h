/* dp.h — data parallelism across processes (and machines) over MPI: the one place that knows MPI.
 *
 * Why a wrapper: the training loop (rlhf/trainer.c), the RL core and the CLI need a handful of
 * collectives (sum the gradients, gather the rollouts, broadcast, abort); everything else in the
 * library stays free of mpi.h. A build without MPI (meson -Dmpi=disabled, or no libopenmpi-dev)
 * compiles the same calls as single-process no-ops, and a NULL dp means "one process" everywhere.
 *
 * ---- Worked example ------------------------------------------------------------------------------
 *   dp *d;
 *   if (dp_init(&d, &argc, &argv, err, sizeof err)) ...     // from the CLI's main, once
 *   size_t lo, hi;
 *   dp_share(rows, dp_rank(d), dp_size(d), &lo, &hi);       // my contiguous share of the rows
 *   ... backward on rows [lo, hi) ...
 *   if (dp_allreduce_f32(d, grads, n, err, sizeof err)) ... // every rank now holds the sum
 *   if (dp_rank(d) == 0) write the checkpoint;
 *   dp_finalize(d);
 *
 * Under `mpirun` (OpenMPI, MPICH: the launcher's environment says so) dp_init initialises MPI with
 * errors returned rather than fatal, so every failure is one line the CLI prints before it calls
 * dp_abort (MPI_Abort: mpirun then ends every rank). Run without a launcher it stays a single
 * process and never touches MPI (no start-up cost, no daemon).
 *
 * Every rank gets the same sums (OpenMPI's reductions either compute each element once and hand it
 * round, or add the same operands on each side, and float addition commutes), so ranks that start
 * from the same weights stay bit-identical after each update; tests/mpi.sh checks it.
 */
#ifndef RLHF_DP_H
#define RLHF_DP_H

#include <stddef.h>
#include <stdint.h>

typedef struct dp dp;

/* 1 when this binary was built with MPI */
int dp_available(void);

/* Start: under an MPI launcher, MPI_Init (thread level funneled) and MPI_COMM_WORLD; otherwise one
 * process. *out is NULL when this is a single process (every function below takes NULL). */
int dp_init(dp **out, int *argc, char ***argv, char *err, size_t errlen);
/* MPI_Finalize (after a barrier) and free; NULL is fine */
void dp_finalize(dp *d);
/* End every rank now with status code (MPI_Abort; exit(code) for a single process). */
_Noreturn void dp_abort(dp *d, int code);

int dp_rank(const dp *d);    /* 0 for NULL */
int dp_size(const dp *d);    /* 1 for NULL */

/* The contiguous share [lo, hi) of n items that rank r of `size` takes: lo = n r / size. */
void dp_share(size_t n, int r, int size, size_t *lo, size_t *hi);

typedef enum { DP_SUM, DP_MIN, DP_MAX } dp_op;

/* In-place all-reduce of x[0..n) over every rank (sum, min or max). */
int dp_allreduce_f32(dp *d, float *x, size_t n, char *err, size_t errlen);
int dp_allreduce_f64(dp *d, double *x, size_t n, dp_op op, char *err, size_t errlen);
/* In-place all-gather: buf holds total units of `unit` bytes; rank r has filled its dp_share of them
 * and gets everyone's. */
int dp_allgather(dp *d, void *buf, size_t total, size_t unit, char *err, size_t errlen);
/* Reduce-scatter of float sums: every rank gives x[0..n); rank r gets the sum of its dp_share of x
 * in place (the rest of x is left undefined). */
int dp_reduce_scatter_f32(dp *d, float *x, size_t n, char *err, size_t errlen);
/* Broadcast len bytes of buf from rank root. */
int dp_bcast(dp *d, void *buf, size_t len, int root, char *err, size_t errlen);
int dp_barrier(dp *d, char *err, size_t errlen);
/* A barrier timed apart (dp_counters.wait): before a collective, it separates the time ranks wait
 * for the slowest one from the time the collective itself takes. */
int dp_sync(dp *d, char *err, size_t errlen);

/* Communication done so far by this rank: bytes sent into collectives and seconds spent in them
 * (the benchmark's numbers). */
typedef struct {
    uint64_t bytes;
    double seconds;
    long calls;
    double wait;             /* seconds in dp_sync */
} dp_counters;
dp_counters dp_get_counters(const dp *d);

#endif
