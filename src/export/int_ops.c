/*
 * int_ops.c - the int export's other ops: BatchNorm, Clip/ReLU and Add edit
 * PEND records; Quantize/DequantizeLinear start and end integer tensors;
 * Concat, shape ops and pooling carry U8 or PEND records through.
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

/* Concat of levels with one scale: s, the largest scale among the inputs. An input of
 * scale s_i < s is requantized to levels rne⁺(q·s_i / s) (round half up) by the
 * fixed-point multiplier and shift of a layer output (qc_int_requant), which keeps
 * them within [0, rne⁺(hi_i·s_i / s)] <= [0, hi_i]; an input of scale s passes
 * unchanged. This rounds where the fake-quant graph does not (it concatenates the
 * real values q·s_i): an integer tensor has one scale, so the levels of the other
 * scales must be brought onto its grid, half a level of s at most, which a
 * following quantizer turns into one level at most. */
enum qc_status qc_int_do_concat(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    int in[16], out, cn, hi = 0, n_in = n->n_in;
    double s = 0.0;
    struct ival rec;
    char base[512];
    enum qc_status st;
    if (n_in > 16)
        return QC_ERR_UNSUPPORTED;
    for (int i = 0; i < n_in; i++) {
        const struct ival *r = &x->iv[n->in[i]];
        if (r->kind != K_U8 || r->zp != 0) {
            qc_log_error("%s: node '%s': the int export concatenates unsigned quantized levels; "
                         "input '%s' is not",
                         x->g->path, qc_int_label(x, node), qc_int_vname(x, n->in[i]));
            return QC_ERR_UNSUPPORTED;
        }
        s = fmax(s, r->s);
    }
    for (int i = 0; i < n_in; i++) {
        int v = x->g->nodes[node].in[i]; /* emitting moves the node array */
        const struct ival *r = &x->iv[v];
        struct ival tmp;
        int qhi;
        if (r->s == s) {
            in[i] = r->v;
            hi = r->hi > hi ? r->hi : hi;
            continue;
        }
        memset(&tmp, 0, sizeof(tmp));
        tmp.kind = K_U8;
        tmp.v = r->v;
        tmp.s = r->s;
        tmp.hi = r->hi;
        qhi = (int)floor((double)r->hi * r->s / s + 0.5);
        snprintf(base, sizeof(base), "%s", qc_int_vname(x, v));
        if ((st = qc_int_u8_to_pend(x, v, &tmp)) == QC_OK)
            st = qc_int_requant(x, base, &tmp, s, 0, 0, qhi, &in[i]);
        qc_int_ival_clear(&tmp);
        if (st != QC_OK)
            return st;
        hi = qhi > hi ? qhi : hi;
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

/* GlobalAveragePool / AveragePool: integer window sums, the 1/window in the scale. */
enum qc_status qc_int_do_avgpool(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_shape *is = qc_int_shape_of(x, n->in[0]);
    bool global = n->kind == QC_OP_GLOBAL_AVGPOOL;
    int out = n->out[0]; /* n is stale after the first emit */
    struct ival *p, r;
    int64_t win = 1;
    enum qc_status st;

    if (!is || is->ndim < 3)
        return QC_ERR_INTERNAL;
    if (global) {
        for (int i = 2; i < is->ndim; i++)
            win *= is->dims[i];
    }
    if (!global) {
        /* AveragePool on levels: a depthwise ConvInteger with a ones kernel */
        int64_t ks[QC_MAX_DIMS], pads[2 * QC_MAX_DIMS], cip = 0, ceil = 0;
        int nk = 0, np = 0, in[2], ov, cn, acc;
        const char *ap = "NOTSET";
        struct ival *s = &x->iv[n->in[0]];
        struct qc_shape ws;
        struct qc_tensor *ones;
        char name[512];
        bool padded = false;
        double *a;
        if ((st = qc_attr_ints(&n->attrs, qc_int_label(x, node), "kernel_shape", ks, QC_MAX_DIMS,
                               &nk)) != QC_OK ||
            (st = qc_attr_ints(&n->attrs, qc_int_label(x, node), "pads", pads, 2 * QC_MAX_DIMS,
                               &np)) != QC_OK ||
            (st = qc_attr_int(&n->attrs, qc_int_label(x, node), "count_include_pad", 0, &cip)) !=
                QC_OK ||
            (st = qc_attr_int(&n->attrs, qc_int_label(x, node), "ceil_mode", 0, &ceil)) != QC_OK ||
            (st = qc_attr_string(&n->attrs, qc_int_label(x, node), "auto_pad", "NOTSET", &ap)) !=
                QC_OK)
            return st;
        for (int i = 0; i < np; i++)
            padded = padded || pads[i] != 0;
        if (s->kind != K_U8 || s->zp != 0 || ceil || strcmp(ap, "NOTSET") != 0 ||
            (padded && !cip)) {
            qc_log_error("%s: node '%s': the int export handles AveragePool on unsigned quantized "
                         "levels without ceil_mode, auto_pad, or padding excluded from the count",
                         x->g->path, qc_int_label(x, node));
            return QC_ERR_UNSUPPORTED;
        }
        ws.ndim = nk + 2;
        ws.dims[0] = is->dims[1];
        ws.dims[1] = 1;
        for (int i = 0; i < nk; i++) {
            ws.dims[2 + i] = ks[i];
            win *= ks[i];
        }
        if ((st = qc_tensor_new(QC_DTYPE_U8, &ws, &ones)) != QC_OK)
            return st;
        memset(ones->data, 1, (size_t)qc_tensor_nelem(ones));
        qc_graph_unique_name(x->g, qc_int_label(x, node), "_ones", name, sizeof(name));
        if ((st = qc_graph_add_initializer(x->g, name, ones, &ov)) != QC_OK)
            return st;
        in[0] = s->v;
        in[1] = ov;
        if ((st = qc_int_emit(x, "ConvInteger", qc_int_label(x, node), in, 2, QC_DTYPE_I32, -1,
                              &acc, &cn)) != QC_OK ||
            (st = qc_int_attr_int(x, cn, "group", is->dims[1])) != QC_OK)
            return st;
        for (int i = 0; i < x->g->nodes[node].attrs.n; i++) {
            const char *an = x->g->nodes[node].attrs.v[i].name;
            if (strcmp(an, "strides") == 0 || strcmp(an, "pads") == 0 ||
                strcmp(an, "kernel_shape") == 0 || strcmp(an, "dilations") == 0) {
                /* copy just this attribute */
                struct qc_attrs keep = x->g->nodes[node].attrs, one = { 1, &keep.v[i] };
                x->g->nodes[node].attrs = one;
                st = qc_int_copy_attrs(x, cn, node);
                x->g->nodes[node].attrs = keep;
                if (st != QC_OK)
                    return st;
            }
        }
        memset(&r, 0, sizeof(r));
        if ((st = qc_int_layer_record(x, node, 99, is->dims[1], is->ndim, &r)) != QC_OK)
            return st;
        a = qc_int_dvec(r.c, s->s / (double)win);
        if (!a || (st = qc_int_add_term(x, node, &r, acc, QC_DTYPE_I32, false, (double)win * s->hi,
                                        a)) != QC_OK) {
            qc_int_ival_clear(&r);
            return a ? st : QC_ERR_NOMEM;
        }
        qc_int_move(&x->iv[out], &r);
        return QC_OK;
    }
    if ((st = qc_int_need_pend(x, node, n->in[0], &p)) != QC_OK ||
        (st = qc_int_no_clip(x, node, p, n->in[0])) != QC_OK ||
        (st = qc_int_pend_copy(p, &r)) != QC_OK)
        return st;
    for (int i = 0; i < r.nt; i++) {
        struct term *t = &r.t[i];
        int64_t axes[QC_MAX_DIMS];
        int in[2], rn;
        enum qc_dtype dt = t->bound * (double)win < TWO31 / 2 ? QC_DTYPE_I32 : QC_DTYPE_I64;
        for (int d = 2; d < is->ndim; d++)
            axes[d - 2] = d;
        if (t->dt != dt &&
            (st = qc_int_cast(x, qc_int_label(x, node), t->v, dt, -1, &t->v)) != QC_OK)
            goto fail;
        t->dt = dt;
        if ((st = qc_int_axes_const(x, qc_int_label(x, node), axes, is->ndim - 2, &in[1])) != QC_OK)
            goto fail;
        in[0] = t->v;
        if ((st = qc_int_emit(x, "ReduceSum", qc_int_label(x, node), in, 2, dt, -1, &t->v, &rn)) !=
                QC_OK ||
            (st = qc_int_attr_int(x, rn, "keepdims", 1)) != QC_OK)
            goto fail;
        t->bound *= (double)win;
        for (int64_t c = 0; c < r.c; c++)
            t->a[c] /= (double)win;
    }
    qc_int_move(&x->iv[out], &r);
    return QC_OK;
fail:
    qc_int_ival_clear(&r);
    return st;
}
