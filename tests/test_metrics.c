/*
 * test_metrics.c - the evaluation metrics (src/train/metrics.h) on small
 * fixed sets of predictions whose confusion matrices, per-class tables and
 * N2D2 averages were computed by hand (the numbers are in the comments),
 * top-5 with its tie rule, labels outside the classes, and the metric names.
 */
#include <config.h>

#include <math.h>

#include "train/metrics.h"
#include "testutil.h"

#define NEAR(a, b)                                                                                 \
    ck_assert_msg(fabs((double)(a) - (double)(b)) <= 1e-9, "%s = %.12g, expected %.12g", #a,       \
                  (double)(a), (double)(b))

/* 3 classes, 8 images, (label, prediction):
 * (0,0) (0,0) (0,1) (1,1) (1,1) (1,1) (1,2) (2,0)
 * matrix rows [2 1 0] [0 3 1] [1 0 0]
 * class 0: TP 2 FN 1 FP 1 TN 4: P = R = F1 = 2/3, spec = NPV = 4/5, IU 1/2
 * class 1: TP 3 FN 1 FP 1 TN 3: P = R = F1 = 3/4, spec = NPV = 3/4, IU 3/5
 * class 2: TP 0 FN 1 FP 1 TN 6: P = R = F1 = 0,   spec = NPV = 6/7, IU 0 */
static void three_classes(struct qc_confusion *c)
{
    static const int64_t pairs[8][2] = { { 0, 0 }, { 0, 0 }, { 0, 1 }, { 1, 1 },
                                         { 1, 1 }, { 1, 1 }, { 1, 2 }, { 2, 0 } };
    ck_assert_int_eq(qc_confusion_init(c, 3), QC_OK);
    for (int i = 0; i < 8; i++)
        qc_confusion_add_pred(c, pairs[i][0], pairs[i][1]);
}

START_TEST(test_matrix_and_classes)
{
    static const int64_t want[9] = { 2, 1, 0, 0, 3, 1, 1, 0, 0 };
    struct qc_confusion c;
    struct qc_class_metrics m;
    three_classes(&c);
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(c.counts[i], want[i]);
    ck_assert_int_eq(c.n, 8);
    ck_assert_int_eq(c.top1, 5);
    qc_confusion_class(&c, 0, &m);
    ck_assert_int_eq(m.tp, 2);
    ck_assert_int_eq(m.fn, 1);
    ck_assert_int_eq(m.fp, 1);
    ck_assert_int_eq(m.tn, 4);
    NEAR(m.precision, 2.0 / 3.0);
    NEAR(m.recall, 2.0 / 3.0);
    NEAR(m.f1, 2.0 / 3.0);
    qc_confusion_class(&c, 1, &m);
    ck_assert_int_eq(m.tn, 3);
    NEAR(m.f1, 0.75);
    qc_confusion_class(&c, 2, &m);
    ck_assert_int_eq(m.tp, 0);
    ck_assert_int_eq(m.fn, 1);
    ck_assert_int_eq(m.fp, 1);
    ck_assert_int_eq(m.tn, 6);
    NEAR(m.precision, 0.0);
    NEAR(m.f1, 0.0);
    qc_confusion_clear(&c);
    ck_assert_ptr_null(c.counts);
}
END_TEST

START_TEST(test_n2d2_averages)
{
    struct qc_confusion c;
    three_classes(&c);
    NEAR(qc_confusion_metric(&c, QC_METRIC_TOP1), 62.5); /* 5/8 */
    NEAR(qc_confusion_metric(&c, QC_METRIC_TOP5), -1.0); /* 3 classes */
    NEAR(qc_confusion_metric(&c, QC_METRIC_SENSITIVITY), 100.0 * (2.0 / 3 + 0.75) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_PRECISION), 100.0 * (2.0 / 3 + 0.75) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_F1), 100.0 * (2.0 / 3 + 0.75) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_SPECIFICITY), 100.0 * (0.8 + 0.75 + 6.0 / 7) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_NPV), 100.0 * (0.8 + 0.75 + 6.0 / 7) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_MISS_RATE), 100.0 * (1.0 / 3 + 0.25 + 1.0) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_FALL_OUT), 100.0 * (0.2 + 0.25 + 1.0 / 7) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_FDR), 100.0 * (1.0 / 3 + 0.25 + 1.0) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_FOR), 100.0 * (0.2 + 0.25 + 1.0 / 7) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_IU), 100.0 * (0.5 + 0.6 + 0.0) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_ACCURACY), 75.0); /* 6/8 for every class */
    /* informedness R + spec - 1, markedness P + NPV - 1, per class */
    NEAR(qc_confusion_metric(&c, QC_METRIC_INFORMEDNESS),
         100.0 * ((2.0 / 3 + 0.8 - 1) + (0.75 + 0.75 - 1) + (0 + 6.0 / 7 - 1)) / 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_MARKEDNESS),
         100.0 * ((2.0 / 3 + 0.8 - 1) + (0.75 + 0.75 - 1) + (0 + 6.0 / 7 - 1)) / 3);
    ck_assert(qc_metric_higher_better(QC_METRIC_F1));
    ck_assert(!qc_metric_higher_better(QC_METRIC_MISS_RATE));
    qc_confusion_clear(&c);
}
END_TEST

/* 4 classes; classes 2 and 3 have no image (3 is predicted once): only
 * classes 0 and 1 are averaged, as N2D2 does (relevant() > 0).
 * (0,0) (0,3) (1,1): class 0 P 1 R 1/2 F1 2/3; class 1 P = R = F1 = 1. */
START_TEST(test_classes_without_images)
{
    struct qc_confusion c;
    ck_assert_int_eq(qc_confusion_init(&c, 4), QC_OK);
    qc_confusion_add_pred(&c, 0, 0);
    qc_confusion_add_pred(&c, 0, 3);
    qc_confusion_add_pred(&c, 1, 1);
    NEAR(qc_confusion_metric(&c, QC_METRIC_SENSITIVITY), 75.0);
    NEAR(qc_confusion_metric(&c, QC_METRIC_PRECISION), 100.0);
    NEAR(qc_confusion_metric(&c, QC_METRIC_F1), 100.0 * (2.0 / 3 + 1) / 2);
    /* a label outside the classes: a miss, in no cell */
    qc_confusion_add_pred(&c, 7, 0);
    ck_assert_int_eq(c.n, 4);
    ck_assert_int_eq(c.n_unlisted, 1);
    ck_assert_int_eq(c.top1, 2);
    ck_assert_int_eq(c.counts[0], 1);
    NEAR(qc_confusion_metric(&c, QC_METRIC_TOP1), 50.0);
    qc_confusion_clear(&c);
    ck_assert_int_eq(qc_confusion_metric(&c, QC_METRIC_TOP1), -1); /* no image */
}
END_TEST

/* Top-5 of 6 classes from scores: the label's rank counts the classes with
 * a larger score or an equal one at a lower index (the arg-max rule). */
START_TEST(test_top5)
{
    static const float rising[6] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f };
    static const float flat[6] = { 1, 1, 1, 1, 1, 1 };
    struct qc_confusion c;
    int64_t pred = -1;
    ck_assert_int_eq(qc_confusion_init(&c, 6), QC_OK);
    qc_confusion_add(&c, rising, 0, &pred); /* rank 5: out            */
    ck_assert_int_eq(pred, 5);
    qc_confusion_add(&c, rising, 1, &pred); /* rank 4: in             */
    qc_confusion_add(&c, rising, 5, &pred); /* rank 0: in, top-1 hit  */
    qc_confusion_add(&c, flat, 5, &pred);   /* 5 equal before it: out */
    ck_assert_int_eq(pred, 0);
    qc_confusion_add(&c, flat, 4, &pred); /* rank 4: in             */
    ck_assert_int_eq(c.n, 5);
    ck_assert_int_eq(c.top1, 1);
    ck_assert_int_eq(c.top5, 3);
    NEAR(qc_confusion_metric(&c, QC_METRIC_TOP5), 60.0);
    NEAR(qc_confusion_metric(&c, QC_METRIC_TOP1), 20.0);
    ck_assert_int_eq(c.counts[0 * 6 + 5], 1);
    ck_assert_int_eq(c.counts[5 * 6 + 0], 1);
    qc_confusion_clear(&c);
}
END_TEST

START_TEST(test_names)
{
    enum qc_metric m = QC_METRIC_TOP1;
    ck_assert_int_eq(qc_metric_from_name("F1Score", &m), QC_OK);
    ck_assert_int_eq(m, QC_METRIC_F1);
    ck_assert_int_eq(qc_metric_from_name("f1-score", &m), QC_OK);
    ck_assert_int_eq(m, QC_METRIC_F1);
    ck_assert_int_eq(qc_metric_from_name("top5", &m), QC_OK);
    ck_assert_int_eq(m, QC_METRIC_TOP5);
    ck_assert_int_eq(qc_metric_from_name("Fall-out", &m), QC_OK);
    ck_assert_int_eq(m, QC_METRIC_FALL_OUT);
    ck_assert_int_eq(qc_metric_from_name("bogus", &m), QC_ERR_INVAL);
    ck_assert_int_eq(qc_metric_from_name(NULL, &m), QC_ERR_INVAL);
    for (int i = 0; i < QC_METRIC_COUNT; i++) {
        ck_assert_int_eq(qc_metric_from_name(qc_metric_name((enum qc_metric)i), &m), QC_OK);
        ck_assert_int_eq(m, i);
    }
    ck_assert_str_eq(qc_metric_name(QC_METRIC_NPV), "NegativePredictiveValue");
}
END_TEST

Suite *qc_suite_metrics(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("hand");
    tcase_add_test(tc, test_matrix_and_classes);
    tcase_add_test(tc, test_n2d2_averages);
    tcase_add_test(tc, test_classes_without_images);
    tcase_add_test(tc, test_top5);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
