/*
 * trace.h - following a value back through the ops that keep values (pooling,
 * layout ops, Identity/Dropout) to the node that computes it.
 */
#ifndef QC_OPS_TRACE_H
#define QC_OPS_TRACE_H

#include "ir/graph.h"

/* The node whose output value v is, read through MaxPool/AveragePool (and their
 * global forms), Flatten/Reshape/Squeeze/Unsqueeze/Transpose and Identity/Dropout
 * (each one's data input 0); -1 for the graph input or a constant. */
int qc_op_data_source(const struct qc_graph *g, int v);

#endif
