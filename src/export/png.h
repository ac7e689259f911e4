/*
 * png.h - a tiny RGB raster and its PNG encoder, for the --plots output.
 *
 * A struct qc_canvas is width x height pixels, 3 bytes (R, G, B) each, row
 * by row from the top-left corner.  Drawing clips to the canvas, so callers
 * may pass coordinates partly or wholly outside it.  Colours are 0xRRGGBB.
 * Text uses a built-in 5x7 bitmap font with descenders (ASCII 32..126,
 * others drawn as '?') in 6x10 cells, optionally scaled by an integer
 * factor.  qc_png_write writes an 8-bit truecolour PNG (no interlace),
 * encoded by libpng, atomically.
 */
#ifndef QATCONV_SRC_EXPORT_PNG_H
#define QATCONV_SRC_EXPORT_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "util/qc.h"

/* Size of one character cell of the built-in font at scale 1, in pixels. */
#define QC_FONT_CELL_W 6
#define QC_FONT_CELL_H 10

struct qc_canvas {
    int      width, height;
    uint8_t *pixels;                         /* width * height * 3 bytes, RGB      */
};

/* Allocates a width x height canvas (1..16384 each) filled with rgb. */
enum qc_status qc_canvas_init(struct qc_canvas *c, int width, int height, uint32_t rgb);
/* Frees the pixels; c may be zeroed or already freed. */
void qc_canvas_free(struct qc_canvas *c);

void qc_canvas_pixel(struct qc_canvas *c, int x, int y, uint32_t rgb);
/* The rectangle [x, x + w) x [y, y + h). */
void qc_canvas_fill_rect(struct qc_canvas *c, int x, int y, int w, int h, uint32_t rgb);
/* Horizontal line from x0 to x1 and vertical line from y0 to y1, ends
 * included, in either order. */
void qc_canvas_hline(struct qc_canvas *c, int x0, int x1, int y, uint32_t rgb);
void qc_canvas_vline(struct qc_canvas *c, int x, int y0, int y1, uint32_t rgb);
/* Any straight line, ends included (Bresenham). */
void qc_canvas_line(struct qc_canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb);

/* Width in pixels of s drawn at the given scale (>= 1); the height of a line
 * is QC_FONT_CELL_H * scale. */
int qc_canvas_text_width(const char *s, int scale);
/* Draws s with its cell's top-left corner at (x, y); returns the width. */
int qc_canvas_text(struct qc_canvas *c, int x, int y, const char *s, uint32_t rgb, int scale);

/* The PNG file of c in memory (free *out with qc_free). */
enum qc_status qc_png_encode(const struct qc_canvas *c, uint8_t **out, size_t *len);
/* Encodes c and writes it to path atomically; errors name path. */
enum qc_status qc_png_write(const char *path, const struct qc_canvas *c);

#endif
