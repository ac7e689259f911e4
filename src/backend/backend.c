/*
 * backend.c - backend selection from a "cpu" / "cuda[:N]" spec.  The only
 * place (with cuda.c and kernels/) that knows whether CUDA was built.  Also
 * the functions of backend.h that dispatch through the vtable of
 * backend_impl.h (memory, transfers, op kernels, training kernels by id),
 * and the memory budget plans are checked against (--max-memory, else what
 * the machine and the process's memory cgroup have available).
 */
#include <config.h>

#include "backend.h"
#include "backend_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

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

void qc_backend_set_max_memory(struct qc_backend *be, uint64_t bytes)
{
    be->max_memory = bytes;
}

/* The number after `key` on a "key value" line of a text file (/proc/meminfo,
 * memory.stat), times unit; false when absent. */
static bool read_keyed(const char *path, const char *key, uint64_t unit, uint64_t *out)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t klen = strlen(key);
    bool found = false;
    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f)) {
        char *end;
        unsigned long long v;
        if (strncmp(line, key, klen) != 0 || (line[klen] != ' ' && line[klen] != '\t'))
            continue;
        errno = 0;
        v = strtoull(line + klen, &end, 10);
        if (end != line + klen && errno == 0 && v <= UINT64_MAX / unit) {
            *out = (uint64_t)v * unit;
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* A file holding one number; false for "max" (cgroup v2: no limit). */
static bool read_number(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "r");
    char buf[64];
    bool ok = false;
    if (!f)
        return false;
    if (fgets(buf, sizeof(buf), f)) {
        char *end;
        unsigned long long v;
        errno = 0;
        v = strtoull(buf, &end, 10);
        ok = end != buf && errno == 0 && (*end == '\n' || *end == '\0');
        if (ok)
            *out = (uint64_t)v;
    }
    fclose(f);
    return ok;
}

/* What the memory cgroup in dir has left: its limit less its usage, the
 * inactive file pages (reclaimable cache) not counted as used; false when
 * it has no limit (v1 writes about 2^63) or cannot be read. */
static bool cgroup_left(const char *dir, bool v2, uint64_t *left)
{
    char path[4200];
    uint64_t limit, usage, inactive = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    if (!read_number(path, &limit) || limit >= ((uint64_t)1 << 60))
        return false;
    snprintf(path, sizeof(path), "%s/%s", dir, v2 ? "memory.current" : "memory.usage_in_bytes");
    if (!read_number(path, &usage))
        return false;
    snprintf(path, sizeof(path), "%s/memory.stat", dir);
    (void)read_keyed(path, v2 ? "inactive_file" : "total_inactive_file", 1, &inactive);
    usage = usage > inactive ? usage - inactive : 0;
    *left = limit > usage ? limit - usage : 0;
    return true;
}

/* The least any memory cgroup of this process has left: its v2 entry
 * ("0::/path") and its v1 memory entry ("N:...memory...:/path") of
 * /proc/self/cgroup, each also at the mount's root (a container's namespace
 * shows its own cgroup there).  False when none has a limit. */
static bool cgroup_limit(uint64_t *left)
{
    static const char *const v2_bases[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[1024];
    bool any = false;
    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        const char *ctrl, *cg;
        bool v2;
        if (!c2)
            continue;
        line[strcspn(line, "\n")] = '\0';
        *c2 = '\0';
        ctrl = c1 + 1;
        cg = c2 + 1;
        v2 = ctrl[0] == '\0';
        if (!v2 && !strstr(ctrl, "memory"))
            continue;
        for (size_t b = 0; b < (v2 ? QC_ARRAY_SIZE(v2_bases) : 1); b++) {
            const char *base = v2 ? v2_bases[b] : "/sys/fs/cgroup/memory";
            char dir[2200];
            uint64_t l;
            snprintf(dir, sizeof(dir), "%s%s", base, strcmp(cg, "/") == 0 ? "" : cg);
            if (cgroup_left(dir, v2, &l) && (!any || l < *left)) {
                *left = l;
                any = true;
            }
            if (strcmp(cg, "/") != 0 && cgroup_left(base, v2, &l) && (!any || l < *left)) {
                *left = l;
                any = true;
            }
        }
    }
    fclose(f);
    return any;
}

uint64_t qc_backend_mem_limit(const struct qc_backend *be, const char **why)
{
    uint64_t avail = 0, cg;
    bool have;
    if (be->max_memory) {
        *why = "--max-memory";
        return be->max_memory;
    }
    have = read_keyed("/proc/meminfo", "MemAvailable:", 1024, &avail);
    *why = "available memory";
    if (cgroup_limit(&cg) && (!have || cg < avail)) {
        avail = cg;
        have = true;
        *why = "cgroup memory limit";
    }
    return have ? avail : 0;
}

void qc_backend_free(struct qc_backend *be)
{
    if (!be)
        return;
    if (be->ops->fini)
        be->ops->fini(be);
    qc_free(be);
}

/* ---- the opaque backend's accessors and vtable dispatch ---------------------------------- */

const char *qc_backend_name(const struct qc_backend *be)
{
    return be->ops->name;
}

int qc_backend_device(const struct qc_backend *be)
{
    return be->device;
}

bool qc_backend_host_memory(const struct qc_backend *be)
{
    return be->ops->host_memory;
}

size_t qc_backend_mem_peak(const struct qc_backend *be)
{
    return be->mem_peak;
}

uint64_t qc_backend_max_memory(const struct qc_backend *be)
{
    return be->max_memory;
}

int qc_backend_threads(const struct qc_backend *be)
{
    return be->threads;
}

enum qc_status qc_backend_alloc(struct qc_backend *be, size_t nbytes, void **ptr)
{
    return be->ops->alloc(be, nbytes, ptr);
}

void qc_backend_release(struct qc_backend *be, void *ptr)
{
    be->ops->release(be, ptr);
}

enum qc_status qc_backend_upload(struct qc_backend *be, void *dst, const void *src,
                                 size_t nbytes)
{
    return be->ops->upload(be, dst, src, nbytes);
}

enum qc_status qc_backend_download(struct qc_backend *be, void *dst, const void *src,
                                   size_t nbytes)
{
    return be->ops->download(be, dst, src, nbytes);
}

enum qc_status qc_backend_zero(struct qc_backend *be, void *dst, size_t nbytes)
{
    return be->ops->zero(be, dst, nbytes);
}

enum qc_status qc_backend_sync(struct qc_backend *be)
{
    return be->ops->sync(be);
}

enum qc_status qc_backend_upload_batch(struct qc_backend *be, void *dst, const void *src,
                                       size_t nbytes)
{
    if (be->ops->upload_batch)
        return be->ops->upload_batch(be, dst, src, nbytes);
    return be->ops->upload(be, dst, src, nbytes);
}

const struct qc_kernel *qc_backend_kernel(const struct qc_backend *be, enum qc_op_kind kind)
{
    return be->ops->kernel(kind);
}

enum qc_status qc_backend_run(struct qc_backend *be, enum qc_train_kernel id, const void *args)
{
    if ((unsigned)id >= QC_TK_COUNT || !be->ops->train || !be->ops->train[id]) {
        qc_log_error("the %s backend has no training kernel %d", be->ops->name, (int)id);
        return QC_ERR_UNSUPPORTED;
    }
    return be->ops->train[id](be, args);
}

enum qc_status qc_backend_sgemm(struct qc_backend *be, const struct qc_gemm_args *g)
{
    return be->ops->sgemm(be, g);
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
