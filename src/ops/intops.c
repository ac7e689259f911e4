/*
 * intops.c - the integer products of integer-only exports: ConvInteger and
 * MatMulInteger (opset 10), forward only, exact.
 *
 * ConvInteger: x uint8/int8 [N, C, D1..Dk] (k = 1, 2, 3), w uint8/int8
 * [M, C/group, K1..Kk], optional zero points x_zp (scalar, x's type) and
 * w_zp (scalar or one per output channel, w's type); output int32
 *     y[n, m, o] = sum over c, k of (x[n, c, o*s - pb + k*d] - x_zp) * (w[m, c, k] - w_zp[m])
 * where padded positions hold x_zp, i.e. contribute 0.  Output size per
 * spatial dim with effective kernel ek = (K - 1) * d + 1:
 *     explicit pads: (in + pb + pe - ek) / s + 1;  VALID: (in - ek) / s + 1;
 *     SAME_UPPER/LOWER: total pad max(0, (ceil(in / s) - 1) * s + ek - in), the odd
 *     one at the end (UPPER) or the beginning (LOWER), out = ceil(in / s).
 * Every problem is 3-D with leading unit dims.  Per (image, group) the
 * shifted input is unrolled into an int16 column matrix [C/g * K, P] (P =
 * output positions; |x - x_zp| <= 255 fits int16), then each output row is
 * accumulated from the shifted int16 weights, P-blocked so a block of
 * columns stays in cache.  Depthwise 2-D (C/g == 1) skips the unrolling and
 * sums its window directly.  Sums wrap modulo 2^32 (unsigned arithmetic), as
 * the spec allows and ONNX Runtime's int32 accumulation does.  Threads take
 * whole (image, group) units, or with fewer units than threads the output
 * channels of one unit.
 *
 * MatMulInteger: A uint8/int8 [.., M, K], B uint8/int8 [.., K, N], a_zp a
 * scalar or one per row, b_zp a scalar or one per column; int32 output
 * (A - a_zp) * (B - b_zp) with MatMul broadcasting (qc_op_int_matmul,
 * gemm.c).
 */
#include <config.h>

#include "op.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "ir/attr.h"
#include "util/log.h"

#define CI_SP 3             /* spatial dims handled (1-D and 2-D as 3-D) */
#define CI_PBLOCK 256       /* output positions per GEMM block           */

enum ci_pad { CI_NOTSET, CI_SAME_UPPER, CI_SAME_LOWER, CI_VALID };

struct ci_params {
    int64_t     group;
    enum ci_pad auto_pad;
    int         n_k, n_s, n_d, n_p;            /* attribute lengths (0 = absent) */
    int64_t     kernel[CI_SP], stride[CI_SP], dil[CI_SP], pads[2 * CI_SP];
};

/* The convolution as 3-D with leading unit dims. */
struct ci_geom {
    int64_t n, c, m, g, cg, mg;                 /* C/g, M/g                      */
    int64_t in[CI_SP], out[CI_SP], k[CI_SP], s[CI_SP], d[CI_SP], pb[CI_SP];
    int64_t kvol, kc, p, isz;                   /* K volume, C/g*kvol, P, in vol */
};

static bool is_8bit(enum qc_dtype dt)
{
    return dt == QC_DTYPE_U8 || dt == QC_DTYPE_I8;
}

static enum qc_status ci_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct ci_params *p;
    const char *ap;
    enum qc_status st;
    (void)opset;
    qc_op_where(where, sizeof(where), "ConvInteger", label);
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_int(&n->attrs, where, "group", 1, &p->group);
    if (st == QC_OK)
        st = qc_attr_ints(&n->attrs, where, "kernel_shape", p->kernel, CI_SP, &p->n_k);
    if (st == QC_OK)
        st = qc_attr_ints(&n->attrs, where, "strides", p->stride, CI_SP, &p->n_s);
    if (st == QC_OK)
        st = qc_attr_ints(&n->attrs, where, "dilations", p->dil, CI_SP, &p->n_d);
    if (st == QC_OK)
        st = qc_attr_ints(&n->attrs, where, "pads", p->pads, 2 * CI_SP, &p->n_p);
    if (st == QC_OK)
        st = qc_attr_string(&n->attrs, where, "auto_pad", "NOTSET", &ap);
    if (st != QC_OK)
        return st;
    if (p->group < 1) {
        qc_log_error("%s: group %lld must be at least 1", where, (long long)p->group);
        return QC_ERR_ONNX;
    }
    if (strcmp(ap, "NOTSET") == 0) {
        p->auto_pad = CI_NOTSET;
    } else if (strcmp(ap, "SAME_UPPER") == 0) {
        p->auto_pad = CI_SAME_UPPER;
    } else if (strcmp(ap, "SAME_LOWER") == 0) {
        p->auto_pad = CI_SAME_LOWER;
    } else if (strcmp(ap, "VALID") == 0) {
        p->auto_pad = CI_VALID;
    } else {
        qc_log_error("%s: auto_pad '%s' is not supported", where, ap);
        return QC_ERR_UNSUPPORTED;
    }
    return QC_OK;
}

/* Checks the inputs against each other and the attributes; fills g. */
static enum qc_status ci_geometry(const struct qc_node *n, const char *label,
                                  const struct qc_tensor *const *in, struct ci_geom *g)
{
    const struct ci_params *p = n->params;
    const struct qc_shape *xs = &in[0]->shape, *ws = &in[1]->shape;
    int nsp = ws->ndim - 2, off;
    char sx[128], sw[128];

    memset(g, 0, sizeof(*g));
    if (nsp < 1 || nsp > CI_SP || xs->ndim != ws->ndim) {
        qc_log_error("%s: ConvInteger of x %s and w %s: supported are 1 to %d spatial dims "
                     "with matching ranks", label, qc_shape_str(xs, sx, sizeof(sx)),
                     qc_shape_str(ws, sw, sizeof(sw)), CI_SP);
        return QC_ERR_UNSUPPORTED;
    }
    if ((p->n_k && p->n_k != nsp) || (p->n_s && p->n_s != nsp) || (p->n_d && p->n_d != nsp) ||
        (p->n_p && p->n_p != 2 * nsp)) {
        qc_log_error("%s: kernel_shape/strides/dilations/pads lengths do not fit %d spatial "
                     "dims", label, nsp);
        return QC_ERR_ONNX;
    }
    g->n = xs->dims[0];
    g->c = xs->dims[1];
    g->m = ws->dims[0];
    g->g = p->group;
    if (g->c % g->g || g->m % g->g || ws->dims[1] != g->c / g->g) {
        qc_log_error("%s: ConvInteger of x %s and w %s with group %lld: channels do not fit",
                     label, qc_shape_str(xs, sx, sizeof(sx)), qc_shape_str(ws, sw, sizeof(sw)),
                     (long long)g->g);
        return QC_ERR_SHAPE;
    }
    g->cg = g->c / g->g;
    g->mg = g->m / g->g;
    off = CI_SP - nsp;
    g->kvol = 1;
    g->p = 1;
    g->isz = 1;
    for (int i = 0; i < CI_SP; i++) {
        int j = i - off;
        int64_t in_d, k, s, d, pb = 0, pe = 0, ek, out;
        if (j < 0) {
            g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
            continue;
        }
        in_d = xs->dims[2 + j];
        k = ws->dims[2 + j];
        s = p->n_s ? p->stride[j] : 1;
        d = p->n_d ? p->dil[j] : 1;
        if (p->n_k && p->kernel[j] != k) {
            qc_log_error("%s: kernel_shape %lld differs from the weight's %lld on spatial "
                         "dim %d", label, (long long)p->kernel[j], (long long)k, j);
            return QC_ERR_ONNX;
        }
        if (s < 1 || d < 1 || k < 1) {
            qc_log_error("%s: invalid stride, dilation or kernel on spatial dim %d", label, j);
            return QC_ERR_ONNX;
        }
        ek = (k - 1) * d + 1;
        switch (p->auto_pad) {
        case CI_NOTSET:
            pb = p->n_p ? p->pads[j] : 0;
            pe = p->n_p ? p->pads[nsp + j] : 0;
            if (pb < 0 || pe < 0) {
                qc_log_error("%s: negative pads", label);
                return QC_ERR_ONNX;
            }
            break;
        case CI_VALID:
            break;
        default: {
            int64_t total = QC_MAX(0, ((in_d + s - 1) / s - 1) * s + ek - in_d);
            pb = p->auto_pad == CI_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
            break;
        }
        }
        out = in_d + pb + pe >= ek ? (in_d + pb + pe - ek) / s + 1 : 0;
        if (out < 1) {
            qc_log_error("%s: input %s is smaller than the kernel on spatial dim %d", label,
                         qc_shape_str(xs, sx, sizeof(sx)), j);
            return QC_ERR_SHAPE;
        }
        g->in[i] = in_d;
        g->out[i] = out;
        g->k[i] = k;
        g->s[i] = s;
        g->d[i] = d;
        g->pb[i] = pb;
        g->kvol *= k;
        g->p *= out;
        g->isz *= in_d;
    }
    g->kc = g->cg * g->kvol;
    return QC_OK;
}

/* A zero-point input: absent, or of type dt with 1 (or `per` when per > 0)
 * elements. */
static enum qc_status check_zp(const char *label, const char *what,
                               const struct qc_tensor *zp, enum qc_dtype dt, int64_t per)
{
    int64_t ne;
    if (!zp)
        return QC_OK;
    ne = qc_tensor_nelem(zp);
    if (zp->dtype != dt) {
        qc_log_error("%s: %s has type %s, expected %s", label, what, qc_dtype_name(zp->dtype),
                     qc_dtype_name(dt));
        return QC_ERR_ONNX;
    }
    if (ne != 1 && !(per > 0 && ne == per && zp->shape.ndim == 1)) {
        qc_log_error("%s: %s has %lld elements; supported are a scalar%s", label, what,
                     (long long)ne, per > 0 ? " or one per output channel/column" : "");
        return QC_ERR_UNSUPPORTED;
    }
    return QC_OK;
}

static enum qc_status ci_infer(const struct qc_node *n, const char *label,
                               const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    struct ci_geom g;
    const struct qc_tensor *xzp = n->n_in > 2 ? in[2] : NULL;
    const struct qc_tensor *wzp = n->n_in > 3 ? in[3] : NULL;
    enum qc_status st;
    if (!is_8bit(in[0]->dtype) || !is_8bit(in[1]->dtype)) {
        qc_log_error("%s: ConvInteger of %s and %s; supported are uint8/int8 inputs", label,
                     qc_dtype_name(in[0]->dtype), qc_dtype_name(in[1]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    st = ci_geometry(n, label, in, &g);
    if (st == QC_OK)
        st = check_zp(label, "x_zero_point", xzp, in[0]->dtype, 0);
    if (st == QC_OK)
        st = check_zp(label, "w_zero_point", wzp, in[1]->dtype, g.m);
    if (st != QC_OK)
        return st;
    out[0]->dtype = QC_DTYPE_I32;
    out[0]->shape = in[0]->shape;
    out[0]->shape.dims[1] = g.m;
    for (int j = 0; j < in[1]->shape.ndim - 2; j++)
        out[0]->shape.dims[2 + j] = g.out[CI_SP - (in[1]->shape.ndim - 2) + j];
    return QC_OK;
}

static int64_t ci_slots(const struct ci_geom *g, int threads)
{
    int64_t units = g->n * g->g;
    return QC_MAX(1, QC_MIN(units, (int64_t)threads));
}

static size_t align64(size_t b)
{
    return (b + 63) & ~(size_t)63;
}

static bool ci_depthwise2d(const struct ci_geom *g)
{
    return g->cg == 1 && g->in[0] == 1 && g->k[0] == 1;
}

/* Shifted weights (int16 [M, kc]), then one int16 column matrix [kc, P]
 * per concurrent unit (none for the direct depthwise path). */
static size_t ci_workspace(const struct qc_node *n, const struct qc_tensor *const *in,
                           const struct qc_tensor *const *out, int threads)
{
    struct ci_geom g;
    size_t b;
    (void)out;
    if (ci_geometry(n, "ConvInteger", in, &g) != QC_OK)
        return 0;
    b = align64((size_t)(g.m * g.kc) * sizeof(int16_t));
    if (!ci_depthwise2d(&g))
        b += (size_t)ci_slots(&g, threads) * align64((size_t)(g.kc * g.p) * sizeof(int16_t));
    return b;
}

/* Element i of an 8-bit tensor. */
static inline int32_t u8_or_i8(const void *base, bool sgn, int64_t i)
{
    return sgn ? ((const int8_t *)base)[i] : ((const uint8_t *)base)[i];
}

/* Valid output range [lo, hi) along one dim for kernel tap kk: the outputs
 * o with 0 <= o*s - pb + kk*d < in. */
static void tap_range(const struct ci_geom *g, int i, int64_t kk, int64_t *lo, int64_t *hi)
{
    int64_t first = g->pb[i] - kk * g->d[i];           /* o*s >= first          */
    int64_t last = g->in[i] + g->pb[i] - kk * g->d[i];  /* o*s < last            */
    int64_t l = first <= 0 ? 0 : (first + g->s[i] - 1) / g->s[i];
    int64_t h = last <= 0 ? 0 : (last + g->s[i] - 1) / g->s[i];
    *lo = QC_MIN(l, g->out[i]);
    *hi = QC_MIN(h, g->out[i]);
    if (*hi < *lo)
        *hi = *lo;
}

/* Column matrix of one (image, group): col[(c*kvol + tap), o] = x - x_zp at
 * the tap's input position, 0 in the padding.  Rows r0..r1 of C/g. */
static void ci_im2col(const struct ci_geom *g, const void *x, bool sgn, int32_t zx,
                      int64_t xoff, int16_t *col, int64_t c0, int64_t c1)
{
    for (int64_t c = c0; c < c1; c++) {
        int64_t xc = xoff + c * g->isz;
        for (int64_t k0 = 0; k0 < g->k[0]; k0++)
        for (int64_t k1 = 0; k1 < g->k[1]; k1++)
        for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
            int64_t row = c * g->kvol + (k0 * g->k[1] + k1) * g->k[2] + k2;
            int16_t *cr = col + row * g->p;
            int64_t lo0, hi0, lo1, hi1, lo2, hi2;
            tap_range(g, 0, k0, &lo0, &hi0);
            tap_range(g, 1, k1, &lo1, &hi1);
            tap_range(g, 2, k2, &lo2, &hi2);
            memset(cr, 0, (size_t)g->p * sizeof(*cr));
            for (int64_t o0 = lo0; o0 < hi0; o0++) {
                int64_t i0 = o0 * g->s[0] - g->pb[0] + k0 * g->d[0];
                for (int64_t o1 = lo1; o1 < hi1; o1++) {
                    int64_t i1 = o1 * g->s[1] - g->pb[1] + k1 * g->d[1];
                    int64_t rowx = xc + (i0 * g->in[1] + i1) * g->in[2] - g->pb[2] +
                                   k2 * g->d[2];
                    int16_t *dst = cr + (o0 * g->out[1] + o1) * g->out[2];
                    if (sgn) {
                        const int8_t *src = (const int8_t *)x + rowx;
                        for (int64_t o2 = lo2; o2 < hi2; o2++)
                            dst[o2] = (int16_t)(src[o2 * g->s[2]] - zx);
                    } else {
                        const uint8_t *src = (const uint8_t *)x + rowx;
                        for (int64_t o2 = lo2; o2 < hi2; o2++)
                            dst[o2] = (int16_t)(src[o2 * g->s[2]] - zx);
                    }
                }
            }
        }
    }
}

/* y rows m0..m1 of one group (relative to the group) from its column
 * matrix: y[m, o] = sum_k w[m, k] * col[k, o], modulo 2^32. */
static void ci_gemm(const struct ci_geom *g, const int16_t *wsh, const int16_t *col,
                    uint32_t *y, int64_t m0, int64_t m1)
{
    for (int64_t p0 = 0; p0 < g->p; p0 += CI_PBLOCK) {
        int64_t len = QC_MIN(CI_PBLOCK, g->p - p0);
        for (int64_t m = m0; m < m1; m++) {
            uint32_t *yr = y + m * g->p + p0;
            const int16_t *wr = wsh + m * g->kc;
            memset(yr, 0, (size_t)len * sizeof(*yr));
            for (int64_t k = 0; k < g->kc; k++) {
                int32_t wv = wr[k];
                const int16_t *cr = col + k * g->p + p0;
                if (wv == 0)
                    continue;
                for (int64_t q = 0; q < len; q++)
                    yr[q] += (uint32_t)(wv * (int32_t)cr[q]);
            }
        }
    }
}

/* Depthwise 2-D, one output plane: y[o] = sum over taps of w * (x - zx). */
static void ci_dw_plane(const struct ci_geom *g, const void *x, bool sgn, int32_t zx,
                        int64_t xoff, const int16_t *wr, uint32_t *y)
{
    memset(y, 0, (size_t)g->p * sizeof(*y));
    for (int64_t k1 = 0; k1 < g->k[1]; k1++) {
        int64_t lo1, hi1;
        tap_range(g, 1, k1, &lo1, &hi1);
        for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
            int32_t wv = wr[k1 * g->k[2] + k2];
            int64_t lo2, hi2;
            if (wv == 0)
                continue;
            tap_range(g, 2, k2, &lo2, &hi2);
            for (int64_t o1 = lo1; o1 < hi1; o1++) {
                int64_t i1 = o1 * g->s[1] - g->pb[1] + k1 * g->d[1];
                int64_t rowx = xoff + i1 * g->in[2] - g->pb[2] + k2 * g->d[2];
                uint32_t *yr = y + o1 * g->out[2];
                if (sgn) {
                    const int8_t *src = (const int8_t *)x + rowx;
                    for (int64_t o2 = lo2; o2 < hi2; o2++)
                        yr[o2] += (uint32_t)(wv * (src[o2 * g->s[2]] - zx));
                } else {
                    const uint8_t *src = (const uint8_t *)x + rowx;
                    for (int64_t o2 = lo2; o2 < hi2; o2++)
                        yr[o2] += (uint32_t)(wv * (src[o2 * g->s[2]] - zx));
                }
            }
        }
    }
}

static enum qc_status ci_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    const struct qc_tensor *xzp = n->n_in > 2 ? in[2] : NULL;
    const struct qc_tensor *wzp = n->n_in > 3 ? in[3] : NULL;
    struct ci_geom g;
    int threads = ctx->threads > 0 ? ctx->threads : 1;
    bool xs = in[0]->dtype == QC_DTYPE_I8, wsg = in[1]->dtype == QC_DTYPE_I8;
    int32_t zx = xzp ? (int32_t)qc_tensor_get_i64(xzp, 0) : 0;
    int64_t nwz = wzp ? qc_tensor_nelem(wzp) : 0, units, slots;
    size_t wbytes, cbytes;
    int16_t *wsh;
    unsigned char *cols;
    uint32_t *y = out[0]->data;
    const void *x = in[0]->data;
    enum qc_status st = ci_geometry(n, ctx->label, in, &g);

    if (st != QC_OK)
        return st;
    units = g.n * g.g;
    slots = ci_slots(&g, threads);
    wbytes = align64((size_t)(g.m * g.kc) * sizeof(int16_t));
    cbytes = align64((size_t)(g.kc * g.p) * sizeof(int16_t));
    if (!ctx->workspace ||
        ctx->workspace_size < wbytes + (ci_depthwise2d(&g) ? 0 : (size_t)slots * cbytes)) {
        qc_log_error("%s: ConvInteger workspace too small", ctx->label);
        return QC_ERR_INTERNAL;
    }
    wsh = ctx->workspace;
    cols = (unsigned char *)ctx->workspace + wbytes;
    /* w - w_zp[m] as int16 */
    for (int64_t m = 0; m < g.m; m++) {
        int32_t zw = nwz == 0 ? 0 : (int32_t)qc_tensor_get_i64(wzp, nwz == 1 ? 0 : m);
        for (int64_t k = 0; k < g.kc; k++)
            wsh[m * g.kc + k] = (int16_t)(u8_or_i8(in[1]->data, wsg, m * g.kc + k) - zw);
    }
    if (ci_depthwise2d(&g)) {
        /* one plane per (image, output channel); input channel m / (M/g) */
        int64_t planes = g.n * g.m;
#pragma omp parallel for num_threads(threads) schedule(static) if (planes > 1 && threads > 1)
        for (int64_t u = 0; u < planes; u++) {
            int64_t img = u / g.m, m = u % g.m, c = m / g.mg;
            ci_dw_plane(&g, x, xs, zx, (img * g.c + c) * g.isz, wsh + m * g.kc, y + u * g.p);
        }
        return QC_OK;
    }
    if (units >= threads || threads == 1) {
#pragma omp parallel for num_threads(threads) schedule(static) if (units > 1 && threads > 1)
        for (int64_t u = 0; u < units; u++) {
            int slot = 0;
            int16_t *col;
            int64_t img = u / g.g, grp = u % g.g;
#ifdef _OPENMP
            slot = omp_get_thread_num();
#endif
            col = (int16_t *)(cols + (size_t)slot * cbytes);
            ci_im2col(&g, x, xs, zx, (img * g.c + grp * g.cg) * g.isz, col, 0, g.cg);
            ci_gemm(&g, wsh + grp * g.mg * g.kc, col, y + (img * g.m + grp * g.mg) * g.p, 0,
                    g.mg);
        }
        return QC_OK;
    }
    /* fewer units than threads: split each unit's channels over threads */
    for (int64_t u = 0; u < units; u++) {
        int64_t img = u / g.g, grp = u % g.g;
        int16_t *col = (int16_t *)cols;
        const int16_t *wg = wsh + grp * g.mg * g.kc;
        uint32_t *yg = y + (img * g.m + grp * g.mg) * g.p;
#pragma omp parallel num_threads(threads)
        {
            int t = 0, nt = 1;
            int64_t c0, c1, m0, m1;
#ifdef _OPENMP
            t = omp_get_thread_num();
            nt = omp_get_num_threads();
#endif
            c0 = g.cg * t / nt;
            c1 = g.cg * (t + 1) / nt;
            ci_im2col(&g, x, xs, zx, (img * g.c + grp * g.cg) * g.isz, col, c0, c1);
#pragma omp barrier
            m0 = g.mg * t / nt;
            m1 = g.mg * (t + 1) / nt;
            ci_gemm(&g, wg, col, yg, m0, m1);
        }
    }
    return QC_OK;
}

/* ---- MatMulInteger ---- */

static enum qc_status mmi_infer(const struct qc_node *n, const char *label,
                                const struct qc_tensor *const *in,
                                struct qc_tensor *const *out)
{
    const struct qc_tensor *azp = n->n_in > 2 ? in[2] : NULL;
    const struct qc_tensor *bzp = n->n_in > 3 ? in[3] : NULL;
    const struct qc_shape *a = &in[0]->shape, *b = &in[1]->shape;
    enum qc_status st;
    if (!is_8bit(in[0]->dtype) || !is_8bit(in[1]->dtype)) {
        qc_log_error("%s: MatMulInteger of %s and %s; supported are uint8/int8 inputs", label,
                     qc_dtype_name(in[0]->dtype), qc_dtype_name(in[1]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_op_matmul_shape(label, a, b, &out[0]->shape);
    if (st == QC_OK)
        st = check_zp(label, "a_zero_point", azp, in[0]->dtype,
                      a->ndim >= 2 ? a->dims[a->ndim - 2] : 0);
    if (st == QC_OK)
        st = check_zp(label, "b_zero_point", bzp, in[1]->dtype,
                      b->ndim >= 2 ? b->dims[b->ndim - 1] : 0);
    if (st != QC_OK)
        return st;
    out[0]->dtype = QC_DTYPE_I32;
    return QC_OK;
}

static size_t mmi_workspace(const struct qc_node *n, const struct qc_tensor *const *in,
                            const struct qc_tensor *const *out, int threads)
{
    (void)n;
    (void)threads;
    return qc_op_int_matmul_workspace(in[0], in[1], out[0]);
}

static enum qc_status mmi_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    return qc_op_int_matmul(ctx, in[0], in[1], n->n_in > 2 ? in[2] : NULL,
                            n->n_in > 3 ? in[3] : NULL, out[0]);
}

const struct qc_op_def qc_op_conv_integer = {
    .n_in_min = 2, .n_in_max = 4, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = ci_parse, .infer = ci_infer, .workspace = ci_workspace,
    .cpu = { .forward = ci_forward_cpu, .backward = NULL },
};

const struct qc_op_def qc_op_matmul_integer = {
    .n_in_min = 2, .n_in_max = 4, .n_out_min = 1,
    .n_out_max = 1, .fold = QC_FOLD_NEVER, .infer = mmi_infer, .workspace = mmi_workspace,
    .cpu = { .forward = mmi_forward_cpu, .backward = NULL },
};
