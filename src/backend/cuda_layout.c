/*
 * cuda_layout.c - the CUDA kernels (struct qc_kernel) of the byte-moving
 * ops: Identity, Flatten, Reshape, Squeeze, Unsqueeze (a device copy; the
 * backward adds dy), Transpose, Concat and Pad (strided box copies and
 * accumulations): the C side of kernels/elem.cu's copy kernels, with the
 * semantics of src/ops/layout.c and its helpers (src/ops/params_layout.h).
 * Shapes, axes and pads are host constants, Pad's constant_value a device
 * constant.  The copies take 4- and 8-byte elements; Pad and the backwards
 * are float32.
 */
#include <config.h>

#include <float.h>
#include <stdint.h>
#include <string.h>

#include "ops/params_layout.h"
#include "cuda_op_util.h"
#include "cuda_kernels.h"

/* ---- Identity, Flatten, Reshape, Squeeze, Unsqueeze ---------------------------------- */

/* y = x, any dtype (a device-to-device copy): the output is the input's bytes. */
enum qc_status qc_cuda_copy_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    (void)n;
    return dev_copy(ctx, out[0]->data, in[0]->data, qc_tensor_nbytes(in[0]));
}

/* dx += dy (y is x's bytes) */
enum qc_status qc_cuda_copy_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                const struct qc_tensor *const *in,
                                const struct qc_tensor *const *out,
                                const struct qc_tensor *const *dout, struct qc_tensor *const *din)
{
    (void)n;
    (void)in;
    (void)out;
    if (!din[0] || !dout[0])
        return QC_OK;
    if (!need_f32(ctx, din[0], "gradient"))
        return QC_ERR_UNSUPPORTED;
    return acc_whole(ctx, dout[0], din[0]);
}


/* ---- Transpose, Concat, Pad ----------------------------------------------------------- */

/* out[i] = in[j], j[perm[k]] = i[k] */
enum qc_status qc_cuda_transpose_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    int r = in[0]->shape.ndim, perm[QC_MAX_DIMS];
    int64_t istr[QC_MAX_DIMS];
    struct qc_k_box box;
    enum qc_status st = qc_transpose_perm(n, ctx->label, r, perm);
    if (st != QC_OK)
        return st;
    if (r == 0)
        return dev_copy(ctx, out[0]->data, in[0]->data, qc_tensor_nbytes(in[0]));
    memset(&box, 0, sizeof(box));
    box.nd = r;
    qc_shape_strides(&in[0]->shape, istr);
    qc_shape_strides(&out[0]->shape, box.dstr);
    for (int k = 0; k < r; k++) {
        box.cnt[k] = out[0]->shape.dims[k];
        box.sstr[k] = istr[perm[k]];
    }
    return copy_box(ctx, qc_dtype_size(in[0]->dtype), box, in[0]->data, out[0]->data);
}

/* y[i] = x[j], j[perm[k]] = i[k]: dx[j] += dy[i], walked in dx order */
enum qc_status qc_cuda_transpose_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     const struct qc_tensor *const *out,
                                     const struct qc_tensor *const *dout,
                                     struct qc_tensor *const *din)
{
    int r = in[0]->shape.ndim, perm[QC_MAX_DIMS];
    int64_t ostr[QC_MAX_DIMS];
    struct qc_k_box box;
    enum qc_status st;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = qc_transpose_perm(n, ctx->label, r, perm);
    if (st != QC_OK)
        return st;
    if (r == 0)
        return acc_whole(ctx, dout[0], din[0]);
    memset(&box, 0, sizeof(box));
    box.nd = r;
    qc_shape_strides(&in[0]->shape, box.dstr);
    qc_shape_strides(&out[0]->shape, ostr);
    for (int k = 0; k < r; k++) {
        box.cnt[k] = in[0]->shape.dims[k];
        box.sstr[perm[k]] = ostr[k];
    }
    K_CHECK(ctx, qc_k_acc_box_f32(box, qc_tensor_f32(dout[0]), qc_tensor_f32(din[0]), 1.0f));
    return QC_OK;
}

/* outer × inner around the concat axis of the output */
static enum qc_status concat_geometry(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_shape *os, int *axis, int64_t *outer,
                                      int64_t *inner)
{
    const struct concat_params *p = n->params;
    enum qc_status st = qc_op_norm_axis("Concat", ctx->label, p->axis, os->ndim, axis);
    if (st != QC_OK)
        return st;
    *outer = *inner = 1;
    for (int k = 0; k < *axis; k++)
        *outer *= os->dims[k];
    for (int k = *axis + 1; k < os->ndim; k++)
        *inner *= os->dims[k];
    return QC_OK;
}

/* Viewed as [outer, d_i·inner] blocks: output row o is every input's row o in turn. */
enum qc_status qc_cuda_concat_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  struct qc_tensor *const *out)
{
    size_t esize = qc_dtype_size(out[0]->dtype);
    int64_t outer, inner, row, off = 0;
    int axis;
    enum qc_status st = concat_geometry(n, ctx, &out[0]->shape, &axis, &outer, &inner);
    if (st != QC_OK)
        return st;
    row = out[0]->shape.dims[axis] * inner;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = in[i]->shape.dims[axis] * inner;
        struct qc_k_box box;
        memset(&box, 0, sizeof(box));
        box.nd = 2;
        box.cnt[0] = outer;
        box.cnt[1] = len;
        box.sstr[0] = len;
        box.sstr[1] = 1;
        box.dstr[0] = row;
        box.dstr[1] = 1;
        st = copy_box(ctx, esize, box, in[i]->data, (char *)out[0]->data + (size_t)off * esize);
        if (st != QC_OK)
            return st;
        off += len;
    }
    return QC_OK;
}

/* Input i is the slice [off_i, off_i + d_i) of the output on the axis:
 * dx_i[o, t] += dy[o, off_i·inner + t] */
enum qc_status qc_cuda_concat_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  const struct qc_tensor *const *out,
                                  const struct qc_tensor *const *dout,
                                  struct qc_tensor *const *din)
{
    int64_t outer, inner, row, off = 0;
    int axis;
    enum qc_status st;
    if (!dout[0])
        return QC_OK;
    st = concat_geometry(n, ctx, &out[0]->shape, &axis, &outer, &inner);
    if (st != QC_OK)
        return st;
    row = out[0]->shape.dims[axis] * inner;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = in[i]->shape.dims[axis] * inner;
        if (din[i]) {
            struct qc_k_box box;
            memset(&box, 0, sizeof(box));
            box.nd = 2;
            box.cnt[0] = outer;
            box.cnt[1] = len;
            box.sstr[0] = row;
            box.sstr[1] = 1;
            box.dstr[0] = len;
            box.dstr[1] = 1;
            K_CHECK(ctx, qc_k_acc_box_f32(box, qc_tensor_f32(dout[0]) + off,
                                          qc_tensor_f32(din[i]), 1.0f));
        }
        off += len;
    }
    return QC_OK;
}

/* The box of x that survives in y (negative pads crop): counts, and the offsets of its first
 * element in x (*so) and y (*dof); *inside = its element count. */
static void pad_box(const struct qc_shape *is, const struct qc_shape *os, const int64_t *b,
                    const int64_t *e, struct qc_k_box *box, int64_t *so, int64_t *dof,
                    int64_t *inside)
{
    int64_t istr[QC_MAX_DIMS], ostr[QC_MAX_DIMS];
    memset(box, 0, sizeof(*box));
    box->nd = is->ndim;
    qc_shape_strides(is, istr);
    qc_shape_strides(os, ostr);
    *so = *dof = 0;
    *inside = 1;
    for (int k = 0; k < is->ndim; k++) {
        /* input index i lands at i + b; keep 0 <= i < d and 0 <= i + b < d + b + e */
        int64_t i0 = QC_MAX(0, -b[k]), i1 = QC_MIN(is->dims[k], is->dims[k] + e[k]);
        box->cnt[k] = QC_MAX(0, i1 - i0);
        box->sstr[k] = istr[k];
        box->dstr[k] = ostr[k];
        *inside *= box->cnt[k];
        *so += i0 * istr[k];
        *dof += (i0 + b[k]) * ostr[k];
    }
}

/* y = fill; then y[i + begin] = x[i] over the part of x that survives cropping. */
enum qc_status qc_cuda_pad_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                               const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    const struct pad_params *p = n->params;
    int64_t b[QC_MAX_DIMS], e[QC_MAX_DIMS], so, dof, inside;
    struct qc_k_box box;
    const float *v_p = NULL;
    float v = 0.0f;
    enum qc_status st;
    if (!need_f32(ctx, in[0], "Pad input"))
        return QC_ERR_UNSUPPORTED;
    st = qc_pad_resolve(n, ctx->label, in, b, e);
    if (st != QC_OK)
        return st;
    if (n->n_in > 2 && in[2] && qc_tensor_nelem(in[2]) > 0)
        v_p = qc_tensor_f32(in[2]);
    else if (!p->from_input)
        v = p->value;
    K_CHECK(ctx, qc_k_fill_value_f32(qc_tensor_f32(out[0]), v, v_p, qc_tensor_nelem(out[0])));
    pad_box(&in[0]->shape, &out[0]->shape, b, e, &box, &so, &dof, &inside);
    if (inside <= 0)
        return QC_OK;
    return copy_box(ctx, 4, box, qc_tensor_f32(in[0]) + so, qc_tensor_f32(out[0]) + dof);
}

/* y = fill outside, x (cropped) inside: dx += the interior box of dy; a float
 * constant_value input that needs a gradient gets Σ dy − Σ interior dy (two gather
 * reductions accumulated into it). */
enum qc_status qc_cuda_pad_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                               const struct qc_tensor *const *in,
                               const struct qc_tensor *const *out,
                               const struct qc_tensor *const *dout, struct qc_tensor *const *din)
{
    int64_t b[QC_MAX_DIMS], e[QC_MAX_DIMS], so, dof, inside;
    struct qc_k_box box;
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
    pad_box(&in[0]->shape, &out[0]->shape, b, e, &box, &so, &dof, &inside);
    if (din[0] && inside > 0) {
        struct qc_k_box back = box;
        for (int k = 0; k < box.nd; k++) {
            back.sstr[k] = box.dstr[k];
            back.dstr[k] = box.sstr[k];
        }
        K_CHECK(ctx, qc_k_acc_box_f32(back, dy + dof, qc_tensor_f32(din[0]) + so, 1.0f));
    }
    if (dval) {
        struct qc_k_red r;
        memset(&r, 0, sizeof(r));
        r.nr = 1;
        r.rdims[0] = qc_tensor_nelem(out[0]);
        r.ry[0] = 1;
        K_CHECK(ctx, qc_k_reduce(r, QC_KE_TERM_DY, dy, NULL, NULL, qc_tensor_f32(din[2]), 1,
                                 1.0));
        if (inside > 0) {
            r.nr = box.nd;
            for (int k = 0; k < box.nd; k++) {
                r.rdims[k] = box.cnt[k];
                r.ry[k] = box.dstr[k];
            }
            K_CHECK(ctx, qc_k_reduce(r, QC_KE_TERM_NEG_DY, dy + dof, NULL, NULL,
                                     qc_tensor_f32(din[2]), 1, 1.0));
        }
    }
    return QC_OK;
}
