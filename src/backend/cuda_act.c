/*
 * cuda_act.c - the CUDA kernels (struct qc_kernel) of the point-wise ops:
 * activations (Relu, Clip, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish),
 * Softmax / LogSoftmax, Dropout, and the broadcasting arithmetic (Add, Sub,
 * Mul, Div, Sum): the C side of kernels/elem.cu.  Each forward/backward has
 * the semantics of its CPU twin in src/ops/act.c and eltwise.c and reads the
 * same parsed parameters (src/ops/params_act.h).
 *
 * Memory: float tensors, ctx->workspace and ctx->saved are device memory;
 * Dropout's training_mode (bool) is a host constant, its ratio and Clip's
 * bounds are device constants read by the kernels.  float32 only: the
 * integer forms run on the CPU backend.  Dropout draws one 64-bit seed per
 * training forward from ctx->rng and hashes (seed, index) on the device into
 * one keep byte per element in ctx->saved, so its masks differ from the
 * CPU's serial draws (same distribution; parity tests must not compare them).
 * In a data-parallel job (ctx->sync) every rank draws the same seed and
 * hashes the indices of its images in the global batch, so the ranks' masks
 * are the slices of the single process's.
 * Nothing synchronises; every launcher's status is checked.
 */
#include <config.h>

#include <float.h>
#include <stdint.h>
#include <string.h>

#include "ops/params_act.h"
#include "util/rng.h"
#include "cuda_op_util.h"
#include "cuda_kernels.h"

/* ---- activations ---------------------------------------------------------------------- */

static enum qc_status act_fwd(int fn, float a, float b, const float *lo_p, const float *hi_p,
                              const struct qc_op_ctx *ctx, const struct qc_tensor *const *in,
                              struct qc_tensor *const *out)
{
    if (!need_f32(ctx, in[0], "input"))
        return QC_ERR_UNSUPPORTED;
    K_CHECK(ctx, qc_k_act_forward(fn, a, b, lo_p, hi_p, qc_tensor_f32(in[0]),
                                  qc_tensor_f32(out[0]), qc_tensor_nelem(in[0])));
    return QC_OK;
}

/* dx += dy * f'(x) (formulas in elem.cu's act_grad, as act.c's pointwise_backward) */
static enum qc_status act_bwd(int fn, float a, float b, const float *lo_p, const float *hi_p,
                              const struct qc_op_ctx *ctx, const struct qc_tensor *const *in,
                              const struct qc_tensor *const *out,
                              const struct qc_tensor *const *dout, struct qc_tensor *const *din)
{
    if (!din[0] || !dout[0])
        return QC_OK;
    K_CHECK(ctx, qc_k_act_backward(fn, a, b, lo_p, hi_p, qc_tensor_f32(in[0]),
                                   qc_tensor_f32(out[0]), qc_tensor_f32(dout[0]),
                                   qc_tensor_f32(din[0]), qc_tensor_nelem(in[0])));
    return QC_OK;
}

#define SIMPLE_ACT(NAME, FN)                                                                  \
    enum qc_status qc_cuda_##NAME##_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx, \
                                        const struct qc_tensor *const *in,                    \
                                        struct qc_tensor *const *out)                         \
    {                                                                                         \
        (void)n;                                                                              \
        return act_fwd(FN, 0.0f, 0.0f, NULL, NULL, ctx, in, out);                             \
    }                                                                                         \
    enum qc_status qc_cuda_##NAME##_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx, \
                                        const struct qc_tensor *const *in,                    \
                                        const struct qc_tensor *const *out,                   \
                                        const struct qc_tensor *const *dout,                  \
                                        struct qc_tensor *const *din)                         \
    {                                                                                         \
        (void)n;                                                                              \
        return act_bwd(FN, 0.0f, 0.0f, NULL, NULL, ctx, in, out, dout, din);                  \
    }

/* Relu: dx += dy·[x > 0]; Sigmoid: dx += dy·y·(1 − y); Tanh: dx += dy·(1 − y²);
 * HardSwish: dx += dy·(x ≤ −3 ? 0 : x ≥ 3 ? 1 : x/3 + 1/2) */
SIMPLE_ACT(relu, QC_KE_RELU)
SIMPLE_ACT(sigmoid, QC_KE_SIGMOID)
SIMPLE_ACT(tanh, QC_KE_TANH)
SIMPLE_ACT(hard_swish, QC_KE_HARD_SWISH)

#define PARAM_ACT(NAME, FN)                                                                   \
    enum qc_status qc_cuda_##NAME##_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx, \
                                        const struct qc_tensor *const *in,                    \
                                        struct qc_tensor *const *out)                         \
    {                                                                                         \
        const struct act_params *p = n->params;                                               \
        return act_fwd(FN, p->a, p->b, NULL, NULL, ctx, in, out);                             \
    }                                                                                         \
    enum qc_status qc_cuda_##NAME##_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx, \
                                        const struct qc_tensor *const *in,                    \
                                        const struct qc_tensor *const *out,                   \
                                        const struct qc_tensor *const *dout,                  \
                                        struct qc_tensor *const *din)                         \
    {                                                                                         \
        const struct act_params *p = n->params;                                               \
        return act_bwd(FN, p->a, p->b, NULL, NULL, ctx, in, out, dout, din);                  \
    }

/* LeakyRelu: dx += dy·(x ≥ 0 ? 1 : a); HardSigmoid: dx += dy·a·[0 < a·x + b < 1] */
PARAM_ACT(leaky_relu, QC_KE_LEAKY)
PARAM_ACT(hard_sigmoid, QC_KE_HARD_SIGMOID)

/* Clip's bounds: attributes, or the optional scalar device inputs 1 and 2. */
static void clip_bounds(const struct qc_node *n, const struct qc_tensor *const *in, float *lo,
                        float *hi, const float **lo_p, const float **hi_p)
{
    const struct clip_params *p = n->params;
    *lo = p->min;
    *hi = p->max;
    *lo_p = *hi_p = NULL;
    if (p->from_inputs) {
        if (n->n_in > 1 && in[1])
            *lo_p = qc_tensor_f32(in[1]);
        if (n->n_in > 2 && in[2])
            *hi_p = qc_tensor_f32(in[2]);
    }
}

static bool clip_bounds_f32(const struct qc_node *n, const struct qc_op_ctx *ctx,
                            const struct qc_tensor *const *in)
{
    for (int i = 1; i < n->n_in && i < 3; i++)
        if (in[i] && !need_f32(ctx, in[i], "Clip bound"))
            return false;
    return true;
}

enum qc_status qc_cuda_clip_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    float lo, hi;
    const float *lo_p, *hi_p;
    if (!clip_bounds_f32(n, ctx, in))
        return QC_ERR_UNSUPPORTED;
    clip_bounds(n, in, &lo, &hi, &lo_p, &hi_p);
    return act_fwd(QC_KE_CLIP, lo, hi, lo_p, hi_p, ctx, in, out);
}

/* dx += dy·[min < x < max]; the bounds get no gradient */
enum qc_status qc_cuda_clip_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                const struct qc_tensor *const *in,
                                const struct qc_tensor *const *out,
                                const struct qc_tensor *const *dout, struct qc_tensor *const *din)
{
    float lo, hi;
    const float *lo_p, *hi_p;
    if (!clip_bounds_f32(n, ctx, in))
        return QC_ERR_UNSUPPORTED;
    clip_bounds(n, in, &lo, &hi, &lo_p, &hi_p);
    return act_bwd(QC_KE_CLIP, lo, hi, lo_p, hi_p, ctx, in, out, dout, din);
}

/* ---- Softmax, LogSoftmax -------------------------------------------------------------- */

static enum qc_status softmax_run(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  struct qc_tensor *const *out, int log_form)
{
    int64_t outer, len, inner;
    qc_softmax_geometry(n->params, &in[0]->shape, &outer, &len, &inner);
    K_CHECK(ctx, qc_k_softmax_forward(log_form, qc_tensor_f32(in[0]), qc_tensor_f32(out[0]),
                                      outer, len, inner));
    return QC_OK;
}

/* Per row along the axis (y = the forward output):
 *   softmax:    dx_j += y_j·(dy_j − Σ_k dy_k y_k)
 *   logsoftmax: dx_j += dy_j − exp(y_j)·Σ_k dy_k                                         */
static enum qc_status softmax_back(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                   const struct qc_tensor *const *out,
                                   const struct qc_tensor *const *dout,
                                   struct qc_tensor *const *din, int log_form)
{
    int64_t outer, len, inner;
    if (!din[0] || !dout[0])
        return QC_OK;
    qc_softmax_geometry(n->params, &out[0]->shape, &outer, &len, &inner);
    K_CHECK(ctx, qc_k_softmax_backward(log_form, qc_tensor_f32(out[0]), qc_tensor_f32(dout[0]),
                                       qc_tensor_f32(din[0]), outer, len, inner));
    return QC_OK;
}

enum qc_status qc_cuda_softmax_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    return softmax_run(n, ctx, in, out, 0);
}

enum qc_status qc_cuda_log_softmax_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    return softmax_run(n, ctx, in, out, 1);
}

enum qc_status qc_cuda_softmax_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                   const struct qc_tensor *const *in,
                                   const struct qc_tensor *const *out,
                                   const struct qc_tensor *const *dout,
                                   struct qc_tensor *const *din)
{
    (void)in;
    return softmax_back(n, ctx, out, dout, din, 0);
}

enum qc_status qc_cuda_log_softmax_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       const struct qc_tensor *const *out,
                                       const struct qc_tensor *const *dout,
                                       struct qc_tensor *const *din)
{
    (void)in;
    return softmax_back(n, ctx, out, dout, din, 1);
}

/* ---- Dropout -------------------------------------------------------------------------- */

/* The drop probability: the attribute (host) before opset 12, else the device scalar of
 * input 1 (*ratio_p) or 0.5. */
static enum qc_status dropout_ratio(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                    const struct qc_tensor *const *in, float *ratio,
                                    const float **ratio_p)
{
    const struct dropout_params *p = n->params;
    *ratio = p->ratio_input ? 0.5f : p->ratio;
    *ratio_p = NULL;
    if (p->ratio_input && n->n_in > 1 && in[1]) {
        if (!need_f32(ctx, in[1], "Dropout ratio"))
            return QC_ERR_UNSUPPORTED;
        *ratio_p = qc_tensor_f32(in[1]);
    } else if (!(*ratio >= 0.0f && *ratio < 1.0f)) {
        qc_log_error("%s: Dropout ratio %g, expected a value in [0, 1)", ctx->label,
                     (double)*ratio);
        return QC_ERR_ONNX;
    }
    return QC_OK;
}

/* The index of x[0] among the elements of the global batch: a data-parallel
 * rank (ctx->sync, global batch gbatch > the local batch b = dim 0) holds
 * images [lo, lo + b), cnt / b elements each; 0 in one process. */
static int64_t dropout_first(const struct qc_op_ctx *ctx, const struct qc_tensor *x, int64_t cnt)
{
    int64_t b = x->shape.ndim > 0 ? x->shape.dims[0] : 1;
    if (!ctx->sync || ctx->sync->gbatch <= b || b <= 0)
        return 0;
    return ctx->sync->lo * (cnt / b);
}

/* Inference: y = x, mask = 1.  Training (inverted dropout):
 *   keep_i = [u_i >= ratio], u_i = hash(seed, first + i) in [0, 1), seed drawn from
 *   ctx->rng, first = dropout_first (0 in one process)
 *   y_i = x_i · keep_i / (1 − ratio)                                                       */
enum qc_status qc_cuda_dropout_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    int64_t cnt = qc_tensor_nelem(in[0]);
    const unsigned char *keep = NULL;
    enum qc_status st;
    if (qc_dropout_active(n, ctx, in)) {
        float ratio;
        const float *ratio_p;
        unsigned char *m;
        if (!need_f32(ctx, in[0], "training Dropout input"))
            return QC_ERR_UNSUPPORTED;
        st = dropout_ratio(n, ctx, in, &ratio, &ratio_p);
        if (st != QC_OK)
            return st;
        m = qc_dropout_mask(ctx, cnt);
        if (!m)
            return QC_ERR_INTERNAL;
        if (!ctx->rng) {
            qc_log_error("%s: training Dropout without a random generator", ctx->label);
            return QC_ERR_INTERNAL;
        }
        K_CHECK(ctx,
                qc_k_dropout_forward(qc_rng_next(ctx->rng), dropout_first(ctx, in[0], cnt), ratio,
                                     ratio_p, qc_tensor_f32(in[0]), qc_tensor_f32(out[0]), m, cnt));
        keep = m;
    } else {
        st = dev_copy(ctx, out[0]->data, in[0]->data, qc_tensor_nbytes(in[0]));
        if (st != QC_OK)
            return st;
    }
    if (n->n_out > 1)
        K_CHECK(ctx, qc_k_dropout_mask_out(keep, out[1]->dtype == QC_DTYPE_BOOL, out[1]->data,
                                           cnt));
    return QC_OK;
}

/* Training: dx += dy·keep/(1 − ratio); inference: dx += dy.  ratio and training_mode get
 * no gradient. */
enum qc_status qc_cuda_dropout_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                   const struct qc_tensor *const *in,
                                   const struct qc_tensor *const *out,
                                   const struct qc_tensor *const *dout,
                                   struct qc_tensor *const *din)
{
    int64_t cnt = qc_tensor_nelem(in[0]);
    (void)out;
    if (!din[0] || !dout[0])
        return QC_OK;
    if (qc_dropout_active(n, ctx, in)) {
        float ratio;
        const float *ratio_p;
        const unsigned char *m = qc_dropout_mask(ctx, cnt);
        enum qc_status st = dropout_ratio(n, ctx, in, &ratio, &ratio_p);
        if (st != QC_OK)
            return st;
        if (!m)
            return QC_ERR_INTERNAL;
        K_CHECK(ctx, qc_k_dropout_backward(ratio, ratio_p, m, qc_tensor_f32(dout[0]),
                                           qc_tensor_f32(din[0]), cnt));
        return QC_OK;
    }
    return acc_whole(ctx, dout[0], din[0]);
}

/* ---- Add, Sub, Mul, Div, Sum ---------------------------------------------------------- */

static struct qc_k_bcast bcast_of(const struct qc_shape *a, const struct qc_shape *b,
                                  const struct qc_shape *y)
{
    struct qc_k_bcast bc;
    memset(&bc, 0, sizeof(bc));
    bc.nd = y->ndim > 0 ? y->ndim : 1;
    if (y->ndim == 0) {
        bc.dims[0] = 1;
        return bc;
    }
    for (int i = 0; i < y->ndim; i++)
        bc.dims[i] = y->dims[i];
    qc_aligned_strides(a, y->ndim, bc.sa);
    qc_aligned_strides(b, y->ndim, bc.sb);
    return bc;
}

static enum qc_status binary_fwd(int op, const struct qc_op_ctx *ctx,
                                 const struct qc_tensor *const *in,
                                 struct qc_tensor *const *out)
{
    if (!need_f32(ctx, in[0], "input") || !need_f32(ctx, in[1], "input"))
        return QC_ERR_UNSUPPORTED;
    K_CHECK(ctx, qc_k_binary(op, bcast_of(&in[0]->shape, &in[1]->shape, &out[0]->shape),
                             qc_tensor_f32(in[0]), qc_tensor_f32(in[1]), qc_tensor_f32(out[0]),
                             qc_tensor_nelem(out[0])));
    return QC_OK;
}

/* dx += Σ over the axes along which x was broadcast of term(dy, x, o), o = the other
 * operand (NULL for the dy terms): a gather reduction per dx element in a fixed order.
 * Output dims where x has extent > 1 are kept (their row-major index is x's flat index),
 * those where only y has extent > 1 are reduced. */
static enum qc_status grad_reduce(const struct qc_op_ctx *ctx, int term,
                                  const struct qc_shape *xs, const struct qc_shape *os,
                                  const struct qc_shape *ys, const float *dy, const float *x,
                                  const float *o, float *dx)
{
    struct qc_k_red r;
    int64_t sx[QC_MAX_DIMS], so[QC_MAX_DIMS], sy[QC_MAX_DIMS];
    int nd = ys->ndim;
    memset(&r, 0, sizeof(r));
    qc_aligned_strides(xs, nd, sx);
    qc_aligned_strides(os, nd, so);
    qc_shape_strides(ys, sy);
    for (int d = 0; d < nd; d++) {
        if (ys->dims[d] == 1)
            continue;
        if (sx[d]) {
            r.kdims[r.nk] = ys->dims[d];
            r.ky[r.nk] = sy[d];
            r.ko[r.nk++] = o ? so[d] : 0;
        } else {
            r.rdims[r.nr] = ys->dims[d];
            r.ry[r.nr] = sy[d];
            r.ro[r.nr++] = o ? so[d] : 0;
        }
    }
    K_CHECK(ctx, qc_k_reduce(r, term, dy, x, o, dx, 1, 1.0));
    return QC_OK;
}

/* Shared backward of the binary ops: din[0] gets term ta, din[1] term tb. */
static enum qc_status binary_bwd(int ta, int tb, const struct qc_op_ctx *ctx,
                                 const struct qc_tensor *const *in,
                                 const struct qc_tensor *const *out,
                                 const struct qc_tensor *const *dout,
                                 struct qc_tensor *const *din)
{
    const float *a = qc_tensor_f32(in[0]), *b = qc_tensor_f32(in[1]);
    const float *dy;
    enum qc_status st;
    if (!dout[0] || (!din[0] && !din[1]))
        return QC_OK;
    if (!need_f32(ctx, out[0], "gradient of an element-wise op"))
        return QC_ERR_UNSUPPORTED;
    dy = qc_tensor_f32(dout[0]);
    if (din[0]) {
        st = grad_reduce(ctx, ta, &in[0]->shape, &in[1]->shape, &out[0]->shape, dy, a,
                         ta == QC_KE_TERM_DY ? NULL : b, qc_tensor_f32(din[0]));
        if (st != QC_OK)
            return st;
    }
    if (din[1])
        return grad_reduce(ctx, tb, &in[1]->shape, &in[0]->shape, &out[0]->shape, dy, b,
                           tb == QC_KE_TERM_DY || tb == QC_KE_TERM_NEG_DY ? NULL : a,
                           qc_tensor_f32(din[1]));
    return QC_OK;
}

#define BINARY_OP(NAME, OP, TA, TB)                                                           \
    enum qc_status qc_cuda_##NAME##_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx, \
                                        const struct qc_tensor *const *in,                    \
                                        struct qc_tensor *const *out)                         \
    {                                                                                         \
        (void)n;                                                                              \
        return binary_fwd(OP, ctx, in, out);                                                  \
    }                                                                                         \
    enum qc_status qc_cuda_##NAME##_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx, \
                                        const struct qc_tensor *const *in,                    \
                                        const struct qc_tensor *const *out,                   \
                                        const struct qc_tensor *const *dout,                  \
                                        struct qc_tensor *const *din)                         \
    {                                                                                         \
        (void)n;                                                                              \
        return binary_bwd(TA, TB, ctx, in, out, dout, din);                                   \
    }

/* Add: da += reduce_a(dy), db += reduce_b(dy);  Sub: da += reduce_a(dy),
 * db += reduce_b(−dy);  Mul: da += reduce_a(dy·b), db += reduce_b(dy·a);
 * Div: da += reduce_a(dy/b), db += reduce_b(−dy·a/b²) */
BINARY_OP(add, QC_KE_ADD, QC_KE_TERM_DY, QC_KE_TERM_DY)
BINARY_OP(sub, QC_KE_SUB, QC_KE_TERM_DY, QC_KE_TERM_NEG_DY)
BINARY_OP(mul, QC_KE_MUL, QC_KE_TERM_MUL, QC_KE_TERM_MUL)
BINARY_OP(div, QC_KE_DIV, QC_KE_TERM_DIV_A, QC_KE_TERM_DIV_B)

/* y = ((x0 + x1) + x2) + ...  each broadcast to y's shape */
enum qc_status qc_cuda_sum_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                               const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    const struct qc_shape *ys = &out[0]->shape;
    float *y = qc_tensor_f32(out[0]);
    int64_t cnt = qc_tensor_nelem(out[0]);
    if (n->n_in == 1)
        return dev_copy(ctx, out[0]->data, in[0]->data, qc_tensor_nbytes(in[0]));
    K_CHECK(ctx, qc_k_binary(QC_KE_ADD, bcast_of(&in[0]->shape, &in[1]->shape, ys),
                             qc_tensor_f32(in[0]), qc_tensor_f32(in[1]), y, cnt));
    for (int i = 2; i < n->n_in; i++)
        K_CHECK(ctx, qc_k_binary(QC_KE_ADD, bcast_of(ys, &in[i]->shape, ys), y,
                                 qc_tensor_f32(in[i]), y, cnt));
    return QC_OK;
}

/* dx_i += reduce_i(dy) for every input */
enum qc_status qc_cuda_sum_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                               const struct qc_tensor *const *in,
                               const struct qc_tensor *const *out,
                               const struct qc_tensor *const *dout, struct qc_tensor *const *din)
{
    if (!dout[0])
        return QC_OK;
    for (int i = 0; i < n->n_in; i++) {
        enum qc_status st;
        if (!din[i])
            continue;
        st = grad_reduce(ctx, QC_KE_TERM_DY, &in[i]->shape, &in[i]->shape, &out[0]->shape,
                         qc_tensor_f32(dout[0]), qc_tensor_f32(in[i]), NULL,
                         qc_tensor_f32(din[i]));
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}
