/*
 * transform.c - the image transformations of the input pipeline (see
 * transform.h): recipe parsing, shape checks and the per-image kernels on
 * float CHW planes.  Kernels never allocate (but the antialiased resize,
 * which needs an intermediate plane); the caller (dataset.c) owns the
 * scratch planes.
 */
#include <config.h>

#include "transform.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "recipe/recipe.h"
#include "data.h"

static const char *const tf_type_names[QC_TF_COUNT] = {
    [QC_TF_RESCALE] = "RescaleTransformation",
    [QC_TF_PAD_CROP] = "PadCropTransformation",
    [QC_TF_SLICE] = "SliceExtractionTransformation",
    [QC_TF_FLIP] = "FlipTransformation",
    [QC_TF_RANGE_AFFINE] = "RangeAffineTransformation",
    [QC_TF_RANDOM_RESIZE_CROP] = "RandomResizeCropTransformation",
    [QC_TF_COLOR_SPACE] = "ColorSpaceTransformation",
};

/* ---- recipe parsing ------------------------------------------------------------------------ */

/* Integer key in [lo, INT_MAX/4]; `required`: missing is an error. */
static enum qc_status get_int_from(const struct qc_recipe *r, const char *sec, const char *key,
                                   bool required, int def, int lo, int *out)
{
    char where[256];
    int64_t v;
    if (required && !qc_recipe_has_key(r, sec, key)) {
        qc_log_error("%s: [%s]: missing %s", qc_recipe_where(r, sec, "Type", where,
                     sizeof(where)), sec, key);
        return QC_ERR_RECIPE;
    }
    enum qc_status st = qc_recipe_int(r, sec, key, def, &v);
    if (st != QC_OK)
        return st;
    if (v < lo || v > INT_MAX / 4) {
        qc_log_error("%s: [%s] %s=%lld: out of range", qc_recipe_where(r, sec, key, where,
                     sizeof(where)), sec, key, (long long)v);
        return QC_ERR_RECIPE;
    }
    *out = (int)v;
    return QC_OK;
}

static enum qc_status get_int(const struct qc_recipe *r, const char *sec, const char *key,
                              bool required, int def, int *out)
{
    return get_int_from(r, sec, key, required, def, 0, out);
}

static enum qc_status get_bool(const struct qc_recipe *r, const char *sec, const char *key,
                               bool *out)
{
    int v = 0;
    enum qc_status st = get_int(r, sec, key, false, 0, &v);
    *out = v != 0;
    return st;
}

static enum qc_status get_float(const struct qc_recipe *r, const char *sec, const char *key,
                                double def, float *out)
{
    double v;
    enum qc_status st = qc_recipe_float(r, sec, key, def, &v);
    *out = (float)v;
    return st;
}

static enum qc_tf_op parse_op(const char *s)
{
    if (!s)
        return QC_TF_OP_NONE;
    if (strcmp(s, "Plus") == 0)
        return QC_TF_OP_PLUS;
    if (strcmp(s, "Minus") == 0)
        return QC_TF_OP_MINUS;
    if (strcmp(s, "Multiplies") == 0)
        return QC_TF_OP_MULTIPLIES;
    if (strcmp(s, "Divides") == 0)
        return QC_TF_OP_DIVIDES;
    return QC_TF_OP_NONE;
}

/* A list of 1 to QC_TF_MAX_VALUES numbers (spaces or commas) of key `key`;
 * no_zero: a zero is an error (a divisor). */
static enum qc_status parse_values(const struct qc_recipe *r, const char *sec, const char *key,
                                   const char *vals, bool no_zero, float *out, int *n_out)
{
    char where[256];
    qc_recipe_where(r, sec, key, where, sizeof(where));
    const char *p = vals;
    int n = 0;
    while (*p) {
        char *end;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v)) {
            qc_log_error("%s: [%s] %s=%s: expected numbers", where, sec, key, vals);
            return QC_ERR_RECIPE;
        }
        if (n == QC_TF_MAX_VALUES) {
            qc_log_error("%s: [%s] %s: more than %d values", where, sec, key, QC_TF_MAX_VALUES);
            return QC_ERR_RECIPE;
        }
        if (no_zero && v == 0.0) {
            qc_log_error("%s: [%s] %s: division by zero", where, sec, key);
            return QC_ERR_RECIPE;
        }
        out[n++] = (float)v;
        p = end;
    }
    if (n == 0) {
        qc_log_error("%s: [%s] %s=%s: expected numbers", where, sec, key, vals);
        return QC_ERR_RECIPE;
    }
    *n_out = n;
    return QC_OK;
}

/* Operator key `opk` and value list `valk` into slot i of the affine map. */
static enum qc_status parse_affine(const struct qc_recipe *r, const char *sec, const char *opk,
                                   const char *valk, bool required, struct qc_transform *t, int i)
{
    char where[256];
    const char *op = NULL, *vals = NULL;
    qc_recipe_str(r, sec, opk, NULL, &op);
    qc_recipe_str(r, sec, valk, NULL, &vals);
    if (!op && !vals && !required)
        return QC_OK;
    if (!op || !vals) {
        qc_log_error("%s: [%s]: %s needs both %s and %s",
                     qc_recipe_where(r, sec, op ? opk : valk, where, sizeof(where)), sec,
                     tf_type_names[t->kind], opk, valk);
        return QC_ERR_RECIPE;
    }
    t->op[i] = parse_op(op);
    if (t->op[i] == QC_TF_OP_NONE) {
        qc_log_error("%s: [%s] %s=%s: expected Plus|Minus|Multiplies|Divides",
                     qc_recipe_where(r, sec, opk, where, sizeof(where)), sec, opk, op);
        return QC_ERR_RECIPE;
    }
    return parse_values(r, sec, valk, vals, t->op[i] == QC_TF_OP_DIVIDES, t->values[i],
                        &t->n_values[i]);
}

/* Index of s in names[0..n), -1 when absent. */
static int pick(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (names[i] && strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

/* Enumerated key `key` (default def) among names[0..n) into *out. */
static enum qc_status get_enum(const struct qc_recipe *r, const char *sec, const char *key,
                               const char *const *names, size_t n, int def, int *out)
{
    char where[256];
    const char *v = NULL;
    qc_recipe_str(r, sec, key, NULL, &v);
    *out = def;
    if (!v)
        return QC_OK;
    int i = pick(names, n, v);
    if (i < 0) {
        qc_log_error("%s: [%s] %s=%s: unknown value",
                     qc_recipe_where(r, sec, key, where, sizeof(where)), sec, key, v);
        return QC_ERR_RECIPE;
    }
    *out = i;
    return QC_OK;
}

/* BorderType and BorderValue (PadCrop, SliceExtraction with AllowPadding). */
static enum qc_status parse_border(const struct qc_recipe *r, const char *sec,
                                   struct qc_transform *t)
{
    static const char *const names[] = {
        [QC_TF_BORDER_CONSTANT] = "ConstantBorder",
        [QC_TF_BORDER_REPLICATE] = "ReplicateBorder",
        [QC_TF_BORDER_REFLECT] = "ReflectBorder",
        [QC_TF_BORDER_WRAP] = "WrapBorder",
        [QC_TF_BORDER_REFLECT101] = "MinusOneReflectBorder",
        [QC_TF_BORDER_MEAN] = "MeanBorder",
    };
    int b;
    enum qc_status st = get_enum(r, sec, "BorderType", names, QC_ARRAY_SIZE(names),
                                 QC_TF_BORDER_REFLECT101, &b);
    if (st != QC_OK)
        return st;
    t->border = (enum qc_tf_border)b;
    const char *vals = NULL;
    qc_recipe_str(r, sec, "BorderValue", NULL, &vals);
    if (vals)
        return parse_values(r, sec, "BorderValue", vals, false, t->border_values,
                            &t->n_border_values);
    return QC_OK;
}

enum qc_status qc_transform_from_recipe(const struct qc_recipe *r, const char *sec,
                                        struct qc_transform *t)
{
    enum qc_status st = QC_OK;
    const char *type = NULL, *apply = NULL;
    char where[128];
    memset(t, 0, sizeof(*t));
    qc_recipe_where(r, sec, "Type", where, sizeof(where));
    snprintf(t->where, sizeof(t->where), "%s: [%s]", where, sec);
    qc_recipe_str(r, sec, "Type", NULL, &type);
    int kind = -1;
    for (int k = 0; type && k < QC_TF_COUNT; k++)
        if (strcmp(type, tf_type_names[k]) == 0)
            kind = k;
    if (kind < 0) {
        qc_log_error("%s: unknown transformation Type '%s'", t->where, type ? type : "");
        return QC_ERR_RECIPE;
    }
    t->kind = (enum qc_tf_kind)kind;
    qc_recipe_str(r, sec, "ApplyTo", "All", &apply);
    static const char *const apply_names[] = {
        [QC_TF_APPLY_ALL] = "All",
        [QC_TF_APPLY_LEARN_ONLY] = "LearnOnly",
        [QC_TF_APPLY_VALIDATION_ONLY] = "ValidationOnly",
        [QC_TF_APPLY_TEST_ONLY] = "TestOnly",
        [QC_TF_APPLY_NO_LEARN] = "NoLearn",
        [QC_TF_APPLY_NO_VALIDATION] = "NoValidation",
        [QC_TF_APPLY_NO_TEST] = "NoTest",
    };
    int a = pick(apply_names, QC_ARRAY_SIZE(apply_names), apply);
    if (a < 0) {
        qc_log_error("%s: ApplyTo=%s: expected one of LearnOnly|ValidationOnly|TestOnly|"
                     "NoLearn|NoValidation|NoTest|All",
                     qc_recipe_where(r, sec, "ApplyTo", where, sizeof(where)), apply);
        return QC_ERR_RECIPE;
    }
    t->apply_to = (enum qc_tf_apply)a;
    static const char *const interp_names[] = { "Linear", "LinearAntialias", "LinearAntialiasU8" };
    static const char *const rounding_names[] = { "Default", "HalfEven" };
    int e = 0;
    switch (t->kind) {
    case QC_TF_RESCALE:
        if ((st = get_int(r, sec, "Width", true, 0, &t->width)) != QC_OK ||
            (st = get_int(r, sec, "Height", true, 0, &t->height)) != QC_OK ||
            (st = get_bool(r, sec, "KeepAspectRatio", &t->keep_aspect)) != QC_OK ||
            (st = get_int(r, sec, "ResizeToFit", false, 1, &a)) != QC_OK ||
            (st = get_enum(r, sec, "Interpolation", interp_names, QC_ARRAY_SIZE(interp_names),
                           QC_TF_INTERP_LINEAR, &e)) != QC_OK)
            return st;
        t->resize_to_fit = a != 0;
        t->interp = (enum qc_tf_interp)e;
        break;
    case QC_TF_PAD_CROP: /* AdditiveWH=1: Width and Height may be negative */
        if ((st = get_int_from(r, sec, "Width", true, 0, -65536, &t->width)) != QC_OK ||
            (st = get_int_from(r, sec, "Height", true, 0, -65536, &t->height)) != QC_OK ||
            (st = get_bool(r, sec, "AdditiveWH", &t->additive_wh)) != QC_OK ||
            (st = get_enum(r, sec, "CropRounding", rounding_names, QC_ARRAY_SIZE(rounding_names), 0,
                           &e)) != QC_OK ||
            (st = parse_border(r, sec, t)) != QC_OK)
            return st;
        t->crop_half_even = e == 1;
        break;
    case QC_TF_SLICE:
        if ((st = get_int(r, sec, "Width", true, 0, &t->width)) != QC_OK ||
            (st = get_int(r, sec, "Height", true, 0, &t->height)) != QC_OK ||
            (st = get_int(r, sec, "OffsetX", false, 0, &t->offset_x)) != QC_OK ||
            (st = get_int(r, sec, "OffsetY", false, 0, &t->offset_y)) != QC_OK ||
            (st = get_bool(r, sec, "RandomOffsetX", &t->random_x)) != QC_OK ||
            (st = get_bool(r, sec, "RandomOffsetY", &t->random_y)) != QC_OK ||
            (st = get_bool(r, sec, "AllowPadding", &t->allow_padding)) != QC_OK ||
            (st = parse_border(r, sec, t)) != QC_OK)
            return st;
        break;
    case QC_TF_FLIP:
        if ((st = get_bool(r, sec, "HorizontalFlip", &t->hflip)) != QC_OK ||
            (st = get_bool(r, sec, "VerticalFlip", &t->vflip)) != QC_OK ||
            (st = get_bool(r, sec, "RandomHorizontalFlip", &t->random_hflip)) != QC_OK ||
            (st = get_bool(r, sec, "RandomVerticalFlip", &t->random_vflip)) != QC_OK)
            return st;
        break;
    case QC_TF_RANGE_AFFINE:
        if ((st = parse_affine(r, sec, "FirstOperator", "FirstValue", true, t, 0)) != QC_OK ||
            (st = parse_affine(r, sec, "SecondOperator", "SecondValue", false, t, 1)) != QC_OK ||
            (st = get_bool(r, sec, "Truncate", &t->truncate)) != QC_OK)
            return st;
        break;
    case QC_TF_RANDOM_RESIZE_CROP:
        if ((st = get_int(r, sec, "Width", true, 0, &t->width)) != QC_OK ||
            (st = get_int(r, sec, "Height", true, 0, &t->height)) != QC_OK ||
            (st = get_float(r, sec, "ScaleMin", 0.08, &t->scale_min)) != QC_OK ||
            (st = get_float(r, sec, "ScaleMax", 1.0, &t->scale_max)) != QC_OK ||
            (st = get_float(r, sec, "RatioMin", 3.0 / 4.0, &t->ratio_min)) != QC_OK ||
            (st = get_float(r, sec, "RatioMax", 4.0 / 3.0, &t->ratio_max)) != QC_OK)
            return st;
        if (!(t->scale_min > 0 && t->scale_min <= t->scale_max && t->scale_max <= 1 &&
              t->ratio_min > 0 && t->ratio_min <= t->ratio_max)) {
            qc_log_error("%s: need 0 < ScaleMin <= ScaleMax <= 1 and 0 < RatioMin <= RatioMax",
                         t->where);
            return QC_ERR_RECIPE;
        }
        break;
    case QC_TF_COLOR_SPACE: {
        const char *cs = NULL;
        qc_recipe_str(r, sec, "ColorSpace", NULL, &cs);
        if (!cs) {
            qc_log_error("%s: missing ColorSpace (RGB|BGR|Gray)", t->where);
            return QC_ERR_RECIPE;
        }
        t->color = strcmp(cs, "Gray") == 0  ? QC_TF_COLOR_GRAY
                   : strcmp(cs, "BGR") == 0 ? QC_TF_COLOR_BGR
                                            : QC_TF_COLOR_RGB;
        break;
    }
    case QC_TF_COUNT:
        break;
    }
    return QC_OK;
}

/* ---- shapes ------------------------------------------------------------------------------- */

/* Rescale's output size for an h x w image.  KeepAspectRatio: one ratio
 * min(W/w, H/h) (ResizeToFit) or max(...) for both sides, as N2D2; the side
 * that sets the ratio gets its target exactly, the other floor(side·target/
 * that side) in integers (N2D2 truncates ratio·side in doubles; torchvision's
 * Resize(size) computes int(size·long/short): the same but for rounding). */
static void rescale_size(const struct qc_transform *t, int h, int w, int *oh, int *ow)
{
    if (!t->keep_aspect) {
        *oh = t->height;
        *ow = t->width;
        return;
    }
    /* W/w < H/h  <=>  W·h < H·w */
    int64_t lhs = (int64_t)t->width * h, rhs = (int64_t)t->height * w;
    bool by_width = t->resize_to_fit ? lhs <= rhs : lhs >= rhs;
    if (by_width) {
        *ow = t->width;
        *oh = (int)QC_MIN((int64_t)h * t->width / w, (int64_t)INT_MAX / 4);
    } else {
        *oh = t->height;
        *ow = (int)QC_MIN((int64_t)w * t->height / h, (int64_t)INT_MAX / 4);
    }
}

/* qc_transform_shape; quiet: no error line. */
static enum qc_status shape_of(const struct qc_transform *t, int c, int h, int w, int *oc, int *oh,
                               int *ow, bool quiet)
{
    *oc = c;
    *oh = h;
    *ow = w;
    switch (t->kind) {
    case QC_TF_RESCALE:
        rescale_size(t, h, w, oh, ow);
        if (*oh < 1 || *ow < 1 || *oh > 65536 || *ow > 65536) {
            if (!quiet)
                qc_log_error("%s: a %dx%d image rescales to %dx%d", t->where, w, h, *ow, *oh);
            return QC_ERR_DATA;
        }
        break;
    case QC_TF_PAD_CROP:
        *oh = t->additive_wh ? h + t->height : t->height;
        *ow = t->additive_wh ? w + t->width : t->width;
        if (*oh < 1 || *ow < 1 || *oh > 65536 || *ow > 65536) {
            if (!quiet)
                qc_log_error("%s: a %dx%d image pads or crops to %dx%d", t->where, w, h, *ow, *oh);
            return QC_ERR_DATA;
        }
        if (t->border == QC_TF_BORDER_CONSTANT && t->n_border_values > 1 &&
            t->n_border_values != c) {
            if (!quiet)
                qc_log_error("%s: %d BorderValue values for %d channels", t->where,
                             t->n_border_values, c);
            return QC_ERR_DATA;
        }
        break;
    case QC_TF_RANDOM_RESIZE_CROP:
        *oh = t->height;
        *ow = t->width;
        break;
    case QC_TF_SLICE:
        if (!t->allow_padding &&
            ((!t->random_x && t->offset_x + t->width > w) || (t->random_x && t->width > w) ||
             (!t->random_y && t->offset_y + t->height > h) || (t->random_y && t->height > h))) {
            if (!quiet)
                qc_log_error("%s: %dx%d window at (%d,%d) does not fit a %dx%d image "
                             "(AllowPadding=1 pads)",
                             t->where, t->width, t->height, t->offset_x, t->offset_y, w, h);
            return QC_ERR_DATA;
        }
        *oh = t->height;
        *ow = t->width;
        break;
    case QC_TF_FLIP:
        break;
    case QC_TF_RANGE_AFFINE:
        for (int i = 0; i < 2; i++) {
            if (t->n_values[i] > 1 && t->n_values[i] != c) {
                if (!quiet)
                    qc_log_error("%s: %d values for %d channels (give 1 or %d)", t->where,
                                 t->n_values[i], c, c);
                return QC_ERR_DATA;
            }
        }
        break;
    case QC_TF_COLOR_SPACE:
        if (c != 1 && c != 3) {
            if (!quiet)
                qc_log_error("%s: color conversion needs 1 or 3 channels, got %d", t->where, c);
            return QC_ERR_DATA;
        }
        if (t->color == QC_TF_COLOR_BGR && c != 3) {
            if (!quiet)
                qc_log_error("%s: BGR needs 3 channels, got %d", t->where, c);
            return QC_ERR_DATA;
        }
        *oc = t->color == QC_TF_COLOR_GRAY ? 1 : 3;
        break;
    case QC_TF_COUNT:
        break;
    }
    return QC_OK;
}

enum qc_status qc_transform_shape(const struct qc_transform *t, int c, int h, int w, int *oc,
                                  int *oh, int *ow)
{
    return shape_of(t, c, h, w, oc, oh, ow, false);
}

enum qc_status qc_transform_shape_quiet(const struct qc_transform *t, int c, int h, int w, int *oc,
                                        int *oh, int *ow)
{
    return shape_of(t, c, h, w, oc, oh, ow, true);
}

bool qc_transform_is_random(const struct qc_transform *t)
{
    switch (t->kind) {
    case QC_TF_SLICE:
        return t->random_x || t->random_y;
    case QC_TF_FLIP:
        return t->random_hflip || t->random_vflip;
    case QC_TF_RANDOM_RESIZE_CROP:
        return true;
    default:
        return false;
    }
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* Bilinear resize of the crop (y0, x0, ch x cw) of every h x w plane of src
 * to rh x rw, written at (dy, dx) of the dh x dw planes of dst.  Half-pixel
 * centres: s = y0 + (o + 0.5)·ch/rh − 0.5, clamped to the crop;
 * v = (1−fy)((1−fx)·a + fx·b) + fy((1−fx)·c + fx·d). */
static void resize_bilinear(const float *src, int c, int h, int w, int y0, int x0, int ch, int cw,
                            float *dst, int dh, int dw, int dy, int dx, int rh, int rw)
{
    for (int k = 0; k < c; k++) {
        const float *s = src + (size_t)k * h * w;
        float *d = dst + (size_t)k * dh * dw;
        for (int oy = 0; oy < rh; oy++) {
            float sy = (float)y0 + ((float)oy + 0.5f) * (float)ch / (float)rh - 0.5f;
            sy = fminf(fmaxf(sy, (float)y0), (float)(y0 + ch - 1));
            int iy = (int)sy;
            int iy1 = QC_MIN(iy + 1, y0 + ch - 1);
            float fy = sy - (float)iy;
            for (int ox = 0; ox < rw; ox++) {
                float sx = (float)x0 + ((float)ox + 0.5f) * (float)cw / (float)rw - 0.5f;
                sx = fminf(fmaxf(sx, (float)x0), (float)(x0 + cw - 1));
                int ix = (int)sx;
                int ix1 = QC_MIN(ix + 1, x0 + cw - 1);
                float fx = sx - (float)ix;
                float a = s[(size_t)iy * w + ix], b = s[(size_t)iy * w + ix1];
                float cc = s[(size_t)iy1 * w + ix], dd = s[(size_t)iy1 * w + ix1];
                d[(size_t)(dy + oy) * dw + dx + ox] =
                    (1.0f - fy) * ((1.0f - fx) * a + fx * b) + fy * ((1.0f - fx) * cc + fx * dd);
            }
        }
    }
}

/* One pass of PIL's BILINEAR resize along a line of n_in samples to n_out:
 * the triangle filter f(x) = max(0, 1 − |x|) widened by fs = max(1, n_in/
 * n_out) (antialiasing when downscaling): output o has centre
 * ctr = (o + 0.5)·n_in/n_out, taps j in [lo, hi) with lo = max(0,
 * trunc(ctr − fs + 0.5)), hi = min(n_in, trunc(ctr + fs + 0.5)), weights
 * f((j − ctr + 0.5)/fs) normalized to sum 1.  first[o], count[o] and
 * weights (n_out·kmax of them) are filled; kmax = 2·ceil(fs) + 1. */
static void aa_coeffs(int n_in, int n_out, int kmax, int *first, int *count, double *weights)
{
    double scale = (double)n_in / n_out, fs = fmax(scale, 1.0);
    for (int o = 0; o < n_out; o++) {
        double ctr = (o + 0.5) * scale, sum = 0.0;
        int lo = QC_MAX(0, (int)(ctr - fs + 0.5));
        int hi = QC_MIN(n_in, (int)(ctr + fs + 0.5));
        int n = QC_MIN(QC_MAX(hi - lo, 0), kmax);
        double *wk = weights + (size_t)o * kmax;
        for (int j = 0; j < n; j++) {
            double x = fabs((lo + j - ctr + 0.5) / fs);
            sum += x < 1.0 ? 1.0 - x : 0.0;
        }
        for (int j = 0; j < n; j++) {
            double x = fabs((lo + j - ctr + 0.5) / fs);
            wk[j] = sum != 0.0 ? (x < 1.0 ? 1.0 - x : 0.0) / sum : 0.0;
        }
        first[o] = lo;
        count[o] = n;
    }
}

/* PIL's 8-bit arithmetic: v = clamp(floor(Σ round(w·2²²)·p / 2²² + 1/2),
 * 0, 255) with the pixels p rounded to 0..255 integers first. */
static float pil_u8(const double *k, const float *p, size_t stride, int n)
{
    int64_t acc = (int64_t)1 << 21;
    for (int j = 0; j < n; j++) {
        int64_t kk = (int64_t)floor(0.5 + k[j] * (1 << 22));
        long v = lrintf(p[(size_t)j * stride]);
        acc += kk * QC_MIN(QC_MAX(v, 0L), 255L);
    }
    acc >>= 22;
    return (float)QC_MIN(QC_MAX(acc, (int64_t)0), (int64_t)255);
}

/* Antialiased (PIL BILINEAR) resize of every h x w plane of src to
 * oh x ow: horizontal pass into a c x h x ow plane, then vertical, as PIL;
 * u8: with PIL's 8-bit rounding after each pass (pil_u8), else in float. */
static enum qc_status resize_antialias(const float *src, int c, int h, int w, float *dst, int oh,
                                       int ow, bool u8)
{
    int kx = 2 * (int)ceil(fmax((double)w / ow, 1.0)) + 1;
    int ky = 2 * (int)ceil(fmax((double)h / oh, 1.0)) + 1;
    size_t n_tmp = (size_t)c * h * ow;
    float *tmp = qc_malloc(n_tmp * sizeof(float));
    double *wx = qc_malloc((size_t)ow * kx * sizeof(double));
    double *wy = qc_malloc((size_t)oh * ky * sizeof(double));
    int *fx = qc_malloc((size_t)(ow + oh) * 2 * sizeof(int));
    if (!tmp || !wx || !wy || !fx) {
        qc_free(tmp);
        qc_free(wx);
        qc_free(wy);
        qc_free(fx);
        return QC_ERR_NOMEM;
    }
    int *nx = fx + ow, *fy = nx + ow, *ny = fy + oh;
    aa_coeffs(w, ow, kx, fx, nx, wx);
    aa_coeffs(h, oh, ky, fy, ny, wy);
    for (size_t row = 0; row < (size_t)c * h; row++) { /* tmp(y, o) = Σ_j wx(o, j)·src(y, fx+j) */
        const float *s = src + row * w;
        float *d = tmp + row * ow;
        for (int o = 0; o < ow; o++) {
            const double *k = wx + (size_t)o * kx;
            const float *p = s + fx[o];
            if (u8) {
                d[o] = pil_u8(k, p, 1, nx[o]);
                continue;
            }
            float acc = 0.0f;
            for (int j = 0; j < nx[o]; j++)
                acc += (float)k[j] * p[j];
            d[o] = acc;
        }
    }
    for (int ch = 0; ch < c; ch++) { /* dst(o, x) = Σ_j wy(o, j)·tmp(fy+j, x) */
        const float *s = tmp + (size_t)ch * h * ow;
        float *d = dst + (size_t)ch * oh * ow;
        for (int o = 0; o < oh; o++) {
            float *drow = d + (size_t)o * ow;
            const double *k = wy + (size_t)o * ky;
            if (u8) {
                for (int x = 0; x < ow; x++)
                    drow[x] = pil_u8(k, s + (size_t)fy[o] * ow + x, (size_t)ow, ny[o]);
                continue;
            }
            for (int x = 0; x < ow; x++)
                drow[x] = 0.0f;
            for (int j = 0; j < ny[o]; j++) {
                const float *srow = s + (size_t)(fy[o] + j) * ow;
                for (int x = 0; x < ow; x++)
                    drow[x] += (float)k[j] * srow[x];
            }
        }
    }
    qc_free(tmp);
    qc_free(wx);
    qc_free(wy);
    qc_free(fx);
    return QC_OK;
}

static enum qc_status apply_rescale(const struct qc_transform *t, const float *src, int c, int h,
                                    int w, float *dst)
{
    int oh, ow;
    rescale_size(t, h, w, &oh, &ow);
    if (t->interp != QC_TF_INTERP_LINEAR)
        return resize_antialias(src, c, h, w, dst, oh, ow, t->interp == QC_TF_INTERP_PIL_U8);
    resize_bilinear(src, c, h, w, 0, 0, h, w, dst, oh, ow, 0, 0, oh, ow);
    return QC_OK;
}

/* Source index of position i (may be outside [0, n)) under a border rule;
 * -1: the constant border. */
static int border_index(int i, int n, enum qc_tf_border b)
{
    if (i >= 0 && i < n)
        return i;
    switch (b) {
    case QC_TF_BORDER_REPLICATE:
        return i < 0 ? 0 : n - 1;
    case QC_TF_BORDER_WRAP:
        return ((i % n) + n) % n;
    case QC_TF_BORDER_REFLECT: { /* cba|abcdef|fed: period 2n */
        int m = ((i % (2 * n)) + 2 * n) % (2 * n);
        return m < n ? m : 2 * n - 1 - m;
    }
    case QC_TF_BORDER_REFLECT101: { /* dcb|abcdef|edc: period 2n − 2 */
        if (n == 1)
            return 0;
        int p = 2 * n - 2, m = ((i % p) + p) % p;
        return m < n ? m : p - m;
    }
    case QC_TF_BORDER_CONSTANT:
    case QC_TF_BORDER_MEAN:
        break;
    }
    return -1;
}

/* dst (oh x ow planes) = the window of src whose top left is (y0, x0)
 * (either may be negative or reach past the image: the border rule fills
 * the outside). */
static void window(const struct qc_transform *t, const float *src, int c, int h, int w, int y0,
                   int x0, float *dst, int oh, int ow)
{
    for (int k = 0; k < c; k++) {
        const float *s = src + (size_t)k * h * w;
        float fill = 0.0f;
        if (t->border == QC_TF_BORDER_MEAN) {
            double sum = 0.0;
            for (size_t i = 0; i < (size_t)h * w; i++)
                sum += s[i];
            fill = (float)(sum / ((double)h * w));
        } else if (t->n_border_values > 0) {
            fill = t->border_values[t->n_border_values > 1 ? k : 0];
        }
        for (int y = 0; y < oh; y++) {
            float *d = dst + ((size_t)k * oh + y) * ow;
            int sy = border_index(y0 + y, h, t->border);
            for (int x = 0; x < ow; x++) {
                int sx = sy < 0 ? -1 : border_index(x0 + x, w, t->border);
                d[x] = sx < 0 ? fill : s[(size_t)sy * w + sx];
            }
        }
    }
}

/* Centred pad or crop: N2D2 puts ceil(d/2) of a size change d = H − h at the
 * top (a crop of e = −d starts at floor(e/2)); CropRounding=HalfEven crops
 * from round_half_even(e/2) as torchvision's CenterCrop. */
static void apply_pad_crop(const struct qc_transform *t, const float *src, int c, int h, int w,
                           float *dst)
{
    int oh = t->additive_wh ? h + t->height : t->height;
    int ow = t->additive_wh ? w + t->width : t->width;
    int top = (int)ceil((oh - h) / 2.0), left = (int)ceil((ow - w) / 2.0);
    if (t->crop_half_even) {
        if (oh < h)
            top = -(int)nearbyint((h - oh) / 2.0);
        if (ow < w)
            left = -(int)nearbyint((w - ow) / 2.0);
    }
    window(t, src, c, h, w, -top, -left, dst, oh, ow);
}

/* Uniform integer in [0, n). */
static int rand_below(struct qc_rng *rng, int n)
{
    int v = (int)(qc_rng_uniform(rng) * (float)n);
    return QC_MIN(v, n - 1);
}

static void apply_slice(const struct qc_transform *t, const float *src, int c, int h, int w,
                        float *dst, struct qc_rng *rng)
{
    int ox = t->random_x ? (w >= t->width ? rand_below(rng, w - t->width + 1) : 0) : t->offset_x;
    int oy = t->random_y ? (h >= t->height ? rand_below(rng, h - t->height + 1) : 0) : t->offset_y;
    if (ox + t->width > w || oy + t->height > h) { /* AllowPadding */
        window(t, src, c, h, w, oy, ox, dst, t->height, t->width);
        return;
    }
    for (int k = 0; k < c; k++)
        for (int y = 0; y < t->height; y++)
            memcpy(dst + ((size_t)k * t->height + y) * t->width,
                   src + ((size_t)k * h + oy + y) * w + ox, (size_t)t->width * sizeof(*dst));
}

static void apply_flip(const struct qc_transform *t, const float *src, int c, int h, int w,
                       float *dst, struct qc_rng *rng)
{
    bool fx = t->hflip, fy = t->vflip;
    if (t->random_hflip && qc_rng_uniform(rng) < 0.5f)
        fx = !fx;
    if (t->random_vflip && qc_rng_uniform(rng) < 0.5f)
        fy = !fy;
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++) {
            const float *s = src + ((size_t)k * h + (fy ? h - 1 - y : y)) * w;
            float *d = dst + ((size_t)k * h + y) * w;
            for (int x = 0; x < w; x++)
                d[x] = s[fx ? w - 1 - x : x];
        }
}

/* dst[i] = src[i] (op) a over n floats; the switch outside the loop lets the
 * compiler vectorize it (a batch of 128 images at 3x224x224 is 19 M values) */
static void affine_span(enum qc_tf_op op, const float *src, float a, float *dst, size_t n)
{
    switch (op) {
    case QC_TF_OP_PLUS:
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i] + a;
        break;
    case QC_TF_OP_MINUS:
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i] - a;
        break;
    case QC_TF_OP_MULTIPLIES:
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i] * a;
        break;
    case QC_TF_OP_DIVIDES:
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i] / a;
        break;
    case QC_TF_OP_NONE:
        if (dst != src)
            memmove(dst, src, n * sizeof(float));
        break;
    }
}

static void apply_range_affine(const struct qc_transform *t, const float *src, int c, int h,
                               int w, float *dst)
{
    size_t plane = (size_t)h * w;
    for (int k = 0; k < c; k++) {
        float a = t->values[0][t->n_values[0] > 1 ? k : 0];
        float b = t->n_values[1] ? t->values[1][t->n_values[1] > 1 ? k : 0] : 0.0f;
        affine_span(t->op[0], src + k * plane, a, dst + k * plane, plane);
        affine_span(t->op[1], dst + k * plane, b, dst + k * plane, plane);
        if (t->truncate)
            for (size_t i = 0; i < plane; i++)
                dst[k * plane + i] = truncf(dst[k * plane + i]);
    }
}

static void apply_rrc(const struct qc_transform *t, const float *src, int c, int h, int w,
                      float *dst, struct qc_rng *rng)
{
    int x0 = 0, y0 = 0, cw = 0, ch = 0;
    double area = (double)h * w;
    double lmin = log(t->ratio_min), lmax = log(t->ratio_max);
    for (int tries = 0; tries < 10; tries++) {
        double s = t->scale_min + (t->scale_max - t->scale_min) * qc_rng_uniform(rng);
        double ratio = exp(lmin + (lmax - lmin) * qc_rng_uniform(rng));
        int tw = (int)lround(sqrt(s * area * ratio));   /* w/h = ratio, w·h = s·area */
        int th = (int)lround(sqrt(s * area / ratio));
        if (tw >= 1 && tw <= w && th >= 1 && th <= h) {
            cw = tw;
            ch = th;
            x0 = rand_below(rng, w - cw + 1);
            y0 = rand_below(rng, h - ch + 1);
            break;
        }
    }
    if (cw == 0) { /* N2D2's fallback: the image clipped to the ratio bounds, at (0, 0) */
        double in_ratio = (double)w / h;
        cw = w;
        ch = h;
        if (in_ratio < t->ratio_min)
            ch = QC_MAX(1, QC_MIN(h, (int)lround(w / t->ratio_min)));
        else if (in_ratio > t->ratio_max)
            cw = QC_MAX(1, QC_MIN(w, (int)lround(h * t->ratio_max)));
    }
    resize_bilinear(src, c, h, w, y0, x0, ch, cw, dst, t->height, t->width, 0, 0, t->height,
                    t->width);
}

static void apply_color(const struct qc_transform *t, const float *src, int c, int h, int w,
                        float *dst)
{
    size_t plane = (size_t)h * w;
    if (t->color == QC_TF_COLOR_GRAY) {
        if (c == 1) {
            memcpy(dst, src, plane * sizeof(*dst));
            return;
        }
        for (size_t i = 0; i < plane; i++)   /* Y = 0.299 R + 0.587 G + 0.114 B */
            dst[i] = 0.299f * src[i] + 0.587f * src[plane + i] + 0.114f * src[2 * plane + i];
        return;
    }
    for (int k = 0; k < 3; k++) {
        int from = c == 1 ? 0 : (t->color == QC_TF_COLOR_BGR ? 2 - k : k);
        memcpy(dst + k * plane, src + from * plane, plane * sizeof(*dst));
    }
}

enum qc_status qc_transform_apply(const struct qc_transform *t, const float *src, int c, int h,
                                  int w, float *dst, struct qc_rng *rng)
{
    switch (t->kind) {
    case QC_TF_RESCALE:
        return apply_rescale(t, src, c, h, w, dst);
    case QC_TF_PAD_CROP:
        apply_pad_crop(t, src, c, h, w, dst);
        break;
    case QC_TF_SLICE:
        apply_slice(t, src, c, h, w, dst, rng);
        break;
    case QC_TF_FLIP:
        apply_flip(t, src, c, h, w, dst, rng);
        break;
    case QC_TF_RANGE_AFFINE:
        apply_range_affine(t, src, c, h, w, dst);
        break;
    case QC_TF_RANDOM_RESIZE_CROP:
        apply_rrc(t, src, c, h, w, dst, rng);
        break;
    case QC_TF_COLOR_SPACE:
        apply_color(t, src, c, h, w, dst);
        break;
    case QC_TF_COUNT:
        break;
    }
    return QC_OK;
}
