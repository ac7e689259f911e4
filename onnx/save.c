/*
 * save.c - struct qc_graph -> ONNX file (see onnx_io.h).
 *
 * Builds a fresh ModelProto whose strings and tensor data borrow the graph's
 * storage; the message arrays are allocated from a small pool that is freed
 * in one go (the proto is never passed to protobuf-c's free functions).  The
 * packed bytes are written atomically: "<dir>/.<base>.XXXXXX" created with
 * mkstemp in the destination's directory, written, fsync'ed, closed and
 * renamed over the destination.  On any failure the temporary is unlinked
 * and the destination is left untouched.
 */
#include <config.h>

#include "onnx_io.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/log.h"
#include "tensor_pb.h"

/* Every allocation made while building the proto, freed together. */
struct pool {
    void  **p;
    size_t  n, cap;
};

static void *pool_alloc(struct pool *pl, size_t n, size_t size)
{
    void *q;
    if (pl->n == pl->cap) {
        size_t ncap = pl->cap ? pl->cap * 2 : 64;
        void **np = qc_realloc(pl->p, ncap * sizeof(*np));
        if (!np)
            return NULL;
        pl->p = np;
        pl->cap = ncap;
    }
    q = qc_calloc(n ? n : 1, size);
    if (q)
        pl->p[pl->n++] = q;
    return q;
}

static void pool_free(struct pool *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        qc_free(pl->p[i]);
    qc_free(pl->p);
}

#define POOL_NEW(pl, type) ((type *)pool_alloc((pl), 1, sizeof(type)))

/* Borrowed string pointer for a proto field (protobuf-c wants char *). */
static char *sfield(const char *s)
{
    return (char *)s;
}

/* ValueInfoProto for a graph input/output: the declared type, elem type
 * only when no shape was declared, no type at all when none is known. */
static Onnx__ValueInfoProto *make_value_info(struct pool *pl, const struct qc_value *v)
{
    static const Onnx__ValueInfoProto vi_init = ONNX__VALUE_INFO_PROTO__INIT;
    static const Onnx__TypeProto tp_init = ONNX__TYPE_PROTO__INIT;
    static const Onnx__TypeProto__Tensor tt_init = ONNX__TYPE_PROTO__TENSOR__INIT;
    static const Onnx__TensorShapeProto sh_init = ONNX__TENSOR_SHAPE_PROTO__INIT;
    static const Onnx__TensorShapeProto__Dimension dim_init =
        ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    Onnx__ValueInfoProto *vi = POOL_NEW(pl, Onnx__ValueInfoProto);
    Onnx__TypeProto *tp;
    Onnx__TypeProto__Tensor *tt;
    Onnx__TensorShapeProto *sh;
    int dt = (int)v->dtype;

    if (!vi)
        return NULL;
    *vi = vi_init;
    vi->name = sfield(v->name);
    if (dt == QC_DTYPE_UNDEFINED && v->init)
        dt = v->init->file_dtype ? v->init->file_dtype : (int)v->init->dtype;
    else if (dt == QC_DTYPE_F32 && v->file_dtype)
        dt = v->file_dtype; /* float16 / bfloat16 in the file, held as float32 */
    if (dt == QC_DTYPE_UNDEFINED)
        return vi;
    tp = POOL_NEW(pl, Onnx__TypeProto);
    tt = POOL_NEW(pl, Onnx__TypeProto__Tensor);
    if (!tp || !tt)
        return NULL;
    *tp = tp_init;
    *tt = tt_init;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)dt;
    vi->type = tp;
    if (!v->has_shape)
        return vi;
    sh = POOL_NEW(pl, Onnx__TensorShapeProto);
    if (!sh)
        return NULL;
    *sh = sh_init;
    sh->n_dim = (size_t)v->shape.ndim;
    sh->dim = pool_alloc(pl, sh->n_dim, sizeof(*sh->dim));
    if (!sh->dim)
        return NULL;
    for (int i = 0; i < v->shape.ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = POOL_NEW(pl, Onnx__TensorShapeProto__Dimension);
        if (!d)
            return NULL;
        *d = dim_init;
        if (v->dim_param[i]) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = v->dim_param[i];
        } else if (v->shape.dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = v->shape.dims[i];
        }
        sh->dim[i] = d;
    }
    tt->shape = sh;
    return vi;
}

static enum qc_status make_attr(struct pool *pl, const struct qc_graph *g,
                                const struct qc_node *n, const struct qc_attr *a,
                                const char *path, Onnx__AttributeProto **out)
{
    static const Onnx__AttributeProto ap_init = ONNX__ATTRIBUTE_PROTO__INIT;
    Onnx__AttributeProto *ap = POOL_NEW(pl, Onnx__AttributeProto);

    if (!ap)
        return QC_ERR_NOMEM;
    *ap = ap_init;
    ap->name = sfield(a->name);
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    switch (a->type) {
    case QC_ATTR_FLOAT:
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case QC_ATTR_INT:
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case QC_ATTR_STRING:
        ap->has_s = 1;
        ap->s.len = a->s ? strlen(a->s) : 0;
        ap->s.data = (uint8_t *)a->s;
        break;
    case QC_ATTR_TENSOR:
        ap->t = POOL_NEW(pl, Onnx__TensorProto);
        if (!ap->t)
            return QC_ERR_NOMEM;
        {
            uint8_t *packed = NULL;
            if (qc_tensor_pb_needs_buffer(a->t)) {
                packed = pool_alloc(pl, qc_tensor_pb_nbytes(a->t), 1);
                if (!packed)
                    return QC_ERR_NOMEM;
            }
            qc_tensor_to_pb(a->t, "", packed, ap->t);
        }
        ap->t->name = a->t_name;
        break;
    case QC_ATTR_FLOATS:
        ap->n_floats = (size_t)a->n;
        ap->floats = a->floats;
        break;
    case QC_ATTR_INTS:
        ap->n_ints = (size_t)a->n;
        ap->ints = a->ints;
        break;
    case QC_ATTR_STRINGS:
        ap->n_strings = (size_t)a->n;
        ap->strings = pool_alloc(pl, ap->n_strings, sizeof(*ap->strings));
        if (!ap->strings)
            return QC_ERR_NOMEM;
        for (size_t k = 0; k < ap->n_strings; k++) {
            ap->strings[k].len = strlen(a->strings[k]);
            ap->strings[k].data = (uint8_t *)a->strings[k];
        }
        break;
    default:
        qc_log_error("%s: node '%s' (%s): attribute '%s' holds a graph or another value "
                     "qatconv cannot write", path, qc_node_label(g, n), n->op_type, a->name);
        return QC_ERR_UNSUPPORTED;
    }
    *out = ap;
    return QC_OK;
}

static enum qc_status make_node(struct pool *pl, const struct qc_graph *g,
                                const struct qc_node *n, const char *path,
                                Onnx__NodeProto **out)
{
    static const Onnx__NodeProto np_init = ONNX__NODE_PROTO__INIT;
    Onnx__NodeProto *np = POOL_NEW(pl, Onnx__NodeProto);
    enum qc_status st;

    if (!np)
        return QC_ERR_NOMEM;
    *np = np_init;
    np->name = n->name && n->name[0] ? n->name : NULL;
    np->op_type = n->op_type;
    np->domain = n->domain && n->domain[0] ? n->domain : NULL;
    np->doc_string = n->doc_string;
    np->n_input = (size_t)n->n_in;
    np->input = pool_alloc(pl, np->n_input, sizeof(char *));
    np->n_output = (size_t)n->n_out;
    np->output = pool_alloc(pl, np->n_output, sizeof(char *));
    np->n_attribute = (size_t)n->attrs.n;
    np->attribute = pool_alloc(pl, np->n_attribute, sizeof(*np->attribute));
    if (!np->input || !np->output || !np->attribute)
        return QC_ERR_NOMEM;
    for (int i = 0; i < n->n_in; i++)
        np->input[i] = n->in[i] >= 0 ? g->values[n->in[i]].name : sfield("");
    for (int i = 0; i < n->n_out; i++)
        np->output[i] = n->out[i] >= 0 ? g->values[n->out[i]].name : sfield("");
    for (int i = 0; i < n->attrs.n; i++) {
        st = make_attr(pl, g, n, &n->attrs.v[i], path, &np->attribute[i]);
        if (st != QC_OK)
            return st;
    }
    *out = np;
    return QC_OK;
}

static enum qc_status build_model(struct pool *pl, const struct qc_graph *g,
                                  Onnx__ModelProto *m, const char *path)
{
    static const Onnx__ModelProto m_init = ONNX__MODEL_PROTO__INIT;
    static const Onnx__GraphProto g_init = ONNX__GRAPH_PROTO__INIT;
    static const Onnx__OperatorSetIdProto o_init = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    static const Onnx__StringStringEntryProto p_init = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    Onnx__GraphProto *gp = POOL_NEW(pl, Onnx__GraphProto);
    enum qc_status st;
    size_t n_init = 0;
    int n_opsets = g->n_opsets ? g->n_opsets : 1;

    *m = m_init;
    if (!gp)
        return QC_ERR_NOMEM;
    *gp = g_init;
    m->graph = gp;
    m->has_ir_version = 1;
    m->ir_version = g->ir_version;
    m->producer_name = g->producer_name;
    m->producer_version = g->producer_version;
    m->domain = g->domain;
    m->doc_string = g->doc_string;
    if (g->model_version) {
        m->has_model_version = 1;
        m->model_version = g->model_version;
    }
    m->n_opset_import = (size_t)n_opsets;
    m->opset_import = pool_alloc(pl, (size_t)n_opsets, sizeof(*m->opset_import));
    if (!m->opset_import)
        return QC_ERR_NOMEM;
    for (int i = 0; i < n_opsets; i++) {
        Onnx__OperatorSetIdProto *o = POOL_NEW(pl, Onnx__OperatorSetIdProto);
        if (!o)
            return QC_ERR_NOMEM;
        *o = o_init;
        o->domain = g->n_opsets ? g->opsets[i].domain : sfield("");
        o->has_version = 1;
        o->version = g->n_opsets ? g->opsets[i].version : g->opset;
        m->opset_import[i] = o;
    }
    m->n_metadata_props = (size_t)g->n_props;
    m->metadata_props = pool_alloc(pl, (size_t)g->n_props, sizeof(*m->metadata_props));
    if (!m->metadata_props)
        return QC_ERR_NOMEM;
    for (int i = 0; i < g->n_props; i++) {
        Onnx__StringStringEntryProto *p = POOL_NEW(pl, Onnx__StringStringEntryProto);
        if (!p)
            return QC_ERR_NOMEM;
        *p = p_init;
        p->key = g->props[i].key;
        p->value = g->props[i].value;
        m->metadata_props[i] = p;
    }

    /* the checker requires a non-empty graph name */
    gp->name = g->graph_name && g->graph_name[0] ? g->graph_name : sfield("main_graph");
    gp->doc_string = g->graph_doc;
    gp->n_input = (size_t)g->n_inputs;
    gp->input = pool_alloc(pl, gp->n_input, sizeof(*gp->input));
    gp->n_output = (size_t)g->n_outputs;
    gp->output = pool_alloc(pl, gp->n_output, sizeof(*gp->output));
    if (!gp->input || !gp->output)
        return QC_ERR_NOMEM;
    for (int i = 0; i < g->n_inputs; i++) {
        gp->input[i] = make_value_info(pl, &g->values[g->inputs[i]]);
        if (!gp->input[i])
            return QC_ERR_NOMEM;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        gp->output[i] = make_value_info(pl, &g->values[g->outputs[i]]);
        if (!gp->output[i])
            return QC_ERR_NOMEM;
    }
    for (int i = 0; i < g->n_values; i++)
        n_init += g->values[i].init != NULL;
    gp->initializer = pool_alloc(pl, n_init, sizeof(*gp->initializer));
    if (!gp->initializer)
        return QC_ERR_NOMEM;
    for (int i = 0; i < g->n_values; i++) {
        const struct qc_value *v = &g->values[i];
        Onnx__TensorProto *tp;
        uint8_t *packed = NULL;
        if (!v->init)
            continue;
        tp = POOL_NEW(pl, Onnx__TensorProto);
        if (!tp)
            return QC_ERR_NOMEM;
        if (qc_tensor_pb_needs_buffer(v->init)) {
            packed = pool_alloc(pl, qc_tensor_pb_nbytes(v->init), 1);
            if (!packed)
                return QC_ERR_NOMEM;
        }
        qc_tensor_to_pb(v->init, v->name, packed, tp);
        gp->initializer[gp->n_initializer++] = tp;
    }
    gp->n_node = (size_t)g->n_nodes;
    gp->node = pool_alloc(pl, gp->n_node, sizeof(*gp->node));
    if (!gp->node)
        return QC_ERR_NOMEM;
    for (int i = 0; i < g->n_nodes; i++) {
        st = make_node(pl, g, &g->nodes[i], path, &gp->node[i]);
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

enum qc_status qc_onnx_save(const struct qc_graph *g, const char *path)
{
    struct pool pl = { NULL, 0, 0 };
    Onnx__ModelProto m;
    uint8_t *buf = NULL;
    size_t len;
    enum qc_status st;

    st = build_model(&pl, g, &m, path);
    if (st != QC_OK)
        goto out;
    len = onnx__model_proto__get_packed_size(&m);
    buf = qc_malloc(len);
    if (!buf) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    if (onnx__model_proto__pack(&m, buf) != len) {
        qc_log_error("%s: protobuf packing failed", path);
        st = QC_ERR_INTERNAL;
        goto out;
    }
    st = qc_write_file_atomic(path, buf, len);
out:
    qc_free(buf);
    pool_free(&pl);
    return st;
}
