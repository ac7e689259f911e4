/*
 * run.c - qc_convert and qc_evaluate: the job's options and backend handed
 * to the pipelines (pipeline/convert.h, pipeline/evaluate.h).
 */
#include <config.h>

#include "api.h"
#include "pipeline/convert.h"
#include "pipeline/evaluate.h"

enum qc_status qc_convert(struct qc_job *job, struct qc_model *m, const struct qc_recipe *r,
                          const struct qc_convert_options *o, struct qc_convert_result *res)
{
    static const struct qc_convert_options defaults = QC_CONVERT_OPTIONS_INIT;
    return qc_pipeline_convert(m->g, r, &job->o, &job->be, o ? o : &defaults, res);
}

enum qc_status qc_evaluate(struct qc_job *job, const struct qc_model *m,
                           const struct qc_recipe *r, const struct qc_eval_options *o,
                           struct qc_eval_summary *res)
{
    static const struct qc_eval_options defaults = QC_EVAL_OPTIONS_INIT;
    return qc_pipeline_evaluate(m->g, r, &job->o, &job->be, o ? o : &defaults, res);
}
