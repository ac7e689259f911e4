/*
 * interrupt.c - SIGINT/SIGTERM flag for a clean stop (see interrupt.h).
 */
#include <config.h>

#include "interrupt.h"

#include <signal.h>
#include <string.h>

/* Written only by the handler; sig_atomic_t as C requires. */
static volatile sig_atomic_t qc_signal_seen;

static void on_signal(int sig)
{
    qc_signal_seen = sig;
}

void qc_interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;   /* a second Ctrl-C ends the process */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool qc_interrupted(int *sig)
{
    if (sig)
        *sig = qc_signal_seen;
    return qc_signal_seen != 0;
}
