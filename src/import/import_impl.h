/*
 * import_impl.h - what the files of src/import/ share: the two folding
 * steps of qc_import_normalize and the graph edits both make.
 */
#ifndef QATCONV_SRC_IMPORT_IMPORT_IMPL_H
#define QATCONV_SRC_IMPORT_IMPORT_IMPL_H

#include <stdbool.h>

#include "import.h"

/* fold_const.c: constant subgraphs feeding parameters become initializers
 * (skip_dq: a quantized model's DequantizeLinear nodes stay). */
enum qc_status qc_import_fold_constants(struct qc_graph *g, bool skip_dq,
                                        struct qc_import_stats *stats);
/* fold_layers.c: a constant Mul/Add after a layer folded into it, unused
 * BatchNormalization outputs dropped. */
enum qc_status qc_import_fold_layers(struct qc_graph *g, struct qc_import_stats *stats);

/* New array: per value, how many node inputs read it (+1 for a graph output). */
enum qc_status qc_import_count_uses(const struct qc_graph *g, int **uses);
/* Value v has just become an initializer: an IR < 4 model lists it among the
 * graph inputs too (declared with the initializer's type and shape). */
enum qc_status qc_import_list_input(struct qc_graph *g, int v);
/* Replaces initializer v's tensor by t (owned; the old one is freed) and
 * updates its declared type and shape. */
void qc_import_set_init(struct qc_graph *g, int v, struct qc_tensor *t);

#endif
