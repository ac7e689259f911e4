#!/bin/sh
# test_qat.sh - quantization-aware training and the fake-quant (QDQ) export:
# for SAT W4A4 and LSQ W4A4 on the LeNet-BN fixture (short runs), the export
# passes onnx.checker full_check, holds int8 weights behind DequantizeLinear
# and uint8 QuantizeLinear/DequantizeLinear activations, and ONNX Runtime
# predicts what qatconv's own evaluation of the export predicts, image by
# image, on all but at most 10 of the 10,000 test images.
#
# Agreement threshold: a fake-quant graph is computed in float by both, and
# their summation orders differ (qatconv's im2col + OpenBLAS, ONNX Runtime's
# own kernels or, with its graph optimizations, QLinearConv in integers), so an
# activation that lands within a rounding step of a level boundary can round to
# the neighbouring level in one of them; the logits then move by that level's
# contribution, far more than float noise, and an image whose two best classes
# are that close changes its prediction.  The margin of such an image is not
# bounded by float noise, so the threshold is a count: at most 10 images
# (0.1 %) may differ.  Each differing image is printed with its index, both
# classes, ONNX Runtime's top-2 margin and how far qatconv's logits of it are
# from ONNX Runtime's (tests/ort_eval.py --compare), so a real disagreement
# (large margins, many images) reads differently from boundary flips.
# Under QC_TEST_SCALE=small (tests/lib.sh): a quarter of the training images,
# the first 2,000 test images and the same 0.1 % (2 images).
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
DATA=/usr/share/datasets/fashion-mnist
RUN_MODEL=${top_builddir:-.}/tests/run_model
N_TEST=$(scaled 10000 2000)
MAX_DIFFER=$((N_TEST / 1000))
Q=$(scaled 1 4)
SRC=$(small_srcdir 0.2)
if [ ! -x "$RUN_MODEL" ]; then
    bad "$RUN_MODEL not built (make check builds it)"
    finish; exit 1
fi

# agree NAME MODEL QC_PRED [ort_eval options]: ONNX Runtime's predictions of MODEL
# against qatconv's, image by image, within MAX_DIFFER images
agree() {
    name=$1; model=$2; qpred=$3; shift 3
    if "$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$model" --data "$DATA" --compare "$qpred" \
            --limit "$N_TEST" --max-differ "$MAX_DIFFER" --run-model "$RUN_MODEL" "$@" > "$TMP/agree.out" 2>&1 &&
        grep -q "^agree=[0-9]*/$N_TEST " "$TMP/agree.out"; then
        ok "$name: ONNX Runtime per image: $(grep '^agree=' "$TMP/agree.out")"
    else
        bad "$name: ONNX Runtime per image: $(grep -v '^differ image' "$TMP/agree.out")"
    fi
    grep '^differ image' "$TMP/agree.out"
}

data() {
    cat <<EOF2
[database]
Type=MNIST_IDX_Database
DataPath=$DATA
Validation=0.0
Test=$(scaled 1.0 0.2)
[sp]
SizeX=28
SizeY=28
NbChannels=1
BatchSize=128
[sp.Transformation-1]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
EOF2
}

{ printf 'Solvers.LearningRate=0.001\nSolvers.Momentum=0.9\n'; data; cat <<'EOF2'
[onnx:Conv_def]
QWeight=SAT
QWeight.Range=15
[onnx:Fc_def]
QWeight=SAT
QWeight.Range=15
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
} > "$TMP/sat.ini"

{ printf 'Solvers.LearningRate=0.001\nSolvers.Momentum=0.9\n'; data; cat <<'EOF2'
[onnx:Conv_def]
QWeight=LSQ
QWeight.Range=15
QWeightSolver.LearningRate=0.0001
[onnx:Fc_def] onnx:Conv_def
[onnx:Relu_def]
ActivationFunction=Linear
QAct=LSQ
QAct.Range=15
QActSolver.LearningRate=0.001
EOF2
} > "$TMP/lsq.ini"

for q in sat lsq; do
    out=$TMP/$q.onnx
    if ! "$QATCONV" "$M" -r "$TMP/$q.ini" -o "$out" --epochs 1 --limit $((6400 / Q)) --quiet \
            > "$TMP/$q.train" 2>&1; then
        bad "$q: training failed: $(cat "$TMP/$q.train")"; continue
    fi
    ok "$q: trained and exported"
    if "$PYTHON3" - "$out" > "$TMP/$q.check" 2>&1 <<'PY'
import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
ops = [n.op_type for n in m.graph.node]
inits = {t.name: t for t in m.graph.initializer}
dq_w = [n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
assert len(dq_w) == 4, "expected 4 quantized weights, got %d" % len(dq_w)
assert all(inits[n.input[0]].data_type == onnx.TensorProto.INT8 for n in dq_w), "weights not int8"
q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
assert len(q) == 3, "expected 3 activation quantizers, got %d" % len(q)
assert all(inits[n.input[2]].data_type == onnx.TensorProto.UINT8 for n in q), "acts not uint8"
assert ops.count("Clip") == 3, "R=15 activations need Clip(0, 15)"
print("checker ok; %d int8 weights, %d uint8 activation quantizers" % (len(dq_w), len(q)))
PY
    then ok "$q: $(cat "$TMP/$q.check")"
    else bad "$q: export check: $(cat "$TMP/$q.check")"; fi
    "$QATCONV" eval "$out" -r "$TMP/$q.ini" --quiet --predictions "$TMP/$q.qc" > "$TMP/$q.eval" 2>&1 ||
        { bad "$q: qatconv eval of the export: $(cat "$TMP/$q.eval")"; continue; }
    agree "$q" "$out" "$TMP/$q.qc"
    # the summary's exported-graph figure is qatconv's evaluation of the export
    sfig=$(sed -n 's/.*exported graph \([0-9.]*\)%.*/\1/p' "$TMP/$q.train")
    efig=$(sed -n 's/.*top-1 \([0-9.]*\)%.*/\1/p' "$TMP/$q.eval")
    if [ -n "$sfig" ] && [ "$sfig" = "$efig" ]; then ok "$q: summary export figure $sfig% = eval"
    else bad "$q: summary '$sfig' vs eval '$efig'"; fi
done
# --fold-bn: BatchNormalization folded into the integer layers (per-channel scales);
# ONNX Runtime running the graph as written predicts what qatconv predicts, within
# the same threshold.  (With its graph optimizations on, ORT fuses DequantizeLinear ->
# Conv -> Relu -> QuantizeLinear into an integer QLinearConv whose requantization
# rounds differently: about 99.5 % there.)
if "$QATCONV" "$M" -r "$TMP/lsq.ini" -o "$TMP/fold.onnx" --epochs 1 --limit $((2560 / Q)) --quiet \
        --fold-bn > "$TMP/fold.out" 2>&1 &&
   "$QATCONV" eval "$TMP/fold.onnx" -r "$TMP/lsq.ini" --quiet --predictions "$TMP/fold.qc" \
        > "$TMP/fold.eval" 2>&1; then
    if ! "$PYTHON3" -c "import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); sys.exit(any(n.op_type == 'BatchNormalization' for n in m.graph.node))" "$TMP/fold.onnx"; then
        bad "--fold-bn: BatchNormalization left or checker failed"
    else
        ok "--fold-bn: no BatchNormalization left"
    fi
    agree "--fold-bn" "$TMP/fold.onnx" "$TMP/fold.qc" --no-optimize
else
    bad "--fold-bn: $(cat "$TMP/fold.out" "$TMP/fold.eval" 2>/dev/null)"
fi

# SAT clamp stage: the written float model computes what training evaluated
if "$QATCONV" "$M" -r "$SRC/recipes/lenet-sat-clamp.ini" -o "$TMP/clamp.onnx" --epochs 1 \
        --limit $((2560 / Q)) --quiet > "$TMP/clamp.out" 2>&1; then
    after=$(sed -n 's/.*, after \([0-9.]*\)%.*/\1/p' "$TMP/clamp.out")
    export_fig=$(sed -n 's/.*exported graph \([0-9.]*\)%.*/\1/p' "$TMP/clamp.out")
    if [ -n "$after" ] && [ "$after" = "$export_fig" ]; then
        ok "clamp stage: written clamped weights give the trained accuracy ($after%)"
    else
        bad "clamp stage: after '$after' vs exported '$export_fig': $(cat "$TMP/clamp.out")"
    fi
else
    bad "clamp stage: $(cat "$TMP/clamp.out")"
fi
finish
