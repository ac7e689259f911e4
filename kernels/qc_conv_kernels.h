/*
 * qc_conv_kernels.h - C-callable launchers of the convolution, matrix
 * product and batch normalization kernels (kernels/conv.cu, kernels/norm.cu)
 * that src/backend/cuda_conv.c drives around cuBLAS sgemm.  Like
 * qc_kernels.h: each returns the cudaError_t of its launches as an int
 * (0 = success), runs on the legacy default stream and never synchronises;
 * pointers are device pointers unless said otherwise (the geometry structs
 * are host structs passed by address and copied into the launch).
 *
 * Reductions are deterministic: each output value is summed by one block in
 * a fixed tree order, or by one thread in a fixed sequential order; no
 * atomics.
 */
#ifndef QATCONV_KERNELS_QC_CONV_KERNELS_H
#define QATCONV_KERNELS_QC_CONV_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A convolution over `batch` images (a chunk of the call's batch) as the
 * im2col kernels see it: x [batch, c_in, in...], y [batch, c_out, out...],
 * cg = c_in/group and mg = c_out/group channels per group, spatial arrays
 * (D, H, W) with unused leading axes 1 (kernel 1, stride 1, pad 0). */
struct qc_k_conv_geom {
    int64_t batch, c_in, c_out, cg, mg;
    int64_t in[3], out[3], kernel[3], stride[3], dilation[3], pad[3];
};

/* ---- convolution lowering (conv.cu) ------------------------------------------------------ */

/* col[(c*KV + kv), n*L + o] = x[n, grp*cg + c, i(o, kv)] (0 in the padding),
 * i = o*stride - pad + kv*dilation per axis: col is [cg*KV, batch*L]. */
int qc_k_im2col(const struct qc_k_conv_geom *g, const float *x, int64_t grp, float *col);

/* The adjoint of qc_k_im2col in gather form: every dx[n, grp*cg + c, i] adds
 * the col entries that read it, in row order (one thread per dx element). */
int qc_k_col2im_add(const struct qc_k_conv_geom *g, const float *col, int64_t grp, float *dx);

/* y[n, grp*mg + m, o] = ybuf[m, n*L + o] (+ bias[grp*mg + m] when bias). */
int qc_k_conv_scatter(const struct qc_k_conv_geom *g, const float *ybuf, const float *bias,
                      int64_t grp, float *y);

/* dyg[m, n*L + o] = dy[n, grp*mg + m, o]. */
int qc_k_conv_gather(const struct qc_k_conv_geom *g, const float *dy, int64_t grp,
                     float *dyg);

/* Depthwise Conv (cg == 1, output channel m reads input channel m / mg),
 * direct, with the CPU's per-element operation order:
 *   y[n,m,o]  = b[m] + sum_kv w[m,kv] * x[n, m/mg, i(o,kv)]   (bias may be NULL)
 *   dx[n,c,i] += sum_{m of c} sum_kv w[m,kv] * dy[n,m,o(i,kv)]
 *   dw[m,kv]  += sum_n sum_o dy[n,m,o] * x[n, m/mg, i(o,kv)]   (one block per (m,kv)) */
int qc_k_depthwise_forward(const struct qc_k_conv_geom *g, const float *x, const float *w,
                           const float *bias, float *y);
int qc_k_depthwise_backward_dx(const struct qc_k_conv_geom *g, const float *w,
                               const float *dy, float *dx);
int qc_k_depthwise_backward_dw(const struct qc_k_conv_geom *g, const float *x,
                               const float *dy, float *dw);

/* dst[ch] += (float)(sum over n < nb, k < inner of v[(n*c + ch)*inner + k]),
 * summed in double by one block per channel (bias gradients). */
int qc_k_channel_sum_add(const float *v, int64_t nb, int64_t c, int64_t inner, float *dst);

/* ---- Gemm helpers (conv.cu) -------------------------------------------------------------- */

/* y[i, j] = beta * c[i*rs + j*cs] over [m, n] (rs / cs 0 on C's broadcast axes). */
int qc_k_gemm_fill_c(float *y, const float *c, float beta, int64_t m, int64_t n, int64_t rs,
                     int64_t cs);

/* dc[r*rs + q*cs] += beta * dy[i, j] for every (i, j) of [m, n] mapping to C
 * element (r, q) of its [cr, cc], added one by one in row-major (i, j) order
 * as the CPU does.  Not for a scalar C (use qc_k_sum_scaled_add). */
int qc_k_gemm_dc(const float *dy, float beta, int64_t m, int64_t n, int64_t cr, int64_t cc,
                 int64_t rs, int64_t cs, float *dc);

/* dst[0] += beta * (float)(sum of v[0..n) in double), one block. */
int qc_k_sum_scaled_add(const float *v, int64_t n, float beta, float *dst);

/* ---- BatchNormalization (norm.cu) -------------------------------------------------------- */

/* Parts per channel of the per-channel reductions over m = N*inner values,
 * and the device workspace bytes the BatchNormalization launchers need
 * (c*parts*2 doubles, then 3*c floats); both depend on c and m only. */
int64_t qc_k_bn_parts(int64_t c, int64_t m);
int64_t qc_k_bn_work_bytes(int64_t c, int64_t m);

/* Training statistics of x [nb, c, inner]: mu_B = sum x / m, s2_B = sum (x -
 * mu_B)^2 / m (two passes, double sums), saved[0..c) = mu_B, saved[c..2c) =
 * istd = 1/sqrt(s2_B + eps); running = momentum*running + (1-momentum)*batch
 * in place (rvar takes the unbiased m/(m-1)*s2_B); out1/out2 (may be NULL)
 * get the updated running mean/var, out3/out4 mu_B and s2_B. */
int qc_k_bn_stats(const float *x, int64_t nb, int64_t c, int64_t inner, float eps,
                  float momentum, float *rmean, float *rvar, float *saved, float *out1,
                  float *out2, float *out3, float *out4, void *work);

/* y = a_c*x + b_c, a_c = scale_c*is_c, b_c = bias_c - mean_c*a_c, is_c =
 * disp_c (train: the saved istd) or 1/sqrtf(disp_c + eps) (disp = running var). */
int qc_k_bn_apply(int train, const float *x, float *y, int64_t nb, int64_t c, int64_t inner,
                  const float *mean, const float *disp, const float *scale, const float *bias,
                  float eps);

/* Backward (formula in norm.cu); mean/disp as for qc_k_bn_apply; dx, dscale,
 * dbias may each be NULL and are accumulated into. */
int qc_k_bn_backward(int train, const float *x, const float *dy, int64_t nb, int64_t c,
                     int64_t inner, const float *mean, const float *disp, const float *scale,
                     float eps, float *dx, float *dscale, float *dbias, void *work);

/* Synchronized BatchNorm (a data-parallel job's SyncBatchNorm, semantics of
 * src/ops/norm.c bn_batch_stats_sync and bn_backward_sync): the passes of
 * qc_k_bn_stats and qc_k_bn_backward, cut where the caller sums per-channel
 * totals over the ranks.  The workspace is qc_k_bn_sync_work_bytes (that of
 * qc_k_bn_stats, then 2*c doubles of totals: qc_k_bn_sync_totals, a device
 * pointer into work, whose first c (forward) or 2*c (backward) doubles the
 * caller sums over the ranks in place between the launches).  m = nb*inner
 * (this rank's values per channel), m_all the global count (Σ_ranks m).
 * Forward: qc_k_bn_sync_sums(x, NULL) (totals Σx), sum, qc_k_bn_sync_mean
 * (saved[0..c) = mu_B), qc_k_bn_sync_sums(x, saved) (totals Σ(x - mu_B)²),
 * sum, qc_k_bn_sync_finish (istd, running statistics, outputs as
 * qc_k_bn_stats).  Backward (training): qc_k_bn_sync_dsums (dscale, dbias
 * accumulate this rank's sums; totals Σdy, Σdy·(x - mu) interleaved per
 * channel), sum, qc_k_bn_sync_dx (dx accumulated). */
int64_t qc_k_bn_sync_work_bytes(int64_t c, int64_t m);
double *qc_k_bn_sync_totals(void *work, int64_t c, int64_t m);
int qc_k_bn_sync_sums(const float *x, const float *mu, int64_t nb, int64_t c, int64_t inner,
                      void *work);
int qc_k_bn_sync_mean(int64_t c, int64_t m, int64_t m_all, float *saved, void *work);
int qc_k_bn_sync_finish(int64_t c, int64_t m, int64_t m_all, float eps, float momentum,
                        float *rmean, float *rvar, float *saved, float *out1, float *out2,
                        float *out3, float *out4, void *work);
int qc_k_bn_sync_dsums(const float *x, const float *dy, int64_t nb, int64_t c, int64_t inner,
                       const float *mean, const float *disp, const float *scale, float eps,
                       float *dscale, float *dbias, void *work);
int qc_k_bn_sync_dx(const float *x, const float *dy, int64_t nb, int64_t c, int64_t inner,
                    int64_t m_all, const float *mean, const float *disp, const float *scale,
                    float eps, float *dx, void *work);

#ifdef __cplusplus
}
#endif

#endif
