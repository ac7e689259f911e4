/*
 * qspec.c - quantizers from a recipe (see qspec.h).
 */
#include <config.h>

#include "qspec.h"

#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "ops/op.h"
#include "recipe/match.h"
#include "qin.h"

enum qc_status qc_quant_read_method(const struct qc_recipe *r, const char *sec, const char *key,
                                    int *method)
{
    const char *v;
    char where[256];
    enum qc_status st = qc_recipe_str(r, sec, key, "none", &v);
    *method = 0;
    if (st != QC_OK)
        return st;
    if (strcmp(v, "SAT") == 0)
        *method = QC_QM_SAT;
    else if (strcmp(v, "LSQ") == 0)
        *method = QC_QM_LSQ;
    else if (strcasecmp(v, "none") != 0) {
        qc_log_error("%s: [%s] %s=%s: expected SAT, LSQ or none",
                     qc_recipe_where(r, sec, key, where, sizeof(where)), sec, key, v);
        return QC_ERR_RECIPE;
    }
    return QC_OK;
}

/* F of ApplyScaling, N2D2's fan-out (the cell's output size per input):
 * kH·kW·C_out for convolutions, C_out for Fc whatever the weight layout: the
 * output-channel axis of a Gemm weight (0 with transB=1, as PyTorch exports
 * every Linear; 1 without), the last extent of a MatMul weight [.., C_in, C_out]. */
static int64_t fanout(const struct qc_node *n, const struct qc_tensor *w)
{
    int64_t f = 1;
    int axis = qc_op_weight_channel_axis(n);
    if (qc_op_cell(n->kind) == QC_CELL_CONV) {
        for (int d = 2; d < w->shape.ndim; d++)
            f *= w->shape.dims[d];
        return f * w->shape.dims[axis];
    }
    if (n->kind == QC_OP_GEMM && axis >= 0 && axis < w->shape.ndim)
        return w->shape.dims[axis];
    return w->shape.ndim > 0 ? w->shape.dims[w->shape.ndim - 1] : 1;
}

/* The weight's [outer, nch, inner] layout around its output-channel axis (op roles:
 * Conv 0, ConvTranspose 1, Gemm 0 with transB else 1, MatMul 1 of a 2-D weight). */
static enum qc_status channel_layout(const struct qc_recipe *r, const struct qc_graph *g,
                                     const struct qc_node *n, const char *sec,
                                     const struct qc_tensor *w, struct qc_channels *ch)
{
    int axis = qc_op_weight_channel_axis(n);
    char where[256];
    if (axis < 0 || axis >= w->shape.ndim || (n->kind == QC_OP_MATMUL && w->shape.ndim != 2)) {
        qc_log_error("%s: [%s] QWeight.PerChannel=1 on %s '%s': its weight (rank %d) has no "
                     "output-channel axis",
                     qc_recipe_where(r, sec, "QWeight.PerChannel", where, sizeof(where)), sec,
                     n->op_type, qc_node_label(g, n), w->shape.ndim);
        return QC_ERR_RECIPE;
    }
    ch->nch = w->shape.dims[axis];
    ch->inner = 1;
    for (int d = axis + 1; d < w->shape.ndim; d++)
        ch->inner *= w->shape.dims[d];
    return QC_OK;
}

static enum qc_status weight_spec(const struct qc_recipe *r, const struct qc_graph *g,
                                  const struct qc_node *n, const char *sec,
                                  struct qc_quant_spec *s)
{
    int slot = qc_op_weight_input(n);
    const struct qc_value *w = slot >= 0 ? &g->values[n->in[slot]] : NULL;
    const char *mode, *imode;
    int64_t range, aq, as, init, perch;
    double step;
    char where[256];
    enum qc_status st;

    if (!qc_op_quantizes_weight(n->kind) || !w || !w->init || w->init->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: [%s] QWeight on %s '%s', which has no weight initializer",
                     qc_recipe_where(r, sec, "QWeight", where, sizeof(where)), sec, n->op_type,
                     qc_node_label(g, n));
        return QC_ERR_RECIPE;
    }
    if ((st = qc_recipe_int(r, sec, "QWeight.Range", 255, &range)) != QC_OK ||
        (st = qc_recipe_str(r, sec, "QWeight.QuantMode", "Default", &mode)) != QC_OK ||
        (st = qc_recipe_int(r, sec, "QWeight.ApplyQuantization", 1, &aq)) != QC_OK ||
        (st = qc_recipe_int(r, sec, "QWeight.ApplyScaling", 0, &as)) != QC_OK ||
        (st = qc_recipe_float(r, sec, "QWeight.StepSize", 0.0, &step)) != QC_OK ||
        (st = qc_recipe_int(r, sec, "QWeight.SetOptInitStepSize", 1, &init)) != QC_OK ||
        (st = qc_recipe_str(r, sec, "QWeight.Mode", "Default", &imode)) != QC_OK ||
        (st = qc_recipe_int(r, sec, "QWeight.PerChannel", 0, &perch)) != QC_OK)
        return st;
    s->integer = strcmp(imode, "Integer") == 0;
    s->weight = true;
    s->value = n->in[slot];
    s->range = (int)range;
    s->sat.range = (int)range;
    s->sat.apply_quant = aq != 0;
    s->sat.apply_scaling = as != 0;
    s->sat.fanout = fanout(n, w->init);
    s->step = (float)step;
    s->step_init = init != 0 || step <= 0.0;
    if (!qc_sat_mode_parse(mode, &s->sat.mode)) {
        qc_log_error("%s: [%s] QWeight.QuantMode=%s: expected Default, Symmetric, Asymmetric "
                     "or FullRange", qc_recipe_where(r, sec, "QWeight.QuantMode", where,
                                                     sizeof(where)), sec, mode);
        return QC_ERR_RECIPE;
    }
    s->is_signed = true;
    s->per_channel = perch != 0;
    s->ch = (struct qc_channels){ .nch = 1, .inner = qc_tensor_nelem(w->init) };
    if (s->per_channel) {
        st = channel_layout(r, g, n, sec, w->init, &s->ch);
    }
    return st;
}

/* An activation quantizer on output 0 of n, from the keys KEY.Range, KEY.Alpha,
 * KEY.StepSize, KEY.SetOptInitStepSize and KEY.Signed (KEY: QAct, or QIn for the
 * Identity in front of a layer). */
static enum qc_status act_spec(const struct qc_recipe *r, const struct qc_graph *g,
                               const struct qc_node *n, const char *sec, const char *key,
                               struct qc_quant_spec *s)
{
    int64_t range, init, sgn;
    double alpha, step;
    const char *zp;
    char where[256], k[6][64];
    enum qc_status st;
    if (n->n_out < 1 || n->out[0] < 0 || !g->values[n->out[0]].name[0]) {
        qc_log_error("%s: [%s] %s on %s '%s', which has no output to quantize",
                     qc_recipe_where(r, sec, key, where, sizeof(where)), sec, key, n->op_type,
                     qc_node_label(g, n));
        return QC_ERR_RECIPE;
    }
    snprintf(k[0], sizeof(k[0]), "%s.Range", key);
    snprintf(k[1], sizeof(k[1]), "%s.Alpha", key);
    snprintf(k[2], sizeof(k[2]), "%s.StepSize", key);
    snprintf(k[3], sizeof(k[3]), "%s.SetOptInitStepSize", key);
    snprintf(k[4], sizeof(k[4]), "%s.Signed", key);
    snprintf(k[5], sizeof(k[5]), "%s.ZeroPoint", key);
    if ((st = qc_recipe_int(r, sec, k[0], 255, &range)) != QC_OK ||
        (st = qc_recipe_float(r, sec, k[1], 8.0, &alpha)) != QC_OK ||
        (st = qc_recipe_float(r, sec, k[2], 0.0, &step)) != QC_OK ||
        (st = qc_recipe_int(r, sec, k[3], 1, &init)) != QC_OK ||
        (st = qc_recipe_int(r, sec, k[4], 0, &sgn)) != QC_OK ||
        (st = qc_recipe_str(r, sec, k[5], "0", &zp)) != QC_OK)
        return st;
    s->zero_point = strcmp(zp, "Learned") == 0      ? QC_ZP_LEARNED
                    : strcmp(zp, "Calibrated") == 0 ? QC_ZP_CALIBRATED
                                                    : QC_ZP_NONE;
    if (s->zero_point != QC_ZP_NONE && (s->method == QC_QM_SAT || sgn != 0)) {
        qc_log_error("%s: [%s] %s=%s with %s=%s: a zero point shifts LSQ's unsigned "
                     "levels [0, R]; use %s=LSQ without %s",
                     qc_recipe_where(r, sec, k[5], where, sizeof(where)), sec, k[5], zp,
                     s->method == QC_QM_SAT ? key : k[4],
                     s->method == QC_QM_SAT ? "SAT (CG-PACT is unsigned)" : "1", key, k[4]);
        return QC_ERR_RECIPE;
    }
    if (sgn != 0 && s->method == QC_QM_SAT) {
        qc_log_error("%s: [%s] %s=1 with %s=SAT: SAT activations are CG-PACT, "
                     "unsigned [0, alpha]; use %s=LSQ for signed levels",
                     qc_recipe_where(r, sec, k[4], where, sizeof(where)), sec, k[4], key, key);
        return QC_ERR_RECIPE;
    }
    s->weight = false;
    s->is_signed = sgn != 0;
    s->value = n->out[0];
    s->range = (int)range;
    s->alpha = (float)alpha;
    s->step = (float)step;
    s->step_init = init != 0 || step <= 0.0;
    return QC_OK;
}

/* QIn of layer node i (a Conv/ConvTranspose/Gemm/MatMul with a data input): the
 * activation quantizer of the Identity qc_qin_insert put in front of it. */
static enum qc_status input_spec(const struct qc_recipe *r, const struct qc_graph *g, int i,
                                 const char *sec, struct qc_quant_spec *s)
{
    int id = qc_qin_of_layer(g, i);
    char where[256];
    if (id < 0) {
        qc_log_error("%s: [%s] QIn on %s '%s': the layer input was not prepared "
                     "(qc_qin_insert)",
                     qc_recipe_where(r, sec, "QIn", where, sizeof(where)), sec, g->nodes[i].op_type,
                     qc_node_label(g, &g->nodes[i]));
        return QC_ERR_INTERNAL;
    }
    s->node = id;
    return act_spec(r, g, &g->nodes[id], sec, "QIn", s);
}

static bool is_own_section(const struct qc_graph *g, const struct qc_node *n, const char *sec)
{
    return (n->name && strcmp(n->name, sec) == 0) ||
           (n->n_out > 0 && strcmp(g->values[n->out[0]].name, sec) == 0);
}

enum qc_status qc_quant_specs_from_recipe(const struct qc_recipe *r, const struct qc_graph *g,
                                          struct qc_quant_spec **out, int *n_out)
{
    struct qc_quant_spec *specs = qc_calloc((size_t)3 * (size_t)g->n_nodes + 1, sizeof(*specs));
    int n = 0;
    enum qc_status st = QC_OK;

    *out = NULL;
    *n_out = 0;
    if (!specs)
        return QC_ERR_NOMEM;
    for (int i = 0; i < g->n_nodes && st == QC_OK; i++) {
        const struct qc_node *node = &g->nodes[i];
        const char *sec = qc_recipe_node_section(r, g, node);
        int wm, am, im;
        /* an inserted Identity carries its layer's QIn, not the sections it matches */
        if (!sec || qc_qin_is_inserted(g, i))
            continue;
        st = qc_quant_read_method(r, sec, "QWeight", &wm);
        if (st == QC_OK)
            st = qc_quant_read_method(r, sec, "QAct", &am);
        if (st == QC_OK)
            st = qc_quant_read_method(r, sec, "QIn", &im);
        if (st != QC_OK)
            break;
        /* a pattern or default section only applies where it fits; a node's
         * own section asking for QWeight on a weightless node is an error */
        if (wm && (qc_op_quantizes_weight(node->kind) || is_own_section(g, node, sec))) {
            specs[n] = (struct qc_quant_spec){ .node = i, .method = wm, .section = sec };
            st = weight_spec(r, g, node, sec, &specs[n]);
            n++;
        }
        if (st == QC_OK && am) {
            specs[n] = (struct qc_quant_spec){ .node = i, .method = am, .section = sec };
            st = act_spec(r, g, node, sec, "QAct", &specs[n]);
            n++;
        }
        /* where it fits (qc_qin_insert reported the own sections where it does not) */
        if (st == QC_OK && im && qc_op_quantizes_weight(node->kind) && node->n_in > 0 &&
            node->in[0] >= 0 && !g->values[node->in[0]].init) {
            specs[n] = (struct qc_quant_spec){
                .node = i, .method = im, .section = sec, .layer_input = true
            };
            st = input_spec(r, g, i, sec, &specs[n]);
            n++;
        }
    }
    if (st != QC_OK) {
        qc_free(specs);
        return st;
    }
    *out = specs;
    *n_out = n;
    return QC_OK;
}
