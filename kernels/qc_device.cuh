/*
 * qc_device.cuh - what the kernel files (kernels/NAME.cu) share: the block size, the
 * grids of grid-stride and row loops, and the fixed-order block sum that
 * keeps every reduction deterministic (no atomics anywhere).  Included by
 * .cu files only; the CPU emulator of tests/cuda_emu compiles it as C++ with
 * them.
 */
#ifndef QATCONV_KERNELS_QC_DEVICE_CUH
#define QATCONV_KERNELS_QC_DEVICE_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#define NT 256   /* threads per block (a power of two) */

/* Blocks of a grid-stride loop over n elements: at least 1, at most 65535. */
static inline unsigned grid_for(int64_t n)
{
    int64_t b = (n + NT - 1) / NT;
    if (b < 1)
        b = 1;
    if (b > 65535)
        b = 65535;
    return (unsigned)b;
}

/* One block per row: rows capped at 65535 blocks, each looping over its rows. */
static inline unsigned grid_rows(int64_t rows)
{
    if (rows < 1)
        return 1;
    return rows > 65535 ? 65535u : (unsigned)rows;
}

/* Block-wide sum (sh: NT doubles of shared memory) in a fixed tree order;
 * every thread of the block gets the total. */
static __device__ inline double block_sum(double v, double *sh)
{
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = NT / 2; s > 0; s >>= 1) {
        if (t < s)
            sh[t] = __dadd_rn(sh[t], sh[t + s]);
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

#endif
