/*
 * test_loss.c - the training losses of cpu_loss.c: the distillation loss
 * (qc_loss_distill_xent) against a hand-computed case, against central finite
 * differences of its own loss for several temperatures and weights, against
 * qc_loss_softmax_xent at weight 0, and its bad-argument paths.
 */
#include <config.h>

#include <math.h>
#include <string.h>

#include "util/rng.h"
#include "train/loss.h"
#include "testutil.h"

/*
 * Two classes, z = (0, 0), teacher t = (2 ln 3, 0), label 0, T = 2, λ = 1/2:
 * softmax(z) = softmax(z/T) = (1/2, 1/2), softmax(t/T) = (3/4, 1/4),
 * CE = ln 2, KL = 3/4 ln(3/2) + 1/4 ln(1/2),
 * loss = ln 2 / 2 + 1/2 · 4 · KL = 3/2 ln(3/2),
 * dz = 1/2 (1/2 − 1, 1/2) + 1/2 · 2 · (1/2 − 3/4, 1/2 − 1/4) = (−1/2, 1/2).
 */
START_TEST(test_distill_hand)
{
    float z[2] = { 0.0f, 0.0f }, t[2] = { (float)(2.0 * log(3.0)), 0.0f }, dz[2];
    int32_t y = 0;
    double loss = 0.0;
    int64_t correct = 0;
    ck_assert_int_eq(qc_loss_distill_xent(z, t, &y, 1, 2, 2.0f, 0.5f, 1.0f, dz, &loss, &correct),
                     QC_OK);
    ck_assert_double_eq_tol(loss, 1.5 * log(1.5), 1e-6);
    ck_assert_float_eq_tol(dz[0], -0.5f, 1e-6f);
    ck_assert_float_eq_tol(dz[1], 0.5f, 1e-6f);
    ck_assert_int_eq(correct, 1); /* the first maximum, class 0 */
}
END_TEST

/* Mean loss of b rows (no gradient). */
static double mean_loss(const float *z, const float *t, const int32_t *y, int64_t b, int64_t c,
                        float temp, float w)
{
    double loss = 0.0;
    int64_t correct = 0;
    ck_assert_int_eq(qc_loss_distill_xent(z, t, y, b, c, temp, w, 1.0f, NULL, &loss, &correct),
                     QC_OK);
    return loss / (double)b;
}

/* dz (scale 1/b) against (L(z + h e_k) − L(z − h e_k)) / 2h of the mean loss. */
START_TEST(test_distill_finite_differences)
{
    enum { B = 3, C = 5 };
    static const float temps[] = { 1.0f, 2.0f, 4.0f, 10.0f }, weights[] = { 0.0f, 0.3f, 1.0f };
    struct qc_rng rng;
    float z[B * C], t[B * C], dz[B * C];
    int32_t y[B];
    qc_rng_seed(&rng, 5);
    for (int i = 0; i < B * C; i++) {
        z[i] = 6.0f * qc_rng_uniform(&rng) - 3.0f;
        t[i] = 8.0f * qc_rng_uniform(&rng) - 4.0f;
    }
    for (int i = 0; i < B; i++)
        y[i] = (int32_t)(qc_rng_next(&rng) % C);
    for (size_t a = 0; a < sizeof(temps) / sizeof(temps[0]); a++)
        for (size_t w = 0; w < sizeof(weights) / sizeof(weights[0]); w++) {
            double loss = 0.0;
            int64_t correct = 0;
            ck_assert_int_eq(qc_loss_distill_xent(z, t, y, B, C, temps[a], weights[w], 1.0f / B, dz,
                                                  &loss, &correct),
                             QC_OK);
            for (int k = 0; k < B * C; k++) {
                const float h = 1e-2f;
                float keep = z[k];
                double lp, lm, fd;
                z[k] = keep + h;
                lp = mean_loss(z, t, y, B, C, temps[a], weights[w]);
                z[k] = keep - h;
                lm = mean_loss(z, t, y, B, C, temps[a], weights[w]);
                z[k] = keep;
                fd = (lp - lm) / (2.0 * (double)h);
                ck_assert_msg(fabs(fd - (double)dz[k]) <= 1e-4 + 1e-3 * fabs(fd),
                              "T %g, weight %g, logit %d: dz %g, finite difference %g",
                              (double)temps[a], (double)weights[w], k, (double)dz[k], fd);
            }
        }
}
END_TEST

/* Weight 0 is the plain cross-entropy; a teacher equal to the student at
 * weight 1 has loss and gradient 0. */
START_TEST(test_distill_limits)
{
    enum { B = 4, C = 7 };
    struct qc_rng rng;
    float z[B * C], t[B * C], dz[B * C], dz_ce[B * C];
    int32_t y[B];
    double loss = 0.0, loss_ce = 0.0;
    int64_t correct = 0, correct_ce = 0;
    qc_rng_seed(&rng, 9);
    for (int i = 0; i < B * C; i++) {
        z[i] = 10.0f * qc_rng_uniform(&rng) - 5.0f;
        t[i] = 10.0f * qc_rng_uniform(&rng) - 5.0f;
    }
    for (int i = 0; i < B; i++)
        y[i] = (int32_t)(qc_rng_next(&rng) % C);
    ck_assert_int_eq(qc_loss_distill_xent(z, t, y, B, C, 3.0f, 0.0f, 0.25f, dz, &loss, &correct),
                     QC_OK);
    ck_assert_int_eq(qc_loss_softmax_xent(z, y, B, C, 0.25f, dz_ce, &loss_ce, &correct_ce), QC_OK);
    ck_assert_double_eq_tol(loss, loss_ce, 1e-9);
    ck_assert_int_eq(correct, correct_ce);
    for (int i = 0; i < B * C; i++)
        ck_assert_float_eq_tol(dz[i], dz_ce[i], 1e-7f);
    loss = 0.0;
    ck_assert_int_eq(qc_loss_distill_xent(z, z, y, B, C, 3.0f, 1.0f, 0.25f, dz, &loss, &correct),
                     QC_OK);
    ck_assert_double_eq_tol(loss, 0.0, 1e-9);
    for (int i = 0; i < B * C; i++)
        ck_assert_float_eq_tol(dz[i], 0.0f, 1e-7f);
}
END_TEST

START_TEST(test_distill_bad_args)
{
    float z[2] = { 1.0f, 0.0f }, t[2] = { 0.0f, 1.0f }, dz[2];
    int32_t y = 2;
    double loss = 0.0;
    int64_t correct = 0;
    ck_assert_int_eq(qc_loss_distill_xent(z, t, &y, 1, 2, 1.0f, 0.5f, 1.0f, dz, &loss, &correct),
                     QC_ERR_DATA);
    y = 0;
    ck_assert_int_eq(qc_loss_distill_xent(z, t, &y, 1, 2, 0.0f, 0.5f, 1.0f, dz, &loss, &correct),
                     QC_ERR_INVAL);
    ck_assert_int_eq(qc_loss_distill_xent(z, t, &y, 1, 2, 1.0f, 1.5f, 1.0f, dz, &loss, &correct),
                     QC_ERR_INVAL);
    ck_assert_int_eq(qc_loss_distill_xent(z, t, &y, 1, 2, NAN, 0.5f, 1.0f, dz, &loss, &correct),
                     QC_ERR_INVAL);
}
END_TEST

Suite *qc_suite_loss(void)
{
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("distill");
    tcase_add_test(tc, test_distill_hand);
    tcase_add_test(tc, test_distill_finite_differences);
    tcase_add_test(tc, test_distill_limits);
    tcase_add_test(tc, test_distill_bad_args);
    suite_add_tcase(s, tc);
    return s;
}
