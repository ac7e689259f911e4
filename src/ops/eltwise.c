/*
 * eltwise.c - element-wise arithmetic with numpy broadcasting: Add, Sub, Mul,
 * Div (opset 7+) and the variadic Sum (opset 8+ broadcasting).
 *
 * Add/Sub/Mul/Div compute float32 and every 8- to 64-bit integer type
 * (int32/int64 fold in shape subgraphs, QC_FOLD_CONST_INPUTS, and carry the
 * requantization of integer-only exports).  Integer Div truncates toward
 * zero as C (and ONNX Runtime) do; a zero divisor is QC_ERR_NUMERIC, logged
 * with the node's name.  Integer Add/Sub/Mul wrap around on overflow.  Sum
 * is float32 only.
 *
 * Broadcasting: both inputs are aligned to the output rank, given element
 * strides (0 along broadcast dims), then adjacent dims that stay contiguous
 * for both are merged.  A per-channel [C,1,1] operand of an NCHW tensor thus
 * becomes a [N*C, H*W] x [C, 1] problem whose rows have a constant second
 * operand; equal shapes become one flat row.  The flat output is cut into
 * fixed chunks spread over threads (deterministic: no reductions).
 *
 * Backward (float32): the gradient of an input is the output-shaped term
 * (dy, dy*b, dy/b, ...) summed over the axes along which that input was
 * broadcast.  The same merged geometry splits the output dims into the
 * input's kept dims and its reduced dims; threads take disjoint pieces of the
 * input gradient and each sums its reduced terms in a fixed order, so the
 * result does not depend on the thread count (no atomics).
 */
#include <config.h>

#include "op.h"

#include <string.h>

#include "util/log.h"

#define ELT_CHUNK 16384

enum bin_op { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };

/* A broadcast problem after merging dims: y[i] = a[off_a(i)] op b[off_b(i)]. */
struct bcast {
    int     nd;                          /* >= 1                             */
    int64_t dims[QC_MAX_DIMS];           /* output dims                      */
    int64_t sa[QC_MAX_DIMS], sb[QC_MAX_DIMS]; /* element strides, 0 = broadcast */
};

/* Element strides of s aligned right to rank nd, 0 where s has extent 1. */
void qc_aligned_strides(const struct qc_shape *s, int nd, int64_t *st)
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
    qc_aligned_strides(a, nd, sa);
    qc_aligned_strides(b, nd, sb);
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

/* Signed rows: Div by -1 negates (wrapping, so INT_MIN / -1 = INT_MIN as
 * ORT's two's complement result); U is an unsigned type at least as wide as
 * T and int, so no operation overflows. */
#define ROW_SIGNED(NAME, T, U)                                                               \
    static void NAME(enum bin_op op, const void *a, int64_t sa, const void *b, int64_t sb,   \
                     void *y, int64_t len)                                                   \
    {                                                                                        \
        switch (op) {                                                                        \
        case BIN_ADD: ROW_LOOPS(T, WRAP(T, U, u, +, v)); break;                              \
        case BIN_SUB: ROW_LOOPS(T, WRAP(T, U, u, -, v)); break;                              \
        case BIN_MUL: ROW_LOOPS(T, WRAP(T, U, u, *, v)); break;                              \
        case BIN_DIV: ROW_LOOPS(T, (v == -1 ? WRAP(T, U, 0, -, u) : (T)(u / v))); break;     \
        }                                                                                    \
    }

#define ROW_UNSIGNED(NAME, T, U)                                                             \
    static void NAME(enum bin_op op, const void *a, int64_t sa, const void *b, int64_t sb,   \
                     void *y, int64_t len)                                                   \
    {                                                                                        \
        switch (op) {                                                                        \
        case BIN_ADD: ROW_LOOPS(T, WRAP(T, U, u, +, v)); break;                              \
        case BIN_SUB: ROW_LOOPS(T, WRAP(T, U, u, -, v)); break;                              \
        case BIN_MUL: ROW_LOOPS(T, WRAP(T, U, u, *, v)); break;                              \
        case BIN_DIV: ROW_LOOPS(T, (T)(u / v)); break;                                       \
        }                                                                                    \
    }

ROW_SIGNED(row_i64, int64_t, uint64_t)
ROW_SIGNED(row_i32, int32_t, uint32_t)
ROW_SIGNED(row_i16, int16_t, uint32_t)
ROW_SIGNED(row_i8, int8_t, uint32_t)
ROW_UNSIGNED(row_u64, uint64_t, uint64_t)
ROW_UNSIGNED(row_u32, uint32_t, uint32_t)
ROW_UNSIGNED(row_u16, uint16_t, uint32_t)
ROW_UNSIGNED(row_u8, uint8_t, uint32_t)

typedef void (*row_fn)(enum bin_op, const void *, int64_t, const void *, int64_t, void *,
                       int64_t);

static row_fn row_for(enum qc_dtype dt)
{
    switch (dt) {
    case QC_DTYPE_I64: return row_i64;
    case QC_DTYPE_I32: return row_i32;
    case QC_DTYPE_I16: return row_i16;
    case QC_DTYPE_I8:  return row_i8;
    case QC_DTYPE_U64: return row_u64;
    case QC_DTYPE_U32: return row_u32;
    case QC_DTYPE_U16: return row_u16;
    case QC_DTYPE_U8:  return row_u8;
    default:           return row_f32;
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
    row_fn row = row_for(ty->dtype);

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

/* ---- backward: broadcast reductions ---- */

/* The term summed into an input gradient; s = that input's value, o = the
 * other operand's value at the same output element. */
enum grad_term {
    TERM_DY,       /* dy            (Add, Sub a, Sum)  */
    TERM_NEG_DY,   /* -dy           (Sub b)            */
    TERM_MUL,      /* dy * o        (Mul)              */
    TERM_DIV_A,    /* dy / o        (Div a, o = b)     */
    TERM_DIV_B,    /* -dy * o / s^2 (Div b, o = a)     */
};

/* dx[k] += term(dy[k], s[k], o[k*so]) for k < len: the input's innermost dim
 * is kept (stride 1), so is 0 or 1. */
static void grad_row_kept(enum grad_term t, const float *restrict dy, const float *restrict s,
                          const float *restrict o, int64_t so, float *restrict dx, int64_t len)
{
    switch (t) {
    case TERM_DY:
        for (int64_t k = 0; k < len; k++)
            dx[k] += dy[k];
        break;
    case TERM_NEG_DY:
        for (int64_t k = 0; k < len; k++)
            dx[k] -= dy[k];
        break;
    case TERM_MUL:
        if (so)
            for (int64_t k = 0; k < len; k++)
                dx[k] += dy[k] * o[k];
        else
            for (int64_t k = 0; k < len; k++)
                dx[k] += dy[k] * o[0];
        break;
    case TERM_DIV_A:
        if (so)
            for (int64_t k = 0; k < len; k++)
                dx[k] += dy[k] / o[k];
        else
            for (int64_t k = 0; k < len; k++)
                dx[k] += dy[k] / o[0];
        break;
    case TERM_DIV_B:
        if (so)
            for (int64_t k = 0; k < len; k++)
                dx[k] -= dy[k] * o[k] / (s[k] * s[k]);
        else
            for (int64_t k = 0; k < len; k++)
                dx[k] -= dy[k] * o[0] / (s[k] * s[k]);
        break;
    }
}

#define LANES 8

/* Sum over k < len of term(dy[k], s0, o[k*so]): the input's innermost dim is
 * reduced (its value s0 is constant along it).  Eight float lanes (fixed
 * order, vectorizable), added up in double. */
static double grad_row_reduced(enum grad_term t, const float *restrict dy, float s0,
                               const float *restrict o, int64_t so, int64_t len)
{
    float lane[LANES] = { 0.0f };
    double acc = 0.0;
    int64_t k = 0, body = len - len % LANES;
    float f = t == TERM_DIV_B ? -1.0f / (s0 * s0) : t == TERM_NEG_DY ? -1.0f : 1.0f;
    if (t == TERM_DY || t == TERM_NEG_DY || !so) {
        /* sum dy, times the constant factor (o[0] or 1/o[0] when o is constant) */
        for (; k < body; k += LANES)
            for (int j = 0; j < LANES; j++)
                lane[j] += dy[k + j];
        for (; k < len; k++)
            lane[0] += dy[k];
        if (t == TERM_MUL || t == TERM_DIV_B)
            f *= o[0];
        else if (t == TERM_DIV_A)
            f /= o[0];
    } else if (t == TERM_DIV_A) {
        for (; k < body; k += LANES)
            for (int j = 0; j < LANES; j++)
                lane[j] += dy[k + j] / o[k + j];
        for (; k < len; k++)
            lane[0] += dy[k] / o[k];
    } else { /* TERM_MUL, TERM_DIV_B: sum dy*o, then the factor */
        for (; k < body; k += LANES)
            for (int j = 0; j < LANES; j++)
                lane[j] += dy[k + j] * o[k + j];
        for (; k < len; k++)
            lane[0] += dy[k] * o[k];
    }
    for (int j = 0; j < LANES; j++)
        acc += lane[j];
    return acc * f;
}

/* Offsets of the multi-index `idx` over the listed dims (row-major over
 * them) in the output (sy), this input (sx) and the other operand (so). */
static void unravel(int64_t idx, int nlist, const int *list, const struct bcast *bc,
                    const int64_t *sy, const int64_t *sx, const int64_t *so, int64_t *oy,
                    int64_t *ox, int64_t *oo)
{
    *oy = *ox = *oo = 0;
    for (int i = nlist - 1; i >= 0 && idx > 0; i--) {
        int d = list[i];
        int64_t v = idx % bc->dims[d];
        idx /= bc->dims[d];
        *oy += v * sy[d];
        *ox += v * sx[d];
        *oo += v * so[d];
    }
}

/* dx += sum over the broadcast axes of term(dy, s, o).  `self` picks which
 * operand of bc is the input (0 = a, 1 = b); s is its data, o the other's
 * (unused for TERM_DY/TERM_NEG_DY). */
static void grad_reduce(enum grad_term t, const struct bcast *bc, int self,
                        const float *dy, const float *s, const float *o, float *dx,
                        int threads)
{
    const int64_t *sx = self ? bc->sb : bc->sa, *so = self ? bc->sa : bc->sb;
    int64_t sy[QC_MAX_DIMS], acc = 1, nk = 1, nr = 1, total;
    int kept[QC_MAX_DIMS], red[QC_MAX_DIMS], nkept = 0, nred = 0;
    int last = bc->nd - 1;
    int64_t len = bc->dims[last], so_in = so[last];

    for (int d = last; d >= 0; d--) {
        sy[d] = acc;
        acc *= bc->dims[d];
    }
    total = acc;
    for (int d = 0; d < last; d++) {
        if (sx[d]) {
            kept[nkept++] = d;
            nk *= bc->dims[d];
        } else {
            red[nred++] = d;
            nr *= bc->dims[d];
        }
    }
    if (sx[last]) {
        /* innermost dim kept: units = (kept outer index, chunk of the row); each
         * adds its reduced rows into its dx piece in order r = 0, 1, ... */
        int64_t nch = (len + ELT_CHUNK - 1) / ELT_CHUNK, units = nk * nch;
#pragma omp parallel for num_threads(threads) schedule(static) \
    if (units > 1 && total >= QC_PAR_MIN_STREAM)
        for (int64_t u = 0; u < units; u++) {
            int64_t lo = (u % nch) * ELT_CHUNK, cnt = QC_MIN(len - lo, ELT_CHUNK);
            int64_t oy, ox, oo;
            unravel(u / nch, nkept, kept, bc, sy, sx, so, &oy, &ox, &oo);
            for (int64_t r = 0; r < nr; r++) {
                int64_t ry, rx, ro;
                unravel(r, nred, red, bc, sy, sx, so, &ry, &rx, &ro);
                grad_row_kept(t, dy + oy + ry + lo, s + ox + lo, o + oo + ro + lo * so_in, so_in,
                              dx + ox + lo, cnt);
            }
        }
    } else {
        /* innermost dim reduced: one unit per dx element; each sums its rows
         * in double, then adds once */
#pragma omp parallel for num_threads(threads) schedule(static) \
    if (nk > 1 && total >= QC_PAR_MIN_STREAM)
        for (int64_t u = 0; u < nk; u++) {
            int64_t oy, ox, oo;
            double sum = 0.0;
            unravel(u, nkept, kept, bc, sy, sx, so, &oy, &ox, &oo);
            for (int64_t r = 0; r < nr; r++) {
                int64_t ry, rx, ro;
                unravel(r, nred, red, bc, sy, sx, so, &ry, &rx, &ro);
                sum += grad_row_reduced(t, dy + oy + ry, s[ox], o + oo + ro, so_in, len);
            }
            dx[ox] += (float)sum;
        }
    }
}

/* ---- Add, Sub, Mul, Div ---- */

static bool arith_dtype(enum qc_dtype dt)
{
    return dt == QC_DTYPE_F32 || (qc_dtype_is_int(dt) && !qc_dtype_is_4bit(dt));
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
        qc_log_error("%s: input type %s; supported are float32 and 8- to 64-bit integers",
                     label, qc_dtype_name(in[0]->dtype));
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

/* Shared backward of the binary ops: din[0] gets term ta, din[1] term tb. */
static enum qc_status binary_backward(enum grad_term ta, enum grad_term tb,
                                      const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      const struct qc_tensor *const *out,
                                      const struct qc_tensor *const *dout,
                                      struct qc_tensor *const *din)
{
    struct bcast bc;
    const float *a, *b, *dy;
    int threads = nthreads(ctx);
    if (!dout[0] || (!din[0] && !din[1]))
        return QC_OK;
    if (out[0]->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: gradient of a %s element-wise op", ctx->label ? ctx->label : "op",
                     qc_dtype_name(out[0]->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    a = qc_tensor_f32(in[0]);
    b = qc_tensor_f32(in[1]);
    dy = qc_tensor_f32(dout[0]);
    bcast_build(&in[0]->shape, &in[1]->shape, &out[0]->shape, &bc);
    if (din[0])
        grad_reduce(ta, &bc, 0, dy, a, b, qc_tensor_f32(din[0]), threads);
    if (din[1])
        grad_reduce(tb, &bc, 1, dy, b, a, qc_tensor_f32(din[1]), threads);
    return QC_OK;
}

/* da[i] += dy[i], db[i] += dy[i] in one pass over dy (either may be NULL),
 * over fixed chunks: the result does not depend on the thread count. */
static void add_backward_same(const float *restrict dy, float *restrict da, float *restrict db,
                              int64_t n, int threads)
{
    int64_t nchunks = (n + ELT_CHUNK - 1) / ELT_CHUNK;
#pragma omp parallel for num_threads(threads) schedule(static) \
    if (nchunks > 1 && n >= QC_PAR_MIN_STREAM)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t lo = c * ELT_CHUNK, hi = QC_MIN(n, lo + ELT_CHUNK);
        if (da && db)
            for (int64_t i = lo; i < hi; i++) {
                float g = dy[i];
                da[i] += g;
                db[i] += g;
            }
        else if (da)
            for (int64_t i = lo; i < hi; i++)
                da[i] += dy[i];
        else
            for (int64_t i = lo; i < hi; i++)
                db[i] += dy[i];
    }
}

/* da += reduce_a(dy); db += reduce_b(dy) */
static enum qc_status add_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       const struct qc_tensor *const *out,
                                       const struct qc_tensor *const *dout,
                                       struct qc_tensor *const *din)
{
    (void)n;
    /* same shapes, distinct gradient buffers (Add(x, x) takes the general path) */
    if (dout[0] && (din[0] || din[1]) && out[0]->dtype == QC_DTYPE_F32 &&
        !(din[0] && din[1] && din[0]->data == din[1]->data) &&
        qc_shape_equal(&in[0]->shape, &out[0]->shape) &&
        qc_shape_equal(&in[1]->shape, &out[0]->shape)) {
        add_backward_same(qc_tensor_f32(dout[0]), din[0] ? qc_tensor_f32(din[0]) : NULL,
                          din[1] ? qc_tensor_f32(din[1]) : NULL, qc_tensor_nelem(out[0]),
                          nthreads(ctx));
        return QC_OK;
    }
    return binary_backward(TERM_DY, TERM_DY, ctx, in, out, dout, din);
}

/* da += reduce_a(dy); db += reduce_b(-dy) */
static enum qc_status sub_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       const struct qc_tensor *const *out,
                                       const struct qc_tensor *const *dout,
                                       struct qc_tensor *const *din)
{
    (void)n;
    return binary_backward(TERM_DY, TERM_NEG_DY, ctx, in, out, dout, din);
}

/* da += reduce_a(dy * b); db += reduce_b(dy * a) */
static enum qc_status mul_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       const struct qc_tensor *const *out,
                                       const struct qc_tensor *const *dout,
                                       struct qc_tensor *const *din)
{
    (void)n;
    return binary_backward(TERM_MUL, TERM_MUL, ctx, in, out, dout, din);
}

/* da += reduce_a(dy / b); db += reduce_b(-dy * a / b^2) */
static enum qc_status div_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       const struct qc_tensor *const *out,
                                       const struct qc_tensor *const *dout,
                                       struct qc_tensor *const *din)
{
    (void)n;
    return binary_backward(TERM_DIV_A, TERM_DIV_B, ctx, in, out, dout, din);
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

/* dx_i += reduce_i(dy) for every input */
static enum qc_status sum_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       const struct qc_tensor *const *out,
                                       const struct qc_tensor *const *dout,
                                       struct qc_tensor *const *din)
{
    if (!dout[0])
        return QC_OK;
    for (int i = 0; i < n->n_in; i++) {
        struct bcast bc;
        const float *x;
        if (!din[i])
            continue;
        x = qc_tensor_f32(in[i]);
        bcast_build(&in[i]->shape, &in[i]->shape, &out[0]->shape, &bc);
        grad_reduce(TERM_DY, &bc, 0, qc_tensor_f32(dout[0]), x, x, qc_tensor_f32(din[i]),
                    nthreads(ctx));
    }
    return QC_OK;
}

/* ---- definitions ---- */

const struct qc_op_def qc_op_add = {
    .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = binary_infer,
    .cpu = { .forward = add_forward_cpu, .backward = add_backward_cpu },
};

const struct qc_op_def qc_op_sub = {
    .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = binary_infer,
    .cpu = { .forward = sub_forward_cpu, .backward = sub_backward_cpu },
};

const struct qc_op_def qc_op_mul = {
    .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = binary_infer,
    .cpu = { .forward = mul_forward_cpu, .backward = mul_backward_cpu },
};

const struct qc_op_def qc_op_div = {
    .n_in_min = 2, .n_in_max = 2, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_CONST_INPUTS, .infer = binary_infer,
    .cpu = { .forward = div_forward_cpu, .backward = div_backward_cpu },
};

const struct qc_op_def qc_op_sum = {
    .n_in_min = 1, .n_in_max = 64, .n_out_min = 1, .n_out_max = 1,
    .fold = QC_FOLD_NEVER, .infer = sum_infer,
    .cpu = { .forward = sum_forward_cpu, .backward = sum_backward_cpu },
};
