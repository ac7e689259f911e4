/*
 * check_qatconv.c - the single Check runner: every suite of tests/.
 */
#include <config.h>

#include <stdlib.h>

#include "testutil.h"

int main(void)
{
    SRunner *sr = srunner_create(qc_suite_tensor());
    int failed;
    srunner_add_suite(sr, qc_suite_graph());
    srunner_add_suite(sr, qc_suite_shape());
    srunner_add_suite(sr, qc_suite_recipe());
    srunner_add_suite(sr, qc_suite_data());
    srunner_add_suite(sr, qc_suite_onnx_io());
    srunner_add_suite(sr, qc_suite_ops());
    srunner_add_suite(sr, qc_suite_grad_conv());
    srunner_add_suite(sr, qc_suite_grad_act());
    srunner_add_suite(sr, qc_suite_grad_layout());
    srunner_add_suite(sr, qc_suite_solver());
    srunner_add_suite(sr, qc_suite_train_plan());
    srunner_add_suite(sr, qc_suite_loss());
    srunner_add_suite(sr, qc_suite_quant());
    srunner_add_suite(sr, qc_suite_intops());
    srunner_add_suite(sr, qc_suite_metrics());
    srunner_add_suite(sr, qc_suite_fidelity());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
