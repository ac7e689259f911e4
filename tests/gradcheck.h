/*
 * gradcheck.h - central finite-difference check of an op's backward.
 *
 * qc_gradcheck() builds one node of the op from an attribute string, fills
 * its float inputs with seeded random values, runs forward, then backward
 * with a random output gradient r, and compares each requested input
 * gradient with (L(x + eps) - L(x - eps)) / 2eps, L = sum(r * y) in double,
 * on a sample of elements.  A sample whose difference quotient changes
 * between eps and eps/2 sits on a kink (ReLU at 0, a pool tie, a clip bound)
 * and is skipped; at least half the samples must be usable.  It also checks
 * that backward ACCUMULATES: gradient buffers start at 0.25, not 0.
 *
 * Attribute string: space-separated name=value; "3" INT, "0.5" FLOAT,
 * "1,2,3" INTS, "0.5,1.5" FLOATS, "3," the one-element INTS [3], "s:NOTSET"
 * STRING.
 *
 * The kernels checked are those of the backend named by the environment
 * variable QC_TEST_BACKEND ("cpu" when unset; "cuda" for the CUDA kernels,
 * e.g. on the emulator of tests/cuda_emu): float inputs are uploaded, integer
 * inputs stay in host memory, results are downloaded.  An op that backend
 * has no kernel for is skipped with a "gradcheck skip:" line on stdout.
 */
#ifndef QATCONV_TESTS_GRADCHECK_H
#define QATCONV_TESTS_GRADCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/tensor.h"

struct qc_gc_input {
    enum qc_dtype  dtype;          /* QC_DTYPE_F32 (0 is taken as F32) or I64 */
    int            ndim;
    int64_t        dims[QC_MAX_DIMS];
    const float   *fvals;          /* fixed float values, or NULL: random      */
    const int64_t *ivals;          /* values of an int64 input                 */
    bool           grad;           /* check the gradient of this input         */
    bool           absent;         /* an omitted optional input                */
};

struct qc_gc_opts {
    int64_t  opset;                /* 0: 13                                    */
    bool     training;             /* training-mode forward                    */
    int      threads;              /* 0: 1                                     */
    double   tol;                  /* 0: 1e-3                                  */
    uint64_t seed;
    float    lo, hi;               /* random input range; both 0: [-1, 1]      */
    int      n_out;                /* outputs the node declares; 0: 1          */
};

/* $QC_TEST_BACKEND, or "cpu" when unset or empty (also used by test_ops.c). */
const char *qc_test_backend_spec(void);

/* Runs the check (Check assertions inside) and returns the largest
 * relative error seen. */
double qc_gradcheck(const char *op, const char *attrs, int n_in, const struct qc_gc_input *in,
                    const struct qc_gc_opts *opts);

#endif
