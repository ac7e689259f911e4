/*
 * test_graph.c - IR construction and qc_graph_finalize: topological order,
 * cycles, undefined inputs, unsupported ops (all reported together), opset
 * range, node labels, input/output count checks; the op table's names and
 * roles (ops/op.h).
 */
#include <config.h>

#include <string.h>

#include "ir/graph.h"
#include "ops/op.h"
#include "testutil.h"
#include "ops/bind.h"

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

/* Every op's name comes back from lookup; its roles fit its arity. */
START_TEST(test_op_table)
{
    for (int k = 0; k < QC_OP_COUNT; k++) {
        const struct qc_op_def *d = qc_op_get((enum qc_op_kind)k);
        const struct qc_op_roles *r = qc_op_roles((enum qc_op_kind)k);
        int n_in = d->n_in_max < 32 ? d->n_in_max : 32;
        unsigned all = n_in >= 32 ? ~0u : (1u << n_in) - 1u;
        ck_assert_int_eq(qc_op_lookup(qc_op_name((enum qc_op_kind)k)), k);
        ck_assert_ptr_eq(r, &d->roles);
        ck_assert_int_ge(r->weight, 0);
        ck_assert_int_le(r->weight, n_in);
        ck_assert_int_ge(r->bias, 0);
        ck_assert_int_le(r->bias, n_in);
        ck_assert_uint_eq(r->trainable & ~all, 0);
        ck_assert_uint_eq(r->running & ~all, 0);
        ck_assert_uint_eq(r->trainable & r->running, 0);
        /* a weight is trainable and quantizable, and the layer is a Conv or Fc cell */
        if (r->weight) {
            ck_assert(qc_op_input_role(k, r->weight - 1) == QC_INPUT_TRAINABLE);
            ck_assert(qc_op_quantizes_weight(k));
            ck_assert(r->cell == QC_CELL_CONV || r->cell == QC_CELL_FC);
        } else {
            ck_assert(!qc_op_quantizes_weight(k));
        }
        if (r->bias)
            ck_assert(qc_op_input_role(k, r->bias - 1) == QC_INPUT_TRAINABLE);
    }
    ck_assert(!qc_op_is_weighted(-1) && qc_op_cell(-1) == QC_CELL_NONE);
    ck_assert(qc_op_input_role(-1, 1) == QC_INPUT_DATA);
    ck_assert_str_eq(qc_op_name(QC_OP_BATCHNORM), "BatchNormalization");
}
END_TEST

/* Roles on nodes: weight and bias slots, channel axes (Gemm's from transB),
 * BatchNorm's trainable inputs and running statistics. */
START_TEST(test_op_roles)
{
    static const int64_t vec[] = { -1, 16 }, wc[] = { 8, 1, 3, 3 }, wt[] = { 1, 8, 3, 3 },
                         wg[] = { 8, 16 }, wg2[] = { 8, 4 }, wm[] = { 16, 8 },
                         c1[] = { 1 };
    struct qc_graph *g = qc_test_graph(13);
    int conv, convt, gemm_t, gemm, matmul, bn, relu;
    qc_test_input(g, "x", QC_DTYPE_F32, 4, img);
    qc_test_input(g, "v", QC_DTYPE_F32, 2, vec);
    qc_test_init_f32(g, "wc", 4, wc);
    qc_test_init_f32(g, "wt", 4, wt);
    qc_test_init_f32(g, "wg", 2, wg);
    qc_test_init_f32(g, "wg2", 2, wg2);
    qc_test_init_f32(g, "wm", 2, wm);
    qc_test_init_f32(g, "s", 1, c1);
    qc_test_init_f32(g, "b", 1, c1);
    qc_test_init_f32(g, "m", 1, c1);
    qc_test_init_f32(g, "var", 1, c1);
    conv = qc_test_node(g, "Conv", "conv", "x,wc", "y1");
    convt = qc_test_node(g, "ConvTranspose", "convt", "x,wt", "y2");
    gemm_t = qc_test_node(g, "Gemm", "gemm_t", "v,wg", "y3");
    qc_test_attr_int(g, gemm_t, "transB", 1);
    gemm = qc_test_node(g, "Gemm", "gemm", "y3,wg2", "y4");
    matmul = qc_test_node(g, "MatMul", "matmul", "v,wm", "y5");
    bn = qc_test_node(g, "BatchNormalization", "bn", "x,s,b,m,var", "y6");
    relu = qc_test_node(g, "Relu", "relu", "y6", "y7");
    qc_test_output(g, "y1");
    qc_test_output(g, "y2");
    qc_test_output(g, "y4");
    qc_test_output(g, "y5");
    qc_test_output(g, "y7");
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    ck_assert_int_eq(qc_op_weight_input(&g->nodes[conv]), 1);
    ck_assert_int_eq(qc_op_bias_input(&g->nodes[conv]), -1);       /* omitted */
    ck_assert_int_eq(qc_op_weight_channel_axis(&g->nodes[conv]), 0);
    ck_assert_int_eq(qc_op_weight_channel_axis(&g->nodes[convt]), 1);
    ck_assert_int_eq(qc_op_weight_channel_axis(&g->nodes[gemm_t]), 0);
    ck_assert_int_eq(qc_op_weight_channel_axis(&g->nodes[gemm]), 1);
    ck_assert_int_eq(qc_op_weight_channel_axis(&g->nodes[matmul]), 1);
    ck_assert_int_eq(qc_op_weight_input(&g->nodes[matmul]), 1);
    ck_assert_int_eq(qc_op_weight_channel_axis(&g->nodes[bn]), -1);
    ck_assert_int_eq(qc_op_weight_input(&g->nodes[bn]), -1);
    ck_assert_int_eq(qc_op_bias_input(&g->nodes[bn]), 2);
    ck_assert_int_eq(qc_op_weight_input(&g->nodes[relu]), -1);
    ck_assert(qc_op_input_role(QC_OP_BATCHNORM, 0) == QC_INPUT_DATA);
    ck_assert(qc_op_input_role(QC_OP_BATCHNORM, 1) == QC_INPUT_TRAINABLE);
    ck_assert(qc_op_input_role(QC_OP_BATCHNORM, 2) == QC_INPUT_TRAINABLE);
    ck_assert(qc_op_input_role(QC_OP_BATCHNORM, 3) == QC_INPUT_RUNNING);
    ck_assert(qc_op_input_role(QC_OP_BATCHNORM, 4) == QC_INPUT_RUNNING);
    ck_assert(qc_op_input_role(QC_OP_MATMUL, 0) == QC_INPUT_TRAINABLE);
    ck_assert(qc_op_input_role(QC_OP_CONV, 0) == QC_INPUT_DATA);
    ck_assert(qc_op_is_weighted(QC_OP_CONV_TRANSPOSE) && !qc_op_is_weighted(QC_OP_BATCHNORM) &&
              !qc_op_is_weighted(QC_OP_CONV_INTEGER));
    ck_assert(qc_op_quantizes_act(QC_OP_CLIP) && !qc_op_quantizes_act(QC_OP_CONV));
    ck_assert(qc_op_extends_cell(QC_OP_BATCHNORM) && qc_op_extends_cell(QC_OP_RELU) &&
              !qc_op_extends_cell(QC_OP_ADD));
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
    tc = tcase_create("op table");
    tcase_add_test(tc, test_op_table);
    tcase_add_test(tc, test_op_roles);
    suite_add_tcase(s, tc);
    return s;
}
