/*
 * norm.c - normalization ops: BatchNormalization (inference form, running
 * statistics) and LRN (cross-channel local response normalization).
 *
 * Inputs are [N, C, D1...] float32.  BatchNormalization:
 *     y = scale * (x - mean) / sqrt(var + epsilon) + B
 * computed as y = a_c * x + b_c with a_c = scale_c / sqrt(var_c + eps) and
 * b_c = B_c - mean_c * a_c.  momentum is accepted and ignored (no update in
 * inference); spatial (opset < 9) must be 1; training_mode (opset 14+) must
 * be 0.  Extra outputs (running mean/var, and before opset 14 saved
 * mean/var), when a model lists them, are the unchanged statistics.
 *
 * LRN, per ONNX:
 *     square_sum[c] = sum_{c' = c - floor((size-1)/2)}^{c + ceil((size-1)/2)} x[c']^2
 *     y[c] = x[c] / (bias + alpha / size * square_sum[c])^beta
 * with c' clipped to [0, C).
 */
#include <config.h>

#include "op.h"

#include <math.h>
#include <string.h>

#include "../log.h"

static int nthreads(const struct qc_op_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : 1;
}

/* Checks x is float32 [N, C, ...] and returns C through *c. */
static enum qc_status check_nc(const char *label, const struct qc_tensor *x, int64_t *c)
{
    char s[128];
    if (x->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: input type %s, only float32 is supported", label,
                     qc_dtype_name(x->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    if (x->shape.ndim < 2) {
        qc_log_error("%s: input shape %s, expected [N,C,...]", label,
                     qc_shape_str(&x->shape, s, sizeof(s)));
        return QC_ERR_SHAPE;
    }
    *c = x->shape.dims[1];
    return QC_OK;
}

/* ---- BatchNormalization ---- */

struct bn_params {
    float epsilon;
    float momentum;           /* unused in inference */
};

static enum qc_status bn_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct bn_params *p;
    int64_t v;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_float(&n->attrs, label, "epsilon", 1e-5f, &p->epsilon);
    if (st != QC_OK)
        return st;
    st = qc_attr_float(&n->attrs, label, "momentum", 0.9f, &p->momentum);
    if (st != QC_OK)
        return st;
    st = qc_attr_int(&n->attrs, label, "spatial", 1, &v);
    if (st != QC_OK)
        return st;
    if (v != 1) {
        qc_log_error("%s: BatchNormalization spatial=%lld is not supported (only 1)", label,
                     (long long)v);
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_attr_int(&n->attrs, label, "training_mode", 0, &v);
    if (st != QC_OK)
        return st;
    if (v != 0) {
        qc_log_error("%s: BatchNormalization training_mode=%lld is not supported (only 0)",
                     label, (long long)v);
        return QC_ERR_UNSUPPORTED;
    }
    if (opset >= 14 && n->n_out > 3) {
        qc_log_error("%s: BatchNormalization opset %lld has at most 3 outputs, got %d", label,
                     (long long)opset, n->n_out);
        return QC_ERR_ONNX;
    }
    return QC_OK;
}

static enum qc_status bn_infer(const struct qc_node *n, const char *label,
                               const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    static const char *const names[] = { "X", "scale", "B", "mean", "var" };
    int64_t c;
    enum qc_status st = check_nc(label, in[0], &c);
    if (st != QC_OK)
        return st;
    for (int i = 1; i < 5; i++) {
        char s[128];
        if (!in[i]) {
            qc_log_error("%s: BatchNormalization input '%s' is omitted", label, names[i]);
            return QC_ERR_ONNX;
        }
        if (in[i]->dtype != QC_DTYPE_F32) {
            qc_log_error("%s: input '%s' type %s, only float32 is supported", label, names[i],
                         qc_dtype_name(in[i]->dtype));
            return QC_ERR_UNSUPPORTED;
        }
        if (in[i]->shape.ndim != 1 || in[i]->shape.dims[0] != c) {
            char sx[128];
            qc_log_error("%s: input '%s' shape %s does not match X %s (expected [%lld])", label,
                         names[i], qc_shape_str(&in[i]->shape, s, sizeof(s)),
                         qc_shape_str(&in[0]->shape, sx, sizeof(sx)), (long long)c);
            return QC_ERR_SHAPE;
        }
    }
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = in[0]->shape;
    for (int i = 1; i < n->n_out; i++) {
        out[i]->dtype = QC_DTYPE_F32;
        out[i]->shape = in[3]->shape;
    }
    return QC_OK;
}

static enum qc_status bn_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    const struct bn_params *p = n->params;
    const struct qc_shape *s = &in[0]->shape;
    const float *x = qc_tensor_f32(in[0]), *scale = qc_tensor_f32(in[1]);
    const float *bias = qc_tensor_f32(in[2]), *mean = qc_tensor_f32(in[3]);
    const float *var = qc_tensor_f32(in[4]);
    float *y = qc_tensor_f32(out[0]);
    int64_t nb = s->dims[0], c = s->dims[1], inner = 1;

    for (int i = 2; i < s->ndim; i++)
        inner *= s->dims[i];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) \
    if (nb * c * inner >= QC_PAR_MIN_STREAM)
    for (int64_t r = 0; r < nb * c; r++) {
        int64_t ch = r % c;
        float a = scale[ch] / sqrtf(var[ch] + p->epsilon);
        float b = bias[ch] - mean[ch] * a;
        const float *xr = x + r * inner;
        float *yr = y + r * inner;
        for (int64_t k = 0; k < inner; k++)
            yr[k] = xr[k] * a + b;
    }
    /* extra outputs: running mean, running var (and saved mean, saved var) */
    for (int i = 1; i < n->n_out; i++) {
        const float *src = (i % 2) ? mean : var;
        memcpy(out[i]->data, src, (size_t)c * sizeof(float));
    }
    return QC_OK;
}

/* ---- LRN ---- */

struct lrn_params {
    int64_t size;
    float   alpha, beta, bias;
};

static enum qc_status lrn_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct lrn_params *p;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    (void)opset;
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_int(&n->attrs, label, "size", 0, &p->size);
    if (st == QC_OK)
        st = qc_attr_float(&n->attrs, label, "alpha", 1e-4f, &p->alpha);
    if (st == QC_OK)
        st = qc_attr_float(&n->attrs, label, "beta", 0.75f, &p->beta);
    if (st == QC_OK)
        st = qc_attr_float(&n->attrs, label, "bias", 1.0f, &p->bias);
    if (st != QC_OK)
        return st;
    if (p->size < 1) {
        qc_log_error("%s: LRN size=%lld, expected a positive value (required)", label,
                     (long long)p->size);
        return QC_ERR_ONNX;
    }
    return QC_OK;
}

static enum qc_status lrn_infer(const struct qc_node *n, const char *label,
                                const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    int64_t c;
    enum qc_status st = check_nc(label, in[0], &c);
    (void)n;
    if (st != QC_OK)
        return st;
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = in[0]->shape;
    return QC_OK;
}

static enum qc_status lrn_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    const struct lrn_params *p = n->params;
    const struct qc_shape *s = &in[0]->shape;
    const float *x = qc_tensor_f32(in[0]);
    float *y = qc_tensor_f32(out[0]);
    int64_t nb = s->dims[0], c = s->dims[1], inner = 1;
    int64_t lo_off = (p->size - 1) / 2, hi_off = p->size - 1 - lo_off;
    float k = p->alpha / (float)p->size;

    for (int i = 2; i < s->ndim; i++)
        inner *= s->dims[i];
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (nb * c * inner > 16384)
    for (int64_t r = 0; r < nb * c; r++) {
        int64_t b = r / c, ch = r % c;
        int64_t c0 = QC_MAX(0, ch - lo_off), c1 = QC_MIN(c - 1, ch + hi_off);
        const float *xb = x + b * c * inner;
        float *yr = y + r * inner;
        for (int64_t j = 0; j < inner; j++) {
            float sq = 0.0f;
            for (int64_t cc = c0; cc <= c1; cc++) {
                float v = xb[cc * inner + j];
                sq += v * v;
            }
            yr[j] = xb[ch * inner + j] / powf(p->bias + k * sq, p->beta);
        }
    }
    return QC_OK;
}

/* ---- definitions ---- */

const struct qc_op_def qc_op_batchnorm = {
    .onnx_name = "BatchNormalization", .n_in_min = 5, .n_in_max = 5,
    .n_out_min = 1, .n_out_max = 5, .fold = QC_FOLD_NEVER,
    .parse = bn_parse, .infer = bn_infer,
    .cpu = { .forward = bn_forward_cpu },
};

const struct qc_op_def qc_op_lrn = {
    .onnx_name = "LRN", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = lrn_parse, .infer = lrn_infer,
    .cpu = { .forward = lrn_forward_cpu },
};
