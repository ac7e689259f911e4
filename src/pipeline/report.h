/*
 * report.h - the per-layer quantization report (--report FILE.json): for
 * every Conv/ConvTranspose/Gemm/MatMul layer its method and weight bits, the
 * bits of the activation quantizer on its output path (the quantizer of the
 * layer's output or of the ReLU/Clip that follows, possibly through a
 * BatchNormalization), α or the LSQ step, parameters and bytes at that bit
 * width (the seed's Parameters / Memory columns), then totals and the run's
 * accuracies and times, the validation metric of the kept epoch, and the
 * test metrics (top-1, top-5, per class precision / recall / F1 and the
 * confusion matrix; schema in qatconv(1), REPORT).  Collected from the training plan before the export
 * rewrites the graph (qc_report_collect), written after (qc_report_write).
 */
#ifndef QATCONV_SRC_REPORT_H
#define QATCONV_SRC_REPORT_H

#include <stdint.h>

#include "ir/graph.h"
#include "plan/plan.h"
#include "train/metrics.h"
#include "util/qc.h"

struct qc_report_layer {
    char    name[256], op[32];
    char    wmethod[8], amethod[8];    /* "SAT", "LSQ", "float"            */
    int     wbits, abits;              /* 32 for float                     */
    double  wstep;                     /* LSQ step / SAT scale, 0 if float  */
    double  aparam;                    /* α (SAT) or step (LSQ), 0 if none  */
    int64_t params;                    /* weight and bias elements          */
    int64_t bytes;                     /* weights at wbits, biases at 32    */
};

struct qc_report {
    struct qc_report_layer *layers;
    int                     n_layers;
};

enum qc_status qc_report_collect(const struct qc_graph *g, const struct qc_plan *p,
                                 struct qc_report *rep);
void qc_report_clear(struct qc_report *rep);

/* Writes the JSON file atomically.  conf: the confusion matrix of the last
 * test evaluation, of the graph `tested` names ("exported graph", "trained
 * model"), written as the "test" object (null when conf is NULL). */
enum qc_status qc_report_write(const char *path, const struct qc_report *rep,
                               const struct qc_convert_result *tr, const struct qc_confusion *conf,
                               const char *tested, const char *model, const char *recipe);

#endif
