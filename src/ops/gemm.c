/*
 * gemm.c - Gemm and MatMul, opsets 7..23, float32, on the backend's sgemm.
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
 * Backward (later): Gemm dA += alpha*dY*op(B)^T (transposed back when
 * transA), dB likewise, dC += beta*sum of dY over broadcast axes; MatMul
 * dA += dY*B^T, dB += A^T*dY summed over broadcast batch dims.
 */
#include <config.h>

#include "op.h"

#include <string.h>

#include "../backend/backend.h"
#include "../log.h"

struct gemm_params {
    float alpha, beta;
    bool  trans_a, trans_b;
};

static enum qc_status gemm_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct gemm_params *p;
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

/* M, N, K of a Gemm, validated (logs and returns QC_ERR_SHAPE otherwise). */
static enum qc_status gemm_dims(const struct qc_node *n, const char *label,
                                const struct qc_tensor *const *in, int64_t *m, int64_t *nn,
                                int64_t *k)
{
    const struct gemm_params *p = n->params;
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
    enum qc_status st = gemm_dims(n, label, in, &m, &nn, &k);
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
    const struct gemm_params *p = n->params;
    const struct qc_tensor *c = n->n_in > 2 ? in[2] : NULL;
    float *y = qc_tensor_f32(out[0]);
    float beta = 0.0f;
    int64_t m, nn, k;
    enum qc_status st = gemm_dims(n, ctx->label, in, &m, &nn, &k);

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
    return qc_sgemm(ctx->be, p->trans_a, p->trans_b, m, nn, k, p->alpha, qc_tensor_f32(in[0]),
                    qc_tensor_f32(in[1]), beta, y);
}

/* MatMul operands as batches of matrices, batch dims right-aligned to the
 * output's: a_bdims[i] is 1 on axes A does not have. */
struct matmul_dims {
    int     nb;                          /* output batch rank              */
    int64_t bdims[QC_MAX_DIMS];          /* output batch dims              */
    int64_t a_bdims[QC_MAX_DIMS], b_bdims[QC_MAX_DIMS];
    int64_t m, n, k;
    struct qc_shape y;
};

static enum qc_status matmul_dims(const struct qc_node *n, const char *label,
                                  const struct qc_tensor *const *in, struct matmul_dims *d)
{
    const struct qc_shape *a = &in[0]->shape, *b = &in[1]->shape;
    char sa[128], sb[128];
    int ra = a->ndim, rb = b->ndim;
    int na, nb;
    int64_t kb;
    enum qc_status st = check_f32(label, in, n->n_in);

    if (st != QC_OK)
        return st;
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

static enum qc_status matmul_infer(const struct qc_node *n, const char *label,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    struct matmul_dims d;
    enum qc_status st = matmul_dims(n, label, in, &d);
    if (st != QC_OK)
        return st;
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = d.y;
    return QC_OK;
}

static enum qc_status matmul_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                         const struct qc_tensor *const *in,
                                         struct qc_tensor *const *out)
{
    struct matmul_dims d;
    const float *a = qc_tensor_f32(in[0]), *b = qc_tensor_f32(in[1]);
    float *y = qc_tensor_f32(out[0]);
    int64_t count = 1, a_count = 1, b_count = 1;
    int64_t a_str[QC_MAX_DIMS], b_str[QC_MAX_DIMS];
    enum qc_status st = matmul_dims(n, ctx->label, in, &d);

    if (st != QC_OK)
        return st;
    for (int i = 0; i < d.nb; i++) {
        count *= d.bdims[i];
        a_count *= d.a_bdims[i];
        b_count *= d.b_bdims[i];
    }
    if (b_count == 1) {
        /* every output matrix uses the one B: stack A's batch into rows */
        return qc_sgemm(ctx->be, false, false, a_count * d.m, d.n, d.k, 1.0f, a, b, 0.0f, y);
    }
    /* matrix strides of A and B per batch axis, 0 where the axis broadcasts */
    for (int64_t i = d.nb - 1, sa = 1, sb = 1; i >= 0; i--) {
        a_str[i] = d.a_bdims[i] == 1 ? 0 : sa;
        b_str[i] = d.b_bdims[i] == 1 ? 0 : sb;
        sa *= d.a_bdims[i];
        sb *= d.b_bdims[i];
    }
    for (int64_t t = 0; t < count; t++) {
        int64_t rem = t, ai = 0, bi = 0;
        for (int i = d.nb - 1; i >= 0; i--) {
            int64_t idx = rem % d.bdims[i];
            rem /= d.bdims[i];
            ai += idx * a_str[i];
            bi += idx * b_str[i];
        }
        st = qc_sgemm(ctx->be, false, false, d.m, d.n, d.k, 1.0f, a + ai * d.m * d.k,
                      b + bi * d.k * d.n, 0.0f, y + t * d.m * d.n);
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

const struct qc_op_def qc_op_gemm = {
    .onnx_name = "Gemm",
    .n_in_min = 2, .n_in_max = 3, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER,
    .parse = gemm_parse,
    .infer = gemm_infer,
    .workspace = NULL,
    .cpu = {.forward = gemm_forward_cpu, .backward = NULL},
};

const struct qc_op_def qc_op_matmul = {
    .onnx_name = "MatMul",
    .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER,
    .parse = NULL,
    .infer = matmul_infer,
    .workspace = NULL,
    .cpu = {.forward = matmul_forward_cpu, .backward = NULL},
};
