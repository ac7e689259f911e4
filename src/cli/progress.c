/*
 * progress.c - terminal progress line and the lines printed from the
 * library's events (see progress.h).
 */
#include <config.h>

#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Monotonic clock in seconds. */
static double now_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void qc_progress_start(struct qc_progress *p, bool tty, const char *what, const char *unit,
                       int64_t total)
{
    p->tty = tty;
    snprintf(p->what, sizeof(p->what), "%s", what ? what : "");
    p->unit = unit;
    p->total = total;
    p->t0 = now_secs();
    p->last = 0.0;
}

void qc_progress_update(struct qc_progress *p, int64_t done, const char *extra)
{
    double now, el, rate, eta;
    if (!p->tty)
        return;
    now = now_secs();
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
    return now_secs() - p->t0;
}

void qc_cli_progress_event(const struct qc_event *ev, void *user)
{
    struct qc_cli_progress *cp = user;
    char extra[96];
    switch (ev->kind) {
    case QC_EVENT_BEGIN:
        qc_progress_start(&cp->bar, cp->tty, ev->what, "images", ev->total);
        break;
    case QC_EVENT_PROGRESS:
        if (ev->phase == QC_PHASE_TRAIN)
            snprintf(extra, sizeof(extra), "loss %.4f, acc %.2f%%", ev->loss, ev->accuracy);
        else
            snprintf(extra, sizeof(extra), "top-1 %.2f%%", ev->accuracy);
        qc_progress_update(&cp->bar, ev->done, extra);
        break;
    case QC_EVENT_END:
        qc_progress_end(&cp->bar);
        break;
    case QC_EVENT_EPOCH:
        if (cp->quiet)
            break;
        printf("epoch %d/%d: loss %.4f, train top-1 %.2f%%", ev->epoch, ev->epochs, ev->loss,
               ev->accuracy);
        if (ev->valid_accuracy >= 0)
            printf(", validation top-1 %.2f%%", ev->valid_accuracy);
        if (ev->valid_metric && strcmp(ev->valid_metric, "Top1") != 0)
            printf(" (%s %.2f%%)", ev->valid_metric, ev->valid_score);
        printf(", %.1f s, %.0f images/s\n", ev->secs, ev->images_per_s);
        fflush(stdout);
        break;
    case QC_EVENT_NOTE:
        printf("%s\n", ev->text);
        break;
    case QC_EVENT_INDEX:
        /* a terminal line while a large folder is listed; nothing otherwise */
        if (!cp->tty)
            break;
        if (ev->total > 0 || ev->aborted) {
            fprintf(stderr, "\r\033[K");
        } else {
            fprintf(stderr, "\r\033[Kindexing %s: %lld images", ev->what ? ev->what : "",
                    (long long)ev->done);
        }
        fflush(stderr);
        break;
    }
}
