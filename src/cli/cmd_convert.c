/*
 * cmd_convert.c - `qatconv IN.onnx [-r RECIPE] -o OUT.onnx`.
 *
 * Without a recipe: load, check (op support, attributes, shape inference at
 * batch 1), write back; with --format int, a fake-quant (QDQ) model is
 * rewritten as the integer-only model first.  With a recipe: fine-tune on the recipe's data for
 * --epochs (or the recipe's Epochs) and write the trained float model, with
 * a summary of test accuracy before and after.  The output is written only
 * when everything succeeded (atomically); the input is never overwritten.
 */
#include <config.h>

#include <stdio.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "export/int.h"
#include "cmd.h"
#include "ir/graph.h"
#include "util/log.h"
#include "onnx/onnx_io.h"
#include "plan/plan.h"
#include "recipe/recipe.h"
#include "recipe/match.h"
#include "train/train.h"

/* True if both paths name the same existing file. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Epochs from --epochs or the recipe's global Epochs key. */
static enum qc_status epochs_of(const struct qc_cli *cli, const struct qc_recipe *r,
                                int *epochs)
{
    int64_t e;
    enum qc_status st;
    if (cli->epochs >= 0) {
        *epochs = cli->epochs;
        return QC_OK;
    }
    st = qc_recipe_int(r, "", "Epochs", -1, &e);
    if (st != QC_OK)
        return st;
    if (e < 0) {
        qc_log_error("%s: how many epochs? Give --epochs N or Epochs=N in the recipe",
                     qc_recipe_path(r));
        return QC_ERR_INVAL;
    }
    *epochs = (int)QC_MIN(e, 1000000);
    return QC_OK;
}

static void print_summary(const struct qc_train_report *rep, int epochs)
{
    printf("summary: %d epoch%s, %.1f s, %lld training images", epochs, epochs == 1 ? "" : "s",
           rep->secs, (long long)rep->images);
    if (rep->images && rep->secs > 0)
        printf(" (%.0f images/s)", (double)rep->images / rep->secs);
    printf("\n");
    if (rep->valid_best >= 0)
        printf("summary: best validation top-1 %.2f%% (epoch %d)\n", rep->valid_best,
               rep->best_epoch);
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
}

static enum qc_status train_and_save(const struct qc_cli *cli, struct qc_graph *g)
{
    struct qc_recipe *r = NULL;
    struct qc_backend *be = NULL;
    struct qc_train_report rep;
    struct qc_train_opts o;
    enum qc_status st;
    int epochs = 0;

    st = qc_recipe_load(cli->recipe, cli->lenient, &r);
    if (st != QC_OK)
        goto out;
    st = qc_recipe_check_sections(r, g, cli->lenient);
    if (st != QC_OK)
        goto out;
    st = epochs_of(cli, r, &epochs);
    if (st != QC_OK)
        goto out;
    st = qc_backend_new(cli->device, cli->threads, &be);
    if (st == QC_OK && cli->tf32)
        st = qc_backend_allow_tf32(be);
    if (st != QC_OK)
        goto out;
    qc_backend_set_max_memory(be, cli->max_memory);
    o = (struct qc_train_opts){
        .epochs = epochs, .batch = cli->batch, .seed = cli->seed, .keep_best = !cli->keep_last,
        .progress = cli->progress, .quiet = cli->quiet, .shuffle = !cli->no_shuffle,
        .limit = cli->limit, .checkpoint = cli->checkpoint, .resume = cli->resume,
        .checkpoint_every = cli->checkpoint_every,
        .skip_eval = cli->no_eval, .log = cli->log,
        .format = (enum qc_out_format)cli->format, .report = cli->report,
        .model_path = cli->model, .dump_weights = cli->dump_weights, .fold_bn = cli->fold_bn,
        .int_output = cli->int_output, .no_int4 = cli->no_int4,
        .input_scale = cli->input_scale > 0 ? cli->input_scale : 1.0f / 255.0f, .plots = cli->plots,
    };
    st = qc_train(g, r, be, &o, &rep);
    if (st != QC_OK)
        goto out;
    st = qc_onnx_save(g, cli->output);
    if (st != QC_OK)
        goto out;
    /* --quiet drops the per-epoch lines and progress, not the results */
    print_summary(&rep, epochs);
    if (!qc_backend_host_memory(be))
        printf("device memory peak: %.1f MiB (%s:%d)\n",
               (double)qc_backend_mem_peak(be) / 1048576.0, qc_backend_name(be),
               qc_backend_device(be));
    printf("wrote %s\n", cli->output);
out:
    qc_backend_free(be);
    qc_recipe_free(r);
    return st;
}

enum qc_status qc_cmd_convert(const struct qc_cli *cli)
{
    struct qc_graph *g = NULL;
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
        st = train_and_save(cli, g);
        goto out;
    }
    st = qc_backend_new("cpu", cli->threads, &be);
    if (st != QC_OK)
        goto out;
    qc_backend_set_max_memory(be, cli->max_memory);
    st = qc_plan_new(g, be, 1, &p);
    if (st != QC_OK)
        goto out;
    if (cli->format == QC_FORMAT_INT) {
        /* a fake-quant (QDQ) model rewritten as the integer-only one */
        struct qc_int_opts io = { cli->input_scale > 0 ? cli->input_scale : 1.0f / 255.0f,
                                  !cli->no_int4, cli->int_output };
        struct qc_int_stats is;
        qc_plan_free(p);
        p = NULL;
        st = qc_export_int(g, &io, &is, NULL);
        if (st != QC_OK)
            goto out;
        if (!cli->quiet)
            printf("integer export: %d layers, %d requantizations, %lld bytes of integer "
                   "weights (%d INT4)\n", is.n_layers, is.n_requant, (long long)is.weight_bytes,
                   is.n_int4);
    } else if (cli->format == QC_FORMAT_FAKE || cli->plots || cli->fold_bn) {
        qc_log_error("%s: --format fake, --plots and --fold-bn need a recipe (-r)", cli->model);
        st = QC_ERR_INVAL;
        goto out;
    }
    st = qc_onnx_save(g, cli->output);
    if (st != QC_OK)
        goto out;
    if (!cli->quiet)
        printf("wrote %s (%d nodes, opset %lld)\n", cli->output, g->n_nodes,
               (long long)g->opset);
out:
    qc_plan_free(p);
    qc_backend_free(be);
    qc_graph_free(g);
    return st;
}
