/*
 * emu_nccl.c - the five NCCL calls of src/dist/nccl.c, emulated over MPI for
 * tests/qatconv_emu (a build with MPI and NCCL): with it,
 * a data-parallel job of emulated ranks
 * (tests/test_mpi.sh) runs nccl.c's device path - the unique id broadcast,
 * ncclCommInitRank, one ncclAllReduce per gradient bucket - with the sums
 * done by MPI_Allreduce on MPI_COMM_WORLD (the communicator nccl.c's ranks
 * come from) on a host copy of the buffer (cudaMemcpy: the emulator's device
 * memory is closed to host code).  Linked before libqatconv.a and the NCCL library, these
 * definitions take the place of the real ones in that program only.
 *
 * nccl.h includes the CUDA toolkit's fp16/bf16/fp8 headers, which the
 * emulator does not provide: the few types are restated here with the
 * values and layouts of nccl.h (2.x), which is the ABI nccl.c was compiled
 * against.  Only what nccl.c uses is supported: float sums and averages
 * (ncclAvg: the sum divided by the number of ranks), on the legacy default
 * stream, complete on return (the emulator's streams are synchronous).
 */
#include <config.h>

#if defined(HAVE_NCCL) && defined(HAVE_MPI)

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "cuda_runtime.h"

/* nccl.h's types and values (ncclResult_t, ncclDataType_t, ncclRedOp_t, ncclUniqueId) */
typedef enum { ncclSuccess = 0, ncclSystemError = 2, ncclInvalidArgument = 4 } ncclResult_t;
typedef enum { ncclFloat = 7 } ncclDataType_t;
typedef enum { ncclSum = 0, ncclAvg = 4 } ncclRedOp_t;
typedef struct {
    char internal[128];
} ncclUniqueId;

struct ncclComm {
    int nranks, rank;
};
typedef struct ncclComm *ncclComm_t;

ncclResult_t ncclGetUniqueId(ncclUniqueId *id);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream);
const char *ncclGetErrorString(ncclResult_t result);

static const char emu_id[] = "qatconv cuda_emu NCCL over MPI";

static ncclResult_t emu_fail(ncclResult_t r, const char *what)
{
    fprintf(stderr, "cuda_emu: NCCL: %s\n", what);
    return r;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    if (!id)
        return emu_fail(ncclInvalidArgument, "ncclGetUniqueId: NULL id");
    memset(id, 0, sizeof(*id));
    memcpy(id->internal, emu_id, sizeof(emu_id));
    return ncclSuccess;
}

/* The id must be rank 0's (broadcast by the caller) and the ranks those of
 * MPI_COMM_WORLD. */
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    int size = 0, me = -1;
    if (!comm || memcmp(id.internal, emu_id, sizeof(emu_id)) != 0)
        return emu_fail(ncclInvalidArgument, "ncclCommInitRank: not an id of ncclGetUniqueId");
    if (MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS ||
        MPI_Comm_rank(MPI_COMM_WORLD, &me) != MPI_SUCCESS || size != nranks || me != rank)
        return emu_fail(ncclInvalidArgument, "ncclCommInitRank: ranks other than MPI_COMM_WORLD's");
    *comm = calloc(1, sizeof(**comm));
    if (!*comm)
        return emu_fail(ncclSystemError, "ncclCommInitRank: out of memory");
    (*comm)->nranks = nranks;
    (*comm)->rank = rank;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    free(comm);
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream)
{
    ncclResult_t r = ncclSuccess;
    float *host;
    if (!comm || datatype != ncclFloat || (op != ncclSum && op != ncclAvg) || stream != 0)
        return emu_fail(ncclInvalidArgument,
                        "ncclAllReduce: only float sums and averages on the default stream");
    if (count == 0)
        return ncclSuccess;
    /* the emulated device memory is closed to host code: through a host copy,
     * which also checks that both buffers are live device allocations */
    host = malloc(count * sizeof(float));
    if (!host)
        return emu_fail(ncclSystemError, "ncclAllReduce: out of memory");
    if (cudaMemcpy(host, sendbuff, count * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess)
        r = emu_fail(ncclInvalidArgument, "ncclAllReduce: the send buffer is not device memory");
    for (size_t done = 0; r == ncclSuccess && done < count;) {
        int n = count - done > (size_t)INT_MAX ? INT_MAX : (int)(count - done);
        if (MPI_Allreduce(MPI_IN_PLACE, host + done, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            r = emu_fail(ncclSystemError, "ncclAllReduce: MPI_Allreduce failed");
        done += (size_t)n;
    }
    if (r == ncclSuccess && op == ncclAvg)
        for (size_t i = 0; i < count; i++)
            host[i] /= (float)comm->nranks;
    if (r == ncclSuccess &&
        cudaMemcpy(recvbuff, host, count * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess)
        r = emu_fail(ncclInvalidArgument, "ncclAllReduce: the receive buffer is not device memory");
    free(host);
    return r;
}

const char *ncclGetErrorString(ncclResult_t result)
{
    return result == ncclSuccess ? "no error" : "emulated NCCL error (see the line above)";
}

#else

/* an empty translation unit is not ISO C */
typedef int qc_emu_nccl_unused;

#endif
