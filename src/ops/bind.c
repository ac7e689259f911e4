/*
 * bind.c - binds a graph to the op table: resolves every node's op kind
 * (ops.def) and checks its input/output counts and attributes through the
 * op's parse hook.  The IR below (ir/graph.c) knows nothing of ops; this
 * is the one place where a graph meets the table (see bind.h).
 */
#include <config.h>

#include "bind.h"

#include <stdio.h>
#include <string.h>

#include "op.h"
#include "util/log.h"

static bool is_default_domain(const char *d)
{
    return !d || d[0] == '\0' || strcmp(d, "ai.onnx") == 0;
}

/* Appends "label (Op)" to a growing message buffer. */
static void list_append(char *buf, size_t len, size_t *pos, const char *item)
{
    int w;
    if (*pos >= len)
        return;
    w = snprintf(buf + *pos, len - *pos, "%s%s", *pos ? ", " : "", item);
    if (w > 0)
        *pos += (size_t)w;
}

/* Resolves op kinds; every unsupported node is named in one error line. */
static enum qc_status resolve_ops(struct qc_graph *g)
{
    char msg[4096];
    size_t pos = 0;
    int bad = 0;

    msg[0] = '\0';
    for (int i = 0; i < g->n_nodes; i++) {
        struct qc_node *n = &g->nodes[i];
        char item[512];
        n->kind = is_default_domain(n->domain) ? qc_op_lookup(n->op_type) : -1;
        if (n->kind >= 0)
            continue;
        if (is_default_domain(n->domain))
            snprintf(item, sizeof(item), "'%s' (%s, opset %lld)", qc_node_label(g, n),
                     n->op_type, (long long)g->opset);
        else
            snprintf(item, sizeof(item), "'%s' (%s.%s)", qc_node_label(g, n), n->domain,
                     n->op_type);
        list_append(msg, sizeof(msg), &pos, item);
        bad++;
    }
    if (bad) {
        qc_log_error("%s: %d unsupported node%s: %s", g->path, bad, bad > 1 ? "s" : "", msg);
        return QC_ERR_UNSUPPORTED;
    }
    return QC_OK;
}

/* The first required input left empty (""), or -1.  The first n_in_min
 * inputs of every op are required, and every input of a variadic op (Concat,
 * Sum); the optional ones may be empty to skip them. */
static int empty_required_input(const struct qc_node *n, const struct qc_op_def *d)
{
    int req = d->n_in_max > 8 ? n->n_in : d->n_in_min;
    for (int i = 0; i < req && i < n->n_in; i++)
        if (n->in[i] < 0)
            return i;
    return -1;
}

/* Input/output counts and attribute parsing; all failures are reported
 * before returning the first status. */
static enum qc_status parse_nodes(struct qc_graph *g)
{
    enum qc_status first = QC_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        struct qc_node *n = &g->nodes[i];
        const struct qc_op_def *d = qc_op_get((enum qc_op_kind)n->kind);
        const char *label = qc_node_label(g, n);
        enum qc_status st = QC_OK;
        char where[512];
        int k;

        snprintf(where, sizeof(where), "%s: %s '%s'", g->path, n->op_type, label);
        if (n->n_in < d->n_in_min || n->n_in > d->n_in_max) {
            qc_log_error("%s: %d inputs, expected %d..%d", where, n->n_in, d->n_in_min,
                         d->n_in_max);
            st = QC_ERR_ONNX;
        } else if (n->n_out < d->n_out_min || n->n_out > d->n_out_max) {
            qc_log_error("%s: %d outputs, expected %d..%d", where, n->n_out, d->n_out_min,
                         d->n_out_max);
            st = QC_ERR_ONNX;
        } else if ((k = empty_required_input(n, d)) >= 0) {
            qc_log_error("%s: input %d is empty, but the op requires it", where, k);
            st = QC_ERR_ONNX;
        } else if (d->parse) {
            st = d->parse(n, g->opset, where);
        }
        if (st != QC_OK && first == QC_OK)
            first = st;
    }
    return first;
}

enum qc_status qc_graph_finalize(struct qc_graph *g)
{
    enum qc_status st = qc_graph_link(g);
    if (st != QC_OK)
        return st;
    st = resolve_ops(g);
    if (st != QC_OK)
        return st;
    return parse_nodes(g);
}
