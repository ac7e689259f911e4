/*
 * qdq.h - the fake-quant (QDQ) export (qatconv(1), --format fake).
 *
 * Rewrites a trained graph in place, using the training plan's quantizers:
 *  - a quantized weight W becomes an integer initializer W_quantized (int8
 *    when every level fits, zero point 0) + a per-tensor scale, and a
 *    DequantizeLinear feeding every consumer of W.  Levels that do not fit
 *    int8 (SAT Default/FullRange with R > 127) keep the exact fake-quantized
 *    float weights instead, and the layer is reported; SAT's clamp stage
 *    (ApplyQuantization=0) writes its clamped float weights Q;
 *  - a quantized activation v becomes producer -> v_float ->
 *    QuantizeLinear(scale, uint8 zero point 0) -> Clip(0, R) when R < 255 ->
 *    DequantizeLinear -> v, so consumers and graph outputs keep their names.
 * The integer levels times the scale reproduce the training's fake-quant
 * values bit for bit (quant.h), and QuantizeLinear rounds half to even as the
 * training does, so ONNX Runtime computes what qatconv's evaluation computes.
 * Scales are per tensor, so Q/DQ need opset 10, and the Clip on uint8 levels
 * opset 12: a model below that is raised to it (export/opset.h rewrites the
 * ops whose form changed); BatchNorm is kept.
 */
#ifndef QATCONV_SRC_EXPORT_QDQ_H
#define QATCONV_SRC_EXPORT_QDQ_H

#include <stdbool.h>

#include "ir/graph.h"
#include "plan/plan.h"
#include "util/qc.h"

struct qc_export_stats {
    int n_weights;          /* weights exported as integers        */
    int n_float_weights;    /* quantized weights kept as float      */
    int n_acts;             /* activation Q/DQ pairs                */
};

/* g must be the graph p was built from, with the trained weights already
 * stored (qc_plan_store_params).  The plan is not usable afterwards. */
enum qc_status qc_export_fake(struct qc_graph *g, struct qc_plan *p, const char *dump_dir,
                              bool wide_levels, struct qc_export_stats *stats);
/* wide_levels: levels beyond int8 are stored as int16 (+ DequantizeLinear)
 * instead of exact floats: the intermediate form the int export starts from
 * (any opset; not meant to be written as it is).
 * dump_dir (may be NULL): each quantized weight's integer levels are also
 * written to dump_dir/<weight name>.txt (shape, scale, one level per line;
 * '/' in names becomes '_'). */

#endif
