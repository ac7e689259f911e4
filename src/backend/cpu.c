/*
 * cpu.c - the reference backend: host memory, OpenBLAS sgemm, and the op
 * kernels from each op definition's .cpu slot.  Deterministic for a given
 * thread count.
 */
#include <config.h>

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "quant/quant.h"
#include "train/loss.h"
#include "train/solver.h"
#include "backend.h"

#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
#endif

/* OpenBLAS runs single-threaded: the op kernels parallelize over images
 * with OpenMP and call sgemm from each thread.  Two thread pools (OpenMP's
 * and OpenBLAS's) spinning on two cores made a 2-thread run 3x slower than
 * a 1-thread run. */
static enum qc_status cpu_init(struct qc_backend *be, int device)
{
    (void)be;
    (void)device;
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(1);
#endif
    return QC_OK;
}

static enum qc_status cpu_alloc(struct qc_backend *be, size_t nbytes, void **ptr)
{
    (void)be;
    /* 64-byte alignment for vector loads; size rounded up as aligned_alloc wants */
    size_t sz = (nbytes + 63) & ~(size_t)63;
    *ptr = aligned_alloc(64, sz ? sz : 64);
    if (!*ptr) {
        qc_log_error("out of memory (%zu bytes)", nbytes);
        return QC_ERR_NOMEM;
    }
    memset(*ptr, 0, sz ? sz : 64);
    return QC_OK;
}

static void cpu_release(struct qc_backend *be, void *ptr)
{
    (void)be;
    free(ptr);
}

static enum qc_status cpu_copy(struct qc_backend *be, void *dst, const void *src, size_t nbytes)
{
    (void)be;
    if (nbytes)
        memmove(dst, src, nbytes);
    return QC_OK;
}

static enum qc_status cpu_zero(struct qc_backend *be, void *dst, size_t nbytes)
{
    (void)be;
    if (nbytes)
        memset(dst, 0, nbytes);
    return QC_OK;
}

static enum qc_status cpu_sync(struct qc_backend *be)
{
    (void)be;
    return QC_OK;
}

static enum qc_status cpu_sgemm(struct qc_backend *be, const struct qc_gemm_args *g)
{
    (void)be;
    if (g->m <= 0 || g->n <= 0)
        return QC_OK;
    if (g->k <= 0) {
        /* C = beta*C */
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++)
                g->c[i * g->ldc + j] = g->beta == 0.0f ? 0.0f : g->beta * g->c[i * g->ldc + j];
        return QC_OK;
    }
    cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans,
                g->trans_b ? CblasTrans : CblasNoTrans, (blasint)g->m, (blasint)g->n,
                (blasint)g->k, g->alpha, g->a, (blasint)g->lda, g->b, (blasint)g->ldb, g->beta,
                g->c, (blasint)g->ldc);
    return QC_OK;
}

static const struct qc_kernel *cpu_kernel(enum qc_op_kind kind)
{
    const struct qc_op_def *d = qc_op_get(kind);
    return d->cpu.forward ? &d->cpu : NULL;
}

/* ---- training arithmetic: the CPU functions, scalars read through their pointers ---- */

static enum qc_status cpu_sat_weight_forward(struct qc_backend *be, const struct qc_sat_wcfg *cfg,
                                             const float *w, float *q, int64_t n,
                                             struct qc_sat_wstate *st)
{
    qc_sat_weight_forward(cfg, w, q, n, be->threads, st);
    return QC_OK;
}

static enum qc_status cpu_sat_weight_backward(struct qc_backend *be,
                                              const struct qc_sat_wcfg *cfg,
                                              const struct qc_sat_wstate *st, const float *w,
                                              const float *dq, float *dw, int64_t n)
{
    qc_sat_weight_backward(cfg, st, w, dq, dw, n, be->threads);
    return QC_OK;
}

static enum qc_status cpu_sat_act_forward(struct qc_backend *be, const float *alpha, int range,
                                          const float *x, float *y, int64_t n)
{
    qc_sat_act_forward(*alpha, range, x, y, n, be->threads);
    return QC_OK;
}

static enum qc_status cpu_sat_act_backward(struct qc_backend *be, const float *alpha, int range,
                                           const float *x, const float *dy, float *dx,
                                           int64_t n, float *dalpha)
{
    qc_sat_act_backward(*alpha, range, x, dy, dx, n, be->threads, dalpha);
    return QC_OK;
}

static enum qc_status cpu_lsq_forward(struct qc_backend *be, const float *step, int qn, int qp,
                                      const float *x, float *y, int64_t n)
{
    qc_lsq_forward(*step, qn, qp, x, y, n, be->threads);
    return QC_OK;
}

static enum qc_status cpu_lsq_backward(struct qc_backend *be, const float *step, int qn, int qp,
                                       double g, const float *x, const float *dy, float *dx,
                                       int64_t n, float *dstep)
{
    qc_lsq_backward(*step, qn, qp, g, x, dy, dx, n, be->threads, dstep);
    return QC_OK;
}

static enum qc_status cpu_lsq_init_step(struct qc_backend *be, const float *x, int64_t n, int qp,
                                        float *step)
{
    *step = qc_lsq_init_step(x, n, qp, be->threads);
    return QC_OK;
}

static enum qc_status cpu_clamp_min(struct qc_backend *be, float *p, float lo, int64_t n)
{
    (void)be;
    for (int64_t i = 0; i < n; i++)
        p[i] = p[i] < lo ? lo : p[i];   /* NaN stays NaN, as in the quantizers' clamps */
    return QC_OK;
}

static enum qc_status cpu_solver_apply(struct qc_backend *be, const struct qc_solver_update *u,
                                       float *theta, const float *grad, float *state, int64_t n,
                                       bool decays)
{
    qc_solver_apply(u, theta, grad, state, n, decays, be->threads);
    return QC_OK;
}

static enum qc_status cpu_loss(struct qc_backend *be, const float *z, const int32_t *labels,
                               int64_t b, int64_t classes, float scale, float *dz,
                               double *stats)
{
    int64_t correct = 0;
    double loss = 0.0;
    enum qc_status st;
    (void)be;
    st = qc_loss_softmax_xent(z, labels, b, classes, scale, dz, &loss, &correct);
    stats[0] = loss;
    stats[1] = (double)correct;
    stats[2] = 0.0;
    return st;
}

static const struct qc_backend_train cpu_train = {
    .sat_weight_forward = cpu_sat_weight_forward,
    .sat_weight_backward = cpu_sat_weight_backward,
    .sat_act_forward = cpu_sat_act_forward,
    .sat_act_backward = cpu_sat_act_backward,
    .lsq_forward = cpu_lsq_forward,
    .lsq_backward = cpu_lsq_backward,
    .lsq_init_step = cpu_lsq_init_step,
    .clamp_min = cpu_clamp_min,
    .solver_apply = cpu_solver_apply,
    .loss_softmax_xent = cpu_loss,
};

const struct qc_backend_ops qc_backend_cpu_ops = {
    .name = "cpu",
    .init = cpu_init,
    .fini = NULL,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .sgemm = cpu_sgemm,
    .kernel = cpu_kernel,
    .train = &cpu_train,
    .upload_batch = NULL,
    .set_tf32 = NULL,
    .host_memory = true,
};
