/*
 * attr.h - node attributes in a neutral form (no protobuf types).
 *
 * onnx/load.c converts every AttributeProto into a struct qc_attr; op parse
 * hooks read them through the typed getters below; onnx/save.c writes them
 * back unchanged.  A struct qc_attrs owns its attributes.
 */
#ifndef QATCONV_SRC_ATTR_H
#define QATCONV_SRC_ATTR_H

#include <stdbool.h>
#include <stdint.h>

#include "util/qc.h"
#include "tensor.h"

/* Values equal ONNX AttributeProto.AttributeType codes. */
enum qc_attr_type {
    QC_ATTR_UNDEFINED = 0,
    QC_ATTR_FLOAT     = 1,
    QC_ATTR_INT       = 2,
    QC_ATTR_STRING    = 3,
    QC_ATTR_TENSOR    = 4,
    QC_ATTR_GRAPH     = 5,  /* kept as a marker only: ops with subgraphs are unsupported */
    QC_ATTR_FLOATS    = 6,
    QC_ATTR_INTS      = 7,
    QC_ATTR_STRINGS   = 8,
};

struct qc_attr {
    char              *name;
    enum qc_attr_type  type;
    float              f;            /* FLOAT                                  */
    int64_t            i;            /* INT                                    */
    char              *s;            /* STRING (NUL-terminated copy)           */
    struct qc_tensor  *t;            /* TENSOR (owned)                         */
    char              *t_name;       /* TENSOR: the tensor's own name, or NULL */
    int64_t            n;            /* element count of FLOATS/INTS/STRINGS   */
    float             *floats;
    int64_t           *ints;
    char             **strings;
};

struct qc_attrs {
    int             n;
    struct qc_attr *v;               /* owned array of n attributes            */
};

/* Appends a copy-free attribute: takes ownership of the pointers in *a. */
enum qc_status qc_attrs_add(struct qc_attrs *as, struct qc_attr *a);
/* Appends INT attribute name = v (the name copied); nothing is added on error. */
enum qc_status qc_attrs_add_int(struct qc_attrs *as, const char *name, int64_t v);
/* Frees all attributes (not the struct itself).  Safe on a zeroed struct. */
void qc_attrs_clear(struct qc_attrs *as);
/* Frees the pointers owned by one attribute. */
void qc_attr_clear(struct qc_attr *a);

/* Lookup by name; NULL if absent. */
const struct qc_attr *qc_attr_find(const struct qc_attrs *as, const char *name);

/* Typed getters with defaults.  A present attribute of the wrong type is an
 * error: the getter logs "<where>: attribute 'name' ..." and returns
 * QC_ERR_ONNX.  `where` names the node, e.g. "Conv 'conv1'". */
enum qc_status qc_attr_int(const struct qc_attrs *as, const char *where, const char *name,
                           int64_t def, int64_t *out);
enum qc_status qc_attr_float(const struct qc_attrs *as, const char *where, const char *name,
                             float def, float *out);
/* String: *out borrows the attribute's storage (or def). */
enum qc_status qc_attr_string(const struct qc_attrs *as, const char *where, const char *name,
                              const char *def, const char **out);
/* INTS: copies up to max values into out[], sets *n (0 if absent; -1 never).
 * More than max values is an error. */
enum qc_status qc_attr_ints(const struct qc_attrs *as, const char *where, const char *name,
                            int64_t *out, int max, int *n);
enum qc_status qc_attr_floats(const struct qc_attrs *as, const char *where, const char *name,
                              float *out, int max, int *n);

#endif
