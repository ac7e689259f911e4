/*
 * cmd_convert.c - `qatconv IN.onnx [-r RECIPE] -o OUT.onnx`.
 *
 * Without a recipe: load, check (op support, attributes, shape inference at
 * batch 1), write back; with --format int, a fake-quant (QDQ) model is
 * rewritten as the integer-only model first.  With a recipe: fine-tune on the recipe's data for
 * --epochs (or the recipe's Epochs) and write the trained float model, with
 * a summary of test accuracy before and after.  The output is written only
 * when everything succeeded (atomically); the input is never overwritten.
 * The library's qc_convert does the work; this file sets its options from
 * the command line, renders its events (progress.c) and prints its results.
 */
#include <config.h>

#include <stdio.h>
#include <sys/stat.h>

#include "cmd.h"
#include "progress.h"

/* True if both paths name the same existing file. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void print_summary(const struct qc_convert_result *rep, int epochs)
{
    printf("summary: %d epoch%s, %.1f s, %lld training images", epochs, epochs == 1 ? "" : "s",
           rep->secs, (long long)rep->images);
    if (rep->images && rep->secs > 0)
        printf(" (%.0f images/s)", (double)rep->images / rep->secs);
    printf("\n");
    if (rep->valid_best >= 0 && rep->valid_metric == QC_METRIC_TOP1)
        printf("summary: best validation top-1 %.2f%% (epoch %d)\n", rep->valid_best,
               rep->best_epoch);
    else if (rep->best_epoch > 0 && rep->valid_metric != QC_METRIC_TOP1)
        printf("summary: best validation %s %.2f%% (epoch %d)\n", qc_metric_name(rep->valid_metric),
               rep->valid_best, rep->best_epoch);
    if (rep->n_int_layers)
        printf("summary: integer export: %d layers, %lld bytes of integer weights (%d INT4)\n",
               rep->n_int_layers, (long long)rep->weight_bytes, rep->n_int4);
    if (rep->n_folded_bn)
        printf("summary: %d BatchNormalization node%s folded\n", rep->n_folded_bn,
               rep->n_folded_bn == 1 ? "" : "s");
    if (rep->test_float < 0 && rep->test_export >= 0)
        printf("summary: test top-1 of the written graph %.2f%%\n", rep->test_export);
    if (rep->test_float >= 0 && rep->test_export >= 0)
        printf("summary: test top-1 float %.2f%%, fake-quant before training %.2f%%, after "
               "%.2f%%, exported graph %.2f%% (%d quantizers)\n", rep->test_float,
               rep->test_before, rep->test_after, rep->test_export, rep->n_quant);
    else if (rep->test_float >= 0)
        printf("summary: test top-1 float %.2f%%, fake-quant before training %.2f%%, after "
               "%.2f%% (%d quantizers; the exported graph is not evaluated)\n",
               rep->test_float, rep->test_before, rep->test_after, rep->n_quant);
    else if (rep->test_before >= 0)
        printf("summary: test top-1 float before %.2f%%, after %.2f%%\n", rep->test_before,
               rep->test_after);
    if (rep->test_macro_f1 >= 0) {
        printf("summary: test");
        if (rep->test_top5 >= 0)
            printf(" top-5 %.2f%%,", rep->test_top5);
        printf(" macro F1 %.2f%% (%s; per class: --report)\n", rep->test_macro_f1,
               rep->test_export >= 0 ? "exported graph" : "after");
    }
}

/* The options of the conversion from the command line. */
static struct qc_convert_options convert_options(const struct qc_cli *cli,
                                                 struct qc_cli_progress *cp)
{
    struct qc_convert_options o = QC_CONVERT_OPTIONS_INIT;
    o.epochs = cli->epochs;
    o.batch = cli->batch;
    o.seed = cli->seed;
    o.keep_last = cli->keep_last;
    o.valid_metric = (enum qc_metric)cli->valid_metric;
    o.distill_temperature = cli->distill_temperature;
    o.distill_weight = cli->distill_weight;
    o.no_shuffle = cli->no_shuffle;
    o.limit = cli->limit;
    o.checkpoint = cli->checkpoint;
    o.checkpoint_every = cli->checkpoint_every;
    o.resume = cli->resume;
    o.no_eval = cli->no_eval;
    o.log = cli->log;
    o.format = (enum qc_format)cli->format;
    o.report = cli->report;
    o.dump_weights = cli->dump_weights;
    o.fold_bn = cli->fold_bn;
    o.int_output = cli->int_output;
    o.no_int4 = cli->no_int4;
    o.dynamic_batch = cli->dynamic_batch;
    o.no_keep_dtype = cli->no_keep_dtype;
    o.input_scale = cli->input_scale > 0 ? cli->input_scale : 1.0f / 255.0f;
    o.plots = cli->plots;
    o.opset = cli->opset;
    o.progress = qc_cli_progress_event;
    o.progress_user = cp;
    return o;
}

enum qc_status qc_cmd_convert(const struct qc_cli *cli)
{
    struct qc_model *m = NULL;
    struct qc_recipe *r = NULL;
    struct qc_job *job = NULL;
    struct qc_cli_progress cp = { cli->progress, cli->quiet, { 0 } };
    struct qc_convert_options o = convert_options(cli, &cp);
    struct qc_convert_result res;
    struct qc_load_options lo = QC_LOAD_OPTIONS_INIT;
    enum qc_status st;

    if (same_file(cli->model, cli->output)) {
        qc_cli_error("%s: the output would overwrite the input model; choose another -o path",
                     cli->output);
        return QC_ERR_INVAL;
    }
    /* the integer rewrite without a recipe reads the weight levels of a
     * weight-only quantized model as stored */
    lo.keep_weight_levels = !cli->recipe && o.format == QC_FORMAT_INT;
    /* the job first: under mpirun it joins the ranks, and ranks other than 0
     * are quiet from then on (one copy of every message) */
    st = qc_cmd_job(cli, NULL, &job);
    if (st == QC_OK)
        st = qc_model_load_with(cli->model, &lo, &m);
    if (st != QC_OK)
        goto out;
    if (cli->recipe) {
        st = qc_recipe_load(cli->recipe, cli->lenient, &r);
        if (st == QC_OK)
            st = qc_recipe_check(r, m, cli->lenient);
        if (st != QC_OK)
            goto out;
    }
    st = qc_cmd_job_device(cli, r, job);
    if (st == QC_OK)
        st = qc_convert(job, m, r, &o, &res);
    if (st == QC_OK && qc_job_rank(job) == 0) /* data parallelism: rank 0 writes */
        st = qc_model_write(m, cli->output);
    if (st != QC_OK)
        goto out;
    if (r) {
        /* --quiet drops the per-epoch lines and progress, not the results */
        print_summary(&res, res.epochs);
        if (!qc_job_host_memory(job))
            printf("device memory peak: %.1f MiB (%s:%d)\n",
                   (double)qc_job_memory_peak(job) / 1048576.0, qc_job_backend_name(job),
                   qc_job_device(job));
        printf("wrote %s\n", cli->output);
    } else if (!cli->quiet) {
        if (cli->format == QC_FORMAT_INT)
            printf("integer export: %d layers, %d requantizations, %lld bytes of integer "
                   "weights (%d INT4)\n", res.n_int_layers, res.n_requant,
                   (long long)res.weight_bytes, res.n_int4);
        printf("wrote %s (%d nodes, opset %lld)\n", cli->output, qc_model_n_nodes(m),
               (long long)qc_model_opset(m));
    }
out:
    /* several ranks: a failing one cannot wait for the others (they may be
     * blocked in a collective); every rank ends, exit 3 */
    if (st != QC_OK && qc_job_ranks(job) > 1)
        qc_job_abort(job, QC_EXIT_RUNTIME);
    qc_job_free(job);
    qc_recipe_free(r);
    qc_model_free(m);
    return st;
}
