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
