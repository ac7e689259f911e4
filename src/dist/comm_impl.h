/*
 * comm_impl.h - struct qc_comm, shared by comm.c and nccl.c (private to src/dist/).
 */
#ifndef QATCONV_SRC_DIST_COMM_IMPL_H
#define QATCONV_SRC_DIST_COMM_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct qc_comm {
    int rank, size, local_rank;
    bool mpi;     /* MPI is in use (launched by mpirun, built with MPI) */
    bool own_mpi; /* qc_comm_new called MPI_Init                        */
    void *nccl;   /* the NCCL communicator (nccl.c), created at first use */
    /* ranks other than 0: the launcher's stderr (a dup), -1 when not kept,
     * and the unlinked file their own stderr goes to (qc_comm_abort copies
     * its first error line to err_fd) */
    int err_fd;
    FILE *err_log;
    bool agreed; /* qc_comm_failed_everywhere: every rank fails with rank 0 */
    /* the watch over the other ranks of this node (comm.c, with MPI and
     * several ranks; NULL otherwise) */
    struct qc_comm_watch *watch;
};

/* A set of started averages (comm.h). */
struct qc_comm_pending {
    struct qc_comm *c;
    void *reqs;      /* MPI_Request[max] (comm.c)                        */
    float **bufs;    /* the host operations' buffers and counts: scaled  */
    int64_t *counts; /* by 1 / size at the wait                          */
    int n, max;      /* host operations started, capacity                */
    int n_device;    /* device averages queued (nccl.c)                  */
};

/* Waits for the device averages of pd (nccl.c; QC_OK without NCCL). */
enum qc_status qc_comm_nccl_wait(struct qc_comm_pending *pd);

/* Releases c->nccl (nccl.c; a no-op without NCCL). */
void qc_comm_nccl_free(struct qc_comm *c);

#endif
