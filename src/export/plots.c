/*
 * plots.c - the --plots output (see plots.h): weight histograms drawn on a
 * png.h canvas, and the graph written as Graphviz DOT and rendered by the
 * external `dot` program (spawned without a shell, its stderr captured so
 * that a failure is reported in one warning line).
 */
#include <config.h>

#include "plots.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fileio.h"
#include "ir/attr.h"
#include "util/log.h"
#include "ir/tensor.h"
#include "png.h"

extern char **environ;

/* ---- histogram --------------------------------------------------------- */

#define HIST_W      640
#define HIST_H      360
#define HIST_BINS   80
#define PLOT_LEFT   64
#define PLOT_RIGHT  (HIST_W - 64)
#define PLOT_TOP    72
#define PLOT_BOTTOM (HIST_H - 44)
#define MAX_LABELLED_LEVELS 16

#define COL_BG     0xffffffu
#define COL_TEXT   0x202020u
#define COL_AXIS   0x000000u
#define COL_GRID   0xe4e4e4u
#define COL_BEFORE 0x86aedcu
#define COL_AFTER  0xe0681au

struct level {
    float   v;
    int64_t count;
};

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* x pixel of value v: PLOT_LEFT + (v - lo) / (hi - lo) * plot width. */
static int x_of(double v, double lo, double hi)
{
    double t = (v - lo) / (hi - lo);
    return PLOT_LEFT + (int)lround(t * (PLOT_RIGHT - PLOT_LEFT));
}

/* y pixel of a bar of `count` out of `max` (PLOT_BOTTOM for 0). */
static int y_of(int64_t count, int64_t max)
{
    double t = max > 0 ? (double)count / (double)max : 0.0;
    return PLOT_BOTTOM - (int)lround(t * (PLOT_BOTTOM - PLOT_TOP));
}

/* Sorted distinct finite values of a[0..n) with their counts in *out (free
 * with qc_free); *n_out levels. */
static enum qc_status distinct_levels(const float *a, int64_t n, struct level **out,
                                      int64_t *n_out)
{
    float *s;
    struct level *lv;
    int64_t m = 0, k = 0;
    *out = NULL;
    *n_out = 0;
    s = qc_malloc((size_t)QC_MAX(n, 1) * sizeof(*s));
    if (!s)
        return QC_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(a[i]))
            s[m++] = a[i] == 0.0f ? 0.0f : a[i];  /* -0 and +0 are one level */
    qsort(s, (size_t)m, sizeof(*s), cmp_float);
    lv = qc_malloc((size_t)QC_MAX(m, 1) * sizeof(*lv));
    if (!lv) {
        qc_free(s);
        return QC_ERR_NOMEM;
    }
    for (int64_t i = 0; i < m; i++) {
        if (k > 0 && lv[k - 1].v == s[i]) {
            lv[k - 1].count++;
        } else {
            lv[k].v = s[i];
            lv[k].count = 1;
            k++;
        }
    }
    qc_free(s);
    *out = lv;
    *n_out = k;
    return QC_OK;
}

/* Text right-aligned so that it ends at x. */
static void text_right(struct qc_canvas *c, int x, int y, const char *s, uint32_t rgb)
{
    qc_canvas_text(c, x - qc_canvas_text_width(s, 1), y, s, rgb, 1);
}

/* Text centred on x, kept inside the canvas. */
static void text_centred(struct qc_canvas *c, int x, int y, const char *s, uint32_t rgb)
{
    int w = qc_canvas_text_width(s, 1);
    int x0 = QC_MAX(0, QC_MIN(x - w / 2, c->width - w));
    qc_canvas_text(c, x0, y, s, rgb, 1);
}

/* The smallest "nice" axis maximum 4 * step >= max, step = 1, 2 or 5 times
 * a power of ten and at least 1 (counts are integers). */
static int64_t nice_axis_max(int64_t max)
{
    int64_t step = 1;
    for (;;) {
        if (4 * step >= max)
            return 4 * step;
        if (8 * step >= max)
            return 8 * step;
        if (20 * step >= max)
            return 20 * step;
        step *= 10;
    }
}

/* Left (before, bins) and right (after, levels) count axes, ticks at every
 * quarter of axis_bin and axis_level. */
static void draw_count_axes(struct qc_canvas *c, int64_t axis_bin, int64_t axis_level,
                            bool have_after)
{
    char buf[32];
    for (int t = 0; t <= 4; t++) {
        int y = PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * t / 4;
        if (t > 0)
            qc_canvas_hline(c, PLOT_LEFT + 1, PLOT_RIGHT - 1, y, COL_GRID);
        qc_canvas_hline(c, PLOT_LEFT - 4, PLOT_LEFT, y, COL_AXIS);
        snprintf(buf, sizeof(buf), "%lld", (long long)(axis_bin * t / 4));
        text_right(c, PLOT_LEFT - 6, y - QC_FONT_CELL_H / 2, buf, COL_TEXT);
        if (have_after) {
            qc_canvas_hline(c, PLOT_RIGHT, PLOT_RIGHT + 4, y, COL_AFTER);
            snprintf(buf, sizeof(buf), "%lld", (long long)(axis_level * t / 4));
            qc_canvas_text(c, PLOT_RIGHT + 7, y - QC_FONT_CELL_H / 2, buf, COL_AFTER, 1);
        }
    }
    qc_canvas_vline(c, PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM, COL_AXIS);
    qc_canvas_vline(c, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM, have_after ? COL_AFTER : COL_AXIS);
    qc_canvas_hline(c, PLOT_LEFT, PLOT_RIGHT, PLOT_BOTTOM, COL_AXIS);
}

/* x ticks at the data minimum, maximum and 0 (when it lies between and its
 * label does not collide with the others). */
static void draw_x_axis(struct qc_canvas *c, double vmin, double vmax, double lo, double hi)
{
    char smin[32], smax[32], buf[96];
    int xmin = x_of(vmin, lo, hi), xmax = x_of(vmax, lo, hi);
    int y = PLOT_BOTTOM + 6;
    snprintf(smin, sizeof(smin), "%.4g", vmin);
    snprintf(smax, sizeof(smax), "%.4g", vmax);
    qc_canvas_vline(c, xmin, PLOT_BOTTOM, PLOT_BOTTOM + 4, COL_AXIS);
    qc_canvas_vline(c, xmax, PLOT_BOTTOM, PLOT_BOTTOM + 4, COL_AXIS);
    if (vmin == vmax) {
        snprintf(buf, sizeof(buf), "all %s", smin);
        text_centred(c, xmin, y, buf, COL_TEXT);
    } else if (xmax - xmin < qc_canvas_text_width(smin, 1) / 2 + qc_canvas_text_width(smax, 1) / 2
                                  + 6 * QC_FONT_CELL_W) {
        snprintf(buf, sizeof(buf), "min %s, max %s", smin, smax);
        text_centred(c, (xmin + xmax) / 2, y, buf, COL_TEXT);
    } else {
        snprintf(buf, sizeof(buf), "min %s", smin);
        text_centred(c, xmin, y, buf, COL_TEXT);
        snprintf(buf, sizeof(buf), "max %s", smax);
        text_centred(c, xmax, y, buf, COL_TEXT);
    }
    if (vmin < 0.0 && vmax > 0.0) {
        int x0 = x_of(0.0, lo, hi);
        qc_canvas_vline(c, x0, PLOT_BOTTOM, PLOT_BOTTOM + 4, COL_AXIS);
        qc_canvas_vline(c, x0, PLOT_TOP, PLOT_BOTTOM - 1, COL_GRID);
        if (x0 - xmin > 40 && xmax - x0 > 40)
            text_centred(c, x0, y, "0", COL_TEXT);
    }
    text_centred(c, (PLOT_LEFT + PLOT_RIGHT) / 2, y + 14, "weight value", COL_TEXT);
}

/* One legend entry (colour swatch + text) at (x, y); returns the x after it. */
static int legend_entry(struct qc_canvas *c, int x, int y, uint32_t rgb, const char *s)
{
    qc_canvas_fill_rect(c, x, y + 1, 10, 7, rgb);
    return x + 14 + qc_canvas_text(c, x + 14, y, s, COL_TEXT, 1) + 16;
}

/* The after spikes, with counts above them when there are few levels;
 * a label that would overlap the previous one moves up a line. */
static void draw_levels(struct qc_canvas *c, const struct level *lv, int64_t k, int64_t max,
                        double lo, double hi)
{
    int width = k <= 64 ? 3 : 1;
    int prev_right = -1000, prev_y = 0;
    for (int64_t i = 0; i < k; i++) {
        int x = x_of(lv[i].v, lo, hi), y = y_of(lv[i].count, max);
        qc_canvas_fill_rect(c, x - width / 2, y, width, PLOT_BOTTOM - y, COL_AFTER);
    }
    if (k > MAX_LABELLED_LEVELS)
        return;
    for (int64_t i = 0; i < k; i++) {
        char buf[32];
        int x = x_of(lv[i].v, lo, hi), y = y_of(lv[i].count, max) - QC_FONT_CELL_H - 1;
        int w;
        snprintf(buf, sizeof(buf), "%lld", (long long)lv[i].count);
        w = qc_canvas_text_width(buf, 1);
        if (x - w / 2 <= prev_right && abs(y - prev_y) < QC_FONT_CELL_H)
            y = prev_y - QC_FONT_CELL_H;
        qc_canvas_fill_rect(c, x - w / 2 - 1, y + 1, w + 1, QC_FONT_CELL_H - 1, COL_BG);
        qc_canvas_text(c, x - w / 2, y, buf, COL_AFTER, 1);
        prev_right = x - w / 2 + w;
        prev_y = y;
    }
}

enum qc_status qc_plot_weight_histogram(const char *path, const char *title,
                                        const float *before, const float *after, int64_t n)
{
    struct qc_canvas c = {0};
    struct level *lv = NULL;
    int64_t bins[HIST_BINS] = {0}, k = 0, n_finite = 0, n_bad = 0, axis_bin = 0, axis_level = 0;
    double vmin = INFINITY, vmax = -INFINITY, lo, hi;
    char line[256], legend[96];
    enum qc_status st;
    int x, title_scale;

    if (n < 0 || (n > 0 && !before && !after)) {
        qc_log_error("%s: histogram of %lld values without data", path, (long long)n);
        return QC_ERR_INVAL;
    }
    for (int side = 0; side < 2; side++) {
        const float *a = side == 0 ? before : after;
        for (int64_t i = 0; a && i < n; i++) {
            if (!isfinite(a[i])) {
                n_bad++;
                continue;
            }
            vmin = QC_MIN(vmin, (double)a[i]);
            vmax = QC_MAX(vmax, (double)a[i]);
        }
    }
    if (vmin > vmax)
        vmin = vmax = 0.0;
    /* plotted range: the data range plus 3 % on each side so that the end
     * spikes stand clear of the axes; a single value gets a unit-wide range */
    {
        double pad = vmax > vmin ? 0.03 * (vmax - vmin) : QC_MAX(fabs(vmin) * 0.5, 0.5);
        lo = vmin - pad;
        hi = vmax + pad;
    }
    for (int64_t i = 0; before && i < n; i++) {
        int b;
        if (!isfinite(before[i]))
            continue;
        /* bin b covers [vmin + b * w, vmin + (b + 1) * w), w = (vmax - vmin) / bins */
        b = vmax > vmin ? (int)((before[i] - vmin) / (vmax - vmin) * HIST_BINS) : HIST_BINS / 2;
        b = QC_MAX(0, QC_MIN(b, HIST_BINS - 1));
        bins[b]++;
        n_finite++;
    }
    for (int b = 0; b < HIST_BINS; b++)
        axis_bin = QC_MAX(axis_bin, bins[b]);
    axis_bin = nice_axis_max(axis_bin);
    if (after) {
        st = distinct_levels(after, n, &lv, &k);
        if (st != QC_OK)
            goto out;
        for (int64_t i = 0; i < k; i++)
            axis_level = QC_MAX(axis_level, lv[i].count);
        axis_level = nice_axis_max(axis_level);
    }

    st = qc_canvas_init(&c, HIST_W, HIST_H, COL_BG);
    if (st != QC_OK)
        goto out;
    title_scale = qc_canvas_text_width(title, 2) <= HIST_W - 16 ? 2 : 1;
    qc_canvas_text(&c, 8, 6, title, COL_TEXT, title_scale);

    if (after) {
        /* bits = ceil(log2(levels)): the fewest bits that can hold k levels */
        int bits = 0;
        while (bits < 62 && ((int64_t)1 << bits) < k)
            bits++;
        snprintf(line, sizeof(line), "%lld weights; after quantization: %lld distinct level%s "
                 "(%d bit%s)", (long long)n, (long long)k, k == 1 ? "" : "s", QC_MAX(bits, 1),
                 bits > 1 ? "s" : "");
    } else {
        snprintf(line, sizeof(line), "%lld weights", (long long)n);
    }
    if (n_bad > 0) {
        size_t used = strlen(line);
        snprintf(line + used, sizeof(line) - used, "; %lld non-finite values skipped",
                 (long long)n_bad);
    }
    qc_canvas_text(&c, 8, 30, line, COL_TEXT, 1);
    x = 8;
    snprintf(legend, sizeof(legend), "before: float weights, %d bins (left axis)", HIST_BINS);
    if (before)
        x = legend_entry(&c, x, 46, COL_BEFORE, legend);
    if (after)
        legend_entry(&c, x, 46, COL_AFTER, "after: quantized levels (right axis)");

    /* before: bar b spans the pixels of its value interval, one-pixel gap */
    for (int b = 0; b < HIST_BINS && before; b++) {
        double w = (vmax - vmin) / HIST_BINS;
        int x0 = x_of(vmin + b * w, lo, hi), x1 = x_of(vmin + (b + 1) * w, lo, hi);
        int y = y_of(bins[b], axis_bin);
        if (vmax == vmin)
            x1 = x0 + 6;
        if (bins[b] > 0)
            qc_canvas_fill_rect(&c, x0, y, QC_MAX(x1 - x0 - 1, 1), PLOT_BOTTOM - y, COL_BEFORE);
    }
    draw_count_axes(&c, axis_bin, axis_level, after != NULL);
    if (after)
        draw_levels(&c, lv, k, axis_level, lo, hi);
    /* redraw the baseline over the bars' feet */
    qc_canvas_hline(&c, PLOT_LEFT, PLOT_RIGHT, PLOT_BOTTOM, COL_AXIS);
    if (n_finite == 0 && k == 0)
        text_centred(&c, (PLOT_LEFT + PLOT_RIGHT) / 2, (PLOT_TOP + PLOT_BOTTOM) / 2,
                     "no finite values", COL_TEXT);
    else
        draw_x_axis(&c, vmin, vmax, lo, hi);
    st = qc_png_write(path, &c);
out:
    qc_canvas_free(&c);
    qc_free(lv);
    return st;
}

/* ---- confusion matrix ---------------------------------------------------- */

#define CONF_SIDE 480 /* the matrix's side at most, in pixels              */
#define CONF_LEFT 48
#define CONF_TOP 56
#define CONF_MARGIN 16
#define COL_HOT 0x08306bu

/* The cell's colour: from the background (count 0) to COL_HOT (count max),
 * each channel c = (bg (max - count) + hot count) / max rounded, so that a
 * larger count is never lighter. */
static uint32_t heat(int64_t count, int64_t max)
{
    uint32_t rgb = 0;
    for (int sh = 16; sh >= 0; sh -= 8) {
        double bg = (double)((COL_BG >> sh) & 0xffu), hot = (double)((COL_HOT >> sh) & 0xffu);
        double t = max > 0 ? (double)count / (double)max : 0.0;
        rgb |= (uint32_t)lround(bg + (hot - bg) * t) << sh;
    }
    return rgb;
}

int qc_plot_confusion_cell(int64_t classes)
{
    return (int)QC_MAX(4, QC_MIN(48, CONF_SIDE / QC_MAX(classes, 1)));
}

enum qc_status qc_plot_confusion(const char *path, const char *title, const int64_t *counts,
                                 int64_t classes)
{
    struct qc_canvas c = { 0 };
    int64_t max = 0, total = 0, diag = 0;
    int cell = qc_plot_confusion_cell(classes), side, every;
    char line[160];
    enum qc_status st;

    if (classes < 1 || classes > (16384 - CONF_LEFT - CONF_MARGIN) / 4 || !counts) {
        qc_log_error("%s: cannot draw a confusion matrix of %lld classes", path,
                     (long long)classes);
        return QC_ERR_INVAL;
    }
    side = (int)classes * cell;
    for (int64_t i = 0; i < classes * classes; i++) {
        max = QC_MAX(max, counts[i]);
        total += counts[i];
        diag += i % (classes + 1) == 0 ? counts[i] : 0;
    }
    st = qc_canvas_init(&c, CONF_LEFT + side + CONF_MARGIN, CONF_TOP + side + CONF_MARGIN, COL_BG);
    if (st != QC_OK)
        return st;
    qc_canvas_text(&c, 8, 6, title, COL_TEXT, 1);
    snprintf(line, sizeof(line),
             "%lld images, %lld on the diagonal; rows: true class, "
             "columns: predicted",
             (long long)total, (long long)diag);
    qc_canvas_text(&c, 8, 20, line, COL_TEXT, 1);
    for (int64_t t = 0; t < classes; t++)
        for (int64_t p = 0; p < classes; p++) {
            int64_t v = counts[t * classes + p];
            int x = CONF_LEFT + (int)p * cell, y = CONF_TOP + (int)t * cell;
            qc_canvas_fill_rect(&c, x, y, cell, cell, heat(v, max));
            snprintf(line, sizeof(line), "%lld", (long long)v);
            /* the count when it fits inside the cell with a pixel to spare */
            if (cell >= QC_FONT_CELL_H + 2 && qc_canvas_text_width(line, 1) <= cell - 2)
                qc_canvas_text(&c, x + (cell - qc_canvas_text_width(line, 1)) / 2 + 1,
                               y + (cell - QC_FONT_CELL_H) / 2 + 1, line,
                               2 * v > max ? COL_BG : COL_TEXT, 1);
        }
    /* class labels: every `every`-th class so that they do not overlap */
    every = (QC_FONT_CELL_H + cell - 1) / cell;
    for (int64_t k = 0; k < classes; k += every) {
        snprintf(line, sizeof(line), "%lld", (long long)k);
        text_right(&c, CONF_LEFT - 4, CONF_TOP + (int)k * cell + (cell - QC_FONT_CELL_H) / 2, line,
                   COL_TEXT);
        if (qc_canvas_text_width(line, 1) <= cell * every)
            text_centred(&c, CONF_LEFT + (int)k * cell + cell / 2, CONF_TOP - 12, line, COL_TEXT);
    }
    qc_canvas_hline(&c, CONF_LEFT - 1, CONF_LEFT + side, CONF_TOP - 1, COL_AXIS);
    qc_canvas_hline(&c, CONF_LEFT - 1, CONF_LEFT + side, CONF_TOP + side, COL_AXIS);
    qc_canvas_vline(&c, CONF_LEFT - 1, CONF_TOP - 1, CONF_TOP + side, COL_AXIS);
    qc_canvas_vline(&c, CONF_LEFT + side, CONF_TOP - 1, CONF_TOP + side, COL_AXIS);
    st = qc_png_write(path, &c);
    qc_canvas_free(&c);
    return st;
}

/* ---- file names -------------------------------------------------------- */

const char *qc_plot_file_name(const char *dir, const char *name, const char *ext, char *buf,
                              size_t len)
{
    size_t need = strlen(dir) + 1 + strlen(name) + strlen(ext) + 1, w;
    if (need > len)
        return NULL;
    w = (size_t)snprintf(buf, len, "%s/", dir);
    for (const char *p = name; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
                  || ch == '.' || ch == '_' || ch == '-';
        buf[w++] = ok ? ch : '_';
    }
    if (w > strlen(dir) + 1 && buf[strlen(dir) + 1] == '.')
        buf[strlen(dir) + 1] = '_';  /* no hidden files */
    snprintf(buf + w, len - w, "%s", ext);
    return buf;
}

/* ---- graph ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n;
    unsigned cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0u) != 0x80u)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    /* reject overlong forms, UTF-16 surrogates and code points past U+10FFFF */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
        || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* s escaped for the inside of a DOT double-quoted string: '"' and '\\' get
 * a backslash, a newline becomes the centred line break \n, other control
 * characters a space, '&' the entity &amp; (Graphviz expands entities in
 * labels), bytes that are not valid UTF-8 '?'. */
static void dot_escape(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0) {
            fputc('?', f);
            p++;
        } else if (n > 1) {
            fwrite(p, 1, n, f);
            p += n;
        } else {
            if (*p == '"' || *p == '\\')
                fprintf(f, "\\%c", *p);
            else if (*p == '\n')
                fputs("\\n", f);
            else if (*p == '&')
                fputs("&amp;", f);
            else if (*p < 0x20 || *p == 0x7f)
                fputc(' ', f);
            else
                fputc(*p, f);
            p++;
        }
    }
}

/* " 1x6x28x28" style shape text of a declared value shape into buf. */
static void shape_text(const struct qc_value *v, char *buf, size_t len)
{
    size_t w = 0;
    buf[0] = '\0';
    if (!v->has_shape)
        return;
    for (int d = 0; d < v->shape.ndim && w < len; d++) {
        int r;
        if (v->dim_param[d])
            r = snprintf(buf + w, len - w, "%s%s", d ? "x" : " [", v->dim_param[d]);
        else if (v->shape.dims[d] < 0)
            r = snprintf(buf + w, len - w, "%s?", d ? "x" : " [");
        else
            r = snprintf(buf + w, len - w, "%s%lld", d ? "x" : " [", (long long)v->shape.dims[d]);
        if (r < 0)
            return;
        w += (size_t)r;
    }
    if (w < len)
        snprintf(buf + w, len - w, "%s", v->shape.ndim ? "]" : " scalar");
}

/* Ops whose outputs have the element type of their first input. */
static const char *const same_type_ops[] = {
    "Abs", "Add", "AveragePool", "BatchNormalization", "Ceil", "Clip", "Concat", "Conv",
    "Div", "Dropout", "Exp", "Expand", "Flatten", "Floor", "Gather", "Gemm",
    "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "HardSwish", "Identity", "LeakyRelu",
    "Log", "LRN", "MatMul", "Max", "MaxPool", "Min", "Mul", "Neg", "Pad", "Pow", "ReduceMean",
    "ReduceSum", "Relu", "Reshape", "Resize", "Round", "Sigmoid", "Slice", "Softmax", "Split",
    "Sqrt", "Squeeze", "Sub", "Tanh", "Tile", "Transpose", "Unsqueeze",
};

/* Element type of value vi: declared, else its initializer's, else derived
 * from its producer by the rules of the common ops (dt holds the types of
 * earlier values; nodes are in topological order).  UNDEFINED when unknown. */
static enum qc_dtype infer_dtype(const struct qc_graph *g, const enum qc_dtype *dt, int vi)
{
    const struct qc_value *v = &g->values[vi];
    const struct qc_node *nd;
    const struct qc_attr *a;
    if (v->dtype != QC_DTYPE_UNDEFINED)
        return v->dtype;
    if (v->init)
        return v->init->dtype;
    if (v->producer < 0)
        return QC_DTYPE_UNDEFINED;
    nd = &g->nodes[v->producer];
    if (nd->domain && *nd->domain)
        return QC_DTYPE_UNDEFINED;
    if (!strcmp(nd->op_type, "QuantizeLinear"))  /* type of y_zero_point, uint8 without */
        return nd->n_in > 2 && nd->in[2] >= 0 ? dt[nd->in[2]] : QC_DTYPE_U8;
    if (!strcmp(nd->op_type, "DequantizeLinear"))  /* type of x_scale */
        return nd->n_in > 1 && nd->in[1] >= 0 ? dt[nd->in[1]] : QC_DTYPE_UNDEFINED;
    if (!strcmp(nd->op_type, "ConvInteger") || !strcmp(nd->op_type, "MatMulInteger"))
        return QC_DTYPE_I32;
    if (!strcmp(nd->op_type, "Shape") || !strcmp(nd->op_type, "Size"))
        return QC_DTYPE_I64;
    if (!strcmp(nd->op_type, "Cast")) {
        a = qc_attr_find(&nd->attrs, "to");
        return a && a->type == QC_ATTR_INT ? (enum qc_dtype)a->i : QC_DTYPE_UNDEFINED;
    }
    for (size_t i = 0; i < QC_ARRAY_SIZE(same_type_ops); i++)
        if (!strcmp(nd->op_type, same_type_ops[i]))
            return nd->n_in > 0 && nd->in[0] >= 0 ? dt[nd->in[0]] : QC_DTYPE_UNDEFINED;
    return QC_DTYPE_UNDEFINED;
}

/* The edge attribute list for a value of type t: t as label when known. */
static void edge_attrs(FILE *f, enum qc_dtype t)
{
    if (t != QC_DTYPE_UNDEFINED && strcmp(qc_dtype_name(t), "?") != 0)
        fprintf(f, " [label=\"%s\"]", qc_dtype_name(t));
    fputs(";\n", f);
}

/* An ellipse for a graph input (id prefix "in") or output ("out"). */
static void io_node(FILE *f, const char *prefix, int idx, const struct qc_value *v,
                    const char *role)
{
    char shape[512];
    shape_text(v, shape, sizeof(shape));
    fprintf(f, "  %s%d [shape=ellipse, style=filled, fillcolor=\"#e8f0e0\", label=\"%s\\n",
            prefix, idx, role);
    dot_escape(f, v->name);
    fputs("\\n", f);
    dot_escape(f, v->dtype != QC_DTYPE_UNDEFINED ? qc_dtype_name(v->dtype) : "");
    dot_escape(f, shape);
    fputs("\"];\n", f);
}

/* The DOT text of g into a fresh buffer (*out, *len; free with free()). */
static enum qc_status dot_text(const struct qc_graph *g, const char *const *notes, char **out,
                               size_t *len)
{
    enum qc_dtype *dt = qc_malloc((size_t)QC_MAX(g->n_values, 1) * sizeof(*dt));
    FILE *f;
    int bad;
    if (!dt)
        return QC_ERR_NOMEM;
    /* graph inputs and initializers first, then node outputs in order */
    for (int i = 0; i < g->n_values; i++)
        dt[i] = g->values[i].producer < 0 ? infer_dtype(g, dt, i) : QC_DTYPE_UNDEFINED;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_out; j++)
            dt[g->nodes[i].out[j]] = infer_dtype(g, dt, g->nodes[i].out[j]);
    f = open_memstream(out, len);
    if (!f) {
        qc_log_error("graph.dot: cannot open a memory stream: %s", strerror(errno));
        qc_free(dt);
        return QC_ERR_NOMEM;
    }
    fputs("digraph qatconv {\n", f);
    fputs("  graph [rankdir=TB, fontname=\"Helvetica\", labelloc=t, label=\"", f);
    dot_escape(f, g->graph_name && *g->graph_name ? g->graph_name : "graph");
    fputs("\"];\n", f);
    fputs("  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\", "
          "fontsize=10];\n", f);
    fputs("  edge [fontname=\"Helvetica\", fontsize=8, color=\"#606060\"];\n", f);
    for (int i = 0; i < g->n_inputs; i++) {
        const struct qc_value *v = &g->values[g->inputs[i]];
        if (!v->init)
            io_node(f, "in", g->inputs[i], v, "input");
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *nd = &g->nodes[i];
        const char *note = notes ? notes[i] : NULL;
        fprintf(f, "  n%d [label=\"", i);
        dot_escape(f, nd->op_type);
        if (nd->domain && *nd->domain) {
            fputs(" (", f);
            dot_escape(f, nd->domain);
            fputs(")", f);
        }
        fputs("\\n", f);
        dot_escape(f, qc_node_label(g, nd));
        if (note && *note) {
            fputs("\\n", f);
            dot_escape(f, note);
            fputs("\", fillcolor=\"#fde3c8\"];\n", f);
        } else {
            fputs("\"];\n", f);
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *nd = &g->nodes[i];
        for (int j = 0; j < nd->n_in; j++) {
            int vi = nd->in[j];
            const struct qc_value *v;
            if (vi < 0)
                continue;
            v = &g->values[vi];
            if (v->producer >= 0)
                fprintf(f, "  n%d -> n%d", v->producer, i);
            else if (v->is_input && !v->init)
                fprintf(f, "  in%d -> n%d", vi, i);
            else
                continue;  /* initializers are shown through the node notes */
            edge_attrs(f, dt[vi]);
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int vi = g->outputs[i];
        const struct qc_value *v = &g->values[vi];
        io_node(f, "out", vi, v, "output");
        if (v->producer >= 0)
            fprintf(f, "  n%d -> out%d", v->producer, vi);
        else if (v->is_input && !v->init)
            fprintf(f, "  in%d -> out%d", vi, vi);
        else
            continue;
        edge_attrs(f, dt[vi]);
    }
    fputs("}\n", f);
    qc_free(dt);
    bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        qc_log_error("graph.dot: cannot build the DOT text");
        free(*out);
        *out = NULL;
        return QC_ERR_NOMEM;
    }
    return QC_OK;
}

/* dir + "/" + name in a fresh string (qc_free). */
static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = qc_malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, name);
    return s;
}

enum qc_status qc_plot_make_dir(const char *dir)
{
    struct stat sb;
    if (mkdir(dir, 0777) == 0)
        return QC_OK;
    if (errno == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
        return QC_OK;
    qc_log_error("%s: cannot create the plots directory: %s", dir,
                 errno == EEXIST ? "exists and is not a directory" : strerror(errno));
    return QC_ERR_IO;
}

/* Runs argv (looked up on PATH, no shell) with stdin and stdout on
 * /dev/null; its stderr is read into msg (first line, at most len - 1
 * bytes).  Returns the wait status in *wstatus, or an errno value when it
 * could not be started (0 on success). */
static int run_program(char *const argv[], int *wstatus, char *msg, size_t len)
{
    posix_spawn_file_actions_t fa;
    int fds[2], err;
    pid_t pid;
    size_t used = 0;
    char chunk[512];
    ssize_t r;

    msg[0] = '\0';
    if (pipe(fds) != 0)
        return errno;
    /* neither end may leak into the child except as its stderr */
    (void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    err = posix_spawn_file_actions_init(&fa);
    if (err == 0) {
        err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (err == 0)
            err = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        if (err == 0)
            err = posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
        if (err == 0)
            err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    close(fds[1]);
    if (err != 0) {
        close(fds[0]);
        return err;
    }
    /* drain the pipe until the child closes it, keeping the start */
    for (;;) {
        r = read(fds[0], chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r && used + 1 < len; i++)
            msg[used++] = chunk[i];
    }
    close(fds[0]);
    msg[used] = '\0';
    msg[strcspn(msg, "\r\n")] = '\0';
    while (waitpid(pid, wstatus, 0) < 0) {
        if (errno != EINTR)
            return errno;
    }
    return 0;
}

enum qc_status qc_plot_graph(const char *dir, const struct qc_graph *g,
                             const char *const *node_notes)
{
    enum qc_status st;
    char *text = NULL, *dot_path = NULL, *png_path = NULL, *tmp_path = NULL;
    char msg[512];
    size_t len = 0;
    int wstatus = 0, err;

    st = qc_plot_make_dir(dir);
    if (st != QC_OK)
        return st;
    st = QC_ERR_NOMEM;
    dot_path = join(dir, "graph.dot");
    png_path = join(dir, "graph.png");
    tmp_path = join(dir, ".graph.png.tmp");
    if (!dot_path || !png_path || !tmp_path)
        goto out;
    st = dot_text(g, node_notes, &text, &len);
    if (st != QC_OK)
        goto out;
    st = qc_write_file_atomic(dot_path, text, len);
    if (st != QC_OK)
        goto out;
    {
        char prog[] = "dot", fmt[] = "-Tpng", opt_o[] = "-o";
        char *argv[] = {prog, fmt, dot_path, opt_o, tmp_path, NULL};
        err = run_program(argv, &wstatus, msg, sizeof(msg));
    }
    if (err != 0) {
        qc_log_warn("%s: not drawn: cannot run Graphviz dot: %s (%s is written)", png_path,
                    strerror(err), dot_path);
        (void)unlink(tmp_path);
    } else if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        if (WIFEXITED(wstatus))
            qc_log_warn("%s: not drawn: dot exited with status %d%s%s", png_path,
                        WEXITSTATUS(wstatus), msg[0] ? ": " : "", msg);
        else
            qc_log_warn("%s: not drawn: dot was killed by signal %d", png_path,
                        WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
        (void)unlink(tmp_path);
    } else if (rename(tmp_path, png_path) != 0) {
        qc_log_warn("%s: not written: cannot rename %s: %s", png_path, tmp_path,
                    strerror(errno));
        (void)unlink(tmp_path);
    }
    st = QC_OK;
out:
    free(text);
    qc_free(dot_path);
    qc_free(png_path);
    qc_free(tmp_path);
    return st;
}
