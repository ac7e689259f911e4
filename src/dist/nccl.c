/*
 * nccl.c - the device all-reduce of comm.h (qc_comm_mean_f32_device): NCCL's
 * average (ncclAvg) on the rank's current CUDA device, one communicator per
 * job created at the first call (rank 0's ncclUniqueId broadcast over MPI,
 * ncclCommInitRank), and the queued device averages of comm.h's pending
 * sets (qc_comm_pending_mean_f32_device; one ncclAllReduce per gradient
 * bucket, waited for together).
 * The average runs on the legacy default stream, which orders it after the
 * backend's work on its blocking streams, and is waited for.  Without NCCL
 * (a build without CUDA or MPI) the function answers QC_ERR_UNSUPPORTED.
 */
#include <config.h>

#include "comm.h"

#ifdef HAVE_NCCL
#include <cuda_runtime.h>
/* nccl.h declares some functions as `f()` (-Wstrict-prototypes) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <nccl.h>
#pragma GCC diagnostic pop
#endif

#include "util/log.h"
#include "comm_impl.h"

#ifdef HAVE_NCCL
static enum qc_status nccl_check(ncclResult_t rc, const char *what)
{
    if (rc == ncclSuccess)
        return QC_OK;
    qc_log_error("NCCL: %s: %s", what, ncclGetErrorString(rc));
    return QC_ERR_BACKEND;
}

/* The job's NCCL communicator, created at the first call. */
static enum qc_status nccl_comm(struct qc_comm *c, ncclComm_t *out)
{
    ncclUniqueId id;
    ncclComm_t nc;
    enum qc_status st = QC_OK;
    if (c->nccl) {
        *out = (ncclComm_t)c->nccl;
        return QC_OK;
    }
    if (c->rank == 0)
        st = nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    if (st == QC_OK)
        st = qc_comm_bcast(c, &id, sizeof(id), 0);
    if (st == QC_OK)
        st = nccl_check(ncclCommInitRank(&nc, c->size, id, c->rank), "ncclCommInitRank");
    if (st != QC_OK)
        return st;
    c->nccl = nc;
    *out = nc;
    return QC_OK;
}
#endif

enum qc_status qc_comm_mean_f32_device(struct qc_comm *c, float *dev_buf, int64_t n)
{
#ifdef HAVE_NCCL
    ncclComm_t nc;
    enum qc_status st;
    if (!c || c->size <= 1)
        return QC_OK;
    st = nccl_comm(c, &nc);
    if (st == QC_OK)
        st = nccl_check(
            ncclAllReduce(dev_buf, dev_buf, (size_t)n, ncclFloat, ncclAvg, nc, (cudaStream_t)0),
            "ncclAllReduce");
    if (st == QC_OK && cudaStreamSynchronize((cudaStream_t)0) != cudaSuccess) {
        qc_log_error("NCCL: cudaStreamSynchronize after ncclAllReduce failed");
        st = QC_ERR_BACKEND;
    }
    return st;
#else
    (void)dev_buf;
    (void)n;
    return c && c->size > 1 ? QC_ERR_UNSUPPORTED : QC_OK;
#endif
}

void qc_comm_nccl_free(struct qc_comm *c)
{
#ifdef HAVE_NCCL
    if (c->nccl)
        ncclCommDestroy((ncclComm_t)c->nccl);
#endif
    c->nccl = NULL;
}

bool qc_comm_has_device_mean(void)
{
#ifdef HAVE_NCCL
    return true;
#else
    return false;
#endif
}

enum qc_status qc_comm_pending_mean_f32_device(struct qc_comm_pending *pd, float *dev_buf,
                                               int64_t n)
{
#ifdef HAVE_NCCL
    ncclComm_t nc;
    enum qc_status st;
    if (qc_comm_size(pd->c) <= 1)
        return QC_OK;
    st = nccl_comm(pd->c, &nc);
    if (st == QC_OK)
        st = nccl_check(
            ncclAllReduce(dev_buf, dev_buf, (size_t)n, ncclFloat, ncclAvg, nc, (cudaStream_t)0),
            "ncclAllReduce");
    if (st == QC_OK)
        pd->n_device++;
    return st;
#else
    (void)dev_buf;
    (void)n;
    return qc_comm_size(pd->c) > 1 ? QC_ERR_UNSUPPORTED : QC_OK;
#endif
}

enum qc_status qc_comm_nccl_wait(struct qc_comm_pending *pd)
{
#ifdef HAVE_NCCL
    if (pd->n_device > 0 && cudaStreamSynchronize((cudaStream_t)0) != cudaSuccess) {
        qc_log_error("NCCL: cudaStreamSynchronize after the gradient averages failed");
        return QC_ERR_BACKEND;
    }
#endif
    (void)pd;
    return QC_OK;
}
