/*
 * cmd_convert.c - `qatconv IN.onnx -o OUT.onnx`: load, check (op support,
 * attributes, shape inference at batch 1), write back.  With a recipe the
 * recipe is validated too; fine-tuning arrives with the training engine.
 * Refuses to overwrite its own input.
 */
#include <config.h>

#include <sys/stat.h>

#include "backend/backend.h"
#include "cmd.h"
#include "graph.h"
#include "log.h"
#include "onnx/onnx_io.h"
#include "plan.h"
#include "recipe.h"

/* True if both paths name the same existing file. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

enum qc_status qc_cmd_convert(const struct qc_cli *cli)
{
    struct qc_graph *g = NULL;
    struct qc_recipe *r = NULL;
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    enum qc_status st;

    if (same_file(cli->model, cli->output)) {
        qc_log_error("%s: the output would overwrite the input model; choose another -o path",
                     cli->output);
        return QC_ERR_INVAL;
    }
    st = qc_onnx_load(cli->model, &g);
    if (st != QC_OK)
        goto out;
    if (cli->recipe) {
        st = qc_recipe_load(cli->recipe, cli->lenient, &r);
        if (st != QC_OK)
            goto out;
        qc_log_error("%s: fine-tuning with a recipe is not available in this version yet; "
                     "run without -r to check and copy the model, or use 'qatconv eval'",
                     cli->recipe);
        st = QC_ERR_UNSUPPORTED;
        goto out;
    }
    st = qc_backend_new("cpu", cli->threads, &be);
    if (st != QC_OK)
        goto out;
    st = qc_plan_new(g, be, 1, &p);
    if (st != QC_OK)
        goto out;
    st = qc_onnx_save(g, cli->output);
    if (st != QC_OK)
        goto out;
    if (!cli->quiet)
        printf("wrote %s (%d nodes, opset %lld)\n", cli->output, g->n_nodes,
               (long long)g->opset);
out:
    qc_plan_free(p);
    qc_backend_free(be);
    qc_recipe_free(r);
    qc_graph_free(g);
    return st;
}
