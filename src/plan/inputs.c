/*
 * inputs.c - the data input bound to the data pipeline and put back before
 * writing (see inputs.h).
 *
 * Rebatching works on the graph itself, so every later plan (training,
 * evaluation, the exports' own checks) runs at any batch: a CPU plan at
 * batch 1 tells which values carry the batch (not constant, dim 0 of 1),
 * the Reshapes reading such a value with a constant shape get their first
 * entry rewritten (in place when the shape initializer serves only that
 * node, else through a new initializer), and a plan at batch 2 checks the
 * result.  Everything changed is recorded in the binding, by value index
 * (indices are stable: the graph only appends values), so unbinding finds
 * it again after the exports rewrote the graph around it.
 */
#include <config.h>

#include "inputs.h"

#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "ops/op.h"
#include "plan.h"
#include "util/log.h"

/* A symbolic dim given a size. */
struct bound_dim {
    int value, dim;
};

/* A Reshape shape constant rewritten for a symbolic batch. */
struct shape_edit {
    int reshape_out;         /* the Reshape's output value (finds the node)   */
    int orig;                /* the shape value it read                        */
    int now;                 /* the one it reads now (== orig: in place)       */
    struct qc_tensor *saved; /* in place: the original data (owned)            */
    struct qc_tensor *data;  /* the rewritten shape, until applied (owned)     */
};

struct qc_input_binding {
    struct bound_dim *dims;
    int n_dims;
    int *batch; /* inputs/outputs whose fixed dim 0 of 1 is "N" */
    int n_batch;
    struct shape_edit *edits;
    int n_edits;
};

int qc_inputs_data(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_inputs; i++)
        if (!g->values[g->inputs[i]].init)
            return g->inputs[i];
    return -1;
}

/* The recipe's Transpose key in its ONNX section: 1, 0, or -1 when absent. */
static enum qc_status recipe_transpose(const struct qc_recipe *r, int *transpose)
{
    *transpose = -1;
    for (int i = 0; r && i < qc_recipe_n_sections(r); i++) {
        const char *sec = qc_recipe_section_name(r, i), *type = NULL;
        int64_t v;
        enum qc_status st;
        if (!qc_recipe_has_key(r, sec, "Type") || !qc_recipe_has_key(r, sec, "Transpose"))
            continue;
        st = qc_recipe_str(r, sec, "Type", "", &type);
        if (st != QC_OK)
            return st;
        if (strcmp(type, "ONNX") != 0)
            continue;
        st = qc_recipe_int(r, sec, "Transpose", 0, &v);
        if (st != QC_OK)
            return st;
        *transpose = v != 0;
        return QC_OK;
    }
    return QC_OK;
}

/* Whether every reader of value v is a Transpose with perm [0,3,1,2]. */
static bool read_through_nchw_transpose(const struct qc_graph *g, int v)
{
    static const int64_t nchw[4] = { 0, 3, 1, 2 };
    int readers = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            const struct qc_attr *perm;
            if (n->in[j] != v)
                continue;
            perm = qc_attr_find(&n->attrs, "perm");
            if (n->kind != QC_OP_TRANSPOSE || !perm || perm->type != QC_ATTR_INTS || perm->n != 4 ||
                memcmp(perm->ints, nchw, sizeof(nchw)) != 0)
                return false;
            readers++;
        }
    }
    return readers > 0;
}

enum qc_status qc_inputs_layout(const struct qc_graph *g, const struct qc_recipe *r,
                                enum qc_input_layout *layout)
{
    int transpose, x = qc_inputs_data(g);
    enum qc_status st = recipe_transpose(r, &transpose);
    *layout = QC_INPUT_CHANNELS_FIRST;
    if (st != QC_OK)
        return st;
    if (transpose >= 0) {
        *layout = transpose ? QC_INPUT_CHANNELS_LAST : QC_INPUT_CHANNELS_FIRST;
        return QC_OK;
    }
    if (x >= 0) {
        const struct qc_value *v = &g->values[x];
        int64_t c = v->shape.ndim == 4 ? v->shape.dims[3] : 0;
        if (v->has_shape && (c == 1 || c == 3 || c == 4) && read_through_nchw_transpose(g, x))
            *layout = QC_INPUT_CHANNELS_LAST;
    }
    return QC_OK;
}

/* Dim index of channels, height and width of a rank-`ndim` input (height
 * -1 for rank 3). */
static void axes_of(int ndim, enum qc_input_layout layout, int *ac, int *ah, int *aw)
{
    bool last = layout == QC_INPUT_CHANNELS_LAST;
    if (ndim == 3) {
        *ah = -1;
        *ac = last ? 2 : 1;
        *aw = last ? 1 : 2;
    } else {
        *ac = last ? 3 : 1;
        *ah = last ? 1 : 2;
        *aw = last ? 2 : 3;
    }
}

bool qc_inputs_geometry(const struct qc_graph *g, enum qc_input_layout layout, int64_t *c,
                        int64_t *h, int64_t *w)
{
    int x = qc_inputs_data(g), ac, ah, aw;
    const struct qc_value *v;
    *c = *h = *w = 0;
    if (x < 0)
        return false;
    v = &g->values[x];
    if (!v->has_shape || (v->shape.ndim != 3 && v->shape.ndim != 4))
        return false;
    axes_of(v->shape.ndim, layout, &ac, &ah, &aw);
    *c = QC_MAX(v->shape.dims[ac], 0);
    *h = ah < 0 ? 1 : QC_MAX(v->shape.dims[ah], 0);
    *w = QC_MAX(v->shape.dims[aw], 0);
    return true;
}

/* ---- the binding record --------------------------------------------------------------------- */

static void binding_free(struct qc_input_binding *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n_edits; i++) {
        qc_tensor_free(b->edits[i].saved);
        qc_tensor_free(b->edits[i].data);
    }
    qc_free(b->edits);
    qc_free(b->batch);
    qc_free(b->dims);
    qc_free(b);
}

static enum qc_status push_dim(struct qc_input_binding *b, int value, int dim)
{
    struct bound_dim *d = qc_realloc(b->dims, (size_t)(b->n_dims + 1) * sizeof(*d));
    if (!d)
        return QC_ERR_NOMEM;
    b->dims = d;
    d[b->n_dims++] = (struct bound_dim){ value, dim };
    return QC_OK;
}

static enum qc_status push_batch(struct qc_input_binding *b, int value)
{
    int *v = qc_realloc(b->batch, (size_t)(b->n_batch + 1) * sizeof(*v));
    if (!v)
        return QC_ERR_NOMEM;
    b->batch = v;
    v[b->n_batch++] = value;
    return QC_OK;
}

/* ---- symbolic sizes ------------------------------------------------------------------------- */

static enum qc_status bind_sizes(struct qc_graph *g, enum qc_input_layout layout, int64_t c,
                                 int64_t h, int64_t w, struct qc_input_binding *b)
{
    int x = qc_inputs_data(g), axis[3];
    int64_t size[3] = { c, h, w };
    struct qc_value *v;
    if (x < 0)
        return QC_OK;
    v = &g->values[x];
    if (!v->has_shape || (v->shape.ndim != 3 && v->shape.ndim != 4))
        return QC_OK;
    axes_of(v->shape.ndim, layout, &axis[0], &axis[1], &axis[2]);
    for (int k = 0; k < 3; k++) {
        enum qc_status st;
        if (axis[k] < 0 || v->shape.dims[axis[k]] > 0 || size[k] <= 0)
            continue;
        st = push_dim(b, x, axis[k]);
        if (st != QC_OK)
            return st;
        v = &g->values[x];
        v->shape.dims[axis[k]] = size[k];
    }
    return QC_OK;
}

/* ---- rebatching ------------------------------------------------------------------------------ */

/* Whether value v is a runtime input whose dim 0 is a fixed 1. */
static bool fixed_batch_one(const struct qc_value *v)
{
    return !v->init && v->has_shape && v->shape.ndim >= 2 && !v->dim_param[0] &&
           v->shape.dims[0] == 1;
}

static const char *shape_text(const struct qc_tensor *t, char *buf, size_t len)
{
    size_t pos = 0;
    int64_t n = qc_tensor_nelem(t);
    buf[0] = '\0';
    for (int64_t i = 0; i < n && pos + 24 < len; i++)
        pos += (size_t)snprintf(buf + pos, len - pos, "%s%lld", i ? "," : "[",
                                (long long)qc_tensor_get_i64(t, i));
    snprintf(buf + pos, len - pos, n ? "]" : "[]");
    return buf;
}

/* The rewrite of Reshape node n (its data carries the batch at batch 1), or
 * nothing when its shape already follows the batch; an error when the
 * shape puts the batch elsewhere. */
static enum qc_status reshape_edit(const struct qc_graph *g, struct qc_plan *p,
                                   const struct qc_node *n, struct qc_input_binding *b)
{
    const struct qc_tensor *s = qc_plan_value(p, n->in[1]);
    const struct qc_tensor *x = qc_plan_value(p, n->in[0]);
    const struct qc_tensor *y = n->n_out > 0 ? qc_plan_value(p, n->out[0]) : NULL;
    int64_t allowzero = 0, first, ne;
    char where[512], sb[256], xb[128];
    struct shape_edit *e;
    struct qc_tensor *t;
    enum qc_status st;

    snprintf(where, sizeof(where), "%s: Reshape '%s'", g->path, qc_node_label(g, n));
    if (!s || !x || !y || qc_tensor_nelem(s) < 1)
        return QC_OK;
    st = qc_attr_int(&n->attrs, where, "allowzero", 0, &allowzero);
    if (st != QC_OK)
        return st;
    ne = qc_tensor_nelem(s);
    first = qc_tensor_get_i64(s, 0);
    if ((first == 0 && !allowzero) || (first == -1 && y->shape.ndim >= 1 && y->shape.dims[0] == 1))
        return QC_OK; /* follows the batch already */
    if (first != 1) {
        qc_log_error("%s: shape %s does not keep the batch axis of its input %s; the model runs "
                     "only at its fixed batch of 1 (train with --batch 1)",
                     where, shape_text(s, sb, sizeof(sb)), qc_shape_str(&x->shape, xb, sizeof(xb)));
        return QC_ERR_UNSUPPORTED;
    }
    if (allowzero) {
        for (int64_t i = 1; i < ne; i++) {
            if (qc_tensor_get_i64(s, i) == -1) {
                qc_log_error("%s: shape %s with allowzero=1 bakes in the batch of 1 and has "
                             "a -1 already; the model runs only at batch 1 (train with "
                             "--batch 1)",
                             where, shape_text(s, sb, sizeof(sb)));
                return QC_ERR_UNSUPPORTED;
            }
        }
    }
    st = qc_tensor_new(QC_DTYPE_I64, &s->shape, &t);
    if (st != QC_OK)
        return st;
    for (int64_t i = 0; i < ne; i++)
        qc_tensor_i64(t)[i] = qc_tensor_get_i64(s, i);
    qc_tensor_i64(t)[0] = allowzero ? -1 : 0;
    e = qc_realloc(b->edits, (size_t)(b->n_edits + 1) * sizeof(*e));
    if (!e) {
        qc_tensor_free(t);
        return QC_ERR_NOMEM;
    }
    b->edits = e;
    e[b->n_edits++] = (struct shape_edit){
        .reshape_out = n->out[0], .orig = n->in[1], .now = -1, .saved = NULL, .data = t
    };
    return QC_OK;
}

/* Values that carry the batch at batch 1 (carried[v]) and the Reshape
 * rewrites, from a CPU plan at batch 1. */
static enum qc_status find_edits(const struct qc_graph *g, struct qc_backend *be, bool *carried,
                                 struct qc_input_binding *b)
{
    struct qc_plan *p = NULL;
    enum qc_status st = qc_plan_new(g, be, 1, &p);
    for (int v = 0; v < g->n_values && st == QC_OK; v++) {
        const struct qc_tensor *t = qc_plan_value(p, v);
        carried[v] = t && !qc_plan_value_is_const(p, v) && t->shape.ndim >= 1 &&
                     t->shape.dims[0] == 1;
    }
    for (int i = 0; i < g->n_nodes && st == QC_OK; i++) {
        const struct qc_node *n = &g->nodes[i];
        if (n->n_in < 1 || n->in[0] < 0 || !carried[n->in[0]])
            continue;
        if (n->kind == QC_OP_RESHAPE && n->n_in >= 2 && n->in[1] >= 0 &&
            qc_plan_value_is_const(p, n->in[1]) && n->n_out > 0 && n->out[0] >= 0) {
            st = reshape_edit(g, p, n, b);
        } else if (n->kind == QC_OP_FLATTEN) {
            int64_t axis = 1;
            char where[512];
            snprintf(where, sizeof(where), "%s: Flatten '%s'", g->path, qc_node_label(g, n));
            st = qc_attr_int(&n->attrs, where, "axis", 1, &axis);
            if (st == QC_OK && axis == 0) {
                qc_log_error("%s: axis 0 folds the batch into one row; the model runs only at "
                             "its fixed batch of 1 (train with --batch 1)",
                             where);
                st = QC_ERR_UNSUPPORTED;
            }
        }
    }
    qc_plan_free(p);
    return st;
}

/* Applies the recorded Reshape rewrites to g. */
static enum qc_status apply_edits(struct qc_graph *g, struct qc_input_binding *b)
{
    for (int i = 0; i < b->n_edits; i++) {
        struct shape_edit *e = &b->edits[i];
        struct qc_value *sv = &g->values[e->orig];
        int node = g->values[e->reshape_out].producer;
        enum qc_status st;
        if (node < 0)
            return QC_ERR_INTERNAL;
        if (sv->init && sv->init->dtype == QC_DTYPE_I64 &&
            qc_tensor_nelem(sv->init) == qc_tensor_nelem(e->data) &&
            qc_graph_value_uses(g, e->orig) == 1) {
            /* the shape serves this node only: rewritten in place */
            st = qc_tensor_clone(sv->init, &e->saved);
            if (st != QC_OK)
                return st;
            memcpy(sv->init->data, e->data->data, qc_tensor_nbytes(e->data));
            e->now = e->orig;
        } else {
            char name[512];
            qc_graph_unique_name(g, sv->name, "_batch", name, sizeof(name));
            st = qc_graph_add_initializer(g, name, e->data, &e->now);
            e->data = NULL; /* owned by the graph (also on failure) */
            if (st != QC_OK)
                return st;
            g->nodes[node].in[1] = e->now;
        }
    }
    return QC_OK;
}

/* Dim 0 of value v becomes the symbolic "N". */
static enum qc_status make_batch_symbolic(struct qc_graph *g, int v, struct qc_input_binding *b)
{
    char *name = qc_strdup("N");
    enum qc_status st = name ? push_batch(b, v) : QC_ERR_NOMEM;
    if (st != QC_OK) {
        qc_free(name);
        return st;
    }
    g->values[v].dim_param[0] = name;
    g->values[v].shape.dims[0] = -1;
    return QC_OK;
}

/* A plan at batch 2: every value that carried the batch carries it. */
static enum qc_status check_batch2(const struct qc_graph *g, struct qc_backend *be,
                                   const bool *carried, int n_carried)
{
    struct qc_plan *p = NULL;
    enum qc_status st = qc_plan_new(g, be, 2, &p);
    if (st != QC_OK) {
        qc_log_error("%s: the model's input has a fixed batch of 1 and the graph does not run at "
                     "another batch size (the node above bakes it in); train with --batch 1",
                     g->path);
        return st;
    }
    for (int i = 0; i < g->n_nodes && st == QC_OK; i++) {
        const struct qc_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_out && st == QC_OK; j++) {
            int v = n->out[j];
            const struct qc_tensor *t = v >= 0 && v < n_carried && carried[v] ? qc_plan_value(p, v)
                                                                              : NULL;
            if (!t || (t->shape.ndim >= 1 && t->shape.dims[0] == 2))
                continue;
            qc_log_error("%s: %s '%s' does not keep the batch axis when the batch is not 1; the "
                         "model runs only at its fixed batch of 1 (train with --batch 1)",
                         g->path, n->op_type, qc_node_label(g, n));
            st = QC_ERR_UNSUPPORTED;
        }
    }
    qc_plan_free(p);
    return st;
}

static enum qc_status rebatch(struct qc_graph *g, struct qc_input_binding *b)
{
    struct qc_backend *be = NULL;
    bool *carried = NULL;
    int n_values = g->n_values, n_fixed = 0;
    enum qc_status st;

    for (int i = 0; i < g->n_inputs; i++) {
        const struct qc_value *v = &g->values[g->inputs[i]];
        if (v->init || !v->has_shape || v->shape.ndim < 1)
            continue;
        if (v->dim_param[0] || v->shape.dims[0] <= 0)
            return QC_OK; /* a symbolic batch axis exists: the plan uses it */
        n_fixed += fixed_batch_one(v);
    }
    if (n_fixed == 0)
        return QC_OK;
    carried = qc_calloc((size_t)n_values + 1, sizeof(bool));
    if (!carried)
        return QC_ERR_NOMEM;
    st = qc_backend_new("cpu", 1, &be);
    if (st == QC_OK)
        st = find_edits(g, be, carried, b);
    if (st == QC_OK)
        st = apply_edits(g, b);
    for (int i = 0; i < g->n_inputs && st == QC_OK; i++)
        if (fixed_batch_one(&g->values[g->inputs[i]]))
            st = make_batch_symbolic(g, g->inputs[i], b);
    for (int i = 0; i < g->n_outputs && st == QC_OK; i++) {
        const struct qc_value *v = &g->values[g->outputs[i]];
        if (g->outputs[i] < n_values && carried[g->outputs[i]] && v->has_shape &&
            v->shape.ndim >= 1 && !v->dim_param[0] && v->shape.dims[0] == 1)
            st = make_batch_symbolic(g, g->outputs[i], b);
    }
    if (st == QC_OK)
        st = check_batch2(g, be, carried, n_values);
    qc_backend_free(be);
    qc_free(carried);
    return st;
}

enum qc_status qc_inputs_bind(struct qc_graph *g, enum qc_input_layout layout, int64_t c, int64_t h,
                              int64_t w, bool rebatch_it, struct qc_input_binding **out)
{
    struct qc_input_binding *b = qc_calloc(1, sizeof(*b));
    enum qc_status st;
    *out = NULL;
    if (!b)
        return QC_ERR_NOMEM;
    st = bind_sizes(g, layout, c, h, w, b);
    if (st == QC_OK && rebatch_it)
        st = rebatch(g, b);
    if (st != QC_OK) {
        qc_inputs_unbind(g, b, false);
        return st;
    }
    if (b->n_dims == 0 && b->n_batch == 0 && b->n_edits == 0) {
        binding_free(b);
        return QC_OK;
    }
    *out = b;
    return QC_OK;
}

bool qc_inputs_rebatched(const struct qc_input_binding *b)
{
    return b && b->n_batch > 0;
}

/* Puts the original shape constant of edit e back, when the graph still
 * holds what the binding wrote. */
static void undo_edit(struct qc_graph *g, struct shape_edit *e)
{
    if (e->now < 0)
        return;
    if (e->now == e->orig) {
        struct qc_tensor *t = g->values[e->orig].init;
        if (t && e->saved && t->dtype == QC_DTYPE_I64 &&
            qc_tensor_nelem(t) == qc_tensor_nelem(e->saved))
            memcpy(t->data, e->saved->data, qc_tensor_nbytes(t));
        return;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        struct qc_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] == e->now)
                n->in[j] = e->orig;
    }
    /* the new initializer has no reader left: it is no longer written */
    if (qc_graph_value_uses(g, e->now) == 0) {
        qc_tensor_free(g->values[e->now].init);
        g->values[e->now].init = NULL;
    }
}

void qc_inputs_unbind(struct qc_graph *g, struct qc_input_binding *b, bool dynamic_batch)
{
    if (!b)
        return;
    for (int i = 0; i < b->n_dims; i++)
        g->values[b->dims[i].value].shape.dims[b->dims[i].dim] = -1;
    if (!dynamic_batch) {
        for (int i = 0; i < b->n_batch; i++) {
            struct qc_value *v = &g->values[b->batch[i]];
            qc_free(v->dim_param[0]);
            v->dim_param[0] = NULL;
            v->shape.dims[0] = 1;
        }
        for (int i = b->n_edits - 1; i >= 0; i--)
            undo_edit(g, &b->edits[i]);
    }
    binding_free(b);
}

/* ---- element types of the written model ---------------------------------------------------- */

/* Calls fn on every float32 tensor of g: initializers and tensor attributes. */
static void each_float_tensor(struct qc_graph *g, void (*fn)(struct qc_tensor *t, int half),
                              int half)
{
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].init && g->values[v].init->dtype == QC_DTYPE_F32)
            fn(g->values[v].init, half);
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].attrs.n; k++) {
            struct qc_attr *a = &g->nodes[i].attrs.v[k];
            if (a->type == QC_ATTR_TENSOR && a->t && a->t->dtype == QC_DTYPE_F32)
                fn(a->t, half);
        }
}

static void set_file_dtype(struct qc_tensor *t, int half)
{
    t->file_dtype = half;
}

/* A new float32 value named after value v ("<name>_float32"). */
static enum qc_status float32_twin(struct qc_graph *g, int v, int *nv)
{
    char name[512];
    enum qc_status st;
    qc_graph_unique_name(g, g->values[v].name, "_float32", name, sizeof(name));
    st = qc_graph_value(g, name, nv);
    if (st == QC_OK)
        g->values[*nv].dtype = QC_DTYPE_F32;
    return st;
}

/* Adds node "<label>_cast": to = Cast(from, to=type). */
static enum qc_status add_cast(struct qc_graph *g, const char *label, int from, int to, int type)
{
    char node[600];
    int idx;
    enum qc_status st;
    snprintf(node, sizeof(node), "%s_cast", label);
    st = qc_graph_add_op(g, "Cast", node, &from, 1, &to, 1, &idx);
    return st == QC_OK ? qc_attrs_add_int(&g->nodes[idx].attrs, "to", type) : st;
}

/* Graph input x is read through Cast(to=float) into a new float32 value. */
static enum qc_status cast_input(struct qc_graph *g, int x)
{
    int nv;
    enum qc_status st = float32_twin(g, x, &nv);
    if (st != QC_OK)
        return st;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] == x)
                g->nodes[i].in[j] = nv;
    return add_cast(g, g->values[nv].name, x, nv, QC_DTYPE_F32);
}

/* Graph output y becomes Cast(to=half) of a new float32 value that its
 * producer writes instead. */
static enum qc_status cast_output(struct qc_graph *g, int y, int half)
{
    int nv;
    enum qc_status st;
    if (g->values[y].producer < 0)
        return QC_OK; /* a graph input passed through: cast already */
    if ((st = float32_twin(g, y, &nv)) != QC_OK)
        return st;
    for (int i = 0; i < g->n_nodes; i++) {
        struct qc_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] == y)
                n->in[j] = nv;
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] == y)
                n->out[j] = nv;
    }
    return add_cast(g, g->values[nv].name, nv, y, half); /* unique, like the input's */
}

static void note_half(int fd, int *half, bool *any, bool *mixed)
{
    if (!fd) {
        *mixed = true;
        return;
    }
    if (*any && *half != fd)
        *mixed = true;
    *half = fd;
    *any = true;
}

enum qc_status qc_inputs_write_dtypes(struct qc_graph *g, bool float_model, bool keep_dtype)
{
    int half = 0, n_io;
    bool any = false, mixed = false, any_tensor = false;
    int *io;

    for (int v = 0; v < g->n_values; v++)
        any_tensor = any_tensor || (g->values[v].init && g->values[v].init->file_dtype);
    for (int i = 0; i < g->n_inputs + g->n_outputs; i++) {
        int vi = i < g->n_inputs ? g->inputs[i] : g->outputs[i - g->n_inputs];
        const struct qc_value *v = &g->values[vi];
        if (v->init || v->dtype != QC_DTYPE_F32)
            continue;
        note_half(v->file_dtype, &half, &any, &mixed);
    }
    if (!any && !any_tensor)
        return QC_OK;
    if (keep_dtype && float_model && any && !mixed) {
        /* the model as it came: every float tensor in its half type */
        each_float_tensor(g, set_file_dtype, half);
        for (int v = 0; v < g->n_values; v++)
            if (g->values[v].init && g->values[v].dtype == QC_DTYPE_F32)
                g->values[v].file_dtype = half;
        return QC_OK;
    }
    /* float32 inside; initializers listed as inputs are float32 too */
    each_float_tensor(g, set_file_dtype, 0);
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].init || !keep_dtype)
            g->values[v].file_dtype = 0;
    if (!keep_dtype)
        return QC_OK;
    n_io = g->n_inputs + g->n_outputs;
    io = qc_malloc((size_t)(n_io + 1) * sizeof(int));
    if (!io)
        return QC_ERR_NOMEM;
    for (int i = 0; i < n_io; i++)
        io[i] = i < g->n_inputs ? g->inputs[i] : g->outputs[i - g->n_inputs];
    for (int i = 0; i < n_io; i++) {
        int fd = g->values[io[i]].file_dtype;
        enum qc_status st;
        if (!fd || g->values[io[i]].init)
            continue;
        st = i < g->n_inputs ? cast_input(g, io[i]) : cast_output(g, io[i], fd);
        if (st != QC_OK) {
            qc_free(io);
            return st;
        }
    }
    qc_free(io);
    return qc_graph_link(g);
}
