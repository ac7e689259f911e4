/*
 * layout.c - ops that move elements without arithmetic: Flatten, Reshape,
 * Squeeze, Unsqueeze, Transpose, Concat and Pad (constant mode).
 *
 * Every kernel is dtype-generic: it copies qc_dtype_size() bytes per element,
 * so the same code serves float activations and the int64 tensors of shape
 * subgraphs (fold = QC_FOLD_CONST_INPUTS: a Reshape or Concat whose inputs
 * are all constant is evaluated once at plan time).  Both ONNX forms of an
 * attribute are handled (attribute before an opset, input from it on); the
 * input form must be a constant when shapes are inferred.  Values that only an
 * input can carry (Reshape shape, Pad pads) are re-read from that constant
 * input in forward, so infer and forward share one resolver per op.
 *
 * Backwards are float-only (gradients are float32) and accumulate: the
 * byte-preserving ops add dy to dx as is, Transpose adds dy permuted back,
 * Concat gives each input its slice of dy, Pad gives x the interior of dy
 * (the region x survives in, with negative pads).  Every dx element gets
 * exactly one contribution, so any split across threads is race-free.
 */
#include <config.h>

#include "op.h"
#include "params_layout.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ir/attr.h"
#include "util/log.h"

/* ---------------------------------------------------------------- helpers */

/* Shared forward of the ops whose output is the input's bytes unchanged
 * (Flatten, Reshape, Squeeze, Unsqueeze). */
static enum qc_status copy_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    size_t nb = qc_tensor_nbytes(in[0]);
    (void)n;
    (void)ctx;
    QC_ASSERT(nb == qc_tensor_nbytes(out[0]));
    if (nb && out[0]->data != in[0]->data)
        memmove(out[0]->data, in[0]->data, nb);
    return QC_OK;
}

/* dst[i] += src[i] over n floats, parallel when it streams enough. */
static void acc_stream(float *dst, const float *src, int64_t n, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= QC_PAR_MIN_STREAM)
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

static int nthreads(const struct qc_op_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : 1;
}

/* dst += src over a box of cnt[0..nd) floats with element strides sstr and
 * dstr (the float counterpart of qc_copy_box, accumulating).  Callers pass
 * boxes whose dst elements are distinct, so the split of dim 0 across
 * threads is race-free. */
static void acc_box(int nd, const int64_t *cnt, const float *src, const int64_t *sstr,
                    float *dst, const int64_t *dstr, int threads)
{
    int64_t total = 1, inner, outer;
    for (int k = 0; k < nd; k++)
        total *= cnt[k];
    if (total == 0)
        return;
    if (nd == 0) {
        dst[0] += src[0];
        return;
    }
    inner = cnt[nd - 1];
    outer = total / inner;
#pragma omp parallel for num_threads(threads) schedule(static) if (total >= QC_PAR_MIN_STREAM)
    for (int64_t r = 0; r < outer; r++) {
        int64_t rem = r, so = 0, dof = 0;
        const int64_t si = sstr[nd - 1], di = dstr[nd - 1];
        for (int k = nd - 2; k >= 0; k--) {
            int64_t i = rem % cnt[k];
            rem /= cnt[k];
            so += i * sstr[k];
            dof += i * dstr[k];
        }
        if (si == 1 && di == 1) {
            for (int64_t j = 0; j < inner; j++)
                dst[dof + j] += src[so + j];
        } else {
            for (int64_t j = 0; j < inner; j++)
                dst[dof + j * di] += src[so + j * si];
        }
    }
}

/* Backward of the byte-preserving ops: y is x's bytes, so dx += dy. */
static enum qc_status copy_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                        const struct qc_tensor *const *in,
                                        const struct qc_tensor *const *out,
                                        const struct qc_tensor *const *dout,
                                        struct qc_tensor *const *din)
{
    (void)n;
    (void)in;
    (void)out;
    if (!din[0] || !dout[0])
        return QC_OK;
    QC_ASSERT(qc_tensor_nelem(din[0]) == qc_tensor_nelem(dout[0]));
    acc_stream(qc_tensor_f32(din[0]), qc_tensor_f32(dout[0]), qc_tensor_nelem(din[0]),
               nthreads(ctx));
    return QC_OK;
}

/* ---------------------------------------------------------------- Flatten */

struct flatten_params {
    int64_t axis;
};

static enum qc_status flatten_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct flatten_params *p;
    int64_t axis;
    enum qc_status st;
    (void)opset;
    st = qc_attr_int(&n->attrs, qc_op_where(where, sizeof(where), "Flatten", label), "axis", 1,
                     &axis);
    if (st != QC_OK)
        return st;
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->axis = axis;
    return QC_OK;
}

/* Output [prod(d[0:axis]), prod(d[axis:])], axis in [-r, r]. */
static enum qc_status flatten_infer(const struct qc_node *n, const char *label,
                                    const struct qc_tensor *const *in,
                                    struct qc_tensor *const *out)
{
    const struct flatten_params *p = n->params;
    int r = in[0]->shape.ndim;
    int64_t axis = p->axis, dims[2] = {1, 1};
    if (axis < -r || axis > r) {
        qc_log_error("%s: axis %lld out of range for rank %d", label,
                     (long long)axis, r);
        return QC_ERR_ONNX;
    }
    if (axis < 0)
        axis += r;
    for (int k = 0; k < r; k++)
        dims[k < axis ? 0 : 1] *= in[0]->shape.dims[k];
    out[0]->dtype = in[0]->dtype;
    out[0]->shape = qc_shape_make(2, dims);
    return QC_OK;
}

const struct qc_op_def qc_op_flatten = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = flatten_parse, .infer = flatten_infer,
    .cpu = { .forward = copy_forward_cpu, .backward = copy_backward_cpu },
};

/* ---------------------------------------------------------------- Reshape */

struct reshape_params {
    bool allowzero;
};

static enum qc_status reshape_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct reshape_params *p;
    int64_t az = 0;
    enum qc_status st;
    qc_op_where(where, sizeof(where), "Reshape", label);
    if (qc_attr_find(&n->attrs, "shape")) {
        qc_log_error("%s: attribute 'shape' is not valid at opset %lld (it is an input)", where,
                     (long long)opset);
        return QC_ERR_ONNX;
    }
    if (opset >= 14) {
        st = qc_attr_int(&n->attrs, where, "allowzero", 0, &az);
        if (st != QC_OK)
            return st;
    }
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->allowzero = az != 0;
    return QC_OK;
}

/* shape[i] == 0 copies the input dim i (unless allowzero), one -1 takes the
 * remaining element count. */
static enum qc_status reshape_infer(const struct qc_node *n, const char *label,
                                    const struct qc_tensor *const *in,
                                    struct qc_tensor *const *out)
{
    const struct reshape_params *p = n->params;
    int64_t dims[QC_MAX_DIMS], known = 1, total = qc_tensor_nelem(in[0]);
    int nd, neg = -1;
    struct qc_shape os;
    char s1[128], s2[128];
    enum qc_status st = qc_op_const_ints("Reshape", label, in[1], "shape", dims, QC_MAX_DIMS, &nd);
    if (st != QC_OK)
        return st;
    for (int k = 0; k < nd; k++) {
        if (dims[k] == 0 && !p->allowzero) {
            if (k >= in[0]->shape.ndim) {
                qc_log_error("%s: shape[%d] = 0 has no input dim to copy", label, k);
                return QC_ERR_SHAPE;
            }
            dims[k] = in[0]->shape.dims[k];
        }
        if (dims[k] == -1) {
            if (neg >= 0) {
                qc_log_error("%s: more than one -1 in shape", label);
                return QC_ERR_ONNX;
            }
            neg = k;
        } else if (dims[k] < 0) {
            qc_log_error("%s: invalid dim %lld in shape", label, (long long)dims[k]);
            return QC_ERR_ONNX;
        } else if (dims[k] > 0 && known > INT64_MAX / dims[k]) {
            qc_log_error("%s: shape has more than 2^63 elements", label);
            return QC_ERR_SHAPE;
        } else {
            known *= dims[k];
        }
    }
    if (neg >= 0) {
        if (known == 0 || total % known != 0)
            goto mismatch;
        dims[neg] = total / known;
    } else if (known != total) {
        goto mismatch;
    }
    out[0]->dtype = in[0]->dtype;
    out[0]->shape = qc_shape_make(nd, dims);
    return QC_OK;
mismatch:
    os = qc_shape_make(nd, dims);
    qc_log_error("%s: cannot reshape %s to %s", label,
                 qc_shape_str(&in[0]->shape, s1, sizeof(s1)), qc_shape_str(&os, s2, sizeof(s2)));
    return QC_ERR_SHAPE;
}

const struct qc_op_def qc_op_reshape = {
    .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = reshape_parse, .infer = reshape_infer,
    .cpu = { .forward = copy_forward_cpu, .backward = copy_backward_cpu },
};

/* ------------------------------------------------------ Squeeze, Unsqueeze */

/* axes: attribute before opset 13, input from 13 (optional for Squeeze). */
struct axes_params {
    bool    from_input;
    int     n_axes;                  /* attribute form; 0 = absent           */
    int64_t axes[QC_MAX_DIMS];
};

static enum qc_status axes_parse(struct qc_node *n, int64_t opset, const char *op,
                                 const char *label)
{
    char where[256];
    struct axes_params *p;
    int64_t axes[QC_MAX_DIMS];
    int na = 0;
    enum qc_status st;
    qc_op_where(where, sizeof(where), op, label);
    if (opset >= 13) {
        if (qc_attr_find(&n->attrs, "axes")) {
            qc_log_error("%s: attribute 'axes' is not valid at opset %lld (it is an input)",
                         where, (long long)opset);
            return QC_ERR_ONNX;
        }
    } else {
        if (n->n_in > 1 && n->in[1] >= 0) {
            qc_log_error("%s: input 'axes' is not valid before opset 13", where);
            return QC_ERR_ONNX;
        }
        st = qc_attr_ints(&n->attrs, where, "axes", axes, QC_MAX_DIMS, &na);
        if (st != QC_OK)
            return st;
    }
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->from_input = opset >= 13;
    p->n_axes = na;
    memcpy(p->axes, axes, (size_t)na * sizeof(axes[0]));
    return QC_OK;
}

/* Axes from the attribute or the constant input; *present is false when
 * neither gives any (Squeeze then drops every 1). */
static enum qc_status axes_get(const struct qc_node *n, const char *op, const char *label,
                               const struct qc_tensor *const *in, int64_t *axes, int *na,
                               bool *present)
{
    const struct axes_params *p = n->params;
    if (p->from_input) {
        *present = n->n_in > 1 && in[1];
        *na = 0;
        return *present ? qc_op_const_ints(op, label, in[1], "axes", axes, QC_MAX_DIMS, na) : QC_OK;
    }
    *present = p->n_axes > 0;
    *na = p->n_axes;
    memcpy(axes, p->axes, (size_t)p->n_axes * sizeof(axes[0]));
    return QC_OK;
}

static enum qc_status squeeze_parse(struct qc_node *n, int64_t opset, const char *label)
{
    return axes_parse(n, opset, "Squeeze", label);
}

static enum qc_status squeeze_infer(const struct qc_node *n, const char *label,
                                    const struct qc_tensor *const *in,
                                    struct qc_tensor *const *out)
{
    const struct qc_shape *s = &in[0]->shape;
    int64_t axes[QC_MAX_DIMS], dims[QC_MAX_DIMS];
    bool drop[QC_MAX_DIMS] = {false}, present;
    int na, nd = 0;
    enum qc_status st = axes_get(n, "Squeeze", label, in, axes, &na, &present);
    if (st != QC_OK)
        return st;
    for (int i = 0; i < na; i++) {
        int a;
        st = qc_op_norm_axis("Squeeze", label, axes[i], s->ndim, &a);
        if (st != QC_OK)
            return st;
        if (s->dims[a] != 1) {
            qc_log_error("%s: dim %d has size %lld, not 1", label, a,
                         (long long)s->dims[a]);
            return QC_ERR_SHAPE;
        }
        drop[a] = true;
    }
    for (int k = 0; k < s->ndim; k++) {
        if (present ? drop[k] : s->dims[k] == 1)
            continue;
        dims[nd++] = s->dims[k];
    }
    out[0]->dtype = in[0]->dtype;
    out[0]->shape = qc_shape_make(nd, dims);
    return QC_OK;
}

const struct qc_op_def qc_op_squeeze = {
    .n_in_min = 1, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = squeeze_parse, .infer = squeeze_infer,
    .cpu = { .forward = copy_forward_cpu, .backward = copy_backward_cpu },
};

static enum qc_status unsqueeze_parse(struct qc_node *n, int64_t opset, const char *label)
{
    if (opset >= 13 && (n->n_in < 2 || n->in[1] < 0)) {
        qc_log_error("%s: missing input 'axes'", label);
        return QC_ERR_ONNX;
    }
    return axes_parse(n, opset, "Unsqueeze", label);
}

/* Axes index the output (rank r + len(axes)); each gets a new dim of 1. */
static enum qc_status unsqueeze_infer(const struct qc_node *n, const char *label,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    const struct qc_shape *s = &in[0]->shape;
    int64_t axes[QC_MAX_DIMS], dims[QC_MAX_DIMS];
    bool add[QC_MAX_DIMS] = {false}, present;
    int na, ro, j = 0;
    enum qc_status st = axes_get(n, "Unsqueeze", label, in, axes, &na, &present);
    if (st != QC_OK)
        return st;
    ro = s->ndim + na;
    if (ro > QC_MAX_DIMS) {
        qc_log_error("%s: output rank %d exceeds %d", label, ro, QC_MAX_DIMS);
        return QC_ERR_UNSUPPORTED;
    }
    for (int i = 0; i < na; i++) {
        int a;
        st = qc_op_norm_axis("Unsqueeze", label, axes[i], ro, &a);
        if (st != QC_OK)
            return st;
        if (add[a]) {
            qc_log_error("%s: axis %d repeated", label, a);
            return QC_ERR_ONNX;
        }
        add[a] = true;
    }
    for (int k = 0; k < ro; k++)
        dims[k] = add[k] ? 1 : s->dims[j++];
    out[0]->dtype = in[0]->dtype;
    out[0]->shape = qc_shape_make(ro, dims);
    return QC_OK;
}

const struct qc_op_def qc_op_unsqueeze = {
    .n_in_min = 1, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = unsqueeze_parse, .infer = unsqueeze_infer,
    .cpu = { .forward = copy_forward_cpu, .backward = copy_backward_cpu },
};

/* -------------------------------------------------------------- Transpose */

static enum qc_status transpose_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct transpose_params *p;
    int64_t perm[QC_MAX_DIMS];
    int np = 0;
    enum qc_status st;
    (void)opset;
    st = qc_attr_ints(&n->attrs, qc_op_where(where, sizeof(where), "Transpose", label), "perm",
                      perm, QC_MAX_DIMS, &np);
    if (st != QC_OK)
        return st;
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->n_perm = np;
    memcpy(p->perm, perm, (size_t)np * sizeof(perm[0]));
    return QC_OK;
}

/* perm resolved against the input rank (default: reversed). */
enum qc_status qc_transpose_perm(const struct qc_node *n, const char *label, int r, int *perm)
{
    const struct transpose_params *p = n->params;
    bool seen[QC_MAX_DIMS] = {false};
    if (p->n_perm == 0) {
        for (int k = 0; k < r; k++)
            perm[k] = r - 1 - k;
        return QC_OK;
    }
    if (p->n_perm != r) {
        qc_log_error("%s: perm has %d values for rank %d", label, p->n_perm, r);
        return QC_ERR_SHAPE;
    }
    for (int k = 0; k < r; k++) {
        int64_t v = p->perm[k];
        if (v < 0 || v >= r || seen[v]) {
            qc_log_error("%s: perm is not a permutation of 0..%d", label, r - 1);
            return QC_ERR_ONNX;
        }
        seen[v] = true;
        perm[k] = (int)v;
    }
    return QC_OK;
}

static enum qc_status transpose_infer(const struct qc_node *n, const char *label,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    const struct qc_shape *s = &in[0]->shape;
    int perm[QC_MAX_DIMS];
    enum qc_status st = qc_transpose_perm(n, label, s->ndim, perm);
    if (st != QC_OK)
        return st;
    out[0]->dtype = in[0]->dtype;
    out[0]->shape.ndim = s->ndim;
    for (int k = 0; k < s->ndim; k++)
        out[0]->shape.dims[k] = s->dims[perm[k]];
    return QC_OK;
}

/* out[i0..ir] = in[j] where j[perm[k]] = i[k]. */
static enum qc_status transpose_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                            const struct qc_tensor *const *in,
                                            struct qc_tensor *const *out)
{
    int r = in[0]->shape.ndim, perm[QC_MAX_DIMS];
    int64_t istr[QC_MAX_DIMS], sstr[QC_MAX_DIMS], ostr[QC_MAX_DIMS];
    enum qc_status st = qc_transpose_perm(n, ctx->label, r, perm);
    if (st != QC_OK)
        return st;
    qc_shape_strides(&in[0]->shape, istr);
    qc_shape_strides(&out[0]->shape, ostr);
    for (int k = 0; k < r; k++)
        sstr[k] = istr[perm[k]];
    if (qc_tensor_nelem(out[0]) > 0)
        qc_copy_box(qc_dtype_size(in[0]->dtype), r, out[0]->shape.dims, in[0]->data, sstr,
                 out[0]->data, ostr);
    return QC_OK;
}

/* y[i] = x[j], j[perm[k]] = i[k]: dx[j] += dy[i].  Walked in dx order
 * (contiguous accumulation); input dim d reads dy with the output stride of
 * the position k where perm[k] = d. */
static enum qc_status transpose_backward_cpu(const struct qc_node *n,
                                             const struct qc_op_ctx *ctx,
                                             const struct qc_tensor *const *in,
                                             const struct qc_tensor *const *out,
                                             const struct qc_tensor *const *dout,
                                             struct qc_tensor *const *din)
{
    int r = in[0]->shape.ndim, perm[QC_MAX_DIMS];
    int64_t istr[QC_MAX_DIMS], ostr[QC_MAX_DIMS], sstr[QC_MAX_DIMS];
    enum qc_status st;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = qc_transpose_perm(n, ctx->label, r, perm);
    if (st != QC_OK)
        return st;
    qc_shape_strides(&in[0]->shape, istr);
    qc_shape_strides(&out[0]->shape, ostr);
    for (int k = 0; k < r; k++)
        sstr[perm[k]] = ostr[k];
    acc_box(r, in[0]->shape.dims, qc_tensor_f32(dout[0]), sstr, qc_tensor_f32(din[0]), istr,
            nthreads(ctx));
    return QC_OK;
}

const struct qc_op_def qc_op_transpose = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = transpose_parse, .infer = transpose_infer,
    .cpu = { .forward = transpose_forward_cpu, .backward = transpose_backward_cpu },
};

/* ----------------------------------------------------------------- Concat */

static enum qc_status concat_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct concat_params *p;
    int64_t axis;
    enum qc_status st;
    (void)opset;
    qc_op_where(where, sizeof(where), "Concat", label);
    if (!qc_attr_find(&n->attrs, "axis")) {
        qc_log_error("%s: missing attribute 'axis'", where);
        return QC_ERR_ONNX;
    }
    st = qc_attr_int(&n->attrs, where, "axis", 0, &axis);
    if (st != QC_OK)
        return st;
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->axis = axis;
    return QC_OK;
}

static enum qc_status concat_infer(const struct qc_node *n, const char *label,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    const struct concat_params *p = n->params;
    const struct qc_shape *s0;
    struct qc_shape os;
    int axis;
    enum qc_status st;
    char s1[128], s2[128];
    for (int i = 0; i < n->n_in; i++) {
        if (!in[i]) {
            qc_log_error("%s: input %d is missing", label, i);
            return QC_ERR_ONNX;
        }
    }
    s0 = &in[0]->shape;
    st = qc_op_norm_axis("Concat", label, p->axis, s0->ndim, &axis);
    if (st != QC_OK)
        return st;
    os = *s0;
    os.dims[axis] = 0;
    for (int i = 0; i < n->n_in; i++) {
        const struct qc_shape *s = &in[i]->shape;
        bool ok = s->ndim == s0->ndim && in[i]->dtype == in[0]->dtype;
        for (int k = 0; ok && k < s->ndim; k++)
            ok = k == axis || s->dims[k] == s0->dims[k];
        if (!ok) {
            qc_log_error("%s: input %d (%s %s) does not fit input 0 (%s %s) on axis %d",
                         label, i, qc_dtype_name(in[i]->dtype), qc_shape_str(s, s1, sizeof(s1)),
                         qc_dtype_name(in[0]->dtype), qc_shape_str(s0, s2, sizeof(s2)), axis);
            return QC_ERR_SHAPE;
        }
        os.dims[axis] += s->dims[axis];
    }
    out[0]->dtype = in[0]->dtype;
    out[0]->shape = os;
    return QC_OK;
}

/* Viewed as [outer, d_i * inner] blocks: output row o is the concatenation
 * of every input's row o. */
static enum qc_status concat_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                         const struct qc_tensor *const *in,
                                         struct qc_tensor *const *out)
{
    const struct concat_params *p = n->params;
    const struct qc_shape *os = &out[0]->shape;
    size_t esize = qc_dtype_size(out[0]->dtype);
    int64_t outer = 1, inner = 1;
    unsigned char *dst = out[0]->data;
    int axis;
    enum qc_status st = qc_op_norm_axis("Concat", ctx->label, p->axis, os->ndim, &axis);
    if (st != QC_OK)
        return st;
    for (int k = 0; k < axis; k++)
        outer *= os->dims[k];
    for (int k = axis + 1; k < os->ndim; k++)
        inner *= os->dims[k];
    for (int64_t o = 0; o < outer; o++) {
        for (int i = 0; i < n->n_in; i++) {
            size_t nb = (size_t)(in[i]->shape.dims[axis] * inner) * esize;
            if (!nb)
                continue;
            memcpy(dst, (const unsigned char *)in[i]->data + (size_t)o * nb, nb);
            dst += nb;
        }
    }
    return QC_OK;
}

/* Input i is the slice [off_i, off_i + d_i) of the output on the axis:
 * dx_i[o, t] += dy[o, off_i * inner + t] for every outer row o. */
static enum qc_status concat_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          const struct qc_tensor *const *out,
                                          const struct qc_tensor *const *dout,
                                          struct qc_tensor *const *din)
{
    const struct concat_params *p = n->params;
    const struct qc_shape *os = &out[0]->shape;
    int64_t outer = 1, inner = 1, row, off = 0;
    int axis;
    enum qc_status st;
    if (!dout[0])
        return QC_OK;
    st = qc_op_norm_axis("Concat", ctx->label, p->axis, os->ndim, &axis);
    if (st != QC_OK)
        return st;
    for (int k = 0; k < axis; k++)
        outer *= os->dims[k];
    for (int k = axis + 1; k < os->ndim; k++)
        inner *= os->dims[k];
    row = os->dims[axis] * inner;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = in[i]->shape.dims[axis] * inner;
        if (din[i]) {
            /* a box [outer, len]: dy rows of stride row, dx rows of stride len */
            const int64_t cnt[2] = { outer, len }, sstr[2] = { row, 1 }, dstr[2] = { len, 1 };
            acc_box(2, cnt, qc_tensor_f32(dout[0]) + off, sstr, qc_tensor_f32(din[i]), dstr,
                    nthreads(ctx));
        }
        off += len;
    }
    return QC_OK;
}

const struct qc_op_def qc_op_concat = {
    .n_in_min = 1, .n_in_max = INT_MAX, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = concat_parse, .infer = concat_infer,
    .cpu = { .forward = concat_forward_cpu, .backward = concat_backward_cpu },
};

/* -------------------------------------------------------------------- Pad */

static enum qc_status pad_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct pad_params *p;
    const char *mode;
    int64_t pads[2 * QC_MAX_DIMS];
    int np = 0;
    float value = 0.0f;
    enum qc_status st;
    qc_op_where(where, sizeof(where), "Pad", label);
    st = qc_attr_string(&n->attrs, where, "mode", "constant", &mode);
    if (st != QC_OK)
        return st;
    if (strcmp(mode, "constant") != 0) {
        qc_log_error("%s: mode '%s' is not supported (only 'constant')", where, mode);
        return QC_ERR_UNSUPPORTED;
    }
    if (opset < 11) {
        if (!qc_attr_find(&n->attrs, "pads")) {
            qc_log_error("%s: missing attribute 'pads'", where);
            return QC_ERR_ONNX;
        }
        st = qc_attr_ints(&n->attrs, where, "pads", pads, 2 * QC_MAX_DIMS, &np);
        if (st == QC_OK)
            st = qc_attr_float(&n->attrs, where, "value", 0.0f, &value);
        if (st != QC_OK)
            return st;
    } else {
        if (qc_attr_find(&n->attrs, "pads") || qc_attr_find(&n->attrs, "value")) {
            qc_log_error("%s: attributes 'pads'/'value' are not valid at opset %lld "
                         "(they are inputs)", where, (long long)opset);
            return QC_ERR_ONNX;
        }
        if (n->n_in < 2 || n->in[1] < 0) {
            qc_log_error("%s: missing input 'pads'", where);
            return QC_ERR_ONNX;
        }
        if (opset < 18 && n->n_in > 3 && n->in[3] >= 0) {
            qc_log_error("%s: input 'axes' is not valid before opset 18", where);
            return QC_ERR_ONNX;
        }
    }
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->from_input = opset >= 11;
    p->n_pads = np;
    memcpy(p->pads, pads, (size_t)np * sizeof(pads[0]));
    p->value = value;
    return QC_OK;
}

/* Begin/end pads per dim of the input (rank r): pads = [b_1..b_n, e_1..e_n]
 * over all dims, or over the dims named by the axes input. */
enum qc_status qc_pad_resolve(const struct qc_node *n, const char *label,
                              const struct qc_tensor *const *in, int64_t *begin, int64_t *end)
{
    const struct pad_params *p = n->params;
    int r = in[0]->shape.ndim, np, na;
    int64_t pads[2 * QC_MAX_DIMS], axes[QC_MAX_DIMS];
    enum qc_status st;
    for (int k = 0; k < r; k++)
        begin[k] = end[k] = 0;
    if (!p->from_input) {
        np = p->n_pads;
        memcpy(pads, p->pads, (size_t)np * sizeof(pads[0]));
    } else {
        st = qc_op_const_ints("Pad", label, in[1], "pads", pads, 2 * QC_MAX_DIMS, &np);
        if (st != QC_OK)
            return st;
    }
    if (p->from_input && n->n_in > 3 && in[3]) {
        st = qc_op_const_ints("Pad", label, in[3], "axes", axes, QC_MAX_DIMS, &na);
        if (st != QC_OK)
            return st;
    } else {
        na = r;
        for (int k = 0; k < r; k++)
            axes[k] = k;
    }
    if (np != 2 * na) {
        qc_log_error("%s: %d pads, expected %d (begin and end per axis)", label, np,
                     2 * na);
        return QC_ERR_SHAPE;
    }
    for (int i = 0; i < na; i++) {
        int a;
        st = qc_op_norm_axis("Pad", label, axes[i], r, &a);
        if (st != QC_OK)
            return st;
        begin[a] = pads[i];
        end[a] = pads[na + i];
    }
    return QC_OK;
}

static enum qc_status pad_infer(const struct qc_node *n, const char *label,
                                const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    const struct qc_shape *s = &in[0]->shape;
    int64_t b[QC_MAX_DIMS], e[QC_MAX_DIMS];
    enum qc_status st = qc_pad_resolve(n, label, in, b, e);
    if (st != QC_OK)
        return st;
    if (n->n_in > 2 && in[2]) {
        if (in[2]->dtype != in[0]->dtype || qc_tensor_nelem(in[2]) > 1) {
            qc_log_error("%s: constant_value must be a %s scalar", label,
                         qc_dtype_name(in[0]->dtype));
            return QC_ERR_ONNX;
        }
    }
    out[0]->dtype = in[0]->dtype;
    out[0]->shape = *s;
    for (int k = 0; k < s->ndim; k++) {
        const int64_t lim = (int64_t)1 << 40;   /* keeps the sum below from overflowing */
        int64_t d;
        if (b[k] < -lim || b[k] > lim || e[k] < -lim || e[k] > lim) {
            qc_log_error("%s: pads %lld,%lld on dim %d are out of range", label,
                         (long long)b[k], (long long)e[k], k);
            return QC_ERR_SHAPE;
        }
        d = s->dims[k] + b[k] + e[k];
        if (d < 0) {
            qc_log_error("%s: pads %lld,%lld crop dim %d of size %lld below 0", label,
                         (long long)b[k], (long long)e[k], k, (long long)s->dims[k]);
            return QC_ERR_SHAPE;
        }
        out[0]->shape.dims[k] = d;
    }
    return QC_OK;
}

/* One element of the fill value in the data's dtype. */
static void pad_fill_value(enum qc_dtype dt, double v, unsigned char *buf)
{
    switch (dt) {
    case QC_DTYPE_F32: { float x = (float)v; memcpy(buf, &x, 4); break; }
    case QC_DTYPE_F64: memcpy(buf, &v, 8); break;
    case QC_DTYPE_BOOL: buf[0] = v != 0.0; break;
    case QC_DTYPE_U8: buf[0] = (uint8_t)(int64_t)v; break;
    case QC_DTYPE_I8: { int8_t x = (int8_t)(int64_t)v; memcpy(buf, &x, 1); break; }
    case QC_DTYPE_U16: { uint16_t x = (uint16_t)(int64_t)v; memcpy(buf, &x, 2); break; }
    case QC_DTYPE_I16: { int16_t x = (int16_t)(int64_t)v; memcpy(buf, &x, 2); break; }
    case QC_DTYPE_U32: { uint32_t x = (uint32_t)(int64_t)v; memcpy(buf, &x, 4); break; }
    case QC_DTYPE_I32: { int32_t x = (int32_t)(int64_t)v; memcpy(buf, &x, 4); break; }
    case QC_DTYPE_U64: { uint64_t x = (uint64_t)(int64_t)v; memcpy(buf, &x, 8); break; }
    case QC_DTYPE_I64: { int64_t x = (int64_t)v; memcpy(buf, &x, 8); break; }
    case QC_DTYPE_U4: buf[0] = (uint8_t)((int64_t)v & 0xF); break;
    case QC_DTYPE_I4: { int8_t x = (int8_t)(int64_t)v; memcpy(buf, &x, 1); break; }
    case QC_DTYPE_UNDEFINED: break;
    }
}

/* out = fill; then out[i + begin] = in[i] over the part of the input that
 * survives cropping (negative pads). */
static enum qc_status pad_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    const struct pad_params *p = n->params;
    const struct qc_shape *is = &in[0]->shape;
    size_t esize = qc_dtype_size(in[0]->dtype);
    int64_t b[QC_MAX_DIMS], e[QC_MAX_DIMS], istr[QC_MAX_DIMS], ostr[QC_MAX_DIMS];
    int64_t cnt[QC_MAX_DIMS], so = 0, dof = 0, total = qc_tensor_nelem(out[0]);
    unsigned char fill[8] = {0}, *dst = out[0]->data;
    enum qc_status st = qc_pad_resolve(n, ctx->label, in, b, e);
    if (st != QC_OK)
        return st;
    if (n->n_in > 2 && in[2] && qc_tensor_nelem(in[2]) > 0)
        memcpy(fill, in[2]->data, esize);
    else if (!p->from_input)
        pad_fill_value(in[0]->dtype, p->value, fill);
    for (int64_t i = 0; i < total; i++)
        qc_copy_elem(dst + (size_t)i * esize, fill, esize);
    qc_shape_strides(is, istr);
    qc_shape_strides(&out[0]->shape, ostr);
    for (int k = 0; k < is->ndim; k++) {
        /* input index i lands at i + b; keep 0 <= i < d and 0 <= i + b < d + b + e */
        int64_t i0 = QC_MAX(0, -b[k]);
        int64_t i1 = QC_MIN(is->dims[k], is->dims[k] + e[k]);
        cnt[k] = i1 - i0;
        if (cnt[k] <= 0)
            return QC_OK;
        so += i0 * istr[k];
        dof += (i0 + b[k]) * ostr[k];
    }
    qc_copy_box(esize, is->ndim, cnt, (const unsigned char *)in[0]->data + (size_t)so * esize,
             istr, dst + (size_t)dof * esize, ostr);
    return QC_OK;
}

/* y = fill outside, x (cropped by negative pads) inside: dx += the interior
 * box of dy (elements of x cropped away get nothing); a float
 * constant_value input that needs a gradient gets sum(dy) - sum(interior). */
static enum qc_status pad_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       const struct qc_tensor *const *out,
                                       const struct qc_tensor *const *dout,
                                       struct qc_tensor *const *din)
{
    const struct qc_shape *is = &in[0]->shape;
    int64_t b[QC_MAX_DIMS], e[QC_MAX_DIMS], istr[QC_MAX_DIMS], ostr[QC_MAX_DIMS];
    int64_t cnt[QC_MAX_DIMS], so = 0, dof = 0, inside = 1;
    const float *dy;
    bool dval = n->n_in > 2 && din[2] && in[2] && in[2]->dtype == QC_DTYPE_F32 &&
                qc_tensor_nelem(in[2]) == 1;
    enum qc_status st;
    if (!dout[0] || (!din[0] && !dval))
        return QC_OK;
    st = qc_pad_resolve(n, ctx->label, in, b, e);
    if (st != QC_OK)
        return st;
    dy = qc_tensor_f32(dout[0]);
    qc_shape_strides(is, istr);
    qc_shape_strides(&out[0]->shape, ostr);
    for (int k = 0; k < is->ndim; k++) {
        int64_t i0 = QC_MAX(0, -b[k]);
        int64_t i1 = QC_MIN(is->dims[k], is->dims[k] + e[k]);
        cnt[k] = QC_MAX(0, i1 - i0);
        inside *= cnt[k];
        so += i0 * istr[k];
        dof += (i0 + b[k]) * ostr[k];
    }
    if (din[0] && inside > 0)
        acc_box(is->ndim, cnt, dy + dof, ostr, qc_tensor_f32(din[0]) + so, istr, nthreads(ctx));
    if (dval) {
        /* d(value) = sum of dy over the padded positions */
        int64_t total = qc_tensor_nelem(out[0]), at[QC_MAX_DIMS] = { 0 };
        double sum = 0.0;
        for (int64_t i = 0; i < total; i++) {
            bool pad = false;
            /* x's kept box sits at [max(0, b), max(0, b) + cnt) in y */
            for (int k = 0; k < is->ndim; k++)
                pad = pad || at[k] < QC_MAX(0, b[k]) || at[k] >= QC_MAX(0, b[k]) + cnt[k];
            if (pad)
                sum += dy[i];
            for (int k = is->ndim - 1; k >= 0; k--) {
                if (++at[k] < out[0]->shape.dims[k])
                    break;
                at[k] = 0;
            }
        }
        qc_tensor_f32(din[2])[0] += (float)sum;
    }
    return QC_OK;
}

const struct qc_op_def qc_op_pad = {
    .n_in_min = 1, .n_in_max = 4, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = pad_parse, .infer = pad_infer,
    .cpu = { .forward = pad_forward_cpu, .backward = pad_backward_cpu },
};
