/*
 * int_records.c - the per-value records of the integer export (int.c):
 * clearing, moving and copying them, the PEND view of a U8 record, and the
 * checks that a record can take part in integer arithmetic.
 */
#include <config.h>

#include "int_impl.h"

#include <math.h>
#include <string.h>

#include "util/log.h"

/* ---- records ------------------------------------------------------------------------- */

void qc_int_ival_clear(struct ival *r)
{
    if (r->view) {
        qc_int_ival_clear(r->view);
        qc_free(r->view);
    }
    for (int i = 0; i < r->nt; i++)
        qc_free(r->t[i].a);
    qc_free(r->b);
    qc_free(r->k);
    qc_free(r->ws);
    memset(r, 0, sizeof(*r));
}

/* Channel count along axis 1 of original value v (1 for rank < 2). */
int64_t qc_int_channels(struct ix *x, int v, int *rank)
{
    const struct qc_shape *s = qc_int_shape_of(x, v);
    *rank = s ? s->ndim : 0;
    return s && s->ndim >= 2 ? s->dims[1] : 1;
}

/* The largest |stored − zp| of a U8 record's levels (stored levels lie in [0, hi]). */
int qc_int_u8_absmax(const struct ival *r)
{
    return r->hi - r->zp > r->zp ? r->hi - r->zp : r->zp;
}

/* A U8 record as a one-term PEND record (in place): real = s·q − s·zp. */
enum qc_status qc_int_u8_to_pend(struct ix *x, int v, struct ival *r)
{
    int rank;
    int64_t c = qc_int_channels(x, v, &rank);
    struct term t = { r->v, QC_DTYPE_U8, false, qc_int_dvec(c, r->s), (double)r->hi };
    double *b = qc_int_dvec(c, -(double)r->zp * r->s);
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
void qc_int_move(struct ival *dst, struct ival *src)
{
    if (dst == src)
        return;
    qc_int_ival_clear(dst);
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

/* A deep copy of a PEND record. */
enum qc_status qc_int_pend_copy(const struct ival *s, struct ival *d)
{
    memset(d, 0, sizeof(*d));
    *d = *s;
    d->k = NULL;
    d->ws = NULL;
    d->b = qc_int_dvec(s->c, 0.0);
    if (!d->b)
        return QC_ERR_NOMEM;
    memcpy(d->b, s->b, (size_t)s->c * sizeof(double));
    for (int i = 0; i < s->nt; i++) {
        d->t[i].a = qc_int_dvec(s->c, 0.0);
        if (!d->t[i].a) {
            d->nt = i;
            qc_int_ival_clear(d);
            return QC_ERR_NOMEM;
        }
        memcpy(d->t[i].a, s->t[i].a, (size_t)s->c * sizeof(double));
    }
    return QC_OK;
}

/* The PEND form of original value v (for a U8 record: a view built once). */
enum qc_status qc_int_need_pend(struct ix *x, int node, int v, struct ival **out)
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
            w->zp = r->zp;
            if ((st = qc_int_u8_to_pend(x, v, w)) != QC_OK) {
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
                     "(quantize the activations that reach it)",
                     x->g->path, qc_int_label(x, node), qc_int_vname(x, v));
        return QC_ERR_UNSUPPORTED;
    }
    *out = r;
    return QC_OK;
}

bool qc_int_has_clip(const struct ival *r)
{
    return r->lo != -INFINITY || r->hi_r != INFINITY;
}

enum qc_status qc_int_no_clip(struct ix *x, int node, const struct ival *r, int v)
{
    if (!qc_int_has_clip(r))
        return QC_OK;
    qc_log_error("%s: node '%s': '%s' goes through a ReLU/Clip that no activation quantizer "
                 "follows; the int export needs QAct on that activation",
                 x->g->path, qc_int_label(x, node), qc_int_vname(x, v));
    return QC_ERR_UNSUPPORTED;
}
