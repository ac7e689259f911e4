/*
 * int_pool.c - the int export's pooling: AveragePool of levels (any zero point) as a
 * depthwise ConvInteger with a ones kernel and a per-position count, GlobalAveragePool
 * and a spatial ReduceMean as ReduceSum of the integer terms.
 */
#include <config.h>

#include "int_impl.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "ops/op.h"

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* An INTS attribute `name` = v[0..n) on node `node`. */
static enum qc_status attr_ints(struct ix *x, int node, const char *name, const int64_t *v, int n)
{
    struct qc_attr a;
    enum qc_status st;
    memset(&a, 0, sizeof(a));
    a.type = QC_ATTR_INTS;
    a.n = n;
    a.name = qc_strdup(name);
    a.ints = qc_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!a.name || !a.ints) {
        qc_attr_clear(&a);
        return QC_ERR_NOMEM;
    }
    memcpy(a.ints, v, (size_t)n * sizeof(int64_t));
    if ((st = qc_attrs_add(&x->g->nodes[node].attrs, &a)) != QC_OK)
        qc_attr_clear(&a);
    return st;
}

/* The geometry of an AveragePool (rank-2 + nk input, output dims from the plan): its
 * attributes, the end pads that give ConvInteger (which has no ceil_mode) the output
 * size, and for each spatial axis d and output index o the number of window taps
 * inside the input, cnt[d][o] (the count count_include_pad=0 divides by). */
struct pool_geom {
    int nk;
    int64_t ks[QC_MAX_DIMS], st[QC_MAX_DIMS], dil[QC_MAX_DIMS], pads[2 * QC_MAX_DIMS];
    int64_t cip, ceil;
    bool beyond; /* a window reaches past the end padding (ceil_mode) */
};

static enum qc_status pool_geom(struct ix *x, int node, const struct qc_shape *is,
                                const struct qc_shape *os, struct pool_geom *g)
{
    const struct qc_node *n = &x->g->nodes[node];
    const char *ap = "NOTSET", *lbl = qc_int_label(x, node);
    int ns = 0, nd = 0, np = 0;
    enum qc_status st;
    memset(g, 0, sizeof(*g));
    if ((st = qc_attr_ints(&n->attrs, lbl, "kernel_shape", g->ks, QC_MAX_DIMS, &g->nk)) != QC_OK ||
        (st = qc_attr_ints(&n->attrs, lbl, "strides", g->st, QC_MAX_DIMS, &ns)) != QC_OK ||
        (st = qc_attr_ints(&n->attrs, lbl, "dilations", g->dil, QC_MAX_DIMS, &nd)) != QC_OK ||
        (st = qc_attr_ints(&n->attrs, lbl, "pads", g->pads, 2 * QC_MAX_DIMS, &np)) != QC_OK ||
        (st = qc_attr_int(&n->attrs, lbl, "count_include_pad", 0, &g->cip)) != QC_OK ||
        (st = qc_attr_int(&n->attrs, lbl, "ceil_mode", 0, &g->ceil)) != QC_OK ||
        (st = qc_attr_string(&n->attrs, lbl, "auto_pad", "NOTSET", &ap)) != QC_OK)
        return st;
    if (strcmp(ap, "NOTSET") != 0 || g->nk != is->ndim - 2 || os->ndim != is->ndim ||
        (ns && ns != g->nk) || (nd && nd != g->nk) || (np && np != 2 * g->nk)) {
        qc_log_error("%s: node '%s': the int export handles AveragePool with explicit pads "
                     "(no auto_pad) and one kernel size, stride and dilation per axis",
                     x->g->path, lbl);
        return QC_ERR_UNSUPPORTED;
    }
    for (int d = 0; d < g->nk; d++) {
        int64_t in = is->dims[2 + d], need;
        g->st[d] = ns ? g->st[d] : 1;
        g->dil[d] = nd ? g->dil[d] : 1;
        if (!np)
            g->pads[d] = g->pads[d + g->nk] = 0;
        /* the padded extent the last window needs (ceil_mode: past the end pad) */
        need = (os->dims[2 + d] - 1) * g->st[d] + (g->ks[d] - 1) * g->dil[d] + 1 -
               (in + g->pads[d] + g->pads[d + g->nk]);
        if (need > 0) {
            g->pads[d + g->nk] += need;
            g->beyond = true;
        }
    }
    return QC_OK;
}

/* cnt[o] along axis d: the taps of window o inside the input (0 <= position < in). */
static int64_t pool_count(const struct pool_geom *g, int d, int64_t in, int64_t o)
{
    int64_t c = 0;
    for (int64_t t = 0; t < g->ks[d]; t++) {
        int64_t p = o * g->st[d] - g->pads[d] + t * g->dil[d];
        c += p >= 0 && p < in;
    }
    return c;
}

/* AveragePool on levels (real = s·(q − zp)): a depthwise ConvInteger with a ones
 * kernel and x_zero_point zp gives each window's Σ (q − zp); a padded position holds
 * the zero point (real 0) in ONNX Runtime's ConvInteger and in src/ops/intops.c, as
 * count_include_pad=1 counts it.  The divisor is the window size with
 * count_include_pad=1, else the number of input positions in each window (also past
 * the end padding that ceil_mode adds), a per-position integer: the window sum is
 * multiplied by L / cnt(p) (an int32 constant [1, 1, out...]), L the least common
 * multiple of the counts, and the term's scale is s / L.  ceil_mode with
 * count_include_pad=1 where a window reaches past the end padding is refused (ONNX
 * Runtime's divisor there is neither the window nor the count). */
static enum qc_status avgpool_window(struct ix *x, int node, const struct qc_shape *is)
{
    const struct qc_shape *os = qc_int_shape_of(x, x->g->nodes[node].out[0]);
    const struct ival *s = &x->iv[x->g->nodes[node].in[0]];
    int out = x->g->nodes[node].out[0], in[3], ov, cn, acc;
    int64_t win = 1, lcm = 1, nout = 1;
    struct pool_geom g;
    struct qc_shape ws, cs;
    struct qc_tensor *ones;
    struct ival r;
    char name[512], base[512];
    bool exclude;
    double *a;
    enum qc_status st;

    snprintf(base, sizeof(base), "%s", qc_int_label(x, node));
    if (s->kind != K_U8) {
        qc_log_error("%s: node '%s': the int export averages quantized levels (put QAct on the "
                     "activation before this AveragePool)",
                     x->g->path, base);
        return QC_ERR_UNSUPPORTED;
    }
    if (!os)
        return QC_ERR_INTERNAL;
    if ((st = pool_geom(x, node, is, os, &g)) != QC_OK)
        return st;
    if (g.cip && g.beyond) {
        qc_log_error("%s: node '%s': the int export handles AveragePool with ceil_mode=1 and "
                     "count_include_pad=1 only where no window reaches past the end padding",
                     x->g->path, base);
        return QC_ERR_UNSUPPORTED;
    }
    cs.ndim = is->ndim;
    cs.dims[0] = cs.dims[1] = 1;
    for (int d = 0; d < g.nk; d++) {
        win *= g.ks[d];
        cs.dims[2 + d] = os->dims[2 + d];
        nout *= os->dims[2 + d];
    }
    exclude = false;
    for (int d = 0; d < g.nk && !g.cip; d++)
        for (int64_t o = 0; o < os->dims[2 + d]; o++) {
            int64_t c = pool_count(&g, d, is->dims[2 + d], o);
            exclude = exclude || c != g.ks[d];
            if (c == 0) {
                qc_log_error("%s: node '%s': an AveragePool window holds no input value",
                             x->g->path, base);
                return QC_ERR_UNSUPPORTED;
            }
        }
    /* the window sums: Σ (q − zp) */
    ws.ndim = g.nk + 2;
    ws.dims[0] = is->dims[1];
    ws.dims[1] = 1;
    for (int d = 0; d < g.nk; d++)
        ws.dims[2 + d] = g.ks[d];
    if ((st = qc_tensor_new(QC_DTYPE_U8, &ws, &ones)) != QC_OK)
        return st;
    memset(ones->data, 1, (size_t)qc_tensor_nelem(ones));
    qc_graph_unique_name(x->g, base, "_ones", name, sizeof(name));
    if ((st = qc_graph_add_initializer(x->g, name, ones, &ov)) != QC_OK)
        return st;
    in[0] = s->v;
    in[1] = ov;
    if (s->zp &&
        (st = qc_int_scalar_const(x, base, "_x_zero_point", QC_DTYPE_U8, s->zp, &in[2])) != QC_OK)
        return st;
    if ((st = qc_int_emit(x, "ConvInteger", base, in, s->zp ? 3 : 2, QC_DTYPE_I32, -1, &acc,
                          &cn)) != QC_OK ||
        (st = qc_int_attr_int(x, cn, "group", is->dims[1])) != QC_OK ||
        (st = attr_ints(x, cn, "kernel_shape", g.ks, g.nk)) != QC_OK ||
        (st = attr_ints(x, cn, "strides", g.st, g.nk)) != QC_OK ||
        (st = attr_ints(x, cn, "dilations", g.dil, g.nk)) != QC_OK ||
        (st = attr_ints(x, cn, "pads", g.pads, 2 * g.nk)) != QC_OK)
        return st;
    if (exclude) {
        /* count_include_pad=0: times L / cnt(p), cnt(p) = Π_d cnt_d(o_d) */
        struct qc_tensor *f;
        int32_t *fv;
        int64_t *cnt = qc_calloc((size_t)(nout > 0 ? nout : 1), sizeof(int64_t));
        if (!cnt)
            return QC_ERR_NOMEM;
        for (int64_t i = 0; i < nout; i++) {
            int64_t rem = i, c = 1;
            for (int d = g.nk - 1; d >= 0; d--) {
                c *= pool_count(&g, d, is->dims[2 + d], rem % os->dims[2 + d]);
                rem /= os->dims[2 + d];
            }
            cnt[i] = c;
            if (lcm < (int64_t)1 << 31) /* else refused below */
                lcm = lcm / gcd64(lcm, c) * c;
        }
        if ((double)lcm * (double)qc_int_u8_absmax(s) >= TWO31 / 2) {
            qc_free(cnt);
            qc_log_error("%s: node '%s': the common multiple %lld of the AveragePool's window "
                         "counts is too large for int32 window sums",
                         x->g->path, base, (long long)lcm);
            return QC_ERR_UNSUPPORTED;
        }
        if ((st = qc_tensor_new(QC_DTYPE_I32, &cs, &f)) != QC_OK) {
            qc_free(cnt);
            return st;
        }
        fv = (int32_t *)f->data;
        for (int64_t i = 0; i < nout; i++)
            fv[i] = (int32_t)(lcm / cnt[i]);
        qc_free(cnt);
        qc_graph_unique_name(x->g, base, "_per_count", name, sizeof(name));
        if ((st = qc_graph_add_initializer(x->g, name, f, &in[1])) != QC_OK)
            return st;
        in[0] = acc;
        if ((st = qc_int_emit(x, "Mul", base, in, 2, QC_DTYPE_I32, -1, &acc, NULL)) != QC_OK)
            return st;
    } else {
        lcm = win;
    }
    memset(&r, 0, sizeof(r));
    if ((st = qc_int_layer_record(x, node, 99, is->dims[1], is->ndim, &r)) != QC_OK)
        return st;
    a = qc_int_dvec(r.c, s->s / (double)lcm);
    if (!a || (st = qc_int_add_term(x, node, &r, acc, QC_DTYPE_I32, false,
                                    (double)lcm * qc_int_u8_absmax(s), a)) != QC_OK) {
        qc_int_ival_clear(&r);
        return a ? st : QC_ERR_NOMEM;
    }
    qc_int_move(&x->iv[out], &r);
    return QC_OK;
}

/* Whether ReduceMean node n averages exactly the spatial axes 2.. of a rank-r input
 * (x.mean([2, 3]) of torchvision's heads); *keep: its keepdims.  int.c takes any other
 * ReduceMean as a float op. */
bool qc_int_spatial_mean(struct ix *x, int node, int r, int64_t *keep)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_tensor *t = qc_int_const_input(x, n, 1);
    int64_t axes[QC_MAX_DIMS];
    int na = 0;
    bool seen[QC_MAX_DIMS] = { false };
    if (qc_attr_int(&n->attrs, qc_int_label(x, node), "keepdims", 1, keep) != QC_OK)
        return false;
    if (t) {
        na = (int)qc_tensor_nelem(t);
        for (int i = 0; i < na && i < QC_MAX_DIMS; i++)
            axes[i] = qc_tensor_get_i64(t, i);
    } else if (qc_attr_ints(&n->attrs, qc_int_label(x, node), "axes", axes, QC_MAX_DIMS, &na) !=
               QC_OK) {
        return false;
    }
    if (na != r - 2)
        return false;
    for (int i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
        if (a < 2 || a >= r || seen[a])
            return false;
        seen[a] = true;
    }
    return true;
}

/* GlobalAveragePool / AveragePool / ReduceMean over the spatial axes: integer window
 * sums, the 1/window in the scale. */
enum qc_status qc_int_do_avgpool(struct ix *x, int node)
{
    const struct qc_node *n = &x->g->nodes[node];
    const struct qc_shape *is = qc_int_shape_of(x, n->in[0]);
    int out = n->out[0]; /* n is stale after the first emit */
    struct ival *p, r;
    int64_t win = 1, keep = 1;
    enum qc_status st;

    if (!is || is->ndim < 3)
        return QC_ERR_INTERNAL;
    if (n->kind == QC_OP_AVGPOOL)
        return avgpool_window(x, node, is);
    if (n->kind == QC_OP_REDUCE_MEAN && !qc_int_spatial_mean(x, node, is->ndim, &keep)) {
        qc_log_error("%s: node '%s': the int export averages integer values over the spatial "
                     "axes 2.. only (constant axes)",
                     x->g->path, qc_int_label(x, node));
        return QC_ERR_UNSUPPORTED;
    }
    for (int i = 2; i < is->ndim; i++)
        win *= is->dims[i];
    if ((st = qc_int_need_pend(x, node, n->in[0], &p)) != QC_OK ||
        (st = qc_int_no_clip(x, node, p, n->in[0])) != QC_OK ||
        (st = qc_int_pend_copy(p, &r)) != QC_OK)
        return st;
    for (int i = 0; i < r.nt; i++) {
        struct term *t = &r.t[i];
        int64_t axes[QC_MAX_DIMS];
        int in[2], rn;
        enum qc_dtype dt = t->bound * (double)win < TWO31 / 2 ? QC_DTYPE_I32 : QC_DTYPE_I64;
        for (int d = 2; d < is->ndim; d++)
            axes[d - 2] = d;
        if (t->dt != dt &&
            (st = qc_int_cast(x, qc_int_label(x, node), t->v, dt, -1, &t->v)) != QC_OK)
            goto fail;
        t->dt = dt;
        if ((st = qc_int_axes_const(x, qc_int_label(x, node), axes, is->ndim - 2, &in[1])) != QC_OK)
            goto fail;
        in[0] = t->v;
        if ((st = qc_int_emit(x, "ReduceSum", qc_int_label(x, node), in, 2, dt, -1, &t->v, &rn)) !=
                QC_OK ||
            (st = qc_int_attr_int(x, rn, "keepdims", keep)) != QC_OK)
            goto fail;
        t->bound *= (double)win;
        for (int64_t c = 0; c < r.c; c++)
            t->a[c] /= (double)win;
    }
    r.rank = keep ? is->ndim : 2;
    qc_int_move(&x->iv[out], &r);
    return QC_OK;
fail:
    qc_int_ival_clear(&r);
    return st;
}
