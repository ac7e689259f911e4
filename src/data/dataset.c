/*
 * dataset.c - struct qc_data_cfg (what a recipe says about data), split
 * loading and batch assembly (see data.h).
 *
 * Type=Synthetic generates its sets instead of reading files: NbLearn
 * training and NbTest test images of the [sp] geometry, NbClasses classes.
 * From the global Seed it draws a bank of SYNTH_BANK random images (pixels
 * uniform in 0..191) and the labels (uniform); image i of a set is bank
 * image i mod SYNTH_BANK plus 64 * label / NbClasses on every pixel, so the
 * class is learnable from brightness while a set of any size costs only the
 * bank and its labels in memory.  Validation, Learn and Test fractions split
 * it like a file; RandomPartitioning does not apply (the images are random).
 *
 * The cfg is built once from the recipe: database type and files, split
 * fractions, the [sp]/[env] geometry and batch size, and the transformation
 * sections in order (all [*.Transformation-N] by N, then all
 * [*.OnTheFlyTransformation-N] by N).  Shapes are checked through the whole
 * chain for both the learn path and the other splits at build time, and the
 * two float scratch planes used by qc_data_batch are allocated then, sized
 * for the largest intermediate image.  Consequently qc_data_batch allocates
 * nothing, but it writes the cfg's scratch: one cfg serves one thread.
 *
 * Image folders (DIR_Database, ILSVRC2012_Database) are listed by imagedb.c
 * and split here as N2D2 splits them (dir_partition, ilsvrc_partition); a
 * split holds file names only.  Their images have any size, so the chain is
 * checked at build time for [sp] SizeX x SizeY images and again for each
 * decoded image (image_one), which allocates its own two planes per image
 * and touches no cfg scratch: the per-image unit a decoding pool can run.
 */
#include <config.h>

#include "data.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "recipe/recipe.h"
#include "image.h"
#include "imagedb.h"
#include "transform.h"

#define DEFAULT_BATCH 32
#define SYNTH_BANK    64           /* distinct images of a synthetic set      */
#define SYNTH_PEAK    192          /* bank pixels lie in [0, SYNTH_PEAK)      */
#define SYNTH_SPAN    64           /* label offsets lie in [0, SYNTH_SPAN)    */
#define DB_TYPES                                                                                   \
    "MNIST_IDX_Database|CIFAR10_Database|CIFAR100_Database|DIR_Database|ILSVRC2012_Database|"      \
    "Synthetic"
#define MAX_EXTS 16

enum db_type { DB_NONE = 0, DB_MNIST, DB_CIFAR10, DB_CIFAR100, DB_SYNTH, DB_DIR, DB_ILSVRC };

struct qc_data_cfg {
    enum db_type         db;
    char                *data_path;     /* NULL: none given              */
    char                 where[192];    /* "file:line" of [database]     */
    double               learn, validation, test;
    bool                 random_partitioning;
    uint64_t             seed;
    int64_t              syn_classes, syn_learn, syn_test;  /* Type=Synthetic */
    /* image folders (DIR_Database, ILSVRC2012_Database) */
    int64_t depth, label_depth;
    bool per_label, equiv_label, test_given;
    bool use_val_for_test, background, ignore_corrupt;
    int64_t decode_threads;        /* DecodeThreads (0: the job's threads) */
    const struct qc_reporter *rep; /* indexing events, or NULL */
    char *label_path;              /* ILSVRC2012 synsets    */
    char ext_buf[256];
    const char *exts[MAX_EXTS];
    int n_exts;
    int                  src_c, src_h, src_w;   /* images as stored      */
    int                  c, h, w;               /* network input         */
    int64_t              batch;
    bool channels_last; /* qc_data_batch writes HWC images */
    struct qc_transform *tf;
    int                  n_tf;
    float               *scratch[2];
    size_t               scratch_elems;
};

/* A transformation section and its sort key. */
struct tf_ref {
    const char *name;
    int         on_the_fly, number, order;
};

static int cmp_tf(const void *a, const void *b)
{
    const struct tf_ref *x = a, *y = b;
    if (x->on_the_fly != y->on_the_fly)
        return x->on_the_fly - y->on_the_fly;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return x->order - y->order;
}

/* Is `name` "sp.Transformation[-N]", "env.OnTheFlyTransformation[-N]", ...? */
static bool tf_section(const char *name, struct tf_ref *ref)
{
    const char *rest = strncmp(name, "sp.", 3) == 0    ? name + 3
                       : strncmp(name, "env.", 4) == 0 ? name + 4
                                                       : NULL;
    if (!rest)
        return false;
    if (strncmp(rest, "OnTheFlyTransformation", 22) == 0) {
        ref->on_the_fly = 1;
        rest += 22;
    } else if (strncmp(rest, "Transformation", 14) == 0) {
        ref->on_the_fly = 0;
        rest += 14;
    } else {
        return false;
    }
    ref->name = name;
    ref->number = 0;
    if (rest[0] == '-' && rest[1] >= '0' && rest[1] <= '9') {
        char *end;
        long v = strtol(rest + 1, &end, 10);
        if (*end == '\0' && v < 1000000)
            ref->number = (int)v;
    }
    return true;
}

static bool tf_applies(const struct qc_transform *t, enum qc_split split)
{
    switch (t->apply_to) {
    case QC_TF_APPLY_ALL:
        return true;
    case QC_TF_APPLY_LEARN_ONLY:
        return split == QC_SPLIT_LEARN;
    case QC_TF_APPLY_VALIDATION_ONLY:
        return split == QC_SPLIT_VALIDATION;
    case QC_TF_APPLY_TEST_ONLY:
        return split == QC_SPLIT_TEST;
    case QC_TF_APPLY_NO_LEARN:
        return split != QC_SPLIT_LEARN;
    case QC_TF_APPLY_NO_VALIDATION:
        return split != QC_SPLIT_VALIDATION;
    case QC_TF_APPLY_NO_TEST:
        return split != QC_SPLIT_TEST;
    }
    return true;
}

/* Output shape of the chain for `split`, and the largest plane met. */
static enum qc_status chain_shape(const struct qc_data_cfg *cfg, enum qc_split split, int *c,
                                  int *h, int *w, size_t *max_elems)
{
    *c = cfg->src_c;
    *h = cfg->src_h;
    *w = cfg->src_w;
    *max_elems = QC_MAX(*max_elems, (size_t)*c * *h * *w);
    for (int i = 0; i < cfg->n_tf; i++) {
        if (!tf_applies(&cfg->tf[i], split))
            continue;
        enum qc_status st = qc_transform_shape(&cfg->tf[i], *c, *h, *w, c, h, w);
        if (st != QC_OK)
            return st;
        *max_elems = QC_MAX(*max_elems, (size_t)*c * *h * *w);
    }
    return QC_OK;
}

/* NbClasses, NbLearn, NbTest: with Type=Synthetic only. */
static enum qc_status read_synthetic(const struct qc_recipe *r, struct qc_data_cfg *cfg)
{
    static const char *const keys[] = { "NbClasses", "NbLearn", "NbTest" };
    int64_t *vals[] = { &cfg->syn_classes, &cfg->syn_learn, &cfg->syn_test };
    static const int64_t defs[] = { 10, 50000, 10000 };
    static const int64_t mins[] = { 2, 1, 1 };
    char where[192];
    for (size_t i = 0; i < QC_ARRAY_SIZE(keys); i++) {
        enum qc_status st;
        if (cfg->db != DB_SYNTH) {
            if (qc_recipe_has_key(r, "database", keys[i])) {
                qc_log_error("%s: [database] %s applies only to Type=Synthetic",
                             qc_recipe_where(r, "database", keys[i], where, sizeof(where)),
                             keys[i]);
                return QC_ERR_RECIPE;
            }
            continue;
        }
        if ((st = qc_recipe_int(r, "database", keys[i], defs[i], vals[i])) != QC_OK)
            return st;
        if (*vals[i] < mins[i] || *vals[i] > (int64_t)1 << 31) {
            qc_log_error("%s: [database] %s=%lld: expected %lld to 2^31",
                         qc_recipe_where(r, "database", keys[i], where, sizeof(where)),
                         keys[i], (long long)*vals[i], (long long)mins[i]);
            return QC_ERR_RECIPE;
        }
    }
    return QC_OK;
}

/* The keys of the image-folder types (qatconv-recipe(5)); an error for the
 * other types. */
static enum qc_status read_image_db(const struct qc_recipe *r, struct qc_data_cfg *cfg)
{
    static const char *const dir_keys[] = { "Depth", "LabelDepth", "PerLabelPartitioning",
                                            "EquivLabelPartitioning" };
    static const char *const ilsvrc_keys[] = { "LabelPath", "UseValidationForTest",
                                               "BackgroundClass" };
    static const char *const both_keys[] = { "ValidExtensions", "IgnoreCorrupt", "DecodeThreads" };
    bool dir = cfg->db == DB_DIR, ilsvrc = cfg->db == DB_ILSVRC;
    struct {
        const char *const *keys;
        size_t n;
        bool ok;
        const char *types;
    } groups[] = {
        { dir_keys, QC_ARRAY_SIZE(dir_keys), dir, "DIR_Database" },
        { ilsvrc_keys, QC_ARRAY_SIZE(ilsvrc_keys), ilsvrc, "ILSVRC2012_Database" },
        { both_keys, QC_ARRAY_SIZE(both_keys), dir || ilsvrc,
          "DIR_Database and ILSVRC2012_Database" },
    };
    char where[192];
    enum qc_status st;
    for (size_t g = 0; g < QC_ARRAY_SIZE(groups); g++)
        for (size_t i = 0; i < groups[g].n && !groups[g].ok; i++)
            if (qc_recipe_has_key(r, "database", groups[g].keys[i])) {
                qc_log_error(
                    "%s: [database] %s applies only to Type=%s",
                    qc_recipe_where(r, "database", groups[g].keys[i], where, sizeof(where)),
                    groups[g].keys[i], groups[g].types);
                return QC_ERR_RECIPE;
            }
    if (!dir && !ilsvrc)
        return QC_OK;
    int64_t per_label = 1, equiv = 1, use_val = 1, bg = 0, ignore = 0;
    const char *exts = NULL, *label_path = NULL;
    if ((st = qc_recipe_int(r, "database", "Depth", 1, &cfg->depth)) != QC_OK ||
        (st = qc_recipe_int(r, "database", "LabelDepth", 1, &cfg->label_depth)) != QC_OK ||
        (st = qc_recipe_int(r, "database", "PerLabelPartitioning", 1, &per_label)) != QC_OK ||
        (st = qc_recipe_int(r, "database", "EquivLabelPartitioning", 1, &equiv)) != QC_OK ||
        (st = qc_recipe_int(r, "database", "UseValidationForTest", 1, &use_val)) != QC_OK ||
        (st = qc_recipe_int(r, "database", "BackgroundClass", 0, &bg)) != QC_OK ||
        (st = qc_recipe_int(r, "database", "IgnoreCorrupt", 0, &ignore)) != QC_OK ||
        (st = qc_recipe_int(r, "database", "DecodeThreads", 0, &cfg->decode_threads)) != QC_OK ||
        (st = qc_recipe_str(r, "database", "ValidExtensions", NULL, &exts)) != QC_OK ||
        (st = qc_recipe_str(r, "database", "LabelPath", NULL, &label_path)) != QC_OK)
        return st;
    if (cfg->depth < -1 || cfg->label_depth < 0 || cfg->label_depth > 64) {
        qc_log_error("%s: [database] Depth must be -1 (no limit) or more and LabelDepth 0 to "
                     "64",
                     cfg->where);
        return QC_ERR_RECIPE;
    }
    if (!qc_recipe_has_key(r, "database", "Learn")) {
        qc_log_error("%s: [database] Type=%s needs Learn (the fraction of the images learnt "
                     "from)",
                     cfg->where, dir ? "DIR_Database" : "ILSVRC2012_Database");
        return QC_ERR_RECIPE;
    }
    if (dir && !cfg->data_path) {
        qc_log_error("%s: [database] Type=DIR_Database needs DataPath", cfg->where);
        return QC_ERR_RECIPE;
    }
    if (!per_label) {
        qc_log_error("%s: [database] PerLabelPartitioning=0 (N2D2 then reads Learn, Validation "
                     "and Test as image counts) is not supported",
                     cfg->where);
        return QC_ERR_RECIPE;
    }
    if (ilsvrc && (qc_recipe_has_key(r, "database", "Validation") ||
                   qc_recipe_has_key(r, "database", "Test"))) {
        qc_log_error("%s: [database] Type=ILSVRC2012_Database takes no Validation or Test: "
                     "val/ validates (and tests with UseValidationForTest=1), the training "
                     "images not learnt test",
                     cfg->where);
        return QC_ERR_RECIPE;
    }
    cfg->per_label = per_label != 0;
    cfg->equiv_label = equiv != 0;
    cfg->use_val_for_test = use_val != 0;
    cfg->background = bg != 0;
    cfg->ignore_corrupt = ignore != 0;
    cfg->test_given = qc_recipe_has_key(r, "database", "Test");
    if (!cfg->test_given)
        cfg->test = QC_MAX(0.0, 1.0 - cfg->learn - cfg->validation);
    if (cfg->learn + cfg->validation + cfg->test > 1.0 + 1e-9) {
        qc_log_error("%s: [database] Learn + Validation + Test must be at most 1", cfg->where);
        return QC_ERR_RECIPE;
    }
    if (ilsvrc) {
        if (label_path) {
            cfg->label_path = qc_strdup(label_path);
        } else if (cfg->data_path) {
            size_t n = strlen(cfg->data_path) + 16;
            if ((cfg->label_path = qc_malloc(n)))
                snprintf(cfg->label_path, n, "%s/synsets.txt", cfg->data_path);
        }
        if ((label_path || cfg->data_path) && !cfg->label_path)
            return QC_ERR_NOMEM;
    }
    /* ValidExtensions: names separated by spaces or commas, lowercased */
    if (!exts) {
        for (int i = 0; i < QC_IMAGE_N_DEFAULT_EXTS; i++)
            cfg->exts[i] = qc_image_default_exts[i];
        cfg->n_exts = QC_IMAGE_N_DEFAULT_EXTS;
        return QC_OK;
    }
    size_t len = strlen(exts);
    if (len >= sizeof(cfg->ext_buf)) {
        qc_log_error("%s: [database] ValidExtensions is too long",
                     qc_recipe_where(r, "database", "ValidExtensions", where, sizeof(where)));
        return QC_ERR_RECIPE;
    }
    for (size_t i = 0; i <= len; i++)
        cfg->ext_buf[i] = (char)tolower((unsigned char)exts[i]);
    for (char *save = NULL, *t = strtok_r(cfg->ext_buf, " ,\t", &save); t;
         t = strtok_r(NULL, " ,\t", &save)) {
        if (cfg->n_exts == MAX_EXTS) {
            qc_log_error("%s: [database] ValidExtensions: at most %d extensions",
                         qc_recipe_where(r, "database", "ValidExtensions", where, sizeof(where)),
                         MAX_EXTS);
            return QC_ERR_RECIPE;
        }
        cfg->exts[cfg->n_exts++] = t[0] == '.' ? t + 1 : t;
    }
    if (cfg->n_exts == 0) {
        qc_log_error("%s: [database] ValidExtensions is empty",
                     qc_recipe_where(r, "database", "ValidExtensions", where, sizeof(where)));
        return QC_ERR_RECIPE;
    }
    return QC_OK;
}

static enum qc_status read_database(const struct qc_recipe *r, struct qc_data_cfg *cfg)
{
    const char *type = NULL, *path = NULL;
    enum qc_status st;
    int64_t rp = 0, seed = 1;
    if (!qc_recipe_has_section(r, "database"))
        return QC_OK;
    qc_recipe_where(r, "database", "Type", cfg->where, sizeof(cfg->where));
    qc_recipe_str(r, "database", "Type", NULL, &type);
    if (!type) {
        qc_log_error("%s: [database]: missing Type (" DB_TYPES ")", cfg->where);
        return QC_ERR_RECIPE;
    }
    const char *subdir = NULL;
    if (strcmp(type, "MNIST_IDX_Database") == 0) {
        cfg->db = DB_MNIST;
        cfg->src_c = 1;
        cfg->src_h = cfg->src_w = 28;
        subdir = "mnist";
    } else if (strcmp(type, "CIFAR10_Database") == 0) {
        cfg->db = DB_CIFAR10;
        cfg->src_c = 3;
        cfg->src_h = cfg->src_w = 32;
        subdir = "cifar-10-batches-bin";
    } else if (strcmp(type, "CIFAR100_Database") == 0) {
        cfg->db = DB_CIFAR100;
        cfg->src_c = 3;
        cfg->src_h = cfg->src_w = 32;
        subdir = "cifar-100-binary";
    } else if (strcmp(type, "Synthetic") == 0) {
        cfg->db = DB_SYNTH;
    } else if (strcmp(type, "DIR_Database") == 0) {
        cfg->db = DB_DIR;
    } else if (strcmp(type, "ILSVRC2012_Database") == 0) {
        cfg->db = DB_ILSVRC;
        subdir = "ILSVRC2012";
    } else {
        qc_log_error("%s: [database] Type=%s: expected one of " DB_TYPES, cfg->where, type);
        return QC_ERR_RECIPE;
    }
    if ((st = read_synthetic(r, cfg)) != QC_OK)
        return st;
    qc_recipe_str(r, "database", "DataPath", NULL, &path);
    const char *root = subdir ? getenv("N2D2_DATA") : NULL;
    if (cfg->db == DB_SYNTH)
        path = NULL;            /* generated: no files */
    if (path) {
        cfg->data_path = qc_strdup(path);
    } else if (root) {
        size_t n = strlen(root) + strlen(subdir) + 2;
        cfg->data_path = qc_malloc(n);
        if (cfg->data_path)
            snprintf(cfg->data_path, n, "%s/%s", root, subdir);
    }
    if ((path || root) && !cfg->data_path)
        return QC_ERR_NOMEM;
    if ((st = qc_recipe_float(r, "database", "Learn", -1.0, &cfg->learn)) != QC_OK ||
        (st = qc_recipe_float(r, "database", "Validation", 0.0, &cfg->validation)) != QC_OK ||
        (st = qc_recipe_float(r, "database", "Test", 1.0, &cfg->test)) != QC_OK ||
        (st = qc_recipe_int(r, "database", "RandomPartitioning", 0, &rp)) != QC_OK ||
        (st = qc_recipe_int(r, "", "Seed", 1, &seed)) != QC_OK)
        return st;
    if (cfg->validation < 0 || cfg->validation > 1 || cfg->test < 0 || cfg->test > 1 ||
        cfg->learn > 1 || (cfg->learn >= 0 && cfg->learn + cfg->validation > 1.0 + 1e-9)) {
        qc_log_error("%s: [database] Learn, Validation and Test must be fractions in [0,1] "
                     "with Learn + Validation <= 1", cfg->where);
        return QC_ERR_RECIPE;
    }
    cfg->random_partitioning = rp != 0;
    cfg->seed = (uint64_t)seed;
    return read_image_db(r, cfg);
}

static enum qc_status read_geometry(const struct qc_recipe *r, struct qc_data_cfg *cfg,
                                    const char **sp, int64_t *sx, int64_t *sy, int64_t *nc)
{
    enum qc_status st;
    *sp = qc_recipe_has_section(r, "sp") ? "sp" : "env";
    if ((st = qc_recipe_int(r, *sp, "SizeX", 0, sx)) != QC_OK ||
        (st = qc_recipe_int(r, *sp, "SizeY", 0, sy)) != QC_OK ||
        (st = qc_recipe_int(r, *sp, "NbChannels", 0, nc)) != QC_OK ||
        (st = qc_recipe_int(r, *sp, "BatchSize", DEFAULT_BATCH, &cfg->batch)) != QC_OK)
        return st;
    if (*sx < 0 || *sy < 0 || *nc < 0 || *sx > 65536 || *sy > 65536 || *nc > 4096 ||
        cfg->batch < 1) {
        char where[192];
        qc_log_error("%s: [%s] SizeX, SizeY, NbChannels and BatchSize must be positive",
                     qc_recipe_where(r, *sp, "SizeX", where, sizeof(where)), *sp);
        return QC_ERR_RECIPE;
    }
    if (cfg->db == DB_NONE || cfg->db == DB_SYNTH) {
        /* without [database] (images supplied by the caller) or with generated
         * images, [sp] gives the geometry of the stored images; the
         * transformations map it on */
        if (*sx == 0 || *sy == 0) {
            if (cfg->db == DB_SYNTH)
                qc_log_error("%s: [database] Type=Synthetic: [%s] must give SizeX and SizeY "
                             "(the generated image size)", cfg->where, *sp);
            else
                qc_log_error("%s: no [database] section: [%s] must give SizeX and SizeY",
                             qc_recipe_path(r), *sp);
            return QC_ERR_RECIPE;
        }
        cfg->src_c = *nc ? (int)*nc : cfg->db == DB_SYNTH ? 3 : 1;
        cfg->src_h = (int)*sy;
        cfg->src_w = (int)*sx;
    }
    if (cfg->db == DB_DIR || cfg->db == DB_ILSVRC) {
        /* image files of any size: the chain is checked at build time for
         * SizeX x SizeY images and per image when it is decoded */
        if (*sx == 0 || *sy == 0) {
            qc_log_error("%s: [database] image folders: [%s] must give SizeX and SizeY", cfg->where,
                         *sp);
            return QC_ERR_RECIPE;
        }
        cfg->src_h = (int)*sy;
        cfg->src_w = (int)*sx;
    }
    return QC_OK;
}

static enum qc_status read_transforms(const struct qc_recipe *r, struct qc_data_cfg *cfg)
{
    enum qc_status st = QC_OK;
    int ns = qc_recipe_n_sections(r), n = 0;
    struct tf_ref *refs = qc_calloc((size_t)QC_MAX(ns, 1), sizeof(*refs));
    if (!refs)
        return QC_ERR_NOMEM;
    for (int i = 0; i < ns; i++) {
        if (tf_section(qc_recipe_section_name(r, i), &refs[n])) {
            refs[n].order = i;
            n++;
        }
    }
    qsort(refs, (size_t)n, sizeof(*refs), cmp_tf);
    if (n > 0) {
        cfg->tf = qc_calloc((size_t)n, sizeof(*cfg->tf));
        if (!cfg->tf) {
            st = QC_ERR_NOMEM;
            goto out;
        }
    }
    for (int i = 0; i < n; i++) {
        st = qc_transform_from_recipe(r, refs[i].name, &cfg->tf[i]);
        if (st != QC_OK)
            goto out;
        cfg->n_tf++;
    }
out:
    qc_free(refs);
    return st;
}

/* Image folders: the channels images are converted to when decoded: 3
 * when a ColorSpaceTransformation follows (it expects RGB), else
 * NbChannels (1 or 3; 3 when not given). */
static enum qc_status image_channels(struct qc_data_cfg *cfg, int64_t nc)
{
    if (cfg->db != DB_DIR && cfg->db != DB_ILSVRC)
        return QC_OK;
    cfg->src_c = nc ? (int)nc : 3;
    for (int i = 0; i < cfg->n_tf; i++)
        if (cfg->tf[i].kind == QC_TF_COLOR_SPACE)
            cfg->src_c = 3;
    if (cfg->src_c != 1 && cfg->src_c != 3) {
        qc_log_error("%s: image folders give 1 or 3 channels, not NbChannels=%d", cfg->where,
                     cfg->src_c);
        return QC_ERR_RECIPE;
    }
    return QC_OK;
}

enum qc_status qc_data_cfg_from_recipe(const struct qc_recipe *r, struct qc_data_cfg **out)
{
    enum qc_status st;
    const char *sp;
    int64_t sx, sy, nc;
    int lc, lh, lw, tc, th, tw;
    char where[192];
    struct qc_data_cfg *cfg = qc_calloc(1, sizeof(*cfg));
    *out = NULL;
    if (!cfg)
        return QC_ERR_NOMEM;
    snprintf(cfg->where, sizeof(cfg->where), "%s", qc_recipe_path(r));
    if ((st = read_database(r, cfg)) != QC_OK ||
        (st = read_geometry(r, cfg, &sp, &sx, &sy, &nc)) != QC_OK ||
        (st = read_transforms(r, cfg)) != QC_OK || (st = image_channels(cfg, nc)) != QC_OK ||
        (st = chain_shape(cfg, QC_SPLIT_LEARN, &lc, &lh, &lw, &cfg->scratch_elems)) != QC_OK ||
        (st = chain_shape(cfg, QC_SPLIT_TEST, &tc, &th, &tw, &cfg->scratch_elems)) != QC_OK)
        goto out;
    qc_recipe_where(r, sp, "SizeX", where, sizeof(where));
    if (lc != tc || lh != th || lw != tw) {
        qc_log_error("%s: the transformations give %dx%dx%d (CxHxW) images for learning but "
                     "%dx%dx%d for the other splits", where, lc, lh, lw, tc, th, tw);
        st = QC_ERR_DATA;
        goto out;
    }
    if (cfg->db == DB_NONE || cfg->db == DB_SYNTH) {
        /* [sp] gave the stored image geometry, not the output */
        nc = sx = sy = 0;
    }
    if (nc && nc != lc) {
        qc_log_error("%s: [%s] NbChannels=%lld but the data has %d channel%s after the "
                     "transformations (use a ColorSpaceTransformation)",
                     qc_recipe_where(r, sp, "NbChannels", where, sizeof(where)), sp,
                     (long long)nc, lc, lc == 1 ? "" : "s");
        st = QC_ERR_DATA;
        goto out;
    }
    if ((sx && sx != lw) || (sy && sy != lh)) {
        qc_log_error("%s: [%s] SizeX=%lld SizeY=%lld but the data is %dx%d (WxH) after the "
                     "transformations (add a Rescale, PadCrop or SliceExtraction)",
                     where, sp, (long long)sx, (long long)sy, lw, lh);
        st = QC_ERR_DATA;
        goto out;
    }
    cfg->c = lc;
    cfg->h = lh;
    cfg->w = lw;
    for (int i = 0; i < 2; i++) {
        cfg->scratch[i] = qc_malloc(cfg->scratch_elems * sizeof(float));
        if (!cfg->scratch[i]) {
            st = QC_ERR_NOMEM;
            goto out;
        }
    }
    *out = cfg;
    cfg = NULL;
out:
    qc_data_cfg_free(cfg);
    return st;
}

void qc_data_cfg_free(struct qc_data_cfg *cfg)
{
    if (!cfg)
        return;
    qc_free(cfg->scratch[0]);
    qc_free(cfg->scratch[1]);
    qc_free(cfg->tf);
    qc_free(cfg->data_path);
    qc_free(cfg->label_path);
    qc_free(cfg);
}

void qc_data_cfg_geometry(const struct qc_data_cfg *cfg, int *c, int *h, int *w)
{
    *c = cfg->c;
    *h = cfg->h;
    *w = cfg->w;
}

int64_t qc_data_cfg_batch(const struct qc_data_cfg *cfg)
{
    return cfg->batch;
}

void qc_dataset_free(struct qc_dataset *ds)
{
    if (!ds)
        return;
    if (ds->files)
        for (int64_t i = 0; i < ds->n; i++)
            qc_free(ds->files[i]);
    qc_free(ds->files);
    qc_free(ds->pixels);
    qc_free(ds->labels);
    qc_free(ds);
}

/* ---- loading ------------------------------------------------------------------------------ */

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* buf = a/b + suffix; QC_ERR_DATA when it does not fit. */
static enum qc_status join(char *buf, size_t len, const char *a, const char *b,
                           const char *suffix)
{
    int n = snprintf(buf, len, "%s/%s%s", a, b, suffix);
    if (n < 0 || (size_t)n >= len) {
        qc_log_error("%s/%s%s: path too long", a, b, suffix);
        return QC_ERR_DATA;
    }
    return QC_OK;
}

/* dir/name, or dir/name.gz when only that exists (dir/name otherwise, so
 * the error names the plain file). */
static enum qc_status data_file(const char *dir, const char *name, char *buf, size_t len)
{
    enum qc_status st = join(buf, len, dir, name, ".gz");
    if (st != QC_OK)
        return st;
    if (exists(buf)) {
        char plain[4096];
        st = join(plain, sizeof(plain), dir, name, "");
        if (st != QC_OK || !exists(plain))
            return st;
    }
    return join(buf, len, dir, name, "");
}

static enum qc_status load_files(const struct qc_data_cfg *cfg, bool train,
                                 struct qc_dataset **out)
{
    enum qc_status st;
    char a[4096], b[4096], dir[4096];
    if (!cfg->data_path) {
        qc_log_error("%s: [database] DataPath is not set (nor N2D2_DATA)", cfg->where);
        return QC_ERR_DATA;
    }
    if (cfg->db == DB_MNIST) {
        if ((st = data_file(cfg->data_path, train ? "train-images-idx3-ubyte"
                                                  : "t10k-images-idx3-ubyte", a, sizeof(a))) !=
                QC_OK ||
            (st = data_file(cfg->data_path, train ? "train-labels-idx1-ubyte"
                                                  : "t10k-labels-idx1-ubyte", b, sizeof(b))) !=
                QC_OK)
            return st;
        return qc_idx_load(a, b, out);
    }
    const char *sub = cfg->db == DB_CIFAR10 ? "cifar-10-batches-bin" : "cifar-100-binary";
    const char *probe = cfg->db == DB_CIFAR10 ? "test_batch.bin" : "test.bin";
    if ((st = join(a, sizeof(a), cfg->data_path, probe, "")) != QC_OK ||
        (st = join(dir, sizeof(dir), cfg->data_path, sub, "")) != QC_OK ||
        (st = join(b, sizeof(b), dir, probe, "")) != QC_OK)
        return st;
    if (exists(a) || !exists(b))
        snprintf(dir, sizeof(dir), "%s", cfg->data_path);
    if (cfg->db == DB_CIFAR100) {
        if ((st = join(a, sizeof(a), dir, train ? "train.bin" : "test.bin", "")) != QC_OK)
            return st;
        const char *one[1] = { a };
        return qc_cifar_load(one, 1, 2, out);
    }
    static const char *const train_names[5] = {
        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
        "data_batch_5.bin",
    };
    char names[5][4096];
    const char *paths[5];
    int n = train ? 5 : 1;
    for (int i = 0; i < n; i++) {
        st = join(names[i], sizeof(names[i]), dir, train ? train_names[i] : "test_batch.bin",
                  "");
        if (st != QC_OK)
            return st;
        paths[i] = names[i];
    }
    return qc_cifar_load(paths, n, 1, out);
}

/* New dataset holding images sel[0..n-1] of ds. */
static enum qc_status subset(const struct qc_dataset *ds, const int64_t *sel, int64_t n,
                             struct qc_dataset **out)
{
    size_t img = (size_t)ds->c * ds->h * ds->w;
    struct qc_dataset *s = qc_calloc(1, sizeof(*s));
    *out = NULL;
    if (!s)
        return QC_ERR_NOMEM;
    *s = (struct qc_dataset){ .n = n, .c = ds->c, .h = ds->h, .w = ds->w,
                              .n_classes = ds->n_classes };
    if (n > 0) {
        s->pixels = qc_malloc((size_t)n * img);
        s->labels = qc_malloc((size_t)n * sizeof(*s->labels));
        if (!s->pixels || !s->labels) {
            qc_dataset_free(s);
            return QC_ERR_NOMEM;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        memcpy(s->pixels + (size_t)i * img, ds->pixels + (size_t)sel[i] * img, img);
        s->labels[i] = ds->labels[sel[i]];
    }
    *out = s;
    return QC_OK;
}

/* Images [first, first + count) of a split, given the images of the whole
 * file n: the last `validation` fraction is held out, `learn` (if >= 0) is
 * the fraction used for learning, `test` that of the test file. */
static void split_range(const struct qc_data_cfg *cfg, enum qc_split split, int64_t n,
                        int64_t *first, int64_t *count)
{
    *first = 0;
    if (split == QC_SPLIT_TEST) {
        *count = (int64_t)floor(cfg->test * (double)n);
        return;
    }
    int64_t n_val = (int64_t)floor(cfg->validation * (double)n);
    int64_t n_learn = cfg->learn >= 0 ? (int64_t)floor(cfg->learn * (double)n) : n - n_val;
    n_learn = QC_MIN(n_learn, n - n_val);
    *first = split == QC_SPLIT_LEARN ? 0 : n - n_val;
    *count = split == QC_SPLIT_LEARN ? n_learn : n_val;
}

/* Seeds stream `k` of the synthetic generator: bank 0, learn labels 1, test labels 2. */
static void synth_rng(struct qc_rng *rng, uint64_t seed, uint64_t k)
{
    qc_rng_seed(rng, seed * 0x9e3779b97f4a7c15ULL + k * 0xd1b54a32d192ed03ULL + 0x5eed);
}

/* A synthetic split (see the header comment). */
static enum qc_status synth_load(const struct qc_data_cfg *cfg, enum qc_split split,
                                 struct qc_dataset **out)
{
    int64_t n_file = split == QC_SPLIT_TEST ? cfg->syn_test : cfg->syn_learn, first, count;
    size_t img = (size_t)cfg->src_c * cfg->src_h * cfg->src_w;
    struct qc_rng rng;
    struct qc_dataset *ds = qc_calloc(1, sizeof(*ds));
    *out = NULL;
    if (!ds)
        return QC_ERR_NOMEM;
    split_range(cfg, split, n_file, &first, &count);
    *ds = (struct qc_dataset){ .n = count, .c = cfg->src_c, .h = cfg->src_h, .w = cfg->src_w,
                               .n_classes = (int)cfg->syn_classes, .n_bank = SYNTH_BANK,
                               .bank_first = first % SYNTH_BANK,
                               .label_step = (float)SYNTH_SPAN / (float)cfg->syn_classes };
    ds->pixels = qc_malloc(SYNTH_BANK * img);
    ds->labels = qc_malloc((size_t)QC_MAX(count, 1) * sizeof(*ds->labels));
    if (!ds->pixels || !ds->labels) {
        qc_dataset_free(ds);
        return QC_ERR_NOMEM;
    }
    /* bank: 8 bytes per draw, each byte b mapped to floor(b * 192 / 256) in [0, 192) */
    synth_rng(&rng, cfg->seed, 0);
    for (size_t i = 0; i < SYNTH_BANK * img; i += 8) {
        uint64_t v = qc_rng_next(&rng);
        for (size_t k = 0; k < 8 && i + k < SYNTH_BANK * img; k++, v >>= 8)
            ds->pixels[i + k] = (uint8_t)(((v & 0xff) * SYNTH_PEAK) >> 8);
    }
    /* labels of the whole file, so a split is the same images as in the file:
     * label = floor(u * classes), u the top 32 bits of a draw over 2^32 */
    synth_rng(&rng, cfg->seed, split == QC_SPLIT_TEST ? 2 : 1);
    for (int64_t i = 0; i < first + count; i++) {
        uint64_t u = qc_rng_next(&rng) >> 32;
        if (i >= first)
            ds->labels[i - first] = (int32_t)((u * (uint64_t)cfg->syn_classes) >> 32);
    }
    *out = ds;
    return QC_OK;
}

/* ---- image folders ------------------------------------------------------------------------- */

static void shuffle(int64_t *v, int64_t n, struct qc_rng *rng)
{
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)(qc_rng_next(rng) % (uint64_t)(i + 1));
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* N2D2's Utils::round HalfUp and HalfDown */
static int64_t round_half_up(double x)
{
    return (int64_t)floor(x + 0.5);
}

static int64_t round_half_down(double x)
{
    return (int64_t)ceil(x - 0.5);
}

/* DIR_Database: N2D2's partitionStimuliPerLabel(Learn, Validation, Test,
 * EquivLabelPartitioning) then partitionStimuli(0, 0, 1): per class (in
 * class order) the first nbLearn images learn, the next nbValidation
 * validate, the next nbTest test; images left over (classes larger than the
 * smallest, with EquivLabelPartitioning) test too, in listing order.  With
 * RandomPartitioning each class's images are shuffled first.  sel gets the
 * split's images, *n_sel their number. */
static enum qc_status dir_partition(const struct qc_data_cfg *cfg, const struct qc_image_list *l,
                                    enum qc_split split, int64_t *sel, int64_t *n_sel)
{
    int64_t *order = qc_malloc((size_t)QC_MAX(l->n, 1) * sizeof(*order));
    int64_t *start = qc_calloc((size_t)l->n_classes + 1, sizeof(*start));
    bool *used = qc_calloc((size_t)QC_MAX(l->n, 1), sizeof(*used));
    if (!order || !start || !used) {
        qc_free(order);
        qc_free(start);
        qc_free(used);
        return QC_ERR_NOMEM;
    }
    /* order: the images grouped by class, listing order within a class */
    for (int64_t i = 0; i < l->n; i++)
        start[l->labels[i] + 1]++;
    int64_t min_size = l->n;
    for (int k = 0; k < l->n_classes; k++) {
        min_size = QC_MIN(min_size, start[k + 1]);
        start[k + 1] += start[k];
    }
    {
        int64_t *fill = qc_malloc((size_t)l->n_classes * sizeof(*fill));
        if (!fill) {
            qc_free(order);
            qc_free(start);
            qc_free(used);
            return QC_ERR_NOMEM;
        }
        memcpy(fill, start, (size_t)l->n_classes * sizeof(*fill));
        for (int64_t i = 0; i < l->n; i++)
            order[fill[l->labels[i]]++] = i;
        qc_free(fill);
    }
    struct qc_rng rng;
    qc_rng_seed(&rng, cfg->seed);
    double learn = QC_MAX(cfg->learn, 0.0), val = cfg->validation, test = cfg->test;
    *n_sel = 0;
    for (int k = 0; k < l->n_classes; k++) {
        int64_t size = start[k + 1] - start[k], *v = order + start[k];
        if (cfg->random_partitioning)
            shuffle(v, size, &rng);
        int64_t nb = cfg->equiv_label ? min_size : size;
        int64_t n_learn = round_half_up((double)nb * learn);
        int64_t n_vt = QC_MIN(round_half_down((double)nb * (val + test)), nb - n_learn);
        double frac_val = val > 0 ? val / (val + test) : 0.0;
        int64_t n_val = round_half_up((double)n_vt * frac_val);
        int64_t n_test = QC_MIN(round_half_down((double)n_vt * (1.0 - frac_val)),
                                nb - n_learn - n_val);
        int64_t from = split == QC_SPLIT_LEARN        ? 0
                       : split == QC_SPLIT_VALIDATION ? n_learn
                                                      : n_learn + n_val;
        int64_t cnt = split == QC_SPLIT_LEARN        ? n_learn
                      : split == QC_SPLIT_VALIDATION ? n_val
                                                     : n_test;
        for (int64_t i = 0; i < n_learn + n_val + n_test; i++)
            used[v[i]] = true;
        for (int64_t i = from; i < from + cnt; i++)
            sel[(*n_sel)++] = v[i];
    }
    if (split == QC_SPLIT_TEST)
        for (int64_t i = 0; i < l->n; i++)
            if (!used[i])
                sel[(*n_sel)++] = i;
    qc_free(order);
    qc_free(start);
    qc_free(used);
    return QC_OK;
}

/* ILSVRC2012_Database: N2D2's partitionStimuli(Learn, 0, 1 - Learn) of the
 * n_train training images (the first nbLearn learn, the others test;
 * shuffled first with RandomPartitioning), the val/ images validate, and
 * test too with UseValidationForTest. */
static void ilsvrc_partition(const struct qc_data_cfg *cfg, int64_t n_train, int64_t n_all,
                             enum qc_split split, int64_t *sel, int64_t *n_sel)
{
    double learn = QC_MAX(cfg->learn, 0.0);
    int64_t n_learn = QC_MIN(round_half_up((double)n_train * learn), n_train);
    int64_t n_test = QC_MIN(round_half_down((double)n_train * (1.0 - learn)), n_train - n_learn);
    for (int64_t i = 0; i < n_train; i++)
        sel[i] = i;
    if (cfg->random_partitioning) {
        struct qc_rng rng;
        qc_rng_seed(&rng, cfg->seed);
        shuffle(sel, n_train, &rng);
    }
    if (split == QC_SPLIT_LEARN) {
        *n_sel = n_learn;
        return;
    }
    *n_sel = 0;
    if (split == QC_SPLIT_TEST) {
        memmove(sel, sel + n_learn, (size_t)n_test * sizeof(*sel));
        *n_sel = n_test;
    }
    if (split == QC_SPLIT_VALIDATION || cfg->use_val_for_test)
        for (int64_t i = n_train; i < n_all; i++)
            sel[(*n_sel)++] = i;
}

static const char *split_name(enum qc_split split)
{
    return split == QC_SPLIT_LEARN ? "learn" : split == QC_SPLIT_VALIDATION ? "validation" : "test";
}

/* A split of an image folder: file names and labels (see data.h). */
static enum qc_status image_load(const struct qc_data_cfg *cfg, enum qc_split split,
                                 struct qc_dataset **out)
{
    enum qc_status st;
    struct qc_image_list l = { .rep = cfg->rep, .what = cfg->data_path };
    struct qc_dataset *ds = NULL;
    int64_t *sel = NULL, n_sel = 0, n_train = 0;
    char a[4096], b[4096];
    if (!cfg->data_path) {
        qc_log_error("%s: [database] DataPath is not set (nor N2D2_DATA)", cfg->where);
        return QC_ERR_DATA;
    }
    if (cfg->db == DB_DIR) {
        st = qc_dir_list(cfg->data_path, (int)cfg->depth, (int)cfg->label_depth, cfg->exts,
                         cfg->n_exts, &l);
    } else {
        if ((st = join(a, sizeof(a), cfg->data_path, "train", "")) != QC_OK ||
            (st = qc_ilsvrc_list_train(a, cfg->label_path, cfg->background, cfg->exts, cfg->n_exts,
                                       &l)) != QC_OK)
            goto out;
        n_train = l.n;
        if ((st = join(a, sizeof(a), cfg->data_path, "val", "")) != QC_OK ||
            (st = join(b, sizeof(b), cfg->data_path, "val.txt", "")) != QC_OK)
            goto out;
        if (split != QC_SPLIT_LEARN)
            st = qc_ilsvrc_list_val(a, b, cfg->background, &l);
    }
    if (cfg->rep) {
        /* the listing's last event (a terminal clears its line) */
        struct qc_event ev = { .kind = QC_EVENT_INDEX,
                               .phase = QC_PHASE_SETUP,
                               .what = cfg->data_path,
                               .done = l.n,
                               .total = l.n,
                               .aborted = st != QC_OK };
        qc_emit(cfg->rep, &ev);
    }
    if (st != QC_OK)
        goto out;
    sel = qc_malloc((size_t)QC_MAX(l.n, 1) * sizeof(*sel));
    ds = qc_calloc(1, sizeof(*ds));
    if (!sel || !ds) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    if (cfg->db == DB_DIR)
        st = dir_partition(cfg, &l, split, sel, &n_sel);
    else
        ilsvrc_partition(cfg, n_train, l.n, split, sel, &n_sel);
    if (st != QC_OK)
        goto out;
    *ds = (struct qc_dataset){
        .n = 0, .c = cfg->src_c, .h = cfg->src_h, .w = cfg->src_w, .n_classes = l.n_classes
    };
    ds->files = qc_calloc((size_t)QC_MAX(n_sel, 1), sizeof(*ds->files));
    ds->labels = qc_malloc((size_t)QC_MAX(n_sel, 1) * sizeof(*ds->labels));
    if (!ds->files || !ds->labels) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    int64_t skipped = 0;
    for (int64_t i = 0; i < n_sel; i++) {
        int64_t k = sel[i];
        if (cfg->ignore_corrupt) {
            /* IgnoreCorrupt=1: every image of the split is decoded once now */
            struct qc_image img;
            enum qc_status dst = qc_image_decode(l.paths[k], true, &img);
            qc_image_free(&img);
            if (dst == QC_ERR_NOMEM) {
                st = dst;
                goto out;
            }
            if (dst != QC_OK) {
                skipped++;
                continue;
            }
        }
        ds->files[ds->n] = l.paths[k]; /* moved */
        l.paths[k] = NULL;
        ds->labels[ds->n++] = l.labels[k];
    }
    if (skipped)
        qc_log_warn("%s: %lld of %lld images of the %s split unreadable: skipped "
                    "(IgnoreCorrupt=1)",
                    cfg->data_path, (long long)skipped, (long long)n_sel, split_name(split));
    *out = ds;
    ds = NULL;
out:
    qc_dataset_free(ds);
    qc_free(sel);
    qc_image_list_free(&l);
    return st;
}

enum qc_status qc_data_load(const struct qc_data_cfg *cfg, enum qc_split split,
                            struct qc_dataset **out)
{
    enum qc_status st;
    struct qc_dataset *all = NULL;
    int64_t *perm = NULL;
    *out = NULL;
    if (cfg->db == DB_NONE) {
        qc_log_error("%s: no [database] section: no data to load", cfg->where);
        return QC_ERR_DATA;
    }
    if (cfg->db == DB_SYNTH)
        return synth_load(cfg, split, out);
    if (cfg->db == DB_DIR || cfg->db == DB_ILSVRC)
        return image_load(cfg, split, out);
    st = load_files(cfg, split != QC_SPLIT_TEST, &all);
    if (st != QC_OK)
        goto out;
    if (cfg->db == DB_MNIST)
        all->n_classes = QC_MAX(all->n_classes, 10);
    if (all->c != cfg->src_c || all->h != cfg->src_h || all->w != cfg->src_w) {
        qc_log_error("%s: images are %dx%dx%d (CxHxW), expected %dx%dx%d", cfg->data_path,
                     all->c, all->h, all->w, cfg->src_c, cfg->src_h, cfg->src_w);
        st = QC_ERR_DATA;
        goto out;
    }
    int64_t n = all->n, first, count;
    split_range(cfg, split, n, &first, &count);
    perm = qc_malloc((size_t)QC_MAX(n, 1) * sizeof(*perm));
    if (!perm) {
        st = QC_ERR_NOMEM;
        goto out;
    }
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    if (cfg->random_partitioning && split != QC_SPLIT_TEST) {
        struct qc_rng rng;
        qc_rng_seed(&rng, cfg->seed);
        for (int64_t i = n - 1; i > 0; i--) {   /* Fisher-Yates */
            int64_t j = (int64_t)(qc_rng_next(&rng) % (uint64_t)(i + 1));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    }
    if (first == 0 && count == n && !(cfg->random_partitioning && split != QC_SPLIT_TEST)) {
        *out = all;
        all = NULL;
    } else {
        st = subset(all, perm + first, count, out);
    }
out:
    qc_free(perm);
    qc_dataset_free(all);
    return st;
}

/* ---- batches ------------------------------------------------------------------------------ */

/* Image folders: decodes ds->files[k] and runs the transformations for
 * split into out (the network's image, CHW or HWC).  The one function a
 * decoding thread calls per image: it uses no cfg scratch (it allocates its
 * own planes, sized for this image).  quiet: no error line (a decoding
 * thread's failure is reported by the thread that takes the batch). */
static enum qc_status image_one(const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                                enum qc_split split, int64_t k, struct qc_rng *rng, bool quiet,
                                float *out)
{
    struct qc_image img;
    enum qc_status st = qc_image_decode_say(
        ds->files[k], quiet ? QC_IMAGE_SAY_NOTHING : QC_IMAGE_SAY_ERROR, &img);
    float *buf[2] = { NULL, NULL };
    if (st != QC_OK)
        return st;
    /* the chain's shapes for this image's size */
    int c = ds->c, h = img.h, w = img.w;
    size_t max_elems = (size_t)c * h * w;
    for (int t = 0; t < cfg->n_tf && st == QC_OK; t++) {
        if (!tf_applies(&cfg->tf[t], split))
            continue;
        st = quiet ? qc_transform_shape_quiet(&cfg->tf[t], c, h, w, &c, &h, &w)
                   : qc_transform_shape(&cfg->tf[t], c, h, w, &c, &h, &w);
        max_elems = QC_MAX(max_elems, (size_t)c * h * w);
    }
    if (st != QC_OK) {
        if (!quiet)
            qc_log_error("%s: the %dx%d (WxH) image does not fit the transformations", ds->files[k],
                         img.w, img.h);
        goto out;
    }
    if (c != cfg->c || h != cfg->h || w != cfg->w) {
        if (!quiet)
            qc_log_error("%s: the %dx%d (WxH) image gives %dx%dx%d (CxHxW) after the "
                         "transformations, not the %dx%dx%d of [sp] (add a Rescale, PadCrop or "
                         "SliceExtraction)",
                         ds->files[k], img.w, img.h, c, h, w, cfg->c, cfg->h, cfg->w);
        st = QC_ERR_DATA;
        goto out;
    }
    for (int i = 0; i < 2; i++)
        if (!(buf[i] = qc_malloc(max_elems * sizeof(float)))) {
            st = QC_ERR_NOMEM;
            goto out;
        }
    float *cur = buf[0], *other = buf[1];
    c = ds->c;
    h = img.h;
    w = img.w;
    qc_image_to_chw(&img, c, cur);
    for (int t = 0; t < cfg->n_tf; t++) {
        const struct qc_transform *tf = &cfg->tf[t];
        int oc, oh, ow;
        if (!tf_applies(tf, split))
            continue;
        qc_transform_shape_quiet(tf, c, h, w, &oc, &oh, &ow);
        if ((st = qc_transform_apply(tf, cur, c, h, w, other, rng)) != QC_OK)
            goto out;
        float *t2 = cur;
        cur = other;
        other = t2;
        c = oc;
        h = oh;
        w = ow;
    }
    size_t plane = (size_t)h * w;
    if (cfg->channels_last) {
        for (int ch = 0; ch < c; ch++)
            for (size_t i = 0; i < plane; i++)
                out[i * (size_t)c + (size_t)ch] = cur[(size_t)ch * plane + i];
    } else {
        memcpy(out, cur, (size_t)c * plane * sizeof(float));
    }
out:
    qc_free(buf[0]);
    qc_free(buf[1]);
    qc_image_free(&img);
    return st;
}

/* splitmix64's finalizer: a bijective mix of 64 bits. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The generator of image k's random transformations: seeded from the
 * batch seed (the run's seed and epoch, see data.h) and k alone. */
static void image_rng(struct qc_rng *rng, uint64_t seed, int64_t k)
{
    qc_rng_seed(rng, mix64(seed ^ mix64((uint64_t)k + 0x632be59bd9b4e019ULL)));
}

enum qc_status qc_data_image(const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                             enum qc_split split, int64_t k, const uint64_t *seed, bool quiet,
                             float *out)
{
    struct qc_rng rng;
    if (!ds->files || k < 0 || k >= ds->n)
        return QC_ERR_INVAL;
    for (int i = 0; !seed && i < cfg->n_tf; i++)
        if (tf_applies(&cfg->tf[i], split) && qc_transform_is_random(&cfg->tf[i]))
            return QC_ERR_INVAL;
    if (seed)
        image_rng(&rng, *seed, k);
    return image_one(cfg, ds, split, k, seed ? &rng : NULL, quiet, out);
}

enum qc_status qc_data_batch(const struct qc_data_cfg *cfg, const struct qc_dataset *ds,
                             enum qc_split split, const int64_t *idx, int64_t n,
                             const uint64_t *seed, float *x, int32_t *labels)
{
    struct qc_rng rng_img, *rng = seed ? &rng_img : NULL;
    if (ds->c != cfg->src_c || ds->h != cfg->src_h || ds->w != cfg->src_w) {
        qc_log_error("%s: dataset images are %dx%dx%d (CxHxW), the recipe expects %dx%dx%d",
                     cfg->where, ds->c, ds->h, ds->w, cfg->src_c, cfg->src_h, cfg->src_w);
        return QC_ERR_DATA;
    }
    for (int i = 0; i < cfg->n_tf; i++) {
        if (!seed && tf_applies(&cfg->tf[i], split) && qc_transform_is_random(&cfg->tf[i])) {
            qc_log_error("%s: random transformation but no seed given", cfg->tf[i].where);
            return QC_ERR_INVAL;
        }
    }
    size_t img = (size_t)ds->c * ds->h * ds->w;
    size_t out_elems = (size_t)cfg->c * cfg->h * cfg->w;
    int last = -1;              /* the last transformation that applies */
    for (int t = 0; t < cfg->n_tf; t++)
        if (tf_applies(&cfg->tf[t], split))
            last = t;
    for (int64_t b = 0; b < n; b++) {
        if (idx[b] < 0 || idx[b] >= ds->n) {
            qc_log_error("qc_data_batch: image index %lld out of range [0, %lld)",
                         (long long)idx[b], (long long)ds->n);
            return QC_ERR_INVAL;
        }
        if (seed)
            image_rng(rng, *seed, idx[b]);
        if (ds->files) {
            enum qc_status st = image_one(cfg, ds, split, idx[b], rng, false,
                                          x + (size_t)b * out_elems);
            if (st != QC_OK)
                return st;
            if (labels)
                labels[b] = ds->labels[idx[b]];
            continue;
        }
        int64_t k = ds->n_bank ? (ds->bank_first + idx[b]) % ds->n_bank : idx[b];
        float off = ds->n_bank ? ds->label_step * (float)ds->labels[idx[b]] : 0.0f;
        const uint8_t *px = ds->pixels + (size_t)k * img;
        /* the last step (the pixel conversion when no transformation
         * applies) writes straight into x; the others ping-pong in scratch */
        float *out = x + (size_t)b * out_elems;
        /* channels last: the CHW result goes to scratch, then transposed */
        float *dst = cfg->channels_last ? NULL : out;
        float *cur = last < 0 && dst ? dst : cfg->scratch[0];
        float *other = cfg->scratch[1];
        int c = ds->c, h = ds->h, w = ds->w;
        for (size_t i = 0; i < img; i++)
            cur[i] = (float)px[i] + off;
        for (int t = 0; t <= last; t++) {
            const struct qc_transform *tf = &cfg->tf[t];
            int oc, oh, ow;
            if (!tf_applies(tf, split))
                continue;
            enum qc_status st = qc_transform_shape(tf, c, h, w, &oc, &oh, &ow);
            if (st != QC_OK)
                return st;
            float *to = t == last && dst ? dst : other;
            if ((st = qc_transform_apply(tf, cur, c, h, w, to, rng)) != QC_OK)
                return st;
            other = cur;
            cur = to;
            c = oc;
            h = oh;
            w = ow;
        }
        if (!dst) {
            size_t plane = (size_t)h * w;
            for (int ch = 0; ch < c; ch++)
                for (size_t i = 0; i < plane; i++)
                    out[i * (size_t)c + (size_t)ch] = cur[(size_t)ch * plane + i];
        }
        if (labels)
            labels[b] = ds->labels[idx[b]];
    }
    return QC_OK;
}

void qc_data_cfg_set_channels_last(struct qc_data_cfg *cfg, bool channels_last)
{
    cfg->channels_last = channels_last;
}

void qc_data_cfg_set_reporter(struct qc_data_cfg *cfg, const struct qc_reporter *rep)
{
    cfg->rep = rep;
}

int qc_data_cfg_decode_threads(const struct qc_data_cfg *cfg)
{
    return (int)cfg->decode_threads;
}

bool qc_data_cfg_channels_last(const struct qc_data_cfg *cfg)
{
    return cfg->channels_last;
}
