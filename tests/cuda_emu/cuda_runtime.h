/*
 * cuda_runtime.h - the CUDA runtime API subset of qatconv's CUDA backend, as
 * implemented by the CPU emulator (tests/cuda_emu/emu_runtime.c; see README).
 * It stands in for the toolkit's header when src/backend/cuda*.c and the
 * translated kernels (kernels/NAME.cu) are compiled with -I tests/cuda_emu.  C and C++:
 * types and values follow the real runtime (error numbers, enums, dim3), so
 * code written against it compiles unchanged against the toolkit.  Streams
 * and events exist but every operation runs synchronously on the caller's
 * thread.
 */
#ifndef QATCONV_TESTS_CUDA_EMU_CUDA_RUNTIME_H
#define QATCONV_TESTS_CUDA_EMU_CUDA_RUNTIME_H

#include <stddef.h>

#define QC_CUDA_EMULATOR 1

#ifdef __cplusplus
#define QC_EMU_DEFAULT(v) = v
extern "C" {
#else
#define QC_EMU_DEFAULT(v)
#endif

#define CUDART_VERSION 12000

/* The real runtime's numbers for the errors the emulator reports. */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorUnknown = 999
} cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;

#define cudaStreamDefault            0x00
#define cudaStreamNonBlocking        0x01
#define cudaEventDefault             0x00
#define cudaEventBlockingSync        0x01
#define cudaEventDisableTiming       0x02
#define cudaHostAllocDefault         0x00
#define cudaHostAllocPortable        0x01
#define cudaHostAllocMapped          0x02
#define cudaHostAllocWriteCombined   0x04

struct uint3 {
    unsigned int x, y, z;
};
typedef struct uint3 uint3;

#ifdef __cplusplus
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
        : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
#else
typedef struct dim3 {
    unsigned int x, y, z;
} dim3;
#endif

/* The fields of the real struct that tools commonly read. */
struct cudaDeviceProp {
    char   name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int    regsPerBlock;
    int    warpSize;
    int    maxThreadsPerBlock;
    int    maxThreadsDim[3];
    int    maxGridSize[3];
    int    clockRate;
    int    major;
    int    minor;
    int    multiProcessorCount;
    int    memoryBusWidth;
    int    memoryClockRate;
};

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaDeviceReset(void);

cudaError_t cudaMalloc(void **ptr, size_t size);
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMallocHost(void **ptr, size_t size);
cudaError_t cudaHostAlloc(void **ptr, size_t size, unsigned int flags);
cudaError_t cudaFreeHost(void *ptr);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream QC_EMU_DEFAULT(0));
cudaError_t cudaMemset(void *dst, int value, size_t count);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t count,
                            cudaStream_t stream QC_EMU_DEFAULT(0));

cudaError_t cudaStreamCreate(cudaStream_t *stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event,
                                unsigned int flags QC_EMU_DEFAULT(0));

cudaError_t cudaEventCreate(cudaEvent_t *event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream QC_EMU_DEFAULT(0));
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);

cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t error);
const char *cudaGetErrorName(cudaError_t error);

/* ---- emulator internals shared with emu_kernel.h (not CUDA API) ------------------------- */

/* The built-in variables of the running thread (emu_kernel.h reads them). */
extern uint3 qc_emu_thread_idx;
extern uint3 qc_emu_block_idx;
extern dim3  qc_emu_block_dim;
extern dim3  qc_emu_grid_dim;

/* Runs body(ctx) once per thread of a grid x block launch of kernel `name` (file:line of the
 * launch); a configuration error is recorded as the last error instead. */
void qc_emu_run(const char *name, const char *file, int line, dim3 grid, dim3 block,
                size_t shmem, cudaStream_t stream, void (*body)(void *), void *ctx);
/* __syncthreads() of the running thread. */
void qc_emu_syncthreads(void);
/* Whether p points into emulated device memory (tests). */
int qc_emu_is_device_ptr(const void *p);

#ifdef __cplusplus
}

/* cudaMalloc(&float_ptr, n) without a cast, as the toolkit's C++ overloads allow. */
template <class T>
static inline cudaError_t cudaMalloc(T **ptr, size_t size)
{
    return cudaMalloc(reinterpret_cast<void **>(ptr), size);
}
template <class T>
static inline cudaError_t cudaMallocHost(T **ptr, size_t size)
{
    return cudaMallocHost(reinterpret_cast<void **>(ptr), size);
}
template <class T>
static inline cudaError_t cudaHostAlloc(T **ptr, size_t size, unsigned int flags)
{
    return cudaHostAlloc(reinterpret_cast<void **>(ptr), size, flags);
}
#endif

#endif
