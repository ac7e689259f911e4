/*
 * opset.c - raises a graph's default-domain opset, rewriting the nodes whose
 * signature or meaning changed on the way (see opset.h).
 *
 * One table lists every op qatconv reads (src/ops/ops.def) with the rewrite
 * it needs, or none when its form is the same at every opset from 7 on
 * (new optional attributes and inputs with neutral defaults, new element
 * types).  A rule runs when the upgrade crosses the version that changed the
 * op (from < version <= to) and looks at the node's actual form, so a node
 * already in the new form is left alone.  Attribute values become constant
 * initializers named after the node ("<node>_axes", ...).  The facts come
 * from the ONNX operator changelog; ONNX Runtime semantics of the old forms
 * are the reference (tests/test_opset_upgrade.sh checks each rewrite there).
 */
#include <config.h>

#include "opset.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "ops/bind.h"
#include "plan/plan.h"
#include "util/log.h"

struct upgrade {
    struct qc_graph *g;
    int64_t from, to;
    struct qc_backend *be; /* a CPU plan of the graph as it was before the */
    struct qc_plan *plan;  /* rewrite (shapes for Softmax), or NULL        */
};

static bool default_domain(const char *d)
{
    return !d || d[0] == '\0' || strcmp(d, "ai.onnx") == 0;
}

/* Whether the upgrade passes the opset that changed an op. */
static bool crosses(const struct upgrade *u, int64_t version)
{
    return u->from < version && u->to >= version;
}

static const char *label(const struct upgrade *u, int ni)
{
    return qc_node_label(u->g, &u->g->nodes[ni]);
}

static enum qc_status fail(const struct upgrade *u, int ni, const char *why)
{
    qc_log_error("%s: %s '%s' cannot be upgraded from opset %lld to %lld: %s", u->g->path,
                 u->g->nodes[ni].op_type, label(u, ni), (long long)u->from, (long long)u->to, why);
    return QC_ERR_UNSUPPORTED;
}

/* ---- attributes ---- */

static void attr_remove(struct qc_node *n, const char *name)
{
    for (int i = 0; i < n->attrs.n; i++) {
        if (strcmp(n->attrs.v[i].name, name) != 0)
            continue;
        qc_attr_clear(&n->attrs.v[i]);
        memmove(&n->attrs.v[i], &n->attrs.v[i + 1],
                (size_t)(n->attrs.n - i - 1) * sizeof(n->attrs.v[0]));
        n->attrs.n--;
        return;
    }
}

static enum qc_status attr_set_int(struct qc_node *n, const char *name, int64_t v)
{
    attr_remove(n, name);
    return qc_attrs_add_int(&n->attrs, name, v);
}

static enum qc_status attr_set_string(struct qc_node *n, const char *name, const char *v)
{
    struct qc_attr a;
    enum qc_status st;
    attr_remove(n, name);
    memset(&a, 0, sizeof(a));
    a.name = qc_strdup(name);
    a.s = qc_strdup(v);
    a.type = QC_ATTR_STRING;
    if (!a.name || !a.s) {
        qc_attr_clear(&a);
        return QC_ERR_NOMEM;
    }
    st = qc_attrs_add(&n->attrs, &a);
    if (st != QC_OK)
        qc_attr_clear(&a);
    return st;
}

/* The attribute called name of the expected type, or NULL; a present
 * attribute of another type is an error (*st). */
static const struct qc_attr *attr_of(const struct upgrade *u, int ni, const char *name,
                                     enum qc_attr_type type, enum qc_status *st)
{
    const struct qc_attr *a = qc_attr_find(&u->g->nodes[ni].attrs, name);
    *st = QC_OK;
    if (a && a->type != type) {
        qc_log_error("%s: %s '%s': attribute '%s' has the wrong type", u->g->path,
                     u->g->nodes[ni].op_type, label(u, ni), name);
        *st = QC_ERR_ONNX;
        return NULL;
    }
    return a;
}

/* ---- inputs and constants ---- */

/* Sets input `slot` of node ni to value v, growing the input list with
 * omitted (-1) inputs. */
static enum qc_status set_input(struct upgrade *u, int ni, int slot, int v)
{
    struct qc_node *n = &u->g->nodes[ni];
    if (slot >= n->n_in) {
        int *in = qc_realloc(n->in, (size_t)(slot + 1) * sizeof(int));
        if (!in)
            return QC_ERR_NOMEM;
        for (int i = n->n_in; i <= slot; i++)
            in[i] = -1;
        n->in = in;
        n->n_in = slot + 1;
    }
    n->in[slot] = v;
    return QC_OK;
}

/* A new initializer "<node label><suffix>" of dtype dt and shape s, its
 * data copied from data (may be NULL for an empty tensor). */
static enum qc_status add_const(struct upgrade *u, int ni, const char *suffix, enum qc_dtype dt,
                                const struct qc_shape *s, const void *data, int *idx)
{
    struct qc_tensor *t;
    char name[512];
    enum qc_status st = qc_tensor_new(dt, s, &t);
    if (st != QC_OK)
        return st;
    if (data && qc_tensor_nbytes(t))
        memcpy(t->data, data, qc_tensor_nbytes(t));
    qc_graph_unique_name(u->g, label(u, ni), suffix, name, sizeof(name));
    return qc_graph_add_initializer(u->g, name, t, idx);
}

static enum qc_status add_i64s(struct upgrade *u, int ni, const char *suffix, const int64_t *v,
                               int64_t n, int *idx)
{
    struct qc_shape s = qc_shape_make(1, &n);
    return add_const(u, ni, suffix, QC_DTYPE_I64, &s, v, idx);
}

static enum qc_status add_f32_scalar(struct upgrade *u, int ni, const char *suffix, float v,
                                     int *idx)
{
    struct qc_shape s = qc_shape_make(0, NULL);
    return add_const(u, ni, suffix, QC_DTYPE_F32, &s, &v, idx);
}

/* Moves INTS attribute `name` into input `slot` as a 1-D int64 constant.
 * An absent attribute leaves the input omitted; required makes it an
 * error. */
static enum qc_status ints_to_input(struct upgrade *u, int ni, const char *name, int slot,
                                    bool required)
{
    enum qc_status st;
    const struct qc_attr *a = attr_of(u, ni, name, QC_ATTR_INTS, &st);
    char suffix[64];
    int v;
    if (st != QC_OK)
        return st;
    if (!a) {
        if (!required)
            return QC_OK;
        snprintf(suffix, sizeof(suffix), "attribute '%s' is missing", name);
        return fail(u, ni, suffix);
    }
    if (slot < u->g->nodes[ni].n_in && u->g->nodes[ni].in[slot] >= 0) {
        snprintf(suffix, sizeof(suffix), "it has both attribute and input '%s'", name);
        return fail(u, ni, suffix);
    }
    snprintf(suffix, sizeof(suffix), "_%s", name);
    if ((st = add_i64s(u, ni, suffix, a->ints, a->n, &v)) != QC_OK ||
        (st = set_input(u, ni, slot, v)) != QC_OK)
        return st;
    attr_remove(&u->g->nodes[ni], name);
    return QC_OK;
}

/* Moves FLOAT attribute `name` into input `slot` as a float scalar. */
static enum qc_status float_to_input(struct upgrade *u, int ni, const char *name, int slot)
{
    enum qc_status st;
    const struct qc_attr *a = attr_of(u, ni, name, QC_ATTR_FLOAT, &st);
    char suffix[64];
    int v;
    if (st != QC_OK || !a)
        return st;
    snprintf(suffix, sizeof(suffix), "_%s", name);
    if ((st = add_f32_scalar(u, ni, suffix, a->f, &v)) != QC_OK ||
        (st = set_input(u, ni, slot, v)) != QC_OK)
        return st;
    attr_remove(&u->g->nodes[ni], name);
    return QC_OK;
}

/* The constant value v holds: an initializer, or the tensor of a Constant
 * node (found by op_type: the graph may not be linked yet); NULL if none. */
static const struct qc_tensor *const_of(const struct qc_graph *g, int v)
{
    if (v < 0)
        return NULL;
    if (g->values[v].init)
        return g->values[v].init;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        const struct qc_attr *a;
        if (n->n_out < 1 || n->out[0] != v || strcmp(n->op_type, "Constant") != 0)
            continue;
        a = qc_attr_find(&n->attrs, "value");
        return a && a->type == QC_ATTR_TENSOR ? a->t : NULL;
    }
    return NULL;
}

/* Whether output `slot` of node ni is read by a node or is a graph output. */
static bool output_used(const struct upgrade *u, int ni, int slot)
{
    const struct qc_node *n = &u->g->nodes[ni];
    return slot < n->n_out && n->out[slot] >= 0 && qc_graph_value_uses(u->g, n->out[slot]) > 0;
}

/* Drops the unused outputs from `first` on; a used one is an error. */
static enum qc_status drop_outputs(struct upgrade *u, int ni, int first, const char *why)
{
    struct qc_node *n = &u->g->nodes[ni];
    for (int j = first; j < n->n_out; j++)
        if (output_used(u, ni, j))
            return fail(u, ni, why);
    if (n->n_out > first)
        n->n_out = first;
    return QC_OK;
}

/* ---- the rules ---- */

/* BatchNormalization: spatial (=1, the only meaning kept) disappears at 9;
 * is_test and consumed_inputs are opset-1/6 leftovers; at 14 the outputs
 * after Y exist only in training mode. */
static enum qc_status up_batchnorm(struct upgrade *u, int ni)
{
    struct qc_node *n = &u->g->nodes[ni];
    enum qc_status st;
    const struct qc_attr *sp = attr_of(u, ni, "spatial", QC_ATTR_INT, &st);
    if (st != QC_OK)
        return st;
    if (crosses(u, 9) && sp) {
        if (sp->i == 0)
            return fail(u, ni, "spatial=0 (statistics per element) has no form from opset 9");
        attr_remove(n, "spatial");
    }
    attr_remove(n, "is_test");
    attr_remove(n, "consumed_inputs");
    if (crosses(u, 14))
        return drop_outputs(u, ni, 1,
                            "its mean/var outputs are read, and from opset 14 they "
                            "exist only in training mode");
    return QC_OK;
}

/* Dropout: the mask becomes bool at 10, the ratio an input at 12. */
static enum qc_status up_dropout(struct upgrade *u, int ni)
{
    enum qc_status st;
    attr_remove(&u->g->nodes[ni], "is_test");
    if (crosses(u, 10) &&
        (st = drop_outputs(u, ni, 1,
                           "its mask output is read, and its type changes to bool "
                           "at opset 10")) != QC_OK)
        return st;
    if (crosses(u, 12))
        return float_to_input(u, ni, "ratio", 1);
    return QC_OK;
}

/* Clip: min and max attributes become optional inputs at 11. */
static enum qc_status up_clip(struct upgrade *u, int ni)
{
    enum qc_status st;
    if (!crosses(u, 11))
        return QC_OK;
    if ((st = float_to_input(u, ni, "min", 1)) != QC_OK)
        return st;
    return float_to_input(u, ni, "max", 2);
}

/* Pad: pads and value attributes become inputs at 11 (mode stays). */
static enum qc_status up_pad(struct upgrade *u, int ni)
{
    enum qc_status st;
    if (!crosses(u, 11) || !qc_attr_find(&u->g->nodes[ni].attrs, "pads"))
        return QC_OK;
    if ((st = ints_to_input(u, ni, "pads", 1, true)) != QC_OK)
        return st;
    return float_to_input(u, ni, "value", 2);
}

/* Squeeze, Unsqueeze, ReduceSum at 13 and ReduceMean at 18: axes becomes
 * input 1. */
static enum qc_status axes_input(struct upgrade *u, int ni, int64_t since, bool required)
{
    if (!crosses(u, since))
        return QC_OK;
    /* an Unsqueeze already written with its axes input */
    if (required && u->g->nodes[ni].n_in > 1 && u->g->nodes[ni].in[1] >= 0)
        return QC_OK;
    return ints_to_input(u, ni, "axes", 1, required);
}

static enum qc_status up_squeeze(struct upgrade *u, int ni)
{
    return axes_input(u, ni, 13, false);
}

static enum qc_status up_unsqueeze(struct upgrade *u, int ni)
{
    return axes_input(u, ni, 13, true);
}

static enum qc_status up_reduce_sum(struct upgrade *u, int ni)
{
    return axes_input(u, ni, 13, false);
}

static enum qc_status up_reduce_mean(struct upgrade *u, int ni)
{
    return axes_input(u, ni, 18, false);
}

/* Slice: starts, ends, axes become inputs 1..3 at 10. */
static enum qc_status up_slice(struct upgrade *u, int ni)
{
    enum qc_status st;
    if (!crosses(u, 10) || !qc_attr_find(&u->g->nodes[ni].attrs, "starts"))
        return QC_OK;
    if ((st = ints_to_input(u, ni, "starts", 1, true)) != QC_OK ||
        (st = ints_to_input(u, ni, "ends", 2, true)) != QC_OK)
        return st;
    return ints_to_input(u, ni, "axes", 3, false);
}

/* Rank of value v: declared, or 2 for the output of a Gemm or Flatten (a
 * classifier's logits); -1 if unknown. */
static int known_rank(const struct qc_graph *g, int v)
{
    if (v < 0)
        return -1;
    if (g->values[v].has_shape)
        return g->values[v].shape.ndim;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        if (n->n_out > 0 && n->out[0] == v && default_domain(n->domain))
            return strcmp(n->op_type, "Gemm") == 0 || strcmp(n->op_type, "Flatten") == 0 ? 2 : -1;
    }
    return -1;
}

/* Softmax, LogSoftmax before 13 coerce the input to 2-D [d0*..*d(axis-1),
 * d(axis)*..] and normalize the rows; from 13 they normalize along `axis`.
 * The same where axis is the last dim (rank known: known_rank);
 * otherwise X -> Flatten(axis) -> op(axis=1) -> Reshape(Shape(X)). */
static enum qc_status up_softmax(struct upgrade *u, int ni)
{
    struct qc_graph *g = u->g;
    enum qc_status st;
    const struct qc_attr *ax = attr_of(u, ni, "axis", QC_ATTR_INT, &st);
    int64_t axis = ax ? ax->i : 1;
    int rank, x, y, shp, x2, y2, io[2];
    char base[512], name[512];

    if (st != QC_OK || !crosses(u, 13))
        return st;
    rank = known_rank(g, g->nodes[ni].in[0]);
    if (rank < 0)
        rank = known_rank(g, g->nodes[ni].out[0]);
    if (rank > 0 && axis < 0)
        axis += rank;
    if (rank > 0 && axis == rank - 1)
        return attr_set_int(&g->nodes[ni], "axis", axis);
    if (u->plan && qc_plan_value(u->plan, g->nodes[ni].in[0])) {
        /* the inferred shape: dims past `axis` all 1 (a classifier's
         * [N, K, 1, 1]) normalize the same along `axis` */
        const struct qc_shape *sh = &qc_plan_value(u->plan, g->nodes[ni].in[0])->shape;
        bool ones;
        if (axis < 0)
            axis += sh->ndim;
        ones = axis >= 0 && axis < sh->ndim;
        for (int d = (int)axis + 1; ones && d < sh->ndim; d++)
            ones = sh->dims[d] == 1;
        if (ones)
            return attr_set_int(&g->nodes[ni], "axis", axis);
    }

    snprintf(base, sizeof(base), "%s", label(u, ni));
    x = g->nodes[ni].in[0];
    y = g->nodes[ni].out[0];
    if ((st = qc_graph_value(g, qc_graph_unique_name(g, base, "_shape", name, sizeof(name)),
                             &shp)) != QC_OK ||
        (st = qc_graph_value(g, qc_graph_unique_name(g, base, "_2d", name, sizeof(name)), &x2)) !=
            QC_OK ||
        (st = qc_graph_value(g, qc_graph_unique_name(g, base, "_out2d", name, sizeof(name)),
                             &y2)) != QC_OK)
        return st;
    g->values[shp].dtype = QC_DTYPE_I64;
    g->values[x2].dtype = g->values[y2].dtype = g->values[x].dtype;
    qc_graph_unique_name(g, base, "_Shape", name, sizeof(name));
    if ((st = qc_graph_add_op(g, "Shape", name, &x, 1, &shp, 1, NULL)) != QC_OK)
        return st;
    qc_graph_unique_name(g, base, "_Flatten", name, sizeof(name));
    if ((st = qc_graph_add_op(g, "Flatten", name, &x, 1, &x2, 1, &io[0])) != QC_OK ||
        (st = attr_set_int(&g->nodes[io[0]], "axis", axis)) != QC_OK)
        return st;
    io[0] = y2;
    io[1] = shp;
    qc_graph_unique_name(g, base, "_Reshape", name, sizeof(name));
    if ((st = qc_graph_add_op(g, "Reshape", name, io, 2, &y, 1, NULL)) != QC_OK)
        return st;
    g->nodes[ni].in[0] = x2;
    g->nodes[ni].out[0] = y2;
    return attr_set_int(&g->nodes[ni], "axis", 1);
}

/* Resize-10 and Upsample use asymmetric coordinates and, in nearest mode,
 * truncate when enlarging and take the ceiling when shrinking (ONNX Runtime;
 * src/ops/resize.c).  The Resize-11 nearest_mode that does the same: floor
 * when no constant scale is below 1, ceil when none is above 1.  Mixed
 * scales are fine when every shrinking scale is 2^-k (whole coordinates,
 * floor = ceil); other mixes have no single mode;
 * scales that are not constants are taken as enlarging (Upsample's scales
 * are >= 1 by definition). */
static enum qc_status nearest_mode(struct upgrade *u, int ni, const struct qc_tensor *scales,
                                   const float *attr_scales, int64_t n_attr, const char **mode)
{
    int64_t n = scales ? qc_tensor_nelem(scales) : n_attr;
    bool up = false, down_frac = false, down = false;
    *mode = "floor";
    if (scales && scales->dtype != QC_DTYPE_F32)
        return fail(u, ni, "its scales are not float32");
    for (int64_t i = 0; i < n; i++) {
        float s = scales ? qc_tensor_f32(scales)[i] : attr_scales[i];
        int e;
        if (s > 1.0f)
            up = true;
        if (s < 1.0f) {
            /* x_out / s is a whole number for every x_out only when s = 2^-k */
            down = true;
            down_frac = down_frac || frexpf(s, &e) != 0.5f;
        }
    }
    if (down && !up)
        *mode = "ceil";
    else if (up && down_frac)
        return fail(u, ni,
                    "nearest resampling that enlarges some axes and shrinks others by "
                    "a non-integer factor has no single nearest_mode");
    return QC_OK;
}

/* The Resize-11+ attributes and roi input that compute what Resize-10 /
 * Upsample compute. */
static enum qc_status resize11_form(struct upgrade *u, int ni, int scales_v,
                                    const float *attr_scales, int64_t n_attr)
{
    struct qc_node *n = &u->g->nodes[ni];
    const char *mode = "nearest", *nm;
    int roi = -1;
    enum qc_status st;
    const struct qc_attr *ma = attr_of(u, ni, "mode", QC_ATTR_STRING, &st);

    if (st != QC_OK)
        return st;
    if (ma)
        mode = ma->s;
    if (strcmp(mode, "nearest") == 0) {
        st = nearest_mode(u, ni, attr_scales ? NULL : const_of(u->g, scales_v), attr_scales, n_attr,
                          &nm);
        if (st != QC_OK || (st = attr_set_string(&u->g->nodes[ni], "nearest_mode", nm)) != QC_OK)
            return st;
    } else if (strcmp(mode, "linear") != 0) {
        return fail(u, ni, "its mode is neither nearest nor linear");
    }
    n = &u->g->nodes[ni];
    if ((st = attr_set_string(n, "coordinate_transformation_mode", "asymmetric")) != QC_OK)
        return st;
    if (u->to < 13) {
        /* roi is a required input of Resize-11 (used by tf_crop_and_resize only) */
        int64_t zero = 0;
        struct qc_shape s = qc_shape_make(1, &zero);
        if ((st = add_const(u, ni, "_roi", QC_DTYPE_F32, &s, NULL, &roi)) != QC_OK)
            return st;
    }
    n = &u->g->nodes[ni];
    n->n_in = 1;
    if ((st = set_input(u, ni, 1, roi)) != QC_OK)
        return st;
    return set_input(u, ni, 2, scales_v);
}

/* Upsample: scales attribute (7) -> input (9); from 10 it is Resize. */
static enum qc_status up_upsample(struct upgrade *u, int ni)
{
    struct qc_node *n = &u->g->nodes[ni];
    enum qc_status st;
    const struct qc_attr *sa = attr_of(u, ni, "scales", QC_ATTR_FLOATS, &st);
    float scales[QC_MAX_DIMS];
    int64_t ns = 0;
    int sv = n->n_in > 1 ? n->in[1] : -1;

    if (st != QC_OK || u->to < 9)
        return st;
    if (sa) {
        struct qc_shape s;
        if (sa->n > QC_MAX_DIMS || sv >= 0)
            return fail(u, ni, "its scales attribute is malformed");
        ns = sa->n;
        memcpy(scales, sa->floats, (size_t)ns * sizeof(float));
        s = qc_shape_make(1, &ns);
        if ((st = add_const(u, ni, "_scales", QC_DTYPE_F32, &s, scales, &sv)) != QC_OK)
            return st;
        attr_remove(&u->g->nodes[ni], "scales");
        if ((st = set_input(u, ni, 1, sv)) != QC_OK)
            return st;
    }
    if (sv < 0)
        return fail(u, ni, "it has no scales");
    if (u->to < 10)
        return QC_OK;
    n = &u->g->nodes[ni];
    qc_free(n->op_type);
    n->op_type = qc_strdup("Resize");
    if (!n->op_type)
        return QC_ERR_NOMEM;
    if (u->to == 10)
        return QC_OK;
    /* ns > 0: the scales came from the attribute (removed above) */
    return resize11_form(u, ni, sv, ns > 0 ? scales : NULL, ns);
}

/* Resize: 10 -> 11 takes roi and explicit modes; 13 dropped the
 * tf_half_pixel_for_nn coordinate mode. */
static enum qc_status up_resize(struct upgrade *u, int ni)
{
    struct qc_node *n = &u->g->nodes[ni];
    enum qc_status st;
    const struct qc_attr *cm;

    if (u->from < 11 && u->to >= 11 && n->n_in == 2 &&
        !qc_attr_find(&n->attrs, "coordinate_transformation_mode"))
        return resize11_form(u, ni, n->in[1], NULL, 0);
    cm = attr_of(u, ni, "coordinate_transformation_mode", QC_ATTR_STRING, &st);
    if (st != QC_OK)
        return st;
    if (crosses(u, 13) && cm && strcmp(cm->s, "tf_half_pixel_for_nn") == 0)
        return fail(u, ni,
                    "coordinate_transformation_mode tf_half_pixel_for_nn was removed "
                    "at opset 13");
    return QC_OK;
}

/* ---- the table ---- */

typedef enum qc_status (*rule_fn)(struct upgrade *u, int ni);

struct rule {
    const char *op;
    rule_fn fn; /* NULL: the same form at every opset from 7 */
};

/* Every op of src/ops/ops.def.  NULL entries, with what changed that needs
 * no rewrite: Gemm (C optional at 11), Concat/Flatten/Gather (negative axes
 * and indices at 11), MaxPool/AveragePool (storage_order, ceil_mode,
 * dilations with defaults), Reshape (allowzero=0 at 14), Sum (broadcasting
 * at 8), Shape (start/end at 15), Constant (value_* at 12), Cast (saturate
 * for float8), QuantizeLinear/DequantizeLinear (axis at 13, saturate,
 * block_size), the rest new element types only. */
static const struct rule rules[] = {
    { "Conv", NULL },
    { "ConvTranspose", NULL },
    { "Gemm", NULL },
    { "MatMul", NULL },
    { "BatchNormalization", up_batchnorm },
    { "LRN", NULL },
    { "Relu", NULL },
    { "Clip", up_clip },
    { "LeakyRelu", NULL },
    { "Sigmoid", NULL },
    { "Tanh", NULL },
    { "HardSigmoid", NULL },
    { "HardSwish", NULL },
    { "Softmax", up_softmax },
    { "LogSoftmax", up_softmax },
    { "Dropout", up_dropout },
    { "Identity", NULL },
    { "Add", NULL },
    { "Sub", NULL },
    { "Mul", NULL },
    { "Div", NULL },
    { "Sum", NULL },
    { "MaxPool", NULL },
    { "AveragePool", NULL },
    { "GlobalAveragePool", NULL },
    { "GlobalMaxPool", NULL },
    { "ReduceMean", up_reduce_mean },
    { "ReduceSum", up_reduce_sum },
    { "Resize", up_resize },
    { "Upsample", up_upsample },
    { "Flatten", NULL },
    { "Reshape", NULL },
    { "Squeeze", up_squeeze },
    { "Unsqueeze", up_unsqueeze },
    { "Transpose", NULL },
    { "Concat", NULL },
    { "Pad", up_pad },
    { "Shape", NULL },
    { "Gather", NULL },
    { "Constant", NULL },
    { "ConstantOfShape", NULL },
    { "Cast", NULL },
    { "Slice", up_slice },
    { "QuantizeLinear", NULL },
    { "DequantizeLinear", NULL },
    { "ConvInteger", NULL },
    { "MatMulInteger", NULL },
};

static const struct rule *rule_of(const char *op)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (strcmp(rules[i].op, op) == 0)
            return &rules[i];
    return NULL;
}

int64_t qc_opset_min_ir(int64_t opset)
{
    /* the first IR version whose ONNX release defined the opset: 7, 8, ... 23 */
    static const int64_t ir_of[] = { 3, 3, 4, 5, 6, 7, 7, 7, 8, 8, 8, 8, 9, 9, 10, 10, 11 };
    if (opset < 7)
        return 3;
    if (opset - 7 >= (int64_t)(sizeof(ir_of) / sizeof(ir_of[0])))
        return ir_of[sizeof(ir_of) / sizeof(ir_of[0]) - 1];
    return ir_of[opset - 7];
}

/* Applies the rule of every default-domain node among the first n_nodes. */
static enum qc_status rewrite_nodes(struct upgrade *u, int n_nodes)
{
    struct qc_graph *g = u->g;
    enum qc_status st;
    for (int i = 0; i < n_nodes; i++) {
        const struct rule *r;
        if (!default_domain(g->nodes[i].domain))
            continue;
        r = rule_of(g->nodes[i].op_type);
        if (!r) {
            qc_log_error("%s: %s '%s': no rule to upgrade this op from opset %lld to %lld", g->path,
                         g->nodes[i].op_type, label(u, i), (long long)u->from, (long long)u->to);
            return QC_ERR_UNSUPPORTED;
        }
        if (r->fn && (st = r->fn(u, i)) != QC_OK)
            return st;
    }
    return QC_OK;
}

/* Whether g has a Softmax or LogSoftmax (their rewrite wants shapes). */
static bool has_softmax(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (default_domain(g->nodes[i].domain) && (strcmp(g->nodes[i].op_type, "Softmax") == 0 ||
                                                   strcmp(g->nodes[i].op_type, "LogSoftmax") == 0))
            return true;
    return false;
}

/* Whether every runtime graph input has known sizes past the batch dim, so
 * that a plan at batch 1 infers every shape. */
static bool sizes_known(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_inputs; i++) {
        const struct qc_value *v = &g->values[g->inputs[i]];
        if (v->init)
            continue;
        if (!v->has_shape)
            return false;
        for (int d = 1; d < v->shape.ndim; d++)
            if (v->shape.dims[d] < 1)
                return false;
    }
    return true;
}

enum qc_status qc_opset_rewrite(struct qc_graph *g, int64_t target)
{
    struct upgrade u = { .g = g, .from = g->opset, .to = target };
    int n_nodes = g->n_nodes;
    enum qc_status st;

    if (target <= g->opset)
        return QC_OK;
    if (target > QC_OPSET_UPGRADE_MAX) {
        qc_log_error("%s: opset %lld is beyond the newest opset qatconv writes (%d)", g->path,
                     (long long)target, QC_OPSET_UPGRADE_MAX);
        return QC_ERR_UNSUPPORTED;
    }
    if (crosses(&u, 13) && has_softmax(g) && sizes_known(g) &&
        qc_backend_new("cpu", 1, &u.be) == QC_OK && qc_plan_new(g, u.be, 1, &u.plan) != QC_OK)
        u.plan = NULL; /* shapes unknown (symbolic sizes ...): the general rewrite */
    st = rewrite_nodes(&u, n_nodes);
    qc_plan_free(u.plan);
    qc_backend_free(u.be);
    if (st != QC_OK)
        return st;
    g->opset = target;
    for (int i = 0; i < g->n_opsets; i++)
        if (default_domain(g->opsets[i].domain))
            g->opsets[i].version = target;
    if (g->ir_version < qc_opset_min_ir(target))
        g->ir_version = qc_opset_min_ir(target);
    return QC_OK;
}

enum qc_status qc_opset_upgrade(struct qc_graph *g, int64_t target)
{
    enum qc_status st = qc_opset_rewrite(g, target);
    if (st != QC_OK)
        return st;
    return qc_graph_finalize(g);
}
