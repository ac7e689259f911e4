#!/bin/sh
# test_int_layers.sh - tests/int_layers.py in runs of a few images (what keeps the
# reference of a 224x224 model's integer tensors within memory: every integer tensor
# of VGG-19 on 8 images took 13 GB at once) writes the same files, byte for byte, as
# one run on all images, for a symbolic batch (runs of 1 image) and a fixed batch of 2
# (runs of 2, the outputs that do not carry the batch from the last run); and
# tests/run_model, which compares each output where the plan computed it, accepts the
# result and rejects it with one element changed.  The model: a short QAT run of the
# LeNet-BN fixture exported --format int.  Skips (77) only when numpy, onnx or
# onnxruntime is missing.
. "${top_srcdir:-.}/tests/lib.sh"
S=$top_srcdir
RUN_MODEL=${top_builddir:-.}/tests/run_model
if ! "$PYTHON3" -c 'import numpy, onnx, onnxruntime' 2>"$TMP/imp"; then
    echo "SKIP: numpy, onnx and onnxruntime are not all importable by $PYTHON3:" \
        "$(tail -n 1 "$TMP/imp")"
    exit 77
fi
if ! "$QATCONV" "$S/testdata/fashion_lenet_bn.onnx" -r "$S/recipes/lenet-lsq-w4a4.ini" \
        -o "$TMP/l.onnx" --epochs 1 --limit 256 --threads 2 --quiet --no-eval --seed 3 \
        --format int >"$TMP/q.log" 2>&1; then
    bad "int export: $(cat "$TMP/q.log")"; finish
fi
# the same model with a fixed batch of 2
"$PYTHON3" - "$TMP/l.onnx" "$TMP/l2.onnx" <<'PY' || bad "fixed-batch copy"
import sys, onnx
m = onnx.load(sys.argv[1])
m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
onnx.save(m, sys.argv[2])
PY
same() {   # same DIR1 DIR2: every file equal
    for f in "$1"/*; do cmp -s "$f" "$2/$(basename "$f")" || return 1; done
    [ "$(ls "$1" | wc -l)" -eq "$(ls "$2" | wc -l)" ]
}
for m in l l2; do
    if "$PYTHON3" "$S/tests/int_layers.py" "$TMP/$m.onnx" 20 "$TMP/${m}_all" >"$TMP/a.log" 2>&1 &&
        QC_INT_LAYERS_BUDGET=1 "$PYTHON3" "$S/tests/int_layers.py" "$TMP/$m.onnx" 20 \
            "$TMP/${m}_runs" >"$TMP/r.log" 2>&1; then
        if same "$TMP/${m}_all" "$TMP/${m}_runs"; then
            ok "$m: in runs of a few images, the files of one run ($(cat "$TMP/r.log"))"
        else bad "$m: the files differ from one run's"; fi
    else bad "$m: int_layers failed: $(cat "$TMP/a.log" "$TMP/r.log")"; fi
    if "$RUN_MODEL" "$TMP/${m}_runs/model.onnx" "$TMP/${m}_runs" 1 >"$TMP/run.log" 2>&1; then
        ok "$m: run_model: qatconv's integers equal at every layer"
    else bad "$m: run_model: $(grep -v ' 0 differ' "$TMP/run.log" | head -5)"; fi
done
# one element off in one reference: run_model must say so (exit 1)
"$PYTHON3" - "$TMP/l_runs/output_3.pb" <<'PY' || bad "cannot edit a reference"
import sys
import numpy as np
from onnx import TensorProto, numpy_helper as nh
t = TensorProto()
t.ParseFromString(open(sys.argv[1], "rb").read())
a = nh.to_array(t).copy()
a.flat[a.size // 2] += 1
open(sys.argv[1], "wb").write(nh.from_array(a).SerializeToString())
PY
"$RUN_MODEL" "$TMP/l_runs/model.onnx" "$TMP/l_runs" 1 >"$TMP/run.log" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q ' 1 differ' "$TMP/run.log"; then
    ok "run_model: one changed element found ($(grep ' 1 differ' "$TMP/run.log"))"
else bad "run_model on a changed reference: exit $rc"; fi
finish
