/*
 * test_solver.c - the optimizers (src/train/solver.h): hand-computed SGD and
 * Adam steps, 20 steps against torch.optim.SGD / Adam (numbers computed once
 * with torch 1.13, script in the comment of torch_case), IterationSize
 * bookkeeping, thread-count invariance, every learning-rate policy at
 * hand-computed points, and the recipe resolution order and its errors.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/op.h"
#include "recipe/recipe.h"
#include "train/solver.h"
#include "testutil.h"

#define NEAR(a, b, tol)                                                                  \
    ck_assert_msg(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g", #a, \
                  (double)(a), (double)(b))

/* ---- kernels ------------------------------------------------------------------------------ */

START_TEST(test_defaults)
{
    struct qc_solver_cfg c;
    qc_solver_cfg_default(&c, QC_SOLVER_SGD);
    NEAR(c.lr, 0.01, 0);
    NEAR(c.momentum, 0, 0);
    NEAR(c.decay, 0, 0);
    NEAR(c.step_decay, 0.1, 0);
    ck_assert_int_eq(c.step_size, 1);
    ck_assert_int_eq(c.iteration_size, 1);
    ck_assert_int_eq(c.max_iterations, 0);
    ck_assert_int_eq(c.warmup, 0);
    ck_assert_int_eq(c.policy, QC_LR_NONE);
    qc_solver_cfg_default(&c, QC_SOLVER_ADAM);
    NEAR(c.lr, 0.001, 0);
    NEAR(c.beta1, 0.9, 0);
    NEAR(c.beta2, 0.999, 0);
    NEAR(c.eps, 1e-8, 0);
    ck_assert_int_eq(qc_solver_state_per_elem(QC_SOLVER_SGD), 1);
    ck_assert_int_eq(qc_solver_state_per_elem(QC_SOLVER_ADAM), 2);
    ck_assert_str_eq(qc_solver_type_name(QC_SOLVER_ADAM), "Adam");
    ck_assert_str_eq(qc_lr_policy_name(QC_LR_COSINE), "CosineDecay");
}
END_TEST

START_TEST(test_sgd_hand)
{
    /* θ=1, ∇=2, scale .25 -> ḡ=.5; λ=.1 -> g=.6; v=.9·.2 − .5·.6 = −.12; θ=.88 */
    struct qc_solver_cfg c;
    struct qc_solver_step st = { 0 };
    struct qc_solver_update u;
    float th[2] = { 1.0f, 1.0f }, g[2] = { 2.0f, 2.0f }, v[2] = { 0.2f, 0.2f };
    qc_solver_cfg_default(&c, QC_SOLVER_SGD);
    c.lr = 0.5;
    c.momentum = 0.9;
    c.decay = 0.1;
    qc_solver_prepare(&c, &st, 0.25, &u);
    qc_solver_apply(&u, th, g, v, 1, true, 1);
    qc_solver_apply(&u, th + 1, g + 1, v + 1, 1, false, 1);
    NEAR(v[0], -0.12, 1e-7);
    NEAR(th[0], 0.88, 1e-7);
    /* no decay: v = .18 − .25 = −.07 */
    NEAR(v[1], -0.07, 1e-7);
    NEAR(th[1], 0.93, 1e-7);
    /* μ=0, λ=0: plain θ −= lr·ḡ */
    c.momentum = 0;
    c.decay = 0;
    qc_solver_prepare(&c, &st, 0.25, &u);
    qc_solver_apply(&u, th, g, v, 1, true, 1);
    NEAR(th[0], 0.88 - 0.25, 1e-7);
}
END_TEST

START_TEST(test_adam_hand)
{
    /* lr .01, ḡ = 2 then −1 (∇ = 4, −2, scale .5):
     * t=1: m=.2 v=.004 θ = 1 − .01·(.2/.1)/(sqrt(.004/.001)+1e-8) = 0.99000000005
     * t=2: m=.08 v=.004996 θ −= .01/.19·.08/(sqrt(.004996)/sqrt(.001999)+1e-8) */
    struct qc_solver_cfg c;
    struct qc_solver_step st = { 0 };
    struct qc_solver_update u;
    float th = 1.0f, g = 4.0f, s[2] = { 0, 0 };
    qc_solver_cfg_default(&c, QC_SOLVER_ADAM);
    c.lr = 0.01;
    qc_solver_prepare(&c, &st, 0.5, &u);
    qc_solver_apply(&u, &th, &g, s, 1, true, 1);
    qc_solver_advance(&st, 8);
    NEAR(s[0], 0.2, 1e-7);
    NEAR(s[1], 0.004, 1e-9);
    NEAR(th, 0.99000000005, 1e-7);
    g = -2.0f;
    qc_solver_prepare(&c, &st, 0.5, &u);
    qc_solver_apply(&u, &th, &g, s, 1, true, 1);
    NEAR(s[0], 0.08, 1e-7);
    NEAR(s[1], 0.004996, 1e-9);
    NEAR(th, 0.9873366296702432, 2e-7);

    /* decay as L2 on the gradient: ∇=0, λ=.5 -> g=.5, θ ≈ 1 − lr; no decay: unchanged */
    float a[2] = { 1.0f, 1.0f }, z[2] = { 0, 0 }, sa[2] = { 0, 0 }, sb[2] = { 0, 0 };
    struct qc_solver_step s0 = { 0 };
    c.decay = 0.5;
    qc_solver_prepare(&c, &s0, 1.0, &u);
    qc_solver_apply(&u, &a[0], &z[0], sa, 1, true, 1);
    qc_solver_apply(&u, &a[1], &z[1], sb, 1, false, 1);
    NEAR(a[0], 0.99, 1e-7);
    ck_assert(a[1] == 1.0f);
}
END_TEST

/*
 * 20 steps on f(θ) = Σ a_i (θ_i − c_i)²/2 with ∇ = a·(θ − c) and scale .5,
 * array A with decay .01, array B without.  Expected values from
 * /usr/bin/python3 (torch 1.13.0a0, float32, one thread):
 *   A = tensor(th0, requires_grad=True); B likewise
 *   groups = [{'params': [A], 'weight_decay': 0.01}, {'params': [B], 'weight_decay': 0.0}]
 *   SGD(groups, lr=0.1, momentum=0.9, dampening=0, nesterov=False)
 *   Adam(groups, lr=0.05, betas=(0.9, 0.999), eps=1e-8)
 *   20 × { A.grad = (a*(A - c))*0.5; B.grad = (a*(B - c))*0.5; opt.step() }
 */
static const float th0[6] = { 0.5f, -1.25f, 2.0f, 0.0f, -0.3f, 1.7f };
static const float fa[6] = { 1.0f, 0.5f, 2.0f, 3.0f, 0.25f, 1.5f };
static const float fc[6] = { 0.1f, 0.2f, -0.4f, 1.0f, -2.0f, 0.6f };
static const float torch_sgd_a[6] = { 0.0561489537f, 0.695267141f, 0.424885094f,
                                      1.05451262f,   -1.94993997f, 0.875274122f };
static const float torch_sgd_b[6] = { 0.051547803f, 0.695604026f, 0.427201658f,
                                      1.05175459f,  -2.02898026f, 0.870324552f };
static const float torch_adam_a[6] = { -0.000135207549f, -0.313156992f, 1.03182542f,
                                       0.887552679f,     -1.24314475f,  0.794269741f };
static const float torch_adam_b[6] = { 0.00303310063f, -0.312671483f, 1.0317589f,
                                       0.88877368f,    -1.24995804f,  0.795346677f };

static void torch_case(enum qc_solver_type type, const float *want_a, const float *want_b)
{
    struct qc_solver_cfg c;
    struct qc_solver_step st = { 0 };
    struct qc_solver_update u;
    float A[6], B[6], gA[6], gB[6], sA[12] = { 0 }, sB[12] = { 0 };
    qc_solver_cfg_default(&c, type);
    c.lr = type == QC_SOLVER_ADAM ? 0.05 : 0.1;
    c.momentum = 0.9;
    c.decay = 0.01;
    memcpy(A, th0, sizeof(A));
    memcpy(B, th0, sizeof(B));
    for (int step = 0; step < 20; step++) {
        for (int i = 0; i < 6; i++) {
            gA[i] = fa[i] * (A[i] - fc[i]);
            gB[i] = fa[i] * (B[i] - fc[i]);
        }
        qc_solver_prepare(&c, &st, 0.5, &u);
        qc_solver_apply(&u, A, gA, sA, 6, true, 1);
        qc_solver_apply(&u, B, gB, sB, 6, false, 1);
        qc_solver_advance(&st, 4);
    }
    ck_assert_int_eq(st.updates, 20);
    ck_assert_int_eq(st.samples, 80);
    for (int i = 0; i < 6; i++) {
        NEAR(A[i], want_a[i], 1e-6);
        NEAR(B[i], want_b[i], 1e-6);
    }
}

START_TEST(test_torch_sgd)
{
    torch_case(QC_SOLVER_SGD, torch_sgd_a, torch_sgd_b);
}
END_TEST

START_TEST(test_torch_adam)
{
    torch_case(QC_SOLVER_ADAM, torch_adam_a, torch_adam_b);
}
END_TEST

/* IterationSize=3: batch_done on every third batch; with batch-mean gradients
 * summed over the I batches and scale 1/I, the update equals one step on the
 * mean gradient. */
START_TEST(test_iteration_size)
{
    struct qc_solver_cfg c;
    struct qc_solver_step st = { 0 };
    struct qc_solver_update u;
    const float batch_g[3] = { 0.3f, -0.6f, 1.2f };
    float th = 2.0f, acc = 0, v = 0;
    int updates = 0;
    qc_solver_cfg_default(&c, QC_SOLVER_SGD);
    c.iteration_size = 3;
    c.lr = 0.5;
    for (int b = 0; b < 7; b++) {
        if (qc_solver_new_iteration(&st))
            acc = 0;
        acc += batch_g[b % 3];
        bool done = qc_solver_batch_done(&c, &st);
        ck_assert_int_eq(done, b % 3 == 2);
        if (done) {
            qc_solver_prepare(&c, &st, 1.0 / (double)c.iteration_size, &u);
            qc_solver_apply(&u, &th, &acc, &v, 1, true, 1);
            qc_solver_advance(&st, 16 * c.iteration_size);
            updates++;
        }
    }
    ck_assert_int_eq(updates, 2);
    ck_assert_int_eq(st.updates, 2);
    ck_assert_int_eq(st.samples, 96);
    ck_assert_int_eq(st.pass, 1);
    ck_assert(!qc_solver_new_iteration(&st));
    /* mean gradient .3 per update: θ = 2 − 2·.5·.3 */
    NEAR(th, 1.7, 1e-6);
}
END_TEST

/* Above QC_PAR_MIN_STREAM the kernels run in parallel: results must be
 * bit-identical for 1 and 4 threads. */
START_TEST(test_threads)
{
    int64_t n = QC_PAR_MIN_STREAM + 5;
    for (int type = 0; type < 2; type++) {
        int k = qc_solver_state_per_elem((enum qc_solver_type)type);
        float *th1 = malloc((size_t)n * sizeof(float));
        float *th4 = malloc((size_t)n * sizeof(float));
        float *g = malloc((size_t)n * sizeof(float));
        float *s1 = calloc((size_t)(n * k), sizeof(float));
        float *s4 = calloc((size_t)(n * k), sizeof(float));
        ck_assert(th1 && th4 && g && s1 && s4);
        for (int64_t i = 0; i < n; i++) {
            th1[i] = th4[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
            g[i] = (float)((i * 104729) % 997) / 300.0f - 1.5f;
        }
        struct qc_solver_cfg c;
        struct qc_solver_step st = { 0 };
        struct qc_solver_update u;
        qc_solver_cfg_default(&c, (enum qc_solver_type)type);
        c.momentum = 0.9;
        c.decay = 1e-3;
        for (int step = 0; step < 2; step++) {
            qc_solver_prepare(&c, &st, 0.25, &u);
            qc_solver_apply(&u, th1, g, s1, n, true, 1);
            qc_solver_apply(&u, th4, g, s4, n, true, 4);
            qc_solver_advance(&st, 32);
        }
        ck_assert(memcmp(th1, th4, (size_t)n * sizeof(float)) == 0);
        ck_assert(memcmp(s1, s4, (size_t)(n * k) * sizeof(float)) == 0);
        free(th1);
        free(th4);
        free(g);
        free(s1);
        free(s4);
    }
}
END_TEST

/* ---- learning-rate policies --------------------------------------------------------------- */

START_TEST(test_lr_none_step)
{
    struct qc_solver_cfg c;
    qc_solver_cfg_default(&c, QC_SOLVER_SGD);
    c.lr = 0.1;
    NEAR(qc_solver_lr(&c, 0), 0.1, 0);
    NEAR(qc_solver_lr(&c, 1000000000), 0.1, 0);
    c.policy = QC_LR_STEP;
    c.step_size = 100;
    c.step_decay = 0.5;
    NEAR(qc_solver_lr(&c, 0), 0.1, 1e-15);
    NEAR(qc_solver_lr(&c, 99), 0.1, 1e-15);
    NEAR(qc_solver_lr(&c, 100), 0.05, 1e-15);
    NEAR(qc_solver_lr(&c, 250), 0.025, 1e-15);
    NEAR(qc_solver_lr(&c, 399), 0.0125, 1e-15);
    NEAR(qc_solver_lr(&c, -5), 0.1, 1e-15);
}
END_TEST

START_TEST(test_lr_cosine)
{
    struct qc_solver_cfg c;
    qc_solver_cfg_default(&c, QC_SOLVER_SGD);
    c.lr = 0.1;
    c.policy = QC_LR_COSINE;
    c.max_iterations = 1000;
    NEAR(qc_solver_lr(&c, 0), 0.1, 1e-15);
    NEAR(qc_solver_lr(&c, 250), 0.08535533905932738, 1e-12); /* .1·½(1 + cos π/4) */
    NEAR(qc_solver_lr(&c, 500), 0.05, 1e-12);
    NEAR(qc_solver_lr(&c, 1000), 0.0, 1e-15);
    /* N2D2 would rise again to .1 at 2·Max; we stay at 0 */
    NEAR(qc_solver_lr(&c, 1500), 0.0, 1e-15);
    NEAR(qc_solver_lr(&c, 2000), 0.0, 1e-15);
    double prev = qc_solver_lr(&c, 0);
    for (int64_t s = 7; s < 5000; s += 7) {
        double lr = qc_solver_lr(&c, s);
        ck_assert_msg(lr <= prev && lr >= 0, "lr rises at %lld", (long long)s);
        prev = lr;
    }
}
END_TEST

START_TEST(test_lr_warmup)
{
    struct qc_solver_cfg c;
    qc_solver_cfg_default(&c, QC_SOLVER_SGD);
    c.lr = 0.1;
    c.warmup = 100;
    /* constant policy: linear ramp from 0 */
    NEAR(qc_solver_lr(&c, 0), 0.0, 0);
    NEAR(qc_solver_lr(&c, 25), 0.025, 1e-15);
    NEAR(qc_solver_lr(&c, 99), 0.099, 1e-15);
    NEAR(qc_solver_lr(&c, 100), 0.1, 0);
    /* WarmUpLRFrac .25 (N2D2's value): .1·(.25 + .75·s/100) */
    c.warmup_frac = 0.25;
    NEAR(qc_solver_lr(&c, 0), 0.025, 1e-15);
    NEAR(qc_solver_lr(&c, 50), 0.0625, 1e-15);
    /* multiplies the cosine: at 50, .5 · .1·½(1 + cos(π·.05)) */
    c.warmup_frac = 0;
    c.policy = QC_LR_COSINE;
    c.max_iterations = 1000;
    NEAR(qc_solver_lr(&c, 50), 0.04969220851487845, 1e-12);
    NEAR(qc_solver_lr(&c, 500), 0.05, 1e-12);
    /* and the step decay */
    c.policy = QC_LR_STEP;
    c.step_size = 40;
    c.step_decay = 0.5;
    NEAR(qc_solver_lr(&c, 60), 0.6 * 0.05, 1e-15);
}
END_TEST

/* prepare reads the rate at st->samples (before the update). */
START_TEST(test_prepare_clock)
{
    struct qc_solver_cfg c;
    struct qc_solver_step st = { 0 };
    struct qc_solver_update u;
    qc_solver_cfg_default(&c, QC_SOLVER_SGD);
    c.lr = 0.1;
    c.policy = QC_LR_STEP;
    c.step_size = 64;
    c.step_decay = 0.1;
    qc_solver_prepare(&c, &st, 1, &u);
    NEAR(u.lr, 0.1, 1e-8);
    qc_solver_advance(&st, 32);
    qc_solver_prepare(&c, &st, 1, &u);
    NEAR(u.lr, 0.1, 1e-8);
    qc_solver_advance(&st, 32);
    qc_solver_prepare(&c, &st, 1, &u);
    NEAR(u.lr, 0.01, 1e-9);
}
END_TEST

/* ---- recipe ------------------------------------------------------------------------------- */

/* Runs load (text != NULL) or resolve, with stderr captured into err. */
static enum qc_status captured(const char *text, bool lenient, struct qc_recipe **r,
                               const char *sec, const char *prefix, struct qc_solver_cfg *cfg,
                               char *err, size_t len)
{
    char path[256];
    enum qc_status st;
    qc_test_tmpfile(path, sizeof(path), "", 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    FILE *f = freopen(path, "w", stderr);
    ck_assert_ptr_nonnull(f);
    if (text)
        st = qc_recipe_load_string(text, "t.ini", lenient, r);
    else
        st = qc_solver_cfg_from_recipe(*r, sec, prefix, cfg);
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

static struct qc_recipe *load(const char *text, bool lenient)
{
    struct qc_recipe *r = NULL;
    char err[2048];
    enum qc_status st = captured(text, lenient, &r, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_msg(st == QC_OK, "load failed: %s", err);
    return r;
}

static struct qc_solver_cfg resolve(const struct qc_recipe *r, const char *sec,
                                    const char *prefix)
{
    struct qc_solver_cfg c;
    enum qc_status st = qc_solver_cfg_from_recipe(r, sec, prefix, &c);
    ck_assert_int_eq(st, QC_OK);
    return c;
}

/* Resolution fails with QC_ERR_RECIPE and a message containing msg. */
static void expect_error(const char *text, bool lenient, const char *sec, const char *prefix,
                         const char *msg)
{
    struct qc_recipe *r = load(text, lenient);
    struct qc_solver_cfg c;
    char err[2048];
    enum qc_status st = captured(NULL, false, &r, sec, prefix, &c, err, sizeof(err));
    ck_assert_int_eq(st, QC_ERR_RECIPE);
    ck_assert_msg(strstr(err, msg) != NULL, "expected '%s' in '%s'", msg, err);
    qc_recipe_free(r);
}

/* A bad value the recipe schema rejects at load: one line with file:line. */
static void expect_load_error(const char *text, const char *msg)
{
    struct qc_recipe *r = NULL;
    char err[2048];
    enum qc_status st = captured(text, false, &r, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_int_eq(st, QC_ERR_RECIPE);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, msg) != NULL, "expected '%s' in '%s'", msg, err);
}

START_TEST(test_recipe_order)
{
    /* global Solvers.* keys are defaults for every node */
    struct qc_recipe *r = load("Solvers.LearningRate=0.1\n"
                               "Solvers.Momentum=0.5\n"
                               "Solvers.Decay=0.0001\n"
                               "[conv1]\n"
                               "Solvers.LearningRate=0.2\n"
                               "Solvers.IterationSize=2\n"
                               "WeightsSolver.Momentum=0.9\n"
                               "QActSolver=ADAM\n"
                               "QActSolver.LearningRate=0.3\n"
                               "QActSolver.Beta1=0.8\n"
                               "QWeight.Solver.LearningRatePolicy=CosineDecay\n"
                               "QWeight.Solver.MaxIterations=5000\n",
                               true);
    struct qc_solver_cfg c = resolve(r, NULL, "Solvers");
    ck_assert_int_eq(c.type, QC_SOLVER_SGD);
    NEAR(c.lr, 0.1, 0);
    NEAR(c.momentum, 0.5, 0);
    NEAR(c.decay, 1e-4, 0);
    ck_assert_int_eq(c.iteration_size, 1);
    /* a node without a section gets the global keys */
    c = resolve(r, "conv9", "WeightsSolver");
    NEAR(c.lr, 0.1, 0);

    c = resolve(r, "conv1", "Solvers");
    NEAR(c.lr, 0.2, 0);
    NEAR(c.momentum, 0.5, 0);
    ck_assert_int_eq(c.iteration_size, 2);
    c = resolve(r, "conv1", "WeightsSolver");
    NEAR(c.lr, 0.2, 0);
    NEAR(c.momentum, 0.9, 0);
    NEAR(c.decay, 1e-4, 0);
    c = resolve(r, "conv1", "BiasSolver");
    NEAR(c.momentum, 0.5, 0);
    c = resolve(r, "conv1", "QActSolver");
    ck_assert_int_eq(c.type, QC_SOLVER_ADAM);
    NEAR(c.lr, 0.3, 0);
    NEAR(c.beta1, 0.8, 0);
    NEAR(c.beta2, 0.999, 0);
    NEAR(c.momentum, 0.5, 0);
    ck_assert_int_eq(c.iteration_size, 2);
    /* QWeight.Solver.* is N2D2's second spelling of QWeightSolver.* */
    c = resolve(r, "conv1", "QWeightSolver");
    ck_assert_int_eq(c.type, QC_SOLVER_SGD);
    ck_assert_int_eq(c.policy, QC_LR_COSINE);
    ck_assert_int_eq(c.max_iterations, 5000);
    NEAR(c.lr, 0.2, 0);
    qc_recipe_free(r);
}
END_TEST

START_TEST(test_recipe_sections)
{
    /* strict load: inheritance, ConfigSection, the node type key and Adam's default rate */
    struct qc_recipe *r = load("[common]\n"
                               "Solvers.LearningRate=0.05\n"
                               "Solvers.LearningRatePolicy=StepDecay\n"
                               "Solvers.LearningRateStepSize=1000\n"
                               "Solvers.LearningRateDecay=0.5\n"
                               "[onnx:Conv_def]\n"
                               "ConfigSection=common\n"
                               "Solvers.WarmUpDuration=300\n"
                               "[conv2] onnx:Conv_def\n"
                               "Solvers=Adam\n"
                               "BiasSolver.LearningRate=0.5\n"
                               "[fc]\n"
                               "QWeightSolver=Adam\n",
                               false);
    struct qc_solver_cfg c = resolve(r, "onnx:Conv_def", "WeightsSolver");
    ck_assert_int_eq(c.type, QC_SOLVER_SGD);
    NEAR(c.lr, 0.05, 0);
    ck_assert_int_eq(c.policy, QC_LR_STEP);
    ck_assert_int_eq(c.step_size, 1000);
    NEAR(c.step_decay, 0.5, 0);
    ck_assert_int_eq(c.warmup, 300);
    c = resolve(r, "conv2", "WeightsSolver");
    ck_assert_int_eq(c.type, QC_SOLVER_ADAM);
    NEAR(c.lr, 0.05, 0);
    ck_assert_int_eq(c.warmup, 300);
    c = resolve(r, "conv2", "BiasSolver");
    ck_assert_int_eq(c.type, QC_SOLVER_ADAM);
    NEAR(c.lr, 0.5, 0);
    c = resolve(r, "fc", "QWeightSolver");
    ck_assert_int_eq(c.type, QC_SOLVER_ADAM);
    NEAR(c.lr, 0.001, 0);
    c = resolve(r, "fc", "Solvers");
    ck_assert_int_eq(c.type, QC_SOLVER_SGD);
    NEAR(c.lr, 0.01, 0);
    qc_recipe_free(r);
}
END_TEST

START_TEST(test_recipe_errors)
{
    expect_error("[n]\nQActSolver.Beta1=1\n", false, "n", "QActSolver",
                 "t.ini:2: [n] QActSolver.Beta1=1: expected a number in [0, 1)");
    {   /* CosineDecay without MaxIterations: 0, "the whole run" (set by the trainer) */
        struct qc_recipe *r = load("[n]\nSolvers.LearningRatePolicy=CosineDecay\n", false);
        struct qc_solver_cfg c = resolve(r, "n", "WeightsSolver");
        ck_assert_int_eq(c.policy, QC_LR_COSINE);
        ck_assert_int_eq(c.max_iterations, 0);
        qc_recipe_free(r);
    }
    /* global solver keys are checked by the recipe schema at load */
    expect_load_error("Solvers=Foo\n[n]\n", "t.ini:1: [] Solvers=Foo: expected one of SGD|Adam");
    expect_load_error("Epochs=3\nSolvers.Momentum=2\n", "t.ini:2:");
    expect_load_error("Solvers.IterationSize=0\n", "t.ini:1:");
    expect_load_error("Solvers.LearningRatePolicy=Poly\n", "t.ini:1:");
    expect_load_error("Solvers.LearningRate=fast\n", "t.ini:1");
}
END_TEST

Suite *qc_suite_solver(void)
{
    Suite *s = suite_create("solver");
    TCase *tc = tcase_create("kernels");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_sgd_hand);
    tcase_add_test(tc, test_adam_hand);
    tcase_add_test(tc, test_torch_sgd);
    tcase_add_test(tc, test_torch_adam);
    tcase_add_test(tc, test_iteration_size);
    tcase_add_test(tc, test_threads);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("lr_policy");
    tcase_add_test(tc, test_lr_none_step);
    tcase_add_test(tc, test_lr_cosine);
    tcase_add_test(tc, test_lr_warmup);
    tcase_add_test(tc, test_prepare_clock);
    suite_add_tcase(s, tc);
    tc = tcase_create("solver_recipe");
    tcase_add_test(tc, test_recipe_order);
    tcase_add_test(tc, test_recipe_sections);
    tcase_add_test(tc, test_recipe_errors);
    suite_add_tcase(s, tc);
    return s;
}
