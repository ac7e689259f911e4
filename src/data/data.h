/*
 * data.h - datasets and the input pipeline.
 *
 * A struct qc_dataset holds a whole split in memory as raw 8-bit pixels
 * (N x C x H x W, CHW per image) and int32 labels.  Readers: MNIST IDX
 * (idx.c; gzipped or plain through zlib, so Debian's dataset-fashion-mnist
 * works as is) and CIFAR-10/100 binary batches (cifar.c).  A synthetic set
 * ([database] Type=Synthetic, for benchmarks) stores only a small bank of
 * random images: image i is bank image (first + i) mod n_bank, brightened by
 * label_step times its label, so n may be large at no memory cost.
 *
 * struct qc_data_cfg is what a recipe says about data (qatconv-recipe(5), DATA SECTIONS):
 * [database] Type, DataPath, Validation (fraction of the learn set held out);
 * [sp] or [env] SizeX, SizeY, NbChannels, BatchSize; the transformation
 * sections [sp.Transformation-N] / [sp.OnTheFlyTransformation-N] in order,
 * each with ApplyTo=LearnOnly|NoLearn|All.
 *
 * qc_data_batch() turns images into the network's float NCHW input: pixel
 * values start as 0..255 floats and the transformations apply in recipe
 * order (RangeAffine Divides 255 gives [0,1]).  Random transformations
 * (Flip, RandomResizeCrop, random SliceExtraction offsets) of image k of a
 * split draw from a generator of its own, seeded from the caller's batch
 * seed (the trainer's: the run's seed and the epoch) and k: an image's
 * draws do not depend on the other images of its batch, on its place in the
 * batch, nor on which thread transforms it; no global state exists.
 *
 * Image folders ([database] Type=DIR_Database or ILSVRC2012_Database,
 * imagedb.c) keep only file names and labels: a batch decodes its images
 * (image.c) one by one, so memory does not grow with the folder; the
 * trainer decodes them ahead on a pool of threads (prefetch.h).
 */
#ifndef QATCONV_SRC_DATA_DATA_H
#define QATCONV_SRC_DATA_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "util/qc.h"
#include "util/rng.h"

struct qc_recipe;

struct qc_dataset {
    int64_t  n;                 /* images                                 */
    int      c, h, w;           /* channels, height, width                */
    int      n_classes;         /* 10 for MNIST/Fashion/CIFAR-10, 100 ... */
    uint8_t *pixels;            /* n * c * h * w bytes, CHW per image      */
    int32_t *labels;            /* n labels                                */
    /* 0 for a set read from files.  Otherwise pixels holds n_bank images and
     * image i is pixels image (bank_first + i) % n_bank plus
     * label_step * labels[i] on every pixel (as float, before transforms). */
    int64_t  n_bank, bank_first;
    float    label_step;
    /* Image folders: NULL for the other sets.  Otherwise pixels is NULL and
     * image i is decoded from files[i] when a batch takes it (c is the
     * channel count it is converted to; h, w the nominal [sp] size). */
    char **files;
};

enum qc_split {
    QC_SPLIT_LEARN = 0,
    QC_SPLIT_VALIDATION,
    QC_SPLIT_TEST,
};


struct qc_data_cfg;   /* opaque: built from a recipe */

enum qc_status qc_data_cfg_from_recipe(const struct qc_recipe *r, struct qc_data_cfg **out);
void qc_data_cfg_free(struct qc_data_cfg *cfg);
/* Network input geometry after transformations, and the batch size. */
void qc_data_cfg_geometry(const struct qc_data_cfg *cfg, int *c, int *h, int *w);
int64_t qc_data_cfg_batch(const struct qc_data_cfg *cfg);

/* Loads one split.  Learn and Validation come from the training files (the
 * last `Validation` fraction of them is the validation split, 0 by default);
 * Test from the test files.  A missing or corrupt file is QC_ERR_DATA with a
 * message naming the file. */
enum qc_status qc_data_load(const struct qc_data_cfg *cfg, enum qc_split split,
                            struct qc_dataset **out);
void qc_dataset_free(struct qc_dataset *ds);

/* Direct readers (used by qc_data_load and the tests). */
enum qc_status qc_idx_load(const char *images_path, const char *labels_path,
                           struct qc_dataset **out);
/* CIFAR: n_files binary batch files; label_bytes 1 (CIFAR-10) or 2 (CIFAR-100,
 * coarse then fine: the fine label is used). */
enum qc_status qc_cifar_load(const char *const *paths, int n_files, int label_bytes,
                             struct qc_dataset **out);

/* The network takes its images channels last (NHWC: tf2onnx and keras2onnx
 * models, the recipe's [onnx] Transpose=1): qc_data_batch writes each image
 * HWC instead of CHW.  Off by default. */
void qc_data_cfg_set_channels_last(struct qc_data_cfg *cfg, bool channels_last);
bool qc_data_cfg_channels_last(const struct qc_data_cfg *cfg);

/* Image folders: qc_data_load reports the listing of a folder through rep
 * (QC_EVENT_INDEX events, every QC_INDEX_EVERY images and at the end; rep
 * must outlive cfg; NULL: none). */
void qc_data_cfg_set_reporter(struct qc_data_cfg *cfg, const struct qc_reporter *rep);

/* Image folders: [database] DecodeThreads, the decoder threads of the
 * training pipeline (prefetch.h); 0 (the default): the job's --threads. */
int qc_data_cfg_decode_threads(const struct qc_data_cfg *cfg);

/* Fills x (n images, NCHW float, or NHWC when channels last; the geometry of
 * qc_data_cfg_geometry) and
 * labels (may be NULL) from images idx[0..n-1] of ds, applying the recipe's
 * transformations for `split` (LearnOnly ones only for QC_SPLIT_LEARN).
 * Image idx[b]'s random transformations draw from a generator seeded from
 * (*seed, idx[b]); seed may be NULL when no random transformation applies.
 * One cfg serves one thread (it holds the in-memory sets' scratch). */
enum qc_status qc_data_batch(const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                             enum qc_split split, const int64_t *idx, int64_t n,
                             const uint64_t *seed, float *x, int32_t *labels);

/* Image folders only: image k of ds decoded and transformed into out (one
 * image of qc_data_batch's x, with the same draws).  Touches nothing shared
 * but reads cfg and ds: any number of threads may call it at once.  quiet:
 * a failure prints nothing (the caller reports it, see prefetch.h). */
enum qc_status qc_data_image(const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                             enum qc_split split, int64_t k, const uint64_t *seed, bool quiet,
                             float *out);

#endif
