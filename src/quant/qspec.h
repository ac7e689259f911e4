/*
 * qspec.h - which quantizers a recipe puts on a graph (qatconv-recipe(5), QUANTIZER KEYS).
 *
 * Weight quantizers: a Conv, ConvTranspose, Gemm or MatMul node whose recipe
 * section (recipe_match.h) sets QWeight=SAT|LSQ quantizes its weight (input
 * 1, a float initializer).  Activation quantizers: a node whose section sets
 * QAct=SAT|LSQ quantizes its first output; as in N2D2 this is normally the
 * section of a Relu/Clip node with ActivationFunction=Linear, and since
 * SAT's clip to [0, α] contains the ReLU, keeping the ReLU changes nothing.
 * Keys and defaults: QWeight.Range [255], QWeight.QuantMode [Default],
 * QWeight.ApplyQuantization [1], QWeight.ApplyScaling [0],
 * QWeight.StepSize / QWeight.SetOptInitStepSize [1] (LSQ), QAct.Range [255],
 * QAct.Alpha [8.0] (SAT), QAct.StepSize / QAct.SetOptInitStepSize [1] (LSQ),
 * QWeight.Mode [Default] (Integer: see train.h), QWeight.PerChannel [0]: 1 gives
 * the weight one quantizer per output channel (LSQ: a step s_c per channel;
 * SAT: max|tanh W| and S per channel; the layout in `ch`, around the weight's
 * output axis as the op roles name it), QAct.Signed [0]: 1 gives an LSQ activation
 * the signed levels of its Range (qc_lsq_levels) instead of [0, R], for values that
 * can be negative; SAT activations stay CG-PACT (unsigned), Signed=1 there is an error.
 * QIn=SAT|LSQ on a Conv/ConvTranspose/Gemm/MatMul (with QIn.Range, .Alpha, .StepSize,
 * .SetOptInitStepSize, .Signed, .ZeroPoint: the QAct keys' meanings) quantizes the layer's
 * own data input: an activation spec (layer_input) on the Identity qin.h inserts there.
 * QAct.ZeroPoint [0]: Learned or Calibrated gives an unsigned LSQ activation an integer
 * zero point z in [0, R] (real value s·(q − z), docs/ARCHITECTURE.md "Asymmetric
 * activation quantizers"): Learned trains a float zf (z = clamp(rne(zf))) with the step,
 * Calibrated sets s and z from the first batch's min/max and keeps z frozen; with QAct=SAT
 * or QAct.Signed=1 it is an error.
 */
#ifndef QATCONV_SRC_QUANT_QSPEC_H
#define QATCONV_SRC_QUANT_QSPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/graph.h"
#include "util/qc.h"
#include "recipe/recipe.h"
#include "quant.h"

enum qc_quant_method {
    QC_QM_SAT = 1,
    QC_QM_LSQ,
};

/* QAct.ZeroPoint: none (z = 0), a learned zf, or min/max calibrated and frozen. */
enum qc_zero_point {
    QC_ZP_NONE = 0,
    QC_ZP_LEARNED,
    QC_ZP_CALIBRATED,
};

struct qc_quant_spec {
    int                  node;       /* the configured node                          */
    bool                 weight;     /* weight quantizer, else activation            */
    int                  value;      /* the weight initializer / activation value    */
    enum qc_quant_method method;
    int                  range;      /* R                                            */
    struct qc_sat_wcfg   sat;        /* SAT weights                                  */
    float                alpha;      /* SAT activations: initial α                    */
    float                step;       /* LSQ: initial step (used when !step_init)      */
    bool                 step_init;  /* LSQ: initialise from weights / first batch    */
    bool                 integer;    /* QWeight.Mode=Integer: train the integer graph */
    bool per_channel;                /* QWeight.PerChannel=1                         */
    bool is_signed;                  /* levels [−qn, qp]: weights, LSQ QAct.Signed=1  */
    bool layer_input;                /* QIn: on the Identity in front of a layer (qin.h) */
    enum qc_zero_point zero_point;   /* LSQ activations: QAct.ZeroPoint               */
    struct qc_channels ch;           /* weights: the channel layout (nch = 1: per tensor) */
    const char          *section;    /* recipe section (borrowed from the recipe)     */
};

/* Resolves every quantizer; *out is qc_malloc'ed (free with qc_free), *n may
 * be 0.  Errors name file:line: QWeight on a node without weights, an
 * unknown QuantMode, QAct on a node with no float output, PerChannel=1 on
 * a weight without an output-channel axis (a MatMul weight of rank != 2),
 * QAct.Signed=1 with QAct=SAT (QIn.Signed=1 with QIn=SAT), QAct.ZeroPoint with QAct=SAT
 * or QAct.Signed=1 (the same for QIn).  QIn specs need the Identity nodes of qc_qin_insert
 * (qin.h). */
enum qc_status qc_quant_specs_from_recipe(const struct qc_recipe *r, const struct qc_graph *g,
                                          struct qc_quant_spec **out, int *n);

/* *method: QC_QM_SAT or QC_QM_LSQ for "SAT" / "LSQ" of key in section, 0 for
 * "none" or absent; another value is an error naming file:line. */
enum qc_status qc_quant_read_method(const struct qc_recipe *r, const char *sec, const char *key,
                                    int *method);

#endif
