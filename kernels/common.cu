/*
 * common.cu - element-wise utility kernels shared by the CUDA backend.
 */
#include "qc_kernels.h"

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
    int threads = 256;
    int64_t blocks = (n + threads - 1) / threads;
    if (n <= 0)
        return 0;
    if (blocks > 65535)
        blocks = 65535;
    fill_f32<<<(unsigned)blocks, threads>>>(dst, v, n);
    return (int)cudaGetLastError();
}
