/*
 * cuda_kernels.h - the CUDA backend's op kernels: the table indexed by op
 * kind (qc_cuda_kernels, listed in cuda_kernels.def, built by
 * cuda_kernels.c) and the declarations of the kernel functions it names.
 * They are defined one file per op family as in src/ops/: cuda_conv.c (Conv,
 * Gemm, MatMul, BatchNormalization), cuda_act.c (activations, Softmax,
 * Dropout, broadcasting arithmetic), cuda_pool.c (pooling, reductions),
 * cuda_layout.c (copies, Transpose, Concat, Pad).
 *
 * Each kernel has the signature and the contract of the op's CPU kernel
 * (struct qc_kernel, ops/op.h).  Tensors' data are device pointers, except
 * integer constant inputs (shapes, axes, pads), which stay in host memory;
 * ctx->workspace and ctx->saved are device memory.
 *
 * Adding an op's CUDA kernels: define them in the family's file and give the
 * op its line in cuda_kernels.def.
 */
#ifndef QATCONV_SRC_BACKEND_CUDA_KERNELS_H
#define QATCONV_SRC_BACKEND_CUDA_KERNELS_H

#include "ops/op.h"

/* The kernels of each op, indexed by enum qc_op_kind; forward NULL = no CUDA
 * kernel. */
extern const struct qc_kernel qc_cuda_kernels[QC_OP_COUNT];

#define QC_CUDA_OP(ID, FWD, BWD) qc_forward_func FWD; qc_backward_func BWD;
#define QC_CUDA_OP_WS(ID, FWD, BWD, WS) QC_CUDA_OP(ID, FWD, BWD) qc_workspace_func WS;
#include "cuda_kernels.def"
#undef QC_CUDA_OP_WS
#undef QC_CUDA_OP

#endif
