/*
 * tensor_pb.c - TensorProto <-> struct qc_tensor (see tensor_pb.h), plus the
 * small file helpers shared by load.c and save.c.
 *
 * Reading accepts raw_data, the typed repeated fields (float_data;
 * int32_data for int32 and, per the ONNX spec, also for uint8/int8/uint16/
 * int16/bool; int64_data; double_data; uint64_data for uint32/uint64) and
 * external data files.  Every size is checked against the dims before a byte
 * is copied.  Writing always uses raw_data.
 *
 * int4/uint4 are held one byte per element in memory but stored packed in
 * ONNX: two elements per byte, element 2i in the low nibble and 2i+1 in the
 * high nibble, an odd count padded with a zero nibble; ceil(n/2) bytes in
 * raw_data (or external data), or ceil(n/2) int32_data entries each holding
 * one packed byte.  Unpacking sign-extends int4 nibbles (v >= 8: v - 16).
 *
 * float16 and bfloat16 (2 bytes per element in raw_data or external data,
 * or one int32_data entry per element holding the bits) are widened to
 * float32 tensors that remember the file's type in file_dtype; writing such
 * a tensor narrows it back (ir/tensor.h: round to nearest even).
 */
#include <config.h>

#include "tensor_pb.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "qatconv reads and writes ONNX raw_data in host order: little-endian hosts only"
#endif

/* Names of the ONNX element types qatconv cannot hold, for messages. */
static const char *onnx_type_name(int32_t code)
{
    switch (code) {
    case 8:  return "string";
    case 10: return "float16";
    case 14: return "complex64";
    case 15: return "complex128";
    case 16: return "bfloat16";
    case 17: return "float8e4m3fn";
    case 18: return "float8e4m3fnuz";
    case 19: return "float8e5m2";
    case 20: return "float8e5m2fnuz";
    case 23: return "float4e2m1";
    default: return NULL;
    }
}

static bool is_half(int32_t code)
{
    return code == QC_FILE_DTYPE_F16 || code == QC_FILE_DTYPE_BF16;
}

static const char *tensor_label(const Onnx__TensorProto *tp)
{
    return tp->name ? tp->name : "";
}

/* nelem of dims with overflow and sign checks; false if invalid. */
static bool checked_nelem(const struct qc_shape *s, size_t elem_size, int64_t *nelem)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dims[i] < 0)
            return false;
        if (s->dims[i] != 0 && n > INT64_MAX / s->dims[i])
            return false;
        n *= s->dims[i];
    }
    if (elem_size && (uint64_t)n > SIZE_MAX / elem_size)
        return false;
    *nelem = n;
    return true;
}

/* Parses a non-negative decimal integer (an external_data offset/length). */
static bool parse_u64(const char *s, int64_t *out)
{
    char *end;
    long long v;
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v < 0)
        return false;
    *out = v;
    return true;
}

/* A location must stay inside the model's directory: relative, no "..". */
static bool location_is_safe(const char *loc)
{
    const char *p = loc;
    if (!*loc || loc[0] == '/' || loc[0] == '\\')
        return false;
    while (*p) {
        size_t n = strcspn(p, "/\\");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        if (*p)
            p++;
    }
    return true;
}

static enum qc_status read_external(const Onnx__TensorProto *tp, const char *path,
                                    const char *base_dir, void *dst, size_t nbytes)
{
    const char *name = tensor_label(tp);
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    enum qc_status st = QC_ERR_ONNX;
    char *full = NULL;
    FILE *f = NULL;
    size_t n;

    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        const char *key = e->key ? e->key : "";
        if (strcmp(key, "location") == 0) {
            loc = e->value;
        } else if (strcmp(key, "offset") == 0) {
            if (!parse_u64(e->value, &offset)) {
                qc_log_error("%s: tensor '%s': bad external data offset '%s'", path, name,
                             e->value ? e->value : "");
                goto out;
            }
        } else if (strcmp(key, "length") == 0) {
            if (!parse_u64(e->value, &length)) {
                qc_log_error("%s: tensor '%s': bad external data length '%s'", path, name,
                             e->value ? e->value : "");
                goto out;
            }
        }
    }
    if (!loc || !*loc) {
        qc_log_error("%s: tensor '%s': external data without a location", path, name);
        goto out;
    }
    if (!location_is_safe(loc)) {
        qc_log_error("%s: tensor '%s': external data location '%s' must be a relative path "
                     "inside the model's directory", path, name, loc);
        goto out;
    }
    if (!base_dir) {
        qc_log_error("%s: tensor '%s': external data '%s' but no model directory is known",
                     path, name, loc);
        goto out;
    }
    if (length >= 0 && (uint64_t)length != nbytes) {
        qc_log_error("%s: tensor '%s': external data length %" PRId64 " does not match its "
                     "shape (%zu bytes expected)", path, name, length, nbytes);
        goto out;
    }
    full = qc_malloc(strlen(base_dir) + strlen(loc) + 2);
    if (!full) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    sprintf(full, "%s/%s", base_dir, loc);
    f = fopen(full, "rb");
    if (!f) {
        qc_log_error("%s: tensor '%s': cannot open external data file '%s': %s", path, name,
                     full, strerror(errno));
        goto out;
    }
    if (fseeko(f, (off_t)offset, SEEK_SET) != 0) {
        qc_log_error("%s: tensor '%s': cannot seek to offset %" PRId64 " in '%s': %s", path,
                     name, offset, full, strerror(errno));
        goto out;
    }
    n = nbytes ? fread(dst, 1, nbytes, f) : 0;
    if (n != nbytes) {
        qc_log_error("%s: tensor '%s': external data file '%s' is too short (%zu of %zu bytes "
                     "at offset %" PRId64 ")", path, name, full, n, nbytes, offset);
        goto out;
    }
    st = QC_OK;
out:
    if (f)
        fclose(f);
    qc_free(full);
    return st;
}

/* Unpacks ceil(nelem/2) packed bytes into one element per byte of t. */
static void unpack4(struct qc_tensor *t, const uint8_t *src, int64_t nelem)
{
    uint8_t *dst = t->data;
    bool sgn = t->dtype == QC_DTYPE_I4;
    for (int64_t i = 0; i < nelem; i++) {
        unsigned v = (src[i / 2] >> (4 * (i % 2))) & 0xFu;
        dst[i] = (uint8_t)(sgn && v >= 8 ? v + 0xF0u : v);   /* v - 16 as int8 */
    }
}

/* A float32 tensor written in half precision. */
static bool writes_half(const struct qc_tensor *t)
{
    return t->dtype == QC_DTYPE_F32 && is_half(t->file_dtype);
}

bool qc_tensor_pb_needs_buffer(const struct qc_tensor *t)
{
    return qc_dtype_is_4bit(t->dtype) || writes_half(t);
}

size_t qc_tensor_pb_nbytes(const struct qc_tensor *t)
{
    if (writes_half(t))
        return (size_t)qc_tensor_nelem(t) * sizeof(uint16_t);
    if (qc_dtype_is_4bit(t->dtype))
        return (size_t)((qc_tensor_nelem(t) + 1) / 2);
    return qc_tensor_nbytes(t);
}

void qc_tensor_pack4(const struct qc_tensor *t, uint8_t *dst)
{
    const uint8_t *src = t->data;
    int64_t n = qc_tensor_nelem(t);
    for (int64_t i = 0; i < n; i += 2) {
        unsigned lo = src[i] & 0xFu, hi = i + 1 < n ? src[i + 1] & 0xFu : 0u;
        dst[i / 2] = (uint8_t)(lo | hi << 4);
    }
}

/* int4/uint4 from int32_data: one packed byte per entry. */
static enum qc_status read_typed4(const Onnx__TensorProto *tp, const char *path,
                                  struct qc_tensor *t, int64_t nelem)
{
    size_t want = (size_t)((nelem + 1) / 2);
    uint8_t *packed;
    if (tp->n_int32_data != want) {
        qc_log_error("%s: tensor '%s': int32_data has %zu entries, expected %zu (%s, %" PRId64
                     " elements packed two per entry)", path, tensor_label(tp),
                     tp->n_int32_data, want, qc_dtype_name(t->dtype), nelem);
        return QC_ERR_ONNX;
    }
    packed = qc_malloc(want ? want : 1);
    if (!packed)
        return QC_ERR_NOMEM;
    for (size_t i = 0; i < want; i++)
        packed[i] = (uint8_t)tp->int32_data[i];
    unpack4(t, packed, nelem);
    qc_free(packed);
    return QC_OK;
}

/* Copies the typed repeated field that holds dt's elements into t. */
static enum qc_status read_typed(const Onnx__TensorProto *tp, const char *path,
                                 struct qc_tensor *t, int64_t nelem)
{
    size_t have;
    const char *field;
    size_t ne = (size_t)nelem;

    if (qc_dtype_is_4bit(t->dtype))
        return read_typed4(tp, path, t, nelem);
    switch (t->dtype) {
    case QC_DTYPE_F32:  have = tp->n_float_data;  field = "float_data";  break;
    case QC_DTYPE_I64:  have = tp->n_int64_data;  field = "int64_data";  break;
    case QC_DTYPE_F64:  have = tp->n_double_data; field = "double_data"; break;
    case QC_DTYPE_U32:
    case QC_DTYPE_U64:  have = tp->n_uint64_data; field = "uint64_data"; break;
    default:            have = tp->n_int32_data;  field = "int32_data";  break;
    }
    if (have != ne) {
        char sbuf[128];
        qc_log_error("%s: tensor '%s': %s has %zu elements, expected %" PRId64 " (%s %s)",
                     path, tensor_label(tp), field, have, nelem, qc_dtype_name(t->dtype),
                     qc_shape_str(&t->shape, sbuf, sizeof(sbuf)));
        return QC_ERR_ONNX;
    }
    for (size_t i = 0; i < ne; i++) {
        switch (t->dtype) {
        case QC_DTYPE_F32:  ((float *)t->data)[i] = tp->float_data[i]; break;
        case QC_DTYPE_I64:  ((int64_t *)t->data)[i] = tp->int64_data[i]; break;
        case QC_DTYPE_F64:  ((double *)t->data)[i] = tp->double_data[i]; break;
        case QC_DTYPE_U32:  ((uint32_t *)t->data)[i] = (uint32_t)tp->uint64_data[i]; break;
        case QC_DTYPE_U64:  ((uint64_t *)t->data)[i] = tp->uint64_data[i]; break;
        case QC_DTYPE_I32:  ((int32_t *)t->data)[i] = tp->int32_data[i]; break;
        case QC_DTYPE_U16:  ((uint16_t *)t->data)[i] = (uint16_t)tp->int32_data[i]; break;
        case QC_DTYPE_I16:  ((int16_t *)t->data)[i] = (int16_t)tp->int32_data[i]; break;
        case QC_DTYPE_U8:   ((uint8_t *)t->data)[i] = (uint8_t)tp->int32_data[i]; break;
        case QC_DTYPE_I8:   ((int8_t *)t->data)[i] = (int8_t)tp->int32_data[i]; break;
        case QC_DTYPE_BOOL: ((uint8_t *)t->data)[i] = tp->int32_data[i] != 0; break;
        case QC_DTYPE_U4:
        case QC_DTYPE_I4:
        case QC_DTYPE_UNDEFINED: break;
        }
    }
    return QC_OK;
}

/* A float16 / bfloat16 TensorProto widened into a new float32 tensor whose
 * file_dtype remembers the file's type. */
static enum qc_status read_half(const Onnx__TensorProto *tp, const char *path, const char *base_dir,
                                struct qc_tensor **out)
{
    const char *name = tensor_label(tp);
    bool external = tp->has_data_location &&
                    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    bool bf16 = tp->data_type == QC_FILE_DTYPE_BF16;
    struct qc_tensor *t = NULL;
    struct qc_shape shape;
    uint16_t *bits = NULL;
    int64_t nelem;
    size_t nbytes;
    char sbuf[128];
    enum qc_status st;

    memset(&shape, 0, sizeof(shape));
    if (tp->segment || tp->n_dims > QC_MAX_DIMS) {
        qc_log_error("%s: tensor '%s': %s", path, name,
                     tp->segment ? "segmented tensors are "
                                   "not supported"
                                 : "too many dimensions");
        return QC_ERR_UNSUPPORTED;
    }
    shape.ndim = (int)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++)
        shape.dims[i] = tp->dims[i];
    if (!checked_nelem(&shape, sizeof(float), &nelem)) {
        qc_log_error("%s: tensor '%s' has invalid dims %s", path, name,
                     qc_shape_str(&shape, sbuf, sizeof(sbuf)));
        return QC_ERR_ONNX;
    }
    nbytes = (size_t)nelem * sizeof(uint16_t);
    if (!external && !tp->has_raw_data && tp->n_int32_data != (size_t)nelem) {
        qc_log_error("%s: tensor '%s': int32_data has %zu elements, expected %" PRId64 " (%s %s)",
                     path, name, tp->n_int32_data, nelem, bf16 ? "bfloat16" : "float16",
                     qc_shape_str(&shape, sbuf, sizeof(sbuf)));
        return QC_ERR_ONNX;
    }
    if (!external && tp->has_raw_data && tp->raw_data.len != nbytes) {
        qc_log_error("%s: tensor '%s': raw_data has %zu bytes, expected %zu (%s %s)", path, name,
                     tp->raw_data.len, nbytes, bf16 ? "bfloat16" : "float16",
                     qc_shape_str(&shape, sbuf, sizeof(sbuf)));
        return QC_ERR_ONNX;
    }
    st = qc_tensor_new(QC_DTYPE_F32, &shape, &t);
    if (st != QC_OK)
        return st;
    t->file_dtype = tp->data_type;
    bits = qc_malloc(nbytes ? nbytes : 1);
    if (!bits) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    if (external) {
        st = read_external(tp, path, base_dir, bits, nbytes);
    } else if (tp->has_raw_data) {
        if (nbytes)
            memcpy(bits, tp->raw_data.data, nbytes);
    } else {
        for (int64_t i = 0; i < nelem; i++)
            bits[i] = (uint16_t)tp->int32_data[i];
    }
    if (st == QC_OK) {
        float *f = qc_tensor_f32(t);
        for (int64_t i = 0; i < nelem; i++)
            f[i] = bf16 ? qc_bf16_to_float(bits[i]) : qc_half_to_float(bits[i]);
    }
out:
    qc_free(bits);
    if (st != QC_OK)
        qc_tensor_free(t);
    else
        *out = t;
    return st;
}

enum qc_status qc_tensor_from_pb(const Onnx__TensorProto *tp, const char *path,
                                 const char *base_dir, struct qc_tensor **out)
{
    const char *name = tensor_label(tp);
    struct qc_tensor *t = NULL;
    struct qc_shape shape;
    enum qc_dtype dt;
    enum qc_status st;
    int64_t nelem;
    size_t nbytes;
    char sbuf[128];

    *out = NULL;
    memset(&shape, 0, sizeof(shape));
    if (!tp->has_data_type || tp->data_type == 0) {
        qc_log_error("%s: tensor '%s' has no element type", path, name);
        return QC_ERR_ONNX;
    }
    dt = (enum qc_dtype)tp->data_type;
    if (is_half(tp->data_type))
        return read_half(tp, path, base_dir, out);
    if (!qc_dtype_supported(dt)) {
        const char *tn = onnx_type_name(tp->data_type);
        if (tn)
            qc_log_error("%s: tensor '%s': element type %s is not supported", path, name, tn);
        else
            qc_log_error("%s: tensor '%s': element type %d is not supported", path, name,
                         (int)tp->data_type);
        return QC_ERR_UNSUPPORTED;
    }
    if (tp->segment) {
        qc_log_error("%s: tensor '%s': segmented tensors are not supported", path, name);
        return QC_ERR_UNSUPPORTED;
    }
    if (tp->n_dims > QC_MAX_DIMS) {
        qc_log_error("%s: tensor '%s' has %zu dimensions, at most %d supported", path, name,
                     tp->n_dims, QC_MAX_DIMS);
        return QC_ERR_UNSUPPORTED;
    }
    shape.ndim = (int)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++)
        shape.dims[i] = tp->dims[i];
    if (!checked_nelem(&shape, qc_dtype_size(dt), &nelem)) {
        qc_log_error("%s: tensor '%s' has invalid dims %s", path, name,
                     qc_shape_str(&shape, sbuf, sizeof(sbuf)));
        return QC_ERR_ONNX;
    }
    nbytes = (size_t)nelem * qc_dtype_size(dt);
    if (qc_dtype_is_4bit(dt))
        nbytes = (size_t)((nelem + 1) / 2);   /* stored packed, two per byte */

    if (!(tp->has_data_location &&
          tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)) {
        /* inline data must be there before its size is allocated: a few bytes of
         * file must not claim gigabytes (the exact per-field checks follow) */
        size_t have = tp->has_raw_data ? tp->raw_data.len
                                       : tp->n_float_data + tp->n_int32_data + tp->n_int64_data +
                                         tp->n_double_data + tp->n_uint64_data;
        size_t need = tp->has_raw_data ? nbytes
                      : qc_dtype_is_4bit(dt) ? (size_t)((nelem + 1) / 2) : (size_t)nelem;
        if (have < need) {
            qc_log_error("%s: tensor '%s': %s %s needs %zu %s, the file holds %zu", path, name,
                         qc_dtype_name(dt), qc_shape_str(&shape, sbuf, sizeof(sbuf)), need,
                         tp->has_raw_data ? "bytes" : "values", have);
            return QC_ERR_ONNX;
        }
    }
    st = qc_tensor_new(dt, &shape, &t);
    if (st != QC_OK)
        goto out;
    if (qc_dtype_is_4bit(dt) &&
        ((tp->has_data_location &&
          tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
         tp->has_raw_data)) {
        uint8_t *packed = qc_malloc(nbytes ? nbytes : 1);
        if (!packed) {
            st = QC_ERR_NOMEM;
            goto out;
        }
        if (tp->has_raw_data && !(tp->has_data_location && tp->data_location ==
                                  ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)) {
            if (tp->raw_data.len != nbytes) {
                qc_log_error("%s: tensor '%s': raw_data has %zu bytes, expected %zu (%s %s, "
                             "packed two per byte)", path, name, tp->raw_data.len, nbytes,
                             qc_dtype_name(dt), qc_shape_str(&shape, sbuf, sizeof(sbuf)));
                st = QC_ERR_ONNX;
            } else if (nbytes) {
                memcpy(packed, tp->raw_data.data, nbytes);
            }
        } else {
            st = read_external(tp, path, base_dir, packed, nbytes);
        }
        if (st == QC_OK)
            unpack4(t, packed, nelem);
        qc_free(packed);
    } else if (tp->has_data_location &&
               tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        st = read_external(tp, path, base_dir, t->data, nbytes);
    } else if (tp->has_raw_data) {
        if (tp->raw_data.len != nbytes) {
            qc_log_error("%s: tensor '%s': raw_data has %zu bytes, expected %zu (%s %s)", path,
                         name, tp->raw_data.len, nbytes, qc_dtype_name(dt),
                         qc_shape_str(&shape, sbuf, sizeof(sbuf)));
            st = QC_ERR_ONNX;
        } else if (nbytes) {
            memcpy(t->data, tp->raw_data.data, nbytes);
        }
    } else {
        st = read_typed(tp, path, t, nelem);
    }
out:
    if (st != QC_OK)
        qc_tensor_free(t);
    else
        *out = t;
    return st;
}

void qc_tensor_to_pb(const struct qc_tensor *t, const char *name, uint8_t *packed,
                     Onnx__TensorProto *tp)
{
    Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
    *tp = init;
    tp->n_dims = (size_t)t->shape.ndim;
    tp->dims = t->shape.ndim ? (int64_t *)t->shape.dims : NULL;
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype;
    tp->name = (char *)name;
    tp->has_raw_data = 1;
    tp->raw_data.len = qc_tensor_pb_nbytes(t);
    if (writes_half(t)) {
        const float *f = qc_tensor_f32(t);
        bool bf16 = t->file_dtype == QC_FILE_DTYPE_BF16;
        int64_t n = qc_tensor_nelem(t);
        QC_ASSERT(packed || n == 0);
        tp->data_type = t->file_dtype;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = bf16 ? qc_float_to_bf16(f[i]) : qc_float_to_half(f[i]);
            memcpy(packed + 2 * i, &h, sizeof(h));
        }
        tp->raw_data.data = n ? packed : NULL;
        return;
    }
    if (qc_dtype_is_4bit(t->dtype)) {
        QC_ASSERT(packed || tp->raw_data.len == 0);
        if (tp->raw_data.len)
            qc_tensor_pack4(t, packed);
        tp->raw_data.data = tp->raw_data.len ? packed : NULL;
        return;
    }
    tp->raw_data.data = tp->raw_data.len ? (uint8_t *)t->data : NULL;
}

enum qc_status qc_onnx_read_file(const char *path, void **buf, size_t *len)
{
    enum qc_status st = QC_ERR_ONNX;
    FILE *f = NULL;
    struct stat sb;
    char *data = NULL;
    size_t size;

    *buf = NULL;
    *len = 0;
    f = fopen(path, "rb");
    if (!f) {
        qc_log_error("%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fileno(f), &sb) != 0) {
        qc_log_error("%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        qc_log_error("%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)sb.st_size >= SIZE_MAX) {
        qc_log_error("%s: file too large", path);
        goto out;
    }
    size = (size_t)sb.st_size;
    data = qc_malloc(size + 1);
    if (!data) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    if (size && fread(data, 1, size, f) != size) {
        qc_log_error("%s: read error: %s", path, ferror(f) ? strerror(errno) : "file shrank");
        goto out;
    }
    *buf = data;
    *len = size;
    data = NULL;
    st = QC_OK;
out:
    if (f)
        fclose(f);
    qc_free(data);
    return st;
}

