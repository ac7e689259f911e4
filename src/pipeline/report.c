/*
 * report.c - quantization report (see report.h).
 */
#include <config.h>

#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/log.h"
#include "ops/op.h"
#include "quant/qspec.h"

static int bits_of(int range)
{
    int b = 0;
    while ((1L << b) < (long)range + 1)
        b++;
    return b;
}

/* The node that consumes v, if exactly one does. */
static int single_consumer(const struct qc_graph *g, int v)
{
    int found = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] == v) {
                if (found >= 0 && found != i)
                    return -1;
                found = i;
            }
    return found;
}

/* The activation quantizer on node n's output path: n's own output, or a
 * BatchNormalization / ReLU / Clip chain after it. */
static int act_quant_after(const struct qc_graph *g, const struct qc_plan *p, int node)
{
    for (int hops = 0; hops < 3 && node >= 0; hops++) {
        int v = g->nodes[node].n_out > 0 ? g->nodes[node].out[0] : -1;
        for (int i = 0; i < qc_plan_n_quants(p); i++) {
            const struct qc_quant_spec *sp = qc_plan_quant_spec(p, i);
            if (!sp->weight && sp->value == v)
                return i;
        }
        node = v >= 0 ? single_consumer(g, v) : -1;
        if (node >= 0 && !qc_op_extends_cell(g->nodes[node].kind))
            return -1;
    }
    return -1;
}

enum qc_status qc_report_collect(const struct qc_graph *g, const struct qc_plan *p,
                                 struct qc_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->layers = qc_calloc((size_t)g->n_nodes + 1, sizeof(*rep->layers));
    if (!rep->layers)
        return QC_ERR_NOMEM;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        struct qc_report_layer *l;
        int64_t wn = 0, bn;
        int aq, ws;
        if (!qc_op_is_weighted(n->kind))
            continue;
        l = &rep->layers[rep->n_layers++];
        snprintf(l->name, sizeof(l->name), "%s", qc_node_label(g, n));
        snprintf(l->op, sizeof(l->op), "%s", n->op_type);
        snprintf(l->wmethod, sizeof(l->wmethod), "float");
        snprintf(l->amethod, sizeof(l->amethod), "float");
        l->wbits = l->abits = 32;
        l->params = qc_node_param_count(g, n);
        ws = qc_op_weight_input(n);
        if (ws >= 0 && g->values[n->in[ws]].init)
            wn = qc_tensor_nelem(g->values[n->in[ws]].init);
        for (int q = 0; q < qc_plan_n_quants(p); q++) {
            struct qc_plan_quant_info qi;
            const struct qc_quant_spec *sp = qc_plan_quant_spec(p, q);
            enum qc_status st;
            if (!sp->weight || sp->node != i)
                continue;
            if ((st = qc_plan_quant_info(p, q, &qi)) != QC_OK)
                return st;
            snprintf(l->wmethod, sizeof(l->wmethod), "%s",
                     qi.spec->method == QC_QM_SAT ? "SAT" : "LSQ");
            l->wbits = qi.spec->method == QC_QM_SAT && !qi.spec->sat.apply_quant
                           ? 32 : bits_of(qi.spec->range);
            l->wstep = qi.spec->method == QC_QM_SAT ? qi.sat_scale : qi.param;
        }
        aq = act_quant_after(g, p, i);
        if (aq >= 0) {
            struct qc_plan_quant_info qi;
            enum qc_status st = qc_plan_quant_info(p, aq, &qi);
            if (st != QC_OK)
                return st;
            snprintf(l->amethod, sizeof(l->amethod), "%s",
                     qi.spec->method == QC_QM_SAT ? "SAT" : "LSQ");
            l->abits = bits_of(qi.spec->range);
            l->aparam = qi.param;
        }
        bn = l->params - wn;
        l->bytes = (wn * l->wbits + 7) / 8 + bn * 4;
    }
    return QC_OK;
}

void qc_report_clear(struct qc_report *rep)
{
    qc_free(rep->layers);
    memset(rep, 0, sizeof(*rep));
}

/* JSON string body with the characters that need it escaped. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_pct(FILE *f, const char *key, double v, bool comma)
{
    fprintf(f, "    \"%s\": ", key);
    if (v < 0)
        fprintf(f, "null");
    else
        fprintf(f, "%.2f", v);
    fprintf(f, "%s\n", comma ? "," : "");
}

/* A percentage, or null when negative (not measured). */
static void json_num(FILE *f, double v)
{
    if (v < 0)
        fprintf(f, "null");
    else
        fprintf(f, "%.4f", v);
}

/* The "test" object: the metrics of one evaluation (see report.h). */
static void json_test(FILE *f, const struct qc_confusion *c, const char *tested)
{
    int64_t k = c->classes;
    fprintf(f, "  \"test\": {\n    \"graph\": ");
    json_str(f, tested);
    fprintf(f, ",\n    \"images\": %lld,\n    \"top1\": ", (long long)c->n);
    json_num(f, qc_confusion_metric(c, QC_METRIC_TOP1));
    fprintf(f, ",\n    \"top5\": ");
    json_num(f, qc_confusion_metric(c, QC_METRIC_TOP5));
    fprintf(f, ",\n    \"unlisted_labels\": %lld,\n    \"macro\": {\"precision\": ",
            (long long)c->n_unlisted);
    json_num(f, qc_confusion_metric(c, QC_METRIC_PRECISION));
    fprintf(f, ", \"recall\": ");
    json_num(f, qc_confusion_metric(c, QC_METRIC_SENSITIVITY));
    fprintf(f, ", \"f1\": ");
    json_num(f, qc_confusion_metric(c, QC_METRIC_F1));
    fprintf(f, "},\n    \"classes\": [\n");
    for (int64_t i = 0; i < k; i++) {
        struct qc_class_metrics m;
        qc_confusion_class(c, i, &m);
        fprintf(f,
                "      {\"class\": %lld, \"images\": %lld, \"predicted\": %lld, "
                "\"precision\": %.4f, \"recall\": %.4f, \"f1\": %.4f}%s\n",
                (long long)i, (long long)(m.tp + m.fn), (long long)(m.tp + m.fp),
                100.0 * m.precision, 100.0 * m.recall, 100.0 * m.f1, i + 1 < k ? "," : "");
    }
    fprintf(f, "    ],\n    \"confusion\": [\n");
    for (int64_t i = 0; i < k; i++) {
        fprintf(f, "      [");
        for (int64_t j = 0; j < k; j++)
            fprintf(f, "%s%lld", j ? ", " : "", (long long)c->counts[i * k + j]);
        fprintf(f, "]%s\n", i + 1 < k ? "," : "");
    }
    fprintf(f, "    ]\n  },\n");
}

enum qc_status qc_report_write(const char *path, const struct qc_report *rep,
                               const struct qc_convert_result *tr, const struct qc_confusion *conf,
                               const char *tested, const char *model, const char *recipe)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int64_t params = 0, bytes = 0;
    enum qc_status st;

    if (!f) {
        qc_log_error("%s: cannot build the report", path);
        return QC_ERR_NOMEM;
    }
    fprintf(f, "{\n  \"model\": ");
    json_str(f, model);
    fprintf(f, ",\n  \"recipe\": ");
    json_str(f, recipe);
    fprintf(f, ",\n  \"layers\": [\n");
    for (int i = 0; i < rep->n_layers; i++) {
        const struct qc_report_layer *l = &rep->layers[i];
        params += l->params;
        bytes += l->bytes;
        fprintf(f, "    {\"name\": ");
        json_str(f, l->name);
        fprintf(f, ", \"op\": \"%s\", \"weights\": \"%s\", \"weight_bits\": %d, "
                   "\"weight_scale\": %.9g, \"activations\": \"%s\", \"activation_bits\": %d, "
                   "\"activation_param\": %.9g, \"parameters\": %lld, \"bytes\": %lld}%s\n",
                l->op, l->wmethod, l->wbits, l->wstep, l->amethod, l->abits, l->aparam,
                (long long)l->params, (long long)l->bytes, i + 1 < rep->n_layers ? "," : "");
    }
    fprintf(f, "  ],\n  \"totals\": {\"parameters\": %lld, \"bytes\": %lld, "
               "\"float_bytes\": %lld", (long long)params, (long long)bytes,
            (long long)params * 4);
    if (tr->n_int_layers > 0)
        /* what the integer export stores: INT4 or int8 per weight */
        fprintf(f, ", \"integer_layers\": %d, \"integer_weight_bytes\": %lld, "
                   "\"int4_weights\": %d", tr->n_int_layers, (long long)tr->weight_bytes,
                tr->n_int4);
    fprintf(f, "},\n");
    fprintf(f, "  \"accuracy\": {\n");
    json_pct(f, "float", tr->test_float, true);
    json_pct(f, "before", tr->test_before, true);
    json_pct(f, "after", tr->test_after, true);
    json_pct(f, "export", tr->test_export, true);
    json_pct(f, "best_validation", tr->valid_best, false);
    fprintf(f, "  },\n  \"validation\": {\"metric\": \"%s\", \"best\": ",
            qc_metric_name(tr->valid_metric));
    /* Informedness and Markedness may be negative: the epoch says whether
     * there is a figure */
    if (tr->best_epoch > 0)
        fprintf(f, "%.4f", tr->valid_best);
    else
        fprintf(f, "null");
    fprintf(f, ", \"epoch\": %d},\n", tr->best_epoch > 0 ? tr->best_epoch : 0);
    if (conf && conf->counts)
        json_test(f, conf, tested ? tested : "");
    else
        fprintf(f, "  \"test\": null,\n");
    fprintf(f, "  \"epochs\": %d,\n  \"seconds\": %.2f,\n  \"training_images\": %lld\n}\n",
            tr->epochs_run, tr->secs, (long long)tr->images);
    if (fclose(f) != 0 || !buf) {
        qc_free(buf);
        qc_log_error("%s: cannot build the report", path);
        return QC_ERR_NOMEM;
    }
    st = qc_write_file_atomic(path, buf, len);
    free(buf);
    return st;
}
