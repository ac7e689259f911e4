/*
 * evaluate.h - the evaluation pipeline of `qatconv eval IN.onnx -r RECIPE`:
 * the recipe's data, the test split, an inference plan on the job's device,
 * optionally the per-op profile and a predictions file, then top-1, top-5,
 * the confusion matrix with its macro and per-class figures, and throughput
 * (train/accuracy.h counts the hits, train/metrics.h the matrix).  Prints nothing: progress
 * goes to the options' callback, the figures and the profile text to the
 * result.
 */
#ifndef QATCONV_SRC_PIPELINE_EVALUATE_H
#define QATCONV_SRC_PIPELINE_EVALUATE_H

#include <stdbool.h>

#include "backend/backend.h"
#include "data/data.h"
#include "ir/graph.h"
#include "plan/inputs.h"
#include "recipe/recipe.h"
#include "util/qc.h"

/* be: the device backend, opened here from jo when *be is NULL and left for
 * the caller to free.  res->profile, res->per_class and res->confusion:
 * malloc'ed or NULL. */
enum qc_status qc_pipeline_evaluate(struct qc_graph *g, const struct qc_recipe *r,
                                    const struct qc_job_options *jo, struct qc_backend **be,
                                    const struct qc_eval_options *o,
                                    struct qc_eval_summary *res);

/* The model's data input bound to the recipe's images (plan/inputs.h): the
 * layout from the recipe or the graph (cfg, when given, feeds it and gives
 * the geometry that symbolic sizes take; without it they take the
 * defaults of plan/inputs.h), and a fixed batch of 1 made
 * symbolic unless the run is at batch 1 and dynamic_batch is false.  r and
 * cfg may be NULL.  *b: for qc_inputs_unbind. */
enum qc_status qc_pipeline_bind_inputs(struct qc_graph *g, const struct qc_recipe *r,
                                       struct qc_data_cfg *cfg, int64_t batch, bool dynamic_batch,
                                       struct qc_input_binding **b);

#endif
