/*
 * fuzz_onnx.c - libFuzzer target for the ONNX loader.  Each input is parsed
 * as a model from memory (qc_onnx_load_buffer, the code path of every CLI
 * command, which ends in qc_graph_finalize); whatever loads is then planned
 * at batch 1 on the CPU backend, so shape inference and the folding of
 * shape subgraphs are fuzzed too.  Every outcome but a crash, a sanitizer
 * report, a leak or a timeout is fine: errors are expected.  Built and run
 * by scripts/fuzz.
 */
#include <config.h>

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "ir/graph.h"
#include "onnx/onnx_io.h"
#include "plan/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Declared input elements above this are not planned: a tiny file may
 * legitimately declare a 100 GB input, and allocating it is not a bug. */
#define FUZZ_MAX_INPUT_ELEMS ((int64_t)1 << 22)

static bool inputs_small(const struct qc_graph *g)
{
    for (int i = 0; i < g->n_inputs; i++) {
        const struct qc_value *v = &g->values[g->inputs[i]];
        int64_t n = 1;
        if (v->init)
            continue;
        for (int d = 0; d < v->shape.ndim; d++) {
            int64_t k = v->shape.dims[d] > 0 ? v->shape.dims[d] : 1;
            if (k > FUZZ_MAX_INPUT_ELEMS || n > FUZZ_MAX_INPUT_ELEMS / k)
                return false;
            n *= k;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qc_graph *g = NULL;
    struct qc_backend *be = NULL;
    struct qc_plan *p = NULL;

    if (qc_onnx_load_buffer(data, size, "fuzz.onnx", NULL, &g) != QC_OK)
        return 0;
    if (inputs_small(g) && qc_backend_new("cpu", 1, &be) == QC_OK) {
        /* below libFuzzer's 2 GB RSS limit: a larger plan is refused before
         * allocating (qatconv's --max-memory), not reported as an OOM */
        qc_backend_set_max_memory(be, (uint64_t)1 << 30);
        if (qc_plan_new(g, be, 1, &p) == QC_OK) {
            for (int i = 0; i < g->n_nodes; i++)
                (void)qc_node_param_count(g, &g->nodes[i]);
        }
    }
    qc_plan_free(p);
    qc_backend_free(be);
    qc_graph_free(g);
    return 0;
}
