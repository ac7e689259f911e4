/*
 * bench_data.c - benchmark helper of scripts/bench-data: the speed of the
 * parallel input pipeline alone (src/data/prefetch.h: decode + the recipe's
 * transformations for the learn split, no training).
 *
 *     bench_data RECIPE.ini THREADS [BATCHES]
 *
 * Runs BATCHES (default: all whole batches of the learn split) through a
 * pool of THREADS decoder threads, batches queued as the trainer queues
 * them (QC_PREFETCH_DEPTH ahead), the batch seed fixed.  Prints
 * "THREADS threads: N images, S s, R images/s" and a checksum of the
 * batches (the same for any thread count).  Exit status 0, or 2 on an
 * error (the library's error line printed).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "data/prefetch.h"
#include "recipe/recipe.h"

int main(int argc, char **argv)
{
    struct qc_recipe *r = NULL;
    struct qc_data_cfg *cfg = NULL;
    struct qc_dataset *ds = NULL;
    struct qc_prefetch *pf = NULL;
    float *x = NULL;
    int32_t *labels = NULL;
    int64_t *idx = NULL;
    int rc = 2, c, h, w;
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: bench_data RECIPE.ini THREADS [BATCHES]\n");
        return 1;
    }
    int threads = atoi(argv[2]);
    if (qc_recipe_load(argv[1], false, &r) != QC_OK || qc_data_cfg_from_recipe(r, &cfg) != QC_OK ||
        qc_data_load(cfg, QC_SPLIT_LEARN, &ds) != QC_OK)
        goto out;
    int64_t batch = qc_data_cfg_batch(cfg);
    int64_t n_batches = ds->n / batch;
    if (argc == 4 && atoll(argv[3]) < n_batches)
        n_batches = atoll(argv[3]);
    qc_data_cfg_geometry(cfg, &c, &h, &w);
    size_t elems = (size_t)batch * c * h * w;
    x = malloc(elems * sizeof(float));
    labels = malloc((size_t)batch * sizeof(*labels));
    idx = malloc((size_t)ds->n * sizeof(*idx));
    if (!x || !labels || !idx || n_batches < 1 ||
        qc_prefetch_new(cfg, ds, QC_SPLIT_LEARN, batch, threads, QC_PREFETCH_DEPTH, &pf) != QC_OK) {
        fprintf(stderr, "bench_data: cannot start (%lld images, batch %lld)\n", (long long)ds->n,
                (long long)batch);
        goto out;
    }
    for (int64_t i = 0; i < ds->n; i++)
        idx[i] = i;
    uint64_t seed = 12345;
    double sum = 0.0, t0 = qc_now();
    int64_t next = 0;
    for (int64_t b = 0; b < n_batches; b++) {
        while (next < n_batches && qc_prefetch_queued(pf) < QC_PREFETCH_DEPTH)
            if (qc_prefetch_submit(pf, idx + next++ * batch, &seed) != QC_OK)
                goto out;
        if (qc_prefetch_take(pf, x, labels) != QC_OK)
            goto out;
        for (size_t i = 0; i < elems; i += 97)
            sum += x[i];
    }
    double secs = qc_now() - t0;
    printf("%d threads: %lld images, %.3f s, %.1f images/s, checksum %.6e\n", threads,
           (long long)(n_batches * batch), secs, (double)(n_batches * batch) / secs, sum);
    rc = 0;
out:
    qc_prefetch_free(pf);
    free(x);
    free(labels);
    free(idx);
    qc_dataset_free(ds);
    qc_data_cfg_free(cfg);
    qc_recipe_free(r);
    return rc;
}
