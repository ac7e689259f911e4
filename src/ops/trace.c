/*
 * trace.c - qc_op_data_source: the node that computes a value, seen through the
 * ops that only move, select or pool values.  --recipe-template uses it to find
 * what a layer reads; the int export, to name that node when a layer reads a
 * value no activation quantizer made integer.
 */
#include <config.h>

#include "trace.h"

#include "op.h"

int qc_op_data_source(const struct qc_graph *g, int v)
{
    for (int hops = 0; v >= 0 && hops < g->n_nodes; hops++) {
        int pi = g->values[v].producer;
        const struct qc_node *n = pi >= 0 ? &g->nodes[pi] : NULL;
        if (!n)
            return -1;
        switch (n->kind) {
        case QC_OP_MAXPOOL:
        case QC_OP_AVGPOOL:
        case QC_OP_GLOBAL_AVGPOOL:
        case QC_OP_GLOBAL_MAXPOOL:
        case QC_OP_FLATTEN:
        case QC_OP_RESHAPE:
        case QC_OP_SQUEEZE:
        case QC_OP_UNSQUEEZE:
        case QC_OP_TRANSPOSE:
        case QC_OP_IDENTITY:
        case QC_OP_DROPOUT:
            v = n->n_in > 0 ? n->in[0] : -1;
            break;
        default:
            return pi;
        }
    }
    return -1;
}
