/*
 * qatconv.h - the public interface of libqatconv: quantization-aware training
 * of ONNX CNNs (SAT/LSQ) and export as fake-quant (QDQ) or integer-only ONNX.
 *
 * Handles (opaque):  struct qc_model   an ONNX model (load, check, write, info)
 *                    struct qc_recipe  an N2D2-style INI recipe (load, check)
 *                    struct qc_job     where the work runs: device, threads,
 *                                      memory budget, TF32
 * Work:              qc_convert()  calibrate -> train -> export -> fold -> plots
 *                                  -> report, or without a recipe check (and
 *                                  rewrite a QDQ model as integer-only)
 *                    qc_evaluate() top-1 on the recipe's test split
 * Every fallible function returns enum qc_status (QC_OK = 0); the error has
 * been reported on stderr, one line "qatconv: error: ...", where it was found.
 * The library prints nothing on stdout: progress, per-epoch figures and notes
 * arrive through the progress callback of the options, results in the result
 * structs.  Text results (info, template, keys, profile) are malloc'ed strings
 * the caller frees with free().
 *
 * Build against the installed library: cc app.c $(pkg-config --cflags --libs qatconv)
 */
#ifndef QATCONV_H
#define QATCONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status ---------------------------------------------------------------- */

/* Update qc_strerror() and qc_status_exit_code() in src/util/status.c when adding. */
enum qc_status {
    QC_OK              = 0,
    QC_ERR_NOMEM       = -1,  /* allocation failed                            */
    QC_ERR_INVAL       = -2,  /* bad argument or usage                        */
    QC_ERR_IO          = -3,  /* file missing, unreadable, unwritable         */
    QC_ERR_ONNX        = -4,  /* malformed model, attribute or tensor         */
    QC_ERR_UNSUPPORTED = -5,  /* op, opset, dtype or attribute value          */
    QC_ERR_SHAPE       = -6,  /* shapes that do not fit together              */
    QC_ERR_RECIPE      = -7,  /* bad recipe (syntax, key, value)              */
    QC_ERR_DATA        = -8,  /* bad or missing dataset                       */
    QC_ERR_BACKEND     = -9,  /* BLAS, CUDA, cuBLAS                           */
    QC_ERR_NUMERIC     = -10, /* NaN or Inf                                   */
    QC_ERR_INTERRUPTED = -11, /* stopped by a signal                          */
    QC_ERR_INTERNAL    = -12, /* broken invariant (a bug)                     */
};

/* Exit codes of the qatconv program (qc_status_exit_code maps a status). */
enum qc_exit {
    QC_EXIT_OK      = 0,
    QC_EXIT_USAGE   = 1, /* bad command line                                 */
    QC_EXIT_INPUT   = 2, /* bad model, recipe or data                        */
    QC_EXIT_RUNTIME = 3, /* backend, numeric, I/O while writing, interrupted  */
};

const char *qc_strerror(enum qc_status st);
enum qc_exit qc_status_exit_code(enum qc_status st);
/* "qatconv X.Y" */
const char *qc_version_string(void);

/* ---- progress -------------------------------------------------------------- */

enum qc_phase {
    QC_PHASE_EVALUATE = 0,   /* a test or validation pass ("test (before)")   */
    QC_PHASE_TRAIN,          /* the batches of one epoch ("epoch 2/4")         */
    QC_PHASE_SETUP,          /* preparing the run (notes)                       */
};

enum qc_event_kind {
    QC_EVENT_BEGIN = 0, /* a phase starts: what, total                     */
    QC_EVENT_PROGRESS,  /* done of total; loss/accuracy so far             */
    QC_EVENT_END,       /* the phase ended (also before an error message
                                of a phase that stops: aborted)                 */
    QC_EVENT_EPOCH,     /* an epoch's figures, validation included         */
    QC_EVENT_NOTE,      /* an informational line (text), not an error      */
    QC_EVENT_INDEX,     /* an image folder is being listed: what (the
                                folder), done (images found so far); its last
                                event has total = done                          */
};

struct qc_event {
    enum qc_event_kind kind;
    enum qc_phase      phase;
    const char        *what;          /* "epoch 3/10", "test (after)", "eval"     */
    const char        *text;          /* QC_EVENT_NOTE: the line, no newline      */
    int                epoch, epochs; /* 1-based epoch of the run, epochs in all  */
    int64_t            batch, n_batches;
    int64_t            done, total;   /* images of the phase                      */
    double             loss;          /* mean training loss so far, -1 if none    */
    double             accuracy;      /* top-1 % so far (train or evaluation)     */
    double             valid_accuracy;/* QC_EVENT_EPOCH: validation top-1 %, -1   */
    /* QC_EVENT_EPOCH: the --valid-metric's name and figure (%) on the
     * validation split (NULL and -1 without one) */
    const char *valid_metric;
    double valid_score;
    double             secs;          /* since the phase began                    */
    double             images_per_s;
    double             eta;           /* seconds left (estimate)                  */
    bool               aborted;       /* QC_EVENT_END of a phase that failed      */
};

typedef void (*qc_progress_fn)(const struct qc_event *ev, void *user);

/* ---- job: where the work runs ------------------------------------------------- */

struct qc_job_options {
    const char *device;      /* "cpu", "cuda", "cuda:N"                           */
    int         threads;     /* 0: all online CPUs                                */
    uint64_t    max_memory;  /* bytes, 0: what the machine has available          */
    bool        tf32;        /* TF32 tensor cores for matrix products (CUDA)      */
};
#define QC_JOB_OPTIONS_INIT { "cpu", 0, 0, false }

struct qc_job;
/* The device is opened at the first qc_convert/qc_evaluate that needs it. */
enum qc_status qc_job_new(const struct qc_job_options *o, struct qc_job **out);
void qc_job_free(struct qc_job *job);
/* The device of a job whose backend has not opened yet (the recipe's
 * DefaultModel read after the job joined its ranks); QC_ERR_INVAL once the
 * backend is open. */
enum qc_status qc_job_set_device(struct qc_job *job, const char *device);
/* After work ran: threads used, whether the backend computes in host memory,
 * its name and device number, and the peak of its device memory in bytes. */
int qc_job_threads(const struct qc_job *job);
bool qc_job_host_memory(const struct qc_job *job);
const char *qc_job_backend_name(const struct qc_job *job);
int qc_job_device(const struct qc_job *job);
size_t qc_job_memory_peak(const struct qc_job *job);
/* Data-parallel jobs (configure --with-mpi, started by mpirun): this
 * process's rank and the number of ranks (0 and 1 otherwise).  A job of
 * several ranks trains each on its slice of every global batch; rank 0 alone
 * writes files.  qc_job_abort ends every rank with exit status `code` (the
 * error path of a job of several ranks, which cannot wait for the others);
 * it returns, doing nothing, with one rank. */
int qc_job_rank(const struct qc_job *job);
int qc_job_ranks(const struct qc_job *job);
void qc_job_abort(struct qc_job *job, int code);

/* ---- model ------------------------------------------------------------------ */

struct qc_model;
enum qc_status qc_model_load(const char *path, struct qc_model **out);
/* How a model is loaded.  keep_weight_levels: a weight-only quantized model
 * (DequantizeLinear of stored integer weights, no activation quantized) keeps
 * its weight DequantizeLinear nodes, as any QDQ model does, instead of having
 * them dequantized into float parameters: what the integer rewrite without a
 * recipe (qc_convert, QC_FORMAT_INT, no recipe) reads, and what a recipe
 * cannot train.  qc_model_load is qc_model_load_with(QC_LOAD_OPTIONS_INIT). */
struct qc_load_options {
    bool keep_weight_levels;
};
#define QC_LOAD_OPTIONS_INIT { false }
enum qc_status qc_model_load_with(const char *path, const struct qc_load_options *o,
                                  struct qc_model **out);
void qc_model_free(struct qc_model *m);
/* Written atomically (a temporary file renamed). */
enum qc_status qc_model_write(const struct qc_model *m, const char *path);
/* Op support, attributes and shape inference at batch 1 (CPU, the job's
 * threads and memory budget). */
enum qc_status qc_model_check(const struct qc_model *m, const struct qc_job *job);
const char *qc_model_path(const struct qc_model *m);
int qc_model_n_nodes(const struct qc_model *m);
int64_t qc_model_opset(const struct qc_model *m);
/* The description of `qatconv info`: inputs, outputs, every node with its
 * shapes at batch 1 and parameters. */
enum qc_status qc_model_info_text(const struct qc_model *m, const struct qc_job *job,
                                  char **text);

/* ---- recipe ------------------------------------------------------------------ */

struct qc_recipe;
/* lenient: unknown keys are warnings, not errors. */
enum qc_status qc_recipe_load(const char *path, bool lenient, struct qc_recipe **out);
void qc_recipe_free(struct qc_recipe *r);
/* Every node section names a node of the model, the [soft1] Input the node
 * of the logits; one warning per key that has no effect here (and why). */
enum qc_status qc_recipe_check(const struct qc_recipe *r, const struct qc_model *m,
                               bool lenient);
/* The device to run on: `requested` (e.g. --device) when not NULL, which
 * overrides the recipe's DefaultModel (a warning when they disagree); else
 * DefaultModel: Frame "cpu", Frame_CUDA "cuda" (QC_ERR_BACKEND, one error line,
 * in a build without CUDA); else "cpu".  r may be NULL.  Another DefaultModel
 * value is QC_ERR_RECIPE. */
enum qc_status qc_recipe_device(const struct qc_recipe *r, const char *requested,
                                const char **device);
/* A starter recipe for the model (SAT W4A4, one commented section per
 * quantizable node). */
enum qc_status qc_recipe_template(const struct qc_model *m, const struct qc_job *job,
                                  char **text);
/* Every recipe key the schema knows, one a line. */
enum qc_status qc_recipe_keys_text(char **text);

/* ---- metrics ------------------------------------------------------------------ */

/* What picks the kept (best) epoch on the validation split (N2D2's
 * -valid-metric): top-1 or top-5 accuracy, or one of N2D2's confusion-table
 * metrics averaged over the classes that have images (ConfusionTableMetric;
 * F1Score so averaged is the macro F1, Sensitivity the balanced accuracy). */
enum qc_metric {
    QC_METRIC_TOP1 = 0, /* default */
    QC_METRIC_TOP5,
    QC_METRIC_SENSITIVITY, /* recall, true positive rate */
    QC_METRIC_SPECIFICITY,
    QC_METRIC_PRECISION,
    QC_METRIC_NPV,       /* negative predictive value */
    QC_METRIC_MISS_RATE, /* lower is better (the kept epoch minimizes it) */
    QC_METRIC_FALL_OUT,  /* lower is better */
    QC_METRIC_FDR,       /* false discovery rate, lower is better */
    QC_METRIC_FOR,       /* false omission rate, lower is better */
    QC_METRIC_IU,        /* intersection over union */
    QC_METRIC_ACCURACY,  /* per class (TP + TN) / n, averaged */
    QC_METRIC_F1,        /* F1Score */
    QC_METRIC_INFORMEDNESS,
    QC_METRIC_MARKEDNESS,
};
#define QC_METRIC_COUNT 15
/* The metric of a name: Top1, Top5 or N2D2's spelling (Sensitivity, ...,
 * F1Score, Informedness, Markedness; also Recall, F1, Miss, Fall-out),
 * case-insensitive.  QC_ERR_INVAL (nothing logged) for another name. */
enum qc_status qc_metric_from_name(const char *name, enum qc_metric *m);
/* The canonical name ("Top1", "F1Score", ...). */
const char *qc_metric_name(enum qc_metric m);

/* ---- convert ------------------------------------------------------------------ */

enum qc_format {
    QC_FORMAT_AUTO = 0,   /* fake when the recipe quantizes something, else float */
    QC_FORMAT_FLOAT,      /* trained float weights, graph unchanged                */
    QC_FORMAT_FAKE,       /* QDQ: integer weights + DequantizeLinear, activation
                             QuantizeLinear/DequantizeLinear                       */
    QC_FORMAT_INT,        /* integer-only, BatchNorm folded                        */
};

struct qc_convert_options {
    int             epochs;          /* -1: the recipe's Epochs                      */
    int64_t         batch;           /* 0: the recipe's BatchSize                    */
    uint64_t        seed;
    bool            keep_last;       /* last epoch's weights (default: best validation) */
    bool            no_shuffle;      /* learn images in file order                   */
    int64_t         limit;           /* only the first N learn images (0 = all)      */
    const char     *checkpoint;      /* written after every epoch, or NULL           */
    int64_t         checkpoint_every;/* also after every N-th batch (0: epochs only) */
    const char     *resume;          /* start from this checkpoint, or NULL          */
    bool            no_eval;         /* no test evaluation before/after              */
    const char     *log;             /* CSV of every batch, or NULL                  */
    enum qc_format  format;
    const char     *report;          /* per-layer JSON report, or NULL               */
    const char     *dump_weights;    /* directory for the trained weights, or NULL   */
    bool            fold_bn;         /* BatchNorm folded into the export             */
    bool            int_output;      /* int32 logits (format int)                    */
    bool            no_int4;         /* int8 storage for 4-bit weights               */
    float           input_scale;     /* int export's input quantizer                 */
    const char     *plots;           /* directory for the plots, or NULL             */
    qc_progress_fn  progress;        /* may be NULL                                  */
    void           *progress_user;
    bool dynamic_batch; /* a model with a fixed batch of 1 is written
                                        with a symbolic batch "N" (default: as declared) */
    bool no_keep_dtype; /* float16/bfloat16 models written in float32
                                        (default: their declared element type)      */
    int64_t opset;      /* write at this opset at least (0: the model's) */
    enum qc_metric valid_metric; /* picks the kept epoch (default top-1)     */
    float distill_temperature;   /* > 0: knowledge distillation from the float
                                  model at this temperature (CPU; 0: none)     */
    float distill_weight;        /* its KL term's weight in [0, 1]               */
};
#define QC_CONVERT_OPTIONS_INIT                                                                    \
    {                                                                                              \
        -1, 0, 1, false, false, 0, NULL, 0, NULL, false, NULL, QC_FORMAT_AUTO, NULL, NULL, false,  \
            false, false, 1.0f / 255.0f, NULL, NULL, NULL, false, false, 0, QC_METRIC_TOP1, 0.0f,  \
            0.0f                                                                                   \
    }

struct qc_convert_result {
    bool    trained;                   /* a recipe was given                  */
    int     epochs;                    /* epochs asked for                    */
    double  test_float;                /* float model before training, -1 if
                                          the recipe quantizes nothing        */
    double  test_before, test_after;   /* top-1 % of the trained model (with its
                                          quantizers), -1 when not measured   */
    double  test_export;               /* the exported graph, -1 if none      */
    int     n_quant;                   /* quantizers trained                  */
    int     n_float_weights;           /* quantized weights exported as float */
    int     n_folded_bn;               /* BatchNormalization nodes folded      */
    int     n_int_layers;              /* int export: integer layers            */
    int     n_requant;                 /* int export: requantizations           */
    int     n_int4;                    /* int export: weights stored as INT4    */
    int64_t weight_bytes;              /* int export: integer weight bytes      */
    /* the best validation figure (%) of valid_metric (-1 if none: best_epoch
     * 0; Informedness and Markedness may be negative) */
    double valid_best;
    enum qc_metric valid_metric;
    int     best_epoch;
    int     epochs_run;
    double  last_loss;                 /* mean training loss of the last epoch */
    double  secs;                      /* training time                        */
    int64_t images;                    /* training images processed           */
    /* the last test evaluation (the exported graph's when it was evaluated,
     * else the trained model's): top-5 %, -1 with fewer than 5 classes or
     * none; macro F1 %, -1 if none */
    double test_top5;
    double test_macro_f1;
};

/*
 * With a recipe: fine-tunes the model on the recipe's data and leaves the
 * export (o->format) in m; without (r NULL): checks the model and, with
 * QC_FORMAT_INT, rewrites a fake-quant model as the integer-only one (the
 * other formats, plots and BatchNorm folding need a recipe).  Write the
 * result with qc_model_write.
 */
enum qc_status qc_convert(struct qc_job *job, struct qc_model *m, const struct qc_recipe *r,
                          const struct qc_convert_options *o, struct qc_convert_result *res);

/* ---- evaluate ------------------------------------------------------------------ */

struct qc_eval_options {
    int64_t         batch;           /* 0: the recipe's BatchSize                */
    int64_t         limit;           /* first N test images, 0: all              */
    bool            profile;         /* time per op type (result.profile)        */
    const char     *predictions;     /* file: each image's class, or NULL        */
    qc_progress_fn  progress;
    void           *progress_user;
};
#define QC_EVAL_OPTIONS_INIT { 0, 0, false, NULL, NULL, NULL }

struct qc_eval_summary {
    int64_t n, correct;              /* images, top-1 hits                       */
    double  top1;                    /* %                                        */
    /* top-5 hits and % (-1 with fewer than 5 classes); macro averages (%)
     * over the classes that have images */
    int64_t correct5;
    double top5;
    double macro_precision, macro_recall, macro_f1;
    /* classes x classes counts (row: label, column: predicted), or NULL;
     * free() */
    int64_t classes;
    int64_t *confusion;
    /* one line per class: images, predicted, precision, recall, F1 (%), or
     * NULL; free() */
    char *per_class;
    double  secs, images_per_s;
    int64_t batch;
    int     threads;
    char   *profile;                 /* the profile lines, or NULL; free()       */
};

/* Top-1 of the model's first output on the recipe's test split. */
enum qc_status qc_evaluate(struct qc_job *job, const struct qc_model *m,
                           const struct qc_recipe *r, const struct qc_eval_options *o,
                           struct qc_eval_summary *res);

#ifdef __cplusplus
}
#endif

#endif
