/*
 * cmd_eval.c - `qatconv eval IN.onnx -r RECIPE`: top-1 accuracy of the
 * model's first output on the recipe's test set (top-5, macro precision,
 * recall and F1; per class with --per-class), and throughput (the
 * library's qc_evaluate does the work).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "progress.h"

enum qc_status qc_cmd_eval(const struct qc_cli *cli)
{
    struct qc_model *m = NULL;
    struct qc_recipe *r = NULL;
    struct qc_job *job = NULL;
    struct qc_cli_progress cp = { cli->progress, cli->quiet, { 0 } };
    struct qc_eval_options o = QC_EVAL_OPTIONS_INIT;
    struct qc_eval_summary res = { 0 };
    enum qc_status st;

    o.batch = cli->batch;
    o.limit = cli->limit;
    o.profile = cli->profile;
    o.predictions = cli->predictions;
    o.progress = qc_cli_progress_event;
    o.progress_user = &cp;
    st = qc_model_load(cli->model, &m);
    if (st == QC_OK)
        st = qc_recipe_load(cli->recipe, cli->lenient, &r);
    if (st == QC_OK)
        st = qc_cmd_job(cli, r, &job);
    if (st == QC_OK)
        st = qc_evaluate(job, m, r, &o, &res);
    if (st == QC_OK) {
        printf("test: top-1 %.2f%% (%lld/%lld), ", res.top1, (long long)res.correct,
               (long long)res.n);
        if (res.top5 >= 0)
            printf("top-5 %.2f%% (%lld/%lld), ", res.top5, (long long)res.correct5,
                   (long long)res.n);
        printf("%.1f images/s, %.2f s, batch %lld, %d threads\n", res.images_per_s, res.secs,
               (long long)res.batch, res.threads);
        if (res.macro_f1 >= 0)
            printf("test: macro precision %.2f%%, recall %.2f%%, F1 %.2f%% over %lld classes\n",
                   res.macro_precision, res.macro_recall, res.macro_f1, (long long)res.classes);
        if (cli->per_class && res.per_class)
            fputs(res.per_class, stdout);
        if (res.profile)
            fputs(res.profile, stdout);
    }
    free(res.profile);
    free(res.per_class);
    free(res.confusion);
    qc_job_free(job);
    qc_recipe_free(r);
    qc_model_free(m);
    return st;
}
