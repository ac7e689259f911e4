/*
 * attr.c - neutral attribute storage and typed getters (see attr.h).
 */
#include <config.h>

#include "attr.h"

#include <string.h>

#include "util/log.h"

enum qc_status qc_attrs_add(struct qc_attrs *as, struct qc_attr *a)
{
    struct qc_attr *v = qc_realloc(as->v, (size_t)(as->n + 1) * sizeof(*v));
    if (!v)
        return QC_ERR_NOMEM;
    as->v = v;
    as->v[as->n++] = *a;
    memset(a, 0, sizeof(*a));
    return QC_OK;
}

enum qc_status qc_attrs_add_int(struct qc_attrs *as, const char *name, int64_t v)
{
    struct qc_attr a;
    enum qc_status st;
    memset(&a, 0, sizeof(a));
    a.name = qc_strdup(name);
    if (!a.name)
        return QC_ERR_NOMEM;
    a.type = QC_ATTR_INT;
    a.i = v;
    st = qc_attrs_add(as, &a);
    qc_attr_clear(&a); /* nothing left to free unless the append failed */
    return st;
}

void qc_attr_clear(struct qc_attr *a)
{
    qc_free(a->name);
    qc_free(a->s);
    qc_tensor_free(a->t);
    qc_free(a->t_name);
    qc_free(a->floats);
    qc_free(a->ints);
    if (a->strings) {
        for (int64_t i = 0; i < a->n; i++)
            qc_free(a->strings[i]);
        qc_free(a->strings);
    }
    memset(a, 0, sizeof(*a));
}

void qc_attrs_clear(struct qc_attrs *as)
{
    for (int i = 0; i < as->n; i++)
        qc_attr_clear(&as->v[i]);
    qc_free(as->v);
    as->v = NULL;
    as->n = 0;
}

const struct qc_attr *qc_attr_find(const struct qc_attrs *as, const char *name)
{
    for (int i = 0; i < as->n; i++)
        if (strcmp(as->v[i].name, name) == 0)
            return &as->v[i];
    return NULL;
}

static enum qc_status wrong_type(const char *where, const char *name, const char *want)
{
    qc_log_error("%s: attribute '%s' is not of type %s", where, name, want);
    return QC_ERR_ONNX;
}

enum qc_status qc_attr_int(const struct qc_attrs *as, const char *where, const char *name,
                           int64_t def, int64_t *out)
{
    const struct qc_attr *a = qc_attr_find(as, name);
    *out = def;
    if (!a)
        return QC_OK;
    if (a->type != QC_ATTR_INT)
        return wrong_type(where, name, "INT");
    *out = a->i;
    return QC_OK;
}

enum qc_status qc_attr_float(const struct qc_attrs *as, const char *where, const char *name,
                             float def, float *out)
{
    const struct qc_attr *a = qc_attr_find(as, name);
    *out = def;
    if (!a)
        return QC_OK;
    if (a->type != QC_ATTR_FLOAT)
        return wrong_type(where, name, "FLOAT");
    *out = a->f;
    return QC_OK;
}

enum qc_status qc_attr_string(const struct qc_attrs *as, const char *where, const char *name,
                              const char *def, const char **out)
{
    const struct qc_attr *a = qc_attr_find(as, name);
    *out = def;
    if (!a)
        return QC_OK;
    if (a->type != QC_ATTR_STRING)
        return wrong_type(where, name, "STRING");
    *out = a->s;
    return QC_OK;
}

enum qc_status qc_attr_ints(const struct qc_attrs *as, const char *where, const char *name,
                            int64_t *out, int max, int *n)
{
    const struct qc_attr *a = qc_attr_find(as, name);
    *n = 0;
    if (!a)
        return QC_OK;
    if (a->type != QC_ATTR_INTS)
        return wrong_type(where, name, "INTS");
    if (a->n > max) {
        qc_log_error("%s: attribute '%s' has %lld values, at most %d supported", where, name,
                     (long long)a->n, max);
        return QC_ERR_UNSUPPORTED;
    }
    for (int64_t i = 0; i < a->n; i++)
        out[i] = a->ints[i];
    *n = (int)a->n;
    return QC_OK;
}

enum qc_status qc_attr_floats(const struct qc_attrs *as, const char *where, const char *name,
                              float *out, int max, int *n)
{
    const struct qc_attr *a = qc_attr_find(as, name);
    *n = 0;
    if (!a)
        return QC_OK;
    if (a->type != QC_ATTR_FLOATS)
        return wrong_type(where, name, "FLOATS");
    if (a->n > max) {
        qc_log_error("%s: attribute '%s' has %lld values, at most %d supported", where, name,
                     (long long)a->n, max);
        return QC_ERR_UNSUPPORTED;
    }
    for (int64_t i = 0; i < a->n; i++)
        out[i] = a->floats[i];
    *n = (int)a->n;
    return QC_OK;
}
