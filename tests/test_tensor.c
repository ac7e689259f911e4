/*
 * test_tensor.c - dtypes, shapes, owned tensors, attribute getters.
 */
#include <config.h>

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

Suite *qc_suite_tensor(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, test_dtype_sizes);
    tcase_add_test(tc, test_shape_helpers);
    tcase_add_test(tc, test_tensor_new_clone);
    tcase_add_test(tc, test_attr_getters);
    suite_add_tcase(s, tc);
    return s;
}
