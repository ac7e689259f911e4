/*
 * conv_direct.c - direct (im2col-free) 2D Conv, forward and backward, for
 * group-1 convolutions with few channels (see qc_direct_supported).
 *
 * All three products run through one register-blocked tile kernel:
 *
 *     out[j][i] = sum_t vec[t][i] * buf[tile[j] + inner[t]]
 *
 * for j < NR tile entries and i < CB (8, 16 or 32) vector lanes; vec is a
 * packed [n, CB] matrix and tile[] and inner[] are int32 offsets into a
 * zero-bordered copy of one image.  With xp the padded input [C_in, Hb, Wb]
 * (rows of x at ph.., columns at pw..), K = C_in*kh*kw taps and L = oh*ow
 * output pixels:
 *
 *   forward  y[m, p]  = sum_k W[m, k] * xp[pix(p) + tap(k)]      tile = pixels,
 *                       pix(p) = oh*sh*Wb + ow*sw,                inner = taps,
 *                       tap(k) = ci*Hb*Wb + kh*dh*Wb + kw*dw      vec = W^T
 *   dW       dW[m, k] += sum_p dY[m, p] * xp[pix(p) + tap(k)]    tile = taps,
 *                                                                 inner = pixels,
 *                                                                 vec = dY^T
 *   dX       dX[c, i] += sum_{m,k} W[m, c, k] * dY[m, o(i, k)]   (o*s - pad + k*dil = i)
 *
 * dX is split into the s_h*s_w phases r = (i + pad) mod s: a tap k reaches
 * phase r only when k*dil = r (mod s), and then o = q - t with q = (i+pad-r)/s
 * and t = (k*dil-r)/s, so each phase is again a tile product (tile = its
 * pixels q, inner = its taps (m, t), vec = the matching rows of W) over a
 * zero-bordered copy of dY.  Stride 1 has one phase: the usual "full"
 * correlation with the flipped kernel.
 *
 * The lanes are output channels (forward, dW) or input channels (dX), packed
 * in blocks of CB with zero lanes past the end.  Tile lists are padded to a
 * multiple of NR by repeating their last entry; the rows they produce land
 * past the used part of the staging buffers and are never read.
 *
 * Kernels: a portable one (GNU vector extensions, 4 lanes) and, on x86, AVX2
 * and AVX-512 versions of the same source picked at run time with
 * __builtin_cpu_supports; the build itself stays at the baseline -march.
 *
 * Layouts: the kernels produce pixel-major tiles ([pixel][lane]); the
 * forward and dX write a whole image's tiles into a staging buffer and move
 * it to NCHW with one blocked transposition (4x4 SSE blocks on x86; the
 * forward applies its epilogue there: bias, residual, relu, see struct
 * qc_conv_epilogue), and dW
 * keeps its partial sums tap-major ([blk][k][lane], whole tile rows added as
 * vectors) until the final reduction.
 *
 * Threads: images are split statically over the threads; each thread owns
 * its buffers and its dW/dB partials (added in thread order by the caller's
 * qc_direct_backward), so results depend on the thread count only.
 */
#include <config.h>

#include "op.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define DIRECT_SSE 1
#endif

#include "im2col.h"

#define DIRECT_MAX_CHANNELS 64
#define DIRECT_MAX_K 1024
#define NR_MAX 14
#define CB_MAX 32
/* Images whose dW products one kernel call sums (longer inner loops, fewer
 * partial-sum updates). */
#define DW_IMAGES 8

/* The kernels load and store through *u types: no alignment assumed, and
 * allowed to alias the float buffers. */
typedef float v4sf __attribute__((vector_size(16)));
typedef float v4sfu __attribute__((vector_size(16), aligned(4), may_alias));
#if defined(__x86_64__) || defined(__i386__)
#define DIRECT_X86 1
typedef float v8sf __attribute__((vector_size(32)));
typedef float v8sfu __attribute__((vector_size(32), aligned(4), may_alias));
typedef float v16sf __attribute__((vector_size(64)));
typedef float v16sfu __attribute__((vector_size(64), aligned(4), may_alias));
#endif

typedef void (*tile_fn)(const float *restrict buf, const int32_t *restrict tile,
                        const int32_t *restrict inner, const float *restrict vec, int64_t n,
                        float *restrict out);

/* out[j][NV*VW] = sum_t vec[t][0 .. NV*VW) * buf[tile[j] + inner[t]]; the NR*NV
 * accumulators stay in registers. */
#define DEFINE_TILE(NAME, ATTR, VT, VTU, VW, NV, NR)                                      \
    ATTR static void NAME(const float *restrict buf, const int32_t *restrict tile,      \
                          const int32_t *restrict inner, const float *restrict vec,     \
                          int64_t n, float *restrict out)                               \
    {                                                                                   \
        VT acc[NR][NV];                                                                 \
        const float *src[NR];                                                           \
        _Pragma("GCC unroll 16") for (int j = 0; j < NR; j++)                            \
        {                                                                               \
            src[j] = buf + tile[j];                                                     \
            _Pragma("GCC unroll 16") for (int i = 0; i < NV; i++) acc[j][i] = (VT){0};  \
        }                                                                               \
        for (int64_t t = 0; t < n; t++) {                                               \
            VT v[NV];                                                                   \
            int32_t o = inner[t];                                                       \
            _Pragma("GCC unroll 16") for (int i = 0; i < NV; i++) v[i] =                \
                *(const VTU *)(vec + (t * NV + i) * VW);                                \
            _Pragma("GCC unroll 16") for (int j = 0; j < NR; j++)                        \
            {                                                                           \
                float s = src[j][o];                                                    \
                _Pragma("GCC unroll 16") for (int i = 0; i < NV; i++) acc[j][i] +=      \
                    v[i] * s;                                                           \
            }                                                                           \
        }                                                                               \
        _Pragma("GCC unroll 16") for (int j = 0; j < NR; j++)                            \
            _Pragma("GCC unroll 16") for (int i = 0; i < NV; i++)                        \
                *(VTU *)(out + (j * NV + i) * VW) = acc[j][i];                          \
    }

DEFINE_TILE(tile8_base, , v4sf, v4sfu, 4, 2, 4)
DEFINE_TILE(tile16_base, , v4sf, v4sfu, 4, 4, 3)
DEFINE_TILE(tile32_base, , v4sf, v4sfu, 4, 8, 1)
#ifdef DIRECT_X86
DEFINE_TILE(tile8_avx2, __attribute__((target("avx2,fma"))), v8sf, v8sfu, 8, 1, 12)
DEFINE_TILE(tile16_avx2, __attribute__((target("avx2,fma"))), v8sf, v8sfu, 8, 2, 6)
DEFINE_TILE(tile32_avx2, __attribute__((target("avx2,fma"))), v8sf, v8sfu, 8, 4, 3)
DEFINE_TILE(tile16_avx512, __attribute__((target("avx512f,avx2,fma"))), v16sf, v16sfu, 16, 1, 14)
DEFINE_TILE(tile32_avx512, __attribute__((target("avx512f,avx2,fma"))), v16sf, v16sfu, 16, 2, 7)
#endif

/* The tile kernel for cb lanes (8, 16 or 32) on this CPU, and its NR.  8
 * lanes take the AVX2 kernel on AVX-512 machines too (one ymm vector). */
static tile_fn pick_tile(int64_t cb, int *nr)
{
#ifdef DIRECT_X86
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (cb > 8 && __builtin_cpu_supports("avx512f")) {
        *nr = cb == 16 ? 14 : 7;
        return cb == 16 ? tile16_avx512 : tile32_avx512;
    }
    if (avx2) {
        *nr = cb == 8 ? 12 : cb == 16 ? 6 : 3;
        return cb == 8 ? tile8_avx2 : cb == 16 ? tile16_avx2 : tile32_avx2;
    }
#endif
    *nr = cb == 8 ? 4 : cb == 16 ? 3 : 1;
    return cb == 8 ? tile8_base : cb == 16 ? tile16_base : tile32_base;
}

/* Lanes per block for n channels: 8 up to 8 channels (no idle lanes for
 * the 8-channel layers of small CNNs), 16 up to 16, else 32.  Each lane is
 * its own sum in the same tap order whatever the width, so the width
 * changes no result. */
static int64_t lanes(int64_t n)
{
    return n <= 8 ? 8 : n <= 16 ? 16 : 32;
}

static int64_t round_up(int64_t v, int64_t m)
{
    return (v + m - 1) / m * m;
}

/* Everything one call needs to know: sizes, buffer shapes and the layout
 * (in floats from the workspace start) of the shared tables and of each
 * thread's slice. */
struct direct_layout {
    int64_t cin, cout, ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
    int64_t k, l, lin;              /* taps C_in*kh*kw, output and input pixels */
    int64_t cbm, cbc;               /* lanes over output / input channels      */
    int64_t nbm, nbc;               /* blocks of them                          */
    int64_t hb, wb;                 /* padded x                                 */
    int64_t th, tw, hb2, wb2;       /* padded dY: top/left border, size         */
    /* shared part */
    int64_t wf, pixf, pixw, tapf, wx, xtap, xpix, xpos, xcnt, shared;
    /* per-thread slice, offsets inside it */
    int64_t xp, dyt, dyp, dwp, dbp, out, stg, slice;
};

static int64_t line(int64_t floats)
{
    return round_up(floats, 16);
}

static void layout(const struct qc_conv_geom *g, int64_t c_out, struct direct_layout *s)
{
    int64_t phases, lp;

    s->cin = g->channels;
    s->cout = c_out;
    s->ih = g->in[1];
    s->iw = g->in[2];
    s->oh = g->out[1];
    s->ow = g->out[2];
    s->kh = g->kernel[1];
    s->kw = g->kernel[2];
    s->sh = g->stride[1];
    s->sw = g->stride[2];
    s->dh = g->dilation[1];
    s->dw = g->dilation[2];
    s->ph = g->pad[1];
    s->pw = g->pad[2];
    s->k = s->cin * s->kh * s->kw;
    s->l = s->oh * s->ow;
    s->lin = s->ih * s->iw;
    s->cbm = lanes(s->cout);
    s->cbc = lanes(s->cin);
    s->nbm = (s->cout + s->cbm - 1) / s->cbm;
    s->nbc = (s->cin + s->cbc - 1) / s->cbc;
    /* x at rows ph .. ph+ih; the last window ends at (oh-1)*sh + (kh-1)*dh */
    s->hb = QC_MAX(s->ph + s->ih, (s->oh - 1) * s->sh + (s->kh - 1) * s->dh + 1);
    s->wb = QC_MAX(s->pw + s->iw, (s->ow - 1) * s->sw + (s->kw - 1) * s->dw + 1);
    /* dY row o sits at o + th; q = (i+pad)/s over i < ih, t <= (k-1)*dil/s */
    s->th = QC_MAX(0, (s->kh - 1) * s->dh / s->sh - s->ph / s->sh);
    s->tw = QC_MAX(0, (s->kw - 1) * s->dw / s->sw - s->pw / s->sw);
    s->hb2 = s->th + QC_MAX(s->oh, (s->ph + s->ih - 1) / s->sh + 1);
    s->wb2 = s->tw + QC_MAX(s->ow, (s->pw + s->iw - 1) / s->sw + 1);

    phases = s->sh * s->sw;
    lp = s->l + NR_MAX;
    s->wf = 0;                                             /* W^T [nbm][k][cbm]    */
    s->pixf = s->wf + line(s->nbm * s->k * s->cbm);        /* pixel offsets in xp  */
    s->pixw = s->pixf + line(lp);                          /* DW_IMAGES xp images  */
    s->tapf = s->pixw + line(DW_IMAGES * s->l);            /* tap offsets in xp    */
    s->wx = s->tapf + line(s->k + NR_MAX);                 /* per phase [nbc][n][cbc] */
    s->xtap = s->wx + line(s->nbc * s->cout * s->kh * s->kw * s->cbc);
    s->xpix = s->xtap + line(s->cout * s->kh * s->kw);     /* taps of all phases   */
    s->xpos = s->xpix + line(s->lin + phases * NR_MAX);    /* dX index -> position */
    s->xcnt = s->xpos + line(s->lin);
    s->shared = s->xcnt + line(4 * phases);                /* per phase: 4 counts  */

    s->xp = 0;                                             /* DW_IMAGES images     */
    s->dyt = s->xp + DW_IMAGES * line(s->cin * s->hb * s->wb);
    s->dyp = s->dyt + line(s->nbm * DW_IMAGES * s->l * s->cbm);
    s->dwp = s->dyp + line(s->cout * s->hb2 * s->wb2);    /* [nbm][k][cbm]        */
    s->dbp = s->dwp + line(s->nbm * s->k * s->cbm);
    s->out = s->dbp + line(s->cout);
    s->stg = s->out + line(NR_MAX * CB_MAX);               /* [position][lane]     */
    s->slice = s->stg + line((QC_MAX(s->l, s->lin + phases * NR_MAX) + NR_MAX) * CB_MAX);
}

bool qc_direct_supported(const struct qc_conv_geom *g, int64_t c_out)
{
    struct direct_layout s;
    if (g->in[0] != 1 || g->out[0] != 1 || g->kernel[0] != 1)
        return false;
    if (g->channels > DIRECT_MAX_CHANNELS || c_out > DIRECT_MAX_CHANNELS)
        return false;
    if (g->channels * g->kernel[1] * g->kernel[2] > DIRECT_MAX_K)
        return false;
    layout(g, c_out, &s);
    /* int32 offsets into the padded images */
    return s.cin * s.hb * s.wb < ((int64_t)1 << 30) && s.cout * s.hb2 * s.wb2 < ((int64_t)1 << 30);
}

static int direct_threads(int64_t batch, int threads)
{
    return (int)QC_MAX(QC_MIN((int64_t)threads, batch), 1);
}

size_t qc_direct_workspace(const struct qc_conv_geom *g, int64_t c_out, int64_t batch,
                           int threads)
{
    struct direct_layout s;
    layout(g, c_out, &s);
    return (size_t)(s.shared + s.slice * direct_threads(batch, threads)) * sizeof(float);
}

/* Pixel and tap tables of the forward and dW products (offsets into xp),
 * the pixel list padded to a multiple of nr_pix and the tap list to one of
 * nr_tap by repeating the last entry (the rows they give are not used),
 * and the packed W^T. */
static void build_forward(const struct direct_layout *s, const float *w, float *ws,
                          int nr_pix, int nr_tap)
{
    int32_t *pix = (int32_t *)(ws + s->pixf), *pixw = (int32_t *)(ws + s->pixw);
    int32_t *tap = (int32_t *)(ws + s->tapf);
    float *wf = ws + s->wf;
    int64_t n;

    for (int64_t oh = 0; oh < s->oh; oh++)
        for (int64_t ow = 0; ow < s->ow; ow++)
            pix[oh * s->ow + ow] = (int32_t)(oh * s->sh * s->wb + ow * s->sw);
    for (n = s->l; n < round_up(s->l, nr_pix); n++)
        pix[n] = pix[s->l - 1];
    /* image b of a dW group sits at b * line(cin*hb*wb) in xp */
    for (int64_t b = 0; b < DW_IMAGES; b++)
        for (n = 0; n < s->l; n++)
            pixw[b * s->l + n] = (int32_t)(b * line(s->cin * s->hb * s->wb) + pix[n]);
    for (int64_t c = 0; c < s->cin; c++)
        for (int64_t a = 0; a < s->kh; a++)
            for (int64_t b = 0; b < s->kw; b++) {
                int64_t k = (c * s->kh + a) * s->kw + b;
                tap[k] = (int32_t)(c * s->hb * s->wb + a * s->dh * s->wb + b * s->dw);
            }
    for (n = s->k; n < round_up(s->k, nr_tap); n++)
        tap[n] = tap[s->k - 1];
    /* wf[blk][k][i] = W[blk*cb + i, k], 0 past c_out */
    for (int64_t blk = 0; blk < s->nbm; blk++)
        for (int64_t k = 0; k < s->k; k++)
            for (int64_t i = 0; i < s->cbm; i++) {
                int64_t m = blk * s->cbm + i;
                wf[(blk * s->k + k) * s->cbm + i] = m < s->cout ? w[m * s->k + k] : 0.0f;
            }
}

/* Phase tables of dX (see the file comment).  Per phase ph (rh*sw + rw):
 * cnt[4*ph ..] = first tap, tap count n, first pixel, pixel count (padded
 * to nr); taps (m, a, b) are offsets into dyp, pixels offsets into dyp,
 * and pos[] gives each dX index its position in the pixel list; the
 * phase's weights are wx + t0*nbc*cbc as [nbc][n][cbc]:
 * W[m, blk*cb + i, a, b], 0 past c_in. */
static void build_dx(const struct direct_layout *s, const float *w, float *ws, int nr)
{
    int32_t *tap = (int32_t *)(ws + s->xtap), *pix = (int32_t *)(ws + s->xpix);
    int32_t *pos = (int32_t *)(ws + s->xpos), *cnt = (int32_t *)(ws + s->xcnt);
    int64_t nt = 0, np = 0, kvol = s->kh * s->kw;

    for (int64_t rh = 0; rh < s->sh; rh++)
        for (int64_t rw = 0; rw < s->sw; rw++) {
            int64_t ph = rh * s->sw + rw, t0 = nt, p0 = np, n = 0;
            float *wx = ws + s->wx + t0 * s->nbc * s->cbc;
            for (int64_t a = 0; a < s->kh; a++)
                for (int64_t b = 0; b < s->kw; b++)
                    n += (a * s->dh) % s->sh == rh && (b * s->dw) % s->sw == rw;
            n *= s->cout;
            for (int64_t m = 0; m < s->cout; m++)
                for (int64_t a = 0; a < s->kh; a++)
                    for (int64_t b = 0; b < s->kw; b++) {
                        int64_t t = nt - t0;
                        if ((a * s->dh) % s->sh != rh || (b * s->dw) % s->sw != rw)
                            continue;
                        /* o = q - t: (k*dil - r)/s rows/columns back */
                        tap[nt] = (int32_t)(m * s->hb2 * s->wb2 -
                                            (a * s->dh - rh) / s->sh * s->wb2 -
                                            (b * s->dw - rw) / s->sw);
                        for (int64_t blk = 0; blk < s->nbc; blk++)
                            for (int64_t i = 0; i < s->cbc; i++) {
                                int64_t c = blk * s->cbc + i;
                                wx[(blk * n + t) * s->cbc + i] =
                                    c < s->cin ? w[(m * s->cin + c) * kvol + a * s->kw + b]
                                               : 0.0f;
                            }
                        nt++;
                    }
            for (int64_t y = 0; y < s->ih; y++) {
                if ((y + s->ph) % s->sh != rh)
                    continue;
                for (int64_t x = 0; x < s->iw; x++) {
                    if ((x + s->pw) % s->sw != rw)
                        continue;
                    pix[np] = (int32_t)(((y + s->ph) / s->sh + s->th) * s->wb2 +
                                        (x + s->pw) / s->sw + s->tw);
                    pos[y * s->iw + x] = (int32_t)np;
                    np++;
                }
            }
            if (np > p0)
                for (; (np - p0) % nr != 0; np++)
                    pix[np] = pix[np - 1];
            cnt[4 * ph] = (int32_t)t0;
            cnt[4 * ph + 1] = (int32_t)(nt - t0);
            cnt[4 * ph + 2] = (int32_t)p0;
            cnt[4 * ph + 3] = (int32_t)(np - p0);
        }
}

/* Copies one image's channels (h x w planes) into a zero-bordered buffer
 * of hb x wb planes at row r0, column c0; the border was zeroed once. */
static void fill_padded(const float *src, int64_t ch, int64_t h, int64_t w, float *dst,
                        int64_t hb, int64_t wb, int64_t r0, int64_t c0)
{
    /* plain loops: rows are a few tens of floats, shorter than a memcpy
     * call is worth */
    for (int64_t c = 0; c < ch; c++)
        for (int64_t y = 0; y < h; y++) {
            float *restrict d = dst + (c * hb + r0 + y) * wb + c0;
            const float *restrict sr = src + (c * h + y) * w;
            for (int64_t i = 0; i < w; i++)
                d[i] = sr[i];
        }
}

/* dst[c*dld + r] = src[r*sld + c] for r < rows, c < cols. */
static void transpose(const float *restrict src, int64_t sld, float *restrict dst, int64_t dld,
                      int64_t rows, int64_t cols)
{
    int64_t r = 0;
#ifdef DIRECT_SSE
    for (; r + 4 <= rows; r += 4) {
        const float *s0 = src + r * sld;
        int64_t c = 0;
        for (; c + 4 <= cols; c += 4) {
            __m128 a = _mm_loadu_ps(s0 + c), b = _mm_loadu_ps(s0 + sld + c);
            __m128 e = _mm_loadu_ps(s0 + 2 * sld + c), f = _mm_loadu_ps(s0 + 3 * sld + c);
            _MM_TRANSPOSE4_PS(a, b, e, f);
            _mm_storeu_ps(dst + c * dld + r, a);
            _mm_storeu_ps(dst + (c + 1) * dld + r, b);
            _mm_storeu_ps(dst + (c + 2) * dld + r, e);
            _mm_storeu_ps(dst + (c + 3) * dld + r, f);
        }
        for (; c < cols; c++)
            for (int64_t i = 0; i < 4; i++)
                dst[c * dld + r + i] = s0[i * sld + c];
    }
#endif
    for (; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            dst[c * dld + r] = src[r * sld + c];
}

/* One output value through the epilogue: + bias, + residual, relu (see
 * struct qc_conv_epilogue; b and res NULL when absent). */
static inline float ep_value(float v, const float *b, const float *res, bool relu)
{
    if (b)
        v = v + *b;
    if (res)
        v = v + *res;
    return relu && v < 0.0f ? 0.0f : v;
}

/* dst[c*dld + r] = ep(src[r*sld + c]) for r < rows, c < cols: transpose()
 * with the epilogue of channels 0 .. cols-1 (bias[c] when has_b; res: the
 * residual laid out as dst when has_r; relu).  Always inlined with constant
 * flags (transpose_ep), so each combination gets its own branch-free loop. */
static inline __attribute__((always_inline)) void transpose_ep_k(
    const float *restrict src, int64_t sld, float *restrict dst, int64_t dld, int64_t rows,
    int64_t cols, const float *bias, const float *res, bool has_b, bool has_r, bool relu)
{
    int64_t r = 0;
#ifdef DIRECT_SSE
    const __m128 zero = _mm_setzero_ps();
/* relu: max(0, v) = 0 > v ? 0 : v, so NaN passes as in Relu */
#define EP_STORE(V, C)                                                                             \
    do {                                                                                           \
        int64_t o_ = (C)*dld + r;                                                                  \
        if (has_b)                                                                                 \
            V = _mm_add_ps(V, _mm_set1_ps(bias[C]));                                               \
        if (has_r)                                                                                 \
            V = _mm_add_ps(V, _mm_loadu_ps(res + o_));                                             \
        if (relu)                                                                                  \
            V = _mm_max_ps(zero, V);                                                               \
        _mm_storeu_ps(dst + o_, V);                                                                \
    } while (0)
    for (; r + 4 <= rows; r += 4) {
        const float *s0 = src + r * sld;
        int64_t c = 0;
        for (; c + 4 <= cols; c += 4) {
            __m128 a = _mm_loadu_ps(s0 + c), b = _mm_loadu_ps(s0 + sld + c);
            __m128 e = _mm_loadu_ps(s0 + 2 * sld + c), f = _mm_loadu_ps(s0 + 3 * sld + c);
            _MM_TRANSPOSE4_PS(a, b, e, f);
            EP_STORE(a, c);
            EP_STORE(b, c + 1);
            EP_STORE(e, c + 2);
            EP_STORE(f, c + 3);
        }
        for (; c < cols; c++)
            for (int64_t i = 0; i < 4; i++)
                dst[c * dld + r + i] = ep_value(s0[i * sld + c], has_b ? bias + c : NULL,
                                                has_r ? res + c * dld + r + i : NULL, relu);
    }
#undef EP_STORE
#endif
    for (; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            dst[c * dld + r] = ep_value(src[r * sld + c], has_b ? bias + c : NULL,
                                        has_r ? res + c * dld + r : NULL, relu);
}

static void transpose_ep(const float *restrict src, int64_t sld, float *restrict dst, int64_t dld,
                         int64_t rows, int64_t cols, const float *bias, const float *res, bool relu)
{
#define EP_CASE(B, R, L)                                                                           \
    if (!!bias == (B) && !!res == (R) && relu == (L)) {                                            \
        transpose_ep_k(src, sld, dst, dld, rows, cols, bias, res, B, R, L);                        \
        return;                                                                                    \
    }
    EP_CASE(true, true, true)
    EP_CASE(true, true, false)
    EP_CASE(true, false, true)
    EP_CASE(true, false, false)
    EP_CASE(false, true, true)
    EP_CASE(false, true, false)
    EP_CASE(false, false, true)
#undef EP_CASE
    transpose(src, sld, dst, dld, rows, cols);
}

/* dst[c*dld + r] += src[pos[r]*sld + c] for r < rows, c < cols. */
static void transpose_add(const float *restrict src, const int32_t *restrict pos, int64_t sld,
                          float *restrict dst, int64_t dld, int64_t rows, int64_t cols)
{
    int64_t r = 0;
#ifdef DIRECT_SSE
    for (; r + 4 <= rows; r += 4) {
        const float *s0 = src + pos[r] * sld, *s1 = src + pos[r + 1] * sld;
        const float *s2 = src + pos[r + 2] * sld, *s3 = src + pos[r + 3] * sld;
        int64_t c = 0;
        for (; c + 4 <= cols; c += 4) {
            __m128 a = _mm_loadu_ps(s0 + c), b = _mm_loadu_ps(s1 + c);
            __m128 e = _mm_loadu_ps(s2 + c), f = _mm_loadu_ps(s3 + c);
            float *d = dst + c * dld + r;
            _MM_TRANSPOSE4_PS(a, b, e, f);
            _mm_storeu_ps(d, _mm_add_ps(_mm_loadu_ps(d), a));
            _mm_storeu_ps(d + dld, _mm_add_ps(_mm_loadu_ps(d + dld), b));
            _mm_storeu_ps(d + 2 * dld, _mm_add_ps(_mm_loadu_ps(d + 2 * dld), e));
            _mm_storeu_ps(d + 3 * dld, _mm_add_ps(_mm_loadu_ps(d + 3 * dld), f));
        }
        for (; c < cols; c++) {
            dst[c * dld + r] += s0[c];
            dst[c * dld + r + 1] += s1[c];
            dst[c * dld + r + 2] += s2[c];
            dst[c * dld + r + 3] += s3[c];
        }
    }
#endif
    for (; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            dst[c * dld + r] += src[pos[r] * sld + c];
}

/* Asks for the n floats at p to be brought towards the cache (L2), for
 * reading or, with write set, for writing: issued one image ahead, so the
 * next image's planes arrive while this one's tile products run. */
static void prefetch_floats(const float *p, int64_t n, bool write)
{
    for (int64_t i = 0; i < n; i += 16) {
        if (write)
            __builtin_prefetch(p + i, 1, 2);
        else
            __builtin_prefetch(p + i, 0, 2);
    }
}

static float *slice_of(const struct direct_layout *s, void *ws, int tid)
{
    return (float *)ws + s->shared + (int64_t)tid * s->slice;
}

void qc_direct_forward(const struct qc_conv_geom *g, int64_t c_out, int64_t batch, const float *x,
                       const float *w, const struct qc_conv_epilogue *ep, float *y, void *ws,
                       int threads)
{
    const float *bias = ep ? ep->bias : NULL, *res = ep ? ep->residual : NULL;
    bool relu = ep && ep->relu, plain = !bias && !res && !relu;
    struct direct_layout s;
    int nr, nt = direct_threads(batch, threads);
    tile_fn fn;

    layout(g, c_out, &s);
    fn = pick_tile(s.cbm, &nr);
    build_forward(&s, w, ws, nr, nr);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        int tid = 0, tn = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        tn = omp_get_num_threads();
#endif
        const float *sh = ws;
        float *sl = slice_of(&s, ws, tid);
        float *xp = sl + s.xp, *stg = sl + s.stg;
        const int32_t *pix = (const int32_t *)(sh + s.pixf);
        const int32_t *tap = (const int32_t *)(sh + s.tapf);
        int64_t lo = batch * tid / tn, hi = batch * (tid + 1) / tn;

        memset(xp, 0, (size_t)(s.cin * s.hb * s.wb) * sizeof(float));
        for (int64_t img = lo; img < hi; img++) {
            float *yi = y + img * s.cout * s.l;
            const float *ri = res ? res + img * s.cout * s.l : NULL;
            if (img + 1 < hi) {
                prefetch_floats(x + (img + 1) * s.cin * s.lin, s.cin * s.lin, false);
                prefetch_floats(yi + s.cout * s.l, s.cout * s.l, true);
            }
            fill_padded(x + img * s.cin * s.lin, s.cin, s.ih, s.iw, xp, s.hb, s.wb, s.ph, s.pw);
            for (int64_t blk = 0; blk < s.nbm; blk++) {
                int64_t mn = QC_MIN(s.cbm, s.cout - blk * s.cbm);
                const float *wb = sh + s.wf + blk * s.k * s.cbm;
                /* tiles in pixel order into stg [p][cbm], then y[i, p] */
                for (int64_t p0 = 0; p0 < s.l; p0 += nr)
                    fn(xp, pix + p0, tap, wb, s.k, stg + p0 * s.cbm);
                if (plain)
                    transpose(stg, s.cbm, yi + blk * s.cbm * s.l, s.l, s.l, mn);
                else
                    transpose_ep(stg, s.cbm, yi + blk * s.cbm * s.l, s.l, s.l, mn,
                                 bias ? bias + blk * s.cbm : NULL,
                                 ri ? ri + blk * s.cbm * s.l : NULL, relu);
            }
        }
    }
}

/* dbp[m] += sum_p dY[m, p] of one image, in 16 interleaved partial sums
 * (vectorizable, fixed order). */
static void image_db(const struct direct_layout *s, float *dbp, const float *dyi)
{
    for (int64_t m = 0; m < s->cout; m++) {
        const float *d = dyi + m * s->l;
        float acc[16] = {0}, sum = 0.0f;
        int64_t p = 0;
        for (; p + 16 <= s->l; p += 16)
            for (int i = 0; i < 16; i++)
                acc[i] += d[p + i];
        for (; p < s->l; p++)
            sum += d[p];
        for (int i = 0; i < 16; i++)
            sum += acc[i];
        dbp[m] += sum;
    }
}

/* dyt[blk][b*l + p][i] = dY[blk*cb + i, p] of image b of a dW group. */
static void stage_dy(const struct direct_layout *s, float *dyt, const float *dyi, int64_t b)
{
    for (int64_t blk = 0; blk < s->nbm; blk++) {
        float *tb = dyt + (blk * DW_IMAGES + b) * s->l * s->cbm;
        int64_t mn = QC_MIN(s->cbm, s->cout - blk * s->cbm);
        transpose(dyi + blk * s->cbm * s->l, s->l, tb, s->cbm, mn, s->l);
        for (int64_t i = mn; i < s->cbm; i++)
            for (int64_t p = 0; p < s->l; p++)
                tb[p * s->cbm + i] = 0.0f;
    }
}

/* dW partial of a group of nb staged images (xp, dyt), tap-major:
 * dwp[blk][k][i] += sum_b sum_p dY_b[blk*cb + i, p] * xp_b[pix(p) + tap(k)]. */
static void group_dw(const struct direct_layout *s, const float *sh, float *sl, int64_t nb,
                     tile_fn fn, int nr)
{
    float *dyt = sl + s->dyt, *out = sl + s->out, *dwp = sl + s->dwp;
    const int32_t *pixw = (const int32_t *)(sh + s->pixw);
    const int32_t *tap = (const int32_t *)(sh + s->tapf);

    for (int64_t blk = 0; blk < s->nbm; blk++) {
        for (int64_t k0 = 0; k0 < s->k; k0 += nr) {
            /* rows k0 .. k0+nr of the tile are taps; padded ones dropped */
            int64_t n = QC_MIN((int64_t)nr, s->k - k0) * s->cbm;
            float *restrict d = dwp + (blk * s->k + k0) * s->cbm;
            const float *restrict o = out;
            fn(sl + s->xp, tap + k0, pixw, dyt + blk * DW_IMAGES * s->l * s->cbm, nb * s->l,
               out);
            for (int64_t e = 0; e < n; e++)
                d[e] += o[e];
        }
    }
}

/* One image's dX: per input-channel block, the tile products of every
 * phase over the zero-bordered dY in dyp go to stg [position][cbc] (zero
 * for a phase no tap reaches), then are added into dxi through pos. */
static void image_dx(const struct direct_layout *s, const float *sh, float *sl, float *dxi,
                     tile_fn fn, int nr)
{
    const int32_t *tap = (const int32_t *)(sh + s->xtap), *pix = (const int32_t *)(sh + s->xpix);
    const int32_t *pos = (const int32_t *)(sh + s->xpos), *cnt = (const int32_t *)(sh + s->xcnt);
    float *stg = sl + s->stg;

    for (int64_t blk = 0; blk < s->nbc; blk++) {
        int64_t cn = QC_MIN(s->cbc, s->cin - blk * s->cbc);
        for (int64_t ph = 0; ph < s->sh * s->sw; ph++) {
            int64_t t0 = cnt[4 * ph], n = cnt[4 * ph + 1], p0 = cnt[4 * ph + 2];
            int64_t np = cnt[4 * ph + 3];
            const float *wb = sh + s->wx + (t0 * s->nbc + blk * n) * s->cbc;
            if (n == 0) {
                memset(stg + p0 * s->cbc, 0, (size_t)(np * s->cbc) * sizeof(float));
                continue;
            }
            for (int64_t q = p0; q < p0 + np; q += nr)
                fn(sl + s->dyp, pix + q, tap + t0, wb, n, stg + q * s->cbc);
        }
        transpose_add(stg, pos, s->cbc, dxi + blk * s->cbc * s->lin, s->lin, s->lin, cn);
    }
}

void qc_direct_backward(const struct qc_conv_geom *g, int64_t c_out, int64_t batch,
                        const float *x, const float *w, const float *dy, float *dx, float *dw,
                        float *db, void *ws, int threads)
{
    struct direct_layout s;
    int nr_m, nr_c, nt = direct_threads(batch, threads);
    tile_fn fn_m, fn_c;

    layout(g, c_out, &s);
    fn_m = pick_tile(s.cbm, &nr_m);
    fn_c = pick_tile(s.cbc, &nr_c);
    if (dw || db)
        build_forward(&s, w, ws, nr_m, nr_m);
    if (dx) {
        build_dx(&s, w, ws, nr_c);
    }
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        int tid = 0, tn = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        tn = omp_get_num_threads();
#endif
        const float *sh = ws;
        float *sl = slice_of(&s, ws, tid);
        int64_t lo = batch * tid / tn, hi = batch * (tid + 1) / tn;

        /* zero borders of xp and dyp and the partials; dyt and stg are
         * written before they are read */
        if (dw)
            memset(sl + s.xp, 0, (size_t)(s.dyt - s.xp) * sizeof(float));
        memset(sl + s.dyp, 0, (size_t)(s.out - s.dyp) * sizeof(float));
        for (int64_t img = lo; img < hi; img++) {
            const float *dyi = dy + img * s.cout * s.l;
            int64_t b = (img - lo) % DW_IMAGES;
            if (img + 1 < hi) {
                prefetch_floats(dyi + s.cout * s.l, s.cout * s.l, false);
                if (dw)
                    prefetch_floats(x + (img + 1) * s.cin * s.lin, s.cin * s.lin, false);
                if (dx)
                    prefetch_floats(dx + (img + 1) * s.cin * s.lin, s.cin * s.lin, true);
            }
            if (db)
                image_db(&s, sl + s.dbp, dyi);
            if (dw) {
                fill_padded(x + img * s.cin * s.lin, s.cin, s.ih, s.iw,
                            sl + s.xp + b * line(s.cin * s.hb * s.wb), s.hb, s.wb, s.ph, s.pw);
                stage_dy(&s, sl + s.dyt, dyi, b);
                if (b == DW_IMAGES - 1 || img == hi - 1)
                    group_dw(&s, sh, sl, b + 1, fn_m, nr_m);
            }
            if (dx) {
                fill_padded(dyi, s.cout, s.oh, s.ow, sl + s.dyp, s.hb2, s.wb2, s.th, s.tw);
                image_dx(&s, sh, sl, dx + img * s.cin * s.lin, fn_c, nr_c);
            }
        }
    }
    /* partials in thread order */
    for (int t = 0; t < nt; t++) {
        const float *sl = slice_of(&s, ws, t);
        if (dw)
            for (int64_t m = 0; m < s.cout; m++) {
                const float *src = sl + s.dwp + (m / s.cbm * s.k) * s.cbm + m % s.cbm;
                for (int64_t k = 0; k < s.k; k++)
                    dw[m * s.k + k] += src[k * s.cbm];
            }
        if (db)
            for (int64_t m = 0; m < s.cout; m++)
                db[m] += sl[s.dbp + m];
    }
}
