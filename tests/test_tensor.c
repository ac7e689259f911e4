/*
 * test_tensor.c - dtypes, shapes, owned tensors, attribute getters, the
 * float16 / bfloat16 conversions.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ir/attr.h"
#include "ir/tensor.h"
#include "testutil.h"

START_TEST(test_dtype_sizes)
{
    ck_assert_uint_eq(qc_dtype_size(QC_DTYPE_F32), 4);
    ck_assert_uint_eq(qc_dtype_size(QC_DTYPE_I64), 8);
    ck_assert_uint_eq(qc_dtype_size(QC_DTYPE_U8), 1);
    ck_assert_uint_eq(qc_dtype_size(QC_DTYPE_UNDEFINED), 0);
    ck_assert_str_eq(qc_dtype_name(QC_DTYPE_I8), "int8");
    ck_assert(!qc_dtype_supported((enum qc_dtype)8)); /* ONNX string */
}
END_TEST

START_TEST(test_shape_helpers)
{
    int64_t d[] = { 2, 3, 4 };
    struct qc_shape s = qc_shape_make(3, d), t = qc_shape_make(2, d), z = qc_shape_make(0, d);
    char buf[64];
    ck_assert_int_eq(qc_shape_nelem(&s), 24);
    ck_assert_int_eq(qc_shape_nelem(&z), 1);
    ck_assert(!qc_shape_equal(&s, &t));
    ck_assert(qc_shape_equal(&s, &s));
    ck_assert_str_eq(qc_shape_str(&s, buf, sizeof(buf)), "[2,3,4]");
    ck_assert_str_eq(qc_shape_str(&z, buf, sizeof(buf)), "[]");
    qc_shape_str(&s, buf, 4); /* truncation stays NUL-terminated */
    ck_assert_uint_le(strlen(buf), 3);
}
END_TEST

START_TEST(test_tensor_new_clone)
{
    int64_t d[] = { 2, 2 };
    struct qc_shape s = qc_shape_make(2, d);
    struct qc_tensor *t, *c;
    ck_assert_int_eq(qc_tensor_new(QC_DTYPE_F32, &s, &t), QC_OK);
    ck_assert_float_eq(qc_tensor_f32(t)[3], 0.0f);
    qc_tensor_f32(t)[3] = 1.5f;
    ck_assert_int_eq(qc_tensor_clone(t, &c), QC_OK);
    ck_assert_float_eq(qc_tensor_f32(c)[3], 1.5f);
    ck_assert_int_eq(qc_tensor_get_i64(c, 3), 1);
    ck_assert_uint_eq(qc_tensor_nbytes(c), 16);
    qc_tensor_free(t);
    qc_tensor_free(c);
    qc_tensor_free(NULL);
    d[0] = -1;
    s = qc_shape_make(2, d);
    ck_assert_int_eq(qc_tensor_new(QC_DTYPE_F32, &s, &t), QC_ERR_SHAPE);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_attr_getters)
{
    struct qc_attrs as = { 0, NULL };
    struct qc_attr a;
    int64_t v, ints[4];
    float f;
    int n;

    memset(&a, 0, sizeof(a));
    a.name = qc_strdup("group");
    a.type = QC_ATTR_INT;
    a.i = 3;
    ck_assert_int_eq(qc_attrs_add(&as, &a), QC_OK);
    memset(&a, 0, sizeof(a));
    a.name = qc_strdup("pads");
    a.type = QC_ATTR_INTS;
    a.n = 4;
    a.ints = qc_malloc(4 * sizeof(int64_t));
    for (int i = 0; i < 4; i++)
        a.ints[i] = i;
    ck_assert_int_eq(qc_attrs_add(&as, &a), QC_OK);

    ck_assert_int_eq(qc_attr_int(&as, "t", "group", 1, &v), QC_OK);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(qc_attr_int(&as, "t", "missing", 7, &v), QC_OK);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(qc_attr_float(&as, "t", "group", 1.0f, &f), QC_ERR_ONNX);
    ck_assert_int_eq(qc_attr_ints(&as, "t", "pads", ints, 4, &n), QC_OK);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(ints[3], 3);
    ck_assert_int_eq(qc_attr_ints(&as, "t", "pads", ints, 2, &n), QC_ERR_UNSUPPORTED);
    qc_attrs_clear(&as);
    ck_assert_int_eq(as.n, 0);
}
END_TEST

static uint32_t bits_of(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    return x;
}

/* Every one of the 65536 halves (NaN payloads, both zeros, subnormals,
 * infinities) survives half -> float -> half bit for bit; same for bfloat16. */
START_TEST(test_half_roundtrip)
{
    for (uint32_t h = 0; h <= 0xFFFFu; h++) {
        ck_assert_uint_eq(qc_float_to_half(qc_half_to_float((uint16_t)h)), h);
        ck_assert_uint_eq(qc_float_to_bf16(qc_bf16_to_float((uint16_t)h)), h);
    }
}
END_TEST

/* Round to nearest, ties to even, between every two neighbouring finite
 * halves: the midpoint (exact in float) goes to the even one, a float just
 * above or below it to the nearer one. */
START_TEST(test_half_rounding)
{
    for (uint32_t h = 0; h < 0x7BFFu; h++) {
        float lo = qc_half_to_float((uint16_t)h), hi = qc_half_to_float((uint16_t)(h + 1));
        float mid = (lo + hi) / 2.0f;
        uint16_t even = (uint16_t)(h & 1u ? h + 1 : h);
        ck_assert_float_eq((double)mid - (double)lo, (double)hi - (double)mid);
        ck_assert_uint_eq(qc_float_to_half(mid), even);
        ck_assert_uint_eq(qc_float_to_half(nextafterf(mid, INFINITY)), h + 1);
        ck_assert_uint_eq(qc_float_to_half(nextafterf(mid, 0.0f)), h);
        ck_assert_uint_eq(qc_float_to_half(-mid), 0x8000u | even);
    }
    /* hand-computed values */
    ck_assert(qc_half_to_float(0x0001) == 0x1p-24f); /* smallest subnormal */
    ck_assert(qc_half_to_float(0x0400) == 0x1p-14f); /* smallest normal    */
    ck_assert(qc_half_to_float(0x7BFF) == 65504.0f); /* largest finite     */
    ck_assert(qc_half_to_float(0x3555) == 0.333251953125f);
    ck_assert(qc_half_to_float(0xC000) == -2.0f);
    ck_assert(isinf(qc_half_to_float(0x7C00)) && isnan(qc_half_to_float(0x7E00)));
    ck_assert_uint_eq(qc_float_to_half(1.0f + 0x1p-11f), 0x3C00);     /* tie: even 1.0 */
    ck_assert_uint_eq(qc_float_to_half(1.0f + 3 * 0x1p-11f), 0x3C02); /* tie: even up  */
    ck_assert_uint_eq(qc_float_to_half(65519.0f), 0x7BFF);
    ck_assert_uint_eq(qc_float_to_half(65520.0f), 0x7C00); /* tie: infinity */
    ck_assert_uint_eq(qc_float_to_half(1e10f), 0x7C00);
    ck_assert_uint_eq(qc_float_to_half(-INFINITY), 0xFC00);
    ck_assert_uint_eq(qc_float_to_half(0x1p-25f), 0x0000); /* tie: even 0   */
    ck_assert_uint_eq(qc_float_to_half(0x1.000002p-25f), 0x0001);
    ck_assert_uint_eq(qc_float_to_half(3 * 0x1p-25f), 0x0002); /* tie: even 2   */
    ck_assert_uint_eq(qc_float_to_half(1e-30f), 0x0000);
    ck_assert_uint_eq(qc_float_to_half(-0.0f), 0x8000);
    ck_assert_uint_eq(qc_float_to_half(NAN) & 0x7C00u, 0x7C00u);
    ck_assert_uint_ne(qc_float_to_half(NAN) & 0x3FFu, 0u);
    /* bfloat16: the top half of the float, rounded to nearest even */
    ck_assert_uint_eq(qc_float_to_bf16(1.0f), 0x3F80);
    ck_assert_uint_eq(qc_float_to_bf16(1.0f + 0x1p-8f), 0x3F80);     /* tie: even     */
    ck_assert_uint_eq(qc_float_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82); /* tie: even up  */
    ck_assert_uint_eq(qc_float_to_bf16(1.0f + 0x1.2p-8f), 0x3F81);
    ck_assert_uint_eq(bits_of(qc_bf16_to_float(0x4049)), 0x40490000u);
    ck_assert(isnan(qc_bf16_to_float(qc_float_to_bf16(NAN))));
}
END_TEST

Suite *qc_suite_tensor(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, test_dtype_sizes);
    tcase_add_test(tc, test_shape_helpers);
    tcase_add_test(tc, test_tensor_new_clone);
    tcase_add_test(tc, test_attr_getters);
    tcase_add_test(tc, test_half_roundtrip);
    tcase_add_test(tc, test_half_rounding);
    suite_add_tcase(s, tc);
    return s;
}
