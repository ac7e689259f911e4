/*
 * transform.c - the image transformations of the input pipeline (see
 * transform.h): recipe parsing, shape checks and the per-image kernels on
 * float CHW planes.  Kernels never allocate; the caller (dataset.c) owns the
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

static enum qc_status get_int(const struct qc_recipe *r, const char *sec, const char *key,
                              bool required, int def, int *out)
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
    if (v < 0 || v > INT_MAX / 4) {
        qc_log_error("%s: [%s] %s=%lld: out of range", qc_recipe_where(r, sec, key, where,
                     sizeof(where)), sec, key, (long long)v);
        return QC_ERR_RECIPE;
    }
    *out = (int)v;
    return QC_OK;
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
    qc_recipe_where(r, sec, valk, where, sizeof(where));
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
            qc_log_error("%s: [%s] %s=%s: expected numbers", where, sec, valk, vals);
            return QC_ERR_RECIPE;
        }
        if (n == QC_TF_MAX_VALUES) {
            qc_log_error("%s: [%s] %s: more than %d values", where, sec, valk,
                         QC_TF_MAX_VALUES);
            return QC_ERR_RECIPE;
        }
        if (t->op[i] == QC_TF_OP_DIVIDES && v == 0.0) {
            qc_log_error("%s: [%s] %s: division by zero", where, sec, valk);
            return QC_ERR_RECIPE;
        }
        t->values[i][n++] = (float)v;
        p = end;
    }
    if (n == 0 || t->op[i] == QC_TF_OP_NONE) {
        qc_log_error("%s: [%s] %s=%s: expected an operator and numbers", where, sec, valk, vals);
        return QC_ERR_RECIPE;
    }
    t->n_values[i] = n;
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
    if (strcmp(apply, "LearnOnly") == 0)
        t->apply_to = QC_TF_APPLY_LEARN_ONLY;
    else if (strcmp(apply, "NoLearn") == 0)
        t->apply_to = QC_TF_APPLY_NO_LEARN;
    else if (strcmp(apply, "All") == 0)
        t->apply_to = QC_TF_APPLY_ALL;
    else {
        qc_log_error("%s: ApplyTo=%s: expected one of LearnOnly|NoLearn|All", t->where, apply);
        return QC_ERR_RECIPE;
    }
    switch (t->kind) {
    case QC_TF_RESCALE:
        if ((st = get_int(r, sec, "Width", true, 0, &t->width)) != QC_OK ||
            (st = get_int(r, sec, "Height", true, 0, &t->height)) != QC_OK ||
            (st = get_bool(r, sec, "KeepAspectRatio", &t->keep_aspect)) != QC_OK)
            return st;
        break;
    case QC_TF_PAD_CROP:
        if ((st = get_int(r, sec, "Width", true, 0, &t->width)) != QC_OK ||
            (st = get_int(r, sec, "Height", true, 0, &t->height)) != QC_OK)
            return st;
        break;
    case QC_TF_SLICE:
        if ((st = get_int(r, sec, "Width", true, 0, &t->width)) != QC_OK ||
            (st = get_int(r, sec, "Height", true, 0, &t->height)) != QC_OK ||
            (st = get_int(r, sec, "OffsetX", false, 0, &t->offset_x)) != QC_OK ||
            (st = get_int(r, sec, "OffsetY", false, 0, &t->offset_y)) != QC_OK ||
            (st = get_bool(r, sec, "RandomOffsetX", &t->random_x)) != QC_OK ||
            (st = get_bool(r, sec, "RandomOffsetY", &t->random_y)) != QC_OK)
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
            (st = parse_affine(r, sec, "SecondOperator", "SecondValue", false, t, 1)) != QC_OK)
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

/* qc_transform_shape; quiet: no error line. */
static enum qc_status shape_of(const struct qc_transform *t, int c, int h, int w, int *oc, int *oh,
                               int *ow, bool quiet)
{
    *oc = c;
    *oh = h;
    *ow = w;
    switch (t->kind) {
    case QC_TF_RESCALE:
    case QC_TF_PAD_CROP:
    case QC_TF_RANDOM_RESIZE_CROP:
        *oh = t->height;
        *ow = t->width;
        break;
    case QC_TF_SLICE:
        if (t->width > w || t->height > h ||
            (!t->random_x && t->offset_x + t->width > w) ||
            (!t->random_y && t->offset_y + t->height > h)) {
            if (!quiet)
                qc_log_error("%s: %dx%d window at (%d,%d) does not fit a %dx%d image", t->where,
                             t->width, t->height, t->offset_x, t->offset_y, w, h);
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

static void apply_rescale(const struct qc_transform *t, const float *src, int c, int h, int w,
                          float *dst)
{
    int oh = t->height, ow = t->width;
    if (!t->keep_aspect) {
        resize_bilinear(src, c, h, w, 0, 0, h, w, dst, oh, ow, 0, 0, oh, ow);
        return;
    }
    /* fit inside: scale = min(W/w, H/h), centred on zeros */
    double scale = fmin((double)ow / w, (double)oh / h);
    int rw = QC_MAX(1, QC_MIN(ow, (int)lround(w * scale)));
    int rh = QC_MAX(1, QC_MIN(oh, (int)lround(h * scale)));
    memset(dst, 0, (size_t)c * oh * ow * sizeof(*dst));
    resize_bilinear(src, c, h, w, 0, 0, h, w, dst, oh, ow, (oh - rh) / 2, (ow - rw) / 2, rh, rw);
}

/* Centred pad (zeros) or crop: out(y, x) = in(y − (H−h)/2, x − (W−w)/2). */
static void apply_pad_crop(const struct qc_transform *t, const float *src, int c, int h, int w,
                           float *dst)
{
    int oh = t->height, ow = t->width;
    int offy = (oh - h) / 2, offx = (ow - w) / 2;
    for (int k = 0; k < c; k++) {
        for (int y = 0; y < oh; y++) {
            int sy = y - offy;
            float *d = dst + ((size_t)k * oh + y) * ow;
            for (int x = 0; x < ow; x++) {
                int sx = x - offx;
                d[x] = (sy >= 0 && sy < h && sx >= 0 && sx < w)
                           ? src[((size_t)k * h + sy) * w + sx]
                           : 0.0f;
            }
        }
    }
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
    int ox = t->random_x ? rand_below(rng, w - t->width + 1) : t->offset_x;
    int oy = t->random_y ? rand_below(rng, h - t->height + 1) : t->offset_y;
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
    }
}

static void apply_rrc(const struct qc_transform *t, const float *src, int c, int h, int w,
                      float *dst, struct qc_rng *rng)
{
    int x0 = 0, y0 = 0, cw = w, ch = h;
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

void qc_transform_apply(const struct qc_transform *t, const float *src, int c, int h, int w,
                        float *dst, struct qc_rng *rng)
{
    switch (t->kind) {
    case QC_TF_RESCALE:
        apply_rescale(t, src, c, h, w, dst);
        break;
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
}
