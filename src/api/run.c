/*
 * run.c - qc_convert and qc_evaluate: the job's options and backend handed
 * to the pipelines (pipeline/convert.h, pipeline/evaluate.h).
 */
#include <config.h>

#include <string.h>

#include "api.h"
#include "pipeline/convert.h"
#include "pipeline/evaluate.h"
#include "util/log.h"

/* Whether g has a DequantizeLinear of a stored (initializer) weight. */
static bool weight_levels(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        if (strcmp(n->op_type, "DequantizeLinear") == 0 && n->n_in > 0 && n->in[0] >= 0 &&
            g->values[n->in[0]].init)
            return true;
    }
    return false;
}

enum qc_status qc_convert(struct qc_job *job, struct qc_model *m, const struct qc_recipe *r,
                          const struct qc_convert_options *o, struct qc_convert_result *res)
{
    static const struct qc_convert_options defaults = QC_CONVERT_OPTIONS_INIT;

    /* The integer rewrite of a QDQ model (no recipe) writes the levels its
     * DequantizeLinear nodes store.  A weight-only quantized model (a fake
     * export that quantizes no activation, among others) has them only when
     * it was loaded with keep_weight_levels; training needs them folded. */
    if (!r && o && o->format == QC_FORMAT_INT && m->weight_dq_folded) {
        qc_log_error("%s: the integer rewrite needs the weight levels: load the model with "
                     "keep_weight_levels (qc_model_load_with)",
                     m->g->path);
        return QC_ERR_INVAL;
    }
    if (r && m->weight_dq_kept && weight_levels(m->g)) {
        qc_log_error("%s: loaded with keep_weight_levels: a recipe trains the model loaded "
                     "without it (qc_model_load)",
                     m->g->path);
        return QC_ERR_INVAL;
    }
    return qc_pipeline_convert_dist(m->g, r, &job->o, &job->be, o ? o : &defaults, job->comm, res);
}

enum qc_status qc_evaluate(struct qc_job *job, const struct qc_model *m,
                           const struct qc_recipe *r, const struct qc_eval_options *o,
                           struct qc_eval_summary *res)
{
    static const struct qc_eval_options defaults = QC_EVAL_OPTIONS_INIT;
    return qc_pipeline_evaluate(m->g, r, &job->o, &job->be, o ? o : &defaults, res);
}
