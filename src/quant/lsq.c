/*
 * lsq.c - LSQ quantizer policy (Esser et al. 2020, N2D2's QWeight=LSQ /
 * QAct=LSQ; formulas in backend/cpu_train.h): the integer levels of a Range, the step guard and
 * the step-gradient scale g.  The element loops (forward, backward, step
 * initialisation, integer image) are backend kernels:
 * src/backend/cpu_quant.c and kernels/quant.cu, run by id (QC_TK_LSQ_*)
 * through qc_backend_run.
 */
#include <config.h>

#include "quant.h"

#include <math.h>

void qc_lsq_levels(int range, bool is_signed, int *qn, int *qp)
{
    QC_ASSERT(range >= 1 && range <= QC_QUANT_RANGE_MAX);
    if (is_signed) {
        *qn = (range + 1) / 2;   /* floor((R+1)/2) */
        *qp = (range - 1) / 2;   /* floor((R−1)/2) */
    } else {
        *qn = 0;
        *qp = range;
    }
}

void qc_lsq_step_clamp(float *s)
{
    *s = qc_lsq_step_used(*s);
}

/* g = 1/sqrt(N·Qp) */
double qc_lsq_grad_scale(int64_t nelem, int qp)
{
    double nn = nelem > 0 ? (double)nelem : 1.0, p = qp > 0 ? (double)qp : 1.0;
    return 1.0 / sqrt(nn * p);
}
