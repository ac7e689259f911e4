#include <config.h>
#include "testutil.h"
Suite *qc_suite_quant(void)
{
    return suite_create("quant");
}
