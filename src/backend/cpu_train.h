/*
 * cpu_train.h - the CPU implementations of the training kernels of
 * train_kernels.h, as host functions over flat float arrays: SAT weights
 * (DoReFa tanh normalisation + optional scale adjustment), SAT activations
 * (CG-PACT, learnable clip α) and LSQ (learnable step s) as N2D2 defines
 * them (formulas below), the SGD / Adam update and the softmax cross-entropy.  The
 * CPU backend runs its kernel ids with them (cpu.c); the exporter calls the
 * *_image functions for the integer weights, and the formula tests call
 * them directly.  Backends and kernels/ give the same results (CUDA: see
 * tests/cuda_parity.c).
 *
 * Conventions shared by the quantizers:
 * - R is the Range (number of steps; R+1 levels for unsigned and SAT Default
 *   grids), 1 <= R <= QC_QUANT_RANGE_MAX.
 * - rne = round half to even (rintf in the default rounding mode).
 * - Every fake-quant output is computed as (float)k * scale, with k the
 *   integer level and scale ONE float (struct qc_sat_wstate.scale,
 *   qc_sat_act_scale(), the LSQ step s).  The integer images returned for
 *   export therefore reproduce the fake-quant values bit for bit: q * scale,
 *   evaluated in float as DequantizeLinear does, == the training value.
 * - Backward functions ACCUMULATE (+=) into dx / dW and into the scalar
 *   parameter gradient; a NULL dx skips the input gradient.  They return true
 *   gradients (the solver subtracts).
 * - Deterministic for any thread count: element-wise loops are split with
 *   static OpenMP schedules, and every reduction sums in double over
 *   QC_QUANT_NCHUNK fixed chunks (boundaries depend on n only) combined in
 *   chunk order, so results do not depend on the number of threads.
 *   `threads` <= 1 runs serially.
 */
#ifndef QATCONV_SRC_BACKEND_CPU_TRAIN_H
#define QATCONV_SRC_BACKEND_CPU_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "util/qc.h"
#include "train_kernels.h"

/* ---- SAT weights (cpu_quant.c) ----------------------------------------------------------- */

/*
 * QuantMode (enum qc_sat_mode).  With t = tanh(W), m = max|t|, r = t/m ∈ [−1, 1]:
 *   DEFAULT     u = (r+1)/2, j = rne(R·u) ∈ [0, R], Q = 2j/R − 1.  R+1 levels; for odd R no
 *               zero level.  Integer image k = 2j − R (same parity as R), Q = k/R.
 *   FULLRANGE   as DEFAULT but u' = (1 + 0.9998/R)·u − 0.4999/R replaces u, so the two end
 *               levels get bins as wide as the inner ones.  Same levels and image as DEFAULT.
 *   SYMMETRIC   R' = floor(R/2), k = rne(R'·r) ∈ [−R', R'], Q = k/R'.  2R'+1 levels with 0
 *               (R = 255: int8 without −128).
 *   ASYMMETRIC  R' = floor(R/2), p = (1 + 1/(2R'))·r − 1/(2R') ∈ [−1 − 1/R', 1],
 *               k = rne(R'·p) ∈ [−R'−1, R'], Q = k/R' (R = 255: the full int8 range).
 * R = 1 leaves R' = 0 in SYMMETRIC and ASYMMETRIC (N2D2 divides by zero); here both fall back
 * to the binary DEFAULT grid {−1, +1}, the only two-level grid symmetric about 0.
 *
 * ApplyQuantization=0 (clamp stage): Q = r for DEFAULT, FULLRANGE and SYMMETRIC; Q = p for
 * ASYMMETRIC (N2D2's mode 5; R' = floor(R/2), R' = 0 treated as DEFAULT).  No integer image.
 *
 * ApplyScaling=1: Q ← Q/S, S = sqrt(F · var_unbiased(Q)), F given by the caller (kH·kW·C_out
 * for Conv, C_out for Fc, summed over the inputs of a multi-input cell as N2D2 does).
 * Every Q equal (var 0; N2D2 divides by zero): S = sqrt(F · mean(Q²)), the same 1/F target
 * on the second moment, so a constant W gives |Q| = 1/sqrt(F) (not 1); S = 1 if Q = 0 or N = 1.
 */

/* Integer level k of one normalised value r = t/m ∈ [−1, 1] (cfg->apply_quant must be
 * set).  The forward uses exactly this; exposed for tests and other backends. */
int32_t qc_sat_weight_level(const struct qc_sat_wcfg *cfg, float r);

/* Forward over N weights: Q from W, and the state.  q may be NULL (state only).
 * Q_i = k_i · st->scale (quantized) or r_i · st->scale (clamp stage), 0 when m = 0. */
void qc_sat_weight_forward(const struct qc_sat_wcfg *cfg, const float *w, float *q, int64_t n,
                           int threads, struct qc_sat_wstate *st);

/* dW_i += dQ_i · c · (1 − t_i²) / (m · S), t = tanh(W), with m, S from `st` held constant
 * (no gradient through max|tanh| or the variance) and rounding straight-through.
 * c = 1 + 0.9998/R for FULLRANGE with ApplyQuantization=1, 1 + 1/(2R') for ASYMMETRIC
 * (R' >= 1, both stages), 1 otherwise: the derivative of the pre-rounding expression.
 * m = 0 (all-zero W) uses m = 1 so a zero-filled layer can start learning. */
void qc_sat_weight_backward(const struct qc_sat_wcfg *cfg, const struct qc_sat_wstate *st,
                            const float *w, const float *dq, float *dw, int64_t n, int threads);

/* Export: the integer image k_i of each weight (recomputed from W exactly as the forward
 * does) and the per-tensor scale, with k_i · scale == Q_i bit for bit.  Needs
 * cfg->apply_quant.  DEFAULT/FULLRANGE: k ∈ odd-or-even integers of R's parity in [−R, R],
 * scale 1/(R·S); SYMMETRIC: [−R', R'], ASYMMETRIC: [−R'−1, R'], scale 1/(R'·S). */
void qc_sat_weight_image(const struct qc_sat_wcfg *cfg, const float *w, int32_t *k, int64_t n,
                         int threads, struct qc_sat_wstate *st);

/* Forward and image in one pass (q and k may each be NULL; k needs cfg->apply_quant):
 * the CPU kernel of QC_TK_SAT_WEIGHT_FORWARD. */
void qc_sat_weight_run(const struct qc_sat_wcfg *cfg, const float *w, float *q, int32_t *k,
                       int64_t n, int threads, struct qc_sat_wstate *st);

/* Per output channel (struct qc_channels, train_kernels.h; QWeight.PerChannel=1): the
 * forward / image and the backward above on each channel's elements, m_c = max_{i∈c}|t_i|
 * and S_c = sqrt(F · var_unbiased(Q_c)) per channel, st[c] the state of channel c (ch.nch
 * states; one when ch.nch <= 1, the per-tensor functions).  n must be a whole number of
 * [nch, inner] blocks.  QC_ERR_NOMEM when a layout with outer > 1 cannot get its
 * channel-sized buffer. */
enum qc_status qc_sat_weight_run_ch(const struct qc_sat_wcfg *cfg, struct qc_channels ch,
                                    const float *w, float *q, int32_t *k, int64_t n, int threads,
                                    struct qc_sat_wstate *st);
enum qc_status qc_sat_weight_backward_ch(const struct qc_sat_wcfg *cfg, struct qc_channels ch,
                                         const struct qc_sat_wstate *st, const float *w,
                                         const float *dq, float *dw, int64_t n, int threads);

/* ---- SAT activations (CG-PACT; cpu_quant.c) ---------------------------------------------- */

/* The α the kernels use: max(α, QC_SAT_ALPHA_MIN) (NaN stays NaN).  The kernels apply it
 * to their argument; the caller also clamps the learnable α (qc_sat_alpha_clamp in
 * quant/quant.h, QC_TK_CLAMP_MIN on a backend) after each solver update, so the stored α
 * never goes below the guard either. */
float qc_sat_alpha_used(float alpha);

/* Step of the activation grid: a/R, a = qc_sat_alpha_used(α).  The export's
 * QuantizeLinear/DequantizeLinear scale must be this float. */
float qc_sat_act_scale(float alpha, int range);

/* y = a·rne(R·clip(x,0,a)/a)/R, computed as y = j·h with h = qc_sat_act_scale(),
 * j = min(max(rne(x/h), 0), R): the QuantizeLinear(h, uint8) → Clip(0,R) →
 * DequantizeLinear arithmetic of the export.  In place (y == x) is allowed. */
void qc_sat_act_forward(float alpha, int range, const float *x, float *y, int64_t n,
                        int threads);

/* From the saved input x (before quantization):
 *   dx_i += dy_i · [0 < x_i ≤ a]                         (dx may be NULL)
 *   dα   += Σ dy_i · (1 if x_i ≥ a else (j_i/R − q_i)),  q = clip(x,0,a)/a, j as in forward
 * (x ≤ 0 gives q = j = 0: no contribution).  The α gradient is that of the used value a,
 * passed straight through the guard. */
void qc_sat_act_backward(float alpha, int range, const float *x, const float *dy, float *dx,
                         int64_t n, int threads, float *dalpha);

/* ---- LSQ (cpu_quant.c) ------------------------------------------------------------------- */

/* max(s, QC_LSQ_STEP_MIN) (NaN stays NaN). */
float qc_lsq_step_used(float s);

/* s0 = 2·mean|x|/sqrt(Qp) (Qp = 0 taken as 1), guarded by QC_LSQ_STEP_MIN. */
float qc_lsq_init_step(const float *x, int64_t n, int qp, int threads);

/* v = x/s, y = rne(clamp(v, −qn, qp))·s, s = qc_lsq_step_used(step).  In place allowed. */
void qc_lsq_forward(float step, int qn, int qp, const float *x, float *y, int64_t n,
                    int threads);

/* From the saved input x:
 *   dx_i += dy_i · [−qn < v_i < qp]   (both ends excluded; dx may be NULL)
 *   ds   += g · Σ dy_i · (−qn if v_i ≤ −qn, qp if v_i ≥ qp, else rne(v_i) − v_i)
 * The step gradient is that of the used (guarded) step. */
void qc_lsq_backward(float step, int qn, int qp, double g, const float *x, const float *dy,
                     float *dx, int64_t n, int threads, float *dstep);

/* Export: k_i = rne(clamp(x_i/s, −qn, qp)); k_i · s == forward value bit for bit. */
void qc_lsq_image(float step, int qn, int qp, const float *x, int32_t *k, int64_t n,
                  int threads);

/* Per output channel (struct qc_channels, train_kernels.h): one step s_c per channel, every
 * formula above applied to the elements of channel c with s_c; ch.nch <= 1 is the per-tensor
 * function with step[0].  n must be a whole number of [nch, inner] blocks.
 *   init:     step[c] = 2·mean_{i∈c}|x_i|/sqrt(Qp), guarded
 *   backward: dstep[c] += g · Σ_{i∈c} (...), g = 1/sqrt(N_c·Qp) given by the caller */
void qc_lsq_init_step_ch(const float *x, struct qc_channels ch, int64_t n, int qp, int threads,
                         float *step);
void qc_lsq_forward_ch(const float *step, struct qc_channels ch, int qn, int qp, const float *x,
                       float *y, int64_t n, int threads);
void qc_lsq_backward_ch(const float *step, struct qc_channels ch, int qn, int qp, double g,
                        const float *x, const float *dy, float *dx, int64_t n, int threads,
                        float *dstep);
void qc_lsq_image_ch(const float *step, struct qc_channels ch, int qn, int qp, const float *x,
                     int32_t *k, int64_t n, int threads);

/* Asymmetric LSQ (QAct.ZeroPoint, per tensor): an integer zero point z on the levels
 * [−qn, qp] (activations: [0, R]), real value s·(q − z):
 *   y = s·(clamp(rne(x/s) + z, −qn, qp) − z) = rne(clamp(x/s, −qn − z, qp − z))·s,
 * i.e. the symmetric formulas above with the levels [−(qn + z), qp − z].
 * z = qc_lsq_zero_point(zf, qn, qp) = clamp(rne(zf), −qn, qp) (NaN: 0) of the learned
 * float zf. */
int qc_lsq_zero_point(float zf, int qn, int qp);
void qc_lsq_forward_zp(float step, float zf, int qn, int qp, const float *x, float *y, int64_t n,
                       int threads);
/* dx and ds as qc_lsq_backward on the shifted levels (the clipped values are s·(−qn − z) and
 * s·(qp − z)), and with rne(zf) straight through
 *   dzf += g · Σ dy_i · (−s if v_i ≤ −qn − z or v_i ≥ qp − z, else 0)
 * (dzf may be NULL: z frozen). */
void qc_lsq_backward_zp(float step, float zf, int qn, int qp, double g, const float *x,
                        const float *dy, float *dx, int64_t n, int threads, float *dstep,
                        float *dzf);
/* The min/max initialisation from x (NaN ignored): lo = min(min x, 0), hi = max(max x, 0)
 * (zero stays representable); unless keep_step *step = max((hi − lo)/(qn + qp),
 * QC_LSQ_STEP_MIN); *zf = clamp(rne(−qn − lo/s), −qn, qp) with s the (guarded) step. */
void qc_lsq_init_zero_point(const float *x, int64_t n, int qn, int qp, bool keep_step, int threads,
                            float *step, float *zf);

/* ---- optimizer update (cpu_solver.c) ------------------------------------------------------ */

/*
 * Updates n parameters theta in place from their accumulated gradients grad
 * (read only) and optimizer state (n · qc_solver_state_per_elem floats,
 * zero before the first update, updated in place).  decays = false leaves
 * out the weight decay λ for this array (e.g. biases, BN, quantizer
 * parameters: the caller decides).  With g = scale·grad + λ·θ (λ = 0 when
 * !decays):
 *   SGD  (state = v[n]):        v ← μ·v − lr·g;  θ ← θ + v
 *        i.e. N2D2's v ← μ·v − lr·ḡ − λ·lr·θ.  For a constant lr this
 *        equals torch.optim.SGD(lr, momentum=μ, weight_decay=λ, dampening=0,
 *        nesterov=False), whose buffer b = −v/lr; when lr changes, the
 *        velocity keeps the old rate (N2D2's form) where PyTorch's buffer
 *        is rescaled.
 *   Adam (state = m[n], v[n]):  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *        θ ← θ − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + ε)
 *        as torch.optim.Adam(lr, betas, eps, weight_decay=λ, amsgrad=False)
 *        (L2 decay added to the gradient, not AdamW).
 * Element-wise (no reductions), so bit-identical for any thread count; runs
 * on `threads` OpenMP threads when n >= QC_PAR_MIN_STREAM.  No allocation;
 * cannot fail.
 */
void qc_solver_apply(const struct qc_solver_update *u, float *theta, const float *grad,
                     float *state, int64_t n, bool decays, int threads);

/* ---- loss (cpu_loss.c) -------------------------------------------------------------------- */

/*
 * For logits z [b, c] (row-major) and labels y[b] in [0, c):
 *   loss_i = logsumexp(z_i) − z_i[y_i]           (summed into *loss_sum, double)
 *   dz_i   = scale · (softmax(z_i) − onehot(y_i))  (written, not accumulated)
 * With scale = 1/b, dz is the gradient of the batch-mean loss.  *correct
 * counts rows whose first maximum is the label.  A label outside [0, c) is
 * QC_ERR_DATA (logged).  dz may be NULL (evaluation).
 */
enum qc_status qc_loss_softmax_xent(const float *z, const int32_t *labels, int64_t b,
                                    int64_t c, float scale, float *dz, double *loss_sum,
                                    int64_t *correct);

/*
 * Knowledge distillation from teacher logits t [b, c] at temperature T > 0
 * with weight λ in [0, 1] (Hinton et al.'s loss), p = softmax(z),
 * p^T = softmax(z/T), q^T = softmax(t/T):
 *   loss_i = (1−λ)·CE(z_i, y_i) + λ·T²·KL(q^T_i ‖ p^T_i)       (summed, double)
 *   dz_i   = scale · ((1−λ)·(p_i − onehot(y_i)) + λ·T·(p^T_i − q^T_i))
 * λ = 0 is qc_loss_softmax_xent.  *correct, labels and dz as there.
 */
enum qc_status qc_loss_distill_xent(const float *z, const float *teacher, const int32_t *labels,
                                    int64_t b, int64_t c, float temperature, float weight,
                                    float scale, float *dz, double *loss_sum, int64_t *correct);

/* Index of the first maximum of x[0..n). */
int64_t qc_argmax(const float *x, int64_t n);

#endif
