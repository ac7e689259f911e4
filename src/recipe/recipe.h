/*
 * recipe.h - N2D2-style INI recipes.
 *
 * Syntax (qatconv-recipe(5)): `[section]`, `[section] base1 base2` (copies the keys
 * of bases defined earlier; with several bases the first wins; keys written
 * in the section itself override), `key=value`, `;` and `#` comments (whole
 * line or trailing), a trailing `\` continues a line, a UTF-8 BOM is ignored,
 * keys before the first section belong to the global section "" .  Value
 * references `[sec]Key` inside a value are replaced by that key's value,
 * recursively (a reference cycle is an error); `ConfigSection=a,b` merges the
 * keys of those sections (later wins, own keys win over both).  Redefining a
 * section, a missing base and an inheritance cycle are errors.
 *
 * Every key is checked against the schema in recipe.c when the recipe is
 * loaded: an unknown key is an error "file:line: unknown key 'X' in [sec]
 * (did you mean 'Y'?)", or a warning when lenient.  N2D2's two spellings of
 * a key are both accepted (see the alias table).  Every error names
 * file:line and is QC_ERR_RECIPE.
 */
#ifndef QATCONV_SRC_RECIPE_H
#define QATCONV_SRC_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/qc.h"

struct qc_recipe;

enum qc_status qc_recipe_load(const char *path, bool lenient, struct qc_recipe **out);
/* Same from a string; `name` is used as the file name in messages. */
enum qc_status qc_recipe_load_string(const char *text, const char *name, bool lenient,
                                     struct qc_recipe **out);
void qc_recipe_free(struct qc_recipe *r);

const char *qc_recipe_path(const struct qc_recipe *r);
/* Every key the schema accepts, one "CLASS KEY" per line (CLASS: global,
 * database, sp, onnx, transformation, a transformation type, node, alias). */
void qc_recipe_print_keys(FILE *f);
int qc_recipe_n_sections(const struct qc_recipe *r);
const char *qc_recipe_section_name(const struct qc_recipe *r, int i);
bool qc_recipe_has_section(const struct qc_recipe *r, const char *section);
/* Section i configures graph nodes (not global, [database], [sp]/[env], a
 * transformation or an ONNX section). */
bool qc_recipe_section_is_node(const struct qc_recipe *r, int i);
/* Section i is inherited by another section or named in a ConfigSection. */
bool qc_recipe_section_is_base(const struct qc_recipe *r, int i);
/* Section i's class (enum sec_class of recipe/schema.h, for src/recipe/ only). */
int qc_recipe_section_class(const struct qc_recipe *r, int i);
/* The keys section i holds (own and inherited; canonical spelling): key j's
 * name, whether the section writes it itself and the line of its value. */
int qc_recipe_n_keys(const struct qc_recipe *r, int i);
const char *qc_recipe_key(const struct qc_recipe *r, int i, int j, bool *own, int *line);
/* Line of section i's header. */
int qc_recipe_section_line(const struct qc_recipe *r, int i);
bool qc_recipe_has_key(const struct qc_recipe *r, const char *section, const char *key);

/* Typed getters with defaults (used when the key is absent).  Keys are
 * looked up by their canonical name or any alias; inheritance, ConfigSection
 * and references are resolved.  A value that does not parse is QC_ERR_RECIPE
 * naming file:line, section, key and the expected form.  *out of
 * qc_recipe_str borrows the recipe's storage. */
enum qc_status qc_recipe_str(const struct qc_recipe *r, const char *section, const char *key,
                             const char *def, const char **out);
enum qc_status qc_recipe_int(const struct qc_recipe *r, const char *section, const char *key,
                             int64_t def, int64_t *out);
enum qc_status qc_recipe_float(const struct qc_recipe *r, const char *section, const char *key,
                               double def, double *out);
/* Writes "file:line" where the key's value was written (or "file" if the key
 * is absent) into buf; returns buf. */
const char *qc_recipe_where(const struct qc_recipe *r, const char *section, const char *key,
                            char *buf, size_t len);

#endif
