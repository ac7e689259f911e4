/*
 * params_norm.h - the parsed attributes of BatchNormalization (struct
 * qc_bn_params, filled by norm.c's parse hook), shared by the CPU kernels
 * of norm.c and the CUDA kernels of src/backend/cuda_conv.c.  The training
 * forward's saved state is mu_B[C] then istd[C] (floats) on both backends.
 */
#ifndef QATCONV_SRC_OPS_PARAMS_NORM_H
#define QATCONV_SRC_OPS_PARAMS_NORM_H

#include <stdint.h>

#include "op.h"

struct qc_bn_params {
    float epsilon;
    float momentum;           /* running-statistics update (training) */
};

/* [N, C, inner] geometry of x. */
void qc_bn_geometry(const struct qc_tensor *x, int64_t *nb, int64_t *c, int64_t *inner);

/* ctx->saved as mu_B (istd follows at + C), or NULL (logged) when too small. */
float *qc_bn_saved_state(const struct qc_op_ctx *ctx, int64_t c);

#endif
