#!/bin/sh
# test_train.sh - training runs end to end: a resumed run ends with the same
# weights as an uninterrupted one; Ctrl-C stops after the batch and writes
# nothing; a diverging loss stops naming epoch and batch; too little data,
# a corrupt checkpoint and a missing epoch count are clear errors.  Under
# QC_TEST_SCALE=small (tests/lib.sh) the test-set evaluations read a tenth of it
# and the validation split is 1 %, not 90 %, of the file (the same 1,024 learn images).
. "${top_srcdir:-.}/tests/lib.sh"
TEST_FRACTION=$(scaled 1.0 0.1)
VALIDATION=$(scaled 0.9 0.01)
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
DATA=/usr/share/datasets/fashion-mnist

recipe() {   # recipe LR VALIDATION > file
    cat <<EOF2
Solvers.LearningRate=$1
Solvers.Momentum=0.9
Solvers.Decay=0.0001
[database]
Type=MNIST_IDX_Database
DataPath=$DATA
Validation=$2
Test=$TEST_FRACTION
[sp]
SizeX=28
SizeY=28
NbChannels=1
BatchSize=64
[sp.Transformation-1]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
EOF2
}
recipe 0.001 "$VALIDATION" > "$TMP/r.ini"
COMMON="--limit 1024 --quiet --seed 7 --threads 2"

# resume: 2 epochs straight vs 1 epoch + resume to 2
"$QATCONV" "$M" -r "$TMP/r.ini" -o "$TMP/a.onnx" --epochs 2 $COMMON --checkpoint "$TMP/a.ckpt" \
    > "$TMP/a.out" 2>&1 || bad "uninterrupted run: $(cat "$TMP/a.out")"
"$QATCONV" "$M" -r "$TMP/r.ini" -o "$TMP/b1.onnx" --epochs 1 $COMMON --checkpoint "$TMP/b.ckpt" \
    > "$TMP/b.out" 2>&1 || bad "first half: $(cat "$TMP/b.out")"
"$QATCONV" "$M" -r "$TMP/r.ini" -o "$TMP/b.onnx" --epochs 2 $COMMON --resume "$TMP/b.ckpt" \
    > "$TMP/b2.out" 2>&1 || bad "resumed run: $(cat "$TMP/b2.out")"
if "$PYTHON3" - "$TMP/a.onnx" "$TMP/b.onnx" "$M" > "$TMP/resume.py" 2>&1 <<'PY'
import sys, onnx, numpy as np
from onnx import numpy_helper as nh
a, b, m = (onnx.load(p) for p in sys.argv[1:4])
ia = {t.name: nh.to_array(t) for t in a.graph.initializer}
ib = {t.name: nh.to_array(t) for t in b.graph.initializer}
im = {t.name: nh.to_array(t) for t in m.graph.initializer}
assert ia.keys() == ib.keys()
assert all(np.array_equal(ia[k], ib[k]) for k in ia), "resumed weights differ"
assert any(not np.array_equal(ia[k], im[k]) for k in ia), "training changed nothing"
PY
then ok "resume from an epoch checkpoint gives bit-identical weights"
else bad "resume differs from the uninterrupted run: $(cat "$TMP/resume.py")"; fi

# the thread count changes no exported LSQ W4A4 model: at batch 128 every LeNet-BN
# layer is above the size from which the quantizer, BatchNorm, ReLU and pooling loops
# go parallel (QC_PAR_MIN_STREAM, src/ops/op.h), so a race or a wrong chunk there would
# move levels.  (A float run differs by an ulp in a few weights: the convolution and
# Gemm weight gradients sum each thread's images apart, and qatconv(1) promises the
# same weights for the same thread count only; the 4-bit levels absorb that ulp.)
LSQ="$top_srcdir/recipes/lenet-lsq-w4a4.ini --epochs 1 --limit 1024 --no-eval --quiet --seed 7"
for t in 1 2; do
    "$QATCONV" "$M" -r $LSQ --threads $t -o "$TMP/lsq$t.onnx" > "$TMP/lsq$t.out" 2>&1 ||
        bad "LSQ W4A4 at $t threads: $(cat "$TMP/lsq$t.out")"
done
if cmp -s "$TMP/lsq1.onnx" "$TMP/lsq2.onnx"; then
    ok "LSQ W4A4: 1 and 2 threads train the same bytes"
else bad "LSQ W4A4: the thread count changed the trained model"; fi

# a version-1 checkpoint (qatconv before --checkpoint-every: no position
# block, no gradients) still resumes: b.ckpt rewritten as version 1
if "$PYTHON3" - "$TMP/b.ckpt" "$TMP/v1.ckpt" > "$TMP/v1.py" 2>&1 <<'PY'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"QCCKPT01" and struct.unpack_from("<I", d, 8)[0] == 3
# the version-2 block: 3 i64, 2 x 4 u64, f64, 2 i64 after the 64-byte v1 header,
# then version 3's 32-byte metric name
batches, _, _ = struct.unpack_from("<qqq", d, 64)
n_grads = struct.unpack_from("<q", d, 64 + 104)[0]
assert batches == 0 and n_grads == 0
assert d[64 + 112:64 + 144].rstrip(b"\0") == b"Top1"
v1 = d[:8] + struct.pack("<I", 1) + d[12:64] + d[64 + 144:-4]
open(sys.argv[2], "wb").write(v1 + struct.pack("<I", zlib.crc32(v1)))
PY
then
    "$QATCONV" "$M" -r "$TMP/r.ini" -o "$TMP/v1.onnx" --epochs 2 $COMMON --resume "$TMP/v1.ckpt" \
        > "$TMP/v1.out" 2>&1 || bad "resume from version 1: $(cat "$TMP/v1.out")"
    if cmp -s "$TMP/v1.onnx" "$TMP/b.onnx"; then ok "a version-1 checkpoint resumes the same"
    else bad "resume from a version-1 checkpoint differs"; fi
else bad "making a version-1 checkpoint: $(cat "$TMP/v1.py")"; fi

# per-node solvers: [onnx:Conv_def] and an exact node section override the global one
recipe 0.01 0.0 > "$TMP/node.ini"
cat >> "$TMP/node.ini" <<'EOF2'
[onnx:Conv_def]
Solvers.LearningRate=0.0
Solvers.Momentum=0.0
Solvers.Decay=0.0
[/fc2/Gemm]
WeightsSolver.LearningRate=0.0
WeightsSolver.Decay=0.0
EOF2
if "$QATCONV" "$M" -r "$TMP/node.ini" -o "$TMP/node.onnx" --epochs 1 --limit 512 --quiet \
        > "$TMP/node.out" 2>&1 &&
   "$PYTHON3" - "$TMP/node.onnx" "$M" > "$TMP/node.py" 2>&1 <<'PY'
import sys, onnx, numpy as np
from onnx import numpy_helper as nh
a, m = (onnx.load(p) for p in sys.argv[1:3])
ia = {t.name: nh.to_array(t) for t in a.graph.initializer}
im = {t.name: nh.to_array(t) for t in m.graph.initializer}
same = lambda k: np.array_equal(ia[k], im[k])
assert same("conv1.weight") and same("conv2.weight"), "Conv_def ignored"
assert same("fc2.weight"), "[/fc2/Gemm] WeightsSolver ignored"
assert not same("fc2.bias"), "fc2 bias should train (BiasSolver = global)"
assert not same("fc1.weight") and not same("bn1.weight"), "global solver ignored"
PY
then ok "per-node solver sections ([onnx:Conv_def], [/fc2/Gemm] WeightsSolver.*)"
else bad "per-node solver sections: $(cat "$TMP/node.out" "$TMP/node.py" 2>/dev/null)"; fi

# Ctrl-C: stops after the current batch, exit 3, nothing written
recipe 0.001 0.0 > "$TMP/long.ini"
"$QATCONV" "$M" -r "$TMP/long.ini" -o "$TMP/int.onnx" --epochs 50 --quiet --log "$TMP/int.csv" \
    > "$TMP/int.out" 2>&1 &
pid=$!
# signal once training is under way (the log has a batch line), at most 120 s later
i=0
while [ $i -lt 1200 ] && [ "$({ wc -l < "$TMP/int.csv"; } 2>/dev/null || echo 0)" -lt 3 ]; do
    sleep 0.1; i=$((i + 1))
done
kill -INT $pid
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 $pid 2>/dev/null && { kill -KILL $pid; bad "SIGINT ignored: killed"; }
wait $pid
rc=$?
if [ $rc -eq 3 ] && grep -q 'interrupted by signal' "$TMP/int.out" && [ ! -e "$TMP/int.onnx" ]; then
    ok "SIGINT: clean stop ($(grep -o 'interrupted.*' "$TMP/int.out"))"
else
    bad "SIGINT: exit $rc, output: $(cat "$TMP/int.out")"
fi

# --checkpoint-every writes more checkpoints and changes no weight (resuming
# at a batch: tests/test_killresume.sh)
"$QATCONV" "$M" -r "$TMP/r.ini" -o "$TMP/c.onnx" --epochs 2 $COMMON --checkpoint "$TMP/c.ckpt" \
    --checkpoint-every 5 > "$TMP/c.out" 2>&1 || bad "run with --checkpoint-every: $(cat "$TMP/c.out")"
if cmp -s "$TMP/a.onnx" "$TMP/c.onnx" && cmp -s "$TMP/a.ckpt" "$TMP/c.ckpt"; then
    ok "--checkpoint-every changes neither the weights nor the final checkpoint"
else bad "--checkpoint-every changes the result"; fi

# a diverging loss (a rate large enough for the loss itself to overflow; at 1e12 the
# backward overflows first: the exploding-gradients message of test_failures.sh)
recipe 1e20 0.0 > "$TMP/nan.ini"
OUTFILE=$TMP/nan.onnx
expect_error 3 "diverging loss" -- "$QATCONV" "$M" -r "$TMP/nan.ini" -o "$OUTFILE" --epochs 1 \
    --limit 2048 --quiet
if grep -q 'epoch 1, batch [0-9]*: the loss is' "$TMP/err"; then ok "NaN names epoch and batch"
else bad "NaN message: $(cat "$TMP/err")"; fi

# too little data for one batch
OUTFILE=$TMP/small.onnx
expect_error 2 "dataset smaller than one batch" -- "$QATCONV" "$M" -r "$TMP/r.ini" -o "$OUTFILE" \
    --epochs 1 --limit 10 --quiet
# a corrupt checkpoint
head -c 3000 /dev/urandom > "$TMP/bad.ckpt"
OUTFILE=$TMP/ck.onnx
expect_error 2 "corrupt checkpoint" -- "$QATCONV" "$M" -r "$TMP/r.ini" -o "$OUTFILE" \
    --epochs 1 --limit 1024 --quiet --resume "$TMP/bad.ckpt"
# a node section that matches no node
cp "$TMP/node.ini" "$TMP/typo.ini"
printf '[/fc3/Gemm]\nWeightsSolver.LearningRate=0.1\n' >> "$TMP/typo.ini"
OUTFILE=$TMP/typo.onnx
expect_error 2 "section matching no node" -- "$QATCONV" "$M" -r "$TMP/typo.ini" -o "$OUTFILE" \
    --epochs 1 --limit 512 --quiet
if grep -q "typo.ini:[0-9]*: section \[/fc3/Gemm\] matches no node.*did you mean '/fc[12]/Gemm'" \
        "$TMP/err"; then ok "unmatched section: file:line and did-you-mean"
else bad "unmatched section message: $(cat "$TMP/err")"; fi

# no epoch count
expect_error 1 "no epochs" -- "$QATCONV" "$M" -r "$TMP/r.ini" -o "$OUTFILE"
# --checkpoint-every without a checkpoint file
expect_error 1 "--checkpoint-every without --checkpoint" -- "$QATCONV" "$M" -r "$TMP/r.ini" \
    -o "$OUTFILE" --epochs 1 --checkpoint-every 4
finish
