/* rng.h — the project's one seeded random-number generator (header-only, no hidden state).
 *
 * splitmix64: the whole state is one uint64_t the caller owns, so a checkpoint stores it as a
 * number and a resumed run draws the same values. Every layer uses this (it sits in tokenizer/,
 * the bottom layer, like fileio.h); rlhf/envs/ uses it for its reset distributions. */
#ifndef RLHF_RNG_H
#define RLHF_RNG_H

#include <math.h>
#include <stdint.h>

/* the next 64 random bits; advances *s */
static inline uint64_t rng_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* a state derived from a seed and a stream index (independent streams per sequence/env/worker) */
static inline uint64_t rng_stream(uint64_t seed, uint64_t index)
{
    uint64_t s = seed ^ (index * 0xD1B54A32D192ED03ull);
    return rng_u64(&s);
}

/* uniform in [0, 1), 53 bits */
static inline double rng_unit(uint64_t *s) { return (double)(rng_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

/* uniform in (0, 1): never 0, so log() of it is finite */
static inline double rng_unit_open(uint64_t *s)
{
    return ((double)(rng_u64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* uniform in [lo, hi) */
static inline double rng_uniform(uint64_t *s, double lo, double hi) { return lo + (hi - lo) * rng_unit(s); }

/* uniform integer in [0, n) (n > 0; bias below 2^-40 for n < 2^24) */
static inline uint64_t rng_below(uint64_t *s, uint64_t n) { return rng_u64(s) % n; }

/* standard normal (Box-Muller, one value per call) */
static inline double rng_normal(uint64_t *s)
{
    double u1 = rng_unit_open(s), u2 = rng_unit(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
