/*
 * testutil.h - shared declarations for the Check suites (one runner,
 * tests/check_qatconv.c).  Each tests/test_<area>.c exports one suite.
 * Test data paths are relative to $srcdir (set by make check) or ".".
 * Debug one test with: CK_FORK=no CK_RUN_CASE=<tcase> gdb tests/check_qatconv
 */
#ifndef QATCONV_TESTS_TESTUTIL_H
#define QATCONV_TESTS_TESTUTIL_H

#include <check.h>
#include <stdint.h>

#include "ir/tensor.h"

Suite *qc_suite_tensor(void);
Suite *qc_suite_graph(void);
Suite *qc_suite_shape(void);
Suite *qc_suite_recipe(void);
Suite *qc_suite_data(void);
Suite *qc_suite_onnx_io(void);
Suite *qc_suite_ops(void);
Suite *qc_suite_grad_conv(void);    /* Conv, ConvTranspose, Gemm, MatMul           */
Suite *qc_suite_grad_act(void);     /* activations, element-wise, BatchNorm, Dropout */
Suite *qc_suite_grad_layout(void);  /* pools, Resize, layout ops, Softmax          */
Suite *qc_suite_solver(void);       /* SGD, Adam, learning-rate policies           */
Suite *qc_suite_train_plan(void);   /* whole-network gradients                     */
Suite *qc_suite_loss(void);         /* the training losses (distillation)          */
Suite *qc_suite_quant(void);        /* SAT and LSQ quantizers                      */
Suite *qc_suite_intops(void);       /* integer ops of the int export vs ORT        */
Suite *qc_suite_metrics(void);      /* confusion matrix, top-5, N2D2 metrics       */
Suite *qc_suite_fidelity(void);     /* recipe fidelity with N2D2                   */

/* $srcdir/rel (static buffer per call site is NOT used: writes into buf). */
const char *qc_test_path(char *buf, size_t len, const char *rel);

/* Normwise relative error max_i|a_i - b_i| / max(max_i|b_i|, 1e-30). */
double qc_test_rel_err(const float *a, const float *b, int64_t n);

/* Writes `len` bytes to a fresh temp file, returns its path in buf. */
const char *qc_test_tmpfile(char *buf, size_t len, const void *data, size_t nbytes);


/* Hand-built graphs (test_graph.c, test_shape.c).  Names are comma-separated
 * lists; an empty item is an omitted input.  All abort the test on failure. */
struct qc_graph;
struct qc_graph *qc_test_graph(int64_t opset);
int qc_test_node(struct qc_graph *g, const char *op, const char *name, const char *ins,
                 const char *outs);
void qc_test_input(struct qc_graph *g, const char *name, enum qc_dtype dt, int ndim,
                   const int64_t *dims);
void qc_test_output(struct qc_graph *g, const char *name);
/* Float initializer of the given shape filled with 0.01 * i. */
void qc_test_init_f32(struct qc_graph *g, const char *name, int ndim, const int64_t *dims);
void qc_test_init_i64(struct qc_graph *g, const char *name, int n, const int64_t *vals);
void qc_test_attr_int(struct qc_graph *g, int node, const char *name, int64_t v);
void qc_test_attr_ints(struct qc_graph *g, int node, const char *name, int n,
                       const int64_t *v);

#endif
