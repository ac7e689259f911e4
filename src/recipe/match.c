/*
 * recipe_match.c - recipe sections to graph nodes (see recipe_match.h).
 */
#include <config.h>

#include "match.h"

#include <fnmatch.h>
#include <string.h>

#include "util/log.h"
#include "ops/op.h"

static bool is_pattern(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* The kind default section suffix of each N2D2 cell (the op roles' cell). */
static const char *const cell_suffix[] = {
    [QC_CELL_CONV] = ":Conv_def",
    [QC_CELL_FC] = ":Fc_def",
    [QC_CELL_BATCHNORM] = ":BatchNorm_def",
    [QC_CELL_ACTIVATION] = ":Relu_def",
};

/* The kind default suffix of node n, or NULL. */
static const char *default_suffix(const struct qc_node *n)
{
    return cell_suffix[qc_op_cell(n->kind)];
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static bool is_kind_default(const char *name)
{
    for (size_t c = 0; c < QC_ARRAY_SIZE(cell_suffix); c++)
        if (cell_suffix[c] && ends_with(name, cell_suffix[c]))
            return true;
    return false;
}

static bool pattern_matches(const char *pat, const struct qc_graph *g, const struct qc_node *n)
{
    if ((n->name && n->name[0] && fnmatch(pat, n->name, 0) == 0))
        return true;
    return n->n_out > 0 && fnmatch(pat, g->values[n->out[0]].name, 0) == 0;
}

const char *qc_recipe_node_section(const struct qc_recipe *r, const struct qc_graph *g,
                                   const struct qc_node *n)
{
    const char *best = NULL, *suffix = default_suffix(n);
    int ns = qc_recipe_n_sections(r);

    if (n->name && n->name[0] && qc_recipe_has_section(r, n->name))
        return n->name;
    if (n->n_out > 0 && qc_recipe_has_section(r, g->values[n->out[0]].name))
        return g->values[n->out[0]].name;
    for (int i = 0; i < ns; i++) {
        const char *name = qc_recipe_section_name(r, i);
        if (!qc_recipe_section_is_node(r, i) || !is_pattern(name) ||
            !pattern_matches(name, g, n))
            continue;
        if (!best || strlen(name) > strlen(best))
            best = name;
    }
    if (best)
        return best;
    for (int i = 0; suffix && i < ns; i++) {
        const char *name = qc_recipe_section_name(r, i);
        if (qc_recipe_section_is_node(r, i) && ends_with(name, suffix))
            return name;
    }
    return NULL;
}

/* Levenshtein distance, capped at 64 characters per string. */
static int edit_distance(const char *a, const char *b)
{
    int la = (int)QC_MIN(strlen(a), 64), lb = (int)QC_MIN(strlen(b), 64);
    int d[65][65];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            c = QC_MIN(c, d[i - 1][j] + 1);
            d[i][j] = QC_MIN(c, d[i][j - 1] + 1);
        }
    return d[la][lb];
}

enum qc_status qc_recipe_check_sections(const struct qc_recipe *r, const struct qc_graph *g,
                                        bool lenient)
{
    enum qc_status st = QC_OK;
    for (int i = 0; i < qc_recipe_n_sections(r); i++) {
        const char *name = qc_recipe_section_name(r, i), *near = NULL;
        bool used = false;
        int best = 1 << 30;
        if (!qc_recipe_section_is_node(r, i) || qc_recipe_section_is_base(r, i) ||
            is_kind_default(name))
            continue;
        for (int k = 0; k < g->n_nodes && !used; k++) {
            const struct qc_node *n = &g->nodes[k];
            const char *out = n->n_out > 0 ? g->values[n->out[0]].name : "";
            used = (n->name && strcmp(n->name, name) == 0) || strcmp(out, name) == 0 ||
                   (is_pattern(name) && pattern_matches(name, g, n));
            for (int c = 0; c < 2 && !used; c++) {
                const char *cand = c ? out : (n->name ? n->name : "");
                int dist = cand[0] ? edit_distance(name, cand) : best;
                if (dist < best) {
                    best = dist;
                    near = cand;
                }
            }
        }
        if (used)
            continue;
        if (lenient) {
            qc_log_warn("%s:%d: section [%s] matches no node of %s%s%s%s", qc_recipe_path(r),
                        qc_recipe_section_line(r, i), name, g->path, near ? " (did you mean '" : "",
                        near ? near : "", near ? "'?)" : "");
        } else {
            qc_log_error("%s:%d: section [%s] matches no node of %s%s%s%s", qc_recipe_path(r),
                         qc_recipe_section_line(r, i), name, g->path,
                         near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
            st = QC_ERR_RECIPE;
            break;
        }
    }
    return st;
}
