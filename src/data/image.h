/*
 * image.h - decoding one JPEG or PNG image file (private to src/data).
 *
 * qc_image_decode reads a file and decodes it by its content (JPEG's
 * FF D8 FF magic, PNG's 8-byte signature; the file name's extension is not
 * consulted) into interleaved pixels (HWC): 8-bit samples, or 16-bit ones
 * for a 16-bit PNG, kept as they are (N2D2 reads images with OpenCV's
 * IMREAD_UNCHANGED, so a 16-bit image keeps its depth and becomes [0,1] by
 * v / 65535).  JPEG through libjpeg-turbo's TurboJPEG API (accurate integer
 * IDCT and fancy upsampling, as libjpeg's defaults that OpenCV and PIL use);
 * PNG through libpng (palette expanded to RGB, gray below 8 bits expanded to
 * 8, interlacing handled; no gamma correction).  A corrupt or truncated file
 * is one error line naming the file and QC_ERR_DATA (libpng's longjmp is
 * caught; a JPEG warning such as a premature end of data counts as an error).
 *
 * qc_image_to_chw converts a decoded image to c = 1 or 3 float channels
 * (CHW) holding 0..255 values, the scale of the 8-bit readers: alpha is
 * dropped; gray to 3 channels is replicated; RGB to gray is OpenCV's
 * fixed-point ITU-R 601 luma (R*4899 + G*9617 + B*1868 + 2^13) >> 14 on the
 * integer samples; a 16-bit sample v becomes v * 255 / 65535.  Channels are
 * in RGB order (OpenCV, hence N2D2, holds BGR: a recipe that relies on it
 * names ColorSpace=BGR).
 */
#ifndef QATCONV_SRC_DATA_IMAGE_H
#define QATCONV_SRC_DATA_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/qc.h"

struct qc_image {
    int w, h;
    int c;      /* samples per pixel: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    int bits;   /* 8 (uint8_t samples) or 16 (uint16_t samples)          */
    void *data; /* h * w * c samples, interleaved, rows top first        */
};

/* What a failure prints: an error line, a warning ending "(skipped)", or
 * nothing (a decoding thread, whose failure the caller reports). */
enum qc_image_say { QC_IMAGE_SAY_ERROR = 0, QC_IMAGE_SAY_WARN, QC_IMAGE_SAY_NOTHING };

/* Decodes the JPEG or PNG file at path into *img (freed by qc_image_free).
 * QC_ERR_DATA with one line naming the file when it cannot be read or
 * decoded: an error, or a warning ending "(skipped)" with warn (the caller
 * skips the image). */
enum qc_status qc_image_decode(const char *path, bool warn, struct qc_image *img);
enum qc_status qc_image_decode_say(const char *path, enum qc_image_say say, struct qc_image *img);

/* The same for an image held in memory; name is used in messages. */
enum qc_status qc_image_decode_mem(const uint8_t *buf, size_t len, const char *name, bool warn,
                                   struct qc_image *img);

void qc_image_free(struct qc_image *img);

/* dst (c x h x w floats, c = 1 or 3) = the image's channels as described
 * above. */
void qc_image_to_chw(const struct qc_image *img, int c, float *dst);

#endif
