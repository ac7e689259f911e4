/*
 * train.h - fine-tuning a float graph on the recipe's data (qatconv-recipe(5)).
 *
 * A trainer (qc_trainer_new) builds a training plan for the graph, reads the solvers of
 * every parameter from the recipe (global Solvers.*, then the section of the
 * node that owns the parameter, found as recipe/match.h says; WeightsSolver.*
 * for weights, ScaleSolver.* for BatchNorm scales, BiasSolver.* for biases),
 * and runs
 * epochs over the learn split: seeded shuffle, the recipe's transformations,
 * training-mode forward, softmax cross-entropy on the logits (or, with
 * o->distill_temperature, mixed with the KL divergence from the frozen float
 * graph's logits on the same batch: loss.h), backward,
 * solver updates every IterationSize batches.  After each epoch it measures
 * the validation split (when the recipe has one), keeps the best or the last
 * weights, and writes a checkpoint if asked.  qc_trainer_store puts the
 * weights back into the graph's initializers.  What runs when (calibration,
 * the test evaluations, the exports) is the conversion pipeline's decision
 * (pipeline/convert.c); the trainer reports batches, epochs and evaluations
 * as events (struct qc_event, include/qatconv.h) and prints nothing.
 *
 * Repeatability: the shuffle and Dropout draw from generators seeded with
 * (seed, epoch), the random transformations from one generator per image
 * seeded with (seed, epoch, image index: data.h), and a checkpoint taken
 * inside an epoch (checkpoint_every) stores the Dropout generator's state,
 * the epoch's statistics and any gradients still accumulating, so a run
 * resumed from any checkpoint ends with the same weights as an uninterrupted
 * one (same seed, same thread count, same --epochs, --batch and --limit;
 * any number of image decoder threads, data/prefetch.h): the same
 * binary does the same float operations in the same order.  The last
 * partial batch of an epoch is dropped (the plan is sized for one batch).
 */
#ifndef QATCONV_SRC_TRAIN_TRAIN_H
#define QATCONV_SRC_TRAIN_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "data/data.h"
#include "ir/graph.h"
#include "plan/plan.h"
#include "util/qc.h"
#include "recipe/recipe.h"
#include "metrics.h"

struct qc_train_opts {
    int         epochs;          /* > 0                                          */
    int64_t     batch;           /* 0: the recipe's BatchSize                    */
    uint64_t    seed;
    bool        keep_best;       /* best validation epoch (else the last)        */
    enum qc_metric valid_metric; /* what "best" means (default 0: top-1)         */
    bool        shuffle;         /* false: learn images in file order            */
    int64_t     limit;           /* use only the first N learn images (0 = all)  */
    const char *checkpoint;      /* write after every epoch, or NULL             */
    int64_t     checkpoint_every;/* also after every N-th batch of the run (0:
                                    epochs only)                                 */
    const char *resume;          /* start from this checkpoint, or NULL          */
    bool        skip_eval;       /* no test split loaded (no test evaluations)   */
    const char *log;             /* CSV of every batch: epoch,batch,samples,loss,
                                    accuracy,lr (or NULL)                         */
    struct qc_reporter progress; /* events: batches, epochs, evaluations, notes  */
    /* QWeight.Mode=Integer: folds BatchNorm into the layers before the plan is
     * built, so that the quantized weights are the deployed integer weights
     * (the pipeline passes export/fold_bn.h's qc_fold_bn) */
    enum qc_status (*fold_bn)(struct qc_graph *g, int *n_folded);
    /* data-parallel job (dist/comm.h): this process's rank, or NULL (one
     * process).  Each rank trains on its slice of every global batch and
     * the gradients are summed over the ranks; rank 0 alone writes the
     * checkpoint and the log (README, "Data-parallel training"). */
    struct qc_comm *comm;
    /* knowledge distillation (loss.h): > 0 trains against the float graph's
     * logits on the same batch at this temperature, the loss mixed with
     * weight distill_weight in [0, 1]; 0: softmax cross-entropy only */
    float distill_temperature;
    float distill_weight;
};

/* What the epochs did. */
struct qc_train_stats {
    double valid_best; /* best validation figure of o->valid_metric
                                          (%), -1 if none                     */
    int     best_epoch;
    int     epochs_run;
    double  last_loss;                 /* mean training loss of the last epoch */
    double  secs;
    int64_t images;                    /* training images processed           */
};

struct qc_trainer;
struct qc_comm;

/* Loads the recipe's data, reads its quantizers (QWeight.Mode=Integer folds
 * BatchNorm into the layers first), builds the training plan and the
 * solvers, checks that one batch of learn images exists and, with
 * o->resume, loads the checkpoint.  g, r, be and o must outlive the trainer. */
enum qc_status qc_trainer_new(struct qc_graph *g, const struct qc_recipe *r,
                              struct qc_backend *be, const struct qc_train_opts *o,
                              struct qc_trainer **out);
void qc_trainer_free(struct qc_trainer *t);

int qc_trainer_n_quant(const struct qc_trainer *t);        /* quantizers trained  */
bool qc_trainer_integer(const struct qc_trainer *t);       /* QWeight.Mode=Integer */
int qc_trainer_n_folded_bn(const struct qc_trainer *t);    /* folded for it        */
bool qc_trainer_has_test(const struct qc_trainer *t);      /* a test split loaded  */
struct qc_plan *qc_trainer_plan(struct qc_trainer *t);

/* One inference-mode forward on the first learn batch, so that quantizers
 * that start from data (LSQ activation steps) see training images. */
enum qc_status qc_trainer_calibrate(struct qc_trainer *t);
/* Top-1 % of the training plan (with its quantizers) on the test split;
 * conf (may be NULL): the confusion matrix and top-5 (accuracy.h's
 * qc_eval_split_metrics; clear it after QC_OK). */
enum qc_status qc_trainer_eval_test(struct qc_trainer *t, const char *what, double *acc,
                                    struct qc_confusion *conf);
/* Top-1 % on the test split of the graph as it is now (the float baseline,
 * an export), through a fresh inference plan, on the CPU when the backend
 * cannot run the graph's ops. */
enum qc_status qc_trainer_eval_graph(struct qc_trainer *t, const char *what, double *acc,
                                     struct qc_confusion *conf);
/* The epochs (from the checkpoint's position when resuming), then the best
 * or the last weights in the plan. */
enum qc_status qc_trainer_run(struct qc_trainer *t, struct qc_train_stats *stats);
/* The plan's weights into the graph's initializers. */
enum qc_status qc_trainer_store(struct qc_trainer *t);

#endif
