/*
 * plan_fuse.c - fused steps of inference plans (qc_plan_new_inference).
 *
 * A Conv step absorbs the steps after it that only post-process its output,
 * in this order, each optional:
 *
 *   Conv -> BatchNormalization -> Add(other) -> Relu
 *
 * and runs them as its epilogue (ops/conv_fused.h), writing the last one's
 * output in one pass; the absorbed steps are dropped.  A link is taken only
 * when the value between the two ops has that one consumer and is not a
 * graph output (nothing else reads it: a fused plan does not compute it),
 * and:
 *   BatchNormalization  the Conv's weight and bias and the four BN inputs
 *                       are float initializers, BN has one output, and the
 *                       graph is a float graph (no QuantizeLinear,
 *                       DequantizeLinear or integer ops).  The plan folds BN
 *                       into copies of W and B (the graph's weights stay as
 *                       they are):
 *                         a = scale / sqrt(var + eps)       (as BN computes it)
 *                         W'[m, k] = W[m, k] * a[m]
 *                         B'[m]    = B[m] * a[m] + (bias[m] - mean[m] * a[m])
 *                       This changes rounding (BN applied after the sum
 *                       becomes a scaled weight before it), so it is kept
 *                       out of fake-quant graphs, whose quantizers must see
 *                       exactly what the training engine computed.
 *   Add                 the other input has the Conv output's shape, is
 *                       float, and is ready when the Conv runs (a graph
 *                       input, a constant, or the output of an earlier
 *                       step); the sum is taken in the Add's order.
 *   Relu                float.
 * The Add and Relu links (and a Conv bias) are the same operations in the
 * same order as the separate steps, so they change no bit; only the BN fold
 * changes results, within float rounding.
 *
 * Only plans on the CPU kernels fuse (the epilogue is a CPU kernel);
 * training plans never do (the backward needs every intermediate value).
 */
#include <config.h>

#include "plan_impl.h"

#include <math.h>
#include <string.h>

#include "backend/backend.h"
#include "ops/conv_fused.h"
#include "ops/params_norm.h"
#include "util/log.h"

/* What one fused Conv step runs beyond the Conv. */
struct plan_fused {
    struct qc_tensor w;         /* folded weight (owned), or unused          */
    float *bias;                /* folded bias (owned), or NULL              */
    const float *conv_bias;     /* the Conv's own bias when not folded       */
    struct qc_tensor *residual; /* the Add's other input, or NULL            */
    bool relu;
    bool folded;             /* a BatchNormalization was folded           */
    struct qc_tensor *in[3]; /* x, the weight the kernel reads, the Conv's
                                    bias (its shape is checked, not read)      */
};

/* A float graph: no quantization or integer ops anywhere. */
static bool graph_is_float(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        int k = g->nodes[i].kind;
        const char *t = g->nodes[i].op_type;
        if (k == QC_OP_QUANTIZE_LINEAR || k == QC_OP_DEQUANTIZE_LINEAR || k == QC_OP_CONV_INTEGER ||
            k == QC_OP_MATMUL_INTEGER || strstr(t, "Quantize") || strncmp(t, "QLinear", 7) == 0 ||
            strstr(t, "Integer"))
            return false;
    }
    return true;
}

/* Value v is a float32 initializer of `count` elements (count < 0: any). */
static bool float_init(const struct qc_graph *g, int v, int64_t count)
{
    const struct qc_tensor *t = v >= 0 ? g->values[v].init : NULL;
    return t && t->dtype == QC_DTYPE_F32 && (count < 0 || qc_tensor_nelem(t) == count);
}

/* The step index of node ni, or -1. */
static int step_of(const struct qc_plan *p, int ni)
{
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].node == ni)
            return i;
    return -1;
}

/* The only consumer of value v (a node index), or -1 when v has several,
 * none, or is a graph output. */
static int only_consumer(const struct qc_graph *g, const int *uses, const int *user, int v)
{
    if (v < 0 || g->values[v].is_output || uses[v] != 1)
        return -1;
    return user[v];
}

/* Float tensor of exactly `shape`. */
static bool same_f32(const struct qc_tensor *t, const struct qc_shape *shape)
{
    return t && t->dtype == QC_DTYPE_F32 && qc_shape_equal(&t->shape, shape);
}

/* Folds BatchNormalization node bn into copies of the Conv's weight and
 * bias (formulas in the file comment). */
static enum qc_status fold_bn(const struct qc_plan *p, const struct plan_step *cs,
                              const struct qc_node *conv, const struct qc_node *bn,
                              struct plan_fused *f)
{
    const struct qc_graph *g = p->g;
    const struct qc_bn_params *bp = bn->params;
    const struct qc_tensor *w = cs->in[1];
    int64_t cout = w->shape.dims[0], per = qc_tensor_nelem(w) / cout;
    const float *w0 = qc_tensor_f32(w);
    const float *b0 = conv->n_in > 2 && conv->in[2] >= 0 ? qc_tensor_f32(cs->in[2]) : NULL;
    const float *scale = qc_tensor_f32(g->values[bn->in[1]].init);
    const float *beta = qc_tensor_f32(g->values[bn->in[2]].init);
    const float *mean = qc_tensor_f32(g->values[bn->in[3]].init);
    const float *var = qc_tensor_f32(g->values[bn->in[4]].init);
    float *wf, *bf;

    f->w = *w;
    f->w.owns = false;
    wf = qc_malloc((size_t)qc_tensor_nelem(w) * sizeof(float));
    bf = qc_malloc((size_t)cout * sizeof(float));
    if (!wf || !bf) {
        qc_free(wf);
        qc_free(bf);
        qc_log_error("out of memory");
        return QC_ERR_NOMEM;
    }
    for (int64_t m = 0; m < cout; m++) {
        float a = scale[m] * (1.0f / sqrtf(var[m] + bp->epsilon));
        float shift = beta[m] - mean[m] * a;
        for (int64_t k = 0; k < per; k++)
            wf[m * per + k] = w0[m * per + k] * a;
        bf[m] = b0 ? b0[m] * a + shift : shift;
    }
    f->w.data = wf;
    f->bias = bf;
    f->folded = true;
    return QC_OK;
}

/* Fuses the chain after Conv step si when there is one (see the file
 * comment); the steps it absorbs are marked in drop[]. */
static enum qc_status fuse_conv(struct qc_plan *p, int si, const int *uses, const int *user,
                                bool float_graph, bool *drop)
{
    const struct qc_graph *g = p->g;
    struct plan_step *cs = &p->steps[si];
    const struct qc_node *conv = &g->nodes[cs->node];
    const struct qc_shape *yshape = &cs->out[0]->shape;
    struct plan_fused f;
    struct qc_tensor **final_out = NULL;
    int cur = conv->out[0], ni, sj;
    bool has_bias = conv->n_in > 2 && conv->in[2] >= 0;
    enum qc_status st;

    memset(&f, 0, sizeof(f));
    if (cs->out[0]->dtype != QC_DTYPE_F32 || conv->n_out != 1 || cs->in[1]->shape.ndim < 1 ||
        cs->in[1]->shape.dims[0] < 1)
        return QC_OK;
    /* BatchNormalization */
    ni = only_consumer(g, uses, user, cur);
    if (ni >= 0 && float_graph && g->nodes[ni].kind == QC_OP_BATCHNORM && g->nodes[ni].n_out == 1 &&
        g->nodes[ni].n_in == 5 && g->nodes[ni].in[0] == cur && float_init(g, conv->in[1], -1) &&
        (!has_bias || float_init(g, conv->in[2], -1)) && (sj = step_of(p, ni)) > si &&
        same_f32(p->steps[sj].out[0], yshape)) {
        const struct qc_node *bn = &g->nodes[ni];
        int64_t c = cs->in[1]->shape.dims[0];
        bool ok = true;
        for (int j = 1; j < 5; j++)
            ok = ok && float_init(g, bn->in[j], c);
        if (ok) {
            st = fold_bn(p, cs, conv, bn, &f);
            if (st != QC_OK)
                return st;
            drop[sj] = true;
            final_out = p->steps[sj].out;
            cur = bn->out[0];
        }
    }
    /* Add of a tensor ready before the Conv */
    ni = only_consumer(g, uses, user, cur);
    if (ni >= 0 && g->nodes[ni].kind == QC_OP_ADD && g->nodes[ni].n_in == 2 &&
        (sj = step_of(p, ni)) > si && same_f32(p->steps[sj].out[0], yshape)) {
        const struct qc_node *add = &g->nodes[ni];
        int other = add->in[0] == cur ? add->in[1] : add->in[0];
        int prod = other >= 0 ? g->values[other].producer : -1;
        bool ready = other >= 0 && other != cur &&
                     (prod < 0 || p->is_const[other] ||
                      (p->node_state[prod] == PLAN_NODE_STEP && step_of(p, prod) < si));
        if (ready && same_f32(&p->vals[other], yshape) && add->in[0] != add->in[1]) {
            f.residual = &p->vals[other];
            drop[sj] = true;
            final_out = p->steps[sj].out;
            cur = add->out[0];
        }
    }
    /* Relu */
    ni = only_consumer(g, uses, user, cur);
    if (ni >= 0 && g->nodes[ni].kind == QC_OP_RELU && (sj = step_of(p, ni)) > si &&
        same_f32(p->steps[sj].out[0], yshape)) {
        f.relu = true;
        drop[sj] = true;
        final_out = p->steps[sj].out;
    }
    if (!final_out)
        return QC_OK;
    cs->fused = qc_malloc(sizeof(*cs->fused));
    if (!cs->fused) {
        qc_free(f.w.data);
        qc_free(f.bias);
        qc_log_error("out of memory");
        return QC_ERR_NOMEM;
    }
    f.in[0] = cs->in[0];
    f.in[1] = f.folded ? &cs->fused->w : cs->in[1];
    f.in[2] = has_bias ? cs->in[2] : NULL; /* shape checks only; ep.bias is read */
    *cs->fused = f;
    if (f.folded)
        cs->fused->in[1] = &cs->fused->w;
    else
        cs->fused->conv_bias = has_bias ? qc_tensor_f32(cs->in[2]) : NULL;
    cs->out = final_out;
    p->fused_bytes += f.folded ? qc_tensor_nbytes(&f.w) + (uint64_t)f.w.shape.dims[0] * 4 : 0;
    return QC_OK;
}

enum qc_status qc_plan_fuse(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    const struct qc_kernel *cpu_conv = &qc_op_get(QC_OP_CONV)->cpu;
    int *uses = qc_calloc((size_t)g->n_values + 1, sizeof(int));
    int *user = qc_calloc((size_t)g->n_values + 1, sizeof(int));
    bool *drop = qc_calloc((size_t)p->n_steps + 1, sizeof(bool));
    bool float_graph = graph_is_float(g);
    enum qc_status st = QC_OK;
    int k = 0;

    if (!uses || !user || !drop) {
        st = QC_ERR_NOMEM;
        qc_log_error("out of memory");
        goto out;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) {
            int v = g->nodes[i].in[j];
            if (v < 0)
                continue;
            uses[v]++;
            user[v] = i;
        }
    for (int i = 0; i < p->n_steps && st == QC_OK; i++) {
        const struct plan_step *s = &p->steps[i];
        if (drop[i] || g->nodes[s->node].kind != QC_OP_CONV || !s->k ||
            s->k->forward != cpu_conv->forward)
            continue;
        st = fuse_conv(p, i, uses, user, float_graph, drop);
    }
    /* drop the absorbed steps (their nodes keep PLAN_NODE_STEP: their
     * outputs are still allocated, the fused step writes the last one) */
    for (int i = 0; i < p->n_steps; i++)
        if (!drop[i])
            p->steps[k++] = p->steps[i];
    p->n_steps = k;
out:
    qc_free(uses);
    qc_free(user);
    qc_free(drop);
    return st;
}

enum qc_status qc_plan_fused_forward(const struct qc_plan *p, const struct plan_step *s,
                                     const struct qc_op_ctx *ctx)
{
    const struct plan_fused *f = s->fused;
    struct qc_conv_epilogue ep = {
        .bias = f->folded ? f->bias : f->conv_bias,
        .residual = f->residual ? qc_tensor_f32(f->residual) : NULL,
        .relu = f->relu,
    };
    return qc_conv_forward_fused(&p->g->nodes[s->node], ctx, (const struct qc_tensor *const *)f->in,
                                 s->out, &ep);
}

void qc_plan_fused_free(struct plan_step *s)
{
    if (!s->fused)
        return;
    qc_free(s->fused->w.data);
    qc_free(s->fused->bias);
    qc_free(s->fused);
    s->fused = NULL;
}
