/*
 * run_model.c - test helper: runs a model on one input and compares every
 * graph output with a reference.  The model is read as qatconv reads it:
 * qc_import_load, the import normalization included.
 *
 *     run_model MODEL.onnx DIR [THREADS]
 *
 * DIR holds input_0.pb (the first graph input; its dim 0 is the batch) and
 * output_<i>.pb for each graph output i, as ONNX test data (tests/
 * int_layers.py writes them from ONNX Runtime).  Prints one line per output:
 * name, dtype, elements, mismatching elements, max |difference|.  Integer
 * outputs must match exactly, float outputs within 1e-4 of max|ref| (plus one
 * unit in the last place for a float16 / bfloat16 output).  Exit
 * status 0 when all match, 1 when one differs, 2 on an error.  The model's
 * data input is bound to input_0.pb as qatconv binds it to a recipe's images
 * (plan/inputs.h): symbolic sizes take the tensor's, and a fixed batch of 1
 * runs at the tensor's batch.
 *
 * A model with another fixed batch b (its plan runs at b whatever is asked) takes
 * an input of k*b images as k forward passes of b; an output whose reference
 * holds k times the plan's dim 0 is their concatenation, any other output
 * (one that does not carry the batch) is the last pass's.  With the
 * environment variable QC_RUN_MODEL_SAVE=DIR2, output i is also written raw
 * (its elements in memory order, host byte order) to DIR2/got_<i>.raw, so a
 * script can compare predictions (scripts/corpus-table does).
 *
 * Memory: with one pass (a symbolic batch) the outputs are compared where
 * the plan computed them, each reference read just before its comparison
 * and freed after: the plan and one reference, not every output three
 * times (VGG-19's 214 integer tensors of 8 images are 6 GB).
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"
#include "onnx/onnx_io.h"
#include "backend/backend.h"
#include "ir/graph.h"
#include "plan/inputs.h"
#include "plan/plan.h"

static bool is_float(enum qc_dtype dt)
{
    return dt == QC_DTYPE_F32 || dt == QC_DTYPE_F64;
}

/* One unit in the last place of |r| in the file's half type (QC_FILE_DTYPE_F16 or
 * _BF16; 0 for float32 outputs: no unit). */
static double half_ulp(int file_dtype, double r)
{
    int e, mant = file_dtype == QC_FILE_DTYPE_F16 ? 10 : 7,
           emin = file_dtype == QC_FILE_DTYPE_F16 ? -14 : -126;
    if (file_dtype != QC_FILE_DTYPE_F16 && file_dtype != QC_FILE_DTYPE_BF16)
        return 0.0;
    frexp(fabs(r), &e); /* |r| = m·2^e, 0.5 <= m < 1 */
    e = e - 1 < emin ? emin : e - 1;
    return ldexp(1.0, e - mant);
}

/* Compares got with want; returns true when they agree.  A float16 / bfloat16
 * output (file_dtype) may also differ by one unit of its type: both sides round
 * values that agree within the tolerance, and one can sit across a rounding
 * boundary from the other. */
static bool compare(const char *name, const struct qc_tensor *got, const struct qc_tensor *want,
                    int file_dtype)
{
    int64_t n = qc_tensor_nelem(want), bad = 0;
    double maxdiff = 0.0, maxref = 0.0;
    bool ok;
    if (got->dtype != want->dtype || !qc_shape_equal(&got->shape, &want->shape)) {
        char a[128], b[128];
        printf("%s: %s %s, reference %s %s\n", name, qc_dtype_name(got->dtype),
               qc_shape_str(&got->shape, a, sizeof(a)), qc_dtype_name(want->dtype),
               qc_shape_str(&want->shape, b, sizeof(b)));
        return false;
    }
    for (int64_t i = 0; i < n; i++)
        maxref = fmax(maxref, fabs(qc_tensor_get_f64(want, i)));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(qc_tensor_get_f64(got, i) - qc_tensor_get_f64(want, i));
        /* integers exactly; floats within 1e-4 of the largest reference value
         * (plus one unit of a float16 output) */
        double ulp = half_ulp(file_dtype, qc_tensor_get_f64(want, i));
        if (!(d <= (is_float(want->dtype) ? 1e-4 * maxref + ulp : 0.0)))
            bad++;
        if (!(d <= maxdiff))
            maxdiff = d;
    }
    ok = bad == 0;
    printf("%s %s %lld elements: %lld differ, max |diff| %.6g\n", name,
           qc_dtype_name(want->dtype), (long long)n, (long long)bad, maxdiff);
    return ok;
}

/* Writes t's elements to DIR/got_<i>.raw; false on an I/O error (reported). */
static bool save_raw(const char *dir, int i, const struct qc_tensor *t)
{
    char path[4096];
    FILE *f;
    size_t n = qc_tensor_nbytes(t);
    bool ok;
    snprintf(path, sizeof(path), "%s/got_%d.raw", dir, i);
    f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "run_model: %s: cannot create\n", path);
        return false;
    }
    ok = fwrite(t->data, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "run_model: %s: write error\n", path);
    return ok;
}

/* Number of forward passes of the plan's input t that make up in (0: it does not fit). */
static int64_t n_passes(const struct qc_tensor *t, const struct qc_tensor *in)
{
    if (t->dtype != in->dtype || t->shape.ndim != in->shape.ndim || t->shape.ndim < 1 ||
        t->shape.dims[0] < 1 || in->shape.dims[0] % t->shape.dims[0] != 0)
        return 0;
    for (int d = 1; d < t->shape.ndim; d++)
        if (t->shape.dims[d] != in->shape.dims[d])
            return 0;
    return in->shape.dims[0] / t->shape.dims[0];
}

int main(int argc, char **argv)
{
    struct qc_graph *g = NULL;
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    struct qc_input_binding *bind = NULL;
    struct qc_tensor *in = NULL, **want = NULL, **got = NULL;
    bool *stacked = NULL;
    const char *save = getenv("QC_RUN_MODEL_SAVE");
    char path[4096];
    int rc = 2, threads = argc > 3 ? atoi(argv[3]) : 1, n_out = 0;
    int64_t passes = 0;
    bool all = true;

    if (argc < 3) {
        fprintf(stderr, "usage: run_model MODEL.onnx DIR [THREADS]\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/input_0.pb", argv[2]);
    if (qc_import_load(argv[1], &g) != QC_OK || qc_onnx_load_tensor(path, &in, NULL) != QC_OK ||
        qc_backend_new("cpu", threads, &be) != QC_OK || in->shape.ndim < 1)
        goto out;
    {
        /* the tensor's sizes, by position (channels first: C, H, W) */
        const int64_t *d = in->shape.dims;
        int r = in->shape.ndim;
        if (qc_inputs_bind(g, QC_INPUT_CHANNELS_FIRST, r >= 3 ? d[1] : 0, r == 4 ? d[2] : 1,
                           r >= 3 ? d[r - 1] : 0, d[0] != 1, &bind) != QC_OK ||
            qc_plan_new(g, be, d[0], &p) != QC_OK)
            goto out;
    }
    passes = n_passes(qc_plan_input(p, 0), in);
    if (passes == 0) {
        fprintf(stderr, "run_model: input_0.pb does not fit the model's input\n");
        goto out;
    }
    n_out = qc_plan_n_outputs(p);
    want = calloc((size_t)n_out + 1, sizeof(*want));
    got = calloc((size_t)n_out + 1, sizeof(*got));
    stacked = calloc((size_t)n_out + 1, sizeof(*stacked));
    if (!want || !got || !stacked) {
        fprintf(stderr, "run_model: out of memory\n");
        goto out;
    }
    if (passes == 1) {
        /* one pass: each output compared in the plan, its reference loaded
         * only for that (every integer tensor of a 224x224 model is GBs) */
        memcpy(qc_plan_input(p, 0)->data, in->data, qc_tensor_nbytes(qc_plan_input(p, 0)));
        if (qc_plan_forward(p) != QC_OK)
            goto out;
        for (int i = 0; i < n_out; i++) {
            snprintf(path, sizeof(path), "%s/output_%d.pb", argv[2], i);
            if (qc_onnx_load_tensor(path, &want[i], NULL) != QC_OK)
                goto out;
            all = compare(g->values[g->outputs[i]].name, qc_plan_output(p, i), want[i],
                          g->values[g->outputs[i]].file_dtype) &&
                  all;
            qc_tensor_free(want[i]);
            want[i] = NULL;
            if (save && !save_raw(save, i, qc_plan_output(p, i)))
                goto out;
        }
        rc = all ? 0 : 1;
        goto out;
    }
    for (int i = 0; i < n_out; i++) {
        struct qc_shape s = qc_plan_output(p, i)->shape;
        snprintf(path, sizeof(path), "%s/output_%d.pb", argv[2], i);
        if (qc_onnx_load_tensor(path, &want[i], NULL) != QC_OK)
            goto out;
        stacked[i] = passes > 1 && s.ndim >= 1 && want[i]->shape.ndim == s.ndim &&
                     want[i]->shape.dims[0] == s.dims[0] * passes;
        if (stacked[i])
            s.dims[0] *= passes;
        if (qc_tensor_new(qc_plan_output(p, i)->dtype, &s, &got[i]) != QC_OK)
            goto out;
    }
    for (int64_t k = 0; k < passes; k++) {
        struct qc_tensor *t = qc_plan_input(p, 0);
        size_t nb = qc_tensor_nbytes(t);
        memcpy(t->data, (const char *)in->data + (size_t)k * nb, nb);
        if (qc_plan_forward(p) != QC_OK)
            goto out;
        for (int i = 0; i < n_out; i++) {
            const struct qc_tensor *o = qc_plan_output(p, i);
            size_t ob = qc_tensor_nbytes(o);
            memcpy((char *)got[i]->data + (stacked[i] ? (size_t)k * ob : 0), o->data, ob);
        }
    }
    for (int i = 0; i < n_out; i++) {
        all = compare(g->values[g->outputs[i]].name, got[i], want[i],
                      g->values[g->outputs[i]].file_dtype) &&
              all;
        if (save && !save_raw(save, i, got[i]))
            goto out;
    }
    rc = all ? 0 : 1;
out:
    for (int i = 0; i < n_out && want && got; i++) {
        qc_tensor_free(want[i]);
        qc_tensor_free(got[i]);
    }
    free(want);
    free(got);
    free(stacked);
    qc_tensor_free(in);
    qc_plan_free(p);
    qc_backend_free(be);
    qc_inputs_unbind(g, bind, false);
    qc_graph_free(g);
    return rc;
}
