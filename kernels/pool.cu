/*
 * pool.cu - the CUDA kernels of the pooling and reduction ops (MaxPool,
 * AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean, ReduceSum)
 * and the gather reduction that also sums broadcast gradients for
 * elem.cu's ops, with the semantics of src/ops/pool.c and eltwise.c
 * (launchers declared in qc_elem_kernels.h, called from
 * src/backend/cuda_pool.c).
 *
 * Forwards are one thread per output element running the CPU's window
 * loop in the CPU's order (the first maximum, then strictly greater; float
 * window sums in the same order, so MaxPool and AveragePool values are
 * bit-identical).  Backwards are in GATHER form, no atomics: one thread per
 * input element walks the windows that cover it in increasing output order
 * and adds, from the existing dx value, the dy of those that chose it
 * (MaxPool) or dy/count (AveragePool): the same additions in the same order
 * as the CPU's scatter loop, hence bit-identical too.  Global pools and the
 * gather reduction use one block per output (double sums in a fixed tree
 * order) or, for short reductions, one thread per output.
 */
#include "qc_elem_kernels.h"
#include "qc_device.cuh"

#include <cuda_runtime.h>
#include <float.h>
#include <math.h>

#define SHORT_RED 32                 /* reductions up to this long: a thread per output */

static __device__ int64_t pool_osz(const struct qc_k_pool *g)
{
    return g->out[0] * g->out[1] * g->out[2];
}

static __device__ int64_t pool_isz(const struct qc_k_pool *g)
{
    return g->in[0] * g->in[1] * g->in[2];
}

/* ---- MaxPool ------------------------------------------------------------------------------ */

/* Offset in the plane xr of the first maximum of window o, or -1 when the window holds no
 * input element (pool.c's window_argmax). */
static __device__ int64_t window_argmax(const struct qc_k_pool *g, const float *xr, int64_t o)
{
    int64_t o0 = o / (g->out[1] * g->out[2]), o1 = (o / g->out[2]) % g->out[1];
    int64_t o2 = o % g->out[2];
    int64_t s0 = o0 * g->s[0] - g->pb[0], s1 = o1 * g->s[1] - g->pb[1];
    int64_t s2 = o2 * g->s[2] - g->pb[2];
    float best = -FLT_MAX;
    int64_t bi = -1;
    for (int64_t a = 0; a < g->k[0]; a++) {
        int64_t i0 = s0 + a * g->d[0];
        if (i0 < 0 || i0 >= g->in[0])
            continue;
        for (int64_t b = 0; b < g->k[1]; b++) {
            int64_t i1 = s1 + b * g->d[1];
            if (i1 < 0 || i1 >= g->in[1])
                continue;
            for (int64_t c = 0; c < g->k[2]; c++) {
                int64_t i2 = s2 + c * g->d[2], at;
                if (i2 < 0 || i2 >= g->in[2])
                    continue;
                at = (i0 * g->in[1] + i1) * g->in[2] + i2;
                if (xr[at] > best || bi < 0) {
                    best = xr[at];
                    bi = at;
                }
            }
        }
    }
    return bi;
}

static __global__ void maxpool_fwd(struct qc_k_pool g, const float *x, float *y, int32_t *arg,
                                   int64_t *idx)
{
    int64_t osz = pool_osz(&g), isz = pool_isz(&g), n = g.nc * osz;
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        int64_t r = i / osz, o = i % osz;
        const float *xr = x + r * isz;
        int64_t bi = window_argmax(&g, xr, o);
        if (y)
            y[i] = bi < 0 ? -FLT_MAX : xr[bi];
        if (arg)
            arg[i] = (int32_t)bi;
        if (idx)
            idx[i] = bi < 0 ? -1 : r * isz + bi;
    }
}

extern "C" int qc_k_maxpool_forward(struct qc_k_pool g, const float *x, float *y, int32_t *arg,
                                    int64_t *idx)
{
    int64_t n = g.nc * g.out[0] * g.out[1] * g.out[2];
    if (n <= 0)
        return 0;
    maxpool_fwd<<<grid_for(n), NT>>>(g, x, y, arg, idx);
    return (int)cudaGetLastError();
}

/* Output coordinate of the window on dim j whose tap a lands on input coordinate i, or -1:
 * i = o*s - pb + a*d. */
static __device__ int64_t tap_window(const struct qc_k_pool *g, int j, int64_t i, int64_t a)
{
    int64_t t = i + g->pb[j] - a * g->d[j];
    if (t < 0 || t % g->s[j] != 0)
        return -1;
    t /= g->s[j];
    return t < g->out[j] ? t : -1;
}

/* dx[i] += sum over windows o with arg[o] = i of dy[o], o increasing (taps walked from the
 * last, so the window index grows), starting from dx[i]: the CPU's additions in its order. */
static __global__ void maxpool_bwd(struct qc_k_pool g, const int32_t *arg, const float *dy,
                                   float *dx)
{
    int64_t osz = pool_osz(&g), isz = pool_isz(&g), n = g.nc * isz;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * NT) {
        int64_t r = e / isz, i = e % isz;
        int64_t i0 = i / (g.in[1] * g.in[2]), i1 = (i / g.in[2]) % g.in[1], i2 = i % g.in[2];
        const int32_t *ar = arg + r * osz;
        const float *dyr = dy + r * osz;
        float acc = dx[e];
        for (int64_t a = g.k[0] - 1; a >= 0; a--) {
            int64_t o0 = tap_window(&g, 0, i0, a);
            if (o0 < 0)
                continue;
            for (int64_t b = g.k[1] - 1; b >= 0; b--) {
                int64_t o1 = tap_window(&g, 1, i1, b);
                if (o1 < 0)
                    continue;
                for (int64_t c = g.k[2] - 1; c >= 0; c--) {
                    int64_t o2 = tap_window(&g, 2, i2, c), o;
                    if (o2 < 0)
                        continue;
                    o = (o0 * g.out[1] + o1) * g.out[2] + o2;
                    if (ar[o] == i)
                        acc = __fadd_rn(acc, dyr[o]);
                }
            }
        }
        dx[e] = acc;
    }
}

extern "C" int qc_k_maxpool_backward(struct qc_k_pool g, const int32_t *arg, const float *dy,
                                     float *dx)
{
    int64_t n = g.nc * g.in[0] * g.in[1] * g.in[2];
    if (n <= 0)
        return 0;
    maxpool_bwd<<<grid_for(n), NT>>>(g, arg, dy, dx);
    return (int)cudaGetLastError();
}

/* ---- AveragePool -------------------------------------------------------------------------- */

/* Positions of a window on dim i inside [lo, hi). */
static __device__ int64_t win_count(const struct qc_k_pool *g, int i, int64_t start, int64_t lo,
                                    int64_t hi)
{
    int64_t cnt = 0;
    for (int64_t a = 0; a < g->k[i]; a++) {
        int64_t v = start + a * g->d[i];
        cnt += v >= lo && v < hi;
    }
    return cnt;
}

/* The divisor of window (o0, o1, o2): its positions inside x, or inside the padded extent
 * [-pb, in + pe) with count_include_pad. */
static __device__ int64_t avg_count(const struct qc_k_pool *g, int cip, int64_t o0, int64_t o1,
                                    int64_t o2)
{
    int64_t s0 = o0 * g->s[0] - g->pb[0], s1 = o1 * g->s[1] - g->pb[1];
    int64_t s2 = o2 * g->s[2] - g->pb[2];
    if (cip)
        return win_count(g, 0, s0, -g->pb[0], g->in[0] + g->pe[0]) *
               win_count(g, 1, s1, -g->pb[1], g->in[1] + g->pe[1]) *
               win_count(g, 2, s2, -g->pb[2], g->in[2] + g->pe[2]);
    return win_count(g, 0, s0, 0, g->in[0]) * win_count(g, 1, s1, 0, g->in[1]) *
           win_count(g, 2, s2, 0, g->in[2]);
}

/* y[o] = (float sum of the window's input elements, in window order) / cnt(o) */
static __global__ void avgpool_fwd(struct qc_k_pool g, int cip, const float *x, float *y)
{
    int64_t osz = pool_osz(&g), isz = pool_isz(&g), n = g.nc * osz;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * NT) {
        int64_t r = e / osz, o = e % osz;
        int64_t o0 = o / (g.out[1] * g.out[2]), o1 = (o / g.out[2]) % g.out[1];
        int64_t o2 = o % g.out[2];
        int64_t s0 = o0 * g.s[0] - g.pb[0], s1 = o1 * g.s[1] - g.pb[1];
        int64_t s2 = o2 * g.s[2] - g.pb[2], cnt;
        const float *xr = x + r * isz;
        float sum = 0.0f;
        for (int64_t a = 0; a < g.k[0]; a++) {
            int64_t i0 = s0 + a * g.d[0];
            if (i0 < 0 || i0 >= g.in[0])
                continue;
            for (int64_t b = 0; b < g.k[1]; b++) {
                int64_t i1 = s1 + b * g.d[1];
                if (i1 < 0 || i1 >= g.in[1])
                    continue;
                for (int64_t c = 0; c < g.k[2]; c++) {
                    int64_t i2 = s2 + c * g.d[2];
                    if (i2 < 0 || i2 >= g.in[2])
                        continue;
                    sum = __fadd_rn(sum, xr[(i0 * g.in[1] + i1) * g.in[2] + i2]);
                }
            }
        }
        cnt = avg_count(&g, cip, o0, o1, o2);
        y[e] = cnt > 0 ? __fdiv_rn(sum, (float)cnt) : 0.0f;
    }
}

extern "C" int qc_k_avgpool_forward(struct qc_k_pool g, int count_include_pad, const float *x,
                                    float *y)
{
    int64_t n = g.nc * g.out[0] * g.out[1] * g.out[2];
    if (n <= 0)
        return 0;
    avgpool_fwd<<<grid_for(n), NT>>>(g, count_include_pad, x, y);
    return (int)cudaGetLastError();
}

/* y[o] = sum(x[window o]) / cnt(o), so dx[i] += dy[o] / cnt(o) for every window o covering
 * input element i, gathered in increasing o from dx[i]. */
static __global__ void avgpool_bwd(struct qc_k_pool g, int cip, const float *dy, float *dx)
{
    int64_t osz = pool_osz(&g), isz = pool_isz(&g), n = g.nc * isz;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * NT) {
        int64_t r = e / isz, i = e % isz;
        int64_t i0 = i / (g.in[1] * g.in[2]), i1 = (i / g.in[2]) % g.in[1], i2 = i % g.in[2];
        const float *dyr = dy + r * osz;
        float acc = dx[e];
        for (int64_t a = g.k[0] - 1; a >= 0; a--) {
            int64_t o0 = tap_window(&g, 0, i0, a);
            if (o0 < 0)
                continue;
            for (int64_t b = g.k[1] - 1; b >= 0; b--) {
                int64_t o1 = tap_window(&g, 1, i1, b);
                if (o1 < 0)
                    continue;
                for (int64_t c = g.k[2] - 1; c >= 0; c--) {
                    int64_t o2 = tap_window(&g, 2, i2, c), cnt;
                    if (o2 < 0)
                        continue;
                    cnt = avg_count(&g, cip, o0, o1, o2);
                    if (cnt > 0)
                        acc = __fadd_rn(acc, __fdiv_rn(dyr[(o0 * g.out[1] + o1) * g.out[2] + o2],
                                                       (float)cnt));
                }
            }
        }
        dx[e] = acc;
    }
}

extern "C" int qc_k_avgpool_backward(struct qc_k_pool g, int count_include_pad, const float *dy,
                                     float *dx)
{
    int64_t n = g.nc * g.in[0] * g.in[1] * g.in[2];
    if (n <= 0)
        return 0;
    avgpool_bwd<<<grid_for(n), NT>>>(g, count_include_pad, dy, dx);
    return (int)cudaGetLastError();
}

/* ---- GlobalAveragePool, GlobalMaxPool ----------------------------------------------------- */

/* One block per row.  Mean: y = (float)(double sum / len).  Max: the CPU's serial scan
 * (m = -FLT_MAX, take strictly greater) finds the smallest index holding the largest value
 * above -FLT_MAX (index 0 when there is none); each thread scans its strided part the same
 * way and the tree keeps the larger value, the smaller index on ties. */
static __global__ void global_fwd(int is_max, const float *x, float *y, int32_t *arg,
                                  int64_t rows, int64_t len)
{
    __shared__ double shd[NT];
    __shared__ float shv[NT];
    __shared__ int64_t shi[NT];
    int t = threadIdx.x;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * len;
        if (!is_max) {
            double sum = 0.0;
            for (int64_t k = t; k < len; k += NT)
                sum = __dadd_rn(sum, (double)xr[k]);
            sum = block_sum(sum, shd);
            if (t == 0 && y)
                y[r] = (float)(sum / (double)len);
            continue;
        }
        float m = -FLT_MAX;
        int64_t bi = -1;
        for (int64_t k = t; k < len; k += NT) {
            if (xr[k] > m) {
                m = xr[k];
                bi = k;
            }
        }
        shv[t] = m;
        shi[t] = bi;
        __syncthreads();
        for (int s = NT / 2; s > 0; s >>= 1) {
            if (t < s) {
                float vb = shv[t + s];
                int64_t ib = shi[t + s];
                if (ib >= 0 && (shi[t] < 0 || vb > shv[t] || (vb == shv[t] && ib < shi[t]))) {
                    shv[t] = vb;
                    shi[t] = ib;
                }
            }
            __syncthreads();
        }
        if (t == 0) {
            if (y)
                y[r] = shi[0] < 0 ? -FLT_MAX : shv[0];
            if (arg)
                arg[r] = (int32_t)(shi[0] < 0 ? 0 : shi[0]);
        }
        __syncthreads();
    }
}

extern "C" int qc_k_global_forward(int is_max, const float *x, float *y, int32_t *arg,
                                   int64_t rows, int64_t len)
{
    if (rows <= 0 || len <= 0)
        return 0;
    global_fwd<<<grid_rows(rows), NT>>>(is_max, x, y, arg, rows, len);
    return (int)cudaGetLastError();
}

/* mean: dx[r, k] += dy[r] / len;  max: dx[r, arg[r]] += dy[r] */
static __global__ void global_bwd(int is_max, const int32_t *arg, const float *dy, float *dx,
                                  int64_t rows, int64_t len)
{
    int64_t n = rows * len;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * NT) {
        int64_t r = e / len, k = e % len;
        if (!is_max)
            dx[e] = __fadd_rn(dx[e], __fdiv_rn(dy[r], (float)len));
        else if (arg[r] == k)
            dx[e] = __fadd_rn(dx[e], dy[r]);
    }
}

extern "C" int qc_k_global_backward(int is_max, const int32_t *arg, const float *dy, float *dx,
                                    int64_t rows, int64_t len)
{
    int64_t n = rows * len;
    if (n <= 0)
        return 0;
    global_bwd<<<grid_for(n), NT>>>(is_max, arg, dy, dx, rows, len);
    return (int)cudaGetLastError();
}

/* ---- gather reduction --------------------------------------------------------------------- */

/* One term of a broadcast gradient (eltwise.c's grad_term): g = dy, s = the input's own
 * value, o = the other operand's. */
static __device__ double red_term(int term, float g, const float *s, int64_t u, const float *o,
                                  int64_t oo)
{
    switch (term) {
    case QC_KE_TERM_NEG_DY: return -(double)g;
    case QC_KE_TERM_MUL:    return (double)__fmul_rn(g, o[oo]);
    case QC_KE_TERM_DIV_A:  return (double)__fdiv_rn(g, o[oo]);
    case QC_KE_TERM_DIV_B:  /* -dy * o / s^2 */
        return -(double)__fdiv_rn(__fmul_rn(g, o[oo]), __fmul_rn(s[u], s[u]));
    default:                return (double)g;
    }
}

/* Offsets in dy and o of kept index u (row-major over kdims). */
static __device__ void red_kept(const struct qc_k_red *rd, int64_t u, int64_t *oy, int64_t *oo)
{
    int64_t y = 0, o = 0;
    for (int k = rd->nk - 1; k >= 0; k--) {
        int64_t idx = u % rd->kdims[k];
        u /= rd->kdims[k];
        y += idx * rd->ky[k];
        o += idx * rd->ko[k];
    }
    *oy = y;
    *oo = o;
}

/* Sum of the terms at reduced indices r = first, first + step, ... < total, in that order. */
static __device__ double red_sum(const struct qc_k_red *rd, int term, const float *dy,
                                 const float *s, const float *o, int64_t u, int64_t oy,
                                 int64_t oo, int64_t first, int64_t step, int64_t total)
{
    double sum = 0.0;
    for (int64_t r = first; r < total; r += step) {
        int64_t rem = r, ry = 0, ro = 0;
        for (int k = rd->nr - 1; k >= 0; k--) {
            int64_t idx = rem % rd->rdims[k];
            rem /= rd->rdims[k];
            ry += idx * rd->ry[k];
            ro += idx * rd->ro[k];
        }
        sum = __dadd_rn(sum, red_term(term, dy[oy + ry], s, u, o, oo + ro));
    }
    return sum;
}

static __device__ void red_store(float *out, int64_t u, double sum, int accumulate, double div)
{
    float v = (float)(sum / div);
    out[u] = accumulate ? __fadd_rn(out[u], v) : v;
}

/* A thread per output: short reductions summed serially. */
static __global__ void reduce_thread(struct qc_k_red rd, int term, const float *dy,
                                     const float *s, const float *o, float *out, int accumulate,
                                     double div, int64_t nout, int64_t nred)
{
    for (int64_t u = (int64_t)blockIdx.x * NT + threadIdx.x; u < nout;
         u += (int64_t)gridDim.x * NT) {
        int64_t oy, oo;
        red_kept(&rd, u, &oy, &oo);
        red_store(out, u, red_sum(&rd, term, dy, s, o, u, oy, oo, 0, 1, nred), accumulate, div);
    }
}

/* A block per output: thread t sums r = t, t + NT, ..., then a fixed tree. */
static __global__ void reduce_block(struct qc_k_red rd, int term, const float *dy,
                                    const float *s, const float *o, float *out, int accumulate,
                                    double div, int64_t nout, int64_t nred)
{
    __shared__ double shd[NT];
    for (int64_t u = blockIdx.x; u < nout; u += gridDim.x) {
        int64_t oy, oo;
        double sum;
        red_kept(&rd, u, &oy, &oo);
        sum = block_sum(red_sum(&rd, term, dy, s, o, u, oy, oo, threadIdx.x, NT, nred), shd);
        if (threadIdx.x == 0)
            red_store(out, u, sum, accumulate, div);
    }
}

extern "C" int qc_k_reduce(struct qc_k_red r, int term, const float *dy, const float *s,
                           const float *o, float *out, int accumulate, double div)
{
    int64_t nout = 1, nred = 1;
    for (int k = 0; k < r.nk; k++)
        nout *= r.kdims[k];
    for (int k = 0; k < r.nr; k++)
        nred *= r.rdims[k];
    if (nout <= 0)
        return 0;
    if (nred <= SHORT_RED)
        reduce_thread<<<grid_for(nout), NT>>>(r, term, dy, s, o, out, accumulate, div, nout, nred);
    else
        reduce_block<<<grid_rows(nout), NT>>>(r, term, dy, s, o, out, accumulate, div, nout, nred);
    return (int)cudaGetLastError();
}
