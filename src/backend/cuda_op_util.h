/*
 * cuda_op_util.h - what the CUDA op files (cuda_act.c, cuda_pool.c,
 * cuda_layout.c) share: the launcher check that names the node, device copies
 * and accumulation, the float32 guard, and the strided box copy.  Internal to
 * src/backend/.
 */
#ifndef QATCONV_SRC_BACKEND_CUDA_OP_UTIL_H
#define QATCONV_SRC_BACKEND_CUDA_OP_UTIL_H

#include <cuda_runtime.h>
#include <stdbool.h>
#include <string.h>

#include "../../kernels/qc_elem_kernels.h"
#include "util/log.h"
#include "ops/op.h"

/* A launcher of qc_elem_kernels.h: its int is a cudaError_t. */
#define K_CHECK(ctx, call)                                                                 \
    do {                                                                                   \
        int e_ = (call);                                                                   \
        if (e_ != 0) {                                                                     \
            qc_log_error("%s: CUDA %.*s failed: %s", (ctx)->label,                         \
                         (int)strcspn(#call, "("), #call,                                  \
                         cudaGetErrorString((cudaError_t)e_));                             \
            return QC_ERR_BACKEND;                                                         \
        }                                                                                  \
    } while (0)

/* dst = src, nbytes, device to device on the default stream (nothing when they alias). */
static inline enum qc_status dev_copy(const struct qc_op_ctx *ctx, void *dst, const void *src,
                                      size_t nbytes)
{
    cudaError_t e;
    if (!nbytes || dst == src)
        return QC_OK;
    e = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, 0);
    if (e != cudaSuccess) {
        qc_log_error("%s: CUDA cudaMemcpyAsync failed: %s", ctx->label, cudaGetErrorString(e));
        return QC_ERR_BACKEND;
    }
    return QC_OK;
}

static inline bool need_f32(const struct qc_op_ctx *ctx, const struct qc_tensor *t,
                            const char *what)
{
    if (t->dtype == QC_DTYPE_F32)
        return true;
    qc_log_error("%s: %s of type %s is not supported on cuda (float32 only)", ctx->label, what,
                 qc_dtype_name(t->dtype));
    return false;
}

/* dx += dy over whole tensors (the byte-preserving ops' backward). */
static inline enum qc_status acc_whole(const struct qc_op_ctx *ctx, const struct qc_tensor *dy,
                                       struct qc_tensor *dx)
{
    K_CHECK(ctx, qc_k_acc_f32(qc_tensor_f32(dx), qc_tensor_f32(dy), qc_tensor_nelem(dx)));
    return QC_OK;
}

/* dst[box] = src[box] for elements of esize bytes (4 or 8: an 8-byte element is two words,
 * an extra innermost dim of 2). */
static inline enum qc_status copy_box(const struct qc_op_ctx *ctx, size_t esize,
                                      struct qc_k_box box, const void *src, void *dst)
{
    if (esize == 8) {
        for (int k = 0; k < box.nd; k++) {
            box.sstr[k] *= 2;
            box.dstr[k] *= 2;
        }
        box.cnt[box.nd] = 2;
        box.sstr[box.nd] = 1;
        box.dstr[box.nd] = 1;
        box.nd++;
    } else if (esize != 4) {
        qc_log_error("%s: %zu-byte elements are not supported on cuda", ctx->label, esize);
        return QC_ERR_UNSUPPORTED;
    }
    K_CHECK(ctx, qc_k_copy_box_u32(box, src, dst));
    return QC_OK;
}

#endif
