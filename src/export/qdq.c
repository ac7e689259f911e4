/*
 * qdq.c - fake-quant (QDQ) export (see qdq.h).
 */
#include <config.h>

#include "qdq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/log.h"
#include "quant/qspec.h"
#include "ops/bind.h"
#include "opset.h"

/* An initializer of dtype dt named base+suffix: a scalar (n = 0) holding v[0], or a 1-D
 * [n] (a per-axis scale or zero point) holding v[0..n-1]; v NULL gives zeros. */
static enum qc_status initializer(struct qc_graph *g, const char *base, const char *suffix,
                                  enum qc_dtype dt, const float *v, int64_t n, int *idx)
{
    struct qc_shape s = n > 0 ? qc_shape_make(1, &n) : qc_shape_make(0, NULL);
    struct qc_tensor *t;
    char name[512];
    enum qc_status st = qc_tensor_new(dt, &s, &t);
    if (st != QC_OK)
        return st;
    for (int64_t i = 0; v && i < (n > 0 ? n : 1); i++) {
        if (dt == QC_DTYPE_F32)
            qc_tensor_f32(t)[i] = v[i];
        else if (dt == QC_DTYPE_U8)
            ((uint8_t *)t->data)[i] = (uint8_t)v[i];
        else if (dt == QC_DTYPE_I16)
            ((int16_t *)t->data)[i] = (int16_t)v[i];
        else
            ((int8_t *)t->data)[i] = (int8_t)v[i];
    }
    qc_graph_unique_name(g, base, suffix, name, sizeof(name));
    return qc_graph_add_initializer(g, name, t, idx);
}

/* A scalar initializer of dtype dt holding v. */
static enum qc_status scalar(struct qc_graph *g, const char *base, const char *suffix,
                             enum qc_dtype dt, float v, int *idx)
{
    return initializer(g, base, suffix, dt, &v, 0, idx);
}

/* Replaces every use of value `from` as a node input by `to`. */
static void rewire(struct qc_graph *g, int from, int to, int skip_node)
{
    for (int i = 0; i < g->n_nodes; i++) {
        if (i == skip_node)
            continue;
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] == from)
                g->nodes[i].in[j] = to;
    }
}

/* dump_dir/<name>.txt: "shape [..]", "scale s" (per channel: "scales s_0 s_1 ..." along
 * "axis a"), then the levels. */
static enum qc_status dump_levels(const char *dir, const char *name, const struct qc_shape *s,
                                  const float *scale, int64_t nscale, int axis, const int32_t *k,
                                  int64_t n)
{
    char path[4096], shape[256], *buf = NULL;
    size_t len = 0;
    FILE *f;
    enum qc_status st;
    int w = snprintf(path, sizeof(path), "%s/", dir);
    for (const char *c = name; *c && w < (int)sizeof(path) - 5; c++)
        path[w++] = (*c == '/' || *c == '\\') ? '_' : *c;
    snprintf(path + w, sizeof(path) - (size_t)w, ".txt");
    f = open_memstream(&buf, &len);
    if (!f)
        return QC_ERR_NOMEM;
    fprintf(f, "# %s\nshape %s\n", name, qc_shape_str(s, shape, sizeof(shape)));
    if (nscale == 1) {
        fprintf(f, "scale %.9g\n", (double)scale[0]);
    } else {
        fprintf(f, "axis %d\nscales", axis);
        for (int64_t c = 0; c < nscale; c++)
            fprintf(f, " %.9g", (double)scale[c]);
        fprintf(f, "\n");
    }
    for (int64_t i = 0; i < n; i++)
        fprintf(f, "%d\n", (int)k[i]);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return QC_ERR_NOMEM;
    }
    st = qc_write_file_atomic(path, buf, len);
    free(buf);
    return st;
}

/* Sets the int attribute `axis` of node ni (a per-axis DequantizeLinear). */
static enum qc_status set_axis(struct qc_graph *g, int ni, int64_t axis)
{
    struct qc_attr a;
    enum qc_status st;
    memset(&a, 0, sizeof(a));
    a.name = qc_strdup("axis");
    if (!a.name)
        return QC_ERR_NOMEM;
    a.type = QC_ATTR_INT;
    a.i = axis;
    st = qc_attrs_add(&g->nodes[ni].attrs, &a);
    if (st != QC_OK)
        qc_attr_clear(&a);
    return st;
}

/* The weight's level of element i times its channel's scale: what training computed. */
static float level_value(const int32_t *k, const float *scale, struct qc_channels ch, int64_t i)
{
    return (float)k[i] * scale[ch.nch > 1 ? (i / ch.inner) % ch.nch : 0];
}

static enum qc_status export_weight(struct qc_graph *g, struct qc_plan *p, int qi_index,
                                    const char *dump_dir, enum qc_wide_levels wide,
                                    const struct qc_plan_quant_info *qi,
                                    struct qc_export_stats *stats, bool *int16)
{
    const struct qc_quant_spec *sp = qi->spec;
    struct qc_value *w = &g->values[sp->value];
    const char *base = w->name;
    int64_t n = qc_tensor_nelem(w->init);
    int32_t *k = qc_malloc((size_t)n * sizeof(int32_t));
    int64_t nch = sp->ch.nch > 1 ? sp->ch.nch : 1;
    float *scale = qc_malloc((size_t)nch * sizeof(float));
    int axis = qc_op_weight_channel_axis(&g->nodes[sp->node]), dq;
    bool fits = true, fits16 = true;
    struct qc_tensor *qt = NULL;
    int vq, vs, vz, vout, in[3];
    char name[512], node[512];
    enum qc_status st = QC_ERR_NOMEM;

    if (!k || !scale) {
        qc_free(k);
        qc_free(scale);
        return QC_ERR_NOMEM;
    }
    if (sp->method == QC_QM_SAT) {
        struct qc_sat_wstate *ws = qc_calloc((size_t)nch, sizeof(*ws));
        if (!ws) {
            st = QC_ERR_NOMEM;
            goto out;
        }
        if (!sp->sat.apply_quant) {
            /* clamp stage (ApplyQuantization=0): the network computes with
             * Q = tanh(W)/max|tanh W| (/S): write Q, so the float file computes
             * what training evaluated; stage 2 then starts from Q */
            float *qv = qc_malloc((size_t)n * sizeof(float));
            st = qv ? qc_sat_weight_run_ch(&sp->sat, sp->ch, qc_tensor_f32(w->init), qv, NULL, n, 1,
                                           ws)
                    : QC_ERR_NOMEM;
            if (st == QC_OK) {
                memcpy(w->init->data, qv, (size_t)n * sizeof(float));
                stats->n_float_weights++;
            }
            qc_free(qv);
            qc_free(ws);
            goto out;
        }
        /* the per-channel image and scales 1/(R·S_c) (per tensor: one) */
        st = qc_sat_weight_run_ch(&sp->sat, sp->ch, qc_tensor_f32(w->init), NULL, k, n, 1, ws);
        for (int64_t c = 0; c < nch; c++)
            scale[c] = ws[c].scale;
        qc_free(ws);
        if (st != QC_OK)
            goto out;
    } else {
        int qn, qp;
        qc_lsq_levels(sp->range, true, &qn, &qp);
        /* the steps s_c (one per tensor) */
        if (qi->n_params != nch) {
            qc_log_error("%s: weight '%s': %lld steps for %lld channels", g->path, base,
                         (long long)qi->n_params, (long long)nch);
            st = QC_ERR_INTERNAL;
            goto out;
        }
        if ((st = qc_plan_quant_params(p, qi_index, scale)) != QC_OK)
            goto out;
        qc_lsq_image_ch(scale, sp->ch, qn, qp, qc_tensor_f32(w->init), k, n, 1);
        for (int64_t c = 0; c < nch; c++)
            scale[c] = qc_lsq_step_used(scale[c]);
    }
    if (dump_dir) {
        st = dump_levels(dump_dir, base, &w->init->shape, scale, nch, axis, k, n);
        if (st != QC_OK)
            goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        fits = fits && k[i] >= -128 && k[i] <= 127;
        fits16 = fits16 && k[i] >= -32768 && k[i] <= 32767;
    }
    if (!fits16 || (!fits && wide == QC_WIDE_FLOAT)) {
        /* exact fake-quantized floats: k·scale evaluated in float */
        for (int64_t i = 0; i < n; i++)
            qc_tensor_f32(w->init)[i] = level_value(k, scale, sp->ch, i);
        if (fits16)
            qc_log_warn("%s: weight '%s' has levels beyond int8 (QuantMode=%s, Range=%d): kept "
                        "as exact fake-quantized floats below opset 21 (--opset 21 stores them "
                        "in int16, QuantMode=Symmetric in int8)",
                        g->path, base, qc_sat_mode_name(sp->sat.mode), sp->range);
        else
            qc_log_warn("%s: weight '%s' has levels beyond int16 (Range=%d): kept as exact "
                        "fake-quantized floats",
                        g->path, base, sp->range);
        stats->n_float_weights++;
        qc_free(k);
        qc_free(scale);
        return QC_OK;
    }
    *int16 = *int16 || !fits;
    st = qc_tensor_new(fits ? QC_DTYPE_I8 : QC_DTYPE_I16, &w->init->shape, &qt);
    if (st != QC_OK)
        goto out;
    for (int64_t i = 0; i < n; i++) {
        if (fits)
            ((int8_t *)qt->data)[i] = (int8_t)k[i];
        else
            ((int16_t *)qt->data)[i] = (int16_t)k[i];
    }
    qc_graph_unique_name(g, base, "_quantized", name, sizeof(name));
    st = qc_graph_add_initializer(g, name, qt, &vq);
    qt = NULL;
    if (st != QC_OK)
        goto out;
    if (nch > 1 && /* per output channel along `axis` (opset >= 13) */
        (st = initializer(g, base, "_scale", QC_DTYPE_F32, scale, nch, &vs)) == QC_OK)
        st = initializer(g, base, "_zero_point", fits ? QC_DTYPE_I8 : QC_DTYPE_I16, NULL, nch, &vz);
    else if (nch == 1 && (st = scalar(g, base, "_scale", QC_DTYPE_F32, scale[0], &vs)) == QC_OK)
        st = scalar(g, base, "_zero_point", fits ? QC_DTYPE_I8 : QC_DTYPE_I16, 0, &vz);
    if (st != QC_OK)
        goto out;
    qc_graph_unique_name(g, base, "_dequantized", name, sizeof(name));
    st = qc_graph_value(g, name, &vout);
    if (st != QC_OK)
        goto out;
    g->values[vout].dtype = QC_DTYPE_F32;
    in[0] = vq;
    in[1] = vs;
    in[2] = vz;
    qc_graph_unique_name(g, g->values[vq].name, "_DequantizeLinear", node, sizeof(node));
    st = qc_graph_add_op(g, "DequantizeLinear", node, in, 3, &vout, 1, &dq);
    if (st == QC_OK && nch > 1)
        st = set_axis(g, dq, axis);
    if (st != QC_OK)
        goto out;
    rewire(g, sp->value, vout, -1);
    /* the float weight is no longer read: drop it from the file (and from
     * graph.input, where IR < 4 models list initializers) */
    qc_tensor_free(g->values[sp->value].init);
    g->values[sp->value].init = NULL;
    for (int i = 0; i < g->n_inputs; i++) {
        if (g->inputs[i] != sp->value)
            continue;
        memmove(g->inputs + i, g->inputs + i + 1, (size_t)(g->n_inputs - i - 1) * sizeof(int));
        g->n_inputs--;
        g->values[sp->value].is_input = false;
        break;
    }
    stats->n_weights++;
out:
    qc_tensor_free(qt);
    qc_free(k);
    qc_free(scale);
    return st;
}

static enum qc_status export_act(struct qc_graph *g, const struct qc_plan_quant_info *qi,
                                 struct qc_export_stats *stats)
{
    const struct qc_quant_spec *sp = qi->spec;
    int v = sp->value, prod = sp->node, pre, vs, vz, vq, vc, vlo, vhi, in[3], qn, qp;
    /* unsigned: uint8 levels [0, R] with zero point z (0, or QAct.ZeroPoint's: real value
     * s·(q − z), QuantizeLinear's rne(x/s) + z); signed (QAct.Signed=1): int8 [−qn, qp] */
    enum qc_dtype dt = sp->is_signed ? QC_DTYPE_I8 : QC_DTYPE_U8;
    float scale = sp->method == QC_QM_SAT ? qc_sat_act_scale(qi->param, sp->range)
                                          : qc_lsq_step_used(qi->param);
    char base[512], name[512], node[512];
    enum qc_status st;

    qc_lsq_levels(sp->range, sp->is_signed, &qn, &qp);
    snprintf(base, sizeof(base), "%s", g->values[v].name);
    qc_graph_unique_name(g, base, "_float", name, sizeof(name));
    if ((st = qc_graph_value(g, name, &pre)) != QC_OK)
        return st;
    g->values[pre].dtype = QC_DTYPE_F32;
    for (int j = 0; j < g->nodes[prod].n_out; j++)
        if (g->nodes[prod].out[j] == v)
            g->nodes[prod].out[j] = pre;
    if ((st = scalar(g, base, "_scale", QC_DTYPE_F32, scale, &vs)) != QC_OK ||
        (st = scalar(g, base, "_zero_point", dt, qi->zero_point, &vz)) != QC_OK)
        return st;
    qc_graph_unique_name(g, base, "_quantized", name, sizeof(name));
    if ((st = qc_graph_value(g, name, &vq)) != QC_OK)
        return st;
    in[0] = pre;
    in[1] = vs;
    in[2] = vz;
    qc_graph_unique_name(g, base, "_QuantizeLinear", node, sizeof(node));
    if ((st = qc_graph_add_op(g, "QuantizeLinear", node, in, 3, &vq, 1, NULL)) != QC_OK)
        return st;
    /* QuantizeLinear saturates to the type's range; fewer levels need a Clip */
    if (sp->range < 255) {
        if ((st = scalar(g, base, "_clip_min", dt, -qn, &vlo)) != QC_OK ||
            (st = scalar(g, base, "_clip_max", dt, qp, &vhi)) != QC_OK)
            return st;
        qc_graph_unique_name(g, base, "_clipped", name, sizeof(name));
        if ((st = qc_graph_value(g, name, &vc)) != QC_OK)
            return st;
        in[0] = vq;
        in[1] = vlo;
        in[2] = vhi;
        qc_graph_unique_name(g, base, "_Clip", node, sizeof(node));
        if ((st = qc_graph_add_op(g, "Clip", node, in, 3, &vc, 1, NULL)) != QC_OK)
            return st;
        vq = vc;
    }
    in[0] = vq;
    in[1] = vs;
    in[2] = vz;
    qc_graph_unique_name(g, base, "_DequantizeLinear", node, sizeof(node));
    if ((st = qc_graph_add_op(g, "DequantizeLinear", node, in, 3, &v, 1, NULL)) != QC_OK)
        return st;
    stats->n_acts++;
    return QC_OK;
}

enum qc_status qc_export_fake(struct qc_graph *g, struct qc_plan *p, const char *dump_dir,
                              enum qc_wide_levels wide, struct qc_export_stats *stats)
{
    enum qc_status st = QC_OK;
    bool int16 = false;
    /* per-tensor QuantizeLinear/DequantizeLinear exist from opset 10 */
    int64_t need = 10;
    memset(stats, 0, sizeof(*stats));
    for (int i = 0; i < qc_plan_n_quants(p) && st == QC_OK; i++) {
        struct qc_plan_quant_info qi;
        st = qc_plan_quant_info(p, i, &qi);
        if (st != QC_OK)
            break;
        /* Clip(−qn, qp) on integer levels: Clip takes integers from opset 12 */
        if (!qi.spec->weight && qi.spec->range < 255 && need < 12)
            need = 12;
        /* per-axis DequantizeLinear: opset 13 */
        if (qi.spec->weight && qi.spec->ch.nch > 1)
            need = 13;
        st = qi.spec->weight ? export_weight(g, p, i, dump_dir, wide, &qi, stats, &int16)
                             : export_act(g, &qi, stats);
    }
    /* int16 DequantizeLinear: opset 21 */
    if (int16 && wide == QC_WIDE_INT16)
        need = 21;
    if (st != QC_OK)
        return st;
    /* the model's own nodes rewritten for the opset the Q/DQ nodes need (the
     * appended ones are already in that form); then the new nodes are put in
     * topological order and their attributes parsed */
    return qc_opset_upgrade(g, g->opset > need ? g->opset : need);
}
