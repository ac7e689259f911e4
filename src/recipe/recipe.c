/*
 * recipe.c - N2D2-style INI recipes: parser and typed getters (see recipe.h
 * for the syntax; schema.c holds the keys each section may write).
 *
 * Loading runs in passes over the whole file so that every error can name
 * file:line: (1) parse logical lines into sections holding their own keys
 * (canonical key spelling, duplicates rejected); (2) copy the keys of base
 * sections into derived ones (missing base and cycles rejected); (3) read
 * ConfigSection lists; (4) replace `[sec]Key` references in every value;
 * (5) check every key a section writes against the schema of its section
 * class, normalise enum and boolean values to their canonical spelling and
 * check numbers and ranges.  After loading the recipe is immutable: getters
 * only look values up, so values returned by qc_recipe_str stay valid until
 * qc_recipe_free.
 */
#include <config.h>

#include "recipe.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema.h"
#include "util/log.h"

#define CFG_DEPTH_MAX 16

struct entry {
    char *key;                  /* canonical spelling                        */
    char *value;                /* references resolved once loading is done  */
    int   line;                 /* where the value was written               */
    bool  own;                  /* written in this section (not inherited)   */
    int   state;                /* reference resolution: 0 new, 1 busy, 2 ok */
};

struct section {
    char         *name;
    int           line;
    char        **bases;
    int           n_bases;
    struct entry *e;
    int           n_e, cap_e;
    int          *cfg;          /* ConfigSection targets (section indices)  */
    int           n_cfg;
    int           state;        /* inheritance / ConfigSection DFS state     */
    enum sec_class cls;
};

struct qc_recipe {
    char           *path;
    bool            lenient;
    struct section *s;
    int             n_s, cap_s;
};

/* ---- small string helpers ----------------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
                     s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Growable string. */
struct sbuf {
    char  *p;
    size_t n, cap;
};

static bool sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = qc_realloc(b->p, cap);
        if (!p)
            return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

/* ---- sections and entries ---------------------------------------------------------------- */

static int find_section(const struct qc_recipe *r, const char *name)
{
    for (int i = 0; i < r->n_s; i++)
        if (strcmp(r->s[i].name, name) == 0)
            return i;
    return -1;
}

static struct entry *find_own(const struct section *s, const char *key)
{
    for (int i = 0; i < s->n_e; i++)
        if (strcmp(s->e[i].key, key) == 0)
            return &s->e[i];
    return NULL;
}

/* Key lookup with ConfigSection (later sections win, own keys win over them). */
static struct entry *lookup_depth(const struct qc_recipe *r, int si, const char *key, int depth)
{
    const struct section *s = &r->s[si];
    struct entry *e = find_own(s, key);
    if (e || depth >= CFG_DEPTH_MAX)
        return e;
    for (int i = s->n_cfg - 1; i >= 0; i--) {
        e = lookup_depth(r, s->cfg[i], key, depth + 1);
        if (e)
            return e;
    }
    return NULL;
}

static struct entry *lookup(const struct qc_recipe *r, const char *section, const char *key)
{
    char kbuf[256];
    int si = find_section(r, section);
    if (si < 0)
        return NULL;
    return lookup_depth(r, si, qc_schema_canonical_key(key, kbuf, sizeof(kbuf)), 0);
}

static enum qc_status add_entry(struct section *s, const char *key, const char *value, int line,
                                bool own)
{
    if (s->n_e == s->cap_e) {
        int cap = s->cap_e ? 2 * s->cap_e : 8;
        struct entry *e = qc_realloc(s->e, (size_t)cap * sizeof(*e));
        if (!e)
            return QC_ERR_NOMEM;
        s->e = e;
        s->cap_e = cap;
    }
    struct entry *e = &s->e[s->n_e];
    memset(e, 0, sizeof(*e));
    e->key = qc_strdup(key);
    e->value = qc_strdup(value);
    if (!e->key || !e->value) {
        qc_free(e->key);
        qc_free(e->value);
        return QC_ERR_NOMEM;
    }
    e->line = line;
    e->own = own;
    s->n_e++;
    return QC_OK;
}

static enum qc_status add_section(struct qc_recipe *r, const char *name, int line)
{
    if (r->n_s == r->cap_s) {
        int cap = r->cap_s ? 2 * r->cap_s : 16;
        struct section *s = qc_realloc(r->s, (size_t)cap * sizeof(*s));
        if (!s)
            return QC_ERR_NOMEM;
        r->s = s;
        r->cap_s = cap;
    }
    struct section *s = &r->s[r->n_s];
    memset(s, 0, sizeof(*s));
    s->name = qc_strdup(name);
    if (!s->name)
        return QC_ERR_NOMEM;
    s->line = line;
    r->n_s++;
    return QC_OK;
}

void qc_recipe_free(struct qc_recipe *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_s; i++) {
        struct section *s = &r->s[i];
        for (int j = 0; j < s->n_e; j++) {
            qc_free(s->e[j].key);
            qc_free(s->e[j].value);
        }
        for (int j = 0; j < s->n_bases; j++)
            qc_free(s->bases[j]);
        qc_free(s->bases);
        qc_free(s->e);
        qc_free(s->cfg);
        qc_free(s->name);
    }
    qc_free(r->s);
    qc_free(r->path);
    qc_free(r);
}

/* ---- pass 1: syntax ------------------------------------------------------------------------ */

/* Cuts a comment (';' or '#' outside double quotes) off a logical line. */
static void strip_comment(char *s)
{
    bool quoted = false;
    for (; *s; s++) {
        if (*s == '"')
            quoted = !quoted;
        else if (!quoted && (*s == ';' || *s == '#')) {
            *s = '\0';
            return;
        }
    }
}

static enum qc_status parse_header(struct qc_recipe *r, char *line, int lineno)
{
    char *close = strchr(line, ']');
    if (!close) {
        qc_log_error("%s:%d: missing ']' in section header", r->path, lineno);
        return QC_ERR_RECIPE;
    }
    *close = '\0';
    char *name = trim(line + 1);
    if (!*name) {
        qc_log_error("%s:%d: empty section name", r->path, lineno);
        return QC_ERR_RECIPE;
    }
    int prev = find_section(r, name);
    if (prev >= 0) {
        qc_log_error("%s:%d: duplicate section [%s] (first defined at line %d)", r->path,
                     lineno, name, r->s[prev].line);
        return QC_ERR_RECIPE;
    }
    enum qc_status st = add_section(r, name, lineno);
    if (st != QC_OK)
        return st;
    struct section *s = &r->s[r->n_s - 1];
    char *p = close + 1;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        char *b = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        char **nb = qc_realloc(s->bases, (size_t)(s->n_bases + 1) * sizeof(*nb));
        if (!nb)
            return QC_ERR_NOMEM;
        s->bases = nb;
        s->bases[s->n_bases] = qc_malloc((size_t)(p - b) + 1);
        if (!s->bases[s->n_bases])
            return QC_ERR_NOMEM;
        memcpy(s->bases[s->n_bases], b, (size_t)(p - b));
        s->bases[s->n_bases][p - b] = '\0';
        s->n_bases++;
    }
    return QC_OK;
}

static enum qc_status parse_pair(struct qc_recipe *r, char *line, int lineno)
{
    char *eq = strchr(line, '=');
    if (!eq) {
        qc_log_error("%s:%d: expected 'Key=Value' or '[section]', got '%s'", r->path, lineno,
                     line);
        return QC_ERR_RECIPE;
    }
    *eq = '\0';
    char *key = trim(line);
    char *value = trim(eq + 1);
    if (!*key) {
        qc_log_error("%s:%d: missing key before '='", r->path, lineno);
        return QC_ERR_RECIPE;
    }
    size_t vl = strlen(value);
    if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
        value[vl - 1] = '\0';
        value++;
    }
    enum qc_status st;
    if (r->n_s == 0) {
        st = add_section(r, "", 0);
        if (st != QC_OK)
            return st;
    }
    struct section *s = &r->s[r->n_s - 1];
    char kbuf[256];
    const char *ck = qc_schema_canonical_key(key, kbuf, sizeof(kbuf));
    struct entry *prev = find_own(s, ck);
    if (prev) {
        qc_log_error("%s:%d: duplicate key '%s' in [%s] (first set at line %d)", r->path,
                     lineno, key, s->name, prev->line);
        return QC_ERR_RECIPE;
    }
    return add_entry(s, ck, value, lineno, true);
}

static enum qc_status parse_logical(struct qc_recipe *r, char *line, int lineno)
{
    strip_comment(line);
    char *t = trim(line);
    if (!*t)
        return QC_OK;
    if (*t == '[')
        return parse_header(r, t, lineno);
    return parse_pair(r, t, lineno);
}

static enum qc_status parse_text(struct qc_recipe *r, const char *text)
{
    enum qc_status st = QC_OK;
    struct sbuf lb = { 0 };
    int lineno = 0, start = 0;
    const char *p = text;
    if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        p += 3;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (lb.n == 0)
            start = lineno;
        while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        bool cont = n > 0 && p[n - 1] == '\\';
        if (!sbuf_add(&lb, p, cont ? n - 1 : n)) {
            st = QC_ERR_NOMEM;
            goto out;
        }
        p = nl ? nl + 1 : p + strlen(p);
        if (cont && *p)
            continue;
        st = parse_logical(r, lb.p, start);
        if (st != QC_OK)
            goto out;
        lb.n = 0;
    }
out:
    qc_free(lb.p);
    return st;
}

/* ---- pass 2 and 3: inheritance and ConfigSection ------------------------------------------ */

static enum qc_status inherit(struct qc_recipe *r, int si)
{
    struct section *s = &r->s[si];
    if (s->state == 2)
        return QC_OK;
    s->state = 1;
    for (int b = 0; b < s->n_bases; b++) {
        int bi = find_section(r, s->bases[b]);
        if (bi < 0) {
            qc_log_error("%s:%d: [%s]: base section [%s] is not defined", r->path, s->line,
                         s->name, s->bases[b]);
            return QC_ERR_RECIPE;
        }
        if (r->s[bi].state == 1) {
            qc_log_error("%s:%d: inheritance cycle: [%s] inherits from [%s]", r->path, s->line,
                         s->name, s->bases[b]);
            return QC_ERR_RECIPE;
        }
        enum qc_status st = inherit(r, bi);
        if (st != QC_OK)
            return st;
        s = &r->s[si];
        const struct section *base = &r->s[bi];
        for (int j = 0; j < base->n_e; j++) {
            if (find_own(s, base->e[j].key))
                continue;
            st = add_entry(s, base->e[j].key, base->e[j].value, base->e[j].line, false);
            if (st != QC_OK)
                return st;
        }
    }
    s->state = 2;
    return QC_OK;
}

static enum qc_status read_config_sections(struct qc_recipe *r, int si)
{
    struct section *s = &r->s[si];
    struct entry *e = find_own(s, "ConfigSection");
    if (!e)
        return QC_OK;
    char *list = qc_strdup(e->value);
    if (!list)
        return QC_ERR_NOMEM;
    enum qc_status st = QC_OK;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *name = trim(tok);
        if (!*name)
            continue;
        int ti = find_section(r, name);
        if (ti < 0) {
            qc_log_error("%s:%d: [%s] ConfigSection: section [%s] is not defined", r->path,
                         e->line, s->name, name);
            st = QC_ERR_RECIPE;
            goto out;
        }
        int *c = qc_realloc(s->cfg, (size_t)(s->n_cfg + 1) * sizeof(*c));
        if (!c) {
            st = QC_ERR_NOMEM;
            goto out;
        }
        s->cfg = c;
        s->cfg[s->n_cfg++] = ti;
    }
out:
    qc_free(list);
    return st;
}

static enum qc_status check_config_cycle(struct qc_recipe *r, int si, int depth)
{
    struct section *s = &r->s[si];
    if (s->state == 2)
        return QC_OK;
    if (s->state == 1 || depth > CFG_DEPTH_MAX) {
        struct entry *e = find_own(s, "ConfigSection");
        qc_log_error("%s:%d: ConfigSection cycle through [%s]", r->path, e ? e->line : s->line,
                     s->name);
        return QC_ERR_RECIPE;
    }
    s->state = 1;
    for (int i = 0; i < s->n_cfg; i++) {
        enum qc_status st = check_config_cycle(r, r->s[si].cfg[i], depth + 1);
        if (st != QC_OK)
            return st;
    }
    r->s[si].state = 2;
    return QC_OK;
}

/* ---- pass 4: references ------------------------------------------------------------------ */

static bool is_key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.';
}

static enum qc_status resolve(struct qc_recipe *r, struct section *s, struct entry *e)
{
    if (e->state == 2)
        return QC_OK;
    if (e->state == 1) {
        qc_log_error("%s:%d: reference cycle in [%s] %s=%s", r->path, e->line, s->name, e->key,
                     e->value);
        return QC_ERR_RECIPE;
    }
    if (!strchr(e->value, '[')) {
        e->state = 2;
        return QC_OK;
    }
    e->state = 1;
    enum qc_status st = QC_OK;
    struct sbuf out = { 0 };
    char *name = NULL, *key = NULL;
    const char *p = e->value;
    while (*p) {
        const char *open = strchr(p, '[');
        const char *close = open ? strchr(open, ']') : NULL;
        if (!open || !close) {
            if (!sbuf_add(&out, p, strlen(p)))
                goto nomem;
            break;
        }
        const char *k = close + 1;
        const char *kend = k;
        while (is_key_char(*kend))
            kend++;
        name = qc_malloc((size_t)(close - open));
        key = qc_malloc((size_t)(kend - k) + 1);
        if (!name || !key)
            goto nomem;
        memcpy(name, open + 1, (size_t)(close - open - 1));
        name[close - open - 1] = '\0';
        memcpy(key, k, (size_t)(kend - k));
        key[kend - k] = '\0';
        int ti = find_section(r, name);
        struct entry *t = ti >= 0 && *key ? lookup(r, name, key) : NULL;
        if (!sbuf_add(&out, p, (size_t)(open - p)))
            goto nomem;
        if (t) {
            st = resolve(r, &r->s[ti], t);
            if (st != QC_OK)
                goto out;
            if (!sbuf_add(&out, t->value, strlen(t->value)))
                goto nomem;
            p = kend;
        } else {
            if (!sbuf_add(&out, open, 1))
                goto nomem;
            p = open + 1;
        }
        qc_free(name);
        qc_free(key);
        name = key = NULL;
    }
    qc_free(e->value);
    e->value = out.p ? out.p : qc_strdup("");
    out.p = NULL;
    if (!e->value)
        goto nomem;
    e->state = 2;
    goto out;
nomem:
    st = QC_ERR_NOMEM;
out:
    qc_free(out.p);
    qc_free(name);
    qc_free(key);
    return st;
}

/* ---- pass 5: schema ------------------------------------------------------------------------ */

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool parse_f64(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static enum qc_status bad_value(const struct qc_recipe *r, const struct section *s,
                                const struct entry *e, const char *expected)
{
    qc_log_error("%s:%d: [%s] %s=%s: expected %s", r->path, e->line, s->name, e->key, e->value,
                 expected);
    return QC_ERR_RECIPE;
}

static enum qc_status check_range(const struct qc_recipe *r, const struct section *s,
                                  const struct entry *e, const struct key_spec *k, double v,
                                  const char *what)
{
    char msg[128];
    if (v >= k->min && v <= k->max)
        return QC_OK;
    if (k->max >= 1e300)
        snprintf(msg, sizeof(msg), "%s >= %g", what, k->min);
    else if (k->min <= -1e300)
        snprintf(msg, sizeof(msg), "%s <= %g", what, k->max);
    else
        snprintf(msg, sizeof(msg), "%s in [%g, %g]", what, k->min, k->max);
    return bad_value(r, s, e, msg);
}

static enum qc_status check_value(struct qc_recipe *r, struct section *s, struct entry *e,
                                  const struct key_spec *k)
{
    char canon[128], msg[512];
    int64_t iv;
    double fv;
    switch (k->kind) {
    case K_STR:
        return QC_OK;
    case K_BOOL:
        if (strcmp(e->value, "0") == 0 || strcmp(e->value, "1") == 0)
            return QC_OK;
        if (strcasecmp(e->value, "true") == 0 || strcasecmp(e->value, "false") == 0) {
            e->value[0] = strcasecmp(e->value, "true") == 0 ? '1' : '0';
            e->value[1] = '\0';
            return QC_OK;
        }
        return bad_value(r, s, e, "0 or 1");
    case K_ENUM:
        if (!qc_schema_enum_canonical(k->values, e->value, canon, sizeof(canon))) {
            snprintf(msg, sizeof(msg), "one of %s", k->values);
            return bad_value(r, s, e, msg);
        }
        if (strcmp(canon, e->value) != 0) {
            char *v = qc_strdup(canon);
            if (!v)
                return QC_ERR_NOMEM;
            qc_free(e->value);
            e->value = v;
        }
        return QC_OK;
    case K_INT:
        if (!parse_i64(e->value, &iv))
            return bad_value(r, s, e, "an integer");
        return check_range(r, s, e, k, (double)iv, "an integer");
    case K_FLOAT:
        if (!parse_f64(e->value, &fv))
            return bad_value(r, s, e, "a number");
        return check_range(r, s, e, k, fv, "a number");
    case K_FLIST: {
        const char *p = e->value;
        int n = 0;
        while (*p) {
            char *end;
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            if (!*p)
                break;
            errno = 0;
            double v = strtod(p, &end);
            if (end == p || errno == ERANGE || !isfinite(v) ||
                (*end && *end != ' ' && *end != '\t' && *end != ','))
                return bad_value(r, s, e, "one number or one per channel");
            n++;
            p = end;
        }
        if (n == 0)
            return bad_value(r, s, e, "one number or one per channel");
        return QC_OK;
    }
    }
    return QC_OK;
}

static enum sec_class classify(const struct section *s)
{
    const char *n = s->name;
    if (!*n)
        return SEC_GLOBAL;
    if (strcmp(n, "database") == 0)
        return SEC_DATABASE;
    if (strcmp(n, "sp") == 0 || strcmp(n, "env") == 0)
        return SEC_SP;
    const char *rest = strncmp(n, "sp.", 3) == 0 ? n + 3 : strncmp(n, "env.", 4) == 0 ? n + 4
                                                                                      : NULL;
    if (rest && (strncmp(rest, "Transformation", 14) == 0 ||
                 strncmp(rest, "OnTheFlyTransformation", 22) == 0))
        return SEC_TRANSFORM;
    struct entry *t = find_own(s, "Type");
    if (t && strcmp(t->value, "ONNX") == 0)
        return SEC_ONNX;
    if (t && strcasecmp(t->value, "Softmax") == 0)
        return SEC_SOFTMAX;
    size_t nl = strlen(n);
    if (nl > 7 && strcmp(n + nl - 7, ".Target") == 0)
        return SEC_TARGET;
    return SEC_NODE;
}

/* [X.Target] targets the Softmax section [X]. */
static enum qc_status check_target(const struct qc_recipe *r, const struct section *s)
{
    size_t nl = strlen(s->name) - 7;
    for (int i = 0; i < r->n_s; i++)
        if (strlen(r->s[i].name) == nl && strncmp(r->s[i].name, s->name, nl) == 0 &&
            classify(&r->s[i]) == SEC_SOFTMAX)
            return QC_OK;
    qc_log_error("%s:%d: [%s]: no section [%.*s] with Type=Softmax that it would be the "
                 "target of",
                 r->path, s->line, s->name, (int)nl, s->name);
    return QC_ERR_RECIPE;
}

static enum qc_status check_section(struct qc_recipe *r, int si)
{
    struct section *s = &r->s[si];
    const char *tf_type = NULL;
    s->cls = classify(s);
    if (s->cls == SEC_TRANSFORM) {
        struct entry *t = find_own(s, "Type");
        if (!t) {
            qc_log_error("%s:%d: [%s]: missing Type (one of %s)", r->path, s->line, s->name,
                         TF_TYPES);
            return QC_ERR_RECIPE;
        }
        tf_type = qc_schema_tf_type(t->value);
    }
    if (s->cls == SEC_TARGET) {
        enum qc_status st = check_target(r, s);
        if (st != QC_OK)
            return st;
    }
    for (int j = 0; j < s->n_e; j++) {
        struct entry *e = &s->e[j];
        struct suggest sg = { .key = e->key, .best = 1000 };
        const struct key_spec *k = qc_schema_find_spec(s->cls, tf_type, e->key, NULL);
        if (!k) {
            if (!e->own)
                continue;
            qc_schema_find_spec(s->cls, tf_type, e->key, &sg);
            char hint[160] = "";
            if (sg.best < 1000)
                snprintf(hint, sizeof(hint), " (did you mean '%s'?)", sg.name);
            if (!r->lenient) {
                qc_log_error("%s:%d: unknown key '%s' in [%s]%s", r->path, e->line, e->key,
                             s->name, hint);
                return QC_ERR_RECIPE;
            }
            qc_log_warn("%s:%d: unknown key '%s' in [%s]%s", r->path, e->line, e->key, s->name,
                        hint);
            continue;
        }
        enum qc_status st = check_value(r, s, e, k);
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

/* ---- load ---------------------------------------------------------------------------------- */

enum qc_status qc_recipe_load_string(const char *text, const char *name, bool lenient,
                                     struct qc_recipe **out)
{
    enum qc_status st;
    struct qc_recipe *r = qc_calloc(1, sizeof(*r));
    *out = NULL;
    if (!r)
        return QC_ERR_NOMEM;
    r->lenient = lenient;
    r->path = qc_strdup(name ? name : "<recipe>");
    if (!r->path) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    st = parse_text(r, text);
    if (st != QC_OK)
        goto out;
    for (int i = 0; i < r->n_s; i++) {
        st = inherit(r, i);
        if (st != QC_OK)
            goto out;
    }
    for (int i = 0; i < r->n_s; i++) {
        st = read_config_sections(r, i);
        if (st != QC_OK)
            goto out;
        r->s[i].state = 0;
    }
    for (int i = 0; i < r->n_s; i++) {
        st = check_config_cycle(r, i, 0);
        if (st != QC_OK)
            goto out;
    }
    for (int i = 0; i < r->n_s; i++) {
        for (int j = 0; j < r->s[i].n_e; j++) {
            st = resolve(r, &r->s[i], &r->s[i].e[j]);
            if (st != QC_OK)
                goto out;
        }
    }
    for (int i = 0; i < r->n_s; i++) {
        st = check_section(r, i);
        if (st != QC_OK)
            goto out;
    }
    *out = r;
    r = NULL;
out:
    qc_recipe_free(r);
    return st;
}

enum qc_status qc_recipe_load(const char *path, bool lenient, struct qc_recipe **out)
{
    enum qc_status st = QC_ERR_RECIPE;
    struct sbuf text = { 0 };
    char chunk[8192];
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        qc_log_error("%s: %s", path, strerror(errno));
        return QC_ERR_RECIPE;
    }
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (memchr(chunk, '\0', n)) {
            qc_log_error("%s: not a text file (NUL byte)", path);
            goto out;
        }
        if (!sbuf_add(&text, chunk, n)) {
            st = QC_ERR_NOMEM;
            goto out;
        }
    }
    if (ferror(f)) {
        qc_log_error("%s: read error: %s", path, strerror(errno));
        goto out;
    }
    st = qc_recipe_load_string(text.p ? text.p : "", path, lenient, out);
out:
    fclose(f);
    qc_free(text.p);
    return st;
}

/* ---- queries -------------------------------------------------------------------------------- */

const char *qc_recipe_path(const struct qc_recipe *r)
{
    return r->path;
}

int qc_recipe_n_sections(const struct qc_recipe *r)
{
    return r->n_s;
}

const char *qc_recipe_section_name(const struct qc_recipe *r, int i)
{
    QC_ASSERT(i >= 0 && i < r->n_s);
    return r->s[i].name;
}

bool qc_recipe_section_is_node(const struct qc_recipe *r, int i)
{
    QC_ASSERT(i >= 0 && i < r->n_s);
    return r->s[i].cls == SEC_NODE;
}

bool qc_recipe_section_is_base(const struct qc_recipe *r, int i)
{
    QC_ASSERT(i >= 0 && i < r->n_s);
    for (int j = 0; j < r->n_s; j++) {
        for (int b = 0; b < r->s[j].n_bases; b++)
            if (strcmp(r->s[j].bases[b], r->s[i].name) == 0)
                return true;
        for (int c = 0; c < r->s[j].n_cfg; c++)
            if (r->s[j].cfg[c] == i)
                return true;
    }
    return false;
}

int qc_recipe_section_class(const struct qc_recipe *r, int i)
{
    QC_ASSERT(i >= 0 && i < r->n_s);
    return (int)r->s[i].cls;
}

int qc_recipe_n_keys(const struct qc_recipe *r, int i)
{
    QC_ASSERT(i >= 0 && i < r->n_s);
    return r->s[i].n_e;
}

const char *qc_recipe_key(const struct qc_recipe *r, int i, int j, bool *own, int *line)
{
    QC_ASSERT(i >= 0 && i < r->n_s && j >= 0 && j < r->s[i].n_e);
    if (own)
        *own = r->s[i].e[j].own;
    if (line)
        *line = r->s[i].e[j].line;
    return r->s[i].e[j].key;
}

int qc_recipe_section_line(const struct qc_recipe *r, int i)
{
    QC_ASSERT(i >= 0 && i < r->n_s);
    return r->s[i].line;
}

bool qc_recipe_has_section(const struct qc_recipe *r, const char *section)
{
    return find_section(r, section) >= 0;
}

bool qc_recipe_has_key(const struct qc_recipe *r, const char *section, const char *key)
{
    return lookup(r, section, key) != NULL;
}

enum qc_status qc_recipe_str(const struct qc_recipe *r, const char *section, const char *key,
                             const char *def, const char **out)
{
    const struct entry *e = lookup(r, section, key);
    *out = e ? e->value : def;
    return QC_OK;
}

enum qc_status qc_recipe_int(const struct qc_recipe *r, const char *section, const char *key,
                             int64_t def, int64_t *out)
{
    const struct entry *e = lookup(r, section, key);
    *out = def;
    if (!e)
        return QC_OK;
    if (!parse_i64(e->value, out)) {
        qc_log_error("%s:%d: [%s] %s=%s: expected an integer", r->path, e->line, section, key,
                     e->value);
        *out = def;
        return QC_ERR_RECIPE;
    }
    return QC_OK;
}

enum qc_status qc_recipe_float(const struct qc_recipe *r, const char *section, const char *key,
                               double def, double *out)
{
    const struct entry *e = lookup(r, section, key);
    *out = def;
    if (!e)
        return QC_OK;
    if (!parse_f64(e->value, out)) {
        qc_log_error("%s:%d: [%s] %s=%s: expected a number", r->path, e->line, section, key,
                     e->value);
        *out = def;
        return QC_ERR_RECIPE;
    }
    return QC_OK;
}

const char *qc_recipe_where(const struct qc_recipe *r, const char *section, const char *key,
                            char *buf, size_t len)
{
    const struct entry *e = lookup(r, section, key);
    if (e)
        snprintf(buf, len, "%s:%d", r->path, e->line);
    else
        snprintf(buf, len, "%s", r->path);
    return buf;
}
