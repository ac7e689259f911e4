/*
 * cuda_conv.c - the CUDA kernels of Conv, Gemm, MatMul and
 * BatchNormalization (cuda_kernels.h): the C side that
 * resolves shapes with the CPU op's own resolvers (params_conv.h,
 * params_gemm.h, params_norm.h), drives cuBLAS sgemm through
 * qc_backend_sgemm and launches the kernels of kernels/conv.cu and
 * kernels/norm.cu.  Semantics are those of src/ops/conv.c, gemm.c, norm.c;
 * formulas are restated next to each backward.  ConvTranspose has no CUDA
 * kernel (NULL: a plan on this backend reports it unsupported).
 *
 * Conv (1-3 spatial dims, any group, stride, dilation, pads): the batch is
 * cut into chunks of nb images (nb as large as CONV_WS_CAP bytes of
 * workspace allow, at least 1); per chunk and group, im2col lowers the
 * chunk into col [C_g*KV, nb*L], one sgemm y_g = W_g * col gives ybuf
 * [M_g, nb*L], and a kernel scatters ybuf to NCHW adding the bias.  The
 * workspace is col + ybuf.  Depthwise Convs (group == C_in > 1) run direct
 * kernels without workspace.
 *
 * Every tensor's data, ctx->workspace and ctx->saved are device pointers;
 * nothing here dereferences them.  Every launch and cuBLAS call is checked:
 * a failure logs one line naming it and the node and returns QC_ERR_BACKEND.
 * Nothing synchronises, except synchronized BatchNorm (SyncBatchNorm=1 in a
 * data-parallel job), which reads its per-channel totals back to sum them
 * over the ranks.
 */
#include <config.h>

#include <math.h>

#include <cuda_runtime.h>

#include "../../kernels/qc_conv_kernels.h"
#include "util/log.h"
#include "ops/params_conv.h"
#include "ops/params_gemm.h"
#include "ops/params_norm.h"
#include "backend.h"
#include "cuda_kernels.h"
#include "cuda_ops.h"

/* Workspace bound of one Conv's chunk (col + ybuf); a single image may need more. */
#define CONV_WS_CAP ((int64_t)256 << 20)

#define KCHECK(ctx, call)                                                           \
    do {                                                                            \
        int e_ = (call);                                                            \
        if (e_ != 0) {                                                              \
            qc_log_error("%s: CUDA %s failed: %s", (ctx)->label, #call,             \
                         cudaGetErrorString((cudaError_t)e_));                      \
            return QC_ERR_BACKEND;                                                  \
        }                                                                           \
    } while (0)

/* ---- Conv ----------------------------------------------------------------------------- */

static bool is_depthwise(const struct qc_conv_dims *d)
{
    return d->group > 1 && d->c_in == d->group;
}

static void kgeom(const struct qc_conv_dims *d, struct qc_k_conv_geom *kg)
{
    const struct qc_conv_geom *g = &d->geom;
    kg->batch = d->batch;
    kg->c_in = d->c_in;
    kg->c_out = d->c_out;
    kg->cg = d->c_in / d->group;
    kg->mg = d->c_out / d->group;
    for (int a = 0; a < 3; a++) {
        kg->in[a] = g->in[a];
        kg->out[a] = g->out[a];
        kg->kernel[a] = g->kernel[a];
        kg->stride[a] = g->stride[a];
        kg->dilation[a] = g->dilation[a];
        kg->pad[a] = g->pad[a];
    }
}

/* The chunking of the lowered path: nb images per chunk, col rows, ybuf
 * offset (floats, 64-byte aligned) and workspace floats. */
struct conv_plan {
    int64_t nb, rows, l, ybuf_off, floats;
};

static struct conv_plan conv_plan_of(const struct qc_conv_dims *d)
{
    struct conv_plan c;
    int64_t mg = d->c_out / d->group;
    int64_t per_img;
    c.rows = d->c_in / d->group * qc_conv_geom_kvol(&d->geom);
    c.l = qc_conv_geom_ovol(&d->geom);
    per_img = (c.rows + mg) * c.l * (int64_t)sizeof(float);
    c.nb = QC_MAX(QC_MIN(CONV_WS_CAP / QC_MAX(per_img, 1), d->batch), 1);
    c.ybuf_off = (c.rows * c.nb * c.l + 15) / 16 * 16;
    c.floats = c.ybuf_off + mg * c.nb * c.l;
    return c;
}

size_t qc_cuda_conv_workspace(const struct qc_node *n, const struct qc_tensor *const *in,
                              const struct qc_tensor *const *out, int threads)
{
    struct qc_conv_dims d;
    (void)out;
    (void)threads;
    if (qc_conv_resolve(n, "workspace", in, &d) != QC_OK || is_depthwise(&d))
        return 0;
    return (size_t)conv_plan_of(&d).floats * sizeof(float);
}

static enum qc_status need_workspace(const struct qc_op_ctx *ctx, size_t bytes)
{
    if (bytes && (!ctx->workspace || ctx->workspace_size < bytes)) {
        qc_log_error("%s: CUDA kernel needs %zu workspace bytes, got %zu", ctx->label, bytes,
                     ctx->workspace ? ctx->workspace_size : (size_t)0);
        return QC_ERR_INTERNAL;
    }
    return QC_OK;
}

enum qc_status qc_cuda_conv_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                const struct qc_tensor *const *in,
                                struct qc_tensor *const *out)
{
    struct qc_conv_dims d;
    struct qc_k_conv_geom kg;
    struct conv_plan cp;
    const float *x = qc_tensor_f32(in[0]), *w = qc_tensor_f32(in[1]);
    const float *b = n->n_in > 2 && in[2] ? qc_tensor_f32(in[2]) : NULL;
    float *y = qc_tensor_f32(out[0]);
    float *col, *ybuf;
    int64_t ivol;
    enum qc_status st = qc_conv_resolve(n, ctx->label, in, &d);

    if (st != QC_OK)
        return st;
    kgeom(&d, &kg);
    if (is_depthwise(&d)) {
        KCHECK(ctx, qc_k_depthwise_forward(&kg, x, w, b, y));
        return QC_OK;
    }
    cp = conv_plan_of(&d);
    st = need_workspace(ctx, (size_t)cp.floats * sizeof(float));
    if (st != QC_OK)
        return st;
    col = ctx->workspace;
    ybuf = col + cp.ybuf_off;
    ivol = qc_conv_geom_ivol(&d.geom);
    for (int64_t img0 = 0; img0 < d.batch; img0 += cp.nb) {
        const float *xc = x + img0 * d.c_in * ivol;
        float *yc = y + img0 * d.c_out * cp.l;
        kg.batch = QC_MIN(cp.nb, d.batch - img0);
        for (int64_t grp = 0; grp < d.group; grp++) {
            /* col = im2col(x_g) [C_g*KV, nb*L];  ybuf = W_g * col [M_g, nb*L] */
            KCHECK(ctx, qc_k_im2col(&kg, xc, grp, col));
            st = qc_sgemm(ctx->be, false, false, kg.mg, kg.batch * cp.l, cp.rows, 1.0f,
                          w + grp * kg.mg * cp.rows, col, 0.0f, ybuf);
            if (st != QC_OK)
                return st;
            KCHECK(ctx, qc_k_conv_scatter(&kg, ybuf, b, grp, yc));
        }
    }
    return QC_OK;
}

/* Conv backward, per chunk and group (col = im2col(x_g) of the chunk,
 * recomputed; dY_g gathered into dyg [M_g, nb*L]):
 *   dW_g += dY_g * col^T                  [M_g, C_g*KV]   (sgemm, beta 1)
 *   dcol  = W_g^T * dY_g                  [C_g*KV, nb*L]  (into col's space)
 *   dX_g += col2im(dcol)                  (gather: each dX element sums its entries)
 *   dB   += sum over images and positions of dY   (per-channel block sums)
 * Depthwise (direct): dX[n,c,i] += sum_{m of c} sum_kv w[m,kv] dY[n,m,o(i,kv)],
 * dW[m,kv] += sum_n sum_o dY[n,m,o] x[n,c,i(o,kv)]. */
enum qc_status qc_cuda_conv_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                const struct qc_tensor *const *in,
                                const struct qc_tensor *const *out,
                                const struct qc_tensor *const *dout,
                                struct qc_tensor *const *din)
{
    struct qc_conv_dims d;
    struct qc_k_conv_geom kg;
    struct conv_plan cp;
    const float *x = qc_tensor_f32(in[0]), *w = qc_tensor_f32(in[1]), *dy;
    float *dx, *dw, *db, *col, *dyg;
    int64_t ivol;
    enum qc_status st;

    (void)out;
    if (!dout[0])
        return QC_OK;
    dx = din[0] ? qc_tensor_f32(din[0]) : NULL;
    dw = din[1] ? qc_tensor_f32(din[1]) : NULL;
    db = n->n_in > 2 && in[2] && din[2] ? qc_tensor_f32(din[2]) : NULL;
    if (!dx && !dw && !db)
        return QC_OK;
    st = qc_conv_resolve(n, ctx->label, in, &d);
    if (st != QC_OK)
        return st;
    dy = qc_tensor_f32(dout[0]);
    kgeom(&d, &kg);
    cp = conv_plan_of(&d);
    if (db)
        KCHECK(ctx, qc_k_channel_sum_add(dy, d.batch, d.c_out, cp.l, db));
    if (is_depthwise(&d)) {
        if (dx)
            KCHECK(ctx, qc_k_depthwise_backward_dx(&kg, w, dy, dx));
        if (dw)
            KCHECK(ctx, qc_k_depthwise_backward_dw(&kg, x, dy, dw));
        return QC_OK;
    }
    if (!dx && !dw)
        return QC_OK;
    st = need_workspace(ctx, (size_t)cp.floats * sizeof(float));
    if (st != QC_OK)
        return st;
    col = ctx->workspace;
    dyg = col + cp.ybuf_off;
    ivol = qc_conv_geom_ivol(&d.geom);
    for (int64_t img0 = 0; img0 < d.batch; img0 += cp.nb) {
        const float *xc = x + img0 * d.c_in * ivol;
        const float *dyc = dy + img0 * d.c_out * cp.l;
        float *dxc = dx ? dx + img0 * d.c_in * ivol : NULL;
        int64_t ld;
        kg.batch = QC_MIN(cp.nb, d.batch - img0);
        ld = kg.batch * cp.l;
        for (int64_t grp = 0; grp < d.group; grp++) {
            const float *wg = w + grp * kg.mg * cp.rows;
            KCHECK(ctx, qc_k_conv_gather(&kg, dyc, grp, dyg));
            if (dw) {
                KCHECK(ctx, qc_k_im2col(&kg, xc, grp, col));
                st = qc_sgemm(ctx->be, false, true, kg.mg, cp.rows, ld, 1.0f, dyg, col, 1.0f,
                              dw + grp * kg.mg * cp.rows);
                if (st != QC_OK)
                    return st;
            }
            if (!dxc)
                continue;
            st = qc_sgemm(ctx->be, true, false, cp.rows, ld, kg.mg, 1.0f, wg, dyg, 0.0f, col);
            if (st != QC_OK)
                return st;
            KCHECK(ctx, qc_k_col2im_add(&kg, col, grp, dxc));
        }
    }
    return QC_OK;
}

/* ---- Gemm ----------------------------------------------------------------------------- */

/* C's [cr, cc] and its strides over Y [m, n] (0 on a broadcast axis), as gemm.c. */
static void gemm_c_layout(const struct qc_tensor *c, int64_t *cr, int64_t *cc, int64_t *rs,
                          int64_t *cs)
{
    const struct qc_shape *sh = &c->shape;
    *cr = sh->ndim == 2 ? sh->dims[0] : 1;
    *cc = sh->ndim >= 1 ? sh->dims[sh->ndim - 1] : 1;
    *rs = *cr == 1 ? 0 : *cc;
    *cs = *cc == 1 ? 0 : 1;
}

/* Y = alpha*op(A)*op(B) + beta*C: Y = beta*C broadcast first, then sgemm with beta 1. */
enum qc_status qc_cuda_gemm_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                const struct qc_tensor *const *in,
                                struct qc_tensor *const *out)
{
    const struct qc_gemm_params *p = n->params;
    const struct qc_tensor *c = n->n_in > 2 ? in[2] : NULL;
    float *y = qc_tensor_f32(out[0]);
    float beta = 0.0f;
    int64_t m, nn, k;
    enum qc_status st = qc_gemm_resolve(n, ctx->label, in, &m, &nn, &k);

    if (st != QC_OK)
        return st;
    if (c && p->beta != 0.0f) {
        int64_t cr, cc, rs, cs;
        gemm_c_layout(c, &cr, &cc, &rs, &cs);
        KCHECK(ctx, qc_k_gemm_fill_c(y, qc_tensor_f32(c), p->beta, m, nn, rs, cs));
        beta = 1.0f;
    }
    return qc_sgemm(ctx->be, p->trans_a, p->trans_b, m, nn, k, p->alpha, qc_tensor_f32(in[0]),
                    qc_tensor_f32(in[1]), beta, y);
}

/* Gemm backward, Y = alpha*op(A)*op(B) + beta*C (as gemm.c):
 *   dA += alpha * dY * op(B)^T   [M,K]      or  alpha * op(B) * dY^T  [K,M] (transA)
 *   dB += alpha * op(A)^T * dY   [K,N]      or  alpha * dY^T * op(A)  [N,K] (transB)
 *   dC[i*rs + j*cs] += beta * dY[i,j]  (dY summed over C's broadcast axes; a scalar C
 *   gets beta * the double sum of dY) */
enum qc_status qc_cuda_gemm_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                const struct qc_tensor *const *in,
                                const struct qc_tensor *const *out,
                                const struct qc_tensor *const *dout,
                                struct qc_tensor *const *din)
{
    const struct qc_gemm_params *p = n->params;
    const struct qc_tensor *c = n->n_in > 2 ? in[2] : NULL;
    const float *a = qc_tensor_f32(in[0]), *b = qc_tensor_f32(in[1]);
    const float *dy;
    int64_t m, nn, k;
    enum qc_status st;

    (void)out;
    if (!dout[0])
        return QC_OK;
    st = qc_gemm_resolve(n, ctx->label, in, &m, &nn, &k);
    if (st != QC_OK)
        return st;
    dy = qc_tensor_f32(dout[0]);
    if (din[0]) {
        float *da = qc_tensor_f32(din[0]);
        st = p->trans_a ? qc_sgemm(ctx->be, p->trans_b, true, k, m, nn, p->alpha, b, dy, 1.0f,
                                   da)
                        : qc_sgemm(ctx->be, false, !p->trans_b, m, k, nn, p->alpha, dy, b, 1.0f,
                                   da);
        if (st != QC_OK)
            return st;
    }
    if (din[1]) {
        float *db = qc_tensor_f32(din[1]);
        st = p->trans_b ? qc_sgemm(ctx->be, true, p->trans_a, nn, k, m, p->alpha, dy, a, 1.0f,
                                   db)
                        : qc_sgemm(ctx->be, !p->trans_a, false, k, nn, m, p->alpha, a, dy, 1.0f,
                                   db);
        if (st != QC_OK)
            return st;
    }
    if (c && din[2] && p->beta != 0.0f) {
        int64_t cr, cc, rs, cs;
        float *dc = qc_tensor_f32(din[2]);
        gemm_c_layout(c, &cr, &cc, &rs, &cs);
        if (rs == 0 && cs == 0)
            KCHECK(ctx, qc_k_sum_scaled_add(dy, m * nn, p->beta, dc));
        else
            KCHECK(ctx, qc_k_gemm_dc(dy, p->beta, m, nn, cr, cc, rs, cs, dc));
    }
    return QC_OK;
}

/* ---- MatMul --------------------------------------------------------------------------- */

static enum qc_status matmul_float_only(const struct qc_op_ctx *ctx,
                                        const struct qc_tensor *const *in)
{
    if (in[0]->dtype == QC_DTYPE_F32 && in[1]->dtype == QC_DTYPE_F32)
        return QC_OK;
    qc_log_error("%s: integer MatMul (%s x %s) has no CUDA kernel", ctx->label,
                 qc_dtype_name(in[0]->dtype), qc_dtype_name(in[1]->dtype));
    return QC_ERR_UNSUPPORTED;
}

/* numpy matmul: one product [batch*M, K] * [K, N] when B has one matrix,
 * else one product per output matrix. */
enum qc_status qc_cuda_matmul_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  struct qc_tensor *const *out)
{
    struct qc_matmul_dims d;
    struct qc_matmul_batch mb;
    const float *a = qc_tensor_f32(in[0]), *b = qc_tensor_f32(in[1]);
    float *y = qc_tensor_f32(out[0]);
    enum qc_status st = matmul_float_only(ctx, in);

    (void)n;
    if (st == QC_OK)
        st = qc_matmul_resolve(ctx->label, &in[0]->shape, &in[1]->shape, &d);
    if (st != QC_OK)
        return st;
    qc_matmul_batch_of(&d, &mb);
    if (mb.b_count == 1)
        return qc_sgemm(ctx->be, false, false, mb.a_count * d.m, d.n, d.k, 1.0f, a, b, 0.0f, y);
    for (int64_t t = 0; t < mb.count && st == QC_OK; t++) {
        int64_t ai, bi;
        qc_matmul_operands(&d, &mb, t, &ai, &bi);
        st = qc_sgemm(ctx->be, false, false, d.m, d.n, d.k, 1.0f, a + ai * d.m * d.k,
                      b + bi * d.k * d.n, 0.0f, y + t * d.m * d.n);
    }
    return st;
}

/* MatMul backward, Y[t] = A[a(t)] * B[b(t)] (as gemm.c):
 *   dA[a(t)] += dY[t] * B[b(t)]^T     [M,K]
 *   dB[b(t)] += A[a(t)]^T * dY[t]     [K,N]
 * summed over the t sharing an operand matrix (sgemms with beta 1 in t
 * order); with one B matrix, over [batch*M] stacked rows in one product. */
enum qc_status qc_cuda_matmul_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                  const struct qc_tensor *const *in,
                                  const struct qc_tensor *const *out,
                                  const struct qc_tensor *const *dout,
                                  struct qc_tensor *const *din)
{
    struct qc_matmul_dims d;
    struct qc_matmul_batch mb;
    const float *a = qc_tensor_f32(in[0]), *b = qc_tensor_f32(in[1]), *dy;
    float *da, *db;
    enum qc_status st;

    (void)n;
    (void)out;
    if (!dout[0] || (!din[0] && !din[1]))
        return QC_OK;
    st = matmul_float_only(ctx, in);
    if (st == QC_OK)
        st = qc_matmul_resolve(ctx->label, &in[0]->shape, &in[1]->shape, &d);
    if (st != QC_OK)
        return st;
    qc_matmul_batch_of(&d, &mb);
    dy = qc_tensor_f32(dout[0]);
    da = din[0] ? qc_tensor_f32(din[0]) : NULL;
    db = din[1] ? qc_tensor_f32(din[1]) : NULL;
    if (mb.b_count == 1) {
        int64_t rows = mb.a_count * d.m;
        if (da)
            st = qc_sgemm(ctx->be, false, true, rows, d.k, d.n, 1.0f, dy, b, 1.0f, da);
        if (st == QC_OK && db)
            st = qc_sgemm(ctx->be, true, false, d.k, d.n, rows, 1.0f, a, dy, 1.0f, db);
        return st;
    }
    for (int64_t t = 0; t < mb.count && st == QC_OK; t++) {
        int64_t ai, bi;
        const float *dyt = dy + t * d.m * d.n;
        qc_matmul_operands(&d, &mb, t, &ai, &bi);
        if (da)
            st = qc_sgemm(ctx->be, false, true, d.m, d.k, d.n, 1.0f, dyt, b + bi * d.k * d.n,
                          1.0f, da + ai * d.m * d.k);
        if (st == QC_OK && db)
            st = qc_sgemm(ctx->be, true, false, d.k, d.n, d.m, 1.0f, a + ai * d.m * d.k, dyt,
                          1.0f, db + bi * d.k * d.n);
    }
    return st;
}

/* ---- BatchNormalization --------------------------------------------------------------- */

/* The per-channel partial sums and backward coefficients (qc_k_bn_work_bytes),
 * and the per-channel totals of synchronized BatchNorm (qc_k_bn_sync_work_bytes). */
size_t qc_cuda_bn_workspace(const struct qc_node *n, const struct qc_tensor *const *in,
                            const struct qc_tensor *const *out, int threads)
{
    int64_t nb, c, inner;
    (void)n;
    (void)out;
    (void)threads;
    if (in[0]->shape.ndim < 2)
        return 0;
    qc_bn_geometry(in[0], &nb, &c, &inner);
    return (size_t)qc_k_bn_sync_work_bytes(c, nb * inner);
}

static float *opt_out(const struct qc_node *n, struct qc_tensor *const *out, int i)
{
    return n->n_out > i && out[i] ? qc_tensor_f32(out[i]) : NULL;
}

static bool bn_synced(const struct qc_op_ctx *ctx)
{
    return ctx->training && ctx->sync && ctx->sync->batchnorm;
}

/* Synchronized BatchNorm (a data-parallel job's SyncBatchNorm=1, as
 * src/ops/norm.c): the first n per-channel totals of the workspace summed
 * over the ranks, with this rank's count m appended, so *m_all = Σ_ranks m.
 * The totals (2C + 1 doubles at most) go device -> pinned host -> sum over
 * the ranks (ctx->sync->sum) -> device; cudaMemcpy waits for the kernels
 * queued before it.  Per-channel statistics only: the parameter gradients
 * take the job's gradient all-reduce (train/grad_buckets.c), not this. */
static enum qc_status bn_sum_totals(const struct qc_op_ctx *ctx, int64_t c, int64_t m, int64_t n,
                                    int64_t *m_all)
{
    double *dev = qc_k_bn_sync_totals(ctx->workspace, c, m);
    double *host = qc_cuda_host_scratch(ctx->be, (size_t)(2 * c + 1) * sizeof(double));
    enum qc_status st;
    if (!host)
        return QC_ERR_BACKEND;
    KCHECK(ctx, cudaMemcpy(host, dev, (size_t)n * sizeof(double), cudaMemcpyDeviceToHost));
    host[n] = (double)m;
    st = ctx->sync->sum(ctx->sync->arg, host, n + 1);
    if (st != QC_OK)
        return st;
    KCHECK(ctx, cudaMemcpy(dev, host, (size_t)n * sizeof(double), cudaMemcpyHostToDevice));
    *m_all = (int64_t)llround(host[n]);
    return QC_OK;
}

/* Training statistics of the GLOBAL batch (norm.c bn_batch_stats_sync):
 *   M = Σ_ranks m,  mu = Σ_ranks Σ x / M,  s2 = Σ_ranks Σ (x - mu)^2 / M,
 * identical saved state and running statistics on every rank. */
static enum qc_status bn_stats_sync(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                    const struct qc_tensor *const *in, struct qc_tensor *const *out,
                                    float *mu)
{
    const struct qc_bn_params *p = n->params;
    const float *x = qc_tensor_f32(in[0]);
    int64_t nb, c, inner, m, m_all;
    enum qc_status st;

    qc_bn_geometry(in[0], &nb, &c, &inner);
    m = nb * inner;
    KCHECK(ctx, qc_k_bn_sync_sums(x, NULL, nb, c, inner, ctx->workspace));
    st = bn_sum_totals(ctx, c, m, c, &m_all);
    if (st != QC_OK)
        return st;
    KCHECK(ctx, qc_k_bn_sync_mean(c, m, m_all, mu, ctx->workspace));
    KCHECK(ctx, qc_k_bn_sync_sums(x, mu, nb, c, inner, ctx->workspace));
    st = bn_sum_totals(ctx, c, m, c, &m_all);
    if (st != QC_OK)
        return st;
    KCHECK(ctx,
           qc_k_bn_sync_finish(c, m, m_all, p->epsilon, p->momentum, qc_tensor_f32(in[3]),
                               qc_tensor_f32(in[4]), mu, opt_out(n, out, 1), opt_out(n, out, 2),
                               opt_out(n, out, 3), opt_out(n, out, 4), ctx->workspace));
    return QC_OK;
}

/* Inference: y = a_c*x + b_c from the running statistics; extra outputs are
 * their copies.  Training: batch statistics (norm.c's file comment), saved
 * mu_B / istd, running statistics updated in place, then the same affine map. */
enum qc_status qc_cuda_bn_fwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                              const struct qc_tensor *const *in,
                              struct qc_tensor *const *out)
{
    const struct qc_bn_params *p = n->params;
    const float *x = qc_tensor_f32(in[0]), *scale = qc_tensor_f32(in[1]);
    const float *bias = qc_tensor_f32(in[2]);
    float *mean = qc_tensor_f32(in[3]), *var = qc_tensor_f32(in[4]);
    float *y = qc_tensor_f32(out[0]);
    int64_t nb, c, inner;
    enum qc_status st;

    qc_bn_geometry(in[0], &nb, &c, &inner);
    if (ctx->training) {
        float *mu = qc_bn_saved_state(ctx, c);
        if (!mu)
            return QC_ERR_INTERNAL;
        st = need_workspace(ctx, (size_t)qc_k_bn_sync_work_bytes(c, nb * inner));
        if (st != QC_OK)
            return st;
        if (bn_synced(ctx)) {
            st = bn_stats_sync(n, ctx, in, out, mu);
            if (st != QC_OK)
                return st;
        } else
            KCHECK(ctx, qc_k_bn_stats(x, nb, c, inner, p->epsilon, p->momentum, mean, var, mu,
                                      opt_out(n, out, 1), opt_out(n, out, 2), opt_out(n, out, 3),
                                      opt_out(n, out, 4), ctx->workspace));
        KCHECK(ctx, qc_k_bn_apply(1, x, y, nb, c, inner, mu, mu + c, scale, bias, p->epsilon));
        return QC_OK;
    }
    KCHECK(ctx, qc_k_bn_apply(0, x, y, nb, c, inner, mean, var, scale, bias, p->epsilon));
    for (int i = 1; i < n->n_out; i++) {
        float *dst = opt_out(n, out, i);
        if (dst)
            KCHECK(ctx, cudaMemcpyAsync(dst, (i % 2) ? mean : var, (size_t)c * sizeof(float),
                                        cudaMemcpyDeviceToDevice, 0));
    }
    return QC_OK;
}

/* Backward, per channel c with xh = (x - mu) * istd, sums over N and space:
 *   dB     += sum dy
 *   dscale += sum dy * xh
 *   training (mu = mu_B, istd = 1/sqrt(s2_B + eps), m values per channel):
 *     dx += scale * istd / m * (m * dy - sum dy - xh * sum(dy * xh))
 *   inference (mu, var = the running statistics, constants):
 *     dx += dy * scale * istd,  istd = 1/sqrt(var + eps)
 * (kernels/norm.cu evaluates dx += A*dy + K*(x - mu) + D as norm.c does);
 * the running statistics get no gradient.  Synchronized (SyncBatchNorm, as
 * norm.c bn_backward_sync): dscale and dB take this rank's sums (the
 * gradient all-reduce averages them), dx the sums over every rank and M:
 *   dx += scale * istd / M * (M * dy - Σ_ranks Σ dy - xh * Σ_ranks Σ dy * xh). */
enum qc_status qc_cuda_bn_bwd(const struct qc_node *n, const struct qc_op_ctx *ctx,
                              const struct qc_tensor *const *in,
                              const struct qc_tensor *const *out,
                              const struct qc_tensor *const *dout,
                              struct qc_tensor *const *din)
{
    const struct qc_bn_params *p = n->params;
    const float *mean, *disp;
    int64_t nb, c, inner;
    enum qc_status st;

    (void)out;
    if (!dout[0] || (!din[0] && !din[1] && !din[2]))
        return QC_OK;
    qc_bn_geometry(in[0], &nb, &c, &inner);
    if (ctx->training) {
        const float *mu = qc_bn_saved_state(ctx, c);
        if (!mu)
            return QC_ERR_INTERNAL;
        mean = mu;
        disp = mu + c;
    } else {
        mean = qc_tensor_f32(in[3]);
        disp = qc_tensor_f32(in[4]);
    }
    st = need_workspace(ctx, (size_t)qc_k_bn_sync_work_bytes(c, nb * inner));
    if (st != QC_OK)
        return st;
    if (bn_synced(ctx)) {
        const float *x = qc_tensor_f32(in[0]), *dy = qc_tensor_f32(dout[0]);
        const float *scale = qc_tensor_f32(in[1]);
        int64_t m_all;
        KCHECK(ctx, qc_k_bn_sync_dsums(x, dy, nb, c, inner, mean, disp, scale, p->epsilon,
                                       din[1] ? qc_tensor_f32(din[1]) : NULL,
                                       din[2] ? qc_tensor_f32(din[2]) : NULL, ctx->workspace));
        if (!din[0])
            return QC_OK;
        st = bn_sum_totals(ctx, c, nb * inner, 2 * c, &m_all);
        if (st != QC_OK)
            return st;
        KCHECK(ctx, qc_k_bn_sync_dx(x, dy, nb, c, inner, m_all, mean, disp, scale, p->epsilon,
                                    qc_tensor_f32(din[0]), ctx->workspace));
        return QC_OK;
    }
    KCHECK(ctx, qc_k_bn_backward(ctx->training ? 1 : 0, qc_tensor_f32(in[0]),
                                 qc_tensor_f32(dout[0]), nb, c, inner, mean, disp,
                                 qc_tensor_f32(in[1]), p->epsilon,
                                 din[0] ? qc_tensor_f32(din[0]) : NULL,
                                 din[1] ? qc_tensor_f32(din[1]) : NULL,
                                 din[2] ? qc_tensor_f32(din[2]) : NULL, ctx->workspace));
    return QC_OK;
}
