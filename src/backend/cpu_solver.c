/*
 * cpu_solver.c - the CPU optimizer kernel (QC_TK_SOLVER_APPLY; formulas in
 * cpu_train.h): SGD with momentum and Adam over flat float arrays.  The
 * update touches each element once and independently, so it parallelises
 * with a static OpenMP schedule and stays bit-identical for any thread count.
 * The per-update scalars (rate, Adam bias corrections) come computed in
 * double by qc_solver_prepare (train/solver.c); the element math is float,
 * in the same operation order as PyTorch so that the two agree to rounding.
 */
#include <config.h>

#include "cpu_train.h"

#include <math.h>

#include "ops/op.h"

/* v ← μ·v − lr·(s·∇ + λ·θ);  θ ← θ + v */
static void sgd(const struct qc_solver_update *u, float *theta, const float *grad, float *v,
                int64_t n, float decay, int threads)
{
    const float mu = u->momentum, lr = u->lr, s = u->scale;
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= QC_PAR_MIN_STREAM)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] * s + decay * theta[i];
        float vi = mu * v[i] - lr * g;
        v[i] = vi;
        theta[i] += vi;
    }
}

/* m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 * θ ← θ − (lr/bc1) · m / (sqrt(v)/sqrt(bc2) + ε),  g = s·∇ + λ·θ */
static void adam(const struct qc_solver_update *u, float *theta, const float *grad, float *m,
                 float *v, int64_t n, float decay, int threads)
{
    const float b1 = u->beta1, b2 = u->beta2, c1 = u->adam_c1, c2 = u->adam_c2;
    const float step = u->adam_step, sbc2 = u->adam_sbc2, eps = u->eps, s = u->scale;
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= QC_PAR_MIN_STREAM)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] * s + decay * theta[i];
        float mi = b1 * m[i] + c1 * g;
        float vi = b2 * v[i] + c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        theta[i] -= step * mi / (sqrtf(vi) / sbc2 + eps);
    }
}

void qc_solver_apply(const struct qc_solver_update *u, float *theta, const float *grad,
                     float *state, int64_t n, bool decays, int threads)
{
    float decay = decays ? u->decay : 0.0f;
    if (n <= 0)
        return;
    if (threads < 1)
        threads = 1;
    if (u->type == QC_SOLVER_ADAM)
        adam(u, theta, grad, state, state + n, n, decay, threads);
    else
        sgd(u, theta, grad, state, n, decay, threads);
}
