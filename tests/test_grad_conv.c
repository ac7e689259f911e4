/*
 * test_grad_conv.c - finite-difference checks of the backward of Conv,
 * ConvTranspose, Gemm and MatMul.
 *
 * Conv covers 1D/2D/3D, bias or not, groups and depthwise (multiplier 1 and
 * 2), strides, dilations, explicit and asymmetric pads, every auto_pad, the
 * pointwise product without lowering, several images per product and
 * several chunks per thread, and the direct small-channel kernels; every Conv and ConvTranspose case runs at 1
 * and 2 threads.  Gemm covers alpha/beta, transA/transB and every C form
 * (absent, scalar, [N], [1,N], [M,1], [1,1], [M,N]); MatMul covers 1-D
 * promotion of either or both operands and batch broadcasting of either.
 * Shapes are small so the suite runs in a few seconds.  QC_GC_VERBOSE=1
 * prints the worst relative error of every case.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

/* A float input of ndim dims (listed in d); grad: check its gradient. */
static struct qc_gc_input gin(int ndim, const int64_t *d, bool grad)
{
    struct qc_gc_input in;
    memset(&in, 0, sizeof(in));
    in.dtype = QC_DTYPE_F32;
    in.ndim = ndim;
    for (int k = 0; k < ndim; k++)
        in.dims[k] = d[k];
    in.grad = grad;
    return in;
}

static struct qc_gc_input gabsent(void)
{
    struct qc_gc_input in;
    memset(&in, 0, sizeof(in));
    in.absent = true;
    return in;
}

/* Inputs in [-1/16, 1/16]: these ops are linear in each input, so there are
 * no kinks, and the forward's float rounding stays far below the 1e-3
 * tolerance of the difference quotients. */
static void check(const char *op, const char *attrs, int n_in, const struct qc_gc_input *in,
                  int threads, bool training, uint64_t seed)
{
    struct qc_gc_opts o;
    memset(&o, 0, sizeof(o));
    o.training = training;
    o.lo = -0.0625f;
    o.hi = 0.0625f;
    o.threads = threads;
    o.seed = seed;
    double e = qc_gradcheck(op, attrs, n_in, in, &o);
    if (getenv("QC_GC_VERBOSE"))
        fprintf(stderr, "%-14s %-48s t%d%s  worst %.2e\n", op, attrs, threads,
                training ? " train" : "", e);
}

/* A Conv or ConvTranspose case at 1 and at 2 threads, in inference and in
 * training mode (where Conv keeps its columns for the backward).  x, w:
 * shapes of rank nd; bias: c (> 0) for a bias of that size, 0 for none;
 * which: bitmask of the inputs whose gradient is checked (1 x, 2 w, 4 b). */
static void conv_case(const char *op, const char *attrs, int nd, const int64_t *x,
                      const int64_t *w, int64_t bias, unsigned which, uint64_t seed)
{
    struct qc_gc_input in[3];
    in[0] = gin(nd, x, which & 1);
    in[1] = gin(nd, w, which & 2);
    in[2] = gin(1, &bias, which & 4);
    for (int threads = 1; threads <= 2; threads++)
        for (int training = 0; training <= 1; training++)
            check(op, attrs, bias > 0 ? 3 : 2, in, threads, training, seed);
}

#define ALL 7u

START_TEST(conv_2d_basic)
{
    const int64_t x[] = {2, 3, 5, 5}, w[] = {4, 3, 3, 3};
    conv_case("Conv", "pads=1,1,1,1", 4, x, w, 4, ALL, 1);
    conv_case("Conv", "", 4, x, w, 0, 3u, 2);
}
END_TEST

START_TEST(conv_2d_stride_dilation_pads)
{
    const int64_t x[] = {2, 2, 9, 8}, w[] = {3, 2, 3, 2};
    conv_case("Conv", "strides=2,2 pads=1,0,0,2", 4, x, w, 3, ALL, 3);
    conv_case("Conv", "dilations=2,3 pads=2,1,1,2 kernel_shape=3,2", 4, x, w, 0, 3u, 4);
    conv_case("Conv", "strides=3,2 dilations=2,1", 4, x, w, 3, ALL, 5);
}
END_TEST

START_TEST(conv_2d_auto_pad)
{
    const int64_t x[] = {2, 2, 7, 6}, w[] = {3, 2, 3, 4};
    conv_case("Conv", "auto_pad=s:SAME_UPPER strides=2,2", 4, x, w, 3, ALL, 6);
    conv_case("Conv", "auto_pad=s:SAME_LOWER strides=2,1", 4, x, w, 3, ALL, 7);
    conv_case("Conv", "auto_pad=s:VALID strides=1,2", 4, x, w, 0, 3u, 8);
}
END_TEST

START_TEST(conv_groups)
{
    const int64_t x[] = {2, 4, 6, 6}, w[] = {6, 2, 3, 3};
    const int64_t x3[] = {2, 6, 5, 5}, w3[] = {3, 2, 3, 3};
    conv_case("Conv", "group=2 pads=1,1,1,1", 4, x, w, 6, ALL, 9);
    conv_case("Conv", "group=3 strides=2,2", 4, x3, w3, 3, ALL, 10);
}
END_TEST

START_TEST(conv_depthwise)
{
    const int64_t x[] = {2, 3, 6, 7}, w1[] = {3, 1, 3, 3}, w2[] = {6, 1, 3, 3};
    const int64_t x1[] = {3, 4, 9}, wd[] = {4, 1, 3};
    conv_case("Conv", "group=3 pads=1,1,1,1", 4, x, w1, 3, ALL, 11);
    conv_case("Conv", "group=3 strides=2,2 pads=1,0,2,1 dilations=1,2", 4, x, w2, 6, ALL, 12);
    conv_case("Conv", "group=3 auto_pad=s:SAME_UPPER", 4, x, w2, 0, 1u, 13);
    conv_case("Conv", "group=4 pads=2,1", 3, x1, wd, 4, ALL, 14);
}
END_TEST

START_TEST(conv_pointwise)
{
    /* 32x32 images: one image per product, columns are x itself */
    const int64_t x[] = {2, 2, 32, 32}, w[] = {3, 2, 1, 1};
    /* small images: several images per product */
    const int64_t xs[] = {3, 4, 5, 5}, ws[] = {2, 4, 1, 1};
    conv_case("Conv", "", 4, x, w, 3, ALL, 15);
    conv_case("Conv", "group=2", 4, x, (const int64_t[]){4, 1, 1, 1}, 0, 3u, 16);
    conv_case("Conv", "", 4, xs, ws, 2, ALL, 17);
    conv_case("Conv", "strides=2,2", 4, xs, ws, 2, ALL, 18);
}
END_TEST

START_TEST(conv_chunks)
{
    /* 24x24 images: two per product, four chunks over the threads, the last
     * one short */
    const int64_t x[] = {7, 1, 24, 24}, w[] = {2, 1, 3, 3};
    conv_case("Conv", "pads=1,1,1,1", 4, x, w, 2, ALL, 19);
    conv_case("Conv", "pads=1,1,1,1", 4, x, w, 2, 2u, 20);    /* dW only (first layer) */
    conv_case("Conv", "pads=1,1,1,1", 4, x, w, 2, 1u, 21);    /* dX only */
    /* flat, wide images: 3 per product */
    conv_case("Conv", "pads=1,1,1,1", 4, (const int64_t[]){3, 2, 4, 40},
              (const int64_t[]){2, 2, 3, 3}, 2, ALL, 26);
}
END_TEST

START_TEST(conv_1d_3d)
{
    const int64_t x1[] = {2, 3, 9}, w1[] = {2, 3, 3};
    const int64_t x3[] = {2, 2, 4, 5, 4}, w3[] = {2, 2, 2, 3, 2};
    conv_case("Conv", "pads=1,2", 3, x1, w1, 2, ALL, 22);
    conv_case("Conv", "auto_pad=s:SAME_LOWER", 3, x1, w1, 0, 3u, 23);
    conv_case("Conv", "pads=1,0,1,0,1,1 strides=1,2,1", 5, x3, w3, 2, ALL, 24);
    conv_case("Conv", "group=2 dilations=2,1,2 pads=1,1,1,1,1,1", 5, x3,
              (const int64_t[]){4, 1, 2, 2, 2}, 4, ALL, 25);
}
END_TEST

START_TEST(convt_2d)
{
    const int64_t x[] = {2, 3, 4, 4}, w[] = {3, 2, 3, 3};
    conv_case("ConvTranspose", "", 4, x, w, 2, ALL, 31);
    conv_case("ConvTranspose", "strides=2,2 pads=1,1,1,1 output_padding=1,1", 4, x, w, 2, ALL,
              32);
    conv_case("ConvTranspose", "strides=2,1 pads=0,1,1,0 dilations=1,2", 4, x, w, 0, 3u, 33);
}
END_TEST

START_TEST(convt_groups_auto_pad)
{
    const int64_t x[] = {2, 4, 3, 3}, w[] = {4, 1, 3, 3};
    const int64_t xd[] = {2, 3, 4, 4}, wd[] = {3, 2, 2, 2};
    conv_case("ConvTranspose", "group=2 strides=2,2", 4, x, w, 2, ALL, 34);
    conv_case("ConvTranspose", "group=3 strides=2,2", 4, xd, wd, 6, ALL, 35);
    conv_case("ConvTranspose", "auto_pad=s:SAME_UPPER strides=2,2", 4, xd,
              (const int64_t[]){3, 2, 3, 3}, 2, ALL, 36);
    conv_case("ConvTranspose", "auto_pad=s:SAME_LOWER strides=2,2", 4, xd,
              (const int64_t[]){3, 2, 3, 3}, 0, 3u, 37);
    conv_case("ConvTranspose", "strides=2,2 output_shape=8,9", 4, xd,
              (const int64_t[]){3, 2, 3, 3}, 2, ALL, 38);
    conv_case("ConvTranspose", "auto_pad=s:VALID strides=2,2", 4, xd, wd, 2, ALL, 39);
}
END_TEST

START_TEST(convt_1d_3d_chunks)
{
    const int64_t x1[] = {2, 3, 5}, w1[] = {3, 2, 3};
    const int64_t x3[] = {2, 2, 3, 2, 3}, w3[] = {2, 2, 2, 2, 2};
    /* 20x20 inputs: three images per product, two chunks */
    const int64_t xc[] = {6, 1, 20, 20}, wc[] = {1, 2, 3, 3};
    conv_case("ConvTranspose", "pads=1,0", 3, x1, w1, 2, ALL, 40);
    conv_case("ConvTranspose", "strides=2,1,2 pads=1,0,0,0,1,1", 5, x3, w3, 2, ALL, 41);
    conv_case("ConvTranspose", "pads=1,1,1,1", 4, xc, wc, 2, ALL, 42);
    conv_case("ConvTranspose", "pads=1,1,1,1", 4, xc, wc, 2, 1u, 43);
}
END_TEST

/* Gemm with A [ra, ca], B [rb, cb] and C of cnd dims cd (cnd < 0: absent). */
static void gemm_case(const char *attrs, int64_t ra, int64_t ca, int64_t rb, int64_t cb,
                      int cnd, const int64_t *cd, int threads, uint64_t seed)
{
    struct qc_gc_input in[3];
    const int64_t a[] = {ra, ca}, b[] = {rb, cb};
    in[0] = gin(2, a, true);
    in[1] = gin(2, b, true);
    in[2] = cnd < 0 ? gabsent() : gin(cnd, cd, true);
    check("Gemm", attrs, 3, in, threads, false, seed);
}

START_TEST(gemm_plain_and_transposed)
{
    const int64_t cn[] = {5};
    gemm_case("", 3, 4, 4, 5, 1, cn, 1, 51);
    gemm_case("alpha=0.5 beta=2.0 transA=1", 4, 3, 4, 5, 1, cn, 1, 52);
    gemm_case("alpha=1.5 transB=1", 3, 4, 5, 4, 1, cn, 1, 53);
    gemm_case("alpha=-0.75 beta=0.5 transA=1 transB=1", 4, 3, 5, 4, 1, cn, 1, 54);
    gemm_case("transB=1", 3, 4, 5, 4, -1, NULL, 1, 55);
}
END_TEST

START_TEST(gemm_c_broadcast)
{
    const int64_t mn[] = {3, 5}, one_n[] = {1, 5}, m_one[] = {3, 1}, one_one[] = {1, 1};
    const int64_t one[] = {1};
    gemm_case("beta=0.5", 3, 4, 4, 5, 2, mn, 1, 56);
    gemm_case("beta=1.5 transA=1", 4, 3, 4, 5, 2, one_n, 1, 57);
    gemm_case("beta=2.0 transB=1", 3, 4, 5, 4, 2, m_one, 1, 58);
    gemm_case("beta=-1.0", 3, 4, 4, 5, 2, one_one, 1, 59);
    gemm_case("beta=0.25", 3, 4, 4, 5, 0, NULL, 1, 60);
    gemm_case("", 3, 4, 4, 5, 1, one, 1, 61);
}
END_TEST

START_TEST(gemm_threads)
{
    /* 128 x 64 x 128 = 2^20 multiply-adds: split over the threads */
    const int64_t cn[] = {64}, cm[] = {128, 1};
    gemm_case("transB=1", 128, 128, 64, 128, 1, cn, 2, 62);
    gemm_case("alpha=0.5 transA=1", 128, 128, 128, 64, 2, cm, 2, 63);
    gemm_case("transA=1 transB=1", 128, 64, 128, 128, -1, NULL, 2, 64);
}
END_TEST

/* Shapes that take the direct kernels (conv_direct.c: group 1, 2D, up to
 * 64 channels): 8, 16 and 32 lanes, channel counts that leave lanes empty and
 * span two blocks, stride 1 and 2 (two and four dX phases, and phases a
 * 1x1 kernel never reaches), pads 0 and 1, and more images than one dW
 * product takes (8). */
START_TEST(conv_direct)
{
    const int64_t x16[] = {10, 16, 6, 6}, w16[] = {16, 16, 3, 3};
    const int64_t x7[] = {3, 16, 7, 7}, w32[] = {32, 16, 3, 3}, w1[] = {32, 16, 1, 1};
    const int64_t x32[] = {2, 32, 5, 5}, w3232[] = {32, 32, 3, 3};
    const int64_t x20[] = {2, 20, 5, 6}, w40[] = {40, 20, 3, 3};
    const int64_t x1[] = { 3, 1, 8, 8 }, w8[] = { 8, 1, 5, 5 }; /* LeNet's first layer */
    const int64_t x5[] = { 2, 5, 7, 6 }, w7[] = { 7, 5, 3, 3 };
    conv_case("Conv", "pads=1,1,1,1", 4, x16, w16, 16, ALL, 91);
    conv_case("Conv", "strides=2,2 pads=1,1,1,1", 4, x7, w32, 0, 3u, 92);
    conv_case("Conv", "strides=2,2", 4, x7, w1, 32, ALL, 93);
    conv_case("Conv", "pads=1,1,1,1", 4, x32, w3232, 0, 3u, 94);
    conv_case("Conv", "strides=2,1 pads=0,1,1,0", 4, x20, w40, 40, ALL, 95);
    conv_case("Conv", "strides=1,2 dilations=2,1", 4, x20, w40, 0, 3u, 96);
    conv_case("Conv", "pads=2,2,2,2", 4, x1, w8, 8, ALL, 97);
    conv_case("Conv", "strides=2,2 pads=1,1,1,1", 4, x5, w7, 7, ALL, 98);
}
END_TEST

static void matmul_case(int na, const int64_t *a, int nb, const int64_t *b, int threads,
                        uint64_t seed)
{
    struct qc_gc_input in[2];
    in[0] = gin(na, a, true);
    in[1] = gin(nb, b, true);
    check("MatMul", "", 2, in, threads, false, seed);
}

START_TEST(matmul_plain_and_1d)
{
    matmul_case(2, (const int64_t[]){3, 4}, 2, (const int64_t[]){4, 5}, 1, 71);
    matmul_case(1, (const int64_t[]){4}, 2, (const int64_t[]){4, 5}, 1, 72);
    matmul_case(3, (const int64_t[]){2, 3, 4}, 1, (const int64_t[]){4}, 1, 73);
    matmul_case(1, (const int64_t[]){4}, 1, (const int64_t[]){4}, 1, 74);
    matmul_case(1, (const int64_t[]){4}, 3, (const int64_t[]){2, 4, 3}, 1, 75);
}
END_TEST

START_TEST(matmul_batch_broadcast)
{
    /* one B: A's batch stacks into rows */
    matmul_case(3, (const int64_t[]){2, 3, 4}, 2, (const int64_t[]){4, 5}, 1, 76);
    /* A broadcast over B's batch */
    matmul_case(2, (const int64_t[]){3, 4}, 3, (const int64_t[]){2, 4, 5}, 1, 77);
    /* both broadcast on different axes */
    matmul_case(4, (const int64_t[]){2, 1, 3, 4}, 3, (const int64_t[]){3, 4, 5}, 1, 78);
    matmul_case(4, (const int64_t[]){1, 3, 2, 4}, 4, (const int64_t[]){2, 1, 4, 3}, 1, 79);
    matmul_case(3, (const int64_t[]){2, 3, 4}, 3, (const int64_t[]){2, 4, 5}, 1, 80);
}
END_TEST

START_TEST(matmul_threads)
{
    matmul_case(2, (const int64_t[]){64, 128}, 2, (const int64_t[]){128, 160}, 2, 81);
    matmul_case(3, (const int64_t[]){2, 64, 96}, 2, (const int64_t[]){96, 96}, 2, 82);
    matmul_case(3, (const int64_t[]){2, 64, 128}, 3, (const int64_t[]){2, 128, 128}, 2, 83);
}
END_TEST

Suite *qc_suite_grad_conv(void)
{
    Suite *s = suite_create("grad_conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, conv_2d_basic);
    tcase_add_test(tc, conv_2d_stride_dilation_pads);
    tcase_add_test(tc, conv_2d_auto_pad);
    tcase_add_test(tc, conv_groups);
    tcase_add_test(tc, conv_depthwise);
    tcase_add_test(tc, conv_pointwise);
    tcase_add_test(tc, conv_chunks);
    tcase_add_test(tc, conv_1d_3d);
    tcase_add_test(tc, conv_direct);
    suite_add_tcase(s, tc);
    tc = tcase_create("conv_transpose");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, convt_2d);
    tcase_add_test(tc, convt_groups_auto_pad);
    tcase_add_test(tc, convt_1d_3d_chunks);
    suite_add_tcase(s, tc);
    tc = tcase_create("gemm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gemm_plain_and_transposed);
    tcase_add_test(tc, gemm_c_broadcast);
    tcase_add_test(tc, gemm_threads);
    tcase_add_test(tc, matmul_plain_and_1d);
    tcase_add_test(tc, matmul_batch_broadcast);
    tcase_add_test(tc, matmul_threads);
    suite_add_tcase(s, tc);
    return s;
}
