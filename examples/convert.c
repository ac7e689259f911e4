/*
 * convert.c - libqatconv from a program: load a model and a recipe, fine-tune
 * with a progress line per epoch, write the integer-only export.
 *
 *   cc convert.c $(pkg-config --cflags --libs qatconv) -o convert
 *   ./convert IN.onnx RECIPE.ini OUT.onnx [EPOCHS [LIMIT]]
 *
 * Built and run by tests/test_example.sh against the installed header and
 * library (make check).
 */
#include <stdio.h>
#include <stdlib.h>

#include <qatconv.h>

/* Prints one line per epoch and per evaluation; ignores the batches. */
static void on_event(const struct qc_event *ev, void *user)
{
    FILE *out = user;
    if (ev->kind == QC_EVENT_EPOCH)
        fprintf(out, "epoch %d/%d: loss %.4f, train top-1 %.2f%%\n", ev->epoch, ev->epochs,
                ev->loss, ev->accuracy);
    else if (ev->kind == QC_EVENT_END && ev->phase == QC_PHASE_EVALUATE)
        fprintf(out, "%s: %lld images\n", ev->what, (long long)ev->done);
    else if (ev->kind == QC_EVENT_NOTE)
        fprintf(out, "note: %s\n", ev->text);
}

int main(int argc, char **argv)
{
    struct qc_job_options jo = QC_JOB_OPTIONS_INIT;
    struct qc_convert_options co = QC_CONVERT_OPTIONS_INIT;
    struct qc_convert_result res;
    struct qc_job *job = NULL;
    struct qc_model *m = NULL;
    struct qc_recipe *r = NULL;
    enum qc_status st;

    if (argc < 4) {
        fprintf(stderr, "usage: %s IN.onnx RECIPE.ini OUT.onnx [EPOCHS [LIMIT]]\n", argv[0]);
        return QC_EXIT_USAGE;
    }
    co.epochs = argc > 4 ? atoi(argv[4]) : -1;
    co.limit = argc > 5 ? atoll(argv[5]) : 0;
    co.format = QC_FORMAT_INT;
    co.progress = on_event;
    co.progress_user = stdout;
    jo.threads = 1;

    st = qc_model_load(argv[1], &m);
    if (st == QC_OK)
        st = qc_recipe_load(argv[2], false, &r);
    if (st == QC_OK)
        st = qc_recipe_check(r, m, false);
    if (st == QC_OK)
        st = qc_job_new(&jo, &job);
    if (st == QC_OK)
        st = qc_convert(job, m, r, &co, &res);
    if (st == QC_OK)
        st = qc_model_write(m, argv[3]);
    if (st == QC_OK)
        printf("%s: %d integer layers, %lld bytes of integer weights, test top-1 %.2f%% "
               "(float %.2f%%)\n", argv[3], res.n_int_layers, (long long)res.weight_bytes,
               res.test_export, res.test_float);
    else
        fprintf(stderr, "%s: %s\n", argv[0], qc_strerror(st));
    qc_job_free(job);
    qc_recipe_free(r);
    qc_model_free(m);
    return (int)qc_status_exit_code(st);
}
