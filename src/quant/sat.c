/*
 * sat.c - SAT quantizer policy (N2D2's QWeight=SAT and QAct=SAT; formulas in backend/cpu_train.h):
 * the QuantMode names of recipes and the guard of the learnable α.  The
 * element loops (weight forward/backward/image, CG-PACT forward/backward)
 * are backend kernels: src/backend/cpu_quant.c and kernels/quant.cu, run by
 * id (QC_TK_SAT_*) through qc_backend_run.
 */
#include <config.h>

#include "quant.h"

#include <strings.h>

static const char *const sat_mode_names[QC_SAT_MODE_COUNT] = {
    [QC_SAT_DEFAULT] = "Default",
    [QC_SAT_SYMMETRIC] = "Symmetric",
    [QC_SAT_ASYMMETRIC] = "Asymmetric",
    [QC_SAT_FULLRANGE] = "FullRange",
};

bool qc_sat_mode_parse(const char *s, enum qc_sat_mode *out)
{
    for (int i = 0; i < QC_SAT_MODE_COUNT; i++) {
        if (strcasecmp(s, sat_mode_names[i]) == 0) {
            *out = (enum qc_sat_mode)i;
            return true;
        }
    }
    return false;
}

const char *qc_sat_mode_name(enum qc_sat_mode mode)
{
    return (unsigned)mode < QC_SAT_MODE_COUNT ? sat_mode_names[mode] : "?";
}

void qc_sat_alpha_clamp(float *alpha)
{
    *alpha = qc_sat_alpha_used(*alpha);
}
