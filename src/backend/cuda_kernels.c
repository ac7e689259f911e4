/*
 * cuda_kernels.c - the CUDA backend's op table (see cuda_kernels.h): one
 * line per op that has CUDA kernels, { forward, backward, workspace }, with
 * workspace NULL where the op definition's workspace() (the CPU's) serves.
 * An op without a line has no CUDA kernel.
 */
#include <config.h>

#include "cuda_kernels.h"

const struct qc_kernel qc_cuda_kernels[QC_OP_COUNT] = {
    /* cuda_conv.c */
    [QC_OP_CONV]           = { qc_cuda_conv_fwd, qc_cuda_conv_bwd, qc_cuda_conv_workspace },
    [QC_OP_GEMM]           = { qc_cuda_gemm_fwd, qc_cuda_gemm_bwd, NULL },
    [QC_OP_MATMUL]         = { qc_cuda_matmul_fwd, qc_cuda_matmul_bwd, NULL },
    [QC_OP_BATCHNORM]      = { qc_cuda_bn_fwd, qc_cuda_bn_bwd, qc_cuda_bn_workspace },
    /* cuda_act.c */
    [QC_OP_RELU]           = { qc_cuda_relu_fwd, qc_cuda_relu_bwd, NULL },
    [QC_OP_CLIP]           = { qc_cuda_clip_fwd, qc_cuda_clip_bwd, NULL },
    [QC_OP_LEAKY_RELU]     = { qc_cuda_leaky_relu_fwd, qc_cuda_leaky_relu_bwd, NULL },
    [QC_OP_SIGMOID]        = { qc_cuda_sigmoid_fwd, qc_cuda_sigmoid_bwd, NULL },
    [QC_OP_TANH]           = { qc_cuda_tanh_fwd, qc_cuda_tanh_bwd, NULL },
    [QC_OP_HARD_SIGMOID]   = { qc_cuda_hard_sigmoid_fwd, qc_cuda_hard_sigmoid_bwd, NULL },
    [QC_OP_HARD_SWISH]     = { qc_cuda_hard_swish_fwd, qc_cuda_hard_swish_bwd, NULL },
    [QC_OP_SOFTMAX]        = { qc_cuda_softmax_fwd, qc_cuda_softmax_bwd, NULL },
    [QC_OP_LOG_SOFTMAX]    = { qc_cuda_log_softmax_fwd, qc_cuda_log_softmax_bwd, NULL },
    [QC_OP_DROPOUT]        = { qc_cuda_dropout_fwd, qc_cuda_dropout_bwd, NULL },
    [QC_OP_ADD]            = { qc_cuda_add_fwd, qc_cuda_add_bwd, NULL },
    [QC_OP_SUB]            = { qc_cuda_sub_fwd, qc_cuda_sub_bwd, NULL },
    [QC_OP_MUL]            = { qc_cuda_mul_fwd, qc_cuda_mul_bwd, NULL },
    [QC_OP_DIV]            = { qc_cuda_div_fwd, qc_cuda_div_bwd, NULL },
    [QC_OP_SUM]            = { qc_cuda_sum_fwd, qc_cuda_sum_bwd, NULL },
    /* cuda_pool.c */
    [QC_OP_MAXPOOL]        = { qc_cuda_maxpool_fwd, qc_cuda_maxpool_bwd, qc_cuda_argmax_workspace },
    [QC_OP_AVGPOOL]        = { qc_cuda_avgpool_fwd, qc_cuda_avgpool_bwd, NULL },
    [QC_OP_GLOBAL_AVGPOOL] = { qc_cuda_global_avg_fwd, qc_cuda_global_avg_bwd, NULL },
    [QC_OP_GLOBAL_MAXPOOL] = { qc_cuda_global_max_fwd, qc_cuda_global_max_bwd,
                               qc_cuda_argmax_workspace },
    [QC_OP_REDUCE_MEAN]    = { qc_cuda_reduce_fwd, qc_cuda_reduce_bwd, NULL },
    [QC_OP_REDUCE_SUM]     = { qc_cuda_reduce_fwd, qc_cuda_reduce_bwd, NULL },
    /* cuda_layout.c */
    [QC_OP_IDENTITY]       = { qc_cuda_copy_fwd, qc_cuda_copy_bwd, NULL },
    [QC_OP_FLATTEN]        = { qc_cuda_copy_fwd, qc_cuda_copy_bwd, NULL },
    [QC_OP_RESHAPE]        = { qc_cuda_copy_fwd, qc_cuda_copy_bwd, NULL },
    [QC_OP_SQUEEZE]        = { qc_cuda_copy_fwd, qc_cuda_copy_bwd, NULL },
    [QC_OP_UNSQUEEZE]      = { qc_cuda_copy_fwd, qc_cuda_copy_bwd, NULL },
    [QC_OP_TRANSPOSE]      = { qc_cuda_transpose_fwd, qc_cuda_transpose_bwd, NULL },
    [QC_OP_CONCAT]         = { qc_cuda_concat_fwd, qc_cuda_concat_bwd, NULL },
    [QC_OP_PAD]            = { qc_cuda_pad_fwd, qc_cuda_pad_bwd, NULL },
};
