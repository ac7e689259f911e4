/*
 * convert.h - the conversion pipeline: everything `qatconv IN.onnx -o OUT`
 * does between loading the model and writing it.
 *
 * With a recipe:  epochs (option or the recipe's Epochs) -> the device
 *                 backend -> trainer (data, quantizers, plan) -> calibrate ->
 *                 test float / before -> epochs -> test after -> weights into
 *                 the graph -> report collect -> weight plots -> fake export
 *                 -> int export -> graph plot -> BatchNorm folding -> test of
 *                 the export -> report.
 * Without:        check at batch 1 on the CPU; --format int rewrites a
 *                 fake-quant (QDQ) model as the integer-only one.
 * Progress, per-epoch figures and notes go to the options' callback; the
 * figures of the run to the result.  Nothing is printed.
 */
#ifndef QATCONV_SRC_PIPELINE_CONVERT_H
#define QATCONV_SRC_PIPELINE_CONVERT_H

#include "backend/backend.h"
#include "ir/graph.h"
#include "recipe/recipe.h"
#include "util/qc.h"

/*
 * r NULL: the no-recipe path (a CPU backend of jo's threads and memory
 * budget).  be: the device backend for training: used when *be is set,
 * else opened here from jo (after the recipe's checks, so that their
 * errors come first) and left in *be for the caller to free.
 */
enum qc_status qc_pipeline_convert(struct qc_graph *g, const struct qc_recipe *r,
                                   const struct qc_job_options *jo, struct qc_backend **be,
                                   const struct qc_convert_options *o,
                                   struct qc_convert_result *res);
/* The same as one rank of a data-parallel job (dist/comm.h; NULL: one
 * process): training on the rank's slice of every global batch, the
 * gradients summed over the ranks, the report and plots written by rank 0. */
struct qc_comm;
enum qc_status qc_pipeline_convert_dist(struct qc_graph *g, const struct qc_recipe *r,
                                        const struct qc_job_options *jo, struct qc_backend **be,
                                        const struct qc_convert_options *o, struct qc_comm *comm,
                                        struct qc_convert_result *res);

#endif
