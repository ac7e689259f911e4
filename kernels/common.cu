/*
 * common.cu - element-wise utility kernels shared by the CUDA backend.
 */
#include "qc_kernels.h"
#include "qc_device.cuh"

#include <cuda_runtime.h>


static __global__ void fill_f32(float *dst, float v, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (; i < n; i += stride)
        dst[i] = v;
}

extern "C" int qc_k_fill_f32(float *dst, float v, int64_t n)
{
    if (n <= 0)
        return 0;
    fill_f32<<<grid_for(n), NT>>>(dst, v, n);
    return (int)cudaGetLastError();
}

/* p = max(p, lo), NaN kept (a NaN parameter must stay visible) */
static __global__ void clamp_min_f32(float *p, float lo, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (; i < n; i += stride)
        if (p[i] < lo)
            p[i] = lo;
}

extern "C" int qc_k_clamp_min_f32(float *p, float lo, int64_t n)
{
    if (n <= 0)
        return 0;
    clamp_min_f32<<<grid_for(n), NT>>>(p, lo, n);
    return (int)cudaGetLastError();
}
