/*
 * transform.h - image transformations of the input pipeline (qatconv-recipe(5), DATA SECTIONS).
 *
 * A struct qc_transform is one recipe section [sp.Transformation-N] or
 * [sp.OnTheFlyTransformation-N] parsed once (qc_transform_from_recipe).  It
 * maps a float CHW image (c x h x w) to another (qc_transform_shape gives the
 * output shape, checking the transformation fits the input) without
 * allocating: qc_transform_apply reads src and writes dst, which must not
 * overlap and must hold the output shape.  Random choices (random flips,
 * random slice offsets, RandomResizeCrop) draw from the caller's qc_rng.
 *
 *   Rescale           resize to Width x Height; KeepAspectRatio=1 scales both
 *                     sides by one ratio, min(W/w, H/h) with ResizeToFit=1 (the
 *                     default: fits inside) or max(...) with ResizeToFit=0 (the
 *                     shorter side becomes the target), so the output size
 *                     follows the image, as N2D2.  Interpolation=Linear
 *                     (OpenCV's INTER_LINEAR: half-pixel centres, edges
 *                     clamped, N2D2's) or LinearAntialias (PIL's BILINEAR: a
 *                     triangle filter widened by the scale when downscaling,
 *                     in float) or LinearAntialiasU8 (the same with PIL's
 *                     8-bit arithmetic: 22-bit fixed-point weights, values
 *                     rounded to 0..255 after each pass; for 0..255 data).
 *   PadCrop           centred pad or crop to Width x Height (AdditiveWH=1:
 *                     adds them to the image size); pad/crop offset
 *                     ceil(d/2) at the top/left as N2D2 (CropRounding=HalfEven:
 *                     torchvision's CenterCrop offset round((h-H)/2)); the
 *                     border is BorderType (N2D2's default MinusOneReflect).
 *   SliceExtraction   Width x Height window at OffsetX/OffsetY, or at a
 *                     uniform random offset (RandomOffsetX/Y, 0 when the
 *                     image is not larger); AllowPadding=1 pads outside.
 *   Flip              Horizontal/VerticalFlip always, Random*Flip with p=1/2.
 *   RangeAffine       v = (v FirstOperator FirstValue) SecondOperator
 *                     SecondValue; values are one number or one per channel;
 *                     Truncate=1 rounds toward zero after.
 *   RandomResizeCrop  random area fraction in [ScaleMin, ScaleMax] and aspect
 *                     ratio log-uniform in [RatioMin, RatioMax] (10 tries,
 *                     then N2D2's fallback: the largest window of a bound
 *                     ratio at the top left), bilinear resize to Width x Height.
 *   ColorSpace        RGB (1 channel is replicated), BGR (swap channels 0/2),
 *                     Gray (luma 0.299 R + 0.587 G + 0.114 B; RGB input).
 */
#ifndef QATCONV_SRC_DATA_TRANSFORM_H
#define QATCONV_SRC_DATA_TRANSFORM_H

#include <stdbool.h>

#include "util/qc.h"

struct qc_recipe;
struct qc_rng;

#define QC_TF_MAX_VALUES 16

enum qc_tf_kind {
    QC_TF_RESCALE = 0,
    QC_TF_PAD_CROP,
    QC_TF_SLICE,
    QC_TF_FLIP,
    QC_TF_RANGE_AFFINE,
    QC_TF_RANDOM_RESIZE_CROP,
    QC_TF_COLOR_SPACE,
    QC_TF_COUNT
};

/* ApplyTo: the splits a transformation acts on (N2D2's StimuliSetMask). */
enum qc_tf_apply {
    QC_TF_APPLY_ALL = 0,
    QC_TF_APPLY_LEARN_ONLY,
    QC_TF_APPLY_VALIDATION_ONLY,
    QC_TF_APPLY_TEST_ONLY,
    QC_TF_APPLY_NO_LEARN,
    QC_TF_APPLY_NO_VALIDATION,
    QC_TF_APPLY_NO_TEST
};

enum qc_tf_interp { QC_TF_INTERP_LINEAR = 0, QC_TF_INTERP_LINEAR_ANTIALIAS, QC_TF_INTERP_PIL_U8 };

/* Pad borders, as OpenCV's (N2D2's BorderType names). */
enum qc_tf_border {
    QC_TF_BORDER_CONSTANT = 0,
    QC_TF_BORDER_REPLICATE,
    QC_TF_BORDER_REFLECT,
    QC_TF_BORDER_WRAP,
    QC_TF_BORDER_REFLECT101,
    QC_TF_BORDER_MEAN
};

enum qc_tf_op { QC_TF_OP_NONE = 0, QC_TF_OP_PLUS, QC_TF_OP_MINUS, QC_TF_OP_MULTIPLIES,
                QC_TF_OP_DIVIDES };

enum qc_tf_color { QC_TF_COLOR_RGB = 0, QC_TF_COLOR_BGR, QC_TF_COLOR_GRAY };

struct qc_transform {
    enum qc_tf_kind  kind;
    enum qc_tf_apply apply_to;
    char             where[160];        /* "file:line [section]" for messages */
    int              width, height;     /* output size (Rescale, PadCrop, ...) */
    bool keep_aspect, resize_to_fit;
    enum qc_tf_interp interp;
    bool additive_wh, crop_half_even, allow_padding, truncate;
    enum qc_tf_border border;
    int n_border_values;
    float border_values[QC_TF_MAX_VALUES];
    int              offset_x, offset_y;
    bool             random_x, random_y;
    bool             hflip, vflip, random_hflip, random_vflip;
    enum qc_tf_op    op[2];
    int              n_values[2];
    float            values[2][QC_TF_MAX_VALUES];
    float            scale_min, scale_max, ratio_min, ratio_max;
    enum qc_tf_color color;
};

/* Parses recipe section `section` (Type and the type's keys, checked by the
 * recipe schema) into *t.  QC_ERR_RECIPE with file:line on a bad value. */
enum qc_status qc_transform_from_recipe(const struct qc_recipe *r, const char *section,
                                        struct qc_transform *t);

/* Output shape for a c x h x w input; QC_ERR_DATA naming the section when
 * the transformation does not fit the input (window outside the image,
 * per-channel values for another channel count, ...). */
enum qc_status qc_transform_shape(const struct qc_transform *t, int c, int h, int w, int *oc,
                                  int *oh, int *ow);

/* The same without the error line (a decoding thread). */
enum qc_status qc_transform_shape_quiet(const struct qc_transform *t, int c, int h, int w, int *oc,
                                        int *oh, int *ow);

/* True when the transformation draws random numbers. */
bool qc_transform_is_random(const struct qc_transform *t);

/* dst = t(src); src is c x h x w (a shape accepted by qc_transform_shape),
 * dst holds the output shape; no overlap.  rng may be NULL only when
 * qc_transform_is_random is false.  QC_ERR_NOMEM when the antialiased
 * resize cannot get its scratch plane (the only kernel that allocates). */
enum qc_status qc_transform_apply(const struct qc_transform *t, const float *src, int c, int h,
                                  int w, float *dst, struct qc_rng *rng);

#endif
