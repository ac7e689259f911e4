/*
 * recipe_match.h - which recipe section configures which graph node
 * (qatconv-recipe(5), NODE SECTIONS).  The first that exists: a section named after the node, after
 * its first output, the best wildcard section (shell patterns * ? [..]
 * matched against the node name or output name; an exact name wins over a
 * pattern, a longer pattern over a shorter one), then the default section of
 * the node's kind: [<onnx>:Conv_def] for Conv/ConvTranspose, [<onnx>:Fc_def]
 * for Gemm and MatMul, [<onnx>:BatchNorm_def] for BatchNormalization,
 * [<onnx>:Relu_def] for Relu/Clip (any <onnx> prefix, as N2D2 names the
 * default blocks after its ONNX section).
 */
#ifndef QATCONV_SRC_RECIPE_MATCH_H
#define QATCONV_SRC_RECIPE_MATCH_H

#include <stdbool.h>

#include "ir/graph.h"
#include "util/qc.h"
#include "recipe.h"

/* The section name, or NULL when none applies. */
const char *qc_recipe_node_section(const struct qc_recipe *r, const struct qc_graph *g,
                                   const struct qc_node *n);

/* Every node section must configure some node: one that is a base or a
 * ConfigSection target, a kind default (…:Conv_def …) or matches a node by
 * name, output or pattern is fine; any other is reported with file:line and
 * the nearest node name ("did you mean"), as an error (QC_ERR_RECIPE) or,
 * lenient, a warning. */
enum qc_status qc_recipe_check_sections(const struct qc_recipe *r, const struct qc_graph *g,
                                        bool lenient);

#endif
