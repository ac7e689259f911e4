/*
 * act.c - activation ops: Relu, Clip, LeakyRelu, Sigmoid, Tanh, HardSigmoid,
 * HardSwish, Softmax, LogSoftmax, Dropout and Identity, forward and backward.
 *
 * All compute float32, element by element (Softmax/LogSoftmax per row), and
 * keep their output the shape of their first input.  Integer forms (forward
 * only, exact): Relu on int8/int32/int64, Clip on uint8/int8/int32/int64
 * with bounds of the input's type, inference Dropout on those types.  Clip reads its bounds
 * from attributes before opset 11 and from optional scalar inputs 1 and 2
 * afterwards (at run time; an absent input is no bound).  Softmax and
 * LogSoftmax flatten the input to 2D at `axis` before opset 13 and work along
 * that single axis from 13.  Dropout is the identity in inference (its mask
 * output, when present, is all ones); in training (ctx->training and, from
 * opset 12, a true training_mode input when one is given) it is inverted
 * dropout: keep where uniform >= ratio, scale kept values by 1/(1-ratio), and
 * the keep mask (one byte per element) is the node's saved state.
 *
 * Backwards accumulate into din[0] only (Clip bounds and Dropout's ratio and
 * training_mode inputs get no gradient) and read the forward's input or
 * output, which the plan keeps.  Element-wise loops are branch-free selects
 * over fixed chunks; they go parallel above QC_PAR_MIN_STREAM elements
 * (exp/tanh forwards always, being compute-bound).
 */
#include <config.h>

#include "op.h"
#include "params_act.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "util/log.h"
#include "util/rng.h"

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

/* dx[i] += dy[i] * f'(x[i]) over a flat range.  x is the forward input, y its
 * output (Sigmoid and Tanh differentiate through y).  Chunks are disjoint, so
 * the result does not depend on the thread count. */
static void pointwise_backward(enum act_fn fn, float a, float b, const float *restrict x,
                               const float *restrict y, const float *restrict dy,
                               float *restrict dx, int64_t n, int threads)
{
    int64_t nchunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
    bool par = nchunks > 1 && n >= QC_PAR_MIN_STREAM;
#pragma omp parallel for num_threads(threads) schedule(static) if (par)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t lo = c * ACT_CHUNK, hi = QC_MIN(n, lo + ACT_CHUNK);
        /* Each select picks between a loaded dy and 0 and any arithmetic comes
         * after it: with trapping math, GCC vectorizes only that form. */
        switch (fn) {
        case ACT_RELU: /* dx += dy * [x > 0] */
            for (int64_t i = lo; i < hi; i++) {
                float g = dy[i];
                dx[i] += x[i] > 0.0f ? g : 0.0f;
            }
            break;
        case ACT_LEAKY: /* dx += dy * (x >= 0 ? 1 : a) */
            for (int64_t i = lo; i < hi; i++) {
                float v = x[i], g = dy[i];
                float gp = v >= 0.0f ? g : 0.0f, gn = v >= 0.0f ? 0.0f : g;
                dx[i] += gp + a * gn;
            }
            break;
        case ACT_SIGMOID: /* dx += dy * y * (1 - y) */
            for (int64_t i = lo; i < hi; i++)
                dx[i] += dy[i] * y[i] * (1.0f - y[i]);
            break;
        case ACT_TANH: /* dx += dy * (1 - y^2) */
            for (int64_t i = lo; i < hi; i++)
                dx[i] += dy[i] * (1.0f - y[i] * y[i]);
            break;
        case ACT_HARD_SIGMOID: /* dx += dy * a * [0 < a*x + b < 1] */
            for (int64_t i = lo; i < hi; i++) {
                float t = a * x[i] + b, g = dy[i];
                dx[i] += a * (((t > 0.0f) & (t < 1.0f)) ? g : 0.0f);
            }
            break;
        case ACT_HARD_SWISH:
            /* y = x * h, h = clamp(x/6 + 1/2, 0, 1):
             * dx += dy * (x <= -3 ? 0 : x >= 3 ? 1 : x/3 + 1/2) */
            for (int64_t i = lo; i < hi; i++) {
                float v = x[i], g = dy[i];
                float gin = ((v > -3.0f) & (v < 3.0f)) ? g : 0.0f;
                float ghi = v >= 3.0f ? g : 0.0f;
                dx[i] += ghi + gin * (v * (1.0f / 3.0f) + 0.5f);
            }
            break;
        case ACT_CLIP: /* dx += dy * [a < x < b]; the bounds get no gradient */
            for (int64_t i = lo; i < hi; i++) {
                float v = x[i], g = dy[i];
                dx[i] += ((v > a) & (v < b)) ? g : 0.0f;
            }
            break;
        }
    }
}

static enum qc_status run_pointwise_backward(enum act_fn fn, float a, float b,
                                             const struct qc_op_ctx *ctx,
                                             const struct qc_tensor *const *in,
                                             const struct qc_tensor *const *out,
                                             const struct qc_tensor *const *dout,
                                             struct qc_tensor *const *din)
{
    if (!din[0] || !dout[0])
        return QC_OK;
    pointwise_backward(fn, a, b, qc_tensor_f32(in[0]), qc_tensor_f32(out[0]),
                       qc_tensor_f32(dout[0]), qc_tensor_f32(din[0]), qc_tensor_nelem(in[0]),
                       nthreads(ctx));
    return QC_OK;
}

/* ---- Relu, Sigmoid, Tanh, HardSwish: no attributes ---- */

/* The integer types of Relu (int8, int32 from opset 14; int64 too) and
 * Clip (uint8, int8, int32, int64 from opset 12). */
static bool relu_int(enum qc_dtype dt)
{
    return dt == QC_DTYPE_I8 || dt == QC_DTYPE_I32 || dt == QC_DTYPE_I64;
}

static bool clip_int(enum qc_dtype dt)
{
    return dt == QC_DTYPE_U8 || relu_int(dt);
}

/* y[i] = min(max(x[i], lo), hi) for i in [i0, i1) (lo > hi gives hi). */
#define CLAMP_LOOP(T)                                                                     \
    do {                                                                                  \
        const T *x = xv;                                                                  \
        T *y = yv;                                                                        \
        for (int64_t i = i0; i < i1; i++) {                                               \
            int64_t v = x[i];                                                             \
            v = v < lo ? lo : v;                                                          \
            y[i] = (T)(v > hi ? hi : v);                                                  \
        }                                                                                 \
    } while (0)

static void clamp_range(enum qc_dtype dt, const void *xv, void *yv, int64_t lo, int64_t hi,
                        int64_t i0, int64_t i1)
{
    switch (dt) {
    case QC_DTYPE_U8:  CLAMP_LOOP(uint8_t); break;
    case QC_DTYPE_I8:  CLAMP_LOOP(int8_t); break;
    case QC_DTYPE_I32: CLAMP_LOOP(int32_t); break;
    case QC_DTYPE_I64: CLAMP_LOOP(int64_t); break;
    default: break;
    }
}

#undef CLAMP_LOOP

/* clamp_range over a whole integer tensor, chunked over threads. */
static void clamp_int(const struct qc_op_ctx *ctx, const struct qc_tensor *xt,
                      struct qc_tensor *yt, int64_t lo, int64_t hi)
{
    int64_t cnt = qc_tensor_nelem(xt), nchunks = (cnt + ACT_CHUNK - 1) / ACT_CHUNK;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) \
    if (cnt >= QC_PAR_MIN_STREAM)
    for (int64_t c = 0; c < nchunks; c++)
        clamp_range(xt->dtype, xt->data, yt->data, lo, hi, c * ACT_CHUNK,
                    QC_MIN(cnt, (c + 1) * ACT_CHUNK));
}

static enum qc_status relu_infer(const struct qc_node *n, const char *label,
                                 const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    if (relu_int(in[0]->dtype)) {
        out[0]->dtype = in[0]->dtype;
        out[0]->shape = in[0]->shape;
        return QC_OK;
    }
    return infer_same_f32(n, label, in, out);
}

static enum qc_status relu_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    (void)n;
    if (in[0]->dtype != QC_DTYPE_F32) {
        clamp_int(ctx, in[0], out[0], 0, INT64_MAX);
        return QC_OK;
    }
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

#define SIMPLE_BACKWARD(NAME, FN)                                                           \
    static enum qc_status NAME(const struct qc_node *n, const struct qc_op_ctx *ctx,         \
                               const struct qc_tensor *const *in,                            \
                               const struct qc_tensor *const *out,                           \
                               const struct qc_tensor *const *dout,                          \
                               struct qc_tensor *const *din)                                 \
    {                                                                                        \
        (void)n;                                                                             \
        return run_pointwise_backward(FN, 0.0f, 0.0f, ctx, in, out, dout, din);              \
    }

SIMPLE_BACKWARD(relu_backward_cpu, ACT_RELU)
SIMPLE_BACKWARD(sigmoid_backward_cpu, ACT_SIGMOID)
SIMPLE_BACKWARD(tanh_backward_cpu, ACT_TANH)
SIMPLE_BACKWARD(hard_swish_backward_cpu, ACT_HARD_SWISH)

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

static enum qc_status leaky_relu_backward_cpu(const struct qc_node *n,
                                              const struct qc_op_ctx *ctx,
                                              const struct qc_tensor *const *in,
                                              const struct qc_tensor *const *out,
                                              const struct qc_tensor *const *dout,
                                              struct qc_tensor *const *din)
{
    const struct act_params *p = n->params;
    return run_pointwise_backward(ACT_LEAKY, p->a, 0.0f, ctx, in, out, dout, din);
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

static enum qc_status hard_sigmoid_backward_cpu(const struct qc_node *n,
                                                const struct qc_op_ctx *ctx,
                                                const struct qc_tensor *const *in,
                                                const struct qc_tensor *const *out,
                                                const struct qc_tensor *const *dout,
                                                struct qc_tensor *const *din)
{
    const struct act_params *p = n->params;
    return run_pointwise_backward(ACT_HARD_SIGMOID, p->a, p->b, ctx, in, out, dout, din);
}

/* ---- Clip ---- */

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
    if (clip_int(in[0]->dtype)) {
        /* integer Clip (opset >= 12): fake-quant exports clip uint8 levels,
         * integer-only exports int64 requantized values */
        for (int i = 1; i < n->n_in && i < 3; i++) {
            if (in[i] && in[i]->dtype != in[0]->dtype) {
                qc_log_error("%s: Clip bound %d has type %s, input %s", label, i,
                             qc_dtype_name(in[i]->dtype), qc_dtype_name(in[0]->dtype));
                return QC_ERR_ONNX;
            }
        }
        out[0]->dtype = in[0]->dtype;
        out[0]->shape = in[0]->shape;
        return QC_OK;
    }
    return infer_same_f32(n, label, in, out);
}

/* The bounds in force: attributes, or the optional scalar inputs. */
static void clip_bounds(const struct qc_node *n, const struct qc_tensor *const *in, float *lo,
                        float *hi)
{
    const struct clip_params *p = n->params;
    *lo = p->min;
    *hi = p->max;
    if (p->from_inputs) {
        if (n->n_in > 1 && in[1])
            *lo = (float)qc_tensor_get_f64(in[1], 0);
        if (n->n_in > 2 && in[2])
            *hi = (float)qc_tensor_get_f64(in[2], 0);
    }
}

static enum qc_status clip_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    float lo, hi;
    if (in[0]->dtype != QC_DTYPE_F32) {
        /* bounds of the input's type, read exactly */
        int64_t ilo = INT64_MIN, ihi = INT64_MAX;
        if (n->n_in > 1 && in[1])
            ilo = qc_tensor_get_i64(in[1], 0);
        if (n->n_in > 2 && in[2])
            ihi = qc_tensor_get_i64(in[2], 0);
        clamp_int(ctx, in[0], out[0], ilo, ihi);
        return QC_OK;
    }
    clip_bounds(n, in, &lo, &hi);
    return run_pointwise(ACT_CLIP, lo, hi, ctx, in, out);
}

/* dx += dy * [min < x < max]; min and max get no gradient */
static enum qc_status clip_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                        const struct qc_tensor *const *in,
                                        const struct qc_tensor *const *out,
                                        const struct qc_tensor *const *dout,
                                        struct qc_tensor *const *din)
{
    float lo, hi;
    clip_bounds(n, in, &lo, &hi);
    return run_pointwise_backward(ACT_CLIP, lo, hi, ctx, in, out, dout, din);
}

/* ---- Softmax, LogSoftmax ---- */

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
void qc_softmax_geometry(const struct softmax_params *p, const struct qc_shape *s,
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
    qc_softmax_geometry(n->params, &in[0]->shape, &outer, &len, &inner);
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

/* Per row along the softmax axis (y is the forward output):
 *   softmax:    dx_j += y_j * (dy_j - sum_k dy_k y_k)
 *   logsoftmax: dx_j += dy_j - exp(y_j) * sum_k dy_k                         */
static enum qc_status softmax_backward_run(const struct qc_node *n,
                                           const struct qc_op_ctx *ctx,
                                           const struct qc_tensor *const *out,
                                           const struct qc_tensor *const *dout,
                                           struct qc_tensor *const *din, bool log_form)
{
    int64_t outer, len, inner, rows;
    const float *y, *dy;
    float *dx;
    if (!din[0] || !dout[0])
        return QC_OK;
    y = qc_tensor_f32(out[0]);
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
    qc_softmax_geometry(n->params, &out[0]->shape, &outer, &len, &inner);
    rows = outer * inner;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (rows * len > ACT_CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = (r / inner) * len * inner + r % inner;
        const float *yr = y + off, *dyr = dy + off;
        float *dxr = dx + off;
        double acc = 0.0;
        float s;
        if (log_form) {
            for (int64_t j = 0; j < len; j++)
                acc += dyr[j * inner];
            s = (float)acc;
            for (int64_t j = 0; j < len; j++)
                dxr[j * inner] += dyr[j * inner] - expf(yr[j * inner]) * s;
        } else {
            for (int64_t j = 0; j < len; j++)
                acc += (double)dyr[j * inner] * yr[j * inner];
            s = (float)acc;
            for (int64_t j = 0; j < len; j++)
                dxr[j * inner] += yr[j * inner] * (dyr[j * inner] - s);
        }
    }
    return QC_OK;
}

static enum qc_status softmax_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                           const struct qc_tensor *const *in,
                                           const struct qc_tensor *const *out,
                                           const struct qc_tensor *const *dout,
                                           struct qc_tensor *const *din)
{
    (void)in;
    return softmax_backward_run(n, ctx, out, dout, din, false);
}

static enum qc_status log_softmax_backward_cpu(const struct qc_node *n,
                                               const struct qc_op_ctx *ctx,
                                               const struct qc_tensor *const *in,
                                               const struct qc_tensor *const *out,
                                               const struct qc_tensor *const *dout,
                                               struct qc_tensor *const *din)
{
    (void)in;
    return softmax_backward_run(n, ctx, out, dout, din, true);
}

/* ---- Dropout, Identity ---- */

static enum qc_status dropout_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct dropout_params *p;
    int64_t is_test;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->mask_is_bool = opset >= 10;
    p->ratio_input = opset >= 12;
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
    enum qc_status st = QC_OK;
    if (clip_int(in[0]->dtype)) {
        /* inference Dropout is the identity on any type */
        out[0]->dtype = in[0]->dtype;
        out[0]->shape = in[0]->shape;
    } else {
        st = infer_same_f32(n, label, in, out);
    }
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

/* Whether this run drops: the plan's training mode and, from opset 12, the
 * training_mode input when the model gives one (absent = false per ONNX, but
 * a training plan means training, so absent counts as true here). */
bool qc_dropout_active(const struct qc_node *n, const struct qc_op_ctx *ctx,
                       const struct qc_tensor *const *in)
{
    const struct dropout_params *p = n->params;
    if (!ctx->training)
        return false;
    if (p->ratio_input && n->n_in > 2 && in[2])
        return qc_tensor_get_i64(in[2], 0) != 0;
    return true;
}

/* The drop probability: the ratio attribute before opset 12, else input 1
 * (default 0.5).  QC_ERR_ONNX outside [0, 1). */
static enum qc_status dropout_ratio(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                    const struct qc_tensor *const *in, float *ratio)
{
    const struct dropout_params *p = n->params;
    float r = p->ratio;
    if (p->ratio_input)
        r = n->n_in > 1 && in[1] ? (float)qc_tensor_get_f64(in[1], 0) : 0.5f;
    if (!(r >= 0.0f && r < 1.0f)) {
        qc_log_error("%s: Dropout ratio %g, expected a value in [0, 1)", ctx->label, (double)r);
        return QC_ERR_ONNX;
    }
    *ratio = r;
    return QC_OK;
}

/* One keep byte per element of X. */
static size_t dropout_saved(const struct qc_node *n, const struct qc_tensor *const *in,
                            const struct qc_tensor *const *out)
{
    (void)n;
    (void)out;
    return (size_t)qc_tensor_nelem(in[0]);
}

/* The saved mask of a training run, or NULL (logged) when the plan gave too
 * little saved space. */
unsigned char *qc_dropout_mask(const struct qc_op_ctx *ctx, int64_t cnt)
{
    if (!ctx->saved || ctx->saved_size < (size_t)cnt) {
        qc_log_error("%s: Dropout needs %lld saved bytes, got %zu", ctx->label, (long long)cnt,
                     ctx->saved ? ctx->saved_size : (size_t)0);
        return NULL;
    }
    return ctx->saved;
}

/* Data parallelism (ctx->sync with gbatch > the local batch b = dim 0): the
 * single process draws the mask of the whole global batch in element order,
 * gbatch · F uniforms (F = cnt / b per image); the rank with images
 * [lo, lo + b) uses draws [lo · F, (lo + b) · F) of them, so it skips lo · F
 * before its own and (gbatch - lo - b) · F after (after: true).  Every rank
 * starts the batch from the same generator state and ends it in the state
 * the single process ends it in.  0 without a sync or on one rank. */
static int64_t dropout_skip(const struct qc_op_ctx *ctx, const struct qc_tensor *x, int64_t cnt,
                            bool after)
{
    int64_t b = x->shape.ndim > 0 ? x->shape.dims[0] : 1, per;
    if (!ctx->sync || ctx->sync->gbatch <= b || b <= 0)
        return 0;
    per = cnt / b;
    return (after ? ctx->sync->gbatch - ctx->sync->lo - b : ctx->sync->lo) * per;
}

static void rng_skip(struct qc_rng *rng, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        (void)qc_rng_next(rng);
}

/* Inference: y = x, mask = 1.  Training (inverted dropout):
 *   keep_i = [u_i >= ratio], u_i ~ U[0,1) drawn in element order from ctx->rng
 *   y_i = x_i * keep_i / (1 - ratio)                                          */
static enum qc_status dropout_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          struct qc_tensor *const *out)
{
    int64_t cnt = qc_tensor_nelem(in[0]);
    const unsigned char *keep = NULL;
    if (qc_dropout_active(n, ctx, in) && in[0]->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: training Dropout on %s", ctx->label, qc_dtype_name(in[0]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    if (qc_dropout_active(n, ctx, in)) {
        const float *restrict x = qc_tensor_f32(in[0]);
        float *restrict y = qc_tensor_f32(out[0]);
        unsigned char *restrict m;
        float ratio, scale;
        enum qc_status st = dropout_ratio(n, ctx, in, &ratio);
        if (st != QC_OK)
            return st;
        m = qc_dropout_mask(ctx, cnt);
        if (!m)
            return QC_ERR_INTERNAL;
        if (!ctx->rng) {
            qc_log_error("%s: training Dropout without a random generator", ctx->label);
            return QC_ERR_INTERNAL;
        }
        /* serial draw: the mask depends on the seed only, not on threads;
         * a data-parallel rank's slice of the global batch takes its share of
         * the single process's draws (the others' are drawn and dropped) */
        rng_skip(ctx->rng, dropout_skip(ctx, in[0], cnt, false));
        for (int64_t i = 0; i < cnt; i++)
            m[i] = qc_rng_uniform(ctx->rng) >= ratio;
        rng_skip(ctx->rng, dropout_skip(ctx, in[0], cnt, true));
        scale = 1.0f / (1.0f - ratio);
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (cnt >= QC_PAR_MIN_STREAM)
        for (int64_t i = 0; i < cnt; i++)
            y[i] = x[i] * ((float)m[i] * scale);
        keep = m;
    } else {
        copy_through(in[0], out[0]);
    }
    if (n->n_out > 1) {
        if (out[1]->dtype == QC_DTYPE_BOOL) {
            if (keep)
                memcpy(out[1]->data, keep, (size_t)cnt);
            else
                memset(out[1]->data, 1, (size_t)cnt);
        } else {
            float *mf = qc_tensor_f32(out[1]);
            for (int64_t i = 0; i < cnt; i++)
                mf[i] = keep ? (float)keep[i] : 1.0f;
        }
    }
    return QC_OK;
}

/* Training: dx += dy * keep / (1 - ratio); inference: dx += dy.  The ratio
 * and training_mode inputs get no gradient. */
static enum qc_status dropout_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                           const struct qc_tensor *const *in,
                                           const struct qc_tensor *const *out,
                                           const struct qc_tensor *const *dout,
                                           struct qc_tensor *const *din)
{
    int64_t cnt = qc_tensor_nelem(in[0]);
    const float *restrict dy;
    float *restrict dx;
    (void)out;
    if (!din[0] || !dout[0])
        return QC_OK;
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
    if (qc_dropout_active(n, ctx, in)) {
        const unsigned char *restrict m = qc_dropout_mask(ctx, cnt);
        float ratio, scale;
        enum qc_status st = dropout_ratio(n, ctx, in, &ratio);
        if (st != QC_OK)
            return st;
        if (!m)
            return QC_ERR_INTERNAL;
        scale = 1.0f / (1.0f - ratio);
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (cnt >= QC_PAR_MIN_STREAM)
        for (int64_t i = 0; i < cnt; i++)
            dx[i] += dy[i] * ((float)m[i] * scale);
    } else {
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (cnt >= QC_PAR_MIN_STREAM)
        for (int64_t i = 0; i < cnt; i++)
            dx[i] += dy[i];
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

/* dx += dy (float32 only: integer Identities sit in folded subgraphs) */
static enum qc_status identity_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                            const struct qc_tensor *const *in,
                                            const struct qc_tensor *const *out,
                                            const struct qc_tensor *const *dout,
                                            struct qc_tensor *const *din)
{
    int64_t cnt = qc_tensor_nelem(in[0]);
    const float *restrict dy;
    float *restrict dx;
    (void)n;
    (void)out;
    if (!din[0] || !dout[0])
        return QC_OK;
    if (in[0]->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: Identity gradient of a %s tensor", ctx->label,
                     qc_dtype_name(in[0]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (cnt >= QC_PAR_MIN_STREAM)
    for (int64_t i = 0; i < cnt; i++)
        dx[i] += dy[i];
    return QC_OK;
}

/* ---- definitions ---- */

const struct qc_op_def qc_op_relu = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = relu_infer,
    .cpu = { .forward = relu_forward_cpu, .backward = relu_backward_cpu },
    .roles = { .quant = QC_QUANT_ACT, .cell = QC_CELL_ACTIVATION },
};

const struct qc_op_def qc_op_clip = {
    .n_in_min = 1, .n_in_max = 3, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = clip_parse, .infer = clip_infer,
    .cpu = { .forward = clip_forward_cpu, .backward = clip_backward_cpu },
    .roles = { .quant = QC_QUANT_ACT, .cell = QC_CELL_ACTIVATION },
};

const struct qc_op_def qc_op_leaky_relu = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = leaky_relu_parse, .infer = infer_same_f32,
    .cpu = { .forward = leaky_relu_forward_cpu, .backward = leaky_relu_backward_cpu },
};

const struct qc_op_def qc_op_sigmoid = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = infer_same_f32,
    .cpu = { .forward = sigmoid_forward_cpu, .backward = sigmoid_backward_cpu },
};

const struct qc_op_def qc_op_tanh = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = infer_same_f32,
    .cpu = { .forward = tanh_forward_cpu, .backward = tanh_backward_cpu },
};

const struct qc_op_def qc_op_hard_sigmoid = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = hard_sigmoid_parse, .infer = infer_same_f32,
    .cpu = { .forward = hard_sigmoid_forward_cpu, .backward = hard_sigmoid_backward_cpu },
};

const struct qc_op_def qc_op_hard_swish = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = infer_same_f32,
    .cpu = { .forward = hard_swish_forward_cpu, .backward = hard_swish_backward_cpu },
};

const struct qc_op_def qc_op_softmax = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = softmax_parse, .infer = softmax_infer,
    .cpu = { .forward = softmax_forward_cpu, .backward = softmax_backward_cpu },
};

const struct qc_op_def qc_op_log_softmax = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = softmax_parse, .infer = softmax_infer,
    .cpu = { .forward = log_softmax_forward_cpu, .backward = log_softmax_backward_cpu },
};

const struct qc_op_def qc_op_dropout = {
    .n_in_min = 1, .n_in_max = 3, .n_out_min = 1, .n_out_max = 2,
    .fold = QC_FOLD_NEVER, .parse = dropout_parse, .infer = dropout_infer,
    .saved = dropout_saved,
    .cpu = { .forward = dropout_forward_cpu, .backward = dropout_backward_cpu },
};

const struct qc_op_def qc_op_identity = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = identity_infer,
    .cpu = { .forward = identity_forward_cpu, .backward = identity_backward_cpu },
};
