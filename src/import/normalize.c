/*
 * normalize.c - the import normalization pass (import.h): loading with the
 * refusal of QOperator models, the order of the folding steps, the
 * already-quantized test, and the graph edits the steps share.
 */
#include <config.h>

#include "import.h"
#include "import_impl.h"

#include <string.h>

#include "onnx/onnx_io.h"
#include "ops/bind.h"
#include "ops/op.h"
#include "util/log.h"

/* Op types of quantized models that qatconv does not read (ONNX Runtime's
 * QOperator format and dynamic quantization). */
static bool is_qoperator(const char *domain, const char *op)
{
    static const char *const names[] = { "QGemm", "DynamicQuantizeLinear", "DynamicQuantizeMatMul",
                                         "MatMulIntegerToFloat" };
    if (strncmp(op, "QLinear", 7) == 0)
        return true;
    for (size_t i = 0; i < QC_ARRAY_SIZE(names); i++)
        if (strcmp(op, names[i]) == 0)
            return true;
    (void)domain;
    return false;
}

/* One line for a QOperator model, before op binding would list its ops as
 * unsupported. */
static enum qc_status refuse_qoperator(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        if (!is_qoperator(n->domain, n->op_type))
            continue;
        qc_log_error("%s is already quantized (%s '%s', a QOperator model), and qatconv reads "
                     "float models: pass the float model it came from",
                     g->path, n->op_type, qc_node_label(g, n));
        return QC_ERR_UNSUPPORTED;
    }
    return QC_OK;
}

enum qc_status qc_import_load(const char *path, struct qc_graph **out)
{
    return qc_import_load_with(path, false, NULL, out);
}

enum qc_status qc_import_load_with(const char *path, bool keep_weight_dq,
                                   struct qc_import_stats *stats, struct qc_graph **out)
{
    struct qc_graph *g = NULL;
    enum qc_status st = qc_onnx_parse_file(path, &g);

    *out = NULL;
    if (st == QC_OK)
        st = refuse_qoperator(g);
    if (st == QC_OK)
        st = qc_graph_finalize(g);
    if (st == QC_OK)
        st = qc_import_normalize(g, keep_weight_dq, stats);
    if (st == QC_OK) {
        *out = g;
        g = NULL;
    }
    qc_graph_free(g);
    return st;
}

/* A DequantizeLinear input that is a stored constant (a quantized weight). */
static bool stored_constant(const struct qc_graph *g, int v)
{
    int p = v >= 0 ? g->values[v].producer : -1;
    if (v < 0 || g->values[v].init)
        return true;
    return p >= 0 && g->nodes[p].kind == QC_OP_CONSTANT;
}

/* Whether g dequantizes a stored weight (a weight-only quantized model when
 * nothing else is quantized). */
static bool has_weight_dq(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].kind == QC_OP_DEQUANTIZE_LINEAR && stored_constant(g, g->nodes[i].in[0]))
            return true;
    return false;
}

int qc_import_quantized_node(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        switch (n->kind) {
        case QC_OP_QUANTIZE_LINEAR:
        case QC_OP_CONV_INTEGER:
        case QC_OP_MATMUL_INTEGER:
            return i;
        case QC_OP_DEQUANTIZE_LINEAR:
            if (!stored_constant(g, n->in[0]))
                return i;
            break;
        default:
            break;
        }
    }
    return -1;
}

enum qc_status qc_import_check_trainable(const struct qc_graph *g)
{
    int i = qc_import_quantized_node(g);
    if (i < 0)
        return QC_OK;
    qc_log_error("%s is already quantized (%s '%s'): a recipe cannot train or quantize it "
                 "again; pass the float model it came from (without -r, qatconv evaluates it "
                 "or rewrites a QDQ model with --format int)",
                 g->path, g->nodes[i].op_type, qc_node_label(g, &g->nodes[i]));
    return QC_ERR_UNSUPPORTED;
}

enum qc_status qc_import_normalize(struct qc_graph *g, bool keep_weight_dq,
                                   struct qc_import_stats *stats)
{
    struct qc_import_stats local;
    bool quantized = qc_import_quantized_node(g) >= 0 || (keep_weight_dq && has_weight_dq(g));
    enum qc_status st;

    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    st = qc_import_fold_constants(g, quantized, stats);
    if (st != QC_OK || quantized)
        return st;
    return qc_import_fold_layers(g, stats);
}

/* ---- graph edits shared by the steps ---------------------------------------------- */

enum qc_status qc_import_count_uses(const struct qc_graph *g, int **uses)
{
    int *u = qc_calloc((size_t)g->n_values + 1, sizeof(int));
    if (!u)
        return QC_ERR_NOMEM;
    for (int v = 0; v < g->n_values; v++)
        u[v] = g->values[v].is_output ? 1 : 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] >= 0)
                u[g->nodes[i].in[j]]++;
    *uses = u;
    return QC_OK;
}

/* Declares value v with the type and shape of its initializer. */
static void declare_like_init(struct qc_value *v)
{
    v->dtype = v->init->dtype;
    if (v->is_input || v->has_shape) {
        for (int d = 0; d < QC_MAX_DIMS; d++) {
            qc_free(v->dim_param[d]);
            v->dim_param[d] = NULL;
        }
        v->has_shape = true;
        v->shape = v->init->shape;
    }
}

enum qc_status qc_import_list_input(struct qc_graph *g, int v)
{
    int *in;
    if (g->ir_version >= 4 || g->values[v].is_input)
        return QC_OK;
    in = qc_realloc(g->inputs, (size_t)(g->n_inputs + 1) * sizeof(int));
    if (!in)
        return QC_ERR_NOMEM;
    g->inputs = in;
    g->inputs[g->n_inputs++] = v;
    g->values[v].is_input = true;
    declare_like_init(&g->values[v]);
    return QC_OK;
}

void qc_import_set_init(struct qc_graph *g, int v, struct qc_tensor *t)
{
    qc_tensor_free(g->values[v].init);
    g->values[v].init = t;
    declare_like_init(&g->values[v]);
}
