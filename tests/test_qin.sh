#!/bin/sh
# test_qin.sh - layer-input quantizers (QIn=SAT|LSQ on a Conv/ConvTranspose/Gemm/MatMul):
# - recipe errors, one line naming the recipe file and line: QIn on a node that is not a
#   layer, QIn on a layer whose input 0 is a constant (no data input), QIn.Signed=1 with
#   QIn=SAT, an unknown QIn value;
# - the LeNet-BN fixture, LSQ W4A4 with 8-bit first and last layers and an unsigned 8-bit
#   QIn on its first Conv (the input quantizer of the model), trained briefly: in the fake
#   export every Conv/Gemm data input is the output of a DequantizeLinear (through
#   MaxPool/Flatten), the input QuantizeLinear reads the graph input itself and no
#   Identity is left; ONNX Runtime predicts what qatconv's evaluation of the export
#   predicts (tests/ort_eval.py, at most 10 of 10,000 images may differ); the int export
#   equals ONNX Runtime at every integer tensor on 200 images (tests/int_layers.py +
#   tests/run_model), has no float op between its input quantizer and the output
#   (tests/int_check.py), and its input QuantizeLinear has the trained scale (not 1/255);
# - the same with a signed QIn (QIn.Signed=1) on pixels normalized to [-1, 1]: the fake
#   export's input quantizer is int8 with zero point 0, the int export's a uint8
#   QuantizeLinear with zero point 128 and the trained scale (int8 q + 128), exact at
#   every layer on 200 normalized images; ONNX Runtime agrees with qatconv on the
#   normalized test set;
# - --recipe-template on the MLP fixture (its first Gemm reads the graph input through a
#   Reshape) gives that Gemm an unsigned 8-bit QIn; trained with the template, the int
#   export keeps the Reshape float before the trained input quantizer and is exact.
# Under QC_TEST_SCALE=small (tests/lib.sh) every case and check runs on the first 2,000
# test images (at most 2 of them may differ where 10 of 10,000 may), the int exports on
# 100 images.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
DATA=/usr/share/datasets/fashion-mnist
RUN_MODEL=${top_builddir:-.}/tests/run_model
NIMG=$(scaled 200 100)
if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "SKIP: onnx, onnxruntime or numpy missing"; exit 77
fi
if [ ! -d "$DATA" ]; then
    echo "SKIP: $DATA missing"; exit 77
fi

# ---- recipe errors: one line naming file:line ----
{ fashion_sections 64; printf '[/Relu]\nQIn=LSQ\n'; } > "$TMP/relu.ini"
expect_error 2 "QIn on a Relu" -- \
    "$QATCONV" "$M" -r "$TMP/relu.ini" -o "$TMP/relu.onnx" --epochs 1 --limit 128
grep -q 'relu.ini:15: .*QIn on Relu' "$TMP/err" ||
    bad "the Relu error does not name relu.ini:15: $(cat "$TMP/err")"
{ fashion_sections 64; printf '[/conv1/Conv]\nQIn=SAT\nQIn.Signed=1\n'; } > "$TMP/sat.ini"
expect_error 2 "QIn.Signed=1 with QIn=SAT" -- \
    "$QATCONV" "$M" -r "$TMP/sat.ini" -o "$TMP/sat.onnx" --epochs 1 --limit 128
grep -q 'sat.ini:16: .*QIn.Signed=1 with QIn=SAT' "$TMP/err" ||
    bad "the SAT error does not name sat.ini:16: $(cat "$TMP/err")"
{ fashion_sections 64; printf '[/conv1/Conv]\nQIn=PACT\n'; } > "$TMP/bad.ini"
expect_error 2 "QIn=PACT" -- \
    "$QATCONV" "$M" -r "$TMP/bad.ini" -o "$TMP/bad.onnx" --epochs 1 --limit 128
grep -q 'bad.ini:15: ' "$TMP/err" || bad "the QIn=PACT error does not name bad.ini:15"
# a MatMul of two constants added to the logits: its input 0 is no data input
if "$PYTHON3" - "$M" "$TMP/const.onnx" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, numpy_helper
m = onnx.load(sys.argv[1])
g = m.graph
out = g.output[0].name
for n in g.node:
    for i, o in enumerate(n.output):
        if o == out:
            n.output[i] = "logits"
g.initializer.extend([numpy_helper.from_array(np.ones((1, 4), np.float32), "c"),
                      numpy_helper.from_array(np.zeros((4, 10), np.float32), "e")])
g.node.extend([helper.make_node("MatMul", ["c", "e"], ["k"], name="mm"),
               helper.make_node("Add", ["logits", "k"], [out], name="add")])
onnx.save(m, sys.argv[2])
PY
then
    { fashion_sections 64; printf '[mm]\nQIn=LSQ\n'; } > "$TMP/const.ini"
    expect_error 2 "QIn on a MatMul of constants" -- \
        "$QATCONV" "$TMP/const.onnx" -r "$TMP/const.ini" -o "$TMP/c.onnx" --epochs 1 --limit 128
    grep -q "const.ini:15: .*QIn on MatMul 'mm', which has no data input" "$TMP/err" ||
        bad "the constant-input error does not name const.ini:15: $(cat "$TMP/err")"
else
    bad "could not write the MatMul-of-constants model"
fi

# input_scale FAKE INT SIGNED: the int export's input QuantizeLinear (on the graph input
# or the layout ops after it) has the fake export's trained scale, not 1/255, and a uint8
# zero point of 128 for a signed quantizer, 0 else
input_scale() {
    "$PYTHON3" - "$@" <<'PY'
import sys, onnx
from onnx import numpy_helper
def qin(path):
    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    fromin = {m.graph.input[0].name}
    for n in m.graph.node:
        if n.op_type in ("Reshape", "Flatten", "Transpose") and n.input[0] in fromin:
            fromin.add(n.output[0])
    q = [n for n in m.graph.node
         if n.op_type == "QuantizeLinear" and n.input[0] in fromin]
    assert len(q) == 1, "%s: %d input quantizers" % (path, len(q))
    return float(inits[q[0].input[1]]), inits[q[0].input[2]]
s_fake, z_fake = qin(sys.argv[1])
s_int, z_int = qin(sys.argv[2])
assert s_int == s_fake, "int input scale %g, trained %g" % (s_int, s_fake)
assert abs(s_int - 1 / 255) > 1e-6, "the int export's input scale is 1/255"
want = 128 if sys.argv[3] == "1" else 0
assert z_int.dtype.name == "uint8" and int(z_int) == want, "int zero point %r" % z_int
print("the int export quantizes the input with the trained scale %.6g, uint8 zero point %d"
      % (s_int, want))
PY
}

# ---- training with a QIn input quantizer ----
# recipe NAME SIGNED: LSQ W4A4, 8-bit first and last layers, QIn 8-bit on the first Conv;
# SIGNED=1: pixels normalized to [-1, 1] and a signed QIn
recipe() {
    if [ "$2" = 1 ]; then signed=QIn.Signed=1; else signed=; fi
    # shellcheck disable=SC2086
    lsq_recipe 0.01 /conv1/Conv /fc2/Gemm QIn=LSQ QIn.Range=255 \
        QActSolver.LearningRate=0.001 $signed |
        if [ "$2" = 1 ]; then
            sed 's/^FirstValue=255.0$/&\nSecondOperator=Minus\nSecondValue=1.0/'
        else cat; fi
}

# the first $NIMG test images normalized as the signed recipe does (x/127.5 - 1), as
# tests/int_layers.py --input reads them
"$PYTHON3" - "$DATA" "$TMP/norm.pb" "$NIMG" <<'PY' || bad "could not write the normalized images"
import gzip, os, sys, numpy as np
from onnx import numpy_helper
d = sys.argv[1]
for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
    p = os.path.join(d, name)
    if os.path.exists(p):
        raw = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
        break
x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)[:int(sys.argv[3])]
x = x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
open(sys.argv[2], "wb").write(numpy_helper.from_array(x, "input").SerializeToString())
PY

for sgn in 0 1; do
    name=qin$sgn
    recipe $name $sgn > "$TMP/$name.ini"
    small_test_set "$TMP/$name.ini"
    # [0,1] -> [-1,1]: x/255 * 2 - 1 written as the recipe's RangeAffine
    [ $sgn = 1 ] && sed -i 's/^FirstValue=255.0$/FirstValue=127.5/' "$TMP/$name.ini"
    if ! "$QATCONV" "$M" -r "$TMP/$name.ini" -o "$TMP/$name.onnx" --epochs 1 --limit 2048 \
            --quiet > "$TMP/$name.train" 2>&1; then
        bad "$name: training failed: $(cat "$TMP/$name.train")"; continue
    fi
    ok "$name: QIn on /conv1/Conv: $(grep 'test top-1' "$TMP/$name.train")"
    # every Conv/Gemm data input is a DequantizeLinear output; the first one's
    # QuantizeLinear reads the graph input (int8 for the signed QIn); no Identity left
    if out=$("$PYTHON3" - "$TMP/$name.onnx" "$sgn" <<'PY' 2>&1
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
sgn = sys.argv[2] == "1"
inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
prod = {o: n for n in m.graph.node for o in n.output}
assert not [n.name for n in m.graph.node if n.op_type == "Identity"], "an Identity is left"
n_layers = 0
for n in m.graph.node:
    if n.op_type not in ("Conv", "Gemm", "MatMul"):
        continue
    v = n.input[0]
    while v in prod and prod[v].op_type in ("MaxPool", "Flatten"):
        v = prod[v].input[0]
    d = prod.get(v)
    assert d is not None and d.op_type == "DequantizeLinear", \
        "%s reads %s" % (n.name, d.op_type if d else v)
    n_layers += 1
    if n.name == "/conv1/Conv":
        q = prod[d.input[0]]
        assert q.op_type == "QuantizeLinear" and q.input[0] == m.graph.input[0].name, \
            "the first Conv's quantizer reads %s" % q.input[0]
        z = inits[q.input[2]]
        assert z.dtype.name == ("int8" if sgn else "uint8") and z == 0, "zero point %r" % z
assert n_layers == 4, "%d layers" % n_layers
print("the 4 layers read a DequantizeLinear, the first one's quantizes the graph input")
PY
    ); then ok "$name: $out"; else bad "$name: $out"; fi
    # ONNX Runtime agrees with qatconv image by image
    "$QATCONV" eval "$TMP/$name.onnx" -r "$TMP/$name.ini" --quiet \
        --predictions "$TMP/$name.qc" > "$TMP/$name.eval" 2>&1 ||
        bad "$name: eval: $(cat "$TMP/$name.eval")"
    if [ $sgn = 0 ]; then
        if "$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$TMP/$name.onnx" --data "$DATA" \
                --compare "$TMP/$name.qc" --max-differ "$QC_DIFFER_10" --limit "$QC_N_TEST" \
                --no-optimize \
                --run-model "$RUN_MODEL" > "$TMP/$name.agree" 2>&1; then
            ok "$name: ONNX Runtime per image: $(grep '^agree=' "$TMP/$name.agree")"
        else
            bad "$name: ONNX Runtime per image: $(cat "$TMP/$name.agree")"
        fi
    elif out=$("$PYTHON3" - "$TMP/$name.onnx" "$DATA" "$TMP/$name.qc" "$QC_N_TEST" \
            "$QC_DIFFER_10" <<'PY' 2>&1
import gzip, os, sys, numpy as np, onnxruntime as ort
d = sys.argv[2]
for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
    p = os.path.join(d, name)
    if os.path.exists(p):
        raw = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
        break
x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)[:int(sys.argv[4])]
x = x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
pred = np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i:i + 500]})[0].argmax(1)
                       for i in range(0, len(x), 500)])
qc = np.loadtxt(sys.argv[3], dtype=np.int64)
assert qc.shape == pred.shape, "%s predictions, %s images" % (qc.shape, pred.shape)
differ = int((qc != pred).sum())
assert differ <= int(sys.argv[5]), "%d of %d images differ" % (differ, len(pred))
print("agree=%d differ=%d on the normalized test set" % (len(pred) - differ, differ))
PY
    ); then ok "$name: ONNX Runtime per image: $out"
    else bad "$name: ONNX Runtime per image: $out"; fi
    # the int export: exact at every integer tensor, the trained input scale
    if [ $sgn = 1 ]; then inp="--input $TMP/norm.pb"; else inp=; fi
    # shellcheck disable=SC2086
    int_exact "$TMP/$name.onnx" "$name" "$NIMG" $inp
    if out=$(input_scale "$TMP/$name.onnx" "$TMP/${name}_int.onnx" "$sgn" 2>&1
    ); then ok "$name: $out"; else bad "$name: $out"; fi
done

# --recipe-template on the MLP (its first Gemm reads the graph input through Reshape):
# that layer gets QIn=LSQ, 8-bit unsigned ([0,1] pixels); trained with it, the int
# export keeps the Reshape float before the trained input quantizer and is exact
MLP=$top_srcdir/testdata/fashion_mlp.onnx
"$QATCONV" --recipe-template "$MLP" > "$TMP/mlp.ini" 2> "$TMP/mlp.err" ||
    bad "--recipe-template: $(cat "$TMP/mlp.err")"
small_test_set "$TMP/mlp.ini"
if awk '$0 == "[/fc1/Gemm] onnx:Fc_def" { f = 1; next } /^\[/ { f = 0 } f' "$TMP/mlp.ini" |
        tr '\n' ' ' | grep -q 'QIn=LSQ QIn.Range=255 QActSolver' &&
    grep -q '^; 1 layer-input quantizers (QIn)' "$TMP/mlp.ini"; then
    ok "--recipe-template: the MLP's first Gemm quantizes its input (unsigned 8-bit QIn)"
else
    bad "--recipe-template: no QIn section for /fc1/Gemm: $(cat "$TMP/mlp.ini")"
fi
if "$QATCONV" "$MLP" -r "$TMP/mlp.ini" -o "$TMP/mlp.onnx" --epochs 1 --limit 2048 --quiet \
        > "$TMP/mlp.train" 2>&1 &&
    "$QATCONV" "$TMP/mlp.onnx" --format int -o "$TMP/mlp_int.onnx" > "$TMP/mlp.int" 2>&1 &&
    "$PYTHON3" "$top_srcdir/tests/int_layers.py" "$TMP/mlp_int.onnx" "$NIMG" "$TMP/mlp_L" \
        > "$TMP/mlp.layers" 2>&1 &&
    "$RUN_MODEL" "$TMP/mlp_L/model.onnx" "$TMP/mlp_L" 2 > "$TMP/mlp.run" 2>&1; then
    ok "mlp, template recipe: $(grep 'test top-1' "$TMP/mlp.train"); int export: \
$(cat "$TMP/mlp.layers"); qatconv computes the same integers"
else
    bad "mlp: $(cat "$TMP/mlp.train" "$TMP/mlp.int" "$TMP/mlp.layers" 2>/dev/null)"
fi
if out=$(input_scale "$TMP/mlp.onnx" "$TMP/mlp_int.onnx" 0 2>&1); then ok "mlp: $out"
else bad "mlp: $out"; fi
finish
