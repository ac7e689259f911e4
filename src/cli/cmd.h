/*
 * cmd.h - the commands main() dispatches to.  Each returns a status; the
 * error has already been reported.  They parse nothing and compute
 * nothing: they call the library (qatconv.h) and print its results.
 */
#ifndef QATCONV_SRC_CMD_H
#define QATCONV_SRC_CMD_H

#include "cli.h"
#include "qatconv.h"

enum qc_status qc_cmd_info(const struct qc_cli *cli);
enum qc_status qc_cmd_eval(const struct qc_cli *cli);
enum qc_status qc_cmd_convert(const struct qc_cli *cli);
enum qc_status qc_cmd_template(const struct qc_cli *cli);
enum qc_status qc_cmd_keys(void);
/* The job of the command line's --device, --threads, --max-memory, --tf32.
 * The device: --device when given (it overrides the recipe r's DefaultModel,
 * with a warning when they disagree), else DefaultModel (Frame: cpu,
 * Frame_CUDA: cuda), else cpu.  r may be NULL. */
enum qc_status qc_cmd_job(const struct qc_cli *cli, const struct qc_recipe *r, struct qc_job **job);
/* The same device choice for a job made before its recipe was read (a
 * conversion joins its MPI ranks first, so that only rank 0 reports). */
enum qc_status qc_cmd_job_device(const struct qc_cli *cli, const struct qc_recipe *r,
                                 struct qc_job *job);

#endif
