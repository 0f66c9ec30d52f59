/* envmath.h — the few numpy / Python scalar operations the classic-control envs need, with
 * numpy's exact float64 results (private to rlhf/envs/).
 *
 * Why: parity with Gymnasium is bit for bit, and two of these differ from the obvious C.
 * numpy's `x**2` on a float64 scalar (and Python's math.pow(x, 2)) is libm's pow(x, 2.0), which is
 * not always the correctly rounded x*x; the compiler folds pow(x, 2.0) into x*x, so env_pow2 hides
 * the exponent from it. np.clip propagates NaN, as env_clip does. */
#ifndef RLHF_ENVMATH_H
#define RLHF_ENVMATH_H

#include <math.h>

/* numpy's float64 `x**2`: libm pow, not a multiplication */
static inline double env_pow2(double x)
{
    static volatile const double two = 2.0;
    return pow(x, two);
}

/* np.clip on a float64 scalar (NaN stays NaN) */
static inline double env_clip(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

#endif
