/*
 * loss.cu - softmax cross-entropy on the GPU, the twin of
 * qc_loss_softmax_xent (src/backend/cpu_loss.c): the same double-precision
 * formulas, one thread per row (a row is at most a few thousand classes, and
 * a batch a few hundred rows: this kernel is not where a step's time goes),
 * then one thread adding the rows' losses and hits in row order, so the
 * statistics are those the CPU computes, up to exp/log's last bits.
 */
#include "qc_kernels.h"

#include <cuda_runtime.h>
#include <math.h>

#define NT 128

/* Index of the first maximum of x[0..n), as qc_argmax. */
static __device__ int64_t first_max(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* loss_i = log Σ_j exp(z_ij − m) + m − z_iy,  m = max_j z_ij
 * dz_ij  = scale·(exp(z_ij − m)/Σ − [j = y]) */
static __global__ void xent_rows(const float *z, const int32_t *y, int64_t b, int64_t c,
                                 float scale, float *dz, double *rowbuf)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i < b; i += (int64_t)gridDim.x * blockDim.x) {
        const float *zi = z + i * c;
        int32_t yi = y[i];
        int64_t am = first_max(zi, c);
        double m = (double)zi[am], s = 0.0;
        if (yi < 0 || yi >= c) {
            for (int64_t j = 0; j < c; j++)
                dz[i * c + j] = 0.0f;
            rowbuf[2 * i] = 0.0;
            rowbuf[2 * i + 1] = -1.0;   /* a bad label */
            continue;
        }
        for (int64_t j = 0; j < c; j++)
            s = __dadd_rn(s, exp(__dsub_rn((double)zi[j], m)));
        rowbuf[2 * i] = __dsub_rn(__dadd_rn(log(s), m), (double)zi[yi]);
        rowbuf[2 * i + 1] = am == yi ? 1.0 : 0.0;
        for (int64_t j = 0; j < c; j++) {
            double pj = __ddiv_rn(exp(__dsub_rn((double)zi[j], m)), s);
            dz[i * c + j] = (float)__dmul_rn((double)scale, __dsub_rn(pj, j == yi ? 1.0 : 0.0));
        }
    }
}

static __global__ void xent_stats(const double *rowbuf, int64_t b, double *stats)
{
    double loss = 0.0, hits = 0.0, bad = 0.0;
    for (int64_t i = 0; i < b; i++) {
        if (rowbuf[2 * i + 1] < 0.0) {
            bad += 1.0;
            continue;
        }
        loss = __dadd_rn(loss, rowbuf[2 * i]);
        hits += rowbuf[2 * i + 1];
    }
    stats[0] = loss;
    stats[1] = hits;
    stats[2] = bad;
}

extern "C" int qc_k_softmax_xent(const float *z, const int32_t *y, int64_t b, int64_t c,
                                 float scale, float *dz, double *rowbuf, double *stats)
{
    int64_t blocks = (b + NT - 1) / NT;
    int e;
    if (b <= 0 || c <= 0)
        return (int)cudaErrorInvalidValue;
    if (blocks > 65535)
        blocks = 65535;
    xent_rows<<<(unsigned)blocks, NT>>>(z, y, b, c, scale, dz, rowbuf);
    if ((e = (int)cudaGetLastError()))
        return e;
    xent_stats<<<1, 1>>>(rowbuf, b, stats);
    return (int)cudaGetLastError();
}
