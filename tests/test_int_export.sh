#!/bin/sh
# test_int_export.sh - the integer-only export (--format int) on short QAT runs of the
# LeNet-BN fixture (LSQ W4A4, SAT W4A4 with its odd 4-bit grid, SAT W8A8 with the
# 9-bit Default grid, LSQ W8A8), the MLP (LSQ W8A8 from the graph input), the tiny ResNet (residual Adds, global average pool) and the
# MobileNet-v2-like fixture (depthwise convolutions, ReLU6, residual Adds), and a Concat
# of two ReLU branches quantized with different scales (tests/int_concat_model.py):
#   - onnx.checker full_check passes and nothing between the input QuantizeLinear and
#     the output dequantization computes in float (tests/int_check.py);
#   - every integer tensor of every int export equals ONNX Runtime's (1,000 test images
#     for LeNet and the MLP, fewer for the larger fixtures; tests/int_layers.py +
#     tests/run_model), and the logits too, under ONNX Runtime's default session
#     options and with session.x64quantprecision=1, on this CPU and on an emulated
#     AVX2 CPU without VNNI (qemu-x86_64 -cpu Haswell);
#   - ONNX Runtime's top-1 on the int export equals qatconv's "exported graph" figure
#     and qatconv eval's, with the same prediction for each of the 10,000 images;
#   - the int and fake exports of the same training agree on >= 99.8 % of the
#     predictions, accuracy within 0.1 point (the fake graph run by ONNX Runtime as
#     specified, graph optimizations off; with them on it is reported);
#   - 4-bit weights are INT4 initializers and an all-W4 file is <= 55 % of the all-W8 one;
#   - levels read by a Clip and a DequantizeLinear convert, equal to ONNX Runtime on the
#     fake graph (a use after free when the node array moved under the pass);
#   - a weight-only QDQ model (no activation quantized) converts from its weight levels;
#   - what cannot be integer is refused with one error line (SAT clamp stage, a float
#     activation into a layer).
# Under QC_TEST_SCALE=small (tests/lib.sh) the same cases and checks run on a
# quarter of the training images (the Concat model all of its 16,384), the first
# 2,000 test images, integer tensors on 250 images instead of 1,000, and 100 images
# of the 4-bit cases on the emulated CPU (the 8-bit ones take all 250 of their
# references: the MLP has batch-sized Shape outputs).
. "${top_srcdir:-.}/tests/lib.sh"
: "${top_builddir:=.}"
S=$(small_srcdir 0.2)
N_TEST=$(scaled 10000 2000)
N_LAYERS=$(scaled 1000 250)   # images of the layer-by-layer check of the LeNet-size cases
Q=$(scaled 1 4)
RUN_MODEL=$top_builddir/tests/run_model
TRAIN="--epochs 1 --limit $((4096 / Q)) --threads 2 --quiet --seed 3"

# export MODEL RECIPE NAME [OPTIONS]: fake and int exports of the same training run
export_both() {
    m=$1; r=$2; name=$3; shift 3
    for f in fake int; do
        echo "$*" >"$TMP/${name}_$f.log.opts"
        if ! "$QATCONV" "$m" -r "$r" -o "$TMP/${name}_$f.onnx" $TRAIN --format "$f" "$@" \
            >"$TMP/${name}_$f.log" 2>&1; then
            bad "$name --format $f"; cat "$TMP/${name}_$f.log"; return 1
        fi
    done
    ok "$name: fake and int exports written"
}

# accuracy NAME FORMAT: "exported graph" top-1 of the summary line
summary_acc() {
    sed -n 's/.*exported graph \([0-9.]*\)%.*/\1/p' "$TMP/$1_$2.log"
}

# ort NAME FORMAT [--no-optimize]: ONNX Runtime top-1 on the N_TEST test images,
# predictions kept in NAME_FORMAT.ort
ort_acc() {
    "$PYTHON3" "$S/tests/ort_eval.py" "$TMP/$1_$2.onnx" --predictions "$TMP/$1_$2.ort" \
        --limit "$N_TEST" ${3:-} |
        sed -n 's/^accuracy=\([0-9.]*\).*/\1/p'
}

check_model() {
    name=$1; shift
    if out=$("$PYTHON3" "$S/tests/int_check.py" "$TMP/${name}_int.onnx" "$@" 2>&1); then
        ok "$name: $out"
    else
        bad "$name: integer-only check"; echo "$out"
    fi
    # the fake graph as ONNX specifies it: with graph optimizations ORT fuses
    # DequantizeLinear -> op -> QuantizeLinear into its own integer kernels, which
    # round differently (reported, not checked)
    a_int=$(ort_acc "$name" int); a_fake=$(ort_acc "$name" fake --no-optimize)
    s_int=$(summary_acc "$name" int)
    if [ -z "$s_int" ] && grep -q "no-eval" "$TMP/${name}_int.log.opts" 2>/dev/null; then
        :   # trained with --no-eval: qatconv eval below is the comparison
    elif [ -n "$a_int" ] && [ "$a_int" = "$s_int" ]; then
        ok "$name: ONNX Runtime top-1 on the int export $a_int% = qatconv's $s_int%"
    else
        bad "$name: ONNX Runtime $a_int% vs qatconv's exported-graph figure $s_int%"
    fi
    "$QATCONV" eval "$TMP/${name}_int.onnx" -r "$S/recipes/fashion-mnist.ini" --quiet \
        --predictions "$TMP/${name}_int.qc" >/dev/null 2>&1
    if cmp -s "$TMP/${name}_int.qc" "$TMP/${name}_int.ort"; then
        ok "$name: qatconv eval predicts what ONNX Runtime predicts on all $N_TEST images"
    else
        bad "$name: qatconv eval and ONNX Runtime predictions differ"
    fi
    "$PYTHON3" - "$TMP/${name}_fake.ort" "$TMP/${name}_int.ort" "$a_fake" "$a_int" "$N_TEST" <<'EOF' &&
import sys
a = open(sys.argv[1]).read().split()
b = open(sys.argv[2]).read().split()
agree = sum(x == y for x, y in zip(a, b)) / len(a) * 100
diff = abs(float(sys.argv[3]) - float(sys.argv[4]))
print("fake/int top-1 agreement %.2f%% on %d images, accuracy %s%% vs %s%%"
      % (agree, len(a), sys.argv[3], sys.argv[4]))
# 0.1 points inclusive: 59.35 - 59.25 is 0.10000000000000142 in binary floating point
sys.exit(0 if len(a) == int(sys.argv[5]) and agree >= 99.8 and diff <= 0.1 + 1e-9 else 1)
EOF
    ok "$name: int and fake exports agree" || bad "$name: int and fake exports disagree"
    cp "$TMP/${name}_fake.ort" "$TMP/${name}_fake.spec"
    a_opt=$(ort_acc "$name" fake)
    echo "info: $name: fake export in ONNX Runtime with graph optimizations: $a_opt%," \
        "$(paste -d' ' "$TMP/${name}_fake.ort" "$TMP/${name}_int.ort" | awk '$1==$2' | wc -l)" \
        "of $N_TEST predictions equal to the int export's"
}

# layers NAME N: every integer tensor against ONNX Runtime on N images, under
# its default session options and with session.x64quantprecision=1 (equal in
# both, tests/int_layers.py); the directory joins EMULATE (EMULATE_8 for the
# 8-bit cases) for the AVX2 check
EMULATE=""
EMULATE_8=""
layers() {
    if "$PYTHON3" "$S/tests/int_layers.py" "$TMP/$1_int.onnx" "$2" "$TMP/$1_layers" \
        >"$TMP/layers.log" 2>&1 &&
        "$RUN_MODEL" "$TMP/$1_layers/model.onnx" "$TMP/$1_layers" 2 >"$TMP/run.log" 2>&1; then
        ok "$1: $(cat "$TMP/layers.log"); qatconv computes the same integers at every one"
        case $1 in
        *8) EMULATE_8="$EMULATE_8 $TMP/$1_layers" ;;
        *) EMULATE="$EMULATE $TMP/$1_layers" ;;
        esac
    else
        bad "$1: integer tensors differ from ONNX Runtime"
        cat "$TMP/layers.log"; grep -v " 0 differ" "$TMP/run.log" | head -20
    fi
}

# ONNX Runtime on an x86 CPU without AVX-512 or VNNI (AMD Zen 3, Intel Haswell
# to Comet Lake) sums uint8 x int8 products pairwise in saturating int16; the
# export must not depend on it.  qemu-x86_64 -cpu Haswell emulates such a CPU
# (AVX2, no AVX-512: its TCG has none), where ONNX Runtime dispatches its AVX2
# kernels; every integer tensor of every case above must still equal the
# reference (the first N images of each; all N_LAYERS of the 8-bit cases).
# QC_EMULATED_CPU=no (the sanitizer stage of .ci/run) leaves it out: it runs ONNX
# Runtime on the exports already checked, no qatconv code, and the first suite runs it.
emulated_cpu() {
    if [ "${QC_EMULATED_CPU:-yes}" = no ]; then
        echo "note: AVX2 CPU emulation not run (QC_EMULATED_CPU=no)"
        return
    fi
    qemu=$(command -v qemu-x86_64 || true)
    py=$("$PYTHON3" -c 'import sys; print(sys.executable)')
    if [ -z "$qemu" ]; then
        bad "AVX2 CPU emulation: qemu-x86_64 not found (scripts/install-deps installs qemu-user)"
        return
    fi
    if "$qemu" -cpu Haswell "$py" "$S/tests/int_layers.py" --verify -n "$1" $2 \
        >"$TMP/emu.log" 2>&1; then
        ok "AVX2 CPU (qemu -cpu Haswell): $(grep -c 'all equal' "$TMP/emu.log") int exports," \
            "every integer tensor equal to the reference"
    else
        bad "AVX2 CPU (qemu -cpu Haswell): integers differ"; grep -v warning "$TMP/emu.log"
    fi
}

L=$S/testdata/fashion_lenet_bn.onnx
export_both "$L" "$S/recipes/lenet-lsq-w4a4.ini" lsq4 && {
    check_model lsq4 --expect-int4
    layers lsq4 "$N_LAYERS"
}
export_both "$L" "$S/recipes/lenet-sat-w4a4.ini" sat4 && {
    check_model sat4 --expect-int4
    layers sat4 "$N_LAYERS"
}
# 8-bit activations into layers with full-range int8 weights: SAT W8A8 (the
# 9-bit Default grid stored as (k-1)/2 in [-128, 127]), LSQ W8A8 on LeNet and on
# the MLP, whose first Gemm reads the quantized graph input (levels 0..255)
export_both "$L" "$S/recipes/lenet-sat-w8a8.ini" sat8 && {
    check_model sat8
    layers sat8 "$N_LAYERS"
}
export_both "$L" "$S/recipes/lenet-lsq-w8a8.ini" lsq8 && {
    check_model lsq8
    layers lsq8 "$N_LAYERS"
}
export_both "$S/testdata/fashion_mlp.onnx" "$S/recipes/lenet-lsq-w8a8.ini" mlp8 && {
    check_model mlp8
    layers mlp8 "$N_LAYERS"
}
# the larger fixtures train on fewer images, without qatconv's test evaluations
export_both "$S/testdata/fashion_resnet_tiny.onnx" "$S/recipes/resnet-lsq-w4a4.ini" res4 \
    --limit $((2048 / Q)) --no-eval && {
    check_model res4 --expect-int4
    layers res4 200
}

export_both "$S/testdata/fashion_mbv2_tiny.onnx" "$S/recipes/mbv2-lsq-w4a4.ini" mbv2 \
    --limit $((1024 / Q)) --no-eval && {
    check_model mbv2 --expect-int4
    layers mbv2 100
}

# a Concat of two ReLU branches with their own activation quantizers (SqueezeNet fire
# modules, Inception, DenseNet): the branch of the smaller scale is requantized to the
# larger one before the uint8 levels are concatenated (one level at most from the fake
# graph, which concatenates unrounded values); trained from He-initialized weights
if "$PYTHON3" "$S/tests/int_concat_model.py" "$TMP/concat_float.onnx"; then
    sed 's/^Solvers.LearningRate=.*/Solvers.LearningRate=0.3/' \
        "$S/recipes/lenet-lsq-w8a8.ini" >"$TMP/concat.ini"
    export_both "$TMP/concat_float.onnx" "$TMP/concat.ini" concat8 --limit 16384 && {
        check_model concat8
        layers concat8 "$N_LAYERS"
    }
else
    bad "int_concat_model.py"
fi

# file size: every layer at 4 bits against every layer at 8 bits, same model
if [ -f "$TMP/lsq8_int.onnx" ] &&
    "$QATCONV" "$L" -r "$S/recipes/lenet-lsq-w4a4-all.ini" -o "$TMP/lsq4all_int.onnx" $TRAIN \
    --format int --no-eval >/dev/null 2>&1; then
    layers lsq4all 200
    w4=$(wc -c <"$TMP/lsq4all_int.onnx"); w8=$(wc -c <"$TMP/lsq8_int.onnx")
    if [ $((w4 * 100)) -le $((w8 * 55)) ]; then
        ok "file size: W4 $w4 bytes = $((w4 * 100 / w8)) % of W8 $w8 bytes"
    else
        bad "file size: W4 $w4 bytes is more than 55 % of W8 $w8 bytes"
    fi
else
    bad "LSQ W8A8 int export"
fi

# QWeight.Mode=Integer: BatchNorm folded before training; the final evaluation is the
# integer graph, and ONNX Runtime's accuracy on the export is the same figure
if "$QATCONV" "$L" -r "$S/recipes/lenet-lsq-w4a4-integer.ini" -o "$TMP/modeint.onnx" $TRAIN \
    >"$TMP/modeint.log" 2>&1; then
    after=$(sed -n 's/.*, after \([0-9.]*\)%.*/\1/p' "$TMP/modeint.log")
    ort=$("$PYTHON3" "$S/tests/ort_eval.py" "$TMP/modeint.onnx" --limit "$N_TEST" |
        sed -n 's/^accuracy=\([0-9.]*\).*/\1/p')
    if [ -n "$after" ] && [ "$after" = "$ort" ] &&
        grep -q "2 BatchNormalization nodes folded" "$TMP/modeint.log" &&
        "$PYTHON3" "$S/tests/int_check.py" "$TMP/modeint.onnx" >/dev/null; then
        ok "Mode=Integer: last training evaluation $after% = ONNX Runtime on the export $ort%"
        cp "$TMP/modeint.onnx" "$TMP/modeint_int.onnx"
        layers modeint 200
    else
        bad "Mode=Integer: after-training figure '$after' vs ONNX Runtime '$ort'"
        cat "$TMP/modeint.log"
    fi
else
    bad "Mode=Integer training"; cat "$TMP/modeint.log"
fi

# --int-output: int32 logits with their scale in the metadata, the same predictions
if "$QATCONV" "$L" -r "$S/recipes/lenet-lsq-w4a4.ini" -o "$TMP/lsq4_i32.onnx" $TRAIN \
    --format int --int-output --no-eval >/dev/null 2>&1 &&
    "$PYTHON3" - "$TMP/lsq4_i32.onnx" "$TMP/lsq4_int.ort" <<'EOF'
import gzip, sys
import numpy as np, onnx, onnxruntime as ort
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
scale = [p.value for p in m.metadata_props if p.key == "qatconv.output_scale.output"]
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 1, 28, 28).astype(np.float32) / 255
ref = np.array(open(sys.argv[2]).read().split(), int)
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
z = sess.run(None, {"input": x[:len(ref)]})[0]
agree = (z.argmax(1) == ref).mean()
print("int32 logits, scale %s: %.2f%% of the float-output export's predictions"
      % (scale, 100 * agree))
sys.exit(0 if z.dtype == np.int32 and scale and agree >= 0.999 else 1)
EOF
then
    ok "--int-output: int32 logits"
else
    bad "--int-output"
fi

# a hand-built QDQ model converted without training: per-channel scales, odd-level
# depthwise conv, Concat, AveragePool, ReLU6, BatchNorm without bias, Softmax
if "$PYTHON3" "$S/tests/int_handmade.py" make "$TMP/hand_fake.onnx" &&
    "$QATCONV" "$TMP/hand_fake.onnx" --format int -o "$TMP/hand_int.onnx" >/dev/null &&
    out=$("$PYTHON3" "$S/tests/int_check.py" "$TMP/hand_int.onnx" --expect-int4) &&
    out2=$("$PYTHON3" "$S/tests/int_handmade.py" compare "$TMP/hand_fake.onnx" \
        "$TMP/hand_int.onnx"); then
    ok "hand-built QDQ model -> --format int: $out; $out2"
    layers hand 256
else
    bad "hand-built QDQ model -> --format int"; echo "${out:-} ${out2:-}"
fi

# levels with two readers: a Clip on them (not absorbed by the QuantizeLinear, which
# absorbs a sole reader) and a DequantizeLinear.  Copying the Clip adds a node; the
# node array moving under the pass was a use after free (caught by the sanitizer
# build, where every addition moves the array: QC_DEBUG_REALLOC_MOVES)
if "$PYTHON3" - "$TMP/shared_fake.onnx" <<'EOF' &&
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in
         (("s0", np.float32(0.0123)), ("s1", np.float32(0.0217)), ("z", np.uint8(0)),
          ("lo", np.uint8(0)), ("hi", np.uint8(100)))]
nodes = [helper.make_node("QuantizeLinear", ["x", "s0", "z"], ["q"]),
         helper.make_node("Clip", ["q", "lo", "hi"], ["qc"]),
         helper.make_node("DequantizeLinear", ["qc", "s0", "z"], ["a"]),
         helper.make_node("DequantizeLinear", ["q", "s0", "z"], ["b"]),
         helper.make_node("Add", ["a", "b"], ["sum"]),
         helper.make_node("QuantizeLinear", ["sum", "s1", "z"], ["q1"]),
         helper.make_node("DequantizeLinear", ["q1", "s1", "z"], ["y"])]
vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 2, 3, 3]) for n in "xy"]
m = helper.make_model(helper.make_graph(nodes, "shared", vi[:1], vi[1:], inits),
                      opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 7
onnx.save(m, sys.argv[1])
EOF
    "$QATCONV" "$TMP/shared_fake.onnx" --format int -o "$TMP/shared_int.onnx" \
        >"$TMP/shared.log" 2>&1 &&
    out=$("$PYTHON3" - "$TMP/shared_fake.onnx" "$TMP/shared_int.onnx" <<'EOF'
import sys
import numpy as np
import onnxruntime as ort
o = ort.SessionOptions()
o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
x = (np.arange(36).reshape(2, 2, 3, 3) * 7 % 256 / 255 * 3.5).astype(np.float32)
f, i = (ort.InferenceSession(p, o).run(None, {"x": x})[0] for p in sys.argv[1:])
print("max |difference| %g" % np.abs(f - i).max())
sys.exit(0 if np.array_equal(f, i) else 1)
EOF
); then
    ok "levels read by a Clip and a DequantizeLinear -> --format int: ONNX Runtime $out"
else
    bad "levels read by a Clip and a DequantizeLinear -> --format int"; cat "$TMP/shared.log"
    echo "${out:-}"
fi

# a weight-only QDQ model (DequantizeLinear of int8 weights, no activation quantized:
# the fake export of a recipe with QWeight and no QAct) keeps its weight levels for
# --format int.  A one-layer model converts, equal to ONNX Runtime on the fake graph
# for inputs on the input quantizer's grid; with a second layer the refusal names the
# float activation it reads and the op computing it, not the weight (the load had folded the levels into
# float weights: "weight ... is not integer")
if "$PYTHON3" - "$TMP/wonly1_fake.onnx" "$TMP/wonly2_fake.onnx" <<'EOF' &&
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
rng = np.random.default_rng(5)
for path, layers in zip(sys.argv[1:], (1, 2)):
    inits, nodes, x = [], [], "x"
    for i in range(layers):
        w = rng.integers(-15, 16, size=(4, 3 if i == 0 else 4, 3, 3)).astype(np.int8)
        inits += [numpy_helper.from_array(w, "W%d_q" % i),
                  numpy_helper.from_array(np.float32(0.0173 + 0.01 * i), "W%d_s" % i),
                  numpy_helper.from_array(np.int8(0), "W%d_z" % i),
                  numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "B%d" % i)]
        nodes += [helper.make_node("DequantizeLinear", ["W%d_q" % i, "W%d_s" % i, "W%d_z" % i],
                                   ["W%d" % i], name="W%d_dq" % i),
                  helper.make_node("Conv", [x, "W%d" % i, "B%d" % i], ["c%d" % i],
                                   name="conv%d" % i, pads=[1, 1, 1, 1])]
        x = "c%d" % i
        if i + 1 < layers:
            nodes.append(helper.make_node("Relu", [x, ], ["r%d" % i], name="relu%d" % i))
            x = "r%d" % i
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
          helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 4, 8, 8])]
    m = helper.make_model(helper.make_graph(nodes, "wonly", vi[:1], vi[1:], inits),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, path)
EOF
    "$QATCONV" "$TMP/wonly1_fake.onnx" --format int -o "$TMP/wonly1_int.onnx" \
        >"$TMP/wonly1.log" 2>&1 &&
    out=$("$PYTHON3" "$S/tests/int_check.py" "$TMP/wonly1_int.onnx") &&
    out2=$("$PYTHON3" - "$TMP/wonly1_fake.onnx" "$TMP/wonly1_int.onnx" <<'EOF'
import sys
import numpy as np
import onnxruntime as ort
o = ort.SessionOptions()
o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
x = (np.random.default_rng(6).integers(0, 256, (1, 3, 8, 8)) / 255).astype(np.float32)
f, i = (ort.InferenceSession(p, o).run(None, {"x": x})[0] for p in sys.argv[1:])
d = np.abs(f - i).max() / np.abs(f).max()
print("max |difference| %.2g of max|output|" % d)
sys.exit(0 if d <= 1e-6 else 1)
EOF
); then
    ok "weight-only QDQ model -> --format int: $out; ONNX Runtime $out2"
else
    bad "weight-only QDQ model -> --format int"; cat "$TMP/wonly1.log"; echo "${out:-} ${out2:-}"
fi
OUTFILE=$TMP/wonly2_int.onnx expect_error 2 "weight-only QDQ model of two layers: refused" -- \
    "$QATCONV" "$TMP/wonly2_fake.onnx" --format int -o "$TMP/wonly2_int.onnx"
grep -q "node 'conv1': input 'r0' (output of Relu 'relu0') is not a quantized activation" \
    "$TMP/err" ||
    bad "the weight-only refusal does not name the float activation and its op: $(cat "$TMP/err")"

emulated_cpu "$(scaled 200 100)" "$EMULATE"
emulated_cpu "$N_LAYERS" "$EMULATE_8"   # the count of their references (the MLP has batch-sized Shape outputs)

# the SAT clamp stage has no integer weights: refused, naming the layer and the key
OUTFILE=$TMP/clamp.onnx expect_error 2 "int export of the SAT clamp stage" -- \
    "$QATCONV" "$L" -r "$S/recipes/lenet-sat-clamp.ini" -o "$TMP/clamp.onnx" $TRAIN \
    --format int --no-eval
grep -q "QWeight" "$TMP/err" || bad "the clamp-stage refusal does not name QWeight"

finish
