/*
 * lsq.c - LSQ quantizer (Esser et al. 2020, N2D2's QWeight=LSQ / QAct=LSQ,
 * DESIGN §5): one learnable step s per tensor, signed levels for weights and
 * unsigned for activations, straight-through input gradient, the step
 * gradient with its scale g, the step initialisation and the integer image.
 * Conventions (guards, accumulation, determinism) are in quant.h.
 */
#include <config.h>

#include "quant.h"

#include <math.h>

#include "util/qc.h"

/* [lo, hi) of reduction chunk c: boundaries depend on n only. */
static int64_t chunk_lo(int64_t n, int c)
{
    return n / QC_QUANT_NCHUNK * c + QC_MIN((int64_t)c, n % QC_QUANT_NCHUNK);
}

static int nthr(int threads)
{
    return threads > 1 ? threads : 1;
}

/* rne(clamp(v, lo, hi)) for integral lo, hi (= clamp(rne(v), lo, hi)); NaN passes through. */
static float level(float v, float lo, float hi)
{
    float j = rintf(v);
    if (j < lo)
        j = lo;
    if (j > hi)
        j = hi;
    return j;
}

void qc_lsq_levels(int range, bool is_signed, int *qn, int *qp)
{
    QC_ASSERT(range >= 1 && range <= QC_QUANT_RANGE_MAX);
    if (is_signed) {
        *qn = (range + 1) / 2;   /* floor((R+1)/2) */
        *qp = (range - 1) / 2;   /* floor((R−1)/2) */
    } else {
        *qn = 0;
        *qp = range;
    }
}

float qc_lsq_step_used(float s)
{
    return s < QC_LSQ_STEP_MIN ? QC_LSQ_STEP_MIN : s;
}

void qc_lsq_step_clamp(float *s)
{
    *s = qc_lsq_step_used(*s);
}

/* g = 1/sqrt(N·Qp) */
double qc_lsq_grad_scale(int64_t nelem, int qp)
{
    double nn = nelem > 0 ? (double)nelem : 1.0, p = qp > 0 ? (double)qp : 1.0;
    return 1.0 / sqrt(nn * p);
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
        y[i] = level(x[i] / s, lo, hi) * s;
}

/*
 * dx_i += dy_i · [−Qn < v_i < Qp]
 * ds   += g · Σ dy_i · (−Qn if v_i ≤ −Qn, Qp if v_i ≥ Qp, else rne(v_i) − v_i)
 * the derivative of y = rne(clamp(x/s))·s with rne straight-through: inside,
 * d(rne(v)·s)/ds = rne(v) + s·(−x/s²) = rne(v) − v; outside, ±Q·s gives ±Q.
 */
void qc_lsq_backward(float step, int qn, int qp, double g, const float *x, const float *dy,
                     float *dx, int64_t n, int threads, float *dstep)
{
    float s = qc_lsq_step_used(step), lo = (float)-qn, hi = (float)qp;
    double part[QC_QUANT_NCHUNK], sum = 0.0;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int c = 0; c < QC_QUANT_NCHUNK; c++) {
        int64_t b = chunk_lo(n, c), e = chunk_lo(n, c + 1);
        double acc = 0.0;
        for (int64_t i = b; i < e; i++) {
            float v = x[i] / s, d = dy[i], t;
            if (v <= lo) {
                t = lo;
            } else if (v >= hi) {
                t = hi;
            } else {
                t = rintf(v) - v;   /* also NaN for a NaN input */
                if (dx)
                    dx[i] += d;
            }
            acc += (double)d * t;
        }
        part[c] = acc;
    }
    for (int c = 0; c < QC_QUANT_NCHUNK; c++)
        sum += part[c];
    *dstep += (float)(g * sum);
}

/* k_i = rne(clamp(x_i/s, −Qn, Qp)) */
void qc_lsq_image(float step, int qn, int qp, const float *x, int32_t *k, int64_t n,
                  int threads)
{
    float s = qc_lsq_step_used(step), lo = (float)-qn, hi = (float)qp;
    bool par = threads > 1 && n >= QC_QUANT_PAR_MIN_STREAM;

#pragma omp parallel for num_threads(nthr(threads)) schedule(static) if (par)
    for (int64_t i = 0; i < n; i++) {
        float j = level(x[i] / s, lo, hi);
        k[i] = j == j ? (int32_t)j : 0;
    }
}
