/*
 * qdq.h - the fake-quant (QDQ) export (qatconv(1), --format fake).
 *
 * Rewrites a trained graph in place, using the training plan's quantizers:
 *  - a quantized weight W becomes an integer initializer W_quantized (int8
 *    when every level fits, zero point 0) + a per-tensor scale, and a
 *    DequantizeLinear feeding every consumer of W.  Levels that do not fit
 *    int8 (SAT Default/FullRange with R > 127: odd levels up to ±R) are
 *    stored as int16 and the model raised to opset 21 (DequantizeLinear takes
 *    int16 from 21), or, when the caller caps the opset below 21, kept as
 *    exact fake-quantized floats and reported (enum qc_wide_levels); SAT's
 *    clamp stage (ApplyQuantization=0) writes its clamped float weights Q;
 *  - a quantized activation v becomes producer -> v_float ->
 *    QuantizeLinear(scale, uint8 zero point 0) -> Clip(0, R) when R < 255 ->
 *    DequantizeLinear -> v, so consumers and graph outputs keep their names.
 * The integer levels times the scale reproduce the training's fake-quant
 * values bit for bit (quant.h), and QuantizeLinear rounds half to even as the
 * training does, so ONNX Runtime computes what qatconv's evaluation computes.
 * Per-tensor Q/DQ need opset 10, the Clip on uint8 levels opset 12, per-axis
 * scales opset 13, int16 weights opset 21: a model below what it needs is
 * raised to it (export/opset.h rewrites the ops whose form changed);
 * BatchNorm is kept.
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

/* How weight levels beyond int8 are written. */
enum qc_wide_levels {
    QC_WIDE_INT16,     /* int16 + DequantizeLinear, the model raised to
                             * opset 21 (the default)                        */
    QC_WIDE_FLOAT,     /* exact fake-quantized floats, reported: the
                             * caller asked for an opset below 21 (--opset)  */
    QC_WIDE_INT16_ANY, /* int16 at whatever opset the rest needs: the
                             * intermediate form the int export starts from
                             * (not meant to be written as it is)            */
};

/* g must be the graph p was built from, with the trained weights already
 * stored (qc_plan_store_params).  The plan is not usable afterwards.
 * dump_dir (may be NULL): each quantized weight's integer levels are also
 * written to dump_dir/<weight name>.txt (shape, scale, one level per line;
 * '/' in names becomes '_'). */
enum qc_status qc_export_fake(struct qc_graph *g, struct qc_plan *p, const char *dump_dir,
                              enum qc_wide_levels wide, struct qc_export_stats *stats);

#endif
