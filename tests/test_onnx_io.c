/*
 * test_onnx_io.c - ONNX reading and writing (onnx/load.c, onnx/save.c,
 * onnx/tensor_pb.c).  Models are built here with the protobuf-c API, so the
 * loader is checked against bytes it did not write itself; the saver is
 * checked by reloading.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "onnx/onnx_io.h"
#include "onnx/tensor_pb.h"
#include "ir/graph.h"

/* ---- a tiny builder: every piece is malloc'ed and freed with the builder -- */

struct mb {
    void  *p[512];
    int    n;
    Onnx__ModelProto  m;
    Onnx__GraphProto  g;
};

static void *mb_alloc(struct mb *b, size_t size)
{
    void *q = calloc(1, size ? size : 1);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_lt(b->n, (int)QC_ARRAY_SIZE(b->p));
    b->p[b->n++] = q;
    return q;
}

static void mb_free(struct mb *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->p[i]);
    b->n = 0;
}

/* Appends ptr to a protobuf-c repeated pointer field (capacity 16). */
#define MB_PUSH(b, arr, n, ptr)                                               \
    do {                                                                      \
        if (!(arr))                                                           \
            (arr) = mb_alloc((b), 16 * sizeof(*(arr)));                       \
        ck_assert_uint_lt((n), 16);                                           \
        (arr)[(n)++] = (ptr);                                                 \
    } while (0)

static void mb_init(struct mb *b, int64_t ir, int64_t opset)
{
    static const Onnx__ModelProto m_init = ONNX__MODEL_PROTO__INIT;
    static const Onnx__GraphProto g_init = ONNX__GRAPH_PROTO__INIT;
    static const Onnx__OperatorSetIdProto o_init = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__OperatorSetIdProto *o;

    memset(b, 0, sizeof(*b));
    b->m = m_init;
    b->g = g_init;
    b->m.has_ir_version = 1;
    b->m.ir_version = ir;
    b->m.graph = &b->g;
    b->g.name = "test_graph";
    o = mb_alloc(b, sizeof(*o));
    *o = o_init;
    o->domain = "";
    o->has_version = 1;
    o->version = opset;
    MB_PUSH(b, b->m.opset_import, b->m.n_opset_import, o);
}

static Onnx__ValueInfoProto *mb_vi(struct mb *b, const char *name, int elem, int ndim,
                                   const int64_t *dims, const char *const *params)
{
    static const Onnx__ValueInfoProto vi_init = ONNX__VALUE_INFO_PROTO__INIT;
    static const Onnx__TypeProto tp_init = ONNX__TYPE_PROTO__INIT;
    static const Onnx__TypeProto__Tensor tt_init = ONNX__TYPE_PROTO__TENSOR__INIT;
    static const Onnx__TensorShapeProto sh_init = ONNX__TENSOR_SHAPE_PROTO__INIT;
    static const Onnx__TensorShapeProto__Dimension d_init =
        ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    Onnx__ValueInfoProto *vi = mb_alloc(b, sizeof(*vi));
    Onnx__TypeProto *tp = mb_alloc(b, sizeof(*tp));
    Onnx__TypeProto__Tensor *tt = mb_alloc(b, sizeof(*tt));

    *vi = vi_init;
    *tp = tp_init;
    *tt = tt_init;
    vi->name = (char *)name;
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    if (ndim >= 0) {
        Onnx__TensorShapeProto *sh = mb_alloc(b, sizeof(*sh));
        *sh = sh_init;
        sh->n_dim = (size_t)ndim;
        sh->dim = mb_alloc(b, (size_t)ndim * sizeof(*sh->dim));
        for (int i = 0; i < ndim; i++) {
            Onnx__TensorShapeProto__Dimension *d = mb_alloc(b, sizeof(*d));
            *d = d_init;
            if (params && params[i]) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = (char *)params[i];
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            }
            sh->dim[i] = d;
        }
        tt->shape = sh;
    }
    return vi;
}

static Onnx__TensorProto *mb_tensor(struct mb *b, const char *name, int dtype, int ndim,
                                    const int64_t *dims)
{
    static const Onnx__TensorProto t_init = ONNX__TENSOR_PROTO__INIT;
    Onnx__TensorProto *t = mb_alloc(b, sizeof(*t));
    *t = t_init;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)ndim;
    t->dims = mb_alloc(b, (size_t)ndim * sizeof(int64_t));
    memcpy(t->dims, dims, (size_t)ndim * sizeof(int64_t));
    return t;
}

static Onnx__NodeProto *mb_node(struct mb *b, const char *op, const char *name,
                                const char *in0, const char *in1, const char *in2,
                                const char *out)
{
    static const Onnx__NodeProto n_init = ONNX__NODE_PROTO__INIT;
    Onnx__NodeProto *n = mb_alloc(b, sizeof(*n));
    const char *ins[3] = { in0, in1, in2 };
    *n = n_init;
    n->op_type = (char *)op;
    n->name = (char *)name;
    for (int i = 0; i < 3; i++)
        if (ins[i])
            MB_PUSH(b, n->input, n->n_input, (char *)ins[i]);
    MB_PUSH(b, n->output, n->n_output, (char *)out);
    MB_PUSH(b, b->g.node, b->g.n_node, n);
    return n;
}

static Onnx__AttributeProto *mb_attr(struct mb *b, Onnx__NodeProto *n, const char *name,
                                     int type)
{
    static const Onnx__AttributeProto a_init = ONNX__ATTRIBUTE_PROTO__INIT;
    Onnx__AttributeProto *a = mb_alloc(b, sizeof(*a));
    *a = a_init;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = (Onnx__AttributeProto__AttributeType)type;
    MB_PUSH(b, n->attribute, n->n_attribute, a);
    return a;
}

static void mb_ints(struct mb *b, Onnx__NodeProto *n, const char *name, int cnt,
                    const int64_t *v)
{
    Onnx__AttributeProto *a = mb_attr(b, n, name, QC_ATTR_INTS);
    a->n_ints = (size_t)cnt;
    a->ints = mb_alloc(b, (size_t)cnt * sizeof(int64_t));
    memcpy(a->ints, v, (size_t)cnt * sizeof(int64_t));
}

static uint8_t *mb_pack(struct mb *b, size_t *len)
{
    uint8_t *buf;
    *len = onnx__model_proto__get_packed_size(&b->m);
    buf = mb_alloc(b, *len);
    ck_assert_uint_eq(onnx__model_proto__pack(&b->m, buf), *len);
    return buf;
}

static const float conv_w[8] = { 1, -2, 3, -4, 0.5f, 0.25f, -0.125f, 8 };
static const float conv_b[2] = { 0.1f, -0.2f };

/* x[N,1,4,4] -> Conv(W[2,1,2,2] float_data, B raw) -> LeakyRelu -> y. */
static void build_convnet(struct mb *b, int64_t ir, int64_t opset)
{
    static const int64_t xdims[4] = { 0, 1, 4, 4 };
    static const char *const xparams[4] = { "N", NULL, NULL, NULL };
    static const int64_t wdims[4] = { 2, 1, 2, 2 };
    static const int64_t bdims[1] = { 2 };
    static const int64_t k[2] = { 2, 2 }, s[2] = { 1, 1 }, p[4] = { 1, 1, 1, 1 };
    static const Onnx__StringStringEntryProto e_init = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    Onnx__TensorProto *w, *bias;
    Onnx__NodeProto *n;
    Onnx__AttributeProto *a;
    Onnx__StringStringEntryProto *e;

    mb_init(b, ir, opset);
    b->m.producer_name = "unit-test";
    b->m.producer_version = "1.2";
    b->m.domain = "org.test";
    b->m.has_model_version = 1;
    b->m.model_version = 7;
    b->m.doc_string = "model doc";
    b->g.doc_string = "graph doc";
    e = mb_alloc(b, sizeof(*e));
    *e = e_init;
    e->key = "author";
    e->value = "me";
    MB_PUSH(b, b->m.metadata_props, b->m.n_metadata_props, e);

    MB_PUSH(b, b->g.input, b->g.n_input, mb_vi(b, "x", 1, 4, xdims, xparams));
    MB_PUSH(b, b->g.output, b->g.n_output, mb_vi(b, "y", 1, -1, NULL, NULL));
    w = mb_tensor(b, "W", 1, 4, wdims);
    w->n_float_data = 8;
    w->float_data = (float *)conv_w;
    bias = mb_tensor(b, "B", 1, 1, bdims);
    bias->has_raw_data = 1;
    bias->raw_data.len = sizeof(conv_b);
    bias->raw_data.data = (uint8_t *)conv_b;
    MB_PUSH(b, b->g.initializer, b->g.n_initializer, w);
    MB_PUSH(b, b->g.initializer, b->g.n_initializer, bias);

    n = mb_node(b, "Conv", "conv1", "x", "W", "B", "c");
    n->doc_string = "the conv";
    mb_ints(b, n, "kernel_shape", 2, k);
    mb_ints(b, n, "strides", 2, s);
    mb_ints(b, n, "pads", 4, p);
    a = mb_attr(b, n, "group", QC_ATTR_INT);
    a->has_i = 1;
    a->i = 1;
    n = mb_node(b, "LeakyRelu", "", "c", NULL, NULL, "y");
    a = mb_attr(b, n, "alpha", QC_ATTR_FLOAT);
    a->has_f = 1;
    a->f = 0.125f;
}

/* A node of a custom domain carrying every writable attribute type (parsed
 * without finalize: qatconv does not run it, but must keep it). */
static void add_attr_zoo(struct mb *b)
{
    static const float fl[3] = { 1.5f, -2.5f, 0.0f };
    static const int64_t one[1] = { 3 };
    static const int32_t i8vals[3] = { -1, 2, -3 };
    static ProtobufCBinaryData strs[2] = { { 3, (uint8_t *)"abc" }, { 0, (uint8_t *)"" } };
    Onnx__NodeProto *n = mb_node(b, "Zoo", "zoo", "y", "", NULL, "z");
    Onnx__AttributeProto *a;

    n->domain = "com.test";
    a = mb_attr(b, n, "f", QC_ATTR_FLOAT);
    a->has_f = 1;
    a->f = 3.25f;
    a = mb_attr(b, n, "i", QC_ATTR_INT);
    a->has_i = 1;
    a->i = -42;
    a = mb_attr(b, n, "s", QC_ATTR_STRING);
    a->has_s = 1;
    a->s.len = 5;
    a->s.data = (uint8_t *)"hello";
    a = mb_attr(b, n, "fs", QC_ATTR_FLOATS);
    a->n_floats = 3;
    a->floats = (float *)fl;
    mb_ints(b, n, "is", 1, one);
    a = mb_attr(b, n, "ss", QC_ATTR_STRINGS);
    a->n_strings = 2;
    a->strings = strs;
    a = mb_attr(b, n, "t", QC_ATTR_TENSOR);
    a->t = mb_tensor(b, NULL, QC_DTYPE_I8, 1, one);
    a->t->n_int32_data = 3;
    a->t->int32_data = (int32_t *)i8vals;
}

static void check_attrs_equal(const struct qc_attrs *x, const struct qc_attrs *y)
{
    ck_assert_int_eq(x->n, y->n);
    for (int i = 0; i < x->n; i++) {
        const struct qc_attr *a = &x->v[i], *c = &y->v[i];
        ck_assert_str_eq(a->name, c->name);
        ck_assert_int_eq(a->type, c->type);
        ck_assert(a->f == c->f);
        ck_assert_int_eq(a->i, c->i);
        ck_assert_int_eq(a->n, c->n);
        if (a->s)
            ck_assert_str_eq(a->s, c->s);
        for (int64_t k = 0; k < a->n; k++) {
            if (a->type == QC_ATTR_FLOATS)
                ck_assert(a->floats[k] == c->floats[k]);
            if (a->type == QC_ATTR_INTS)
                ck_assert_int_eq(a->ints[k], c->ints[k]);
            if (a->type == QC_ATTR_STRINGS)
                ck_assert_str_eq(a->strings[k], c->strings[k]);
        }
        if (a->t) {
            ck_assert_int_eq(a->t->dtype, c->t->dtype);
            ck_assert(qc_shape_equal(&a->t->shape, &c->t->shape));
            ck_assert_mem_eq(a->t->data, c->t->data, qc_tensor_nbytes(a->t));
        }
    }
}

static const char *opt(const char *s)
{
    return s ? s : "(null)";
}

/* Everything that save promises to keep. */
static void check_graphs_equal(const struct qc_graph *a, const struct qc_graph *b)
{
    ck_assert_int_eq(a->ir_version, b->ir_version);
    ck_assert_int_eq(a->opset, b->opset);
    ck_assert_int_eq(a->n_opsets, b->n_opsets);
    for (int i = 0; i < a->n_opsets; i++) {
        ck_assert_str_eq(a->opsets[i].domain, b->opsets[i].domain);
        ck_assert_int_eq(a->opsets[i].version, b->opsets[i].version);
    }
    ck_assert_str_eq(opt(a->producer_name), opt(b->producer_name));
    ck_assert_str_eq(opt(a->producer_version), opt(b->producer_version));
    ck_assert_str_eq(opt(a->domain), opt(b->domain));
    ck_assert_str_eq(opt(a->doc_string), opt(b->doc_string));
    ck_assert_int_eq(a->model_version, b->model_version);
    ck_assert_str_eq(opt(a->graph_name), opt(b->graph_name));
    ck_assert_str_eq(opt(a->graph_doc), opt(b->graph_doc));
    ck_assert_int_eq(a->n_props, b->n_props);
    for (int i = 0; i < a->n_props; i++) {
        ck_assert_str_eq(a->props[i].key, b->props[i].key);
        ck_assert_str_eq(a->props[i].value, b->props[i].value);
    }
    ck_assert_int_eq(a->n_inputs, b->n_inputs);
    ck_assert_int_eq(a->n_outputs, b->n_outputs);
    for (int i = 0; i < a->n_inputs + a->n_outputs; i++) {
        const struct qc_value *va = i < a->n_inputs ? &a->values[a->inputs[i]]
                                                    : &a->values[a->outputs[i - a->n_inputs]];
        const struct qc_value *vb = i < a->n_inputs ? &b->values[b->inputs[i]]
                                                    : &b->values[b->outputs[i - b->n_inputs]];
        ck_assert_str_eq(va->name, vb->name);
        ck_assert_int_eq(va->dtype, vb->dtype);
        ck_assert_int_eq(va->has_shape, vb->has_shape);
        ck_assert(qc_shape_equal(&va->shape, &vb->shape));
        for (int d = 0; d < va->shape.ndim; d++)
            ck_assert_str_eq(opt(va->dim_param[d]), opt(vb->dim_param[d]));
    }
    for (int i = 0; i < a->n_values; i++) {
        const struct qc_value *va = &a->values[i];
        int j = qc_graph_find_value(b, va->name);
        ck_assert_int_ge(j, 0);
        ck_assert_int_eq(va->init != NULL, b->values[j].init != NULL);
        if (va->init) {
            ck_assert_int_eq(va->init->dtype, b->values[j].init->dtype);
            ck_assert(qc_shape_equal(&va->init->shape, &b->values[j].init->shape));
            ck_assert_mem_eq(va->init->data, b->values[j].init->data,
                             qc_tensor_nbytes(va->init));
        }
    }
    ck_assert_int_eq(a->n_nodes, b->n_nodes);
    for (int i = 0; i < a->n_nodes; i++) {
        const struct qc_node *na = &a->nodes[i], *nb = &b->nodes[i];
        ck_assert_str_eq(na->name, nb->name);
        ck_assert_str_eq(na->op_type, nb->op_type);
        ck_assert_str_eq(na->domain, nb->domain);
        ck_assert_str_eq(opt(na->doc_string), opt(nb->doc_string));
        ck_assert_int_eq(na->n_in, nb->n_in);
        ck_assert_int_eq(na->n_out, nb->n_out);
        for (int k = 0; k < na->n_in; k++) {
            ck_assert_int_eq(na->in[k] < 0, nb->in[k] < 0);
            if (na->in[k] >= 0)
                ck_assert_str_eq(a->values[na->in[k]].name, b->values[nb->in[k]].name);
        }
        for (int k = 0; k < na->n_out; k++)
            ck_assert_str_eq(a->values[na->out[k]].name, b->values[nb->out[k]].name);
        check_attrs_equal(&na->attrs, &nb->attrs);
    }
}

/* A fresh directory for files of one test (removed by rm_tree). */
static void make_tmpdir(char *buf, size_t len)
{
    const char *t = getenv("TMPDIR");
    snprintf(buf, len, "%s/qc_onnx_io.XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- tensors ------------------------------------------------------------------ */

START_TEST(test_tensor_raw_vs_typed)
{
    static const int64_t dims[2] = { 2, 3 };
    static const int dts[] = { QC_DTYPE_F32, QC_DTYPE_U8, QC_DTYPE_I8, QC_DTYPE_U16,
                               QC_DTYPE_I16, QC_DTYPE_I32, QC_DTYPE_I64, QC_DTYPE_BOOL,
                               QC_DTYPE_F64, QC_DTYPE_U32, QC_DTYPE_U64 };
    static const int32_t vals[6] = { 0, 1, 2, 3, 100, 7 };
    struct mb b;
    mb_init(&b, 8, 13);
    for (size_t k = 0; k < QC_ARRAY_SIZE(dts); k++) {
        enum qc_dtype dt = (enum qc_dtype)dts[k];
        Onnx__TensorProto *typed = mb_tensor(&b, "t", dt, 2, dims);
        Onnx__TensorProto *raw = mb_tensor(&b, "t", dt, 2, dims);
        struct qc_tensor *ta = NULL, *tb = NULL;
        float f[6];
        double d[6];
        int64_t i64[6];
        uint64_t u64[6];
        int32_t i32[6];
        for (int i = 0; i < 6; i++) {
            f[i] = (float)vals[i];
            d[i] = vals[i];
            i64[i] = vals[i];
            u64[i] = (uint64_t)vals[i];
            i32[i] = dt == QC_DTYPE_BOOL ? vals[i] != 0 : vals[i];
        }
        switch (dt) {
        case QC_DTYPE_F32: typed->n_float_data = 6; typed->float_data = f; break;
        case QC_DTYPE_F64: typed->n_double_data = 6; typed->double_data = d; break;
        case QC_DTYPE_I64: typed->n_int64_data = 6; typed->int64_data = i64; break;
        case QC_DTYPE_U32:
        case QC_DTYPE_U64: typed->n_uint64_data = 6; typed->uint64_data = u64; break;
        default: typed->n_int32_data = 6; typed->int32_data = i32; break;
        }
        ck_assert_int_eq(qc_tensor_from_pb(typed, "m.onnx", NULL, &ta), QC_OK);
        ck_assert_int_eq(ta->dtype, dt);
        ck_assert_int_eq(ta->shape.ndim, 2);
        for (int i = 0; i < 6; i++)
            ck_assert_int_eq(qc_tensor_get_i64(ta, i), i32[i]);
        raw->has_raw_data = 1;
        raw->raw_data.len = qc_tensor_nbytes(ta);
        raw->raw_data.data = ta->data;
        ck_assert_int_eq(qc_tensor_from_pb(raw, "m.onnx", NULL, &tb), QC_OK);
        ck_assert_mem_eq(ta->data, tb->data, qc_tensor_nbytes(ta));
        /* and back: to_pb writes raw_data that reads the same */
        {
            Onnx__TensorProto out;
            struct qc_tensor *tc = NULL;
            qc_tensor_to_pb(tb, "t", NULL, &out);
            ck_assert(out.has_raw_data);
            ck_assert_int_eq(qc_tensor_from_pb(&out, "m.onnx", NULL, &tc), QC_OK);
            ck_assert_mem_eq(ta->data, tc->data, qc_tensor_nbytes(ta));
            qc_tensor_free(tc);
        }
        qc_tensor_free(ta);
        qc_tensor_free(tb);
    }
    mb_free(&b);
}
END_TEST

START_TEST(test_tensor_errors)
{
    static const int64_t dims[2] = { 2, 2 };
    static const int64_t neg[2] = { 2, -1 };
    static const float f3[3] = { 1, 2, 3 };
    struct qc_tensor *t = NULL;
    struct mb b;
    Onnx__TensorProto *tp;

    mb_init(&b, 8, 13);
    tp = mb_tensor(&b, "short_raw", QC_DTYPE_F32, 2, dims);
    tp->has_raw_data = 1;
    tp->raw_data.len = sizeof(f3);
    tp->raw_data.data = (uint8_t *)f3;
    ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_ONNX);
    ck_assert_ptr_null(t);

    tp = mb_tensor(&b, "short_typed", QC_DTYPE_F32, 2, dims);
    tp->n_float_data = 3;
    tp->float_data = (float *)f3;
    ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_ONNX);

    tp = mb_tensor(&b, "nodata", QC_DTYPE_I64, 2, dims);
    ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_ONNX);

    tp = mb_tensor(&b, "negdim", QC_DTYPE_F32, 2, neg);
    ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_ONNX);

    tp = mb_tensor(&b, "notype", 0, 2, dims);
    ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_ONNX);

    tp = mb_tensor(&b, "str", 8, 2, dims);
    ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_UNSUPPORTED);
    /* float16 / bfloat16 are read (test_tensor_half); complex and float8 are not */
    tp = mb_tensor(&b, "complex", 14, 2, dims);
    tp->has_raw_data = 1;
    tp->raw_data.len = 8;
    tp->raw_data.data = (uint8_t *)f3;
    ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_UNSUPPORTED);
    tp->data_type = 17;
    ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_UNSUPPORTED);

    /* empty tensor (e.g. Resize roi) is fine */
    {
        static const int64_t zero[1] = { 0 };
        tp = mb_tensor(&b, "empty", QC_DTYPE_F32, 1, zero);
        ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_OK);
        ck_assert_int_eq(qc_tensor_nelem(t), 0);
        qc_tensor_free(t);
    }
    /* external data without a model directory */
    tp = mb_tensor(&b, "ext", QC_DTYPE_F32, 2, dims);
    tp->has_data_location = 1;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_ONNX);
    mb_free(&b);
}
END_TEST

START_TEST(test_load_tensor_file)
{
    static const int64_t dims[3] = { 1, 2, 2 };
    static const float v[4] = { 1, 2, 3, 4 };
    struct qc_tensor *t = NULL;
    char *name = NULL;
    char path[512];
    uint8_t *buf;
    size_t len;
    struct mb b;
    Onnx__TensorProto *tp;

    mb_init(&b, 8, 13);
    tp = mb_tensor(&b, "input_0", QC_DTYPE_F32, 3, dims);
    tp->n_float_data = 4;
    tp->float_data = (float *)v;
    len = onnx__tensor_proto__get_packed_size(tp);
    buf = mb_alloc(&b, len);
    onnx__tensor_proto__pack(tp, buf);
    qc_test_tmpfile(path, sizeof(path), buf, len);
    ck_assert_int_eq(qc_onnx_load_tensor(path, &t, &name), QC_OK);
    ck_assert_str_eq(name, "input_0");
    ck_assert_int_eq(t->shape.ndim, 3);
    ck_assert_mem_eq(t->data, v, sizeof(v));
    qc_tensor_free(t);
    qc_free(name);
    unlink(path);
    ck_assert_int_eq(qc_onnx_load_tensor(path, &t, NULL), QC_ERR_ONNX);
    mb_free(&b);
}
END_TEST

/* ---- models ------------------------------------------------------------------- */

START_TEST(test_load_small_model)
{
    struct qc_graph *g = NULL;
    struct mb b;
    const struct qc_value *x, *w;
    size_t len;
    uint8_t *buf;

    build_convnet(&b, 8, 13);
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_load_buffer(buf, len, "small.onnx", NULL, &g), QC_OK);
    ck_assert_str_eq(g->path, "small.onnx");
    ck_assert_int_eq(g->ir_version, 8);
    ck_assert_int_eq(g->opset, 13);
    ck_assert_int_eq(g->n_inputs, 1);
    ck_assert_int_eq(g->n_outputs, 1);
    x = &g->values[g->inputs[0]];
    ck_assert_str_eq(x->name, "x");
    ck_assert(x->is_input);
    ck_assert(x->has_shape);
    ck_assert_int_eq(x->dtype, QC_DTYPE_F32);
    ck_assert_int_eq(x->shape.ndim, 4);
    ck_assert_int_eq(x->shape.dims[0], -1);
    ck_assert_str_eq(x->dim_param[0], "N");
    ck_assert_int_eq(x->shape.dims[3], 4);
    ck_assert(g->values[g->outputs[0]].is_output);
    ck_assert(!g->values[g->outputs[0]].has_shape);
    w = &g->values[qc_graph_find_value(g, "W")];
    ck_assert_ptr_nonnull(w->init);
    ck_assert_mem_eq(w->init->data, conv_w, sizeof(conv_w));
    ck_assert_mem_eq(g->values[qc_graph_find_value(g, "B")].init->data, conv_b,
                     sizeof(conv_b));
    ck_assert_int_eq(g->n_nodes, 2);
    ck_assert_str_eq(g->nodes[0].op_type, "Conv");
    ck_assert_str_eq(g->nodes[0].doc_string, "the conv");
    ck_assert_int_eq(g->nodes[0].n_in, 3);
    ck_assert_ptr_nonnull(qc_attr_find(&g->nodes[0].attrs, "pads"));
    ck_assert_str_eq(qc_node_label(g, &g->nodes[1]), "y");
    ck_assert(qc_attr_find(&g->nodes[1].attrs, "alpha")->f == 0.125f);
    ck_assert_str_eq(g->producer_name, "unit-test");
    ck_assert_int_eq(g->model_version, 7);
    ck_assert_int_eq(g->n_props, 1);
    ck_assert_str_eq(g->props[0].value, "me");
    qc_graph_free(g);
    mb_free(&b);
}
END_TEST

START_TEST(test_save_roundtrip)
{
    struct qc_graph *g = NULL, *h = NULL;
    char dir[512], path[600];
    struct stat sb;
    struct mb b;
    size_t len;
    uint8_t *buf;

    build_convnet(&b, 7, 12);
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_load_buffer(buf, len, "small.onnx", NULL, &g), QC_OK);
    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/out.onnx", dir);
    ck_assert_int_eq(qc_onnx_save(g, path), QC_OK);
    ck_assert_int_eq(qc_onnx_load(path, &h), QC_OK);
    check_graphs_equal(g, h);
    qc_graph_free(h);
    /* overwrite: still one file, no temporaries left behind */
    ck_assert_int_eq(qc_onnx_save(g, path), QC_OK);
    ck_assert_int_eq(count_entries(dir), 1);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_ne(sb.st_mode & 0044, 0);
    rm_tree(dir);
    qc_graph_free(g);
    mb_free(&b);
}
END_TEST

START_TEST(test_attr_roundtrip)
{
    struct qc_graph *g = NULL, *h = NULL;
    char dir[512], path[600];
    struct mb b;
    const struct qc_node *zoo;
    size_t len;
    uint8_t *buf;

    build_convnet(&b, 8, 13);
    add_attr_zoo(&b);
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_parse(buf, len, "zoo.onnx", NULL, &g), QC_OK);
    zoo = &g->nodes[2];
    ck_assert_str_eq(zoo->domain, "com.test");
    ck_assert_int_eq(zoo->n_in, 2);
    ck_assert_int_eq(zoo->in[1], -1);
    ck_assert_int_eq(zoo->attrs.n, 7);
    ck_assert_str_eq(qc_attr_find(&zoo->attrs, "s")->s, "hello");
    ck_assert_str_eq(qc_attr_find(&zoo->attrs, "ss")->strings[0], "abc");
    ck_assert_str_eq(qc_attr_find(&zoo->attrs, "ss")->strings[1], "");
    ck_assert_int_eq(qc_attr_find(&zoo->attrs, "t")->t->dtype, QC_DTYPE_I8);
    ck_assert_int_eq(((int8_t *)qc_attr_find(&zoo->attrs, "t")->t->data)[2], -3);
    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/zoo.onnx", dir);
    ck_assert_int_eq(qc_onnx_save(g, path), QC_OK);
    {
        void *fb;
        size_t flen;
        ck_assert_int_eq(qc_onnx_read_file(path, &fb, &flen), QC_OK);
        ck_assert_int_eq(qc_onnx_parse(fb, flen, path, dir, &h), QC_OK);
        qc_free(fb);
    }
    check_graphs_equal(g, h);
    qc_graph_free(h);
    rm_tree(dir);
    qc_graph_free(g);
    mb_free(&b);
}
END_TEST

START_TEST(test_save_graph_attr_refused)
{
    static const Onnx__GraphProto sub_init = ONNX__GRAPH_PROTO__INIT;
    struct qc_graph *g = NULL;
    char dir[512], path[600];
    Onnx__GraphProto sub = sub_init;
    Onnx__AttributeProto *a;
    struct mb b;
    size_t len;
    uint8_t *buf;

    build_convnet(&b, 8, 13);
    a = mb_attr(&b, b.g.node[1], "body", QC_ATTR_GRAPH);
    sub.name = "body";
    a->g = &sub;
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_parse(buf, len, "g.onnx", NULL, &g), QC_OK);
    ck_assert_int_eq(qc_attr_find(&g->nodes[1].attrs, "body")->type, QC_ATTR_GRAPH);
    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/g.onnx", dir);
    ck_assert_int_eq(qc_onnx_save(g, path), QC_ERR_UNSUPPORTED);
    ck_assert_int_eq(count_entries(dir), 0);
    rm_tree(dir);
    qc_graph_free(g);
    mb_free(&b);
}
END_TEST

START_TEST(test_external_data)
{
    static const char *const bad_locs[] = { "../w.bin", "/etc/passwd", "a/../../w.bin", "" };
    static const int64_t wdims[4] = { 2, 1, 2, 2 };
    static const Onnx__StringStringEntryProto e_init = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    Onnx__StringStringEntryProto *loc, *off, *ln;
    struct qc_graph *g = NULL;
    char dir[512], path[600], wpath[600];
    uint8_t file[64 + sizeof(conv_w)];
    Onnx__TensorProto *w;
    struct mb b;
    size_t len;
    uint8_t *buf;

    build_convnet(&b, 8, 13);
    w = mb_tensor(&b, "W", 1, 4, wdims);
    w->has_data_location = 1;
    w->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    loc = mb_alloc(&b, sizeof(*loc));
    off = mb_alloc(&b, sizeof(*off));
    ln = mb_alloc(&b, sizeof(*ln));
    *loc = *off = *ln = e_init;
    loc->key = "location";
    loc->value = "weights.bin";
    off->key = "offset";
    off->value = "64";
    ln->key = "length";
    ln->value = "32";
    MB_PUSH(&b, w->external_data, w->n_external_data, loc);
    MB_PUSH(&b, w->external_data, w->n_external_data, off);
    MB_PUSH(&b, w->external_data, w->n_external_data, ln);
    b.g.initializer[0] = w;

    make_tmpdir(dir, sizeof(dir));
    memset(file, 0xAB, sizeof(file));
    memcpy(file + 64, conv_w, sizeof(conv_w));
    snprintf(wpath, sizeof(wpath), "%s/weights.bin", dir);
    write_file(wpath, file, sizeof(file));
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    buf = mb_pack(&b, &len);
    write_file(path, buf, len);
    ck_assert_int_eq(qc_onnx_load(path, &g), QC_OK);
    ck_assert_mem_eq(g->values[qc_graph_find_value(g, "W")].init->data, conv_w,
                     sizeof(conv_w));
    qc_graph_free(g);
    /* in memory without a base directory: an error */
    ck_assert_int_eq(qc_onnx_load_buffer(buf, len, "mem.onnx", NULL, &g), QC_ERR_ONNX);

    /* wrong length, file too short, paths escaping the directory */
    ln->value = "28";
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_load_buffer(buf, len, path, dir, &g), QC_ERR_ONNX);
    ln->value = "32";
    off->value = "70";
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_load_buffer(buf, len, path, dir, &g), QC_ERR_ONNX);
    off->value = "-4";
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_load_buffer(buf, len, path, dir, &g), QC_ERR_ONNX);
    off->value = "64";
    for (size_t i = 0; i < QC_ARRAY_SIZE(bad_locs); i++) {
        loc->value = (char *)bad_locs[i];
        buf = mb_pack(&b, &len);
        ck_assert_int_eq(qc_onnx_load_buffer(buf, len, path, dir, &g), QC_ERR_ONNX);
        ck_assert_ptr_null(g);
    }
    loc->value = "missing.bin";
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_load_buffer(buf, len, path, dir, &g), QC_ERR_ONNX);
    rm_tree(dir);
    mb_free(&b);
}
END_TEST

START_TEST(test_corrupt_input)
{
    struct qc_graph *g = NULL;
    char path[512];
    uint8_t rnd[256];
    uint32_t s = 12345;
    struct mb b;
    size_t len;
    uint8_t *buf;

    build_convnet(&b, 8, 13);
    /* without trailing metadata a cut can never fall on a field boundary
     * that leaves a complete model */
    b.m.n_metadata_props = 0;
    buf = mb_pack(&b, &len);
    /* truncated: every cut must be refused as a malformed model */
    for (size_t cut = 1; cut < len; cut += (cut < 8 || cut > len - 8) ? 1 : 17) {
        ck_assert_int_eq(qc_onnx_load_buffer(buf, cut, "cut.onnx", NULL, &g), QC_ERR_ONNX);
        ck_assert_ptr_null(g);
    }
    for (int k = 0; k < 20; k++) {
        for (size_t i = 0; i < sizeof(rnd); i++) {
            s = s * 1664525u + 1013904223u;   /* LCG, fixed seed */
            rnd[i] = (uint8_t)(s >> 24);
        }
        ck_assert_int_eq(qc_onnx_load_buffer(rnd, sizeof(rnd), "rnd.onnx", NULL, &g),
                         QC_ERR_ONNX);
    }
    ck_assert_int_eq(qc_onnx_load_buffer(buf, 0, "empty.onnx", NULL, &g), QC_ERR_ONNX);
    qc_test_tmpfile(path, sizeof(path), buf, 0);
    ck_assert_int_eq(qc_onnx_load(path, &g), QC_ERR_ONNX);
    unlink(path);
    ck_assert_int_eq(qc_onnx_load(path, &g), QC_ERR_ONNX);
    qc_test_tmpfile(path, sizeof(path), buf, len / 2);
    ck_assert_int_eq(qc_onnx_load(path, &g), QC_ERR_ONNX);
    unlink(path);
    mb_free(&b);
}
END_TEST

START_TEST(test_versions)
{
    static const int64_t cases[][3] = {
        /* ir, opset, expected */
        { 8, 6, QC_ERR_UNSUPPORTED }, { 8, 24, QC_ERR_UNSUPPORTED },
        { 2, 13, QC_ERR_UNSUPPORTED }, { 14, 13, QC_ERR_UNSUPPORTED },
        { 3, 7, QC_OK }, { 10, 23, QC_OK },
    };
    struct qc_graph *g = NULL;
    struct mb b;
    size_t len;
    uint8_t *buf;

    for (size_t i = 0; i < QC_ARRAY_SIZE(cases); i++) {
        build_convnet(&b, cases[i][0], cases[i][1]);
        buf = mb_pack(&b, &len);
        ck_assert_int_eq(qc_onnx_parse(buf, len, "v.onnx", NULL, &g), (int)cases[i][2]);
        qc_graph_free(g);
        g = NULL;
        mb_free(&b);
    }
    /* "ai.onnx" spells the default domain too; no default opset is malformed */
    build_convnet(&b, 8, 13);
    b.m.opset_import[0]->domain = "ai.onnx";
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_parse(buf, len, "v.onnx", NULL, &g), QC_OK);
    ck_assert_int_eq(g->opset, 13);
    qc_graph_free(g);
    b.m.opset_import[0]->domain = "com.other";
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_parse(buf, len, "v.onnx", NULL, &g), QC_ERR_ONNX);
    mb_free(&b);
}
END_TEST

START_TEST(test_save_atomic_failure)
{
    struct qc_graph *g = NULL;
    char dir[256], sub[384], path[512], xf[600];
    struct stat sb;
    struct mb b;
    size_t len;
    uint8_t *buf;

    build_convnet(&b, 8, 13);
    buf = mb_pack(&b, &len);
    ck_assert_int_eq(qc_onnx_load_buffer(buf, len, "a.onnx", NULL, &g), QC_OK);
    make_tmpdir(dir, sizeof(dir));
    snprintf(sub, sizeof(sub), "%s/no/such/dir", dir);
    snprintf(path, sizeof(path), "%s/out.onnx", sub);
    ck_assert_int_eq(qc_onnx_save(g, path), QC_ERR_IO);
    ck_assert_int_ne(stat(sub, &sb), 0);
    ck_assert_int_eq(count_entries(dir), 0);
    /* a directory in the way of the destination: rename fails, temp removed */
    snprintf(path, sizeof(path), "%s/taken", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(xf, sizeof(xf), "%s/x", path);
    write_file(xf, "keep", 4);
    ck_assert_int_eq(qc_onnx_save(g, path), QC_ERR_IO);
    ck_assert_int_eq(count_entries(dir), 1);
    ck_assert_int_eq(count_entries(path), 1);
    unlink(xf);
    rmdir(path);
    rm_tree(dir);
    qc_graph_free(g);
    mb_free(&b);
}
END_TEST

/* float16 / bfloat16 tensors (raw_data and int32_data) read as float32 that
 * remembers the file type, and are written back with the same bits. */
START_TEST(test_tensor_half)
{
    static const int64_t dims[1] = { 5 };
    static const uint16_t h16[5] = { 0x3C00, 0xC000, 0x0001, 0x7BFF, 0x3555 };
    static const float want16[5] = { 1.0f, -2.0f, 0x1p-24f, 65504.0f, 0.333251953125f };
    static const uint16_t b16[5] = { 0x3F80, 0xC000, 0x0001, 0x4049, 0x7F80 };
    struct mb b;
    mb_init(&b, 8, 13);
    for (int k = 0; k < 4; k++) {
        int dt = k < 2 ? QC_FILE_DTYPE_F16 : QC_FILE_DTYPE_BF16;
        const uint16_t *bits = k < 2 ? h16 : b16;
        Onnx__TensorProto *tp = mb_tensor(&b, "h", dt, 1, dims), out;
        struct qc_tensor *t = NULL, *t2 = NULL;
        int32_t i32[5];
        uint8_t packed[10];
        for (int i = 0; i < 5; i++)
            i32[i] = bits[i];
        if (k % 2 == 0) {
            tp->has_raw_data = 1;
            tp->raw_data.len = sizeof(h16);
            tp->raw_data.data = (uint8_t *)bits;
        } else {
            tp->n_int32_data = 5;
            tp->int32_data = i32;
        }
        ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_OK);
        ck_assert_int_eq(t->dtype, QC_DTYPE_F32);
        ck_assert_int_eq(t->file_dtype, dt);
        for (int i = 0; i < 5; i++)
            ck_assert(qc_tensor_f32(t)[i] ==
                      (dt == QC_FILE_DTYPE_F16 ? want16[i] : qc_bf16_to_float(b16[i])));
        ck_assert(qc_tensor_pb_needs_buffer(t));
        ck_assert_uint_eq(qc_tensor_pb_nbytes(t), 10);
        qc_tensor_to_pb(t, "h", packed, &out);
        ck_assert_int_eq(out.data_type, dt);
        ck_assert_mem_eq(out.raw_data.data, bits, 10);
        ck_assert_int_eq(qc_tensor_from_pb(&out, "m.onnx", NULL, &t2), QC_OK);
        ck_assert_mem_eq(t->data, t2->data, 5 * sizeof(float));
        qc_tensor_free(t);
        qc_tensor_free(t2);
    }
    {
        Onnx__TensorProto *tp = mb_tensor(&b, "short", QC_FILE_DTYPE_F16, 1, dims);
        struct qc_tensor *t = NULL;
        tp->has_raw_data = 1;
        tp->raw_data.len = 4;
        tp->raw_data.data = (uint8_t *)h16;
        ck_assert_int_eq(qc_tensor_from_pb(tp, "m.onnx", NULL, &t), QC_ERR_ONNX);
        ck_assert_ptr_null(t);
    }
    mb_free(&b);
}
END_TEST

Suite *qc_suite_onnx_io(void)
{
    Suite *s = suite_create("onnx_io");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, test_tensor_raw_vs_typed);
    tcase_add_test(tc, test_tensor_errors);
    tcase_add_test(tc, test_tensor_half);
    tcase_add_test(tc, test_load_tensor_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("load");
    tcase_add_test(tc, test_load_small_model);
    tcase_add_test(tc, test_external_data);
    tcase_add_test(tc, test_corrupt_input);
    tcase_add_test(tc, test_versions);
    suite_add_tcase(s, tc);
    tc = tcase_create("save");
    tcase_add_test(tc, test_save_roundtrip);
    tcase_add_test(tc, test_attr_roundtrip);
    tcase_add_test(tc, test_save_graph_attr_refused);
    tcase_add_test(tc, test_save_atomic_failure);
    suite_add_tcase(s, tc);
    return s;
}
