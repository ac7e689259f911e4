/*
 * info.c - qc_model_info_text, the text of `qatconv info IN.onnx`: every node
 * with its name, first output name (the two ways a recipe can address it),
 * op, input and output shapes at batch 1, and parameter count; folded
 * shape-subgraph nodes are marked.  Built in memory; the CLI prints it.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "backend/backend.h"
#include "ir/graph.h"
#include "plan/plan.h"

/* Appends the shapes of a node's inputs or outputs ("[1,3,8,8] [8,3,3,3]"). */
static void shapes_str(struct qc_plan *p, const struct qc_graph *g, const int *vals, int n,
                       char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && pos < len; i++) {
        char s[128];
        const struct qc_tensor *t = vals[i] >= 0 ? qc_plan_value(p, vals[i]) : NULL;
        int w;
        if (vals[i] >= 0 && !g->values[vals[i]].name[0])
            t = NULL;
        if (t)
            qc_shape_str(&t->shape, s, sizeof(s));
        else
            snprintf(s, sizeof(s), "-");
        w = snprintf(buf + pos, len - pos, "%s%s", i ? " " : "", s);
        if (w > 0)
            pos += (size_t)w;
    }
}

enum qc_status qc_model_info_text(const struct qc_model *m, const struct qc_job *job,
                                  char **text)
{
    const struct qc_graph *g = m->g;
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    struct qc_text out;
    FILE *f;
    enum qc_status st;
    int64_t total = 0;
    int w_name = 4, w_out = 6, w_op = 2;

    *text = NULL;
    st = qc_text_open(&out);
    if (st != QC_OK)
        return st;
    f = out.f;
    st = qc_backend_new("cpu", qc_job_opts(job)->threads, &be);
    if (st != QC_OK)
        goto out;
    qc_backend_set_max_memory(be, qc_job_opts(job)->max_memory);
    st = qc_plan_new(g, be, 1, &p);
    if (st != QC_OK)
        goto out;

    fprintf(f, "model: %s (IR %lld, opset %lld, producer %s %s)\n", g->path,
               (long long)g->ir_version, (long long)g->opset,
               g->producer_name ? g->producer_name : "?",
               g->producer_version ? g->producer_version : "");
    for (int i = 0; i < g->n_inputs; i++) {
        const struct qc_value *v = &g->values[g->inputs[i]];
        char s[128];
        if (v->init)
            continue;
        fprintf(f, "input:  %s %s %s%s%s\n", v->name, qc_dtype_name(v->dtype),
                   qc_shape_str(&qc_plan_value(p, g->inputs[i])->shape, s, sizeof(s)),
                   v->dim_param[0] ? " batch axis " : "", v->dim_param[0] ? v->dim_param[0] : "");
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const struct qc_tensor *t = qc_plan_output(p, i);
        char s[128];
        fprintf(f, "output: %s %s %s\n", g->values[g->outputs[i]].name, qc_dtype_name(t->dtype),
                   qc_shape_str(&t->shape, s, sizeof(s)));
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        int a = (int)strlen(n->name ? n->name : "");
        int b = n->n_out ? (int)strlen(g->values[n->out[0]].name) : 1;
        int c = (int)strlen(n->op_type);
        w_name = QC_MAX(w_name, QC_MIN(a, 40));
        w_out = QC_MAX(w_out, QC_MIN(b, 40));
        w_op = QC_MAX(w_op, c);
    }
    fprintf(f, "\n%-4s %-*s %-*s %-*s %10s  %s\n", "#", w_name, "name", w_out, "output", w_op, "op",
               "params", "inputs -> outputs (batch 1)");
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        char ins[1024], outs[512];
        int64_t np = qc_node_param_count(g, n);
        bool folded = n->n_out > 0 && qc_plan_value_is_const(p, n->out[0]);
        total += np;
        shapes_str(p, g, n->in, n->n_in, ins, sizeof(ins));
        shapes_str(p, g, n->out, n->n_out, outs, sizeof(outs));
        fprintf(f, "%-4d %-*s %-*s %-*s %10lld  %s -> %s%s\n", i, w_name,
                   n->name && n->name[0] ? n->name : "-", w_out,
                   n->n_out ? g->values[n->out[0]].name : "-", w_op, n->op_type, (long long)np,
                   ins, outs, folded ? "  (folded)" : "");
    }
    fprintf(f, "\n%d nodes, %lld parameters\n", g->n_nodes, (long long)total);
out:
    qc_plan_free(p);
    qc_backend_free(be);
    return qc_text_close(&out, st, text);
}
