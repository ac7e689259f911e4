/*
 * audit.c - what a recipe's N2D2 keys do here (see audit.h).  Every key the
 * schema accepts either acts as in N2D2 or gets one warning here, once per
 * key name (at the first place it is written, with how many others), saying
 * why it has no effect:
 *   [sp] CompositeLabel, [onnx] Ignore, [onnx] File naming another model,
 *   NoBias, ActivationFunction (except Linear with an unsigned QAct: N2D2's
 *   quantized ReLU, computed exactly by the graph's Relu and the quantizer),
 *   WeightsFiller.* / BiasFiller.* with ONNX_init=1,
 *   QWeightSolver.Decay / QActSolver.Decay (no decay on quantizer parameters),
 *   solver families other than Solvers.* in the global section,
 *   [soft1] WithLoss=0, [soft1.Target] TargetValue != 1, DefaultValue != 0,
 *   TopN, LabelsMapping, CreateMissingLabels.
 * Errors (file:line): a Softmax Input naming no node or value of the model or
 * another value than the logits, two Softmax sections, NbOutputs other than
 * the logits' classes, an ONNX Input naming no [sp]/[env] section.
 */
#include <config.h>

#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"
#include "schema.h"
#include "util/log.h"

#define MAX_WARNED 64

/* The key names already warned about (one warning per name). */
struct warned {
    const char *key[MAX_WARNED];
    int n;
};

int qc_recipe_logits_value(const struct qc_graph *g)
{
    if (g->n_outputs < 1)
        return -1;
    int v = g->outputs[0];
    int prod = g->values[v].producer;
    if (prod >= 0 &&
        (g->nodes[prod].kind == QC_OP_SOFTMAX || g->nodes[prod].kind == QC_OP_LOG_SOFTMAX) &&
        g->nodes[prod].n_in > 0)
        v = g->nodes[prod].in[0];
    return v;
}

static int find_class(const struct qc_recipe *r, enum sec_class cls)
{
    for (int i = 0; i < qc_recipe_n_sections(r); i++)
        if (qc_recipe_section_class(r, i) == (int)cls)
            return i;
    return -1;
}

bool qc_recipe_onnx_init(const struct qc_recipe *r)
{
    int64_t v = 1;
    int i = find_class(r, SEC_ONNX);
    if (i >= 0 && qc_recipe_int(r, qc_recipe_section_name(r, i), "ONNX_init", 1, &v) != QC_OK)
        v = 1; /* checked as 0/1 when the recipe was loaded */
    return v != 0;
}

enum qc_status qc_recipe_default_device(const struct qc_recipe *r, const char **device)
{
    const char *v = NULL;
    char where[512];
    *device = NULL;
    qc_recipe_str(r, "", "DefaultModel", NULL, &v);
    if (!v)
        return QC_OK;
    if (strcmp(v, "Frame") == 0)
        *device = "cpu";
    else if (strcmp(v, "Frame_CUDA") == 0)
        *device = "cuda";
    else {
        qc_log_error("%s: DefaultModel=%s: expected Frame (the CPU) or Frame_CUDA (the CUDA "
                     "device)",
                     qc_recipe_where(r, "", "DefaultModel", where, sizeof(where)), v);
        return QC_ERR_RECIPE;
    }
    return QC_OK;
}

/* Every place section classes `cls` write `key` (own values): how many, and the
 * first "file:line" into where. */
static int count_key(const struct qc_recipe *r, const char *key, char *where, size_t len)
{
    int n = 0;
    for (int i = 0; i < qc_recipe_n_sections(r); i++)
        for (int j = 0; j < qc_recipe_n_keys(r, i); j++) {
            bool own;
            int line;
            if (strcmp(qc_recipe_key(r, i, j, &own, &line), key) != 0 || !own)
                continue;
            if (n++ == 0)
                snprintf(where, len, "%s:%d", qc_recipe_path(r), line);
        }
    return n;
}

/* One warning for `key` (the first time it comes), naming where it is written. */
static void warn_once(const struct qc_recipe *r, struct warned *w, const char *sec, const char *key,
                      const char *why)
{
    char where[512] = "";
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->key[i], key) == 0)
            return;
    if (w->n < MAX_WARNED)
        w->key[w->n++] = key;
    int n = count_key(r, key, where, sizeof(where));
    if (!*sec)
        sec = "global section";
    if (n > 1)
        qc_log_warn("%s: [%s] %s has no effect (and in %d other place%s): %s", where, sec, key,
                    n - 1, n > 2 ? "s" : "", why);
    else
        qc_log_warn("%s: [%s] %s has no effect: %s", where, sec, key, why);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The [soft1] section: Input names the logits' node (or value), NbOutputs
 * their classes. */
static enum qc_status check_softmax(const struct qc_recipe *r, const struct qc_graph *g, int si)
{
    const char *sec = qc_recipe_section_name(r, si), *in = NULL;
    char where[512];
    int logits = qc_recipe_logits_value(g), v = -1;
    int64_t nb = 0;
    enum qc_status st;

    qc_recipe_str(r, sec, "Input", NULL, &in);
    if (!in) {
        qc_log_error("%s:%d: [%s] Type=Softmax needs Input=<node>: the node whose output "
                     "are the logits",
                     qc_recipe_path(r), qc_recipe_section_line(r, si), sec);
        return QC_ERR_RECIPE;
    }
    qc_recipe_where(r, sec, "Input", where, sizeof(where));
    int ni = qc_graph_find_node(g, in);
    if (ni >= 0 && g->nodes[ni].n_out > 0)
        v = g->nodes[ni].out[0];
    else
        v = qc_graph_find_value(g, in);
    if (v < 0) {
        qc_log_error("%s: [%s] Input=%s: the model %s has no node or value named '%s'", where, sec,
                     in, g->path, in);
        return QC_ERR_RECIPE;
    }
    /* Input naming the model's own final Softmax: the loss is on its input as well */
    if (v != logits && !(g->n_outputs > 0 && v == g->outputs[0])) {
        qc_log_error("%s: [%s] Input=%s: the loss is taken on the logits '%s' (the first "
                     "output, or the input of a final Softmax); a loss on another node is "
                     "not supported",
                     where, sec, in, logits >= 0 ? g->values[logits].name : "?");
        return QC_ERR_RECIPE;
    }
    st = qc_recipe_int(r, sec, "NbOutputs", 0, &nb);
    if (st != QC_OK)
        return st;
    if (nb > 0 && logits >= 0 && g->values[logits].has_shape && g->values[logits].shape.ndim == 2 &&
        g->values[logits].shape.dims[1] > 0 && g->values[logits].shape.dims[1] != nb) {
        qc_log_error("%s: [%s] NbOutputs=%lld: the logits '%s' have %lld classes",
                     qc_recipe_where(r, sec, "NbOutputs", where, sizeof(where)), sec, (long long)nb,
                     g->values[logits].name, (long long)g->values[logits].shape.dims[1]);
        return QC_ERR_RECIPE;
    }
    return QC_OK;
}

/* [onnx] Input names the stimuli section ([sp] or [env]). */
static enum qc_status check_onnx_input(const struct qc_recipe *r, int si)
{
    const char *sec = qc_recipe_section_name(r, si), *in = NULL;
    char where[512];
    qc_recipe_str(r, sec, "Input", NULL, &in);
    if (!in)
        return QC_OK;
    for (int i = 0; i < qc_recipe_n_sections(r); i++)
        if (strcmp(qc_recipe_section_name(r, i), in) == 0 &&
            qc_recipe_section_class(r, i) == SEC_SP)
            return QC_OK;
    qc_log_error("%s: [%s] Input=%s: expected the stimuli section ([sp] or [env]) that feeds "
                 "the model",
                 qc_recipe_where(r, sec, "Input", where, sizeof(where)), sec, in);
    return QC_ERR_RECIPE;
}

static bool has_prefix(const char *key, const char *pre)
{
    size_t n = strlen(pre);
    return strncmp(key, pre, n) == 0 && (key[n] == '\0' || key[n] == '.');
}

static bool value_is(const struct qc_recipe *r, const char *sec, const char *key, double want)
{
    double v = want;
    return qc_recipe_float(r, sec, key, want, &v) != QC_OK || v == want;
}

/* ActivationFunction=Linear with QAct=SAT or an unsigned QAct=LSQ: N2D2's idiom for a
 * quantized ReLU (the quantizer clamps at 0), which the graph's Relu followed by the
 * quantizer computes exactly. */
static bool linear_as_relu(const struct qc_recipe *r, const char *sec)
{
    const char *af = NULL, *qa = NULL;
    int64_t sgn = 0;
    qc_recipe_str(r, sec, "ActivationFunction", "", &af);
    qc_recipe_str(r, sec, "QAct", "none", &qa);
    if (qc_recipe_int(r, sec, "QAct.Signed", 0, &sgn) != QC_OK)
        sgn = 0;
    return strcmp(af, "Linear") == 0 &&
           (strcmp(qa, "SAT") == 0 || (strcmp(qa, "LSQ") == 0 && sgn == 0));
}

/* The warning of one own key of section si, if it has no effect. */
static void audit_key(const struct qc_recipe *r, const struct qc_graph *g, struct warned *w, int si,
                      const char *key, bool onnx_init)
{
    const char *sec = qc_recipe_section_name(r, si), *v = NULL;
    enum sec_class cls = (enum sec_class)qc_recipe_section_class(r, si);
    char why[512];

    switch (cls) {
    case SEC_SP:
        if (strcmp(key, "CompositeLabel") == 0)
            warn_once(r, w, sec, key,
                      "labels are one class per image; N2D2's composite (per-pixel) "
                      "labels are not supported");
        return;
    case SEC_ONNX:
        if (strcmp(key, "Ignore") == 0)
            warn_once(r, w, sec, key, "every node of the ONNX graph is kept");
        if (strcmp(key, "File") == 0) {
            qc_recipe_str(r, sec, key, "", &v);
            if (strcmp(base_name(v), base_name(g->path)) != 0) {
                snprintf(why, sizeof(why), "the model is the command line's %s, not %s", g->path,
                         v);
                warn_once(r, w, sec, key, why);
            }
        }
        return;
    case SEC_SOFTMAX:
        if (strcmp(key, "WithLoss") == 0 && value_is(r, sec, key, 0.0))
            warn_once(r, w, sec, key,
                      "the loss is always softmax cross-entropy on the logits (N2D2's "
                      "WithLoss=1)");
        return;
    case SEC_TARGET:
        if ((strcmp(key, "TargetValue") == 0 && !value_is(r, sec, key, 1.0)) ||
            (strcmp(key, "DefaultValue") == 0 && !value_is(r, sec, key, 0.0)))
            warn_once(r, w, sec, key,
                      "the cross-entropy target is one-hot (TargetValue=1, DefaultValue=0)");
        else if (strcmp(key, "TopN") == 0)
            warn_once(r, w, sec, key, "the report gives top-1 and top-5");
        else if (strcmp(key, "LabelsMapping") == 0 || strcmp(key, "CreateMissingLabels") == 0)
            warn_once(r, w, sec, key,
                      "the dataset's labels 0..N-1 index the logits directly (no label "
                      "mapping file)");
        return;
    case SEC_GLOBAL:
    case SEC_NODE:
        break;
    case SEC_DATABASE:
    case SEC_TRANSFORM:
        return;
    }
    if (cls == SEC_GLOBAL && (has_prefix(key, "QWeightSolver") || has_prefix(key, "QActSolver") ||
                              has_prefix(key, "WeightsSolver") || has_prefix(key, "BiasSolver") ||
                              has_prefix(key, "ScaleSolver"))) {
        warn_once(r, w, "", key,
                  "only Solvers.* in the global section are defaults for every node; write "
                  "it in the node sections");
        return;
    }
    if (strcmp(key, "NoBias") == 0)
        warn_once(r, w, sec, key,
                  "the ONNX graph's bias inputs are kept as they are (N2D2 sets NoBias from "
                  "the graph as well)");
    else if (strcmp(key, "ActivationFunction") == 0 && !linear_as_relu(r, sec))
        warn_once(r, w, sec, key,
                  "the ONNX graph's own activation nodes run (only Linear with an "
                  "unsigned QAct, which clamps at 0 as the graph's Relu does, is N2D2's "
                  "meaning)");
    else if ((has_prefix(key, "WeightsFiller") || has_prefix(key, "BiasFiller")) && onnx_init)
        warn_once(r, w, sec, key,
                  "the weights are the ONNX initializers (ONNX_init=1, the default); set "
                  "ONNX_init=0 in the ONNX section to start from the fillers");
    else if (strcmp(key, "QWeightSolver.Decay") == 0 || strcmp(key, "QActSolver.Decay") == 0)
        warn_once(r, w, sec, key,
                  "quantizer parameters (SAT alpha, LSQ steps) take no weight decay here");
}

enum qc_status qc_recipe_audit(const struct qc_recipe *r, const struct qc_graph *g)
{
    struct warned w = { .n = 0 };
    bool onnx_init = qc_recipe_onnx_init(r);
    int soft = -1;
    const char *dev;
    enum qc_status st = qc_recipe_default_device(r, &dev);

    if (st != QC_OK)
        return st;

    for (int i = 0; i < qc_recipe_n_sections(r); i++) {
        enum sec_class cls = (enum sec_class)qc_recipe_section_class(r, i);
        if (cls == SEC_SOFTMAX) {
            if (soft >= 0) {
                qc_log_error("%s:%d: [%s]: a second Type=Softmax section (the first is [%s]); "
                             "the loss is taken on one node",
                             qc_recipe_path(r), qc_recipe_section_line(r, i),
                             qc_recipe_section_name(r, i), qc_recipe_section_name(r, soft));
                return QC_ERR_RECIPE;
            }
            soft = i;
            st = check_softmax(r, g, i);
            if (st != QC_OK)
                return st;
        }
        if (cls == SEC_ONNX && (st = check_onnx_input(r, i)) != QC_OK)
            return st;
    }
    for (int i = 0; i < qc_recipe_n_sections(r); i++)
        for (int j = 0; j < qc_recipe_n_keys(r, i); j++) {
            bool own;
            const char *key = qc_recipe_key(r, i, j, &own, NULL);
            if (own)
                audit_key(r, g, &w, i, key, onnx_init);
        }
    return QC_OK;
}
