/*
 * test_graph.c - IR construction and qc_graph_finalize: topological order,
 * cycles, undefined inputs, unsupported ops (all reported together), opset
 * range, node labels, input/output count checks.
 */
#include <config.h>

#include <string.h>

#include "ir/graph.h"
#include "testutil.h"

static const int64_t img[] = { -1, 1, 4, 4 };

START_TEST(test_topo_sort)
{
    struct qc_graph *g = qc_test_graph(13);
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    /* file order: consumer first */
    qc_test_node(g, "Relu", "second", "a", "b");
    qc_test_node(g, "Relu", "", "x", "a");
    qc_test_output(g, "b");
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    ck_assert_str_eq(qc_node_label(g, &g->nodes[0]), "a"); /* unnamed: output name */
    ck_assert_str_eq(qc_node_label(g, &g->nodes[1]), "second");
    ck_assert_int_eq(g->values[qc_graph_find_value(g, "b")].producer, 1);
    ck_assert_int_eq(qc_graph_find_node(g, "a"), 0);
    ck_assert_int_eq(qc_graph_find_node(g, "nothing"), -1);
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK); /* idempotent */
    qc_graph_free(g);
}
END_TEST

START_TEST(test_cycle)
{
    struct qc_graph *g = qc_test_graph(13);
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    qc_test_node(g, "Add", "n1", "x,c", "b");
    qc_test_node(g, "Relu", "n2", "b", "c");
    qc_test_output(g, "c");
    ck_assert_int_eq(qc_graph_finalize(g), QC_ERR_ONNX);
    qc_graph_free(g);
}
END_TEST

START_TEST(test_undefined_input)
{
    struct qc_graph *g = qc_test_graph(13);
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    qc_test_node(g, "Add", "n1", "x,ghost", "y");
    qc_test_output(g, "y");
    ck_assert_int_eq(qc_graph_finalize(g), QC_ERR_ONNX);
    qc_graph_free(g);
}
END_TEST

START_TEST(test_double_definition)
{
    struct qc_graph *g = qc_test_graph(13);
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    qc_test_node(g, "Relu", "n1", "x", "y");
    qc_test_node(g, "Relu", "n2", "x", "y");
    qc_test_output(g, "y");
    ck_assert_int_eq(qc_graph_finalize(g), QC_ERR_ONNX);
    qc_graph_free(g);
}
END_TEST

START_TEST(test_unsupported_all_listed)
{
    struct qc_graph *g = qc_test_graph(13);
    int n;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    qc_test_node(g, "Relu", "ok", "x", "a");
    qc_test_node(g, "NonMaxSuppression", "nms", "a", "b");
    n = qc_test_node(g, "Foo", "custom", "b", "c");
    qc_free(g->nodes[n].domain);
    g->nodes[n].domain = qc_strdup("com.example");
    qc_test_output(g, "c");
    ck_assert_int_eq(qc_graph_finalize(g), QC_ERR_UNSUPPORTED);
    qc_graph_free(g);
}
END_TEST

START_TEST(test_opset_range)
{
    struct qc_graph *g = qc_test_graph(6);
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    qc_test_node(g, "Relu", "r", "x", "y");
    qc_test_output(g, "y");
    ck_assert_int_eq(qc_graph_finalize(g), QC_ERR_UNSUPPORTED);
    qc_graph_free(g);
    g = qc_test_graph(24);
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    qc_test_node(g, "Relu", "r", "x", "y");
    qc_test_output(g, "y");
    ck_assert_int_eq(qc_graph_finalize(g), QC_ERR_UNSUPPORTED);
    qc_graph_free(g);
}
END_TEST

START_TEST(test_arity)
{
    struct qc_graph *g = qc_test_graph(13);
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    qc_test_node(g, "Relu", "r", "x,x", "y");
    qc_test_output(g, "y");
    ck_assert_int_eq(qc_graph_finalize(g), QC_ERR_ONNX);
    qc_graph_free(g);
}
END_TEST

START_TEST(test_param_count)
{
    static const int64_t w[] = { 8, 1, 3, 3 }, b[] = { 8 };
    struct qc_graph *g = qc_test_graph(13);
    int n;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    qc_test_init_f32(g, "w", 4, w);
    qc_test_init_f32(g, "b", 1, b);
    n = qc_test_node(g, "Conv", "conv", "x,w,b", "y");
    qc_test_output(g, "y");
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    ck_assert_int_eq(qc_node_param_count(g, &g->nodes[n]), 8 * 9 + 8);
    qc_graph_free(g);
}
END_TEST

Suite *qc_suite_graph(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("finalize");
    tcase_add_test(tc, test_topo_sort);
    tcase_add_test(tc, test_cycle);
    tcase_add_test(tc, test_undefined_input);
    tcase_add_test(tc, test_double_definition);
    tcase_add_test(tc, test_unsupported_all_listed);
    tcase_add_test(tc, test_opset_range);
    tcase_add_test(tc, test_arity);
    tcase_add_test(tc, test_param_count);
    suite_add_tcase(s, tc);
    return s;
}
