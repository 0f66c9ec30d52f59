/* envmath.h — the few numpy / Python scalar operations the classic-control envs need, with
 * numpy's exact float64 results (private to rlhf/envs/).
 *
 * Why: parity with Gymnasium is bit for bit, and two of these differ from the obvious C.
 * numpy's `x**2` on a float64 scalar (and Python's math.pow(x, 2)) is libm's pow(x, 2.0), and
 * glibc's pow is not always the correctly rounded x*x (about 1 in 1200 random x differ in the last
 * bit); the compiler would fold pow(x, 2.0) into x*x, so env_pow2 hides the exponent from it.
 * np.clip propagates NaN, as env_clip does. */
#ifndef RLHF_ENVMATH_H
#define RLHF_ENVMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* numpy's float64 `x**2`, i.e. libm's pow(x, 2.0) bit for bit.
 * pow is slow next to a multiplication, and where x*x is far from a rounding tie pow cannot differ
 * from it: glibc documents pow's error as below 0.54 ulp, so when the exact square hi + lo has
 * |lo| < 0.4 ulp(hi) (and hi is a normal number that is not a power of two, below which the spacing
 * halves) the only result within 0.54 ulp is hi. The other ~20% go to pow itself. A test compares
 * this with pow on millions of values. */
static inline double env_pow2(double x)
{
    double hi = x * x;
    uint64_t b;
    memcpy(&b, &hi, sizeof b);
    const uint64_t e = b & 0x7ff0000000000000ull, m = b & 0x000fffffffffffffull;
    if (e > (100ull << 52) && e < (2000ull << 52) && m != 0) {
        double p, lo = fma(x, x, -hi); /* exact: x*x == hi + lo */
        memcpy(&p, &e, sizeof p);      /* 2^exponent(hi) */
        if (fabs(lo) < 0.4 * 0x1p-52 * p) return hi;
    }
    static volatile const double two = 2.0;
    return pow(x, two);
}

/* np.clip on a float64 scalar (NaN stays NaN) */
static inline double env_clip(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

#endif
