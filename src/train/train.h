/*
 * train.h - fine-tuning a float graph on the recipe's data (DESIGN §5, §7).
 *
 * qc_train() builds a training plan for the graph, reads the solvers of
 * every parameter from the recipe (global Solvers.*, then the section of the
 * node that owns the parameter, found as recipe_match.h says; WeightsSolver.*
 * for weights, ScaleSolver.* for BatchNorm scales, BiasSolver.* for biases),
 * and runs
 * epochs over the learn split: seeded shuffle, the recipe's transformations,
 * training-mode forward, softmax cross-entropy on the logits, backward,
 * solver updates every IterationSize batches.  After each epoch it measures
 * the validation split (when the recipe has one), keeps the best or the last
 * weights, and writes a checkpoint if asked.  At the end the weights are
 * stored back into the graph's initializers; test accuracy before and after
 * is reported.
 *
 * Repeatability: the shuffle, the random transformations and Dropout draw
 * from generators seeded with (seed, epoch), and a checkpoint taken inside
 * an epoch (checkpoint_every) stores the generators' states, the epoch's
 * statistics and any gradients still accumulating, so a run resumed from
 * any checkpoint ends with the same weights as an uninterrupted one (same
 * seed, same thread count, same --epochs, --batch and --limit): the same
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
#include "util/qc.h"
#include "recipe/recipe.h"

enum qc_out_format {
    QC_FORMAT_AUTO = 0,   /* fake when the recipe quantizes something, else float */
    QC_FORMAT_FLOAT,      /* trained float weights, graph unchanged                */
    QC_FORMAT_FAKE,       /* QDQ: integer weights + DequantizeLinear, activation
                             QuantizeLinear/DequantizeLinear (export/qdq.h)       */
    QC_FORMAT_INT,        /* integer-only, BatchNorm folded (export/int.h)       */
};

struct qc_train_opts {
    int         epochs;          /* > 0                                          */
    int64_t     batch;           /* 0: the recipe's BatchSize                    */
    uint64_t    seed;
    bool        keep_best;       /* best validation epoch (else the last)        */
    bool        progress;        /* terminal status line                         */
    bool        quiet;           /* no per-epoch lines                           */
    bool        shuffle;         /* false: learn images in file order            */
    int64_t     limit;           /* use only the first N learn images (0 = all)  */
    const char *checkpoint;      /* write after every epoch, or NULL             */
    int64_t     checkpoint_every;/* also after every N-th batch of the run (0:
                                    epochs only)                                 */
    const char *resume;          /* start from this checkpoint, or NULL          */
    bool        skip_eval;       /* no test evaluation before/after               */
    const char *log;             /* CSV of every batch: epoch,batch,samples,loss,
                                    accuracy,lr (or NULL)                         */
    enum qc_out_format format;   /* what the graph holds when qc_train returns    */
    const char *report;          /* --report FILE.json, or NULL (report.h)        */
    const char *model_path;      /* for the report                                */
    const char *dump_weights;    /* --dump-weights DIR, or NULL                   */
    bool        fold_bn;         /* --fold-bn: BatchNorm folded into the export   */
    bool        int_output;      /* --int-output: int32 logits (format int)       */
    bool        no_int4;         /* --no-int4: int8 storage for 4-bit weights     */
    float       input_scale;     /* --input-scale: int export's input quantizer   */
    const char *plots;           /* --plots DIR, or NULL                          */
};

struct qc_train_report {
    double  test_float;                /* float model before training, -1 if
                                          the recipe quantizes nothing        */
    double  test_before, test_after;   /* top-1 % of the trained model (with its
                                          quantizers), -1 when not measured   */
    double  test_export;               /* the exported graph, -1 if float     */
    int     n_quant;                   /* quantizers trained                  */
    int     n_float_weights;           /* quantized weights exported as float */
    int     n_folded_bn;               /* BatchNormalization nodes folded      */
    int     n_int_layers;              /* int export: integer layers            */
    int     n_int4;                    /* int export: weights stored as INT4    */
    int64_t weight_bytes;              /* int export: integer weight bytes      */
    double  valid_best;                /* best validation top-1 %, -1 if none */
    int     best_epoch;
    int     epochs_run;
    double  last_loss;                 /* mean training loss of the last epoch */
    double  secs;
    int64_t images;                    /* training images processed           */
};

enum qc_status qc_train(struct qc_graph *g, const struct qc_recipe *r, struct qc_backend *be,
                        const struct qc_train_opts *o, struct qc_train_report *rep);

#endif
