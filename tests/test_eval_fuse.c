/*
 * test_eval_fuse.c - the fused inference plan (qc_plan_new_inference,
 * src/plan/plan_fuse.c) against the plain plan (qc_plan_new) of the same
 * graph, which runs every op as its own step (the oracle).
 *
 *   - Conv -> Add -> Relu with and without a Conv bias, on every Conv path
 *     (direct kernels at 8, 16 and 32 lanes, strided; the gemm path with
 *     several images per product and with one; 1x1; grouped; depthwise):
 *     the epilogue does the same float operations in the same order, so the
 *     outputs must be equal to the bit, and the Add and Relu steps must be
 *     gone from the fused plan's profile (else nothing was tested).  With a
 *     BatchNormalization between Conv and Add (folded, with and without a
 *     Conv bias), within 1e-5 relative, as for the fixtures below.
 *   - The LeNet-BN and tiny ResNet fixtures (BatchNormalization folded into
 *     the Conv weights): folding moves a per-channel scale from after the
 *     sum to the weights, a few float roundings per value (relative 6e-8
 *     each), compounded over at most 7 layers; the logits must agree within
 *     1e-5 of their largest magnitude (a wrong fold - eps, mean or the
 *     Conv bias left out - is off by 1e-2 or more).
 *   - A graph with a QuantizeLinear/DequantizeLinear pair keeps its
 *     BatchNormalization as its own step (no fold in fake-quant graphs) and
 *     gives the plain plan's outputs to the bit.
 * And the 2x2, stride-2 MaxPool path that evaluation's small CNNs take
 * (ops/pool.c), against the maximum of each window computed here, on even
 * and odd planes (the last row and column dropped) and 1 and 2 threads.
 */
#include <config.h>

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "ir/graph.h"
#include "onnx/onnx_io.h"
#include "ops/bind.h"
#include "plan/plan.h"
#include "util/rng.h"
#include "testutil.h"

/* Fills every float initializer of g and every float input of p with
 * uniform values in [-1, 1) (seeded: the same values for both plans). */
static void random_inits(struct qc_graph *g, uint64_t seed)
{
    struct qc_rng rng;
    qc_rng_seed(&rng, seed);
    for (int v = 0; v < g->n_values; v++) {
        struct qc_tensor *t = g->values[v].init;
        if (!t || t->dtype != QC_DTYPE_F32)
            continue;
        for (int64_t i = 0; i < qc_tensor_nelem(t); i++)
            qc_tensor_f32(t)[i] = 2.0f * qc_rng_uniform(&rng) - 1.0f;
    }
}

static void random_inputs(struct qc_plan *p, uint64_t seed, float lo)
{
    struct qc_rng rng;
    qc_rng_seed(&rng, seed);
    for (int i = 0; i < qc_plan_n_inputs(p); i++) {
        struct qc_tensor *t = qc_plan_input(p, i);
        for (int64_t k = 0; k < qc_tensor_nelem(t); k++)
            qc_tensor_f32(t)[k] = lo + (1.0f - lo) * qc_rng_uniform(&rng);
    }
}

/* The plan's profile text after one forward (the op types it ran). */
static char *profile_of(struct qc_plan *p)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    qc_plan_profile_print(p, f);
    ck_assert_int_eq(fclose(f), 0);
    return text;
}

/* Runs g through a plain and a fused plan on the same inputs (values in
 * [lo, 1)); returns the largest |difference| of output 0 relative to its
 * largest magnitude (with bits, 1 when any value differs in its bits), and
 * the fused plan's profile in *prof (caller frees). */
static double compare_plans(const struct qc_graph *g, int64_t batch, int threads, float lo,
                            bool bits, char **prof)
{
    struct qc_backend *be;
    struct qc_plan *plain, *fused;
    const float *a, *b;
    double diff = 0.0, amax = 0.0;
    int64_t n;

    ck_assert_int_eq(qc_backend_new("cpu", threads, &be), QC_OK);
    ck_assert_int_eq(qc_plan_new(g, be, batch, &plain), QC_OK);
    ck_assert_int_eq(qc_plan_new_inference(g, be, batch, &fused), QC_OK);
    ck_assert_int_eq(qc_plan_profile(fused), QC_OK);
    random_inputs(plain, 5, lo);
    random_inputs(fused, 5, lo);
    ck_assert_int_eq(qc_plan_forward(plain), QC_OK);
    ck_assert_int_eq(qc_plan_forward(fused), QC_OK);
    a = qc_tensor_f32(qc_plan_output(plain, 0));
    b = qc_tensor_f32(qc_plan_output(fused, 0));
    n = qc_tensor_nelem(qc_plan_output(plain, 0));
    ck_assert_int_eq(n, qc_tensor_nelem(qc_plan_output(fused, 0)));
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - (double)b[i]));
        amax = fmax(amax, fabs((double)a[i]));
        /* bit equality where the values are equal (NaN, -0 included) */
        if (bits && memcmp(&a[i], &b[i], sizeof(float)) != 0)
            diff = fmax(diff, 1.0);
    }
    *prof = profile_of(fused);
    qc_plan_free(plain);
    qc_plan_free(fused);
    qc_backend_free(be);
    if (bits && diff >= 1.0)
        return 1.0;
    return amax > 0 ? diff / amax : diff;
}

struct conv_case {
    const char *what;
    int64_t n, c, h, w, m, k, stride, pad, group;
    bool bias, bn;
};

/* x -> Conv [-> + bias] [-> BatchNormalization] -> Add(r) -> Relu, r a
 * second input of y's shape. */
static struct qc_graph *conv_add_relu(const struct conv_case *cc)
{
    int64_t x[] = { -1, cc->c, cc->h, cc->w };
    int64_t w[] = { cc->m, cc->c / cc->group, cc->k, cc->k }, b[] = { cc->m };
    int64_t oh = (cc->h + 2 * cc->pad - cc->k) / cc->stride + 1;
    int64_t ow = (cc->w + 2 * cc->pad - cc->k) / cc->stride + 1;
    int64_t r[] = { -1, cc->m, oh, ow };
    int64_t ks[] = { cc->k, cc->k }, st[] = { cc->stride, cc->stride };
    int64_t pads[] = { cc->pad, cc->pad, cc->pad, cc->pad };
    struct qc_graph *g = qc_test_graph(13);
    int n;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, x);
    qc_test_input(g, "r", QC_DTYPE_F32, 4, r);
    qc_test_init_f32(g, "w", 4, w);
    if (cc->bias)
        qc_test_init_f32(g, "b", 1, b);
    n = qc_test_node(g, "Conv", "conv", cc->bias ? "x,w,b" : "x,w", "y");
    qc_test_attr_ints(g, n, "kernel_shape", 2, ks);
    qc_test_attr_ints(g, n, "strides", 2, st);
    qc_test_attr_ints(g, n, "pads", 4, pads);
    qc_test_attr_int(g, n, "group", cc->group);
    if (cc->bn) {
        qc_test_init_f32(g, "scale", 1, b);
        qc_test_init_f32(g, "beta", 1, b);
        qc_test_init_f32(g, "mean", 1, b);
        qc_test_init_f32(g, "var", 1, b);
        qc_test_node(g, "BatchNormalization", "bn", "y,scale,beta,mean,var", "yn");
    }
    qc_test_node(g, "Add", "add", cc->bn ? "yn,r" : "y,r", "s");
    qc_test_node(g, "Relu", "relu", "s", "z");
    qc_test_output(g, "z");
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    random_inits(g, 3);
    if (cc->bn) { /* positive variances, means well off zero */
        struct qc_tensor *var = g->values[qc_graph_find_value(g, "var")].init;
        for (int64_t i = 0; i < cc->m; i++)
            qc_tensor_f32(var)[i] = 0.25f + qc_tensor_f32(var)[i] * qc_tensor_f32(var)[i];
    }
    return g;
}

static const struct conv_case conv_cases[] = {
    /* direct kernels: 8, 16 and 32 lanes, a partial block, stride 2 */
    { "direct 8 lanes 5x5", 3, 1, 12, 12, 8, 5, 1, 2, 1, false, false },
    { "direct 16 lanes", 3, 16, 9, 9, 16, 3, 1, 1, 1, true, false },
    { "direct 32 lanes stride 2", 3, 16, 13, 11, 24, 3, 2, 1, 1, true, false },
    { "direct 8 lanes partial block", 2, 5, 7, 7, 7, 3, 1, 1, 1, true, false },
    /* gemm path: several images per product, then one image per product */
    { "gemm several images", 3, 72, 6, 6, 80, 3, 1, 1, 1, true, false },
    { "gemm one image", 2, 66, 36, 36, 70, 3, 1, 1, 1, false, false },
    { "pointwise several images", 3, 80, 5, 5, 72, 1, 1, 0, 1, true, false },
    { "pointwise one image", 2, 72, 33, 33, 80, 1, 1, 0, 1, false, false },
    { "grouped", 3, 8, 7, 7, 12, 3, 1, 1, 2, true, false },
    { "depthwise", 3, 8, 7, 7, 8, 3, 1, 1, 8, true, false },
    /* BatchNormalization folded, with and without a Conv bias */
    { "folded BN direct", 3, 16, 9, 9, 16, 3, 1, 1, 1, true, true },
    { "folded BN direct no bias", 3, 4, 9, 9, 8, 3, 1, 1, 1, false, true },
    { "folded BN gemm", 3, 72, 6, 6, 80, 3, 1, 1, 1, true, true },
    { "folded BN depthwise", 3, 8, 7, 7, 8, 3, 1, 1, 8, true, true },
};

START_TEST(test_epilogue_exact)
{
    const struct conv_case *cc = &conv_cases[_i];
    for (int threads = 1; threads <= 2; threads++) {
        struct qc_graph *g = conv_add_relu(cc);
        char *prof = NULL;
        /* inputs in [-1, 1): the residual and relu both matter; a folded BN
         * changes roundings only (see the file comment), else every bit
         * stays */
        double d = compare_plans(g, cc->n, threads, -1.0f, !cc->bn, &prof);
        ck_assert_msg(cc->bn ? d <= 1e-5 : d == 0.0,
                      "%s, %d threads: fused differs from the plain plan (%g)", cc->what, threads,
                      d);
        ck_assert_msg(prof && !strstr(prof, "Relu") && !strstr(prof, "Add") &&
                          !strstr(prof, "BatchNormalization"),
                      "%s: not fused:\n%s", cc->what, prof ? prof : "");
        free(prof);
        qc_graph_free(g);
    }
}
END_TEST

/* Folded BatchNormalization on the fixtures, images-like inputs in [0, 1). */
static void check_fixture(const char *rel, int threads)
{
    char path[4096];
    struct qc_graph *g;
    char *prof = NULL;
    double d;
    qc_test_path(path, sizeof(path), rel);
    ck_assert_int_eq(qc_onnx_load(path, &g), QC_OK);
    d = compare_plans(g, 16, threads, 0.0f, false, &prof);
    ck_assert_msg(d <= 1e-5, "%s: folded logits off by %g relative", rel, d);
    ck_assert_msg(prof && !strstr(prof, "BatchNormalization"),
                  "%s: BatchNormalization not folded:\n%s", rel, prof ? prof : "");
    free(prof);
    qc_graph_free(g);
}

START_TEST(test_fold_lenet)
{
    check_fixture("testdata/fashion_lenet_bn.onnx", 1);
    check_fixture("testdata/fashion_lenet_bn.onnx", 2);
}
END_TEST

START_TEST(test_fold_resnet)
{
    check_fixture("testdata/fashion_resnet_tiny.onnx", 1);
    check_fixture("testdata/fashion_resnet_tiny.onnx", 2);
}
END_TEST

/* x -> Conv(w float) -> BN -> Relu -> QuantizeLinear -> DequantizeLinear:
 * a fake-quant graph, where BN must stay its own step. */
START_TEST(test_no_fold_quantized)
{
    static const int64_t x[] = { -1, 4, 6, 6 }, w[] = { 8, 4, 3, 3 }, c[] = { 8 };
    static const int64_t pads[] = { 1, 1, 1, 1 };
    struct qc_graph *g = qc_test_graph(13);
    char *prof = NULL;
    double d;
    int v;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, x);
    qc_test_init_f32(g, "w", 4, w);
    qc_test_init_f32(g, "scale", 1, c);
    qc_test_init_f32(g, "beta", 1, c);
    qc_test_init_f32(g, "mean", 1, c);
    qc_test_init_f32(g, "var", 1, c);
    qc_test_init_f32(g, "qs", 0, NULL);
    qc_test_attr_ints(g, qc_test_node(g, "Conv", "conv", "x,w", "y"), "pads", 4, pads);
    qc_test_node(g, "BatchNormalization", "bn", "y,scale,beta,mean,var", "n");
    qc_test_node(g, "Relu", "relu", "n", "a");
    qc_test_node(g, "QuantizeLinear", "q", "a,qs", "aq");
    qc_test_node(g, "DequantizeLinear", "dq", "aq,qs", "z");
    qc_test_output(g, "z");
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    random_inits(g, 9);
    v = qc_graph_find_value(g, "var");
    for (int64_t i = 0; i < 8; i++) /* variances positive */
        qc_tensor_f32(g->values[v].init)[i] = 0.5f + 0.1f * (float)i;
    qc_tensor_f32(g->values[qc_graph_find_value(g, "qs")].init)[0] = 0.02f;
    d = compare_plans(g, 3, 1, -1.0f, true, &prof);
    ck_assert_msg(d == 0.0, "quantized graph: fused plan differs (%g)", d);
    ck_assert_msg(prof && strstr(prof, "BatchNormalization"),
                  "BatchNormalization folded in a quantized graph:\n%s", prof ? prof : "");
    free(prof);
    qc_graph_free(g);
}
END_TEST

/* MaxPool 2x2 stride 2 on [n, c, h, w] vs fmaxf over each window. */
static void check_maxpool(int64_t n, int64_t c, int64_t h, int64_t w, int threads)
{
    static const int64_t k[] = { 2, 2 };
    int64_t xd[] = { n, c, h, w }, oh = h / 2, ow = w / 2;
    struct qc_graph *g = qc_test_graph(13);
    struct qc_backend *be;
    struct qc_plan *p;
    const float *x, *y;
    int node;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, xd);
    node = qc_test_node(g, "MaxPool", "pool", "x", "y");
    qc_test_attr_ints(g, node, "kernel_shape", 2, k);
    qc_test_attr_ints(g, node, "strides", 2, k);
    qc_test_output(g, "y");
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    ck_assert_int_eq(qc_backend_new("cpu", threads, &be), QC_OK);
    ck_assert_int_eq(qc_plan_new_inference(g, be, n, &p), QC_OK);
    random_inputs(p, 13, -1.0f);
    ck_assert_int_eq(qc_plan_forward(p), QC_OK);
    x = qc_tensor_f32(qc_plan_input(p, 0));
    y = qc_tensor_f32(qc_plan_output(p, 0));
    ck_assert_int_eq(qc_tensor_nelem(qc_plan_output(p, 0)), n * c * oh * ow);
    for (int64_t r = 0; r < n * c; r++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                const float *a = x + (r * h + 2 * i) * w + 2 * j;
                float want = fmaxf(fmaxf(a[0], a[1]), fmaxf(a[w], a[w + 1]));
                ck_assert_msg(y[(r * oh + i) * ow + j] == want,
                              "%lldx%lldx%lldx%lld, plane %lld (%lld,%lld): %g, expected %g",
                              (long long)n, (long long)c, (long long)h, (long long)w, (long long)r,
                              (long long)i, (long long)j, (double)y[(r * oh + i) * ow + j],
                              (double)want);
            }
    qc_plan_free(p);
    qc_backend_free(be);
    qc_graph_free(g);
}

START_TEST(test_maxpool_2x2)
{
    for (int threads = 1; threads <= 2; threads++) {
        check_maxpool(3, 8, 28, 28, threads);   /* LeNet's first pooling */
        check_maxpool(2, 5, 7, 9, threads);     /* odd: last row and column unused */
        check_maxpool(40, 16, 10, 10, threads); /* enough work for 2 threads */
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("eval_fuse");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_epilogue_exact, 0,
                        (int)(sizeof(conv_cases) / sizeof(conv_cases[0])));
    tcase_add_test(tc, test_fold_lenet);
    tcase_add_test(tc, test_fold_resnet);
    tcase_add_test(tc, test_no_fold_quantized);
    tcase_add_test(tc, test_maxpool_2x2);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
