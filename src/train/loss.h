/*
 * loss.h - the training loss: softmax cross-entropy on logits.  The
 * arithmetic is a backend kernel (QC_TK_SOFTMAX_XENT of
 * src/backend/train_kernels.h, with QC_LOSS_NSTATS statistics); its CPU
 * implementation qc_loss_softmax_xent and qc_argmax (src/backend/cpu_train.h)
 * also serve the host-side evaluation.  The trainer keeps the bookkeeping
 * (sums over an epoch, bad-label reports).
 *
 * Distillation (--distill T[,λ]; QC_TK_DISTILL_XENT, qc_loss_distill_xent):
 * the teacher is the float input graph itself, an inference plan (BatchNorm
 * with its running statistics, no quantizer, frozen) that the trainer runs
 * on the same augmented batch as the student; the loss is
 *   (1−λ)·CE(s, y) + λ·T²·KL(softmax(t/T) ‖ softmax(s/T))
 * with the gradient
 *   ds = (1−λ)·(softmax(s) − onehot(y)) + λ·T·(softmax(s/T) − softmax(t/T)),
 * the T² keeping the soft term's gradient on the scale of the hard one's
 * (Hinton, Vinyals, Dean 2015).  CPU backend only.
 */
#ifndef QATCONV_SRC_TRAIN_LOSS_H
#define QATCONV_SRC_TRAIN_LOSS_H

#include "backend/cpu_train.h"
#include "backend/train_kernels.h"

#endif
