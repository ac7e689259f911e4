/*
 * bind.h - a graph bound to the op table (bind.c).
 */
#ifndef QATCONV_SRC_OPS_BIND_H
#define QATCONV_SRC_OPS_BIND_H

#include "ir/graph.h"

/* Validates and prepares a freshly loaded or edited graph:
 *  - the structural checks and the topological sort of qc_graph_link;
 *  - op kinds: every node whose op (or domain, or opset) qatconv does not
 *    support is listed in ONE error line, QC_ERR_UNSUPPORTED;
 *  - input/output counts and attribute parsing through each op's parse hook.
 * Idempotent. */
enum qc_status qc_graph_finalize(struct qc_graph *g);

#endif
