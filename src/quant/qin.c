/*
 * qin.c - layer-input quantizers: the Identity in front of a layer's data input
 * that carries its QIn quantizer (see qin.h).
 */
#include <config.h>

#include "qin.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "ops/bind.h"
#include "ops/op.h"
#include "recipe/match.h"
#include "qspec.h"

bool qc_qin_is_inserted(const struct qc_graph *g, int i)
{
    const struct qc_node *n = &g->nodes[i];
    size_t len = n->name ? strlen(n->name) : 0, sl = strlen(QC_QIN_SUFFIX);
    char label[1024];
    int layer;
    if (strcmp(n->op_type, "Identity") != 0 || len <= sl || len - sl >= sizeof(label) ||
        strcmp(n->name + len - sl, QC_QIN_SUFFIX) != 0)
        return false;
    memcpy(label, n->name, len - sl);
    label[len - sl] = '\0';
    layer = qc_graph_find_node(g, label);
    return layer >= 0 && qc_op_quantizes_weight(g->nodes[layer].kind);
}

int qc_qin_of_layer(const struct qc_graph *g, int layer)
{
    const struct qc_node *l = &g->nodes[layer];
    const char *label = qc_node_label(g, l);
    size_t len = strlen(label);
    int p;
    if (l->n_in < 1 || l->in[0] < 0 || (p = g->values[l->in[0]].producer) < 0)
        return -1;
    if (!g->nodes[p].name || strncmp(g->nodes[p].name, label, len) != 0 ||
        strcmp(g->nodes[p].name + len, QC_QIN_SUFFIX) != 0 ||
        strcmp(g->nodes[p].op_type, "Identity") != 0)
        return -1;
    return p;
}

static bool is_own_section(const struct qc_graph *g, const struct qc_node *n, const char *sec)
{
    return (n->name && strcmp(n->name, sec) == 0) ||
           (n->n_out > 0 && strcmp(g->values[n->out[0]].name, sec) == 0);
}

/* Whether layer node i can take a QIn (else, in its own section, an error). */
static enum qc_status check_layer(const struct qc_recipe *r, const struct qc_graph *g, int i,
                                  const char *sec, bool *fits)
{
    const struct qc_node *n = &g->nodes[i];
    bool own = is_own_section(g, n, sec);
    char where[256];
    *fits = false;
    if (!qc_op_quantizes_weight(n->kind)) {
        if (!own)
            return QC_OK;
        qc_log_error("%s: [%s] QIn on %s '%s': QIn quantizes the data input of a Conv, "
                     "ConvTranspose, Gemm or MatMul (put QAct on the node computing the value)",
                     qc_recipe_where(r, sec, "QIn", where, sizeof(where)), sec, n->op_type,
                     qc_node_label(g, n));
        return QC_ERR_RECIPE;
    }
    if (n->n_in < 1 || n->in[0] < 0 || g->values[n->in[0]].init) {
        if (!own)
            return QC_OK;
        qc_log_error("%s: [%s] QIn on %s '%s', which has no data input (its input 0 is %s)",
                     qc_recipe_where(r, sec, "QIn", where, sizeof(where)), sec, n->op_type,
                     qc_node_label(g, n), n->n_in < 1 || n->in[0] < 0 ? "absent" : "a constant");
        return QC_ERR_RECIPE;
    }
    *fits = true;
    return QC_OK;
}

/* Identity(x) -> "<layer>/QIn" in front of layer i. */
static enum qc_status insert_one(struct qc_graph *g, int i)
{
    char name[1024], vname[1024];
    int x = g->nodes[i].in[0], v;
    enum qc_status st;
    snprintf(name, sizeof(name), "%s%s", qc_node_label(g, &g->nodes[i]), QC_QIN_SUFFIX);
    qc_graph_unique_name(g, name, "", vname, sizeof(vname));
    if ((st = qc_graph_value(g, vname, &v)) != QC_OK ||
        (st = qc_graph_add_op(g, "Identity", name, &x, 1, &v, 1, NULL)) != QC_OK)
        return st;
    g->values[v].dtype = g->values[x].dtype;
    g->nodes[i].in[0] = v;
    return QC_OK;
}

enum qc_status qc_qin_insert(struct qc_graph *g, const struct qc_recipe *r, int *n_out)
{
    int n_nodes = g->n_nodes, n = 0;
    enum qc_status st = QC_OK;
    for (int i = 0; i < n_nodes && st == QC_OK; i++) {
        const char *sec = qc_recipe_node_section(r, g, &g->nodes[i]);
        int method;
        bool fits;
        if (!sec || qc_qin_is_inserted(g, i))
            continue;
        if ((st = qc_quant_read_method(r, sec, "QIn", &method)) != QC_OK || !method)
            continue;
        if ((st = check_layer(r, g, i, sec, &fits)) != QC_OK || !fits || qc_qin_of_layer(g, i) >= 0)
            continue;
        if ((st = insert_one(g, i)) == QC_OK)
            n++;
    }
    if (st == QC_OK && n > 0)
        st = qc_graph_finalize(g);
    if (n_out)
        *n_out = n;
    return st;
}

enum qc_status qc_qin_drop(struct qc_graph *g)
{
    bool any = false;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        int x, y;
        if (!qc_qin_is_inserted(g, i))
            continue;
        x = g->nodes[i].in[0];
        y = g->nodes[i].out[0];
        if (g->values[y].is_output)
            continue;
        for (int k = 0; k < g->n_nodes; k++)
            for (int j = 0; j < g->nodes[k].n_in; j++)
                if (g->nodes[k].in[j] == y)
                    g->nodes[k].in[j] = x;
        qc_graph_remove_node(g, i);
        any = true;
    }
    return any ? qc_graph_finalize(g) : QC_OK;
}
