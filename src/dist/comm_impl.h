/*
 * comm_impl.h - struct qc_comm, shared by comm.c and nccl.c (private to src/dist/).
 */
#ifndef QATCONV_SRC_DIST_COMM_IMPL_H
#define QATCONV_SRC_DIST_COMM_IMPL_H

#include <stdbool.h>

struct qc_comm {
    int rank, size, local_rank;
    bool mpi;     /* MPI is in use (launched by mpirun, built with MPI) */
    bool own_mpi; /* qc_comm_new called MPI_Init                        */
    void *nccl;   /* the NCCL communicator (nccl.c), created at first use */
};

/* Releases c->nccl (nccl.c; a no-op without NCCL). */
void qc_comm_nccl_free(struct qc_comm *c);

#endif
