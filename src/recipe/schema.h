/*
 * schema.h - private to src/recipe/: the schema of recipe keys (schema.c),
 * which the parser (recipe.c) checks every written key against and
 * `qatconv --recipe-keys` prints.
 */
#ifndef QC_RECIPE_SCHEMA_H
#define QC_RECIPE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

/* The transformation types (values of Type in a [sp.Transformation...] section). */
#define TF_TYPES "RescaleTransformation|PadCropTransformation|SliceExtractionTransformation|" \
                 "FlipTransformation|RangeAffineTransformation|RandomResizeCropTransformation|" \
                 "ColorSpaceTransformation"

enum kind { K_STR, K_INT, K_FLOAT, K_BOOL, K_ENUM, K_FLIST };

/* One known key: name, value kind, allowed values ("A|B|C") for enums and
 * the inclusive numeric range for numbers. */
struct key_spec {
    const char *name;
    enum kind   kind;
    const char *values;
    double      min, max;
};

/* SEC_SOFTMAX: a section with Type=Softmax ([soft1]: the loss on the logits of
 * its Input); SEC_TARGET: [<section>.Target], the target of that section. */
enum sec_class {
    SEC_GLOBAL,
    SEC_DATABASE,
    SEC_SP,
    SEC_TRANSFORM,
    SEC_ONNX,
    SEC_NODE,
    SEC_SOFTMAX,
    SEC_TARGET
};

/* Best suggestion so far for an unknown key. */
struct suggest {
    const char *key;
    int         best;
    char        name[128];
};

/* The spec of `key` in a section of class cls (tf_type: the Type of a
 * transformation section), or NULL, filling sg (when not NULL) with a suggestion. */
const struct key_spec *qc_schema_find_spec(enum sec_class cls, const char *tf_type,
                                           const char *key, struct suggest *sg);

/* The canonical transformation type that `value` names, or NULL. */
const char *qc_schema_tf_type(const char *value);

/* Canonical spelling of an enum value of `list` ("A|B|C") into canon, or false. */
bool qc_schema_enum_canonical(const char *list, const char *v, char *canon, size_t len);

/* Canonical spelling of a key (N2D2's second spellings): key itself or buf. */
const char *qc_schema_canonical_key(const char *key, char *buf, size_t len);

#endif
