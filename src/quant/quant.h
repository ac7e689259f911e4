/*
 * quant.h - the quantizer policy of quantization-aware training: SAT weights
 * (DoReFa tanh normalisation + optional scale adjustment), SAT activations
 * (CG-PACT, learnable clip α) and LSQ (learnable step s), as N2D2
 * defines them (formulas: src/backend/cpu_train.h).  Here: the recipe names of the SAT modes, the LSQ levels of
 * a Range and its step-gradient scale, the guards of the learnable scalars.
 *
 * The element loops are backend kernels (src/backend/train_kernels.h: the
 * types struct qc_sat_wcfg, struct qc_sat_wstate, enum qc_sat_mode, the
 * kernel ids QC_TK_SAT_* and QC_TK_LSQ_* run through qc_backend_run), with
 * their CPU implementations and formulas in src/backend/cpu_train.h, which
 * this header includes for the exporter and the tests that call them on the
 * host (qc_sat_weight_image, qc_lsq_image, qc_sat_act_scale, ...).
 */
#ifndef QATCONV_SRC_QUANT_QUANT_H
#define QATCONV_SRC_QUANT_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/cpu_train.h"
#include "backend/train_kernels.h"

/* ---- SAT weights ------------------------------------------------------------------------ */

/* "Default", "Symmetric", "Asymmetric", "FullRange" (case-sensitive as in N2D2 recipes,
 * also accepted in any case); false if unknown. */
bool qc_sat_mode_parse(const char *s, enum qc_sat_mode *out);
const char *qc_sat_mode_name(enum qc_sat_mode mode);

/* ---- SAT activations (CG-PACT) --------------------------------------------------------- */

/* In-place α guard on the host: *alpha = qc_sat_alpha_used(*alpha) (cpu_train.h). */
void qc_sat_alpha_clamp(float *alpha);

/* ---- LSQ ------------------------------------------------------------------------------- */

/* Integer levels [−qn, qp]: signed (weights) qn = floor((R+1)/2), qp = floor((R−1)/2)
 * (R = 255: [−128, 127]; R = 1 and 2: [−1, 0]); unsigned (activations) qn = 0, qp = R. */
void qc_lsq_levels(int range, bool is_signed, int *qn, int *qp);

/* In-place step guard on the host: *s = qc_lsq_step_used(*s) (cpu_train.h). */
void qc_lsq_step_clamp(float *s);

/* g = 1/sqrt(N·Qp), N elements per sample (activations) or of W (weights); Qp = 0
 * (signed R <= 2) is taken as 1, N = 0 as 1. */
double qc_lsq_grad_scale(int64_t nelem, int qp);

#endif
