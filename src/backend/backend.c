/*
 * backend.c - backend selection from a "cpu" / "cuda[:N]" spec.  The only
 * place (with cuda.c and kernels/) that knows whether CUDA was built.
 */
#include <config.h>

#include "backend.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../log.h"

extern const struct qc_backend_ops qc_backend_cpu_ops;
#ifdef HAVE_CUDA
extern const struct qc_backend_ops qc_backend_cuda_ops;
#endif

enum qc_status qc_backend_new(const char *spec, int threads, struct qc_backend **out)
{
    const struct qc_backend_ops *ops = NULL;
    int device = 0;

    *out = NULL;
    if (strcmp(spec, "cpu") == 0) {
        ops = &qc_backend_cpu_ops;
    } else if (strncmp(spec, "cuda", 4) == 0 && (spec[4] == '\0' || spec[4] == ':')) {
        if (spec[4] == ':') {
            char *end;
            long d = strtol(spec + 5, &end, 10);
            if (end == spec + 5 || *end || d < 0 || d > 1024) {
                qc_log_error("--device %s: expected cuda:N with N a device number", spec);
                return QC_ERR_INVAL;
            }
            device = (int)d;
        }
#ifdef HAVE_CUDA
        ops = &qc_backend_cuda_ops;
#else
        qc_log_error("--device %s: this qatconv was built without CUDA "
                     "(reconfigure with --with-cuda)", spec);
        return QC_ERR_INVAL;
#endif
    } else {
        qc_log_error("--device %s: expected cpu, cuda or cuda:N", spec);
        return QC_ERR_INVAL;
    }

    return qc_backend_new_ops(ops, device, threads, out);
}

enum qc_status qc_backend_new_ops(const struct qc_backend_ops *ops, int device, int threads,
                                  struct qc_backend **out)
{
    struct qc_backend *be;
    enum qc_status st;

    *out = NULL;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    be = qc_calloc(1, sizeof(*be));
    if (!be)
        return QC_ERR_NOMEM;
    be->ops = ops;
    be->threads = threads;
    be->device = device;
    st = ops->init(be, device);
    if (st != QC_OK) {
        qc_free(be);
        return st;
    }
    *out = be;
    return QC_OK;
}

enum qc_status qc_backend_allow_tf32(struct qc_backend *be)
{
    if (!be->ops->set_tf32) {
        qc_log_error("--tf32: the %s backend has no TF32 mode (it applies to --device cuda)",
                     be->ops->name);
        return QC_ERR_INVAL;
    }
    return be->ops->set_tf32(be, true);
}

void qc_backend_free(struct qc_backend *be)
{
    if (!be)
        return;
    if (be->ops->fini)
        be->ops->fini(be);
    qc_free(be);
}

enum qc_status qc_sgemm(struct qc_backend *be, bool trans_a, bool trans_b, int64_t m,
                        int64_t n, int64_t k, float alpha, const float *a, const float *b,
                        float beta, float *c)
{
    struct qc_gemm_args g = {
        .trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k, .alpha = alpha,
        .a = a, .lda = trans_a ? m : k, .b = b, .ldb = trans_b ? k : n, .beta = beta,
        .c = c, .ldc = n,
    };
    return be->ops->sgemm(be, &g);
}
