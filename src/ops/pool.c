/*
 * pool.c - pooling and reductions: MaxPool, AveragePool,
 * GlobalAveragePool, GlobalMaxPool, ReduceMean and ReduceSum.
 *
 * MaxPool/AveragePool take [N, C, D1..Dk] float32 with k = 1, 2 or 3 spatial
 * dims; internally every problem is 3D with leading unit dims.  Per spatial
 * dim, with effective kernel ek = (k - 1) * dilation + 1:
 *   explicit pads:  out = floor_or_ceil((in + pad_begin + pad_end - ek) / stride) + 1,
 *                   and with ceil_mode the last window must start inside the
 *                   input or the begin padding: if (out - 1) * stride >= in + pad_begin,
 *                   out -= 1 (ONNX Runtime / PyTorch rule);
 *   SAME_UPPER/LOWER: total pad max(0, (ceil(in / stride) - 1) * stride + k - in)
 *                   (undilated k, as ONNX Runtime does), the odd one at the end
 *                   (UPPER) or the beginning (LOWER), then out as for explicit
 *                   pads without ceil_mode: ceil(in / stride) when dilation is 1;
 *   VALID:          out = floor((in - ek) / stride) + 1, no pads.
 * MaxPool ignores padded positions; its optional Indices output holds the
 * flat row-major index into X (batch and channel included) of the first
 * maximum, as ONNX Runtime does (storage_order 0 only).  AveragePool divides
 * by the number of window positions inside X, or with count_include_pad by
 * those inside the padded extent [-pad_begin, in + pad_end).
 *
 * MaxPool also takes uint8/int8 (opset 12; integer-only exports), forward
 * only, by the general window loop.
 *
 * ReduceMean averages over `axes` (attribute before opset 18, optional
 * constant input from 18); ReduceSum sums (axes input from opset 13) on
 * float32, and on int32/int64 exactly, wrapping in the element type as ONNX
 * Runtime does (forward only).  Empty axes reduce everything unless
 * noop_with_empty_axes.  A contiguous run of reduced dims (H,W of NCHW) is a
 * fast path; other axis sets walk the reduced dims with an odometer.  Sums
 * are accumulated in double.
 *
 * Backward (dx += ...): MaxPool sends dy to the first maximum of each window,
 * which a training forward records in the node's saved buffer (int32 offset
 * in the image plane per output; -1 for a window entirely in the padding);
 * without it (an inference forward) the arg-max is recomputed from x.
 * GlobalMaxPool records one offset per plane the same way.  AveragePool
 * spreads dy / count over the window's input positions, GlobalAveragePool
 * and ReduceMean spread dy / (reduced size) over what they averaged.  Pools
 * run one image plane per iteration, so no two threads write one element of
 * dx and the result does not depend on the thread count.
 */
#include <config.h>

#include "op.h"
#include "params_pool.h"

#include <float.h>
#include <stdint.h>
#include <string.h>

#include "ir/attr.h"
#include "util/log.h"

static int nthreads(const struct qc_op_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : 1;
}

static enum qc_status read_ints(const struct qc_node *n, const char *label, const char *name,
                                int want, int64_t def, int64_t *v)
{
    int cnt;
    enum qc_status st = qc_attr_ints(&n->attrs, label, name, v, 2 * POOL_MAX_SP, &cnt);
    if (st != QC_OK)
        return st;
    if (cnt == 0) {
        for (int i = 0; i < want; i++)
            v[i] = def;
        return QC_OK;
    }
    if (cnt != want) {
        qc_log_error("%s: attribute '%s' has %d values, expected %d", label, name, cnt, want);
        return QC_ERR_ONNX;
    }
    return QC_OK;
}

static enum qc_status pool_parse_common(struct qc_node *n, int64_t opset, const char *label,
                                        bool is_max)
{
    struct pool_params *p;
    int64_t k[2 * POOL_MAX_SP], v;
    const char *ap;
    int cnt;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->is_max = is_max;
    st = qc_attr_ints(&n->attrs, label, "kernel_shape", k, 2 * POOL_MAX_SP, &cnt);
    if (st != QC_OK)
        return st;
    if (cnt < 1 || cnt > POOL_MAX_SP) {
        qc_log_error("%s: kernel_shape has %d values, supported 1 to %d spatial dims", label,
                     cnt, POOL_MAX_SP);
        return cnt < 1 ? QC_ERR_ONNX : QC_ERR_UNSUPPORTED;
    }
    p->nsp = cnt;
    memcpy(p->kernel, k, (size_t)cnt * sizeof(*k));
    st = read_ints(n, label, "strides", cnt, 1, k);
    if (st != QC_OK)
        return st;
    memcpy(p->stride, k, (size_t)cnt * sizeof(*k));
    st = read_ints(n, label, "dilations", cnt, 1, k);
    if (st != QC_OK)
        return st;
    memcpy(p->dil, k, (size_t)cnt * sizeof(*k));
    st = read_ints(n, label, "pads", 2 * cnt, 0, p->pads);
    if (st != QC_OK)
        return st;
    for (int i = 0; i < cnt; i++) {
        if (p->kernel[i] < 1 || p->stride[i] < 1 || p->dil[i] < 1 || p->pads[i] < 0 ||
            p->pads[cnt + i] < 0) {
            qc_log_error("%s: invalid kernel_shape/strides/dilations/pads value on spatial "
                         "dim %d", label, i);
            return QC_ERR_ONNX;
        }
        if (p->dil[i] != 1 && !is_max && opset < 19) {
            qc_log_error("%s: AveragePool dilations need opset 19 (model opset %lld)", label,
                         (long long)opset);
            return QC_ERR_ONNX;
        }
    }
    st = qc_attr_string(&n->attrs, label, "auto_pad", "NOTSET", &ap);
    if (st != QC_OK)
        return st;
    if (strcmp(ap, "NOTSET") == 0) {
        p->auto_pad = PAD_NOTSET;
    } else if (strcmp(ap, "SAME_UPPER") == 0) {
        p->auto_pad = PAD_SAME_UPPER;
    } else if (strcmp(ap, "SAME_LOWER") == 0) {
        p->auto_pad = PAD_SAME_LOWER;
    } else if (strcmp(ap, "VALID") == 0) {
        p->auto_pad = PAD_VALID;
    } else {
        qc_log_error("%s: auto_pad '%s' is not supported", label, ap);
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_attr_int(&n->attrs, label, "ceil_mode", 0, &v);
    if (st != QC_OK)
        return st;
    p->ceil_mode = v != 0;
    if (is_max) {
        st = qc_attr_int(&n->attrs, label, "storage_order", 0, &v);
        if (st != QC_OK)
            return st;
        if (v != 0) {
            qc_log_error("%s: MaxPool storage_order=%lld is not supported (only 0)", label,
                         (long long)v);
            return QC_ERR_UNSUPPORTED;
        }
    } else {
        st = qc_attr_int(&n->attrs, label, "count_include_pad", 0, &v);
        if (st != QC_OK)
            return st;
        p->count_include_pad = v != 0;
    }
    return QC_OK;
}

static enum qc_status maxpool_parse(struct qc_node *n, int64_t opset, const char *label)
{
    return pool_parse_common(n, opset, label, true);
}

static enum qc_status avgpool_parse(struct qc_node *n, int64_t opset, const char *label)
{
    return pool_parse_common(n, opset, label, false);
}

/* Output size and pads of every spatial dim (see the file comment). */
enum qc_status qc_pool_geometry(const struct pool_params *p, const char *label,
                                const struct qc_shape *x, struct pool_geom *g)
{
    int off = POOL_MAX_SP - p->nsp;
    char s[128];
    if (x->ndim != p->nsp + 2) {
        qc_log_error("%s: input shape %s does not match a %d-D kernel", label,
                     qc_shape_str(x, s, sizeof(s)), p->nsp);
        return QC_ERR_SHAPE;
    }
    g->nc = x->dims[0] * x->dims[1];
    for (int i = 0; i < POOL_MAX_SP; i++) {
        int j = i - off;
        int64_t in, k, st, d, pb = 0, pe = 0, ek, out;
        if (j < 0) {
            g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
            g->pb[i] = g->pe[i] = 0;
            continue;
        }
        in = x->dims[2 + j];
        k = p->kernel[j];
        st = p->stride[j];
        d = p->dil[j];
        ek = (k - 1) * d + 1;
        switch (p->auto_pad) {
        case PAD_NOTSET:
            pb = p->pads[j];
            pe = p->pads[p->nsp + j];
            if (in + pb + pe < ek) {
                out = 0;
                break;
            }
            if (p->ceil_mode) {
                out = (in + pb + pe - ek + st - 1) / st + 1;
                if ((out - 1) * st >= in + pb)
                    out--;
            } else {
                out = (in + pb + pe - ek) / st + 1;
            }
            break;
        case PAD_VALID:
            out = in >= ek ? (in - ek) / st + 1 : 0;
            break;
        default: {
            /* ONNX Runtime's rule: the pad is sized for the undilated kernel,
             * then the output follows from the dilated one (same as the spec
             * when dilation is 1) */
            int64_t total = QC_MAX(0, ((in + st - 1) / st - 1) * st + k - in);
            pb = p->auto_pad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
            out = in + total >= ek ? (in + total - ek) / st + 1 : 0;
            break;
        }
        }
        if (out < 1) {
            qc_log_error("%s: input shape %s is smaller than the kernel on spatial dim %d",
                         label, qc_shape_str(x, s, sizeof(s)), j);
            return QC_ERR_SHAPE;
        }
        g->in[i] = in;
        g->out[i] = out;
        g->k[i] = k;
        g->s[i] = st;
        g->d[i] = d;
        g->pb[i] = pb;
        g->pe[i] = pe;
    }
    return QC_OK;
}

static enum qc_status pool_infer(const struct qc_node *n, const char *label,
                                 const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    const struct pool_params *p = n->params;
    struct pool_geom g;
    enum qc_dtype dt = in[0]->dtype;
    enum qc_status st;
    if (dt != QC_DTYPE_F32 && !(p->is_max && (dt == QC_DTYPE_U8 || dt == QC_DTYPE_I8))) {
        qc_log_error("%s: input type %s, supported: float32%s", label, qc_dtype_name(dt),
                     p->is_max ? ", uint8, int8" : "");
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_pool_geometry(p, label, &in[0]->shape, &g);
    if (st != QC_OK)
        return st;
    out[0]->dtype = dt;
    out[0]->shape = in[0]->shape;
    for (int j = 0; j < p->nsp; j++)
        out[0]->shape.dims[2 + j] = g.out[POOL_MAX_SP - p->nsp + j];
    if (n->n_out > 1) {
        out[1]->dtype = QC_DTYPE_I64;
        out[1]->shape = out[0]->shape;
    }
    return QC_OK;
}

/* Window of output position o on one dim: first input coordinate. */
static inline int64_t win_start(const struct pool_geom *g, int i, int64_t o)
{
    return o * g->s[i] - g->pb[i];
}

/* The common 2-D case (no dilation, no Indices output): window bounds are
 * clamped once per output row and column, so the inner loops do no bounds
 * checks.  Same result as the general loop: the first element of the window,
 * then every element that is strictly greater. */
/* One plane of 2x2 windows at stride 2, unpadded: the comparisons of the
 * general loop below in its order, without its per-window bounds. */
static void maxpool2x2_plane(const float *restrict xr, float *restrict yr, int64_t W, int64_t OH,
                             int64_t OW)
{
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *a = xr + 2 * oh * W, *b = a + W;
        float *o = yr + oh * OW;
        for (int64_t ow = 0; ow < OW; ow++) {
            float best = a[2 * ow], v = a[2 * ow + 1];
            best = v > best ? v : best;
            v = b[2 * ow];
            best = v > best ? v : best;
            v = b[2 * ow + 1];
            o[ow] = v > best ? v : best;
        }
    }
}

/* maxpool2x2_plane that also records the offset of each maximum, as the
 * general loop of maxpool2d_arg does: the window's first element, then each
 * later one that is strictly greater (a NaN never is; a NaN first stays). */
static void maxpool2x2_arg_plane(const float *restrict xr, float *restrict yr, int32_t *restrict ar,
                                 int64_t W, int64_t OH, int64_t OW)
{
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *a = xr + 2 * oh * W, *b = a + W;
        float *o = yr + oh * OW;
        int32_t *oa = ar + oh * OW, row = (int32_t)(2 * oh * W), down = (int32_t)W;
        for (int64_t ow = 0; ow < OW; ow++) {
            int32_t i = row + (int32_t)(2 * ow), bi = i;
            float best = a[2 * ow], v = a[2 * ow + 1];
            bi = v > best ? i + 1 : bi;
            best = v > best ? v : best;
            v = b[2 * ow];
            bi = v > best ? i + down : bi;
            best = v > best ? v : best;
            v = b[2 * ow + 1];
            bi = v > best ? i + down + 1 : bi;
            o[ow] = v > best ? v : best;
            oa[ow] = bi;
        }
    }
}

/* Whether every window is 2x2 at stride 2 inside the plane (no padding). */
static bool pool_is_2x2(const struct pool_geom *g)
{
    return g->k[1] == 2 && g->k[2] == 2 && g->s[1] == 2 && g->s[2] == 2 && g->pb[1] == 0 &&
           g->pb[2] == 0 && 2 * g->out[1] <= g->in[1] && 2 * g->out[2] <= g->in[2];
}

static void maxpool2d_plain(const struct pool_geom *g, const float *x, float *y, int threads)
{
    const int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
    bool two = pool_is_2x2(g);
#pragma omp parallel for num_threads(threads) schedule(static) \
    if (g->nc * H * W >= QC_PAR_MIN_STREAM)
    for (int64_t r = 0; r < g->nc; r++) {
        const float *xr = x + r * H * W;
        float *yr = y + r * OH * OW;
        if (two) {
            maxpool2x2_plane(xr, yr, W, OH, OW);
            continue;
        }
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * g->s[1] - g->pb[1], h1 = h0 + g->k[1];
            h0 = h0 < 0 ? 0 : h0;
            h1 = h1 > H ? H : h1;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * g->s[2] - g->pb[2], w1 = w0 + g->k[2];
                float best = -FLT_MAX;
                w0 = w0 < 0 ? 0 : w0;
                w1 = w1 > W ? W : w1;
                if (h0 < h1 && w0 < w1)
                    best = xr[h0 * W + w0];
                for (int64_t h = h0; h < h1; h++) {
                    const float *row = xr + h * W;
                    for (int64_t w = w0; w < w1; w++) {
                        float v = row[w];
                        best = v > best ? v : best;   /* branch-free (maxss) */
                    }
                }
                yr[oh * OW + ow] = best;
            }
        }
    }
}

/* maxpool2d_plain that also records, per output, the offset in the plane of
 * the maximum it took (-1 for a window entirely in the padding). */
static void maxpool2d_arg(const struct pool_geom *g, const float *x, float *y, int32_t *arg,
                          int threads)
{
    const int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
    bool two = pool_is_2x2(g);
#pragma omp parallel for num_threads(threads) schedule(static) \
    if (g->nc * H * W >= QC_PAR_MIN_STREAM)
    for (int64_t r = 0; r < g->nc; r++) {
        const float *xr = x + r * H * W;
        float *yr = y + r * OH * OW;
        int32_t *ar = arg + r * OH * OW;
        if (two) {
            maxpool2x2_arg_plane(xr, yr, ar, W, OH, OW);
            continue;
        }
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * g->s[1] - g->pb[1], h1 = h0 + g->k[1];
            h0 = h0 < 0 ? 0 : h0;
            h1 = h1 > H ? H : h1;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * g->s[2] - g->pb[2], w1 = w0 + g->k[2], bi = -1;
                float best = -FLT_MAX;
                w0 = w0 < 0 ? 0 : w0;
                w1 = w1 > W ? W : w1;
                if (h0 < h1 && w0 < w1) {
                    bi = h0 * W + w0;
                    best = xr[bi];
                }
                for (int64_t h = h0; h < h1; h++) {
                    for (int64_t w = w0; w < w1; w++) {
                        if (xr[h * W + w] > best) {
                            best = xr[h * W + w];
                            bi = h * W + w;
                        }
                    }
                }
                yr[oh * OW + ow] = best;
                ar[oh * OW + ow] = (int32_t)bi;
            }
        }
    }
}

/* Offset in the plane xr of the first maximum of window o (flat output index
 * in the plane), or -1 when the window holds no input element. */
static int64_t window_argmax(const struct pool_geom *g, const float *xr, int64_t o)
{
    int64_t o0 = o / (g->out[1] * g->out[2]), o1 = (o / g->out[2]) % g->out[1];
    int64_t o2 = o % g->out[2];
    int64_t s0 = o0 * g->s[0] - g->pb[0], s1 = o1 * g->s[1] - g->pb[1];
    int64_t s2 = o2 * g->s[2] - g->pb[2];
    float best = -FLT_MAX;
    int64_t bi = -1;
    for (int64_t a = 0; a < g->k[0]; a++) {
        int64_t i0 = s0 + a * g->d[0];
        if (i0 < 0 || i0 >= g->in[0])
            continue;
        for (int64_t b = 0; b < g->k[1]; b++) {
            int64_t i1 = s1 + b * g->d[1];
            if (i1 < 0 || i1 >= g->in[1])
                continue;
            for (int64_t c = 0; c < g->k[2]; c++) {
                int64_t i2 = s2 + c * g->d[2], at;
                if (i2 < 0 || i2 >= g->in[2])
                    continue;
                at = (i0 * g->in[1] + i1) * g->in[2] + i2;
                if (xr[at] > best || bi < 0) {
                    best = xr[at];
                    bi = at;
                }
            }
        }
    }
    return bi;
}

/* window_argmax on an 8-bit plane (uint8 or int8 by sgn). */
static int64_t window_argmax_int(const struct pool_geom *g, const void *xr, bool sgn,
                                 int64_t o)
{
    int64_t o0 = o / (g->out[1] * g->out[2]), o1 = (o / g->out[2]) % g->out[1];
    int64_t o2 = o % g->out[2];
    int64_t s0 = o0 * g->s[0] - g->pb[0], s1 = o1 * g->s[1] - g->pb[1];
    int64_t s2 = o2 * g->s[2] - g->pb[2];
    int best = 0;
    int64_t bi = -1;
    for (int64_t a = 0; a < g->k[0]; a++) {
        int64_t i0 = s0 + a * g->d[0];
        if (i0 < 0 || i0 >= g->in[0])
            continue;
        for (int64_t b = 0; b < g->k[1]; b++) {
            int64_t i1 = s1 + b * g->d[1];
            if (i1 < 0 || i1 >= g->in[1])
                continue;
            for (int64_t c = 0; c < g->k[2]; c++) {
                int64_t i2 = s2 + c * g->d[2], at;
                int v;
                if (i2 < 0 || i2 >= g->in[2])
                    continue;
                at = (i0 * g->in[1] + i1) * g->in[2] + i2;
                v = sgn ? ((const int8_t *)xr)[at] : ((const uint8_t *)xr)[at];
                if (bi < 0 || v > best) {
                    best = v;
                    bi = at;
                }
            }
        }
    }
    return bi;
}

/* MaxPool on uint8/int8: y = the window's maximum (a window entirely in the
 * padding, impossible with pads < kernel, gives the type's minimum). */
static void maxpool_int(const struct qc_op_ctx *ctx, const struct pool_geom *g,
                        const struct qc_tensor *xt, struct qc_tensor *yt, int64_t *idx)
{
    bool sgn = xt->dtype == QC_DTYPE_I8;
    int64_t osz = g->out[0] * g->out[1] * g->out[2], isz = g->in[0] * g->in[1] * g->in[2];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (g->nc * osz > 4096)
    for (int64_t r = 0; r < g->nc; r++) {
        const unsigned char *xr = (const unsigned char *)xt->data + r * isz;
        unsigned char *yr = (unsigned char *)yt->data + r * osz;
        for (int64_t o = 0; o < osz; o++) {
            int64_t bi = window_argmax_int(g, xr, sgn, o);
            yr[o] = bi < 0 ? (unsigned char)(sgn ? 0x80 : 0) : xr[bi];
            if (idx)
                idx[r * osz + o] = bi < 0 ? -1 : r * isz + bi;
        }
    }
}

/* The arg-max buffer of a training forward: one int32 per output element,
 * or NULL when the forward need not record it. */
int32_t *qc_maxpool_argbuf(const struct qc_op_ctx *ctx, const struct qc_tensor *x,
                           const struct qc_tensor *y)
{
    int64_t planes = x->shape.dims[0] * x->shape.dims[1];
    if (!ctx->training || !ctx->saved || planes < 1 ||
        qc_tensor_nelem(x) / planes > INT32_MAX ||
        ctx->saved_size < (size_t)qc_tensor_nelem(y) * sizeof(int32_t))
        return NULL;
    return ctx->saved;
}

static enum qc_status maxpool_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          struct qc_tensor *const *out)
{
    struct pool_geom g;
    const float *x = qc_tensor_f32(in[0]);
    float *y = qc_tensor_f32(out[0]);
    int64_t *idx = n->n_out > 1 ? qc_tensor_i64(out[1]) : NULL;
    int32_t *arg = qc_maxpool_argbuf(ctx, in[0], out[0]);
    int64_t osz, isz;
    enum qc_status st = qc_pool_geometry(n->params, ctx->label, &in[0]->shape, &g);
    if (st != QC_OK)
        return st;
    if (in[0]->dtype != QC_DTYPE_F32) {
        maxpool_int(ctx, &g, in[0], out[0], idx);
        return QC_OK;
    }
    if (!idx && g.in[0] == 1 && g.k[0] == 1 && g.d[1] == 1 && g.d[2] == 1) {
        if (arg)
            maxpool2d_arg(&g, x, y, arg, nthreads(ctx));
        else
            maxpool2d_plain(&g, x, y, nthreads(ctx));
        return QC_OK;
    }
    osz = g.out[0] * g.out[1] * g.out[2];
    isz = g.in[0] * g.in[1] * g.in[2];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (g.nc * osz > 4096)
    for (int64_t r = 0; r < g.nc; r++) {
        const float *xr = x + r * isz;
        for (int64_t o = 0; o < osz; o++) {
            int64_t bi = window_argmax(&g, xr, o);
            y[r * osz + o] = bi < 0 ? -FLT_MAX : xr[bi];
            if (idx)
                idx[r * osz + o] = bi < 0 ? -1 : r * isz + bi;
            if (arg)
                arg[r * osz + o] = (int32_t)bi;
        }
    }
    return QC_OK;
}

/* Bytes of the arg-max a training forward records (int32 offsets within
 * the image plane). */
static size_t maxpool_saved(const struct qc_node *n, const struct qc_tensor *const *in,
                            const struct qc_tensor *const *out)
{
    (void)n;
    (void)in;
    return (size_t)qc_tensor_nelem(out[0]) * sizeof(int32_t);
}

/* dx[argmax(window o)] += dy[o]: the gradient goes to the element the
 * forward took (first maximum on ties).  The arg-max comes from the training
 * forward's saved buffer, or is recomputed from x when there is none. */
static enum qc_status maxpool_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                           const struct qc_tensor *const *in,
                                           const struct qc_tensor *const *out,
                                           const struct qc_tensor *const *dout,
                                           struct qc_tensor *const *din)
{
    struct pool_geom g;
    const int32_t *arg = qc_maxpool_argbuf(ctx, in[0], out[0]);
    const float *x = qc_tensor_f32(in[0]), *dy;
    float *dx;
    int64_t osz, isz;
    enum qc_status st;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = qc_pool_geometry(n->params, ctx->label, &in[0]->shape, &g);
    if (st != QC_OK)
        return st;
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
    osz = g.out[0] * g.out[1] * g.out[2];
    isz = g.in[0] * g.in[1] * g.in[2];
    /* one plane per iteration: no two threads write one element of dx */
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) \
    if (g.nc * (isz + osz) >= QC_PAR_MIN_STREAM)
    for (int64_t r = 0; r < g.nc; r++) {
        const float *dyr = dy + r * osz;
        float *dxr = dx + r * isz;
        if (arg) {
            const int32_t *ar = arg + r * osz;
            for (int64_t o = 0; o < osz; o++) {
                if (ar[o] >= 0)
                    dxr[ar[o]] += dyr[o];
            }
        } else {
            for (int64_t o = 0; o < osz; o++) {
                int64_t bi = window_argmax(&g, x + r * isz, o);
                if (bi >= 0)
                    dxr[bi] += dyr[o];
            }
        }
    }
    return QC_OK;
}

/* Positions of a window on dim i inside [lo, hi). */
static inline int64_t win_count(const struct pool_geom *g, int i, int64_t start, int64_t lo,
                                int64_t hi)
{
    int64_t cnt = 0;
    for (int64_t a = 0; a < g->k[i]; a++) {
        int64_t v = start + a * g->d[i];
        cnt += v >= lo && v < hi;
    }
    return cnt;
}

static enum qc_status avgpool_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          struct qc_tensor *const *out)
{
    const struct pool_params *p = n->params;
    struct pool_geom g;
    const float *x = qc_tensor_f32(in[0]);
    float *y = qc_tensor_f32(out[0]);
    int64_t osz, isz;
    enum qc_status st = qc_pool_geometry(p, ctx->label, &in[0]->shape, &g);
    if (st != QC_OK)
        return st;
    osz = g.out[0] * g.out[1] * g.out[2];
    isz = g.in[0] * g.in[1] * g.in[2];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (g.nc * osz > 4096)
    for (int64_t r = 0; r < g.nc; r++) {
        const float *xr = x + r * isz;
        for (int64_t o = 0; o < osz; o++) {
            int64_t o0 = o / (g.out[1] * g.out[2]), o1 = (o / g.out[2]) % g.out[1];
            int64_t o2 = o % g.out[2];
            int64_t s0 = win_start(&g, 0, o0), s1 = win_start(&g, 1, o1);
            int64_t s2 = win_start(&g, 2, o2);
            int64_t cnt;
            float sum = 0.0f;
            for (int64_t a = 0; a < g.k[0]; a++) {
                int64_t i0 = s0 + a * g.d[0];
                if (i0 < 0 || i0 >= g.in[0])
                    continue;
                for (int64_t b = 0; b < g.k[1]; b++) {
                    int64_t i1 = s1 + b * g.d[1];
                    if (i1 < 0 || i1 >= g.in[1])
                        continue;
                    for (int64_t c = 0; c < g.k[2]; c++) {
                        int64_t i2 = s2 + c * g.d[2];
                        if (i2 < 0 || i2 >= g.in[2])
                            continue;
                        sum += xr[(i0 * g.in[1] + i1) * g.in[2] + i2];
                    }
                }
            }
            if (p->count_include_pad)
                cnt = win_count(&g, 0, s0, -g.pb[0], g.in[0] + g.pe[0]) *
                      win_count(&g, 1, s1, -g.pb[1], g.in[1] + g.pe[1]) *
                      win_count(&g, 2, s2, -g.pb[2], g.in[2] + g.pe[2]);
            else
                cnt = win_count(&g, 0, s0, 0, g.in[0]) * win_count(&g, 1, s1, 0, g.in[1]) *
                      win_count(&g, 2, s2, 0, g.in[2]);
            y[r * osz + o] = cnt > 0 ? sum / (float)cnt : 0.0f;
        }
    }
    return QC_OK;
}

/* y[o] = sum(x[window o]) / cnt(o), so dx[i] += dy[o] / cnt(o) for every
 * input element i of window o (cnt as in the forward: with or without the
 * padded positions). */
static enum qc_status avgpool_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                           const struct qc_tensor *const *in,
                                           const struct qc_tensor *const *out,
                                           const struct qc_tensor *const *dout,
                                           struct qc_tensor *const *din)
{
    const struct pool_params *p = n->params;
    struct pool_geom g;
    const float *dy;
    float *dx;
    int64_t osz, isz, kvol;
    enum qc_status st;
    (void)out;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = qc_pool_geometry(p, ctx->label, &in[0]->shape, &g);
    if (st != QC_OK)
        return st;
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
    osz = g.out[0] * g.out[1] * g.out[2];
    isz = g.in[0] * g.in[1] * g.in[2];
    kvol = g.k[0] * g.k[1] * g.k[2];
    /* one plane per iteration: no two threads write one element of dx */
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) \
    if (g.nc * osz * kvol > 16384)
    for (int64_t r = 0; r < g.nc; r++) {
        float *dxr = dx + r * isz;
        for (int64_t o = 0; o < osz; o++) {
            int64_t o0 = o / (g.out[1] * g.out[2]), o1 = (o / g.out[2]) % g.out[1];
            int64_t o2 = o % g.out[2];
            int64_t s0 = win_start(&g, 0, o0), s1 = win_start(&g, 1, o1);
            int64_t s2 = win_start(&g, 2, o2);
            int64_t cnt;
            float v;
            if (p->count_include_pad)
                cnt = win_count(&g, 0, s0, -g.pb[0], g.in[0] + g.pe[0]) *
                      win_count(&g, 1, s1, -g.pb[1], g.in[1] + g.pe[1]) *
                      win_count(&g, 2, s2, -g.pb[2], g.in[2] + g.pe[2]);
            else
                cnt = win_count(&g, 0, s0, 0, g.in[0]) * win_count(&g, 1, s1, 0, g.in[1]) *
                      win_count(&g, 2, s2, 0, g.in[2]);
            if (cnt <= 0)
                continue;
            v = dy[r * osz + o] / (float)cnt;
            for (int64_t a = 0; a < g.k[0]; a++) {
                int64_t i0 = s0 + a * g.d[0];
                if (i0 < 0 || i0 >= g.in[0])
                    continue;
                for (int64_t b = 0; b < g.k[1]; b++) {
                    int64_t i1 = s1 + b * g.d[1];
                    float *row;
                    if (i1 < 0 || i1 >= g.in[1])
                        continue;
                    row = dxr + (i0 * g.in[1] + i1) * g.in[2];
                    for (int64_t c = 0; c < g.k[2]; c++) {
                        int64_t i2 = s2 + c * g.d[2];
                        if (i2 >= 0 && i2 < g.in[2])
                            row[i2] += v;
                    }
                }
            }
        }
    }
    return QC_OK;
}

/* ---- GlobalAveragePool, GlobalMaxPool ---- */

static enum qc_status global_infer(const struct qc_node *n, const char *label,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    char s[128];
    (void)n;
    if (in[0]->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: input type %s, only float32 is supported", label,
                     qc_dtype_name(in[0]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    if (in[0]->shape.ndim < 2) {
        qc_log_error("%s: input shape %s, expected [N,C,...]", label,
                     qc_shape_str(&in[0]->shape, s, sizeof(s)));
        return QC_ERR_SHAPE;
    }
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = in[0]->shape;
    for (int i = 2; i < in[0]->shape.ndim; i++)
        out[0]->shape.dims[i] = 1;
    return QC_OK;
}

/* Arg-max buffer of a training GlobalMaxPool (one int32 per plane), or NULL. */
int32_t *qc_global_argbuf(const struct qc_op_ctx *ctx, const struct qc_tensor *x,
                          const struct qc_tensor *y)
{
    int64_t planes = qc_tensor_nelem(y);
    if (!ctx->training || !ctx->saved || planes < 1 || qc_tensor_nelem(x) / planes > INT32_MAX ||
        ctx->saved_size < (size_t)planes * sizeof(int32_t))
        return NULL;
    return ctx->saved;
}

static void global_run(const struct qc_op_ctx *ctx, const struct qc_tensor *xt,
                       struct qc_tensor *yt, bool is_max)
{
    const struct qc_shape *s = &xt->shape;
    const float *x = qc_tensor_f32(xt);
    float *y = qc_tensor_f32(yt);
    int32_t *arg = is_max ? qc_global_argbuf(ctx, xt, yt) : NULL;
    int64_t rows = s->dims[0] * s->dims[1], len = 1;
    for (int i = 2; i < s->ndim; i++)
        len *= s->dims[i];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (rows * len > 16384)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * len;
        if (arg) {
            /* training: the same maximum, and where it is (first one) */
            float m = -FLT_MAX;
            int64_t bi = 0;
            for (int64_t k = 0; k < len; k++) {
                if (xr[k] > m) {
                    m = xr[k];
                    bi = k;
                }
            }
            y[r] = m;
            arg[r] = (int32_t)bi;
        } else if (is_max) {
            float m = -FLT_MAX;
            for (int64_t k = 0; k < len; k++)
                m = xr[k] > m ? xr[k] : m;
            y[r] = m;
        } else {
            double sum = 0.0;
            for (int64_t k = 0; k < len; k++)
                sum += xr[k];
            y[r] = (float)(sum / (double)len);
        }
    }
}

static enum qc_status global_avgpool_forward_cpu(const struct qc_node *n,
                                                 const struct qc_op_ctx *ctx,
                                                 const struct qc_tensor *const *in,
                                                 struct qc_tensor *const *out)
{
    (void)n;
    global_run(ctx, in[0], out[0], false);
    return QC_OK;
}

static enum qc_status global_maxpool_forward_cpu(const struct qc_node *n,
                                                 const struct qc_op_ctx *ctx,
                                                 const struct qc_tensor *const *in,
                                                 struct qc_tensor *const *out)
{
    (void)n;
    global_run(ctx, in[0], out[0], true);
    return QC_OK;
}

static size_t global_maxpool_saved(const struct qc_node *n, const struct qc_tensor *const *in,
                                   const struct qc_tensor *const *out)
{
    (void)n;
    (void)in;
    return (size_t)qc_tensor_nelem(out[0]) * sizeof(int32_t);
}

/* GlobalAveragePool: dx[r, k] += dy[r] / len.  GlobalMaxPool: dx[r, argmax]
 * += dy[r] (first maximum, from the saved arg-max or recomputed). */
static void global_backward(const struct qc_op_ctx *ctx, const struct qc_tensor *xt,
                            const struct qc_tensor *yt, const struct qc_tensor *dyt,
                            struct qc_tensor *dxt, bool is_max)
{
    const float *x = qc_tensor_f32(xt), *dy = qc_tensor_f32(dyt);
    const int32_t *arg = is_max ? qc_global_argbuf(ctx, xt, yt) : NULL;
    float *dx = qc_tensor_f32(dxt);
    int64_t rows = qc_tensor_nelem(yt), len = rows > 0 ? qc_tensor_nelem(xt) / rows : 0;
    /* one plane per iteration: no two threads write one element of dx */
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) \
    if (rows * len >= QC_PAR_MIN_STREAM)
    for (int64_t r = 0; r < rows; r++) {
        float *dxr = dx + r * len;
        if (len == 0)
            continue;
        if (is_max) {
            int64_t bi = 0;
            if (arg) {
                bi = arg[r];
            } else {
                const float *xr = x + r * len;
                float m = -FLT_MAX;
                for (int64_t k = 0; k < len; k++) {
                    if (xr[k] > m) {
                        m = xr[k];
                        bi = k;
                    }
                }
            }
            dxr[bi] += dy[r];
        } else {
            float v = dy[r] / (float)len;
            for (int64_t k = 0; k < len; k++)
                dxr[k] += v;
        }
    }
}

static enum qc_status global_avgpool_backward_cpu(const struct qc_node *n,
                                                  const struct qc_op_ctx *ctx,
                                                  const struct qc_tensor *const *in,
                                                  const struct qc_tensor *const *out,
                                                  const struct qc_tensor *const *dout,
                                                  struct qc_tensor *const *din)
{
    (void)n;
    if (din[0] && dout[0])
        global_backward(ctx, in[0], out[0], dout[0], din[0], false);
    return QC_OK;
}

static enum qc_status global_maxpool_backward_cpu(const struct qc_node *n,
                                                  const struct qc_op_ctx *ctx,
                                                  const struct qc_tensor *const *in,
                                                  const struct qc_tensor *const *out,
                                                  const struct qc_tensor *const *dout,
                                                  struct qc_tensor *const *din)
{
    (void)n;
    if (din[0] && dout[0])
        global_backward(ctx, in[0], out[0], dout[0], din[0], true);
    return QC_OK;
}

/* ---- ReduceMean ---- */

static enum qc_status reduce_parse(struct qc_node *n, int64_t opset, const char *label,
                                   bool mean)
{
    struct reduce_params *p;
    int64_t v;
    int64_t since = mean ? 18 : 13;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->op = mean ? "ReduceMean" : "ReduceSum";
    p->mean = mean;
    p->axes_input = opset >= since;
    st = qc_attr_int(&n->attrs, label, "keepdims", 1, &v);
    if (st != QC_OK)
        return st;
    p->keepdims = v != 0;
    st = qc_attr_int(&n->attrs, label, "noop_with_empty_axes", 0, &v);
    if (st != QC_OK)
        return st;
    p->noop_empty = v != 0;
    if (p->axes_input) {
        if (qc_attr_find(&n->attrs, "axes")) {
            qc_log_error("%s: %s opset %lld takes axes as an input, not an attribute",
                         label, p->op, (long long)opset);
            return QC_ERR_ONNX;
        }
        return QC_OK;
    }
    if (n->n_in > 1) {
        qc_log_error("%s: %s before opset %lld takes one input, got %d", label, p->op,
                     (long long)since, n->n_in);
        return QC_ERR_ONNX;
    }
    return qc_attr_ints(&n->attrs, label, "axes", p->axes, QC_MAX_DIMS, &p->n_axes);
}

static enum qc_status reduce_mean_parse(struct qc_node *n, int64_t opset, const char *label)
{
    return reduce_parse(n, opset, label, true);
}

static enum qc_status reduce_sum_parse(struct qc_node *n, int64_t opset, const char *label)
{
    return reduce_parse(n, opset, label, false);
}

/* mask[d] = dim d is reduced; *noop when the op is the identity. */
enum qc_status qc_reduce_mask(const struct qc_node *n, const char *label,
                              const struct qc_tensor *const *in, bool *mask, bool *noop)
{
    const struct reduce_params *p = n->params;
    int rank = in[0]->shape.ndim, cnt = p->n_axes;
    int64_t axes[QC_MAX_DIMS];
    memcpy(axes, p->axes, sizeof(axes));
    if (p->axes_input && n->n_in > 1 && in[1]) {
        int64_t m = qc_tensor_nelem(in[1]);
        if (!in[1]->data) {
            qc_log_error("%s: %s axes input is not a constant", label, p->op);
            return QC_ERR_UNSUPPORTED;
        }
        if (m > QC_MAX_DIMS || in[1]->shape.ndim > 1) {
            qc_log_error("%s: %s axes input has %lld values", label, p->op, (long long)m);
            return QC_ERR_ONNX;
        }
        cnt = (int)m;
        for (int i = 0; i < cnt; i++)
            axes[i] = qc_tensor_get_i64(in[1], i);
    }
    *noop = cnt == 0 && p->noop_empty;
    for (int d = 0; d < rank; d++)
        mask[d] = cnt == 0 && !*noop;
    for (int i = 0; i < cnt; i++) {
        int a;
        enum qc_status st = qc_norm_axis(label, axes[i], rank, &a);
        if (st != QC_OK)
            return st;
        mask[a] = true;
    }
    return QC_OK;
}

static enum qc_status reduce_infer(const struct qc_node *n, const char *label,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    const struct reduce_params *p = n->params;
    bool mask[QC_MAX_DIMS], noop;
    struct qc_shape s;
    enum qc_dtype dt = in[0]->dtype;
    enum qc_status st;
    if (dt != QC_DTYPE_F32 && (p->mean || (dt != QC_DTYPE_I32 && dt != QC_DTYPE_I64))) {
        qc_log_error("%s: %s input type %s, supported: float32%s", label, p->op,
                     qc_dtype_name(dt), p->mean ? "" : ", int32, int64");
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_reduce_mask(n, label, in, mask, &noop);
    if (st != QC_OK)
        return st;
    s.ndim = 0;
    for (int d = 0; d < in[0]->shape.ndim; d++) {
        if (!mask[d])
            s.dims[s.ndim++] = in[0]->shape.dims[d];
        else if (p->keepdims)
            s.dims[s.ndim++] = 1;
    }
    out[0]->dtype = dt;
    out[0]->shape = s;
    return QC_OK;
}

/* Integer ReduceSum: y[o] = sum of x over the reduced dims, wrapping in the
 * element type (summed modulo 2^64, then narrowed). */
static void reduce_sum_int(const struct qc_op_ctx *ctx, const struct qc_tensor *xt,
                           struct qc_tensor *yt, const bool *mask)
{
    const struct qc_shape *s = &xt->shape;
    bool wide = xt->dtype == QC_DTYPE_I64;
    int rank = s->ndim, nred = 0, nkeep = 0;
    int64_t rdims[QC_MAX_DIMS], rstr[QC_MAX_DIMS], kdims[QC_MAX_DIMS], kstr[QC_MAX_DIMS];
    int64_t stride[QC_MAX_DIMS], nout = qc_tensor_nelem(yt), rsize = 1;
    for (int d = rank - 1; d >= 0; d--)
        stride[d] = d == rank - 1 ? 1 : stride[d + 1] * s->dims[d + 1];
    for (int d = 0; d < rank; d++) {
        if (mask[d]) {
            rdims[nred] = s->dims[d];
            rstr[nred++] = stride[d];
            rsize *= s->dims[d];
        } else {
            kdims[nkeep] = s->dims[d];
            kstr[nkeep++] = stride[d];
        }
    }
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (nout * rsize > 16384)
    for (int64_t o = 0; o < nout; o++) {
        int64_t base = 0, rem = o, cnt[QC_MAX_DIMS];
        uint64_t sum = 0;
        for (int k = nkeep - 1; k >= 0; k--) {
            base += (rem % kdims[k]) * kstr[k];
            rem /= kdims[k];
        }
        memset(cnt, 0, sizeof(cnt));
        if (nred > 0 && rstr[nred - 1] == 1) {
            /* innermost reduced dim contiguous: sum whole runs */
            int64_t run = rdims[nred - 1];
            for (int64_t r = 0; r < rsize; r += run) {
                int64_t off = base;
                for (int k = 0; k < nred - 1; k++)
                    off += cnt[k] * rstr[k];
                if (wide)
                    for (int64_t i = 0; i < run; i++)
                        sum += (uint64_t)((const int64_t *)xt->data)[off + i];
                else
                    for (int64_t i = 0; i < run; i++)
                        sum += (uint64_t)(int64_t)((const int32_t *)xt->data)[off + i];
                for (int k = nred - 2; k >= 0; k--) {
                    if (++cnt[k] < rdims[k])
                        break;
                    cnt[k] = 0;
                }
            }
        } else {
            for (int64_t r = 0; r < rsize; r++) {
                int64_t off = base;
                for (int k = 0; k < nred; k++)
                    off += cnt[k] * rstr[k];
                sum += wide ? (uint64_t)((const int64_t *)xt->data)[off]
                            : (uint64_t)(int64_t)((const int32_t *)xt->data)[off];
                for (int k = nred - 1; k >= 0; k--) {
                    if (++cnt[k] < rdims[k])
                        break;
                    cnt[k] = 0;
                }
            }
        }
        if (wide)
            ((int64_t *)yt->data)[o] = (int64_t)sum;
        else
            ((int32_t *)yt->data)[o] = (int32_t)(uint32_t)sum;
    }
}

static enum qc_status reduce_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                         const struct qc_tensor *const *in,
                                         struct qc_tensor *const *out)
{
    const struct reduce_params *p = n->params;
    const struct qc_shape *s = &in[0]->shape;
    const float *x = qc_tensor_f32(in[0]);
    float *y = qc_tensor_f32(out[0]);
    double div;
    bool mask[QC_MAX_DIMS], noop, contiguous = true;
    int rank = s->ndim, first = -1, last = -1, nred = 0;
    int64_t rdims[QC_MAX_DIMS], rstr[QC_MAX_DIMS], kdims[QC_MAX_DIMS], kstr[QC_MAX_DIMS];
    int64_t stride[QC_MAX_DIMS], nout = qc_tensor_nelem(out[0]), rsize = 1;
    int nkeep = 0;
    enum qc_status st = qc_reduce_mask(n, ctx->label, in, mask, &noop);
    if (st != QC_OK)
        return st;
    if (noop) {
        if (in[0]->data != out[0]->data)
            memcpy(y, x, qc_tensor_nbytes(in[0]));
        return QC_OK;
    }
    if (in[0]->dtype != QC_DTYPE_F32) {
        reduce_sum_int(ctx, in[0], out[0], mask);
        return QC_OK;
    }
    for (int d = rank - 1; d >= 0; d--)
        stride[d] = d == rank - 1 ? 1 : stride[d + 1] * s->dims[d + 1];
    for (int d = 0; d < rank; d++) {
        if (!mask[d] || s->dims[d] == 1)
            continue;
        if (first < 0)
            first = d;
        else if (last != d - 1)
            contiguous = false;
        last = d;
    }
    for (int d = 0; d < rank; d++) {
        if (mask[d]) {
            rdims[nred] = s->dims[d];
            rstr[nred++] = stride[d];
            rsize *= s->dims[d];
        } else {
            kdims[nkeep] = s->dims[d];
            kstr[nkeep++] = stride[d];
        }
    }
    div = p->mean ? (double)rsize : 1.0;
    if (contiguous) {
        /* x viewed as [outer, rsize, inner]: one block of reduced dims */
        int64_t inner = first < 0 ? 1 : stride[last];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (nout * rsize > 16384)
        for (int64_t o = 0; o < nout; o++) {
            int64_t ob = o / inner, oi = o % inner;
            const float *xr = x + ob * rsize * inner + oi;
            double sum = 0.0;
            for (int64_t r = 0; r < rsize; r++)
                sum += xr[r * inner];
            y[o] = (float)(sum / div);
        }
        return QC_OK;
    }
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (nout * rsize > 16384)
    for (int64_t o = 0; o < nout; o++) {
        int64_t base = 0, rem = o, cnt[QC_MAX_DIMS];
        double sum = 0.0;
        for (int k = nkeep - 1; k >= 0; k--) {
            base += (rem % kdims[k]) * kstr[k];
            rem /= kdims[k];
        }
        memset(cnt, 0, sizeof(cnt));
        for (int64_t r = 0; r < rsize; r++) {
            int64_t off = base;
            for (int k = 0; k < nred; k++)
                off += cnt[k] * rstr[k];
            sum += x[off];
            /* odometer over the reduced dims */
            for (int k = nred - 1; k >= 0; k--) {
                if (++cnt[k] < rdims[k])
                    break;
                cnt[k] = 0;
            }
        }
        y[o] = (float)(sum / div);
    }
    return QC_OK;
}

/* y[o] = sum over the reduced dims of x / rsize, so every x[i] gets
 * dx[i] += dy[o(i)] / rsize, o(i) = i with the reduced coordinates dropped.
 * Each dx element has one contribution: any split of x across threads is
 * race-free.  x is walked as rows of its last dim. */
static enum qc_status reduce_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          const struct qc_tensor *const *out,
                                          const struct qc_tensor *const *dout,
                                          struct qc_tensor *const *din)
{
    const struct reduce_params *p = n->params;
    const struct qc_shape *s = &in[0]->shape;
    const float *dy;
    float *dx;
    bool mask[QC_MAX_DIMS], noop;
    int rank = s->ndim;
    int64_t ostr[QC_MAX_DIMS], total = qc_tensor_nelem(in[0]), rsize, len, rows, lstr;
    enum qc_status st;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = qc_reduce_mask(n, ctx->label, in, mask, &noop);
    if (st != QC_OK)
        return st;
    if (in[0]->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: gradient of an integer %s", ctx->label, p->op);
        return QC_ERR_UNSUPPORTED;
    }
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
    if (noop || rank == 0) {
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) \
    if (total >= QC_PAR_MIN_STREAM)
        for (int64_t i = 0; i < total; i++)
            dx[i] += dy[i];
        return QC_OK;
    }
    /* stride in dy of each input dim (0 for a reduced one) */
    {
        int64_t acc = 1;
        for (int d = rank - 1; d >= 0; d--) {
            ostr[d] = mask[d] ? 0 : acc;
            acc *= mask[d] ? 1 : s->dims[d];
        }
    }
    rsize = total / QC_MAX(1, qc_tensor_nelem(out[0]));
    len = s->dims[rank - 1];
    rows = len > 0 ? total / len : 0;
    lstr = ostr[rank - 1];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) \
    if (total >= QC_PAR_MIN_STREAM)
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, base = 0;
        float *dxr = dx + r * len;
        const float *dyr;
        float inv = p->mean ? 1.0f / (float)rsize : 1.0f;
        for (int d = rank - 2; d >= 0; d--) {
            base += (rem % s->dims[d]) * ostr[d];
            rem /= s->dims[d];
        }
        dyr = dy + base;
        if (lstr == 0) {
            float v = dyr[0] * inv;
            for (int64_t k = 0; k < len; k++)
                dxr[k] += v;
        } else {
            for (int64_t k = 0; k < len; k++)
                dxr[k] += dyr[k] * inv;
        }
    }
    return QC_OK;
}

/* ---- definitions ---- */

const struct qc_op_def qc_op_maxpool = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 2,
    .fold = QC_FOLD_NEVER, .parse = maxpool_parse, .infer = pool_infer,
    .saved = maxpool_saved,
    .cpu = { .forward = maxpool_forward_cpu, .backward = maxpool_backward_cpu },
};

const struct qc_op_def qc_op_avgpool = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = avgpool_parse, .infer = pool_infer,
    .cpu = { .forward = avgpool_forward_cpu, .backward = avgpool_backward_cpu },
};

const struct qc_op_def qc_op_global_avgpool = {
    .n_in_min = 1, .n_in_max = 1,
    .n_out_min = 1, .n_out_max = 1, .fold = QC_FOLD_NEVER, .infer = global_infer,
    .cpu = { .forward = global_avgpool_forward_cpu, .backward = global_avgpool_backward_cpu },
};

const struct qc_op_def qc_op_global_maxpool = {
    .n_in_min = 1, .n_in_max = 1,
    .n_out_min = 1, .n_out_max = 1, .fold = QC_FOLD_NEVER, .infer = global_infer,
    .saved = global_maxpool_saved,
    .cpu = { .forward = global_maxpool_forward_cpu, .backward = global_maxpool_backward_cpu },
};

const struct qc_op_def qc_op_reduce_mean = {
    .n_in_min = 1, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = reduce_mean_parse, .infer = reduce_infer,
    .cpu = { .forward = reduce_forward_cpu, .backward = reduce_backward_cpu },
};

const struct qc_op_def qc_op_reduce_sum = {
    .n_in_min = 1, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = reduce_sum_parse, .infer = reduce_infer,
    .cpu = { .forward = reduce_forward_cpu, .backward = reduce_backward_cpu },
};
