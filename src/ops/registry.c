/*
 * registry.c - the op table built from ops.def, name lookup, and the
 * accessors of the op roles (see op.h, "op roles").
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

const char *qc_op_name(enum qc_op_kind k)
{
    QC_ASSERT((int)k >= 0 && k < QC_OP_COUNT);
    return op_names[k];
}

/* ---- roles ---------------------------------------------------------------------------- */

static const struct qc_op_roles no_roles;

const struct qc_op_roles *qc_op_roles(enum qc_op_kind k)
{
    return (int)k >= 0 && k < QC_OP_COUNT ? &op_defs[k]->roles : &no_roles;
}

bool qc_op_is_weighted(int kind)
{
    return qc_op_roles((enum qc_op_kind)kind)->weight != 0;
}

bool qc_op_quantizes_weight(int kind)
{
    return (qc_op_roles((enum qc_op_kind)kind)->quant & QC_QUANT_WEIGHT) != 0;
}

bool qc_op_quantizes_act(int kind)
{
    return (qc_op_roles((enum qc_op_kind)kind)->quant & QC_QUANT_ACT) != 0;
}

enum qc_op_cell qc_op_cell(int kind)
{
    return qc_op_roles((enum qc_op_kind)kind)->cell;
}

bool qc_op_extends_cell(int kind)
{
    enum qc_op_cell c = qc_op_cell(kind);
    return c == QC_CELL_BATCHNORM || c == QC_CELL_ACTIVATION;
}

enum qc_op_input_role qc_op_input_role(int kind, int slot)
{
    const struct qc_op_roles *r = qc_op_roles((enum qc_op_kind)kind);
    if (slot < 0 || slot >= 32)
        return QC_INPUT_DATA;
    if (r->trainable & QC_INPUT_BIT(slot))
        return QC_INPUT_TRAINABLE;
    return r->running & QC_INPUT_BIT(slot) ? QC_INPUT_RUNNING : QC_INPUT_DATA;
}

/* Input slot stored as QC_SLOT(i) in a role field, when node n has it. */
static int present_slot(const struct qc_node *n, int stored)
{
    int slot = stored - 1;
    return slot >= 0 && slot < n->n_in && n->in[slot] >= 0 ? slot : -1;
}

int qc_op_weight_input(const struct qc_node *n)
{
    return present_slot(n, qc_op_roles((enum qc_op_kind)n->kind)->weight);
}

int qc_op_bias_input(const struct qc_node *n)
{
    return present_slot(n, qc_op_roles((enum qc_op_kind)n->kind)->bias);
}

int qc_op_weight_channel_axis(const struct qc_node *n)
{
    const struct qc_op_roles *r = qc_op_roles((enum qc_op_kind)n->kind);
    if (!r->weight)
        return -1;
    return r->channel_axis_of ? r->channel_axis_of(n) : r->channel_axis;
}
