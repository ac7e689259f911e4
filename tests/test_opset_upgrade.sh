#!/bin/sh
# test_opset_upgrade.sh - `--opset N` and the exports raise a model's opset by
# rewriting the ops whose form changed (src/export/opset.c), so that ONNX
# Runtime computes the same outputs before and after:
#  - one small model per rewrite at its old opset (tests/opset_upgrade.py
#    build: BatchNormalization spatial, Dropout ratio/mask, Clip min/max, Pad,
#    ReduceMean/ReduceSum/Squeeze/Unsqueeze axes, Slice, Upsample -> Resize,
#    Resize-10 -> 11, Softmax/LogSoftmax 2-D coercion), written at every
#    target opset that crosses the change: onnx.checker full_check, the opset
#    and IR version asked for, ONNX Runtime outputs equal (<= 1e-6 relative);
#    the forms with no equivalent are refused with one error line;
#  - every fixture below opset 13 (testdata/*_op7..11) raised to 13 and 21 (and
#    10 below it), the same checks on its test_data_set_0 inputs;
#  - the fake-quant export of a small CNN at opset 9 (4-bit activations: Clip
#    on uint8 levels, opset 12) and at opset 11 (8-bit: per-tensor QDQ stays at
#    11), its --fold-bn form (per-channel scales: opset 13) and the
#    integer-only export of the opset-11 one (opset 14): ONNX Runtime's
#    prediction of every test image equals qatconv's (Fashion-MNIST; skipped
#    without it).
. "${top_srcdir:-.}/tests/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
PY=$top_srcdir/tests/opset_upgrade.py

if ! "$PYTHON3" -c 'import onnx, onnxruntime' 2>/dev/null; then
    echo "SKIP: python3 with onnx and onnxruntime is needed"; exit 77
fi

# upgrade NAME MODEL TARGET: qatconv MODEL --opset TARGET; the checks of the
# written model are queued in $TMP/checks and run by one Python process
n_up=0
upgrade() {
    n_up=$((n_up + 1))
    out=$TMP/up$n_up.onnx
    if ! "$QATCONV" --quiet "$2" -o "$out" --opset "$3" >"$TMP/err" 2>&1 </dev/null; then
        bad "$1 -> $3: qatconv failed: $(cat "$TMP/err")"; return
    fi
    echo "$1->$3 $2 $out $3" >>"$TMP/checks"
}
: >"$TMP/checks"

D=$TMP/models
mkdir -p "$D"
if ! "$PYTHON3" "$PY" build "$D" >"$TMP/cases" 2>"$TMP/err"; then
    bad "building the models: $(cat "$TMP/err")"; finish; exit 1
fi
while read -r name targets; do
    case $targets in
    *error)
        t=${targets% error}
        OUTFILE=$TMP/$name.onnx expect_error 2 "$name -> $t refused" -- \
            "$QATCONV" --quiet "$D/$name.onnx" -o "$TMP/$name.onnx" --opset "$t" </dev/null
        continue ;;
    esac
    for t in $targets; do
        upgrade "$name" "$D/$name.onnx" "$t"
    done
done <"$TMP/cases"

# every old fixture
"$PYTHON3" "$PY" fixtures "$top_srcdir/testdata" >"$TMP/fixtures" 2>"$TMP/err" ||
    bad "listing the fixtures: $(cat "$TMP/err")"
while read -r m targets; do
    name=$(basename "$(dirname "$m")")
    for t in $targets; do
        upgrade "$name" "$m" "$t"
    done
done <"$TMP/fixtures"

"$PYTHON3" "$PY" checklist "$TMP/checks" >"$TMP/checked" 2>"$TMP/err" ||
    bad "running the checks: $(tail -n 3 "$TMP/err")"
while read -r verdict rest; do
    case $verdict in
    ok) ok "$rest" ;;
    *) bad "$rest" ;;
    esac
done <"$TMP/checked"

# a classifier's Softmax over [N, K, 1, 1] keeps its node across the opset-13 change:
# the dims past axis 1 are all 1, so the old 2-D coercion and the new per-axis
# Softmax normalize the same values (src/export/opset.c, up_softmax)
M=$D/softmax_scores_op9.onnx
if "$QATCONV" --quiet "$M" -o "$TMP/scores14.onnx" --opset 14 >"$TMP/err" 2>&1 &&
    ops=$("$PYTHON3" -c 'import sys, onnx
print(" ".join(n.op_type for n in onnx.load(sys.argv[1]).graph.node))' "$TMP/scores14.onnx") &&
    [ "$ops" = "Conv GlobalAveragePool Softmax" ]; then
    ok "softmax_scores_op9 -> 14: the Softmax node is kept ($ops)"
else
    bad "softmax_scores_op9 -> 14: nodes '$ops' $(cat "$TMP/err")"
fi

# usage: the opset is only raised, within what qatconv writes
M=$D/clip_op7.onnx
OUTFILE=$TMP/no.onnx expect_error 1 "--opset 6 is a usage error" -- \
    "$QATCONV" "$M" -o "$TMP/no.onnx" --opset 6
OUTFILE=$TMP/no.onnx expect_error 2 "--opset 24 is beyond the newest" -- \
    "$QATCONV" "$M" -o "$TMP/no.onnx" --opset 24
OUTFILE=$TMP/no.onnx expect_error 1 "--opset below the model's is refused" -- \
    "$QATCONV" "$top_srcdir/testdata/batchnorm_op13/model.onnx" -o "$TMP/no.onnx" --opset 11

# fake-quant and integer-only exports of old-opset models
if [ ! -f "$DATA/t10k-labels-idx1-ubyte" ] && [ ! -f "$DATA/t10k-labels-idx1-ubyte.gz" ]; then
    echo "SKIP: the exports need Fashion-MNIST in $DATA (dataset-fashion-mnist)"
    finish; exit $?
fi
"$PYTHON3" "$PY" convnet "$D" || bad "building the CNNs"
recipe() {
    fashion_sections 64
    cat <<EOF2
[onnx:Conv_def]
QWeight=LSQ
QWeight.Range=$1
[onnx:Fc_def] onnx:Conv_def
[onnx:Relu_def]
ActivationFunction=Linear
QAct=LSQ
QAct.Range=$2
Solvers=SGD
Solvers.LearningRate=0.01
EOF2
}
recipe 15 15 >"$TMP/w4a4.ini"
recipe 255 255 >"$TMP/w8a8.ini"

# agree NAME MODEL RECIPE: ONNX Runtime's prediction of the first 2000 test
# images equals qatconv's evaluation of MODEL on all but at most 2 (0.1 %, the
# threshold of test_qat.sh and its reason: both compute the fake-quant graph in
# float with other summation orders, so an activation within a rounding step of
# a level boundary may land on the neighbouring level in one of them, and an
# image whose two best classes are that close may flip; each differing image
# is printed with its margin)
agree() {
    if ! "$QATCONV" eval "$2" -r "$3" --quiet --limit 2000 --predictions "$TMP/qc.pred" \
            >"$TMP/eval" 2>&1; then
        bad "$1: qatconv eval: $(cat "$TMP/eval")"; return
    fi
    if "$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$2" --data "$DATA" --limit 2000 \
            --compare "$TMP/qc.pred" --max-differ 2 >"$TMP/agree" 2>&1; then
        ok "$1: ONNX Runtime per image: $(grep '^agree=' "$TMP/agree")"
        grep '^differ image' "$TMP/agree"
    else
        bad "$1: ONNX Runtime per image: $(cat "$TMP/agree")"
    fi
}

# opset_of MODEL: the default-domain opset import
opset_of() {
    "$PYTHON3" -c 'import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print([o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0])' "$1"
}

for c in "9 w4a4 12" "11 w8a8 11"; do
    set -- $c
    src=$D/convnet_op$1.onnx out=$TMP/fake$1.onnx
    if ! "$QATCONV" "$src" -r "$TMP/$2.ini" -o "$out" --epochs 1 --limit 1280 --no-eval \
            --quiet >"$TMP/train" 2>&1; then
        bad "opset $1 $2: fake export failed: $(cat "$TMP/train")"; continue
    fi
    got=$(opset_of "$out" 2>&1)
    if [ "$got" = "$3" ]; then ok "opset $1 $2: fake export at opset $got, checker ok"
    else bad "opset $1 $2: fake export opset '$got', expected $3"; fi
    agree "opset $1 $2 fake export" "$out" "$TMP/$2.ini"
done
# --fold-bn: per-channel DequantizeLinear scales need opset 13
if "$QATCONV" "$D/convnet_op11.onnx" -r "$TMP/w8a8.ini" -o "$TMP/fold11.onnx" --fold-bn --epochs 1 \
        --limit 1280 --no-eval --quiet >"$TMP/fold" 2>&1; then
    got=$(opset_of "$TMP/fold11.onnx" 2>&1)
    if [ "$got" = 13 ]; then ok "opset 11 --fold-bn export at opset $got, checker ok"
    else bad "opset 11 --fold-bn export opset '$got', expected 13"; fi
    agree "opset 11 --fold-bn export" "$TMP/fold11.onnx" "$TMP/w8a8.ini"
else
    bad "opset 11 --fold-bn export failed: $(cat "$TMP/fold")"
fi
if "$QATCONV" "$TMP/fake11.onnx" --format int -o "$TMP/int11.onnx" --quiet >"$TMP/int" 2>&1; then
    got=$(opset_of "$TMP/int11.onnx" 2>&1)
    if [ "$got" = 14 ]; then ok "opset 11 int export at opset $got, checker ok"
    else bad "opset 11 int export opset '$got', expected 14"; fi
    agree "opset 11 int export" "$TMP/int11.onnx" "$TMP/w8a8.ini"
else
    bad "opset 11 int export failed: $(cat "$TMP/int")"
fi
finish
