/* seedstats.h — statistics across seeds (a handful of numbers per method): the mean with a 95%
 * Student-t interval, and a paired comparison of two methods seed by seed. What `rlhf demo --seeds`
 * and `rlhf compare` over several seeds report.
 *
 * Why t and not normal: with 3 seeds the normal interval (±1.96 sd/√n) is about half as wide as it
 * should be; the t quantile with n − 1 degrees of freedom (4.30 for 3 seeds) is the honest one when
 * the spread itself is estimated from the same few seeds. */
#ifndef RLHF_SEEDSTATS_H
#define RLHF_SEEDSTATS_H

/* the two-sided 95% quantile of Student's t with df degrees of freedom (t such that P(|T| < t) =
 * 0.95): exact to 9 digits for df <= 30, a Cornish–Fisher expansion (error < 1e-4) above; NaN for
 * df < 1 */
double seedstats_t975(int df);

typedef struct {
    int n;
    double mean, sd;         /* sd: sample standard deviation (n - 1); NaN for n < 2 */
    double lo, hi;           /* mean ± t975(n-1) · sd / √n; NaN for n < 2 */
} seedstats_interval;

/* the mean of x[0..n) and its 95% t-interval */
seedstats_interval seedstats_mean_ci(const double *x, int n);

typedef struct {
    int n;                   /* seeds both methods have */
    int wins;                /* seeds where a > b */
    seedstats_interval diff; /* of a[i] - b[i] */
    int significant;         /* the interval excludes 0 (n >= 2) */
} seedstats_paired;

/* a against b, seed by seed (a[i] and b[i] from the same seed; NaN pairs are left out) */
seedstats_paired seedstats_compare(const double *a, const double *b, int n);

#endif
