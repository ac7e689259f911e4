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
 *
 * The backend is $QC_TEST_BACKEND ("cpu" when unset): on "cuda" (the real one
 * or the emulator of tests/cuda_emu) the plan holds its values in device
 * memory, inputs are uploaded and outputs downloaded, and a case the plan
 * refuses for an op the backend has no kernel for (QDQ and integer ops,
 * ConvTranspose, Resize ...) is skipped; the skipped cases are named in one
 * summary line.
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
#include "gradcheck.h"
#include "testutil.h"

#define REL_TOL 1e-4

/* CASE_NOKERNEL: the backend has no kernel for one of the case's ops */
enum case_result { CASE_PASS, CASE_FAIL, CASE_SKIP, CASE_NOKERNEL };

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

/* The op types of g that be has no kernel for, "A,B", into why. */
static void missing_ops(const struct qc_graph *g, const struct qc_backend *be, char *why,
                        size_t whylen)
{
    size_t pos = 0;
    why[0] = '\0';
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        const struct qc_op_def *d = qc_op_get((enum qc_op_kind)n->kind);
        bool seen = false;
        if (d->fold == QC_FOLD_ALWAYS || be->ops->kernel((enum qc_op_kind)n->kind))
            continue;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(g->nodes[j].op_type, n->op_type) == 0 &&
                   !be->ops->kernel((enum qc_op_kind)g->nodes[j].kind);
        if (!seen && pos < whylen) {
            int w = snprintf(why + pos, whylen - pos, "%s%s", pos ? "," : "", n->op_type);
            if (w > 0)
                pos += (size_t)w;
        }
    }
}

/* Downloads plan output k (a folded constant is already in host memory). */
static struct qc_tensor *output_to_host(struct qc_plan *p, const struct qc_graph *g,
                                        struct qc_backend *be, int k)
{
    const struct qc_tensor *t = qc_plan_output(p, k);
    struct qc_tensor *h;
    ck_assert_int_eq(qc_tensor_new(t->dtype, &t->shape, &h), QC_OK);
    if (qc_plan_value_is_const(p, g->outputs[k]))
        memcpy(h->data, t->data, qc_tensor_nbytes(t));
    else
        ck_assert_int_eq(be->ops->download(be, h->data, t->data, qc_tensor_nbytes(t)), QC_OK);
    return h;
}

/* Runs one case directory.  bind_inputs: graph inputs become constants. */
static enum case_result run_case(const char *dir, const char *name, bool bind_inputs,
                                 struct qc_backend *be, double *worst, char *why, size_t whylen)
{
    char path[4096];
    struct qc_graph *g = NULL;
    struct qc_plan *p = NULL;
    struct qc_tensor *in[16] = { NULL }, *want = NULL, *got = NULL;
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
    /* qc_plan_backend_can_run also counts shape-subgraph ops (Gather, Slice,
     * Cast on shapes) that the plan folds on the CPU: only a plan the
     * backend refuses is a case without kernels */
    if (st != QC_OK && !qc_plan_backend_can_run(g, be)) {
        missing_ops(g, be, why, whylen);
        res = CASE_NOKERNEL;
        goto out;
    }
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
            st = be->ops->upload(be, t->data, in[i]->data, qc_tensor_nbytes(t));
            ck_assert_msg(st == QC_OK, "%s: upload of input %d", name, i);
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
        got = output_to_host(p, g, be, k);
        if (!output_matches(name, k, got, want, worst))
            res = CASE_FAIL;
        qc_tensor_free(got);
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

/* Appends " name" to the growing list *buf of *len bytes. */
static void list_add(char **buf, size_t *len, const char *name)
{
    size_t n = strlen(name);
    *buf = realloc(*buf, *len + n + 2);
    ck_assert_ptr_nonnull(*buf);
    (*buf)[*len] = ' ';
    memcpy(*buf + *len + 1, name, n + 1);
    *len += n + 1;
}

static void run_dir(const char *dir, bool bind_inputs, bool allow_skip, int threads,
                    int min_cases, const char *what)
{
    const char *spec = qc_test_backend_spec();
    struct qc_backend *be = NULL;
    char **names;
    char *nk_names = NULL, *sk_names = NULL;
    size_t nk_len = 0, sk_len = 0;
    int n = list_cases(dir, &names), pass = 0, fail = 0, skip = 0, nokernel = 0;
    double worst = 0.0;

    ck_assert_msg(n >= min_cases, "%s: found %d cases in %s", what, n, dir);
    ck_assert_msg(qc_backend_new(spec, threads, &be) == QC_OK, "%s: backend %s", what, spec);
    for (int i = 0; i < n; i++) {
        char why[256];
        enum case_result r = run_case(dir, names[i], bind_inputs, be, &worst, why, sizeof(why));
        if (r == CASE_PASS) {
            pass++;
            printf("ran  %s\n", names[i]);
        } else if (r == CASE_NOKERNEL) {
            nokernel++;
            printf("skip %s (no %s kernel for %s)\n", names[i], spec, why);
            list_add(&nk_names, &nk_len, names[i]);
        } else if (r == CASE_SKIP && allow_skip) {
            skip++;
            printf("skip %s (%s)\n", names[i], why);
            list_add(&sk_names, &sk_len, names[i]);
        } else {
            if (r == CASE_SKIP)
                printf("FAIL %s: refused (%s)\n", names[i], why);
            fail++;
        }
    }
    printf("%s on %s (%d threads): %d passed, %d failed, %d skipped, %d without %s kernels; "
           "worst relative error %.3g\n", what, spec, threads, pass, fail, skip, nokernel, spec,
           worst);
    if (nokernel || skip)
        printf("%s on %s: %d skipped; without %s kernels:%s; refused:%s\n", what, spec,
               nokernel + skip, spec, nokernel ? nk_names : " none", skip ? sk_names : " none");
    fflush(stdout);
    free(nk_names);
    free(sk_names);
    qc_backend_free(be);
    free_list(names, n);
    ck_assert_msg(fail == 0, "%s: %d cases failed", what, fail);
    ck_assert_msg(pass >= min_cases, "%s: only %d cases ran", what, pass);
}

START_TEST(test_fixtures)
{
    char dir[4096];
    qc_test_path(dir, sizeof(dir), "testdata");
    /* every fixture must run: none may be refused (a device backend may lack
     * some ops: those cases are listed); 1 and 2 threads take
     * different paths through the kernels (serial vs split over images);
     * a device backend's kernels do not depend on CPU threads: one run */
    run_dir(dir, false, false, 1, 30, "fixtures");
    if (strcmp(qc_test_backend_spec(), "cpu") == 0)
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
