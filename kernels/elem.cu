/*
 * elem.cu - the CUDA kernels of the activation, element-wise arithmetic,
 * layout and dropout ops, with the semantics of src/ops/act.c, eltwise.c and
 * layout.c (launchers declared in qc_elem_kernels.h, called from
 * src/backend/cuda_act.c, cuda_layout.c).
 *
 * Float parity with the CPU: element formulas use the explicitly rounded
 * intrinsics (__fmul_rn, __fadd_rn, ...) in the CPU's operation order, so
 * nvcc never contracts them into FMAs and point-wise values and gradients
 * are bit-identical except where a libm function (expf, tanhf) is involved,
 * whose device version may differ from the host's by an ulp or two.
 * Softmax rows are one block each: the maximum and the double sum are tree
 * reductions in shared memory (fixed order, so deterministic; the sum order
 * differs from the CPU's serial one by double rounding only).
 *
 * Every kernel is a grid-stride loop over its outputs (grid capped at
 * 65535 blocks), each output element written by exactly one thread or one
 * block: no atomics, the same call gives the same bits.
 */
#include "qc_elem_kernels.h"
#include "qc_device.cuh"

#include <cuda_runtime.h>
#include <float.h>
#include <math.h>


/* ---- point-wise activations --------------------------------------------------------------- */

static __device__ float act_value(int fn, float a, float b, float v)
{
    switch (fn) {
    case QC_KE_RELU:
        return v < 0.0f ? 0.0f : v;
    case QC_KE_LEAKY: /* y = x >= 0 ? x : a*x */
        return v >= 0.0f ? v : __fmul_rn(a, v);
    case QC_KE_SIGMOID: /* 1/(1+exp(-x)), or e/(1+e) with e = exp(x) for x < 0 */
        if (v >= 0.0f)
            return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-v)));
        else {
            float e = expf(v);
            return __fdiv_rn(e, __fadd_rn(1.0f, e));
        }
    case QC_KE_TANH:
        return tanhf(v);
    case QC_KE_HARD_SIGMOID: /* max(0, min(1, a*x + b)) */
        return fmaxf(0.0f, fminf(1.0f, __fadd_rn(__fmul_rn(a, v), b)));
    case QC_KE_HARD_SWISH: /* x * max(0, min(1, x/6 + 1/2)) */
        return __fmul_rn(v, fmaxf(0.0f, fminf(1.0f, __fadd_rn(__fmul_rn(v, 1.0f / 6.0f),
                                                                0.5f))));
    default: /* QC_KE_CLIP: min(max(x, a), b); NaN passes through */
        v = v < a ? a : v;
        return v > b ? b : v;
    }
}

/* dy·f'(x) (y = the forward output). */
static __device__ float act_grad(int fn, float a, float b, float v, float y, float g)
{
    switch (fn) {
    case QC_KE_RELU: /* dy * [x > 0] */
        return v > 0.0f ? g : 0.0f;
    case QC_KE_LEAKY: { /* dy * (x >= 0 ? 1 : a) */
        float gp = v >= 0.0f ? g : 0.0f, gn = v >= 0.0f ? 0.0f : g;
        return __fadd_rn(gp, __fmul_rn(a, gn));
    }
    case QC_KE_SIGMOID: /* dy * y * (1 - y) */
        return __fmul_rn(__fmul_rn(g, y), __fsub_rn(1.0f, y));
    case QC_KE_TANH: /* dy * (1 - y^2) */
        return __fmul_rn(g, __fsub_rn(1.0f, __fmul_rn(y, y)));
    case QC_KE_HARD_SIGMOID: { /* dy * a * [0 < a*x + b < 1] */
        float t = __fadd_rn(__fmul_rn(a, v), b);
        return __fmul_rn(a, (t > 0.0f && t < 1.0f) ? g : 0.0f);
    }
    case QC_KE_HARD_SWISH: { /* dy * (x <= -3 ? 0 : x >= 3 ? 1 : x/3 + 1/2) */
        float gin = (v > -3.0f && v < 3.0f) ? g : 0.0f;
        float ghi = v >= 3.0f ? g : 0.0f;
        return __fadd_rn(ghi, __fmul_rn(gin, __fadd_rn(__fmul_rn(v, 1.0f / 3.0f), 0.5f)));
    }
    default: /* QC_KE_CLIP: dy * [a < x < b] */
        return (v > a && v < b) ? g : 0.0f;
    }
}

static __global__ void act_fwd(int fn, float a, float b, const float *lo_p, const float *hi_p,
                               const float *x, float *y, int64_t n)
{
    if (lo_p)
        a = *lo_p;
    if (hi_p)
        b = *hi_p;
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT)
        y[i] = act_value(fn, a, b, x[i]);
}

extern "C" int qc_k_act_forward(int fn, float a, float b, const float *lo_p,
                                const float *hi_p, const float *x, float *y, int64_t n)
{
    if (n <= 0)
        return 0;
    act_fwd<<<grid_for(n), NT>>>(fn, a, b, lo_p, hi_p, x, y, n);
    return (int)cudaGetLastError();
}

/* dx += dy * f'(x) */
static __global__ void act_bwd(int fn, float a, float b, const float *lo_p, const float *hi_p,
                               const float *x, const float *y, const float *dy, float *dx,
                               int64_t n)
{
    if (lo_p)
        a = *lo_p;
    if (hi_p)
        b = *hi_p;
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT)
        dx[i] = __fadd_rn(dx[i], act_grad(fn, a, b, x[i], y[i], dy[i]));
}

extern "C" int qc_k_act_backward(int fn, float a, float b, const float *lo_p,
                                 const float *hi_p, const float *x, const float *y,
                                 const float *dy, float *dx, int64_t n)
{
    if (n <= 0)
        return 0;
    act_bwd<<<grid_for(n), NT>>>(fn, a, b, lo_p, hi_p, x, y, dy, dx, n);
    return (int)cudaGetLastError();
}

/* ---- Softmax, LogSoftmax ------------------------------------------------------------------ */

/* Block-wide fmaxf (NaN ignored as fmaxf does); every thread gets it. */
static __device__ float block_fmax(float v, float *sh)
{
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = NT / 2; s > 0; s >>= 1) {
        if (t < s)
            sh[t] = fmaxf(sh[t], sh[t + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

/* softmax:    y_j = exp(x_j - m) / sum_k exp(x_k - m),   m = max_k x_k
 * logsoftmax: y_j = x_j - m - log(sum_k exp(x_k - m))                      */
static __global__ void softmax_fwd(int log_form, const float *x, float *y, int64_t rows,
                                   int64_t len, int64_t inner)
{
    __shared__ double shd[NT];
    __shared__ float shf[NT];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t off = (r / inner) * len * inner + r % inner;
        const float *xr = x + off;
        float *yr = y + off;
        float m = -INFINITY;
        double sum = 0.0;
        for (int64_t j = threadIdx.x; j < len; j += NT)
            m = fmaxf(m, xr[j * inner]);
        m = block_fmax(m, shf);
        for (int64_t j = threadIdx.x; j < len; j += NT)
            sum = __dadd_rn(sum, (double)expf(__fsub_rn(xr[j * inner], m)));
        sum = block_sum(sum, shd);
        if (log_form) {
            float ls = (float)log(sum);
            for (int64_t j = threadIdx.x; j < len; j += NT)
                yr[j * inner] = __fsub_rn(__fsub_rn(xr[j * inner], m), ls);
        } else {
            float inv = (float)(1.0 / sum);
            for (int64_t j = threadIdx.x; j < len; j += NT)
                yr[j * inner] = __fmul_rn(expf(__fsub_rn(xr[j * inner], m)), inv);
        }
    }
}

extern "C" int qc_k_softmax_forward(int log_form, const float *x, float *y, int64_t outer,
                                    int64_t len, int64_t inner)
{
    int64_t rows = outer * inner;
    if (rows <= 0 || len <= 0)
        return 0;
    softmax_fwd<<<grid_rows(rows), NT>>>(log_form, x, y, rows, len, inner);
    return (int)cudaGetLastError();
}

/* Per row (y = the forward output):
 *   softmax:    dx_j += y_j * (dy_j - sum_k dy_k y_k)
 *   logsoftmax: dx_j += dy_j - exp(y_j) * sum_k dy_k                         */
static __global__ void softmax_bwd(int log_form, const float *y, const float *dy, float *dx,
                                   int64_t rows, int64_t len, int64_t inner)
{
    __shared__ double shd[NT];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t off = (r / inner) * len * inner + r % inner;
        const float *yr = y + off, *dyr = dy + off;
        float *dxr = dx + off;
        double acc = 0.0;
        float s;
        for (int64_t j = threadIdx.x; j < len; j += NT) {
            if (log_form)
                acc = __dadd_rn(acc, (double)dyr[j * inner]);
            else
                acc = __dadd_rn(acc, __dmul_rn((double)dyr[j * inner], (double)yr[j * inner]));
        }
        s = (float)block_sum(acc, shd);
        for (int64_t j = threadIdx.x; j < len; j += NT) {
            int64_t k = j * inner;
            float t;
            if (log_form)
                t = __fsub_rn(dyr[k], __fmul_rn(expf(yr[k]), s));
            else
                t = __fmul_rn(yr[k], __fsub_rn(dyr[k], s));
            dxr[k] = __fadd_rn(dxr[k], t);
        }
    }
}

extern "C" int qc_k_softmax_backward(int log_form, const float *y, const float *dy, float *dx,
                                     int64_t outer, int64_t len, int64_t inner)
{
    int64_t rows = outer * inner;
    if (rows <= 0 || len <= 0)
        return 0;
    softmax_bwd<<<grid_rows(rows), NT>>>(log_form, y, dy, dx, rows, len, inner);
    return (int)cudaGetLastError();
}

/* ---- binary arithmetic with broadcasting -------------------------------------------------- */

/* y[i] = a[off_a(i)] op b[off_b(i)]; each thread reads its operands before it writes, so y
 * may alias an operand of y's shape. */
static __global__ void binary(int op, struct qc_k_bcast bc, const float *a, const float *b,
                              float *y, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        int64_t rem = i, oa = 0, ob = 0;
        for (int d = bc.nd - 1; d >= 0; d--) {
            int64_t idx = rem % bc.dims[d];
            rem /= bc.dims[d];
            oa += idx * bc.sa[d];
            ob += idx * bc.sb[d];
        }
        float u = a[oa], v = b[ob], r;
        switch (op) {
        case QC_KE_ADD: r = __fadd_rn(u, v); break;
        case QC_KE_SUB: r = __fsub_rn(u, v); break;
        case QC_KE_MUL: r = __fmul_rn(u, v); break;
        default:        r = __fdiv_rn(u, v); break;
        }
        y[i] = r;
    }
}

extern "C" int qc_k_binary(int op, struct qc_k_bcast bc, const float *a, const float *b,
                           float *y, int64_t n)
{
    if (n <= 0)
        return 0;
    binary<<<grid_for(n), NT>>>(op, bc, a, b, y, n);
    return (int)cudaGetLastError();
}

/* ---- copies and accumulations ------------------------------------------------------------- */

/* dst += src */
static __global__ void acc_f32(float *dst, const float *src, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT)
        dst[i] = __fadd_rn(dst[i], src[i]);
}

extern "C" int qc_k_acc_f32(float *dst, const float *src, int64_t n)
{
    if (n <= 0)
        return 0;
    acc_f32<<<grid_for(n), NT>>>(dst, src, n);
    return (int)cudaGetLastError();
}

static __device__ int64_t box_total(const struct qc_k_box *bx)
{
    int64_t t = 1;
    for (int k = 0; k < bx->nd; k++)
        t *= bx->cnt[k];
    return t;
}

/* Source and destination offsets of the i-th element of the box (row-major). */
static __device__ void box_offsets(const struct qc_k_box *bx, int64_t i, int64_t *so,
                                   int64_t *dof)
{
    int64_t s = 0, d = 0;
    for (int k = bx->nd - 1; k >= 0; k--) {
        int64_t idx = i % bx->cnt[k];
        i /= bx->cnt[k];
        s += idx * bx->sstr[k];
        d += idx * bx->dstr[k];
    }
    *so = s;
    *dof = d;
}

static __global__ void copy_box_u32(struct qc_k_box bx, const uint32_t *src, uint32_t *dst)
{
    int64_t n = box_total(&bx);
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        int64_t so, dof;
        box_offsets(&bx, i, &so, &dof);
        dst[dof] = src[so];
    }
}

extern "C" int qc_k_copy_box_u32(struct qc_k_box box, const uint32_t *src, uint32_t *dst)
{
    int64_t n = 1;
    for (int k = 0; k < box.nd; k++)
        n *= box.cnt[k];
    if (n <= 0)
        return 0;
    copy_box_u32<<<grid_for(n), NT>>>(box, src, dst);
    return (int)cudaGetLastError();
}

/* dst[box] += src[box] * scale */
static __global__ void acc_box_f32(struct qc_k_box bx, const float *src, float *dst,
                                   float scale)
{
    int64_t n = box_total(&bx);
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        int64_t so, dof;
        box_offsets(&bx, i, &so, &dof);
        dst[dof] = __fadd_rn(dst[dof], __fmul_rn(src[so], scale));
    }
}

extern "C" int qc_k_acc_box_f32(struct qc_k_box box, const float *src, float *dst,
                                float scale)
{
    int64_t n = 1;
    for (int k = 0; k < box.nd; k++)
        n *= box.cnt[k];
    if (n <= 0)
        return 0;
    acc_box_f32<<<grid_for(n), NT>>>(box, src, dst, scale);
    return (int)cudaGetLastError();
}

static __global__ void fill_value_f32(float *y, float v, const float *v_p, int64_t n)
{
    if (v_p)
        v = *v_p;
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT)
        y[i] = v;
}

extern "C" int qc_k_fill_value_f32(float *y, float v, const float *v_p, int64_t n)
{
    if (n <= 0)
        return 0;
    fill_value_f32<<<grid_for(n), NT>>>(y, v, v_p, n);
    return (int)cudaGetLastError();
}

/* ---- Dropout ------------------------------------------------------------------------------ */

/* u in [0, 1) from a counter-based hash of (seed, i): the splitmix64 finaliser of
 * seed + (i + 1)·φ, top 24 bits. */
static __device__ float dropout_uniform(uint64_t seed, int64_t i)
{
    uint64_t z = seed + ((uint64_t)i + 1u) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

/* scale = 1/(1 - ratio); NaN for a ratio outside [0, 1), so a bad ratio input shows. */
static __device__ float dropout_scale(float ratio)
{
    if (!(ratio >= 0.0f && ratio < 1.0f))
        return NAN;
    return __fdiv_rn(1.0f, __fsub_rn(1.0f, ratio));
}

/* keep_i = [u_(first+i) >= ratio];  y_i = x_i * (keep_i * 1/(1 - ratio)) */
static __global__ void dropout_fwd(uint64_t seed, int64_t first, float ratio,
                                   const float *ratio_p, const float *x, float *y,
                                   unsigned char *mask, int64_t n)
{
    if (ratio_p)
        ratio = *ratio_p;
    float scale = dropout_scale(ratio);
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        unsigned char keep = dropout_uniform(seed, first + i) >= ratio;
        mask[i] = keep;
        y[i] = __fmul_rn(x[i], __fmul_rn((float)keep, scale));
    }
}

extern "C" int qc_k_dropout_forward(uint64_t seed, int64_t first, float ratio,
                                    const float *ratio_p, const float *x, float *y,
                                    unsigned char *mask, int64_t n)
{
    if (n <= 0)
        return 0;
    dropout_fwd<<<grid_for(n), NT>>>(seed, first, ratio, ratio_p, x, y, mask, n);
    return (int)cudaGetLastError();
}

/* dx_i += dy_i * (keep_i * 1/(1 - ratio)) */
static __global__ void dropout_bwd(float ratio, const float *ratio_p, const unsigned char *mask,
                                   const float *dy, float *dx, int64_t n)
{
    if (ratio_p)
        ratio = *ratio_p;
    float scale = dropout_scale(ratio);
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT)
        dx[i] = __fadd_rn(dx[i], __fmul_rn(dy[i], __fmul_rn((float)mask[i], scale)));
}

extern "C" int qc_k_dropout_backward(float ratio, const float *ratio_p,
                                     const unsigned char *mask, const float *dy, float *dx,
                                     int64_t n)
{
    if (n <= 0)
        return 0;
    dropout_bwd<<<grid_for(n), NT>>>(ratio, ratio_p, mask, dy, dx, n);
    return (int)cudaGetLastError();
}

static __global__ void dropout_mask_out(const unsigned char *keep, int is_bool, void *out,
                                        int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        unsigned char k = keep ? keep[i] : 1;
        if (is_bool)
            ((unsigned char *)out)[i] = k;
        else
            ((float *)out)[i] = (float)k;
    }
}

extern "C" int qc_k_dropout_mask_out(const unsigned char *keep, int is_bool, void *out,
                                     int64_t n)
{
    if (n <= 0)
        return 0;
    dropout_mask_out<<<grid_for(n), NT>>>(keep, is_bool, out, n);
    return (int)cudaGetLastError();
}
