/*
 * cifar.c - CIFAR-10/100 binary batches: fixed records of label byte(s)
 * (CIFAR-10: one; CIFAR-100: coarse then fine, the fine one is kept) and
 * 3072 pixel bytes (1024 R, 1024 G, 1024 B; 32x32, row-major), i.e. already
 * CHW.  Files are read through zlib (plain or gzipped).  A partial record,
 * an empty file, a label out of range or a gzip error is QC_ERR_DATA naming
 * the file.
 */
#include <config.h>

#include "data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "util/log.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)

/* Appends the records of one file to ds (capacity *cap images). */
static enum qc_status load_file(const char *path, int label_bytes, struct qc_dataset *ds,
                                int64_t *cap)
{
    enum qc_status st = QC_OK;
    unsigned char rec[2 + CIFAR_PIXELS];
    size_t rec_size = (size_t)label_bytes + CIFAR_PIXELS;
    int64_t first = ds->n;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        qc_log_error("%s: %s", path, errno ? strerror(errno) : "cannot open");
        return QC_ERR_DATA;
    }
    gzbuffer(gz, 1u << 17);
    for (;;) {
        size_t got = 0;
        int errnum = Z_OK;
        while (got < rec_size) {
            int r = gzread(gz, rec + got, (unsigned)(rec_size - got));
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        const char *msg = gzerror(gz, &errnum);
        if (errnum != Z_OK) {
            qc_log_error("%s: corrupt file: %s", path, msg);
            st = QC_ERR_DATA;
            goto out;
        }
        if (got == 0)
            break;
        if (got < rec_size) {
            qc_log_error("%s: truncated record %lld (%zu of %zu bytes)", path,
                         (long long)(ds->n - first), got, rec_size);
            st = QC_ERR_DATA;
            goto out;
        }
        int label = rec[label_bytes - 1];
        if (label >= ds->n_classes) {
            qc_log_error("%s: record %lld: label %d out of range (%d classes)", path,
                         (long long)(ds->n - first), label, ds->n_classes);
            st = QC_ERR_DATA;
            goto out;
        }
        if (ds->n == *cap) {
            int64_t ncap = *cap ? 2 * *cap : 1024;
            uint8_t *px = qc_realloc(ds->pixels, (size_t)ncap * CIFAR_PIXELS);
            if (!px) {
                st = QC_ERR_NOMEM;
                goto out;
            }
            ds->pixels = px;
            int32_t *lb = qc_realloc(ds->labels, (size_t)ncap * sizeof(*lb));
            if (!lb) {
                st = QC_ERR_NOMEM;
                goto out;
            }
            ds->labels = lb;
            *cap = ncap;
        }
        memcpy(ds->pixels + (size_t)ds->n * CIFAR_PIXELS, rec + label_bytes, CIFAR_PIXELS);
        ds->labels[ds->n++] = label;
    }
    if (ds->n == first) {
        qc_log_error("%s: no CIFAR records", path);
        st = QC_ERR_DATA;
    }
out:
    gzclose(gz);
    return st;
}

enum qc_status qc_cifar_load(const char *const *paths, int n_files, int label_bytes,
                             struct qc_dataset **out)
{
    enum qc_status st = QC_OK;
    int64_t cap = 0;
    *out = NULL;
    if (label_bytes != 1 && label_bytes != 2) {
        qc_log_error("qc_cifar_load: label_bytes %d (expected 1 or 2)", label_bytes);
        return QC_ERR_INVAL;
    }
    struct qc_dataset *ds = qc_calloc(1, sizeof(*ds));
    if (!ds)
        return QC_ERR_NOMEM;
    ds->c = 3;
    ds->h = CIFAR_SIDE;
    ds->w = CIFAR_SIDE;
    ds->n_classes = label_bytes == 1 ? 10 : 100;
    for (int i = 0; i < n_files; i++) {
        st = load_file(paths[i], label_bytes, ds, &cap);
        if (st != QC_OK)
            goto out;
    }
    *out = ds;
    ds = NULL;
out:
    qc_dataset_free(ds);
    return st;
}
