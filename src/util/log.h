/*
 * log.h - one-line diagnostics on stderr.
 *
 * Errors and warnings go to stderr, one line each, prefixed "qatconv: error: "
 * or "qatconv: warning: ".  There is no global verbosity: progress and info
 * output is the CLI's job (it owns the verbosity in its context), so the
 * library only reports problems.
 */
#ifndef QATCONV_SRC_LOG_H
#define QATCONV_SRC_LOG_H

#if defined(__GNUC__)
#define QC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QC_PRINTF(a, b)
#endif

void qc_log_error(const char *fmt, ...) QC_PRINTF(1, 2);
void qc_log_warn(const char *fmt, ...) QC_PRINTF(1, 2);

#endif
