/*
 * loss.h - softmax cross-entropy on logits, the training loss.
 */
#ifndef QATCONV_SRC_TRAIN_LOSS_H
#define QATCONV_SRC_TRAIN_LOSS_H

#include <stdint.h>

#include "util/qc.h"

/*
 * For logits z [b, c] (row-major) and labels y[b] in [0, c):
 *   loss_i = logsumexp(z_i) − z_i[y_i]           (summed into *loss_sum, double)
 *   dz_i   = scale · (softmax(z_i) − onehot(y_i))  (written, not accumulated)
 * With scale = 1/b, dz is the gradient of the batch-mean loss.  *correct
 * counts rows whose first maximum is the label.  A label outside [0, c) is
 * QC_ERR_DATA.  dz may be NULL (evaluation).
 */
enum qc_status qc_loss_softmax_xent(const float *z, const int32_t *labels, int64_t b,
                                    int64_t c, float scale, float *dz, double *loss_sum,
                                    int64_t *correct);

/* Index of the first maximum of x[0..n). */
int64_t qc_argmax(const float *x, int64_t n);

#endif
