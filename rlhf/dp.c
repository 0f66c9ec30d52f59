/* dp.c — the MPI collectives behind dp.h, or single-process stand-ins when the build has no MPI.
 * The only file that includes mpi.h. See dp.h. */
#include "dp.h"

#include "clock.h"
#include "fileio.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void dp_share(size_t n, int r, int size, size_t *lo, size_t *hi)
{
    if (size < 1) size = 1;
    *lo = n * (size_t)r / (size_t)size;
    *hi = n * (size_t)(r + 1) / (size_t)size;
}

#ifdef RLHF_HAVE_MPI

#include <mpi.h>

struct dp {
    MPI_Comm comm;
    int rank, size;
    dp_counters c;
};

int dp_available(void) { return 1; }

/* launched by mpirun / mpiexec / srun: their environment, read only to decide whether to start MPI
 * at all (rank and size come from MPI itself) */
static int launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", NULL};
    for (const char *const *v = vars; *v; v++)
        if (getenv(*v)) return 1;
    return 0;
}

static int mpi_fail(int rc, const char *what, char *err, size_t errlen)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(rc, s, &n) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", rc);
    return fio_fail(err, errlen, "MPI %s failed: %s", what, s);
}

int dp_init(dp **out, int *argc, char ***argv, char *err, size_t errlen)
{
    *out = NULL;
    if (!launched()) return 0;
    int provided, rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return fio_fail(err, errlen, "MPI_Init failed (code %d)", rc);
    dp *d = calloc(1, sizeof *d);
    if (!d) return fio_fail(err, errlen, "out of memory");
    d->comm = MPI_COMM_WORLD;
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    *out = d;
    return 0;
}

/* A barrier that sleeps while it waits: ranks idle while rank 0 alone works (an evaluation, a
 * demo stage, the export) leave the cores to it instead of spinning in MPI's progress loop. */
static int idle_barrier(MPI_Comm comm)
{
    MPI_Request q;
    int done = 0, rc = MPI_Ibarrier(comm, &q);
    const struct timespec nap = {0, 1000000}; /* 1 ms */
    while (rc == MPI_SUCCESS && !(rc = MPI_Test(&q, &done, MPI_STATUS_IGNORE)) && !done) nanosleep(&nap, NULL);
    return rc;
}

void dp_finalize(dp *d)
{
    if (!d) return;
    idle_barrier(d->comm);
    MPI_Finalize();
    free(d);
}

_Noreturn void dp_abort(dp *d, int code)
{
    if (d) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(d->comm, code);
    }
    exit(code);
}

int dp_rank(const dp *d) { return d ? d->rank : 0; }
int dp_size(const dp *d) { return d ? d->size : 1; }

dp_counters dp_get_counters(const dp *d) { return d ? d->c : (dp_counters){0, 0, 0, 0}; }

/* time and count one collective */
#define DP_CALL(D_, NBYTES_, WHAT_, CALL_)                                                                       \
    do {                                                                                                         \
        const double t0_ = clk_now();                                                                            \
        const int rc_ = (CALL_);                                                                                 \
        (D_)->c.seconds += clk_now() - t0_;                                                                      \
        (D_)->c.bytes += (uint64_t)(NBYTES_);                                                                    \
        (D_)->c.calls++;                                                                                         \
        if (rc_ != MPI_SUCCESS) return mpi_fail(rc_, WHAT_, err, errlen);                                        \
    } while (0)

/* MPI counts are ints: large buffers go in pieces of at most 1 Gi elements */
#define DP_CHUNK ((size_t)1 << 30)

int dp_allreduce_f32(dp *d, float *x, size_t n, char *err, size_t errlen)
{
    if (!d || d->size == 1) return 0;
    for (size_t i = 0; i < n; i += DP_CHUNK) {
        const int k = (int)(n - i < DP_CHUNK ? n - i : DP_CHUNK);
        DP_CALL(d, (size_t)k * sizeof *x, "all-reduce", MPI_Allreduce(MPI_IN_PLACE, x + i, k, MPI_FLOAT, MPI_SUM, d->comm));
    }
    return 0;
}

int dp_allreduce_f64(dp *d, double *x, size_t n, dp_op op, char *err, size_t errlen)
{
    if (!d || d->size == 1 || n == 0) return 0;
    if (n > INT_MAX) return fio_fail(err, errlen, "all-reduce of %zu doubles is too large", n);
    const MPI_Op o = op == DP_MIN ? MPI_MIN : op == DP_MAX ? MPI_MAX : MPI_SUM;
    DP_CALL(d, n * sizeof *x, "all-reduce", MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, o, d->comm));
    return 0;
}

/* every rank's share of total units, in bytes (counts and displacements for the v-collectives) */
static int shares(const dp *d, size_t total, size_t unit, int **cnt, int **dsp, char *err, size_t errlen)
{
    *cnt = malloc((size_t)d->size * sizeof **cnt);
    *dsp = malloc((size_t)d->size * sizeof **dsp);
    if (!*cnt || !*dsp) return fio_fail(err, errlen, "out of memory");
    for (int r = 0; r < d->size; r++) {
        size_t lo, hi;
        dp_share(total, r, d->size, &lo, &hi);
        if (hi * unit > INT_MAX) return fio_fail(err, errlen, "a collective of %zu bytes is too large", total * unit);
        (*cnt)[r] = (int)((hi - lo) * unit);
        (*dsp)[r] = (int)(lo * unit);
    }
    return 0;
}

int dp_allgather(dp *d, void *buf, size_t total, size_t unit, char *err, size_t errlen)
{
    if (!d || d->size == 1 || total == 0) return 0;
    int *cnt = NULL, *dsp = NULL, rc = shares(d, total, unit, &cnt, &dsp, err, errlen);
    if (rc == 0) {
        const double t0 = clk_now();
        const int m = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, buf, cnt, dsp, MPI_BYTE, d->comm);
        d->c.seconds += clk_now() - t0;
        d->c.bytes += (uint64_t)cnt[d->rank];
        d->c.calls++;
        if (m != MPI_SUCCESS) rc = mpi_fail(m, "all-gather", err, errlen);
    }
    free(cnt);
    free(dsp);
    return rc;
}

int dp_reduce_scatter_f32(dp *d, float *x, size_t n, char *err, size_t errlen)
{
    if (!d || d->size == 1) return 0;
    int *cnt = NULL, *dsp = NULL, rc = shares(d, n, 1, &cnt, &dsp, err, errlen);
    float *mine = NULL;
    if (rc == 0 && !(mine = malloc(((size_t)cnt[d->rank] + 1) * sizeof *mine))) rc = fio_fail(err, errlen, "out of memory");
    if (rc == 0) {
        const double t0 = clk_now();
        const int m = MPI_Reduce_scatter(x, mine, cnt, MPI_FLOAT, MPI_SUM, d->comm);
        d->c.seconds += clk_now() - t0;
        d->c.bytes += (uint64_t)n * sizeof *x;
        d->c.calls++;
        if (m != MPI_SUCCESS) rc = mpi_fail(m, "reduce-scatter", err, errlen);
        else memcpy(x + dsp[d->rank], mine, (size_t)cnt[d->rank] * sizeof *x);
    }
    free(mine);
    free(cnt);
    free(dsp);
    return rc;
}

int dp_bcast(dp *d, void *buf, size_t len, int root, char *err, size_t errlen)
{
    if (!d || d->size == 1 || len == 0) return 0;
    for (size_t i = 0; i < len; i += DP_CHUNK) {
        const int k = (int)(len - i < DP_CHUNK ? len - i : DP_CHUNK);
        DP_CALL(d, k, "broadcast", MPI_Bcast((char *)buf + i, k, MPI_BYTE, root, d->comm));
    }
    return 0;
}

int dp_barrier(dp *d, char *err, size_t errlen)
{
    if (!d || d->size == 1) return 0;
    DP_CALL(d, 0, "barrier", idle_barrier(d->comm));
    return 0;
}

int dp_sync(dp *d, char *err, size_t errlen)
{
    if (!d || d->size == 1) return 0;
    const double t0 = clk_now();
    const int rc = MPI_Barrier(d->comm);
    d->c.wait += clk_now() - t0;
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "barrier", err, errlen);
}

#else /* ---- no MPI in this build: one process ------------------------------------------------------ */

int dp_available(void) { return 0; }

int dp_init(dp **out, int *argc, char ***argv, char *err, size_t errlen)
{
    (void)argc, (void)argv, (void)err, (void)errlen;
    *out = NULL;
    return 0;
}

void dp_finalize(dp *d) { (void)d; }

_Noreturn void dp_abort(dp *d, int code)
{
    (void)d;
    exit(code);
}

int dp_rank(const dp *d) { return (void)d, 0; }
int dp_size(const dp *d) { return (void)d, 1; }
dp_counters dp_get_counters(const dp *d) { return (void)d, (dp_counters){0, 0, 0, 0}; }
int dp_sync(dp *d, char *err, size_t errlen) { return (void)d, (void)err, (void)errlen, 0; }

int dp_allreduce_f32(dp *d, float *x, size_t n, char *err, size_t errlen) { return (void)d, (void)x, (void)n, (void)err, (void)errlen, 0; }

int dp_allreduce_f64(dp *d, double *x, size_t n, dp_op op, char *err, size_t errlen)
{
    return (void)d, (void)x, (void)n, (void)op, (void)err, (void)errlen, 0;
}

int dp_allgather(dp *d, void *buf, size_t total, size_t unit, char *err, size_t errlen)
{
    return (void)d, (void)buf, (void)total, (void)unit, (void)err, (void)errlen, 0;
}

int dp_reduce_scatter_f32(dp *d, float *x, size_t n, char *err, size_t errlen)
{
    return (void)d, (void)x, (void)n, (void)err, (void)errlen, 0;
}

int dp_bcast(dp *d, void *buf, size_t len, int root, char *err, size_t errlen)
{
    return (void)d, (void)buf, (void)len, (void)root, (void)err, (void)errlen, 0;
}

int dp_barrier(dp *d, char *err, size_t errlen) { return (void)d, (void)err, (void)errlen, 0; }

#endif
