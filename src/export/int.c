/*
 * int.c - integer-only export (see int.h for the arithmetic).
 *
 * One pass over the fake-quant graph in topological order keeps, for every
 * original value, what it has become:
 *   WEIGHT  the integer levels k and per-output-channel scales of a
 *           DequantizeLinear'ed initializer;
 *   U8      a uint8 tensor of the new graph with one scale s (real = s·q, or
 *           s·(q − 128) for signed levels stored with a zero point);
 *   PEND    "pending" integer terms: real[c] = Σ_i a_i[c]·q_i + b[c] along
 *           channel axis 1, with a clip [lo, hi] still to apply; the terms
 *           are int32/int64/uint8 tensors of the new graph (a term whose
 *           channel dimension is 1 broadcasts over the channels).
 * Layers, BatchNorm, bias, ReLU/Clip and Add only edit PEND records; a
 * QuantizeLinear on a PEND record emits the requantization chain; a
 * float-only consumer (or a graph output) gets the float dequantization.
 * Every original node the pass handles is removed at the end and the
 * original value names are re-produced where the float graph still reads
 * them, so graph outputs keep their names.  Shapes come from a plan of the
 * fake graph at batch 1.  This file is the pass; int_impl.h lists the files
 * that do the work.
 */
#include <config.h>

#include "int_impl.h"

#include <math.h>
#include <string.h>

#include "backend/backend.h"
#include "util/log.h"
#include "ops/op.h"
#include "ops/bind.h"
#include "opset.h"

/* ---- the pass ------------------------------------------------------------------------ */

static bool is_int(const struct ix *x, int v)
{
    return v >= 0 && v < x->n_val && x->iv[v].kind != K_NONE;
}

static bool is_layout(const struct qc_node *n)
{
    return n->kind == QC_OP_FLATTEN || n->kind == QC_OP_RESHAPE || n->kind == QC_OP_TRANSPOSE ||
           n->kind == QC_OP_SQUEEZE || n->kind == QC_OP_UNSQUEEZE;
}

/* Whether every reader of v, through layout ops, is a QuantizeLinear (a QIn input
 * quantizer after the channels-last Transpose or an MLP's Flatten of the graph input):
 * those layout ops stay float before it, which then quantizes as the fake export does. */
static bool read_by_quantizers(const struct ix *x, int v, int depth)
{
    int readers = 0;
    if (x->g->values[v].is_output || depth > 8)
        return false;
    for (int i = 0; i < x->n_node; i++) {
        const struct qc_node *n = &x->g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            if (n->in[j] != v)
                continue;
            readers++;
            if (n->kind == QC_OP_QUANTIZE_LINEAR && j == 0)
                continue;
            if (j != 0 || !is_layout(n) || n->n_out != 1 ||
                !read_by_quantizers(x, n->out[0], depth + 1))
                return false;
        }
    }
    return readers > 0;
}

static enum qc_status do_node(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    bool any = false;
    enum qc_status st;
    double lo, hi;

    for (int i = 0; i < n->n_in; i++)
        any = any || is_int(x, n->in[i]);
    switch (n->kind) {
    case QC_OP_DEQUANTIZE_LINEAR:
        x->drop[node] = true;
        return qc_int_do_dequantize(x, node);
    case QC_OP_QUANTIZE_LINEAR:
        x->drop[node] = true;
        return qc_int_do_quantize(x, node);
    case QC_OP_CONV:
        x->drop[node] = true;
        return qc_int_do_conv(x, node);
    case QC_OP_GEMM:
    case QC_OP_MATMUL:
        /* a layer: its weight is a (quantized) constant */
        if (!is_int(x, n->in[1]) && !x->g->values[n->in[1]].init)
            break;
        x->drop[node] = true;
        return qc_int_do_gemm(x, node);
    default:
        break;
    }
    if (!any && is_layout(n) && n->n_in > 0 && qc_int_input_f32(x, n->in[0])) {
        /* a layout op on the input before the first layer: x.view(N, -1) of
         * MLPs, the NCHW Transpose of channels-last models, the Unsqueeze of
         * 1-D convolutions written as 2-D ones (also after the Cast to float32
         * of a float16 input, which stays float before the input quantizer); before
         * the model's own input quantizer (QIn) it stays float */
        if (n->n_out == 1 && read_by_quantizers(x, n->out[0], 0))
            return QC_OK;
        x->drop[node] = true;
        return qc_int_copy_on_u8(x, node);
    }
    if (!any)
        return QC_OK;          /* a float node outside the integer part: kept */
    x->drop[node] = true;
    switch (n->kind) {
    case QC_OP_BATCHNORM:
        return qc_int_do_batchnorm(x, node);
    case QC_OP_RELU:
        return qc_int_do_clip(x, node, 0.0, INFINITY);
    case QC_OP_CLIP:
        if (x->iv[n->in[0]].kind == K_U8 && qc_int_const_input(x, n, 1) &&
            qc_int_const_input(x, n, 1)->dtype == QC_DTYPE_U8) {
            /* a Clip on levels not absorbed by its QuantizeLinear */
            struct ival *s = &x->iv[n->in[0]];
            int hi_l = (int)qc_tensor_get_i64(qc_int_const_input(x, n, 2), 0), out = n->out[0];
            if ((st = qc_int_copy_on_u8(x, node)) == QC_OK && hi_l < s->hi)
                x->iv[out].hi = hi_l;
            return st;
        }
        if ((st = qc_int_clip_bounds(x, node, &lo, &hi)) != QC_OK)
            return st;
        return qc_int_do_clip(x, node, lo, hi);
    case QC_OP_ADD:
    case QC_OP_SUM:
        return qc_int_do_add(x, node);
    case QC_OP_MAXPOOL:
    case QC_OP_GLOBAL_MAXPOOL:
        if (x->iv[n->in[0]].kind != K_U8) {
            qc_log_error("%s: node '%s': max pooling needs quantized levels at its input (put "
                         "QAct on the activation before it)",
                         x->g->path, qc_int_label(x, node));
            return QC_ERR_UNSUPPORTED;
        }
        return qc_int_copy_on_u8(x, node);
    case QC_OP_REDUCE_MEAN: {
        /* the mean over the spatial axes of levels or unclipped terms (a head's
         * x.mean([2, 3])); any other ReduceMean stays a float op */
        const struct qc_shape *is = qc_int_shape_of(x, n->in[0]);
        const struct ival *s = &x->iv[n->in[0]];
        int64_t keep;
        if (!is || is->ndim < 3 || !qc_int_spatial_mean(x, node, is->ndim, &keep) ||
            (s->kind != K_U8 && (s->kind != K_PEND || qc_int_has_clip(s))))
            break;
        return qc_int_do_avgpool(x, node);
    }
    case QC_OP_GLOBAL_AVGPOOL:
    case QC_OP_AVGPOOL:
        return qc_int_do_avgpool(x, node);
    case QC_OP_CONCAT:
        return qc_int_do_concat(x, node);
    case QC_OP_IDENTITY:
    case QC_OP_DROPOUT: {
        struct ival *s = &x->iv[n->in[0]], r;
        if (s->kind == K_U8) {
            memset(&r, 0, sizeof(r));
            r.kind = K_U8;
            r.v = s->v;
            r.s = s->s;
            r.hi = s->hi;
            r.zp = s->zp;
        } else if ((st = qc_int_pend_copy(s, &r)) != QC_OK) {
            return st;
        }
        qc_int_move(&x->iv[n->out[0]], &r);
        return QC_OK;
    }
    case QC_OP_SLICE:
    case QC_OP_GATHER:
        /* levels with one scale and zero point: any selection of them keeps both */
        if (n->n_in > 1 && is_int(x, n->in[1])) {
            qc_log_error("%s: node '%s': %s indices computed in the integer graph", x->g->path,
                         qc_int_label(x, node), n->op_type);
            return QC_ERR_UNSUPPORTED;
        }
        if (x->iv[n->in[0]].kind == K_U8)
            return qc_int_copy_on_u8(x, node);
        return qc_int_select_pend(x, node);
    case QC_OP_SHAPE:
        /* the shape of an integer tensor (x.size() in channel shuffles): read off the
         * tensor that holds its values, which has that shape */
        return qc_int_shape_op(x, node);
    case QC_OP_FLATTEN:
    case QC_OP_RESHAPE:
    case QC_OP_SQUEEZE:
    case QC_OP_UNSQUEEZE:
    case QC_OP_TRANSPOSE:
        if (x->iv[n->in[0]].kind == K_U8)
            return qc_int_copy_on_u8(x, node);
        if (n->kind == QC_OP_TRANSPOSE) {
            qc_log_error("%s: node '%s': Transpose of integer terms is not supported", x->g->path,
                         qc_int_label(x, node));
            return QC_ERR_UNSUPPORTED;
        }
        return qc_int_flatten_pend(x, node);
    default:
        break;
    }
    /* a float-only op: the integer part must end here (e.g. Softmax on the logits) */
    x->drop[node] = false;
    for (int i = 0; i < x->g->nodes[node].n_in; i++) {
        int v = x->g->nodes[node].in[i]; /* re-read: materializing adds nodes */
        if (is_int(x, v) && (st = qc_int_materialize(x, v)) != QC_OK)
            return st;
    }
    return QC_OK;
}

/* After the pass: float ops must not feed integer layers.  A kept (float) node whose
 * output reaches a removed (integer) node breaks the integer-only property. */
static enum qc_status check_float_tail(struct ix *x)
{
    for (int i = 0; i < x->n_node; i++) {
        const struct qc_node *n = &x->g->nodes[i];
        if (!x->drop[i] && (n->kind == QC_OP_CONV || n->kind == QC_OP_CONV_TRANSPOSE ||
                            n->kind == QC_OP_GEMM ||
                            (n->kind == QC_OP_MATMUL && n->n_in > 1 && n->in[1] >= 0 &&
                             x->g->values[n->in[1]].init))) {
            qc_log_error("%s: layer '%s' (%s) would stay float: the int export needs integer "
                         "weights (QWeight with QWeight.ApplyQuantization=1) and a quantized "
                         "input on every layer",
                         x->g->path, qc_int_label(x, i), n->op_type);
            return QC_ERR_UNSUPPORTED;
        }
        if (!x->drop[i])
            continue;
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j], prod = v >= 0 ? x->g->values[v].producer : -1;
            if (j > 0 && n->kind != QC_OP_ADD && n->kind != QC_OP_SUM)
                continue;   /* shape / constant operands */
            if (prod >= 0 && prod < x->n_node && !x->drop[prod] && x->iv[v].kind == K_NONE &&
                !x->g->values[v].init && !qc_int_from_input(x, v)) {
                qc_log_error("%s: node '%s' (%s) computes in float inside the integer graph "
                             "(it feeds '%s'); the int export has no integer form for it",
                             x->g->path, qc_int_label(x, prod), x->g->nodes[prod].op_type,
                             qc_int_label(x, i));
                return QC_ERR_UNSUPPORTED;
            }
        }
    }
    return QC_OK;
}

enum qc_status qc_export_int(struct qc_graph *g, const struct qc_int_opts *opts,
                             struct qc_int_stats *stats, struct qc_int_notes *notes)
{
    struct ix x;
    struct qc_backend *be = NULL;
    enum qc_status st;

    memset(stats, 0, sizeof(*stats));
    memset(&x, 0, sizeof(x));
    /* ConvInteger, MatMulInteger and the requantization's integer Clip and
     * Relu need opset 14: the model's nodes are rewritten for it first */
    if ((st = qc_opset_upgrade(g, QC_MAX(g->opset, 14))) != QC_OK)
        return st;
    x.g = g;
    x.o = opts;
    x.stats = stats;
    x.notes = notes;
    x.n_val = g->n_values;
    x.n_node = g->n_nodes;
    if ((st = qc_backend_new("cpu", 1, &be)) != QC_OK ||
        (st = qc_plan_new(g, be, 1, &x.plan)) != QC_OK)
        goto out;
    x.iv = qc_calloc((size_t)x.n_val, sizeof(*x.iv));
    x.drop = qc_calloc((size_t)x.n_node + 1, sizeof(bool));
    x.qin = qc_malloc((size_t)x.n_val * sizeof(int));
    if (!x.iv || !x.drop || !x.qin) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < x.n_val; i++)
        x.qin[i] = -1;
    for (int i = 0; i < x.n_node && st == QC_OK; i++)
        if (!x.drop[i])
            st = do_node(&x, i);
    for (int i = 0; i < g->n_outputs && st == QC_OK; i++) {
        int v = g->outputs[i];
        if (!is_int(&x, v))
            continue;
        st = opts->int_output ? qc_int_output(&x, v) : qc_int_materialize(&x, v);
    }
    if (st == QC_OK)
        st = check_float_tail(&x);
    if (st != QC_OK)
        goto out;
    for (int i = x.n_node - 1; i >= 0; i--)
        if (x.drop[i])
            qc_graph_remove_node(g, i);
    /* nodes left without readers (Constant bounds of a folded Clip ...), last
     * first so that whole dead chains go */
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        bool used = false;
        for (int j = 0; j < g->nodes[i].n_out && !used; j++)
            used = qc_graph_value_uses(g, g->nodes[i].out[j]) > 0;
        if (!used)
            qc_graph_remove_node(g, i);
    }
    /* initializers nobody reads any more (float weights, BN parameters, old scales) */
    for (int v = 0; v < g->n_values; v++) {
        if (g->values[v].init && qc_graph_value_uses(g, v) == 0)
            qc_graph_drop_initializer(g, v);
    }
    /* INT4 weights need opset 21 */
    st = qc_opset_upgrade(g, x.int4_used ? QC_MAX(g->opset, 21) : g->opset);
out:
    if (x.iv)
        for (int i = 0; i < x.n_val; i++)
            qc_int_ival_clear(&x.iv[i]);
    qc_free(x.iv);
    qc_free(x.drop);
    qc_free(x.qin);
    qc_plan_free(x.plan);
    qc_backend_free(be);
    return st;
}
