/*
 * quant.cu - the SAT and LSQ quantizers on the GPU, with the semantics of
 * src/backend/cpu_quant.c (formulas in src/backend/cpu_train.h).
 *
 * Float parity with the CPU: every element formula is written with the
 * explicitly rounded intrinsics (__fmul_rn, __fadd_rn, ...), which nvcc never
 * contracts into FMAs, so each operation rounds exactly as the CPU build
 * (no FMA contraction on x86-64 without -march) does; rintf rounds half to
 * even as on the host.  Hence SAT activation and LSQ values, levels and
 * input gradients are bit-identical to the CPU.  The one exception is
 * tanh: the device evaluates (float)tanh((double)w), the host libm's
 * tanhf, and the two may differ in the last bit, so SAT weight values can
 * differ by that much and, rarely, a level on a rounding boundary by one.
 *
 * Launch sequences (all on the default stream, see qc_kernels.h):
 *   SAT weight forward:  tanh_max → levels (+ Σk, Σk² per part) → finish
 *     (S, scale and the state; Q = k·scale): three launches, the reductions
 *     on the device, each later kernel re-reading the QC_K_NPART partials.
 *   SAT weight backward: one element-wise kernel (m, S read from the state).
 *   CG-PACT / LSQ forward: one element-wise kernel.
 *   CG-PACT / LSQ backward: one kernel (dx and the per-part sums of the
 *     scalar gradient) and one single-thread reduction adding the parts in
 *     order into the device scalar.
 *   Per channel (the _ch launchers, any layout): one launch each, the
 *     reductions one block per channel.
 */
#include "qc_kernels.h"
#include "qc_device.cuh"

#include <cuda_runtime.h>
#include <math.h>

#include "../src/backend/train_kernels.h"


/* [lo, hi) of part c: boundaries depend on n only. */
static __device__ int64_t part_lo(int64_t n, int c)
{
    int64_t r = n % QC_K_NPART;
    return n / QC_K_NPART * c + (c < r ? c : r);
}

/* Block-wide max of non-negative floats (NaN never wins, as on the CPU). */
static __device__ float block_max(float v, float *sh)
{
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = NT / 2; s > 0; s >>= 1) {
        if (t < s && sh[t + s] > sh[t])
            sh[t] = sh[t + s];
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

static __device__ float clampf_nan(float v, float lo, float hi)
{
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return v;
}

static __device__ float dev_tanh(float x)
{
    return (float)tanh((double)x);
}

/* ---- SAT weights ------------------------------------------------------------------------ */

/* SYMMETRIC and ASYMMETRIC with R' = floor(R/2) = 0 (R = 1) use the DEFAULT grid. */
static int eff_mode(int mode, int range)
{
    if ((mode == QC_SAT_SYMMETRIC || mode == QC_SAT_ASYMMETRIC) && range / 2 == 0)
        return QC_SAT_DEFAULT;
    return mode;
}

/* Level k (integral float) of r = t/m for the effective mode; sat.c's sat_level. */
static __device__ float sat_level(int mode, int range, float r)
{
    float rf = (float)range;
    if (mode == QC_SAT_SYMMETRIC) {
        /* k = rne(R'·r) ∈ [−R', R'] */
        float rp = (float)(range / 2);
        return clampf_nan(rintf(__fmul_rn(rp, r)), -rp, rp);
    }
    if (mode == QC_SAT_ASYMMETRIC) {
        /* p = (1 + 1/(2R'))·r − 1/(2R'), k = rne(R'·p) ∈ [−R'−1, R'] */
        float rp = (float)(range / 2), a = __fdiv_rn(0.5f, rp);
        float p = __fsub_rn(__fmul_rn(__fadd_rn(1.0f, a), r), a);
        return clampf_nan(rintf(__fmul_rn(rp, p)), __fsub_rn(-rp, 1.0f), rp);
    }
    float u = __fmul_rn(0.5f, __fadd_rn(r, 1.0f));
    if (mode == QC_SAT_FULLRANGE) {
        /* u' = (1 + 0.9998/R)·u − 0.4999/R */
        u = __fsub_rn(__fmul_rn(__fadd_rn(1.0f, __fdiv_rn(0.9998f, rf)), u),
                      __fdiv_rn(0.4999f, rf));
    }
    /* j = rne(R·u) ∈ [0, R], k = 2j − R */
    float j = clampf_nan(rintf(__fmul_rn(rf, u)), 0.0f, rf);
    return __fsub_rn(__fmul_rn(2.0f, j), rf);
}

/* The clamp stage's value: r, or p = (1 + 1/(2R'))·r − 1/(2R') for ASYMMETRIC. */
static __device__ float sat_clamp_value(int mode, int range, float r)
{
    if (mode != QC_SAT_ASYMMETRIC)
        return r;
    float a = __fdiv_rn(0.5f, (float)(range / 2));
    return __fsub_rn(__fmul_rn(__fadd_rn(1.0f, a), r), a);
}

/* One element of the levels pass: v = k (quantized) or the clamp value of r = t/m, with
 * t = tanh(W_i) and m = max|t| (m = 0: v = 0), into q[i] (unscaled) and k[i] when given;
 * Σv and Σv² accumulate into *a1 and *a2.  sat_levels (per tensor) and sat_weight_fwd_ch
 * (per channel) share it, so both compute each element the same way. */
static __device__ void sat_elem(int mode, int range, int quant, float t, float m, float *q,
                                int32_t *k, int64_t i, double *a1, double *a2)
{
    float v = 0.0f; /* m = 0: Q = 0 */
    if (m > 0.0f) {
        float r = __fdiv_rn(t, m);
        v = quant ? sat_level(mode, range, r) : sat_clamp_value(mode, range, r);
    }
    if (q)
        q[i] = v;
    if (k)
        k[i] = v == v ? (int32_t)v : 0;
    *a1 = __dadd_rn(*a1, (double)v);
    *a2 = __dadd_rn(*a2, __dmul_rn((double)v, (double)v));
}

/* Pass 1, one block per part: t = tanh(W) (into q when given), pmax[part] = max|t|. */
static __global__ void sat_tanh_max(const float *w, float *q, int64_t n, float *pmax)
{
    __shared__ float sh[NT];
    int64_t lo = part_lo(n, blockIdx.x), hi = part_lo(n, blockIdx.x + 1);
    float m = 0.0f;
    for (int64_t i = lo + threadIdx.x; i < hi; i += NT) {
        float t = dev_tanh(w[i]), a = fabsf(t);
        if (q)
            q[i] = t;
        if (a > m)
            m = a;
    }
    m = block_max(m, sh);
    if (threadIdx.x == 0)
        pmax[blockIdx.x] = m;
}

/* max over the parts (exact, hence order-free). */
static __device__ float parts_max(const float *pmax)
{
    float m = 0.0f;
    for (int c = 0; c < QC_K_NPART; c++)
        if (pmax[c] > m)
            m = pmax[c];
    return m;
}

/* Pass 2, one block per part: v = k (quantized) or the clamp value, into q (unscaled) and
 * k; ps1/ps2[part] = Σv, Σv². */
static __global__ void sat_levels(int mode, int range, int quant, const float *w, float *q,
                                  int32_t *k, int64_t n, const float *pmax, double *ps1,
                                  double *ps2)
{
    __shared__ double sh[NT];
    __shared__ float m_sh;
    int64_t lo = part_lo(n, blockIdx.x), hi = part_lo(n, blockIdx.x + 1);
    double a1 = 0.0, a2 = 0.0;
    if (threadIdx.x == 0)
        m_sh = parts_max(pmax);
    __syncthreads();
    float m = m_sh;
    for (int64_t i = lo + threadIdx.x; i < hi; i += NT)
        sat_elem(mode, range, quant, q ? q[i] : dev_tanh(w[i]), m, q, k, i, &a1, &a2);
    a1 = block_sum(a1, sh);
    a2 = block_sum(a2, sh);
    if (threadIdx.x == 0) {
        ps1[blockIdx.x] = a1;
        ps2[blockIdx.x] = a2;
    }
}

/* Pass 3: S = sqrt(F · var_unbiased(Q)) (var 0: mean(Q²); guard: 1), scale = 1/(div·S); Q = v·scale.
 * Every block recomputes the scalars from the partials (in part order); block 0 writes the
 * state. */
static __global__ void sat_finish(int quant, int apply_scaling, int64_t fanout, int div,
                                  int64_t n, const float *pmax, const double *ps1,
                                  const double *ps2, float *q, struct qc_k_sat_wstate *st)
{
    __shared__ float scale_sh, m_sh, s_sh;
    if (threadIdx.x == 0) {
        double S = 1.0;
        if (apply_scaling && n > 1) {
            double sum = 0.0, sq = 0.0;
            for (int c = 0; c < QC_K_NPART; c++) {
                sum = __dadd_rn(sum, ps1[c]);
                sq = __dadd_rn(sq, ps2[c]);
            }
            double var = __ddiv_rn(__dsub_rn(sq, __dmul_rn(sum, __ddiv_rn(sum, (double)n))),
                                   (double)(n - 1));
            if (!(var > 0.0))   /* every Q equal: the second moment (cpu_quant.c) */
                var = __ddiv_rn(sq, (double)n);
            if (quant)
                var = __ddiv_rn(var, __dmul_rn((double)div, (double)div));
            S = sqrt(__dmul_rn((double)fanout, var));
            if (!(S > 0.0) || !isfinite(S))
                S = 1.0;
        }
        scale_sh = (float)__ddiv_rn(1.0, __dmul_rn(quant ? (double)div : 1.0, S));
        m_sh = parts_max(pmax);
        s_sh = (float)S;
    }
    __syncthreads();
    float scale = scale_sh;
    if (q) {
        for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
             i += (int64_t)gridDim.x * NT)
            q[i] = __fmul_rn(q[i], scale);
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        st->m = m_sh;
        st->s = s_sh;
        st->scale = scale;
        st->div = quant ? div : 1;
    }
}

extern "C" int qc_k_sat_weight_forward(int mode, int range, int apply_quant, int apply_scaling,
                                       int64_t fanout, const float *w, float *q, int32_t *k,
                                       int64_t n, struct qc_k_sat_wstate *st, void *work)
{
    float *pmax = (float *)work;
    double *ps1 = (double *)work + QC_K_NPART, *ps2 = ps1 + QC_K_NPART;
    int em = eff_mode(mode, range);
    int div = em == QC_SAT_SYMMETRIC || em == QC_SAT_ASYMMETRIC ? range / 2 : range;
    int e;

    if (n < 0 || range < 1 || range > QC_QUANT_RANGE_MAX)
        return (int)cudaErrorInvalidValue;
    sat_tanh_max<<<QC_K_NPART, NT>>>(w, q, n, pmax);
    if ((e = (int)cudaGetLastError()))
        return e;
    sat_levels<<<QC_K_NPART, NT>>>(em, range, apply_quant, w, q, k, n, pmax, ps1, ps2);
    if ((e = (int)cudaGetLastError()))
        return e;
    sat_finish<<<q ? grid_for(n) : 1, NT>>>(apply_quant, apply_scaling, fanout, div, n, pmax,
                                            ps1, ps2, q, st);
    return (int)cudaGetLastError();
}

/* dW_i += dQ_i · (f · (1 − t_i²)), f = (float)(c/(m·S)), t = tanh(W) */
static __global__ void sat_weight_bwd(double c, int apply_scaling,
                                      const struct qc_k_sat_wstate *st, const float *w,
                                      const float *dq, float *dw, int64_t n)
{
    float sm = st->m, ss = st->s;
    double m = sm > 0.0f ? (double)sm : 1.0;
    double S = apply_scaling && ss > 0.0f ? (double)ss : 1.0;
    float f = (float)__ddiv_rn(c, __dmul_rn(m, S));
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        float t = dev_tanh(w[i]);
        float d = __fmul_rn(dq[i], __fmul_rn(f, __fsub_rn(1.0f, __fmul_rn(t, t))));
        dw[i] = __fadd_rn(dw[i], d);
    }
}

extern "C" int qc_k_sat_weight_backward(int mode, int range, int apply_quant, int apply_scaling,
                                        const struct qc_k_sat_wstate *st, const float *w,
                                        const float *dq, float *dw, int64_t n)
{
    int em = eff_mode(mode, range);
    double c = 1.0;
    if (range < 1 || range > QC_QUANT_RANGE_MAX)
        return (int)cudaErrorInvalidValue;
    if (n <= 0)
        return 0;
    /* the slope of the pre-rounding map of t/m */
    if (em == QC_SAT_ASYMMETRIC)
        c = 1.0 + 1.0 / (2.0 * (double)(range / 2));
    else if (em == QC_SAT_FULLRANGE && apply_quant)
        c = 1.0 + 0.9998 / (double)range;
    sat_weight_bwd<<<grid_for(n), NT>>>(c, apply_scaling, st, w, dq, dw, n);
    return (int)cudaGetLastError();
}

/* ---- CG-PACT activations ------------------------------------------------------------------ */

static __device__ float alpha_used(float alpha)
{
    return alpha < QC_SAT_ALPHA_MIN ? QC_SAT_ALPHA_MIN : alpha;
}

/* y = j·h, j = clamp(rne(x/h), 0, R), h = a/R */
static __global__ void sat_act_fwd(const float *alpha, int range, const float *x, float *y,
                                   int64_t n)
{
    float rf = (float)range, h = __fdiv_rn(alpha_used(*alpha), rf);
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        float j = clampf_nan(rintf(__fdiv_rn(x[i], h)), 0.0f, rf);
        y[i] = __fmul_rn(j, h);
    }
}

extern "C" int qc_k_sat_act_forward(const float *alpha, int range, const float *x, float *y,
                                    int64_t n)
{
    if (range < 1 || range > QC_QUANT_RANGE_MAX)
        return (int)cudaErrorInvalidValue;
    if (n <= 0)
        return 0;
    sat_act_fwd<<<grid_for(n), NT>>>(alpha, range, x, y, n);
    return (int)cudaGetLastError();
}

/* dx_i += dy_i·[0 < x_i ≤ a];  part[b] = Σ dy_i·(1 if x_i ≥ a, 0 if x_i ≤ 0,
 * else j_i/R − x_i/a) over part b */
static __global__ void sat_act_bwd(const float *alpha, int range, const float *x,
                                   const float *dy, float *dx, int64_t n, double *part)
{
    __shared__ double sh[NT];
    float a = alpha_used(*alpha), rf = (float)range, h = __fdiv_rn(a, rf);
    int64_t lo = part_lo(n, blockIdx.x), hi = part_lo(n, blockIdx.x + 1);
    double acc = 0.0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += NT) {
        float xi = x[i], g = dy[i];
        if (dx && xi > 0.0f && xi <= a)
            dx[i] = __fadd_rn(dx[i], g);
        if (xi >= a) {
            acc = __dadd_rn(acc, (double)g);
        } else if (xi > 0.0f) {
            float j = clampf_nan(rintf(__fdiv_rn(xi, h)), 0.0f, rf);
            double t = __dsub_rn(__ddiv_rn((double)j, (double)range),
                                 __ddiv_rn((double)xi, (double)a));
            acc = __dadd_rn(acc, __dmul_rn((double)g, t));
        } else if (xi != xi) {
            acc = __dadd_rn(acc, __dmul_rn((double)g, (double)xi));   /* NaN stays NaN */
        }
    }
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

/* *out += (float)(g · Σ part[c]), the parts added in order by one thread. */
static __global__ void parts_reduce(const double *part, double g, float *out)
{
    double sum = 0.0;
    for (int c = 0; c < QC_K_NPART; c++)
        sum = __dadd_rn(sum, part[c]);
    *out = __fadd_rn(*out, (float)__dmul_rn(g, sum));
}

extern "C" int qc_k_sat_act_backward(const float *alpha, int range, const float *x,
                                     const float *dy, float *dx, int64_t n, float *dalpha,
                                     void *work)
{
    double *part = (double *)work;
    int e;
    if (range < 1 || range > QC_QUANT_RANGE_MAX)
        return (int)cudaErrorInvalidValue;
    if (n <= 0)
        return 0;
    sat_act_bwd<<<QC_K_NPART, NT>>>(alpha, range, x, dy, dx, n, part);
    if ((e = (int)cudaGetLastError()))
        return e;
    parts_reduce<<<1, 1>>>(part, 1.0, dalpha);
    return (int)cudaGetLastError();
}

/* ---- LSQ ------------------------------------------------------------------------------- */

static __device__ float step_used(float s)
{
    return s < QC_LSQ_STEP_MIN ? QC_LSQ_STEP_MIN : s;
}

/* rne(clamp(v, lo, hi)) for integral lo, hi; NaN passes through */
static __device__ float lsq_level(float v, float lo, float hi)
{
    return clampf_nan(rintf(v), lo, hi);
}

/* y = rne(clamp(x/s, −Qn, Qp))·s */
static __global__ void lsq_fwd(const float *step, float lo, float hi, const float *x, float *y,
                               int64_t n)
{
    float s = step_used(*step);
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT)
        y[i] = __fmul_rn(lsq_level(__fdiv_rn(x[i], s), lo, hi), s);
}

extern "C" int qc_k_lsq_forward(const float *step, int qn, int qp, const float *x, float *y,
                                int64_t n)
{
    if (n <= 0)
        return 0;
    lsq_fwd<<<grid_for(n), NT>>>(step, (float)-qn, (float)qp, x, y, n);
    return (int)cudaGetLastError();
}

/* LSQ's backward at one element, v = x/s on the levels [lo, hi]: dx += dy where v lies
 * inside; returns the step gradient's factor (lo or hi where v clips, else
 * rne(v) − v) and sets *clipped. */
static __device__ float lsq_bwd_elem(float x, float s, float lo, float hi, float d, float *dx,
                                     int *clipped)
{
    float v = __fdiv_rn(x, s);
    *clipped = 1;
    if (v <= lo)
        return lo;
    if (v >= hi)
        return hi;
    *clipped = 0;
    if (dx)
        *dx = __fadd_rn(*dx, d);
    return __fsub_rn(rintf(v), v);
}

/* dx_i += dy_i·[−Qn < v_i < Qp];  part[b] = Σ dy_i·(−Qn if v_i ≤ −Qn, Qp if v_i ≥ Qp,
 * else rne(v_i) − v_i), v = x/s */
static __global__ void lsq_bwd(const float *step, float lo, float hi, const float *x,
                               const float *dy, float *dx, int64_t n, double *part)
{
    __shared__ double sh[NT];
    float s = step_used(*step);
    int64_t b = part_lo(n, blockIdx.x), e = part_lo(n, blockIdx.x + 1);
    double acc = 0.0;
    for (int64_t i = b + threadIdx.x; i < e; i += NT) {
        int clipped;
        float t = lsq_bwd_elem(x[i], s, lo, hi, dy[i], dx ? &dx[i] : NULL, &clipped);
        acc = __dadd_rn(acc, __dmul_rn((double)dy[i], (double)t));
    }
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

extern "C" int qc_k_lsq_backward(const float *step, int qn, int qp, double g, const float *x,
                                 const float *dy, float *dx, int64_t n, float *dstep,
                                 void *work)
{
    double *part = (double *)work;
    int e;
    if (n <= 0)
        return 0;
    lsq_bwd<<<QC_K_NPART, NT>>>(step, (float)-qn, (float)qp, x, dy, dx, n, part);
    if ((e = (int)cudaGetLastError()))
        return e;
    parts_reduce<<<1, 1>>>(part, g, dstep);
    return (int)cudaGetLastError();
}

/* ---- asymmetric LSQ (qc_lsq_forward_zp / _backward_zp / qc_lsq_init_zero_point) ---------- */

/* z = clamp(rne(zf), −qn, qp), NaN: 0 (qc_lsq_zero_point) */
static __device__ float lsq_zero_point(float zf, int qn, int qp)
{
    float z = rintf(zf);
    return z != z ? 0.0f : clampf_nan(z, (float)-qn, (float)qp);
}

/* y = rne(clamp(x/s, −qn − z, qp − z))·s = s·(clamp(rne(x/s) + z, −qn, qp) − z) */
static __global__ void lsq_fwd_zp(const float *step, const float *zf, int qn, int qp,
                                  const float *x, float *y, int64_t n)
{
    float s = step_used(*step), z = lsq_zero_point(*zf, qn, qp);
    float lo = __fsub_rn((float)-qn, z), hi = __fsub_rn((float)qp, z);
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT)
        y[i] = __fmul_rn(lsq_level(__fdiv_rn(x[i], s), lo, hi), s);
}

extern "C" int qc_k_lsq_forward_zp(const float *step, const float *zf, int qn, int qp,
                                   const float *x, float *y, int64_t n)
{
    if (n <= 0)
        return 0;
    lsq_fwd_zp<<<grid_for(n), NT>>>(step, zf, qn, qp, x, y, n);
    return (int)cudaGetLastError();
}

/* lsq_bwd on the shifted levels lo = −qn − z, hi = qp − z, and cpart[b] = Σ dy_i over the
 * clipped elements (v_i ≤ lo or v_i ≥ hi) of part b */
static __global__ void lsq_bwd_zp(const float *step, const float *zf, int qn, int qp,
                                  const float *x, const float *dy, float *dx, int64_t n,
                                  double *part, double *cpart)
{
    __shared__ double sh[NT];
    float s = step_used(*step), z = lsq_zero_point(*zf, qn, qp);
    float lo = __fsub_rn((float)-qn, z), hi = __fsub_rn((float)qp, z);
    int64_t b = part_lo(n, blockIdx.x), e = part_lo(n, blockIdx.x + 1);
    double acc = 0.0, cacc = 0.0;
    for (int64_t i = b + threadIdx.x; i < e; i += NT) {
        int clipped;
        float d = dy[i], t = lsq_bwd_elem(x[i], s, lo, hi, d, dx ? &dx[i] : NULL, &clipped);
        if (clipped)
            cacc = __dadd_rn(cacc, (double)d);
        acc = __dadd_rn(acc, __dmul_rn((double)d, (double)t));
    }
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
    __syncthreads();
    cacc = block_sum(cacc, sh);
    if (threadIdx.x == 0)
        cpart[blockIdx.x] = cacc;
}

/* *dstep += g·Σ part; *dzf += −s·(g·Σ cpart) (dzf may be NULL: z frozen) */
static __global__ void lsq_zp_reduce(const float *step, const double *part, const double *cpart,
                                     double g, float *dstep, float *dzf)
{
    double sum = 0.0, csum = 0.0;
    for (int c = 0; c < QC_K_NPART; c++) {
        sum = __dadd_rn(sum, part[c]);
        csum = __dadd_rn(csum, cpart[c]);
    }
    *dstep = __fadd_rn(*dstep, (float)__dmul_rn(g, sum));
    if (dzf)
        *dzf = __fadd_rn(*dzf, (float)__dmul_rn(-(double)step_used(*step), __dmul_rn(g, csum)));
}

extern "C" int qc_k_lsq_backward_zp(const float *step, const float *zf, int qn, int qp, double g,
                                    const float *x, const float *dy, float *dx, int64_t n,
                                    float *dstep, float *dzf, void *work)
{
    double *part = (double *)work, *cpart = part + QC_K_NPART;
    int e;
    if (n <= 0)
        return 0;
    lsq_bwd_zp<<<QC_K_NPART, NT>>>(step, zf, qn, qp, x, dy, dx, n, part, cpart);
    if ((e = (int)cudaGetLastError()))
        return e;
    lsq_zp_reduce<<<1, 1>>>(step, part, cpart, g, dstep, dzf);
    return (int)cudaGetLastError();
}

/* part[b] = min(0, min x over part b), part[NPART + b] = max(0, max ...); NaN ignored */
static __global__ void minmax_parts(const float *x, int64_t n, float *part)
{
    __shared__ float lo_sh[NT], hi_sh[NT];
    int64_t b = part_lo(n, blockIdx.x), e = part_lo(n, blockIdx.x + 1);
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = b + threadIdx.x; i < e; i += NT) {
        if (x[i] < lo)
            lo = x[i];
        if (x[i] > hi)
            hi = x[i];
    }
    lo_sh[threadIdx.x] = lo;
    hi_sh[threadIdx.x] = hi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int t = 1; t < NT; t++) {
            lo = lo_sh[t] < lo ? lo_sh[t] : lo;
            hi = hi_sh[t] > hi ? hi_sh[t] : hi;
        }
        part[blockIdx.x] = lo;
        part[QC_K_NPART + blockIdx.x] = hi;
    }
}

/* s = max((hi − lo)/(qn + qp), QC_LSQ_STEP_MIN) unless keep_step; zf = clamp(rne(−qn − lo/s))
 * (min and max are exact in any order: the host's values) */
static __global__ void lsq_zp_init_finish(const float *part, int qn, int qp, int keep_step,
                                          float *step, float *zf)
{
    float lo = 0.0f, hi = 0.0f, s;
    for (int c = 0; c < QC_K_NPART; c++) {
        lo = part[c] < lo ? part[c] : lo;
        hi = part[QC_K_NPART + c] > hi ? part[QC_K_NPART + c] : hi;
    }
    if (!keep_step)
        *step = step_used(__fdiv_rn(__fsub_rn(hi, lo), (float)(qn + qp > 0 ? qn + qp : 1)));
    s = step_used(*step);
    *zf = lsq_zero_point(__fsub_rn((float)-qn, __fdiv_rn(lo, s)), qn, qp);
}

extern "C" int qc_k_lsq_init_zero_point(const float *x, int64_t n, int qn, int qp, int keep_step,
                                        float *step, float *zf, void *work)
{
    float *part = (float *)work;
    int e;
    minmax_parts<<<QC_K_NPART, NT>>>(x, n > 0 ? n : 0, part);
    if ((e = (int)cudaGetLastError()))
        return e;
    lsq_zp_init_finish<<<1, 1>>>(part, qn, qp, keep_step, step, zf);
    return (int)cudaGetLastError();
}

/* ---- LSQ step initialisation (qc_lsq_init_step) ----------------------------------------- */

/* part[b] = Σ |x_i| over part b, in double */
static __global__ void abs_sum_parts(const float *x, int64_t n, double *part)
{
    __shared__ double sh[NT];
    int64_t lo = part_lo(n, blockIdx.x), hi = part_lo(n, blockIdx.x + 1);
    double acc = 0.0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += NT)
        acc = __dadd_rn(acc, (double)fabsf(x[i]));
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

/* s = max(2·mean|x|/sqrt(Qp), QC_LSQ_STEP_MIN), the parts added in order by one thread */
static __global__ void lsq_init_finish(const double *part, int64_t n, double root_qp, float *step)
{
    double sum = 0.0;
    for (int c = 0; c < QC_K_NPART; c++)
        sum = __dadd_rn(sum, part[c]);
    double mean = n > 0 ? __ddiv_rn(sum, (double)n) : 0.0;
    *step = step_used((float)__ddiv_rn(__dmul_rn(2.0, mean), root_qp));
}

extern "C" int qc_k_lsq_init_step(const float *x, int64_t n, int qp, float *step, void *work)
{
    double *part = (double *)work;
    int e;
    abs_sum_parts<<<QC_K_NPART, NT>>>(x, n > 0 ? n : 0, part);
    if ((e = (int)cudaGetLastError()))
        return e;
    lsq_init_finish<<<1, 1>>>(part, n, sqrt(qp > 0 ? (double)qp : 1.0), step);
    return (int)cudaGetLastError();
}

/* ---- per-channel quantizers (QWeight.PerChannel=1) --------------------------------------- */
/*
 * Layout ch = {nch, inner}: element i belongs to channel (i / inner) % nch, so channel c's
 * t-th element (t < nc = n/nch = outer·inner) is (⌊t/inner⌋·nch + c)·inner + t mod inner:
 * Conv and Gemm with transB (outer 1), ConvTranspose, Gemm without transB and MatMul
 * (outer > 1) alike.  Element-wise kernels read their element's channel parameter; the
 * reductions run one block per channel (the blocks loop over channels past 65535), each
 * summing its channel in double in the fixed tree order of block_sum, so every layout is
 * one launch, deterministic, with no workspace.
 */

static __device__ int64_t ch_elem(struct qc_k_channels ch, int64_t c, int64_t t)
{
    return (t / ch.inner * ch.nch + c) * ch.inner + t % ch.inner;
}

static __device__ int64_t ch_of(struct qc_k_channels ch, int64_t i)
{
    return i / ch.inner % ch.nch;
}

/* Whether ch describes n elements: nch ≥ 1, inner ≥ 1, n a multiple of nch·inner. */
static bool ch_ok(struct qc_k_channels ch, int64_t n)
{
    return ch.nch >= 1 && ch.inner >= 1 && n >= 0 && n % (ch.nch * ch.inner) == 0;
}

/* SAT weights, one block per channel c: m_c = max|tanh W|; v = k (quantized) or the clamp
 * value, k written; S_c = sqrt(F · var_unbiased(v)/div²) as sat_finish (var 0: mean(v²);
 * guard 1), scale_c = 1/(div·S_c), Q = v·scale_c; the state st[c]. */
static __global__ void sat_weight_fwd_ch(int mode, int range, int quant, int apply_scaling,
                                         int64_t fanout, int div, struct qc_k_channels ch,
                                         int64_t nc, const float *w, float *q, int32_t *k,
                                         struct qc_k_sat_wstate *st)
{
    __shared__ double sh[NT];
    __shared__ float fsh[NT];
    __shared__ float scale_sh;
    for (int64_t c = blockIdx.x; c < ch.nch; c += gridDim.x) {
        float m = 0.0f;
        double a1 = 0.0, a2 = 0.0;
        for (int64_t t = threadIdx.x; t < nc; t += NT) {
            float a = fabsf(dev_tanh(w[ch_elem(ch, c, t)]));
            if (a > m)
                m = a;
        }
        m = block_max(m, fsh);
        for (int64_t t = threadIdx.x; t < nc; t += NT) {
            int64_t i = ch_elem(ch, c, t);
            sat_elem(mode, range, quant, dev_tanh(w[i]), m, q, k, i, &a1, &a2);
        }
        a1 = block_sum(a1, sh);
        a2 = block_sum(a2, sh);
        if (threadIdx.x == 0) {
            double S = 1.0;
            if (apply_scaling && nc > 1) {
                double var = __ddiv_rn(__dsub_rn(a2, __dmul_rn(a1, __ddiv_rn(a1, (double)nc))),
                                       (double)(nc - 1));
                if (!(var > 0.0)) /* every Q equal: the second moment (cpu_quant.c) */
                    var = __ddiv_rn(a2, (double)nc);
                if (quant)
                    var = __ddiv_rn(var, __dmul_rn((double)div, (double)div));
                S = sqrt(__dmul_rn((double)fanout, var));
                if (!(S > 0.0) || !isfinite(S))
                    S = 1.0;
            }
            scale_sh = (float)__ddiv_rn(1.0, __dmul_rn(quant ? (double)div : 1.0, S));
            st[c].m = m;
            st[c].s = (float)S;
            st[c].scale = scale_sh;
            st[c].div = quant ? div : 1;
        }
        __syncthreads();
        float scale = scale_sh;
        for (int64_t t = threadIdx.x; q && t < nc; t += NT) {
            int64_t i = ch_elem(ch, c, t);
            q[i] = __fmul_rn(q[i], scale);
        }
        __syncthreads();
    }
}

extern "C" int qc_k_sat_weight_forward_ch(int mode, int range, int apply_quant,
                                          int apply_scaling, int64_t fanout,
                                          struct qc_k_channels ch, const float *w, float *q,
                                          int32_t *k, int64_t n, struct qc_k_sat_wstate *st)
{
    int em = eff_mode(mode, range);
    int div = em == QC_SAT_SYMMETRIC || em == QC_SAT_ASYMMETRIC ? range / 2 : range;
    if (!ch_ok(ch, n) || range < 1 || range > QC_QUANT_RANGE_MAX)
        return (int)cudaErrorInvalidValue;
    sat_weight_fwd_ch<<<grid_rows(ch.nch), NT>>>(em, range, apply_quant, apply_scaling, fanout,
                                                 div, ch, n / ch.nch, w, q, k, st);
    return (int)cudaGetLastError();
}

/* dW_i += dQ_i · (f_c · (1 − t_i²)), f_c = (float)(c/(m_c·S_c)), c the channel of i */
static __global__ void sat_weight_bwd_ch(double cs, int apply_scaling, struct qc_k_channels ch,
                                         const struct qc_k_sat_wstate *st, const float *w,
                                         const float *dq, float *dw, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        const struct qc_k_sat_wstate *sc = &st[ch_of(ch, i)];
        double m = sc->m > 0.0f ? (double)sc->m : 1.0;
        double S = apply_scaling && sc->s > 0.0f ? (double)sc->s : 1.0;
        float f = (float)__ddiv_rn(cs, __dmul_rn(m, S));
        float t = dev_tanh(w[i]);
        float d = __fmul_rn(dq[i], __fmul_rn(f, __fsub_rn(1.0f, __fmul_rn(t, t))));
        dw[i] = __fadd_rn(dw[i], d);
    }
}

extern "C" int qc_k_sat_weight_backward_ch(int mode, int range, int apply_quant,
                                           int apply_scaling, struct qc_k_channels ch,
                                           const struct qc_k_sat_wstate *st, const float *w,
                                           const float *dq, float *dw, int64_t n)
{
    int em = eff_mode(mode, range);
    double c = 1.0;
    if (!ch_ok(ch, n) || range < 1 || range > QC_QUANT_RANGE_MAX)
        return (int)cudaErrorInvalidValue;
    if (n == 0)
        return 0;
    /* the slope of the pre-rounding map of t/m, as qc_k_sat_weight_backward */
    if (em == QC_SAT_ASYMMETRIC)
        c = 1.0 + 1.0 / (2.0 * (double)(range / 2));
    else if (em == QC_SAT_FULLRANGE && apply_quant)
        c = 1.0 + 0.9998 / (double)range;
    sat_weight_bwd_ch<<<grid_for(n), NT>>>(c, apply_scaling, ch, st, w, dq, dw, n);
    return (int)cudaGetLastError();
}

/* y = rne(clamp(x/s_c, −Qn, Qp))·s_c, c the channel of i */
static __global__ void lsq_fwd_ch(const float *step, float lo, float hi,
                                  struct qc_k_channels ch, const float *x, float *y, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        float s = step_used(step[ch_of(ch, i)]);
        y[i] = __fmul_rn(lsq_level(__fdiv_rn(x[i], s), lo, hi), s);
    }
}

extern "C" int qc_k_lsq_forward_ch(const float *step, struct qc_k_channels ch, int qn, int qp,
                                   const float *x, float *y, int64_t n)
{
    if (!ch_ok(ch, n))
        return (int)cudaErrorInvalidValue;
    if (n == 0)
        return 0;
    lsq_fwd_ch<<<grid_for(n), NT>>>(step, (float)-qn, (float)qp, ch, x, y, n);
    return (int)cudaGetLastError();
}

/* One block per channel c: dx_i += dy_i·[−Qn < v_i < Qp];
 * ds_c += (float)(g · Σ_i∈c dy_i·(−Qn if v_i ≤ −Qn, Qp if v_i ≥ Qp, else rne(v_i) − v_i)),
 * v = x/s_c */
static __global__ void lsq_bwd_ch(const float *step, float lo, float hi, double g,
                                  struct qc_k_channels ch, int64_t nc, const float *x,
                                  const float *dy, float *dx, float *dstep)
{
    __shared__ double sh[NT];
    for (int64_t c = blockIdx.x; c < ch.nch; c += gridDim.x) {
        float s = step_used(step[c]);
        double acc = 0.0;
        for (int64_t t = threadIdx.x; t < nc; t += NT) {
            int64_t i = ch_elem(ch, c, t);
            int clipped;
            float u = lsq_bwd_elem(x[i], s, lo, hi, dy[i], dx ? &dx[i] : NULL, &clipped);
            acc = __dadd_rn(acc, __dmul_rn((double)dy[i], (double)u));
        }
        acc = block_sum(acc, sh);
        if (threadIdx.x == 0)
            dstep[c] = __fadd_rn(dstep[c], (float)__dmul_rn(g, acc));
    }
}

extern "C" int qc_k_lsq_backward_ch(const float *step, struct qc_k_channels ch, int qn, int qp,
                                    double g, const float *x, const float *dy, float *dx,
                                    int64_t n, float *dstep)
{
    if (!ch_ok(ch, n))
        return (int)cudaErrorInvalidValue;
    lsq_bwd_ch<<<grid_rows(ch.nch), NT>>>(step, (float)-qn, (float)qp, g, ch, n / ch.nch, x,
                                          dy, dx, dstep);
    return (int)cudaGetLastError();
}

/* One block per channel c: s_c = max(2·mean_c|x|/sqrt(Qp), QC_LSQ_STEP_MIN) */
static __global__ void lsq_init_ch(struct qc_k_channels ch, int64_t nc, const float *x,
                                   double root_qp, float *step)
{
    __shared__ double sh[NT];
    for (int64_t c = blockIdx.x; c < ch.nch; c += gridDim.x) {
        double acc = 0.0;
        for (int64_t t = threadIdx.x; t < nc; t += NT)
            acc = __dadd_rn(acc, (double)fabsf(x[ch_elem(ch, c, t)]));
        acc = block_sum(acc, sh);
        if (threadIdx.x == 0) {
            double mean = nc > 0 ? __ddiv_rn(acc, (double)nc) : 0.0;
            step[c] = step_used((float)__ddiv_rn(__dmul_rn(2.0, mean), root_qp));
        }
    }
}

extern "C" int qc_k_lsq_init_step_ch(const float *x, struct qc_k_channels ch, int64_t n, int qp,
                                     float *step)
{
    if (!ch_ok(ch, n))
        return (int)cudaErrorInvalidValue;
    lsq_init_ch<<<grid_rows(ch.nch), NT>>>(ch, n / ch.nch, x, sqrt(qp > 0 ? (double)qp : 1.0),
                                           step);
    return (int)cudaGetLastError();
}
