/*
 * int_layers.c - Conv and Gemm/MatMul of the int export: ConvInteger or
 * MatMulInteger on the uint8 input and the stored levels, and the PEND record
 * of the layer output.
 */
#include <config.h>

#include "int_impl.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "ops/op.h"

/* ---- layers -------------------------------------------------------------------------- */

/* The zero-point inputs of ConvInteger / MatMulInteger: xzp (uint8: 0, or 128 for
 * signed levels) for the activations, wzp (uint8) for weights stored with an offset. */
static enum qc_status zero_points(struct ix *x, const char *base, int xzp, int wzp, int *xz,
                                  int *wz)
{
    enum qc_status st;
    if ((st = qc_int_scalar_const(x, base, "_x_zero_point", QC_DTYPE_U8, xzp, xz)) != QC_OK)
        return st;
    return qc_int_scalar_const(x, base, "_w_zero_point", QC_DTYPE_U8, wzp, wz);
}

enum qc_status qc_int_do_conv(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    int xin = n->in[0], win = n->in[1], out = n->out[0], q, hi, wv, zp, mul, add, cnode, acc, rank,
        xzp;
    int64_t group, c, kred;
    double s, jmax, *a = NULL;
    struct ival *w, r;
    char base[512];
    enum qc_status st;
    int in[4];

    snprintf(base, sizeof(base), "%s", qc_int_label(x, node));
    /* n is not read past here: the input quantizer and every node emitted below
     * may move the node array */
    if ((st = qc_attr_int(&n->attrs, base, "group", 1, &group)) != QC_OK)
        return st;
    if ((st = qc_int_layer_input(x, node, xin, &q, &s, &hi)) != QC_OK ||
        (st = qc_int_weight_of(x, node, win, &w)) != QC_OK)
        return st;
    /* signed levels: stored q + 128, x_zero_point 128, |q − 128| <= 128 */
    xzp = x->iv[xin].kind == K_U8 ? x->iv[xin].zp : 0;
    if (xzp)
        hi = qc_int_u8_absmax(&x->iv[xin]);
    if (w->dq_axis > 0) {
        qc_log_error("%s: node '%s': per-axis weight scales must be along axis 0", x->g->path,
                     base);
        return QC_ERR_UNSUPPORTED;
    }
    c = w->wshape.dims[0];
    kred = qc_shape_nelem(&w->wshape) / c;
    /* uint8 weights with a zero point: ONNX Runtime's exact u8×u8 kernel, which
     * measured 3-4x faster than its int8-weight ConvInteger (int.h) */
    if ((st = qc_int_store_weight(x, base, w, false, QC_DTYPE_I8, W_OFFSET, &wv, &zp, &mul, &add,
                                  &jmax)) != QC_OK ||
        (st = zero_points(x, base, xzp, zp, &in[2], &in[3])) != QC_OK)
        return st;
    in[0] = q;
    in[1] = wv;
    if ((st = qc_int_emit(x, "ConvInteger", base, in, 4, QC_DTYPE_I32, -1, &acc, &cnode)) !=
            QC_OK ||
        (st = qc_int_copy_attrs(x, cnode, node)) != QC_OK)
        return st;
    qc_int_channels(x, out, &rank);
    if ((st = qc_int_layer_record(x, node, 2, c, rank, &r)) != QC_OK)
        goto fail;
    a = qc_int_dvec(c, 0.0);
    if (!a) {
        st = QC_ERR_NOMEM;
        goto fail;
    }
    for (int64_t j = 0; j < c; j++)
        a[j] = s * qc_int_wscale(w, j) * mul;
    if ((st = qc_int_add_term(x, node, &r, acc, QC_DTYPE_I32, false, (double)kred * hi * jmax,
                              a)) != QC_OK)
        goto fail;
    if (add) {
        /* Σ k·x = 2·Σ j'·x + Σ x: the window sum by a ones kernel, one output
         * channel (group 1, broadcast) or one per channel (depthwise) */
        int64_t gout = group == 1 ? 1 : group;
        struct qc_shape os = w->wshape;
        struct qc_tensor *ones;
        char name[512];
        int ov, snode, sum;
        if (group != 1 && group != c) {
            qc_log_error("%s: node '%s': odd-level weights (SAT Default/FullRange) in a grouped "
                         "convolution other than depthwise; use QuantMode=Symmetric", x->g->path,
                         base);
            st = QC_ERR_UNSUPPORTED;
            goto fail;
        }
        os.dims[0] = gout;
        if ((st = qc_tensor_new(QC_DTYPE_U8, &os, &ones)) != QC_OK)
            goto fail;
        memset(ones->data, 1, (size_t)qc_tensor_nelem(ones));
        qc_graph_unique_name(x->g, base, "_ones", name, sizeof(name));
        if ((st = qc_graph_add_initializer(x->g, name, ones, &ov)) != QC_OK)
            goto fail;
        in[0] = q;
        in[1] = ov;
        /* Σ (x − x_zp): the x zero point of the layer, still in in[2] */
        if ((st = qc_int_emit(x, "ConvInteger", base, in, xzp ? 3 : 2, QC_DTYPE_I32, -1, &sum,
                              &snode)) != QC_OK ||
            (st = qc_int_copy_attrs(x, snode, node)) != QC_OK)
            goto fail;
        if ((st = qc_int_odd_combine(x, base, &r, sum, (double)kred * hi)) != QC_OK)
            goto fail;
    }
    qc_int_move(&x->iv[out], &r);
    x->stats->n_layers++;
    return qc_int_note(x, base, "ConvInteger%s s_w=%.6g", add ? " k=2j+1" : "",
                       qc_int_wscale(w, 0));
fail:
    qc_int_ival_clear(&r);
    return st;
}

/* Gemm / MatMul with a quantized weight: x·W^T (transB) or x·W. */
enum qc_status qc_int_do_gemm(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    bool is_gemm = n->kind == QC_OP_GEMM;
    int xin = n->in[0], out = n->out[0], wv, mul, add, acc, rank;
    int64_t trans_a = 0, trans_b = 0, m, kdim;
    float alpha = 1.0f, beta = 1.0f;
    double jmax, *a = NULL;
    struct ival *w, r;
    struct ival *xr = &x->iv[xin];
    char base[512];
    enum qc_status st;
    int in[4];

    memset(&r, 0, sizeof(r));
    snprintf(base, sizeof(base), "%s", qc_int_label(x, node));
    if ((st = qc_int_weight_of(x, node, n->in[1], &w)) != QC_OK)
        return st;
    if (is_gemm && ((st = qc_attr_int(&n->attrs, base, "transA", 0, &trans_a)) != QC_OK ||
                    (st = qc_attr_int(&n->attrs, base, "transB", 0, &trans_b)) != QC_OK ||
                    (st = qc_attr_float(&n->attrs, base, "alpha", 1.0f, &alpha)) != QC_OK ||
                    (st = qc_attr_float(&n->attrs, base, "beta", 1.0f, &beta)) != QC_OK))
        return st;
    if (trans_a || alpha != 1.0f || beta != 1.0f || w->wshape.ndim != 2) {
        qc_log_error("%s: node '%s': the int export handles Gemm with transA=0, alpha=beta=1 "
                     "and a 2-D weight", x->g->path, base);
        return QC_ERR_UNSUPPORTED;
    }
    m = trans_b ? w->wshape.dims[0] : w->wshape.dims[1];
    kdim = trans_b ? w->wshape.dims[1] : w->wshape.dims[0];
    if (w->wc != 1 && !((trans_b && w->dq_axis == 0) || (!trans_b && w->dq_axis == 1))) {
        qc_log_error("%s: node '%s': per-axis weight scales must be per output feature",
                     x->g->path, base);
        return QC_ERR_UNSUPPORTED;
    }
    qc_int_channels(x, out, &rank);
    if ((st = qc_int_layer_record(x, node, is_gemm ? 2 : 99, m, rank, &r)) != QC_OK)
        goto fail;
    if (xr->kind == K_U8 || xr->kind == K_NONE) {
        /* int8 weights (ONNX Runtime's fastest kernel) where no pairwise int16
         * sum can saturate, else uint8 with zero point 128 (int.h) */
        int q, hi, zp, n_in = 2;
        int32_t lo_j, hi_j;
        double s;
        int xzp;
        if ((st = qc_int_layer_input(x, node, xin, &q, &s, &hi)) != QC_OK)
            goto fail;
        xr = &x->iv[xin]; /* the input quantizer may have moved the records */
        /* signed levels (stored q + 128, x_zero_point 128): uint8 weights with a zero
         * point too, the exact u8×u8 kernel */
        xzp = xr->kind == K_U8 ? xr->zp : 0;
        qc_int_stored_levels(w, &lo_j, &hi_j);
        if ((st = qc_int_store_weight(x, base, w, trans_b != 0, QC_DTYPE_I8,
                                      !xzp && qc_int_pairs_fit_int16(hi, lo_j, hi_j) ? W_SIGNED
                                                                                     : W_OFFSET,
                                      &wv, &zp, &mul, &add, &jmax)) != QC_OK)
            goto fail;
        if (xzp)
            hi = qc_int_u8_absmax(xr);
        if (zp != 0 || xzp != 0) {
            if ((st = zero_points(x, base, xzp, zp, &in[2], &in[3])) != QC_OK)
                goto fail;
            n_in = 4;
        }
        in[0] = q;
        in[1] = wv;
        if ((st = qc_int_emit(x, "MatMulInteger", base, in, n_in, QC_DTYPE_I32, -1, &acc, NULL)) !=
            QC_OK)
            goto fail;
        a = qc_int_dvec(m, 0.0);
        if (!a) {
            st = QC_ERR_NOMEM;
            goto fail;
        }
        for (int64_t j = 0; j < m; j++)
            a[j] = s * qc_int_wscale(w, j) * mul;
        if ((st = qc_int_add_term(x, node, &r, acc, QC_DTYPE_I32, false, (double)kdim * hi * jmax,
                                  a)) != QC_OK)
            goto fail;
        if (add) {
            /* Σ k·x = 2·Σ j'·x + Σ x: the row sum [N, 1] */
            int xi, sum, rnode, axv;
            int64_t ax = 1;
            if ((st = qc_int_cast(x, base, q, QC_DTYPE_I32, -1, &xi)) != QC_OK ||
                (st = qc_int_axes_const(x, base, &ax, 1, &axv)) != QC_OK)
                goto fail;
            if (xzp) {
                /* Σ (x − x_zp) */
                int zv;
                if ((st = qc_int_scalar_const(x, base, "_x_zp32", QC_DTYPE_I32, xzp, &zv)) != QC_OK)
                    goto fail;
                in[0] = xi;
                in[1] = zv;
                if ((st = qc_int_emit(x, "Sub", base, in, 2, QC_DTYPE_I32, -1, &xi, NULL)) != QC_OK)
                    goto fail;
            }
            in[0] = xi;
            in[1] = axv;
            if ((st = qc_int_emit(x, "ReduceSum", base, in, 2, QC_DTYPE_I32, -1, &sum, &rnode)) !=
                QC_OK)
                goto fail;
            if ((st = qc_int_odd_combine(x, base, &r, sum, (double)kdim * hi)) != QC_OK)
                goto fail;
        }
    } else {
        /* integer (int32) input terms, e.g. a global-average-pool window sum:
         * y = Σ_i a_i·(q_i·W^T) + W·b + bias, exact in int32/int64 MatMul */
        struct ival *p;
        bool wide = false;
        if ((st = qc_int_need_pend(x, node, xin, &p)) != QC_OK ||
            (st = qc_int_no_clip(x, node, p, xin)) != QC_OK)
            goto fail;
        for (int i = 0; i < p->nt; i++)
            if (!p->t[i].bcast && !qc_int_uniform(p->t[i].a, p->c)) {
                qc_log_error("%s: node '%s': its integer input has per-channel scales (a "
                             "BatchNorm without an activation quantizer before it); add QAct "
                             "before this layer", x->g->path, base);
                st = QC_ERR_UNSUPPORTED;
                goto fail;
            }
        for (int64_t j = 0; j < m; j++)
            for (int64_t k = 0; k < kdim; k++) {
                int64_t at = trans_b ? j * kdim + k : k * m + j;
                r.b[j] += (double)w->k[at] * qc_int_wscale(w, j) * p->b[k];
            }
        for (int i = 0; i < p->nt; i++)
            wide = wide || p->t[i].bound * (double)kdim * qc_int_kmax_levels(w) >= TWO31 / 2;
        for (int i = 0; i < p->nt; i++) {
            struct term *t = &p->t[i];
            a = qc_int_dvec(m, 0.0);
            if (!a) {
                st = QC_ERR_NOMEM;
                goto fail;
            }
            if (t->bcast) {
                /* the same value in every input channel: q·Σ_k W[j,k]·a[k] */
                for (int64_t j = 0; j < m; j++)
                    for (int64_t k = 0; k < kdim; k++) {
                        int64_t at = trans_b ? j * kdim + k : k * m + j;
                        a[j] += (double)w->k[at] * qc_int_wscale(w, j) * t->a[k];
                    }
                if ((st = qc_int_add_term(x, node, &r, t->v, t->dt, true, t->bound, a)) != QC_OK)
                    goto fail;
                continue;
            }
            {
                enum qc_dtype dt = wide ? QC_DTYPE_I64 : QC_DTYPE_I32;
                int qv = t->v, ww;
                if ((st = qc_int_store_levels(x, base, w, trans_b != 0, dt, &ww)) != QC_OK)
                    goto fail;
                if (t->dt != dt && (st = qc_int_cast(x, base, qv, dt, -1, &qv)) != QC_OK)
                    goto fail;
                in[0] = qv;
                in[1] = ww;
                if ((st = qc_int_emit(x, "MatMul", base, in, 2, dt, -1, &acc, NULL)) != QC_OK)
                    goto fail;
                for (int64_t j = 0; j < m; j++)
                    a[j] = t->a[0] * qc_int_wscale(w, j);
                if ((st = qc_int_add_term(x, node, &r, acc, dt, false,
                                          t->bound * (double)kdim * qc_int_kmax_levels(w), a)) !=
                    QC_OK)
                    goto fail;
            }
        }
    }
    qc_int_move(&x->iv[out], &r);
    x->stats->n_layers++;
    return qc_int_note(x, base, "%s s_w=%.6g", xr->kind == K_PEND ? "MatMul int" : "MatMulInteger",
                       qc_int_wscale(w, 0));
fail:
    qc_int_ival_clear(&r);
    return st;
}
