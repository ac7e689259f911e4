/*
 * cuda.c - the CUDA backend: device memory, transfers, cuBLAS sgemm (TF32
 * off by default: CUBLAS_DEFAULT_MATH keeps full float32) and the C entry
 * points of the fused quantizer and optimizer kernels (cuda_ops.h, launchers
 * in kernels/).  Op kernels arrive with the training engine; until then
 * kernel() returns NULL for every op, so a plan on this backend lists every
 * node as unsupported instead of falling back to the CPU.  Everything runs on
 * the default stream.  Every CUDA and cuBLAS call and every kernel launch is
 * checked; a failure logs one line naming the call and returns
 * QC_ERR_BACKEND (the CLI exits 3), never aborts.
 */
#include <config.h>

#include <stddef.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "../../kernels/qc_kernels.h"
#include "../log.h"
#include "backend.h"
#include "cuda_ops.h"

/* The device state is written by the kernels as struct qc_k_sat_wstate and read by C code
 * as struct qc_sat_wstate: the two must have one layout. */
_Static_assert(sizeof(struct qc_k_sat_wstate) == sizeof(struct qc_sat_wstate),
               "qc_k_sat_wstate layout");
_Static_assert(offsetof(struct qc_k_sat_wstate, scale) == offsetof(struct qc_sat_wstate, scale)
                   && offsetof(struct qc_k_sat_wstate, div) == offsetof(struct qc_sat_wstate, div),
               "qc_k_sat_wstate layout");

extern const struct qc_backend_ops qc_backend_cuda_ops;

struct cuda_priv {
    cublasHandle_t blas;
    void          *work;   /* QC_K_WORK_BYTES of reduction scratch (qc_kernels.h) */
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

/* A kernel launcher of qc_kernels.h: its int is a cudaError_t. */
#define QC_KERNEL_CHECK(call)                                                       \
    do {                                                                            \
        int e_ = (call);                                                            \
        if (e_ != 0) {                                                              \
            qc_log_error("CUDA: %s failed: %s (%s:%d)", #call,                      \
                         cudaGetErrorString((cudaError_t)e_), __FILE__, __LINE__);  \
            return QC_ERR_BACKEND;                                                  \
        }                                                                           \
    } while (0)

static void cuda_fini(struct qc_backend *be)
{
    struct cuda_priv *cp = be->priv;
    if (!cp)
        return;
    if (cp->blas)
        cublasDestroy(cp->blas);
    if (cp->work)
        cudaFree(cp->work);
    qc_free(cp);
    be->priv = NULL;
}

static enum qc_status cuda_init_priv(struct qc_backend *be, int device)
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
    QC_CUDA_CHECK(cudaMalloc(&cp->work, QC_K_WORK_BYTES));
    return QC_OK;
}

/* backend.c frees `be` without fini when init fails: release what was made here. */
static enum qc_status cuda_init(struct qc_backend *be, int device)
{
    enum qc_status st = cuda_init_priv(be, device);
    if (st != QC_OK)
        cuda_fini(be);
    return st;
}

static enum qc_status cuda_alloc(struct qc_backend *be, size_t nbytes, void **ptr)
{
    (void)be;
    QC_CUDA_CHECK(cudaMalloc(ptr, nbytes ? nbytes : 4));
    QC_KERNEL_CHECK(qc_k_fill_f32((float *)*ptr, 0.0f, (int64_t)(nbytes / sizeof(float))));
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

/* ---- quantizers and optimizers (cuda_ops.h) ---------------------------------------------- */

/* The reduction workspace of a CUDA backend; NULL (logged) for another backend. */
static void *cuda_work(struct qc_backend *be, const char *fn)
{
    if (!be || be->ops != &qc_backend_cuda_ops || !be->priv) {
        qc_log_error("%s: needs the CUDA backend, got %s", fn, be ? be->ops->name : "none");
        return NULL;
    }
    return ((struct cuda_priv *)be->priv)->work;
}

int qc_cuda_device_count(void)
{
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();   /* clear the sticky "no device" error */
        return 0;
    }
    return count;
}

enum qc_status qc_cuda_set_tf32(struct qc_backend *be, bool allow)
{
    struct cuda_priv *cp;
    if (!cuda_work(be, "qc_cuda_set_tf32"))
        return QC_ERR_BACKEND;
    cp = be->priv;
    QC_CUBLAS_CHECK(cublasSetMathMode(cp->blas, allow ? CUBLAS_TF32_TENSOR_OP_MATH
                                                      : CUBLAS_DEFAULT_MATH));
    return QC_OK;
}

enum qc_status qc_cuda_sat_weight_forward(struct qc_backend *be, const struct qc_sat_wcfg *cfg,
                                          const float *w, float *q, int32_t *k, int64_t n,
                                          struct qc_sat_wstate *dstate)
{
    void *work = cuda_work(be, "qc_cuda_sat_weight_forward");
    if (!work)
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_sat_weight_forward((int)cfg->mode, cfg->range, cfg->apply_quant,
                                            cfg->apply_scaling, cfg->fanout, w, q, k, n,
                                            (struct qc_k_sat_wstate *)dstate, work));
    return QC_OK;
}

enum qc_status qc_cuda_sat_weight_backward(struct qc_backend *be,
                                           const struct qc_sat_wcfg *cfg,
                                           const struct qc_sat_wstate *dstate, const float *w,
                                           const float *dq, float *dw, int64_t n)
{
    if (!cuda_work(be, "qc_cuda_sat_weight_backward"))
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_sat_weight_backward((int)cfg->mode, cfg->range, cfg->apply_quant,
                                             cfg->apply_scaling,
                                             (const struct qc_k_sat_wstate *)dstate, w, dq, dw,
                                             n));
    return QC_OK;
}

enum qc_status qc_cuda_sat_act_forward(struct qc_backend *be, const float *alpha, int range,
                                       const float *x, float *y, int64_t n)
{
    if (!cuda_work(be, "qc_cuda_sat_act_forward"))
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_sat_act_forward(alpha, range, x, y, n));
    return QC_OK;
}

enum qc_status qc_cuda_sat_act_backward(struct qc_backend *be, const float *alpha, int range,
                                        const float *x, const float *dy, float *dx, int64_t n,
                                        float *dalpha)
{
    void *work = cuda_work(be, "qc_cuda_sat_act_backward");
    if (!work)
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_sat_act_backward(alpha, range, x, dy, dx, n, dalpha, work));
    return QC_OK;
}

enum qc_status qc_cuda_lsq_forward(struct qc_backend *be, const float *step, int qn, int qp,
                                   const float *x, float *y, int64_t n)
{
    if (!cuda_work(be, "qc_cuda_lsq_forward"))
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_lsq_forward(step, qn, qp, x, y, n));
    return QC_OK;
}

enum qc_status qc_cuda_lsq_backward(struct qc_backend *be, const float *step, int qn, int qp,
                                    double g, const float *x, const float *dy, float *dx,
                                    int64_t n, float *dstep)
{
    void *work = cuda_work(be, "qc_cuda_lsq_backward");
    if (!work)
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_lsq_backward(step, qn, qp, g, x, dy, dx, n, dstep, work));
    return QC_OK;
}

enum qc_status qc_cuda_clamp_min(struct qc_backend *be, float *p, float lo, int64_t n)
{
    if (!cuda_work(be, "qc_cuda_clamp_min"))
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_clamp_min_f32(p, lo, n));
    return QC_OK;
}

enum qc_status qc_cuda_solver_apply(struct qc_backend *be, const struct qc_solver_update *u,
                                    float *theta, const float *grad, float *state, int64_t n,
                                    bool decays)
{
    float decay = decays ? u->decay : 0.0f;
    if (!cuda_work(be, "qc_cuda_solver_apply"))
        return QC_ERR_BACKEND;
    if (u->type == QC_SOLVER_ADAM)
        QC_KERNEL_CHECK(qc_k_adam(theta, grad, state, state + n, n, u->beta1, u->beta2,
                                  u->adam_c1, u->adam_c2, u->adam_step, u->adam_sbc2, u->eps,
                                  u->scale, decay));
    else
        QC_KERNEL_CHECK(qc_k_sgd(theta, grad, state, n, u->momentum, u->lr, u->scale, decay));
    return QC_OK;
}
