# lib.sh - helpers for the shell tests (sourced).  Each test counts checks and
# ends with the plain "N passed, N failed" line.
set -u
: "${QATCONV:=./qatconv}"
: "${PYTHON3:=python3}"
# the interpreter itself, not a version manager's shim (configure resolves it too;
# pyenv's shim costs ~0.5 s per call, and a test calls Python dozens of times)
qc_py=$("$PYTHON3" -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -n "$qc_py" ] &&
    PYTHON3=$qc_py
: "${top_srcdir:=.}"
QC_T0=$(date +%s)   # finish() prints the test's wall time (POSIX sh has no $SECONDS)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qc_sh.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
n_pass=0
n_fail=0

# QC_TEST_SCALE: "full" (the default: the sizes the README's test command
# uses) or "small" (the sanitizer build of the release tarball in .ci/run): the long
# tests train and evaluate on fewer images, epochs or steps but run every
# code path and every check (docs/ARCHITECTURE.md, "Running one test").
: "${QC_TEST_SCALE:=full}"
case $QC_TEST_SCALE in
full | small) ;;
*) echo "QC_TEST_SCALE=$QC_TEST_SCALE: expected full or small" >&2; exit 99 ;;
esac
# scaled FULL SMALL: the size FULL, or SMALL under QC_TEST_SCALE=small
scaled() { if [ "$QC_TEST_SCALE" = small ]; then echo "$2"; else echo "$1"; fi; }

# small_recipes FRACTION: under QC_TEST_SCALE=small, a copy of the recipes/
# folder whose [database] sections evaluate only that fraction of the test
# set (Test=FRACTION) in $TMP/recipes; prints the folder to read recipes from
small_recipes() {
    if [ "$QC_TEST_SCALE" = small ]; then
        mkdir -p "$TMP/recipes"
        for r in "$top_srcdir"/recipes/*.ini; do
            sed "s/^\[database\]\$/&\nTest=$1/" "$r" >"$TMP/recipes/${r##*/}"
        done
        echo "$TMP/recipes"
    else
        echo "$top_srcdir/recipes"
    fi
}

# small_srcdir FRACTION: the source folder to read testdata/, tests/ and
# recipes/ from: $top_srcdir, or under QC_TEST_SCALE=small a view of it whose
# recipes/ is small_recipes FRACTION
small_srcdir() {
    if [ "$QC_TEST_SCALE" = small ]; then
        top=$(cd "$top_srcdir" && pwd)
        mkdir -p "$TMP/srcdir"
        ln -s "$top/testdata" "$top/tests" "$TMP/srcdir/" &&
            ln -s "$(small_recipes "$1")" "$TMP/srcdir/recipes" || exit 99
        echo "$TMP/srcdir"
    else
        echo "$top_srcdir"
    fi
}

# The test set of the long tests: the 10,000 Fashion-MNIST test images, or under
# QC_TEST_SCALE=small the first 2,000 (QC_N_TEST; a recipe's Test=QC_TEST_FRACTION,
# ort_eval.py --limit QC_N_TEST).  An image-by-image comparison that allows N differing
# images in 10,000 allows N/5 in 2,000 (the same rate): QC_DIFFER_10 and QC_DIFFER_30.
# shellcheck disable=SC2034  # read by the tests that source this file
QC_N_TEST=$(scaled 10000 2000) QC_DIFFER_10=$(scaled 10 2) QC_DIFFER_30=$(scaled 30 6)
QC_TEST_FRACTION=$(scaled 1.0 0.2)

# small_test_set RECIPE...: under QC_TEST_SCALE=small, the recipe files RECIPE... evaluate
# the first QC_N_TEST test images only (Test= in their [database] section); unchanged at
# full size
small_test_set() {
    [ "$QC_TEST_SCALE" = small ] || return 0
    sed -i "s/^\[database\]\$/&\nTest=$QC_TEST_FRACTION/" "$@"
}

ok()   { n_pass=$((n_pass + 1)); echo "ok   $*"; }
bad()  { n_fail=$((n_fail + 1)); echo "FAIL $*"; }

# expect_error CODE DESC -- command...: exit code CODE, exactly one stderr line
# containing "error:", no crash, and no file left at $OUTFILE if set.
expect_error() {
    want=$1; desc=$2; shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    lines=$(grep -c . "$TMP/err")
    if [ "$rc" -ne "$want" ]; then
        bad "$desc: exit $rc, expected $want"; cat "$TMP/err"; return
    fi
    if [ "$lines" -ne 1 ] || ! grep -q 'qatconv: error: ' "$TMP/err"; then
        bad "$desc: expected one error line, got $lines:"; cat "$TMP/err"; return
    fi
    if [ -n "${OUTFILE:-}" ] && [ -e "$OUTFILE" ]; then
        bad "$desc: output file $OUTFILE left behind"; return
    fi
    if [ -n "${OUTFILE:-}" ] && ls "$(dirname "$OUTFILE")"/.*.onnx.* >/dev/null 2>&1; then
        bad "$desc: temporary file left behind"; return
    fi
    ok "$desc ($(cat "$TMP/err"))"
}

# int_exact FAKE NAME NIMG [INT_LAYERS_OPTION...]: the integer-only export of the fake
# export FAKE (`qatconv FAKE --format int`, written to $TMP/NAME_int.onnx) equals ONNX
# Runtime at every integer tensor on NIMG images (tests/int_layers.py writes ORT's
# tensors, tests/run_model recomputes them with qatconv's integer evaluator) and has
# no float op between the input quantizer and the output (tests/int_check.py).  One
# ok/FAIL line each; returns 1 when the export or the comparison failed.
int_exact() {
    fake=$1; name=$2; nimg=$3; shift 3
    run_model=${RUN_MODEL:-${top_builddir:-.}/tests/run_model}
    if "$QATCONV" "$fake" --format int -o "$TMP/${name}_int.onnx" > "$TMP/$name.int" 2>&1 &&
        "$PYTHON3" "$top_srcdir/tests/int_layers.py" "$@" "$TMP/${name}_int.onnx" "$nimg" \
            "$TMP/${name}_L" > "$TMP/$name.layers" 2>&1 &&
        "$run_model" "$TMP/${name}_L/model.onnx" "$TMP/${name}_L" 2 > "$TMP/$name.run" 2>&1; then
        ok "$name int export: $(cat "$TMP/$name.layers"); qatconv computes the same integers"
    else
        bad "$name int export: $(cat "$TMP/$name.int" "$TMP/$name.layers" 2>/dev/null)"
        grep -v " 0 differ" "$TMP/$name.run" 2>/dev/null | head -10
        return 1
    fi
    if out=$("$PYTHON3" "$top_srcdir/tests/int_check.py" "$TMP/${name}_int.onnx" 2>&1); then
        ok "$name: $out"
    else
        bad "$name: integer-only check: $out"
    fi
    return 0
}

# fashion_sections BATCH: the [database]/[sp] sections of a recipe on Fashion-MNIST
# (no validation split, pixels scaled to [0, 1]).
fashion_sections() {
    cat <<EOF2
[database]
Type=MNIST_IDX_Database
DataPath=/usr/share/datasets/fashion-mnist
Validation=0.0
[sp]
SizeX=28
SizeY=28
NbChannels=1
BatchSize=${1:-128}
[sp.Transformation-1]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
EOF2
}

# lsq_recipe LR [FIRST LAST [FIRST_KEY...]]: the LSQ W4A4 recipe of the tests on
# Fashion-MNIST (as recipes/resnet-lsq-w4a4.ini): solver rate LR, momentum 0.9,
# fashion_sections 128, 4-bit LSQ weights (rate 0.0001) and 4-bit unsigned LSQ
# quantizers on the ReLUs (rate 0.001); with FIRST and LAST, those two layers'
# weights 8-bit, and the keys FIRST_KEY... (one per argument) added to FIRST's section.
# A caller adds its own sections after it.
lsq_recipe() {
    printf 'Solvers.LearningRate=%s\nSolvers.Momentum=0.9\n' "$1"
    fashion_sections 128
    printf '[onnx:Conv_def]\nQWeight=LSQ\nQWeight.Range=15\nQWeightSolver.LearningRate=0.0001\n'
    printf '[onnx:Fc_def] onnx:Conv_def\n'
    if [ $# -ge 3 ]; then
        lsq_last=$3
        printf '[%s] onnx:Conv_def\nQWeight.Range=255\n' "$2"
        shift 3
        [ $# -eq 0 ] || printf '%s\n' "$@"
        printf '[%s] onnx:Conv_def\nQWeight.Range=255\n' "$lsq_last"
    fi
    printf '[onnx:Relu_def]\nActivationFunction=Linear\nQAct=LSQ\nQAct.Range=15\n'
    printf 'QActSolver.LearningRate=0.001\n'
}

finish() {
    echo "$n_pass passed, $n_fail failed ($(($(date +%s) - QC_T0)) s)"
    [ "$n_fail" -eq 0 ]
}
