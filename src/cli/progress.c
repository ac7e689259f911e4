/*
 * progress.c - terminal progress line (see progress.h).
 */
#include <config.h>

#include "progress.h"

#include <stdio.h>
#include <time.h>

double qc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void qc_progress_start(struct qc_progress *p, bool tty, const char *what, const char *unit,
                       int64_t total)
{
    p->tty = tty;
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->t0 = qc_now();
    p->last = 0.0;
}

void qc_progress_update(struct qc_progress *p, int64_t done, const char *extra)
{
    double now, el, rate, eta;
    if (!p->tty)
        return;
    now = qc_now();
    if (now - p->last < 0.1 && done < p->total)
        return;
    p->last = now;
    el = now - p->t0;
    rate = el > 0 ? (double)done / el : 0.0;
    eta = rate > 0 ? (double)(p->total - done) / rate : 0.0;
    fprintf(stderr, "\r\033[K%s: %lld/%lld %s, %.0f %s/s, ETA %.0fs%s%s", p->what,
            (long long)done, (long long)p->total, p->unit, rate, p->unit, eta,
            extra ? ", " : "", extra ? extra : "");
    fflush(stderr);
}

double qc_progress_end(struct qc_progress *p)
{
    if (p->tty) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    return qc_now() - p->t0;
}
