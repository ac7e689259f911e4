/*
 * optim.cu - the SGD-with-momentum and Adam updates of src/backend/cpu_solver.c
 * over flat float arrays, one element-wise kernel each.  The per-update
 * scalars come from qc_solver_prepare (struct qc_solver_update) on the host;
 * the element math uses the explicitly rounded intrinsics in the CPU's
 * operation order (no FMA contraction), and sqrt and division round
 * correctly, so the results are bit-identical to qc_solver_apply.
 */
#include "qc_kernels.h"
#include "qc_device.cuh"

#include <cuda_runtime.h>


/* v ← μ·v − lr·g;  θ ← θ + v,  g = s·∇ + λ·θ */
static __global__ void sgd(float *theta, const float *grad, float *v, int64_t n, float mu,
                           float lr, float s, float decay)
{
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        float th = theta[i];
        float g = __fadd_rn(__fmul_rn(grad[i], s), __fmul_rn(decay, th));
        float vi = __fsub_rn(__fmul_rn(mu, v[i]), __fmul_rn(lr, g));
        v[i] = vi;
        theta[i] = __fadd_rn(th, vi);
    }
}

extern "C" int qc_k_sgd(float *theta, const float *grad, float *v, int64_t n, float momentum,
                        float lr, float scale, float decay)
{
    if (n <= 0)
        return 0;
    sgd<<<grid_for(n), NT>>>(theta, grad, v, n, momentum, lr, scale, decay);
    return (int)cudaGetLastError();
}

/* m ← β1·m + c1·g;  v ← β2·v + c2·g·g;  θ ← θ − step·m / (sqrt(v)/sbc2 + ε),
 * g = s·∇ + λ·θ */
static __global__ void adam(float *theta, const float *grad, float *m, float *v, int64_t n,
                            float b1, float b2, float c1, float c2, float step, float sbc2,
                            float eps, float s, float decay)
{
    for (int64_t i = (int64_t)blockIdx.x * NT + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * NT) {
        float th = theta[i];
        float g = __fadd_rn(__fmul_rn(grad[i], s), __fmul_rn(decay, th));
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(c1, g));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(c2, g), g));
        m[i] = mi;
        v[i] = vi;
        float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), sbc2), eps);
        theta[i] = __fsub_rn(th, __fdiv_rn(__fmul_rn(step, mi), den));
    }
}

extern "C" int qc_k_adam(float *theta, const float *grad, float *m, float *v, int64_t n,
                         float beta1, float beta2, float c1, float c2, float step, float sbc2,
                         float eps, float scale, float decay)
{
    if (n <= 0)
        return 0;
    adam<<<grid_for(n), NT>>>(theta, grad, m, v, n, beta1, beta2, c1, c2, step, sbc2, eps,
                              scale, decay);
    return (int)cudaGetLastError();
}
