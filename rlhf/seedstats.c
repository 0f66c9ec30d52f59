/* seedstats.c — means, t-intervals and paired differences across seeds (see seedstats.h). */
#include "seedstats.h"

#include "stats.h"

#include <math.h>
#include <stdlib.h>

double seedstats_t975(int df)
{
    /* t_{0.975, df} for df = 1..30 */
    static const double t[30] = {12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425,
                                 2.30600414, 2.26215716, 2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669,
                                 2.13144955, 2.11990530, 2.10981558, 2.10092204, 2.09302405, 2.08596345, 2.07961384,
                                 2.07387307, 2.06865761, 2.06389856, 2.05953855, 2.05552944, 2.05183052, 2.04840714,
                                 2.04522964, 2.04227246};
    if (df < 1) return NAN;
    if (df <= 30) return t[df - 1];
    /* Cornish–Fisher expansion of the t quantile around the normal one (Abramowitz & Stegun 26.7.5) */
    const double z = 1.959963984540054, z2 = z * z, n = df;
    return z + z * (z2 + 1) / (4 * n) + z * ((5 * z2 + 16) * z2 + 3) / (96 * n * n) +
           z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / (384 * n * n * n);
}

seedstats_interval seedstats_mean_ci(const double *x, int n)
{
    seedstats_interval r = {n, stats_mean(x, n), stats_sd(x, n, 1), NAN, NAN};
    if (n >= 2) {
        const double half = seedstats_t975(n - 1) * r.sd / sqrt((double)n);
        r.lo = r.mean - half;
        r.hi = r.mean + half;
    }
    return r;
}

seedstats_paired seedstats_compare(const double *a, const double *b, int n)
{
    seedstats_paired p = {0};
    double *d = calloc((size_t)(n > 0 ? n : 1), sizeof *d);
    if (!d) {
        p.diff = seedstats_mean_ci(NULL, 0);
        return p;
    }
    for (int i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) continue;
        d[p.n++] = a[i] - b[i];
        p.wins += a[i] > b[i];
    }
    p.diff = seedstats_mean_ci(d, p.n);
    p.significant = p.n >= 2 && (p.diff.lo > 0 || p.diff.hi < 0);
    free(d);
    return p;
}
