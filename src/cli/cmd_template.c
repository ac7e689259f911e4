/*
 * cmd_template.c - `qatconv --recipe-template IN.onnx`: a starter recipe for
 * the model on stdout: the data sections (geometry from the model's input),
 * solvers, the kind default sections with SAT W4A4 settings, and one
 * commented section per quantizable node (name, op, shapes, parameters) so
 * users can override a layer without a graph viewer.
 */
#include <config.h>

#include <stdio.h>

#include "backend/backend.h"
#include "cmd.h"
#include "ir/graph.h"
#include "onnx/onnx_io.h"
#include "ops/op.h"
#include "plan/plan.h"

static bool quantizable(const struct qc_node *n)
{
    return qc_op_quantizes_weight(n->kind);
}

static bool is_activation(const struct qc_node *n)
{
    return qc_op_quantizes_act(n->kind);
}

enum qc_status qc_cmd_template(const struct qc_cli *cli)
{
    struct qc_graph *g = NULL;
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    const struct qc_tensor *in;
    enum qc_status st;
    int n_q = 0, n_a = 0;

    st = qc_onnx_load(cli->model, &g);
    if (st == QC_OK)
        st = qc_backend_new("cpu", 1, &be);
    if (st == QC_OK) {
        qc_backend_set_max_memory(be, cli->max_memory);
        st = qc_plan_new(g, be, 1, &p);
    }
    if (st != QC_OK)
        goto out;
    in = qc_plan_n_inputs(p) > 0 ? qc_plan_input(p, 0) : NULL;
    printf("; Starter recipe for %s, written by qatconv --recipe-template.\n", cli->model);
    printf("; SAT 4-bit weights and activations everywhere; edit the per-node sections at the\n"
           "; end to change a layer (first and last layers are usually kept at 8 bits).\n"
           ";     qatconv %s -r THIS.ini -o out.onnx --epochs 4\n\n", cli->model);
    printf("Solvers=SGD\nSolvers.LearningRate=0.01\nSolvers.Momentum=0.9\n"
           "Solvers.Decay=0.00004\n\n");
    printf("[database]\n; MNIST_IDX_Database, CIFAR10_Database or CIFAR100_Database\n"
           "Type=MNIST_IDX_Database\nDataPath=/usr/share/datasets/fashion-mnist\n"
           "Validation=0.1\n\n");
    if (in && in->shape.ndim == 4)
        printf("[sp]\nSizeX=%lld\nSizeY=%lld\nNbChannels=%lld\nBatchSize=128\n\n",
               (long long)in->shape.dims[3], (long long)in->shape.dims[2],
               (long long)in->shape.dims[1]);
    printf("; pixels 0..255 -> [0,1]\n[sp.Transformation-1]\nType=RangeAffineTransformation\n"
           "FirstOperator=Divides\nFirstValue=255.0\n\n");
    printf("[onnx:Conv_def]\nQWeight=SAT\nQWeight.Range=15\n\n");
    printf("[onnx:Fc_def]\nQWeight=SAT\nQWeight.Range=15\nQWeight.ApplyScaling=1\n\n");
    printf("[onnx:Relu_def]\nActivationFunction=Linear\nQAct=SAT\nQAct.Range=15\n"
           "QAct.Alpha=6.0\nQActSolver.LearningRate=0.01\n\n");
    printf("; ---- per-node sections: uncomment to override the defaults above ----\n");
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
        printf("\n; %s (output %s): %s -> %s, %lld parameters\n", n->op_type,
               g->values[n->out[0]].name, qc_shape_str(&x->shape, si, sizeof(si)),
               qc_shape_str(&y->shape, so, sizeof(so)), (long long)qc_node_param_count(g, n));
        printf(";[%s]%s\n", qc_node_label(g, n),
               quantizable(n) ? (qc_op_cell(n->kind) == QC_CELL_CONV
                                     ? " onnx:Conv_def" : " onnx:Fc_def")
                              : " onnx:Relu_def");
        if (quantizable(n)) {
            printf(";QWeight.Range=255\n");
            n_q++;
        } else {
            printf(";QAct.Range=255\n");
            n_a++;
        }
    }
    printf("\n; %d quantizable weights, %d activations\n", n_q, n_a);
out:
    qc_plan_free(p);
    qc_backend_free(be);
    qc_graph_free(g);
    return st;
}
