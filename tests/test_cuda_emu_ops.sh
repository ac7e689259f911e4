#!/bin/sh
# test_cuda_emu_ops.sh - every CUDA op kernel against the independent oracles of the
# Check suites, on the CPU emulator of tests/cuda_emu: tests/check_qatconv_emu (the
# suites of tests/check_qatconv linked with the emulated CUDA backend) runs with
# QC_TEST_BACKEND=cuda
#   - ops: every testdata/ fixture against its ONNX Runtime outputs and the ONNX
#     node tests, forward on the cuda backend (cases with an op it has no kernel
#     for, QDQ and integer ops, are skipped and named in one line);
#   - grad_conv, grad_act, grad_layout: each op's CUDA forward and backward against
#     central finite differences of its own forward (tests/gradcheck.c).
# Fails if any suite fails; prints the skipped cases and checks.  The ops suite
# enforces the figures of tests/ops_cuda.expect: exactly 149 fixtures and 263 node
# tests pass on cuda, and the skipped cases are exactly the ones listed there.
# Without tests/check_qatconv_emu (no C++17 compiler or no Check) or the node tests
# the test exits 77 (skipped), naming what is missing.
. "${top_srcdir:-.}/tests/lib.sh"
: "${top_builddir:=.}"
PROG=$top_builddir/tests/check_qatconv_emu
: "${QC_NODE_TESTS:=$top_builddir/tests/node-tests}"
export QC_NODE_TESTS
if [ ! -x "$PROG" ]; then
    echo "SKIP: $PROG not built (needs a C++17 compiler and Check)"
    exit 77
fi
if [ ! -s "$QC_NODE_TESTS/LIST" ] || [ ! -s "$QC_NODE_TESTS/DROPPED" ]; then
    echo "SKIP: no ONNX node tests in $QC_NODE_TESTS (make check generates them)"
    exit 77
fi

for s in ops grad_conv grad_act grad_layout; do
    log=$TMP/$s.log
    t0=$(date +%s)
    if QC_TEST_BACKEND=cuda CK_RUN_SUITE=$s top_srcdir=$top_srcdir "$PROG" >"$log" 2>&1; then
        checks=$(grep -E '^[0-9]+%: Checks' "$log")
        ok "suite $s on emulated cuda ($(($(date +%s) - t0)) s): $checks"
    else
        bad "suite $s on emulated cuda"
        grep -E ':[EF]:|^FAIL|Checks|error' "$log" | head -40
    fi
    grep -E ' on cuda[ :]' "$log"
    # the checks of ops without a cuda kernel, counted per op
    grep '^gradcheck skip: ' "$log" | sed 's/^gradcheck skip: \([A-Za-z]*\) .*/\1/' |
        sort | uniq -c | sed 's/^ */gradcheck checks skipped (no cuda kernel): /'
done
finish
