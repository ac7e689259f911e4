/*
 * interrupt.h - Ctrl-C / SIGTERM during training: the first signal asks the
 * loop to stop after the current batch (qc_interrupted() turns true); a
 * second one kills the process as usual.  The flag is the program's only
 * global mutable state: a signal handler can reach nothing else.
 */
#ifndef QATCONV_SRC_TRAIN_INTERRUPT_H
#define QATCONV_SRC_TRAIN_INTERRUPT_H

#include <stdbool.h>

/* Installs the SIGINT/SIGTERM handlers (idempotent). */
void qc_interrupt_install(void);
/* True once a signal arrived; the signal number in *sig if non-NULL. */
bool qc_interrupted(int *sig);

#endif
