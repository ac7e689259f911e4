/*
 * cuda.c - the CUDA backend: device memory (every allocation's size tracked
 * for the peak-memory figure), transfers, cuBLAS sgemm (TF32 off by default:
 * CUBLAS_DEFAULT_MATH keeps full float32; --tf32 allows tensor cores), the
 * training kernels by id of train_kernels.h (the fused quantizer,
 * optimizer and loss kernels of kernels/, scalars kept on the device), and
 * the op kernels of the table in cuda_kernels.c.  An op without CUDA kernels
 * is reported by the plan as unsupported, never run on the CPU instead.
 * Every kernel and cuBLAS call runs on the legacy default stream in issue
 * order; training batches are uploaded on a second, non-blocking stream from
 * pinned staging buffers, so the host prepares and sends batch i+1 while the
 * device computes batch i.  Every CUDA and cuBLAS call and every kernel
 * launch is checked; a failure logs one line naming the call and returns
 * QC_ERR_BACKEND (the CLI exits 3), never aborts.
 */
#include <config.h>

#include <stddef.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "../../kernels/qc_kernels.h"
#include "util/log.h"
#include "backend.h"
#include "backend_impl.h"
#include "cuda_kernels.h"
#include "cuda_ops.h"
#include "train_kernels.h"

/* The device state is written by the kernels as struct qc_k_sat_wstate and read by C code
 * as struct qc_sat_wstate: the two must have one layout. */
_Static_assert(sizeof(struct qc_k_sat_wstate) == sizeof(struct qc_sat_wstate),
               "qc_k_sat_wstate layout");
_Static_assert(offsetof(struct qc_k_sat_wstate, scale) == offsetof(struct qc_sat_wstate, scale)
                   && offsetof(struct qc_k_sat_wstate, div) == offsetof(struct qc_sat_wstate, div),
               "qc_k_sat_wstate layout");

static enum qc_status cuda_upload(struct qc_backend *be, void *dst, const void *src,
                                  size_t nbytes);

/* A pinned staging buffer of upload_batch, one per destination. */
struct cuda_stage {
    const void  *dst;
    void        *host;      /* cudaMallocHost                                    */
    size_t       size;
    cudaEvent_t  copied;    /* recorded on the copy stream after the last copy   */
};

#define QC_CUDA_NSTAGE 4

/* Sizes of live allocations, for the memory figures of struct qc_backend. */
struct cuda_block {
    void  *ptr;
    size_t size;
};

struct cuda_priv {
    cublasHandle_t    blas;
    void             *work;       /* QC_K_WORK_BYTES of reduction scratch (qc_kernels.h) */
    double           *rowbuf;     /* the loss's per-row scratch                          */
    int64_t           rowbuf_rows;
    cudaStream_t      copy;       /* batch uploads (non-blocking: overlaps the default)  */
    struct cuda_stage stage[QC_CUDA_NSTAGE];
    struct cuda_block *blocks;
    size_t            n_blocks, cap_blocks;
    void *host_scratch; /* cudaMallocHost: qc_cuda_host_scratch */
    size_t host_scratch_size;
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
    for (int i = 0; i < QC_CUDA_NSTAGE; i++) {
        if (cp->stage[i].copied) {
            cudaEventSynchronize(cp->stage[i].copied);
            cudaEventDestroy(cp->stage[i].copied);
        }
        if (cp->stage[i].host)
            cudaFreeHost(cp->stage[i].host);
    }
    if (cp->host_scratch)
        cudaFreeHost(cp->host_scratch);
    if (cp->copy)
        cudaStreamDestroy(cp->copy);
    if (cp->blas)
        cublasDestroy(cp->blas);
    if (cp->work)
        cudaFree(cp->work);
    if (cp->rowbuf)
        cudaFree(cp->rowbuf);
    qc_free(cp->blocks);
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
    QC_CUDA_CHECK(cudaStreamCreateWithFlags(&cp->copy, cudaStreamNonBlocking));
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

/* Records a live allocation and updates be->mem_now / mem_peak. */
static enum qc_status track(struct qc_backend *be, void *ptr, size_t size)
{
    struct cuda_priv *cp = be->priv;
    if (cp->n_blocks == cp->cap_blocks) {
        size_t cap = cp->cap_blocks ? 2 * cp->cap_blocks : 256;
        struct cuda_block *nb = qc_realloc(cp->blocks, cap * sizeof(*nb));
        if (!nb)
            return QC_ERR_NOMEM;
        cp->blocks = nb;
        cp->cap_blocks = cap;
    }
    cp->blocks[cp->n_blocks].ptr = ptr;
    cp->blocks[cp->n_blocks++].size = size;
    be->mem_now += size;
    if (be->mem_now > be->mem_peak)
        be->mem_peak = be->mem_now;
    return QC_OK;
}

static enum qc_status cuda_alloc(struct qc_backend *be, size_t nbytes, void **ptr)
{
    enum qc_status st;
    size_t size = nbytes ? nbytes : 4;
    cudaError_t e = cudaMalloc(ptr, size);
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        qc_log_error("CUDA: cudaMalloc of %.1f MiB failed: %s (%.1f MiB allocated by qatconv, "
                     "%.1f of %.1f MiB free on the device)", (double)size / 1048576.0,
                     cudaGetErrorString(e), (double)be->mem_now / 1048576.0,
                     (double)free_b / 1048576.0, (double)total_b / 1048576.0);
        *ptr = NULL;
        return QC_ERR_BACKEND;
    }
    st = track(be, *ptr, size);
    if (st != QC_OK) {
        cudaFree(*ptr);
        *ptr = NULL;
        return st;
    }
    QC_CUDA_CHECK(cudaMemset(*ptr, 0, size));
    return QC_OK;
}

static void cuda_release(struct qc_backend *be, void *ptr)
{
    struct cuda_priv *cp = be->priv;
    for (size_t i = 0; ptr && i < cp->n_blocks; i++) {
        if (cp->blocks[i].ptr != ptr)
            continue;
        be->mem_now -= cp->blocks[i].size;
        cp->blocks[i] = cp->blocks[--cp->n_blocks];
        break;
    }
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

/* The stage of dst: its own, a free one, or NULL when all are taken. */
static struct cuda_stage *stage_for(struct cuda_priv *cp, const void *dst)
{
    for (int i = 0; i < QC_CUDA_NSTAGE; i++)
        if (cp->stage[i].dst == dst)
            return &cp->stage[i];
    for (int i = 0; i < QC_CUDA_NSTAGE; i++)
        if (!cp->stage[i].dst) {
            cp->stage[i].dst = dst;
            return &cp->stage[i];
        }
    return NULL;
}

/* Batch upload overlapping the device's work: src is copied into a pinned
 * staging buffer of dst (after that buffer's previous copy has finished), the
 * copy to dst runs on the non-blocking copy stream, and the default stream
 * waits for it before its next kernel.  The caller guarantees that no queued
 * kernel still reads dst (train.c alternates two input buffers and has
 * synchronised the step that last read this one). */
static enum qc_status cuda_upload_batch(struct qc_backend *be, void *dst, const void *src,
                                        size_t nbytes)
{
    struct cuda_priv *cp = be->priv;
    struct cuda_stage *sg = stage_for(cp, dst);
    if (!sg)
        return cuda_upload(be, dst, src, nbytes);
    if (sg->copied)
        QC_CUDA_CHECK(cudaEventSynchronize(sg->copied));
    else
        QC_CUDA_CHECK(cudaEventCreateWithFlags(&sg->copied, cudaEventDisableTiming));
    if (sg->size < nbytes) {
        if (sg->host)
            QC_CUDA_CHECK(cudaFreeHost(sg->host));
        sg->host = NULL;
        sg->size = 0;
        QC_CUDA_CHECK(cudaMallocHost(&sg->host, nbytes ? nbytes : 4));
        sg->size = nbytes;
    }
    if (nbytes)
        memcpy(sg->host, src, nbytes);
    QC_CUDA_CHECK(cudaMemcpyAsync(dst, sg->host, nbytes, cudaMemcpyHostToDevice, cp->copy));
    QC_CUDA_CHECK(cudaEventRecord(sg->copied, cp->copy));
    QC_CUDA_CHECK(cudaStreamWaitEvent(0, sg->copied, 0));
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

/* The op table of cuda_kernels.c; an op without a line has no CUDA kernel. */
static const struct qc_kernel *cuda_kernel(enum qc_op_kind kind)
{
    return (int)kind >= 0 && kind < QC_OP_COUNT && qc_cuda_kernels[kind].forward
               ? &qc_cuda_kernels[kind] : NULL;
}


/* ---- device helpers (cuda_ops.h) ---------------------------------------------- */

/* The reduction workspace of a CUDA backend; NULL (logged) for another backend. */
static void *cuda_work(struct qc_backend *be, const char *fn)
{
    if (!be || be->ops != &qc_backend_cuda_ops || !be->priv) {
        qc_log_error("%s: needs the CUDA backend, got %s", fn, be ? be->ops->name : "none");
        return NULL;
    }
    return ((struct cuda_priv *)be->priv)->work;
}

void *qc_cuda_host_scratch(struct qc_backend *be, size_t bytes)
{
    struct cuda_priv *cp;
    cudaError_t e;
    if (!cuda_work(be, "qc_cuda_host_scratch"))
        return NULL;
    cp = be->priv;
    if (cp->host_scratch_size >= bytes)
        return cp->host_scratch;
    if (cp->host_scratch) {
        e = cudaFreeHost(cp->host_scratch);
        cp->host_scratch = NULL;
        cp->host_scratch_size = 0;
        if (e != cudaSuccess) {
            qc_log_error("CUDA: cudaFreeHost failed: %s", cudaGetErrorString(e));
            return NULL;
        }
    }
    e = cudaMallocHost(&cp->host_scratch, bytes);
    if (e != cudaSuccess) {
        cp->host_scratch = NULL;
        qc_log_error("CUDA: cudaMallocHost of %zu bytes failed: %s", bytes, cudaGetErrorString(e));
        return NULL;
    }
    cp->host_scratch_size = bytes;
    return cp->host_scratch;
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

void *qc_cuda_blas_handle(struct qc_backend *be)
{
    return cuda_work(be, "qc_cuda_blas_handle") ? ((struct cuda_priv *)be->priv)->blas : NULL;
}

/* ---- training kernels by id (train_kernels.h) ------------------------------------------- */

/*
 * Per-channel quantizers (QWeight.PerChannel=1, ch.nch > 1) run the _ch kernels: one launch
 * for all channels, every layout (Conv, Gemm with or without transB, MatMul, ConvTranspose;
 * a layout that does not describe the n elements is the kernel's invalid-value error); per
 * tensor, the per-tensor kernels.  *kc: the layout for the _ch kernels.
 */
static bool cuda_channels(struct qc_channels ch, struct qc_k_channels *kc)
{
    kc->nch = ch.nch;
    kc->inner = ch.inner;
    return ch.nch > 1;
}

static enum qc_status cuda_sat_weight_forward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_sat_weight_forward *a = args;
    const struct qc_sat_wcfg *cfg = a->cfg;
    void *work = cuda_work(be, "sat_weight_forward");
    struct qc_k_channels kc;
    if (!work)
        return QC_ERR_BACKEND;
    if (cuda_channels(a->ch, &kc))
        QC_KERNEL_CHECK(qc_k_sat_weight_forward_ch((int)cfg->mode, cfg->range, cfg->apply_quant,
                                                   cfg->apply_scaling, cfg->fanout, kc, a->w, a->q,
                                                   a->k, a->n, (struct qc_k_sat_wstate *)a->st));
    else
        QC_KERNEL_CHECK(qc_k_sat_weight_forward((int)cfg->mode, cfg->range, cfg->apply_quant,
                                                cfg->apply_scaling, cfg->fanout, a->w, a->q, a->k,
                                                a->n, (struct qc_k_sat_wstate *)a->st, work));
    return QC_OK;
}

static enum qc_status cuda_sat_weight_backward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_sat_weight_backward *a = args;
    const struct qc_sat_wcfg *cfg = a->cfg;
    struct qc_k_channels kc;
    if (!cuda_work(be, "sat_weight_backward"))
        return QC_ERR_BACKEND;
    if (cuda_channels(a->ch, &kc))
        QC_KERNEL_CHECK(qc_k_sat_weight_backward_ch(
            (int)cfg->mode, cfg->range, cfg->apply_quant, cfg->apply_scaling, kc,
            (const struct qc_k_sat_wstate *)a->st, a->w, a->dq, a->dw, a->n));
    else
        QC_KERNEL_CHECK(qc_k_sat_weight_backward(
            (int)cfg->mode, cfg->range, cfg->apply_quant, cfg->apply_scaling,
            (const struct qc_k_sat_wstate *)a->st, a->w, a->dq, a->dw, a->n));
    return QC_OK;
}

static enum qc_status cuda_sat_act_forward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_sat_act_forward *a = args;
    if (!cuda_work(be, "sat_act_forward"))
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_sat_act_forward(a->alpha, a->range, a->x, a->y, a->n));
    return QC_OK;
}

static enum qc_status cuda_sat_act_backward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_sat_act_backward *a = args;
    void *work = cuda_work(be, "sat_act_backward");
    if (!work)
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_sat_act_backward(a->alpha, a->range, a->x, a->dy, a->dx, a->n,
                                          a->dalpha, work));
    return QC_OK;
}

static enum qc_status cuda_lsq_forward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_lsq_forward *a = args;
    struct qc_k_channels kc;
    if (!cuda_work(be, "lsq_forward"))
        return QC_ERR_BACKEND;
    if (a->zero_point) { /* asymmetric: per tensor */
        QC_ASSERT(a->ch.nch <= 1);
        QC_KERNEL_CHECK(
            qc_k_lsq_forward_zp(a->step, a->zero_point, a->qn, a->qp, a->x, a->y, a->n));
        return QC_OK;
    }
    if (cuda_channels(a->ch, &kc))
        QC_KERNEL_CHECK(qc_k_lsq_forward_ch(a->step, kc, a->qn, a->qp, a->x, a->y, a->n));
    else
        QC_KERNEL_CHECK(qc_k_lsq_forward(a->step, a->qn, a->qp, a->x, a->y, a->n));
    return QC_OK;
}

static enum qc_status cuda_lsq_backward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_lsq_backward *a = args;
    void *work = cuda_work(be, "lsq_backward");
    struct qc_k_channels kc;
    if (!work)
        return QC_ERR_BACKEND;
    if (a->zero_point) { /* asymmetric: per tensor */
        QC_ASSERT(a->ch.nch <= 1);
        QC_KERNEL_CHECK(qc_k_lsq_backward_zp(a->step, a->zero_point, a->qn, a->qp, a->g, a->x,
                                             a->dy, a->dx, a->n, a->dstep, a->dzero_point, work));
        return QC_OK;
    }
    if (cuda_channels(a->ch, &kc))
        QC_KERNEL_CHECK(qc_k_lsq_backward_ch(a->step, kc, a->qn, a->qp, a->g, a->x, a->dy, a->dx,
                                             a->n, a->dstep));
    else
        QC_KERNEL_CHECK(qc_k_lsq_backward(a->step, a->qn, a->qp, a->g, a->x, a->dy, a->dx, a->n,
                                          a->dstep, work));
    return QC_OK;
}

static enum qc_status cuda_lsq_init_step(struct qc_backend *be, const void *args)
{
    const struct qc_tk_lsq_init_step *a = args;
    void *work = cuda_work(be, "lsq_init_step");
    struct qc_k_channels kc;
    if (!work)
        return QC_ERR_BACKEND;
    if (a->zero_point) { /* asymmetric: min/max, per tensor */
        QC_ASSERT(a->ch.nch <= 1);
        QC_KERNEL_CHECK(qc_k_lsq_init_zero_point(a->x, a->n, a->qn, a->qp, a->keep_step, a->step,
                                                 a->zero_point, work));
        return QC_OK;
    }
    if (cuda_channels(a->ch, &kc))
        QC_KERNEL_CHECK(qc_k_lsq_init_step_ch(a->x, kc, a->n, a->qp, a->step));
    else
        QC_KERNEL_CHECK(qc_k_lsq_init_step(a->x, a->n, a->qp, a->step, work));
    return QC_OK;
}

static enum qc_status cuda_clamp_min(struct qc_backend *be, const void *args)
{
    const struct qc_tk_clamp_min *a = args;
    if (!cuda_work(be, "clamp_min"))
        return QC_ERR_BACKEND;
    QC_KERNEL_CHECK(qc_k_clamp_min_f32(a->p, a->lo, a->n));
    return QC_OK;
}

static enum qc_status cuda_solver_apply(struct qc_backend *be, const void *args)
{
    const struct qc_tk_solver_apply *a = args;
    const struct qc_solver_update *u = a->u;
    float decay = a->decays ? u->decay : 0.0f;
    if (!cuda_work(be, "solver_apply"))
        return QC_ERR_BACKEND;
    if (u->type == QC_SOLVER_ADAM)
        QC_KERNEL_CHECK(qc_k_adam(a->theta, a->grad, a->state, a->state + a->n, a->n, u->beta1,
                                  u->beta2, u->adam_c1, u->adam_c2, u->adam_step, u->adam_sbc2,
                                  u->eps, u->scale, decay));
    else
        QC_KERNEL_CHECK(qc_k_sgd(a->theta, a->grad, a->state, a->n, u->momentum, u->lr,
                                 u->scale, decay));
    return QC_OK;
}

static enum qc_status cuda_softmax_xent(struct qc_backend *be, const void *args)
{
    const struct qc_tk_softmax_xent *a = args;
    struct cuda_priv *cp;
    if (!cuda_work(be, "softmax_xent"))
        return QC_ERR_BACKEND;
    cp = be->priv;
    if (cp->rowbuf_rows < a->b) {   /* the first batch, or a larger one */
        if (cp->rowbuf)
            QC_CUDA_CHECK(cudaFree(cp->rowbuf));
        cp->rowbuf = NULL;
        cp->rowbuf_rows = 0;
        QC_CUDA_CHECK(cudaMalloc((void **)&cp->rowbuf, (size_t)a->b * 2 * sizeof(double)));
        cp->rowbuf_rows = a->b;
    }
    QC_KERNEL_CHECK(qc_k_softmax_xent(a->z, a->labels, a->b, a->classes, a->scale, a->dz,
                                      cp->rowbuf, a->stats));
    return QC_OK;
}

/* ---- the backend tables ------------------------------------------------------------------ */

static const qc_train_kernel_fn cuda_train[QC_TK_COUNT] = {
    [QC_TK_SAT_WEIGHT_FORWARD] = cuda_sat_weight_forward,
    [QC_TK_SAT_WEIGHT_BACKWARD] = cuda_sat_weight_backward,
    [QC_TK_SAT_ACT_FORWARD] = cuda_sat_act_forward,
    [QC_TK_SAT_ACT_BACKWARD] = cuda_sat_act_backward,
    [QC_TK_LSQ_FORWARD] = cuda_lsq_forward,
    [QC_TK_LSQ_BACKWARD] = cuda_lsq_backward,
    [QC_TK_LSQ_INIT_STEP] = cuda_lsq_init_step,
    [QC_TK_CLAMP_MIN] = cuda_clamp_min,
    [QC_TK_SOLVER_APPLY] = cuda_solver_apply,
    [QC_TK_SOFTMAX_XENT] = cuda_softmax_xent,
};

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
    .train = cuda_train,
    .upload_batch = cuda_upload_batch,
    .set_tf32 = qc_cuda_set_tf32,
    .host_memory = false,
};
