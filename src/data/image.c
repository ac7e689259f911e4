/*
 * image.c - JPEG and PNG decoding and the conversion to float channels (see
 * image.h).
 *
 * The file is read whole into memory and decoded from there, so a truncated
 * file shows as missing data to the decoder.  libpng reports errors by
 * longjmp to the setjmp in png_decode: every object that must be freed
 * afterwards lives in a struct png_job reached through a pointer that does
 * not change after setjmp, so nothing is lost or read indeterminate.
 * Images are limited to 65535 pixels a side and 2^30 bytes of samples.
 */
#include <config.h>

#include "image.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "util/log.h"

#define MAX_SIDE 65535
#define MAX_BYTES ((size_t)1 << 30)
#define MAX_FILE ((long)1 << 30)

/* One line: an error, a warning (an image skipped), or nothing. */
static void say(enum qc_image_say warn, const char *fmt, ...) QC_PRINTF(2, 3);
static void say(enum qc_image_say warn, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    if (warn == QC_IMAGE_SAY_NOTHING)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (warn == QC_IMAGE_SAY_WARN)
        qc_log_warn("%s (skipped)", line);
    else
        qc_log_error("%s", line);
}

void qc_image_free(struct qc_image *img)
{
    if (!img)
        return;
    qc_free(img->data);
    img->data = NULL;
}

static enum qc_status check_size(enum qc_image_say warn, const char *name, int w, int h, int c,
                                 int bits)
{
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE ||
        (size_t)w * (size_t)h * (size_t)c * (size_t)(bits / 8) > MAX_BYTES) {
        say(warn,
            "%s: image of %dx%d pixels: expected 1 to %d pixels a side and at most "
            "2^30 bytes",
            name, w, h, MAX_SIDE);
        return QC_ERR_DATA;
    }
    return QC_OK;
}

/* ---- JPEG ------------------------------------------------------------------------------------ */

static enum qc_status jpeg_decode(const uint8_t *buf, size_t len, const char *name,
                                  enum qc_image_say warn, struct qc_image *img)
{
    enum qc_status st = QC_ERR_DATA;
    int w, h, subsamp, colorspace;
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        say(warn, "%s: cannot start the JPEG decoder: %s", name, tjGetErrorStr2(NULL));
        return QC_ERR_DATA;
    }
    if (len > (size_t)0xffffffffUL ||
        tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp, &colorspace) != 0) {
        say(warn, "%s: corrupt JPEG file: %s", name, tjGetErrorStr2(tj));
        goto out;
    }
    int c = colorspace == TJCS_GRAY ? 1 : 3;
    if ((st = check_size(warn, name, w, h, c, 8)) != QC_OK)
        goto out;
    img->data = qc_malloc((size_t)w * h * c);
    if (!img->data) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    /* TJFLAG_STOPONWARNING off: a warning (premature end of data...) still
     * returns -1 after decoding what it can; either way the file is bad */
    if (tjDecompress2(tj, buf, (unsigned long)len, img->data, w, 0, h,
                      c == 1 ? TJPF_GRAY : TJPF_RGB, TJFLAG_ACCURATEDCT) != 0) {
        say(warn, "%s: corrupt or truncated JPEG file: %s", name, tjGetErrorStr2(tj));
        qc_image_free(img);
        st = QC_ERR_DATA;
        goto out;
    }
    img->w = w;
    img->h = h;
    img->c = c;
    img->bits = 8;
    st = QC_OK;
out:
    tjDestroy(tj);
    return st;
}

/* ---- PNG ------------------------------------------------------------------------------------- */

struct png_job {
    const char *name;
    const uint8_t *buf;
    size_t len, pos;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    uint8_t *data;
    char msg[200];
};

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_job *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof(job->msg), "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* benign (unknown chunks, iCCP profiles...) */
}

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    struct png_job *job = png_get_io_ptr(png);
    if (n > job->len - job->pos)
        png_error(png, "unexpected end of file (truncated)");
    memcpy(out, job->buf + job->pos, n);
    job->pos += n;
}

/* Runs libpng on job; false after an error (job->msg says which). */
static bool png_run(struct png_job *job, struct qc_image *img)
{
    if (setjmp(png_jmpbuf(job->png)))
        return false;
    png_set_read_fn(job->png, job, png_read_mem);
    png_read_info(job->png, job->info);
    png_uint_32 w = png_get_image_width(job->png, job->info);
    png_uint_32 h = png_get_image_height(job->png, job->info);
    int color = png_get_color_type(job->png, job->info);
    int depth = png_get_bit_depth(job->png, job->info);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(job->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(job->png);
    png_set_interlace_handling(job->png);
    png_read_update_info(job->png, job->info);
    int c = png_get_channels(job->png, job->info);
    int bits = png_get_bit_depth(job->png, job->info);
    if (w > MAX_SIDE || h > MAX_SIDE || (bits != 8 && bits != 16) || c < 1 || c > 4) {
        snprintf(job->msg, sizeof(job->msg),
                 "unsupported image (%ux%u pixels, %d channels of "
                 "%d bits)",
                 (unsigned)w, (unsigned)h, c, bits);
        return false;
    }
    if ((size_t)w * h * c * (size_t)(bits / 8) > MAX_BYTES) {
        snprintf(job->msg, sizeof(job->msg), "image of %ux%u pixels is too large", (unsigned)w,
                 (unsigned)h);
        return false;
    }
    size_t row = (size_t)w * c * (size_t)(bits / 8);
    job->data = malloc(row * h);
    job->rows = malloc(h * sizeof(*job->rows));
    if (!job->data || !job->rows) {
        snprintf(job->msg, sizeof(job->msg), "out of memory");
        return false;
    }
    for (png_uint_32 y = 0; y < h; y++)
        job->rows[y] = job->data + y * row;
    png_read_image(job->png, job->rows);
    png_read_end(job->png, NULL);
    /* PNG stores 16-bit samples big-endian; make them native */
    if (bits == 16) {
        size_t n = (size_t)w * h * c;
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)((job->data[2 * i] << 8) | job->data[2 * i + 1]);
            memcpy(job->data + 2 * i, &v, 2);
        }
    }
    img->w = (int)w;
    img->h = (int)h;
    img->c = c;
    img->bits = bits;
    return true;
}

static enum qc_status png_decode(const uint8_t *buf, size_t len, const char *name,
                                 enum qc_image_say warn, struct qc_image *img)
{
    struct png_job *job = calloc(1, sizeof(*job));
    enum qc_status st = QC_ERR_DATA;
    if (!job) {
        say(warn, "out of memory");
        return QC_ERR_NOMEM;
    }
    job->name = name;
    job->buf = buf;
    job->len = len;
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_on_error, png_on_warning);
    job->info = job->png ? png_create_info_struct(job->png) : NULL;
    if (!job->png || !job->info) {
        say(warn, "%s: cannot start the PNG decoder", name);
    } else if (!png_run(job, img)) {
        say(warn, "%s: corrupt or truncated PNG file: %s", name, job->msg);
    } else {
        /* hand the samples over in qc_malloc storage */
        size_t n = (size_t)img->w * img->h * img->c * (size_t)(img->bits / 8);
        img->data = qc_malloc(n);
        if (img->data) {
            memcpy(img->data, job->data, n);
            st = QC_OK;
        } else {
            st = QC_ERR_NOMEM;
        }
    }
    png_destroy_read_struct(job->png ? &job->png : NULL, job->info ? &job->info : NULL, NULL);
    free(job->rows);
    free(job->data);
    free(job);
    return st;
}

/* ---- entry points ---------------------------------------------------------------------------- */

static enum qc_status decode_mem(const uint8_t *buf, size_t len, const char *name,
                                 enum qc_image_say warn, struct qc_image *img)
{
    static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    *img = (struct qc_image){ 0 };
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return jpeg_decode(buf, len, name, warn, img);
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0)
        return png_decode(buf, len, name, warn, img);
    say(warn, "%s: not a JPEG or PNG file (unknown signature)", name);
    return QC_ERR_DATA;
}

enum qc_status qc_image_decode_say(const char *path, enum qc_image_say warn, struct qc_image *img)
{
    enum qc_status st = QC_ERR_DATA;
    uint8_t *buf = NULL;
    long len = -1;
    *img = (struct qc_image){ 0 };
    FILE *f = fopen(path, "rb");
    if (!f) {
        say(warn, "%s: cannot open: %s", path, strerror(errno));
        return QC_ERR_DATA;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        say(warn, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (len == 0 || len > MAX_FILE) {
        say(warn, "%s: %s", path, len == 0 ? "empty image file" : "image file over 1 GiB");
        goto out;
    }
    buf = qc_malloc((size_t)len);
    if (!buf) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        say(warn, "%s: cannot read: %s", path, ferror(f) ? strerror(errno) : "short read");
        goto out;
    }
    st = decode_mem(buf, (size_t)len, path, warn, img);
out:
    qc_free(buf);
    fclose(f);
    return st;
}

enum qc_status qc_image_decode_mem(const uint8_t *buf, size_t len, const char *name, bool warn,
                                   struct qc_image *img)
{
    return decode_mem(buf, len, name, warn ? QC_IMAGE_SAY_WARN : QC_IMAGE_SAY_ERROR, img);
}

enum qc_status qc_image_decode(const char *path, bool warn, struct qc_image *img)
{
    return qc_image_decode_say(path, warn ? QC_IMAGE_SAY_WARN : QC_IMAGE_SAY_ERROR, img);
}

/* One sample as an integer of its own depth. */
static inline int sample(const struct qc_image *img, size_t i)
{
    return img->bits == 16 ? ((const uint16_t *)img->data)[i] : ((const uint8_t *)img->data)[i];
}

void qc_image_to_chw(const struct qc_image *img, int c, float *dst)
{
    size_t plane = (size_t)img->w * img->h;
    int color = img->c >= 3; /* alpha, if any, is the last sample */
    float scale = img->bits == 16 ? 255.0f / 65535.0f : 1.0f;
    for (size_t p = 0; p < plane; p++) {
        size_t s = p * (size_t)img->c;
        if (!color) {
            float v = (float)sample(img, s) * scale;
            for (int ch = 0; ch < c; ch++)
                dst[(size_t)ch * plane + p] = v;
        } else if (c == 1) {
            /* OpenCV's RGB2Gray: fixed point with 14 fraction bits */
            int y = (sample(img, s) * 4899 + sample(img, s + 1) * 9617 + sample(img, s + 2) * 1868 +
                     (1 << 13)) >>
                    14;
            dst[p] = (float)y * scale;
        } else {
            for (int ch = 0; ch < c; ch++)
                dst[(size_t)ch * plane + p] = (float)sample(img, s + (size_t)ch) * scale;
        }
    }
}
