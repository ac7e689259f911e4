/*
 * evaluate.h - the evaluation pipeline of `qatconv eval IN.onnx -r RECIPE`:
 * the recipe's data, the test split, an inference plan on the job's device,
 * optionally the per-op profile and a predictions file, then top-1 and
 * throughput (train/accuracy.h counts the hits).  Prints nothing: progress
 * goes to the options' callback, the figures and the profile text to the
 * result.
 */
#ifndef QATCONV_SRC_PIPELINE_EVALUATE_H
#define QATCONV_SRC_PIPELINE_EVALUATE_H

#include "backend/backend.h"
#include "ir/graph.h"
#include "recipe/recipe.h"
#include "util/qc.h"

/* be: the device backend, opened here from jo when *be is NULL and left for
 * the caller to free.  res->profile: malloc'ed text or NULL. */
enum qc_status qc_pipeline_evaluate(struct qc_graph *g, const struct qc_recipe *r,
                                    const struct qc_job_options *jo, struct qc_backend **be,
                                    const struct qc_eval_options *o,
                                    struct qc_eval_summary *res);

#endif
