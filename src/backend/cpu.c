/*
 * cpu.c - the reference backend: host memory, OpenBLAS sgemm, the op
 * kernels from each op definition's .cpu slot, and the training kernels by
 * id (the host functions of cpu_train.h: cpu_quant.c, cpu_solver.c,
 * cpu_loss.c).  Deterministic for a given thread count.
 */
#include <config.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "backend.h"
#include "backend_impl.h"
#include "cpu_train.h"
#include "train_kernels.h"

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

/* Large buffers (a QAT step zeroes all its activation gradients at once,
 * src/plan/plan_train.c) are cleared by every thread, each its own part. */
static enum qc_status cpu_zero(struct qc_backend *be, void *dst, size_t nbytes)
{
    const size_t par_min = (size_t)QC_QUANT_PAR_MIN_STREAM * sizeof(float);
    int nt = be->threads > 1 && nbytes >= 2 * par_min ? be->threads : 1;
    if (nt == 1) {
        if (nbytes)
            memset(dst, 0, nbytes);
        return QC_OK;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        int tid = 0, tn = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        tn = omp_get_num_threads();
#endif
        size_t lo = nbytes / 64 * (size_t)tid / (size_t)tn * 64;
        size_t hi = tid == tn - 1 ? nbytes : nbytes / 64 * (size_t)(tid + 1) / (size_t)tn * 64;
        memset((char *)dst + lo, 0, hi - lo);
    }
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

/* ---- training kernels by id: the host functions, scalars read through their pointers ---- */

static enum qc_status cpu_sat_weight_forward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_sat_weight_forward *a = args;
    return qc_sat_weight_run_ch(a->cfg, a->ch, a->w, a->q, a->k, a->n, be->threads, a->st);
}

static enum qc_status cpu_sat_weight_backward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_sat_weight_backward *a = args;
    return qc_sat_weight_backward_ch(a->cfg, a->ch, a->st, a->w, a->dq, a->dw, a->n, be->threads);
}

static enum qc_status cpu_sat_act_forward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_sat_act_forward *a = args;
    qc_sat_act_forward(*a->alpha, a->range, a->x, a->y, a->n, be->threads);
    return QC_OK;
}

static enum qc_status cpu_sat_act_backward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_sat_act_backward *a = args;
    qc_sat_act_backward(*a->alpha, a->range, a->x, a->dy, a->dx, a->n, be->threads, a->dalpha);
    return QC_OK;
}

static enum qc_status cpu_lsq_forward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_lsq_forward *a = args;
    if (a->zero_point) { /* asymmetric: per tensor */
        QC_ASSERT(a->ch.nch <= 1);
        qc_lsq_forward_zp(a->step[0], a->zero_point[0], a->qn, a->qp, a->x, a->y, a->n,
                          be->threads);
        return QC_OK;
    }
    qc_lsq_forward_ch(a->step, a->ch, a->qn, a->qp, a->x, a->y, a->n, be->threads);
    return QC_OK;
}

static enum qc_status cpu_lsq_backward(struct qc_backend *be, const void *args)
{
    const struct qc_tk_lsq_backward *a = args;
    if (a->zero_point) { /* asymmetric: per tensor */
        QC_ASSERT(a->ch.nch <= 1);
        qc_lsq_backward_zp(a->step[0], a->zero_point[0], a->qn, a->qp, a->g, a->x, a->dy, a->dx,
                           a->n, be->threads, a->dstep, a->dzero_point);
        return QC_OK;
    }
    qc_lsq_backward_ch(a->step, a->ch, a->qn, a->qp, a->g, a->x, a->dy, a->dx, a->n, be->threads,
                       a->dstep);
    return QC_OK;
}

static enum qc_status cpu_lsq_init_step(struct qc_backend *be, const void *args)
{
    const struct qc_tk_lsq_init_step *a = args;
    if (a->zero_point) { /* asymmetric: min/max, per tensor */
        QC_ASSERT(a->ch.nch <= 1);
        qc_lsq_init_zero_point(a->x, a->n, a->qn, a->qp, a->keep_step, be->threads, a->step,
                               a->zero_point);
        return QC_OK;
    }
    qc_lsq_init_step_ch(a->x, a->ch, a->n, a->qp, be->threads, a->step);
    return QC_OK;
}

/* p[i] = max(p[i], lo) */
static enum qc_status cpu_clamp_min(struct qc_backend *be, const void *args)
{
    const struct qc_tk_clamp_min *a = args;
    (void)be;
    for (int64_t i = 0; i < a->n; i++)
        a->p[i] = a->p[i] < a->lo ? a->lo : a->p[i];   /* NaN stays NaN, as in the clamps */
    return QC_OK;
}

static enum qc_status cpu_solver_apply(struct qc_backend *be, const void *args)
{
    const struct qc_tk_solver_apply *a = args;
    qc_solver_apply(a->u, a->theta, a->grad, a->state, a->n, a->decays, be->threads);
    return QC_OK;
}

static enum qc_status cpu_softmax_xent(struct qc_backend *be, const void *args)
{
    const struct qc_tk_softmax_xent *a = args;
    int64_t correct = 0;
    double loss = 0.0;
    enum qc_status st;
    (void)be;
    st = qc_loss_softmax_xent(a->z, a->labels, a->b, a->classes, a->scale, a->dz, &loss,
                              &correct);
    a->stats[0] = loss;
    a->stats[1] = (double)correct;
    a->stats[2] = 0.0;
    return st;
}

static enum qc_status cpu_distill_xent(struct qc_backend *be, const void *args)
{
    const struct qc_tk_distill_xent *a = args;
    int64_t correct = 0;
    double loss = 0.0;
    enum qc_status st;
    (void)be;
    st = qc_loss_distill_xent(a->z, a->teacher, a->labels, a->b, a->classes, a->temperature,
                              a->weight, a->scale, a->dz, &loss, &correct);
    a->stats[0] = loss;
    a->stats[1] = (double)correct;
    a->stats[2] = 0.0;
    return st;
}

static const qc_train_kernel_fn cpu_train[QC_TK_COUNT] = {
    [QC_TK_SAT_WEIGHT_FORWARD] = cpu_sat_weight_forward,
    [QC_TK_SAT_WEIGHT_BACKWARD] = cpu_sat_weight_backward,
    [QC_TK_SAT_ACT_FORWARD] = cpu_sat_act_forward,
    [QC_TK_SAT_ACT_BACKWARD] = cpu_sat_act_backward,
    [QC_TK_LSQ_FORWARD] = cpu_lsq_forward,
    [QC_TK_LSQ_BACKWARD] = cpu_lsq_backward,
    [QC_TK_LSQ_INIT_STEP] = cpu_lsq_init_step,
    [QC_TK_CLAMP_MIN] = cpu_clamp_min,
    [QC_TK_SOLVER_APPLY] = cpu_solver_apply,
    [QC_TK_SOFTMAX_XENT] = cpu_softmax_xent,
    [QC_TK_DISTILL_XENT] = cpu_distill_xent,
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
    .train = cpu_train,
    .upload_batch = NULL,
    .set_tf32 = NULL,
    .host_memory = true,
};
