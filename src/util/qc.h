/*
 * qc.h - base definitions shared by every qatconv module.
 *
 * Owns the status codes returned by every fallible function below main()
 * (enum qc_status), their messages (qc_strerror in status.c), and a few
 * helper macros.  Convention: a function that can fail returns enum
 * qc_status and writes results through out-parameters; it logs the error
 * once, where it is detected, with context (file, node, recipe line), and
 * callers pass the status up silently.  Only the CLI's main() turns a status
 * into an exit code (qc_status_exit_code).
 */
#ifndef QATCONV_SRC_QC_H
#define QATCONV_SRC_QC_H

#include <stddef.h>
#include <stdint.h>

/* enum qc_status, enum qc_exit, qc_strerror, qc_status_exit_code and the
 * progress event (struct qc_event) are public: include/qatconv.h. */
#include "qatconv.h"

/* Where a library module sends its progress events (may be NULL or hold a
 * NULL function: nothing is reported). */
struct qc_reporter {
    qc_progress_fn fn;
    void          *user;
};

static inline void qc_emit(const struct qc_reporter *r, const struct qc_event *ev)
{
    if (r && r->fn)
        r->fn(ev, r->user);
}

/* Monotonic clock in seconds (status.c). */
double qc_now(void);

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
