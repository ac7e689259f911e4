/*
 * fold_layers.c - constant scale and bias ops after a layer folded into the
 * layer (import.h).
 *
 * CNTK, keras2onnx and tf2onnx write a layer's bias as a separate Add (Conv
 * then Add(B [C,1,1]), MatMul then Add(B [N])), Caffe2 and Keras write
 * per-channel scale layers as Mul (+ Add) after a convolution.  As separate
 * ops their constants would train as loose biases and stay float in the
 * exports; folded into the layer they train, quantize and fold like the
 * layer's own weight and bias:
 *   - Mul(y, s), s constant per output channel (or a scalar), right after a
 *     Conv, Gemm or MatMul with a constant 2-D weight: W and the bias are
 *     scaled by s per channel.  qatconv trains BatchNormalization with batch
 *     statistics, so rewriting the Mul as a BatchNormalization would change
 *     what the network computes from the first training step; the scaled
 *     weight computes y*s exactly up to float rounding, in training too;
 *   - Add(y, b), b constant per output channel, right after a Conv,
 *     ConvTranspose or Gemm: b is added to the layer's bias (a new input 2
 *     when the layer has none); after a MatMul with a constant 2-D weight
 *     whose input is known to be 2-D, MatMul + Add become Gemm(A, W, b);
 *   - the same Mul and Add right after a BatchNormalization (Caffe's
 *     BatchNorm + Scale, as in the Caffe2 zoo's DenseNet) scale its scale
 *     and bias and add to its bias.
 * Only when the layer's output has exactly one reader (the Mul or Add) and
 * is not a graph output, and the layer's constants are read by it alone.
 * The layer takes over the output name of the op it absorbs, which leaves
 * the graph.  Also here: BatchNormalization's trailing optional outputs
 * (the training outputs of opset 7 and 9 exports) are dropped when nothing
 * reads them, so that an old BatchNormalization folds like a new one.
 */
#include <config.h>

#include "import_impl.h"

#include <stdio.h>
#include <string.h>

#include "ops/bind.h"
#include "ops/op.h"
#include "ops/params_conv.h"
#include "ops/params_gemm.h"
#include "util/log.h"

#define RANK_UNSEEN (-2)
#define RANK_DEPTH 256

struct lf {
    struct qc_graph *g;
    int *uses;   /* per value: readers (+1 graph output)   */
    int *reader; /* per value: a node that reads it, or -1 */
    int *rank;   /* per value: rank, -1 unknown            */
    bool *dead;  /* per node: absorbed into its layer      */
};

/* ---- ranks ---------------------------------------------------------------------------- */

static int rank_of(struct lf *x, int v, int depth);

/* The number of elements of a Reshape's shape input, or -1. */
static int shape_len(struct lf *x, int v)
{
    const struct qc_graph *g = x->g;
    int p = g->values[v].producer;
    if (g->values[v].init)
        return (int)qc_tensor_nelem(g->values[v].init);
    if (p >= 0 && g->nodes[p].kind == QC_OP_CONSTANT) {
        struct qc_tensor t;
        struct qc_tensor *outs[1] = { &t };
        memset(&t, 0, sizeof(t));
        if (qc_op_get(QC_OP_CONSTANT)->infer(&g->nodes[p], g->path, NULL, outs) == QC_OK &&
            t.shape.ndim == 1)
            return (int)t.shape.dims[0];
    }
    return -1;
}

static int rank_of_node(struct lf *x, const struct qc_node *n, int depth)
{
    int r = -1;
    switch (n->kind) {
    case QC_OP_FLATTEN:
    case QC_OP_GEMM:
        return 2;
    case QC_OP_RESHAPE:
        return n->n_in > 1 && n->in[1] >= 0 ? shape_len(x, n->in[1]) : -1;
    case QC_OP_ADD:
    case QC_OP_SUB:
    case QC_OP_MUL:
    case QC_OP_DIV:
    case QC_OP_SUM:
    case QC_OP_MATMUL:
        for (int j = 0; j < n->n_in; j++) {
            int rj = rank_of(x, n->in[j], depth + 1);
            if (rj < 0 || (n->kind == QC_OP_MATMUL && rj < 2))
                return -1;
            r = QC_MAX(r, rj);
        }
        return r;
    case QC_OP_RELU:
    case QC_OP_CLIP:
    case QC_OP_LEAKY_RELU:
    case QC_OP_SIGMOID:
    case QC_OP_TANH:
    case QC_OP_HARD_SIGMOID:
    case QC_OP_HARD_SWISH:
    case QC_OP_SOFTMAX:
    case QC_OP_LOG_SOFTMAX:
    case QC_OP_DROPOUT:
    case QC_OP_IDENTITY:
    case QC_OP_BATCHNORM:
    case QC_OP_CAST:
    case QC_OP_TRANSPOSE:
    case QC_OP_CONCAT:
    case QC_OP_CONV:
    case QC_OP_CONV_TRANSPOSE:
    case QC_OP_MAXPOOL:
    case QC_OP_AVGPOOL:
    case QC_OP_GLOBAL_AVGPOOL:
    case QC_OP_GLOBAL_MAXPOOL:
        return n->n_in > 0 ? rank_of(x, n->in[0], depth + 1) : -1;
    default:
        return -1;
    }
}

/* The rank of value v as far as the graph tells it without shapes: declared
 * inputs, initializers, and ops whose output rank follows from their inputs'. */
static int rank_of(struct lf *x, int v, int depth)
{
    const struct qc_value *val;
    int r;
    if (v < 0 || depth > RANK_DEPTH)
        return -1;
    if (x->rank[v] != RANK_UNSEEN)
        return x->rank[v];
    val = &x->g->values[v];
    if (val->init)
        r = val->init->shape.ndim;
    else if (val->producer < 0)
        r = val->has_shape ? val->shape.ndim : -1;
    else
        r = rank_of_node(x, &x->g->nodes[val->producer], depth);
    x->rank[v] = r;
    return r;
}

/* ---- the layer's geometry ------------------------------------------------------------ */

/* What folding needs of a layer: its weight, output channels and the
 * output's rank and channel axis (rank -1: unknown, MatMul only). */
struct layer {
    int w, bias;    /* value indices; bias -1 when absent    */
    int64_t c;      /* output channels                       */
    int rank, axis; /* of the output                         */
    bool rows;      /* channel c is row c of W (else column) */
};

static bool float_init(const struct qc_graph *g, int v)
{
    return v >= 0 && g->values[v].init && g->values[v].init->dtype == QC_DTYPE_F32;
}

/* A BatchNormalization's scale and bias, for a Mul or Add after it: its
 * channels are the scale's, its output has the rank of its input. */
static bool bn_layer_of(struct lf *x, int li, struct layer *l)
{
    const struct qc_graph *g = x->g;
    const struct qc_node *n = &g->nodes[li];
    if (n->n_in < 5 || !float_init(g, n->in[1]) || !float_init(g, n->in[2]))
        return false;
    l->w = n->in[1];
    l->bias = n->in[2];
    l->c = qc_tensor_nelem(g->values[l->w].init);
    l->rank = rank_of(x, n->in[0], 0);
    l->axis = 1;
    l->rows = true;
    return l->rank >= 2;
}

/* The geometry of layer node li, false when it has no constant weight of a
 * form folding knows. */
static bool layer_of(struct lf *x, int li, struct layer *l)
{
    const struct qc_graph *g = x->g;
    const struct qc_node *n = &g->nodes[li];
    const struct qc_tensor *w;
    if (n->kind == QC_OP_BATCHNORM)
        return bn_layer_of(x, li, l);
    if (n->n_in < 2 || !float_init(g, n->in[1]))
        return false;
    w = g->values[n->in[1]].init;
    l->w = n->in[1];
    l->bias = n->n_in > 2 ? n->in[2] : -1;
    switch (n->kind) {
    case QC_OP_CONV:
    case QC_OP_CONV_TRANSPOSE: {
        const struct qc_conv_params *p = n->params;
        if (w->shape.ndim < 3)
            return false;
        l->rows = n->kind == QC_OP_CONV;
        l->c = l->rows ? w->shape.dims[0] : w->shape.dims[1] * p->group;
        l->rank = w->shape.ndim;
        l->axis = 1;
        return true;
    }
    case QC_OP_GEMM: {
        const struct qc_gemm_params *p = n->params;
        if (w->shape.ndim != 2 || p->beta != 1.0f)
            return false;
        l->rows = p->trans_b;
        l->c = p->trans_b ? w->shape.dims[0] : w->shape.dims[1];
        l->rank = 2;
        l->axis = 1;
        return true;
    }
    case QC_OP_MATMUL:
        if (w->shape.ndim != 2)
            return false;
        l->rows = false;
        l->c = w->shape.dims[1];
        l->rank = rank_of(x, n->in[0], 0);
        l->axis = l->rank - 1;
        return true;
    default:
        return false;
    }
}

/* Whether t is constant per output channel of the layer (extent c or 1 on
 * the channel axis, 1 elsewhere, no more dims than the output, so that the
 * elementwise op keeps the layer's output shape); fills dst[0..c). */
static bool per_channel(const struct qc_tensor *t, const struct layer *l, float *dst)
{
    int rank = l->rank, axis = l->axis, off;
    int64_t cdim = 1;
    if (rank < 0) { /* MatMul of unknown rank: a vector on the last axis */
        rank = 1;
        axis = 0;
    }
    if (t->dtype != QC_DTYPE_F32 || t->shape.ndim > rank)
        return false;
    off = rank - t->shape.ndim;
    for (int k = 0; k < t->shape.ndim; k++) {
        int64_t d = t->shape.dims[k];
        if (k + off == axis && (d == l->c || d == 1))
            cdim = d;
        else if (d != 1)
            return false;
    }
    for (int64_t c = 0; c < l->c; c++)
        dst[c] = qc_tensor_f32(t)[cdim == 1 ? 0 : c];
    return true;
}

/* The single elementwise reader of layer li's output: Mul or Add (kind)
 * with a constant float other operand; *op and *k (the constant's value)
 * are set; false when there is none. */
static bool absorbable(struct lf *x, int li, int kind, int *op, int *k)
{
    const struct qc_graph *g = x->g;
    int y = g->nodes[li].out[0], r;
    const struct qc_node *m;
    if (g->nodes[li].n_out != 1 || x->uses[y] != 1 || g->values[y].is_output)
        return false;
    r = x->reader[y];
    if (r < 0 || x->dead[r])
        return false;
    m = &g->nodes[r];
    if (m->kind != kind || m->n_in != 2 || m->n_out != 1 || m->in[0] == m->in[1])
        return false;
    *op = r;
    *k = m->in[0] == y ? m->in[1] : m->in[0];
    return float_init(g, *k);
}

/* Layer li now writes the output of node op, which leaves the graph; its
 * constant k loses a reader. */
static void absorb(struct lf *x, int li, int op, int k)
{
    struct qc_graph *g = x->g;
    int y = g->nodes[li].out[0], z = g->nodes[op].out[0];
    g->nodes[li].out[0] = z;
    g->values[z].producer = li;
    x->uses[y]--;
    x->dead[op] = true;
    if (k >= 0 && --x->uses[k] == 0 && !g->values[k].is_output)
        qc_graph_drop_initializer(g, k);
}

/* ---- Mul --------------------------------------------------------------------------- */

static bool try_scale(struct lf *x, int li, struct qc_import_stats *stats, enum qc_status *st)
{
    struct qc_graph *g = x->g;
    struct layer l;
    int op, k;
    float *s, *w, *b = NULL;
    int64_t per;

    if (g->nodes[li].kind == QC_OP_CONV_TRANSPOSE || !layer_of(x, li, &l) ||
        !absorbable(x, li, QC_OP_MUL, &op, &k) || x->uses[l.w] != 1)
        return false;
    if (l.bias >= 0) {
        const struct qc_tensor *bt = g->values[l.bias].init;
        if (!float_init(g, l.bias) || x->uses[l.bias] != 1 || qc_tensor_nelem(bt) != l.c)
            return false;
        b = qc_tensor_f32(bt);
    }
    s = qc_calloc((size_t)l.c + 1, sizeof(float));
    if (!s) {
        *st = QC_ERR_NOMEM;
        return false;
    }
    if (!per_channel(g->values[k].init, &l, s)) {
        qc_free(s);
        return false;
    }
    w = qc_tensor_f32(g->values[l.w].init);
    per = qc_tensor_nelem(g->values[l.w].init) / l.c;
    for (int64_t c = 0; c < l.c; c++) {
        for (int64_t i = 0; i < per; i++)
            w[l.rows ? c * per + i : i * l.c + c] *= s[c];
        if (b)
            b[c] *= s[c];
    }
    qc_free(s);
    absorb(x, li, op, k);
    stats->n_scale++;
    return true;
}

/* ---- Add --------------------------------------------------------------------------- */

/* Gives node li input slot 2 = v (MatMul becomes Gemm). */
static enum qc_status set_bias_input(struct qc_graph *g, int li, int v)
{
    struct qc_node *n = &g->nodes[li];
    if (n->n_in < 3) {
        int *in = qc_realloc(n->in, 3 * sizeof(int));
        if (!in)
            return QC_ERR_NOMEM;
        n->in = in;
        n->n_in = 3;
    }
    n->in[2] = v;
    if (n->kind == QC_OP_MATMUL) {
        char *gemm = qc_strdup("Gemm");
        if (!gemm)
            return QC_ERR_NOMEM;
        qc_free(n->op_type);
        n->op_type = gemm;
        qc_free(n->params); /* parsed again by qc_graph_finalize */
        n->params = NULL;
        n->kind = QC_OP_GEMM;
    }
    return QC_OK;
}

static bool try_bias(struct lf *x, int li, struct qc_import_stats *stats, enum qc_status *st)
{
    struct qc_graph *g = x->g;
    bool matmul = g->nodes[li].kind == QC_OP_MATMUL;
    struct qc_tensor *t = NULL;
    struct layer l;
    int op, k, bv;
    int64_t dim;
    float *b;

    if (!layer_of(x, li, &l) || !absorbable(x, li, QC_OP_ADD, &op, &k))
        return false;
    if (matmul && l.rank != 2)
        return false; /* Gemm needs a 2-D input */
    if (l.bias >= 0 && (!float_init(g, l.bias) || x->uses[l.bias] != 1 ||
                        qc_tensor_nelem(g->values[l.bias].init) != l.c))
        return false;
    dim = l.c;
    if ((*st = qc_tensor_new(QC_DTYPE_F32, &(struct qc_shape){ 1, { dim } }, &t)) != QC_OK)
        return false;
    b = qc_tensor_f32(t);
    if (!per_channel(g->values[k].init, &l, b)) {
        qc_tensor_free(t);
        return false;
    }
    if (l.bias >= 0) {
        const float *old = qc_tensor_f32(g->values[l.bias].init);
        for (int64_t c = 0; c < l.c; c++)
            b[c] = old[c] + b[c];
        bv = l.bias;
    } else if (x->uses[k] == 1 && !g->values[k].is_output) {
        bv = k; /* the Add's constant, under its name, becomes the bias */
        x->uses[k]++;
    } else {
        char name[512];
        qc_graph_unique_name(g, qc_node_label(g, &g->nodes[li]), "_bias", name, sizeof(name));
        *st = qc_graph_add_initializer(g, name, t, &bv);
        t = NULL;
        if (*st == QC_OK)
            *st = qc_import_list_input(g, bv);
        if (*st != QC_OK)
            return false;
        x->uses[bv] = 1;
    }
    if (t)
        qc_import_set_init(g, bv, t);
    if (l.bias < 0 && (*st = set_bias_input(g, li, bv)) != QC_OK)
        return false;
    absorb(x, li, op, k);
    stats->n_bias++;
    stats->n_gemm += matmul;
    return true;
}

/* ---- BatchNormalization ------------------------------------------------------------- */

static void trim_bn_outputs(struct lf *x, struct qc_node *n, struct qc_import_stats *stats)
{
    const struct qc_graph *g = x->g;
    while (n->n_out > 1) {
        int v = n->out[n->n_out - 1];
        if (v >= 0 && g->values[v].name[0] && x->uses[v] > 0)
            break;
        n->n_out--;
        stats->n_bn_outputs++;
    }
}

/* ---- the step ----------------------------------------------------------------------- */

enum qc_status qc_import_fold_layers(struct qc_graph *g, struct qc_import_stats *stats)
{
    struct lf x = { .g = g };
    size_t nv = (size_t)g->n_values + 1;
    enum qc_status st = QC_ERR_NOMEM;
    int changed = 0, n_nodes = g->n_nodes;

    /* values may be added (a new bias): room for one per node */
    x.reader = qc_malloc((nv + (size_t)n_nodes) * sizeof(int));
    x.rank = qc_malloc((nv + (size_t)n_nodes) * sizeof(int));
    x.dead = qc_calloc((size_t)n_nodes + 1, sizeof(bool));
    if (!x.reader || !x.rank || !x.dead)
        goto out;
    if ((st = qc_import_count_uses(g, &x.uses)) != QC_OK)
        goto out;
    {
        int *u = qc_realloc(x.uses, (nv + (size_t)n_nodes) * sizeof(int));
        if (!u) {
            st = QC_ERR_NOMEM;
            goto out;
        }
        x.uses = u;
    }
    for (size_t v = 0; v < nv + (size_t)n_nodes; v++) {
        x.reader[v] = -1;
        x.rank[v] = RANK_UNSEEN;
    }
    for (int i = 0; i < n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] >= 0)
                x.reader[g->nodes[i].in[j]] = i;
    for (int i = 0; i < n_nodes && st == QC_OK; i++) {
        struct qc_node *n = &g->nodes[i];
        if (n->kind == QC_OP_BATCHNORM) {
            int before = stats->n_bn_outputs;
            trim_bn_outputs(&x, n, stats);
            changed += stats->n_bn_outputs - before;
        }
        if ((!qc_op_is_weighted(n->kind) && n->kind != QC_OP_BATCHNORM) || x.dead[i])
            continue;
        changed += try_scale(&x, i, stats, &st);
        if (st == QC_OK)
            changed += try_bias(&x, i, stats, &st);
    }
    if (st != QC_OK || !changed)
        goto out;
    for (int i = n_nodes - 1; i >= 0; i--)
        if (x.dead[i])
            qc_graph_remove_node(g, i);
    st = qc_graph_finalize(g);
out:
    qc_free(x.uses);
    qc_free(x.reader);
    qc_free(x.rank);
    qc_free(x.dead);
    return st;
}
