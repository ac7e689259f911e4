/*
 * plan.h - a graph prepared for one batch size on one backend.
 *
 * qc_plan_new() walks the finalized graph in topological order once:
 *   - runtime graph inputs get their declared shape with a symbolic dim 0 set
 *     to the requested batch size (fixed dims are kept: an input may be a
 *     broadcast [1, C]); a model none of whose inputs has a symbolic dim 0
 *     runs at the first input's fixed batch size (qc_plan_batch says which);
 *   - every node's output dtype/shape is inferred by its op's infer hook;
 *   - shape subgraphs (op fold modes, see op.h) are evaluated right there on
 *     the CPU and become constants, so x.view(x.size(0), -1) works;
 *   - every remaining value gets its buffer and every node its workspace,
 *     sized up front: qc_plan_forward() allocates nothing.
 * The plan borrows the graph and the backend; both must outlive it.
 */
#ifndef QATCONV_SRC_PLAN_H
#define QATCONV_SRC_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/backend.h"
#include "graph.h"
#include "qc.h"
#include "tensor.h"

struct qc_plan;

enum qc_status qc_plan_new(const struct qc_graph *g, struct qc_backend *be, int64_t batch,
                           struct qc_plan **out);
void qc_plan_free(struct qc_plan *p);

/* Batch size the plan was built for. */
int64_t qc_plan_batch(const struct qc_plan *p);

/* Runtime (non-initializer) graph inputs, in graph order. */
int qc_plan_n_inputs(const struct qc_plan *p);
struct qc_tensor *qc_plan_input(struct qc_plan *p, int i);
/* Graph outputs, in graph order. */
int qc_plan_n_outputs(const struct qc_plan *p);
struct qc_tensor *qc_plan_output(struct qc_plan *p, int i);
/* The tensor holding value v (inferred shape; data valid after a forward, or
 * at once for constants).  NULL if v is unused. */
struct qc_tensor *qc_plan_value(struct qc_plan *p, int v);
/* True if value v was folded to a constant. */
bool qc_plan_value_is_const(const struct qc_plan *p, int v);

/* Runs every non-folded node forward (inference mode). */
enum qc_status qc_plan_forward(struct qc_plan *p);

/* Times every step of the following forwards (the backend is synchronized
 * after each step, so this slows CUDA down a little). */
enum qc_status qc_plan_profile(struct qc_plan *p);
/* Prints time per forward pass by op type, largest first. */
void qc_plan_profile_print(const struct qc_plan *p, FILE *f);

#endif
