/*
 * cuda_kernels.h - the CUDA backend's op kernels: one table indexed by op
 * kind (qc_cuda_kernels, cuda_kernels.c) and the kernel functions it holds,
 * defined one file per op family as in src/ops/: cuda_conv.c (Conv, Gemm,
 * MatMul, BatchNormalization), cuda_act.c (activations, Softmax, Dropout,
 * broadcasting arithmetic), cuda_pool.c (pooling, reductions), cuda_layout.c
 * (copies, Transpose, Concat, Pad).
 *
 * Each kernel has the signature and the contract of the op's CPU kernel
 * (struct qc_kernel, ops/op.h).  Tensors' data are device pointers, except
 * integer constant inputs (shapes, axes, pads), which stay in host memory;
 * ctx->workspace and ctx->saved are device memory.
 *
 * Adding an op's CUDA kernels: define qc_cuda_NAME_fwd / _bwd (and
 * _workspace when the CPU's workspace() does not fit) in the family's file,
 * declare them here with QC_CUDA_KERNELS(NAME), and give the op its line in
 * the table of cuda_kernels.c.
 */
#ifndef QATCONV_SRC_BACKEND_CUDA_KERNELS_H
#define QATCONV_SRC_BACKEND_CUDA_KERNELS_H

#include <stddef.h>

#include "ops/op.h"

/* The kernels of each op, indexed by enum qc_op_kind: forward NULL = no CUDA
 * kernel (a plan on this backend reports the op unsupported). */
extern const struct qc_kernel qc_cuda_kernels[QC_OP_COUNT];

/* Declares qc_cuda_NAME_fwd (a qc_forward_fn) and qc_cuda_NAME_bwd (a
 * qc_backward_fn). */
#define QC_CUDA_KERNELS(NAME)                                                                 \
    enum qc_status qc_cuda_##NAME##_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,  \
                                        const struct qc_tensor *const *in,                    \
                                        struct qc_tensor *const *out);                        \
    enum qc_status qc_cuda_##NAME##_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,  \
                                        const struct qc_tensor *const *in,                    \
                                        const struct qc_tensor *const *out,                   \
                                        const struct qc_tensor *const *dout,                  \
                                        struct qc_tensor *const *din)
/* Declares qc_cuda_NAME_workspace (a qc_workspace_fn). */
#define QC_CUDA_WORKSPACE(NAME)                                                               \
    size_t qc_cuda_##NAME##_workspace(const struct qc_node *n,                                \
                                      const struct qc_tensor *const *in,                      \
                                      const struct qc_tensor *const *out, int threads)

/* cuda_conv.c */
QC_CUDA_KERNELS(conv);
QC_CUDA_WORKSPACE(conv);
QC_CUDA_KERNELS(gemm);
QC_CUDA_KERNELS(matmul);
QC_CUDA_KERNELS(bn);
QC_CUDA_WORKSPACE(bn);

/* cuda_act.c */
QC_CUDA_KERNELS(relu);
QC_CUDA_KERNELS(clip);
QC_CUDA_KERNELS(leaky_relu);
QC_CUDA_KERNELS(sigmoid);
QC_CUDA_KERNELS(tanh);
QC_CUDA_KERNELS(hard_sigmoid);
QC_CUDA_KERNELS(hard_swish);
QC_CUDA_KERNELS(softmax);
QC_CUDA_KERNELS(log_softmax);
QC_CUDA_KERNELS(dropout);
QC_CUDA_KERNELS(add);
QC_CUDA_KERNELS(sub);
QC_CUDA_KERNELS(mul);
QC_CUDA_KERNELS(div);
QC_CUDA_KERNELS(sum);

/* cuda_pool.c; argmax: the recomputed arg-max of MaxPool and GlobalMaxPool */
QC_CUDA_KERNELS(maxpool);
QC_CUDA_KERNELS(avgpool);
QC_CUDA_KERNELS(global_avg);
QC_CUDA_KERNELS(global_max);
QC_CUDA_KERNELS(reduce);
QC_CUDA_WORKSPACE(argmax);

/* cuda_layout.c; copy: Identity, Flatten, Reshape, Squeeze, Unsqueeze */
QC_CUDA_KERNELS(copy);
QC_CUDA_KERNELS(transpose);
QC_CUDA_KERNELS(concat);
QC_CUDA_KERNELS(pad);

#endif
