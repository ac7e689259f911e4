/*
 * rng.c - the explicit pseudo-random generator (struct qc_rng in rng.h):
 * xoshiro256** (Blackman and Vigna), whose four
 * words of state are filled from the seed by splitmix64, so every seed,
 * including 0, gives a non-zero state.  No global state: callers own it.
 */
#include <config.h>

#include "rng.h"

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* splitmix64: z = (s += golden); z = (z ^ z>>30)*C1; z = (z ^ z>>27)*C2; z ^ z>>31 */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void qc_rng_seed(struct qc_rng *rng, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&s);
}

/* xoshiro256**: result = rotl(s1 * 5, 7) * 9, then the linear state update. */
uint64_t qc_rng_next(struct qc_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Top 24 bits scaled by 2^-24: exactly representable, never 1.0. */
float qc_rng_uniform(struct qc_rng *rng)
{
    return (float)(qc_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}
