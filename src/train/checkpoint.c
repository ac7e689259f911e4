/*
 * checkpoint.c - training checkpoints (format in checkpoint.h): the state
 * packed into one buffer with a CRC and handed to the atomic writer; read
 * back whole, checked (magic, CRC, version, sizes) before anything is used.
 */
#include <config.h>

#include "checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "util/fileio.h"
#include "util/log.h"

#define CKPT_MAGIC "QCCKPT01"
#define CKPT_VERSION 3u

/* Appends n bytes to the buffer at *pos. */
static void put(uint8_t *buf, size_t *pos, const void *src, size_t n)
{
    memcpy(buf + *pos, src, n);
    *pos += n;
}

/* The fixed part: magic to has_best, the version-2 block, the counters. */
static size_t header_bytes(uint32_t version, int n_groups)
{
    size_t v1 = 8 + 4 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4;
    size_t v2 = version >= 2 ? 8 + 8 + 8 + 32 + 32 + 8 + 8 + 8 : 0;
    size_t v3 = version >= 3 ? 32 : 0;
    return v1 + v2 + v3 + (size_t)n_groups * 3 * 8;
}

/* zlib's crc32 takes a uInt length: fed in chunks for large states. */
static uint32_t crc_of(const uint8_t *buf, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, buf, n);
        buf += n;
        len -= n;
    }
    return (uint32_t)crc;
}

enum qc_status qc_checkpoint_write(const char *path, const struct qc_checkpoint *c)
{
    size_t total = header_bytes(CKPT_VERSION, c->n_groups) +
                   ((size_t)c->n_state * (c->has_best ? 2 : 1) + (size_t)c->n_opt +
                    (size_t)c->n_grads) * sizeof(float) + 4;
    uint8_t *buf = qc_malloc(total);
    size_t pos = 0;
    uint32_t version = CKPT_VERSION, ng = (uint32_t)c->n_groups, hb = c->has_best, crc;
    char metric[32] = { 0 };
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
    put(buf, &pos, &c->batches_done, 8);
    put(buf, &pos, &c->batch, 8);
    put(buf, &pos, &c->n_learn, 8);
    put(buf, &pos, c->rng_data, 32);
    put(buf, &pos, c->rng_drop, 32);
    put(buf, &pos, &c->loss_sum, 8);
    put(buf, &pos, &c->correct, 8);
    put(buf, &pos, &c->n_grads, 8);
    snprintf(metric, sizeof(metric), "%s", c->valid_metric);
    put(buf, &pos, metric, sizeof(metric));
    for (int i = 0; i < c->n_groups; i++) {
        put(buf, &pos, &c->steps[i].updates, 8);
        put(buf, &pos, &c->steps[i].samples, 8);
        put(buf, &pos, &c->steps[i].pass, 8);
    }
    put(buf, &pos, c->state, (size_t)c->n_state * sizeof(float));
    put(buf, &pos, c->opt, (size_t)c->n_opt * sizeof(float));
    if (c->has_best)
        put(buf, &pos, c->best, (size_t)c->n_state * sizeof(float));
    if (c->n_grads > 0)
        put(buf, &pos, c->grads, (size_t)c->n_grads * sizeof(float));
    crc = crc_of(buf, pos);
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

/* The whole file into *buf (qc_free it), *len bytes. */
static enum qc_status slurp(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long flen;
    enum qc_status st = QC_ERR_DATA;

    *buf = NULL;
    if (!f) {
        qc_log_error("%s: cannot open checkpoint: %s", path, strerror(errno));
        return QC_ERR_DATA;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (flen = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        qc_log_error("%s: cannot read checkpoint", path);
        goto out;
    }
    *len = (size_t)flen;
    *buf = qc_malloc(*len ? *len : 1);
    if (!*buf) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    if (fread(*buf, 1, *len, f) != *len) {
        qc_log_error("%s: cannot read checkpoint", path);
        goto out;
    }
    st = QC_OK;
out:
    fclose(f);
    if (st != QC_OK) {
        qc_free(*buf);
        *buf = NULL;
    }
    return st;
}

/* The version-2 block (epoch position, generators, gradients count) and the
 * version-3 metric name; defaults for a version-1 file: an end-of-epoch
 * checkpoint. */
static void read_position(const uint8_t *buf, size_t len, size_t *pos, uint32_t version,
                          struct qc_checkpoint *c, int64_t *n_grads)
{
    *n_grads = 0;
    c->batches_done = c->batch = c->n_learn = 0;
    c->loss_sum = 0.0;
    c->correct = 0;
    memset(c->valid_metric, 0, sizeof(c->valid_metric));
    if (version < 2)
        return;
    get(buf, len, pos, &c->batches_done, 8);
    get(buf, len, pos, &c->batch, 8);
    get(buf, len, pos, &c->n_learn, 8);
    get(buf, len, pos, c->rng_data, 32);
    get(buf, len, pos, c->rng_drop, 32);
    get(buf, len, pos, &c->loss_sum, 8);
    get(buf, len, pos, &c->correct, 8);
    get(buf, len, pos, n_grads, 8);
    if (version >= 3) {
        get(buf, len, pos, c->valid_metric, sizeof(c->valid_metric));
        c->valid_metric[sizeof(c->valid_metric) - 1] = '\0';
    }
}

enum qc_status qc_checkpoint_read(const char *path, struct qc_checkpoint *c)
{
    uint8_t *buf = NULL;
    size_t len = 0, pos = 0;
    char magic[8];
    uint32_t version, ng, hb, crc, want_crc;
    int64_t n_state, n_opt, n_grads;
    enum qc_status st;

    st = slurp(path, &buf, &len);
    if (st != QC_OK)
        return st;
    st = QC_ERR_DATA;
    if (len < header_bytes(1, 0) + 4 || !get(buf, len, &pos, magic, 8) ||
        memcmp(magic, CKPT_MAGIC, 8) != 0) {
        qc_log_error("%s: not a qatconv checkpoint", path);
        goto out;
    }
    memcpy(&want_crc, buf + len - 4, 4);
    crc = crc_of(buf, len - 4);
    if (crc != want_crc) {
        qc_log_error("%s: checkpoint is corrupt (CRC mismatch)", path);
        goto out;
    }
    get(buf, len, &pos, &version, 4);
    get(buf, len, &pos, &ng, 4);
    if (version < 1 || version > CKPT_VERSION ||
        len < header_bytes(version, (int)QC_MIN(ng, 1u << 20)) + 4) {
        qc_log_error("%s: checkpoint version %u, this qatconv reads 1 to %u", path, version,
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
    read_position(buf, len, &pos, version, c, &n_grads);
    if ((int64_t)ng != c->n_groups || n_state != c->n_state || n_opt != c->n_opt ||
        (n_grads != 0 && n_grads != c->n_grads)) {
        qc_log_error("%s: checkpoint of another model or recipe (%u solver groups, %lld "
                     "parameters; this run has %d, %lld)", path, ng, (long long)n_state,
                     c->n_groups, (long long)c->n_state);
        goto out;
    }
    if (c->epochs_done < 0 || c->batches_done < 0) {
        qc_log_error("%s: checkpoint is corrupt (negative epoch or batch count)", path);
        goto out;
    }
    c->n_grads = n_grads;
    for (int i = 0; i < c->n_groups; i++) {
        get(buf, len, &pos, &c->steps[i].updates, 8);
        get(buf, len, &pos, &c->steps[i].samples, 8);
        get(buf, len, &pos, &c->steps[i].pass, 8);
    }
    c->has_best = hb != 0;
    if (!get(buf, len, &pos, c->state, (size_t)n_state * sizeof(float)) ||
        !get(buf, len, &pos, c->opt, (size_t)n_opt * sizeof(float)) ||
        (c->has_best && !get(buf, len, &pos, c->best, (size_t)n_state * sizeof(float))) ||
        (n_grads > 0 && !get(buf, len, &pos, c->grads, (size_t)n_grads * sizeof(float))) ||
        pos + 4 != len) {
        qc_log_error("%s: checkpoint is truncated", path);
        goto out;
    }
    st = QC_OK;
out:
    qc_free(buf);
    return st;
}
