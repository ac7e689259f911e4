/*
 * gradcheck.c - finite-difference checker for op backwards (see gradcheck.h).
 * Every tensor a kernel sees lives in the memory of the backend under test
 * (float inputs, outputs, gradients, workspace, saved state), moved only by
 * its upload/download: on the CPU those are memcpy, on CUDA real transfers.
 */
#include <config.h>

#include "gradcheck.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/attr.h"
#include "backend/backend.h"
#include "ir/graph.h"
#include "ops/op.h"
#include "util/rng.h"

#define GC_SAMPLES 24
#define GC_EPS 4e-3
#define GC_ACC_INIT 0.25f

/* One "name=value" token into an attribute. */
static void parse_attr(const char *tok, struct qc_attr *a)
{
    const char *eq = strchr(tok, '=');
    const char *v;
    int n = 1;
    bool is_float;
    ck_assert_msg(eq != NULL, "bad attribute token '%s'", tok);
    memset(a, 0, sizeof(*a));
    a->name = strndup(tok, (size_t)(eq - tok));
    v = eq + 1;
    if (strncmp(v, "s:", 2) == 0) {
        a->type = QC_ATTR_STRING;
        a->s = strdup(v + 2);
        return;
    }
    for (const char *p = v; *p; p++)
        n += *p == ',';
    if (v[0] && v[strlen(v) - 1] == ',')
        n--;   /* "3," is the one-element list [3] */
    is_float = strpbrk(v, ".eE") != NULL;
    if (n == 1 && !strchr(v, ',')) {
        if (is_float) {
            a->type = QC_ATTR_FLOAT;
            a->f = strtof(v, NULL);
        } else {
            a->type = QC_ATTR_INT;
            a->i = strtoll(v, NULL, 10);
        }
        return;
    }
    a->n = n;
    if (is_float) {
        a->type = QC_ATTR_FLOATS;
        a->floats = malloc((size_t)n * sizeof(float));
    } else {
        a->type = QC_ATTR_INTS;
        a->ints = malloc((size_t)n * sizeof(int64_t));
    }
    for (int i = 0; i < n; i++) {
        char *end;
        if (is_float)
            a->floats[i] = strtof(v, &end);
        else
            a->ints[i] = strtoll(v, &end, 10);
        v = *end == ',' ? end + 1 : end;
    }
}

static void parse_attrs(const char *attrs, struct qc_attrs *as)
{
    char *copy = strdup(attrs ? attrs : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        struct qc_attr a;
        parse_attr(tok, &a);
        ck_assert_int_eq(qc_attrs_add(as, &a), QC_OK);
    }
    free(copy);
}

const char *qc_test_backend_spec(void)
{
    const char *spec = getenv("QC_TEST_BACKEND");
    return spec && spec[0] ? spec : "cpu";
}

struct gc_run {
    struct qc_node          node;
    const struct qc_op_def *def;
    const struct qc_kernel *k;             /* the backend's kernels of the op         */
    struct qc_backend      *be;
    struct qc_op_ctx        ctx;
    struct qc_rng           rng;
    uint64_t                seed;
    int                     n_in, n_out;
    struct qc_tensor       *in[8];         /* host values: the differences move them  */
    struct qc_tensor        bin[8];        /* backend copies; int64 ones stay on host */
    struct qc_tensor        bout[8];       /* outputs, in backend memory              */
    const struct qc_tensor *cin[8];
    struct qc_tensor       *out[8];
    float                  *y0;            /* host copy of output 0                   */
};

/* t: an uninitialised dt tensor of shape s in backend memory. */
static void be_tensor(struct qc_backend *be, enum qc_dtype dt, const struct qc_shape *s,
                      struct qc_tensor *t)
{
    struct qc_shape shape = *s;   /* s may point into t */
    memset(t, 0, sizeof(*t));
    t->dtype = dt;
    t->shape = shape;
    ck_assert_int_eq(qc_backend_alloc(be, qc_tensor_nbytes(t), &t->data), QC_OK);
}

static void be_put(struct qc_backend *be, struct qc_tensor *dst, const void *src)
{
    ck_assert_int_eq(qc_backend_upload(be, dst->data, src, qc_tensor_nbytes(dst)), QC_OK);
}

static void be_get(struct qc_backend *be, void *dst, const struct qc_tensor *src)
{
    ck_assert_int_eq(qc_backend_download(be, dst, src->data, qc_tensor_nbytes(src)), QC_OK);
}

static void be_drop(struct qc_backend *be, struct qc_tensor *t)
{
    if (t->data)
        qc_backend_release(be, t->data);
    t->data = NULL;
}

/* L = sum(r * y0) after a fresh forward (same Dropout mask every time) on
 * freshly uploaded inputs. */
static double loss(struct gc_run *g, const float *r)
{
    int64_t n = qc_tensor_nelem(g->out[0]);
    double l = 0.0;
    for (int i = 0; i < g->n_in; i++)
        if (g->in[i] && g->in[i]->dtype == QC_DTYPE_F32)
            be_put(g->be, &g->bin[i], g->in[i]->data);
    qc_rng_seed(&g->rng, g->seed);
    ck_assert_int_eq(g->k->forward(&g->node, &g->ctx, g->cin, g->out), QC_OK);
    be_get(g->be, g->y0, g->out[0]);
    for (int64_t i = 0; i < n; i++)
        l += (double)r[i] * (double)g->y0[i];
    return l;
}

double qc_gradcheck(const char *op, const char *attrs, int n_in, const struct qc_gc_input *in,
                    const struct qc_gc_opts *opts)
{
    struct gc_run g;
    struct qc_backend *be;
    struct qc_tensor *hdout[8] = { NULL }, *hdin[8] = { NULL };
    struct qc_tensor bdout[8], bdin[8];
    const struct qc_tensor *dout[8] = { NULL };
    struct qc_tensor *din[8] = { NULL };
    struct qc_rng vals;
    double worst = 0.0, tol = opts->tol > 0 ? opts->tol : 1e-3;
    int64_t opset = opts->opset ? opts->opset : 13;
    int threads = opts->threads ? opts->threads : 1;
    float lo = opts->lo, hi = opts->hi;
    size_t ws = 0, sv = 0;
    int kind = qc_op_lookup(op);
    const char *spec = qc_test_backend_spec();
    qc_workspace_fn wsf;
    char label[128];

    ck_assert_msg(kind >= 0, "unknown op %s", op);
    ck_assert_int_le(n_in, 8);
    ck_assert_int_le(opts->n_out, 8);
    if (lo == 0.0f && hi == 0.0f) {
        lo = -1.0f;
        hi = 1.0f;
    }
    memset(&g, 0, sizeof(g));
    memset(bdout, 0, sizeof(bdout));
    memset(bdin, 0, sizeof(bdin));
    snprintf(label, sizeof(label), "%s (gradcheck)", op);
    g.def = qc_op_get((enum qc_op_kind)kind);
    ck_assert_msg(g.def->cpu.backward != NULL, "%s has no CPU backward", op);
    ck_assert_msg(qc_backend_new(spec, threads, &be) == QC_OK, "backend %s", spec);
    g.be = be;
    g.k = qc_backend_kernel(be, (enum qc_op_kind)kind);
    if (!g.k || !g.k->forward || !g.k->backward) {
        /* a device backend without this op: nothing to check (counted by the
         * "gradcheck skip" lines) */
        printf("gradcheck skip: %s [%s]: the %s backend has no %s kernel\n", op,
               attrs ? attrs : "", spec, g.k && g.k->forward ? "backward" : "forward");
        fflush(stdout);
        qc_backend_free(be);
        return 0.0;
    }
    g.seed = opts->seed + 17;
    g.n_in = n_in;
    g.n_out = opts->n_out ? opts->n_out : 1;
    g.node.name = strdup("gc");
    g.node.op_type = strdup(op);
    g.node.domain = strdup("");
    g.node.kind = kind;
    g.node.n_in = n_in;
    g.node.n_out = g.n_out;
    g.node.in = calloc((size_t)n_in + 1, sizeof(int));
    g.node.out = calloc((size_t)g.n_out + 1, sizeof(int));
    for (int i = 0; i < n_in; i++)
        g.node.in[i] = in[i].absent ? -1 : i;
    for (int j = 0; j < g.n_out; j++)
        g.node.out[j] = n_in + j;
    parse_attrs(attrs, &g.node.attrs);
    if (g.def->parse)
        ck_assert_int_eq(g.def->parse(&g.node, opset, label), QC_OK);

    /* inputs: random floats (fixed seed), given ints */
    qc_rng_seed(&vals, opts->seed);
    for (int i = 0; i < n_in; i++) {
        struct qc_shape s = qc_shape_make(in[i].ndim, in[i].dims);
        enum qc_dtype dt = in[i].dtype ? in[i].dtype : QC_DTYPE_F32;
        if (in[i].absent)
            continue;
        ck_assert_int_eq(qc_tensor_new(dt, &s, &g.in[i]), QC_OK);
        for (int64_t k = 0; k < qc_shape_nelem(&s); k++) {
            if (dt == QC_DTYPE_I64)
                qc_tensor_i64(g.in[i])[k] = in[i].ivals[k];
            else
                qc_tensor_f32(g.in[i])[k] =
                    in[i].fvals ? in[i].fvals[k] : lo + (hi - lo) * qc_rng_uniform(&vals);
        }
        /* float inputs live in backend memory (uploaded by loss()), integer
         * ones stay on the host, where every backend's kernels read them */
        if (dt == QC_DTYPE_F32)
            be_tensor(be, dt, &s, &g.bin[i]);
        else
            g.bin[i] = *g.in[i];
        g.bin[i].owns = false;
        g.cin[i] = &g.bin[i];
    }
    /* infer: data visible only for inputs that are constants (no gradient) */
    {
        struct qc_tensor views[8];
        const struct qc_tensor *vin[8];
        for (int i = 0; i < n_in; i++) {
            vin[i] = NULL;
            if (!g.in[i])
                continue;
            views[i] = *g.in[i];
            if (in[i].grad)
                views[i].data = NULL;
            vin[i] = &views[i];
        }
        for (int j = 0; j < g.n_out; j++)
            g.out[j] = &g.bout[j];
        ck_assert_int_eq(g.def->infer(&g.node, label, vin, g.out), QC_OK);
    }
    ck_assert_int_eq(g.bout[0].dtype, QC_DTYPE_F32);
    for (int j = 0; j < g.n_out; j++) {
        struct qc_tensor *t = &g.bout[j];
        be_tensor(be, t->dtype, &t->shape, t);
        if (t->dtype == QC_DTYPE_F32) {
            ck_assert_int_eq(qc_tensor_new(QC_DTYPE_F32, &t->shape, &hdout[j]), QC_OK);
            for (int64_t k = 0; k < qc_tensor_nelem(t); k++)
                qc_tensor_f32(hdout[j])[k] = j == 0 ? 2.0f * qc_rng_uniform(&vals) - 1.0f : 0.0f;
            be_tensor(be, QC_DTYPE_F32, &t->shape, &bdout[j]);
            be_put(be, &bdout[j], hdout[j]->data);
            dout[j] = &bdout[j];
        }
    }
    g.y0 = malloc((size_t)qc_tensor_nelem(&g.bout[0]) * sizeof(float) + 1);
    ck_assert_ptr_nonnull(g.y0);

    wsf = g.k->workspace ? g.k->workspace : g.def->workspace;
    if (wsf)
        ws = wsf(&g.node, g.cin, (const struct qc_tensor *const *)g.out, threads);
    if (g.def->saved)
        sv = g.def->saved(&g.node, g.cin, (const struct qc_tensor *const *)g.out);
    g.ctx.be = be;
    if (ws)
        ck_assert_int_eq(qc_backend_alloc(be, ws, &g.ctx.workspace), QC_OK);
    g.ctx.workspace_size = ws;
    if (sv)
        ck_assert_int_eq(qc_backend_alloc(be, sv, &g.ctx.saved), QC_OK);
    g.ctx.saved_size = sv;
    g.ctx.rng = &g.rng;
    g.ctx.threads = threads;
    g.ctx.opset = opset;
    g.ctx.training = opts->training;
    g.ctx.label = label;

    /* analytic: forward, then backward into buffers that start at GC_ACC_INIT */
    (void)loss(&g, qc_tensor_f32(hdout[0]));
    for (int i = 0; i < n_in; i++) {
        if (!in[i].grad)
            continue;
        ck_assert_int_eq(qc_tensor_new(QC_DTYPE_F32, &g.in[i]->shape, &hdin[i]), QC_OK);
        for (int64_t k = 0; k < qc_tensor_nelem(hdin[i]); k++)
            qc_tensor_f32(hdin[i])[k] = GC_ACC_INIT;
        be_tensor(be, QC_DTYPE_F32, &g.in[i]->shape, &bdin[i]);
        be_put(be, &bdin[i], hdin[i]->data);
        din[i] = &bdin[i];
    }
    ck_assert_int_eq(g.k->backward(&g.node, &g.ctx, g.cin,
                                   (const struct qc_tensor *const *)g.out, dout, din),
                     QC_OK);
    for (int i = 0; i < n_in; i++)
        if (din[i])
            be_get(be, hdin[i]->data, din[i]);

    for (int i = 0; i < n_in; i++) {
        float *x, *a;
        int64_t n;
        double amax = 0.0;
        int used = 0, tried = 0;
        if (!in[i].grad)
            continue;
        x = qc_tensor_f32(g.in[i]);
        a = qc_tensor_f32(hdin[i]);
        n = qc_tensor_nelem(g.in[i]);
        for (int64_t k = 0; k < n; k++) {
            a[k] -= GC_ACC_INIT;
            amax = fmax(amax, fabs((double)a[k]));
        }
        for (int s = 0; s < GC_SAMPLES && s < n; s++) {
            int64_t k = n <= GC_SAMPLES ? s : (int64_t)(qc_rng_next(&vals) % (uint64_t)n);
            float x0 = x[k];
            double num[2], err;
            for (int e = 0; e < 2; e++) {
                double eps = GC_EPS / (e + 1);
                double lp, lm;
                x[k] = x0 + (float)eps;
                lp = loss(&g, qc_tensor_f32(hdout[0]));
                x[k] = x0 - (float)eps;
                lm = loss(&g, qc_tensor_f32(hdout[0]));
                x[k] = x0;
                /* divide by the step actually taken in float */
                num[e] = (lp - lm) / ((double)(x0 + (float)eps) - (double)(x0 - (float)eps));
            }
            tried++;
            if (fabs(num[0] - num[1]) > tol * (fabs(num[1]) + 1e-2 * amax + 1e-6))
                continue; /* a kink inside [x-eps, x+eps] */
            used++;
            /* the wider step: half the float rounding noise of the narrow one */
            err = fabs((double)a[k] - num[0]) / (fmax(fabs(num[0]), fabs((double)a[k])) +
                                                   1e-2 * amax + 1e-6);
            if (err > worst)
                worst = err;
            ck_assert_msg(err <= tol, "%s [%s] on %s: d/d(input %d)[%lld]: analytic %.6g, "
                          "numeric %.6g", op, attrs ? attrs : "", spec, i, (long long)k,
                          (double)a[k], num[0]);
        }
        ck_assert_msg(used * 2 >= tried, "%s input %d: only %d of %d samples away from kinks",
                      op, i, used, tried);
    }
    (void)loss(&g, qc_tensor_f32(hdout[0]));

    for (int i = 0; i < 8; i++) {
        if (g.in[i] && g.in[i]->dtype == QC_DTYPE_F32)
            be_drop(be, &g.bin[i]);
        be_drop(be, &bdin[i]);
        qc_tensor_free(g.in[i]);
        qc_tensor_free(hdin[i]);
    }
    for (int j = 0; j < 8; j++) {
        be_drop(be, &g.bout[j]);
        be_drop(be, &bdout[j]);
        qc_tensor_free(hdout[j]);
    }
    if (g.ctx.workspace)
        qc_backend_release(be, g.ctx.workspace);
    if (g.ctx.saved)
        qc_backend_release(be, g.ctx.saved);
    free(g.y0);
    qc_backend_free(be);
    qc_free(g.node.name);
    qc_free(g.node.op_type);
    qc_free(g.node.domain);
    free(g.node.in);
    free(g.node.out);
    qc_attrs_clear(&g.node.attrs);
    qc_free(g.node.params);
    return worst;
}
