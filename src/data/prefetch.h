/*
 * prefetch.h - the parallel input pipeline of image folders: a pool of
 * decoder threads that decodes and transforms the images of the next
 * batches (qc_data_image) into a bounded queue while the current batch
 * trains.
 *
 * The owner (the trainer) submits batches in order (an index list and the
 * batch seed each) and takes them back in the same order; a batch is a
 * list of independent images, which the threads claim one at a time, so
 * all threads work on the oldest batch first.  Each image's random draws
 * come from its own generator (data.h), and each image is written to its
 * own place in its batch: a batch is the same bytes for any thread count.
 *
 * Memory: depth batches of batch x C x H x W floats (the network input)
 * plus their labels, allocated once; while it works, each thread also
 * holds one decoded image and two float planes of its largest intermediate
 * (image_one in dataset.c).
 *
 * Errors: the threads print nothing.  A failed image marks its batch; the
 * thread that takes the batch decodes the first failed image of the batch
 * again, which prints the usual one error line, and returns its status.
 * The threads block every signal: SIGINT and SIGTERM reach the main
 * thread (train/interrupt.h), which stops at the end of its batch and frees
 * the pool (qc_prefetch_free cancels what is queued and joins the threads).
 * No global state: the pool belongs to its owner.
 */
#ifndef QATCONV_SRC_DATA_PREFETCH_H
#define QATCONV_SRC_DATA_PREFETCH_H

#include <stdint.h>

#include "data.h"
#include "util/qc.h"

#define QC_PREFETCH_DEPTH 3 /* batches queued ahead (2 to 4 is the useful range) */

struct qc_prefetch;

/* A pool of `threads` (1 to 256) decoder threads for batches of `batch`
 * images of ds (an image folder) for `split`, at most `depth` batches
 * queued.  cfg and ds must outlive the pool and stay unchanged. */
enum qc_status qc_prefetch_new(const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                               enum qc_split split, int64_t batch, int threads, int depth,
                               struct qc_prefetch **out);
/* Cancels the queued batches, joins the threads, frees everything. */
void qc_prefetch_free(struct qc_prefetch *p);

/* Queues the batch idx[0 .. batch) (copied) with its seed (NULL: none, as
 * qc_data_batch).  QC_ERR_INTERNAL when depth batches are queued already. */
enum qc_status qc_prefetch_submit(struct qc_prefetch *p, const int64_t *idx, const uint64_t *seed);
/* Waits for the oldest queued batch and copies it into x and labels (as
 * qc_data_batch writes them); its error (one line printed) otherwise.  The
 * batch leaves the queue either way. */
enum qc_status qc_prefetch_take(struct qc_prefetch *p, float *x, int32_t *labels);
/* Batches queued (submitted, not taken). */
int qc_prefetch_queued(const struct qc_prefetch *p);
/* Drops every queued batch (waits for the images being decoded). */
void qc_prefetch_cancel(struct qc_prefetch *p);

#endif
