/*
 * idx.c - MNIST-style IDX files (images magic 0x00000803: n, rows, cols;
 * labels magic 0x00000801: n; big-endian 32-bit header words, then unsigned
 * bytes).  Files are read through zlib's gz* interface, which reads plain
 * and gzip-compressed files alike; a bad magic, a short read, trailing bytes
 * or a gzip error (bad CRC, bad deflate data) is QC_ERR_DATA naming the file.
 */
#include <config.h>

#include "data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "util/log.h"

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define CHUNK ((size_t)1 << 30)

static enum qc_status open_gz(const char *path, gzFile *out)
{
    errno = 0;
    *out = gzopen(path, "rb");
    if (!*out) {
        qc_log_error("%s: %s", path, errno ? strerror(errno) : "cannot open");
        return QC_ERR_DATA;
    }
    gzbuffer(*out, 1u << 17);
    return QC_OK;
}

/* Reads exactly n bytes; QC_ERR_DATA on a short read or a gzip error. */
static enum qc_status read_part(gzFile gz, const char *path, void *buf, size_t n, size_t before,
                                size_t total);

static enum qc_status read_exact(gzFile gz, const char *path, void *buf, size_t n)
{
    return read_part(gz, path, buf, n, 0, n);
}

/* read_exact of part of a read of `total` bytes, `before` of them done: a
 * short read names the bytes of the whole. */
static enum qc_status read_part(gzFile gz, const char *path, void *buf, size_t n, size_t before,
                                size_t total)
{
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t want = QC_MIN(n - done, CHUNK);
        int got = gzread(gz, p + done, (unsigned)want);
        int errnum = Z_OK;
        const char *msg = gzerror(gz, &errnum);
        if (got < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR)) {
            qc_log_error("%s: corrupt file: %s", path, msg);
            return QC_ERR_DATA;
        }
        if (got == 0) {
            qc_log_error("%s: truncated file (%zu of %zu bytes read%s%s)", path, before + done, total,
                         errnum != Z_OK ? ": " : "", errnum != Z_OK ? msg : "");
            return QC_ERR_DATA;
        }
        done += (size_t)got;
    }
    return QC_OK;
}

/*
 * Reads exactly n bytes into a new buffer (*buf, qc_free) that grows as the
 * data arrives, doubling from 1 MiB: a header that claims more images than
 * the file holds fails as truncated after allocating about what the file
 * has, not what it claims.
 */
static enum qc_status read_grown(gzFile gz, const char *path, size_t n, uint8_t **buf)
{
    size_t cap = QC_MIN(n, (size_t)1 << 20), done = 0;
    uint8_t *p = qc_malloc(cap ? cap : 1);
    enum qc_status st;
    *buf = NULL;
    if (!p)
        return QC_ERR_NOMEM;
    while (done < n) {
        if (done == cap) {
            size_t grow = QC_MIN(n, cap > n / 2 ? n : 2 * cap);
            uint8_t *q = qc_realloc(p, grow);
            if (!q) {
                qc_free(p);
                return QC_ERR_NOMEM;
            }
            p = q;
            cap = grow;
        }
        if ((st = read_part(gz, path, p + done, cap - done, done, n)) != QC_OK) {
            qc_free(p);
            return st;
        }
        done = cap;
    }
    *buf = p;
    return QC_OK;
}

/* Requires the end of the file (and, for gzip, a good CRC) after the data. */
static enum qc_status expect_eof(gzFile gz, const char *path)
{
    unsigned char b;
    int got = gzread(gz, &b, 1);
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    if (got < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR)) {
        qc_log_error("%s: corrupt file: %s", path, msg);
        return QC_ERR_DATA;
    }
    if (errnum == Z_BUF_ERROR) {
        qc_log_error("%s: truncated file: %s", path, msg);
        return QC_ERR_DATA;
    }
    if (got > 0) {
        qc_log_error("%s: unexpected trailing data", path);
        return QC_ERR_DATA;
    }
    return QC_OK;
}

static enum qc_status read_header(gzFile gz, const char *path, uint32_t magic, uint32_t *dims,
                                  int n_dims)
{
    unsigned char h[16];
    enum qc_status st = read_exact(gz, path, h, 4 * (size_t)(n_dims + 1));
    if (st != QC_OK)
        return st;
    for (int i = 0; i <= n_dims; i++) {
        uint32_t v = (uint32_t)h[4 * i] << 24 | (uint32_t)h[4 * i + 1] << 16 |
                     (uint32_t)h[4 * i + 2] << 8 | (uint32_t)h[4 * i + 3];
        if (i == 0 && v != magic) {
            qc_log_error("%s: bad IDX magic 0x%08x (expected 0x%08x)", path, (unsigned)v,
                         (unsigned)magic);
            return QC_ERR_DATA;
        }
        if (i > 0)
            dims[i - 1] = v;
    }
    return QC_OK;
}

enum qc_status qc_idx_load(const char *images_path, const char *labels_path,
                           struct qc_dataset **out)
{
    enum qc_status st;
    gzFile gi = NULL, gl = NULL;
    uint32_t idim[3], ldim[1];
    uint8_t *lab = NULL;
    struct qc_dataset *ds = qc_calloc(1, sizeof(*ds));
    *out = NULL;
    if (!ds)
        return QC_ERR_NOMEM;
    if ((st = open_gz(images_path, &gi)) != QC_OK ||
        (st = read_header(gi, images_path, IDX_MAGIC_IMAGES, idim, 3)) != QC_OK)
        goto out;
    if (idim[0] == 0 || idim[0] > 100000000u || idim[1] == 0 || idim[1] > 65536 ||
        idim[2] == 0 || idim[2] > 65536 || (uint64_t)idim[1] * idim[2] > (1u << 24)) {
        qc_log_error("%s: implausible IDX dimensions %ux%ux%u", images_path, (unsigned)idim[0],
                     (unsigned)idim[1], (unsigned)idim[2]);
        st = QC_ERR_DATA;
        goto out;
    }
    if ((st = open_gz(labels_path, &gl)) != QC_OK ||
        (st = read_header(gl, labels_path, IDX_MAGIC_LABELS, ldim, 1)) != QC_OK)
        goto out;
    if (ldim[0] != idim[0]) {
        qc_log_error("%s: %u labels for %u images in %s", labels_path, (unsigned)ldim[0],
                     (unsigned)idim[0], images_path);
        st = QC_ERR_DATA;
        goto out;
    }
    ds->n = idim[0];
    ds->c = 1;
    ds->h = (int)idim[1];
    ds->w = (int)idim[2];
    size_t npix = (size_t)ds->n * idim[1] * idim[2];
    if ((st = read_grown(gi, images_path, npix, &ds->pixels)) != QC_OK ||
        (st = expect_eof(gi, images_path)) != QC_OK ||
        (st = read_grown(gl, labels_path, (size_t)ds->n, &lab)) != QC_OK ||
        (st = expect_eof(gl, labels_path)) != QC_OK)
        goto out;
    ds->labels = qc_malloc((size_t)ds->n * sizeof(*ds->labels));
    if (!ds->labels) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    int max_label = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        ds->labels[i] = lab[i];
        max_label = QC_MAX(max_label, (int)lab[i]);
    }
    ds->n_classes = max_label + 1;
    *out = ds;
    ds = NULL;
out:
    if (gi)
        gzclose(gi);
    if (gl)
        gzclose(gl);
    qc_free(lab);
    qc_dataset_free(ds);
    return st;
}
