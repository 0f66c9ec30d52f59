/* tu_float.h — the one set of floating-point comparisons the Criterion suites use.
 *
 *   CLOSE(a, b, tol)       assert |a - b| <= tol (the test stops at the first failure)
 *   NEAR(a, b, tol)        expect the same (the failure is recorded and the test goes on: for tables
 *                          of values, where seeing every wrong entry at once helps)
 *   CLOSE_REL(a, b, rtol)  assert |a - b| <= rtol * max(1, |b|): relative to the expected value b,
 *                          absolute below magnitude 1 (for values whose scale is not known ahead)
 *
 * a and b are compared as doubles; a NaN on either side always fails. The message names both
 * expressions and prints them with 17 significant digits, so a failure shows exactly what came out.
 * The arguments are evaluated more than once: pass values, not calls with side effects. */
#ifndef RLHF_TU_FLOAT_H
#define RLHF_TU_FLOAT_H

#include <criterion/criterion.h>
#include <math.h>

#define TU_FLOAT_CMP_(check, a, b, bound)                                                                       \
    check(fabs((double)(a) - (double)(b)) <= (double)(bound), "%s = %.17g, expected %s = %.17g (within %.3g)", #a, \
          (double)(a), #b, (double)(b), (double)(bound))

#define CLOSE(a, b, tol) TU_FLOAT_CMP_(cr_assert, a, b, tol)
#define NEAR(a, b, tol) TU_FLOAT_CMP_(cr_expect, a, b, tol)
#define CLOSE_REL(a, b, rtol) TU_FLOAT_CMP_(cr_assert, a, b, (rtol) * fmax(1.0, fabs((double)(b))))

#endif
