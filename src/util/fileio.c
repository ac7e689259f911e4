/*
 * fileio.c - whole-file output done safely: the bytes go to a temporary file
 * in the destination's directory, which is fsync'ed, closed, renamed over
 * the destination, then the directory fsync'ed.  On any failure the
 * temporary is removed and the destination is untouched; ENOSPC is named as
 * such.  Where the kernel and file system allow it (Linux O_TMPFILE) the
 * temporary has no name while it is written and gets one only just before
 * the rename, so even a SIGKILL in the middle of a write leaves no stray
 * file; elsewhere it is a mkstemp file ".NAME.XXXXXX" that a SIGKILL can
 * leave behind (never the destination half-written).
 *
 * Test hook: QATCONV_TEST_WRITE_PAUSE=MS[:SUFFIX] makes every write (or
 * those whose path ends with SUFFIX) stop MS milliseconds halfway through
 * its bytes, after a line "qatconv: test: pausing in the write of PATH" on
 * stderr, so that tests can kill the process inside a write.  It changes no
 * byte written.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* O_TMPFILE */
#endif
#include <config.h>

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rng.h"

/* A temporary file being written: its descriptor, and its name once it
 * has one (NULL while an O_TMPFILE file is anonymous). */
struct temp_file {
    const char *path;        /* the destination */
    char       *dir;
    char       *name;
    int         fd;
};

char *qc_path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n;
    char *d;
    if (!slash)
        return qc_strdup(".");
    n = slash == path ? 1 : (size_t)(slash - path);
    d = qc_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static enum qc_status io_error(const char *path, const char *what, int err)
{
    if (err == ENOSPC)
        qc_log_error("%s: %s: no space left on device", path, what);
    else
        qc_log_error("%s: %s: %s", path, what, strerror(err));
    return QC_ERR_IO;
}

/* "DIR/.BASE.XXXXXX", the template of a temporary name; NULL on no memory. */
static char *temp_template(const char *dir, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(dir) + strlen(base) + 10;
    char *tmp = qc_malloc(n);
    if (tmp)
        snprintf(tmp, n, "%s/.%s.XXXXXX", dir, base);
    return tmp;
}

/* The test hook (file comment): the pause in milliseconds for this path,
 * 0 when none applies. */
static long test_pause_ms(const char *path)
{
    const char *env = getenv("QATCONV_TEST_WRITE_PAUSE");
    char *end;
    long ms;
    size_t pl, sl;
    if (!env || !*env)
        return 0;
    ms = strtol(env, &end, 10);
    if (end == env || ms <= 0 || ms > 600000 || (*end != '\0' && *end != ':'))
        return 0;
    if (*end == ':') {
        pl = strlen(path);
        sl = strlen(end + 1);
        if (sl > pl || strcmp(path + pl - sl, end + 1) != 0)
            return 0;
    }
    return ms;
}

static void test_pause(const char *path, long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    fprintf(stderr, "qatconv: test: pausing in the write of %s\n", path);
    fflush(stderr);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Writes all len bytes, retrying short writes and EINTR. */
static enum qc_status write_all(int fd, const uint8_t *data, size_t len, const char *path)
{
    long pause_ms = test_pause_ms(path);
    size_t done = 0, half = len / 2;
    while (done < len) {
        size_t want = pause_ms > 0 && done < half ? half - done : len - done;
        ssize_t w = write(fd, data + done, want ? want : len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return io_error(path, "write failed", errno);
        }
        done += (size_t)w;
        if (pause_ms > 0 && done >= half) {
            test_pause(path, pause_ms);
            pause_ms = 0;
        }
    }
    return QC_OK;
}

/* Opens the temporary: anonymous (O_TMPFILE) if asked and supported,
 * else named. */
static enum qc_status temp_open(struct temp_file *tf, bool anonymous)
{
#ifdef O_TMPFILE
    if (anonymous) {
        tf->fd = open(tf->dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (tf->fd >= 0)
            return QC_OK;
    }
#else
    (void)anonymous;
#endif
    tf->name = temp_template(tf->dir, tf->path);
    if (!tf->name)
        return QC_ERR_NOMEM;
    tf->fd = mkstemp(tf->name);
    if (tf->fd < 0) {
        int err = errno;
        qc_free(tf->name);
        tf->name = NULL;
        return io_error(tf->path, "cannot create a temporary file", err);
    }
    return QC_OK;
}

/* mkstemp makes 0600 files; give the output the usual 0666 & ~umask, or the
 * mode of the file it replaces. */
static enum qc_status temp_chmod(const struct temp_file *tf)
{
    struct stat sb;
    mode_t mask;
    if (stat(tf->path, &sb) == 0) {
        mask = sb.st_mode & 07777;
    } else {
        mode_t um = umask(022);
        umask(um);
        mask = 0666 & ~um;
    }
    if (fchmod(tf->fd, mask) != 0)
        return io_error(tf->path, "cannot set permissions", errno);
    return QC_OK;
}

/* Gives an anonymous temporary a name ".BASE.XXXXXX" (random letters) in
 * its directory, through /proc/self/fd.  QC_ERR_UNSUPPORTED when that is not
 * possible here (no /proc): the caller writes a named temporary instead. */
static enum qc_status temp_link(struct temp_file *tf)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char proc[64];
    struct qc_rng rng;
    struct timespec now;
    size_t n;

    tf->name = temp_template(tf->dir, tf->path);
    if (!tf->name)
        return QC_ERR_NOMEM;
    n = strlen(tf->name);
    clock_gettime(CLOCK_REALTIME, &now);
    qc_rng_seed(&rng, ((uint64_t)getpid() << 32) ^ (uint64_t)now.tv_nsec ^
                          ((uint64_t)now.tv_sec << 20) ^ (uint64_t)tf->fd);
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", tf->fd);
    for (int attempt = 0; attempt < 100; attempt++) {
        for (size_t i = n - 6; i < n; i++)
            tf->name[i] = letters[qc_rng_next(&rng) % (sizeof(letters) - 1)];
        if (linkat(AT_FDCWD, proc, AT_FDCWD, tf->name, AT_SYMLINK_FOLLOW) == 0)
            return QC_OK;
        if (errno != EEXIST)
            break;
    }
    qc_free(tf->name);
    tf->name = NULL;
    return QC_ERR_UNSUPPORTED;
}

/* The temporary, written and synced, closed and named. */
static enum qc_status temp_write(struct temp_file *tf, const void *buf, size_t len,
                                 bool anonymous)
{
    enum qc_status st = temp_open(tf, anonymous);
    if (st == QC_OK)
        st = temp_chmod(tf);
    if (st == QC_OK)
        st = write_all(tf->fd, buf, len, tf->path);
    if (st == QC_OK && fsync(tf->fd) != 0)
        st = io_error(tf->path, "fsync failed", errno);
    if (st == QC_OK && !tf->name)
        st = temp_link(tf);
    if (st == QC_OK) {
        int rc = close(tf->fd);
        tf->fd = -1;
        if (rc != 0)
            st = io_error(tf->path, "close failed", errno);
    }
    return st;
}

static void temp_discard(struct temp_file *tf)
{
    if (tf->fd >= 0)
        close(tf->fd);
    tf->fd = -1;
    if (tf->name)
        unlink(tf->name);
    qc_free(tf->name);
    tf->name = NULL;
}

enum qc_status qc_write_file_atomic(const char *path, const void *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    struct temp_file tf = { path, NULL, NULL, -1 };
    enum qc_status st;
    int dfd;

    if (!*(slash ? slash + 1 : path)) {
        qc_log_error("%s: not a file name", path);
        return QC_ERR_IO;
    }
    tf.dir = qc_path_dirname(path);
    if (!tf.dir)
        return QC_ERR_NOMEM;
    st = temp_write(&tf, buf, len, true);
    if (st == QC_ERR_UNSUPPORTED) {   /* an anonymous file that cannot be named */
        temp_discard(&tf);
        st = temp_write(&tf, buf, len, false);
    }
    if (st == QC_OK && rename(tf.name, path) != 0)
        st = io_error(path, "cannot rename the temporary file into place", errno);
    if (st == QC_OK) {
        qc_free(tf.name);
        tf.name = NULL;
        /* make the rename durable; failure here does not undo the write */
        dfd = open(tf.dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    temp_discard(&tf);
    qc_free(tf.dir);
    return st;
}
