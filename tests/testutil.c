/*
 * testutil.c - helpers shared by the Check suites (see testutil.h).
 */
#include <config.h>

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *qc_test_path(char *buf, size_t len, const char *rel)
{
    const char *top = getenv("top_srcdir");
    if (!top)
        top = getenv("srcdir");
    snprintf(buf, len, "%s/%s", top ? top : ".", rel);
    return buf;
}

double qc_test_rel_err(const float *a, const float *b, int64_t n)
{
    double max_diff = 0.0, max_ref = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(a[i]) != isnan(b[i]))
            return INFINITY;
        if (isnan(a[i]))
            continue;
        if (d > max_diff)
            max_diff = d;
        if (fabs((double)b[i]) > max_ref)
            max_ref = fabs((double)b[i]);
    }
    return max_diff / (max_ref > 1e-30 ? max_ref : 1e-30);
}

const char *qc_test_tmpfile(char *buf, size_t len, const void *data, size_t nbytes)
{
    int fd;
    const char *dir = getenv("TMPDIR");
    snprintf(buf, len, "%s/qc_test_XXXXXX", dir ? dir : "/tmp");
    fd = mkstemp(buf);
    ck_assert_int_ge(fd, 0);
    if (nbytes)
        ck_assert_int_eq(write(fd, data, nbytes), (ssize_t)nbytes);
    ck_assert_int_eq(close(fd), 0);
    return buf;
}

/* ---- hand-built graphs ------------------------------------------------- */

#include <string.h>

#include "ir/graph.h"

struct qc_graph *qc_test_graph(int64_t opset)
{
    struct qc_graph *g;
    ck_assert_int_eq(qc_graph_new(&g), QC_OK);
    g->path = qc_strdup("test.onnx");
    g->ir_version = 8;
    ck_assert_int_eq(qc_graph_add_opset(g, "", opset), QC_OK);
    return g;
}

/* Splits a comma list into value indices (-1 for empty items). */
static int split_values(struct qc_graph *g, const char *list, int **out)
{
    int n = 0, *idx = NULL;
    const char *p = list;
    if (!list[0]) {
        *out = qc_malloc(sizeof(int));
        return 0;
    }
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[256];
        ck_assert_uint_lt(len, sizeof(name));
        memcpy(name, p, len);
        name[len] = '\0';
        idx = qc_realloc(idx, (size_t)(n + 1) * sizeof(int));
        ck_assert_ptr_nonnull(idx);
        if (len == 0)
            idx[n] = -1;
        else
            ck_assert_int_eq(qc_graph_value(g, name, &idx[n]), QC_OK);
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    *out = idx;
    return n;
}

int qc_test_node(struct qc_graph *g, const char *op, const char *name, const char *ins,
                 const char *outs)
{
    int i;
    struct qc_node *n;
    ck_assert_int_eq(qc_graph_add_node(g, &i), QC_OK);
    n = &g->nodes[i];
    n->op_type = qc_strdup(op);
    n->name = qc_strdup(name);
    n->domain = qc_strdup("");
    n->n_in = split_values(g, ins, &g->nodes[i].in);
    n = &g->nodes[i];
    n->n_out = split_values(g, outs, &g->nodes[i].out);
    return i;
}

void qc_test_input(struct qc_graph *g, const char *name, enum qc_dtype dt, int ndim,
                   const int64_t *dims)
{
    int v;
    ck_assert_int_eq(qc_graph_value(g, name, &v), QC_OK);
    g->values[v].dtype = dt;
    g->values[v].has_shape = true;
    g->values[v].shape = qc_shape_make(ndim, dims);
    g->values[v].is_input = true;
    if (ndim > 0 && dims[0] < 0)
        g->values[v].dim_param[0] = qc_strdup("N");
    g->inputs = qc_realloc(g->inputs, (size_t)(g->n_inputs + 1) * sizeof(int));
    g->inputs[g->n_inputs++] = v;
}

void qc_test_output(struct qc_graph *g, const char *name)
{
    int v;
    ck_assert_int_eq(qc_graph_value(g, name, &v), QC_OK);
    g->values[v].is_output = true;
    g->outputs = qc_realloc(g->outputs, (size_t)(g->n_outputs + 1) * sizeof(int));
    g->outputs[g->n_outputs++] = v;
}

void qc_test_init_f32(struct qc_graph *g, const char *name, int ndim, const int64_t *dims)
{
    int v;
    struct qc_shape s = qc_shape_make(ndim, dims);
    ck_assert_int_eq(qc_graph_value(g, name, &v), QC_OK);
    ck_assert_int_eq(qc_tensor_new(QC_DTYPE_F32, &s, &g->values[v].init), QC_OK);
    g->values[v].dtype = QC_DTYPE_F32;
    for (int64_t i = 0; i < qc_shape_nelem(&s); i++)
        qc_tensor_f32(g->values[v].init)[i] = 0.01f * (float)i;
}

void qc_test_init_i64(struct qc_graph *g, const char *name, int n, const int64_t *vals)
{
    int v;
    int64_t d = n;
    struct qc_shape s = qc_shape_make(1, &d);
    ck_assert_int_eq(qc_graph_value(g, name, &v), QC_OK);
    ck_assert_int_eq(qc_tensor_new(QC_DTYPE_I64, &s, &g->values[v].init), QC_OK);
    g->values[v].dtype = QC_DTYPE_I64;
    for (int i = 0; i < n; i++)
        qc_tensor_i64(g->values[v].init)[i] = vals[i];
}

static void add_attr(struct qc_graph *g, int node, struct qc_attr *a)
{
    ck_assert_int_eq(qc_attrs_add(&g->nodes[node].attrs, a), QC_OK);
}

void qc_test_attr_int(struct qc_graph *g, int node, const char *name, int64_t v)
{
    struct qc_attr a;
    memset(&a, 0, sizeof(a));
    a.name = qc_strdup(name);
    a.type = QC_ATTR_INT;
    a.i = v;
    add_attr(g, node, &a);
}

void qc_test_attr_ints(struct qc_graph *g, int node, const char *name, int n,
                       const int64_t *v)
{
    struct qc_attr a;
    memset(&a, 0, sizeof(a));
    a.name = qc_strdup(name);
    a.type = QC_ATTR_INTS;
    a.n = n;
    a.ints = qc_malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    for (int i = 0; i < n; i++)
        a.ints[i] = v[i];
    add_attr(g, node, &a);
}
