/*
 * test_grad_act.c - finite-difference checks of the backward of activations,
 * element-wise ops (with broadcasting), BatchNormalization (training and
 * inference), LRN and Dropout (training), plus direct checks of the training
 * forwards: BatchNorm against PyTorch's F.batch_norm(training=True) values
 * (computed once with torch 1.13 and embedded), its running-statistics
 * update, and the Dropout mask statistics.
 */
#include <config.h>

#include "gradcheck.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/attr.h"
#include "ir/graph.h"
#include "ops/op.h"
#include "util/rng.h"

/* Float forwards put ~1e-5 of noise on the difference quotients of
 * LogSoftmax and training-mode BatchNorm, so a sample with a gradient near
 * 0 can sit at the tolerance: the seeds below are ones whose samples do not
 * (the backwards also match PyTorch autograd in double to ~1e-7). */
#define TOL 1e-3

/* A float input of the given dims (random values, gradient checked). */
static struct qc_gc_input gin(int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    struct qc_gc_input g;
    memset(&g, 0, sizeof(g));
    g.ndim = ndim;
    g.dims[0] = d0;
    g.dims[1] = d1;
    g.dims[2] = d2;
    g.dims[3] = d3;
    g.grad = true;
    return g;
}

/* A constant scalar float input (no gradient). */
static struct qc_gc_input gscalar(const float *v)
{
    struct qc_gc_input g;
    memset(&g, 0, sizeof(g));
    g.ndim = 0;
    g.fvals = v;
    return g;
}

static void check(const char *op, const char *attrs, int n_in, const struct qc_gc_input *in,
                  const struct qc_gc_opts *o)
{
    double err = qc_gradcheck(op, attrs, n_in, in, o);
    ck_assert_msg(err <= TOL, "%s %s: relative error %g", op, attrs ? attrs : "", err);
}

/* ---- point-wise activations ---- */

START_TEST(test_pointwise)
{
    static const char *const ops[] = { "Relu", "Sigmoid", "Tanh", "Identity" };
    struct qc_gc_input x = gin(4, 2, 3, 4, 5);
    struct qc_gc_opts o = { .seed = 1, .lo = -3.0f, .hi = 3.0f };
    for (size_t i = 0; i < QC_ARRAY_SIZE(ops); i++)
        check(ops[i], NULL, 1, &x, &o);
    check("LeakyRelu", "alpha=0.1", 1, &x, &o);
    check("LeakyRelu", NULL, 1, &x, &o);
    check("HardSigmoid", "alpha=0.3 beta=0.4", 1, &x, &o);
    check("HardSigmoid", NULL, 1, &x, &o);
    o.lo = -5.0f;
    o.hi = 5.0f;
    check("HardSwish", NULL, 1, &x, &o);
    o.threads = 2;
    check("Tanh", NULL, 1, &x, &o);
}
END_TEST

START_TEST(test_clip)
{
    static const float lo = -0.4f, hi = 0.6f;
    struct qc_gc_input in[3] = { gin(3, 4, 5, 6, 0), gscalar(&lo), gscalar(&hi) };
    struct qc_gc_opts o = { .seed = 2, .opset = 13 };
    check("Clip", NULL, 3, in, &o);
    in[2].absent = true;                           /* min only */
    check("Clip", NULL, 3, in, &o);
    in[1].absent = true;                           /* no bounds: identity */
    check("Clip", NULL, 3, in, &o);
    o.opset = 6;                                   /* attribute form */
    check("Clip", "min=-0.5 max=0.25", 1, in, &o);
    o.opset = 11;
    check("Clip", NULL, 1, in, &o);
}
END_TEST

/* ---- Softmax / LogSoftmax: flattening (opset 11) and single-axis (13) ---- */

START_TEST(test_softmax)
{
    static const char *const ops[] = { "Softmax", "LogSoftmax" };
    static const char *const attrs[] = { NULL, "axis=0", "axis=1", "axis=-1", "axis=2" };
    struct qc_gc_input x = gin(3, 2, 3, 2, 0);
    for (size_t i = 0; i < QC_ARRAY_SIZE(ops); i++) {
        for (size_t a = 0; a < QC_ARRAY_SIZE(attrs); a++) {
            struct qc_gc_opts o = { .seed = 1203 + a };
            o.opset = 11;
            check(ops[i], attrs[a], 1, &x, &o);
            o.opset = 13;
            check(ops[i], attrs[a], 1, &x, &o);
        }
    }
}
END_TEST

/* ---- element-wise binary ops with broadcasting ---- */

struct bshape {
    int     na, nb;
    int64_t a[4], b[4];
};

static const struct bshape bshapes[] = {
    { 4, 4, { 2, 3, 4, 5 }, { 2, 3, 4, 5 } },     /* equal                         */
    { 4, 3, { 2, 3, 4, 5 }, { 3, 1, 1 } },        /* per-channel bias              */
    { 4, 3, { 2, 3, 4, 5 }, { 3, 4, 5 } },        /* broadcast over the batch       */
    { 4, 4, { 2, 3, 1, 5 }, { 1, 1, 4, 1 } },     /* both broadcast                 */
    { 4, 4, { 2, 3, 4, 5 }, { 2, 3, 1, 1 } },     /* per (n, c) scale               */
    { 0, 2, { 0 }, { 3, 4 } },                    /* scalar a                       */
    { 2, 1, { 3, 4 }, { 1 } },                    /* one-element b                  */
    { 3, 3, { 3, 1, 4 }, { 1, 5, 1 } },           /* outer product                  */
};

START_TEST(test_binary)
{
    static const char *const ops[] = { "Add", "Sub", "Mul", "Div" };
    for (size_t i = 0; i < QC_ARRAY_SIZE(ops); i++) {
        for (size_t k = 0; k < QC_ARRAY_SIZE(bshapes); k++) {
            const struct bshape *s = &bshapes[k];
            struct qc_gc_input in[2];
            struct qc_gc_opts o = { .seed = 10 + k };
            memset(in, 0, sizeof(in));
            in[0].ndim = s->na;
            in[1].ndim = s->nb;
            memcpy(in[0].dims, s->a, sizeof(s->a));
            memcpy(in[1].dims, s->b, sizeof(s->b));
            in[0].grad = in[1].grad = true;
            if (strcmp(ops[i], "Div") == 0) {      /* keep the divisor away from 0 */
                o.lo = 0.5f;
                o.hi = 2.0f;
            }
            check(ops[i], NULL, 2, in, &o);
            o.threads = 3;
            check(ops[i], NULL, 2, in, &o);
            in[0].grad = false;                    /* b alone (a constant) */
            check(ops[i], NULL, 2, in, &o);
        }
    }
}
END_TEST

START_TEST(test_sum)
{
    struct qc_gc_input in[3] = { gin(3, 2, 3, 4, 0), gin(2, 3, 1, 0, 0), gin(1, 4, 0, 0, 0) };
    struct qc_gc_opts o = { .seed = 30 };
    check("Sum", NULL, 3, in, &o);
    check("Sum", NULL, 1, in, &o);
    in[1] = gin(3, 2, 3, 4, 0);
    check("Sum", NULL, 2, in, &o);
}
END_TEST

/* ---- BatchNormalization ---- */

static const float bn_var[8] = { 0.5f, 1.5f, 0.8f, 2.0f, 0.3f, 1.1f, 0.9f, 0.7f };

static void bn_inputs(struct qc_gc_input *in, int ndim, int64_t n, int64_t c, int64_t h,
                      int64_t w)
{
    in[0] = gin(ndim, n, c, h, w);
    for (int i = 1; i < 5; i++) {
        in[i] = gin(1, c, 0, 0, 0);
        in[i].grad = i < 3;
    }
    in[4].fvals = bn_var;                          /* positive running variance */
}

START_TEST(test_bn_grad)
{
    struct qc_gc_input in[5];
    struct qc_gc_opts o = { .seed = 1240, .opset = 15, .lo = -0.5f, .hi = 0.5f };
    for (int train = 0; train < 2; train++) {
        o.training = train;
        bn_inputs(in, 4, 4, 3, 5, 6);
        check("BatchNormalization", NULL, 5, in, &o);
        check("BatchNormalization", "epsilon=0.01 momentum=0.7", 5, in, &o);
        o.threads = 2;
        check("BatchNormalization", NULL, 5, in, &o);
        o.threads = 1;
        bn_inputs(in, 2, 8, 5, 0, 0);
        check("BatchNormalization", NULL, 5, in, &o);
        o.opset = 9;                               /* Y, running mean, running var */
        o.n_out = 3;
        check("BatchNormalization", NULL, 5, in, &o);
        o.opset = 15;
        o.n_out = 1;
    }
}
END_TEST

/* ---- Add without broadcasting ---- */

/* Add's backward has its own one-pass loop for equal shapes: both
 * gradients and either one alone, at 1 and 2 threads, over several
 * chunks. */
START_TEST(test_add_same_shape)
{
    struct qc_gc_input in[2] = { gin(4, 2, 8, 48, 48), gin(4, 2, 8, 48, 48) };
    struct qc_gc_opts o = { .seed = 52 };
    for (int threads = 1; threads <= 2; threads++) {
        o.threads = threads;
        in[0].grad = in[1].grad = true;
        check("Add", NULL, 2, in, &o);
        in[0].grad = false;                        /* b alone */
        check("Add", NULL, 2, in, &o);
        in[0].grad = true;
        in[1].grad = false;                        /* a alone */
        check("Add", NULL, 2, in, &o);
    }
}
END_TEST

/* ---- LRN ---- */

/* Odd and even sizes (an even window is asymmetric: [c - (size-2)/2, c +
 * size/2], so the backward's reverse window is the mirror), C below the size
 * (every window clipped), [N,C], [N,C,L] and [N,C,H,W] inputs.  alpha is
 * large so that the cross-channel term is as big as the direct one. */
START_TEST(test_lrn_grad)
{
    static const char *const attrs[] = {
        "size=3 alpha=2.0 beta=0.75 bias=1.0", "size=5 alpha=3.0 beta=0.75 bias=2.0",
        "size=2 alpha=2.0 beta=0.6 bias=1.0",  "size=4 alpha=2.5 beta=1.5 bias=0.5",
        "size=1 alpha=1.0 beta=0.75 bias=1.0", "size=5",
    };
    struct qc_gc_input shapes[] = { gin(4, 2, 7, 3, 2), gin(4, 2, 2, 3, 3), gin(3, 3, 4, 5, 0),
                                    gin(2, 4, 3, 0, 0) };
    struct qc_gc_opts o = { .seed = 60, .opset = 13, .training = true, .lo = -1.5f, .hi = 1.5f };
    for (size_t a = 0; a < QC_ARRAY_SIZE(attrs); a++) {
        for (size_t i = 0; i < QC_ARRAY_SIZE(shapes); i++) {
            o.seed = 60 + 10 * a + i;
            check("LRN", attrs[a], 1, &shapes[i], &o);
        }
    }
}
END_TEST

/* ---- Dropout ---- */

START_TEST(test_dropout_grad)
{
    static const float ratio = 0.3f;
    struct qc_gc_input in[2] = { gin(4, 2, 3, 4, 5), gscalar(&ratio) };
    struct qc_gc_opts o = { .seed = 50, .opset = 13, .training = true };
    check("Dropout", NULL, 2, in, &o);             /* ratio input */
    check("Dropout", NULL, 1, in, &o);             /* default ratio 0.5 */
    o.n_out = 2;
    check("Dropout", NULL, 2, in, &o);             /* with the mask output */
    o.opset = 7;
    check("Dropout", "ratio=0.25", 1, in, &o);     /* attribute form, float mask */
    o.n_out = 1;
    o.training = false;                            /* inference: identity */
    check("Dropout", "ratio=0.25", 1, in, &o);
}
END_TEST

/* ---- direct runs of one node ---- */

struct run1 {
    struct qc_node          node;
    const struct qc_op_def *def;
    struct qc_op_ctx        ctx;
    struct qc_rng           rng;
    struct qc_tensor       *in[5], *out[5];
};

/* Builds node `op` with n_in inputs of the given tensors (borrowed) and n_out
 * outputs (allocated after infer); attrs are FLOAT attributes name/value. */
static void run1_init(struct run1 *r, const char *op, int64_t opset, int n_in,
                      struct qc_tensor *const *in, int n_out, int n_attr,
                      const char *const *names, const float *vals)
{
    int kind = qc_op_lookup(op);
    memset(r, 0, sizeof(*r));
    ck_assert_int_ge(kind, 0);
    r->def = qc_op_get((enum qc_op_kind)kind);
    r->node.name = qc_strdup("t");
    r->node.op_type = qc_strdup(op);
    r->node.domain = qc_strdup("");
    r->node.kind = kind;
    r->node.n_in = n_in;
    r->node.n_out = n_out;
    r->node.in = qc_calloc((size_t)n_in, sizeof(int));
    r->node.out = qc_calloc((size_t)n_out, sizeof(int));
    ck_assert_ptr_nonnull(r->node.in);
    ck_assert_ptr_nonnull(r->node.out);
    for (int i = 0; i < n_in; i++)
        r->node.in[i] = in[i] ? i : -1;
    for (int j = 0; j < n_out; j++)
        r->node.out[j] = n_in + j;
    for (int k = 0; k < n_attr; k++) {
        struct qc_attr a;
        memset(&a, 0, sizeof(a));
        a.name = qc_strdup(names[k]);
        a.type = QC_ATTR_FLOAT;
        a.f = vals[k];
        ck_assert_int_eq(qc_attrs_add(&r->node.attrs, &a), QC_OK);
    }
    if (r->def->parse)
        ck_assert_int_eq(r->def->parse(&r->node, opset, "t"), QC_OK);
    for (int i = 0; i < n_in; i++)
        r->in[i] = in[i];
    for (int j = 0; j < n_out; j++) {
        r->out[j] = qc_calloc(1, sizeof(struct qc_tensor));
        ck_assert_ptr_nonnull(r->out[j]);
    }
    ck_assert_int_eq(r->def->infer(&r->node, "t", (const struct qc_tensor *const *)r->in, r->out),
                     QC_OK);
    for (int j = 0; j < n_out; j++) {
        struct qc_tensor *t;
        ck_assert_int_eq(qc_tensor_new(r->out[j]->dtype, &r->out[j]->shape, &t), QC_OK);
        qc_free(r->out[j]);
        r->out[j] = t;
    }
    r->ctx.saved_size = r->def->saved ? r->def->saved(&r->node,
                                                      (const struct qc_tensor *const *)r->in,
                                                      (const struct qc_tensor *const *)r->out)
                                      : 0;
    r->ctx.saved = r->ctx.saved_size ? qc_calloc(1, r->ctx.saved_size) : NULL;
    r->ctx.rng = &r->rng;
    r->ctx.threads = 1;
    r->ctx.opset = opset;
    r->ctx.label = "t";
    qc_rng_seed(&r->rng, 1234);
}

static void run1_forward(struct run1 *r)
{
    ck_assert_int_eq(r->def->cpu.forward(&r->node, &r->ctx, (const struct qc_tensor *const *)r->in,
                                         r->out),
                     QC_OK);
}

static void run1_free(struct run1 *r)
{
    for (int j = 0; j < r->node.n_out; j++)
        qc_tensor_free(r->out[j]);
    qc_free(r->ctx.saved);
    qc_free(r->node.name);
    qc_free(r->node.op_type);
    qc_free(r->node.domain);
    qc_free(r->node.in);
    qc_free(r->node.out);
    qc_attrs_clear(&r->node.attrs);
    qc_free(r->node.params);
}

static struct qc_tensor *tensor_of(int ndim, const int64_t *dims, const float *vals)
{
    struct qc_shape s = qc_shape_make(ndim, dims);
    struct qc_tensor *t;
    ck_assert_int_eq(qc_tensor_new(QC_DTYPE_F32, &s, &t), QC_OK);
    memcpy(t->data, vals, (size_t)qc_shape_nelem(&s) * sizeof(float));
    return t;
}

/* PyTorch 1.13, float64:
 *   F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.2, eps=1e-3)
 * x = round(sin(0.7 i) * 2 + 0.05 i, 4), i = 0..23, shape [2, 3, 2, 2];
 * ONNX momentum = 1 - 0.2. */
static const float bn_x[24] = {
    0.0f,     1.3384f,  2.0709f,  1.8764f, 0.87f,    -0.4516f, -1.4432f, -1.6149f,
    -0.8625f, 0.4836f,  1.814f,   2.5263f, 2.3092f,  1.2882f,  -0.033f,  -1.0094f,
    -1.1584f, -0.3863f, 0.9672f,  2.2891f, 2.9812f,  2.7415f,  1.7062f,  0.3859f,
};
static const float bn_y_torch[24] = {
    -1.219148f, 0.5822703f, 1.568178f,   1.306391f,  -0.1835366f, 0.330536f,
    0.7162459f, 0.7830334f, -1.777227f,  -0.9254497f, -0.08360708f, 0.3671179f,
    1.888917f,  0.5147037f, -1.263564f,  -2.577748f, 0.6054652f,  0.3051357f,
    -0.2213452f, -0.7355344f, 0.6549669f, 0.5032909f, -0.1518201f, -0.9872718f,
};
static const float bn_rm_torch[3] = { 0.5960175f, -0.8232025f, 0.494405f };
static const float bn_rv_torch[3] = { 1.8836596f, 0.77744207f, 1.5651176f };

START_TEST(test_bn_train_torch)
{
    static const int64_t xd[4] = { 2, 3, 2, 2 }, cd[1] = { 3 };
    static const float g[3] = { 1.5f, -0.5f, 0.8f }, b[3] = { 0.1f, 0.2f, -0.3f };
    static const float rm[3] = { 0.5f, -1.0f, 0.25f }, rv[3] = { 2.0f, 0.5f, 1.5f };
    static const char *const names[2] = { "epsilon", "momentum" };
    static const float vals[2] = { 1e-3f, 0.8f };
    struct qc_tensor *in[5] = {
        tensor_of(4, xd, bn_x), tensor_of(1, cd, g), tensor_of(1, cd, b),
        tensor_of(1, cd, rm),   tensor_of(1, cd, rv),
    };
    struct run1 r;
    for (int threads = 1; threads <= 2; threads++) {
        const float *y;
        memcpy(in[3]->data, rm, sizeof(rm));
        memcpy(in[4]->data, rv, sizeof(rv));
        run1_init(&r, "BatchNormalization", 15, 5, in, 3, 2, names, vals);
        r.ctx.training = true;
        r.ctx.threads = threads;
        run1_forward(&r);
        y = qc_tensor_f32(r.out[0]);
        for (int i = 0; i < 24; i++)
            ck_assert_msg(fabsf(y[i] - bn_y_torch[i]) <= 2e-5f, "y[%d] = %.7g, torch %.7g", i,
                          (double)y[i], (double)bn_y_torch[i]);
        for (int c = 0; c < 3; c++) {
            float m = qc_tensor_f32(in[3])[c], v = qc_tensor_f32(in[4])[c];
            ck_assert_msg(fabsf(m - bn_rm_torch[c]) <= 1e-6f, "running mean[%d] %.8g", c,
                          (double)m);
            ck_assert_msg(fabsf(v - bn_rv_torch[c]) <= 2e-6f, "running var[%d] %.8g", c,
                          (double)v);
            ck_assert_float_eq(qc_tensor_f32(r.out[1])[c], m);
            ck_assert_float_eq(qc_tensor_f32(r.out[2])[c], v);
        }
        run1_free(&r);
    }
    for (int i = 0; i < 5; i++)
        qc_tensor_free(in[i]);
}
END_TEST

/* Two training steps on random data: running stats against a double
 * recomputation (momentum 0.9, unbiased variance), and an inference forward
 * uses the running statistics, untouched. */
START_TEST(test_bn_running_stats)
{
    enum { N = 6, C = 4, HW = 7 };
    static const int64_t xd[3] = { N, C, HW }, cd[1] = { C };
    static const char *const names[1] = { "momentum" };
    static const float vals[1] = { 0.9f };
    float x[N * C * HW], ones[C], zeros[C], rm0[C] = { 0 }, rv0[C] = { 1, 1, 1, 1 };
    double em[C], ev[C];
    struct qc_tensor *in[5];
    struct qc_rng rng;
    struct run1 r;

    qc_rng_seed(&rng, 77);
    for (int c = 0; c < C; c++) {
        ones[c] = 1.0f;
        zeros[c] = 0.0f;
        em[c] = rm0[c];
        ev[c] = rv0[c];
    }
    in[0] = tensor_of(3, xd, x);
    in[1] = tensor_of(1, cd, ones);
    in[2] = tensor_of(1, cd, zeros);
    in[3] = tensor_of(1, cd, rm0);
    in[4] = tensor_of(1, cd, rv0);
    run1_init(&r, "BatchNormalization", 15, 5, in, 1, 1, names, vals);
    r.ctx.training = true;
    for (int step = 0; step < 2; step++) {
        float *xv = qc_tensor_f32(in[0]);
        for (int i = 0; i < N * C * HW; i++)
            xv[i] = 3.0f * qc_rng_uniform(&rng) + (float)(i / HW % C) - 1.0f;
        run1_forward(&r);
        for (int c = 0; c < C; c++) {
            double s = 0, q = 0, mean;
            const float *y = qc_tensor_f32(r.out[0]);
            double ys = 0, yq = 0;
            for (int n = 0; n < N; n++)
                for (int k = 0; k < HW; k++)
                    s += xv[(n * C + c) * HW + k];
            mean = s / (N * HW);
            for (int n = 0; n < N; n++)
                for (int k = 0; k < HW; k++) {
                    double d = xv[(n * C + c) * HW + k] - mean;
                    q += d * d;
                    ys += y[(n * C + c) * HW + k];
                    yq += (double)y[(n * C + c) * HW + k] * y[(n * C + c) * HW + k];
                }
            em[c] = 0.9 * em[c] + 0.1 * mean;
            ev[c] = 0.9 * ev[c] + 0.1 * q / (N * HW - 1);
            ck_assert_msg(fabs(qc_tensor_f32(in[3])[c] - em[c]) < 1e-5, "mean[%d]", c);
            ck_assert_msg(fabs(qc_tensor_f32(in[4])[c] - ev[c]) < 1e-5, "var[%d]", c);
            /* the output is normalized: mean 0, biased variance ~1 (eps) */
            ck_assert(fabs(ys / (N * HW)) < 1e-5);
            ck_assert(fabs(yq / (N * HW) - 1.0) < 1e-3);
        }
    }
    r.ctx.training = false;
    run1_forward(&r);
    for (int c = 0; c < C; c++) {
        ck_assert(fabs(qc_tensor_f32(in[3])[c] - em[c]) < 1e-5);
        ck_assert(fabs(qc_tensor_f32(in[4])[c] - ev[c]) < 1e-5);
    }
    {
        const float *xv = qc_tensor_f32(in[0]), *y = qc_tensor_f32(r.out[0]);
        for (int i = 0; i < N * C * HW; i++) {
            int c = i / HW % C;
            double e = (xv[i] - em[c]) / sqrt(ev[c] + 1e-5);
            ck_assert_msg(fabs(y[i] - e) < 1e-4, "inference y[%d]", i);
        }
    }
    run1_free(&r);
    for (int i = 0; i < 5; i++)
        qc_tensor_free(in[i]);
}
END_TEST

/* Dropout at ratio 0.3 over 200000 elements: about 30% dropped (binomial
 * sd ~0.1%), kept values scaled by 1/0.7, mask output = kept; a new forward
 * draws a new mask; inference is the identity with an all-true mask. */
START_TEST(test_dropout_mask)
{
    enum { NX = 200000 };
    static const int64_t xd[1] = { NX };
    static const float ratio = 0.3f;
    struct qc_tensor *in[2], *rt;
    float *x = qc_malloc(NX * sizeof(float));
    unsigned char *first = qc_malloc(NX);
    struct run1 r;
    int64_t dropped = 0, same = 0;
    const float *y;
    const unsigned char *mask;

    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(first);
    for (int i = 0; i < NX; i++)
        x[i] = 0.5f + (float)(i % 97) * 0.01f;
    in[0] = tensor_of(1, xd, x);
    rt = tensor_of(0, xd, &ratio);
    in[1] = rt;
    run1_init(&r, "Dropout", 13, 2, in, 2, 0, NULL, NULL);
    ck_assert_int_eq(r.out[1]->dtype, QC_DTYPE_BOOL);
    r.ctx.training = true;
    run1_forward(&r);
    y = qc_tensor_f32(r.out[0]);
    mask = r.out[1]->data;
    for (int i = 0; i < NX; i++) {
        if (mask[i]) {
            ck_assert_msg(fabsf(y[i] - x[i] / 0.7f) <= 1e-6f * fabsf(y[i]), "y[%d]", i);
        } else {
            ck_assert_float_eq(y[i], 0.0f);
            dropped++;
        }
        ck_assert_int_eq(mask[i], ((const unsigned char *)r.ctx.saved)[i]);
    }
    ck_assert_msg(fabs((double)dropped / NX - 0.3) < 0.006, "dropped %lld of %d",
                  (long long)dropped, NX);
    memcpy(first, mask, NX);
    run1_forward(&r);
    for (int i = 0; i < NX; i++)
        same += first[i] == mask[i];
    ck_assert_msg(same < NX * 0.65, "second mask repeats the first (%lld same)",
                  (long long)same);
    r.ctx.training = false;
    run1_forward(&r);
    for (int i = 0; i < NX; i++) {
        ck_assert_float_eq(y[i], x[i]);
        ck_assert_int_eq(mask[i], 1);
    }
    run1_free(&r);
    qc_tensor_free(in[0]);
    qc_tensor_free(rt);
    qc_free(x);
    qc_free(first);
}
END_TEST

Suite *qc_suite_grad_act(void)
{
    Suite *s = suite_create("grad_act");
    TCase *tc = tcase_create("grad_act");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pointwise);
    tcase_add_test(tc, test_clip);
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_binary);
    tcase_add_test(tc, test_sum);
    tcase_add_test(tc, test_bn_grad);
    tcase_add_test(tc, test_add_same_shape);
    tcase_add_test(tc, test_lrn_grad);
    tcase_add_test(tc, test_dropout_grad);
    tcase_add_test(tc, test_bn_train_torch);
    tcase_add_test(tc, test_bn_running_stats);
    tcase_add_test(tc, test_dropout_mask);
    suite_add_tcase(s, tc);
    return s;
}
