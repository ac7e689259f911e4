/*
 * cli.c - option table, argument parsing and --help (see cli.h).
 */
#include <config.h>

#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


struct cli_option {
    const char *long_name;
    int         short_name;       /* 0 = none                        */
    const char *arg;              /* NULL = flag                     */
    const char *help;
};

enum {
    OPT_DEVICE = 256,
    OPT_THREADS,
    OPT_BATCH,
    OPT_LIMIT,
    OPT_LENIENT,
    OPT_QUIET,
    OPT_PROFILE,
    OPT_EPOCHS,
    OPT_SEED,
    OPT_CHECKPOINT,
    OPT_RESUME,
    OPT_CHECKPOINT_EVERY,
    OPT_KEEP,
    OPT_NO_SHUFFLE,
    OPT_LOG,
    OPT_NO_EVAL,
    OPT_PREDICTIONS,
    OPT_TEMPLATE,
    OPT_REPORT,
    OPT_FORMAT,
    OPT_DUMP_WEIGHTS,
    OPT_FOLD_BN,
    OPT_KEYS,
    OPT_INT_OUTPUT,
    OPT_NO_INT4,
    OPT_INPUT_SCALE,
    OPT_PLOTS,
    OPT_TF32,
    OPT_MAX_MEMORY,
    OPT_OPSET,
    OPT_DYNAMIC_BATCH,
    OPT_KEEP_DTYPE,
    OPT_NO_KEEP_DTYPE,
    OPT_VALID_METRIC,
    OPT_DISTILL,
    OPT_PER_CLASS,
};

/* The single source of --help (and of the man page check).  Aligned by hand. */
/* clang-format off */
static const struct cli_option cli_options[] = {
    { "recipe",  'r',         "FILE", "recipe (N2D2-style INI): quantizers, solvers, data" },
    { "output",  'o',         "FILE", "output ONNX model (written atomically)" },
    { "epochs",  OPT_EPOCHS,  "N",    "training epochs (default: the recipe's Epochs; 0: "
                                      "evaluate and write only)" },
    { "seed",    OPT_SEED,    "N",    "seed of shuffling, augmentation and Dropout [1]" },
    { "checkpoint", OPT_CHECKPOINT, "FILE", "write the training state after every epoch" },
    { "resume",  OPT_RESUME,  "FILE", "continue training from a checkpoint" },
    { "checkpoint-every", OPT_CHECKPOINT_EVERY, "N", "also write the checkpoint after every "
                                      "N-th training batch (resumable at that batch)" },
    { "keep",    OPT_KEEP,    "WHICH", "best (validation; default) or last epoch's weights" },
    { "valid-metric", OPT_VALID_METRIC, "M", "what picks the best epoch: Top1 (default), Top5 "
                                      "or an N2D2 -valid-metric averaged over the classes "
                                      "(F1Score, Sensitivity, Precision, ...)" },
    { "distill", OPT_DISTILL, "T[,W]", "train against the float model's logits on the same batch "
                                      "(knowledge distillation) at temperature T, the KL term "
                                      "weighted W in [0,1] [0.5], cross-entropy 1-W; CPU only" },
    { "no-shuffle", OPT_NO_SHUFFLE, NULL, "train on the learn set in file order" },
    { "log",     OPT_LOG,     "FILE", "write epoch, batch, loss, accuracy and learning rate of "
                                      "every training batch (CSV)" },
    { "no-eval", OPT_NO_EVAL, NULL,   "train without the test-set evaluations before and after" },
    { "format",  OPT_FORMAT,  "FMT",  "fake (QDQ; default when the recipe quantizes), int "
                                      "(integer-only, BatchNorm folded) or float" },
    { "int-output", OPT_INT_OUTPUT, NULL, "int: int32 logits (one scale, in the model's "
                                      "metadata) instead of float" },
    { "no-int4", OPT_NO_INT4, NULL,   "int: store weights of 4 bits or fewer as int8, not INT4 "
                                      "(opset 21)" },
    { "input-scale", OPT_INPUT_SCALE, "S", "int: scale of the input quantizer, uint8 levels "
                                      "times S [1/255: pixels in [0,1]]" },
    { "plots",   OPT_PLOTS,   "DIR",  "draw the quantized graph (Graphviz dot) and per-layer "
                                      "weight histograms before/after quantization (PNG)" },
    { "report",  OPT_REPORT,  "FILE", "write a JSON report: per layer method, bits, alpha or "
                                      "step, parameters, bytes; accuracies" },
    { "opset",   OPT_OPSET,   "N",    "write the model at ONNX opset N (7..23, not below its "
                                      "own; ops whose form changed are rewritten)" },
    { "fold-bn", OPT_FOLD_BN, NULL,   "fold BatchNormalization into the Conv/Gemm before it "
                                      "in the written model" },
    { "dynamic-batch", OPT_DYNAMIC_BATCH, NULL, "write a model whose input has a fixed batch "
                                      "of 1 with a symbolic batch N (default: as declared)" },
    { "keep-dtype", OPT_KEEP_DTYPE, NULL, "write a float16/bfloat16 model's inputs and outputs "
                                      "in their declared type (default; float models entirely)" },
    { "no-keep-dtype", OPT_NO_KEEP_DTYPE, NULL, "write float16/bfloat16 models in float32" },
    { "dump-weights", OPT_DUMP_WEIGHTS, "DIR", "write each quantized layer's integer weights "
                                      "(text, one level per line) into DIR" },
    { "device",  OPT_DEVICE,  "DEV",  "cpu, cuda or cuda:N (default: the recipe's "
                                      "DefaultModel, else cpu)" },
    { "tf32",    OPT_TF32,    NULL,   "cuda: let cuBLAS use TF32 tensor cores (10-bit mantissa "
                                      "products; default: full float32)" },
    { "threads", OPT_THREADS, "N",    "CPU threads for BLAS and element-wise work "
                                      "(default: all online CPUs)" },
    { "batch",   OPT_BATCH,   "N",    "batch size (default: the recipe's BatchSize, else 32)" },
    { "max-memory", OPT_MAX_MEMORY, "SIZE", "refuse a plan that needs more than SIZE bytes "
                                      "(suffix K, M, G or T: 512M, 8G; default: the memory "
                                      "available, cgroup limit included)" },
    { "limit",   OPT_LIMIT,   "N",    "use only the first N images (eval: of the test set; "
                                      "training: of the learn set)" },
    { "lenient", OPT_LENIENT, NULL,   "unknown recipe keys are warnings, not errors" },
    { "profile", OPT_PROFILE, NULL,   "eval: print forward time per op type" },
    { "per-class", OPT_PER_CLASS, NULL, "eval: also print each class's precision, recall "
                                      "and F1" },
    { "predictions", OPT_PREDICTIONS, "FILE", "eval: write each test image's predicted class" },
    { "quiet",   OPT_QUIET,   NULL,   "no progress or per-epoch lines (results still print)" },
    { "recipe-template", OPT_TEMPLATE, NULL, "print a starter recipe naming every quantizable "
                                      "node of IN.onnx" },
    { "recipe-keys", OPT_KEYS, NULL,  "list every recipe key qatconv accepts and exit" },
    { "help",    'h',         NULL,   "show this help and exit" },
    { "version", 'V',         NULL,   "show the version and exit" },
};
/* clang-format on */

void qc_cli_error(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "qatconv: error: %s\n", buf);
}

void qc_cli_help(FILE *f)
{
    fprintf(f,
            "Usage: qatconv [OPTIONS] IN.onnx [-r RECIPE] -o OUT.onnx\n"
            "       qatconv info IN.onnx\n"
            "       qatconv eval IN.onnx -r RECIPE [OPTIONS]\n"
            "       qatconv --recipe-template IN.onnx > recipe.ini\n"
            "\n"
            "Quantization-aware training of ONNX models (SAT, LSQ) and export to\n"
            "fake-quant or integer-only ONNX.\n"
            "\n"
            "Commands:\n"
            "  (none)  load IN.onnx, check it, write it to OUT.onnx\n"
            "  info    list every node: name, output, op, shapes, parameters\n"
            "  eval    top-1 accuracy and images/s on the recipe's test set\n"
            "\n"
            "Options:\n");
    for (size_t i = 0; i < CLI_ARRAY_SIZE(cli_options); i++) {
        const struct cli_option *o = &cli_options[i];
        char left[64];
        if (o->short_name > 0 && o->short_name < 128)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->long_name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", o->long_name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(f, "  %-24s %s\n", left, o->help);
    }
    fprintf(f, "\nExit status: 0 ok, 1 usage error, 2 bad model/recipe/data, "
               "3 runtime or backend failure.\n");
}

static enum qc_status parse_int(const char *opt, const char *s, int64_t min, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min) {
        qc_cli_error("--%s %s: expected an integer >= %lld", opt, s, (long long)min);
        return QC_ERR_INVAL;
    }
    *out = v;
    return QC_OK;
}

/* A size: a number (fraction allowed) with an optional K, M, G or T suffix,
 * powers of 1024; at least 1 byte, at most 2^60. */
static enum qc_status parse_size(const char *opt, const char *s, uint64_t *out)
{
    static const char suffixes[] = "KMGT";
    char *end;
    double v, unit = 1.0;
    const char *sfx;
    errno = 0;
    v = strtod(s, &end);
    sfx = end != s && end[0] && end[1] == '\0' ? strchr(suffixes, toupper((unsigned char)*end))
                                                : NULL;
    if (sfx) {
        for (const char *k = suffixes; k <= sfx; k++)
            unit *= 1024.0;
        end++;
    }
    v *= unit;
    if (errno || end == s || *end || !(v >= 1.0) || v > 1152921504606846976.0 ||
        !(s[0] >= '0' && s[0] <= '9')) {
        qc_cli_error("--%s %s: expected a size such as 512M or 8G (bytes, or K, M, G, T)", opt,
                     s);
        return QC_ERR_INVAL;
    }
    *out = (uint64_t)v;
    return QC_OK;
}

enum qc_status qc_cli_parse(int argc, char **argv, struct qc_cli *cli)
{
    struct option longopts[CLI_ARRAY_SIZE(cli_options) + 1];
    char shortopts[64];
    size_t sp = 0;
    int first = 1, c;
    int64_t v;
    enum qc_status st;

    memset(cli, 0, sizeof(*cli));
    cli->device = NULL; /* not given: the recipe's DefaultModel, else cpu */
    cli->epochs = -1;
    cli->seed = 1;
    shortopts[sp++] = '+';   /* stop at the first non-option: the command */
    for (size_t i = 0; i < CLI_ARRAY_SIZE(cli_options); i++) {
        const struct cli_option *o = &cli_options[i];
        longopts[i].name = o->long_name;
        longopts[i].has_arg = o->arg ? required_argument : no_argument;
        longopts[i].flag = NULL;
        longopts[i].val = o->short_name;
        if (o->short_name > 0 && o->short_name < 128) {
            shortopts[sp++] = (char)o->short_name;
            if (o->arg)
                shortopts[sp++] = ':';
        }
    }
    memset(&longopts[CLI_ARRAY_SIZE(cli_options)], 0, sizeof(longopts[0]));
    shortopts[sp] = '\0';

    /* a leading command word */
    if (argc > 1 && strcmp(argv[1], "info") == 0) {
        cli->command = QC_CMD_INFO;
        first = 2;
    } else if (argc > 1 && strcmp(argv[1], "eval") == 0) {
        cli->command = QC_CMD_EVAL;
        first = 2;
    }

    /* options may come before or after the model path: permute manually */
    optind = first;
    opterr = 0;
    while (optind < argc) {
        int idx = optind;
        c = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (c == -1) {
            /* a positional argument */
            if (optind >= argc)
                break;
            if (cli->model) {
                qc_cli_error("unexpected argument '%s' (one model only; see --help)",
                             argv[optind]);
                return QC_ERR_INVAL;
            }
            cli->model = argv[optind];
            optind++;
            continue;
        }
        switch (c) {
        case 'r': cli->recipe = optarg; break;
        case 'o': cli->output = optarg; break;
        case 'h': cli->command = QC_CMD_HELP; return QC_OK;
        case 'V': cli->command = QC_CMD_VERSION; return QC_OK;
        case OPT_DEVICE: cli->device = optarg; break;
        case OPT_TF32: cli->tf32 = true; break;
        case OPT_LENIENT: cli->lenient = true; break;
        case OPT_QUIET: cli->quiet = true; break;
        case OPT_PROFILE: cli->profile = true; break;
        case OPT_CHECKPOINT: cli->checkpoint = optarg; break;
        case OPT_RESUME: cli->resume = optarg; break;
        case OPT_NO_SHUFFLE: cli->no_shuffle = true; break;
        case OPT_LOG: cli->log = optarg; break;
        case OPT_NO_EVAL: cli->no_eval = true; break;
        case OPT_PREDICTIONS: cli->predictions = optarg; break;
        case OPT_TEMPLATE: cli->command = QC_CMD_TEMPLATE; break;
        case OPT_REPORT: cli->report = optarg; break;
        case OPT_DUMP_WEIGHTS: cli->dump_weights = optarg; break;
        case OPT_FOLD_BN: cli->fold_bn = true; break;
        case OPT_INT_OUTPUT: cli->int_output = true; break;
        case OPT_NO_INT4: cli->no_int4 = true; break;
        case OPT_DYNAMIC_BATCH:
            cli->dynamic_batch = true;
            break;
        case OPT_KEEP_DTYPE:
            cli->no_keep_dtype = false;
            break;
        case OPT_NO_KEEP_DTYPE:
            cli->no_keep_dtype = true;
            break;
        case OPT_PLOTS: cli->plots = optarg; break;
        case OPT_PER_CLASS:
            cli->per_class = true;
            break;
        case OPT_VALID_METRIC: {
            enum qc_metric m;
            if (qc_metric_from_name(optarg, &m) != QC_OK) {
                qc_cli_error("--valid-metric %s: expected Top1, Top5, Sensitivity, Specificity, "
                             "Precision, NegativePredictiveValue, MissRate, FallOut, "
                             "FalseDiscoveryRate, FalseOmissionRate, IU, Accuracy, F1Score, "
                             "Informedness or Markedness",
                             optarg);
                return QC_ERR_INVAL;
            }
            cli->valid_metric = (int)m;
            break;
        }
        case OPT_DISTILL: {
            char *end;
            double tv = strtod(optarg, &end), wv = 0.5;
            if (end != optarg && *end == ',') {
                const char *w = end + 1;
                wv = strtod(w, &end);
                if (end == w)
                    end = (char *)w - 1; /* no number after the comma: an error below */
            }
            if (end == optarg || *end != '\0' || !(tv > 0.0) || tv > 1e3 || !(wv >= 0.0) ||
                wv > 1.0) {
                qc_cli_error("--distill %s: expected T[,W], a temperature T > 0 (up to 1000) "
                             "and a weight W in [0, 1]",
                             optarg);
                return QC_ERR_INVAL;
            }
            cli->distill_temperature = (float)tv;
            cli->distill_weight = (float)wv;
            break;
        }
        case OPT_INPUT_SCALE: {
            char *end;
            double sv = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(sv > 0.0) || sv > 1e6) {
                qc_cli_error("--input-scale %s: expected a positive number", optarg);
                return QC_ERR_INVAL;
            }
            cli->input_scale = (float)sv;
            break;
        }
        case OPT_OPSET:
            st = parse_int("opset", optarg, 7, &v);
            if (st != QC_OK)
                return st;
            cli->opset = v;
            break;
        case OPT_KEYS: cli->command = QC_CMD_KEYS; return QC_OK;
        case OPT_FORMAT:
            if (strcmp(optarg, "fake") == 0) {
                cli->format = 2;
            } else if (strcmp(optarg, "float") == 0) {
                cli->format = 1;
            } else if (strcmp(optarg, "int") == 0) {
                cli->format = 3;
            } else {
                qc_cli_error("--format %s: expected fake, int or float", optarg);
                return QC_ERR_INVAL;
            }
            break;
        case OPT_KEEP:
            if (strcmp(optarg, "best") != 0 && strcmp(optarg, "last") != 0) {
                qc_cli_error("--keep %s: expected best or last", optarg);
                return QC_ERR_INVAL;
            }
            cli->keep_last = strcmp(optarg, "last") == 0;
            break;
        case OPT_EPOCHS:
            st = parse_int("epochs", optarg, 0, &v);
            if (st != QC_OK)
                return st;
            cli->epochs = (int)CLI_MIN(v, 1000000);
            break;
        case OPT_SEED:
            st = parse_int("seed", optarg, 0, &v);
            if (st != QC_OK)
                return st;
            cli->seed = (uint64_t)v;
            break;
        case OPT_THREADS:
            st = parse_int("threads", optarg, 1, &v);
            if (st != QC_OK)
                return st;
            cli->threads = (int)CLI_MIN(v, 1024);
            break;
        case OPT_BATCH:
            st = parse_int("batch", optarg, 1, &v);
            if (st != QC_OK)
                return st;
            cli->batch = v;
            break;
        case OPT_CHECKPOINT_EVERY:
            st = parse_int("checkpoint-every", optarg, 1, &v);
            if (st != QC_OK)
                return st;
            cli->checkpoint_every = v;
            break;
        case OPT_MAX_MEMORY:
            st = parse_size("max-memory", optarg, &cli->max_memory);
            if (st != QC_OK)
                return st;
            break;
        case OPT_LIMIT:
            st = parse_int("limit", optarg, 1, &v);
            if (st != QC_OK)
                return st;
            cli->limit = v;
            break;
        case ':':
            qc_cli_error("option '%s' needs an argument (see --help)", argv[idx]);
            return QC_ERR_INVAL;
        default:
            qc_cli_error("unknown option '%s' (see --help)", argv[idx]);
            return QC_ERR_INVAL;
        }
    }

    if (!cli->model) {
        qc_cli_error("no input model given (see --help)");
        return QC_ERR_INVAL;
    }
    if (cli->command == QC_CMD_EVAL && !cli->recipe) {
        qc_cli_error("eval needs a recipe naming the test set: -r RECIPE");
        return QC_ERR_INVAL;
    }
    if (cli->command == QC_CMD_CONVERT && !cli->output) {
        qc_cli_error("no output given: -o OUT.onnx (see --help)");
        return QC_ERR_INVAL;
    }
    if (cli->checkpoint_every > 0 && !cli->checkpoint) {
        qc_cli_error("--checkpoint-every needs --checkpoint FILE");
        return QC_ERR_INVAL;
    }
    cli->progress = !cli->quiet && isatty(STDERR_FILENO);
    return QC_OK;
}
