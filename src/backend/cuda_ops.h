/*
 * cuda_ops.h - the CUDA backend's quantizer and optimizer entry points for C
 * code (defined in cuda.c, built only with HAVE_CUDA).  Each is the device
 * twin of a CPU function of src/quant/quant.h or src/train/solver.h, with
 * the same formulas and accumulation rules; all array and scalar pointers are
 * DEVICE pointers (from be->ops->alloc), and learnable scalars (α, s) and
 * their gradients stay on the device, so a training step needs no
 * device→host copy.  Calls run in order on the default stream and do not
 * synchronise (be->ops->sync or a download does).  `be` must be a CUDA
 * backend.  A failing CUDA call logs one line naming it and returns
 * QC_ERR_BACKEND.
 *
 * Parity with the CPU (tests/cuda_parity.c): SAT activation, LSQ and the
 * solvers give bit-identical values and input gradients; SAT weights use the
 * device tanh, which may differ from the host's tanhf in the last bit; the
 * scalar-parameter gradients are sums in a different (fixed, deterministic)
 * order.
 */
#ifndef QATCONV_SRC_BACKEND_CUDA_OPS_H
#define QATCONV_SRC_BACKEND_CUDA_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/qc.h"
#include "quant/quant.h"
#include "train/solver.h"
#include "backend.h"

/* The CUDA backend's table (qc_backend_new("cuda") uses it; tests construct it
 * with qc_backend_new_ops, also in the CPU emulation of tests/cuda_emu). */
extern const struct qc_backend_ops qc_backend_cuda_ops;

/* The cuBLAS handle of a CUDA backend (a cublasHandle_t), for calls beyond
 * be->ops->sgemm (strided-batched products).  Every kernel and cuBLAS call
 * of a step runs on the legacy default stream, in issue order. */
void *qc_cuda_blas_handle(struct qc_backend *be);

/* The number of CUDA devices, without logging: 0 when the driver or runtime finds none or
 * fails (tests use it to skip). */
int qc_cuda_device_count(void);

/* cuBLAS math mode of `be`: TF32 tensor cores when allow (--tf32), full float32 otherwise
 * (the default set at init). */
enum qc_status qc_cuda_set_tf32(struct qc_backend *be, bool allow);

/* qc_sat_weight_forward (q may be NULL) and qc_sat_weight_image (k may be NULL) in one call;
 * the state goes to *dstate, one struct qc_sat_wstate in DEVICE memory that the backward
 * reads (download it for the export). */
enum qc_status qc_cuda_sat_weight_forward(struct qc_backend *be, const struct qc_sat_wcfg *cfg,
                                          const float *w, float *q, int32_t *k, int64_t n,
                                          struct qc_sat_wstate *dstate);

/* qc_sat_weight_backward with the device state of the forward: dw += ... */
enum qc_status qc_cuda_sat_weight_backward(struct qc_backend *be,
                                           const struct qc_sat_wcfg *cfg,
                                           const struct qc_sat_wstate *dstate, const float *w,
                                           const float *dq, float *dw, int64_t n);

/* qc_sat_act_forward / _backward; alpha and dalpha: one device float each. */
enum qc_status qc_cuda_sat_act_forward(struct qc_backend *be, const float *alpha, int range,
                                       const float *x, float *y, int64_t n);
enum qc_status qc_cuda_sat_act_backward(struct qc_backend *be, const float *alpha, int range,
                                        const float *x, const float *dy, float *dx, int64_t n,
                                        float *dalpha);

/* qc_lsq_forward / _backward; step and dstep: one device float each, g by value. */
enum qc_status qc_cuda_lsq_forward(struct qc_backend *be, const float *step, int qn, int qp,
                                   const float *x, float *y, int64_t n);
enum qc_status qc_cuda_lsq_backward(struct qc_backend *be, const float *step, int qn, int qp,
                                    double g, const float *x, const float *dy, float *dx,
                                    int64_t n, float *dstep);

/* *step = qc_lsq_init_step(x, n, qp) (one device float). */
enum qc_status qc_cuda_lsq_init_step(struct qc_backend *be, const float *x, int64_t n, int qp,
                                     float *step);

/* qc_loss_softmax_xent on the device: dz written, stats[QC_LOSS_NSTATS] (device doubles) as
 * struct qc_backend_train's loss_softmax_xent. */
enum qc_status qc_cuda_softmax_xent(struct qc_backend *be, const float *z,
                                    const int32_t *labels, int64_t b, int64_t classes,
                                    float scale, float *dz, double *stats);

/* p[i] = max(p[i], lo) over n device floats: qc_sat_alpha_clamp (lo = QC_SAT_ALPHA_MIN) and
 * qc_lsq_step_clamp (QC_LSQ_STEP_MIN) after a solver update. */
enum qc_status qc_cuda_clamp_min(struct qc_backend *be, float *p, float lo, int64_t n);

/* qc_solver_apply on device arrays (state: n·qc_solver_state_per_elem floats). */
enum qc_status qc_cuda_solver_apply(struct qc_backend *be, const struct qc_solver_update *u,
                                    float *theta, const float *grad, float *state, int64_t n,
                                    bool decays);

#endif
