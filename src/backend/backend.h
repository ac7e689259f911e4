/*
 * backend.h - compute backends (CPU always; CUDA when built with it).
 *
 * A backend is a const vtable plus private state.  The CPU backend is the
 * reference: host memory, OpenBLAS sgemm, op kernels from each op
 * definition's .cpu slot.  kernel() returns NULL for an op the backend cannot
 * run; the plan checks every node once and reports all of them together
 * (no silent fallback to another backend).
 *
 * sgemm is row-major by contract:  C = alpha * op(A) * op(B) + beta * C,
 * op(A) m x k, op(B) k x n, C m x n, leading dimensions in elements.
 */
#ifndef QATCONV_SRC_BACKEND_BACKEND_H
#define QATCONV_SRC_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../ops/op.h"
#include "../qc.h"

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

struct qc_backend;

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
};

struct qc_backend {
    const struct qc_backend_ops *ops;
    void                        *priv;
    int                          threads;   /* CPU threads (BLAS + element-wise) */
    int                          device;    /* CUDA ordinal                      */
};

/* spec: "cpu", "cuda" or "cuda:N".  threads <= 0: the number of online CPUs.
 * Free with qc_backend_free. */
enum qc_status qc_backend_new(const char *spec, int threads, struct qc_backend **out);
void qc_backend_free(struct qc_backend *be);

static inline enum qc_status qc_backend_sgemm(struct qc_backend *be,
                                              const struct qc_gemm_args *g)
{
    return be->ops->sgemm(be, g);
}

/* Convenience: row-major C = alpha*op(A)*op(B) + beta*C with dense leading
 * dimensions. */
enum qc_status qc_sgemm(struct qc_backend *be, bool trans_a, bool trans_b, int64_t m,
                        int64_t n, int64_t k, float alpha, const float *a, const float *b,
                        float beta, float *c);

#endif
