/*
 * fuzz_data.c - libFuzzer target for the dataset readers (src/data): MNIST
 * IDX images + labels, CIFAR-10 and CIFAR-100 binary batches, plain or
 * gzipped, read directly (qc_idx_load, qc_cifar_load) or through a recipe's
 * [database] section (qc_data_load: file naming, .gz preference, the
 * Learn/Validation/Test split, RandomPartitioning), and then a few images of
 * each loaded set through qc_data_batch with one of eight transformation
 * chains.  The readers take file names, so each input is written to files
 * in a private directory made for it (mkdtemp under $TMPDIR or /tmp) and
 * removed afterwards.
 *
 * Input layout: byte 0 selects
 *   bits 0-1  format: 0 MNIST IDX, 1 CIFAR-10, 2 CIFAR-100 (3 reads as 0)
 *   bit  2    write each file gzip-compressed (raw input may be gzip too)
 *   bit  3    load through a recipe and qc_data_load instead of directly
 *   bits 4-6  the transformation chain applied by qc_data_batch
 *   bit  7    Validation=0.25 and RandomPartitioning=1 (recipe loads)
 * then a 4-byte big-endian length L, the first file's L bytes (IDX images,
 * or the first CIFAR batch) and the rest (IDX labels, or a second CIFAR
 * batch when not empty).  Errors are expected; crashes, sanitizer reports,
 * leaks and timeouts are not.  Built and run by scripts/fuzz.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/data.h"
#include "recipe/recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_FILES  6
#define FUZZ_PATH_LEN   512
#define FUZZ_MAX_PLANE  ((size_t)1 << 20)   /* batch images up to this many floats */
#define FUZZ_MAX_IMAGES 6                   /* images batched per split            */
/* An IDX header may claim any size; the reader allocates what it claims
 * before reading.  Claims above this that the input cannot hold (even at
 * deflate's best ratio, about 1:1032) only measure malloc, so they are
 * skipped; smaller ones keep the truncation paths fuzzed. */
#define FUZZ_MAX_CLAIM  ((uint64_t)64 << 20)

enum fuzz_format { FMT_MNIST = 0, FMT_CIFAR10, FMT_CIFAR100 };

struct fuzz_input {
    enum fuzz_format fmt;
    bool             gz, via_recipe, split;
    int              chain;
    const uint8_t   *part[2];
    size_t           len[2];
};

/* The files written for one input, removed by remove_files. */
struct fuzz_files {
    char dir[FUZZ_PATH_LEN];
    char path[FUZZ_MAX_FILES][FUZZ_PATH_LEN];
    int  n;
};

/* Transformation sections appended to the recipe, by chain number. */
static const char *const chains[8] = {
    "",
    "[sp.Transformation-1]\nType=RangeAffineTransformation\nFirstOperator=Divides\n"
    "FirstValue=255\nSecondOperator=Minus\nSecondValue=0.5\n",
    "[sp.Transformation-1]\nType=RescaleTransformation\nWidth=16\nHeight=16\n"
    "[sp.OnTheFlyTransformation-1]\nType=FlipTransformation\nRandomHorizontalFlip=1\n"
    "ApplyTo=LearnOnly\n",
    "[sp.Transformation-1]\nType=PadCropTransformation\nWidth=30\nHeight=30\n",
    "[sp.OnTheFlyTransformation-1]\nType=SliceExtractionTransformation\nWidth=8\nHeight=8\n"
    "RandomOffsetX=1\nRandomOffsetY=1\nApplyTo=LearnOnly\n"
    "[sp.Transformation-1]\nType=PadCropTransformation\nWidth=8\nHeight=8\nApplyTo=NoLearn\n",
    "[sp.OnTheFlyTransformation-1]\nType=RandomResizeCropTransformation\nWidth=12\n"
    "Height=12\nApplyTo=LearnOnly\n"
    "[sp.Transformation-1]\nType=RescaleTransformation\nWidth=12\nHeight=12\n"
    "ApplyTo=NoLearn\n",
    "[sp.Transformation-1]\nType=ColorSpaceTransformation\nColorSpace=Gray\n"
    "[sp.Transformation-2]\nType=FlipTransformation\nVerticalFlip=1\n",
    "[sp.Transformation-1]\nType=RescaleTransformation\nWidth=20\nHeight=10\n"
    "KeepAspectRatio=1\n[sp.Transformation-2]\nType=ColorSpaceTransformation\n"
    "ColorSpace=BGR\n",
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static bool parse_input(const uint8_t *data, size_t size, struct fuzz_input *in)
{
    if (size < 5)
        return false;
    in->fmt = (enum fuzz_format)((data[0] & 3) % 3);
    in->gz = data[0] & 4;
    in->via_recipe = data[0] & 8;
    in->chain = (data[0] >> 4) & 7;
    in->split = data[0] & 0x80;
    size_t rest = size - 5, l0 = be32(data + 1);
    l0 = l0 < rest ? l0 : rest;
    in->part[0] = data + 5;
    in->len[0] = l0;
    in->part[1] = data + 5 + l0;
    in->len[1] = rest - l0;
    return true;
}

/* The first 16 bytes of the IDX images file as the reader will see them:
 * inflated when the input itself is gzip.  False when there are fewer. */
static bool idx_header(const struct fuzz_input *in, uint8_t h[16])
{
    const uint8_t *p = in->part[0];
    size_t n = in->len[0];
    if (in->gz || n < 2 || p[0] != 0x1f || p[1] != 0x8b) {
        if (n < 16)
            return false;
        memcpy(h, p, 16);
        return true;
    }
    z_stream z = { .next_in = (Bytef *)(uintptr_t)p, .avail_in = (uInt)n, .next_out = h,
                   .avail_out = 16 };
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return false;
    while (z.avail_out > 0 && inflate(&z, Z_NO_FLUSH) == Z_OK)
        ;
    bool full = z.avail_out == 0;
    inflateEnd(&z);
    return full;
}

/* False when an IDX image header claims more than FUZZ_MAX_CLAIM pixels and
 * more than the input could hold. */
static bool idx_claim_ok(const struct fuzz_input *in)
{
    uint8_t h[16];
    const uint8_t *p = in->part[0];
    if (in->fmt != FMT_MNIST || !idx_header(in, h))
        return true;
    uint64_t claim = (uint64_t)be32(h + 4) * be32(h + 8) * (uint64_t)be32(h + 12);
    bool packed = !in->gz && p[0] == 0x1f && p[1] == 0x8b;
    uint64_t room = (uint64_t)in->len[0] * (packed ? 1100 : 1);
    return claim <= FUZZ_MAX_CLAIM || claim <= room;
}

static bool write_file(struct fuzz_files *f, const char *name, const uint8_t *p, size_t n,
                       bool gz)
{
    char *path = f->path[f->n];
    bool ok;
    if (f->n == FUZZ_MAX_FILES)
        return false;
    snprintf(path, FUZZ_PATH_LEN, "%s/%s%s", f->dir, name, gz && !strchr(name, '.') ? ".gz" : "");
    f->n++;
    if (gz) {
        gzFile g = gzopen(path, "wb1");
        if (!g)
            return false;
        ok = n == 0 || gzwrite(g, p, (unsigned)n) == (int)n;
        return gzclose(g) == Z_OK && ok;
    }
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return false;
    ok = n == 0 || fwrite(p, 1, n, fp) == n;
    return fclose(fp) == 0 && ok;
}

static void remove_files(struct fuzz_files *f)
{
    for (int i = 0; i < f->n; i++)
        unlink(f->path[i]);
    f->n = 0;
    rmdir(f->dir);
}

/* Writes the files qc_data_load looks for under f->dir. */
static bool write_db(struct fuzz_files *f, const struct fuzz_input *in)
{
    const uint8_t *b = in->len[1] ? in->part[1] : in->part[0];
    size_t nb = in->len[1] ? in->len[1] : in->len[0];
    switch (in->fmt) {
    case FMT_MNIST:
        return write_file(f, "train-images-idx3-ubyte", in->part[0], in->len[0], in->gz) &&
               write_file(f, "train-labels-idx1-ubyte", in->part[1], in->len[1], in->gz) &&
               write_file(f, "t10k-images-idx3-ubyte", in->part[0], in->len[0], in->gz) &&
               write_file(f, "t10k-labels-idx1-ubyte", in->part[1], in->len[1], in->gz);
    case FMT_CIFAR10:
        return write_file(f, "data_batch_1.bin", in->part[0], in->len[0], in->gz) &&
               write_file(f, "data_batch_2.bin", b, nb, in->gz) &&
               write_file(f, "data_batch_3.bin", in->part[0], in->len[0], in->gz) &&
               write_file(f, "data_batch_4.bin", b, nb, in->gz) &&
               write_file(f, "data_batch_5.bin", in->part[0], in->len[0], in->gz) &&
               write_file(f, "test_batch.bin", b, nb, in->gz);
    case FMT_CIFAR100:
        return write_file(f, "train.bin", in->part[0], in->len[0], in->gz) &&
               write_file(f, "test.bin", b, nb, in->gz);
    }
    return false;
}

static struct qc_data_cfg *make_cfg(const char *head, int chain)
{
    struct qc_recipe *r = NULL;
    struct qc_data_cfg *cfg = NULL;
    size_t n = strlen(head) + strlen(chains[chain]) + 1;
    char *text = malloc(n);
    if (!text)
        return NULL;
    snprintf(text, n, "%s%s", head, chains[chain]);
    if (qc_recipe_load_string(text, "fuzz.ini", false, &r) == QC_OK)
        (void)qc_data_cfg_from_recipe(r, &cfg);
    qc_recipe_free(r);
    free(text);
    return cfg;
}

/* Up to FUZZ_MAX_IMAGES images of ds (the first ones and the last) through
 * the cfg's transformations for `split`, one at a time. */
static void run_batches(const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                        enum qc_split split)
{
    int c, h, w;
    const uint64_t seed = 12345; /* the random transformations' draws (data.h) */
    int32_t label;
    qc_data_cfg_geometry(cfg, &c, &h, &w);
    size_t out = (size_t)c * h * w, in = (size_t)ds->c * ds->h * ds->w;
    if (ds->n <= 0 || out > FUZZ_MAX_PLANE || in > FUZZ_MAX_PLANE)
        return;
    float *x = malloc(out * sizeof(*x));
    if (!x)
        return;
    for (int64_t k = 0; k < FUZZ_MAX_IMAGES && k < ds->n; k++) {
        int64_t idx = k == FUZZ_MAX_IMAGES - 1 ? ds->n - 1 : k;
        if (qc_data_batch(cfg, ds, split, &idx, 1, &seed, x, &label) != QC_OK)
            break;
    }
    free(x);
}

static void fuzz_direct(struct fuzz_files *f, const struct fuzz_input *in)
{
    struct qc_dataset *ds = NULL;
    enum qc_status st;
    if (in->fmt == FMT_MNIST) {
        if (!write_file(f, "images", in->part[0], in->len[0], in->gz) ||
            !write_file(f, "labels", in->part[1], in->len[1], in->gz))
            return;
        st = qc_idx_load(f->path[0], f->path[1], &ds);
    } else {
        const char *paths[2];
        int n = in->len[1] ? 2 : 1;
        if (!write_file(f, "batch1.bin", in->part[0], in->len[0], in->gz) ||
            (n == 2 && !write_file(f, "batch2.bin", in->part[1], in->len[1], in->gz)))
            return;
        paths[0] = f->path[0];
        paths[1] = f->path[1];
        st = qc_cifar_load(paths, n, in->fmt == FMT_CIFAR10 ? 1 : 2, &ds);
    }
    if (st == QC_OK) {
        char head[128];
        snprintf(head, sizeof(head), "[sp]\nSizeX=%d\nSizeY=%d\nNbChannels=%d\nBatchSize=1\n",
                 ds->w, ds->h, ds->c);
        struct qc_data_cfg *cfg = make_cfg(head, in->chain);
        if (cfg) {
            run_batches(cfg, ds, QC_SPLIT_LEARN);
            run_batches(cfg, ds, QC_SPLIT_TEST);
        }
        qc_data_cfg_free(cfg);
    }
    qc_dataset_free(ds);
}

static void fuzz_recipe_load(struct fuzz_files *f, const struct fuzz_input *in)
{
    static const char *const types[3] = { "MNIST_IDX_Database", "CIFAR10_Database",
                                          "CIFAR100_Database" };
    static const enum qc_split splits[3] = { QC_SPLIT_LEARN, QC_SPLIT_VALIDATION,
                                             QC_SPLIT_TEST };
    char head[FUZZ_PATH_LEN + 256];
    if (!write_db(f, in))
        return;
    snprintf(head, sizeof(head),
             "Seed=7\n[database]\nType=%s\nDataPath=%s\nValidation=%s\nRandomPartitioning=%d\n"
             "[sp]\nBatchSize=2\n", types[in->fmt], f->dir, in->split ? "0.25" : "0.0",
             in->split ? 1 : 0);
    struct qc_data_cfg *cfg = make_cfg(head, in->chain);
    if (!cfg)
        return;
    for (int s = 0; s < 3; s++) {
        struct qc_dataset *ds = NULL;
        if (qc_data_load(cfg, splits[s], &ds) == QC_OK)
            run_batches(cfg, ds, splits[s]);
        qc_dataset_free(ds);
    }
    qc_data_cfg_free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in;
    struct fuzz_files f = { .n = 0 };
    const char *tmp = getenv("TMPDIR");
    if (!parse_input(data, size, &in) || !idx_claim_ok(&in))
        return 0;
    snprintf(f.dir, sizeof(f.dir), "%s/qc-fuzz-data-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(f.dir))
        abort();                /* no scratch space: nothing can be fuzzed */
    if (in.via_recipe)
        fuzz_recipe_load(&f, &in);
    else
        fuzz_direct(&f, &in);
    remove_files(&f);
    return 0;
}
