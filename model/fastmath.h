/* fastmath.h — exp, tanh and GELU in a form the compiler vectorises (a range reduction, a degree-6
 * polynomial and an exponent built from bits: about 2 ulp on [-87, 88]), for softmax, log-softmax
 * and GELU, where libm's scalar calls cost more than the arithmetic around them.
 * Inputs below -87.3 return ~1e-38 rather than 0, which no softmax can tell apart; NaN gives NaN. */
#ifndef RLHF_FASTMATH_H
#define RLHF_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float fm_expf(float x)
{
    /* NaN fails both comparisons and is clamped to a finite value here (so the integer conversion
     * below is defined), then given back as NaN at the end: NaNs stay visible to callers */
    float xc = x > -87.3f ? (x < 88.3f ? x : 88.3f) : -87.3f;
    float n = floorf(xc * 1.44269504088896341f + 0.5f);
    float r = xc - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    uint32_t e = (uint32_t)((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return x != x ? x : p * s;
}

/* tanh(u) = 1 - 2 / (exp(2u) + 1), with the sign handled so large |u| stays exact at +-1 */
static inline float fm_tanhf(float u)
{
    float a = u < 0 ? -u : u;
    float t = 1.0f - 2.0f / (fm_expf(2.0f * a) + 1.0f);
    return u < 0 ? -t : t;
}

#define FM_GELU_K 0.7978845608028654f /* sqrt(2/pi) */

/* GELU, tanh form: the forward of op_gelu_fwd, one value (also used inside decode steps) */
static inline float fm_gelu(float x) { return 0.5f * x * (1.0f + fm_tanhf(FM_GELU_K * (x + 0.044715f * x * x * x))); }

#endif
