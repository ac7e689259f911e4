/*
 * common.c - helpers shared by the op families: broadcasting, axis
 * normalization, params allocation.
 */
#include <config.h>

#include "op.h"

#include "../log.h"

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
