/*
 * selftest.cu - checks of the CUDA emulator itself (tests/cuda_emu/README),
 * against hand-computed results: __syncthreads tree reduction and a barrier
 * exchange, 2-D/3-D indices, a grid-stride kernel, launch validation,
 * cublasSgemm / StridedBatched against a naive product, NaN-filled fresh
 * memory, copy direction and range errors, and, each in a forked child,
 * the faults: host dereference of a device pointer (SIGSEGV), kernel access
 * past the guard page and after cudaFree (SIGSEGV), a write into the slack
 * before the guard page and a divergent barrier (sticky launch errors).
 * Prints one "ok"/"FAIL" line per check; exit 0 when all pass.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NT 256

static int failures;

static void check(bool ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

/* ---- kernels -------------------------------------------------------------------------------- */

/* out[b] = Σ of in[b·NT .. b·NT + NT) by a shared-memory tree */
static __global__ void block_sum(const float *in, float *out, int n)
{
    __shared__ float sh[NT];
    int t = threadIdx.x, i = blockIdx.x * NT + t;
    sh[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    for (int s = NT / 2; s > 0; s >>= 1) {
        if (t < s)
            sh[t] = __fadd_rn(sh[t], sh[t + s]);
        __syncthreads();
    }
    if (t == 0)
        out[blockIdx.x] = sh[0];
}

/* out[i] = value written by the neighbour thread before the barrier */
static __global__ void rotate(int *out)
{
    __shared__ int sh[64];
    int t = threadIdx.x;
    sh[t] = t * 10 + (int)blockIdx.x;
    __syncthreads();
    out[blockIdx.x * 64 + t] = sh[(t + 1) % 64];
}

/* y = a·x + y over a capped grid */
static __global__ void saxpy(float a, const float *x, float *y, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(__fmul_rn(a, x[i]), y[i]);
}

/* linear index of each thread of a 3-D grid of 3-D blocks */
static __global__ void index3d(int *out)
{
    int bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    int nt = blockDim.x * blockDim.y * blockDim.z;
    out[bx * nt + tx] = bx * 1000 + tx;
}

static __global__ void poke(float *p, int64_t i, float v)
{
    p[i] = v;
}

static __global__ void peek(const float *p, int64_t i, float *out)
{
    *out = p[i];
}

/* thread 5 leaves before the barrier the others reach */
static __global__ void divergent(float *p)
{
    __shared__ float sh[32];
    if (threadIdx.x == 5)
        return;
    sh[threadIdx.x] = 1.0f;
    __syncthreads();
    p[threadIdx.x] = sh[(threadIdx.x + 1) % 32];
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* Whether AddressSanitizer's runtime is linked in (the sanitizer build of CI): its SIGSEGV
 * handler, which the emulator's chains to, reports a fault and exits 1 instead of dying by
 * the signal. */
static bool asan_runtime(void)
{
    return dlsym(RTLD_DEFAULT, "__asan_init") != NULL;
}

/* Runs fn in a child; returns its signal number (or 0) and sets *code to its exit status.
 * Under AddressSanitizer an exit of 1 after its fault report counts as SIGSEGV. */
static int in_child(void (*fn)(void), int *code)
{
    int status = 0;
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        fn();
        _exit(0);
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && asan_runtime())
        return SIGSEGV;
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static float *dev_floats(int64_t n)
{
    float *p = NULL;
    if (cudaMalloc(&p, (size_t)n * sizeof(float)) != cudaSuccess) {
        printf("FAIL - cudaMalloc(%lld floats)\n", (long long)n);
        exit(1);
    }
    return p;
}

static void child_host_deref(void)
{
    float *d = dev_floats(16);
    volatile float v = d[3];          /* host code reading device memory: must fault */
    (void)v;
}

static void child_guard(void)
{
    float *d = dev_floats(1024), *o = dev_floats(1);
    peek<<<1, 1>>>(d, 1024, o);              /* 4096 bytes end at a page: the guard page */
}

static void child_freed(void)
{
    float *d = dev_floats(1024), *o = dev_floats(1);
    cudaFree(d);
    peek<<<1, 1>>>(d, 0, o);
}

static void child_slack(void)
{
    float *d = dev_floats(10);                /* 40 bytes: the rest of the 256 is slack */
    poke<<<1, 1>>>(d, 12, 1.0f);
    cudaError_t launch = cudaGetLastError();
    cudaError_t sync = cudaDeviceSynchronize();
    _exit(launch == cudaErrorIllegalAddress && sync == cudaErrorIllegalAddress ? 42 : 1);
}

static void child_divergent(void)
{
    float *d = dev_floats(32);
    divergent<<<1, 32>>>(d);
    cudaError_t e = cudaGetLastError();
    _exit(e == cudaErrorLaunchFailure && cudaDeviceSynchronize() == e ? 42 : 1);
}

/* C (m x n) = op(A) op(B), column-major, in double */
static void naive_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) {
                double a = ta ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda];
                double b = tb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb];
                s += a * b;
            }
            C[i + (size_t)j * ldc] = (float)(alpha * s + beta * C[i + (size_t)j * ldc]);
        }
}

static void test_gemm(cublasHandle_t h, bool ta, bool tb)
{
    const int m = 37, n = 23, k = 19, batch = 3;
    const int lda = (ta ? k : m) + 2, ldb = (tb ? n : k) + 1, ldc = m + 3;
    const int acols = ta ? m : k, bcols = tb ? k : n;
    const long long sa = (long long)lda * acols, sb = (long long)ldb * bcols,
                    sc = (long long)ldc * n;
    float *A = (float *)malloc(sizeof(float) * sa * batch);
    float *B = (float *)malloc(sizeof(float) * sb * batch);
    float *C = (float *)malloc(sizeof(float) * sc * batch);
    float *R = (float *)malloc(sizeof(float) * sc * batch);
    float alpha = 0.75f, beta = 0.5f, zero = 0.0f;
    double err = 0.0;
    char what[128];
    for (long long i = 0; i < sa * batch; i++)
        A[i] = (float)((i * 7 + 3) % 17) / 8.0f - 1.0f;
    for (long long i = 0; i < sb * batch; i++)
        B[i] = (float)((i * 5 + 1) % 13) / 4.0f - 1.5f;
    for (long long i = 0; i < sc * batch; i++)
        C[i] = (float)(i % 11) - 5.0f;
    memcpy(R, C, sizeof(float) * sc * batch);
    float *dA = dev_floats(sa * batch), *dB = dev_floats(sb * batch), *dC = dev_floats(sc * batch);
    cudaMemcpy(dA, A, sizeof(float) * sa * batch, cudaMemcpyHostToDevice);
    cudaMemcpy(dB, B, sizeof(float) * sb * batch, cudaMemcpyHostToDevice);
    cudaMemcpy(dC, C, sizeof(float) * sc * batch, cudaMemcpyHostToDevice);
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    bool ok = cublasSgemm(h, oa, ob, m, n, k, &alpha, dA, lda, dB, ldb, &beta, dC, ldc)
              == CUBLAS_STATUS_SUCCESS;
    naive_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, R, ldc);
    /* the rest: beta = 0 over the NaN-free C, batched */
    ok = ok && cublasSgemmStridedBatched(h, oa, ob, m, n, k, &alpha, dA + sa, lda, sa, dB + sb,
                                         ldb, sb, &zero, dC + sc, ldc, sc, batch - 1)
                   == CUBLAS_STATUS_SUCCESS;
    for (int b = 1; b < batch; b++)
        naive_gemm(ta, tb, m, n, k, alpha, A + sa * b, lda, B + sb * b, ldb, 0.0f, R + sc * b,
                   ldc);
    ok = ok && cudaMemcpy(C, dC, sizeof(float) * sc * batch, cudaMemcpyDeviceToHost)
                   == cudaSuccess;
    for (long long i = 0; i < sc * batch; i++)
        err = fmax(err, fabs((double)C[i] - R[i]));
    snprintf(what, sizeof(what), "cublasSgemm + StridedBatched %c%c vs naive (max err %.2g)",
             ta ? 'T' : 'N', tb ? 'T' : 'N', err);
    check(ok && err < 1e-4, what);
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dC);
    free(A);
    free(B);
    free(C);
    free(R);
}

int main(void)
{
    const int64_t n = 100003;
    int count = 0, code = 0;
    float *x = (float *)malloc(n * sizeof(float)), *y = (float *)malloc(n * sizeof(float));
    float *r = (float *)malloc(n * sizeof(float));
    struct cudaDeviceProp prop;

    check(cudaGetDeviceCount(&count) == cudaSuccess && count == 1, "one device");
    check(cudaGetDeviceProperties(&prop, 0) == cudaSuccess
              && strcmp(prop.name, "qatconv CUDA emulator") == 0, "device name");

    /* fresh memory is NaN bytes */
    float *dx = dev_floats(n), *dy = dev_floats(n), *dout = dev_floats(1024);
    unsigned char raw[64];
    cudaMemcpy(raw, dx, sizeof(raw), cudaMemcpyDeviceToHost);
    bool all_ff = true;
    for (size_t i = 0; i < sizeof(raw); i++)
        all_ff = all_ff && raw[i] == 0xFF;
    check(all_ff && ((uintptr_t)dx & 255) == 0, "fresh device memory is 0xFF, 256-aligned");

    /* tree reduction: integer values, so the exact sum is known */
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(i % 97);
    cudaMemcpy(dx, x, n * sizeof(float), cudaMemcpyHostToDevice);
    int nb = (int)((n + NT - 1) / NT);
    block_sum<<<nb, NT>>>(dx, dout, (int)n);
    check(cudaGetLastError() == cudaSuccess, "block_sum launch");
    cudaMemcpy(r, dout, nb * sizeof(float), cudaMemcpyDeviceToHost);
    bool sums = true;
    for (int b = 0; b < nb; b++) {
        double s = 0.0;
        for (int64_t i = (int64_t)b * NT; i < n && i < (int64_t)(b + 1) * NT; i++)
            s += x[i];
        sums = sums && r[b] == (float)s;
    }
    check(sums, "__syncthreads tree reduction, 391 blocks");

    int *di = NULL, hi[4 * 64];
    cudaMalloc(&di, sizeof(hi));
    rotate<<<4, 64>>>(di);
    cudaMemcpy(hi, di, sizeof(hi), cudaMemcpyDeviceToHost);
    bool rot = true;
    for (int b = 0; b < 4; b++)
        for (int t = 0; t < 64; t++)
            rot = rot && hi[b * 64 + t] == ((t + 1) % 64) * 10 + b;
    check(rot, "barrier exchange between threads");
    cudaFree(di);

    /* 3-D geometry: grid (3,2,2) x block (4,3,2) */
    cudaMalloc(&di, 12 * 24 * sizeof(int));
    index3d<<<dim3(3, 2, 2), dim3(4, 3, 2)>>>(di);
    int h3[12 * 24];
    cudaMemcpy(h3, di, sizeof(h3), cudaMemcpyDeviceToHost);
    bool idx = true;
    for (int b = 0; b < 12; b++)
        for (int t = 0; t < 24; t++)
            idx = idx && h3[b * 24 + t] == b * 1000 + t;
    check(cudaGetLastError() == cudaSuccess && idx, "3-D grid and block indices");
    cudaFree(di);

    /* grid-stride loop: 7 blocks of 128 over 100003 elements */
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)i * 0.001f;
        y[i] = 1.0f - (float)(i % 13);
    }
    cudaMemcpy(dy, y, n * sizeof(float), cudaMemcpyHostToDevice);
    saxpy<<<7, 128>>>(0.37f, dx, dy, n);
    cudaMemcpy(dx, x, n * sizeof(float), cudaMemcpyHostToDevice);   /* after: stream order */
    cudaMemcpy(dy, y, n * sizeof(float), cudaMemcpyHostToDevice);
    saxpy<<<7, 128>>>(0.37f, dx, dy, n);
    cudaMemcpy(r, dy, n * sizeof(float), cudaMemcpyDeviceToHost);
    bool ax = true;
    for (int64_t i = 0; i < n; i++) {
        volatile float p = 0.37f * x[i];
        ax = ax && r[i] == p + y[i];
    }
    check(cudaGetLastError() == cudaSuccess && ax, "grid-stride saxpy, bit-exact");

    /* launch validation */
    saxpy<<<1, 2048>>>(1.0f, dx, dy, n);
    cudaError_t e1 = cudaGetLastError(), e2 = cudaGetLastError();
    check(e1 == cudaErrorInvalidConfiguration && e2 == cudaSuccess,
          "block of 2048 threads: cudaErrorInvalidConfiguration, then cleared");
    saxpy<<<dim3(1, 70000), 32>>>(1.0f, dx, dy, n);
    check(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.y 70000 rejected");
    saxpy<<<0, 32>>>(1.0f, dx, dy, n);
    check(cudaGetLastError() == cudaErrorInvalidConfiguration, "empty grid rejected");
    saxpy<<<dim3(1), dim3(16, 16, 8)>>>(1.0f, dx, dy, n);
    check(cudaGetLastError() == cudaErrorInvalidConfiguration, "16x16x8 block rejected");

    /* copies: direction, range, frees */
    check(cudaMemcpy(dx, dy, 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
          "device pointer as host source: cudaErrorInvalidValue");
    check(cudaMemcpy(x, dx, 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
          "host pointer as device destination: cudaErrorInvalidValue");
    check(cudaMemcpy(x, y, 16, cudaMemcpyDeviceToDevice) == cudaErrorInvalidValue,
          "host pointers in a DeviceToDevice copy: cudaErrorInvalidValue");
    check(cudaMemcpy(x, dx + n - 2, 16, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
          "copy past the end of an allocation: cudaErrorInvalidValue");
    check(cudaMemcpy(dy, dx, 16, cudaMemcpyDeviceToDevice) == cudaSuccess
              && cudaMemset(dy, 0, n * sizeof(float)) == cudaSuccess
              && cudaMemcpy(r, dy, 8, cudaMemcpyDefault) == cudaSuccess && r[0] == 0.0f,
          "DeviceToDevice, memset, Default copies");
    check(cudaFree(x) == cudaErrorInvalidValue && cudaFree(dx + 1) == cudaErrorInvalidValue,
          "cudaFree of a host or interior pointer: cudaErrorInvalidValue");
    cudaGetLastError();

    cublasHandle_t h;
    check(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS
              && cublasSetMathMode(h, CUBLAS_DEFAULT_MATH) == CUBLAS_STATUS_SUCCESS,
          "cublasCreate");
    test_gemm(h, false, false);
    test_gemm(h, true, false);
    test_gemm(h, false, true);
    test_gemm(h, true, true);
    {
        float one = 1.0f, zero = 0.0f;
        check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, x, 4, dx, 4, &zero, dy,
                          4) != CUBLAS_STATUS_SUCCESS, "cublasSgemm with a host operand fails");
    }
    cublasDestroy(h);

    /* faults, each in a child */
    int sig = in_child(child_host_deref, &code);
    check(sig == SIGSEGV, "host dereference of a device pointer: SIGSEGV");
    sig = in_child(child_guard, &code);
    check(sig == SIGSEGV, "kernel read of the guard page: SIGSEGV");
    sig = in_child(child_freed, &code);
    check(sig == SIGSEGV, "kernel read after cudaFree: SIGSEGV");
    sig = in_child(child_slack, &code);
    check(sig == 0 && code == 42, "kernel write into the slack: sticky cudaErrorIllegalAddress");
    sig = in_child(child_divergent, &code);
    check(sig == 0 && code == 42, "divergent __syncthreads: cudaErrorLaunchFailure");

    check(cudaDeviceSynchronize() == cudaSuccess, "parent still healthy");
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(dout);
    free(x);
    free(y);
    free(r);
    printf("cuda_emu selftest: %s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
