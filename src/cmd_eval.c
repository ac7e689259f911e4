/*
 * cmd_eval.c - `qatconv eval IN.onnx -r RECIPE`: top-1 accuracy of the
 * model's first output on the recipe's test set, and throughput.
 *
 * Images go through the recipe's NoLearn/All transformations into a host
 * batch, are uploaded to the plan's input, the plan runs forward, and the
 * arg-max of each row of the first output (first maximum on ties, as numpy
 * does) is compared with the label.  The last batch may be partial: only its
 * first rows count.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "cmd.h"
#include "data/data.h"
#include "graph.h"
#include "log.h"
#include "onnx/onnx_io.h"
#include "plan.h"
#include "progress.h"
#include "recipe.h"

/* Index of the largest of n floats, the first one on ties. */
static int64_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* The plan's input must be a float tensor of the data's geometry. */
static enum qc_status check_geometry(const struct qc_graph *g, struct qc_plan *p,
                                     const struct qc_data_cfg *cfg)
{
    const struct qc_tensor *in;
    int c, h, w;
    char s[128];

    if (qc_plan_n_inputs(p) != 1) {
        qc_log_error("%s: eval needs a model with exactly one runtime input (it has %d)",
                     g->path, qc_plan_n_inputs(p));
        return QC_ERR_UNSUPPORTED;
    }
    in = qc_plan_input(p, 0);
    qc_data_cfg_geometry(cfg, &c, &h, &w);
    if (in->dtype != QC_DTYPE_F32 || in->shape.ndim != 4 || in->shape.dims[1] != c ||
        in->shape.dims[2] != h || in->shape.dims[3] != w) {
        qc_log_error("%s: input %s %s does not take the recipe's %dx%dx%d float images",
                     g->path, g->values[g->inputs[0]].name,
                     qc_shape_str(&in->shape, s, sizeof(s)), c, h, w);
        return QC_ERR_SHAPE;
    }
    if (qc_plan_n_outputs(p) < 1 || qc_plan_output(p, 0)->dtype != QC_DTYPE_F32 ||
        qc_plan_output(p, 0)->shape.ndim != 2) {
        qc_log_error("%s: eval needs a first output of shape [batch, classes]", g->path);
        return QC_ERR_SHAPE;
    }
    return QC_OK;
}

enum qc_status qc_cmd_eval(const struct qc_cli *cli)
{
    struct qc_graph *g = NULL;
    struct qc_recipe *r = NULL;
    struct qc_data_cfg *cfg = NULL;
    struct qc_dataset *ds = NULL;
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    float *x = NULL, *y = NULL;
    int32_t *labels = NULL;
    int64_t *idx = NULL;
    int64_t batch, n_img, correct = 0, classes;
    struct qc_progress prog;
    enum qc_status st;
    double secs;

    st = qc_onnx_load(cli->model, &g);
    if (st != QC_OK)
        goto out;
    st = qc_recipe_load(cli->recipe, cli->lenient, &r);
    if (st != QC_OK)
        goto out;
    st = qc_data_cfg_from_recipe(r, &cfg);
    if (st != QC_OK)
        goto out;
    st = qc_data_load(cfg, QC_SPLIT_TEST, &ds);
    if (st != QC_OK)
        goto out;
    st = qc_backend_new(cli->device, cli->threads, &be);
    if (st != QC_OK)
        goto out;
    batch = cli->batch ? cli->batch : qc_data_cfg_batch(cfg);
    st = qc_plan_new(g, be, batch, &p);
    if (st != QC_OK)
        goto out;
    batch = qc_plan_batch(p);
    st = check_geometry(g, p, cfg);
    if (st != QC_OK)
        goto out;
    if (cli->profile) {
        st = qc_plan_profile(p);
        if (st != QC_OK)
            goto out;
    }

    n_img = cli->limit ? QC_MIN(cli->limit, ds->n) : ds->n;
    classes = qc_plan_output(p, 0)->shape.dims[1];
    x = qc_malloc(qc_tensor_nbytes(qc_plan_input(p, 0)));
    y = qc_malloc(qc_tensor_nbytes(qc_plan_output(p, 0)));
    labels = qc_malloc((size_t)batch * sizeof(*labels));
    idx = qc_malloc((size_t)batch * sizeof(*idx));
    if (!x || !y || !labels || !idx) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    memset(x, 0, qc_tensor_nbytes(qc_plan_input(p, 0)));

    qc_progress_start(&prog, cli->progress, "eval", "images", n_img);
    for (int64_t start = 0; start < n_img; start += batch) {
        int64_t n = QC_MIN(batch, n_img - start);
        char extra[64];
        for (int64_t i = 0; i < n; i++)
            idx[i] = start + i;
        st = qc_data_batch(cfg, ds, QC_SPLIT_TEST, idx, n, NULL, x, labels);
        if (st != QC_OK)
            goto out;
        st = be->ops->upload(be, qc_plan_input(p, 0)->data, x,
                             qc_tensor_nbytes(qc_plan_input(p, 0)));
        if (st != QC_OK)
            goto out;
        st = qc_plan_forward(p);
        if (st != QC_OK)
            goto out;
        st = be->ops->download(be, y, qc_plan_output(p, 0)->data,
                               qc_tensor_nbytes(qc_plan_output(p, 0)));
        if (st != QC_OK)
            goto out;
        for (int64_t i = 0; i < n; i++)
            correct += argmax(y + i * classes, classes) == labels[i];
        snprintf(extra, sizeof(extra), "top-1 %.2f%%",
                 100.0 * (double)correct / (double)(start + n));
        qc_progress_update(&prog, start + n, extra);
    }
    secs = qc_progress_end(&prog);
    printf("test: top-1 %.2f%% (%lld/%lld), %.1f images/s, %.2f s, batch %lld, %d threads\n",
           100.0 * (double)correct / (double)(n_img ? n_img : 1), (long long)correct,
           (long long)n_img, secs > 0 ? (double)n_img / secs : 0.0, secs, (long long)batch,
           be->threads);
    qc_plan_profile_print(p, stdout);
out:
    qc_free(x);
    qc_free(y);
    qc_free(labels);
    qc_free(idx);
    qc_plan_free(p);
    qc_backend_free(be);
    qc_dataset_free(ds);
    qc_data_cfg_free(cfg);
    qc_recipe_free(r);
    qc_graph_free(g);
    return st;
}
