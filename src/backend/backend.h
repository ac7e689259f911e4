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

#include "ops/op.h"
#include "util/qc.h"

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

#define QC_LOSS_NSTATS 3

struct qc_backend;
struct qc_sat_wcfg;
struct qc_sat_wstate;
struct qc_solver_update;

/* The training arithmetic outside the op kernels, on the backend's memory:
 * every array and every learnable scalar (α, s) and its gradient is a
 * pointer into backend memory, so a CUDA training step never copies them to
 * the host.  Semantics are those of the CPU functions named (src/quant/quant.h,
 * src/train/solver.h, src/train/loss.h); the CPU backend calls them. */
struct qc_backend_train {
    /* qc_sat_weight_forward; *st (backend memory) receives m, S, scale */
    enum qc_status (*sat_weight_forward)(struct qc_backend *be, const struct qc_sat_wcfg *cfg,
                                         const float *w, float *q, int64_t n,
                                         struct qc_sat_wstate *st);
    enum qc_status (*sat_weight_backward)(struct qc_backend *be, const struct qc_sat_wcfg *cfg,
                                          const struct qc_sat_wstate *st, const float *w,
                                          const float *dq, float *dw, int64_t n);
    enum qc_status (*sat_act_forward)(struct qc_backend *be, const float *alpha, int range,
                                      const float *x, float *y, int64_t n);
    enum qc_status (*sat_act_backward)(struct qc_backend *be, const float *alpha, int range,
                                       const float *x, const float *dy, float *dx, int64_t n,
                                       float *dalpha);
    enum qc_status (*lsq_forward)(struct qc_backend *be, const float *step, int qn, int qp,
                                  const float *x, float *y, int64_t n);
    enum qc_status (*lsq_backward)(struct qc_backend *be, const float *step, int qn, int qp,
                                   double g, const float *x, const float *dy, float *dx,
                                   int64_t n, float *dstep);
    /* *step = qc_lsq_init_step(x, n, qp) */
    enum qc_status (*lsq_init_step)(struct qc_backend *be, const float *x, int64_t n, int qp,
                                    float *step);
    /* p[i] = max(p[i], lo) */
    enum qc_status (*clamp_min)(struct qc_backend *be, float *p, float lo, int64_t n);
    enum qc_status (*solver_apply)(struct qc_backend *be, const struct qc_solver_update *u,
                                   float *theta, const float *grad, float *state, int64_t n,
                                   bool decays);
    /* qc_loss_softmax_xent on b×classes logits z with labels[b] (both backend
     * memory): dz = scale·(softmax(z) − onehot) (written); stats (backend
     * memory, QC_LOSS_NSTATS doubles, written, not accumulated): [0] Σ loss,
     * [1] rows whose first maximum is the label, [2] labels outside
     * [0, classes) (their rows get dz = 0 and no loss; the caller reports
     * them as bad data). */
    enum qc_status (*loss_softmax_xent)(struct qc_backend *be, const float *z,
                                        const int32_t *labels, int64_t b, int64_t classes,
                                        float scale, float *dz, double *stats);
};

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
    const struct qc_backend_train *train;
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
/* A backend from its ops table (tests construct one the spec parser does not
 * know, e.g. the emulated CUDA backend). */
enum qc_status qc_backend_new_ops(const struct qc_backend_ops *ops, int device, int threads,
                                  struct qc_backend **out);

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
