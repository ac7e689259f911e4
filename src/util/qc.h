/*
 * qc.h - base definitions shared by every qatconv module.
 *
 * Owns the status codes returned by every fallible function below main()
 * (enum qc_status), their messages (qc_strerror in status.c), and a few
 * helper macros.  Convention: a function that can fail returns enum
 * qc_status and writes results through out-parameters; it logs the error
 * once, where it is detected, with context (file, node, recipe line), and
 * callers pass the status up silently.  Only src/main.c turns a status into
 * an exit code (qc_status_exit_code).
 */
#ifndef QATCONV_SRC_QC_H
#define QATCONV_SRC_QC_H

#include <stddef.h>
#include <stdint.h>

/* Update qc_strerror() and qc_status_exit_code() in status.c when adding. */
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

/* Exit codes of the qatconv program. */
enum qc_exit {
    QC_EXIT_OK      = 0,
    QC_EXIT_USAGE   = 1, /* bad command line                                 */
    QC_EXIT_INPUT   = 2, /* bad model, recipe or data                        */
    QC_EXIT_RUNTIME = 3, /* backend, numeric, I/O while writing, interrupted  */
};

const char *qc_strerror(enum qc_status st);
enum qc_exit qc_status_exit_code(enum qc_status st);

#define QC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define QC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define QC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Programmer invariants only, never model or recipe input.  Always on. */
#define QC_ASSERT(cond)                                                      \
    do {                                                                     \
        if (!(cond))                                                         \
            qc_assert_fail(#cond, __FILE__, __LINE__);                       \
    } while (0)
void qc_assert_fail(const char *expr, const char *file, int line);

/* Checked allocation: NULL on failure (after logging "out of memory").
 * qc_calloc zeroes; both return NULL for n == 0 only if malloc does.  */
void *qc_malloc(size_t nbytes);
void *qc_calloc(size_t n, size_t size);
void *qc_realloc(void *p, size_t nbytes);
char *qc_strdup(const char *s);
void qc_free(void *p);

#endif
