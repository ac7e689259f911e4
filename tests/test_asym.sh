#!/bin/sh
# test_asym.sh - asymmetric LSQ activation quantizers (QAct=LSQ with QAct.ZeroPoint):
# - the tiny ResNet fixture with zero-point quantizers on the BatchNorm outputs that feed
#   its residual Adds (values of either sign), trained briefly, once with
#   ZeroPoint=Learned at 4 bits ([0, 15]) and once with ZeroPoint=Calibrated at 8 bits:
#   the fake export passes onnx.checker full_check, every such quantizer is a uint8
#   QuantizeLinear/DequantizeLinear pair whose zero point lies in [0, R] and is not 0 for
#   at least one of them (the BatchNorm outputs are of both signs), with a Clip to [0, 15]
#   on the 4-bit levels; the other quantizers keep zero point 0; ONNX Runtime predicts
#   what qatconv's evaluation of the export predicts (tests/ort_eval.py, at most 10 of
#   10,000 images may differ, as in test_qat.sh);
# - the int export of both: every integer tensor equals ONNX Runtime's on 200 images
#   (tests/int_layers.py + tests/run_model), no float op between the input quantizer
#   and the output (tests/int_check.py), and ONNX Runtime's top-1 of it is within 0.5
#   points of qatconv's figure for the fake export;
# - a checkpoint carries the learned zero points: 2 epochs = 1 epoch + --resume;
# - QAct.ZeroPoint with QAct=SAT (CG-PACT is unsigned) or with QAct.Signed=1, and a
#   ZeroPoint value other than 0/Learned/Calibrated, are one error line naming the
#   recipe file and line.
# Under QC_TEST_SCALE=small (tests/lib.sh) every case and check runs on the first 2,000
# test images (at most 2 of them may differ where 10 of 10,000 may), the int exports on
# 100 images, and the checkpoint runs on 640 images instead of 1,280.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_resnet_tiny.onnx
DATA=/usr/share/datasets/fashion-mnist
RUN_MODEL=${top_builddir:-.}/tests/run_model
NIMG=$(scaled 200 100)
NCK=$(scaled 1280 640)
if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "SKIP: onnx, onnxruntime or numpy missing"; exit 77
fi
if [ ! -d "$DATA" ]; then
    echo "SKIP: $DATA missing"; exit 77
fi

# the BatchNorm outputs that reach an Add without a ReLU
ASYM="/block1/bn2/BatchNormalization /block2/bn2/BatchNormalization
/block2/down/down.1/BatchNormalization"

# recipe MODE RANGE: LSQ W4A4 (8-bit first and last layers) as recipes/resnet-lsq-w4a4.ini,
# unsigned on the ReLUs, QAct.ZeroPoint=MODE with Range RANGE on the BatchNorms in $ASYM
recipe() {
    lsq_recipe 0.002 /stem/stem.0/Conv /fc/Gemm
    for b in $ASYM; do
        printf '[%s]\nQAct=LSQ\nQAct.ZeroPoint=%s\nQAct.Range=%s\nQActSolver.LearningRate=0.001\n' \
            "$b" "$1" "$2"
    done
}

# check_qdq MODEL R: every activation QuantizeLinear of an $ASYM value is uint8 with a zero
# point in [0, R] (one at least not 0) and a Clip to [0, R] unless R = 255; the others
# uint8 with zero point 0
check_qdq() {
    "$PYTHON3" - "$1" "$2" $ASYM <<'PY'
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
R = int(sys.argv[2])
asym = [b + "_output_0" for b in sys.argv[3:]]
inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
users = {}
for n in m.graph.node:
    for i in n.input:
        users.setdefault(i, []).append(n)
zps, nu = [], 0
for n in m.graph.node:
    if n.op_type != "QuantizeLinear":
        continue
    z = inits[n.input[2]]
    assert z.dtype.name == "uint8", n.name + ": " + z.dtype.name
    if n.input[0].startswith(tuple(asym)):
        assert 0 <= int(z) <= R, n.name + ": zero point %r" % z
        nxt = users[n.output[0]][0]
        if R != 255:
            assert nxt.op_type == "Clip", n.name + ": no Clip"
            lo, hi = inits[nxt.input[1]], inits[nxt.input[2]]
            assert lo.dtype.name == "uint8" and (int(lo), int(hi)) == (0, R), \
                "%s: Clip [%s, %s]" % (n.name, lo, hi)
        else:
            assert nxt.op_type == "DequantizeLinear", n.name + ": " + nxt.op_type
        dq = [u for u in users[nxt.output[0] if R != 255 else n.output[0]]
              if u.op_type == "DequantizeLinear"]
        assert dq and dq[0].input[2] == n.input[2], n.name + ": DequantizeLinear's zero point"
        zps.append(int(z))
    else:
        assert z == 0, n.name
        nu += 1
assert len(zps) == len(asym), "%d zero-point quantizers, expected %d" % (len(zps), len(asym))
assert any(zps), "every zero point is 0: %s" % zps
print("%d uint8 quantizers with zero points %s, %d with 0" % (len(zps), zps, nu))
PY
}

for c in "Learned 15" "Calibrated 255"; do
    set -- $c
    name=$1$2
    recipe "$1" "$2" > "$TMP/$name.ini"
    small_test_set "$TMP/$name.ini"
    if ! "$QATCONV" "$M" -r "$TMP/$name.ini" -o "$TMP/$name.onnx" --epochs 1 --limit 2048 \
            --quiet > "$TMP/$name.train" 2>&1; then
        bad "$name: training failed: $(cat "$TMP/$name.train")"; continue
    fi
    ok "$name zero points on the residual BatchNorms: $(grep 'test top-1' "$TMP/$name.train")"
    if out=$(check_qdq "$TMP/$name.onnx" "$2" 2>&1); then ok "$name: $out"
    else bad "$name: $out"; fi
    if "$QATCONV" eval "$TMP/$name.onnx" -r "$TMP/$name.ini" --quiet \
            --predictions "$TMP/$name.qc" > "$TMP/$name.eval" 2>&1 &&
        "$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$TMP/$name.onnx" --data "$DATA" \
            --compare "$TMP/$name.qc" --max-differ "$QC_DIFFER_10" --limit "$QC_N_TEST" \
            --run-model "$RUN_MODEL" \
            > "$TMP/$name.agree" 2>&1; then
        ok "$name: ONNX Runtime per image: $(grep '^agree=' "$TMP/$name.agree")"
    else
        bad "$name: ONNX Runtime per image: $(grep -v '^differ image' "$TMP/$name.eval" \
            "$TMP/$name.agree")"
    fi

    # the int export: uint8 levels with their zero point (ConvInteger's x_zero_point, the
    # requantization adds z, a residual Add of the levels in integer terms)
    int_exact "$TMP/$name.onnx" "$name" "$NIMG"
    want=$(sed -n 's/.*exported graph \([0-9.]*\)%.*/\1/p' "$TMP/$name.train")
    got=$("$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$TMP/${name}_int.onnx" --data "$DATA" \
        --limit "$QC_N_TEST" 2>&1 | sed -n 's/^accuracy=\([0-9.]*\) .*/\1/p')
    if [ -n "$want" ] && [ -n "$got" ] &&
        awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d < 0.5 && d > -0.5) }'; then
        ok "$name int export: ONNX Runtime top-1 $got%, the fake export's $want%"
    else
        bad "$name int export: ONNX Runtime top-1 '$got'%, the fake export's '$want'%"
    fi
done

# checkpoints hold [s, zf]: 1 epoch, then --resume to 2 = 2 epochs straight
R=$TMP/Learned15.ini
if "$QATCONV" "$M" -r "$R" -o "$TMP/two.onnx" --epochs 2 --limit "$NCK" --quiet --no-eval \
        > "$TMP/two.out" 2>&1 &&
   "$QATCONV" "$M" -r "$R" -o "$TMP/one.onnx" --epochs 1 --limit "$NCK" --quiet --no-eval \
        --checkpoint "$TMP/c.ckpt" > "$TMP/one.out" 2>&1 &&
   "$QATCONV" "$M" -r "$R" -o "$TMP/res.onnx" --epochs 2 --limit "$NCK" --quiet --no-eval \
        --checkpoint "$TMP/c.ckpt" --resume "$TMP/c.ckpt" > "$TMP/res.out" 2>&1 &&
   cmp -s "$TMP/two.onnx" "$TMP/res.onnx"; then
    ok "checkpoint: 1 epoch + --resume writes the file 2 epochs write (learned zero points)"
else
    bad "checkpoint: $(cat "$TMP/two.out" "$TMP/one.out" "$TMP/res.out" 2>/dev/null)"
fi

# recipe errors: one line naming file:line
{ printf '[/block1/bn2/BatchNormalization]\nQAct=SAT\nQAct.ZeroPoint=Learned\n'
    fashion_sections 128; } > "$TMP/sat.ini"
expect_error 2 "QAct.ZeroPoint with QAct=SAT" -- \
    "$QATCONV" "$M" -r "$TMP/sat.ini" -o "$TMP/sat.onnx" --epochs 1 --limit 128
grep -q 'sat.ini:3: .*QAct.ZeroPoint=Learned with QAct=SAT' "$TMP/err" ||
    bad "the SAT error does not name sat.ini:3: $(cat "$TMP/err")"
{ printf '[/block1/bn2/BatchNormalization]\nQAct=LSQ\nQAct.Signed=1\nQAct.ZeroPoint=Calibrated\n'
    fashion_sections 128; } > "$TMP/sgn.ini"
expect_error 2 "QAct.ZeroPoint with QAct.Signed=1" -- \
    "$QATCONV" "$M" -r "$TMP/sgn.ini" -o "$TMP/sgn.onnx" --epochs 1 --limit 128
grep -q 'sgn.ini:4: .*QAct.ZeroPoint=Calibrated with QAct.Signed=1' "$TMP/err" ||
    bad "the Signed error does not name sgn.ini:4: $(cat "$TMP/err")"
printf '[/block1/bn2/BatchNormalization]\nQAct=LSQ\nQAct.ZeroPoint=2\n' > "$TMP/two.ini"
expect_error 2 "QAct.ZeroPoint=2" -- \
    "$QATCONV" "$M" -r "$TMP/two.ini" -o "$TMP/two.onnx" --epochs 1 --limit 128
grep -q 'two.ini:3: ' "$TMP/err" || bad "the ZeroPoint=2 error does not name two.ini:3"
finish
