/*
 * progress.h - what the terminal shows of a long run, drawn from the
 * library's progress events (struct qc_event, qatconv.h).  On a terminal one
 * status line is redrawn in place (at most ten times a second) with
 * done/total, rate and ETA; elsewhere nothing is drawn, so logs stay
 * line-oriented.  Epoch lines go to stdout unless --quiet; notes always.
 */
#ifndef QATCONV_SRC_PROGRESS_H
#define QATCONV_SRC_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "qatconv.h"

struct qc_progress {
    bool        tty;         /* draw on stderr                   */
    char        what[64];    /* "eval", "epoch 3/10" ...         */
    const char *unit;        /* "images"                         */
    int64_t     total;
    double      t0, last;
};

void qc_progress_start(struct qc_progress *p, bool tty, const char *what, const char *unit,
                       int64_t total);
/* extra: appended to the line (e.g. "loss 0.41 acc 87.2%"), may be NULL. */
void qc_progress_update(struct qc_progress *p, int64_t done, const char *extra);
/* Erases the status line on a terminal; returns elapsed seconds. */
double qc_progress_end(struct qc_progress *p);

/* The CLI's progress callback: user is a struct qc_cli_progress. */
struct qc_cli_progress {
    bool               tty;      /* status line on stderr                  */
    bool               quiet;    /* no epoch lines                         */
    struct qc_progress bar;
};
void qc_cli_progress_event(const struct qc_event *ev, void *user);

#endif
