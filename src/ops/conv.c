/*
 * conv.c - Conv and ConvTranspose, opsets 7..23, 1D/2D/3D.
 *
 * Attributes (group, auto_pad, kernel_shape, strides, dilations, pads, and for
 * ConvTranspose output_padding and output_shape) are parsed once into struct
 * conv_params.  Everything that depends on the input shapes (output size,
 * resolved begin/end pads) is recomputed by qc_conv_resolve() from the params
 * and the tensors: infer validates and logs, workspace and the kernels call it
 * again on the already validated shapes.  The resolved struct qc_conv_geom is
 * the im2col geometry of ONE group of ONE image, which the backward pass can
 * reuse unchanged (dW += dY_g * col^T, dX_g += col2im(W_g^T * dY_g)).
 *
 * CPU forward, per image and per group (x NCHW, w OIHW, row-major):
 *   Conv           col = im2col(x_g)                     [C_g*KV, L_out]
 *                  y_g = w_g * col                       [M_g, L_out]
 *   ConvTranspose  col = w_g^T * x_g                     [M_g*KV, L_in]
 *                  y_g = col2im(col)  (y zeroed first)   [M_g, out...]
 * CPU backward (formulas next to each kernel): the same lowering run
 * backwards.  A training forward keeps its columns in the node's saved
 * state when they are small (conv_saved), and the backward's dW product
 * reads them from there; otherwise the backward lowers x again.
 * Small images are lowered several at a time into one wider product (see
 * conv_chunking), then scattered back to NCHW.  Groups with one input channel
 * (depthwise) skip the lowering and run a direct loop, parallel (OpenMP,
 * ctx->threads) over channel planes.  A 1x1, stride-1, unpadded Conv
 * multiplies x directly.  Other group-1 2D Convs with at most 64 channels
 * each side run the direct register-blocked kernels of conv_direct.c in
 * both directions (no lowering, no saved columns).
 *
 * The forward's epilogue (struct qc_conv_epilogue: bias, then a residual
 * and a relu for the plan's fused inference steps, ops/conv_fused.h) is
 * applied as y is written: in the direct kernels' transposition, per chunk
 * on the gemm path; the depthwise loop and ConvTranspose add it after.
 *
 * Threads: OpenBLAS runs single-threaded (see backend/cpu.c).  The gemm path
 * splits the batch into chunks of images, statically over ctx->threads;
 * each thread lowers into its own workspace slice and calls sgemm itself.
 * Every image's y (forward) or dX (backward) is written by one thread only;
 * dW and dB go into per-thread partial sums in the slice, added into din in
 * thread order afterwards, so results depend on the thread count but never
 * on timing.
 */
#include <config.h>

#include "op.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/backend.h"
#include "util/log.h"
#include "conv_fused.h"
#include "im2col.h"
#include "params_conv.h"

/* Work (elements) below which OpenMP regions stay serial. */
#define PAR_MIN_WORK 32768

static const char *auto_pad_names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

static enum qc_status read_ints(const struct qc_node *n, const char *label, const char *name,
                                int64_t *v, int max, int64_t min_value, int *count)
{
    enum qc_status st = qc_attr_ints(&n->attrs, label, name, v, max, count);
    if (st != QC_OK)
        return st;
    for (int i = 0; i < *count; i++) {
        if (v[i] < min_value) {
            qc_log_error("%s: attribute '%s' has value %lld, expected >= %lld", label, name,
                         (long long)v[i], (long long)min_value);
            return QC_ERR_ONNX;
        }
    }
    return QC_OK;
}

static enum qc_status conv_parse_common(struct qc_node *n, const char *label, bool transpose)
{
    struct qc_conv_params *p;
    const char *ap;
    enum qc_status st;

    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->transpose = transpose;
    st = qc_attr_int(&n->attrs, label, "group", 1, &p->group);
    if (st != QC_OK)
        return st;
    if (p->group < 1) {
        qc_log_error("%s: group %lld, expected >= 1", label, (long long)p->group);
        return QC_ERR_ONNX;
    }
    st = qc_attr_string(&n->attrs, label, "auto_pad", "NOTSET", &ap);
    if (st != QC_OK)
        return st;
    p->auto_pad = QC_ARRAY_SIZE(auto_pad_names);
    for (size_t i = 0; i < QC_ARRAY_SIZE(auto_pad_names); i++)
        if (strcmp(ap, auto_pad_names[i]) == 0)
            p->auto_pad = (enum qc_conv_auto_pad)i;
    if (p->auto_pad == QC_ARRAY_SIZE(auto_pad_names)) {
        qc_log_error("%s: auto_pad '%s', expected NOTSET, SAME_UPPER, SAME_LOWER or VALID",
                     label, ap);
        return QC_ERR_ONNX;
    }
    st = read_ints(n, label, "kernel_shape", p->kernel, QC_CONV_MAX_SPATIAL, 1, &p->n_kernel);
    if (st == QC_OK)
        st = read_ints(n, label, "strides", p->strides, QC_CONV_MAX_SPATIAL, 1, &p->n_strides);
    if (st == QC_OK)
        st = read_ints(n, label, "dilations", p->dilations, QC_CONV_MAX_SPATIAL, 1,
                       &p->n_dilations);
    if (st == QC_OK)
        st = read_ints(n, label, "pads", p->pads, 2 * QC_CONV_MAX_SPATIAL, 0, &p->n_pads);
    if (st == QC_OK && transpose)
        st = read_ints(n, label, "output_padding", p->output_padding, QC_CONV_MAX_SPATIAL, 0,
                       &p->n_output_padding);
    if (st == QC_OK && transpose)
        st = read_ints(n, label, "output_shape", p->output_shape, QC_CONV_MAX_SPATIAL + 2, 1,
                       &p->n_output_shape);
    if (st != QC_OK)
        return st;
    if (p->n_pads % 2 != 0) {
        qc_log_error("%s: %d pads, expected an even count (begins then ends)", label, p->n_pads);
        return QC_ERR_ONNX;
    }
    return QC_OK;
}

static enum qc_status conv_parse(struct qc_node *n, int64_t opset, const char *label)
{
    (void)opset;   /* Conv-1/11/22 share the attributes; 11 made kernel_shape optional */
    return conv_parse_common(n, label, false);
}

static enum qc_status conv_transpose_parse(struct qc_node *n, int64_t opset, const char *label)
{
    (void)opset;
    return conv_parse_common(n, label, true);
}

/* Checks an attribute's value count against the spatial rank. */
static enum qc_status check_count(const char *label, const char *name, int count, int nsp,
                                  int mult)
{
    if (count == 0 || count == mult * nsp)
        return QC_OK;
    qc_log_error("%s: attribute '%s' has %d values, expected %d for %d spatial dims", label,
                 name, count, mult * nsp, nsp);
    return QC_ERR_ONNX;
}

static enum qc_status shape_error(const char *label, const char *what,
                                  const struct qc_tensor *x, const struct qc_tensor *w)
{
    char sx[128], sw[128];
    qc_log_error("%s: input %s, weight %s: %s", label, qc_shape_str(&x->shape, sx, sizeof(sx)),
                 qc_shape_str(&w->shape, sw, sizeof(sw)), what);
    return QC_ERR_SHAPE;
}

/* Output size and begin/end pads of spatial axis i (ONNX Conv/ConvTranspose
 * formulas).  ek = (k-1)*dilation + 1 is the dilated kernel extent. */
static enum qc_status resolve_axis(const struct qc_conv_params *p, int nsp, int i, int64_t in,
                                   int64_t k, int64_t *out, int64_t *pb, int64_t *pe)
{
    int64_t s = p->n_strides ? p->strides[i] : 1;
    int64_t dl = p->n_dilations ? p->dilations[i] : 1;
    int64_t ek = (k - 1) * dl + 1;
    int64_t b = p->n_pads ? p->pads[i] : 0;
    int64_t e = p->n_pads ? p->pads[i + nsp] : 0;
    int64_t total;

    if (!p->transpose) {
        switch (p->auto_pad) {
        case QC_AUTO_PAD_SAME_UPPER:
        case QC_AUTO_PAD_SAME_LOWER:
            /* out = ceil(in / s); total = (out-1)*s + ek - in, extra pad at the
             * end for SAME_UPPER, at the begin for SAME_LOWER */
            *out = (in + s - 1) / s;
            total = QC_MAX((*out - 1) * s + ek - in, 0);
            b = p->auto_pad == QC_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            e = total - b;
            break;
        case QC_AUTO_PAD_VALID:
            b = 0;
            e = 0;
            /* fall through */
        case QC_AUTO_PAD_NOTSET:
            /* out = floor((in + b + e - ek) / s) + 1 */
            if (in + b + e < ek)
                return QC_ERR_SHAPE;
            *out = (in + b + e - ek) / s + 1;
            break;
        }
    } else {
        int64_t op = p->n_output_padding ? p->output_padding[i] : 0;
        /* full = s*(in-1) + output_padding + ek: the output before pads */
        int64_t full = s * (in - 1) + op + ek;
        if (p->n_output_shape || p->auto_pad == QC_AUTO_PAD_SAME_UPPER ||
            p->auto_pad == QC_AUTO_PAD_SAME_LOWER) {
            /* out given (or in*s for SAME); total = full - out, the odd
             * pixel cropped at the end for SAME_UPPER, at the begin
             * otherwise (ONNX spec; ONNX Runtime agrees) */
            if (p->n_output_shape)
                *out = p->output_shape[p->n_output_shape - nsp + i];
            else
                *out = in * s;
            total = QC_MAX(full - *out, 0);
            b = p->auto_pad == QC_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            e = total - b;
        } else {
            if (p->auto_pad == QC_AUTO_PAD_VALID) {
                b = 0;
                e = 0;
            }
            *out = full - b - e;
        }
        if (op >= s && op >= dl)
            return QC_ERR_SHAPE;
    }
    *pb = b;
    *pe = e;
    return *out >= 1 ? QC_OK : QC_ERR_SHAPE;
}

/* Validates the inputs of node n against its params and fills *d.  Logs
 * with label on failure. */
enum qc_status qc_conv_resolve(const struct qc_node *n, const char *label,
                               const struct qc_tensor *const *in, struct qc_conv_dims *d)
{
    const struct qc_conv_params *p = n->params;
    const struct qc_tensor *x = in[0], *w = in[1];
    const struct qc_tensor *b = n->n_in > 2 ? in[2] : NULL;
    int rank = x->shape.ndim;
    int nsp = rank - 2;
    int64_t cpg;
    enum qc_status st;

    memset(d, 0, sizeof(*d));
    if (x->dtype != QC_DTYPE_F32 || w->dtype != QC_DTYPE_F32 || (b && b->dtype != QC_DTYPE_F32)) {
        qc_log_error("%s: input types %s/%s%s%s, only float32 is supported", label,
                     qc_dtype_name(x->dtype), qc_dtype_name(w->dtype), b ? "/" : "",
                     b ? qc_dtype_name(b->dtype) : "");
        return QC_ERR_UNSUPPORTED;
    }
    if (rank < 3 || rank > 2 + QC_CONV_MAX_SPATIAL)
        return shape_error(label, "expected 1, 2 or 3 spatial dims (input rank 3..5)", x, w);
    if (w->shape.ndim != rank)
        return shape_error(label, "weight rank differs from input rank", x, w);
    st = check_count(label, "kernel_shape", p->n_kernel, nsp, 1);
    if (st == QC_OK)
        st = check_count(label, "strides", p->n_strides, nsp, 1);
    if (st == QC_OK)
        st = check_count(label, "dilations", p->n_dilations, nsp, 1);
    if (st == QC_OK)
        st = check_count(label, "pads", p->n_pads, nsp, 2);
    if (st == QC_OK)
        st = check_count(label, "output_padding", p->n_output_padding, nsp, 1);
    if (st == QC_OK && p->n_output_shape != 0 && p->n_output_shape != nsp &&
        p->n_output_shape != nsp + 2) {
        qc_log_error("%s: attribute 'output_shape' has %d values, expected %d", label,
                     p->n_output_shape, nsp);
        st = QC_ERR_ONNX;
    }
    if (st != QC_OK)
        return st;
    for (int i = 0; i < p->n_kernel; i++)
        if (p->kernel[i] != w->shape.dims[2 + i])
            return shape_error(label, "kernel_shape attribute disagrees with the weight", x, w);

    d->nsp = nsp;
    d->batch = x->shape.dims[0];
    d->c_in = x->shape.dims[1];
    d->group = p->group;
    if (d->c_in % d->group != 0)
        return shape_error(label, "input channels not divisible by group", x, w);
    cpg = d->c_in / d->group;
    if (!p->transpose) {
        d->c_out = w->shape.dims[0];
        if (d->c_out % d->group != 0)
            return shape_error(label, "output channels (weight dim 0) not divisible by group",
                               x, w);
        if (w->shape.dims[1] != cpg)
            return shape_error(label, "weight dim 1 must be input channels / group", x, w);
    } else {
        if (w->shape.dims[0] != d->c_in)
            return shape_error(label, "weight dim 0 must equal input channels", x, w);
        d->c_out = w->shape.dims[1] * d->group;
    }
    if (b && (b->shape.ndim != 1 || b->shape.dims[0] != d->c_out)) {
        char sb[128];
        qc_log_error("%s: bias %s, expected [%lld]", label,
                     qc_shape_str(&b->shape, sb, sizeof(sb)), (long long)d->c_out);
        return QC_ERR_SHAPE;
    }

    struct qc_conv_geom *g = &d->geom;
    for (int a = 0; a < 3; a++) {
        g->in[a] = g->out[a] = g->kernel[a] = g->stride[a] = g->dilation[a] = 1;
        g->pad[a] = 0;
    }
    g->channels = p->transpose ? d->c_out / d->group : cpg;
    d->y.ndim = rank;
    d->y.dims[0] = d->batch;
    d->y.dims[1] = d->c_out;
    for (int i = 0; i < nsp; i++) {
        int a = 3 - nsp + i;
        int64_t xin = x->shape.dims[2 + i], yout = 0, pb = 0, pe = 0;
        st = resolve_axis(p, nsp, i, xin, w->shape.dims[2 + i], &yout, &pb, &pe);
        if (st != QC_OK)
            return shape_error(label, p->transpose ? "invalid output size or output_padding"
                                                   : "kernel larger than the padded input", x, w);
        g->kernel[a] = w->shape.dims[2 + i];
        g->stride[a] = p->n_strides ? p->strides[i] : 1;
        g->dilation[a] = p->n_dilations ? p->dilations[i] : 1;
        g->pad[a] = pb;
        d->pad_end[a] = pe;
        /* the column side is always the "out" of the geometry */
        g->in[a] = p->transpose ? yout : xin;
        g->out[a] = p->transpose ? xin : yout;
        d->y.dims[2 + i] = yout;
    }
    return QC_OK;
}

static enum qc_status conv_infer(const struct qc_node *n, const char *label,
                                 const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    struct qc_conv_dims d;
    enum qc_status st = qc_conv_resolve(n, label, in, &d);
    if (st != QC_OK)
        return st;
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = d.y;
    return QC_OK;
}

/* Conv by a direct loop when each group has one input channel (depthwise):
 * output channel m reads input channel m / (c_out / group). */
static bool conv_is_depthwise(const struct qc_conv_dims *d)
{
    return d->group > 1 && d->c_in == d->group;
}

/* A 1x1, stride 1, unpadded Conv whose columns are the image itself. */
static bool conv_is_pointwise(const struct qc_conv_dims *d)
{
    const struct qc_conv_geom *g = &d->geom;
    for (int a = 0; a < 3; a++)
        if (g->kernel[a] != 1 || g->stride[a] != 1 || g->pad[a] != 0 || g->in[a] != g->out[a])
            return false;
    return true;
}

/* Group-1 2D Conv with few channels: direct kernels (conv_direct.c), no
 * lowering.  The pointwise stride-1 case stays a plain product. */
static bool conv_is_direct(const struct qc_conv_dims *d, bool transpose)
{
    return !transpose && d->group == 1 && !conv_is_pointwise(d) &&
           qc_direct_supported(&d->geom, d->c_out);
}

/* How the gemm path lowers a batch: nb images side by side per product, so
 * that small images still give products wide enough (CHUNK_COLS columns) for
 * sgemm to run at speed, within CHUNK_BYTES of workspace.  The chunk buffers
 * are col [rows, nb*L] and, when nb > 1, aux [aux_rows, nb*L]: Conv's product
 * (dY_g in the backward) before it is scattered to (gathered from) NCHW, or
 * ConvTranspose's gathered x_g and its dX_g product. */
#define CHUNK_COLS 1024
#define CHUNK_BYTES ((int64_t)8 << 20)

struct conv_chunk {
    int64_t nb;             /* images per product                         */
    int64_t rows, aux_rows; /* col rows; aux rows when nb > 1             */
    int64_t cols;           /* columns per image (L)                      */
    bool    direct;         /* pointwise Conv with nb == 1: no col buffer */
};

static struct conv_chunk conv_chunking(const struct qc_conv_dims *d, bool transpose)
{
    const struct qc_conv_geom *g = &d->geom;
    struct conv_chunk c;
    int64_t per_img, cap;

    c.rows = g->channels * qc_conv_geom_kvol(g);
    c.aux_rows = transpose ? d->c_in / d->group : d->c_out / d->group;
    c.cols = qc_conv_geom_ovol(g);
    c.nb = (CHUNK_COLS + c.cols - 1) / c.cols;
    per_img = (c.rows + c.aux_rows) * c.cols * (int64_t)sizeof(float);
    cap = CHUNK_BYTES / QC_MAX(per_img, 1);
    c.nb = QC_MAX(QC_MIN(QC_MIN(c.nb, cap), d->batch), 1);
    c.direct = !transpose && c.nb == 1 && conv_is_pointwise(d);
    return c;
}

/* Floats rounded up to whole 64-byte lines, so that every part of a slice
 * stays aligned. */
static int64_t round_line(int64_t floats)
{
    return (floats + 15) / 16 * 16;
}

/* One thread's workspace slice, in floats: col and aux (see conv_chunking),
 * then the backward's partial dW (the weight's size) and dB (c_out). */
struct conv_slice {
    int64_t col, aux, dw, db, total;     /* offsets of the parts; total size */
};

static struct conv_slice conv_slice_layout(const struct qc_conv_dims *d, const struct conv_chunk *c)
{
    struct conv_slice s;
    int64_t wsize = d->c_in / d->group * d->c_out * qc_conv_geom_kvol(&d->geom);
    s.col = 0;
    s.aux = c->direct ? 0 : round_line(c->rows * c->nb * c->cols);
    s.dw = s.aux + (c->nb > 1 ? round_line(c->aux_rows * c->nb * c->cols) : 0);
    s.db = s.dw + round_line(wsize);
    s.total = s.db + round_line(d->c_out);
    return s;
}

/* Threads the gemm path uses: one chunk each at least. */
static int conv_threads(const struct qc_conv_dims *d, const struct conv_chunk *c, int threads)
{
    int64_t n_chunks = (d->batch + c->nb - 1) / c->nb;
    return (int)QC_MAX(QC_MIN((int64_t)threads, n_chunks), 1);
}

/* One slice per thread; the depthwise Conv runs without workspace. */
static size_t conv_workspace(const struct qc_node *n, const struct qc_tensor *const *in,
                             const struct qc_tensor *const *out, int threads)
{
    const struct qc_conv_params *p = n->params;
    struct qc_conv_dims d;
    struct conv_chunk c;
    struct conv_slice s;
    (void)out;
    if (qc_conv_resolve(n, "workspace", in, &d) != QC_OK)
        return 0;
    if (!p->transpose && conv_is_depthwise(&d))
        return 0;
    if (conv_is_direct(&d, p->transpose))
        return qc_direct_workspace(&d.geom, d.c_out, d.batch, QC_MAX(threads, 1));
    c = conv_chunking(&d, p->transpose);
    s = conv_slice_layout(&d, &c);
    return (size_t)(s.total * conv_threads(&d, &c, QC_MAX(threads, 1))) * sizeof(float);
}

/* A training Conv keeps its columns for the backward when all of them
 * take at most SAVED_COL_BYTES: group g of chunk ci has its col [rows,
 * nb*L] at (ci*group + g)*rows*nb*L floats of the saved state.  Small images are where lowering costs most
 * next to the products (short lines); large ones would need too much
 * memory.  Returns the floats, 0 when the columns are not kept. */
#define SAVED_COL_BYTES ((int64_t)32 << 20)

static int64_t conv_saved_floats(const struct qc_conv_dims *d, const struct conv_chunk *c,
                                 bool transpose)
{
    int64_t n_chunks = (d->batch + c->nb - 1) / c->nb;
    int64_t floats = n_chunks * d->group * c->rows * c->nb * c->cols;
    if (transpose || c->direct || conv_is_depthwise(d) || conv_is_direct(d, transpose))
        return 0;
    return floats * (int64_t)sizeof(float) <= SAVED_COL_BYTES ? floats : 0;
}

static size_t conv_saved(const struct qc_node *n, const struct qc_tensor *const *in,
                         const struct qc_tensor *const *out)
{
    const struct qc_conv_params *p = n->params;
    struct qc_conv_dims d;
    struct conv_chunk c;
    (void)out;
    if (qc_conv_resolve(n, "saved", in, &d) != QC_OK)
        return 0;
    c = conv_chunking(&d, p->transpose);
    return (size_t)conv_saved_floats(&d, &c, p->transpose) * sizeof(float);
}

/* The saved columns when this call may use them (training, state large
 * enough), else NULL. */
static float *conv_saved_cols(const struct qc_op_ctx *ctx, const struct qc_conv_dims *d,
                              const struct conv_chunk *c, bool transpose)
{
    int64_t floats = conv_saved_floats(d, c, transpose);
    if (!ctx->training || !ctx->saved || floats == 0 ||
        ctx->saved_size < (size_t)floats * sizeof(float))
        return NULL;
    return ctx->saved;
}

/* y[n, m, :] += b[m] over batch*channels planes of plane elements. */
static void add_bias(float *y, const float *b, int64_t batch, int64_t channels, int64_t plane,
                     int threads)
{
    int64_t planes = batch * channels;
    int nt = threads > 1 ? threads : 1;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (planes * plane >= QC_PAR_MIN_STREAM)
#endif
    for (int64_t i = 0; i < planes; i++) {
        float bv = b[i % channels];
        float *yp = y + i * plane;
        for (int64_t j = 0; j < plane; j++)
            yp[j] += bv;
    }
}

/* dst[i] = ep(src[i]) for the l values of one output plane (src may be
 * dst): + *b when b, + res[i] when res, then relu (struct qc_conv_epilogue;
 * the same operations in the same order as the separate ops). */
static void ep_plane(float *dst, const float *src, int64_t l, const float *b, const float *res,
                     bool relu)
{
    float bv = b ? *b : 0.0f;
    if (b && res && relu) {
        for (int64_t i = 0; i < l; i++) {
            float v = (src[i] + bv) + res[i];
            dst[i] = v < 0.0f ? 0.0f : v;
        }
        return;
    }
    for (int64_t i = 0; i < l; i++) {
        float v = src[i];
        if (b)
            v = v + bv;
        if (res)
            v = v + res[i];
        dst[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

/* The residual and relu parts of the epilogue over all of y (planes of
 * `plane` values), for the paths that add the bias themselves. */
static void ep_after(float *y, const struct qc_conv_epilogue *ep, int64_t planes, int64_t plane,
                     int threads)
{
    int nt = threads > 1 ? threads : 1;
    (void)nt;
    if (!ep || (!ep->residual && !ep->relu))
        return;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (planes * plane >= QC_PAR_MIN_STREAM)
#endif
    for (int64_t i = 0; i < planes; i++)
        ep_plane(y + i * plane, y + i * plane, plane, NULL,
                 ep->residual ? ep->residual + i * plane : NULL, ep->relu);
}

/* Sum of n floats, in 8 interleaved partial sums (vectorizable, and a
 * fixed order). */
static float sum_floats(const float *v, int64_t n)
{
    float acc[8] = {0};
    float s = 0.0f;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += v[i + k];
    for (; i < n; i++)
        s += v[i];
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s;
}

/* Kernel tap k of a direct convolution: input offsets off[a] = k_a*dilation
 * - pad per axis, and the output positions o with 0 <= o*s + off < in as
 * [lo, hi). */
static void tap_range(const struct qc_conv_geom *g, int64_t k, int64_t off[3], int64_t lo[3],
                      int64_t hi[3])
{
    int64_t kw = k % g->kernel[2];
    int64_t kh = (k / g->kernel[2]) % g->kernel[1];
    int64_t kd = k / (g->kernel[2] * g->kernel[1]);
    off[0] = kd * g->dilation[0] - g->pad[0];
    off[1] = kh * g->dilation[1] - g->pad[1];
    off[2] = kw * g->dilation[2] - g->pad[2];
    for (int a = 0; a < 3; a++) {
        int64_t s = g->stride[a];
        int64_t l = off[a] >= 0 ? 0 : (-off[a] + s - 1) / s;
        int64_t h = g->in[a] - 1 - off[a] < 0 ? 0 : (g->in[a] - 1 - off[a]) / s + 1;
        lo[a] = l;
        hi[a] = QC_MAX(QC_MIN(h, g->out[a]), l);
    }
}

/* Depthwise Conv: y[n,m] = b[m] + sum_kv w[m,0,kv] * shift(x[n, m/mult], kv). */
static void depthwise_forward(const struct qc_conv_dims *d, const float *x, const float *w,
                              const float *b, float *y, int threads)
{
    const struct qc_conv_geom *g = &d->geom;
    int64_t mult = d->c_out / d->group;
    int64_t planes = d->batch * d->c_out;
    int64_t ivol = qc_conv_geom_ivol(g), ovol = qc_conv_geom_ovol(g), kv = qc_conv_geom_kvol(g);
    int nt = threads > 1 ? threads : 1;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) \
    if (planes * ovol * kv >= PAR_MIN_WORK)
#endif
    for (int64_t pi = 0; pi < planes; pi++) {
        int64_t img = pi / d->c_out, m = pi % d->c_out;
        const float *xp = x + (img * d->c_in + m / mult) * ivol;
        const float *wp = w + m * kv;
        float *yp = y + pi * ovol;
        float bv = b ? b[m] : 0.0f;
        for (int64_t j = 0; j < ovol; j++)
            yp[j] = bv;
        for (int64_t k = 0; k < kv; k++) {
            int64_t off[3], lo[3], hi[3];
            float wv = wp[k];
            tap_range(g, k, off, lo, hi);
            for (int64_t od = lo[0]; od < hi[0]; od++) {
                int64_t id = od * g->stride[0] + off[0];
                for (int64_t oh = lo[1]; oh < hi[1]; oh++) {
                    int64_t ih = oh * g->stride[1] + off[1];
                    const float *xl = xp + (id * g->in[1] + ih) * g->in[2] + off[2];
                    float *yl = yp + (od * g->out[1] + oh) * g->out[2];
                    int64_t sw = g->stride[2];
                    for (int64_t ow = lo[2]; ow < hi[2]; ow++)
                        yl[ow] += wv * xl[ow * sw];
                }
            }
        }
    }
}

/* Depthwise Conv backward, per output channel m of input channel c = m/mult,
 * image n and tap k (i(o) = o*s + off_k):
 *   dX[n,c,i(o)] += w[m,k] * dY[n,m,o]
 *   dW[m,k]      += sum_n sum_o dY[n,m,o] * x[n,c,i(o)]
 *   dB[m]        += sum_n sum_o dY[n,m,o]
 * Parallel over input channels: everything one channel touches (its dX
 * planes, its output channels' dW and dB) belongs to one thread, summed in a
 * fixed order, so the result does not depend on the thread count. */
static void depthwise_backward(const struct qc_conv_dims *d, const float *x, const float *w,
                               const float *dy, float *dx, float *dw, float *db, int threads)
{
    const struct qc_conv_geom *g = &d->geom;
    int64_t mult = d->c_out / d->group;
    int64_t ivol = qc_conv_geom_ivol(g), ovol = qc_conv_geom_ovol(g), kv = qc_conv_geom_kvol(g);
    int64_t sw = g->stride[2];
    int nt = threads > 1 ? threads : 1;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) \
    if (d->batch * d->c_out * ovol * kv >= PAR_MIN_WORK)
#endif
    for (int64_t c = 0; c < d->c_in; c++) {
        for (int64_t m = c * mult; m < (c + 1) * mult; m++) {
            for (int64_t img = 0; img < d->batch; img++) {
                const float *xp = x + (img * d->c_in + c) * ivol;
                const float *dyp = dy + (img * d->c_out + m) * ovol;
                float *dxp = dx ? dx + (img * d->c_in + c) * ivol : NULL;
                if (db)
                    db[m] += sum_floats(dyp, ovol);
                for (int64_t k = 0; k < kv && (dx || dw); k++) {
                    int64_t off[3], lo[3], hi[3];
                    float wv = w[m * kv + k], acc = 0.0f;
                    tap_range(g, k, off, lo, hi);
                    for (int64_t od = lo[0]; od < hi[0]; od++) {
                        int64_t id = od * g->stride[0] + off[0];
                        for (int64_t oh = lo[1]; oh < hi[1]; oh++) {
                            int64_t ih = oh * g->stride[1] + off[1];
                            int64_t xo = (id * g->in[1] + ih) * g->in[2] + off[2];
                            const float *dyl = dyp + (od * g->out[1] + oh) * g->out[2];
                            const float *xl = xp + xo;
                            if (dw)
                                for (int64_t ow = lo[2]; ow < hi[2]; ow++)
                                    acc += dyl[ow] * xl[ow * sw];
                            if (dxp) {
                                float *dxl = dxp + xo;
                                for (int64_t ow = lo[2]; ow < hi[2]; ow++)
                                    dxl[ow * sw] += wv * dyl[ow];
                            }
                        }
                    }
                    if (dw)
                        dw[m * kv + k] += acc;
                }
            }
        }
    }
}

/* Images img0 .. img0+nb-1 (fewer at the end) through im2col + sgemm:
 * y_g[M_g, cnt*L] = w_g[M_g, C_g*KV] * col[C_g*KV, cnt*L], then scattered
 * back to NCHW when several images share one product.  ws: this thread's
 * workspace slice; scol: where to keep this chunk's columns, or NULL. */
static enum qc_status conv_chunk_forward(const struct qc_op_ctx *ctx, const struct qc_conv_dims *d,
                                         const struct conv_chunk *ch, const struct conv_slice *sl,
                                         const float *x, const float *w,
                                         const struct qc_conv_epilogue *ep, float *y, int64_t img0,
                                         float *ws, float *scol)
{
    const float *bias = ep ? ep->bias : NULL, *res = ep ? ep->residual : NULL;
    bool relu = ep && ep->relu;
    const struct qc_conv_geom *g = &d->geom;
    int64_t cg = d->c_in / d->group, mg = d->c_out / d->group;
    int64_t lin = qc_conv_geom_ivol(g);
    int64_t l = ch->cols;
    int64_t cnt = QC_MIN(ch->nb, d->batch - img0);
    int64_t ld = cnt * l;
    float *tmp = ws + sl->aux;
    for (int64_t grp = 0; grp < d->group; grp++) {
        const float *src = x + (img0 * d->c_in + grp * cg) * lin;
        float *col = scol ? scol + grp * ch->rows * ld : ws + sl->col;
        float *yg = y + (img0 * d->c_out + grp * mg) * l;
        enum qc_status st;
        if (!ch->direct) {
            for (int64_t j = 0; j < cnt; j++)
                qc_im2col(g, src + j * d->c_in * lin, col + j * l, ld, 1);
            src = col;
        }
        st = qc_sgemm(ctx->be, false, false, mg, ld, ch->rows, 1.0f, w + grp * mg * ch->rows,
                      src, 0.0f, cnt == 1 ? yg : tmp);
        if (st != QC_OK)
            return st;
        /* the epilogue while the product is in cache (in place when cnt == 1,
         * else as it is scattered back to NCHW) */
        for (int64_t j = 0; j < cnt; j++)
            for (int64_t m = 0; m < mg; m++) {
                int64_t o = (j * d->c_out + m) * l;
                const float *from = cnt == 1 ? yg + o : tmp + m * ld + j * l;
                const float *b = bias ? bias + grp * mg + m : NULL;
                const float *r = res ? res + (img0 * d->c_out + grp * mg) * l + o : NULL;
                if (!b && !r && !relu) {
                    if (cnt > 1)
                        memcpy(yg + o, from, (size_t)l * sizeof(float));
                } else {
                    ep_plane(yg + o, from, l, b, r, relu);
                }
            }
    }
    return QC_OK;
}

/* ConvTranspose forward of one chunk: col[M_g*KV, cnt*L_in] = w_g^T * x_g
 * (w_g = w[grp*C_g..] as [C_g, M_g*KV], x_g of cnt images gathered side by
 * side), then y_g = col2im(col) per image into its zeroed planes. */
static enum qc_status convt_chunk_forward(const struct qc_op_ctx *ctx,
                                          const struct qc_conv_dims *d,
                                          const struct conv_chunk *ch,
                                          const struct conv_slice *sl, const float *x,
                                          const float *w, float *y, int64_t img0, float *ws)
{
    const struct qc_conv_geom *g = &d->geom;
    int64_t cg = d->c_in / d->group, mg = d->c_out / d->group;
    int64_t lin = ch->cols, lout = qc_conv_geom_ivol(g);
    int64_t cnt = QC_MIN(ch->nb, d->batch - img0);
    int64_t ld = cnt * lin;
    float *col = ws + sl->col, *xbuf = ws + sl->aux;

    memset(y + img0 * d->c_out * lout, 0, (size_t)(cnt * d->c_out * lout) * sizeof(float));
    for (int64_t grp = 0; grp < d->group; grp++) {
        const float *xg = x + (img0 * d->c_in + grp * cg) * lin;
        enum qc_status st;
        if (cnt > 1) {
            for (int64_t j = 0; j < cnt; j++)
                for (int64_t c = 0; c < cg; c++)
                    memcpy(xbuf + c * ld + j * lin, xg + (j * d->c_in + c) * lin,
                           (size_t)lin * sizeof(float));
            xg = xbuf;
        }
        st = qc_sgemm(ctx->be, true, false, ch->rows, ld, cg, 1.0f, w + grp * cg * ch->rows, xg,
                      0.0f, col);
        if (st != QC_OK)
            return st;
        for (int64_t j = 0; j < cnt; j++)
            qc_col2im(g, col + j * lin, ld, y + ((img0 + j) * d->c_out + grp * mg) * lout, 1);
    }
    return QC_OK;
}

/* dB partial db[grp*M_g + m] += sum of dY over the chunk's planes of group
 * grp (l elements each). */
static void chunk_bias_grad(const struct qc_conv_dims *d, const float *dy, int64_t img0,
                            int64_t cnt, int64_t grp, int64_t l, float *db)
{
    int64_t mg = d->c_out / d->group;
    for (int64_t j = 0; j < cnt; j++)
        for (int64_t m = 0; m < mg; m++)
            db[grp * mg + m] += sum_floats(dy + ((img0 + j) * d->c_out + grp * mg + m) * l, l);
}

/* Conv backward of one chunk, per group (col = im2col(x_g) of the chunk):
 *   dW_g += dY_g * col^T           [M_g, C_g*KV]   (into this thread's dw)
 *   dX_g += col2im(W_g^T * dY_g)   [C_g, in...]    (straight into dX)
 *   dB   += sum over images and positions of dY    (into this thread's db)
 * dY_g of several images is first gathered side by side into aux.  scol:
 * the chunk's columns kept by the forward, or NULL to lower x again. */
static enum qc_status conv_chunk_backward(const struct qc_op_ctx *ctx,
                                          const struct qc_conv_dims *d,
                                          const struct conv_chunk *ch,
                                          const struct conv_slice *sl, const float *x,
                                          const float *w, const float *dy, float *dx,
                                          bool want_dw, bool want_db, int64_t img0, float *ws,
                                          const float *scol)
{
    const struct qc_conv_geom *g = &d->geom;
    int64_t cg = d->c_in / d->group, mg = d->c_out / d->group;
    int64_t lin = qc_conv_geom_ivol(g);
    int64_t l = ch->cols;
    int64_t cnt = QC_MIN(ch->nb, d->batch - img0);
    int64_t ld = cnt * l;
    float *col = ws + sl->col, *dybuf = ws + sl->aux, *dw = ws + sl->dw, *db = ws + sl->db;
    enum qc_status st;

    for (int64_t grp = 0; grp < d->group; grp++) {
        const float *xg = x + (img0 * d->c_in + grp * cg) * lin;
        const float *wg = w + grp * mg * ch->rows;
        const float *dyg = dy + (img0 * d->c_out + grp * mg) * l;
        if (want_db)
            chunk_bias_grad(d, dy, img0, cnt, grp, l, db);
        if (!want_dw && !dx)
            continue;
        if (cnt > 1) {
            for (int64_t j = 0; j < cnt; j++)
                for (int64_t m = 0; m < mg; m++)
                    memcpy(dybuf + m * ld + j * l, dyg + (j * d->c_out + m) * l,
                           (size_t)l * sizeof(float));
            dyg = dybuf;
        }
        if (want_dw) {
            const float *src = scol ? scol + grp * ch->rows * ld : xg;
            if (!ch->direct && !scol) {
                for (int64_t j = 0; j < cnt; j++)
                    qc_im2col(g, xg + j * d->c_in * lin, col + j * l, ld, 1);
                src = col;
            }
            st = qc_sgemm(ctx->be, false, true, mg, ch->rows, ld, 1.0f, dyg, src, 1.0f,
                          dw + grp * mg * ch->rows);
            if (st != QC_OK)
                return st;
        }
        if (!dx)
            continue;
        if (ch->direct) {
            /* pointwise, one image: the columns are dX_g itself */
            st = qc_sgemm(ctx->be, true, false, ch->rows, ld, mg, 1.0f, wg, dyg, 1.0f,
                          dx + (img0 * d->c_in + grp * cg) * lin);
            if (st != QC_OK)
                return st;
            continue;
        }
        st = qc_sgemm(ctx->be, true, false, ch->rows, ld, mg, 1.0f, wg, dyg, 0.0f, col);
        if (st != QC_OK)
            return st;
        for (int64_t j = 0; j < cnt; j++)
            qc_col2im(g, col + j * l, ld, dx + ((img0 + j) * d->c_in + grp * cg) * lin, 1);
    }
    return QC_OK;
}

/* ConvTranspose backward of one chunk, per group (the forward is y_g =
 * col2im(W_g^T x_g), so with dcol = im2col(dY_g) [M_g*KV, L_in]):
 *   dX_g += W_g * dcol             [C_g, L_in]     (W_g as [C_g, M_g*KV])
 *   dW_g += x_g * dcol^T           [C_g, M_g*KV]   (into this thread's dw)
 *   dB   += sum over images and positions of dY    (into this thread's db)
 * x_g of several images is gathered side by side into aux, which then takes
 * the dX_g product before it is added back to NCHW. */
static enum qc_status convt_chunk_backward(const struct qc_op_ctx *ctx,
                                           const struct qc_conv_dims *d,
                                           const struct conv_chunk *ch,
                                           const struct conv_slice *sl, const float *x,
                                           const float *w, const float *dy, float *dx,
                                           bool want_dw, bool want_db, int64_t img0, float *ws)
{
    const struct qc_conv_geom *g = &d->geom;
    int64_t cg = d->c_in / d->group, mg = d->c_out / d->group;
    int64_t lin = ch->cols, lout = qc_conv_geom_ivol(g);
    int64_t cnt = QC_MIN(ch->nb, d->batch - img0);
    int64_t ld = cnt * lin;
    float *col = ws + sl->col, *aux = ws + sl->aux, *dw = ws + sl->dw, *db = ws + sl->db;
    enum qc_status st;

    for (int64_t grp = 0; grp < d->group; grp++) {
        const float *wg = w + grp * cg * ch->rows;
        float *dxg = dx ? dx + (img0 * d->c_in + grp * cg) * lin : NULL;
        if (want_db)
            chunk_bias_grad(d, dy, img0, cnt, grp, lout, db);
        if (!want_dw && !dx)
            continue;
        for (int64_t j = 0; j < cnt; j++)
            qc_im2col(g, dy + ((img0 + j) * d->c_out + grp * mg) * lout, col + j * lin, ld, 1);
        if (want_dw) {
            const float *xg = x + (img0 * d->c_in + grp * cg) * lin;
            if (cnt > 1) {
                for (int64_t j = 0; j < cnt; j++)
                    for (int64_t c = 0; c < cg; c++)
                        memcpy(aux + c * ld + j * lin, xg + (j * d->c_in + c) * lin,
                               (size_t)lin * sizeof(float));
                xg = aux;
            }
            st = qc_sgemm(ctx->be, false, true, cg, ch->rows, ld, 1.0f, xg, col, 1.0f,
                          dw + grp * cg * ch->rows);
            if (st != QC_OK)
                return st;
        }
        if (!dxg)
            continue;
        st = qc_sgemm(ctx->be, false, false, cg, ld, ch->rows, 1.0f, wg, col,
                      cnt > 1 ? 0.0f : 1.0f, cnt > 1 ? aux : dxg);
        if (st != QC_OK)
            return st;
        for (int64_t j = 0; cnt > 1 && j < cnt; j++)
            for (int64_t c = 0; c < cg; c++) {
                float *dst = dxg + (j * d->c_in + c) * lin;
                const float *src = aux + c * ld + j * lin;
                for (int64_t i = 0; i < lin; i++)
                    dst[i] += src[i];
            }
    }
    return QC_OK;
}

/* What one chunk of the gemm path runs. */
enum conv_pass {
    PASS_CONV_FORWARD,
    PASS_CONVT_FORWARD,
    PASS_CONV_BACKWARD,
    PASS_CONVT_BACKWARD,
};

struct conv_run {
    enum conv_pass           pass;
    const struct qc_conv_dims  *d;
    struct conv_chunk        ch;
    struct conv_slice        sl;
    const float             *x, *w, *dy;
    float                   *y, *dx;
    float                   *saved_col;   /* columns kept for the backward, or NULL */
    const struct qc_conv_epilogue *ep;    /* Conv forward: bias, residual, relu      */
    bool                     want_dw, want_db;
};

/* Chunks of nb images go to the threads in a static split; each thread
 * works in its own workspace slice and calls the single-threaded sgemm, so
 * the result does not depend on timing.  The backward's per-thread dW/dB
 * partials are zeroed first and summed in thread order by the caller. */
static enum qc_status conv_run_chunks(const struct qc_op_ctx *ctx, const struct conv_run *r)
{
    const struct qc_conv_dims *d = r->d;
    int64_t n_chunks = (d->batch + r->ch.nb - 1) / r->ch.nb;
    int threads = conv_threads(d, &r->ch, ctx->threads);
    enum qc_status st = QC_OK;

    QC_ASSERT(ctx->workspace_size >= (size_t)(r->sl.total * threads) * sizeof(float));
    if (r->want_dw || r->want_db)
        for (int t = 0; t < threads; t++)
            memset((float *)ctx->workspace + t * r->sl.total + r->sl.dw, 0,
                   (size_t)(r->sl.total - r->sl.dw) * sizeof(float));
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
#endif
    for (int64_t ci = 0; ci < n_chunks; ci++) {
        int tid = 0;
        float *ws, *scol;
        enum qc_status cst = QC_OK;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        ws = (float *)ctx->workspace + (size_t)tid * (size_t)r->sl.total;
        scol = r->saved_col ? r->saved_col + ci * d->group * r->ch.rows * r->ch.nb * r->ch.cols
                            : NULL;
        switch (r->pass) {
        case PASS_CONV_FORWARD:
            cst = conv_chunk_forward(ctx, d, &r->ch, &r->sl, r->x, r->w, r->ep, r->y, ci * r->ch.nb,
                                     ws, scol);
            break;
        case PASS_CONVT_FORWARD:
            cst = convt_chunk_forward(ctx, d, &r->ch, &r->sl, r->x, r->w, r->y, ci * r->ch.nb,
                                      ws);
            break;
        case PASS_CONV_BACKWARD:
            cst = conv_chunk_backward(ctx, d, &r->ch, &r->sl, r->x, r->w, r->dy, r->dx,
                                      r->want_dw, r->want_db, ci * r->ch.nb, ws, scol);
            break;
        case PASS_CONVT_BACKWARD:
            cst = convt_chunk_backward(ctx, d, &r->ch, &r->sl, r->x, r->w, r->dy, r->dx,
                                       r->want_dw, r->want_db, ci * r->ch.nb, ws);
            break;
        }
        if (cst != QC_OK) {
#ifdef _OPENMP
#pragma omp critical(qc_conv_status)
#endif
            st = cst;
        }
    }
    return st;
}

/* dst[i] += sum over threads t (in order) of the partial at offset `part`
 * of slice t. */
static void reduce_partials(const struct qc_op_ctx *ctx, const struct conv_run *r, int64_t part,
                            int64_t count, float *dst)
{
    const float *ws = ctx->workspace;
    int threads = conv_threads(r->d, &r->ch, ctx->threads);
    for (int64_t i = 0; i < count; i++) {
        float s = ws[part + i];
        for (int t = 1; t < threads; t++)
            s += ws[(int64_t)t * r->sl.total + part + i];
        dst[i] += s;
    }
}

/* The forward with its epilogue (struct qc_conv_epilogue; its bias stands
 * for in[2]): the direct kernels and the gemm path apply it as they write y,
 * the depthwise loop and ConvTranspose in a pass after. */
static enum qc_status conv_forward_ep(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out,
                                      const struct qc_conv_epilogue *ep)
{
    const struct qc_conv_params *p = n->params;
    struct qc_conv_dims d;
    struct conv_run r;
    int64_t plane;
    enum qc_status st;

    st = qc_conv_resolve(n, ctx->label, in, &d);
    if (st != QC_OK)
        return st;
    memset(&r, 0, sizeof(r));
    r.d = &d;
    r.x = qc_tensor_f32(in[0]);
    r.w = qc_tensor_f32(in[1]);
    r.y = qc_tensor_f32(out[0]);
    plane = qc_shape_nelem(&d.y) / (d.batch * d.c_out);
    if (!p->transpose && conv_is_depthwise(&d)) {
        depthwise_forward(&d, r.x, r.w, ep->bias, r.y, ctx->threads);
        ep_after(r.y, ep, d.batch * d.c_out, plane, ctx->threads);
        return QC_OK;
    }
    if (conv_is_direct(&d, p->transpose)) {
        QC_ASSERT(ctx->workspace_size >=
                  qc_direct_workspace(&d.geom, d.c_out, d.batch, ctx->threads));
        qc_direct_forward(&d.geom, d.c_out, d.batch, r.x, r.w, ep, r.y, ctx->workspace,
                          ctx->threads);
        return QC_OK;
    }
    r.pass = p->transpose ? PASS_CONVT_FORWARD : PASS_CONV_FORWARD;
    r.ch = conv_chunking(&d, p->transpose);
    r.sl = conv_slice_layout(&d, &r.ch);
    r.saved_col = conv_saved_cols(ctx, &d, &r.ch, p->transpose);
    r.ep = ep;
    st = conv_run_chunks(ctx, &r);
    if (st != QC_OK)
        return st;
    if (p->transpose) {
        if (ep->bias)
            add_bias(r.y, ep->bias, d.batch, d.c_out, plane, ctx->threads);
        ep_after(r.y, ep, d.batch * d.c_out, plane, ctx->threads);
    }
    return QC_OK;
}

static enum qc_status conv_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    struct qc_conv_epilogue ep = {
        .bias = n->n_in > 2 && in[2] ? qc_tensor_f32(in[2]) : NULL,
    };
    return conv_forward_ep(n, ctx, in, out, &ep);
}

enum qc_status qc_conv_forward_fused(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out,
                                     const struct qc_conv_epilogue *ep)
{
    return conv_forward_ep(n, ctx, in, out, ep);
}

/* Backward of Conv and ConvTranspose (formulas at conv_chunk_backward,
 * convt_chunk_backward and depthwise_backward).  dW and dB are summed over
 * the batch in per-thread partials, then added into din[1], din[2]. */
static enum qc_status conv_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                        const struct qc_tensor *const *in,
                                        const struct qc_tensor *const *out,
                                        const struct qc_tensor *const *dout,
                                        struct qc_tensor *const *din)
{
    const struct qc_conv_params *p = n->params;
    struct qc_conv_dims d;
    struct conv_run r;
    float *dw, *db;
    enum qc_status st;

    (void)out;
    if (!dout[0])
        return QC_OK;
    st = qc_conv_resolve(n, ctx->label, in, &d);
    if (st != QC_OK)
        return st;
    memset(&r, 0, sizeof(r));
    r.d = &d;
    r.x = qc_tensor_f32(in[0]);
    r.w = qc_tensor_f32(in[1]);
    r.dy = qc_tensor_f32(dout[0]);
    r.dx = din[0] ? qc_tensor_f32(din[0]) : NULL;
    dw = din[1] ? qc_tensor_f32(din[1]) : NULL;
    db = n->n_in > 2 && in[2] && din[2] ? qc_tensor_f32(din[2]) : NULL;
    if (!r.dx && !dw && !db)
        return QC_OK;
    if (!p->transpose && conv_is_depthwise(&d)) {
        depthwise_backward(&d, r.x, r.w, r.dy, r.dx, dw, db, ctx->threads);
        return QC_OK;
    }
    if (conv_is_direct(&d, p->transpose)) {
        QC_ASSERT(ctx->workspace_size >=
                  qc_direct_workspace(&d.geom, d.c_out, d.batch, ctx->threads));
        qc_direct_backward(&d.geom, d.c_out, d.batch, r.x, r.w, r.dy, r.dx, dw, db,
                           ctx->workspace, ctx->threads);
        return QC_OK;
    }
    r.pass = p->transpose ? PASS_CONVT_BACKWARD : PASS_CONV_BACKWARD;
    r.ch = conv_chunking(&d, p->transpose);
    r.sl = conv_slice_layout(&d, &r.ch);
    r.saved_col = conv_saved_cols(ctx, &d, &r.ch, p->transpose);
    r.want_dw = dw != NULL;
    r.want_db = db != NULL;
    st = conv_run_chunks(ctx, &r);
    if (st != QC_OK)
        return st;
    if (dw)
        reduce_partials(ctx, &r, r.sl.dw, qc_tensor_nelem(in[1]), dw);
    if (db)
        reduce_partials(ctx, &r, r.sl.db, d.c_out, db);
    return QC_OK;
}

const struct qc_op_def qc_op_conv = {
    .n_in_min = 2, .n_in_max = 3, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER,
    .parse = conv_parse,
    .infer = conv_infer,
    .workspace = conv_workspace,
    .saved = conv_saved,
    .cpu = {.forward = conv_forward_cpu, .backward = conv_backward_cpu},
    /* W [C_out, C_in/group, kH, kW], B [C_out] */
    .roles = {.weight = QC_SLOT(1), .bias = QC_SLOT(2), .channel_axis = 0,
              .trainable = QC_INPUT_BIT(1) | QC_INPUT_BIT(2), .quant = QC_QUANT_WEIGHT,
              .cell = QC_CELL_CONV},
};

const struct qc_op_def qc_op_conv_transpose = {
    .n_in_min = 2, .n_in_max = 3, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER,
    .parse = conv_transpose_parse,
    .infer = conv_infer,
    .workspace = conv_workspace,
    .cpu = {.forward = conv_forward_cpu, .backward = conv_backward_cpu},
    /* W [C_in, C_out/group, kH, kW], B [C_out] */
    .roles = {.weight = QC_SLOT(1), .bias = QC_SLOT(2), .channel_axis = 1,
              .trainable = QC_INPUT_BIT(1) | QC_INPUT_BIT(2), .quant = QC_QUANT_WEIGHT,
              .cell = QC_CELL_CONV},
};
