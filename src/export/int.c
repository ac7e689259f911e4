/*
 * int.c - integer-only export (see int.h for the arithmetic).
 *
 * One pass over the fake-quant graph in topological order keeps, for every
 * original value, what it has become:
 *   WEIGHT  the integer levels k and per-output-channel scales of a
 *           DequantizeLinear'ed initializer;
 *   U8      a uint8 tensor of the new graph with one scale s (real = s·q);
 *   PEND    "pending" integer terms: real[c] = Σ_i a_i[c]·q_i + b[c] along
 *           channel axis 1, with a clip [lo, hi] still to apply; the terms
 *           are int32/int64/uint8 tensors of the new graph (a term whose
 *           channel dimension is 1 broadcasts over the channels).
 * Layers, BatchNorm, bias, ReLU/Clip and Add only edit PEND records; a
 * QuantizeLinear on a PEND record emits the requantization chain; a
 * float-only consumer (or a graph output) gets the float dequantization.
 * Every original node the pass handles is removed at the end and the
 * original value names are re-produced where the float graph still reads
 * them, so graph outputs keep their names.  Shapes come from a plan of the
 * fake graph at batch 1.
 */
#include <config.h>

#include "int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "util/log.h"
#include "ops/op.h"
#include "plan/plan.h"

#define MAX_TERMS   8
#define TWO31       2147483648.0
#define TWO62       4611686018427387904.0

enum ikind { K_NONE = 0, K_WEIGHT, K_U8, K_PEND };

struct term {
    int           v;        /* integer value of the new graph                 */
    enum qc_dtype dt;
    bool          bcast;    /* channel dimension 1 (window sums)              */
    double       *a;        /* [c] real units per integer step (owned)        */
    double        bound;    /* max |q|                                         */
};

struct ival {
    enum ikind kind;
    /* U8 */
    int    v;
    double s;
    int    hi;               /* largest level                                  */
    /* PEND */
    int         nt;
    struct term t[MAX_TERMS];
    int64_t     c;           /* channels (axis 1)                              */
    int         rank;
    double     *b;           /* [c] (owned)                                    */
    double      lo, hi_r;    /* clip still to apply, ±inf = none               */
    /* WEIGHT */
    int32_t        *k;       /* levels (owned)                                 */
    double         *ws;      /* [wc] scale per output channel (owned)          */
    int64_t         wc;
    struct qc_shape wshape;
    int             dq_axis; /* axis of a per-axis scale, -1 per tensor        */
    bool            materialized;
    struct ival    *view;    /* U8: its one-term PEND form, built on demand     */
};

struct ix {
    struct qc_graph           *g;
    struct qc_plan            *plan;   /* the fake graph at batch 1            */
    const struct qc_int_opts  *o;
    struct qc_int_stats       *stats;
    struct qc_int_notes       *notes;
    struct ival               *iv;     /* per original value                   */
    int                        n_val, n_node;
    bool                      *drop;   /* per original node                    */
    int                       *qin;    /* per original value: quantized input  */
    bool                       int4_used;
};

/* ---- small helpers ------------------------------------------------------------------- */

static double *dvec(int64_t n, double v)
{
    double *d = qc_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (d)
        for (int64_t i = 0; i < n; i++)
            d[i] = v;
    return d;
}

static bool uniform(const double *a, int64_t n)
{
    for (int64_t i = 1; i < n; i++)
        if (a[i] != a[0])
            return false;
    return true;
}

static const char *vname(const struct ix *x, int v)
{
    return x->g->values[v].name;
}

static const char *label(const struct ix *x, int node)
{
    return qc_node_label(x->g, &x->g->nodes[node]);
}

static const struct qc_shape *shape_of(struct ix *x, int v)
{
    struct qc_tensor *t = qc_plan_value(x->plan, v);
    return t ? &t->shape : NULL;
}

static void ival_clear(struct ival *r)
{
    if (r->view) {
        ival_clear(r->view);
        qc_free(r->view);
    }
    for (int i = 0; i < r->nt; i++)
        qc_free(r->t[i].a);
    qc_free(r->b);
    qc_free(r->k);
    qc_free(r->ws);
    memset(r, 0, sizeof(*r));
}

static enum qc_status note(struct ix *x, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum qc_status qc_int_notes_add(struct qc_int_notes *ns, const char *node, const char *text)
{
    if (ns->n == ns->cap) {
        int cap = ns->cap ? 2 * ns->cap : 32;
        struct qc_int_note *v = qc_realloc(ns->v, (size_t)cap * sizeof(*v));
        if (!v)
            return QC_ERR_NOMEM;
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n].node = qc_strdup(node);
    ns->v[ns->n].text = qc_strdup(text);
    if (!ns->v[ns->n].node || !ns->v[ns->n].text) {
        qc_free(ns->v[ns->n].node);
        qc_free(ns->v[ns->n].text);
        return QC_ERR_NOMEM;
    }
    ns->n++;
    return QC_OK;
}

static enum qc_status note(struct ix *x, const char *node, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    if (!x->notes)
        return QC_OK;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return qc_int_notes_add(x->notes, node, buf);
}

void qc_int_notes_free(struct qc_int_notes *notes)
{
    if (!notes)
        return;
    for (int i = 0; i < notes->n; i++) {
        qc_free(notes->v[i].node);
        qc_free(notes->v[i].text);
    }
    qc_free(notes->v);
    memset(notes, 0, sizeof(*notes));
}

/* ---- emitting nodes and constants ---------------------------------------------------- */

static enum qc_status new_value(struct ix *x, const char *base, const char *suffix,
                                enum qc_dtype dt, int *v)
{
    char name[512];
    enum qc_status st;
    qc_graph_unique_name(x->g, base, suffix, name, sizeof(name));
    st = qc_graph_value(x->g, name, v);
    if (st == QC_OK)
        x->g->values[*v].dtype = dt;
    return st;
}

/* Appends op(in) -> out (a new value of dtype dt, or `target` when >= 0). */
static enum qc_status emit(struct ix *x, const char *op, const char *base, const int *in, int n_in,
                           enum qc_dtype dt, int target, int *out, int *node)
{
    int v = target, idx;
    enum qc_status st;
    if (v < 0) {
        char suffix[64];
        snprintf(suffix, sizeof(suffix), "_%s", op);
        if ((st = new_value(x, base, suffix, dt, &v)) != QC_OK)
            return st;
    }
    /* unnamed nodes (their label is the output name): names add nothing a
     * reader needs and, on small models, a measurable part of the file */
    st = qc_graph_add_op(x->g, op, "", in, n_in, &v, 1, &idx);
    if (st != QC_OK)
        return st;
    if (out)
        *out = v;
    if (node)
        *node = idx;
    return QC_OK;
}

static enum qc_status attr_int(struct ix *x, int node, const char *name, int64_t v)
{
    struct qc_attr a;
    memset(&a, 0, sizeof(a));
    a.name = qc_strdup(name);
    if (!a.name)
        return QC_ERR_NOMEM;
    a.type = QC_ATTR_INT;
    a.i = v;
    return qc_attrs_add(&x->g->nodes[node].attrs, &a);
}

/* Copies every attribute of node `from` onto node `to` (INT, INTS, FLOAT, FLOATS, STRING). */
static enum qc_status copy_attrs(struct ix *x, int to, int from)
{
    for (int i = 0; i < x->g->nodes[from].attrs.n; i++) {
        const struct qc_attr *s = &x->g->nodes[from].attrs.v[i];
        struct qc_attr a;
        enum qc_status st;
        memset(&a, 0, sizeof(a));
        a.type = s->type;
        a.name = qc_strdup(s->name);
        a.f = s->f;
        a.i = s->i;
        a.n = s->n;
        if (!a.name)
            return QC_ERR_NOMEM;
        switch (s->type) {
        case QC_ATTR_INT: case QC_ATTR_FLOAT:
            break;
        case QC_ATTR_STRING:
            a.s = qc_strdup(s->s ? s->s : "");
            if (!a.s) {
                qc_attr_clear(&a);
                return QC_ERR_NOMEM;
            }
            break;
        case QC_ATTR_INTS:
            a.ints = qc_malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof(int64_t));
            if (!a.ints) {
                qc_attr_clear(&a);
                return QC_ERR_NOMEM;
            }
            if (s->n > 0)
                memcpy(a.ints, s->ints, (size_t)s->n * sizeof(int64_t));
            break;
        case QC_ATTR_FLOATS:
            a.floats = qc_malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof(float));
            if (!a.floats) {
                qc_attr_clear(&a);
                return QC_ERR_NOMEM;
            }
            if (s->n > 0)
                memcpy(a.floats, s->floats, (size_t)s->n * sizeof(float));
            break;
        default:
            qc_attr_clear(&a);
            qc_log_error("%s: node '%s': attribute '%s' cannot be carried into the int export",
                         x->g->path, label(x, from), s->name);
            return QC_ERR_UNSUPPORTED;
        }
        if ((st = qc_attrs_add(&x->g->nodes[to].attrs, &a)) != QC_OK)
            return st;
    }
    return QC_OK;
}

/* A constant of dtype dt: a scalar when every entry is equal (or n == 1), else a
 * per-channel vector shaped [1, c, 1, ...] for a tensor of `rank` dims (rank <= 1: [c]). */
static enum qc_status constant(struct ix *x, const char *base, const char *suffix,
                               enum qc_dtype dt, const double *vals, int64_t n, int rank, int *v)
{
    struct qc_shape s;
    struct qc_tensor *t;
    char name[512];
    enum qc_status st;
    bool scalar = n <= 1 || uniform(vals, n);
    if (scalar) {
        s = qc_shape_make(0, NULL);
    } else {
        int64_t dims[QC_MAX_DIMS];
        int r = rank < 2 ? 1 : rank;
        for (int i = 0; i < r; i++)
            dims[i] = 1;
        dims[r < 2 ? 0 : 1] = n;
        s = qc_shape_make(r, dims);
    }
    if ((st = qc_tensor_new(dt, &s, &t)) != QC_OK)
        return st;
    for (int64_t i = 0; i < (scalar ? 1 : n); i++) {
        switch (dt) {
        case QC_DTYPE_F32: qc_tensor_f32(t)[i] = (float)vals[i]; break;
        case QC_DTYPE_I64: ((int64_t *)t->data)[i] = (int64_t)vals[i]; break;
        case QC_DTYPE_I32: ((int32_t *)t->data)[i] = (int32_t)vals[i]; break;
        case QC_DTYPE_U8:  ((uint8_t *)t->data)[i] = (uint8_t)vals[i]; break;
        default: qc_tensor_free(t); return QC_ERR_INTERNAL;
        }
    }
    qc_graph_unique_name(x->g, base, suffix, name, sizeof(name));
    return qc_graph_add_initializer(x->g, name, t, v);
}

static enum qc_status scalar_const(struct ix *x, const char *base, const char *suffix,
                                   enum qc_dtype dt, double val, int *v)
{
    return constant(x, base, suffix, dt, &val, 1, 0, v);
}

/* 1-D int64 initializer (axes). */
static enum qc_status axes_const(struct ix *x, const char *base, const int64_t *ax, int n, int *v)
{
    int64_t len = n;
    struct qc_shape s = qc_shape_make(1, &len);
    struct qc_tensor *t;
    char name[512];
    enum qc_status st = qc_tensor_new(QC_DTYPE_I64, &s, &t);
    if (st != QC_OK)
        return st;
    memcpy(t->data, ax, (size_t)n * sizeof(int64_t));
    qc_graph_unique_name(x->g, base, "_axes", name, sizeof(name));
    return qc_graph_add_initializer(x->g, name, t, v);
}

static enum qc_status cast(struct ix *x, const char *base, int in, enum qc_dtype to, int target,
                           int *out)
{
    int node;
    enum qc_status st = emit(x, "Cast", base, &in, 1, to, target, out, &node);
    return st == QC_OK ? attr_int(x, node, "to", (int64_t)to) : st;
}

/* ---- records ------------------------------------------------------------------------- */

/* Channel count along axis 1 of original value v (1 for rank < 2). */
static int64_t channels(struct ix *x, int v, int *rank)
{
    const struct qc_shape *s = shape_of(x, v);
    *rank = s ? s->ndim : 0;
    return s && s->ndim >= 2 ? s->dims[1] : 1;
}

/* A U8 record as a one-term PEND record (in place). */
static enum qc_status u8_to_pend(struct ix *x, int v, struct ival *r)
{
    int rank;
    int64_t c = channels(x, v, &rank);
    struct term t = { r->v, QC_DTYPE_U8, false, dvec(c, r->s), (double)r->hi };
    double *b = dvec(c, 0.0);
    if (!t.a || !b) {
        qc_free(t.a);
        qc_free(b);
        return QC_ERR_NOMEM;
    }
    r->kind = K_PEND;
    r->nt = 1;
    r->t[0] = t;
    r->c = c;
    r->rank = rank;
    r->b = b;
    r->lo = -INFINITY;
    r->hi_r = INFINITY;
    return QC_OK;
}

/* Moves record src into dst (dst cleared first); src becomes empty. */
static void move(struct ival *dst, struct ival *src)
{
    if (dst == src)
        return;
    ival_clear(dst);
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

/* A deep copy of a PEND record. */
static enum qc_status pend_copy(const struct ival *s, struct ival *d)
{
    memset(d, 0, sizeof(*d));
    *d = *s;
    d->k = NULL;
    d->ws = NULL;
    d->b = dvec(s->c, 0.0);
    if (!d->b)
        return QC_ERR_NOMEM;
    memcpy(d->b, s->b, (size_t)s->c * sizeof(double));
    for (int i = 0; i < s->nt; i++) {
        d->t[i].a = dvec(s->c, 0.0);
        if (!d->t[i].a) {
            d->nt = i;
            ival_clear(d);
            return QC_ERR_NOMEM;
        }
        memcpy(d->t[i].a, s->t[i].a, (size_t)s->c * sizeof(double));
    }
    return QC_OK;
}

/* The PEND form of original value v (for a U8 record: a view built once). */
static enum qc_status need_pend(struct ix *x, int node, int v, struct ival **out)
{
    struct ival *r = &x->iv[v];
    enum qc_status st;
    if (r->kind == K_U8) {
        /* the record stays U8 for its other readers; the PEND form is a view */
        if (!r->view) {
            struct ival *w = qc_calloc(1, sizeof(*w));
            if (!w)
                return QC_ERR_NOMEM;
            w->kind = K_U8;
            w->v = r->v;
            w->s = r->s;
            w->hi = r->hi;
            if ((st = u8_to_pend(x, v, w)) != QC_OK) {
                qc_free(w);
                return st;
            }
            r->view = w;
        }
        *out = r->view;
        return QC_OK;
    }
    if (r->kind != K_PEND) {
        qc_log_error("%s: node '%s': input '%s' is not an integer tensor of the int export "
                     "(quantize the activations that reach it)", x->g->path, label(x, node),
                     vname(x, v));
        return QC_ERR_UNSUPPORTED;
    }
    *out = r;
    return QC_OK;
}

static bool has_clip(const struct ival *r)
{
    return r->lo != -INFINITY || r->hi_r != INFINITY;
}

static enum qc_status no_clip(struct ix *x, int node, const struct ival *r, int v)
{
    if (!has_clip(r))
        return QC_OK;
    qc_log_error("%s: node '%s': '%s' goes through a ReLU/Clip that no activation quantizer "
                 "follows; the int export needs QAct on that activation", x->g->path,
                 label(x, node), vname(x, v));
    return QC_ERR_UNSUPPORTED;
}

/* ---- requantization and dequantization ----------------------------------------------- */

/* Emits the requantization of PEND record r to uint8 with scale s_out and levels
 * [qlo, qhi] (the record's clip included); *out receives the uint8 value. */
static enum qc_status requant(struct ix *x, const char *base, const struct ival *r, double s_out,
                              int qlo, int qhi, int *out)
{
    double mmax[MAX_TERMS], bmax = 0.0, ph = 0.0;
    double *m0 = NULL, *cc = NULL;
    int n = 0, acc = -1, v, in[3];
    enum qc_status st = QC_ERR_NOMEM;
    int64_t c = r->c;

    if (r->lo != -INFINITY) {
        float l = rintf((float)r->lo / (float)s_out);
        if (l > qlo)
            qlo = l > qhi ? qhi : (int)l;
    }
    if (r->hi_r != INFINITY) {
        float h = rintf((float)r->hi_r / (float)s_out);
        if (h < qhi)
            qhi = h < qlo ? qlo : (int)h;
    }
    for (int i = 0; i < r->nt; i++) {
        mmax[i] = 0.0;
        for (int64_t j = 0; j < c; j++)
            mmax[i] = fmax(mmax[i], fabs(r->t[i].a[j] / s_out));
    }
    for (int64_t j = 0; j < c; j++)
        bmax = fmax(bmax, fabs(r->b[j] / s_out));
    /* largest n with every |M0| < 2^31 and |Σ M0·q| + |C| + 2^(n-1) < 2^62 */
    for (n = 62; n >= 1; n--) {
        double p = ldexp(1.0, n), sum = p / 2 + 2.0;
        bool ok = true;
        for (int i = 0; i < r->nt; i++) {
            ok = ok && mmax[i] * p < TWO31;
            sum += mmax[i] * p * r->t[i].bound + 1.0;
        }
        sum += bmax * p + 1.0;
        if (ok && sum < TWO62)
            break;
    }
    if (n < 1) {
        qc_log_error("%s: '%s': the requantization multiplier does not fit int64 fixed point",
                     x->g->path, base);
        return QC_ERR_UNSUPPORTED;
    }
    ph = ldexp(1.0, n);
    m0 = dvec(c, 0.0);
    cc = dvec(c, 0.0);
    if (!m0 || !cc)
        goto out;
    for (int64_t j = 0; j < c; j++)
        cc[j] = rint(r->b[j] / s_out * ph) + ph / 2;
    for (int i = 0; i < r->nt; i++) {
        int q = r->t[i].v, prod;
        if ((st = cast(x, base, q, QC_DTYPE_I64, -1, &q)) != QC_OK)
            goto out;
        for (int64_t j = 0; j < c; j++)
            m0[j] = rint(r->t[i].a[j] / s_out * ph);
        if ((st = constant(x, base, "_M0", QC_DTYPE_I64, m0, c, r->rank, &in[1])) != QC_OK)
            goto out;
        in[0] = q;
        if ((st = emit(x, "Mul", base, in, 2, QC_DTYPE_I64, -1, &prod, NULL)) != QC_OK)
            goto out;
        if (acc < 0) {
            acc = prod;
        } else {
            in[0] = acc;
            in[1] = prod;
            if ((st = emit(x, "Add", base, in, 2, QC_DTYPE_I64, -1, &acc, NULL)) != QC_OK)
                goto out;
        }
    }
    if ((st = constant(x, base, "_C", QC_DTYPE_I64, cc, c, r->rank, &in[1])) != QC_OK)
        goto out;
    if (acc < 0) {
        /* no term left (every scale 0): the constant alone */
        double zero = 0.0;
        if ((st = constant(x, base, "_zero", QC_DTYPE_I64, &zero, 1, 0, &acc)) != QC_OK)
            goto out;
    }
    in[0] = acc;
    if ((st = emit(x, "Add", base, in, 2, QC_DTYPE_I64, -1, &v, NULL)) != QC_OK ||
        (st = scalar_const(x, base, "_2^n", QC_DTYPE_I64, ph, &in[1])) != QC_OK)
        goto out;
    in[0] = v;
    if ((st = emit(x, "Div", base, in, 2, QC_DTYPE_I64, -1, &v, NULL)) != QC_OK ||
        (st = scalar_const(x, base, "_lo", QC_DTYPE_I64, qlo, &in[1])) != QC_OK ||
        (st = scalar_const(x, base, "_hi", QC_DTYPE_I64, qhi, &in[2])) != QC_OK)
        goto out;
    in[0] = v;
    if ((st = emit(x, "Clip", base, in, 3, QC_DTYPE_I64, -1, &v, NULL)) != QC_OK ||
        (st = cast(x, base, v, QC_DTYPE_U8, -1, out)) != QC_OK)
        goto out;
    x->stats->n_requant++;
    st = note(x, base, "requant n=%d M0[0]=%.0f levels [%d,%d] s=%.6g", n, m0[0], qlo, qhi,
              s_out);
out:
    qc_free(m0);
    qc_free(cc);
    return st;
}

/* Emits Σ_i Cast_f32(q_i)·a_i + b (+ clip) producing value `target`. */
static enum qc_status dequant(struct ix *x, const char *base, struct ival *r, int target)
{
    int acc = -1, v, in[3], last_needed;
    bool need_bias = false, clip = has_clip(r);
    enum qc_status st;
    for (int64_t j = 0; j < r->c; j++)
        need_bias = need_bias || r->b[j] != 0.0;
    for (int i = 0; i < r->nt; i++) {
        bool last = i == r->nt - 1 && !need_bias && !clip;
        last_needed = last ? target : -1;
        if ((st = cast(x, base, r->t[i].v, QC_DTYPE_F32, -1, &v)) != QC_OK ||
            (st = constant(x, base, "_scale", QC_DTYPE_F32, r->t[i].a, r->c, r->rank, &in[1])) !=
                QC_OK)
            return st;
        in[0] = v;
        if ((st = emit(x, "Mul", base, in, 2, QC_DTYPE_F32, acc < 0 ? last_needed : -1, &v,
                       NULL)) != QC_OK)
            return st;
        if (acc < 0) {
            acc = v;
        } else {
            in[0] = acc;
            in[1] = v;
            if ((st = emit(x, "Add", base, in, 2, QC_DTYPE_F32, last_needed, &acc, NULL)) != QC_OK)
                return st;
        }
    }
    if (need_bias) {
        if ((st = constant(x, base, "_bias", QC_DTYPE_F32, r->b, r->c, r->rank, &in[1])) != QC_OK)
            return st;
        in[0] = acc;
        if ((st = emit(x, "Add", base, in, 2, QC_DTYPE_F32, clip ? -1 : target, &acc, NULL)) !=
            QC_OK)
            return st;
    }
    if (clip) {
        int n_in = 1;
        in[0] = acc;
        in[1] = in[2] = -1;
        if (r->lo != -INFINITY) {
            if ((st = scalar_const(x, base, "_min", QC_DTYPE_F32, r->lo, &in[1])) != QC_OK)
                return st;
            n_in = 2;
        }
        if (r->hi_r != INFINITY) {
            if ((st = scalar_const(x, base, "_max", QC_DTYPE_F32, r->hi_r, &in[2])) != QC_OK)
                return st;
            n_in = 3;
        }
        if ((st = emit(x, "Clip", base, in, n_in, QC_DTYPE_F32, target, &acc, NULL)) != QC_OK)
            return st;
    }
    return QC_OK;
}

/* Makes original value v a float tensor again (for a float-only consumer or a graph
 * output): the producer was removed, so the dequantization produces v itself. */
static enum qc_status materialize(struct ix *x, int v)
{
    struct ival *r = &x->iv[v];
    enum qc_status st;
    if (r->kind == K_NONE || r->materialized)
        return QC_OK;
    if (r->kind == K_WEIGHT) {
        qc_log_error("%s: weight '%s' is read by an op the int export cannot make integer",
                     x->g->path, vname(x, v));
        return QC_ERR_UNSUPPORTED;
    }
    if (r->kind == K_U8) {
        struct ival tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.kind = K_U8;
        tmp.v = r->v;
        tmp.s = r->s;
        tmp.hi = r->hi;
        if ((st = u8_to_pend(x, v, &tmp)) != QC_OK)
            return st;
        st = dequant(x, vname(x, v), &tmp, v);
        ival_clear(&tmp);
    } else {
        st = dequant(x, vname(x, v), r, v);
    }
    x->g->values[v].dtype = QC_DTYPE_F32;
    r->materialized = st == QC_OK;
    return st;
}

/* --int-output: graph output v as int32 logits q + rne(b / a) with one scale a
 * for every channel (recorded as metadata "qatconv.output_scale.<name>"). */
static enum qc_status int_output(struct ix *x, int v)
{
    struct ival *r = &x->iv[v];
    double *bq = NULL;
    char key[600], val[64];
    int in[2], q;
    enum qc_status st;
    if (r->kind == K_U8 && (st = u8_to_pend(x, v, r)) != QC_OK)
        return st;
    if (r->nt != 1 || has_clip(r) || !uniform(r->t[0].a, r->c) || r->t[0].a[0] == 0.0) {
        qc_log_error("%s: --int-output: output '%s' is not one integer tensor with one scale "
                     "(per-channel scales or a residual sum reach it); use the float output",
                     x->g->path, vname(x, v));
        return QC_ERR_UNSUPPORTED;
    }
    q = r->t[0].v;
    if (r->t[0].dt != QC_DTYPE_I32 && (st = cast(x, vname(x, v), q, QC_DTYPE_I32, -1, &q)) != QC_OK)
        return st;
    bq = dvec(r->c, 0.0);
    if (!bq)
        return QC_ERR_NOMEM;
    for (int64_t j = 0; j < r->c; j++)
        bq[j] = rint(r->b[j] / r->t[0].a[0]);
    st = constant(x, vname(x, v), "_bias", QC_DTYPE_I32, bq, r->c, r->rank, &in[1]);
    qc_free(bq);
    if (st != QC_OK)
        return st;
    in[0] = q;
    if ((st = emit(x, "Add", vname(x, v), in, 2, QC_DTYPE_I32, v, NULL, NULL)) != QC_OK)
        return st;
    x->g->values[v].dtype = QC_DTYPE_I32;
    r->materialized = true;
    snprintf(key, sizeof(key), "qatconv.output_scale.%s", vname(x, v));
    snprintf(val, sizeof(val), "%.9g", r->t[0].a[0]);
    return qc_graph_add_prop(x->g, key, val);
}

/* ---- weights ------------------------------------------------------------------------- */

/* DequantizeLinear(int initializer, scale, 0) -> WEIGHT record. */
static enum qc_status dq_weight(struct ix *x, int node)
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
                     label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    for (int64_t i = 0; zp && i < qc_tensor_nelem(zp); i++)
        if (qc_tensor_get_i64(zp, i) != 0) {
            qc_log_error("%s: node '%s': the int export needs zero points 0", x->g->path,
                         label(x, node));
            return QC_ERR_UNSUPPORTED;
        }
    if ((st = qc_attr_int(&n->attrs, label(x, node), "axis", 1, &axis)) != QC_OK)
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
    r->ws = dvec(r->wc, 0.0);
    if (!r->ws)
        return QC_ERR_NOMEM;
    for (int64_t i = 0; i < r->wc; i++)
        r->ws[i] = qc_tensor_f32(sc)[i];
    return QC_OK;
}

/* Scale of output channel oc of a weight record. */
static double wscale(const struct ival *w, int64_t oc)
{
    return w->wc == 1 ? w->ws[0] : w->ws[oc];
}

/*
 * How a layer's levels reach ONNX Runtime's integer kernels (int.h, "Exact on
 * every x86 CPU"): int8 (or INT4 + Cast) when every pairwise sum x0·j0 + x1·j1
 * of uint8 inputs up to `xhi` stays within int16, else uint8 j + 128 (or UINT4
 * j + 8 + Cast) with that zero point, which takes the exact u8×u8 path.
 */
enum wform { W_SIGNED, W_OFFSET };

/* True when a uint8×int8 product with inputs in [0, xhi] and levels in [lo, hi]
 * cannot saturate a pairwise int16 sum (vpmaddubsw without VNNI). */
static bool pairs_fit_int16(int32_t xhi, int32_t lo, int32_t hi)
{
    return 2 * (int64_t)xhi * (hi > 0 ? hi : 0) <= 32767 &&
           2 * (int64_t)xhi * (lo < 0 ? -lo : 0) <= 32768;
}

/* The levels weight record w stores, j = k or, when every level is odd (the
 * return value), j = (k - 1)/2; their range in *lo, *hi (0 included). */
static bool stored_levels(const struct ival *w, int32_t *lo, int32_t *hi)
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
static enum qc_status store_weight(struct ix *x, const char *base, const struct ival *w,
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

    odd = stored_levels(w, &lo, &hi);
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
        if ((st = cast(x, base, v, form == W_SIGNED ? compute_dt : wide, -1, &v)) != QC_OK)
            return st;
    } else if (form == W_SIGNED && compute_dt != QC_DTYPE_I8) {
        if ((st = cast(x, base, v, compute_dt, -1, &v)) != QC_OK)
            return st;
    }
    if (odd)
        x->stats->n_odd_grid++;
    *wv = v;
    return QC_OK;
}

static double kmax_levels(const struct ival *w)
{
    double m = 0.0;
    for (int64_t i = 0; i < qc_shape_nelem(&w->wshape); i++)
        m = fmax(m, fabs((double)w->k[i]));
    return m;
}

/* The plain levels k of a 2-D weight as [K, M] (transposed from [M, K] when
 * `transpose`), INT4 or int8 storage, Cast to `compute_dt` (int32/int64) for an
 * exact integer MatMul. */
static enum qc_status store_levels(struct ix *x, const char *base, const struct ival *w,
                                   bool transpose, enum qc_dtype compute_dt, int *wv)
{
    int64_t rows = w->wshape.dims[0], cols = w->wshape.dims[1];
    double kmax = kmax_levels(w);
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
    qc_graph_unique_name(x->g, base, t->dtype == QC_DTYPE_I4 ? "_weight_int4" : "_weight_int8", name,
                         sizeof(name));
    if ((st = qc_graph_add_initializer(x->g, name, t, &v)) != QC_OK)
        return st;
    return cast(x, base, v, compute_dt, -1, wv);
}

/* The uint8 form of a layer input: a U8 record, or a float graph input quantized
 * once with the input scale. */
static enum qc_status layer_input(struct ix *x, int node, int v, int *q, double *s, int *hi)
{
    struct ival *r = &x->iv[v];
    enum qc_status st;
    if (r->kind == K_U8) {
        *q = r->v;
        *s = r->s;
        *hi = r->hi;
        return QC_OK;
    }
    if (r->kind == K_NONE && x->g->values[v].is_input && !x->g->values[v].init) {
        if (x->qin[v] < 0) {
            int in[3];
            if ((st = scalar_const(x, vname(x, v), "_scale", QC_DTYPE_F32, x->o->input_scale,
                                   &in[1])) != QC_OK ||
                (st = scalar_const(x, vname(x, v), "_zero_point", QC_DTYPE_U8, 0, &in[2])) !=
                    QC_OK)
                return st;
            in[0] = v;
            if ((st = emit(x, "QuantizeLinear", vname(x, v), in, 3, QC_DTYPE_U8, -1, &x->qin[v],
                           NULL)) != QC_OK)
                return st;
            if ((st = note(x, vname(x, v), "input quantizer s=%.6g", x->o->input_scale)) != QC_OK)
                return st;
        }
        *q = x->qin[v];
        *s = (float)x->o->input_scale;
        *hi = 255;
        return QC_OK;
    }
    qc_log_error("%s: node '%s': input '%s' is not a quantized activation (the int export needs "
                 "QAct on the activation feeding every layer)", x->g->path, label(x, node),
                 vname(x, v));
    return QC_ERR_UNSUPPORTED;
}

static enum qc_status weight_of(struct ix *x, int node, int v, struct ival **w)
{
    if (x->iv[v].kind != K_WEIGHT) {
        qc_log_error("%s: node '%s': weight '%s' is not integer (the int export needs QWeight "
                     "with ApplyQuantization=1 on every Conv and Gemm; a fake-quant file keeps "
                     "SAT Default levels beyond int8 as floats: export those with --format int "
                     "from the training run)", x->g->path, label(x, node), vname(x, v));
        return QC_ERR_UNSUPPORTED;
    }
    *w = &x->iv[v];
    return QC_OK;
}

/* Starts PEND record r for a layer output with c channels: bias from the float
 * initializer at input bi (or 0). */
static enum qc_status layer_record(struct ix *x, int node, int bi, int64_t c, int rank,
                                   struct ival *r)
{
    const struct qc_node *n = &x->g->nodes[node];
    memset(r, 0, sizeof(*r));
    r->kind = K_PEND;
    r->c = c;
    r->rank = rank;
    r->lo = -INFINITY;
    r->hi_r = INFINITY;
    r->b = dvec(c, 0.0);
    if (!r->b)
        return QC_ERR_NOMEM;
    if (bi < n->n_in && n->in[bi] >= 0) {
        const struct qc_tensor *b = x->g->values[n->in[bi]].init;
        int64_t nb = b ? qc_tensor_nelem(b) : 0;
        if (!b || (nb != c && nb != 1)) {
            qc_log_error("%s: node '%s': the bias must be a constant of %lld or 1 values",
                         x->g->path, label(x, node), (long long)c);
            return QC_ERR_UNSUPPORTED;
        }
        for (int64_t j = 0; j < c; j++)
            r->b[j] = qc_tensor_get_f64(b, nb == 1 ? 0 : j);
    }
    return QC_OK;
}

static enum qc_status add_term(struct ix *x, int node, struct ival *r, int v, enum qc_dtype dt,
                               bool bcast, double bound, double *a)
{
    if (r->nt == MAX_TERMS) {
        qc_free(a);
        qc_log_error("%s: node '%s': more than %d integer terms meet here", x->g->path,
                     label(x, node), MAX_TERMS);
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
static enum qc_status odd_combine(struct ix *x, const char *base, struct ival *r, int sum,
                                  double sum_bound)
{
    struct term *t = &r->t[0];
    double bound = 2.0 * t->bound + sum_bound;
    enum qc_dtype dt = bound < TWO31 / 2 ? QC_DTYPE_I32 : QC_DTYPE_I64;
    int in[2], v = t->v;
    enum qc_status st;
    if (dt != QC_DTYPE_I32 && ((st = cast(x, base, v, dt, -1, &v)) != QC_OK ||
                               (st = cast(x, base, sum, dt, -1, &sum)) != QC_OK))
        return st;
    if ((st = scalar_const(x, base, "_two", dt, 2.0, &in[1])) != QC_OK)
        return st;
    in[0] = v;
    if ((st = emit(x, "Mul", base, in, 2, dt, -1, &v, NULL)) != QC_OK)
        return st;
    in[0] = v;
    in[1] = sum;
    if ((st = emit(x, "Add", base, in, 2, dt, -1, &t->v, NULL)) != QC_OK)
        return st;
    t->dt = dt;
    t->bound = bound;
    for (int64_t j = 0; j < r->c; j++)
        t->a[j] /= 2.0;
    return QC_OK;
}

/* ---- layers -------------------------------------------------------------------------- */

/* The zero-point inputs of ConvInteger / MatMulInteger: 0 for the uint8
 * activations, wzp (uint8) for weights stored with an offset. */
static enum qc_status zero_points(struct ix *x, const char *base, int wzp, int *xz, int *wz)
{
    enum qc_status st;
    if ((st = scalar_const(x, base, "_x_zero_point", QC_DTYPE_U8, 0, xz)) != QC_OK)
        return st;
    return scalar_const(x, base, "_w_zero_point", QC_DTYPE_U8, wzp, wz);
}

static enum qc_status do_conv(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    int xin = n->in[0], out = n->out[0], q, hi, wv, zp, mul, add, cnode, acc, rank;
    int64_t group, c, kred;
    double s, jmax, *a = NULL;
    struct ival *w, r;
    char base[512];
    enum qc_status st;
    int in[4];

    snprintf(base, sizeof(base), "%s", label(x, node));
    if ((st = layer_input(x, node, xin, &q, &s, &hi)) != QC_OK ||
        (st = weight_of(x, node, n->in[1], &w)) != QC_OK)
        return st;
    if ((st = qc_attr_int(&n->attrs, base, "group", 1, &group)) != QC_OK)
        return st;
    if (w->dq_axis > 0) {
        qc_log_error("%s: node '%s': per-axis weight scales must be along axis 0", x->g->path,
                     base);
        return QC_ERR_UNSUPPORTED;
    }
    c = w->wshape.dims[0];
    kred = qc_shape_nelem(&w->wshape) / c;
    /* uint8 weights with a zero point: ONNX Runtime's exact u8×u8 kernel, which
     * measured 3-4x faster than its int8-weight ConvInteger (int.h) */
    if ((st = store_weight(x, base, w, false, QC_DTYPE_I8, W_OFFSET, &wv, &zp, &mul, &add,
                           &jmax)) != QC_OK ||
        (st = zero_points(x, base, zp, &in[2], &in[3])) != QC_OK)
        return st;
    in[0] = q;
    in[1] = wv;
    if ((st = emit(x, "ConvInteger", base, in, 4, QC_DTYPE_I32, -1, &acc, &cnode)) != QC_OK ||
        (st = copy_attrs(x, cnode, node)) != QC_OK)
        return st;
    channels(x, out, &rank);
    if ((st = layer_record(x, node, 2, c, rank, &r)) != QC_OK)
        goto fail;
    a = dvec(c, 0.0);
    if (!a) {
        st = QC_ERR_NOMEM;
        goto fail;
    }
    for (int64_t j = 0; j < c; j++)
        a[j] = s * wscale(w, j) * mul;
    if ((st = add_term(x, node, &r, acc, QC_DTYPE_I32, false, (double)kred * hi * jmax, a)) !=
        QC_OK)
        goto fail;
    if (add) {
        /* Σ k·x = 2·Σ j'·x + Σ x: the window sum by a ones kernel, one output
         * channel (group 1, broadcast) or one per channel (depthwise) */
        int64_t gout = group == 1 ? 1 : group;
        struct qc_shape os = w->wshape;
        struct qc_tensor *ones;
        char name[512];
        int ov, snode, sum;
        if (group != 1 && group != c) {
            qc_log_error("%s: node '%s': odd-level weights (SAT Default/FullRange) in a grouped "
                         "convolution other than depthwise; use QuantMode=Symmetric", x->g->path,
                         base);
            st = QC_ERR_UNSUPPORTED;
            goto fail;
        }
        os.dims[0] = gout;
        if ((st = qc_tensor_new(QC_DTYPE_U8, &os, &ones)) != QC_OK)
            goto fail;
        memset(ones->data, 1, (size_t)qc_tensor_nelem(ones));
        qc_graph_unique_name(x->g, base, "_ones", name, sizeof(name));
        if ((st = qc_graph_add_initializer(x->g, name, ones, &ov)) != QC_OK)
            goto fail;
        in[0] = q;
        in[1] = ov;
        if ((st = emit(x, "ConvInteger", base, in, 2, QC_DTYPE_I32, -1, &sum, &snode)) != QC_OK ||
            (st = copy_attrs(x, snode, node)) != QC_OK)
            goto fail;
        if ((st = odd_combine(x, base, &r, sum, (double)kred * hi)) != QC_OK)
            goto fail;
    }
    move(&x->iv[out], &r);
    x->stats->n_layers++;
    return note(x, base, "ConvInteger%s s_w=%.6g", add ? " k=2j+1" : "", wscale(w, 0));
fail:
    ival_clear(&r);
    return st;
}

/* Gemm / MatMul with a quantized weight: x·W^T (transB) or x·W. */
static enum qc_status do_gemm(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    bool is_gemm = n->kind == QC_OP_GEMM;
    int xin = n->in[0], out = n->out[0], wv, mul, add, acc, rank;
    int64_t trans_a = 0, trans_b = 0, m, kdim;
    float alpha = 1.0f, beta = 1.0f;
    double jmax, *a = NULL;
    struct ival *w, r;
    struct ival *xr = &x->iv[xin];
    char base[512];
    enum qc_status st;
    int in[4];

    memset(&r, 0, sizeof(r));
    snprintf(base, sizeof(base), "%s", label(x, node));
    if ((st = weight_of(x, node, n->in[1], &w)) != QC_OK)
        return st;
    if (is_gemm && ((st = qc_attr_int(&n->attrs, base, "transA", 0, &trans_a)) != QC_OK ||
                    (st = qc_attr_int(&n->attrs, base, "transB", 0, &trans_b)) != QC_OK ||
                    (st = qc_attr_float(&n->attrs, base, "alpha", 1.0f, &alpha)) != QC_OK ||
                    (st = qc_attr_float(&n->attrs, base, "beta", 1.0f, &beta)) != QC_OK))
        return st;
    if (trans_a || alpha != 1.0f || beta != 1.0f || w->wshape.ndim != 2) {
        qc_log_error("%s: node '%s': the int export handles Gemm with transA=0, alpha=beta=1 "
                     "and a 2-D weight", x->g->path, base);
        return QC_ERR_UNSUPPORTED;
    }
    m = trans_b ? w->wshape.dims[0] : w->wshape.dims[1];
    kdim = trans_b ? w->wshape.dims[1] : w->wshape.dims[0];
    if (w->wc != 1 && !((trans_b && w->dq_axis == 0) || (!trans_b && w->dq_axis == 1))) {
        qc_log_error("%s: node '%s': per-axis weight scales must be per output feature",
                     x->g->path, base);
        return QC_ERR_UNSUPPORTED;
    }
    channels(x, out, &rank);
    if ((st = layer_record(x, node, is_gemm ? 2 : 99, m, rank, &r)) != QC_OK)
        goto fail;
    if (xr->kind == K_U8 || xr->kind == K_NONE) {
        /* int8 weights (ONNX Runtime's fastest kernel) where no pairwise int16
         * sum can saturate, else uint8 with zero point 128 (int.h) */
        int q, hi, zp, n_in = 2;
        int32_t lo_j, hi_j;
        double s;
        if ((st = layer_input(x, node, xin, &q, &s, &hi)) != QC_OK)
            goto fail;
        stored_levels(w, &lo_j, &hi_j);
        if ((st = store_weight(x, base, w, trans_b != 0, QC_DTYPE_I8,
                               pairs_fit_int16(hi, lo_j, hi_j) ? W_SIGNED : W_OFFSET, &wv, &zp,
                               &mul, &add, &jmax)) != QC_OK)
            goto fail;
        if (zp != 0) {
            if ((st = zero_points(x, base, zp, &in[2], &in[3])) != QC_OK)
                goto fail;
            n_in = 4;
        }
        in[0] = q;
        in[1] = wv;
        if ((st = emit(x, "MatMulInteger", base, in, n_in, QC_DTYPE_I32, -1, &acc, NULL)) != QC_OK)
            goto fail;
        a = dvec(m, 0.0);
        if (!a) {
            st = QC_ERR_NOMEM;
            goto fail;
        }
        for (int64_t j = 0; j < m; j++)
            a[j] = s * wscale(w, j) * mul;
        if ((st = add_term(x, node, &r, acc, QC_DTYPE_I32, false, (double)kdim * hi * jmax, a)) !=
            QC_OK)
            goto fail;
        if (add) {
            /* Σ k·x = 2·Σ j'·x + Σ x: the row sum [N, 1] */
            int xi, sum, rnode, axv;
            int64_t ax = 1;
            if ((st = cast(x, base, q, QC_DTYPE_I32, -1, &xi)) != QC_OK ||
                (st = axes_const(x, base, &ax, 1, &axv)) != QC_OK)
                goto fail;
            in[0] = xi;
            in[1] = axv;
            if ((st = emit(x, "ReduceSum", base, in, 2, QC_DTYPE_I32, -1, &sum, &rnode)) != QC_OK)
                goto fail;
            if ((st = odd_combine(x, base, &r, sum, (double)kdim * hi)) != QC_OK)
                goto fail;
        }
    } else {
        /* integer (int32) input terms, e.g. a global-average-pool window sum:
         * y = Σ_i a_i·(q_i·W^T) + W·b + bias, exact in int32/int64 MatMul */
        struct ival *p;
        bool wide = false;
        if ((st = need_pend(x, node, xin, &p)) != QC_OK || (st = no_clip(x, node, p, xin)) != QC_OK)
            goto fail;
        for (int i = 0; i < p->nt; i++)
            if (!p->t[i].bcast && !uniform(p->t[i].a, p->c)) {
                qc_log_error("%s: node '%s': its integer input has per-channel scales (a "
                             "BatchNorm without an activation quantizer before it); add QAct "
                             "before this layer", x->g->path, base);
                st = QC_ERR_UNSUPPORTED;
                goto fail;
            }
        for (int64_t j = 0; j < m; j++)
            for (int64_t k = 0; k < kdim; k++) {
                int64_t at = trans_b ? j * kdim + k : k * m + j;
                r.b[j] += (double)w->k[at] * wscale(w, j) * p->b[k];
            }
        for (int i = 0; i < p->nt; i++)
            wide = wide || p->t[i].bound * (double)kdim * kmax_levels(w) >= TWO31 / 2;
        for (int i = 0; i < p->nt; i++) {
            struct term *t = &p->t[i];
            a = dvec(m, 0.0);
            if (!a) {
                st = QC_ERR_NOMEM;
                goto fail;
            }
            if (t->bcast) {
                /* the same value in every input channel: q·Σ_k W[j,k]·a[k] */
                for (int64_t j = 0; j < m; j++)
                    for (int64_t k = 0; k < kdim; k++) {
                        int64_t at = trans_b ? j * kdim + k : k * m + j;
                        a[j] += (double)w->k[at] * wscale(w, j) * t->a[k];
                    }
                if ((st = add_term(x, node, &r, t->v, t->dt, true, t->bound, a)) != QC_OK)
                    goto fail;
                continue;
            }
            {
                enum qc_dtype dt = wide ? QC_DTYPE_I64 : QC_DTYPE_I32;
                int qv = t->v, ww;
                if ((st = store_levels(x, base, w, trans_b != 0, dt, &ww)) != QC_OK)
                    goto fail;
                if (t->dt != dt && (st = cast(x, base, qv, dt, -1, &qv)) != QC_OK)
                    goto fail;
                in[0] = qv;
                in[1] = ww;
                if ((st = emit(x, "MatMul", base, in, 2, dt, -1, &acc, NULL)) != QC_OK)
                    goto fail;
                for (int64_t j = 0; j < m; j++)
                    a[j] = t->a[0] * wscale(w, j);
                if ((st = add_term(x, node, &r, acc, dt, false,
                                   t->bound * (double)kdim * kmax_levels(w), a)) != QC_OK)
                    goto fail;
            }
        }
    }
    move(&x->iv[out], &r);
    x->stats->n_layers++;
    return note(x, base, "%s s_w=%.6g", xr->kind == K_PEND ? "MatMul int" : "MatMulInteger",
                wscale(w, 0));
fail:
    ival_clear(&r);
    return st;
}

/* ---- the other ops ------------------------------------------------------------------- */

/* Input i of n when it is a constant: an initializer, or a value the plan folded
 * (Constant nodes, shape arithmetic). */
static const struct qc_tensor *const_input(struct ix *x, const struct qc_node *n, int i)
{
    int v;
    if (i >= n->n_in || n->in[i] < 0)
        return NULL;
    v = n->in[i];
    if (x->g->values[v].init)
        return x->g->values[v].init;
    return qc_plan_value_is_const(x->plan, v) ? qc_plan_value(x->plan, v) : NULL;
}

static enum qc_status do_batchnorm(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *gm = const_input(x, n, 1), *bt = const_input(x, n, 2),
                           *mu = const_input(x, n, 3), *var = const_input(x, n, 4);
    struct ival *p, r;
    float eps;
    enum qc_status st;

    if ((st = need_pend(x, node, n->in[0], &p)) != QC_OK ||
        (st = no_clip(x, node, p, n->in[0])) != QC_OK ||
        (st = qc_attr_float(&n->attrs, label(x, node), "epsilon", 1e-5f, &eps)) != QC_OK)
        return st;
    if (!gm || !bt || !mu || !var || qc_tensor_nelem(gm) != p->c) {
        qc_log_error("%s: node '%s': BatchNormalization needs constant parameters of %lld "
                     "channels", x->g->path, label(x, node), (long long)p->c);
        return QC_ERR_UNSUPPORTED;
    }
    if ((st = pend_copy(p, &r)) != QC_OK)
        return st;
    /* y = f·(x − μ) + β, f = γ / sqrt(σ² + ε): every term's scale times f, and
     * b ← f·(b − μ) + β (a constant channel, f = 0, keeps its value β) */
    for (int64_t c = 0; c < r.c; c++) {
        double f = qc_tensor_get_f64(gm, c) / sqrt(qc_tensor_get_f64(var, c) + (double)eps);
        for (int i = 0; i < r.nt; i++)
            r.t[i].a[c] *= f;
        r.b[c] = f * (r.b[c] - qc_tensor_get_f64(mu, c)) + qc_tensor_get_f64(bt, c);
    }
    move(&x->iv[n->out[0]], &r);
    return QC_OK;
}

/* Relu / Clip in real units: recorded on the PEND record. */
static enum qc_status do_clip(struct ix *x, int node, double lo, double hi)
{
    const struct qc_node *n = &x->g->nodes[node];
    struct ival *p, r;
    enum qc_status st;
    if (x->iv[n->in[0]].kind == K_U8 && lo <= 0.0 &&
        hi >= x->iv[n->in[0]].s * x->iv[n->in[0]].hi) {
        /* a no-op on these levels: share the uint8 tensor */
        struct ival *s = &x->iv[n->in[0]], *d = &x->iv[n->out[0]];
        ival_clear(d);
        d->kind = K_U8;
        d->v = s->v;
        d->s = s->s;
        d->hi = s->hi;
        return QC_OK;
    }
    if ((st = need_pend(x, node, n->in[0], &p)) != QC_OK || (st = pend_copy(p, &r)) != QC_OK)
        return st;
    r.lo = fmax(r.lo, lo);
    r.hi_r = fmin(r.hi_r, hi);
    move(&x->iv[n->out[0]], &r);
    return QC_OK;
}

static enum qc_status clip_bounds(struct ix *x, int node, double *lo, double *hi)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *tl = const_input(x, n, 1), *th = const_input(x, n, 2);
    *lo = -INFINITY;
    *hi = INFINITY;
    if ((n->n_in > 1 && n->in[1] >= 0 && !tl) || (n->n_in > 2 && n->in[2] >= 0 && !th)) {
        qc_log_error("%s: node '%s': Clip bounds must be constants", x->g->path, label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    if (tl)
        *lo = qc_tensor_get_f64(tl, 0);
    if (th)
        *hi = qc_tensor_get_f64(th, 0);
    if (x->g->opset < 11) {
        float f;
        if (qc_attr_float(&n->attrs, label(x, node), "min", -INFINITY, &f) == QC_OK)
            *lo = f;
        if (qc_attr_float(&n->attrs, label(x, node), "max", INFINITY, &f) == QC_OK)
            *hi = f;
    }
    return QC_OK;
}

static enum qc_status do_add(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    struct ival r, *p = NULL;
    int first = -1;
    enum qc_status st;

    memset(&r, 0, sizeof(r));
    for (int i = 0; i < n->n_in && first < 0; i++)
        if (x->iv[n->in[i]].kind == K_U8 || x->iv[n->in[i]].kind == K_PEND)
            first = i;
    if ((st = need_pend(x, node, n->in[first], &p)) != QC_OK ||
        (st = no_clip(x, node, p, n->in[first])) != QC_OK || (st = pend_copy(p, &r)) != QC_OK)
        return st;
    for (int i = 0; i < n->n_in; i++) {
        const struct qc_tensor *k;
        if (i == first)
            continue;
        k = x->g->values[n->in[i]].init;
        if (k && k->dtype == QC_DTYPE_F32 && (qc_tensor_nelem(k) == 1 ||
                                             qc_tensor_nelem(k) == r.c)) {
            for (int64_t c = 0; c < r.c; c++)
                r.b[c] += qc_tensor_get_f64(k, qc_tensor_nelem(k) == 1 ? 0 : c);
            continue;
        }
        if ((st = need_pend(x, node, n->in[i], &p)) != QC_OK ||
            (st = no_clip(x, node, p, n->in[i])) != QC_OK)
            goto fail;
        if (p->c != r.c) {
            qc_log_error("%s: node '%s': the int export adds tensors of equal channel counts",
                         x->g->path, label(x, node));
            st = QC_ERR_UNSUPPORTED;
            goto fail;
        }
        for (int64_t c = 0; c < r.c; c++)
            r.b[c] += p->b[c];
        for (int t = 0; t < p->nt; t++) {
            double *a = dvec(r.c, 0.0);
            if (!a) {
                st = QC_ERR_NOMEM;
                goto fail;
            }
            memcpy(a, p->t[t].a, (size_t)r.c * sizeof(double));
            if ((st = add_term(x, node, &r, p->t[t].v, p->t[t].dt, p->t[t].bcast, p->t[t].bound,
                               a)) != QC_OK)
                goto fail;
        }
    }
    move(&x->iv[n->out[0]], &r);
    return QC_OK;
fail:
    ival_clear(&r);
    return st;
}

/* QuantizeLinear (uint8, zero point 0) on an integer record: the requantization,
 * absorbing a following Clip on the levels. */
static enum qc_status do_quantize(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *sc = const_input(x, n, 1), *zp = const_input(x, n, 2);
    int v = n->in[0], out = n->out[0], qlo = 0, qhi = 255, u8, result = out;
    struct ival *r = &x->iv[v];
    double s;
    enum qc_status st;

    if (!sc || qc_tensor_nelem(sc) != 1 || (zp && (zp->dtype != QC_DTYPE_U8 ||
                                                 qc_tensor_get_i64(zp, 0) != 0)) ||
        (!zp && n->n_in > 2 && n->in[2] >= 0)) {
        qc_log_error("%s: node '%s': the int export handles per-tensor uint8 QuantizeLinear with "
                     "zero point 0", x->g->path, label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    if (!zp) {
        qc_log_error("%s: node '%s': QuantizeLinear without a uint8 zero point", x->g->path,
                     label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    s = qc_tensor_f32(sc)[0];
    /* a Clip(0, R) on the levels right after: part of the same requantization */
    if (qc_graph_value_uses(x->g, out) == 1) {
        for (int i = node + 1; i < x->n_node; i++) {
            const struct qc_node *c = &x->g->nodes[i];
            const struct qc_tensor *lo, *hi;
            if (c->n_in < 1 || c->in[0] != out)
                continue;
            lo = const_input(x, c, 1);
            hi = const_input(x, c, 2);
            if (c->kind == QC_OP_CLIP && lo && hi && lo->dtype == QC_DTYPE_U8) {
                qlo = (int)qc_tensor_get_i64(lo, 0);
                qhi = (int)qc_tensor_get_i64(hi, 0);
                x->drop[i] = true;
                result = c->out[0];
            }
            break;
        }
    }
    if (r->kind == K_NONE && x->g->values[v].is_input && !x->g->values[v].init) {
        /* the input quantizer of the graph, kept as it is */
        int in[3] = { v, n->in[1], n->in[2] };
        if ((st = emit(x, "QuantizeLinear", vname(x, v), in, 3, QC_DTYPE_U8, -1, &u8, NULL)) !=
            QC_OK)
            return st;
        if (qlo != 0 || qhi != 255) {
            int cn[3] = { u8, -1, -1 };
            if ((st = scalar_const(x, vname(x, v), "_lo", QC_DTYPE_U8, qlo, &cn[1])) != QC_OK ||
                (st = scalar_const(x, vname(x, v), "_hi", QC_DTYPE_U8, qhi, &cn[2])) != QC_OK ||
                (st = emit(x, "Clip", vname(x, v), cn, 3, QC_DTYPE_U8, -1, &u8, NULL)) != QC_OK)
                return st;
        }
    } else {
        struct ival *p;
        if ((st = need_pend(x, node, v, &p)) != QC_OK ||
            (st = requant(x, vname(x, out), p, s, qlo, qhi, &u8)) != QC_OK)
            return st;
    }
    /* the levels: Q's output (and the absorbed Clip's) */
    ival_clear(&x->iv[result]);
    x->iv[result].kind = K_U8;
    x->iv[result].v = u8;
    x->iv[result].s = s;
    x->iv[result].hi = qhi;
    return QC_OK;
}

/* DequantizeLinear of levels: the same uint8 tensor, now read as real values. */
static enum qc_status do_dequantize(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *sc = const_input(x, n, 1);
    struct ival *s = &x->iv[n->in[0]], *d = &x->iv[n->out[0]];
    if (x->g->values[n->in[0]].init)
        return dq_weight(x, node);
    if (s->kind != K_U8 || !sc || qc_tensor_nelem(sc) != 1) {
        qc_log_error("%s: node '%s': DequantizeLinear of something other than quantized levels",
                     x->g->path, label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    ival_clear(d);
    d->kind = K_U8;
    d->v = s->v;
    d->s = qc_tensor_f32(sc)[0];
    d->hi = s->hi;
    return QC_OK;
}

/* An op that works on the levels as they are (MaxPool, layout ops on uint8): a copy
 * of the node reading the uint8 tensor. */
static enum qc_status copy_on_u8(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    int in[8], out, nn, n_in = n->n_in;
    struct ival *s = &x->iv[n->in[0]], gin;
    struct ival rec;
    enum qc_status st;
    if (s->kind == K_NONE) {
        /* a reshape of the float graph input: reshape its quantized levels */
        memset(&gin, 0, sizeof(gin));
        gin.kind = K_U8;
        if ((st = layer_input(x, node, n->in[0], &gin.v, &gin.s, &gin.hi)) != QC_OK)
            return st;
        s = &gin;
    }
    if (n->n_out != 1 || n_in > 8) {
        qc_log_error("%s: node '%s': only the first output of this op has an integer form",
                     x->g->path, label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    in[0] = s->v;
    for (int i = 1; i < n_in; i++)
        in[i] = n->in[i];
    if ((st = emit(x, n->op_type, label(x, node), in, n_in, QC_DTYPE_U8, -1, &out, &nn)) !=
            QC_OK ||
        (st = copy_attrs(x, nn, node)) != QC_OK)
        return st;
    memset(&rec, 0, sizeof(rec));
    rec.kind = K_U8;
    rec.v = out;
    rec.s = s->s;
    rec.hi = s->hi;
    move(&x->iv[n->out[0]], &rec);
    return QC_OK;
}

/* Concat of levels: every input quantized with the same scale (the levels are then
 * concatenated as they are; rescaling one side would round where the fake-quant
 * graph does not). */
static enum qc_status do_concat(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    int in[16], out, cn, hi = 0;
    double s = 0.0;
    struct ival rec;
    enum qc_status st;
    if (n->n_in > 16)
        return QC_ERR_UNSUPPORTED;
    for (int i = 0; i < n->n_in; i++) {
        const struct ival *r = &x->iv[n->in[i]];
        if (r->kind != K_U8 || (i > 0 && r->s != s)) {
            qc_log_error("%s: node '%s': the int export concatenates quantized levels of one "
                         "scale; input '%s' %s", x->g->path, label(x, node),
                         vname(x, n->in[i]), r->kind != K_U8 ? "is not quantized levels"
                                                            : "has another scale");
            return QC_ERR_UNSUPPORTED;
        }
        s = r->s;
        hi = r->hi > hi ? r->hi : hi;
        in[i] = r->v;
    }
    if ((st = emit(x, "Concat", label(x, node), in, n->n_in, QC_DTYPE_U8, -1, &out, &cn)) !=
            QC_OK ||
        (st = copy_attrs(x, cn, node)) != QC_OK)
        return st;
    memset(&rec, 0, sizeof(rec));
    rec.kind = K_U8;
    rec.v = out;
    rec.s = s;
    rec.hi = hi;
    move(&x->iv[n->out[0]], &rec);
    return QC_OK;
}

/* Flatten/Reshape/Squeeze to [N, C] of a PEND record whose trailing dims are 1. */
static enum qc_status flatten_pend(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_shape *is = shape_of(x, n->in[0]), *os = shape_of(x, n->out[0]);
    struct ival *p, r;
    enum qc_status st;
    bool ok = is && os && os->ndim == 2 && is->ndim >= 2 && os->dims[1] == is->dims[1];
    for (int i = 2; ok && i < is->ndim; i++)
        ok = is->dims[i] == 1;
    if (!ok) {
        qc_log_error("%s: node '%s': reshaping integer terms with per-channel scales is only "
                     "supported from [N, C, 1, ...] to [N, C]", x->g->path, label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    if ((st = need_pend(x, node, n->in[0], &p)) != QC_OK || (st = pend_copy(p, &r)) != QC_OK)
        return st;
    for (int i = 0; i < r.nt; i++) {
        int fn;
        if ((st = emit(x, "Flatten", label(x, node), &r.t[i].v, 1, r.t[i].dt, -1, &r.t[i].v,
                       &fn)) != QC_OK ||
            (st = attr_int(x, fn, "axis", 1)) != QC_OK) {
            ival_clear(&r);
            return st;
        }
    }
    r.rank = 2;
    move(&x->iv[n->out[0]], &r);
    return QC_OK;
}

/* GlobalAveragePool / AveragePool: integer window sums, the 1/window in the scale. */
static enum qc_status do_avgpool(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_shape *is = shape_of(x, n->in[0]);
    bool global = n->kind == QC_OP_GLOBAL_AVGPOOL;
    struct ival *p, r;
    int64_t win = 1;
    enum qc_status st;

    if (!is || is->ndim < 3)
        return QC_ERR_INTERNAL;
    if (global) {
        for (int i = 2; i < is->ndim; i++)
            win *= is->dims[i];
    }
    if (!global) {
        /* AveragePool on levels: a depthwise ConvInteger with a ones kernel */
        int64_t ks[QC_MAX_DIMS], pads[2 * QC_MAX_DIMS], cip = 0, ceil = 0;
        int nk = 0, np = 0, in[2], ov, cn, acc;
        const char *ap = "NOTSET";
        struct ival *s = &x->iv[n->in[0]];
        struct qc_shape ws;
        struct qc_tensor *ones;
        char name[512];
        bool padded = false;
        double *a;
        if ((st = qc_attr_ints(&n->attrs, label(x, node), "kernel_shape", ks, QC_MAX_DIMS,
                               &nk)) != QC_OK ||
            (st = qc_attr_ints(&n->attrs, label(x, node), "pads", pads, 2 * QC_MAX_DIMS, &np)) !=
                QC_OK ||
            (st = qc_attr_int(&n->attrs, label(x, node), "count_include_pad", 0, &cip)) != QC_OK ||
            (st = qc_attr_int(&n->attrs, label(x, node), "ceil_mode", 0, &ceil)) != QC_OK ||
            (st = qc_attr_string(&n->attrs, label(x, node), "auto_pad", "NOTSET", &ap)) != QC_OK)
            return st;
        for (int i = 0; i < np; i++)
            padded = padded || pads[i] != 0;
        if (s->kind != K_U8 || ceil || strcmp(ap, "NOTSET") != 0 || (padded && !cip)) {
            qc_log_error("%s: node '%s': the int export handles AveragePool on quantized "
                         "levels without ceil_mode, auto_pad, or padding excluded from the count",
                         x->g->path, label(x, node));
            return QC_ERR_UNSUPPORTED;
        }
        ws.ndim = nk + 2;
        ws.dims[0] = is->dims[1];
        ws.dims[1] = 1;
        for (int i = 0; i < nk; i++) {
            ws.dims[2 + i] = ks[i];
            win *= ks[i];
        }
        if ((st = qc_tensor_new(QC_DTYPE_U8, &ws, &ones)) != QC_OK)
            return st;
        memset(ones->data, 1, (size_t)qc_tensor_nelem(ones));
        qc_graph_unique_name(x->g, label(x, node), "_ones", name, sizeof(name));
        if ((st = qc_graph_add_initializer(x->g, name, ones, &ov)) != QC_OK)
            return st;
        in[0] = s->v;
        in[1] = ov;
        if ((st = emit(x, "ConvInteger", label(x, node), in, 2, QC_DTYPE_I32, -1, &acc, &cn)) !=
                QC_OK ||
            (st = attr_int(x, cn, "group", is->dims[1])) != QC_OK)
            return st;
        for (int i = 0; i < x->g->nodes[node].attrs.n; i++) {
            const char *an = x->g->nodes[node].attrs.v[i].name;
            if (strcmp(an, "strides") == 0 || strcmp(an, "pads") == 0 ||
                strcmp(an, "kernel_shape") == 0 || strcmp(an, "dilations") == 0) {
                /* copy just this attribute */
                struct qc_attrs keep = x->g->nodes[node].attrs, one = { 1, &keep.v[i] };
                x->g->nodes[node].attrs = one;
                st = copy_attrs(x, cn, node);
                x->g->nodes[node].attrs = keep;
                if (st != QC_OK)
                    return st;
            }
        }
        memset(&r, 0, sizeof(r));
        if ((st = layer_record(x, node, 99, is->dims[1], is->ndim, &r)) != QC_OK)
            return st;
        a = dvec(r.c, s->s / (double)win);
        if (!a || (st = add_term(x, node, &r, acc, QC_DTYPE_I32, false,
                                 (double)win * s->hi, a)) != QC_OK) {
            ival_clear(&r);
            return a ? st : QC_ERR_NOMEM;
        }
        move(&x->iv[n->out[0]], &r);
        return QC_OK;
    }
    if ((st = need_pend(x, node, n->in[0], &p)) != QC_OK ||
        (st = no_clip(x, node, p, n->in[0])) != QC_OK || (st = pend_copy(p, &r)) != QC_OK)
        return st;
    for (int i = 0; i < r.nt; i++) {
        struct term *t = &r.t[i];
        int64_t axes[QC_MAX_DIMS];
        int in[2], rn;
        enum qc_dtype dt = t->bound * (double)win < TWO31 / 2 ? QC_DTYPE_I32 : QC_DTYPE_I64;
        for (int d = 2; d < is->ndim; d++)
            axes[d - 2] = d;
        if (t->dt != dt && (st = cast(x, label(x, node), t->v, dt, -1, &t->v)) != QC_OK)
            goto fail;
        t->dt = dt;
        if ((st = axes_const(x, label(x, node), axes, is->ndim - 2, &in[1])) != QC_OK)
            goto fail;
        in[0] = t->v;
        if ((st = emit(x, "ReduceSum", label(x, node), in, 2, dt, -1, &t->v, &rn)) != QC_OK ||
            (st = attr_int(x, rn, "keepdims", 1)) != QC_OK)
            goto fail;
        t->bound *= (double)win;
        for (int64_t c = 0; c < r.c; c++)
            t->a[c] /= (double)win;
    }
    move(&x->iv[n->out[0]], &r);
    return QC_OK;
fail:
    ival_clear(&r);
    return st;
}

/* ---- the pass ------------------------------------------------------------------------ */

static bool is_int(const struct ix *x, int v)
{
    return v >= 0 && v < x->n_val && x->iv[v].kind != K_NONE;
}

static enum qc_status do_node(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    bool any = false;
    enum qc_status st;
    double lo, hi;

    for (int i = 0; i < n->n_in; i++)
        any = any || is_int(x, n->in[i]);
    switch (n->kind) {
    case QC_OP_DEQUANTIZE_LINEAR:
        x->drop[node] = true;
        return do_dequantize(x, node);
    case QC_OP_QUANTIZE_LINEAR:
        x->drop[node] = true;
        return do_quantize(x, node);
    case QC_OP_CONV:
        x->drop[node] = true;
        return do_conv(x, node);
    case QC_OP_GEMM:
    case QC_OP_MATMUL:
        /* a layer: its weight is a (quantized) constant */
        if (!is_int(x, n->in[1]) && !x->g->values[n->in[1]].init)
            break;
        x->drop[node] = true;
        return do_gemm(x, node);
    default:
        break;
    }
    if (!any && (n->kind == QC_OP_FLATTEN || n->kind == QC_OP_RESHAPE) && n->n_in > 0 &&
        x->g->values[n->in[0]].is_input && !x->g->values[n->in[0]].init) {
        /* x.view(N, -1) of the input before the first layer (MLPs) */
        x->drop[node] = true;
        return copy_on_u8(x, node);
    }
    if (!any)
        return QC_OK;          /* a float node outside the integer part: kept */
    x->drop[node] = true;
    switch (n->kind) {
    case QC_OP_BATCHNORM:
        return do_batchnorm(x, node);
    case QC_OP_RELU:
        return do_clip(x, node, 0.0, INFINITY);
    case QC_OP_CLIP:
        if (x->iv[n->in[0]].kind == K_U8 && const_input(x, n, 1) &&
            const_input(x, n, 1)->dtype == QC_DTYPE_U8) {
            /* a Clip on levels not absorbed by its QuantizeLinear */
            struct ival *s = &x->iv[n->in[0]];
            int hi_l = (int)qc_tensor_get_i64(const_input(x, n, 2), 0);
            if ((st = copy_on_u8(x, node)) == QC_OK && hi_l < s->hi)
                x->iv[n->out[0]].hi = hi_l;
            return st;
        }
        if ((st = clip_bounds(x, node, &lo, &hi)) != QC_OK)
            return st;
        return do_clip(x, node, lo, hi);
    case QC_OP_ADD:
    case QC_OP_SUM:
        return do_add(x, node);
    case QC_OP_MAXPOOL:
    case QC_OP_GLOBAL_MAXPOOL:
        if (x->iv[n->in[0]].kind != K_U8) {
            qc_log_error("%s: node '%s': max pooling needs quantized levels at its input (put "
                         "QAct on the activation before it)", x->g->path, label(x, node));
            return QC_ERR_UNSUPPORTED;
        }
        return copy_on_u8(x, node);
    case QC_OP_GLOBAL_AVGPOOL:
    case QC_OP_AVGPOOL:
        return do_avgpool(x, node);
    case QC_OP_CONCAT:
        return do_concat(x, node);
    case QC_OP_IDENTITY:
    case QC_OP_DROPOUT: {
        struct ival *s = &x->iv[n->in[0]], r;
        if (s->kind == K_U8) {
            memset(&r, 0, sizeof(r));
            r.kind = K_U8;
            r.v = s->v;
            r.s = s->s;
            r.hi = s->hi;
        } else if ((st = pend_copy(s, &r)) != QC_OK) {
            return st;
        }
        move(&x->iv[n->out[0]], &r);
        return QC_OK;
    }
    case QC_OP_FLATTEN:
    case QC_OP_RESHAPE:
    case QC_OP_SQUEEZE:
    case QC_OP_UNSQUEEZE:
    case QC_OP_TRANSPOSE:
        if (x->iv[n->in[0]].kind == K_U8)
            return copy_on_u8(x, node);
        if (n->kind == QC_OP_TRANSPOSE) {
            qc_log_error("%s: node '%s': Transpose of integer terms is not supported",
                         x->g->path, label(x, node));
            return QC_ERR_UNSUPPORTED;
        }
        return flatten_pend(x, node);
    default:
        break;
    }
    /* a float-only op: the integer part must end here (e.g. Softmax on the logits) */
    x->drop[node] = false;
    for (int i = 0; i < n->n_in; i++)
        if (is_int(x, n->in[i]) && (st = materialize(x, n->in[i])) != QC_OK)
            return st;
    return QC_OK;
}

/* After the pass: float ops must not feed integer layers.  A kept (float) node whose
 * output reaches a removed (integer) node breaks the integer-only property. */
static enum qc_status check_float_tail(struct ix *x)
{
    for (int i = 0; i < x->n_node; i++) {
        const struct qc_node *n = &x->g->nodes[i];
        if (!x->drop[i] && (n->kind == QC_OP_CONV || n->kind == QC_OP_CONV_TRANSPOSE ||
                            n->kind == QC_OP_GEMM ||
                            (n->kind == QC_OP_MATMUL && n->n_in > 1 && n->in[1] >= 0 &&
                             x->g->values[n->in[1]].init))) {
            qc_log_error("%s: layer '%s' (%s) would stay float: the int export needs integer "
                         "weights (QWeight with QWeight.ApplyQuantization=1) and a quantized "
                         "input on every layer", x->g->path, label(x, i), n->op_type);
            return QC_ERR_UNSUPPORTED;
        }
        if (!x->drop[i])
            continue;
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j], prod = v >= 0 ? x->g->values[v].producer : -1;
            if (j > 0 && n->kind != QC_OP_ADD && n->kind != QC_OP_SUM)
                continue;   /* shape / constant operands */
            if (prod >= 0 && prod < x->n_node && !x->drop[prod] && x->iv[v].kind == K_NONE &&
                !x->g->values[v].init) {
                qc_log_error("%s: node '%s' (%s) computes in float inside the integer graph "
                             "(it feeds '%s'); the int export has no integer form for it",
                             x->g->path, label(x, prod), x->g->nodes[prod].op_type,
                             label(x, i));
                return QC_ERR_UNSUPPORTED;
            }
        }
    }
    return QC_OK;
}

static enum qc_status set_opset(struct qc_graph *g, int64_t want)
{
    if (g->opset >= want)
        return QC_OK;
    g->opset = want;
    for (int i = 0; i < g->n_opsets; i++)
        if (g->opsets[i].domain[0] == '\0' || strcmp(g->opsets[i].domain, "ai.onnx") == 0)
            g->opsets[i].version = want;
    /* opset 21 needs IR 10, opset 14 IR 7 */
    if (want >= 21 && g->ir_version < 10)
        g->ir_version = 10;
    if (want >= 14 && g->ir_version < 7)
        g->ir_version = 7;
    return QC_OK;
}

enum qc_status qc_export_int(struct qc_graph *g, const struct qc_int_opts *opts,
                             struct qc_int_stats *stats, struct qc_int_notes *notes)
{
    struct ix x;
    struct qc_backend *be = NULL;
    enum qc_status st;

    memset(stats, 0, sizeof(*stats));
    memset(&x, 0, sizeof(x));
    x.g = g;
    x.o = opts;
    x.stats = stats;
    x.notes = notes;
    x.n_val = g->n_values;
    x.n_node = g->n_nodes;
    if ((st = qc_graph_finalize(g)) != QC_OK)
        return st;
    if ((st = qc_backend_new("cpu", 1, &be)) != QC_OK ||
        (st = qc_plan_new(g, be, 1, &x.plan)) != QC_OK)
        goto out;
    x.iv = qc_calloc((size_t)x.n_val, sizeof(*x.iv));
    x.drop = qc_calloc((size_t)x.n_node + 1, sizeof(bool));
    x.qin = qc_malloc((size_t)x.n_val * sizeof(int));
    if (!x.iv || !x.drop || !x.qin) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < x.n_val; i++)
        x.qin[i] = -1;
    for (int i = 0; i < x.n_node && st == QC_OK; i++)
        if (!x.drop[i])
            st = do_node(&x, i);
    for (int i = 0; i < g->n_outputs && st == QC_OK; i++) {
        int v = g->outputs[i];
        if (!is_int(&x, v))
            continue;
        st = opts->int_output ? int_output(&x, v) : materialize(&x, v);
    }
    if (st == QC_OK)
        st = check_float_tail(&x);
    if (st != QC_OK)
        goto out;
    for (int i = x.n_node - 1; i >= 0; i--)
        if (x.drop[i])
            qc_graph_remove_node(g, i);
    /* nodes left without readers (Constant bounds of a folded Clip ...), last
     * first so that whole dead chains go */
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        bool used = false;
        for (int j = 0; j < g->nodes[i].n_out && !used; j++)
            used = qc_graph_value_uses(g, g->nodes[i].out[j]) > 0;
        if (!used)
            qc_graph_remove_node(g, i);
    }
    /* initializers nobody reads any more (float weights, BN parameters, old scales) */
    for (int v = 0; v < g->n_values; v++) {
        if (!g->values[v].init || qc_graph_value_uses(g, v) > 0)
            continue;
        qc_tensor_free(g->values[v].init);
        g->values[v].init = NULL;
        for (int i = 0; i < g->n_inputs; i++) {
            if (g->inputs[i] != v)
                continue;
            memmove(g->inputs + i, g->inputs + i + 1, (size_t)(g->n_inputs - i - 1) * sizeof(int));
            g->n_inputs--;
            g->values[v].is_input = false;
            break;
        }
    }
    set_opset(g, x.int4_used ? 21 : 14);
    st = qc_graph_finalize(g);
out:
    if (x.iv)
        for (int i = 0; i < x.n_val; i++)
            ival_clear(&x.iv[i]);
    qc_free(x.iv);
    qc_free(x.drop);
    qc_free(x.qin);
    qc_plan_free(x.plan);
    qc_backend_free(be);
    return st;
}
