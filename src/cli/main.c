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
 * slower.  Not spinning at all costs a futex wake-up per region, and a QAT
 * step has hundreds of short regions.  So, unless the user chose a policy,
 * qatconv sets OMP_WAIT_POLICY=PASSIVE with a short spin, GOMP_SPINCOUNT=3000
 * (libgomp; some 10-100 us), and executes itself again (once: the variables are
 * then set).  LeNet-BN SAT W4A4 at 2 threads, 12,800 images (images/s, two runs):
 * spin 0: 3,290 and 4,101 alone, 2,868 and 2,780 with a second such run beside
 * it; spin 3000: 5,885 and 5,966 alone, 2,875 and 2,836 beside a second run;
 * spin 10000: 6,090 and 5,567 alone but 2,141 and 2,091 beside a second run.
 * If setting them fails, it simply goes on.
 */
static void passive_openmp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY"))
        return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0)
        return;
    if (!getenv("GOMP_SPINCOUNT") && setenv("GOMP_SPINCOUNT", "3000", 1) != 0)
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
