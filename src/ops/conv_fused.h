/*
 * conv_fused.h - the Conv forward with an epilogue, for the plan's fused
 * inference steps (plan/plan_fuse.c): a Conv followed by a BatchNormalization
 * (folded into a copy of its weight and bias by the plan), an Add of a
 * tensor of its output's shape and a Relu runs as one pass, each output value
 * written once (struct qc_conv_epilogue in im2col.h says what is applied and
 * in which order).
 */
#ifndef QATCONV_SRC_OPS_CONV_FUSED_H
#define QATCONV_SRC_OPS_CONV_FUSED_H

#include "im2col.h"
#include "op.h"

/* Conv n's CPU forward with in[1] the (folded) weight and ep->bias in place
 * of in[2] (in[2] is not read); out[0] takes the epilogue's result.  Same
 * shapes, workspace and threads as the Conv's own forward. */
enum qc_status qc_conv_forward_fused(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out,
                                     const struct qc_conv_epilogue *ep);

#endif
