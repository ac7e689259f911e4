/*
 * params_norm.h - the parsed attributes of BatchNormalization (struct
 * qc_bn_params, filled by norm.c's parse hook), shared by the CPU kernels
 * of norm.c and the CUDA kernels of src/backend/cuda_conv.c.  The training
 * forward's saved state is mu_B[C] then istd[C] (floats) on both backends.
 */
#ifndef QATCONV_SRC_OPS_PARAMS_NORM_H
#define QATCONV_SRC_OPS_PARAMS_NORM_H

struct qc_bn_params {
    float epsilon;
    float momentum;           /* running-statistics update (training) */
};

#endif
