/*
 * act.c - activation ops: Relu, Clip, LeakyRelu, Sigmoid, Tanh, HardSigmoid,
 * HardSwish, Softmax, LogSoftmax, Dropout (inference) and Identity.
 *
 * All compute float32, element by element (Softmax/LogSoftmax per row), and
 * keep their output the shape of their first input.  Clip reads its bounds
 * from attributes before opset 11 and from optional scalar inputs 1 and 2
 * afterwards (at run time; an absent input is no bound).  Softmax and
 * LogSoftmax flatten the input to 2D at `axis` before opset 13 and work along
 * that single axis from 13.  Dropout is the identity (its mask output, when
 * present, is all ones).  Backward formulas only need the saved input or
 * output, which the plan keeps.
 */
#include <config.h>

#include "op.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "../log.h"

/* Elements per parallel chunk for element-wise loops. */
#define ACT_CHUNK 16384

static int nthreads(const struct qc_op_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : 1;
}

/* Output 0 = input 0 (float32 only). */
static enum qc_status infer_same_f32(const struct qc_node *n, const char *label,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    (void)n;
    if (in[0]->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: input type %s, only float32 is supported", label,
                     qc_dtype_name(in[0]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = in[0]->shape;
    return QC_OK;
}

/* The parameters of the point-wise activations: y = f(x; a, b). */
struct act_params {
    float a, b;
};

enum act_fn { ACT_RELU, ACT_LEAKY, ACT_SIGMOID, ACT_TANH, ACT_HARD_SIGMOID, ACT_HARD_SWISH,
              ACT_CLIP };

/* y[i] = f(x[i]) over a flat range, chunked over threads (order-free). */
static void pointwise(enum act_fn fn, float a, float b, const float *restrict x,
                      float *restrict y, int64_t n, int threads)
{
    int64_t nchunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
    bool heavy = fn == ACT_SIGMOID || fn == ACT_TANH;   /* exp/tanh: compute-bound */
    bool par = nchunks > 1 && (heavy || n >= QC_PAR_MIN_STREAM);
#pragma omp parallel for num_threads(threads) schedule(static) if (par)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t lo = c * ACT_CHUNK, hi = QC_MIN(n, lo + ACT_CHUNK);
        switch (fn) {
        case ACT_RELU: /* branch-free select; NaN passes through */
            for (int64_t i = lo; i < hi; i++) {
                float v = x[i];
                y[i] = v < 0.0f ? 0.0f : v;
            }
            break;
        case ACT_LEAKY: /* y = x >= 0 ? x : a*x */
            for (int64_t i = lo; i < hi; i++)
                y[i] = x[i] >= 0.0f ? x[i] : a * x[i];
            break;
        case ACT_SIGMOID: /* y = 1/(1+exp(-x)), written to avoid overflow for x << 0 */
            for (int64_t i = lo; i < hi; i++) {
                float v = x[i];
                if (v >= 0.0f) {
                    y[i] = 1.0f / (1.0f + expf(-v));
                } else {
                    float e = expf(v);
                    y[i] = e / (1.0f + e);
                }
            }
            break;
        case ACT_TANH:
            for (int64_t i = lo; i < hi; i++)
                y[i] = tanhf(x[i]);
            break;
        case ACT_HARD_SIGMOID: /* y = max(0, min(1, a*x + b)) */
            for (int64_t i = lo; i < hi; i++)
                y[i] = fmaxf(0.0f, fminf(1.0f, a * x[i] + b));
            break;
        case ACT_HARD_SWISH: /* y = x * max(0, min(1, x/6 + 1/2)) */
            for (int64_t i = lo; i < hi; i++)
                y[i] = x[i] * fmaxf(0.0f, fminf(1.0f, x[i] * (1.0f / 6.0f) + 0.5f));
            break;
        case ACT_CLIP: /* y = min(max(x, a), b); NaN passes through */
            for (int64_t i = lo; i < hi; i++) {
                float v = x[i];
                v = v < a ? a : v;
                y[i] = v > b ? b : v;
            }
            break;
        }
    }
}

static enum qc_status run_pointwise(enum act_fn fn, float a, float b, const struct qc_op_ctx *ctx,
                                    const struct qc_tensor *const *in,
                                    struct qc_tensor *const *out)
{
    pointwise(fn, a, b, qc_tensor_f32(in[0]), qc_tensor_f32(out[0]), qc_tensor_nelem(in[0]),
              nthreads(ctx));
    return QC_OK;
}

/* ---- Relu, Sigmoid, Tanh, HardSwish: no attributes ---- */

static enum qc_status relu_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    (void)n;
    return run_pointwise(ACT_RELU, 0.0f, 0.0f, ctx, in, out);
}

static enum qc_status sigmoid_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          struct qc_tensor *const *out)
{
    (void)n;
    return run_pointwise(ACT_SIGMOID, 0.0f, 0.0f, ctx, in, out);
}

static enum qc_status tanh_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    (void)n;
    return run_pointwise(ACT_TANH, 0.0f, 0.0f, ctx, in, out);
}

static enum qc_status hard_swish_forward_cpu(const struct qc_node *n,
                                             const struct qc_op_ctx *ctx,
                                             const struct qc_tensor *const *in,
                                             struct qc_tensor *const *out)
{
    (void)n;
    return run_pointwise(ACT_HARD_SWISH, 0.0f, 0.0f, ctx, in, out);
}

/* ---- LeakyRelu, HardSigmoid: float attributes ---- */

static enum qc_status leaky_relu_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct act_params *p;
    enum qc_status st;
    (void)opset;
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    return qc_attr_float(&n->attrs, label, "alpha", 0.01f, &p->a);
}

static enum qc_status leaky_relu_forward_cpu(const struct qc_node *n,
                                             const struct qc_op_ctx *ctx,
                                             const struct qc_tensor *const *in,
                                             struct qc_tensor *const *out)
{
    const struct act_params *p = n->params;
    return run_pointwise(ACT_LEAKY, p->a, 0.0f, ctx, in, out);
}

static enum qc_status hard_sigmoid_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct act_params *p;
    enum qc_status st;
    (void)opset;
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_float(&n->attrs, label, "alpha", 0.2f, &p->a);
    if (st != QC_OK)
        return st;
    return qc_attr_float(&n->attrs, label, "beta", 0.5f, &p->b);
}

static enum qc_status hard_sigmoid_forward_cpu(const struct qc_node *n,
                                               const struct qc_op_ctx *ctx,
                                               const struct qc_tensor *const *in,
                                               struct qc_tensor *const *out)
{
    const struct act_params *p = n->params;
    return run_pointwise(ACT_HARD_SIGMOID, p->a, p->b, ctx, in, out);
}

/* ---- Clip ---- */

struct clip_params {
    bool  from_inputs;        /* opset >= 11: bounds are inputs 1 and 2 */
    float min, max;           /* opset < 11: attribute bounds           */
};

static enum qc_status clip_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct clip_params *p;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->from_inputs = opset >= 11;
    if (p->from_inputs) {
        p->min = -FLT_MAX;
        p->max = FLT_MAX;
        return QC_OK;
    }
    if (n->n_in > 1) {
        qc_log_error("%s: Clip before opset 11 takes one input, got %d", label, n->n_in);
        return QC_ERR_ONNX;
    }
    st = qc_attr_float(&n->attrs, label, "min", -FLT_MAX, &p->min);
    if (st != QC_OK)
        return st;
    return qc_attr_float(&n->attrs, label, "max", FLT_MAX, &p->max);
}

static enum qc_status clip_infer(const struct qc_node *n, const char *label,
                                 const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    for (int i = 1; i < n->n_in && i < 3; i++) {
        if (!in[i])
            continue;
        if (qc_shape_nelem(&in[i]->shape) != 1) {
            char s[128];
            qc_log_error("%s: Clip bound input %d must be a scalar, got shape %s", label, i,
                         qc_shape_str(&in[i]->shape, s, sizeof(s)));
            return QC_ERR_SHAPE;
        }
    }
    return infer_same_f32(n, label, in, out);
}

static enum qc_status clip_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    const struct clip_params *p = n->params;
    float lo = p->min, hi = p->max;
    if (p->from_inputs) {
        if (n->n_in > 1 && in[1])
            lo = (float)qc_tensor_get_f64(in[1], 0);
        if (n->n_in > 2 && in[2])
            hi = (float)qc_tensor_get_f64(in[2], 0);
    }
    return run_pointwise(ACT_CLIP, lo, hi, ctx, in, out);
}

/* ---- Softmax, LogSoftmax ---- */

struct softmax_params {
    int64_t axis;
    bool    flatten;          /* opset < 13: coerce to 2D at axis */
};

static enum qc_status softmax_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct softmax_params *p;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->flatten = opset < 13;
    return qc_attr_int(&n->attrs, label, "axis", p->flatten ? 1 : -1, &p->axis);
}

static enum qc_status softmax_infer(const struct qc_node *n, const char *label,
                                    const struct qc_tensor *const *in,
                                    struct qc_tensor *const *out)
{
    const struct softmax_params *p = n->params;
    int rank = in[0]->shape.ndim, axis;
    enum qc_status st;
    /* a scalar is treated as [1] */
    st = qc_norm_axis(label, p->axis, rank > 0 ? rank : 1, &axis);
    if (st != QC_OK)
        return st;
    return infer_same_f32(n, label, in, out);
}

/* Splits the input into outer x len x inner: the op normalizes over len
 * elements spaced inner apart. */
static void softmax_geometry(const struct softmax_params *p, const struct qc_shape *s,
                             int64_t *outer, int64_t *len, int64_t *inner)
{
    int rank = s->ndim, axis;
    if (rank == 0) {
        *outer = *len = *inner = 1;
        return;
    }
    axis = (int)(p->axis < 0 ? p->axis + rank : p->axis);
    *outer = 1;
    for (int i = 0; i < axis; i++)
        *outer *= s->dims[i];
    *len = 1;
    *inner = 1;
    for (int i = axis; i < rank; i++) {
        if (p->flatten || i == axis)
            *len *= s->dims[i];
        else
            *inner *= s->dims[i];
    }
}

/* softmax:    y_j = exp(x_j - m) / sum_k exp(x_k - m),   m = max_k x_k
 * logsoftmax: y_j = x_j - m - log(sum_k exp(x_k - m))                      */
static enum qc_status softmax_run(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  struct qc_tensor *const *out, bool log_form)
{
    int64_t outer, len, inner;
    const float *x = qc_tensor_f32(in[0]);
    float *y = qc_tensor_f32(out[0]);
    int64_t rows;
    softmax_geometry(n->params, &in[0]->shape, &outer, &len, &inner);
    rows = outer * inner;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (rows * len > ACT_CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        int64_t o = r / inner, i = r % inner;
        const float *xr = x + o * len * inner + i;
        float *yr = y + o * len * inner + i;
        float m = -INFINITY;
        double sum = 0.0;
        for (int64_t j = 0; j < len; j++)
            m = fmaxf(m, xr[j * inner]);
        for (int64_t j = 0; j < len; j++) {
            float e = expf(xr[j * inner] - m);
            sum += e;
            if (!log_form)
                yr[j * inner] = e;
        }
        if (log_form) {
            float ls = (float)log(sum);
            for (int64_t j = 0; j < len; j++)
                yr[j * inner] = xr[j * inner] - m - ls;
        } else {
            float inv = (float)(1.0 / sum);
            for (int64_t j = 0; j < len; j++)
                yr[j * inner] *= inv;
        }
    }
    return QC_OK;
}

static enum qc_status softmax_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          struct qc_tensor *const *out)
{
    return softmax_run(n, ctx, in, out, false);
}

static enum qc_status log_softmax_forward_cpu(const struct qc_node *n,
                                              const struct qc_op_ctx *ctx,
                                              const struct qc_tensor *const *in,
                                              struct qc_tensor *const *out)
{
    return softmax_run(n, ctx, in, out, true);
}

/* ---- Dropout, Identity ---- */

struct dropout_params {
    float ratio;              /* attribute form (opset < 12); unused in inference */
    bool  mask_is_bool;       /* opset >= 10: mask is bool, before: same as input */
};

static enum qc_status dropout_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct dropout_params *p;
    int64_t is_test;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->mask_is_bool = opset >= 10;
    /* is_test (opset < 7) is accepted: inference is always the test mode */
    st = qc_attr_int(&n->attrs, label, "is_test", 1, &is_test);
    if (st != QC_OK)
        return st;
    st = qc_attr_float(&n->attrs, label, "ratio", 0.5f, &p->ratio);
    if (st != QC_OK)
        return st;
    if (opset < 12 && n->n_in > 1) {
        qc_log_error("%s: Dropout before opset 12 takes one input, got %d", label, n->n_in);
        return QC_ERR_ONNX;
    }
    return QC_OK;
}

static enum qc_status dropout_infer(const struct qc_node *n, const char *label,
                                    const struct qc_tensor *const *in,
                                    struct qc_tensor *const *out)
{
    const struct dropout_params *p = n->params;
    enum qc_status st = infer_same_f32(n, label, in, out);
    if (st != QC_OK)
        return st;
    for (int i = 1; i < n->n_in; i++) {
        if (in[i] && qc_shape_nelem(&in[i]->shape) != 1) {
            qc_log_error("%s: Dropout input %d must be a scalar", label, i);
            return QC_ERR_SHAPE;
        }
    }
    if (n->n_out > 1) {
        out[1]->dtype = p->mask_is_bool ? QC_DTYPE_BOOL : QC_DTYPE_F32;
        out[1]->shape = in[0]->shape;
    }
    return QC_OK;
}

/* Copies in[0] to out[0] unless they share storage. */
static void copy_through(const struct qc_tensor *in, struct qc_tensor *out)
{
    size_t nbytes = qc_tensor_nbytes(in);
    if (nbytes && in->data != out->data)
        memcpy(out->data, in->data, nbytes);
}

/* Inference: y = x; mask = 1 everywhere. */
static enum qc_status dropout_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          struct qc_tensor *const *out)
{
    (void)ctx;
    copy_through(in[0], out[0]);
    if (n->n_out > 1) {
        int64_t cnt = qc_tensor_nelem(out[1]);
        if (out[1]->dtype == QC_DTYPE_BOOL) {
            memset(out[1]->data, 1, (size_t)cnt);
        } else {
            float *m = qc_tensor_f32(out[1]);
            for (int64_t i = 0; i < cnt; i++)
                m[i] = 1.0f;
        }
    }
    return QC_OK;
}

/* Identity passes any dtype (it may sit in a shape subgraph). */
static enum qc_status identity_infer(const struct qc_node *n, const char *label,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    (void)n;
    (void)label;
    out[0]->dtype = in[0]->dtype;
    out[0]->shape = in[0]->shape;
    return QC_OK;
}

static enum qc_status identity_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                           const struct qc_tensor *const *in,
                                           struct qc_tensor *const *out)
{
    (void)n;
    (void)ctx;
    copy_through(in[0], out[0]);
    return QC_OK;
}

/* ---- definitions ---- */

const struct qc_op_def qc_op_relu = {
    .onnx_name = "Relu", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = infer_same_f32,
    .cpu = { .forward = relu_forward_cpu },
};

const struct qc_op_def qc_op_clip = {
    .onnx_name = "Clip", .n_in_min = 1, .n_in_max = 3, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = clip_parse, .infer = clip_infer,
    .cpu = { .forward = clip_forward_cpu },
};

const struct qc_op_def qc_op_leaky_relu = {
    .onnx_name = "LeakyRelu", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = leaky_relu_parse, .infer = infer_same_f32,
    .cpu = { .forward = leaky_relu_forward_cpu },
};

const struct qc_op_def qc_op_sigmoid = {
    .onnx_name = "Sigmoid", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = infer_same_f32,
    .cpu = { .forward = sigmoid_forward_cpu },
};

const struct qc_op_def qc_op_tanh = {
    .onnx_name = "Tanh", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = infer_same_f32,
    .cpu = { .forward = tanh_forward_cpu },
};

const struct qc_op_def qc_op_hard_sigmoid = {
    .onnx_name = "HardSigmoid", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = hard_sigmoid_parse, .infer = infer_same_f32,
    .cpu = { .forward = hard_sigmoid_forward_cpu },
};

const struct qc_op_def qc_op_hard_swish = {
    .onnx_name = "HardSwish", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = infer_same_f32,
    .cpu = { .forward = hard_swish_forward_cpu },
};

const struct qc_op_def qc_op_softmax = {
    .onnx_name = "Softmax", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = softmax_parse, .infer = softmax_infer,
    .cpu = { .forward = softmax_forward_cpu },
};

const struct qc_op_def qc_op_log_softmax = {
    .onnx_name = "LogSoftmax", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = softmax_parse, .infer = softmax_infer,
    .cpu = { .forward = log_softmax_forward_cpu },
};

const struct qc_op_def qc_op_dropout = {
    .onnx_name = "Dropout", .n_in_min = 1, .n_in_max = 3, .n_out_min = 1, .n_out_max = 2,
    .fold = QC_FOLD_NEVER, .parse = dropout_parse, .infer = dropout_infer,
    .cpu = { .forward = dropout_forward_cpu },
};

const struct qc_op_def qc_op_identity = {
    .onnx_name = "Identity", .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = identity_infer,
    .cpu = { .forward = identity_forward_cpu },
};
