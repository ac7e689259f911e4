/*
 * test_quant.c - the quantizer kernels of src/quant (SAT weights, CG-PACT
 * activations, LSQ): hand-computed levels for every mode and R in
 * {1, 2, 3, 15, 255} (expected integers computed once with numpy float32 /
 * float64, script below, with every non-tie value checked to lie at least
 * 2e-3 of a step away from a rounding midpoint), exact ties (round half to
 * even), the guards (m = 0, S = 0, α and s at their bounds), every R from 1 to
 * 255, finite-difference checks of the gradients where the forward is
 * differentiable, bit-exact integer images, and thread-count invariance.
 *
 * Expected values (numpy):
 *   W = [-1.3, -1.1152, -0.5355, -0.2916, 0, 0.3809, 0.9, 1.2479] (float32)
 *   t = tanh(W); m = max|t|; r = t/m; levels as in quant.h, rint = half-even;
 *   S = sqrt(F·var(k/div, ddof=1)), F = 10.
 *   SAT act: α = 2, j = clip(rint(x/(α/R)), 0, R);  LSQ: s = 0.25, k = clip(rint(x/s)).
 *
 * Finite differences.  Rounding is straight-through in every backward, so a
 * central difference of the rounded forward (piecewise constant in W and x)
 * cannot check the rounded part.  What is checked:
 *   - SAT weights: the clamp stage (no rounding) with m and S held at the
 *     values of the unperturbed forward, as N2D2 specifies (src/backend/cpu_train.h) (S enters as
 *     Q = Q_noscale/S0); the quantized modes' backward is then checked to be
 *     c times the clamp-stage gradient of the same pre-rounding map.
 *   - dα (SAT act) and ds (LSQ): the forward is differentiable in α and s away
 *     from rounding steps (j fixed): FD gives Σ dy·j/R resp. Σ dy·j inside,
 *     and exactly the clipped terms outside.  The backward adds the STE term
 *     −Σ_inside dy·x/α resp. −Σ_inside dy·v; the test checks
 *     backward == FD − that term, elements near a step or bound excluded.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "ir/graph.h"
#include "quant/qspec.h"
#include "quant/quant.h"
#include "recipe/recipe.h"
#include "testutil.h"

#define NEAR(a, b, tol)                                                                  \
    ck_assert_msg(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g", #a, \
                  (double)(a), (double)(b))

static const int test_ranges[5] = { 1, 2, 3, 15, 255 };

static const float vec_w[8] = { -1.3f, -1.1152f, -0.5355f, -0.2916f,
                                0.0f,  0.3809f,  0.9f,     1.2479f };

/* Levels k of vec_w, [mode][range index], mode order of enum qc_sat_mode. */
static const int32_t vec_k[QC_SAT_MODE_COUNT][5][8] = {
    [QC_SAT_DEFAULT] = {
        { -1, -1, -1, -1, -1, 1, 1, 1 },
        { -2, -2, -2, 0, 0, 0, 2, 2 },
        { -3, -3, -1, -1, 1, 1, 3, 3 },
        { -15, -15, -9, -5, 1, 7, 13, 15 },
        { -255, -239, -145, -83, 1, 107, 211, 251 },
    },
    [QC_SAT_SYMMETRIC] = {
        { -1, -1, -1, -1, -1, 1, 1, 1 },   /* R = 1: the DEFAULT grid */
        { -1, -1, -1, 0, 0, 0, 1, 1 },
        { -1, -1, -1, 0, 0, 0, 1, 1 },
        { -7, -7, -4, -2, 0, 3, 6, 7 },
        { -127, -119, -72, -42, 0, 54, 106, 125 },
    },
    [QC_SAT_ASYMMETRIC] = {
        { -1, -1, -1, -1, -1, 1, 1, 1 },   /* R = 1: the DEFAULT grid */
        { -2, -2, -1, -1, 0, 0, 1, 1 },
        { -2, -2, -1, -1, 0, 0, 1, 1 },
        { -8, -8, -5, -3, 0, 3, 6, 7 },
        { -128, -120, -73, -42, 0, 53, 105, 125 },
    },
    [QC_SAT_FULLRANGE] = {
        { -1, -1, -1, -1, -1, 1, 1, 1 },
        { -2, -2, -2, 0, 0, 2, 2, 2 },
        { -3, -3, -3, -1, 1, 1, 3, 3 },
        { -15, -15, -9, -5, 1, 7, 13, 15 },
        { -255, -239, -145, -85, 1, 107, 213, 251 },
    },
};

/* r = tanh(W)/m of vec_w, m = tanh(1.3) */
static const double vec_r[8] = { -1.0,        -0.935210884, -0.568133831, -0.329115868,
                                 0.0,         0.42181623,   0.831238866,  0.983719289 };
#define VEC_M 0.861723185

static void sat_cfg(struct qc_sat_wcfg *c, enum qc_sat_mode mode, int range, bool quant,
                    bool scaling, int64_t fanout)
{
    c->mode = mode;
    c->range = range;
    c->apply_quant = quant;
    c->apply_scaling = scaling;
    c->fanout = fanout;
}

static int sat_div(enum qc_sat_mode mode, int range)
{
    if ((mode == QC_SAT_SYMMETRIC || mode == QC_SAT_ASYMMETRIC) && range >= 2)
        return range / 2;
    return range;
}

/* Deterministic uniform [lo, hi) from a 32-bit LCG. */
static float urand(uint32_t *s, float lo, float hi)
{
    *s = *s * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)((*s >> 8) * (1.0 / 16777216.0));
}

static float *falloc(int64_t n)
{
    float *p = calloc((size_t)n, sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ---- SAT weights -------------------------------------------------------------------------- */

START_TEST(test_sat_w_vectors)
{
    for (int mode = 0; mode < QC_SAT_MODE_COUNT; mode++) {
        for (int ri = 0; ri < 5; ri++) {
            int R = test_ranges[ri], div = sat_div(mode, R);
            struct qc_sat_wcfg c;
            struct qc_sat_wstate st, st2;
            float q[8];
            int32_t k[8];
            sat_cfg(&c, mode, R, true, false, 0);
            qc_sat_weight_forward(&c, vec_w, q, 8, 1, &st);
            qc_sat_weight_image(&c, vec_w, k, 8, 1, &st2);
            NEAR(st.m, VEC_M, 1e-6);
            NEAR(st.s, 1.0, 0);
            ck_assert_int_eq(st.div, div);
            ck_assert(st.scale == st2.scale);
            NEAR(st.scale, 1.0 / div, 1e-7 / div);
            for (int i = 0; i < 8; i++) {
                int32_t want = vec_k[mode][ri][i];
                /* FullRange at r = 0: R·u' lands within float rounding of the midpoint
                 * R/2 (exactly on it in IEEE single without FMA): either neighbour. */
                if (mode == QC_SAT_FULLRANGE && i == 4 && R % 2 == 1)
                    ck_assert_msg(k[i] == 1 || k[i] == -1, "FullRange R=%d k=%d", R, k[i]);
                else
                    ck_assert_msg(k[i] == want, "%s R=%d i=%d: k=%d, expected %d",
                                  qc_sat_mode_name(mode), R, i, k[i], want);
                ck_assert_msg(q[i] == (float)k[i] * st.scale, "image not bit-exact");
                NEAR(q[i], (double)k[i] / div, 1e-6);
            }
        }
    }
}
END_TEST

START_TEST(test_sat_w_clamp_stage)
{
    struct qc_sat_wcfg c;
    struct qc_sat_wstate st;
    float q[8];
    /* Default, Symmetric, FullRange: Q = r; R does not matter */
    for (int mode = QC_SAT_DEFAULT; mode < QC_SAT_MODE_COUNT; mode++) {
        if (mode == QC_SAT_ASYMMETRIC)
            continue;
        sat_cfg(&c, mode, 15, false, false, 0);
        qc_sat_weight_forward(&c, vec_w, q, 8, 1, &st);
        ck_assert_int_eq(st.div, 1);
        for (int i = 0; i < 8; i++)
            NEAR(q[i], vec_r[i], 2e-7);
    }
    /* Asymmetric, R = 15 (R' = 7): Q = p = (1 + 1/14)·r − 1/14 */
    static const double p15[8] = { -1.14285707, -1.07344019, -0.680143416, -0.424052685,
                                   -0.0714285746, 0.380517393, 0.819184422, 0.982556283 };
    sat_cfg(&c, QC_SAT_ASYMMETRIC, 15, false, false, 0);
    qc_sat_weight_forward(&c, vec_w, q, 8, 1, &st);
    for (int i = 0; i < 8; i++)
        NEAR(q[i], p15[i], 3e-7);
    /* with scaling, F = 10: S = sqrt(10·var(r)) = 2.41954779, and 2.59237248 for p */
    sat_cfg(&c, QC_SAT_DEFAULT, 15, false, true, 10);
    qc_sat_weight_forward(&c, vec_w, q, 8, 1, &st);
    NEAR(st.s, 2.41954779, 2e-6);
    for (int i = 0; i < 8; i++)
        NEAR(q[i], vec_r[i] / 2.41954779, 2e-7);
    sat_cfg(&c, QC_SAT_ASYMMETRIC, 15, false, true, 10);
    qc_sat_weight_forward(&c, vec_w, q, 8, 1, &st);
    NEAR(st.s, 2.59237248, 2e-6);
    for (int i = 0; i < 8; i++)
        NEAR(q[i], p15[i] / 2.59237248, 2e-7);
}
END_TEST

START_TEST(test_sat_w_scaling)
{
    /* S = sqrt(F·var_unbiased(k/div)), F = 10 (numpy, ddof=1) */
    static const struct {
        enum qc_sat_mode mode;
        int range;
        double s;
    } cases[] = {
        { QC_SAT_DEFAULT, 3, 2.51976315 },    { QC_SAT_DEFAULT, 15, 2.50966386 },
        { QC_SAT_SYMMETRIC, 3, 2.63899331 },  { QC_SAT_SYMMETRIC, 15, 2.4743583 },
        { QC_SAT_ASYMMETRIC, 3, 3.77964473 }, { QC_SAT_ASYMMETRIC, 15, 2.68892557 },
    };
    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        struct qc_sat_wcfg c;
        struct qc_sat_wstate st;
        float q[8];
        int32_t k[8];
        int div = sat_div(cases[ci].mode, cases[ci].range);
        sat_cfg(&c, cases[ci].mode, cases[ci].range, true, true, 10);
        qc_sat_weight_forward(&c, vec_w, q, 8, 1, &st);
        qc_sat_weight_image(&c, vec_w, k, 8, 1, &st);
        NEAR(st.s, cases[ci].s, 1e-6 * cases[ci].s);
        NEAR(st.scale, 1.0 / (div * cases[ci].s), 1e-6 / (div * cases[ci].s));
        for (int i = 0; i < 8; i++) {
            ck_assert(q[i] == (float)k[i] * st.scale);
            NEAR(q[i], k[i] / (div * cases[ci].s), 1e-6);
        }
    }
    /* FullRange and every mode at R = 255: S against a double recomputation from k */
    for (int mode = 0; mode < QC_SAT_MODE_COUNT; mode++) {
        struct qc_sat_wcfg c;
        struct qc_sat_wstate st;
        int32_t k[8];
        double sum = 0, sq = 0;
        int div = sat_div(mode, 255);
        sat_cfg(&c, mode, 255, true, true, 10);
        qc_sat_weight_image(&c, vec_w, k, 8, 1, &st);
        for (int i = 0; i < 8; i++)
            sum += (double)k[i] / div;
        for (int i = 0; i < 8; i++)
            sq += ((double)k[i] / div - sum / 8) * ((double)k[i] / div - sum / 8);
        NEAR(st.s, sqrt(10 * sq / 7), 1e-6);
    }
}
END_TEST

START_TEST(test_sat_w_ties)
{
    struct qc_sat_wcfg c;
    /* Default R = 2: r = ±0.5 -> R·u = 0.5 / 1.5 -> j = 0 / 2 (half-even) */
    sat_cfg(&c, QC_SAT_DEFAULT, 2, true, false, 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, -0.5f), -2);
    ck_assert_int_eq(qc_sat_weight_level(&c, 0.5f), 2);
    /* Default R = 1: r = 0 -> u = 0.5 -> j = 0 -> k = -1 (binary; exact 0 maps to -1) */
    sat_cfg(&c, QC_SAT_DEFAULT, 1, true, false, 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, 0.0f), -1);
    ck_assert_int_eq(qc_sat_weight_level(&c, 1.0f), 1);
    ck_assert_int_eq(qc_sat_weight_level(&c, -1.0f), -1);
    /* Default R = 3 and 15 at r = 0: 1.5 -> 2 (k = 1), 7.5 -> 8 (k = 1) */
    sat_cfg(&c, QC_SAT_DEFAULT, 3, true, false, 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, 0.0f), 1);
    sat_cfg(&c, QC_SAT_DEFAULT, 15, true, false, 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, 0.0f), 1);
    /* Symmetric R = 4 (R' = 2): 0.25·2 = 0.5 -> 0, 0.75·2 = 1.5 -> 2, -0.75 -> -2 */
    sat_cfg(&c, QC_SAT_SYMMETRIC, 4, true, false, 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, 0.25f), 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, 0.75f), 2);
    ck_assert_int_eq(qc_sat_weight_level(&c, -0.75f), -2);
    ck_assert_int_eq(qc_sat_weight_level(&c, -0.25f), 0);
    /* Asymmetric R = 2 (R' = 1): p = 1.5r − 0.5; r = 0 -> -0.5 -> 0; r = -1 -> -2 */
    sat_cfg(&c, QC_SAT_ASYMMETRIC, 2, true, false, 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, 0.0f), 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, -1.0f), -2);
    ck_assert_int_eq(qc_sat_weight_level(&c, 1.0f), 1);
    /* Asymmetric R = 255 (R' = 127): r = 0 -> -0.5 -> 0; r = ±1 -> -128, 127 */
    sat_cfg(&c, QC_SAT_ASYMMETRIC, 255, true, false, 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, 0.0f), 0);
    ck_assert_int_eq(qc_sat_weight_level(&c, -1.0f), -128);
    ck_assert_int_eq(qc_sat_weight_level(&c, 1.0f), 127);
}
END_TEST

START_TEST(test_sat_w_zero_and_guards)
{
    static const int ranges[4] = { 1, 2, 15, 255 };
    float w[6] = { 0 }, q[6], dq[6] = { 1, -2, 3, -4, 5, -6 }, dw[6];
    int32_t k[6];
    for (int mode = 0; mode < QC_SAT_MODE_COUNT; mode++)
        for (int ri = 0; ri < 4; ri++)
            for (int flags = 0; flags < 4; flags++) {
                struct qc_sat_wcfg c;
                struct qc_sat_wstate st;
                sat_cfg(&c, mode, ranges[ri], flags & 1, flags & 2, 9);
                qc_sat_weight_forward(&c, w, q, 6, 1, &st);
                ck_assert(st.m == 0.0f);
                NEAR(st.s, 1.0, 0);
                memset(dw, 0, sizeof(dw));
                qc_sat_weight_backward(&c, &st, w, dq, dw, 6, 1);
                for (int i = 0; i < 6; i++) {
                    ck_assert_msg(q[i] == 0.0f, "all-zero W: Q = %g", q[i]);
                    ck_assert(isfinite(dw[i]) && fabsf(dw[i]) >= fabsf(dq[i]));
                }
                if (flags & 1) {
                    qc_sat_weight_image(&c, w, k, 6, 1, &st);
                    for (int i = 0; i < 6; i++)
                        ck_assert_int_eq(k[i], 0);
                }
            }
    /* every Q equal (var 0, a constant W): S = sqrt(F·mean(Q²)), |Q/S| = 1/sqrt(F);
     * N = 1 -> no scaling.  R = 1: k = 1, Q = 1, F = 100: S = 10, Q = 0.1 */
    struct qc_sat_wcfg c;
    struct qc_sat_wstate st;
    float same[4] = { 0.5f, 0.5f, 0.5f, 0.5f };
    sat_cfg(&c, QC_SAT_DEFAULT, 1, true, true, 100);
    qc_sat_weight_forward(&c, same, q, 4, 1, &st);
    NEAR(st.s, 10.0, 1e-6);
    for (int i = 0; i < 4; i++)
        NEAR(q[i], 0.1, 1e-7);
    /* R = 15, W = −0.02 everywhere: k = −15, Q = −1; F = 9: S = 3, Q = −1/3, and
     * dW = dQ·(1 − t²)/(m·S), t = tanh(−0.02), m = |t| */
    float cst[6] = { -0.02f, -0.02f, -0.02f, -0.02f, -0.02f, -0.02f };
    double t = tanh(-0.02);
    sat_cfg(&c, QC_SAT_DEFAULT, 15, true, true, 9);
    qc_sat_weight_forward(&c, cst, q, 6, 1, &st);
    NEAR(st.s, 3.0, 1e-6);
    memset(dw, 0, sizeof(dw));
    qc_sat_weight_backward(&c, &st, cst, dq, dw, 6, 1);
    for (int i = 0; i < 6; i++) {
        NEAR(q[i], -1.0 / 3.0, 1e-7);
        NEAR(dw[i], dq[i] * (1.0 - t * t) / (fabs(t) * 3.0), 1e-3 * fabsf(dw[i]));
    }
    qc_sat_weight_image(&c, cst, k, 6, 1, &st);
    for (int i = 0; i < 6; i++)
        ck_assert(q[i] == (float)k[i] * st.scale);
    /* clamp stage: r = 1, F = 16: S = 4, Q = 0.25 */
    sat_cfg(&c, QC_SAT_DEFAULT, 15, false, true, 16);
    qc_sat_weight_forward(&c, same, q, 4, 1, &st);
    NEAR(st.s, 4.0, 1e-6);
    for (int i = 0; i < 4; i++)
        NEAR(q[i], 0.25, 1e-7);
    sat_cfg(&c, QC_SAT_DEFAULT, 15, false, true, 100);
    qc_sat_weight_forward(&c, same, q, 1, 1, &st);
    NEAR(st.s, 1.0, 0);
    ck_assert(q[0] == 1.0f);
}
END_TEST

START_TEST(test_sat_w_every_range)
{
    enum { N = 257 };
    float w[N], q[N];
    int32_t k[N];
    uint32_t seed = 7;
    for (int i = 0; i < N; i++)
        w[i] = urand(&seed, -2.0f, 2.0f);
    w[3] = 2.5f;     /* the max: r = 1  */
    w[5] = -2.5f;    /* and r = -1      */
    for (int mode = 0; mode < QC_SAT_MODE_COUNT; mode++)
        for (int R = 1; R <= 255; R++) {
            struct qc_sat_wcfg c;
            struct qc_sat_wstate st;
            int div = sat_div(mode, R);
            int lo = -div, hi = div;
            if (mode == QC_SAT_ASYMMETRIC && R >= 2)
                lo = -div - 1;
            sat_cfg(&c, mode, R, true, R % 2 == 0, 9);
            qc_sat_weight_forward(&c, w, q, N, 1, &st);
            qc_sat_weight_image(&c, w, k, N, 1, &st);
            /* one Check assertion per range, not per element: Check records
             * every assertion through a file, 800,000 of them took seconds */
            int bad = -1;
            for (int i = 0; i < N && bad < 0; i++)
                if (k[i] < lo || k[i] > hi ||
                    ((mode == QC_SAT_DEFAULT || mode == QC_SAT_FULLRANGE || R == 1) &&
                     (k[i] - R) % 2 != 0) ||
                    q[i] != (float)k[i] * st.scale)
                    bad = i;
            ck_assert_msg(
                bad < 0, "%s R=%d: k[%d]=%d (levels %d..%d, parity of R), q=%g, k*scale=%g",
                qc_sat_mode_name(mode), R, bad, bad < 0 ? 0 : k[bad], lo, hi,
                bad < 0 ? 0.0 : (double)q[bad], bad < 0 ? 0.0 : (double)((float)k[bad] * st.scale));
            ck_assert_int_eq(k[3], hi);
            ck_assert_int_eq(k[5], lo);
            if (R == 1 && !c.apply_scaling) {
                int n_pm1 = 0;
                for (int i = 0; i < N; i++)
                    n_pm1 += q[i] == 1.0f || q[i] == -1.0f;
                ck_assert_int_eq(n_pm1, N);
            }
        }
}
END_TEST

/* L(W) = Σ g_i · Q_i(W) with the clamp stage of `mode` (no scaling), over S0. */
static double clamp_loss(enum qc_sat_mode mode, int R, const float *w, const float *g, int n,
                         double s0)
{
    struct qc_sat_wcfg c;
    struct qc_sat_wstate st;
    float q[16];
    double l = 0;
    sat_cfg(&c, mode, R, false, false, 0);
    qc_sat_weight_forward(&c, w, q, n, 1, &st);
    for (int i = 0; i < n; i++)
        l += (double)g[i] * q[i] / s0;
    return l;
}

START_TEST(test_sat_w_fd)
{
    enum { N = 16 };
    static const enum qc_sat_mode modes[4] = { QC_SAT_DEFAULT, QC_SAT_SYMMETRIC,
                                               QC_SAT_ASYMMETRIC, QC_SAT_FULLRANGE };
    float w[N], g[N], dw[N], dwq[N], fd[N];
    uint32_t seed = 11;
    for (int i = 0; i < N; i++) {
        w[i] = urand(&seed, -1.5f, 1.5f);
        g[i] = urand(&seed, -1.0f, 1.0f);
    }
    w[0] = 1.9f;   /* the max of |tanh|, never perturbed: m stays fixed */
    for (int mi = 0; mi < 4; mi++)
        for (int scaling = 0; scaling < 2; scaling++) {
            enum qc_sat_mode mode = modes[mi];
            int R = 15;
            struct qc_sat_wcfg c;
            struct qc_sat_wstate st;
            float q[N];
            sat_cfg(&c, mode, R, false, scaling, 12);
            qc_sat_weight_forward(&c, w, q, N, 1, &st);
            memset(dw, 0, sizeof(dw));
            qc_sat_weight_backward(&c, &st, w, g, dw, N, 1);
            /* central differences of the clamp stage, m and S held at st */
            double s0 = scaling ? st.s : 1.0;
            const float h = 2e-3f;
            fd[0] = dw[0];
            for (int i = 1; i < N; i++) {
                float wp[N], wm[N];
                memcpy(wp, w, sizeof(wp));
                memcpy(wm, w, sizeof(wm));
                wp[i] += h;
                wm[i] -= h;
                fd[i] = (float)((clamp_loss(mode, R, wp, g, N, s0) -
                                 clamp_loss(mode, R, wm, g, N, s0)) / (double)(wp[i] - wm[i]));
            }
            double err = qc_test_rel_err(dw, fd, N);
            ck_assert_msg(err <= 1e-3, "%s scaling=%d: rel err %g", qc_sat_mode_name(mode),
                          scaling, err);
            /* quantized: the same pre-rounding map's slope, times c for FullRange */
            struct qc_sat_wcfg cq;
            struct qc_sat_wstate sq;
            sat_cfg(&cq, mode, R, true, scaling, 12);
            qc_sat_weight_forward(&cq, w, q, N, 1, &sq);
            memset(dwq, 0, sizeof(dwq));
            qc_sat_weight_backward(&cq, &sq, w, g, dwq, N, 1);
            double cm = mode == QC_SAT_FULLRANGE ? 1.0 + 0.9998 / R : 1.0;
            double ratio = scaling ? (double)st.s / sq.s : 1.0;
            for (int i = 0; i < N; i++)
                NEAR(dwq[i], dw[i] * cm * ratio, 1e-6 * (fabs(dw[i]) + 1e-3));
        }
}
END_TEST

/* ---- SAT activations ---------------------------------------------------------------------- */

static const float act_x[8] = { -1.0f, 0.0f, 0.3f, 0.77f, 1.2f, 1.99f, 2.0f, 3.5f };
static const int32_t act_j[5][8] = {
    { 0, 0, 0, 0, 1, 1, 1, 1 },       { 0, 0, 0, 1, 1, 2, 2, 2 },
    { 0, 0, 0, 1, 2, 3, 3, 3 },       { 0, 0, 2, 6, 9, 15, 15, 15 },
    { 0, 0, 38, 98, 153, 254, 255, 255 },
};

START_TEST(test_sat_act_vectors)
{
    for (int ri = 0; ri < 5; ri++) {
        int R = test_ranges[ri];
        float y[8], h = qc_sat_act_scale(2.0f, R);
        ck_assert(h == 2.0f / (float)R);
        qc_sat_act_forward(2.0f, R, act_x, y, 8, 1);
        for (int i = 0; i < 8; i++) {
            ck_assert_msg(y[i] == (float)act_j[ri][i] * h, "R=%d i=%d y=%g", R, i, y[i]);
            NEAR(y[i], 2.0 * act_j[ri][i] / R, 1e-6);
        }
    }
    /* in place */
    float x[8];
    memcpy(x, act_x, sizeof(x));
    qc_sat_act_forward(2.0f, 15, x, x, 8, 1);
    NEAR(x[3], 0.8, 1e-6);
}
END_TEST

START_TEST(test_sat_act_ties_and_guard)
{
    /* α = 4, R = 4: h = 1, x/h = 0.5, 1.5, 2.5, 3.5 -> 0, 2, 2, 4 (half-even) */
    float x[4] = { 0.5f, 1.5f, 2.5f, 3.5f }, y[4];
    qc_sat_act_forward(4.0f, 4, x, y, 4, 1);
    ck_assert(y[0] == 0.0f && y[1] == 2.0f && y[2] == 2.0f && y[3] == 4.0f);
    /* α below the guard: the kernels use 1e-3 */
    static const float alphas[3] = { 0.0f, -1.0f, 1e-5f };
    for (int a = 0; a < 3; a++) {
        float xs[4] = { -1.0f, 0.0004f, 0.5f, 5.0f }, ys[4];
        float h = qc_sat_act_scale(alphas[a], 1);
        ck_assert(h == QC_SAT_ALPHA_MIN);
        NEAR(qc_sat_alpha_used(alphas[a]), 1e-3, 1e-10);
        qc_sat_act_forward(alphas[a], 1, xs, ys, 4, 1);
        ck_assert(ys[0] == 0.0f && ys[1] == 0.0f && ys[2] == h && ys[3] == h);
        float dx[4] = { 0 }, dy[4] = { 1, 1, 1, 1 }, da = 0;
        qc_sat_act_backward(alphas[a], 1, xs, dy, dx, 4, 1, &da);
        ck_assert(isfinite(da));
        NEAR(da, 2.0 + (0.0 - 0.0004 / 1e-3), 1e-5);   /* x=4e-4: j = 0, q = 0.4 */
        ck_assert(dx[0] == 0 && dx[1] == 1 && dx[2] == 0 && dx[3] == 0);
    }
    float al = -3.0f;
    qc_sat_alpha_clamp(&al);
    ck_assert(al == QC_SAT_ALPHA_MIN);
    al = 6.0f;
    qc_sat_alpha_clamp(&al);
    ck_assert(al == 6.0f);
}
END_TEST

START_TEST(test_sat_act_backward_hand)
{
    /* α = 2, R = 15, dy = 1: dα terms 0, 0, 2/15 − .15, 6/15 − .385, 9/15 − .6,
     * 1 − .995, 1 (x = α), 1 (x > α); dx passes for 0 < x ≤ α */
    float dy[8] = { 1, 1, 1, 1, 1, 1, 1, 1 }, dx[8], da = 0.25f;
    for (int i = 0; i < 8; i++)
        dx[i] = 0.5f;
    qc_sat_act_backward(2.0f, 15, act_x, dy, dx, 8, 1, &da);
    double want = 2.0 / 15 - 0.15 + 6.0 / 15 - 0.385 + 0.0 + 0.005 + 2.0;
    NEAR(da, 0.25 + want, 1e-6);
    static const float mask[8] = { 0, 0, 1, 1, 1, 1, 1, 0 };
    for (int i = 0; i < 8; i++)
        NEAR(dx[i], 0.5f + mask[i], 0);
    /* dx == NULL: only dα */
    float da2 = 0;
    qc_sat_act_backward(2.0f, 15, act_x, dy, NULL, 8, 1, &da2);
    NEAR(da2, want, 1e-6);
}
END_TEST

/* Σ dy·y(α) in double */
static double act_loss(float alpha, int R, const float *x, const float *dy, float *y, int n)
{
    double l = 0;
    qc_sat_act_forward(alpha, R, x, y, n, 1);
    for (int i = 0; i < n; i++)
        l += (double)dy[i] * y[i];
    return l;
}

START_TEST(test_sat_act_fd)
{
    /* α = R·2^-6 and α ± R·2^-18: every grid step α/R is exact in float, so every y = j·h
     * and the sums are exact and the difference quotient has no rounding noise. */
    enum { N = 400 };
    static const int ranges[3] = { 3, 15, 255 };
    float *x = falloc(N), *dy = falloc(N), *y = falloc(N);
    for (int ri = 0; ri < 3; ri++) {
        int R = ranges[ri];
        float alpha = (float)R * 0x1p-6f, hh = (float)R * 0x1p-18f;
        uint32_t seed = 23 + (uint32_t)R;
        double ste = 0;
        for (int i = 0; i < N; i++) {
            x[i] = urand(&seed, -0.5f * alpha, 1.5f * alpha);
            dy[i] = urand(&seed, -1.0f, 1.0f);
            double z = R * (double)x[i] / alpha, fr = z - floor(z);
            /* away from steps (0.2 of a step; α ± hh moves z by < 0.1) and from 0 and α */
            if (fabs(fr - 0.5) < 0.2 || fabs(x[i]) < 0.01 * alpha ||
                fabs(x[i] - alpha) < 0.01 * alpha)
                dy[i] = 0.0f;
            if (x[i] > 0 && x[i] < alpha)
                ste += (double)dy[i] * x[i] / alpha;
        }
        float da = 0;
        qc_sat_act_backward(alpha, R, x, dy, NULL, N, 1, &da);
        double fd = (act_loss(alpha + hh, R, x, dy, y, N) -
                     act_loss(alpha - hh, R, x, dy, y, N)) / (2.0 * hh);
        double want = fd - ste;
        ck_assert_msg(fabs(da - want) <= 1e-3 * fabs(want), "R=%d dα=%.7g FD−STE=%.7g", R,
                      (double)da, want);
    }
    free(x);
    free(dy);
    free(y);
}
END_TEST

START_TEST(test_sat_act_every_range)
{
    enum { N = 300 };
    float x[N], y[N];
    uint32_t seed = 3;
    for (int i = 0; i < N; i++)
        x[i] = urand(&seed, -1.0f, 7.0f);
    for (int R = 1; R <= 255; R++) {
        float h = qc_sat_act_scale(6.0f, R);
        int bad = 0; /* one assertion per range (see test_lsq_every_range) */
        qc_sat_act_forward(6.0f, R, x, y, N, 1);
        for (int i = 0; i < N; i++) {
            float j = rintf(y[i] / h);
            bad += !(j >= 0 && j <= R && y[i] == j * h) || (x[i] >= 6.0f && j != R);
        }
        ck_assert_msg(bad == 0, "R=%d: %d values off their level or range", R, bad);
    }
}
END_TEST

/* ---- LSQ ---------------------------------------------------------------------------------- */

static const float lsq_x[9] = { -3.3f, -1.1f, -0.6f, -0.1f, 0.0f, 0.2f, 0.7f, 1.9f, 40.0f };
static const int32_t lsq_k[2][5][9] = {
    { /* signed */
      { -1, -1, -1, 0, 0, 0, 0, 0, 0 },
      { -1, -1, -1, 0, 0, 0, 0, 0, 0 },
      { -2, -2, -2, 0, 0, 1, 1, 1, 1 },
      { -8, -4, -2, 0, 0, 1, 3, 7, 7 },
      { -13, -4, -2, 0, 0, 1, 3, 8, 127 } },
    { /* unsigned */
      { 0, 0, 0, 0, 0, 1, 1, 1, 1 },
      { 0, 0, 0, 0, 0, 1, 2, 2, 2 },
      { 0, 0, 0, 0, 0, 1, 3, 3, 3 },
      { 0, 0, 0, 0, 0, 1, 3, 8, 15 },
      { 0, 0, 0, 0, 0, 1, 3, 8, 160 } },
};

START_TEST(test_lsq_vectors)
{
    for (int sg = 0; sg < 2; sg++)
        for (int ri = 0; ri < 5; ri++) {
            int R = test_ranges[ri], qn, qp;
            float y[9];
            int32_t k[9];
            qc_lsq_levels(R, sg == 0, &qn, &qp);
            qc_lsq_forward(0.25f, qn, qp, lsq_x, y, 9, 1);
            qc_lsq_image(0.25f, qn, qp, lsq_x, k, 9, 1);
            for (int i = 0; i < 9; i++) {
                ck_assert_msg(k[i] == lsq_k[sg][ri][i], "signed=%d R=%d i=%d k=%d", !sg, R,
                              i, k[i]);
                ck_assert(y[i] == (float)k[i] * 0.25f);
            }
        }
}
END_TEST

START_TEST(test_lsq_levels_init_guard)
{
    int qn, qp;
    static const int want[5][2] = { { 1, 0 }, { 1, 0 }, { 2, 1 }, { 8, 7 }, { 128, 127 } };
    for (int ri = 0; ri < 5; ri++) {
        qc_lsq_levels(test_ranges[ri], true, &qn, &qp);
        ck_assert_int_eq(qn, want[ri][0]);
        ck_assert_int_eq(qp, want[ri][1]);
        qc_lsq_levels(test_ranges[ri], false, &qn, &qp);
        ck_assert_int_eq(qn, 0);
        ck_assert_int_eq(qp, test_ranges[ri]);
    }
    NEAR(qc_lsq_grad_scale(100, 7), 0.0377964473, 1e-10);
    NEAR(qc_lsq_grad_scale(100, 0), 0.1, 1e-12);   /* Qp = 0 taken as 1 */
    ck_assert(isfinite(qc_lsq_grad_scale(0, 0)));
    /* s0 = 2·mean|x|/sqrt(Qp): mean|x| = 2.5 */
    float x[4] = { 1, -2, 3, -4 }, z[4] = { 0 };
    NEAR(qc_lsq_init_step(x, 4, 7, 1), 1.88982237, 1e-6);
    NEAR(qc_lsq_init_step(x, 4, 0, 1), 5.0, 1e-6);
    ck_assert(qc_lsq_init_step(z, 4, 7, 1) == QC_LSQ_STEP_MIN);
    ck_assert(qc_lsq_init_step(z, 0, 7, 1) == QC_LSQ_STEP_MIN);
    /* ties: s = 1 and s = 0.5 */
    float t[6] = { 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f }, y[6];
    qc_lsq_forward(1.0f, 8, 7, t, y, 6, 1);
    ck_assert(y[0] == 0 && y[1] == 2 && y[2] == 2 && y[3] == 0 && y[4] == -2 && y[5] == -2);
    float t2[3] = { 0.25f, 0.75f, 1.25f };
    qc_lsq_forward(0.5f, 8, 7, t2, y, 3, 1);
    ck_assert(y[0] == 0.0f && y[1] == 1.0f && y[2] == 1.0f);
    /* guard: s <= 1e-8 uses 1e-8 */
    float g[3] = { 3e-8f, -5e-7f, 1.0f }, dx[3] = { 0 }, dy[3] = { 1, 1, 1 }, ds = 0;
    qc_lsq_forward(0.0f, 8, 7, g, y, 3, 1);
    ck_assert(y[0] == 3.0f * QC_LSQ_STEP_MIN && y[1] == -8.0f * QC_LSQ_STEP_MIN &&
              y[2] == 7.0f * QC_LSQ_STEP_MIN);
    qc_lsq_backward(-1.0f, 8, 7, 1.0, g, dy, dx, 3, 1, &ds);
    ck_assert(isfinite(ds));
    float s = -2.0f;
    qc_lsq_step_clamp(&s);
    ck_assert(s == QC_LSQ_STEP_MIN);
    ck_assert(qc_lsq_step_used(0.3f) == 0.3f);
}
END_TEST

START_TEST(test_lsq_backward_hand)
{
    /* s = 1, R = 15 signed ([-8, 7]): terms -8, -8, -0.4, 0.3, -0.5, -0.2, 7, 7 (sum -2.8);
     * dx passes for -8 < v < 7 only */
    float x[8] = { -9.0f, -8.0f, -7.6f, -0.3f, 0.5f, 2.2f, 7.0f, 7.5f };
    float dy[8] = { 1, 1, 1, 1, 1, 1, 1, 1 }, dx[8] = { 0 }, ds = 1.0f;
    double g = qc_lsq_grad_scale(8, 7);
    qc_lsq_backward(1.0f, 8, 7, g, x, dy, dx, 8, 1, &ds);
    NEAR(ds, 1.0 + g * -2.8, 1e-6);
    static const float mask[8] = { 0, 0, 1, 1, 1, 1, 0, 0 };
    for (int i = 0; i < 8; i++)
        NEAR(dx[i], mask[i], 0);
    /* unsigned [0, 15], s = 0.5: v = -1 -> 0 (clipped low, Qn = 0), v = 31 -> 15 */
    float xu[3] = { -0.5f, 1.2f, 15.5f }, du[3] = { 2, 2, 2 }, dxu[3] = { 0 }, dsu = 0;
    qc_lsq_backward(0.5f, 0, 15, 1.0, xu, du, dxu, 3, 1, &dsu);
    NEAR(dsu, 2 * 0 + 2 * (2.0 - 2.4) + 2 * 15, 1e-5);
    ck_assert(dxu[0] == 0 && dxu[1] == 2 && dxu[2] == 0);
}
END_TEST

static double lsq_loss(float s, int qn, int qp, const float *x, const float *dy, float *y,
                       int n)
{
    double l = 0;
    qc_lsq_forward(s, qn, qp, x, y, n, 1);
    for (int i = 0; i < n; i++)
        l += (double)dy[i] * y[i];
    return l;
}

START_TEST(test_lsq_fd)
{
    /* s = 2^-4 and s ± 2^-15: y = j·s± exact, as in test_sat_act_fd */
    enum { N = 400 };
    static const int ranges[3] = { 3, 15, 255 };
    float *x = falloc(N), *dy = falloc(N), *y = falloc(N);
    for (int sg = 0; sg < 2; sg++)
        for (int ri = 0; ri < 3; ri++) {
            int R = ranges[ri], qn, qp;
            float s = 0x1p-4f, h = 0x1p-15f;   /* |dv| <= |v|·2^-11 < 0.1 */
            uint32_t seed = 41 + (uint32_t)R;
            double ste = 0;
            qc_lsq_levels(R, sg == 0, &qn, &qp);
            for (int i = 0; i < N; i++) {
                x[i] = urand(&seed, -1.2f * (float)qn * s - 0.1f, 1.2f * (float)qp * s + 0.1f);
                dy[i] = urand(&seed, -1.0f, 1.0f);
                double v = (double)x[i] / s, fr = v - floor(v);
                if (fabs(fr - 0.5) < 0.2 || fabs(v + qn) < 0.3 || fabs(v - qp) < 0.3)
                    dy[i] = 0.0f;
                if (v > -qn && v < qp)
                    ste += (double)dy[i] * v;
            }
            double g = qc_lsq_grad_scale(N, qp);
            float ds = 0;
            qc_lsq_backward(s, qn, qp, g, x, dy, NULL, N, 1, &ds);
            double fd = (lsq_loss(s + h, qn, qp, x, dy, y, N) -
                         lsq_loss(s - h, qn, qp, x, dy, y, N)) / (2.0 * h);
            double want = g * (fd - ste);
            ck_assert_msg(fabs(ds - want) <= 1e-3 * fabs(want),
                          "signed=%d R=%d ds=%.7g want=%.7g", !sg, R, (double)ds, want);
        }
    free(x);
    free(dy);
    free(y);
}
END_TEST

START_TEST(test_lsq_every_range)
{
    enum { N = 300 };
    float x[N], y[N];
    int32_t k[N];
    uint32_t seed = 5;
    for (int i = 0; i < N; i++)
        x[i] = urand(&seed, -30.0f, 30.0f);
    for (int sg = 0; sg < 2; sg++)
        for (int R = 1; R <= 255; R++) {
            int qn, qp;
            qc_lsq_levels(R, sg == 0, &qn, &qp);
            float s = qc_lsq_init_step(x, N, qp, 1);
            int bad = 0; /* one assertion per range: 153,000 of them took over Check's
                          * 4 s timeout under ASan on a loaded machine */
            qc_lsq_forward(s, qn, qp, x, y, N, 1);
            qc_lsq_image(s, qn, qp, x, k, N, 1);
            for (int i = 0; i < N; i++)
                bad += k[i] < -qn || k[i] > qp || y[i] != (float)k[i] * s;
            ck_assert_msg(bad == 0, "signed=%d R=%d: %d values off their level or range", !sg, R,
                          bad);
        }
}
END_TEST

/* ---- LSQ signed activations (QAct.Signed=1) ---------------------------------------------- */

/* The spec of "[add] QAct=LSQ ... EXTRA" on a one-Add graph; returns the status. */
static enum qc_status act_spec_of(const char *extra, struct qc_quant_spec *out)
{
    static const int64_t dims[2] = { 1, 4 };
    struct qc_graph *g = qc_test_graph(13);
    struct qc_recipe *r = NULL;
    struct qc_quant_spec *specs = NULL;
    int n = 0;
    char text[256];
    enum qc_status st;
    qc_test_input(g, "X", QC_DTYPE_F32, 2, dims);
    qc_test_node(g, "Add", "add", "X,X", "Y");
    qc_test_output(g, "Y");
    snprintf(text, sizeof(text), "[add]\n%s\n", extra);
    ck_assert_int_eq(qc_recipe_load_string(text, "t.ini", false, &r), QC_OK);
    st = qc_quant_specs_from_recipe(r, g, &specs, &n);
    if (st == QC_OK) {
        ck_assert_int_eq(n, 1);
        *out = specs[0];
        out->section = NULL; /* borrowed from r, freed below */
    }
    qc_free(specs);
    qc_recipe_free(r);
    qc_graph_free(g);
    return st;
}

/* QAct.Signed=1 gives an LSQ activation the signed levels of its Range; 0 (default) keeps
 * N2D2's [0, R]; with QAct=SAT (CG-PACT, unsigned) it is a recipe error. */
START_TEST(test_lsq_signed_act_spec)
{
    struct qc_quant_spec sp;
    int qn, qp;
    static const struct {
        const char *keys;
        bool is_signed;
        int qn, qp;
    } cases[] = {
        { "QAct=LSQ\nQAct.Signed=1", true, 128, 127 },
        { "QAct=LSQ\nQAct.Signed=1\nQAct.Range=15", true, 8, 7 },
        { "QAct=LSQ\nQAct.Signed=1\nQAct.Range=3", true, 2, 1 },
        { "QAct=LSQ\nQAct.Range=15", false, 0, 15 },
        { "QAct=LSQ\nQAct.Signed=0", false, 0, 255 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(act_spec_of(cases[i].keys, &sp), QC_OK);
        ck_assert(!sp.weight && sp.method == QC_QM_LSQ);
        ck_assert_msg(sp.is_signed == cases[i].is_signed, "case %zu", i);
        qc_lsq_levels(sp.range, sp.is_signed, &qn, &qp);
        ck_assert_int_eq(qn, cases[i].qn);
        ck_assert_int_eq(qp, cases[i].qp);
    }
    ck_assert_int_eq(act_spec_of("QAct=SAT\nQAct.Signed=1", &sp), QC_ERR_RECIPE);
    ck_assert_int_eq(act_spec_of("QAct=SAT\nQAct.Signed=0", &sp), QC_OK);
    ck_assert(!sp.is_signed);
}
END_TEST

/* R = 255 signed ([-128, 127]), s = 0.5; v = x/s:
 *   v = -128.5 -> -128 (clipped), -128 -> -128 (low edge), -127.5 -> -128 (tie, even),
 *   127 -> 127 (high edge), 127.5 -> 127 (clipped), 0.5 -> 0, -1.5 -> -2, 2.5 -> 2 (ties),
 *   200 -> 127.
 * ds terms (dy = 1): -Qn at v <= -Qn, Qp at v >= Qp, rne(v) - v inside:
 *   -128 -128 -0.5 +127 +127 -0.5 -0.5 -0.5 +127 = 123; dx passes -Qn < v < Qp only.
 * Init: s0 = 2·mean|x|/sqrt(Qp) with Qp = 127 (the positive levels). */
START_TEST(test_lsq_signed_act_hand)
{
    static const float x[9] = { -64.25f, -64.0f, -63.75f, 63.5f, 63.75f,
                                0.25f,   -0.75f, 1.25f,   100.0f };
    static const int32_t want_k[9] = { -128, -128, -128, 127, 127, 0, -2, 2, 127 };
    static const float mask[9] = { 0, 0, 1, 0, 0, 1, 1, 1, 0 };
    const float dy[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    float y[9], dx[9] = { 0 }, ds = 0;
    int32_t k[9];
    int qn, qp;
    double g, mean = 0;
    qc_lsq_levels(255, true, &qn, &qp);
    g = qc_lsq_grad_scale(9, qp);
    NEAR(g, 1.0 / sqrt(9.0 * 127.0), 1e-15);
    qc_lsq_forward(0.5f, qn, qp, x, y, 9, 1);
    qc_lsq_image(0.5f, qn, qp, x, k, 9, 1);
    qc_lsq_backward(0.5f, qn, qp, g, x, dy, dx, 9, 1, &ds);
    for (int i = 0; i < 9; i++) {
        ck_assert_msg(k[i] == want_k[i], "i=%d k=%d", i, k[i]);
        ck_assert(y[i] == (float)want_k[i] * 0.5f);
        ck_assert(dx[i] == mask[i]);
        mean += fabs((double)x[i]) / 9.0;
    }
    NEAR(ds, g * 123.0, 1e-6);
    NEAR(qc_lsq_init_step(x, 9, qp, 1), 2.0 * mean / sqrt(127.0), 1e-5);
}
END_TEST

/* The activation step gradient for signed levels, as the training plan computes it
 * (g = 1/sqrt(N·Qp), N the elements per sample of a batch of 4), against central
 * differences of the forward (see the header: backward == g·(FD − STE term)). */
START_TEST(test_lsq_signed_act_fd)
{
    enum { N = 480, BATCH = 4 };
    static const int ranges[4] = { 2, 4, 15, 255 };
    float *x = falloc(N), *dy = falloc(N), *y = falloc(N);
    for (int ri = 0; ri < 4; ri++) {
        int R = ranges[ri], qn, qp;
        float s = 0x1p-4f, h = 0x1p-15f;
        uint32_t seed = 77 + (uint32_t)R;
        double ste = 0;
        qc_lsq_levels(R, true, &qn, &qp);
        for (int i = 0; i < N; i++) {
            x[i] = urand(&seed, -1.3f * (float)qn * s - 0.1f, 1.3f * (float)qp * s + 0.1f);
            dy[i] = urand(&seed, -1.0f, 1.0f);
            double v = (double)x[i] / s, fr = v - floor(v);
            if (fabs(fr - 0.5) < 0.2 || fabs(v + qn) < 0.3 || fabs(v - qp) < 0.3)
                dy[i] = 0.0f;
            if (v > -qn && v < qp)
                ste += (double)dy[i] * v;
        }
        double g = qc_lsq_grad_scale(N / BATCH, qp);
        NEAR(g, 1.0 / sqrt((double)(N / BATCH) * (qp > 0 ? qp : 1)), 1e-15);
        float ds = 0;
        qc_lsq_backward(s, qn, qp, g, x, dy, NULL, N, 1, &ds);
        double fd = (lsq_loss(s + h, qn, qp, x, dy, y, N) - lsq_loss(s - h, qn, qp, x, dy, y, N)) /
                    (2.0 * h);
        double want = g * (fd - ste);
        ck_assert_msg(fabs(ds - want) <= 1e-3 * fabs(want) + 1e-7, "R=%d ds=%.7g want=%.7g", R,
                      (double)ds, want);
    }
    free(x);
    free(dy);
    free(y);
}
END_TEST

/* ---- LSQ asymmetric activations (QAct.ZeroPoint) ----------------------------------------- */

/* QAct.ZeroPoint: 0 (default) none, Learned, Calibrated; with QAct=SAT or QAct.Signed=1, or
 * a value outside the three, a recipe error. */
START_TEST(test_lsq_zp_spec)
{
    struct qc_quant_spec sp;
    ck_assert_int_eq(act_spec_of("QAct=LSQ\nQAct.Range=15", &sp), QC_OK);
    ck_assert_int_eq(sp.zero_point, QC_ZP_NONE);
    ck_assert_int_eq(act_spec_of("QAct=LSQ\nQAct.ZeroPoint=0", &sp), QC_OK);
    ck_assert_int_eq(sp.zero_point, QC_ZP_NONE);
    ck_assert_int_eq(act_spec_of("QAct=LSQ\nQAct.ZeroPoint=Learned", &sp), QC_OK);
    ck_assert_int_eq(sp.zero_point, QC_ZP_LEARNED);
    ck_assert(!sp.is_signed);
    ck_assert_int_eq(act_spec_of("QAct=LSQ\nQAct.ZeroPoint=Calibrated", &sp), QC_OK);
    ck_assert_int_eq(sp.zero_point, QC_ZP_CALIBRATED);
    ck_assert_int_eq(act_spec_of("QAct=SAT\nQAct.ZeroPoint=Learned", &sp), QC_ERR_RECIPE);
    ck_assert_int_eq(act_spec_of("QAct=LSQ\nQAct.Signed=1\nQAct.ZeroPoint=Calibrated", &sp),
                     QC_ERR_RECIPE);
    ck_assert_int_eq(act_spec_of("QAct=SAT\nQAct.ZeroPoint=0", &sp), QC_OK);
}
END_TEST

/* R = 15 ([0, 15]), s = 0.5, zf = 3.4 -> z = 3: the levels of x/s are [-3, 12], stored
 * q = clamp(rne(x/s) + 3, 0, 15), y = s·(q − 3); v = x/s:
 *   v = -4 -> q 0 (clipped at 0), -3 -> q 0 (the 0 edge), -2.5 -> -2 (tie, even) q 1,
 *   0.5 -> 0 (tie) q 3, 1.5 -> 2 (tie) q 5, 12 -> q 15 (the R edge), 12.5, 200 -> q 15.
 * ds terms (dy = 1): -3 -3 +0.5 -0.5 +0.5 +12 +12 +12 = 30.5; dx passes -3 < v < 12 only;
 * dzf = g·Σ_{clipped} dy·(−s) = −2.5·g (five clipped elements).
 * z = clamp(rne(zf), 0, 15): 2.5 -> 2 (tie), 3.5 -> 4, -1 -> 0, 20 -> 15, NaN -> 0.
 * Init from x = {-3, -1, 0.5, 12}: s = (12 − (−3))/15 = 1, zf = rne(3/1) = 3; from
 * {-2.5, 12.5}: s = 1, zf = rne(2.5) = 2 (tie); from {1, 2, 3} (zero kept in range):
 * s = 0.2, zf = 0; with the step kept at 0.5, {-2, 4}: zf = rne(4) = 4. */
START_TEST(test_lsq_zp_hand)
{
    static const float x[8] = { -2.0f, -1.5f, -1.25f, 0.25f, 0.75f, 6.0f, 6.25f, 100.0f };
    static const int want_q[8] = { 0, 0, 1, 3, 5, 15, 15, 15 };
    static const float mask[8] = { 0, 0, 1, 1, 1, 0, 0, 0 };
    const float dy[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    float y[8], dx[8] = { 0 }, ds = 0, dz = 0, zf = 3.4f, step, z0;
    double g = qc_lsq_grad_scale(8, 15);
    struct qc_backend *be;
    float y2[8], dx2[8] = { 0 }, ds2 = 0, dz2 = 0, s05 = 0.5f;

    ck_assert_int_eq(qc_lsq_zero_point(2.5f, 0, 15), 2);
    ck_assert_int_eq(qc_lsq_zero_point(3.5f, 0, 15), 4);
    ck_assert_int_eq(qc_lsq_zero_point(-1.0f, 0, 15), 0);
    ck_assert_int_eq(qc_lsq_zero_point(20.0f, 0, 15), 15);
    ck_assert_int_eq(qc_lsq_zero_point(NAN, 0, 15), 0);
    ck_assert_int_eq(qc_lsq_zero_point(zf, 0, 15), 3);
    qc_lsq_forward_zp(0.5f, zf, 0, 15, x, y, 8, 1);
    qc_lsq_backward_zp(0.5f, zf, 0, 15, g, x, dy, dx, 8, 1, &ds, &dz);
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(y[i] == 0.5f * (float)(want_q[i] - 3), "i=%d y=%g", i, (double)y[i]);
        ck_assert(dx[i] == mask[i]);
    }
    NEAR(ds, g * 30.5, 1e-6);
    NEAR(dz, -2.5 * g, 1e-6);
    /* z frozen (Calibrated): the same dx and ds, no zero-point gradient */
    ds = 0;
    qc_lsq_backward_zp(0.5f, zf, 0, 15, g, x, dy, NULL, 8, 1, &ds, NULL);
    NEAR(ds, g * 30.5, 1e-6);
    /* z = 0 is the symmetric kernel, bit for bit */
    qc_lsq_forward(0.5f, 0, 15, x, y2, 8, 1);
    qc_lsq_forward_zp(0.5f, 0.0f, 0, 15, x, y, 8, 1);
    ck_assert(memcmp(y, y2, sizeof(y)) == 0);

    /* the backend's kernels with the zero-point pointer */
    ck_assert_int_eq(qc_backend_new("cpu", 1, &be), QC_OK);
    qc_lsq_forward_zp(0.5f, zf, 0, 15, x, y, 8, 1);
    ck_assert_int_eq(
        qc_backend_run(
            be, QC_TK_LSQ_FORWARD,
            &(struct qc_tk_lsq_forward){
                .step = &s05, .qn = 0, .qp = 15, .x = x, .y = y2, .n = 8, .zero_point = &zf }),
        QC_OK);
    ck_assert(memcmp(y, y2, sizeof(y)) == 0);
    ck_assert_int_eq(qc_backend_run(be, QC_TK_LSQ_BACKWARD,
                                    &(struct qc_tk_lsq_backward){ .step = &s05,
                                                                  .qn = 0,
                                                                  .qp = 15,
                                                                  .g = g,
                                                                  .x = x,
                                                                  .dy = dy,
                                                                  .dx = dx2,
                                                                  .n = 8,
                                                                  .dstep = &ds2,
                                                                  .zero_point = &zf,
                                                                  .dzero_point = &dz2 }),
                     QC_OK);
    ck_assert(memcmp(dx, dx2, sizeof(dx)) == 0);
    NEAR(ds2, g * 30.5, 1e-6);
    ck_assert(dz2 == dz);

    {
        static const float a[4] = { -3.0f, -1.0f, 0.5f, 12.0f }, b[2] = { -2.5f, 12.5f },
                           c[3] = { 1.0f, 2.0f, 3.0f }, d[2] = { -2.0f, 4.0f };
        qc_lsq_init_zero_point(a, 4, 0, 15, false, 1, &step, &z0);
        ck_assert(step == 1.0f && z0 == 3.0f);
        qc_lsq_init_zero_point(b, 2, 0, 15, false, 1, &step, &z0);
        ck_assert(step == 1.0f && z0 == 2.0f);
        qc_lsq_init_zero_point(c, 3, 0, 15, false, 1, &step, &z0);
        NEAR(step, 0.2, 1e-7);
        ck_assert(z0 == 0.0f);
        step = 0.5f;
        qc_lsq_init_zero_point(d, 2, 0, 15, true, 1, &step, &z0);
        ck_assert(step == 0.5f && z0 == 4.0f);
        step = 0.0f;
        z0 = -1.0f;
        ck_assert_int_eq(
            qc_backend_run(
                be, QC_TK_LSQ_INIT_STEP,
                &(struct qc_tk_lsq_init_step){
                    .x = a, .n = 4, .qp = 15, .step = &step, .zero_point = &z0, .qn = 0 }),
            QC_OK);
        ck_assert(step == 1.0f && z0 == 3.0f);
    }
    qc_backend_free(be);
}
END_TEST

static double lsq_zp_loss(float s, float zf, int R, const float *x, const float *dy, float *y,
                          int n)
{
    double l = 0;
    qc_lsq_forward_zp(s, zf, 0, R, x, y, n, 1);
    for (int i = 0; i < n; i++)
        l += (double)dy[i] * y[i];
    return l;
}

/*
 * Finite differences of the asymmetric quantizer, R in {3, 15, 255}, z inside [0, R]
 * (the activation plan's g = 1/sqrt(N·Qp) for a batch of 4).  Points within 0.3 of a
 * rounding midpoint or within 1.5 levels of the bounds get dy = 0, so that:
 *   ds:  central differences in s (h = 2^-15; j fixed) plus the STE term, as
 *        test_lsq_signed_act_fd;
 *   dx:  a central difference over one level (x ± s): rne(v ± 1) = rne(v) ± 1 inside,
 *        constant outside, so the difference is exactly the straight-through [lo < v < hi];
 *   dzf: a central difference over one zero-point level (zf ± 1): inside elements do not
 *        move, clipped ones move by ∓s, so g·FD is exactly the backward.
 */
START_TEST(test_lsq_zp_fd)
{
    enum { N = 480, BATCH = 4 };
    static const int ranges[3] = { 3, 15, 255 };
    float *x = falloc(N), *dy = falloc(N), *y = falloc(N), *dx = falloc(N), *x1 = falloc(N);
    for (int ri = 0; ri < 3; ri++) {
        int R = ranges[ri], z = R / 3 + 1;
        float s = 0x1p-4f, h = 0x1p-15f, zf = (float)z + 0.25f, ds = 0, dz = 0;
        float lo = (float)-z, hi = (float)(R - z);
        uint32_t seed = 91 + (uint32_t)R;
        double ste = 0, g = qc_lsq_grad_scale(N / BATCH, R);
        for (int i = 0; i < N; i++) {
            x[i] = urand(&seed, (1.3f * lo - 2.0f) * s, (1.3f * hi + 2.0f) * s);
            dy[i] = urand(&seed, -1.0f, 1.0f);
            double v = (double)x[i] / s, fr = v - floor(v);
            if (fabs(fr - 0.5) < 0.3 || fabs(v - lo) < 1.5 || fabs(v - hi) < 1.5)
                dy[i] = 0.0f;
            if (v > lo && v < hi)
                ste += (double)dy[i] * v;
            dx[i] = 0.0f;
        }
        qc_lsq_backward_zp(s, zf, 0, R, g, x, dy, dx, N, 1, &ds, &dz);
        double fd = (lsq_zp_loss(s + h, zf, R, x, dy, y, N) -
                     lsq_zp_loss(s - h, zf, R, x, dy, y, N)) /
                    (2.0 * h);
        double want = g * (fd - ste);
        ck_assert_msg(fabs(ds - want) <= 1e-3 * fabs(want) + 1e-7, "R=%d ds=%.7g want=%.7g", R,
                      (double)ds, want);
        fd = (lsq_zp_loss(s, zf + 1.0f, R, x, dy, y, N) -
              lsq_zp_loss(s, zf - 1.0f, R, x, dy, y, N)) /
             2.0;
        ck_assert_msg(fabs(dz - g * fd) <= 1e-5 * fabs(g * fd) + 1e-7, "R=%d dz=%.7g want=%.7g", R,
                      (double)dz, g * fd);
        ck_assert(fd != 0.0);
        for (int i = 0; i < N; i++) {
            float yp, ym;
            if (dy[i] == 0.0f)
                continue;
            x1[0] = x[i] + s;
            qc_lsq_forward_zp(s, zf, 0, R, x1, &yp, 1, 1);
            x1[0] = x[i] - s;
            qc_lsq_forward_zp(s, zf, 0, R, x1, &ym, 1, 1);
            ck_assert_msg((double)(yp - ym) / (2.0 * s) == (double)dx[i] / dy[i], "R=%d i=%d", R,
                          i);
        }
    }
    free(x);
    free(dy);
    free(y);
    free(dx);
    free(x1);
}
END_TEST

/* ---- LSQ per output channel (QWeight.PerChannel=1) ---------------------------------------- */

/* Hand-computed: Conv layout [nch = 2, inner = 3], R = 15 signed ([-8, 7]), s = {1, 0.5}.
 * Channel 0, v = x/1 = {0.5, 1.5, -8}: ties to even k = {0, 2, -8} (-8 on the low edge);
 * ds terms rne(v) - v = -0.5, 0.5, then -Qn = -8: sum -8; dx passes the first two.
 * Channel 1, v = x/0.5 = {7, -0.5, 8}: k = {7, -0, 7} (7 on the high edge, 8 clipped);
 * ds terms Qp = 7, -0 + 0.5 = 0.5, Qp = 7: sum 14.5; dx passes the middle one.
 * g = 1/sqrt(N_c·Qp) = 1/sqrt(21).  Init: s_c = 2·mean|x_c|/sqrt(7). */
START_TEST(test_lsq_channels_hand)
{
    const float x[6] = { 0.5f, 1.5f, -8.0f, 3.5f, -0.25f, 4.0f };
    const float dy[6] = { 1, 1, 1, 1, 1, 1 };
    const float step[2] = { 1.0f, 0.5f };
    static const int32_t want_k[6] = { 0, 2, -8, 7, 0, 7 };
    static const float want_y[6] = { 0.0f, 2.0f, -8.0f, 3.5f, -0.0f, 3.5f };
    static const float mask[6] = { 1, 1, 0, 0, 1, 0 };
    struct qc_channels ch = { .nch = 2, .inner = 3 };
    float y[6], dx[6] = { 0 }, ds[2] = { 0.25f, 0 }, s0[2];
    int32_t k[6];
    double g = 1.0 / sqrt(21.0);
    ck_assert(fabs(qc_lsq_grad_scale(3, 7) - g) < 1e-15);
    qc_lsq_forward_ch(step, ch, 8, 7, x, y, 6, 1);
    qc_lsq_image_ch(step, ch, 8, 7, x, k, 6, 1);
    qc_lsq_backward_ch(step, ch, 8, 7, g, x, dy, dx, 6, 1, ds);
    for (int i = 0; i < 6; i++) {
        ck_assert_msg(k[i] == want_k[i] && y[i] == want_y[i], "i=%d k=%d y=%g", i, k[i],
                      (double)y[i]);
        ck_assert(dx[i] == mask[i]);
    }
    NEAR(ds[0], 0.25 + g * -8.0, 1e-6); /* accumulates */
    NEAR(ds[1], g * 14.5, 1e-6);
    qc_lsq_init_step_ch(x, ch, 6, 7, 1, s0);
    NEAR(s0[0], 2.0 * (10.0 / 3.0) / sqrt(7.0), 1e-6);
    NEAR(s0[1], 2.0 * (7.75 / 3.0) / sqrt(7.0), 1e-6);
    /* guard per channel: s_0 = 0 works as 1e-8 (every level clipped), s_1 untouched */
    const float st2[2] = { 0.0f, 0.5f };
    qc_lsq_forward_ch(st2, ch, 8, 7, x, y, 6, 1);
    ck_assert(y[0] == 7 * QC_LSQ_STEP_MIN && y[2] == -8 * QC_LSQ_STEP_MIN);
    ck_assert(y[3] == 3.5f && y[5] == 3.5f);
    const float zero[6] = { 0 };
    qc_lsq_init_step_ch(zero, ch, 6, 7, 1, s0);
    ck_assert(s0[0] == QC_LSQ_STEP_MIN && s0[1] == QC_LSQ_STEP_MIN);
}
END_TEST

/* Per channel = the per-tensor kernel on the channel's elements, for the three layouts of
 * qspec.c: Conv (outer 1), ConvTranspose (outer = C_in), Gemm without transB (inner 1). */
START_TEST(test_lsq_channels_vs_slices)
{
    static const struct {
        int64_t outer, nch, inner;
    } lay[3] = { { 1, 4, 6 }, { 3, 4, 2 }, { 6, 4, 1 } };
    enum { N = 24, C = 4 };
    for (int li = 0; li < 3; li++) {
        struct qc_channels ch = { .nch = lay[li].nch, .inner = lay[li].inner };
        float x[N], dy[N], y[N], dx[N] = { 0 }, ds[C] = { 0 }, s0[C];
        float step[C] = { 0.05f, 0.2f, 0.7f, 1.3f };
        int32_t k[N];
        uint32_t seed = 77 + (uint32_t)li;
        for (int i = 0; i < N; i++) {
            x[i] = urand(&seed, -4.0f, 4.0f);
            dy[i] = urand(&seed, -1.0f, 1.0f);
        }
        qc_lsq_forward_ch(step, ch, 8, 7, x, y, N, 1);
        qc_lsq_image_ch(step, ch, 8, 7, x, k, N, 1);
        qc_lsq_backward_ch(step, ch, 8, 7, 0.3, x, dy, dx, N, 1, ds);
        qc_lsq_init_step_ch(x, ch, N, 7, 1, s0);
        for (int c = 0; c < C; c++) {
            float xs[N], ys[N], dys[N], dxs[N] = { 0 }, dss = 0;
            int32_t ks[N];
            int at[N], m = 0;
            for (int64_t o = 0; o < lay[li].outer; o++)
                for (int64_t j = 0; j < lay[li].inner; j++)
                    at[m++] = (int)((o * C + c) * lay[li].inner + j);
            for (int i = 0; i < m; i++) {
                xs[i] = x[at[i]];
                dys[i] = dy[at[i]];
            }
            qc_lsq_forward(step[c], 8, 7, xs, ys, m, 1);
            qc_lsq_image(step[c], 8, 7, xs, ks, m, 1);
            qc_lsq_backward(step[c], 8, 7, 0.3, xs, dys, dxs, m, 1, &dss);
            for (int i = 0; i < m; i++)
                ck_assert_msg(y[at[i]] == ys[i] && k[at[i]] == ks[i] && dx[at[i]] == dxs[i],
                              "layout %d channel %d element %d", li, c, at[i]);
            ck_assert_msg(fabs(ds[c] - dss) <= 1e-6 * (1.0 + fabs(dss)), "layout %d c %d: %g vs %g",
                          li, c, (double)ds[c], (double)dss);
            NEAR(s0[c], qc_lsq_init_step(xs, m, 7, 1), 1e-6 * s0[c]);
        }
    }
}
END_TEST

static double lsq_loss_ch(const float *s, struct qc_channels ch, int qn, int qp, const float *x,
                          const float *dy, float *y, int n)
{
    double l = 0;
    qc_lsq_forward_ch(s, ch, qn, qp, x, y, n, 1);
    for (int i = 0; i < n; i++)
        l += (double)dy[i] * y[i];
    return l;
}

/* Finite differences of each s_c (as test_lsq_fd: steps powers of two, points near a
 * rounding or range boundary get dy = 0; the straight-through −v term added back). */
START_TEST(test_lsq_channels_fd)
{
    enum { OUTER = 2, C = 3, INNER = 50, N = OUTER * C * INNER };
    struct qc_channels ch = { .nch = C, .inner = INNER };
    static const int ranges[3] = { 3, 15, 255 };
    float *x = falloc(N), *dy = falloc(N), *y = falloc(N);
    for (int ri = 0; ri < 3; ri++) {
        int R = ranges[ri], qn, qp;
        float s[C] = { 0x1p-4f, 0x1p-3f, 0x1p-5f }, ds[C] = { 0 };
        double ste[C] = { 0 };
        uint32_t seed = 91 + (uint32_t)R;
        qc_lsq_levels(R, true, &qn, &qp);
        for (int i = 0; i < N; i++) {
            int c = (i / INNER) % C;
            x[i] = urand(&seed, -1.2f * (float)qn * s[c] - 0.1f, 1.2f * (float)qp * s[c] + 0.1f);
            dy[i] = urand(&seed, -1.0f, 1.0f);
            double v = (double)x[i] / s[c], fr = v - floor(v);
            if (fabs(fr - 0.5) < 0.2 || fabs(v + qn) < 0.3 || fabs(v - qp) < 0.3)
                dy[i] = 0.0f;
            if (v > -qn && v < qp)
                ste[c] += (double)dy[i] * v;
        }
        double g = qc_lsq_grad_scale(N / C, qp); /* g_c = 1/sqrt(N_c·Qp) */
        qc_lsq_backward_ch(s, ch, qn, qp, g, x, dy, NULL, N, 1, ds);
        for (int c = 0; c < C; c++) {
            float sp[C], sm[C], h = s[c] * 0x1p-11f;
            memcpy(sp, s, sizeof(sp));
            memcpy(sm, s, sizeof(sm));
            sp[c] += h;
            sm[c] -= h;
            double fd = (lsq_loss_ch(sp, ch, qn, qp, x, dy, y, N) -
                         lsq_loss_ch(sm, ch, qn, qp, x, dy, y, N)) /
                        (2.0 * h);
            double want = g * (fd - ste[c]);
            ck_assert_msg(fabs(ds[c] - want) <= 1e-3 * fabs(want), "R=%d c=%d ds=%.7g want=%.7g", R,
                          c, (double)ds[c], want);
        }
    }
    free(x);
    free(dy);
    free(y);
}
END_TEST

/* ---- SAT weights per output channel (QWeight.PerChannel=1) ------------------------------- */

/* Hand-computed, Default R = 3, Conv layout [2 channels, 2]: channel 0 W = {1, -1}: r = ±1,
 * k = ±3; channel 1 W = {0.5, 0}: m_1 = tanh 0.5, r = {1, 0}, u = {1, 0.5}, R·u = 1.5 a tie
 * to even: j = 2, k = 1.  Per tensor (m = tanh 1) channel 1 would be {1, 1}: r = 0.607,
 * R·u = 2.41, j = 2; its own maximum gives {3, 1}.  Scales 1/3 for both channels. */
START_TEST(test_sat_channels_hand)
{
    const float w[4] = { 1.0f, -1.0f, 0.5f, 0.0f };
    static const int32_t want[4] = { 3, -3, 3, 1 };
    struct qc_channels ch = { .nch = 2, .inner = 2 };
    struct qc_sat_wcfg c;
    struct qc_sat_wstate st[2], one;
    float q[4];
    int32_t k[4], kt[4];
    sat_cfg(&c, QC_SAT_DEFAULT, 3, true, false, 0);
    ck_assert_int_eq(qc_sat_weight_run_ch(&c, ch, w, q, k, 4, 1, st), QC_OK);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(k[i] == want[i], "i=%d k=%d", i, k[i]);
        ck_assert(q[i] == (float)want[i] * (1.0f / 3.0f));
    }
    ck_assert(st[0].m == tanhf(1.0f) && st[1].m == tanhf(0.5f));
    ck_assert(st[0].scale == 1.0f / 3.0f && st[1].scale == 1.0f / 3.0f);
    qc_sat_weight_image(&c, w, kt, 4, 1, &one); /* per tensor: channel 1 = {1, 1} */
    ck_assert(kt[2] == 1 && kt[3] == 1 && kt[0] == 3);
}
END_TEST

/* Per channel = the per-tensor SAT forward, image, state and backward on each channel's
 * elements, for the Conv, ConvTranspose and Gemm-without-transB layouts. */
START_TEST(test_sat_channels_vs_slices)
{
    static const struct {
        int64_t outer, nch, inner;
    } lay[3] = { { 1, 3, 8 }, { 4, 3, 2 }, { 8, 3, 1 } };
    static const enum qc_sat_mode modes[2] = { QC_SAT_DEFAULT, QC_SAT_SYMMETRIC };
    enum { N = 24, C = 3 };
    for (int li = 0; li < 3; li++)
        for (int mi = 0; mi < 2; mi++) {
            struct qc_channels ch = { .nch = C, .inner = lay[li].inner };
            struct qc_sat_wcfg c;
            struct qc_sat_wstate st[C];
            float w[N], g[N], q[N], dw[N];
            int32_t k[N];
            uint32_t seed = 13 + (uint32_t)(li * 2 + mi);
            for (int i = 0; i < N; i++) {
                /* channel c spans a different range, so per-channel maxima matter */
                w[i] = urand(&seed, -1.0f, 1.0f) * (float)(1 + (i / lay[li].inner) % C);
                g[i] = urand(&seed, -1.0f, 1.0f);
                dw[i] = 0.125f;
            }
            sat_cfg(&c, modes[mi], 15, true, true, 9);
            ck_assert_int_eq(qc_sat_weight_run_ch(&c, ch, w, q, k, N, 1, st), QC_OK);
            ck_assert_int_eq(qc_sat_weight_backward_ch(&c, ch, st, w, g, dw, N, 1), QC_OK);
            for (int cc = 0; cc < C; cc++) {
                float ws[N], gs[N], qs[N], dws[N];
                int32_t ks[N];
                int at[N], m = 0;
                struct qc_sat_wstate ss;
                for (int64_t o = 0; o < lay[li].outer; o++)
                    for (int64_t j = 0; j < lay[li].inner; j++)
                        at[m++] = (int)((o * C + cc) * lay[li].inner + j);
                for (int i = 0; i < m; i++) {
                    ws[i] = w[at[i]];
                    gs[i] = g[at[i]];
                    dws[i] = 0.125f;
                }
                qc_sat_weight_run(&c, ws, qs, ks, m, 1, &ss);
                qc_sat_weight_backward(&c, &ss, ws, gs, dws, m, 1);
                ck_assert(memcmp(&ss, &st[cc], sizeof(ss)) == 0);
                for (int i = 0; i < m; i++)
                    ck_assert_msg(q[at[i]] == qs[i] && k[at[i]] == ks[i] && dw[at[i]] == dws[i],
                                  "layout %d mode %d channel %d element %d", li, mi, cc, at[i]);
            }
        }
}
END_TEST

/* Finite differences of the clamp stage per channel (m_c and S_c held: each channel's
 * largest |w| is not perturbed), ConvTranspose layout [2, 3, 4]:
 * dW_i = dQ_i · (1 − t_i²)/(m_c · S_c). */
START_TEST(test_sat_channels_fd)
{
    enum { OUTER = 2, C = 3, INNER = 4, N = OUTER * C * INNER };
    struct qc_channels ch = { .nch = C, .inner = INNER };
    float w[N], g[N], dw[N], q[N];
    uint32_t seed = 29;
    for (int i = 0; i < N; i++) {
        w[i] = urand(&seed, -1.2f, 1.2f);
        g[i] = urand(&seed, -1.0f, 1.0f);
    }
    for (int cc = 0; cc < C; cc++)
        w[cc * INNER] = 1.5f + 0.2f * (float)cc; /* channel c's max |tanh|, never perturbed */
    for (int scaling = 0; scaling < 2; scaling++) {
        struct qc_sat_wcfg c, c0;
        struct qc_sat_wstate st[C], s0[C];
        sat_cfg(&c, QC_SAT_DEFAULT, 15, false, scaling, 12);
        sat_cfg(&c0, QC_SAT_DEFAULT, 15, false, false, 0);
        ck_assert_int_eq(qc_sat_weight_run_ch(&c, ch, w, q, NULL, N, 1, st), QC_OK);
        memset(dw, 0, sizeof(dw));
        ck_assert_int_eq(qc_sat_weight_backward_ch(&c, ch, st, w, g, dw, N, 1), QC_OK);
        for (int i = 0; i < N; i++) {
            int cc = (i / INNER) % C;
            if (i == cc * INNER)
                continue;
            float wp[N], wm[N], h = 2e-3f;
            double lp = 0, lm = 0;
            memcpy(wp, w, sizeof(wp));
            memcpy(wm, w, sizeof(wm));
            wp[i] += h;
            wm[i] -= h;
            ck_assert_int_eq(qc_sat_weight_run_ch(&c0, ch, wp, q, NULL, N, 1, s0), QC_OK);
            for (int j = 0; j < N; j++)
                lp += (double)g[j] * q[j] / (scaling ? st[(j / INNER) % C].s : 1.0);
            ck_assert_int_eq(qc_sat_weight_run_ch(&c0, ch, wm, q, NULL, N, 1, s0), QC_OK);
            for (int j = 0; j < N; j++)
                lm += (double)g[j] * q[j] / (scaling ? st[(j / INNER) % C].s : 1.0);
            double fd = (lp - lm) / (double)(wp[i] - wm[i]);
            ck_assert_msg(fabs(dw[i] - fd) <= 1e-3 * (fabs(fd) + 1e-3),
                          "scaling=%d i=%d dw=%.7g fd=%.7g", scaling, i, (double)dw[i], fd);
        }
    }
}
END_TEST

/* ---- integer images and threads ----------------------------------------------------------- */

START_TEST(test_sat_images_random)
{
    enum { N = 1000 };
    float *w = falloc(N), *q = falloc(N);
    int32_t k[N];
    uint32_t seed = 99;
    for (int i = 0; i < N; i++)
        w[i] = urand(&seed, -0.3f, 0.3f);
    for (int mode = 0; mode < QC_SAT_MODE_COUNT; mode++)
        for (int ri = 0; ri < 5; ri++)
            for (int scaling = 0; scaling < 2; scaling++) {
                struct qc_sat_wcfg c;
                struct qc_sat_wstate st, st2;
                sat_cfg(&c, mode, test_ranges[ri], true, scaling, 3 * 3 * 16);
                qc_sat_weight_forward(&c, w, q, N, 1, &st);
                qc_sat_weight_image(&c, w, k, N, 1, &st2);
                ck_assert(st.scale == st2.scale && st.s == st2.s && st.m == st2.m);
                for (int i = 0; i < N; i++)
                    ck_assert_msg(q[i] == (float)k[i] * st2.scale, "%s R=%d i=%d",
                                  qc_sat_mode_name(mode), test_ranges[ri], i);
            }
    free(w);
    free(q);
}
END_TEST

/* The reference level: clamp(rintf(v), lo, hi) with branches, NaN passing through. */
static float ref_level(float v, float lo, float hi)
{
    float j = rintf(v);
    if (j < lo)
        j = lo;
    if (j > hi)
        j = hi;
    return j;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/*
 * The vectorized kernels round and clamp without rintf or branches: their outputs must be
 * rintf's bit for bit (ties to even, the sign of a zero level, huge, infinite and NaN
 * inputs), over more elements than one reduction block (odd length: lane tails), and their
 * parameter gradients must equal the per-element formulas summed in double.
 */
START_TEST(test_vector_rounding_exact)
{
    enum { N = 1299, R = 15 };
    static float x[N], dy[N], y[N], dx[N];
    const float s = 0.25f, alpha = 3.0f, h = qc_sat_act_scale(alpha, R);
    const float edge[] = { 0.5f,  -0.5f, 1.5f,  -1.5f,  2.5f,    -2.5f,    7.5f,      8.5f,
                           -8.5f, -0.3f, -0.0f, 0.0f,   6.9999f, -7.9999f, 1e30f,     -1e30f,
                           15.5f, 14.5f, 16.5f, 3e-39f, -3e-39f, INFINITY, -INFINITY, NAN };
    uint32_t seed = 4242;
    size_t ne = sizeof(edge) / sizeof(edge[0]);
    for (int i = 0; i < N; i++) {
        x[i] = i < (int)ne ? edge[i] * s : urand(&seed, -3.0f, 5.0f);
        dy[i] = urand(&seed, -1.0f, 1.0f);
    }

    /* LSQ signed [-8, 7]: forward bit for bit, dx mask exact, ds against the formula */
    qc_lsq_forward(s, 8, 7, x, y, N, 1);
    double ref_ds = 0.0;
    memset(dx, 0, sizeof(dx));
    for (int i = 0; i < N; i++) {
        float v = x[i] / s, want = ref_level(v, -8.0f, 7.0f) * s;
        ck_assert_msg(float_bits(y[i]) == float_bits(want), "lsq i=%d x=%g: y=%g, rintf gives %g",
                      i, (double)x[i], (double)y[i], (double)want);
        if (i != (int)ne - 1) /* the NaN input makes ds NaN: checked below */
            ref_ds += (double)dy[i] * (v <= -8.0f ? -8.0f : v >= 7.0f ? 7.0f : rintf(v) - v);
    }
    float ds = 0.0f;
    qc_lsq_backward(s, 8, 7, 1.0, x, dy, dx, N, 1, &ds);
    ck_assert_msg(isnan(ds), "a NaN input gives a NaN step gradient, got %g", (double)ds);
    for (int i = 0; i < N; i++) {
        float v = x[i] / s;
        float want = !(v <= -8.0f) && !(v >= 7.0f) ? dy[i] : 0.0f;
        ck_assert_msg(dx[i] == want || (isnan(v) && dx[i] == dy[i]), "lsq dx i=%d", i);
    }
    ds = 0.0f;
    qc_lsq_backward(s, 8, 7, 1.0, x, dy, NULL, (int64_t)ne - 1, 1, &ds);
    double ref_ds_edges = 0.0;
    for (size_t i = 0; i + 1 < ne; i++) {
        float v = x[i] / s;
        ref_ds_edges += (double)dy[i] * (v <= -8.0f ? -8.0f : v >= 7.0f ? 7.0f : rintf(v) - v);
    }
    NEAR(ds, ref_ds_edges, 1e-6 * (1.0 + fabs(ref_ds_edges)));
    ds = 0.0f;
    qc_lsq_backward(s, 8, 7, 1.0, x + ne, dy + ne, NULL, N - (int64_t)ne, 1, &ds);
    NEAR(ds, ref_ds - ref_ds_edges, 1e-6 * (1.0 + fabs(ref_ds - ref_ds_edges)));

    /* CG-PACT [0, R]: forward bit for bit, dα against the per-element formula */
    qc_sat_act_forward(alpha, R, x, y, N, 1);
    double ref_da = 0.0;
    for (int i = 0; i < N; i++) {
        float want = ref_level(x[i] / h, 0.0f, (float)R) * h;
        ck_assert_msg(float_bits(y[i]) == float_bits(want), "sat i=%d x=%g: y=%g, rintf gives %g",
                      i, (double)x[i], (double)y[i], (double)want);
        if (i >= (int)ne && x[i] >= alpha)
            ref_da += dy[i];
        else if (i >= (int)ne && x[i] > 0.0f)
            ref_da += (double)dy[i] *
                      ((double)ref_level(x[i] / h, 0.0f, (float)R) / R - (double)x[i] / alpha);
    }
    float da = 0.0f;
    qc_sat_act_backward(alpha, R, x + ne, dy + ne, NULL, N - (int64_t)ne, 1, &da);
    NEAR(da, ref_da, 1e-6 * (1.0 + fabs(ref_da)));
    da = 0.0f;
    qc_sat_act_backward(alpha, R, x, dy, NULL, N, 1, &da);
    ck_assert_msg(isnan(da), "a NaN input gives a NaN α gradient, got %g", (double)da);
}
END_TEST

START_TEST(test_threads_invariant)
{
    const int64_t n = ((int64_t)1 << 22) + 5;   /* above QC_QUANT_PAR_MIN_STREAM */
    float *x = falloc(n), *dy = falloc(n), *y1 = falloc(n), *y2 = falloc(n);
    float *d1 = falloc(n), *d2 = falloc(n);
    uint32_t seed = 1;
    for (int64_t i = 0; i < n; i++) {
        x[i] = urand(&seed, -1.0f, 4.0f);
        dy[i] = urand(&seed, -1.0f, 1.0f);
    }
    float a1 = 0, a2 = 0;
    qc_sat_act_forward(3.0f, 15, x, y1, n, 1);
    qc_sat_act_forward(3.0f, 15, x, y2, n, 4);
    ck_assert(memcmp(y1, y2, (size_t)n * sizeof(float)) == 0);
    qc_sat_act_backward(3.0f, 15, x, dy, d1, n, 1, &a1);
    qc_sat_act_backward(3.0f, 15, x, dy, d2, n, 3, &a2);
    ck_assert(a1 == a2 && memcmp(d1, d2, (size_t)n * sizeof(float)) == 0);

    float s1 = qc_lsq_init_step(x, n, 127, 1), s2 = qc_lsq_init_step(x, n, 127, 4);
    ck_assert(s1 == s2);
    qc_lsq_forward(s1, 128, 127, x, y1, n, 1);
    qc_lsq_forward(s1, 128, 127, x, y2, n, 4);
    ck_assert(memcmp(y1, y2, (size_t)n * sizeof(float)) == 0);
    float g1 = 0, g2 = 0;
    memset(d1, 0, (size_t)n * sizeof(float));
    memset(d2, 0, (size_t)n * sizeof(float));
    qc_lsq_backward(s1, 128, 127, 1e-3, x, dy, d1, n, 1, &g1);
    qc_lsq_backward(s1, 128, 127, 1e-3, x, dy, d2, n, 4, &g2);
    ck_assert(g1 == g2 && memcmp(d1, d2, (size_t)n * sizeof(float)) == 0);

    /* SAT weights (parallel from QC_QUANT_PAR_MIN_TANH): clamp stage with scaling */
    const int64_t nw = 100003;
    for (int quant = 0; quant < 2; quant++) {
        struct qc_sat_wcfg c;
        struct qc_sat_wstate st1, st2;
        sat_cfg(&c, QC_SAT_DEFAULT, 15, quant, true, 576);
        qc_sat_weight_forward(&c, x, y1, nw, 1, &st1);
        qc_sat_weight_forward(&c, x, y2, nw, 4, &st2);
        ck_assert(st1.m == st2.m && st1.s == st2.s && st1.scale == st2.scale);
        ck_assert(memcmp(y1, y2, (size_t)nw * sizeof(float)) == 0);
        memset(d1, 0, (size_t)nw * sizeof(float));
        memset(d2, 0, (size_t)nw * sizeof(float));
        qc_sat_weight_backward(&c, &st1, x, dy, d1, nw, 1);
        qc_sat_weight_backward(&c, &st2, x, dy, d2, nw, 4);
        ck_assert(memcmp(d1, d2, (size_t)nw * sizeof(float)) == 0);
    }
    free(x);
    free(dy);
    free(y1);
    free(y2);
    free(d1);
    free(d2);
}
END_TEST

START_TEST(test_mode_names)
{
    enum qc_sat_mode m;
    ck_assert(qc_sat_mode_parse("Default", &m) && m == QC_SAT_DEFAULT);
    ck_assert(qc_sat_mode_parse("Symmetric", &m) && m == QC_SAT_SYMMETRIC);
    ck_assert(qc_sat_mode_parse("asymmetric", &m) && m == QC_SAT_ASYMMETRIC);
    ck_assert(qc_sat_mode_parse("FullRange", &m) && m == QC_SAT_FULLRANGE);
    ck_assert(!qc_sat_mode_parse("Integer", &m));
    ck_assert_str_eq(qc_sat_mode_name(QC_SAT_FULLRANGE), "FullRange");
}
END_TEST

/* ---- the kernels by id on the CPU backend ------------------------------------------------- */

/* qc_backend_run on the CPU backend gives the host functions' values bit for bit (the
 * hand-computed vectors above check those), scalars read and written through pointers. */
START_TEST(test_backend_run_cpu)
{
    struct qc_backend *be;
    struct qc_sat_wcfg c;
    struct qc_sat_wstate st, st2;
    float q[9], q2[9], dw[9] = { 0 }, dw2[9] = { 0 }, dy[9], alpha = 2.0f, step = 0.25f;
    float da = 0.0f, da2 = 0.0f, dx[9] = { 0 }, dx2[9] = { 0 }, s0, s1 = 0.0f;
    int32_t k[8], k2[8];
    int qn, qp;
    ck_assert_int_eq(qc_backend_new("cpu", 1, &be), QC_OK);
    for (int i = 0; i < 9; i++)
        dy[i] = 0.125f * (float)(i - 4);

    sat_cfg(&c, QC_SAT_ASYMMETRIC, 15, true, true, 9);
    qc_sat_weight_forward(&c, vec_w, q, 8, 1, &st);
    qc_sat_weight_image(&c, vec_w, k, 8, 1, &st);
    ck_assert_int_eq(qc_backend_run(be, QC_TK_SAT_WEIGHT_FORWARD,
                                    &(struct qc_tk_sat_weight_forward){
                                        .cfg = &c, .w = vec_w, .q = q2, .k = k2, .n = 8,
                                        .st = &st2 }), QC_OK);
    ck_assert(memcmp(q, q2, 8 * sizeof(float)) == 0 && memcmp(k, k2, sizeof(k)) == 0);
    ck_assert(memcmp(&st, &st2, sizeof(st)) == 0);
    qc_sat_weight_backward(&c, &st, vec_w, dy, dw, 8, 1);
    ck_assert_int_eq(qc_backend_run(be, QC_TK_SAT_WEIGHT_BACKWARD,
                                    &(struct qc_tk_sat_weight_backward){
                                        .cfg = &c, .st = &st2, .w = vec_w, .dq = dy, .dw = dw2,
                                        .n = 8 }), QC_OK);
    ck_assert(memcmp(dw, dw2, 8 * sizeof(float)) == 0);

    qc_sat_act_forward(alpha, 7, lsq_x, q, 9, 1);
    qc_sat_act_backward(alpha, 7, lsq_x, dy, dx, 9, 1, &da);
    ck_assert_int_eq(qc_backend_run(be, QC_TK_SAT_ACT_FORWARD, &(struct qc_tk_sat_act_forward){
                                        .alpha = &alpha, .range = 7, .x = lsq_x, .y = q2,
                                        .n = 9 }), QC_OK);
    ck_assert_int_eq(qc_backend_run(be, QC_TK_SAT_ACT_BACKWARD,
                                    &(struct qc_tk_sat_act_backward){
                                        .alpha = &alpha, .range = 7, .x = lsq_x, .dy = dy,
                                        .dx = dx2, .n = 9, .dalpha = &da2 }), QC_OK);
    ck_assert(memcmp(q, q2, 9 * sizeof(float)) == 0 && memcmp(dx, dx2, sizeof(dx)) == 0);
    ck_assert(da == da2);

    qc_lsq_levels(15, true, &qn, &qp);
    da = da2 = 0.0f;
    memset(dx, 0, sizeof(dx));
    memset(dx2, 0, sizeof(dx2));
    qc_lsq_forward(step, qn, qp, lsq_x, q, 9, 1);
    qc_lsq_backward(step, qn, qp, 0.5, lsq_x, dy, dx, 9, 1, &da);
    ck_assert_int_eq(qc_backend_run(be, QC_TK_LSQ_FORWARD, &(struct qc_tk_lsq_forward){
                                        .step = &step, .qn = qn, .qp = qp, .x = lsq_x, .y = q2,
                                        .n = 9 }), QC_OK);
    ck_assert_int_eq(qc_backend_run(be, QC_TK_LSQ_BACKWARD, &(struct qc_tk_lsq_backward){
                                        .step = &step, .qn = qn, .qp = qp, .g = 0.5,
                                        .x = lsq_x, .dy = dy, .dx = dx2, .n = 9,
                                        .dstep = &da2 }), QC_OK);
    ck_assert(memcmp(q, q2, 9 * sizeof(float)) == 0 && memcmp(dx, dx2, sizeof(dx)) == 0);
    ck_assert(da == da2);
    s0 = qc_lsq_init_step(lsq_x, 9, qp, 1);
    ck_assert_int_eq(qc_backend_run(be, QC_TK_LSQ_INIT_STEP, &(struct qc_tk_lsq_init_step){
                                        .x = lsq_x, .n = 9, .qp = qp, .step = &s1 }), QC_OK);
    ck_assert(s0 == s1);
    { /* per channel: lsq_x as [3 channels, 3] with its own steps */
        const float st3[3] = { 0.25f, 0.5f, 1.0f };
        struct qc_channels ch = { .nch = 3, .inner = 3 };
        float s3[3], s3b[3], ds3[3] = { 0 }, ds3b[3] = { 0 };
        memset(dx, 0, sizeof(dx));
        memset(dx2, 0, sizeof(dx2));
        qc_lsq_forward_ch(st3, ch, qn, qp, lsq_x, q, 9, 1);
        qc_lsq_backward_ch(st3, ch, qn, qp, 0.5, lsq_x, dy, dx, 9, 1, ds3);
        qc_lsq_init_step_ch(lsq_x, ch, 9, qp, 1, s3);
        ck_assert_int_eq(
            qc_backend_run(
                be, QC_TK_LSQ_FORWARD,
                &(struct qc_tk_lsq_forward){
                    .step = st3, .ch = ch, .qn = qn, .qp = qp, .x = lsq_x, .y = q2, .n = 9 }),
            QC_OK);
        ck_assert_int_eq(qc_backend_run(be, QC_TK_LSQ_BACKWARD,
                                        &(struct qc_tk_lsq_backward){ .step = st3,
                                                                      .ch = ch,
                                                                      .qn = qn,
                                                                      .qp = qp,
                                                                      .g = 0.5,
                                                                      .x = lsq_x,
                                                                      .dy = dy,
                                                                      .dx = dx2,
                                                                      .n = 9,
                                                                      .dstep = ds3b }),
                         QC_OK);
        ck_assert_int_eq(qc_backend_run(be, QC_TK_LSQ_INIT_STEP,
                                        &(struct qc_tk_lsq_init_step){
                                            .x = lsq_x, .ch = ch, .n = 9, .qp = qp, .step = s3b }),
                         QC_OK);
        ck_assert(memcmp(q, q2, 9 * sizeof(float)) == 0 && memcmp(dx, dx2, sizeof(dx)) == 0);
        ck_assert(memcmp(ds3, ds3b, sizeof(ds3)) == 0 && memcmp(s3, s3b, sizeof(s3)) == 0);
    }

    q[0] = -1.0f;
    q[1] = 0.5f;
    ck_assert_int_eq(qc_backend_run(be, QC_TK_CLAMP_MIN, &(struct qc_tk_clamp_min){
                                        .p = q, .lo = QC_LSQ_STEP_MIN, .n = 2 }), QC_OK);
    ck_assert(q[0] == QC_LSQ_STEP_MIN && q[1] == 0.5f);
    ck_assert_int_eq(qc_backend_run(be, QC_TK_COUNT, q), QC_ERR_UNSUPPORTED);
    qc_backend_free(be);
}
END_TEST

Suite *qc_suite_quant(void)
{
    Suite *s = suite_create("quant");
    TCase *sat = tcase_create("sat_weights");
    tcase_add_test(sat, test_sat_w_vectors);
    tcase_add_test(sat, test_sat_w_clamp_stage);
    tcase_add_test(sat, test_sat_w_scaling);
    tcase_add_test(sat, test_sat_w_ties);
    tcase_add_test(sat, test_sat_w_zero_and_guards);
    tcase_add_test(sat, test_sat_w_every_range);
    tcase_add_test(sat, test_sat_w_fd);
    tcase_add_test(sat, test_sat_images_random);
    tcase_add_test(sat, test_mode_names);
    tcase_add_test(sat, test_sat_channels_hand);
    tcase_add_test(sat, test_sat_channels_vs_slices);
    tcase_add_test(sat, test_sat_channels_fd);
    suite_add_tcase(s, sat);

    TCase *act = tcase_create("sat_act");
    tcase_add_test(act, test_sat_act_vectors);
    tcase_add_test(act, test_sat_act_ties_and_guard);
    tcase_add_test(act, test_sat_act_backward_hand);
    tcase_add_test(act, test_sat_act_fd);
    tcase_add_test(act, test_sat_act_every_range);
    suite_add_tcase(s, act);

    TCase *lsq = tcase_create("lsq");
    tcase_add_test(lsq, test_lsq_vectors);
    tcase_add_test(lsq, test_lsq_levels_init_guard);
    tcase_add_test(lsq, test_lsq_backward_hand);
    tcase_add_test(lsq, test_lsq_fd);
    tcase_add_test(lsq, test_lsq_every_range);
    tcase_add_test(lsq, test_lsq_channels_hand);
    tcase_add_test(lsq, test_lsq_channels_vs_slices);
    tcase_add_test(lsq, test_lsq_channels_fd);
    tcase_add_test(lsq, test_lsq_signed_act_spec);
    tcase_add_test(lsq, test_lsq_signed_act_hand);
    tcase_add_test(lsq, test_lsq_signed_act_fd);
    tcase_add_test(lsq, test_lsq_zp_spec);
    tcase_add_test(lsq, test_lsq_zp_hand);
    tcase_add_test(lsq, test_lsq_zp_fd);
    suite_add_tcase(s, lsq);

    TCase *thr = tcase_create("threads");
    tcase_add_test(thr, test_threads_invariant);
    tcase_add_test(thr, test_vector_rounding_exact);
    tcase_add_test(thr, test_backend_run_cpu);
    tcase_set_timeout(thr, 60);
    suite_add_tcase(s, thr);
    return s;
}
