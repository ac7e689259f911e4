/*
 * fileio.c - whole-file output done safely: a temporary file in the
 * destination's directory, written, fsync'ed, closed, renamed over the
 * destination, then the directory fsync'ed.  On any failure the temporary is
 * removed and the destination is untouched; ENOSPC is named as such.
 */
#include <config.h>

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

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

enum qc_status qc_write_file_atomic(const char *path, const void *buf, size_t len)
{
    const uint8_t *data = buf;
    enum qc_status st = QC_ERR_NOMEM;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = NULL, *tmp = NULL;
    int fd = -1;
    size_t done = 0;
    mode_t mask;
    struct stat sb;

    if (!*base) {
        qc_log_error("%s: not a file name", path);
        return QC_ERR_IO;
    }
    dir = qc_path_dirname(path);
    if (!dir)
        goto out;
    tmp = qc_malloc(strlen(dir) + strlen(base) + 10);
    if (!tmp)
        goto out;
    sprintf(tmp, "%s/.%s.XXXXXX", dir, base);
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = io_error(path, "cannot create a temporary file", errno);
        qc_free(tmp);
        tmp = NULL;
        goto out;
    }
    /* mkstemp makes 0600 files; give the output the usual 0666 & ~umask,
     * or the mode of the file it replaces */
    if (stat(path, &sb) == 0) {
        mask = sb.st_mode & 07777;
    } else {
        mode_t um = umask(022);
        umask(um);
        mask = 0666 & ~um;
    }
    if (fchmod(fd, mask) != 0) {
        st = io_error(path, "cannot set permissions", errno);
        goto out;
    }
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            st = io_error(path, "write failed", errno);
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        st = io_error(path, "fsync failed", errno);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = io_error(path, "close failed", errno);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        st = io_error(path, "cannot rename the temporary file into place", errno);
        goto out;
    }
    qc_free(tmp);
    tmp = NULL;
    /* make the rename durable; failure here does not undo the write */
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
        fd = -1;
    }
    st = QC_OK;
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        qc_free(tmp);
    }
    qc_free(dir);
    return st;
}
