/* clock.h — the one monotonic clock (step timings, progress bars, stage wall times), shared by
 * every layer like fileio.h and rng.h. */
#ifndef RLHF_CLOCK_H
#define RLHF_CLOCK_H

#include <time.h>

/* monotonic seconds */
static inline double clk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
