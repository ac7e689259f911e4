/*
 * grad_buckets.c - the data-parallel gradient average in buckets, overlapped
 * with the backward (issue 18).
 *
 * Every rank's backward leaves the mean gradient of its slice of the global
 * batch in the plan's flat gradient buffer; the step needs the mean over the
 * ranks, (1/R) Σ_r g_r.  Instead of one all-reduce of the whole buffer after
 * the backward, the buffer is cut at parameter (slot) boundaries into
 * contiguous buckets of at least AllReduceBucketKB KiB (the last one may be
 * smaller), and the plan's grad-ready hook (plan.h) reports each slot once
 * the last op adding to its gradient has run.  When the last slot of a bucket
 * is reported, its average starts at once (MPI_Iallreduce in place, the
 * 1/R scaling at the wait; ncclAllReduce with ncclAvg on a device), and
 * MPI is given a chance to progress the started ones at each report, so the
 * exchange of the late layers' gradients overlaps the backward of the early
 * layers.  qc_grad_buckets_finish waits for all before the optimizer step.
 * The reports come in the same order on every rank (the same plan and the
 * same walk), so every rank starts the same buckets in the same order, as
 * MPI's collectives require.  The arithmetic is that of the one all-reduce
 * (a sum, then the scaling), element by element, so the two give the same
 * floats.
 */
#include <config.h>

#include "grad_buckets.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/log.h"

struct bucket {
    int64_t offset, n; /* floats of the flat gradient buffer */
    int64_t floats;    /* of its slots (n less any gap between them) */
    int64_t missing;   /* floats not yet reported in this backward, -1: started */
};

struct qc_grad_buckets {
    struct qc_plan *plan;
    struct qc_comm_pending *pending;
    float *grads; /* the plan's flat gradient buffer (backend memory) */
    bool device;  /* average on the device (NCCL)                    */
    struct bucket *b;
    int n;
    int64_t started; /* averages started so far                        */
    int64_t early;   /* of them, while other buckets were still missing */
    int unstarted;   /* buckets not started in this backward            */
};

/* A slot's [offset, n) for sorting. */
struct range {
    int64_t offset, n;
};

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static enum qc_status start(struct qc_grad_buckets *gb, struct bucket *b)
{
    enum qc_status st;
    if (gb->device)
        st = qc_comm_pending_mean_f32_device(gb->pending, gb->grads + b->offset, b->n);
    else
        st = qc_comm_pending_mean_f32(gb->pending, gb->grads + b->offset, b->n);
    b->missing = -1; /* started */
    gb->unstarted--;
    if (st == QC_OK)
        gb->started++;
    if (st == QC_OK && gb->unstarted > 0)
        gb->early++;
    return st;
}

/* The plan's grad-ready hook: [offset, offset + n) of the buffer is final. */
static enum qc_status on_ready(void *arg, int64_t offset, int64_t n)
{
    struct qc_grad_buckets *gb = arg;
    int lo = 0, hi = gb->n - 1;
    struct bucket *b;
    while (lo < hi) { /* the last bucket that starts at or before offset */
        int mid = (lo + hi + 1) / 2;
        if (gb->b[mid].offset <= offset)
            lo = mid;
        else
            hi = mid - 1;
    }
    b = &gb->b[lo];
    if (b->missing < n || offset + n > b->offset + b->n) {
        qc_log_error("internal: gradient [%lld, +%lld) reported twice or across buckets",
                     (long long)offset, (long long)n);
        return QC_ERR_INTERNAL;
    }
    b->missing -= n;
    if (b->missing == 0) {
        enum qc_status st = start(gb, b);
        if (st != QC_OK)
            return st;
    }
    return gb->device ? QC_OK : qc_comm_pending_poll(gb->pending);
}

enum qc_status qc_grad_buckets_new(struct qc_plan *plan, struct qc_backend *be,
                                   struct qc_comm *comm, int64_t bucket_kb,
                                   struct qc_grad_buckets **out)
{
    struct qc_grad_buckets *gb;
    struct range *r;
    int nr = 0, max_ops = 0;
    int64_t limit = bucket_kb * 1024 / (int64_t)sizeof(float);
    enum qc_status st;

    *out = NULL;
    if (qc_comm_size(comm) <= 1 || bucket_kb <= 0 || qc_plan_n_trainable(plan) == 0 ||
        (!qc_backend_host_memory(be) && !qc_comm_has_device_mean()))
        return QC_OK;
    gb = qc_calloc(1, sizeof(*gb));
    r = qc_calloc((size_t)qc_plan_n_slots(plan) + 1, sizeof(*r));
    if (!gb || !r) {
        qc_free(gb);
        qc_free(r);
        return QC_ERR_NOMEM;
    }
    for (int i = 0; i < qc_plan_n_slots(plan); i++) {
        const struct qc_param_slot *s = qc_plan_slot(plan, i);
        if (s->trainable && s->n > 0)
            r[nr++] = (struct range){ s->offset, s->n };
    }
    qsort(r, (size_t)nr, sizeof(*r), cmp_range);
    gb->b = qc_calloc((size_t)nr + 1, sizeof(*gb->b));
    if (!gb->b) {
        qc_free(r);
        qc_grad_buckets_free(gb);
        return QC_ERR_NOMEM;
    }
    for (int i = 0; i < nr; i++) { /* contiguous slots until the bucket holds limit floats */
        struct bucket *b = &gb->b[gb->n];
        if (b->n == 0)
            b->offset = r[i].offset;
        b->n = r[i].offset + r[i].n - b->offset;
        b->floats += r[i].n;
        if (b->n >= limit || i == nr - 1)
            gb->n++;
    }
    qc_free(r);
    for (int i = 0; i < gb->n; i++) /* a host average takes one MPI request per INT_MAX */
        max_ops += (int)((gb->b[i].n + INT_MAX - 1) / INT_MAX);
    gb->plan = plan;
    gb->grads = qc_plan_param_grads(plan);
    gb->device = !qc_backend_host_memory(be);
    for (int i = 0; i < gb->n; i++)
        gb->b[i].missing = gb->b[i].floats;
    gb->unstarted = gb->n;
    st = qc_comm_pending_new(comm, max_ops, &gb->pending);
    if (st == QC_OK)
        st = qc_plan_set_grad_ready(plan, on_ready, gb);
    if (st != QC_OK) {
        qc_grad_buckets_free(gb);
        return st;
    }
    *out = gb;
    return QC_OK;
}

void qc_grad_buckets_free(struct qc_grad_buckets *b)
{
    if (!b)
        return;
    if (b->plan)
        (void)qc_plan_set_grad_ready(b->plan, NULL, NULL);
    qc_comm_pending_free(b->pending);
    qc_free(b->b);
    qc_free(b);
}

enum qc_status qc_grad_buckets_finish(struct qc_grad_buckets *gb)
{
    enum qc_status st = QC_OK;
    /* a bucket some slot of which was not reported (the walk stopped early):
     * started here, in bucket order on every rank */
    for (int i = 0; st == QC_OK && i < gb->n; i++)
        if (gb->b[i].missing >= 0)
            st = start(gb, &gb->b[i]);
    if (st == QC_OK)
        st = qc_comm_pending_wait(gb->pending);
    for (int i = 0; i < gb->n; i++)
        gb->b[i].missing = gb->b[i].floats;
    gb->unstarted = gb->n;
    return st;
}

int qc_grad_buckets_count(const struct qc_grad_buckets *b)
{
    return b ? b->n : 0;
}

int64_t qc_grad_buckets_started(const struct qc_grad_buckets *b, int64_t *early)
{
    *early = b ? b->early : 0;
    return b ? b->started : 0;
}
