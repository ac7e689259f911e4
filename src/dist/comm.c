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
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

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

#ifdef HAVE_MPI
/* ---- a rank that ends abnormally ------------------------------------------------------------
 *
 * A rank killed (SIGKILL, the OOM killer) or crashed leaves the others
 * blocked in their next collective; Open MPI's launcher then sends them
 * SIGCONT, SIGTERM 1 s later and SIGKILL 1 s after that, and prints its own
 * multi-line banner (nothing under mpirun -q).  So every rank watches the
 * other ranks of its node: a thread checks their pids (kill(pid, 0)) every
 * QC_COMM_WATCH_MS; when one has vanished, and after QC_COMM_WATCH_GRACE_MS
 * nothing says the job is ending on purpose, the lowest surviving rank of
 * the node writes one line to the launcher's stderr and every survivor of
 * the node leaves with _exit(3), before the launcher's SIGTERM: nothing
 * more is written (rank 0 writes the output only after the last step).
 *
 * A job ending on purpose must not look like that: qc_comm_abort sends
 * QC_COMM_STOP_SIGNAL to the node's other ranks before MPI_Abort (their
 * handler sets peer_aborting, and their watch stops), qc_comm_free stops the
 * watch and waits in a barrier before MPI_Finalize (no rank exits while
 * another still watches), and the grace covers the launcher killing every
 * rank at about the same time.  A rank on another node is not watched: a
 * node that loses its only rank is reported by the launcher alone. */
#define QC_COMM_WATCH_MS 100
#define QC_COMM_WATCH_GRACE_MS 200
#define QC_COMM_STOP_SIGNAL SIGUSR2

/* Written only by the handler of QC_COMM_STOP_SIGNAL (sig_atomic_t as C
 * requires of a handler's state): another rank of this node is ending the
 * job on purpose. */
static volatile sig_atomic_t peer_aborting;

static void on_peer_abort(int sig)
{
    (void)sig;
    peer_aborting = 1;
}

struct qc_comm_watch {
    pthread_t thread;
    atomic_bool stop;
    int rank;   /* this rank                                          */
    int n;      /* ranks on this node (this one included)              */
    int *ids;   /* their world ranks and pids: ids[2i], ids[2i + 1]    */
    int err_fd; /* the launcher's stderr (-1: say nothing)             */
};

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static bool pid_gone(int pid)
{
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* The world rank of a vanished rank of the node, or -1. */
static int vanished_rank(const struct qc_comm_watch *w)
{
    for (int i = 0; i < w->n; i++)
        if (w->ids[2 * i] != w->rank && pid_gone(w->ids[2 * i + 1]))
            return w->ids[2 * i];
    return -1;
}

/* Whether this rank is the lowest surviving one of the node (it reports). */
static bool first_survivor(const struct qc_comm_watch *w)
{
    for (int i = 0; i < w->n; i++)
        if (w->ids[2 * i] < w->rank && !pid_gone(w->ids[2 * i + 1]))
            return false;
    return true;
}

static bool watch_stopped(struct qc_comm_watch *w)
{
    return atomic_load(&w->stop) || peer_aborting;
}

static void *watch_main(void *arg)
{
    struct qc_comm_watch *w = arg;
    while (!watch_stopped(w)) {
        int gone = vanished_rank(w);
        if (gone < 0) {
            sleep_ms(QC_COMM_WATCH_MS);
            continue;
        }
        sleep_ms(QC_COMM_WATCH_GRACE_MS);
        if (watch_stopped(w))
            break;
        if (!first_survivor(w)) {
            /* the reporter found the same rank gone: leave after it did */
            sleep_ms(2 * QC_COMM_WATCH_GRACE_MS);
            _exit(3);
        }
        if (w->err_fd >= 0) {
            char line[200];
            int n = snprintf(line, sizeof(line),
                             "qatconv: error: rank %d of the job ended abnormally (killed or "
                             "crashed); every rank stopped, nothing written\n",
                             gone);
            if (n > 0 && write(w->err_fd, line, strlen(line)) < 0)
                _exit(3); /* nowhere left to say it */
        }
        _exit(3);
    }
    return NULL;
}

/* Starts the watch of this node's other ranks (several ranks under MPI). */
static enum qc_status watch_start(struct qc_comm *c)
{
    struct qc_comm_watch *w;
    struct sigaction sa;
    MPI_Comm node;
    int me[2] = { c->rank, (int)getpid() }, rc;

    w = qc_calloc(1, sizeof(*w));
    if (!w)
        return QC_ERR_NOMEM;
    atomic_init(&w->stop, false);
    w->rank = c->rank;
    w->err_fd = c->rank == 0 ? STDERR_FILENO : c->err_fd;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS) {
        qc_log_error("MPI_Comm_split_type failed");
        qc_free(w);
        return QC_ERR_BACKEND;
    }
    rc = MPI_Comm_size(node, &w->n);
    w->ids = rc == MPI_SUCCESS ? qc_calloc(2 * (size_t)w->n, sizeof(int)) : NULL;
    if (w->ids)
        rc = MPI_Allgather(me, 2, MPI_INT, w->ids, 2, MPI_INT, node);
    MPI_Comm_free(&node);
    if (!w->ids || rc != MPI_SUCCESS) {
        enum qc_status st = w->ids ? QC_ERR_BACKEND : QC_ERR_NOMEM;
        if (st == QC_ERR_BACKEND)
            qc_log_error("gathering the pids of the node's ranks failed");
        qc_free(w->ids);
        qc_free(w);
        return st;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_peer_abort;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(QC_COMM_STOP_SIGNAL, &sa, NULL) != 0 ||
        pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        qc_log_error("cannot start the watch over the other ranks");
        qc_free(w->ids);
        qc_free(w);
        return QC_ERR_BACKEND;
    }
    c->watch = w;
    return QC_OK;
}

/* Ends the watch (qc_comm_free): no rank exits before every rank stopped
 * watching (the barrier). */
static void watch_end(struct qc_comm *c)
{
    if (!c->watch)
        return;
    atomic_store(&c->watch->stop, true);
    pthread_join(c->watch->thread, NULL);
    qc_free(c->watch->ids);
    qc_free(c->watch);
    c->watch = NULL;
    if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS)
        qc_log_warn("MPI_Barrier before MPI_Finalize failed");
}

/* Before a deliberate MPI_Abort (qc_comm_abort): this rank stops watching
 * and tells the node's other ranks to, so that the ranks the launcher ends
 * are not reported as ending abnormally. */
static void watch_abort(struct qc_comm *c)
{
    struct qc_comm_watch *w = c->watch;
    if (!w)
        return;
    atomic_store(&w->stop, true);
    for (int i = 0; i < w->n; i++)
        if (w->ids[2 * i] != w->rank)
            (void)kill((pid_t)w->ids[2 * i + 1], QC_COMM_STOP_SIGNAL);
}
#endif

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
        if (c->size > 1) {
            enum qc_status st = watch_start(c);
            if (st != QC_OK) {
                qc_comm_free(c);
                return st;
            }
        }
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
    watch_end(c);
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
        watch_abort(c);
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
