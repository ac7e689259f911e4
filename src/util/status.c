/*
 * status.c - status messages, exit-code mapping, checked allocation, the
 * monotonic clock, the version string and the assertion hook.  The allocation wrappers log "out of memory" once so that
 * callers only need to return QC_ERR_NOMEM.
 */
#include <config.h>

#include "qc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

double qc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *qc_version_string(void)
{
    return PACKAGE_STRING;
}

const char *qc_strerror(enum qc_status st)
{
    switch (st) {
    case QC_OK:              return "success";
    case QC_ERR_NOMEM:       return "out of memory";
    case QC_ERR_INVAL:       return "invalid argument";
    case QC_ERR_IO:          return "input/output error";
    case QC_ERR_ONNX:        return "malformed ONNX model";
    case QC_ERR_UNSUPPORTED: return "unsupported feature";
    case QC_ERR_SHAPE:       return "shape mismatch";
    case QC_ERR_RECIPE:      return "bad recipe";
    case QC_ERR_DATA:        return "bad dataset";
    case QC_ERR_BACKEND:     return "backend failure";
    case QC_ERR_NUMERIC:     return "numeric failure (NaN or Inf)";
    case QC_ERR_INTERRUPTED: return "interrupted";
    case QC_ERR_INTERNAL:    return "internal error";
    }
    return "unknown status";
}

enum qc_exit qc_status_exit_code(enum qc_status st)
{
    switch (st) {
    case QC_OK:
        return QC_EXIT_OK;
    case QC_ERR_INVAL:
        return QC_EXIT_USAGE;
    case QC_ERR_ONNX:
    case QC_ERR_UNSUPPORTED:
    case QC_ERR_SHAPE:
    case QC_ERR_RECIPE:
    case QC_ERR_DATA:
        return QC_EXIT_INPUT;
    case QC_ERR_IO: /* reading a missing input is reported as QC_ERR_DATA/ONNX */
    case QC_ERR_NOMEM:
    case QC_ERR_BACKEND:
    case QC_ERR_NUMERIC:
    case QC_ERR_INTERRUPTED:
    case QC_ERR_INTERNAL:
        return QC_EXIT_RUNTIME;
    }
    return QC_EXIT_RUNTIME;
}

void qc_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "qatconv: internal error: assertion '%s' failed at %s:%d\n", expr, file,
            line);
    abort();
}

void *qc_malloc(size_t nbytes)
{
    void *p = malloc(nbytes ? nbytes : 1);
    if (!p)
        qc_log_error("out of memory (%zu bytes)", nbytes);
    return p;
}

void *qc_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        qc_log_error("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *qc_realloc(void *p, size_t nbytes)
{
    void *q = realloc(p, nbytes ? nbytes : 1);
    if (!q)
        qc_log_error("out of memory (%zu bytes)", nbytes);
    return q;
}

char *qc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = qc_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void qc_free(void *p)
{
    free(p);
}
