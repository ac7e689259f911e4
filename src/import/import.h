/*
 * import.h - import normalization: a third-party ONNX graph made into the
 * form the rest of qatconv trains, quantizes and exports, in one place
 * between loading and planning (qc_import_load; docs/ARCHITECTURE.md,
 * "Import normalization").
 *
 * What the pass changes (everything else is kept as read, names included):
 *   - constant subgraphs (Constant, Identity, Reshape, Flatten, Transpose,
 *     Squeeze, Unsqueeze, Cast, Concat, Gather, Slice, Shape of a constant,
 *     ConstantOfShape, DequantizeLinear) whose float result feeds a
 *     parameter (a layer's weight or bias, a BatchNorm parameter or
 *     statistic, the constant operand of an Add or Mul right after a layer)
 *     are evaluated once and become initializers under the same value name;
 *     the producers nobody else reads are removed, and so are initializers
 *     only they read (fold_const.c);
 *   - a constant per-channel Mul right after a Conv, Gemm or MatMul is folded
 *     into the layer's weight (and bias); a constant per-channel Add right
 *     after a Conv, ConvTranspose or Gemm becomes (part of) the layer's bias,
 *     and MatMul + Add becomes a Gemm when the MatMul's input is known to be
 *     2-D; the same Mul/Add after a BatchNormalization scale and shift its
 *     scale and bias; the layer takes over the output name of the removed
 *     Mul/Add (fold_layers.c);
 *   - a BatchNormalization's trailing optional outputs (running/saved mean and
 *     variance of opset 7 and 9 exports) that nothing reads are dropped.
 * Initializers the pass creates in an IR < 4 model are also listed as graph
 * inputs, as that IR requires.  An already-quantized model (QuantizeLinear,
 * DequantizeLinear of an activation, ConvInteger, MatMulInteger: qatconv's
 * own exports among them) keeps its quantization ops and layers as they are.
 * A weight-only quantized model (DequantizeLinear of stored integer weights,
 * no activation quantized) has its weights dequantized into float parameters,
 * which training and recipes need, unless the loader is asked to keep them
 * (qc_import_load_with): the integer rewrite reads their levels.
 */
#ifndef QATCONV_SRC_IMPORT_IMPORT_H
#define QATCONV_SRC_IMPORT_IMPORT_H

#include <stdbool.h>

#include "ir/graph.h"
#include "util/qc.h"

/* What one normalization did. */
struct qc_import_stats {
    int n_folded;     /* constant values turned into initializers          */
    int n_removed;    /* constant-subgraph nodes removed                   */
    int n_scale;      /* Mul(const) folded into the layer before it        */
    int n_bias;       /* Add(const) folded into the layer's bias           */
    int n_gemm;       /* of these, MatMul + Add turned into a Gemm         */
    int n_bn_outputs; /* unused BatchNormalization outputs dropped         */
    int n_dequantize; /* DequantizeLinear of stored weights folded         */
};

/* Reads path (qc_onnx_parse_file), refusing a QOperator model (QLinearConv,
 * QLinearMatMul, QGemm, DynamicQuantizeLinear ...) with one line saying what
 * the file is, then normalizes it (qc_import_normalize). */
enum qc_status qc_import_load(const char *path, struct qc_graph **out);

/* qc_import_load with the choice for a weight-only quantized model:
 * keep_weight_dq keeps its weight DequantizeLinear nodes (and its layers as
 * read), as for any QDQ model.  stats (may be NULL) receives what the
 * normalization did. */
enum qc_status qc_import_load_with(const char *path, bool keep_weight_dq,
                                   struct qc_import_stats *stats, struct qc_graph **out);

/* The normalization of a finalized graph, described above; g is finalized
 * again on return.  keep_weight_dq: as for qc_import_load_with.  stats may be
 * NULL. */
enum qc_status qc_import_normalize(struct qc_graph *g, bool keep_weight_dq,
                                   struct qc_import_stats *stats);

/* The first node that makes g an already-quantized model (QuantizeLinear,
 * DequantizeLinear of a value that is not an initializer, ConvInteger,
 * MatMulInteger), or -1. */
int qc_import_quantized_node(const struct qc_graph *g);

/* QC_ERR_UNSUPPORTED with one line when g is already quantized: a recipe
 * cannot train or quantize it again ("pass the float model it came from");
 * QC_OK otherwise. */
enum qc_status qc_import_check_trainable(const struct qc_graph *g);

#endif
