/*
 * backend_impl.h - what a backend is made of: its const vtable (struct
 * qc_backend_ops) and the state every backend shares (struct qc_backend).
 * PRIVATE to src/backend/ (and to tests that build a backend from an ops
 * table, e.g. the emulated CUDA backend): everything else holds an opaque
 * struct qc_backend and calls the functions of backend.h.
 */
#ifndef QATCONV_SRC_BACKEND_BACKEND_IMPL_H
#define QATCONV_SRC_BACKEND_BACKEND_IMPL_H

#include "backend.h"

/* One training kernel: args points to the argument struct of its id (train_kernels.h). */
typedef enum qc_status (*qc_train_kernel_fn)(struct qc_backend *be, const void *args);

struct qc_backend_ops {
    const char *name;                                   /* "cpu", "cuda"            */
    enum qc_status (*init)(struct qc_backend *be, int device);
    void (*fini)(struct qc_backend *be);
    enum qc_status (*alloc)(struct qc_backend *be, size_t nbytes, void **ptr);
    void (*release)(struct qc_backend *be, void *ptr);
    enum qc_status (*upload)(struct qc_backend *be, void *dst, const void *src, size_t nbytes);
    enum qc_status (*download)(struct qc_backend *be, void *dst, const void *src,
                               size_t nbytes);
    enum qc_status (*zero)(struct qc_backend *be, void *dst, size_t nbytes);
    enum qc_status (*sync)(struct qc_backend *be);
    enum qc_status (*sgemm)(struct qc_backend *be, const struct qc_gemm_args *g);
    const struct qc_kernel *(*kernel)(enum qc_op_kind kind);  /* NULL = unsupported */
    /* The training kernels, indexed by enum qc_train_kernel (QC_TK_COUNT entries; a NULL
     * entry: the backend lacks that kernel, qc_backend_run reports it). */
    const qc_train_kernel_fn *train;
    /* Host-to-backend copy of a training batch that may overlap computation:
     * src is copied (or staged) before the call returns, so the caller may
     * refill it at once; the copy is ordered before any later kernel.  NULL:
     * use upload. */
    enum qc_status (*upload_batch)(struct qc_backend *be, void *dst, const void *src,
                                   size_t nbytes);
    /* Allow TF32 tensor-core products (--tf32); NULL: the backend has none. */
    enum qc_status (*set_tf32)(struct qc_backend *be, bool allow);
    bool host_memory;   /* alloc returns host memory the CPU may dereference */
};

struct qc_backend {
    const struct qc_backend_ops *ops;
    void                        *priv;
    int                          threads;   /* CPU threads (BLAS + element-wise) */
    int                          device;    /* CUDA ordinal                      */
    size_t                       mem_now;   /* bytes allocated by alloc (device backends) */
    size_t                       mem_peak;  /* the most mem_now has been                 */
    uint64_t                     max_memory; /* --max-memory bytes; 0: what the machine
                                                has available (qc_backend_mem_limit)     */
};

/* A backend from its ops table (tests construct one the spec parser does not
 * know, e.g. the emulated CUDA backend). */
enum qc_status qc_backend_new_ops(const struct qc_backend_ops *ops, int device, int threads,
                                  struct qc_backend **out);

#endif
