/*
 * audit.h - what a recipe's N2D2 keys do here (qatconv-recipe(5), N2D2
 * FIDELITY): the check of the [soft1]/[soft1.Target] sections against the
 * model, one warning per accepted key that has no effect (and why), the
 * global DefaultModel as a device and the ONNX section's ONNX_init.
 */
#ifndef QATCONV_SRC_RECIPE_AUDIT_H
#define QATCONV_SRC_RECIPE_AUDIT_H

#include <stdbool.h>

#include "ir/graph.h"
#include "recipe.h"
#include "util/qc.h"

/* The logits the loss is taken on: the first graph output, or the input of a
 * final Softmax/LogSoftmax (the training plan's rule); -1 when none. */
int qc_recipe_logits_value(const struct qc_graph *g);

/* Checks the Softmax section's Input (one error naming file:line when it
 * names no node or value of g, or one other than the logits), its NbOutputs,
 * the [ONNX] Input and DefaultModel, and prints one warning per key that has
 * no effect here. */
enum qc_status qc_recipe_audit(const struct qc_recipe *r, const struct qc_graph *g);

/* DefaultModel into *device: "cpu" (Frame), "cuda" (Frame_CUDA) or NULL when
 * absent; another value is an error naming file:line. */
enum qc_status qc_recipe_default_device(const struct qc_recipe *r, const char **device);

/* ONNX_init of the ONNX section (1 when absent or without an ONNX section). */
bool qc_recipe_onnx_init(const struct qc_recipe *r);

#endif
