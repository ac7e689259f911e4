/*
 * accuracy.c - top-1 accuracy of a plan on a dataset split (see accuracy.h).
 *
 * Images go through the recipe's transformations for the split into a host
 * batch, are uploaded to the plan's input, the plan runs forward in
 * inference mode, and the arg-max of each row of the first output (first
 * maximum on ties, as numpy does) is compared with the label; with a
 * confusion matrix, every row's scores are counted into it (metrics.h).
 * Image folders are decoded ahead by the prefetch pool (data/prefetch.h,
 * DecodeThreads or the backend's threads), as for training; the last,
 * partial batch is padded with its last image (those rows are not read).
 */
#include <config.h>

#include "accuracy.h"

#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "data/prefetch.h"
#include "plan/inputs.h"
#include "util/log.h"
#include "loss.h"

enum qc_status qc_eval_check(const struct qc_graph *g, struct qc_plan *p,
                             const struct qc_data_cfg *cfg)
{
    const struct qc_tensor *in;
    int c, h, w;
    char s[128];

    if (qc_plan_n_inputs(p) != 1) {
        qc_log_error("%s: the model needs exactly one runtime input (it has %d)", g->path,
                     qc_plan_n_inputs(p));
        return QC_ERR_UNSUPPORTED;
    }
    in = qc_plan_input(p, 0);
    qc_data_cfg_geometry(cfg, &c, &h, &w);
    {
        /* NCHW, NHWC when channels last, and rank 3 ([N,C,W] / [N,W,C]) for
         * images of height 1 */
        bool last = qc_data_cfg_channels_last(cfg);
        int64_t want[3] = { last ? h : c, last ? w : h, last ? c : w };
        int rank = in->shape.ndim;
        bool ok = in->dtype == QC_DTYPE_F32 && (rank == 4 || (rank == 3 && h == 1));
        if (ok && rank == 3) {
            want[0] = last ? w : c;
            want[1] = last ? c : w;
        }
        for (int d = 1; ok && d < rank; d++)
            ok = in->shape.dims[d] == want[d - 1];
        if (!ok) {
            qc_log_error("%s: input %s %s does not take the recipe's %dx%dx%d (CxHxW) float "
                         "images%s",
                         g->path, g->values[qc_inputs_data(g)].name,
                         qc_shape_str(&in->shape, s, sizeof(s)), c, h, w,
                         last ? " fed channels last" : "");
            return QC_ERR_SHAPE;
        }
    }
    if (qc_plan_n_outputs(p) < 1 || qc_plan_output(p, 0)->dtype != QC_DTYPE_F32 ||
        !qc_shape_is_scores(&qc_plan_output(p, 0)->shape, qc_plan_batch(p))) {
        qc_log_error("%s: the first output must be class scores [batch, classes]", g->path);
        return QC_ERR_SHAPE;
    }
    return QC_OK;
}

enum qc_status qc_eval_split(struct qc_plan *p, struct qc_backend *be,
                             const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                             enum qc_split split, int64_t limit, const struct qc_reporter *rep,
                             const char *what, struct qc_eval_result *res)
{
    return qc_eval_split_pred(p, be, cfg, ds, split, limit, rep, what, NULL, res);
}

enum qc_status qc_eval_split_pred(struct qc_plan *p, struct qc_backend *be,
                                  const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                                  enum qc_split split, int64_t limit,
                                  const struct qc_reporter *rep, const char *what, FILE *pred,
                                  struct qc_eval_result *res)
{
    return qc_eval_split_metrics(p, be, cfg, ds, split, limit, rep, what, pred, NULL, res);
}

enum qc_status qc_eval_split_metrics(struct qc_plan *p, struct qc_backend *be,
                                     const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                                     enum qc_split split, int64_t limit,
                                     const struct qc_reporter *rep, const char *what, FILE *pred,
                                     struct qc_confusion *conf, struct qc_eval_result *res)
{
    return qc_eval_split_shard(p, be, cfg, ds, split, limit, 0, 1, rep, what, pred, conf, res);
}

enum qc_status qc_eval_split_shard(struct qc_plan *p, struct qc_backend *be,
                                   const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                                   enum qc_split split, int64_t limit, int shard, int n_shards,
                                   const struct qc_reporter *rep, const char *what, FILE *pred,
                                   struct qc_confusion *conf, struct qc_eval_result *res)
{
    struct qc_tensor *xin = qc_plan_input(p, 0), *yout = qc_plan_output(p, 0);
    int64_t batch = qc_plan_batch(p), classes = yout->shape.dims[1];
    int64_t n_all = limit ? QC_MIN(limit, ds->n) : ds->n;
    /* shard k of K: the images [k·n/K, (k+1)·n/K) */
    int64_t first = (int64_t)shard * n_all / n_shards;
    int64_t n_img = (int64_t)(shard + 1) * n_all / n_shards - first;
    float *x = qc_malloc(qc_tensor_nbytes(xin));
    float *y = qc_malloc(qc_tensor_nbytes(yout));
    int32_t *labels = qc_malloc((size_t)batch * sizeof(*labels));
    int64_t *idx = qc_malloc((size_t)batch * sizeof(*idx));
    struct qc_event ev = { .kind = QC_EVENT_BEGIN, .phase = QC_PHASE_EVALUATE, .what = what,
                           .total = n_img, .loss = -1.0, .valid_accuracy = -1.0 };
    double t0;
    enum qc_status st = QC_ERR_NOMEM;
    struct qc_prefetch *pf = NULL;
    int64_t next = 0; /* the first image of the next batch to queue */

    memset(res, 0, sizeof(*res));
    if (conf) {
        st = qc_confusion_init(conf, classes);
        if (st != QC_OK)
            goto out;
        st = QC_ERR_NOMEM;
    }
    if (!x || !y || !labels || !idx)
        goto out;
    memset(x, 0, qc_tensor_nbytes(xin));
    if (ds->files && n_img > 0) {
        int threads = qc_data_cfg_decode_threads(cfg);
        if (threads <= 0)
            threads = QC_MAX(1, QC_MIN(qc_backend_threads(be), 256));
        st = qc_prefetch_new(cfg, ds, split, batch, threads, QC_PREFETCH_DEPTH, &pf);
        if (st != QC_OK)
            goto out;
    }
    t0 = qc_now();
    qc_emit(rep, &ev);
    for (int64_t start = 0; start < n_img; start += batch) {
        int64_t n = QC_MIN(batch, n_img - start);
        if (pf) {
            for (; next < n_img && qc_prefetch_queued(pf) < QC_PREFETCH_DEPTH; next += batch) {
                for (int64_t i = 0; i < batch; i++)
                    idx[i] = first + QC_MIN(next + i, n_img - 1);
                if ((st = qc_prefetch_submit(pf, idx, NULL)) != QC_OK)
                    goto out;
            }
            st = qc_prefetch_take(pf, x, labels);
        } else {
            for (int64_t i = 0; i < n; i++)
                idx[i] = first + start + i;
            st = qc_data_batch(cfg, ds, split, idx, n, NULL, x, labels);
        }
        if (st != QC_OK)
            goto out;
        st = qc_backend_upload(be, xin->data, x, qc_tensor_nbytes(xin));
        if (st != QC_OK)
            goto out;
        st = qc_plan_forward_mode(p, false, NULL);
        if (st != QC_OK)
            goto out;
        st = qc_backend_download(be, y, yout->data, qc_tensor_nbytes(yout));
        if (st != QC_OK)
            goto out;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = qc_argmax(y + i * classes, classes);
            res->correct += k == labels[i];
            if (conf)
                qc_confusion_add(conf, y + i * classes, labels[i], NULL);
            if (pred && fprintf(pred, "%lld\n", (long long)k) < 0) {
                qc_log_error("cannot write the predictions");
                st = QC_ERR_IO;
                goto out;
            }
        }
        res->n += n;
        ev.kind = QC_EVENT_PROGRESS;
        ev.done = res->n;
        ev.accuracy = 100.0 * (double)res->correct / (double)res->n;
        ev.secs = qc_now() - t0;
        ev.images_per_s = ev.secs > 0 ? (double)ev.done / ev.secs : 0.0;
        ev.eta = ev.images_per_s > 0 ? (double)(n_img - ev.done) / ev.images_per_s : 0.0;
        qc_emit(rep, &ev);
    }
    res->secs = qc_now() - t0;
    ev.kind = QC_EVENT_END;
    ev.secs = res->secs;
    qc_emit(rep, &ev);
    st = QC_OK;
out:
    qc_prefetch_free(pf); /* cancels what is queued, joins its threads */
    if (st != QC_OK && conf)
        qc_confusion_clear(conf);
    qc_free(x);
    qc_free(y);
    qc_free(labels);
    qc_free(idx);
    return st;
}
