/*
 * test_grad_layout.c - finite-difference checks of the backward of the
 * pools (MaxPool in training mode with its saved arg-max, AveragePool,
 * GlobalAveragePool, GlobalMaxPool, ReduceMean), Resize/Upsample (nearest
 * and linear under the coordinate modes PyTorch exports) and the layout ops
 * (Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Pad), plus the
 * optional Slice and Gather.  Shapes are small so the suite runs in seconds;
 * random inputs in [-1, 1] have no exact ties.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

/* One float input of the given shape whose gradient is checked. */
static struct qc_gc_input gin(int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    struct qc_gc_input in;
    const int64_t d[4] = { d0, d1, d2, d3 };
    memset(&in, 0, sizeof(in));
    in.dtype = QC_DTYPE_F32;
    in.ndim = ndim;
    for (int k = 0; k < ndim; k++)
        in.dims[k] = d[k];
    in.grad = true;
    return in;
}

/* A constant 1-D int64 input. */
static struct qc_gc_input gints(int n, const int64_t *v)
{
    struct qc_gc_input in;
    memset(&in, 0, sizeof(in));
    in.dtype = QC_DTYPE_I64;
    in.ndim = 1;
    in.dims[0] = n;
    in.ivals = v;
    return in;
}

/* A constant 1-D float input. */
static struct qc_gc_input gfloats(int n, const float *v)
{
    struct qc_gc_input in;
    memset(&in, 0, sizeof(in));
    in.dtype = QC_DTYPE_F32;
    in.ndim = 1;
    in.dims[0] = n;
    in.fvals = v;
    return in;
}

static struct qc_gc_input gabsent(void)
{
    struct qc_gc_input in;
    memset(&in, 0, sizeof(in));
    in.absent = true;
    return in;
}

/* Linear ops take inputs in [-1/8, 1/8]: the forward's float rounding then
 * stays well below the 1e-3 tolerance of the difference quotients (the
 * gradient does not depend on the range).  Max pools keep [-1, 1] so that
 * near-ties (kinks) within the step stay rare. */
static double check(const char *op, const char *attrs, int n_in, const struct qc_gc_input *in,
                    int64_t opset, bool training, int threads, uint64_t seed)
{
    struct qc_gc_opts o;
    memset(&o, 0, sizeof(o));
    if (strstr(op, "MaxPool") == NULL) {
        o.lo = -0.125f;
        o.hi = 0.125f;
    }
    o.opset = opset;
    o.training = training;
    o.threads = threads;
    o.seed = seed;
    return qc_gradcheck(op, attrs, n_in, in, &o);
}

/* ------------------------------------------------------------------ pools */

START_TEST(test_maxpool)
{
    static const char *const cfg[] = {
        "kernel_shape=2,2 strides=2,2",
        "kernel_shape=3,3 strides=1,1 pads=1,1,1,1",
        "kernel_shape=3,3 strides=2,2 pads=1,1,1,1",
        "kernel_shape=3,3 strides=2,2 ceil_mode=1",
        "kernel_shape=2,3 strides=2,1 pads=0,1,1,0 ceil_mode=1",
        "kernel_shape=2,2 strides=1,1 dilations=2,2",
        "kernel_shape=3,2 strides=2,2 pads=1,0,1,1 dilations=2,1 ceil_mode=1",
        "kernel_shape=2,2 auto_pad=s:SAME_UPPER",
    };
    struct qc_gc_input x = gin(4, 2, 3, 7, 6);
    for (size_t i = 0; i < QC_ARRAY_SIZE(cfg); i++) {
        check("MaxPool", cfg[i], 1, &x, 13, true, 1, 100 + i);
        check("MaxPool", cfg[i], 1, &x, 13, true, 3, 200 + i);
        /* no saved arg-max (inference forward): recomputed in backward */
        check("MaxPool", cfg[i], 1, &x, 13, false, 1, 300 + i);
    }
}
END_TEST

/* (1-D pools are not covered: the attribute string cannot spell a
 * one-element INTS.) */
START_TEST(test_maxpool_3d)
{
    struct qc_gc_input x3 = gin(4, 1, 2, 4, 5);
    x3.ndim = 5;
    x3.dims[4] = 4;
    check("MaxPool", "kernel_shape=2,2,2 strides=2,1,2 pads=0,1,1,1,0,0", 1, &x3, 13, true, 2,
          12);
}
END_TEST

START_TEST(test_maxpool_indices)
{
    struct qc_gc_input x = gin(4, 1, 2, 5, 5);
    struct qc_gc_opts o;
    memset(&o, 0, sizeof(o));
    o.training = true;
    o.n_out = 2;
    o.seed = 21;
    qc_gradcheck("MaxPool", "kernel_shape=2,2 strides=2,2 ceil_mode=1", 1, &x, &o);
}
END_TEST

START_TEST(test_avgpool)
{
    static const char *const cfg[] = {
        "kernel_shape=2,2 strides=2,2",
        "kernel_shape=3,3 strides=1,1 pads=1,1,1,1",
        "kernel_shape=3,3 strides=1,1 pads=1,1,1,1 count_include_pad=1",
        "kernel_shape=3,3 strides=2,2 pads=1,0,1,1 ceil_mode=1",
        "kernel_shape=3,3 strides=2,2 pads=1,0,1,1 ceil_mode=1 count_include_pad=1",
        "kernel_shape=2,3 strides=2,2 ceil_mode=1 count_include_pad=1",
        "kernel_shape=3,3 auto_pad=s:SAME_LOWER strides=2,2",
    };
    struct qc_gc_input x = gin(4, 2, 2, 7, 6);
    for (size_t i = 0; i < QC_ARRAY_SIZE(cfg); i++) {
        check("AveragePool", cfg[i], 1, &x, 13, true, 1, 400 + i);
        check("AveragePool", cfg[i], 1, &x, 13, true, 2, 500 + i);
    }
    check("AveragePool", "kernel_shape=2,2 dilations=2,1 pads=1,1,1,1", 1, &x, 19, true, 1,
          410);
}
END_TEST

START_TEST(test_global_pools)
{
    struct qc_gc_input x = gin(4, 2, 3, 4, 5);
    struct qc_gc_input x3 = gin(3, 2, 3, 7, 0);
    check("GlobalAveragePool", "", 1, &x, 13, true, 1, 31);
    check("GlobalAveragePool", "", 1, &x3, 13, true, 2, 32);
    check("GlobalMaxPool", "", 1, &x, 13, true, 1, 33);
    check("GlobalMaxPool", "", 1, &x, 13, true, 4, 34);
    check("GlobalMaxPool", "", 1, &x3, 13, false, 1, 35);
}
END_TEST

START_TEST(test_reduce_mean)
{
    static const char *const cfg[] = {
        "axes=2,3", "axes=2,3 keepdims=0", "axes=-1,1", "axes=-1,-2 keepdims=0", "axes=0,2",
        "axes=1,3 keepdims=0", "axes=0,1,3", "", "keepdims=0",
    };
    struct qc_gc_input x = gin(4, 2, 3, 4, 5);
    static const int64_t ax[] = { 1, 3 };
    static const int64_t ax1[] = { 1 };
    static const int64_t axl[] = { -1 };
    struct qc_gc_input in18[2];
    for (size_t i = 0; i < QC_ARRAY_SIZE(cfg); i++)
        check("ReduceMean", cfg[i], 1, &x, 13, true, 1, 600 + i);
    in18[0] = x;
    in18[1] = gints(2, ax);
    check("ReduceMean", "keepdims=1", 2, in18, 18, true, 2, 620);
    in18[1] = gints(1, ax1);
    check("ReduceMean", "keepdims=1", 2, in18, 18, true, 1, 622);
    in18[1] = gints(1, axl);
    check("ReduceMean", "keepdims=0", 2, in18, 18, true, 1, 623);
    check("ReduceMean", "noop_with_empty_axes=1", 1, in18, 18, true, 1, 621);
}
END_TEST

/* ----------------------------------------------------------------- Resize */

START_TEST(test_resize)
{
    static const char *const ctm[] = {
        "asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners",
    };
    static const float up[4] = { 1.0f, 1.0f, 2.0f, 2.0f };
    static const float odd[4] = { 1.0f, 1.0f, 1.5f, 2.5f };
    static const float down[4] = { 1.0f, 1.0f, 0.5f, 0.6f };
    const float *scales[] = { up, odd, down };
    char attrs[160];
    for (size_t c = 0; c < QC_ARRAY_SIZE(ctm); c++) {
        for (size_t s = 0; s < QC_ARRAY_SIZE(scales); s++) {
            struct qc_gc_input in[3] = { gin(4, 2, 2, 5, 4), gabsent(),
                                         gfloats(4, scales[s]) };
            snprintf(attrs, sizeof(attrs), "mode=s:linear coordinate_transformation_mode=s:%s",
                     ctm[c]);
            check("Resize", attrs, 3, in, 13, true, 1 + (int)s, 700 + 10 * c + s);
            snprintf(attrs, sizeof(attrs),
                     "mode=s:nearest coordinate_transformation_mode=s:%s nearest_mode=s:%s",
                     ctm[c], c == 0 ? "floor" : "round_prefer_floor");
            check("Resize", attrs, 3, in, 13, true, 1 + (int)s, 750 + 10 * c + s);
        }
    }
}
END_TEST

START_TEST(test_resize_sizes_ncw)
{
    static const int64_t sizes[4] = { 2, 2, 7, 3 };
    static const int64_t sizes3[3] = { 2, 3, 11 };
    struct qc_gc_input in[4] = { gin(4, 2, 2, 3, 5), gabsent(), gabsent(), gints(4, sizes) };
    struct qc_gc_input in3[4] = { gin(3, 2, 3, 6, 0), gabsent(), gabsent(), gints(3, sizes3) };
    check("Resize", "mode=s:linear coordinate_transformation_mode=s:align_corners", 4, in, 13,
          true, 1, 801);
    check("Resize", "mode=s:nearest", 4, in, 13, true, 1, 802);
    check("Resize", "mode=s:linear coordinate_transformation_mode=s:pytorch_half_pixel", 4,
          in3, 13, true, 1, 803);
}
END_TEST

START_TEST(test_upsample)
{
    static const float sc[4] = { 1.0f, 1.0f, 2.0f, 3.0f };
    struct qc_gc_input in[2] = { gin(4, 1, 3, 4, 3), gfloats(4, sc) };
    check("Upsample", "mode=s:nearest", 2, in, 9, true, 1, 901);
    check("Upsample", "mode=s:linear", 2, in, 9, true, 1, 902);
    check("Upsample", "mode=s:nearest scales=1.0,1.0,2.0,2.0", 1, in, 7, true, 1, 903);
    check("Resize", "mode=s:linear", 2, in, 10, true, 1, 904);
}
END_TEST

/* ------------------------------------------------------------- layout ops */

START_TEST(test_reshape_family)
{
    static const int64_t shp[] = { 3, -1, 2 };
    static const int64_t ax0[] = { 0 };
    static const int64_t ax2[] = { 0, 3 };
    struct qc_gc_input x = gin(4, 2, 3, 4, 1);
    struct qc_gc_input r[2] = { gin(4, 2, 3, 4, 1), gints(3, shp) };
    struct qc_gc_input sq[2] = { gin(4, 1, 3, 4, 1), gints(1, ax0) };
    struct qc_gc_input usq[2] = { gin(3, 2, 3, 4, 0), gints(2, ax2) };
    check("Flatten", "axis=2", 1, &x, 13, true, 1, 1001);
    check("Flatten", "axis=0", 1, &x, 13, true, 1, 1002);
    check("Reshape", "", 2, r, 13, true, 1, 1003);
    check("Squeeze", "", 2, sq, 13, true, 1, 1004);
    check("Squeeze", "", 1, sq, 13, true, 1, 1005);
    check("Squeeze", "axes=0,3", 1, sq, 11, true, 1, 1006);
    check("Unsqueeze", "", 2, usq, 13, true, 1, 1007);
    check("Unsqueeze", "axes=1,3", 1, usq, 11, true, 1, 1008);
}
END_TEST

START_TEST(test_transpose)
{
    static const char *const perms[] = {
        "perm=0,2,3,1", "perm=0,3,1,2", "perm=3,2,1,0", "perm=1,0,2,3", "perm=2,0,3,1", "",
    };
    struct qc_gc_input x = gin(4, 2, 3, 4, 5);
    struct qc_gc_input x2 = gin(2, 7, 5, 0, 0);
    for (size_t i = 0; i < QC_ARRAY_SIZE(perms); i++)
        check("Transpose", perms[i], 1, &x, 13, true, 1 + (int)(i % 2), 1100 + i);
    check("Transpose", "perm=1,0", 1, &x2, 13, true, 1, 1110);
}
END_TEST

START_TEST(test_concat)
{
    for (int axis = -1; axis < 4; axis++) {
        struct qc_gc_input in[3] = { gin(4, 2, 3, 4, 2), gin(4, 2, 3, 4, 2),
                                     gin(4, 2, 3, 4, 2) };
        int a = axis < 0 ? 3 : axis;
        char attrs[32];
        in[1].dims[a] = 1;
        in[2].dims[a] = 3;
        in[1].grad = axis != 1; /* an input without gradient is skipped */
        snprintf(attrs, sizeof(attrs), "axis=%d", axis);
        check("Concat", attrs, 3, in, 13, true, 1 + (axis & 1), 1200 + (uint64_t)(axis + 1));
    }
}
END_TEST

START_TEST(test_pad)
{
    static const int64_t p1[] = { 0, 0, 1, 2, 0, 0, 2, 1 };
    static const int64_t p2[] = { 0, 1, -1, 1, 0, -1, 2, -2 };
    static const int64_t p3[] = { 0, 0, -2, -1, 0, 0, -1, 0 };
    static const int64_t pa[] = { 1, -1, 2, 0 };
    static const int64_t axes[] = { 2, 3 };
    static const float val[] = { 0.5f };
    struct qc_gc_input a[3] = { gin(4, 2, 2, 4, 5), gints(8, p1), gfloats(1, val) };
    struct qc_gc_input b[2] = { gin(4, 2, 2, 4, 5), gints(8, p2) };
    struct qc_gc_input c[2] = { gin(4, 2, 2, 4, 5), gints(8, p3) };
    struct qc_gc_input d[4] = { gin(4, 2, 2, 4, 5), gints(4, pa), gabsent(), gints(2, axes) };
    struct qc_gc_input x = gin(4, 1, 2, 3, 3);
    check("Pad", "", 3, a, 13, true, 1, 1301);
    a[2].grad = true; /* gradient of constant_value too */
    check("Pad", "", 3, a, 13, true, 1, 1302);
    check("Pad", "", 2, b, 13, true, 1, 1303);
    check("Pad", "", 2, c, 13, true, 2, 1304);
    check("Pad", "", 4, d, 18, true, 1, 1305);
    check("Pad", "pads=0,0,1,-1,0,0,0,2 value=1.5", 1, &x, 2, true, 1, 1306);
}
END_TEST

/* ---------------------------------------------------- Slice and Gather */

START_TEST(test_slice)
{
    static const int64_t st1[] = { 1, 0 }, en1[] = { 4, -1 }, ax1[] = { 2, 3 }, sp1[] = { 2, 1 };
    static const int64_t st2[] = { -1, 3 }, en2[] = { -100, 0 }, ax2[] = { -1, 1 };
    static const int64_t sp2[] = { -2, -1 };
    struct qc_gc_input a[5] = { gin(4, 2, 3, 5, 4), gints(2, st1), gints(2, en1),
                                gints(2, ax1), gints(2, sp1) };
    struct qc_gc_input b[5] = { gin(4, 2, 4, 3, 5), gints(2, st2), gints(2, en2),
                                gints(2, ax2), gints(2, sp2) };
    struct qc_gc_input c = gin(3, 3, 4, 5, 0);
    check("Slice", "", 5, a, 13, true, 1, 1401);
    check("Slice", "", 3, a, 13, true, 1, 1402);
    check("Slice", "", 5, b, 13, true, 1, 1403);
    check("Slice", "starts=1,0 ends=3,-2 axes=0,2", 1, &c, 1, true, 1, 1404);
}
END_TEST

START_TEST(test_gather)
{
    static const int64_t idx[] = { 2, 0, -1, 2 };
    struct qc_gc_input in[2] = { gin(3, 3, 3, 4, 0), gints(4, idx) };
    in[1].ndim = 2;
    in[1].dims[0] = 2;
    in[1].dims[1] = 2;
    check("Gather", "axis=1", 2, in, 13, true, 1, 1501);
    check("Gather", "axis=-1", 2, in, 13, true, 1, 1502);
    check("Gather", "axis=0", 2, in, 13, true, 1, 1503);
}
END_TEST

Suite *qc_suite_grad_layout(void)
{
    Suite *s = suite_create("grad_layout");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_maxpool);
    tcase_add_test(tc, test_maxpool_3d);
    tcase_add_test(tc, test_maxpool_indices);
    tcase_add_test(tc, test_avgpool);
    tcase_add_test(tc, test_global_pools);
    tcase_add_test(tc, test_reduce_mean);
    suite_add_tcase(s, tc);
    tc = tcase_create("resize");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_resize);
    tcase_add_test(tc, test_resize_sizes_ncw);
    tcase_add_test(tc, test_upsample);
    suite_add_tcase(s, tc);
    tc = tcase_create("layout");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_reshape_family);
    tcase_add_test(tc, test_transpose);
    tcase_add_test(tc, test_concat);
    tcase_add_test(tc, test_pad);
    tcase_add_test(tc, test_slice);
    tcase_add_test(tc, test_gather);
    suite_add_tcase(s, tc);
    return s;
}
