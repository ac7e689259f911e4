/*
 * qin.h - layer-input quantizers (qatconv-recipe(5), QIn keys): the graph rewrite
 * that gives a quantized layer's data input its own activation quantizer.
 *
 * A Conv, ConvTranspose, Gemm or MatMul whose recipe section sets QIn=SAT|LSQ
 * reads its data input (input 0) through an Identity node inserted in front of
 * it, named "<layer>/QIn" (its output too), before anything plans the graph.
 * qspec.c gives that Identity the activation quantizer the QIn.* keys describe,
 * so the plan, the training, the fake export (Q/DQ on the Identity's output)
 * and the int export (which copies records through Identity) need no new path:
 * the quantizer is the layer's alone, while the producer's other readers, or
 * the graph input itself, stay float.  After training, qc_qin_drop removes the
 * Identity nodes (the fake export's QuantizeLinear then reads the producer or
 * the graph input directly, where the int export finds its input quantizer).
 */
#ifndef QATCONV_SRC_QUANT_QIN_H
#define QATCONV_SRC_QUANT_QIN_H

#include <stdbool.h>

#include "ir/graph.h"
#include "recipe/recipe.h"
#include "util/qc.h"

/* The suffix of the inserted Identity's name ("<layer>/QIn"). */
#define QC_QIN_SUFFIX "/QIn"

/* Inserts the Identity of every layer whose section sets QIn to SAT or LSQ and
 * re-finalizes g; *n (may be NULL) receives how many.  Errors name file:line:
 * QIn in the own section of a node that is not a Conv/ConvTranspose/Gemm/MatMul,
 * or of a layer whose input 0 is a constant (no data input), a QIn value other
 * than SAT, LSQ or none.  Pattern and kind default sections apply QIn only
 * where it fits (as QWeight). */
enum qc_status qc_qin_insert(struct qc_graph *g, const struct qc_recipe *r, int *n);

/* Whether node i is an Identity qc_qin_insert put in front of a layer. */
bool qc_qin_is_inserted(const struct qc_graph *g, int i);

/* The inserted Identity in front of layer node `layer`, or -1. */
int qc_qin_of_layer(const struct qc_graph *g, int layer);

/* Removes every inserted Identity (its readers read its input instead) and
 * re-finalizes g when one went. */
enum qc_status qc_qin_drop(struct qc_graph *g);

#endif
