/*
 * graph.c - the IR container: values and nodes by index, the structural
 * checks and the topological sort (see graph.h).  Binding nodes to the op
 * table is ops/bind.c's job.
 */
#include <config.h>

#include "graph.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* Oldest and newest default-domain opsets qatconv reads. */
#define QC_OPSET_MIN 7
#define QC_OPSET_MAX 23

enum qc_status qc_graph_new(struct qc_graph **out)
{
    *out = qc_calloc(1, sizeof(**out));
    return *out ? QC_OK : QC_ERR_NOMEM;
}

static void value_clear(struct qc_value *v)
{
    qc_free(v->name);
    for (int i = 0; i < QC_MAX_DIMS; i++)
        qc_free(v->dim_param[i]);
    qc_tensor_free(v->init);
}

static void node_clear(struct qc_node *n)
{
    qc_free(n->name);
    qc_free(n->op_type);
    qc_free(n->domain);
    qc_free(n->doc_string);
    qc_free(n->in);
    qc_free(n->out);
    qc_attrs_clear(&n->attrs);
    qc_free(n->params);
}

void qc_graph_free(struct qc_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++)
        value_clear(&g->values[i]);
    for (int i = 0; i < g->n_nodes; i++)
        node_clear(&g->nodes[i]);
    for (int i = 0; i < g->n_opsets; i++)
        qc_free(g->opsets[i].domain);
    for (int i = 0; i < g->n_props; i++) {
        qc_free(g->props[i].key);
        qc_free(g->props[i].value);
    }
    qc_free(g->values);
    qc_free(g->nodes);
    qc_free(g->inputs);
    qc_free(g->outputs);
    qc_free(g->opsets);
    qc_free(g->props);
    qc_free(g->path);
    qc_free(g->producer_name);
    qc_free(g->producer_version);
    qc_free(g->domain);
    qc_free(g->doc_string);
    qc_free(g->graph_name);
    qc_free(g->graph_doc);
    qc_free(g);
}

int qc_graph_find_value(const struct qc_graph *g, const char *name)
{
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0)
            return i;
    return -1;
}

/* Grows an array of `size`-byte elements to hold at least need elements.
 * Sanitizer builds (QC_DEBUG_REALLOC_MOVES) move the array on every call, so
 * that a pointer into it kept across an addition is a use after free at once,
 * not only when the capacity happens to run out. */
static enum qc_status grow(void **arr, int *cap, int need, size_t size)
{
    void *p;
    int ncap;
#ifdef QC_DEBUG_REALLOC_MOVES
    if (need <= *cap) {
        p = qc_malloc((size_t)*cap * size);
        if (!p)
            return QC_ERR_NOMEM;
        memcpy(p, *arr, (size_t)*cap * size);
        qc_free(*arr);
        *arr = p;
        return QC_OK;
    }
#endif
    if (need <= *cap)
        return QC_OK;
    ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    p = qc_realloc(*arr, (size_t)ncap * size);
    if (!p)
        return QC_ERR_NOMEM;
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(ncap - *cap) * size);
    *arr = p;
    *cap = ncap;
    return QC_OK;
}

enum qc_status qc_graph_value(struct qc_graph *g, const char *name, int *idx)
{
    struct qc_value *v;
    enum qc_status st;
    int i = qc_graph_find_value(g, name);
    if (i >= 0) {
        *idx = i;
        return QC_OK;
    }
    st = grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(*g->values));
    if (st != QC_OK)
        return st;
    v = &g->values[g->n_values];
    memset(v, 0, sizeof(*v));
    v->name = qc_strdup(name);
    if (!v->name)
        return QC_ERR_NOMEM;
    v->producer = -1;
    *idx = g->n_values++;
    return QC_OK;
}

enum qc_status qc_graph_add_node(struct qc_graph *g, int *idx)
{
    enum qc_status st = grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1,
                             sizeof(*g->nodes));
    if (st != QC_OK)
        return st;
    memset(&g->nodes[g->n_nodes], 0, sizeof(g->nodes[0]));
    g->nodes[g->n_nodes].kind = -1;
    *idx = g->n_nodes++;
    return QC_OK;
}

const char *qc_graph_unique_name(const struct qc_graph *g, const char *base, const char *suffix,
                                 char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", base, suffix);
    for (int k = 2; qc_graph_find_value(g, buf) >= 0 || qc_graph_find_node(g, buf) >= 0; k++)
        snprintf(buf, len, "%s%s_%d", base, suffix, k);
    return buf;
}

enum qc_status qc_graph_add_initializer(struct qc_graph *g, const char *name,
                                        struct qc_tensor *t, int *idx)
{
    enum qc_status st;
    if (qc_graph_find_value(g, name) >= 0) {
        qc_tensor_free(t);
        return QC_ERR_INTERNAL;
    }
    st = qc_graph_value(g, name, idx);
    if (st != QC_OK) {
        qc_tensor_free(t);
        return st;
    }
    g->values[*idx].init = t;
    g->values[*idx].dtype = t->dtype;
    return QC_OK;
}

enum qc_status qc_graph_add_op(struct qc_graph *g, const char *op_type, const char *name,
                               const int *in, int n_in, const int *out, int n_out, int *idx)
{
    struct qc_node *n;
    int i;
    enum qc_status st = qc_graph_add_node(g, &i);
    if (st != QC_OK)
        return st;
    n = &g->nodes[i];
    n->op_type = qc_strdup(op_type);
    n->name = qc_strdup(name);
    n->domain = qc_strdup("");
    n->in = qc_malloc((size_t)(n_in ? n_in : 1) * sizeof(int));
    n->out = qc_malloc((size_t)(n_out ? n_out : 1) * sizeof(int));
    if (!n->op_type || !n->name || !n->domain || !n->in || !n->out)
        return QC_ERR_NOMEM;
    memcpy(n->in, in, (size_t)n_in * sizeof(int));
    memcpy(n->out, out, (size_t)n_out * sizeof(int));
    n->n_in = n_in;
    n->n_out = n_out;
    if (idx)
        *idx = i;
    return QC_OK;
}

void qc_graph_remove_node(struct qc_graph *g, int idx)
{
    QC_ASSERT(idx >= 0 && idx < g->n_nodes);
    node_clear(&g->nodes[idx]);
    memmove(&g->nodes[idx], &g->nodes[idx + 1],
            (size_t)(g->n_nodes - idx - 1) * sizeof(g->nodes[0]));
    g->n_nodes--;
    for (int v = 0; v < g->n_values; v++) {
        if (g->values[v].producer == idx)
            g->values[v].producer = -1;
        else if (g->values[v].producer > idx)
            g->values[v].producer--;
    }
}

int qc_graph_value_uses(const struct qc_graph *g, int v)
{
    int uses = g->values[v].is_output ? 1 : 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            uses += g->nodes[i].in[j] == v;
    return uses;
}

enum qc_status qc_graph_add_prop(struct qc_graph *g, const char *key, const char *value)
{
    struct qc_prop *p = qc_realloc(g->props, (size_t)(g->n_props + 1) * sizeof(*p));
    if (!p)
        return QC_ERR_NOMEM;
    g->props = p;
    p[g->n_props].key = qc_strdup(key);
    p[g->n_props].value = qc_strdup(value);
    g->n_props++;
    if (!p[g->n_props - 1].key || !p[g->n_props - 1].value)
        return QC_ERR_NOMEM;
    return QC_OK;
}

enum qc_status qc_graph_add_opset(struct qc_graph *g, const char *domain, int64_t version)
{
    struct qc_opset_import *o = qc_realloc(g->opsets, (size_t)(g->n_opsets + 1) * sizeof(*o));
    if (!o)
        return QC_ERR_NOMEM;
    g->opsets = o;
    o[g->n_opsets].domain = qc_strdup(domain);
    o[g->n_opsets].version = version;
    g->n_opsets++;
    if (!o[g->n_opsets - 1].domain)
        return QC_ERR_NOMEM;
    if (domain[0] == '\0' || strcmp(domain, "ai.onnx") == 0)
        g->opset = version;
    return QC_OK;
}

const char *qc_node_label(const struct qc_graph *g, const struct qc_node *n)
{
    if (n->name && n->name[0])
        return n->name;
    if (n->n_out > 0 && n->out[0] >= 0)
        return g->values[n->out[0]].name;
    return "(unnamed)";
}

int qc_graph_find_node(const struct qc_graph *g, const char *label)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(qc_node_label(g, &g->nodes[i]), label) == 0)
            return i;
    return -1;
}

/* Sets producers; a value produced twice, or both produced and an
 * initializer/graph input, is malformed. */
static enum qc_status link_producers(struct qc_graph *g)
{
    for (int v = 0; v < g->n_values; v++)
        g->values[v].producer = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        struct qc_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_out; j++) {
            struct qc_value *v;
            if (n->out[j] < 0 || g->values[n->out[j]].name[0] == '\0')
                continue;   /* omitted optional output */
            v = &g->values[n->out[j]];
            if (v->producer >= 0 || v->init || v->is_input) {
                qc_log_error("%s: node '%s' (%s): output '%s' is already defined", g->path,
                             qc_node_label(g, n), n->op_type, v->name);
                return QC_ERR_ONNX;
            }
            v->producer = i;
        }
    }
    return QC_OK;
}

/* Kahn's algorithm, stable with respect to file order.  Reorders g->nodes
 * and fixes producers. */
static enum qc_status topo_sort(struct qc_graph *g)
{
    enum qc_status st = QC_ERR_NOMEM;
    int n = g->n_nodes;
    int *pending = qc_calloc((size_t)n + 1, sizeof(int));   /* unresolved inputs per node */
    int *order = qc_calloc((size_t)n + 1, sizeof(int));
    bool *done = qc_calloc((size_t)g->n_values + 1, sizeof(bool));
    struct qc_node *sorted = NULL;
    int n_done = 0;

    if (!pending || !order || !done)
        goto out;
    for (int v = 0; v < g->n_values; v++)
        done[v] = g->values[v].producer < 0;
    for (int i = 0; i < n; i++) {
        const struct qc_node *nd = &g->nodes[i];
        for (int j = 0; j < nd->n_in; j++) {
            int v = nd->in[j];
            if (v < 0)
                continue;
            if (g->values[v].producer < 0 && !g->values[v].init && !g->values[v].is_input) {
                qc_log_error("%s: node '%s' (%s): input '%s' is not produced by any node, "
                             "initializer or graph input", g->path, qc_node_label(g, nd),
                             nd->op_type, g->values[v].name);
                st = QC_ERR_ONNX;
                goto out;
            }
        }
    }
    /* repeated passes in file order: O(n^2) worst case, fine for CNN sizes */
    for (bool progress = true; progress && n_done < n;) {
        progress = false;
        for (int i = 0; i < n; i++) {
            const struct qc_node *nd = &g->nodes[i];
            bool ready = true;
            if (pending[i] < 0)
                continue;
            for (int j = 0; j < nd->n_in && ready; j++)
                ready = nd->in[j] < 0 || done[nd->in[j]];
            if (!ready)
                continue;
            pending[i] = -1;
            order[n_done++] = i;
            for (int j = 0; j < nd->n_out; j++)
                if (nd->out[j] >= 0)
                    done[nd->out[j]] = true;
            progress = true;
        }
    }
    if (n_done < n) {
        for (int i = 0; i < n; i++) {
            if (pending[i] >= 0) {
                qc_log_error("%s: node '%s' (%s) is part of a cycle", g->path,
                             qc_node_label(g, &g->nodes[i]), g->nodes[i].op_type);
                break;
            }
        }
        st = QC_ERR_ONNX;
        goto out;
    }
    sorted = qc_malloc(((size_t)n + 1) * sizeof(*sorted));
    if (!sorted)
        goto out;
    for (int i = 0; i < n; i++)
        sorted[i] = g->nodes[order[i]];
    if (n > 0)
        memcpy(g->nodes, sorted, (size_t)n * sizeof(*sorted));
    st = link_producers(g);
out:
    qc_free(sorted);
    qc_free(pending);
    qc_free(order);
    qc_free(done);
    return st;
}

/* A value listed twice in graph.input would get two buffers in a plan. */
static enum qc_status check_unique_inputs(const struct qc_graph *g)
{
    bool *seen = qc_calloc((size_t)g->n_values + 1, sizeof(bool));
    enum qc_status st = QC_OK;
    if (!seen)
        return QC_ERR_NOMEM;
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        if (seen[v]) {
            qc_log_error("%s: graph input '%s' is listed twice", g->path, g->values[v].name);
            st = QC_ERR_ONNX;
            break;
        }
        seen[v] = true;
    }
    qc_free(seen);
    return st;
}

enum qc_status qc_graph_link(struct qc_graph *g)
{
    enum qc_status st;
    if (!g->path) {
        g->path = qc_strdup("(model)");
        if (!g->path)
            return QC_ERR_NOMEM;
    }
    if (g->opset == 0) {
        qc_log_error("%s: no opset import for the default ONNX domain", g->path);
        return QC_ERR_ONNX;
    }
    if (g->opset < QC_OPSET_MIN || g->opset > QC_OPSET_MAX) {
        qc_log_error("%s: opset %lld is not supported (qatconv reads opsets %d to %d)", g->path,
                     (long long)g->opset, QC_OPSET_MIN, QC_OPSET_MAX);
        return QC_ERR_UNSUPPORTED;
    }
    if (g->n_outputs == 0) {
        qc_log_error("%s: the graph has no outputs", g->path);
        return QC_ERR_ONNX;
    }
    st = check_unique_inputs(g);
    if (st != QC_OK)
        return st;
    st = link_producers(g);
    if (st != QC_OK)
        return st;
    st = topo_sort(g);
    if (st != QC_OK)
        return st;
    for (int i = 0; i < g->n_outputs; i++) {
        const struct qc_value *v = &g->values[g->outputs[i]];
        if (v->producer < 0 && !v->init && !v->is_input) {
            qc_log_error("%s: graph output '%s' is not produced by any node", g->path, v->name);
            return QC_ERR_ONNX;
        }
    }
    return QC_OK;
}

/* Inputs that are weights rather than shape data: float initializers. */
int64_t qc_node_param_count(const struct qc_graph *g, const struct qc_node *n)
{
    int64_t total = 0;
    for (int j = 0; j < n->n_in; j++) {
        const struct qc_value *v;
        if (n->in[j] < 0)
            continue;
        v = &g->values[n->in[j]];
        if (v->init && v->init->dtype == QC_DTYPE_F32)
            total += qc_tensor_nelem(v->init);
    }
    return total;
}

void qc_graph_drop_initializer(struct qc_graph *g, int v)
{
    qc_tensor_free(g->values[v].init);
    g->values[v].init = NULL;
    for (int i = 0; i < g->n_inputs; i++) {
        if (g->inputs[i] != v)
            continue;
        memmove(g->inputs + i, g->inputs + i + 1, (size_t)(g->n_inputs - i - 1) * sizeof(int));
        g->n_inputs--;
        break;
    }
    g->values[v].is_input = false;
}
