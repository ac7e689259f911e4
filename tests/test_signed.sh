#!/bin/sh
# test_signed.sh - signed LSQ activation quantizers (QAct=LSQ with QAct.Signed=1):
# - the tiny ResNet fixture with signed 4-bit ([-8, 7]) quantizers on the BatchNorm
#   outputs that feed its residual Adds (values of either sign), trained briefly: the fake
#   export passes onnx.checker full_check, every signed quantizer is an int8
#   QuantizeLinear/DequantizeLinear pair with zero point 0 and a Clip to [-8, 7] on the
#   levels, the unsigned ones stay uint8, and ONNX Runtime predicts what qatconv's
#   evaluation of the export predicts (tests/ort_eval.py, at most 10 of 10,000 images may
#   differ, as in test_qat.sh);
# - the same at 8 bits ([-128, 127], no Clip: QuantizeLinear saturates to int8's range);
# - the int export refuses a signed activation with one error line (no file);
# - QAct.Signed=1 with QAct=SAT (CG-PACT is unsigned) and a Signed value other than 0/1
#   are one error line naming the recipe file and line.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_resnet_tiny.onnx
DATA=/usr/share/datasets/fashion-mnist
RUN_MODEL=${top_builddir:-.}/tests/run_model
if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "SKIP: onnx, onnxruntime or numpy missing"; exit 77
fi
if [ ! -d "$DATA" ]; then
    echo "SKIP: $DATA missing"; exit 77
fi

# the BatchNorm outputs that reach an Add without a ReLU
SIGNED="/block1/bn2/BatchNormalization /block2/bn2/BatchNormalization
/block2/down/down.1/BatchNormalization"

# recipe ACT_RANGE: LSQ W4A4 (8-bit first and last layers) as recipes/resnet-lsq-w4a4.ini,
# unsigned on the ReLUs, signed with Range ACT_RANGE on the BatchNorms in $SIGNED
recipe() {
    printf 'Solvers.LearningRate=0.002\nSolvers.Momentum=0.9\n'
    fashion_sections 128
    cat <<'EOF2'
[onnx:Conv_def]
QWeight=LSQ
QWeight.Range=15
QWeightSolver.LearningRate=0.0001
[onnx:Fc_def] onnx:Conv_def
[/stem/stem.0/Conv] onnx:Conv_def
QWeight.Range=255
[/fc/Gemm] onnx:Conv_def
QWeight.Range=255
[onnx:Relu_def]
ActivationFunction=Linear
QAct=LSQ
QAct.Range=15
QActSolver.LearningRate=0.001
EOF2
    for b in $SIGNED; do
        printf '[%s]\nQAct=LSQ\nQAct.Signed=1\nQAct.Range=%s\nQActSolver.LearningRate=0.001\n' \
            "$b" "$1"
    done
}

# check_qdq MODEL QN QP: every activation QuantizeLinear of a $SIGNED value is int8 with
# zero point 0 (and a Clip to [-QN, QP] unless that is int8's range), the others uint8
check_qdq() {
    "$PYTHON3" - "$1" "$2" "$3" $SIGNED <<'PY'
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
qn, qp = int(sys.argv[2]), int(sys.argv[3])
signed = [b + "_output_0" for b in sys.argv[4:]]
inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
users = {}
for n in m.graph.node:
    for i in n.input:
        users.setdefault(i, []).append(n)
ns = nu = 0
for n in m.graph.node:
    if n.op_type != "QuantizeLinear":
        continue
    z = inits[n.input[2]]
    if n.input[0].startswith(tuple(signed)):
        assert z.dtype.name == "int8" and z == 0, n.name + ": zero point %r" % z
        nxt = users[n.output[0]][0]
        if (qn, qp) != (128, 127):
            assert nxt.op_type == "Clip", n.name + ": no Clip"
            lo, hi = inits[nxt.input[1]], inits[nxt.input[2]]
            assert lo.dtype.name == "int8" and (int(lo), int(hi)) == (-qn, qp), \
                "%s: Clip [%s, %s]" % (n.name, lo, hi)
        else:
            assert nxt.op_type == "DequantizeLinear", n.name + ": " + nxt.op_type
        ns += 1
    else:
        assert z.dtype.name == "uint8" and z == 0, n.name
        nu += 1
assert ns == len(signed), "%d signed quantizers, expected %d" % (ns, len(signed))
print("%d int8 and %d uint8 activation quantizers" % (ns, nu))
PY
}

for r in 15 255; do
    name=res$r
    recipe $r > "$TMP/$name.ini"
    if ! "$QATCONV" "$M" -r "$TMP/$name.ini" -o "$TMP/$name.onnx" --epochs 1 --limit 2048 \
            --quiet > "$TMP/$name.train" 2>&1; then
        bad "$name: training failed: $(cat "$TMP/$name.train")"; continue
    fi
    ok "$name signed on the residual BatchNorms: $(grep 'test top-1' "$TMP/$name.train")"
    if [ "$r" = 15 ]; then lv="8 7"; else lv="128 127"; fi
    if out=$(check_qdq "$TMP/$name.onnx" $lv 2>&1); then ok "$name: $out"
    else bad "$name: $out"; fi
    if "$QATCONV" eval "$TMP/$name.onnx" -r "$TMP/$name.ini" --quiet \
            --predictions "$TMP/$name.qc" > "$TMP/$name.eval" 2>&1 &&
        "$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$TMP/$name.onnx" --data "$DATA" \
            --compare "$TMP/$name.qc" --max-differ 10 --run-model "$RUN_MODEL" \
            > "$TMP/$name.agree" 2>&1; then
        ok "$name: ONNX Runtime per image: $(grep '^agree=' "$TMP/$name.agree")"
    else
        bad "$name: ONNX Runtime per image: $(grep -v '^differ image' "$TMP/$name.eval" \
            "$TMP/$name.agree")"
    fi
done

# the int export has no form of signed levels yet: one error line, no file
OUTFILE=$TMP/int.onnx expect_error 2 "int export of a signed activation" -- \
    "$QATCONV" "$M" -r "$TMP/res15.ini" -o "$TMP/int.onnx" --format int --epochs 1 \
    --limit 128 --no-eval
grep -q "QAct.Signed=1" "$TMP/err" || bad "the int export error does not name QAct.Signed"

# recipe errors: one line naming file:line
{ printf '[/block1/bn2/BatchNormalization]\nQAct=SAT\nQAct.Signed=1\n'
    fashion_sections 128; } > "$TMP/sat.ini"
expect_error 2 "QAct.Signed=1 with QAct=SAT" -- \
    "$QATCONV" "$M" -r "$TMP/sat.ini" -o "$TMP/sat.onnx" --epochs 1 --limit 128
grep -q 'sat.ini:3: .*QAct.Signed=1 with QAct=SAT' "$TMP/err" ||
    bad "the SAT error does not name sat.ini:3: $(cat "$TMP/err")"
printf '[/block1/bn2/BatchNormalization]\nQAct=LSQ\nQAct.Signed=2\n' > "$TMP/two.ini"
expect_error 2 "QAct.Signed=2" -- \
    "$QATCONV" "$M" -r "$TMP/two.ini" -o "$TMP/two.onnx" --epochs 1 --limit 128
finish
