/*
 * schema.c - the schema of recipe keys: for each section class (global,
 * database, sp, onnx, transformation by Type, node) the keys it may write with
 * their value kind, enum values and numeric range; the node key families
 * (Solvers.*, WeightsFiller.* ...); N2D2's second spellings of keys and enum
 * values; the lookups the parser (recipe.c) uses, with a "did you mean"
 * suggestion for unknown keys; and the --recipe-keys listing.
 */
#include <config.h>

#include "schema.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "recipe.h"

#define NOLIM -1e300, 1e300

/* ---- the key tables ------------------------------------------------------------------------- */

static const struct key_spec global_keys[] = {
    { "Epochs", K_INT, NULL, 1, 1e300 },
    { "DefaultModel", K_STR, NULL, NOLIM }, /* Frame|Frame_CUDA, checked by audit.c */
    { "DataType", K_ENUM, "Float32", NOLIM },
    { "Seed", K_INT, NULL, 0, 1e300 },
    /* data-parallel jobs: synchronized BatchNorm (train/train.c) */
    { "SyncBatchNorm", K_BOOL, NULL, NOLIM },
    /* data-parallel jobs: KiB per gradient all-reduce bucket, 0: one after the backward */
    { "AllReduceBucketKB", K_INT, NULL, 0, 1e300 },
};

static const struct key_spec database_keys[] = {
    { "Type", K_ENUM,
      "MNIST_IDX_Database|CIFAR10_Database|CIFAR100_Database|DIR_Database|"
      "ILSVRC2012_Database|Synthetic",
      NOLIM },
    { "DataPath", K_STR, NULL, NOLIM },
    { "Learn", K_FLOAT, NULL, 0, 1 },
    { "Validation", K_FLOAT, NULL, 0, 1 },
    { "Test", K_FLOAT, NULL, 0, 1 },
    { "RandomPartitioning", K_BOOL, NULL, NOLIM },
    { "NbClasses", K_INT, NULL, 2, 1e300 }, /* Type=Synthetic */
    { "NbLearn", K_INT, NULL, 1, 1e300 },
    { "NbTest", K_INT, NULL, 1, 1e300 },
    /* DIR_Database and ILSVRC2012_Database */
    { "Depth", K_INT, NULL, -1, 1e300 },
    { "LabelDepth", K_INT, NULL, 0, 64 },
    { "PerLabelPartitioning", K_BOOL, NULL, NOLIM },
    { "EquivLabelPartitioning", K_BOOL, NULL, NOLIM },
    { "ValidExtensions", K_STR, NULL, NOLIM },
    { "IgnoreCorrupt", K_BOOL, NULL, NOLIM },
    { "DecodeThreads", K_INT, NULL, 0, 256 },
    { "LabelPath", K_STR, NULL, NOLIM },
    { "UseValidationForTest", K_BOOL, NULL, NOLIM },
    { "BackgroundClass", K_BOOL, NULL, NOLIM },
};

static const struct key_spec sp_keys[] = {
    { "SizeX", K_INT, NULL, 1, 1e300 },
    { "SizeY", K_INT, NULL, 1, 1e300 },
    { "NbChannels", K_INT, NULL, 1, 1e300 },
    { "BatchSize", K_INT, NULL, 1, 1e300 },
    { "CompositeLabel", K_STR, NULL, NOLIM },
};

static const struct key_spec onnx_keys[] = {
    { "Type", K_ENUM, "ONNX", NOLIM },
    { "File", K_STR, NULL, NOLIM },
    { "Input", K_STR, NULL, NOLIM },
    { "ONNX_init", K_BOOL, NULL, NOLIM },
    { "Ignore", K_STR, NULL, NOLIM },
    { "Transpose", K_BOOL, NULL, NOLIM },
};

/* [soft1] Type=Softmax Input=<node>: the loss on that node's logits. */
static const struct key_spec softmax_keys[] = {
    { "Type", K_ENUM, "Softmax", NOLIM },
    { "Input", K_STR, NULL, NOLIM },
    { "NbOutputs", K_INT, NULL, 1, 1e300 },
    { "WithLoss", K_BOOL, NULL, NOLIM },
};

/* [soft1.Target] (N2D2's TargetScore). */
static const struct key_spec target_keys[] = {
    { "Type", K_ENUM, "TargetScore", NOLIM },
    { "TargetValue", K_FLOAT, NULL, NOLIM },        /* the label's target        */
    { "DefaultValue", K_FLOAT, NULL, NOLIM },       /* the other classes' target */
    { "TopN", K_INT, NULL, 1, 1e300 },              /* N2D2's top-N score        */
    { "LabelsMapping", K_STR, NULL, NOLIM },        /* label -> output file      */
    { "CreateMissingLabels", K_BOOL, NULL, NOLIM }, /* with LabelsMapping        */
};

static const struct key_spec tf_common_keys[] = {
    { "Type", K_ENUM, TF_TYPES, NOLIM },
    { "ApplyTo", K_ENUM, "LearnOnly|ValidationOnly|TestOnly|NoLearn|NoValidation|NoTest|All",
      NOLIM },
};

#define TF_OPS "Plus|Minus|Multiplies|Divides"

/* Keys of each transformation type; a NULL name ends a list. */
static const struct key_spec tf_rescale_keys[] = {
    { "Width", K_INT, NULL, 1, 1e300 },
    { "Height", K_INT, NULL, 1, 1e300 },
    { "KeepAspectRatio", K_BOOL, NULL, NOLIM },
    { "ResizeToFit", K_BOOL, NULL, NOLIM },
    { "Interpolation", K_ENUM, "Linear|LinearAntialias|LinearAntialiasU8", NOLIM },
    { NULL, K_STR, NULL, NOLIM },
};
#define TF_BORDERS                                                                                 \
    "ConstantBorder|ReplicateBorder|ReflectBorder|WrapBorder|MinusOneReflectBorder|MeanBorder"
static const struct key_spec tf_padcrop_keys[] = {
    { "Width", K_INT, NULL, -65536, 65536 },
    { "Height", K_INT, NULL, -65536, 65536 },
    { "AdditiveWH", K_BOOL, NULL, NOLIM },
    { "BorderType", K_ENUM, TF_BORDERS, NOLIM },
    { "BorderValue", K_FLIST, NULL, NOLIM },
    { "CropRounding", K_ENUM, "Default|HalfEven", NOLIM },
    { NULL, K_STR, NULL, NOLIM },
};
static const struct key_spec tf_slice_keys[] = {
    { "Width", K_INT, NULL, 1, 1e300 },       { "Height", K_INT, NULL, 1, 1e300 },
    { "OffsetX", K_INT, NULL, 0, 1e300 },     { "OffsetY", K_INT, NULL, 0, 1e300 },
    { "RandomOffsetX", K_BOOL, NULL, NOLIM }, { "RandomOffsetY", K_BOOL, NULL, NOLIM },
    { "AllowPadding", K_BOOL, NULL, NOLIM },  { "BorderType", K_ENUM, TF_BORDERS, NOLIM },
    { "BorderValue", K_FLIST, NULL, NOLIM },  { NULL, K_STR, NULL, NOLIM },
};
static const struct key_spec tf_flip_keys[] = {
    { "HorizontalFlip", K_BOOL, NULL, NOLIM },
    { "VerticalFlip", K_BOOL, NULL, NOLIM },
    { "RandomHorizontalFlip", K_BOOL, NULL, NOLIM },
    { "RandomVerticalFlip", K_BOOL, NULL, NOLIM },
    { NULL, K_STR, NULL, NOLIM },
};
static const struct key_spec tf_affine_keys[] = {
    { "FirstOperator", K_ENUM, TF_OPS, NOLIM },  { "FirstValue", K_FLIST, NULL, NOLIM },
    { "SecondOperator", K_ENUM, TF_OPS, NOLIM }, { "SecondValue", K_FLIST, NULL, NOLIM },
    { "Truncate", K_BOOL, NULL, NOLIM },         { NULL, K_STR, NULL, NOLIM },
};
static const struct key_spec tf_rrc_keys[] = {
    { "Width", K_INT, NULL, 1, 1e300 },
    { "Height", K_INT, NULL, 1, 1e300 },
    { "ScaleMin", K_FLOAT, NULL, 1e-6, 1 },
    { "ScaleMax", K_FLOAT, NULL, 1e-6, 1 },
    { "RatioMin", K_FLOAT, NULL, 1e-6, 1e300 },
    { "RatioMax", K_FLOAT, NULL, 1e-6, 1e300 },
    { NULL, K_STR, NULL, NOLIM },
};
static const struct key_spec tf_color_keys[] = {
    { "ColorSpace", K_ENUM, "RGB|BGR|Gray", NOLIM },
    { NULL, K_STR, NULL, NOLIM },
};

/* Same order as in TF_TYPES. */
static const struct {
    const char            *type;
    const struct key_spec *keys;
} tf_types[] = {
    { "RescaleTransformation", tf_rescale_keys },
    { "PadCropTransformation", tf_padcrop_keys },
    { "SliceExtractionTransformation", tf_slice_keys },
    { "FlipTransformation", tf_flip_keys },
    { "RangeAffineTransformation", tf_affine_keys },
    { "RandomResizeCropTransformation", tf_rrc_keys },
    { "ColorSpaceTransformation", tf_color_keys },
};

static const struct key_spec node_keys[] = {
    { "QWeight", K_ENUM, "SAT|LSQ|none", NOLIM },
    { "QWeight.Range", K_INT, NULL, 1, 1e300 },
    { "QWeight.QuantMode", K_ENUM, "Default|Symmetric|Asymmetric|FullRange", NOLIM },
    { "QWeight.ApplyQuantization", K_BOOL, NULL, NOLIM },
    { "QWeight.ApplyScaling", K_BOOL, NULL, NOLIM },
    { "QWeight.StepSize", K_FLOAT, NULL, 0, 1e300 },
    { "QWeight.SetOptInitStepSize", K_BOOL, NULL, NOLIM },
    { "QWeight.Mode", K_ENUM, "Default|Integer", NOLIM },
    { "QWeight.PerChannel", K_BOOL, NULL, NOLIM },
    { "QAct", K_ENUM, "SAT|LSQ|none", NOLIM },
    { "QAct.Range", K_INT, NULL, 1, 1e300 },
    { "QAct.Alpha", K_FLOAT, NULL, 0, 1e300 },
    { "QAct.StepSize", K_FLOAT, NULL, 0, 1e300 },
    { "QAct.SetOptInitStepSize", K_BOOL, NULL, NOLIM },
    { "QAct.Signed", K_BOOL, NULL, NOLIM },
    { "QAct.ZeroPoint", K_ENUM, "0|Learned|Calibrated", NOLIM },
    { "NoBias", K_BOOL, NULL, NOLIM },
    { "ActivationFunction", K_ENUM, "Linear|Rectifier", NOLIM },
    { "ConfigSection", K_STR, NULL, NOLIM },
    { "QIn", K_ENUM, "SAT|LSQ|none", NOLIM },
    { "QIn.Range", K_INT, NULL, 1, 1e300 },
    { "QIn.Alpha", K_FLOAT, NULL, 0, 1e300 },
    { "QIn.StepSize", K_FLOAT, NULL, 0, 1e300 },
    { "QIn.SetOptInitStepSize", K_BOOL, NULL, NOLIM },
    { "QIn.Signed", K_BOOL, NULL, NOLIM },
    { "QIn.ZeroPoint", K_ENUM, "0|Learned|Calibrated", NOLIM },
};

/* Key families "Prefix" (type) and "Prefix.Sub". */
static const struct key_spec solver_sub_keys[] = {
    { "LearningRate", K_FLOAT, NULL, 0, 1e300 },
    { "Momentum", K_FLOAT, NULL, 0, 1 },
    { "Decay", K_FLOAT, NULL, 0, 1e300 },
    { "LearningRatePolicy", K_ENUM, "None|StepDecay|CosineDecay", NOLIM },
    { "LearningRateStepSize", K_INT, NULL, 1, 1e300 },
    { "LearningRateDecay", K_FLOAT, NULL, 0, 1e300 },
    { "MaxIterations", K_INT, NULL, 0, 1e300 },
    { "WarmUpDuration", K_INT, NULL, 0, 1e300 },
    { "IterationSize", K_INT, NULL, 1, 1e300 },
    { "Beta1", K_FLOAT, NULL, 0, 1 },
    { "Beta2", K_FLOAT, NULL, 0, 1 },
    { "Epsilon", K_FLOAT, NULL, 0, 1e300 },
    { "WarmUpLRFrac", K_FLOAT, NULL, 0, 1 },
    { NULL, K_STR, NULL, NOLIM },
};
static const struct key_spec filler_sub_keys[] = {
    { "VarianceNorm", K_ENUM, "FanIn|Average|FanOut", NOLIM },
    { "Distribution", K_ENUM, "Uniform|Normal", NOLIM },
    { "Scaling", K_FLOAT, NULL, NOLIM },
    { "Mean", K_FLOAT, NULL, NOLIM },
    { "MeanNorm", K_FLOAT, NULL, NOLIM },
    { "StdDev", K_FLOAT, NULL, 0, 1e300 },
    { "Min", K_FLOAT, NULL, NOLIM },
    { "Max", K_FLOAT, NULL, NOLIM },
    { "Value", K_FLOAT, NULL, NOLIM },
    { NULL, K_STR, NULL, NOLIM },
};

static const struct key_spec solver_type = { NULL, K_ENUM, "SGD|Adam", NOLIM };
static const struct key_spec filler_type = {
    NULL, K_ENUM, "XavierFiller|HeFiller|NormalFiller|UniformFiller|ConstantFiller", NOLIM
};

static const struct {
    const char            *prefix;
    const struct key_spec *type;     /* spec of the bare prefix, NULL: none */
    const struct key_spec *subs;
} node_families[] = {
    { "Solvers", &solver_type, solver_sub_keys },
    { "QWeightSolver", &solver_type, solver_sub_keys },
    { "QActSolver", &solver_type, solver_sub_keys },
    { "WeightsSolver", NULL, solver_sub_keys },
    { "BiasSolver", NULL, solver_sub_keys },
    { "ScaleSolver", NULL, solver_sub_keys },
    { "WeightsFiller", &filler_type, filler_sub_keys },
    { "BiasFiller", &filler_type, filler_sub_keys },
};

/* N2D2's second spellings of keys: whole keys, and prefixes (key == from or
 * key starts with from + "."). */
static const struct {
    const char *from, *to;
    bool        prefix;
} key_aliases[] = {
    { "QWeight.StepOptInitStepSize", "QWeight.SetOptInitStepSize", false },
    { "QAct.StepOptInitStepSize", "QAct.SetOptInitStepSize", false },
    { "QWeight.Solver", "QWeightSolver", true },
    { "QAct.Solver", "QActSolver", true },
};

/* Second spellings of enum values (besides a case-insensitive unique match). */
static const struct {
    const char *from, *to;
} value_aliases[] = {
    { "Rescale", "RescaleTransformation" },
    { "PadCrop", "PadCropTransformation" },
    { "SliceExtraction", "SliceExtractionTransformation" },
    { "Flip", "FlipTransformation" },
    { "RangeAffine", "RangeAffineTransformation" },
    { "RandomResizeCrop", "RandomResizeCropTransformation" },
    { "ColorSpace", "ColorSpaceTransformation" },
    { "MNIST_IDX", "MNIST_IDX_Database" },
    { "Grey", "Gray" },
};

/* ---- lookups -------------------------------------------------------------------------------- */

const char *qc_schema_canonical_key(const char *key, char *buf, size_t len)
{
    for (size_t i = 0; i < QC_ARRAY_SIZE(key_aliases); i++) {
        size_t fl = strlen(key_aliases[i].from);
        if (strcmp(key, key_aliases[i].from) == 0)
            return key_aliases[i].to;
        if (key_aliases[i].prefix && strncmp(key, key_aliases[i].from, fl) == 0 &&
            key[fl] == '.') {
            snprintf(buf, len, "%s%s", key_aliases[i].to, key + fl);
            return buf;
        }
    }
    return key;
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps). */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 1000;
    int d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int v = QC_MIN(d[i - 1][j] + 1, d[i][j - 1] + 1);
            v = QC_MIN(v, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                v = QC_MIN(v, d[i - 2][j - 2] + 1);
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

static void suggest_try(struct suggest *sg, const char *cand)
{
    int d = strcasecmp(sg->key, cand) == 0 ? 0 : edit_distance(sg->key, cand);
    int lim = (int)QC_MAX(strlen(sg->key), strlen(cand)) / 3;
    if (d <= QC_MAX(lim, 1) && d < sg->best) {
        sg->best = d;
        snprintf(sg->name, sizeof(sg->name), "%s", cand);
    }
}

static const struct key_spec *find_in(const struct key_spec *t, size_t n, const char *key,
                                      struct suggest *sg)
{
    for (size_t i = 0; i < n && t[i].name; i++) {
        if (strcmp(t[i].name, key) == 0)
            return &t[i];
        if (sg)
            suggest_try(sg, t[i].name);
    }
    return NULL;
}

#define LIST_END ((size_t)-1)

static const struct key_spec *find_tf_type_keys(const char *type)
{
    for (size_t i = 0; i < QC_ARRAY_SIZE(tf_types); i++)
        if (type && strcmp(type, tf_types[i].type) == 0)
            return tf_types[i].keys;
    return NULL;
}

/* The key families (Solvers.*, WeightsSolver.*, WeightsFiller.* ...). */
static const struct key_spec *find_family(const char *key, struct suggest *sg)
{
    const struct key_spec *k;
    for (size_t f = 0; f < QC_ARRAY_SIZE(node_families); f++) {
        const char *pre = node_families[f].prefix;
        size_t pl = strlen(pre);
        if (strcmp(key, pre) == 0 && node_families[f].type)
            return node_families[f].type;
        if (strncmp(key, pre, pl) == 0 && key[pl] == '.') {
            k = find_in(node_families[f].subs, LIST_END, key + pl + 1, NULL);
            if (k)
                return k;
        }
        if (sg) {
            char cand[128];
            if (node_families[f].type)
                suggest_try(sg, pre);
            for (const struct key_spec *s = node_families[f].subs; s->name; s++) {
                snprintf(cand, sizeof(cand), "%s.%s", pre, s->name);
                suggest_try(sg, cand);
            }
        }
    }
    return NULL;
}

const struct key_spec *qc_schema_find_spec(enum sec_class cls, const char *tf_type,
                                           const char *key, struct suggest *sg)
{
    const struct key_spec *k = NULL;
    switch (cls) {
    case SEC_GLOBAL:
        /* global defaults: Epochs ..., and solver keys that every node inherits */
        k = find_in(global_keys, QC_ARRAY_SIZE(global_keys), key, sg);
        return k ? k : find_family(key, sg);
    case SEC_DATABASE:
        return find_in(database_keys, QC_ARRAY_SIZE(database_keys), key, sg);
    case SEC_SP:
        return find_in(sp_keys, QC_ARRAY_SIZE(sp_keys), key, sg);
    case SEC_ONNX:
        return find_in(onnx_keys, QC_ARRAY_SIZE(onnx_keys), key, sg);
    case SEC_TRANSFORM: {
        k = find_in(tf_common_keys, QC_ARRAY_SIZE(tf_common_keys), key, sg);
        if (k)
            return k;
        const struct key_spec *tk = find_tf_type_keys(tf_type);
        if (tk)
            return find_in(tk, LIST_END, key, sg);
        for (size_t i = 0; i < QC_ARRAY_SIZE(tf_types); i++) {
            k = find_in(tf_types[i].keys, LIST_END, key, sg);
            if (k)
                return k;
        }
        return NULL;
    }
    case SEC_SOFTMAX:
        return find_in(softmax_keys, QC_ARRAY_SIZE(softmax_keys), key, sg);
    case SEC_TARGET:
        return find_in(target_keys, QC_ARRAY_SIZE(target_keys), key, sg);
    case SEC_NODE:
        break;
    }
    k = find_in(node_keys, QC_ARRAY_SIZE(node_keys), key, sg);
    if (k)
        return k;
    return find_family(key, sg);
}

static bool in_list(const char *list, const char *v, bool icase, char *canon, size_t len)
{
    const char *p = list;
    size_t vl = strlen(v);
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vl && (icase ? strncasecmp(p, v, n) : strncmp(p, v, n)) == 0) {
            if (canon && n < len) {
                memcpy(canon, p, n);
                canon[n] = '\0';
            }
            return true;
        }
        p = bar ? bar + 1 : p + n;
    }
    return false;
}

bool qc_schema_enum_canonical(const char *list, const char *v, char *canon, size_t len)
{
    if (in_list(list, v, false, canon, len))
        return true;
    for (size_t i = 0; i < QC_ARRAY_SIZE(value_aliases); i++)
        if (strcmp(v, value_aliases[i].from) == 0 &&
            in_list(list, value_aliases[i].to, false, canon, len))
            return true;
    return in_list(list, v, true, canon, len);
}

const char *qc_schema_tf_type(const char *value)
{
    const char *type = NULL;
    char canon[128];
    for (size_t i = 0; i < QC_ARRAY_SIZE(tf_types); i++)
        if (qc_schema_enum_canonical(TF_TYPES, value, canon, sizeof(canon)) &&
            strcmp(canon, tf_types[i].type) == 0)
            type = tf_types[i].type;
    return type;
}

/* One "[class] key" line per spec of a NULL-terminated or n-long list. */
static void print_specs(FILE *f, const char *cls, const char *prefix,
                        const struct key_spec *k, size_t n)
{
    for (size_t i = 0; i < n && k[i].name; i++)
        fprintf(f, "%s %s%s\n", cls, prefix, k[i].name);
}

void qc_recipe_print_keys(FILE *f)
{
    print_specs(f, "global", "", global_keys, QC_ARRAY_SIZE(global_keys));
    print_specs(f, "database", "", database_keys, QC_ARRAY_SIZE(database_keys));
    print_specs(f, "sp", "", sp_keys, QC_ARRAY_SIZE(sp_keys));
    print_specs(f, "onnx", "", onnx_keys, QC_ARRAY_SIZE(onnx_keys));
    print_specs(f, "softmax", "", softmax_keys, QC_ARRAY_SIZE(softmax_keys));
    print_specs(f, "target", "", target_keys, QC_ARRAY_SIZE(target_keys));
    print_specs(f, "transformation", "", tf_common_keys, QC_ARRAY_SIZE(tf_common_keys));
    for (size_t t = 0; t < QC_ARRAY_SIZE(tf_types); t++)
        print_specs(f, tf_types[t].type, "", tf_types[t].keys, (size_t)-1);
    print_specs(f, "node", "", node_keys, QC_ARRAY_SIZE(node_keys));
    for (size_t i = 0; i < QC_ARRAY_SIZE(node_families); i++) {
        char pre[64];
        if (node_families[i].type)
            fprintf(f, "node %s\n", node_families[i].prefix);
        snprintf(pre, sizeof(pre), "%s.", node_families[i].prefix);
        print_specs(f, "node", pre, node_families[i].subs, (size_t)-1);
    }
    for (size_t i = 0; i < QC_ARRAY_SIZE(key_aliases); i++)
        fprintf(f, "alias %s%s\n", key_aliases[i].from, key_aliases[i].prefix ? ".*" : "");
}
