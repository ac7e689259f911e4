#!/bin/sh
# test_mobilenet.sh - issue 15's acceptance on two MobileNet-v2 models with true linear
# bottlenecks (no activation after the project Conv/BatchNorm or the residual Add):
# - torchvision's mobilenet_v2 (random weights from its own seeded initialisation, BatchNorm
#   folded by the exporter, 32x32 input, exported now by scripts/gen_torchvision.py with
#   PyTorch) on Type=Synthetic data;
# - testdata/fashion_mbv2_linear.onnx (scripts/train_fashion.py) on Fashion-MNIST.
# Each is quantized W4A4 with the recipe `qatconv --recipe-template` writes for it (SAT 4-bit
# weights and ReLU6 activations, signed 4-bit LSQ on the values a layer reads that can be
# negative), its first Conv and last Gemm at 8 bits (the template's commented per-node
# sections enabled, QuantMode=Symmetric so the levels fit int8), briefly trained:
# - the template puts a signed quantizer on every such value (17 in torchvision's model:
#   the 7 blocks' first project Convs and the 10 residual Adds; 4 in the fixture);
# - (a) every Conv/Gemm data input of the fake export comes from a DequantizeLinear (through
#   pooling/layout ops), the first layer's included (it reads the graph input's quantizer,
#   which the template's recipe enables with QIn), and the ones reading signed values read
#   int8 levels (tests/dq_inputs.py prints the offenders);
# - (b) the int export has no float op between the input quantizer and the output
#   (tests/int_check.py), and every integer tensor equals ONNX Runtime's on 200 images
#   (tests/int_layers.py + tests/run_model): Fashion-MNIST test images for the fixture,
#   uniform random pixels for torchvision's model.
. "${top_srcdir:-.}/tests/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
RUN_MODEL=${top_builddir:-.}/tests/run_model
TORCH_PY=${TORCH_PYTHON:-/usr/bin/python3}
if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "SKIP: onnx, onnxruntime or numpy missing"; exit 77
fi
if ! "$TORCH_PY" -c "import torch, torchvision" 2>/dev/null; then
    echo "SKIP: $TORCH_PY has no torch/torchvision (torchvision's mobilenet_v2 is exported now)"
    exit 77
fi
NIMG=$(scaled 200 50)

# template NAME MODEL FIRST LAST: $TMP/NAME.ini, MODEL's --recipe-template recipe with
# 8-bit Symmetric weights in the layers FIRST and LAST: their commented per-node sections
# enabled, or added to their active sections (a template that quantizes the first layer's
# input writes that layer's section above the commented ones)
template() {
    "$QATCONV" --recipe-template "$2" > "$TMP/$1.tpl" 2> "$TMP/$1.tpl.err" ||
        { bad "$1: --recipe-template: $(cat "$TMP/$1.tpl.err")"; return 1; }
    awk -v a="[$3]" -v b="[$4]" '
        { s = $0; sub(/^;/, "", s); split(s, w, " ") }
        /^\[/ && (w[1] == a || w[1] == b) {
            print; print "QWeight.Range=255"; print "QWeight.QuantMode=Symmetric"; n++; next }
        /^;\[/ && (w[1] == a || w[1] == b) { on = 1; print s; next }
        on && /^;QWeight.Range=/ { print s; print "QWeight.QuantMode=Symmetric"; on = 0; n++; next }
        { on = 0; print }
        END { exit n != 2 }' "$TMP/$1.tpl" > "$TMP/$1.ini" ||
        { bad "$1: the template has no section for $3 or $4"; return 1; }
}

# signed_sections NAME N: the template proposes N signed LSQ quantizers
signed_sections() {
    n=$(grep -c '^QAct.Signed=1' "$TMP/$1.ini")
    if [ "$n" = "$2" ] && grep -q "^; .* $2 signed activations" "$TMP/$1.ini"; then
        ok "$1: --recipe-template proposes $2 signed LSQ quantizers"
    else
        bad "$1: --recipe-template: $n signed quantizers, expected $2"
    fi
}

# qat_and_check NAME MODEL LIMIT NSIGNED [INPUT.pb]: trains NAME.ini for one epoch on
# LIMIT images, then checks (a) and (b)
qat_and_check() {
    name=$1
    if "$QATCONV" "$2" -r "$TMP/$name.ini" -o "$TMP/${name}_fake.onnx" --epochs 1 \
            --limit "$3" --no-eval --quiet > "$TMP/$name.train" 2>&1; then
        ok "$name: W4A4 (first/last 8-bit), 1 epoch on $3 images"
    else
        bad "$name: training: $(cat "$TMP/$name.train")"; return
    fi
    if out=$("$PYTHON3" "$top_srcdir/tests/dq_inputs.py" "$TMP/${name}_fake.onnx" \
            --expect-signed "$4" 2>&1); then
        ok "$name fake export: $out"
    else
        bad "$name fake export:"; echo "$out"
    fi
    if [ -n "${5:-}" ]; then set -- --input "$5"; else set --; fi
    int_exact "$TMP/${name}_fake.onnx" "$name" "$NIMG" "$@"
}

# torchvision's mobilenet_v2 on synthetic 32x32 RGB images (10 classes of the 1000 logits)
if "$TORCH_PY" "$top_srcdir/scripts/gen_torchvision.py" --out "$TMP" --size 32 \
        --only mobilenet_v2 > "$TMP/tv.gen" 2>&1 &&
    template tv "$TMP/tv_mobilenet_v2_op13.onnx" /features/features.0/features.0.0/Conv \
        /classifier/classifier.1/Gemm; then
    # Synthetic data instead of the template's Fashion-MNIST (and no gray->RGB, resize)
    sed -i -e '/^\[database\]$/,/^$/c\[database]\nType=Synthetic\nNbClasses=10\nNbLearn=2048\nNbTest=256\n' \
        -e '/^\[sp.Transformation-[12]\]$/,/^$/d' "$TMP/tv.ini"
    signed_sections tv 17
    "$PYTHON3" - "$TMP/tv_x.pb" "$NIMG" <<'PY'
import sys
import numpy as np
from onnx import numpy_helper
x = np.random.default_rng(15).integers(0, 256, (int(sys.argv[2]), 3, 32, 32))
with open(sys.argv[1], "wb") as f:
    f.write(numpy_helper.from_array((x / 255.0).astype(np.float32), "input").SerializeToString())
PY
    qat_and_check tv "$TMP/tv_mobilenet_v2_op13.onnx" "$(scaled 512 128)" 17 "$TMP/tv_x.pb"
else
    bad "torchvision mobilenet_v2: $(cat "$TMP/tv.gen")"
fi

# the Fashion-MNIST fixture with linear bottlenecks
if [ -d "$DATA" ]; then
    template lin "$top_srcdir/testdata/fashion_mbv2_linear.onnx" /stem/stem.0/Conv /fc/Gemm &&
        sed -i 's/^Validation=.*/Validation=0/' "$TMP/lin.ini" &&
        signed_sections lin 4 &&
        qat_and_check lin "$top_srcdir/testdata/fashion_mbv2_linear.onnx" \
            "$(scaled 2048 512)" 4
else
    bad "$DATA missing (the Fashion-MNIST fixture's data)"
fi
finish
