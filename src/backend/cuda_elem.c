/*
 * cuda_elem.c - the CUDA kernels (struct qc_kernel) of the activation,
 * element-wise, dropout, pooling, reduction and layout ops: the C side of
 * kernels/elem.cu and kernels/pool.cu (launchers in qc_elem_kernels.h).
 * Each forward/backward has the semantics of its CPU twin in src/ops/act.c,
 * eltwise.c, pool.c and layout.c, reads the same parsed parameters
 * (src/ops/params_*.h) and resolves geometry with the same helpers.
 *
 * Memory: float tensors, ctx->workspace and ctx->saved are device memory;
 * integer constant inputs (Reshape shape, Pad pads/axes, reduce axes,
 * Dropout training_mode) are host memory and read here; float constant
 * inputs (Clip bounds, Dropout ratio, Pad constant_value) are device memory
 * and read by the kernels.  Compute is float32 only: integer forms (integer
 * Relu/Clip/MaxPool/ReduceSum and arithmetic) run folded on the host or on
 * the CPU backend; the byte-moving ops (Identity, Flatten, Reshape,
 * (Un)Squeeze, Transpose, Concat, inference Dropout) take 4- and 8-byte
 * elements.  Nothing synchronises; every launcher's status is checked and a
 * failure logs one line naming the launcher and the node.
 *
 * Saved state of training forwards (ctx->saved, sized by the op's saved()):
 * MaxPool/GlobalMaxPool the int32 arg-max per output, Dropout one keep byte
 * per element.  Without it (an inference forward) the backward recomputes
 * the arg-max into ctx->workspace (this file's workspace() sizes).  Dropout
 * draws one 64-bit seed per training forward from ctx->rng on the host and
 * hashes (seed, index) on the device, so its masks differ from the CPU's
 * serial draws (same distribution; parity tests must not compare them).
 */
#include <config.h>

#include <cuda_runtime.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "../../kernels/qc_elem_kernels.h"
#include "../log.h"
#include "../ops/params_act.h"
#include "../ops/params_layout.h"
#include "../ops/params_pool.h"
#include "../rng.h"
#include "cuda_ops.h"

/* A launcher of qc_elem_kernels.h: its int is a cudaError_t. */
#define K_CHECK(ctx, call)                                                                 \
    do {                                                                                   \
        int e_ = (call);                                                                   \
        if (e_ != 0) {                                                                     \
            qc_log_error("%s: CUDA %.*s failed: %s", (ctx)->label,                         \
                         (int)strcspn(#call, "("), #call,                                  \
                         cudaGetErrorString((cudaError_t)e_));                             \
            return QC_ERR_BACKEND;                                                         \
        }                                                                                  \
    } while (0)

/* dst = src, nbytes, device to device on the default stream (nothing when they alias). */
static enum qc_status dev_copy(const struct qc_op_ctx *ctx, void *dst, const void *src,
                               size_t nbytes)
{
    cudaError_t e;
    if (!nbytes || dst == src)
        return QC_OK;
    e = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, 0);
    if (e != cudaSuccess) {
        qc_log_error("%s: CUDA cudaMemcpyAsync failed: %s", ctx->label, cudaGetErrorString(e));
        return QC_ERR_BACKEND;
    }
    return QC_OK;
}

static bool need_f32(const struct qc_op_ctx *ctx, const struct qc_tensor *t, const char *what)
{
    if (t->dtype == QC_DTYPE_F32)
        return true;
    qc_log_error("%s: %s of type %s is not supported on cuda (float32 only)", ctx->label, what,
                 qc_dtype_name(t->dtype));
    return false;
}

/* dx += dy over whole tensors (the byte-preserving ops' backward). */
static enum qc_status acc_whole(const struct qc_op_ctx *ctx, const struct qc_tensor *dy,
                                struct qc_tensor *dx)
{
    K_CHECK(ctx, qc_k_acc_f32(qc_tensor_f32(dx), qc_tensor_f32(dy), qc_tensor_nelem(dx)));
    return QC_OK;
}

/* dst[box] = src[box] for elements of esize bytes (4 or 8: an 8-byte element is two words,
 * an extra innermost dim of 2). */
static enum qc_status copy_box(const struct qc_op_ctx *ctx, size_t esize, struct qc_k_box box,
                               const void *src, void *dst)
{
    if (esize == 8) {
        for (int k = 0; k < box.nd; k++) {
            box.sstr[k] *= 2;
            box.dstr[k] *= 2;
        }
        box.cnt[box.nd] = 2;
        box.sstr[box.nd] = 1;
        box.dstr[box.nd] = 1;
        box.nd++;
    } else if (esize != 4) {
        qc_log_error("%s: %zu-byte elements are not supported on cuda", ctx->label, esize);
        return QC_ERR_UNSUPPORTED;
    }
    K_CHECK(ctx, qc_k_copy_box_u32(box, src, dst));
    return QC_OK;
}

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

#define SIMPLE_ACT(NAME, FN)                                                                \
    static enum qc_status NAME##_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,   \
                                     const struct qc_tensor *const *in,                      \
                                     struct qc_tensor *const *out)                           \
    {                                                                                        \
        (void)n;                                                                             \
        return act_fwd(FN, 0.0f, 0.0f, NULL, NULL, ctx, in, out);                            \
    }                                                                                        \
    static enum qc_status NAME##_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,   \
                                     const struct qc_tensor *const *in,                      \
                                     const struct qc_tensor *const *out,                     \
                                     const struct qc_tensor *const *dout,                    \
                                     struct qc_tensor *const *din)                           \
    {                                                                                        \
        (void)n;                                                                             \
        return act_bwd(FN, 0.0f, 0.0f, NULL, NULL, ctx, in, out, dout, din);                 \
    }

/* Relu: dx += dy·[x > 0]; Sigmoid: dx += dy·y·(1 − y); Tanh: dx += dy·(1 − y²);
 * HardSwish: dx += dy·(x ≤ −3 ? 0 : x ≥ 3 ? 1 : x/3 + 1/2) */
SIMPLE_ACT(relu, QC_KE_RELU)
SIMPLE_ACT(sigmoid, QC_KE_SIGMOID)
SIMPLE_ACT(tanh, QC_KE_TANH)
SIMPLE_ACT(hard_swish, QC_KE_HARD_SWISH)

#define PARAM_ACT(NAME, FN)                                                                 \
    static enum qc_status NAME##_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,   \
                                     const struct qc_tensor *const *in,                      \
                                     struct qc_tensor *const *out)                           \
    {                                                                                        \
        const struct act_params *p = n->params;                                              \
        return act_fwd(FN, p->a, p->b, NULL, NULL, ctx, in, out);                            \
    }                                                                                        \
    static enum qc_status NAME##_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,   \
                                     const struct qc_tensor *const *in,                      \
                                     const struct qc_tensor *const *out,                     \
                                     const struct qc_tensor *const *dout,                    \
                                     struct qc_tensor *const *din)                           \
    {                                                                                        \
        const struct act_params *p = n->params;                                              \
        return act_bwd(FN, p->a, p->b, NULL, NULL, ctx, in, out, dout, din);                 \
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

static enum qc_status clip_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
static enum qc_status clip_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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

static enum qc_status softmax_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  struct qc_tensor *const *out)
{
    return softmax_run(n, ctx, in, out, 0);
}

static enum qc_status log_softmax_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    return softmax_run(n, ctx, in, out, 1);
}

static enum qc_status softmax_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  const struct qc_tensor *const *out,
                                  const struct qc_tensor *const *dout,
                                  struct qc_tensor *const *din)
{
    (void)in;
    return softmax_back(n, ctx, out, dout, din, 0);
}

static enum qc_status log_softmax_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      const struct qc_tensor *const *out,
                                      const struct qc_tensor *const *dout,
                                      struct qc_tensor *const *din)
{
    (void)in;
    return softmax_back(n, ctx, out, dout, din, 1);
}

/* ---- Dropout, Identity ---------------------------------------------------------------- */

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

/* The saved keep mask of a training run, or NULL (logged). */
static unsigned char *dropout_mask(const struct qc_op_ctx *ctx, int64_t cnt)
{
    if (!ctx->saved || ctx->saved_size < (size_t)cnt) {
        qc_log_error("%s: Dropout needs %lld saved bytes, got %zu", ctx->label, (long long)cnt,
                     ctx->saved ? ctx->saved_size : (size_t)0);
        return NULL;
    }
    return ctx->saved;
}

/* Inference: y = x, mask = 1.  Training (inverted dropout):
 *   keep_i = [u_i >= ratio], u_i = hash(seed, i) in [0, 1), seed drawn from ctx->rng
 *   y_i = x_i · keep_i / (1 − ratio)                                                       */
static enum qc_status dropout_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
        m = dropout_mask(ctx, cnt);
        if (!m)
            return QC_ERR_INTERNAL;
        if (!ctx->rng) {
            qc_log_error("%s: training Dropout without a random generator", ctx->label);
            return QC_ERR_INTERNAL;
        }
        K_CHECK(ctx, qc_k_dropout_forward(qc_rng_next(ctx->rng), ratio, ratio_p,
                                          qc_tensor_f32(in[0]), qc_tensor_f32(out[0]), m, cnt));
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
static enum qc_status dropout_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
        const unsigned char *m = dropout_mask(ctx, cnt);
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

/* y = x, any dtype (a device-to-device copy); also the forward of Flatten, Reshape,
 * Squeeze and Unsqueeze, whose output is the input's bytes. */
static enum qc_status copy_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                               const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    (void)n;
    return dev_copy(ctx, out[0]->data, in[0]->data, qc_tensor_nbytes(in[0]));
}

/* dx += dy (y is x's bytes) */
static enum qc_status copy_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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

/* ---- Add, Sub, Mul, Div, Sum ---------------------------------------------------------- */

/* Element strides of s aligned right to rank nd, 0 where s has extent 1. */
static void aligned_strides(const struct qc_shape *s, int nd, int64_t *st)
{
    int64_t acc = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int k = i - (nd - s->ndim);
        int64_t d = k >= 0 ? s->dims[k] : 1;
        st[i] = d == 1 ? 0 : acc;
        acc *= d;
    }
}

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
    aligned_strides(a, y->ndim, bc.sa);
    aligned_strides(b, y->ndim, bc.sb);
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
    aligned_strides(xs, nd, sx);
    aligned_strides(os, nd, so);
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

#define BINARY_OP(NAME, OP, TA, TB)                                                        \
    static enum qc_status NAME##_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,   \
                                     const struct qc_tensor *const *in,                      \
                                     struct qc_tensor *const *out)                           \
    {                                                                                        \
        (void)n;                                                                             \
        return binary_fwd(OP, ctx, in, out);                                                 \
    }                                                                                        \
    static enum qc_status NAME##_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,   \
                                     const struct qc_tensor *const *in,                      \
                                     const struct qc_tensor *const *out,                     \
                                     const struct qc_tensor *const *dout,                    \
                                     struct qc_tensor *const *din)                           \
    {                                                                                        \
        (void)n;                                                                             \
        return binary_bwd(TA, TB, ctx, in, out, dout, din);                                  \
    }

/* Add: da += reduce_a(dy), db += reduce_b(dy);  Sub: da += reduce_a(dy),
 * db += reduce_b(−dy);  Mul: da += reduce_a(dy·b), db += reduce_b(dy·a);
 * Div: da += reduce_a(dy/b), db += reduce_b(−dy·a/b²) */
BINARY_OP(add, QC_KE_ADD, QC_KE_TERM_DY, QC_KE_TERM_DY)
BINARY_OP(sub, QC_KE_SUB, QC_KE_TERM_DY, QC_KE_TERM_NEG_DY)
BINARY_OP(mul, QC_KE_MUL, QC_KE_TERM_MUL, QC_KE_TERM_MUL)
BINARY_OP(div, QC_KE_DIV, QC_KE_TERM_DIV_A, QC_KE_TERM_DIV_B)

/* y = ((x0 + x1) + x2) + ...  each broadcast to y's shape */
static enum qc_status sum_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
static enum qc_status sum_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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

/* ---- MaxPool, AveragePool ------------------------------------------------------------- */

static struct qc_k_pool kpool(const struct pool_geom *g)
{
    struct qc_k_pool k;
    k.nc = g->nc;
    for (int i = 0; i < 3; i++) {
        k.in[i] = g->in[i];
        k.out[i] = g->out[i];
        k.k[i] = g->k[i];
        k.s[i] = g->s[i];
        k.d[i] = g->d[i];
        k.pb[i] = g->pb[i];
        k.pe[i] = g->pe[i];
    }
    return k;
}

/* The saved arg-max of a training forward (one int32 per output), or NULL (pool.c's
 * maxpool_argbuf). */
static int32_t *maxpool_argbuf(const struct qc_op_ctx *ctx, const struct qc_tensor *x,
                               const struct qc_tensor *y)
{
    int64_t planes = x->shape.dims[0] * x->shape.dims[1];
    if (!ctx->training || !ctx->saved || planes < 1 ||
        qc_tensor_nelem(x) / planes > INT32_MAX ||
        ctx->saved_size < (size_t)qc_tensor_nelem(y) * sizeof(int32_t))
        return NULL;
    return ctx->saved;
}

/* Scratch of the backwards that recompute an arg-max: one int32 per output. */
static size_t argmax_workspace(const struct qc_node *n, const struct qc_tensor *const *in,
                               const struct qc_tensor *const *out, int threads)
{
    (void)n;
    (void)in;
    (void)threads;
    return (size_t)qc_tensor_nelem(out[0]) * sizeof(int32_t);
}

/* The workspace as an int32 array of cnt, or NULL (logged). */
static int32_t *argmax_scratch(const struct qc_op_ctx *ctx, int64_t cnt)
{
    if (!ctx->workspace || ctx->workspace_size < (size_t)cnt * sizeof(int32_t)) {
        qc_log_error("%s: the arg-max needs %lld workspace bytes, got %zu", ctx->label,
                     (long long)cnt * 4, ctx->workspace ? ctx->workspace_size : (size_t)0);
        return NULL;
    }
    return ctx->workspace;
}

/* y = first maximum of each window; the training forward also records where it is. */
static enum qc_status maxpool_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  struct qc_tensor *const *out)
{
    struct pool_geom g;
    enum qc_status st;
    if (!need_f32(ctx, in[0], "MaxPool input"))
        return QC_ERR_UNSUPPORTED;
    st = qc_pool_geometry(n->params, ctx->label, &in[0]->shape, &g);
    if (st != QC_OK)
        return st;
    K_CHECK(ctx, qc_k_maxpool_forward(kpool(&g), qc_tensor_f32(in[0]), qc_tensor_f32(out[0]),
                                      maxpool_argbuf(ctx, in[0], out[0]),
                                      n->n_out > 1 ? qc_tensor_i64(out[1]) : NULL));
    return QC_OK;
}

/* dx[argmax(window o)] += dy[o] (first maximum on ties), gathered per dx element; the
 * arg-max comes from the training forward or is recomputed into the workspace. */
static enum qc_status maxpool_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  const struct qc_tensor *const *out,
                                  const struct qc_tensor *const *dout,
                                  struct qc_tensor *const *din)
{
    struct pool_geom g;
    int32_t *arg = maxpool_argbuf(ctx, in[0], out[0]);
    enum qc_status st;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = qc_pool_geometry(n->params, ctx->label, &in[0]->shape, &g);
    if (st != QC_OK)
        return st;
    if (!arg) {
        arg = argmax_scratch(ctx, qc_tensor_nelem(out[0]));
        if (!arg)
            return QC_ERR_INTERNAL;
        K_CHECK(ctx, qc_k_maxpool_forward(kpool(&g), qc_tensor_f32(in[0]), NULL, arg, NULL));
    }
    K_CHECK(ctx, qc_k_maxpool_backward(kpool(&g), arg, qc_tensor_f32(dout[0]),
                                       qc_tensor_f32(din[0])));
    return QC_OK;
}

static enum qc_status avgpool_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  struct qc_tensor *const *out)
{
    const struct pool_params *p = n->params;
    struct pool_geom g;
    enum qc_status st = qc_pool_geometry(p, ctx->label, &in[0]->shape, &g);
    if (st != QC_OK)
        return st;
    K_CHECK(ctx, qc_k_avgpool_forward(kpool(&g), p->count_include_pad, qc_tensor_f32(in[0]),
                                      qc_tensor_f32(out[0])));
    return QC_OK;
}

/* y[o] = Σ x[window o] / cnt(o), so dx[i] += Σ_{o covers i} dy[o] / cnt(o) (cnt with or
 * without the padded positions, as the forward) */
static enum qc_status avgpool_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  const struct qc_tensor *const *out,
                                  const struct qc_tensor *const *dout,
                                  struct qc_tensor *const *din)
{
    const struct pool_params *p = n->params;
    struct pool_geom g;
    enum qc_status st;
    (void)out;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = qc_pool_geometry(p, ctx->label, &in[0]->shape, &g);
    if (st != QC_OK)
        return st;
    K_CHECK(ctx, qc_k_avgpool_backward(kpool(&g), p->count_include_pad,
                                       qc_tensor_f32(dout[0]), qc_tensor_f32(din[0])));
    return QC_OK;
}

/* ---- GlobalAveragePool, GlobalMaxPool ------------------------------------------------- */

/* The saved arg-max of a training GlobalMaxPool (one int32 per plane), or NULL. */
static int32_t *global_argbuf(const struct qc_op_ctx *ctx, const struct qc_tensor *x,
                              const struct qc_tensor *y)
{
    int64_t planes = qc_tensor_nelem(y);
    if (!ctx->training || !ctx->saved || planes < 1 || qc_tensor_nelem(x) / planes > INT32_MAX ||
        ctx->saved_size < (size_t)planes * sizeof(int32_t))
        return NULL;
    return ctx->saved;
}

static enum qc_status global_fwd(const struct qc_op_ctx *ctx, const struct qc_tensor *x,
                                 struct qc_tensor *y, int is_max)
{
    int64_t rows = qc_tensor_nelem(y), len = rows > 0 ? qc_tensor_nelem(x) / rows : 0;
    K_CHECK(ctx, qc_k_global_forward(is_max, qc_tensor_f32(x), qc_tensor_f32(y),
                                     is_max ? global_argbuf(ctx, x, y) : NULL, rows, len));
    return QC_OK;
}

/* GlobalAveragePool: dx[r, k] += dy[r] / len.  GlobalMaxPool: dx[r, argmax] += dy[r]
 * (first maximum, saved or recomputed into the workspace). */
static enum qc_status global_bwd(const struct qc_op_ctx *ctx, const struct qc_tensor *x,
                                 const struct qc_tensor *y, const struct qc_tensor *dy,
                                 struct qc_tensor *dx, int is_max)
{
    int64_t rows = qc_tensor_nelem(y), len = rows > 0 ? qc_tensor_nelem(x) / rows : 0;
    int32_t *arg = NULL;
    if (is_max) {
        arg = global_argbuf(ctx, x, y);
        if (!arg) {
            arg = argmax_scratch(ctx, rows);
            if (!arg)
                return QC_ERR_INTERNAL;
            K_CHECK(ctx, qc_k_global_forward(1, qc_tensor_f32(x), NULL, arg, rows, len));
        }
    }
    K_CHECK(ctx, qc_k_global_backward(is_max, arg, qc_tensor_f32(dy), qc_tensor_f32(dx), rows,
                                      len));
    return QC_OK;
}

static enum qc_status global_avg_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    (void)n;
    return global_fwd(ctx, in[0], out[0], 0);
}

static enum qc_status global_max_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    (void)n;
    return global_fwd(ctx, in[0], out[0], 1);
}

static enum qc_status global_avg_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     const struct qc_tensor *const *out,
                                     const struct qc_tensor *const *dout,
                                     struct qc_tensor *const *din)
{
    (void)n;
    if (!din[0] || !dout[0])
        return QC_OK;
    return global_bwd(ctx, in[0], out[0], dout[0], din[0], 0);
}

static enum qc_status global_max_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     const struct qc_tensor *const *out,
                                     const struct qc_tensor *const *dout,
                                     struct qc_tensor *const *din)
{
    (void)n;
    if (!din[0] || !dout[0])
        return QC_OK;
    return global_bwd(ctx, in[0], out[0], dout[0], din[0], 1);
}

/* ---- ReduceMean, ReduceSum (float32) -------------------------------------------------- */

/* y[o] = Σ over the reduced dims of x (in double) / (mean ? reduced size : 1) */
static enum qc_status reduce_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                 const struct qc_tensor *const *in,
                                 struct qc_tensor *const *out)
{
    const struct reduce_params *p = n->params;
    const struct qc_shape *s = &in[0]->shape;
    struct qc_k_red r;
    bool mask[QC_MAX_DIMS], noop;
    int64_t str[QC_MAX_DIMS], rsize = 1;
    enum qc_status st = qc_reduce_mask(n, ctx->label, in, mask, &noop);
    if (st != QC_OK)
        return st;
    if (noop)
        return dev_copy(ctx, out[0]->data, in[0]->data, qc_tensor_nbytes(in[0]));
    if (!need_f32(ctx, in[0], p->op))
        return QC_ERR_UNSUPPORTED;
    memset(&r, 0, sizeof(r));
    qc_shape_strides(s, str);
    for (int d = 0; d < s->ndim; d++) {
        if (mask[d]) {
            r.rdims[r.nr] = s->dims[d];
            r.ry[r.nr++] = str[d];
            rsize *= s->dims[d];
        } else {
            r.kdims[r.nk] = s->dims[d];
            r.ky[r.nk++] = str[d];
        }
    }
    K_CHECK(ctx, qc_k_reduce(r, QC_KE_TERM_DY, qc_tensor_f32(in[0]), NULL, NULL,
                             qc_tensor_f32(out[0]), 0, p->mean ? (double)rsize : 1.0));
    return QC_OK;
}

/* y[o] = Σ_reduced x / rsize, so dx[i] += dy[o(i)] / rsize (ReduceSum: · 1), o(i) = i with
 * the reduced coordinates dropped: a box over x reading dy with stride 0 on reduced dims. */
static enum qc_status reduce_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                 const struct qc_tensor *const *in,
                                 const struct qc_tensor *const *out,
                                 const struct qc_tensor *const *dout,
                                 struct qc_tensor *const *din)
{
    const struct reduce_params *p = n->params;
    const struct qc_shape *s = &in[0]->shape;
    struct qc_k_box box;
    bool mask[QC_MAX_DIMS], noop;
    int rank = s->ndim;
    int64_t total = qc_tensor_nelem(in[0]), rsize, acc = 1;
    enum qc_status st;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = qc_reduce_mask(n, ctx->label, in, mask, &noop);
    if (st != QC_OK)
        return st;
    if (!need_f32(ctx, in[0], p->op))
        return QC_ERR_UNSUPPORTED;
    if (noop || rank == 0)
        return acc_whole(ctx, dout[0], din[0]);
    memset(&box, 0, sizeof(box));
    box.nd = rank;
    qc_shape_strides(s, box.dstr);
    for (int d = rank - 1; d >= 0; d--) {
        box.cnt[d] = s->dims[d];
        box.sstr[d] = mask[d] ? 0 : acc;
        acc *= mask[d] ? 1 : s->dims[d];
    }
    rsize = total / QC_MAX(1, qc_tensor_nelem(out[0]));
    K_CHECK(ctx, qc_k_acc_box_f32(box, qc_tensor_f32(dout[0]), qc_tensor_f32(din[0]),
                                  p->mean ? 1.0f / (float)rsize : 1.0f));
    return QC_OK;
}

/* ---- Transpose, Concat, Pad ----------------------------------------------------------- */

/* out[i] = in[j], j[perm[k]] = i[k] */
static enum qc_status transpose_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
static enum qc_status transpose_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
static enum qc_status concat_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
static enum qc_status concat_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
static enum qc_status pad_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
static enum qc_status pad_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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

/* ---- the table ------------------------------------------------------------------------ */

#define KERNEL(NAME, F, B) static const struct qc_kernel NAME = { F, B, NULL }

KERNEL(k_relu, relu_fwd, relu_bwd);
KERNEL(k_clip, clip_fwd, clip_bwd);
KERNEL(k_leaky_relu, leaky_relu_fwd, leaky_relu_bwd);
KERNEL(k_sigmoid, sigmoid_fwd, sigmoid_bwd);
KERNEL(k_tanh, tanh_fwd, tanh_bwd);
KERNEL(k_hard_sigmoid, hard_sigmoid_fwd, hard_sigmoid_bwd);
KERNEL(k_hard_swish, hard_swish_fwd, hard_swish_bwd);
KERNEL(k_softmax, softmax_fwd, softmax_bwd);
KERNEL(k_log_softmax, log_softmax_fwd, log_softmax_bwd);
KERNEL(k_dropout, dropout_fwd, dropout_bwd);
KERNEL(k_copy, copy_fwd, copy_bwd);
KERNEL(k_add, add_fwd, add_bwd);
KERNEL(k_sub, sub_fwd, sub_bwd);
KERNEL(k_mul, mul_fwd, mul_bwd);
KERNEL(k_div, div_fwd, div_bwd);
KERNEL(k_sum, sum_fwd, sum_bwd);
KERNEL(k_avgpool, avgpool_fwd, avgpool_bwd);
KERNEL(k_global_avgpool, global_avg_fwd, global_avg_bwd);
KERNEL(k_reduce, reduce_fwd, reduce_bwd);
KERNEL(k_transpose, transpose_fwd, transpose_bwd);
KERNEL(k_concat, concat_fwd, concat_bwd);
KERNEL(k_pad, pad_fwd, pad_bwd);

static const struct qc_kernel k_maxpool = { maxpool_fwd, maxpool_bwd, argmax_workspace };
static const struct qc_kernel k_global_maxpool = { global_max_fwd, global_max_bwd,
                                                   argmax_workspace };

const struct qc_kernel *qc_cuda_elem_kernel(enum qc_op_kind kind)
{
    switch (kind) {
    case QC_OP_RELU:           return &k_relu;
    case QC_OP_CLIP:           return &k_clip;
    case QC_OP_LEAKY_RELU:     return &k_leaky_relu;
    case QC_OP_SIGMOID:        return &k_sigmoid;
    case QC_OP_TANH:           return &k_tanh;
    case QC_OP_HARD_SIGMOID:   return &k_hard_sigmoid;
    case QC_OP_HARD_SWISH:     return &k_hard_swish;
    case QC_OP_SOFTMAX:        return &k_softmax;
    case QC_OP_LOG_SOFTMAX:    return &k_log_softmax;
    case QC_OP_DROPOUT:        return &k_dropout;
    case QC_OP_IDENTITY:       return &k_copy;
    case QC_OP_ADD:            return &k_add;
    case QC_OP_SUB:            return &k_sub;
    case QC_OP_MUL:            return &k_mul;
    case QC_OP_DIV:            return &k_div;
    case QC_OP_SUM:            return &k_sum;
    case QC_OP_MAXPOOL:        return &k_maxpool;
    case QC_OP_AVGPOOL:        return &k_avgpool;
    case QC_OP_GLOBAL_AVGPOOL: return &k_global_avgpool;
    case QC_OP_GLOBAL_MAXPOOL: return &k_global_maxpool;
    case QC_OP_REDUCE_MEAN:    return &k_reduce;
    case QC_OP_REDUCE_SUM:     return &k_reduce;
    case QC_OP_FLATTEN:        return &k_copy;
    case QC_OP_RESHAPE:        return &k_copy;
    case QC_OP_SQUEEZE:        return &k_copy;
    case QC_OP_UNSQUEEZE:      return &k_copy;
    case QC_OP_TRANSPOSE:      return &k_transpose;
    case QC_OP_CONCAT:         return &k_concat;
    case QC_OP_PAD:            return &k_pad;
    default:                   return NULL;
    }
}
