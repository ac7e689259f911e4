/*
 * loss.h - the training loss: softmax cross-entropy on logits.  The
 * arithmetic is a backend kernel (QC_TK_SOFTMAX_XENT of
 * src/backend/train_kernels.h, with QC_LOSS_NSTATS statistics); its CPU
 * implementation qc_loss_softmax_xent and qc_argmax (src/backend/cpu_train.h)
 * also serve the host-side evaluation.  The trainer keeps the bookkeeping
 * (sums over an epoch, bad-label reports).
 */
#ifndef QATCONV_SRC_TRAIN_LOSS_H
#define QATCONV_SRC_TRAIN_LOSS_H

#include "backend/cpu_train.h"
#include "backend/train_kernels.h"

#endif
