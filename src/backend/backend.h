/*
 * backend.h - compute backends (CPU always; CUDA when built with it).
 *
 * A backend is opaque here: callers use the functions below (its vtable and
 * state are in backend_impl.h, private to src/backend/).  The CPU backend is
 * the reference: host memory, OpenBLAS sgemm, op kernels from each op
 * definition's .cpu slot.  qc_backend_kernel returns NULL for an op the
 * backend cannot run; the plan checks every node once and reports all of
 * them together (no silent fallback to another backend).  The training
 * arithmetic outside the op kernels (quantizers, optimizer, loss) runs as
 * kernels by id (qc_backend_run, train_kernels.h).
 *
 * sgemm is row-major by contract:  C = alpha * op(A) * op(B) + beta * C,
 * op(A) m x k, op(B) k x n, C m x n, leading dimensions in elements.
 */
#ifndef QATCONV_SRC_BACKEND_BACKEND_H
#define QATCONV_SRC_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/op.h"
#include "util/qc.h"
#include "train_kernels.h"

struct qc_gemm_args {
    bool         trans_a, trans_b;
    int64_t      m, n, k;
    float        alpha;
    const float *a;
    int64_t      lda;
    const float *b;
    int64_t      ldb;
    float        beta;
    float       *c;
    int64_t      ldc;
};

struct qc_backend;   /* opaque: backend_impl.h, private to src/backend/ */

/* spec: "cpu", "cuda" or "cuda:N".  threads <= 0: the number of online CPUs.
 * Free with qc_backend_free. */
enum qc_status qc_backend_new(const char *spec, int threads, struct qc_backend **out);
void qc_backend_free(struct qc_backend *be);
/* --tf32: TF32 products on a backend that has them; QC_ERR_INVAL (logged) on
 * one that has not (the CPU). */
enum qc_status qc_backend_allow_tf32(struct qc_backend *be);
/* --max-memory: the most bytes a plan on `be` may take (0: the machine's
 * available memory, the default). */
void qc_backend_set_max_memory(struct qc_backend *be, uint64_t bytes);
/* The budget a plan is checked against before it allocates (plan.c): the
 * --max-memory bytes when set, else the memory the machine has available
 * now (MemAvailable of /proc/meminfo, lowered to what the process's memory
 * cgroup, v1 or v2, has left), read at each call.  *why names the source
 * for messages ("--max-memory", "available memory", "cgroup memory
 * limit").  Returns 0 when nothing is known (no /proc): no check.  On a
 * device backend the plan's host and device bytes together are checked
 * against this one figure; the device's own free memory is not queried. */
uint64_t qc_backend_mem_limit(const struct qc_backend *be, const char **why);
/* "cpu" or "cuda". */
const char *qc_backend_name(const struct qc_backend *be);
/* The CUDA device ordinal (0 for the CPU). */
int qc_backend_device(const struct qc_backend *be);
/* True when qc_backend_alloc returns host memory the CPU may dereference. */
bool qc_backend_host_memory(const struct qc_backend *be);
/* The most bytes qc_backend_alloc has held at once (device backends; 0 on the CPU). */
size_t qc_backend_mem_peak(const struct qc_backend *be);
/* The --max-memory bytes set, 0 when none. */
uint64_t qc_backend_max_memory(const struct qc_backend *be);
/* CPU threads the backend's kernels use (BLAS + element-wise loops). */
int qc_backend_threads(const struct qc_backend *be);

/* Backend memory, zero-filled (QC_ERR_NOMEM / QC_ERR_BACKEND, logged). */
enum qc_status qc_backend_alloc(struct qc_backend *be, size_t nbytes, void **ptr);
/* Frees what qc_backend_alloc returned; NULL is ignored. */
void qc_backend_release(struct qc_backend *be, void *ptr);
/* Host -> backend, backend -> host, zero-fill and wait-for-completion. */
enum qc_status qc_backend_upload(struct qc_backend *be, void *dst, const void *src,
                                 size_t nbytes);
enum qc_status qc_backend_download(struct qc_backend *be, void *dst, const void *src,
                                   size_t nbytes);
enum qc_status qc_backend_zero(struct qc_backend *be, void *dst, size_t nbytes);
enum qc_status qc_backend_sync(struct qc_backend *be);
/* Host-to-backend copy of a training batch that may overlap computation (a
 * plain upload where the backend has no such path): src is copied or staged
 * before the call returns, so the caller may refill it at once; the copy is
 * ordered before any later kernel. */
enum qc_status qc_backend_upload_batch(struct qc_backend *be, void *dst, const void *src,
                                       size_t nbytes);
/* The kernels of op `kind` on this backend, NULL when it cannot run the op. */
const struct qc_kernel *qc_backend_kernel(const struct qc_backend *be, enum qc_op_kind kind);
/* Runs training kernel `id` with args pointing to its argument struct
 * (train_kernels.h: struct qc_tk_<name> for QC_TK_<NAME>); QC_ERR_UNSUPPORTED
 * (logged) when the backend lacks it. */
enum qc_status qc_backend_run(struct qc_backend *be, enum qc_train_kernel id, const void *args);
/* Row-major C = alpha * op(A) * op(B) + beta * C (the contract above). */
enum qc_status qc_backend_sgemm(struct qc_backend *be, const struct qc_gemm_args *g);

/* Convenience: row-major C = alpha*op(A)*op(B) + beta*C with dense leading
 * dimensions. */
enum qc_status qc_sgemm(struct qc_backend *be, bool trans_a, bool trans_b, int64_t m,
                        int64_t n, int64_t k, float alpha, const float *a, const float *b,
                        float beta, float *c);

#endif
