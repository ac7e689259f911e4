#!/bin/sh
# test_fidelity.sh - N2D2 recipe fidelity (issue 16 item 4; qatconv-recipe(5), N2D2 FIDELITY):
# - [soft1] Type=Softmax with Input=<the logits' node> and its [soft1.Target] load and train;
#   an Input naming no node, or another node than the logits' producer: one error naming
#   file:line, exit 2, nothing written; a [x.Target] without its Softmax section likewise;
# - every accepted key without effect prints ONE warning naming its first file:line (NoBias
#   in two sections: one line, "1 other place"), and a recipe of keys that act prints none
#   (ActivationFunction=Linear with QAct=SAT: N2D2's quantized ReLU, the same here);
# - ONNX_init=0: the fillers (ConstantFiller exact, XavierFiller FanOut Scaling 2 within its
#   bound s·sqrt(3/n) and near its std, N2D2's default Normal(0, 0.05)), BatchNorm reset to
#   scale 1, bias 0, mean 0, var 1; the same seed gives the same weights, another seed others;
# - DefaultModel=Frame_CUDA without CUDA: one error naming the line; --device cpu overrides
#   it with one warning; DefaultModel=Frame runs on the CPU; an unknown value is an error;
# - the checkpoint records --valid-metric: resuming with another is an error, with the
#   same one fine; a version-2 checkpoint (no name) still resumes;
# - N2D2's two-stage flow through --format float (stage 2 from stage 1's latent weights).
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
[ -d /usr/share/datasets/fashion-mnist ] || { echo "no Fashion-MNIST"; exit 77; }
"$PYTHON3" -c 'import onnx, numpy' 2>/dev/null || { echo "no onnx/numpy"; exit 77; }
BASE=$(fashion_sections 64)
RUN="--epochs 1 --limit 128 --no-eval --quiet"

run_ok() {   # run_ok NAME TEXT [OPTIONS...]: trains; stderr in $TMP/NAME.err
    name=$1; text=$2; shift 2
    printf '%s\n%s\n' "$BASE" "$text" > "$TMP/$name.ini"
    # shellcheck disable=SC2086
    if "$QATCONV" "$M" -r "$TMP/$name.ini" -o "$TMP/$name.onnx" $RUN "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err"; then return 0; fi
    bad "$name: exit $?"; cat "$TMP/$name.err"; return 1
}

check() {   # check NAME RC PATTERN TEXT [OPTIONS...]: one error line matching PATTERN
    name=$1; rc=$2; pattern=$3; text=$4; shift 4
    printf '%s\n%s\n' "$BASE" "$text" > "$TMP/$name.ini"
    OUTFILE=$TMP/$name.onnx
    # shellcheck disable=SC2086
    expect_error "$rc" "$name" -- "$QATCONV" "$M" -r "$TMP/$name.ini" -o "$OUTFILE" $RUN "$@"
    if grep -q "$pattern" "$TMP/err"; then ok "$name: '$pattern'"
    else bad "$name: '$(cat "$TMP/err")' lacks '$pattern'"; fi
}

# 1. [soft1] and [soft1.Target]
SOFT="[soft1]
Type=Softmax
Input=/fc2/Gemm
NbOutputs=10
WithLoss=1
[soft1.Target]
TargetValue=1.0
DefaultValue=0.0
[onnx:Relu_def]
ActivationFunction=Linear
QAct=SAT
QAct.Range=15"
if run_ok soft "$SOFT"; then
    if [ -s "$TMP/soft.err" ]; then bad "soft: warnings for keys that act: $(cat "$TMP/soft.err")"
    else ok "[soft1] Input=/fc2/Gemm (the logits' node), [soft1.Target], Linear+QAct=SAT: no warning"; fi
fi
run_ok soft_value "[soft1]
Type=Softmax
Input=output" && ok "[soft1] Input=output (the logits by value name) accepted"
check soft_missing 2 "soft_missing.ini:[0-9]*: \[soft1\] Input=/fc3/Gemm: .*no node or value" \
    "[soft1]
Type=Softmax
Input=/fc3/Gemm"
check soft_other 2 "soft_other.ini:[0-9]*: \[soft1\] Input=/fc1/Gemm: the loss is taken on the logits 'output'" \
    "[soft1]
Type=Softmax
Input=/fc1/Gemm"
check soft_nboutputs 2 "soft_nboutputs.ini:[0-9]*: \[soft1\] NbOutputs=12: .* 10 classes" \
    "[soft1]
Type=Softmax
Input=/fc2/Gemm
NbOutputs=12"
check target_orphan 2 "target_orphan.ini:[0-9]*: \[x.Target\]: no section \[x\]" "[x.Target]
TopN=1"

# 2. one warning per key without effect
if run_ok warn "[onnx]
Type=ONNX
Input=sp
Ignore=/Relu
[soft1]
Type=Softmax
Input=/fc2/Gemm
WithLoss=0
[soft1.Target]
TargetValue=0.9
TopN=5
[onnx:Conv_def]
NoBias=1
ActivationFunction=Linear
WeightsFiller=XavierFiller
[onnx:Fc_def]
NoBias=1
QActSolver.Decay=0.0001"; then
    for k in Ignore WithLoss TargetValue TopN NoBias ActivationFunction WeightsFiller \
        QActSolver.Decay; do
        n=$(grep -c "warning: .*warn.ini:[0-9]*: \[[^]]*\] $k has no effect" "$TMP/warn.err")
        if [ "$n" -eq 1 ]; then ok "$k: one warning ($(grep " $k has" "$TMP/warn.err" | cut -c1-90)...)"
        else bad "$k: $n warnings"; cat "$TMP/warn.err"; fi
    done
    grep -q "NoBias has no effect (and in 1 other place)" "$TMP/warn.err" \
        && ok "NoBias in two sections: one line naming the other place" \
        || bad "NoBias: no 'and in 1 other place'"
    n=$(grep -c . "$TMP/warn.err")
    [ "$n" -eq 8 ] && ok "8 warning lines in all" || { bad "$n warning lines, expected 8"; cat "$TMP/warn.err"; }
fi

# 3. ONNX_init=0: the fillers
FILL="[onnx]
Type=ONNX
ONNX_init=0
[onnx:Conv_def]
WeightsFiller=ConstantFiller
WeightsFiller.Value=0.25
[/fc1/Gemm]
WeightsFiller=XavierFiller
WeightsFiller.VarianceNorm=FanOut
WeightsFiller.Scaling=2.0
BiasFiller=ConstantFiller
BiasFiller.Value=0.5"
if run_ok fill5 "$FILL" --epochs 0 --seed 5 && run_ok fill5b "$FILL" --epochs 0 --seed 5 &&
    run_ok fill6 "$FILL" --epochs 0 --seed 6; then
    [ -s "$TMP/fill5.err" ] && bad "fill: warnings: $(cat "$TMP/fill5.err")"
    if out=$("$PYTHON3" - "$TMP/fill5.onnx" "$TMP/fill5b.onnx" "$TMP/fill6.onnx" 2>&1 <<'PY'
import sys, numpy as np, onnx
from onnx import numpy_helper as nh
a, b, c = ({i.name: nh.to_array(i) for i in onnx.load(p).graph.initializer} for p in sys.argv[1:])
err = []
for k in ("conv1.weight", "conv2.weight"):
    if not np.all(a[k] == 0.25): err.append(k + " != 0.25")
for bn in ("bn1", "bn2"):
    for s, v in (("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1)):
        if not np.all(a[bn + "." + s] == v): err.append("%s.%s != %g" % (bn, s, v))
w = a["fc1.weight"]                         # [128 out, 400 in] (transB=1): fan-out 128
bound = 2.0 * np.sqrt(3.0 / 128)
if np.abs(w).max() > bound * (1 + 1e-6) or np.abs(w).max() < 0.95 * bound:
    err.append("fc1 max %g vs bound %g" % (np.abs(w).max(), bound))
if abs(w.std() / (bound / np.sqrt(3)) - 1) > 0.05: err.append("fc1 std %g" % w.std())
if not np.all(a["fc1.bias"] == 0.5): err.append("fc1.bias != 0.5")
s = a["fc2.weight"].std()                   # N2D2's default NormalFiller(0, 0.05)
if abs(s / 0.05 - 1) > 0.15 or abs(a["fc2.weight"].mean()) > 0.01: err.append("fc2 std %g" % s)
if any(not np.array_equal(a[k], b[k]) for k in a): err.append("same seed, other weights")
if all(np.array_equal(a["fc1.weight"], c["fc1.weight"]) for k in a): err.append("seed ignored")
print("; ".join(err) if err else "fc1 max %.5f <= %.5f, std %.4f; fc2 std %.4f" % (np.abs(w).max(), bound, w.std(), s))
sys.exit(1 if err else 0)
PY
    ); then ok "ONNX_init=0 fillers: $out"; else bad "ONNX_init=0 fillers: $out"; fi
fi

# 4. DefaultModel
printf 'DefaultModel=Frame_CUDA\n%s\n' "$BASE" > "$TMP/cuda.ini"
OUTFILE=$TMP/cuda.onnx
# shellcheck disable=SC2086
"$QATCONV" "$M" -r "$TMP/cuda.ini" -o "$TMP/cuda_cpu.onnx" $RUN --device cpu >/dev/null 2>"$TMP/cuda_cpu.err" \
    && [ "$(grep -c . "$TMP/cuda_cpu.err")" -eq 1 ] \
    && grep -q "warning: .*cuda.ini:1: --device cpu overrides the recipe's DefaultModel=Frame_CUDA" "$TMP/cuda_cpu.err" \
    && ok "--device cpu overrides DefaultModel=Frame_CUDA with one warning" \
    || { bad "--device cpu with DefaultModel=Frame_CUDA"; cat "$TMP/cuda_cpu.err"; }
if grep -q "define HAVE_CUDA 1" "${top_builddir:-.}/config.h" 2>/dev/null; then
    echo "CUDA build: DefaultModel=Frame_CUDA without --device is not an error here"
else
    expect_error 3 "DefaultModel=Frame_CUDA, no CUDA built" -- "$QATCONV" "$M" -r "$TMP/cuda.ini" \
        -o "$OUTFILE" $RUN
    grep -q "cuda.ini:1: DefaultModel=Frame_CUDA asks for the CUDA device, but this qatconv was built without CUDA" "$TMP/err" \
        && ok "the error names the line" || bad "error: $(cat "$TMP/err")"
fi
printf 'DefaultModel=Frame\n%s\n' "$BASE" > "$TMP/frame.ini"
# shellcheck disable=SC2086
"$QATCONV" "$M" -r "$TMP/frame.ini" -o "$TMP/frame.onnx" $RUN >/dev/null 2>"$TMP/frame.err" \
    && [ ! -s "$TMP/frame.err" ] && ok "DefaultModel=Frame: the CPU, no warning" \
    || { bad "DefaultModel=Frame"; cat "$TMP/frame.err"; }
printf 'DefaultModel=Frame_GPU\n%s\n' "$BASE" > "$TMP/gpu.ini"
OUTFILE=$TMP/gpu.onnx
# shellcheck disable=SC2086
expect_error 2 "DefaultModel=Frame_GPU" -- "$QATCONV" "$M" -r "$TMP/gpu.ini" -o "$OUTFILE" $RUN

# 5. the checkpoint records --valid-metric; a resume with another one is an error
# (its best figure would be compared across metrics); a version-2 file (no name) resumes
printf '%s\n' "$BASE" > "$TMP/ck.ini"
# shellcheck disable=SC2086
if "$QATCONV" "$M" -r "$TMP/ck.ini" -o "$TMP/ck1.onnx" $RUN --valid-metric F1Score \
    --checkpoint "$TMP/a.ckpt" >/dev/null 2>"$TMP/ck1.err"; then
    OUTFILE=$TMP/ck2.onnx
    expect_error 2 "resume with another --valid-metric" -- "$QATCONV" "$M" -r "$TMP/ck.ini" \
        -o "$OUTFILE" --epochs 2 --limit 128 --no-eval --quiet --resume "$TMP/a.ckpt"
    grep -q "a.ckpt: checkpoint kept its best epoch by --valid-metric F1Score, this run asks for Top1" \
        "$TMP/err" && ok "the error names both metrics" || bad "error: $(cat "$TMP/err")"
    # shellcheck disable=SC2086
    "$QATCONV" "$M" -r "$TMP/ck.ini" -o "$TMP/ck3.onnx" --epochs 2 --limit 128 --no-eval --quiet \
        --valid-metric F1Score --resume "$TMP/a.ckpt" >/dev/null 2>"$TMP/ck3.err" \
        && ok "resume with the same --valid-metric" || bad "same metric: $(cat "$TMP/ck3.err")"
    if "$PYTHON3" - "$TMP/a.ckpt" "$TMP/v2.ckpt" <<'PY'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
assert struct.unpack_from("<I", d, 8)[0] == 3 and d[176:208].rstrip(b"\0") == b"F1Score"
v2 = d[:8] + struct.pack("<I", 2) + d[12:176] + d[208:-4]
open(sys.argv[2], "wb").write(v2 + struct.pack("<I", zlib.crc32(v2)))
PY
    then
        "$QATCONV" "$M" -r "$TMP/ck.ini" -o "$TMP/ck4.onnx" --epochs 2 --limit 128 --no-eval \
            --quiet --resume "$TMP/v2.ckpt" >/dev/null 2>"$TMP/ck4.err" \
            && ok "a version-2 checkpoint (no metric name) resumes" || bad "v2: $(cat "$TMP/ck4.err")"
    else bad "making a version-2 checkpoint"; fi
else bad "checkpoint run: $(cat "$TMP/ck1.err")"; fi

# 6. N2D2's two-stage SAT flow: stage 2 starts from stage 1's float latent weights
# (--format float), so the chain of two 1-epoch runs equals one 2-epoch run bit for bit
# (SGD without momentum, constant rate, no shuffle, last epoch kept); the default fake
# export of the clamp stage writes Q = tanh(W)/max|tanh W| instead (the documented
# "stage 1 writes Q" flow), which then trains on from Q.
cat > "$TMP/s1.ini" <<EOF2
Solvers=SGD
Solvers.LearningRate=0.01
$(fashion_sections 64)
[onnx:Conv_def]
QWeight=SAT
QWeight.ApplyQuantization=0
[onnx:Fc_def]
QWeight=SAT
QWeight.ApplyQuantization=0
QWeight.ApplyScaling=1
EOF2
O="--limit 256 --no-eval --quiet --no-shuffle --keep last"
# shellcheck disable=SC2086
if ("$QATCONV" "$M" -r "$TMP/s1.ini" -o "$TMP/one.onnx" --epochs 2 $O --format float &&
    "$QATCONV" "$M" -r "$TMP/s1.ini" -o "$TMP/l1.onnx" --epochs 1 $O --format float &&
    "$QATCONV" "$TMP/l1.onnx" -r "$TMP/s1.ini" -o "$TMP/l2.onnx" --epochs 1 $O --format float &&
    "$QATCONV" "$M" -r "$TMP/s1.ini" -o "$TMP/q1.onnx" --epochs 1 $O &&
    "$QATCONV" "$TMP/q1.onnx" -r "$TMP/s1.ini" -o "$TMP/q2.onnx" --epochs 1 $O --format float) \
    >"$TMP/stages.out" 2>&1; then
    if out=$("$PYTHON3" - "$TMP/one.onnx" "$TMP/l2.onnx" "$TMP/l1.onnx" "$TMP/q1.onnx" \
        "$TMP/q2.onnx" 2>&1 <<'PY'
import sys, numpy as np, onnx
from onnx import numpy_helper as nh
one, l2, l1, q1, q2 = ({i.name: nh.to_array(i) for i in onnx.load(p).graph.initializer}
                       for p in sys.argv[1:])
err = [k for k in one if not np.array_equal(one[k], l2[k])]
if err: print("latent chain differs from one run at", err); sys.exit(1)
t = np.tanh(l1["conv1.weight"].astype(np.float64))
d = np.abs(t / np.abs(t).max() - q1["conv1.weight"]).max()
if d > 1e-6: print("fake clamp export is not tanh(W)/max|tanh W|: %g" % d); sys.exit(1)
if np.array_equal(one["conv1.weight"], q2["conv1.weight"]):
    print("the Q chain should differ"); sys.exit(1)
print("latent chain bit-identical; fake export = tanh(W)/max (max diff %.1e)" % d)
PY
    ); then ok "two-stage flow: $out"; else bad "two-stage flow: $out"; fi
else bad "two-stage runs: $(cat "$TMP/stages.out")"; fi
finish
