/*
 * int_emit.c - the integer export's small helpers (vectors, names, labels,
 * shapes, notes) and what adds to the new graph: values, nodes, attributes,
 * constants, Casts.
 */
#include <config.h>

#include "int_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* ---- small helpers ------------------------------------------------------------------- */

double *qc_int_dvec(int64_t n, double v)
{
    double *d = qc_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (d)
        for (int64_t i = 0; i < n; i++)
            d[i] = v;
    return d;
}

bool qc_int_uniform(const double *a, int64_t n)
{
    for (int64_t i = 1; i < n; i++)
        if (a[i] != a[0])
            return false;
    return true;
}

const char *qc_int_vname(const struct ix *x, int v)
{
    return x->g->values[v].name;
}

const char *qc_int_label(const struct ix *x, int node)
{
    return qc_node_label(x->g, &x->g->nodes[node]);
}

const struct qc_shape *qc_int_shape_of(struct ix *x, int v)
{
    struct qc_tensor *t = qc_plan_value(x->plan, v);
    return t ? &t->shape : NULL;
}

enum qc_status qc_int_notes_add(struct qc_int_notes *ns, const char *node, const char *text)
{
    if (ns->n == ns->cap) {
        int cap = ns->cap ? 2 * ns->cap : 32;
        struct qc_int_note *v = qc_realloc(ns->v, (size_t)cap * sizeof(*v));
        if (!v)
            return QC_ERR_NOMEM;
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n].node = qc_strdup(node);
    ns->v[ns->n].text = qc_strdup(text);
    if (!ns->v[ns->n].node || !ns->v[ns->n].text) {
        qc_free(ns->v[ns->n].node);
        qc_free(ns->v[ns->n].text);
        return QC_ERR_NOMEM;
    }
    ns->n++;
    return QC_OK;
}

enum qc_status qc_int_note(struct ix *x, const char *node, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    if (!x->notes)
        return QC_OK;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return qc_int_notes_add(x->notes, node, buf);
}

void qc_int_notes_free(struct qc_int_notes *notes)
{
    if (!notes)
        return;
    for (int i = 0; i < notes->n; i++) {
        qc_free(notes->v[i].node);
        qc_free(notes->v[i].text);
    }
    qc_free(notes->v);
    memset(notes, 0, sizeof(*notes));
}

/* ---- emitting nodes and constants ---------------------------------------------------- */

static enum qc_status new_value(struct ix *x, const char *base, const char *suffix,
                                enum qc_dtype dt, int *v)
{
    char name[512];
    enum qc_status st;
    qc_graph_unique_name(x->g, base, suffix, name, sizeof(name));
    st = qc_graph_value(x->g, name, v);
    if (st == QC_OK)
        x->g->values[*v].dtype = dt;
    return st;
}

/* Appends op(in) -> out (a new value of dtype dt, or `target` when >= 0). */
enum qc_status qc_int_emit(struct ix *x, const char *op, const char *base, const int *in, int n_in,
                           enum qc_dtype dt, int target, int *out, int *node)
{
    int v = target, idx;
    enum qc_status st;
    if (v < 0) {
        char suffix[64];
        snprintf(suffix, sizeof(suffix), "_%s", op);
        if ((st = new_value(x, base, suffix, dt, &v)) != QC_OK)
            return st;
    }
    /* unnamed nodes (their label is the output name): names add nothing a
     * reader needs and, on small models, a measurable part of the file */
    st = qc_graph_add_op(x->g, op, "", in, n_in, &v, 1, &idx);
    if (st != QC_OK)
        return st;
    if (out)
        *out = v;
    if (node)
        *node = idx;
    return QC_OK;
}

enum qc_status qc_int_attr_int(struct ix *x, int node, const char *name, int64_t v)
{
    return qc_attrs_add_int(&x->g->nodes[node].attrs, name, v);
}

/* Copies every attribute of node `from` onto node `to` (INT, INTS, FLOAT, FLOATS, STRING). */
enum qc_status qc_int_copy_attrs(struct ix *x, int to, int from)
{
    for (int i = 0; i < x->g->nodes[from].attrs.n; i++) {
        const struct qc_attr *s = &x->g->nodes[from].attrs.v[i];
        struct qc_attr a;
        enum qc_status st;
        memset(&a, 0, sizeof(a));
        a.type = s->type;
        a.name = qc_strdup(s->name);
        a.f = s->f;
        a.i = s->i;
        a.n = s->n;
        if (!a.name)
            return QC_ERR_NOMEM;
        switch (s->type) {
        case QC_ATTR_INT: case QC_ATTR_FLOAT:
            break;
        case QC_ATTR_STRING:
            a.s = qc_strdup(s->s ? s->s : "");
            if (!a.s) {
                qc_attr_clear(&a);
                return QC_ERR_NOMEM;
            }
            break;
        case QC_ATTR_INTS:
            a.ints = qc_malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof(int64_t));
            if (!a.ints) {
                qc_attr_clear(&a);
                return QC_ERR_NOMEM;
            }
            if (s->n > 0)
                memcpy(a.ints, s->ints, (size_t)s->n * sizeof(int64_t));
            break;
        case QC_ATTR_FLOATS:
            a.floats = qc_malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof(float));
            if (!a.floats) {
                qc_attr_clear(&a);
                return QC_ERR_NOMEM;
            }
            if (s->n > 0)
                memcpy(a.floats, s->floats, (size_t)s->n * sizeof(float));
            break;
        default:
            qc_attr_clear(&a);
            qc_log_error("%s: node '%s': attribute '%s' cannot be carried into the int export",
                         x->g->path, qc_int_label(x, from), s->name);
            return QC_ERR_UNSUPPORTED;
        }
        if ((st = qc_attrs_add(&x->g->nodes[to].attrs, &a)) != QC_OK)
            return st;
    }
    return QC_OK;
}

/* A constant of dtype dt: a scalar when every entry is equal (or n == 1), else a
 * per-channel vector shaped [1, c, 1, ...] for a tensor of `rank` dims (rank <= 1: [c]). */
enum qc_status qc_int_constant(struct ix *x, const char *base, const char *suffix, enum qc_dtype dt,
                               const double *vals, int64_t n, int rank, int *v)
{
    struct qc_shape s;
    struct qc_tensor *t;
    char name[512];
    enum qc_status st;
    bool scalar = n <= 1 || qc_int_uniform(vals, n);
    if (scalar) {
        s = qc_shape_make(0, NULL);
    } else {
        int64_t dims[QC_MAX_DIMS];
        int r = rank < 2 ? 1 : rank;
        for (int i = 0; i < r; i++)
            dims[i] = 1;
        dims[r < 2 ? 0 : 1] = n;
        s = qc_shape_make(r, dims);
    }
    if ((st = qc_tensor_new(dt, &s, &t)) != QC_OK)
        return st;
    for (int64_t i = 0; i < (scalar ? 1 : n); i++) {
        switch (dt) {
        case QC_DTYPE_F32: qc_tensor_f32(t)[i] = (float)vals[i]; break;
        case QC_DTYPE_I64: ((int64_t *)t->data)[i] = (int64_t)vals[i]; break;
        case QC_DTYPE_I32: ((int32_t *)t->data)[i] = (int32_t)vals[i]; break;
        case QC_DTYPE_U8:  ((uint8_t *)t->data)[i] = (uint8_t)vals[i]; break;
        default: qc_tensor_free(t); return QC_ERR_INTERNAL;
        }
    }
    qc_graph_unique_name(x->g, base, suffix, name, sizeof(name));
    return qc_graph_add_initializer(x->g, name, t, v);
}

enum qc_status qc_int_scalar_const(struct ix *x, const char *base, const char *suffix,
                                   enum qc_dtype dt, double val, int *v)
{
    return qc_int_constant(x, base, suffix, dt, &val, 1, 0, v);
}

/* 1-D int64 initializer (axes). */
enum qc_status qc_int_axes_const(struct ix *x, const char *base, const int64_t *ax, int n, int *v)
{
    int64_t len = n;
    struct qc_shape s = qc_shape_make(1, &len);
    struct qc_tensor *t;
    char name[512];
    enum qc_status st = qc_tensor_new(QC_DTYPE_I64, &s, &t);
    if (st != QC_OK)
        return st;
    memcpy(t->data, ax, (size_t)n * sizeof(int64_t));
    qc_graph_unique_name(x->g, base, "_axes", name, sizeof(name));
    return qc_graph_add_initializer(x->g, name, t, v);
}

enum qc_status qc_int_cast(struct ix *x, const char *base, int in, enum qc_dtype to, int target,
                           int *out)
{
    int node;
    enum qc_status st = qc_int_emit(x, "Cast", base, &in, 1, to, target, out, &node);
    return st == QC_OK ? qc_int_attr_int(x, node, "to", (int64_t)to) : st;
}
