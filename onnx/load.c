/*
 * load.c - ONNX file -> struct qc_graph (see onnx_io.h).
 *
 * Unpacks the ModelProto with protobuf-c, checks IR and opset versions,
 * copies values, initializers, nodes, attributes and metadata into the
 * neutral IR, frees the proto, then lets qc_graph_finalize() validate the
 * graph.  value_info entries are not needed (shapes are inferred per plan)
 * and are ignored.  float16 / bfloat16 inputs, outputs, initializers and
 * tensor attributes are held as float32 with their file type remembered
 * (file_dtype), so the writer puts them back as they were.  Every error line
 * names the model file.
 */
#include <config.h>

#include "onnx_io.h"

#include <inttypes.h>
#include <string.h>

#include "util/fileio.h"
#include "util/log.h"
#include "tensor_pb.h"
#include "ops/bind.h"

#define QC_IR_MIN 3
#define QC_IR_MAX 13  /* newer IRs only add fields protobuf-c skips and dtypes we refuse */
#define QC_ONNX_OPSET_MIN 7
#define QC_ONNX_OPSET_MAX 23

static bool is_default_domain(const char *d)
{
    return !d || d[0] == '\0' || strcmp(d, "ai.onnx") == 0;
}

/* qc_strdup that maps NULL to NULL; *ok cleared on allocation failure. */
static char *dup_opt(const char *s, bool *ok)
{
    char *d;
    if (!s)
        return NULL;
    d = qc_strdup(s);
    if (!d)
        *ok = false;
    return d;
}

/* NUL-terminated copy of a protobuf bytes field. */
static char *dup_bytes(const ProtobufCBinaryData *b)
{
    char *s = qc_malloc(b->len + 1);
    if (!s)
        return NULL;
    if (b->len)
        memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    return s;
}

/* Declared tensor type of a graph input or output. */
static enum qc_status read_value_info(struct qc_graph *g, const Onnx__ValueInfoProto *vi,
                                      const char *what, int *idx)
{
    const Onnx__TypeProto__Tensor *tt;
    struct qc_value *v;
    enum qc_status st;
    const char *name = vi->name ? vi->name : "";

    if (!*name) {
        qc_log_error("%s: graph %s without a name", g->path, what);
        return QC_ERR_ONNX;
    }
    st = qc_graph_value(g, name, idx);
    if (st != QC_OK)
        return st;
    v = &g->values[*idx];
    if (!vi->type || vi->type->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET)
        return QC_OK;
    if (vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        qc_log_error("%s: graph %s '%s' is not a tensor (sequences, maps, optionals and sparse "
                     "tensors are not supported)", g->path, what, name);
        return QC_ERR_UNSUPPORTED;
    }
    tt = vi->type->tensor_type;
    if (tt->has_elem_type &&
        (tt->elem_type == QC_FILE_DTYPE_F16 || tt->elem_type == QC_FILE_DTYPE_BF16)) {
        v->dtype = QC_DTYPE_F32; /* computed in float32, written back as declared */
        v->file_dtype = tt->elem_type;
    } else if (tt->has_elem_type && tt->elem_type != 0) {
        if (!qc_dtype_supported((enum qc_dtype)tt->elem_type)) {
            qc_log_error("%s: graph %s '%s': element type %d is not supported", g->path, what,
                         name, (int)tt->elem_type);
            return QC_ERR_UNSUPPORTED;
        }
        v->dtype = (enum qc_dtype)tt->elem_type;
    }
    if (!tt->shape)
        return QC_OK;
    if (tt->shape->n_dim > QC_MAX_DIMS) {
        qc_log_error("%s: graph %s '%s' has %zu dimensions, at most %d supported", g->path,
                     what, name, tt->shape->n_dim, QC_MAX_DIMS);
        return QC_ERR_UNSUPPORTED;
    }
    v->has_shape = true;
    v->shape.ndim = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->shape.dims[i] = -1;
        qc_free(v->dim_param[i]);
        v->dim_param[i] = NULL;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value >= 0) {
            v->shape.dims[i] = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   d->dim_param && d->dim_param[0]) {
            v->dim_param[i] = qc_strdup(d->dim_param);
            if (!v->dim_param[i])
                return QC_ERR_NOMEM;
        }
    }
    return QC_OK;
}

static enum qc_status read_io(struct qc_graph *g, Onnx__ValueInfoProto **vis, size_t n,
                              bool input)
{
    int *arr = qc_calloc(n + 1, sizeof(int));
    enum qc_status st = QC_OK;
    if (!arr)
        return QC_ERR_NOMEM;
    if (input) {
        g->inputs = arr;
    } else {
        g->outputs = arr;
    }
    for (size_t i = 0; i < n; i++) {
        st = read_value_info(g, vis[i], input ? "input" : "output", &arr[i]);
        if (st != QC_OK)
            return st;
        if (input)
            g->values[arr[i]].is_input = true;
        else
            g->values[arr[i]].is_output = true;
        if (input)
            g->n_inputs = (int)i + 1;
        else
            g->n_outputs = (int)i + 1;
    }
    return QC_OK;
}

/* Converts one AttributeProto into a struct qc_attr and appends it. */
static enum qc_status read_attr(struct qc_graph *g, struct qc_node *n,
                                const Onnx__AttributeProto *ap, const char *base_dir)
{
    struct qc_attr a;
    enum qc_status st = QC_ERR_NOMEM;
    int type;

    memset(&a, 0, sizeof(a));
    a.name = qc_strdup(ap->name ? ap->name : "");
    if (!a.name)
        goto out;
    if (ap->has_type) {
        type = (int)ap->type;
    } else if (ap->n_floats) {  /* very old files: infer the type from the field set */
        type = QC_ATTR_FLOATS;
    } else if (ap->n_ints) {
        type = QC_ATTR_INTS;
    } else if (ap->n_strings) {
        type = QC_ATTR_STRINGS;
    } else if (ap->t) {
        type = QC_ATTR_TENSOR;
    } else if (ap->g) {
        type = QC_ATTR_GRAPH;
    } else if (ap->has_s) {
        type = QC_ATTR_STRING;
    } else if (ap->has_f) {
        type = QC_ATTR_FLOAT;
    } else {
        type = QC_ATTR_INT;
    }

    switch (type) {
    case QC_ATTR_FLOAT:
        a.type = QC_ATTR_FLOAT;
        a.f = ap->f;
        break;
    case QC_ATTR_INT:
        a.type = QC_ATTR_INT;
        a.i = ap->i;
        break;
    case QC_ATTR_STRING:
        a.type = QC_ATTR_STRING;
        a.s = dup_bytes(&ap->s);
        if (!a.s)
            goto out;
        break;
    case QC_ATTR_TENSOR:
        a.type = QC_ATTR_TENSOR;
        if (!ap->t) {
            qc_log_error("%s: node '%s' (%s): tensor attribute '%s' has no value", g->path,
                         n->name, n->op_type, a.name);
            st = QC_ERR_ONNX;
            goto out;
        }
        st = qc_tensor_from_pb(ap->t, g->path, base_dir, &a.t);
        if (st != QC_OK)
            goto out;
        if (ap->t->name && ap->t->name[0]) {
            a.t_name = qc_strdup(ap->t->name);
            if (!a.t_name) {
                st = QC_ERR_NOMEM;
                goto out;
            }
        }
        break;
    case QC_ATTR_FLOATS:
        a.type = QC_ATTR_FLOATS;
        a.n = (int64_t)ap->n_floats;
        a.floats = qc_malloc((ap->n_floats + 1) * sizeof(float));
        if (!a.floats)
            goto out;
        if (ap->n_floats)
            memcpy(a.floats, ap->floats, ap->n_floats * sizeof(float));
        break;
    case QC_ATTR_INTS:
        a.type = QC_ATTR_INTS;
        a.n = (int64_t)ap->n_ints;
        a.ints = qc_malloc((ap->n_ints + 1) * sizeof(int64_t));
        if (!a.ints)
            goto out;
        if (ap->n_ints)
            memcpy(a.ints, ap->ints, ap->n_ints * sizeof(int64_t));
        break;
    case QC_ATTR_STRINGS:
        a.type = QC_ATTR_STRINGS;
        a.strings = qc_calloc(ap->n_strings + 1, sizeof(char *));
        if (!a.strings)
            goto out;
        for (size_t k = 0; k < ap->n_strings; k++) {
            a.strings[k] = dup_bytes(&ap->strings[k]);
            if (!a.strings[k])
                goto out;
            a.n = (int64_t)k + 1;
        }
        break;
    default:
        /* GRAPH(S), TENSORS, SPARSE_TENSOR(S), TYPE_PROTO(S): name only. */
        a.type = QC_ATTR_GRAPH;
        break;
    }
    st = qc_attrs_add(&n->attrs, &a);
out:
    qc_attr_clear(&a);
    return st;
}

static enum qc_status read_node(struct qc_graph *g, const Onnx__NodeProto *np,
                                const char *base_dir)
{
    struct qc_node *n;
    enum qc_status st;
    bool ok = true;
    size_t n_out = np->n_output;
    int idx;

    st = qc_graph_add_node(g, &idx);
    if (st != QC_OK)
        return st;
    n = &g->nodes[idx];
    n->name = qc_strdup(np->name ? np->name : "");
    n->op_type = qc_strdup(np->op_type ? np->op_type : "");
    n->domain = qc_strdup(np->domain ? np->domain : "");
    n->doc_string = dup_opt(np->doc_string, &ok);
    n->in = qc_malloc((np->n_input + 1) * sizeof(int));
    /* trailing omitted outputs ("") are dropped; inner ones become -1 */
    while (n_out > 0 && (!np->output[n_out - 1] || !np->output[n_out - 1][0]))
        n_out--;
    n->out = qc_malloc((n_out + 1) * sizeof(int));
    if (!ok || !n->name || !n->op_type || !n->domain || !n->in || !n->out)
        return QC_ERR_NOMEM;
    if (!n->op_type[0]) {
        qc_log_error("%s: node '%s' has no op_type", g->path, n->name);
        return QC_ERR_ONNX;
    }
    for (size_t i = 0; i < np->n_input; i++) {
        const char *vn = np->input[i];
        int v = -1;
        if (vn && vn[0]) {
            st = qc_graph_value(g, vn, &v);
            if (st != QC_OK)
                return st;
            n = &g->nodes[idx];
        }
        n->in[i] = v;
        n->n_in = (int)i + 1;
    }
    for (size_t i = 0; i < n_out; i++) {
        const char *vn = np->output[i];
        int v = -1;
        if (vn && vn[0]) {
            st = qc_graph_value(g, vn, &v);
            if (st != QC_OK)
                return st;
            n = &g->nodes[idx];
        }
        n->out[i] = v;
        n->n_out = (int)i + 1;
    }
    for (size_t i = 0; i < np->n_attribute; i++) {
        st = read_attr(g, &g->nodes[idx], np->attribute[i], base_dir);
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

static enum qc_status read_meta(struct qc_graph *g, const Onnx__ModelProto *m)
{
    bool ok = true;
    bool have_default = false;
    enum qc_status st;

    g->ir_version = m->ir_version;
    g->producer_name = dup_opt(m->producer_name, &ok);
    g->producer_version = dup_opt(m->producer_version, &ok);
    g->domain = dup_opt(m->domain, &ok);
    g->doc_string = dup_opt(m->doc_string, &ok);
    g->model_version = m->has_model_version ? m->model_version : 0;
    g->graph_name = dup_opt(m->graph->name, &ok);
    g->graph_doc = dup_opt(m->graph->doc_string, &ok);
    if (!ok)
        return QC_ERR_NOMEM;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        int64_t ver = o->has_version ? o->version : 0;
        const char *dom = o->domain ? o->domain : "";
        if (is_default_domain(dom)) {
            if (ver < QC_ONNX_OPSET_MIN || ver > QC_ONNX_OPSET_MAX) {
                qc_log_error("%s: opset %" PRId64 " is not supported (qatconv reads opsets "
                             "%d to %d)", g->path, ver, QC_ONNX_OPSET_MIN, QC_ONNX_OPSET_MAX);
                return QC_ERR_UNSUPPORTED;
            }
            have_default = true;
        }
        st = qc_graph_add_opset(g, dom, ver);
        if (st != QC_OK)
            return st;
    }
    if (!have_default) {
        qc_log_error("%s: no opset import for the default ONNX domain", g->path);
        return QC_ERR_ONNX;
    }
    for (size_t i = 0; i < m->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *p = m->metadata_props[i];
        st = qc_graph_add_prop(g, p->key ? p->key : "", p->value ? p->value : "");
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

static enum qc_status read_model(struct qc_graph *g, const Onnx__ModelProto *m,
                                 const char *base_dir)
{
    const Onnx__GraphProto *gp = m->graph;
    enum qc_status st;

    if (!m->has_ir_version) {
        qc_log_error("%s: not a valid ONNX model (no ir_version; truncated or corrupt?)",
                     g->path);
        return QC_ERR_ONNX;
    }
    if (m->ir_version < QC_IR_MIN || m->ir_version > QC_IR_MAX) {
        qc_log_error("%s: IR version %" PRId64 " is not supported (qatconv reads IR versions "
                     "%d to %d)", g->path, m->ir_version, QC_IR_MIN, QC_IR_MAX);
        return QC_ERR_UNSUPPORTED;
    }
    if (!gp) {
        qc_log_error("%s: not a valid ONNX model (no graph; truncated or corrupt?)", g->path);
        return QC_ERR_ONNX;
    }
    st = read_meta(g, m);
    if (st != QC_OK)
        return st;
    if (gp->n_sparse_initializer) {
        qc_log_error("%s: sparse initializers are not supported", g->path);
        return QC_ERR_UNSUPPORTED;
    }
    st = read_io(g, gp->input, gp->n_input, true);
    if (st != QC_OK)
        return st;
    st = read_io(g, gp->output, gp->n_output, false);
    if (st != QC_OK)
        return st;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        struct qc_value *v;
        int idx;
        if (!tp->name || !tp->name[0]) {
            qc_log_error("%s: initializer #%zu has no name", g->path, i);
            return QC_ERR_ONNX;
        }
        st = qc_graph_value(g, tp->name, &idx);
        if (st != QC_OK)
            return st;
        v = &g->values[idx];
        if (v->init) {
            qc_log_error("%s: initializer '%s' is defined twice", g->path, tp->name);
            return QC_ERR_ONNX;
        }
        st = qc_tensor_from_pb(tp, g->path, base_dir, &v->init);
        if (st != QC_OK)
            return st;
        if (v->dtype == QC_DTYPE_UNDEFINED)
            v->dtype = v->init->dtype;
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        st = read_node(g, gp->node[i], base_dir);
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

enum qc_status qc_onnx_parse(const void *buf, size_t len, const char *path,
                             const char *base_dir, struct qc_graph **out)
{
    Onnx__ModelProto *m = NULL;
    struct qc_graph *g = NULL;
    enum qc_status st;

    *out = NULL;
    if (!path)
        path = "(model)";
    if (len == 0) {
        qc_log_error("%s: not a valid ONNX model (empty file)", path);
        return QC_ERR_ONNX;
    }
    m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m) {
        qc_log_error("%s: not a valid ONNX model (protobuf parse failed; truncated or "
                     "corrupt?)", path);
        return QC_ERR_ONNX;
    }
    st = qc_graph_new(&g);
    if (st != QC_OK)
        goto out;
    g->path = qc_strdup(path);
    if (!g->path) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    st = read_model(g, m, base_dir);
out:
    onnx__model_proto__free_unpacked(m, NULL);
    if (st != QC_OK)
        qc_graph_free(g);
    else
        *out = g;
    return st;
}

enum qc_status qc_onnx_load_buffer(const void *buf, size_t len, const char *path,
                                   const char *base_dir, struct qc_graph **out)
{
    struct qc_graph *g = NULL;
    enum qc_status st;

    *out = NULL;
    st = qc_onnx_parse(buf, len, path, base_dir, &g);
    if (st != QC_OK)
        return st;
    st = qc_graph_finalize(g);
    if (st != QC_OK) {
        qc_graph_free(g);
        return st;
    }
    *out = g;
    return QC_OK;
}

enum qc_status qc_onnx_parse_file(const char *path, struct qc_graph **out)
{
    void *buf = NULL;
    size_t len = 0;
    char *dir = NULL;
    enum qc_status st;

    *out = NULL;
    st = qc_onnx_read_file(path, &buf, &len);
    if (st != QC_OK)
        goto out;
    dir = qc_path_dirname(path);
    if (!dir) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    st = qc_onnx_parse(buf, len, path, dir, out);
out:
    qc_free(dir);
    qc_free(buf);
    return st;
}

enum qc_status qc_onnx_load(const char *path, struct qc_graph **out)
{
    enum qc_status st = qc_onnx_parse_file(path, out);
    if (st == QC_OK && (st = qc_graph_finalize(*out)) != QC_OK) {
        qc_graph_free(*out);
        *out = NULL;
    }
    return st;
}

enum qc_status qc_onnx_load_tensor(const char *path, struct qc_tensor **out, char **name)
{
    Onnx__TensorProto *tp = NULL;
    void *buf = NULL;
    size_t len = 0;
    char *dir = NULL;
    enum qc_status st;

    *out = NULL;
    if (name)
        *name = NULL;
    st = qc_onnx_read_file(path, &buf, &len);
    if (st != QC_OK)
        goto out;
    tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp) {
        qc_log_error("%s: not a valid serialized TensorProto (protobuf parse failed; "
                     "truncated or corrupt?)", path);
        st = QC_ERR_ONNX;
        goto out;
    }
    dir = qc_path_dirname(path);
    if (!dir) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    st = qc_tensor_from_pb(tp, path, dir, out);
    if (st != QC_OK)
        goto out;
    if (name) {
        *name = qc_strdup(tp->name ? tp->name : "");
        if (!*name) {
            qc_tensor_free(*out);
            *out = NULL;
            st = QC_ERR_NOMEM;
        }
    }
out:
    if (tp)
        onnx__tensor_proto__free_unpacked(tp, NULL);
    qc_free(dir);
    qc_free(buf);
    return st;
}
