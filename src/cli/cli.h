/*
 * cli.h - the command line: one option table (cli.c) drives both parsing and
 * --help, so the help text and the man page can be checked against it.
 *
 *   qatconv [options] IN.onnx [-r RECIPE] -o OUT.onnx     convert (and later train)
 *   qatconv info IN.onnx                                   describe every node
 *   qatconv eval IN.onnx -r RECIPE                         top-1 on the test set
 */
#ifndef QATCONV_SRC_CLI_H
#define QATCONV_SRC_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qatconv.h"

#define CLI_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CLI_MIN(a, b) ((a) < (b) ? (a) : (b))

enum qc_command {
    QC_CMD_CONVERT = 0,
    QC_CMD_INFO,
    QC_CMD_EVAL,
    QC_CMD_HELP,
    QC_CMD_VERSION,
    QC_CMD_TEMPLATE,   /* --recipe-template IN.onnx */
    QC_CMD_KEYS,       /* --recipe-keys             */
};

struct qc_cli {
    enum qc_command command;
    const char     *model;        /* IN.onnx                                  */
    const char     *recipe;       /* -r                                       */
    const char     *output;       /* -o                                       */
    const char *device;           /* --device; NULL: DefaultModel, else cpu   */
    bool            tf32;         /* --tf32: TF32 tensor cores for products   */
    int             threads;      /* --threads, 0 = all online CPUs           */
    int64_t         batch;        /* --batch, 0 = recipe's BatchSize          */
    uint64_t        max_memory;   /* --max-memory bytes, 0 = what the machine
                                     has available                             */
    int64_t         limit;        /* --limit: first N test images, 0 = all    */
    bool            lenient;      /* --lenient                                */
    bool            quiet;        /* --quiet                                  */
    bool            profile;      /* --profile: time per op type              */
    int             epochs;       /* --epochs, -1 = the recipe's Epochs       */
    uint64_t        seed;         /* --seed [1]                               */
    const char     *checkpoint;   /* --checkpoint FILE                        */
    const char     *resume;       /* --resume FILE                            */
    int64_t         checkpoint_every; /* --checkpoint-every N batches, 0 = epochs */
    bool            keep_last;    /* --keep last (default: best validation)   */
    int valid_metric;             /* --valid-metric: enum qc_metric            */
    float distill_temperature;    /* --distill T[,W]: T (0: no distillation)  */
    float distill_weight;         /* its W [0.5]                              */
    bool per_class;               /* eval --per-class                         */
    bool            no_shuffle;   /* --no-shuffle                             */
    const char     *log;          /* --log FILE: one line per training batch  */
    bool            no_eval;      /* --no-eval: skip the test-set evaluations */
    const char     *predictions;  /* eval --predictions FILE                  */
    const char     *report;       /* --report FILE.json                       */
    const char     *dump_weights; /* --dump-weights DIR                       */
    bool            fold_bn;      /* --fold-bn                                */
    bool            int_output;   /* --int-output                             */
    bool            no_int4;      /* --no-int4                                */
    bool dynamic_batch;           /* --dynamic-batch                          */
    bool no_keep_dtype;           /* --no-keep-dtype                          */
    float           input_scale;  /* --input-scale (default 1/255)            */
    const char     *plots;        /* --plots DIR                              */
    int64_t opset;                /* --opset N, 0 = the model's own           */
    int             format;       /* --format: enum qc_format                 */
    bool            progress;     /* stderr is a terminal and not quiet       */
};

/* Parses argv.  Usage errors are logged and return QC_ERR_INVAL. */
enum qc_status qc_cli_parse(int argc, char **argv, struct qc_cli *cli);
/* Prints the --help text built from the option table. */
void qc_cli_help(FILE *f);
/* A usage error on stderr, in the library's format ("qatconv: error: ..."). */
void qc_cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
