/*
 * emu_runtime.c - a CPU emulator of the CUDA runtime and cuBLAS subset of
 * cuda_runtime.h / cublas_v2.h, and the executor of translated kernels
 * (tests/cuda_emu/README).  One emulated device; streams and events exist,
 * but every operation runs at once on the calling thread, in call order.
 *
 * Device memory: one reserved arena (PROT_NONE, never reused, so a freed
 * pointer stays invalid).  Each allocation ends at a page boundary followed
 * by an inaccessible guard page; it starts 256-aligned, and the few bytes
 * around it inside its pages (the slack) are canaries checked after every
 * kernel.  Fresh memory is 0xFF bytes (float NaN).  The arena is inaccessible
 * except while a kernel, a copy, a memset or a cuBLAS call runs: then a
 * SIGSEGV handler opens (mprotect) each allocation the work touches, and the
 * end of the work closes them again; a fault anywhere else (guard page, freed
 * memory, or any device access by host code) is reported on stderr and
 * kills the process with SIGSEGV.
 *
 * Kernels: blocks run one after another.  Thread (0,0,0) of the first block
 * runs first in a fiber; if it finishes without __syncthreads, every other
 * thread runs as a plain call.  Otherwise each block's threads run as
 * cooperative fibers (own stacks; on x86-64 a 10-instruction register swap,
 * elsewhere ucontext + _setjmp/_longjmp) and a
 * barrier phase ends when every thread has reached __syncthreads or finished;
 * threads that pass different numbers of barriers are an error.
 *
 * Errors follow the runtime: a bad launch configuration is the "last error"
 * (cudaGetLastError); faults the emulator finds inside a kernel (canary
 * overwritten, divergent __syncthreads) are sticky: every later call returns
 * them.  Each error detected here is also described on stderr.  The state is
 * global (one device per process), guarded by one mutex.
 */
#undef _FORTIFY_SOURCE          /* longjmp across fiber stacks is intended here */
#define _GNU_SOURCE

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "cublas_v2.h"
#include "cuda_runtime.h"

#ifndef EMU_ASM_SWITCH            /* -DEMU_ASM_SWITCH=0 tests the portable fibers */
#if defined(__x86_64__) && defined(__linux__)
#define EMU_ASM_SWITCH 1
#else
#define EMU_ASM_SWITCH 0
#endif
#endif

#define EMU_ALIGN        256                    /* cudaMalloc alignment              */
#define EMU_FILL         0xFF                   /* fresh device bytes: float NaN      */
#define EMU_FIBER_STACK  (256 * 1024)
#define EMU_MAX_THREADS  1024
#define EMU_NOMINAL_MEM  ((size_t)16 << 30)     /* what cudaMemGetInfo reports        */

uint3 qc_emu_thread_idx;
uint3 qc_emu_block_idx;
dim3  qc_emu_block_dim;
dim3  qc_emu_grid_dim;

/* The __shared__ variables of every translated kernel (emu_kernel.h). */
extern char __start_qc_emu_shared[] __attribute__((weak));
extern char __stop_qc_emu_shared[] __attribute__((weak));

struct dev_alloc {
    uintptr_t lo, hi;        /* its pages; the guard page starts at hi */
    uintptr_t dlo, dhi;      /* the bytes returned by cudaMalloc       */
    int       open;          /* readable and writable right now        */
};

enum fiber_state { F_READY, F_BARRIER, F_DONE };

struct fiber {
#if EMU_ASM_SWITCH
    void            *sp;         /* saved stack pointer while switched out */
#else
    ucontext_t       uc;
    jmp_buf          jb;
#endif
    void            *stack;
    uint3            tid;
    enum fiber_state state;
    unsigned         barriers;
};

struct CUstream_st {
    unsigned flags;
};

struct CUevent_st {
    unsigned flags;
    int      recorded;
    double   t_ms;
};

struct cublasContext {
    cublasMath_t        math;
    cublasPointerMode_t pmode;
    cudaStream_t        stream;
};

static struct {
    pthread_mutex_t   lock;
    int               ready;
    int               devices;
    int               quiet;
    size_t            page;
    /* arena */
    uintptr_t         base, end, top;
    struct dev_alloc *a;
    size_t            n, cap;
    size_t            live_bytes;
    struct sigaction  old_segv;
    /* pinned host blocks */
    void            **pinned;
    size_t            npinned, cappinned;
    /* errors */
    cudaError_t       last, sticky;
    /* the running launch */
    const char       *kname;
    const char       *kfile;
    int               kline;
    int               direct;      /* threads run as plain calls            */
    int               diverged;    /* __syncthreads outside the fiber mode  */
    void            (*body)(void *);
    void             *ctx;
    struct fiber     *fib;
    int               nfib;
    struct fiber     *cur;
    unsigned          nthreads;    /* threads of the block on fibers        */
    unsigned          phase;       /* barrier phase of the block            */
#if EMU_ASM_SWITCH
    void             *sched_sp;
#else
    jmp_buf           sched;
#endif
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static __thread int in_window;     /* this thread's device work is running */

/* ---- diagnostics --------------------------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;
    if (g.quiet)
        return;
    fputs("qc-cuda-emu: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Records a non-sticky error (the last error) and returns it. */
static cudaError_t fail(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static cudaError_t fail(cudaError_t e, const char *fmt, ...)
{
    va_list ap;
    if (!g.quiet) {
        fputs("qc-cuda-emu: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    g.last = e;
    return e;
}

/* A fault of the device (kernel): sticky, as after a real illegal access. */
static void fault(cudaError_t e)
{
    if (g.sticky == cudaSuccess)
        g.sticky = e;
    g.last = e;
}

/* Async-signal-safe output for the SIGSEGV handler. */
static void sig_puts(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void sig_putx(uintptr_t v)
{
    char buf[2 + 2 * sizeof(v) + 1];
    int i = (int)sizeof(buf) - 1;
    buf[i] = '\0';
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v && i > 2);
    buf[--i] = 'x';
    buf[--i] = '0';
    sig_puts(buf + i);
}

/* ---- the arena ------------------------------------------------------------------------------ */

/* The allocation whose pages contain p, or NULL (binary search: allocations are in address
 * order because the arena is never reused). */
static struct dev_alloc *find_pages(uintptr_t p)
{
    size_t lo = 0, hi = g.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p < g.a[mid].lo)
            hi = mid;
        else if (p >= g.a[mid].hi)
            lo = mid + 1;
        else
            return &g.a[mid];
    }
    return NULL;
}

static int in_arena(const void *p)
{
    return (uintptr_t)p >= g.base && (uintptr_t)p < g.end;
}

static int open_alloc(struct dev_alloc *d)
{
    if (d->open)
        return 0;
    if (mprotect((void *)d->lo, d->hi - d->lo, PROT_READ | PROT_WRITE) != 0)
        return -1;
    d->open = 1;
    return 0;
}

static void segv_handler(int sig, siginfo_t *si, void *uctx)
{
    uintptr_t p = (uintptr_t)si->si_addr;
    (void)sig;
    (void)uctx;
    if (p >= g.base && p < g.end) {
        struct dev_alloc *d = find_pages(p);
        if (in_window && d && !d->open && open_alloc(d) == 0)
            return;                                   /* device work touching its memory */
        sig_puts("qc-cuda-emu: ");
        if (!in_window) {
            sig_puts("host code accessed device memory at ");
        } else {
            sig_puts(g.kname ? g.kname : "a copy");
            sig_puts(d ? ": fault at " : ": out-of-bounds device access (guard page or freed "
                                         "memory) at ");
        }
        sig_putx(p);
        if (d) {
            sig_puts(", allocation ");
            sig_putx(d->dlo);
            sig_puts(" of ");
            sig_putx(d->dhi - d->dlo);
            sig_puts(" bytes");
        }
        if (in_window && g.kname) {
            sig_puts(" (");
            sig_puts(g.kfile ? g.kfile : "?");
            sig_puts(")");
        }
        sig_puts("\n");
    }
    /* not ours, or an error: let the previous disposition handle the re-executed fault */
    sigaction(SIGSEGV, &g.old_segv, NULL);
}

static cudaError_t init(void)
{
    struct sigaction sa;
    size_t want;
    const char *env;
    void *p = MAP_FAILED;
    if (g.ready)
        return cudaSuccess;
    g.page = (size_t)sysconf(_SC_PAGESIZE);
    env = getenv("QC_EMU_DEVICE_COUNT");
    g.devices = env ? atoi(env) : 1;
    env = getenv("QC_EMU_QUIET");
    g.quiet = env && *env && strcmp(env, "0") != 0;
    /* address space only: the largest reservation the system grants, 1 TiB down to 1 GiB */
    for (want = (size_t)1 << 40; want >= ((size_t)1 << 30); want >>= 1) {
        p = mmap(NULL, want, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p != MAP_FAILED)
            break;
    }
    if (p == MAP_FAILED)
        return fail(cudaErrorInitializationError, "cannot reserve the device arena: %s",
                    strerror(errno));
    g.base = (uintptr_t)p;
    g.end = g.base + want;
    g.top = g.base + g.page;              /* a guard page before the first allocation too */
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &g.old_segv) != 0) {
        munmap(p, want);
        return fail(cudaErrorInitializationError, "cannot install the SIGSEGV handler: %s",
                    strerror(errno));
    }
    g.ready = 1;
    return cudaSuccess;
}

/* Entry of every API call: lock, initialise, and the sticky error if any. */
static cudaError_t enter(void)
{
    cudaError_t e;
    pthread_mutex_lock(&g.lock);
    e = init();
    if (e == cudaSuccess && g.sticky != cudaSuccess)
        e = g.sticky;
    return e;
}

static cudaError_t leave(cudaError_t e)
{
    pthread_mutex_unlock(&g.lock);
    return e;
}

static int slack_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != EMU_FILL)
            return 0;
    return 1;
}

/* End of device work: check the canaries of what was opened and close it again. */
static void window_close(void)
{
    for (size_t i = 0; i < g.n; i++) {
        struct dev_alloc *d = &g.a[i];
        if (!d->open)
            continue;
        if (!slack_ok((const unsigned char *)d->lo, d->dlo - d->lo)
            || !slack_ok((const unsigned char *)d->dhi, d->hi - d->dhi)) {
            say("%s (%s:%d) wrote outside the allocation %p of %zu bytes (canary bytes "
                "changed)", g.kname ? g.kname : "device work", g.kfile ? g.kfile : "?",
                g.kline, (void *)d->dlo, (size_t)(d->dhi - d->dlo));
            memset((void *)d->lo, EMU_FILL, d->dlo - d->lo);
            memset((void *)d->dhi, EMU_FILL, d->hi - d->dhi);
            fault(cudaErrorIllegalAddress);
        }
        mprotect((void *)d->lo, d->hi - d->lo, PROT_NONE);
        d->open = 0;
    }
    in_window = 0;
}

/* The live allocation whose returned bytes hold [p, p + n), or NULL. */
static struct dev_alloc *find_range(const void *p, size_t n)
{
    struct dev_alloc *d = find_pages((uintptr_t)p);
    if (!d || (uintptr_t)p < d->dlo || n > d->dhi - (uintptr_t)p)
        return NULL;
    return d;
}

int qc_emu_is_device_ptr(const void *p)
{
    int r;
    pthread_mutex_lock(&g.lock);
    r = g.ready && in_arena(p);
    pthread_mutex_unlock(&g.lock);
    return r;
}

/* ---- device management ---------------------------------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && !count)
        e = fail(cudaErrorInvalidValue, "cudaGetDeviceCount: NULL count");
    if (e == cudaSuccess) {
        *count = g.devices > 0 ? g.devices : 0;
        if (g.devices <= 0)
            e = fail(cudaErrorNoDevice, "no emulated device (QC_EMU_DEVICE_COUNT=0)");
    }
    return leave(e);
}

static cudaError_t check_device(int device)
{
    if (device < 0 || device >= g.devices)
        return fail(cudaErrorInvalidDevice, "device %d: %d emulated device(s)", device,
                    g.devices);
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    cudaError_t e = enter();
    if (e == cudaSuccess)
        e = check_device(device);
    return leave(e);
}

cudaError_t cudaGetDevice(int *device)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && !device)
        e = fail(cudaErrorInvalidValue, "cudaGetDevice: NULL device");
    if (e == cudaSuccess)
        *device = 0;
    return leave(e);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && !prop)
        e = fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: NULL prop");
    if (e == cudaSuccess)
        e = check_device(device);
    if (e == cudaSuccess) {
        memset(prop, 0, sizeof(*prop));
        snprintf(prop->name, sizeof(prop->name), "qatconv CUDA emulator");
        prop->totalGlobalMem = EMU_NOMINAL_MEM;
        prop->sharedMemPerBlock = 48 * 1024;
        prop->regsPerBlock = 65536;
        prop->warpSize = 32;
        prop->maxThreadsPerBlock = EMU_MAX_THREADS;
        prop->maxThreadsDim[0] = 1024;
        prop->maxThreadsDim[1] = 1024;
        prop->maxThreadsDim[2] = 64;
        prop->maxGridSize[0] = 0x7fffffff;
        prop->maxGridSize[1] = 65535;
        prop->maxGridSize[2] = 65535;
        prop->clockRate = 1000000;
        prop->major = 8;
        prop->minor = 0;
        prop->multiProcessorCount = 1;
        prop->memoryBusWidth = 64;
        prop->memoryClockRate = 1000000;
    }
    return leave(e);
}

cudaError_t cudaDeviceSynchronize(void)
{
    return leave(enter());
}

cudaError_t cudaDeviceReset(void)
{
    cudaError_t e;
    pthread_mutex_lock(&g.lock);
    g.sticky = cudaSuccess;
    g.last = cudaSuccess;
    e = init();
    return leave(e);
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e;
    pthread_mutex_lock(&g.lock);
    e = g.last;
    g.last = g.sticky;
    return leave(e);
}

cudaError_t cudaPeekAtLastError(void)
{
    cudaError_t e;
    pthread_mutex_lock(&g.lock);
    e = g.last;
    return leave(e);
}

const char *cudaGetErrorName(cudaError_t error)
{
    switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorUnknown: return "cudaErrorUnknown";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t error)
{
    switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
    }
    return "unknown error";
}

/* ---- memory --------------------------------------------------------------------------------- */

cudaError_t cudaMalloc(void **ptr, size_t size)
{
    cudaError_t e = enter();
    struct dev_alloc d;
    size_t span;
    if (e != cudaSuccess)
        return leave(e);
    if (!ptr)
        return leave(fail(cudaErrorInvalidValue, "cudaMalloc: NULL ptr"));
    *ptr = NULL;
    if (size == 0)
        return leave(cudaSuccess);
    span = (size + g.page - 1) / g.page * g.page;
    if (size > g.end - g.top || span + g.page > g.end - g.top)
        return leave(fail(cudaErrorMemoryAllocation, "cudaMalloc(%zu): arena exhausted", size));
    if (g.n == g.cap) {
        size_t cap = g.cap ? 2 * g.cap : 256;
        struct dev_alloc *a = realloc(g.a, cap * sizeof(*a));
        if (!a)
            return leave(fail(cudaErrorMemoryAllocation, "cudaMalloc: out of host memory"));
        g.a = a;
        g.cap = cap;
    }
    d.lo = g.top;
    d.hi = d.lo + span;
    d.dhi = d.hi;
    d.dlo = (d.hi - size) & ~(uintptr_t)(EMU_ALIGN - 1);
    d.dhi = d.dlo + size;
    d.open = 0;
    if (mprotect((void *)d.lo, span, PROT_READ | PROT_WRITE) != 0)
        return leave(fail(cudaErrorMemoryAllocation, "cudaMalloc(%zu): %s", size,
                          strerror(errno)));
    memset((void *)d.lo, EMU_FILL, span);
    mprotect((void *)d.lo, span, PROT_NONE);
    g.top = d.hi + g.page;
    g.a[g.n++] = d;
    g.live_bytes += size;
    *ptr = (void *)d.dlo;
    return leave(cudaSuccess);
}

cudaError_t cudaFree(void *ptr)
{
    cudaError_t e = enter();
    struct dev_alloc *d;
    if (e != cudaSuccess || !ptr)
        return leave(e);
    d = in_arena(ptr) ? find_pages((uintptr_t)ptr) : NULL;
    if (!d || d->dlo != (uintptr_t)ptr)
        return leave(fail(cudaErrorInvalidValue, "cudaFree(%p): not a live device allocation",
                          ptr));
    mprotect((void *)d->lo, d->hi - d->lo, PROT_NONE);
    madvise((void *)d->lo, d->hi - d->lo, MADV_DONTNEED);
    g.live_bytes -= d->dhi - d->dlo;
    memmove(d, d + 1, (size_t)(g.a + g.n - (d + 1)) * sizeof(*d));
    g.n--;
    return leave(cudaSuccess);
}

cudaError_t cudaMallocHost(void **ptr, size_t size)
{
    return cudaHostAlloc(ptr, size, cudaHostAllocDefault);
}

cudaError_t cudaHostAlloc(void **ptr, size_t size, unsigned int flags)
{
    cudaError_t e = enter();
    void *p;
    (void)flags;
    if (e != cudaSuccess)
        return leave(e);
    if (!ptr)
        return leave(fail(cudaErrorInvalidValue, "cudaMallocHost: NULL ptr"));
    if (g.npinned == g.cappinned) {
        size_t cap = g.cappinned ? 2 * g.cappinned : 16;
        void **a = realloc(g.pinned, cap * sizeof(*a));
        if (!a)
            return leave(fail(cudaErrorMemoryAllocation, "cudaMallocHost: out of memory"));
        g.pinned = a;
        g.cappinned = cap;
    }
    if (posix_memalign(&p, EMU_ALIGN, size ? size : 1) != 0)
        return leave(fail(cudaErrorMemoryAllocation, "cudaMallocHost(%zu): out of memory",
                          size));
    g.pinned[g.npinned++] = p;
    *ptr = p;
    return leave(cudaSuccess);
}

cudaError_t cudaFreeHost(void *ptr)
{
    cudaError_t e = enter();
    if (e != cudaSuccess || !ptr)
        return leave(e);
    for (size_t i = 0; i < g.npinned; i++) {
        if (g.pinned[i] == ptr) {
            g.pinned[i] = g.pinned[--g.npinned];
            free(ptr);
            return leave(cudaSuccess);
        }
    }
    return leave(fail(cudaErrorInvalidValue, "cudaFreeHost(%p): not from cudaMallocHost", ptr));
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && (!free_bytes || !total_bytes))
        e = fail(cudaErrorInvalidValue, "cudaMemGetInfo: NULL argument");
    if (e == cudaSuccess) {
        *total_bytes = EMU_NOMINAL_MEM;
        *free_bytes = g.live_bytes < EMU_NOMINAL_MEM ? EMU_NOMINAL_MEM - g.live_bytes : 0;
    }
    return leave(e);
}

static const char *kind_name(enum cudaMemcpyKind kind)
{
    switch (kind) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    case cudaMemcpyDefault: return "Default";
    }
    return "?";
}

/* One side of a copy: a device side must be [p, p + n) of one live allocation, a host side
 * must not be in the arena. */
static cudaError_t check_side(const char *fn, const char *what, const void *p, size_t n,
                              int device, enum cudaMemcpyKind kind)
{
    if (!p)
        return fail(cudaErrorInvalidValue, "%s(%s): NULL %s pointer", fn, kind_name(kind), what);
    if (device && !in_arena(p))
        return fail(cudaErrorInvalidValue, "%s(%s): %s %p is a host pointer, expected device "
                    "memory", fn, kind_name(kind), what, p);
    if (!device && in_arena(p))
        return fail(cudaErrorInvalidValue, "%s(%s): %s %p is a device pointer, expected host "
                    "memory", fn, kind_name(kind), what, p);
    if (device && !find_range(p, n))
        return fail(cudaErrorInvalidValue, "%s: %s [%p, +%zu) is not inside one live device "
                    "allocation", fn, what, p, n);
    return cudaSuccess;
}

static cudaError_t copy(const char *fn, void *dst, const void *src, size_t count,
                        enum cudaMemcpyKind kind)
{
    cudaError_t e = enter();
    int ddev, sdev;
    if (e != cudaSuccess || count == 0)
        return leave(e);
    switch (kind) {
    case cudaMemcpyHostToHost: ddev = 0; sdev = 0; break;
    case cudaMemcpyHostToDevice: ddev = 1; sdev = 0; break;
    case cudaMemcpyDeviceToHost: ddev = 0; sdev = 1; break;
    case cudaMemcpyDeviceToDevice: ddev = 1; sdev = 1; break;
    case cudaMemcpyDefault: ddev = in_arena(dst); sdev = in_arena(src); break;
    default:
        return leave(fail(cudaErrorInvalidMemcpyDirection, "%s: invalid kind %d", fn,
                          (int)kind));
    }
    if ((e = check_side(fn, "dst", dst, count, ddev, kind)) != cudaSuccess
        || (e = check_side(fn, "src", src, count, sdev, kind)) != cudaSuccess)
        return leave(e);
    g.kname = NULL;
    in_window = 1;
    memmove(dst, src, count);
    window_close();
    return leave(cudaSuccess);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    return copy("cudaMemcpy", dst, src, count, kind);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    (void)stream;
    return copy("cudaMemcpyAsync", dst, src, count, kind);
}

static cudaError_t set(const char *fn, void *dst, int value, size_t count)
{
    cudaError_t e = enter();
    if (e != cudaSuccess || count == 0)
        return leave(e);
    if ((e = check_side(fn, "dst", dst, count, 1, cudaMemcpyHostToDevice)) != cudaSuccess)
        return leave(e);
    g.kname = NULL;
    in_window = 1;
    memset(dst, value, count);
    window_close();
    return leave(cudaSuccess);
}

cudaError_t cudaMemset(void *dst, int value, size_t count)
{
    return set("cudaMemset", dst, value, count);
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t count, cudaStream_t stream)
{
    (void)stream;
    return set("cudaMemsetAsync", dst, value, count);
}

/* ---- streams and events (everything is already complete) ------------------------------------ */

cudaError_t cudaStreamCreate(cudaStream_t *stream)
{
    return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && !stream)
        e = fail(cudaErrorInvalidValue, "cudaStreamCreate: NULL stream");
    if (e == cudaSuccess) {
        *stream = calloc(1, sizeof(**stream));
        if (!*stream)
            e = fail(cudaErrorMemoryAllocation, "cudaStreamCreate: out of memory");
        else
            (*stream)->flags = flags;
    }
    return leave(e);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && !stream)
        e = fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: NULL stream");
    if (e == cudaSuccess)
        free(stream);
    return leave(e);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    (void)stream;
    return leave(enter());
}

cudaError_t cudaStreamQuery(cudaStream_t stream)
{
    (void)stream;
    return leave(enter());
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    cudaError_t e = enter();
    (void)stream;
    (void)flags;
    if (e == cudaSuccess && !event)
        e = fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: NULL event");
    return leave(e);
}

cudaError_t cudaEventCreate(cudaEvent_t *event)
{
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && !event)
        e = fail(cudaErrorInvalidValue, "cudaEventCreate: NULL event");
    if (e == cudaSuccess) {
        *event = calloc(1, sizeof(**event));
        if (!*event)
            e = fail(cudaErrorMemoryAllocation, "cudaEventCreate: out of memory");
        else
            (*event)->flags = flags;
    }
    return leave(e);
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    cudaError_t e = enter();
    struct timespec ts;
    (void)stream;
    if (e == cudaSuccess && !event)
        e = fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: NULL event");
    if (e == cudaSuccess) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        event->t_ms = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
        event->recorded = 1;
    }
    return leave(e);
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && !event)
        e = fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: NULL event");
    return leave(e);
}

cudaError_t cudaEventQuery(cudaEvent_t event)
{
    return cudaEventSynchronize(event);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && (!ms || !start || !end))
        e = fail(cudaErrorInvalidValue, "cudaEventElapsedTime: NULL argument");
    else if (e == cudaSuccess && ((start->flags | end->flags) & cudaEventDisableTiming))
        e = fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: timing disabled");
    else if (e == cudaSuccess && (!start->recorded || !end->recorded))
        e = fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event not recorded");
    if (e == cudaSuccess)
        *ms = (float)(end->t_ms - start->t_ms);
    return leave(e);
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    cudaError_t e = enter();
    if (e == cudaSuccess && !event)
        e = fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy: NULL event");
    if (e == cudaSuccess)
        free(event);
    return leave(e);
}

/* ---- kernel execution ----------------------------------------------------------------------- */

#if EMU_ASM_SWITCH
/* qc_emu_swap(&save, to): pushes the callee-saved registers, stores the stack pointer in
 * *save, loads `to` and pops the same frame from there.  The SSE/x87 control words are not
 * switched: kernels do not change rounding modes. */
void qc_emu_swap(void **save, void *to);
__asm__(".text\n"
        ".globl qc_emu_swap\n"
        ".hidden qc_emu_swap\n"
        ".type qc_emu_swap, @function\n"
        "qc_emu_swap:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size qc_emu_swap, .-qc_emu_swap\n");

static void fiber_leave(struct fiber *f);

/* Every fiber's first frame: run one thread per resumption, then hand over. */
static void fiber_main(void)
{
    for (;;) {
        g.body(g.ctx);
        g.cur->state = F_DONE;
        fiber_leave(g.cur);
    }
}

/* A stack whose first switch "returns" into fiber_main: six registers, then the return
 * address at a 16-byte boundary (so fiber_main starts as if called). */
static int fiber_make(struct fiber *f)
{
    char *stack = mmap(NULL, EMU_FIBER_STACK + g.page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    uint64_t *sp;
    if (stack == MAP_FAILED)
        return -1;
    mprotect(stack, g.page, PROT_NONE);                   /* stack overflow guard */
    f->stack = stack;
    /* stack tops staggered by 5 cache lines per fiber, so that the hot frames of hundreds of
     * fibers do not all fall into the same cache sets */
    sp = (uint64_t *)(stack + g.page + EMU_FIBER_STACK - 64
                      - (size_t)((f - g.fib) * 5 % 64) * 64);
    *--sp = 0;                                            /* fiber_main's fake caller    */
    *--sp = (uint64_t)(uintptr_t)fiber_main;              /* 16-byte aligned slot        */
    for (int i = 0; i < 6; i++)
        *--sp = 0;                                        /* rbp rbx r12 r13 r14 r15     */
    f->sp = sp;
    return 0;
}

/* From the scheduler into f. */
static void resume(struct fiber *f)
{
    g.cur = f;
    qc_emu_thread_idx = f->tid;
    qc_emu_swap(&g.sched_sp, f->sp);
}

/* From fiber `from` into fiber `to` (NULL: back to the scheduler). */
static void fiber_switch(struct fiber *from, struct fiber *to)
{
    if (to) {
        g.cur = to;
        qc_emu_thread_idx = to->tid;
        qc_emu_swap(&from->sp, to->sp);
    } else {
        qc_emu_swap(&from->sp, g.sched_sp);
    }
}
#else
static void fiber_leave(struct fiber *f);

/* Every fiber's first frame: park, then run one thread per resumption and hand over. */
static void fiber_main(void)
{
    if (!_setjmp(g.cur->jb))
        _longjmp(g.sched, 1);
    for (;;) {
        g.body(g.ctx);
        g.cur->state = F_DONE;
        fiber_leave(g.cur);
    }
}

static int fiber_make(struct fiber *f)
{
    char *stack = mmap(NULL, EMU_FIBER_STACK + g.page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    mprotect(stack, g.page, PROT_NONE);                   /* stack overflow guard */
    f->stack = stack;
    if (getcontext(&f->uc) != 0)
        return -1;
    f->uc.uc_stack.ss_sp = stack + g.page;
    f->uc.uc_stack.ss_size = EMU_FIBER_STACK;
    f->uc.uc_link = NULL;
    makecontext(&f->uc, fiber_main, 0);
    g.cur = f;
    if (!_setjmp(g.sched))
        setcontext(&f->uc);                               /* runs to the park point */
    return 0;
}

/* From the scheduler into f. */
static void resume(struct fiber *f)
{
    g.cur = f;
    qc_emu_thread_idx = f->tid;
    if (!_setjmp(g.sched))
        _longjmp(f->jb, 1);
}

/* From fiber `from` into fiber `to` (NULL: back to the scheduler). */
static void fiber_switch(struct fiber *from, struct fiber *to)
{
    if (!_setjmp(from->jb)) {
        if (!to)
            _longjmp(g.sched, 1);
        g.cur = to;
        qc_emu_thread_idx = to->tid;
        _longjmp(to->jb, 1);
    }
}
#endif

static int fibers_ensure(int n)
{
    if (n <= g.nfib)
        return 0;
    if (!g.fib) {
        g.fib = calloc(EMU_MAX_THREADS, sizeof(*g.fib));
        if (!g.fib)
            return -1;
    }
    while (g.nfib < n) {
        if (fiber_make(&g.fib[g.nfib]) != 0)
            return -1;
        g.nfib++;
    }
    return 0;
}

/* f stops (barrier or end): on to the next thread of this barrier phase, or back to the
 * scheduler when f was the phase's last. */
static void fiber_leave(struct fiber *f)
{
    struct fiber *end = g.fib + g.nthreads;
    for (struct fiber *n = f + 1; n < end; n++)
        if (n->state != F_DONE && n->barriers == g.phase) {
            n->state = F_READY;
            fiber_switch(f, n);
            return;
        }
    fiber_switch(f, NULL);
}

void qc_emu_syncthreads(void)
{
    struct fiber *f = g.cur;
    if (g.direct) {
        if (!g.diverged)
            say("%s (%s:%d): thread (%u,%u,%u) of block (%u,%u,%u) calls __syncthreads but "
                "thread 0 of block 0 did not (divergent barrier)", g.kname, g.kfile, g.kline,
                qc_emu_thread_idx.x, qc_emu_thread_idx.y, qc_emu_thread_idx.z,
                qc_emu_block_idx.x, qc_emu_block_idx.y, qc_emu_block_idx.z);
        g.diverged = 1;
        return;
    }
    f->state = F_BARRIER;
    f->barriers++;
    fiber_leave(f);
}

static uint3 thread_of(unsigned t, dim3 block)
{
    uint3 r;
    r.x = t % block.x;
    r.y = t / block.x % block.y;
    r.z = t / block.x / block.y;
    return r;
}

static void shared_fill(void)
{
    char *lo = &__start_qc_emu_shared[0], *hi = &__stop_qc_emu_shared[0];
    if (lo && hi > lo)
        memset(lo, EMU_FILL, (size_t)(hi - lo));
}

/* Barrier phases until every thread of the block is done: phase p resumes each thread that
 * has passed p barriers (thread 0 of the first block may be one ahead, from the probe) up to
 * its next barrier or its end.  0 when all passed the same number of barriers. */
static int block_fibers(unsigned nthreads)
{
    int waiting;
    g.nthreads = nthreads;
    g.phase = 0;
    do {
        /* the first thread of the phase; each hands over to the next (fiber_leave) */
        for (unsigned t = 0; t < nthreads; t++) {
            struct fiber *f = &g.fib[t];
            if (f->state != F_DONE && f->barriers == g.phase) {
                f->state = F_READY;
                resume(f);
                break;
            }
        }
        waiting = 0;
        for (unsigned t = 0; t < nthreads && !waiting; t++)
            waiting = g.fib[t].state == F_BARRIER;
        g.phase++;
    } while (waiting);
    for (unsigned t = 1; t < nthreads; t++) {
        if (g.fib[t].barriers != g.fib[0].barriers) {
            say("%s (%s:%d): thread (%u,%u,%u) of block (%u,%u,%u) passed %u __syncthreads, "
                "thread 0 passed %u (divergent barrier)", g.kname, g.kfile, g.kline,
                g.fib[t].tid.x, g.fib[t].tid.y, g.fib[t].tid.z, qc_emu_block_idx.x,
                qc_emu_block_idx.y, qc_emu_block_idx.z, g.fib[t].barriers, g.fib[0].barriers);
            return -1;
        }
    }
    return 0;
}

static void block_start(unsigned nthreads, dim3 block)
{
    for (unsigned t = 0; t < nthreads; t++) {
        g.fib[t].tid = thread_of(t, block);
        g.fib[t].state = F_READY;
        g.fib[t].barriers = 0;
    }
}

static uint3 block_of(unsigned long long b, dim3 grid)
{
    uint3 r;
    r.x = (unsigned)(b % grid.x);
    r.y = (unsigned)(b / grid.x % grid.y);
    r.z = (unsigned)(b / grid.x / grid.y);
    return r;
}

static cudaError_t run_grid(dim3 grid, dim3 block)
{
    unsigned nthreads = block.x * block.y * block.z;
    unsigned long long nblocks = (unsigned long long)grid.x * grid.y * grid.z;
    if (fibers_ensure(1) != 0)
        return fail(cudaErrorLaunchOutOfResources, "%s: cannot create a fiber", g.kname);
    /* the probe: thread 0 of block 0 in a fiber */
    shared_fill();
    qc_emu_block_idx = block_of(0, grid);
    g.direct = 0;
    g.diverged = 0;
    g.nthreads = 1;
    g.phase = 0;
    block_start(1, block);
    resume(&g.fib[0]);
    if (g.fib[0].state == F_DONE) {
        g.direct = 1;
        for (unsigned long long b = 0; b < nblocks; b++) {
            qc_emu_block_idx = block_of(b, grid);
            for (unsigned t = b ? 0 : 1; t < nthreads; t++) {
                qc_emu_thread_idx = thread_of(t, block);
                g.body(g.ctx);
            }
        }
        g.direct = 0;
        if (g.diverged) {
            fault(cudaErrorLaunchFailure);
            return g.last;
        }
        return cudaSuccess;
    }
    /* thread 0 waits at a barrier: the whole block (and every later one) on fibers */
    if (fibers_ensure((int)nthreads) != 0)
        return fail(cudaErrorLaunchOutOfResources, "%s: cannot create %u fibers", g.kname,
                    nthreads);
    for (unsigned t = 1; t < nthreads; t++) {
        g.fib[t].tid = thread_of(t, block);
        g.fib[t].state = F_READY;
        g.fib[t].barriers = 0;
    }
    for (unsigned long long b = 0; b < nblocks; b++) {
        if (b) {
            shared_fill();
            qc_emu_block_idx = block_of(b, grid);
            block_start(nthreads, block);
        }
        if (block_fibers(nthreads) != 0) {
            fault(cudaErrorLaunchFailure);
            return g.last;
        }
    }
    return cudaSuccess;
}

void qc_emu_run(const char *name, const char *file, int line, dim3 grid, dim3 block,
                size_t shmem, cudaStream_t stream, void (*body)(void *), void *ctx)
{
    cudaError_t e = enter();
    unsigned long long nthreads = (unsigned long long)block.x * block.y * block.z;
    (void)stream;
    if (e != cudaSuccess) {
        g.last = e;
        leave(e);
        return;
    }
    if (g.kname) {
        fail(cudaErrorNotSupported, "%s (%s:%d): launch from inside kernel %s", name, file,
             line, g.kname);
        leave(e);
        return;
    }
    if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z
        || block.x > 1024 || block.y > 1024 || block.z > 64 || nthreads > EMU_MAX_THREADS
        || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
        fail(cudaErrorInvalidConfiguration, "%s (%s:%d): invalid launch configuration grid "
             "(%u,%u,%u) block (%u,%u,%u)", name, file, line, grid.x, grid.y, grid.z, block.x,
             block.y, block.z);
        leave(e);
        return;
    }
    if (shmem) {
        fail(cudaErrorInvalidValue, "%s (%s:%d): dynamic shared memory (%zu bytes) is not "
             "supported", name, file, line, shmem);
        leave(e);
        return;
    }
    g.kname = name;
    g.kfile = file;
    g.kline = line;
    g.body = body;
    g.ctx = ctx;
    qc_emu_grid_dim = grid;
    qc_emu_block_dim = block;
    in_window = 1;
    run_grid(grid, block);
    window_close();
    g.kname = NULL;
    g.kfile = NULL;
    leave(e);
}

/* ---- cuBLAS --------------------------------------------------------------------------------- */

static cublasStatus_t blas_enter(cublasHandle_t h)
{
    if (enter() != cudaSuccess)
        return CUBLAS_STATUS_EXECUTION_FAILED;
    if (!h) {
        say("cuBLAS: NULL handle");
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t blas_leave(cublasStatus_t s)
{
    pthread_mutex_unlock(&g.lock);
    return s;
}

cublasStatus_t cublasCreate(cublasHandle_t *handle)
{
    if (!handle)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (enter() != cudaSuccess)
        return blas_leave(CUBLAS_STATUS_NOT_INITIALIZED);
    *handle = calloc(1, sizeof(**handle));
    return blas_leave(*handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED);
}

cublasStatus_t cublasDestroy(cublasHandle_t handle)
{
    if (!handle)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    free(handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream)
{
    if (!handle)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *stream)
{
    if (!handle)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream)
        return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    if (!handle)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    switch ((int)mode & ~(int)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION) {
    case CUBLAS_DEFAULT_MATH:
    case CUBLAS_TENSOR_OP_MATH:
    case CUBLAS_PEDANTIC_MATH:
    case CUBLAS_TF32_TENSOR_OP_MATH:
        handle->math = mode;
        return CUBLAS_STATUS_SUCCESS;
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode)
{
    if (!handle)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode)
        return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->math;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode)
{
    if (!handle)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE)
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->pmode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode(cublasHandle_t handle, cublasPointerMode_t *mode)
{
    if (!handle)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode)
        return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->pmode;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t status)
{
    return cublasGetStatusName(status);
}

/* float → TF32: round the mantissa to 10 bits, to nearest even (Inf/NaN kept). */
static float tf32(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    if ((u & 0x7f800000u) != 0x7f800000u) {
        u += 0x0fffu + ((u >> 13) & 1u);
        u &= ~0x1fffu;
    }
    memcpy(&v, &u, sizeof(v));
    return v;
}

/* An rows x cols column-major operand with leading dimension ld, rounded to TF32 into a
 * packed host copy. */
static float *tf32_copy(const float *a, int rows, int cols, int ld)
{
    float *c = malloc((size_t)rows * (size_t)cols * sizeof(float) + 1);
    if (!c)
        return NULL;
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++)
            c[(size_t)j * (size_t)rows + (size_t)i] = tf32(a[(size_t)j * (size_t)ld + (size_t)i]);
    return c;
}

/* Opens the allocation holding an operand of `cols` columns of `rows` floats, leading
 * dimension ld (so that BLAS threads do not fault); NULL pointer or range outside one live
 * allocation is an error. */
static int operand(const char *fn, const char *what, const void *p, int rows, int cols, int ld)
{
    size_t bytes;
    struct dev_alloc *d;
    if (rows == 0 || cols == 0)
        return 0;
    bytes = ((size_t)(cols - 1) * (size_t)ld + (size_t)rows) * sizeof(float);
    d = in_arena(p) ? find_range(p, bytes) : NULL;
    if (!d) {
        say("%s: %s %p (%zu bytes) is not inside one live device allocation", fn, what, p,
            bytes);
        return -1;
    }
    if (open_alloc(d) != 0) {
        say("%s: cannot open %s: %s", fn, what, strerror(errno));
        return -1;
    }
    return 0;
}

static cublasStatus_t gemm(const char *fn, cublasHandle_t h, cublasOperation_t ta,
                           cublasOperation_t tb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, long long sa, const float *B, int ldb,
                           long long sb, const float *beta, float *C, int ldc, long long sc,
                           int batch)
{
    cublasStatus_t s = blas_enter(h);
    int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    float al, be;
    if (s != CUBLAS_STATUS_SUCCESS)
        return blas_leave(s);
    if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T && ta != CUBLAS_OP_C)
        || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T && tb != CUBLAS_OP_C) || m < 0 || n < 0
        || k < 0 || batch < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1)
        || ldc < (m > 1 ? m : 1) || !alpha || !beta) {
        say("%s: invalid value (m=%d n=%d k=%d lda=%d ldb=%d ldc=%d batch=%d)", fn, m, n, k,
            lda, ldb, ldc, batch);
        return blas_leave(CUBLAS_STATUS_INVALID_VALUE);
    }
    if (m == 0 || n == 0 || batch == 0)
        return blas_leave(CUBLAS_STATUS_SUCCESS);
    g.kname = fn;
    g.kfile = "cuBLAS";
    in_window = 1;
    if (h->pmode == CUBLAS_POINTER_MODE_DEVICE
        && (operand(fn, "alpha", alpha, 1, 1, 1) || operand(fn, "beta", beta, 1, 1, 1))) {
        s = CUBLAS_STATUS_EXECUTION_FAILED;
        goto done;
    }
    al = *alpha;
    be = *beta;
    for (int b = 0; b < batch; b++) {
        const float *a = A + sa * b, *bb = B + sb * b;
        float *c = C + sc * b;
        float *ta32 = NULL, *tb32 = NULL;
        if ((k > 0 && (operand(fn, "A", a, ar, ac, lda) || operand(fn, "B", bb, br, bc, ldb)))
            || operand(fn, "C", c, m, n, ldc)) {
            s = CUBLAS_STATUS_EXECUTION_FAILED;
            goto done;
        }
        if (be == 0.0f)                      /* beta = 0: C is not read (NaN stays out) */
            for (int j = 0; j < n; j++)
                memset(c + (size_t)j * (size_t)ldc, 0, (size_t)m * sizeof(float));
        if (k == 0) {
            for (int j = 0; j < n && be != 0.0f; j++)
                for (int i = 0; i < m; i++)
                    c[(size_t)j * (size_t)ldc + (size_t)i] *= be;
            continue;
        }
        if ((h->math & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)
            == CUBLAS_TF32_TENSOR_OP_MATH) {
            ta32 = tf32_copy(a, ar, ac, lda);
            tb32 = tf32_copy(bb, br, bc, ldb);
            if (!ta32 || !tb32) {
                free(ta32);
                free(tb32);
                s = CUBLAS_STATUS_ALLOC_FAILED;
                goto done;
            }
        }
        cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, al,
                    ta32 ? ta32 : a, ta32 ? ar : lda, tb32 ? tb32 : bb, tb32 ? br : ldb, be, c,
                    ldc);
        free(ta32);
        free(tb32);
    }
done:
    window_close();
    g.kname = NULL;
    g.kfile = NULL;
    return blas_leave(s);
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc)
{
    return gemm("cublasSgemm", handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0,
                beta, C, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long int strideA, const float *B, int ldb,
                                         long long int strideB, const float *beta, float *C,
                                         int ldc, long long int strideC, int batchCount)
{
    return gemm("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A, lda,
                strideA, B, ldb, strideB, beta, C, ldc, strideC, batchCount);
}
