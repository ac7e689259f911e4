/*
 * graph.h - the intermediate representation of an ONNX model.
 *
 * A struct qc_graph holds values (named tensors: graph inputs, initializers,
 * node outputs) and nodes, addressed by index.  After qc_graph_finalize()
 * nodes are in topological order, every node input refers to a defined value
 * (or is -1 for an omitted optional input), every node's op kind is resolved
 * against the op table and its attributes are parsed into node->params.
 *
 * The graph keeps everything needed to write the model back unchanged: the
 * original op_type/domain/attributes of every node, declared input/output
 * types with symbolic dims, opset imports, producer, doc strings and metadata
 * properties.  Shape-subgraph folding and shape inference do not modify the
 * graph; they happen per batch size in a plan (plan.h).
 *
 * Nodes are addressed by name, or, when the name is empty, by their first
 * output name (qc_node_label).
 */
#ifndef QATCONV_SRC_GRAPH_H
#define QATCONV_SRC_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "attr.h"
#include "util/qc.h"
#include "tensor.h"

struct qc_value {
    char             *name;
    enum qc_dtype     dtype;                 /* declared type, UNDEFINED if none   */
    int file_dtype;                          /* QC_FILE_DTYPE_F16/_BF16: declared so
                                                in the file, held as float32 (the
                                                writer declares it again); 0: dtype */
    bool              has_shape;             /* declared shape present             */
    struct qc_shape   shape;                 /* declared dims, -1 where unknown    */
    char             *dim_param[QC_MAX_DIMS];/* symbolic dim names or NULL (owned) */
    struct qc_tensor *init;                  /* initializer data (owned) or NULL   */
    int               producer;              /* node index, -1 if none             */
    bool              is_input;              /* listed in graph.input              */
    bool              is_output;             /* listed in graph.output             */
};

struct qc_node {
    char           *name;                    /* may be "" (owned)                  */
    char           *op_type;                 /* as in the file (owned)             */
    char           *domain;                  /* "" = default domain (owned)        */
    char           *doc_string;              /* owned, may be NULL                 */
    int             kind;                    /* enum qc_op_kind, -1 if unknown     */
    int             n_in, n_out;
    int            *in;                      /* value indices, -1 = omitted        */
    int            *out;                     /* value indices                      */
    struct qc_attrs attrs;                   /* as read from the file              */
    void           *params;                  /* parsed by the op's parse hook; freed
                                                with qc_free                        */
};

struct qc_opset_import {
    char   *domain;                          /* "" = ai.onnx                       */
    int64_t version;
};

struct qc_prop {
    char *key;
    char *value;
};

struct qc_graph {
    char *path;                              /* file it came from (for messages)   */

    int              n_values, cap_values;
    struct qc_value *values;
    int              n_nodes, cap_nodes;
    struct qc_node  *nodes;
    int              n_inputs, n_outputs;
    int             *inputs;                 /* graph.input order (value indices)  */
    int             *outputs;                /* graph.output order                 */

    /* model metadata, written back as read */
    int64_t                 ir_version;
    int64_t                 opset;           /* default-domain opset version       */
    int                     n_opsets;
    struct qc_opset_import *opsets;
    char                   *producer_name, *producer_version, *domain, *doc_string;
    int64_t                 model_version;
    char                   *graph_name, *graph_doc;
    int                     n_props;
    struct qc_prop         *props;           /* metadata_props                     */
};

enum qc_status qc_graph_new(struct qc_graph **out);
void qc_graph_free(struct qc_graph *g);

/* Index of the value called name, or -1. */
int qc_graph_find_value(const struct qc_graph *g, const char *name);
/* Adding a value or a node (qc_graph_value, qc_graph_add_node, _op,
 * _initializer) may move g->values and g->nodes: keep indices, not pointers,
 * across those calls (sanitizer builds move the arrays on every addition). */

/* Index of the value called name, created (undefined dtype, no producer) if
 * absent. */
enum qc_status qc_graph_value(struct qc_graph *g, const char *name, int *idx);
/* Appends an empty node (fields zeroed, kind -1, producer links set by
 * finalize).  *idx receives its index.  The caller fills it in; strings and
 * arrays given to the node become owned by the graph. */
enum qc_status qc_graph_add_node(struct qc_graph *g, int *idx);
/* A value name not used yet in g, built from base and suffix ("conv1.weight"
 * + "_quantized", then "_quantized_2" ...); written into buf. */
const char *qc_graph_unique_name(const struct qc_graph *g, const char *base, const char *suffix,
                                 char *buf, size_t len);
/* Adds an initializer value named `name` (must be new) holding t (takes
 * ownership of t, also on failure); *idx receives the value index. */
enum qc_status qc_graph_add_initializer(struct qc_graph *g, const char *name,
                                        struct qc_tensor *t, int *idx);
/* Appends node op_type(in[0..n_in)) -> out[0..n_out) in the default domain;
 * names are copied; *idx receives the node index (may be NULL).  Call
 * qc_graph_finalize() (ops/bind.h) after editing to restore topological order. */
enum qc_status qc_graph_add_op(struct qc_graph *g, const char *op_type, const char *name,
                               const int *in, int n_in, const int *out, int n_out, int *idx);

/* Removes node idx (its outputs lose their producer); indices of later
 * nodes shift down by one.  Call qc_graph_finalize() (ops/bind.h) after editing. */
void qc_graph_remove_node(struct qc_graph *g, int idx);
/* Frees value v's initializer data and takes v off graph.input (IR < 4
 * lists initializers there too); the value itself stays, unread. */
void qc_graph_drop_initializer(struct qc_graph *g, int v);
/* Number of node inputs that read value v (plus 1 if it is a graph output). */
int qc_graph_value_uses(const struct qc_graph *g, int v);

/* Appends a metadata property / opset import (copies the strings). */
enum qc_status qc_graph_add_prop(struct qc_graph *g, const char *key, const char *value);
enum qc_status qc_graph_add_opset(struct qc_graph *g, const char *domain, int64_t version);

/* The structural part of preparing a freshly loaded or edited graph: the
 * default-domain opset is one qatconv reads, there are outputs, no graph
 * input is listed twice, producers are linked and the nodes sorted
 * topologically (a cycle or an input nobody defines is QC_ERR_ONNX naming
 * the node and value).  Binding the nodes to the op table is
 * qc_graph_finalize (ops/bind.h), which calls this first.  Idempotent. */
enum qc_status qc_graph_link(struct qc_graph *g);

/* Node name, or its first output name when the name is empty. */
const char *qc_node_label(const struct qc_graph *g, const struct qc_node *n);
/* Node index whose label is `label`, or -1. */
int qc_graph_find_node(const struct qc_graph *g, const char *label);

/* Number of parameters (initializer elements) a node reads, counting only
 * float initializers that are not shape-like (weights, biases, BN stats). */
int64_t qc_node_param_count(const struct qc_graph *g, const struct qc_node *n);

#endif
