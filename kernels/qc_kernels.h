/*
 * qc_kernels.h - C-callable launchers of qatconv's CUDA kernels.  Each
 * returns the cudaError_t of its launch as an int (0 = success), so C code
 * can check it without CUDA headers.  Launch geometry stays inside the .cu.
 */
#ifndef QATCONV_KERNELS_QC_KERNELS_H
#define QATCONV_KERNELS_QC_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dst[i] = v for i < n, on the default stream. */
int qc_k_fill_f32(float *dst, float v, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
