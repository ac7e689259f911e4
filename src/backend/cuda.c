/*
 * cuda.c - the CUDA backend: device memory, transfers and cuBLAS sgemm (TF32
 * off: CUBLAS_DEFAULT_MATH keeps full float32).  Op kernels arrive with the
 * training engine; until then kernel() returns NULL for every op, so a plan
 * on this backend lists every node as unsupported instead of falling back to
 * the CPU.  Every CUDA and cuBLAS call is checked; a failure names the call
 * and returns QC_ERR_BACKEND.
 */
#include <config.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "../../kernels/qc_kernels.h"
#include "../log.h"
#include "backend.h"

struct cuda_priv {
    cublasHandle_t blas;
};

#define QC_CUDA_CHECK(call)                                                         \
    do {                                                                            \
        cudaError_t e_ = (call);                                                    \
        if (e_ != cudaSuccess) {                                                    \
            qc_log_error("CUDA: %s failed: %s (%s:%d)", #call, cudaGetErrorString(e_), \
                         __FILE__, __LINE__);                                       \
            return QC_ERR_BACKEND;                                                  \
        }                                                                           \
    } while (0)

#define QC_CUBLAS_CHECK(call)                                                       \
    do {                                                                            \
        cublasStatus_t s_ = (call);                                                 \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                          \
            qc_log_error("cuBLAS: %s failed: status %d (%s:%d)", #call, (int)s_,    \
                         __FILE__, __LINE__);                                       \
            return QC_ERR_BACKEND;                                                  \
        }                                                                           \
    } while (0)

static enum qc_status cuda_init(struct qc_backend *be, int device)
{
    struct cuda_priv *cp;
    int count = 0;
    QC_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (device >= count) {
        qc_log_error("--device cuda:%d: only %d CUDA device(s) found", device, count);
        return QC_ERR_BACKEND;
    }
    QC_CUDA_CHECK(cudaSetDevice(device));
    cp = qc_calloc(1, sizeof(*cp));
    if (!cp)
        return QC_ERR_NOMEM;
    be->priv = cp;
    QC_CUBLAS_CHECK(cublasCreate(&cp->blas));
    QC_CUBLAS_CHECK(cublasSetMathMode(cp->blas, CUBLAS_DEFAULT_MATH));
    return QC_OK;
}

static void cuda_fini(struct qc_backend *be)
{
    struct cuda_priv *cp = be->priv;
    if (!cp)
        return;
    if (cp->blas)
        cublasDestroy(cp->blas);
    qc_free(cp);
    be->priv = NULL;
}

static enum qc_status cuda_alloc(struct qc_backend *be, size_t nbytes, void **ptr)
{
    int e;
    (void)be;
    QC_CUDA_CHECK(cudaMalloc(ptr, nbytes ? nbytes : 4));
    e = qc_k_fill_f32((float *)*ptr, 0.0f, (int64_t)(nbytes / sizeof(float)));
    if (e) {
        qc_log_error("CUDA: qc_k_fill_f32 failed: %s", cudaGetErrorString((cudaError_t)e));
        return QC_ERR_BACKEND;
    }
    return QC_OK;
}

static void cuda_release(struct qc_backend *be, void *ptr)
{
    (void)be;
    cudaFree(ptr);
}

static enum qc_status cuda_upload(struct qc_backend *be, void *dst, const void *src,
                                  size_t nbytes)
{
    (void)be;
    QC_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice));
    return QC_OK;
}

static enum qc_status cuda_download(struct qc_backend *be, void *dst, const void *src,
                                    size_t nbytes)
{
    (void)be;
    QC_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost));
    return QC_OK;
}

static enum qc_status cuda_zero(struct qc_backend *be, void *dst, size_t nbytes)
{
    (void)be;
    QC_CUDA_CHECK(cudaMemset(dst, 0, nbytes));
    return QC_OK;
}

static enum qc_status cuda_sync(struct qc_backend *be)
{
    (void)be;
    QC_CUDA_CHECK(cudaDeviceSynchronize());
    return QC_OK;
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T. */
static enum qc_status cuda_sgemm(struct qc_backend *be, const struct qc_gemm_args *g)
{
    struct cuda_priv *cp = be->priv;
    QC_CUBLAS_CHECK(cublasSgemm(cp->blas, g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)g->n, (int)g->m,
                                (int)g->k, &g->alpha, g->b, (int)g->ldb, g->a, (int)g->lda,
                                &g->beta, g->c, (int)g->ldc));
    return QC_OK;
}

static const struct qc_kernel *cuda_kernel(enum qc_op_kind kind)
{
    (void)kind;
    return NULL;
}

const struct qc_backend_ops qc_backend_cuda_ops = {
    .name = "cuda",
    .init = cuda_init,
    .fini = cuda_fini,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .upload = cuda_upload,
    .download = cuda_download,
    .zero = cuda_zero,
    .sync = cuda_sync,
    .sgemm = cuda_sgemm,
    .kernel = cuda_kernel,
};
