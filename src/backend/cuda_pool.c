/*
 * cuda_pool.c - the CUDA kernels (struct qc_kernel) of pooling and
 * reductions: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool,
 * ReduceMean, ReduceSum: the C side of kernels/pool.cu, with the semantics
 * of src/ops/pool.c and its geometry helpers (src/ops/params_pool.h).
 *
 * A training forward of MaxPool / GlobalMaxPool saves the int32 arg-max per
 * output in ctx->saved; without it (an inference forward) the backward
 * recomputes it into ctx->workspace (this file's workspace() sizes).
 * Backwards are gather-form: each input element sums, in a fixed order, the
 * gradients of the windows that chose or cover it.  Reduce axes are host
 * constants.  float32 only.
 */
#include <config.h>

#include <float.h>
#include <stdint.h>
#include <string.h>

#include "ops/params_pool.h"
#include "cuda_op_util.h"
#include "cuda_kernels.h"

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

/* Scratch of the backwards that recompute an arg-max: one int32 per output. */
size_t qc_cuda_argmax_workspace(const struct qc_node *n, const struct qc_tensor *const *in,
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
enum qc_status qc_cuda_maxpool_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
                                      qc_maxpool_argbuf(ctx, in[0], out[0]),
                                      n->n_out > 1 ? qc_tensor_i64(out[1]) : NULL));
    return QC_OK;
}

/* dx[argmax(window o)] += dy[o] (first maximum on ties), gathered per dx element; the
 * arg-max comes from the training forward or is recomputed into the workspace. */
enum qc_status qc_cuda_maxpool_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                   const struct qc_tensor *const *in,
                                   const struct qc_tensor *const *out,
                                   const struct qc_tensor *const *dout,
                                   struct qc_tensor *const *din)
{
    struct pool_geom g;
    int32_t *arg = qc_maxpool_argbuf(ctx, in[0], out[0]);
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

enum qc_status qc_cuda_avgpool_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
enum qc_status qc_cuda_avgpool_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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

static enum qc_status global_fwd(const struct qc_op_ctx *ctx, const struct qc_tensor *x,
                                 struct qc_tensor *y, int is_max)
{
    int64_t rows = qc_tensor_nelem(y), len = rows > 0 ? qc_tensor_nelem(x) / rows : 0;
    K_CHECK(ctx, qc_k_global_forward(is_max, qc_tensor_f32(x), qc_tensor_f32(y),
                                     is_max ? qc_global_argbuf(ctx, x, y) : NULL, rows, len));
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
        arg = qc_global_argbuf(ctx, x, y);
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

enum qc_status qc_cuda_global_avg_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    (void)n;
    return global_fwd(ctx, in[0], out[0], 0);
}

enum qc_status qc_cuda_global_max_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    (void)n;
    return global_fwd(ctx, in[0], out[0], 1);
}

enum qc_status qc_cuda_global_avg_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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

enum qc_status qc_cuda_global_max_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
enum qc_status qc_cuda_reduce_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
enum qc_status qc_cuda_reduce_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
