/*
 * checkpoint.c - training checkpoints (format in checkpoint.h).
 */
#include <config.h>

#include "checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "../fileio.h"
#include "../log.h"

#define CKPT_MAGIC "QCCKPT01"
#define CKPT_VERSION 1u

/* Appends n bytes to the buffer at *pos. */
static void put(uint8_t *buf, size_t *pos, const void *src, size_t n)
{
    memcpy(buf + *pos, src, n);
    *pos += n;
}

static size_t header_bytes(int n_groups)
{
    return 8 + 4 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + (size_t)n_groups * 3 * 8;
}

enum qc_status qc_checkpoint_write(const char *path, const struct qc_checkpoint *c)
{
    size_t total = header_bytes(c->n_groups) +
                   ((size_t)c->n_state * (c->has_best ? 2 : 1) + (size_t)c->n_opt) *
                       sizeof(float) + 4;
    uint8_t *buf = qc_malloc(total);
    size_t pos = 0;
    uint32_t version = CKPT_VERSION, ng = (uint32_t)c->n_groups, hb = c->has_best, crc;
    enum qc_status st;

    if (!buf)
        return QC_ERR_NOMEM;
    put(buf, &pos, CKPT_MAGIC, 8);
    put(buf, &pos, &version, 4);
    put(buf, &pos, &ng, 4);
    put(buf, &pos, &c->epochs_done, 8);
    put(buf, &pos, &c->seed, 8);
    put(buf, &pos, &c->n_state, 8);
    put(buf, &pos, &c->n_opt, 8);
    put(buf, &pos, &c->best_epoch, 4);
    put(buf, &pos, &c->best_acc, 8);
    put(buf, &pos, &hb, 4);
    for (int i = 0; i < c->n_groups; i++) {
        put(buf, &pos, &c->steps[i].updates, 8);
        put(buf, &pos, &c->steps[i].samples, 8);
        put(buf, &pos, &c->steps[i].pass, 8);
    }
    put(buf, &pos, c->state, (size_t)c->n_state * sizeof(float));
    put(buf, &pos, c->opt, (size_t)c->n_opt * sizeof(float));
    if (c->has_best)
        put(buf, &pos, c->best, (size_t)c->n_state * sizeof(float));
    crc = (uint32_t)crc32(0L, buf, (uInt)pos);
    put(buf, &pos, &crc, 4);
    QC_ASSERT(pos == total);
    st = qc_write_file_atomic(path, buf, total);
    qc_free(buf);
    return st;
}

/* Reads n bytes from the buffer or reports truncation. */
static bool get(const uint8_t *buf, size_t len, size_t *pos, void *dst, size_t n)
{
    if (*pos + n > len)
        return false;
    memcpy(dst, buf + *pos, n);
    *pos += n;
    return true;
}

enum qc_status qc_checkpoint_read(const char *path, struct qc_checkpoint *c)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long flen;
    size_t len, pos = 0;
    char magic[8];
    uint32_t version, ng, hb, crc, want_crc;
    int64_t n_state, n_opt;
    enum qc_status st = QC_ERR_DATA;

    if (!f) {
        qc_log_error("%s: cannot open checkpoint: %s", path, strerror(errno));
        return QC_ERR_DATA;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (flen = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        qc_log_error("%s: cannot read checkpoint", path);
        goto out;
    }
    len = (size_t)flen;
    buf = qc_malloc(len ? len : 1);
    if (!buf) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    if (fread(buf, 1, len, f) != len) {
        qc_log_error("%s: cannot read checkpoint", path);
        goto out;
    }
    if (len < header_bytes(0) + 4 || !get(buf, len, &pos, magic, 8) ||
        memcmp(magic, CKPT_MAGIC, 8) != 0) {
        qc_log_error("%s: not a qatconv checkpoint", path);
        goto out;
    }
    memcpy(&want_crc, buf + len - 4, 4);
    crc = (uint32_t)crc32(0L, buf, (uInt)(len - 4));
    if (crc != want_crc) {
        qc_log_error("%s: checkpoint is corrupt (CRC mismatch)", path);
        goto out;
    }
    get(buf, len, &pos, &version, 4);
    get(buf, len, &pos, &ng, 4);
    if (version != CKPT_VERSION) {
        qc_log_error("%s: checkpoint version %u, this qatconv reads %u", path, version,
                     CKPT_VERSION);
        goto out;
    }
    get(buf, len, &pos, &c->epochs_done, 8);
    get(buf, len, &pos, &c->seed, 8);
    get(buf, len, &pos, &n_state, 8);
    get(buf, len, &pos, &n_opt, 8);
    get(buf, len, &pos, &c->best_epoch, 4);
    get(buf, len, &pos, &c->best_acc, 8);
    get(buf, len, &pos, &hb, 4);
    if ((int)ng != c->n_groups || n_state != c->n_state || n_opt != c->n_opt) {
        qc_log_error("%s: checkpoint of another model or recipe (%u solver groups, %lld "
                     "parameters; this run has %d, %lld)", path, ng, (long long)n_state,
                     c->n_groups, (long long)c->n_state);
        goto out;
    }
    for (int i = 0; i < c->n_groups; i++) {
        get(buf, len, &pos, &c->steps[i].updates, 8);
        get(buf, len, &pos, &c->steps[i].samples, 8);
        get(buf, len, &pos, &c->steps[i].pass, 8);
    }
    c->has_best = hb != 0;
    if (!get(buf, len, &pos, c->state, (size_t)n_state * sizeof(float)) ||
        !get(buf, len, &pos, c->opt, (size_t)n_opt * sizeof(float)) ||
        (c->has_best && !get(buf, len, &pos, c->best, (size_t)n_state * sizeof(float))) ||
        pos + 4 != len) {
        qc_log_error("%s: checkpoint is truncated", path);
        goto out;
    }
    st = QC_OK;
out:
    qc_free(buf);
    fclose(f);
    return st;
}
