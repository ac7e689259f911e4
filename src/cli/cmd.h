/*
 * cmd.h - the commands main() dispatches to.  Each returns a status; the
 * error has already been reported.
 */
#ifndef QATCONV_SRC_CMD_H
#define QATCONV_SRC_CMD_H

#include "cli.h"
#include "util/qc.h"

enum qc_status qc_cmd_info(const struct qc_cli *cli);
enum qc_status qc_cmd_eval(const struct qc_cli *cli);
enum qc_status qc_cmd_convert(const struct qc_cli *cli);
enum qc_status qc_cmd_template(const struct qc_cli *cli);

#endif
