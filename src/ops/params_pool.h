/*
 * params_pool.h - the parsed parameters of the pooling and reduction ops of
 * pool.c (MaxPool/AveragePool, ReduceMean/ReduceSum) and the geometry
 * resolvers their CPU and CUDA kernels share (the CUDA kernels:
 * src/backend/cuda_pool.c).
 */
#ifndef QATCONV_SRC_OPS_PARAMS_POOL_H
#define QATCONV_SRC_OPS_PARAMS_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "op.h"

#define POOL_MAX_SP 3

enum auto_pad { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

struct pool_params {
    int           nsp;                        /* spatial dims in the attributes */
    int64_t       kernel[POOL_MAX_SP], stride[POOL_MAX_SP], dil[POOL_MAX_SP];
    int64_t       pads[2 * POOL_MAX_SP];      /* begins then ends               */
    enum auto_pad auto_pad;
    bool          ceil_mode, count_include_pad;
    bool          is_max;                     /* MaxPool: also uint8/int8       */
};

/* A pooling problem on 3 spatial dims (unused leading dims are 1). */
struct pool_geom {
    int64_t nc;
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
};

struct reduce_params {
    const char *op;                /* "ReduceMean" / "ReduceSum"     */
    bool    mean;                  /* divide by the reduced size     */
    bool    axes_input;            /* axes is input 1 (ReduceMean opset >= 18,
                                      ReduceSum opset >= 13)          */
    bool    keepdims, noop_empty;
    int     n_axes;                /* attribute axes                 */
    int64_t axes[QC_MAX_DIMS];
};

/* Output size and pads of every spatial dim of x (see pool.c's file
 * comment); QC_ERR_SHAPE, logged with label, when x does not fit. */
enum qc_status qc_pool_geometry(const struct pool_params *p, const char *label,
                                const struct qc_shape *x, struct pool_geom *g);

/* mask[d] = input dim d is reduced; *noop when the op is the identity
 * (the axes input, when given, is a host constant). */
enum qc_status qc_reduce_mask(const struct qc_node *n, const char *label,
                              const struct qc_tensor *const *in, bool *mask, bool *noop);

/* The arg-max buffer of a training forward: one int32 per output element,
 * or NULL when the forward need not record it. */
int32_t *qc_maxpool_argbuf(const struct qc_op_ctx *ctx, const struct qc_tensor *x,
                           const struct qc_tensor *y);

/* Arg-max buffer of a training GlobalMaxPool (one int32 per plane), or NULL. */
int32_t *qc_global_argbuf(const struct qc_op_ctx *ctx, const struct qc_tensor *x,
                          const struct qc_tensor *y);

#endif
