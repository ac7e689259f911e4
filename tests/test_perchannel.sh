#!/bin/sh
# test_perchannel.sh - per-channel weight quantizers (QWeight.PerChannel=1, LSQ and SAT):
# - LeNet-BN, LSQ W4A4 and SAT W4A4 per channel (short runs): the fake export passes
#   onnx.checker full_check at opset >= 13, every weight is an int8 initializer behind a
#   DequantizeLinear with one scale per output channel along axis 0, and ONNX Runtime
#   predicts what qatconv's evaluation of the export predicts (tests/ort_eval.py, at most
#   10 of 10,000 images may differ, as in test_qat.sh);
# - the integer-only export of both: every integer tensor equals ONNX Runtime's on 200
#   images (tests/int_layers.py + tests/run_model), the per-channel scales folded into
#   the per-channel requantization;
# - the other weight layouts: a built model with ConvTranspose (output channels on axis
#   1), Gemm without transB and MatMul (axis 1): scales along the right axis, one per
#   channel, and ONNX Runtime agrees with qatconv on the fake export;
# - a checkpoint carries the step vectors: 2 epochs = 1 epoch + --resume, the same file;
# - QWeight.Mode=Integer with per-channel weights: the integer graph's evaluation is the
#   trained one and ONNX Runtime's integers are qatconv's;
# - a PerChannel value other than 0/1 is one error line.
# Under QC_TEST_SCALE=small (tests/lib.sh) every case and check runs on the first 2,000
# test images (at most 2 of them may differ where 10 of 10,000 may), the int exports on
# 100 images, the trainings on 2,560 images instead of 6,400 and the checkpoint runs on
# 640 instead of 1,280.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
DATA=/usr/share/datasets/fashion-mnist
RUN_MODEL=${top_builddir:-.}/tests/run_model
NIMG=$(scaled 200 100)
NTRAIN=$(scaled 6400 2560)
NCK=$(scaled 1280 640)
if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "SKIP: onnx, onnxruntime or numpy missing"; exit 77
fi
if [ ! -d "$DATA" ]; then
    echo "SKIP: $DATA missing"; exit 77
fi

# recipe METHOD: W4A4 with 8-bit first and last layers, every weight per channel
recipe() {
    if [ "$1" = LSQ ]; then
        lsq_recipe 0.001 | sed 's/^QWeight.Range=15$/&\nQWeight.PerChannel=1/'
    else
        printf 'Solvers.LearningRate=0.001\nSolvers.Momentum=0.9\n'
        fashion_sections 128
        cat <<'EOF2'
[onnx:Conv_def]
QWeight=SAT
QWeight.Range=15
QWeight.PerChannel=1
[onnx:Fc_def] onnx:Conv_def
[/conv1/Conv] onnx:Conv_def
QWeight.Range=255
QWeight.QuantMode=Symmetric
[/fc2/Gemm] onnx:Fc_def
QWeight.Range=255
QWeight.QuantMode=Symmetric
[onnx:Relu_def]
ActivationFunction=Linear
QAct=SAT
QAct.Range=15
QAct.Alpha=6.0
QActSolver.LearningRate=0.01
EOF2
    fi
}

# check_axes MODEL AXES: every weight DequantizeLinear per channel along the listed axes
check_axes() {
    "$PYTHON3" - "$1" "$2" <<'PY'
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
assert opset >= 13, "opset %d < 13" % opset
inits = {t.name: t for t in m.graph.initializer}
dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
axes = []
for n in dq:
    w = numpy_helper.to_array(inits[n.input[0]])
    s = numpy_helper.to_array(inits[n.input[1]])
    z = numpy_helper.to_array(inits[n.input[2]])
    ax = [a.i for a in n.attribute if a.name == "axis"]
    assert inits[n.input[0]].data_type == onnx.TensorProto.INT8, n.name + ": not int8"
    assert len(ax) == 1 and s.shape == (w.shape[ax[0]],) and z.shape == s.shape, \
        "%s: scale %s along %s of %s" % (n.name, s.shape, ax, w.shape)
    assert (z == 0).all() and (s > 0).all()
    axes.append(ax[0])
want = [int(a) for a in sys.argv[2].split(",")]
assert axes == want, "axes %s, expected %s" % (axes, want)
print("opset %d, %d per-channel weights along axes %s" % (opset, len(dq), sys.argv[2]))
PY
}

# agree NAME MODEL RECIPE [ort_eval options]: ONNX Runtime's predictions against qatconv's,
# image by image
agree() {
    name=$1; model=$2; rec=$3; shift 3
    if "$QATCONV" eval "$model" -r "$rec" --quiet --predictions "$TMP/$name.qc" \
            > "$TMP/$name.eval" 2>&1 &&
        "$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$model" --data "$DATA" \
            --compare "$TMP/$name.qc" --max-differ "$QC_DIFFER_10" --limit "$QC_N_TEST" \
            --run-model "$RUN_MODEL" "$@" \
            > "$TMP/$name.agree" 2>&1; then
        ok "$name: ONNX Runtime per image: $(grep '^agree=' "$TMP/$name.agree")"
    else
        bad "$name: ONNX Runtime per image: $(grep -v '^differ image' "$TMP/$name.eval" \
            "$TMP/$name.agree")"
    fi
}

for q in LSQ SAT; do
    recipe $q > "$TMP/$q.ini"
    small_test_set "$TMP/$q.ini"
    if ! "$QATCONV" "$M" -r "$TMP/$q.ini" -o "$TMP/$q.onnx" --epochs 1 --limit "$NTRAIN" --quiet \
            > "$TMP/$q.train" 2>&1; then
        bad "$q: training failed: $(cat "$TMP/$q.train")"; continue
    fi
    ok "$q per channel: $(grep 'test top-1' "$TMP/$q.train")"
    if out=$(check_axes "$TMP/$q.onnx" 0,0,0,0 2>&1); then ok "$q fake export: $out"
    else bad "$q fake export: $out"; fi
    agree "$q" "$TMP/$q.onnx" "$TMP/$q.ini"
    if "$QATCONV" "$TMP/$q.onnx" --format int -o "$TMP/${q}_int.onnx" > "$TMP/$q.int" 2>&1 &&
        "$PYTHON3" "$top_srcdir/tests/int_layers.py" "$TMP/${q}_int.onnx" "$NIMG" "$TMP/${q}_L" \
            > "$TMP/$q.layers" 2>&1 &&
        "$RUN_MODEL" "$TMP/${q}_L/model.onnx" "$TMP/${q}_L" 2 > "$TMP/$q.run" 2>&1; then
        ok "$q int export: $(cat "$TMP/$q.layers"); qatconv computes the same integers"
    else
        bad "$q int export: $(cat "$TMP/$q.int" "$TMP/$q.layers" 2>/dev/null)"
        grep -v " 0 differ" "$TMP/$q.run" 2>/dev/null | head -10
    fi
done

# the other layouts: Conv -> Relu -> ConvTranspose (weight [C_in, C_out, kH, kW]) -> Relu
# -> Flatten -> Gemm (transB=0, weight [K, N]) -> Relu -> MatMul (weight [K, N])
"$PYTHON3" - "$TMP/layouts.onnx" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as T
r = np.random.default_rng(7)
def w(name, *shape):
    fan = np.prod(shape[1:]) if len(shape) > 2 else shape[0]
    return nh.from_array((r.standard_normal(shape) * np.sqrt(2.0 / fan)).astype(np.float32), name)
inits = [w("c.w", 4, 1, 3, 3), nh.from_array(np.zeros(4, np.float32), "c.b"),
         w("t.w", 4, 3, 3, 3), nh.from_array(np.zeros(3, np.float32), "t.b"),
         w("g.w", 675, 32), nh.from_array(np.zeros(32, np.float32), "g.b"), w("m.w", 32, 10)]
nodes = [h.make_node("Conv", ["x", "c.w", "c.b"], ["c"], name="conv", strides=[2, 2]),
         h.make_node("Relu", ["c"], ["cr"], name="relu1"),
         h.make_node("ConvTranspose", ["cr", "t.w", "t.b"], ["t"], name="convt"),
         h.make_node("Relu", ["t"], ["tr"], name="relu2"),
         h.make_node("Flatten", ["tr"], ["f"], name="flat"),
         h.make_node("Gemm", ["f", "g.w", "g.b"], ["g"], name="gemm"),
         h.make_node("Relu", ["g"], ["gr"], name="relu3"),
         h.make_node("MatMul", ["gr", "m.w"], ["y"], name="matmul")]
g = h.make_graph(nodes, "layouts", [h.make_tensor_value_info("x", T.FLOAT, ["N", 1, 28, 28])],
                 [h.make_tensor_value_info("y", T.FLOAT, ["N", 10])], inits)
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)], ir_version=8)
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
PY
# (SAT per channel normalizes each channel's magnitude away, and nothing here has a
# BatchNorm to restore it: ApplyScaling=1 and a smaller rate train it).  ONNX Runtime runs
# the graph as written (--no-optimize): its graph optimizations fuse DequantizeLinear ->
# ConvTranspose/Gemm -> QuantizeLinear into integer kernels that round differently, which
# flips about 3 % of this weakly trained model's images, per tensor as per channel.
for q in LSQ SAT; do
    lr=0.03; [ $q = SAT ] && lr=0.003
    { printf 'Solvers.LearningRate=%s\nSolvers.Momentum=0.9\n' $lr; fashion_sections 64
      printf '[onnx:Conv_def]\nQWeight=%s\nQWeight.Range=15\nQWeight.PerChannel=1\n' $q
      [ $q = SAT ] && printf 'QWeight.ApplyScaling=1\n'
      printf '[onnx:Fc_def] onnx:Conv_def\n[onnx:Relu_def]\nActivationFunction=Linear\n'
      printf 'QAct=LSQ\nQAct.Range=15\n'; } > "$TMP/lay$q.ini"
    small_test_set "$TMP/lay$q.ini"
    if "$QATCONV" "$TMP/layouts.onnx" -r "$TMP/lay$q.ini" -o "$TMP/lay$q.out.onnx" --epochs 1 \
            --limit "$NTRAIN" --quiet > "$TMP/lay$q.train" 2>&1; then
        if out=$(check_axes "$TMP/lay$q.out.onnx" 0,1,1,1 2>&1); then
            ok "layouts $q: $out; $(grep -o "after [0-9.]*%" "$TMP/lay$q.train")"
        else bad "layouts $q: $out"; fi
        agree "layouts $q" "$TMP/lay$q.out.onnx" "$TMP/lay$q.ini" --no-optimize
    else
        bad "layouts $q: training failed: $(cat "$TMP/lay$q.train")"
    fi
done

# checkpoints hold the step vectors: 1 epoch, then --resume to 2 = 2 epochs straight
R=$TMP/LSQ.ini
if "$QATCONV" "$M" -r "$R" -o "$TMP/two.onnx" --epochs 2 --limit "$NCK" --quiet --no-eval \
        > "$TMP/two.out" 2>&1 &&
   "$QATCONV" "$M" -r "$R" -o "$TMP/one.onnx" --epochs 1 --limit "$NCK" --quiet --no-eval \
        --checkpoint "$TMP/c.ckpt" > "$TMP/one.out" 2>&1 &&
   "$QATCONV" "$M" -r "$R" -o "$TMP/res.onnx" --epochs 2 --limit "$NCK" --quiet --no-eval \
        --checkpoint "$TMP/c.ckpt" --resume "$TMP/c.ckpt" > "$TMP/res.out" 2>&1 &&
   cmp -s "$TMP/two.onnx" "$TMP/res.onnx"; then
    ok "checkpoint: 1 epoch + --resume writes the file 2 epochs write"
else
    bad "checkpoint: $(cat "$TMP/two.out" "$TMP/one.out" "$TMP/res.out" 2>/dev/null)"
fi

# QWeight.Mode=Integer (BatchNorm folded before training): per-channel steps follow the
# folded per-channel factors, and the final evaluation (the integer graph's) equals the
# trained one; ONNX Runtime computes the same integers at every layer
sed 's/^QWeight.PerChannel=1$/QWeight.PerChannel=1\nQWeight.Mode=Integer/' "$TMP/LSQ.ini" \
    > "$TMP/int.ini"
if "$QATCONV" "$M" -r "$TMP/int.ini" -o "$TMP/mi.onnx" --epochs 1 --limit 2560 --quiet \
        > "$TMP/mi.out" 2>&1 &&
    after=$(sed -n 's/.*, after \([0-9.]*\)%.*/\1/p' "$TMP/mi.out") &&
    [ -n "$after" ] && grep -q "exported graph $after%" "$TMP/mi.out" &&
    "$PYTHON3" "$top_srcdir/tests/int_layers.py" "$TMP/mi.onnx" "$NIMG" "$TMP/mi_L" \
        > "$TMP/mi.layers" 2>&1 &&
    "$RUN_MODEL" "$TMP/mi_L/model.onnx" "$TMP/mi_L" 2 > "$TMP/mi.run" 2>&1; then
    ok "Mode=Integer per channel: integer graph $after% = trained; $(cat "$TMP/mi.layers")"
else
    bad "Mode=Integer per channel: $(cat "$TMP/mi.out" "$TMP/mi.layers" 2>/dev/null)"
fi

# refusals: one error line naming the section
{ fashion_sections 64; printf '[onnx:Conv_def]\nQWeight=LSQ\nQWeight.PerChannel=2\n'; } \
    > "$TMP/two.ini"
OUTFILE=$TMP/no.onnx expect_error 2 "PerChannel=2" -- \
    "$QATCONV" "$M" -r "$TMP/two.ini" -o "$TMP/no.onnx" --epochs 1 --limit 128 --quiet
finish
