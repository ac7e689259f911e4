/*
 * test_shape.c - shape inference and shape-subgraph folding through
 * qc_plan_new: hand-built graphs with hand-computed output shapes, and the
 * x.view(x.size(0), -1) chain of a PyTorch export at several batch sizes.
 */
#include <config.h>

#include "onnx/onnx_io.h"
#include "backend/backend.h"
#include "ir/graph.h"
#include "plan/plan.h"
#include "testutil.h"
#include "ops/bind.h"

/* Plans g at batch and checks output 0's shape against want[0..nd-1]. */
static void expect_shape(struct qc_graph *g, int64_t batch, int nd, const int64_t *want)
{
    struct qc_backend *be;
    struct qc_plan *p;
    struct qc_shape w = qc_shape_make(nd, want);
    char a[128], b[128];
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    ck_assert_int_eq(qc_backend_new("cpu", 1, &be), QC_OK);
    ck_assert_int_eq(qc_plan_new(g, be, batch, &p), QC_OK);
    ck_assert_msg(qc_shape_equal(&qc_plan_output(p, 0)->shape, &w), "got %s, expected %s",
                  qc_shape_str(&qc_plan_output(p, 0)->shape, a, sizeof(a)),
                  qc_shape_str(&w, b, sizeof(b)));
    ck_assert_int_eq(qc_plan_forward(p), QC_OK);
    qc_plan_free(p);
    qc_backend_free(be);
    qc_graph_free(g);
}

START_TEST(test_conv_shapes)
{
    static const int64_t x[] = { -1, 4, 11, 9 }, w[] = { 8, 2, 3, 3 };
    static const int64_t pads[] = { 1, 0, 2, 1 }, strides[] = { 2, 3 }, dil[] = { 2, 1 };
    /* H: (11 + 1 + 2 - 2*(3-1) - 1)/2 + 1 = 5 ; W: (9 + 0 + 1 - 3)/3 + 1 = 3 */
    static const int64_t want[] = { 3, 8, 5, 3 };
    struct qc_graph *g = qc_test_graph(13);
    int n;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, x);
    qc_test_init_f32(g, "w", 4, w);
    n = qc_test_node(g, "Conv", "conv", "x,w", "y");
    qc_test_attr_int(g, n, "group", 2);
    qc_test_attr_ints(g, n, "pads", 4, pads);
    qc_test_attr_ints(g, n, "strides", 2, strides);
    qc_test_attr_ints(g, n, "dilations", 2, dil);
    qc_test_output(g, "y");
    expect_shape(g, 3, 4, want);
}
END_TEST

START_TEST(test_pool_ceil)
{
    static const int64_t x[] = { -1, 2, 7, 7 }, k[] = { 2, 2 }, s[] = { 2, 2 };
    static const int64_t want[] = { 1, 2, 4, 4 };   /* ceil((7-2)/2)+1 = 4 */
    struct qc_graph *g = qc_test_graph(13);
    int n;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, x);
    n = qc_test_node(g, "MaxPool", "pool", "x", "y");
    qc_test_attr_ints(g, n, "kernel_shape", 2, k);
    qc_test_attr_ints(g, n, "strides", 2, s);
    qc_test_attr_int(g, n, "ceil_mode", 1);
    qc_test_output(g, "y");
    expect_shape(g, 1, 4, want);
}
END_TEST

START_TEST(test_gemm_flatten)
{
    static const int64_t x[] = { -1, 3, 4, 5 }, w[] = { 10, 60 }, b[] = { 10 };
    static const int64_t want[] = { 6, 10 };
    struct qc_graph *g = qc_test_graph(11);
    int n;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, x);
    qc_test_init_f32(g, "w", 2, w);
    qc_test_init_f32(g, "b", 1, b);
    qc_test_node(g, "Flatten", "flat", "x", "f");
    n = qc_test_node(g, "Gemm", "fc", "f,w,b", "y");
    qc_test_attr_int(g, n, "transB", 1);
    qc_test_output(g, "y");
    expect_shape(g, 6, 2, want);
}
END_TEST

/* Shape -> Gather(0) -> Unsqueeze -> Concat(-1) -> Reshape: PyTorch's view. */
static struct qc_graph *view_graph(void)
{
    static const int64_t x[] = { -1, 2, 3, 4 }, zero[] = { 0 }, minus1[] = { -1 };
    struct qc_graph *g = qc_test_graph(13);
    int n;
    int64_t idx0 = 0;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, x);
    qc_test_init_i64(g, "axes0", 1, zero);
    qc_test_init_i64(g, "minus1", 1, minus1);
    qc_test_node(g, "Shape", "shape", "x", "s");
    qc_test_init_i64(g, "i0", 1, &idx0);
    n = qc_test_node(g, "Gather", "gather", "s,i0", "b1");
    qc_test_attr_int(g, n, "axis", 0);
    n = qc_test_node(g, "Concat", "cat", "b1,minus1", "newshape");
    qc_test_attr_int(g, n, "axis", 0);
    qc_test_node(g, "Reshape", "view", "x,newshape", "y");
    qc_test_output(g, "y");
    return g;
}

START_TEST(test_view_chain_folds)
{
    static const int64_t want5[] = { 5, 24 }, want2[] = { 2, 24 };
    expect_shape(view_graph(), 5, 2, want5);
    expect_shape(view_graph(), 2, 2, want2);
}
END_TEST

/* The same chain as PyTorch 1.13 exports it, from a fixture with a dynamic
 * batch axis: folded constants, output [B, classes] for several B. */
START_TEST(test_view_chain_fixture)
{
    char path[4096];
    struct qc_graph *g;
    struct qc_backend *be;
    int folded = 0;
    qc_test_path(path, sizeof(path), "testdata/fashion_mlp.onnx");
    ck_assert_int_eq(qc_onnx_load(path, &g), QC_OK);
    ck_assert_int_eq(qc_backend_new("cpu", 1, &be), QC_OK);
    for (int64_t batch = 1; batch <= 7; batch += 3) {
        struct qc_plan *p;
        ck_assert_int_eq(qc_plan_new(g, be, batch, &p), QC_OK);
        ck_assert_int_eq(qc_plan_output(p, 0)->shape.ndim, 2);
        ck_assert_int_eq(qc_plan_output(p, 0)->shape.dims[0], batch);
        ck_assert_int_eq(qc_plan_output(p, 0)->shape.dims[1], 10);
        folded = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].n_out && qc_plan_value_is_const(p, g->nodes[i].out[0]))
                folded++;
        ck_assert_int_eq(qc_plan_forward(p), QC_OK);
        qc_plan_free(p);
    }
    ck_assert_int_ge(folded, 3); /* Shape, Gather, Unsqueeze/Concat at least */
    qc_backend_free(be);
    qc_graph_free(g);
}
END_TEST

START_TEST(test_broadcast_mismatch)
{
    static const int64_t x[] = { -1, 3, 4 }, c[] = { 5 };
    struct qc_graph *g = qc_test_graph(13);
    struct qc_backend *be;
    struct qc_plan *p;
    qc_test_input(g, "x", QC_DTYPE_F32, 3, x);
    qc_test_init_f32(g, "c", 1, c);
    qc_test_node(g, "Add", "add", "x,c", "y");
    qc_test_output(g, "y");
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    ck_assert_int_eq(qc_backend_new("cpu", 1, &be), QC_OK);
    ck_assert_int_eq(qc_plan_new(g, be, 2, &p), QC_ERR_SHAPE);
    ck_assert_ptr_null(p);
    qc_backend_free(be);
    qc_graph_free(g);
}
END_TEST

Suite *qc_suite_shape(void)
{
    Suite *s = suite_create("shape");
    TCase *tc = tcase_create("infer");
    tcase_add_test(tc, test_conv_shapes);
    tcase_add_test(tc, test_pool_ceil);
    tcase_add_test(tc, test_gemm_flatten);
    tcase_add_test(tc, test_view_chain_folds);
    tcase_add_test(tc, test_view_chain_fixture);
    tcase_add_test(tc, test_broadcast_mismatch);
    suite_add_tcase(s, tc);
    return s;
}
