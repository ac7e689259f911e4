/*
 * test_train_plan.c - the training plan as a whole: parameter gradients of
 * real fixtures (LeNet with BatchNorm; a small ResNet whose residual adds fan
 * gradients in) against central finite differences of the full network's
 * loss, in training mode (batch statistics).  Catches wiring errors no
 * single-op check can: gradient accumulation over fan-out, zeroing, the
 * loss seed, the parameter/state layout.  Float32 forwards through ReLU and
 * max-pool kinks make a difference quotient of a deep net noisy at the
 * percent level, so each sample must be within 5% and the median within
 * 0.5%; a wiring error is off by tens of percent.
 * The grad-ready hook of data parallelism (qc_plan_set_grad_ready): every
 * trainable float reported once per backward, its gradient at the report
 * already the final one, and the gradients the same bit for bit as without
 * the hook (which moves the weight quantizers' backward earlier), float and
 * with LSQ or SAT weight and activation quantizers.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_io.h"
#include "backend/backend.h"
#include "plan/plan.h"
#include "quant/qspec.h"
#include "recipe/recipe.h"
#include "util/rng.h"
#include "train/loss.h"
#include "testutil.h"

#define BATCH 4

struct net {
    struct qc_graph   *g;
    struct qc_backend *be;
    struct qc_plan    *p;
    int32_t            labels[BATCH];
    float             *dz;
    int64_t            classes;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Mean loss of the batch after a training-mode forward. */
static double net_loss(struct net *n)
{
    struct qc_tensor *z = qc_plan_value(n->p, qc_plan_logits(n->p));
    double loss = 0.0;
    int64_t correct = 0;
    ck_assert_int_eq(qc_plan_forward_mode(n->p, true, NULL), QC_OK);
    ck_assert_int_eq(qc_loss_softmax_xent(qc_tensor_f32(z), n->labels, BATCH, n->classes,
                                          1.0f / BATCH, n->dz, &loss, &correct),
                     QC_OK);
    return loss / BATCH;
}

static void check_fixture(const char *rel, int threads)
{
    char path[4096];
    struct net n;
    struct qc_rng rng;
    struct qc_tensor *x;
    float *state, *grads;
    int checked = 0;
    double worst = 0.0, errs[512];

    memset(&n, 0, sizeof(n));
    qc_test_path(path, sizeof(path), rel);
    ck_assert_int_eq(qc_onnx_load(path, &n.g), QC_OK);
    ck_assert_int_eq(qc_backend_new("cpu", threads, &n.be), QC_OK);
    ck_assert_int_eq(qc_plan_new_train(n.g, n.be, BATCH, NULL, 0, &n.p), QC_OK);
    qc_rng_seed(&rng, 11);
    x = qc_plan_input(n.p, 0);
    for (int64_t i = 0; i < qc_tensor_nelem(x); i++)
        qc_tensor_f32(x)[i] = qc_rng_uniform(&rng);
    n.classes = qc_plan_value(n.p, qc_plan_logits(n.p))->shape.dims[1];
    for (int i = 0; i < BATCH; i++)
        n.labels[i] = (int32_t)(qc_rng_next(&rng) % (uint64_t)n.classes);
    n.dz = malloc((size_t)(BATCH * n.classes) * sizeof(float));

    /* analytic gradients: backward twice, so accumulation doubles them */
    (void)net_loss(&n);
    ck_assert_int_eq(qc_plan_zero_param_grads(n.p), QC_OK);
    for (int rep = 0; rep < 2; rep++) {
        ck_assert_int_eq(qc_plan_zero_act_grads(n.p), QC_OK);
        memcpy(qc_plan_grad(n.p, qc_plan_logits(n.p))->data, n.dz,
               (size_t)(BATCH * n.classes) * sizeof(float));
        ck_assert_int_eq(qc_plan_backward(n.p), QC_OK);
    }
    state = qc_plan_state(n.p);
    grads = qc_plan_param_grads(n.p);
    for (int s = 0; s < qc_plan_n_slots(n.p); s++) {
        const struct qc_param_slot *sl = qc_plan_slot(n.p, s);
        double amax = 0.0;
        if (!sl->trainable)
            continue;
        for (int64_t k = 0; k < sl->n; k++)
            amax = fmax(amax, fabs(0.5 * (double)grads[sl->offset + k]));
        for (int t = 0; t < 6; t++) {
            int64_t k = sl->offset + (int64_t)(qc_rng_next(&rng) % (uint64_t)sl->n);
            float w0 = state[k];
            double a = 0.5 * (double)grads[k], num[2], err;
            for (int e = 0; e < 2; e++) {
                float h = (e ? 1e-4f : 2e-4f) * fmaxf(1.0f, fabsf(w0));
                double lp, lm;
                state[k] = w0 + h;
                lp = net_loss(&n);
                state[k] = w0 - h;
                lm = net_loss(&n);
                state[k] = w0;
                num[e] = (lp - lm) / ((double)(w0 + h) - (double)(w0 - h));
            }
            if (fabs(num[0] - num[1]) > 0.02 * (fabs(num[1]) + 0.05 * amax + 1e-6))
                continue; /* a ReLU / max-pool kink within the step */
            err = fabs(a - num[0]) / (fmax(fabs(a), fabs(num[0])) + 0.05 * amax + 1e-6);
            worst = fmax(worst, err);
            if (checked < (int)QC_ARRAY_SIZE(errs))
                errs[checked] = err;
            checked++;
            ck_assert_msg(err < 5e-2, "%s: d loss / d %s[%lld]: analytic %.6g numeric %.6g", rel,
                          n.g->values[sl->value].name, (long long)(k - sl->offset), a, num[0]);
        }
    }
    ck_assert_int_ge(checked, 10);
    qsort(errs, (size_t)QC_MIN(checked, (int)QC_ARRAY_SIZE(errs)), sizeof(double), cmp_double);
    printf("%s (%d threads): %d parameter gradients checked, median relative error %.3g, "
           "worst %.3g\n", rel, threads, checked, errs[QC_MIN(checked, 512) / 2], worst);
    ck_assert_msg(errs[QC_MIN(checked, 512) / 2] < 5e-3, "%s: median error %.3g", rel,
                  errs[QC_MIN(checked, 512) / 2]);
    free(n.dz);
    qc_plan_free(n.p);
    qc_backend_free(n.be);
    qc_graph_free(n.g);
}

START_TEST(test_lenet_bn_grads)
{
    check_fixture("testdata/fashion_lenet_bn.onnx", 1);
    check_fixture("testdata/fashion_lenet_bn.onnx", 2);
}
END_TEST

START_TEST(test_resnet_grads)
{
    check_fixture("testdata/fashion_resnet_tiny.onnx", 2);
}
END_TEST

START_TEST(test_mlp_grads)
{
    check_fixture("testdata/fashion_mlp.onnx", 1);
}
END_TEST

/* What the hook saw: per float, the reports and the gradient at the report. */
struct ready_log {
    struct qc_plan *p;
    int *count;
    float *at_report;
};

static enum qc_status log_ready(void *arg, int64_t offset, int64_t n)
{
    struct ready_log *l = arg;
    const float *g = qc_plan_param_grads(l->p);
    for (int64_t i = offset; i < offset + n; i++) {
        l->count[i]++;
        l->at_report[i] = g[i];
    }
    return QC_OK;
}

/* One training forward and backward of `rel` (quantized by recipe `recipe`,
 * or float with NULL) on fixed data; the gradients into out (n_trainable),
 * with the hook logging into l when l is not NULL. */
static int64_t hook_run(const char *rel, const char *recipe, struct ready_log *l, float **out)
{
    char path[4096];
    struct qc_graph *g;
    struct qc_backend *be;
    struct qc_plan *p;
    struct qc_recipe *r = NULL;
    struct qc_quant_spec *specs = NULL;
    int n_specs = 0;
    struct qc_rng rng;
    struct qc_tensor *x, *dz;
    int64_t n;

    qc_test_path(path, sizeof(path), rel);
    ck_assert_int_eq(qc_onnx_load(path, &g), QC_OK);
    if (recipe) {
        qc_test_path(path, sizeof(path), recipe);
        ck_assert_int_eq(qc_recipe_load(path, false, &r), QC_OK);
        ck_assert_int_eq(qc_quant_specs_from_recipe(r, g, &specs, &n_specs), QC_OK);
        ck_assert_int_gt(n_specs, 0);
    }
    ck_assert_int_eq(qc_backend_new("cpu", 1, &be), QC_OK);
    ck_assert_int_eq(qc_plan_new_train(g, be, BATCH, specs, n_specs, &p), QC_OK);
    n = qc_plan_n_trainable(p);
    if (l) {
        l->p = p;
        l->count = calloc((size_t)n, sizeof(int));
        l->at_report = calloc((size_t)n, sizeof(float));
        ck_assert_ptr_nonnull(l->count);
        ck_assert_ptr_nonnull(l->at_report);
        ck_assert_int_eq(qc_plan_set_grad_ready(p, log_ready, l), QC_OK);
    }
    qc_rng_seed(&rng, 5);
    x = qc_plan_input(p, 0);
    for (int64_t i = 0; i < qc_tensor_nelem(x); i++)
        qc_tensor_f32(x)[i] = qc_rng_uniform(&rng);
    ck_assert_int_eq(qc_plan_forward_mode(p, true, NULL), QC_OK);
    ck_assert_int_eq(qc_plan_zero_param_grads(p), QC_OK);
    ck_assert_int_eq(qc_plan_zero_act_grads(p), QC_OK);
    dz = qc_plan_grad(p, qc_plan_logits(p));
    for (int64_t i = 0; i < qc_tensor_nelem(dz); i++)
        qc_tensor_f32(dz)[i] = qc_rng_uniform(&rng) - 0.5f;
    ck_assert_int_eq(qc_plan_backward(p), QC_OK);
    *out = malloc((size_t)n * sizeof(float));
    ck_assert_ptr_nonnull(*out);
    memcpy(*out, qc_plan_param_grads(p), (size_t)n * sizeof(float));
    if (l) { /* the buffers (running statistics) lie after the trainable floats */
        for (int s = 0; s < qc_plan_n_slots(p); s++)
            ck_assert(qc_plan_slot(p, s)->trainable || qc_plan_slot(p, s)->offset >= n);
        l->p = NULL;
    }
    qc_plan_free(p);
    qc_backend_free(be);
    qc_free(specs);
    qc_recipe_free(r);
    qc_graph_free(g);
    return n;
}

static void check_hook(const char *rel, const char *recipe)
{
    struct ready_log l;
    float *with, *without;
    int64_t n = hook_run(rel, recipe, &l, &with), nonzero = 0;
    ck_assert_int_eq(hook_run(rel, recipe, NULL, &without), n);
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(l.count[i] == 1, "%s %s: gradient float %lld reported %d times", rel,
                      recipe ? recipe : "float", (long long)i, l.count[i]);
        ck_assert_msg(memcmp(&l.at_report[i], &with[i], sizeof(float)) == 0,
                      "%s %s: gradient float %lld changed after its report: %g then %g", rel,
                      recipe ? recipe : "float", (long long)i, (double)l.at_report[i],
                      (double)with[i]);
        ck_assert_msg(memcmp(&with[i], &without[i], sizeof(float)) == 0,
                      "%s %s: gradient float %lld with the hook %g, without %g", rel,
                      recipe ? recipe : "float", (long long)i, (double)with[i], (double)without[i]);
        nonzero += with[i] != 0.0f;
    }
    ck_assert_int_gt(nonzero, n / 2); /* the comparison is not of zeros */
    free(l.count);
    free(l.at_report);
    free(with);
    free(without);
}

START_TEST(test_grad_ready_hook)
{
    check_hook("testdata/fashion_resnet_tiny.onnx", NULL);
    check_hook("testdata/fashion_lenet_bn.onnx", NULL);
    check_hook("testdata/fashion_lenet_bn.onnx", "recipes/lenet-lsq-w4a4.ini");
    check_hook("testdata/fashion_lenet_bn.onnx", "recipes/lenet-sat-w4a4.ini");
}
END_TEST

Suite *qc_suite_train_plan(void)
{
    Suite *s = suite_create("train_plan");
    TCase *tc = tcase_create("network_gradients");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_lenet_bn_grads);
    tcase_add_test(tc, test_resnet_grads);
    tcase_add_test(tc, test_mlp_grads);
    tcase_add_test(tc, test_grad_ready_hook);
    suite_add_tcase(s, tc);
    return s;
}
