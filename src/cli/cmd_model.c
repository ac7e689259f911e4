/*
 * cmd_model.c - the commands that describe: `qatconv info IN.onnx` (every
 * node with its shapes), `--recipe-template IN.onnx` (a starter recipe) and
 * `--recipe-keys` (the recipe schema).  The library builds the text.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"

enum qc_status qc_cmd_job(const struct qc_cli *cli, const struct qc_recipe *r, struct qc_job **job)
{
    struct qc_job_options jo = QC_JOB_OPTIONS_INIT;
    enum qc_status st = qc_recipe_device(r, cli->device, &jo.device);
    if (st != QC_OK)
        return st;
    jo.threads = cli->threads;
    jo.max_memory = cli->max_memory;
    jo.tf32 = cli->tf32;
    return qc_job_new(&jo, job);
}

enum qc_status qc_cmd_job_device(const struct qc_cli *cli, const struct qc_recipe *r,
                                 struct qc_job *job)
{
    const char *device;
    enum qc_status st = qc_recipe_device(r, cli->device, &device);
    return st == QC_OK ? qc_job_set_device(job, device) : st;
}

/* Loads the model and prints what describe() makes of it. */
static enum qc_status describe_model(const struct qc_cli *cli,
                                     enum qc_status (*describe)(const struct qc_model *,
                                                                const struct qc_job *, char **))
{
    struct qc_model *m = NULL;
    struct qc_job *job = NULL;
    char *text = NULL;
    enum qc_status st = qc_model_load(cli->model, &m);
    if (st == QC_OK)
        st = qc_cmd_job(cli, NULL, &job);
    if (st == QC_OK)
        st = describe(m, job, &text);
    if (st == QC_OK)
        fputs(text, stdout);
    free(text);
    qc_job_free(job);
    qc_model_free(m);
    return st;
}

enum qc_status qc_cmd_info(const struct qc_cli *cli)
{
    return describe_model(cli, qc_model_info_text);
}

enum qc_status qc_cmd_template(const struct qc_cli *cli)
{
    return describe_model(cli, qc_recipe_template);
}

enum qc_status qc_cmd_keys(void)
{
    char *text = NULL;
    enum qc_status st = qc_recipe_keys_text(&text);
    if (st == QC_OK)
        fputs(text, stdout);
    free(text);
    return st;
}
