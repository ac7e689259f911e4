/*
 * fold.c - the ops of shape subgraphs: Shape, Constant, ConstantOfShape,
 * Gather, Cast and Slice.
 *
 * PyTorch exports x.view(x.size(0), -1) as Shape -> Gather -> Unsqueeze ->
 * Concat -> Reshape; the plan evaluates such chains once per batch size on
 * the CPU (Shape and Constant always, the others when every input is
 * constant), so only the final Reshape runs per batch.  The kernels here are
 * dtype-generic byte movers, except Cast, which converts between every pair
 * of supported types (int4/uint4 included) exactly as ONNX Runtime does on
 * x86-64 (rules next to f_to_i64).  Cast also runs per batch on activations
 * (integer-only exports: int32 -> int64 -> uint8 -> float).  The same kernels
 * run per batch when their inputs are not constant (Gather or Slice on
 * activations).  Input-form attributes (Slice starts/ends/axes/steps) must
 * be constants at infer time and are re-read from those inputs in forward.
 * Gather and Slice have a float backward (scatter-add of dy into the
 * gathered rows / the sliced box) for the rare case where they act on
 * activations that need a gradient.
 */
#include <config.h>

#include "op.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/attr.h"
#include "util/log.h"

/* ---------------------------------------------------------------- helpers */

/* ------------------------------------------------------------------ Shape */

struct shape_params {
    int64_t start, end;
    bool    has_end;
};

static enum qc_status shape_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct shape_params *p;
    int64_t start = 0, end = 0;
    bool has_end = false;
    enum qc_status st;
    qc_op_where(where, sizeof(where), "Shape", label);
    if (opset >= 15) {
        has_end = qc_attr_find(&n->attrs, "end") != NULL;
        st = qc_attr_int(&n->attrs, where, "start", 0, &start);
        if (st == QC_OK)
            st = qc_attr_int(&n->attrs, where, "end", 0, &end);
        if (st != QC_OK)
            return st;
    } else if (qc_attr_find(&n->attrs, "start") || qc_attr_find(&n->attrs, "end")) {
        qc_log_error("%s: attributes 'start'/'end' are not valid before opset 15", where);
        return QC_ERR_ONNX;
    }
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->start = start;
    p->end = end;
    p->has_end = has_end;
    return QC_OK;
}

/* Negative start/end count from the back; both clamp to [0, r]. */
static void shape_range(const struct qc_node *n, int r, int *start, int *len)
{
    const struct shape_params *p = n->params;
    int64_t s = p->start, e = p->has_end ? p->end : r;
    if (s < 0)
        s += r;
    if (e < 0)
        e += r;
    s = QC_MIN(QC_MAX(s, 0), r);
    e = QC_MIN(QC_MAX(e, 0), r);
    *start = (int)s;
    *len = (int)QC_MAX(e - s, 0);
}

static enum qc_status shape_infer(const struct qc_node *n, const char *label,
                                  const struct qc_tensor *const *in,
                                  struct qc_tensor *const *out)
{
    int start, len;
    int64_t d;
    (void)label;
    shape_range(n, in[0]->shape.ndim, &start, &len);
    d = len;
    out[0]->dtype = QC_DTYPE_I64;
    out[0]->shape = qc_shape_make(1, &d);
    return QC_OK;
}

/* Reads only in[0]->shape: in[0]->data may be NULL at plan time. */
static enum qc_status shape_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                        const struct qc_tensor *const *in,
                                        struct qc_tensor *const *out)
{
    int start, len;
    int64_t *o = qc_tensor_i64(out[0]);
    (void)ctx;
    shape_range(n, in[0]->shape.ndim, &start, &len);
    for (int i = 0; i < len; i++)
        o[i] = in[0]->shape.dims[start + i];
    return QC_OK;
}

const struct qc_op_def qc_op_shape = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_ALWAYS, .parse = shape_parse, .infer = shape_infer,
    .cpu = { .forward = shape_forward_cpu, .backward = NULL },
};

/* --------------------------------------------------------------- Constant */

/* Which attribute holds the value; forward copies from it (the node's
 * attributes outlive its params). */
enum const_src {
    CONST_TENSOR,                    /* value                                */
    CONST_FLOAT,                     /* value_float: float32 scalar          */
    CONST_FLOATS,                    /* value_floats: float32 1-D            */
    CONST_INT,                       /* value_int: int64 scalar              */
    CONST_INTS,                      /* value_ints: int64 1-D                */
};

struct constant_params {
    enum const_src  src;
    const char     *attr;            /* static string: the attribute's name  */
    enum qc_dtype   dtype;
    struct qc_shape shape;
};

static enum qc_status constant_parse(struct qc_node *n, int64_t opset, const char *label)
{
    static const struct {
        const char        *name;
        enum qc_attr_type  type;
        int                src;      /* enum const_src, -1 = unsupported     */
    } forms[] = {
        { "value",         QC_ATTR_TENSOR,  CONST_TENSOR },
        { "value_float",   QC_ATTR_FLOAT,   CONST_FLOAT },
        { "value_floats",  QC_ATTR_FLOATS,  CONST_FLOATS },
        { "value_int",     QC_ATTR_INT,     CONST_INT },
        { "value_ints",    QC_ATTR_INTS,    CONST_INTS },
        { "value_string",  QC_ATTR_STRING,  -1 },
        { "value_strings", QC_ATTR_STRINGS, -1 },
        { "sparse_value",  QC_ATTR_UNDEFINED, -1 },
    };
    struct constant_params *p;
    const struct qc_attr *a = NULL;
    int which = -1, found = 0;
    enum qc_status st;
    (void)opset;
    for (size_t i = 0; i < QC_ARRAY_SIZE(forms); i++) {
        const struct qc_attr *x = qc_attr_find(&n->attrs, forms[i].name);
        if (!x)
            continue;
        found++;
        which = (int)i;
        a = x;
    }
    if (found != 1) {
        qc_log_error("%s: expected exactly one value attribute, found %d", label,
                     found);
        return QC_ERR_ONNX;
    }
    if (forms[which].src < 0) {
        qc_log_error("%s: attribute '%s' is not supported", label,
                     forms[which].name);
        return QC_ERR_UNSUPPORTED;
    }
    if (a->type != forms[which].type) {
        qc_log_error("%s: attribute '%s' has the wrong type", label,
                     forms[which].name);
        return QC_ERR_ONNX;
    }
    if (forms[which].src == CONST_TENSOR) {
        if (!a->t) {
            qc_log_error("%s: attribute 'value' holds no tensor", label);
            return QC_ERR_ONNX;
        }
        if (!qc_dtype_supported(a->t->dtype)) {
            qc_log_error("%s: tensor element type %d is not supported", label,
                         (int)a->t->dtype);
            return QC_ERR_UNSUPPORTED;
        }
    }
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->src = (enum const_src)forms[which].src;
    p->attr = forms[which].name;
    switch (p->src) {
    case CONST_TENSOR:
        p->dtype = a->t->dtype;
        p->shape = a->t->shape;
        break;
    case CONST_FLOAT:
        p->dtype = QC_DTYPE_F32;
        p->shape.ndim = 0;
        break;
    case CONST_INT:
        p->dtype = QC_DTYPE_I64;
        p->shape.ndim = 0;
        break;
    case CONST_FLOATS:
    case CONST_INTS:
        p->dtype = p->src == CONST_FLOATS ? QC_DTYPE_F32 : QC_DTYPE_I64;
        p->shape = qc_shape_make(1, &a->n);
        break;
    }
    return QC_OK;
}

static enum qc_status constant_infer(const struct qc_node *n, const char *label,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    const struct constant_params *p = n->params;
    (void)label;
    (void)in;
    out[0]->dtype = p->dtype;
    out[0]->shape = p->shape;
    return QC_OK;
}

static enum qc_status constant_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                           const struct qc_tensor *const *in,
                                           struct qc_tensor *const *out)
{
    const struct constant_params *p = n->params;
    const struct qc_attr *a = qc_attr_find(&n->attrs, p->attr);
    size_t nb = qc_tensor_nbytes(out[0]);
    const void *src = NULL;
    (void)ctx;
    (void)in;
    QC_ASSERT(a);
    switch (p->src) {
    case CONST_TENSOR: src = a->t->data; break;
    case CONST_FLOAT:  src = &a->f; break;
    case CONST_FLOATS: src = a->floats; break;
    case CONST_INT:    src = &a->i; break;
    case CONST_INTS:   src = a->ints; break;
    }
    if (nb)
        memcpy(out[0]->data, src, nb);
    return QC_OK;
}

const struct qc_op_def qc_op_constant = {
    .n_in_min = 0, .n_in_max = 0, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_ALWAYS, .parse = constant_parse, .infer = constant_infer,
    .cpu = { .forward = constant_forward_cpu, .backward = NULL },
};

/* -------------------------------------------------------- ConstantOfShape */

struct cos_params {
    enum qc_dtype dtype;
    unsigned char value[8];          /* one element of dtype                 */
};

static enum qc_status cos_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    const struct qc_attr *a = qc_attr_find(&n->attrs, "value");
    struct cos_params *p;
    enum qc_status st;
    (void)opset;
    qc_op_where(where, sizeof(where), "ConstantOfShape", label);
    if (a) {
        if (a->type != QC_ATTR_TENSOR || !a->t) {
            qc_log_error("%s: attribute 'value' is not of type TENSOR", where);
            return QC_ERR_ONNX;
        }
        if (!qc_dtype_supported(a->t->dtype)) {
            qc_log_error("%s: value element type %d is not supported", where,
                         (int)a->t->dtype);
            return QC_ERR_UNSUPPORTED;
        }
        if (qc_tensor_nelem(a->t) != 1) {
            qc_log_error("%s: value must hold one element, not %lld", where,
                         (long long)qc_tensor_nelem(a->t));
            return QC_ERR_ONNX;
        }
    }
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->dtype = QC_DTYPE_F32;        /* default: float 0 (value[] zeroed)    */
    if (a) {
        p->dtype = a->t->dtype;
        memcpy(p->value, a->t->data, qc_dtype_size(p->dtype));
    }
    return QC_OK;
}

static enum qc_status cos_infer(const struct qc_node *n, const char *label,
                                const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    const struct cos_params *p = n->params;
    int64_t dims[QC_MAX_DIMS];
    int nd;
    enum qc_status st = qc_op_const_ints("ConstantOfShape", label, in[0], "input", dims,
                                         QC_MAX_DIMS,
                                  &nd);
    if (st != QC_OK)
        return st;
    for (int k = 0; k < nd; k++) {
        if (dims[k] < 0) {
            qc_log_error("%s: negative dim %lld", label, (long long)dims[k]);
            return QC_ERR_ONNX;
        }
    }
    out[0]->dtype = p->dtype;
    out[0]->shape = qc_shape_make(nd, dims);
    return QC_OK;
}

static enum qc_status cos_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    const struct cos_params *p = n->params;
    size_t esize = qc_dtype_size(p->dtype);
    int64_t total = qc_tensor_nelem(out[0]);
    unsigned char *dst = out[0]->data;
    (void)ctx;
    (void)in;
    for (int64_t i = 0; i < total; i++)
        qc_copy_elem(dst + (size_t)i * esize, p->value, esize);
    return QC_OK;
}

const struct qc_op_def qc_op_constant_of_shape = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1,
    .n_out_max = 1, .fold = QC_FOLD_CONST_INPUTS, .parse = cos_parse, .infer = cos_infer,
    .cpu = { .forward = cos_forward_cpu, .backward = NULL },
};

/* ----------------------------------------------------------------- Gather */

struct gather_params {
    int64_t axis;
};

static enum qc_status gather_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct gather_params *p;
    int64_t axis;
    enum qc_status st;
    (void)opset;
    st = qc_attr_int(&n->attrs, qc_op_where(where, sizeof(where), "Gather", label), "axis", 0,
                     &axis);
    if (st != QC_OK)
        return st;
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->axis = axis;
    return QC_OK;
}

/* out.shape = data.shape[:axis] + indices.shape + data.shape[axis+1:] */
static enum qc_status gather_infer(const struct qc_node *n, const char *label,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    const struct gather_params *p = n->params;
    const struct qc_shape *ds = &in[0]->shape, *is = &in[1]->shape;
    struct qc_shape os;
    int axis;
    enum qc_status st = qc_op_norm_axis("Gather", label, p->axis, ds->ndim, &axis);
    if (st != QC_OK)
        return st;
    if (in[1]->dtype != QC_DTYPE_I64 && in[1]->dtype != QC_DTYPE_I32) {
        qc_log_error("%s: indices have type %s, expected int64 or int32", label,
                     qc_dtype_name(in[1]->dtype));
        return QC_ERR_ONNX;
    }
    os.ndim = ds->ndim - 1 + is->ndim;
    if (os.ndim > QC_MAX_DIMS) {
        qc_log_error("%s: output rank %d exceeds %d", label, os.ndim, QC_MAX_DIMS);
        return QC_ERR_UNSUPPORTED;
    }
    for (int k = 0; k < axis; k++)
        os.dims[k] = ds->dims[k];
    for (int k = 0; k < is->ndim; k++)
        os.dims[axis + k] = is->dims[k];
    for (int k = axis + 1; k < ds->ndim; k++)
        os.dims[k - 1 + is->ndim] = ds->dims[k];
    out[0]->dtype = in[0]->dtype;
    out[0]->shape = os;
    return QC_OK;
}

/* Viewed as data[outer, K, inner]: out[o, j, :] = data[o, idx[j], :],
 * idx[j] in [-K, K) (negative counts from the back). */
static enum qc_status gather_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                         const struct qc_tensor *const *in,
                                         struct qc_tensor *const *out)
{
    const struct gather_params *p = n->params;
    const struct qc_shape *ds = &in[0]->shape;
    size_t esize = qc_dtype_size(in[0]->dtype), row;
    int64_t outer = 1, inner = 1, kdim, nidx = qc_tensor_nelem(in[1]);
    const unsigned char *src = in[0]->data;
    unsigned char *dst = out[0]->data;
    int axis;
    enum qc_status st = qc_op_norm_axis("Gather", ctx->label, p->axis, ds->ndim, &axis);
    if (st != QC_OK)
        return st;
    for (int k = 0; k < axis; k++)
        outer *= ds->dims[k];
    for (int k = axis + 1; k < ds->ndim; k++)
        inner *= ds->dims[k];
    kdim = ds->dims[axis];
    row = (size_t)inner * esize;
    for (int64_t j = 0; j < nidx; j++) {
        int64_t v = qc_tensor_get_i64(in[1], j);
        if (v < -kdim || v >= kdim) {
            qc_log_error("%s: index %lld out of range [%lld, %lld)", ctx->label,
                         (long long)v, (long long)-kdim, (long long)kdim);
            return QC_ERR_ONNX;
        }
    }
    if (!row)
        return QC_OK;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < nidx; j++) {
            int64_t v = qc_tensor_get_i64(in[1], j);
            if (v < 0)
                v += kdim;
            memcpy(dst, src + (size_t)(o * kdim + v) * row, row);
            dst += row;
        }
    }
    return QC_OK;
}

/* out[o, j, :] = data[o, idx[j], :], so ddata[o, idx[j], :] += dy[o, j, :]
 * (scatter-add: a repeated index collects every contribution, in j order).
 * Float data only: that is all a backward sees. */
static enum qc_status gather_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                          const struct qc_tensor *const *in,
                                          const struct qc_tensor *const *out,
                                          const struct qc_tensor *const *dout,
                                          struct qc_tensor *const *din)
{
    const struct gather_params *p = n->params;
    const struct qc_shape *ds = &in[0]->shape;
    int64_t outer = 1, inner = 1, kdim, nidx = qc_tensor_nelem(in[1]);
    const float *dy;
    float *dx;
    int axis;
    enum qc_status st;
    (void)out;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = qc_op_norm_axis("Gather", ctx->label, p->axis, ds->ndim, &axis);
    if (st != QC_OK)
        return st;
    for (int k = 0; k < axis; k++)
        outer *= ds->dims[k];
    for (int k = axis + 1; k < ds->ndim; k++)
        inner *= ds->dims[k];
    kdim = ds->dims[axis];
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < nidx; j++) {
            int64_t v = qc_tensor_get_i64(in[1], j);
            const float *src = dy + (o * nidx + j) * inner;
            float *dst;
            if (v < -kdim || v >= kdim) {
                qc_log_error("%s: index %lld out of range [%lld, %lld)", ctx->label,
                             (long long)v, (long long)-kdim, (long long)kdim);
                return QC_ERR_ONNX;
            }
            if (v < 0)
                v += kdim;
            dst = dx + (o * kdim + v) * inner;
            for (int64_t t = 0; t < inner; t++)
                dst[t] += src[t];
        }
    }
    return QC_OK;
}

const struct qc_op_def qc_op_gather = {
    .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = gather_parse, .infer = gather_infer,
    .cpu = { .forward = gather_forward_cpu, .backward = gather_backward_cpu },
};

/* ------------------------------------------------------------------- Cast */

struct cast_params {
    enum qc_dtype to;
    int half; /* to float16/bfloat16 (QC_FILE_DTYPE_*), else 0: the values
                 are held as float32 rounded to that type (ir/tensor.h) */
};

static enum qc_status cast_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct cast_params *p;
    int64_t to;
    enum qc_status st;
    (void)opset;
    qc_op_where(where, sizeof(where), "Cast", label);
    if (!qc_attr_find(&n->attrs, "to")) {
        qc_log_error("%s: missing attribute 'to'", where);
        return QC_ERR_ONNX;
    }
    st = qc_attr_int(&n->attrs, where, "to", 0, &to);
    if (st != QC_OK)
        return st;
    if (to != QC_FILE_DTYPE_F16 && to != QC_FILE_DTYPE_BF16 &&
        (to <= 0 || to > QC_DTYPE_I4 || !qc_dtype_supported((enum qc_dtype)to))) {
        qc_log_error("%s: cast to element type %lld is not supported", where, (long long)to);
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->half = to == QC_FILE_DTYPE_F16 || to == QC_FILE_DTYPE_BF16 ? (int)to : 0;
    p->to = p->half ? QC_DTYPE_F32 : (enum qc_dtype)to;
    return QC_OK;
}

static enum qc_status cast_infer(const struct qc_node *n, const char *label,
                                 const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    const struct cast_params *p = n->params;
    if (!qc_dtype_supported(in[0]->dtype)) {
        qc_log_error("%s: input element type %d is not supported", label,
                     (int)in[0]->dtype);
        return QC_ERR_UNSUPPORTED;
    }
    out[0]->dtype = p->to;
    out[0]->shape = in[0]->shape;
    return QC_OK;
}

/* Elements converted per block: a source block is widened into an int64 or
 * double buffer, then narrowed into the destination, each a tight loop. */
#define CAST_BLOCK 1024

/* Float -> integer conversions as ONNX Runtime does them on x86-64 (C leaves
 * NaN and out-of-range values undefined; these are the cvttss2si results):
 *   int64, int32:       truncate toward zero; NaN or out of range -> INT_MIN;
 *   int8/uint8/int16/uint16: the int32 result, wrapped to the width;
 *   uint32 (uint64):    v >= 2^31 (2^63) ? cvt(v - 2^31) ^ 2^31 : cvt(v), cvt
 *                       the int32 (int64) conversion above, so -1.5 -> 2^32-1,
 *                       +inf and 1e20 -> 0, NaN and -inf -> 2^31;
 *   int4/uint4:         round half away from zero, then the int32 result
 *                       wrapped to 4 bits (ORT Cast-21 to Int4x2/UInt4x2);
 *   bool:               v != 0 (NaN -> true).
 * Integer -> integer keeps the low bits (two's complement wrap: int32 300 ->
 * uint8 44, -129 -> int8 127; int4 sign-extends its low nibble); integer ->
 * float rounds to nearest even (C conversion). */
static int64_t f_to_i64(double v)
{
    if (isnan(v) || v >= 9223372036854775808.0 || v < -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

static int32_t f_to_i32(double v)
{
    if (isnan(v) || v >= 2147483648.0 || v <= -2147483649.0)
        return INT32_MIN;
    return (int32_t)v;
}

static uint32_t f_to_u32(double v)
{
    if (v >= 2147483648.0)
        return (uint32_t)f_to_i32(v - 2147483648.0) ^ 0x80000000u;
    return (uint32_t)f_to_i32(v);
}

static uint64_t f_to_u64(double v)
{
    if (v >= 9223372036854775808.0)
        return (uint64_t)f_to_i64(v - 9223372036854775808.0) ^ 0x8000000000000000u;
    return (uint64_t)f_to_i64(v);
}

/* Low nibble of v as int4 (sign-extended) or uint4. */
static uint8_t nibble(int64_t v, bool sgn)
{
    unsigned u = (unsigned)((uint64_t)v & 0xFu);
    return (uint8_t)(sgn && u >= 8 ? u + 0xF0u : u);
}

/* dst[i] = conv(v[i]) for n doubles. */
static void store_from_f64(enum qc_dtype to, const double *v, void *dst, int64_t n)
{
    int64_t i;
    switch (to) {
    case QC_DTYPE_F32:  for (i = 0; i < n; i++) ((float *)dst)[i] = (float)v[i]; break;
    case QC_DTYPE_F64:  for (i = 0; i < n; i++) ((double *)dst)[i] = v[i]; break;
    case QC_DTYPE_BOOL: for (i = 0; i < n; i++) ((uint8_t *)dst)[i] = v[i] != 0.0; break;
    case QC_DTYPE_U8:   for (i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)f_to_i32(v[i]); break;
    case QC_DTYPE_I8:   for (i = 0; i < n; i++) ((int8_t *)dst)[i] = (int8_t)f_to_i32(v[i]); break;
    case QC_DTYPE_U16:  for (i = 0; i < n; i++) ((uint16_t *)dst)[i] = (uint16_t)f_to_i32(v[i]); break;
    case QC_DTYPE_I16:  for (i = 0; i < n; i++) ((int16_t *)dst)[i] = (int16_t)f_to_i32(v[i]); break;
    case QC_DTYPE_I32:  for (i = 0; i < n; i++) ((int32_t *)dst)[i] = f_to_i32(v[i]); break;
    case QC_DTYPE_U32:  for (i = 0; i < n; i++) ((uint32_t *)dst)[i] = f_to_u32(v[i]); break;
    case QC_DTYPE_I64:  for (i = 0; i < n; i++) ((int64_t *)dst)[i] = f_to_i64(v[i]); break;
    case QC_DTYPE_U64:  for (i = 0; i < n; i++) ((uint64_t *)dst)[i] = f_to_u64(v[i]); break;
    case QC_DTYPE_I4:
    case QC_DTYPE_U4:
        for (i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = nibble(f_to_i32(round(v[i])), to == QC_DTYPE_I4);
        break;
    case QC_DTYPE_UNDEFINED: break;
    }
}

/* dst[i] = conv(v[i]) for n integers (uint64 sources as their bit pattern,
 * converted to float as unsigned when src_u64). */
static void store_from_i64(enum qc_dtype to, const int64_t *v, bool src_u64, void *dst,
                           int64_t n)
{
    int64_t i;
    switch (to) {
    case QC_DTYPE_F32:
        if (src_u64)
            for (i = 0; i < n; i++) ((float *)dst)[i] = (float)(uint64_t)v[i];
        else
            for (i = 0; i < n; i++) ((float *)dst)[i] = (float)v[i];
        break;
    case QC_DTYPE_F64:
        if (src_u64)
            for (i = 0; i < n; i++) ((double *)dst)[i] = (double)(uint64_t)v[i];
        else
            for (i = 0; i < n; i++) ((double *)dst)[i] = (double)v[i];
        break;
    case QC_DTYPE_BOOL: for (i = 0; i < n; i++) ((uint8_t *)dst)[i] = v[i] != 0; break;
    case QC_DTYPE_U8:   for (i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)v[i]; break;
    case QC_DTYPE_I8:   for (i = 0; i < n; i++) ((int8_t *)dst)[i] = (int8_t)v[i]; break;
    case QC_DTYPE_U16:  for (i = 0; i < n; i++) ((uint16_t *)dst)[i] = (uint16_t)v[i]; break;
    case QC_DTYPE_I16:  for (i = 0; i < n; i++) ((int16_t *)dst)[i] = (int16_t)v[i]; break;
    case QC_DTYPE_I32:  for (i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)v[i]; break;
    case QC_DTYPE_U32:  for (i = 0; i < n; i++) ((uint32_t *)dst)[i] = (uint32_t)v[i]; break;
    case QC_DTYPE_I64:  for (i = 0; i < n; i++) ((int64_t *)dst)[i] = v[i]; break;
    case QC_DTYPE_U64:  for (i = 0; i < n; i++) ((uint64_t *)dst)[i] = (uint64_t)v[i]; break;
    case QC_DTYPE_I4:
    case QC_DTYPE_U4:
        for (i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = nibble(v[i], to == QC_DTYPE_I4);
        break;
    case QC_DTYPE_UNDEFINED: break;
    }
}

/* v[i] = src[i] widened to int64 (uint64 keeps its bit pattern). */
static void load_i64(enum qc_dtype from, const void *src, int64_t *v, int64_t n)
{
    int64_t i;
    switch (from) {
    case QC_DTYPE_BOOL:
    case QC_DTYPE_U4:
    case QC_DTYPE_U8:  for (i = 0; i < n; i++) v[i] = ((const uint8_t *)src)[i]; break;
    case QC_DTYPE_I4:
    case QC_DTYPE_I8:  for (i = 0; i < n; i++) v[i] = ((const int8_t *)src)[i]; break;
    case QC_DTYPE_U16: for (i = 0; i < n; i++) v[i] = ((const uint16_t *)src)[i]; break;
    case QC_DTYPE_I16: for (i = 0; i < n; i++) v[i] = ((const int16_t *)src)[i]; break;
    case QC_DTYPE_I32: for (i = 0; i < n; i++) v[i] = ((const int32_t *)src)[i]; break;
    case QC_DTYPE_U32: for (i = 0; i < n; i++) v[i] = ((const uint32_t *)src)[i]; break;
    case QC_DTYPE_I64: for (i = 0; i < n; i++) v[i] = ((const int64_t *)src)[i]; break;
    case QC_DTYPE_U64: for (i = 0; i < n; i++) v[i] = (int64_t)((const uint64_t *)src)[i]; break;
    default: break;
    }
}

/* Cast to float16/bfloat16: float32 values rounded to that type (nearest
 * even), as the file's tensor would hold them. */
static void round_to_half(float *v, int64_t n, int half)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = half == QC_FILE_DTYPE_F16 ? qc_half_to_float(qc_float_to_half(v[i]))
                                         : qc_bf16_to_float(qc_float_to_bf16(v[i]));
}

static enum qc_status cast_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    const struct cast_params *p = n->params;
    enum qc_dtype from = in[0]->dtype, to = out[0]->dtype;
    int64_t total = qc_tensor_nelem(in[0]), nblk = (total + CAST_BLOCK - 1) / CAST_BLOCK;
    size_t ies = qc_dtype_size(from), oes = qc_dtype_size(to);
    bool fsrc = from == QC_DTYPE_F32 || from == QC_DTYPE_F64;
    const unsigned char *src = in[0]->data;
    unsigned char *dst = out[0]->data;
    if (from == to) {
        if (total && in[0]->data != out[0]->data)
            memcpy(out[0]->data, in[0]->data, qc_tensor_nbytes(in[0]));
        if (p->half)
            round_to_half(out[0]->data, total, p->half);
        return QC_OK;
    }
#pragma omp parallel for num_threads(ctx->threads > 0 ? ctx->threads : 1) schedule(static) \
    if (total >= QC_PAR_MIN_STREAM)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t lo = b * CAST_BLOCK, cnt = QC_MIN(CAST_BLOCK, total - lo);
        const unsigned char *s = src + (size_t)lo * ies;
        unsigned char *d = dst + (size_t)lo * oes;
        if (fsrc) {
            double v[CAST_BLOCK];
            if (from == QC_DTYPE_F32)
                for (int64_t i = 0; i < cnt; i++)
                    v[i] = ((const float *)s)[i];
            else
                memcpy(v, s, (size_t)cnt * sizeof(double));
            store_from_f64(to, v, d, cnt);
        } else {
            int64_t v[CAST_BLOCK];
            load_i64(from, s, v, cnt);
            store_from_i64(to, v, from == QC_DTYPE_U64, d, cnt);
        }
    }
    if (p->half)
        round_to_half(out[0]->data, total, p->half);
    return QC_OK;
}

const struct qc_op_def qc_op_cast = {
    .n_in_min = 1, .n_in_max = 1, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = cast_parse, .infer = cast_infer,
    .cpu = { .forward = cast_forward_cpu, .backward = NULL },
};

/* ------------------------------------------------------------------ Slice */

/* starts/ends/axes: attributes before opset 10; from 10 inputs starts, ends,
 * optional axes and steps. */
struct slice_params {
    bool    from_input;
    int     n, n_axes;               /* attribute form                       */
    int64_t starts[QC_MAX_DIMS], ends[QC_MAX_DIMS], axes[QC_MAX_DIMS];
};

static enum qc_status slice_parse(struct qc_node *n, int64_t opset, const char *label)
{
    char where[256];
    struct slice_params *p;
    int64_t starts[QC_MAX_DIMS], ends[QC_MAX_DIMS], axes[QC_MAX_DIMS];
    int ns = 0, ne = 0, na = 0;
    enum qc_status st;
    qc_op_where(where, sizeof(where), "Slice", label);
    if (opset >= 10) {
        if (qc_attr_find(&n->attrs, "starts") || qc_attr_find(&n->attrs, "ends") ||
            qc_attr_find(&n->attrs, "axes")) {
            qc_log_error("%s: attributes 'starts'/'ends'/'axes' are not valid at opset %lld "
                         "(they are inputs)", where, (long long)opset);
            return QC_ERR_ONNX;
        }
        if (n->n_in < 3 || n->in[1] < 0 || n->in[2] < 0) {
            qc_log_error("%s: missing input 'starts' or 'ends'", where);
            return QC_ERR_ONNX;
        }
    } else {
        if (n->n_in > 1) {
            qc_log_error("%s: inputs starts/ends are not valid before opset 10", where);
            return QC_ERR_ONNX;
        }
        if (!qc_attr_find(&n->attrs, "starts") || !qc_attr_find(&n->attrs, "ends")) {
            qc_log_error("%s: missing attribute 'starts' or 'ends'", where);
            return QC_ERR_ONNX;
        }
        st = qc_attr_ints(&n->attrs, where, "starts", starts, QC_MAX_DIMS, &ns);
        if (st == QC_OK)
            st = qc_attr_ints(&n->attrs, where, "ends", ends, QC_MAX_DIMS, &ne);
        if (st == QC_OK)
            st = qc_attr_ints(&n->attrs, where, "axes", axes, QC_MAX_DIMS, &na);
        if (st != QC_OK)
            return st;
        if (ns != ne || (qc_attr_find(&n->attrs, "axes") && na != ns)) {
            qc_log_error("%s: starts, ends and axes differ in length", where);
            return QC_ERR_ONNX;
        }
    }
    st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    p->from_input = opset >= 10;
    p->n = ns;
    p->n_axes = na;
    memcpy(p->starts, starts, (size_t)ns * sizeof(starts[0]));
    memcpy(p->ends, ends, (size_t)ne * sizeof(ends[0]));
    memcpy(p->axes, axes, (size_t)na * sizeof(axes[0]));
    return QC_OK;
}

/* Per input dim: first index, step and element count of the slice.
 *   s, e < 0: += d.  step > 0: s, e clamp to [0, d], count = ceil((e - s) / step);
 *   step < 0: s clamps to [0, d-1], e to [-1, d-1], count = ceil((s - e) / -step). */
static enum qc_status slice_resolve(const struct qc_node *n, const char *label,
                                    const struct qc_tensor *const *in, int64_t *first,
                                    int64_t *step, int64_t *cnt)
{
    const struct slice_params *p = n->params;
    const struct qc_shape *ds = &in[0]->shape;
    int64_t starts[QC_MAX_DIMS], ends[QC_MAX_DIMS], axes[QC_MAX_DIMS], steps[QC_MAX_DIMS];
    bool seen[QC_MAX_DIMS] = {false};
    int m, me, ma, mt;
    enum qc_status st;
    for (int k = 0; k < ds->ndim; k++) {
        first[k] = 0;
        step[k] = 1;
        cnt[k] = ds->dims[k];
    }
    if (p->from_input) {
        st = qc_op_const_ints("Slice", label, in[1], "starts", starts, QC_MAX_DIMS, &m);
        if (st == QC_OK)
            st = qc_op_const_ints("Slice", label, in[2], "ends", ends, QC_MAX_DIMS, &me);
        if (st != QC_OK)
            return st;
        ma = m;
        mt = m;
        if (n->n_in > 3 && in[3])
            st = qc_op_const_ints("Slice", label, in[3], "axes", axes, QC_MAX_DIMS, &ma);
        else
            for (int i = 0; i < m; i++)
                axes[i] = i;
        if (st == QC_OK && n->n_in > 4 && in[4])
            st = qc_op_const_ints("Slice", label, in[4], "steps", steps, QC_MAX_DIMS, &mt);
        else
            for (int i = 0; i < m; i++)
                steps[i] = 1;
        if (st != QC_OK)
            return st;
    } else {
        m = me = mt = p->n;
        ma = p->n_axes ? p->n_axes : m;
        memcpy(starts, p->starts, (size_t)m * sizeof(starts[0]));
        memcpy(ends, p->ends, (size_t)m * sizeof(ends[0]));
        for (int i = 0; i < m; i++) {
            axes[i] = p->n_axes ? p->axes[i] : i;
            steps[i] = 1;
        }
    }
    if (me != m || ma != m || mt != m) {
        qc_log_error("%s: starts, ends, axes and steps differ in length", label);
        return QC_ERR_ONNX;
    }
    for (int i = 0; i < m; i++) {
        int a;
        int64_t d, s = starts[i], e = ends[i], t = steps[i];
        st = qc_op_norm_axis("Slice", label, axes[i], ds->ndim, &a);
        if (st != QC_OK)
            return st;
        if (seen[a]) {
            qc_log_error("%s: axis %d repeated", label, a);
            return QC_ERR_ONNX;
        }
        seen[a] = true;
        if (t == 0) {
            qc_log_error("%s: step 0", label);
            return QC_ERR_ONNX;
        }
        d = ds->dims[a];
        if (s < 0)
            s += d;
        if (e < 0)
            e += d;
        if (t > 0) {
            s = QC_MIN(QC_MAX(s, 0), d);
            e = QC_MIN(QC_MAX(e, 0), d);
            cnt[a] = e > s ? (e - s - 1) / t + 1 : 0;
        } else {
            /* |t| as unsigned: -INT64_MIN overflows int64 */
            uint64_t mag = (uint64_t)(-(t + 1)) + 1u;
            s = QC_MIN(QC_MAX(s, 0), d - 1);
            e = QC_MIN(QC_MAX(e, -1), d - 1);
            cnt[a] = s > e ? (int64_t)((uint64_t)(s - e - 1) / mag) + 1 : 0;
        }
        first[a] = cnt[a] > 0 ? s : 0;
        /* with one element the step is never applied; keep strides small */
        step[a] = cnt[a] > 1 ? t : 1;
    }
    return QC_OK;
}

static enum qc_status slice_infer(const struct qc_node *n, const char *label,
                                  const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    int64_t first[QC_MAX_DIMS], step[QC_MAX_DIMS], cnt[QC_MAX_DIMS];
    enum qc_status st = slice_resolve(n, label, in, first, step, cnt);
    if (st != QC_OK)
        return st;
    out[0]->dtype = in[0]->dtype;
    out[0]->shape = qc_shape_make(in[0]->shape.ndim, cnt);
    return QC_OK;
}

/* out[i] = in[first + i * step] per dim. */
static enum qc_status slice_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                        const struct qc_tensor *const *in,
                                        struct qc_tensor *const *out)
{
    const struct qc_shape *ds = &in[0]->shape;
    size_t esize = qc_dtype_size(in[0]->dtype);
    int64_t first[QC_MAX_DIMS], step[QC_MAX_DIMS], cnt[QC_MAX_DIMS];
    int64_t istr[QC_MAX_DIMS], sstr[QC_MAX_DIMS], ostr[QC_MAX_DIMS], off = 0;
    enum qc_status st = slice_resolve(n, ctx->label, in, first, step, cnt);
    if (st != QC_OK)
        return st;
    if (qc_tensor_nelem(out[0]) == 0)
        return QC_OK;
    qc_shape_strides(ds, istr);
    qc_shape_strides(&out[0]->shape, ostr);
    for (int k = 0; k < ds->ndim; k++) {
        off += first[k] * istr[k];
        sstr[k] = step[k] * istr[k];
    }
    qc_copy_box(esize, ds->ndim, cnt, (const unsigned char *)in[0]->data + (size_t)off * esize,
             sstr, out[0]->data, ostr);
    return QC_OK;
}

/* out[i] = in[first + i * step], so dx[first + i * step] += dy[i]; the
 * selected elements are distinct, the others get nothing.  Walked in dy
 * order with an odometer over the leading dims. */
static enum qc_status slice_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                         const struct qc_tensor *const *in,
                                         const struct qc_tensor *const *out,
                                         const struct qc_tensor *const *dout,
                                         struct qc_tensor *const *din)
{
    const struct qc_shape *ds = &in[0]->shape;
    int r = ds->ndim;
    int64_t first[QC_MAX_DIMS], step[QC_MAX_DIMS], cnt[QC_MAX_DIMS], at[QC_MAX_DIMS];
    int64_t istr[QC_MAX_DIMS], sstr[QC_MAX_DIMS], off = 0, total, inner, last;
    const float *dy;
    float *dx;
    enum qc_status st;
    if (!din[0] || !dout[0])
        return QC_OK;
    st = slice_resolve(n, ctx->label, in, first, step, cnt);
    if (st != QC_OK)
        return st;
    total = qc_tensor_nelem(out[0]);
    if (total == 0)
        return QC_OK;
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
    if (r == 0) {
        dx[0] += dy[0];
        return QC_OK;
    }
    qc_shape_strides(ds, istr);
    for (int k = 0; k < r; k++) {
        off += first[k] * istr[k];
        sstr[k] = step[k] * istr[k];
        at[k] = 0;
    }
    inner = cnt[r - 1];
    last = sstr[r - 1];
    for (int64_t o = 0; o < total; o += inner) {
        int64_t base = off;
        for (int k = 0; k < r - 1; k++)
            base += at[k] * sstr[k];
        for (int64_t t = 0; t < inner; t++)
            dx[base + t * last] += dy[o + t];
        /* odometer over dims 0 .. r-2 */
        for (int k = r - 2; k >= 0; k--) {
            if (++at[k] < cnt[k])
                break;
            at[k] = 0;
        }
    }
    return QC_OK;
}

const struct qc_op_def qc_op_slice = {
    .n_in_min = 1, .n_in_max = 5, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .parse = slice_parse, .infer = slice_infer,
    .cpu = { .forward = slice_forward_cpu, .backward = slice_backward_cpu },
};
