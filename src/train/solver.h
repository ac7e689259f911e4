/*
 * solver.h - optimizers of the training engine: SGD with momentum and Adam,
 * learning-rate policies, gradient accumulation (IterationSize), and their
 * configuration from a recipe (qatconv-recipe(5), SOLVER KEYS).  The element-wise
 * update itself is a backend kernel (QC_TK_SOLVER_APPLY of
 * src/backend/train_kernels.h; the CPU one is qc_solver_apply of
 * src/backend/cpu_train.h, formulas there).
 *
 * The module owns no memory.  The caller (the training loop) keeps, per
 * parameter array of n floats, a flat optimizer-state array of
 * n · qc_solver_state_per_elem(type) floats, zeroed once before the first
 * update, and per solver configuration one struct qc_solver_step (three
 * integers that a checkpoint saves as they are).
 *
 * Gradients are TRUE gradients (d loss / d θ); the update subtracts them.
 * (N2D2 stores negated gradients and adds; the results are the same.)
 *
 * One training step, for each distinct solver configuration `cfg` with its
 * counter `st`:
 *
 *     if (qc_solver_new_iteration(&st)) zero the gradients;
 *     forward + backward of one batch of B samples (gradients accumulate);
 *     if (qc_solver_batch_done(&cfg, &st)) {           every I-th batch
 *         struct qc_solver_update u;
 *         qc_solver_prepare(&cfg, &st, 1.0 / cfg.iteration_size, &u);
 *         for each parameter array p using cfg:
 *             run QC_TK_SOLVER_APPLY with u on p->data, p->grad, p->state, p->n,
 *             p->decays (qc_backend_run; on the host: qc_solver_apply of
 *             src/backend/cpu_train.h, with the update formulas);
 *         qc_solver_advance(&st, B * cfg.iteration_size);
 *     }
 *
 * Gradient scale: the kernels use ḡ = scale · grad with the `scale` given to
 * qc_solver_prepare; the CALLER chooses it so that ḡ is the mean gradient
 * over the effective batch of B·I samples: scale = 1/I when each backward
 * produces the gradient of the batch-MEAN loss (the usual case), 1/(B·I) when
 * it produces the gradient of the batch-SUM loss.  Decay is not scaled.
 *
 * Learning-rate clock: `samples` is the number of training samples consumed
 * by the updates applied BEFORE the current one (N2D2: step 0 at the first
 * update), i.e. st->samples; MaxIterations, LearningRateStepSize and
 * WarmUpDuration are counted in samples, as in N2D2 with
 * LearningRateStepSize=1 (see qc_solver_lr for the formulas).
 *
 * Differences from N2D2 (deliberate): Adam honours IterationSize and the
 * learning-rate policies like SGD does (N2D2's Adam ignores both); the
 * cosine never rises again after MaxIterations; the warm-up multiplies the
 * policy's rate instead of delaying the cosine; Clamping, PolyakMomentum,
 * MinDecay and the Exponential/InvT/Poly/Inv policies are not implemented
 * (the recipe schema rejects them anyway).
 *
 * Determinism: the update kernels are element-wise (no reductions), so
 * results do not depend on the thread count.
 */
#ifndef QATCONV_SRC_TRAIN_SOLVER_H
#define QATCONV_SRC_TRAIN_SOLVER_H

#include <stdbool.h>
#include <stdint.h>

#include "util/qc.h"
#include "backend/cpu_train.h"
#include "backend/train_kernels.h"

struct qc_recipe;

/* enum qc_solver_type (SGD, Adam) and struct qc_solver_update (the per-update scalars)
 * are the optimizer kernel's argument types: src/backend/train_kernels.h. */

enum qc_lr_policy {
    QC_LR_NONE,         /* "None": constant                        */
    QC_LR_STEP,         /* "StepDecay"                             */
    QC_LR_COSINE,       /* "CosineDecay"                           */
};

/*
 * A solver configuration.  Recipe key names (after "<prefix>.") and the
 * defaults set by qc_solver_cfg_default are in brackets; defaults are those of
 * N2D2's SGDSolver, plus its AdamSolver's for the Adam-only fields and the
 * Adam learning rate.
 */
struct qc_solver_cfg {
    enum qc_solver_type type;   /* "<prefix>" or "Solvers" [SGD]                     */
    double lr;                  /* LearningRate [0.01; Adam: 0.001]                  */
    double momentum;            /* Momentum μ in [0, 1] [0]                          */
    double decay;               /* Decay λ: L2 weight decay [0]                      */
    double beta1;               /* Beta1, Adam, in [0, 1) [0.9]                      */
    double beta2;               /* Beta2, Adam, in [0, 1) [0.999]                    */
    double eps;                 /* Epsilon, Adam [1e-8]                              */
    enum qc_lr_policy policy;   /* LearningRatePolicy [None]                         */
    int64_t step_size;          /* LearningRateStepSize, samples, >= 1 [1]           */
    double step_decay;          /* LearningRateDecay: StepDecay's factor [0.1]       */
    int64_t max_iterations;     /* MaxIterations, samples [0]; 0 with CosineDecay:
                                   the whole run (the training loop fills it in)     */
    int64_t warmup;             /* WarmUpDuration, samples; 0 = no warm-up [0]       */
    double warmup_frac;         /* WarmUpLRFrac: rate factor at sample 0, in [0, 1]
                                   [0: the warm-up starts from 0; N2D2 uses 0.25]    */
    int64_t iteration_size;     /* IterationSize I: batches per update, >= 1 [1]     */
};

/*
 * Progress of one solver configuration: what a checkpoint saves (three
 * int64 values, restore them verbatim).  Zero-initialise before training.
 */
struct qc_solver_step {
    int64_t updates;    /* updates applied so far (Adam's t is updates + 1)      */
    int64_t samples;    /* samples consumed by those updates: the LR clock       */
    int64_t pass;       /* batches accumulated since the last update, [0, I)     */
};

/* Fills *cfg with the defaults of `type` (listed in struct qc_solver_cfg). */
void qc_solver_cfg_default(struct qc_solver_cfg *cfg, enum qc_solver_type type);

/*
 * The effective configuration of solver `prefix` ("Solvers", "WeightsSolver",
 * "BiasSolver", "ScaleSolver", "QWeightSolver" or "QActSolver") for the node
 * whose recipe section is `node_section` (NULL: no node section, only the
 * global section applies).  Layers, later wins key by key:
 *   1. the defaults of the resolved type;
 *   2. the global section's Solvers.*;
 *   3. the node section's Solvers.*;
 *   4. the node section's <prefix>.* (when prefix is not "Solvers").
 * The type comes from the same layers' type keys: global "Solvers", node
 * "Solvers", node "<prefix>" (SGD when none is set; "SGD", "Adam", "ADAM",
 * case-insensitive).  The node section's inherited and ConfigSection keys
 * count as its own (recipe.h resolves them).
 * Values are checked again here (recipe.c validates node sections at load,
 * but not keys read from the global section, nor cross-key constraints):
 * Beta1/Beta2 < 1, WarmUpLRFrac in [0, 1].  A bad value logs "file:line: [section] key=value: expected ..."
 * and returns QC_ERR_RECIPE; *out is then unspecified.
 */
enum qc_status qc_solver_cfg_from_recipe(const struct qc_recipe *r, const char *node_section,
                                         const char *prefix, struct qc_solver_cfg *out);

/* "SGD" / "Adam" and "None" / "StepDecay" / "CosineDecay" (for reports). */
const char *qc_solver_type_name(enum qc_solver_type type);
const char *qc_lr_policy_name(enum qc_lr_policy policy);

/*
 * Learning rate after `samples` training samples (negative counts as 0):
 *   None:        LR
 *   StepDecay:   LR · LearningRateDecay^floor(samples / LearningRateStepSize)
 *   CosineDecay: LR · ½(1 + cos(π · min(samples, Max) / Max)), Max =
 *                MaxIterations: 0 at Max and for ever after (never rises)
 * then, when samples < W = WarmUpDuration, times the linear warm-up factor
 *   f + (1 − f) · samples / W,   f = WarmUpLRFrac (0 by default),
 * so with f = 0 the first update (samples = 0) has rate 0 (it only feeds the
 * momentum / Adam moments).
 */
double qc_solver_lr(const struct qc_solver_cfg *cfg, int64_t samples);

/* Floats of optimizer state per parameter element: SGD 1 (velocity v),
 * Adam 2 (first moment m, then second moment v; see qc_solver_apply). */
int qc_solver_state_per_elem(enum qc_solver_type type);

/* True when no batch has been accumulated since the last update: the caller
 * zeroes (or overwrites) gradients before this batch's backward. */
bool qc_solver_new_iteration(const struct qc_solver_step *st);

/* Counts one batch's backward; returns true (and resets st->pass) when
 * IterationSize batches are accumulated, i.e. when to update now. */
bool qc_solver_batch_done(const struct qc_solver_cfg *cfg, struct qc_solver_step *st);

/* Computes the scalars of the update number st->updates + 1 at
 * st->samples, with gradient scale `scale` (see the file comment). */
void qc_solver_prepare(const struct qc_solver_cfg *cfg, const struct qc_solver_step *st,
                       double scale, struct qc_solver_update *u);

/* Records an applied update that consumed `samples` samples (B · I). */
void qc_solver_advance(struct qc_solver_step *st, int64_t samples);

#endif
