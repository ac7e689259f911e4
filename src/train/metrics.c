/*
 * metrics.c - confusion matrix, top-1/top-5 and N2D2's confusion-table
 * metrics (see metrics.h).
 *
 * Per class, as N2D2's ConfusionTable (each 0 when its numerator is 0):
 *   sensitivity = TP / (TP + FN)      specificity = TN / (TN + FP)
 *   precision   = TP / (TP + FP)      NPV         = TN / (TN + FN)
 *   miss rate = 1 - sensitivity, fall-out = 1 - specificity,
 *   FDR = 1 - precision, FOR = 1 - NPV,  IU = TP / (TP + FP + FN),
 *   accuracy = (TP + TN) / (TP + TN + FP + FN),
 *   F1 = 2 P R / (P + R) (0 when TP = 0),
 *   informedness = sensitivity + specificity - 1,
 *   markedness = precision + NPV - 1.
 */
#include <config.h>

#include "metrics.h"

#include <string.h>
#include <strings.h>

#include "util/log.h"

enum qc_status qc_confusion_init(struct qc_confusion *c, int64_t classes)
{
    memset(c, 0, sizeof(*c));
    if (classes < 1 || classes > 1000000) {
        qc_log_error("%lld classes: cannot count a confusion matrix", (long long)classes);
        return QC_ERR_INVAL;
    }
    c->counts = qc_calloc((size_t)(classes * classes), sizeof(*c->counts));
    if (!c->counts) {
        qc_log_error("out of memory (a %lldx%lld confusion matrix)", (long long)classes,
                     (long long)classes);
        return QC_ERR_NOMEM;
    }
    c->classes = classes;
    return QC_OK;
}

void qc_confusion_clear(struct qc_confusion *c)
{
    qc_free(c->counts);
    memset(c, 0, sizeof(*c));
}

void qc_confusion_add_pred(struct qc_confusion *c, int64_t label, int64_t pred)
{
    c->n++;
    if (label < 0 || label >= c->classes) {
        c->n_unlisted++;
        return;
    }
    c->top1 += pred == label;
    if (pred >= 0 && pred < c->classes)
        c->counts[label * c->classes + pred]++;
}

void qc_confusion_add(struct qc_confusion *c, const float *scores, int64_t label, int64_t *pred)
{
    int64_t k = 0, rank = 0;
    for (int64_t j = 1; j < c->classes; j++)
        if (scores[j] > scores[k])
            k = j;
    if (pred)
        *pred = k;
    if (label >= 0 && label < c->classes) {
        /* the label's place in the order of the scores, ties broken by the
         * lower index first (as the arg-max) */
        for (int64_t j = 0; j < c->classes; j++)
            rank += scores[j] > scores[label] || (scores[j] == scores[label] && j < label);
        c->top5 += rank < 5;
    }
    qc_confusion_add_pred(c, label, k);
}

static double ratio(int64_t num, int64_t den)
{
    return num > 0 ? (double)num / (double)den : 0.0;
}

void qc_confusion_class(const struct qc_confusion *c, int64_t k, struct qc_class_metrics *m)
{
    int64_t row = 0, col = 0, listed = c->n - c->n_unlisted;
    for (int64_t j = 0; j < c->classes; j++) {
        row += c->counts[k * c->classes + j];
        col += c->counts[j * c->classes + k];
    }
    m->tp = c->counts[k * c->classes + k];
    m->fn = row - m->tp;
    m->fp = col - m->tp;
    m->tn = listed - m->tp - m->fn - m->fp;
    m->precision = ratio(m->tp, m->tp + m->fp);
    m->recall = ratio(m->tp, m->tp + m->fn);
    m->f1 = m->tp > 0 ? 2.0 * m->precision * m->recall / (m->precision + m->recall) : 0.0;
}

static double class_metric(const struct qc_class_metrics *m, enum qc_metric which)
{
    double spec = ratio(m->tn, m->tn + m->fp), npv = ratio(m->tn, m->tn + m->fn);
    switch (which) {
    case QC_METRIC_SENSITIVITY:
        return m->recall;
    case QC_METRIC_SPECIFICITY:
        return spec;
    case QC_METRIC_PRECISION:
        return m->precision;
    case QC_METRIC_NPV:
        return npv;
    case QC_METRIC_MISS_RATE:
        return 1.0 - m->recall;
    case QC_METRIC_FALL_OUT:
        return 1.0 - spec;
    case QC_METRIC_FDR:
        return 1.0 - m->precision;
    case QC_METRIC_FOR:
        return 1.0 - npv;
    case QC_METRIC_IU:
        return ratio(m->tp, m->tp + m->fp + m->fn);
    case QC_METRIC_ACCURACY:
        return ratio(m->tp + m->tn, m->tp + m->tn + m->fp + m->fn);
    case QC_METRIC_F1:
        return m->f1;
    case QC_METRIC_INFORMEDNESS:
        return m->recall + spec - 1.0;
    case QC_METRIC_MARKEDNESS:
        return m->precision + npv - 1.0;
    case QC_METRIC_TOP1:
    case QC_METRIC_TOP5:
        break;
    }
    return 0.0;
}

double qc_confusion_metric(const struct qc_confusion *c, enum qc_metric which)
{
    double sum = 0.0;
    int64_t relevant = 0;
    if (c->n == 0)
        return -1.0;
    if (which == QC_METRIC_TOP1)
        return 100.0 * (double)c->top1 / (double)c->n;
    if (which == QC_METRIC_TOP5)
        return c->classes < 5 ? -1.0 : 100.0 * (double)c->top5 / (double)c->n;
    for (int64_t k = 0; k < c->classes; k++) {
        struct qc_class_metrics m;
        qc_confusion_class(c, k, &m);
        if (m.tp + m.fn == 0)
            continue; /* no image of class k: not averaged (N2D2's relevant()) */
        sum += class_metric(&m, which);
        relevant++;
    }
    return relevant ? 100.0 * sum / (double)relevant : -1.0;
}

bool qc_metric_higher_better(enum qc_metric m)
{
    return m != QC_METRIC_MISS_RATE && m != QC_METRIC_FALL_OUT && m != QC_METRIC_FDR &&
           m != QC_METRIC_FOR;
}

/* Canonical names (N2D2's EnumStrings<ConfusionTableMetric> for the
 * confusion-table metrics), in enum order, then aliases. */
static const struct {
    const char *name;
    enum qc_metric m;
} metric_names[] = {
    { "Top1", QC_METRIC_TOP1 },
    { "Top5", QC_METRIC_TOP5 },
    { "Sensitivity", QC_METRIC_SENSITIVITY },
    { "Specificity", QC_METRIC_SPECIFICITY },
    { "Precision", QC_METRIC_PRECISION },
    { "NegativePredictiveValue", QC_METRIC_NPV },
    { "MissRate", QC_METRIC_MISS_RATE },
    { "FallOut", QC_METRIC_FALL_OUT },
    { "FalseDiscoveryRate", QC_METRIC_FDR },
    { "FalseOmissionRate", QC_METRIC_FOR },
    { "IU", QC_METRIC_IU },
    { "Accuracy", QC_METRIC_ACCURACY },
    { "F1Score", QC_METRIC_F1 },
    { "Informedness", QC_METRIC_INFORMEDNESS },
    { "Markedness", QC_METRIC_MARKEDNESS },
    { "Top-1", QC_METRIC_TOP1 },
    { "Top-5", QC_METRIC_TOP5 },
    { "Recall", QC_METRIC_SENSITIVITY },
    { "NegativePredictive", QC_METRIC_NPV },
    { "Miss", QC_METRIC_MISS_RATE },
    { "Fall-out", QC_METRIC_FALL_OUT },
    { "F1", QC_METRIC_F1 },
    { "F1-score", QC_METRIC_F1 },
    { "MacroF1", QC_METRIC_F1 },
};

enum qc_status qc_metric_from_name(const char *name, enum qc_metric *m)
{
    for (size_t i = 0; name && i < QC_ARRAY_SIZE(metric_names); i++)
        if (strcasecmp(name, metric_names[i].name) == 0) {
            *m = metric_names[i].m;
            return QC_OK;
        }
    return QC_ERR_INVAL;
}

const char *qc_metric_name(enum qc_metric m)
{
    return (unsigned)m < QC_METRIC_COUNT ? metric_names[m].name : "?";
}
