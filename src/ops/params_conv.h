/*
 * params_conv.h - the parsed attributes of Conv and ConvTranspose (struct
 * qc_conv_params, filled by conv.c's parse hook) and their resolution
 * against the input shapes (qc_conv_resolve), shared by the CPU kernels of
 * conv.c and the CUDA kernels of src/backend/cuda_conv.c so that both run
 * one geometry: output sizes and the begin pads that explicit pads or
 * auto_pad give.
 */
#ifndef QATCONV_SRC_OPS_PARAMS_CONV_H
#define QATCONV_SRC_OPS_PARAMS_CONV_H

#include <stdbool.h>
#include <stdint.h>

#include "im2col.h"
#include "op.h"

#define QC_CONV_MAX_SPATIAL 3

enum qc_conv_auto_pad {
    QC_AUTO_PAD_NOTSET = 0,
    QC_AUTO_PAD_SAME_UPPER,
    QC_AUTO_PAD_SAME_LOWER,
    QC_AUTO_PAD_VALID,
};

struct qc_conv_params {
    bool                  transpose;
    int64_t               group;
    enum qc_conv_auto_pad auto_pad;
    /* attribute value counts; 0 = absent */
    int     n_kernel, n_strides, n_dilations, n_pads, n_output_padding, n_output_shape;
    int64_t kernel[QC_CONV_MAX_SPATIAL];
    int64_t strides[QC_CONV_MAX_SPATIAL];
    int64_t dilations[QC_CONV_MAX_SPATIAL];
    int64_t pads[2 * QC_CONV_MAX_SPATIAL];          /* begins, then ends       */
    int64_t output_padding[QC_CONV_MAX_SPATIAL];
    int64_t output_shape[QC_CONV_MAX_SPATIAL + 2];  /* spatial, or N,C,spatial */
};

/* Shapes of one call, resolved from the params and the input shapes. */
struct qc_conv_dims {
    int                 nsp;              /* spatial axes, 1..3                    */
    int64_t             batch, c_in, c_out, group;
    struct qc_conv_geom geom;             /* one group of one image: the input for
                                             Conv, the output for ConvTranspose     */
    int64_t             pad_end[3];       /* (D, H, W) like geom                   */
    struct qc_shape     y;
};

/* Validates the inputs of Conv/ConvTranspose node n (params parsed) and
 * fills *d; logs with label and returns QC_ERR_* on failure. */
enum qc_status qc_conv_resolve(const struct qc_node *n, const char *label,
                               const struct qc_tensor *const *in, struct qc_conv_dims *d);

#endif
