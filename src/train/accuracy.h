/*
 * accuracy.h - top-1 accuracy of a plan on a dataset split, in inference mode
 * (the plan may be a training plan: BatchNorm then uses its running
 * statistics), and with qc_eval_split_metrics the confusion matrix and
 * top-5 (metrics.h).  Shared by the eval pipeline, the conversion pipeline and the
 * training loop (validation).  Progress goes to a reporter as events of
 * phase QC_PHASE_EVALUATE (BEGIN, PROGRESS per batch, END), never to a
 * terminal.
 */
#ifndef QATCONV_SRC_TRAIN_ACCURACY_H
#define QATCONV_SRC_TRAIN_ACCURACY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "data/data.h"
#include "plan/plan.h"
#include "util/qc.h"
#include "metrics.h"

struct qc_eval_result {
    int64_t n;          /* images evaluated               */
    int64_t correct;    /* top-1 hits                     */
    double  secs;       /* wall time                      */
};

/* The plan's single runtime input must take the data's images and its first
 * output be [batch, classes] (checked: QC_ERR_SHAPE / QC_ERR_UNSUPPORTED). */
enum qc_status qc_eval_check(const struct qc_graph *g, struct qc_plan *p,
                             const struct qc_data_cfg *cfg);

/* Evaluates the first `limit` images of ds (0 = all); the last batch may be
 * partial (only its first rows count).  Events labelled `what` go to rep
 * (may be NULL). */
enum qc_status qc_eval_split(struct qc_plan *p, struct qc_backend *be,
                             const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                             enum qc_split split, int64_t limit, const struct qc_reporter *rep,
                             const char *what, struct qc_eval_result *res);
/* Same, also writing each image's predicted class, one per line, to pred
 * (may be NULL). */
enum qc_status qc_eval_split_pred(struct qc_plan *p, struct qc_backend *be,
                                  const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                                  enum qc_split split, int64_t limit,
                                  const struct qc_reporter *rep, const char *what, FILE *pred,
                                  struct qc_eval_result *res);
/* Same, also counting every image into *conf (may be NULL), which it
 * initializes for the output's classes (free it with qc_confusion_clear
 * after QC_OK; on an error it is left cleared). */
enum qc_status qc_eval_split_metrics(struct qc_plan *p, struct qc_backend *be,
                                     const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                                     enum qc_split split, int64_t limit,
                                     const struct qc_reporter *rep, const char *what, FILE *pred,
                                     struct qc_confusion *conf, struct qc_eval_result *res);
/* Same on shard `shard` of n_shards of the images (a data-parallel job's
 * rank): the contiguous images [k·n/K, (k+1)·n/K) of the n evaluated; the
 * caller sums res and conf over the shards. */
enum qc_status qc_eval_split_shard(struct qc_plan *p, struct qc_backend *be,
                                   const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                                   enum qc_split split, int64_t limit, int shard, int n_shards,
                                   const struct qc_reporter *rep, const char *what, FILE *pred,
                                   struct qc_confusion *conf, struct qc_eval_result *res);

#endif
