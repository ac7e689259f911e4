#!/bin/sh
# test_int16.sh - SAT Default weights with Range > 127 (odd levels up to ±R, 9 bits: the 8-bit
# first and last layers of N2D2's recipes) in the fake-quant export:
# - LeNet-BN with recipes/lenet-sat-w8a8.ini, per tensor and per channel (short runs): the
#   fake export is at opset 21 and passes onnx.checker full_check; every quantized weight is
#   an int16 initializer (odd levels in [-255, 255], zero point 0) behind a DequantizeLinear
#   (per channel: one scale per output channel along axis 0); no float weight is left; ONNX
#   Runtime predicts what qatconv's evaluation of the export predicts, image by image
#   (tests/ort_eval.py, at most 10 of the test images may differ, as in test_qat.sh);
# - the int export read from that file (no recipe): integer only (tests/int_check.py), every
#   integer tensor equal to ONNX Runtime's on 200 images (tests/int_layers.py + run_model);
# - --opset 13 asked explicitly: the weights stay exact fake-quantized floats, one warning
#   per weight naming it, the file at opset 13, ONNX Runtime still agrees.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
R=$top_srcdir/recipes/lenet-sat-w8a8.ini
DATA=/usr/share/datasets/fashion-mnist
RUN_MODEL=${top_builddir:-.}/tests/run_model
if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "SKIP: onnx, onnxruntime or numpy missing"; exit 77
fi
if [ ! -d "$DATA" ]; then
    echo "SKIP: $DATA missing"; exit 77
fi
N_TEST=$(scaled 10000 2000)
TRAIN="--epochs 1 --limit $(scaled 4096 1024) --threads 2 --seed 3 --quiet"

# check_weights MODEL OPSET DTYPE AXIS: the opset, and every quantized weight a DTYPE (int16
# or float) initializer; int16: behind a DequantizeLinear (AXIS "-": per tensor)
check_weights() {
    "$PYTHON3" - "$@" <<'PY'
import sys, numpy as np, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
assert opset == int(sys.argv[2]), "opset %d, expected %s" % (opset, sys.argv[2])
inits = {t.name: t for t in m.graph.initializer}
dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
floats = [t.name for t in m.graph.initializer
          if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 2]
if sys.argv[3] == "float":
    assert not dq, "weight DequantizeLinear nodes: %s" % [n.name for n in dq]
    assert len(floats) == 4, "float weights %s" % floats
    print("opset %d, %d exact float weights" % (opset, len(floats)))
    sys.exit(0)
assert len(dq) == 4 and not floats, "%d weight DQs, float weights %s" % (len(dq), floats)
for n in dq:
    t = inits[n.input[0]]
    assert t.data_type == onnx.TensorProto.INT16, n.name + ": not int16"
    k = numpy_helper.to_array(t).astype(np.int64)
    s = numpy_helper.to_array(inits[n.input[1]])
    z = inits[n.input[2]]
    assert z.data_type == onnx.TensorProto.INT16 and (numpy_helper.to_array(z) == 0).all()
    assert (k % 2 != 0).all() and np.abs(k).max() <= 255, n.name + ": levels not odd in ±255"
    assert np.abs(k).max() > 127, n.name + ": levels fit int8"
    ax = [a.i for a in n.attribute if a.name == "axis"]
    if sys.argv[4] == "-":
        assert s.shape == () and not ax, n.name + ": not per tensor"
    else:
        assert ax == [int(sys.argv[4])] and s.shape == (k.shape[ax[0]],), \
            "%s: scale %s along %s of %s" % (n.name, s.shape, ax, k.shape)
print("opset %d, %d int16 weights (odd levels up to %d)" % (opset, len(dq), max(
    np.abs(numpy_helper.to_array(inits[n.input[0]]).astype(np.int64)).max() for n in dq)))
PY
}

# agree NAME RECIPE [ORT_EVAL_OPTION]: ONNX Runtime's predictions on NAME.onnx against
# qatconv's, image by image
agree() {
    if "$QATCONV" eval "$TMP/$1.onnx" -r "$2" --quiet --limit "$N_TEST" \
            --predictions "$TMP/$1.qc" > "$TMP/$1.eval" 2>&1 &&
        "$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$TMP/$1.onnx" --data "$DATA" \
            --limit "$N_TEST" --compare "$TMP/$1.qc" --max-differ 10 \
            --run-model "$RUN_MODEL" ${3:-} > "$TMP/$1.agree" 2>&1; then
        ok "$1: ONNX Runtime per image: $(grep '^agree=' "$TMP/$1.agree")"
    else
        bad "$1: ONNX Runtime per image: $(grep -v '^differ image' "$TMP/$1.eval" \
            "$TMP/$1.agree")"
    fi
}

cp "$R" "$TMP/tensor.ini"
sed 's/^QWeight.Range=255$/&\nQWeight.PerChannel=1/' "$R" > "$TMP/channel.ini"
for v in tensor channel; do
    if ! "$QATCONV" "$M" -r "$TMP/$v.ini" -o "$TMP/$v.onnx" $TRAIN > "$TMP/$v.train" 2>&1; then
        bad "$v: training failed: $(cat "$TMP/$v.train")"; continue
    fi
    if grep -q "beyond int8" "$TMP/$v.train"; then
        bad "$v: weights reported as kept in float: $(cat "$TMP/$v.train")"
    fi
    axis=-; [ $v = channel ] && axis=0
    if out=$(check_weights "$TMP/$v.onnx" 21 int16 $axis 2>&1); then ok "$v fake export: $out"
    else bad "$v fake export: $out"; fi
    agree "$v" "$TMP/$v.ini"
    # the int export of the file: int16 DequantizeLinear weights read as levels
    if "$QATCONV" "$TMP/$v.onnx" --format int -o "$TMP/${v}_int.onnx" > "$TMP/$v.int" 2>&1 &&
        out=$("$PYTHON3" "$top_srcdir/tests/int_check.py" "$TMP/${v}_int.onnx" 2>&1) &&
        "$PYTHON3" "$top_srcdir/tests/int_layers.py" "$TMP/${v}_int.onnx" 200 "$TMP/${v}_L" \
            > "$TMP/$v.layers" 2>&1 &&
        "$RUN_MODEL" "$TMP/${v}_L/model.onnx" "$TMP/${v}_L" 2 > "$TMP/$v.run" 2>&1; then
        ok "$v int export of the int16 file: $out; $(cat "$TMP/$v.layers"); qatconv computes" \
            "the same integers"
    else
        bad "$v int export of the int16 file: $(cat "$TMP/$v.int" "$TMP/$v.layers" 2>/dev/null)"
        echo "${out:-}"; grep -v " 0 differ" "$TMP/$v.run" 2>/dev/null | head -10
    fi
done

# --opset 13 asked: exact float weights, each reported
if "$QATCONV" "$M" -r "$R" -o "$TMP/op13.onnx" $TRAIN --opset 13 > "$TMP/op13.train" 2>&1; then
    n=$(grep -c "warning: .*weight '.*' has levels beyond int8.*below opset 21" \
        "$TMP/op13.train")
    if [ "$n" = 4 ] && out=$(check_weights "$TMP/op13.onnx" 13 float 2>&1); then
        ok "--opset 13: $n warnings; $out"
    else
        bad "--opset 13: $n warnings; ${out:-}"; cat "$TMP/op13.train"
    fi
    # as ONNX specifies it: with graph optimizations ONNX Runtime fuses the activation
    # Q/DQ around a float-weight layer into its own integer kernels, which round
    # differently (test_int_export.sh); int16 weights leave nothing for it to fuse
    agree op13 "$R" --no-optimize
else
    bad "--opset 13: training failed: $(cat "$TMP/op13.train")"
fi

finish
