/*
 * test_intops.c - the integer ops of integer-only exports, against
 * independent oracles: ConvInteger against a naive reference written here
 * (every padding, stride, dilation, group and rank form, 1, 2 and 4
 * threads), MatMulInteger and Cast against hand-computed values, int4/uint4
 * packing against hand-packed bytes, int4 models saved and reloaded
 * unchanged, and integer Div by zero refused with an error.  Whole exported
 * chains are compared with ONNX Runtime by the h_int_* fixtures (test_ops.c).
 */
#include <config.h>

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "onnx/onnx_io.h"
#include "onnx/tensor_pb.h"
#include "ir/attr.h"
#include "backend/backend.h"
#include "ir/graph.h"
#include "plan/plan.h"
#include "util/rng.h"
#include "ops/bind.h"

/* Typed initializer `name` with data copied from `data`. */
static void add_init(struct qc_graph *g, const char *name, enum qc_dtype dt, int ndim,
                     const int64_t *dims, const void *data)
{
    int v;
    struct qc_shape s = qc_shape_make(ndim, dims);
    ck_assert_int_eq(qc_graph_value(g, name, &v), QC_OK);
    ck_assert_int_eq(qc_tensor_new(dt, &s, &g->values[v].init), QC_OK);
    g->values[v].dtype = dt;
    memcpy(g->values[v].init->data, data, qc_tensor_nbytes(g->values[v].init));
}

static void attr_string(struct qc_graph *g, int node, const char *name, const char *val)
{
    struct qc_attr a;
    memset(&a, 0, sizeof(a));
    a.name = qc_strdup(name);
    a.type = QC_ATTR_STRING;
    a.s = qc_strdup(val);
    ck_assert_int_eq(qc_attrs_add(&g->nodes[node].attrs, &a), QC_OK);
}

/* Plans g (finalized here) on `threads` CPU threads, copies in[i] into the
 * runtime inputs and runs one forward; returns the forward's status. */
static enum qc_status run_graph(struct qc_graph *g, int threads, const void *const *in,
                                struct qc_backend **be, struct qc_plan **p)
{
    enum qc_status st;
    ck_assert_int_eq(qc_graph_finalize(g), QC_OK);
    ck_assert_int_eq(qc_backend_new("cpu", threads, be), QC_OK);
    st = qc_plan_new(g, *be, 1, p);
    if (st != QC_OK)
        return st;
    for (int i = 0; i < qc_plan_n_inputs(*p); i++) {
        struct qc_tensor *t = qc_plan_input(*p, i);
        memcpy(t->data, in[i], qc_tensor_nbytes(t));
    }
    return qc_plan_forward(*p);
}

/* ---- ConvInteger against a naive reference ---- */

struct ci_case {
    int     nsp;                      /* spatial dims                            */
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pads[6];
    const char *auto_pad;             /* NULL = explicit pads                    */
    bool    x_signed, w_signed, w_zp_per_channel;
};

/* y[n,m,o] = sum_{c,k} (xpad - zx) * (w - zw[m]) with explicit begin pads pb;
 * positions outside x read zx.  Straight from the definition. */
static int32_t ref_at(const struct ci_case *cc, const int64_t *pb, const int64_t *out,
                      const void *x, const void *w, int32_t zx, const int32_t *zw,
                      int64_t img, int64_t m, const int64_t *o)
{
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group, grp = m / mg;
    int64_t kk[3] = { 1, 1, 1 }, ii[3] = { 1, 1, 1 };
    uint32_t acc = 0;
    (void)out;
    for (int i = 0; i < cc->nsp; i++) {
        kk[i] = cc->k[i];
        ii[i] = cc->in[i];
    }
    for (int64_t c = 0; c < cg; c++)
        for (int64_t a = 0; a < kk[0]; a++)
            for (int64_t b = 0; b < kk[1]; b++)
                for (int64_t e = 0; e < kk[2]; e++) {
                    int64_t tap[3] = { a, b, e }, pos[3] = { 0, 0, 0 }, xi, wi;
                    bool inside = true;
                    int32_t xv, wv;
                    for (int i = 0; i < cc->nsp; i++) {
                        pos[i] = o[i] * cc->s[i] - pb[i] + tap[i] * cc->d[i];
                        inside = inside && pos[i] >= 0 && pos[i] < cc->in[i];
                    }
                    xi = (((img * cc->c + grp * cg + c) * ii[0] + pos[0]) * ii[1] + pos[1]) *
                         ii[2] + pos[2];
                    wi = (((m * cg + c) * kk[0] + a) * kk[1] + b) * kk[2] + e;
                    xv = !inside ? zx : cc->x_signed ? ((const int8_t *)x)[xi]
                                                     : ((const uint8_t *)x)[xi];
                    wv = cc->w_signed ? ((const int8_t *)w)[wi] : ((const uint8_t *)w)[wi];
                    acc += (uint32_t)((xv - zx) * (wv - zw[m]));
                }
    return (int32_t)acc;
}

static void check_conv_integer(const struct ci_case *cc, int threads, uint64_t seed)
{
    struct qc_graph *g = qc_test_graph(10);
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    struct qc_rng rng;
    int64_t xd[5], wd[5], nx = 1, nw, pb[3] = { 0, 0, 0 }, out[3] = { 1, 1, 1 }, nout;
    uint8_t x[4096], w[4096], xzp, wzp[64];
    int32_t zw[64], zx;
    int node;
    const struct qc_tensor *y;
    const void *ins[1];
    enum qc_dtype xdt = cc->x_signed ? QC_DTYPE_I8 : QC_DTYPE_U8;
    enum qc_dtype wdt = cc->w_signed ? QC_DTYPE_I8 : QC_DTYPE_U8;

    qc_rng_seed(&rng, seed);
    xd[0] = cc->n;
    xd[1] = cc->c;
    wd[0] = cc->m;
    wd[1] = cc->c / cc->group;
    nw = wd[0] * wd[1];
    for (int i = 0; i < cc->nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
        nw *= cc->k[i];
    }
    for (int i = 0; i < cc->nsp + 2; i++)
        nx *= xd[i];
    ck_assert(nx <= 4096 && nw <= 4096 && cc->m <= 64);
    for (int64_t i = 0; i < nx; i++)
        x[i] = (uint8_t)(qc_rng_next(&rng) >> 56);
    for (int64_t i = 0; i < nw; i++)
        w[i] = (uint8_t)(qc_rng_next(&rng) >> 56);
    xzp = (uint8_t)(cc->x_signed ? -3 : 7);
    zx = cc->x_signed ? -3 : 7;
    for (int64_t m = 0; m < cc->m; m++) {
        int32_t v = cc->w_zp_per_channel ? (int32_t)(m * 5 % 11) - 5 : 2;
        if (!cc->w_signed)
            v += 120;
        wzp[m] = (uint8_t)v;
        zw[m] = v;
    }

    qc_test_input(g, "x", xdt, cc->nsp + 2, xd);
    add_init(g, "w", wdt, cc->nsp + 2, wd, w);
    add_init(g, "xzp", xdt, 0, NULL, &xzp);
    {
        int64_t nm = cc->m;
        add_init(g, "wzp", wdt, cc->w_zp_per_channel ? 1 : 0, &nm, wzp);
    }
    node = qc_test_node(g, "ConvInteger", "ci", "x,w,xzp,wzp", "y");
    qc_test_output(g, "y");
    qc_test_attr_int(g, node, "group", cc->group);
    qc_test_attr_ints(g, node, "strides", cc->nsp, cc->s);
    qc_test_attr_ints(g, node, "dilations", cc->nsp, cc->d);
    qc_test_attr_ints(g, node, "kernel_shape", cc->nsp, cc->k);
    if (cc->auto_pad)
        attr_string(g, node, "auto_pad", cc->auto_pad);
    else
        qc_test_attr_ints(g, node, "pads", 2 * cc->nsp, cc->pads);

    ins[0] = x;
    ck_assert_int_eq(run_graph(g, threads, ins, &be, &p), QC_OK);
    y = qc_plan_output(p, 0);
    ck_assert_int_eq(y->dtype, QC_DTYPE_I32);

    /* expected geometry, computed independently */
    nout = cc->n * cc->m;
    for (int i = 0; i < cc->nsp; i++) {
        int64_t ek = (cc->k[i] - 1) * cc->d[i] + 1, tot;
        if (cc->auto_pad) {
            out[i] = (cc->in[i] + cc->s[i] - 1) / cc->s[i];
            tot = (out[i] - 1) * cc->s[i] + ek - cc->in[i];
            tot = tot < 0 ? 0 : tot;
            pb[i] = strcmp(cc->auto_pad, "SAME_UPPER") == 0 ? tot / 2 : tot - tot / 2;
        } else {
            pb[i] = cc->pads[i];
            out[i] = (cc->in[i] + cc->pads[i] + cc->pads[cc->nsp + i] - ek) / cc->s[i] + 1;
        }
        ck_assert_int_eq(y->shape.dims[2 + i], out[i]);
        nout *= out[i];
    }
    ck_assert_int_eq(qc_tensor_nelem(y), nout);
    for (int64_t img = 0; img < cc->n; img++)
        for (int64_t m = 0; m < cc->m; m++)
            for (int64_t a = 0; a < out[0]; a++)
                for (int64_t b = 0; b < out[1]; b++)
                    for (int64_t e = 0; e < out[2]; e++) {
                        int64_t o[3] = { a, b, e };
                        int64_t yi = (((img * cc->m + m) * out[0] + a) * out[1] + b) * out[2] + e;
                        int32_t want = ref_at(cc, pb, out, x, w, zx, zw, img, m, o);
                        ck_assert_msg(((const int32_t *)y->data)[yi] == want,
                                      "ConvInteger case nsp=%d group=%lld threads=%d: y[%lld] "
                                      "= %d, expected %d", cc->nsp, (long long)cc->group,
                                      threads, (long long)yi, ((const int32_t *)y->data)[yi],
                                      want);
                    }
    qc_plan_free(p);
    qc_backend_free(be);
    qc_graph_free(g);
}

START_TEST(test_conv_integer_reference)
{
    static const struct ci_case cases[] = {
        /* plain 3x3 pad 1, u8 x s8 */
        { 2, 2, 3, 4, 1, { 6, 5 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 }, NULL,
          false, true, false },
        /* strides, dilations, asymmetric pads, groups, s8 x u8, per-channel w_zp */
        { 2, 3, 4, 6, 2, { 7, 9 }, { 2, 3 }, { 2, 1 }, { 2, 2 }, { 0, 2, 1, 0 }, NULL,
          true, false, true },
        /* depthwise with channel multiplier 2, stride 2 */
        { 2, 2, 4, 8, 4, { 9, 8 }, { 3, 3 }, { 2, 2 }, { 1, 1 }, { 1, 1, 1, 1 }, NULL,
          false, true, false },
        /* depthwise, dilated, SAME_UPPER and SAME_LOWER */
        { 2, 1, 3, 3, 3, { 5, 6 }, { 3, 2 }, { 2, 1 }, { 2, 1 }, { 0 }, "SAME_UPPER",
          false, true, true },
        { 2, 1, 3, 6, 1, { 5, 6 }, { 2, 3 }, { 2, 2 }, { 1, 1 }, { 0 }, "SAME_LOWER",
          true, true, false },
        /* 1-D and 3-D */
        { 1, 2, 3, 5, 1, { 11 }, { 4 }, { 3 }, { 2 }, { 2, 1 }, NULL, false, true, true },
        { 3, 2, 2, 4, 2, { 4, 5, 3 }, { 2, 3, 2 }, { 1, 2, 1 }, { 1, 1, 2 },
          { 1, 0, 1, 0, 1, 1 }, NULL, false, true, false },
        /* one image, one group: the channel-split threading path */
        { 2, 1, 5, 7, 1, { 6, 6 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 }, NULL,
          false, true, false },
    };
    static const int threads[] = { 1, 2, 4 };
    for (size_t i = 0; i < QC_ARRAY_SIZE(cases); i++)
        for (size_t t = 0; t < QC_ARRAY_SIZE(threads); t++)
            check_conv_integer(&cases[i], threads[t], 100 + i);
}
END_TEST

/* ---- MatMulInteger, hand-computed ---- */

START_TEST(test_matmul_integer_hand)
{
    /* (A - 1) = [[0,1],[2,3]], (B - [0,1]) = [[1,-2],[2,-1]]
     * product [[2,-1],[8,-7]] */
    static const uint8_t a[4] = { 1, 2, 3, 4 };
    static const int8_t b[4] = { 1, -1, 2, 0 };
    static const uint8_t azp = 1;
    static const int8_t bzp[2] = { 0, 1 };
    static const int32_t want[4] = { 2, -1, 8, -7 };
    static const int64_t d2[2] = { 2, 2 }, dn = 2;
    struct qc_graph *g = qc_test_graph(10);
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    const void *ins[1] = { a };
    qc_test_input(g, "a", QC_DTYPE_U8, 2, d2);
    add_init(g, "b", QC_DTYPE_I8, 2, d2, b);
    add_init(g, "azp", QC_DTYPE_U8, 0, NULL, &azp);
    add_init(g, "bzp", QC_DTYPE_I8, 1, &dn, bzp);
    qc_test_node(g, "MatMulInteger", "mm", "a,b,azp,bzp", "y");
    qc_test_output(g, "y");
    ck_assert_int_eq(run_graph(g, 1, ins, &be, &p), QC_OK);
    ck_assert_int_eq(qc_plan_output(p, 0)->dtype, QC_DTYPE_I32);
    ck_assert_mem_eq(qc_plan_output(p, 0)->data, want, sizeof(want));
    qc_plan_free(p);
    qc_backend_free(be);
    qc_graph_free(g);
}
END_TEST

/* ---- Cast, hand-computed (values measured in ONNX Runtime 1.32) ---- */

START_TEST(test_cast_hand)
{
    static const int32_t a[6] = { 300, -1, -129, 9, -9, 20 };
    static const float f[6] = { 2.5f, -2.5f, 7.9f, -1.5f, 300.7f, -129.9f };
    static const uint8_t want_u8[6] = { 44, 255, 127, 9, 247, 20 };
    static const int8_t want_i8[6] = { 44, -1, 127, 9, -9, 20 };
    static const int8_t want_i4[6] = { -4, -1, -1, -7, 7, 4 };      /* low nibble */
    static const int8_t want_f_i4[6] = { 3, -3, -8, -2, -3, -2 };   /* round, wrap */
    static const uint8_t want_f_u8[6] = { 2, 254, 7, 255, 44, 127 };
    static const int64_t d = 6;
    struct qc_graph *g = qc_test_graph(21);
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    const void *ins[2] = { a, f };
    int n;
    g->ir_version = 10;
    qc_test_input(g, "a", QC_DTYPE_I32, 1, &d);
    qc_test_input(g, "f", QC_DTYPE_F32, 1, &d);
    n = qc_test_node(g, "Cast", "c1", "a", "u8");
    qc_test_attr_int(g, n, "to", QC_DTYPE_U8);
    n = qc_test_node(g, "Cast", "c2", "a", "i8");
    qc_test_attr_int(g, n, "to", QC_DTYPE_I8);
    n = qc_test_node(g, "Cast", "c3", "a", "i4");
    qc_test_attr_int(g, n, "to", QC_DTYPE_I4);
    n = qc_test_node(g, "Cast", "c4", "f", "fi4");
    qc_test_attr_int(g, n, "to", QC_DTYPE_I4);
    n = qc_test_node(g, "Cast", "c5", "f", "fu8");
    qc_test_attr_int(g, n, "to", QC_DTYPE_U8);
    qc_test_output(g, "u8");
    qc_test_output(g, "i8");
    qc_test_output(g, "i4");
    qc_test_output(g, "fi4");
    qc_test_output(g, "fu8");
    ck_assert_int_eq(run_graph(g, 1, ins, &be, &p), QC_OK);
    ck_assert_mem_eq(qc_plan_output(p, 0)->data, want_u8, 6);
    ck_assert_mem_eq(qc_plan_output(p, 1)->data, want_i8, 6);
    ck_assert_int_eq(qc_plan_output(p, 2)->dtype, QC_DTYPE_I4);
    ck_assert_mem_eq(qc_plan_output(p, 2)->data, want_i4, 6);
    ck_assert_mem_eq(qc_plan_output(p, 3)->data, want_f_i4, 6);
    ck_assert_mem_eq(qc_plan_output(p, 4)->data, want_f_u8, 6);
    qc_plan_free(p);
    qc_backend_free(be);
    qc_graph_free(g);
}
END_TEST

/* ---- integer Div by zero: an error naming the node, no crash ---- */

START_TEST(test_div_by_zero)
{
    static const int64_t a[3] = { 5, -7, 9 }, b[3] = { 2, 0, -4 };
    static const int64_t d = 3;
    struct qc_graph *g = qc_test_graph(14);
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;
    const void *ins[1] = { a };
    qc_test_input(g, "a", QC_DTYPE_I64, 1, &d);
    add_init(g, "b", QC_DTYPE_I64, 1, &d, b);
    qc_test_node(g, "Div", "requant_div", "a,b", "y");
    qc_test_output(g, "y");
    ck_assert_int_eq(run_graph(g, 1, ins, &be, &p), QC_ERR_NUMERIC);
    qc_plan_free(p);
    qc_backend_free(be);
    qc_graph_free(g);
}
END_TEST

/* ---- int4 / uint4 in ONNX files ---- */

START_TEST(test_int4_pack)
{
    /* [-8, 7, -1, 0, 3]: bytes 0x78 (lo -8 = 0x8, hi 7), 0x0F, 0x03 (odd count padded) */
    static const int8_t vals[5] = { -8, 7, -1, 0, 3 };
    static const uint8_t packed[3] = { 0x78, 0x0F, 0x03 };
    static const int32_t packed32[3] = { 0x78, 0x0F, 0x03 };
    static const int64_t d = 5;
    struct qc_shape s = qc_shape_make(1, &d);
    struct qc_tensor *t = NULL, *back = NULL;
    Onnx__TensorProto tp, typed = ONNX__TENSOR_PROTO__INIT;
    uint8_t buf[3];
    int64_t dims[1] = { 5 };

    ck_assert_int_eq(qc_tensor_new(QC_DTYPE_I4, &s, &t), QC_OK);
    ck_assert_int_eq(qc_dtype_size(QC_DTYPE_I4), 1);
    ck_assert_str_eq(qc_dtype_name(QC_DTYPE_I4), "int4");
    memcpy(t->data, vals, 5);
    ck_assert_int_eq(qc_tensor_pb_nbytes(t), 3);
    qc_tensor_to_pb(t, "t", buf, &tp);
    ck_assert_int_eq(tp.data_type, 22);
    ck_assert_int_eq(tp.raw_data.len, 3);
    ck_assert_mem_eq(tp.raw_data.data, packed, 3);
    ck_assert_int_eq(qc_tensor_from_pb(&tp, "m.onnx", NULL, &back), QC_OK);
    ck_assert_int_eq(back->dtype, QC_DTYPE_I4);
    ck_assert_mem_eq(back->data, vals, 5);
    qc_tensor_free(back);
    back = NULL;

    /* int32_data: one packed byte per entry */
    typed.has_data_type = 1;
    typed.data_type = 22;
    typed.n_dims = 1;
    typed.dims = dims;
    typed.n_int32_data = 3;
    typed.int32_data = (int32_t *)packed32;
    ck_assert_int_eq(qc_tensor_from_pb(&typed, "m.onnx", NULL, &back), QC_OK);
    ck_assert_mem_eq(back->data, vals, 5);
    qc_tensor_free(back);
    back = NULL;

    /* uint4: the same bytes read unsigned */
    typed.data_type = 21;
    ck_assert_int_eq(qc_tensor_from_pb(&typed, "m.onnx", NULL, &back), QC_OK);
    {
        static const uint8_t uvals[5] = { 8, 7, 15, 0, 3 };
        ck_assert_int_eq(back->dtype, QC_DTYPE_U4);
        ck_assert_mem_eq(back->data, uvals, 5);
    }
    qc_tensor_free(back);
    back = NULL;

    /* a wrong packed size is an error */
    typed.n_int32_data = 2;
    ck_assert_int_eq(qc_tensor_from_pb(&typed, "m.onnx", NULL, &back), QC_ERR_ONNX);
    qc_tensor_free(t);
}
END_TEST

START_TEST(test_int4_model_roundtrip)
{
    char src[4096], tmp[4096];
    struct qc_graph *a = NULL, *b = NULL;
    int v, n4 = 0;
    qc_test_path(src, sizeof(src), "testdata/h_int_requant_chain_op21/model.onnx");
    ck_assert_int_eq(qc_onnx_load(src, &a), QC_OK);
    v = qc_graph_find_value(a, "dw4");
    ck_assert_int_ge(v, 0);
    ck_assert_ptr_nonnull(a->values[v].init);
    ck_assert_int_eq(a->values[v].init->dtype, QC_DTYPE_I4);
    for (int64_t i = 0; i < qc_tensor_nelem(a->values[v].init); i++) {
        int64_t x = qc_tensor_get_i64(a->values[v].init, i);
        ck_assert(x >= -8 && x <= 7);
    }
    snprintf(tmp, sizeof(tmp), "/tmp/qc_int4_%ld.onnx", (long)getpid());
    ck_assert_int_eq(qc_onnx_save(a, tmp), QC_OK);
    ck_assert_int_eq(qc_onnx_load(tmp, &b), QC_OK);
    unlink(tmp);
    for (int i = 0; i < a->n_values; i++) {
        const struct qc_tensor *ta = a->values[i].init, *tb;
        int j;
        if (!ta)
            continue;
        j = qc_graph_find_value(b, a->values[i].name);
        ck_assert_int_ge(j, 0);
        tb = b->values[j].init;
        ck_assert_ptr_nonnull(tb);
        ck_assert_int_eq(ta->dtype, tb->dtype);
        ck_assert(qc_shape_equal(&ta->shape, &tb->shape));
        ck_assert_mem_eq(ta->data, tb->data, qc_tensor_nbytes(ta));
        n4 += qc_dtype_is_4bit(ta->dtype);
    }
    ck_assert_int_eq(n4, 2);
    qc_graph_free(a);
    qc_graph_free(b);
}
END_TEST

Suite *qc_suite_intops(void)
{
    Suite *s = suite_create("intops");
    TCase *tc = tcase_create("intops");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_conv_integer_reference);
    tcase_add_test(tc, test_matmul_integer_hand);
    tcase_add_test(tc, test_cast_hand);
    tcase_add_test(tc, test_div_by_zero);
    tcase_add_test(tc, test_int4_pack);
    tcase_add_test(tc, test_int4_model_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}
