/*
 * tensor.h - dense tensors and shapes.
 *
 * Layout, stated once for the whole program: row-major (C order); image
 * activations are NCHW, convolution weights OIHW (C_out, C_in/group, kH, kW),
 * ConvTranspose weights IOHW as in ONNX.  Dims are int64_t, byte counts
 * size_t.  Compute is float32; int64/int32 tensors carry shapes and indices
 * (folded shape subgraphs) and the arithmetic of integer-only exports,
 * uint8/int8 appear in quantized exports.  The 4-bit types (ONNX int4/uint4)
 * take one byte per element in memory (an int8/uint8 holding a value in
 * [-8, 7] / [0, 15]); only the ONNX reader and writer pack them two per byte.
 *
 * Half precision: ONNX float16 and bfloat16 tensors are held as float32
 * (widening is exact); `file_dtype` remembers the element type of the file so
 * the writer can narrow them back (round to nearest even).
 *
 * A struct qc_tensor either owns its data (created with qc_tensor_new, freed
 * with qc_tensor_free) or is a view whose data belongs to someone else (a
 * plan's activation buffer); the `owns` flag says which.
 */
#ifndef QATCONV_SRC_TENSOR_H
#define QATCONV_SRC_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/qc.h"

#define QC_MAX_DIMS 8

/* Element types.  Values equal ONNX TensorProto.DataType codes. */
enum qc_dtype {
    QC_DTYPE_UNDEFINED = 0,
    QC_DTYPE_F32  = 1,
    QC_DTYPE_U8   = 2,
    QC_DTYPE_I8   = 3,
    QC_DTYPE_U16  = 4,
    QC_DTYPE_I16  = 5,
    QC_DTYPE_I32  = 6,
    QC_DTYPE_I64  = 7,
    QC_DTYPE_BOOL = 9,
    QC_DTYPE_F64  = 11,
    QC_DTYPE_U32  = 12,
    QC_DTYPE_U64  = 13,
    QC_DTYPE_U4   = 21,         /* one byte per element in memory, [0, 15]   */
    QC_DTYPE_I4   = 22,         /* one byte per element in memory, [-8, 7]   */
};

/* ONNX element types qatconv reads and writes but holds as float32 (never a
 * tensor's dtype: qc_dtype_supported is false for them). */
#define QC_FILE_DTYPE_F16 10
#define QC_FILE_DTYPE_BF16 16

struct qc_shape {
    int     ndim;                 /* 0 = scalar */
    int64_t dims[QC_MAX_DIMS];
};

struct qc_tensor {
    enum qc_dtype   dtype;
    struct qc_shape shape;
    void           *data;         /* nelem * qc_dtype_size(dtype) bytes */
    bool            owns;         /* data freed by qc_tensor_free        */
    int file_dtype;               /* QC_FILE_DTYPE_F16/_BF16: a float32 tensor
                                     stored in the file in that type (read
                                     widened, written narrowed); 0: dtype  */
};

/* Bytes per element; 0 for an unknown dtype. */
size_t qc_dtype_size(enum qc_dtype dt);
/* "float32", "int64", ...; "?" if unknown. */
const char *qc_dtype_name(enum qc_dtype dt);
/* True for the dtypes qatconv can hold in a tensor. */
bool qc_dtype_supported(enum qc_dtype dt);
/* True for int4/uint4 (packed two per byte in ONNX files). */
static inline bool qc_dtype_is_4bit(enum qc_dtype dt)
{
    return dt == QC_DTYPE_I4 || dt == QC_DTYPE_U4;
}
/* True for the integer types (bool excluded). */
bool qc_dtype_is_int(enum qc_dtype dt);

int64_t qc_shape_nelem(const struct qc_shape *s);
bool qc_shape_equal(const struct qc_shape *a, const struct qc_shape *b);
/* Whether s is class scores of `batch` rows: [batch, K] or [batch, K, 1, ...]
 * (a classifier ending in a 1x1 convolution and a global pooling, as Caffe2
 * and SqueezeNet exports do: the memory layout is that of [batch, K]). */
bool qc_shape_is_scores(const struct qc_shape *s, int64_t batch);
/* Builds a shape from n dims (n <= QC_MAX_DIMS). */
struct qc_shape qc_shape_make(int ndim, const int64_t *dims);
/* Writes "[1,3,28,28]" into buf (always NUL-terminated); returns buf. */
char *qc_shape_str(const struct qc_shape *s, char *buf, size_t len);

/* New tensor with owned, zeroed data.  Free with qc_tensor_free. */
enum qc_status qc_tensor_new(enum qc_dtype dt, const struct qc_shape *s,
                             struct qc_tensor **out);
/* Deep copy (owned data). */
enum qc_status qc_tensor_clone(const struct qc_tensor *t, struct qc_tensor **out);
/* Frees t and its data if owned.  NULL is a no-op. */
void qc_tensor_free(struct qc_tensor *t);

size_t qc_tensor_nbytes(const struct qc_tensor *t);
static inline int64_t qc_tensor_nelem(const struct qc_tensor *t)
{
    return qc_shape_nelem(&t->shape);
}
static inline float *qc_tensor_f32(const struct qc_tensor *t)
{
    return (float *)t->data;
}
static inline int64_t *qc_tensor_i64(const struct qc_tensor *t)
{
    return (int64_t *)t->data;
}

/* IEEE binary16 / bfloat16 bits <-> float32.  Widening is exact; narrowing
 * rounds to nearest, ties to even, overflows to infinity and keeps NaN
 * payloads (a payload lost to the narrowing becomes the quiet bit). */
float qc_half_to_float(uint16_t h);
uint16_t qc_float_to_half(float f);
float qc_bf16_to_float(uint16_t h);
uint16_t qc_float_to_bf16(float f);

/* Element i of an integer or float tensor converted to int64 / double
 * (for reading shape, axes, pads and scalar inputs of any dtype). */
int64_t qc_tensor_get_i64(const struct qc_tensor *t, int64_t i);
double qc_tensor_get_f64(const struct qc_tensor *t, int64_t i);

#endif
