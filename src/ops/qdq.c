/*
 * qdq.c - QuantizeLinear and DequantizeLinear (opsets 10-23), forward only:
 * qatconv evaluates the fake-quant (QDQ) graphs it exports, and folds the
 * DequantizeLinear of an integer weight initializer into a float constant at
 * plan time.
 *
 *   QuantizeLinear:   y = saturate(rne(x / scale) + zero_point)   (uint8 or int8)
 *   DequantizeLinear: y = (x − zero_point) · scale                 (int8/uint8/int16/
 *                                                                    uint16/int32 → float)
 * rne = round half to even, as ONNX specifies.  scale and zero_point are
 * scalars (per tensor) or 1-D along `axis` (per axis, opset >= 13).
 */
#include <config.h>

#include "op.h"

#include <math.h>
#include <string.h>

#include "util/log.h"

struct qdq_params {
    int64_t axis;
};

static enum qc_status qdq_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct qdq_params *p;
    int64_t block = 0;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_int(&n->attrs, label, "axis", 1, &p->axis);
    if (st == QC_OK)
        st = qc_attr_int(&n->attrs, label, "block_size", 0, &block);
    if (st == QC_OK && block != 0) {
        qc_log_error("%s: blocked quantization (block_size %lld) is not supported", label,
                     (long long)block);
        return QC_ERR_UNSUPPORTED;
    }
    (void)opset;
    return st;
}

/* Per-axis: scale [C] along axis; per-tensor: one element. */
static enum qc_status check_scale(const char *label, const struct qc_tensor *x,
                                  const struct qc_tensor *scale, const struct qc_tensor *zp,
                                  int64_t axis, int *ax)
{
    int64_t ns = qc_tensor_nelem(scale);
    *ax = -1;
    if (scale->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: scale must be float32", label);
        return QC_ERR_UNSUPPORTED;
    }
    if (zp && qc_tensor_nelem(zp) != ns) {
        qc_log_error("%s: zero_point and scale differ in size", label);
        return QC_ERR_SHAPE;
    }
    if (ns == 1 && scale->shape.ndim <= 1)
        return QC_OK;
    if (scale->shape.ndim != 1 || qc_norm_axis(label, axis, x->shape.ndim, ax) != QC_OK ||
        x->shape.dims[*ax] != ns) {
        qc_log_error("%s: scale of %lld elements does not fit the input along axis %lld", label,
                     (long long)ns, (long long)axis);
        return QC_ERR_SHAPE;
    }
    return QC_OK;
}

static enum qc_status quantize_infer(const struct qc_node *n, const char *label,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    const struct qdq_params *p = n->params;
    const struct qc_tensor *zp = n->n_in > 2 ? in[2] : NULL;
    int ax;
    enum qc_status st;
    if (in[0]->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: QuantizeLinear of %s is not supported", label,
                     qc_dtype_name(in[0]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    st = check_scale(label, in[0], in[1], zp, p->axis, &ax);
    if (st != QC_OK)
        return st;
    out[0]->dtype = zp ? zp->dtype : QC_DTYPE_U8;
    if (out[0]->dtype != QC_DTYPE_U8 && out[0]->dtype != QC_DTYPE_I8) {
        qc_log_error("%s: QuantizeLinear to %s is not supported (uint8 and int8 are)", label,
                     qc_dtype_name(out[0]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    out[0]->shape = in[0]->shape;
    return QC_OK;
}

static enum qc_status dequantize_infer(const struct qc_node *n, const char *label,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out)
{
    const struct qdq_params *p = n->params;
    int ax;
    enum qc_dtype dt = in[0]->dtype;
    if (dt != QC_DTYPE_U8 && dt != QC_DTYPE_I8 && dt != QC_DTYPE_I16 && dt != QC_DTYPE_U16 &&
        dt != QC_DTYPE_I32) {
        qc_log_error("%s: DequantizeLinear of %s is not supported", label, qc_dtype_name(dt));
        return QC_ERR_UNSUPPORTED;
    }
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = in[0]->shape;
    return check_scale(label, in[0], in[1], n->n_in > 2 ? in[2] : NULL, p->axis, &ax);
}

/* The layout [outer, nch, inner] of x along axis ax (ax < 0: per tensor, nch = 1). */
static void axis_layout(const struct qc_shape *s, int ax, int64_t n_el, int64_t *outer,
                        int64_t *nch, int64_t *inner)
{
    *nch = 1;
    *inner = n_el;
    *outer = 1;
    if (ax < 0 || n_el == 0)
        return;
    *inner = 1;
    for (int d = ax + 1; d < s->ndim; d++)
        *inner *= s->dims[d];
    *nch = s->dims[ax];
    *outer = n_el / (*nch * *inner);
}

/* The block loops below take each block's scale and zero point once: elements
 * [(o·nch + c)·inner, +inner) use channel c. */
static enum qc_status quantize_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                           const struct qc_tensor *const *in,
                                           struct qc_tensor *const *out)
{
    const struct qdq_params *p = n->params;
    const struct qc_tensor *zp = n->n_in > 2 ? in[2] : NULL;
    const float *x = qc_tensor_f32(in[0]), *sc = qc_tensor_f32(in[1]);
    int64_t n_el = qc_tensor_nelem(in[0]), outer, nch, inner;
    bool u8 = out[0]->dtype == QC_DTYPE_U8;
    double lo = u8 ? 0.0 : -128.0, hi = u8 ? 255.0 : 127.0;
    int ax;
    enum qc_status st = check_scale(ctx->label, in[0], in[1], zp, p->axis, &ax);
    if (st != QC_OK)
        return st;
    axis_layout(&in[0]->shape, ax, n_el, &outer, &nch, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < nch; c++) {
            int64_t base = (o * nch + c) * inner;
            double z = zp ? (double)qc_tensor_get_i64(zp, c) : 0.0;
            float s = sc[c];
            for (int64_t i = base; i < base + inner; i++) {
                double v = (double)rintf(x[i] / s) + z;
                v = v < lo ? lo : v > hi ? hi : v;
                if (u8)
                    ((uint8_t *)out[0]->data)[i] = (uint8_t)v;
                else
                    ((int8_t *)out[0]->data)[i] = (int8_t)v;
            }
        }
    return QC_OK;
}

/* y = (x − z)·s over elements [b, e) of an integer array of type T */
#define DEQUANT_LOOP(T)                                                                            \
    for (int64_t i = b; i < e; i++)                                                                \
    y[i] = (float)((int64_t)((const T *)in[0]->data)[i] - z) * s

static enum qc_status dequantize_forward_cpu(const struct qc_node *n,
                                             const struct qc_op_ctx *ctx,
                                             const struct qc_tensor *const *in,
                                             struct qc_tensor *const *out)
{
    const struct qdq_params *p = n->params;
    const struct qc_tensor *zp = n->n_in > 2 ? in[2] : NULL;
    const float *sc = qc_tensor_f32(in[1]);
    float *y = qc_tensor_f32(out[0]);
    int64_t n_el = qc_tensor_nelem(in[0]), outer, nch, inner;
    int ax;
    enum qc_status st = check_scale(ctx->label, in[0], in[1], zp, p->axis, &ax);
    if (st != QC_OK)
        return st;
    axis_layout(&in[0]->shape, ax, n_el, &outer, &nch, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < nch; c++) {
            int64_t b = (o * nch + c) * inner, e = b + inner;
            int64_t z = zp ? qc_tensor_get_i64(zp, c) : 0;
            float s = sc[c];
            /* (x − zp) is exact in float for 16-bit inputs; the product rounds once */
            switch (in[0]->dtype) {
            case QC_DTYPE_U8:
                DEQUANT_LOOP(uint8_t);
                break;
            case QC_DTYPE_I8:
                DEQUANT_LOOP(int8_t);
                break;
            case QC_DTYPE_U16:
                DEQUANT_LOOP(uint16_t);
                break;
            case QC_DTYPE_I16:
                DEQUANT_LOOP(int16_t);
                break;
            default:
                DEQUANT_LOOP(int32_t);
                break; /* I32, the last type infer accepts */
            }
        }
    return QC_OK;
}

const struct qc_op_def qc_op_quantize_linear = {
    .n_in_min = 2, .n_in_max = 3, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .parse = qdq_parse, .infer = quantize_infer,
    .cpu = { .forward = quantize_forward_cpu, .backward = NULL },
};

const struct qc_op_def qc_op_dequantize_linear = {
    .n_in_min = 2, .n_in_max = 3, .n_out_min = 1,
    .n_out_max = 1, .fold = QC_FOLD_CONST_INPUTS, .parse = qdq_parse, .infer = dequantize_infer,
    .cpu = { .forward = dequantize_forward_cpu, .backward = NULL },
};
