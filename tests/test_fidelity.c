/*
 * test_fidelity.c - recipe fidelity with N2D2 (issue 16 item 4): the SAT
 * ApplyScaling fan-out F of every Fc layout (Gemm transB=0/1, MatMul with the
 * weight second), against S = sqrt(F·var_unbiased(Q)) computed by hand.
 *
 * Expected S (numpy, float64): W = 0.01·i, i = 0..5 (qc_test_init_f32),
 * clamp stage (ApplyQuantization=0): r = tanh(W)/max|tanh W|, F = C_out = 3:
 *   sqrt(3 * np.var(r, ddof=1)) = 0.6480999787183571
 * (the fan-in F = 2 would give 0.5291714167228706).
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"
#include "ops/bind.h"
#include "quant/qspec.h"
#include "quant/quant.h"
#include "recipe/recipe.h"
#include "testutil.h"

#define NEAR(a, b, tol)                                                                            \
    ck_assert_msg(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g", #a,        \
                  (double)(a), (double)(b))

/* S of "[fc] QWeight=SAT ApplyScaling=1 ApplyQuantization=0" on a one-node Fc graph:
 * op "Gemm" or "MatMul", the weight of shape wdims (C_out = 3, C_in = 2). */
static double fc_scale(const char *op, int trans_b, const int64_t *wdims, int64_t *fanout)
{
    static const int64_t xdims[2] = { 1, 2 };
    struct qc_graph *g = qc_test_graph(13);
    struct qc_recipe *r = NULL;
    struct qc_quant_spec *specs = NULL;
    struct qc_sat_wstate st;
    int n = 0;
    qc_test_input(g, "X", QC_DTYPE_F32, 2, xdims);
    qc_test_init_f32(g, "W", 2, wdims);
    int node = qc_test_node(g, op, "fc", "X,W", "Y");
    if (trans_b >= 0)
        qc_test_attr_int(g, node, "transB", trans_b);
    qc_test_output(g, "Y");
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    ck_assert_int_eq(qc_recipe_load_string("[fc]\nQWeight=SAT\nQWeight.ApplyScaling=1\n"
                                           "QWeight.ApplyQuantization=0\n",
                                           "t.ini", false, &r),
                     QC_OK);
    ck_assert_int_eq(qc_quant_specs_from_recipe(r, g, &specs, &n), QC_OK);
    ck_assert_int_eq(n, 1);
    ck_assert(specs[0].weight && specs[0].sat.apply_scaling);
    *fanout = specs[0].sat.fanout;
    const struct qc_tensor *w = g->values[specs[0].value].init;
    qc_sat_weight_forward(&specs[0].sat, qc_tensor_f32(w), NULL, qc_tensor_nelem(w), 1, &st);
    qc_free(specs);
    qc_recipe_free(r);
    qc_graph_free(g);
    return st.s;
}

/* F = C_out for every Fc layout (N2D2's mOutputsSize of a Fc cell). */
START_TEST(test_fc_scaling_fanout)
{
    static const int64_t w_in_out[2] = { 2, 3 }, w_out_in[2] = { 3, 2 };
    static const double want = 0.6480999787183571;
    int64_t f;
    NEAR(fc_scale("Gemm", 1, w_out_in, &f), want, 1e-6); /* PyTorch's Linear export */
    ck_assert_int_eq(f, 3);
    NEAR(fc_scale("Gemm", 0, w_in_out, &f), want, 1e-6);
    ck_assert_int_eq(f, 3);
    NEAR(fc_scale("Gemm", -1, w_in_out, &f), want, 1e-6); /* transB absent = 0 */
    ck_assert_int_eq(f, 3);
    NEAR(fc_scale("MatMul", -1, w_in_out, &f), want, 1e-6);
    ck_assert_int_eq(f, 3);
}
END_TEST

Suite *qc_suite_fidelity(void)
{
    Suite *s = suite_create("fidelity");
    TCase *sc = tcase_create("scaling");
    tcase_add_test(sc, test_fc_scaling_fanout);
    suite_add_tcase(s, sc);
    return s;
}
