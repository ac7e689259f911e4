/*
 * imagedb.c - the file lists of image-folder databases (see imagedb.h).
 *
 * A folder is read with opendir/readdir; entries are classified with stat
 * (following links, as N2D2); names are collected, sorted with strcmp and
 * then visited, files first.  The list grows by doubling.
 */
#include <config.h>

#include "imagedb.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"

const char *const qc_image_default_exts[] = { "jpg", "jpeg", "png" };

void qc_image_list_free(struct qc_image_list *l)
{
    if (!l)
        return;
    for (int64_t i = 0; i < l->n; i++)
        qc_free(l->paths[i]);
    for (int i = 0; i < l->n_classes; i++)
        qc_free(l->names[i]);
    qc_free(l->paths);
    qc_free(l->labels);
    qc_free(l->names);
    *l = (struct qc_image_list){ 0 };
}

/* Class id of label name, added when new; -1 when out of memory. */
static int label_id(struct qc_image_list *l, const char *name)
{
    for (int i = l->n_classes - 1; i >= 0; i--)
        if (strcmp(l->names[i], name) == 0)
            return i;
    if (l->n_classes == l->names_cap) {
        int cap = l->names_cap ? 2 * l->names_cap : 16;
        char **p = qc_realloc(l->names, (size_t)cap * sizeof(*p));
        if (!p)
            return -1;
        l->names = p;
        l->names_cap = cap;
    }
    if (!(l->names[l->n_classes] = qc_strdup(name)))
        return -1;
    return l->n_classes++;
}

/* Appends path (copied) with label. */
static enum qc_status add_file(struct qc_image_list *l, const char *path, int32_t label)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 256;
        char **p = qc_realloc(l->paths, (size_t)cap * sizeof(*p));
        if (!p)
            return QC_ERR_NOMEM;
        l->paths = p;
        int32_t *q = qc_realloc(l->labels, (size_t)cap * sizeof(*q));
        if (!q)
            return QC_ERR_NOMEM;
        l->labels = q;
        l->cap = cap;
    }
    if (!(l->paths[l->n] = qc_strdup(path)))
        return QC_ERR_NOMEM;
    l->labels[l->n++] = label;
    if (l->rep && l->n % QC_INDEX_EVERY == 0) {
        struct qc_event ev = {
            .kind = QC_EVENT_INDEX, .phase = QC_PHASE_SETUP, .what = l->what, .done = l->n
        };
        qc_emit(l->rep, &ev);
    }
    return QC_OK;
}

static bool ext_ok(const char *name, const char *const *exts, int n_exts)
{
    const char *dot = strrchr(name, '.');
    char ext[16];
    size_t k = 0;
    if (!dot)
        return false;
    for (dot++; *dot && k + 1 < sizeof(ext); dot++)
        ext[k++] = (char)tolower((unsigned char)*dot);
    if (*dot)
        return false;
    ext[k] = '\0';
    for (int i = 0; i < n_exts; i++)
        if (strcmp(ext, exts[i]) == 0)
            return true;
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct names {
    char **v;
    size_t n, cap;
};

static void names_free(struct names *s)
{
    for (size_t i = 0; i < s->n; i++)
        qc_free(s->v[i]);
    qc_free(s->v);
}

static enum qc_status names_add(struct names *s, const char *path)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        char **p = qc_realloc(s->v, cap * sizeof(*p));
        if (!p)
            return QC_ERR_NOMEM;
        s->v = p;
        s->cap = cap;
    }
    if (!(s->v[s->n] = qc_strdup(path)))
        return QC_ERR_NOMEM;
    s->n++;
    return QC_OK;
}

/* N2D2's loadDir: label is the label name so far, label_depth the folder
 * levels still added to it (< 0: unlabelled, not supported here). */
static enum qc_status load_dir(const char *dir, int depth, const char *label, int label_depth,
                               const char *const *exts, int n_exts, struct qc_image_list *l)
{
    enum qc_status st = QC_OK;
    struct names files = { 0 }, subs = { 0 };
    char path[4096];
    DIR *d = opendir(dir);
    if (!d) {
        qc_log_error("%s: cannot open the image folder: %s", dir, strerror(errno));
        return QC_ERR_DATA;
    }
    struct dirent *e;
    while (st == QC_OK && (e = readdir(d))) {
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            qc_log_error("%s/%s: path too long", dir, e->d_name);
            st = QC_ERR_DATA;
            break;
        }
        if (stat(path, &sb) != 0)
            continue; /* as N2D2: a broken entry is ignored */
        if (S_ISDIR(sb.st_mode))
            st = names_add(&subs, path);
        else if (ext_ok(e->d_name, exts, n_exts))
            st = names_add(&files, path);
    }
    closedir(d);
    if (st != QC_OK)
        goto out;
    if (files.n == 0 && (subs.n == 0 || depth == 0)) {
        qc_log_error("%s: empty image folder (no file with a valid extension%s)", dir,
                     depth == 0 ? "" : " and no sub-folder");
        st = QC_ERR_DATA;
        goto out;
    }
    if (files.n > 0) {
        qsort(files.v, files.n, sizeof(*files.v), cmp_str);
        int id = label_id(l, label);
        if (id < 0) {
            st = QC_ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < files.n && st == QC_OK; i++)
            st = add_file(l, files.v[i], id);
    }
    if (depth != 0) {
        qsort(subs.v, subs.n, sizeof(*subs.v), cmp_str);
        for (size_t i = 0; i < subs.n && st == QC_OK; i++) {
            const char *base = strrchr(subs.v[i], '/') + 1;
            char sub_label[1024];
            int n = label_depth > 0 ? snprintf(sub_label, sizeof(sub_label), "%s/%s", label, base)
                                    : snprintf(sub_label, sizeof(sub_label), "%s", label);
            if (n < 0 || (size_t)n >= sizeof(sub_label)) {
                qc_log_error("%s: label name too long", subs.v[i]);
                st = QC_ERR_DATA;
                break;
            }
            st = load_dir(subs.v[i], depth - 1, sub_label,
                          label_depth > 0 ? label_depth - 1 : label_depth, exts, n_exts, l);
        }
    }
out:
    names_free(&files);
    names_free(&subs);
    return st;
}

enum qc_status qc_dir_list(const char *root, int depth, int label_depth, const char *const *exts,
                           int n_exts, struct qc_image_list *l)
{
    return load_dir(root, depth, "", label_depth, exts, n_exts, l);
}

enum qc_status qc_ilsvrc_list_train(const char *train_dir, const char *synsets_path,
                                    bool background, const char *const *exts, int n_exts,
                                    struct qc_image_list *l)
{
    enum qc_status st = QC_OK;
    char synset[1024], dir[4096];
    FILE *f = fopen(synsets_path, "r");
    if (!f) {
        qc_log_error("%s: cannot open the ILSVRC2012 label file: %s", synsets_path,
                     strerror(errno));
        return QC_ERR_DATA;
    }
    if (background && label_id(l, "background") < 0)
        st = QC_ERR_NOMEM;
    while (st == QC_OK && fscanf(f, "%1023s", synset) == 1) {
        int n = snprintf(dir, sizeof(dir), "%s/%s", train_dir, synset);
        if (n < 0 || (size_t)n >= sizeof(dir)) {
            qc_log_error("%s: path too long", train_dir);
            st = QC_ERR_DATA;
            break;
        }
        /* depth 0: the files of the folder only; label: the synset */
        if (label_id(l, synset) < 0)
            st = QC_ERR_NOMEM;
        else
            st = load_dir(dir, 0, synset, 0, exts, n_exts, l);
    }
    if (st == QC_OK && ferror(f)) {
        qc_log_error("%s: read error", synsets_path);
        st = QC_ERR_DATA;
    }
    if (st == QC_OK && l->n_classes == (background ? 1 : 0)) {
        qc_log_error("%s: no synset listed", synsets_path);
        st = QC_ERR_DATA;
    }
    fclose(f);
    return st;
}

enum qc_status qc_ilsvrc_list_val(const char *val_dir, const char *val_txt, bool background,
                                  struct qc_image_list *l)
{
    enum qc_status st = QC_OK;
    char line[2048], name[1024], path[4096];
    long lineno = 0;
    FILE *f = fopen(val_txt, "r");
    if (!f) {
        qc_log_error("%s: cannot open the ILSVRC2012 validation label file: %s", val_txt,
                     strerror(errno));
        return QC_ERR_DATA;
    }
    while (st == QC_OK && fgets(line, sizeof(line), f)) {
        long id;
        char extra;
        lineno++;
        int k = sscanf(line, "%1023s %ld %c", name, &id, &extra);
        if (k <= 0)
            continue; /* blank line */
        if (k != 2 || id < 0 || id + (background ? 1 : 0) >= l->n_classes) {
            qc_log_error("%s:%ld: expected \"<file> <class id>\" with an id in [0, %d)", val_txt,
                         lineno, l->n_classes - (background ? 1 : 0));
            st = QC_ERR_DATA;
            break;
        }
        int n = snprintf(path, sizeof(path), "%s/%s", val_dir, name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            qc_log_error("%s:%ld: path too long", val_txt, lineno);
            st = QC_ERR_DATA;
            break;
        }
        st = add_file(l, path, (int32_t)(id + (background ? 1 : 0)));
    }
    if (st == QC_OK && ferror(f)) {
        qc_log_error("%s: read error", val_txt);
        st = QC_ERR_DATA;
    }
    fclose(f);
    return st;
}
