/*
 * im2col.h - column lowering for convolutions (CPU reference).
 *
 * A convolution over one image of `channels` channels becomes a matrix
 * product by unrolling every receptive field into a column:
 *
 *     col[(c*KV + kv) * L + o] = x[c][i(o, kv)]     (0 where i falls in the padding)
 *
 * with KV = kd*kh*kw kernel positions, L = od*oh*ow output positions and
 * i(o, kv) = o*stride - pad + kv*dilation per spatial axis.  col is row-major
 * [channels*KV, L] (rows may be longer: ldcol); x is one image
 * [channels, D, H, W] in row-major order.
 * 1D and 2D problems use the same 3D geometry with leading spatial dims of 1
 * (kernel 1, stride 1, dilation 1, pad 0).
 *
 * qc_col2im is the adjoint (transpose) of qc_im2col: it ACCUMULATES every
 * column entry back into the image position it came from.  It serves the
 * Conv input gradient and the ConvTranspose forward.
 *
 * Both are deterministic for any thread count (each output element is
 * written by one thread, in a fixed order).
 *
 * The direct small-channel Conv kernels of conv_direct.c, which share the
 * geometry struct, are declared here too.
 */
#ifndef QATCONV_SRC_OPS_IM2COL_H
#define QATCONV_SRC_OPS_IM2COL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Geometry of one image (or one group of one image).  Spatial arrays are
 * (D, H, W); unused leading axes hold 1 (pad 0). */
struct qc_conv_geom {
    int64_t channels;        /* channels of the image part lowered at once   */
    int64_t in[3];           /* image spatial dims                           */
    int64_t out[3];          /* output (column) spatial dims                 */
    int64_t kernel[3];
    int64_t stride[3];
    int64_t dilation[3];
    int64_t pad[3];          /* leading (begin) padding; the end padding only
                                shows in out[]                               */
};

/* Kernel positions KV = kernel[0]*kernel[1]*kernel[2]. */
int64_t qc_conv_geom_kvol(const struct qc_conv_geom *g);
/* Output positions L = out[0]*out[1]*out[2]. */
int64_t qc_conv_geom_ovol(const struct qc_conv_geom *g);
/* Image positions in[0]*in[1]*in[2]. */
int64_t qc_conv_geom_ivol(const struct qc_conv_geom *g);

/* col[channels*KV, L] = lowering of x[channels, in...].  Overwrites the
 * first L entries of every row; ldcol >= L is the row stride of col in
 * elements (several images side by side: [channels*KV, nimg*L] with each
 * image at col + i*L and ldcol = nimg*L).  threads: OpenMP threads to use
 * (<= 1: serial; keep 1 while OpenBLAS threads are active, see conv.c). */
void qc_im2col(const struct qc_conv_geom *g, const float *x, float *col, int64_t ldcol,
               int threads);

/* x[channels, in...] += adjoint lowering of col[channels*KV, L] (row stride
 * ldcol); image positions no column entry maps to are left untouched. */
void qc_col2im(const struct qc_conv_geom *g, const float *col, int64_t ldcol, float *x,
               int threads);

/* What a Conv forward applies to each output y[n, c, p] as it writes it, in
 * this order, which is the order of the separate ops it stands for (so the
 * result is the same to the bit):
 *   y = y + bias[c]                 (bias NULL: no bias)
 *   y = y + residual[n, c, p]       (an Add of a tensor of y's shape; NULL: none)
 *   y = y < 0 ? 0 : y               (relu: a Relu; NaN passes through)
 * The Conv's own bias takes this path too; the plan's fused inference steps
 * (plan/plan_fuse.c) add the other two. */
struct qc_conv_epilogue {
    const float *bias;
    const float *residual;
    bool relu;
};

/* Direct 2D Conv (conv_direct.c) for group 1 with few channels: geometry
 * g of one image (channels = C_in, leading D axis unused), c_out output
 * channels, NCHW x/y/dY, OIHW w.  Parallel over images on `threads`
 * threads, deterministic for a given thread count. */
bool qc_direct_supported(const struct qc_conv_geom *g, int64_t c_out);
/* Workspace bytes either direction needs (64-byte aligned by the caller). */
size_t qc_direct_workspace(const struct qc_conv_geom *g, int64_t c_out, int64_t batch,
                           int threads);
/* y = ep(conv(x, w)) over batch images (ep: see struct qc_conv_epilogue;
 * NULL: the plain product, no bias). */
void qc_direct_forward(const struct qc_conv_geom *g, int64_t c_out, int64_t batch, const float *x,
                       const float *w, const struct qc_conv_epilogue *ep, float *y, void *ws,
                       int threads);
/* dx += dL/dx, dw += dL/dw, db += dL/db (each may be NULL). */
void qc_direct_backward(const struct qc_conv_geom *g, int64_t c_out, int64_t batch,
                        const float *x, const float *w, const float *dy, float *dx, float *dw,
                        float *db, void *ws, int threads);

#endif
