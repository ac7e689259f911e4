/*
 * emu_kernel.h - the prelude of a CUDA kernel file compiled as C++ by the CPU
 * emulator (tests/cuda_emu/README): cu2cpp.py rewrites each launch
 * `k<<<grid, block>>>(args)` into `qc_emu::launch(k, "k", __FILE__, __LINE__,
 * grid, block)(args)`, and the compiler gets `-include emu_kernel.h`.
 *
 * Here: the CUDA keywords as macros (__global__ and __device__ vanish,
 * __shared__ becomes a function-local static in the section qc_emu_shared,
 * which the runtime refills with 0xFF bytes before each block of a kernel
 * that synchronises: one instance per kernel is the shared memory of the one
 * block running), the built-in variables threadIdx / blockIdx / blockDim /
 * gridDim (read-only views of the runtime's current thread), __syncthreads,
 * the explicitly rounded intrinsics (plain IEEE operations: the translated
 * code is compiled with -ffp-contract=off, so nothing is fused behind them),
 * conversions, bit casts, integer intrinsics, min/max and atomics (plain
 * read-modify-write: threads are cooperative fibers that switch only at
 * __syncthreads).  Fast-math intrinsics (__expf, ...) map to the libm
 * functions: their device error bounds are not emulated.
 */
#ifndef QATCONV_TESTS_CUDA_EMU_EMU_KERNEL_H
#define QATCONV_TESTS_CUDA_EMU_EMU_KERNEL_H

#ifndef __cplusplus
#error "emu_kernel.h is the prelude of translated CUDA code (C++17)"
#endif

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime.h"

/* ---- keywords --------------------------------------------------------------------------- */

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static __attribute__((section("qc_emu_shared")))

/* ---- built-in variables and barriers ----------------------------------------------------- */

inline const uint3 &threadIdx = qc_emu_thread_idx;
inline const uint3 &blockIdx = qc_emu_block_idx;
inline const dim3 &blockDim = qc_emu_block_dim;
inline const dim3 &gridDim = qc_emu_grid_dim;
inline constexpr int warpSize = 32;

static inline void __syncthreads(void)
{
    qc_emu_syncthreads();
}

/* One block runs at a time on one host thread: fences order nothing more. */
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}

/* ---- explicitly rounded arithmetic (round to nearest even) ------------------------------ */

static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __frsqrt_rn(float a) { return 1.0f / sqrtf(a); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
static inline double __drcp_rn(double a) { return 1.0 / a; }
static inline double __dsqrt_rn(double a) { return sqrt(a); }

/* ---- fast-math intrinsics (libm here; the device's error bounds are not emulated) ------- */

/* glibc declares some of these names itself: macros, not functions */
#define __expf(x) expf(x)
#define __exp10f(x) powf(10.0f, (x))
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __log10f(x) log10f(x)
#define __powf(x, y) powf((x), (y))
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
/* clamp to [0, 1], NaN → 0 */
static inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }

/* ---- conversions (saturating, NaN → 0, as the device's cvt) ------------------------------ */

template <class I, class F>
static inline I qc_emu_cvt(F v)
{
    if (v != v)
        return 0;
    if (v <= (F)std::numeric_limits<I>::min())
        return std::numeric_limits<I>::min();
    if (v >= (F)std::numeric_limits<I>::max())
        return std::numeric_limits<I>::max();
    return (I)v;
}
static inline int __float2int_rn(float x) { return qc_emu_cvt<int>(rintf(x)); }
static inline int __float2int_rz(float x) { return qc_emu_cvt<int>(truncf(x)); }
static inline int __float2int_rd(float x) { return qc_emu_cvt<int>(floorf(x)); }
static inline int __float2int_ru(float x) { return qc_emu_cvt<int>(ceilf(x)); }
static inline unsigned __float2uint_rn(float x) { return qc_emu_cvt<unsigned>(rintf(x)); }
static inline unsigned __float2uint_rz(float x) { return qc_emu_cvt<unsigned>(truncf(x)); }
static inline long long __float2ll_rn(float x) { return qc_emu_cvt<long long>(rintf(x)); }
static inline long long __float2ll_rz(float x) { return qc_emu_cvt<long long>(truncf(x)); }
static inline int __double2int_rn(double x) { return qc_emu_cvt<int>(rint(x)); }
static inline int __double2int_rz(double x) { return qc_emu_cvt<int>(trunc(x)); }
static inline long long __double2ll_rn(double x) { return qc_emu_cvt<long long>(rint(x)); }
static inline float __double2float_rn(double x) { return (float)x; }
static inline float __int2float_rn(int x) { return (float)x; }
static inline float __uint2float_rn(unsigned x) { return (float)x; }
static inline float __ll2float_rn(long long x) { return (float)x; }
static inline double __int2double_rn(int x) { return (double)x; }
static inline double __ll2double_rn(long long x) { return (double)x; }

/* ---- bit casts and integer intrinsics ---------------------------------------------------- */

template <class To, class From>
static inline To qc_emu_bits(From v)
{
    static_assert(sizeof(To) == sizeof(From), "bit cast of different sizes");
    To r;
    memcpy(&r, &v, sizeof(r));
    return r;
}
static inline int __float_as_int(float x) { return qc_emu_bits<int>(x); }
static inline unsigned __float_as_uint(float x) { return qc_emu_bits<unsigned>(x); }
static inline float __int_as_float(int x) { return qc_emu_bits<float>(x); }
static inline float __uint_as_float(unsigned x) { return qc_emu_bits<float>(x); }
static inline long long __double_as_longlong(double x) { return qc_emu_bits<long long>(x); }
static inline double __longlong_as_double(long long x) { return qc_emu_bits<double>(x); }

static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline int __mul24(int a, int b) { return a * b; }
static inline unsigned __umul24(unsigned a, unsigned b) { return a * b; }
static inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
static inline unsigned __umulhi(unsigned a, unsigned b)
{
    return (unsigned)(((unsigned long long)a * b) >> 32);
}

/* ---- min / max: the device overloads (fminf/fmaxf semantics for floating point) --------- */

template <class A, class B>
static inline typename std::common_type<A, B>::type min(A a, B b)
{
    typedef typename std::common_type<A, B>::type T;
    if constexpr (std::is_floating_point<T>::value)
        return std::fmin((T)a, (T)b);
    else
        return (T)a < (T)b ? (T)a : (T)b;
}
template <class A, class B>
static inline typename std::common_type<A, B>::type max(A a, B b)
{
    typedef typename std::common_type<A, B>::type T;
    if constexpr (std::is_floating_point<T>::value)
        return std::fmax((T)a, (T)b);
    else
        return (T)a > (T)b ? (T)a : (T)b;
}

template <class T>
static inline T __ldg(const T *p)
{
    return *p;
}

/* ---- atomics: plain read-modify-write (no thread switch can happen inside) --------------- */

template <class T, class V>
static inline T atomicAdd(T *p, V v)
{
    T old = *p;
    *p = (T)(old + (T)v);
    return old;
}
template <class T, class V>
static inline T atomicSub(T *p, V v)
{
    T old = *p;
    *p = (T)(old - (T)v);
    return old;
}
template <class T, class V>
static inline T atomicExch(T *p, V v)
{
    T old = *p;
    *p = (T)v;
    return old;
}
template <class T, class V>
static inline T atomicMax(T *p, V v)
{
    T old = *p;
    if ((T)v > old)
        *p = (T)v;
    return old;
}
template <class T, class V>
static inline T atomicMin(T *p, V v)
{
    T old = *p;
    if ((T)v < old)
        *p = (T)v;
    return old;
}
template <class T, class V, class W>
static inline T atomicCAS(T *p, V cmp, W v)
{
    T old = *p;
    if (old == (T)cmp)
        *p = (T)v;
    return old;
}

/* ---- launches ---------------------------------------------------------------------------- */

namespace qc_emu {

/* A launch whose arguments are still to come: operator() converts them once to the kernel's
 * parameter types (as a launch does) and runs every thread of the grid. */
template <class... P>
struct launcher {
    void (*kern)(P...);
    const char  *name;
    const char  *file;
    int          line;
    dim3         grid;
    dim3         block;
    size_t       shmem;
    cudaStream_t stream;

    typedef std::tuple<typename std::decay<P>::type...> args_t;
    struct frame {
        void (*kern)(P...);
        args_t args;
    };

    static void body(void *p)
    {
        frame *f = static_cast<frame *>(p);
        std::apply(f->kern, f->args);
    }

    template <class... A>
    void operator()(A &&...a) const
    {
        static_assert(sizeof...(A) == sizeof...(P),
                      "kernel launched with the wrong number of arguments");
        frame f{kern, args_t(std::forward<A>(a)...)};
        qc_emu_run(name, file, line, grid, block, shmem, stream, &launcher::body, &f);
    }
};

template <class... P>
static inline launcher<P...> launch(void (*kern)(P...), const char *name, const char *file,
                                    int line, dim3 grid, dim3 block, size_t shmem = 0,
                                    cudaStream_t stream = 0)
{
    return launcher<P...>{kern, name, file, line, grid, block, shmem, stream};
}

}  // namespace qc_emu

#endif
