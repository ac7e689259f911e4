/*
 * resize.c - spatial resampling: Resize (opset 10 and 11+) and Upsample
 * (opset 7 attribute scales, opset 9 input scales).
 *
 * Inputs are float32 NCHW (or NCW); only the spatial dims may change, N and C
 * must keep scale 1.  Scales and sizes must be constants when the plan infers
 * shapes.  With sizes, the scale of a dim is out / in (float); with scales,
 * out = (int64)(in * scale) (float product, truncated), as ONNX Runtime does.
 *
 * An output coordinate x_out maps to an input coordinate x_in (float) by the
 * coordinate_transformation_mode:
 *   half_pixel            (x_out + 0.5) / scale - 0.5
 *   half_pixel_symmetric  as half_pixel, shifted by c * (1 - out / (scale * in)), c = in / 2
 *   pytorch_half_pixel    out > 1 ? (x_out + 0.5) / scale - 0.5 : 0
 *   align_corners         out == 1 ? 0 : x_out * (in - 1) / (out - 1)
 *   asymmetric            x_out / scale
 *   tf_half_pixel_for_nn  (x_out + 0.5) / scale
 * nearest takes one input index by nearest_mode (round_prefer_floor,
 * round_prefer_ceil, floor, ceil), clamped to [0, in - 1]; Resize-10 and
 * Upsample use asymmetric coordinates with truncation when enlarging and
 * ceil when shrinking; a dim with scale 1 is copied as is.  linear clamps
 * x_in to [0, in - 1] and blends x0 = trunc(x_in) and x1 = min(x0 + 1, in - 1)
 * with weights 1 - f and f, f = x_in - x0, separably over H and W.
 *
 * Backward is the transpose of that map, computed with the same taps: each
 * output gradient is scatter-added to the one (nearest) or four (linear)
 * input pixels it read, per plane, so planes run in parallel and the result
 * does not depend on the thread count.
 */
#include <config.h>

#include "op.h"

#include <math.h>
#include <string.h>

#include "util/log.h"

enum rs_mode { RS_NEAREST, RS_LINEAR };

enum rs_ctm { CTM_HALF_PIXEL, CTM_HALF_PIXEL_SYM, CTM_PYTORCH_HALF_PIXEL, CTM_ALIGN_CORNERS,
              CTM_ASYMMETRIC, CTM_TF_HALF_PIXEL_NN };

enum rs_nearest { NR_ROUND_PREFER_FLOOR, NR_ROUND_PREFER_CEIL, NR_FLOOR, NR_CEIL,
                  NR_SIMPLE /* truncate when enlarging, ceil when shrinking */ };

struct resize_params {
    enum rs_mode    mode;
    enum rs_ctm     ctm;
    enum rs_nearest nearest;
    int             scales_in;              /* input index of scales, -1 = attribute */
    int             sizes_in;               /* input index of sizes, -1 = none       */
    int             n_attr_scales;
    float           attr_scales[QC_MAX_DIMS];
};

static int nthreads(const struct qc_op_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : 1;
}

struct name_val {
    const char *name;
    int         val;
};

/* Looks s up in table; unknown -> QC_ERR_UNSUPPORTED naming attr and value. */
static enum qc_status lookup(const char *label, const char *attr, const char *s,
                             const struct name_val *table, size_t n, int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(table[i].name, s) == 0) {
            *out = table[i].val;
            return QC_OK;
        }
    }
    qc_log_error("%s: %s '%s' is not supported", label, attr, s);
    return QC_ERR_UNSUPPORTED;
}

static enum qc_status check_int_attr(const struct qc_node *n, const char *label,
                                     const char *name, int64_t want)
{
    int64_t v;
    enum qc_status st = qc_attr_int(&n->attrs, label, name, want, &v);
    if (st != QC_OK)
        return st;
    if (v != want) {
        qc_log_error("%s: %s=%lld is not supported (only %lld)", label, name, (long long)v,
                     (long long)want);
        return QC_ERR_UNSUPPORTED;
    }
    return QC_OK;
}

static enum qc_status resize_parse(struct qc_node *n, int64_t opset, const char *label)
{
    static const struct name_val modes[] = {
        { "nearest", RS_NEAREST }, { "linear", RS_LINEAR },
    };
    static const struct name_val ctms[] = {
        { "half_pixel", CTM_HALF_PIXEL },
        { "half_pixel_symmetric", CTM_HALF_PIXEL_SYM },
        { "pytorch_half_pixel", CTM_PYTORCH_HALF_PIXEL },
        { "align_corners", CTM_ALIGN_CORNERS },
        { "asymmetric", CTM_ASYMMETRIC },
        { "tf_half_pixel_for_nn", CTM_TF_HALF_PIXEL_NN },
    };
    static const struct name_val nearests[] = {
        { "round_prefer_floor", NR_ROUND_PREFER_FLOOR },
        { "round_prefer_ceil", NR_ROUND_PREFER_CEIL },
        { "floor", NR_FLOOR },
        { "ceil", NR_CEIL },
    };
    struct resize_params *p;
    const char *s;
    int v;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_string(&n->attrs, label, "mode", "nearest", &s);
    if (st == QC_OK)
        st = lookup(label, "mode", s, modes, QC_ARRAY_SIZE(modes), &v);
    if (st != QC_OK)
        return st;
    p->mode = (enum rs_mode)v;
    if (opset < 11) {
        p->ctm = CTM_ASYMMETRIC;
        p->nearest = NR_SIMPLE;
        p->scales_in = 1;
        p->sizes_in = -1;
        if (n->n_in != 2) {
            qc_log_error("%s: Resize-10 takes 2 inputs (X, scales), got %d", label, n->n_in);
            return QC_ERR_ONNX;
        }
        return QC_OK;
    }
    p->scales_in = 2;
    p->sizes_in = 3;
    st = qc_attr_string(&n->attrs, label, "coordinate_transformation_mode", "half_pixel", &s);
    if (st == QC_OK)
        st = lookup(label, "coordinate_transformation_mode", s, ctms, QC_ARRAY_SIZE(ctms), &v);
    if (st != QC_OK)
        return st;
    p->ctm = (enum rs_ctm)v;
    st = qc_attr_string(&n->attrs, label, "nearest_mode", "round_prefer_floor", &s);
    if (st == QC_OK)
        st = lookup(label, "nearest_mode", s, nearests, QC_ARRAY_SIZE(nearests), &v);
    if (st != QC_OK)
        return st;
    p->nearest = (enum rs_nearest)v;
    st = check_int_attr(n, label, "exclude_outside", 0);
    if (st == QC_OK)
        st = check_int_attr(n, label, "antialias", 0);
    if (st != QC_OK)
        return st;
    if (qc_attr_find(&n->attrs, "axes")) {
        qc_log_error("%s: Resize attribute 'axes' is not supported", label);
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_attr_string(&n->attrs, label, "keep_aspect_ratio_policy", "stretch", &s);
    if (st != QC_OK)
        return st;
    if (strcmp(s, "stretch") != 0) {
        qc_log_error("%s: keep_aspect_ratio_policy '%s' is not supported", label, s);
        return QC_ERR_UNSUPPORTED;
    }
    return QC_OK;
}

static enum qc_status upsample_parse(struct qc_node *n, int64_t opset, const char *label)
{
    static const struct name_val modes[] = {
        { "nearest", RS_NEAREST }, { "linear", RS_LINEAR }, { "bilinear", RS_LINEAR },
    };
    struct resize_params *p;
    const char *s;
    int v;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_string(&n->attrs, label, "mode", "nearest", &s);
    if (st == QC_OK)
        st = lookup(label, "mode", s, modes, QC_ARRAY_SIZE(modes), &v);
    if (st != QC_OK)
        return st;
    p->mode = (enum rs_mode)v;
    p->ctm = CTM_ASYMMETRIC;
    p->nearest = NR_SIMPLE;
    p->sizes_in = -1;
    if (opset >= 9) {
        p->scales_in = 1;
        if (n->n_in != 2) {
            qc_log_error("%s: Upsample-9 takes 2 inputs (X, scales), got %d", label, n->n_in);
            return QC_ERR_ONNX;
        }
        return QC_OK;
    }
    p->scales_in = -1;
    if (n->n_in != 1) {
        qc_log_error("%s: Upsample-7 takes 1 input, got %d", label, n->n_in);
        return QC_ERR_ONNX;
    }
    st = qc_attr_floats(&n->attrs, label, "scales", p->attr_scales, QC_MAX_DIMS,
                        &p->n_attr_scales);
    if (st != QC_OK)
        return st;
    if (p->n_attr_scales == 0) {
        qc_log_error("%s: Upsample attribute 'scales' is missing", label);
        return QC_ERR_ONNX;
    }
    return QC_OK;
}

/* Output shape and the H, W scales (sc[0] = H, sc[1] = W; NCW has H = 1). */
static enum qc_status resize_dims(const struct qc_node *n, const char *label,
                                  const struct qc_tensor *const *in, struct qc_shape *oshape,
                                  float *sc)
{
    const struct resize_params *p = n->params;
    const struct qc_shape *xs = &in[0]->shape;
    const struct qc_tensor *sizes = NULL, *scales = NULL;
    int rank = xs->ndim;
    char b1[128], b2[128];

    if (rank != 3 && rank != 4) {
        qc_log_error("%s: input shape %s, only NCW and NCHW are supported", label,
                     qc_shape_str(xs, b1, sizeof(b1)));
        return QC_ERR_UNSUPPORTED;
    }
    if (p->sizes_in >= 0 && n->n_in > p->sizes_in && in[p->sizes_in] &&
        qc_tensor_nelem(in[p->sizes_in]) > 0)
        sizes = in[p->sizes_in];
    else if (p->scales_in >= 0 && n->n_in > p->scales_in && in[p->scales_in] &&
             qc_tensor_nelem(in[p->scales_in]) > 0)
        scales = in[p->scales_in];
    if ((sizes && !sizes->data) || (scales && !scales->data)) {
        qc_log_error("%s: %s input is not a constant", label, sizes ? "sizes" : "scales");
        return QC_ERR_UNSUPPORTED;
    }
    if (!sizes && !scales && p->n_attr_scales == 0) {
        qc_log_error("%s: neither scales nor sizes is given", label);
        return QC_ERR_ONNX;
    }
    {
        const struct qc_tensor *t = sizes ? sizes : scales;
        int64_t cnt = t ? qc_tensor_nelem(t) : p->n_attr_scales;
        if (cnt != rank) {
            qc_log_error("%s: %lld %s for input shape %s", label, (long long)cnt,
                         sizes ? "sizes" : "scales", qc_shape_str(xs, b1, sizeof(b1)));
            return QC_ERR_SHAPE;
        }
    }
    oshape->ndim = rank;
    for (int i = 0; i < rank; i++) {
        float s;
        int64_t o;
        if (sizes) {
            o = qc_tensor_get_i64(sizes, i);
            s = (float)o / (float)xs->dims[i];
        } else {
            float of;
            s = scales ? (float)qc_tensor_get_f64(scales, i) : p->attr_scales[i];
            of = (float)xs->dims[i] * s;
            /* NaN and sizes past 2^40 are refused below, before the cast */
            o = of >= 1.0f && of < 1099511627776.0f ? (int64_t)of : 0;
        }
        if (o < 1 || !(s > 0.0f)) {
            qc_log_error("%s: invalid scale %g on dim %d of input %s", label, (double)s, i,
                         qc_shape_str(xs, b1, sizeof(b1)));
            return QC_ERR_SHAPE;
        }
        if (i < 2 && o != xs->dims[i]) {
            oshape->dims[i] = o;
            qc_log_error("%s: resizing %s to %s changes N or C, only spatial dims are "
                         "supported", label, qc_shape_str(xs, b1, sizeof(b1)),
                         qc_shape_str(oshape, b2, sizeof(b2)));
            return QC_ERR_UNSUPPORTED;
        }
        oshape->dims[i] = o;
        if (i >= 2)
            sc[i - (rank - 2)] = s;
    }
    if (rank == 3)
        sc[0] = 1.0f;
    return QC_OK;
}

static enum qc_status resize_infer(const struct qc_node *n, const char *label,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    float sc[2];
    if (in[0]->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: input type %s, only float32 is supported", label,
                     qc_dtype_name(in[0]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    out[0]->dtype = QC_DTYPE_F32;
    return resize_dims(n, label, in, &out[0]->shape, sc);
}

/* Input coordinate (float) of output coordinate xo on one dim. */
static float src_coord(enum rs_ctm ctm, float xo, float scale, int64_t len_out, int64_t len_in)
{
    switch (ctm) {
    case CTM_HALF_PIXEL:
        return (xo + 0.5f) / scale - 0.5f;
    case CTM_HALF_PIXEL_SYM: {
        float adj = (float)len_out / (scale * (float)len_in);
        float center = (float)len_in / 2.0f;
        return center * (1.0f - adj) + (xo + 0.5f) / scale - 0.5f;
    }
    case CTM_PYTORCH_HALF_PIXEL:
        return len_out > 1 ? (xo + 0.5f) / scale - 0.5f : 0.0f;
    case CTM_ALIGN_CORNERS:
        return len_out == 1 ? 0.0f : xo * (float)(len_in - 1) / (float)(len_out - 1);
    case CTM_ASYMMETRIC:
        return xo / scale;
    case CTM_TF_HALF_PIXEL_NN:
        return (xo + 0.5f) / scale;
    }
    return 0.0f;
}

/* The one or two input indices and weights of output coordinate xo. */
struct taps {
    int64_t i0, i1;
    float   w0, w1;
};

static struct taps make_taps(const struct resize_params *p, int64_t xo, float scale,
                             int64_t len_out, int64_t len_in)
{
    struct taps t;
    float x = src_coord(p->ctm, (float)xo, scale, len_out, len_in);
    if (p->mode == RS_NEAREST && scale == 1.0f) {
        /* an unscaled dim is copied as is (whatever the coordinate mode) */
        t.i0 = t.i1 = QC_MIN(xo, len_in - 1);
        t.w0 = 1.0f;
        t.w1 = 0.0f;
        return t;
    }
    if (p->mode == RS_NEAREST) {
        int64_t i;
        switch (p->nearest) {
        case NR_ROUND_PREFER_FLOOR:
            i = x == (float)(int64_t)x + 0.5f ? (int64_t)floorf(x) : (int64_t)roundf(x);
            break;
        case NR_ROUND_PREFER_CEIL:
            i = (int64_t)roundf(x);
            break;
        case NR_FLOOR:
            i = (int64_t)floorf(x);
            break;
        case NR_CEIL:
            i = (int64_t)ceilf(x);
            break;
        default:
            i = scale < 1.0f ? (int64_t)ceilf(x) : (int64_t)x;
            break;
        }
        i = QC_MAX(0, QC_MIN(len_in - 1, i));
        t.i0 = t.i1 = i;
        t.w0 = 1.0f;
        t.w1 = 0.0f;
        return t;
    }
    x = fmaxf(0.0f, fminf(x, (float)(len_in - 1)));
    t.i0 = QC_MIN((int64_t)x, len_in - 1);
    t.i1 = QC_MIN(t.i0 + 1, len_in - 1);
    if (t.i0 == t.i1) {
        t.w0 = 0.5f;
        t.w1 = 0.5f;
    } else {
        t.w1 = x - (float)t.i0;
        t.w0 = (float)t.i1 - x;
    }
    return t;
}

static enum qc_status resize_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                         const struct qc_tensor *const *in,
                                         struct qc_tensor *const *out)
{
    const struct resize_params *p = n->params;
    const struct qc_shape *xs = &in[0]->shape, *ys = &out[0]->shape;
    const float *x = qc_tensor_f32(in[0]);
    float *y = qc_tensor_f32(out[0]);
    struct qc_shape os;
    float sc[2];
    int64_t nc = xs->dims[0] * xs->dims[1], ih, iw, oh, ow;
    enum qc_status st = resize_dims(n, ctx->label, in, &os, sc);
    if (st != QC_OK)
        return st;
    ih = xs->ndim == 4 ? xs->dims[2] : 1;
    oh = ys->ndim == 4 ? ys->dims[2] : 1;
    iw = xs->dims[xs->ndim - 1];
    ow = ys->dims[ys->ndim - 1];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (nc * oh * ow > 16384)
    for (int64_t r = 0; r < nc * oh; r++) {
        int64_t c = r / oh, yo = r % oh;
        struct taps th = make_taps(p, yo, sc[0], oh, ih);
        const float *r0 = x + (c * ih + th.i0) * iw, *r1 = x + (c * ih + th.i1) * iw;
        float *yr = y + r * ow;
        for (int64_t xo = 0; xo < ow; xo++) {
            struct taps tw = make_taps(p, xo, sc[1], ow, iw);
            if (p->mode == RS_NEAREST) {
                yr[xo] = r0[tw.i0];
                continue;
            }
            /* y = wy0 * (wx0 * x[y0,x0] + wx1 * x[y0,x1]) + wy1 * (wx0 * x[y1,x0] + ...) */
            float top = tw.w0 * r0[tw.i0] + tw.w1 * r0[tw.i1];
            float bot = tw.w0 * r1[tw.i0] + tw.w1 * r1[tw.i1];
            yr[xo] = th.w0 * top + th.w1 * bot;
        }
    }
    return QC_OK;
}

/* The transpose of the forward: every output element sends dy to the input
 * elements it read, with the weights it read them with.
 *   nearest: dx[c, hi(yo), wi(xo)] += dy[c, yo, xo]
 *   linear:  dx[c, h_a, w_b] += wy_a * wx_b * dy[c, yo, xo], a, b in {0, 1}
 * (the i0 == i1 taps at the border carry 0.5 + 0.5, summing to 1 as in the
 * forward).  Parallel over planes: a plane's outputs only read that plane. */
static enum qc_status resize_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          const struct qc_tensor *const *out,
                                          const struct qc_tensor *const *dout,
                                          struct qc_tensor *const *din)
{
    const struct resize_params *p = n->params;
    const struct qc_shape *xs = &in[0]->shape, *ys = &out[0]->shape;
    const float *dy;
    float *dx;
    struct qc_shape os;
    float sc[2];
    int64_t nc = xs->dims[0] * xs->dims[1], ih, iw, oh, ow;
    enum qc_status st;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = resize_dims(n, ctx->label, in, &os, sc);
    if (st != QC_OK)
        return st;
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
    ih = xs->ndim == 4 ? xs->dims[2] : 1;
    oh = ys->ndim == 4 ? ys->dims[2] : 1;
    iw = xs->dims[xs->ndim - 1];
    ow = ys->dims[ys->ndim - 1];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (nc * oh * ow > 16384)
    for (int64_t c = 0; c < nc; c++) {
        float *dxc = dx + c * ih * iw;
        for (int64_t yo = 0; yo < oh; yo++) {
            struct taps th = make_taps(p, yo, sc[0], oh, ih);
            float *r0 = dxc + th.i0 * iw, *r1 = dxc + th.i1 * iw;
            const float *dyr = dy + (c * oh + yo) * ow;
            for (int64_t xo = 0; xo < ow; xo++) {
                struct taps tw = make_taps(p, xo, sc[1], ow, iw);
                float g = dyr[xo];
                if (p->mode == RS_NEAREST) {
                    r0[tw.i0] += g;
                    continue;
                }
                r0[tw.i0] += th.w0 * tw.w0 * g;
                r0[tw.i1] += th.w0 * tw.w1 * g;
                r1[tw.i0] += th.w1 * tw.w0 * g;
                r1[tw.i1] += th.w1 * tw.w1 * g;
            }
        }
    }
    return QC_OK;
}

/* ---- definitions ---- */

const struct qc_op_def qc_op_resize = {
    .n_in_min = 1, .n_in_max = 4, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = resize_parse, .infer = resize_infer,
    .cpu = { .forward = resize_forward_cpu, .backward = resize_backward_cpu },
};

const struct qc_op_def qc_op_upsample = {
    .n_in_min = 1, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = upsample_parse, .infer = resize_infer,
    .cpu = { .forward = resize_forward_cpu, .backward = resize_backward_cpu },
};
