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
 *     sized up front: qc_plan_forward() allocates nothing;
 *   - but first the plan's total (activations, folded constants, workspace;
 *     for training also parameters, gradients, saved tensors and quantizer
 *     buffers) is checked against qc_backend_mem_limit(be): over it, one
 *     line gives the total, the limit and the largest buffers, and the plan
 *     fails with QC_ERR_SHAPE (exit status 2) having allocated nothing large.
 * The plan borrows the graph and the backend; both must outlive it.
 */
#ifndef QATCONV_SRC_PLAN_H
#define QATCONV_SRC_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/backend.h"
#include "ir/graph.h"
#include "util/qc.h"
#include "util/rng.h"
#include "ir/tensor.h"

struct qc_plan;
struct qc_op_sync;

enum qc_status qc_plan_new(const struct qc_graph *g, struct qc_backend *be, int64_t batch,
                           struct qc_plan **out);
/* An inference plan for evaluation only: as qc_plan_new, but on the CPU a
 * Conv runs the BatchNormalization (float graphs: folded into a copy of its
 * weights), Add and Relu after it as one pass (plan_fuse.c), so the values
 * between them are not computed: read only the graph's outputs. */
enum qc_status qc_plan_new_inference(const struct qc_graph *g, struct qc_backend *be, int64_t batch,
                                     struct qc_plan **out);
void qc_plan_free(struct qc_plan *p);
/* Whether `be` has kernels for every node of g that is not always folded (a
 * device backend lacks the QDQ and integer ops of exported graphs). */
bool qc_plan_backend_can_run(const struct qc_graph *g, const struct qc_backend *be);

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
/* Forward in training mode (batch statistics, running-statistics update,
 * Dropout masks from rng) on a plan from qc_plan_new_train, or in inference
 * mode with training false. */
enum qc_status qc_plan_forward_mode(struct qc_plan *p, bool training, struct qc_rng *rng);

/* Times every step of the following forwards (the backend is synchronized
 * after each step, so this slows CUDA down a little). */
enum qc_status qc_plan_profile(struct qc_plan *p);
/* Prints time per forward pass by op type, largest first. */
void qc_plan_profile_print(const struct qc_plan *p, FILE *f);

/* ---- training ------------------------------------------------------------
 * A training plan keeps every parameter (Conv/Gemm/MatMul weights and biases,
 * BatchNorm scale and bias, an Add bias after MatMul/Gemm/Conv) and every
 * buffer (BatchNorm running mean and variance) in one flat state array,
 * trainable parameters first, so an optimizer step is one loop per slot and a
 * checkpoint is one copy.  Gradients of the parameters live in a flat array of
 * the same layout; activation gradients, saved tensors and the workspace are
 * sized at plan time.  The loss is taken on the logits: the first graph output,
 * or the input of a final Softmax/LogSoftmax (which keeps running forward).
 */

/* One initializer (or quantizer parameter) in the training plan's state. */
struct qc_param_slot {
    int     value;              /* graph value index, -1 for a quantizer's α/s */
    int     node;               /* first node that reads it / quantizer's node */
    int64_t offset, n;          /* floats in the state array                  */
    bool    trainable;          /* has a gradient; else a buffer (BN stats)   */
    int     quant;              /* quantizer index for α/s slots, else -1     */
};

struct qc_quant_spec;

/* specs: the quantizers to train (quant/qspec.h), n_specs may be 0.  Weight
 * quantizers make every op read Q(W) instead of W; activation quantizers sit
 * between a node's output and its consumers. */
enum qc_status qc_plan_new_train(const struct qc_graph *g, struct qc_backend *be,
                                 int64_t batch, const struct qc_quant_spec *specs, int n_specs,
                                 struct qc_plan **out);

/* What export and reports need of quantizer i. */
struct qc_plan_quant_info {
    const struct qc_quant_spec *spec;
    float                       param;     /* α (SAT activations) or s (LSQ); 0 for SAT W */
    float                       sat_m, sat_s, sat_scale;   /* SAT weights: last forward */
    const float                *q;         /* weights: the fake-quantized weight, in
                                              backend memory (download it on a device) */
    const float *params;                   /* the learnable α / s (param is params[0]);
                                              LSQ per channel: the steps s_c, backend memory */
    int64_t n_params;                      /* their count: spec->ch.nch per channel, else 1;
                                              0 for SAT weights; 2 ([s, zf]) for an LSQ
                                              activation with a zero point               */
    int zero_point;                        /* LSQ activations: the integer zero point z
                                              (QAct.ZeroPoint; 0 without one)            */
};
int qc_plan_n_quants(const struct qc_plan *p);
/* The spec of quantizer i (no copy from the backend). */
const struct qc_quant_spec *qc_plan_quant_spec(const struct qc_plan *p, int i);
/* Reads the scalars from backend memory (a download on a device backend). */
enum qc_status qc_plan_quant_info(const struct qc_plan *p, int i,
                                  struct qc_plan_quant_info *info);
/* Copies quantizer i's n_params learnable parameters (qc_plan_quant_info) to out (host
 * memory, n_params floats). */
enum qc_status qc_plan_quant_params(const struct qc_plan *p, int i, float *out);
/* Marks every data-initialized quantizer parameter as set (after restoring
 * a checkpoint: the first forward must not re-initialize it). */
void qc_plan_quant_init_done(struct qc_plan *p);
/* A data-parallel job's sums over its ranks (ops/op.h, struct qc_op_sync;
 * must outlive the plan), or NULL (one process): the LSQ activation steps
 * initialise from the global batch, and with sync->batchnorm the training
 * BatchNorm normalizes with the global batch's statistics. */
void qc_plan_set_sync(struct qc_plan *p, const struct qc_op_sync *sync);
/* Keeps quantizer parameters in range after a solver update (α >= 1e-3,
 * s >= 1e-8). */
enum qc_status qc_plan_clamp_quant_params(struct qc_plan *p);

/* The logits value ([batch, classes]) and its gradient tensor. */
int qc_plan_logits(const struct qc_plan *p);
/* Gradient tensor of value v, or NULL when v has none. */
struct qc_tensor *qc_plan_grad(struct qc_plan *p, int v);

/* State, parameter gradients and their slots. */
float *qc_plan_state(struct qc_plan *p);
int64_t qc_plan_n_state(const struct qc_plan *p);
int64_t qc_plan_n_trainable(const struct qc_plan *p);
float *qc_plan_param_grads(struct qc_plan *p);
int qc_plan_n_slots(const struct qc_plan *p);
const struct qc_param_slot *qc_plan_slot(const struct qc_plan *p, int i);

/* Zeroes the activation gradients (before seeding the logits gradient) /
 * the parameter gradients (at the start of an IterationSize cycle). */
enum qc_status qc_plan_zero_act_grads(struct qc_plan *p);
enum qc_status qc_plan_zero_param_grads(struct qc_plan *p);
/* Backward walk over the steps between the parameters and the logits, in
 * reverse order; parameter gradients accumulate. */
enum qc_status qc_plan_backward(struct qc_plan *p);
/* Data parallelism (train/grad_buckets.h): fn(arg, offset, n) is called by
 * qc_plan_backward once per trainable slot, as soon as the slot's gradient,
 * [offset, offset + n) of qc_plan_param_grads, is final for this backward:
 * after the last step of the reverse walk that adds to it (a parameter read
 * by several ops after the last of them; an activation quantizer's α / s
 * after its backward).  With the hook set, a weight quantizer's backward (dQ
 * to dW, and its α / s) runs right after the last step that writes its dQ
 * rather than after the whole walk, so a quantized weight and its α / s are
 * final there too.  On a device backend "final" means queued on the
 * backend's stream.  An error from fn ends the walk.  fn NULL: no calls
 * (the default). */
typedef enum qc_status (*qc_grad_ready_fn)(void *arg, int64_t offset, int64_t n);
enum qc_status qc_plan_set_grad_ready(struct qc_plan *p, qc_grad_ready_fn fn, void *arg);
/* Copies the state array back into the graph's initializers (the graph the
 * plan was built from). */
enum qc_status qc_plan_store_params(struct qc_plan *p, struct qc_graph *g);

#endif
