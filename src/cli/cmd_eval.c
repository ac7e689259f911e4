/*
 * cmd_eval.c - `qatconv eval IN.onnx -r RECIPE`: top-1 accuracy of the
 * model's first output on the recipe's test set, and throughput
 * (evaluate.c does the work).
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "cmd.h"
#include "data/data.h"
#include "ir/graph.h"
#include "util/log.h"
#include "onnx/onnx_io.h"
#include "plan/plan.h"
#include "pipeline/evaluate.h"
#include "recipe/recipe.h"

enum qc_status qc_cmd_eval(const struct qc_cli *cli)
{
    struct qc_graph *g = NULL;
    struct qc_recipe *r = NULL;
    struct qc_data_cfg *cfg = NULL;
    struct qc_dataset *ds = NULL;
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    struct qc_eval_result res;
    FILE *pred = NULL;
    int64_t batch;
    enum qc_status st;

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
    if (st == QC_OK && cli->tf32)
        st = qc_backend_allow_tf32(be);
    if (st != QC_OK)
        goto out;
    qc_backend_set_max_memory(be, cli->max_memory);
    batch = cli->batch ? cli->batch : qc_data_cfg_batch(cfg);
    st = qc_plan_new(g, be, batch, &p);
    if (st != QC_OK)
        goto out;
    batch = qc_plan_batch(p);
    st = qc_eval_check(g, p, cfg);
    if (st != QC_OK)
        goto out;
    if (cli->profile) {
        st = qc_plan_profile(p);
        if (st != QC_OK)
            goto out;
    }

    if (cli->predictions) {
        pred = fopen(cli->predictions, "w");
        if (!pred) {
            qc_log_error("%s: cannot write: %s", cli->predictions, strerror(errno));
            st = QC_ERR_IO;
            goto out;
        }
    }
    st = qc_evaluate_pred(p, be, cfg, ds, QC_SPLIT_TEST, cli->limit, cli->progress, "eval", pred,
                          &res);
    if (st != QC_OK)
        goto out;
    printf("test: top-1 %.2f%% (%lld/%lld), %.1f images/s, %.2f s, batch %lld, %d threads\n",
           100.0 * (double)res.correct / (double)(res.n ? res.n : 1), (long long)res.correct,
           (long long)res.n, res.secs > 0 ? (double)res.n / res.secs : 0.0, res.secs,
           (long long)batch, qc_backend_threads(be));
    qc_plan_profile_print(p, stdout);
out:
    if (pred && fclose(pred) != 0 && st == QC_OK) {
        qc_log_error("%s: cannot write: %s", cli->predictions, strerror(errno));
        st = QC_ERR_IO;
    }
    qc_plan_free(p);
    qc_backend_free(be);
    qc_dataset_free(ds);
    qc_data_cfg_free(cfg);
    qc_recipe_free(r);
    qc_graph_free(g);
    return st;
}
