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

#include "util/qc.h"

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

/* One kernel tap (position kv of the KV): the per-axis input offsets
 * off[a] = k[a]*dilation[a] - pad[a] and the output range [lo, hi) that
 * reads inside the image.  It is the same for every channel, so it is
 * computed once per tap, not once per row. */
struct tap {
    int64_t off[3], lo[3], hi[3];
};

static void tap_setup(const struct qc_conv_geom *g, int64_t kv, struct tap *t)
{
    int64_t k[3];
    k[2] = kv % g->kernel[2];
    k[1] = (kv / g->kernel[2]) % g->kernel[1];
    k[0] = kv / (g->kernel[2] * g->kernel[1]);
    for (int a = 0; a < 3; a++) {
        t->off[a] = k[a] * g->dilation[a] - g->pad[a];
        valid_range(g->in[a], g->out[a], g->stride[a], t->off[a], &t->lo[a], &t->hi[a]);
    }
}

/* One row of the column matrix: dst[L] gathered from channel image src. */
static void im2col_row(const struct qc_conv_geom *g, const struct tap *t,
                       const float *restrict src, float *restrict dst)
{
    int64_t od_n = g->out[0], oh_n = g->out[1], ow_n = g->out[2];
    int64_t lo2 = t->lo[2], hi2 = t->hi[2];
    int64_t sw = g->stride[2];

    for (int64_t od = 0; od < od_n; od++) {
        float *plane = dst + od * oh_n * ow_n;
        if (od < t->lo[0] || od >= t->hi[0]) {
            memset(plane, 0, (size_t)(oh_n * ow_n) * sizeof(float));
            continue;
        }
        int64_t id = od * g->stride[0] + t->off[0];
        for (int64_t oh = 0; oh < oh_n; oh++) {
            float *restrict line = plane + oh * ow_n;
            if (oh < t->lo[1] || oh >= t->hi[1]) {
                for (int64_t ow = 0; ow < ow_n; ow++)
                    line[ow] = 0.0f;
                continue;
            }
            int64_t ih = oh * g->stride[1] + t->off[1];
            const float *restrict in_line = src + (id * g->in[1] + ih) * g->in[2] + t->off[2];
            for (int64_t ow = 0; ow < lo2; ow++)
                line[ow] = 0.0f;
            /* plain loops: lines are short (tens of floats), where a memcpy
             * call costs more than the copy */
            if (sw == 1) {
                for (int64_t ow = lo2; ow < hi2; ow++)
                    line[ow] = in_line[ow];
            } else {
                for (int64_t ow = lo2; ow < hi2; ow++)
                    line[ow] = in_line[ow * sw];
            }
            for (int64_t ow = hi2; ow < ow_n; ow++)
                line[ow] = 0.0f;
        }
    }
}

/* Adjoint of im2col_row: dst (one channel image) += scattered src[L]. */
static void col2im_row(const struct qc_conv_geom *g, const struct tap *t,
                       const float *restrict src, float *restrict dst)
{
    int64_t oh_n = g->out[1], ow_n = g->out[2];
    int64_t lo2 = t->lo[2], hi2 = t->hi[2];
    int64_t sw = g->stride[2];

    for (int64_t od = t->lo[0]; od < t->hi[0]; od++) {
        int64_t id = od * g->stride[0] + t->off[0];
        for (int64_t oh = t->lo[1]; oh < t->hi[1]; oh++) {
            int64_t ih = oh * g->stride[1] + t->off[1];
            const float *line = src + (od * oh_n + oh) * ow_n;
            float *out_line = dst + (id * g->in[1] + ih) * g->in[2] + t->off[2];
            if (sw == 1) {
                for (int64_t ow = lo2; ow < hi2; ow++)
                    out_line[ow] += line[ow];
            } else {
                for (int64_t ow = lo2; ow < hi2; ow++)
                    out_line[ow * sw] += line[ow];
            }
        }
    }
}

void qc_im2col(const struct qc_conv_geom *g, const float *x, float *col, int64_t ldcol,
               int threads)
{
    int64_t kv = qc_conv_geom_kvol(g);
    int64_t l = qc_conv_geom_ovol(g);
    int64_t ivol = qc_conv_geom_ivol(g);
    int nt = threads > 1 ? threads : 1;

    (void)nt;
    (void)l;
    /* row r = c*KV + k; taps outer so that each tap is set up once */
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) \
    if (nt > 1 && g->channels * kv * l >= PAR_MIN_WORK)
#endif
    for (int64_t k = 0; k < kv; k++) {
        struct tap t;
        tap_setup(g, k, &t);
        for (int64_t c = 0; c < g->channels; c++)
            im2col_row(g, &t, x + c * ivol, col + (c * kv + k) * ldcol);
    }
}

void qc_col2im(const struct qc_conv_geom *g, const float *col, int64_t ldcol, float *x,
               int threads)
{
    int64_t kv = qc_conv_geom_kvol(g);
    int64_t l = qc_conv_geom_ovol(g);
    int64_t ivol = qc_conv_geom_ivol(g);
    int nt = threads > 1 ? threads : 1;

    /* Every channel image takes its rows in tap order, whichever loop is
     * outer, so both orders give the same sums.  Serial: taps outer, each
     * set up once.  Parallel: one channel per iteration (the rows of a
     * channel all write into the same image plane, so they stay in one
     * thread). */
    if (nt <= 1 || g->channels <= 1 || g->channels * kv * l < PAR_MIN_WORK) {
        for (int64_t k = 0; k < kv; k++) {
            struct tap t;
            tap_setup(g, k, &t);
            for (int64_t c = 0; c < g->channels; c++)
                col2im_row(g, &t, col + (c * kv + k) * ldcol, x + c * ivol);
        }
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int64_t c = 0; c < g->channels; c++) {
        for (int64_t k = 0; k < kv; k++) {
            struct tap t;
            tap_setup(g, k, &t);
            col2im_row(g, &t, col + (c * kv + k) * ldcol, x + c * ivol);
        }
    }
}
