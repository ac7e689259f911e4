/*
 * metrics.h - the classification metrics of an evaluation: the confusion
 * matrix, top-1 and top-5 hits, and N2D2's per-class confusion-table
 * metrics (ConfusionMatrix.hpp) with their average over the classes, the
 * figure N2D2's `-valid-metric` picks the kept epoch by.
 *
 * The matrix counts[t * classes + p] is the number of images of true class
 * t predicted as p (arg-max of the scores, first maximum on ties).  For
 * class k: TP = counts[k][k], FN = row k's sum - TP, FP = column k's sum -
 * TP, TN = n - TP - FN - FP.  An image whose label is outside 0..classes-1
 * counts as a miss and in no cell (n_unlisted).
 */
#ifndef QATCONV_SRC_TRAIN_METRICS_H
#define QATCONV_SRC_TRAIN_METRICS_H

#include <stdint.h>

#include "util/qc.h"

struct qc_confusion {
    int64_t classes;
    int64_t *counts;    /* classes x classes, row = true class, column = predicted */
    int64_t n;          /* images counted                                          */
    int64_t top1, top5; /* hits                                                    */
    int64_t n_unlisted; /* labels outside 0..classes-1                             */
};

/* Per-class figures of N2D2's ConfusionTable (fractions in [0, 1]). */
struct qc_class_metrics {
    int64_t tp, fn, fp, tn;
    double precision, recall, f1; /* recall = sensitivity                       */
};

/* An empty matrix for `classes` (>= 1) classes. */
enum qc_status qc_confusion_init(struct qc_confusion *c, int64_t classes);
void qc_confusion_clear(struct qc_confusion *c);
/* Counts one image: its scores (classes of them) and its label; *pred gets
 * the arg-max (pred may be NULL). */
void qc_confusion_add(struct qc_confusion *c, const float *scores, int64_t label, int64_t *pred);
/* Counts an image whose predicted class is known (top-5 not counted). */
void qc_confusion_add_pred(struct qc_confusion *c, int64_t label, int64_t pred);

void qc_confusion_class(const struct qc_confusion *c, int64_t k, struct qc_class_metrics *m);
/* The metric in %: top-1 and top-5 of all images (top-5: -1 with fewer
 * than 5 classes); the confusion-table metrics averaged over the classes
 * that have images (as N2D2's TargetScore::getAverageScore); -1 with no
 * image (Informedness and Markedness range over [-100, 100]: check c->n). */
double qc_confusion_metric(const struct qc_confusion *c, enum qc_metric m);
/* Whether a larger value of m is better (false for the miss, fall-out,
 * false discovery and false omission rates). */
bool qc_metric_higher_better(enum qc_metric m);

#endif
