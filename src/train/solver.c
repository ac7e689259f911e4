/*
 * solver.c - the optimizer policy: learning-rate schedules, IterationSize
 * bookkeeping, the per-update scalars (rate, Adam bias corrections, computed
 * once in double by qc_solver_prepare) and the recipe reader of solver
 * configurations (see solver.h for the calling sequence).  The element-wise
 * SGD / Adam update is the backend kernel QC_TK_SOLVER_APPLY
 * (src/backend/cpu_solver.c, kernels/optim.cu).
 */
#include <config.h>

#include "solver.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "recipe/recipe.h"

#define PI 3.14159265358979323846

void qc_solver_cfg_default(struct qc_solver_cfg *cfg, enum qc_solver_type type)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->type = type;
    cfg->lr = type == QC_SOLVER_ADAM ? 0.001 : 0.01;
    cfg->momentum = 0.0;
    cfg->decay = 0.0;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->policy = QC_LR_NONE;
    cfg->step_size = 1;
    cfg->step_decay = 0.1;
    cfg->max_iterations = 0;
    cfg->warmup = 0;
    cfg->warmup_frac = 0.0;
    cfg->iteration_size = 1;
}

const char *qc_solver_type_name(enum qc_solver_type type)
{
    return type == QC_SOLVER_ADAM ? "Adam" : "SGD";
}

const char *qc_lr_policy_name(enum qc_lr_policy policy)
{
    switch (policy) {
    case QC_LR_STEP:
        return "StepDecay";
    case QC_LR_COSINE:
        return "CosineDecay";
    case QC_LR_NONE:
        break;
    }
    return "None";
}

/* ---- recipe ------------------------------------------------------------------------------ */

/* One layer of keys: section (NULL: absent) and key prefix. */
struct layer {
    const char *section;
    const char *prefix;
};

static enum qc_status bad_key(const struct qc_recipe *r, const char *section, const char *key,
                              const char *expected)
{
    char where[512];
    const char *v = NULL;
    if (qc_recipe_str(r, section, key, "", &v) != QC_OK)
        v = "?";
    qc_log_error("%s: [%s] %s=%s: expected %s", qc_recipe_where(r, section, key, where,
                                                                sizeof(where)),
                 *section ? section : "global section", key, v, expected);
    return QC_ERR_RECIPE;
}

/* Reads `<prefix>.<sub>` of a layer as a double in [lo, hi] (hi_open: < hi)
 * into *v when present. */
static enum qc_status read_f(const struct qc_recipe *r, const struct layer *l, const char *sub,
                             double lo, double hi, bool hi_open, double *v)
{
    char key[128];
    double x;
    snprintf(key, sizeof(key), "%s.%s", l->prefix, sub);
    if (!qc_recipe_has_key(r, l->section, key))
        return QC_OK;
    if (qc_recipe_float(r, l->section, key, *v, &x) != QC_OK)
        return QC_ERR_RECIPE;
    if (!isfinite(x) || x < lo || x > hi || (hi_open && x >= hi)) {
        char msg[96];
        if (hi >= 1e300)
            snprintf(msg, sizeof(msg), "a number >= %g", lo);
        else
            snprintf(msg, sizeof(msg), "a number in [%g, %g%s", lo, hi, hi_open ? ")" : "]");
        return bad_key(r, l->section, key, msg);
    }
    *v = x;
    return QC_OK;
}

/* Same for an integer >= lo. */
static enum qc_status read_i(const struct qc_recipe *r, const struct layer *l, const char *sub,
                             int64_t lo, int64_t *v)
{
    char key[128];
    int64_t x;
    snprintf(key, sizeof(key), "%s.%s", l->prefix, sub);
    if (!qc_recipe_has_key(r, l->section, key))
        return QC_OK;
    if (qc_recipe_int(r, l->section, key, *v, &x) != QC_OK)
        return QC_ERR_RECIPE;
    if (x < lo) {
        char msg[64];
        snprintf(msg, sizeof(msg), "an integer >= %lld", (long long)lo);
        return bad_key(r, l->section, key, msg);
    }
    *v = x;
    return QC_OK;
}

static enum qc_status read_policy(const struct qc_recipe *r, const struct layer *l,
                                  enum qc_lr_policy *p)
{
    char key[128];
    const char *v;
    snprintf(key, sizeof(key), "%s.LearningRatePolicy", l->prefix);
    if (!qc_recipe_has_key(r, l->section, key))
        return QC_OK;
    if (qc_recipe_str(r, l->section, key, "", &v) != QC_OK)
        return QC_ERR_RECIPE;
    if (strcasecmp(v, "None") == 0)
        *p = QC_LR_NONE;
    else if (strcasecmp(v, "StepDecay") == 0)
        *p = QC_LR_STEP;
    else if (strcasecmp(v, "CosineDecay") == 0)
        *p = QC_LR_COSINE;
    else
        return bad_key(r, l->section, key, "one of None|StepDecay|CosineDecay");
    return QC_OK;
}

/* The solver type key `key` of `section`, when present, into *t. */
static enum qc_status read_type(const struct qc_recipe *r, const char *section, const char *key,
                                enum qc_solver_type *t)
{
    const char *v;
    if (!section || !qc_recipe_has_key(r, section, key))
        return QC_OK;
    if (qc_recipe_str(r, section, key, "", &v) != QC_OK)
        return QC_ERR_RECIPE;
    if (strcasecmp(v, "SGD") == 0)
        *t = QC_SOLVER_SGD;
    else if (strcasecmp(v, "Adam") == 0)
        *t = QC_SOLVER_ADAM;
    else
        return bad_key(r, section, key, "SGD or Adam");
    return QC_OK;
}

/* The numeric keys: name, field, range [lo, hi] (hi_open: [lo, hi)). */
static const struct {
    const char *sub;
    size_t      off;
    bool        is_int;
    double      lo, hi;
    bool        hi_open;
} num_keys[] = {
    { "LearningRate", offsetof(struct qc_solver_cfg, lr), false, 0, 1e300, false },
    { "Momentum", offsetof(struct qc_solver_cfg, momentum), false, 0, 1, false },
    { "Decay", offsetof(struct qc_solver_cfg, decay), false, 0, 1e300, false },
    { "Beta1", offsetof(struct qc_solver_cfg, beta1), false, 0, 1, true },
    { "Beta2", offsetof(struct qc_solver_cfg, beta2), false, 0, 1, true },
    { "Epsilon", offsetof(struct qc_solver_cfg, eps), false, 0, 1e300, false },
    { "LearningRateStepSize", offsetof(struct qc_solver_cfg, step_size), true, 1, 0, false },
    { "LearningRateDecay", offsetof(struct qc_solver_cfg, step_decay), false, 0, 1e300, false },
    { "MaxIterations", offsetof(struct qc_solver_cfg, max_iterations), true, 0, 0, false },
    { "WarmUpDuration", offsetof(struct qc_solver_cfg, warmup), true, 0, 0, false },
    { "WarmUpLRFrac", offsetof(struct qc_solver_cfg, warmup_frac), false, 0, 1, false },
    { "IterationSize", offsetof(struct qc_solver_cfg, iteration_size), true, 1, 0, false },
};

/* Overlays the keys one layer writes onto *c. */
static enum qc_status read_layer(const struct qc_recipe *r, const struct layer *l,
                                 struct qc_solver_cfg *c)
{
    enum qc_status st;
    for (size_t i = 0; i < QC_ARRAY_SIZE(num_keys); i++) {
        char *field = (char *)c + num_keys[i].off;
        if (num_keys[i].is_int)
            st = read_i(r, l, num_keys[i].sub, (int64_t)num_keys[i].lo, (int64_t *)field);
        else
            st = read_f(r, l, num_keys[i].sub, num_keys[i].lo, num_keys[i].hi,
                        num_keys[i].hi_open, (double *)field);
        if (st != QC_OK)
            return st;
    }
    return read_policy(r, l, &c->policy);
}

enum qc_status qc_solver_cfg_from_recipe(const struct qc_recipe *r, const char *node_section,
                                         const char *prefix, struct qc_solver_cfg *out)
{
    enum qc_status st;
    enum qc_solver_type type = QC_SOLVER_SGD;
    bool own = strcmp(prefix, "Solvers") != 0;
    const struct layer layers[3] = {
        { "", "Solvers" },
        { node_section, "Solvers" },
        { own ? node_section : NULL, prefix },
    };

    for (size_t i = 0; i < QC_ARRAY_SIZE(layers); i++) {
        st = read_type(r, layers[i].section, layers[i].prefix, &type);
        if (st != QC_OK)
            return st;
    }
    qc_solver_cfg_default(out, type);
    for (size_t i = 0; i < QC_ARRAY_SIZE(layers); i++) {
        if (!layers[i].section)
            continue;
        st = read_layer(r, &layers[i], out);
        if (st != QC_OK)
            return st;
    }

    /* CosineDecay without MaxIterations decays over the whole run: the
     * training loop sets max_iterations from its epochs (qc_solver_cfg). */
    return QC_OK;
}

/* ---- schedule and bookkeeping --------------------------------------------------------------- */

double qc_solver_lr(const struct qc_solver_cfg *cfg, int64_t samples)
{
    double lr = cfg->lr;
    if (samples < 0)
        samples = 0;
    switch (cfg->policy) {
    case QC_LR_NONE:
        break;
    case QC_LR_STEP: {
        /* LR · decay^floor(samples / step) */
        int64_t step = cfg->step_size > 0 ? cfg->step_size : 1;
        lr *= pow(cfg->step_decay, (double)(samples / step));
        break;
    }
    case QC_LR_COSINE:
        /* LR · ½(1 + cos(π·min(s, Max)/Max)): stays 0 after Max */
        if (cfg->max_iterations > 0) {
            double s = (double)QC_MIN(samples, cfg->max_iterations);
            lr *= 0.5 * (1.0 + cos(PI * s / (double)cfg->max_iterations));
        }
        break;
    }
    if (cfg->warmup > 0 && samples < cfg->warmup) {
        /* linear from f·rate at 0 to the full rate at W */
        double f = cfg->warmup_frac;
        lr *= f + (1.0 - f) * (double)samples / (double)cfg->warmup;
    }
    return lr;
}

int qc_solver_state_per_elem(enum qc_solver_type type)
{
    return type == QC_SOLVER_ADAM ? 2 : 1;
}

bool qc_solver_new_iteration(const struct qc_solver_step *st)
{
    return st->pass == 0;
}

bool qc_solver_batch_done(const struct qc_solver_cfg *cfg, struct qc_solver_step *st)
{
    int64_t it = cfg->iteration_size > 0 ? cfg->iteration_size : 1;
    st->pass++;
    if (st->pass < it)
        return false;
    st->pass = 0;
    return true;
}

void qc_solver_prepare(const struct qc_solver_cfg *cfg, const struct qc_solver_step *st,
                       double scale, struct qc_solver_update *u)
{
    double t = (double)(st->updates + 1);
    double lr = qc_solver_lr(cfg, st->samples);
    memset(u, 0, sizeof(*u));
    u->type = cfg->type;
    u->lr = (float)lr;
    u->scale = (float)scale;
    u->momentum = (float)cfg->momentum;
    u->decay = (float)cfg->decay;
    u->beta1 = (float)cfg->beta1;
    u->beta2 = (float)cfg->beta2;
    u->eps = (float)cfg->eps;
    if (cfg->type == QC_SOLVER_ADAM) {
        /* bias corrections 1 − β^t (β < 1 is checked when read) */
        double bc1 = 1.0 - pow(cfg->beta1, t), bc2 = 1.0 - pow(cfg->beta2, t);
        u->adam_step = (float)(lr / bc1);
        u->adam_sbc2 = (float)sqrt(bc2);
        u->adam_c1 = (float)(1.0 - cfg->beta1);
        u->adam_c2 = (float)(1.0 - cfg->beta2);
    }
}

void qc_solver_advance(struct qc_solver_step *st, int64_t samples)
{
    st->updates++;
    st->samples += samples;
}
