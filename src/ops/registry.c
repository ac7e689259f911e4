/*
 * registry.c - the op table built from ops.def, and name lookup.
 */
#include <config.h>

#include "op.h"

#include <string.h>

static const struct qc_op_def *const op_defs[] = {
#define QC_OP(ID, NAME, DEF) [QC_OP_##ID] = &DEF,
#include "ops.def"
#undef QC_OP
};

_Static_assert(QC_ARRAY_SIZE(op_defs) == QC_OP_COUNT, "ops.def and enum qc_op_kind disagree");

static const char *const op_names[] = {
#define QC_OP(ID, NAME, DEF) [QC_OP_##ID] = NAME,
#include "ops.def"
#undef QC_OP
};

const struct qc_op_def *qc_op_get(enum qc_op_kind k)
{
    QC_ASSERT((int)k >= 0 && k < QC_OP_COUNT);
    return op_defs[k];
}

int qc_op_lookup(const char *onnx_name)
{
    for (int k = 0; k < QC_OP_COUNT; k++)
        if (strcmp(op_names[k], onnx_name) == 0)
            return k;
    return -1;
}
