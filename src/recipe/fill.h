/*
 * fill.h - ONNX_init=0: the weights start from N2D2's fillers instead of the
 * ONNX initializers (qatconv-recipe(5), WeightsFiller).
 */
#ifndef QATCONV_SRC_RECIPE_FILL_H
#define QATCONV_SRC_RECIPE_FILL_H

#include <stdint.h>

#include "ir/graph.h"
#include "recipe.h"
#include "util/qc.h"

/* With ONNX_init=0 in the recipe's ONNX section: every Conv, ConvTranspose,
 * Gemm and MatMul weight from its node section's WeightsFiller (else the
 * global section's, else N2D2's default NormalFiller Mean 0 StdDev 0.05), its
 * bias from BiasFiller likewise, BatchNormalization scale 1, bias 0, mean 0,
 * variance 1; one generator seeded by `seed` draws in node order.  With
 * ONNX_init=1 (the default) nothing changes.  *n_filled: tensors written. */
enum qc_status qc_recipe_fill_weights(const struct qc_recipe *r, struct qc_graph *g, uint64_t seed,
                                      int *n_filled);

#endif
