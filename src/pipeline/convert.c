/*
 * convert.c - the conversion pipeline (see convert.h): the one place that
 * decides what runs when; the trainer (train/train.h) trains, the export
 * modules (export/) rewrite the graph, report.c writes the JSON report.
 */
#include <config.h>

#include "convert.h"

#include <stdio.h>
#include <string.h>

#include "export/fold_bn.h"
#include "export/opset.h"
#include "export/int.h"
#include "dist/comm.h"
#include "export/plots.h"
#include "export/qdq.h"
#include "import/import.h"
#include "plan/inputs.h"
#include "plan/plan.h"
#include "quant/qin.h"
#include "quant/qspec.h"
#include "recipe/fill.h"
#include "recipe/match.h"
#include "train/train.h"
#include "util/log.h"
#include "evaluate.h"
#include "report.h"

/* What the plots need of a trained run. */
struct conv {
    struct qc_graph   *g;
    struct qc_plan    *plan;
    struct qc_backend *be;
};

/* --plots DIR: one PNG per quantized weight, float weights W (as trained) against
 * the fake-quantized values the network computes with. */
static enum qc_status plot_weights(const struct conv *t, const char *dir)
{
    enum qc_status st = qc_plot_make_dir(dir);
    for (int i = 0; i < qc_plan_n_quants(t->plan) && st == QC_OK; i++) {
        struct qc_plan_quant_info qi;
        const struct qc_value *w;
        char path[4096], title[512];
        int n;
        float *qhost = NULL;
        if ((st = qc_plan_quant_info(t->plan, i, &qi)) != QC_OK)
            break;
        if (!qi.spec->weight || !qi.q)
            continue;
        w = &t->g->values[qi.spec->value];
        n = snprintf(path, sizeof(path), "%s/hist_", dir);
        for (const char *c = w->name; *c && n < (int)sizeof(path) - 5; c++)
            path[n++] = (*c == '/' || *c == '\\' || *c == ' ') ? '_' : *c;
        snprintf(path + n, sizeof(path) - (size_t)n, ".png");
        snprintf(title, sizeof(title), "%s: %s %d levels (R=%d)", w->name,
                 qi.spec->method == QC_QM_SAT ? "SAT" : "LSQ", qi.spec->range + 1,
                 qi.spec->range);
        if (!qc_backend_host_memory(t->be)) {   /* Q(W) lives on the device */
            size_t nb = qc_tensor_nbytes(w->init);
            qhost = qc_malloc(nb ? nb : 1);
            st = qhost ? qc_backend_download(t->be, qhost, qi.q, nb) : QC_ERR_NOMEM;
        }
        if (st == QC_OK)
            st = qc_plot_weight_histogram(path, title, qc_tensor_f32(w->init),
                                          qhost ? qhost : qi.q, qc_tensor_nelem(w->init));
        qc_free(qhost);
    }
    return st;
}

/* Notes for the graph drawing: each quantizer's method, bits and scale, on the
 * layer (weights) or on the nodes named after the activation (its Q/DQ). */
static enum qc_status quant_notes(const struct conv *t, struct qc_int_notes *notes)
{
    for (int i = 0; i < qc_plan_n_quants(t->plan); i++) {
        struct qc_plan_quant_info qi;
        const struct qc_quant_spec *sp;
        char text[256];
        const char *key;
        int bits = 0;
        double scale;
        enum qc_status st;
        if ((st = qc_plan_quant_info(t->plan, i, &qi)) != QC_OK)
            return st;
        sp = qi.spec;
        while ((1L << bits) < (long)sp->range + 1)
            bits++;
        if (sp->weight)
            scale = sp->method == QC_QM_SAT ? qi.sat_scale : qc_lsq_step_used(qi.param);
        else
            scale = sp->method == QC_QM_SAT ? qc_sat_act_scale(qi.param, sp->range)
                                            : qc_lsq_step_used(qi.param);
        snprintf(text, sizeof(text), "%s %c%d (R=%d) scale %.6g", sp->method == QC_QM_SAT ?
                 "SAT" : "LSQ", sp->weight ? 'W' : 'A', bits, sp->range, scale);
        key = sp->weight ? qc_node_label(t->g, &t->g->nodes[sp->node])
                         : t->g->values[sp->value].name;
        if ((st = qc_int_notes_add(notes, key, text)) != QC_OK)
            return st;
    }
    return QC_OK;
}

/* The graph drawing of --plots, with the int export's notes on its nodes. */
static void apply_notes(struct qc_graph *g, const struct qc_int_notes *notes,
                        const char **per_node)
{
    for (int i = 0; i < notes->n; i++) {
        for (int j = 0; j < g->n_nodes; j++) {
            const char *lb = qc_node_label(g, &g->nodes[j]);
            size_t len = strlen(notes->v[i].node);
            /* a note names a layer; its nodes are "layer/Op" */
            if (!per_node[j] && strncmp(lb, notes->v[i].node, len) == 0 &&
                (lb[len] == '\0' || lb[len] == '/' || lb[len] == '_'))
                per_node[j] = notes->v[i].text;
        }
    }
}

/* The graph drawing of --plots: the int export's notes (requantization) first,
 * then the quantizers' (method, bits, scale). */
static enum qc_status plot_graph(struct qc_graph *g, const char *dir,
                                 const struct qc_int_notes *int_notes,
                                 const struct qc_int_notes *quant)
{
    const char **per_node = qc_calloc((size_t)g->n_nodes + 1, sizeof(char *));
    enum qc_status st;
    if (!per_node)
        return QC_ERR_NOMEM;
    apply_notes(g, int_notes, per_node);
    apply_notes(g, quant, per_node);
    st = qc_plot_graph(dir, g, per_node);
    qc_free(per_node);
    return st;
}


/* Epochs from the options or the recipe's global Epochs key. */
static enum qc_status epochs_of(const struct qc_convert_options *o, const struct qc_recipe *r,
                                int *epochs)
{
    int64_t e;
    enum qc_status st;
    if (o->epochs >= 0) {
        *epochs = o->epochs;
        return QC_OK;
    }
    st = qc_recipe_int(r, "", "Epochs", -1, &e);
    if (st != QC_OK)
        return st;
    if (e < 0) {
        qc_log_error("%s: how many epochs? Give --epochs N or Epochs=N in the recipe",
                     qc_recipe_path(r));
        return QC_ERR_INVAL;
    }
    *epochs = (int)QC_MIN(e, 1000000);
    return QC_OK;
}

/* After training: report collect, plots, exports, folding, the export's
 * test, the report. */
/* The integer-only export of g with the options' input scale, INT4 storage
 * and output form; its figures go into res. */
static enum qc_status export_int(struct qc_graph *g, const struct qc_convert_options *o,
                                 struct qc_int_notes *notes, struct qc_convert_result *res)
{
    struct qc_int_opts io = { o->input_scale, !o->no_int4, o->int_output };
    struct qc_int_stats is;
    enum qc_status st = qc_export_int(g, &io, &is, notes);
    if (st != QC_OK)
        return st;
    res->n_int_layers = is.n_layers;
    res->n_requant = is.n_requant;
    res->n_int4 = is.n_int4;
    res->weight_bytes = is.weight_bytes;
    return QC_OK;
}

/* The figures of the last test evaluation (conf) into res; conf stays
 * for the report and the plots. */
static void test_metrics(const struct qc_confusion *conf, struct qc_convert_result *res)
{
    res->test_top5 = qc_confusion_metric(conf, QC_METRIC_TOP5);
    res->test_macro_f1 = qc_confusion_metric(conf, QC_METRIC_F1);
}

/* --plots: the confusion matrix of the last test evaluation. */
static enum qc_status plot_confusion(const char *dir, const struct qc_confusion *conf,
                                     const char *title)
{
    char path[4096];
    enum qc_status st = qc_plot_make_dir(dir);
    if (st != QC_OK)
        return st;
    if (!qc_plot_file_name(dir, "confusion", ".png", path, sizeof(path))) {
        qc_log_error("%s: the plot directory's name is too long", dir);
        return QC_ERR_INVAL;
    }
    return qc_plot_confusion(path, title, conf->counts, conf->classes);
}

static enum qc_status export_trained(struct qc_graph *g, const struct qc_recipe *r,
                                     struct qc_trainer *tr, struct qc_backend *be,
                                     enum qc_format fmt, const struct qc_convert_options *o,
                                     struct qc_convert_result *res, bool *quantized,
                                     struct qc_confusion *conf)
{
    const char *tested = conf->n ? "trained model" : NULL;
    struct conv c = { g, qc_trainer_plan(tr), be };
    struct qc_report layers = { NULL, 0 };
    struct qc_int_notes notes = { 0, 0, NULL }, qnotes = { 0, 0, NULL };
    bool integer = qc_trainer_integer(tr);
    int n_quant = qc_trainer_n_quant(tr);
    enum qc_status st = QC_OK;

    if (o->report) {
        st = qc_report_collect(g, c.plan, &layers);
        if (st != QC_OK)
            goto out;
    }
    if (o->plots && n_quant > 0) {
        st = plot_weights(&c, o->plots);
        if (st == QC_OK)
            st = quant_notes(&c, &qnotes);
        if (st != QC_OK)
            goto out;
    }
    if (fmt == QC_FORMAT_INT && n_quant == 0) {
        qc_log_error("%s: --format int needs a recipe that quantizes (QWeight/QAct)",
                     qc_recipe_path(r));
        st = QC_ERR_INVAL;
        goto out;
    }
    *quantized = n_quant > 0 && fmt != QC_FORMAT_FLOAT;
    if (n_quant > 0 && fmt != QC_FORMAT_FLOAT) {
        struct qc_export_stats es;
        /* levels beyond int8: int16 at opset 21, unless --opset asked for less */
        enum qc_wide_levels wide = fmt == QC_FORMAT_INT            ? QC_WIDE_INT16_ANY
                                   : o->opset > 0 && o->opset < 21 ? QC_WIDE_FLOAT
                                                                   : QC_WIDE_INT16;
        st = qc_export_fake(g, c.plan, o->dump_weights, wide, &es);
        if (st != QC_OK)
            goto out;
        res->n_float_weights = es.n_float_weights;
    }
    /* the QIn Identity nodes go: a QuantizeLinear reads the producer (or the graph
     * input, where the int export finds the input quantizer) */
    st = qc_qin_drop(g);
    if (st != QC_OK)
        goto out;
    if (fmt == QC_FORMAT_INT) {
        st = export_int(g, o, &notes, res);
        if (st != QC_OK)
            goto out;
    }
    if (o->plots) {
        st = plot_graph(g, o->plots, &notes, &qnotes);
        if (st != QC_OK)
            goto out;
    }
    if (o->fold_bn && fmt != QC_FORMAT_INT) {
        st = qc_fold_bn(g, &res->n_folded_bn);
        if (st != QC_OK)
            goto out;
    }
    if (qc_trainer_has_test(tr) && !o->int_output &&
        (o->fold_bn || (n_quant > 0 && fmt != QC_FORMAT_FLOAT))) {
        qc_confusion_clear(conf);
        st = qc_trainer_eval_graph(
            tr, integer && fmt == QC_FORMAT_INT ? "test (after, integer graph)" : "test (export)",
            &res->test_export, conf);
        if (st != QC_OK)
            goto out;
        if (integer && fmt == QC_FORMAT_INT)
            res->test_after = res->test_export;
        test_metrics(conf, res);
        tested = "exported graph";
    }
    if (o->plots && tested) {
        char title[128];
        snprintf(title, sizeof(title), "test confusion matrix, %s", tested);
        st = plot_confusion(o->plots, conf, title);
        if (st != QC_OK)
            goto out;
    }
    if (o->report)
        st = qc_report_write(o->report, &layers, res, tested ? conf : NULL, tested, g->path,
                             qc_recipe_path(r));
out:
    qc_report_clear(&layers);
    qc_int_notes_free(&notes);
    qc_int_notes_free(&qnotes);
    return st;
}

/* The recipe path: train, then export_trained. */
static enum qc_status convert_trained(struct qc_graph *g, const struct qc_recipe *r,
                                      const struct qc_job_options *jo, struct qc_backend **be,
                                      const struct qc_convert_options *o, struct qc_comm *comm,
                                      struct qc_convert_result *res, bool *quantized)
{
    struct qc_train_opts to;
    struct qc_train_stats ts;
    struct qc_trainer *tr = NULL;
    struct qc_confusion conf = { 0 };
    enum qc_format fmt = o->format;
    enum qc_status st;

    res->trained = true;
    res->valid_metric = o->valid_metric;
    /* a QDQ or integer model: quantizing it again is refused (eval and the
     * no-recipe rewrite still read it) */
    st = qc_import_check_trainable(g);
    if (st != QC_OK)
        return st;
    st = epochs_of(o, r, &res->epochs);
    if (st != QC_OK)
        return st;
    if (!*be) {
        char dev[32];
        const char *device = jo->device ? jo->device : "cpu";
        if (qc_comm_size(comm) > 1 && strcmp(device, "cuda") == 0) {
            /* data parallelism: one GPU per rank, the rank's local one */
            snprintf(dev, sizeof(dev), "cuda:%d", qc_comm_local_rank(comm));
            device = dev;
        }
        st = qc_backend_new(device, jo->threads, be);
        if (st == QC_OK && jo->tf32)
            st = qc_backend_allow_tf32(*be);
        if (st != QC_OK)
            return st;
        qc_backend_set_max_memory(*be, jo->max_memory);
    }
    to = (struct qc_train_opts){
        .epochs = res->epochs,
        .batch = o->batch,
        .seed = o->seed,
        .keep_best = !o->keep_last,
        .shuffle = !o->no_shuffle,
        .limit = o->limit,
        .checkpoint = o->checkpoint,
        .checkpoint_every = o->checkpoint_every,
        .resume = o->resume,
        .skip_eval = o->no_eval,
        .valid_metric = o->valid_metric,
        .distill_temperature = o->distill_temperature,
        .distill_weight = o->distill_weight,
        .log = o->log,
        .progress = { o->progress, o->progress_user },
        .fold_bn = qc_fold_bn,
        .comm = comm,
    };
    /* ONNX_init=0: the weights start from the recipe's fillers (recipe/fill.h) */
    if (!o->resume) {
        int n_filled = 0;
        st = qc_recipe_fill_weights(r, g, o->seed, &n_filled);
        if (st != QC_OK)
            return st;
    }
    /* QIn: an Identity in front of each layer whose own input is quantized (quant/qin.h) */
    st = qc_qin_insert(g, r, NULL);
    if (st == QC_OK)
        st = qc_trainer_new(g, r, *be, &to, &tr);
    if (st != QC_OK)
        goto out;
    /* Mode=Integer: the integer graph is the product; its evaluation is the
     * "after" figure */
    if (qc_trainer_integer(tr) && fmt == QC_FORMAT_AUTO)
        fmt = QC_FORMAT_INT;
    if (o->valid_metric == QC_METRIC_TOP5 &&
        qc_plan_output(qc_trainer_plan(tr), 0)->shape.dims[1] < 5) {
        qc_log_error("%s: --valid-metric Top5 needs at least 5 classes (the model has %lld)",
                     g->path, (long long)qc_plan_output(qc_trainer_plan(tr), 0)->shape.dims[1]);
        st = QC_ERR_INVAL;
        goto out;
    }
    res->n_folded_bn = qc_trainer_n_folded_bn(tr);
    if (qc_trainer_n_quant(tr) > 0 && !o->resume) {
        st = qc_trainer_calibrate(tr);
        if (st != QC_OK)
            goto out;
    }
    if (qc_trainer_has_test(tr) && qc_trainer_n_quant(tr) > 0) {
        st = qc_trainer_eval_graph(tr, "test (float)", &res->test_float, NULL);
        if (st != QC_OK)
            goto out;
    }
    if (qc_trainer_has_test(tr)) {
        st = qc_trainer_eval_test(tr, "test (before)", &res->test_before, NULL);
        if (st != QC_OK)
            goto out;
    }
    st = qc_trainer_run(tr, &ts);
    if (st != QC_OK)
        goto out;
    res->valid_best = ts.valid_best;
    res->best_epoch = ts.best_epoch;
    res->epochs_run = ts.epochs_run;
    res->last_loss = ts.last_loss;
    res->secs = ts.secs;
    res->images = ts.images;
    if (qc_trainer_has_test(tr) && !(qc_trainer_integer(tr) && fmt == QC_FORMAT_INT)) {
        st = qc_trainer_eval_test(tr, "test (after)", &res->test_after, &conf);
        if (st != QC_OK)
            goto out;
        test_metrics(&conf, res);
    }
    st = qc_trainer_store(tr);
    if (st != QC_OK)
        goto out;
    res->n_quant = qc_trainer_n_quant(tr);
    st = export_trained(g, r, tr, *be, fmt, o, res, quantized, &conf);
out:
    qc_confusion_clear(&conf);
    qc_trainer_free(tr);
    return st;
}

/* The data input bound for the run (plan/inputs.h): with a recipe, to its
 * images at the run's batch; without, only a fixed batch of 1 made symbolic
 * for --dynamic-batch. */
static enum qc_status bind_inputs(struct qc_graph *g, const struct qc_recipe *r,
                                  const struct qc_convert_options *o, struct qc_comm *comm,
                                  struct qc_input_binding **b)
{
    struct qc_data_cfg *cfg = NULL;
    int64_t batch = 1;
    enum qc_status st;
    if (r) {
        st = qc_data_cfg_from_recipe(r, &cfg);
        if (st != QC_OK)
            return st;
        batch = o->batch ? o->batch : qc_data_cfg_batch(cfg);
        if (qc_comm_size(comm) > 1) {
            /* data parallelism: this rank's slice of the global batch (train.c) */
            int64_t ranks = qc_comm_size(comm), rk = qc_comm_rank(comm);
            batch = QC_MAX((rk + 1) * batch / ranks - rk * batch / ranks, 1);
        }
    }
    st = qc_pipeline_bind_inputs(g, r, cfg, batch, o->dynamic_batch, b);
    qc_data_cfg_free(cfg);
    return st;
}

/* The no-recipe path: check, and --format int rewrites a QDQ model. */
static enum qc_status convert_untrained(struct qc_graph *g, const struct qc_job_options *jo,
                                        const struct qc_convert_options *o,
                                        struct qc_convert_result *res, bool *quantized)
{
    struct qc_backend *cpu = NULL;
    struct qc_plan *p = NULL;
    enum qc_status st;

    st = qc_backend_new("cpu", jo->threads, &cpu);
    if (st != QC_OK)
        goto out;
    qc_backend_set_max_memory(cpu, jo->max_memory);
    st = qc_plan_new(g, cpu, 1, &p);
    if (st != QC_OK)
        goto out;
    if (o->format == QC_FORMAT_INT) {
        /* a fake-quant (QDQ) model rewritten as the integer-only one */
        qc_plan_free(p);
        p = NULL;
        *quantized = true;
        st = export_int(g, o, NULL, res);
    } else if (o->format == QC_FORMAT_FAKE || o->plots || o->fold_bn) {
        qc_log_error("%s: --format fake, --plots and --fold-bn need a recipe (-r)", g->path);
        st = QC_ERR_INVAL;
    }
out:
    qc_plan_free(p);
    qc_backend_free(cpu);
    return st;
}

enum qc_status qc_pipeline_convert(struct qc_graph *g, const struct qc_recipe *r,
                                   const struct qc_job_options *jo, struct qc_backend **be,
                                   const struct qc_convert_options *o,
                                   struct qc_convert_result *res)
{
    return qc_pipeline_convert_dist(g, r, jo, be, o, NULL, res);
}

enum qc_status qc_pipeline_convert_dist(struct qc_graph *g, const struct qc_recipe *r,
                                        const struct qc_job_options *jo, struct qc_backend **be,
                                        const struct qc_convert_options *o_in, struct qc_comm *comm,
                                        struct qc_convert_result *res)
{
    struct qc_convert_options o_rank = *o_in;
    const struct qc_convert_options *o = &o_rank;
    struct qc_input_binding *bind = NULL;
    bool quantized = false;
    enum qc_status st;

    memset(res, 0, sizeof(*res));
    res->test_before = res->test_after = res->valid_best = -1.0;
    res->test_float = res->test_export = -1.0;
    res->test_top5 = res->test_macro_f1 = -1.0;
    if (o->opset > 0) {
        /* --opset: the graph is rewritten first, so training, the exports
         * (which may need a newer opset still) and the file all see it */
        if (o->opset < g->opset) {
            qc_log_error("%s: --opset %lld is below the model's opset %lld (qatconv only "
                         "raises opsets)",
                         g->path, (long long)o->opset, (long long)g->opset);
            return QC_ERR_INVAL;
        }
        st = qc_opset_upgrade(g, o->opset);
        if (st != QC_OK)
            return st;
    }
    if (qc_comm_rank(comm) != 0) {
        /* data parallelism: rank 0 alone writes the report and the plots
         * (train.c: the checkpoints and the log; the CLI: the model) */
        o_rank.report = NULL;
        o_rank.plots = NULL;
    }
    st = bind_inputs(g, r, o, comm, &bind);
    if (st == QC_OK && !r)
        st = convert_untrained(g, jo, o, res, &quantized);
    else if (st == QC_OK)
        st = convert_trained(g, r, jo, be, o, comm, res, &quantized);
    /* the written model: its inputs as declared (or a symbolic batch), its
     * element types (--keep-dtype) */
    qc_inputs_unbind(g, bind, o->dynamic_batch && st == QC_OK);
    if (st == QC_OK)
        st = qc_inputs_write_dtypes(g, !quantized, !o->no_keep_dtype);
    return st;
}
