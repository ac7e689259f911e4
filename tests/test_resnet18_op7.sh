#!/bin/sh
# test_resnet18_op7.sh - the ResNet-18 path of the seed's tutorial on a zoo-style model:
# scripts/make-resnet18 --opset 7 writes ResNet-18 v1 as the ONNX zoo's resnet18-v1-7 file is
# written (IR 3, opset 7, initializers also graph inputs, BatchNormalization-7 spatial=1, fixed
# batch 1, the MXNet names; here 64x64 with the ImageNet stem and 10 classes).  Checked:
# onnx.checker and the zoo layout, ONNX Runtime = qatconv's forward pass (tests/run_model);
# then the seed's two SAT stages with recipes/resnet18v1-sat-w4a4.ini, its data sections
# replaced by a small synthetic set: stage 1 (the clamp stage: QWeight.ApplyQuantization=0 in
# both default sections, no [onnx:Relu_def]) writes a float model, stage 2 (the recipe as
# shipped: W4A4, first conv and dense at 8 bits) trains on it and writes the fake-quant
# export, where ONNX Runtime must predict what qatconv predicts; `--format int` of that export
# must be integer-only (tests/int_check.py) with ONNX Runtime's integers equal to qatconv's at
# every layer (tests/int_layers.py + tests/run_model).  Skips (77) only when numpy, onnx,
# onnxruntime or tests/run_model is missing.
. "${top_srcdir:-.}/tests/lib.sh"
GEN=$top_srcdir/scripts/make-resnet18
RUN_MODEL=${top_builddir:-.}/tests/run_model
if ! "$PYTHON3" -c 'import numpy, onnx.checker, onnxruntime' 2>"$TMP/imp"; then
    echo "SKIP: the oracles numpy, onnx and onnxruntime are not all importable by $PYTHON3:" \
        "$(tail -n 1 "$TMP/imp")"
    exit 77
fi
if [ ! -x "$RUN_MODEL" ]; then
    echo "SKIP: $RUN_MODEL is not built (make check builds it)"
    exit 77
fi
M=$TMP/r18v1.onnx
if "$PYTHON3" "$GEN" --quiet --opset 7 --size 64 --stem imagenet --classes 10 --batch-dim 1 \
    -o "$M" 2>"$TMP/gen.err"; then
    ok "make-resnet18 --opset 7 --size 64 --stem imagenet --batch-dim 1"
else
    bad "make-resnet18 --opset 7: $(cat "$TMP/gen.err")"
fi

# the zoo layout, and ORT's outputs on 8 images (pixels k/255) as the reference
mkdir -p "$TMP/fwd"
if "$PYTHON3" - "$M" "$TMP/fwd" >"$TMP/layout" 2>&1 <<'EOF'
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
path, out = sys.argv[1:3]
m = onnx.load(path)
onnx.checker.check_model(m, full_check=True)
assert m.ir_version == 3 and [(o.domain, o.version) for o in m.opset_import] == [("", 7)]
inits = {t.name for t in m.graph.initializer}
inputs = [i.name for i in m.graph.input]
assert inputs[0] == "data" and set(inputs[1:]) == inits, "initializers not all graph inputs"
bns = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
assert len(bns) == 20 and all(any(a.name == "spatial" and a.i == 1 for a in n.attribute)
                              for n in bns)
for name in ("resnetv15_conv0_fwd", "resnetv15_pool0_fwd", "resnetv15_stage1_relu0_fwd",
             "resnetv15_stage4_conv2_fwd", "resnetv15_pool1_fwd", "resnetv15_dense0_fwd"):
    assert name in {n.name for n in m.graph.node}, name
dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
assert dims == [1, 3, 64, 64], dims
x = (np.random.default_rng(7).integers(0, 256, (8, 3, 64, 64)) / 255.0).astype(np.float32)
so = ort.SessionOptions()
so.log_severity_level = 3
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
y = np.concatenate([s.run(None, {"data": x[i:i + 1]})[0] for i in range(len(x))])
with open(out + "/input_0.pb", "wb") as f:
    f.write(numpy_helper.from_array(x).SerializeToString())
with open(out + "/output_0.pb", "wb") as f:
    f.write(numpy_helper.from_array(y).SerializeToString())
print("IR 3, opset 7, %d initializers as graph inputs, 20 BatchNormalization spatial=1, ORT %s"
      % (len(inits), y.shape))
EOF
then ok "zoo layout: $(tail -n 1 "$TMP/layout")"
else bad "zoo layout: $(tail -n 3 "$TMP/layout")"; fi

if "$RUN_MODEL" "$M" "$TMP/fwd" >"$TMP/run" 2>&1; then
    ok "qatconv forward = ORT on 8 images: $(cat "$TMP/run")"
else
    bad "qatconv forward vs ORT: $(tail -n 2 "$TMP/run")"
fi

# the seed's recipe with a synthetic 64x64 data set; stage 1 is its clamp stage
"$PYTHON3" - "$top_srcdir/recipes/resnet18v1-sat-w4a4.ini" "$TMP" <<'EOF'
import re, sys
src, out = sys.argv[1:3]
text = open(src).read()
sections = re.split(r"(?m)^(?=\[)", text)
data = """[database]
Type=Synthetic
NbClasses=10
NbLearn=16
NbTest=8

[sp]
SizeX=64
SizeY=64
NbChannels=3
BatchSize=4

[sp.Transformation-1]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0

"""
keep = [s for s in sections if not re.match(r"\[(database|sp)[\].]", s)]
stage2 = keep[0] + data + "".join(keep[1:])
with open(out + "/stage2.ini", "w") as f:
    f.write(stage2)
stage1 = [s for s in keep[1:] if not s.startswith("[onnx:Relu_def]")]
stage1 = [re.sub(r"(?m)^(\[onnx:(Conv|Fc)_def\]\n)", r"\1QWeight.ApplyQuantization=0\n", s)
          for s in stage1]
with open(out + "/stage1.ini", "w") as f:
    f.write(keep[0] + data + "".join(stage1))
EOF
grep -q '^QWeight.ApplyQuantization=0' "$TMP/stage1.ini" && grep -q '^\[onnx:Relu_def\]' \
    "$TMP/stage2.ini" && ! grep -q '^\[onnx:Relu_def\]' "$TMP/stage1.ini" &&
    ok "stage recipes from recipes/resnet18v1-sat-w4a4.ini" || bad "stage recipes"

TRAIN="--epochs 1 --batch 4 --threads 2 --quiet"
if "$QATCONV" "$M" -r "$TMP/stage1.ini" -o "$TMP/clamp.onnx" --format float $TRAIN \
    >"$TMP/s1.out" 2>&1; then
    ok "stage 1 (clamp): $(tail -n 1 "$TMP/s1.out")"
else
    bad "stage 1 (clamp): $(grep error: "$TMP/s1.out" || tail -n 1 "$TMP/s1.out")"
fi
if "$QATCONV" "$TMP/clamp.onnx" -r "$TMP/stage2.ini" -o "$TMP/w4a4.onnx" --format fake $TRAIN \
    >"$TMP/s2.out" 2>&1; then
    ok "stage 2 (SAT W4A4): $(tail -n 1 "$TMP/s2.out")"
else
    bad "stage 2 (SAT W4A4): $(grep error: "$TMP/s2.out" || tail -n 1 "$TMP/s2.out")"
fi

# fake export: ORT predicts what qatconv predicts on the 8 images
mkdir -p "$TMP/fake"
cp "$TMP/fwd/input_0.pb" "$TMP/fake/"
if [ -f "$TMP/w4a4.onnx" ] && "$PYTHON3" - "$TMP/w4a4.onnx" "$TMP/fake" "$RUN_MODEL" \
    >"$TMP/fake.out" 2>&1 <<'EOF'
import os, subprocess, sys
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, numpy_helper
path, d, run_model = sys.argv[1:4]
t = TensorProto()
t.ParseFromString(open(d + "/input_0.pb", "rb").read())
x = numpy_helper.to_array(t)
s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
b = s.get_inputs()[0].shape[0]
b = b if isinstance(b, int) else len(x)
y = np.concatenate([s.run(None, {name: x[i:i + b]})[0] for i in range(0, len(x), b)])
with open(d + "/output_0.pb", "wb") as f:
    f.write(numpy_helper.from_array(y).SerializeToString())
r = subprocess.run([run_model, path, d], env=dict(os.environ, QC_RUN_MODEL_SAVE=d))
assert r.returncode in (0, 1), "run_model exit %d" % r.returncode
got = np.fromfile(d + "/got_0.raw", dtype=np.float32).reshape(y.shape)
a, g = y.argmax(1), got.argmax(1)
assert (a == g).all(), "%d of %d predictions differ" % ((a != g).sum(), len(a))
print("ORT and qatconv predict the same class on %d images" % len(a))
EOF
then ok "fake export: $(tail -n 1 "$TMP/fake.out")"
elif [ -f "$TMP/w4a4.onnx" ]; then bad "fake export: $(tail -n 2 "$TMP/fake.out")"
else bad "fake export: none (stage 2 failed)"; fi

# int export of the fake-quant model: integer-only, ORT's integers = qatconv's at every layer
if [ ! -f "$TMP/w4a4.onnx" ]; then
    bad "int export: no fake-quant model (stage 2 failed)"
elif ! "$QATCONV" "$TMP/w4a4.onnx" --format int -o "$TMP/int.onnx" --threads 2 \
    >"$TMP/int.out" 2>&1; then
    bad "int export: $(grep error: "$TMP/int.out" || tail -n 1 "$TMP/int.out")"
else
    ok "int export"
    if "$PYTHON3" "$top_srcdir/tests/int_check.py" "$TMP/int.onnx" >"$TMP/ic.out" 2>&1; then
        ok "integer-only: $(tail -n 1 "$TMP/ic.out")"
    else
        bad "integer-only: $(tail -n 2 "$TMP/ic.out")"
    fi
    if "$PYTHON3" "$top_srcdir/tests/int_layers.py" --input "$TMP/fwd/input_0.pb" \
        "$TMP/int.onnx" 4 "$TMP/il" >"$TMP/il.out" 2>&1 &&
        "$RUN_MODEL" "$TMP/il/model.onnx" "$TMP/il" >"$TMP/ilrun" 2>&1; then
        ok "ORT integers = qatconv's at every layer: $(tail -n 1 "$TMP/il.out")"
    else
        bad "per-layer integers: $(tail -n 2 "$TMP/il.out") $(grep -v ' 0 differ' \
            "$TMP/ilrun" 2>/dev/null | head -n 3)"
    fi
fi
finish
