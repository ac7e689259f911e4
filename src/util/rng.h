/*
 * rng.h - the explicit pseudo-random generator (xoshiro256** seeded through
 * splitmix64) used by the data pipeline (shuffles, random transformations)
 * and by training-mode ops (Dropout masks).  No global state: whoever needs
 * randomness owns a struct qc_rng, so a seed makes a run repeatable.
 */
#ifndef QATCONV_SRC_RNG_H
#define QATCONV_SRC_RNG_H

#include <stdint.h>

struct qc_rng {
    uint64_t s[4];
};

void qc_rng_seed(struct qc_rng *rng, uint64_t seed);
uint64_t qc_rng_next(struct qc_rng *rng);
/* Uniform float in [0, 1). */
float qc_rng_uniform(struct qc_rng *rng);

#endif
