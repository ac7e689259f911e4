/*
 * cpu.c - the reference backend: host memory, OpenBLAS sgemm, and the op
 * kernels from each op definition's .cpu slot.  Deterministic for a given
 * thread count.
 */
#include <config.h>

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "../log.h"
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
};
