/*
 * int_weights.c - integer weights of the int export (WEIGHT records from
 * DequantizeLinear'ed initializers, their int8/uint8/INT4 storage) and the
 * parts every layer is built from: the uint8 input, the bias record, terms.
 */
#include <config.h>

#include "int_impl.h"

#include <math.h>
#include <string.h>

#include "util/log.h"
#include "ops/op.h"
#include "ops/trace.h"

/* ---- weights ------------------------------------------------------------------------- */

/* DequantizeLinear(int initializer, scale, 0) -> WEIGHT record. */
enum qc_status qc_int_dq_weight(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *q = x->g->values[n->in[0]].init;
    const struct qc_tensor *sc = x->g->values[n->in[1]].init;
    const struct qc_tensor *zp = n->n_in > 2 && n->in[2] >= 0 ? x->g->values[n->in[2]].init : NULL;
    struct ival *r = &x->iv[n->out[0]];
    int64_t cnt = qc_tensor_nelem(q), ns;
    int64_t axis;
    enum qc_status st;

    if (!sc || sc->dtype != QC_DTYPE_F32 || q->shape.ndim < 1) {
        qc_log_error("%s: node '%s': weight scale must be a float initializer", x->g->path,
                     qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    for (int64_t i = 0; zp && i < qc_tensor_nelem(zp); i++)
        if (qc_tensor_get_i64(zp, i) != 0) {
            qc_log_error("%s: node '%s': the int export needs zero points 0", x->g->path,
                         qc_int_label(x, node));
            return QC_ERR_UNSUPPORTED;
        }
    if ((st = qc_attr_int(&n->attrs, qc_int_label(x, node), "axis", 1, &axis)) != QC_OK)
        return st;
    if (axis < 0)
        axis += q->shape.ndim;
    ns = qc_tensor_nelem(sc);
    r->kind = K_WEIGHT;
    r->wshape = q->shape;
    r->k = qc_malloc((size_t)cnt * sizeof(int32_t));
    if (!r->k)
        return QC_ERR_NOMEM;
    for (int64_t i = 0; i < cnt; i++)
        r->k[i] = (int32_t)qc_tensor_get_i64(q, i);
    if (ns == 1) {
        r->dq_axis = -1;
        r->wc = 1;
    } else {
        r->dq_axis = (int)axis;
        r->wc = ns;
    }
    r->ws = qc_int_dvec(r->wc, 0.0);
    if (!r->ws)
        return QC_ERR_NOMEM;
    for (int64_t i = 0; i < r->wc; i++)
        r->ws[i] = qc_tensor_f32(sc)[i];
    return QC_OK;
}

/* Scale of output channel oc of a weight record. */
double qc_int_wscale(const struct ival *w, int64_t oc)
{
    return w->wc == 1 ? w->ws[0] : w->ws[oc];
}

/* True when a uint8×int8 product with inputs in [0, xhi] and levels in [lo, hi]
 * cannot saturate a pairwise int16 sum (vpmaddubsw without VNNI). */
bool qc_int_pairs_fit_int16(int32_t xhi, int32_t lo, int32_t hi)
{
    return 2 * (int64_t)xhi * (hi > 0 ? hi : 0) <= 32767 &&
           2 * (int64_t)xhi * (lo < 0 ? -lo : 0) <= 32768;
}

/* The levels weight record w stores, j = k or, when every level is odd (the
 * return value), j = (k - 1)/2; their range in *lo, *hi (0 included). */
bool qc_int_stored_levels(const struct ival *w, int32_t *lo, int32_t *hi)
{
    int64_t cnt = qc_shape_nelem(&w->wshape);
    bool odd = cnt > 0;
    for (int64_t i = 0; i < cnt && odd; i++)
        odd = (w->k[i] & 1) != 0;
    *lo = *hi = 0;
    for (int64_t i = 0; i < cnt; i++) {
        int32_t j = odd ? (w->k[i] - 1) / 2 : w->k[i];
        *lo = j < *lo ? j : *lo;
        *hi = j > *hi ? j : *hi;
    }
    return odd;
}

/*
 * Stores the levels of weight record w as an initializer of the new graph, laid out
 * as `layout` (conv: as is; gemm: [K, M] from [M, K] when transpose), encoded
 * k = mul·j + add (mul 2, add 1 when every level is odd).  form W_SIGNED: *wv
 * receives an int8 (or `compute_dt`) value, INT4 storage followed by a Cast;
 * W_OFFSET: *wv is uint8 j + *zp (UINT4 storage + Cast when it fits).
 */
enum qc_status qc_int_store_weight(struct ix *x, const char *base, const struct ival *w,
                                   bool transpose, enum qc_dtype compute_dt, enum wform form,
                                   int *wv, int *zp, int *mul, int *add, double *jmax)
{
    int64_t cnt = qc_shape_nelem(&w->wshape), rows = w->wshape.dims[0], cols = cnt / rows;
    bool odd, small;
    int32_t lo = 0, hi = 0, off;
    struct qc_tensor *t;
    struct qc_shape s = w->wshape;
    enum qc_dtype store, wide;
    char name[512];
    int v;
    enum qc_status st;

    odd = qc_int_stored_levels(w, &lo, &hi);
    *mul = odd ? 2 : 1;
    *add = odd ? 1 : 0;
    *jmax = fmax(-(double)lo, (double)hi);
    if (lo < -128 || hi > 127) {
        qc_log_error("%s: layer '%s': weight levels [%d, %d] need more than 8 bits; use "
                     "QuantMode=Symmetric or a Range <= 255", x->g->path, base, (int)lo, (int)hi);
        return QC_ERR_UNSUPPORTED;
    }
    small = x->o->int4 && lo >= -8 && hi <= 7;
    if (form == W_SIGNED) {
        store = small ? QC_DTYPE_I4 : QC_DTYPE_I8;
        wide = QC_DTYPE_I8;
        off = 0;
    } else {
        store = small ? QC_DTYPE_U4 : QC_DTYPE_U8;
        wide = QC_DTYPE_U8;
        off = small ? 8 : 128;
    }
    *zp = off;
    if (transpose) {
        s.ndim = 2;
        s.dims[0] = cols;
        s.dims[1] = rows;
    }
    if ((st = qc_tensor_new(store, &s, &t)) != QC_OK)
        return st;
    for (int64_t i = 0; i < cnt; i++) {
        int32_t j = (odd ? (w->k[i] - 1) / 2 : w->k[i]) + off;
        int64_t at = transpose ? (i % cols) * rows + i / cols : i;
        if (form == W_SIGNED)
            ((int8_t *)t->data)[at] = (int8_t)j;
        else
            ((uint8_t *)t->data)[at] = (uint8_t)j;
    }
    qc_graph_unique_name(x->g, base,
                         store == QC_DTYPE_I4   ? "_weight_int4"
                         : store == QC_DTYPE_U4 ? "_weight_uint4"
                         : store == QC_DTYPE_U8 ? "_weight_uint8"
                                                : "_weight_int8",
                         name, sizeof(name));
    if ((st = qc_graph_add_initializer(x->g, name, t, &v)) != QC_OK)
        return st;
    x->stats->weight_bytes += small ? (cnt + 1) / 2 : cnt;
    if (form == W_OFFSET)
        x->stats->n_offset++;
    if (small) {
        x->int4_used = true;
        x->stats->n_int4++;
        if ((st = qc_int_cast(x, base, v, form == W_SIGNED ? compute_dt : wide, -1, &v)) != QC_OK)
            return st;
    } else if (form == W_SIGNED && compute_dt != QC_DTYPE_I8) {
        if ((st = qc_int_cast(x, base, v, compute_dt, -1, &v)) != QC_OK)
            return st;
    }
    if (odd)
        x->stats->n_odd_grid++;
    *wv = v;
    return QC_OK;
}

double qc_int_kmax_levels(const struct ival *w)
{
    double m = 0.0;
    for (int64_t i = 0; i < qc_shape_nelem(&w->wshape); i++)
        m = fmax(m, fabs((double)w->k[i]));
    return m;
}

/* The plain levels k of a 2-D weight as [K, M] (transposed from [M, K] when
 * `transpose`), INT4 or int8 storage, Cast to `compute_dt` (int32/int64) for an
 * exact integer MatMul. */
enum qc_status qc_int_store_levels(struct ix *x, const char *base, const struct ival *w,
                                   bool transpose, enum qc_dtype compute_dt, int *wv)
{
    int64_t rows = w->wshape.dims[0], cols = w->wshape.dims[1];
    double kmax = qc_int_kmax_levels(w);
    struct qc_shape s = { 2, { transpose ? cols : rows, transpose ? rows : cols } };
    struct qc_tensor *t;
    char name[512];
    int v;
    enum qc_status st;
    if (kmax > 127) {
        qc_log_error("%s: layer '%s': weight levels need more than 8 bits; use "
                     "QuantMode=Symmetric", x->g->path, base);
        return QC_ERR_UNSUPPORTED;
    }
    if ((st = qc_tensor_new(kmax <= 7 && x->o->int4 ? QC_DTYPE_I4 : QC_DTYPE_I8, &s, &t)) != QC_OK)
        return st;
    for (int64_t i = 0; i < rows * cols; i++) {
        int64_t at = transpose ? (i % cols) * rows + i / cols : i;
        ((int8_t *)t->data)[at] = (int8_t)w->k[i];
    }
    x->stats->weight_bytes += t->dtype == QC_DTYPE_I4 ? (rows * cols + 1) / 2 : rows * cols;
    if (t->dtype == QC_DTYPE_I4) {
        x->int4_used = true;
        x->stats->n_int4++;
    }
    qc_graph_unique_name(x->g, base, t->dtype == QC_DTYPE_I4 ? "_weight_int4" : "_weight_int8",
                         name, sizeof(name));
    if ((st = qc_graph_add_initializer(x->g, name, t, &v)) != QC_OK)
        return st;
    return qc_int_cast(x, base, v, compute_dt, -1, wv);
}

/* A Cast, or a layout op that moves the input's values without changing them. */
static bool input_op(const struct qc_node *n)
{
    return n->n_in > 0 &&
           (n->kind == QC_OP_CAST || n->kind == QC_OP_FLATTEN || n->kind == QC_OP_RESHAPE ||
            n->kind == QC_OP_TRANSPOSE || n->kind == QC_OP_SQUEEZE || n->kind == QC_OP_UNSQUEEZE);
}

/* Whether v is the float graph input itself or what float Casts and layout ops
 * the pass kept (x->iv[·] K_NONE) made of it: values the input quantizer may read. */
bool qc_int_from_input(const struct ix *x, int v)
{
    for (int hops = 0; v >= 0 && v < x->n_val && hops <= x->n_node; hops++) {
        const struct qc_value *val = &x->g->values[v];
        if (val->init || x->iv[v].kind != K_NONE)
            return false;
        if (val->is_input)
            return true;
        if (val->producer < 0 || val->producer >= x->n_node ||
            !input_op(&x->g->nodes[val->producer]))
            return false;
        v = x->g->nodes[val->producer].in[0];
    }
    return false;
}

/* Whether such a value holds float32: a graph input does (a float16 one is read
 * as float32 and written with its Cast to float32 in front), a Cast's output when
 * it casts to float32. */
bool qc_int_input_f32(const struct ix *x, int v)
{
    if (!qc_int_from_input(x, v))
        return false;
    for (;;) {
        const struct qc_value *val = &x->g->values[v];
        const struct qc_node *n;
        int64_t to = 0;
        if (val->is_input)
            return val->dtype == QC_DTYPE_F32;
        n = &x->g->nodes[val->producer];
        if (n->kind == QC_OP_CAST) {
            /* Cast's `to` is an ONNX element type, the numbering of enum qc_dtype */
            if (qc_attr_int(&n->attrs, qc_int_label(x, val->producer), "to", 0, &to) != QC_OK)
                return false;
            return to == QC_DTYPE_F32;
        }
        v = n->in[0];
    }
}

/* The uint8 form of a layer input: a U8 record, or the float32 graph input (after
 * the float Casts and layout ops qc_int_from_input allows) quantized once with the
 * input scale. */
enum qc_status qc_int_layer_input(struct ix *x, int node, int v, int *q, double *s, int *hi)
{
    char from[600] = "";
    int p;
    struct ival *r = &x->iv[v];
    enum qc_status st;
    if (r->kind == K_U8) {
        *q = r->v;
        *s = r->s;
        *hi = r->hi;
        return QC_OK;
    }
    if (r->kind == K_NONE && qc_int_from_input(x, v) && !qc_int_input_f32(x, v)) {
        qc_log_error("%s: node '%s': input '%s' is not float32 (the int export quantizes "
                     "the float32 input or its Cast to float32)",
                     x->g->path, qc_int_label(x, node), qc_int_vname(x, v));
        return QC_ERR_UNSUPPORTED;
    }
    if (r->kind == K_NONE && qc_int_from_input(x, v)) {
        if (x->qin[v] < 0) {
            int in[3];
            if ((st = qc_int_scalar_const(x, qc_int_vname(x, v), "_scale", QC_DTYPE_F32,
                                          x->o->input_scale, &in[1])) != QC_OK ||
                (st = qc_int_scalar_const(x, qc_int_vname(x, v), "_zero_point", QC_DTYPE_U8, 0,
                                          &in[2])) != QC_OK)
                return st;
            in[0] = v;
            if ((st = qc_int_emit(x, "QuantizeLinear", qc_int_vname(x, v), in, 3, QC_DTYPE_U8, -1,
                                  &x->qin[v], NULL)) != QC_OK)
                return st;
            if ((st = qc_int_note(x, qc_int_vname(x, v), "input quantizer s=%.6g",
                                  x->o->input_scale)) != QC_OK)
                return st;
        }
        *q = x->qin[v];
        *s = (float)x->o->input_scale;
        *hi = 255;
        return QC_OK;
    }
    p = x->g->values[v].producer;
    if (p >= 0) { /* the op that computes it, which a user looks for in the model */
        int src = qc_op_data_source(x->g, v);
        size_t len = (size_t)snprintf(from, sizeof(from), " (output of %s '%s'",
                                      x->g->nodes[p].op_type, qc_int_label(x, p));
        if (src >= 0 && src != p && len < sizeof(from)) /* behind pooling or layout ops */
            snprintf(from + len, sizeof(from) - len, ", computed by %s '%s'",
                     x->g->nodes[src].op_type, qc_int_label(x, src));
        len = strlen(from);
        if (len + 1 < sizeof(from))
            strcat(from, ")");
    }
    qc_log_error("%s: node '%s': input '%s'%s is not a quantized activation (the int export "
                 "needs QAct on the activation feeding every layer)",
                 x->g->path, qc_int_label(x, node), qc_int_vname(x, v), from);
    return QC_ERR_UNSUPPORTED;
}

enum qc_status qc_int_weight_of(struct ix *x, int node, int v, struct ival **w)
{
    if (x->iv[v].kind != K_WEIGHT) {
        qc_log_error("%s: node '%s': weight '%s' is not integer (the int export needs QWeight "
                     "with ApplyQuantization=1 on every Conv and Gemm; a fake-quant file keeps "
                     "SAT Default levels beyond int8 as floats: export those with --format int "
                     "from the training run)",
                     x->g->path, qc_int_label(x, node), qc_int_vname(x, v));
        return QC_ERR_UNSUPPORTED;
    }
    *w = &x->iv[v];
    return QC_OK;
}

/* Starts PEND record r for a layer output with c channels: bias from the float
 * initializer at input bi (or 0). */
enum qc_status qc_int_layer_record(struct ix *x, int node, int bi, int64_t c, int rank,
                                   struct ival *r)
{
    const struct qc_node *n = &x->g->nodes[node];
    memset(r, 0, sizeof(*r));
    r->kind = K_PEND;
    r->c = c;
    r->rank = rank;
    r->lo = -INFINITY;
    r->hi_r = INFINITY;
    r->b = qc_int_dvec(c, 0.0);
    if (!r->b)
        return QC_ERR_NOMEM;
    if (bi < n->n_in && n->in[bi] >= 0) {
        const struct qc_tensor *b = x->g->values[n->in[bi]].init;
        int64_t nb = b ? qc_tensor_nelem(b) : 0;
        if (!b || (nb != c && nb != 1)) {
            qc_log_error("%s: node '%s': the bias must be a constant of %lld or 1 values",
                         x->g->path, qc_int_label(x, node), (long long)c);
            return QC_ERR_UNSUPPORTED;
        }
        for (int64_t j = 0; j < c; j++)
            r->b[j] = qc_tensor_get_f64(b, nb == 1 ? 0 : j);
    }
    return QC_OK;
}

enum qc_status qc_int_add_term(struct ix *x, int node, struct ival *r, int v, enum qc_dtype dt,
                               bool bcast, double bound, double *a)
{
    if (r->nt == MAX_TERMS) {
        qc_free(a);
        qc_log_error("%s: node '%s': more than %d integer terms meet here", x->g->path,
                     qc_int_label(x, node), MAX_TERMS);
        return QC_ERR_UNSUPPORTED;
    }
    r->t[r->nt].v = v;
    r->t[r->nt].dt = dt;
    r->t[r->nt].bcast = bcast;
    r->t[r->nt].bound = bound;
    r->t[r->nt].a = a;
    r->nt++;
    return QC_OK;
}

/*
 * Odd grids: the layer's one term holds acc = Σ j'·x with a = 2·s_x·s_w; the
 * window sum `sum` (Σ x, int32, possibly broadcast over channels) completes
 * Σ k·x = 2·acc + sum, formed in integers here so that no later float step
 * has to add two large, nearly cancelling products.
 */
enum qc_status qc_int_odd_combine(struct ix *x, const char *base, struct ival *r, int sum,
                                  double sum_bound)
{
    struct term *t = &r->t[0];
    double bound = 2.0 * t->bound + sum_bound;
    enum qc_dtype dt = bound < TWO31 / 2 ? QC_DTYPE_I32 : QC_DTYPE_I64;
    int in[2], v = t->v;
    enum qc_status st;
    if (dt != QC_DTYPE_I32 && ((st = qc_int_cast(x, base, v, dt, -1, &v)) != QC_OK ||
                               (st = qc_int_cast(x, base, sum, dt, -1, &sum)) != QC_OK))
        return st;
    if ((st = qc_int_scalar_const(x, base, "_two", dt, 2.0, &in[1])) != QC_OK)
        return st;
    in[0] = v;
    if ((st = qc_int_emit(x, "Mul", base, in, 2, dt, -1, &v, NULL)) != QC_OK)
        return st;
    in[0] = v;
    in[1] = sum;
    if ((st = qc_int_emit(x, "Add", base, in, 2, dt, -1, &t->v, NULL)) != QC_OK)
        return st;
    t->dt = dt;
    t->bound = bound;
    for (int64_t j = 0; j < r->c; j++)
        t->a[j] /= 2.0;
    return QC_OK;
}
