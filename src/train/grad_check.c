/*
 * grad_check.c - the non-finite gradient check of the trainer (see
 * grad_check.h).
 *
 * Which parameter the message names: the backward walks from the loss to
 * the input, and once a gradient overflows every layer nearer the input
 * inherits the inf/NaN.  The non-finite parameter gradient nearest the
 * OUTPUT is therefore where the overflow first shows: between the loss and
 * that layer (all parameter gradients after it are still finite).  Naming
 * the one nearest the input would point at the end of the damage, not at
 * its start.
 */
#include <config.h>

#include "grad_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* True when the n floats of g are all finite: an exponent of all ones is
 * an inf or a NaN.  On the bits, without an early exit, so that the
 * compiler vectorizes the one pass per batch; *first_bad: the first such
 * value when there is one. */
static bool all_finite(const float *g, int64_t n, float *first_bad)
{
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &g[i], sizeof(bits));
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    for (int64_t i = 0; bad && i < n; i++)
        if (!isfinite(g[i])) {
            *first_bad = g[i];
            break;
        }
    return !bad;
}

bool qc_grad_check(const struct qc_plan *p, const float *grads, struct qc_grad_fault *f)
{
    *f = (struct qc_grad_fault){ .slot = -1 };
    for (int i = 0; i < qc_plan_n_slots(p); i++) {
        const struct qc_param_slot *s = qc_plan_slot(p, i);
        float bad = 0.0f;
        if (!s->trainable)
            continue;
        f->n_slots++;
        if (all_finite(grads + s->offset, s->n, &bad))
            continue;
        f->n_bad_slots++;
        if (f->slot < 0 || s->node > qc_plan_slot(p, f->slot)->node) {
            f->slot = i;
            f->value = bad;
        }
    }
    return f->slot < 0;
}

enum qc_status qc_grad_sums_new(struct qc_backend *be, int64_t n, struct qc_grad_sums *s)
{
    float ones[QC_GRAD_ROW];
    enum qc_status st;
    *s = (struct qc_grad_sums){ .rows = n / QC_GRAD_ROW };
    if (qc_backend_host_memory(be) || s->rows == 0)
        return QC_OK;
    for (int i = 0; i < QC_GRAD_ROW; i++)
        ones[i] = 1.0f;
    if ((st = qc_backend_alloc(be, sizeof(ones), (void **)&s->ones)) != QC_OK ||
        (st = qc_backend_upload(be, s->ones, ones, sizeof(ones))) != QC_OK)
        return st;
    return qc_backend_alloc(be, (size_t)s->rows * sizeof(float), (void **)&s->sums);
}

void qc_grad_sums_free(struct qc_backend *be, struct qc_grad_sums *s)
{
    if (s->ones)
        qc_backend_release(be, s->ones);
    if (s->sums)
        qc_backend_release(be, s->sums);
    *s = (struct qc_grad_sums){ 0 };
}

enum qc_status qc_grad_sums_check(struct qc_backend *be, const struct qc_grad_sums *s,
                                  const float *grads, int64_t n, float *scratch,
                                  bool *all_finite_out)
{
    int64_t head = s->sums ? s->rows * QC_GRAD_ROW : 0, tail = n - head;
    float unused = 0.0f;
    enum qc_status st;
    if (s->sums) {
        /* sums[r] = sum_j grads[r * QC_GRAD_ROW + j]  (grads as rows x QC_GRAD_ROW) */
        st = qc_sgemm(be, false, false, s->rows, 1, QC_GRAD_ROW, 1.0f, grads, s->ones, 0.0f,
                      s->sums);
        if (st == QC_OK)
            st = qc_backend_download(be, scratch, s->sums, (size_t)s->rows * sizeof(float));
        if (st != QC_OK)
            return st;
    }
    if (tail > 0 && (st = qc_backend_download(be, scratch + s->rows, grads + head,
                                              (size_t)tail * sizeof(float))) != QC_OK)
        return st;
    *all_finite_out = all_finite(scratch, (s->sums ? s->rows : 0) + tail, &unused);
    return QC_OK;
}

void qc_grad_report(const struct qc_graph *g, const struct qc_plan *p,
                    const struct qc_grad_fault *f, int64_t epoch, int64_t batch, const char *ckpt)
{
    const struct qc_param_slot *s = qc_plan_slot(p, f->slot);
    const struct qc_node *n = s->node >= 0 && s->node < g->n_nodes ? &g->nodes[s->node] : NULL;
    char what[256];
    if (s->value >= 0)
        snprintf(what, sizeof(what), "'%s'", g->values[s->value].name);
    else
        snprintf(what, sizeof(what), "the quantizer parameter");
    qc_log_error("epoch %lld, batch %lld: the gradient of %s (node '%s', %s) is %s, and so "
                 "are %d of the %d parameter gradients in all: the gradients overflow float32 "
                 "between the loss and this layer (exploding gradients; with BatchNormalization "
                 "a near-zero batch variance, e.g. from constant weights, multiplies them at "
                 "every layer); stopped (lower the learning rate, or check the model's "
                 "weights). Last good checkpoint: %s",
                 (long long)epoch, (long long)batch, what, n ? n->name : "?", n ? n->op_type : "?",
                 isnan(f->value) ? "NaN" : "infinite", f->n_bad_slots, f->n_slots,
                 ckpt ? ckpt : "none");
}
