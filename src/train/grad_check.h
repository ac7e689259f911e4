/*
 * grad_check.h - finds a parameter gradient that is not finite after a
 * backward pass, and names it.
 *
 * A gradient that overflows float32 (exploding gradients: each layer of the
 * backward multiplies it, e.g. BatchNormalization by gamma/sqrt(var+eps)
 * when the batch variance is tiny) turns inf, then NaN, and the solver
 * would write it into the weights; the loss of the next batch would be NaN
 * with no hint of where it came from.  The trainer scans the gradients
 * after each backward (one pass over qc_plan_n_trainable floats) and stops
 * with qc_grad_report's line.
 */
#ifndef QATCONV_SRC_TRAIN_GRAD_CHECK_H
#define QATCONV_SRC_TRAIN_GRAD_CHECK_H

#include <stdint.h>

#include "backend/backend.h"
#include "ir/graph.h"
#include "plan/plan.h"

/* What qc_grad_check found: the trainable slot nearest the output (the
 * one whose node comes last in topological order, the first the backward
 * reaches) whose gradient holds an inf or a NaN, or -1 when every gradient
 * is finite; how many slots hold one; its first bad element. */
struct qc_grad_fault {
    int slot;
    int n_bad_slots, n_slots;
    float value;
};

/* Scans grads (host memory: qc_plan_n_trainable(p) floats laid out by the
 * plan's trainable slots); true when all are finite. */
bool qc_grad_check(const struct qc_plan *p, const float *grads, struct qc_grad_fault *f);

/* The prefilter of a device backend, where scanning means downloading every
 * gradient: the gradients as rows of QC_GRAD_ROW floats, each summed on the
 * device (one GEMV with a vector of ones), and only the row sums and the
 * tail downloaded.  An inf or a NaN makes its row's sum inf or NaN; a sum
 * can also overflow from finite values, so a non-finite sum only sends the
 * trainer to the full download and qc_grad_check. */
#define QC_GRAD_ROW 4096
struct qc_grad_sums {
    float *ones;  /* device: QC_GRAD_ROW ones                 */
    float *sums;  /* device: one sum per row                  */
    int64_t rows; /* n / QC_GRAD_ROW                          */
};

/* Allocates the device buffers for n gradients (nothing on the host
 * backend); free with qc_grad_sums_free. */
enum qc_status qc_grad_sums_new(struct qc_backend *be, int64_t n, struct qc_grad_sums *s);
void qc_grad_sums_free(struct qc_backend *be, struct qc_grad_sums *s);

/* *all_finite: false when a row sum or a tail gradient of the n device
 * gradients grads is not finite.  scratch: host memory of at least
 * n / QC_GRAD_ROW + QC_GRAD_ROW floats. */
enum qc_status qc_grad_sums_check(struct qc_backend *be, const struct qc_grad_sums *s,
                                  const float *grads, int64_t n, float *scratch, bool *all_finite);

/* Logs the error line of fault f (slot >= 0) found after the backward of
 * batch `batch` (1-based) of epoch `epoch` (1-based); ckpt: the last good
 * checkpoint or NULL. */
void qc_grad_report(const struct qc_graph *g, const struct qc_plan *p,
                    const struct qc_grad_fault *f, int64_t epoch, int64_t batch, const char *ckpt);

#endif
