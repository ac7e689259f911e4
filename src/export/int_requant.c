/*
 * int_requant.c - turning PEND records into tensors: the requantization chain
 * to uint8 (QuantizeLinear on a PEND record), the float dequantization for
 * float consumers, and the integer or float form of a graph output.
 */
#include <config.h>

#include "int_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* ---- requantization and dequantization ----------------------------------------------- */

/* Emits the requantization of PEND record r to uint8 with scale s_out, zero point zp
 * (stored = rne(real/s_out) + zp: 128 for signed levels) and stored levels [qlo, qhi]
 * (the record's clip included); *out receives the uint8 value. */
enum qc_status qc_int_requant(struct ix *x, const char *base, const struct ival *r, double s_out,
                              int zp, int qlo, int qhi, int *out)
{
    double mmax[MAX_TERMS], bmax = 0.0, ph = 0.0;
    double *m0 = NULL, *cc = NULL;
    int n = 0, acc = -1, v, in[3];
    enum qc_status st = QC_ERR_NOMEM;
    int64_t c = r->c;

    if (r->lo != -INFINITY) {
        float l = rintf((float)r->lo / (float)s_out) + (float)zp;
        if (l > qlo)
            qlo = l > qhi ? qhi : (int)l;
    }
    if (r->hi_r != INFINITY) {
        float h = rintf((float)r->hi_r / (float)s_out) + (float)zp;
        if (h < qhi)
            qhi = h < qlo ? qlo : (int)h;
    }
    for (int i = 0; i < r->nt; i++) {
        mmax[i] = 0.0;
        for (int64_t j = 0; j < c; j++)
            mmax[i] = fmax(mmax[i], fabs(r->t[i].a[j] / s_out));
    }
    for (int64_t j = 0; j < c; j++)
        bmax = fmax(bmax, fabs(r->b[j] / s_out + zp));
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
    m0 = qc_int_dvec(c, 0.0);
    cc = qc_int_dvec(c, 0.0);
    if (!m0 || !cc)
        goto out;
    for (int64_t j = 0; j < c; j++)
        cc[j] = rint((r->b[j] / s_out + zp) * ph) + ph / 2;
    for (int i = 0; i < r->nt; i++) {
        int q = r->t[i].v, prod;
        if ((st = qc_int_cast(x, base, q, QC_DTYPE_I64, -1, &q)) != QC_OK)
            goto out;
        for (int64_t j = 0; j < c; j++)
            m0[j] = rint(r->t[i].a[j] / s_out * ph);
        if ((st = qc_int_constant(x, base, "_M0", QC_DTYPE_I64, m0, c, r->rank, &in[1])) != QC_OK)
            goto out;
        in[0] = q;
        if ((st = qc_int_emit(x, "Mul", base, in, 2, QC_DTYPE_I64, -1, &prod, NULL)) != QC_OK)
            goto out;
        if (acc < 0) {
            acc = prod;
        } else {
            in[0] = acc;
            in[1] = prod;
            if ((st = qc_int_emit(x, "Add", base, in, 2, QC_DTYPE_I64, -1, &acc, NULL)) != QC_OK)
                goto out;
        }
    }
    if ((st = qc_int_constant(x, base, "_C", QC_DTYPE_I64, cc, c, r->rank, &in[1])) != QC_OK)
        goto out;
    if (acc < 0) {
        /* no term left (every scale 0): the constant alone */
        double zero = 0.0;
        if ((st = qc_int_constant(x, base, "_zero", QC_DTYPE_I64, &zero, 1, 0, &acc)) != QC_OK)
            goto out;
    }
    in[0] = acc;
    if ((st = qc_int_emit(x, "Add", base, in, 2, QC_DTYPE_I64, -1, &v, NULL)) != QC_OK ||
        (st = qc_int_scalar_const(x, base, "_2^n", QC_DTYPE_I64, ph, &in[1])) != QC_OK)
        goto out;
    in[0] = v;
    if ((st = qc_int_emit(x, "Div", base, in, 2, QC_DTYPE_I64, -1, &v, NULL)) != QC_OK ||
        (st = qc_int_scalar_const(x, base, "_lo", QC_DTYPE_I64, qlo, &in[1])) != QC_OK ||
        (st = qc_int_scalar_const(x, base, "_hi", QC_DTYPE_I64, qhi, &in[2])) != QC_OK)
        goto out;
    in[0] = v;
    if ((st = qc_int_emit(x, "Clip", base, in, 3, QC_DTYPE_I64, -1, &v, NULL)) != QC_OK ||
        (st = qc_int_cast(x, base, v, QC_DTYPE_U8, -1, out)) != QC_OK)
        goto out;
    x->stats->n_requant++;
    st = qc_int_note(x, base, "requant n=%d M0[0]=%.0f levels [%d,%d] s=%.6g", n, m0[0], qlo, qhi,
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
    bool need_bias = false, clip = qc_int_has_clip(r);
    enum qc_status st;
    for (int64_t j = 0; j < r->c; j++)
        need_bias = need_bias || r->b[j] != 0.0;
    for (int i = 0; i < r->nt; i++) {
        bool last = i == r->nt - 1 && !need_bias && !clip;
        last_needed = last ? target : -1;
        if ((st = qc_int_cast(x, base, r->t[i].v, QC_DTYPE_F32, -1, &v)) != QC_OK ||
            (st = qc_int_constant(x, base, "_scale", QC_DTYPE_F32, r->t[i].a, r->c, r->rank,
                                  &in[1])) != QC_OK)
            return st;
        in[0] = v;
        if ((st = qc_int_emit(x, "Mul", base, in, 2, QC_DTYPE_F32, acc < 0 ? last_needed : -1, &v,
                              NULL)) != QC_OK)
            return st;
        if (acc < 0) {
            acc = v;
        } else {
            in[0] = acc;
            in[1] = v;
            if ((st = qc_int_emit(x, "Add", base, in, 2, QC_DTYPE_F32, last_needed, &acc, NULL)) !=
                QC_OK)
                return st;
        }
    }
    if (need_bias) {
        if ((st = qc_int_constant(x, base, "_bias", QC_DTYPE_F32, r->b, r->c, r->rank, &in[1])) !=
            QC_OK)
            return st;
        in[0] = acc;
        if ((st = qc_int_emit(x, "Add", base, in, 2, QC_DTYPE_F32, clip ? -1 : target, &acc,
                              NULL)) != QC_OK)
            return st;
    }
    if (clip) {
        int n_in = 1;
        in[0] = acc;
        in[1] = in[2] = -1;
        if (r->lo != -INFINITY) {
            if ((st = qc_int_scalar_const(x, base, "_min", QC_DTYPE_F32, r->lo, &in[1])) != QC_OK)
                return st;
            n_in = 2;
        }
        if (r->hi_r != INFINITY) {
            if ((st = qc_int_scalar_const(x, base, "_max", QC_DTYPE_F32, r->hi_r, &in[2])) != QC_OK)
                return st;
            n_in = 3;
        }
        if ((st = qc_int_emit(x, "Clip", base, in, n_in, QC_DTYPE_F32, target, &acc, NULL)) !=
            QC_OK)
            return st;
    }
    return QC_OK;
}

/* Makes original value v a float tensor again (for a float-only consumer or a graph
 * output): the producer was removed, so the dequantization produces v itself. */
enum qc_status qc_int_materialize(struct ix *x, int v)
{
    struct ival *r = &x->iv[v];
    enum qc_status st;
    if (r->kind == K_NONE || r->materialized)
        return QC_OK;
    if (r->kind == K_WEIGHT) {
        qc_log_error("%s: weight '%s' is read by an op the int export cannot make integer",
                     x->g->path, qc_int_vname(x, v));
        return QC_ERR_UNSUPPORTED;
    }
    if (r->kind == K_U8) {
        struct ival tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.kind = K_U8;
        tmp.v = r->v;
        tmp.s = r->s;
        tmp.hi = r->hi;
        tmp.zp = r->zp;
        if ((st = qc_int_u8_to_pend(x, v, &tmp)) != QC_OK)
            return st;
        st = dequant(x, qc_int_vname(x, v), &tmp, v);
        qc_int_ival_clear(&tmp);
    } else {
        st = dequant(x, qc_int_vname(x, v), r, v);
    }
    x->g->values[v].dtype = QC_DTYPE_F32;
    r->materialized = st == QC_OK;
    return st;
}

/* --int-output: graph output v as int32 logits q + rne(b / a) with one scale a
 * for every channel (recorded as metadata "qatconv.output_scale.<name>"). */
enum qc_status qc_int_output(struct ix *x, int v)
{
    struct ival *r = &x->iv[v];
    double *bq = NULL;
    char key[600], val[64];
    int in[2], q;
    enum qc_status st;
    if (r->kind == K_U8 && (st = qc_int_u8_to_pend(x, v, r)) != QC_OK)
        return st;
    if (r->nt != 1 || qc_int_has_clip(r) || !qc_int_uniform(r->t[0].a, r->c) ||
        r->t[0].a[0] == 0.0) {
        qc_log_error("%s: --int-output: output '%s' is not one integer tensor with one scale "
                     "(per-channel scales or a residual sum reach it); use the float output",
                     x->g->path, qc_int_vname(x, v));
        return QC_ERR_UNSUPPORTED;
    }
    q = r->t[0].v;
    if (r->t[0].dt != QC_DTYPE_I32 &&
        (st = qc_int_cast(x, qc_int_vname(x, v), q, QC_DTYPE_I32, -1, &q)) != QC_OK)
        return st;
    bq = qc_int_dvec(r->c, 0.0);
    if (!bq)
        return QC_ERR_NOMEM;
    for (int64_t j = 0; j < r->c; j++)
        bq[j] = rint(r->b[j] / r->t[0].a[0]);
    st = qc_int_constant(x, qc_int_vname(x, v), "_bias", QC_DTYPE_I32, bq, r->c, r->rank, &in[1]);
    qc_free(bq);
    if (st != QC_OK)
        return st;
    in[0] = q;
    if ((st = qc_int_emit(x, "Add", qc_int_vname(x, v), in, 2, QC_DTYPE_I32, v, NULL, NULL)) !=
        QC_OK)
        return st;
    x->g->values[v].dtype = QC_DTYPE_I32;
    r->materialized = true;
    snprintf(key, sizeof(key), "qatconv.output_scale.%s", qc_int_vname(x, v));
    snprintf(val, sizeof(val), "%.9g", r->t[0].a[0]);
    return qc_graph_add_prop(x->g, key, val);
}
