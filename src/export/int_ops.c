/*
 * int_ops.c - the int export's other ops: BatchNorm, Clip/ReLU and Add edit
 * PEND records; Quantize/DequantizeLinear start and end integer tensors;
 * Concat, shape ops and channel Slice/Gather carry U8 or PEND records through
 * (levels with any zero point); int_pool.c does the pooling.
 */
#include <config.h>

#include "int_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "ops/op.h"

/* ---- the other ops ------------------------------------------------------------------- */

/* Input i of n when it is a constant: an initializer, or a value the plan folded
 * (Constant nodes, shape arithmetic). */
const struct qc_tensor *qc_int_const_input(struct ix *x, const struct qc_node *n, int i)
{
    int v;
    if (i >= n->n_in || n->in[i] < 0)
        return NULL;
    v = n->in[i];
    if (x->g->values[v].init)
        return x->g->values[v].init;
    return qc_plan_value_is_const(x->plan, v) ? qc_plan_value(x->plan, v) : NULL;
}

enum qc_status qc_int_do_batchnorm(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *gm = qc_int_const_input(x, n, 1), *bt = qc_int_const_input(x, n, 2),
                           *mu = qc_int_const_input(x, n, 3), *var = qc_int_const_input(x, n, 4);
    struct ival *p, r;
    float eps;
    enum qc_status st;

    if ((st = qc_int_need_pend(x, node, n->in[0], &p)) != QC_OK ||
        (st = qc_int_no_clip(x, node, p, n->in[0])) != QC_OK ||
        (st = qc_attr_float(&n->attrs, qc_int_label(x, node), "epsilon", 1e-5f, &eps)) != QC_OK)
        return st;
    if (!gm || !bt || !mu || !var || qc_tensor_nelem(gm) != p->c) {
        qc_log_error("%s: node '%s': BatchNormalization needs constant parameters of %lld "
                     "channels",
                     x->g->path, qc_int_label(x, node), (long long)p->c);
        return QC_ERR_UNSUPPORTED;
    }
    if ((st = qc_int_pend_copy(p, &r)) != QC_OK)
        return st;
    /* y = f·(x − μ) + β, f = γ / sqrt(σ² + ε): every term's scale times f, and
     * b ← f·(b − μ) + β (a constant channel, f = 0, keeps its value β) */
    for (int64_t c = 0; c < r.c; c++) {
        double f = qc_tensor_get_f64(gm, c) / sqrt(qc_tensor_get_f64(var, c) + (double)eps);
        for (int i = 0; i < r.nt; i++)
            r.t[i].a[c] *= f;
        r.b[c] = f * (r.b[c] - qc_tensor_get_f64(mu, c)) + qc_tensor_get_f64(bt, c);
    }
    qc_int_move(&x->iv[n->out[0]], &r);
    return QC_OK;
}

/* Relu / Clip in real units: recorded on the PEND record. */
enum qc_status qc_int_do_clip(struct ix *x, int node, double lo, double hi)
{
    const struct qc_node *n = &x->g->nodes[node];
    struct ival *p, r;
    enum qc_status st;
    if (x->iv[n->in[0]].kind == K_U8 && x->iv[n->in[0]].zp == 0 && lo <= 0.0 &&
        hi >= x->iv[n->in[0]].s * x->iv[n->in[0]].hi) {
        /* a no-op on these levels: share the uint8 tensor */
        struct ival *s = &x->iv[n->in[0]], *d = &x->iv[n->out[0]];
        qc_int_ival_clear(d);
        d->kind = K_U8;
        d->v = s->v;
        d->s = s->s;
        d->hi = s->hi;
        return QC_OK;
    }
    if ((st = qc_int_need_pend(x, node, n->in[0], &p)) != QC_OK ||
        (st = qc_int_pend_copy(p, &r)) != QC_OK)
        return st;
    r.lo = fmax(r.lo, lo);
    r.hi_r = fmin(r.hi_r, hi);
    qc_int_move(&x->iv[n->out[0]], &r);
    return QC_OK;
}

enum qc_status qc_int_clip_bounds(struct ix *x, int node, double *lo, double *hi)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *tl = qc_int_const_input(x, n, 1), *th = qc_int_const_input(x, n, 2);
    *lo = -INFINITY;
    *hi = INFINITY;
    if ((n->n_in > 1 && n->in[1] >= 0 && !tl) || (n->n_in > 2 && n->in[2] >= 0 && !th)) {
        qc_log_error("%s: node '%s': Clip bounds must be constants", x->g->path,
                     qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    if (tl)
        *lo = qc_tensor_get_f64(tl, 0);
    if (th)
        *hi = qc_tensor_get_f64(th, 0);
    if (x->g->opset < 11) {
        float f;
        if (qc_attr_float(&n->attrs, qc_int_label(x, node), "min", -INFINITY, &f) == QC_OK)
            *lo = f;
        if (qc_attr_float(&n->attrs, qc_int_label(x, node), "max", INFINITY, &f) == QC_OK)
            *hi = f;
    }
    return QC_OK;
}

enum qc_status qc_int_do_add(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    struct ival r, *p = NULL;
    int first = -1;
    enum qc_status st;

    memset(&r, 0, sizeof(r));
    for (int i = 0; i < n->n_in && first < 0; i++)
        if (x->iv[n->in[i]].kind == K_U8 || x->iv[n->in[i]].kind == K_PEND)
            first = i;
    if ((st = qc_int_need_pend(x, node, n->in[first], &p)) != QC_OK ||
        (st = qc_int_no_clip(x, node, p, n->in[first])) != QC_OK ||
        (st = qc_int_pend_copy(p, &r)) != QC_OK)
        return st;
    for (int i = 0; i < n->n_in; i++) {
        const struct qc_tensor *k;
        if (i == first)
            continue;
        k = x->g->values[n->in[i]].init;
        if (k && k->dtype == QC_DTYPE_F32 && (qc_tensor_nelem(k) == 1 ||
                                             qc_tensor_nelem(k) == r.c)) {
            for (int64_t c = 0; c < r.c; c++)
                r.b[c] += qc_tensor_get_f64(k, qc_tensor_nelem(k) == 1 ? 0 : c);
            continue;
        }
        if ((st = qc_int_need_pend(x, node, n->in[i], &p)) != QC_OK ||
            (st = qc_int_no_clip(x, node, p, n->in[i])) != QC_OK)
            goto fail;
        if (p->c != r.c) {
            qc_log_error("%s: node '%s': the int export adds tensors of equal channel counts",
                         x->g->path, qc_int_label(x, node));
            st = QC_ERR_UNSUPPORTED;
            goto fail;
        }
        for (int64_t c = 0; c < r.c; c++)
            r.b[c] += p->b[c];
        for (int t = 0; t < p->nt; t++) {
            double *a = qc_int_dvec(r.c, 0.0);
            if (!a) {
                st = QC_ERR_NOMEM;
                goto fail;
            }
            memcpy(a, p->t[t].a, (size_t)r.c * sizeof(double));
            if ((st = qc_int_add_term(x, node, &r, p->t[t].v, p->t[t].dt, p->t[t].bcast,
                                      p->t[t].bound, a)) != QC_OK)
                goto fail;
        }
    }
    qc_int_move(&x->iv[n->out[0]], &r);
    return QC_OK;
fail:
    qc_int_ival_clear(&r);
    return st;
}

/* QuantizeLinear (uint8 with any zero point z, or int8 with zero point 0) on an integer
 * record: the requantization, absorbing a following Clip on the levels.  uint8 levels
 * keep their zero point (an asymmetric activation quantizer, QAct.ZeroPoint: real =
 * s·(stored − z)); int8 levels (a signed activation quantizer, QAct.Signed=1) are
 * stored as uint8 q + 128 with zero point 128.  ConvInteger/MatMulInteger take the zero
 * point as their x_zero_point (the exact u8×u8 path of ONNX Runtime, padding = the zero
 * point), the requantization adds it. */
enum qc_status qc_int_do_quantize(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *sc = qc_int_const_input(x, n, 1), *zp = qc_int_const_input(x, n, 2);
    int v = n->in[0], out = n->out[0], qlo = 0, qhi = 255, u8, result = out, zp_out;
    struct ival *r = &x->iv[v];
    double s;
    enum qc_status st;

    if (!sc || qc_tensor_nelem(sc) != 1 ||
        (zp &&
         ((zp->dtype != QC_DTYPE_U8 && zp->dtype != QC_DTYPE_I8) || qc_tensor_nelem(zp) != 1 ||
          (zp->dtype == QC_DTYPE_I8 && qc_tensor_get_i64(zp, 0) != 0))) ||
        (!zp && n->n_in > 2 && n->in[2] >= 0)) {
        qc_log_error("%s: node '%s': the int export handles per-tensor uint8 QuantizeLinear "
                     "(any zero point) or int8 with zero point 0",
                     x->g->path, qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    if (!zp) {
        qc_log_error("%s: node '%s': QuantizeLinear without a uint8 zero point", x->g->path,
                     qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    s = qc_tensor_f32(sc)[0];
    zp_out = zp->dtype == QC_DTYPE_I8 ? 128 : (int)qc_tensor_get_i64(zp, 0);
    /* a Clip(−qn, qp) on the levels right after: part of the same requantization */
    if (qc_graph_value_uses(x->g, out) == 1) {
        for (int i = node + 1; i < x->n_node; i++) {
            const struct qc_node *c = &x->g->nodes[i];
            const struct qc_tensor *lo, *hi;
            if (c->n_in < 1 || c->in[0] != out)
                continue;
            lo = qc_int_const_input(x, c, 1);
            hi = qc_int_const_input(x, c, 2);
            if (c->kind == QC_OP_CLIP && lo && hi && lo->dtype == zp->dtype) {
                /* uint8 bounds are stored levels already; int8 ones move by 128 */
                int off = zp->dtype == QC_DTYPE_I8 ? 128 : 0;
                qlo = (int)qc_tensor_get_i64(lo, 0) + off;
                qhi = (int)qc_tensor_get_i64(hi, 0) + off;
                x->drop[i] = true;
                result = c->out[0];
            }
            break;
        }
    }
    if (r->kind == K_NONE && qc_int_input_f32(x, v)) {
        /* the input quantizer of the graph (QIn on the first layer), on the float32
         * input or the layout ops and Casts before it: its trained scale and zero point,
         * kept; int8 levels (signed) become a uint8 QuantizeLinear with zero point 128,
         * sat(round(x/s) + 128, 0, 255) = int8 q + 128 */
        int in[3] = { v, n->in[1], n->in[2] };
        if (zp_out != 0 && (st = qc_int_scalar_const(x, qc_int_vname(x, v), "_zero_point",
                                                     QC_DTYPE_U8, zp_out, &in[2])) != QC_OK)
            return st;
        if ((st = qc_int_emit(x, "QuantizeLinear", qc_int_vname(x, v), in, 3, QC_DTYPE_U8, -1, &u8,
                              NULL)) != QC_OK)
            return st;
        if (qlo != 0 || qhi != 255) {
            int cn[3] = { u8, -1, -1 };
            if ((st = qc_int_scalar_const(x, qc_int_vname(x, v), "_lo", QC_DTYPE_U8, qlo,
                                          &cn[1])) != QC_OK ||
                (st = qc_int_scalar_const(x, qc_int_vname(x, v), "_hi", QC_DTYPE_U8, qhi,
                                          &cn[2])) != QC_OK ||
                (st = qc_int_emit(x, "Clip", qc_int_vname(x, v), cn, 3, QC_DTYPE_U8, -1, &u8,
                                  NULL)) != QC_OK)
                return st;
        }
    } else {
        struct ival *p;
        if ((st = qc_int_need_pend(x, node, v, &p)) != QC_OK ||
            (st = qc_int_requant(x, qc_int_vname(x, out), p, s, zp_out, qlo, qhi, &u8)) != QC_OK)
            return st;
    }
    /* the levels: Q's output (and the absorbed Clip's) */
    qc_int_ival_clear(&x->iv[result]);
    x->iv[result].kind = K_U8;
    x->iv[result].v = u8;
    x->iv[result].s = s;
    x->iv[result].hi = qhi;
    x->iv[result].zp = zp_out;
    return QC_OK;
}

/* DequantizeLinear of levels: the same uint8 tensor, now read as real values. */
enum qc_status qc_int_do_dequantize(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *sc = qc_int_const_input(x, n, 1);
    struct ival *s = &x->iv[n->in[0]], *d = &x->iv[n->out[0]];
    if (x->g->values[n->in[0]].init)
        return qc_int_dq_weight(x, node);
    if (s->kind != K_U8 || !sc || qc_tensor_nelem(sc) != 1) {
        qc_log_error("%s: node '%s': DequantizeLinear of something other than quantized levels",
                     x->g->path, qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    qc_int_ival_clear(d);
    d->kind = K_U8;
    d->v = s->v;
    d->s = qc_tensor_f32(sc)[0];
    d->hi = s->hi;
    d->zp = s->zp;
    return QC_OK;
}

/* An op that works on the levels as they are (MaxPool, layout ops on uint8): a copy
 * of the node reading the uint8 tensor. */
enum qc_status qc_int_copy_on_u8(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    int in[8], out, nn, n_in = n->n_in;
    struct ival *s = &x->iv[n->in[0]], gin;
    struct ival rec;
    enum qc_status st;
    if (s->kind == K_NONE) {
        /* a reshape of the float graph input: reshape its quantized levels */
        memset(&gin, 0, sizeof(gin));
        gin.kind = K_U8;
        if ((st = qc_int_layer_input(x, node, n->in[0], &gin.v, &gin.s, &gin.hi)) != QC_OK)
            return st;
        s = &gin;
        n = &x->g->nodes[node]; /* the input quantizer's node may have moved the array */
    }
    if (n->n_out != 1 || n_in > 8) {
        qc_log_error("%s: node '%s': only the first output of this op has an integer form",
                     x->g->path, qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    in[0] = s->v;
    for (int i = 1; i < n_in; i++)
        in[i] = n->in[i];
    if ((st = qc_int_emit(x, n->op_type, qc_int_label(x, node), in, n_in, QC_DTYPE_U8, -1, &out,
                          &nn)) != QC_OK ||
        (st = qc_int_copy_attrs(x, nn, node)) != QC_OK)
        return st;
    memset(&rec, 0, sizeof(rec));
    rec.kind = K_U8;
    rec.v = out;
    rec.s = s->s;
    rec.hi = s->hi;
    rec.zp = s->zp;
    qc_int_move(&x->iv[x->g->nodes[node].out[0]], &rec); /* nodes moved: emitted one */
    return QC_OK;
}

/* The channels (axis 1) that Slice / Gather node n keeps, in order: idx[0..*nc) of the
 * input's c; *sel is whether it selects along axis 1 at all, *other whether it acts on
 * another axis too.  False (with a message) for a form without an integer version here. */
static bool selected_channels(struct ix *x, int node, const struct qc_shape *is,
                              const struct qc_shape *os, int64_t *idx, int64_t *nc, bool *sel,
                              bool *other)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *t1 = qc_int_const_input(x, n, 1);
    int64_t c = is->dims[1];
    *sel = *other = false;
    *nc = os->dims[1];
    for (int64_t k = 0; k < c; k++)
        idx[k] = k;
    if (!t1 || os->ndim != is->ndim)
        return false;
    if (n->kind == QC_OP_GATHER) {
        int64_t axis = 0;
        if (qc_attr_int(&n->attrs, qc_int_label(x, node), "axis", 0, &axis) != QC_OK)
            return false;
        axis = axis < 0 ? axis + is->ndim : axis;
        if (axis != 1) {
            *other = true;
            return true;
        }
        if (qc_tensor_nelem(t1) != *nc)
            return false;
        *sel = true;
        for (int64_t k = 0; k < *nc; k++) {
            int64_t j = qc_tensor_get_i64(t1, k);
            idx[k] = j < 0 ? j + c : j;
            if (idx[k] < 0 || idx[k] >= c)
                return false;
        }
        return true;
    }
    {
        /* Slice: starts, ends, axes, steps (constants) */
        const struct qc_tensor *ax = qc_int_const_input(x, n, 3), *sp = qc_int_const_input(x, n, 4);
        if ((n->n_in > 3 && n->in[3] >= 0 && !ax) || (n->n_in > 4 && n->in[4] >= 0 && !sp))
            return false;
        for (int64_t i = 0; i < qc_tensor_nelem(t1); i++) {
            int64_t a = ax ? qc_tensor_get_i64(ax, i) : i, st = qc_tensor_get_i64(t1, i),
                    step = sp ? qc_tensor_get_i64(sp, i) : 1;
            a = a < 0 ? a + is->ndim : a;
            if (a != 1) {
                *other = true;
                continue;
            }
            if (step == 0)
                return false;
            st = st < 0 ? st + c : st;
            st = st < 0 ? 0 : st;
            if (st > (step > 0 ? c : c - 1))
                st = step > 0 ? c : c - 1;
            *sel = true;
            for (int64_t k = 0; k < *nc; k++) {
                idx[k] = st + k * step;
                if (idx[k] < 0 || idx[k] >= c)
                    return false;
            }
        }
        return true;
    }
}

/* Slice / Gather of a PEND record (integer terms with per-channel scales and bias):
 * each term that holds the channels goes through a copy of the node (the same
 * constant operands), the scales a[c] and the bias b[c] are selected alike; a term
 * broadcast over the channels (channel dimension 1) stays as it is when the node
 * selects along the channels only. */
enum qc_status qc_int_select_pend(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_shape *is = qc_int_shape_of(x, n->in[0]), *os = qc_int_shape_of(x, n->out[0]);
    int out = n->out[0], n_in = n->n_in, ins[8], nn;
    int64_t *idx = NULL, nc = 0;
    bool sel, other;
    struct ival *p, r;
    char base[512];
    enum qc_status st;

    snprintf(base, sizeof(base), "%s", qc_int_label(x, node));
    if ((st = qc_int_need_pend(x, node, n->in[0], &p)) != QC_OK)
        return st;
    if (is && is->ndim >= 2)
        idx = qc_calloc((size_t)(is->dims[1] > 0 ? is->dims[1] : 1), sizeof(int64_t));
    if (is && is->ndim >= 2 && !idx)
        return QC_ERR_NOMEM;
    if (!is || !os || is->ndim < 2 || n_in > 8 || n->n_out != 1 || p->c != is->dims[1] ||
        !selected_channels(x, node, is, os, idx, &nc, &sel, &other)) {
        qc_free(idx);
        qc_log_error("%s: node '%s': the int export selects integer terms with per-channel "
                     "scales by constant Slice starts/ends/axes/steps or 1-D Gather indices "
                     "keeping the rank; put QAct on the activation before this %s",
                     x->g->path, base, n->op_type);
        return QC_ERR_UNSUPPORTED;
    }
    if ((st = qc_int_pend_copy(p, &r)) != QC_OK) {
        qc_free(idx);
        return st;
    }
    for (int i = 0; i < n_in; i++)
        ins[i] = x->g->nodes[node].in[i];
    for (int i = 0; i < r.nt && st == QC_OK; i++) {
        if (r.t[i].bcast && sel) {
            if (other) {
                qc_log_error("%s: node '%s': a %s along the channels and another axis of a "
                             "broadcast integer term",
                             x->g->path, base, x->g->nodes[node].op_type);
                st = QC_ERR_UNSUPPORTED;
            }
            continue;
        }
        ins[0] = r.t[i].v;
        st = qc_int_emit(x, x->g->nodes[node].op_type, base, ins, n_in, r.t[i].dt, -1, &r.t[i].v,
                         &nn);
        if (st == QC_OK)
            st = qc_int_copy_attrs(x, nn, node);
    }
    if (st == QC_OK && sel) {
        double *b = qc_int_dvec(nc, 0.0);
        st = b ? QC_OK : QC_ERR_NOMEM;
        for (int64_t k = 0; b && k < nc; k++)
            b[k] = r.b[idx[k]];
        for (int i = 0; i < r.nt && st == QC_OK; i++) {
            double *a = qc_int_dvec(nc, 0.0);
            if (!a) {
                st = QC_ERR_NOMEM;
                break;
            }
            for (int64_t k = 0; k < nc; k++)
                a[k] = r.t[i].a[idx[k]];
            qc_free(r.t[i].a);
            r.t[i].a = a;
        }
        if (b) {
            qc_free(r.b);
            r.b = b;
        }
        r.c = nc;
    }
    qc_free(idx);
    if (st != QC_OK) {
        qc_int_ival_clear(&r);
        return st;
    }
    qc_int_move(&x->iv[out], &r);
    return QC_OK;
}

/* Shape of an integer record: the Shape of the tensor that holds its values (the uint8
 * levels, or a PEND record's first term with the channel dimension), producing the
 * original output value for the float shape arithmetic that reads it. */
enum qc_status qc_int_shape_op(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct ival *r = &x->iv[n->in[0]];
    int in[1] = { -1 }, sn;
    enum qc_status st;
    if (r->kind == K_U8)
        in[0] = r->v;
    for (int i = 0; r->kind == K_PEND && i < r->nt && in[0] < 0; i++)
        if (!r->t[i].bcast)
            in[0] = r->t[i].v;
    if (in[0] < 0) {
        qc_log_error("%s: node '%s': the int export has no tensor of this value's shape",
                     x->g->path, qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    if ((st = qc_int_emit(x, "Shape", qc_int_label(x, node), in, 1, QC_DTYPE_I64, n->out[0], NULL,
                          &sn)) != QC_OK)
        return st;
    return qc_int_copy_attrs(x, sn, node);
}

/* Level q of a record of scale si on the grid of scale s (q·si/s, rounded half up as
 * qc_int_requant rounds); q itself when si = s. */
static int on_grid(int q, double si, double s)
{
    return si == s ? q : (int)floor((double)q * si / s + 0.5);
}

/* Concat of levels on one grid: one scale s, one zero point zp, stored levels [0, hi]
 * (real = s·(stored − zp)).  s is the largest input scale; zp is the smallest zero
 * point that keeps every input's lowest real value s_i·(0 − zp_i) at stored >= 0
 * on that grid, hi the stored top of the union of the inputs' ranges.  When that
 * union spans more than 256 levels of s (unsigned 8-bit levels next to signed ones,
 * say), s grows to (max − min of the real ranges) / 254, which spans at most 255.  An
 * input of scale s and zero point zp passes unchanged; any other is requantized to
 * rne⁺(s_i·(q − zp_i) / s) + zp (round half up) by the fixed-point multiplier and
 * shift of a layer output (qc_int_requant), within [0, hi].  This rounds where the
 * fake-quant graph does not (it concatenates the real values s_i·(q − zp_i)): an
 * integer tensor has one scale, so the levels of the other scales must be brought
 * onto its grid, half a level of s at most, which a following quantizer turns into
 * one level at most. */
enum qc_status qc_int_do_concat(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    int in[16], out, cn, lo = 0, hi = 0, zp, n_in = n->n_in;
    double s = 0.0, rlo = 0.0, rhi = 0.0;
    struct ival rec;
    char base[512];
    enum qc_status st;
    if (n_in > 16) {
        qc_log_error("%s: node '%s': the int export concatenates at most 16 tensors", x->g->path,
                     qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    for (int i = 0; i < n_in; i++) {
        const struct ival *r = &x->iv[n->in[i]];
        if (r->kind != K_U8) {
            qc_log_error("%s: node '%s': the int export concatenates quantized levels; input "
                         "'%s' is not (quantize it with QAct)",
                         x->g->path, qc_int_label(x, node), qc_int_vname(x, n->in[i]));
            return QC_ERR_UNSUPPORTED;
        }
        s = fmax(s, r->s);
        rlo = fmin(rlo, -(double)r->zp * r->s);
        rhi = fmax(rhi, (double)(r->hi - r->zp) * r->s);
    }
    for (int pass = 0; pass < 2; pass++) {
        lo = hi = 0;
        for (int i = 0; i < n_in; i++) {
            const struct ival *r = &x->iv[n->in[i]];
            int l = on_grid(-r->zp, r->s, s), h = on_grid(r->hi - r->zp, r->s, s);
            lo = l < lo ? l : lo;
            hi = h > hi ? h : hi;
        }
        if (hi - lo <= 255)
            break;
        s = (rhi - rlo) / 254.0; /* every input's scale now below s */
    }
    zp = -lo;
    hi -= lo;
    for (int i = 0; i < n_in; i++) {
        int v = x->g->nodes[node].in[i]; /* emitting moves the node array */
        const struct ival *r = &x->iv[v];
        struct ival tmp;
        if (r->s == s && r->zp == zp) {
            in[i] = r->v;
            continue;
        }
        memset(&tmp, 0, sizeof(tmp));
        tmp.kind = K_U8;
        tmp.v = r->v;
        tmp.s = r->s;
        tmp.hi = r->hi;
        tmp.zp = r->zp;
        snprintf(base, sizeof(base), "%s", qc_int_vname(x, v));
        if ((st = qc_int_u8_to_pend(x, v, &tmp)) == QC_OK)
            st = qc_int_requant(x, base, &tmp, s, zp, 0, hi, &in[i]);
        qc_int_ival_clear(&tmp);
        if (st != QC_OK)
            return st;
    }
    snprintf(base, sizeof(base), "%s", qc_int_label(x, node));
    if ((st = qc_int_emit(x, "Concat", base, in, n_in, QC_DTYPE_U8, -1, &out, &cn)) != QC_OK ||
        (st = qc_int_copy_attrs(x, cn, node)) != QC_OK)
        return st;
    memset(&rec, 0, sizeof(rec));
    rec.kind = K_U8;
    rec.v = out;
    rec.s = s;
    rec.hi = hi;
    rec.zp = zp;
    qc_int_move(&x->iv[x->g->nodes[node].out[0]], &rec);
    return QC_OK;
}

/* Whether shape op n (on a rank-r input, giving rank ro) leaves the batch axis 0
 * and the channel axis 1 where they are, so that element (b, c, ...) of the output
 * is an element of batch b and channel c of the input (given the same dims 0 and 1
 * in the plan): Squeeze / Unsqueeze of axes >= 2, Flatten at axis 1, a Reshape
 * whose constant shape has a batch entry 0 or -1 (a literal batch with a -1
 * elsewhere would fold the batch of a larger run into the trailing axes) or whose
 * shape is computed from the input's (folded by the plan at batch 1). */
static bool keeps_channels(struct ix *x, int node, int r, int ro)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *t = qc_int_const_input(x, n, 1);
    int64_t axis = 1;
    bool minus = false;
    switch (n->kind) {
    case QC_OP_SQUEEZE:
    case QC_OP_UNSQUEEZE:
        if (!t)
            return false; /* Squeeze of every size-1 axis: the batch too at batch 1 */
        for (int64_t i = 0; i < qc_tensor_nelem(t); i++) {
            int64_t a = qc_tensor_get_i64(t, i);
            a = a < 0 ? a + (n->kind == QC_OP_SQUEEZE ? r : ro) : a;
            if (a < 2)
                return false;
        }
        return true;
    case QC_OP_FLATTEN:
        if (qc_attr_int(&n->attrs, qc_int_label(x, node), "axis", 1, &axis) != QC_OK)
            return false;
        return axis == 1 || axis == 1 - r;
    case QC_OP_RESHAPE: {
        int sv = n->in[1], prod = sv >= 0 ? x->g->values[sv].producer : -1;
        if (!t || qc_tensor_nelem(t) < 2)
            return false;
        if (!x->g->values[sv].init && (prod < 0 || x->g->nodes[prod].kind != QC_OP_CONSTANT))
            return true; /* shape arithmetic (x.view(x.size(0), -1)): its batch is N */
        for (int64_t i = 1; i < qc_tensor_nelem(t); i++)
            minus = minus || qc_tensor_get_i64(t, i) == -1;
        return qc_tensor_get_i64(t, 0) <= 0 || !minus;
    }
    default:
        return false;
    }
}

/* Flatten/Reshape/Squeeze/Unsqueeze of a PEND record that keeps the batch axis 0
 * and the channel axis 1 ([N, C, ...] to [N, C, ...']): every element stays in its
 * channel, so every term is reshaped alike (a broadcast term keeps its channel
 * dimension 1) and the per-channel scales and bias carry over unchanged. */
enum qc_status qc_int_flatten_pend(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_shape *is = qc_int_shape_of(x, n->in[0]), *os = qc_int_shape_of(x, n->out[0]);
    int out = n->out[0]; /* n is stale after the first emit */
    struct ival *p, r;
    char base[512];
    enum qc_status st;
    bool ok = is && os && os->ndim >= 2 && is->ndim >= 2 && os->dims[0] == is->dims[0] &&
              os->dims[1] == is->dims[1] && keeps_channels(x, node, is->ndim, os->ndim);
    if (!ok) {
        qc_log_error("%s: node '%s': reshaping integer terms with per-channel scales is only "
                     "supported when the batch axis 0 and the channel axis 1 stay ([N, C, ...] "
                     "to [N, C, ...]); this one mixes channels",
                     x->g->path, qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    snprintf(base, sizeof(base), "%s", qc_int_label(x, node));
    if ((st = qc_int_need_pend(x, node, n->in[0], &p)) != QC_OK ||
        (st = qc_int_pend_copy(p, &r)) != QC_OK)
        return st;
    for (int i = 0; i < r.nt && st == QC_OK; i++) {
        /* Reshape to [0 (the batch, as it comes), C or 1, the output's trailing dims] */
        int64_t dims[QC_MAX_DIMS];
        int in[2];
        dims[0] = 0;
        dims[1] = r.t[i].bcast ? 1 : os->dims[1];
        for (int d = 2; d < os->ndim; d++)
            dims[d] = os->dims[d];
        in[0] = r.t[i].v;
        if ((st = qc_int_axes_const(x, base, dims, os->ndim, &in[1])) == QC_OK)
            st = qc_int_emit(x, "Reshape", base, in, 2, r.t[i].dt, -1, &r.t[i].v, NULL);
    }
    if (st != QC_OK) {
        qc_int_ival_clear(&r);
        return st;
    }
    r.rank = os->ndim;
    qc_int_move(&x->iv[out], &r);
    return QC_OK;
}
