/*
 * opset.h - raising a graph's default-domain opset (opset.c).
 *
 * ONNX changed the signature or the meaning of some ops between opsets:
 * attributes became inputs (Clip min/max at 11, Pad pads/value at 11, Slice
 * starts/ends/axes at 10, Dropout ratio at 12, Squeeze/Unsqueeze/ReduceSum
 * axes at 13, ReduceMean axes at 18), Softmax/LogSoftmax stopped coercing
 * their input to 2-D at 13, Upsample became Resize at 10 and Resize took a
 * roi input and explicit coordinate modes at 11, BatchNormalization lost
 * `spatial` at 9 and its saved statistics outputs at 14.  Only bumping the
 * opset number would make such a model compute something else, or nothing,
 * in ONNX Runtime.  qc_opset_upgrade rewrites every default-domain node whose
 * form changed between the graph's opset and the target so that the model
 * computes the same outputs, then sets the opset import, raises the IR
 * version to the one the opset needs and re-finalizes the graph.  Nodes of
 * other domains are left as they are.  The rewrites look at the node's actual
 * form (an attribute still present, an input still missing), so nodes that
 * an export already wrote in the target form pass through unchanged.
 */
#ifndef QATCONV_SRC_EXPORT_OPSET_H
#define QATCONV_SRC_EXPORT_OPSET_H

#include <stdint.h>

#include "ir/graph.h"
#include "util/qc.h"

/* The newest opset the rewrite rules know. */
#define QC_OPSET_UPGRADE_MAX 23

/* Rewrites g for opset `target` (>= g->opset, <= QC_OPSET_UPGRADE_MAX) and
 * finalizes it (ops/bind.h).  target <= g->opset: nothing to do (QC_OK).
 * A node that has no equivalent at the target (BatchNormalization
 * spatial=0, a consumed Dropout mask crossing opset 10, ...) is one error
 * naming the node and op, QC_ERR_UNSUPPORTED, and g is left partly rewritten
 * (the caller discards it). */
enum qc_status qc_opset_upgrade(struct qc_graph *g, int64_t target);

/* The same rewrite without the final qc_graph_finalize: existing nodes and
 * values keep their indices (new ones are appended), so a caller that holds
 * node or value indices (an export walking a plan) can go on editing and
 * finalize once at the end.  Nodes appended by the caller before this call
 * may be unbound (kind -1): the rules go by op_type. */
enum qc_status qc_opset_rewrite(struct qc_graph *g, int64_t target);

/* The smallest IR version a model at `opset` may declare. */
int64_t qc_opset_min_ir(int64_t opset);

#endif
