/*
 * main.c - the qatconv program: parse the command line, run one command,
 * map its status to the exit code.  The only place that exits.  The CLI
 * (src/cli/) uses the library through include/qatconv.h only.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"
#include "qatconv.h"

/*
 * OpenMP's worker threads spin while they wait for the next parallel region.
 * On the small shared machines qatconv runs on (2 cores, other jobs), a
 * spinning worker takes the core the working thread needs: training ran 5x
 * slower.  libgomp reads OMP_WAIT_POLICY only when it is loaded, so unless
 * the user chose a policy, qatconv sets PASSIVE and executes itself again
 * (once: the variable is then set).  If that fails, it simply goes on.
 */
static void passive_openmp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY"))
        return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    struct qc_cli cli;
    enum qc_status st;

    passive_openmp(argv);
    st = qc_cli_parse(argc, argv, &cli);

    if (st != QC_OK)
        return QC_EXIT_USAGE;
    switch (cli.command) {
    case QC_CMD_HELP:
        qc_cli_help(stdout);
        return QC_EXIT_OK;
    case QC_CMD_VERSION:
        printf("%s\n", PACKAGE_STRING);
        return QC_EXIT_OK;
    case QC_CMD_INFO:
        st = qc_cmd_info(&cli);
        break;
    case QC_CMD_EVAL:
        st = qc_cmd_eval(&cli);
        break;
    case QC_CMD_CONVERT:
        st = qc_cmd_convert(&cli);
        break;
    case QC_CMD_KEYS:
        st = qc_cmd_keys();
        break;
    case QC_CMD_TEMPLATE:
        st = qc_cmd_template(&cli);
        break;
    }
    if (fflush(stdout) != 0 && st == QC_OK) {
        perror("qatconv: error: stdout");
        return QC_EXIT_RUNTIME;
    }
    return (int)qc_status_exit_code(st);
}
