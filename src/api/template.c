/*
 * template.c - qc_recipe_template, the text of `qatconv --recipe-template
 * IN.onnx` (the CLI prints it): a starter recipe for the model: the data
 * sections (geometry from the model's input), solvers, the kind default
 * sections with SAT W4A4 settings, and one commented section per
 * quantizable node (name, op, shapes, parameters) so users can override a
 * layer without a graph viewer.  A channels-last input (plan/inputs.h) gets
 * an [onnx] section with Transpose=1; symbolic sizes get 224 (3 channels),
 * said in a comment, so the recipe loads as written.
 *
 * Every quantized layer's data input is quantized: where it is a value that
 * can be negative (a BatchNormalization, Conv/Gemm/MatMul, Add/Sub/Sum output
 * without an activation after it, as MobileNet-v2's linear bottlenecks and
 * residual Adds), the node producing it gets an active section with a signed
 * LSQ activation quantizer (QAct.Signed=1); a ReLU/Clip output keeps the SAT
 * (unsigned) default.  Where the value cannot carry a QAct, the layer quantizes its
 * own input (QIn=LSQ, 8 bits): the graph input, which no node computes (the first
 * layer(s), also through layout ops such as a channels-last Transpose or an MLP's
 * Flatten: unsigned, as the template's RangeAffine /255 gives [0,1] pixels), and a
 * value that is also a graph output (a QAct would quantize the model's output; signed
 * where the value can be negative).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "backend/backend.h"
#include "ir/graph.h"
#include "ops/op.h"
#include "ops/trace.h"
#include "plan/inputs.h"
#include "plan/plan.h"

static bool quantizable(const struct qc_node *n)
{
    return qc_op_quantizes_weight(n->kind);
}

static bool is_activation(const struct qc_node *n)
{
    return qc_op_quantizes_act(n->kind);
}

/* Marks (signed[i] = true) each node whose output can be negative and is the
 * (pass-through) data input of a quantized layer: a BatchNormalization, layer or
 * Add/Sub/Sum with no activation after it.  Such an output gets a signed LSQ
 * activation quantizer. */
static void mark_signed_acts(const struct qc_graph *g, bool *is_signed)
{
    for (int j = 0; j < g->n_nodes; j++) {
        const struct qc_node *l = &g->nodes[j];
        const struct qc_node *n;
        int i;
        if (!qc_op_quantizes_weight(l->kind) || l->n_in < 1 || l->in[0] < 0 ||
            g->values[l->in[0]].init || (i = qc_op_data_source(g, l->in[0])) < 0)
            continue;
        n = &g->nodes[i];
        if (n->kind == QC_OP_BATCHNORM || n->kind == QC_OP_ADD || n->kind == QC_OP_SUB ||
            n->kind == QC_OP_SUM || qc_op_quantizes_weight(n->kind))
            is_signed[i] = true;
    }
}

/* Whether layer node j's data input is the graph input (through the ops qc_op_data_source
 * passes), not a constant. */
static bool reads_graph_input(const struct qc_graph *g, int j)
{
    int v = g->nodes[j].n_in > 0 ? g->nodes[j].in[0] : -1;
    for (int hops = 0; v >= 0 && hops <= g->n_nodes; hops++) {
        const struct qc_value *val = &g->values[v];
        if (val->init)
            return false;
        if (val->producer < 0)
            return val->is_input;
        v = g->nodes[val->producer].n_in > 0 ? g->nodes[val->producer].in[0] : -1;
    }
    return false;
}

/* The layers that quantize their own input (QIn): qin[j] = 1 unsigned (the graph
 * input, [0,1] pixels), 2 signed (a value that can be negative and is also a graph
 * output, or the graph input when the pixels are not [0,1]).  A ReLU/Clip output
 * that is a graph output keeps the Relu_def QAct, as before. */
static void mark_layer_inputs(const struct qc_graph *g, const bool *is_signed, bool unit_pixels,
                              int *qin)
{
    for (int j = 0; j < g->n_nodes; j++) {
        const struct qc_node *l = &g->nodes[j];
        int i;
        if (!qc_op_quantizes_weight(l->kind) || l->n_in < 1 || l->in[0] < 0 ||
            g->values[l->in[0]].init)
            continue;
        i = qc_op_data_source(g, l->in[0]);
        if (i < 0 && reads_graph_input(g, j))
            qin[j] = unit_pixels ? 1 : 2;
        else if (i >= 0 && is_signed[i] && g->values[g->nodes[i].out[0]].is_output)
            qin[j] = 2;
    }
}

/* Whether node i gets a section with a signed QAct (a graph output keeps its float
 * values: its readers use QIn instead). */
static bool signed_section(const struct qc_graph *g, struct qc_plan *p, const bool *is_signed,
                           int i)
{
    const struct qc_node *n = &g->nodes[i];
    return is_signed[i] && !qc_plan_value_is_const(p, n->out[0]) && !g->values[n->out[0]].is_output;
}

/* Whether any node is a BatchNormalization.  Without one (BatchNorm folded into
 * the Conv weights at export) nothing renormalizes a Conv's output, and SAT
 * weights without ApplyScaling (largest |tanh W| mapped to 1) multiply each
 * layer's gain by 1/max|tanh W|: deep models then diverge in the first batches. */
static bool has_batchnorm(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (qc_op_cell(g->nodes[i].kind) == QC_CELL_BATCHNORM)
            return true;
    return false;
}

/* A starter batch size: 128 for small images, fewer for big ones so that the
 * training plan of an ImageNet-size model fits a workstation's memory. */
static int template_batch(int64_t h, int64_t w)
{
    return h * w <= 64 * 64 ? 128 : h * w <= 128 * 128 ? 32 : 8;
}

/* The number of classes of the model's first output ([N, K, ...]), at least
 * 2 (what a Synthetic data set needs). */
static int64_t template_classes(struct qc_plan *p)
{
    const struct qc_tensor *y = qc_plan_n_outputs(p) > 0 ? qc_plan_output(p, 0) : NULL;
    int64_t k = y && y->shape.ndim >= 2 ? y->shape.dims[1] : 10;
    return k >= 2 ? k : 2;
}

enum qc_status qc_recipe_template(const struct qc_model *m, const struct qc_job *job,
                                  char **text)
{
    struct qc_graph *g = m->g;
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    struct qc_input_binding *bind = NULL;
    enum qc_input_layout layout = QC_INPUT_CHANNELS_FIRST;
    int64_t c = 0, h = 0, w = 0;
    bool geometry, symbolic = false, images;
    int n_tf = 0;
    struct qc_text out;
    FILE *f;
    enum qc_status st;
    int n_q = 0, n_a = 0, n_s = 0, n_in = 0, n_own = 0;
    bool *is_signed = NULL;
    int *qin = NULL;
    /* the RangeAffine /255 below always gives [0,1] pixels */
    const bool unit_pixels = true;

    *text = NULL;
    st = qc_text_open(&out);
    if (st != QC_OK)
        return st;
    f = out.f;
    st = qc_inputs_layout(g, NULL, &layout);
    if (st != QC_OK)
        goto out;
    geometry = qc_inputs_geometry(g, layout, &c, &h, &w);
    if (geometry && (!c || !h || !w)) {
        symbolic = true;
        c = c ? c : QC_INPUTS_DEFAULT_CHANNELS;
        h = h ? h : QC_INPUTS_DEFAULT_SIZE;
        w = w ? w : QC_INPUTS_DEFAULT_SIZE;
    }
    st = qc_inputs_bind(g, layout, c, h, w, false, &bind);
    if (st != QC_OK)
        goto out;
    st = qc_backend_new("cpu", 1, &be);
    if (st == QC_OK) {
        qc_backend_set_max_memory(be, qc_job_opts(job)->max_memory);
        st = qc_plan_new(g, be, 1, &p);
    }
    if (st != QC_OK)
        goto out;
    fprintf(f, "; Starter recipe for %s, written by qatconv --recipe-template.\n", g->path);
    fprintf(f,
            "; SAT 4-bit weights and activations everywhere; edit the per-node sections at the\n"
            "; end to change a layer (first and last layers are usually kept at 8 bits).\n"
            ";     qatconv %s -r THIS.ini -o out.onnx --epochs 4\n\n",
            g->path);
    fprintf(f, "Solvers=SGD\nSolvers.LearningRate=0.01\nSolvers.Momentum=0.9\n"
               "Solvers.Decay=0.00004\n\n");
    /* the data set: Fashion-MNIST (installed with qatconv's dependencies),
     * rescaled and turned to RGB where the model wants that, so the recipe runs
     * as written; an input no image set fits gets generated images */
    images = !geometry || c == 1 || c == 3;
    if (images)
        fprintf(f, "[database]\n; MNIST_IDX_Database, CIFAR10_Database or CIFAR100_Database\n"
                   "Type=MNIST_IDX_Database\nDataPath=/usr/share/datasets/fashion-mnist\n"
                   "Validation=0.1\n\n");
    else
        fprintf(f,
                "[database]\n; no image data set has %lld channels: generated images until you "
                "give yours\nType=Synthetic\nNbClasses=%lld\nNbLearn=1024\nNbTest=256\n"
                "Validation=0.1\n\n",
                (long long)c, (long long)template_classes(p));
    if (geometry) {
        if (symbolic)
            fprintf(f,
                    "; the model's input size is symbolic: %lldx%lldx%lld (CxHxW) is qatconv's "
                    "default, set your data's\n",
                    (long long)c, (long long)h, (long long)w);
        if (h == 1 && qc_plan_n_inputs(p) > 0 && qc_plan_input(p, 0)->shape.ndim == 3)
            fprintf(f, "; a rank-3 input [N,C,W]: images of height 1\n");
        fprintf(f, "[sp]\nSizeX=%lld\nSizeY=%lld\nNbChannels=%lld\nBatchSize=%d\n\n", (long long)w,
                (long long)h, (long long)c, template_batch(h, w));
    }
    if (images && geometry && (h != 28 || w != 28))
        fprintf(f,
                "; Fashion-MNIST's 28x28 images -> the model's size\n[sp.Transformation-%d]\n"
                "Type=RescaleTransformation\nWidth=%lld\nHeight=%lld\n\n",
                ++n_tf, (long long)w, (long long)h);
    if (images && geometry && c == 3)
        fprintf(f,
                "; gray -> 3 channels\n[sp.Transformation-%d]\nType=ColorSpaceTransformation\n"
                "ColorSpace=RGB\n\n",
                ++n_tf);
    fprintf(f,
            "; pixels 0..255 -> [0,1]\n[sp.Transformation-%d]\nType=RangeAffineTransformation\n"
            "FirstOperator=Divides\nFirstValue=255.0\n\n",
            ++n_tf);
    if (layout == QC_INPUT_CHANNELS_LAST)
        fprintf(f, "; the model takes its images channels last (NHWC)\n[onnx]\nType=ONNX\n"
                   "Transpose=1\n\n");
    if (has_batchnorm(g))
        fprintf(f, "[onnx:Conv_def]\nQWeight=SAT\nQWeight.Range=15\n\n");
    else
        fprintf(f, "; no BatchNormalization in the model: scale the Conv weights as the Fc's\n"
                   "[onnx:Conv_def]\nQWeight=SAT\nQWeight.Range=15\nQWeight.ApplyScaling=1\n\n");
    fprintf(f, "[onnx:Fc_def]\nQWeight=SAT\nQWeight.Range=15\nQWeight.ApplyScaling=1\n\n");
    fprintf(f, "[onnx:Relu_def]\nActivationFunction=Linear\nQAct=SAT\nQAct.Range=15\n"
               "QAct.Alpha=6.0\nQActSolver.LearningRate=0.01\n\n");
    is_signed = qc_calloc((size_t)g->n_nodes + 1, sizeof(*is_signed));
    qin = qc_calloc((size_t)g->n_nodes + 1, sizeof(*qin));
    if (!is_signed || !qin) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    mark_signed_acts(g, is_signed);
    mark_layer_inputs(g, is_signed, unit_pixels, qin);
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        if (!signed_section(g, p, is_signed, i))
            continue;
        if (n_s++ == 0)
            fprintf(f, "; values that can be negative (no activation after them) read by a "
                       "layer:\n; signed LSQ levels [-8, 7]\n");
        fprintf(f,
                "[%s]%s\nQAct=LSQ\nQAct.Range=15\nQAct.Signed=1\n%s%s"
                "QActSolver.LearningRate=0.001\n\n",
                qc_node_label(g, n),
                !quantizable(n)                       ? ""
                : qc_op_cell(n->kind) == QC_CELL_CONV ? " onnx:Conv_def"
                                                      : " onnx:Fc_def",
                qin[i] ? "QIn=LSQ\nQIn.Range=255\n" : "", qin[i] == 2 ? "QIn.Signed=1\n" : "");
        n_in += qin[i] != 0;
    }
    for (int j = 0; j < g->n_nodes; j++) {
        const struct qc_node *n = &g->nodes[j];
        if (!qin[j] || signed_section(g, p, is_signed, j))
            continue;
        n_in++;
        if (n_own++ == 0)
            fprintf(f, "; layers that quantize their own input (the graph input, or a value "
                       "that is also a\n; graph output): 8-bit LSQ, signed where the value can "
                       "be negative\n");
        fprintf(f, "[%s] %s\nQIn=LSQ\nQIn.Range=255\n%sQActSolver.LearningRate=0.001\n\n",
                qc_node_label(g, n),
                qc_op_cell(n->kind) == QC_CELL_CONV ? "onnx:Conv_def" : "onnx:Fc_def",
                qin[j] == 2 ? "QIn.Signed=1\n" : "");
    }
    fprintf(f, "; ---- per-node sections: uncomment to override the defaults above ----\n");
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        char si[128], so[128];
        const struct qc_tensor *x = n->n_in > 0 && n->in[0] >= 0 ? qc_plan_value(p, n->in[0])
                                                                 : NULL;
        const struct qc_tensor *y = qc_plan_value(p, n->out[0]);
        if (!quantizable(n) && !is_activation(n))
            continue;
        if (!x || !y || qc_plan_value_is_const(p, n->out[0]))
            continue;
        fprintf(f, "\n; %s (output %s): %s -> %s, %lld parameters\n", n->op_type,
                g->values[n->out[0]].name, qc_shape_str(&x->shape, si, sizeof(si)),
                qc_shape_str(&y->shape, so, sizeof(so)), (long long)qc_node_param_count(g, n));
        if (quantizable(n) && (signed_section(g, p, is_signed, i) || qin[i])) {
            fprintf(f, "; its section [%s] is above (%s)\n", qc_node_label(g, n),
                    qin[i] ? "QIn" : "signed QAct");
            n_q++;
            continue;
        }
        fprintf(f, ";[%s]%s\n", qc_node_label(g, n),
                quantizable(n)
                    ? (qc_op_cell(n->kind) == QC_CELL_CONV ? " onnx:Conv_def" : " onnx:Fc_def")
                    : " onnx:Relu_def");
        if (quantizable(n)) {
            fprintf(f, ";QWeight.Range=255\n");
            n_q++;
        } else {
            fprintf(f, ";QAct.Range=255\n");
            n_a++;
        }
    }
    fprintf(f, "\n; %d quantizable weights, %d activations, %d signed activations\n", n_q, n_a,
            n_s);
    fprintf(f, "; %d layer-input quantizers (QIn)\n", n_in);
out:
    qc_free(qin);
    qc_free(is_signed);
    qc_plan_free(p);
    qc_backend_free(be);
    qc_inputs_unbind(g, bind, false);
    return qc_text_close(&out, st, text);
}
