/*
 * params_gemm.h - the parsed attributes of Gemm (struct qc_gemm_params,
 * filled by gemm.c's parse hook) and the shape resolution of Gemm and
 * MatMul (M, N, K; MatMul's batch broadcasting and operand matrices),
 * shared by the CPU kernels of gemm.c and the CUDA kernels of
 * src/backend/cuda_conv.c.
 */
#ifndef QATCONV_SRC_OPS_PARAMS_GEMM_H
#define QATCONV_SRC_OPS_PARAMS_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "op.h"

struct qc_gemm_params {
    float alpha, beta;
    bool  trans_a, trans_b;
};

/* M, N, K of Gemm node n, validated (float32 inputs, C broadcastable to
 * [M,N]); logs with label and returns QC_ERR_* otherwise. */
enum qc_status qc_gemm_resolve(const struct qc_node *n, const char *label,
                               const struct qc_tensor *const *in, int64_t *m, int64_t *nn,
                               int64_t *k);

/* MatMul operands as batches of matrices, batch dims right-aligned to the
 * output's: a_bdims[i] is 1 on axes A does not have. */
struct qc_matmul_dims {
    int     nb;                          /* output batch rank              */
    int64_t bdims[QC_MAX_DIMS];          /* output batch dims              */
    int64_t a_bdims[QC_MAX_DIMS], b_bdims[QC_MAX_DIMS];
    int64_t m, n, k;
    struct qc_shape y;
};

/* Batch sizes of Y, A and B, and the matrix strides of A and B per batch
 * axis (0 where the axis broadcasts). */
struct qc_matmul_batch {
    int64_t count, a_count, b_count;
    int64_t a_str[QC_MAX_DIMS], b_str[QC_MAX_DIMS];
};

/* numpy matmul of shapes a and b into *d; QC_ERR_SHAPE (logged with label)
 * when they do not fit. */
enum qc_status qc_matmul_resolve(const char *label, const struct qc_shape *a,
                                 const struct qc_shape *b, struct qc_matmul_dims *d);
void qc_matmul_batch_of(const struct qc_matmul_dims *d, struct qc_matmul_batch *mb);
/* Matrix indexes of A and B that output matrix t multiplies. */
void qc_matmul_operands(const struct qc_matmul_dims *d, const struct qc_matmul_batch *mb,
                        int64_t t, int64_t *ai, int64_t *bi);

#endif
