/*
 * cpu_loss.c - the CPU loss kernel (QC_TK_SOFTMAX_XENT; cpu_train.h):
 * softmax cross-entropy on logits, row by row in double for the normalizer:
 * with m = max_j z_j, s = Σ exp(z_j − m),
 *   loss = log s + m − z_y,   softmax_j = exp(z_j − m) / s.
 */
#include <config.h>

#include "cpu_train.h"

#include <math.h>

#include "util/log.h"

int64_t qc_argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

enum qc_status qc_loss_softmax_xent(const float *z, const int32_t *labels, int64_t b,
                                    int64_t c, float scale, float *dz, double *loss_sum,
                                    int64_t *correct)
{
    for (int64_t i = 0; i < b; i++) {
        const float *zi = z + i * c;
        int32_t y = labels[i];
        double m, s = 0.0;
        if (y < 0 || y >= c) {
            qc_log_error("label %d of sample %lld is outside the model's %lld classes", (int)y,
                         (long long)i, (long long)c);
            return QC_ERR_DATA;
        }
        m = zi[qc_argmax(zi, c)];
        for (int64_t j = 0; j < c; j++)
            s += exp((double)zi[j] - m);
        *loss_sum += log(s) + m - (double)zi[y];
        *correct += qc_argmax(zi, c) == y;
        if (!dz)
            continue;
        for (int64_t j = 0; j < c; j++) {
            double pj = exp((double)zi[j] - m) / s;
            dz[i * c + j] = (float)((double)scale * (pj - (j == y ? 1.0 : 0.0)));
        }
    }
    return QC_OK;
}
