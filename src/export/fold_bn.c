/*
 * fold_bn.c - BatchNormalization folding (see fold_bn.h).
 */
#include <config.h>

#include "fold_bn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "ops/op.h"
#include "ops/bind.h"
#include "opset.h"

static const float *init_f32(const struct qc_graph *g, const struct qc_node *n, int j, int64_t c)
{
    const struct qc_value *v;
    if (j >= n->n_in || n->in[j] < 0)
        return NULL;
    v = &g->values[n->in[j]];
    if (!v->init || v->init->dtype != QC_DTYPE_F32 || qc_tensor_nelem(v->init) != c)
        return NULL;
    return qc_tensor_f32(v->init);
}

/* The weight of layer n: a float initializer, or our DequantizeLinear of an
 * integer initializer with a scalar scale.  *dq is that node's index or -1. */
static struct qc_tensor *layer_weight(struct qc_graph *g, const struct qc_node *n, int *dq)
{
    int w = n->in[1], prod = g->values[w].producer;
    *dq = -1;
    if (g->values[w].init && g->values[w].init->dtype == QC_DTYPE_F32 &&
        qc_graph_value_uses(g, w) == 1)
        return g->values[w].init;
    if (prod >= 0 && g->nodes[prod].kind == QC_OP_DEQUANTIZE_LINEAR &&
        qc_graph_value_uses(g, w) == 1) {
        const struct qc_node *d = &g->nodes[prod];
        struct qc_value *sc = &g->values[d->in[1]];
        if (g->values[d->in[0]].init && sc->init && qc_tensor_nelem(sc->init) == 1 &&
            qc_graph_value_uses(g, d->in[1]) == 1) {
            *dq = prod;
            return g->values[d->in[0]].init;
        }
    }
    return NULL;
}

/* Folds BN node bi into its producer; false when the pattern does not fit. */
static enum qc_status fold_one(struct qc_graph *g, int bi, bool *folded)
{
    struct qc_node *bn = &g->nodes[bi];
    int x = bn->in[0], li = g->values[x].producer, dq;
    struct qc_node *l;
    const float *gamma, *beta, *mean, *var;
    struct qc_tensor *w, *bias = NULL;
    int64_t c, per;
    float eps;
    enum qc_status st;

    *folded = false;
    if (li < 0 || qc_graph_value_uses(g, x) != 1)
        return QC_OK;
    l = &g->nodes[li];
    if (l->kind == QC_OP_GEMM) {
        int64_t tb;
        if (qc_attr_int(&l->attrs, "Gemm", "transB", 0, &tb) != QC_OK || tb != 1)
            return QC_OK;
    } else if (l->kind != QC_OP_CONV) {
        return QC_OK;
    }
    w = layer_weight(g, l, &dq);
    if (!w || w->shape.ndim < 2)
        return QC_OK;
    c = w->shape.dims[0];
    per = qc_tensor_nelem(w) / c;
    gamma = init_f32(g, bn, 1, c);
    beta = init_f32(g, bn, 2, c);
    mean = init_f32(g, bn, 3, c);
    var = init_f32(g, bn, 4, c);
    if (!gamma || !beta || !mean || !var)
        return QC_OK;
    if (qc_attr_float(&bn->attrs, "BatchNormalization", "epsilon", 1e-5f, &eps) != QC_OK)
        return QC_OK;
    if (l->n_in > 2 && l->in[2] >= 0) {
        struct qc_value *bv = &g->values[l->in[2]];
        if (!bv->init || bv->init->dtype != QC_DTYPE_F32 || qc_tensor_nelem(bv->init) != c ||
            qc_graph_value_uses(g, l->in[2]) != 1)
            return QC_OK;
        bias = bv->init;
    } else {
        /* a new bias input */
        struct qc_shape s = qc_shape_make(1, &c);
        char name[512];
        int bv, *in;
        st = qc_tensor_new(QC_DTYPE_F32, &s, &bias);
        if (st != QC_OK)
            return st;
        qc_graph_unique_name(g, qc_node_label(g, l), "_folded_bias", name, sizeof(name));
        st = qc_graph_add_initializer(g, name, bias, &bv);
        if (st != QC_OK)
            return st;
        l = &g->nodes[li];
        in = qc_realloc(l->in, 3 * sizeof(int));
        if (!in)
            return QC_ERR_NOMEM;
        l->in = in;
        l->in[2] = bv;
        l->n_in = 3;
        bn = &g->nodes[bi];
    }
    if (dq >= 0) {
        /* per-channel DequantizeLinear scale s·f_c along axis 0 */
        struct qc_node *d = &g->nodes[dq];
        struct qc_value *sv = &g->values[d->in[1]], *zv = &g->values[d->in[2]];
        float s0 = qc_tensor_f32(sv->init)[0];
        struct qc_shape cs = qc_shape_make(1, &c);
        struct qc_tensor *ns, *nz;
        if ((st = qc_tensor_new(QC_DTYPE_F32, &cs, &ns)) != QC_OK)
            return st;
        if ((st = qc_tensor_new(zv->init->dtype, &cs, &nz)) != QC_OK) {
            qc_tensor_free(ns);
            return st;
        }
        for (int64_t k = 0; k < c; k++)
            qc_tensor_f32(ns)[k] = s0 * (gamma[k] / sqrtf(var[k] + eps));
        qc_tensor_free(sv->init);
        sv->init = ns;
        qc_tensor_free(zv->init);
        zv->init = nz;
        if ((st = qc_attrs_add_int(&d->attrs, "axis", 0)) != QC_OK)
            return st;
    } else {
        for (int64_t k = 0; k < c; k++) {
            float f = gamma[k] / sqrtf(var[k] + eps);
            for (int64_t j = 0; j < per; j++)
                qc_tensor_f32(w)[k * per + j] *= f;
        }
    }
    for (int64_t k = 0; k < c; k++) {
        float f = gamma[k] / sqrtf(var[k] + eps);
        qc_tensor_f32(bias)[k] = beta[k] + (qc_tensor_f32(bias)[k] - mean[k]) * f;
    }
    /* the layer now writes the BN's output; the BN and its parameters go */
    {
        int params[4];
        l = &g->nodes[li];
        l->out[0] = bn->out[0];
        for (int j = 0; j < 4; j++)
            params[j] = bn->in[j + 1];
        qc_graph_remove_node(g, bi);
        for (int j = 0; j < 4; j++) {
            struct qc_value *v = &g->values[params[j]];
            if (qc_graph_value_uses(g, params[j]) == 0 && !v->is_input) {
                qc_tensor_free(v->init);
                v->init = NULL;
            }
        }
    }
    *folded = true;
    return QC_OK;
}

enum qc_status qc_fold_bn(struct qc_graph *g, int *n_folded)
{
    *n_folded = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        bool folded;
        enum qc_status st;
        if (g->nodes[i].kind != QC_OP_BATCHNORM || g->nodes[i].n_out != 1)
            continue;
        st = fold_one(g, i, &folded);
        if (st != QC_OK)
            return st;
        if (folded) {
            (*n_folded)++;
            i--;   /* node i is gone; look at its successor */
        }
    }
    /* a folded quantized weight has per-channel scales (axis): opset 13 */
    if (*n_folded > 0 && g->opset < 13)
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].kind == QC_OP_DEQUANTIZE_LINEAR &&
                qc_attr_find(&g->nodes[i].attrs, "axis"))
                return qc_opset_upgrade(g, 13);
    return qc_graph_finalize(g);
}
