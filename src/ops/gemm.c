/*
 * gemm.c - Gemm and MatMul, opsets 7..23, float32, on the backend's sgemm;
 * MatMul also on int32 and int64 (exact wrapping integer loops, shared with
 * MatMulInteger in intops.c through qc_op_int_matmul).
 *
 * Gemm:   Y[M,N] = alpha * op(A) * op(B) + beta * C, op = transpose when
 *         transA/transB; C optional (required before opset 11, accepted
 *         missing anyway) and unidirectionally broadcast to [M,N]: scalar,
 *         [N], [1,N], [M,1], [M,N].  The legacy 'broadcast' attribute is
 *         accepted and ignored (broadcasting is always on).
 * MatMul: numpy matmul: a 1D A is [1,K] and a 1D B is [K,1], the promoted
 *         axis is dropped from the result; leading (batch) dims broadcast.
 *         When B has one matrix the whole batch of A is one product
 *         [batch*M, K] * [K, N]; otherwise one product per output matrix.
 *
 * Backward (formulas next to gemm_backward_cpu and matmul_backward_cpu):
 * Gemm dA += alpha*dY*op(B)^T (transposed back when transA), dB likewise,
 * dC += beta*dY summed over C's broadcast axes; MatMul dA += dY*B^T,
 * dB += A^T*dY, each summed over the batch dims its operand broadcasts on.
 *
 * Threads: OpenBLAS runs single-threaded (backend/cpu.c), so a large
 * product is cut into one block of C's rows (or columns) per OpenMP thread,
 * each block one sgemm over the full K: every element of C is computed by
 * one call in a fixed way, whatever the timing.
 */
#include <config.h>

#include "op.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/backend.h"
#include "util/log.h"
#include "params_gemm.h"

/* Multiply-adds (m*n*k) below which a product runs on one thread. */
#define PAR_MIN_MACS ((int64_t)1 << 20)

static enum qc_status gemm_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct qc_gemm_params *p;
    int64_t ta, tb, bc;
    enum qc_status st;

    (void)opset;   /* Gemm-7/9/11/13 share alpha, beta, transA, transB */
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_float(&n->attrs, label, "alpha", 1.0f, &p->alpha);
    if (st == QC_OK)
        st = qc_attr_float(&n->attrs, label, "beta", 1.0f, &p->beta);
    if (st == QC_OK)
        st = qc_attr_int(&n->attrs, label, "transA", 0, &ta);
    if (st == QC_OK)
        st = qc_attr_int(&n->attrs, label, "transB", 0, &tb);
    if (st == QC_OK)
        st = qc_attr_int(&n->attrs, label, "broadcast", 1, &bc);
    if (st != QC_OK)
        return st;
    p->trans_a = ta != 0;
    p->trans_b = tb != 0;
    return QC_OK;
}

static enum qc_status check_f32(const char *label, const struct qc_tensor *const *in, int n_in)
{
    for (int i = 0; i < n_in; i++) {
        if (in[i] && in[i]->dtype != QC_DTYPE_F32) {
            qc_log_error("%s: input %d is %s, only float32 is supported", label, i,
                         qc_dtype_name(in[i]->dtype));
            return QC_ERR_UNSUPPORTED;
        }
    }
    return QC_OK;
}

/* Row-major C = alpha*op(A)*op(B) + beta*C with dense leading dimensions
 * (qc_sgemm's contract) on ctx->threads threads: C's longer side is cut
 * into one block per thread (multiples of 16 rows or columns), each block
 * one sgemm over the full K.  Products under PAR_MIN_MACS run whole. */
static enum qc_status par_sgemm(const struct qc_op_ctx *ctx, bool ta, bool tb, int64_t m,
                                int64_t n, int64_t k, float alpha, const float *a,
                                const float *b, float beta, float *c)
{
    bool by_rows = m >= n;
    int64_t span = by_rows ? m : n;
    int64_t threads = QC_MIN((int64_t)ctx->threads, span / 16);
    int64_t blk;
    enum qc_status st = QC_OK;

    if (threads <= 1 || m * n * k < PAR_MIN_MACS)
        return qc_sgemm(ctx->be, ta, tb, m, n, k, alpha, a, b, beta, c);
    blk = ((span + threads - 1) / threads + 15) / 16 * 16;
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)threads) schedule(static)
#endif
    for (int64_t t = 0; t < threads; t++) {
        int64_t lo = QC_MIN(t * blk, span), hi = QC_MIN(lo + blk, span);
        struct qc_gemm_args g = {
            .trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .alpha = alpha,
            .a = a, .lda = ta ? m : k, .b = b, .ldb = tb ? k : n, .beta = beta,
            .c = c, .ldc = n,
        };
        enum qc_status cst;
        if (hi <= lo)
            continue;
        if (by_rows) {
            /* rows lo..hi of op(A): rows of A, or columns when transposed */
            g.m = hi - lo;
            g.a = ta ? a + lo : a + lo * g.lda;
            g.c = c + lo * n;
        } else {
            /* columns lo..hi of op(B): columns of B, or rows when transposed */
            g.n = hi - lo;
            g.b = tb ? b + lo * g.ldb : b + lo;
            g.c = c + lo;
        }
        cst = qc_backend_sgemm(ctx->be, &g);
        if (cst != QC_OK) {
#ifdef _OPENMP
#pragma omp critical(qc_gemm_status)
#endif
            st = cst;
        }
    }
    return st;
}

enum qc_status qc_gemm_resolve(const struct qc_node *n, const char *label,
                               const struct qc_tensor *const *in, int64_t *m, int64_t *nn,
                               int64_t *k)
{
    const struct qc_gemm_params *p = n->params;
    const struct qc_shape *a = &in[0]->shape, *b = &in[1]->shape;
    const struct qc_tensor *c = n->n_in > 2 ? in[2] : NULL;
    char sa[128], sb[128], sc[128];
    enum qc_status st = check_f32(label, in, n->n_in);

    if (st != QC_OK)
        return st;
    if (a->ndim != 2 || b->ndim != 2)
        goto bad;
    *m = p->trans_a ? a->dims[1] : a->dims[0];
    *k = p->trans_a ? a->dims[0] : a->dims[1];
    *nn = p->trans_b ? b->dims[0] : b->dims[1];
    if ((p->trans_b ? b->dims[1] : b->dims[0]) != *k)
        goto bad;
    if (c) {
        const struct qc_shape *cs = &c->shape;
        int64_t want[2] = {*m, *nn};
        if (cs->ndim > 2)
            goto bad;
        for (int i = 0; i < cs->ndim; i++) {
            int64_t dim = cs->dims[cs->ndim - 1 - i];
            if (dim != 1 && dim != want[1 - i])
                goto bad;
        }
    }
    return QC_OK;
bad:
    qc_log_error("%s: A %s%s, B %s%s, C %s do not fit Y = A*B + C", label,
                 qc_shape_str(a, sa, sizeof(sa)), p->trans_a ? " (transA)" : "",
                 qc_shape_str(b, sb, sizeof(sb)), p->trans_b ? " (transB)" : "",
                 c ? qc_shape_str(&c->shape, sc, sizeof(sc)) : "none");
    return QC_ERR_SHAPE;
}

static enum qc_status gemm_infer(const struct qc_node *n, const char *label,
                                 const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    int64_t m, nn, k;
    enum qc_status st = qc_gemm_resolve(n, label, in, &m, &nn, &k);
    if (st != QC_OK)
        return st;
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape.ndim = 2;
    out[0]->shape.dims[0] = m;
    out[0]->shape.dims[1] = nn;
    return QC_OK;
}

static enum qc_status gemm_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
        /* Y = beta * C broadcast: C[i*rs + j*cs], a stride is 0 on an axis of 1 */
        const float *cv = qc_tensor_f32(c);
        const struct qc_shape *cs = &c->shape;
        int64_t cr = cs->ndim == 2 ? cs->dims[0] : 1;
        int64_t cc = cs->ndim >= 1 ? cs->dims[cs->ndim - 1] : 1;
        int64_t rs = cr == 1 ? 0 : cc;
        int64_t cstride = cc == 1 ? 0 : 1;
        /* serial: an OpenMP region right before the product leaves workers
         * spinning on the cores OpenBLAS is about to use */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nn; j++)
                y[i * nn + j] = p->beta * cv[i * rs + j * cstride];
        beta = 1.0f;
    }
    return par_sgemm(ctx, p->trans_a, p->trans_b, m, nn, k, p->alpha, qc_tensor_f32(in[0]),
                     qc_tensor_f32(in[1]), beta, y);
}

/* Gemm backward, Y = alpha*op(A)*op(B) + beta*C:
 *   d op(A) = alpha * dY * op(B)^T:  dA += alpha * dY * op(B)^T   [M,K]
 *                                    dA += alpha * op(B) * dY^T   [K,M] (transA)
 *   d op(B) = alpha * op(A)^T * dY:  dB += alpha * op(A)^T * dY   [K,N]
 *                                    dB += alpha * dY^T * op(A)   [N,K] (transB)
 *   dC[i*rs + j*cs] += beta * dY[i,j], rs / cs 0 on C's broadcast axes, so
 *   dC is dY summed over them.
 * op(B)^T of the stored B is "transposed unless transB", and so on. */
static enum qc_status gemm_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
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
        st = p->trans_a ? par_sgemm(ctx, p->trans_b, true, k, m, nn, p->alpha, b, dy, 1.0f, da)
                        : par_sgemm(ctx, false, !p->trans_b, m, k, nn, p->alpha, dy, b, 1.0f,
                                    da);
        if (st != QC_OK)
            return st;
    }
    if (din[1]) {
        float *db = qc_tensor_f32(din[1]);
        st = p->trans_b ? par_sgemm(ctx, true, p->trans_a, nn, k, m, p->alpha, dy, a, 1.0f, db)
                        : par_sgemm(ctx, !p->trans_a, false, k, nn, m, p->alpha, a, dy, 1.0f,
                                    db);
        if (st != QC_OK)
            return st;
    }
    if (c && n->n_in > 2 && din[2] && p->beta != 0.0f) {
        const struct qc_shape *cs = &c->shape;
        float *dc = qc_tensor_f32(din[2]);
        int64_t cr = cs->ndim == 2 ? cs->dims[0] : 1;
        int64_t cc = cs->ndim >= 1 ? cs->dims[cs->ndim - 1] : 1;
        int64_t rs = cr == 1 ? 0 : cc;
        int64_t cstride = cc == 1 ? 0 : 1;
        if (rs == 0 && cstride == 0) {
            double s = 0.0;
            for (int64_t i = 0; i < m * nn; i++)
                s += dy[i];
            dc[0] += p->beta * (float)s;
        } else {
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < nn; j++)
                    dc[i * rs + j * cstride] += p->beta * dy[i * nn + j];
        }
    }
    return QC_OK;
}

enum qc_status qc_matmul_resolve(const char *label, const struct qc_shape *a,
                                 const struct qc_shape *b, struct qc_matmul_dims *d)
{
    char sa[128], sb[128];
    int ra = a->ndim, rb = b->ndim;
    int na, nb;
    int64_t kb;

    memset(d, 0, sizeof(*d));
    if (ra < 1 || rb < 1)
        goto bad;
    /* 1D promotion: A [K] -> [1,K], B [K] -> [K,1] */
    d->m = ra == 1 ? 1 : a->dims[ra - 2];
    d->k = a->dims[ra - 1];
    kb = rb == 1 ? b->dims[0] : b->dims[rb - 2];
    d->n = rb == 1 ? 1 : b->dims[rb - 1];
    if (kb != d->k)
        goto bad;
    na = ra > 2 ? ra - 2 : 0;
    nb = rb > 2 ? rb - 2 : 0;
    d->nb = QC_MAX(na, nb);
    for (int i = 0; i < d->nb; i++) {
        int ia = i - (d->nb - na), ib = i - (d->nb - nb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1;
        int64_t db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            goto bad;
        d->a_bdims[i] = da;
        d->b_bdims[i] = db;
        d->bdims[i] = da == 1 ? db : da;
    }
    d->y.ndim = 0;
    for (int i = 0; i < d->nb; i++)
        d->y.dims[d->y.ndim++] = d->bdims[i];
    if (ra > 1)
        d->y.dims[d->y.ndim++] = d->m;
    if (rb > 1)
        d->y.dims[d->y.ndim++] = d->n;
    return QC_OK;
bad:
    qc_log_error("%s: MatMul of %s and %s: shapes do not fit", label,
                 qc_shape_str(a, sa, sizeof(sa)), qc_shape_str(b, sb, sizeof(sb)));
    return QC_ERR_SHAPE;
}

/* MatMul takes float32, or int32/int64 pairs (exact integer products that
 * wrap like ONNX Runtime's). */
static bool matmul_int_pair(const struct qc_tensor *const *in)
{
    return in[0]->dtype == in[1]->dtype &&
           (in[0]->dtype == QC_DTYPE_I32 || in[0]->dtype == QC_DTYPE_I64);
}

static enum qc_status matmul_infer(const struct qc_node *n, const char *label,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    struct qc_matmul_dims d;
    bool ints = matmul_int_pair(in);
    enum qc_status st = ints ? QC_OK : check_f32(label, in, n->n_in);
    if (st == QC_OK)
        st = qc_matmul_resolve(label, &in[0]->shape, &in[1]->shape, &d);
    if (st != QC_OK)
        return st;
    out[0]->dtype = ints ? in[0]->dtype : QC_DTYPE_F32;
    out[0]->shape = d.y;
    return QC_OK;
}

void qc_matmul_batch_of(const struct qc_matmul_dims *d, struct qc_matmul_batch *mb)
{
    mb->count = mb->a_count = mb->b_count = 1;
    for (int i = 0; i < d->nb; i++) {
        mb->count *= d->bdims[i];
        mb->a_count *= d->a_bdims[i];
        mb->b_count *= d->b_bdims[i];
    }
    for (int64_t i = d->nb - 1, sa = 1, sb = 1; i >= 0; i--) {
        mb->a_str[i] = d->a_bdims[i] == 1 ? 0 : sa;
        mb->b_str[i] = d->b_bdims[i] == 1 ? 0 : sb;
        sa *= d->a_bdims[i];
        sb *= d->b_bdims[i];
    }
}

void qc_matmul_operands(const struct qc_matmul_dims *d, const struct qc_matmul_batch *mb,
                        int64_t t, int64_t *ai, int64_t *bi)
{
    int64_t rem = t;
    *ai = 0;
    *bi = 0;
    for (int i = d->nb - 1; i >= 0; i--) {
        int64_t idx = rem % d->bdims[i];
        rem /= d->bdims[i];
        *ai += idx * mb->a_str[i];
        *bi += idx * mb->b_str[i];
    }
}

static enum qc_status matmul_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                         const struct qc_tensor *const *in,
                                         struct qc_tensor *const *out)
{
    struct qc_matmul_dims d;
    struct qc_matmul_batch mb;
    const float *a = qc_tensor_f32(in[0]), *b = qc_tensor_f32(in[1]);
    float *y = qc_tensor_f32(out[0]);
    enum qc_status st;

    (void)n;
    if (out[0]->dtype != QC_DTYPE_F32)
        return qc_op_int_matmul(ctx, in[0], in[1], NULL, NULL, out[0]);
    st = qc_matmul_resolve(ctx->label, &in[0]->shape, &in[1]->shape, &d);
    if (st != QC_OK)
        return st;
    qc_matmul_batch_of(&d, &mb);
    if (mb.b_count == 1) {
        /* every output matrix uses the one B: stack A's batch into rows */
        return par_sgemm(ctx, false, false, mb.a_count * d.m, d.n, d.k, 1.0f, a, b, 0.0f, y);
    }
    for (int64_t t = 0; t < mb.count; t++) {
        int64_t ai, bi;
        qc_matmul_operands(&d, &mb, t, &ai, &bi);
        st = par_sgemm(ctx, false, false, d.m, d.n, d.k, 1.0f, a + ai * d.m * d.k,
                       b + bi * d.k * d.n, 0.0f, y + t * d.m * d.n);
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

/* MatMul backward, Y[t] = A[a(t)] * B[b(t)] per output matrix t (a 1-D
 * operand is promoted as in the forward, which changes no memory layout):
 *   dA[a(t)] += dY[t] * B[b(t)]^T     [M,K]
 *   dB[b(t)] += A[a(t)]^T * dY[t]     [K,N]
 * summed over every t that maps to the same A (or B) matrix, i.e. over the
 * batch dims that operand broadcasts on.  With one B matrix, A's batch
 * stacks into rows as in the forward: dA += dY * B^T and dB += A^T * dY
 * over [batch*M] rows, one product each. */
static enum qc_status matmul_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          const struct qc_tensor *const *out,
                                          const struct qc_tensor *const *dout,
                                          struct qc_tensor *const *din)
{
    struct qc_matmul_dims d;
    struct qc_matmul_batch mb;
    const float *a = qc_tensor_f32(in[0]), *b = qc_tensor_f32(in[1]);
    const float *dy;
    float *da, *db;
    enum qc_status st;

    (void)out;
    (void)n;
    if (!dout[0] || (!din[0] && !din[1]))
        return QC_OK;
    if (out[0]->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: gradient of an integer MatMul", ctx->label);
        return QC_ERR_UNSUPPORTED;
    }
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
            st = par_sgemm(ctx, false, true, rows, d.k, d.n, 1.0f, dy, b, 1.0f, da);
        if (st == QC_OK && db)
            st = par_sgemm(ctx, true, false, d.k, d.n, rows, 1.0f, a, dy, 1.0f, db);
        return st;
    }
    for (int64_t t = 0; t < mb.count && st == QC_OK; t++) {
        int64_t ai, bi;
        const float *dyt = dy + t * d.m * d.n;
        qc_matmul_operands(&d, &mb, t, &ai, &bi);
        if (da)
            st = par_sgemm(ctx, false, true, d.m, d.k, d.n, 1.0f, dyt, b + bi * d.k * d.n, 1.0f,
                           da + ai * d.m * d.k);
        if (st == QC_OK && db)
            st = par_sgemm(ctx, true, false, d.k, d.n, d.m, 1.0f, a + ai * d.m * d.k, dyt, 1.0f,
                           db + bi * d.k * d.n);
    }
    return st;
}

/* ---- integer MatMul (MatMul int32/int64, MatMulInteger) ---- */

/* Element i of an integer tensor, widened. */
static inline int64_t int_at(const struct qc_tensor *t, int64_t i)
{
    return qc_tensor_get_i64(t, i);
}

enum qc_status qc_op_matmul_shape(const char *label, const struct qc_shape *a,
                                  const struct qc_shape *b, struct qc_shape *y)
{
    struct qc_matmul_dims d;
    enum qc_status st = qc_matmul_resolve(label, a, b, &d);
    if (st == QC_OK)
        *y = d.y;
    return st;
}

size_t qc_op_int_matmul_workspace(const struct qc_tensor *a, const struct qc_tensor *b,
                                  const struct qc_tensor *y)
{
    struct qc_matmul_dims d;
    if (qc_matmul_resolve("MatMul", &a->shape, &b->shape, &d) != QC_OK)
        return 0;
    return (size_t)(d.k * d.n) * (y->dtype == QC_DTYPE_I64 ? 8 : 4);
}

/* Y[t] = (A[a(t)] - a_zp) * (B[b(t)] - b_zp) per output matrix t, computed
 * modulo 2^32 (int32 Y) or 2^64 (int64 Y) in unsigned arithmetic, which is
 * exactly the wrapping int32/int64 accumulation ONNX Runtime does.  a_zp is
 * a scalar or one value per row of A, b_zp a scalar or one per column of B.
 * The shifted B matrix goes to the workspace; rows of Y are spread over
 * threads (each element is summed over k in order by one thread). */
enum qc_status qc_op_int_matmul(const struct qc_op_ctx *ctx, const struct qc_tensor *a,
                                const struct qc_tensor *b, const struct qc_tensor *a_zp,
                                const struct qc_tensor *b_zp, struct qc_tensor *y)
{
    struct qc_matmul_dims d;
    struct qc_matmul_batch mb;
    bool wide = y->dtype == QC_DTYPE_I64;
    size_t need;
    int threads = ctx->threads > 0 ? ctx->threads : 1;
    int64_t nazp = a_zp ? qc_tensor_nelem(a_zp) : 0, nbzp = b_zp ? qc_tensor_nelem(b_zp) : 0;
    enum qc_status st = qc_matmul_resolve(ctx->label, &a->shape, &b->shape, &d);

    if (st != QC_OK)
        return st;
    need = (size_t)(d.k * d.n) * (wide ? 8 : 4);
    if (need && (!ctx->workspace || ctx->workspace_size < need)) {
        qc_log_error("%s: integer MatMul needs %zu workspace bytes, got %zu", ctx->label, need,
                     ctx->workspace ? ctx->workspace_size : (size_t)0);
        return QC_ERR_INTERNAL;
    }
    qc_matmul_batch_of(&d, &mb);
    for (int64_t t = 0; t < mb.count; t++) {
        int64_t ai, bi, m = d.m, nn = d.n, kk = d.k;
        int64_t aoff, boff = 0, yoff = t * m * nn;
        qc_matmul_operands(&d, &mb, t, &ai, &bi);
        aoff = ai * m * kk;
        boff = bi * kk * nn;
        for (int64_t k = 0; k < kk; k++) {
            for (int64_t j = 0; j < nn; j++) {
                int64_t v = int_at(b, boff + k * nn + j);
                v -= nbzp == 0 ? 0 : int_at(b_zp, nbzp == 1 ? 0 : j);
                if (wide)
                    ((uint64_t *)ctx->workspace)[k * nn + j] = (uint64_t)v;
                else
                    ((uint32_t *)ctx->workspace)[k * nn + j] = (uint32_t)v;
            }
        }
#pragma omp parallel for num_threads(threads) schedule(static) if (m * nn * kk >= PAR_MIN_MACS)
        for (int64_t i = 0; i < m; i++) {
            int64_t zr = nazp == 0 ? 0 : int_at(a_zp, nazp == 1 ? 0 : i);
            if (wide) {
                const uint64_t *bs = ctx->workspace;
                uint64_t *yr = (uint64_t *)y->data + yoff + i * nn;
                for (int64_t j = 0; j < nn; j++)
                    yr[j] = 0;
                for (int64_t k = 0; k < kk; k++) {
                    uint64_t av = (uint64_t)(int_at(a, aoff + i * kk + k) - zr);
                    const uint64_t *br = bs + k * nn;
                    for (int64_t j = 0; j < nn; j++)
                        yr[j] += av * br[j];
                }
            } else {
                const uint32_t *bs = ctx->workspace;
                uint32_t *yr = (uint32_t *)y->data + yoff + i * nn;
                for (int64_t j = 0; j < nn; j++)
                    yr[j] = 0;
                for (int64_t k = 0; k < kk; k++) {
                    uint32_t av = (uint32_t)(int_at(a, aoff + i * kk + k) - zr);
                    const uint32_t *br = bs + k * nn;
                    if (av == 0)
                        continue;
                    for (int64_t j = 0; j < nn; j++)
                        yr[j] += av * br[j];
                }
            }
        }
    }
    return QC_OK;
}

/* Only the integer forms need scratch (the shifted B matrix). */
static size_t matmul_workspace(const struct qc_node *n, const struct qc_tensor *const *in,
                               const struct qc_tensor *const *out, int threads)
{
    (void)n;
    (void)threads;
    return out[0]->dtype == QC_DTYPE_F32 ? 0 : qc_op_int_matmul_workspace(in[0], in[1], out[0]);
}

/* B is [K, N], or [N, K] with transB: the output channels are N. */
static int gemm_channel_axis(const struct qc_node *n)
{
    const struct qc_gemm_params *p = n->params;
    return p && p->trans_b ? 0 : 1;
}

const struct qc_op_def qc_op_gemm = {
    .n_in_min = 2, .n_in_max = 3, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER,
    .parse = gemm_parse,
    .infer = gemm_infer,
    .workspace = NULL,
    .cpu = {.forward = gemm_forward_cpu, .backward = gemm_backward_cpu},
    /* Y = alpha·A·B + beta·C: B the weight, C the bias */
    .roles = {.weight = QC_SLOT(1), .bias = QC_SLOT(2), .channel_axis_of = gemm_channel_axis,
              .trainable = QC_INPUT_BIT(1) | QC_INPUT_BIT(2), .quant = QC_QUANT_WEIGHT,
              .cell = QC_CELL_FC},
};

const struct qc_op_def qc_op_matmul = {
    .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER,
    .parse = NULL,
    .infer = matmul_infer,
    .workspace = matmul_workspace,
    .cpu = {.forward = matmul_forward_cpu, .backward = matmul_backward_cpu},
    /* Y = A·B, B [K, N] the weight; either operand trains when it is an initializer */
    .roles = {.weight = QC_SLOT(1), .channel_axis = 1,
              .trainable = QC_INPUT_BIT(0) | QC_INPUT_BIT(1), .quant = QC_QUANT_WEIGHT,
              .cell = QC_CELL_FC},
};
