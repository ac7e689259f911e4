/*
 * progress.h - progress lines for long runs.  On a terminal one status line is
 * redrawn in place (at most ten times a second) with done/total, rate and
 * ETA; elsewhere nothing is drawn, so logs stay line-oriented.  The caller
 * prints its own summary lines.
 */
#ifndef QATCONV_SRC_PROGRESS_H
#define QATCONV_SRC_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct qc_progress {
    bool        tty;         /* draw on stderr                   */
    const char *what;        /* "eval", "epoch 3/10" ...         */
    const char *unit;        /* "images"                         */
    int64_t     total;
    double      t0, last;
};

/* Monotonic clock in seconds. */
double qc_now(void);

void qc_progress_start(struct qc_progress *p, bool tty, const char *what, const char *unit,
                       int64_t total);
/* extra: appended to the line (e.g. "loss 0.41 acc 87.2%"), may be NULL. */
void qc_progress_update(struct qc_progress *p, int64_t done, const char *extra);
/* Erases the status line on a terminal; returns elapsed seconds. */
double qc_progress_end(struct qc_progress *p);

#endif
