/*
 * evaluate.c - the evaluation pipeline (see evaluate.h).
 */
#include <config.h>

#include "evaluate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "plan/plan.h"
#include "train/accuracy.h"
#include "util/log.h"

/* The profile lines of the plan as a string (NULL when not profiled). */
static enum qc_status profile_text(const struct qc_plan *p, char **text)
{
    size_t len = 0;
    FILE *f = open_memstream(text, &len);
    if (!f) {
        qc_log_error("out of memory");
        return QC_ERR_NOMEM;
    }
    qc_plan_profile_print(p, f);
    if (fclose(f) != 0 || !*text) {
        free(*text);
        *text = NULL;
        qc_log_error("out of memory");
        return QC_ERR_NOMEM;
    }
    if (len == 0) {
        free(*text);
        *text = NULL;
    }
    return QC_OK;
}

/* The per-class lines of the summary: images, predictions, precision,
 * recall and F1 (%) of each class. */
static enum qc_status per_class_text(const struct qc_confusion *c, char **text)
{
    size_t len = 0;
    FILE *f = open_memstream(text, &len);
    if (!f) {
        qc_log_error("out of memory");
        return QC_ERR_NOMEM;
    }
    for (int64_t k = 0; k < c->classes; k++) {
        struct qc_class_metrics m;
        qc_confusion_class(c, k, &m);
        fprintf(f,
                "class %lld: %lld images, %lld predicted, precision %.2f%%, recall %.2f%%, "
                "F1 %.2f%%\n",
                (long long)k, (long long)(m.tp + m.fn), (long long)(m.tp + m.fp),
                100.0 * m.precision, 100.0 * m.recall, 100.0 * m.f1);
    }
    if (fclose(f) != 0 || !*text) {
        free(*text);
        *text = NULL;
        qc_log_error("out of memory");
        return QC_ERR_NOMEM;
    }
    return QC_OK;
}

/* The summary's figures of the confusion matrix; res->confusion a copy. */
static enum qc_status summary_metrics(const struct qc_confusion *c, struct qc_eval_summary *res)
{
    size_t nbytes = (size_t)(c->classes * c->classes) * sizeof(*c->counts);
    res->correct5 = c->top5;
    res->top5 = qc_confusion_metric(c, QC_METRIC_TOP5);
    res->macro_precision = qc_confusion_metric(c, QC_METRIC_PRECISION);
    res->macro_recall = qc_confusion_metric(c, QC_METRIC_SENSITIVITY);
    res->macro_f1 = qc_confusion_metric(c, QC_METRIC_F1);
    res->classes = c->classes;
    res->confusion = malloc(nbytes);
    if (!res->confusion) {
        qc_log_error("out of memory");
        return QC_ERR_NOMEM;
    }
    memcpy(res->confusion, c->counts, nbytes);
    return per_class_text(c, &res->per_class);
}

enum qc_status qc_pipeline_bind_inputs(struct qc_graph *g, const struct qc_recipe *r,
                                       struct qc_data_cfg *cfg, int64_t batch, bool dynamic_batch,
                                       struct qc_input_binding **b)
{
    enum qc_input_layout layout;
    int c = 0, h = 0, w = 0;
    enum qc_status st = qc_inputs_layout(g, r, &layout);
    *b = NULL;
    if (st != QC_OK)
        return st;
    if (cfg) {
        qc_data_cfg_set_channels_last(cfg, layout == QC_INPUT_CHANNELS_LAST);
        qc_data_cfg_geometry(cfg, &c, &h, &w);
    } else {
        /* no images: symbolic sizes take the defaults for the model's checks */
        c = QC_INPUTS_DEFAULT_CHANNELS;
        h = w = QC_INPUTS_DEFAULT_SIZE;
    }
    return qc_inputs_bind(g, layout, c, h, w, batch != 1 || dynamic_batch, b);
}

enum qc_status qc_pipeline_evaluate(struct qc_graph *g, const struct qc_recipe *r,
                                    const struct qc_job_options *jo, struct qc_backend **be,
                                    const struct qc_eval_options *o,
                                    struct qc_eval_summary *res)
{
    struct qc_data_cfg *cfg = NULL;
    struct qc_dataset *ds = NULL;
    struct qc_plan *p = NULL;
    struct qc_input_binding *bind = NULL;
    struct qc_eval_result er;
    struct qc_confusion conf = { 0 };
    struct qc_reporter rep = { o->progress, o->progress_user };
    FILE *pred = NULL;
    int64_t batch;
    enum qc_status st;

    memset(res, 0, sizeof(*res));
    st = qc_data_cfg_from_recipe(r, &cfg);
    if (st != QC_OK)
        goto out;
    st = qc_data_load(cfg, QC_SPLIT_TEST, &ds);
    if (st != QC_OK)
        goto out;
    if (!*be) {
        st = qc_backend_new(jo->device ? jo->device : "cpu", jo->threads, be);
        if (st == QC_OK && jo->tf32)
            st = qc_backend_allow_tf32(*be);
        if (st != QC_OK)
            goto out;
        qc_backend_set_max_memory(*be, jo->max_memory);
    }
    batch = o->batch ? o->batch : qc_data_cfg_batch(cfg);
    st = qc_pipeline_bind_inputs(g, r, cfg, batch, false, &bind);
    if (st != QC_OK)
        goto out;
    st = qc_plan_new_inference(g, *be, batch, &p);
    if (st != QC_OK)
        goto out;
    batch = qc_plan_batch(p);
    st = qc_eval_check(g, p, cfg);
    if (st != QC_OK)
        goto out;
    if (o->profile) {
        st = qc_plan_profile(p);
        if (st != QC_OK)
            goto out;
    }
    if (o->predictions) {
        pred = fopen(o->predictions, "w");
        if (!pred) {
            qc_log_error("%s: cannot write: %s", o->predictions, strerror(errno));
            st = QC_ERR_IO;
            goto out;
        }
    }
    st = qc_eval_split_metrics(p, *be, cfg, ds, QC_SPLIT_TEST, o->limit, &rep, "eval", pred, &conf,
                               &er);
    if (st != QC_OK)
        goto out;
    res->n = er.n;
    res->correct = er.correct;
    res->top1 = 100.0 * (double)er.correct / (double)(er.n ? er.n : 1);
    res->secs = er.secs;
    res->images_per_s = er.secs > 0 ? (double)er.n / er.secs : 0.0;
    res->batch = batch;
    res->threads = qc_backend_threads(*be);
    st = summary_metrics(&conf, res);
    if (st == QC_OK)
        st = profile_text(p, &res->profile);
out:
    if (pred && fclose(pred) != 0 && st == QC_OK) {
        qc_log_error("%s: cannot write: %s", o->predictions, strerror(errno));
        st = QC_ERR_IO;
    }
    if (st != QC_OK) {
        free(res->profile);
        free(res->confusion);
        free(res->per_class);
        res->profile = res->per_class = NULL;
        res->confusion = NULL;
    }
    qc_confusion_clear(&conf);
    qc_plan_free(p);
    qc_inputs_unbind(g, bind, false);
    qc_dataset_free(ds);
    qc_data_cfg_free(cfg);
    return st;
}
