/*
 * params_layout.h - the parsed parameters of the layout ops of layout.c
 * that move data (Transpose, Concat, Pad) and the resolvers their CPU and
 * CUDA kernels share (the CUDA kernels: src/backend/cuda_layout.c).
 */
#ifndef QATCONV_SRC_OPS_PARAMS_LAYOUT_H
#define QATCONV_SRC_OPS_PARAMS_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "op.h"

struct transpose_params {
    int     n_perm;                  /* 0 = reverse the dims                 */
    int64_t perm[QC_MAX_DIMS];
};

struct concat_params {
    int64_t axis;
};

/* pads and value: attributes before opset 11; inputs pads, constant_value
 * from 11 and axes from 18. */
struct pad_params {
    bool    from_input;
    int     n_pads;
    int64_t pads[2 * QC_MAX_DIMS];
    float   value;
};

/* Transpose's perm resolved against the input rank r (default: reversed). */
enum qc_status qc_transpose_perm(const struct qc_node *n, const char *label, int r, int *perm);

/* Pad's begin/end pads per dim of in[0] (the pads and axes inputs are host
 * constants). */
enum qc_status qc_pad_resolve(const struct qc_node *n, const char *label,
                              const struct qc_tensor *const *in, int64_t *begin, int64_t *end);

#endif
