/*
 * cuda_kernels.c - the CUDA backend's op table (see cuda_kernels.h), one
 * designated initializer per line of cuda_kernels.def:
 *     [QC_OP_CONV] = { qc_cuda_conv_fwd, qc_cuda_conv_bwd, qc_cuda_conv_workspace }
 * workspace NULL where the op definition's workspace() (the CPU's) serves.
 */
#include <config.h>

#include <stddef.h>

#include "cuda_kernels.h"

const struct qc_kernel qc_cuda_kernels[QC_OP_COUNT] = {
#define QC_CUDA_OP(ID, FWD, BWD) [QC_OP_##ID] = { FWD, BWD, NULL },
#define QC_CUDA_OP_WS(ID, FWD, BWD, WS) [QC_OP_##ID] = { FWD, BWD, WS },
#include "cuda_kernels.def"
#undef QC_CUDA_OP_WS
#undef QC_CUDA_OP
};
