/*
 * train.c - the fine-tuning loop (see train.h).
 *
 * Per batch:   x, labels <- learn images perm[b*B .. b*B+B) (LearnOnly transforms)
 *              forward (training mode) -> logits z
 *              loss = mean softmax cross-entropy, dz = (softmax(z) - onehot)/B
 *              backward from dz (parameter gradients accumulate)
 *              every IterationSize batches: solver update, gradients zeroed
 * Per epoch:   validation top-1, best/last weights, checkpoint (and one
 *              every --checkpoint-every batches, resumable at that batch).
 * Memory: the plan (parameters, gradients, activations, saved tensors) and the
 * host batch buffers are allocated once before the first batch.
 * Reporting: events (include/qatconv.h) to o->progress - BEGIN, PROGRESS per
 * batch and END of each epoch's batches (phase QC_PHASE_TRAIN), then
 * QC_EVENT_EPOCH with the epoch's figures; nothing is printed.
 */
#include <config.h>

#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "data/prefetch.h"
#include "dist/comm.h"
#include "plan/inputs.h"
#include "plan/plan.h"
#include "ops/op.h"
#include "quant/qspec.h"
#include "recipe/match.h"
#include "accuracy.h"
#include "checkpoint.h"
#include "grad_check.h"
#include "grad_buckets.h"
#include "interrupt.h"
#include "loss.h"
#include "solver.h"

/* Parameters sharing one solver configuration. */
struct solver_group {
    struct qc_solver_cfg  cfg;
    struct qc_solver_step st;
};

/* Optimizer bookkeeping of one plan slot. */
struct slot_opt {
    int     group;
    int64_t opt_offset;            /* floats into the optimizer state */
};

/* Where the training loop stands: what a checkpoint records besides the
 * weights, the optimizer state and the solver counters. */
struct train_pos {
    int64_t       epoch;      /* epochs done                               */
    int64_t       batch;      /* batches of the next epoch done            */
    double        loss_sum;   /* that epoch's loss sum and hits so far     */
    int64_t       correct;
    uint64_t data;      /* the epoch's batch seed (data.h)           */
    struct qc_rng drop; /* Dropout's generator, as batch `batch` needs it */
};

struct qc_trainer {
    struct qc_graph            *g;
    const struct qc_recipe     *r;
    struct qc_backend          *be;
    const struct qc_train_opts *o;
    struct qc_data_cfg         *dcfg;
    struct qc_dataset          *learn, *valid, *test;
    struct qc_quant_spec       *specs;        /* quantizers from the recipe  */
    int                         n_specs;
    struct qc_plan             *plan;
    struct qc_plan *teacher; /* --distill: the float graph's inference plan, or NULL */
    void *teacher_x;         /* the teacher's own input buffer                      */
    int64_t                     batch, classes, n_learn;
    /* data parallelism (dist/comm.h): batch is this rank's share of the
     * global batch gbatch, images [lo, lo + batch) of each (one rank: lo 0,
     * batch = gbatch); sync: the plan's sums over the ranks */
    struct qc_comm *comm;
    int64_t gbatch, lo;
    struct qc_op_sync sync;
    int64_t bucket_kb;               /* AllReduceBucketKB (grad_buckets.h)  */
    struct qc_grad_buckets *buckets; /* NULL: one average after the backward */
    int64_t n_averaged;              /* steps whose gradients were averaged  */
    struct solver_group        *groups;
    int                         n_groups;
    struct slot_opt            *so;
    float                      *opt;          /* backend memory              */
    int64_t                     n_opt;
    float                      *x;            /* host batch buffers          */
    int32_t                    *labels;
    void                       *xbuf[2];      /* backend memory: the input of
                                                 batches b even / odd (one
                                                 buffer on a host backend)    */
    int32_t                    *dev_labels[2];/* their labels                 */
    double                     *dev_stats;    /* loss statistics (QC_LOSS_NSTATS) */
    bool                        own_xbuf1;    /* xbuf[1] allocated here       */
    int64_t                    *perm;
    float                      *best;         /* host copy of the best state */
    float                      *host_state, *host_opt;  /* checkpoint staging */
    float                      *host_grads;   /* (gradients mid-IterationSize) */
    struct qc_prefetch *pf;                   /* image folders: the decoder
                                                 threads (NULL: decoded here) */
    const char                 *last_ckpt;    /* written or resumed from, or NULL */
    FILE                       *log;          /* --log, or NULL              */
    bool                        has_best;
    double                      best_acc;
    int                         best_epoch;
    bool                        integer;      /* QWeight.Mode=Integer        */
    int                         n_folded_bn;  /* BatchNorms folded for it    */
    struct train_pos            pos;          /* where the epochs continue    */
    struct qc_grad_fault grad_fault;          /* of the last batch (slot -1: none) */
    struct qc_grad_sums grad_sums;            /* its device prefilter         */
};

/* The seed of (seed, epoch, stream). */
static uint64_t epoch_seed(uint64_t seed, int64_t epoch, uint64_t stream)
{
    return seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(epoch + 1)) ^ (stream << 56);
}

/* Seeds a generator for (seed, epoch, stream). */
static void epoch_rng(struct qc_rng *rng, uint64_t seed, int64_t epoch, uint64_t stream)
{
    qc_rng_seed(rng, epoch_seed(seed, epoch, stream));
}

/* The solver section of a parameter, from the op's roles: BiasSolver for a
 * bias (and the constant operand of an Add, which the training plan keeps
 * only as the bias of a MatMul), ScaleSolver for BatchNorm's scale (N2D2's
 * name), WeightsSolver for everything else (weights, MatMul operands). */
static const char *solver_prefix(const struct qc_node *n, int value)
{
    int slot = -1;
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j] == value)
            slot = j;
    if (n->kind == QC_OP_ADD || (slot >= 0 && slot == qc_op_bias_input(n)))
        return "BiasSolver";
    if (qc_op_cell(n->kind) == QC_CELL_BATCHNORM)
        return "ScaleSolver";
    return "WeightsSolver";
}

static bool cfg_equal(const struct qc_solver_cfg *a, const struct qc_solver_cfg *b)
{
    return a->type == b->type && a->lr == b->lr && a->momentum == b->momentum &&
           a->decay == b->decay && a->beta1 == b->beta1 && a->beta2 == b->beta2 &&
           a->eps == b->eps && a->policy == b->policy && a->step_size == b->step_size &&
           a->step_decay == b->step_decay && a->max_iterations == b->max_iterations &&
           a->warmup == b->warmup && a->warmup_frac == b->warmup_frac &&
           a->iteration_size == b->iteration_size;
}

/* One solver configuration per trainable slot, grouped when equal. */
static enum qc_status setup_solvers(struct qc_trainer *t)
{
    int n_slots = qc_plan_n_slots(t->plan);
    enum qc_status st;
    t->groups = qc_calloc((size_t)n_slots + 1, sizeof(*t->groups));
    t->so = qc_calloc((size_t)n_slots + 1, sizeof(*t->so));
    if (!t->groups || !t->so)
        return QC_ERR_NOMEM;
    for (int i = 0; i < n_slots; i++) {
        const struct qc_param_slot *s = qc_plan_slot(t->plan, i);
        const struct qc_node *n = &t->g->nodes[s->node];
        struct qc_solver_cfg cfg;
        int gi;
        if (!s->trainable)
            continue;
        if (s->quant >= 0) {
            const struct qc_quant_spec *sp = qc_plan_quant_spec(t->plan, s->quant);
            st = qc_solver_cfg_from_recipe(t->r, sp->section,
                                           sp->weight ? "QWeightSolver" : "QActSolver", &cfg);
        } else {
            st = qc_solver_cfg_from_recipe(t->r, qc_recipe_node_section(t->r, t->g, n),
                                           solver_prefix(n, s->value), &cfg);
        }
        if (st != QC_OK)
            return st;
        for (gi = 0; gi < t->n_groups; gi++)
            if (cfg_equal(&t->groups[gi].cfg, &cfg))
                break;
        if (gi == t->n_groups) {
            t->groups[gi].cfg = cfg;
            t->n_groups++;
        }
        t->so[i].group = gi;
        t->so[i].opt_offset = t->n_opt;
        t->n_opt += s->n * qc_solver_state_per_elem(cfg.type);
    }
    st = qc_backend_alloc(t->be, (size_t)(t->n_opt ? t->n_opt : 1) * sizeof(float),
                          (void **)&t->opt);
    if (st != QC_OK)
        return st;
    return qc_backend_zero(t->be, t->opt, (size_t)t->n_opt * sizeof(float));
}

/* Zeroes the gradients of the groups starting an accumulation cycle. */
static enum qc_status zero_new_iterations(struct qc_trainer *t)
{
    float *grads = qc_plan_param_grads(t->plan);
    bool all = true, any = false;
    for (int gi = 0; gi < t->n_groups; gi++) {
        bool fresh = qc_solver_new_iteration(&t->groups[gi].st);
        all = all && fresh;
        any = any || fresh;
    }
    if (all)
        return qc_plan_zero_param_grads(t->plan);
    for (int i = 0; any && i < qc_plan_n_slots(t->plan); i++) {
        const struct qc_param_slot *s = qc_plan_slot(t->plan, i);
        enum qc_status st;
        if (!s->trainable || !qc_solver_new_iteration(&t->groups[t->so[i].group].st))
            continue;
        st = qc_backend_zero(t->be, grads + s->offset, (size_t)s->n * sizeof(float));
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

/* Solver updates of the groups whose IterationSize batches are complete. */
static enum qc_status update(struct qc_trainer *t)
{
    float *state = qc_plan_state(t->plan), *grads = qc_plan_param_grads(t->plan);
    for (int gi = 0; gi < t->n_groups; gi++) {
        struct solver_group *gr = &t->groups[gi];
        struct qc_solver_update u;
        if (!qc_solver_batch_done(&gr->cfg, &gr->st))
            continue;
        qc_solver_prepare(&gr->cfg, &gr->st, 1.0 / (double)gr->cfg.iteration_size, &u);
        for (int i = 0; i < qc_plan_n_slots(t->plan); i++) {
            const struct qc_param_slot *s = qc_plan_slot(t->plan, i);
            enum qc_status st;
            if (!s->trainable || t->so[i].group != gi)
                continue;
            /* quantizer parameters (α, s) take no weight decay */
            st = qc_backend_run(t->be, QC_TK_SOLVER_APPLY, &(struct qc_tk_solver_apply){
                                    .u = &u, .theta = state + s->offset,
                                    .grad = grads + s->offset,
                                    .state = t->opt + t->so[i].opt_offset, .n = s->n,
                                    .decays = s->quant < 0 });
            if (st != QC_OK)
                return st;
        }
        qc_solver_advance(&gr->st, t->gbatch * gr->cfg.iteration_size);
    }
    return qc_plan_clamp_quant_params(t->plan);
}

/* Image folders: keeps the decoder threads' queue full with the batches
 * of the epoch from batch `from` (the first one not taken yet) on. */
static enum qc_status fill_queue(struct qc_trainer *t, int64_t from, int64_t n_batches,
                                 uint64_t seed)
{
    enum qc_status st = QC_OK;
    for (int64_t q = from + qc_prefetch_queued(t->pf);
         st == QC_OK && q < n_batches && qc_prefetch_queued(t->pf) < QC_PREFETCH_DEPTH; q++)
        st = qc_prefetch_submit(t->pf, t->perm + q * t->gbatch + t->lo, &seed);
    return st;
}

/* Learn batch b of the epoch (of n_batches; seed: its batch seed) into the
 * host buffers t->x, t->labels, then on to the backend's input buffer pair
 * `slot`: on a device backend the copy runs while the device still computes
 * the previous batch, from the other buffer pair.  Image folders come from
 * the decoder threads, which then go on with the batches after b. */
static enum qc_status load_batch(struct qc_trainer *t, int64_t b, int64_t n_batches, uint64_t seed,
                                 int slot)
{
    size_t xbytes = qc_tensor_nbytes(qc_plan_input(t->plan, 0));
    size_t lbytes = (size_t)t->batch * sizeof(int32_t);
    enum qc_status st;
    if (t->pf) {
        st = fill_queue(t, b, n_batches, seed);
        if (st == QC_OK)
            st = qc_prefetch_take(t->pf, t->x, t->labels);
        if (st == QC_OK)
            st = fill_queue(t, b + 1, n_batches, seed);
    } else {
        st = qc_data_batch(t->dcfg, t->learn, QC_SPLIT_LEARN, t->perm + b * t->gbatch + t->lo,
                           t->batch, &seed, t->x, t->labels);
    }
    if (st != QC_OK)
        return st;
    st = qc_backend_upload_batch(t->be, t->xbuf[slot], t->x, xbytes);
    if (st == QC_OK)
        st = qc_backend_upload_batch(t->be, t->dev_labels[slot], t->labels, lbytes);
    return st;
}

/* Training batch number b, already in the input buffer pair b % 2 (see
 * load_batch); adds its loss sum and hits.  next: the batch after it,
 * loaded into the other pair once this one's work is queued, so that a
 * device computes batch b while the host prepares and sends batch b+1;
 * NULL at the end of the epoch.  The one synchronisation per batch is the
 * download of the loss statistics, after that. */
/* The fixed dim 0 of the data input, or 0 when it is symbolic or unknown. */
static int64_t fixed_batch(const struct qc_graph *g)
{
    int v = qc_inputs_data(g);
    const struct qc_value *x = v >= 0 ? &g->values[v] : NULL;
    if (!x || !x->has_shape || x->shape.ndim < 1 || x->dim_param[0] || x->shape.dims[0] < 1)
        return 0;
    return x->shape.dims[0];
}

/* Data parallelism: the parameter gradients (weights, biases, BatchNorm
 * γ/β, SAT α, LSQ steps and zero points: the one flat buffer of the plan)
 * averaged over the R ranks, in place, once per batch.
 * Each rank's backward starts from dz = (softmax - onehot) / b of its slice
 * of b = B/R images, so its gradient is the mean over its slice, and
 * (1/R) Σ_r of the equal slices' means is the single-process gradient of the
 * batch-mean loss.  With AllReduceBucketKB > 0 (t->buckets) the averages of
 * the buckets were started during the backward (grad_buckets.c) and are
 * waited for here; with 0, one all-reduce of the whole buffer here.  A
 * device backend averages with NCCL where built, else through host memory
 * (one all-reduce). */
static enum qc_status allreduce_grads(struct qc_trainer *t)
{
    float *grads = qc_plan_param_grads(t->plan);
    int64_t n = qc_plan_n_trainable(t->plan);
    enum qc_status st;
    if (qc_comm_size(t->comm) <= 1 || n == 0)
        return QC_OK;
    t->n_averaged++;
    if (t->buckets)
        return qc_grad_buckets_finish(t->buckets);
    if (qc_backend_host_memory(t->be))
        return qc_comm_mean_f32(t->comm, grads, n);
    st = qc_comm_mean_f32_device(t->comm, grads, n);
    if (st != QC_ERR_UNSUPPORTED)
        return st;
    st = qc_backend_download(t->be, t->host_grads, grads, (size_t)n * sizeof(float));
    if (st == QC_OK)
        st = qc_comm_mean_f32(t->comm, t->host_grads, n);
    if (st == QC_OK)
        st = qc_backend_upload(t->be, grads, t->host_grads, (size_t)n * sizeof(float));
    return st;
}

/* Scans the parameter gradients of the backward just run into
 * t->grad_fault.  On a device backend the row sums come first (grad_check.h):
 * the gradients are downloaded only when one of them is not finite. */
static enum qc_status check_grads(struct qc_trainer *t)
{
    const float *grads = qc_plan_param_grads(t->plan);
    int64_t n = qc_plan_n_trainable(t->plan);
    if (!qc_backend_host_memory(t->be)) {
        bool finite = false;
        enum qc_status st = qc_grad_sums_check(t->be, &t->grad_sums, grads, n, t->host_grads,
                                               &finite);
        if (st == QC_OK && finite) {
            t->grad_fault = (struct qc_grad_fault){ .slot = -1 };
            return QC_OK;
        }
        if (st == QC_OK)
            st = qc_backend_download(t->be, t->host_grads, grads, (size_t)n * sizeof(float));
        if (st != QC_OK)
            return st;
        grads = t->host_grads;
    }
    qc_grad_check(t->plan, grads, &t->grad_fault);
    return QC_OK;
}

/* --distill (loss.h): the teacher's inference forward on the student's input
 * buffer, then the mixed loss and its gradient dz into dzt. */
static enum qc_status distill_loss(struct qc_trainer *t, int slot, struct qc_tensor *zt,
                                   struct qc_tensor *dzt)
{
    enum qc_status st;
    struct qc_tk_distill_xent a = {
        .z = qc_tensor_f32(zt),
        .teacher = qc_tensor_f32(qc_plan_value(t->teacher, qc_plan_logits(t->plan))),
        .labels = t->dev_labels[slot],
        .b = t->batch,
        .classes = t->classes,
        .temperature = t->o->distill_temperature,
        .weight = t->o->distill_weight,
        .scale = 1.0f / (float)t->batch,
        .dz = qc_tensor_f32(dzt),
        .stats = t->dev_stats,
    };
    qc_plan_input(t->teacher, 0)->data = t->xbuf[slot];
    st = qc_plan_forward(t->teacher);
    return st == QC_OK ? qc_backend_run(t->be, QC_TK_DISTILL_XENT, &a) : st;
}

static enum qc_status train_batch(struct qc_trainer *t, int64_t b, int64_t n_batches,
                                  uint64_t seed_data, struct qc_rng *rng_drop, double *loss_sum,
                                  int64_t *correct)
{
    struct qc_plan *p = t->plan;
    struct qc_tensor *xin = qc_plan_input(p, 0);
    int logits = qc_plan_logits(p);
    struct qc_tensor *zt = qc_plan_value(p, logits), *dzt = qc_plan_grad(p, logits);
    double stats[QC_LOSS_NSTATS];
    int slot = (int)(b & 1);
    bool next = b + 1 < n_batches;
    enum qc_status st;

    xin->data = t->xbuf[slot];
    st = zero_new_iterations(t);
    if (st == QC_OK)
        st = qc_plan_forward_mode(p, true, rng_drop);
    if (st == QC_OK)
        st = qc_plan_zero_act_grads(p);
    if (st == QC_OK && t->teacher)
        st = distill_loss(t, slot, zt, dzt);
    else if (st == QC_OK)
        st = qc_backend_run(t->be, QC_TK_SOFTMAX_XENT, &(struct qc_tk_softmax_xent){
                                .z = qc_tensor_f32(zt), .labels = t->dev_labels[slot],
                                .b = t->batch, .classes = t->classes,
                                .scale = 1.0f / (float)t->batch, .dz = qc_tensor_f32(dzt),
                                .stats = t->dev_stats });
    if (st == QC_OK)
        st = qc_plan_backward(p);
    if (st == QC_OK)
        st = allreduce_grads(t);
    if (st == QC_OK)
        st = check_grads(t);
    if (st == QC_OK && t->grad_fault.slot >= 0)
        next = false; /* no update: run_batches stops after this batch */
    else if (st == QC_OK)
        st = update(t);
    if (st == QC_OK && next)
        st = load_batch(t, b + 1, n_batches, seed_data, slot ^ 1);
    if (st == QC_OK)
        st = qc_backend_download(t->be, stats, t->dev_stats, sizeof(stats));
    if (st == QC_OK) /* the global batch's loss sum, hits, stray labels */
        st = qc_comm_sum_f64(t->comm, stats, QC_LOSS_NSTATS);
    if (st != QC_OK)
        return st;
    if (stats[2] > 0) {
        qc_log_error("training data: %.0f labels of a batch are outside the model's %lld "
                     "classes", stats[2], (long long)t->classes);
        return QC_ERR_DATA;
    }
    *loss_sum += stats[0];
    *correct += (int64_t)stats[1];
    return QC_OK;
}

/* At least one whole batch of learn images, checked before anything reads a
 * batch (calibrate fills perm[0 .. batch-1], sized for the learn set). */
static enum qc_status learn_set_fits_batch(const struct qc_trainer *t)
{
    if (t->n_learn / t->gbatch >= 1)
        return QC_OK;
    qc_log_error("the learn set has %lld images, fewer than one batch of %lld",
                 (long long)t->n_learn, (long long)t->gbatch);
    return QC_ERR_DATA;
}

/* One inference-mode forward on the first learn batch, so that quantizers
 * that start from data (LSQ activation steps) see training images, not the
 * test set of the "before" evaluation. */
static enum qc_status calibrate(struct qc_trainer *t)
{
    uint64_t seed = epoch_seed(t->o->seed, -1, 4);
    struct qc_tensor *xin = qc_plan_input(t->plan, 0);
    enum qc_status st;
    for (int64_t i = 0; i < t->batch; i++)
        t->perm[i] = (t->lo + i) % t->n_learn;
    st = qc_data_batch(t->dcfg, t->learn, QC_SPLIT_LEARN, t->perm, t->batch, &seed, t->x,
                       t->labels);
    if (st == QC_OK)
        st = qc_backend_upload(t->be, xin->data, t->x, qc_tensor_nbytes(xin));
    if (st == QC_OK)
        st = qc_plan_forward_mode(t->plan, false, NULL);
    return st;
}

/* Data parallelism: the evaluation's figures summed over the ranks (in
 * double: exact for counts below 2^53). */
static enum qc_status reduce_eval(struct qc_trainer *t, struct qc_eval_result *res,
                                  struct qc_confusion *conf)
{
    int64_t cells = conf ? conf->classes * conf->classes : 0, n = cells + 6;
    double *v = qc_malloc((size_t)n * sizeof(double));
    enum qc_status st;
    if (!v)
        return QC_ERR_NOMEM;
    v[0] = (double)res->n;
    v[1] = (double)res->correct;
    v[2] = conf ? (double)conf->n : 0.0;
    v[3] = conf ? (double)conf->top1 : 0.0;
    v[4] = conf ? (double)conf->top5 : 0.0;
    v[5] = conf ? (double)conf->n_unlisted : 0.0;
    for (int64_t i = 0; i < cells; i++)
        v[6 + i] = (double)conf->counts[i];
    st = qc_comm_sum_f64(t->comm, v, n);
    if (st == QC_OK) {
        res->n = (int64_t)v[0];
        res->correct = (int64_t)v[1];
        if (conf) {
            conf->n = (int64_t)v[2];
            conf->top1 = (int64_t)v[3];
            conf->top5 = (int64_t)v[4];
            conf->n_unlisted = (int64_t)v[5];
            for (int64_t i = 0; i < cells; i++)
                conf->counts[i] = (int64_t)v[6 + i];
        }
    }
    qc_free(v);
    return st;
}

/* Data parallelism with local BatchNorm: rank 0's state (its running
 * statistics; the rest is the same on every rank) on every rank before an
 * evaluation split over the ranks, as DDP broadcasts its buffers. */
static enum qc_status same_state(struct qc_trainer *t)
{
    float *state = qc_plan_state(t->plan);
    size_t bytes = (size_t)qc_plan_n_state(t->plan) * sizeof(float);
    enum qc_status st;
    if (qc_comm_size(t->comm) <= 1 || t->sync.batchnorm)
        return QC_OK;
    st = qc_backend_download(t->be, t->host_state, state, bytes);
    if (st == QC_OK)
        st = qc_comm_bcast(t->comm, t->host_state, bytes, 0);
    if (st == QC_OK)
        st = qc_backend_upload(t->be, state, t->host_state, bytes);
    return st;
}

/* Top-1 (and conf) of the training plan on a split; in a data-parallel job
 * each rank evaluates its shard of the images and the figures are summed. */
static enum qc_status evaluate_split(struct qc_trainer *t, const struct qc_dataset *ds,
                                     enum qc_split split, const char *what, double *acc,
                                     struct qc_confusion *conf)
{
    struct qc_eval_result res;
    enum qc_status st = same_state(t);
    if (st == QC_OK)
        st = qc_eval_split_shard(t->plan, t->be, t->dcfg, ds, split, 0, qc_comm_rank(t->comm),
                                 qc_comm_size(t->comm), &t->o->progress, what, NULL, conf, &res);
    if (st == QC_OK)
        st = reduce_eval(t, &res, conf);
    if (st != QC_OK) {
        if (conf)
            qc_confusion_clear(conf);
        return st;
    }
    *acc = res.n ? 100.0 * (double)res.correct / (double)res.n : 0.0;
    return QC_OK;
}

/* Top-1 on the test split of t->g as it is now, through a fresh inference
 * plan (no quantizers; the fused one of qatconv eval, plan_fuse.c): the
 * float baseline, or the exported graph.  An
 * exported graph's QuantizeLinear / DequantizeLinear and integer ops have
 * CPU kernels only: on a device backend it is evaluated on the CPU. */
static enum qc_status evaluate_graph(struct qc_trainer *t, const char *what, double *acc,
                                     struct qc_confusion *conf)
{
    struct qc_plan *p = NULL;
    struct qc_backend *cpu = NULL, *be = t->be;
    struct qc_eval_result res;
    enum qc_status st = QC_OK;
    if (!qc_plan_backend_can_run(t->g, be)) {
        st = qc_backend_new("cpu", 0, &cpu);
        if (st == QC_OK)
            qc_backend_set_max_memory(cpu, qc_backend_max_memory(t->be));
        be = cpu;
    }
    if (st == QC_OK)
        st = qc_plan_new_inference(t->g, be, t->batch, &p);
    if (st == QC_OK)
        st = qc_eval_split_metrics(p, be, t->dcfg, t->test, QC_SPLIT_TEST, 0, &t->o->progress, what,
                                   NULL, conf, &res);
    qc_plan_free(p);
    qc_backend_free(cpu);
    if (st == QC_OK)
        *acc = res.n ? 100.0 * (double)res.correct / (double)res.n : 0.0;
    return st;
}


/* Downloads the gradients when a solver group is in the middle of an
 * IterationSize accumulation (they carry into the next batch); *n_grads = 0
 * otherwise. */
static enum qc_status pending_grads(struct qc_trainer *t, int64_t *n_grads)
{
    bool pending = false;
    *n_grads = 0;
    for (int i = 0; i < t->n_groups; i++)
        pending = pending || !qc_solver_new_iteration(&t->groups[i].st);
    if (!pending)
        return QC_OK;
    *n_grads = qc_plan_n_trainable(t->plan);
    return qc_backend_download(t->be, t->host_grads, qc_plan_param_grads(t->plan),
                               (size_t)*n_grads * sizeof(float));
}

static enum qc_status save_checkpoint(struct qc_trainer *t, const struct train_pos *pos)
{
    struct qc_checkpoint c;
    struct qc_solver_step steps[64];
    enum qc_status st;
    int64_t n_state = qc_plan_n_state(t->plan), n_grads;
    if (t->n_groups > (int)QC_ARRAY_SIZE(steps)) {
        qc_log_error("%s: more than %d solver configurations cannot be checkpointed",
                     t->o->checkpoint, (int)QC_ARRAY_SIZE(steps));
        return QC_ERR_UNSUPPORTED;
    }
    for (int i = 0; i < t->n_groups; i++)
        steps[i] = t->groups[i].st;
    st = qc_backend_download(t->be, t->host_state, qc_plan_state(t->plan),
                             (size_t)n_state * sizeof(float));
    if (st == QC_OK)
        st = qc_backend_download(t->be, t->host_opt, t->opt, (size_t)t->n_opt * sizeof(float));
    if (st == QC_OK)
        st = pending_grads(t, &n_grads);
    if (st != QC_OK)
        return st;
    c = (struct qc_checkpoint){
        .epochs_done = pos->epoch,
        .batches_done = pos->batch,
        .batch = t->gbatch,
        .n_learn = t->n_learn,
        .seed = t->o->seed,
        .loss_sum = pos->loss_sum,
        .correct = pos->correct,
        .best_epoch = t->best_epoch,
        .best_acc = t->best_acc,
        .n_groups = t->n_groups,
        .steps = steps,
        .n_state = n_state,
        .state = t->host_state,
        .n_opt = t->n_opt,
        .opt = t->host_opt,
        .has_best = t->has_best,
        .best = t->best,
        .n_grads = n_grads,
        .grads = t->host_grads,
    };
    /* rng_data stays zero: the data draws are per image (data.h) */
    memcpy(c.rng_drop, pos->drop.s, sizeof(c.rng_drop));
    snprintf(c.valid_metric, sizeof(c.valid_metric), "%s", qc_metric_name(t->o->valid_metric));
    /* data parallelism: every rank has the same state; rank 0 writes */
    st = qc_comm_rank(t->comm) == 0 ? qc_checkpoint_write(t->o->checkpoint, &c) : QC_OK;
    if (st == QC_OK)
        t->last_ckpt = t->o->checkpoint;
    return st;
}

/* A checkpoint taken inside an epoch continues at its batch only with the
 * same batches: the same batch size and number of learn images. */
static enum qc_status check_position(const struct qc_trainer *t, const struct qc_checkpoint *c)
{
    int64_t n_batches = t->n_learn / t->gbatch;
    if (c->batches_done == 0)
        return QC_OK;
    if (c->batch != t->gbatch || c->n_learn != t->n_learn) {
        qc_log_error("%s: checkpoint taken inside an epoch with batches of %lld from %lld "
                     "learn images; this run has %lld from %lld (same --batch and --limit "
                     "needed)",
                     t->o->resume, (long long)c->batch, (long long)c->n_learn, (long long)t->gbatch,
                     (long long)t->n_learn);
        return QC_ERR_DATA;
    }
    if (c->batches_done >= n_batches) {
        qc_log_error("%s: checkpoint is corrupt (batch %lld of an epoch of %lld)",
                     t->o->resume, (long long)c->batches_done, (long long)n_batches);
        return QC_ERR_DATA;
    }
    return QC_OK;
}

static enum qc_status load_checkpoint(struct qc_trainer *t, struct train_pos *pos)
{
    struct qc_checkpoint c;
    struct qc_solver_step steps[64];
    enum qc_status st;
    int64_t n_state = qc_plan_n_state(t->plan);
    memset(&c, 0, sizeof(c));
    c.n_groups = t->n_groups;
    c.steps = steps;
    c.n_state = n_state;
    c.state = t->host_state;
    c.n_opt = t->n_opt;
    c.opt = t->host_opt;
    c.best = t->best;
    c.n_grads = qc_plan_n_trainable(t->plan);
    c.grads = t->host_grads;
    if (t->n_groups > (int)QC_ARRAY_SIZE(steps))
        return QC_ERR_UNSUPPORTED;
    st = qc_checkpoint_read(t->o->resume, &c);
    if (st == QC_OK)
        st = check_position(t, &c);
    if (st != QC_OK)
        return st;
    /* the best figure is in the unit of the metric that chose it */
    if (c.valid_metric[0] && strcmp(c.valid_metric, qc_metric_name(t->o->valid_metric)) != 0) {
        qc_log_error("%s: checkpoint kept its best epoch by --valid-metric %s, this run asks "
                     "for %s: resume with --valid-metric %s",
                     t->o->resume, c.valid_metric, qc_metric_name(t->o->valid_metric),
                     c.valid_metric);
        return QC_ERR_DATA;
    }
    if (c.seed != t->o->seed)
        qc_log_warn("%s: checkpoint was made with --seed %llu, this run uses %llu: the "
                    "result will differ from an uninterrupted run", t->o->resume,
                    (unsigned long long)c.seed, (unsigned long long)t->o->seed);
    for (int i = 0; i < t->n_groups; i++)
        t->groups[i].st = steps[i];
    qc_plan_quant_init_done(t->plan);   /* LSQ steps come from the checkpoint */
    t->has_best = c.has_best;
    t->best_acc = c.best_acc;
    t->best_epoch = c.best_epoch;
    t->last_ckpt = t->o->resume;
    /* the data seed is a function of (seed, epoch): rng_data is not read */
    *pos = (struct train_pos){ .epoch = c.epochs_done,
                               .batch = c.batches_done,
                               .loss_sum = c.loss_sum,
                               .correct = c.correct,
                               .data = epoch_seed(t->o->seed, c.epochs_done, 2) };
    memcpy(pos->drop.s, c.rng_drop, sizeof(c.rng_drop));
    st = qc_backend_upload(t->be, qc_plan_state(t->plan), t->host_state,
                           (size_t)n_state * sizeof(float));
    if (st == QC_OK)
        st = qc_backend_upload(t->be, t->opt, t->host_opt, (size_t)t->n_opt * sizeof(float));
    if (st == QC_OK && c.n_grads > 0)
        st = qc_backend_upload(t->be, qc_plan_param_grads(t->plan), t->host_grads,
                               (size_t)c.n_grads * sizeof(float));
    return st;
}

/* Fisher-Yates over 0..n-1 (identity when shuffling is off). */
static void shuffle(int64_t *perm, int64_t n, bool on, struct qc_rng *rng)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; on && i > 0; i--) {
        int64_t j = (int64_t)(qc_rng_next(rng) % (uint64_t)(i + 1));
        int64_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

/* CosineDecay without MaxIterations decays to 0 over the whole run. */
static void default_cosine_length(struct qc_trainer *t)
{
    int64_t total = (int64_t)t->o->epochs * (t->n_learn / t->gbatch) * t->gbatch;
    for (int gi = 0; gi < t->n_groups; gi++) {
        struct qc_solver_cfg *c = &t->groups[gi].cfg;
        if (c->policy == QC_LR_COSINE && c->max_iterations <= 0)
            c->max_iterations = total;
    }
}

/* The batch's CSV line of --log. */
static enum qc_status log_batch(struct qc_trainer *t, const struct train_pos *pos, double loss,
                                int64_t samples, double lr)
{
    int64_t seen = pos->batch * t->gbatch;
    if (t->log && fprintf(t->log, "%lld,%lld,%lld,%.9g,%.6f,%.9g\n", (long long)pos->epoch + 1,
                          (long long)pos->batch, (long long)samples, loss,
                          (double)pos->correct / (double)seen, lr) < 0) {
        qc_log_error("%s: cannot write the training log", t->o->log);
        return QC_ERR_IO;
    }
    return QC_OK;
}

/* After batch pos->batch of an epoch of n_batches: a checkpoint when
 * --checkpoint-every says so (not after the last batch: the end-of-epoch
 * checkpoint follows it). */
static enum qc_status maybe_checkpoint(struct qc_trainer *t, const struct train_pos *pos,
                                       int64_t n_batches)
{
    int64_t every = t->o->checkpoint_every;
    if (!t->o->checkpoint || every <= 0 || pos->batch >= n_batches ||
        (pos->epoch * n_batches + pos->batch) % every != 0)
        return QC_OK;
    return save_checkpoint(t, pos);
}

/* The epoch's BEGIN event has gone out in ev: the PROGRESS event after `seen`
 * of its images, or its END (aborted before an error message). */
static void report_batch(const struct qc_trainer *t, struct qc_event *ev, enum qc_event_kind kind,
                         int64_t seen, const struct train_pos *pos, double t0)
{
    ev->kind = kind;
    ev->aborted = kind == QC_EVENT_END;
    ev->done = seen;
    ev->batch = pos->batch;
    ev->loss = seen ? pos->loss_sum / (double)seen : -1.0;
    ev->accuracy = seen ? 100.0 * (double)pos->correct / (double)seen : 0.0;
    ev->secs = qc_now() - t0;
    ev->images_per_s = ev->secs > 0 ? (double)seen / ev->secs : 0.0;
    ev->eta = ev->images_per_s > 0 ? (double)(ev->total - seen) / ev->images_per_s : 0.0;
    qc_emit(&t->o->progress, ev);
}

/* The batches of epoch pos->epoch from pos->batch (0, or where a checkpoint
 * stopped) to its end; pos follows them.  *images: images trained here;
 * ev: the epoch's events (BEGIN sent at t0). */
static enum qc_status batches(struct qc_trainer *t, struct train_pos *pos, int64_t n_batches,
                              struct qc_event *ev, double t0, int64_t *images,
                              const struct qc_train_stats *stats)
{
    enum qc_status st = load_batch(t, pos->batch, n_batches, pos->data, (int)(pos->batch & 1));
    for (int64_t b = pos->batch; st == QC_OK && b < n_batches; b++) {
        double before = pos->loss_sum;
        double lr = t->n_groups ? qc_solver_lr(&t->groups[0].cfg, t->groups[0].st.samples)
                                : 0.0;
        int64_t seen;
        int sig;
        st = train_batch(t, b, n_batches, pos->data, &pos->drop, &pos->loss_sum, &pos->correct);
        qc_plan_input(t->plan, 0)->data = t->xbuf[0];   /* the plan's own buffer */
        if (st != QC_OK)
            return st;
        pos->batch = b + 1;
        seen = pos->batch * t->gbatch;
        *images += t->gbatch;
        st = log_batch(t, pos, (pos->loss_sum - before) / (double)t->gbatch,
                       stats->images + *images, lr);
        if (st != QC_OK)
            return st;
        if (!isfinite(pos->loss_sum)) {
            report_batch(t, ev, QC_EVENT_END, seen, pos, t0);
            qc_log_error("epoch %lld, batch %lld: the loss is %s; stopped (lower the "
                         "learning rate?). Last good checkpoint: %s", (long long)pos->epoch + 1,
                         (long long)b + 1, isnan(pos->loss_sum) ? "NaN" : "infinite",
                         t->last_ckpt ? t->last_ckpt : "none");
            return QC_ERR_NUMERIC;
        }
        if (t->grad_fault.slot >= 0) { /* a finite loss, a gradient that is not */
            report_batch(t, ev, QC_EVENT_END, seen, pos, t0);
            qc_grad_report(t->g, t->plan, &t->grad_fault, pos->epoch + 1, b + 1, t->last_ckpt);
            return QC_ERR_NUMERIC;
        }
        report_batch(t, ev, QC_EVENT_PROGRESS, seen, pos, t0);
        st = maybe_checkpoint(t, pos, n_batches);
        qc_interrupted(&sig);
        if (st == QC_OK) /* a signal to any rank stops every rank after this batch */
            st = qc_comm_max_int(t->comm, &sig);
        if (st == QC_OK && sig != 0) {
            qc_comm_failed_everywhere(t->comm); /* every rank stops here: rank 0 says it */
            report_batch(t, ev, QC_EVENT_END, seen, pos, t0);
            qc_log_error("interrupted by signal %d in epoch %lld after batch %lld; "
                         "nothing written%s%s", sig, (long long)pos->epoch + 1,
                         (long long)b + 1, t->last_ckpt ? "; resume from " : "",
                         t->last_ckpt ? t->last_ckpt : "");
            return QC_ERR_INTERRUPTED;
        }
    }
    return st;
}

/* batches(), then no batch left queued for the decoder threads (an error
 * or an interruption leaves some). */
static enum qc_status run_batches(struct qc_trainer *t, struct train_pos *pos, int64_t n_batches,
                                  struct qc_event *ev, double t0, int64_t *images,
                                  const struct qc_train_stats *stats)
{
    enum qc_status st = batches(t, pos, n_batches, ev, t0, images, stats);
    qc_prefetch_cancel(t->pf);
    return st;
}

/* After an epoch: validation, the best weights, the epoch's event, the
 * checkpoint. */
static enum qc_status end_epoch(struct qc_trainer *t, const struct train_pos *pos, double secs,
                                int64_t images, struct qc_train_stats *stats)
{
    const struct qc_train_opts *o = t->o;
    int64_t seen = pos->batch * t->gbatch;
    struct train_pos next = { .epoch = pos->epoch + 1 };
    double vacc = -1.0, score = -1.0;
    enum qc_status st;

    stats->last_loss = pos->loss_sum / (double)seen;
    if (t->valid && t->valid->n > 0) {
        struct qc_confusion conf;
        bool better;
        st = evaluate_split(t, t->valid, QC_SPLIT_VALIDATION, "validation", &vacc, &conf);
        if (st != QC_OK)
            return st;
        /* the kept epoch: the best figure of o->valid_metric (N2D2's
         * -valid-metric), the first epoch that reached it */
        score = qc_confusion_metric(&conf, o->valid_metric);
        qc_confusion_clear(&conf);
        better = qc_metric_higher_better(o->valid_metric) ? score > t->best_acc
                                                          : score < t->best_acc;
        if (!t->has_best || better) {
            t->has_best = true;
            t->best_acc = score;
            t->best_epoch = (int)pos->epoch + 1;
            st = qc_backend_download(t->be, t->best, qc_plan_state(t->plan),
                                     (size_t)qc_plan_n_state(t->plan) * sizeof(float));
            if (st != QC_OK)
                return st;
        }
    }
    {
        struct qc_event ev = {
            .kind = QC_EVENT_EPOCH, .phase = QC_PHASE_TRAIN, .epoch = (int)pos->epoch + 1,
            .epochs = o->epochs, .batch = pos->batch, .n_batches = pos->batch,
            .done = images, .total = images, .loss = stats->last_loss,
            .accuracy = 100.0 * (double)pos->correct / (double)seen, .valid_accuracy = vacc,
            .secs = secs, .images_per_s = (double)images / (secs > 0 ? secs : 1e-9),
        };
        ev.valid_metric = vacc >= 0 ? qc_metric_name(o->valid_metric) : NULL;
        ev.valid_score = score;
        qc_emit(&o->progress, &ev);
    }
    return o->checkpoint ? save_checkpoint(t, &next) : QC_OK;
}

/* The epochs from pos (the start, or where a checkpoint stopped) to the
 * last.  Each epoch's shuffle and generators derive from (seed, epoch);
 * a checkpoint taken inside an epoch brings the generators' states. */
static enum qc_status run_epochs(struct qc_trainer *t, struct train_pos *pos,
                                 struct qc_train_stats *rep)
{
    const struct qc_train_opts *o = t->o;
    int64_t n_batches = t->n_learn / t->gbatch, first_epoch = pos->epoch;
    double t0 = qc_now();
    enum qc_status st;

    if (n_batches < 1)
        return QC_ERR_INTERNAL;   /* learn_set_fits_batch ran first */
    default_cosine_length(t);
    for (; pos->epoch < o->epochs; *pos = (struct train_pos){ .epoch = pos->epoch + 1 }) {
        struct qc_rng rng_shuffle;
        struct qc_event ev;
        char what[64];
        int64_t images = 0;
        double t_epoch;

        epoch_rng(&rng_shuffle, o->seed, pos->epoch, 1);
        pos->data = epoch_seed(o->seed, pos->epoch, 2);
        if (pos->batch == 0)
            epoch_rng(&pos->drop, o->seed, pos->epoch, 3);
        shuffle(t->perm, t->n_learn, o->shuffle, &rng_shuffle);
        snprintf(what, sizeof(what), "epoch %lld/%d", (long long)pos->epoch + 1, o->epochs);
        ev = (struct qc_event){
            .kind = QC_EVENT_BEGIN,
            .phase = QC_PHASE_TRAIN,
            .what = what,
            .epoch = (int)pos->epoch + 1,
            .epochs = o->epochs,
            .batch = pos->batch,
            .n_batches = n_batches,
            .total = n_batches * t->gbatch,
            .loss = -1.0,
            .valid_accuracy = -1.0,
        };
        t_epoch = qc_now();
        qc_emit(&o->progress, &ev);
        st = run_batches(t, pos, n_batches, &ev, t_epoch, &images, rep);
        if (st != QC_OK)
            return st;
        rep->images += images;
        rep->epochs_run = (int)(pos->epoch + 1 - first_epoch);
        ev.kind = QC_EVENT_END;
        ev.secs = qc_now() - t_epoch;
        qc_emit(&o->progress, &ev);
        st = end_epoch(t, pos, ev.secs, images, rep);
        if (st != QC_OK)
            return st;
    }
    rep->secs = qc_now() - t0;
    return QC_OK;
}

/* The sums over the ranks of the plan (struct qc_op_sync): LSQ step init,
 * synchronized BatchNorm. */
static enum qc_status sync_sum(void *arg, double *buf, int64_t n)
{
    return qc_comm_sum_f64(arg, buf, n);
}

/* Data parallelism: rank r of R takes the contiguous images
 * [r·B/R, (r+1)·B/R) of every global batch of B (a multiple of R); the recipe's global
 * SyncBatchNorm=1 turns on synchronized BatchNorm statistics (else each rank
 * normalizes with its slice's, as DDP does by default). */
static enum qc_status slice_batch(struct qc_trainer *t)
{
    int64_t ranks = qc_comm_size(t->comm), r = qc_comm_rank(t->comm), sync = 0;
    enum qc_status st;
    t->gbatch = t->batch;
    if (t->gbatch % ranks != 0) {
        qc_log_error("a global batch of %lld images does not split evenly over %lld ranks "
                     "(BatchSize or --batch: a multiple of the number of ranks)",
                     (long long)t->gbatch, (long long)ranks);
        return QC_ERR_INVAL;
    }
    t->batch = t->gbatch / ranks;
    t->lo = r * t->batch;
    st = qc_recipe_int(t->r, "", "SyncBatchNorm", 0, &sync);
    if (st == QC_OK)
        st = qc_recipe_int(t->r, "", "AllReduceBucketKB", 1024, &t->bucket_kb);
    if (st != QC_OK)
        return st;
    if (ranks > 1)
        t->sync = (struct qc_op_sync){
            .sum = sync_sum, .arg = t->comm, .batchnorm = sync, .lo = t->lo, .gbatch = t->gbatch
        };
    return QC_OK;
}

/* --distill: the teacher, an inference plan of the float graph (before any
 * training: the plan borrows the initializers, which qc_trainer_store writes
 * only after the epochs), its logits shaped as the student's. */
static enum qc_status new_teacher(struct qc_trainer *t)
{
    const struct qc_tensor *tz;
    enum qc_status st;
    if (!(t->o->distill_temperature > 0.0f))
        return QC_OK;
    if (!(t->o->distill_weight >= 0.0f && t->o->distill_weight <= 1.0f)) {
        qc_log_error("--distill: the weight %g is outside [0, 1]", (double)t->o->distill_weight);
        return QC_ERR_INVAL;
    }
    if (!qc_backend_host_memory(t->be)) {
        qc_log_error("--distill: distillation runs on the CPU backend only, not on %s (train "
                     "with --device cpu)",
                     qc_backend_name(t->be));
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_plan_new(t->g, t->be, t->batch, &t->teacher);
    if (st != QC_OK)
        return st;
    t->teacher_x = qc_plan_input(t->teacher, 0)->data;
    tz = qc_plan_value(t->teacher, qc_plan_logits(t->plan));
    if (qc_plan_batch(t->teacher) != t->batch || !tz || !tz->data || tz->shape.ndim != 2 ||
        tz->shape.dims[0] != t->batch || tz->shape.dims[1] != t->classes) {
        qc_log_error("%s: --distill: the float model's logits are not [%lld, %lld] in its "
                     "inference plan",
                     t->g->path, (long long)t->batch, (long long)t->classes);
        return QC_ERR_SHAPE;
    }
    return QC_OK;
}

static enum qc_status setup(struct qc_trainer *t)
{
    int64_t n_state;
    enum qc_status st;

    st = qc_data_cfg_from_recipe(t->r, &t->dcfg);
    if (st != QC_OK)
        return st;
    {
        /* channels-last models take NHWC images (plan/inputs.h) */
        enum qc_input_layout layout;
        st = qc_inputs_layout(t->g, t->r, &layout);
        if (st != QC_OK)
            return st;
        qc_data_cfg_set_channels_last(t->dcfg, layout == QC_INPUT_CHANNELS_LAST);
    }
    qc_data_cfg_set_reporter(t->dcfg, &t->o->progress); /* folder indexing */
    st = qc_data_load(t->dcfg, QC_SPLIT_LEARN, &t->learn);
    if (st != QC_OK)
        return st;
    st = qc_data_load(t->dcfg, QC_SPLIT_VALIDATION, &t->valid);
    if (st != QC_OK)
        return st;
    if (!t->o->skip_eval) {
        st = qc_data_load(t->dcfg, QC_SPLIT_TEST, &t->test);
        if (st != QC_OK)
            return st;
    }
    t->n_learn = t->o->limit ? QC_MIN(t->o->limit, t->learn->n) : t->learn->n;
    t->batch = t->o->batch ? t->o->batch : qc_data_cfg_batch(t->dcfg);
    if (!t->o->batch && fixed_batch(t->g) > 1 && fixed_batch(t->g) != t->batch) {
        /* a model declared with a fixed batch other than 1 (which the pipeline
         * made symbolic) trains at its batch, the recipe's BatchSize aside */
        char text[256];
        struct qc_event ev = { .kind = QC_EVENT_NOTE, .phase = QC_PHASE_SETUP, .text = text };
        snprintf(text, sizeof(text),
                 "the model's input has a fixed batch of %lld: training at that batch, not the "
                 "recipe's %lld",
                 (long long)fixed_batch(t->g), (long long)t->batch);
        qc_emit(&t->o->progress, &ev);
        t->batch = fixed_batch(t->g);
    }
    st = slice_batch(t);
    if (st != QC_OK)
        return st;
    st = qc_quant_specs_from_recipe(t->r, t->g, &t->specs, &t->n_specs);
    if (st != QC_OK)
        return st;
    if (t->n_specs == 0) {
        /* a note, not a warning: float fine-tuning is a legitimate use */
        char text[4200];
        struct qc_event ev = { .kind = QC_EVENT_NOTE, .phase = QC_PHASE_SETUP, .text = text };
        snprintf(text, sizeof(text), "%s: the recipe quantizes no node (no QWeight or QAct "
                 "applies): float fine-tuning, the output is a float model",
                 qc_recipe_path(t->r));
        qc_emit(&t->o->progress, &ev);
    }
    for (int i = 0; i < t->n_specs; i++)
        t->integer = t->integer || t->specs[i].integer;
    if (t->integer) {
        /* QWeight.Mode=Integer: BatchNorm folded into the layers before training,
         * so the quantized weights are the deployed integer weights */
        int n_folded;
        qc_free(t->specs);
        t->specs = NULL;
        if (!t->o->fold_bn) {
            qc_log_error("%s: QWeight.Mode=Integer needs BatchNorm folding", qc_recipe_path(t->r));
            return QC_ERR_INTERNAL;
        }
        if ((st = t->o->fold_bn(t->g, &n_folded)) != QC_OK ||
            (st = qc_quant_specs_from_recipe(t->r, t->g, &t->specs, &t->n_specs)) != QC_OK)
            return st;
        t->n_folded_bn = n_folded;
    }
    st = qc_plan_new_train(t->g, t->be, t->batch, t->specs, t->n_specs, &t->plan);
    if (st != QC_OK)
        return st;
    if (qc_plan_batch(t->plan) != t->batch) {
        /* a fixed batch of 1 is made symbolic by the pipeline (plan/inputs.h);
         * another fixed batch is the model's */
        qc_log_error("%s: the model's input has a fixed batch size of %lld; training needs a "
                     "symbolic batch axis, a fixed batch of 1, or --batch %lld",
                     t->g->path, (long long)qc_plan_batch(t->plan),
                     (long long)qc_plan_batch(t->plan));
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_eval_check(t->g, t->plan, t->dcfg);
    if (st != QC_OK)
        return st;
    if (!qc_plan_grad(t->plan, qc_plan_logits(t->plan))) {
        qc_log_error("%s: no trainable parameter (a float initializer weight) reaches the "
                     "output; nothing to train",
                     t->g->path);
        return QC_ERR_UNSUPPORTED;
    }
    t->classes = qc_plan_value(t->plan, qc_plan_logits(t->plan))->shape.dims[1];
    if (t->sync.sum)
        qc_plan_set_sync(t->plan, &t->sync);
    st = qc_grad_buckets_new(t->plan, t->be, t->comm, t->bucket_kb, &t->buckets);
    if (st != QC_OK)
        return st;
    st = new_teacher(t);
    if (st != QC_OK)
        return st;
    st = setup_solvers(t);
    if (st != QC_OK)
        return st;
    n_state = qc_plan_n_state(t->plan);
    t->x = qc_malloc(qc_tensor_nbytes(qc_plan_input(t->plan, 0)));
    t->labels = qc_malloc((size_t)t->batch * sizeof(int32_t));
    t->perm = qc_malloc((size_t)t->n_learn * sizeof(int64_t));
    t->best = qc_malloc((size_t)(n_state ? n_state : 1) * sizeof(float));
    t->host_state = qc_malloc((size_t)(n_state ? n_state : 1) * sizeof(float));
    t->host_opt = qc_malloc((size_t)(t->n_opt ? t->n_opt : 1) * sizeof(float));
    /* also the scratch of the gradient prefilter: n / QC_GRAD_ROW + QC_GRAD_ROW floats */
    t->host_grads = qc_malloc((size_t)QC_MAX(qc_plan_n_trainable(t->plan), QC_GRAD_ROW + 1) *
                              sizeof(float));
    if (!t->x || !t->labels || !t->perm || !t->best || !t->host_state || !t->host_opt ||
        !t->host_grads)
        return QC_ERR_NOMEM;
    /* two input buffers (the plan's and one more) on a device, one on the host */
    t->xbuf[0] = t->xbuf[1] = qc_plan_input(t->plan, 0)->data;
    if (!qc_backend_host_memory(t->be)) {
        st = qc_backend_alloc(t->be, qc_tensor_nbytes(qc_plan_input(t->plan, 0)), &t->xbuf[1]);
        if (st != QC_OK)
            return st;
        t->own_xbuf1 = true;
    }
    for (int i = 0; i < (t->own_xbuf1 ? 2 : 1); i++) {
        st = qc_backend_alloc(t->be, (size_t)t->batch * sizeof(int32_t),
                              (void **)&t->dev_labels[i]);
        if (st != QC_OK)
            return st;
    }
    if (!t->own_xbuf1)
        t->dev_labels[1] = t->dev_labels[0];
    st = qc_grad_sums_new(t->be, qc_plan_n_trainable(t->plan), &t->grad_sums);
    if (st != QC_OK)
        return st;
    if (t->learn->files) {
        /* image folders: decoded ahead by DecodeThreads threads (the job's
         * --threads by default) */
        int threads = qc_data_cfg_decode_threads(t->dcfg);
        if (threads <= 0)
            threads = QC_MAX(1, QC_MIN(qc_backend_threads(t->be), 256));
        st = qc_prefetch_new(t->dcfg, t->learn, QC_SPLIT_LEARN, t->batch, threads,
                             QC_PREFETCH_DEPTH, &t->pf);
        if (st != QC_OK)
            return st;
    }
    return qc_backend_alloc(t->be, QC_LOSS_NSTATS * sizeof(double), (void **)&t->dev_stats);
}

static void teardown(struct qc_trainer *t)
{
    qc_prefetch_free(t->pf); /* first: its threads read the learn set */
    t->pf = NULL;
    if (t->opt)
        qc_backend_release(t->be, t->opt);
    qc_grad_buckets_free(t->buckets); /* before the plan: it unhooks itself from it */
    t->buckets = NULL;
    if (t->plan && t->xbuf[0])   /* an error may leave the plan reading xbuf[1] */
        qc_plan_input(t->plan, 0)->data = t->xbuf[0];
    qc_plan_free(t->plan);
    if (t->teacher) /* it may be reading the student's input buffer */
        qc_plan_input(t->teacher, 0)->data = t->teacher_x;
    qc_plan_free(t->teacher);
    qc_free(t->specs);
    qc_dataset_free(t->learn);
    qc_dataset_free(t->valid);
    qc_dataset_free(t->test);
    qc_data_cfg_free(t->dcfg);
    qc_free(t->groups);
    qc_free(t->so);
    if (t->own_xbuf1 && t->xbuf[1])
        qc_backend_release(t->be, t->xbuf[1]);
    if (t->dev_labels[0])
        qc_backend_release(t->be, t->dev_labels[0]);
    if (t->dev_labels[1] && t->dev_labels[1] != t->dev_labels[0])
        qc_backend_release(t->be, t->dev_labels[1]);
    if (t->dev_stats)
        qc_backend_release(t->be, t->dev_stats);
    qc_grad_sums_free(t->be, &t->grad_sums);
    qc_free(t->x);
    qc_free(t->labels);
    qc_free(t->perm);
    qc_free(t->best);
    qc_free(t->host_state);
    qc_free(t->host_opt);
    qc_free(t->host_grads);
}

enum qc_status qc_trainer_new(struct qc_graph *g, const struct qc_recipe *r,
                              struct qc_backend *be, const struct qc_train_opts *o,
                              struct qc_trainer **out)
{
    struct qc_trainer *t;
    enum qc_status st;

    *out = NULL;
    qc_interrupt_install();   /* a signal during setup stops at the first batch */
    t = qc_calloc(1, sizeof(*t));
    if (!t)
        return QC_ERR_NOMEM;
    t->g = g;
    t->r = r;
    t->be = be;
    t->o = o;
    t->comm = o->comm;
    t->best_acc = -1.0;
    st = setup(t);
    if (st == QC_OK)
        st = learn_set_fits_batch(t);
    if (st == QC_OK && o->resume)
        st = load_checkpoint(t, &t->pos);
    if (st != QC_OK) {
        qc_trainer_free(t);
        return st;
    }
    *out = t;
    return QC_OK;
}

void qc_trainer_free(struct qc_trainer *t)
{
    if (!t)
        return;
    if (t->log)
        fclose(t->log);
    teardown(t);
    qc_free(t);
}

int qc_trainer_n_quant(const struct qc_trainer *t)
{
    return t->n_specs;
}

bool qc_trainer_integer(const struct qc_trainer *t)
{
    return t->integer;
}

int qc_trainer_n_folded_bn(const struct qc_trainer *t)
{
    return t->n_folded_bn;
}

bool qc_trainer_has_test(const struct qc_trainer *t)
{
    return t->test != NULL;
}

struct qc_plan *qc_trainer_plan(struct qc_trainer *t)
{
    return (t)->plan;
}

enum qc_status qc_trainer_calibrate(struct qc_trainer *t)
{
    return calibrate(t);
}

enum qc_status qc_trainer_eval_test(struct qc_trainer *t, const char *what, double *acc,
                                    struct qc_confusion *conf)
{
    return evaluate_split(t, t->test, QC_SPLIT_TEST, what, acc, conf);
}

enum qc_status qc_trainer_eval_graph(struct qc_trainer *t, const char *what, double *acc,
                                     struct qc_confusion *conf)
{
    return evaluate_graph(t, what, acc, conf);
}

/* Data parallelism: how the gradients were averaged, one note (the check
 * that the buckets are used: tests/test_mpi.sh). */
static void note_averages(const struct qc_trainer *t)
{
    char text[256];
    struct qc_event ev = { .kind = QC_EVENT_NOTE, .phase = QC_PHASE_TRAIN, .text = text };
    if (qc_comm_size(t->comm) <= 1 || t->n_averaged == 0)
        return;
    if (t->buckets) {
        int64_t early, started = qc_grad_buckets_started(t->buckets, &early);
        snprintf(text, sizeof(text),
                 "gradients averaged over %d ranks in %d buckets (AllReduceBucketKB=%lld): "
                 "%lld all-reduces in %lld steps, %lld started during the backward",
                 qc_comm_size(t->comm), qc_grad_buckets_count(t->buckets), (long long)t->bucket_kb,
                 (long long)started, (long long)t->n_averaged, (long long)early);
    } else
        snprintf(text, sizeof(text),
                 "gradients averaged over %d ranks by one all-reduce after each backward "
                 "(AllReduceBucketKB=%lld): %lld steps",
                 qc_comm_size(t->comm), (long long)t->bucket_kb, (long long)t->n_averaged);
    qc_emit(&t->o->progress, &ev);
}

enum qc_status qc_trainer_run(struct qc_trainer *t, struct qc_train_stats *stats)
{
    const struct qc_train_opts *o = t->o;
    enum qc_status st;

    memset(stats, 0, sizeof(*stats));
    stats->valid_best = -1.0;
    if (o->log && qc_comm_rank(t->comm) == 0) {
        t->log = fopen(o->log, "w");
        if (!t->log || fprintf(t->log, "epoch,batch,samples,loss,accuracy,lr\n") < 0) {
            qc_log_error("%s: cannot write the training log: %s", o->log, strerror(errno));
            return QC_ERR_IO;
        }
    }
    st = run_epochs(t, &t->pos, stats);
    if (st == QC_OK)
        note_averages(t);
    if (st == QC_OK && o->keep_best && t->has_best)
        st = qc_backend_upload(t->be, qc_plan_state(t->plan), t->best,
                               (size_t)qc_plan_n_state(t->plan) * sizeof(float));
    stats->valid_best = t->has_best ? t->best_acc : -1.0;
    stats->best_epoch = t->best_epoch;
    if (t->log) {
        int rc = fclose(t->log);
        t->log = NULL;
        if (rc != 0 && st == QC_OK) {
            qc_log_error("%s: cannot write the training log: %s", o->log, strerror(errno));
            st = QC_ERR_IO;
        }
    }
    return st;
}

enum qc_status qc_trainer_store(struct qc_trainer *t)
{
    return qc_plan_store_params(t->plan, t->g);
}
