/*
 * fold_bn.h - BatchNormalization folded into the Conv or Gemm before it
 * (--fold-bn), on a float or fake-quant graph.  Per output channel c, with
 * f_c = γ_c / sqrt(σ²_c + ε):
 *   W'[c, ...] = f_c · W[c, ...]        b'_c = β_c + (b_c − μ_c) · f_c
 * A weight behind our DequantizeLinear keeps its integer levels: the scale
 * becomes per channel, s_c = s · f_c (axis 0), so the levels stay exact and
 * only the float rounding of the fused product changes.  A BatchNormalization
 * is folded only when its input comes from a Conv (or a Gemm with transB=1)
 * read by nothing else and its four parameters are initializers; others stay.
 */
#ifndef QATCONV_SRC_EXPORT_FOLD_BN_H
#define QATCONV_SRC_EXPORT_FOLD_BN_H

#include "ir/graph.h"
#include "util/qc.h"

/* Folds what it can; *n_folded receives the count.  Re-finalizes g. */
enum qc_status qc_fold_bn(struct qc_graph *g, int *n_folded);

#endif
