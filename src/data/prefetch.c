/*
 * prefetch.c - the decoder thread pool and its bounded batch queue (see
 * prefetch.h).
 *
 * The queue is a ring of depth slots; slots head .. head + queued - 1 hold
 * the batches submitted and not taken, oldest first.  One mutex guards the
 * ring's bookkeeping; the images' floats are written outside it, each to
 * its own place.  A thread claims the next unclaimed image of the oldest
 * batch that has one (work_cond wakes the threads on a submit), decodes it
 * unlocked, then counts it done and records a failure (the lowest failed
 * image position of the batch, so the error reported does not depend on the
 * timing); the taker waits on done_cond for its batch's last image.
 * Cancelling marks every image of the queued batches claimed, waits until no
 * image is in flight (busy), then empties the ring: no thread writes into a
 * slot after it is reused.
 */
#include <config.h>

#include "prefetch.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "util/log.h"

struct slot {
    int64_t *idx;  /* batch image indices                      */
    uint64_t seed; /* the batch seed (has_seed)                */
    bool has_seed;
    float *x;        /* batch x out_elems                        */
    int64_t claimed; /* images handed to threads                 */
    int64_t done;    /* images finished (well or not)            */
    int64_t bad;     /* lowest failed image position, or batch   */
    enum qc_status st;
};

struct qc_prefetch {
    const struct qc_data_cfg *cfg;
    const struct qc_dataset *ds;
    enum qc_split split;
    int64_t batch;
    size_t out_elems;
    int depth, head, queued;
    struct slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t work_cond, done_cond;
    int busy; /* images being decoded now */
    bool stop;
    pthread_t *threads;
    int n_threads; /* started */
    bool sync_ok;  /* mutex and conditions initialized */
};

/* Under mu: the oldest queued batch with an unclaimed image, or NULL. */
static struct slot *next_work(struct qc_prefetch *p)
{
    for (int i = 0; i < p->queued; i++) {
        struct slot *s = &p->slots[(p->head + i) % p->depth];
        if (s->claimed < p->batch)
            return s;
    }
    return NULL;
}

static void *worker(void *arg)
{
    struct qc_prefetch *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct slot *s;
        while (!p->stop && !(s = next_work(p)))
            pthread_cond_wait(&p->work_cond, &p->mu);
        if (p->stop)
            break;
        int64_t b = s->claimed++;
        int64_t k = s->idx[b];
        const uint64_t *seed = s->has_seed ? &s->seed : NULL;
        float *out = s->x + (size_t)b * p->out_elems;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        enum qc_status st = qc_data_image(p->cfg, p->ds, p->split, k, seed, true, out);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        if (st != QC_OK && b < s->bad) {
            s->bad = b;
            s->st = st;
        }
        s->done++;
        if (s->done == p->batch || p->busy == 0)
            pthread_cond_broadcast(&p->done_cond);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

enum qc_status qc_prefetch_new(const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                               enum qc_split split, int64_t batch, int threads, int depth,
                               struct qc_prefetch **out)
{
    struct qc_prefetch *p;
    enum qc_status st = QC_OK;
    int c, h, w;
    *out = NULL;
    if (!ds->files || batch < 1 || threads < 1 || threads > 256 || depth < 1 || depth > 64)
        return QC_ERR_INVAL;
    if (!(p = qc_calloc(1, sizeof(*p))))
        return QC_ERR_NOMEM;
    qc_data_cfg_geometry(cfg, &c, &h, &w);
    *p = (struct qc_prefetch){ .cfg = cfg,
                               .ds = ds,
                               .split = split,
                               .batch = batch,
                               .out_elems = (size_t)c * h * w,
                               .depth = depth };
    p->slots = qc_calloc((size_t)depth, sizeof(*p->slots));
    p->threads = qc_calloc((size_t)threads, sizeof(*p->threads));
    if (!p->slots || !p->threads) {
        st = QC_ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < depth; i++) {
        p->slots[i].idx = qc_malloc((size_t)batch * sizeof(int64_t));
        p->slots[i].x = qc_malloc((size_t)batch * p->out_elems * sizeof(float));
        if (!p->slots[i].idx || !p->slots[i].x) {
            st = QC_ERR_NOMEM;
            goto fail;
        }
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto no_thread;
    if (pthread_cond_init(&p->work_cond, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        goto no_thread;
    }
    if (pthread_cond_init(&p->done_cond, NULL) != 0) {
        pthread_cond_destroy(&p->work_cond);
        pthread_mutex_destroy(&p->mu);
        goto no_thread;
    }
    p->sync_ok = true;
    /* the threads start with every signal blocked: signals go to the
     * main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            break;
        p->n_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p->n_threads < threads)
        goto no_thread;
    *out = p;
    return QC_OK;
no_thread:
    qc_log_error("cannot start the %d image decoder threads", threads);
    st = QC_ERR_INTERNAL;
fail:
    qc_prefetch_free(p);
    return st;
}

void qc_prefetch_cancel(struct qc_prefetch *p)
{
    if (!p || !p->sync_ok)
        return;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->queued; i++)
        p->slots[(p->head + i) % p->depth].claimed = p->batch;
    while (p->busy > 0)
        pthread_cond_wait(&p->done_cond, &p->mu);
    p->head = (p->head + p->queued) % p->depth;
    p->queued = 0;
    pthread_mutex_unlock(&p->mu);
}

void qc_prefetch_free(struct qc_prefetch *p)
{
    if (!p)
        return;
    if (p->sync_ok) {
        qc_prefetch_cancel(p);
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->work_cond);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_threads; i++)
            pthread_join(p->threads[i], NULL);
        pthread_cond_destroy(&p->done_cond);
        pthread_cond_destroy(&p->work_cond);
        pthread_mutex_destroy(&p->mu);
    }
    for (int i = 0; p->slots && i < p->depth; i++) {
        qc_free(p->slots[i].idx);
        qc_free(p->slots[i].x);
    }
    qc_free(p->slots);
    qc_free(p->threads);
    qc_free(p);
}

enum qc_status qc_prefetch_submit(struct qc_prefetch *p, const int64_t *idx, const uint64_t *seed)
{
    for (int64_t b = 0; b < p->batch; b++)
        if (idx[b] < 0 || idx[b] >= p->ds->n) {
            qc_log_error("qc_prefetch_submit: image index %lld out of range [0, %lld)",
                         (long long)idx[b], (long long)p->ds->n);
            return QC_ERR_INVAL;
        }
    pthread_mutex_lock(&p->mu);
    if (p->queued == p->depth) {
        pthread_mutex_unlock(&p->mu);
        return QC_ERR_INTERNAL;
    }
    struct slot *s = &p->slots[(p->head + p->queued) % p->depth];
    memcpy(s->idx, idx, (size_t)p->batch * sizeof(*idx));
    s->has_seed = seed != NULL;
    s->seed = seed ? *seed : 0;
    s->claimed = s->done = 0;
    s->bad = p->batch;
    s->st = QC_OK;
    p->queued++;
    pthread_cond_broadcast(&p->work_cond);
    pthread_mutex_unlock(&p->mu);
    return QC_OK;
}

enum qc_status qc_prefetch_take(struct qc_prefetch *p, float *x, int32_t *labels)
{
    pthread_mutex_lock(&p->mu);
    if (p->queued == 0) {
        pthread_mutex_unlock(&p->mu);
        return QC_ERR_INTERNAL;
    }
    struct slot *s = &p->slots[p->head];
    while (s->done < p->batch)
        pthread_cond_wait(&p->done_cond, &p->mu);
    int64_t bad = s->bad;
    enum qc_status st = s->st;
    pthread_mutex_unlock(&p->mu);
    /* the slot is the taker's until it leaves the queue: no thread writes it */
    if (bad < p->batch) {
        /* again on this thread, for its one error line */
        const uint64_t *seed = s->has_seed ? &s->seed : NULL;
        enum qc_status again = qc_data_image(p->cfg, p->ds, p->split, s->idx[bad], seed, false,
                                             x + (size_t)bad * p->out_elems);
        if (again == QC_OK)
            qc_log_error("%s: could not be decoded by an image decoder thread",
                         p->ds->files[s->idx[bad]]);
        else
            st = again;
    } else {
        memcpy(x, s->x, (size_t)p->batch * p->out_elems * sizeof(float));
        for (int64_t b = 0; labels && b < p->batch; b++)
            labels[b] = p->ds->labels[s->idx[b]];
    }
    pthread_mutex_lock(&p->mu);
    p->head = (p->head + 1) % p->depth;
    p->queued--;
    pthread_mutex_unlock(&p->mu);
    return st;
}

int qc_prefetch_queued(const struct qc_prefetch *p)
{
    return p->queued;
}
