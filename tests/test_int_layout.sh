#!/bin/sh
# test_int_layout.sh - the int export through the layout ops around its layers, on the
# small models of tests/int_layout_models.py (trained one short epoch on synthetic data):
#   - a float16 model's fake-quant file reads its input through a Cast to float32 before
#     the first Conv: the int export of that file quantizes after the Cast (float ops
#     only before the input quantizer, tests/int_check.py);
#   - 1-D convolutions written as 2-D ones (Unsqueeze, Conv, Squeeze, as tf2onnx writes
#     Conv1D) and a Reshape that keeps the channel axis carry integer terms with
#     per-channel scales;
#   - every integer tensor equals ONNX Runtime's (tests/int_layers.py + tests/run_model);
#   - a Reshape that mixes channels is refused with one error line.
. "${top_srcdir:-.}/tests/lib.sh"
: "${top_builddir:=.}"
S=$top_srcdir
RUN_MODEL=$top_builddir/tests/run_model

if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "skip: onnx, onnxruntime or numpy missing for $PYTHON3"; exit 77
fi
if ! "$PYTHON3" "$S/tests/int_layout_models.py" "$TMP"; then
    bad "int_layout_models.py"; finish; exit
fi

# recipe MODEL CLASSES: the model's template recipe on synthetic data
recipe() {
    "$QATCONV" --recipe-template "$1" | awk -v k="$2" '
        /^\[database\]/ { print "[database]\nType=Synthetic\nNbClasses=" k "\nNbLearn=16\nNbTest=8"
                          skip = 1; next }
        /^\[/ { skip = 0 }
        !skip' >"$1.ini"
}

# input MODEL OUT: 8 images of uniform levels k/255 in the model's input type
input() {
    "$PYTHON3" - "$1" "$2" <<'PY'
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper
m = onnx.load(sys.argv[1])
i = m.graph.input[0].type.tensor_type
shape = [8] + [d.dim_value for d in i.shape.dim[1:]]
x = np.random.default_rng(1).integers(0, 256, shape) / 255.0
x = x.astype(helper.tensor_dtype_to_np_dtype(i.elem_type))
open(sys.argv[2], "wb").write(numpy_helper.from_array(x).SerializeToString())
PY
}

# int_layers NAME: the fake export of NAME's training, its int export, checked
int_layers() {
    name=$1
    recipe "$TMP/$name.onnx" 5
    if ! "$QATCONV" "$TMP/$name.onnx" -r "$TMP/$name.onnx.ini" -o "$TMP/${name}_fake.onnx" \
        --format fake --epochs 1 --batch 8 --threads 1 --quiet >"$TMP/$name.log" 2>&1; then
        bad "$name: fake export"; cat "$TMP/$name.log"; return
    fi
    if ! "$QATCONV" "$TMP/${name}_fake.onnx" --format int -o "$TMP/${name}_int.onnx" \
        --threads 1 >"$TMP/$name.log" 2>&1; then
        bad "$name: int export of the fake-quant file"; cat "$TMP/$name.log"; return
    fi
    ok "$name: int export of the fake-quant file"
    if out=$("$PYTHON3" "$S/tests/int_check.py" "$TMP/${name}_int.onnx" 2>&1); then
        ok "$name: $out"
    else
        bad "$name: integer-only check"; echo "$out"
    fi
    input "$TMP/${name}_int.onnx" "$TMP/${name}_x.pb"
    if "$PYTHON3" "$S/tests/int_layers.py" --input "$TMP/${name}_x.pb" "$TMP/${name}_int.onnx" \
        8 "$TMP/${name}_ref" >"$TMP/$name.log" 2>&1 &&
        "$RUN_MODEL" "$TMP/${name}_ref/model.onnx" "$TMP/${name}_ref" 1 >>"$TMP/$name.log" 2>&1
    then
        ok "$name: ONNX Runtime's integers equal qatconv's at every layer"
    else
        bad "$name: per-layer integers"; tail -20 "$TMP/$name.log"
    fi
}

int_layers fp16
if grep -q 'Cast' "$TMP/fp16_fake.onnx"; then
    ok "fp16: the fake-quant file casts the float16 input"
else
    bad "fp16: no Cast in the fake-quant file (the case this test is for)"
fi
int_layers conv1d

recipe "$TMP/mix.onnx" 5
if "$QATCONV" "$TMP/mix.onnx" -r "$TMP/mix.onnx.ini" -o "$TMP/mix_fake.onnx" --format fake \
    --epochs 1 --batch 8 --threads 1 --quiet >"$TMP/mix.log" 2>&1; then
    OUTFILE="$TMP/mix_int.onnx" expect_error 2 "a Reshape that mixes channels is refused" -- \
        "$QATCONV" "$TMP/mix_fake.onnx" --format int -o "$TMP/mix_int.onnx" --threads 1
    grep -q "mixing_reshape" "$TMP/err" || bad "mix: the error line does not name the node"
else
    bad "mix: fake export"; cat "$TMP/mix.log"
fi
finish
