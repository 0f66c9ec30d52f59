/* stats.h — means and standard deviations over arrays of doubles, the one copy every layer uses
 * (the RL core's batch statistics, evaluation, the demo's intervals). Empty input gives NaN. */
#ifndef RLHF_STATS_H
#define RLHF_STATS_H

#include <math.h>

/* mean of x[0..n); NaN when n == 0 */
static inline double stats_mean(const double *x, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++) s += x[i];
    return n > 0 ? s / (double)n : NAN;
}

/* standard deviation of x[0..n) about its mean, divided by n - ddof (ddof 0: population, 1: sample);
 * NaN when n <= ddof */
static inline double stats_sd(const double *x, long n, int ddof)
{
    if (n <= ddof) return NAN;
    const double m = stats_mean(x, n);
    double ss = 0;
    for (long i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    return sqrt(ss / (double)(n - ddof));
}

#endif
