/*
 * fill.c - ONNX_init=0: N2D2's fillers (see fill.h; formulas from N2D2's
 * include/Filler/<Name>Filler.hpp).  With n_in = fan-in = size/C_out and n_out = fan-out
 * = size/C_in (Conv: kH·kW·C_in and kH·kW·C_out; Fc: C_in and C_out), n the
 * VarianceNorm's choice (FanIn n_in, FanOut n_out, Average (n_in+n_out)/2), s
 * the Scaling:
 *   XavierFiller  Uniform: s·U(−sqrt(3/n), sqrt(3/n)); Normal: s·N(0, 1/n)
 *   HeFiller      s·N(MeanNorm/n, 2/n)
 *   NormalFiller  N(Mean, StdDev²)          UniformFiller  U(Min, Max)
 *   ConstantFiller Value
 * A bias is N2D2's [1, 1, C_out, 1] tensor: fan-in C_out, fan-out 1.
 * Defaults as in N2D2: VarianceNorm FanIn, Distribution Uniform, Scaling 1,
 * MeanNorm 0, Mean 0, StdDev 1, Min 0, Max 1, Value 0; no filler key: N2D2's
 * Conv/Fc default NormalFiller(0, 0.05) for weights and biases.  Normal draws
 * are Box-Muller pairs of the run's generator.
 */
#include <config.h>

#include "fill.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "match.h"
#include "ops/op.h"
#include "util/log.h"
#include "util/rng.h"

#define PI 3.14159265358979323846

struct filler {
    const char *type;        /* XavierFiller ... ConstantFiller        */
    const char *norm, *dist; /* VarianceNorm, Distribution             */
    double scaling, mean_norm, mean, std, min, max, value;
};

/* N(0, 1) from two uniforms (u1 in (0, 1]). */
static double std_normal(struct qc_rng *rng)
{
    double u1 = 1.0 - (double)qc_rng_uniform(rng), u2 = (double)qc_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

/* The filler `prefix` (WeightsFiller, BiasFiller) of the node section, else
 * of the global section, else N2D2's default. */
static enum qc_status read_filler(const struct qc_recipe *r, const char *sec, const char *prefix,
                                  struct filler *f)
{
    char k[10][64];
    static const char *const subs[8] = { "VarianceNorm", "Distribution", "Scaling", "MeanNorm",
                                         "Mean",         "StdDev",       "Min",     "Max" };
    enum qc_status st;
    const char *from = sec && qc_recipe_has_key(r, sec, prefix) ? sec : "";
    if (!qc_recipe_has_key(r, from, prefix)) {
        *f = (struct filler){
            .type = "NormalFiller", .norm = "FanIn", .dist = "Uniform", .std = 0.05
        };
        return QC_OK;
    }
    for (int i = 0; i < 8; i++)
        snprintf(k[i], sizeof(k[i]), "%s.%s", prefix, subs[i]);
    snprintf(k[8], sizeof(k[8]), "%s.Value", prefix);
    if ((st = qc_recipe_str(r, from, prefix, "", &f->type)) != QC_OK ||
        (st = qc_recipe_str(r, from, k[0], "FanIn", &f->norm)) != QC_OK ||
        (st = qc_recipe_str(r, from, k[1], "Uniform", &f->dist)) != QC_OK ||
        (st = qc_recipe_float(r, from, k[2], 1.0, &f->scaling)) != QC_OK ||
        (st = qc_recipe_float(r, from, k[3], 0.0, &f->mean_norm)) != QC_OK ||
        (st = qc_recipe_float(r, from, k[4], 0.0, &f->mean)) != QC_OK ||
        (st = qc_recipe_float(r, from, k[5], 1.0, &f->std)) != QC_OK ||
        (st = qc_recipe_float(r, from, k[6], 0.0, &f->min)) != QC_OK ||
        (st = qc_recipe_float(r, from, k[7], 1.0, &f->max)) != QC_OK ||
        (st = qc_recipe_float(r, from, k[8], 0.0, &f->value)) != QC_OK)
        return st;
    return QC_OK;
}

/* Fills t (fan-in n_in, fan-out n_out) with f. */
static void apply_filler(const struct filler *f, struct qc_tensor *t, double n_in, double n_out,
                         struct qc_rng *rng)
{
    float *p = qc_tensor_f32(t);
    int64_t n = qc_tensor_nelem(t);
    double vn = strcmp(f->norm, "FanOut") == 0    ? n_out
                : strcmp(f->norm, "Average") == 0 ? (n_in + n_out) / 2.0
                                                  : n_in;
    vn = vn > 0 ? vn : 1.0;
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (strcmp(f->type, "XavierFiller") == 0) {
            if (strcmp(f->dist, "Normal") == 0)
                v = f->scaling * sqrt(1.0 / vn) * std_normal(rng); /* s·N(0, 1/n) */
            else
                v = f->scaling * sqrt(3.0 / vn) * (2.0 * qc_rng_uniform(rng) - 1.0);
        } else if (strcmp(f->type, "HeFiller") == 0) {
            v = f->scaling * (f->mean_norm / vn + sqrt(2.0 / vn) * std_normal(rng));
        } else if (strcmp(f->type, "UniformFiller") == 0) {
            v = f->min + (f->max - f->min) * qc_rng_uniform(rng);
        } else if (strcmp(f->type, "ConstantFiller") == 0) {
            v = f->value;
        } else { /* NormalFiller */
            v = f->mean + f->std * std_normal(rng);
        }
        p[i] = (float)v;
    }
}

static struct qc_tensor *f32_init(struct qc_graph *g, const struct qc_node *n, int slot)
{
    if (slot < 0 || slot >= n->n_in || n->in[slot] < 0)
        return NULL;
    struct qc_tensor *t = g->values[n->in[slot]].init;
    return t && t->dtype == QC_DTYPE_F32 ? t : NULL;
}

static void set_all(struct qc_tensor *t, float v)
{
    if (!t)
        return;
    for (int64_t i = 0; i < qc_tensor_nelem(t); i++)
        qc_tensor_f32(t)[i] = v;
}

/* Fan-in and fan-out of a layer weight: size over its output- resp. input-channel extent. */
static void fans(const struct qc_node *n, const struct qc_tensor *w, double *n_in, double *n_out)
{
    int nd = w->shape.ndim, oc = qc_op_weight_channel_axis(n), ic;
    double size = (double)qc_tensor_nelem(w);
    if (n->kind == QC_OP_MATMUL || oc < 0 || oc >= nd || nd < 2) {
        oc = nd - 1;
        ic = nd - 2;
    } else {
        ic = oc == 0 ? 1 : 0;
    }
    *n_in = oc >= 0 && w->shape.dims[oc] > 0 ? size / (double)w->shape.dims[oc] : size;
    *n_out = ic >= 0 && w->shape.dims[ic] > 0 ? size / (double)w->shape.dims[ic] : size;
}

enum qc_status qc_recipe_fill_weights(const struct qc_recipe *r, struct qc_graph *g, uint64_t seed,
                                      int *n_filled)
{
    struct qc_rng rng;
    enum qc_status st;
    *n_filled = 0;
    if (qc_recipe_onnx_init(r))
        return QC_OK;
    qc_rng_seed(&rng, seed);
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        const char *sec = qc_recipe_node_section(r, g, n);
        enum qc_op_cell cell = qc_op_cell(n->kind);
        if (cell == QC_CELL_BATCHNORM) {
            struct qc_tensor *t[4];
            for (int k = 0; k < 4; k++)
                t[k] = f32_init(g, n, k + 1);
            set_all(t[0], 1.0f);
            set_all(t[1], 0.0f);
            set_all(t[2], 0.0f);
            set_all(t[3], 1.0f);
            *n_filled += (t[0] != NULL) + (t[1] != NULL) + (t[2] != NULL) + (t[3] != NULL);
            continue;
        }
        if (cell != QC_CELL_CONV && cell != QC_CELL_FC)
            continue;
        struct qc_tensor *w = f32_init(g, n, qc_op_weight_input(n));
        struct qc_tensor *b = f32_init(g, n, qc_op_bias_input(n));
        struct filler f;
        double n_in = 1, n_out = 1;
        if (!w)
            continue;
        fans(n, w, &n_in, &n_out);
        if ((st = read_filler(r, sec, "WeightsFiller", &f)) != QC_OK)
            return st;
        apply_filler(&f, w, n_in, n_out, &rng);
        (*n_filled)++;
        if (b) {
            if ((st = read_filler(r, sec, "BiasFiller", &f)) != QC_OK)
                return st;
            /* N2D2's bias tensor is [1, 1, C_out, 1]: fan-in C_out, fan-out 1 */
            apply_filler(&f, b, (double)qc_tensor_nelem(b), 1.0, &rng);
            (*n_filled)++;
        }
    }
    return QC_OK;
}
