/*
 * norm.cu - BatchNormalization on the GPU (launchers in qc_conv_kernels.h),
 * with the semantics of src/ops/norm.c: inference y = a_c*x + b_c from the
 * running statistics; training with the batch mean and biased variance
 * (two passes), the saved mu_B / istd, the running statistics updated in
 * place (unbiased variance), and the backward of both modes.
 *
 * Per-channel sums over the m = N*inner values of a channel run in two
 * steps: qc_k_bn_parts(c, m) blocks per channel each sum a fixed
 * contiguous part (in double, fixed tree order) into the workspace, then
 * one thread per channel adds the parts in order; the part boundaries
 * depend on c and m only, so results are deterministic.  Per-channel and
 * per-element formulas use the explicitly rounded intrinsics in the CPU's
 * operation order (no FMA contraction): the inference forward and input
 * gradient are bit-identical to the CPU, the training ones differ only by
 * the order of the sums.
 */
#include "qc_conv_kernels.h"
#include "qc_device.cuh"

#include <cuda_runtime.h>

#define BLOCKS_TARGET 2048           /* blocks the partial sums aim for    */
#define PARTS_MAX 64

extern "C" int64_t qc_k_bn_parts(int64_t c, int64_t m)
{
    int64_t p = (BLOCKS_TARGET + c - 1) / (c > 0 ? c : 1);
    int64_t by_len = (m + 4 * NT - 1) / (4 * NT);   /* at least 4 values per thread */
    if (p > by_len)
        p = by_len;
    if (p > PARTS_MAX)
        p = PARTS_MAX;
    return p < 1 ? 1 : p;
}

/* c*parts*2 doubles (partial sums), then 3*c floats (backward coefficients) */
extern "C" int64_t qc_k_bn_work_bytes(int64_t c, int64_t m)
{
    return c * qc_k_bn_parts(c, m) * 2 * (int64_t)sizeof(double) + 3 * c * (int64_t)sizeof(float);
}

/* [lo, hi) of part p of m values split into np parts */
static __device__ int64_t part_lo(int64_t m, int64_t np, int64_t p)
{
    int64_t r = m % np;
    return m / np * p + (p < r ? p : r);
}

/* Element j (< m) of channel ch of x [nb, c, inner]. */
static __device__ int64_t chan_index(int64_t j, int64_t ch, int64_t c, int64_t inner)
{
    return ((j / inner) * c + ch) * inner + j % inner;
}

/* part[ch*np + p] = sum x (mu == NULL) or sum (x - mu_ch)^2 over part p of channel ch */
static __global__ void part_sum_k(const float *x, const float *mu, int64_t nb, int64_t c,
                                  int64_t inner, int64_t np, double *part)
{
    __shared__ double sh[NT];
    int64_t m = nb * inner;
    for (int64_t b = blockIdx.x; b < c * np; b += gridDim.x) {
        int64_t ch = b / np, p = b % np;
        int64_t lo = part_lo(m, np, p), hi = part_lo(m, np, p + 1);
        double s = 0.0;
        for (int64_t j = lo + threadIdx.x; j < hi; j += NT) {
            float v = x[chan_index(j, ch, c, inner)];
            if (mu) {
                float d = __fsub_rn(v, mu[ch]);
                v = __fmul_rn(d, d);
            }
            s = __dadd_rn(s, (double)v);
        }
        s = block_sum(s, sh);
        if (threadIdx.x == 0)
            part[b] = s;
    }
}

static __device__ double parts_total(const double *part, int64_t np, int64_t ch, int64_t stride,
                                     int64_t off)
{
    double s = 0.0;
    for (int64_t p = 0; p < np; p++)
        s = __dadd_rn(s, part[(ch * np + p) * stride + off]);
    return s;
}

/* mu[ch] = sum x / m */
static __global__ void mean_k(const double *part, int64_t c, int64_t np, int64_t m, float *mu)
{
    for (int64_t ch = (int64_t)blockIdx.x * NT + threadIdx.x; ch < c;
         ch += (int64_t)gridDim.x * NT)
        mu[ch] = (float)__ddiv_rn(parts_total(part, np, ch, 1, 0), (double)m);
}

/* s2 = sum (x - mu)^2 / m, istd = 1/sqrt(s2 + eps); running = mom*running + (1-mom)*batch
 * with the unbiased m/(m-1)*s2 for the variance */
static __global__ void finish_k(const double *part, int64_t c, int64_t np, int64_t m,
                                float eps, float mom, float *rmean, float *rvar,
                                float *saved, float *out1, float *out2, float *out3,
                                float *out4)
{
    double unbias = m > 1 ? __ddiv_rn((double)m, (double)(m - 1)) : 1.0;
    float keep = __fsub_rn(1.0f, mom);
    for (int64_t ch = (int64_t)blockIdx.x * NT + threadIdx.x; ch < c;
         ch += (int64_t)gridDim.x * NT) {
        double var = __ddiv_rn(parts_total(part, np, ch, 1, 0), (double)m);
        float mean = saved[ch];
        saved[c + ch] = (float)__ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(var, (double)eps)));
        float rm = __fadd_rn(__fmul_rn(mom, rmean[ch]), __fmul_rn(keep, mean));
        float vb = (float)__dmul_rn(var, unbias);
        float rv = __fadd_rn(__fmul_rn(mom, rvar[ch]), __fmul_rn(keep, vb));
        rmean[ch] = rm;
        rvar[ch] = rv;
        if (out1)
            out1[ch] = rm;
        if (out2)
            out2[ch] = rv;
        if (out3)
            out3[ch] = mean;
        if (out4)
            out4[ch] = (float)var;
    }
}

extern "C" int qc_k_bn_stats(const float *x, int64_t nb, int64_t c, int64_t inner, float eps,
                             float mom, float *rmean, float *rvar, float *saved,
                             float *out1, float *out2, float *out3, float *out4, void *work)
{
    int64_t m = nb * inner, np = qc_k_bn_parts(c, m);
    double *part = (double *)work;
    const float *no_mu = NULL;   /* first pass: plain sums */
    unsigned gc = grid_for(c);
    int e;
    if (c <= 0)
        return 0;
    part_sum_k<<<grid_rows(c * np), NT>>>(x, no_mu, nb, c, inner, np, part);
    e = (int)cudaGetLastError();
    if (e != 0)
        return e;
    mean_k<<<gc, NT>>>(part, c, np, m, saved);
    e = (int)cudaGetLastError();
    if (e != 0)
        return e;
    part_sum_k<<<grid_rows(c * np), NT>>>(x, saved, nb, c, inner, np, part);
    e = (int)cudaGetLastError();
    if (e != 0)
        return e;
    finish_k<<<gc, NT>>>(part, c, np, m, eps, mom, rmean, rvar, saved, out1, out2, out3, out4);
    return (int)cudaGetLastError();
}

/* ---- synchronized statistics (a data-parallel job's SyncBatchNorm) ----
 * The same passes as qc_k_bn_stats and qc_k_bn_backward, cut where the
 * caller sums per-channel totals over the ranks (host doubles, in place,
 * between the launches; the totals are exact copies of parts_total's).
 * The per-channel totals then stand in for the parts: np = 1 and the
 * global count M, so mean_k, finish_k and bwd_finish_k are reused as is. */

/* tot[ch*stride + o] = sum over the parts of channel ch of part[(ch*np + p)*stride + o] */
static __global__ void totals_k(const double *part, int64_t c, int64_t np, int64_t stride,
                                double *tot)
{
    for (int64_t ch = (int64_t)blockIdx.x * NT + threadIdx.x; ch < c;
         ch += (int64_t)gridDim.x * NT)
        for (int64_t o = 0; o < stride; o++)
            tot[ch * stride + o] = parts_total(part, np, ch, stride, o);
}

/* 2*c doubles of per-channel totals after qc_k_bn_work_bytes (8-byte aligned) */
extern "C" int64_t qc_k_bn_sync_work_bytes(int64_t c, int64_t m)
{
    return (qc_k_bn_work_bytes(c, m) + 7) / 8 * 8 + 2 * c * (int64_t)sizeof(double);
}

static double *sync_totals(void *work, int64_t c, int64_t m)
{
    return (double *)((char *)work + (qc_k_bn_work_bytes(c, m) + 7) / 8 * 8);
}

extern "C" double *qc_k_bn_sync_totals(void *work, int64_t c, int64_t m)
{
    return sync_totals(work, c, m);
}

extern "C" int qc_k_bn_sync_sums(const float *x, const float *mu, int64_t nb, int64_t c,
                                 int64_t inner, void *work)
{
    int64_t m = nb * inner, np = qc_k_bn_parts(c, m);
    double *part = (double *)work;
    int e;
    if (c <= 0)
        return 0;
    part_sum_k<<<grid_rows(c * np), NT>>>(x, mu, nb, c, inner, np, part);
    e = (int)cudaGetLastError();
    if (e != 0)
        return e;
    totals_k<<<grid_for(c), NT>>>(part, c, np, 1, sync_totals(work, c, m));
    return (int)cudaGetLastError();
}

extern "C" int qc_k_bn_sync_mean(int64_t c, int64_t m, int64_t m_all, float *saved, void *work)
{
    if (c <= 0)
        return 0;
    mean_k<<<grid_for(c), NT>>>(sync_totals(work, c, m), c, 1, m_all, saved);
    return (int)cudaGetLastError();
}

extern "C" int qc_k_bn_sync_finish(int64_t c, int64_t m, int64_t m_all, float eps, float mom,
                                   float *rmean, float *rvar, float *saved, float *out1,
                                   float *out2, float *out3, float *out4, void *work)
{
    if (c <= 0)
        return 0;
    finish_k<<<grid_for(c), NT>>>(sync_totals(work, c, m), c, 1, m_all, eps, mom, rmean, rvar,
                                  saved, out1, out2, out3, out4);
    return (int)cudaGetLastError();
}

/* is = train ? disp : 1/sqrtf(disp + eps), as the CPU computes it */
static __device__ float inv_std(int train, float disp, float eps)
{
    return train ? disp : __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(disp, eps)));
}

/* y = x*a + b, a = scale*is, b = bias - mean*a */
static __global__ void apply_k(int train, const float *x, float *y, int64_t total, int64_t c,
                               int64_t inner, const float *mean, const float *disp,
                               const float *scale, const float *bias, float eps)
{
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * NT) {
        int64_t ch = (e / inner) % c;
        float a = __fmul_rn(scale[ch], inv_std(train, disp[ch], eps));
        float b = __fsub_rn(bias[ch], __fmul_rn(mean[ch], a));
        y[e] = __fadd_rn(__fmul_rn(x[e], a), b);
    }
}

extern "C" int qc_k_bn_apply(int train, const float *x, float *y, int64_t nb, int64_t c,
                             int64_t inner, const float *mean, const float *disp,
                             const float *scale, const float *bias, float eps)
{
    int64_t total = nb * c * inner;
    if (total <= 0)
        return 0;
    apply_k<<<grid_for(total), NT>>>(train, x, y, total, c, inner, mean, disp, scale, bias, eps);
    return (int)cudaGetLastError();
}

/* part[2*(ch*np + p)] = sum dy, part[.. + 1] = sum dy*(x - mu_ch) over part p */
static __global__ void part_dsums_k(const float *x, const float *dy, const float *mu,
                                    int64_t nb, int64_t c, int64_t inner, int64_t np,
                                    double *part)
{
    __shared__ double sh[NT];
    int64_t m = nb * inner;
    for (int64_t b = blockIdx.x; b < c * np; b += gridDim.x) {
        int64_t ch = b / np, p = b % np;
        int64_t lo = part_lo(m, np, p), hi = part_lo(m, np, p + 1);
        float mc = mu[ch];
        double s0 = 0.0, s1 = 0.0;
        for (int64_t j = lo + threadIdx.x; j < hi; j += NT) {
            int64_t idx = chan_index(j, ch, c, inner);
            float g = dy[idx];
            s0 = __dadd_rn(s0, (double)g);
            s1 = __dadd_rn(s1, (double)__fmul_rn(g, __fsub_rn(x[idx], mc)));
        }
        s0 = block_sum(s0, sh);
        s1 = block_sum(s1, sh);
        if (threadIdx.x == 0) {
            part[2 * b] = s0;
            part[2 * b + 1] = s1;
        }
    }
}

/* Per channel: dB += sum dy, dscale += is * sum dy*(x - mu); the dx
 * coefficients A = scale*is, K = -A*is*is*sum(dy*(x-mu))/m and D = -A*sum(dy)/m
 * (K = D = 0 in inference) go to coef[3*ch ..]. */
static __global__ void bwd_finish_k(int train, const double *part, int64_t c, int64_t np,
                                    int64_t m, const float *disp, const float *scale, float eps,
                                    float *dscale, float *dbias, float *coef)
{
    for (int64_t ch = (int64_t)blockIdx.x * NT + threadIdx.x; ch < c;
         ch += (int64_t)gridDim.x * NT) {
        double sdy = parts_total(part, np, ch, 2, 0);
        double sdyx = parts_total(part, np, ch, 2, 1);
        float is = inv_std(train, disp[ch], eps);
        float a = __fmul_rn(scale[ch], is), k = 0.0f, d = 0.0f;
        if (dscale)
            dscale[ch] = __fadd_rn(dscale[ch], (float)__dmul_rn(sdyx, (double)is));
        if (dbias)
            dbias[ch] = __fadd_rn(dbias[ch], (float)sdy);
        if (train) {
            double na = -(double)a;
            k = (float)__ddiv_rn(__dmul_rn(__dmul_rn(__dmul_rn(na, (double)is), (double)is),
                                           sdyx),
                                 (double)m);
            d = (float)__ddiv_rn(__dmul_rn(na, sdy), (double)m);
        }
        coef[3 * ch] = a;
        coef[3 * ch + 1] = k;
        coef[3 * ch + 2] = d;
    }
}

/* dx += A*dy + K*(x - mu) + D */
static __global__ void bwd_dx_k(const float *x, const float *dy, const float *mu,
                                const float *coef, int64_t total, int64_t c, int64_t inner,
                                float *dx)
{
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * NT) {
        int64_t ch = (e / inner) % c;
        const float *cf = coef + 3 * ch;
        float v = __fadd_rn(__fadd_rn(__fmul_rn(cf[0], dy[e]),
                                      __fmul_rn(cf[1], __fsub_rn(x[e], mu[ch]))),
                            cf[2]);
        dx[e] = __fadd_rn(dx[e], v);
    }
}

/* Backward, per channel c with xh = (x - mu) * istd, sums over N and space:
 *   dB     += sum dy
 *   dscale += sum dy * xh
 *   training (mu = mu_B, istd = 1/sqrt(s2_B + eps), m values per channel):
 *     dx += scale * istd / m * (m * dy - sum dy - xh * sum(dy * xh))
 *   inference (mu, var = the running statistics, constants):
 *     dx += dy * scale * istd
 * evaluated as dx += A*dy + K*(x - mu) + D (coefficients at bwd_finish_k). */
extern "C" int qc_k_bn_backward(int train, const float *x, const float *dy, int64_t nb,
                                int64_t c, int64_t inner, const float *mean, const float *disp,
                                const float *scale, float eps, float *dx, float *dscale,
                                float *dbias, void *work)
{
    int64_t m = nb * inner, np = qc_k_bn_parts(c, m), total = nb * c * inner;
    double *part = (double *)work;
    float *coef = (float *)(part + 2 * c * np);
    unsigned gc = grid_for(c);
    int e;
    if (c <= 0 || total <= 0)
        return 0;
    part_dsums_k<<<grid_rows(c * np), NT>>>(x, dy, mean, nb, c, inner, np, part);
    e = (int)cudaGetLastError();
    if (e != 0)
        return e;
    bwd_finish_k<<<gc, NT>>>(train, part, c, np, m, disp, scale, eps, dscale, dbias, coef);
    e = (int)cudaGetLastError();
    if (e != 0 || !dx)
        return e;
    bwd_dx_k<<<grid_for(total), NT>>>(x, dy, mean, coef, total, c, inner, dx);
    return (int)cudaGetLastError();
}

/* Synchronized training backward, first half: this rank's sums give
 * dB += sum dy and dscale += istd * sum dy*(x - mu) (local: the gradient
 * all-reduce averages them), and the totals tot[2*ch] = sum dy, tot[2*ch + 1]
 * = sum dy*(x - mu) for the caller to sum over the ranks. */
extern "C" int qc_k_bn_sync_dsums(const float *x, const float *dy, int64_t nb, int64_t c,
                                  int64_t inner, const float *mean, const float *disp,
                                  const float *scale, float eps, float *dscale, float *dbias,
                                  void *work)
{
    int64_t m = nb * inner, np = qc_k_bn_parts(c, m);
    double *part = (double *)work;
    float *coef = (float *)(part + 2 * c * np);
    int e;
    if (c <= 0 || m <= 0)
        return 0;
    part_dsums_k<<<grid_rows(c * np), NT>>>(x, dy, mean, nb, c, inner, np, part);
    e = (int)cudaGetLastError();
    if (e != 0)
        return e;
    /* coef: this rank's coefficients, overwritten by qc_k_bn_sync_dx */
    bwd_finish_k<<<grid_for(c), NT>>>(1, part, c, np, m, disp, scale, eps, dscale, dbias, coef);
    e = (int)cudaGetLastError();
    if (e != 0)
        return e;
    totals_k<<<grid_for(c), NT>>>(part, c, np, 2, sync_totals(work, c, m));
    return (int)cudaGetLastError();
}

/* Second half, the totals summed over the ranks (M values per channel):
 *   dx += scale * istd / M * (M * dy - sum_ranks sum dy - xh * sum_ranks sum dy * xh). */
extern "C" int qc_k_bn_sync_dx(const float *x, const float *dy, int64_t nb, int64_t c,
                               int64_t inner, int64_t m_all, const float *mean, const float *disp,
                               const float *scale, float eps, float *dx, void *work)
{
    int64_t m = nb * inner, np = qc_k_bn_parts(c, m), total = nb * c * inner;
    float *coef = (float *)((double *)work + 2 * c * np);
    float *no_grad = NULL;
    int e;
    if (c <= 0 || total <= 0)
        return 0;
    bwd_finish_k<<<grid_for(c), NT>>>(1, sync_totals(work, c, m), c, 1, m_all, disp, scale, eps,
                                      no_grad, no_grad, coef);
    e = (int)cudaGetLastError();
    if (e != 0)
        return e;
    bwd_dx_k<<<grid_for(total), NT>>>(x, dy, mean, coef, total, c, inner, dx);
    return (int)cudaGetLastError();
}
