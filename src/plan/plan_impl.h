/*
 * plan_impl.h - the inside of struct qc_plan, shared by plan.c (building and
 * forward) and plan_train.c (parameters, gradients, backward).  Nothing else
 * includes it.
 */
#ifndef QATCONV_SRC_PLAN_IMPL_H
#define QATCONV_SRC_PLAN_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/op.h"
#include "plan.h"
#include "quant/qspec.h"

/* One quantizer attached to a training plan (plan_train.c). */
struct plan_quant {
    struct qc_quant_spec  spec;
    int                   slot;      /* weights: the W slot                      */
    int                   pslot;     /* α / s slot, -1 for SAT weights           */
    float                *q;         /* weights: Q(W), what the op reads          */
    struct qc_tensor      dq;        /* weights: gradient of Q                   */
    struct qc_sat_wstate *sat_st;    /* SAT weights: m, S, scale of the forward
                                        (backend memory; one per channel)         */
    struct qc_tensor      pre, gpre; /* activations: the unquantized output      */
    int                   step;      /* activations: producing step              */
    int                   qn, qp;    /* LSQ levels                               */
    bool                  init_pending; /* LSQ activations: s from first batch   */
};

struct plan_fused;

struct plan_step {
    int                node;      /* index in g->nodes                        */
    struct qc_tensor **in;        /* n_in pointers (NULL = omitted)           */
    struct qc_tensor **out;       /* n_out pointers                           */
    const struct qc_kernel *k;
    /* training plans only */
    void              *saved;     /* the op's saved() bytes                   */
    size_t             saved_size;
    struct qc_tensor **din;       /* n_in gradient pointers (NULL = none)     */
    struct qc_tensor **dout;      /* n_out gradient pointers (NULL = zero)    */
    bool               backward;  /* on a path from a parameter to the loss   */
    /* fused inference plans only (plan_fuse.c) */
    struct plan_fused *fused; /* the epilogue this Conv step runs, or NULL;
                                     out is then the last absorbed op's     */
};

/* What plan building did with a node (plan.c). */
enum plan_node_state {
    PLAN_NODE_STEP = 0,   /* runs at every forward                               */
    PLAN_NODE_FOLDED,     /* evaluated at plan time, while its successors are
                             inferred (small outputs: shape subgraphs)            */
    PLAN_NODE_DEFERRED,   /* folded, but evaluated only after the memory check
                             (large outputs, or inputs that are deferred)          */
};

/* A plan's memory as the check counts it: the total, and the largest
 * buffers with what they hold ("'conv1' 3.9 GiB"). */
#define PLAN_MEM_TOP 3
struct plan_mem {
    uint64_t total;
    struct {
        char     what[96];
        uint64_t bytes;
    } top[PLAN_MEM_TOP];
};
/* Adds one buffer: `what` is "'name'" followed by suffix (may be ""). */
void qc_plan_mem_add(struct plan_mem *m, uint64_t bytes, const char *name, const char *suffix);

struct qc_plan {
    const struct qc_graph *g;
    const struct qc_op_sync *sync; /* synchronized BatchNorm, or NULL      */
    struct qc_backend     *be;
    int64_t                batch;
    int                    n_values;  /* g->n_values when the plan was built  */
    struct qc_tensor      *vals;      /* n_values                             */
    bool                  *owned;     /* vals[v].data allocated by the plan   */
    bool                  *is_const;  /* n_values                             */
    bool                  *on_host;   /* buffer allocated with qc_malloc      */
    struct qc_tensor      *anon;      /* one per node output slot with no name */
    bool                  *anon_dev;  /* anon[i] is backend (device) memory      */
    int                    n_anon;
    struct qc_tensor      *dconst;    /* device backends: device copies of the
                                         float constants steps read (n_values)   */
    struct qc_tensor     **ptrs;      /* flat in/out pointer storage          */
    struct plan_step      *steps;
    int                    n_steps;
    unsigned char         *node_state; /* enum plan_node_state, per graph node */
    uint64_t               eager_fold_bytes; /* host bytes of PLAN_NODE_FOLDED  */
    int                   *inputs;    /* runtime graph inputs                 */
    int                    n_inputs;
    void                  *workspace;
    size_t                 ws_size;
    double                *step_secs; /* per step, when profiling            */
    int64_t                n_runs;    /* forwards profiled                   */

    /* training plans (plan_train.c) */
    bool                   training;
    float                 *state;     /* [trainable params | buffers]          */
    int64_t                n_state, n_trainable;
    struct qc_param_slot  *slots;
    int                    n_slots;
    float                 *grads;     /* n_trainable, same layout as state     */
    float                 *act_grads; /* gradients of activations              */
    int64_t                n_act_grads;
    struct qc_tensor      *gvals;     /* per value: its gradient (data or NULL) */
    struct qc_tensor     **gptrs;     /* flat din/dout pointer storage          */
    void                  *saved_mem;
    int                    logits;    /* value the loss is taken on            */
    struct plan_quant     *quants;
    int                    n_quants;
    float                 *quant_grads; /* dq and pre-gradients, zeroed with act grads */
    int64_t                n_quant_grads;
    bool                  *has_grad;  /* per value: gets an activation gradient
                                         (qc_plan_prepare_backward)            */
    size_t                 saved_total; /* bytes of every step's saved state   */
    qc_grad_ready_fn grad_ready;        /* qc_plan_set_grad_ready, or NULL      */
    void *grad_ready_arg;
    int *slot_ready;  /* per slot: the backward iteration after
                                           which its gradient is final, -1: after
                                           the walk, -2: not trainable            */
    int *quant_ready; /* with the hook, per quantizer: the backward
                                           iteration after which a weight
                                           quantizer's backward runs (-1: after
                                           the walk)                              */

    /* fused inference plans (plan_fuse.c) */
    uint64_t fused_bytes; /* folded weight and bias copies       */
};

/* Builds the plan (plan.c).  training: the plan keeps its parameters in a
 * flat state buffer (plan_train.c's qc_plan_bind_params is called before
 * the nodes are planned) and allocates every node's saved() bytes. */
enum qc_status qc_plan_build(const struct qc_graph *g, struct qc_backend *be, int64_t batch,
                             bool training, const struct qc_quant_spec *specs, int n_specs,
                             struct qc_plan **out);
/* plan_train.c: parameters into the flat state buffer (before the nodes are
 * planned); after them, which steps run backward and what their gradients and
 * saved state take (prepare: no large allocation, so the memory check comes
 * after it), then that memory and the wiring (setup). */
enum qc_status qc_plan_bind_params(struct qc_plan *p);
enum qc_status qc_plan_prepare_backward(struct qc_plan *p);
/* Adds what a prepared training plan holds beyond an inference plan. */
void qc_plan_mem_train(const struct qc_plan *p, struct plan_mem *m);
enum qc_status qc_plan_setup_backward(struct qc_plan *p);
void qc_plan_free_train(struct qc_plan *p);
/* Quantizer forward: weights before the first step, activations after the
 * step that produces them; backward: activations before their producer's
 * backward, weights after the last step's (step -1), or, with a grad-ready
 * hook, each after the step of quant_ready (step i). */
enum qc_status qc_plan_quant_weights_forward(struct qc_plan *p);
enum qc_status qc_plan_quant_acts_forward(struct qc_plan *p, int step, bool training);
enum qc_status qc_plan_quant_acts_backward(struct qc_plan *p, int step);
enum qc_status qc_plan_quant_weights_backward(struct qc_plan *p, int step);
/* plan_fuse.c: fuses the steps of an inference plan (after every node is
 * planned, before the memory check), runs a fused step, frees its state. */
enum qc_status qc_plan_fuse(struct qc_plan *p);
enum qc_status qc_plan_fused_forward(const struct qc_plan *p, const struct plan_step *s,
                                     const struct qc_op_ctx *ctx);
void qc_plan_fused_free(struct plan_step *s);
/* "<model>: <Op> '<label>'" into buf; returns buf. */
const char *qc_plan_node_where(const struct qc_graph *g, const struct qc_node *n, char *buf,
                               size_t len);

#endif
