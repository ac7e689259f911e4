/*
 * train_kernels.h - the training arithmetic outside the op kernels, as
 * backend kernels called by id: the SAT and LSQ quantizers, the optimizer
 * update, the softmax cross-entropy loss.  qc_backend_run (backend.h) runs
 * kernel `id` with a pointer to its argument struct, declared here beside the
 * id; the CPU backend implements each id in cpu_quant.c, cpu_solver.c and
 * cpu_loss.c (host functions of cpu_train.h), the CUDA backend in cuda.c
 * with the launchers of kernels/ (which include this header for the grids'
 * constants and the SAT mode).  The policy around them (quantizer specs,
 * calibration, solver configuration, learning-rate schedules, loss
 * bookkeeping) stays in quant/ and train/.
 *
 * On any backend every array and every learnable scalar (α, s) and its
 * gradient is a pointer into the backend's memory (qc_backend_alloc), so a
 * CUDA training step never copies them to the host.  The configuration
 * structs (cfg, u) are host memory, read during the call.  Formulas and
 * accumulation rules are those of the CPU functions of cpu_train.h.
 *
 * Self-contained (C and C++, no project includes): kernels/quant.cu
 * includes it.
 */
#ifndef QATCONV_SRC_BACKEND_TRAIN_KERNELS_H
#define QATCONV_SRC_BACKEND_TRAIN_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#define QC_QUANT_RANGE_MAX 65535
#define QC_SAT_ALPHA_MIN   1e-3f   /* CG-PACT α guard                                 */
#define QC_LSQ_STEP_MIN    1e-8f   /* LSQ step guard                                  */
#define QC_QUANT_NCHUNK    64      /* CPU reduction chunks (independent of threads)   */
/* Streaming loops (activations, cpu_zero) go parallel from this many elements, as
 * QC_PAR_MIN_STREAM in ops/op.h; tanh-bound SAT weight loops from QC_QUANT_PAR_MIN_TANH. */
#define QC_QUANT_PAR_MIN_STREAM ((int64_t)1 << 15)
#define QC_QUANT_PAR_MIN_TANH   ((int64_t)1 << 15)

/* Doubles of loss statistics QC_TK_SOFTMAX_XENT writes. */
#define QC_LOSS_NSTATS 3

/* ---- types the kernels take (their policy lives in quant/ and train/) -------------------- */

/* SAT weight QuantMode, as N2D2 defines it (formulas in cpu_train.h). */
enum qc_sat_mode {
    QC_SAT_DEFAULT = 0,
    QC_SAT_SYMMETRIC,
    QC_SAT_ASYMMETRIC,
    QC_SAT_FULLRANGE,
    QC_SAT_MODE_COUNT
};

struct qc_sat_wcfg {
    enum qc_sat_mode mode;
    int              range;           /* R                                          */
    bool             apply_quant;     /* ApplyQuantization                          */
    bool             apply_scaling;   /* ApplyScaling                               */
    int64_t          fanout;          /* F, used when apply_scaling                 */
};

/* What one SAT weight forward found; the backward and the export need it. */
struct qc_sat_wstate {
    float m;       /* max|tanh W|; 0 for an all-zero tensor (then Q = 0)          */
    float s;       /* SAT scale S; 1 when ApplyScaling=0 or when S would be 0/inf  */
    float scale;   /* Q = k·scale for quantized modes: 1/(R·S) or 1/(R'·S);
                      the float 1/S for the clamp stage (Q = r·scale)              */
    int   div;     /* R (DEFAULT, FULLRANGE) or R' (SYMMETRIC, ASYMMETRIC): k/div  */
};

enum qc_solver_type {
    QC_SOLVER_SGD,      /* "SGD"                                   */
    QC_SOLVER_ADAM,     /* "Adam" (also spelled "ADAM" in N2D2's docs) */
};

/*
 * Per-update scalars of an optimizer step, computed once per update by
 * qc_solver_prepare (train/solver.h) and shared by every parameter array of
 * the configuration; fill it only through qc_solver_prepare.
 */
struct qc_solver_update {
    enum qc_solver_type type;
    float lr;           /* qc_solver_lr(cfg, st->samples)                        */
    float scale;        /* ḡ = scale · grad                                      */
    float momentum;     /* SGD μ                                                 */
    float decay;        /* λ, applied to arrays with decays = true               */
    float beta1, beta2; /* Adam                                                  */
    float eps;          /* Adam ε                                                */
    float adam_step;    /* Adam: lr / (1 − β1^t)                                 */
    float adam_sbc2;    /* Adam: sqrt(1 − β2^t)                                  */
    float adam_c1;      /* Adam: 1 − β1, rounded once from double (as PyTorch)   */
    float adam_c2;      /* Adam: 1 − β2                                          */
};

/*
 * Per-channel layout of a weight tensor of n elements seen as [outer, nch, inner] (row-major):
 * element i belongs to channel c = (i / inner) % nch.  Conv: the output axis 0 (outer = 1);
 * ConvTranspose: axis 1 (outer = C_in); Gemm without transB and MatMul: the last axis
 * (inner = 1).  nch <= 1 (a zero-initialized struct) is one channel: per tensor.
 */
struct qc_channels {
    int64_t nch;   /* channels (the step vector's length); 0 or 1: per tensor */
    int64_t inner; /* elements after the channel axis                        */
};

/* ---- kernel ids and their arguments -------------------------------------------------------- */

enum qc_train_kernel {
    QC_TK_SAT_WEIGHT_FORWARD,  /* struct qc_tk_sat_weight_forward  */
    QC_TK_SAT_WEIGHT_BACKWARD, /* struct qc_tk_sat_weight_backward */
    QC_TK_SAT_ACT_FORWARD,     /* struct qc_tk_sat_act_forward     */
    QC_TK_SAT_ACT_BACKWARD,    /* struct qc_tk_sat_act_backward    */
    QC_TK_LSQ_FORWARD,         /* struct qc_tk_lsq_forward         */
    QC_TK_LSQ_BACKWARD,        /* struct qc_tk_lsq_backward        */
    QC_TK_LSQ_INIT_STEP,       /* struct qc_tk_lsq_init_step       */
    QC_TK_CLAMP_MIN,           /* struct qc_tk_clamp_min           */
    QC_TK_SOLVER_APPLY,        /* struct qc_tk_solver_apply        */
    QC_TK_SOFTMAX_XENT,        /* struct qc_tk_softmax_xent        */
    QC_TK_DISTILL_XENT,        /* struct qc_tk_distill_xent (CPU)  */
    QC_TK_COUNT
};

/* qc_sat_weight_forward (q may be NULL) and qc_sat_weight_image (k may be NULL; needs
 * cfg->apply_quant) in one pass; the state goes to *st (backend memory; ch.nch states per
 * channel, qc_sat_weight_run_ch), which the backward reads (download it for the export). */
struct qc_tk_sat_weight_forward {
    const struct qc_sat_wcfg *cfg;
    struct qc_channels ch;
    const float              *w;
    float                    *q;
    int32_t                  *k;
    int64_t                   n;
    struct qc_sat_wstate     *st;
};

/* qc_sat_weight_backward with the state of the forward: dw += ... */
struct qc_tk_sat_weight_backward {
    const struct qc_sat_wcfg   *cfg;
    struct qc_channels ch;
    const struct qc_sat_wstate *st;
    const float                *w, *dq;
    float                      *dw;
    int64_t                     n;
};

/* qc_sat_act_forward; alpha: one float of backend memory. */
struct qc_tk_sat_act_forward {
    const float *alpha;
    int          range;
    const float *x;
    float       *y;
    int64_t      n;
};

/* qc_sat_act_backward; dx may be NULL; *dalpha += ... (one float of backend memory). */
struct qc_tk_sat_act_backward {
    const float *alpha;
    int          range;
    const float *x, *dy;
    float       *dx;
    int64_t      n;
    float       *dalpha;
};

/* qc_lsq_forward_ch; step: ch.nch floats (one when ch.nch <= 1) of backend memory.
 * zero_point (optional, per tensor only): one float zf of backend memory, the asymmetric
 * quantizer's zero point z = qc_lsq_zero_point(zf, qn, qp) (qc_lsq_forward_zp); NULL: z = 0. */
struct qc_tk_lsq_forward {
    const float *step;
    struct qc_channels ch;
    int          qn, qp;
    const float *x;
    float       *y;
    int64_t      n;
    const float *zero_point;
};

/* qc_lsq_backward_ch; g by value (the same for every channel: N_c = n/nch), dx may be
 * NULL; dstep[c] += ... (ch.nch floats, one when ch.nch <= 1, of backend memory). */
struct qc_tk_lsq_backward {
    const float *step;
    struct qc_channels ch;
    int          qn, qp;
    double       g;
    const float *x, *dy;
    float       *dx;
    int64_t      n;
    float       *dstep;
    const float *zero_point; /* optional zf as in qc_tk_lsq_forward (qc_lsq_backward_zp) */
    float *dzero_point;      /* with zero_point: *dzero_point += ... (NULL: z frozen)   */
};

/* step[c] = qc_lsq_init_step over channel c (qc_lsq_init_step_ch; ch.nch floats, one when
 * ch.nch <= 1, of backend memory). */
struct qc_tk_lsq_init_step {
    const float *x;
    struct qc_channels ch;
    int64_t      n;
    int          qp;
    float       *step;
    /* optional (per tensor only): the asymmetric quantizer's min/max initialisation
     * (qc_lsq_init_zero_point): *zero_point = zf from the batch's [min, max], and *step
     * = (max − min)/(qn + qp) unless keep_step; NULL: the step initialisation above. */
    float *zero_point;
    int qn;
    bool keep_step;
};

/* p[i] = max(p[i], lo) (NaN stays NaN) over n floats: the α guard (lo = QC_SAT_ALPHA_MIN)
 * and the LSQ step guard (QC_LSQ_STEP_MIN) after a solver update. */
struct qc_tk_clamp_min {
    float  *p;
    float   lo;
    int64_t n;
};

/* qc_solver_apply on n parameters (state: n · qc_solver_state_per_elem floats). */
struct qc_tk_solver_apply {
    const struct qc_solver_update *u;
    float                         *theta;
    const float                   *grad;
    float                         *state;
    int64_t                        n;
    bool                           decays;
};

/* Softmax cross-entropy on b×classes logits z with labels[b] (both backend memory):
 * dz = scale·(softmax(z) − onehot) (written); stats (backend memory, QC_LOSS_NSTATS
 * doubles, written, not accumulated): [0] Σ loss, [1] rows whose first maximum is the
 * label, [2] labels outside [0, classes) (their rows get dz = 0 and no loss on CUDA; the
 * CPU kernel fails with QC_ERR_DATA instead; the caller reports them as bad data). */
struct qc_tk_softmax_xent {
    const float   *z;
    const int32_t *labels;
    int64_t        b, classes;
    float          scale;
    float         *dz;
    double        *stats;
};

/* Distillation (cpu_train.h's qc_loss_distill_xent): the softmax cross-entropy
 * above mixed with the KL divergence from the teacher's logits at temperature T:
 * dz = scale·((1−λ)·(softmax(z) − onehot) + λ·T·(softmax(z/T) − softmax(teacher/T)));
 * stats as qc_tk_softmax_xent's, [0] the mixed loss.  The CPU backend only (the
 * trainer refuses --distill on a device backend). */
struct qc_tk_distill_xent {
    const float *z, *teacher;
    const int32_t *labels;
    int64_t b, classes;
    float temperature, weight, scale;
    float *dz;
    double *stats;
};

#endif
