/*
 * cpu_loss.c - the CPU loss kernel (QC_TK_SOFTMAX_XENT; cpu_train.h):
 * softmax cross-entropy on logits, row by row in double for the normalizer:
 * with m = max_j z_j, s = Σ exp(z_j − m),
 *   loss = log s + m − z_y,   softmax_j = exp(z_j − m) / s.
 * And the distillation loss (QC_TK_DISTILL_XENT) against teacher logits t at
 * temperature T with weight λ, p = softmax(z), p^T = softmax(z/T),
 * q^T = softmax(t/T):
 *   loss = (1−λ)·(log s + m − z_y) + λ·T²·Σ_j q^T_j (log q^T_j − log p^T_j)
 *   dz_j = (1−λ)·(p_j − onehot_j) + λ·T·(p^T_j − q^T_j).
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

/* log Σ_j exp(x_j / temp) over one row, in double (the maximum subtracted). */
static double row_logsumexp(const float *x, int64_t n, double temp)
{
    double m = (double)x[qc_argmax(x, n)] / temp, s = 0.0;
    for (int64_t j = 0; j < n; j++)
        s += exp((double)x[j] / temp - m);
    return log(s) + m;
}

enum qc_status qc_loss_distill_xent(const float *z, const float *teacher, const int32_t *labels,
                                    int64_t b, int64_t c, float temperature, float weight,
                                    float scale, float *dz, double *loss_sum, int64_t *correct)
{
    double temp = (double)temperature, lambda = (double)weight;
    if (!(temp > 0.0) || !(lambda >= 0.0 && lambda <= 1.0)) {
        qc_log_error(
            "distillation: temperature %g and weight %g: expected T > 0 and a weight in [0, 1]",
            temp, lambda);
        return QC_ERR_INVAL;
    }
    for (int64_t i = 0; i < b; i++) {
        const float *zi = z + i * c, *ti = teacher + i * c;
        int32_t y = labels[i];
        double lse1, lse_s, lse_t, kl = 0.0;
        if (y < 0 || y >= c) {
            qc_log_error("label %d of sample %lld is outside the model's %lld classes", (int)y,
                         (long long)i, (long long)c);
            return QC_ERR_DATA;
        }
        lse1 = row_logsumexp(zi, c, 1.0);
        lse_s = row_logsumexp(zi, c, temp);
        lse_t = row_logsumexp(ti, c, temp);
        for (int64_t j = 0; j < c; j++) {
            double log_qt = (double)ti[j] / temp - lse_t, log_pt = (double)zi[j] / temp - lse_s;
            kl += exp(log_qt) * (log_qt - log_pt);
        }
        *loss_sum += (1.0 - lambda) * (lse1 - (double)zi[y]) + lambda * temp * temp * kl;
        *correct += qc_argmax(zi, c) == y;
        if (!dz)
            continue;
        /* dz_j = (1−λ)·(p_j − onehot_j) + λ·T·(p^T_j − q^T_j), times scale */
        for (int64_t j = 0; j < c; j++) {
            double p = exp((double)zi[j] - lse1);
            double pt = exp((double)zi[j] / temp - lse_s), qt = exp((double)ti[j] / temp - lse_t);
            double g = (1.0 - lambda) * (p - (j == y ? 1.0 : 0.0)) + lambda * temp * (pt - qt);
            dz[i * c + j] = (float)((double)scale * g);
        }
    }
    return QC_OK;
}
