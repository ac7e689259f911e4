/*
 * test_recipe.c - the INI recipe parser: syntax (sections, inheritance,
 * comments, continuation, BOM, references, ConfigSection), key and value
 * aliases, every load error with its exact file:line message, the schema's
 * did-you-mean, lenient mode and the typed getters.
 */
#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recipe/recipe.h"
#include "testutil.h"

/* Loads text as "t.ini", capturing stderr into err (NUL-terminated). */
static enum qc_status load_capture(const char *text, bool lenient, struct qc_recipe **r,
                                   char *err, size_t len)
{
    char path[256];
    qc_test_tmpfile(path, sizeof(path), "", 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    FILE *f = freopen(path, "w", stderr);
    ck_assert_ptr_nonnull(f);
    enum qc_status st = qc_recipe_load_string(text, "t.ini", lenient, r);
    fflush(stderr);
    ck_assert_int_ge(dup2(saved, 2), 0);
    close(saved);
    FILE *in = fopen(path, "r");
    ck_assert_ptr_nonnull(in);
    size_t n = fread(err, 1, len - 1, in);
    err[n] = '\0';
    fclose(in);
    unlink(path);
    return st;
}

/* Asserts that loading text fails with QC_ERR_RECIPE and that stderr
 * contains `msg`. */
static void expect_error(const char *text, const char *msg)
{
    struct qc_recipe *r = NULL;
    char err[2048];
    enum qc_status st = load_capture(text, false, &r, err, sizeof(err));
    ck_assert_int_eq(st, QC_ERR_RECIPE);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, msg) != NULL, "expected '%s' in '%s'", msg, err);
}

static struct qc_recipe *load_ok(const char *text)
{
    struct qc_recipe *r = NULL;
    char err[2048];
    enum qc_status st = load_capture(text, false, &r, err, sizeof(err));
    ck_assert_msg(st == QC_OK, "load failed: %s", err);
    ck_assert_str_eq(err, "");
    return r;
}

static void assert_str(const struct qc_recipe *r, const char *sec, const char *key,
                       const char *want)
{
    const char *v = NULL;
    ck_assert_int_eq(qc_recipe_str(r, sec, key, NULL, &v), QC_OK);
    ck_assert_msg(v != NULL, "[%s] %s missing", sec, key);
    ck_assert_str_eq(v, want);
}

START_TEST(test_syntax)
{
    static const char text[] =
        "\xEF\xBB\xBF; leading comment\r\n"
        "Epochs=3   # trailing\r\n"
        "DefaultModel = \"Frame;CPU\"\n"
        "\n"
        "[database]\n"
        "  Type = MNIST_IDX_Database ; comment\n"
        "DataPath=/data/with#hash\n"
        "# whole-line comment\n"
        "[conv1]\n"
        "QWeight=SAT\n"
        "QWeight.Range=\\\n"
        "15\n"
        "ActivationFunction=Linear\n";
    struct qc_recipe *r = load_ok(text);
    int64_t v;
    ck_assert_int_eq(qc_recipe_n_sections(r), 3);
    ck_assert_str_eq(qc_recipe_section_name(r, 0), "");
    ck_assert_str_eq(qc_recipe_section_name(r, 1), "database");
    ck_assert_str_eq(qc_recipe_section_name(r, 2), "conv1");
    ck_assert(qc_recipe_has_section(r, "conv1"));
    ck_assert(!qc_recipe_has_section(r, "conv2"));
    ck_assert_int_eq(qc_recipe_int(r, "", "Epochs", 0, &v), QC_OK);
    ck_assert_int_eq(v, 3);
    assert_str(r, "", "DefaultModel", "Frame;CPU");
    assert_str(r, "database", "Type", "MNIST_IDX_Database");
    assert_str(r, "database", "DataPath", "/data/with");
    assert_str(r, "conv1", "QWeight", "SAT");
    ck_assert_int_eq(qc_recipe_int(r, "conv1", "QWeight.Range", 0, &v), QC_OK);
    ck_assert_int_eq(v, 15);
    char where[64];
    ck_assert_str_eq(qc_recipe_where(r, "conv1", "QWeight.Range", where, sizeof(where)),
                     "t.ini:11");
    ck_assert_str_eq(qc_recipe_where(r, "conv1", "QAct", where, sizeof(where)), "t.ini");
    ck_assert_str_eq(qc_recipe_path(r), "t.ini");
    /* keys are case-sensitive: lookups of another spelling find nothing */
    ck_assert(!qc_recipe_has_key(r, "conv1", "qweight"));
    qc_recipe_free(r);
    qc_recipe_free(NULL);
}
END_TEST

START_TEST(test_inheritance)
{
    static const char text[] =
        "[base1]\nQWeight=SAT\nQWeight.Range=15\n"
        "[base2]\nQWeight.Range=7\nQAct=LSQ\nQAct.Range=3\n"
        "[a] base1 base2\nQAct.Range=255\n"
        "[b]base2\n"
        "[c] a\nNoBias=1\n";
    struct qc_recipe *r = load_ok(text);
    int64_t v;
    char where[64];
    assert_str(r, "a", "QWeight", "SAT");
    ck_assert_int_eq(qc_recipe_int(r, "a", "QWeight.Range", 0, &v), QC_OK);
    ck_assert_int_eq(v, 15);                         /* first base wins */
    ck_assert_int_eq(qc_recipe_int(r, "a", "QAct.Range", 0, &v), QC_OK);
    ck_assert_int_eq(v, 255);                        /* own key overrides */
    assert_str(r, "a", "QAct", "LSQ");
    ck_assert_int_eq(qc_recipe_int(r, "b", "QWeight.Range", 0, &v), QC_OK);
    ck_assert_int_eq(v, 7);                          /* [b]base2 without space */
    ck_assert_int_eq(qc_recipe_int(r, "c", "QAct.Range", 0, &v), QC_OK);
    ck_assert_int_eq(v, 255);                        /* transitive */
    ck_assert_str_eq(qc_recipe_where(r, "c", "QWeight", where, sizeof(where)), "t.ini:2");
    ck_assert(!qc_recipe_has_key(r, "base1", "QAct"));
    qc_recipe_free(r);
}
END_TEST

START_TEST(test_references_and_config_section)
{
    static const char text[] =
        "[sp]\nSizeX=32\nSizeY=[sp]SizeX\nBatchSize=[common]Batch.x\n"
        "[sp.Transformation-1]\nType=PadCrop\nWidth=[sp]SizeX\nHeight=[sp]SizeY\n"
        "[database]\nType=MNIST_IDX_Database\nDataPath=[nowhere]Path/[sp]SizeX/[sp]Nope\n"
        "[c1]\nQWeight.Range=3\nNoBias=1\nWeightsSolver.LearningRate=0.5\n"
        "[c2]\nQWeight.Range=5\nWeightsSolver.LearningRate=0.25\n"
        "[n]\nConfigSection=c1, c2\nWeightsSolver.LearningRate=0.125\n"
        "[common]\nBatch.x=8\n";
    struct qc_recipe *r = NULL;
    char err[2048];
    /* [common] Batch.x is not a node key: load leniently, it stays usable */
    ck_assert_int_eq(load_capture(text, true, &r, err, sizeof(err)), QC_OK);
    ck_assert_ptr_nonnull(strstr(err, "t.ini:23: unknown key 'Batch.x' in [common]"));
    int64_t v;
    double d;
    ck_assert_int_eq(qc_recipe_int(r, "sp", "SizeY", 0, &v), QC_OK);
    ck_assert_int_eq(v, 32);
    ck_assert_int_eq(qc_recipe_int(r, "sp", "BatchSize", 0, &v), QC_OK);
    ck_assert_int_eq(v, 8);                          /* forward reference */
    ck_assert_int_eq(qc_recipe_int(r, "sp.Transformation-1", "Height", 0, &v), QC_OK);
    ck_assert_int_eq(v, 32);                         /* recursive */
    assert_str(r, "sp.Transformation-1", "Type", "PadCropTransformation");
    assert_str(r, "database", "DataPath", "[nowhere]Path/32/[sp]Nope");
    ck_assert_int_eq(qc_recipe_int(r, "n", "QWeight.Range", 0, &v), QC_OK);
    ck_assert_int_eq(v, 5);                          /* later ConfigSection wins */
    ck_assert_int_eq(qc_recipe_int(r, "n", "NoBias", 0, &v), QC_OK);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(qc_recipe_float(r, "n", "WeightsSolver.LearningRate", 0, &d), QC_OK);
    ck_assert_double_eq(d, 0.125);                   /* own key wins */
    qc_recipe_free(r);
}
END_TEST

START_TEST(test_aliases)
{
    static const char text[] =
        "[a]\nQWeight=LSQ\nQWeight.StepOptInitStepSize=0\nQWeight.Solver=ADAM\n"
        "QWeight.Solver.LearningRate=0.01\nQAct=sat\nQAct.Solver=Adam\nNoBias=true\n"
        "[b]\nQWeight.SetOptInitStepSize=1\nQWeightSolver=SGD\nQActSolver.Beta1=0.5\n";
    struct qc_recipe *r = load_ok(text);
    int64_t v;
    double d;
    ck_assert_int_eq(qc_recipe_int(r, "a", "QWeight.SetOptInitStepSize", 1, &v), QC_OK);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(qc_recipe_int(r, "a", "QWeight.StepOptInitStepSize", 1, &v), QC_OK);
    ck_assert_int_eq(v, 0);
    assert_str(r, "a", "QWeightSolver", "Adam");
    assert_str(r, "a", "QWeight.Solver", "Adam");
    assert_str(r, "a", "QActSolver", "Adam");
    assert_str(r, "a", "QAct", "SAT");
    ck_assert_int_eq(qc_recipe_float(r, "a", "QWeightSolver.LearningRate", 0, &d), QC_OK);
    ck_assert_double_eq(d, 0.01);
    ck_assert_int_eq(qc_recipe_int(r, "a", "NoBias", 0, &v), QC_OK);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(qc_recipe_int(r, "b", "QWeight.StepOptInitStepSize", 0, &v), QC_OK);
    ck_assert_int_eq(v, 1);
    assert_str(r, "b", "QWeight.Solver", "SGD");
    ck_assert_int_eq(qc_recipe_float(r, "b", "QAct.Solver.Beta1", 0, &d), QC_OK);
    ck_assert_double_eq(d, 0.5);
    qc_recipe_free(r);
    /* two spellings of one key in one section are a duplicate */
    expect_error("[a]\nQWeightSolver=SGD\nQWeight.Solver=Adam\n",
                 "t.ini:3: duplicate key 'QWeight.Solver' in [a] (first set at line 2)");
}
END_TEST

START_TEST(test_syntax_errors)
{
    expect_error("[a]\nNoBias=1\n[b\nNoBias=0\n", "t.ini:3: missing ']'");
    expect_error("Epochs=2\n\n[a]\nNoBias\n", "t.ini:4: expected 'Key=Value'");
    expect_error("[a]\nNoBias=1\n[a]\n",
                 "t.ini:3: duplicate section [a] (first defined at line 1)");
    expect_error("[a] nothere\nNoBias=1\n", "t.ini:1: [a]: base section [nothere] is not defined");
    expect_error("[a] b\nNoBias=1\n[b] a\nQAct=SAT\n", "inheritance cycle");
    expect_error("[x]\n[a] a\n", "t.ini:2: inheritance cycle: [a] inherits from [a]");
    expect_error("[a]\nNoBias=1\n\nNoBias=0\n",
                 "t.ini:4: duplicate key 'NoBias' in [a] (first set at line 2)");
    expect_error("[sp]\nSizeX=[sp]SizeY\nSizeY=[sp]SizeX\n", "t.ini:2: reference cycle in [sp]");
    expect_error("[a]\nConfigSection=b\n",
                 "t.ini:2: [a] ConfigSection: section [b] is not defined");
    expect_error("[a]\nConfigSection=b\n[b]\nConfigSection=a\n", "ConfigSection cycle");
    expect_error("[a]\n=3\n", "t.ini:2: missing key");
}
END_TEST

START_TEST(test_schema_errors)
{
    expect_error("[conv1]\nQWeight=SAT\nQWieght.Range=3\n",
                 "t.ini:3: unknown key 'QWieght.Range' in [conv1] (did you mean 'QWeight.Range'?)");
    expect_error("[conv1]\nQWieght=SAT\n",
                 "t.ini:2: unknown key 'QWieght' in [conv1] (did you mean 'QWeight'?)");
    expect_error("[conv1]\nSolvers.LearnigRate=0.1\n",
                 "(did you mean 'Solvers.LearningRate'?)");
    expect_error("[sp]\nSizeZ=3\n", "t.ini:2: unknown key 'SizeZ' in [sp] (did you mean 'SizeX'?)");
    expect_error("[conv1]\nCompletelyWrong=3\n",
                 "t.ini:2: unknown key 'CompletelyWrong' in [conv1]\n");
    expect_error("[conv1]\nQWeight=DoReFa\n",
                 "t.ini:2: [conv1] QWeight=DoReFa: expected one of SAT|LSQ|none");
    expect_error("[conv1]\nQWeight.QuantMode=Sym\n",
                 "[conv1] QWeight.QuantMode=Sym: expected one of "
                 "Default|Symmetric|Asymmetric|FullRange");
    expect_error("[conv1]\nSolvers.LearningRatePolicy=Cosine\n",
                 "expected one of None|StepDecay|CosineDecay");
    expect_error("[database]\nType=ImageNet\n", "[database] Type=ImageNet: expected one of");
    expect_error("[sp.Transformation-1]\nType=Blur\n",
                 "t.ini:2: [sp.Transformation-1] Type=Blur: expected one of");
    expect_error("[sp.Transformation-1]\nWidth=3\n",
                 "t.ini:1: [sp.Transformation-1]: missing Type");
    expect_error("[sp.Transformation-1]\nType=Flip\nWidth=3\n",
                 "t.ini:3: unknown key 'Width' in [sp.Transformation-1]");
    expect_error("[sp.OnTheFlyTransformation-2]\nType=RangeAffine\nFirstOperator=Times\n",
                 "FirstOperator=Times: expected one of Plus|Minus|Multiplies|Divides");
    expect_error("[sp.Transformation-1]\nType=RangeAffine\nFirstOperator=Plus\nFirstValue=a\n",
                 "t.ini:4: [sp.Transformation-1] FirstValue=a: expected one number");
    expect_error("[conv1]\nQWeight.Range=abc\n",
                 "t.ini:2: [conv1] QWeight.Range=abc: expected an integer");
    expect_error("[conv1]\nQWeight.Range=0\n", "QWeight.Range=0: expected an integer >= 1");
    expect_error("[conv1]\nQWeight.Range=12x\n", "expected an integer");
    expect_error("[sp]\nBatchSize=0\n", "t.ini:2: [sp] BatchSize=0: expected an integer >= 1");
    expect_error("[database]\nValidation=1.5\n", "Validation=1.5: expected a number in [0, 1]");
    expect_error("[conv1]\nNoBias=2\n", "[conv1] NoBias=2: expected 0 or 1");
    expect_error("[onnx]\nType=ONNX\nFiles=a.onnx\n",
                 "unknown key 'Files' in [onnx] (did you mean 'File'?)");
    expect_error("Epoch=3\n", "t.ini:1: unknown key 'Epoch' in [] (did you mean 'Epochs'?)");
}
END_TEST

START_TEST(test_lenient_and_getters)
{
    struct qc_recipe *r = NULL;
    char err[2048];
    ck_assert_int_eq(load_capture("[conv1]\nQWieght=SAT\nQWeight.Range=15\n", true, &r, err,
                                  sizeof(err)), QC_OK);
    ck_assert_ptr_nonnull(strstr(err, "warning: t.ini:2: unknown key 'QWieght' in [conv1] "
                                      "(did you mean 'QWeight'?)"));
    ck_assert(qc_recipe_has_key(r, "conv1", "QWieght"));
    const char *s;
    int64_t v;
    double d;
    ck_assert_int_eq(qc_recipe_str(r, "conv1", "QWieght", NULL, &s), QC_OK);
    ck_assert_str_eq(s, "SAT");
    /* defaults */
    ck_assert_int_eq(qc_recipe_int(r, "conv1", "QAct.Range", 255, &v), QC_OK);
    ck_assert_int_eq(v, 255);
    ck_assert_int_eq(qc_recipe_int(r, "nosuch", "QAct.Range", 7, &v), QC_OK);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(qc_recipe_float(r, "conv1", "QAct.Alpha", 8.0, &d), QC_OK);
    ck_assert_double_eq(d, 8.0);
    ck_assert_int_eq(qc_recipe_str(r, "conv1", "QAct", "none", &s), QC_OK);
    ck_assert_str_eq(s, "none");
    ck_assert_int_eq(qc_recipe_float(r, "conv1", "QWeight.Range", 0, &d), QC_OK);
    ck_assert_double_eq(d, 15.0);
    qc_recipe_free(r);
    /* a lenient unknown key that does not parse fails in the typed getter */
    ck_assert_int_eq(load_capture("[a]\nFoo=12abc\n", true, &r, err, sizeof(err)), QC_OK);
    char path[256];
    qc_test_tmpfile(path, sizeof(path), "", 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_ptr_nonnull(freopen(path, "w", stderr));
    enum qc_status st1 = qc_recipe_int(r, "a", "Foo", 0, &v);
    enum qc_status st2 = qc_recipe_float(r, "a", "Foo", 0, &d);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *in = fopen(path, "r");
    size_t n = fread(err, 1, sizeof(err) - 1, in);
    err[n] = '\0';
    fclose(in);
    unlink(path);
    ck_assert_int_eq(st1, QC_ERR_RECIPE);
    ck_assert_int_eq(st2, QC_ERR_RECIPE);
    ck_assert_ptr_nonnull(strstr(err, "t.ini:2: [a] Foo=12abc: expected an integer"));
    ck_assert_ptr_nonnull(strstr(err, "t.ini:2: [a] Foo=12abc: expected a number"));
    qc_recipe_free(r);
}
END_TEST

START_TEST(test_load_file)
{
    static const char text[] = "[sp]\nSizeX=28\nSizeY=28\nBatchSize=16\n";
    char path[256], where[300];
    struct qc_recipe *r = NULL;
    int64_t v;
    qc_test_tmpfile(path, sizeof(path), text, strlen(text));
    ck_assert_int_eq(qc_recipe_load(path, false, &r), QC_OK);
    ck_assert_str_eq(qc_recipe_path(r), path);
    ck_assert_int_eq(qc_recipe_int(r, "sp", "BatchSize", 0, &v), QC_OK);
    ck_assert_int_eq(v, 16);
    char want[300];
    snprintf(want, sizeof(want), "%s:4", path);
    ck_assert_str_eq(qc_recipe_where(r, "sp", "BatchSize", where, sizeof(where)), want);
    qc_recipe_free(r);
    unlink(path);
    ck_assert_int_eq(qc_recipe_load("/nonexistent/recipe.ini", false, &r), QC_ERR_RECIPE);
    ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_shipped_recipes)
{
    /* every recipe in recipes/ must load strictly */
    char dir[512];
    qc_test_path(dir, sizeof(dir), "recipes");
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".ini") != 0)
            continue;
        char path[1024];
        struct qc_recipe *r = NULL;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        ck_assert_msg(qc_recipe_load(path, false, &r) == QC_OK, "%s does not load", path);
        qc_recipe_free(r);
    }
    closedir(d);
}
END_TEST

Suite *qc_suite_recipe(void)
{
    Suite *s = suite_create("recipe");
    TCase *tc = tcase_create("recipe");
    tcase_add_test(tc, test_syntax);
    tcase_add_test(tc, test_inheritance);
    tcase_add_test(tc, test_references_and_config_section);
    tcase_add_test(tc, test_aliases);
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_schema_errors);
    tcase_add_test(tc, test_lenient_and_getters);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_shipped_recipes);
    suite_add_tcase(s, tc);
    return s;
}
