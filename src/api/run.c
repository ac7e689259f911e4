/*
 * run.c - qc_convert and qc_evaluate: the job's options and backend handed
 * to the pipelines (pipeline/convert.h, pipeline/evaluate.h).
 */
#include <config.h>

#include "api.h"
#include "import/import.h"
#include "pipeline/convert.h"
#include "pipeline/evaluate.h"

enum qc_status qc_convert(struct qc_job *job, struct qc_model *m, const struct qc_recipe *r,
                          const struct qc_convert_options *o, struct qc_convert_result *res)
{
    static const struct qc_convert_options defaults = QC_CONVERT_OPTIONS_INIT;
    bool reread = !r && o && o->format == QC_FORMAT_INT && m->weight_dq_folded;
    enum qc_status st;

    /* The integer rewrite of a QDQ model (no recipe) writes the levels its
     * DequantizeLinear nodes store.  A weight-only quantized model (a fake
     * export that quantizes no activation, among others) had them folded
     * into float weights at load, for training: read the file again with
     * them kept. */
    m->weight_dq_folded = false;
    if (reread) {
        struct qc_graph *g = NULL;
        if ((st = qc_import_load_with(m->g->path, true, NULL, &g)) != QC_OK)
            return st;
        qc_graph_free(m->g);
        m->g = g;
    }
    return qc_pipeline_convert(m->g, r, &job->o, &job->be, o ? o : &defaults, res);
}

enum qc_status qc_evaluate(struct qc_job *job, const struct qc_model *m,
                           const struct qc_recipe *r, const struct qc_eval_options *o,
                           struct qc_eval_summary *res)
{
    static const struct qc_eval_options defaults = QC_EVAL_OPTIONS_INIT;
    return qc_pipeline_evaluate(m->g, r, &job->o, &job->be, o ? o : &defaults, res);
}
