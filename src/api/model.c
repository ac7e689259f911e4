/*
 * model.c - struct qc_model (an ONNX graph): load, check, write, figures;
 * and the text builder the text results share (api.h).
 */
#include <config.h>

#include <stdlib.h>

#include "api.h"
#include "import/import.h"
#include "onnx/onnx_io.h"
#include "plan/plan.h"
#include "util/log.h"

enum qc_status qc_text_open(struct qc_text *t)
{
    t->buf = NULL;
    t->len = 0;
    t->f = open_memstream(&t->buf, &t->len);
    if (!t->f) {
        qc_log_error("out of memory");
        return QC_ERR_NOMEM;
    }
    return QC_OK;
}

enum qc_status qc_text_close(struct qc_text *t, enum qc_status st, char **text)
{
    if (fclose(t->f) != 0 || !t->buf) {
        if (st == QC_OK) {
            qc_log_error("out of memory");
            st = QC_ERR_NOMEM;
        }
    }
    if (st == QC_OK)
        *text = t->buf;
    else
        free(t->buf);
    t->f = NULL;
    t->buf = NULL;
    return st;
}

enum qc_status qc_model_load(const char *path, struct qc_model **out)
{
    static const struct qc_load_options defaults = QC_LOAD_OPTIONS_INIT;
    return qc_model_load_with(path, &defaults, out);
}

enum qc_status qc_model_load_with(const char *path, const struct qc_load_options *o,
                                  struct qc_model **out)
{
    struct qc_model *m;
    struct qc_import_stats stats;
    enum qc_status st;
    *out = NULL;
    m = qc_calloc(1, sizeof(*m));
    if (!m)
        return QC_ERR_NOMEM;
    /* read, then the import normalization (import/import.h): every user of the
     * model sees the same graph */
    st = qc_import_load_with(path, o && o->keep_weight_levels, &stats, &m->g);
    if (st != QC_OK) {
        qc_free(m);
        return st;
    }
    m->weight_dq_folded = stats.n_dequantize > 0;
    m->weight_dq_kept = o && o->keep_weight_levels;
    *out = m;
    return QC_OK;
}

void qc_model_free(struct qc_model *m)
{
    if (!m)
        return;
    qc_graph_free(m->g);
    qc_free(m);
}

enum qc_status qc_model_write(const struct qc_model *m, const char *path)
{
    return qc_onnx_save(m->g, path);
}

enum qc_status qc_model_check(const struct qc_model *m, const struct qc_job *job)
{
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    enum qc_status st = qc_backend_new("cpu", qc_job_opts(job)->threads, &be);
    if (st == QC_OK) {
        qc_backend_set_max_memory(be, qc_job_opts(job)->max_memory);
        st = qc_plan_new(m->g, be, 1, &p);
    }
    qc_plan_free(p);
    qc_backend_free(be);
    return st;
}

const char *qc_model_path(const struct qc_model *m)
{
    return m->g->path;
}

int qc_model_n_nodes(const struct qc_model *m)
{
    return m->g->n_nodes;
}

int64_t qc_model_opset(const struct qc_model *m)
{
    return m->g->opset;
}
