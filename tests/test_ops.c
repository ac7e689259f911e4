/*
 * test_ops.c - per-op forward results against independent oracles:
 *   - every fixture testdata/<case>/model.onnx (PyTorch exports at opsets 11,
 *     13, 17 plus hand-built models) whose test_data_set_0 outputs were
 *     computed by ONNX Runtime;
 *   - the ONNX backend node tests shipped in the PyPI onnx package, generated
 *     by tests/gen_node_tests.py into $QC_NODE_TESTS (every case whose ops
 *     qatconv supports).
 * Float outputs must agree within a normwise relative error of 1e-4
 * (max|ours - ref| / max|ref|); integer and bool outputs exactly.
 *
 * Fixtures feed their graph input at runtime (batch taken from the data);
 * node tests bind every input as a constant, so ops whose shape depends on
 * an input (Reshape, Slice, Pad ...) can run.  A node test qatconv refuses at
 * load or plan time (an unsupported attribute value, dtype or mode) is listed
 * as skipped with its reason; a node test that runs must match.
 */
#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../onnx/onnx_io.h"
#include "../src/backend/backend.h"
#include "../src/graph.h"
#include "../src/plan.h"
#include "testutil.h"

#define REL_TOL 1e-4

enum case_result { CASE_PASS, CASE_FAIL, CASE_SKIP };

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted list of subdirectories of dir that hold a model.onnx. */
static int list_cases(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    int n = 0;
    *out = NULL;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/model.onnx", dir, e->d_name);
        f = fopen(path, "rb");
        if (!f)
            continue;
        fclose(f);
        names = realloc(names, (size_t)(n + 1) * sizeof(*names));
        ck_assert_ptr_nonnull(names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(*names), cmp_str);
    *out = names;
    return n;
}

static void free_list(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Compares one output; prints the reason on mismatch. */
static bool output_matches(const char *name, int k, const struct qc_tensor *got,
                           const struct qc_tensor *want, double *worst)
{
    char a[128], b[128];
    if (!qc_shape_equal(&got->shape, &want->shape)) {
        printf("FAIL %s: output %d shape %s, expected %s\n", name, k,
               qc_shape_str(&got->shape, a, sizeof(a)), qc_shape_str(&want->shape, b, sizeof(b)));
        return false;
    }
    if (got->dtype != want->dtype) {
        printf("FAIL %s: output %d dtype %s, expected %s\n", name, k, qc_dtype_name(got->dtype),
               qc_dtype_name(want->dtype));
        return false;
    }
    if (got->dtype == QC_DTYPE_F32) {
        double e = qc_test_rel_err(qc_tensor_f32(got), qc_tensor_f32(want), qc_tensor_nelem(want));
        if (e > *worst)
            *worst = e;
        if (!(e <= REL_TOL)) {
            printf("FAIL %s: output %d relative error %.3g > %.0e\n", name, k, e, REL_TOL);
            return false;
        }
        return true;
    }
    if (memcmp(got->data, want->data, qc_tensor_nbytes(want)) != 0) {
        printf("FAIL %s: output %d (%s) differs\n", name, k, qc_dtype_name(got->dtype));
        return false;
    }
    return true;
}

/* Runs one case directory.  bind_inputs: graph inputs become constants. */
static enum case_result run_case(const char *dir, const char *name, bool bind_inputs,
                                 struct qc_backend *be, double *worst, char *why, size_t whylen)
{
    char path[4096];
    struct qc_graph *g = NULL;
    struct qc_plan *p = NULL;
    struct qc_tensor *in[16] = { NULL }, *want = NULL;
    int n_in = 0;
    enum case_result res = CASE_FAIL;
    enum qc_status st;
    int64_t batch = 1;

    why[0] = '\0';
    snprintf(path, sizeof(path), "%s/%s/model.onnx", dir, name);
    st = qc_onnx_load(path, &g);
    if (st == QC_ERR_UNSUPPORTED) {
        snprintf(why, whylen, "load: %s", qc_strerror(st));
        res = CASE_SKIP;
        goto out;
    }
    if (st != QC_OK) {
        printf("FAIL %s: load: %s\n", name, qc_strerror(st));
        goto out;
    }
    /* inputs in graph order, skipping initializer-inputs */
    for (int i = 0; i < g->n_inputs && n_in < 16; i++) {
        struct qc_value *v = &g->values[g->inputs[i]];
        if (v->init)
            continue;
        snprintf(path, sizeof(path), "%s/%s/test_data_set_0/input_%d.pb", dir, name, n_in);
        st = qc_onnx_load_tensor(path, &in[n_in], NULL);
        ck_assert_msg(st == QC_OK, "%s: cannot read %s", name, path);
        if (bind_inputs) {
            v->init = in[n_in];
            in[n_in] = NULL;
        } else if (n_in == 0 && in[0]->shape.ndim > 0) {
            batch = in[0]->shape.dims[0];   /* the first input carries the batch */
        }
        n_in++;
    }
    st = qc_plan_new(g, be, batch, &p);
    if (st == QC_ERR_UNSUPPORTED) {
        snprintf(why, whylen, "plan: %s", qc_strerror(st));
        res = CASE_SKIP;
        goto out;
    }
    if (st != QC_OK) {
        printf("FAIL %s: plan: %s\n", name, qc_strerror(st));
        goto out;
    }
    if (!bind_inputs) {
        for (int i = 0; i < n_in; i++) {
            struct qc_tensor *t = qc_plan_input(p, i);
            if (qc_tensor_nbytes(t) != qc_tensor_nbytes(in[i])) {
                printf("FAIL %s: input %d size mismatch\n", name, i);
                goto out;
            }
            memcpy(t->data, in[i]->data, qc_tensor_nbytes(t));
        }
    }
    st = qc_plan_forward(p);
    if (st == QC_ERR_UNSUPPORTED) {
        snprintf(why, whylen, "forward: %s", qc_strerror(st));
        res = CASE_SKIP;
        goto out;
    }
    if (st != QC_OK) {
        printf("FAIL %s: forward: %s\n", name, qc_strerror(st));
        goto out;
    }
    res = CASE_PASS;
    for (int k = 0; k < qc_plan_n_outputs(p); k++) {
        snprintf(path, sizeof(path), "%s/%s/test_data_set_0/output_%d.pb", dir, name, k);
        st = qc_onnx_load_tensor(path, &want, NULL);
        ck_assert_msg(st == QC_OK, "%s: cannot read %s", name, path);
        if (!output_matches(name, k, qc_plan_output(p, k), want, worst))
            res = CASE_FAIL;
        qc_tensor_free(want);
        want = NULL;
    }
out:
    for (int i = 0; i < n_in; i++)
        qc_tensor_free(in[i]);
    qc_plan_free(p);
    qc_graph_free(g);
    return res;
}

static void run_dir(const char *dir, bool bind_inputs, bool allow_skip, int threads,
                    int min_cases, const char *what)
{
    struct qc_backend *be = NULL;
    char **names;
    int n = list_cases(dir, &names), pass = 0, fail = 0, skip = 0;
    double worst = 0.0;

    ck_assert_msg(n >= min_cases, "%s: found %d cases in %s", what, n, dir);
    ck_assert_int_eq(qc_backend_new("cpu", threads, &be), QC_OK);
    for (int i = 0; i < n; i++) {
        char why[256];
        enum case_result r = run_case(dir, names[i], bind_inputs, be, &worst, why, sizeof(why));
        if (r == CASE_PASS) {
            pass++;
            printf("ran  %s\n", names[i]);
        } else if (r == CASE_SKIP && allow_skip) {
            skip++;
            printf("skip %s (%s)\n", names[i], why);
        } else {
            if (r == CASE_SKIP)
                printf("FAIL %s: refused (%s)\n", names[i], why);
            fail++;
        }
    }
    printf("%s (%d threads): %d passed, %d failed, %d skipped; worst relative error %.3g\n",
           what, threads, pass, fail, skip, worst);
    fflush(stdout);
    qc_backend_free(be);
    free_list(names, n);
    ck_assert_msg(fail == 0, "%s: %d cases failed", what, fail);
    ck_assert_msg(pass >= min_cases, "%s: only %d cases ran", what, pass);
}

START_TEST(test_fixtures)
{
    char dir[4096];
    qc_test_path(dir, sizeof(dir), "testdata");
    /* every fixture must run: none may be skipped; 1 and 2 threads take
     * different paths through the kernels (serial vs split over images) */
    run_dir(dir, false, false, 1, 30, "fixtures");
    run_dir(dir, false, false, 2, 30, "fixtures");
}
END_TEST

START_TEST(test_onnx_node_tests)
{
    const char *dir = getenv("QC_NODE_TESTS");
    /* make check generates them (tests/gen_node_tests.py); never silently skip */
    ck_assert_msg(dir && dir[0], "QC_NODE_TESTS is not set (run through make check)");
    run_dir(dir, true, true, 1, 100, "onnx node tests");
}
END_TEST

Suite *qc_suite_ops(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("forward");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_fixtures);
    tcase_add_test(tc, test_onnx_node_tests);
    suite_add_tcase(s, tc);
    return s;
}
