/*
 * qc_kernels.h - C-callable launchers of qatconv's CUDA kernels.  Each
 * returns the cudaError_t of its launches as an int (0 = success), so C code
 * can check it without CUDA headers.  Launch geometry stays inside the .cu.
 *
 * Every launcher runs on the legacy default stream, so consecutive calls are
 * ordered with each other and with cudaMemcpy; none synchronises, so an error
 * inside a kernel shows up at the next synchronising call.  Pointers are
 * device pointers, except the scalar-by-value arguments.
 *
 * The quantizer launchers (kernels/quant.cu) have the semantics of the CPU
 * functions of src/backend/cpu_train.h, restated there; learnable scalars (α, s)
 * live in device memory and are read there, and their gradients accumulate
 * (+=) into device scalars, so a training step needs no device→host copy.
 * Reductions are deterministic: QC_K_NPART blocks over fixed contiguous parts
 * of the array (boundaries depend on n only), each summing in double in a
 * fixed tree order, then the parts added in part order by one thread.  They
 * need a caller-owned device workspace of QC_K_WORK_BYTES bytes, reused by
 * consecutive calls (the default stream orders them).
 */
#ifndef QATCONV_KERNELS_QC_KERNELS_H
#define QATCONV_KERNELS_QC_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QC_K_NPART      256                        /* reduction parts (blocks)       */
#define QC_K_WORK_BYTES (3 * QC_K_NPART * 8)       /* partial max + two double sums  */

/* Device image of struct qc_sat_wstate (src/backend/train_kernels.h): same fields, same order. */
struct qc_k_sat_wstate {
    float   m;       /* max|tanh W|                                            */
    float   s;       /* SAT scale S                                            */
    float   scale;   /* Q = k·scale (quantized) or r·scale (clamp stage)       */
    int32_t div;     /* R or R' (quantized), 1 (clamp stage)                   */
};

/* dst[i] = v for i < n, on the default stream. */
int qc_k_fill_f32(float *dst, float v, int64_t n);

/* p[i] = max(p[i], lo) (NaN stays NaN): the α / step guards after an update. */
int qc_k_clamp_min_f32(float *p, float lo, int64_t n);

/* ---- SAT weights (qc_sat_weight_forward / _image / _backward) ---------------------------- */

/* mode: enum qc_sat_mode as an int.  q (Q, n floats) and k (integer image, n int32) may each
 * be NULL; the state is always written to *st. */
int qc_k_sat_weight_forward(int mode, int range, int apply_quant, int apply_scaling,
                            int64_t fanout, const float *w, float *q, int32_t *k, int64_t n,
                            struct qc_k_sat_wstate *st, void *work);

/* dw[i] += dq[i]·c·(1 − tanh²(w[i]))/(m·S), m and S read from *st. */
int qc_k_sat_weight_backward(int mode, int range, int apply_quant, int apply_scaling,
                             const struct qc_k_sat_wstate *st, const float *w, const float *dq,
                             float *dw, int64_t n);

/* ---- SAT activations (CG-PACT; qc_sat_act_forward / _backward) -------------------------- */

/* alpha: one device float (the learnable α, guarded by QC_SAT_ALPHA_MIN here). */
int qc_k_sat_act_forward(const float *alpha, int range, const float *x, float *y, int64_t n);

/* dx may be NULL; *dalpha += Σ ... (one device float). */
int qc_k_sat_act_backward(const float *alpha, int range, const float *x, const float *dy,
                          float *dx, int64_t n, float *dalpha, void *work);

/* ---- LSQ (qc_lsq_forward / _backward) ---------------------------------------------------- */

/* step: one device float (the learnable s, guarded by QC_LSQ_STEP_MIN here). */
int qc_k_lsq_forward(const float *step, int qn, int qp, const float *x, float *y, int64_t n);

/* dx may be NULL; *dstep += (float)(g · Σ ...) (one device float). */
int qc_k_lsq_backward(const float *step, int qn, int qp, double g, const float *x,
                      const float *dy, float *dx, int64_t n, float *dstep, void *work);

/* *step = qc_lsq_init_step(x, n, qp): 2·mean|x|/sqrt(Qp), guarded (one device float). */
int qc_k_lsq_init_step(const float *x, int64_t n, int qp, float *step, void *work);

/* ---- per-channel SAT weights and LSQ (QWeight.PerChannel=1; the _ch functions of
 * src/backend/cpu_train.h) ----------------------------------------------------------------- */

/* Device image of struct qc_channels (src/backend/train_kernels.h): element i belongs to
 * channel (i / inner) % nch, every layout (outer = n/(nch·inner) ≥ 1).  Each launcher is one
 * launch for all channels (reductions: one block per channel, in a fixed order; no
 * workspace) and returns cudaErrorInvalidValue unless nch ≥ 1, inner ≥ 1 and nch·inner
 * divides n.  Parameters, states and gradients are per channel: step[c], st[c], dstep[c]. */
struct qc_k_channels {
    int64_t nch;
    int64_t inner;
};

int qc_k_sat_weight_forward_ch(int mode, int range, int apply_quant, int apply_scaling,
                               int64_t fanout, struct qc_k_channels ch, const float *w, float *q,
                               int32_t *k, int64_t n, struct qc_k_sat_wstate *st);
int qc_k_sat_weight_backward_ch(int mode, int range, int apply_quant, int apply_scaling,
                                struct qc_k_channels ch, const struct qc_k_sat_wstate *st,
                                const float *w, const float *dq, float *dw, int64_t n);
int qc_k_lsq_forward_ch(const float *step, struct qc_k_channels ch, int qn, int qp, const float *x,
                        float *y, int64_t n);
int qc_k_lsq_backward_ch(const float *step, struct qc_k_channels ch, int qn, int qp, double g,
                         const float *x, const float *dy, float *dx, int64_t n, float *dstep);
int qc_k_lsq_init_step_ch(const float *x, struct qc_k_channels ch, int64_t n, int qp, float *step);

/* Asymmetric LSQ (per tensor): zf one device float, the zero point z = clamp(rne(zf)):
 * qc_lsq_forward_zp, qc_lsq_backward_zp (dx, dzf may be NULL) and qc_lsq_init_zero_point. */
int qc_k_lsq_forward_zp(const float *step, const float *zf, int qn, int qp, const float *x,
                        float *y, int64_t n);
int qc_k_lsq_backward_zp(const float *step, const float *zf, int qn, int qp, double g,
                         const float *x, const float *dy, float *dx, int64_t n, float *dstep,
                         float *dzf, void *work);
int qc_k_lsq_init_zero_point(const float *x, int64_t n, int qn, int qp, int keep_step, float *step,
                             float *zf, void *work);

/* ---- loss (kernels/loss.cu; qc_loss_softmax_xent of src/backend/cpu_loss.c) ----------------- */

/* For logits z[b][c] and labels y[b] (device): dz = scale·(softmax(z_i) − onehot(y_i))
 * (written), rowbuf[2b] (device scratch, doubles) the per-row loss and hit, then
 * stats[0] = Σ loss, stats[1] = hits, stats[2] = labels outside [0, c) (their rows: dz 0,
 * no loss), summed in row order as on the CPU. */
int qc_k_softmax_xent(const float *z, const int32_t *y, int64_t b, int64_t c, float scale,
                      float *dz, double *rowbuf, double *stats);

/* ---- optimizers (kernels/optim.cu; qc_solver_apply of src/backend/cpu_solver.c) ---------- */

/* v ← μ·v − lr·(scale·grad + decay·θ);  θ ← θ + v */
int qc_k_sgd(float *theta, const float *grad, float *v, int64_t n, float momentum, float lr,
             float scale, float decay);

/* m ← β1·m + c1·g;  v ← β2·v + c2·g·g;  θ ← θ − step·m / (sqrt(v)/sbc2 + ε),
 * g = scale·grad + decay·θ (the fields of struct qc_solver_update). */
int qc_k_adam(float *theta, const float *grad, float *m, float *v, int64_t n, float beta1,
              float beta2, float c1, float c2, float step, float sbc2, float eps, float scale,
              float decay);

#ifdef __cplusplus
}
#endif

#endif
