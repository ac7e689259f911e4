/*
 * fold_const.c - constant subgraphs that feed parameters become
 * initializers (import.h).
 *
 * Exporters reach weights in many ways: CNTK reshapes an initializer before
 * its MatMul, paddle2onnx writes every weight as a Constant node, the zoo's
 * Caffe2 graphs of the onnx package make them with ConstantOfShape, PyTorch
 * 1.13 shares an equal BatchNorm bias through Identity, weight-only
 * quantization dequantizes int8 initializers.  Training, recipes and exports
 * know a parameter as a float initializer read by a parameter slot, so each
 * such value is evaluated once here, with the op's own infer and CPU forward,
 * and stored as an initializer under its name; the nodes that computed it are
 * removed when nothing else reads them.
 *
 * Only values that feed a parameter are folded: a layer's weight or bias,
 * a BatchNorm parameter or statistic (op roles), and the constant operand of
 * an Add or Mul right after a layer or a BatchNorm (fold_layers.c makes it
 * theirs).
 * Shape subgraphs of activations stay for the plan, which folds them per
 * batch size.  A value above QC_IMPORT_MAX_FOLD_BYTES, or past
 * QC_IMPORT_MAX_FOLD_TOTAL in all, is left as it is.
 */
#include <config.h>

#include "import_impl.h"

#include <stdio.h>
#include <string.h>

#include "ops/bind.h"
#include "ops/op.h"
#include "util/log.h"

#define QC_IMPORT_MAX_FOLD_BYTES ((size_t)1 << 30)
#define QC_IMPORT_MAX_FOLD_TOTAL ((size_t)4 << 30)

struct cf {
    struct qc_graph *g;
    bool skip_dq;
    bool *is_const;         /* per value: an initializer or foldable     */
    bool *want;             /* per value: becomes an initializer         */
    bool *need;             /* per value: evaluated                      */
    struct qc_tensor **val; /* per value: its evaluated tensor (owned)   */
    int *uses;              /* per value: readers (+1 graph output)      */
    bool *dead;             /* per node: removed                         */
    size_t total;           /* bytes evaluated                           */
};

/* The ops whose node is evaluated here when every input is constant. */
static bool foldable_kind(const struct cf *c, int kind)
{
    switch (kind) {
    case QC_OP_CONSTANT:
    case QC_OP_IDENTITY:
    case QC_OP_RESHAPE:
    case QC_OP_FLATTEN:
    case QC_OP_TRANSPOSE:
    case QC_OP_SQUEEZE:
    case QC_OP_UNSQUEEZE:
    case QC_OP_CAST:
    case QC_OP_CONCAT:
    case QC_OP_GATHER:
    case QC_OP_SLICE:
    case QC_OP_SHAPE:
    case QC_OP_CONSTANT_OF_SHAPE:
        return true;
    case QC_OP_DEQUANTIZE_LINEAR:
        return !c->skip_dq;
    default:
        return false;
    }
}

static bool node_is_const(const struct cf *c, const struct qc_node *n)
{
    if (n->n_out != 1 || n->out[0] < 0 || !foldable_kind(c, n->kind))
        return false;
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j] >= 0 && !c->is_const[n->in[j]])
            return false;
    return true;
}

/* Whether value v is the output of a weighted layer (Conv, ConvTranspose,
 * Gemm, MatMul) or a BatchNormalization, or of a Mul right after one. */
static bool after_layer(const struct qc_graph *g, int v, int depth)
{
    int p = v >= 0 ? g->values[v].producer : -1;
    const struct qc_node *n;
    if (p < 0)
        return false;
    n = &g->nodes[p];
    if (qc_op_is_weighted(n->kind) || n->kind == QC_OP_BATCHNORM)
        return true;
    if (depth > 0 || n->kind != QC_OP_MUL || n->n_in != 2)
        return false;
    return after_layer(g, n->in[0], 1) || after_layer(g, n->in[1], 1);
}

/* Whether input `slot` of node n holds a parameter. */
static bool param_slot(const struct qc_graph *g, const struct qc_node *n, int slot)
{
    if (qc_op_input_role(n->kind, slot) != QC_INPUT_DATA)
        return true;
    if ((n->kind != QC_OP_ADD && n->kind != QC_OP_MUL) || n->n_in != 2 || slot > 1)
        return false;
    return after_layer(g, n->in[1 - slot], 0);
}

/* is_const and want for every value, need by walking back from want. */
static void mark(struct cf *c)
{
    struct qc_graph *g = c->g;
    for (int v = 0; v < g->n_values; v++)
        c->is_const[v] = g->values[v].init != NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (node_is_const(c, &g->nodes[i]))
            c->is_const[g->nodes[i].out[0]] = true;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        if (node_is_const(c, n))
            continue; /* a link of a constant chain, not its reader */
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            if (v >= 0 && c->is_const[v] && !g->values[v].init && !g->values[v].is_output &&
                param_slot(g, n, j))
                c->want[v] = true;
        }
    }
    for (int v = 0; v < g->n_values; v++)
        c->need[v] = c->want[v];
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const struct qc_node *n = &g->nodes[i];
        if (!node_is_const(c, n) || !c->need[n->out[0]])
            continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0 && !g->values[n->in[j]].init)
                c->need[n->in[j]] = true;
    }
}

/* The constant value v: its initializer or its evaluated tensor (NULL when
 * it was not evaluated). */
static const struct qc_tensor *const_of(const struct cf *c, int v)
{
    return c->g->values[v].init ? c->g->values[v].init : c->val[v];
}

/* Evaluates constant node i (all inputs available) into c->val. */
static enum qc_status eval_node(struct cf *c, int i)
{
    struct qc_graph *g = c->g;
    const struct qc_node *n = &g->nodes[i];
    const struct qc_op_def *d = qc_op_get((enum qc_op_kind)n->kind);
    const struct qc_tensor *in[64];
    struct qc_tensor out = { .dtype = QC_DTYPE_UNDEFINED }, *res = NULL;
    struct qc_tensor *outs[1] = { &out };
    char where[512];
    struct qc_op_ctx ctx = { .threads = 1, .opset = g->opset, .label = where };
    enum qc_status st;
    size_t nbytes;

    snprintf(where, sizeof(where), "%s: %s '%s'", g->path, n->op_type, qc_node_label(g, n));
    if (n->n_in > (int)QC_ARRAY_SIZE(in))
        return QC_OK;
    for (int j = 0; j < n->n_in; j++) {
        in[j] = n->in[j] >= 0 ? const_of(c, n->in[j]) : NULL;
        if (n->in[j] >= 0 && !in[j])
            return QC_OK; /* an input left unevaluated (too large) */
    }
    st = d->infer(n, where, in, outs);
    if (st != QC_OK)
        return st;
    for (int k = 0; k < out.shape.ndim; k++) {
        if (out.shape.dims[k] < 0 || out.shape.dims[k] > ((int64_t)1 << 40)) {
            qc_log_error("%s: output has an invalid shape", where);
            return QC_ERR_SHAPE;
        }
    }
    if (!qc_dtype_supported(out.dtype) || qc_shape_nelem(&out.shape) > ((int64_t)1 << 40))
        return QC_OK;
    nbytes = (size_t)qc_shape_nelem(&out.shape) * qc_dtype_size(out.dtype);
    if (nbytes > QC_IMPORT_MAX_FOLD_BYTES || c->total + nbytes > QC_IMPORT_MAX_FOLD_TOTAL)
        return QC_OK; /* left to the plan */
    st = qc_tensor_new(out.dtype, &out.shape, &res);
    if (st != QC_OK)
        return st;
    outs[0] = res;
    st = d->cpu.forward(n, &ctx, in, outs);
    if (st != QC_OK) {
        qc_tensor_free(res);
        return st;
    }
    c->total += nbytes;
    c->val[n->out[0]] = res;
    return QC_OK;
}

/* Value v (evaluated, float) becomes an initializer; its producer dies. */
static enum qc_status materialize(struct cf *c, int v, struct qc_import_stats *stats)
{
    struct qc_graph *g = c->g;
    int p = g->values[v].producer;
    g->values[v].init = c->val[v];
    c->val[v] = NULL;
    g->values[v].dtype = g->values[v].init->dtype;
    c->dead[p] = true;
    stats->n_folded++;
    return qc_import_list_input(g, v);
}

/* Removes the dead producers, then constant nodes (and initializers) that
 * only they read, back to front so that readers go before producers. */
static void sweep(struct cf *c, struct qc_import_stats *stats)
{
    struct qc_graph *g = c->g;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const struct qc_node *n = &g->nodes[i];
        if (!c->dead[i] && !(node_is_const(c, n) && c->need[n->out[0]] && c->uses[n->out[0]] == 0))
            continue;
        c->dead[i] = true;
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            if (v < 0)
                continue;
            c->uses[v]--;
            if (c->uses[v] == 0 && g->values[v].init && !g->values[v].is_output)
                qc_graph_drop_initializer(g, v);
        }
    }
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        if (!c->dead[i])
            continue;
        if (g->nodes[i].kind == QC_OP_DEQUANTIZE_LINEAR)
            stats->n_dequantize++;
        qc_graph_remove_node(g, i);
        stats->n_removed++;
    }
}

enum qc_status qc_import_fold_constants(struct qc_graph *g, bool skip_dq,
                                        struct qc_import_stats *stats)
{
    struct cf c = { .g = g, .skip_dq = skip_dq };
    size_t nv = (size_t)g->n_values + 1;
    enum qc_status st = QC_ERR_NOMEM;
    int n_want = 0;

    c.is_const = qc_calloc(nv, sizeof(bool));
    c.want = qc_calloc(nv, sizeof(bool));
    c.need = qc_calloc(nv, sizeof(bool));
    c.val = qc_calloc(nv, sizeof(*c.val));
    c.dead = qc_calloc((size_t)g->n_nodes + 1, sizeof(bool));
    if (!c.is_const || !c.want || !c.need || !c.val || !c.dead)
        goto out;
    if ((st = qc_import_count_uses(g, &c.uses)) != QC_OK)
        goto out;
    mark(&c);
    for (int v = 0; v < g->n_values; v++)
        n_want += c.want[v];
    if (n_want == 0)
        goto out; /* st is QC_OK */
    for (int i = 0; i < g->n_nodes && st == QC_OK; i++) {
        const struct qc_node *n = &g->nodes[i];
        if (node_is_const(&c, n) && c.need[n->out[0]])
            st = eval_node(&c, i);
    }
    for (int v = 0; v < g->n_values && st == QC_OK; v++)
        if (c.want[v] && c.val[v] && c.val[v]->dtype == QC_DTYPE_F32)
            st = materialize(&c, v, stats);
    if (st != QC_OK)
        goto out;
    sweep(&c, stats);
    st = qc_graph_finalize(g);
out:
    if (c.val)
        for (int v = 0; v < g->n_values; v++)
            qc_tensor_free(c.val[v]);
    qc_free(c.is_const);
    qc_free(c.want);
    qc_free(c.need);
    qc_free(c.val);
    qc_free(c.dead);
    qc_free(c.uses);
    return st;
}
