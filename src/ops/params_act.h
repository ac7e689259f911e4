/*
 * params_act.h - the parsed parameters of the activation ops of act.c
 * (LeakyRelu, HardSigmoid, Clip, Softmax/LogSoftmax, Dropout) and the
 * geometry/mode helpers their CPU and CUDA kernels share, so both backends
 * read one parse result (the CUDA kernels: src/backend/cuda_act.c).
 */
#ifndef QATCONV_SRC_OPS_PARAMS_ACT_H
#define QATCONV_SRC_OPS_PARAMS_ACT_H

#include <stdbool.h>
#include <stdint.h>

#include "op.h"

/* The parameters of the point-wise activations: y = f(x; a, b). */
struct act_params {
    float a, b;
};

struct clip_params {
    bool  from_inputs;        /* opset >= 11: bounds are inputs 1 and 2 */
    float min, max;           /* opset < 11: attribute bounds           */
};

struct softmax_params {
    int64_t axis;
    bool    flatten;          /* opset < 13: coerce to 2D at axis */
};

struct dropout_params {
    float ratio;              /* attribute form (opset < 12), training only       */
    bool  ratio_input;        /* opset >= 12: ratio, training_mode are inputs      */
    bool  mask_is_bool;       /* opset >= 10: mask is bool, before: same as input */
};

/* Splits the input into outer x len x inner: Softmax/LogSoftmax normalize
 * over len elements spaced inner apart. */
void qc_softmax_geometry(const struct softmax_params *p, const struct qc_shape *s,
                         int64_t *outer, int64_t *len, int64_t *inner);

/* Whether a Dropout run drops: the plan's training mode and, from opset 12,
 * the (host) training_mode input when the model gives one. */
bool qc_dropout_active(const struct qc_node *n, const struct qc_op_ctx *ctx,
                       const struct qc_tensor *const *in);

/* The saved mask of a training run, or NULL (logged) when the plan gave too
 * little saved space. */
unsigned char *qc_dropout_mask(const struct qc_op_ctx *ctx, int64_t cnt);

#endif
