/*
 * test_ops.c - per-op forward results against independent oracles:
 *   - every fixture testdata/<case>/model.onnx (PyTorch exports at opsets 11,
 *     13, 17 plus hand-built models) whose test_data_set_0 outputs were
 *     computed by ONNX Runtime;
 *   - the ONNX backend node tests shipped in the PyPI onnx package, generated
 *     by tests/gen_node_tests.py into $QC_NODE_TESTS (every case whose ops
 *     qatconv supports).
 * Float outputs must agree within a normwise relative error (max|ours - ref|
 * / max|ref|) of FIXTURE_TOL / NODE_TOL below; integer and bool outputs
 * exactly.
 *
 * Fixtures feed their graph input at runtime (batch taken from the data);
 * node tests bind every input as a constant, so ops whose shape depends on
 * an input (Reshape, Slice, Pad ...) can run.  A node test qatconv refuses at
 * load or plan time (an unsupported attribute value, dtype or mode) is
 * skipped with its reason; a node test that runs must match.
 *
 * The backend is $QC_TEST_BACKEND ("cpu" when unset): on "cuda" (the real one
 * or the emulator of tests/cuda_emu) the plan holds its values in device
 * memory, inputs are uploaded and outputs downloaded, and a case the plan
 * refuses for an op the backend has no kernel for (QDQ and integer ops,
 * ConvTranspose, Resize ...) is skipped.
 *
 * The figures are enforced, not observed: tests/ops_<backend>.expect holds
 * the exact number of fixtures and node tests that must pass on that backend
 * and every case that is skipped, with its reason, and tests/
 * node_tests_dropped.expect every case of the onnx package that
 * gen_node_tests.py does not write (its DROPPED file).  A case that starts
 * (or stops) being skipped or dropped, or a count that moves, fails the test
 * and prints the difference; the counts depend on the pinned oracle versions
 * (scripts/install-deps), not on the machine, so a version bump is one
 * reviewed edit of those files.
 */
#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_io.h"
#include "backend/backend.h"
#include "ir/graph.h"
#include "plan/plan.h"
#include "gradcheck.h"
#include "testutil.h"

/*
 * Tolerances.  Measured with the pinned oracles on an AVX-512 CPU (AMD EPYC,
 * OpenBLAS's Cooperlake kernels), and with OPENBLAS_CORETYPE=Haswell, Zen and
 * Prescott (AVX2-only and SSE kernels: other blockings, so other summation
 * orders and other roundings of the same sums), on cpu and on the emulated
 * cuda backend: the worst fixture error is 2.6e-7 to 3.2e-7, the worst
 * node-test error 4.5e-7 (a few float32 ulp).  A real GPU fuses
 * multiply-adds and reduces in yet another order; such differences stay a few
 * ulp of the largest partial sum, growing slowly with the reduction length.
 * 1e-5 keeps a margin of over 20x above every measured case for that, while
 * an actual kernel error (a wrong index, a missed padding, a stale buffer) is
 * orders of magnitude larger.  (It was a blanket 1e-4.)
 */
#define FIXTURE_TOL 1e-5
#define NODE_TOL    1e-5

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
                           const struct qc_tensor *want, double tol, double *worst)
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
        if (!(e <= tol)) {
            printf("FAIL %s: output %d relative error %.3g > %.0e\n", name, k, e, tol);
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
        if (d->fold == QC_FOLD_ALWAYS || qc_backend_kernel(be, (enum qc_op_kind)n->kind))
            continue;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(g->nodes[j].op_type, n->op_type) == 0 &&
                   !qc_backend_kernel(be, (enum qc_op_kind)g->nodes[j].kind);
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
        ck_assert_int_eq(qc_backend_download(be, h->data, t->data, qc_tensor_nbytes(t)), QC_OK);
    return h;
}

/* Runs one case directory.  bind_inputs: graph inputs become constants. */
static enum case_result run_case(const char *dir, const char *name, bool bind_inputs,
                                 struct qc_backend *be, double tol, double *worst, char *why,
                                 size_t whylen)
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
            st = qc_backend_upload(be, t->data, in[i]->data, qc_tensor_nbytes(t));
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
        if (!output_matches(name, k, got, want, tol, worst))
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

/* The expected figures of one suite on one backend, from its .expect file. */
struct expect {
    int    passed;       /* "<suite> passed N": cases that run and match        */
    int    cases;        /* "<suite> cases N": cases found (-1: not checked)    */
    char **skip;         /* "<suite> skip CASE REASON": "CASE REASON" strings    */
    int    n_skip;
};

static void str_push(char ***v, int *n, const char *str)
{
    *v = realloc(*v, (size_t)(*n + 1) * sizeof(**v));
    ck_assert_ptr_nonnull(*v);
    (*v)[*n] = strdup(str);
    ck_assert_ptr_nonnull((*v)[*n]);
    (*n)++;
}

/* Line without its trailing newline and white space. */
static char *chomp(char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
        line[--n] = '\0';
    return line;
}

/*
 * Reads the lines of suite from path: "<suite> passed N", "<suite> cases N"
 * and "<suite> skip CASE REASON"; '#' starts a comment line.  Every line of
 * the file must parse; a suite without a passed line is an error.
 */
static void expect_read(const char *path, const char *suite, struct expect *ex)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int lineno = 0;
    size_t sl = strlen(suite);

    memset(ex, 0, sizeof(*ex));
    ex->passed = -1;
    ex->cases = -1;
    ck_assert_msg(f != NULL, "cannot read the expected figures %s", path);
    while (fgets(line, sizeof(line), f)) {
        char *rest;
        lineno++;
        chomp(line);
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (strncmp(line, suite, sl) != 0 || line[sl] != ' ')
            continue;
        rest = line + sl + 1;
        if (strncmp(rest, "passed ", 7) == 0)
            ex->passed = atoi(rest + 7);
        else if (strncmp(rest, "cases ", 6) == 0)
            ex->cases = atoi(rest + 6);
        else if (strncmp(rest, "skip ", 5) == 0 && strchr(rest + 5, ' '))
            str_push(&ex->skip, &ex->n_skip, rest + 5);
        else
            ck_abort_msg("%s:%d: cannot parse \"%s\"", path, lineno, line);
    }
    fclose(f);
    ck_assert_msg(ex->passed >= 0, "%s: no \"%s passed N\" line", path, suite);
}

static bool str_in(char **v, int n, const char *str)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i], str) == 0)
            return true;
    return false;
}

/*
 * Compares the list got with the list want (the same strings, any order);
 * prints each one missing from either side with label, returns the number
 * of differences.
 */
static int list_diff(const char *label, char **got, int n_got, char **want, int n_want)
{
    int diff = 0;
    for (int i = 0; i < n_got; i++)
        if (!str_in(want, n_want, got[i])) {
            printf("FAIL %s: not in the expected list: %s\n", label, got[i]);
            diff++;
        }
    for (int i = 0; i < n_want; i++)
        if (!str_in(got, n_got, want[i])) {
            printf("FAIL %s: expected, did not happen: %s\n", label, want[i]);
            diff++;
        }
    return diff;
}

static void strv_free(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* tests/ops_<backend>.expect: the backend spec up to its ':' ("cuda:0" -> cuda) */
static void expect_path(char *buf, size_t len)
{
    const char *spec = qc_test_backend_spec();
    char rel[128];
    snprintf(rel, sizeof(rel), "tests/ops_%.*s.expect", (int)strcspn(spec, ":"), spec);
    qc_test_path(buf, len, rel);
}

/*
 * Runs every case of dir on the test backend and checks the outcome against
 * the expected figures of suite: exactly ex.passed cases pass, none fails,
 * and the skipped ones (refused, or without kernels on this backend) are
 * exactly the expected "CASE REASON" list.  allow_refuse: a case qatconv
 * refuses at load, plan or forward time is a skip (else a failure).
 */
static void run_dir(const char *dir, bool bind_inputs, bool allow_refuse, int threads,
                    double tol, const char *suite)
{
    const char *spec = qc_test_backend_spec();
    struct qc_backend *be = NULL;
    struct expect ex;
    char **names, **skipped = NULL, path[4096];
    int n = list_cases(dir, &names), pass = 0, fail = 0, n_skipped = 0, diff;
    double worst = 0.0;
    char worst_name[256] = "none";

    expect_path(path, sizeof(path));
    expect_read(path, suite, &ex);
    ck_assert_msg(qc_backend_new(spec, threads, &be) == QC_OK, "%s: backend %s", suite, spec);
    for (int i = 0; i < n; i++) {
        char why[256], entry[600];
        double w = 0.0;
        enum case_result r = run_case(dir, names[i], bind_inputs, be, tol, &w, why, sizeof(why));
        if (w > worst) {
            worst = w;
            snprintf(worst_name, sizeof(worst_name), "%s", names[i]);
        }
        if (r == CASE_PASS) {
            pass++;
            printf("ran  %s\n", names[i]);
            continue;
        }
        if (r == CASE_SKIP && !allow_refuse) {
            printf("FAIL %s: refused (%s)\n", names[i], why);
            fail++;
            continue;
        }
        if (r == CASE_FAIL) {
            fail++;
            continue;
        }
        if (r == CASE_NOKERNEL)
            snprintf(entry, sizeof(entry), "%s no %s kernel for %s", names[i], spec, why);
        else
            snprintf(entry, sizeof(entry), "%s %s", names[i], why);
        printf("skip %s\n", entry);
        str_push(&skipped, &n_skipped, entry);
    }
    printf("%s on %s (%d threads): %d cases, %d passed, %d failed, %d skipped; "
           "worst relative error %.3g (%s), tolerance %.0e\n", suite, spec, threads, n, pass,
           fail, n_skipped, worst, worst_name, tol);
    diff = list_diff(suite, skipped, n_skipped, ex.skip, ex.n_skip);
    fflush(stdout);
    strv_free(skipped, n_skipped);
    strv_free(ex.skip, ex.n_skip);
    qc_backend_free(be);
    free_list(names, n);
    ck_assert_msg(fail == 0, "%s: %d cases failed", suite, fail);
    ck_assert_msg(ex.cases < 0 || n == ex.cases, "%s: %d cases in %s, %s expects %d", suite, n,
                  dir, path, ex.cases);
    ck_assert_msg(diff == 0, "%s: the skipped cases differ from %s in %d places (listed above)",
                  suite, path, diff);
    ck_assert_msg(pass == ex.passed, "%s: %d cases passed, %s expects %d", suite, pass, path,
                  ex.passed);
}

/*
 * The cases gen_node_tests.py dropped (node-tests/DROPPED, "CASE REASON"
 * after a "# onnx ..." versions line) against tests/node_tests_dropped.expect.
 */
static void check_dropped(const char *dir)
{
    char path[4096], line[1024], want_ver[256] = "", got_ver[256] = "";
    char **got = NULL, **want = NULL;
    int n_got = 0, n_want = 0, diff;
    FILE *f;

    for (int side = 0; side < 2; side++) {
        char *ver = side ? want_ver : got_ver;
        if (side)
            qc_test_path(path, sizeof(path), "tests/node_tests_dropped.expect");
        else
            snprintf(path, sizeof(path), "%s/DROPPED", dir);
        f = fopen(path, "r");
        ck_assert_msg(f != NULL, "cannot read %s (make check writes DROPPED with the node tests)",
                      path);
        while (fgets(line, sizeof(line), f)) {
            chomp(line);
            if (strncmp(line, "# onnx ", 7) == 0)
                snprintf(ver, 256, "%.250s", line + 2);
            else if (line[0] != '#' && line[0] != '\0')
                str_push(side ? &want : &got, side ? &n_want : &n_got, line);
        }
        fclose(f);
    }
    printf("node tests dropped by gen_node_tests.py: %d (%s); expected %d (%s)\n", n_got,
           got_ver, n_want, want_ver);
    diff = list_diff("node tests dropped", got, n_got, want, n_want);
    strv_free(got, n_got);
    strv_free(want, n_want);
    ck_assert_msg(diff == 0, "the node tests gen_node_tests.py dropped (%s) differ from "
                  "tests/node_tests_dropped.expect (%s) in %d places (listed above)", got_ver,
                  want_ver, diff);
}

START_TEST(test_fixtures)
{
    char dir[4096];
    qc_test_path(dir, sizeof(dir), "testdata");
    /* every fixture must run: none may be refused (a device backend lacks
     * some ops: those cases are in the expected skip list); 1 and 2 threads
     * take different paths through the kernels (serial vs split over images);
     * a device backend's kernels do not depend on CPU threads: one run */
    run_dir(dir, false, false, 1, FIXTURE_TOL, "fixtures");
    if (strcmp(qc_test_backend_spec(), "cpu") == 0)
        run_dir(dir, false, false, 2, FIXTURE_TOL, "fixtures");
}
END_TEST

START_TEST(test_onnx_node_tests)
{
    const char *dir = getenv("QC_NODE_TESTS");
    /* make check generates them (tests/gen_node_tests.py); never silently skip */
    ck_assert_msg(dir && dir[0], "QC_NODE_TESTS is not set (run through make check)");
    check_dropped(dir);
    run_dir(dir, true, true, 1, NODE_TOL, "node-tests");
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
