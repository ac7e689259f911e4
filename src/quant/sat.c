/*
 * sat.c - SAT quantizers (N2D2's QWeight=SAT and QAct=SAT, DESIGN §5): the
 * DoReFa-style weight quantizer with tanh normalisation, its four QuantModes,
 * the clamp stage and the scale adjustment, plus the CG-PACT activation
 * quantizer with its learnable clip α.  Formulas and conventions are in
 * quant.h; each kernel restates its own.
 *
 * Weight forward, three passes over W:
 *   1. t = tanh(W) (kept in Q's buffer when there is one), m = max|t|
 *      (a max reduction is exact, hence order-free);
 *   2. per element the level k (quantized) or r = t/m (clamp stage), with
 *      Σk, Σk² (exact integers in double) or Σr, Σr² over fixed chunks;
 *   3. Q = k·scale or r·scale with one float scale, so that the exported
 *      integer image k and scale reproduce Q bit for bit.
 */
#include <config.h>

#include "quant.h"

#include <math.h>
#include <strings.h>

#include "util/qc.h"

static const char *const sat_mode_names[QC_SAT_MODE_COUNT] = {
    [QC_SAT_DEFAULT] = "Default",
    [QC_SAT_SYMMETRIC] = "Symmetric",
    [QC_SAT_ASYMMETRIC] = "Asymmetric",
    [QC_SAT_FULLRANGE] = "FullRange",
};

bool qc_sat_mode_parse(const char *s, enum qc_sat_mode *out)
{
    for (int i = 0; i < QC_SAT_MODE_COUNT; i++) {
        if (strcasecmp(s, sat_mode_names[i]) == 0) {
            *out = (enum qc_sat_mode)i;
            return true;
        }
    }
    return false;
}

const char *qc_sat_mode_name(enum qc_sat_mode mode)
{
    return (unsigned)mode < QC_SAT_MODE_COUNT ? sat_mode_names[mode] : "?";
}

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
static void sat_weight_run(const struct qc_sat_wcfg *cfg, const float *w, float *q, int32_t *k,
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

    /* pass 2: k or r per element; chunk sums of the (unscaled) values and their squares */
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
                q[i] = v;
            if (k)
                k[i] = level_to_int(v);
            a1 += v;
            a2 += (double)v * v;
        }
        s1[c] = a1;
        s2[c] = a2;
    }

    /* S = sqrt(F · var_unbiased(Q)), Q = v/div (quantized) or v (clamp stage); guard S = 1 */
    double S = 1.0;
    if (cfg->apply_scaling && n > 1) {
        double sum = 0.0, sq = 0.0;
        for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
            sum += s1[c];
            sq += s2[c];
        }
        double var = (sq - sum * (sum / (double)n)) / (double)(n - 1);
        if (quant)
            var /= (double)div * div;
        S = sqrt((double)cfg->fanout * var);
        if (!(S > 0.0) || !isfinite(S))
            S = 1.0;
    }
    float scale = (float)(1.0 / ((quant ? (double)div : 1.0) * S));

    /* pass 3: Q = v·scale, the product the export's DequantizeLinear evaluates */
    if (q) {
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
    sat_weight_run(cfg, w, q, NULL, n, threads, st);
}

void qc_sat_weight_image(const struct qc_sat_wcfg *cfg, const float *w, int32_t *k, int64_t n,
                         int threads, struct qc_sat_wstate *st)
{
    QC_ASSERT(cfg->apply_quant);
    sat_weight_run(cfg, w, NULL, k, n, threads, st);
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

void qc_sat_alpha_clamp(float *alpha)
{
    *alpha = qc_sat_alpha_used(*alpha);
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
    float h = qc_sat_act_scale(alpha, range), rf = (float)range;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t i = 0; i < n; i++) {
        float j = clampf_nan(rintf(x[i] / h), 0.0f, rf);
        y[i] = j * h;
    }
}

/*
 * dx_i += dy_i · [0 < x_i ≤ a]
 * dα   += Σ dy_i · (1 if x_i ≥ a, 0 if x_i ≤ 0, else j_i/R − x_i/a)
 * the derivative of y = j·a/R with j ≈ R·x/a straight-through (dj/da = −R·x/a²).
 */
void qc_sat_act_backward(float alpha, int range, const float *x, const float *dy, float *dx,
                         int64_t n, int threads, float *dalpha)
{
    float a = qc_sat_alpha_used(alpha), h = qc_sat_act_scale(alpha, range), rf = (float)range;
    double part[QC_QUANT_NCHUNK];
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
        int64_t lo = chunk_lo(n, c), hi = chunk_lo(n, c + 1);
        double acc = 0.0;
        for (int64_t i = lo; i < hi; i++) {
            float xi = x[i], g = dy[i];
            if (dx && xi > 0.0f && xi <= a)
                dx[i] += g;
            if (xi >= a) {
                acc += g;
            } else if (xi > 0.0f) {
                float j = clampf_nan(rintf(xi / h), 0.0f, rf);
                acc += (double)g * ((double)j / range - (double)xi / a);
            } else if (xi != xi) {
                acc += (double)g * xi;   /* NaN input: a NaN gradient, not a silent 0 */
            }
        }
        part[c] = acc;
    }
    double sum = 0.0;
    for (int c = 0; c < QC_QUANT_NCHUNK; c++)
        sum += part[c];
    *dalpha += (float)sum;
}
