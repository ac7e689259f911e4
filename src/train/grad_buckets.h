/*
 * grad_buckets.h - the data-parallel gradient average in buckets, overlapped
 * with the backward (issue 18).  See grad_buckets.c.
 */
#ifndef QATCONV_SRC_TRAIN_GRAD_BUCKETS_H
#define QATCONV_SRC_TRAIN_GRAD_BUCKETS_H

#include <stdint.h>

#include "backend/backend.h"
#include "dist/comm.h"
#include "plan/plan.h"
#include "util/qc.h"

struct qc_grad_buckets;

/* Buckets of about bucket_kb KiB over the plan's flat gradient buffer, and
 * the plan's grad-ready hook set to start them.  *out is NULL (nothing set,
 * QC_OK) with one rank, with bucket_kb 0, and on a device backend of a build
 * without NCCL: the caller then averages the whole buffer after the
 * backward. */
enum qc_status qc_grad_buckets_new(struct qc_plan *plan, struct qc_backend *be,
                                   struct qc_comm *comm, int64_t bucket_kb,
                                   struct qc_grad_buckets **out);
/* Removes the hook and frees. */
void qc_grad_buckets_free(struct qc_grad_buckets *b);
/* After qc_plan_backward: starts any bucket still unstarted, waits for all;
 * the gradients are then the average over the ranks. */
enum qc_status qc_grad_buckets_finish(struct qc_grad_buckets *b);
/* Buckets per backward; averages started so far, *early of them while other
 * buckets of the same backward were still incomplete (the overlap).  The
 * check that the buckets are used: a note at the end of training. */
int qc_grad_buckets_count(const struct qc_grad_buckets *b);
int64_t qc_grad_buckets_started(const struct qc_grad_buckets *b, int64_t *early);

#endif
