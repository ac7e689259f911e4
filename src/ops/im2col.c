/*
 * im2col.c - column lowering and its adjoint for 1D/2D/3D convolutions
 * (see im2col.h for the layout).
 *
 * For each kernel offset kv along an axis, the output positions o whose input
 * i = o*stride + kv*dilation - pad lies inside [0, n) form one contiguous
 * range [lo, hi); positions outside it read (im2col) or drop (col2im) the
 * zero padding.  Computing the range once per row keeps the inner loop free
 * of bounds tests.
 */
#include <config.h>

#include "im2col.h"

#include <string.h>

#include "../qc.h"

/* Work (elements) below which a parallel region costs more than it saves. */
#define PAR_MIN_WORK 32768

int64_t qc_conv_geom_kvol(const struct qc_conv_geom *g)
{
    return g->kernel[0] * g->kernel[1] * g->kernel[2];
}

int64_t qc_conv_geom_ovol(const struct qc_conv_geom *g)
{
    return g->out[0] * g->out[1] * g->out[2];
}

int64_t qc_conv_geom_ivol(const struct qc_conv_geom *g)
{
    return g->in[0] * g->in[1] * g->in[2];
}

/* floor(a / b) and ceil(a / b) for b > 0 and any sign of a. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

/* Output positions o in [0, nout) with 0 <= o*s + off < nin, as [*lo, *hi):
 * o >= ceil(-off / s) and o <= floor((nin - 1 - off) / s). */
static void valid_range(int64_t nin, int64_t nout, int64_t s, int64_t off, int64_t *lo,
                        int64_t *hi)
{
    int64_t l = QC_MAX(0, ceil_div(-off, s));
    int64_t h = floor_div(nin - 1 - off, s) + 1;
    if (h > nout)
        h = nout;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

/* Splits row r = c*KV + kv into the channel and the per-axis input offsets
 * off[a] = k[a]*dilation[a] - pad[a]. */
static int64_t row_offsets(const struct qc_conv_geom *g, int64_t r, int64_t off[3])
{
    int64_t kv = qc_conv_geom_kvol(g);
    int64_t c = r / kv;
    int64_t rem = r % kv;
    int64_t kw = rem % g->kernel[2];
    int64_t kh = (rem / g->kernel[2]) % g->kernel[1];
    int64_t kd = rem / (g->kernel[2] * g->kernel[1]);
    off[0] = kd * g->dilation[0] - g->pad[0];
    off[1] = kh * g->dilation[1] - g->pad[1];
    off[2] = kw * g->dilation[2] - g->pad[2];
    return c;
}

/* One row of the column matrix: dst[L] gathered from channel image src. */
static void im2col_row(const struct qc_conv_geom *g, const int64_t off[3], const float *src,
                       float *dst)
{
    int64_t lo[3], hi[3];
    int64_t od_n = g->out[0], oh_n = g->out[1], ow_n = g->out[2];
    int64_t sw = g->stride[2];

    for (int a = 0; a < 3; a++)
        valid_range(g->in[a], g->out[a], g->stride[a], off[a], &lo[a], &hi[a]);
    for (int64_t od = 0; od < od_n; od++) {
        float *plane = dst + od * oh_n * ow_n;
        if (od < lo[0] || od >= hi[0]) {
            memset(plane, 0, (size_t)(oh_n * ow_n) * sizeof(float));
            continue;
        }
        int64_t id = od * g->stride[0] + off[0];
        for (int64_t oh = 0; oh < oh_n; oh++) {
            float *line = plane + oh * ow_n;
            if (oh < lo[1] || oh >= hi[1]) {
                memset(line, 0, (size_t)ow_n * sizeof(float));
                continue;
            }
            int64_t ih = oh * g->stride[1] + off[1];
            const float *in_line = src + (id * g->in[1] + ih) * g->in[2] + off[2];
            for (int64_t ow = 0; ow < lo[2]; ow++)
                line[ow] = 0.0f;
            if (sw == 1) {
                memcpy(line + lo[2], in_line + lo[2], (size_t)(hi[2] - lo[2]) * sizeof(float));
            } else {
                for (int64_t ow = lo[2]; ow < hi[2]; ow++)
                    line[ow] = in_line[ow * sw];
            }
            for (int64_t ow = hi[2]; ow < ow_n; ow++)
                line[ow] = 0.0f;
        }
    }
}

/* Adjoint of im2col_row: dst (one channel image) += scattered src[L]. */
static void col2im_row(const struct qc_conv_geom *g, const int64_t off[3], const float *src,
                       float *dst)
{
    int64_t lo[3], hi[3];
    int64_t oh_n = g->out[1], ow_n = g->out[2];
    int64_t sw = g->stride[2];

    for (int a = 0; a < 3; a++)
        valid_range(g->in[a], g->out[a], g->stride[a], off[a], &lo[a], &hi[a]);
    for (int64_t od = lo[0]; od < hi[0]; od++) {
        int64_t id = od * g->stride[0] + off[0];
        for (int64_t oh = lo[1]; oh < hi[1]; oh++) {
            int64_t ih = oh * g->stride[1] + off[1];
            const float *line = src + (od * oh_n + oh) * ow_n;
            float *out_line = dst + (id * g->in[1] + ih) * g->in[2] + off[2];
            for (int64_t ow = lo[2]; ow < hi[2]; ow++)
                out_line[ow * sw] += line[ow];
        }
    }
}

void qc_im2col(const struct qc_conv_geom *g, const float *x, float *col, int64_t ldcol,
               int threads)
{
    int64_t rows = g->channels * qc_conv_geom_kvol(g);
    int64_t l = qc_conv_geom_ovol(g);
    int64_t ivol = qc_conv_geom_ivol(g);
    int nt = threads > 1 ? threads : 1;

    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && rows * l >= PAR_MIN_WORK)
#endif
    for (int64_t r = 0; r < rows; r++) {
        int64_t off[3];
        int64_t c = row_offsets(g, r, off);
        im2col_row(g, off, x + c * ivol, col + r * ldcol);
    }
}

void qc_col2im(const struct qc_conv_geom *g, const float *col, int64_t ldcol, float *x,
               int threads)
{
    int64_t kv = qc_conv_geom_kvol(g);
    int64_t l = qc_conv_geom_ovol(g);
    int64_t ivol = qc_conv_geom_ivol(g);
    int nt = threads > 1 ? threads : 1;

    (void)nt;
    /* One channel per iteration: the rows of a channel all write into the
     * same image plane, so they stay in one thread, in row order. */
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) \
    if (nt > 1 && g->channels > 1 && g->channels * kv * l >= PAR_MIN_WORK)
#endif
    for (int64_t c = 0; c < g->channels; c++) {
        for (int64_t k = 0; k < kv; k++) {
            int64_t off[3];
            int64_t r = c * kv + k;
            row_offsets(g, r, off);
            col2im_row(g, off, col + r * ldcol, x + c * ivol);
        }
    }
}
