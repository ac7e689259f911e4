/*
 * comm.h - the processes of a data-parallel job (issue 18): rank, size, and
 * the collective operations the training loop needs (in-place sums of flat
 * float and double buffers, a maximum, a broadcast, a barrier).
 *
 * A build without MPI (or a process not started by an MPI launcher) has one
 * rank: size 1, every collective a no-op, so callers need no #ifdef.  With
 * MPI (configure --with-mpi), qc_comm_new initialises MPI when the process was
 * started by mpirun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK set) and
 * works on MPI_COMM_WORLD (with Open MPI's mpi_yield_when_idle on unless set:
 * waiting ranks yield their core).  Ranks other than 0 are quiet: their stdout
 * goes to /dev/null and their stderr to a private file (its first error line
 * is shown when such a rank fails alone: qc_comm_abort), so a job prints one
 * copy of every line.
 *
 * With several ranks, each rank watches the other ranks of its node (a
 * thread, comm.c): when one ends abnormally (killed, crashed), the lowest
 * survivor of the node prints one "rank R of the job ended abnormally" line
 * and the node's survivors exit with status 3, before the launcher ends
 * them.  qc_comm_free stops the watch (and waits for every rank's, in a
 * barrier); qc_comm_abort tells the node's ranks (SIGUSR2) that the job
 * ends on purpose.
 *
 * A build without MPI started by mpirun warns that every process trains
 * alone.  A NULL struct qc_comm * is the single-process communicator.
 */
#ifndef QATCONV_SRC_DIST_COMM_H
#define QATCONV_SRC_DIST_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/qc.h"

struct qc_comm;

/* The job's communicator (see the file comment); *out is never NULL on QC_OK. */
enum qc_status qc_comm_new(struct qc_comm **out);
/* Ends the watch of the node's ranks (a barrier of every rank), then finalizes
 * MPI when qc_comm_new initialised it. */
void qc_comm_free(struct qc_comm *c);

int qc_comm_rank(const struct qc_comm *c);       /* 0 .. size-1            */
int qc_comm_size(const struct qc_comm *c);       /* 1 without MPI          */
int qc_comm_local_rank(const struct qc_comm *c); /* rank on its node (GPU) */

/* buf[i] = Σ over ranks of buf[i], on every rank (host memory, in place). */
enum qc_status qc_comm_sum_f32(struct qc_comm *c, float *buf, int64_t n);
enum qc_status qc_comm_sum_f64(struct qc_comm *c, double *buf, int64_t n);
/* buf[i] = (1/size) Σ over ranks of buf[i], on every rank (in place). */
enum qc_status qc_comm_mean_f32(struct qc_comm *c, float *buf, int64_t n);
/* *v = max over ranks of *v, on every rank. */
enum qc_status qc_comm_max_int(struct qc_comm *c, int *v);
/* bytes of buf from rank `root` to every rank. */
enum qc_status qc_comm_bcast(struct qc_comm *c, void *buf, size_t bytes, int root);
enum qc_status qc_comm_barrier(struct qc_comm *c);
/* Ends every rank of the job with exit status `code` (MPI_Abort) when there
 * are several, after the failing rank's error line; returns (does nothing)
 * with one.  Called by a rank that failed, whatever the others are doing
 * (waiting in a collective, computing, failing too): rank 0 has printed its
 * line and aborts at once; another rank, whose stderr is not shown, waits
 * 3 s (in which an abort by rank 0, failing too, as on a bad recipe, ends
 * it silently), then prints the first error line it logged as
 * "qatconv: error: rank R: ..." and aborts.  So a job prints one error line
 * whether one rank fails or all do.  After qc_comm_failed_everywhere (the
 * ranks agreed on the failure: an interruption) no rank but 0 prints and
 * none waits. */
void qc_comm_abort(struct qc_comm *c, int code);
void qc_comm_failed_everywhere(struct qc_comm *c);

/* qc_comm_mean_f32 of a flat float buffer in device memory (the CUDA
 * backend's gradients): NCCL's ncclAvg where built (HAVE_NCCL), on the
 * rank's current CUDA device; QC_ERR_UNSUPPORTED elsewhere (the caller goes
 * through the host). */
enum qc_status qc_comm_mean_f32_device(struct qc_comm *c, float *dev_buf, int64_t n);

/* Non-blocking averages (the gradient buckets of train/grad_buckets.h): a
 * set of in-place averages over the ranks started one by one while other
 * work goes on, and waited for together.  Every rank starts the same
 * operations in the same order.  max_ops: the most operations started
 * between two waits (an average of more than INT_MAX floats on the host
 * takes one per INT_MAX). */
struct qc_comm_pending;
enum qc_status qc_comm_pending_new(struct qc_comm *c, int max_ops, struct qc_comm_pending **out);
void qc_comm_pending_free(struct qc_comm_pending *pd);
/* Starts buf[i] = (1/size) Σ over ranks of buf[i] on host memory
 * (MPI_Iallreduce of the sum; the 1/size scaling at the wait, as
 * qc_comm_mean_f32 does it).  buf is not to be touched until the wait. */
enum qc_status qc_comm_pending_mean_f32(struct qc_comm_pending *pd, float *buf, int64_t n);
/* The same on device memory (NCCL's ncclAvg, on the legacy default stream
 * after the work queued before it); QC_ERR_UNSUPPORTED without NCCL. */
enum qc_status qc_comm_pending_mean_f32_device(struct qc_comm_pending *pd, float *dev_buf,
                                               int64_t n);
/* Lets MPI progress the started operations (MPI_Testall); returns at once. */
enum qc_status qc_comm_pending_poll(struct qc_comm_pending *pd);
/* Waits for every started operation; the set is empty after it. */
enum qc_status qc_comm_pending_wait(struct qc_comm_pending *pd);
/* Whether this build averages device memory without the host (NCCL). */
bool qc_comm_has_device_mean(void);

#endif
