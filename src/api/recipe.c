/*
 * recipe.c - the recipe functions of the API beyond load and free (which
 * are recipe/recipe.c's own): the check against a model (sections, the
 * [soft1] Input, one warning per key without effect), the device DefaultModel
 * asks for and the key list.
 */
#include <config.h>

#include <string.h>

#include "api.h"
#include "recipe/audit.h"
#include "recipe/match.h"
#include "recipe/recipe.h"
#include "util/log.h"

enum qc_status qc_recipe_check(const struct qc_recipe *r, const struct qc_model *m,
                               bool lenient)
{
    enum qc_status st = qc_recipe_check_sections(r, m->g, lenient);
    return st == QC_OK ? qc_recipe_audit(r, m->g) : st;
}

enum qc_status qc_recipe_device(const struct qc_recipe *r, const char *requested,
                                const char **device)
{
    const char *rdev = NULL;
    char where[512];
    enum qc_status st = r ? qc_recipe_default_device(r, &rdev) : QC_OK;
    *device = requested ? requested : rdev ? rdev : "cpu";
    if (st != QC_OK)
        return st;
    if (rdev)
        qc_recipe_where(r, "", "DefaultModel", where, sizeof(where));
    if (requested && rdev && strncmp(requested, rdev, strlen(rdev)) != 0)
        qc_log_warn("%s: --device %s overrides the recipe's DefaultModel=%s", where, requested,
                    strcmp(rdev, "cuda") == 0 ? "Frame_CUDA" : "Frame");
#ifndef HAVE_CUDA
    if (!requested && rdev && strcmp(rdev, "cuda") == 0) {
        qc_log_error("%s: DefaultModel=Frame_CUDA asks for the CUDA device, but this qatconv "
                     "was built without CUDA (reconfigure with --with-cuda, or give --device "
                     "cpu)",
                     where);
        return QC_ERR_BACKEND;
    }
#endif
    return QC_OK;
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
