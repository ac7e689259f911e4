/*
 * tensor.c - dtype table, shape helpers and owned tensors (see tensor.h).
 */
#include <config.h>

#include "tensor.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

size_t qc_dtype_size(enum qc_dtype dt)
{
    switch (dt) {
    case QC_DTYPE_F32: return 4;
    case QC_DTYPE_U8:  return 1;
    case QC_DTYPE_I8:  return 1;
    case QC_DTYPE_U16: return 2;
    case QC_DTYPE_I16: return 2;
    case QC_DTYPE_I32: return 4;
    case QC_DTYPE_I64: return 8;
    case QC_DTYPE_BOOL: return 1;
    case QC_DTYPE_F64: return 8;
    case QC_DTYPE_U32: return 4;
    case QC_DTYPE_U64: return 8;
    case QC_DTYPE_U4:  return 1;
    case QC_DTYPE_I4:  return 1;
    case QC_DTYPE_UNDEFINED: return 0;
    }
    return 0;
}

const char *qc_dtype_name(enum qc_dtype dt)
{
    switch (dt) {
    case QC_DTYPE_F32: return "float32";
    case QC_DTYPE_U8:  return "uint8";
    case QC_DTYPE_I8:  return "int8";
    case QC_DTYPE_U16: return "uint16";
    case QC_DTYPE_I16: return "int16";
    case QC_DTYPE_I32: return "int32";
    case QC_DTYPE_I64: return "int64";
    case QC_DTYPE_BOOL: return "bool";
    case QC_DTYPE_F64: return "float64";
    case QC_DTYPE_U32: return "uint32";
    case QC_DTYPE_U64: return "uint64";
    case QC_DTYPE_U4:  return "uint4";
    case QC_DTYPE_I4:  return "int4";
    case QC_DTYPE_UNDEFINED: return "undefined";
    }
    return "?";
}

bool qc_dtype_supported(enum qc_dtype dt)
{
    return qc_dtype_size(dt) != 0;
}

bool qc_dtype_is_int(enum qc_dtype dt)
{
    switch (dt) {
    case QC_DTYPE_U8: case QC_DTYPE_I8: case QC_DTYPE_U16: case QC_DTYPE_I16:
    case QC_DTYPE_I32: case QC_DTYPE_I64: case QC_DTYPE_U32: case QC_DTYPE_U64:
    case QC_DTYPE_U4: case QC_DTYPE_I4:
        return true;
    default:
        return false;
    }
}

int64_t qc_shape_nelem(const struct qc_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

bool qc_shape_equal(const struct qc_shape *a, const struct qc_shape *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

struct qc_shape qc_shape_make(int ndim, const int64_t *dims)
{
    struct qc_shape s;
    memset(&s, 0, sizeof(s));
    QC_ASSERT(ndim >= 0 && ndim <= QC_MAX_DIMS);
    s.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        s.dims[i] = dims[i];
    return s;
}

char *qc_shape_str(const struct qc_shape *s, char *buf, size_t len)
{
    size_t pos = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    pos += (size_t)snprintf(buf + pos, len - pos, "[");
    for (int i = 0; i < s->ndim && pos < len; i++)
        pos += (size_t)snprintf(buf + pos, len - pos, "%s%lld", i ? "," : "",
                                (long long)s->dims[i]);
    if (pos < len)
        snprintf(buf + pos, len - pos, "]");
    return buf;
}

size_t qc_tensor_nbytes(const struct qc_tensor *t)
{
    return (size_t)qc_shape_nelem(&t->shape) * qc_dtype_size(t->dtype);
}

enum qc_status qc_tensor_new(enum qc_dtype dt, const struct qc_shape *s,
                             struct qc_tensor **out)
{
    struct qc_tensor *t;
    *out = NULL;
    if (!qc_dtype_supported(dt)) {
        qc_log_error("unsupported tensor element type %d", (int)dt);
        return QC_ERR_UNSUPPORTED;
    }
    for (int i = 0; i < s->ndim; i++) {
        if (s->dims[i] < 0) {
            qc_log_error("negative tensor dimension %lld", (long long)s->dims[i]);
            return QC_ERR_SHAPE;
        }
    }
    t = qc_calloc(1, sizeof(*t));
    if (!t)
        return QC_ERR_NOMEM;
    t->dtype = dt;
    t->shape = *s;
    t->owns = true;
    t->data = qc_calloc(1, qc_tensor_nbytes(t));
    if (!t->data) {
        qc_free(t);
        return QC_ERR_NOMEM;
    }
    *out = t;
    return QC_OK;
}

enum qc_status qc_tensor_clone(const struct qc_tensor *t, struct qc_tensor **out)
{
    enum qc_status st = qc_tensor_new(t->dtype, &t->shape, out);
    if (st != QC_OK)
        return st;
    if (qc_tensor_nbytes(t))
        memcpy((*out)->data, t->data, qc_tensor_nbytes(t));
    (*out)->file_dtype = t->file_dtype;
    return QC_OK;
}

void qc_tensor_free(struct qc_tensor *t)
{
    if (!t)
        return;
    if (t->owns)
        qc_free(t->data);
    qc_free(t);
}

int64_t qc_tensor_get_i64(const struct qc_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case QC_DTYPE_F32: return (int64_t)((const float *)t->data)[i];
    case QC_DTYPE_F64: return (int64_t)((const double *)t->data)[i];
    case QC_DTYPE_U8:  return ((const uint8_t *)t->data)[i];
    case QC_DTYPE_BOOL: return ((const uint8_t *)t->data)[i];
    case QC_DTYPE_I8:  return ((const int8_t *)t->data)[i];
    case QC_DTYPE_U4:  return ((const uint8_t *)t->data)[i];
    case QC_DTYPE_I4:  return ((const int8_t *)t->data)[i];
    case QC_DTYPE_U16: return ((const uint16_t *)t->data)[i];
    case QC_DTYPE_I16: return ((const int16_t *)t->data)[i];
    case QC_DTYPE_I32: return ((const int32_t *)t->data)[i];
    case QC_DTYPE_U32: return ((const uint32_t *)t->data)[i];
    case QC_DTYPE_I64: return ((const int64_t *)t->data)[i];
    case QC_DTYPE_U64: return (int64_t)((const uint64_t *)t->data)[i];
    case QC_DTYPE_UNDEFINED: break;
    }
    return 0;
}

double qc_tensor_get_f64(const struct qc_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case QC_DTYPE_F32: return ((const float *)t->data)[i];
    case QC_DTYPE_F64: return ((const double *)t->data)[i];
    default: return (double)qc_tensor_get_i64(t, i);
    }
}

static uint32_t f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    return x;
}

static float f32_from_bits(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof(f));
    return f;
}

float qc_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    if (exp == 0x1F) /* infinity, NaN (payload kept) */
        return f32_from_bits(sign | 0x7F800000u | man << 13);
    if (exp) /* normal: rebias 15 -> 127 */
        return f32_from_bits(sign | (exp + 112u) << 23 | man << 13);
    /* zero and subnormals: man * 2^-24, exact in float */
    return f32_from_bits(sign | f32_bits((float)man * 0x1p-24f));
}

uint16_t qc_float_to_half(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7FFFFFFFu, q, rem, halfway;

    if (ax > 0x7F800000u) { /* NaN: the payload's top bits, quiet if none left */
        uint32_t man = (ax >> 13) & 0x3FFu;
        return (uint16_t)(sign | 0x7C00u | (man ? man : 0x200u));
    }
    if (ax >= 0x477FF000u) /* >= 65520 (halfway past 65504) and infinity */
        return (uint16_t)(sign | 0x7C00u);
    if (ax < 0x38800000u) { /* below 2^-14: a subnormal half, units of 2^-24 */
        uint32_t e = ax >> 23, m = (ax & 0x7FFFFFu) | 0x800000u, shift;
        if (e < 102) /* below 2^-25: rounds to zero */
            return sign;
        shift = 126 - e; /* |f| = m * 2^(e-150) = (m >> shift) * 2^-24 */
        q = m >> shift;
        rem = m & ((1u << shift) - 1);
        halfway = 1u << (shift - 1);
    } else { /* normal: rebias 127 -> 15, drop 13 mantissa bits */
        q = (ax >> 13) - (112u << 10);
        rem = ax & 0x1FFFu;
        halfway = 0x1000u;
    }
    if (rem > halfway || (rem == halfway && (q & 1u)))
        q++; /* a carry into the exponent is the right encoding */
    return (uint16_t)(sign | q);
}

float qc_bf16_to_float(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

uint16_t qc_float_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) { /* NaN */
        uint16_t h = (uint16_t)(x >> 16);
        return (h & 0x7Fu) ? h : (uint16_t)(h | 0x40u);
    }
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

bool qc_shape_is_scores(const struct qc_shape *s, int64_t batch)
{
    if (s->ndim < 2 || s->dims[0] != batch)
        return false;
    for (int d = 2; d < s->ndim; d++)
        if (s->dims[d] != 1)
            return false;
    return true;
}
