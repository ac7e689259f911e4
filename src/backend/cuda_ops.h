/*
 * cuda_ops.h - what the CUDA backend's files share (defined in cuda.c and
 * cuda_*.c, built only with HAVE_CUDA or in the emulation of tests/cuda_emu):
 * its ops table, the op kernels of each op family, the cuBLAS handle and the
 * device count.  The training kernels (quantizers, optimizers, loss) are
 * reached by id through qc_backend_run (train_kernels.h); all array and
 * scalar pointers are DEVICE pointers (from qc_backend_alloc), and learnable
 * scalars (α, s) and their gradients stay on the device, so a training step
 * needs no device→host copy.  Calls run in order on the default stream and
 * do not synchronise (qc_backend_sync or a download does).  A failing CUDA
 * call logs one line naming it and returns QC_ERR_BACKEND.
 *
 * Parity with the CPU (tests/cuda_parity.c): SAT activation, LSQ and the
 * solvers give bit-identical values and input gradients; SAT weights use the
 * device tanh, which may differ from the host's tanhf in the last bit; the
 * scalar-parameter gradients are sums in a different (fixed, deterministic)
 * order.
 */
#ifndef QATCONV_SRC_BACKEND_CUDA_OPS_H
#define QATCONV_SRC_BACKEND_CUDA_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/qc.h"
#include "backend.h"
#include "backend_impl.h"

/* The CUDA backend's table (qc_backend_new("cuda") uses it; tests construct it
 * with qc_backend_new_ops, also in the CPU emulation of tests/cuda_emu). */
extern const struct qc_backend_ops qc_backend_cuda_ops;

/* The cuBLAS handle of a CUDA backend (a cublasHandle_t), for calls beyond
 * qc_backend_sgemm (strided-batched products).  Every kernel and cuBLAS call
 * of a step runs on the legacy default stream, in issue order. */
void *qc_cuda_blas_handle(struct qc_backend *be);

/* A pinned host buffer of at least `bytes`, owned by the backend (grown on
 * demand, never shrunk: after the first step no allocation): the few values
 * an op reads back between its launches (synchronized BatchNorm's
 * per-channel totals, summed over the ranks on the host).  NULL after one
 * logged line on failure. */
void *qc_cuda_host_scratch(struct qc_backend *be, size_t bytes);

/* The number of CUDA devices, without logging: 0 when the driver or runtime finds none or
 * fails (tests use it to skip). */
int qc_cuda_device_count(void);

/* cuBLAS math mode of `be`: TF32 tensor cores when allow (--tf32), full float32 otherwise
 * (the default set at init). */
enum qc_status qc_cuda_set_tf32(struct qc_backend *be, bool allow);

#endif
