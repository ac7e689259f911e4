#!/bin/sh
# test_resnet18.sh - scripts/make-resnet18 (the benchmark's model writer, standard library
# only) against independent oracles: onnx.checker (full_check), the parameter counts of
# torchvision's resnet18 computed by hand (11,689,512 for 1000 classes and the ImageNet stem),
# torchvision's state_dict names and shapes, the initial values it promises, ONNX Runtime
# running the model, qatconv info loading it, qatconv's forward pass against ONNX Runtime
# (tests/run_model), seeds and a usage error.  Every oracle is required: without numpy, onnx,
# onnxruntime or tests/run_model the test exits 77 (skipped) naming what is missing, and never
# passes with a check left out (CI counts a skipped oracle test as a failure).
. "${top_srcdir:-.}/tests/lib.sh"
GEN=$top_srcdir/scripts/make-resnet18
RUN_MODEL=${top_builddir:-.}/tests/run_model
if ! "$PYTHON3" -c 'import numpy, onnx.checker, onnx.numpy_helper, onnxruntime' 2>"$TMP/imp"; then
    echo "SKIP: the oracles numpy, onnx and onnxruntime are not all importable by $PYTHON3:" \
        "$(tail -n 1 "$TMP/imp")"
    exit 77
fi
if [ ! -x "$RUN_MODEL" ]; then
    echo "SKIP: $RUN_MODEL is not built (make check builds it)"
    exit 77
fi

gen() {
    out=$1; shift
    if "$PYTHON3" "$GEN" --quiet -o "$out" "$@" 2>"$TMP/gen.err"; then
        ok "make-resnet18 $* -o $(basename "$out")"
    else
        bad "make-resnet18 $*: $(cat "$TMP/gen.err")"
    fi
}
gen "$TMP/c32.onnx" --size 32
gen "$TMP/i224.onnx" --size 224 --classes 1000
gen "$TMP/i64.onnx" --size 64 --stem imagenet --classes 7 --batch-dim 3 --seed 5
gen "$TMP/c32b.onnx" --size 32
gen "$TMP/c32s2.onnx" --size 32 --seed 2

# check.py MODEL STEM SIZE CLASSES BATCH PARAMS
cat > "$TMP/check.py" <<'EOF'
import math
import sys

import numpy as np
import onnx
from onnx import numpy_helper

path, stem, size, classes, batch, want = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
m = onnx.load(path)
onnx.checker.check_model(m, full_check=True)
assert m.ir_version == 7 and [(o.domain, o.version) for o in m.opset_import] == [("", 13)]
init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}

# torchvision resnet18 state_dict names and shapes, written out by hand
want_shapes = {}
def bn(p, c):
    for s in ("weight", "bias", "running_mean", "running_var"):
        want_shapes[p + "." + s] = (c,)
k = 3 if stem == "cifar" else 7
want_shapes["conv1.weight"] = (64, 3, k, k)
bn("bn1", 64)
cin = 64
for layer, c in enumerate((64, 128, 256, 512), 1):
    for b in range(2):
        p = "layer%d.%d." % (layer, b)
        want_shapes[p + "conv1.weight"] = (c, cin, 3, 3)
        bn(p + "bn1", c)
        want_shapes[p + "conv2.weight"] = (c, c, 3, 3)
        bn(p + "bn2", c)
        if b == 0 and layer > 1:
            want_shapes[p + "downsample.0.weight"] = (c, cin, 1, 1)
            bn(p + "downsample.1", c)
        cin = c
want_shapes["fc.weight"] = (classes, 512)
want_shapes["fc.bias"] = (classes,)
got_shapes = {n: a.shape for n, a in init.items()}
assert got_shapes == want_shapes, set(got_shapes.items()) ^ set(want_shapes.items())
n = sum(a.size for name, a in init.items() if "running" not in name)
assert n == want, "parameters %d, expected %d" % (n, want)

# initial values: BN identity, He-uniform conv weights, torch-Linear fc
for name, a in init.items():
    if name.endswith("running_var") or (name.endswith(".weight") and a.ndim == 1):
        assert (a == 1).all(), name
    elif name.endswith("running_mean") or (name.endswith(".bias") and "bn" in name) \
            or name.endswith("downsample.1.bias"):
        assert (a == 0).all(), name
    elif a.ndim == 4:
        fan = a.shape[1] * a.shape[2] * a.shape[3]
        b = math.sqrt(6.0 / fan)
        assert np.abs(a).max() <= b * (1 + 1e-6), name
        if a.size > 10000:
            assert abs(a.std() / math.sqrt(2.0 / fan) - 1) < 0.03, (name, a.std())
            assert abs(a.mean()) < 0.05 * a.std(), name
    elif name.startswith("fc."):
        assert np.abs(a).max() <= 1 / math.sqrt(512) * (1 + 1e-6), name

names = {nd.name for nd in m.graph.node}
for nm in ("conv1", "bn1", "relu", "layer1_0_conv1", "layer1_0_add", "layer4_1_relu2",
           "layer2_0_downsample_conv", "layer2_0_downsample_bn", "avgpool", "flatten", "fc"):
    assert nm in names, nm
assert ("maxpool" in names) == (stem == "imagenet")
assert "layer1_0_downsample_conv" not in names
ops = [nd.op_type for nd in m.graph.node]
assert ops.count("Conv") == 20 and ops.count("Add") == 8 and ops.count("Relu") == 17, ops
dim0 = m.graph.input[0].type.tensor_type.shape.dim[0]
assert (dim0.dim_value == batch) if batch else (dim0.dim_param != ""), dim0

import onnxruntime as ort
sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
nb = batch or 2
x = np.random.default_rng(0).random((nb, 3, size, size), dtype=np.float32)
y = sess.run(None, {"input": x})[0]
assert y.shape == (nb, classes) and np.isfinite(y).all() and np.abs(y).max() > 0, y.shape
print("ok: %d parameters, ORT output %s" % (n, y.shape))
EOF
check() {
    desc=$1; shift
    if "$PYTHON3" "$TMP/check.py" "$@" >"$TMP/check.out" 2>&1; then
        ok "$desc: $(tail -n 1 "$TMP/check.out")"
    else
        bad "$desc: $(tail -n 5 "$TMP/check.out")"
    fi
}
# torchvision resnet18 with 1000 classes: 11,689,512 parameters; the CIFAR stem's 3x3 conv
# has 1,728 weights instead of 9,408, and the fc 512K + K
check "ImageNet stem, 224, 1000 classes" "$TMP/i224.onnx" imagenet 224 1000 0 11689512
check "CIFAR stem, 32, 10 classes" "$TMP/c32.onnx" cifar 32 10 0 \
    $((11689512 - 9408 + 1728 - 513000 + 5130))
check "ImageNet stem, 64, 7 classes, batch 3" "$TMP/i64.onnx" imagenet 64 7 3 \
    $((11689512 - 513000 + 3591))

if cmp -s "$TMP/c32.onnx" "$TMP/c32b.onnx"; then ok "same seed, same bytes"
else bad "the same seed gave different files"; fi
if cmp -s "$TMP/c32.onnx" "$TMP/c32s2.onnx"; then bad "seeds 1 and 2 gave the same file"
else ok "another seed, other weights"; fi

# qatconv loads it; its count includes the 4,800 BN channels' running mean and variance
if "$QATCONV" info "$TMP/c32.onnx" >"$TMP/info" 2>&1 &&
    grep -q "^68 nodes, $((11173962 + 9600)) parameters" "$TMP/info" &&
    grep -q "layer2_0_downsample_conv" "$TMP/info"; then
    ok "qatconv info: $(tail -n 1 "$TMP/info")"
else
    bad "qatconv info: $(tail -n 3 "$TMP/info")"
fi

# qatconv's forward pass against ONNX Runtime on a random batch of 2
mkdir -p "$TMP/ref"
if ! "$PYTHON3" - "$TMP/c32.onnx" "$TMP/ref" >"$TMP/ref.out" 2>&1 <<'EOF'
import sys
import numpy as np
import onnxruntime as ort
from onnx import numpy_helper
x = np.random.default_rng(1).random((2, 3, 32, 32), dtype=np.float32)
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
y = sess.run(None, {"input": x})[0]
for name, a, v in (("input_0", x, "input"), ("output_0", y, "logits")):
    with open("%s/%s.pb" % (sys.argv[2], name), "wb") as f:
        f.write(numpy_helper.from_array(a, v).SerializeToString())
EOF
then
    bad "ONNX Runtime reference of the forward pass: $(tail -n 3 "$TMP/ref.out")"
elif "$RUN_MODEL" "$TMP/c32.onnx" "$TMP/ref" >"$TMP/run" 2>&1; then
    ok "qatconv forward = ORT: $(cat "$TMP/run")"
else
    bad "qatconv forward differs from ORT: $(cat "$TMP/run")"
fi

if "$PYTHON3" "$GEN" --size 0 -o "$TMP/bad.onnx" >/dev/null 2>"$TMP/err"; then
    bad "--size 0 accepted"
elif [ ! -e "$TMP/bad.onnx" ] && grep -q -- "--size must be" "$TMP/err"; then
    ok "--size 0: $(tail -n 1 "$TMP/err")"
else
    bad "--size 0: $(cat "$TMP/err")"
fi
finish
