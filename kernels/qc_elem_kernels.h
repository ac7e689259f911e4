/*
 * qc_elem_kernels.h - C-callable launchers of the CUDA kernels of the
 * activation, element-wise, layout and dropout ops (kernels/elem.cu) and of
 * the pooling and reduction ops (kernels/pool.cu), used by
 * src/backend/cuda_act.c, cuda_pool.c, cuda_layout.c.  Conventions of qc_kernels.h: each returns the
 * cudaError_t of its launches as an int (0 = success), runs on the legacy
 * default stream, does not synchronise; pointers are device pointers unless
 * said otherwise.  Every kernel is deterministic: no atomics, every output
 * element is written by one thread (or one block summing in a fixed tree
 * order), so repeated calls give the same bits.
 */
#ifndef QATCONV_KERNELS_QC_ELEM_KERNELS_H
#define QATCONV_KERNELS_QC_ELEM_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QC_KE_MAX_DIMS 10   /* QC_MAX_DIMS + room for the 8-byte element split */

/* Point-wise activations (act.c's enum act_fn, same order). */
enum { QC_KE_RELU, QC_KE_LEAKY, QC_KE_SIGMOID, QC_KE_TANH, QC_KE_HARD_SIGMOID,
       QC_KE_HARD_SWISH, QC_KE_CLIP };

/* Binary ops and gradient terms (eltwise.c's enum bin_op / grad_term). */
enum { QC_KE_ADD, QC_KE_SUB, QC_KE_MUL, QC_KE_DIV };
enum { QC_KE_TERM_DY, QC_KE_TERM_NEG_DY, QC_KE_TERM_MUL, QC_KE_TERM_DIV_A, QC_KE_TERM_DIV_B };

/* A box of cnt[0..nd) elements: element idx is read at sum(idx[k]*sstr[k])
 * and written at sum(idx[k]*dstr[k]) (element strides; 0 = broadcast). */
struct qc_k_box {
    int     nd;
    int64_t cnt[QC_KE_MAX_DIMS], sstr[QC_KE_MAX_DIMS], dstr[QC_KE_MAX_DIMS];
};

/* y[i] = a[off_a(i)] op b[off_b(i)] over the row-major output dims
 * (strides 0 along broadcast dims). */
struct qc_k_bcast {
    int     nd;
    int64_t dims[QC_KE_MAX_DIMS], sa[QC_KE_MAX_DIMS], sb[QC_KE_MAX_DIMS];
};

/* A gather reduction: output element u (row-major over kdims) sums the
 * terms at every index r (row-major over rdims) of the reduced dims, reading
 * dy at u·ky + r·ry, the other operand o at u·ko + r·ro and its own value s
 * at u (flat). */
struct qc_k_red {
    int     nk, nr;
    int64_t kdims[QC_KE_MAX_DIMS], ky[QC_KE_MAX_DIMS], ko[QC_KE_MAX_DIMS];
    int64_t rdims[QC_KE_MAX_DIMS], ry[QC_KE_MAX_DIMS], ro[QC_KE_MAX_DIMS];
};

/* pool.c's struct pool_geom: 3 spatial dims, unused leading ones are 1. */
struct qc_k_pool {
    int64_t nc;
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
};

/* ---- elem.cu ---------------------------------------------------------------------------- */

/* y = f(x; a, b).  Clip: a = lo, b = hi unless lo_p / hi_p (one device float each) are
 * given, which are then read on the device. */
int qc_k_act_forward(int fn, float a, float b, const float *lo_p, const float *hi_p,
                     const float *x, float *y, int64_t n);
/* dx += dy·f'(x) (Sigmoid, Tanh through y). */
int qc_k_act_backward(int fn, float a, float b, const float *lo_p, const float *hi_p,
                      const float *x, const float *y, const float *dy, float *dx, int64_t n);

/* Softmax / LogSoftmax over len elements spaced inner apart, outer·inner rows. */
int qc_k_softmax_forward(int log_form, const float *x, float *y, int64_t outer, int64_t len,
                         int64_t inner);
int qc_k_softmax_backward(int log_form, const float *y, const float *dy, float *dx,
                          int64_t outer, int64_t len, int64_t inner);

/* y = a op b, n = output elements; y may alias a when a has y's shape. */
int qc_k_binary(int op, struct qc_k_bcast bc, const float *a, const float *b, float *y,
                int64_t n);

/* dst[i] += src[i]. */
int qc_k_acc_f32(float *dst, const float *src, int64_t n);

/* dst[box] = src[box] over 4-byte words. */
int qc_k_copy_box_u32(struct qc_k_box box, const uint32_t *src, uint32_t *dst);
/* dst[box] += src[box]·scale (each dst element of the box distinct). */
int qc_k_acc_box_f32(struct qc_k_box box, const float *src, float *dst, float scale);

/* y[i] = *v_p when v_p (device), else v. */
int qc_k_fill_value_f32(float *y, float v, const float *v_p, int64_t n);

/* Dropout, training: keep_i = [u_(first+i) >= ratio], u_j = hash(seed, j) in
 * [0, 1) (first: the index of x[0] in a larger tensor whose masks are drawn,
 * a data-parallel rank's slice of the global batch; 0 otherwise);
 * y = x·keep/(1 − ratio), keep bytes to mask.  ratio = *ratio_p when given. */
int qc_k_dropout_forward(uint64_t seed, int64_t first, float ratio, const float *ratio_p,
                         const float *x, float *y, unsigned char *mask, int64_t n);
/* dx += dy·keep/(1 − ratio). */
int qc_k_dropout_backward(float ratio, const float *ratio_p, const unsigned char *mask,
                          const float *dy, float *dx, int64_t n);
/* Dropout's mask output: bytes (is_bool) or floats, from keep (NULL: all ones). */
int qc_k_dropout_mask_out(const unsigned char *keep, int is_bool, void *out, int64_t n);

/* ---- pool.cu ---------------------------------------------------------------------------- */

/* y[o] (when y) = first maximum of window o; arg (int32 offset in the plane, -1 for a
 * window in the padding) and idx (int64 flat index into x, -1) when given. */
int qc_k_maxpool_forward(struct qc_k_pool g, const float *x, float *y, int32_t *arg,
                         int64_t *idx);
/* dx[i] += Σ_{o: arg[o] = i} dy[o], gathered per input element in output order. */
int qc_k_maxpool_backward(struct qc_k_pool g, const int32_t *arg, const float *dy, float *dx);
int qc_k_avgpool_forward(struct qc_k_pool g, int count_include_pad, const float *x, float *y);
/* dx[i] += Σ_{o covers i} dy[o]/cnt(o), in output order. */
int qc_k_avgpool_backward(struct qc_k_pool g, int count_include_pad, const float *dy,
                          float *dx);

/* Global pools over rows of len: y[r] (when y) = mean or max, arg[r] (when arg) = first
 * maximum's offset. */
int qc_k_global_forward(int is_max, const float *x, float *y, int32_t *arg, int64_t rows,
                        int64_t len);
/* mean: dx += dy[r]/len; max: dx[r, arg[r]] += dy[r]. */
int qc_k_global_backward(int is_max, const int32_t *arg, const float *dy, float *dx,
                         int64_t rows, int64_t len);

/* Gather reduction (struct qc_k_red) of term(dy, s, o) summed in double, v = sum/div:
 * out[u] += v (accumulate) or out[u] = v.  o and s may be NULL for the dy terms. */
int qc_k_reduce(struct qc_k_red r, int term, const float *dy, const float *s, const float *o,
                float *out, int accumulate, double div);

#ifdef __cplusplus
}
#endif

#endif
