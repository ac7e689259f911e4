/*
 * test_data.c - dataset readers and the input pipeline: IDX files plain and
 * gzipped (written here), truncated, bad magic, corrupt gzip, count
 * mismatch, missing; CIFAR records; the rng; recipe-driven loading with a
 * validation split; transformations against hand-computed values; the
 * synthetic set (sizes, labels, determinism, pixels against the generator's
 * definition, one-line errors); the image decoders (PNG written by
 * libpng's writer and JPEG by TurboJPEG's encoder, decoded back, then every
 * truncation a clean error) and the channel conversions against their
 * formulas; and, when installed, Debian's Fashion-MNIST test split.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <png.h>
#include <turbojpeg.h>
#include <zlib.h>

#include "data/data.h"
#include "data/image.h"
#include "data/prefetch.h"
#include "recipe/recipe.h"
#include "testutil.h"

#define FASHION "/usr/share/datasets/fashion-mnist"

/* IDX images (n x h x w, pixel i = (seed + i) mod 256) and labels (i mod 10). */
static size_t make_idx_images(uint8_t *buf, uint32_t magic, int n, int h, int w, int seed)
{
    uint32_t hdr[4] = { magic, (uint32_t)n, (uint32_t)h, (uint32_t)w };
    size_t k = 0;
    for (int i = 0; i < 4; i++)
        for (int b = 3; b >= 0; b--)
            buf[k++] = (uint8_t)(hdr[i] >> (8 * b));
    for (int i = 0; i < n * h * w; i++)
        buf[k++] = (uint8_t)(seed + i);
    return k;
}

static size_t make_idx_labels(uint8_t *buf, int n)
{
    uint32_t hdr[2] = { 0x801, (uint32_t)n };
    size_t k = 0;
    for (int i = 0; i < 2; i++)
        for (int b = 3; b >= 0; b--)
            buf[k++] = (uint8_t)(hdr[i] >> (8 * b));
    for (int i = 0; i < n; i++)
        buf[k++] = (uint8_t)(i % 10);
    return k;
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile gz = gzopen(path, "wb");
    ck_assert_ptr_nonnull(gz);
    ck_assert_int_eq(gzwrite(gz, data, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(gz), Z_OK);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Runs qc_idx_load with stderr captured into err. */
static enum qc_status idx_capture(const char *im, const char *lb, struct qc_dataset **ds,
                                  char *err, size_t len)
{
    char path[256];
    qc_test_tmpfile(path, sizeof(path), "", 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_ptr_nonnull(freopen(path, "w", stderr));
    enum qc_status st = qc_idx_load(im, lb, ds);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    size_t n = read_file(path, (uint8_t *)err, len - 1);
    err[n] = '\0';
    unlink(path);
    return st;
}

static void expect_idx_error(const char *im, const char *lb, const char *msg)
{
    struct qc_dataset *ds = NULL;
    char err[1024];
    ck_assert_int_eq(idx_capture(im, lb, &ds, err, sizeof(err)), QC_ERR_DATA);
    ck_assert_ptr_null(ds);
    ck_assert_msg(strstr(err, msg) != NULL, "expected '%s' in '%s'", msg, err);
}

START_TEST(test_idx_plain_and_gz)
{
    uint8_t im[16 + 3 * 2 * 3], lb[8 + 3];
    char pi[256], pl[256], gi[256], gl[256];
    size_t ni = make_idx_images(im, 0x803, 3, 2, 3, 250);
    size_t nl = make_idx_labels(lb, 3);
    qc_test_tmpfile(pi, sizeof(pi), im, ni);
    qc_test_tmpfile(pl, sizeof(pl), lb, nl);
    qc_test_tmpfile(gi, sizeof(gi), "", 0);
    qc_test_tmpfile(gl, sizeof(gl), "", 0);
    write_gz(gi, im, ni);
    write_gz(gl, lb, nl);
    for (int pass = 0; pass < 2; pass++) {
        struct qc_dataset *ds = NULL;
        ck_assert_int_eq(qc_idx_load(pass ? gi : pi, pass ? gl : pl, &ds), QC_OK);
        ck_assert_int_eq(ds->n, 3);
        ck_assert_int_eq(ds->c, 1);
        ck_assert_int_eq(ds->h, 2);
        ck_assert_int_eq(ds->w, 3);
        ck_assert_int_eq(ds->pixels[0], 250);
        ck_assert_int_eq(ds->pixels[6], 0);       /* (250 + 6) mod 256 */
        ck_assert_int_eq(ds->pixels[17], 11);
        ck_assert_int_eq(ds->labels[2], 2);
        ck_assert_int_eq(ds->n_classes, 3);
        qc_dataset_free(ds);
    }
    /* truncated plain file */
    write_file(pi, im, ni - 1);
    expect_idx_error(pi, pl, "truncated file");
    /* bad magic */
    im[3] = 0x02;
    write_file(pi, im, ni);
    expect_idx_error(pi, pl, "bad IDX magic 0x00000802");
    im[3] = 0x03;
    /* trailing bytes */
    write_file(pi, im, ni);
    uint8_t more[sizeof(im) + 1];
    memcpy(more, im, ni);
    more[ni] = 1;
    write_file(pi, more, ni + 1);
    expect_idx_error(pi, pl, "unexpected trailing data");
    /* label count mismatch */
    write_file(pi, im, ni);
    nl = make_idx_labels(lb, 2);
    write_file(pl, lb, nl);
    expect_idx_error(pi, pl, "2 labels for 3 images");
    /* missing */
    expect_idx_error("/nonexistent/t10k-images", pl,
                     "/nonexistent/t10k-images: No such file or directory");
    unlink(pi);
    unlink(pl);
    unlink(gi);
    unlink(gl);
}
END_TEST

START_TEST(test_idx_corrupt_gz)
{
    uint8_t im[16 + 4 * 8 * 8], gzb[2048];
    char gi[256], gl[256];
    size_t ni = make_idx_images(im, 0x803, 4, 8, 8, 7);
    uint8_t lb[8 + 4];
    size_t nl = make_idx_labels(lb, 4);
    qc_test_tmpfile(gi, sizeof(gi), "", 0);
    qc_test_tmpfile(gl, sizeof(gl), "", 0);
    write_gz(gi, im, ni);
    write_gz(gl, lb, nl);
    size_t ng = read_file(gi, gzb, sizeof(gzb));
    ck_assert_uint_gt(ng, 20);
    /* CRC error: flip a bit of the stored CRC-32 (8 bytes before the end) */
    gzb[ng - 8] ^= 0x55;
    write_file(gi, gzb, ng);
    expect_idx_error(gi, gl, "corrupt file");
    gzb[ng - 8] ^= 0x55;
    /* truncated gzip stream */
    write_file(gi, gzb, ng / 2);
    expect_idx_error(gi, gl, "truncated");
    /* garbage in the deflate data */
    memset(gzb + 12, 0xff, 8);
    write_file(gi, gzb, ng);
    expect_idx_error(gi, gl, gi);
    unlink(gi);
    unlink(gl);
}
END_TEST

START_TEST(test_cifar_records)
{
    /* two CIFAR-100 records: coarse, fine, then 3072 pixels */
    static uint8_t rec[2 * 3074];
    char p[256];
    for (int r = 0; r < 2; r++) {
        rec[r * 3074] = (uint8_t)(5 + r);
        rec[r * 3074 + 1] = (uint8_t)(42 + r);
        for (int i = 0; i < 3072; i++)
            rec[r * 3074 + 2 + i] = (uint8_t)(i / 1024 * 100 + r);
    }
    qc_test_tmpfile(p, sizeof(p), rec, sizeof(rec));
    const char *paths[2] = { p, p };
    struct qc_dataset *ds = NULL;
    ck_assert_int_eq(qc_cifar_load(paths, 2, 2, &ds), QC_OK);
    ck_assert_int_eq(ds->n, 4);
    ck_assert_int_eq(ds->c, 3);
    ck_assert_int_eq(ds->h, 32);
    ck_assert_int_eq(ds->w, 32);
    ck_assert_int_eq(ds->n_classes, 100);
    ck_assert_int_eq(ds->labels[0], 42);
    ck_assert_int_eq(ds->labels[3], 43);
    ck_assert_int_eq(ds->pixels[0], 0);               /* R of image 0 */
    ck_assert_int_eq(ds->pixels[1024], 100);          /* G */
    ck_assert_int_eq(ds->pixels[3072 + 2048], 201);   /* B of image 1 */
    qc_dataset_free(ds);
    /* read as CIFAR-10 (1 label byte) the same bytes are 6148/3073 records: partial */
    ck_assert_int_eq(qc_cifar_load(paths, 1, 1, &ds), QC_ERR_DATA);
    ck_assert_ptr_null(ds);
    /* CIFAR-10 label out of range */
    static uint8_t r10[3073];
    r10[0] = 10;
    write_file(p, r10, sizeof(r10));
    ck_assert_int_eq(qc_cifar_load(paths, 1, 1, &ds), QC_ERR_DATA);
    r10[0] = 9;
    write_file(p, r10, sizeof(r10));
    ck_assert_int_eq(qc_cifar_load(paths, 1, 1, &ds), QC_OK);
    ck_assert_int_eq(ds->labels[0], 9);
    qc_dataset_free(ds);
    write_file(p, r10, 0);
    ck_assert_int_eq(qc_cifar_load(paths, 1, 1, &ds), QC_ERR_DATA);
    unlink(p);
}
END_TEST

START_TEST(test_rng)
{
    struct qc_rng a, b, c;
    qc_rng_seed(&a, 42);
    qc_rng_seed(&b, 42);
    qc_rng_seed(&c, 43);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = qc_rng_next(&a);
        ck_assert_uint_eq(x, qc_rng_next(&b));
        same_c += x == qc_rng_next(&c);
    }
    ck_assert_int_eq(same_c, 0);
    double sum = 0.0;
    qc_rng_seed(&a, 0);
    ck_assert(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
    for (int i = 0; i < 10000; i++) {
        float u = qc_rng_uniform(&a);
        ck_assert(u >= 0.0f && u < 1.0f);
        sum += u;
    }
    ck_assert_double_eq_tol(sum / 10000.0, 0.5, 0.02);
}
END_TEST

/* A cfg from recipe text (no [database]: the [sp] geometry is the input). */
static struct qc_data_cfg *cfg_from(const char *text, enum qc_status want)
{
    struct qc_recipe *r = NULL;
    struct qc_data_cfg *cfg = NULL;
    ck_assert_int_eq(qc_recipe_load_string(text, "d.ini", false, &r), QC_OK);
    ck_assert_int_eq(qc_data_cfg_from_recipe(r, &cfg), want);
    qc_recipe_free(r);
    return cfg;
}

/* One c x h x w image with the given pixels. */
static struct qc_dataset *one_image(int c, int h, int w, const uint8_t *px)
{
    struct qc_dataset *ds = calloc(1, sizeof(*ds));
    ds->n = 1;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->n_classes = 10;
    ds->pixels = qc_malloc((size_t)c * h * w);
    ds->labels = qc_malloc(sizeof(int32_t));
    memcpy(ds->pixels, px, (size_t)c * h * w);
    ds->labels[0] = 7;
    return ds;
}

static void run_one(const char *text, struct qc_dataset *ds, enum qc_split split,
                    const float *want, int oc, int oh, int ow)
{
    struct qc_data_cfg *cfg = cfg_from(text, QC_OK);
    int c, h, w;
    float x[64];
    int32_t label = -1;
    int64_t idx = 0;
    uint64_t seed = 1;
    qc_data_cfg_geometry(cfg, &c, &h, &w);
    ck_assert_int_eq(c, oc);
    ck_assert_int_eq(h, oh);
    ck_assert_int_eq(w, ow);
    ck_assert_int_eq(qc_data_batch(cfg, ds, split, &idx, 1, &seed, x, &label), QC_OK);
    ck_assert_int_eq(label, 7);
    for (int i = 0; i < oc * oh * ow; i++)
        ck_assert_msg(fabsf(x[i] - want[i]) < 1e-5f, "element %d: %g != %g", i, x[i], want[i]);
    qc_data_cfg_free(cfg);
}

START_TEST(test_transform_values)
{
    static const uint8_t px[] = { 0, 4, 8, 12 };
    struct qc_dataset *ds = one_image(1, 2, 2, px);
    /* RangeAffine: (v - 1) / 2 */
    {
        static const float want[] = { -0.5f, 1.5f, 3.5f, 5.5f };
        run_one("[sp]\nSizeX=2\nSizeY=2\nBatchSize=4\n[sp.Transformation-1]\n"
                "Type=RangeAffineTransformation\nFirstOperator=Minus\nFirstValue=1\n"
                "SecondOperator=Divides\nSecondValue=2\n", ds, QC_SPLIT_TEST, want, 1, 2, 2);
    }
    /* PadCrop 2x2 -> 4x4: centred zero padding (ConstantBorder, BorderValue 0) */
    {
        static const float want[] = { 0, 0, 0, 0, 0, 0, 4, 0, 0, 8, 12, 0, 0, 0, 0, 0 };
        run_one("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=PadCrop\nWidth=4\n"
                "Height=4\nBorderType=ConstantBorder\n",
                ds, QC_SPLIT_TEST, want, 1, 4, 4);
    }
    /* PadCrop 2x2 -> 4x4 with N2D2's default MinusOneReflectBorder (OpenCV's
     * BORDER_REFLECT_101): top = left = ceil(2/2) = 1, so rows and columns
     * -1, 0, 1, 2 read 1, 0, 1, 0 */
    {
        static const float want[] = { 12, 8, 12, 8, 4, 0, 4, 0, 12, 8, 12, 8, 4, 0, 4, 0 };
        run_one("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=PadCrop\nWidth=4\n"
                "Height=4\n", ds, QC_SPLIT_TEST, want, 1, 4, 4);
    }
    /* ... ReplicateBorder, AdditiveWH=1 (2+1 x 2+1): top = left = ceil(1/2) = 1 */
    {
        static const float want[] = { 0, 0, 4, 0, 0, 4, 8, 8, 12 };
        run_one("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=PadCrop\nWidth=1\n"
                "Height=1\nAdditiveWH=1\nBorderType=ReplicateBorder\n",
                ds, QC_SPLIT_TEST, want, 1, 3, 3);
    }
    /* Rescale KeepAspectRatio=1 (ResizeToFit=1 by default) to 4x6: one ratio
     * min(4/2, 6/2) = 2, a 4x4 output (the values of the plain 4x4 below) */
    {
        static const float want[] = { 0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12 };
        run_one("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=Rescale\nWidth=4\n"
                "Height=6\nKeepAspectRatio=1\n",
                ds, QC_SPLIT_TEST, want, 1, 4, 4);
    }
    /* RangeAffine Truncate=1: trunc(v / 3) */
    {
        static const float want[] = { 0, 1, 2, 4 };
        run_one("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=RangeAffine\n"
                "FirstOperator=Divides\nFirstValue=3\nTruncate=1\n",
                ds, QC_SPLIT_TEST, want, 1, 2, 2);
    }
    /* ApplyTo=ValidationOnly / NoValidation */
    {
        static const char text[] = "[sp.Transformation-1]\nType=RangeAffine\n"
                                   "FirstOperator=Plus\nFirstValue=1\nApplyTo=ValidationOnly\n"
                                   "[sp.Transformation-2]\nType=RangeAffine\n"
                                   "FirstOperator=Plus\nFirstValue=100\nApplyTo=NoValidation\n"
                                   "[sp]\nSizeX=2\nSizeY=2\n";
        static const float val[] = { 1, 5, 9, 13 }, other[] = { 100, 104, 108, 112 };
        run_one(text, ds, QC_SPLIT_VALIDATION, val, 1, 2, 2);
        run_one(text, ds, QC_SPLIT_LEARN, other, 1, 2, 2);
        run_one(text, ds, QC_SPLIT_TEST, other, 1, 2, 2);
    }
    /* Rescale 2x2 -> 4x4, bilinear with half-pixel centres:
     * source coordinate (o + 0.5)/2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (to 1) */
    {
        static const float want[] = { 0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12 };
        run_one("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=Rescale\nWidth=4\n"
                "Height=4\n", ds, QC_SPLIT_TEST, want, 1, 4, 4);
    }
    /* Flip horizontal then vertical, in order, then RangeAffine (OnTheFly comes last) */
    {
        static const float want[] = { 24, 16, 8, 0 };
        run_one("[sp]\nSizeX=2\nSizeY=2\n[sp.OnTheFlyTransformation-1]\nType=RangeAffine\n"
                "FirstOperator=Multiplies\n"
                "FirstValue=2\n[sp.Transformation-2]\nType=Flip\nVerticalFlip=1\n"
                "[sp.Transformation-1]\nType=Flip\nHorizontalFlip=1\n", ds, QC_SPLIT_TEST,
                want, 1, 2, 2);
    }
    /* ApplyTo: LearnOnly applies to learn only, NoLearn to the others */
    {
        static const char text[] = "[sp.Transformation-1]\nType=RangeAffine\n"
                                   "FirstOperator=Plus\nFirstValue=1\nApplyTo=LearnOnly\n"
                                   "[sp.Transformation-2]\nType=RangeAffine\n"
                                   "FirstOperator=Plus\nFirstValue=100\nApplyTo=NoLearn\n"
                                   "[sp]\nSizeX=2\nSizeY=2\n";
        static const float learn[] = { 1, 5, 9, 13 }, test[] = { 100, 104, 108, 112 };
        run_one(text, ds, QC_SPLIT_LEARN, learn, 1, 2, 2);
        run_one(text, ds, QC_SPLIT_VALIDATION, test, 1, 2, 2);
    }
    qc_dataset_free(ds);
    /* a centred crop of 3 from 5 columns: N2D2 starts at floor(3/2) = 1,
     * CropRounding=HalfEven (torchvision's CenterCrop) at round(1.5) = 2 */
    static const uint8_t row5[] = { 0, 1, 2, 3, 4 };
    ds = one_image(1, 1, 5, row5);
    {
        static const float n2d2[] = { 1, 2 }, tv[] = { 2, 3 };
        run_one("[sp]\nSizeX=5\nSizeY=1\n[sp.Transformation-1]\nType=PadCrop\nWidth=2\n"
                "Height=1\n",
                ds, QC_SPLIT_TEST, n2d2, 1, 1, 2);
        run_one("[sp]\nSizeX=5\nSizeY=1\n[sp.Transformation-1]\nType=PadCrop\nWidth=2\n"
                "Height=1\nCropRounding=HalfEven\n",
                ds, QC_SPLIT_TEST, tv, 1, 1, 2);
    }
    qc_dataset_free(ds);
    /* 3 channels: per-channel RangeAffine, SliceExtraction, PadCrop crop, Gray */
    static const uint8_t px3[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9,         /* R 3x3 */
                                   10, 20, 30, 40, 50, 60, 70, 80, 90, /* G */
                                   0, 0, 0, 0, 100, 0, 0, 0, 0 };      /* B */
    ds = one_image(3, 3, 3, px3);
    {
        static const float want[] = { 4, 5, 7, 8, 40, 50, 70, 80, 0, 100, 0, 0 };
        run_one("[sp]\nSizeX=3\nSizeY=3\nNbChannels=3\n[sp.Transformation-1]\n"
                "Type=SliceExtraction\nWidth=2\nHeight=2\nOffsetY=1\n", ds, QC_SPLIT_TEST,
                want, 3, 2, 2);
    }
    {
        static const float want[] = { 5, 50, 100 };
        run_one("[sp]\nSizeX=3\nSizeY=3\nNbChannels=3\n[sp.Transformation-1]\nType=PadCrop\n"
                "Width=1\nHeight=1\n", ds,
                QC_SPLIT_TEST, want, 3, 1, 1);
    }
    {
        static const float want[] = { 6, 70, 0 };   /* centre pixel: 5+1, 50*1.4, 100*0 */
        static const char text[] = "[sp]\nSizeX=3\nSizeY=3\nNbChannels=3\n"
                                   "[sp.Transformation-1]\nType=PadCrop\nWidth=1\nHeight=1\n"
                                   "[sp.Transformation-2]\nType=RangeAffine\n"
                                   "FirstOperator=Plus\nFirstValue=1 0 0\n"
                                   "SecondOperator=Multiplies\nSecondValue=1, 1.4, 0\n";
        run_one(text, ds, QC_SPLIT_TEST, want, 3, 1, 1);
    }
    {
        /* Y = 0.299 R + 0.587 G + 0.114 B at the centre: 0.299*5 + 0.587*50 + 0.114*100 */
        static const float want[] = { 0.299f * 5 + 0.587f * 50 + 0.114f * 100 };
        run_one("[sp]\nSizeX=3\nSizeY=3\nNbChannels=3\n[sp.Transformation-1]\nType=PadCrop\n"
                "Width=1\nHeight=1\n"
                "[sp.Transformation-2]\nType=ColorSpace\nColorSpace=Gray\n", ds, QC_SPLIT_TEST,
                want, 1, 1, 1);
    }
    /* Interpolation=LinearAntialias, 3x3 -> 1x1 (PIL BILINEAR): scale 3,
     * centre 1.5, taps 0..2 with weights 1 - |j - 1|/3 = 2/3, 1, 2/3, over
     * 7/3: 2/7, 3/7, 2/7 per axis; R and G are affine (centre value), B is
     * 100 at the centre only: 100·(3/7)² = 900/49.  Plain Linear: the centre. */
    {
        static const float aa[] = { 5, 50, 900.0f / 49.0f }, lin[] = { 5, 50, 100 };
        run_one("[sp]\nSizeX=3\nSizeY=3\nNbChannels=3\n[sp.Transformation-1]\nType=Rescale\n"
                "Width=1\nHeight=1\nInterpolation=LinearAntialias\n",
                ds, QC_SPLIT_TEST, aa, 3, 1, 1);
        run_one("[sp]\nSizeX=3\nSizeY=3\nNbChannels=3\n[sp.Transformation-1]\nType=Rescale\n"
                "Width=1\nHeight=1\n",
                ds, QC_SPLIT_TEST, lin, 3, 1, 1);
    }
    {
        static const float want[] = { 100, 50, 5 };
        run_one("[sp]\nSizeX=3\nSizeY=3\nNbChannels=3\n[sp.Transformation-1]\nType=PadCrop\n"
                "Width=1\nHeight=1\n"
                "[sp.Transformation-2]\nType=ColorSpace\nColorSpace=BGR\n", ds, QC_SPLIT_TEST,
                want, 3, 1, 1);
    }
    qc_dataset_free(ds);
}
END_TEST

START_TEST(test_transform_errors)
{
    struct qc_data_cfg *cfg;
    /* NbChannels disagrees with the data (MNIST is 1 channel) */
    cfg = cfg_from("[database]\nType=MNIST_IDX_Database\nDataPath=/x\n[sp]\nNbChannels=3\n",
                   QC_ERR_DATA);
    ck_assert_ptr_null(cfg);
    /* size disagrees without a resize */
    cfg = cfg_from("[database]\nType=CIFAR10_Database\nDataPath=/x\n[sp]\nSizeX=28\n",
                   QC_ERR_DATA);
    ck_assert_ptr_null(cfg);
    /* window outside the image */
    cfg = cfg_from("[database]\nType=MNIST_IDX_Database\n[sp.Transformation-1]\n"
                   "Type=SliceExtraction\nWidth=20\nHeight=20\nOffsetX=10\n", QC_ERR_DATA);
    /* per-channel values for the wrong channel count */
    cfg = cfg_from("[database]\nType=MNIST_IDX_Database\n[sp.Transformation-1]\n"
                   "Type=RangeAffine\nFirstOperator=Minus\nFirstValue=1 2 3\n", QC_ERR_DATA);
    /* learn and test paths must agree */
    cfg = cfg_from("[database]\nType=MNIST_IDX_Database\n[sp.Transformation-1]\n"
                   "Type=PadCrop\nWidth=32\nHeight=32\nApplyTo=LearnOnly\n", QC_ERR_DATA);
    /* missing Width */
    cfg = cfg_from("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=Rescale\nHeight=3\n",
                   QC_ERR_RECIPE);
    /* bad values of the new keys: one error naming the line, at load time */
    {
        static const char *const bad[] = {
            "[sp.Transformation-1]\nType=Rescale\nWidth=3\nHeight=3\nInterpolation=Cubic\n",
            "[sp.Transformation-1]\nType=PadCrop\nWidth=3\nHeight=3\nBorderType=Mirror\n",
            "[sp.Transformation-1]\nType=Flip\nHorizontalFlip=1\nApplyTo=Learn\n",
            "[sp.Transformation-1]\nType=PadCrop\nWidth=3\nHeight=3\nCropRounding=Up\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct qc_recipe *r = NULL;
            ck_assert_int_eq(qc_recipe_load_string(bad[i], "d.ini", false, &r), QC_ERR_RECIPE);
            ck_assert_ptr_null(r);
        }
    }
    /* AdditiveWH=1 that crops to nothing; a constant border with 2 values for 1 channel */
    cfg = cfg_from("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=PadCrop\nWidth=-2\n"
                   "Height=0\nAdditiveWH=1\n",
                   QC_ERR_DATA);
    cfg = cfg_from("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=PadCrop\nWidth=3\n"
                   "Height=3\nBorderType=ConstantBorder\nBorderValue=1 2\n",
                   QC_ERR_DATA);
    /* a random transformation without a generator */
    cfg = cfg_from("[sp]\nSizeX=2\nSizeY=2\n[sp.Transformation-1]\nType=Flip\n"
                   "RandomHorizontalFlip=1\n", QC_OK);
    static const uint8_t px[] = { 0, 4, 8, 12 };
    struct qc_dataset *ds = one_image(1, 2, 2, px);
    float x[4];
    int64_t idx = 0;
    ck_assert_int_eq(qc_data_batch(cfg, ds, QC_SPLIT_LEARN, &idx, 1, NULL, x, NULL),
                     QC_ERR_INVAL);
    idx = 1;
    uint64_t seed = 3;
    ck_assert_int_eq(qc_data_batch(cfg, ds, QC_SPLIT_LEARN, &idx, 1, &seed, x, NULL), QC_ERR_INVAL);
    qc_data_cfg_free(cfg);
    qc_dataset_free(ds);
}
END_TEST

START_TEST(test_random_repeatable)
{
    static const char text[] =
        "[sp]\nSizeX=3\nSizeY=3\nBatchSize=8\n"
        "[sp.Transformation-1]\nType=PadCrop\nWidth=6\nHeight=6\n"
        "[sp.OnTheFlyTransformation-1]\nType=RandomResizeCrop\nWidth=4\nHeight=4\n"
        "ScaleMin=0.3\nScaleMax=1\n"
        "[sp.OnTheFlyTransformation-2]\nType=SliceExtraction\nWidth=3\nHeight=3\n"
        "RandomOffsetX=1\nRandomOffsetY=1\n"
        "[sp.OnTheFlyTransformation-3]\nType=Flip\nRandomHorizontalFlip=1\n"
        "RandomVerticalFlip=1\n";
    uint8_t px[5 * 4 * 4];
    for (int i = 0; i < 5 * 16; i++)
        px[i] = (uint8_t)(i * 7);
    struct qc_dataset *ds = calloc(1, sizeof(*ds));
    *ds = (struct qc_dataset){ .n = 5, .c = 1, .h = 3, .w = 3, .n_classes = 10 };
    ds->pixels = qc_malloc(5 * 9);
    ds->labels = qc_calloc(5, sizeof(int32_t));
    memcpy(ds->pixels, px, 5 * 9);
    struct qc_data_cfg *cfg = cfg_from(text, QC_OK);
    ck_assert_int_eq(qc_data_cfg_batch(cfg), 8);
    int64_t idx[8] = { 0, 1, 2, 3, 4, 0, 1, 2 };
    float a[8 * 9], b[8 * 9], c[8 * 9];
    uint64_t s1 = 99, s2 = 99, s3 = 100;
    ck_assert_int_eq(qc_data_batch(cfg, ds, QC_SPLIT_LEARN, idx, 8, &s1, a, NULL), QC_OK);
    ck_assert_int_eq(qc_data_batch(cfg, ds, QC_SPLIT_LEARN, idx, 8, &s2, b, NULL), QC_OK);
    ck_assert_int_eq(qc_data_batch(cfg, ds, QC_SPLIT_LEARN, idx, 8, &s3, c, NULL), QC_OK);
    ck_assert_int_eq(memcmp(a, b, sizeof(a)), 0);
    ck_assert_int_ne(memcmp(a, c, sizeof(a)), 0);
    /* per-image streams: an image draws the same at any place in a batch
     * and alone (idx[5..7] repeat idx[0..2]) */
    ck_assert_int_eq(memcmp(a, a + 5 * 9, 3 * 9 * sizeof(float)), 0);
    float one[9];
    int64_t k = 3;
    ck_assert_int_eq(qc_data_batch(cfg, ds, QC_SPLIT_LEARN, &k, 1, &s1, one, NULL), QC_OK);
    ck_assert_int_eq(memcmp(one, a + 3 * 9, sizeof(one)), 0);
    for (int i = 0; i < 8 * 9; i++)
        ck_assert(a[i] >= 0.0f && a[i] <= 255.0f);
    qc_data_cfg_free(cfg);
    qc_dataset_free(ds);
}
END_TEST

START_TEST(test_load_from_recipe)
{
    /* a directory with gzipped train files and plain t10k files */
    char dir[] = "/tmp/qc_data_XXXXXX", p[512], text[1024];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    uint8_t im[16 + 10 * 28 * 28], lb[8 + 10];
    size_t ni = make_idx_images(im, 0x803, 10, 28, 28, 0);
    size_t nl = make_idx_labels(lb, 10);
    snprintf(p, sizeof(p), "%s/train-images-idx3-ubyte.gz", dir);
    write_gz(p, im, ni);
    snprintf(p, sizeof(p), "%s/train-labels-idx1-ubyte.gz", dir);
    write_gz(p, lb, nl);
    snprintf(p, sizeof(p), "%s/t10k-images-idx3-ubyte", dir);
    write_file(p, im, 16 + 4 * 28 * 28);
    im[7] = 4;    /* count 4 */
    write_file(p, im, 16 + 4 * 28 * 28);
    lb[7] = 4;
    snprintf(p, sizeof(p), "%s/t10k-labels-idx1-ubyte", dir);
    write_file(p, lb, 8 + 4);
    snprintf(text, sizeof(text), "Seed=5\n[database]\nType=MNIST_IDX_Database\nDataPath=%s\n"
             "Validation=0.2\n[sp]\nBatchSize=3\n[sp.Transformation-1]\nType=RangeAffine\n"
             "FirstOperator=Divides\nFirstValue=255\n", dir);
    struct qc_recipe *r = NULL;
    struct qc_data_cfg *cfg = NULL;
    struct qc_dataset *learn = NULL, *val = NULL, *test = NULL;
    ck_assert_int_eq(qc_recipe_load_string(text, "d.ini", false, &r), QC_OK);
    ck_assert_int_eq(qc_data_cfg_from_recipe(r, &cfg), QC_OK);
    int c, h, w;
    qc_data_cfg_geometry(cfg, &c, &h, &w);
    ck_assert_int_eq(c * 1000 + h * 10 + w / 28, 1281);
    ck_assert_int_eq(qc_data_cfg_batch(cfg), 3);
    ck_assert_int_eq(qc_data_load(cfg, QC_SPLIT_LEARN, &learn), QC_OK);
    ck_assert_int_eq(qc_data_load(cfg, QC_SPLIT_VALIDATION, &val), QC_OK);
    ck_assert_int_eq(qc_data_load(cfg, QC_SPLIT_TEST, &test), QC_OK);
    ck_assert_int_eq(learn->n, 8);
    ck_assert_int_eq(val->n, 2);
    ck_assert_int_eq(test->n, 4);
    ck_assert_int_eq(val->labels[0], 8);    /* the last 20% */
    ck_assert_int_eq(val->labels[1], 9);
    ck_assert_int_eq(learn->n_classes, 10);
    ck_assert_int_eq(val->pixels[0], (8 * 784) % 256);
    float x[3 * 784];
    int32_t labels[3];
    int64_t idx[3] = { 0, 1, 0 };
    ck_assert_int_eq(qc_data_batch(cfg, val, QC_SPLIT_VALIDATION, idx, 3, NULL, x, labels),
                     QC_OK);
    ck_assert_int_eq(labels[1], 9);
    ck_assert_float_eq_tol(x[1], (float)((8 * 784 + 1) % 256) / 255.0f, 1e-6f);
    ck_assert_float_eq_tol(x[784 + 5], (float)((9 * 784 + 5) % 256) / 255.0f, 1e-6f);
    qc_dataset_free(learn);
    qc_dataset_free(val);
    qc_dataset_free(test);
    qc_data_cfg_free(cfg);
    qc_recipe_free(r);
    /* missing files name the path */
    snprintf(text, sizeof(text), "[database]\nType=CIFAR10_Database\nDataPath=%s\n", dir);
    ck_assert_int_eq(qc_recipe_load_string(text, "d.ini", false, &r), QC_OK);
    ck_assert_int_eq(qc_data_cfg_from_recipe(r, &cfg), QC_OK);
    ck_assert_int_eq(qc_data_load(cfg, QC_SPLIT_TEST, &test), QC_ERR_DATA);
    ck_assert_ptr_null(test);
    qc_data_cfg_free(cfg);
    qc_recipe_free(r);
    /* CIFAR-10 under cifar-10-batches-bin/ */
    static uint8_t rec[2 * 3073];
    rec[0] = 3;
    rec[3073] = 4;
    snprintf(p, sizeof(p), "%s/cifar-10-batches-bin", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    const char *names[] = { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                            "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin" };
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof(p), "%s/cifar-10-batches-bin/%s", dir, names[i]);
        write_file(p, rec, sizeof(rec));
    }
    ck_assert_int_eq(qc_recipe_load_string(text, "d.ini", false, &r), QC_OK);
    ck_assert_int_eq(qc_data_cfg_from_recipe(r, &cfg), QC_OK);
    ck_assert_int_eq(qc_data_load(cfg, QC_SPLIT_LEARN, &learn), QC_OK);
    ck_assert_int_eq(qc_data_load(cfg, QC_SPLIT_TEST, &test), QC_OK);
    ck_assert_int_eq(learn->n, 10);
    ck_assert_int_eq(test->n, 2);
    ck_assert_int_eq(test->labels[1], 4);
    qc_dataset_free(learn);
    qc_dataset_free(test);
    qc_data_cfg_free(cfg);
    qc_recipe_free(r);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Loads `text`; expects the recipe load to give want_load and, when that is
 * QC_OK, qc_data_cfg_from_recipe to give want_cfg; stderr must then be one
 * line containing msg. */
static void expect_recipe_error(const char *text, enum qc_status want_load,
                                enum qc_status want_cfg, const char *msg)
{
    char path[256], err[1024];
    struct qc_recipe *r = NULL;
    struct qc_data_cfg *cfg = NULL;
    qc_test_tmpfile(path, sizeof(path), "", 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_ptr_nonnull(freopen(path, "w", stderr));
    enum qc_status st = qc_recipe_load_string(text, "s.ini", false, &r);
    enum qc_status st2 = st == QC_OK ? qc_data_cfg_from_recipe(r, &cfg) : QC_OK;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    size_t n = read_file(path, (uint8_t *)err, sizeof(err) - 1);
    err[n] = '\0';
    unlink(path);
    qc_data_cfg_free(cfg);
    qc_recipe_free(r);
    ck_assert_int_eq(st, want_load);
    if (want_load == QC_OK)
        ck_assert_int_eq(st2, want_cfg);
    ck_assert_msg(strstr(err, msg) != NULL, "expected '%s' in '%s'", msg, err);
    ck_assert_msg(n > 0 && strchr(err, '\n') == err + n - 1, "not one line: '%s'", err);
}

/* Learn, validation and test splits of a synthetic recipe. */
static void synth_sets(const char *text, struct qc_data_cfg **cfg, struct qc_dataset **learn,
                       struct qc_dataset **val, struct qc_dataset **test)
{
    struct qc_recipe *r = NULL;
    ck_assert_int_eq(qc_recipe_load_string(text, "s.ini", false, &r), QC_OK);
    ck_assert_int_eq(qc_data_cfg_from_recipe(r, cfg), QC_OK);
    ck_assert_int_eq(qc_data_load(*cfg, QC_SPLIT_LEARN, learn), QC_OK);
    ck_assert_int_eq(qc_data_load(*cfg, QC_SPLIT_VALIDATION, val), QC_OK);
    ck_assert_int_eq(qc_data_load(*cfg, QC_SPLIT_TEST, test), QC_OK);
    qc_recipe_free(r);
}

static void free_sets(struct qc_data_cfg *cfg, struct qc_dataset *a, struct qc_dataset *b,
                      struct qc_dataset *c)
{
    qc_dataset_free(a);
    qc_dataset_free(b);
    qc_dataset_free(c);
    qc_data_cfg_free(cfg);
}

START_TEST(test_synthetic)
{
    static const char text[] = "Seed=7\n[database]\nType=Synthetic\nNbClasses=5\nNbLearn=300\n"
                               "NbTest=70\nValidation=0.1\n[sp]\nSizeX=6\nSizeY=4\nBatchSize=8\n";
    struct qc_data_cfg *cfg, *cfg2, *cfg3, *cfg4;
    struct qc_dataset *learn, *val, *test, *l2, *v2, *t2, *l3, *v3, *t3, *l4, *v4, *t4;
    synth_sets(text, &cfg, &learn, &val, &test);
    int c, h, w;
    qc_data_cfg_geometry(cfg, &c, &h, &w);
    ck_assert_int_eq(c, 3);                  /* NbChannels defaults to 3 */
    ck_assert_int_eq(h, 4);
    ck_assert_int_eq(w, 6);
    ck_assert_int_eq(qc_data_cfg_batch(cfg), 8);
    ck_assert_int_eq(learn->n, 270);
    ck_assert_int_eq(val->n, 30);
    ck_assert_int_eq(test->n, 70);
    ck_assert_int_eq(learn->n_classes, 5);
    int count[5] = { 0 };
    for (int64_t i = 0; i < learn->n; i++) {
        ck_assert(learn->labels[i] >= 0 && learn->labels[i] < 5);
        count[learn->labels[i]]++;
    }
    for (int k = 0; k < 5; k++)     /* 54 expected per class */
        ck_assert_msg(count[k] > 20 && count[k] < 100, "class %d: %d images", k, count[k]);
    for (int64_t i = 0; i < test->n; i++)
        ck_assert(test->labels[i] >= 0 && test->labels[i] < 5);
    for (int i = 0; i < 64 * 72; i++)
        ck_assert(learn->pixels[i] < 192);

    /* the same recipe gives the same bytes; another seed other bytes; without
     * Validation the learn set is the whole file, whose tail is the validation set */
    synth_sets(text, &cfg2, &l2, &v2, &t2);
    ck_assert_int_eq(memcmp(learn->pixels, l2->pixels, 64 * 72), 0);
    ck_assert_int_eq(memcmp(learn->labels, l2->labels, 270 * sizeof(int32_t)), 0);
    ck_assert_int_eq(memcmp(test->labels, t2->labels, 70 * sizeof(int32_t)), 0);
    ck_assert_int_ne(memcmp(learn->labels, test->labels, 70 * sizeof(int32_t)), 0);
    setenv("N2D2_DATA", "/nowhere", 1);      /* neither it nor DataPath applies */
    synth_sets("Seed=8\n[database]\nType=Synthetic\nNbClasses=5\nNbLearn=300\n"
               "DataPath=/nowhere\n[sp]\nSizeX=6\nSizeY=4\n", &cfg3, &l3, &v3, &t3);
    unsetenv("N2D2_DATA");
    ck_assert_int_ne(memcmp(learn->pixels, l3->pixels, 64 * 72), 0);
    ck_assert_int_eq(t3->n, 10000);          /* NbTest default */
    synth_sets("Seed=7\n[database]\nType=Synthetic\nNbClasses=5\nNbLearn=300\nNbTest=70\n"
               "[sp]\nSizeX=6\nSizeY=4\n", &cfg4, &l4, &v4, &t4);
    ck_assert_int_eq(l4->n, 300);
    ck_assert_int_eq(v4->n, 0);
    ck_assert_int_eq(memcmp(l4->labels, learn->labels, 270 * sizeof(int32_t)), 0);
    ck_assert_int_eq(memcmp(l4->labels + 270, val->labels, 30 * sizeof(int32_t)), 0);

    /* batch pixels: bank image i mod 64 plus 64 * label / 5 */
    int64_t idx[3] = { 1, 269, 100 };
    float x[3 * 72], xv[72];
    int32_t lab[3];
    ck_assert_int_eq(qc_data_batch(cfg, learn, QC_SPLIT_LEARN, idx, 3, NULL, x, lab), QC_OK);
    for (int b = 0; b < 3; b++) {
        ck_assert_int_eq(lab[b], learn->labels[idx[b]]);
        for (int i = 0; i < 72; i++)
            ck_assert_float_eq_tol(x[b * 72 + i],
                                   learn->pixels[(idx[b] % 64) * 72 + i] + 12.8f * lab[b],
                                   1e-4f);
    }
    /* validation image 2 is image 272 of the file, bank image 272 mod 64 = 16 */
    idx[0] = 2;
    ck_assert_int_eq(qc_data_batch(cfg, val, QC_SPLIT_VALIDATION, idx, 1, NULL, xv, lab), QC_OK);
    ck_assert_int_eq(lab[0], l4->labels[272]);
    for (int i = 0; i < 72; i++)
        ck_assert_float_eq_tol(xv[i], learn->pixels[16 * 72 + i] + 12.8f * lab[0], 1e-4f);
    free_sets(cfg, learn, val, test);
    free_sets(cfg2, l2, v2, t2);
    free_sets(cfg3, l3, v3, t3);
    free_sets(cfg4, l4, v4, t4);

    /* wrong values: one line each, naming the key */
    expect_recipe_error("[database]\nType=Synthetic\nNbClasses=1\n[sp]\nSizeX=4\nSizeY=4\n",
                        QC_ERR_RECIPE, QC_OK, "NbClasses");
    expect_recipe_error("[database]\nType=Synthetic\nNbLearn=many\n[sp]\nSizeX=4\nSizeY=4\n",
                        QC_ERR_RECIPE, QC_OK, "NbLearn");
    expect_recipe_error("[database]\nType=Synthetic\n[sp]\nSizeX=4\n", QC_OK, QC_ERR_RECIPE,
                        "Type=Synthetic: [sp] must give SizeX and SizeY");
    expect_recipe_error("[database]\nType=MNIST_IDX_Database\nNbTest=5\n", QC_OK,
                        QC_ERR_RECIPE, "s.ini:3: [database] NbTest applies only to "
                        "Type=Synthetic");
    expect_recipe_error("[database]\nType=Synthetc\n", QC_ERR_RECIPE, QC_OK, "Synthetic");
}
END_TEST

START_TEST(test_fashion_mnist)
{
    if (access(FASHION "/t10k-images-idx3-ubyte.gz", R_OK) != 0)
        return;
    struct qc_recipe *r = NULL;
    struct qc_data_cfg *cfg = NULL;
    struct qc_dataset *ds = NULL;
    ck_assert_int_eq(qc_recipe_load_string("[database]\nType=MNIST_IDX_Database\n"
                                           "DataPath=" FASHION "\n", "f.ini", false, &r),
                     QC_OK);
    ck_assert_int_eq(qc_data_cfg_from_recipe(r, &cfg), QC_OK);
    ck_assert_int_eq(qc_data_load(cfg, QC_SPLIT_TEST, &ds), QC_OK);
    ck_assert_int_eq(ds->n, 10000);
    ck_assert_int_eq(ds->c, 1);
    ck_assert_int_eq(ds->h, 28);
    ck_assert_int_eq(ds->w, 28);
    ck_assert_int_eq(ds->n_classes, 10);
    int count[10] = { 0 };
    for (int64_t i = 0; i < ds->n; i++) {
        ck_assert(ds->labels[i] >= 0 && ds->labels[i] < 10);
        count[ds->labels[i]]++;
    }
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(count[k], 1000);
    ck_assert_int_eq(ds->labels[0], 9);   /* ankle boot */
    long sum = 0;
    for (int i = 0; i < 784; i++)
        sum += ds->pixels[i];
    ck_assert_int_eq(sum, 33456);         /* python3 gzip oracle */
    qc_dataset_free(ds);
    qc_data_cfg_free(cfg);
    qc_recipe_free(r);
}
END_TEST

/* A PNG written by libpng (an encoder independent of the reader) decodes to
 * its samples; JPEG to its size and roughly its pixels (lossy); every
 * truncation of either, and a bad signature, is QC_ERR_DATA (never a crash);
 * the conversions give the formulas of image.h. */
START_TEST(test_image_decoders)
{
    enum { W = 7, H = 5 };
    uint8_t px[H * W * 3];
    for (int i = 0; i < H * W * 3; i++)
        px[i] = (uint8_t)(i * 37 + 11);
    png_image pi;
    memset(&pi, 0, sizeof(pi));
    pi.version = PNG_IMAGE_VERSION;
    pi.width = W;
    pi.height = H;
    pi.format = PNG_FORMAT_RGB;
    png_alloc_size_t png_len = 0;
    ck_assert(png_image_write_to_memory(&pi, NULL, &png_len, 0, px, 0, NULL));
    uint8_t *png = malloc(png_len);
    ck_assert_ptr_nonnull(png);
    ck_assert(png_image_write_to_memory(&pi, png, &png_len, 0, px, 0, NULL));
    struct qc_image img;
    ck_assert_int_eq(qc_image_decode_mem(png, png_len, "t.png", false, &img), QC_OK);
    ck_assert_int_eq(img.w, W);
    ck_assert_int_eq(img.h, H);
    ck_assert_int_eq(img.c, 3);
    ck_assert_int_eq(img.bits, 8);
    ck_assert_mem_eq(img.data, px, sizeof(px));
    /* conversions: RGB kept (CHW), gray = OpenCV's fixed-point luma */
    float rgb[3 * H * W], gray[H * W];
    qc_image_to_chw(&img, 3, rgb);
    qc_image_to_chw(&img, 1, gray);
    for (int p = 0; p < H * W; p++) {
        int r = px[3 * p], g = px[3 * p + 1], b = px[3 * p + 2];
        for (int ch = 0; ch < 3; ch++)
            ck_assert_float_eq(rgb[ch * H * W + p], (float)px[3 * p + ch]);
        ck_assert_float_eq(gray[p], (float)((r * 4899 + g * 9617 + b * 1868 + 8192) >> 14));
    }
    qc_image_free(&img);
    for (size_t n = 0; n < png_len; n += 5) {
        ck_assert_int_eq(qc_image_decode_mem(png, n, "t.png", true, &img), QC_ERR_DATA);
        ck_assert_ptr_null(img.data);
    }
    free(png);

    /* 16-bit gray + alpha: v * 255 / 65535, alpha dropped */
    struct qc_image g16 = { .w = 2, .h = 1, .c = 2, .bits = 16 };
    uint16_t s16[4] = { 65535, 0, 257, 65535 };
    g16.data = s16;
    float v16[3 * 2];
    qc_image_to_chw(&g16, 3, v16);
    for (int ch = 0; ch < 3; ch++) {
        ck_assert_float_eq_tol(v16[ch * 2], 255.0f, 1e-4f);
        ck_assert_float_eq_tol(v16[ch * 2 + 1], 1.0f, 1e-6f);
    }

    uint8_t big[16 * 24 * 3];
    for (int i = 0; i < (int)sizeof(big); i++)
        big[i] = (uint8_t)(128 + (i % 3) * 20);
    tjhandle tj = tjInitCompress();
    ck_assert_ptr_nonnull(tj);
    unsigned char *jpg = NULL;
    unsigned long jpg_len = 0;
    ck_assert_int_eq(tjCompress2(tj, big, 24, 0, 16, TJPF_RGB, &jpg, &jpg_len, TJSAMP_444, 95, 0),
                     0);
    tjDestroy(tj);
    ck_assert_int_eq(qc_image_decode_mem(jpg, jpg_len, "t.jpg", false, &img), QC_OK);
    ck_assert_int_eq(img.w, 24);
    ck_assert_int_eq(img.h, 16);
    ck_assert_int_eq(img.c, 3);
    for (int i = 0; i < (int)sizeof(big); i++)
        ck_assert_int_le(abs(((uint8_t *)img.data)[i] - big[i]), 3);
    qc_image_free(&img);
    for (size_t n = 0; n + 2 < jpg_len; n += 11)
        ck_assert_int_eq(qc_image_decode_mem(jpg, n, "t.jpg", true, &img), QC_ERR_DATA);
    tjFree(jpg);
    const uint8_t junk[] = "GIF89a....";
    ck_assert_int_eq(qc_image_decode_mem(junk, sizeof(junk), "t.gif", true, &img), QC_ERR_DATA);
}
END_TEST

/* The decoder pool (data/prefetch.h) against the serial qc_data_batch on a
 * PNG folder with random transformations: the same bytes and labels at 1
 * and 4 threads, batches queued ahead as the trainer queues them; a corrupt
 * image is the taking call's QC_ERR_DATA, and the pool frees with batches
 * still queued (the ASan build checks for leaks). */
START_TEST(test_prefetch_pool)
{
    char dir[] = "/tmp/qc_pool_XXXXXX", path[512], text[1024];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    enum { N = 24, B = 4, NB = N / B };
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof(path), "%s/c%d", dir, k);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        for (int i = 0; i < N / 2; i++) {
            int w = 9 + (i * 5 + k) % 7, h = 8 + (i * 3 + 2 * k) % 6;
            uint8_t px[16 * 16 * 3];
            for (int j = 0; j < w * h * 3; j++)
                px[j] = (uint8_t)(j * 29 + i * 7 + k * 101);
            png_image pi;
            memset(&pi, 0, sizeof(pi));
            pi.version = PNG_IMAGE_VERSION;
            pi.width = (png_uint_32)w;
            pi.height = (png_uint_32)h;
            pi.format = PNG_FORMAT_RGB;
            snprintf(path, sizeof(path), "%s/c%d/%02d.png", dir, k, i);
            ck_assert(png_image_write_to_file(&pi, path, 0, px, 0, NULL));
        }
    }
    snprintf(text, sizeof(text),
             "[database]\nType=DIR_Database\nDataPath=%s\nLearn=1.0\n"
             "[sp]\nSizeX=6\nSizeY=6\nNbChannels=3\nBatchSize=%d\n"
             "[sp.Transformation-1]\nType=RandomResizeCropTransformation\nWidth=8\nHeight=8\n"
             "ScaleMin=0.3\nScaleMax=1\n"
             "[sp.Transformation-2]\nType=SliceExtractionTransformation\nWidth=6\nHeight=6\n"
             "RandomOffsetX=1\nRandomOffsetY=1\n"
             "[sp.Transformation-3]\nType=FlipTransformation\nRandomHorizontalFlip=1\n",
             dir, (int)B);
    struct qc_data_cfg *cfg = cfg_from(text, QC_OK);
    struct qc_dataset *ds = NULL;
    ck_assert_int_eq(qc_data_load(cfg, QC_SPLIT_LEARN, &ds), QC_OK);
    ck_assert_int_eq(ds->n, N);
    int64_t idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = (i * 7) % N; /* a permutation: 7 and 24 are coprime */
    enum { E = 3 * 6 * 6 };
    static float want[N * E], got[B * E];
    int32_t want_lab[N], lab[B];
    uint64_t seed = 77;
    for (int b = 0; b < NB; b++)
        ck_assert_int_eq(qc_data_batch(cfg, ds, QC_SPLIT_LEARN, idx + b * B, B, &seed,
                                       want + b * B * E, want_lab + b * B),
                         QC_OK);
    for (int threads = 1; threads <= 4; threads += 3) {
        struct qc_prefetch *pf = NULL;
        ck_assert_int_eq(qc_prefetch_new(cfg, ds, QC_SPLIT_LEARN, B, threads, 3, &pf), QC_OK);
        int next = 0;
        for (int b = 0; b < NB; b++) {
            while (next < NB && qc_prefetch_queued(pf) < 3)
                ck_assert_int_eq(qc_prefetch_submit(pf, idx + next++ * B, &seed), QC_OK);
            if (b == 0) /* the queue is full */
                ck_assert_int_eq(qc_prefetch_submit(pf, idx, &seed), QC_ERR_INTERNAL);
            ck_assert_int_eq(qc_prefetch_take(pf, got, lab), QC_OK);
            ck_assert_msg(memcmp(got, want + b * B * E, sizeof(got)) == 0,
                          "%d threads, batch %d differs from qc_data_batch", threads, b);
            ck_assert_int_eq(memcmp(lab, want_lab + b * B, sizeof(lab)), 0);
        }
        ck_assert_int_eq(qc_prefetch_take(pf, got, lab), QC_ERR_INTERNAL); /* empty */
        /* cancelled and freed with batches queued */
        ck_assert_int_eq(qc_prefetch_submit(pf, idx, &seed), QC_OK);
        ck_assert_int_eq(qc_prefetch_submit(pf, idx + B, &seed), QC_OK);
        qc_prefetch_free(pf);
    }
    /* a corrupt image (the first of class 1, position 2 of the second batch) */
    snprintf(path, sizeof(path), "%s/c1/00.png", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("\x89PNG\r\n\x1a\nshort", f);
    fclose(f);
    struct qc_prefetch *pf = NULL;
    ck_assert_int_eq(qc_prefetch_new(cfg, ds, QC_SPLIT_LEARN, B, 3, 3, &pf), QC_OK);
    int64_t bad[2 * B] = { 0, 1, 2, 3, 4, 5, N / 2, 6 };
    ck_assert_int_eq(qc_prefetch_submit(pf, bad, &seed), QC_OK);
    ck_assert_int_eq(qc_prefetch_submit(pf, bad + B, &seed), QC_OK);
    ck_assert_int_eq(qc_prefetch_submit(pf, bad + B, &seed), QC_OK);
    ck_assert_int_eq(qc_prefetch_take(pf, got, lab), QC_OK);
    ck_assert_int_eq(qc_prefetch_take(pf, got, lab), QC_ERR_DATA);
    qc_prefetch_free(pf); /* one batch still queued */
    qc_dataset_free(ds);
    qc_data_cfg_free(cfg);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N / 2; i++) {
            snprintf(path, sizeof(path), "%s/c%d/%02d.png", dir, k, i);
            unlink(path);
        }
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof(path), "%s/c%d", dir, k);
        rmdir(path);
    }
    rmdir(dir);
}
END_TEST

Suite *qc_suite_data(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_idx_plain_and_gz);
    tcase_add_test(tc, test_idx_corrupt_gz);
    tcase_add_test(tc, test_cifar_records);
    tcase_add_test(tc, test_rng);
    tcase_add_test(tc, test_transform_values);
    tcase_add_test(tc, test_transform_errors);
    tcase_add_test(tc, test_random_repeatable);
    tcase_add_test(tc, test_load_from_recipe);
    tcase_add_test(tc, test_synthetic);
    tcase_add_test(tc, test_fashion_mnist);
    tcase_add_test(tc, test_image_decoders);
    tcase_add_test(tc, test_prefetch_pool);
    suite_add_tcase(s, tc);
    return s;
}
