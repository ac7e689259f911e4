/*
 * inputs.h - the model's data input as it is declared, bound to the images
 * the data pipeline feeds, and put back as declared before the model is
 * written.
 *
 * Models declare their data input (the first runtime graph input) in forms
 * a training run cannot take as they are:
 *   - a fixed batch of 1 ([1,3,224,224]: CNTK, Caffe2, Chainer, fixed-shape
 *     PyTorch exports): qc_inputs_bind makes dim 0 of the inputs and outputs
 *     that have it symbolic ("N") and rewrites every Reshape shape constant
 *     that bakes the batch in (its first entry is 1 and the data it reshapes
 *     carries the batch in dim 0: the entry becomes 0, "copy the input's dim
 *     0", or -1 when the node has allowzero=1).  A plan at batch 2 then checks
 *     that every value that carried the batch at batch 1 carries it at 2;
 *     a node that cannot be rebatched is one error naming it.
 *   - symbolic sizes past the batch axis (paddle2onnx, dynamic axes): bound
 *     to the data's geometry (the dims get a size and keep their name, so
 *     the written model stays symbolic).
 *   - channels last ([N,H,W,C], tf2onnx / keras2onnx, where a Transpose perm
 *     [0,3,1,2] follows): the data pipeline feeds NHWC (qc_inputs_layout).
 *   - rank 3 ([N,C,W], 1-D convolutions): images of height 1, the same
 *     memory as NCHW ([N,W,C] when channels last).
 * qc_inputs_unbind puts the declared shapes and the Reshape constants back
 * (with dynamic_batch it keeps the symbolic batch and the rewritten
 * constants); qc_inputs_write_dtypes decides the element types of the
 * written model for float16 / bfloat16 models (--keep-dtype).
 */
#ifndef QATCONV_SRC_PLAN_INPUTS_H
#define QATCONV_SRC_PLAN_INPUTS_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/graph.h"
#include "recipe/recipe.h"
#include "util/qc.h"

/* The sizes a symbolic height/width and channel count take when no recipe
 * gives them (the recipe template, a write-back without a recipe). */
#define QC_INPUTS_DEFAULT_SIZE 224
#define QC_INPUTS_DEFAULT_CHANNELS 3

enum qc_input_layout {
    QC_INPUT_CHANNELS_FIRST = 0, /* [N,C,H,W], or [N,C,W] */
    QC_INPUT_CHANNELS_LAST,      /* [N,H,W,C], or [N,W,C] */
};

/* Value index of the data input (the first graph input that is not an
 * initializer), or -1. */
int qc_inputs_data(const struct qc_graph *g);

/* The layout of the data input: the recipe's `Transpose` key of its ONNX
 * section (a section with Type=ONNX; N2D2's key) when present (1: channels
 * last), else channels last when the input is [N,H,W,C] with C 1, 3 or 4 and
 * every reader of it is a Transpose with perm [0,3,1,2].  r may be NULL. */
enum qc_status qc_inputs_layout(const struct qc_graph *g, const struct qc_recipe *r,
                                enum qc_input_layout *layout);

/* The data input's declared channels, height and width for `layout` (0
 * where a dim is symbolic and unbound; height 1 for rank 3).  False when it
 * has no rank 3 or 4 data input. */
bool qc_inputs_geometry(const struct qc_graph *g, enum qc_input_layout layout, int64_t *c,
                        int64_t *h, int64_t *w);

struct qc_input_binding;

/* Binds the data input of g: its symbolic dims past the batch axis get c, h
 * and w for `layout` (0: left symbolic), and, with rebatch, a fixed batch of
 * 1 becomes symbolic (see above).  *out records what changed (NULL when
 * nothing did); hand it to qc_inputs_unbind.  On failure g is as it was. */
enum qc_status qc_inputs_bind(struct qc_graph *g, enum qc_input_layout layout, int64_t c, int64_t h,
                              int64_t w, bool rebatch, struct qc_input_binding **out);
/* Whether the binding made a fixed batch of 1 symbolic (b may be NULL). */
bool qc_inputs_rebatched(const struct qc_input_binding *b);
/* Puts back what qc_inputs_bind changed, except, with dynamic_batch, the
 * symbolic batch and the rewritten Reshape constants; frees b (may be
 * NULL). */
void qc_inputs_unbind(struct qc_graph *g, struct qc_input_binding *b, bool dynamic_batch);

/* The element types of the written model when the file had float16 or
 * bfloat16 tensors (held as float32 since loading):
 *   - keep_dtype false: float32 everywhere;
 *   - a float model (nothing quantized) whose float inputs, outputs and
 *     initializers all had one half type: every float tensor goes back to it
 *     (new ones, such as folded BatchNorm, too): the model as it came;
 *   - otherwise (a fake-quant or integer export, or a mixed model): the
 *     interior is float32 and each half-precision graph input or output
 *     keeps its declared type through a Cast at the boundary.
 * The graph is only fit for writing afterwards (new Casts are not bound to
 * the op table). */
enum qc_status qc_inputs_write_dtypes(struct qc_graph *g, bool float_model, bool keep_dtype);

#endif
