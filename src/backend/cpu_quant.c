/*
 * cpu_quant.c - the CPU quantizer kernels (cpu_train.h; QC_TK_SAT_* and
 * QC_TK_LSQ_* of the CPU backend, the integer images of the export):
 * SAT weights (N2D2's QWeight=SAT; formulas in cpu_train.h), the DoReFa-style quantizer
 * with tanh normalisation, its four QuantModes, the clamp stage and the
 * scale adjustment; CG-PACT activations (QAct=SAT) with the learnable clip
 * α; LSQ (Esser et al. 2020, QWeight=LSQ / QAct=LSQ) with one learnable
 * step s per tensor.  Formulas and conventions are in cpu_train.h; each
 * kernel restates its own.  The policy (recipe specs, levels, gradient
 * scale, calibration) is in quant/.
 *
 * SAT weight forward, three passes over W (two without ApplyScaling):
 *   1. t = tanh(W) (kept in Q's buffer when there is one), m = max|t|
 *      (a max reduction is exact, hence order-free);
 *   2. per element the level k (quantized) or r = t/m (clamp stage), with
 *      Σk, Σk² (exact integers in double) or Σr, Σr² over fixed chunks;
 *   3. Q = k·scale or r·scale with one float scale, so that the exported
 *      integer image k and scale reproduce Q bit for bit (in pass 2 where
 *      S = 1: the scale is then known before the levels).
 *
 * The activation and LSQ kernels run every training step over whole activation
 * tensors: their element loops are branch-free (rne_small, level_clamped) so that
 * the compiler vectorizes them, and their reductions compute per-element float terms
 * in a vectorized loop before adding the products in double (SUM_BLOCK, SUM_LANES).
 */
#include <config.h>

#include "cpu_train.h"

#include <math.h>
#include <string.h>

/*
 * The element loops below are written branch-free (selects, min/max) so that they
 * vectorize.  gcc keeps a float select scalar under its default -ftrapping-math (an SSE2
 * compare could raise a flag the scalar code would not); nothing here reads the
 * floating-point exception flags, and -fno-trapping-math changes no value (no
 * reassociation, signed zeros and NaN kept), so this file drops it.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* [lo, hi) of reduction chunk c: boundaries depend on n only. */
static int64_t chunk_lo(int64_t n, int c)
{
    return n / QC_QUANT_NCHUNK * c + QC_MIN((int64_t)c, n % QC_QUANT_NCHUNK);
}

static int nthr(int threads)
{
    return threads > 1 ? threads : 1;
}

/* SYMMETRIC and ASYMMETRIC with R' = floor(R/2) = 0 (R = 1) use the DEFAULT grid. */
static enum qc_sat_mode eff_mode(const struct qc_sat_wcfg *cfg)
{
    if ((cfg->mode == QC_SAT_SYMMETRIC || cfg->mode == QC_SAT_ASYMMETRIC) && cfg->range / 2 == 0)
        return QC_SAT_DEFAULT;
    return cfg->mode;
}

/* Q = k/div before scaling: R for the DEFAULT grids, R' = floor(R/2) otherwise. */
static int mode_div(int range, enum qc_sat_mode mode)
{
    return mode == QC_SAT_SYMMETRIC || mode == QC_SAT_ASYMMETRIC ? range / 2 : range;
}

static float clampf_nan(float v, float lo, float hi)
{
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return v;   /* NaN passes through */
}

/*
 * rintf(v) for |v| < 2^22 (and NaN) without a call or a branch, so that the element loops
 * vectorize: adding 1.5·2^23 leaves no fraction bits and rounds half to even in the default
 * mode, subtracting it is exact; copysignf restores rintf's sign of a zero result
 * (rintf(−0.3) = −0).  Bit for bit rintf on that range.
 */
static inline float rne_small(float v)
{
    const float magic = 12582912.0f; /* 1.5·2^23 */
    return copysignf((v + magic) - magic, v);
}

/*
 * clamp(rintf(v), lo, hi) for integral lo ≤ hi with |lo|, |hi| < 2^21, bit for bit (signed
 * zeros and NaN included): v is first clamped to [lo − 1, hi + 1], which changes no
 * result (rintf is monotonic and lo − 1, hi + 1 are integers outside [lo, hi]) and keeps
 * rne_small in its range.  Branch-free: compiles to min/max.
 */
static inline float level_clamped(float v, float lo, float hi)
{
    float c = v < lo - 1.0f ? lo - 1.0f : v;
    c = c > hi + 1.0f ? hi + 1.0f : c;
    float j = rne_small(c);
    j = j < lo ? lo : j;
    return j > hi ? hi : j;
}

/* Level k (integral float; NaN in, NaN out) of r = t/m ∈ [−1, 1] for the effective mode. */
static float sat_level(enum qc_sat_mode mode, int range, float r)
{
    float rf = (float)range;
    switch (mode) {
    case QC_SAT_SYMMETRIC: {
        /* k = rne(R'·r) ∈ [−R', R'] */
        float rp = (float)(range / 2);
        return clampf_nan(rintf(rp * r), -rp, rp);
    }
    case QC_SAT_ASYMMETRIC: {
        /* p = (1 + 1/(2R'))·r − 1/(2R'), k = rne(R'·p) ∈ [−R'−1, R'] */
        float rp = (float)(range / 2), a = 0.5f / rp;
        float p = (1.0f + a) * r - a;
        return clampf_nan(rintf(rp * p), -rp - 1.0f, rp);
    }
    case QC_SAT_FULLRANGE: {
        /* u = (r+1)/2, u' = (1 + 0.9998/R)·u − 0.4999/R, j = rne(R·u'), k = 2j − R */
        float u = 0.5f * (r + 1.0f);
        float u2 = (1.0f + 0.9998f / rf) * u - 0.4999f / rf;
        float j = clampf_nan(rintf(rf * u2), 0.0f, rf);
        return 2.0f * j - rf;
    }
    case QC_SAT_DEFAULT:
    default: {
        /* u = (r+1)/2, j = rne(R·u) ∈ [0, R], k = 2j − R */
        float u = 0.5f * (r + 1.0f);
        float j = clampf_nan(rintf(rf * u), 0.0f, rf);
        return 2.0f * j - rf;
    }
    }
}

static int32_t level_to_int(float k)
{
    return k == k ? (int32_t)k : 0;   /* NaN weights give level 0 in an image */
}

int32_t qc_sat_weight_level(const struct qc_sat_wcfg *cfg, float r)
{
    QC_ASSERT(cfg->range >= 1 && cfg->range <= QC_QUANT_RANGE_MAX);
    return level_to_int(sat_level(eff_mode(cfg), cfg->range, r));
}

/* The clamp stage's value: r, or p = (1 + 1/(2R'))·r − 1/(2R') for ASYMMETRIC. */
static float sat_clamp_value(enum qc_sat_mode mode, int range, float r)
{
    if (mode != QC_SAT_ASYMMETRIC)
        return r;
    float a = 0.5f / (float)(range / 2);
    return (1.0f + a) * r - a;
}

/* The three passes; q (Q out, also scratch) and k (integer image out) may each be NULL. */
void qc_sat_weight_run(const struct qc_sat_wcfg *cfg, const float *w, float *q, int32_t *k,
                       int64_t n, int threads, struct qc_sat_wstate *st)
{
    enum qc_sat_mode mode = eff_mode(cfg);
    int range = cfg->range, div = mode_div(range, mode);
    bool quant = cfg->apply_quant, par = threads > 1 && n >= QC_QUANT_PAR_MIN_TANH;
    double s1[QC_QUANT_NCHUNK], s2[QC_QUANT_NCHUNK];
    float m = 0.0f;

    QC_ASSERT(range >= 1 && range <= QC_QUANT_RANGE_MAX && n >= 0);
    QC_ASSERT((unsigned)cfg->mode < QC_SAT_MODE_COUNT);

    /* pass 1: t = tanh(W), m = max|t| */
#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par) reduction(max : m)
    for (int64_t i = 0; i < n; i++) {
        float t = tanhf(w[i]), a = fabsf(t);
        if (q)
            q[i] = t;
        if (a > m)
            m = a;
    }

    /*
     * pass 2: k or r per element; chunk sums of the (unscaled) values and their squares.
     * Without ApplyScaling (S = 1) the scale is known here, and Q = v·scale is written now.
     */
    bool late = cfg->apply_scaling && n > 1;
    float early = (float)(1.0 / (quant ? (double)div : 1.0));
#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
        int64_t lo = chunk_lo(n, c), hi = chunk_lo(n, c + 1);
        double a1 = 0.0, a2 = 0.0;
        for (int64_t i = lo; i < hi; i++) {
            float t = q ? q[i] : tanhf(w[i]);
            float v = 0.0f;                       /* m = 0: Q = 0 */
            if (m > 0.0f) {
                float r = t / m;
                v = quant ? sat_level(mode, range, r) : sat_clamp_value(mode, range, r);
            }
            if (q)
                q[i] = late ? v : v * early;
            if (k)
                k[i] = level_to_int(v);
            a1 += v;
            a2 += (double)v * v;
        }
        s1[c] = a1;
        s2[c] = a2;
    }

    /*
     * S = sqrt(F · var_unbiased(Q)), Q = v/div (quantized) or v (clamp stage), so that
     * Var(Q/S) = 1/F.  Degenerate case: every Q equal (a constant W, e.g. a folded
     * ConstantOfShape), var = 0: S = sqrt(F · mean(Q²)), which keeps the same target on the
     * second moment, E[(Q/S)²] = 1/F (|Q/S| = 1/sqrt(F)), instead of leaving |Q| = 1, a gain
     * of sqrt(F) over any non-constant tensor.  S = 1 when that is 0 too (Q = 0) or N = 1.
     */
    double S = 1.0;
    if (late) {
        double sum = 0.0, sq = 0.0;
        for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
            sum += s1[c];
            sq += s2[c];
        }
        double var = (sq - sum * (sum / (double)n)) / (double)(n - 1);
        if (!(var > 0.0))
            var = sq / (double)n;
        if (quant)
            var /= (double)div * div;
        S = sqrt((double)cfg->fanout * var);
        if (!(S > 0.0) || !isfinite(S))
            S = 1.0;
    }
    float scale = (float)(1.0 / ((quant ? (double)div : 1.0) * S));

    /* pass 3 (ApplyScaling): Q = v·scale, the product the export's DequantizeLinear evaluates */
    if (q && late) {
#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
        for (int64_t i = 0; i < n; i++)
            q[i] *= scale;
    }

    st->m = m;
    st->s = (float)S;
    st->scale = scale;
    st->div = quant ? div : 1;
}

void qc_sat_weight_forward(const struct qc_sat_wcfg *cfg, const float *w, float *q, int64_t n,
                           int threads, struct qc_sat_wstate *st)
{
    qc_sat_weight_run(cfg, w, q, NULL, n, threads, st);
}

void qc_sat_weight_image(const struct qc_sat_wcfg *cfg, const float *w, int32_t *k, int64_t n,
                         int threads, struct qc_sat_wstate *st)
{
    QC_ASSERT(cfg->apply_quant);
    qc_sat_weight_run(cfg, w, NULL, k, n, threads, st);
}

/*
 * dW_i += dQ_i · f · (1 − t_i²),  t = tanh(W),  f = c/(m·S)
 * with c the slope of the pre-rounding map of t/m (quant.h), m and S constants from the
 * forward (m = 0 taken as 1).  Rounding is straight-through.
 */
void qc_sat_weight_backward(const struct qc_sat_wcfg *cfg, const struct qc_sat_wstate *st,
                            const float *w, const float *dq, float *dw, int64_t n, int threads)
{
    enum qc_sat_mode mode = eff_mode(cfg);
    double c = 1.0;
    if (mode == QC_SAT_ASYMMETRIC)
        c = 1.0 + 1.0 / (2.0 * (double)(cfg->range / 2));
    else if (mode == QC_SAT_FULLRANGE && cfg->apply_quant)
        c = 1.0 + 0.9998 / (double)cfg->range;
    double m = st->m > 0.0f ? (double)st->m : 1.0;
    double S = cfg->apply_scaling && st->s > 0.0f ? (double)st->s : 1.0;
    float f = (float)(c / (m * S));
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_TANH;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t i = 0; i < n; i++) {
        float t = tanhf(w[i]);
        dw[i] += dq[i] * (f * (1.0f - t * t));
    }
}

/* ---- CG-PACT activations ------------------------------------------------------------------ */

float qc_sat_alpha_used(float alpha)
{
    return alpha < QC_SAT_ALPHA_MIN ? QC_SAT_ALPHA_MIN : alpha;
}

float qc_sat_act_scale(float alpha, int range)
{
    QC_ASSERT(range >= 1 && range <= QC_QUANT_RANGE_MAX);
    return qc_sat_alpha_used(alpha) / (float)range;
}

/* y = a·rne(R·clip(x,0,a)/a)/R  evaluated as  j = clamp(rne(x/h), 0, R), y = j·h, h = a/R */
void qc_sat_act_forward(float alpha, int range, const float *x, float *y, int64_t n,
                        int threads)
{
    /* zero as a captured variable: gcc 12 does not if-convert a clamp at the literal 0 */
    float h = qc_sat_act_scale(alpha, range), rf = (float)range, zero = 0.0f;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t i = 0; i < n; i++)
        y[i] = level_clamped(x[i] / h, zero, rf) * h;
}

/*
 * The reductions below run over blocks of SUM_BLOCK elements: a branch-free loop that
 * vectorizes computes each element's float terms t_i into an array, and dot_lanes adds the
 * products dy_i·t_i (exact in double) into SUM_LANES interleaved double sums (lane i mod
 * SUM_LANES, two lanes per SSE2 register, independent chains); lanes, blocks and the
 * QC_QUANT_NCHUNK chunks combine in a fixed order, so the result does not depend on the
 * thread count.
 */
#define SUM_BLOCK 256
#define SUM_LANES 8

typedef double v2df __attribute__((vector_size(16)));

/* acc[i mod SUM_LANES] += (double)g_i · t_i for i < m, in element order within each lane */
static inline void dot_lanes(const float *g, const float *t, int m, v2df acc[SUM_LANES / 2])
{
    int i = 0;
    for (; i + SUM_LANES <= m; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES / 2; l++) {
            v2df gv = { g[i + 2 * l], g[i + 2 * l + 1] }, tv = { t[i + 2 * l], t[i + 2 * l + 1] };
            acc[l] += gv * tv;
        }
    for (int l = 0; i + l < m; l++)
        acc[l / 2][l % 2] += (double)g[i + l] * t[i + l];
}

/* Σ of the lanes in lane order */
static double lanes_sum(const v2df acc[SUM_LANES / 2])
{
    double s = 0.0;
    for (int l = 0; l < SUM_LANES; l++)
        s += acc[l / 2][l % 2];
    return s;
}

/*
 * dx_i += dy_i · [0 < x_i ≤ a]
 * dα   += Σ dy_i · (1 if x_i ≥ a, 0 if x_i ≤ 0, else j_i/R − x_i/a)
 * the derivative of y = j·a/R with j ≈ R·x/a straight-through (dj/da = −R·x/a²).
 * One pass, no division in the sums: dα = A + B/R − C/a with
 *   A = Σ_{x ≥ a} dy,  B = Σ_{0 < x < a} dy·j,  C = Σ_{0 < x < a} dy·x
 * (each product exact in double; a NaN input joins C: a NaN gradient, not a silent 0).
 */
void qc_sat_act_backward(float alpha, int range, const float *x, const float *dy, float *dx,
                         int64_t n, int threads, float *dalpha)
{
    float a = qc_sat_alpha_used(alpha), h = qc_sat_act_scale(alpha, range), rf = (float)range;
    float zero = 0.0f, one = 1.0f; /* variables: see qc_sat_act_forward */
    double pa[QC_QUANT_NCHUNK], pb[QC_QUANT_NCHUNK], pc[QC_QUANT_NCHUNK];
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
        int64_t lo = chunk_lo(n, c), hi = chunk_lo(n, c + 1);
        v2df sa[SUM_LANES / 2] = { 0 }, sb[SUM_LANES / 2] = { 0 }, sc[SUM_LANES / 2] = { 0 };
        float ta[SUM_BLOCK], tj[SUM_BLOCK], tx[SUM_BLOCK];
        for (int64_t b = lo; b < hi; b += SUM_BLOCK) {
            int m = hi - b < SUM_BLOCK ? (int)(hi - b) : SUM_BLOCK;
            const float *xb = x + b, *gb = dy + b;
            /* terms of A, B, C (dy times these) and dx, one pass over x */
            for (int i = 0; i < m; i++) {
                float xi = xb[i], j = level_clamped(xi / h, zero, rf);
                float j2 = xi <= zero ? zero : j, x2 = xi <= zero ? zero : xi; /* NaN: mid */
                ta[i] = xi >= a ? one : zero;
                tj[i] = xi >= a ? zero : j2;
                tx[i] = xi >= a ? zero : x2;
            }
            if (dx) {
                float *db = dx + b;
                for (int i = 0; i < m; i++) {
                    float xi = xb[i], d = db[i], g = gb[i], e = xi <= a ? d + g : d;
                    db[i] = xi > zero ? e : d;
                }
            }
            dot_lanes(gb, ta, m, sa);
            dot_lanes(gb, tj, m, sb);
            dot_lanes(gb, tx, m, sc);
        }
        double A = lanes_sum(sa), B = lanes_sum(sb), C = lanes_sum(sc);
        pa[c] = A;
        pb[c] = B;
        pc[c] = C;
    }
    double A = 0.0, B = 0.0, C = 0.0;
    for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
        A += pa[c];
        B += pb[c];
        C += pc[c];
    }
    *dalpha += (float)(A + B / range - C / a);
}

/* ---- LSQ ---------------------------------------------------------------------------------- */

float qc_lsq_step_used(float s)
{
    return s < QC_LSQ_STEP_MIN ? QC_LSQ_STEP_MIN : s;
}

/* s0 = 2·mean|x|/sqrt(Qp) */
float qc_lsq_init_step(const float *x, int64_t n, int qp, int threads)
{
    double part[QC_QUANT_NCHUNK], sum = 0.0;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
        int64_t lo = chunk_lo(n, c), hi = chunk_lo(n, c + 1);
        double acc = 0.0;
        for (int64_t i = lo; i < hi; i++)
            acc += fabsf(x[i]);
        part[c] = acc;
    }
    for (int c = 0; c < QC_QUANT_NCHUNK; c++)
        sum += part[c];
    double mean = n > 0 ? sum / (double)n : 0.0;
    return qc_lsq_step_used((float)(2.0 * mean / sqrt(qp > 0 ? (double)qp : 1.0)));
}

/* v = x/s, y = rne(clamp(v, −Qn, Qp))·s */
void qc_lsq_forward(float step, int qn, int qp, const float *x, float *y, int64_t n,
                    int threads)
{
    float s = qc_lsq_step_used(step), lo = (float)-qn, hi = (float)qp;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t i = 0; i < n; i++)
        y[i] = level_clamped(x[i] / s, lo, hi) * s;
}

/*
 * dx_i += dy_i · [−Qn < v_i < Qp]
 * ds   += g · Σ dy_i · (−Qn if v_i ≤ −Qn, Qp if v_i ≥ Qp, else rne(v_i) − v_i)
 * the derivative of y = rne(clamp(x/s))·s with rne straight-through: inside,
 * d(rne(v)·s)/ds = rne(v) + s·(−x/s²) = rne(v) − v; outside, ±Q·s gives ±Q.
 */
/*
 * The LSQ backward on the levels [lo, hi] (integral), v = x/s:
 *   dx_i += dy_i · [lo < v_i < hi];  ds += g · Σ dy_i · (lo | hi | rne(v_i) − v_i)
 * and, with dclip, dclip += g · Σ_{v_i ≤ lo or v_i ≥ hi} dy_i (the clipped elements' sum,
 * which the asymmetric zero point's gradient scales by −s).
 */
static void lsq_backward_levels(float step, float lo, float hi, double g, const float *x,
                                const float *dy, float *dx, int64_t n, int threads, float *dstep,
                                double *dclip)
{
    float s = qc_lsq_step_used(step), zero = 0.0f, one = 1.0f;
    double part[QC_QUANT_NCHUNK], cpart[QC_QUANT_NCHUNK], sum = 0.0, csum = 0.0;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
        int64_t lo_i = chunk_lo(n, c), hi_i = chunk_lo(n, c + 1);
        v2df acc[SUM_LANES / 2] = { 0 }, cacc[SUM_LANES / 2] = { 0 };
        float tt[SUM_BLOCK], tw[SUM_BLOCK];
        for (int64_t b = lo_i; b < hi_i; b += SUM_BLOCK) {
            int m = hi_i - b < SUM_BLOCK ? (int)(hi_i - b) : SUM_BLOCK;
            const float *xb = x + b, *gb = dy + b;
            /* v ≤ lo, v ≥ hi: clipped (t = lo, hi; weight 1 in the clipped sum); otherwise,
             * NaN included, inside: t = rne(v) − v, dx += dy */
            for (int i = 0; i < m; i++) {
                float v = xb[i] / s, inside = level_clamped(v, lo, hi) - v;
                float t = v >= hi ? hi : inside, w = v >= hi ? one : zero;
                tt[i] = v <= lo ? lo : t;
                tw[i] = v <= lo ? one : w;
            }
            if (dx) {
                float *db = dx + b;
                for (int i = 0; i < m; i++) {
                    float d = db[i], gi = gb[i];
                    db[i] = tw[i] != zero ? d : d + gi;
                }
            }
            dot_lanes(gb, tt, m, acc);
            dot_lanes(gb, tw, m, cacc);
        }
        double ta = lanes_sum(acc), tc = lanes_sum(cacc);
        part[c] = ta;
        cpart[c] = tc;
    }
    for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
        sum += part[c];
        csum += cpart[c];
    }
    *dstep += (float)(g * sum);
    if (dclip)
        *dclip = g * csum;
}

void qc_lsq_backward(float step, int qn, int qp, double g, const float *x, const float *dy,
                     float *dx, int64_t n, int threads, float *dstep)
{
    lsq_backward_levels(step, (float)-qn, (float)qp, g, x, dy, dx, n, threads, dstep, NULL);
}

/* k_i = rne(clamp(x_i/s, −Qn, Qp)) */
void qc_lsq_image(float step, int qn, int qp, const float *x, int32_t *k, int64_t n,
                  int threads)
{
    float s = qc_lsq_step_used(step), lo = (float)-qn, hi = (float)qp;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t i = 0; i < n; i++) {
        float j = level_clamped(x[i] / s, lo, hi);
        k[i] = j == j ? (int32_t)j : 0;
    }
}

/* ---- asymmetric LSQ (an integer zero point on the unsigned levels) ------------------------ */

/* z = clamp(rne(zf), −qn, qp); NaN gives 0 */
int qc_lsq_zero_point(float zf, int qn, int qp)
{
    float z = rintf(zf);
    if (!(z == z))
        return 0;
    if (z < (float)-qn)
        z = (float)-qn;
    if (z > (float)qp)
        z = (float)qp;
    return (int)z;
}

/* y = s·(clamp(rne(x/s) + z, −qn, qp) − z) = rne(clamp(x/s, −qn − z, qp − z))·s */
void qc_lsq_forward_zp(float step, float zf, int qn, int qp, const float *x, float *y, int64_t n,
                       int threads)
{
    int z = qc_lsq_zero_point(zf, qn, qp);
    qc_lsq_forward(step, qn + z, qp - z, x, y, n, threads);
}

/*
 * With z = clamp(rne(zf)) and rne straight through, on the shifted levels lo = −qn − z,
 * hi = qp − z (v = x/s):
 *   inside:  y = s·rne(v)             dy/ds = rne(v) − v   dy/dzf = 0
 *   v ≤ lo:  y = s·(−qn − z) = s·lo   dy/ds = lo           dy/dzf = −s
 *   v ≥ hi:  y = s·(qp − z)  = s·hi   dy/ds = hi           dy/dzf = −s
 * dzf += g · Σ dy_i · dy_i/dzf with the step's scale g = 1/sqrt(N·Qp) (the caller's): the
 * zero point is a level offset of the same size as the step's levels.
 */
void qc_lsq_backward_zp(float step, float zf, int qn, int qp, double g, const float *x,
                        const float *dy, float *dx, int64_t n, int threads, float *dstep,
                        float *dzf)
{
    int z = qc_lsq_zero_point(zf, qn, qp);
    double clip = 0.0;
    lsq_backward_levels(step, (float)(-qn - z), (float)(qp - z), g, x, dy, dx, n, threads, dstep,
                        dzf ? &clip : NULL);
    if (dzf)
        *dzf += (float)(-(double)qc_lsq_step_used(step) * clip);
}

/* lo = min(min x, 0), hi = max(max x, 0); s = (hi − lo)/(qn + qp); zf = rne(−qn − lo/s) */
void qc_lsq_init_zero_point(const float *x, int64_t n, int qn, int qp, bool keep_step, int threads,
                            float *step, float *zf)
{
    float lo = 0.0f, hi = 0.0f, s;
    (void)threads; /* a min/max pass: exact in any order, one thread is enough */
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < lo)
            lo = x[i];
        if (x[i] > hi)
            hi = x[i];
    }
    if (!keep_step)
        *step = qc_lsq_step_used((hi - lo) / (float)(qn + qp > 0 ? qn + qp : 1));
    s = qc_lsq_step_used(*step);
    *zf = (float)qc_lsq_zero_point((float)-qn - lo / s, qn, qp);
}

/* ---- LSQ per output channel ---------------------------------------------------------------- */

/* Channel of element i in the layout [outer, nch, inner] (ch.nch > 1). */
static int64_t channel_of(struct qc_channels ch, int64_t i)
{
    return (i / ch.inner) % ch.nch;
}

/* outer of the layout; n must be a whole number of [nch, inner] blocks. */
static int64_t channel_outer(struct qc_channels ch, int64_t n)
{
    QC_ASSERT(ch.nch > 1 && ch.inner >= 1 && n % (ch.nch * ch.inner) == 0);
    return n / (ch.nch * ch.inner);
}

/* s0_c = 2·mean_{i∈c}|x_i|/sqrt(Qp), summed in double in element order within each channel */
void qc_lsq_init_step_ch(const float *x, struct qc_channels ch, int64_t n, int qp, int threads,
                         float *step)
{
    if (ch.nch <= 1) {
        step[0] = qc_lsq_init_step(x, n, qp, threads);
        return;
    }
    int64_t outer = channel_outer(ch, n), nc = outer * ch.inner;
    double sq = sqrt(qp > 0 ? (double)qp : 1.0);
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t c = 0; c < ch.nch; c++) {
        double acc = 0.0;
        for (int64_t o = 0; o < outer; o++) {
            const float *xc = x + (o * ch.nch + c) * ch.inner;
            for (int64_t j = 0; j < ch.inner; j++)
                acc += fabsf(xc[j]);
        }
        double mean = nc > 0 ? acc / (double)nc : 0.0;
        step[c] = qc_lsq_step_used((float)(2.0 * mean / sq));
    }
}

/* v_i = x_i/s_c, y_i = rne(clamp(v_i, −Qn, Qp))·s_c, c the channel of i */
void qc_lsq_forward_ch(const float *step, struct qc_channels ch, int qn, int qp, const float *x,
                       float *y, int64_t n, int threads)
{
    if (ch.nch <= 1) {
        qc_lsq_forward(step[0], qn, qp, x, y, n, threads);
        return;
    }
    float lo = (float)-qn, hi = (float)qp;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;
    (void)channel_outer(ch, n);

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t i = 0; i < n; i++) {
        float s = qc_lsq_step_used(step[channel_of(ch, i)]);
        y[i] = level_clamped(x[i] / s, lo, hi) * s;
    }
}

/*
 * Per channel c, v_i = x_i/s_c:
 *   dx_i   += dy_i · [−Qn < v_i < Qp]
 *   ds_c   += g · Σ_{i∈c} dy_i · (−Qn if v_i ≤ −Qn, Qp if v_i ≥ Qp, else rne(v_i) − v_i)
 * with g = 1/sqrt(N_c·Qp) (N_c elements per channel, the caller's); each channel is the
 * per-tensor formula on its own elements (y_i depends on s_c alone), summed in double in
 * element order within the channel.
 */
void qc_lsq_backward_ch(const float *step, struct qc_channels ch, int qn, int qp, double g,
                        const float *x, const float *dy, float *dx, int64_t n, int threads,
                        float *dstep)
{
    if (ch.nch <= 1) {
        qc_lsq_backward(step[0], qn, qp, g, x, dy, dx, n, threads, dstep);
        return;
    }
    int64_t outer = channel_outer(ch, n);
    float lo = (float)-qn, hi = (float)qp;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t c = 0; c < ch.nch; c++) {
        float s = qc_lsq_step_used(step[c]);
        double acc = 0.0;
        for (int64_t o = 0; o < outer; o++) {
            int64_t base = (o * ch.nch + c) * ch.inner;
            for (int64_t j = 0; j < ch.inner; j++) {
                int64_t i = base + j;
                float v = x[i] / s, d = dy[i], t;
                if (v <= lo) {
                    t = lo;
                } else if (v >= hi) {
                    t = hi;
                } else {
                    t = rintf(v) - v; /* also NaN for a NaN input */
                    if (dx)
                        dx[i] += d;
                }
                acc += (double)d * t;
            }
        }
        dstep[c] += (float)(g * acc);
    }
}

/* k_i = rne(clamp(x_i/s_c, −Qn, Qp)), c the channel of i */
void qc_lsq_image_ch(const float *step, struct qc_channels ch, int qn, int qp, const float *x,
                     int32_t *k, int64_t n, int threads)
{
    if (ch.nch <= 1) {
        qc_lsq_image(step[0], qn, qp, x, k, n, threads);
        return;
    }
    float lo = (float)-qn, hi = (float)qp;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;
    (void)channel_outer(ch, n);

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t i = 0; i < n; i++) {
        float j = level_clamped(x[i] / qc_lsq_step_used(step[channel_of(ch, i)]), lo, hi);
        k[i] = j == j ? (int32_t)j : 0;
    }
}

/* ---- SAT weights per output channel --------------------------------------------------------- */

/* Channel c of the [outer, nch, inner] tensor t into the contiguous slice s. */
static void channel_gather(struct qc_channels ch, int64_t outer, int64_t c, const float *t,
                           float *s)
{
    for (int64_t o = 0; o < outer; o++)
        memcpy(s + o * ch.inner, t + (o * ch.nch + c) * ch.inner, (size_t)ch.inner * sizeof(float));
}

/* The contiguous slice s back into channel c of t. */
static void channel_scatter(struct qc_channels ch, int64_t outer, int64_t c, const float *s,
                            float *t)
{
    for (int64_t o = 0; o < outer; o++)
        memcpy(t + (o * ch.nch + c) * ch.inner, s + o * ch.inner, (size_t)ch.inner * sizeof(float));
}

/*
 * Per output channel c (elements i ∈ c): t = tanh(W), m_c = max_{i∈c}|t_i|, the levels of
 * t_i/m_c, and with ApplyScaling S_c = sqrt(F · var_unbiased(Q_c)): the per-tensor forward
 * on each channel's elements, its state in st[c].  A Conv weight's channels are contiguous
 * (outer = 1) and run in place; other layouts go through one channel-sized buffer.
 */
enum qc_status qc_sat_weight_run_ch(const struct qc_sat_wcfg *cfg, struct qc_channels ch,
                                    const float *w, float *q, int32_t *k, int64_t n, int threads,
                                    struct qc_sat_wstate *st)
{
    if (ch.nch <= 1) {
        qc_sat_weight_run(cfg, w, q, k, n, threads, st);
        return QC_OK;
    }
    int64_t outer = channel_outer(ch, n), nc = outer * ch.inner;
    if (outer == 1) {
        for (int64_t c = 0; c < ch.nch; c++)
            qc_sat_weight_run(cfg, w + c * nc, q ? q + c * nc : NULL, k ? k + c * nc : NULL, nc,
                              threads, &st[c]);
        return QC_OK;
    }
    float *ws = qc_malloc((size_t)nc * 2 * sizeof(float)), *qs = ws ? ws + nc : NULL;
    int32_t *ks = k ? qc_malloc((size_t)nc * sizeof(int32_t)) : NULL;
    if (!ws || (k && !ks)) {
        qc_free(ws);
        qc_free(ks);
        return QC_ERR_NOMEM;
    }
    for (int64_t c = 0; c < ch.nch; c++) {
        channel_gather(ch, outer, c, w, ws);
        qc_sat_weight_run(cfg, ws, q ? qs : NULL, ks, nc, threads, &st[c]);
        if (q)
            channel_scatter(ch, outer, c, qs, q);
        for (int64_t o = 0; ks && o < outer; o++)
            memcpy(k + (o * ch.nch + c) * ch.inner, ks + o * ch.inner,
                   (size_t)ch.inner * sizeof(int32_t));
    }
    qc_free(ws);
    qc_free(ks);
    return QC_OK;
}

/* dW_i += dQ_i · c · (1 − t_i²) / (m_c · S_c), t = tanh(W), m_c and S_c of channel c from
 * st[c] (the per-tensor backward on each channel's elements). */
enum qc_status qc_sat_weight_backward_ch(const struct qc_sat_wcfg *cfg, struct qc_channels ch,
                                         const struct qc_sat_wstate *st, const float *w,
                                         const float *dq, float *dw, int64_t n, int threads)
{
    if (ch.nch <= 1) {
        qc_sat_weight_backward(cfg, st, w, dq, dw, n, threads);
        return QC_OK;
    }
    int64_t outer = channel_outer(ch, n), nc = outer * ch.inner;
    if (outer == 1) {
        for (int64_t c = 0; c < ch.nch; c++)
            qc_sat_weight_backward(cfg, &st[c], w + c * nc, dq + c * nc, dw + c * nc, nc, threads);
        return QC_OK;
    }
    float *buf = qc_malloc((size_t)nc * 3 * sizeof(float));
    if (!buf)
        return QC_ERR_NOMEM;
    for (int64_t c = 0; c < ch.nch; c++) {
        channel_gather(ch, outer, c, w, buf);
        channel_gather(ch, outer, c, dq, buf + nc);
        channel_gather(ch, outer, c, dw, buf + 2 * nc);
        qc_sat_weight_backward(cfg, &st[c], buf, buf + nc, buf + 2 * nc, nc, threads);
        channel_scatter(ch, outer, c, buf + 2 * nc, dw);
    }
    qc_free(buf);
    return QC_OK;
}
