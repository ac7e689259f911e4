/*
 * eltwise.c - element-wise arithmetic with numpy broadcasting: Add, Sub, Mul,
 * Div (opset 7+) and the variadic Sum (opset 8+ broadcasting).
 *
 * Add/Sub/Mul/Div compute float32, int64 and int32 tensors, so they can be
 * folded in shape subgraphs (QC_FOLD_CONST_INPUTS).  Integer Div truncates
 * toward zero as C (and ONNX Runtime) do; a zero divisor is QC_ERR_NUMERIC.
 * Integer Add/Sub/Mul wrap around on overflow.  Sum is float32 only.
 *
 * Broadcasting: both inputs are aligned to the output rank, given element
 * strides (0 along broadcast dims), then adjacent dims that stay contiguous
 * for both are merged.  A per-channel [C,1,1] operand of an NCHW tensor thus
 * becomes a [N*C, H*W] x [C, 1] problem whose rows have a constant second
 * operand; equal shapes become one flat row.  The flat output is cut into
 * fixed chunks spread over threads (deterministic: no reductions).
 */
#include <config.h>

#include "op.h"

#include <string.h>

#include "../log.h"

#define ELT_CHUNK 16384

enum bin_op { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };

/* A broadcast problem after merging dims: y[i] = a[off_a(i)] op b[off_b(i)]. */
struct bcast {
    int     nd;                          /* >= 1                             */
    int64_t dims[QC_MAX_DIMS];           /* output dims                      */
    int64_t sa[QC_MAX_DIMS], sb[QC_MAX_DIMS]; /* element strides, 0 = broadcast */
};

/* Element strides of s aligned right to rank nd, 0 where s has extent 1. */
static void aligned_strides(const struct qc_shape *s, int nd, int64_t *st)
{
    int64_t acc = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int k = i - (nd - s->ndim);
        int64_t d = k >= 0 ? s->dims[k] : 1;
        st[i] = d == 1 ? 0 : acc;
        acc *= d;
    }
}

static void bcast_build(const struct qc_shape *a, const struct qc_shape *b,
                        const struct qc_shape *y, struct bcast *bc)
{
    int64_t sa[QC_MAX_DIMS], sb[QC_MAX_DIMS];
    int nd = y->ndim, m = 0;
    aligned_strides(a, nd, sa);
    aligned_strides(b, nd, sb);
    for (int i = 0; i < nd; i++) {
        int64_t d = y->dims[i];
        if (d == 1)
            continue;
        /* merge into the previous dim when a and b both stay linear across it */
        if (m > 0 && bc->sa[m - 1] == sa[i] * d && bc->sb[m - 1] == sb[i] * d) {
            bc->dims[m - 1] *= d;
            bc->sa[m - 1] = sa[i];
            bc->sb[m - 1] = sb[i];
            continue;
        }
        bc->dims[m] = d;
        bc->sa[m] = sa[i];
        bc->sb[m] = sb[i];
        m++;
    }
    if (m == 0) {
        bc->dims[0] = 1;
        bc->sa[0] = 0;
        bc->sb[0] = 0;
        m = 1;
    }
    bc->nd = m;
}

/* One row piece: len elements, a and b advancing by sa/sb (0 or 1). */
#define ROW_LOOPS(T, EXPR)                                                                  \
    do {                                                                                    \
        const T *pa = (const T *)a;                                                         \
        const T *pb = (const T *)b;                                                         \
        T *py = (T *)y;                                                                     \
        if (sa == 1 && sb == 1) {                                                           \
            for (int64_t k = 0; k < len; k++) {                                             \
                T u = pa[k], v = pb[k];                                                     \
                py[k] = (EXPR);                                                             \
            }                                                                               \
        } else if (sa == 1) {                                                               \
            T v = pb[0];                                                                    \
            for (int64_t k = 0; k < len; k++) {                                             \
                T u = pa[k];                                                                \
                py[k] = (EXPR);                                                             \
            }                                                                               \
        } else if (sb == 1) {                                                               \
            T u = pa[0];                                                                    \
            for (int64_t k = 0; k < len; k++) {                                             \
                T v = pb[k];                                                                \
                py[k] = (EXPR);                                                             \
            }                                                                               \
        } else {                                                                            \
            T u = pa[0], v = pb[0];                                                         \
            for (int64_t k = 0; k < len; k++)                                               \
                py[k] = (EXPR);                                                             \
        }                                                                                   \
    } while (0)

/* Integer arithmetic through the unsigned type so overflow wraps. */
#define WRAP(T, U, u, OP, v) ((T)((U)(u) OP(U)(v)))

static void row_f32(enum bin_op op, const void *a, int64_t sa, const void *b, int64_t sb,
                    void *y, int64_t len)
{
    switch (op) {
    case BIN_ADD: ROW_LOOPS(float, u + v); break;
    case BIN_SUB: ROW_LOOPS(float, u - v); break;
    case BIN_MUL: ROW_LOOPS(float, u * v); break;
    case BIN_DIV: ROW_LOOPS(float, u / v); break;
    }
}

static void row_i64(enum bin_op op, const void *a, int64_t sa, const void *b, int64_t sb,
                    void *y, int64_t len)
{
    switch (op) {
    case BIN_ADD: ROW_LOOPS(int64_t, WRAP(int64_t, uint64_t, u, +, v)); break;
    case BIN_SUB: ROW_LOOPS(int64_t, WRAP(int64_t, uint64_t, u, -, v)); break;
    case BIN_MUL: ROW_LOOPS(int64_t, WRAP(int64_t, uint64_t, u, *, v)); break;
    case BIN_DIV: ROW_LOOPS(int64_t, (v == -1 ? WRAP(int64_t, uint64_t, 0, -, u) : u / v)); break;
    }
}

static void row_i32(enum bin_op op, const void *a, int64_t sa, const void *b, int64_t sb,
                    void *y, int64_t len)
{
    switch (op) {
    case BIN_ADD: ROW_LOOPS(int32_t, WRAP(int32_t, uint32_t, u, +, v)); break;
    case BIN_SUB: ROW_LOOPS(int32_t, WRAP(int32_t, uint32_t, u, -, v)); break;
    case BIN_MUL: ROW_LOOPS(int32_t, WRAP(int32_t, uint32_t, u, *, v)); break;
    case BIN_DIV: ROW_LOOPS(int32_t, (v == -1 ? WRAP(int32_t, uint32_t, 0, -, u) : u / v)); break;
    }
}

/* y = a op b, broadcast to y's shape.  y may alias a when a has y's shape. */
static void binary_run(enum bin_op op, const struct qc_tensor *ta, const struct qc_tensor *tb,
                       struct qc_tensor *ty, int threads)
{
    struct bcast bc;
    size_t es = qc_dtype_size(ty->dtype);
    int64_t n = qc_tensor_nelem(ty), cols, nchunks;
    const char *pa0 = ta->data, *pb0 = tb->data;
    char *py0 = ty->data;
    void (*row)(enum bin_op, const void *, int64_t, const void *, int64_t, void *, int64_t);

    row = ty->dtype == QC_DTYPE_I64 ? row_i64 : ty->dtype == QC_DTYPE_I32 ? row_i32 : row_f32;
    bcast_build(&ta->shape, &tb->shape, &ty->shape, &bc);
    cols = bc.dims[bc.nd - 1];
    nchunks = (n + ELT_CHUNK - 1) / ELT_CHUNK;
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= QC_PAR_MIN_STREAM)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t i = c * ELT_CHUNK, hi = QC_MIN(n, i + ELT_CHUNK);
        while (i < hi) {
            int64_t r = i / cols, col = i % cols, len = QC_MIN(cols - col, hi - i);
            int64_t oa = col * bc.sa[bc.nd - 1], ob = col * bc.sb[bc.nd - 1];
            /* row index -> offsets through the outer dims */
            for (int d = bc.nd - 2; d >= 0 && r > 0; d--) {
                int64_t idx = r % bc.dims[d];
                r /= bc.dims[d];
                oa += idx * bc.sa[d];
                ob += idx * bc.sb[d];
            }
            row(op, pa0 + (size_t)oa * es, bc.sa[bc.nd - 1], pb0 + (size_t)ob * es,
                bc.sb[bc.nd - 1], py0 + (size_t)i * es, len);
            i += len;
        }
    }
}

static int nthreads(const struct qc_op_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : 1;
}

/* ---- Add, Sub, Mul, Div ---- */

static bool arith_dtype(enum qc_dtype dt)
{
    return dt == QC_DTYPE_F32 || dt == QC_DTYPE_I64 || dt == QC_DTYPE_I32;
}

static enum qc_status binary_infer(const struct qc_node *n, const char *label,
                                   const struct qc_tensor *const *in,
                                   struct qc_tensor *const *out)
{
    (void)n;
    if (in[0]->dtype != in[1]->dtype) {
        qc_log_error("%s: input types %s and %s differ", label, qc_dtype_name(in[0]->dtype),
                     qc_dtype_name(in[1]->dtype));
        return QC_ERR_ONNX;
    }
    if (!arith_dtype(in[0]->dtype)) {
        qc_log_error("%s: input type %s, only float32, int64 and int32 are supported", label,
                     qc_dtype_name(in[0]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    out[0]->dtype = in[0]->dtype;
    return qc_broadcast_shape(label, &in[0]->shape, &in[1]->shape, &out[0]->shape);
}

static enum qc_status binary_forward(enum bin_op op, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    if (op == BIN_DIV && in[1]->dtype != QC_DTYPE_F32) {
        int64_t nb = qc_tensor_nelem(in[1]);
        for (int64_t i = 0; i < nb; i++) {
            if (qc_tensor_get_i64(in[1], i) == 0) {
                qc_log_error("%s: integer division by zero", ctx->label ? ctx->label : "Div");
                return QC_ERR_NUMERIC;
            }
        }
    }
    binary_run(op, in[0], in[1], out[0], nthreads(ctx));
    return QC_OK;
}

static enum qc_status add_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    (void)n;
    return binary_forward(BIN_ADD, ctx, in, out);
}

static enum qc_status sub_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    (void)n;
    return binary_forward(BIN_SUB, ctx, in, out);
}

static enum qc_status mul_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    (void)n;
    return binary_forward(BIN_MUL, ctx, in, out);
}

static enum qc_status div_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    (void)n;
    return binary_forward(BIN_DIV, ctx, in, out);
}

/* ---- Sum ---- */

static enum qc_status sum_infer(const struct qc_node *n, const char *label,
                                const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    struct qc_shape s = in[0]->shape;
    for (int i = 0; i < n->n_in; i++) {
        enum qc_status st;
        if (!in[i]) {
            qc_log_error("%s: Sum input %d is omitted", label, i);
            return QC_ERR_ONNX;
        }
        if (in[i]->dtype != QC_DTYPE_F32) {
            qc_log_error("%s: input %d type %s, only float32 is supported", label, i,
                         qc_dtype_name(in[i]->dtype));
            return QC_ERR_UNSUPPORTED;
        }
        st = qc_broadcast_shape(label, &s, &in[i]->shape, &s);
        if (st != QC_OK)
            return st;
    }
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = s;
    return QC_OK;
}

/* y = ((x0 + x1) + x2) + ...  each broadcast to y's shape */
static enum qc_status sum_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    int threads = nthreads(ctx);
    if (n->n_in == 1) {
        if (in[0]->data != out[0]->data)
            memcpy(out[0]->data, in[0]->data, qc_tensor_nbytes(in[0]));
        return QC_OK;
    }
    binary_run(BIN_ADD, in[0], in[1], out[0], threads);
    for (int i = 2; i < n->n_in; i++)
        binary_run(BIN_ADD, out[0], in[i], out[0], threads);
    return QC_OK;
}

/* ---- definitions ---- */

const struct qc_op_def qc_op_add = {
    .onnx_name = "Add", .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = binary_infer,
    .cpu = { .forward = add_forward_cpu },
};

const struct qc_op_def qc_op_sub = {
    .onnx_name = "Sub", .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = binary_infer,
    .cpu = { .forward = sub_forward_cpu },
};

const struct qc_op_def qc_op_mul = {
    .onnx_name = "Mul", .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = binary_infer,
    .cpu = { .forward = mul_forward_cpu },
};

const struct qc_op_def qc_op_div = {
    .onnx_name = "Div", .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = binary_infer,
    .cpu = { .forward = div_forward_cpu },
};

const struct qc_op_def qc_op_sum = {
    .onnx_name = "Sum", .n_in_min = 1, .n_in_max = 64, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = sum_infer,
    .cpu = { .forward = sum_forward_cpu },
};
