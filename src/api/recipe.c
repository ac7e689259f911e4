/*
 * recipe.c - the recipe functions of the API beyond load and free (which
 * are recipe/recipe.c's own): the check against a model and the key list.
 */
#include <config.h>

#include "api.h"
#include "recipe/match.h"
#include "recipe/recipe.h"

enum qc_status qc_recipe_check(const struct qc_recipe *r, const struct qc_model *m,
                               bool lenient)
{
    return qc_recipe_check_sections(r, m->g, lenient);
}

enum qc_status qc_recipe_keys_text(char **text)
{
    struct qc_text out;
    enum qc_status st;
    *text = NULL;
    st = qc_text_open(&out);
    if (st != QC_OK)
        return st;
    qc_recipe_print_keys(out.f);
    return qc_text_close(&out, QC_OK, text);
}
