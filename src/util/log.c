/*
 * log.c - stderr diagnostics (see log.h).  Stateless: each call writes one
 * complete line with a single fprintf-family call sequence on stderr.
 */
#include <config.h>

#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void log_line(const char *tag, const char *fmt, va_list ap)
{
    char buf[2048];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    fprintf(stderr, "qatconv: %s: %s\n", tag, buf);
}

void qc_log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("error", fmt, ap);
    va_end(ap);
}

void qc_log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("warning", fmt, ap);
    va_end(ap);
}
