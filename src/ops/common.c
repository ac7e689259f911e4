/*
 * common.c - helpers shared by the op families: broadcasting, axis
 * normalization, params allocation.
 */
#include <config.h>

#include "op.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

enum qc_status qc_broadcast_shape(const char *label, const struct qc_shape *a,
                                  const struct qc_shape *b, struct qc_shape *out)
{
    int nd = QC_MAX(a->ndim, b->ndim);
    struct qc_shape r;
    r.ndim = nd;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim);
        int ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1;
        int64_t db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[128], sb[128];
            qc_log_error("%s: shapes %s and %s cannot be broadcast", label,
                         qc_shape_str(a, sa, sizeof(sa)), qc_shape_str(b, sb, sizeof(sb)));
            return QC_ERR_SHAPE;
        }
        r.dims[i] = da == 1 ? db : da;
    }
    *out = r;
    return QC_OK;
}

enum qc_status qc_norm_axis(const char *label, int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank) {
        qc_log_error("%s: axis %lld out of range for rank %d", label, (long long)axis, rank);
        return QC_ERR_ONNX;
    }
    *out = (int)(axis < 0 ? axis + rank : axis);
    return QC_OK;
}

enum qc_status qc_op_params_new(struct qc_node *n, size_t size)
{
    qc_free(n->params);
    n->params = qc_calloc(1, size);
    return n->params ? QC_OK : QC_ERR_NOMEM;
}

/* Where a message about node `label` points: the plan's labels already read
 * "<model>: <Op> '<name>'" (qc_plan_node_where); a bare name (a test's) gets
 * "<Op> '<name>'". */
const char *qc_op_where(char *buf, size_t len, const char *op, const char *label)
{
    if (label && strstr(label, "'"))
        snprintf(buf, len, "%s", label);
    else
        snprintf(buf, len, "%s '%s'", op, label ? label : "?");
    return buf;
}

/* qc_norm_axis with "Op 'label'" in its message. */
enum qc_status qc_op_norm_axis(const char *op, const char *label, int64_t axis, int rank,
                                int *out)
{
    char where[256];
    return qc_norm_axis(qc_op_where(where, sizeof(where), op, label), axis, rank, out);
}

/* An input that must be present (QC_ERR_ONNX) and constant (QC_ERR_UNSUPPORTED). */
enum qc_status qc_op_need_const(const char *op, const char *label,
                                 const struct qc_tensor *t, const char *what)
{
    char where[256];
    if (!t) {
        qc_log_error("%s: missing input '%s'", qc_op_where(where, sizeof(where), op, label),
                     what);
        return QC_ERR_ONNX;
    }
    if (!t->data) {
        qc_log_error("%s: %s must be a constant", qc_op_where(where, sizeof(where), op, label),
                     what);
        return QC_ERR_UNSUPPORTED;
    }
    return QC_OK;
}

/* Reads a constant 1-D (or scalar) integer tensor into out[0..*n). */
enum qc_status qc_op_const_ints(const char *op, const char *label, const struct qc_tensor *t,
                                const char *what, int64_t *out, int max, int *n)
{
    enum qc_status st = qc_op_need_const(op, label, t, what);
    char where[256];
    int64_t cnt;
    if (st != QC_OK)
        return st;
    qc_op_where(where, sizeof(where), op, label);
    if (t->dtype != QC_DTYPE_I64 && t->dtype != QC_DTYPE_I32) {
        qc_log_error("%s: %s has type %s, expected int64", where, what, qc_dtype_name(t->dtype));
        return QC_ERR_ONNX;
    }
    if (t->shape.ndim > 1) {
        qc_log_error("%s: %s must be 1-D", where, what);
        return QC_ERR_ONNX;
    }
    cnt = qc_tensor_nelem(t);
    if (cnt > max) {
        qc_log_error("%s: %s has %lld values, at most %d supported", where, what, (long long)cnt,
                     max);
        return QC_ERR_UNSUPPORTED;
    }
    for (int64_t i = 0; i < cnt; i++)
        out[i] = qc_tensor_get_i64(t, i);
    *n = (int)cnt;
    return QC_OK;
}

/* Row-major element strides of a shape. */
void qc_shape_strides(const struct qc_shape *s, int64_t *str)
{
    int64_t acc = 1;
    for (int k = s->ndim - 1; k >= 0; k--) {
        str[k] = acc;
        acc *= s->dims[k];
    }
}

void qc_copy_elem(unsigned char *dst, const unsigned char *src, size_t esize)
{
    switch (esize) {
    case 1: *dst = *src; break;
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    default: memcpy(dst, src, esize); break;
    }
}

/* Copies a box of cnt[0..ndim) elements of esize bytes: element idx goes from
 * src + sum(idx[k]*sstr[k]) to dst + sum(idx[k]*dstr[k]) (strides in
 * elements, possibly negative).  Rows whose two strides are 1 are memcpy'd. */
void qc_copy_box(size_t esize, int ndim, const int64_t *cnt, const unsigned char *src,
                     const int64_t *sstr, unsigned char *dst, const int64_t *dstr)
{
    int64_t idx[QC_MAX_DIMS] = {0};
    int64_t rows = 1, len;
    int last = ndim - 1;
    if (ndim == 0) {
        qc_copy_elem(dst, src, esize);
        return;
    }
    for (int k = 0; k < ndim; k++)
        if (cnt[k] <= 0)
            return;
    for (int k = 0; k < last; k++)
        rows *= cnt[k];
    len = cnt[last];
    for (int64_t r = 0; r < rows; r++) {
        int64_t so = 0, dof = 0;
        for (int k = 0; k < last; k++) {
            so += idx[k] * sstr[k];
            dof += idx[k] * dstr[k];
        }
        if (sstr[last] == 1 && dstr[last] == 1) {
            memcpy(dst + dof * (int64_t)esize, src + so * (int64_t)esize, (size_t)len * esize);
        } else {
            for (int64_t i = 0; i < len; i++)
                qc_copy_elem(dst + (dof + i * dstr[last]) * (int64_t)esize,
                          src + (so + i * sstr[last]) * (int64_t)esize, esize);
        }
        for (int k = last - 1; k >= 0; k--) {
            if (++idx[k] < cnt[k])
                break;
            idx[k] = 0;
        }
    }
}
