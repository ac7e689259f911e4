/*
 * comm.c - the job's communicator over MPI, or the one-rank stub (comm.h).
 * Collectives on MPI_COMM_WORLD; counts above INT_MAX go in chunks.  An MPI
 * error returns QC_ERR_BACKEND after one message (MPI's default handler,
 * MPI_ERRORS_ARE_FATAL, ends the job before that in practice).
 */
#include <config.h>

#include "comm.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_MPI
#include <mpi.h>
#endif

#include "util/log.h"
#include "comm_impl.h"

/* Started by an MPI launcher: Open MPI's, Hydra's (MPICH) or PMIx's variables. */
static bool launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

/* Ranks other than 0 print nothing (comm.h): stdout to /dev/null, stderr
 * to an unlinked temporary file, the launcher's stderr kept in c->err_fd for
 * the one line of a rank that fails alone (qc_comm_abort). */
static void quiet(struct qc_comm *c)
{
    fflush(stderr);
    c->err_log = tmpfile();
    c->err_fd = c->err_log ? dup(STDERR_FILENO) : -1;
    if (c->err_fd < 0 || dup2(fileno(c->err_log), STDERR_FILENO) < 0) {
        if (c->err_fd >= 0)
            close(c->err_fd);
        c->err_fd = -1;
        if (!freopen("/dev/null", "w", stderr))
            return; /* then it prints: harmless */
    }
    if (!freopen("/dev/null", "w", stdout))
        return;
}

enum qc_status qc_comm_new(struct qc_comm **out)
{
    struct qc_comm *c = qc_calloc(1, sizeof(*c));
    *out = NULL;
    if (!c)
        return QC_ERR_NOMEM;
    c->size = 1;
    c->err_fd = -1;
#ifdef HAVE_MPI
    if (launched_by_mpi()) {
        int inited = 0;
        /* Open MPI: a rank waiting in a collective yields its core instead of
         * spinning on it (the ranks share cores with their OpenMP threads and
         * often with each other; 2x faster on a loaded 2-core machine); an
         * explicit setting wins */
        if (setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0) != 0)
            qc_log_warn("cannot set OMPI_MCA_mpi_yield_when_idle");
        if (MPI_Initialized(&inited) != MPI_SUCCESS ||
            (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS)) {
            qc_log_error("MPI_Init failed");
            qc_free(c);
            return QC_ERR_BACKEND;
        }
        c->own_mpi = !inited;
        c->mpi = true;
        MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &c->size);
        {
            const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
            if (!lr)
                lr = getenv("MPI_LOCALRANKID");
            c->local_rank = lr ? atoi(lr) : c->rank;
        }
        if (c->rank != 0)
            quiet(c);
    }
#else
    (void)quiet;
    if (launched_by_mpi())
        qc_log_warn("started by an MPI launcher, but this qatconv was built without MPI "
                    "(configure --with-mpi): every process trains alone");
#endif
    *out = c;
    return QC_OK;
}

void qc_comm_free(struct qc_comm *c)
{
    if (!c)
        return;
    qc_comm_nccl_free(c);
#ifdef HAVE_MPI
    if (c->own_mpi)
        MPI_Finalize();
#endif
    if (c->err_fd >= 0)
        close(c->err_fd);
    if (c->err_log)
        fclose(c->err_log);
    qc_free(c);
}

int qc_comm_rank(const struct qc_comm *c)
{
    return c ? c->rank : 0;
}

int qc_comm_size(const struct qc_comm *c)
{
    return c ? c->size : 1;
}

int qc_comm_local_rank(const struct qc_comm *c)
{
    return c ? c->local_rank : 0;
}

#ifdef HAVE_MPI
static enum qc_status mpi_check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return QC_OK;
    qc_log_error("MPI: %s failed (error %d)", what, rc);
    return QC_ERR_BACKEND;
}

/* In-place MPI_SUM of n elements of `type` (elem bytes each), in chunks of INT_MAX. */
static enum qc_status sum_chunks(void *buf, int64_t n, MPI_Datatype type, size_t elem)
{
    for (int64_t off = 0; off < n; off += INT_MAX) {
        int cnt = (int)QC_MIN(n - off, (int64_t)INT_MAX);
        enum qc_status st = mpi_check(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)off * elem,
                                                    cnt, type, MPI_SUM, MPI_COMM_WORLD),
                                      "MPI_Allreduce");
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}
#endif

enum qc_status qc_comm_sum_f32(struct qc_comm *c, float *buf, int64_t n)
{
#ifdef HAVE_MPI
    if (c && c->size > 1)
        return sum_chunks(buf, n, MPI_FLOAT, sizeof(float));
#endif
    (void)c;
    (void)buf;
    (void)n;
    return QC_OK;
}

enum qc_status qc_comm_mean_f32(struct qc_comm *c, float *buf, int64_t n)
{
    float inv = 1.0f / (float)qc_comm_size(c);
    enum qc_status st = qc_comm_sum_f32(c, buf, n);
    for (int64_t i = 0; st == QC_OK && qc_comm_size(c) > 1 && i < n; i++)
        buf[i] *= inv;
    return st;
}

enum qc_status qc_comm_sum_f64(struct qc_comm *c, double *buf, int64_t n)
{
#ifdef HAVE_MPI
    if (c && c->size > 1)
        return sum_chunks(buf, n, MPI_DOUBLE, sizeof(double));
#endif
    (void)c;
    (void)buf;
    (void)n;
    return QC_OK;
}

enum qc_status qc_comm_max_int(struct qc_comm *c, int *v)
{
#ifdef HAVE_MPI
    if (c && c->size > 1)
        return mpi_check(MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD),
                         "MPI_Allreduce");
#endif
    (void)c;
    (void)v;
    return QC_OK;
}

enum qc_status qc_comm_bcast(struct qc_comm *c, void *buf, size_t bytes, int root)
{
#ifdef HAVE_MPI
    if (c && c->size > 1) {
        for (size_t off = 0; off < bytes; off += INT_MAX) {
            int cnt = (int)QC_MIN(bytes - off, (size_t)INT_MAX);
            enum qc_status st = mpi_check(
                MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
            if (st != QC_OK)
                return st;
        }
    }
#endif
    (void)c;
    (void)buf;
    (void)bytes;
    (void)root;
    return QC_OK;
}

enum qc_status qc_comm_barrier(struct qc_comm *c)
{
#ifdef HAVE_MPI
    if (c && c->size > 1)
        return mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
    (void)c;
    return QC_OK;
}

void qc_comm_failed_everywhere(struct qc_comm *c)
{
    if (c)
        c->agreed = true;
}

#ifdef HAVE_MPI
/* How long a failing rank other than 0 waits before its line and the abort
 * (comm.h): rank 0, failing the same way at about the same time, ends the
 * job (and this rank) first. */
#define QC_COMM_FAIL_GRACE_MS 3000

/* Copies the first "qatconv: error: " line of this rank's stderr file to the
 * launcher's stderr, as "qatconv: error: rank R: ...". */
static void forward_error_line(struct qc_comm *c)
{
    static const char tag[] = "qatconv: error: ";
    char line[1024], out[1100];
    if (!c->err_log || c->err_fd < 0)
        return;
    fflush(stderr);
    rewind(c->err_log);
    while (fgets(line, sizeof(line), c->err_log)) {
        int n;
        if (strncmp(line, tag, sizeof(tag) - 1) != 0)
            continue;
        if (!strchr(line, '\n'))
            strcpy(line + sizeof(line) - 2, "\n");
        n = snprintf(out, sizeof(out), "%srank %d: %s", tag, c->rank, line + sizeof(tag) - 1);
        if (n > 0 && write(c->err_fd, out, strlen(out)) < 0)
            return; /* nowhere left to say it */
        return;
    }
}
#endif

void qc_comm_abort(struct qc_comm *c, int code)
{
#ifdef HAVE_MPI
    if (c && c->size > 1) {
        fflush(stdout);
        fflush(stderr);
        if (c->rank != 0 && !c->agreed) {
            /* the job's abort (rank 0's) ends this rank during the wait */
            struct timespec ts = { QC_COMM_FAIL_GRACE_MS / 1000,
                                   (QC_COMM_FAIL_GRACE_MS % 1000) * 1000000L };
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            while (nanosleep(&ts, &ts) != 0)
                ;
            forward_error_line(c);
        }
        MPI_Abort(MPI_COMM_WORLD, code);
    }
#endif
    (void)c;
    (void)code;
}

/* ---- non-blocking averages (comm.h) ------------------------------------------------------- */

enum qc_status qc_comm_pending_new(struct qc_comm *c, int max_ops, struct qc_comm_pending **out)
{
    struct qc_comm_pending *pd = qc_calloc(1, sizeof(*pd));
    size_t cap = (size_t)(max_ops > 0 ? max_ops : 1);
    *out = NULL;
    if (!pd)
        return QC_ERR_NOMEM;
    pd->c = c;
    pd->max = (int)cap;
#ifdef HAVE_MPI
    pd->reqs = qc_calloc(cap, sizeof(MPI_Request));
#else
    pd->reqs = qc_calloc(cap, 1);
#endif
    pd->bufs = qc_calloc(cap, sizeof(*pd->bufs));
    pd->counts = qc_calloc(cap, sizeof(*pd->counts));
    if (!pd->reqs || !pd->bufs || !pd->counts) {
        qc_comm_pending_free(pd);
        return QC_ERR_NOMEM;
    }
    *out = pd;
    return QC_OK;
}

void qc_comm_pending_free(struct qc_comm_pending *pd)
{
    if (!pd)
        return;
    qc_free(pd->reqs);
    qc_free(pd->bufs);
    qc_free(pd->counts);
    qc_free(pd);
}

enum qc_status qc_comm_pending_mean_f32(struct qc_comm_pending *pd, float *buf, int64_t n)
{
    if (qc_comm_size(pd->c) <= 1)
        return QC_OK;
#ifdef HAVE_MPI
    for (int64_t off = 0; off < n; off += INT_MAX) {
        int cnt = (int)QC_MIN(n - off, (int64_t)INT_MAX);
        enum qc_status st;
        if (pd->n >= pd->max) {
            qc_log_error("internal: more than %d averages started before a wait", pd->max);
            return QC_ERR_INTERNAL;
        }
        st = mpi_check(MPI_Iallreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM,
                                      MPI_COMM_WORLD, (MPI_Request *)pd->reqs + pd->n),
                       "MPI_Iallreduce");
        if (st != QC_OK)
            return st;
        pd->bufs[pd->n] = buf + off;
        pd->counts[pd->n++] = cnt;
    }
    return QC_OK;
#else
    (void)buf;
    (void)n;
    return QC_ERR_UNSUPPORTED; /* unreachable: one rank without MPI */
#endif
}

enum qc_status qc_comm_pending_poll(struct qc_comm_pending *pd)
{
#ifdef HAVE_MPI
    int done = 0;
    if (pd->n > 0)
        return mpi_check(MPI_Testall(pd->n, pd->reqs, &done, MPI_STATUSES_IGNORE), "MPI_Testall");
#endif
    (void)pd;
    return QC_OK;
}

enum qc_status qc_comm_pending_wait(struct qc_comm_pending *pd)
{
    enum qc_status st = QC_OK;
#ifdef HAVE_MPI
    if (pd->n > 0)
        st = mpi_check(MPI_Waitall(pd->n, pd->reqs, MPI_STATUSES_IGNORE), "MPI_Waitall");
    for (int i = 0; st == QC_OK && i < pd->n; i++) {
        float inv = 1.0f / (float)qc_comm_size(pd->c);
        for (int64_t j = 0; j < pd->counts[i]; j++)
            pd->bufs[i][j] *= inv;
    }
#endif
    pd->n = 0;
    if (st == QC_OK && pd->n_device > 0)
        st = qc_comm_nccl_wait(pd);
    pd->n_device = 0;
    return st;
}
