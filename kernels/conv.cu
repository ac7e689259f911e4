/*
 * conv.cu - the convolution and Gemm kernels of the CUDA backend around
 * cuBLAS sgemm (driven by src/backend/cuda_conv.c, launchers declared in
 * qc_conv_kernels.h): im2col of a chunk of images into one wide column
 * matrix per group, the scatter of the product back to NCHW with the bias,
 * the gather of dY per group, col2im in gather form (each dx element sums
 * the column entries that read it, in a fixed order), the direct depthwise
 * kernels, per-channel and whole-array sums for the bias gradients, and the
 * C broadcast / dC reduction of Gemm.
 *
 * Float parity with the CPU (src/ops/conv.c, gemm.c): element arithmetic
 * uses the explicitly rounded intrinsics, which nvcc never contracts into
 * FMAs, in the CPU's per-element order; the depthwise forward and input
 * gradient and Gemm's C terms are therefore bit-identical to the CPU, the
 * sums (bias and depthwise weight gradients) are double sums in a fixed
 * tree order, which differ from the CPU's float lanes only by rounding.
 * No atomics: every output element has one writer.
 */
#include "qc_conv_kernels.h"
#include "qc_device.cuh"

#include <cuda_runtime.h>

static __device__ int64_t kvol(const struct qc_k_conv_geom &g)
{
    return g.kernel[0] * g.kernel[1] * g.kernel[2];
}

static __device__ int64_t ovol(const struct qc_k_conv_geom &g)
{
    return g.out[0] * g.out[1] * g.out[2];
}

static __device__ int64_t ivol(const struct qc_k_conv_geom &g)
{
    return g.in[0] * g.in[1] * g.in[2];
}

/* Input position of output position o under tap k (i = o*s - pad + k*dil per
 * axis) as a flat index into one plane, or -1 in the padding. */
static __device__ int64_t tap_input(const struct qc_k_conv_geom &g, int64_t o, int64_t k)
{
    int64_t ow = o % g.out[2], t = o / g.out[2];
    int64_t oh = t % g.out[1], od = t / g.out[1];
    int64_t kw = k % g.kernel[2], kt = k / g.kernel[2];
    int64_t kh = kt % g.kernel[1], kd = kt / g.kernel[1];
    int64_t id = od * g.stride[0] - g.pad[0] + kd * g.dilation[0];
    int64_t ih = oh * g.stride[1] - g.pad[1] + kh * g.dilation[1];
    int64_t iw = ow * g.stride[2] - g.pad[2] + kw * g.dilation[2];
    if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1] || iw < 0 || iw >= g.in[2])
        return -1;
    return (id * g.in[1] + ih) * g.in[2] + iw;
}

/* Output position of plane position i under tap k (o = (i + pad - k*dil)/s
 * per axis when exact and in range), or -1. */
static __device__ int64_t tap_output(const struct qc_k_conv_geom &g, int64_t i, int64_t k)
{
    int64_t iw = i % g.in[2], t = i / g.in[2];
    int64_t ih = t % g.in[1], id = t / g.in[1];
    int64_t kw = k % g.kernel[2], kt = k / g.kernel[2];
    int64_t kh = kt % g.kernel[1], kd = kt / g.kernel[1];
    int64_t td = id + g.pad[0] - kd * g.dilation[0];
    int64_t th = ih + g.pad[1] - kh * g.dilation[1];
    int64_t tw = iw + g.pad[2] - kw * g.dilation[2];
    if (td < 0 || th < 0 || tw < 0 || td % g.stride[0] || th % g.stride[1] || tw % g.stride[2])
        return -1;
    td /= g.stride[0];
    th /= g.stride[1];
    tw /= g.stride[2];
    if (td >= g.out[0] || th >= g.out[1] || tw >= g.out[2])
        return -1;
    return (td * g.out[1] + th) * g.out[2] + tw;
}

/* ---- lowering ---------------------------------------------------------------------------- */

/* Rows of col over blockIdx.y, columns (image, position) over x. */
static __global__ void im2col_k(struct qc_k_conv_geom g, const float *x, int64_t grp,
                                float *col)
{
    int64_t kv = kvol(g), l = ovol(g), iv = ivol(g);
    int64_t rows = g.cg * kv, ncols = g.batch * l;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        int64_t c = r / kv, k = r % kv;
        const float *xc = x + (grp * g.cg + c) * iv;
        float *crow = col + r * ncols;
        for (int64_t q = (int64_t)blockIdx.x * NT + threadIdx.x; q < ncols;
             q += (int64_t)gridDim.x * NT) {
            int64_t n = q / l, o = q % l;
            int64_t i = tap_input(g, o, k);
            crow[q] = i < 0 ? 0.0f : xc[n * g.c_in * iv + i];
        }
    }
}

extern "C" int qc_k_im2col(const struct qc_k_conv_geom *g, const float *x, int64_t grp,
                           float *col)
{
    int64_t rows = g->cg * g->kernel[0] * g->kernel[1] * g->kernel[2];
    int64_t ncols = g->batch * g->out[0] * g->out[1] * g->out[2];
    if (rows <= 0 || ncols <= 0)
        return 0;
    dim3 grid(grid_for(ncols), grid_rows(rows));
    im2col_k<<<grid, NT>>>(*g, x, grp, col);
    return (int)cudaGetLastError();
}

/* dx[n, grp*cg + c, i] += sum_kv col[c*KV + kv, n*L + o(i, kv)], row order. */
static __global__ void col2im_k(struct qc_k_conv_geom g, const float *col, int64_t grp,
                                float *dx)
{
    int64_t kv = kvol(g), l = ovol(g), iv = ivol(g);
    int64_t ncols = g.batch * l, total = g.batch * g.cg * iv;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * NT) {
        int64_t i = e % iv, t = e / iv;
        int64_t c = t % g.cg, n = t / g.cg;
        float *dst = dx + (n * g.c_in + grp * g.cg + c) * iv + i;
        float acc = *dst;
        for (int64_t k = 0; k < kv; k++) {
            int64_t o = tap_output(g, i, k);
            if (o >= 0)
                acc = __fadd_rn(acc, col[(c * kv + k) * ncols + n * l + o]);
        }
        *dst = acc;
    }
}

extern "C" int qc_k_col2im_add(const struct qc_k_conv_geom *g, const float *col, int64_t grp,
                               float *dx)
{
    int64_t total = g->batch * g->cg * g->in[0] * g->in[1] * g->in[2];
    if (total <= 0)
        return 0;
    col2im_k<<<grid_for(total), NT>>>(*g, col, grp, dx);
    return (int)cudaGetLastError();
}

/* y[n, grp*mg + m, o] = ybuf[m, n*L + o] (+ b[grp*mg + m]) */
static __global__ void scatter_k(struct qc_k_conv_geom g, const float *ybuf, const float *bias,
                                 int64_t grp, float *y)
{
    int64_t l = ovol(g), ncols = g.batch * l, total = g.batch * g.mg * l;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * NT) {
        int64_t o = e % l, t = e / l;
        int64_t m = t % g.mg, n = t / g.mg;
        float v = ybuf[m * ncols + n * l + o];
        if (bias)
            v = __fadd_rn(v, bias[grp * g.mg + m]);
        y[(n * g.c_out + grp * g.mg + m) * l + o] = v;
    }
}

extern "C" int qc_k_conv_scatter(const struct qc_k_conv_geom *g, const float *ybuf,
                                 const float *bias, int64_t grp, float *y)
{
    int64_t total = g->batch * g->mg * g->out[0] * g->out[1] * g->out[2];
    if (total <= 0)
        return 0;
    scatter_k<<<grid_for(total), NT>>>(*g, ybuf, bias, grp, y);
    return (int)cudaGetLastError();
}

/* dyg[m, n*L + o] = dy[n, grp*mg + m, o] */
static __global__ void gather_k(struct qc_k_conv_geom g, const float *dy, int64_t grp,
                                float *dyg)
{
    int64_t l = ovol(g), ncols = g.batch * l, total = g.batch * g.mg * l;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * NT) {
        int64_t o = e % l, t = e / l;
        int64_t m = t % g.mg, n = t / g.mg;
        dyg[m * ncols + n * l + o] = dy[(n * g.c_out + grp * g.mg + m) * l + o];
    }
}

extern "C" int qc_k_conv_gather(const struct qc_k_conv_geom *g, const float *dy, int64_t grp,
                                float *dyg)
{
    int64_t total = g->batch * g->mg * g->out[0] * g->out[1] * g->out[2];
    if (total <= 0)
        return 0;
    gather_k<<<grid_for(total), NT>>>(*g, dy, grp, dyg);
    return (int)cudaGetLastError();
}

/* ---- depthwise --------------------------------------------------------------------------- */

/* y[n,m,o] = b[m] + sum_kv w[m,kv] * x[n, m/mg, i(o,kv)], taps in order */
static __global__ void dw_forward_k(struct qc_k_conv_geom g, const float *x, const float *w,
                                    const float *bias, float *y)
{
    int64_t kv = kvol(g), l = ovol(g), iv = ivol(g), total = g.batch * g.c_out * l;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * NT) {
        int64_t o = e % l, t = e / l;
        int64_t m = t % g.c_out, n = t / g.c_out;
        const float *xp = x + (n * g.c_in + m / g.mg) * iv;
        float acc = bias ? bias[m] : 0.0f;
        for (int64_t k = 0; k < kv; k++) {
            int64_t i = tap_input(g, o, k);
            if (i >= 0)
                acc = __fadd_rn(acc, __fmul_rn(w[m * kv + k], xp[i]));
        }
        y[e] = acc;
    }
}

extern "C" int qc_k_depthwise_forward(const struct qc_k_conv_geom *g, const float *x,
                                      const float *w, const float *bias, float *y)
{
    int64_t total = g->batch * g->c_out * g->out[0] * g->out[1] * g->out[2];
    if (total <= 0)
        return 0;
    dw_forward_k<<<grid_for(total), NT>>>(*g, x, w, bias, y);
    return (int)cudaGetLastError();
}

/* dx[n,c,i] += sum_{m = c*mg ..} sum_kv w[m,kv] * dy[n,m,o(i,kv)], m outer, taps inner */
static __global__ void dw_backward_dx_k(struct qc_k_conv_geom g, const float *w,
                                        const float *dy, float *dx)
{
    int64_t kv = kvol(g), l = ovol(g), iv = ivol(g), total = g.batch * g.c_in * iv;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * NT) {
        int64_t i = e % iv, t = e / iv;
        int64_t c = t % g.c_in, n = t / g.c_in;
        float acc = dx[e];
        for (int64_t m = c * g.mg; m < (c + 1) * g.mg; m++) {
            const float *dyp = dy + (n * g.c_out + m) * l;
            for (int64_t k = 0; k < kv; k++) {
                int64_t o = tap_output(g, i, k);
                if (o >= 0)
                    acc = __fadd_rn(acc, __fmul_rn(w[m * kv + k], dyp[o]));
            }
        }
        dx[e] = acc;
    }
}

extern "C" int qc_k_depthwise_backward_dx(const struct qc_k_conv_geom *g, const float *w,
                                          const float *dy, float *dx)
{
    int64_t total = g->batch * g->c_in * g->in[0] * g->in[1] * g->in[2];
    if (total <= 0)
        return 0;
    dw_backward_dx_k<<<grid_for(total), NT>>>(*g, w, dy, dx);
    return (int)cudaGetLastError();
}

/* dw[m,kv] += sum_n sum_o dy[n,m,o] * x[n, m/mg, i(o,kv)]: one block per (m, kv) */
static __global__ void dw_backward_dw_k(struct qc_k_conv_geom g, const float *x,
                                        const float *dy, float *dw)
{
    __shared__ double sh[NT];
    int64_t kv = kvol(g), l = ovol(g), iv = ivol(g);
    int64_t pairs = g.c_out * kv, len = g.batch * l;
    for (int64_t p = blockIdx.x; p < pairs; p += gridDim.x) {
        int64_t m = p / kv, k = p % kv;
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < len; j += NT) {
            int64_t n = j / l, o = j % l;
            int64_t i = tap_input(g, o, k);
            if (i >= 0)
                s = __dadd_rn(s, (double)__fmul_rn(dy[(n * g.c_out + m) * l + o],
                                                   x[(n * g.c_in + m / g.mg) * iv + i]));
        }
        s = block_sum(s, sh);
        if (threadIdx.x == 0)
            dw[p] = __fadd_rn(dw[p], (float)s);
    }
}

extern "C" int qc_k_depthwise_backward_dw(const struct qc_k_conv_geom *g, const float *x,
                                          const float *dy, float *dw)
{
    int64_t pairs = g->c_out * g->kernel[0] * g->kernel[1] * g->kernel[2];
    if (pairs <= 0)
        return 0;
    dw_backward_dw_k<<<grid_rows(pairs), NT>>>(*g, x, dy, dw);
    return (int)cudaGetLastError();
}

/* ---- sums -------------------------------------------------------------------------------- */

/* dst[ch] += (float)(sum_n sum_k v[(n*c + ch)*inner + k]): one block per channel */
static __global__ void channel_sum_k(const float *v, int64_t nb, int64_t c, int64_t inner,
                                     float *dst)
{
    __shared__ double sh[NT];
    int64_t len = nb * inner;
    for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < len; j += NT)
            s = __dadd_rn(s, (double)v[((j / inner) * c + ch) * inner + j % inner]);
        s = block_sum(s, sh);
        if (threadIdx.x == 0)
            dst[ch] = __fadd_rn(dst[ch], (float)s);
    }
}

extern "C" int qc_k_channel_sum_add(const float *v, int64_t nb, int64_t c, int64_t inner,
                                    float *dst)
{
    if (c <= 0)
        return 0;
    channel_sum_k<<<grid_rows(c), NT>>>(v, nb, c, inner, dst);
    return (int)cudaGetLastError();
}

/* dst[0] += beta * (float)(sum v): one block */
static __global__ void sum_scaled_k(const float *v, int64_t n, float beta, float *dst)
{
    __shared__ double sh[NT];
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < n; j += NT)
        s = __dadd_rn(s, (double)v[j]);
    s = block_sum(s, sh);
    if (threadIdx.x == 0)
        dst[0] = __fadd_rn(dst[0], __fmul_rn(beta, (float)s));
}

extern "C" int qc_k_sum_scaled_add(const float *v, int64_t n, float beta, float *dst)
{
    sum_scaled_k<<<1, NT>>>(v, n, beta, dst);
    return (int)cudaGetLastError();
}

/* ---- Gemm -------------------------------------------------------------------------------- */

/* y[i,j] = beta * c[i*rs + j*cs] */
static __global__ void gemm_fill_c_k(float *y, const float *c, float beta, int64_t m, int64_t n,
                                     int64_t rs, int64_t cs)
{
    int64_t total = m * n;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * NT)
        y[e] = __fmul_rn(beta, c[(e / n) * rs + (e % n) * cs]);
}

extern "C" int qc_k_gemm_fill_c(float *y, const float *c, float beta, int64_t m, int64_t n,
                                int64_t rs, int64_t cs)
{
    if (m * n <= 0)
        return 0;
    gemm_fill_c_k<<<grid_for(m * n), NT>>>(y, c, beta, m, n, rs, cs);
    return (int)cudaGetLastError();
}

/* C element (r, q) of [cr, cc]: dc += beta*dy[i,j] over the (i, j) mapping to it,
 * row-major order (all i when rs == 0, all j when cs == 0) */
static __global__ void gemm_dc_k(const float *dy, float beta, int64_t m, int64_t n, int64_t cr,
                                 int64_t cc, int64_t rs, int64_t cs, float *dc)
{
    int64_t total = cr * cc;
    for (int64_t e = (int64_t)blockIdx.x * NT + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * NT) {
        int64_t r = e / cc, q = e % cc;
        int64_t i0 = rs ? r : 0, i1 = rs ? r + 1 : m;
        int64_t j0 = cs ? q : 0, j1 = cs ? q + 1 : n;
        float acc = dc[e];
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = j0; j < j1; j++)
                acc = __fadd_rn(acc, __fmul_rn(beta, dy[i * n + j]));
        dc[e] = acc;
    }
}

extern "C" int qc_k_gemm_dc(const float *dy, float beta, int64_t m, int64_t n, int64_t cr,
                            int64_t cc, int64_t rs, int64_t cs, float *dc)
{
    if (cr * cc <= 0)
        return 0;
    gemm_dc_k<<<grid_for(cr * cc), NT>>>(dy, beta, m, n, cr, cc, rs, cs, dc);
    return (int)cudaGetLastError();
}
